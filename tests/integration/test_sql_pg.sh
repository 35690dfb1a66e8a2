#!/bin/bash
# sql against a real PostgreSQL server that this test starts (tests/servers/pg.sh):
# query/exec/transaction, '?' and $n, type mapping, errors, dry runs, the pool under
# many concurrent waits, connection failures. Fails when PostgreSQL cannot start.
. "$(dirname "$0")/lib.sh"

PG_DIR=""
pg_stop() { [ -n "$PG_DIR" ] && bash "$AR_SOURCE_DIR/tests/servers/pg.sh" stop "$PG_DIR"; }
trap 'pg_stop; t_cleanup' EXIT
if ! started=$(bash "$AR_SOURCE_DIR/tests/servers/pg.sh" start); then
    t_fail "PostgreSQL starts (install Debian's postgresql package)"
    t_done
    exit 1
fi
eval "$started"
export AUTORUN_DB_CRM="$PG_URL"
PG_PORT=${PG_URL##*:}
PG_PORT=${PG_PORT%%/*}
run_error() { t_sql "SELECT error FROM runs WHERE id = (SELECT max(id) FROM runs)"; }
steps_of_last() { t_sql "SELECT group_concat(status, ',') FROM (SELECT status FROM steps WHERE run_id = (SELECT max(id) FROM runs) ORDER BY seq)"; }

# ---- Schema, query/exec, ? and $n ----
t_recipe setup <<'JS'
exports.run = function () {
  sql.exec('crm', 'DROP TABLE IF EXISTS people');
  sql.exec('crm', 'CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, small int2, ' +
           'n int4, big int8, score numeric, huge numeric, f float8, ok boolean, meta jsonb, ' +
           'doc json, seen timestamptz, plain timestamp, born date, raw bytea, code varchar(10))');
  var a = sql.exec('crm', 'INSERT INTO people (name) VALUES (?)', ['Ada']);
  var b = sql.exec('crm', 'INSERT INTO people (name) VALUES ($1) RETURNING id, name', ['Grace']);
  var u = sql.exec('crm', 'UPDATE people SET n = ? WHERE id <= ?', [7, 2]);
  var lit = sql.query('crm', "SELECT '?' AS q, 'it''s ?' AS r, ? AS v, $$?$$ AS d", ['x']);
  return { a: a, b: b, u: u, lit: lit[0],
           rows: sql.query('crm', 'SELECT id, name, n FROM people ORDER BY id') };
};
JS
t_run run setup
t_expect_rc "DDL, query and exec on PostgreSQL" 0
t_expect_eq "exec: changes, RETURNING rows, lastId from RETURNING" "$(t_py 'print(doc["a"], doc["b"], doc["u"])')" \
    "{'changes': 1, 'lastId': None} {'changes': 1, 'lastId': 2, 'rows': [{'id': 2, 'name': 'Grace'}]} {'changes': 2, 'lastId': None}"
t_expect_eq "? becomes \$n outside literals only" "$(t_py 'print(doc["lit"])')" \
    "{'q': '?', 'r': \"it's ?\", 'v': 'x', 'd': '?'}"
t_expect_eq "rows as objects" "$(t_py 'print(doc["rows"])')" \
    "[{'id': 1, 'name': 'Ada', 'n': 7}, {'id': 2, 'name': 'Grace', 'n': 7}]"
t_expect_eq "steps name the postgres engine" \
    "$(t_sql "SELECT json_extract(detail, '$.engine') || '|' || name FROM steps WHERE run_id = (SELECT max(id) FROM runs) AND seq = 3")" \
    "postgres|crm: INSERT INTO people (name) VALUES (?)"

# ---- Types both ways, injection stays data ----
t_recipe types <<'JS'
exports.run = function () {
  var evil = "Robert'); DROP TABLE people; --";
  sql.exec('crm', 'INSERT INTO people (name, small, n, big, score, huge, f, ok, meta, doc, seen, plain, born, raw, code) ' +
           'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
           [evil, 12, -5, '9223372036854775807', 12.5, '12345678901234567890.123', 0.1, true,
            {tags: ['a', 'é'], n: 1}, [1, 'two'], new Date(Date.UTC(2026, 10, 23, 9, 30, 0, 250)),
            '2026-11-23 10:00:00', '2026-02-28', '\\x00ff10', 'ü']);
  var r = sql.query('crm', 'SELECT small, n, big, score, huge, f, ok, meta, doc, seen, plain, born, raw, code, ' +
                    'NULL::text AS nothing, 9007199254740993::int8 AS over, 1.5::float4 AS f4 FROM people WHERE name = ?', [evil]);
  var flags = sql.query('crm', 'SELECT ?::boolean AS t, ? AS f, ?::int + 1 AS i', [true, false, 41])[0];
  return { count: r.length, row: r[0], flags: flags,
           still: sql.query('crm', "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'people'")[0].n };
};
JS
t_run run types
t_expect_rc "types run" 0
t_expect_eq "an injection attempt is stored as data" "$(t_py 'print(doc["count"], doc["still"])')" "1 1"
t_expect_eq "int2/int4/int8 → numbers, int8 beyond 2^53 → string" \
    "$(t_py 'r = doc["row"]; print(r["small"], r["n"], r["big"], r["over"])')" \
    "12 -5 9223372036854775807 9007199254740993"
t_expect_eq "numeric → number when exact, else string; float4/8 → number" \
    "$(t_py 'r = doc["row"]; print(repr(r["score"]), repr(r["huge"]), r["f"], r["f4"])')" \
    "12.5 '12345678901234567890.123' 0.1 1.5"
t_expect_eq "bool → boolean, json/jsonb → parsed" \
    "$(t_py 'r = doc["row"]; print(r["ok"], r["meta"], r["doc"])')" \
    "True {'n': 1, 'tags': ['a', 'é']} [1, 'two']"
t_expect_eq "timestamptz/timestamp → ISO UTC, date → YYYY-MM-DD" \
    "$(t_py 'r = doc["row"]; print(r["seen"], r["plain"], r["born"])')" \
    "2026-11-23T09:30:00.250Z 2026-11-23T10:00:00.000Z 2026-02-28"
t_expect_eq "bytea → hex, varchar/text → string, NULL → null" \
    "$(t_py 'r = doc["row"]; print(r["raw"], r["code"], r["nothing"])')" "00ff10 ü None"
t_expect_eq "booleans bind as bool" "$(t_py 'print(doc["flags"])')" "{'t': True, 'f': False, 'i': 42}"

# ---- Transactions ----
t_recipe tx <<'JS'
exports.run = function () {
  var out = {};
  sql.exec('crm', 'DELETE FROM people');
  out.value = sql.transaction('crm', function (tx) {
    parallel([1, 2, 3, 4, 5, 6], function (i) { tx.exec('INSERT INTO people (name) VALUES (?)', ['c' + i]); });
    /* Inside the transaction, its own uncommitted rows are visible. */
    return sql.query('crm', 'SELECT count(*) AS n FROM people')[0].n;
  });
  try {
    sql.transaction('crm', function (tx) {
      tx.exec("INSERT INTO people (name) VALUES ('gone')");
      sql.transaction('crm', function () { sql.exec('crm', "INSERT INTO people (name) VALUES ('gone-too')"); });
      throw new Error('no thanks');
    });
  } catch (e) { out.thrown = e.message; }
  sql.transaction('crm', function () {
    sql.exec('crm', "INSERT INTO people (name) VALUES ('outer')");
    try {
      sql.transaction('crm', function () {
        sql.exec('crm', "INSERT INTO people (name) VALUES ('inner-gone')");
        sql.exec('crm', 'SELECT * FROM nowhere');
      });
    } catch (e) { out.inner = e.message; }
  });
  try {
    sql.transaction('crm', function () {
      sql.exec('crm', "INSERT INTO people (name) VALUES ('doomed')");
      try { sql.exec('crm', 'SELECT 1/0'); } catch (e) { out.swallowed = e.code; }
    });
  } catch (e) { out.commit = e.message; }
  out.names = sql.query('crm', 'SELECT name FROM people ORDER BY name').map(function (r) { return r.name; });
  return out;
};
JS
t_run run tx
t_expect_rc "transactions on PostgreSQL" 0
t_expect_eq "commit with parallel() inside; reads see the transaction's rows" \
    "$(t_py 'print(doc["value"], doc["names"])')" "6 ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'outer']"
