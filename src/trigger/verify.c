/* Webhook delivery verification: provider HMAC schemes, tokens, Basic auth, replay windows. */
#include "trigger/verify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/error.h"

/* A borrowed, not NUL-terminated piece of a header value. */
struct view {
    const char *p;
    size_t n;
};

enum encoding { ENC_HEX, ENC_BASE64 };

/* How the timestamp header of a scheme is written. */
enum ts_format {
    TS_NONE,
    TS_UNIX,    /* decimal Unix seconds (Stripe) */
    TS_ISO8601, /* 2026-11-23T09:00:00Z (Zendesk) */
    TS_ANY      /* Unix seconds or milliseconds, or ISO 8601 (generic hmac) */
};

/* One "HMAC of (timestamp, separator, body, trailer) in one header" scheme, which covers every
 * provider here but Stripe. */
struct hmac_scheme {
    const char *header;
    const char *algorithm;
    enum encoding encoding;
    const char *prefix;
    const char *ts_header;
    enum ts_format ts_format;
    const char *ts_sep;
    const char *trailer; /* appended after the body: Trello's callback URL */
    int64_t tolerance_s;
};

static const char *const scheme_names[] = {
    [AR_VERIFY_NONE] = "none",           [AR_VERIFY_GITHUB] = "github",
    [AR_VERIFY_ZENDESK] = "zendesk",     [AR_VERIFY_TRELLO] = "trello",
    [AR_VERIFY_HELPSCOUT] = "helpscout", [AR_VERIFY_INTERCOM] = "intercom",
    [AR_VERIFY_STRIPE] = "stripe",       [AR_VERIFY_TOKEN] = "token",
    [AR_VERIFY_BASIC] = "basic",         [AR_VERIFY_HMAC] = "hmac",
};

#define N_SCHEMES (sizeof(scheme_names) / sizeof(scheme_names[0]))

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* ASCII-only case folding: header names and schemes are ASCII, and the locale must not matter. */
static bool ascii_eq(const char *a, const char *b)
{
    while (*a != '\0' && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

static bool ascii_prefix(struct view v, const char *prefix, size_t *plen)
{
    size_t n = strlen(prefix);

    if (v.n < n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)v.p[i]) != lower((unsigned char)prefix[i])) {
            return false;
        }
    }
    *plen = n;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct view trim(struct view v)
{
    while (v.n > 0 && is_ows(v.p[0])) {
        v.p++;
        v.n--;
    }
    while (v.n > 0 && is_ows(v.p[v.n - 1])) {
        v.n--;
    }
    return v;
}

const char *ar_header_find(const struct ar_header *headers, size_t n_headers, const char *name)
{
    for (size_t i = 0; i < n_headers; i++) {
        if (headers[i].name != NULL && headers[i].value != NULL &&
            ascii_eq(headers[i].name, name)) {
            return headers[i].value;
        }
    }
    return NULL;
}

/* The trimmed value of the one header called name. A signature header sent twice is refused
 * rather than guessed at: which copy a proxy or framework would honour is not knowable here. */
static int header_get(const struct ar_verify_input *in, const char *name, struct view *out,
                      char *why, size_t why_len)
{
    const char *value = NULL;
    int count = 0;

    for (size_t i = 0; i < in->n_headers; i++) {
        const struct ar_header *h = &in->headers[i];
        if (h->name != NULL && h->value != NULL && ascii_eq(h->name, name)) {
            value = h->value;
            count++;
        }
    }
    if (count == 0) {
        return fail(why, why_len, AR_EVERIFY, "missing %s header", name);
    }
    if (count > 1) {
        return fail(why, why_len, AR_EVERIFY, "duplicate %s header", name);
    }
    *out = trim((struct view){value, strlen(value)});
    return 0;
}

int ar_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len) {
        return 0;
    }
    if (a_len == 0) {
        return 1;
    }
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

/* ---- hex and base64 ---- */

int ar_hex_encode(const void *src, size_t len, char *dst, size_t dst_size)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = src;

    if (dst_size == 0 || len > (dst_size - 1) / 2) {
        return AR_E2BIG;
    }
    for (size_t i = 0; i < len; i++) {
        dst[2 * i] = digits[s[i] >> 4];
        dst[2 * i + 1] = digits[s[i] & 0x0f];
    }
    dst[2 * len] = '\0';
    return 0;
}

