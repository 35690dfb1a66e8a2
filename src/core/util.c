/* Small shared helpers: growable buffers, durations and sizes, times, files. */
#include "core/util.h"
#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

void *ar_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("autorun: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *ar_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fputs("autorun: out of memory\n", stderr);
        abort();
    }
    return p;
}

size_t ar_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) {
        return 0;
    }
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) {
        return 0;
    }
    return len;
}

int ar_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = ar_utf8_seq(p + i, n - i);
        if (l == 0) {
            return 0;
        }
        i += l;
    }
    return 1;
}

char *ar_strndup(const char *s, size_t n)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = ar_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ar_strdup(const char *s)
{
    return s ? ar_strndup(s, strlen(s)) : NULL;
}

char *ar_vasprintf(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = ar_malloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *ar_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ar_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

static int buf_reserve(struct ar_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        return AR_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int ar_buf_append(struct ar_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        return AR_ENOMEM;
    }
    if (n) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ar_buf_puts(struct ar_buf *b, const char *s)
{
    return ar_buf_append(b, s, strlen(s));
}

int ar_buf_printf(struct ar_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        return AR_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ar_buf_json_string(struct ar_buf *b, const char *s)
{
    int rc = ar_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        switch (*p) {
        case '"': rc = ar_buf_append(b, "\\\"", 2); break;
        case '\\': rc = ar_buf_append(b, "\\\\", 2); break;
        case '\n': rc = ar_buf_append(b, "\\n", 2); break;
        case '\r': rc = ar_buf_append(b, "\\r", 2); break;
        case '\t': rc = ar_buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                rc = ar_buf_printf(b, "\\u%04x", *p);
            } else {
                rc = ar_buf_append(b, (const char *)p, 1);
            }
        }
    }
    return rc ? rc : ar_buf_append(b, "\"", 1);
}

char *ar_buf_steal(struct ar_buf *b)
{
    char *d = b->data;
    if (d == NULL) {
        d = ar_strdup("");
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void ar_buf_free(struct ar_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int unit_ms(const char *u, size_t n, int64_t *out)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {
        {"ms", 1},         {"s", 1000},        {"sec", 1000},      {"m", 60000},
        {"min", 60000},    {"h", 3600000},     {"d", 86400000},    {"w", 604800000},
    };
    for (size_t i = 0; i < AR_ARRAY_SIZE(units); i++) {
        if (strlen(units[i].name) == n && strncmp(units[i].name, u, n) == 0) {
            *out = units[i].ms;
            return 0;
        }
    }
    return AR_EINVAL;
}

/* Digits with at most one '.' (no sign, no exponent: "1e3s" and "0x10m" are refused), the
 * way durations and sizes are written; returns the first character after them. */
static const char *parse_decimal(const char *p, double *out)
{
    double v = 0, scale = 1;
    int dot = 0;
    for (;; p++) {
        if (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p - '0');
            scale *= dot ? 10 : 1;
        } else if (*p == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    *out = v / scale;
    return p;
}

int ar_parse_duration(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0') {
        return AR_EINVAL;
    }
    const char *p = s;
    int64_t total = 0;
    int parts = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            return AR_EINVAL;
        }
        double v;
        p = parse_decimal(p, &v);
        const char *u = p;
        while (isalpha((unsigned char)*p)) {
            p++;
        }
        int64_t mul;
        if (u == p) {
            /* A bare number is milliseconds, but only on its own ("500"), not "1h30". */
            if (parts > 0 || *p) {
                return AR_EINVAL;
            }
            mul = 1;
        } else if (unit_ms(u, (size_t)(p - u), &mul) != 0) {
            return AR_EINVAL;
        }
        if (v * (double)mul > 9.0e15) {
            return AR_ERANGE;
        }
        total += (int64_t)(v * (double)mul + 0.5);
        parts++;
    }
    *out_ms = total;
    return 0;
}

void ar_format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 1000) {
        snprintf(buf, len, "%lld ms", (long long)ms);
    } else if (ms < 60000 && ms % 1000 == 0) {
        snprintf(buf, len, "%lld s", (long long)(ms / 1000));
    } else if (ms < 60000) {
        snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
    } else if (ms < 3600000) {
        snprintf(buf, len, "%lldm %llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    } else {
        snprintf(buf, len, "%lldh %lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
    }
}

int ar_parse_size(const char *s, int64_t *out_bytes)
{
    if (s == NULL || !isdigit((unsigned char)*s)) {
        return AR_EINVAL;
    }
    double v;
    const char *end = parse_decimal(s, &v);
    int64_t mul = 1;
    char unit = (char)toupper((unsigned char)*end);
    if (unit == 'K' || unit == 'M' || unit == 'G') {
        mul = unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1024LL * 1024 * 1024;
        end++;
        if (*end == 'i' || *end == 'I') {
            end++;
        }
        if (*end == 'B' || *end == 'b') {
            end++;
        }
    } else if (unit == 'B') {
        end++;
    }
    if (*end != '\0') {
        return AR_EINVAL;
    }
    *out_bytes = (int64_t)(v * (double)mul);
    return 0;
}

int64_t ar_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ar_format_iso_ms(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(((ms % 1000) + 1000) % 1000));
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int ar_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    int64_t ago;
    if (s == NULL) {
        return AR_EINVAL;
    }
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return 0;
    }
    if (ar_parse_duration(s, &ago) == 0 && strpbrk(s, "smhdw") != NULL) {
        *out_ms = now_ms - ago;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || mo < 1 || mo > 12 || d < 1 ||
        d > 31) {
        return AR_EINVAL;
    }
    const char *p = s + n;
    int64_t frac_ms = 0, offset_s = 0;
    if (*p == 'T' || *p == ' ') {
        int m2 = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m2) != 2) {
            return AR_EINVAL;
        }
        p += 1 + m2;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &m2) != 1) {
                return AR_EINVAL;
            }
            p += 1 + m2;
            if (*p == '.') {
                int scale = 100;
                for (p++; isdigit((unsigned char)*p); p++, scale /= 10) {
                    frac_ms += (*p - '0') * scale;
                }
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om = 0;
            int sign = *p == '-' ? -1 : 1;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m2) == 2 ||
                sscanf(p + 1, "%2d%2d%n", &oh, &om, &m2) == 2) {
                p += 1 + m2;
            } else {
                return AR_EINVAL;
            }
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0' || h > 23 || mi > 59 || sec > 60) {
        return AR_EINVAL;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_s) * 1000 + frac_ms;
    return 0;
}

int ar_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return AR_EINVAL;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return AR_E2BIG;
    }
    char *data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        close(fd);
        return AR_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *out = data;
    if (out_len) {
        *out_len = got;
    }
    return 0;
}

int ar_mkdir_p(const char *path, int mode)
{
    char *tmp = ar_strdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
                int err = -errno;
                free(tmp);
                return err;
            }
            *p = '/';
        }
    }
    int rc = 0;
    if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
        rc = -errno;
    }
    free(tmp);
    return rc;
}

char *ar_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/') {
        la--;
    }
    return ar_asprintf("%.*s/%s", (int)la, a, b);
}

int ar_name_valid(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            return 0;
        }
    }
    return n >= 1 && n <= 64;
}

char *ar_exe_share_dir(void)
{
    char exe[4096];
    size_t len = sizeof(exe);
    if (uv_exepath(exe, &len) != 0 || len == 0) {
        return NULL;
    }
    /* /usr/bin/autorun -> /usr: drop the file name, then the bin directory. */
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(exe, '/');
        if (slash == NULL) {
            return NULL;
        }
        *slash = '\0';
    }
    return ar_asprintf("%s/share/autorun", exe);
}
