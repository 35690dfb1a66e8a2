/* Pure helpers for SQL text and values: no I/O, no globals (see sql_text.h). */
#include "db/sql_text.h"
#include "core/error.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that may continue an identifier in PostgreSQL (which allows '$' after the
 * first character) or in SQLite; bytes >= 0x80 are parts of UTF-8 letters. */
static int ident_char(char c)
{
    unsigned char u = (unsigned char)c;
    return isalnum(u) || u == '_' || u == '$' || u >= 0x80;
}

static int tag_char(char c, int first)
{
    unsigned char u = (unsigned char)c;
    return isalpha(u) || u == '_' || u >= 0x80 || (!first && isdigit(u));
}

/* If p starts a comment, string literal, quoted identifier or dollar-quoted string,
 * returns the position just past it (the end of text when unterminated); otherwise
 * NULL. start is the beginning of the text, to look behind p. */
static const char *skip_special(const char *start, const char *p)
{
    if (p[0] == '-' && p[1] == '-') {
        while (*p && *p != '\n') {
            p++;
        }
        return p;
    }
    if (p[0] == '/' && p[1] == '*') {
        /* PostgreSQL nests block comments. */
        int depth = 1;
        p += 2;
        while (*p && depth > 0) {
            if (p[0] == '/' && p[1] == '*') {
                depth++;
                p += 2;
            } else if (p[0] == '*' && p[1] == '/') {
                depth--;
                p += 2;
            } else {
                p++;
            }
        }
        return p;
    }
    if (*p == '\'') {
        int backslash = p > start && (p[-1] == 'E' || p[-1] == 'e') &&
                        (p - 1 == start || !ident_char(p[-2]));
        for (p++; *p; p++) {
            if (backslash && *p == '\\' && p[1]) {
                p++;
            } else if (*p == '\'') {
                if (p[1] != '\'') {
                    return p + 1;
                }
                p++;
            }
        }
        return p;
    }
    if (*p == '"' || *p == '`') {
        char q = *p;
        for (p++; *p; p++) {
            if (*p == q) {
                if (p[1] != q) {
                    return p + 1;
                }
                p++;
            }
        }
        return p;
    }
    if (*p == '$' && (p == start || !ident_char(p[-1]))) {
        const char *q = p + 1;
        if (*q != '$' && !tag_char(*q, 1)) {
            return NULL; /* "$1" is a parameter, not a quote */
        }
        while (*q != '$' && tag_char(*q, 0)) {
            q++;
        }
        if (*q != '$') {
            return NULL;
        }
        size_t taglen = (size_t)(q - p) + 1;
        for (const char *s = q + 1; *s; s++) {
            if (*s == '$' && strncmp(s, p, taglen) == 0) {
                return s + taglen;
            }
        }
        return p + strlen(p);
    }
    return NULL;
}

int ar_sql_pg_placeholders(const char *text, char **out, int *n_params)
{
    struct ar_buf b = {0};
    int n_q = 0, max_native = 0, native = 0;
    const char *p = text;
    while (*p) {
        const char *end = skip_special(text, p);
        if (end != NULL) {
            ar_buf_append(&b, p, (size_t)(end - p));
            p = end;
            continue;
        }
        if (*p == '$' && isdigit((unsigned char)p[1]) && (p == text || !ident_char(p[-1]))) {
            native = 1;
            int n = atoi(p + 1);
            if (n > max_native) {
                max_native = n;
            }
        }
        if (*p == '?') {
            ar_buf_printf(&b, "$%d", ++n_q);
        } else {
            ar_buf_append(&b, p, 1);
        }
        p++;
    }
    if (native) {
        ar_buf_free(&b);
        *out = ar_strdup(text);
        *n_params = max_native;
        return 0;
    }
    *out = b.data ? ar_buf_steal(&b) : ar_strdup("");
    *n_params = n_q;
    return 0;
}

/* Reads the next bare word outside literals and comments, upper-cased into word.
 * Returns 0 at the end of the text. Sets *equals when an '=' was passed over. */
static int next_word(const char *start, const char **pp, char *word, size_t cap, int *equals)
{
    const char *p = *pp;
    while (*p) {
        const char *end = skip_special(start, p);
        if (end != NULL) {
            p = end;
            continue;
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            size_t n = 0;
            while (ident_char(*p)) {
                if (n + 1 < cap) {
                    word[n++] = (char)toupper((unsigned char)*p);
                }
                p++;
            }
            word[n] = '\0';
            *pp = p;
            return 1;
        }
        if (*p == '=' && equals != NULL) {
            *equals = 1;
        }
        p++;
    }
    *pp = p;
    return 0;
}

