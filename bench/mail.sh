#!/usr/bin/env bash
# mail.send throughput: N messages (default 5,000) to a local SMTP sink, sent by a recipe with
# parallel(), beside bench/mail_baseline.py (Python smtplib, one connection, sequential) in the
# same run and against the same sink (tests/servers/smtp_sink.py --fast, a minimal asyncio
# responder, so the sink is not what is measured).
# Usage: bench/mail.sh [BUILD_DIR] [MESSAGES] [CONCURRENCY]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
count=${2:-5000}
conc=${3:-32}
ar="$build/autorun"
py=/usr/bin/python3
tmp=$(mktemp -d)
sink_pid=
cleanup() {
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Starts a fresh sink; sets port and sink_pid.
start_sink() {
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
    port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    rm -rf "$tmp/sink"
    $py "$src/tests/servers/smtp_sink.py" --fast --port "$port" --dir "$tmp/sink" --timeout 600 &
    sink_pid=$!
    for _ in $(seq 1 100); do [ -f "$tmp/sink/ready" ] && return 0; sleep 0.1; done
    echo "sink did not start" >&2
    exit 1
}

sink_stat() { $py -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/sink/stats.json" "$1"; }

mkdir -p "$tmp/recipes" "$tmp/home"
cat > "$tmp/recipes/mailbench.js" <<'JS'
exports.timeout = '30m';
exports.run = function (event, ctx) {
    var people = [];
    for (var i = 0; i < event.count; i++) {
        people.push({ id: i, email: 'customer' + i + '@example.com' });
    }
    var text = 'Hello customer {{id}},\n\nOne question: how likely are you to recommend us ' +
               'to a friend?\n';
    var sent = 0;
    parallel(people, function (c) {
        var r = mail.send({
            from: 'Support <support@example.com>', to: c.email,
            subject: 'How likely are you to recommend us? (#' + c.id + ')',
            text: template(text, c),
            idempotencyKey: event.keys ? event.run + ':' + c.id : undefined
        });
        if (r.status === 'sent') { sent++; }
    }, { concurrency: event.concurrency });
    return { sent: sent };
};
JS
export AUTORUN_HOME="$tmp/home" AUTORUN_RECIPES="$tmp/recipes"

echo "== mail: $count messages to a local SMTP sink (autorun: parallel, concurrency $conc)"
start_sink
base=$($py "$src/bench/mail_baseline.py" 127.0.0.1 "$port" "$count")
base_rate=$($py -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["per_second"])' "$base")
base_s=$($py -c 'import json,sys; print("%.2f" % json.loads(sys.argv[1])["seconds"])' "$base")
sleep 0.5
base_msgs=$(sink_stat messages)

run_autorun() { # LABEL KEYS
    start_sink
    export AUTORUN_MAIL_URL="smtp://127.0.0.1:$port"
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$("$ar" run mailbench --input "{\"count\":$count,\"concurrency\":$conc,\"keys\":$2,\"run\":\"$RANDOM$RANDOM\"}" 2>/dev/null)
    t1=$(date +%s.%N)
    sleep 0.5
    local secs rate msgs conns
    secs=$($py -c "print('%.2f' % ($t1 - $t0))")
    rate=$($py -c "print('%.0f' % ($count / ($t1 - $t0)))")
    msgs=$(sink_stat messages)
    conns=$(sink_stat connections)
    printf '%-44s %9s %9s %10s %6s %7s\n' "$1" "$msgs" "$secs" "$rate" "$conns" \
        "$($py -c "print('%.1fx' % ($rate / $base_rate))")"
    case "$out" in *"\"sent\":$count"*) ;; *) echo "  unexpected result: $out" >&2 ;; esac
}

printf '%-44s %9s %9s %10s %6s %7s\n' "sender" "delivered" "seconds" "msgs/s" "conns" "vs base"
printf '%-44s %9s %9s %10s %6s %7s\n' "python smtplib, 1 connection, sequential" "$base_msgs" \
    "$base_s" "$base_rate" "1" "1.0x"
run_autorun "autorun run (whole process, history)" false
run_autorun "autorun run, with idempotency keys" true
