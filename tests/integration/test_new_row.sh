#!/bin/bash
# newRow triggers in `autorun serve`, on SQLite and on PostgreSQL (tests/servers/pg.sh): the
# baseline on the first check, one run per new row, kill -9 and restart without duplicates or
# losses, pages of rows (limit), backfill: true, bad identifiers refused, a missing table
# failing visibly; and recipes/new-customer-welcome.js mailing each new customer into the file
# outbox. The PostgreSQL part is skipped, saying so, only when PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"

PG_DIR=""
pg_stop() { [ -n "$PG_DIR" ] && bash "$AR_SOURCE_DIR/tests/servers/pg.sh" stop "$PG_DIR"; }
trap 'pg_stop; t_cleanup' EXIT

CRM="$T_TMP/crm.db"
export AUTORUN_DB_CUSTOMERS="sqlite:$CRM"
OUTBOX="$AUTORUN_HOME/outbox"
sqlite3 "$CRM" "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT NOT NULL);
INSERT INTO customers (name, email) VALUES ('Ann', 'ann@example.com'), ('Bob', 'bob@example.com'),
                                           ('Cleo', 'cleo@example.com');"
crm() { sqlite3 "$CRM" "$1"; }
add_customers() { # FIRST LAST: customers FIRST..LAST
    crm "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
         INSERT INTO customers (id, name, email) SELECT i, 'Customer ' || i, 'c' || i || '@example.com' FROM n"
}

