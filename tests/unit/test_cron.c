/* Unit tests for cron parsing, next fire times (with cronie's DST rules) and `autorun cron`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/tz.h"
#include "trigger/cron.h"

#define ALL_MINUTES ((UINT64_C(1) << 60) - 1)
#define ALL_HOURS 0xffffffu
#define ALL_DOMS 0xfffffffeu
#define ALL_MONTHS 0x1ffeu
#define ALL_DOWS 0x7fu

static struct ar_cron parse_ok(const char *expr)
{
    struct ar_cron c;
    char err[AR_CRON_ERRMAX] = "";
    int r = ar_cron_parse(expr, &c, err, sizeof(err));
    if (r != 0) {
        fail_msg("'%s' was refused: %s", expr, err);
    }
    return c;
}

static uint64_t bits(int first, ...)
{
    uint64_t b = 0;
    va_list ap;
    int v;
    va_start(ap, first);
    for (v = first; v >= 0; v = va_arg(ap, int)) {
        b |= UINT64_C(1) << v;
    }
    va_end(ap);
    return b;
}

static struct ar_tz *load(const char *name)
{
    struct ar_tz *tz = NULL;
    int r = ar_tz_load(name, &tz);
    if (r != 0) {
        fail_msg("cannot load %s: %s (is the tzdata package installed?)", name, ar_strerror(r));
    }
    return tz;
}

/* The fire times of expr in zone after `from` (read in that zone) must be exactly the given
 * ISO 8601 strings, a NULL-terminated list. Expected values were checked with `date`. */
static void expect_fires(const char *expr, const char *zone, const char *from, ...)
{
    struct ar_cron c = parse_ok(expr);
    struct ar_tz *tz = load(zone);
    const char *want;
    int64_t t, next;
    char got[AR_TZ_ISO_MAX];
    va_list ap;
    int i = 0;

    assert_int_equal(ar_tz_parse_time(from, tz, 0, &t), 0);
    va_start(ap, from);
    while ((want = va_arg(ap, const char *)) != NULL) {
        assert_int_equal(ar_cron_next(&c, tz, t, &next), 0);
        assert_true(next > t);
        assert_int_equal(ar_tz_format(tz, next, got, sizeof(got)), 0);
        if (strcmp(got, want) != 0) {
            va_end(ap);
            fail_msg("'%s' in %s from %s, fire #%d: got %s, want %s", expr, zone, from, i + 1,
                     got, want);
        }
        t = next;
        i++;
    }
    va_end(ap);
    ar_tz_destroy(tz);
}

/* --- Parsing ---------------------------------------------------------------------------- */

static void test_parse_fields(void **state)
{
    struct ar_cron c;
    (void)state;

    c = parse_ok("5 4 * * *");
    assert_true(c.minute == bits(5, -1));
    assert_true(c.hour == bits(4, -1));
    assert_true(c.dom == ALL_DOMS);
    assert_true(c.month == ALL_MONTHS);
    assert_true(c.dow == ALL_DOWS);
    assert_int_equal(c.flags, AR_CRON_DOM_STAR | AR_CRON_DOW_STAR);

    c = parse_ok("* * * * *");
    assert_true(c.minute == ALL_MINUTES);
    assert_true(c.hour == ALL_HOURS);
    assert_int_equal(c.flags, AR_CRON_MIN_STAR | AR_CRON_HOUR_STAR | AR_CRON_DOM_STAR |
                                  AR_CRON_DOW_STAR);

    c = parse_ok("*/15 0-23/6 1-30/5 */5 *");
    assert_true(c.minute == bits(0, 15, 30, 45, -1));
    assert_true(c.hour == bits(0, 6, 12, 18, -1));
    assert_true(c.dom == bits(1, 6, 11, 16, 21, 26, -1));
    assert_true(c.month == bits(1, 6, 11, -1));
    assert_int_equal(c.flags, AR_CRON_MIN_STAR | AR_CRON_DOW_STAR);

    /* "N/STEP" runs from N to the end of the field. */
    c = parse_ok("5/10 9/4 28/2 11/1 1/2");
    assert_true(c.minute == bits(5, 15, 25, 35, 45, 55, -1));
    assert_true(c.hour == bits(9, 13, 17, 21, -1));
    assert_true(c.dom == bits(28, 30, -1));
    assert_true(c.month == bits(11, 12, -1));
    assert_true(c.dow == bits(1, 3, 5, -1));
    assert_int_equal(c.flags, 0);

    /* Lists mix every form; duplicates are harmless; blanks may be tabs. */
    c = parse_ok("  0,30,59,0\t9-11,13,20-23/2  1,15,31 1-3,12 1-5  ");
    assert_true(c.minute == bits(0, 30, 59, -1));
    assert_true(c.hour == bits(9, 10, 11, 13, 20, 22, -1));
    assert_true(c.dom == bits(1, 15, 31, -1));
    assert_true(c.month == bits(1, 2, 3, 12, -1));
    assert_true(c.dow == bits(1, 2, 3, 4, 5, -1));

    /* A day field that begins with '*' counts as starred even with a step or a list. */
    c = parse_ok("0 0 */2,5 * 1");
    assert_int_equal(c.flags, AR_CRON_DOM_STAR);
    c = parse_ok("0 0 1 * */2");
    assert_true(c.dow == bits(0, 2, 4, 6, -1));
    assert_int_equal(c.flags, AR_CRON_DOW_STAR);
}

