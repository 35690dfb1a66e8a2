/* Cron expressions: Vixie cron / cronie syntax, and next fire times with cronie's DST rules. */
#include "trigger/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define MINUTES_PER_DAY 1440

/* Years 0001-9999 in UTC; beyond them ISO 8601 needs more than four digits. */
#define MIN_INSTANT INT64_C(-62135596800)
#define MAX_INSTANT INT64_C(253402300799)

#define HORIZON_S ((int64_t)AR_CRON_HORIZON_YEARS * 366 * 86400)

/* cronie's thresholds, in minutes of local time between two wake-ups: a jump forward of up to
 * 5 minutes catches every job up, one of up to 3 hours catches up fixed-time jobs only, and a
 * jump back of up to 3 hours holds fixed-time jobs until the clock is past where it was. */
#define JUMP_SMALL 5
#define JUMP_LARGE 180

/* A jump back holds fixed-time jobs for at most JUMP_LARGE minutes of real time, so a
 * transition further back than this no longer matters. */
#define LOOKBACK_S (6 * 3600)

struct field_spec {
    const char *name;
    int low, high;
    const char *const *names; /* three-letter names for low, low+1, ...; or NULL */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct field_spec fields[F_COUNT] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, dow_names},
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* --- Parsing ---------------------------------------------------------------------------- */

static int syntax(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int syntax(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return AR_ESYNTAX;
}

/* Messages quote at most this much of the offending text. */
#define QUOTE_MAX 24

/* One value of a field: a number or, in month and day-of-week, a three-letter name. As the end
 * of a range, SUN means 7, so that "FRI-SUN" reads as it is meant. */
static int parse_value(const char **pp, const char *end, const struct field_spec *f,
                       int range_end, int *out, char *err, size_t errlen)
{
    const char *p = *pp, *s = p;
    long v = 0;

    if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p)) {
            if (v < 100000) {
                v = v * 10 + (*p - '0');
            }
            p++;
        }
        if (v < f->low || v > f->high) {
            return syntax(err, errlen, "%s: %.*s is out of range %d-%d", f->name,
                          (int)(p - s > QUOTE_MAX ? QUOTE_MAX : p - s), s, f->low, f->high);
        }
        *out = (int)v;
        *pp = p;
        return 0;
    }
    if (p < end && is_alpha(*p)) {
        int i;
        while (p < end && is_alpha(*p)) {
            p++;
        }
        if (f->names == NULL) {
            return syntax(err, errlen, "%s: '%.*s' is not a number (expected %d-%d)", f->name,
                          (int)(p - s > QUOTE_MAX ? QUOTE_MAX : p - s), s, f->low, f->high);
        }
        for (i = 0; p - s == 3 && f->names[i] != NULL; i++) {
            if (upper(s[0]) == f->names[i][0] && upper(s[1]) == f->names[i][1] &&
                upper(s[2]) == f->names[i][2]) {
                *out = f->low + i;
                if (range_end && f->names == dow_names && i == 0) {
                    *out = 7;
                }
                *pp = p;
                return 0;
            }
        }
        return syntax(err, errlen, "%s: unknown name '%.*s'", f->name,
                      (int)(p - s > QUOTE_MAX ? QUOTE_MAX : p - s), s);
    }
    if (p >= end) {
        return syntax(err, errlen, "%s: a value is missing", f->name);
    }
    return syntax(err, errlen, "%s: unexpected '%c'", f->name, *p);
}

