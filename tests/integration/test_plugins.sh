#!/bin/bash
# Native plugins through the real binary: the shipped csv plugin (a customer export read with
# ctx.file() and a report written with csv.format), the tests-only abi_test plugin (every API
# function from a recipe), and the refusal fixtures (another ABI, no entry point, a failing
# open()): each refusal is one line naming the file, the process carries on, other recipes and
# plugins are unaffected. Plugins are loaded only by the runs that require them.
. "$(dirname "$0")/lib.sh"

: "${AR_BUILD_DIR:?AR_BUILD_DIR must point at the build tree}"
# Only the test plugins in the plugins directory: csv.so comes from the build tree's plugins/
# beside the binary, the last place searched.
export AUTORUN_PLUGINS="$T_TMP/plugins"
mkdir -p "$AUTORUN_PLUGINS"
for so in abi_test abi_wrong abi_nosym abi_initfail; do
    cp "$AR_BUILD_DIR/tests/plugins/$so.so" "$AUTORUN_PLUGINS/"
done
unset AUTORUN_PLUGIN_ABI_TEST_GREETING AUTORUN_PLUGIN_CSV_DELIMITER

last_run() { t_sql "SELECT max(id) FROM runs"; }

# ---- csv: a customer export in, a report out ----
printf '\xef\xbb\xbfid,name,email,plan,notes\r\n1,"Smith, Jane",jane@example.com,pro,"said ""great""\r\nand renewed"\r\n2,Bo,bo@example.com,free,\r\n3,Ann,ann@example.com,pro,"VIP, call first"\r\n' \
    > "$AUTORUN_RECIPES/customers.csv"
t_recipe csv-report <<'JS'
var csv = require('csv');
exports.run = function (event, ctx) {
    var customers = csv.parse(ctx.file('customers.csv'), { header: true });
    var pro = customers.filter(function (c) { return c.plan === 'pro'; });
    var report = csv.format(pro.map(function (c) {
        return { id: Number(c.id), name: c.name, notes: c.notes };
    }));
    return {
        count: customers.length,
        first: customers[0],
        report: report,
        back: csv.parse(report),
        semi: csv.format([['a;b', 'c'], [1, null]], { delimiter: ';', eol: '\n' }),
        columns: csv.format([{ b: 2, a: 1 }], { columns: ['a', 'b', 'missing'], header: false }),
        same: require('csv') === csv
    };
};
JS
t_run run csv-report
t_expect_rc "csv recipe succeeds" 0
t_expect_eq "csv: rows with a header become objects" \
    "$(t_py 'print(doc["count"], doc["first"]["name"], repr(doc["first"]["notes"]))')" \
    "3 Smith, Jane 'said \"great\"\\r\\nand renewed'"
t_expect_eq "csv: the report is RFC 4180 text" "$(t_py 'print(repr(doc["report"]))')" \
    "'id,name,notes\\r\\n1,\"Smith, Jane\",\"said \"\"great\"\"\\r\\nand renewed\"\\r\\n3,Ann,\"VIP, call first\"\\r\\n'"
t_expect_eq "csv: the report parses back" "$(t_py 'print(doc["back"][1][2] == doc["first"]["notes"], len(doc["back"]))')" "True 3"
t_expect_eq "csv: delimiter and eol options" "$(t_py 'print(repr(doc["semi"]))')" "'\"a;b\";c\\n1;\\n'"
t_expect_eq "csv: columns and no header" "$(t_py 'print(repr(doc["columns"]))')" "'1,2,\\r\\n'"
t_expect_eq "csv: require() returns the same module" "$(t_py 'print(doc["same"])')" "True"

t_recipe csv-bad <<'JS'
var csv = require('csv');
exports.run = function () { return csv.parse('a,"b\nc,d'); };
JS
t_run run csv-bad
t_expect_rc "csv: a syntax error fails the run" 1
t_expect_contains "csv: the error says where" "$ERR" 'CsvError: csv.parse: line 1: the quoted field opened here never ends'

# The plugin's settings: plugin.csv.delimiter in autorun.conf, the environment wins.
t_recipe csv-setting <<'JS'
exports.run = function () { return require('csv').parse('a;b|c'); };
JS
mkdir -p "$AUTORUN_HOME"
echo 'plugin.csv.delimiter = ;' > "$AUTORUN_HOME/autorun.conf"
t_run run csv-setting
t_expect_eq "settings: plugin.NAME.KEY from autorun.conf" "$OUT" '[["a","b|c"]]'
AUTORUN_PLUGIN_CSV_DELIMITER='|' t_run run csv-setting
t_expect_eq "settings: AUTORUN_PLUGIN_NAME_KEY wins" "$OUT" '[["a;b","c"]]'
rm -f "$AUTORUN_HOME/autorun.conf"

