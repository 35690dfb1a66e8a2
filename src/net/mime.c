/* RFC 5322 / MIME rendering for mail.send: validates a message and builds its bytes. No I/O. */
#include "net/mime.h"
#include "core/error.h"
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LINE_SOFT 78      /* RFC 5322 2.1.1: a line SHOULD be at most 78 characters... */
#define LINE_HARD 998     /* ...and MUST be at most 998. */
#define EW_MAX 75         /* RFC 2047 2: an encoded-word is at most 75 characters... */
#define EW_LINE 76        /* ...and a line holding encoded-words at most 76. */
#define EW_OVERHEAD 12    /* "=?UTF-8?B?" and "?=" */
#define QP_LINE 76        /* RFC 2045 6.7: encoded lines are at most 76 characters. */
#define WORD_MAX 900      /* The longest run without spaces that we put on a header line as is. */
#define NAME_MAX_LEN 256  /* Display names: generous, and short enough to never need splitting. */
#define UNIQUE_MAX_LEN 128
#define HEADER_NAME_MAX 76

/* A failing header write sticks, so the rendering code can write without checking each call. */
struct wr {
    struct ar_buf b;
    int err;
};

/* A header being written: folding needs the column of the current line. */
struct hdr {
    struct wr *w;
    size_t col;
    int fresh; /* nothing but the field name on the line yet */
};

/* One parsed mailbox of an address list. */
struct mbox {
    char *name; /* owned, UTF-8, NULL when there is none */
    char *addr; /* owned, bare local@domain */
};

struct mbox_vec {
    struct mbox *v; /* owned */
    size_t n;
    size_t cap;
};

/* A rendered body part. */
struct part {
    const char *ctype;
    const char *cte;
    struct wr enc;
};

static const char *const structural[] = {
    "From", "To", "Cc", "Bcc", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding",
};

__attribute__((format(printf, 4, 5)))
static int failf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Copies a user value into an error message: shortened, and with control characters replaced
 * so that an error can never carry a line break into a log. */
static const char *shown(const char *s, size_t n, char *buf, size_t len)
{
    size_t i = 0;
    for (; i < n && i + 4 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < n && i >= 3) {
        memcpy(buf + i - 3, "...", 3);
    }
    buf[i] = '\0';
    return buf;
}

static void put(struct wr *w, const char *s, size_t n)
{
    if (w->err == 0 && ar_buf_append(&w->b, s, n) != 0) {
        w->err = AR_ENOMEM;
    }
}

static void puts_(struct wr *w, const char *s)
{
    put(w, s, strlen(s));
}

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 3.2.3 atext. */
static int is_atext(int c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            return 0;
        }
    }
    return 1;
}

static int contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Refuses what may not appear in a header value: a line break would let a recipe (or whoever
 * controls its input) add headers or recipients, and other controls have no business there. */
static int check_header_value(const char *field, const char *v, char *err, size_t errlen)
{
    if (strpbrk(v, "\r\n") != NULL) {
        return failf(err, errlen, AR_EINVAL, "%s contains a line break", field);
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return failf(err, errlen, AR_EINVAL, "%s contains a control character", field);
        }
    }
    if (!ar_utf8_valid(v, strlen(v))) {
        return failf(err, errlen, AR_EINVAL, "%s is not valid UTF-8", field);
    }
    return 0;
}

/* RFC 5322 3.2.3 dot-atom-text: atext runs separated by single dots. */
static int dot_atom(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int ar_mail_address_valid(const char *addr)
{
    if (addr == NULL) {
        return 0;
    }
    const char *at = strchr(addr, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL) {
        return 0;
    }
    size_t local = (size_t)(at - addr);
    const char *dom = at + 1;
    size_t dlen = strlen(dom);
    if (local == 0 || local > 64 || dlen == 0 || dlen > 255 || !dot_atom(addr, local)) {
        return 0;
    }
    /* Host names only: labels of letters, digits and hyphens. Address literals and quoted
     * local parts are legal but rare enough that refusing them catches more typos than it
     * turns away real mail. */
    size_t label = 0, dots = 0;
    for (size_t i = 0; i <= dlen; i++) {
        char c = dom[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63) {
                return 0;
            }
            dots += c == '.';
            label = 0;
        } else if (is_alnum((unsigned char)c) || c == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return dots > 0 || strcasecmp(dom, "localhost") == 0;
}

static void mbox_vec_free(struct mbox_vec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i].name);
        free(v->v[i].addr);
    }
    free(v->v);
    memset(v, 0, sizeof(*v));
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_wsp(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_wsp((*s)[*n - 1])) {
        (*n)--;
    }
}

