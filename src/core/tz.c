/* Time zones read from TZif files and POSIX TZ rules, without the process's TZ or localtime(). */
#include "core/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_SYSTEM_FILE "/etc/localtime"
#define TZ_SYSTEM_NAME_FILE "/etc/timezone"
#define TZ_MAX_FILE (1 << 20)
#define TZ_MAX_COUNT (1 << 16)
#define TZ_MAX_OFFSET 93600 /* 26 hours: more than any zone has ever used */
#define TZ_MAX_NAME 255
#define SECS_PER_DAY 86400

/* Instants further out than this (about 34,000 years) are clamped before calendar arithmetic,
 * so that no caller-supplied value can overflow it. */
#define TZ_CLAMP ((int64_t)1 << 40)

enum rule_kind { RULE_JULIAN1, RULE_DAY0, RULE_MONTH };

/* One end of a daylight-saving period in a POSIX TZ string: "Jn", "n" or "Mm.w.d[/time]". */
struct tz_rule {
    enum rule_kind kind;
    int day;               /* Jn: 1-365, never counting Feb 29; n: 0-365, counting it */
    int month, week, wday; /* Mm.w.d: week 5 means the last such weekday of the month */
    int32_t time;          /* local time of day of the change in seconds; may be <0 or >24h */
};

struct posix_tz {
    int32_t std_off; /* UTC offsets, east of Greenwich positive */
    int32_t dst_off;
    int has_dst;
    struct tz_rule start; /* given in standard time */
    struct tz_rule end;   /* given in daylight time */
};

struct ar_tz {
    char *name;       /* owned */
    size_t count;     /* number of transitions in the table */
    int64_t *times;   /* owned: transition instants, strictly ascending */
    int32_t *offsets; /* owned: offsets[i] is in effect from times[i] on */
    int32_t initial;  /* the offset before times[0] */
    int has_footer;   /* the rule below governs from the last transition on */
    struct posix_tz footer;
};

/* A change of state produced by a POSIX rule: at `at`, daylight time starts (dst 1) or ends. */
struct rule_change {
    int64_t at;
    int dst;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static int64_t clamp_instant(int64_t t)
{
    if (t > TZ_CLAMP) {
        return TZ_CLAMP;
    }
    if (t < -TZ_CLAMP) {
        return -TZ_CLAMP;
    }
    return t;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Howard Hinnant's days_from_civil: exact for the whole proleptic Gregorian calendar. */
int64_t ar__days_from_civil(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void ar__civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);

    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = m;
    *year = yoe + era * 400 + (m <= 2);
}

int ar__weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

int ar__days_in_month(int64_t year, int month)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap(year)) {
        return 29;
    }
    return len[month - 1];
}

static int64_t year_of(int64_t local_s)
{
    int64_t y;
    int m, d;
    ar__civil_from_days(floor_div(local_s, SECS_PER_DAY), &y, &m, &d);
    return y;
}

/* --- POSIX TZ strings ------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A zone abbreviation: letters ("CEST"), or anything alphanumeric in angle brackets ("<+0330>"). */
static const char *parse_abbrev(const char *p)
{
    const char *s;
    if (*p == '<') {
        s = ++p;
        while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-') {
            p++;
        }
        if (*p != '>' || p == s) {
            return NULL;
        }
        return p + 1;
    }
    s = p;
    while (is_alpha(*p)) {
        p++;
    }
    return p == s ? NULL : p;
}

/* [+-]hh[:mm[:ss]] with at most max_hours hours. */
static const char *parse_hms(const char *p, int max_hours, int32_t *out)
{
    int sign = 1;
    long h = 0, m = 0, s = 0;
    int n = 0;

    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    while (is_digit(*p)) {
        h = h * 10 + (*p++ - '0');
        if (++n > 3) {
            return NULL;
        }
    }
    if (n == 0 || h > max_hours) {
        return NULL;
    }
    if (*p == ':') {
        p++;
        if (!is_digit(p[0]) || !is_digit(p[1])) {
            return NULL;
        }
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (m > 59) {
            return NULL;
        }
        if (*p == ':') {
            p++;
            if (!is_digit(p[0]) || !is_digit(p[1])) {
                return NULL;
            }
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
            if (s > 59) {
                return NULL;
            }
        }
    }
    *out = (int32_t)(sign * (h * 3600 + m * 60 + s));
    return p;
}