t_expect_eq "rollback on throw (with a savepoint inside), savepoint rollback on inner error" \
    "$(t_py 'print(doc["thrown"], "|", doc["inner"])')" 'no thanks | relation "nowhere" does not exist (crm)'
t_expect_eq "a commit after a swallowed error says the transaction was rolled back" \
    "$(t_py 'print(doc["swallowed"], "|", doc["commit"])')" \
    "22012 | the transaction was rolled back because a statement in it failed (crm)"

# ---- Errors ----
t_recipe typo <<'JS'
exports.run = function () { return sql.query('crm', 'SELECT * FROM custmers WHERE id = ?', [1]); };
JS
t_run run typo
t_expect_rc "an SQL error fails the run" 1
t_expect_contains "... with PostgreSQL's message" "$(run_error)" 'SqlError: relation "custmers" does not exist (crm)'
t_expect_eq "... recorded as an error step" "$(steps_of_last)" "error"

t_recipe misuse <<'JS'
exports.run = function () {
  var out = [];
  function tryit(f) { try { f(); out.push('ok'); } catch (e) { out.push(e.name + ': ' + e.message); } }
  tryit(function () { sql.query('crm', '-- nothing but a comment'); });
  tryit(function () { sql.query('crm', 'COPY people TO STDOUT'); });
  tryit(function () { sql.query('crm', 'SELECT 1; SELECT 2'); });
  tryit(function () { sql.query('crm', 'SELECT $1, $2', [1]); });
  tryit(function () { sql.exec('crm', 'COMMIT'); });
  out.push(sql.query('crm', 'SELECT 1 AS one')[0].one);
  return out;
};
JS
t_run run misuse
t_expect_eq "misuse is explained, and the pool still works" "$(t_py 'print("\n".join(map(str, doc)))')" \
"SqlError: the statement is empty (crm)
SqlError: COPY is not supported; use INSERT or SELECT (crm)
SqlError: cannot insert multiple commands into a prepared statement (crm)
SqlError: bind message supplies 1 parameters, but prepared statement \"\" requires 2 (crm)
SqlError: use sql.transaction(db, fn) instead of BEGIN, COMMIT or ROLLBACK (crm)
1"

