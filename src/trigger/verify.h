/* Webhook delivery verification (provider signature schemes) and the encoding helpers it uses. */
#ifndef AR_TRIGGER_VERIFY_H
#define AR_TRIGGER_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* The `verify.scheme` values a webhook trigger accepts (SPEC section 4). */
enum ar_verify_scheme {
    AR_VERIFY_NONE = 0, /* no verification configured: every delivery passes */
    AR_VERIFY_GITHUB,    /* X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)> */
    AR_VERIFY_ZENDESK,   /* X-Zendesk-Webhook-Signature: base64 HMAC-SHA256(timestamp + body) */
    AR_VERIFY_TRELLO,    /* X-Trello-Webhook: base64 HMAC-SHA1(body + callback URL) */
    AR_VERIFY_HELPSCOUT, /* X-HelpScout-Signature: base64 HMAC-SHA1(body) */
    AR_VERIFY_INTERCOM,  /* X-Hub-Signature: sha1=<hex HMAC-SHA1(body)> */
    AR_VERIFY_STRIPE,    /* Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256("t.body")>,... */
    AR_VERIFY_TOKEN,     /* Authorization: Bearer <token>, or the token in a configured header */
    AR_VERIFY_BASIC,     /* Authorization: Basic base64(user:password) */
    AR_VERIFY_HMAC       /* generic: configured algorithm, encoding, header and prefix */
};

#define AR_VERIFY_DEFAULT_TOLERANCE_S 300

/* How one webhook trigger verifies its deliveries. Every string is borrowed and may be NULL;
 * fields a scheme does not use are ignored. The secret itself is never part of the spec. */
struct ar_verify_spec {
    enum ar_verify_scheme scheme;
    /* token: header holding the token (default: "Authorization" with a "Bearer " scheme);
     * hmac: header holding the signature (required). */
    const char *header;
    /* token, hmac: text in front of the token or signature, e.g. "sha256=" (matched ignoring
     * ASCII case and removed before comparing). */
    const char *prefix;
    const char *algorithm;        /* hmac: "sha1", "sha256" (default), "sha512" */
    const char *encoding;         /* hmac: "hex" (default) or "base64" */
    /* hmac: optional. When set, the MAC covers timestamp + timestamp_sep + body and the
     * timestamp (Unix seconds, Unix milliseconds when >= 1e11, or ISO 8601) must be fresh. */
    const char *timestamp_header;
    const char *timestamp_sep;    /* hmac: between timestamp and body; default "" */
    int64_t tolerance_s;          /* timestamped schemes; 0 means AR_VERIFY_DEFAULT_TOLERANCE_S */
};

/* One request header; name and value are NUL-terminated and borrowed. */
struct ar_header {
    const char *name;
    const char *value;
};

/* The delivery to check. All pointers are borrowed. */
struct ar_verify_input {
    const struct ar_header *headers;
    size_t n_headers;
    const char *body; /* the raw body exactly as received; may be NULL when body_len is 0 */
    size_t body_len;
    const char *callback_url; /* trello: the full URL the webhook was registered with */
    int64_t now_s;            /* current Unix time in seconds */
};

/* "github", "zendesk", ... (ASCII case ignored) or "none" -> *out. AR_EINVAL if unknown. */
int ar_verify_spec_parse_scheme(const char *name, enum ar_verify_scheme *out);

/* The lower-case name of a scheme, or NULL for a value outside the enum. */
const char *ar_verify_scheme_name(enum ar_verify_scheme scheme);

/* Checks a spec without a request, for load time and `autorun check`: 0, or AR_EINVAL with a
 * reason in why (e.g. "hmac verification needs a header"). */
int ar_verify_spec_check(const struct ar_verify_spec *spec, char *why, size_t why_len);

/* Verifies one delivery. Returns 0 when it is authentic (and fresh, for timestamped schemes);
 * AR_EVERIFY when a header is missing, duplicated, malformed or does not match; AR_ESTALE when
 * the signature matches but the timestamp is more than the tolerance away from now_s;
 * AR_EINVAL for a bad spec, an empty secret or a trello spec without callback_url; AR_ENOMEM.
 * On failure `why` (if non-NULL) receives a short reason that is safe to log: it never holds
 * the secret, the expected signature or a header value. */
int ar_verify(const struct ar_verify_spec *spec, const char *secret, size_t secret_len,
              const struct ar_verify_input *in, char *why, size_t why_len);

/* The header whose value identifies a delivery across the sender's retries, or NULL when the
 * provider documents none (Stripe's event id is in the JSON body: the caller reads `id`). */
const char *ar_verify_delivery_header(enum ar_verify_scheme scheme);

/* The value of the first header called name (ASCII case ignored), or NULL. */
const char *ar_header_find(const struct ar_header *headers, size_t n_headers, const char *name);

/* Constant-time equality of two byte strings: 1 when equal, else 0. Lengths are not secret:
 * different lengths return 0 at once. */
int ar_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Lower-case hex of src into dst (2 * len + 1 bytes with the NUL). AR_E2BIG if too small. */
int ar_hex_encode(const void *src, size_t len, char *dst, size_t dst_size);

/* The value of one hex digit (either case), or -1. */
int ar_hex_digit(int c);

/* Hex (either case, even length) -> bytes; *out_len gets the byte count. AR_EINVAL on a bad
 * digit or odd length, AR_E2BIG if dst is too small; dst is written only on success. */
int ar_hex_decode(const char *src, size_t len, void *dst, size_t dst_size, size_t *out_len);

/* Bytes needed to base64-encode n bytes, including the NUL. */
#define AR_BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)
/* An upper bound on the bytes n base64 characters decode to. */
#define AR_BASE64_DECODED_MAX(n) ((((n) + 3) / 4) * 3)

/* Standard base64 (RFC 4648 section 4, padded) of src into dst, NUL-terminated; *out_len (may
 * be NULL) gets the length without the NUL. AR_E2BIG if dst is too small. */
int ar_base64_encode(const void *src, size_t len, char *dst, size_t dst_size, size_t *out_len);

/* Standard base64 -> bytes. Padding is optional but must be right when present; whitespace,
 * the URL-safe alphabet and non-zero trailing bits are refused (AR_EINVAL). AR_E2BIG if dst is
 * too small; dst is written only on success. */
int ar_base64_decode(const char *src, size_t len, void *dst, size_t dst_size, size_t *out_len);

#define AR_HMAC_MAX 64 /* the largest digest: SHA-512 */

/* One piece of a message that is MACed as the concatenation of its pieces. */
struct ar_hmac_part {
    const void *data;
    size_t len;
};

/* HMAC of the concatenated parts with algorithm "sha1", "sha256" or "sha512" (ASCII case
 * ignored). out must hold AR_HMAC_MAX bytes; *out_len gets the digest size. AR_EINVAL for an
 * unknown algorithm or an empty key, AR_ENOMEM if OpenSSL fails. */
int ar_hmac(const char *algorithm, const void *key, size_t key_len,
            const struct ar_hmac_part *parts, size_t n_parts, unsigned char *out,
            size_t *out_len);

#endif