static const char *parse_uint(const char *p, int lo, int hi, int *out)
{
    long v = 0;
    int n = 0;
    while (is_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        if (++n > 3) {
            return NULL;
        }
    }
    if (n == 0 || v < lo || v > hi) {
        return NULL;
    }
    *out = (int)v;
    return p;
}

static const char *parse_rule(const char *p, struct tz_rule *r)
{
    memset(r, 0, sizeof(*r));
    if (*p == 'J') {
        r->kind = RULE_JULIAN1;
        p = parse_uint(p + 1, 1, 365, &r->day);
    } else if (*p == 'M') {
        r->kind = RULE_MONTH;
        p = parse_uint(p + 1, 1, 12, &r->month);
        if (p == NULL || *p != '.') {
            return NULL;
        }
        p = parse_uint(p + 1, 1, 5, &r->week);
        if (p == NULL || *p != '.') {
            return NULL;
        }
        p = parse_uint(p + 1, 0, 6, &r->wday);
    } else {
        r->kind = RULE_DAY0;
        p = parse_uint(p, 0, 365, &r->day);
    }
    if (p == NULL) {
        return NULL;
    }
    r->time = 2 * 3600;
    if (*p == '/') {
        /* RFC 8536 extends the POSIX 0-24 hours to -167..167 for rules such as "J365/25". */
        p = parse_hms(p + 1, 167, &r->time);
    }
    return p;
}

static int parse_posix(const char *spec, struct posix_tz *out)
{
    struct posix_tz tz;
    const char *p;
    int32_t v;

    memset(&tz, 0, sizeof(tz));
    p = parse_abbrev(spec);
    if (p == NULL || (p = parse_hms(p, 24, &v)) == NULL) {
        return AR_EINVAL;
    }
    /* POSIX offsets count west of Greenwich as positive; ours count east. */
    tz.std_off = -v;
    tz.dst_off = tz.std_off;
    if (*p != '\0') {
        p = parse_abbrev(p);
        if (p == NULL) {
            return AR_EINVAL;
        }
        tz.has_dst = 1;
        tz.dst_off = tz.std_off + 3600;
        if (*p != '\0' && *p != ',') {
            if ((p = parse_hms(p, 24, &v)) == NULL) {
                return AR_EINVAL;
            }
            tz.dst_off = -v;
        }
        if (*p == '\0') {
            /* A zone with daylight time but no rule gets the US rules, as tzcode does. */
            tz.start = (struct tz_rule){.kind = RULE_MONTH, .month = 3, .week = 2, .time = 7200};
            tz.end = (struct tz_rule){.kind = RULE_MONTH, .month = 11, .week = 1, .time = 7200};
        } else {
            if (*p != ',' || (p = parse_rule(p + 1, &tz.start)) == NULL || *p != ',') {
                return AR_EINVAL;
            }
            if ((p = parse_rule(p + 1, &tz.end)) == NULL || *p != '\0') {
                return AR_EINVAL;
            }
        }
    }
    *out = tz;
    return 0;
}

static int64_t rule_day(int64_t year, const struct tz_rule *r)
{
    int64_t jan1 = ar__days_from_civil(year, 1, 1);
    int64_t first, d;
    int dim;

    switch (r->kind) {
    case RULE_JULIAN1:
        return jan1 + r->day - 1 + (is_leap(year) && r->day >= 60 ? 1 : 0);
    case RULE_DAY0:
        return jan1 + r->day;
    case RULE_MONTH:
    default:
        first = ar__days_from_civil(year, r->month, 1);
        dim = ar__days_in_month(year, r->month);
        d = first + (r->wday - ar__weekday(first) + 7) % 7 + (int64_t)(r->week - 1) * 7;
        while (d >= first + dim) {
            d -= 7;
        }
        return d;
    }
}

