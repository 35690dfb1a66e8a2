#!/usr/bin/env bash
# Bulk API work: recipes/board-add-member.js adds a person to N Trello boards (default 1,000)
# on tests/servers/fake_trello.py with 50 ms of latency per call, compared in the same run with
#   - the ideal bound: the 2 sequential reads + ceil(N / concurrency) waves of adds, each one
#     latency long (the per-host concurrency, set through http.limits, is the only limit: the
#     bench sets a rate limit far above what it uses, so the bound is meaningful);
#   - curl -Z (curl's parallel transfers) doing just the adds, as a reference for what the
#     local Python server itself allows (its own per-call overhead is part of every figure);
#   - bench/bulk_boards_baseline.py: the same job as a sequential Python urllib script.
# Target: autorun within 1.15x of the bound, zero failed calls.
# Usage: bench/bulk_boards.sh [BUILD_DIR] [BOARDS] [CONCURRENCY] [LATENCY_MS]
#        (SKIP_BASELINE=1 skips the Python baseline, which takes BOARDS x LATENCY or more)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
boards=${2:-1000}
conc=${3:-50}
latency=${4:-50}
ar="$build/autorun"
py=/usr/bin/python3
tmp=$(mktemp -d)
fake_pid=
stop_fake() {
    if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
    fake_pid=
}
trap 'stop_fake; rm -rf "$tmp"' EXIT

export TRELLO_KEY=bench-key TRELLO_TOKEN=bench-token-0123456789
# Starts a fresh server (fresh boards); sets port and fake_pid.
start_fake() {
    stop_fake
    port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    $py "$src/tests/servers/fake_trello.py" "$port" --lifetime 900 --boards "$boards" \
        --latency-ms "$latency" --rate 0 --key "$TRELLO_KEY" --token "$TRELLO_TOKEN" >/dev/null 2>&1 &
    fake_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "fake_trello did not start" >&2
    exit 1
}
stat() { $py -c "import json, urllib.request, sys
d = json.load(urllib.request.urlopen('http://127.0.0.1:$port/__stats'))
print(eval(sys.argv[1]))" "$1"; }

mkdir -p "$tmp/home" "$tmp/recipes"
cp "$src/recipes/board-add-member.js" "$tmp/recipes/"
export AUTORUN_HOME="$tmp/home" AUTORUN_RECIPES="$tmp/recipes" AUTORUN_PLUGINS="$src/plugins"
input='{"org":"support-team","email":"sam@example.com"}'
requests=$((boards + 2))
bound_ms=$(( (2 + (boards + conc - 1) / conc) * latency ))

echo "== bulk boards: add a member to $boards boards, ${latency} ms per call, host concurrency $conc"
start_fake
export TRELLO_API_BASE="http://127.0.0.1:$port/1"
export AUTORUN_HTTP_LIMITS="127.0.0.1:$port rate=100000/10s concurrency=$conc"
"$ar" run board-add-member --input '{"org":"no-such-org","email":"x@example.com"}' >/dev/null 2>&1 || true
t0=$(date +%s.%N)
out=$("$ar" run board-add-member --input "$input" 2>/dev/null)
t1=$(date +%s.%N)
ar_s=$($py -c "print('%.3f' % ($t1 - $t0))")
ar_added=$($py -c 'import json,sys; print(len(json.loads(sys.argv[1])["added"]))' "$out")
ar_failed=$($py -c 'import json,sys; print(len(json.loads(sys.argv[1])["failed"]))' "$out")
ar_server=$(stat '"%d puts, %d 429s, %d 5xx, max %d at once" % (d["puts"], d["sent_429"], d["sent_5xx"], d["max_concurrency"])')

# A reference client: curl's own parallel transfers doing the same adds (PUTs only, no reads,
# no JSON, no history) against a fresh server, to show what the server itself allows.
curl_s=
if command -v curl >/dev/null; then
    start_fake
    $py - "$port" "$boards" > "$tmp/curl.cfg" <<'PY'
import sys
port, n = sys.argv[1], int(sys.argv[2])
sam = "a0" + format(2, "022x")  # fake_trello.py's ids: sam is the second account
for i in range(1, n + 1):
    print('url = "http://127.0.0.1:%s/1/boards/b0%022x/members/%s?key=bench-key'
          '&token=bench-token-0123456789&type=normal"' % (port, i, sam))
    print("request = PUT")
    print("output = /dev/null")
PY
    t0=$(date +%s.%N)
    curl -s -Z --parallel-max "$conc" -K "$tmp/curl.cfg" >/dev/null 2>&1
    t1=$(date +%s.%N)
    curl_s=$($py -c "print('%.3f' % ($t1 - $t0))")
    curl_puts=$(stat 'd["puts"]')
    curl_bound_ms=$(( (boards + conc - 1) / conc * latency ))
fi

if [ "${SKIP_BASELINE:-0}" != 1 ]; then
    start_fake
    base=$($py "$src/bench/bulk_boards_baseline.py" "http://127.0.0.1:$port/1" support-team sam@example.com)
    py_s=$($py -c 'import json,sys; print("%.3f" % json.loads(sys.argv[1])["seconds"])' "$base")
    py_added=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["added"])' "$base")
    py_failed=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["failed"])' "$base")
fi
stop_fake

$py - "$requests" "$bound_ms" "$ar_s" "$ar_added" "$ar_failed" "${py_s:-}" "${py_added:-}" "${py_failed:-}" \
    "$boards" "${curl_s:-}" "${curl_bound_ms:-1}" "${curl_puts:-}" <<'PY'
import sys
(req, bound_ms, ar_s, ar_added, ar_failed, py_s, py_added, py_failed, boards, curl_s,
 curl_bound_ms, curl_puts) = sys.argv[1:]
bound = int(bound_ms) / 1000.0
print(f"{'runner':40} {'calls':>6} {'added':>6} {'failed':>6} {'wall s':>8} {'x bound':>8}")
print(f"{'ideal bound (latency x waves)':40} {req:>6} {'':>6} {'':>6} {bound:8.3f} {1.0:8.2f}")
print(f"{'autorun run board-add-member':40} {req:>6} {ar_added:>6} {ar_failed:>6} "
      f"{float(ar_s):8.3f} {float(ar_s) / bound:8.2f}")
if curl_s:
    cb = int(curl_bound_ms) / 1000.0
    print(f"{'curl -Z, the PUTs only (own bound)':40} {boards:>6} {curl_puts:>6} {'':>6} "
          f"{float(curl_s):8.3f} {float(curl_s) / cb:8.2f}")
if py_s:
    print(f"{'python3 urllib, sequential (baseline)':40} {req:>6} {py_added:>6} {py_failed:>6} "
          f"{float(py_s):8.3f} {float(py_s) / bound:8.2f}")
    print(f"autorun is {float(py_s) / float(ar_s):.1f}x faster than the baseline")
PY
echo "server saw (autorun): $ar_server"