/* Turns the phrase before "<addr>" into the name it spells: quotes dropped, backslash
 * escapes inside them resolved. NULL (with *oom clear) when the name is empty. */
static char *phrase_unquote(const char *s, size_t n, int *oom)
{
    char *d = malloc(n + 1);
    size_t k = 0;
    int inq = 0;
    *oom = d == NULL;
    if (d == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            inq = !inq;
        } else if (inq && s[i] == '\\' && i + 1 < n) {
            d[k++] = s[++i];
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    if (k == 0) {
        free(d);
        return NULL;
    }
    return d;
}

static int parse_mailbox(const char *field, const char *s, size_t n, struct mbox_vec *out,
                         char *err, size_t errlen)
{
    char show[96];
    const char *addr = s, *lt = NULL;
    size_t alen;
    char *name = NULL;
    int inq = 0, oom;

    trim(&s, &n);
    if (n == 0) {
        return failf(err, errlen, AR_EINVAL, "%s: empty address", field);
    }
    for (size_t i = 0; i < n && lt == NULL; i++) {
        if (inq && s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            inq = !inq;
        } else if (!inq && s[i] == '<') {
            lt = s + i;
        }
    }
    if (lt == NULL) {
        addr = s;
        alen = n;
    } else {
        const char *gt = memchr(lt, '>', n - (size_t)(lt - s));
        if (gt == NULL) {
            return failf(err, errlen, AR_EINVAL, "%s: missing '>' in '%s'", field,
                         shown(s, n, show, sizeof(show)));
        }
        for (const char *p = gt + 1; p < s + n; p++) {
            if (!is_wsp(*p)) {
                return failf(err, errlen, AR_EINVAL, "%s: unexpected text after '>' in '%s'",
                             field, shown(s, n, show, sizeof(show)));
            }
        }
        addr = lt + 1;
        alen = (size_t)(gt - addr);
        const char *ph = s;
        size_t plen = (size_t)(lt - s);
        trim(&ph, &plen);
        name = phrase_unquote(ph, plen, &oom);
        if (oom) {
            return AR_ENOMEM;
        }
        if (name != NULL && strlen(name) > NAME_MAX_LEN) {
            free(name);
            return failf(err, errlen, AR_EINVAL, "%s: display name longer than %d bytes", field,
                         NAME_MAX_LEN);
        }
    }
    char *a = dup_n(addr, alen);
    if (a == NULL) {
        free(name);
        return AR_ENOMEM;
    }
    if (!ar_mail_address_valid(a)) {
        free(name);
        free(a);
        return failf(err, errlen, AR_EINVAL, "%s: invalid address '%s'", field,
                     shown(addr, alen, show, sizeof(show)));
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        struct mbox *v = realloc(out->v, cap * sizeof(*v));
        if (v == NULL) {
            free(name);
            free(a);
            return AR_ENOMEM;
        }
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n].name = name;
    out->v[out->n].addr = a;
    out->n++;
    return 0;
}

/* Parses one comma-separated address list; commas inside quotes or <> do not split. */
static int parse_list(const char *field, const char *s, struct mbox_vec *out, char *err,
                      size_t errlen)
{
    if (s == NULL) {
        return failf(err, errlen, AR_EINVAL, "%s: empty address", field);
    }
    int rc = check_header_value(field, s, err, errlen);
    if (rc != 0) {
        return rc;
    }
    const char *p = s;
    for (;;) {
        const char *start = p;
        int inq = 0, ina = 0;
        for (; *p != '\0'; p++) {
            if (inq) {
                if (*p == '\\' && p[1] != '\0') {
                    p++;
                } else if (*p == '"') {
                    inq = 0;
                }
            } else if (*p == '"') {
                inq = 1;
            } else if (*p == '<') {
                ina = 1;
            } else if (*p == '>') {
                ina = 0;
            } else if (*p == ',' && !ina) {
                break;
            }
        }
        if (inq) {
            return failf(err, errlen, AR_EINVAL, "%s: unbalanced quote", field);
        }
        rc = parse_mailbox(field, start, (size_t)(p - start), out, err, errlen);
        if (rc != 0 || *p == '\0') {
            return rc;
        }
        p++;
    }
}

static int parse_lists(const char *field, const char *const *items, size_t count,
                       struct mbox_vec *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < count; i++) {
        int rc = parse_list(field, items[i], out, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void hdr_begin(struct hdr *h, struct wr *w, const char *name)
{
    h->w = w;
    puts_(w, name);
    put(w, ":", 1);
    h->col = strlen(name) + 1;
    h->fresh = 1;
}

/* Writes " token", first folding the line when the token would carry it past 78 columns.
 * Folding only ever happens before a space we write, so unfolding gives back the same text. */
static void hdr_token(struct hdr *h, const char *s, size_t n)
{
    if (!h->fresh && h->col + 1 + n > LINE_SOFT) {
        put(h->w, "\r\n", 2);
        h->col = 0;
    }
    put(h->w, " ", 1);
    put(h->w, s, n);
    h->col += 1 + n;
    h->fresh = 0;
}

static void hdr_end(struct hdr *h)
{
    put(h->w, "\r\n", 2);
}

/* Characters an RFC 2047 Q encoded-word carries as is: the set that is safe in every place an
 * encoded-word may stand, phrases (display names) included (RFC 2047 5.3). */
static int q_safe(unsigned char c)
{
    return is_alnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_cost(unsigned char c)
{
    return (q_safe(c) || c == ' ') ? 1 : 3;
}

/* Writes s (valid UTF-8) as RFC 2047 encoded-words, Q when that is shorter (mostly Latin text)
 * and B otherwise. Each word holds whole characters, is at most 75 characters long and keeps
 * its line within 76; the spaces between words are folding points that decoders drop. */
static void hdr_encoded(struct hdr *h, const char *s, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t qlen = 0;
    for (size_t i = 0; i < n; i++) {
        qlen += q_cost(u[i]);
    }
    int use_q = qlen <= (n + 2) / 3 * 4;

    for (size_t i = 0; i < n;) {
        /* The longest character costs 12 in Q, so a word with room for 24 always makes progress. */
        size_t budget = h->col + 1 < EW_LINE ? EW_LINE - h->col - 1 : 0;
        if (budget < EW_OVERHEAD + 12) {
            put(h->w, "\r\n", 2);
            h->col = 0;
            budget = EW_MAX;
        }
        if (budget > EW_MAX) {
            budget = EW_MAX;
        }
        size_t take = 0, cost = 0;
        while (i + take < n) {
            size_t cl = ar_utf8_seq(u + i + take, n - i - take);
            size_t c = 0;
            if (cl == 0) {
                cl = 1; /* Callers validated the text; never loop forever regardless. */
            }
            if (use_q) {
                for (size_t k = 0; k < cl; k++) {
                    c += q_cost(u[i + take + k]);
                }
                if (EW_OVERHEAD + cost + c > budget) {
                    break;
                }
                cost += c;
            } else if (EW_OVERHEAD + (take + cl + 2) / 3 * 4 > budget) {
                break;
            }
            take += cl;
        }
        char word[EW_MAX + 1];
        size_t k = 0;
        memcpy(word, use_q ? "=?UTF-8?Q?" : "=?UTF-8?B?", 10);
        k = 10;
        if (use_q) {
            for (size_t j = i; j < i + take; j++) {
                if (u[j] == ' ') {
                    word[k++] = '_';
                } else if (q_safe(u[j])) {
                    word[k++] = (char)u[j];
                } else {
                    word[k++] = '=';
                    word[k++] = hex[u[j] >> 4];
                    word[k++] = hex[u[j] & 15];
                }
            }
        } else {
            for (size_t j = i; j < i + take; j += 3) {
                uint32_t v = (uint32_t)u[j] << 16;
                size_t left = i + take - j;
                if (left > 1) {
                    v |= (uint32_t)u[j + 1] << 8;
                }
                if (left > 2) {
                    v |= u[j + 2];
                }
                word[k++] = b64[(v >> 18) & 63];
                word[k++] = b64[(v >> 12) & 63];
                word[k++] = left > 1 ? b64[(v >> 6) & 63] : '=';
                word[k++] = left > 2 ? b64[v & 63] : '=';
            }
        }
        word[k++] = '?';
        word[k++] = '=';
        hdr_token(h, word, k);
        i += take;
    }
}

/* Longest run between spaces, the part of a header value that cannot be folded. */
static size_t longest_run(const char *s)
{
    size_t best = 0, cur = 0;
    for (; *s; s++) {
        cur = *s == ' ' ? 0 : cur + 1;
        if (cur > best) {
            best = cur;
        }
    }
    return best;
}

/* Writes an ASCII value as is, folding at its spaces. */
static void hdr_unstructured(struct hdr *h, const char *s)
{
    for (;;) {
        const char *sp = strchr(s, ' ');
        size_t len = sp ? (size_t)(sp - s) : strlen(s);
        hdr_token(h, s, len);
        if (sp == NULL) {
            break;
        }
        s = sp + 1;
    }
}

/* Subject and other free text: ASCII that a reader could not mistake for an encoded-word goes
 * as is; anything else, or a word too long to fit a line, goes as encoded-words. */
static void hdr_text(struct hdr *h, const char *s)
{
    size_t n = strlen(s);
    if (is_ascii(s, n) && strstr(s, "=?") == NULL && longest_run(s) <= WORD_MAX) {
        hdr_unstructured(h, s);
    } else {
        hdr_encoded(h, s, n);
    }
}

/* A display name: atoms as is, other ASCII as a quoted-string, non-ASCII as encoded-words. */
static void hdr_phrase(struct hdr *h, const char *name)
{
    size_t n = strlen(name);
    if (!is_ascii(name, n)) {
        hdr_encoded(h, name, n);
        return;
    }
    int plain = name[0] != ' ' && name[n - 1] != ' ' && strstr(name, "=?") == NULL &&
                strstr(name, "  ") == NULL;
    for (size_t i = 0; i < n && plain; i++) {
        plain = name[i] == ' ' || is_atext((unsigned char)name[i]);
    }
    if (plain) {
        hdr_token(h, name, n);
        return;
    }
    struct wr q = {0};
    put(&q, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '"' || name[i] == '\\') {
            put(&q, "\\", 1);
        }
        put(&q, name + i, 1);
    }
    put(&q, "\"", 1);
    if (q.err != 0) {
        h->w->err = q.err;
    } else {
        hdr_token(h, q.b.data, q.b.len);
    }
    ar_buf_free(&q.b);
}

static void hdr_mailboxes(struct wr *w, const char *field, const struct mbox_vec *v)
{
    struct hdr h;
    hdr_begin(&h, w, field);
    for (size_t i = 0; i < v->n; i++) {
        const struct mbox *m = &v->v[i];
        char tok[512];
        int last = i + 1 == v->n;
        int k;
        if (m->name != NULL) {
            hdr_phrase(&h, m->name);
            k = snprintf(tok, sizeof(tok), "<%s>%s", m->addr, last ? "" : ",");
        } else {
            k = snprintf(tok, sizeof(tok), "%s%s", m->addr, last ? "" : ",");
        }
        hdr_token(&h, tok, (size_t)k);
    }
    hdr_end(&h);
}

/* Bodies that are ASCII with lines within the 998-octet limit go as 7bit, readable as they
 * are; anything else (UTF-8, controls, longer lines) as quoted-printable. */
static int body_7bit(const char *s)
{
    size_t line = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            line = 0;
        } else if (*p >= 0x80 || (*p < 0x20 && *p != '\t') || *p == 0x7f || ++line > LINE_HARD) {
            return 0;
        }
    }
    return 1;
}

/* Length of the line starting at s and of its line break (CRLF, LF or a lone CR; 0 at the end). */
static size_t line_len(const char *s, size_t *brk)
{
    size_t n = strcspn(s, "\r\n");
    *brk = s[n] == '\0' ? 0 : (s[n] == '\r' && s[n + 1] == '\n') ? 2 : 1;
    return n;
}

static void encode_7bit(struct wr *w, const char *s)
{
    for (;;) {
        size_t brk, n = line_len(s, &brk);
        put(w, s, n);
        if (brk == 0) {
            return;
        }
        put(w, "\r\n", 2);
        s += n + brk;
    }
}

/* RFC 2045 6.7 quoted-printable with CRLF line breaks. Soft breaks keep lines within 76
 * characters and never fall inside a UTF-8 character, so each line also reads on its own. */
static void encode_qp(struct wr *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (;;) {
        size_t brk, n = line_len(s, &brk);
        const unsigned char *u = (const unsigned char *)s;
        size_t col = 0;
        for (size_t i = 0; i < n;) {
            char enc[12];
            size_t el = 0, ul = 1;
            unsigned char c = u[i];
            if (c >= 0x80) {
                ul = ar_utf8_seq(u + i, n - i);
                if (ul == 0) {
                    ul = 1;
                }
            }
            int last = i + ul == n;
            if ((c > 0x20 && c < 0x7f && c != '=') || ((c == ' ' || c == '\t') && !last)) {
                enc[el++] = (char)c;
            } else {
                for (size_t k = 0; k < ul; k++) {
                    enc[el++] = '=';
                    enc[el++] = hex[u[i + k] >> 4];
                    enc[el++] = hex[u[i + k] & 15];
                }
            }
            /* Leave room for the "=" of a soft break unless this is the line's last unit. */
            if (col + el > (last ? QP_LINE : QP_LINE - 1)) {
                put(w, "=\r\n", 3);
                col = 0;
            }
            put(w, enc, el);
            col += el;
            i += ul;
        }
        if (brk == 0) {
            return;
        }
        put(w, "\r\n", 2);
        s += n + brk;
    }
}

static void encode_part(struct part *p, const char *ctype, const char *body)
{
    p->ctype = ctype;
    if (body_7bit(body)) {
        p->cte = "7bit";
        encode_7bit(&p->enc, body);
    } else {
        p->cte = "quoted-printable";
        encode_qp(&p->enc, body);
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A boundary that looks random but is a function of the message's unique id, so rendering
 * stays pure. It starts with "=_", which quoted-printable can never produce (it writes "=" as
 * "=3D"); 7bit parts can hold anything, so the caller still checks and tries the next one. */
static void make_boundary(char *buf, size_t len, const char *unique_id, int64_t now_s,
                          unsigned attempt)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)unique_id; *p; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
    }
    uint64_t a = mix64(h ^ mix64((uint64_t)now_s + attempt));
    uint64_t b = mix64(a ^ (0x9e3779b97f4a7c15ULL * (attempt + 1)));
    snprintf(buf, len, "=_ar_%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static int format_date(int64_t now_s, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* RFC 5322 3.3 wants a four-digit year: 1970 up to the end of 9999. */
    if (now_s < 0 || now_s > 253402300799LL) {
        return AR_ERANGE;
    }
    time_t t = (time_t)now_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        return AR_ERANGE;
    }
    snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

static int check_custom_header(const struct ar_mail_header *hd, char *err, size_t errlen)
{
    char show[96], field[HEADER_NAME_MAX + 16];
    const char *name = hd->name;
    if (name == NULL || name[0] == '\0') {
        return failf(err, errlen, AR_EINVAL, "headers: empty header name");
    }
    if (strpbrk(name, "\r\n") != NULL) {
        return failf(err, errlen, AR_EINVAL, "headers: a header name contains a line break");
    }
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 33 || c > 126 || c == ':') {
            return failf(err, errlen, AR_EINVAL,
                         "headers: '%s' is not a header name (printable ASCII, no ':' or space)",
                         shown(name, n, show, sizeof(show)));
        }
    }
    if (n > HEADER_NAME_MAX) {
        return failf(err, errlen, AR_EINVAL, "headers: header name '%s' is longer than %d",
                     shown(name, n, show, sizeof(show)), HEADER_NAME_MAX);
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(structural); i++) {
        if (strcasecmp(name, structural[i]) == 0) {
            return failf(err, errlen, AR_EINVAL, "headers: %s is set by mail.send itself",
                         structural[i]);
        }
    }
    /* These have their own fields; a second copy would make the message invalid. */
    if (strcasecmp(name, "Subject") == 0 || strcasecmp(name, "Reply-To") == 0) {
        return failf(err, errlen, AR_EINVAL, "headers: use the %s field instead of %s",
                     strcasecmp(name, "Subject") == 0 ? "subject" : "replyTo", name);
    }
    snprintf(field, sizeof(field), "headers.%s", name);
    if (hd->value == NULL) {
        return failf(err, errlen, AR_EINVAL, "%s has no value", field);
    }
    int rc = check_header_value(field, hd->value, err, errlen);
    if (rc != 0) {
        return rc;
    }
    /* Custom headers may be structured (List-Unsubscribe), so ASCII is never encoded and a
     * word that no folding could fit in a line is refused instead. */
    if (is_ascii(hd->value, strlen(hd->value)) && longest_run(hd->value) > WORD_MAX) {
        return failf(err, errlen, AR_EINVAL, "%s has a word too long for a header line", field);
    }
    return 0;
}