/* The rule changes for years y0..y1 in time order; at equal instants an end sorts before a
 * start, so that a zone on daylight time all year ("EST5EDT,0/0,J365/25") stays on it. */
static size_t rule_changes(const struct posix_tz *f, int64_t y0, int64_t y1,
                           struct rule_change *out)
{
    size_t n = 0, i, j;
    int64_t y;

    for (y = y0; y <= y1; y++) {
        out[n].at = rule_day(y, &f->start) * SECS_PER_DAY + f->start.time - f->std_off;
        out[n++].dst = 1;
        out[n].at = rule_day(y, &f->end) * SECS_PER_DAY + f->end.time - f->dst_off;
        out[n++].dst = 0;
    }
    for (i = 1; i < n; i++) {
        struct rule_change c = out[i];
        for (j = i; j > 0 && (out[j - 1].at > c.at || (out[j - 1].at == c.at &&
                                                       out[j - 1].dst > c.dst)); j--) {
            out[j] = out[j - 1];
        }
        out[j] = c;
    }
    return n;
}

static int32_t footer_offset(const struct posix_tz *f, int64_t t)
{
    struct rule_change ch[8];
    size_t n, i;
    int64_t y;
    int dst = 0;

    if (!f->has_dst) {
        return f->std_off;
    }
    t = clamp_instant(t);
    y = year_of(t + f->std_off);
    n = rule_changes(f, y - 2, y + 1, ch);
    for (i = 0; i < n && ch[i].at <= t; i++) {
        dst = ch[i].dst;
    }
    return dst ? f->dst_off : f->std_off;
}

static int footer_next(const struct posix_tz *f, int64_t after, int64_t *at)
{
    struct rule_change ch[10];
    size_t n, i;
    int64_t y;

    if (!f->has_dst || f->std_off == f->dst_off || after >= TZ_CLAMP) {
        return AR_ENOENT;
    }
    after = clamp_instant(after);
    y = year_of(after + f->std_off);
    n = rule_changes(f, y - 1, y + 3, ch);
    for (i = 0; i < n; i++) {
        if (ch[i].at > after && footer_offset(f, ch[i].at) != footer_offset(f, ch[i].at - 1)) {
            *at = ch[i].at;
            return 0;
        }
    }
    /* The rules name changes but none moves the clock, e.g. daylight time all year. */
    return AR_ENOENT;
}

/* --- Zones ------------------------------------------------------------------------------ */

static struct ar_tz *tz_alloc(const char *name, size_t count)
{
    struct ar_tz *tz = calloc(1, sizeof(*tz));
    if (tz == NULL) {
        return NULL;
    }
    tz->name = strdup(name);
    if (count > 0) {
        tz->times = malloc(count * sizeof(*tz->times));
        tz->offsets = malloc(count * sizeof(*tz->offsets));
    }
    if (tz->name == NULL || (count > 0 && (tz->times == NULL || tz->offsets == NULL))) {
        ar_tz_destroy(tz);
        return NULL;
    }
    tz->count = count;
    return tz;
}

void ar_tz_destroy(struct ar_tz *tz)
{
    if (tz == NULL) {
        return;
    }
    free(tz->name);
    free(tz->times);
    free(tz->offsets);
    free(tz);
}

const char *ar_tz_name(const struct ar_tz *tz)
{
    return tz != NULL ? tz->name : "UTC";
}

int ar_tz_from_posix(const char *spec, struct ar_tz **out)
{
    struct posix_tz f;
    struct ar_tz *tz;
    int r;

    if (spec == NULL || out == NULL) {
        return AR_EINVAL;
    }
    r = parse_posix(spec, &f);
    if (r != 0) {
        return r;
    }
    tz = tz_alloc(spec, 0);
    if (tz == NULL) {
        return AR_ENOMEM;
    }
    tz->initial = f.std_off;
    tz->has_footer = 1;
    tz->footer = f;
    *out = tz;
    return 0;
}

static int make_utc(const char *name, struct ar_tz **out)
{
    struct ar_tz *tz = tz_alloc(name, 0);
    if (tz == NULL) {
        return AR_ENOMEM;
    }
    *out = tz;
    return 0;
}

