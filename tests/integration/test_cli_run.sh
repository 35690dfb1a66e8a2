#!/usr/bin/env bash
# autorun run: results, input forms, exit statuses, errors, history and show.
. "$(dirname "$0")/lib.sh"

t_recipe greet <<'JS'
exports.description = 'Greets';
exports.run = function (event, ctx) {
    log.info('greeting', event.name);
    console.warn('careful');
    sleep(5);
    return { hello: event.name || 'world', runId: ctx.runId, recipe: ctx.recipe,
             trigger: ctx.trigger, dryRun: ctx.dryRun, attempt: ctx.attempt,
             nowIso: /^\d{4}-\d\d-\d\dT/.test(ctx.now()), beside: ctx.file('greet.txt') };
};
JS
echo "Hello {{name}}" > "$AUTORUN_RECIPES/greet.txt"

t_run run greet --input '{"name":"Ann"}'
t_expect_rc "run succeeds" 0
t_py 'assert doc["hello"] == "Ann" and doc["recipe"] == "greet" and doc["trigger"] == "cli" and doc["dryRun"] is False and doc["attempt"] == 1 and doc["nowIso"] is True and doc["beside"] == "Hello {{name}}\n", doc' \
    && t_pass "result JSON on stdout carries event and ctx" || t_fail "result JSON on stdout carries event and ctx" "$OUT"
t_expect_contains "run id and status on stderr" "$ERR" "run 1 succeeded"
t_expect_contains "logs echoed on stderr" "$ERR" "[greet] greeting Ann"
t_expect_contains "warn level shown" "$ERR" "[greet] warn: careful"

echo '{"name":"File"}' > "$T_TMP/in.json"
t_run run greet --input-file "$T_TMP/in.json"
t_expect_contains "--input-file" "$OUT" '"hello":"File"'
OUT=$(echo '{"name":"Pipe"}' | "$AUTORUN" run greet --input-file - 2>/dev/null)
t_expect_contains "--input-file - reads stdin" "$OUT" '"hello":"Pipe"'
OUT=$(echo '{"name":"Dash"}' | "$AUTORUN" run greet - 2>/dev/null)
t_expect_contains "a lone - reads stdin" "$OUT" '"hello":"Dash"'

t_run run greet --dry-run --json
t_expect_rc "dry run with --json" 0
t_py 'assert doc["status"] == "succeeded" and doc["dryRun"] is True and doc["result"]["dryRun"] is True and isinstance(doc["id"], int)' \
    && t_pass "--json prints one document with id, status, result" || t_fail "--json document" "$OUT"
t_expect_not_contains "--json keeps stdout clean" "$OUT" "[greet]"

t_run run greet --input '{bad json'
t_expect_rc "bad --input JSON exits 2" 2
t_expect_contains "bad --input JSON says so" "$ERR" "--input is not valid JSON"
t_run run greet --input-file "$T_TMP/missing.json"
t_expect_rc "missing --input-file exits 2" 2
t_run run nosuch
t_expect_rc "unknown recipe exits 2" 2
t_expect_contains "unknown recipe named" "$ERR" "unknown recipe 'nosuch'"
t_run run
t_expect_rc "no recipe exits 2" 2
t_run run greet --bogus
t_expect_rc "unknown option exits 2" 2
t_run run ../etc/passwd
t_expect_rc "path as recipe name refused" 2

# Bad recipes: each a clear one-line error with file:line, and the right status.
t_recipe syntax <<'JS'
exports.run = function () {
    var s = 'unterminated;
};
JS
t_run run syntax
t_expect_rc "syntax error exits 2" 2
t_expect_contains "syntax error names file:line" "$ERR" "autorun: $AUTORUN_RECIPES/syntax.js:2: SyntaxError"
t_expect_eq "syntax error is one line" "$(printf '%s\n' "$ERR" | wc -l)" "1"

t_recipe norun <<'JS'
exports.description = 'forgot run';
JS
t_run run norun
t_expect_rc "missing run exits 2" 2
t_expect_contains "missing run explained" "$ERR" "norun.js:1: exports.run is not a function"

t_recipe badtimeout <<'JS'
exports.run = function () {};
exports.timeout = 'soonish';
JS
t_run run badtimeout
t_expect_rc "bad timeout exits 2" 2
t_expect_contains "bad timeout names the line" "$ERR" "badtimeout.js:2: exports.timeout: 'soonish' is not a duration"

t_recipe loadthrow <<'JS'
var x = 1;
throw new Error('cannot start');
JS
t_run run loadthrow
t_expect_rc "throw while loading exits 2" 2
t_expect_contains "throw while loading names file:line" "$ERR" "loadthrow.js:2: Error: cannot start"

t_recipe throws <<'JS'
function inner() { throw new TypeError('bad thing'); }
exports.run = function () {
    inner();
};
JS
t_run run throws
t_expect_rc "a throwing run exits 1" 1
t_expect_contains "the error names file:line" "$ERR" "throws.js:1: TypeError: bad thing"
ID=$(t_sql "SELECT id FROM runs WHERE recipe='throws'")
t_expect_eq "failed run recorded" "$(t_sql "SELECT status FROM runs WHERE id=$ID")" "failed"
t_expect_contains "stack recorded" "$(t_sql "SELECT error_stack FROM runs WHERE id=$ID")" "inner"