static void test_parse_names_and_sunday(void **state)
{
    struct ar_cron c;
    (void)state;

    c = parse_ok("0 0 * jan-MAR,Dec mon-fri");
    assert_true(c.month == bits(1, 2, 3, 12, -1));
    assert_true(c.dow == bits(1, 2, 3, 4, 5, -1));
    c = parse_ok("0 0 * Feb,aug-OCT/2 SAT,sun");
    assert_true(c.month == bits(2, 8, 10, -1));
    assert_true(c.dow == bits(0, 6, -1));
    /* Sunday is 0 or 7, and SUN may end a range. */
    assert_true(parse_ok("0 0 * * 7").dow == bits(0, -1));
    assert_true(parse_ok("0 0 * * 0").dow == bits(0, -1));
    assert_true(parse_ok("0 0 * * SUN").dow == bits(0, -1));
    assert_true(parse_ok("0 0 * * 5-7").dow == bits(0, 5, 6, -1));
    assert_true(parse_ok("0 0 * * FRI-SUN").dow == bits(0, 5, 6, -1));
    assert_true(parse_ok("0 0 * * 0-7").dow == ALL_DOWS);
    assert_true(parse_ok("0 0 * * SUN-SAT").dow == ALL_DOWS);
    assert_true(parse_ok("0 0 * * */7").dow == bits(0, -1));
}

