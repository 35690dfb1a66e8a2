#!/bin/bash
# `autorun serve` as a webhook listener: the event a recipe gets, verification (github, with the
# secret from the secrets file), 404/400/413, HEAD, duplicate deliveries, respond: 'result' and
# its 504, keep-alive and pipelining, a slow client cut off by the header timeout, /healthz,
# /metrics, and the process still serving after every bad input.
. "$(dirname "$0")/lib.sh"

CLIENT="$AR_SOURCE_DIR/tests/servers/http_client.py"
export AUTORUN_HTTP_BODY_LIMIT=1K

t_recipe echo <<'JS'
exports.triggers = [
    { webhook: '/hooks/echo', deliveryHeader: 'X-Delivery' },
    { webhook: '/hooks/gh', verify: { scheme: 'github', secret: 'GH_SECRET' } }
];
exports.run = function (event, ctx) {
    return { event: event, trigger: ctx.trigger, runId: ctx.runId };
};
JS
t_recipe result <<'JS'
exports.triggers = [{ webhook: '/hooks/result', respond: 'result', timeout: '1s' }];
exports.run = function (event) {
    if (event.json.sleep) { sleep(event.json.sleep); }
    if (event.json.fail) { throw new Error('asked to fail'); }
    return { doubled: event.json.n * 2 };
};
JS
t_recipe broken-verify <<'JS'
exports.triggers = [{ webhook: '/hooks/nosecret', verify: { scheme: 'github', secret: 'UNSET_SECRET' } }];
exports.run = function () { return 1; };
JS

mkdir -p "$AUTORUN_HOME"
chmod 700 "$AUTORUN_HOME"
printf 'GH_SECRET=gh-s3cret-value\n' >"$AUTORUN_HOME/secrets"
chmod 600 "$AUTORUN_HOME/secrets"

PORT=$(t_free_port)
BASE="http://127.0.0.1:$PORT"
start_serve
if ! t_wait_port "$PORT"; then
    t_done
    exit 1
fi
t_pass "serve listens"

# The slow client starts first: it stalls in its headers while everything below goes on.
/usr/bin/python3 "$CLIENT" slow "$PORT" "$T_TMP/slow.out" --limit 40 &
SLOW=$!
t_track $SLOW

