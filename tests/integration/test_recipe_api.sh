#!/usr/bin/env bash
# The recipe globals: secret + redaction, store, template, require, ctx.file, limits.
. "$(dirname "$0")/lib.sh"

# --- secret(): environment, secrets file, redaction everywhere it is written ---
t_recipe usesecret <<'JS'
exports.secrets = ['API_TOKEN'];
exports.run = function (event) {
    var t = secret('API_TOKEN');
    log.info('token is', t, 'and input had', event.echo);
    if (event.fail) { throw new Error('failed with ' + t); }
    return { token: t, fromFile: secret('FILE_ONLY') };
};
JS
mkdir -p "$AUTORUN_HOME" && chmod 700 "$AUTORUN_HOME"
printf '# secrets\nFILE_ONLY=from-the-file-42\n' > "$AUTORUN_HOME/secrets"
chmod 600 "$AUTORUN_HOME/secrets"
export API_TOKEN=tok-9f8e7d6c5b4a
t_run run usesecret --input '{"echo":"tok-9f8e7d6c5b4a"}'
t_expect_rc "secrets from env and file" 0
t_expect_contains "result redacted on stdout" "$OUT" '"token":"***"'
t_expect_contains "file secret redacted too" "$OUT" '"fromFile":"***"'
t_expect_contains "log line redacted on stderr" "$ERR" "token is *** and input had ***"
t_run run usesecret --input '{"fail":true}'
t_expect_rc "failing run with a secret in the error" 1
t_expect_not_contains "error on stderr redacted" "$ERR" "tok-9f8e7d6c5b4a"
sqlite3 "$AUTORUN_HOME/history.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
if grep -a -q -e 'tok-9f8e7d6c5b4a' -e 'from-the-file-42' "$AUTORUN_HOME"/history.db*; then
    t_fail "no secret value anywhere in history.db"
else
    t_pass "no secret value anywhere in history.db"
fi
t_expect_contains "history holds the redacted input" "$(t_sql "SELECT input FROM runs WHERE id=1")" '"echo":"***"'

chmod 644 "$AUTORUN_HOME/secrets"
unset API_TOKEN
t_run run usesecret
t_expect_rc "a readable secrets file fails the run" 1
t_expect_contains "secrets file permissions explained" "$ERR" "readable by group or others"
chmod 600 "$AUTORUN_HOME/secrets"
t_run run usesecret
t_expect_rc "a missing secret fails the run" 1
t_expect_contains "missing secret named" "$ERR" "secret 'API_TOKEN' is not set"
t_run check usesecret
t_expect_rc "check reports the missing secret" 2
t_expect_contains "check names the secret" "$ERR" "API_TOKEN"

# --- store: per recipe, persistent, TTL, dry run keeps nothing ---
t_recipe counter <<'JS'
exports.run = function (event) {
    var n = store.incr('n');
    if (event.ttl) { store.set('short', 'x', { ttl: event.ttl }); }
    if (event.wait) { sleep(event.wait); }
    store.set('obj', { a: [1, 2], n: n });
    return { n: n, obj: store.get('obj'), short: store.get('short', 'gone'), missing: store.get('nope') };
};
JS
t_recipe other <<'JS'
exports.run = function () { return { n: store.get('n', 'none') }; };
JS
t_run run counter
t_run run counter
t_expect_contains "store persists across runs" "$OUT" '"n":2'
t_expect_contains "store keeps JSON values" "$OUT" '"obj":{"a":[1,2],"n":2}'
t_run run other
t_expect_contains "store is per recipe" "$OUT" '"n":"none"'
t_run run counter --dry-run
t_run run counter
t_expect_contains "a dry run does not write the store" "$OUT" '"n":3'
t_run run counter --input '{"ttl":"50ms","wait":200}'
t_expect_contains "TTL expires values" "$OUT" '"short":"gone"'
t_run run counter --input '{"ttl":"1h"}'
t_expect_contains "TTL keeps fresh values" "$OUT" '"short":"x"'

# --- template ---
t_recipe tpl <<'JS'
exports.run = function () {
    var d = { name: 'Zoë <admin>', c: { plan: 'pro' }, n: 0 };
    return { text: template('Hi {{name}}, {{c.plan}} {{n}} {{missing}}.', d),
             html: template('<p>{{name}}</p>{{{name}}}', d, { html: true }) };
};
JS
t_run run tpl
t_expect_contains "template text" "$OUT" '"text":"Hi Zoë <admin>, pro 0 ."'
t_expect_contains "template html escapes" "$OUT" '"html":"<p>Zoë &lt;admin&gt;</p>Zoë <admin>"'

