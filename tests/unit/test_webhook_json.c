/* Unit tests for the webhook body check (ar_webhook_json_check in src/trigger/webhook.c): what
 * it accepts must be JSON that the run's JSON.parse accepts, and what it refuses gets a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "trigger/webhook.h"

static int check(const char *text, char *why, size_t why_len)
{
    return ar_webhook_json_check(text, strlen(text), why, why_len);
}

static void test_accepts_json(void **state)
{
    static const char *const ok[] = {
        "{}", "[]", "0", "-0", "1.5e10", "-2E-3", "1e+2", "true", "false", "null", "\"\"",
        " \t\r\n{\"a\" : [1, 2.0, {\"b\": null}], \"c\": \"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\"} \n",
        "\"\\u00e9\\uD83D\\uDE00\"", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "{\"ticket\":{\"id\":4242,\"tags\":[]}}", "[[[[[]]]]]",
    };
    char why[128];
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = check(ok[i], why, sizeof(why));
        if (rc != 0) {
            fail_msg("refused %s: %s", ok[i], why);
        }
    }
}

static void test_refuses_what_json_parse_refuses(void **state)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{a:1}", "{'a':1}", "01", "1.", ".5", "+1",
        "1e", "-", "--1", "NaN", "Infinity", "tru", "nul", "True", "\"abc", "\"a\x01\"",
        "\"\\x41\"", "\"\\u12\"", "\"\\u12G4\"", "[1 2]", "{\"a\" 1}", "{} {}", "1 2",
        "[\"a\"]]", "/* c */ 1", "\"tab\there\"",
    };
    char why[128];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (check(bad[i], why, sizeof(why)) != AR_EINVAL) {
            fail_msg("accepted %s", bad[i]);
        }
        assert_non_null(strstr(why, "invalid json (at offset "));
    }
}

static void test_nul_and_utf8(void **state)
{
    char why[128];
    (void)state;
    /* A NUL inside a string is a raw control character; outside, it is trailing garbage. */
    assert_int_equal(ar_webhook_json_check("\"a\0b\"", 5, why, sizeof(why)), AR_EINVAL);
    assert_int_equal(ar_webhook_json_check("{}\0", 3, why, sizeof(why)), AR_EINVAL);
    /* Only len bytes count: the text need not be NUL-terminated. */
    assert_int_equal(ar_webhook_json_check("[1]xyz", 3, why, sizeof(why)), 0);
    assert_int_equal(check("\"\xff\"", why, sizeof(why)), AR_EINVAL);
    assert_string_equal(why, "the body is not UTF-8");
    assert_int_equal(check("\"\xed\xa0\x80\"", why, sizeof(why)), AR_EINVAL); /* a surrogate */
    assert_int_equal(check("\"\xc0\xaf\"", why, sizeof(why)), AR_EINVAL);     /* overlong */
}

static void test_offset_points_at_the_problem(void **state)
{
    char why[128];
    (void)state;
    assert_int_equal(check("{\"n\":1", why, sizeof(why)), AR_EINVAL);
    assert_string_equal(why, "invalid json (at offset 6)");
    assert_int_equal(check("[1,x]", why, sizeof(why)), AR_EINVAL);
    assert_string_equal(why, "invalid json (at offset 3)");
}

/* Nesting is capped under Duktape's own decoder limit (1000), with room for the event object
 * the body is embedded in. */
static void test_depth_limit(void **state)
{
    char why[128];
    char *deep = malloc(2 * 600 + 1);
    (void)state;
    for (int depth = 510; depth <= 514; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[2 * depth] = '\0';
        int rc = check(deep, why, sizeof(why));
        if (depth <= 512) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, AR_EINVAL);
            assert_string_equal(why, "nested more than 512 levels deep");
        }
    }
    /* Far deeper input is refused without exhausting the stack. */
    free(deep);
    size_t n = 200000;
    deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = '\0';
    assert_int_equal(check(deep, why, sizeof(why)), AR_EINVAL);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_json),
        cmocka_unit_test(test_refuses_what_json_parse_refuses),
        cmocka_unit_test(test_nul_and_utf8),
        cmocka_unit_test(test_offset_points_at_the_problem),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
