/* Unit tests: secret redaction (src/core/redact.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"

static void test_redacts_every_occurrence(void **state)
{
    struct ar_redactor r = {0};
    ar_redactor_add(&r, "s3cr3t-token");
    char *out = ar_redact(&r, "GET /x?token=s3cr3t-token&again=s3cr3t-token");
    assert_non_null(out);
    assert_string_equal(out, "GET /x?token=***&again=***");
    free(out);
    ar_redactor_free(&r);
}

static void test_unchanged_returns_null(void **state)
{
    struct ar_redactor r = {0};
    ar_redactor_add(&r, "abcdef");
    assert_null(ar_redact(&r, "nothing secret here"));
    assert_null(ar_redact(NULL, "x"));
    ar_redactor_free(&r);
}

static void test_longest_first_and_overlaps(void **state)
{
    struct ar_redactor r = {0};
    ar_redactor_add(&r, "key1");
    ar_redactor_add(&r, "key1-extended");
    ar_redactor_add(&r, "key1"); /* duplicate ignored */
    assert_int_equal(r.n, 2);
    char *out = ar_redact(&r, "[key1-extended][key1]");
    assert_string_equal(out, "[***][***]");
    free(out);
    ar_redactor_free(&r);
}

static void test_short_values_ignored(void **state)
{
    struct ar_redactor r = {0};
    ar_redactor_add(&r, "ab");
    ar_redactor_add(&r, "");
    ar_redactor_add(&r, NULL);
    assert_int_equal(r.n, 0);
    assert_null(ar_redact(&r, "abababab"));
    ar_redactor_free(&r);
}

static void test_secret_at_edges(void **state)
{
    struct ar_redactor r = {0};
    ar_redactor_add(&r, "pa55word");
    char *out = ar_redact(&r, "pa55word");
    assert_string_equal(out, "***");
    free(out);
    out = ar_redact(&r, "xpa55wordpa55wordx");
    assert_string_equal(out, "x******x");
    free(out);
    ar_redactor_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redacts_every_occurrence),
        cmocka_unit_test(test_unchanged_returns_null),
        cmocka_unit_test(test_longest_first_and_overlaps),
        cmocka_unit_test(test_short_values_ignored),
        cmocka_unit_test(test_secret_at_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