# Waits until the trigger of RECIPE has polled N more times.
wait_polls() { # RECIPE N
    local last now seen=0 i
    last=$(t_sql "SELECT last_poll_at FROM poll_state WHERE recipe='$1'")
    for i in $(seq 1 $(($2 * 25))); do
        sleep 0.2
        now=$(t_sql "SELECT last_poll_at FROM poll_state WHERE recipe='$1'")
        if [ "$now" != "$last" ]; then
            seen=$((seen + 1))
            last=$now
        fi
        [ "$seen" -ge "$2" ] && return 0
    done
    return 1
}
ids_of() { # RECIPE
    t_sql "SELECT group_concat(id, ',') FROM (SELECT json_extract(input, '\$.id') AS id FROM runs WHERE recipe='$1' AND trigger='row' ORDER BY id)"
}
runs_of() { # RECIPE STATUS
    t_sql "SELECT count(*) FROM runs WHERE recipe='$1' AND trigger='row' AND status='$2'"
}
eml_count() { ls "$OUTBOX"/*.eml 2>/dev/null | wc -l; }

# ---- SQLite: the welcome recipe, a paged watcher, a backfilling one, two broken ones ----
sed "s/every: '30s'/every: '1s'/" "$AR_SOURCE_DIR/recipes/new-customer-welcome.js" \
    >"$AUTORUN_RECIPES/new-customer-welcome.js"
cp "$AR_SOURCE_DIR/recipes/welcome.txt" "$AR_SOURCE_DIR/recipes/welcome.html" "$AUTORUN_RECIPES/"
t_run check new-customer-welcome
t_expect_rc "welcome: autorun check passes" 0
t_recipe paged <<'JS'
exports.triggers = [{ newRow: { db: 'customers', table: 'customers', key: 'id' }, every: '1s',
                      limit: 10 }];
exports.run = function (row) { return { id: row.id, email: row.email }; };
JS
t_recipe backfilled <<'JS'
exports.triggers = [{ newRow: { db: 'customers', table: 'main.customers', key: 'id' },
                      every: '1s', backfill: true }];
exports.run = function (row) { return { id: row.id }; };
JS
t_recipe sneaky <<'JS'
exports.triggers = [{ newRow: { db: 'customers', table: 'customers; DROP TABLE customers',
                                key: 'id' }, every: '1s' }];
exports.run = function (row) { return row; };
JS
t_recipe missing <<'JS'
exports.triggers = [{ newRow: { db: 'customers', table: 'no_such_table', key: 'id' },
                      every: '1s' }];
exports.run = function (row) { return row; };
JS

start_serve
if wait_sql "SELECT count(*) FROM poll_state WHERE trigger='row customers.customers.id' AND baseline_at IS NOT NULL" "2"; then
    t_pass "sqlite: baseline recorded on the first check"
else
    t_fail "sqlite: baseline recorded on the first check" "$(tail -n 20 "$LOG")"
fi
t_expect_eq "sqlite: the baseline cursor is the last key" \
    "$(t_sql "SELECT cursor FROM poll_state WHERE recipe='new-customer-welcome'")" "3"
wait_sql "SELECT count(*) FROM runs WHERE recipe='backfilled' AND status='succeeded'" "3"
t_expect_eq "backfill: true fires the existing rows" "$(ids_of backfilled)" "1,2,3"
wait_polls new-customer-welcome 2
t_expect_eq "sqlite: no run for rows that existed" \
    "$(t_sql "SELECT count(*) FROM runs WHERE recipe IN ('new-customer-welcome', 'paged') AND trigger='row'")" "0"
t_expect_eq "sqlite: no mail for existing customers" "$(eml_count)" "0"
t_expect_contains "bad identifier: refused with a log line" "$(cat "$LOG")" \
    "sneaky: newRow needs {db, table, key} with plain SQL names"
t_expect_eq "bad identifier: never polled" "$(t_sql "SELECT count(*) FROM poll_state WHERE recipe='sneaky'")" "0"
t_expect_eq "bad identifier: the table is still there" "$(crm "SELECT count(*) FROM customers")" "3"
if wait_sql "SELECT count(*) > 0 FROM runs WHERE recipe='missing' AND trigger='poll-check' AND status='failed'" "1"; then
    t_pass "missing table: the failed check is a failed run"
else
    t_fail "missing table: the failed check is a failed run" "$(t_sql "SELECT id, recipe, trigger, status, error FROM runs WHERE recipe='missing'")"
fi
t_expect_contains "missing table: the error names it" \
    "$(t_sql "SELECT error FROM runs WHERE recipe='missing' AND status='failed' LIMIT 1")" "no_such_table"
t_expect_contains "missing table: autorun list shows it failing" "$("$AUTORUN" list 2>&1)" \
    "(customers.no_such_table.id failing, "

# New rows: one run and one welcome mail each.
crm "INSERT INTO customers (name, email) VALUES ('Dana', 'dana@example.com'), ('Eve', 'eve@example.com')"
if wait_sql "SELECT count(*) FROM runs WHERE recipe='new-customer-welcome' AND trigger='row' AND status='succeeded'" "2"; then
    t_pass "sqlite: new rows fire"
else
    t_fail "sqlite: new rows fire" "$(t_sql "SELECT id, recipe, trigger, status, error FROM runs WHERE recipe='new-customer-welcome'")"
fi
t_expect_eq "sqlite: one run per new row" "$(ids_of new-customer-welcome)" "4,5"
t_expect_eq "welcome: two messages in the outbox" "$(eml_count)" "2"
t_expect_contains "welcome: addressed and rendered" "$(cat "$OUTBOX"/*.eml)" "Welcome aboard, Dana!"
t_expect_contains "welcome: the text template was used" "$(cat "$OUTBOX"/*.eml)" "Hello Eve,"
t_expect_eq "welcome: idempotency keys per customer" \
    "$(t_sql "SELECT group_concat(key, ',') FROM (SELECT key FROM outbox ORDER BY key)")" "welcome:4,welcome:5"

# ---- Pages: 25 rows at once with limit 10 fire all, in order, once ----
add_customers 6 30
if wait_sql "SELECT count(*) FROM runs WHERE recipe='paged' AND trigger='row' AND status='succeeded'" "27"; then
    t_pass "limit: every row of a burst fires"
else
    t_fail "limit: every row of a burst fires" "$(runs_of paged succeeded) runs"
fi
t_expect_eq "limit: in key order, each once" "$(ids_of paged)" "$(seq -s, 4 30)"
wait_sql "SELECT count(*) FROM runs WHERE recipe='new-customer-welcome' AND trigger='row' AND status='succeeded'" "27"

# ---- kill -9 with rows arriving: none lost, none doubled ----
add_customers 31 35
stop_serve KILL
add_customers 36 40
start_serve
if wait_sql "SELECT count(*) FROM runs WHERE recipe='new-customer-welcome' AND trigger='row' AND status='succeeded'" "37"; then
    t_pass "restart: the rows added around the crash fire"
else
    t_fail "restart: the rows added around the crash fire" "$(runs_of new-customer-welcome succeeded) runs"
fi
wait_polls new-customer-welcome 3
t_expect_eq "restart: each row exactly once" "$(ids_of new-customer-welcome)" "$(seq -s, 4 40)"
t_expect_eq "restart: one mail per new customer" "$(eml_count)" "37"
t_expect_eq "restart: backfilled recipe once per row" \
    "$(t_sql "SELECT count(*) || '|' || count(DISTINCT json_extract(input, '\$.id')) FROM runs WHERE recipe='backfilled' AND trigger='row'")" \
    "40|40"

# ---- A reload (SIGHUP) keeps the cursor: nothing fires again, new rows fire once ----
kill -HUP "$SPID"
for i in $(seq 1 50); do grep -q "reloaded:" "$LOG" && break; sleep 0.2; done
add_customers 41 42
if wait_sql "SELECT count(*) FROM runs WHERE recipe='new-customer-welcome' AND trigger='row' AND status='succeeded'" "39"; then
    t_pass "reload: new rows fire after a reload"
else
    t_fail "reload: new rows fire after a reload" "$(tail -n 20 "$LOG")"
fi
wait_polls new-customer-welcome 2
t_expect_eq "reload: each row still exactly once" "$(ids_of new-customer-welcome)" "$(seq -s, 4 42)"
stop_serve TERM
serve_clean "sqlite"
rm -f "$AUTORUN_RECIPES"/*.js

# ---- PostgreSQL ----
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "ok - postgres: skipped (PostgreSQL is not installed: apt-get install postgresql)"
    t_done
    exit
fi
if ! started=$(bash "$AR_SOURCE_DIR/tests/servers/pg.sh" start); then
    t_fail "PostgreSQL starts"
    t_done
    exit 1
fi
eval "$started"
export AUTORUN_DB_CRM="$PG_URL"
t_recipe pg_setup <<'JS'
exports.run = function (ev) {
    if (ev.create) {
        sql.exec('crm', 'CREATE TABLE signups (id bigserial PRIMARY KEY, email text NOT NULL, ' +
                 'at timestamptz NOT NULL DEFAULT now())');
    }
    for (var i = 0; i < (ev.add || 0); i++) {
        sql.exec('crm', 'INSERT INTO signups (email) VALUES (?)', ['p' + i + '@example.com']);
    }
    return sql.query('crm', 'SELECT count(*)::int AS n FROM signups')[0].n;
};
JS
t_run run pg_setup --input '{"create": true, "add": 2}'
t_expect_eq "postgres: table with two rows" "$OUT" "2"
t_recipe pg_rows <<'JS'
exports.triggers = [{ newRow: { db: 'crm', table: 'public.signups', key: 'id' }, every: '1s' }];
exports.run = function (row) { return { id: row.id, email: row.email, at: row.at }; };
JS
start_serve
if wait_sql "SELECT cursor FROM poll_state WHERE recipe='pg_rows' AND baseline_at IS NOT NULL" "2"; then
    t_pass "postgres: baseline at the last key"
else
    t_fail "postgres: baseline at the last key" "$(tail -n 20 "$LOG")"
fi
t_run run pg_setup --input '{"add": 3}'
if wait_sql "SELECT count(*) FROM runs WHERE recipe='pg_rows' AND trigger='row' AND status='succeeded'" "3"; then
    t_pass "postgres: new rows fire"
else
    t_fail "postgres: new rows fire" "$(t_sql "SELECT id, trigger, status, error FROM runs WHERE recipe='pg_rows'")"
fi
t_expect_eq "postgres: one run per new row" "$(ids_of pg_rows)" "3,4,5"
t_expect_contains "postgres: the event is the row (timestamptz as ISO)" \
    "$(t_sql "SELECT input FROM runs WHERE recipe='pg_rows' AND trigger='row' ORDER BY id LIMIT 1")" '"email":"p0@example.com","at":"20'
stop_serve KILL
t_run run pg_setup --input '{"add": 2}'
start_serve
if wait_sql "SELECT count(*) FROM runs WHERE recipe='pg_rows' AND trigger='row' AND status='succeeded'" "5"; then
    t_pass "postgres: rows added while down fire after the restart"
else
    t_fail "postgres: rows added while down fire after the restart" "$(tail -n 20 "$LOG")"
fi
wait_polls pg_rows 3
t_expect_eq "postgres: each row exactly once" "$(ids_of pg_rows)" "3,4,5,6,7"
stop_serve TERM
serve_clean "postgres"

t_done
