#!/usr/bin/env bash
# Webhook-triggered runs per second, measured with wrk at 1 and 64 connections:
#   autorun serve   every event committed (and synced) to history.db before its 202, every run
#                   recorded; checked afterwards against the history
#   node http       plain Node.js http server answering 202 JSON, recording nothing
#   Node-RED        http in -> http response 202 (from npm, cached in bench/.cache), recording
#                   nothing
# Usage: bench/webhook.sh [BUILD_DIR] [DURATION_SECONDS]   (default build, 10 s per measurement)
#        BENCH_BASELINES=0 measures autorun only.
# Needs wrk, sqlite3, curl, node (+ npm for Node-RED). Everything binds 127.0.0.1, every process
# runs under `timeout` and is ended by its PID.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
dur=${2:-10}
warmup=2
ar="$build/autorun"
lua="$src/bench/webhook-post.lua"
cache="$src/bench/.cache"
max_life=$((4 * (dur + warmup) + 60)) # no server outlives its two measurements by much
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ar-webhook-bench.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for tool in wrk sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "webhook.sh: needs $tool" >&2; exit 2; }
done
[ -x "$ar" ] || { echo "webhook.sh: no autorun binary at $ar" >&2; exit 2; }

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # PORT PID
    local i
    for i in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The process `timeout` started (the server itself), for /proc/PID/status.
child_of() {
    local i c
    for i in $(seq 1 50); do
        c=$(pgrep -P "$1" | head -1 || true)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.1
    done
    echo "$1"
}

peak_rss_mib() { # PID
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

to_ms() { # wrk latency such as 512.00us, 17.36ms, 1.20s
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { printf "?" } }'
}

