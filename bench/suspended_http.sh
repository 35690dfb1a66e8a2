#!/usr/bin/env bash
# 10,000 runs suspended at once on slow HTTP calls: each run does http.get() against a local
# server that answers after 2 s (bench/slow_server.py); all must complete. Prints the memory per
# suspended run, the peak RSS and the wall time from the first start to the last end.
# Usage: bench/suspended_http.sh [BUILD_DIR] [RUNS] [DELAY_SECONDS]
# Every run holds one connection, so the file descriptor limit is raised and the per-host
# concurrency limit (http.host_concurrency, default 20) is lifted for the benchmark.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
runs=${2:-10000}
delay=${3:-2}
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((runs + 200)) ]; then
    echo "suspended_http.sh: the file descriptor limit ($(ulimit -n)) is below $((runs + 200))" >&2
    exit 2
fi
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
/usr/bin/python3 "$src/bench/slow_server.py" "$port" "$delay" 300 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
echo "== $runs runs suspended at once in http.get() (server answers after ${delay}s), $(nproc) CPU(s)"
# No per-host limit: every run's request is in flight at once. No retries: a failure shows.
AUTORUN_HTTP_HOST_CONCURRENCY=0 AUTORUN_HTTP_ATTEMPTS=1 \
    timeout 600 "$build/bench/bench_runs" http "$runs" "http://127.0.0.1:$port/slow"