/* One list item: "*", "N", "N-M", each optionally "/STEP", or "N/STEP" meaning N to the end. */
static int parse_item(const char *s, const char *end, const struct field_spec *f,
                      uint64_t *bits, char *err, size_t errlen)
{
    const char *p = s;
    int lo, hi, step = 1, v, r;
    int qlen = (int)(end - s > QUOTE_MAX ? QUOTE_MAX : end - s);

    if (p == end) {
        return syntax(err, errlen, "%s: empty item in list", f->name);
    }
    if (*p == '*') {
        lo = f->low;
        hi = f->high;
        p++;
    } else {
        if ((r = parse_value(&p, end, f, 0, &lo, err, errlen)) != 0) {
            return r;
        }
        hi = lo;
        if (p < end && *p == '-') {
            p++;
            if ((r = parse_value(&p, end, f, 1, &hi, err, errlen)) != 0) {
                return r;
            }
            if (lo > hi) {
                return syntax(err, errlen, "%s: range '%.*s' runs backwards", f->name, qlen, s);
            }
        } else if (p < end && *p == '/') {
            /* "5/10" is "5-59/10"; in day-of-week the week ends on Saturday, not Sunday-as-7. */
            hi = f->names == dow_names ? 6 : f->high;
        }
    }
    if (p < end && *p == '/') {
        const char *st = ++p;
        long sv = 0;
        int span = f->high - f->low + 1;
        while (p < end && is_digit(*p)) {
            if (sv < 100000) {
                sv = sv * 10 + (*p - '0');
            }
            p++;
        }
        if (p == st) {
            return syntax(err, errlen, "%s: a step must follow '/' in '%.*s'", f->name, qlen, s);
        }
        /* cronie takes any step, but one beyond the field's span can only be a mistake,
         * such as a minute step of 90 meant as "every 90 minutes", which cron cannot do. */
        if (sv < 1 || sv > span) {
            return syntax(err, errlen, "%s: step %.*s is out of range 1-%d", f->name,
                          (int)(p - st > QUOTE_MAX ? QUOTE_MAX : p - st), st, span);
        }
        step = (int)sv;
    }
    if (p != end) {
        return syntax(err, errlen, "%s: unexpected '%c' in '%.*s'", f->name, *p, qlen, s);
    }
    for (v = lo; v <= hi; v += step) {
        *bits |= (uint64_t)1 << v;
    }
    return 0;
}

static int parse_field(const char *s, const char *end, const struct field_spec *f,
                       uint64_t *out, char *err, size_t errlen)
{
    uint64_t bits = 0;
    const char *item = s;
    int r;

    for (;;) {
        const char *comma = memchr(item, ',', (size_t)(end - item));
        const char *item_end = comma != NULL ? comma : end;
        if ((r = parse_item(item, item_end, f, &bits, err, errlen)) != 0) {
            return r;
        }
        if (comma == NULL) {
            break;
        }
        item = comma + 1;
    }
    *out = bits;
    return 0;
}

static int parse_macro(const char *s, const char *end, struct ar_cron *c, char *err,
                       size_t errlen)
{
    static const struct {
        const char *name;
        int kind;
    } macros[] = {{"hourly", 0},  {"daily", 1},  {"midnight", 1}, {"weekly", 2},
                  {"monthly", 3}, {"yearly", 4}, {"annually", 4}};
    size_t n = (size_t)(end - s), i, k;
    int len = (int)(n > QUOTE_MAX ? QUOTE_MAX : n);

    for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        const char *m = macros[i].name;
        if (strlen(m) != n) {
            continue;
        }
        for (k = 0; k < n && (s[k] | 0x20) == m[k]; k++) {
        }
        if (k != n) {
            continue;
        }
        /* The same bits and flags cronie's entry.c gives each macro. */
        c->minute = 1;
        c->hour = 1;
        c->dom = 0xfffffffeu;
        c->month = 0x1ffe;
        c->dow = 0x7f;
        c->flags = 0;
        switch (macros[i].kind) {
        case 0:
            c->hour = 0xffffff;
            c->flags = AR_CRON_HOUR_STAR;
            break;
        case 1:
            break;
        case 2:
            c->dow = 1;
            c->flags = AR_CRON_DOW_STAR;
            break;
        case 3:
            c->dom = 2;
            c->flags = AR_CRON_DOW_STAR;
            break;
        default:
            c->dom = 2;
            c->month = 2;
            c->flags = AR_CRON_DOW_STAR;
            break;
        }
        return 0;
    }
    if (n == 6 && memcmp(s, "reboot", 6) == 0) {
        return syntax(err, errlen, "@reboot is not supported: it has no fire times");
    }
    return syntax(err, errlen, "unknown macro '@%.*s' (expected @hourly, @daily, @midnight, "
                  "@weekly, @monthly, @yearly or @annually)", len, s);
}