static int check_body(const char *field, const char *s, char *err, size_t errlen)
{
    if (s != NULL && !ar_utf8_valid(s, strlen(s))) {
        return failf(err, errlen, AR_EINVAL, "%s is not valid UTF-8", field);
    }
    return 0;
}

static int same_address(const char *a, const char *b)
{
    const char *da = strchr(a, '@'), *db = strchr(b, '@');
    /* The local part is case-sensitive by the letter of RFC 5321, the domain never is. */
    return da - a == db - b && memcmp(a, b, (size_t)(da - a)) == 0 && strcasecmp(da, db) == 0;
}

static int add_rcpts(char ***rcpt, size_t *n, const struct mbox_vec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < *n && !seen; j++) {
            seen = same_address((*rcpt)[j], v->v[i].addr);
        }
        if (seen) {
            continue;
        }
        char **r = realloc(*rcpt, (*n + 1) * sizeof(*r));
        if (r == NULL) {
            return AR_ENOMEM;
        }
        *rcpt = r;
        if ((r[*n] = dup_n(v->v[i].addr, strlen(v->v[i].addr))) == NULL) {
            return AR_ENOMEM;
        }
        (*n)++;
    }
    return 0;
}

static void put_part_headers(struct wr *w, const struct part *p)
{
    puts_(w, "Content-Type: ");
    puts_(w, p->ctype);
    puts_(w, "\r\nContent-Transfer-Encoding: ");
    puts_(w, p->cte);
    puts_(w, "\r\n\r\n");
}

