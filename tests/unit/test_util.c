/* Unit tests: durations, sizes, times, names (src/core/util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"

static void test_durations(void **state)
{
    int64_t ms;
    assert_int_equal(ar_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(ar_parse_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(ar_parse_duration("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(ar_parse_duration("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(ar_parse_duration("7d", &ms), 0);
    assert_int_equal(ms, 604800000);
    assert_int_equal(ar_parse_duration("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(ar_parse_duration("500", &ms), 0);
    assert_int_equal(ms, 500);
}

static void test_bad_durations(void **state)
{
    int64_t ms = 42;
    const char *bad[] = {"", "abc", "5x", "-5s", "1h30", "s", "5 m", "1e3s", "1..5s", "0x10m"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(ar_parse_duration(bad[i], &ms), 0);
    }
    assert_int_equal(ms, 42); /* untouched on failure */
    assert_int_not_equal(ar_parse_duration(NULL, &ms), 0);
}

static void test_sizes(void **state)
{
    int64_t b;
    assert_int_equal(ar_parse_size("64M", &b), 0);
    assert_int_equal(b, 64 << 20);
    assert_int_equal(ar_parse_size("1MiB", &b), 0);
    assert_int_equal(b, 1 << 20);
    assert_int_equal(ar_parse_size("512k", &b), 0);
    assert_int_equal(b, 512 << 10);
    assert_int_equal(ar_parse_size("1048576", &b), 0);
    assert_int_equal(b, 1048576);
    assert_int_equal(ar_parse_size("1.5K", &b), 0);
    assert_int_equal(b, 1536);
    assert_int_not_equal(ar_parse_size("lots", &b), 0);
    assert_int_not_equal(ar_parse_size("5Q", &b), 0);
    assert_int_not_equal(ar_parse_size("1e3K", &b), 0); /* no exponents, as for durations */
    assert_int_not_equal(ar_parse_size("-1M", &b), 0);
}

static void test_times(void **state)
{
    int64_t ms;
    char buf[40];
    assert_int_equal(ar_parse_time("2026-11-23T09:00:00Z", 0, &ms), 0);
    assert_int_equal(ms, 1795424400000LL);
    ar_format_iso_ms(ms, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23T09:00:00.000Z");
    assert_int_equal(ar_parse_time("2026-11-23T10:00:00+01:00", 0, &ms), 0);
    assert_int_equal(ms, 1795424400000LL);
    assert_int_equal(ar_parse_time("2026-11-23", 0, &ms), 0);
    assert_int_equal(ms, 1795392000000LL);
    assert_int_equal(ar_parse_time("24h", 1795424400000LL, &ms), 0);
    assert_int_equal(ms, 1795424400000LL - 86400000LL);
    assert_int_equal(ar_parse_time("2026-11-23T09:00:00.250Z", 0, &ms), 0);
    assert_int_equal(ms % 1000, 250);
    assert_int_not_equal(ar_parse_time("yesterday", 0, &ms), 0);
    assert_int_not_equal(ar_parse_time("2026-13-01", 0, &ms), 0);
    assert_int_not_equal(ar_parse_time("2026-11-23T25:00", 0, &ms), 0);
}

static void test_names_and_buffers(void **state)
{
    assert_true(ar_name_valid("nps-survey"));
    assert_true(ar_name_valid("a_b1"));
    assert_false(ar_name_valid(""));
    assert_false(ar_name_valid("../etc"));
    assert_false(ar_name_valid("a b"));
    struct ar_buf b = {0};
    ar_buf_json_string(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    ar_buf_free(&b);
    char d[32];
    ar_format_duration(850, d, sizeof(d));
    assert_string_equal(d, "850 ms");
    ar_format_duration(5 * 60000, d, sizeof(d));
    assert_string_equal(d, "5m 0s");
}

static void test_utf8(void **state)
{
    const unsigned char *u = (const unsigned char *)"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    assert_int_equal(ar_utf8_seq(u, 10), 1);
    assert_int_equal(ar_utf8_seq(u + 1, 9), 2);
    assert_int_equal(ar_utf8_seq(u + 3, 7), 3);
    assert_int_equal(ar_utf8_seq(u + 6, 4), 4);
    assert_int_equal(ar_utf8_seq(u + 6, 3), 0); /* cut short */
    assert_true(ar_utf8_valid((const char *)u, 10));
    const char *bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\x80", "\xc3("};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ar_utf8_valid(bad[i], strlen(bad[i])));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations), cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_sizes),     cmocka_unit_test(test_times),
        cmocka_unit_test(test_names_and_buffers), cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
