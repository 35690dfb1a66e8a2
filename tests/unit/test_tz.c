/* Unit tests for the TZif reader, POSIX TZ rules, civil-time helpers and ISO 8601 text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/tz.h"

/* Transition instants checked with `TZ=... date -d @N`. */
#define BERLIN_SPRING_2026 INT64_C(1774746000) /* 2026-03-29T01:00:00Z, 02:00 CET -> 03:00 CEST */
#define BERLIN_FALL_2026 INT64_C(1792890000)   /* 2026-10-25T01:00:00Z, 03:00 CEST -> 02:00 CET */
#define NY_SPRING_2026 INT64_C(1772953200)     /* 2026-03-08T07:00:00Z, 02:00 EST -> 03:00 EDT */
#define NY_FALL_2026 INT64_C(1793512800)       /* 2026-11-01T06:00:00Z, 02:00 EDT -> 01:00 EST */
#define BERLIN_SPRING_2100 INT64_C(4109878800) /* 2100-03-28T01:00:00Z */
#define BERLIN_FALL_2100 INT64_C(4128627600)   /* 2100-10-31T01:00:00Z */
#define NY_SPRING_2100 INT64_C(4108690800)     /* 2100-03-14T07:00:00Z */
#define NY_FALL_2100 INT64_C(4129250400)       /* 2100-11-07T06:00:00Z */
#define SYDNEY_END_2026 INT64_C(1775318400)    /* 2026-04-04T16:00:00Z, 03:00 AEDT -> 02:00 AEST */
#define SYDNEY_START_2026 INT64_C(1791043200)  /* 2026-10-03T16:00:00Z, 02:00 AEST -> 03:00 AEDT */
#define SYDNEY_END_2100 INT64_C(4110451200)    /* 2100-04-03T16:00:00Z */

static struct ar_tz *load(const char *name)
{
    struct ar_tz *tz = NULL;
    int r = ar_tz_load(name, &tz);
    if (r != 0) {
        fprintf(stderr, "cannot load %s: %s (is the tzdata package installed?)\n", name,
                ar_strerror(r));
    }
    assert_int_equal(r, 0);
    assert_non_null(tz);
    return tz;
}

static void assert_around(const struct ar_tz *tz, int64_t t, int before, int after)
{
    assert_int_equal(ar_tz_offset_at(tz, t - 1), before);
    assert_int_equal(ar_tz_offset_at(tz, t), after);
}

