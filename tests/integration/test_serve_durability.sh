#!/bin/bash
# `autorun serve` durability: acknowledged deliveries survive kill -9 and run exactly once (also
# when the sender delivers everything again), runs left running are marked interrupted and
# retried, SIGTERM lets a run finish or interrupts it after --grace, a reload (SIGHUP and an
# edit) loses no queued event and runs the new code afterwards.
. "$(dirname "$0")/lib.sh"

CLIENT="$AR_SOURCE_DIR/tests/servers/http_client.py"
PORT=$(t_free_port)
BASE="http://127.0.0.1:$PORT"
N=200

status_of() { t_sql "SELECT status FROM runs WHERE id=$1"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
post() { # PATH BODY [curl args]: sets CODE and BODY
    local path=$1 body=$2
    shift 2
    BODY=$(curl -s -o - -w '\n%{http_code}' -X POST --data-binary "$body" -H 'Content-Type: application/json' "$@" "$BASE$path")
    CODE=${BODY##*$'\n'}
    BODY=${BODY%$'\n'*}
}
run_id() { printf '%s' "$BODY" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["runId"])'; }

# Counts succeeded runs of recipe sink per delivery id against the sender's log and prints
# one line per violated rule (nothing when all hold). $1: "acked" checks acknowledged ids ran
# exactly once and the others at most once; "all" checks every id ran exactly once.
check_once() {
    /usr/bin/python3 - "$AUTORUN_HOME/history.db" "$T_TMP/acked" "$1" <<'PY'
import collections, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ran = collections.Counter(r[0] for r in db.execute(
    "SELECT json_extract(result, '$.id') FROM runs WHERE recipe='sink' AND status='succeeded'"))
answers = collections.defaultdict(list)
for line in open(sys.argv[2]):
    ident, status = line.split()
    answers[ident].append(status)
bad = []
for ident, st in answers.items():
    acked = any(s in ("202", "200") for s in st)
    n = ran.get(ident, 0)
    if (sys.argv[3] == "all" or acked) and n != 1:
        bad.append("%s (answers %s) ran %d times" % (ident, st, n))
    elif n > 1:
        bad.append("%s (never acknowledged) ran %d times" % (ident, n))
extra = set(ran) - set(answers)
if extra:
    bad.append("runs for ids never sent: %s" % sorted(extra)[:5])
print("\n".join(bad[:10]))
PY
}

# Every recipe is there from the start: the reloads below are the test's own.
t_recipe sink <<'JS'
exports.triggers = [{ webhook: '/hooks/sink', deliveryHeader: 'X-Delivery' }];
exports.retries = { max: 2, backoff: '50ms' };
exports.run = function (event, ctx) {
    sleep(10);
    return { id: event.json.id, attempt: ctx.attempt };
};
JS
t_recipe slowpoke <<'JS'
exports.triggers = [{ webhook: '/hooks/slowpoke' }];
exports.retries = { max: 1, backoff: '10ms' };
exports.run = function (event, ctx) {
    if (ctx.attempt === 1) { sleep(60000); }
    return { attempt: ctx.attempt };
};
JS
t_recipe noretry <<'JS'
exports.triggers = [{ webhook: '/hooks/noretry' }];
exports.run = function () { sleep(60000); };
JS
t_recipe gated <<'JS'
exports.triggers = [{ webhook: '/hooks/gated' }];
exports.run = function (event, ctx) {
    for (;;) {
        try { return { gate: ctx.file('gate.txt').trim() }; } catch (e) { sleep(50); }
    }
};
JS
t_recipe sleeper <<'JS'
exports.triggers = [{ webhook: '/hooks/sleeper' }];
exports.retries = { max: 1, backoff: '10ms' };
exports.run = function (event, ctx) {
    if (ctx.attempt === 1) { sleep(120000); }
    return { attempt: ctx.attempt };
};
JS
t_recipe versioned <<'JS'
exports.triggers = [{ webhook: '/hooks/v' }];
exports.concurrency = 1;
exports.run = function (event, ctx) {
    for (;;) {
        try { ctx.file('gate.txt'); break; } catch (e) { sleep(50); }
    }
    return { v: 1, id: event.json.id };
};
JS

# ---- 1. a stream of deliveries, kill -9 in the middle, restart ----
start_serve
/usr/bin/python3 "$CLIENT" stream "$PORT" /hooks/sink --last $N --acked "$T_TMP/acked" &
SENDER=$!
t_track $SENDER
acked_count() { [ -f "$T_TMP/acked" ] && [ "$(grep -c ' 202$' "$T_TMP/acked")" -ge "$1" ]; }
until_true 300 acked_count 60 || t_fail "the sender gets answers" "$(tail "$LOG")"
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
wait "$SENDER"
ACKED=$(grep -c ' 20[02]$' "$T_TMP/acked")
FAILED=$(grep -c ' fail$' "$T_TMP/acked")
if [ "$ACKED" -ge 60 ] && [ "$ACKED" -lt $N ] && [ "$FAILED" -gt 0 ]; then
    t_pass "kill -9 in the middle of the stream ($ACKED acknowledged, $FAILED not)"
else
    t_fail "kill -9 in the middle of the stream" "acknowledged $ACKED, failed $FAILED"
fi
start_serve
until_true 300 drained || t_fail "the queue drains after the restart" "$(tail "$LOG")"
t_expect_eq "every acknowledged delivery ran exactly once, the others at most once" "$(check_once acked)" ""
t_expect_contains "the restart reports what it found" "$(cat "$LOG")" "interrupted run(s) found"
INT=$(t_sql "SELECT count(*) FROM runs WHERE recipe='sink' AND status='interrupted'")
t_expect_eq "each interrupted sink run has a retry" \
    "$(t_sql "SELECT count(*) FROM runs r WHERE recipe='sink' AND status='interrupted' AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.retry_of=r.id)")" 0
echo "# $INT sink run(s) were running at the kill"

# The sender delivers everything again, as a sender that saw no answer retries.
/usr/bin/python3 "$CLIENT" stream "$PORT" /hooks/sink --last $N --acked "$T_TMP/acked2"
t_expect_eq "every redelivery is answered" "$(grep -c ' 20[02]$' "$T_TMP/acked2")" $N
# An acknowledged id must come back 200 (duplicate); one whose answer the kill cut off may too.
t_expect_eq "every acknowledged id is answered 200 (duplicate) on redelivery" \
    "$(join <(grep ' 202$' "$T_TMP/acked" | sort) <(sort "$T_TMP/acked2") | grep -vc ' 202 200$')" 0
until_true 300 drained || t_fail "the queue drains after the redelivery"
cat "$T_TMP/acked2" >>"$T_TMP/acked"
t_expect_eq "after redelivery every id ran exactly once" "$(check_once all)" ""
t_expect_eq "$N succeeded sink runs in all" "$(t_sql "SELECT count(*) FROM runs WHERE recipe='sink' AND status='succeeded'")" $N

# ---- 2. runs left running by kill -9: interrupted, retried when the recipe allows ----
post /hooks/slowpoke '{}'
SP=$(run_id)
post /hooks/noretry '{}'
NR=$(run_id)
until_true 100 is_status "$SP" running && until_true 100 is_status "$NR" running ||
    t_fail "the runs start" "$(tail "$LOG")"
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
start_serve
RETRY=$(t_sql "SELECT id FROM runs WHERE retry_of=$SP")
t_expect_eq "a run left running is marked interrupted" "$(status_of "$SP")" interrupted
t_expect_eq "without retries it stays interrupted" "$(status_of "$NR"),$(t_sql "SELECT count(*) FROM runs WHERE retry_of=$NR")" "interrupted,0"
if [ -n "$RETRY" ] && until_true 100 is_status "$RETRY" succeeded; then
    t_pass "with retries it runs again and succeeds"
else
    t_fail "with retries it runs again and succeeds" "retry '$RETRY': $(status_of "$RETRY")" "$(tail "$LOG")"
fi
t_expect_eq "the retry is attempt 2" "$(t_sql "SELECT attempt FROM runs WHERE id=$RETRY")" 2

# ---- 3. SIGTERM lets a running run finish ----
post /hooks/gated '{}'
G=$(run_id)
until_true 100 is_status "$G" running || t_fail "the gated run starts"
kill -TERM "$SPID"
until_true 50 grep -q "SIGTERM: stopping" "$LOG"
t_expect_eq "stopping: /healthz says 503" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" 503
post /hooks/gated '{}'
t_expect_eq "stopping: new deliveries get 503" "$CODE" 503
echo open >"$AUTORUN_RECIPES/gate.txt"
wait_exit "$SPID"
t_expect_eq "SIGTERM: the service exits 0 once the run finished" "$EXIT" 0
t_expect_eq "the run in flight finished" "$(status_of "$G")" succeeded
t_expect_eq "the delivery refused while stopping was not queued" "$(t_sql "SELECT count(*) FROM runs WHERE recipe='gated'")" 1
rm -f "$AUTORUN_RECIPES/gate.txt"

# ---- 4. SIGTERM with a short grace interrupts a long run; it is retried at the next start ----
start_serve --grace 1s
post /hooks/sleeper '{}'
SL=$(run_id)
until_true 100 is_status "$SL" running || t_fail "the sleeper starts"
kill -TERM "$SPID"
wait_exit "$SPID"
t_expect_eq "short grace: exit 0 in bounded time" "$EXIT" 0
t_expect_eq "short grace: the run is interrupted" "$(status_of "$SL")" interrupted
t_expect_contains "short grace: the error says why" "$(t_sql "SELECT error FROM runs WHERE id=$SL")" "grace period"
SLR=$(t_sql "SELECT id FROM runs WHERE retry_of=$SL")
t_expect_eq "short grace: a retry is queued for the next start" "$(status_of "$SLR")" queued
start_serve
until_true 100 is_status "$SLR" succeeded && t_pass "the retry runs at the next start" ||
    t_fail "the retry runs at the next start" "$(tail "$LOG")"

# ---- 5. reload while events are queued: nothing lost, new code afterwards ----
for i in 1 2 3; do post /hooks/v "{\"id\":$i}"; t_expect_eq "v1 delivery $i accepted" "$CODE" 202; done
V1=$(t_sql "SELECT min(id) FROM runs WHERE recipe='versioned'")
until_true 100 is_status "$V1" running || t_fail "the first versioned run starts"
kill -HUP "$SPID"
until_true 50 grep -q "once 1 running run(s) finish" "$LOG" || t_fail "the reload waits for the running run" "$(tail "$LOG")"
for i in 4 5; do post /hooks/v "{\"id\":$i}"; t_expect_eq "delivery $i during the reload accepted" "$CODE" 202; done
cat >"$AUTORUN_RECIPES/versioned.js" <<'JS'
exports.triggers = [{ webhook: '/hooks/v' }];
exports.concurrency = 1;
exports.run = function (event) { return { v: 2, id: event.json.id }; };
JS
echo open >"$AUTORUN_RECIPES/gate.txt"
until_true 100 grep -q reloaded "$LOG" || t_fail "the reload happens" "$(tail "$LOG")"
until_true 100 drained || t_fail "the versioned runs drain"
post /hooks/v '{"id":6}'
until_true 100 drained
VERS=$(t_sql "SELECT group_concat(json_extract(result,'$.id') || ':' || json_extract(result,'$.v'), ' ') FROM (SELECT result FROM runs WHERE recipe='versioned' AND status='succeeded' ORDER BY json_extract(result,'$.id'))")
t_expect_eq "no event lost in the reload; the new code runs after it" "$VERS" "1:1 2:2 3:2 4:2 5:2 6:2"
t_expect_eq "no versioned run failed" "$(t_sql "SELECT count(*) FROM runs WHERE recipe='versioned' AND status!='succeeded'")" 0

# ---- 6. a reload that breaks the recipe: its webhook answers 503 (senders retry), not 404 ----
printf 'exports.triggers = [{ webhook: "/hooks/v" }];\nexports.run = function ( {\n' \
    >"$AUTORUN_RECIPES/versioned.js"
RELOADS=$(grep -c reloaded "$LOG")
kill -HUP "$SPID"
reloaded_again() { [ "$(grep -c reloaded "$LOG")" -gt "$RELOADS" ]; }
until_true 100 reloaded_again || t_fail "the reload with a broken recipe happens" "$(tail "$LOG")"
post /hooks/v '{"id":7}'
t_expect_eq "a broken recipe's webhook answers 503" "$CODE" 503
t_expect_contains "the 503 says why" "$BODY" "does not load"
cat >"$AUTORUN_RECIPES/versioned.js" <<'JS'
exports.triggers = [{ webhook: '/hooks/v' }];
exports.run = function (event) { return { v: 3, id: event.json.id }; };
JS
RELOADS=$(grep -c reloaded "$LOG")
kill -HUP "$SPID"
until_true 100 reloaded_again || t_fail "the reload with the fixed recipe happens" "$(tail "$LOG")"
post /hooks/v '{"id":8}'
t_expect_eq "fixed again: the webhook accepts" "$CODE" 202
rm -f "$AUTORUN_RECIPES/versioned.js"
RELOADS=$(grep -c reloaded "$LOG")
kill -HUP "$SPID"
until_true 100 reloaded_again || t_fail "the reload without the recipe happens" "$(tail "$LOG")"
post /hooks/v '{"id":9}'
t_expect_eq "a deleted recipe's webhook answers 404" "$CODE" 404

kill -TERM "$SPID"
wait_exit "$SPID"
t_expect_eq "final SIGTERM: exit 0" "$EXIT" 0
t_expect_eq "no sanitizer report in the service logs" \
    "$(cat "$T_TMP"/serve*.log | grep -cE 'runtime error|Sanitizer')" 0
t_done