# ---- abi_test: every function of the API from a recipe ----
t_recipe abi <<'JS'
var t = require('abi_test');
function err(f) { try { f(); return 'no error'; } catch (e) { return e.name + ': ' + e.message; } }
exports.run = function () {
    t.log(2, 'careful');
    t.log(0, 'details');
    var r = {
        add: t.add(2, 3.5), concat: t.concat('ab', 'cd'), not: t.not(false),
        nothing: t.nothing(), undef: t.undef() === undefined,
        echo: t.echo({ a: [1, 'x', null, true] }), echoNone: t.echo(),
        types: t.types(1, 'a', null, undefined, [], {}, true, function () {}),
        argTypeError: err(function () { t.add('1', 2); }),
        missingArg: err(function () { t.concat('only'); }),
        thrown: err(function () { t.fail('why'); }),
        code: err(function () { t.failCode(); }),
        badJson: err(function () { t.badJson(); }),
        later: t.later(20, { n: 1, s: 'two' }),
        laterString: t.laterString(5, 'text'),
        rejected: err(function () { t.reject(5, 'no luck'); }),
        now: t.now([1, 2]),
        parallel: parallel([30, 10, 20], function (ms, i) { return t.later(ms, i); }),
        mapped: [5, 1].map(function (ms) { return t.laterString(ms, 'm' + ms); }),
        setting: t.setting('greeting'), unset: t.setting('nothing'),
        alloc: t.alloc(1 << 20), dryRun: t.dryRun(), name: t.name(),
        registerLate: t.registerLate(),
        global: abiGlobal.greet('Ann'), globalRaw: abiGlobal.raw.hello('raw')
    };
    return r;
};
JS
AUTORUN_PLUGIN_ABI_TEST_GREETING='hello there' t_run run abi --json
t_expect_rc "abi: the recipe succeeds" 0
check() { t_expect_eq "abi: $1" "$(t_py "print(json.dumps(doc['result']['$1']))")" "$2"; }
check add 5.5
check concat '"abcd"'
check not true
check nothing null
check undef true
check echo '{"a": [1, "x", null, true]}'
check echoNone null
check types '"number,string,null,undefined,array,object,boolean,function"'
check argTypeError '"TypeError: abi_test.add(): argument 1 must be a number, not a string"'
check missingArg '"TypeError: abi_test.concat(): argument 2 must be a string, not undefined"'
check thrown '"AbiError: failed on purpose: why"'
check code '"PluginError: abi_test.failCode() failed: not enough memory"'
check later '{"n": 1, "s": "two"}'
check laterString '"text"'
check rejected '"AbiError: no luck"'
check now '[1, 2]'
check parallel '[0, 1, 2]'
check mapped '["m5", "m1"]'
check setting '"hello there"'
check unset null
check alloc true
check dryRun false
check name '"abi_test"'
check registerLate -22
check global '"hello Ann!"'
check globalRaw '"hello raw"'
t_expect_contains "abi: invalid JSON from a plugin is an error" "$(t_py "print(doc['result']['badJson'])")" \
    "PluginError: abi_test.badJson() returned invalid JSON"
t_expect_eq "abi: plugin logs go into the run's history with their level" \
    "$(t_sql "SELECT level || ' ' || message FROM logs WHERE run_id = $(last_run) AND message LIKE 'abi_test says%' ORDER BY seq")" \
    "$(printf 'warn abi_test says careful\ndebug abi_test says details')"

t_run run abi --dry-run
t_expect_eq "abi: a dry run is visible to the plugin" "$(t_py "print(doc['dryRun'])")" "True"

# Suspending while the recipe loads is refused; the recipe does not load.
t_recipe abi-load <<'JS'
var v = require('abi_test').later(1, 2);
exports.run = function () { return v; };
JS
t_run run abi-load
t_expect_rc "abi: suspending at load time is a load error" 2
t_expect_contains "abi: ... that says so" "$ERR" "abi_test.later() can only be called while a recipe runs, not while it loads"

# A run aborted while a plugin call is pending: the plugin cancels its work and the process
# exits (a leaked timer would keep it running until ctest's timeout).
t_recipe abi-hang <<'JS'
exports.timeout = '200ms';
exports.run = function () { require('abi_test').hang(); };
JS
t_run run abi-hang
t_expect_rc "abi: a run waiting on a plugin times out" 1
t_expect_contains "abi: ... with a TimeoutError" "$ERR" "TimeoutError"

# ---- Refusals: one line naming the file; the process and other plugins carry on ----
t_recipe refusals <<'JS'
var csv = require('csv');
function why(name) {
    try { require(name); return 'loaded'; } catch (e) { return e.name + ': ' + e.message; }
}
exports.run = function () {
    var r = { wrong: why('abi_wrong'), nosym: why('abi_nosym'), initfail: why('abi_initfail'),
              again: why('abi_wrong'), none: why('abi_none') };
    r.after = csv.format([[require('abi_test').add(1, 1)]]);
    return r;
};
JS
t_run run refusals
t_expect_rc "refusals: the run carries on past every refusal" 0
P="$AUTORUN_PLUGINS"
t_expect_eq "refusals: another ABI" "$(t_py 'print(doc["wrong"])')" \
    "PluginError: $P/abi_wrong.so: built for plugin ABI 2, this autorun has 1"