# --- require(): recipe-local modules and plugins; confinement ---
mkdir -p "$AUTORUN_RECIPES/lib" "$T_TMP/plugins"
cat > "$AUTORUN_RECIPES/lib/util.js" <<'JS'
exports.double = function (x) { sleep(1); return x * 2; };
JS
cat > "$T_TMP/plugins/greeter.js" <<'JS'
module.exports = { hi: function (n) { return 'hi ' + n; } };
JS
t_recipe usesreq <<'JS'
var util = require('./lib/util');
var g = require('greeter');
exports.run = function () { return { d: util.double(21), g: g.hi('x'), same: require('./lib/util.js') === util }; };
JS
AUTORUN_PLUGINS="$T_TMP/plugins" t_run run usesreq
t_expect_contains "require of local files and plugins" "$OUT" '{"d":42,"g":"hi x","same":true}'
t_recipe escape <<'JS'
exports.run = function (e, ctx) {
    if (e.how === 'file') { return ctx.file('../../etc/passwd'); }
    if (e.how === 'abs') { return require('/etc/passwd'); }
    return require('../../../etc/hostname');
};
JS
t_run run escape --input '{"how":"file"}'
t_expect_contains "ctx.file cannot leave the recipe directory" "$ERR" "outside the recipe's directory"
t_run run escape --input '{"how":"req"}'
t_expect_contains "require cannot leave the recipe directories" "$ERR" "outside the recipes and plugins directories"
t_run run escape --input '{"how":"abs"}'
t_expect_rc "require of an absolute path fails" 1
t_recipe noplugin <<'JS'
var x = require('doesnotexist');
exports.run = function () {};
JS
t_run run noplugin
t_expect_rc "a missing plugin is a load error" 2
t_expect_contains "missing plugin explained" "$ERR" "require('doesnotexist'): no plugin"

# --- no file system or process access beyond the API ---
t_recipe sandbox <<'JS'
exports.run = function () {
    return { process: typeof process, duktape: typeof Duktape, fs: typeof require === 'function' };
};
JS
t_run run sandbox
t_expect_contains "no process or Duktape globals" "$OUT" '{"process":"undefined","duktape":"undefined","fs":true}'

# --- http, sql and mail load on first use, at a recipe's top level or inside a run ---
t_recipe toplevel <<'JS'
var get = http.get;
exports.run = function () {
    var e = new HttpError('down', { status: 500 });
    return [typeof get, typeof sql.query, typeof mail.send, e instanceof HttpError,
            e instanceof Error, e.status];
};
JS
t_run run toplevel
t_expect_rc "globals read at the top level" 0
t_expect_contains "they are the runtimes" "$OUT" '["function","function","function",true,true,500]'

# A recipe's own global of one of those names stays its own when the runtime loads later.
t_recipe ownstore <<'JS'
store = 'mine';
exports.run = function () {
    return [typeof parallel, typeof template, typeof ParallelError, store, typeof http.get];
};
JS
t_run run ownstore
t_expect_rc "a recipe's own global" 0
t_expect_contains "is kept when parallel() loads" "$OUT" '["function","function","function","mine","function"]'

# --- math: libm is opened on first use, by Duktape's Math and by SQLite's math functions ---
sqlite3 "$T_TMP/math.db" "CREATE TABLE t (x REAL); INSERT INTO t VALUES (2);"
t_recipe math <<'JS'
exports.run = function () {
    var js = [Math.sin(Math.PI / 2), Math.pow(2, 10), Math.log(Math.E), Math.atan2(1, 1) * 4,
              7.5 % 2, Math.sqrt(81), Math.exp(0), Math.cos(0), Math.tan(0), Math.asin(1) * 2,
              Math.acos(1), Math.atan(0)];
    var row = sql.query('math', 'SELECT pow(x, 10) AS p, sqrt(x * 8) AS s, log2(x) AS l,' +
                                ' trunc(x + 0.7) AS t, sinh(0) AS h FROM t')[0];
    return { js: js, sql: [row.p, row.s, row.l, row.t, row.h] };
};
JS
AUTORUN_DB_MATH="sqlite:$T_TMP/math.db" t_run run math
t_expect_rc "math functions work" 0
t_expect_contains "from JavaScript" "$OUT" '"js":[1,1024,1,3.141592653589793,1.5,9,1,1,0,3.141592653589793,0,0]'
t_expect_contains "from SQL" "$OUT" '"sql":[1024,4,1,2,0]'

# --- log volume is bounded ---
t_recipe chatty <<'JS'
exports.run = function () { for (var i = 0; i < 20000; i++) { log.info('line ' + i); } return i; };
JS
"$AUTORUN" run chatty >/dev/null 2>&1
ID=$(t_sql "SELECT max(id) FROM runs WHERE recipe='chatty'")
t_expect_eq "log lines per run are capped" "$(t_sql "SELECT count(*) FROM logs WHERE run_id=$ID")" "10001"

t_done
