#!/bin/bash
# http for recipes against a local server (tests/servers/fake_trello.py's /__ helpers): methods,
# query, headers, JSON, auth, gzip, redirects, errors, retries with backoff and Retry-After,
# limits, dry runs, allowHosts, and what history records (steps, redaction).
. "$(dirname "$0")/lib.sh"

FAKE="$AR_SOURCE_DIR/tests/servers/fake_trello.py"
# Fast retries unless a case says otherwise.
export AUTORUN_HTTP_BACKOFF=20ms

# Starts the fake server with extra options; sets PORT and BASE.
start_fake() {
    PORT=$(t_free_port)
    /usr/bin/python3 "$FAKE" "$PORT" --lifetime 280 "$@" >"$T_TMP/fake-$PORT.log" 2>&1 &
    t_track $!
    t_wait_port "$PORT" || echo "fake server did not start: $(cat "$T_TMP/fake-$PORT.log")"
    BASE="http://127.0.0.1:$PORT"
    # Recipes read the server's address with require('./base').
    echo "module.exports = '$BASE';" >"$AUTORUN_RECIPES/base.js"
}

# Evaluates a Python expression over the server's /__stats as d (or /__times?id=X as t).
stats() {
    /usr/bin/python3 -c "import json, urllib.request, sys
d = json.load(urllib.request.urlopen('$BASE/__stats'))
print(eval(sys.argv[1]))" "$1"
}
times_check() { # ID PYTHON-EXPR over t (the server's arrival times in seconds)
    /usr/bin/python3 -c "import json, urllib.request, sys
t = json.load(urllib.request.urlopen('$BASE/__times?id=' + sys.argv[1]))
print(eval(sys.argv[2]))" "$1" "$2"
}

start_fake --boards 1