t_expect_eq "refusals: no entry point" "$(t_py 'print(doc["nosym"])')" \
    "PluginError: $P/abi_nosym.so: not an autorun plugin (no autorun_plugin_init symbol)"
t_expect_eq "refusals: open() failed" "$(t_py 'print(doc["initfail"])')" \
    "PluginError: $P/abi_initfail.so: failed to start: the licence server at 127.0.0.1:9 did not answer"
t_expect_eq "refusals: the same error every time" "$(t_py 'print(doc["again"] == doc["wrong"])')" "True"
t_expect_contains "refusals: no such plugin names both forms" "$(t_py 'print(doc["none"])')" \
    "require('abi_none'): no plugin abi_none.js or abi_none.so in"
t_expect_eq "refusals: other plugins still work" "$(t_py 'print(repr(doc["after"]))')" "'2\\r\\n'"

t_recipe needs-wrong <<'JS'
exports.run = function () { return require('abi_wrong'); };
JS
t_run run needs-wrong
t_expect_rc "refusals: an uncaught refusal fails the run" 1
t_expect_eq "refusals: ... with one line on stderr naming the file" \
    "$(printf '%s\n' "$ERR" | grep -c 'abi_wrong.so: built for plugin ABI 2, this autorun has 1')" "1"
t_expect_eq "refusals: ... and in history" \
    "$(t_sql "SELECT status FROM runs WHERE id = $(last_run)")" "failed"
t_expect_contains "refusals: history holds the error" \
    "$(t_sql "SELECT error FROM runs WHERE id = $(last_run)")" "abi_wrong.so: built for plugin ABI 2"

# A recipe that requires a refused plugin at load time: check and list report it, the others
# are fine.
t_recipe top-wrong <<'JS'
var w = require('abi_initfail');
exports.run = function () { return 1; };
JS
t_run check top-wrong csv-report
t_expect_rc "check: a recipe requiring a refused plugin is a problem" 2
t_expect_contains "check: ... naming the file" "$ERR" "abi_initfail.so: failed to start"
t_expect_not_contains "check: ... and only that recipe" "$ERR" "csv-report"
t_run list
t_expect_rc "list: still lists" 0
t_expect_contains "list: shows the refusal" "$OUT" "abi_initfail.so: failed to start"
t_expect_contains "list: and the other recipes" "$OUT" "csv-report"
t_run run csv-report
t_expect_rc "other recipes are unaffected" 0

# ---- A native poll source behind a poll trigger of `autorun serve` ----
mkdir -p "$T_TMP/serve-recipes"
cat > "$T_TMP/serve-recipes/polled.js" <<'JS'
exports.triggers = [{ poll: 'abi_test.items', every: '1s', backfill: true, tag: 'x' }];
exports.run = function (item) { return item; };
JS
AUTORUN_RECIPES="$T_TMP/serve-recipes" start_serve
for _ in $(seq 1 100); do
    [ "$(t_sql "SELECT count(*) FROM runs WHERE recipe = 'polled' AND status = 'succeeded'")" -ge 4 ] && break
    sleep 0.1
done
stop_serve
serve_clean "poll"
t_expect_eq "poll: each item of the native source fired one run, in order, with the options" \
    "$(t_sql "SELECT result FROM runs WHERE recipe = 'polled' AND status = 'succeeded' ORDER BY id LIMIT 4")" \
    "$(printf '%s\n' '{"id":1,"options":{"tag":"x"}}' '{"id":2,"tag":"tagged"}' '{"id":3,"options":{"tag":"x"}}' '{"id":4,"tag":"tagged"}')"

# ---- Cold start: a run that needs no plugin opens none ----
t_recipe plain <<'JS'
exports.run = function () { return 1; };
JS
LD_DEBUG=files "$AUTORUN" run plain >/dev/null 2>"$T_TMP/ld.log"
t_expect_eq "a run without require() opens no plugin" "$(grep -c -E '(csv|abi_[a-z]+)\.so' "$T_TMP/ld.log")" "0"
LD_DEBUG=files "$AUTORUN" run csv-report >/dev/null 2>"$T_TMP/ld.log"
t_expect_eq "a run that requires csv opens only csv.so" \
    "$(grep -o -E '[a-z_]+\.so \[0\];  dynamically loaded' "$T_TMP/ld.log" | grep -c -E '^(csv|abi_[a-z]+)\.so')" "1"

t_done