int ar_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int ar_hex_decode(const char *src, size_t len, void *dst, size_t dst_size, size_t *out_len)
{
    unsigned char *d = dst;

    if (len % 2 != 0) {
        return AR_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (ar_hex_digit(src[i]) < 0) {
            return AR_EINVAL;
        }
    }
    if (len / 2 > dst_size) {
        return AR_E2BIG;
    }
    for (size_t i = 0; i < len / 2; i++) {
        d[i] = (unsigned char)(ar_hex_digit(src[2 * i]) << 4 | ar_hex_digit(src[2 * i + 1]));
    }
    *out_len = len / 2;
    return 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int ar_base64_encode(const void *src, size_t len, char *dst, size_t dst_size, size_t *out_len)
{
    const unsigned char *s = src;
    size_t o = 0;

    if (len > (SIZE_MAX - 1) / 4 * 3 - 2 || dst_size < AR_BASE64_ENCODED_SIZE(len)) {
        return AR_E2BIG;
    }
    for (size_t i = 0; i < len; i += 3) {
        size_t rest = len - i;
        uint32_t w = (uint32_t)s[i] << 16;
        if (rest > 1) {
            w |= (uint32_t)s[i + 1] << 8;
        }
        if (rest > 2) {
            w |= s[i + 2];
        }
        dst[o++] = b64_alphabet[(w >> 18) & 63];
        dst[o++] = b64_alphabet[(w >> 12) & 63];
        dst[o++] = rest > 1 ? b64_alphabet[(w >> 6) & 63] : '=';
        dst[o++] = rest > 2 ? b64_alphabet[w & 63] : '=';
    }
    dst[o] = '\0';
    if (out_len != NULL) {
        *out_len = o;
    }
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

int ar_base64_decode(const char *src, size_t len, void *dst, size_t dst_size, size_t *out_len)
{
    unsigned char *d = dst;
    size_t n = len;
    size_t out;

    /* First validate everything and size the result, so dst is untouched on failure. */
    if (n % 4 == 0 && n > 0 && src[n - 1] == '=') {
        n -= (src[n - 2] == '=') ? 2 : 1;
    } else if (n % 4 != 0 && memchr(src, '=', len) != NULL) {
        return AR_EINVAL; /* padding present but not a whole quantum */
    }
    if (n % 4 == 1) {
        return AR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (b64_value(src[i]) < 0) {
            return AR_EINVAL;
        }
    }
    /* Bits left over after the last whole byte must be zero, as every encoder writes them. */
    if (n % 4 == 2 && (b64_value(src[n - 1]) & 0x0f) != 0) {
        return AR_EINVAL;
    }
    if (n % 4 == 3 && (b64_value(src[n - 1]) & 0x03) != 0) {
        return AR_EINVAL;
    }
    out = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (out > dst_size) {
        return AR_E2BIG;
    }

    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        size_t rest = n - i;
        uint32_t w = (uint32_t)b64_value(src[i]) << 18 | (uint32_t)b64_value(src[i + 1]) << 12;
        if (rest > 2) {
            w |= (uint32_t)b64_value(src[i + 2]) << 6;
        }
        if (rest > 3) {
            w |= (uint32_t)b64_value(src[i + 3]);
        }
        d[o++] = (unsigned char)(w >> 16);
        if (rest > 2) {
            d[o++] = (unsigned char)(w >> 8);
        }
        if (rest > 3) {
            d[o++] = (unsigned char)w;
        }
    }
    *out_len = out;
    return 0;
}

/* ---- HMAC ---- */

/* The OpenSSL digest name and size for a user-facing algorithm name, or NULL. */
static const char *digest_name(const char *algorithm, size_t *size)
{
    static const struct {
        const char *name;
        const char *ossl;
        size_t size;
    } table[] = {{"sha1", "SHA1", 20}, {"sha256", "SHA256", 32}, {"sha512", "SHA512", 64}};

    if (algorithm == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (ascii_eq(algorithm, table[i].name)) {
            if (size != NULL) {
                *size = table[i].size;
            }
            return table[i].ossl;
        }
    }
    return NULL;
}

int ar_hmac(const char *algorithm, const void *key, size_t key_len,
            const struct ar_hmac_part *parts, size_t n_parts, unsigned char *out,
            size_t *out_len)
{
    const char *md = digest_name(algorithm, NULL);
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t len = 0;
    int err = AR_ENOMEM;

    if (md == NULL || key == NULL || key_len == 0) {
        return AR_EINVAL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
    params[1] = OSSL_PARAM_construct_end();

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        goto out;
    }
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL || !EVP_MAC_init(ctx, key, key_len, params)) {
        goto out;
    }
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].len > 0 && !EVP_MAC_update(ctx, parts[i].data, parts[i].len)) {
            goto out;
        }
    }
    if (!EVP_MAC_final(ctx, out, &len, AR_HMAC_MAX)) {
        goto out;
    }
    *out_len = len;
    err = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return err;
}