# ---- Methods, query, headers, JSON, auth, gzip, invalid JSON, redirects, HttpError ----
t_recipe basics <<'JS'
var B = require('./base');
exports.run = function () {
    var out = {};
    var g = http.get(B + '/__echo?x=1', { query: { a: 1, b: 'x y', list: ['p', 'q'], skip: null },
                                          headers: { 'X-Test': 'yes' } });
    out.get = { status: g.status, query: g.json.query, xtest: g.json.headers['x-test'],
                ae: g.json.headers['accept-encoding'], ct: g.headers['content-type'] };
    var p = http.post(B + '/__echo', { json: { hello: 'wörld', n: [1, 2] } });
    out.post = { method: p.json.method, ct: p.json.headers['content-type'], body: p.json.body };
    var u = http.put(B + '/__echo', { body: 'plain text' });
    out.put = { method: u.json.method, ct: u.json.headers['content-type'], body: u.json.body,
                len: u.json.headers['content-length'] };
    var e = http.put(B + '/__echo');
    out.emptyPut = { len: e.json.headers['content-length'], ct: e.json.headers['content-type'] };
    out.patch = http.patch(B + '/__echo', { json: {} }).json.method;
    out.del = http.del(B + '/__echo').json.method;
    out.head = http.request({ method: 'HEAD', url: B + '/__echo' }).status;
    out.bearer = http.get(B + '/__echo', { auth: { bearer: 'tok123' } }).json.headers.authorization;
    out.basic = http.get(B + '/__echo', { auth: { user: 'ann', pass: 'pw' } }).json.headers.authorization;
    var z = http.get(B + '/__gzip');
    out.gzip = { hello: z.json.hello, len: z.body.length, ce: z.headers['content-encoding'] };
    var bad = http.get(B + '/__invalid_json');
    out.invalid = { body: bad.body, json: bad.json };
    var r = http.get(B + '/__redirect', { query: { to: '/__echo?via=redirect' } });
    out.redirect = { status: r.status, via: r.json.query.via, url: r.url };
    var s = http.post(B + '/__redirect', { query: { to: '/__echo', code: 303 }, json: { a: 1 } });
    out.seeOther = s.json.method;
    var nf = http.get(B + '/__status?code=404&id=nf', { throwOnError: false });
    out.noThrow = { status: nf.status, error: nf.json.error };
    try {
        http.get(B + '/__status?code=409&id=c');
    } catch (err) {
        out.err = { isHttp: err instanceof HttpError, isError: err instanceof Error,
                    name: err.name, status: err.status, body: err.body, json: err.json,
                    method: err.method, url: err.url, message: err.message,
                    where: String(err.fileName).replace(/.*\//, '') + ':' + err.lineNumber };
    }
    try { http.get('ftp://127.0.0.1/x'); } catch (err) { out.ftp = String(err); }
    try { http.get(B, { headers: { 'X-Bad': 'a\r\nInjected: 1' } }); } catch (err) { out.crlf = String(err); }
    try { http.get(); } catch (err) { out.nourl = String(err); }
    return out;
};
JS
t_run run basics
t_expect_rc "basics: run succeeds" 0
CHECK=$(t_py '
r = doc
assert r["get"]["status"] == 200, r["get"]
assert r["get"]["query"] == {"x": ["1"], "a": ["1"], "b": ["x y"], "list": ["p", "q"]}, r["get"]
assert r["get"]["xtest"] == "yes" and "gzip" in r["get"]["ae"], r["get"]
assert r["get"]["ct"].startswith("application/json"), r["get"]
assert r["post"] == {"method": "POST", "ct": "application/json",
                     "body": "{\"hello\":\"w\u00f6rld\",\"n\":[1,2]}"}, r["post"]
assert r["put"]["method"] == "PUT" and r["put"]["body"] == "plain text", r["put"]
assert r["put"]["ct"].startswith("text/plain") and r["put"]["len"] == "10", r["put"]
assert r["emptyPut"]["len"] == "0" and "ct" not in r["emptyPut"], r["emptyPut"]
assert r["patch"] == "PATCH" and r["del"] == "DELETE" and r["head"] == 200, r
assert r["bearer"] == "Bearer tok123", r["bearer"]
assert r["basic"] == "Basic YW5uOnB3", r["basic"]
assert r["gzip"]["hello"] == "world" and r["gzip"]["len"] > 5000, r["gzip"]
assert r["gzip"]["ce"] == "gzip", r["gzip"]
assert r["invalid"] == {"body": "{\"not\": json", "json": None}, r["invalid"]
assert r["redirect"]["status"] == 200 and r["redirect"]["via"] == ["redirect"], r["redirect"]
assert r["redirect"]["url"].endswith("/__echo?via=redirect"), r["redirect"]
assert r["seeOther"] == "GET", r["seeOther"]
assert r["noThrow"] == {"status": 404, "error": "injected"}, r["noThrow"]
e = r["err"]
assert e["isHttp"] and e["isError"] and e["name"] == "HttpError", e
assert e["status"] == 409 and e["json"]["error"] == "injected" and "injected" in e["body"], e
assert e["method"] == "GET" and e["url"].endswith("/__status?code=409&id=c"), e
assert e["message"].startswith("409 Conflict from 127.0.0.1:"), e
assert "(GET /__status)" in e["message"], e
assert e["where"].startswith("basics.js:"), e
assert "TypeError" in r["ftp"] and "not an http or https URL" in r["ftp"], r["ftp"]
assert "TypeError" in r["crlf"] and "line break" in r["crlf"], r["crlf"]
assert "TypeError" in r["nourl"], r["nourl"]
print("ok")' 2>&1)
t_expect_eq "basics: methods, query, headers, JSON, auth, gzip, redirects, HttpError" "$CHECK" "ok"
t_expect_eq "basics: the server sent gzip" "$(stats 'd["gzip_sent"]')" "1"

# ---- History: one step per call, with status, attempts and truncated excerpts ----
t_recipe steps <<'JS'
var B = require('./base');
exports.run = function () {
    http.get(B + '/__big?bytes=10000');
    http.post(B + '/__echo', { body: new Array(5001).join('y') });
    return 'ok';
};
JS
t_run run steps
RUN=$(printf '%s' "$ERR" | sed -n 's/^run \([0-9]*\) .*/\1/p')
t_expect_eq "steps: two http steps" \
    "$(t_sql "SELECT kind, status, attempts FROM steps WHERE run_id=$RUN ORDER BY seq" | tr '\n' ' ')" \
    "http|200|1 http|200|1 "
t_expect_contains "steps: name is method and URL" \
    "$(t_sql "SELECT name FROM steps WHERE run_id=$RUN AND seq=1")" "GET http://127.0.0.1:$PORT/__big?bytes=10000"
CHECK=$(t_sql "SELECT detail FROM steps WHERE run_id=$RUN ORDER BY seq" | /usr/bin/python3 -c '
import json, sys
a, b = [json.loads(l) for l in sys.stdin]
assert a["response"]["status"] == 200 and a["response"]["bytes"] == 10000, a
assert len(a["response"]["body"]) == 2048 and a["response"]["truncated"] is True, a
assert a["response"]["contentType"] == "text/plain", a
assert b["request"]["bytes"] == 5000 and len(b["request"]["body"]) == 2048, b
assert b["request"]["truncated"] is True, b
print("ok")' 2>&1)
t_expect_eq "steps: detail holds excerpts of at most 2 KiB" "$CHECK" "ok"
DUR=$(t_sql "SELECT duration_ms > 0 AND started_at > 0 FROM steps WHERE run_id=$RUN AND seq=1")
t_expect_eq "steps: timing recorded" "$DUR" "1"

# ---- Retries: 5xx then success; the attempts are in the step ----
t_recipe flaky <<'JS'
var B = require('./base');
exports.run = function () {
    var r = http.get(B + '/__status?code=503&times=2&id=flaky');
    return { status: r.status, attempts: r.attempts, hits: r.json.hits };
};
JS
t_run run flaky
t_expect_rc "5xx then success: run succeeds" 0
t_expect_eq "5xx then success: third attempt answered" "$(t_py 'print(doc["status"], doc["attempts"], doc["hits"])')" "200 3 3"
RUN=$(printf '%s' "$ERR" | sed -n 's/^run \([0-9]*\) .*/\1/p')
t_expect_eq "5xx then success: step has 3 attempts" \
    "$(t_sql "SELECT status, attempts FROM steps WHERE run_id=$RUN")" "200|3"
t_expect_contains "5xx then success: detail lists the retries" \
    "$(t_sql "SELECT detail FROM steps WHERE run_id=$RUN")" '"retries":[{"attempt":1,"status":503,'

# ---- Retry-After (seconds and HTTP-date) is honoured, on the server's clock ----
t_recipe retry_after <<'JS'
var B = require('./base');
exports.run = function (ev) {
    return http.get(B + '/__status?code=' + ev.code + '&times=1&id=' + ev.id +
                    '&' + ev.arg).status;
};
JS
# A long backoff shows that the server's Retry-After, not the backoff, set the wait.
AUTORUN_HTTP_BACKOFF=60s t_run run retry_after --input '{"code":429,"id":"ra1","arg":"retry_after=1"}'
t_expect_rc "Retry-After seconds: run succeeds" 0
t_expect_eq "Retry-After seconds: two requests" "$(times_check ra1 'len(t)')" "2"
t_expect_eq "Retry-After seconds: the server saw the wait" "$(times_check ra1 '0.95 <= t[1] - t[0] < 20')" "True"
AUTORUN_HTTP_BACKOFF=60s t_run run retry_after --input '{"code":503,"id":"ra2","arg":"retry_date=2"}'
t_expect_rc "Retry-After date: run succeeds" 0
t_expect_eq "Retry-After date: the server saw the wait" "$(times_check ra2 'len(t) == 2 and 1.5 <= t[1] - t[0] < 20')" "True"

# ---- Giving up: clear error after N attempts, the server saw exactly N ----
t_recipe give_up <<'JS'
var B = require('./base');
exports.run = function (ev) {
    var opts = ev.attempts ? { attempts: ev.attempts } : {};
    if (ev.method === 'POST') { return http.post(B + '/__status?code=' + ev.code + '&id=' + ev.id, opts); }
    var r = http.get(B + '/__status?code=' + ev.code + '&id=' + ev.id, opts);
    return r.status;
};
JS
t_run run give_up --input '{"code":429,"id":"g1","attempts":3}'
t_expect_rc "give up: run fails" 1
t_expect_contains "give up: clear error" "$ERR" "HttpError: 429 Too Many Requests from 127.0.0.1:$PORT after 3 attempts (GET /__status)"
t_expect_contains "give up: error points at the recipe line" "$ERR" "give_up.js:5: HttpError"
t_expect_eq "give up: the server saw 3 attempts" "$(times_check g1 'len(t)')" "3"
t_run run give_up --input '{"code":500,"id":"g2"}'
t_expect_eq "give up: default is 4 attempts" "$(times_check g2 'len(t)')" "4"
AUTORUN_HTTP_ATTEMPTS=2 t_run run give_up --input '{"code":502,"id":"g3"}'
t_expect_eq "give up: http.attempts setting" "$(times_check g3 'len(t)')" "2"
t_run run give_up --input '{"code":500,"id":"g4","method":"POST"}'
t_expect_eq "give up: a POST is not repeated after a 500" "$(times_check g4 'len(t)')" "1"
t_run run give_up --input '{"code":503,"id":"g5","method":"POST","attempts":2}'
t_expect_eq "give up: a POST is repeated after a 503" "$(times_check g5 'len(t)')" "2"
t_run run give_up --input '{"code":400,"id":"g6"}'
t_expect_eq "give up: a 400 is not repeated" "$(times_check g6 'len(t)')" "1"

# ---- Unreachable host (a closed port) ----
CLOSED=$(t_free_port)
t_recipe unreachable <<JS
exports.run = function () { return http.get('http://127.0.0.1:$CLOSED/x'); };
JS
t_run run unreachable
t_expect_rc "unreachable: run fails" 1
t_expect_contains "unreachable: clear error" "$ERR" "HttpError: cannot connect to 127.0.0.1:$CLOSED after 4 attempts (GET /x)"
RUN=$(t_sql "SELECT max(id) FROM runs")
t_expect_eq "unreachable: step records the error and 4 attempts" \
    "$(t_sql "SELECT status, attempts, error LIKE 'cannot connect%' FROM steps WHERE run_id=$RUN")" "error|4|1"

# ---- Timeout ----
t_recipe timeout <<'JS'
var B = require('./base');
exports.run = function () { return http.get(B + '/__slow?ms=5000', { timeout: 300, retries: 0 }); };
JS
t_run run timeout
t_expect_rc "timeout: run fails" 1
t_expect_contains "timeout: clear error" "$ERR" "HttpError: timed out after 300 ms waiting for 127.0.0.1:$PORT (GET /__slow)"

# ---- Response body over the limit ----
t_recipe big <<'JS'
var B = require('./base');
exports.run = function (ev) { return http.get(B + '/__big?bytes=' + ev.n).body.length; };
JS
AUTORUN_HTTP_RESPONSE_LIMIT=64K t_run run big --input '{"n":65536}'
t_expect_eq "response limit: a body at the limit is kept" "$OUT" "65536"
AUTORUN_HTTP_RESPONSE_LIMIT=64K t_run run big --input '{"n":200000}'
t_expect_rc "response limit: over it the run fails" 1
t_expect_contains "response limit: clear error" "$ERR" "is larger than http.response_limit (64 KiB)"

# ---- allowHosts ----
BEFORE=$(stats 'd["test_requests"]')
t_recipe allow <<'JS'
var B = require('./base');
exports.allowHosts = ['api.example.com', '*.trello.com'];
exports.run = function () { return http.post(B + '/__echo', { json: {} }).status; };
JS
t_run run allow
t_expect_rc "allowHosts: run fails" 1
t_expect_contains "allowHosts: clear error" "$ERR" "HttpError: host 127.0.0.1 is not in this recipe's allowHosts"
t_expect_eq "allowHosts: nothing was sent" "$(stats 'd["test_requests"]')" "$BEFORE"
t_recipe allow_ok <<JS
var B = require('./base');
exports.allowHosts = ['127.0.0.1:$PORT'];
exports.run = function () {
    var ok = http.get(B + '/__echo').status;
    try {
        http.get(B + '/__redirect', { query: { to: 'http://localhost:$PORT/__echo' } });
        return 'followed';
    } catch (e) { return ok + ' ' + e.message; }
};
JS
t_run run allow_ok
t_expect_contains "allowHosts: a listed host:port works; a redirect elsewhere is refused" "$OUT" \
    "200 127.0.0.1:$PORT (GET /__redirect) redirects to host localhost, which is not in this recipe's allowHosts"

# ---- Dry run: reads happen, writes are recorded and not sent ----
t_recipe dry <<'JS'
var B = require('./base');
exports.run = function (ev, ctx) {
    var g = http.get(B + '/__echo?dry=read');
    var p = http.post(B + '/__echo?dry=write', { json: { a: 1 } });
    http.put(B + '/__echo?dry=write');
    http.del(B + '/__echo?dry=write');
    return { read: g.status, post: p, dryRun: ctx.dryRun };
};
JS
BEFORE=$(stats 'd["test_requests"]')
t_run run dry --dry-run
t_expect_rc "dry run: run succeeds" 0
t_expect_eq "dry run: result says so" "$(t_py 'print(doc["read"], doc["post"], doc["dryRun"])')" \
    "200 {'status': 0, 'dryRun': True, 'body': '', 'json': None, 'headers': {}} True"
t_expect_eq "dry run: only the GET reached the server" "$(stats 'd["test_requests"]')" "$((BEFORE + 1))"
RUN=$(t_sql "SELECT max(id) FROM runs")
t_expect_eq "dry run: every call is a step" \
    "$(t_sql "SELECT group_concat(substr(name, 1, instr(name, ' ') - 1) || ':' || status, ' ') FROM (SELECT name, status FROM steps WHERE run_id=$RUN ORDER BY seq)")" \
    "GET:200 POST:dry-run PUT:dry-run DELETE:dry-run"
t_expect_contains "dry run: the step says what would have been sent" \
    "$(t_sql "SELECT detail FROM steps WHERE run_id=$RUN AND seq=2")" '"body":"{\"a\":1}"'

# ---- Secrets never reach history, plain or URL-encoded ----
export API_TOKEN='s3cr3t tok+en/XYZ'
t_recipe secretive <<'JS'
var B = require('./base');
exports.run = function () {
    var t = secret('API_TOKEN');
    http.get(B + '/__echo', { query: { token: t }, auth: { bearer: t } });
    http.post(B + '/__echo', { json: { token: t } });
    try { http.get(B + '/__status?code=400&id=s', { query: { token: t } }); }
    catch (e) { log.info(e.message); return e.url.indexOf('token=s3cr3t%20tok%2Ben%2FXYZ') > 0; }
};
JS
t_run run secretive
t_expect_rc "secrets: run succeeds" 0
t_expect_eq "secrets: the recipe sees the real URL" "$OUT" "true"
RUN=$(t_sql "SELECT max(id) FROM runs")
t_expect_contains "secrets: step names are redacted" "$(t_sql "SELECT name FROM steps WHERE run_id=$RUN AND seq=1")" "token=***"
sqlite3 "$AUTORUN_HOME/history.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
LEAKS=$(cat "$AUTORUN_HOME"/history.db* | grep -a -c -e 's3cr3t' -e 'tok%2Ben')
t_expect_eq "secrets: no trace of the token in history.db" "$LEAKS" "0"

# ---- Per-host concurrency and rate limits ----
t_recipe conc <<'JS'
var B = require('./base');
http.limit(B, { concurrency: 3 });
exports.run = function () {
    return parallel([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], function () {
        return http.get(B + '/__slow?ms=150').status;
    }, { concurrency: 12 }).filter(function (s) { return s === 200; }).length;
};
JS
start_fake --boards 1
t_run run conc
t_expect_eq "host concurrency: all 12 done" "$OUT" "12"
t_expect_eq "host concurrency: the server never saw more than 3 at once" "$(stats 'd["max_concurrency"]')" "3"

start_fake --boards 1
AUTORUN_HTTP_LIMITS="127.0.0.1:$PORT concurrency=2; example.com rate=10/1s" t_run run conc
t_expect_eq "http.limits: all 12 done" "$OUT" "12"
t_expect_eq "http.limits: the setting wins over the recipe's http.limit" "$(stats 'd["max_concurrency"]')" "2"

t_recipe unlimited <<'JS'
var B = require('./base');
exports.run = function () {
    parallel([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], function () {
        http.get(B + '/__slow?ms=300');
    }, { concurrency: 12 });
};
JS
start_fake --boards 1
t_run run unlimited
t_expect_eq "host concurrency: without a limit the requests overlap" "$(stats 'd["max_concurrency"] > 3')" "True"

AUTORUN_HTTP_LIMITS="127.0.0.1 speed=3" t_run run unlimited
t_expect_rc "http.limits: a bad setting fails the run" 1
t_expect_contains "http.limits: clear error" "$ERR" "setting http.limits: 'speed=3'"

t_recipe rate <<'JS'
var B = require('./base');
http.limit(B, { rate: 4, per: '1s' });
exports.run = function () {
    return parallel([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], function () {
        return http.get(B + '/__status?code=200&id=rate').status;
    }, { concurrency: 10 }).join(',');
};
JS
t_run run rate
t_expect_eq "rate limit: all succeed" "$OUT" '"200,200,200,200,200,200,200,200,200,200"' 
t_expect_eq "rate limit: no 1 s window on the server held more than 4" \
    "$(times_check rate 'len(t) == 10 and all(t[i + 4] - t[i] >= 1.0 for i in range(len(t) - 4))')" "True"

t_done
