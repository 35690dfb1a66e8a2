/* SQL text helpers: '?' to $n outside literals, the dry-run read test, excerpts, and
 * PostgreSQL value conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "db/sql_text.h"

static void expect_placeholders(const char *in, const char *want, int want_n)
{
    char *out = NULL;
    int n = -1;
    assert_int_equal(ar_sql_pg_placeholders(in, &out, &n), 0);
    assert_string_equal(out, want);
    assert_int_equal(n, want_n);
    free(out);
}

static void test_placeholders(void **state)
{
    expect_placeholders("SELECT * FROM t WHERE a = ? AND b = ?",
                        "SELECT * FROM t WHERE a = $1 AND b = $2", 2);
    expect_placeholders("SELECT 1", "SELECT 1", 0);
    /* Literals, identifiers and comments keep their question marks. */
    expect_placeholders("SELECT '?', 'it''s ?', ? FROM \"we?rd\" -- why?\nWHERE x = ?",
                        "SELECT '?', 'it''s ?', $1 FROM \"we?rd\" -- why?\nWHERE x = $2", 2);
    expect_placeholders("SELECT E'a\\'?', ?", "SELECT E'a\\'?', $1", 1);
    expect_placeholders("SELECT $$ ? $$, $tag$ it's ? $tag$, ?",
                        "SELECT $$ ? $$, $tag$ it's ? $tag$, $1", 1);
    expect_placeholders("/* a /* nested ? */ still ? */ SELECT ?",
                        "/* a /* nested ? */ still ? */ SELECT $1", 1);
    /* Native $n: left alone, '?' may be a jsonb operator. */
    expect_placeholders("SELECT data ? 'k' FROM t WHERE id = $2 OR id = $1",
                        "SELECT data ? 'k' FROM t WHERE id = $2 OR id = $1", 2);
    /* Identifiers may contain '$'; that is not a parameter. */
    expect_placeholders("SELECT a$1 FROM t WHERE x = ?", "SELECT a$1 FROM t WHERE x = $1", 1);
    expect_placeholders("SELECT 'unterminated ?", "SELECT 'unterminated ?", 0);
}

static void test_is_read(void **state)
{
    assert_true(ar_sql_is_read("SELECT * FROM customers"));
    assert_true(ar_sql_is_read("  -- comment\n select 1"));
    assert_true(ar_sql_is_read("(SELECT 1) UNION (SELECT 2)"));
    assert_true(ar_sql_is_read("WITH x AS (SELECT 1) SELECT * FROM x"));
    assert_true(ar_sql_is_read("EXPLAIN SELECT 1"));
    assert_true(ar_sql_is_read("EXPLAIN ANALYZE SELECT 1"));
    assert_true(ar_sql_is_read("VALUES (1), (2)"));
    assert_true(ar_sql_is_read("SHOW server_version"));
    assert_true(ar_sql_is_read("PRAGMA table_info(customers)"));
    assert_true(ar_sql_is_read("SELECT 'INSERT INTO t' AS s"));
    assert_true(ar_sql_is_read("SELECT * FROM t FOR UPDATE"));
    assert_true(ar_sql_is_read("BEGIN"));
    assert_true(ar_sql_is_read("SAVEPOINT a"));

    assert_false(ar_sql_is_read("UPDATE customers SET x = 1"));
    assert_false(ar_sql_is_read("insert into t values (1)"));
    assert_false(ar_sql_is_read("DELETE FROM t"));
    assert_false(ar_sql_is_read("SELECT * INTO copy FROM t"));
    assert_false(ar_sql_is_read("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"));
    assert_false(ar_sql_is_read("EXPLAIN ANALYZE DELETE FROM t"));
    assert_false(ar_sql_is_read("PRAGMA user_version = 3"));
    assert_false(ar_sql_is_read("CREATE TABLE t (a int)"));
    assert_false(ar_sql_is_read("SET search_path = x"));
    assert_false(ar_sql_is_read(""));
    assert_false(ar_sql_is_read("-- only a comment"));
}