/* --- TZif ------------------------------------------------------------------------------- */

struct tzif_header {
    int version; /* 0 for version 1, else the ASCII digit */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int read_header(const unsigned char *p, size_t len, struct tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        return AR_EINVAL;
    }
    h->version = p[4];
    if (h->version != 0 && h->version < '2') {
        return AR_EINVAL;
    }
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->isutcnt > TZ_MAX_COUNT || h->isstdcnt > TZ_MAX_COUNT || h->leapcnt > TZ_MAX_COUNT ||
        h->timecnt > TZ_MAX_COUNT || h->typecnt > 256 || h->charcnt > TZ_MAX_COUNT) {
        return AR_EINVAL;
    }
    return 0;
}

static size_t block_size(const struct tzif_header *h, size_t tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads one data block (32- or 64-bit times) into a new zone. Leap-second records are ignored:
 * they only appear in the "right/" zones, which count leap seconds in their timestamps. */
static int read_block(const char *name, const struct tzif_header *h, const unsigned char *p,
                      size_t tsize, struct ar_tz **out)
{
    const unsigned char *idx = p + h->timecnt * tsize;
    const unsigned char *types = idx + h->timecnt;
    int32_t type_off[256];
    struct ar_tz *tz;
    uint32_t i;

    if (h->typecnt == 0 || h->charcnt == 0 || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt)) {
        return AR_EINVAL;
    }
    for (i = 0; i < h->typecnt; i++) {
        int32_t off = (int32_t)be32(types + i * 6);
        if (off < -TZ_MAX_OFFSET || off > TZ_MAX_OFFSET || types[i * 6 + 4] > 1 ||
            types[i * 6 + 5] >= h->charcnt) {
            return AR_EINVAL;
        }
        type_off[i] = off;
    }
    tz = tz_alloc(name, h->timecnt);
    if (tz == NULL) {
        return AR_ENOMEM;
    }
    tz->initial = type_off[0];
    for (i = 0; i < h->timecnt; i++) {
        int64_t t = tsize == 8 ? be64(p + i * 8) : (int64_t)(int32_t)be32(p + i * 4);
        if ((i > 0 && t <= tz->times[i - 1]) || idx[i] >= h->typecnt) {
            ar_tz_destroy(tz);
            return AR_EINVAL;
        }
        tz->times[i] = t;
        tz->offsets[i] = type_off[idx[i]];
    }
    *out = tz;
    return 0;
}

int ar_tz_parse(const char *name, const void *data, size_t len, struct ar_tz **out)
{
    const unsigned char *p = data;
    struct tzif_header h;
    struct ar_tz *tz;
    size_t size;
    int r;

    if (data == NULL || out == NULL) {
        return AR_EINVAL;
    }
    if (name == NULL) {
        name = "";
    }
    if ((r = read_header(p, len, &h)) != 0) {
        return r;
    }
    size = block_size(&h, 4);
    if (len - 44 < size) {
        return AR_EINVAL;
    }
    if (h.version == 0) {
        return read_block(name, &h, p + 44, 4, out);
    }

    /* Version 2 and later repeat the data with 64-bit times, then add a POSIX TZ footer. */
    p += 44 + size;
    len -= 44 + size;
    if ((r = read_header(p, len, &h)) != 0) {
        return r;
    }
    size = block_size(&h, 8);
    if (len - 44 < size) {
        return AR_EINVAL;
    }
    if ((r = read_block(name, &h, p + 44, 8, &tz)) != 0) {
        return r;
    }
    p += 44 + size;
    len -= 44 + size;
    if (len < 2 || p[0] != '\n') {
        ar_tz_destroy(tz);
        return AR_EINVAL;
    }
    {
        const unsigned char *nl = memchr(p + 1, '\n', len - 1);
        char spec[128];
        size_t n;

        if (nl == NULL || (n = (size_t)(nl - p - 1)) >= sizeof(spec)) {
            ar_tz_destroy(tz);
            return AR_EINVAL;
        }
        memcpy(spec, p + 1, n);
        spec[n] = '\0';
        if (n > 0) {
            if (parse_posix(spec, &tz->footer) != 0) {
                ar_tz_destroy(tz);
                return AR_EINVAL;
            }
            tz->has_footer = 1;
            if (tz->count == 0) {
                tz->initial = tz->footer.std_off;
            }
        }
    }
    *out = tz;
    return 0;
}

