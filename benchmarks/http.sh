#!/usr/bin/env bash
# HTTP throughput of a live `loopml server` with wrk (Debian package `wrk`), loopback only.
# Usage: benchmarks/http.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
home=$(mktemp -d)
port=18765
export LOOPML_HOME="$home"
.venv/bin/loopml projects create demo >/dev/null
.venv/bin/loopml server --port "$port" >"$home/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
key=$(cat "$home/admin.key")
echo "== GET /api/v1/health (public, one DB round trip)"
wrk -t2 -c16 -d"$duration" "http://127.0.0.1:$port/api/v1/health"
echo "== GET /api/v1/projects/demo (key lookup + role check + one query)"
wrk -t2 -c16 -d"$duration" -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/projects/demo"