/* Equality of two secrets without revealing their length through timing: both are hashed
 * first, and the fixed-size digests are compared in constant time. */
static int secret_equal(const void *a, size_t a_len, const void *b, size_t b_len, bool *equal)
{
    unsigned char da[EVP_MAX_MD_SIZE];
    unsigned char db[EVP_MAX_MD_SIZE];
    unsigned int la = 0;
    unsigned int lb = 0;

    if (!EVP_Digest(a, a_len, da, &la, EVP_sha256(), NULL) ||
        !EVP_Digest(b, b_len, db, &lb, EVP_sha256(), NULL)) {
        return AR_ENOMEM;
    }
    *equal = ar_ct_equal(da, la, db, lb) != 0;
    return 0;
}

/* ---- timestamps ---- */

/* Days from 1970-01-01 to a proleptic Gregorian date (the usual era-based civil-date
 * arithmetic, valid for every year parsed below). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *p, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 / ISO 8601 extended date-time: YYYY-MM-DD(T|t| )hh:mm:ss[.frac](Z|z|+hh:mm|-hh:mm).
 * Fractions are dropped: the replay window is counted in whole seconds. */
static bool parse_iso8601(struct view v, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = v.p;
    size_t n = v.n;
    int year, mon, day, hour, min, sec, oh = 0, om = 0;
    size_t i = 19;

    if (n < 20 || !digits(p, 4, &year) || p[4] != '-' || !digits(p + 5, 2, &mon) ||
        p[7] != '-' || !digits(p + 8, 2, &day) ||
        (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || !digits(p + 11, 2, &hour) ||
        p[13] != ':' || !digits(p + 14, 2, &min) || p[16] != ':' || !digits(p + 17, 2, &sec)) {
        return false;
    }
    if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour > 23 || min > 59 ||
        sec > 60) {
        return false;
    }
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon == 2 && day == 29 && !leap) {
        return false;
    }
    if (p[i] == '.') {
        size_t start = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
    } else if (i < n && (p[i] == '+' || p[i] == '-')) {
        int sign = p[i] == '-' ? -1 : 1;
        if (n - i == 6 && p[i + 3] == ':' && digits(p + i + 1, 2, &oh) &&
            digits(p + i + 4, 2, &om)) {
            i += 6;
        } else if (n - i == 5 && digits(p + i + 1, 2, &oh) && digits(p + i + 3, 2, &om)) {
            i += 5;
        } else {
            return false;
        }
        if (oh > 23 || om > 59) {
            return false;
        }
        oh *= sign;
        om *= sign;
    } else {
        return false; /* a time without a zone is ambiguous */
    }
    if (i != n) {
        return false;
    }
    *out = days_from_civil(year, mon, day) * 86400 + (int64_t)hour * 3600 + min * 60 + sec -
           ((int64_t)oh * 3600 + om * 60);
    return true;
}

/* Decimal Unix time. Values of 1e11 and above (the year 5138 in seconds) are taken as
 * milliseconds when allow_ms is set, since some senders stamp in milliseconds. */