# ---- Dry run ----
t_recipe dry <<'JS'
exports.run = function () {
  var u = sql.exec('crm', "UPDATE people SET name = 'dry'");
  var d = sql.query('crm', 'DELETE FROM people RETURNING *');
  var w = sql.query('crm', 'WITH x AS (SELECT name FROM people) SELECT count(*) AS n FROM x')[0].n;
  var e = sql.query('crm', 'EXPLAIN SELECT 1').length > 0;
  var t = sql.transaction('crm', function (tx) { return tx.exec("INSERT INTO people (name) VALUES ('dry')"); });
  return { u: u, d: d, w: w, e: e, t: t };
};
JS
t_run run dry --dry-run
t_expect_rc "dry run on PostgreSQL" 0
t_expect_eq "writes skipped, reads run" "$(t_py 'print(doc)')" \
    "{'u': {'changes': 0, 'lastId': None, 'dryRun': True}, 'd': [], 'w': 7, 'e': True, 't': {'changes': 0, 'lastId': None, 'dryRun': True}}"
t_expect_eq "dry-run steps" "$(steps_of_last)" "dry-run,dry-run,ok,ok,ok,dry-run,ok"
t_expect_eq "nothing changed" "$(psql -XAt "$PG_URL" -c "SELECT count(*) FROM people WHERE name = 'dry'")" "0"

# ---- The pool under many waits ----
t_recipe many <<'JS'
exports.run = function () {
  var ids = [];
  for (var i = 0; i < 200; i++) { ids.push(i); }
  var got = parallel(ids, function (i) {
    return sql.query('crm', 'SELECT ?::int * 2 AS v, pg_backend_pid() AS pid', [i])[0];
  }, { concurrency: 200 });
  var bad = got.filter(function (r, i) { return r.v !== i * 2; }).length;
  var pids = {};
  got.forEach(function (r) { pids[r.pid] = true; });
  var viaMap = [1, 2, 3].map(function (i) { return sql.query('crm', 'SELECT ? AS v', [String(i)])[0].v; });
  var viaReduce = [1, 2, 3].reduce(function (s, i) { return s + sql.query('crm', 'SELECT ?::int AS v', [i])[0].v; }, 0);
  parallel(ids, function (i) { sql.exec('crm', 'INSERT INTO people (name, n) VALUES (?, ?)', ['m' + i, i]); },
           { concurrency: 64 });
  return { bad: bad, connections: Object.keys(pids).length, viaMap: viaMap, viaReduce: viaReduce,
           inserted: sql.query('crm', "SELECT count(*) AS n, sum(n) AS s FROM people WHERE name LIKE 'm%'")[0] };
};
JS
t_run run many
t_expect_rc "parallel over 200 items on PostgreSQL" 0
t_expect_eq "every query got its own answer" "$(t_py 'print(doc["bad"])')" "0"
t_expect_eq "through a pool of at most 4 connections" \
    "$(t_py 'print(1 <= doc["connections"] <= 4)')" "True"