static void test_tx_control(void **state)
{
    assert_int_equal(ar_sql_tx_control("BEGIN"), 1);
    assert_int_equal(ar_sql_tx_control(" commit;"), 1);
    assert_int_equal(ar_sql_tx_control("START TRANSACTION"), 1);
    assert_int_equal(ar_sql_tx_control("ROLLBACK"), 1);
    assert_int_equal(ar_sql_tx_control("ROLLBACK TO SAVEPOINT a"), 2);
    assert_int_equal(ar_sql_tx_control("SAVEPOINT a"), 2);
    assert_int_equal(ar_sql_tx_control("RELEASE SAVEPOINT a"), 2);
    assert_int_equal(ar_sql_tx_control("SELECT 'BEGIN'"), 0);
    assert_int_equal(ar_sql_tx_control("UPDATE t SET begin = 1"), 0);
}

static void test_excerpt(void **state)
{
    char *s = ar_sql_excerpt("  SELECT a,\n\t  b\n FROM   t  ", 200);
    assert_string_equal(s, "SELECT a, b FROM t");
    free(s);
    s = ar_sql_excerpt("SELECT 'abcdef'", 10);
    assert_string_equal(s, "SELECT 'ab...");
    free(s);
    /* "é" is two bytes: the cut never splits it. */
    s = ar_sql_excerpt("SELECT 'é'", 9);
    assert_string_equal(s, "SELECT '...");
    free(s);
}

static void test_decimal_exact(void **state)
{
    assert_true(ar_sql_decimal_exact("12.50"));
    assert_true(ar_sql_decimal_exact("-0.1"));
    assert_true(ar_sql_decimal_exact("123456789012345"));
    assert_true(ar_sql_decimal_exact("9007199254740992"));
    assert_true(ar_sql_decimal_exact("0.000000000000000000000000000000001"));
    assert_true(ar_sql_decimal_exact("1000000000000000000000"));
    assert_false(ar_sql_decimal_exact("9007199254740993"));
    assert_false(ar_sql_decimal_exact("12345678901234567890.12"));
    assert_false(ar_sql_decimal_exact("0.1234567890123456"));
    assert_false(ar_sql_decimal_exact("NaN"));
    assert_false(ar_sql_decimal_exact("Infinity"));
    assert_false(ar_sql_decimal_exact(""));
    assert_false(ar_sql_decimal_exact("1.2.3"));
}

static void test_timestamps(void **state)
{
    char out[40];
    assert_int_equal(ar_sql_pg_timestamp("2026-11-23 09:00:00+00", out, sizeof(out)), 0);
    assert_string_equal(out, "2026-11-23T09:00:00.000Z");
    assert_int_equal(ar_sql_pg_timestamp("2026-11-23 09:00:00.123456+00", out, sizeof(out)), 0);
    assert_string_equal(out, "2026-11-23T09:00:00.123Z");
    assert_int_equal(ar_sql_pg_timestamp("2026-11-23 09:00:00.5", out, sizeof(out)), 0);
    assert_string_equal(out, "2026-11-23T09:00:00.500Z");
    /* Offsets are applied, across a day and a year boundary. */
    assert_int_equal(ar_sql_pg_timestamp("2027-01-01 01:30:00+05:30", out, sizeof(out)), 0);
    assert_string_equal(out, "2026-12-31T20:00:00.000Z");
    assert_int_equal(ar_sql_pg_timestamp("2024-02-28 23:00:00-02", out, sizeof(out)), 0);
    assert_string_equal(out, "2024-02-29T01:00:00.000Z");
    strcpy(out, "untouched");
    assert_int_equal(ar_sql_pg_timestamp("infinity", out, sizeof(out)), AR_EINVAL);
    assert_int_equal(ar_sql_pg_timestamp("2000-01-01 00:00:00 BC", out, sizeof(out)),
                     AR_EINVAL);
    assert_int_equal(ar_sql_pg_timestamp("12000-01-01 00:00:00", out, sizeof(out)), AR_EINVAL);
    assert_int_equal(ar_sql_pg_timestamp("2026-13-01 00:00:00", out, sizeof(out)), AR_EINVAL);
    assert_string_equal(out, "untouched");
    assert_int_equal(ar_sql_pg_timestamp("2026-11-23 09:00:00+00", out, 10), AR_E2BIG);
    assert_string_equal(ar_sql_pg_bytea_hex("\\x00ff"), "00ff");
    assert_string_equal(ar_sql_pg_bytea_hex("abc"), "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholders), cmocka_unit_test(test_is_read),
        cmocka_unit_test(test_tx_control),   cmocka_unit_test(test_excerpt),
        cmocka_unit_test(test_decimal_exact), cmocka_unit_test(test_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
