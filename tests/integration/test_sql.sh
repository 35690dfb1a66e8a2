#!/bin/bash
# sql against SQLite: the sample customer database built on first use, query/exec/
# transaction, binding, type mapping, errors, dry runs, many waits at once.
. "$(dirname "$0")/lib.sh"

SHOP="$T_TMP/shop.db"
sqlite3 "$SHOP" "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL, flag INTEGER, meta TEXT, at TEXT);"
export AUTORUN_DB_SHOP="sqlite:$SHOP"
shop() { sqlite3 "$SHOP" "$1"; }
run_error() { t_sql "SELECT error FROM runs WHERE id = (SELECT max(id) FROM runs)"; }

# ---- The sample database: built on first use from the repository's script ----
SEED="$AR_SOURCE_DIR/recipes/data/customers.sql"
seed_sum=$(sha256sum "$SEED" | cut -d' ' -f1)
t_recipe nps <<'JS'
exports.run = function (event, ctx) {
  var people = sql.query('customers',
    'SELECT id, name, email FROM customers WHERE solved_at < ? AND nps_sent_at IS NULL ORDER BY id',
    [ctx.daysAgo(7)]);
  var total = sql.query('customers', 'SELECT count(*) AS n FROM customers')[0].n;
  var nonAscii = sql.query('customers', "SELECT name FROM customers WHERE id = 3")[0].name;
  sql.exec('customers', 'UPDATE customers SET nps_sent_at = ? WHERE id = ?', [ctx.now(), people[0].id]);
  return { ids: people.map(function (p) { return p.id; }), total: total, name: nonAscii,
           emails: people.every(function (p) { return /@example\.com$/.test(p.email); }) };
};
JS
t_expect_eq "no sample database before first use" "$(ls "$AUTORUN_HOME"/customers.db 2>/dev/null)" ""
t_run run nps
t_expect_rc "nps-like recipe runs on the sample database" 0
t_expect_eq "six customers solved 7-10 days ago and not surveyed" \
    "$(t_py 'print(doc["ids"], doc["total"], doc["emails"])')" "[3, 8, 14, 21, 30, 42] 50 True"
t_expect_eq "non-ASCII names come back intact" "$(t_py 'print(doc["name"])')" "Zoë Müller"
t_expect_eq "sample database created in the state directory, mode 0600" \
    "$(stat -c %a "$AUTORUN_HOME/customers.db" 2>&1)" "600"
t_run run nps
t_expect_eq "the sample database keeps its changes between runs" \
    "$(t_py 'print(doc["ids"])')" "[8, 14, 21, 30, 42]"
t_expect_eq "the repository copy is unchanged" "$(sha256sum "$SEED" | cut -d' ' -f1)" "$seed_sum"
t_expect_eq "timestamps are ISO 8601 UTC like toISOString()" \
    "$(sqlite3 "$AUTORUN_HOME/customers.db" "SELECT count(*) FROM customers WHERE created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'")" "50"

# ---- query / exec, lastId and changes ----
t_recipe basic <<'JS'
exports.run = function () {
  var a = sql.exec('shop', 'INSERT INTO items (name, qty) VALUES (?, ?)', ['apple', 3]);
  var b = sql.exec('shop', 'INSERT INTO items (name, qty) VALUES (?, ?)', ['pear', 5]);
  var u = sql.exec('shop', 'UPDATE items SET qty = qty + 1');
  var none = sql.exec('shop', 'UPDATE items SET qty = 0 WHERE id = -1');
  var rows = sql.query('shop', 'SELECT id, name, qty FROM items ORDER BY id');
  var empty = sql.query('shop', 'SELECT * FROM items WHERE id = ?', [12345]);
  return { a: a, b: b, u: u, none: none, rows: rows, empty: empty };
};
JS
t_run run basic
t_expect_rc "query/exec run" 0
t_expect_eq "exec returns changes and lastId" "$(t_py 'print(doc["a"], doc["b"]["lastId"], doc["u"], doc["none"])')" \
    "{'changes': 1, 'lastId': 1} 2 {'changes': 2, 'lastId': None} {'changes': 0, 'lastId': None}"
