#!/usr/bin/env bash
# Single-row JSON predictions under wrk (-t1 -c8) on loopback, one after another in the
# same run: the two bare floors, `mlflow models serve` (when MLFLOW_PYTHON names a Python
# with mlflow installed, e.g. a venv made from requirements-mlflow.txt), then loopml with
# capture off and on.
# Then, with ROUNDS=N, N rounds of the booster floor and loopml (capture off and on, in
# turns first) one right after the other, each round's ratios printed, then their medians:
# on a shared host whose speed drifts by a fifth, a round compares like with like.
# Usage: [ROUNDS=N] benchmarks/serving/run.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
work=$(mktemp -d)
export LOOPML_HOME="$work/home"
.venv/bin/python -m benchmarks.serving.setup_model "$LOOPML_HOME" "$work"
post() {  # a wrk script that POSTs file $1 as JSON
  cat >"$work/$2" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("$1"):read("*a")
LUA
}
post "$work/row.json" post.lua
FLOOR_MODEL="$work/floor.txt" FLOOR_PICKLE="$work/floor.pkl" FLOOR_COLUMNS="$work/columns.json" \
  .venv/bin/uvicorn --app-dir benchmarks/serving floor:app --port 18801 --log-level warning &
pids=($!)
.venv/bin/loopml server --port 18802 --no-worker >"$work/server.log" 2>&1 &
pids+=($!)
ports=(18801 18802)
if [[ -n "${MLFLOW_PYTHON:-}" ]]; then
  "$MLFLOW_PYTHON" benchmarks/serving/mlflow_model.py "$work"
  "$MLFLOW_PYTHON" -c 'import json,sys; print(json.dumps({"dataframe_records": json.load(open(sys.argv[1]))}))' \
    "$work/row.json" >"$work/mlflow.json"
  post "$work/mlflow.json" mlflow.lua
  # mlflow starts its own uvicorn from PATH
  PATH="$(dirname "$MLFLOW_PYTHON"):$PATH" "$(dirname "$MLFLOW_PYTHON")/mlflow" models serve \
    -m "$work/mlflow-model" --env-manager local -p 18803 -w 1 >"$work/mlflow.log" 2>&1 &
  pids+=($!)
  ports+=(18803)
fi
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for port in "${ports[@]}"; do
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
key=$(cat "$LOOPML_HOME/admin.key")
base=http://127.0.0.1:18802/api/v1/projects/bench/deployments
curl -fs -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d @"$work/row.json" "$base/nocapture/predict" >/dev/null  # load the model once
bench() {  # title, wrk arguments...
  echo "== $1"
  shift
  wrk -t1 -c8 -d"$duration" --latency "$@" | grep -E "Requests/sec|  50%|  99%|Non-2xx|errors|unable" || true
}
bench "floor: bare FastAPI + LightGBM booster" -s "$work/post.lua" http://127.0.0.1:18801/predict
bench "floor: bare FastAPI + DataFrame + scikit-learn wrapper" -s "$work/post.lua" \
  http://127.0.0.1:18801/predict_frame
if [[ -n "${MLFLOW_PYTHON:-}" ]]; then
  bench "mlflow models serve" -s "$work/mlflow.lua" http://127.0.0.1:18803/invocations
fi
bench "loopml, capture off" -s "$work/post.lua" -H "Authorization: Bearer $key" \
  "$base/nocapture/predict"
bench "loopml, capture on (every row)" -s "$work/post.lua" -H "Authorization: Bearer $key" \
  "$base/capture/predict"
rps() {  # requests/s of one wrk run: url, wrk arguments...
  wrk -t1 -c8 -d"$duration" "$@" | awk '/Requests\/sec/ {print $2}'
}
for round in $(seq "${ROUNDS:-0}"); do
  floor=$(rps -s "$work/post.lua" http://127.0.0.1:18801/predict)
  # Capture on and off take turns going first: neither always meets the host's drift later.
  if (( round % 2 )); then
    off=$(rps -s "$work/post.lua" -H "Authorization: Bearer $key" "$base/nocapture/predict")
    on=$(rps -s "$work/post.lua" -H "Authorization: Bearer $key" "$base/capture/predict")
  else
    on=$(rps -s "$work/post.lua" -H "Authorization: Bearer $key" "$base/capture/predict")
    off=$(rps -s "$work/post.lua" -H "Authorization: Bearer $key" "$base/nocapture/predict")
  fi
  awk -v r="$round" -v f="$floor" -v a="$off" -v b="$on" 'BEGIN {
    printf "round %d: floor %.0f, loopml capture off %.0f (%.2fx), on %.0f (%.2fx); capture costs %.1f%%\n",
      r, f, a, a / f, b, b / f, 100 * (1 - b / a) }' | tee -a "$work/rounds.txt"
done
if [[ -s "$work/rounds.txt" ]]; then
  sed -E 's/.*off [0-9]+ \(([0-9.]+)x\), on [0-9]+ \(([0-9.]+)x\); capture costs (-?[0-9.]+)%/\1 \2 \3/' \
    "$work/rounds.txt" | sort -n -k3 | awk '{off[NR]=$1; on[NR]=$2; cost[NR]=$3} END {
      m = int((NR + 1) / 2); n = asort(off); asort(on)
      printf "median of %d rounds: capture off %.2fx the floor, on %.2fx; capture costs %.1f%%\n",
        NR, (NR % 2 ? off[m] : (off[m] + off[m + 1]) / 2), (NR % 2 ? on[m] : (on[m] + on[m + 1]) / 2),
        (NR % 2 ? cost[m] : (cost[m] + cost[m + 1]) / 2) }'
fi
