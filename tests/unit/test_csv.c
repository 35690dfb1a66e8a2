/* The csv plugin's pure part (plugins/csv/csv_parse.c, compiled into this test): RFC 4180
 * parsing with quotes, embedded quotes and line breaks, BOM, delimiters and errors; rows as
 * JSON with a header; formatting that parses back to the same fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/csv/csv_parse.c"

static const struct csv_mem libc_mem = {realloc, free};

static struct csv_table parse_ok(const char *text, char delim)
{
    struct csv_options o = {.delimiter = delim};
    struct csv_table t;
    char err[128] = "";
    int rc = csv_parse(text, strlen(text), &o, &libc_mem, &t, err, sizeof(err));
    if (rc != 0) {
        fail_msg("parse failed: %s", err);
    }
    return t;
}

static void expect_field(const struct csv_table *t, size_t r, size_t f, const char *want)
{
    assert_true(r < t->n);
    assert_true(f < t->rows[r].n);
    assert_int_equal(t->rows[r].fields[f].len, strlen(want));
    assert_memory_equal(t->rows[r].fields[f].data, want, strlen(want));
}

static void test_simple(void **state)
{
    struct csv_table t = parse_ok("a,b,c\n1,2,3\n", ',');
    assert_int_equal(t.n, 2);
    assert_int_equal(t.rows[0].n, 3);
    expect_field(&t, 0, 0, "a");
    expect_field(&t, 1, 2, "3");
    assert_int_equal(t.rows[1].line, 2);
    csv_table_free(&t, &libc_mem);
}

static void test_quotes_and_line_breaks(void **state)
{
    struct csv_table t =
        parse_ok("\"Smith, J\",\"said \"\"hi\"\"\",\"two\r\nlines\",\"\"\r\nnext,\"x\ny\",z", ',');
    assert_int_equal(t.n, 2);
    assert_int_equal(t.rows[0].n, 4);
    expect_field(&t, 0, 0, "Smith, J");
    expect_field(&t, 0, 1, "said \"hi\"");
    expect_field(&t, 0, 2, "two\r\nlines");
    expect_field(&t, 0, 3, "");
    expect_field(&t, 1, 1, "x\ny");
    expect_field(&t, 1, 2, "z");
    /* The second record starts on the third physical line. */
    assert_int_equal(t.rows[1].line, 3);
    csv_table_free(&t, &libc_mem);
}

static void test_bom_line_ends_and_empty_lines(void **state)
{
    struct csv_table t = parse_ok("\xEF\xBB\xBFid;name\r\r\n1;Ann\r2;Bo\n\n\n3;\n", ';');
    assert_int_equal(t.n, 4);
    expect_field(&t, 0, 0, "id");
    expect_field(&t, 1, 1, "Ann");
    expect_field(&t, 2, 0, "2");
    expect_field(&t, 3, 0, "3");
    expect_field(&t, 3, 1, "");
    assert_int_equal(t.rows[3].n, 2);
    csv_table_free(&t, &libc_mem);
}

static void test_trailing_delimiter_and_bare_quote(void **state)
{
    struct csv_table t = parse_ok("a,b,\n5\" tall,x", ',');
    assert_int_equal(t.rows[0].n, 3);
    expect_field(&t, 0, 2, "");
    /* A quote inside an unquoted field is kept as it is (lenient, like most readers). */
    expect_field(&t, 1, 0, "5\" tall");
    csv_table_free(&t, &libc_mem);

    t = parse_ok("a,", ',');
    assert_int_equal(t.n, 1);
    assert_int_equal(t.rows[0].n, 2);
    csv_table_free(&t, &libc_mem);

    t = parse_ok("", ',');
    assert_int_equal(t.n, 0);
    csv_table_free(&t, &libc_mem);
}

static void test_errors(void **state)
{
    struct csv_table t;
    char err[128];
    const char *unterminated = "a,b\n1,\"open\nstill open\n";
    assert_int_equal(csv_parse(unterminated, strlen(unterminated), NULL, &libc_mem, &t, err,
                               sizeof(err)),
                     CSV_EINVAL);
    assert_string_equal(err, "line 2: the quoted field opened here never ends");
    const char *junk = "a\n\"x\"y,z\n";
    assert_int_equal(csv_parse(junk, strlen(junk), NULL, &libc_mem, &t, err, sizeof(err)),
                     CSV_EINVAL);
    assert_string_equal(err, "line 2: unexpected 'y' after the closing quote");
    struct csv_options o = {.delimiter = '"'};
    assert_int_equal(csv_parse("a", 1, &o, &libc_mem, &t, err, sizeof(err)), CSV_EINVAL);
}

