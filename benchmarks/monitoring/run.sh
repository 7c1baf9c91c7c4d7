#!/usr/bin/env bash
# A drift report on N rows x 20 columns against an N-row reference: loopml's command,
# the scipy floor and (when EVIDENTLY_PYTHON names a Python with evidently installed)
# Evidently's DataDriftPreset, one after another on the same files. Each line: seconds,
# peak memory and the columns it found drifted (planted: num_3, num_9, cat_2).
# Usage: benchmarks/monitoring/run.sh [rows, default 1000000] [format: csv|parquet]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}
fmt=${2:-csv}
data=${DRIFT_DATA:-/tmp/loopml-drift-$rows}
[[ -f "$data/current.$fmt" ]] || .venv/bin/python -m benchmarks.monitoring.make_data --rows "$rows" --out "$data"
ref="$data/reference.$fmt"
cur="$data/current.$fmt"
measure() {  # name, command...
  local name=$1
  shift
  local out
  out=$( { /usr/bin/time -f "%e %M" "$@" >"$data/$name.out"; } 2>&1 | tail -1)
  printf '%-10s %8.2f s %8.0f MB  %s\n' "$name" "${out% *}" "$(( ${out#* } / 1024 ))" \
    "$(grep -o '^drifted.*' "$data/$name.out" || .venv/bin/python -c \
      'import json,sys; print("drifted:", ", ".join(json.load(open(sys.argv[1]))["drift"]["drifted_columns"]))' \
      "$data/$name.out")"
}
echo "rows=$rows format=$fmt $(nproc) cores $(date -u +%F)"
measure loopml .venv/bin/loopml monitor drift --reference "$ref" --current "$cur" --json
measure floor .venv/bin/python -m benchmarks.monitoring.floor "$ref" "$cur"
if [[ -n "${EVIDENTLY_PYTHON:-}" ]]; then
  measure evidently "$EVIDENTLY_PYTHON" benchmarks/monitoring/evidently_drift.py "$ref" "$cur"
fi
