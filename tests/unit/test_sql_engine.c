/* sql inside the engine: many runs at once on one database, each with parallel()
 * writes (some inside transactions), while others time out holding a transaction;
 * every run gets its own answers and an aborted run's transaction is rolled back.
 * SQLite always; PostgreSQL when AR_TEST_PG_URL names a server (test_sql_pg.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "engine_fixture.h"

static int setup(void **state)
{
    fixture_make_dir("sqlengine");
    fixture_load_config(NULL, NULL);
    char url[160], err[256];
    snprintf(url, sizeof(url), "sqlite:%s/shop.db", dir);
    assert_int_equal(ar_config_set(&cfg, "db.shop", url, err, sizeof(err)), 0);
    const char *pg = getenv("AR_TEST_PG_URL");
    if (pg && *pg) {
        assert_int_equal(ar_config_set(&cfg, "db.crm", pg, err, sizeof(err)), 0);
    }
    write_recipe("setup", "exports.run = function (e) {\n"
                          "  sql.exec(e.db, 'DROP TABLE IF EXISTS t');\n"
                          "  sql.exec(e.db, 'CREATE TABLE t (k integer, v integer)');\n"
                          "};");
    /* Odd runs write inside a transaction, with parallel() inside it too. */
    write_recipe("worker",
                 "exports.run = function (e) {\n"
                 "  var items = [];\n"
                 "  for (var i = 0; i < 20; i++) { items.push(i); }\n"
                 "  function put(i) { sql.exec(e.db, 'INSERT INTO t (k, v) VALUES (?, ?)', "
                 "[e.k, i]); }\n"
                 "  if (e.k % 2) {\n"
                 "    sql.transaction(e.db, function () { parallel(items, put, {concurrency: 4}); "
                 "});\n"
                 "  } else {\n"
                 "    parallel(items, put, {concurrency: 5});\n"
                 "  }\n"
                 "  var r = sql.query(e.db, 'SELECT count(*) AS n, sum(v) AS s FROM t WHERE k = ?',"
                 " [e.k])[0];\n"
                 "  return { k: e.k, n: Number(r.n), s: Number(r.s) };\n"
                 "};");
    write_recipe("stuck", "exports.timeout = '300ms';\n"
                          "exports.run = function (e) {\n"
                          "  sql.transaction(e.db, function () {\n"
                          "    sql.exec(e.db, 'INSERT INTO t (k, v) VALUES (?, ?)', [-1, 1]);\n"
                          "    sleep(60000);\n"
                          "  });\n"
                          "};");
    /* Waits behind a transaction (SQLite) or in a long statement (PostgreSQL) and
     * times out there. */
    write_recipe("impatient", "exports.timeout = '100ms';\n"
                              "exports.run = function (e) {\n"
                              "  sql.query(e.db, e.db === 'crm' ? 'SELECT pg_sleep(30)' : 'SELECT 1');\n"
                              "};");
    write_recipe("spin", "exports.timeout = '200ms';\n"
                         "exports.run = function (e) {\n"
                         "  return sql.query(e.db, 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c) SELECT count(*) AS n FROM c');\n"
                         "};");
    write_recipe("count", "exports.run = function (e) {\n"
                          "  var r = sql.query(e.db, 'SELECT count(*) AS n, "
                          "sum(CASE WHEN k < 0 THEN 1 ELSE 0 END) AS stuck FROM t')[0];\n"
                          "  return { n: Number(r.n), stuck: Number(r.stuck) };\n"
                          "};");
    fixture_create_engine();
    return 0;
}

static void expect_success(const char *recipe, const char *input, const char *result)
{
    struct outcome o = {0};
    run_recipe(recipe, input, &o);
    if (o.status != AR_RUN_SUCCEEDED) {
        fail_msg("%s failed: %s", recipe, o.error ? o.error : "(no error)");
    }
    if (result) {
        assert_string_equal(o.result, result);
    }
    outcome_free(&o);
}

static void concurrent_runs(const char *db)
{
    enum { N = 40, STUCK = 3 };
    char input[96], dbonly[64];
    snprintf(dbonly, sizeof(dbonly), "{\"db\": \"%s\"}", db);
    expect_success("setup", dbonly, NULL);

    struct outcome o[N] = {{0}}, stuck[STUCK] = {{0}}, impatient = {0};
    for (int i = 0; i < N; i++) {
        if (i == 1) {
            start_run("impatient", dbonly, &impatient);
        }
        snprintf(input, sizeof(input), "{\"db\": \"%s\", \"k\": %d}", db, i);
        start_run("worker", input, &o[i]);
        if (i % (N / STUCK) == 0 && i / (N / STUCK) < STUCK) {
            start_run("stuck", dbonly, &stuck[i / (N / STUCK)]);
        }
    }
    ar_engine_run_loop(engine);
    for (int i = 0; i < N; i++) {
        char expect[64];
        snprintf(expect, sizeof(expect), "{\"k\":%d,\"n\":20,\"s\":190}", i);
        assert_true(o[i].done);
        if (o[i].status != AR_RUN_SUCCEEDED) {
            fail_msg("run %d failed: %s", i, o[i].error ? o[i].error : "(no error)");
        }
        assert_string_equal(o[i].result, expect);
        outcome_free(&o[i]);
    }
    assert_int_equal(impatient.status, AR_RUN_FAILED);
    assert_non_null(strstr(impatient.error, "TimeoutError"));
    outcome_free(&impatient);
    for (int i = 0; i < STUCK; i++) {
        assert_int_equal(stuck[i].status, AR_RUN_FAILED);
        assert_non_null(strstr(stuck[i].error, "TimeoutError"));
        outcome_free(&stuck[i]);
    }
    /* 40 runs x 20 rows; the stuck runs' rows were rolled back. */
    expect_success("count", dbonly, "{\"n\":800,\"stuck\":0}");
    assert_int_equal(engine->runs_active, 0);
}

static void test_sqlite_concurrent_runs(void **state)
{
    concurrent_runs("shop");
}

/* A statement that would run forever is interrupted when its run times out, and the
 * database serves the next run. */
static void test_sqlite_interrupt(void **state)
{
    struct outcome spin = {0}, after = {0};
    start_run("spin", "{\"db\": \"shop\"}", &spin);
    start_run("count", "{\"db\": \"shop\"}", &after);
    ar_engine_run_loop(engine);
    assert_int_equal(spin.status, AR_RUN_FAILED);
    assert_non_null(strstr(spin.error, "TimeoutError"));
    assert_int_equal(after.status, AR_RUN_SUCCEEDED);
    outcome_free(&spin);
    outcome_free(&after);
}

static void test_pg_concurrent_runs(void **state)
{
    const char *pg = getenv("AR_TEST_PG_URL");
    if (pg == NULL || *pg == '\0') {
        skip(); /* tests/integration/test_sql_pg.sh runs this with a server */
    }
    concurrent_runs("crm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_concurrent_runs),
        cmocka_unit_test(test_sqlite_interrupt),
        cmocka_unit_test(test_pg_concurrent_runs),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
