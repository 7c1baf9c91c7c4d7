#!/usr/bin/env bash
# Single-image predictions over HTTP: one PNG digit as the request body, under wrk on
# loopback, one connection (latency) and eight (throughput); capture on.
# Usage: benchmarks/vision/latency.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
work=$(mktemp -d)
export LOOPML_HOME="$work/home"
.venv/bin/python -m benchmarks.vision.setup_model "$LOOPML_HOME" "$work"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
wrk.body = io.open("$work/digit.png", "rb"):read("*a")
LUA
.venv/bin/loopml server --port 18804 --no-worker >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:18804/" && break; sleep 0.1; done
key=$(cat "$LOOPML_HOME/admin.key")
url=http://127.0.0.1:18804/api/v1/projects/bench/deployments/digits/predict
curl -fs -H "Authorization: Bearer $key" -H "Content-Type: image/png" \
  --data-binary @"$work/digit.png" "$url"  # loads the model; prints the answer
echo
for connections in 1 8; do
  echo "== $connections connection(s)"
  wrk -t1 -c"$connections" -d"$duration" --latency -s "$work/post.lua" \
    -H "Authorization: Bearer $key" "$url" | grep -E "Requests/sec|  50%|  99%|Non-2xx|errors" || true
done