# post PATH BODY [curl args...]: sets CODE and BODY.
post() {
    local path=$1 body=$2
    shift 2
    BODY=$(curl -s -o - -w '\n%{http_code}' -X POST --data-binary "$body" "$@" "$BASE$path")
    CODE=${BODY##*$'\n'}
    BODY=${BODY%$'\n'*}
}
# json EXPR: evaluates a Python expression over BODY parsed as d.
json() { printf '%s' "$BODY" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# wait_status ID STATUS: polls `autorun show` until the run has STATUS (at most ~15 s).
wait_status() {
    local i s
    for i in $(seq 1 150); do
        s=$("$AUTORUN" show "$1" --json 2>/dev/null |
            /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)
        [ "$s" = "$2" ] && return 0
        sleep 0.1
    done
    echo "run $1 is '$s', not '$2'"
    return 1
}
alive() {
    if kill -0 "$SPID" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ]; then
        t_pass "still serving after $1"
    else
        t_fail "still serving after $1" "$(tail -20 "$LOG")"
    fi
}
runs_of() { t_sql "SELECT count(*) FROM runs WHERE recipe='$1'"; }

# ---- 202 and the event ----
post '/hooks/echo/?a=1&a=2&b=x%20y' '{"hello":"wörld","n":[1,2]}' -H 'Content-Type: application/json' \
    -H 'X-Custom: one' -H 'X-Custom: two'
t_expect_eq "accepted: 202" "$CODE" 202
RUN=$(json 'd["runId"]')
t_expect_eq "202 body is exactly {runId}" "$(json 'sorted(d.keys())')" "['runId']"
wait_status "$RUN" succeeded && t_pass "the webhook run succeeds" || t_fail "the webhook run succeeds"
t_run show "$RUN" --json
t_expect_eq "event fields" "$(t_py 'print(sorted(doc["result"]["event"].keys()))')" \
    "['body', 'headers', 'json', 'method', 'path', 'query']"
t_expect_eq "event.method" "$(t_py 'print(doc["result"]["event"]["method"])')" "POST"
t_expect_eq "event.path" "$(t_py 'print(doc["result"]["event"]["path"])')" "/hooks/echo/"
t_expect_eq "event.query (repeated names listed, decoded)" \
    "$(t_py 'print(json.dumps(doc["result"]["event"]["query"], sort_keys=True))')" '{"a": ["1", "2"], "b": "x y"}'
t_expect_eq "event.headers (lower-case names, repeats joined)" \
    "$(t_py 'h=doc["result"]["event"]["headers"]; print(h["x-custom"], h["content-type"])')" "one, two application/json"
t_expect_eq "event.body is the raw text" "$(t_py 'print(doc["result"]["event"]["body"])')" '{"hello":"wörld","n":[1,2]}'
t_expect_eq "event.json is parsed" "$(t_py 'print(doc["result"]["event"]["json"]["hello"], doc["result"]["event"]["json"]["n"])')" "wörld [1, 2]"
t_expect_eq "ctx.trigger is webhook" "$(t_py 'print(doc["trigger"], doc["result"]["trigger"])')" "webhook webhook"

post /hooks/echo 'plain text, not json'
t_expect_eq "a non-JSON body is accepted" "$CODE" 202
RUN=$(json 'd["runId"]')
wait_status "$RUN" succeeded >/dev/null
t_run show "$RUN" --json
t_expect_eq "non-JSON body: json is null" "$(t_py 'print(doc["result"]["event"]["json"])')" "None"

# ---- verification ----
GH_BODY='{"action":"opened","token":"gh-s3cret-value"}'
SIG=$(printf '%s' "$GH_BODY" | /usr/bin/python3 "$CLIENT" sign gh-s3cret-value)
BAD=$(printf '%s' "$GH_BODY" | /usr/bin/python3 "$CLIENT" sign wrong-secret)
N0=$(runs_of echo)
post /hooks/gh "$GH_BODY" -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $BAD" -H 'X-GitHub-Delivery: gh-1'
t_expect_eq "bad github signature: 401" "$CODE" 401
post /hooks/gh "$GH_BODY" -H 'Content-Type: application/json' -H 'X-GitHub-Delivery: gh-1'
t_expect_eq "missing github signature: 401" "$CODE" 401
t_expect_eq "refused deliveries queue nothing" "$(runs_of echo)" "$N0"
post /hooks/gh "$GH_BODY" -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $SIG" -H 'X-GitHub-Delivery: gh-1'
t_expect_eq "good github signature: 202" "$CODE" 202
GH_RUN=$(json 'd["runId"]')
wait_status "$GH_RUN" succeeded && t_pass "verified run succeeds" || t_fail "verified run succeeds"
t_expect_not_contains "the secret is redacted in history" "$(t_sql "SELECT input || result FROM runs WHERE id=$GH_RUN")" "gh-s3cret-value"
post /hooks/gh "$GH_BODY" -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $SIG" -H 'X-GitHub-Delivery: gh-1'
t_expect_eq "github redelivery: 200" "$CODE" 200
t_expect_eq "github redelivery names the first run" "$(json 'd["runId"], d["duplicate"]')" "$GH_RUN True"
post /hooks/nosecret '{}' -H 'Content-Type: application/json'
t_expect_eq "a webhook whose secret is missing answers 500, never runs unverified" "$CODE" 500
t_expect_eq "... and queues nothing" "$(runs_of broken-verify)" 0

# ---- duplicate delivery ids ----
N0=$(runs_of echo)
post /hooks/echo '{"k":1}' -H 'Content-Type: application/json' -H 'X-Delivery: dup-1'
t_expect_eq "first delivery: 202" "$CODE" 202
FIRST=$(json 'd["runId"]')
post /hooks/echo '{"k":1}' -H 'Content-Type: application/json' -H 'X-Delivery: dup-1'
t_expect_eq "repeated delivery id: 200" "$CODE" 200
t_expect_eq "repeated delivery: duplicate with the first run id" "$(json 'd["runId"], d.get("duplicate")')" "$FIRST True"
post /hooks/echo '{"k":1}' -H 'Content-Type: application/json' -H 'X-Delivery: dup-2'
t_expect_eq "another delivery id: 202" "$CODE" 202
wait_status "$(json 'd["runId"]')" succeeded >/dev/null
t_expect_eq "two deliveries, three requests: two runs" "$(runs_of echo)" "$((N0 + 2))"

# ---- bad input ----
post /hooks/nowhere '{}'
t_expect_eq "unknown path: 404" "$CODE" 404
alive "404"
post /hooks/echo '{"a": [1, 2' -H 'Content-Type: application/json'
t_expect_eq "malformed JSON: 400" "$CODE" 400
t_expect_contains "400 says why" "$BODY" "malformed JSON"
post /hooks/echo $'\xff\xfe{}' -H 'Content-Type: application/json'
t_expect_eq "JSON that is not UTF-8: 400" "$CODE" 400
alive "400"
BIG=$(head -c 2000 /dev/zero | tr '\0' 'x')
post /hooks/echo "$BIG"
t_expect_eq "body over http.body_limit (1K): 413" "$CODE" 413
post /hooks/echo "$BIG" -H 'Transfer-Encoding: chunked'
t_expect_eq "chunked body over the limit: 413" "$CODE" 413
alive "413"
N0=$(runs_of echo)
HEAD=$(curl -s -I -o /dev/null -w '%{http_code}' "$BASE/hooks/echo")
t_expect_eq "HEAD on a hook path: 200" "$HEAD" 200
t_expect_eq "HEAD queues nothing" "$(runs_of echo)" "$N0"
t_expect_eq "HEAD on an unknown path: 404" "$(curl -s -I -o /dev/null -w '%{http_code}' "$BASE/hooks/nope")" 404
RAW=$(printf 'THIS IS NOT HTTP\r\n\r\n' | timeout 10 /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode("latin-1").split("\r\n")[0])' "$PORT")
t_expect_contains "garbage request: 400" "$RAW" " 400 "
HUGE=$(head -c 20000 /dev/zero | tr '\0' 'h')
t_expect_eq "huge header: 431" "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Huge: $HUGE" "$BASE/hooks/echo")" 431
alive "garbage and oversized requests"