t_expect_eq "query returns row objects" "$(t_py 'print(doc["rows"], doc["empty"])')" \
    "[{'id': 1, 'name': 'apple', 'qty': 4}, {'id': 2, 'name': 'pear', 'qty': 6}] []"
t_expect_eq "each call is a step" \
    "$(t_sql "SELECT kind || '|' || status || '|' || name FROM steps WHERE run_id = (SELECT max(id) FROM runs) AND seq = 1")" \
    "sql|ok|shop: INSERT INTO items (name, qty) VALUES (?, ?)"
t_expect_eq "steps say rows, changes and param count" \
    "$(t_sql "SELECT detail FROM steps WHERE run_id = (SELECT max(id) FROM runs) AND seq IN (1, 5) ORDER BY seq")" \
    '{"db":"shop","engine":"sqlite","statement":"INSERT INTO items (name, qty) VALUES (?, ?)","params":2,"changes":1,"lastId":1}
{"db":"shop","engine":"sqlite","statement":"SELECT id, name, qty FROM items ORDER BY id","params":0,"rows":2}'

# ---- Binding: values in both directions, injection stays data ----
t_recipe types <<'JS'
exports.run = function () {
  var evil = "x'); DROP TABLE items; --";
  sql.exec('shop', 'INSERT INTO items (name, qty, price, flag, meta, at) VALUES (?, ?, ?, ?, ?, ?)',
           [evil, 9007199254740991, 2.5, true, {tags: ['a', 'b']}, new Date(Date.UTC(2026, 10, 23, 9, 0, 0, 5))]);
  sql.exec('shop', 'INSERT INTO items (name, qty, flag, meta) VALUES (?, ?, ?, ?)', ['n', null, false, null]);
  var found = sql.query('shop', 'SELECT name, qty, price, flag, meta, at, typeof(at) AS t FROM items WHERE name = ?', [evil]);
  var lit = sql.query('shop', "SELECT 1 AS i, 2.5 AS r, 'é' AS s, NULL AS n, x'00ff10' AS b, " +
                      "9007199254740993 AS big, -9223372036854775808 AS min, ? AS p", ['?']);
  var n = sql.query('shop', 'SELECT qty, flag, meta FROM items WHERE name = ?', ['n'])[0];
  return { found: found, lit: lit[0], n: n,
           tables: sql.query('shop', "SELECT count(*) AS n FROM sqlite_master WHERE name = 'items'")[0].n };
};
JS
t_run run types
t_expect_rc "binding run" 0
t_expect_eq "an injection attempt is stored as data" "$(t_py 'print(len(doc["found"]), doc["tables"])')" "1 1"
t_expect_eq "values bound: number, real, boolean→1, object→JSON, Date→ISO" \
    "$(t_py 'r = doc["found"][0]; print(r["qty"], r["price"], r["flag"], r["meta"], r["at"], r["t"])')" \
    '9007199254740991 2.5 1 {"tags":["a","b"]} 2026-11-23T09:00:00.005Z text'
t_expect_eq "null and false bound" "$(t_py 'print(doc["n"])')" "{'qty': None, 'flag': 0, 'meta': None}"
t_expect_eq "columns: integer, real, text, null, blob→hex, >2^53→string" \
    "$(t_py 'print(doc["lit"])')" \
    "{'i': 1, 'r': 2.5, 's': 'é', 'n': None, 'b': '00ff10', 'big': '9007199254740993', 'min': '-9223372036854775808', 'p': '?'}"
t_expect_eq "the table is still there" "$(shop "SELECT count(*) FROM items")" "4"