static void test_civil(void **state)
{
    int64_t d, y;
    int m, day;
    (void)state;

    assert_int_equal(ar__days_from_civil(1970, 1, 1), 0);
    assert_int_equal(ar__days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(ar__days_from_civil(1969, 12, 31), -1);
    assert_int_equal(ar__days_from_civil(1, 1, 1), -719162);
    assert_int_equal(ar__weekday(0), 4);                                  /* Thursday */
    assert_int_equal(ar__weekday(ar__days_from_civil(2026, 3, 29)), 0);   /* Sunday */
    assert_int_equal(ar__weekday(ar__days_from_civil(1969, 12, 28)), 0); /* Sunday */
    assert_int_equal(ar__days_in_month(2100, 2), 28);
    assert_int_equal(ar__days_in_month(2000, 2), 29);
    assert_int_equal(ar__days_in_month(2028, 2), 29);
    assert_int_equal(ar__days_in_month(2026, 4), 30);
    assert_int_equal(ar__days_in_month(2026, 12), 31);
    for (d = -1000000; d <= 3000000; d += 997) {
        ar__civil_from_days(d, &y, &m, &day);
        assert_int_equal(ar__days_from_civil(y, m, day), d);
        assert_true(m >= 1 && m <= 12 && day >= 1 && day <= ar__days_in_month(y, m));
    }
    ar__civil_from_days(ar__days_from_civil(2100, 2, 28) + 1, &y, &m, &day);
    assert_int_equal(y, 2100);
    assert_int_equal(m, 3);
    assert_int_equal(day, 1);
}

static void test_berlin_offsets(void **state)
{
    struct ar_tz *tz = load("Europe/Berlin");
    (void)state;

    assert_string_equal(ar_tz_name(tz), "Europe/Berlin");
    assert_around(tz, BERLIN_SPRING_2026, 3600, 7200);
    assert_around(tz, BERLIN_FALL_2026, 7200, 3600);
    /* Far after the last transition in the file, the POSIX footer rule answers. */
    assert_around(tz, BERLIN_SPRING_2100, 3600, 7200);
    assert_around(tz, BERLIN_FALL_2100, 7200, 3600);
    /* 1890-01-01: before standard time (1893), Berlin's local mean time was +0:53:28. */
    assert_int_equal(ar_tz_offset_at(tz, INT64_C(-2524521600)), 3208);
    ar_tz_destroy(tz);
}

static void test_new_york_offsets(void **state)
{
    struct ar_tz *tz = load("America/New_York");
    (void)state;

    assert_around(tz, NY_SPRING_2026, -18000, -14400);
    assert_around(tz, NY_FALL_2026, -14400, -18000);
    assert_around(tz, NY_SPRING_2100, -18000, -14400);
    assert_around(tz, NY_FALL_2100, -14400, -18000);
    ar_tz_destroy(tz);
}

static void test_southern_hemisphere(void **state)
{
    struct ar_tz *tz = load("Australia/Sydney");
    (void)state;

    assert_around(tz, SYDNEY_END_2026, 39600, 36000);
    assert_around(tz, SYDNEY_START_2026, 36000, 39600);
    assert_around(tz, SYDNEY_END_2100, 39600, 36000);
    ar_tz_destroy(tz);
}

static void test_next_transition(void **state)
{
    struct ar_tz *tz = load("Europe/Berlin");
    struct ar_tz *tokyo = load("Asia/Tokyo");
    struct ar_tz *utc = load("UTC");
    int64_t at = -1;
    (void)state;

    assert_int_equal(ar_tz_next_transition(tz, INT64_C(1767225600), &at), 0); /* 2026-01-01 */
    assert_int_equal(at, BERLIN_SPRING_2026);
    assert_int_equal(ar_tz_next_transition(tz, at - 1, &at), 0);
    assert_int_equal(at, BERLIN_SPRING_2026);
    assert_int_equal(ar_tz_next_transition(tz, at, &at), 0); /* strictly after */
    assert_int_equal(at, BERLIN_FALL_2026);
    assert_int_equal(ar_tz_next_transition(tz, INT64_C(4102444800), &at), 0); /* 2100-01-01 */
    assert_int_equal(at, BERLIN_SPRING_2100);
    assert_int_equal(ar_tz_next_transition(tz, at, &at), 0);
    assert_int_equal(at, BERLIN_FALL_2100);

    at = 42;
    assert_int_equal(ar_tz_next_transition(tokyo, INT64_C(1767225600), &at), AR_ENOENT);
    assert_int_equal(ar_tz_next_transition(utc, 0, &at), AR_ENOENT);
    assert_int_equal(at, 42);
    assert_int_equal(ar_tz_offset_at(tokyo, INT64_C(1767225600)), 32400);
    assert_int_equal(ar_tz_offset_at(utc, INT64_C(1767225600)), 0);
    assert_int_equal(ar_tz_offset_at(NULL, 123), 0);
    ar_tz_destroy(tz);
    ar_tz_destroy(tokyo);
    ar_tz_destroy(utc);
}

static void test_local_to_utc(void **state)
{
    struct ar_tz *tz = load("Europe/Berlin");
    struct ar_tz *ny = load("America/New_York");
    struct ar_tz_local l;
    int64_t day = ar__days_from_civil(2026, 3, 29) * 86400;
    (void)state;

    /* 02:30 does not exist on 2026-03-29 in Berlin: the gap ends at 01:00Z. */
    assert_int_equal(ar_tz_local_to_utc(tz, day + 2 * 3600 + 1800, &l), 0);
    assert_int_equal(l.kind, AR_TZ_GAP);
    assert_int_equal(l.first, BERLIN_SPRING_2026);
    assert_int_equal(l.second, BERLIN_SPRING_2026);

    /* 01:59:59 is the last second of CET, 03:00 the first of CEST. */
    assert_int_equal(ar_tz_local_to_utc(tz, day + 2 * 3600 - 1, &l), 0);
    assert_int_equal(l.kind, AR_TZ_UNIQUE);
    assert_int_equal(l.first, BERLIN_SPRING_2026 - 1);
    assert_int_equal(ar_tz_local_to_utc(tz, day + 3 * 3600, &l), 0);
    assert_int_equal(l.kind, AR_TZ_UNIQUE);
    assert_int_equal(l.first, BERLIN_SPRING_2026);

    /* 02:30 on 2026-10-25 happens twice: 00:30Z (CEST) and 01:30Z (CET). */
    day = ar__days_from_civil(2026, 10, 25) * 86400;
    assert_int_equal(ar_tz_local_to_utc(tz, day + 2 * 3600 + 1800, &l), 0);
    assert_int_equal(l.kind, AR_TZ_AMBIGUOUS);
    assert_int_equal(l.first, INT64_C(1792888200));
    assert_int_equal(l.second, INT64_C(1792891800));

    /* An ordinary summer noon. */
    assert_int_equal(ar_tz_local_to_utc(tz, ar__days_from_civil(2026, 7, 1) * 86400 + 12 * 3600,
                                        &l), 0);
    assert_int_equal(l.kind, AR_TZ_UNIQUE);
    assert_int_equal(l.first, INT64_C(1782900000));
    assert_int_equal(l.second, l.first);

    /* New York, 01:30 on 2026-11-01: 05:30Z (EDT) and 06:30Z (EST). */
    day = ar__days_from_civil(2026, 11, 1) * 86400;
    assert_int_equal(ar_tz_local_to_utc(ny, day + 3600 + 1800, &l), 0);
    assert_int_equal(l.kind, AR_TZ_AMBIGUOUS);
    assert_int_equal(l.first, INT64_C(1793511000));
    assert_int_equal(l.second, INT64_C(1793511000) + 3600);
    ar_tz_destroy(tz);
    ar_tz_destroy(ny);
}

static void test_posix_rules(void **state)
{
    struct ar_tz *cet = NULL, *us = NULL, *berlin = load("Europe/Berlin"), *tz = NULL;
    struct ar_tz *ny = load("America/New_York");
    int64_t t, at;
    (void)state;

    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.0,M10.5.0/3", &cet), 0);
    assert_int_equal(ar_tz_from_posix("EST5EDT,M3.2.0,M11.1.0", &us), 0);
    assert_around(cet, BERLIN_SPRING_2026, 3600, 7200);
    assert_around(cet, BERLIN_FALL_2100, 7200, 3600);
    assert_around(us, NY_SPRING_2026, -18000, -14400);
    assert_around(us, NY_FALL_2100, -14400, -18000);
    /* The rule agrees with the zone files hour by hour over 2020-2040. */
    for (t = INT64_C(1577836800); t < INT64_C(2208988800); t += 3600) {
        assert_int_equal(ar_tz_offset_at(cet, t), ar_tz_offset_at(berlin, t));
        assert_int_equal(ar_tz_offset_at(us, t), ar_tz_offset_at(ny, t));
    }
    ar_tz_destroy(cet);
    ar_tz_destroy(us);

    /* Without a rule, daylight time follows the US rules, as in tzcode. */
    assert_int_equal(ar_tz_from_posix("EST5EDT", &tz), 0);
    assert_around(tz, NY_SPRING_2026, -18000, -14400);
    ar_tz_destroy(tz);

    /* "Jn" never counts Feb 29: J60 is March 1 even in 2028. */
    assert_int_equal(ar_tz_from_posix("AAA0BBB,J60/0,J300/0", &tz), 0);
    assert_around(tz, INT64_C(1835481600), 0, 3600); /* 2028-03-01T00:00Z */
    assert_around(tz, INT64_C(1803859200), 0, 3600); /* 2027-03-01T00:00Z */
    ar_tz_destroy(tz);
    /* Zero-based "n" counts it: day 59 is Feb 29 in 2028 and March 1 in 2027. */
    assert_int_equal(ar_tz_from_posix("AAA0BBB,59/0,299/0", &tz), 0);
    assert_around(tz, INT64_C(1835395200), 0, 3600); /* 2028-02-29T00:00Z */
    assert_around(tz, INT64_C(1803859200), 0, 3600); /* 2027-03-01T00:00Z */
    ar_tz_destroy(tz);

    /* Offsets with minutes and quoted names; no daylight time means no transitions. */
    assert_int_equal(ar_tz_from_posix("<+0330>-3:30", &tz), 0);
    assert_int_equal(ar_tz_offset_at(tz, 0), 12600);
    assert_int_equal(ar_tz_next_transition(tz, 0, &at), AR_ENOENT);
    ar_tz_destroy(tz);
    assert_int_equal(ar_tz_from_posix("<-03>3", &tz), 0);
    assert_int_equal(ar_tz_offset_at(tz, 0), -10800);
    ar_tz_destroy(tz);

    /* RFC 8536 extension: daylight time all year, written with hours beyond 24. */
    assert_int_equal(ar_tz_from_posix("EST5EDT,0/0,J365/25", &tz), 0);
    for (t = INT64_C(1767225600) - 86400; t < INT64_C(1767225600) + 86400; t += 600) {
        assert_int_equal(ar_tz_offset_at(tz, t), -14400);
    }
    assert_int_equal(ar_tz_offset_at(tz, BERLIN_FALL_2100), -14400);
    assert_int_equal(ar_tz_next_transition(tz, INT64_C(1767225600), &at), AR_ENOENT);
    ar_tz_destroy(tz);

    /* A negative transition time: 23:00 the day before, in standard time. */
    assert_int_equal(ar_tz_from_posix("AAA0BBB,M3.5.0/-1,M10.5.0", &tz), 0);
    assert_around(tz, INT64_C(1774738800), 0, 3600); /* 2026-03-28T23:00Z */
    ar_tz_destroy(tz);

    tz = NULL;
    assert_int_equal(ar_tz_from_posix("", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M13.1.0,M10.5.0", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.6.0,M10.5.0", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.7,M10.5.0", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.0", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,J0,J365", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.0/168,M10.5.0", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-25", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1:60", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("CET-1CEST,M3.5.0,M10.5.0 ", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_from_posix("<+03-3", &tz), AR_EINVAL);
    assert_null(tz);
    ar_tz_destroy(berlin);
    ar_tz_destroy(ny);
}

/* --- Hand-made TZif data ---------------------------------------------------------------- */

struct buf {
    unsigned char b[512];
    size_t n;
};

static void put8(struct buf *b, unsigned v)
{
    b->b[b->n++] = (unsigned char)v;
}

static void put32(struct buf *b, uint32_t v)
{
    put8(b, v >> 24);
    put8(b, (v >> 16) & 0xff);
    put8(b, (v >> 8) & 0xff);
    put8(b, v & 0xff);
}

static void put64(struct buf *b, int64_t v)
{
    put32(b, (uint32_t)((uint64_t)v >> 32));
    put32(b, (uint32_t)((uint64_t)v & 0xffffffffu));
}

static void put_header(struct buf *b, int version, uint32_t timecnt, uint32_t typecnt,
                       uint32_t charcnt)
{
    int i;
    memcpy(b->b + b->n, "TZif", 4);
    b->n += 4;
    put8(b, (unsigned)version);
    for (i = 0; i < 15; i++) {
        put8(b, 0);
    }
    put32(b, 0); /* isutcnt */
    put32(b, 0); /* isstdcnt */
    put32(b, 0); /* leapcnt */
    put32(b, timecnt);
    put32(b, typecnt);
    put32(b, charcnt);
}

static void put_bytes(struct buf *b, const char *s, size_t n)
{
    memcpy(b->b + b->n, s, n);
    b->n += n;
}

/* Version 1: -00:30 until 1000000, then +01:00 until 2000000, then -00:30 again. */
static void make_v1(struct buf *b)
{
    b->n = 0;
    put_header(b, 0, 2, 2, 8);
    put32(b, 1000000);
    put32(b, 2000000);
    put8(b, 1);
    put8(b, 0);
    put32(b, (uint32_t)-1800);
    put8(b, 0);
    put8(b, 0);
    put32(b, 3600);
    put8(b, 0);
    put8(b, 4);
    put_bytes(b, "AAA\0BBB\0", 8);
}

/* Version 2 with a minimal version 1 block, 64-bit times (one before 1901) and a footer. */
static void make_v2(struct buf *b, const char *footer)
{
    b->n = 0;
    put_header(b, '2', 0, 1, 1);
    put32(b, 0);
    put8(b, 0);
    put8(b, 0);
    put8(b, 0);
    put_header(b, '2', 2, 3, 13);
    put64(b, INT64_C(-5000000000));
    put64(b, INT64_C(1000000000)); /* 2001-09-09T01:46:40Z, during CEST */
    put8(b, 1);
    put8(b, 2);
    put32(b, 1000);
    put8(b, 0);
    put8(b, 0);
    put32(b, 3600);
    put8(b, 0);
    put8(b, 4);
    put32(b, 7200);
    put8(b, 1);
    put8(b, 8);
    put_bytes(b, "LMT\0CET\0CEST\0", 13);
    put8(b, '\n');
    put_bytes(b, footer, strlen(footer));
    put8(b, '\n');
}

static void test_tzif_v1(void **state)
{
    struct buf b;
    struct ar_tz *tz = NULL;
    int64_t at;
    (void)state;

    make_v1(&b);
    assert_int_equal(ar_tz_parse("Test/V1", b.b, b.n, &tz), 0);
    assert_string_equal(ar_tz_name(tz), "Test/V1");
    assert_int_equal(ar_tz_offset_at(tz, -(INT64_C(1) << 40)), -1800);
    assert_around(tz, 1000000, -1800, 3600);
    assert_around(tz, 2000000, 3600, -1800);
    assert_int_equal(ar_tz_offset_at(tz, INT64_C(1) << 40), -1800);
    assert_int_equal(ar_tz_next_transition(tz, 0, &at), 0);
    assert_int_equal(at, 1000000);
    assert_int_equal(ar_tz_next_transition(tz, 1000000, &at), 0);
    assert_int_equal(at, 2000000);
    assert_int_equal(ar_tz_next_transition(tz, 2000000, &at), AR_ENOENT);
    ar_tz_destroy(tz);
}

static void test_tzif_v2_footer(void **state)
{
    struct buf b;
    struct ar_tz *tz = NULL;
    int64_t at;
    (void)state;

    make_v2(&b, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(ar_tz_parse("Test/V2", b.b, b.n, &tz), 0);
    assert_around(tz, INT64_C(-5000000000), 1000, 3600);
    assert_around(tz, INT64_C(1000000000), 3600, 7200);
    /* After the table: the footer, 2001-10-28T01:00Z and the 2026 changes. */
    assert_int_equal(ar_tz_next_transition(tz, INT64_C(1000000000), &at), 0);
    assert_int_equal(at, INT64_C(1004230800));
    assert_around(tz, INT64_C(1004230800), 7200, 3600);
    assert_around(tz, BERLIN_SPRING_2026, 3600, 7200);
    assert_around(tz, BERLIN_FALL_2100, 7200, 3600);
    ar_tz_destroy(tz);

    /* An empty footer: the last type stays in effect. */
    make_v2(&b, "");
    assert_int_equal(ar_tz_parse("Test/V2", b.b, b.n, &tz), 0);
    assert_int_equal(ar_tz_offset_at(tz, BERLIN_FALL_2100), 7200);
    assert_int_equal(ar_tz_next_transition(tz, INT64_C(1000000000), &at), AR_ENOENT);
    ar_tz_destroy(tz);
}

static void test_tzif_corrupt(void **state)
{
    struct buf b, bad;
    struct ar_tz *tz = NULL;
    size_t i;
    (void)state;

    make_v1(&b);
    /* Every truncation is refused, never read past. */
    for (i = 0; i < b.n; i++) {
        assert_int_equal(ar_tz_parse("x", b.b, i, &tz), AR_EINVAL);
    }
    bad = b;
    bad.b[0] = 'X';
    assert_int_equal(ar_tz_parse("x", bad.b, bad.n, &tz), AR_EINVAL);
    bad = b;
    bad.b[4] = '1'; /* there is no version '1' */
    assert_int_equal(ar_tz_parse("x", bad.b, bad.n, &tz), AR_EINVAL);
    bad = b;
    bad.b[44 + 8] = 7; /* type index out of range */
    assert_int_equal(ar_tz_parse("x", bad.b, bad.n, &tz), AR_EINVAL);
    bad = b;
    bad.b[44 + 3] = 0x99; /* first transition after the second */
    bad.b[44 + 1] = 0x3f;
    assert_int_equal(ar_tz_parse("x", bad.b, bad.n, &tz), AR_EINVAL);
    bad = b;
    bad.b[44 + 10] = 0x7f; /* an offset of more than a day */
    assert_int_equal(ar_tz_parse("x", bad.b, bad.n, &tz), AR_EINVAL);

    make_v2(&b, "CET-1CEST,M3.5.0,M10.5.0/3");
    for (i = 0; i < b.n; i++) {
        assert_int_equal(ar_tz_parse("x", b.b, i, &tz), AR_EINVAL);
    }
    make_v2(&b, "not a rule");
    assert_int_equal(ar_tz_parse("x", b.b, b.n, &tz), AR_EINVAL);
    assert_null(tz);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_load_names(void **state)
{
    struct ar_tz *tz = NULL;
    char dir[] = "/tmp/ar_tz_test_XXXXXX", sub[64], path[96];
    struct buf b;
    (void)state;

    assert_int_equal(ar_tz_load("../etc/passwd", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_load("Europe/../../etc/passwd", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_load("/etc/localtime", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_load("", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_load("Europe/Berlin; rm", &tz), AR_EINVAL);
    assert_int_equal(ar_tz_load("Mars/Olympus_Mons", &tz), AR_ENOENT);
    assert_int_equal(ar_tz_load("Europe", &tz), AR_ENOENT); /* a directory */
    assert_null(tz);

    /* TZDIR moves the zone directory; UTC needs no file at all. */
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Test", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/Test/Zone", dir);
    make_v1(&b);
    write_file(path, b.b, b.n);
    assert_int_equal(setenv("TZDIR", dir, 1), 0);

    assert_int_equal(ar_tz_load("Test/Zone", &tz), 0);
    assert_string_equal(ar_tz_name(tz), "Test/Zone");
    assert_around(tz, 1000000, -1800, 3600);
    ar_tz_destroy(tz);
    assert_int_equal(ar_tz_load("Europe/Berlin", &tz), AR_ENOENT);
    assert_int_equal(ar_tz_load("UTC", &tz), 0);
    assert_string_equal(ar_tz_name(tz), "UTC");
    assert_int_equal(ar_tz_offset_at(tz, BERLIN_SPRING_2026), 0);
    ar_tz_destroy(tz);
    assert_int_equal(ar_tz_load("Etc/UTC", &tz), 0);
    ar_tz_destroy(tz);

    /* A file that is not TZif. */
    snprintf(path, sizeof(path), "%s/Test/Junk", dir);
    write_file(path, "hello", 5);
    tz = NULL;
    assert_int_equal(ar_tz_load("Test/Junk", &tz), AR_EINVAL);
    assert_null(tz);

    assert_int_equal(unsetenv("TZDIR"), 0);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/Test/Zone", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_system_zone(void **state)
{
    struct ar_tz *tz = NULL;
    (void)state;

    /* Whatever the machine's zone, NULL loads something usable (UTC when there is none). */
    assert_int_equal(ar_tz_load(NULL, &tz), 0);
    assert_non_null(tz);
    assert_true(strlen(ar_tz_name(tz)) > 0);
    assert_true(ar_tz_offset_at(tz, BERLIN_SPRING_2026) > -93600);
    ar_tz_destroy(tz);
    assert_int_equal(ar_tz_local(&tz), 0);
    ar_tz_destroy(tz);
    ar_tz_destroy(NULL);
}

static void assert_format(const struct ar_tz *tz, int64_t t, const char *want)
{
    char buf[AR_TZ_ISO_MAX];
    assert_int_equal(ar_tz_format(tz, t, buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    struct ar_tz *berlin = load("Europe/Berlin"), *ny = load("America/New_York");
    struct ar_tz *kolkata = load("Asia/Kolkata"), *ams = load("Europe/Amsterdam");
    char small[25];
    (void)state;

    assert_format(berlin, BERLIN_SPRING_2026, "2026-03-29T03:00:00+02:00");
    assert_format(berlin, BERLIN_SPRING_2026 - 1, "2026-03-29T01:59:59+01:00");
    assert_format(ny, NY_FALL_2026 - 1, "2026-11-01T01:59:59-04:00");
    assert_format(ny, NY_FALL_2026, "2026-11-01T01:00:00-05:00");
    assert_format(kolkata, BERLIN_SPRING_2026, "2026-03-29T06:30:00+05:30");
    assert_format(NULL, 0, "1970-01-01T00:00:00+00:00");
    assert_format(NULL, -1, "1969-12-31T23:59:59+00:00");
    assert_format(NULL, INT64_C(951782400), "2000-02-29T00:00:00+00:00");
    assert_format(NULL, INT64_C(253402300799), "9999-12-31T23:59:59+00:00");
    /* Amsterdam's 1900 local mean time had seconds in its offset. */
    assert_format(ams, INT64_C(-2208988800), "1900-01-01T00:19:32+00:19:32");

    memset(small, 'x', sizeof(small));
    assert_int_equal(ar_tz_format(berlin, BERLIN_SPRING_2026, small, sizeof(small)), AR_E2BIG);
    assert_int_equal(small[0], 'x');
    assert_int_equal(ar_tz_format(NULL, INT64_C(253402300800), small, sizeof(small)), AR_ERANGE);
    ar_tz_destroy(berlin);
    ar_tz_destroy(ny);
    ar_tz_destroy(kolkata);
    ar_tz_destroy(ams);
}

static void assert_parse(const struct ar_tz *tz, const char *text, int64_t want)
{
    int64_t got = -12345;
    assert_int_equal(ar_tz_parse_time(text, tz, INT64_C(1000), &got), 0);
    assert_int_equal(got, want);
}

static void test_parse_time(void **state)
{
    struct ar_tz *berlin = load("Europe/Berlin");
    int64_t got = 77;
    static const char *const bad[] = {
        "", "yesterday", "2026-02-30", "2026-13-01", "2026-3-29", "2026-03-29T25:00",
        "2026-03-29T01:60", "2026-03-29T01:00:60", "2026-03-29T01", "2026-03-29T01:00+",
        "2026-03-29T01:00+01:", "2026-03-29T01:00+24:00", "2026-03-29T01:00:00.Z",
        "2026-03-29X", "2026-03-29T01:00Z junk", "@", "@12x", "Now ",
    };
    size_t i;
    (void)state;

    assert_parse(berlin, "now", 1000);
    assert_parse(berlin, "@1774746000", BERLIN_SPRING_2026);
    assert_parse(berlin, "@-5", -5);
    assert_parse(berlin, "2026-03-29T03:00:00+02:00", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29T03:00:00+0200", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29T03:00+02", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29T01:00:00Z", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29t01:00z", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-28T20:00:00-05:00", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29T01:00:00.999Z", BERLIN_SPRING_2026);
    /* Local times in the zone. */
    assert_parse(berlin, "2026-03-29T03:00", BERLIN_SPRING_2026);
    assert_parse(berlin, "2026-03-29 01:59:59", BERLIN_SPRING_2026 - 1);
    assert_parse(berlin, "2026-03-29T02:30", BERLIN_SPRING_2026);          /* the gap's end */
    assert_parse(berlin, "2026-10-25T02:30:00", INT64_C(1792888200));      /* first pass */
    assert_parse(berlin, "2026-03-29", BERLIN_SPRING_2026 - 2 * 3600);     /* midnight CET */
    assert_parse(NULL, "2026-03-29", BERLIN_SPRING_2026 - 3600);           /* NULL is UTC */

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ar_tz_parse_time(bad[i], berlin, 0, &got) != AR_EINVAL) {
            fail_msg("accepted '%s'", bad[i]);
        }
    }
    assert_int_equal(got, 77);
    ar_tz_destroy(berlin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_berlin_offsets),
        cmocka_unit_test(test_new_york_offsets),
        cmocka_unit_test(test_southern_hemisphere),
        cmocka_unit_test(test_next_transition),
        cmocka_unit_test(test_local_to_utc),
        cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_tzif_v1),
        cmocka_unit_test(test_tzif_v2_footer),
        cmocka_unit_test(test_tzif_corrupt),
        cmocka_unit_test(test_load_names),
        cmocka_unit_test(test_system_zone),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