int ar_cron_parse(const char *expr, struct ar_cron *out, char *err, size_t errlen)
{
    const char *starts[F_COUNT], *ends[F_COUNT];
    const char *p = expr;
    uint64_t bits[F_COUNT];
    struct ar_cron c;
    int n = 0, i, r;

    if (expr == NULL || out == NULL) {
        return AR_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    while (is_blank(*p)) {
        p++;
    }
    if (*p == '@') {
        const char *s = ++p, *e;
        while (*p != '\0' && !is_blank(*p)) {
            p++;
        }
        if ((r = parse_macro(s, p, &c, err, errlen)) != 0) {
            return r;
        }
        e = p;
        while (is_blank(*p)) {
            p++;
        }
        if (*p != '\0') {
            return syntax(err, errlen, "unexpected '%.*s' after '@%.*s'", QUOTE_MAX, p,
                          (int)(e - s), s);
        }
        *out = c;
        return 0;
    }

    for (;;) {
        const char *s = p;
        while (*p != '\0' && !is_blank(*p)) {
            p++;
        }
        if (p == s) {
            break;
        }
        if (n < F_COUNT) {
            starts[n] = s;
            ends[n] = p;
        }
        n++;
        while (is_blank(*p)) {
            p++;
        }
    }
    if (n == 0) {
        return syntax(err, errlen, "empty expression (expected 5 fields: minute hour "
                      "day-of-month month day-of-week)");
    }
    if (n != F_COUNT) {
        return syntax(err, errlen, "expected 5 fields (minute hour day-of-month month "
                      "day-of-week), got %d", n);
    }
    for (i = 0; i < F_COUNT; i++) {
        if ((r = parse_field(starts[i], ends[i], &fields[i], &bits[i], err, errlen)) != 0) {
            return r;
        }
    }
    c.minute = bits[F_MINUTE];
    c.hour = (uint32_t)bits[F_HOUR];
    c.dom = (uint32_t)bits[F_DOM];
    c.month = (uint16_t)bits[F_MONTH];
    /* Sunday is 0 or 7. */
    c.dow = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f);
    c.flags = (uint8_t)((starts[F_MINUTE][0] == '*' ? AR_CRON_MIN_STAR : 0) |
                        (starts[F_HOUR][0] == '*' ? AR_CRON_HOUR_STAR : 0) |
                        (starts[F_DOM][0] == '*' ? AR_CRON_DOM_STAR : 0) |
                        (starts[F_DOW][0] == '*' ? AR_CRON_DOW_STAR : 0));
    *out = c;
    return 0;
}

/* --- Matching --------------------------------------------------------------------------- */

/* The lowest set bit at or above `from`, or -1. */
static int next_bit(uint64_t bits, int from)
{
    uint64_t m;
    if (from > 63) {
        return -1;
    }
    m = bits >> from << from;
    return m == 0 ? -1 : __builtin_ctzll(m);
}

static int day_matches(const struct ar_cron *c, int64_t days, int mday)
{
    int dom = (c->dom >> mday) & 1;
    int dow = (c->dow >> ar__weekday(days)) & 1;

    /* cronie: "* * 1,15 * Sun" runs on the 1st, the 15th and every Sunday, but a day field
     * that begins with '*' restricts instead of adding. */
    if (c->flags & (AR_CRON_DOM_STAR | AR_CRON_DOW_STAR)) {
        return dom && dow;
    }
    return dom || dow;
}

/* The first local minute (minutes since 1970-01-01T00:00 local) at or after `from` and at or
 * before `limit` that the schedule matches. It skips whole months, days and hours that cannot
 * match, so even a schedule that fires every four years costs a few hundred steps. */