static int errno_to_ar(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
        return AR_ENOENT;
    case EACCES:
    case EPERM:
        return AR_EACCES;
    case ENOMEM:
        return AR_ENOMEM;
    default:
        return AR_EIO;
    }
}

static int load_file(const char *path, const char *name, struct ar_tz **out)
{
    struct stat st;
    unsigned char *buf;
    size_t got = 0;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno_to_ar(errno);
    }
    if (fstat(fd, &st) != 0) {
        r = errno_to_ar(errno);
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        /* A directory such as "America" is not a zone. */
        close(fd);
        return AR_ENOENT;
    }
    if (st.st_size <= 0 || st.st_size > TZ_MAX_FILE) {
        close(fd);
        return AR_EINVAL;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        close(fd);
        return AR_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    r = ar_tz_parse(name, buf, got, out);
    free(buf);
    return r;
}

static int is_utc_name(const char *name)
{
    return strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0;
}

/* IANA names are made of letters, digits and "/_-+."; refusing anything else, and "..", keeps
 * a recipe's tz setting from reading files outside the zone directory. */
static int valid_name(const char *name)
{
    size_t n = strlen(name), i;

    if (n == 0 || n > TZ_MAX_NAME || name[0] == '/' || strstr(name, "..") != NULL) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!is_alpha(c) && !is_digit(c) && c != '/' && c != '_' && c != '-' && c != '+' &&
            c != '.') {
            return 0;
        }
    }
    return 1;
}

/* Copies a name already checked by valid_name() (so at most TZ_MAX_NAME bytes). */
static int copy_name(char *out, size_t size, const char *name)
{
    size_t n = strlen(name);
    if (n >= size) {
        return 0;
    }
    memcpy(out, name, n + 1);
    return 1;
}

/* The system zone's IANA name, for display: from the /etc/localtime symlink, else from
 * /etc/timezone (Debian), else "localtime". */
static void system_zone_name(char *out, size_t size)
{
    char target[PATH_MAX];
    ssize_t n = readlink(TZ_SYSTEM_FILE, target, sizeof(target) - 1);
    FILE *f;

    if (n > 0) {
        const char *s;
        target[n] = '\0';
        s = strstr(target, "zoneinfo/");
        if (s != NULL) {
            s += strlen("zoneinfo/");
            if (strncmp(s, "posix/", 6) == 0) {
                s += 6;
            }
            if (valid_name(s) && copy_name(out, size, s)) {
                return;
            }
        }
    }
    f = fopen(TZ_SYSTEM_NAME_FILE, "re");
    if (f != NULL) {
        char line[TZ_MAX_NAME + 2];
        if (fgets(line, sizeof(line), f) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (valid_name(line) && copy_name(out, size, line)) {
                fclose(f);
                return;
            }
        }
        fclose(f);
    }
    copy_name(out, size, "localtime");
}

int ar_tz_load(const char *name, struct ar_tz **out)
{
    char path[PATH_MAX];
    const char *dir;
    int n, r;

    if (out == NULL) {
        return AR_EINVAL;
    }
    if (name == NULL) {
        char sysname[TZ_MAX_NAME + 1];
        system_zone_name(sysname, sizeof(sysname));
        r = load_file(TZ_SYSTEM_FILE, sysname, out);
        if (r == AR_ENOENT) {
            return make_utc("UTC", out);
        }
        return r;
    }
    if (is_utc_name(name)) {
        return make_utc(name, out);
    }
    if (!valid_name(name)) {
        return AR_EINVAL;
    }
    dir = getenv("TZDIR");
    if (dir == NULL || dir[0] == '\0') {
        dir = TZ_DEFAULT_DIR;
    }
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return AR_EINVAL;
    }
    return load_file(path, name, out);
}

