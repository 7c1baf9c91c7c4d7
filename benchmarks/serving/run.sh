#!/usr/bin/env bash
# Single-row JSON predictions under wrk (-t1 -c8) on loopback: the bare LightGBM floor,
# then loopml with capture off and on, one after another in the same run.
# Usage: benchmarks/serving/run.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
work=$(mktemp -d)
export LOOPML_HOME="$work/home"
.venv/bin/python -m benchmarks.serving.setup_model "$LOOPML_HOME" "$work"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("$work/row.json"):read("*a")
LUA
FLOOR_MODEL="$work/floor.txt" FLOOR_COLUMNS="$work/columns.json" \
  .venv/bin/uvicorn --app-dir benchmarks/serving floor:app --port 18801 --log-level warning &
floor=$!
.venv/bin/loopml server --port 18802 --no-worker >"$work/server.log" 2>&1 &
server=$!
trap 'kill $floor $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for port in 18801 18802; do
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
key=$(cat "$LOOPML_HOME/admin.key")
base=http://127.0.0.1:18802/api/v1/projects/bench/deployments
curl -fs -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d @"$work/row.json" "$base/nocapture/predict" >/dev/null  # load the model once
echo "== floor: bare FastAPI + LightGBM booster"
wrk -t1 -c8 -d"$duration" --latency -s "$work/post.lua" http://127.0.0.1:18801/predict
echo "== loopml, capture off"
wrk -t1 -c8 -d"$duration" --latency -s "$work/post.lua" -H "Authorization: Bearer $key" \
  "$base/nocapture/predict"
echo "== loopml, capture on (every row)"
wrk -t1 -c8 -d"$duration" --latency -s "$work/post.lua" -H "Authorization: Bearer $key" \
  "$base/capture/predict"