static int word_in(const char *w, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(w, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* True when any remaining word is one of list. */
static int any_word(const char *start, const char *p, const char *const *list)
{
    char w[32];
    while (next_word(start, &p, w, sizeof(w), NULL)) {
        if (word_in(w, list)) {
            return 1;
        }
    }
    return 0;
}

int ar_sql_is_read(const char *text)
{
    static const char *const writes[] = {"INSERT", "UPDATE", "DELETE", "MERGE", "INTO",
                                         "CREATE", "DROP", "ALTER", "TRUNCATE", NULL};
    static const char *const into[] = {"INTO", NULL};
    static const char *const analyze[] = {"ANALYZE", "ANALYSE", NULL};
    static const char *const reads[] = {"VALUES", "TABLE", "SHOW", NULL};
    static const char *const control[] = {"BEGIN",   "START",     "COMMIT", "END",
                                          "ROLLBACK", "SAVEPOINT", "RELEASE", "ABORT", NULL};
    const char *p = text;
    char first[32];
    if (!next_word(text, &p, first, sizeof(first), NULL)) {
        return 0;
    }
    if (strcmp(first, "SELECT") == 0) {
        return !any_word(text, p, into);
    }
    if (strcmp(first, "WITH") == 0) {
        return !any_word(text, p, writes);
    }
    if (strcmp(first, "EXPLAIN") == 0) {
        return !any_word(text, p, analyze) || !any_word(text, p, writes);
    }
    if (strcmp(first, "PRAGMA") == 0) {
        int equals = 0;
        char w[32];
        while (next_word(text, &p, w, sizeof(w), &equals)) {
        }
        return !equals;
    }
    return word_in(first, reads) || word_in(first, control);
}

int ar_sql_tx_control(const char *text)
{
    static const char *const whole[] = {"BEGIN", "START", "COMMIT", "END", "ABORT", NULL};
    static const char *const to[] = {"TO", NULL};
    const char *p = text;
    char w[32];
    if (!next_word(text, &p, w, sizeof(w), NULL)) {
        return 0;
    }
    if (word_in(w, whole)) {
        return 1;
    }
    if (strcmp(w, "SAVEPOINT") == 0 || strcmp(w, "RELEASE") == 0) {
        return 2;
    }
    if (strcmp(w, "ROLLBACK") == 0) {
        return any_word(text, p, to) ? 2 : 1;
    }
    return 0;
}

void ar_sql_first_word(const char *text, char *word, size_t cap)
{
    const char *p = text;
    if (cap == 0) {
        return;
    }
    if (!next_word(text, &p, word, cap, NULL)) {
        word[0] = '\0';
    }
}

char *ar_sql_excerpt(const char *text, size_t max)
{
    struct ar_buf b = {0};
    int space = 0;
    const char *p = text;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    for (; *p; p++) {
        if (isspace((unsigned char)*p)) {
            space = 1;
            continue;
        }
        if (space) {
            ar_buf_append(&b, " ", 1);
            space = 0;
        }
        ar_buf_append(&b, p, 1);
    }
    char *s = b.data ? ar_buf_steal(&b) : ar_strdup("");
    size_t len = strlen(s);
    if (len > max) {
        size_t cut = max;
        /* Never split a UTF-8 sequence: back up over continuation bytes. */
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
            cut--;
        }
        char *t = ar_asprintf("%.*s...", (int)cut, s);
        free(s);
        s = t;
    }
    return s;
}

int ar_sql_decimal_exact(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+') {
        p++;
    }
    const char *digits_start = p;
    int sig = 0, leading = 1, pending_zeros = 0, frac = 0, any = 0;
    for (; *p; p++) {
        if (*p == '.') {
            if (frac) {
                return 0;
            }
            frac = 1;
            continue;
        }
        if (!isdigit((unsigned char)*p)) {
            break;
        }
        any = 1;
        if (*p == '0') {
            if (!leading) {
                pending_zeros++;
            }
            continue;
        }
        leading = 0;
        sig += pending_zeros + 1;
        pending_zeros = 0;
    }
    if (!any || p == digits_start) {
        return 0;
    }
    int has_exp = 0;
    if (*p == 'e' || *p == 'E') {
        has_exp = 1;
        p++;
        if (*p == '-' || *p == '+') {
            p++;
        }
        if (!isdigit((unsigned char)*p)) {
            return 0;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (*p != '\0') {
        return 0;
    }
    double v = strtod(s, NULL);
    if (!isfinite(v) || (v != 0 && fabs(v) < 1e-300)) {
        return 0;
    }
    if (sig <= 15) {
        return 1;
    }
    /* Integers are exact up to 2^53 whatever their digit count. */
    if (frac || has_exp) {
        return 0;
    }
    errno = 0;
    long long i = strtoll(s, NULL, 10);
    return errno == 0 && i >= -9007199254740992LL && i <= 9007199254740992LL;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n digits. */
static int digits(const char **pp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*pp)[i])) {
            return -1;
        }
        v = v * 10 + ((*pp)[i] - '0');
    }
    *pp += n;
    *out = v;
    return 0;
}

int ar_sql_pg_timestamp(const char *s, char *out, size_t len)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != ' ' && *p != 'T')) {
        return AR_EINVAL;
    }
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec)) {
        return AR_EINVAL;
    }
    if (*p == '.') {
        p++;
        int scale = 100;
        if (!isdigit((unsigned char)*p)) {
            return AR_EINVAL;
        }
        /* Microseconds are cut to the milliseconds JS dates hold. */
        for (; isdigit((unsigned char)*p); p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int offset_s = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0, os = 0;
        if (digits(&p, 2, &oh)) {
            return AR_EINVAL;
        }
        if (*p == ':' && (p++, digits(&p, 2, &om))) {
            return AR_EINVAL;
        }
        if (*p == ':' && (p++, digits(&p, 2, &os))) {
            return AR_EINVAL;
        }
        offset_s = sign * (oh * 3600 + om * 60 + os);
    } else if (*p == 'Z') {
        p++;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return AR_EINVAL;
    }
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
                offset_s;
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - day * 86400;
    int64_t yy;
    unsigned mm, dd;
    civil_from_days(day, &yy, &mm, &dd);
    if (yy < 0 || yy > 9999) {
        return AR_EINVAL;
    }
    char buf[40];
    int n = snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)yy, mm, dd,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), ms);
    if (n < 0 || (size_t)n >= len) {
        return AR_E2BIG;
    }
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

const char *ar_sql_pg_bytea_hex(const char *s)
{
    return s[0] == '\\' && s[1] == 'x' ? s + 2 : s;
}