static char *to_json(const char *text, int header)
{
    struct csv_table t = parse_ok(text, ',');
    struct csv_buf b = {.mem = &libc_mem};
    assert_int_equal(csv_table_to_json(&t, header, &b), 0);
    csv_table_free(&t, &libc_mem);
    return b.data;
}

static void test_json(void **state)
{
    char *j = to_json("a,b\n1,\"x\"\"\ty\"\n", 0);
    assert_string_equal(j, "[[\"a\",\"b\"],[\"1\",\"x\\\"\\ty\"]]");
    free(j);
    j = to_json("id,name\n1,Ann\n2\n3,Bo,extra,more\n", 1);
    assert_string_equal(j, "[{\"id\":\"1\",\"name\":\"Ann\"},{\"id\":\"2\",\"name\":\"\"},"
                           "{\"id\":\"3\",\"name\":\"Bo\",\"_extra\":[\"extra\",\"more\"]}]");
    free(j);
    j = to_json("only,header\n", 1);
    assert_string_equal(j, "[]");
    free(j);
}

static void test_format_field(void **state)
{
    struct csv_buf b = {.mem = &libc_mem};
    struct csv_options semi = {.delimiter = ';'};
    assert_int_equal(csv_format_field(&b, "plain", 5, NULL, 0), 0);
    assert_int_equal(csv_format_field(&b, "a,b", 3, NULL, 0), 0);
    assert_int_equal(csv_format_field(&b, "a,b", 3, &semi, 0), 0);
    assert_int_equal(csv_format_field(&b, "say \"hi\"", 8, NULL, 0), 0);
    assert_int_equal(csv_format_field(&b, "l1\nl2", 5, NULL, 0), 0);
    assert_int_equal(csv_format_field(&b, "x", 1, NULL, 1), 0);
    assert_string_equal(b.data, "plain\"a,b\"a,b\"say \"\"hi\"\"\"\"l1\nl2\"\"x\"");
    csv_buf_free(&b);
}

static void test_format_json_round_trip(void **state)
{
    struct csv_buf b = {.mem = &libc_mem};
    char err[128];
    const char *rows = "[[\"id\",\"note\"], [1, \"a,\\\"b\\\"\\r\\nc\"],"
                       " [null, true, false, -1.5e3],"
                       " [\"\\u00e9\\ud83d\\ude00\"], []]";
    assert_int_equal(csv_format_json(rows, NULL, "\r\n", 0, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data, "id,note\r\n1,\"a,\"\"b\"\"\r\nc\"\r\n,true,false,-1.5e3\r\n"
                                "\xC3\xA9\xF0\x9F\x98\x80\r\n\r\n");
    /* What was formatted parses back into the same fields. */
    struct csv_table t = parse_ok(b.data, ',');
    expect_field(&t, 1, 1, "a,\"b\"\r\nc");
    expect_field(&t, 3, 0, "\xC3\xA9\xF0\x9F\x98\x80");
    csv_table_free(&t, &libc_mem);
    csv_buf_free(&b);

    b = (struct csv_buf){.mem = &libc_mem};
    assert_int_equal(csv_format_json("[]", NULL, "\n", 0, &b, err, sizeof(err)), 0);
    assert_null(b.data);
    assert_int_equal(csv_format_json("[[\"a\"] [\"b\"]]", NULL, "\n", 0, &b, err, sizeof(err)),
                     CSV_EINVAL);
    assert_non_null(strstr(err, "between rows"));
    assert_int_equal(csv_format_json("[{\"a\":1}]", NULL, "\n", 0, &b, err, sizeof(err)),
                     CSV_EINVAL);
    assert_non_null(strstr(err, "each row must be an array"));
    assert_int_equal(csv_format_json("[[\"unterminated]]", NULL, "\n", 0, &b, err, sizeof(err)),
                     CSV_EINVAL);
    assert_int_equal(csv_format_json("[[[1]]]", NULL, "\n", 0, &b, err, sizeof(err)),
                     CSV_EINVAL);
    csv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_quotes_and_line_breaks),
        cmocka_unit_test(test_bom_line_ends_and_empty_lines),
        cmocka_unit_test(test_trailing_delimiter_and_bare_quote),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_format_field),
        cmocka_unit_test(test_format_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