static bool parse_unix(struct view v, bool allow_ms, int64_t *out)
{
    int64_t t = 0;

    if (v.n == 0 || v.n > 15) {
        return false;
    }
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            return false;
        }
        t = t * 10 + (v.p[i] - '0');
    }
    if (t >= INT64_C(100000000000)) {
        if (!allow_ms) {
            return false;
        }
        t /= 1000;
    }
    *out = t;
    return true;
}

static bool parse_timestamp(struct view v, enum ts_format format, int64_t *out)
{
    switch (format) {
    case TS_UNIX: return parse_unix(v, false, out);
    case TS_ISO8601: return parse_iso8601(v, out);
    case TS_ANY: return parse_unix(v, true, out) || parse_iso8601(v, out);
    case TS_NONE: break;
    }
    return false;
}

static int check_fresh(int64_t ts, int64_t now, int64_t tolerance, char *why, size_t why_len)
{
    /* Unsigned arithmetic cannot overflow, and the true distance always fits in 64 bits. */
    uint64_t dist = ts <= now ? (uint64_t)now - (uint64_t)ts : (uint64_t)ts - (uint64_t)now;

    if (dist <= (uint64_t)tolerance) {
        return 0;
    }
    return fail(why, why_len, AR_ESTALE, "timestamp %llu s %s (limit %lld s)",
                (unsigned long long)dist, ts <= now ? "old" : "in the future",
                (long long)tolerance);
}

/* ---- schemes ---- */

static int64_t tolerance_of(const struct ar_verify_spec *spec)
{
    return spec->tolerance_s > 0 ? spec->tolerance_s : AR_VERIFY_DEFAULT_TOLERANCE_S;
}

static int check_mac(const struct hmac_scheme *s, const char *secret, size_t secret_len,
                     const struct ar_verify_input *in, char *why, size_t why_len)
{
    struct view sig;
    struct view ts_text = {"", 0};
    int64_t ts = 0;
    unsigned char given[AR_HMAC_MAX];
    unsigned char want[AR_HMAC_MAX];
    size_t given_len = 0;
    size_t want_len = 0;
    size_t digest_len = 0;
    size_t plen = 0;
    int err;

    digest_name(s->algorithm, &digest_len);
    err = header_get(in, s->header, &sig, why, why_len);
    if (err != 0) {
        return err;
    }
    if (s->ts_header != NULL) {
        err = header_get(in, s->ts_header, &ts_text, why, why_len);
        if (err != 0) {
            return err;
        }
        if (!parse_timestamp(ts_text, s->ts_format, &ts)) {
            return fail(why, why_len, AR_EVERIFY, "malformed %s header (%s)", s->ts_header,
                        s->ts_format == TS_ISO8601 ? "expected ISO 8601 UTC time"
                                                   : "expected Unix time or ISO 8601");
        }
    }
    if (s->prefix != NULL && s->prefix[0] != '\0') {
        if (!ascii_prefix(sig, s->prefix, &plen)) {
            return fail(why, why_len, AR_EVERIFY, "malformed %s header (no '%s' prefix)", s->header,
                        s->prefix);
        }
        sig.p += plen;
        sig.n -= plen;
    }
    if (s->encoding == ENC_HEX) {
        err = ar_hex_decode(sig.p, sig.n, given, sizeof(given), &given_len);
    } else {
        err = ar_base64_decode(sig.p, sig.n, given, sizeof(given), &given_len);
    }
    if (err != 0 || given_len != digest_len) {
        return fail(why, why_len, AR_EVERIFY, "malformed %s header (expected %s of %zu bytes)",
                    s->header, s->encoding == ENC_HEX ? "hex" : "base64", digest_len);
    }

    const char *sep = s->ts_sep != NULL ? s->ts_sep : "";
    const char *trailer = s->trailer != NULL ? s->trailer : "";
    struct ar_hmac_part parts[] = {
        {ts_text.p, ts_text.n},
        {sep, s->ts_header != NULL ? strlen(sep) : 0},
        {in->body, in->body_len},
        {trailer, strlen(trailer)},
    };
    err = ar_hmac(s->algorithm, secret, secret_len, parts, 4, want, &want_len);
    if (err != 0) {
        return fail(why, why_len, err, "cannot compute HMAC");
    }
    bool match = ar_ct_equal(given, given_len, want, want_len) != 0;
    OPENSSL_cleanse(want, sizeof(want));
    if (!match) {
        return fail(why, why_len, AR_EVERIFY, "signature mismatch");
    }
    /* Freshness is judged only once the timestamp is known to be the sender's. */
    if (s->ts_header != NULL) {
        return check_fresh(ts, in->now_s, s->tolerance_s, why, why_len);
    }
    return 0;
}