int ar_tz_local(struct ar_tz **out)
{
    return ar_tz_load(NULL, out);
}

/* --- Queries ---------------------------------------------------------------------------- */

int ar_tz_offset_at(const struct ar_tz *tz, int64_t utc_s)
{
    size_t lo, hi;

    if (tz == NULL) {
        return 0;
    }
    if (tz->count == 0) {
        return tz->has_footer ? footer_offset(&tz->footer, utc_s) : tz->initial;
    }
    if (utc_s < tz->times[0]) {
        return tz->initial;
    }
    if (utc_s >= tz->times[tz->count - 1]) {
        return tz->has_footer ? footer_offset(&tz->footer, utc_s) : tz->offsets[tz->count - 1];
    }
    /* The last transition at or before utc_s: times[lo] <= utc_s < times[hi]. */
    lo = 0;
    hi = tz->count - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= utc_s) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->offsets[lo];
}

int ar_tz_next_transition(const struct ar_tz *tz, int64_t after_utc_s, int64_t *at_utc_s)
{
    size_t lo, hi, i;
    int64_t at;
    int r;

    if (tz == NULL || at_utc_s == NULL) {
        return tz == NULL ? AR_ENOENT : AR_EINVAL;
    }
    if (tz->count > 0 && after_utc_s < tz->times[tz->count - 1]) {
        /* The first transition strictly after the instant, then the first that moves the
         * clock: some only rename the zone or flip its daylight flag. */
        lo = 0;
        hi = tz->count - 1;
        if (tz->times[0] > after_utc_s) {
            hi = 0;
        }
        while (hi > lo) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->times[mid] > after_utc_s) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        for (i = hi; i < tz->count; i++) {
            int32_t before = i == 0 ? tz->initial : tz->offsets[i - 1];
            if (i == tz->count - 1 && tz->has_footer) {
                /* From the last transition on, the footer rule is what applies. */
                if (footer_offset(&tz->footer, tz->times[i]) != before) {
                    *at_utc_s = tz->times[i];
                    return 0;
                }
                break;
            }
            if (tz->offsets[i] != before) {
                *at_utc_s = tz->times[i];
                return 0;
            }
        }
    }
    if (!tz->has_footer) {
        return AR_ENOENT;
    }
    if (tz->count > 0 && after_utc_s < tz->times[tz->count - 1]) {
        after_utc_s = tz->times[tz->count - 1];
    }
    r = footer_next(&tz->footer, after_utc_s, &at);
    if (r == 0) {
        *at_utc_s = at;
    }
    return r;
}

int ar_tz_local_to_utc(const struct ar_tz *tz, int64_t local_s, struct ar_tz_local *out)
{
    /* Every instant whose local time is local_s lies within the largest offset of it, so walk
     * the stretches of constant offset in that window and collect the ones that contain it. */
    int64_t s = local_s - TZ_MAX_OFFSET - 1, hi = local_s + TZ_MAX_OFFSET + 1;
    int64_t found[4], gap_end = 0;
    size_t nfound = 0;
    int have_gap = 0;

    if (out == NULL || local_s > TZ_CLAMP || local_s < -TZ_CLAMP) {
        return AR_EINVAL;
    }
    for (;;) {
        int32_t off = ar_tz_offset_at(tz, s);
        int64_t e, u = local_s - off;
        int has_e = ar_tz_next_transition(tz, s, &e) == 0 && e <= hi;

        if (u >= s && (!has_e || u < e) && nfound < 4) {
            found[nfound++] = u;
        }
        if (!has_e) {
            break;
        }
        if (!have_gap && e + off <= local_s && local_s < e + ar_tz_offset_at(tz, e)) {
            gap_end = e;
            have_gap = 1;
        }
        s = e;
    }
    if (nfound == 0) {
        if (!have_gap) {
            return AR_EINVAL;
        }
        out->first = out->second = gap_end;
        out->kind = AR_TZ_GAP;
        return 0;
    }
    out->first = found[0];
    out->second = found[nfound - 1];
    out->kind = nfound > 1 ? AR_TZ_AMBIGUOUS : AR_TZ_UNIQUE;
    return 0;
}