# run_wrk CONNS URL OUTFILE SECONDS
run_wrk() {
    local threads=2
    [ "$1" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$1" -d"$4"s --timeout 10s --latency -s "$lua" "$2" > "$3" 2>&1
}

results=()
checks=()
# measure NAME CONNS URL PID: warm-up, then one measured wrk run; appends a row to results.
measure() {
    local name=$1 conns=$2 url=$3 pid=$4 out="$tmp/wrk-$1-$2.txt"
    run_wrk "$conns" "$url" "$tmp/warmup.txt" "$warmup"
    run_wrk "$conns" "$url" "$out" "$dur"
    local rps p50 p99 total non2xx errs
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    total=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$(awk '/Socket errors:/ { sub(/^.*Socket errors: /, ""); print }' "$out")
    WRK_OK=$((total - ${non2xx:-0}))
    echo "  $name -c$conns: $rps req/s, p50 $p50 ms, p99 $p99 ms, $total responses" \
         "(${non2xx:-0} not 2xx)${errs:+, socket errors: $errs}"
    results+=("$name|$conns|$rps|$p50|$p99|$(peak_rss_mib "$pid")")
}

stop_pid() { # PID: SIGTERM, then wait (bounded by the timeout wrapper)
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ---- autorun ----
bench_autorun() { # CONNS
    local conns=$1 dir="$tmp/autorun-$1" port
    mkdir -p "$dir/home" "$dir/recipes"
    cat > "$dir/recipes/ticket-solved.js" <<'JS'
exports.description = 'Benchmark: acknowledge a solved ticket';
exports.triggers = [{ webhook: '/hooks/bench' }];
exports.run = function (event, ctx) {
    return { ok: true, ticket: event.json.ticket.id };
};
JS
    port=$(free_port)
    AUTORUN_HOME="$dir/home" AUTORUN_RECIPES="$dir/recipes" AUTORUN_PLUGINS="$dir/recipes" \
        AUTORUN_LISTEN="127.0.0.1:$port" \
        timeout -k 5 "$max_life" "$ar" serve 2> "$dir/serve.log" &
    local tpid=$!
    pids+=("$tpid")
    wait_port "$port" "$tpid" || { echo "autorun serve did not start:"; cat "$dir/serve.log"; exit 1; }
    local pid
    pid=$(child_of "$tpid")
    measure autorun "$conns" "http://127.0.0.1:$port/hooks/bench" "$pid"
    local wrk_ok=$WRK_OK answered
    answered=$(curl -s "http://127.0.0.1:$port/metrics" |
               awk '/^autorun_webhook_responses_total\{code="202"\}/ { print $2 }')
    stop_pid "$tpid"
    # Every 202 the service sent is a run in history, and every one of them ran and succeeded.
    local rows ok other
    rows=$(sqlite3 "$dir/home/history.db" "SELECT count(*) FROM runs")
    ok=$(sqlite3 "$dir/home/history.db" "SELECT count(*) FROM runs WHERE status='succeeded'")
    other=$(sqlite3 "$dir/home/history.db" \
            "SELECT group_concat(status || ':' || n) FROM (SELECT status, count(*) n FROM runs
             WHERE status <> 'succeeded' GROUP BY status)")
    local verdict=OK
    if [ "${answered:-0}" != "$ok" ] || [ "$rows" != "$ok" ] || [ "$ok" -lt "$wrk_ok" ]; then
        verdict=MISMATCH
    fi
    local line="autorun -c$conns: $verdict: 202s sent ${answered:-?} (warm-up included; wrk saw"
    line+=" $wrk_ok in the measured run), history rows $rows, succeeded $ok${other:+, other: $other}"
    checks+=("$line")
    [ "$verdict" = OK ] || BENCH_FAILED=1
}

# ---- plain node ----
bench_node() { # CONNS
    local conns=$1 port
    port=$(free_port)
    BENCH_MAX_SECONDS=$max_life timeout -k 5 "$max_life" node "$src/bench/baselines/node-http.js" \
        "$port" 2> "$tmp/node.log" &
    local tpid=$!
    pids+=("$tpid")
    wait_port "$port" "$tpid" || { echo "node did not start:"; cat "$tmp/node.log"; exit 1; }
    measure "node http" "$conns" "http://127.0.0.1:$port/hooks/bench" "$(child_of "$tpid")"
    stop_pid "$tpid"
}

# ---- Node-RED ----
nodered_js=""
nodered_setup() {
    local dir="$cache/node-red"
    nodered_js="$dir/node_modules/node-red/red.js"
    [ -f "$nodered_js" ] && return 0
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name":"bench-node-red","private":true}' > "$dir/package.json"
    echo "  installing node-red into $dir (npm, once)"
    if ! timeout 900 npm install --prefix "$dir" --no-audit --no-fund node-red \
        > "$tmp/npm.log" 2>&1; then
        NODERED_WHY="npm install failed: $(grep -m1 -i 'err' "$tmp/npm.log" || tail -1 "$tmp/npm.log")"
        return 1
    fi
    [ -f "$nodered_js" ] || { NODERED_WHY="npm installed no red.js"; return 1; }
}

bench_nodered() { # CONNS
    local conns=$1 port dir="$tmp/node-red-$1"
    port=$(free_port)
    mkdir -p "$dir"
    cp "$src/bench/baselines/node-red-flow.json" "$dir/flow.json"
    BENCH_PORT=$port BENCH_USERDIR="$dir" BENCH_FLOW="$dir/flow.json" \
        timeout -k 5 "$max_life" node "$nodered_js" \
        --settings "$src/bench/baselines/node-red-settings.js" > "$dir/log" 2>&1 &
    local tpid=$!
    pids+=("$tpid")
    wait_port "$port" "$tpid" || { echo "  node-red: did not start"; cat "$dir/log"; return 1; }
    measure "Node-RED" "$conns" "http://127.0.0.1:$port/hooks/bench" "$(child_of "$tpid")"
    stop_pid "$tpid"
}

BENCH_FAILED=0
echo "== webhook bench: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg); ${dur}s per measurement after ${warmup}s warm-up"
echo "== autorun serve ($ar)"
bench_autorun 1
bench_autorun 64
if [ "${BENCH_BASELINES:-1}" = 0 ]; then
    echo "== baselines skipped (BENCH_BASELINES=0)"
elif command -v node >/dev/null; then
    echo "== plain node http ($(node --version))"
    bench_node 1
    bench_node 64
    echo "== Node-RED"
    NODERED_WHY=""
    if nodered_setup; then
        bench_nodered 1 && bench_nodered 64 || echo "node-red: unavailable (did not start)"
    else
        echo "node-red: unavailable ($NODERED_WHY)"
    fi
else
    echo "node: unavailable (not installed); node http and Node-RED skipped"
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== history check (autorun)"
for c in "${checks[@]}"; do echo "  $c"; done
echo
printf '%-10s %6s %10s %9s %9s %14s  %s\n' system conns "req/s" "p50 ms" "p99 ms" "peak RSS MiB" records
for r in "${results[@]}"; do
    IFS='|' read -r name conns rps p50 p99 rss <<< "$r"
    rec="nothing"
    [ "$name" = autorun ] && rec="every event synced before 202, every run"
    printf '%-10s %6s %10s %9s %9s %14s  %s\n' "$name" "$conns" "$rps" "$p50" "$p99" "$rss" "$rec"
done
exit "$BENCH_FAILED"