# ---- Transactions: commit, rollback on throw, nested savepoints, parallel inside ----
shop "DELETE FROM items"
t_recipe tx <<'JS'
exports.run = function () {
  var out = {};
  out.value = sql.transaction('shop', function (tx) {
    tx.exec('INSERT INTO items (name) VALUES (?)', ['t1']);
    sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['t2']);
    return 42;
  });
  try {
    sql.transaction('shop', function (tx) {
      tx.exec('INSERT INTO items (name) VALUES (?)', ['gone1']);
      parallel([1, 2, 3], function (i) { sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['gone-p' + i]); });
      throw new Error('changed my mind');
    });
  } catch (e) { out.thrown = e.message; }
  sql.transaction('shop', function () {
    sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['outer']);
    try {
      sql.transaction('shop', function () {
        sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['inner-gone']);
        throw new Error('inner');
      });
    } catch (e) { out.inner = e.message; }
    parallel([1, 2, 3, 4], function (i) { sql.exec('shop', 'INSERT INTO items (name) VALUES (?)', ['p' + i]); });
  });
  out.names = sql.query('shop', 'SELECT name FROM items ORDER BY name').map(function (r) { return r.name; });
  return out;
};
JS
t_run run tx
t_expect_rc "transaction run" 0
t_expect_eq "commit keeps, rollback on throw discards, savepoint undoes only the inner part" \
    "$(t_py 'print(doc["value"], doc["thrown"], doc["inner"], doc["names"])')" \
    "42 changed my mind inner ['outer', 'p1', 'p2', 'p3', 'p4', 't1', 't2']"
t_expect_eq "BEGIN and COMMIT/ROLLBACK are steps" \
    "$(t_sql "SELECT group_concat(name, ',') FROM (SELECT name FROM steps WHERE run_id = (SELECT max(id) FROM runs) AND name IN ('shop: BEGIN', 'shop: COMMIT', 'shop: ROLLBACK') ORDER BY seq)")" \
    "shop: BEGIN,shop: COMMIT,shop: BEGIN,shop: ROLLBACK,shop: BEGIN,shop: COMMIT"

t_recipe tx_throw <<'JS'
exports.run = function () {
  sql.transaction('shop', function (tx) {
    tx.exec("INSERT INTO items (name) VALUES ('never')");
    throw new TypeError('boom inside');
  });
};
JS
t_run run tx_throw
t_expect_rc "an error thrown in a transaction fails the run" 1
t_expect_contains "... with the error fn threw" "$(run_error)" "TypeError: boom inside"
t_expect_eq "... and nothing of it was written" "$(shop "SELECT count(*) FROM items WHERE name = 'never'")" "0"

t_recipe manual_begin <<'JS'
exports.run = function () { sql.exec('shop', 'BEGIN'); };
JS
t_run run manual_begin
t_expect_contains "BEGIN outside sql.transaction() is refused" "$(run_error)" \
    "SqlError: use sql.transaction(db, fn) instead of BEGIN, COMMIT or ROLLBACK (shop)"

# ---- Errors carry the database's message; the process is fine ----
t_recipe typo <<'JS'
exports.run = function () { return sql.query('customers', 'SELECT * FROM custmers'); };
JS
t_run run typo
t_expect_rc "an SQL error fails the run" 1
t_expect_contains "the run's error is the database's message" "$(run_error)" \
    "SqlError: no such table: custmers (customers)"
t_expect_contains "... said on stderr too" "$ERR" "no such table: custmers"
t_expect_eq "the failed call is an error step" \
    "$(t_sql "SELECT status || '|' || error FROM steps WHERE run_id = (SELECT max(id) FROM runs)")" \
    "error|no such table: custmers"

t_recipe caught <<'JS'
exports.run = function () {
  try { sql.exec('shop', 'INSERT INTO items (id, name) VALUES (1, NULL)'); }
  catch (e) { return { name: e.name, message: e.message, db: e.db, code: e.code,
                       isError: e instanceof Error }; }
};
JS
t_run run caught
t_expect_eq "SqlError can be caught, with db and code" "$(t_py 'print(doc)')" \
    "{'name': 'SqlError', 'message': 'NOT NULL constraint failed: items.name (shop)', 'db': 'shop', 'code': 'SQLITE_CONSTRAINT_NOTNULL', 'isError': True}"