static void test_parse_macros(void **state)
{
    struct ar_cron c, d;
    (void)state;

    c = parse_ok("@hourly");
    assert_true(c.minute == 1 && c.hour == ALL_HOURS && c.dom == ALL_DOMS);
    assert_true(c.month == ALL_MONTHS && c.dow == ALL_DOWS);
    assert_int_equal(c.flags, AR_CRON_HOUR_STAR);
    c = parse_ok("@daily");
    assert_true(c.minute == 1 && c.hour == 1 && c.dom == ALL_DOMS && c.dow == ALL_DOWS);
    assert_int_equal(c.flags, 0);
    d = parse_ok("  @midnight ");
    assert_memory_equal(&c, &d, sizeof(c));
    d = parse_ok("@DAILY");
    assert_memory_equal(&c, &d, sizeof(c));
    c = parse_ok("@weekly");
    assert_true(c.minute == 1 && c.hour == 1 && c.dom == ALL_DOMS && c.dow == bits(0, -1));
    assert_int_equal(c.flags, AR_CRON_DOW_STAR);
    c = parse_ok("@monthly");
    assert_true(c.dom == bits(1, -1) && c.month == ALL_MONTHS && c.dow == ALL_DOWS);
    assert_int_equal(c.flags, AR_CRON_DOW_STAR);
    c = parse_ok("@yearly");
    assert_true(c.minute == 1 && c.hour == 1 && c.dom == bits(1, -1) && c.month == bits(1, -1));
    d = parse_ok("@annually");
    assert_memory_equal(&c, &d, sizeof(c));

    expect_fires("@weekly", "UTC", "2026-01-01T00:00Z", "2026-01-04T00:00:00+00:00",
                 "2026-01-11T00:00:00+00:00", NULL);
    expect_fires("@monthly", "UTC", "2026-01-15T00:00Z", "2026-02-01T00:00:00+00:00",
                 "2026-03-01T00:00:00+00:00", NULL);
    expect_fires("@yearly", "UTC", "2026-06-01T00:00Z", "2027-01-01T00:00:00+00:00",
                 "2028-01-01T00:00:00+00:00", NULL);
    expect_fires("@hourly", "UTC", "2026-06-01T00:00Z", "2026-06-01T01:00:00+00:00",
                 "2026-06-01T02:00:00+00:00", NULL);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *expr, *msg;
    } cases[] = {
        {"0 25 * * *", "hour: 25 is out of range 0-23"},
        {"60 * * * *", "minute: 60 is out of range 0-59"},
        {"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
        {"0 0 32 * *", "day-of-month: 32 is out of range 1-31"},
        {"0 0 * 0 *", "month: 0 is out of range 1-12"},
        {"0 0 * 13 *", "month: 13 is out of range 1-12"},
        {"0 0 * * 8", "day-of-week: 8 is out of range 0-7"},
        {"0 0 * * 1-8", "day-of-week: 8 is out of range 0-7"},
        {"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
        {"0 0 * * FUNDAY", "day-of-week: unknown name 'FUNDAY'"},
        {"0 0 * * MONDAY", "day-of-week: unknown name 'MONDAY'"},
        {"0 0 * * MON-FUN", "day-of-week: unknown name 'FUN'"},
        {"0 0 * FOO *", "month: unknown name 'FOO'"},
        {"0 0 * MON *", "month: unknown name 'MON'"},
        {"abc * * * *", "minute: 'abc' is not a number (expected 0-59)"},
        {"0 0 L * *", "day-of-month: 'L' is not a number (expected 1-31)"},
        {"0 0 ? * MON", "day-of-month: unexpected '?'"},
        {"0 0 * * MON#2", "day-of-week: unexpected '#' in 'MON#2'"},
        {"*5 * * * *", "minute: unexpected '5' in '*5'"},
        {"*-5 * * * *", "minute: unexpected '-' in '*-5'"},
        {"1-2-3 * * * *", "minute: unexpected '-' in '1-2-3'"},
        {"-5 * * * *", "minute: unexpected '-'"},
        {"1- * * * *", "minute: a value is missing"},
        {"*/0 * * * *", "minute: step 0 is out of range 1-60"},
        {"*/61 * * * *", "minute: step 61 is out of range 1-60"},
        {"0 */25 * * *", "hour: step 25 is out of range 1-24"},
        {"*/ * * * *", "minute: a step must follow '/' in '*/'"},
        {"*/x * * * *", "minute: a step must follow '/' in '*/x'"},
        {"1/2/3 * * * *", "minute: unexpected '/' in '1/2/3'"},
        {"1,,2 * * * *", "minute: empty item in list"},
        {"1, * * * *", "minute: empty item in list"},
        {"5-1 * * * *", "minute: range '5-1' runs backwards"},
        {"0 0 * * FRI-MON", "day-of-week: range 'FRI-MON' runs backwards"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
        {"0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
        {"", "empty expression (expected 5 fields: minute hour day-of-month month "
             "day-of-week)"},
        {"   ", "empty expression (expected 5 fields: minute hour day-of-month month "
                "day-of-week)"},
        {"@reboot", "@reboot is not supported: it has no fire times"},
        {"@fortnightly", "unknown macro '@fortnightly' (expected @hourly, @daily, @midnight, "
                         "@weekly, @monthly, @yearly or @annually)"},
        {"@", "unknown macro '@' (expected @hourly, @daily, @midnight, @weekly, @monthly, "
              "@yearly or @annually)"},
        {"@daily 5", "unexpected '5' after '@daily'"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ar_cron c;
        char err[AR_CRON_ERRMAX] = "";
        memset(&c, 0xab, sizeof(c));
        if (ar_cron_parse(cases[i].expr, &c, err, sizeof(err)) != AR_ESYNTAX) {
            fail_msg("'%s' was accepted", cases[i].expr);
        }
        if (strcmp(err, cases[i].msg) != 0) {
            fail_msg("'%s': got \"%s\", want \"%s\"", cases[i].expr, err, cases[i].msg);
        }
        /* The out-parameter is untouched on failure. */
        assert_int_equal(c.flags, 0xab);
        /* A NULL or tiny buffer is fine. */
        assert_int_equal(ar_cron_parse(cases[i].expr, &c, NULL, 0), AR_ESYNTAX);
        assert_int_equal(ar_cron_parse(cases[i].expr, &c, err, 4), AR_ESYNTAX);
        assert_int_equal(strlen(err), 3);
    }
    assert_int_equal(ar_cron_parse(NULL, NULL, NULL, 0), AR_EINVAL);
}

/* --- Next fire time without DST --------------------------------------------------------- */

static void test_next_basic(void **state)
{
    (void)state;

    expect_fires("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00+00:00",
                 "2026-01-01T00:30:00+00:00", "2026-01-01T00:45:00+00:00",
                 "2026-01-01T01:00:00+00:00", NULL);
    /* Strictly after: a fire time itself is not returned again. */
    expect_fires("*/15 * * * *", "UTC", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00+00:00",
                 NULL);
    expect_fires("*/15 * * * *", "UTC", "2026-01-01T00:14:59Z", "2026-01-01T00:15:00+00:00",
                 NULL);
    expect_fires("* * * * *", "UTC", "2026-12-31T23:59:30Z", "2027-01-01T00:00:00+00:00",
                 "2027-01-01T00:01:00+00:00", NULL);
    expect_fires("*/15 9-17 * * MON-FRI", "America/New_York", "2026-01-09T17:40",
                 "2026-01-09T17:45:00-05:00", "2026-01-12T09:00:00-05:00",
                 "2026-01-12T09:15:00-05:00", NULL);
    expect_fires("0 9 * * MON-FRI", "Europe/Berlin", "2026-07-03T09:00:00+02:00",
                 "2026-07-06T09:00:00+02:00", "2026-07-07T09:00:00+02:00", NULL);
}

static void test_next_day_semantics(void **state)
{
    (void)state;

    /* Both day fields restricted: the 13th OR any Friday (cronie, Vixie cron). */
    expect_fires("0 0 13 * FRI", "UTC", "2026-01-01T00:00Z", "2026-01-02T00:00:00+00:00",
                 "2026-01-09T00:00:00+00:00", "2026-01-13T00:00:00+00:00",
                 "2026-01-16T00:00:00+00:00", "2026-01-23T00:00:00+00:00",
                 "2026-01-30T00:00:00+00:00", "2026-02-06T00:00:00+00:00",
                 "2026-02-13T00:00:00+00:00", "2026-02-20T00:00:00+00:00", NULL);
    /* One day field starred (even with a step): both must match. */
    expect_fires("0 0 */2 * FRI", "UTC", "2026-01-01T00:00Z", "2026-01-09T00:00:00+00:00",
                 "2026-01-23T00:00:00+00:00", "2026-02-13T00:00:00+00:00", NULL);
    expect_fires("0 0 13 * *", "UTC", "2026-01-01T00:00Z", "2026-01-13T00:00:00+00:00",
                 "2026-02-13T00:00:00+00:00", NULL);
    expect_fires("0 0 * * FRI", "UTC", "2026-01-01T00:00Z", "2026-01-02T00:00:00+00:00",
                 "2026-01-09T00:00:00+00:00", NULL);
    /* Sunday as 0 and as 7. */
    expect_fires("0 12 * * 7", "UTC", "2026-01-01T00:00Z", "2026-01-04T12:00:00+00:00",
                 "2026-01-11T12:00:00+00:00", NULL);
    expect_fires("0 12 * * 0", "UTC", "2026-01-01T00:00Z", "2026-01-04T12:00:00+00:00", NULL);
    /* Names, with the day-of-week restricting a starred day-of-month. */
    expect_fires("30 8 * feb Mon", "UTC", "2026-01-01T00:00Z", "2026-02-02T08:30:00+00:00",
                 "2026-02-09T08:30:00+00:00", "2026-02-16T08:30:00+00:00",
                 "2026-02-23T08:30:00+00:00", "2027-02-01T08:30:00+00:00", NULL);
}

static void test_next_month_ends(void **state)
{
    struct ar_cron c;
    int64_t next = 99;
    (void)state;

    expect_fires("0 0 31 * *", "UTC", "2026-01-31T00:00Z", "2026-03-31T00:00:00+00:00",
                 "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00",
                 "2026-08-31T00:00:00+00:00", "2026-10-31T00:00:00+00:00",
                 "2026-12-31T00:00:00+00:00", NULL);
    expect_fires("0 0 29 2 *", "UTC", "2026-01-01T00:00Z", "2028-02-29T00:00:00+00:00",
                 "2032-02-29T00:00:00+00:00", NULL);
    /* 2100 is not a leap year, so the gap is eight years. */
    expect_fires("0 0 29 2 *", "UTC", "2096-02-29T00:00Z", "2104-02-29T00:00:00+00:00", NULL);
    expect_fires("59 23 28-31 2 *", "UTC", "2028-02-28T23:59Z", "2028-02-29T23:59:00+00:00",
                 "2029-02-28T23:59:00+00:00", NULL);
    expect_fires("0 0 1 * *", "UTC", "2026-12-15T00:00Z",
                 "2027-01-01T00:00:00+00:00", NULL);
    /* A Feb 29 that must also be a Sunday: 2032, then 2060. */
    expect_fires("0 0 29 2 */7", "UTC", "2026-01-01T00:00Z", "2032-02-29T00:00:00+00:00",
                 "2060-02-29T00:00:00+00:00", NULL);

    /* Schedules that never fire end with AR_ENOENT after the bounded search. */
    c = parse_ok("0 0 30 2 *");
    assert_int_equal(ar_cron_next(&c, NULL, 0, &next), AR_ENOENT);
    c = parse_ok("0 0 31 4,6,9,11 *");
    assert_int_equal(ar_cron_next(&c, NULL, 0, &next), AR_ENOENT);
    c = parse_ok("0 0 31 2 */7");
    assert_int_equal(ar_cron_next(&c, NULL, 0, &next), AR_ENOENT);
    assert_int_equal(next, 99);

    /* Instants outside the years 1-9999 are refused; near the end the search stops. */
    c = parse_ok("* * * * *");
    assert_int_equal(ar_cron_next(&c, NULL, INT64_C(253402300800), &next), AR_ERANGE);
    assert_int_equal(ar_cron_next(&c, NULL, INT64_C(-62135596801), &next), AR_ERANGE);
    assert_int_equal(ar_cron_next(&c, NULL, INT64_C(253402300740), &next), AR_ENOENT);
    assert_int_equal(ar_cron_next(&c, NULL, INT64_C(253402300739), &next), 0);
    assert_int_equal(next, INT64_C(253402300740));
    assert_int_equal(ar_cron_next(NULL, NULL, 0, &next), AR_EINVAL);
}

/* A brute-force reference: test every minute against the bits. */
static int matches(const struct ar_cron *c, int64_t minute)
{
    int64_t days = minute >= 0 ? minute / 1440 : -((-minute + 1439) / 1440), y;
    int mod = (int)(minute - days * 1440), m, d, dom, dow;

    ar__civil_from_days(days, &y, &m, &d);
    if (!((c->minute >> (mod % 60)) & 1) || !((c->hour >> (mod / 60)) & 1) ||
        !((c->month >> m) & 1)) {
        return 0;
    }
    dom = (c->dom >> d) & 1;
    dow = (c->dow >> ar__weekday(days)) & 1;
    return (c->flags & (AR_CRON_DOM_STAR | AR_CRON_DOW_STAR)) ? dom && dow : dom || dow;
}

static void test_next_brute_force(void **state)
{
    static const char *const exprs[] = {
        "* * * * *",     "*/7 */5 * * *",     "0 0 13 * FRI",   "59 23 31 * *",
        "1-4 2 * * 0",   "0 12 1,15 * 1-5",   "*/20 * */3 * *", "30 6 * JAN,JUL */2",
        "0 0 29 2 *",    "15 4 28-31 * SAT",  "5/10 1/3 * * *", "0 0 1 1 *",
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct ar_cron c = parse_ok(exprs[i]);
        int64_t t = INT64_C(1767225600) - 17, next, m; /* just before 2026-01-01 */
        int n;
        /* Up to 60 fire times, within three years so that the scan stays quick. */
        for (n = 0; n < 60 && t < INT64_C(1861920000); n++) {
            assert_int_equal(ar_cron_next(&c, NULL, t, &next), 0);
            for (m = t / 60 + 1; !matches(&c, m); m++) {
            }
            if (next != m * 60) {
                fail_msg("'%s' after %lld: got %lld, want %lld", exprs[i], (long long)t,
                         (long long)next, (long long)(m * 60));
            }
            t = next + (n % 3 == 0 ? 59 : 0); /* also from inside a fire minute */
        }
    }
}

/* --- Daylight-saving time --------------------------------------------------------------- */

static void test_dst_berlin_spring(void **state)
{
    struct ar_cron c = parse_ok("30 2 * * *");
    struct ar_tz *tz = load("Europe/Berlin");
    int64_t t, next;
    (void)state;

    /* 02:00 CET jumps to 03:00 CEST on 2026-03-29: 02:30 fires once, when the gap ends. */
    expect_fires("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00", "2026-03-28T02:30:00+01:00",
                 "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", NULL);
    assert_int_equal(ar_tz_parse_time("2026-03-28T12:00", tz, 0, &t), 0);
    assert_int_equal(ar_cron_next(&c, tz, t, &next), 0);
    assert_int_equal(next, INT64_C(1774746000)); /* 2026-03-29T01:00:00Z */

    /* Every fixed time in the gap lands on 03:00, once; 03:00 itself fires once too. */
    expect_fires("15,45 2 * * *", "Europe/Berlin", "2026-03-29T00:00",
                 "2026-03-29T03:00:00+02:00", "2026-03-30T02:15:00+02:00", NULL);
    expect_fires("0 2,3 * * *", "Europe/Berlin", "2026-03-29T00:00",
                 "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", NULL);
    expect_fires("0 3 * * *", "Europe/Berlin", "2026-03-29T00:00", "2026-03-29T03:00:00+02:00",
                 "2026-03-30T03:00:00+02:00", NULL);
    /* Wildcard schedules follow the clock: the skipped hour simply does not happen. */
    expect_fires("*/30 * * * *", "Europe/Berlin", "2026-03-29T01:00",
                 "2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00",
                 "2026-03-29T03:30:00+02:00", NULL);
    expect_fires("* 2 * * *", "Europe/Berlin", "2026-03-29T00:00", "2026-03-30T02:00:00+02:00",
                 NULL);
    expect_fires("30 */1 * * *", "Europe/Berlin", "2026-03-29T01:00",
                 "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", NULL);
    /* The same far beyond the zone file's table, from its POSIX footer. */
    expect_fires("30 2 * * *", "Europe/Berlin", "2100-03-27T12:00", "2100-03-28T03:00:00+02:00",
                 "2100-03-29T02:30:00+02:00", NULL);
    ar_tz_destroy(tz);
}

static void test_dst_berlin_fall(void **state)
{
    (void)state;

    /* 03:00 CEST falls back to 02:00 CET on 2026-10-25: a fixed 02:30 fires on the first
     * pass only; wildcard schedules fire on both. */
    expect_fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00", "2026-10-25T02:30:00+02:00",
                 "2026-10-26T02:30:00+01:00", NULL);
    expect_fires("*/30 * * * *", "Europe/Berlin", "2026-10-25T01:45",
                 "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                 "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                 "2026-10-25T03:00:00+01:00", NULL);
    expect_fires("0 3 * * *", "Europe/Berlin", "2026-10-25T00:00", "2026-10-25T03:00:00+01:00",
                 NULL);
    expect_fires("30 2 * * *", "Europe/Berlin", "2100-10-30T12:00", "2100-10-31T02:30:00+02:00",
                 "2100-11-01T02:30:00+01:00", NULL);
}

static void test_dst_new_york(void **state)
{
    struct ar_cron c = parse_ok("30 1 * * *");
    struct ar_tz *tz = load("America/New_York");
    int64_t next;
    (void)state;

    /* Spring forward, 2026-03-08 02:00 EST -> 03:00 EDT. */
    expect_fires("30 2 * * *", "America/New_York", "2026-03-07T12:00",
                 "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", NULL);
    expect_fires("0 * * * *", "America/New_York", "2026-03-08T00:30",
                 "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00",
                 "2026-03-08T04:00:00-04:00", NULL);

    /* Fall back, 2026-11-01 02:00 EDT -> 01:00 EST. */
    expect_fires("30 1 * * *", "America/New_York", "2026-10-31T12:00",
                 "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", NULL);
    assert_int_equal(ar_cron_next(&c, tz, INT64_C(1793476800), &next), 0); /* 11-01 00:00 EDT */
    assert_int_equal(next, INT64_C(1793511000));                            /* 05:30Z */
    expect_fires("0 1 * * *", "America/New_York", "2026-11-01T00:00",
                 "2026-11-01T01:00:00-04:00", "2026-11-02T01:00:00-05:00", NULL);
    expect_fires("*/30 * * * *", "America/New_York", "2026-11-01T00:45",
                 "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
                 "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00",
                 "2026-11-01T02:00:00-05:00", NULL);
    expect_fires("0 * * * *", "America/New_York", "2026-11-01T00:30",
                 "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                 "2026-11-01T02:00:00-05:00", NULL);
    expect_fires("@hourly", "America/New_York", "2026-11-01T00:30",
                 "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                 "2026-11-01T02:00:00-05:00", NULL);
    expect_fires("0 */1 * * *", "America/New_York", "2026-11-01T00:30",
                 "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", NULL);
    /* A wildcard minute with a fixed hour is a wildcard schedule too, as in cronie. */
    expect_fires("*/20 1 * * *", "America/New_York", "2026-11-01T00:30",
                 "2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00",
                 "2026-11-01T01:40:00-04:00", "2026-11-01T01:00:00-05:00",
                 "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
                 "2026-11-02T01:00:00-05:00", NULL);
    /* 2100, from the footer. */
    expect_fires("30 1 * * *", "America/New_York", "2100-11-06T12:00",
                 "2100-11-07T01:30:00-04:00", "2100-11-08T01:30:00-05:00", NULL);
    expect_fires("30 2 * * *", "America/New_York", "2100-03-13T12:00",
                 "2100-03-14T03:00:00-04:00", NULL);
    ar_tz_destroy(tz);
}

static void test_dst_other_zones(void **state)
{
    (void)state;

    /* Southern hemisphere: Sydney springs forward in October, falls back in April. */
    expect_fires("30 2 * * *", "Australia/Sydney", "2026-10-03T12:00",
                 "2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00", NULL);
    expect_fires("30 2 * * *", "Australia/Sydney", "2026-04-04T12:00",
                 "2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00", NULL);
    /* Lord Howe moves by 30 minutes: 02:00 -> 02:30 on 2026-10-04. */
    expect_fires("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00",
                 "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00", NULL);
    /* Santiago changes at midnight: 2026-09-06 00:00 -> 01:00, so midnight jobs run at 01:00. */
    expect_fires("0 0 * * *", "America/Santiago", "2026-09-05T12:00",
                 "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00", NULL);
}

static void test_dst_posix_zone_matches_file(void **state)
{
    static const char *const exprs[] = {"30 2 * * *", "*/30 * * * *", "30 1 * * *",
                                        "0 0-3 * * *", "@hourly"};
    struct ar_tz *file = load("Europe/Berlin"), *rule = NULL;
    size_t i;
    (void)state;

    /* A zone built from the POSIX rule alone schedules exactly like the zone file. */
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.0,M10.5.0/3", &rule), 0);
    for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct ar_cron c = parse_ok(exprs[i]);
        int64_t a = INT64_C(1767225600), b = a, na, nb; /* 2026-01-01 */
        int n;
        for (n = 0; n < 800; n++) {
            assert_int_equal(ar_cron_next(&c, file, a, &na), 0);
            assert_int_equal(ar_cron_next(&c, rule, b, &nb), 0);
            assert_int_equal(na, nb);
            a = na;
            b = nb;
        }
    }
    ar_tz_destroy(file);
    ar_tz_destroy(rule);
}

/* --- autorun cron ----------------------------------------------------------------------- */

struct cli_result {
    int status;
    char out[4096];
    char err[1024];
};

static void slurp(FILE *f, char *buf, size_t size)
{
    size_t n;
    rewind(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs ar__cli_cron with stdout and stderr captured; the arguments end with NULL. */
static void run_cli(struct cli_result *res, ...)
{
    char *argv[16];
    int argc = 0, saved_out, saved_err;
    FILE *out = tmpfile(), *err = tmpfile();
    va_list ap;

    assert_non_null(out);
    assert_non_null(err);
    argv[argc++] = (char *)"cron";
    va_start(ap, res);
    while ((argv[argc] = va_arg(ap, char *)) != NULL) {
        argc++;
    }
    va_end(ap);

    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    res->status = ar__cli_cron(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp(out, res->out, sizeof(res->out));
    slurp(err, res->err, sizeof(res->err));
}

static void test_cli(void **state)
{
    struct cli_result r;
    int lines = 0;
    const char *p;
    (void)state;

    run_cli(&r, "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-28T12:00", "--count",
            "3", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n"
                               "2026-03-31T02:30:00+02:00\n");
    assert_string_equal(r.err, "");

    run_cli(&r, "--json", "--tz=America/New_York", "--count=3", "--from=2026-11-01T04:30Z",
            "0 * * * *", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[\"2026-11-01T01:00:00-04:00\",\"2026-11-01T01:00:00-05:00\","
                               "\"2026-11-01T02:00:00-05:00\"]\n");

    /* Unquoted words are joined; the default count is 5. */
    run_cli(&r, "0", "9", "*", "*", "MON-FRI", "--tz", "UTC", "--from", "2026-01-01T00:00Z",
            NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "2026-01-01T09:00:00+00:00\n2026-01-02T09:00:00+00:00\n"
                               "2026-01-05T09:00:00+00:00\n2026-01-06T09:00:00+00:00\n"
                               "2026-01-07T09:00:00+00:00\n");

    /* From now, in the system zone: five lines, whatever the time is. */
    run_cli(&r, "@hourly", NULL);
    assert_int_equal(r.status, 0);
    for (p = r.out; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 5);

    run_cli(&r, "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: autorun cron EXPR"));
}

static void test_cli_errors(void **state)
{
    struct cli_result r;
    (void)state;

    run_cli(&r, "0 25 * * *", "--tz", "UTC", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "autorun: cron: hour: 25 is out of range 0-23\n");

    run_cli(&r, "0 0 * * FUNDAY", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: day-of-week: unknown name 'FUNDAY'\n");

    run_cli(&r, "0 0 30 2 *", "--tz", "UTC", "--json", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "autorun: cron: '0 0 30 2 *' never fires within 50 years\n");

    run_cli(&r, "@daily", "--tz", "Mars/Olympus", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: --tz: unknown time zone 'Mars/Olympus' "
                               "(expected an IANA name such as Europe/Berlin)\n");
    run_cli(&r, "@daily", "--tz", "../../etc/passwd", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: --tz: '../../etc/passwd' is not a valid time "
                               "zone (expected an IANA name such as Europe/Berlin)\n");

    run_cli(&r, "@daily", "--tz", "UTC", "--from", "yesterday", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "autorun: cron: --from: cannot read 'yesterday'"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err)); /* one line */

    run_cli(&r, "@daily", "--count", "0", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: --count: '0' is not a number from 1 to 1000\n");
    run_cli(&r, "@daily", "--count", "1001", NULL);
    assert_int_equal(r.status, 2);
    run_cli(&r, "@daily", "--count", "5x", NULL);
    assert_int_equal(r.status, 2);
    run_cli(&r, "@daily", "--count", "-3", NULL);
    assert_int_equal(r.status, 2);
    run_cli(&r, "@daily", "--tz", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: option --tz needs a value\n");
    run_cli(&r, "@daily", "--frobnicate", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "autorun: cron: unknown option '--frobnicate' (see autorun cron "
                               "--help)\n");
    run_cli(&r, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "autorun: cron: missing EXPR"));
    assert_string_equal(r.out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_names_and_sunday),
        cmocka_unit_test(test_parse_macros),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_basic),
        cmocka_unit_test(test_next_day_semantics),
        cmocka_unit_test(test_next_month_ends),
        cmocka_unit_test(test_next_brute_force),
        cmocka_unit_test(test_dst_berlin_spring),
        cmocka_unit_test(test_dst_berlin_fall),
        cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test(test_dst_other_zones),
        cmocka_unit_test(test_dst_posix_zone_matches_file),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_cli_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