int ar_mime_render(const struct ar_mail_msg *msg, int64_t now_s, const char *unique_id,
                   struct ar_mime_out *out, char *err, size_t errlen)
{
    struct mbox_vec from = {0}, to = {0}, cc = {0}, bcc = {0}, reply = {0};
    struct wr w = {0};
    struct part parts[2];
    size_t nparts = 0;
    char **rcpt = NULL;
    size_t nrcpt = 0;
    char *mid = NULL, *efrom = NULL;
    const char *from_domain;
    char date[64], boundary[48];
    struct hdr h;
    int rc;

    memset(parts, 0, sizeof(parts));
    if (msg == NULL || out == NULL) {
        return failf(err, errlen, AR_EINVAL, "no message");
    }
    rc = format_date(now_s, date, sizeof(date));
    if (rc != 0) {
        return failf(err, errlen, rc, "date out of range");
    }
    if (unique_id == NULL || strlen(unique_id) > UNIQUE_MAX_LEN ||
        !dot_atom(unique_id, strlen(unique_id))) {
        return failf(err, errlen, AR_EINVAL, "unique_id is not dot-atom text of 1 to %d bytes",
                     UNIQUE_MAX_LEN);
    }

    if (msg->from == NULL || msg->from[0] == '\0') {
        rc = failf(err, errlen, AR_EINVAL, "from is required");
        goto out;
    }
    if ((rc = parse_list("from", msg->from, &from, err, errlen)) != 0) {
        goto out;
    }
    if (from.n != 1) {
        rc = failf(err, errlen, AR_EINVAL, "from must be exactly one address");
        goto out;
    }
    if ((rc = parse_lists("to", msg->to, msg->to_count, &to, err, errlen)) != 0 ||
        (rc = parse_lists("cc", msg->cc, msg->cc_count, &cc, err, errlen)) != 0 ||
        (rc = parse_lists("bcc", msg->bcc, msg->bcc_count, &bcc, err, errlen)) != 0 ||
        (rc = parse_lists("replyTo", msg->reply_to, msg->reply_to_count, &reply, err, errlen)) !=
            0) {
        goto out;
    }
    if (to.n + cc.n + bcc.n == 0) {
        rc = failf(err, errlen, AR_EINVAL, "no recipients: set to, cc or bcc");
        goto out;
    }
    if (msg->subject != NULL &&
        (rc = check_header_value("subject", msg->subject, err, errlen)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < msg->header_count; i++) {
        if ((rc = check_custom_header(&msg->headers[i], err, errlen)) != 0) {
            goto out;
        }
    }
    if ((rc = check_body("text", msg->text, err, errlen)) != 0 ||
        (rc = check_body("html", msg->html, err, errlen)) != 0) {
        goto out;
    }

    /* Everything is valid from here on: only memory can fail. */
    rc = AR_ENOMEM;
    from_domain = strchr(from.v[0].addr, '@') + 1;
    mid = malloc(strlen(unique_id) + strlen(from_domain) + 4);
    efrom = dup_n(from.v[0].addr, strlen(from.v[0].addr));
    if (mid == NULL || efrom == NULL) {
        goto out;
    }
    sprintf(mid, "<%s@%s>", unique_id, from_domain);
    if (add_rcpts(&rcpt, &nrcpt, &to) != 0 || add_rcpts(&rcpt, &nrcpt, &cc) != 0 ||
        add_rcpts(&rcpt, &nrcpt, &bcc) != 0) {
        goto out;
    }

    if (msg->text != NULL || msg->html == NULL) {
        encode_part(&parts[nparts++], "text/plain; charset=UTF-8", msg->text ? msg->text : "");
    }
    if (msg->html != NULL) {
        encode_part(&parts[nparts++], "text/html; charset=UTF-8", msg->html);
    }
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].enc.err != 0) {
            goto out;
        }
    }
    if (nparts == 2) {
        /* Each attempt gives another boundary and a part holds finitely many, so this ends;
         * in practice on the first try. */
        for (unsigned attempt = 0;; attempt++) {
            make_boundary(boundary, sizeof(boundary), unique_id, now_s, attempt);
            if (!contains(parts[0].enc.b.data, parts[0].enc.b.len, boundary) &&
                !contains(parts[1].enc.b.data, parts[1].enc.b.len, boundary)) {
                break;
            }
        }
    }

    puts_(&w, "Date: ");
    puts_(&w, date);
    puts_(&w, "\r\n");
    hdr_mailboxes(&w, "From", &from);
    if (reply.n > 0) {
        hdr_mailboxes(&w, "Reply-To", &reply);
    }
    if (to.n > 0) {
        hdr_mailboxes(&w, "To", &to);
    } else if (cc.n == 0) {
        puts_(&w, "To: undisclosed-recipients:;\r\n");
    }
    if (cc.n > 0) {
        hdr_mailboxes(&w, "Cc", &cc);
    }
    if (msg->subject != NULL) {
        hdr_begin(&h, &w, "Subject");
        hdr_text(&h, msg->subject);
        hdr_end(&h);
    }
    puts_(&w, "Message-ID: ");
    puts_(&w, mid);
    puts_(&w, "\r\n");
    for (size_t i = 0; i < msg->header_count; i++) {
        const char *v = msg->headers[i].value;
        hdr_begin(&h, &w, msg->headers[i].name);
        if (is_ascii(v, strlen(v))) {
            hdr_unstructured(&h, v);
        } else {
            hdr_encoded(&h, v, strlen(v));
        }
        hdr_end(&h);
    }
    puts_(&w, "MIME-Version: 1.0\r\n");
    if (nparts == 1) {
        put_part_headers(&w, &parts[0]);
        put(&w, parts[0].enc.b.data, parts[0].enc.b.len);
        if (parts[0].enc.b.len > 0 &&
            (parts[0].enc.b.len < 2 || memcmp(w.b.data + w.b.len - 2, "\r\n", 2) != 0)) {
            puts_(&w, "\r\n");
        }
    } else {
        char param[64];
        snprintf(param, sizeof(param), "boundary=\"%s\"", boundary);
        hdr_begin(&h, &w, "Content-Type");
        hdr_token(&h, "multipart/alternative;", strlen("multipart/alternative;"));
        hdr_token(&h, param, strlen(param));
        hdr_end(&h);
        puts_(&w, "\r\n");
        for (size_t i = 0; i < nparts; i++) {
            /* The CRLF before each delimiter belongs to the delimiter (RFC 2046 5.1.1), so
             * a part's content ends exactly where its text ended. */
            puts_(&w, i == 0 ? "--" : "\r\n--");
            puts_(&w, boundary);
            puts_(&w, "\r\n");
            put_part_headers(&w, &parts[i]);
            put(&w, parts[i].enc.b.data, parts[i].enc.b.len);
        }
        puts_(&w, "\r\n--");
        puts_(&w, boundary);
        puts_(&w, "--\r\n");
    }
    if (w.err != 0) {
        goto out;
    }

    out->data = w.b.data;
    out->len = w.b.len;
    out->message_id = mid;
    out->envelope_from = efrom;
    out->rcpt = rcpt;
    out->rcpt_count = nrcpt;
    w.b.data = NULL;
    mid = efrom = NULL;
    rcpt = NULL;
    nrcpt = 0;
    rc = 0;

out:
    if (rc == AR_ENOMEM) {
        failf(err, errlen, rc, "out of memory");
    }
    mbox_vec_free(&from);
    mbox_vec_free(&to);
    mbox_vec_free(&cc);
    mbox_vec_free(&bcc);
    mbox_vec_free(&reply);
    for (size_t i = 0; i < nparts; i++) {
        ar_buf_free(&parts[i].enc.b);
    }
    ar_buf_free(&w.b);
    for (size_t i = 0; i < nrcpt; i++) {
        free(rcpt[i]);
    }
    free(rcpt);
    free(mid);
    free(efrom);
    return rc;
}

void ar_mime_out_free(struct ar_mime_out *out)
{
    if (out == NULL) {
        return;
    }
    free(out->data);
    free(out->message_id);
    free(out->envelope_from);
    for (size_t i = 0; i < out->rcpt_count; i++) {
        free(out->rcpt[i]);
    }
    free(out->rcpt);
    memset(out, 0, sizeof(*out));
}