# ---- respond: 'result' ----
post /hooks/result '{"n":21}' -H 'Content-Type: application/json'
t_expect_eq "respond result: 200" "$CODE" 200
t_expect_eq "respond result: the run's result" "$BODY" '{"doubled":42}'
post /hooks/result '{"n":1,"fail":true}' -H 'Content-Type: application/json'
t_expect_eq "respond result, failed run: 500" "$CODE" 500
t_expect_contains "failed run: the error" "$BODY" "asked to fail"
post /hooks/result '{"n":1,"sleep":4000}' -H 'Content-Type: application/json'
t_expect_eq "run outlives the result timeout: 504" "$CODE" 504
SLOW_RUN=$(json 'd["runId"]')
t_expect_eq "504 names the run, still running" "$(json 'd["status"]')" "running"
wait_status "$SLOW_RUN" succeeded && t_pass "the run behind a 504 still finishes" || t_fail "the run behind a 504 still finishes"

# ---- keep-alive and pipelining ----
PIPE=$(/usr/bin/python3 "$CLIENT" pipeline "$PORT" /hooks/echo 5 2>&1)
OUT=$PIPE
t_expect_eq "pipelined answers in order" "$(t_py 'print([a[0] for a in doc])')" "[202, 202, 202, 202, 202, 200, 200]"
t_expect_eq "pipelined: distinct run ids" "$(t_py 'print(len(set(json.loads(a[1])["runId"] for a in doc[:5])))')" 5
t_expect_eq "pipelined: /healthz answered in line" "$(t_py 'print(json.loads(doc[5][1])["status"])')" ok
t_expect_eq "pipelined: no Connection: close" "$(t_py 'print([a[2] for a in doc])')" "['', '', '', '', '', '', '']"

# ---- /healthz and /metrics ----
BODY=$(curl -s "$BASE/healthz")
t_expect_eq "/healthz status" "$(json 'd["status"]')" ok
t_expect_eq "/healthz counts" "$(json 'd["recipes"], d["webhooks"], d["cronTriggers"]')" "3 4 0"
t_expect_eq "/healthz fields" "$(json 'sorted(d.keys())')" \
    "['cronTriggers', 'queueDepth', 'recipes', 'runsActive', 'status', 'uptimeSeconds', 'version', 'webhooks']"
M=$(curl -s "$BASE/metrics")
t_expect_contains "metrics: runs by recipe and status" "$M" 'autorun_runs_total{recipe="echo",status="succeeded"}'
t_expect_contains "metrics: failed runs" "$M" 'autorun_runs_total{recipe="result",status="failed"} 1'
t_expect_contains "metrics: queue depth" "$M" 'autorun_queue_depth 0'
t_expect_contains "metrics: duration histogram" "$M" 'autorun_run_duration_seconds_bucket{recipe="echo",le="+Inf"}'
t_expect_contains "metrics: histogram count" "$M" 'autorun_run_duration_seconds_count{recipe="result"}'
t_expect_contains "metrics: 404s counted" "$M" 'autorun_webhook_responses_total{code="404"} 2'
t_expect_contains "metrics: 401s counted" "$M" 'autorun_webhook_responses_total{code="401"} 2'
t_expect_contains "metrics: 504 counted" "$M" 'autorun_webhook_responses_total{code="504"} 1'
t_expect_contains "metrics: server-answered errors (413, 431, 400)" "$M" 'autorun_http_protocol_errors_total'
t_expect_eq "metrics: every sample line parses" \
    "$(printf '%s\n' "$M" | grep -v '^#' | grep -cvE '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$')" 0

# ---- the slow client was cut off while the rest went on ----
wait "$SLOW"
SLOW_STATE=$(head -1 "$T_TMP/slow.out")
t_expect_eq "a client stalled in its headers is disconnected" "$SLOW_STATE" closed
t_expect_contains "metrics: the timeout is counted" "$(curl -s "$BASE/metrics")" 'autorun_http_timeouts_total 1'
alive "everything"

stop_serve
serve_clean "SIGTERM"
t_expect_not_contains "the log never holds the secret" "$(cat "$LOG")" "gh-s3cret-value"
t_done