t_recipe loops <<'JS'
exports.timeout = '500ms';
exports.run = function () { var i = 0; for (;;) { i++; } };
JS
t_run run loops
t_expect_rc "an endless loop fails its run" 1
t_expect_contains "loop stopped by the timeout" "$ERR" "TimeoutError"

t_recipe sleeps <<'JS'
exports.timeout = '300ms';
exports.run = function () { sleep(60000); return 'never'; };
JS
t_run run sleeps
t_expect_rc "a run waiting past its timeout fails" 1
t_expect_contains "suspended time counts too" "$ERR" "TimeoutError"

t_recipe bomb <<'JS'
exports.run = function () {
    var keep = [];
    for (;;) { keep.push({ i: keep.length, s: 'item ' + keep.length, more: [1, 2, 3] }); }
};
JS
AUTORUN_RUN_HEAP=16M t_run run bomb
t_expect_rc "a heap bomb fails its run" 1
t_expect_contains "heap limit explained" "$ERR" "more than its 16 MiB"

t_recipe badresult <<'JS'
exports.run = function () { var a = {}; a.self = a; return a; };
JS
t_run run badresult
t_expect_rc "an unstorable result fails the run" 1
t_expect_contains "cyclic result explained" "$ERR" "cannot be stored as JSON"

# History: every run above is a row; show prints the parts.
t_run history --limit 100 --json
t_py 'assert len(doc) >= 9 and all("status" in r for r in doc)' \
    && t_pass "history --json lists the runs" || t_fail "history --json" "$OUT"
t_run history greet
t_expect_contains "history table has headers" "$OUT" "ID"
t_expect_contains "history filters by recipe" "$OUT" "greet"
t_expect_not_contains "history filter excludes others" "$OUT" "throws"
t_run history --status failed --json
t_py 'assert doc and all(r["status"] == "failed" for r in doc)' \
    && t_pass "history --status" || t_fail "history --status" "$OUT"
t_run history --since 1h --limit 2 --json
t_py 'assert len(doc) == 2' && t_pass "history --since/--limit" || t_fail "history --since/--limit" "$OUT"
t_run history --status nonsense
t_expect_rc "bad --status exits 2" 2
t_run show 1
t_expect_rc "show succeeds" 0
t_expect_contains "show has the input" "$OUT" '{"name":"Ann"}'
t_expect_contains "show has the logs" "$OUT" "greeting Ann"
t_run show "$ID" --json
t_py 'assert doc["status"] == "failed" and "TypeError" in doc["error"] and "inner" in doc["errorStack"] and doc["logs"] == [] and doc["steps"] == []' \
    && t_pass "show --json" || t_fail "show --json" "$OUT"
t_run show 99999
t_expect_rc "show of a missing run exits 2" 2

# Replay runs the same input again.
t_run replay 1 --json
t_py 'assert doc["status"] == "succeeded" and doc["result"]["hello"] == "Ann"' \
    && t_pass "replay reuses the input" || t_fail "replay" "$OUT"
t_expect_eq "replay recorded" "$(t_sql "SELECT trigger || ':' || replay_of FROM runs ORDER BY id DESC LIMIT 1")" "replay:1"

# Ctrl-C or a TERM during a run: the run is recorded as interrupted and autorun exits 1.
t_recipe sleepy <<'JS'
exports.run = function () { log.info('going to sleep'); sleep(30000); return 'woke'; };
JS
for sig in INT TERM; do
    "$AUTORUN" run sleepy >"$T_TMP/sleepy.out" 2>"$T_TMP/sleepy.err" &
    PID=$!
    wait_sql "SELECT count(*) FROM runs WHERE recipe='sleepy' AND status='running'" 1 \
        || t_fail "SIG$sig: the run started" "$(cat "$T_TMP/sleepy.err")"
    kill -$sig $PID
    wait $PID
    t_expect_eq "SIG$sig: autorun exits 1" "$?" "1"
    t_expect_contains "SIG$sig: stderr says why" "$(cat "$T_TMP/sleepy.err")" "interrupted (SIG$sig)"
    t_expect_eq "SIG$sig: history holds the interrupted run" \
        "$(t_sql "SELECT status || ' ' || error FROM runs WHERE recipe='sleepy' ORDER BY id DESC LIMIT 1")" \
        "interrupted Error: interrupted (SIG$sig)"
done

# State is private: directory 0700, database 0600.
t_expect_eq "state dir is 0700" "$(stat -c %a "$AUTORUN_HOME")" "700"
t_expect_eq "history.db is 0600" "$(stat -c %a "$AUTORUN_HOME/history.db")" "600"
t_expect_eq "history is WAL" "$(t_sql 'PRAGMA journal_mode')" "wal"

t_done