/* Stripe-Signature: t=1492774577,v1=<hex>,v1=<hex>,v0=<hex>. Any v1 may match (several are
 * sent while a secret is being rolled); v0 and unknown keys are ignored, as Stripe's own
 * libraries do. */
static int check_stripe(const struct ar_verify_spec *spec, const char *secret, size_t secret_len,
                        const struct ar_verify_input *in, char *why, size_t why_len)
{
    static const char header[] = "Stripe-Signature";
    struct view value;
    struct view t_text = {NULL, 0};
    int64_t ts = 0;
    unsigned char want[AR_HMAC_MAX];
    size_t want_len = 0;
    int n_t = 0;
    int n_v1 = 0;
    int matched = 0;
    int err;

    err = header_get(in, header, &value, why, why_len);
    if (err != 0) {
        return err;
    }
    /* Pass 1: find the timestamp, which the signed payload needs. */
    for (size_t i = 0; i < value.n;) {
        const char *end = memchr(value.p + i, ',', value.n - i);
        size_t len = end != NULL ? (size_t)(end - (value.p + i)) : value.n - i;
        struct view item = trim((struct view){value.p + i, len});
        if (item.n >= 2 && item.p[0] == 't' && item.p[1] == '=') {
            t_text = trim((struct view){item.p + 2, item.n - 2});
            n_t++;
        }
        i += len + 1;
    }
    if (n_t != 1 || !parse_timestamp(t_text, TS_UNIX, &ts)) {
        return fail(why, why_len, AR_EVERIFY, "malformed %s header (expected one t=<unix time>)",
                    header);
    }

    struct ar_hmac_part parts[] = {{t_text.p, t_text.n}, {".", 1}, {in->body, in->body_len}};
    err = ar_hmac("sha256", secret, secret_len, parts, 3, want, &want_len);
    if (err != 0) {
        return fail(why, why_len, err, "cannot compute HMAC");
    }

    /* Pass 2: compare every v1; a v1 that is not 32 bytes of hex cannot match. */
    for (size_t i = 0; i < value.n;) {
        const char *end = memchr(value.p + i, ',', value.n - i);
        size_t len = end != NULL ? (size_t)(end - (value.p + i)) : value.n - i;
        struct view item = trim((struct view){value.p + i, len});
        if (item.n >= 3 && memcmp(item.p, "v1=", 3) == 0) {
            struct view sig = trim((struct view){item.p + 3, item.n - 3});
            unsigned char given[AR_HMAC_MAX];
            size_t given_len = 0;
            n_v1++;
            if (ar_hex_decode(sig.p, sig.n, given, sizeof(given), &given_len) == 0) {
                matched |= ar_ct_equal(given, given_len, want, want_len);
            }
        }
        i += len + 1;
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (n_v1 == 0) {
        return fail(why, why_len, AR_EVERIFY, "malformed %s header (no v1 signature)", header);
    }
    if (!matched) {
        return fail(why, why_len, AR_EVERIFY, "signature mismatch");
    }
    return check_fresh(ts, in->now_s, tolerance_of(spec), why, why_len);
}

static int check_token(const struct ar_verify_spec *spec, const char *secret, size_t secret_len,
                       const struct ar_verify_input *in, char *why, size_t why_len)
{
    bool custom = spec->header != NULL && spec->header[0] != '\0';
    const char *name = custom ? spec->header : "Authorization";
    struct view v;
    size_t plen = 0;
    bool equal = false;
    int err;

    err = header_get(in, name, &v, why, why_len);
    if (err != 0) {
        return err;
    }
    if (!custom) {
        /* RFC 6750: "Bearer" (any case), one or more spaces, the token. */
        if (!ascii_prefix(v, "Bearer", &plen) || plen >= v.n || v.p[plen] != ' ') {
            return fail(why, why_len, AR_EVERIFY, "%s header is not a Bearer token", name);
        }
        v = trim((struct view){v.p + plen, v.n - plen});
    } else if (spec->prefix != NULL && spec->prefix[0] != '\0') {
        if (!ascii_prefix(v, spec->prefix, &plen)) {
            return fail(why, why_len, AR_EVERIFY, "malformed %s header (no '%s' prefix)", name,
                        spec->prefix);
        }
        v = trim((struct view){v.p + plen, v.n - plen});
    }
    err = secret_equal(v.p, v.n, secret, secret_len, &equal);
    if (err != 0) {
        return fail(why, why_len, err, "cannot hash the token");
    }
    if (!equal) {
        return fail(why, why_len, AR_EVERIFY, "token mismatch");
    }
    return 0;
}

static int check_basic(const char *secret, size_t secret_len, const struct ar_verify_input *in,
                       char *why, size_t why_len)
{
    static const char name[] = "Authorization";
    struct view v;
    size_t plen = 0;
    size_t cred_len = 0;
    unsigned char *cred = NULL;
    bool equal = false;
    int err;

    err = header_get(in, name, &v, why, why_len);
    if (err != 0) {
        return err;
    }
    /* RFC 7617: "Basic" (any case), one or more spaces, base64 of user:password. */
    if (!ascii_prefix(v, "Basic", &plen) || plen >= v.n || v.p[plen] != ' ') {
        return fail(why, why_len, AR_EVERIFY, "%s header is not Basic credentials", name);
    }
    v = trim((struct view){v.p + plen, v.n - plen});
    cred = malloc(AR_BASE64_DECODED_MAX(v.n) + 1);
    if (cred == NULL) {
        return fail(why, why_len, AR_ENOMEM, "out of memory");
    }
    err = ar_base64_decode(v.p, v.n, cred, AR_BASE64_DECODED_MAX(v.n) + 1, &cred_len);
    if (err != 0 || memchr(cred, ':', cred_len) == NULL) {
        err = fail(why, why_len, AR_EVERIFY, "malformed Basic credentials in %s header", name);
        goto out;
    }
    err = secret_equal(cred, cred_len, secret, secret_len, &equal);
    if (err != 0) {
        err = fail(why, why_len, err, "cannot hash the credentials");
        goto out;
    }
    if (!equal) {
        err = fail(why, why_len, AR_EVERIFY, "credentials mismatch");
    }
out:
    OPENSSL_cleanse(cred, AR_BASE64_DECODED_MAX(v.n) + 1);
    free(cred);
    return err;
}

/* ---- public entry points ---- */

int ar_verify_spec_parse_scheme(const char *name, enum ar_verify_scheme *out)
{
    if (name == NULL) {
        return AR_EINVAL;
    }
    for (size_t i = 0; i < N_SCHEMES; i++) {
        if (ascii_eq(name, scheme_names[i])) {
            *out = (enum ar_verify_scheme)i;
            return 0;
        }
    }
    return AR_EINVAL;
}

const char *ar_verify_scheme_name(enum ar_verify_scheme scheme)
{
    if ((unsigned)scheme >= N_SCHEMES) {
        return NULL;
    }
    return scheme_names[scheme];
}

int ar_verify_spec_check(const struct ar_verify_spec *spec, char *why, size_t why_len)
{
    if (spec == NULL || (unsigned)spec->scheme >= N_SCHEMES) {
        return fail(why, why_len, AR_EINVAL, "unknown verify scheme");
    }
    if (spec->tolerance_s < 0) {
        return fail(why, why_len, AR_EINVAL, "negative timestamp tolerance");
    }
    if (spec->scheme != AR_VERIFY_HMAC) {
        return 0;
    }
    if (spec->header == NULL || spec->header[0] == '\0') {
        return fail(why, why_len, AR_EINVAL, "hmac verification needs a header");
    }
    if (spec->algorithm != NULL && digest_name(spec->algorithm, NULL) == NULL) {
        return fail(why, why_len, AR_EINVAL,
                    "hmac algorithm must be sha1, sha256 or sha512, not '%s'", spec->algorithm);
    }
    if (spec->encoding != NULL && !ascii_eq(spec->encoding, "hex") &&
        !ascii_eq(spec->encoding, "base64")) {
        return fail(why, why_len, AR_EINVAL, "hmac encoding must be hex or base64, not '%s'",
                    spec->encoding);
    }
    if (spec->timestamp_header != NULL && spec->timestamp_header[0] == '\0') {
        return fail(why, why_len, AR_EINVAL, "empty hmac timestamp header");
    }
    return 0;
}

int ar_verify(const struct ar_verify_spec *spec, const char *secret, size_t secret_len,
              const struct ar_verify_input *in, char *why, size_t why_len)
{
    struct hmac_scheme s = {0};
    int err;

    err = ar_verify_spec_check(spec, why, why_len);
    if (err != 0) {
        return err;
    }
    if (spec->scheme == AR_VERIFY_NONE) {
        return 0;
    }
    if (in == NULL || (in->headers == NULL && in->n_headers > 0) ||
        (in->body == NULL && in->body_len > 0)) {
        return fail(why, why_len, AR_EINVAL, "bad verify input");
    }
    if (secret == NULL || secret_len == 0) {
        return fail(why, why_len, AR_EINVAL, "empty %s secret", scheme_names[spec->scheme]);
    }

    switch (spec->scheme) {
    case AR_VERIFY_GITHUB:
        s = (struct hmac_scheme){.header = "X-Hub-Signature-256", .algorithm = "sha256",
                                 .encoding = ENC_HEX, .prefix = "sha256="};
        break;
    case AR_VERIFY_ZENDESK:
        s = (struct hmac_scheme){.header = "X-Zendesk-Webhook-Signature", .algorithm = "sha256",
                                 .encoding = ENC_BASE64,
                                 .ts_header = "X-Zendesk-Webhook-Signature-Timestamp",
                                 .ts_format = TS_ISO8601};
        break;
    case AR_VERIFY_TRELLO:
        if (in->callback_url == NULL || in->callback_url[0] == '\0') {
            return fail(why, why_len, AR_EINVAL, "trello verification needs the callback URL");
        }
        s = (struct hmac_scheme){.header = "X-Trello-Webhook", .algorithm = "sha1",
                                 .encoding = ENC_BASE64, .trailer = in->callback_url};
        break;
    case AR_VERIFY_HELPSCOUT:
        s = (struct hmac_scheme){.header = "X-HelpScout-Signature", .algorithm = "sha1",
                                 .encoding = ENC_BASE64};
        break;
    case AR_VERIFY_INTERCOM:
        s = (struct hmac_scheme){.header = "X-Hub-Signature", .algorithm = "sha1",
                                 .encoding = ENC_HEX, .prefix = "sha1="};
        break;
    case AR_VERIFY_HMAC:
        s = (struct hmac_scheme){
            .header = spec->header,
            .algorithm = spec->algorithm != NULL ? spec->algorithm : "sha256",
            .encoding = (spec->encoding != NULL && ascii_eq(spec->encoding, "base64"))
                            ? ENC_BASE64
                            : ENC_HEX,
            .prefix = spec->prefix,
            .ts_header = spec->timestamp_header,
            .ts_format = spec->timestamp_header != NULL ? TS_ANY : TS_NONE,
            .ts_sep = spec->timestamp_sep};
        break;
    case AR_VERIFY_STRIPE: return check_stripe(spec, secret, secret_len, in, why, why_len);
    case AR_VERIFY_TOKEN: return check_token(spec, secret, secret_len, in, why, why_len);
    case AR_VERIFY_BASIC: return check_basic(secret, secret_len, in, why, why_len);
    case AR_VERIFY_NONE: return 0;
    }
    s.tolerance_s = tolerance_of(spec);
    return check_mac(&s, secret, secret_len, in, why, why_len);
}

const char *ar_verify_delivery_header(enum ar_verify_scheme scheme)
{
    switch (scheme) {
    case AR_VERIFY_GITHUB: return "X-GitHub-Delivery";
    /* Not X-Zendesk-Webhook-Id: that names the webhook and is the same on every delivery.
     * The invocation id names one event and is kept across the retries of that invocation. */
    case AR_VERIFY_ZENDESK: return "X-Zendesk-Webhook-Invocation-Id";
    default: return NULL;
    }
}