static int local_next(const struct ar_cron *c, int64_t from, int64_t limit, int64_t *out)
{
    int64_t m = from;

    while (m <= limit) {
        int64_t days = floor_div(m, MINUTES_PER_DAY), y;
        int mod = (int)(m - days * MINUTES_PER_DAY);
        int hour = mod / 60, minute = mod % 60, mon, mday, h, mi;

        ar__civil_from_days(days, &y, &mon, &mday);
        if (!((c->month >> mon) & 1)) {
            int nm = next_bit(c->month, mon + 1);
            if (nm < 0) {
                m = ar__days_from_civil(y + 1, next_bit(c->month, 1), 1) * MINUTES_PER_DAY;
            } else {
                m = ar__days_from_civil(y, nm, 1) * MINUTES_PER_DAY;
            }
            continue;
        }
        if (!day_matches(c, days, mday)) {
            m = (days + 1) * MINUTES_PER_DAY;
            continue;
        }
        h = next_bit(c->hour, hour);
        if (h < 0) {
            m = (days + 1) * MINUTES_PER_DAY;
            continue;
        }
        mi = next_bit(c->minute, h == hour ? minute : 0);
        if (mi < 0) {
            h = next_bit(c->hour, h + 1);
            if (h < 0) {
                m = (days + 1) * MINUTES_PER_DAY;
                continue;
            }
            mi = next_bit(c->minute, 0);
        }
        m = days * MINUTES_PER_DAY + h * 60 + mi;
        if (m > limit) {
            break;
        }
        *out = m;
        return 0;
    }
    return AR_ENOENT;
}

/* --- Next fire time --------------------------------------------------------------------- */

/* cronie wakes up every minute and compares the local minute it finds with the one it last
 * handled. Replaying that here: the local clock only misbehaves at offset transitions, so
 * between two transitions the next match is found by skipping through fields, and at each
 * transition the two special cases are applied. A jump forward of medium size (a DST gap) runs
 * the fixed-time jobs whose minutes were skipped, once, at the first minute after the gap. A
 * jump back holds fixed-time jobs until the local clock is past the last minute handled before
 * the jump, so a repeated hour runs them only on its first pass. "Wildcard" jobs, whose minute
 * or hour begins with '*', are neither caught up nor held. */
int ar_cron_next(const struct ar_cron *cron, const struct ar_tz *tz, int64_t after_utc_s,
                 int64_t *next_utc_s)
{
    int wild;
    int64_t t, end;

    if (cron == NULL || next_utc_s == NULL) {
        return AR_EINVAL;
    }
    if (after_utc_s < MIN_INSTANT || after_utc_s > MAX_INSTANT) {
        return AR_ERANGE;
    }
    wild = (cron->flags & (AR_CRON_MIN_STAR | AR_CRON_HOUR_STAR)) != 0;
    t = after_utc_s + 1;
    end = after_utc_s + HORIZON_S;
    if (end > MAX_INSTANT) {
        end = MAX_INSTANT;
    }

    while (t <= end) {
        int32_t off = ar_tz_offset_at(tz, t);
        int64_t hold_until = INT64_MIN, p = 0, x, n, from, limit, m, s;
        int have_p = 0, have_n;

        /* The latest transition at or before t, if recent enough to matter. */
        s = t - LOOKBACK_S;
        while (ar_tz_next_transition(tz, s, &x) == 0 && x <= t) {
            p = x;
            have_p = 1;
            s = x;
        }
        if (have_p) {
            int64_t last = floor_div(p - 1 + ar_tz_offset_at(tz, p - 1), 60);
            int64_t first = ceil_div(p + off, 60);
            int64_t jump = first - last; /* cronie's timeDiff; 1 is a normal minute */
            int64_t fire = first * 60 - off;

            if (jump > 1 && jump <= JUMP_LARGE && fire >= t && (jump <= JUMP_SMALL || !wild) &&
                local_next(cron, last + 1, first - 1, &m) == 0) {
                if (fire > end) {
                    break;
                }
                *next_utc_s = fire;
                return 0;
            }
            if (jump <= 0 && jump >= -JUMP_LARGE && !wild) {
                hold_until = last + 1;
            }
        }

        have_n = ar_tz_next_transition(tz, t, &n) == 0 && n <= end;
        from = ceil_div(t + off, 60);
        if (from < hold_until) {
            from = hold_until;
        }
        limit = floor_div((have_n ? n - 1 : end) + off, 60);
        if (local_next(cron, from, limit, &m) == 0) {
            *next_utc_s = m * 60 - off;
            return 0;
        }
        if (!have_n) {
            break;
        }
        t = n;
    }
    return AR_ENOENT;
}