t_recipe misuse <<'JS'
exports.run = function () {
  var out = [];
  function tryit(f) { try { f(); out.push('ok'); } catch (e) { out.push(e.name + ': ' + e.message); } }
  tryit(function () { sql.query('shop', 'SELECT 1; DELETE FROM items'); });
  tryit(function () { sql.query('shop', 'SELECT ?, ?', [1]); });
  tryit(function () { sql.query('shop', 'SELECT ?', [undefined]); });
  tryit(function () { sql.query('shop', 'SELECT ?', 5); });
  tryit(function () { sql.query('shop', ''); });
  tryit(function () { sql.query(42, 'SELECT 1'); });
  return out;
};
JS
t_run run misuse
t_expect_eq "misuse is explained" "$(t_py 'print("\n".join(doc))')" \
"SqlError: one statement per call: there is more after the first ';' (shop)
SqlError: the statement has 2 parameters but 1 value was given (shop)
TypeError: sql.query(): parameter 1 is undefined (use null for SQL NULL)
TypeError: sql.query(): params must be an array of values for the ? placeholders
TypeError: sql.query(): the statement must be a non-empty string
TypeError: sql.query(): db must be the name of a database (e.g. 'customers')"
t_expect_eq "nothing was deleted" "$(shop "SELECT count(*) > 0 FROM items")" "1"

t_recipe unknown <<'JS'
exports.run = function () { return sql.query('warehouse', 'SELECT 1'); };
JS
t_run run unknown
t_expect_rc "an unknown database fails the run" 1
t_expect_contains "... saying how to configure it" "$(run_error)" \
    "SqlError: no database 'warehouse' is configured (set AUTORUN_DB_WAREHOUSE=sqlite:PATH or postgres://...)"
t_recipe odd <<'JS'
exports.run = function () { return sql.query('odd', 'SELECT 1'); };
JS
AUTORUN_DB_ODD="mysql://user:secret@db/x" t_run run odd
t_expect_contains "an unsupported URL is refused" "$(run_error)" "database 'odd': unsupported URL 'mysql:...'"
t_expect_not_contains "... without showing its password" "$(run_error)" "secret"

# ---- Dry run: reads happen, writes do not ----
shop "DELETE FROM items; INSERT INTO items (id, name, qty) VALUES (1, 'kept', 1)"
t_recipe dry <<'JS'
exports.run = function (event, ctx) {
  var u = sql.exec('shop', 'UPDATE items SET qty = 99');
  var i = sql.exec('shop', "INSERT INTO items (name) VALUES ('dry')");
  var q = sql.query('shop', 'DELETE FROM items RETURNING *');
  var r = sql.query('shop', 'WITH x AS (SELECT qty FROM items) SELECT qty FROM x');
  var p = sql.query('shop', 'PRAGMA table_info(items)').length;
  return { dryRun: ctx.dryRun, u: u, i: i, q: q, r: r, p: p };
};
JS
t_run run dry --dry-run
t_expect_rc "dry run succeeds" 0
t_expect_eq "writes report dryRun, reads return rows" "$(t_py 'print(doc)')" \
    "{'dryRun': True, 'u': {'changes': 0, 'lastId': None, 'dryRun': True}, 'i': {'changes': 0, 'lastId': None, 'dryRun': True}, 'q': [], 'r': [{'qty': 1}], 'p': 7}"
t_expect_eq "nothing was written" "$(shop "SELECT count(*) || ':' || qty FROM items")" "1:1"
t_expect_eq "skipped writes are dry-run steps" \
    "$(t_sql "SELECT group_concat(status, ',') FROM (SELECT status FROM steps WHERE run_id = (SELECT max(id) FROM runs) ORDER BY seq)")" \
    "dry-run,dry-run,dry-run,ok,ok"

