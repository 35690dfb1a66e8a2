/* Unit tests for webhook verification (src/trigger/verify.c) and its encoding helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "trigger/verify.h"

/* 2026-11-23T09:00:00Z, the time every signed vector below was made for. */
#define NOW INT64_C(1795424400)

/* Vectors: GitHub's from its documentation; the rest computed independently with
 * `openssl dgst -hmac` and /usr/bin/python3's hmac module, then hard-coded. */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

#define ZD_SECRET "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
#define ZD_BODY "{\"ticket\":{\"id\":42}}"
#define ZD_TS "2026-11-23T09:00:00Z"
#define ZD_SIG "lP3BWPWflOU6gy63yxdwQoGtczppQeR9jyFi8PZiMiY="

#define TR_SECRET "trello-app-secret"
#define TR_BODY "{\"action\":{\"id\":\"5f1a\"}}"
#define TR_URL "https://hooks.example.com/hooks/trello"
#define TR_SIG "nhrX6fUKPPW5kNeJ/1lnAD/fJ8Q="

#define HS_SECRET "helpscout-secret"
#define HS_BODY "{\"id\":123,\"status\":\"active\"}"
#define HS_SIG "XpMykivxSZbfzwgYKJaMqP4mNYk="

#define IC_SECRET "intercom-client-secret"
#define IC_BODY "{\"type\":\"notification_event\",\"id\":\"notif_1\"}"
#define IC_SIG "sha1=23227fc8c3b135104982418369555b8e0c12e64c"

#define ST_SECRET "whsec_test_secret"
#define ST_BODY "{\"id\":\"evt_1\",\"object\":\"event\"}"
#define ST_T "1795424400"
#define ST_V1 "659ce3f3130d272413cc57472e172dcf9e4a16bb995a829806a215d0b5153709"
#define ST_V1_OLD "80947f0c081fbaf5ed6d3598f61db3ed9edf20ae44796304c963fd3c42075ff2"

#define GN_SECRET "generic-secret"
#define GN_BODY "{\"event\":\"ping\"}"
#define GN_SHA512_B64                                                                          \
    "l/dbW/2LdUVzieaq2AM1tab8QI+0XG2hdySII0HNfUp2V4/099pkEqgf8x6ytcK2tRjXo70mkDV8FNrLU+y/EA=="
#define GN_SHA1_HEX "c6ac1f7cdda0ea99fcc8ab400417b4df441b81e3"
#define GN_TS_DOT "6e1c5ea8f51c75bbbf5c00ea1302e88f7f68161a21e679a0c66323e282247d2a"
#define GN_TSMS_DOT "aa7b0e3cbc3021f0bf22e3180257ef630017d99b1f5adb9d8e6ab4a26bc66432"
#define GN_ISO_OFFSET "cbc73ff3bec56c29d5af781778c1c94b582f298bfe75291cc4fba5413e88f800"
#define GN_ISO_FRAC "3c7973da98433e590779baf0b66493bf5adfa744bffa3466ff5665d7f715b135"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char why[256];

/* Runs ar_verify with the body and time given, and checks that the reason, whatever the
 * outcome, never carries the secret or a signature header's value. */
static int verify_at(const struct ar_verify_spec *spec, const char *secret,
                     const struct ar_header *h, size_t n, const char *body, const char *url,
                     int64_t now)
{
    struct ar_verify_input in = {.headers = h, .n_headers = n, .body = body,
                                 .body_len = body != NULL ? strlen(body) : 0,
                                 .callback_url = url, .now_s = now};
    int rc;

    strcpy(why, "(unset)");
    rc = ar_verify(spec, secret, secret != NULL ? strlen(secret) : 0, &in, why, sizeof(why));
    if (secret != NULL && secret[0] != '\0') {
        assert_null(strstr(why, secret));
    }
    for (size_t i = 0; i < n; i++) {
        if (h[i].value != NULL && strlen(h[i].value) >= 8) {
            assert_null(strstr(why, h[i].value));
        }
    }
    return rc;
}

static int verify(const struct ar_verify_spec *spec, const char *secret,
                  const struct ar_header *h, size_t n, const char *body)
{
    return verify_at(spec, secret, h, n, body, NULL, NOW);
}

/* ---- github ---- */

static void test_github_docs_vector(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_GITHUB};
    struct ar_header h[] = {{"Content-Type", "application/json"},
                            {"X-Hub-Signature-256", GH_SIG},
                            {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}};

    assert_int_equal(verify(&spec, GH_SECRET, h, N(h), GH_BODY), 0);
}