t_expect_eq "queries in map/reduce callbacks, 200 concurrent inserts" \
    "$(t_py 'print(doc["viaMap"], doc["viaReduce"], doc["inserted"])')" "['1', '2', '3'] 6 {'n': 200, 's': 19900}"

# Pooled connections the server closed while idle are noticed and replaced.
t_recipe dropped <<'JS'
exports.run = function () {
  var ids = [1, 2, 3, 4, 5, 6, 7, 8];
  function warm() {
    return parallel(ids, function (i) { return sql.query('crm', 'SELECT ?::int AS v, pg_sleep(0.05)', [i])[0].v; });
  }
  var before = warm();
  var killed = sql.query('crm', "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity " +
                         "WHERE application_name = 'autorun' AND pid <> pg_backend_pid()")[0].n;
  sleep(300);
  return { before: before, killed: killed > 0, after: warm() };
};
JS
t_run run dropped
t_expect_rc "connections closed by the server are replaced" 0
t_expect_eq "... and every query still answers" "$(t_py 'print(doc["killed"], doc["after"] == doc["before"] == list(range(1, 9)))')" \
    "True True"

# Many runs at once in one process: the engine test against this server.
if [ -x "$AR_BUILD_DIR/tests/test_sql_engine" ]; then
    out=$(AR_TEST_PG_URL="$PG_URL" "$AR_BUILD_DIR/tests/test_sql_engine" 2>&1)
    rc=$?
    t_expect_eq "concurrent runs on one engine (test_sql_engine with PostgreSQL)" "$rc" "0"
    t_expect_contains "... ran its PostgreSQL cases" "$out" "[       OK ] test_pg_concurrent_runs"
else
    t_fail "test_sql_engine is built" "$AR_BUILD_DIR/tests/test_sql_engine not found"
fi

# ---- A run that dies while a statement runs ----
t_recipe slow <<'JS'
exports.timeout = '700ms';
exports.run = function () {
  sql.transaction('crm', function (tx) {
    tx.exec("INSERT INTO people (name) VALUES ('slow')");
    tx.query('SELECT pg_sleep(30)');
  });
};
JS
t_run run slow
t_expect_rc "a run timing out during a statement fails" 1
t_expect_contains "... with TimeoutError" "$(run_error)" "TimeoutError"
t_expect_eq "... its transaction is rolled back" \
    "$(psql -XAt "$PG_URL" -c "SELECT count(*) FROM people WHERE name = 'slow'")" "0"
for i in $(seq 1 50); do
    n=$(psql -XAt "$PG_URL" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")
    [ "$n" = "0" ] && break
    sleep 0.1
done
t_expect_eq "... and the server stopped running it" "$n" "0"

# ---- Connection failures ----
closed=$(t_free_port)
t_recipe down <<'JS'
exports.run = function () { return sql.query('down', 'SELECT 1'); };
JS
AUTORUN_DB_DOWN="postgres://postgres@127.0.0.1:$closed/postgres" t_run run down
t_expect_rc "connection refused fails the run" 1
t_expect_contains "... with a clear error" "$(run_error)" "SqlError: cannot connect to PostgreSQL:"
t_expect_contains "... saying why" "$(run_error)" "Connection refused"

AUTORUN_DB_DOWN="postgres://postgres@127.0.0.1:$PG_PORT/postgres?bogus=1" t_run run down
t_expect_rc "a bad URL fails the run" 1
t_expect_contains "... saying what is wrong with it" "$(run_error)" \
    "SqlError: database 'down': bad PostgreSQL URL: invalid URI query parameter: \"bogus\" (down)"
AUTORUN_DB_DOWN="postgres://postgres@127.0.0.1:notaport/postgres" t_run run down
t_expect_rc "a bad port fails the run" 1
t_expect_contains "... saying what is wrong with it" "$(run_error)" \
    'cannot connect to PostgreSQL: invalid integer value "notaport" for connection option "port"'

AUTORUN_DB_DOWN="postgres://postgres:s3cret-pw@127.0.0.1:$PG_PORT/nosuchdb" t_run run down
t_expect_contains "a missing database is the server's message" "$(run_error)" 'database "nosuchdb" does not exist'
t_expect_not_contains "... without the password" "$(run_error)" "s3cret-pw"

t_done