# ---- Many waits at once: parallel() and array callbacks ----
shop "DELETE FROM items"
t_recipe many <<'JS'
exports.run = function () {
  var ids = [];
  for (var i = 0; i < 200; i++) { ids.push(i); }
  parallel(ids, function (i) { sql.exec('shop', 'INSERT INTO items (id, name, qty) VALUES (?, ?, ?)', [i, 'n' + i, i * 2]); },
           { concurrency: 50 });
  var got = parallel(ids, function (i) { return sql.query('shop', 'SELECT qty FROM items WHERE id = ?', [i])[0].qty; },
                     { concurrency: 200 });
  var bad = got.filter(function (q, i) { return q !== i * 2; }).length;
  var viaMap = [5, 6, 7].map(function (i) { return sql.query('shop', 'SELECT name FROM items WHERE id = ?', [i])[0].name; });
  var viaFilter = [1, 2, 3, 4].filter(function (i) { return sql.query('shop', 'SELECT qty FROM items WHERE id = ?', [i])[0].qty > 4; });
  var viaReduce = [10, 20].reduce(function (s, i) { return s + sql.query('shop', 'SELECT qty FROM items WHERE id = ?', [i])[0].qty; }, 0);
  var each = 0;
  [1, 2, 3].forEach(function (i) { each += sql.exec('shop', 'UPDATE items SET name = ? WHERE id = ?', ['e' + i, i]).changes; });
  var some = [1, 2].some(function (i) { return sql.query('shop', 'SELECT name FROM items WHERE id = ?', [i])[0].name === 'e2'; });
  var every = [1, 2, 3].every(function (i) { return sql.query('shop', 'SELECT 1 AS one')[0].one === 1; });
  return { count: got.length, bad: bad, viaMap: viaMap, viaFilter: viaFilter, viaReduce: viaReduce,
           each: each, some: some, every: every };
};
JS
t_run run many
t_expect_rc "parallel over 200 items" 0
t_expect_eq "every concurrent query got its own answer" "$(t_py 'print(doc["count"], doc["bad"])')" "200 0"
t_expect_eq "queries inside map/filter/reduce/forEach/some/every" \
    "$(t_py 'print(doc["viaMap"], doc["viaFilter"], doc["viaReduce"], doc["each"], doc["some"], doc["every"])')" \
    "['n5', 'n6', 'n7'] [3, 4] 60 3 True True"
t_expect_eq "the 200 rows are there" "$(shop "SELECT count(*), sum(qty) FROM items")" "200|39800"
t_expect_eq "every call is a step" \
    "$(t_sql "SELECT count(*) FROM steps WHERE run_id = (SELECT max(id) FROM runs) AND kind = 'sql' AND status = 'ok'")" "417"

# Several processes write the same file at once (WAL, busy timeout).
shop "DELETE FROM items"
t_recipe writer <<'JS'
exports.run = function (event) {
  var ids = [];
  for (var i = 0; i < 50; i++) { ids.push(event.base + i); }
  parallel(ids, function (id) {
    sql.transaction('shop', function (tx) { tx.exec('INSERT INTO items (id, name) VALUES (?, ?)', [id, 'w']); });
  }, { concurrency: 10 });
  return ids.length;
};
JS
pids=()
for base in 1000 2000 3000 4000; do
    AUTORUN_HOME="$T_TMP/home-$base" "$AUTORUN" run writer --input "{\"base\": $base}" >"$T_TMP/w-$base.out" 2>&1 &
    pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
t_expect_eq "four processes writing at once all succeed" "$fails" "0"
t_expect_eq "... and every row is there" "$(shop "SELECT count(*) FROM items")" "200"

# ---- A run that dies inside a transaction releases the database ----
shop "DELETE FROM items"
t_recipe stuck <<'JS'
exports.timeout = '500ms';
exports.run = function () {
  sql.transaction('shop', function (tx) {
    tx.exec("INSERT INTO items (name) VALUES ('half')");
    sleep(60000);
  });
};
JS
t_run run stuck
t_expect_rc "a run timing out in a transaction fails" 1
t_expect_contains "... with TimeoutError" "$(run_error)" "TimeoutError"
t_expect_eq "... and its transaction was rolled back" "$(shop "SELECT count(*) FROM items")" "0"

t_done