/* --- Text ------------------------------------------------------------------------------- */

int ar_tz_format(const struct ar_tz *tz, int64_t utc_s, char *buf, size_t size)
{
    char tmp[AR_TZ_ISO_MAX + 16];
    int64_t local, days, y;
    int off, sod, m, d, a, n;

    if (buf == NULL) {
        return AR_EINVAL;
    }
    if (utc_s > TZ_CLAMP || utc_s < -TZ_CLAMP) {
        return AR_ERANGE;
    }
    off = ar_tz_offset_at(tz, utc_s);
    local = utc_s + off;
    days = floor_div(local, SECS_PER_DAY);
    sod = (int)(local - days * SECS_PER_DAY);
    ar__civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        return AR_ERANGE;
    }
    a = off < 0 ? -off : off;
    n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (int)y, m, d,
                 sod / 3600, sod / 60 % 60, sod % 60, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    if (a % 60 != 0) {
        /* Local mean time before standard zones can have seconds in its offset. */
        n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, ":%02d", a % 60);
    }
    if ((size_t)n >= size) {
        return AR_E2BIG;
    }
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}

/* Exactly `digits` decimal digits. */
static const char *take_digits(const char *p, int digits, int *out)
{
    int v = 0, i;
    for (i = 0; i < digits; i++) {
        if (!is_digit(p[i])) {
            return NULL;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return p + digits;
}

static int parse_epoch(const char *p, int64_t *out)
{
    int64_t v = 0;
    int neg = 0, n = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    while (is_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        if (++n > 15) {
            return AR_EINVAL;
        }
    }
    if (n == 0 || *p != '\0') {
        return AR_EINVAL;
    }
    *out = neg ? -v : v;
    return 0;
}

int ar_tz_parse_time(const char *text, const struct ar_tz *tz, int64_t now_utc_s,
                     int64_t *out_utc_s)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, oh, om = 0, has_off = 0, off = 0;
    int64_t local;

    if (text == NULL || out_utc_s == NULL) {
        return AR_EINVAL;
    }
    if (strcmp(text, "now") == 0 || strcmp(text, "NOW") == 0) {
        *out_utc_s = now_utc_s;
        return 0;
    }
    if (text[0] == '@') {
        return parse_epoch(text + 1, out_utc_s);
    }
    if ((p = take_digits(p, 4, &y)) == NULL || *p++ != '-' ||
        (p = take_digits(p, 2, &mo)) == NULL || *p++ != '-' ||
        (p = take_digits(p, 2, &d)) == NULL) {
        return AR_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > ar__days_in_month(y, mo)) {
        return AR_EINVAL;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if ((p = take_digits(p, 2, &h)) == NULL || *p++ != ':' ||
            (p = take_digits(p, 2, &mi)) == NULL) {
            return AR_EINVAL;
        }
        if (*p == ':') {
            if ((p = take_digits(p + 1, 2, &s)) == NULL) {
                return AR_EINVAL;
            }
            if (*p == '.' || *p == ',') {
                p++;
                if (!is_digit(*p)) {
                    return AR_EINVAL;
                }
                while (is_digit(*p)) {
                    p++;
                }
            }
        }
        if (h > 23 || mi > 59 || s > 59) {
            return AR_EINVAL;
        }
        if (*p == 'Z' || *p == 'z') {
            has_off = 1;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            if ((p = take_digits(p + 1, 2, &oh)) == NULL) {
                return AR_EINVAL;
            }
            if (*p == ':' || is_digit(*p)) {
                if ((p = take_digits(*p == ':' ? p + 1 : p, 2, &om)) == NULL) {
                    return AR_EINVAL;
                }
            }
            if (oh > 23 || om > 59) {
                return AR_EINVAL;
            }
            has_off = 1;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0') {
        return AR_EINVAL;
    }
    local = ar__days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s;
    if (has_off) {
        *out_utc_s = local - off;
    } else {
        struct ar_tz_local l;
        int r = ar_tz_local_to_utc(tz, local, &l);
        if (r != 0) {
            return r;
        }
        *out_utc_s = l.first;
    }
    return 0;
}