static void test_github_rejects(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_GITHUB};
    struct ar_header ok[] = {{"X-Hub-Signature-256", GH_SIG}};

    assert_int_equal(verify(&spec, GH_SECRET, ok, 1, "Hello, World?"), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, "It's a secret to everybody", ok, 1, GH_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, GH_SECRET, ok, 1, ""), AR_EVERIFY);

    struct ar_header legacy[] = {{"X-Hub-Signature", GH_SIG}};
    assert_int_equal(verify(&spec, GH_SECRET, legacy, 1, GH_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Hub-Signature-256 header");
    assert_int_equal(verify(&spec, GH_SECRET, NULL, 0, GH_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Hub-Signature-256 header");

    struct ar_header bare[] = {{"X-Hub-Signature-256", &GH_SIG[7]}};
    assert_int_equal(verify(&spec, GH_SECRET, bare, 1, GH_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Hub-Signature-256 header (no 'sha256=' prefix)");

    struct ar_header short_sig[] = {{"X-Hub-Signature-256", "sha256=757107ea0eb2"}};
    assert_int_equal(verify(&spec, GH_SECRET, short_sig, 1, GH_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-Hub-Signature-256 header"));

    struct ar_header not_hex[] = {
        {"X-Hub-Signature-256",
         "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}};
    assert_int_equal(verify(&spec, GH_SECRET, not_hex, 1, GH_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed"));

    struct ar_header empty[] = {{"X-Hub-Signature-256", ""}};
    assert_int_equal(verify(&spec, GH_SECRET, empty, 1, GH_BODY), AR_EVERIFY);

    /* Two signature headers are refused even when one of them is right. */
    struct ar_header dup[] = {{"X-Hub-Signature-256", GH_SIG}, {"x-hub-signature-256", GH_SIG}};
    assert_int_equal(verify(&spec, GH_SECRET, dup, 2, GH_BODY), AR_EVERIFY);
    assert_string_equal(why, "duplicate X-Hub-Signature-256 header");
}

static void test_github_lenient_where_harmless(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_GITHUB};
    struct ar_header lower[] = {{"x-hub-signature-256", GH_SIG}};
    struct ar_header upper[] = {{"X-HUB-SIGNATURE-256", GH_SIG}};
    struct ar_header hexcase[] = {
        {"X-Hub-Signature-256",
         "SHA256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"}};
    struct ar_header spaces[] = {{"X-Hub-Signature-256", " \t" GH_SIG " "}};

    assert_int_equal(verify(&spec, GH_SECRET, lower, 1, GH_BODY), 0);
    assert_int_equal(verify(&spec, GH_SECRET, upper, 1, GH_BODY), 0);
    assert_int_equal(verify(&spec, GH_SECRET, hexcase, 1, GH_BODY), 0);
    assert_int_equal(verify(&spec, GH_SECRET, spaces, 1, GH_BODY), 0);
}

/* ---- zendesk ---- */

static void test_zendesk(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_ZENDESK};
    struct ar_header h[] = {{"x-zendesk-webhook-id", "01F1KRFQ6BG29CNWFR60NK5FNY"},
                            {"x-zendesk-webhook-signature", ZD_SIG},
                            {"x-zendesk-webhook-signature-timestamp", ZD_TS}};
    struct ar_header mixed[] = {{"X-Zendesk-Webhook-Signature", ZD_SIG},
                                {"X-ZENDESK-WEBHOOK-SIGNATURE-TIMESTAMP", ZD_TS}};

    assert_int_equal(verify(&spec, ZD_SECRET, h, N(h), ZD_BODY), 0);
    assert_int_equal(verify(&spec, ZD_SECRET, mixed, N(mixed), ZD_BODY), 0);

    assert_int_equal(verify(&spec, ZD_SECRET, h, N(h), "{\"ticket\":{\"id\":43}}"), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, "wrong", h, N(h), ZD_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");

    /* The timestamp is signed: moving it forward to pass the replay check breaks the MAC. */
    struct ar_header moved[] = {{"X-Zendesk-Webhook-Signature", ZD_SIG},
                                {"X-Zendesk-Webhook-Signature-Timestamp", "2026-11-23T09:10:00Z"}};
    assert_int_equal(verify_at(&spec, ZD_SECRET, moved, 2, ZD_BODY, NULL, NOW + 600),
                     AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");

    struct ar_header no_sig[] = {{"X-Zendesk-Webhook-Signature-Timestamp", ZD_TS}};
    assert_int_equal(verify(&spec, ZD_SECRET, no_sig, 1, ZD_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Zendesk-Webhook-Signature header");

    struct ar_header no_ts[] = {{"X-Zendesk-Webhook-Signature", ZD_SIG}};
    assert_int_equal(verify(&spec, ZD_SECRET, no_ts, 1, ZD_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Zendesk-Webhook-Signature-Timestamp header");

    struct ar_header bad_sig[] = {{"X-Zendesk-Webhook-Signature", "not base64!"},
                                  {"X-Zendesk-Webhook-Signature-Timestamp", ZD_TS}};
    assert_int_equal(verify(&spec, ZD_SECRET, bad_sig, 2, ZD_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-Zendesk-Webhook-Signature header"));

    /* Zendesk stamps ISO 8601; Unix seconds, a missing zone or an impossible date are refused. */
    static const char *const bad_ts[] = {"1795424400", "2026-11-23T09:00:00",
                                         "2026-02-29T09:00:00Z", "2026-11-23T24:00:00Z",
                                         "2026-11-23T09:00:00Zjunk", "yesterday"};
    for (size_t i = 0; i < N(bad_ts); i++) {
        struct ar_header hb[] = {{"X-Zendesk-Webhook-Signature", ZD_SIG},
                                 {"X-Zendesk-Webhook-Signature-Timestamp", bad_ts[i]}};
        assert_int_equal(verify(&spec, ZD_SECRET, hb, 2, ZD_BODY), AR_EVERIFY);
        assert_string_equal(why, "malformed X-Zendesk-Webhook-Signature-Timestamp header "
                                 "(expected ISO 8601 UTC time)");
    }
}

static void test_zendesk_replay_window(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_ZENDESK};
    struct ar_header h[] = {{"X-Zendesk-Webhook-Signature", ZD_SIG},
                            {"X-Zendesk-Webhook-Signature-Timestamp", ZD_TS}};

    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW + 300), 0);
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW - 300), 0);
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW + 412), AR_ESTALE);
    assert_string_equal(why, "timestamp 412 s old (limit 300 s)");
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW - 301), AR_ESTALE);
    assert_string_equal(why, "timestamp 301 s in the future (limit 300 s)");

    /* A stale delivery with a bad signature is a bad signature, not a replay. */
    assert_int_equal(verify_at(&spec, "wrong", h, 2, ZD_BODY, NULL, NOW + 9999), AR_EVERIFY);

    spec.tolerance_s = 60;
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW + 60), 0);
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, NOW + 61), AR_ESTALE);
    assert_string_equal(why, "timestamp 61 s old (limit 60 s)");

    /* Absurd clocks do not overflow. */
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, INT64_MIN), AR_ESTALE);
    assert_int_equal(verify_at(&spec, ZD_SECRET, h, 2, ZD_BODY, NULL, INT64_MAX), AR_ESTALE);
}

/* ---- trello ---- */

static void test_trello(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_TRELLO};
    struct ar_header h[] = {{"X-Trello-Webhook", TR_SIG}};
    struct ar_header lower[] = {{"x-trello-webhook", TR_SIG}};

    assert_int_equal(verify_at(&spec, TR_SECRET, h, 1, TR_BODY, TR_URL, NOW), 0);
    assert_int_equal(verify_at(&spec, TR_SECRET, lower, 1, TR_BODY, TR_URL, NOW), 0);
    /* Trello has no timestamp: an old delivery still verifies. */
    assert_int_equal(verify_at(&spec, TR_SECRET, h, 1, TR_BODY, TR_URL, NOW + 86400), 0);

    assert_int_equal(verify_at(&spec, TR_SECRET, h, 1, "{\"action\":{\"id\":\"5f1b\"}}", TR_URL,
                               NOW),
                     AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify_at(&spec, "other", h, 1, TR_BODY, TR_URL, NOW), AR_EVERIFY);
    /* The URL is part of the MAC: another path (or a trailing slash) does not verify. */
    assert_int_equal(verify_at(&spec, TR_SECRET, h, 1, TR_BODY, TR_URL "/", NOW), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");

    assert_int_equal(verify_at(&spec, TR_SECRET, NULL, 0, TR_BODY, TR_URL, NOW), AR_EVERIFY);
    assert_string_equal(why, "missing X-Trello-Webhook header");

    /* Unpadded base64 is the same signature; a truncated one is malformed. */
    struct ar_header unpadded[] = {{"X-Trello-Webhook", "nhrX6fUKPPW5kNeJ/1lnAD/fJ8Q"}};
    assert_int_equal(verify_at(&spec, TR_SECRET, unpadded, 1, TR_BODY, TR_URL, NOW), 0);
    struct ar_header bad[] = {{"X-Trello-Webhook", "nhrX6fUKPPW5kNeJ/1lnAD/f"}}; /* 18 bytes */
    assert_int_equal(verify_at(&spec, TR_SECRET, bad, 1, TR_BODY, TR_URL, NOW), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-Trello-Webhook header"));
    struct ar_header hex[] = {{"X-Trello-Webhook", "9e1ad7e9f50a3cf5b990d789ff5967003fdf27c4"}};
    assert_int_equal(verify_at(&spec, TR_SECRET, hex, 1, TR_BODY, TR_URL, NOW), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-Trello-Webhook header"));

    assert_int_equal(verify_at(&spec, TR_SECRET, h, 1, TR_BODY, NULL, NOW), AR_EINVAL);
    assert_string_equal(why, "trello verification needs the callback URL");
}

/* ---- helpscout ---- */

static void test_helpscout(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_HELPSCOUT};
    struct ar_header h[] = {{"X-HelpScout-Event", "convo.created"},
                            {"X-HelpScout-Signature", HS_SIG}};
    struct ar_header lower[] = {{"x-helpscout-signature", HS_SIG}};

    assert_int_equal(verify(&spec, HS_SECRET, h, 2, HS_BODY), 0);
    assert_int_equal(verify(&spec, HS_SECRET, lower, 1, HS_BODY), 0);
    assert_int_equal(verify(&spec, HS_SECRET, h, 2, "{\"id\":124,\"status\":\"active\"}"),
                     AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, "helpscout-secreT", h, 2, HS_BODY), AR_EVERIFY);
    assert_int_equal(verify(&spec, HS_SECRET, h, 1, HS_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-HelpScout-Signature header");

    struct ar_header bad[] = {{"X-HelpScout-Signature", "XpMykivxSZbfzwgYKJaMqP4mNYk=="}};
    assert_int_equal(verify(&spec, HS_SECRET, bad, 1, HS_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-HelpScout-Signature header"));
    struct ar_header urlsafe[] = {{"X-HelpScout-Signature", "XpMykivxSZbfzwgYKJaMqP4mNYk-"}};
    assert_int_equal(verify(&spec, HS_SECRET, urlsafe, 1, HS_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed"));
}

/* ---- intercom ---- */

static void test_intercom(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_INTERCOM};
    struct ar_header h[] = {{"X-Hub-Signature", IC_SIG}};
    struct ar_header lower[] = {{"x-hub-signature", IC_SIG}};

    assert_int_equal(verify(&spec, IC_SECRET, h, 1, IC_BODY), 0);
    assert_int_equal(verify(&spec, IC_SECRET, lower, 1, IC_BODY), 0);
    assert_int_equal(verify(&spec, IC_SECRET, h, 1, IC_BODY " "), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, "intercom-client-secret2", h, 1, IC_BODY), AR_EVERIFY);

    /* The exact header name, not one that merely starts with it. */
    struct ar_header gh[] = {{"X-Hub-Signature-256", IC_SIG}};
    assert_int_equal(verify(&spec, IC_SECRET, gh, 1, IC_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Hub-Signature header");

    struct ar_header wrong_alg[] = {{"X-Hub-Signature",
                                     "sha256=23227fc8c3b135104982418369555b8e0c12e64c"}};
    assert_int_equal(verify(&spec, IC_SECRET, wrong_alg, 1, IC_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Hub-Signature header (no 'sha1=' prefix)");
    struct ar_header odd[] = {{"X-Hub-Signature", "sha1=23227fc8c3b135104982418369555b8e0c12e64"}};
    assert_int_equal(verify(&spec, IC_SECRET, odd, 1, IC_BODY), AR_EVERIFY);
    assert_non_null(strstr(why, "malformed X-Hub-Signature header"));
}

/* ---- stripe ---- */

static void test_stripe(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_STRIPE};
    struct ar_header h[] = {{"Stripe-Signature", "t=" ST_T ",v1=" ST_V1}};
    struct ar_header with_v0[] = {{"stripe-signature", "t=" ST_T ",v1=" ST_V1 ",v0=" ST_V1_OLD}};

    assert_int_equal(verify(&spec, ST_SECRET, h, 1, ST_BODY), 0);
    assert_int_equal(verify(&spec, ST_SECRET, with_v0, 1, ST_BODY), 0);

    assert_int_equal(verify(&spec, ST_SECRET, h, 1, "{\"id\":\"evt_2\",\"object\":\"event\"}"),
                     AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, "whsec_other", h, 1, ST_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&spec, ST_SECRET, NULL, 0, ST_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing Stripe-Signature header");

    /* The signed payload is "<t>.<body>": a different t breaks the MAC. */
    struct ar_header moved[] = {{"Stripe-Signature", "t=1795424401,v1=" ST_V1}};
    assert_int_equal(verify(&spec, ST_SECRET, moved, 1, ST_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    /* A v0 signature alone is not accepted. */
    struct ar_header only_v0[] = {{"Stripe-Signature", "t=" ST_T ",v0=" ST_V1}};
    assert_int_equal(verify(&spec, ST_SECRET, only_v0, 1, ST_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed Stripe-Signature header (no v1 signature)");

    static const char *const malformed[] = {
        "v1=" ST_V1, "t=,v1=" ST_V1, "t=abc,v1=" ST_V1, "t=" ST_T ",t=" ST_T ",v1=" ST_V1,
        "t=-1795424400,v1=" ST_V1, "garbage", ""};
    for (size_t i = 0; i < N(malformed); i++) {
        struct ar_header hb[] = {{"Stripe-Signature", malformed[i]}};
        assert_int_equal(verify(&spec, ST_SECRET, hb, 1, ST_BODY), AR_EVERIFY);
        assert_non_null(strstr(why, "malformed Stripe-Signature header"));
    }
}

static void test_stripe_several_v1(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_STRIPE};
    /* While a secret rolls, Stripe signs with both; either may come first, and a v1 that is not
     * hex at all is simply one that does not match. */
    struct ar_header second[] = {{"Stripe-Signature", "t=" ST_T ",v1=" ST_V1_OLD ",v1=" ST_V1}};
    struct ar_header first[] = {{"Stripe-Signature", "t=" ST_T ",v1=" ST_V1 ",v1=" ST_V1_OLD}};
    struct ar_header junk[] = {{"Stripe-Signature", "v1=zz, t=" ST_T " , v1=" ST_V1 ",x=1"}};
    struct ar_header none[] = {{"Stripe-Signature", "t=" ST_T ",v1=" ST_V1_OLD ",v1=zz"}};

    assert_int_equal(verify(&spec, ST_SECRET, second, 1, ST_BODY), 0);
    assert_int_equal(verify(&spec, ST_SECRET, first, 1, ST_BODY), 0);
    assert_int_equal(verify(&spec, ST_SECRET, junk, 1, ST_BODY), 0);
    assert_int_equal(verify(&spec, "whsec_old_secret", second, 1, ST_BODY), 0);
    assert_int_equal(verify(&spec, ST_SECRET, none, 1, ST_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
}

static void test_stripe_replay_window(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_STRIPE};
    struct ar_header h[] = {{"Stripe-Signature", "t=" ST_T ",v1=" ST_V1}};

    assert_int_equal(verify_at(&spec, ST_SECRET, h, 1, ST_BODY, NULL, NOW + 300), 0);
    assert_int_equal(verify_at(&spec, ST_SECRET, h, 1, ST_BODY, NULL, NOW + 301), AR_ESTALE);
    assert_string_equal(why, "timestamp 301 s old (limit 300 s)");
    assert_int_equal(verify_at(&spec, ST_SECRET, h, 1, ST_BODY, NULL, NOW - 3600), AR_ESTALE);
    assert_string_equal(why, "timestamp 3600 s in the future (limit 300 s)");
    spec.tolerance_s = 3600;
    assert_int_equal(verify_at(&spec, ST_SECRET, h, 1, ST_BODY, NULL, NOW - 3600), 0);
}

/* ---- token and basic ---- */

static void test_token_bearer(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_TOKEN};
    const char *tok = "tok_3f9a8b7c6d5e";
    struct ar_header ok[] = {{"Authorization", "Bearer tok_3f9a8b7c6d5e"}};
    struct ar_header lower[] = {{"authorization", "bearer   tok_3f9a8b7c6d5e "}};

    assert_int_equal(verify(&spec, tok, ok, 1, "{}"), 0);
    assert_int_equal(verify(&spec, tok, lower, 1, NULL), 0);

    struct ar_header wrong[] = {{"Authorization", "Bearer tok_3f9a8b7c6d5f"}};
    assert_int_equal(verify(&spec, tok, wrong, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "token mismatch");
    struct ar_header shorter[] = {{"Authorization", "Bearer tok_3f9a8b7c6d5"}};
    assert_int_equal(verify(&spec, tok, shorter, 1, "{}"), AR_EVERIFY);
    struct ar_header longer[] = {{"Authorization", "Bearer tok_3f9a8b7c6d5e0"}};
    assert_int_equal(verify(&spec, tok, longer, 1, "{}"), AR_EVERIFY);
    struct ar_header empty[] = {{"Authorization", "Bearer "}};
    assert_int_equal(verify(&spec, tok, empty, 1, "{}"), AR_EVERIFY);

    assert_int_equal(verify(&spec, tok, NULL, 0, "{}"), AR_EVERIFY);
    assert_string_equal(why, "missing Authorization header");
    struct ar_header basic[] = {{"Authorization", "Basic dG9rXzNmOWE4YjdjNmQ1ZQ=="}};
    assert_int_equal(verify(&spec, tok, basic, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "Authorization header is not a Bearer token");
    struct ar_header glued[] = {{"Authorization", "Bearertok_3f9a8b7c6d5e"}};
    assert_int_equal(verify(&spec, tok, glued, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "Authorization header is not a Bearer token");
    /* Only the configured place counts: the token in another header is not enough. */
    struct ar_header elsewhere[] = {{"X-Token", "tok_3f9a8b7c6d5e"}};
    assert_int_equal(verify(&spec, tok, elsewhere, 1, "{}"), AR_EVERIFY);
}

static void test_token_custom_header(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_TOKEN, .header = "X-Webhook-Token"};
    const char *tok = "s3cret-token";
    struct ar_header ok[] = {{"x-webhook-token", "s3cret-token"}};
    struct ar_header bearer[] = {{"Authorization", "Bearer s3cret-token"}};
    struct ar_header wrong[] = {{"X-Webhook-Token", "s3cret-tokeN"}};

    assert_int_equal(verify(&spec, tok, ok, 1, "x"), 0);
    assert_int_equal(verify(&spec, tok, wrong, 1, "x"), AR_EVERIFY);
    assert_string_equal(why, "token mismatch");
    assert_int_equal(verify(&spec, tok, bearer, 1, "x"), AR_EVERIFY);
    assert_string_equal(why, "missing X-Webhook-Token header");

    spec.prefix = "Token ";
    struct ar_header prefixed[] = {{"X-Webhook-Token", "token s3cret-token"}};
    assert_int_equal(verify(&spec, tok, prefixed, 1, "x"), 0);
    assert_int_equal(verify(&spec, tok, ok, 1, "x"), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Webhook-Token header (no 'Token ' prefix)");
}

static void test_basic(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_BASIC};
    const char *cred = "hook:s3cr3t pass";
    struct ar_header ok[] = {{"Authorization", "Basic aG9vazpzM2NyM3QgcGFzcw=="}};
    struct ar_header lower[] = {{"authorization", "basic  aG9vazpzM2NyM3QgcGFzcw=="}};

    assert_int_equal(verify(&spec, cred, ok, 1, "{}"), 0);
    assert_int_equal(verify(&spec, cred, lower, 1, "{}"), 0);
    assert_int_equal(verify(&spec, "hook:s3cr3t pasS", ok, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "credentials mismatch");
    assert_int_equal(verify(&spec, "hook2:s3cr3t pass", ok, 1, "{}"), AR_EVERIFY);

    assert_int_equal(verify(&spec, cred, NULL, 0, "{}"), AR_EVERIFY);
    assert_string_equal(why, "missing Authorization header");
    struct ar_header bearer[] = {{"Authorization", "Bearer hook:s3cr3t pass"}};
    assert_int_equal(verify(&spec, cred, bearer, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "Authorization header is not Basic credentials");
    struct ar_header not_b64[] = {{"Authorization", "Basic hook:s3cr3t pass"}};
    assert_int_equal(verify(&spec, cred, not_b64, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "malformed Basic credentials in Authorization header");
    struct ar_header no_colon[] = {{"Authorization", "Basic aG9vaw=="}}; /* "hook" */
    assert_int_equal(verify(&spec, "hook", no_colon, 1, "{}"), AR_EVERIFY);
    assert_string_equal(why, "malformed Basic credentials in Authorization header");
}

/* ---- generic hmac ---- */

static void test_hmac_generic(void **state)
{
    (void)state;
    struct ar_verify_spec b64 = {.scheme = AR_VERIFY_HMAC, .header = "X-Signature",
                                 .algorithm = "sha512", .encoding = "base64", .prefix = "v1="};
    struct ar_header hb[] = {{"x-signature", "v1=" GN_SHA512_B64}};
    assert_int_equal(verify(&b64, GN_SECRET, hb, 1, GN_BODY), 0);
    assert_int_equal(verify(&b64, GN_SECRET, hb, 1, "{\"event\":\"pong\"}"), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");
    assert_int_equal(verify(&b64, "generic-secreT", hb, 1, GN_BODY), AR_EVERIFY);
    struct ar_header no_prefix[] = {{"X-Signature", GN_SHA512_B64}};
    assert_int_equal(verify(&b64, GN_SECRET, no_prefix, 1, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Signature header (no 'v1=' prefix)");
    assert_int_equal(verify(&b64, GN_SECRET, NULL, 0, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Signature header");

    struct ar_verify_spec hex1 = {.scheme = AR_VERIFY_HMAC, .header = "X-Body-Hash",
                                  .algorithm = "SHA1", .encoding = "hex"};
    struct ar_header hh[] = {{"X-Body-Hash", GN_SHA1_HEX}};
    assert_int_equal(verify(&hex1, GN_SECRET, hh, 1, GN_BODY), 0);
    /* A base64 SHA-512 signature where hex SHA-1 is configured is malformed, not just wrong. */
    struct ar_header b64_in_hex[] = {{"X-Body-Hash", GN_SHA512_B64}};
    assert_int_equal(verify(&hex1, GN_SECRET, b64_in_hex, 1, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Body-Hash header (expected hex of 20 bytes)");

    /* Defaults: sha256, hex. */
    struct ar_verify_spec dflt = {.scheme = AR_VERIFY_HMAC, .header = "X-Hub-Signature-256",
                                  .prefix = "sha256="};
    struct ar_header gh[] = {{"X-Hub-Signature-256", GH_SIG}};
    assert_int_equal(verify(&dflt, GH_SECRET, gh, 1, GH_BODY), 0);
}

static void test_hmac_generic_timestamped(void **state)
{
    (void)state;
    struct ar_verify_spec spec = {.scheme = AR_VERIFY_HMAC, .header = "X-Signature",
                                  .timestamp_header = "X-Timestamp", .timestamp_sep = "."};
    struct ar_header h[] = {{"X-Signature", GN_TS_DOT}, {"X-Timestamp", "1795424400"}};

    assert_int_equal(verify(&spec, GN_SECRET, h, 2, GN_BODY), 0);
    assert_int_equal(verify(&spec, GN_SECRET, h, 2, "{\"event\":\"pong\"}"), AR_EVERIFY);
    assert_int_equal(verify(&spec, GN_SECRET, h, 1, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "missing X-Timestamp header");
    assert_int_equal(verify_at(&spec, GN_SECRET, h, 2, GN_BODY, NULL, NOW + 301), AR_ESTALE);
    assert_string_equal(why, "timestamp 301 s old (limit 300 s)");
    assert_int_equal(verify_at(&spec, GN_SECRET, h, 2, GN_BODY, NULL, NOW - 301), AR_ESTALE);
    assert_string_equal(why, "timestamp 301 s in the future (limit 300 s)");

    /* Milliseconds are recognised by their size; the MAC covers the header text as sent. */
    struct ar_header ms[] = {{"X-Signature", GN_TSMS_DOT}, {"X-Timestamp", "1795424400123"}};
    assert_int_equal(verify(&spec, GN_SECRET, ms, 2, GN_BODY), 0);
    assert_int_equal(verify_at(&spec, GN_SECRET, ms, 2, GN_BODY, NULL, NOW + 400), AR_ESTALE);

    /* The separator is part of the MAC. */
    spec.timestamp_sep = NULL;
    assert_int_equal(verify(&spec, GN_SECRET, h, 2, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "signature mismatch");

    /* ISO 8601 with an offset and with a fraction. */
    struct ar_header iso[] = {{"X-Signature", GN_ISO_OFFSET},
                              {"X-Timestamp", "2026-11-23T10:00:00+01:00"}};
    assert_int_equal(verify(&spec, GN_SECRET, iso, 2, GN_BODY), 0);
    assert_int_equal(verify_at(&spec, GN_SECRET, iso, 2, GN_BODY, NULL, NOW + 3600), AR_ESTALE);
    assert_string_equal(why, "timestamp 3600 s old (limit 300 s)");
    struct ar_header frac[] = {{"X-Signature", GN_ISO_FRAC},
                               {"X-Timestamp", "2026-11-23T09:00:00.250Z"}};
    assert_int_equal(verify(&spec, GN_SECRET, frac, 2, GN_BODY), 0);

    struct ar_header bad[] = {{"X-Signature", GN_TS_DOT}, {"X-Timestamp", "soon"}};
    assert_int_equal(verify(&spec, GN_SECRET, bad, 2, GN_BODY), AR_EVERIFY);
    assert_string_equal(why, "malformed X-Timestamp header (expected Unix time or ISO 8601)");
}

static void test_spec_check(void **state)
{
    (void)state;
    char w[128];
    struct ar_verify_spec ok = {.scheme = AR_VERIFY_HMAC, .header = "X-Sig",
                                .algorithm = "sha512", .encoding = "Base64"};
    struct ar_verify_spec no_header = {.scheme = AR_VERIFY_HMAC};
    struct ar_verify_spec bad_alg = {.scheme = AR_VERIFY_HMAC, .header = "X", .algorithm = "md5"};
    struct ar_verify_spec bad_enc = {.scheme = AR_VERIFY_HMAC, .header = "X", .encoding = "b32"};
    struct ar_verify_spec bad_tol = {.scheme = AR_VERIFY_STRIPE, .tolerance_s = -1};
    struct ar_verify_spec bad_scheme = {.scheme = (enum ar_verify_scheme)99};
    struct ar_verify_spec github = {.scheme = AR_VERIFY_GITHUB};

    assert_int_equal(ar_verify_spec_check(&ok, w, sizeof(w)), 0);
    assert_int_equal(ar_verify_spec_check(&github, w, sizeof(w)), 0);
    assert_int_equal(ar_verify_spec_check(&no_header, w, sizeof(w)), AR_EINVAL);
    assert_string_equal(w, "hmac verification needs a header");
    assert_int_equal(ar_verify_spec_check(&bad_alg, w, sizeof(w)), AR_EINVAL);
    assert_string_equal(w, "hmac algorithm must be sha1, sha256 or sha512, not 'md5'");
    assert_int_equal(ar_verify_spec_check(&bad_enc, w, sizeof(w)), AR_EINVAL);
    assert_int_equal(ar_verify_spec_check(&bad_tol, w, sizeof(w)), AR_EINVAL);
    assert_int_equal(ar_verify_spec_check(&bad_scheme, NULL, 0), AR_EINVAL);

    /* ar_verify applies the same check before looking at the request. */
    struct ar_header h[] = {{"X", "00"}};
    assert_int_equal(verify(&bad_alg, "key-123", h, 1, "b"), AR_EINVAL);
    /* An empty secret is a configuration error, never a pass. */
    struct ar_header gh[] = {{"X-Hub-Signature-256", GH_SIG}};
    assert_int_equal(verify(&github, "", gh, 1, GH_BODY), AR_EINVAL);
    assert_string_equal(why, "empty github secret");
    assert_int_equal(verify(&github, NULL, gh, 1, GH_BODY), AR_EINVAL);
}

static void test_none_and_names(void **state)
{
    (void)state;
    enum ar_verify_scheme s = AR_VERIFY_BASIC;
    struct ar_verify_spec none = {.scheme = AR_VERIFY_NONE};

    assert_int_equal(verify(&none, NULL, NULL, 0, "anything"), 0);

    static const struct {
        const char *name;
        enum ar_verify_scheme scheme;
    } names[] = {{"none", AR_VERIFY_NONE},         {"github", AR_VERIFY_GITHUB},
                 {"Zendesk", AR_VERIFY_ZENDESK},   {"trello", AR_VERIFY_TRELLO},
                 {"helpscout", AR_VERIFY_HELPSCOUT}, {"intercom", AR_VERIFY_INTERCOM},
                 {"STRIPE", AR_VERIFY_STRIPE},     {"token", AR_VERIFY_TOKEN},
                 {"basic", AR_VERIFY_BASIC},       {"hmac", AR_VERIFY_HMAC}};
    for (size_t i = 0; i < N(names); i++) {
        assert_int_equal(ar_verify_spec_parse_scheme(names[i].name, &s), 0);
        assert_int_equal(s, names[i].scheme);
        assert_non_null(ar_verify_scheme_name(s));
        enum ar_verify_scheme back = AR_VERIFY_NONE;
        assert_int_equal(ar_verify_spec_parse_scheme(ar_verify_scheme_name(s), &back), 0);
        assert_int_equal(back, s);
    }
    s = AR_VERIFY_TOKEN;
    assert_int_equal(ar_verify_spec_parse_scheme("gitlab", &s), AR_EINVAL);
    assert_int_equal(ar_verify_spec_parse_scheme("githu", &s), AR_EINVAL);
    assert_int_equal(ar_verify_spec_parse_scheme("", &s), AR_EINVAL);
    assert_int_equal(ar_verify_spec_parse_scheme(NULL, &s), AR_EINVAL);
    assert_int_equal(s, AR_VERIFY_TOKEN); /* untouched on failure */
    assert_null(ar_verify_scheme_name((enum ar_verify_scheme)42));

    assert_string_equal(ar_verify_delivery_header(AR_VERIFY_GITHUB), "X-GitHub-Delivery");
    assert_string_equal(ar_verify_delivery_header(AR_VERIFY_ZENDESK),
                        "X-Zendesk-Webhook-Invocation-Id");
    assert_null(ar_verify_delivery_header(AR_VERIFY_STRIPE));
    assert_null(ar_verify_delivery_header(AR_VERIFY_TRELLO));
    assert_null(ar_verify_delivery_header(AR_VERIFY_HMAC));
}

static void test_header_find(void **state)
{
    (void)state;
    struct ar_header h[] = {{"Content-Type", "application/json"},
                            {NULL, "skipped"},
                            {"X-GitHub-Delivery", "first"},
                            {"x-github-delivery", "second"}};

    assert_string_equal(ar_header_find(h, N(h), "x-GITHUB-delivery"), "first");
    assert_string_equal(ar_header_find(h, N(h), "content-type"), "application/json");
    assert_null(ar_header_find(h, N(h), "Content-Typ"));
    assert_null(ar_header_find(h, N(h), "Content-Type-X"));
    assert_null(ar_header_find(NULL, 0, "Content-Type"));
}

/* ---- helpers ---- */

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",     "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char enc[16];
    unsigned char dec[16];
    size_t n = 99;

    for (size_t i = 0; i < N(plain); i++) {
        assert_int_equal(ar_base64_encode(plain[i], strlen(plain[i]), enc, sizeof(enc), &n), 0);
        assert_string_equal(enc, coded[i]);
        assert_int_equal(n, strlen(coded[i]));
        assert_int_equal(ar_base64_decode(coded[i], strlen(coded[i]), dec, sizeof(dec), &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(dec, plain[i], n);
    }
    /* Unpadded input is accepted. */
    assert_int_equal(ar_base64_decode("Zm9vYg", 6, dec, sizeof(dec), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(dec, "foob", 4);

    /* Every byte value survives a round trip. */
    unsigned char all[256];
    char big[AR_BASE64_ENCODED_SIZE(256)];
    unsigned char back[AR_BASE64_DECODED_MAX(sizeof(big))];
    for (size_t i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    assert_int_equal(ar_base64_encode(all, 256, big, sizeof(big), &n), 0);
    assert_int_equal(n, 344);
    assert_int_equal(ar_base64_decode(big, n, back, sizeof(back), &n), 0);
    assert_int_equal(n, 256);
    assert_memory_equal(back, all, 256);

    static const char *const bad[] = {"Z", "Zg=", "Zg===", "Z===", "====", "Zm9v=", "Zm 9v",
                                      "Zm9v\n", "Zh==", "Zm9=", "-_8=", "Zg==Zg==", "=Zg="};
    for (size_t i = 0; i < N(bad); i++) {
        memset(dec, 0xAA, sizeof(dec));
        n = 99;
        assert_int_equal(ar_base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &n),
                         AR_EINVAL);
        assert_int_equal(n, 99);
        assert_int_equal(dec[0], 0xAA);
    }

    /* Too-small buffers: nothing written. */
    assert_int_equal(ar_base64_encode("foo", 3, enc, 4, &n), AR_E2BIG);
    assert_int_equal(ar_base64_encode("foo", 3, enc, 5, NULL), 0);
    assert_int_equal(ar_base64_decode("Zm9vYmFy", 8, dec, 5, &n), AR_E2BIG);
    assert_int_equal(ar_base64_decode("Zm9vYmFy", 8, dec, 6, &n), 0);
}

static void test_hex(void **state)
{
    (void)state;
    char enc[16];
    unsigned char dec[8];
    size_t n = 99;

    assert_int_equal(ar_hex_encode("\x00\x7f\x80\xff", 4, enc, sizeof(enc)), 0);
    assert_string_equal(enc, "007f80ff");
    assert_int_equal(ar_hex_encode("", 0, enc, 1), 0);
    assert_string_equal(enc, "");
    assert_int_equal(ar_hex_encode("ab", 2, enc, 4), AR_E2BIG);
    assert_int_equal(ar_hex_encode("ab", 2, enc, 0), AR_E2BIG);
    assert_int_equal(ar_hex_encode("ab", 2, enc, 5), 0);

    assert_int_equal(ar_hex_decode("007F80fF", 8, dec, sizeof(dec), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(dec, "\x00\x7f\x80\xff", 4);
    n = 99;
    assert_int_equal(ar_hex_decode("abc", 3, dec, sizeof(dec), &n), AR_EINVAL);
    assert_int_equal(ar_hex_decode("0g", 2, dec, sizeof(dec), &n), AR_EINVAL);
    assert_int_equal(ar_hex_decode(" 0", 2, dec, sizeof(dec), &n), AR_EINVAL);
    assert_int_equal(ar_hex_decode("00112233", 8, dec, 3, &n), AR_E2BIG);
    assert_int_equal(n, 99);
    assert_int_equal(ar_hex_decode("", 0, dec, 0, &n), 0);
    assert_int_equal(n, 0);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_int_equal(ar_ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(ar_ct_equal("abc", 3, "abd", 3), 0);
    assert_int_equal(ar_ct_equal("abc", 3, "abcd", 4), 0);
    assert_int_equal(ar_ct_equal("abc", 3, "ab", 2), 0);
    assert_int_equal(ar_ct_equal("", 0, "", 0), 1);
    assert_int_equal(ar_ct_equal(NULL, 0, NULL, 0), 1);
    assert_int_equal(ar_ct_equal("\x00\x01", 2, "\x00\x02", 2), 0);
}

static void test_hmac_primitive(void **state)
{
    (void)state;
    /* RFC 2202 / RFC 4231 test case 2. */
    static const char data[] = "what do ya want for nothing?";
    unsigned char out[AR_HMAC_MAX];
    char hex[2 * AR_HMAC_MAX + 1];
    size_t n = 0;
    struct ar_hmac_part whole = {data, strlen(data)};

    assert_int_equal(ar_hmac("sha1", "Jefe", 4, &whole, 1, out, &n), 0);
    assert_int_equal(n, 20);
    assert_int_equal(ar_hex_encode(out, n, hex, sizeof(hex)), 0);
    assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");

    assert_int_equal(ar_hmac("SHA256", "Jefe", 4, &whole, 1, out, &n), 0);
    assert_int_equal(n, 32);
    assert_int_equal(ar_hex_encode(out, n, hex, sizeof(hex)), 0);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* Split into parts, including empty ones, the MAC is that of the concatenation. */
    struct ar_hmac_part parts[] = {{"what do", 7}, {NULL, 0}, {" ya want", 8}, {"", 0},
                                   {" for nothing?", 13}};
    assert_int_equal(ar_hmac("sha512", "Jefe", 4, parts, N(parts), out, &n), 0);
    assert_int_equal(n, 64);
    assert_int_equal(ar_hex_encode(out, n, hex, sizeof(hex)), 0);
    assert_string_equal(hex, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                             "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");

    n = 7;
    assert_int_equal(ar_hmac("md5", "Jefe", 4, &whole, 1, out, &n), AR_EINVAL);
    assert_int_equal(ar_hmac("sha256", "", 0, &whole, 1, out, &n), AR_EINVAL);
    assert_int_equal(n, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github_docs_vector),
        cmocka_unit_test(test_github_rejects),
        cmocka_unit_test(test_github_lenient_where_harmless),
        cmocka_unit_test(test_zendesk),
        cmocka_unit_test(test_zendesk_replay_window),
        cmocka_unit_test(test_trello),
        cmocka_unit_test(test_helpscout),
        cmocka_unit_test(test_intercom),
        cmocka_unit_test(test_stripe),
        cmocka_unit_test(test_stripe_several_v1),
        cmocka_unit_test(test_stripe_replay_window),
        cmocka_unit_test(test_token_bearer),
        cmocka_unit_test(test_token_custom_header),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_hmac_generic),
        cmocka_unit_test(test_hmac_generic_timestamped),
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_none_and_names),
        cmocka_unit_test(test_header_find),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_hmac_primitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
