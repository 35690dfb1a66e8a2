/* Unit tests for src/net/mime.c: mail.send validation and RFC 5322 / MIME rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "net/mime.h"

#define NOW 1795424400 /* Mon, 23 Nov 2026 09:00:00 UTC */
#define UID "6f1c2a9e0b7d4e31.42"

static int has_n(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_ci(const char *hay, const char *needle)
{
    size_t m = strlen(needle);
    for (; *hay; hay++) {
        if (strncasecmp(hay, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Structural checks every rendered message must pass: CRLF line ends only, no line over 998
 * octets, no line holding an encoded-word over 76 characters, and no encoded-word over 75. */
static void assert_well_formed(const struct ar_mime_out *o)
{
    const char *d = o->data;
    assert_int_equal(strlen(d), o->len);
    assert_true(o->len >= 2);
    assert_memory_equal(d + o->len - 2, "\r\n", 2);
    const char *hend = strstr(d, "\r\n\r\n");
    assert_non_null(hend);
    size_t line = 0, start = 0;
    for (size_t i = 0; i < o->len; i++) {
        if (d[i] == '\n') {
            assert_true(i > 0 && d[i - 1] == '\r');
        }
        if (d[i] == '\r') {
            assert_true(d[i + 1] == '\n');
            assert_true(line <= 998);
            if (d + i < hend && has_n(d + start, line, "=?")) {
                assert_true(line <= 76);
            }
            line = 0;
            start = i + 2;
            i++;
            continue;
        }
        line++;
    }
    /* Each encoded-word in the header section is at most 75 characters. */
    for (const char *p = d; p < hend;) {
        const char *ew = strstr(p, "=?UTF-8?");
        if (ew == NULL || ew >= hend) {
            break;
        }
        const char *end = strstr(ew + 10, "?=");
        assert_non_null(end);
        assert_true(end + 2 - ew <= 75);
        assert_true(end > ew + 10); /* never an empty word */
        p = end + 2;
    }
}

static void render_ok(const struct ar_mail_msg *m, struct ar_mime_out *o)
{
    char err[256] = "";
    int rc = ar_mime_render(m, NOW, UID, o, err, sizeof(err));
    if (rc != 0) {
        fail_msg("render failed: %d %s", rc, err);
    }
    assert_well_formed(o);
}

/* Renders m, expects AR_EINVAL with an error containing want, and checks out was not touched. */
static void render_fails(const struct ar_mail_msg *m, const char *want)
{
    char err[256] = "";
    struct ar_mime_out o;
    memset(&o, 0xA5, sizeof(o));
    int rc = ar_mime_render(m, NOW, UID, &o, err, sizeof(err));
    if (rc != AR_EINVAL || strstr(err, want) == NULL) {
        fail_msg("expected AR_EINVAL with \"%s\", got %d \"%s\"", want, rc, err);
    }
    unsigned char *b = (unsigned char *)&o;
    for (size_t i = 0; i < sizeof(o); i++) {
        assert_int_equal(b[i], 0xA5);
    }
}

/* The header section with folding undone (CRLF before whitespace removed). */
static char *unfolded_headers(const struct ar_mime_out *o)
{
    const char *end = strstr(o->data, "\r\n\r\n");
    size_t n = (size_t)(end - o->data) + 2;
    char *r = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (o->data[i] == '\r' && o->data[i + 1] == '\n' &&
            (o->data[i + 2] == ' ' || o->data[i + 2] == '\t')) {
            i++;
            continue;
        }
        r[k++] = o->data[i];
    }
    r[k] = '\0';
    return r;
}

/* The unfolded value of a header (after "Name: "), or NULL; the caller frees it. */
static char *header(const struct ar_mime_out *o, const char *name)
{
    char *h = unfolded_headers(o);
    size_t nl = strlen(name);
    char *res = NULL;
    for (char *line = h; *line; ) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            char *v = line + nl + 1;
            if (*v == ' ') {
                v++;
            }
            res = strndup(v, (size_t)(eol - v));
            break;
        }
        line = eol + 2;
    }
    free(h);
    return res;
}

static int b64val(char c)
{
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(t, c);
    return (c != '\0' && p != NULL) ? (int)(p - t) : -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = s[i] < 0x80 ? 1 : (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3
                 : (s[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (l == 0 || i + l > n) {
            return 0;
        }
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += l;
    }
    return 1;
}

/* A small RFC 2047 decoder: encoded-words in UTF-8 (B or Q) are decoded, whitespace between
 * two adjacent encoded-words is dropped, everything else is copied. Each word must decode to
 * whole UTF-8 characters on its own. */
static char *decode_2047(const char *s)
{
    char *r = calloc(1, strlen(s) + 1);
    size_t k = 0, pending_ws = 0;
    int prev_ew = 0;
    const char *ws_start = NULL;
    while (*s) {
        if (*s == ' ' || *s == '\t') {
            if (pending_ws == 0) {
                ws_start = s;
            }
            pending_ws++;
            s++;
            continue;
        }
        if (strncmp(s, "=?UTF-8?", 8) == 0 && (s[8] == 'B' || s[8] == 'Q') && s[9] == '?') {
            const char *end = strstr(s + 10, "?=");
            assert_non_null(end);
            if (!prev_ew && pending_ws > 0) {
                memcpy(r + k, ws_start, pending_ws);
                k += pending_ws;
            }
            pending_ws = 0;
            size_t w0 = k;
            if (s[8] == 'B') {
                unsigned acc = 0;
                int bits = 0;
                for (const char *p = s + 10; p < end && *p != '='; p++) {
                    int v = b64val(*p);
                    assert_true(v >= 0);
                    acc = (acc << 6) | (unsigned)v;
                    bits += 6;
                    if (bits >= 8) {
                        bits -= 8;
                        r[k++] = (char)((acc >> bits) & 0xFF);
                    }
                }
            } else {
                for (const char *p = s + 10; p < end; p++) {
                    if (*p == '_') {
                        r[k++] = ' ';
                    } else if (*p == '=') {
                        int hi = hexval(p[1]), lo = hexval(p[2]);
                        assert_true(hi >= 0 && lo >= 0);
                        r[k++] = (char)(hi * 16 + lo);
                        p += 2;
                    } else {
                        assert_true(*p > ' ' && *p < 127 && *p != '?');
                        r[k++] = *p;
                    }
                }
            }
            assert_true(utf8_ok((unsigned char *)r + w0, k - w0));
            prev_ew = 1;
            s = end + 2;
            continue;
        }
        if (pending_ws > 0) {
            memcpy(r + k, ws_start, pending_ws);
            k += pending_ws;
            pending_ws = 0;
        }
        prev_ew = 0;
        r[k++] = *s++;
    }
    if (pending_ws > 0) {
        memcpy(r + k, ws_start, pending_ws);
        k += pending_ws;
    }
    r[k] = '\0';
    return r;
}

/* Decodes quoted-printable (CRLF lines) and checks every encoded line is within 76 chars. */
static char *decode_qp(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    size_t k = 0, col = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            assert_true(col <= 76);
            col = 0;
            r[k++] = '\r';
            continue;
        }
        if (s[i] == '\n') {
            r[k++] = '\n';
            continue;
        }
        col++;
        if (s[i] == '=') {
            if (s[i + 1] == '\r' && s[i + 2] == '\n') {
                assert_true(col <= 76);
                col = 0;
                i += 2;
                continue;
            }
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            assert_true(hi >= 0 && lo >= 0);
            r[k++] = (char)(hi * 16 + lo);
            i += 2;
            col += 2;
            continue;
        }
        /* Whitespace never ends an encoded line. */
        if (s[i] == ' ' || s[i] == '\t') {
            assert_true(i + 1 < n && s[i + 1] != '\r');
        }
        r[k++] = s[i];
    }
    assert_true(col <= 76);
    r[k] = '\0';
    return r;
}

/* The body: everything after the header section. */
static const char *body_of(const struct ar_mime_out *o)
{
    return strstr(o->data, "\r\n\r\n") + 4;
}

static size_t count(const char *hay, const char *needle)
{
    size_t c = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        c++;
    }
    return c;
}

static const char *const one_to[] = {"Ann <ann@example.org>"};

static struct ar_mail_msg base_msg(void)
{
    struct ar_mail_msg m = {0};
    m.from = "Support <support@example.com>";
    m.to = one_to;
    m.to_count = 1;
    m.subject = "One question";
    m.text = "Hello\nWorld\n";
    return m;
}

static void test_plain_text(void **state)
{
    (void)state;
    struct ar_mail_msg m = base_msg();
    struct ar_mime_out o;
    render_ok(&m, &o);
    const char *want =
        "Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        "From: Support <support@example.com>\r\n"
        "To: Ann <ann@example.org>\r\n"
        "Subject: One question\r\n"
        "Message-ID: <" UID "@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "Hello\r\nWorld\r\n";
    assert_string_equal(o.data, want);
    assert_string_equal(o.message_id, "<" UID "@example.com>");
    assert_string_equal(o.envelope_from, "support@example.com");
    assert_int_equal(o.rcpt_count, 1);
    assert_string_equal(o.rcpt[0], "ann@example.org");

    /* Same inputs, same bytes: rendering is a pure function. */
    struct ar_mime_out o2;
    render_ok(&m, &o2);
    assert_string_equal(o.data, o2.data);
    ar_mime_out_free(&o2);
    ar_mime_out_free(&o);
    assert_null(o.data);
    ar_mime_out_free(NULL);
}

static void test_text_without_final_newline_and_mixed_breaks(void **state)
{
    (void)state;
    struct ar_mail_msg m = base_msg();
    m.text = "a\rb\r\nc\nd";
    struct ar_mime_out o;
    render_ok(&m, &o);
    assert_string_equal(body_of(&o), "a\r\nb\r\nc\r\nd\r\n");
    ar_mime_out_free(&o);

    /* No body at all is an empty text/plain part. */
    m.text = NULL;
    render_ok(&m, &o);
    assert_non_null(strstr(o.data, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_string_equal(body_of(&o), "");
    ar_mime_out_free(&o);
}

static void test_html_only(void **state)
{
    (void)state;
    struct ar_mail_msg m = base_msg();
    m.text = NULL;
    m.html = "<p>Hi <b>Ann</b></p>";
    struct ar_mime_out o;
    render_ok(&m, &o);
    char *ct = header(&o, "Content-Type");
    assert_string_equal(ct, "text/html; charset=UTF-8");
    free(ct);
    assert_null(strstr(o.data, "multipart"));
    assert_null(strstr(o.data, "text/plain"));
    assert_string_equal(body_of(&o), "<p>Hi <b>Ann</b></p>\r\n");
    ar_mime_out_free(&o);
}

/* Checks the multipart/alternative layout and returns the boundary (caller frees). */
static char *check_multipart(const struct ar_mime_out *o, const char *text_want,
                             const char *html_want)
{
    char *ct = header(o, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "multipart/alternative; boundary=\"", 33) == 0);
    char *b = strdup(ct + 33);
    assert_true(strlen(b) > 1 && b[strlen(b) - 1] == '"');
    b[strlen(b) - 1] = '\0';
    free(ct);
    assert_true(strlen(b) >= 16 && strlen(b) <= 70);
    assert_null(header(o, "Content-Transfer-Encoding"));

    char delim[96], close[96];
    snprintf(delim, sizeof(delim), "--%s\r\n", b);
    snprintf(close, sizeof(close), "\r\n--%s--\r\n", b);
    const char *body = body_of(o);
    /* The boundary occurs exactly in the three delimiter lines and nowhere else. */
    assert_int_equal(count(body, b), 3);
    assert_true(strncmp(body, delim, strlen(delim)) == 0);
    size_t blen = strlen(body);
    assert_true(blen > strlen(close));
    assert_string_equal(body + blen - strlen(close), close);

    const char *p1 = body + strlen(delim);
    char mid[96];
    snprintf(mid, sizeof(mid), "\r\n--%s\r\n", b);
    const char *m1 = strstr(p1, mid);
    assert_non_null(m1);
    const char *p2 = m1 + strlen(mid);
    const char *e2 = body + blen - strlen(close);

    const char *t_hdr = "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: ";
    const char *h_hdr = "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: ";
    assert_true(strncmp(p1, t_hdr, strlen(t_hdr)) == 0);
    assert_true(strncmp(p2, h_hdr, strlen(h_hdr)) == 0);

    const char *parts[2][3] = {{p1, (const char *)m1, text_want}, {p2, e2, html_want}};
    for (int i = 0; i < 2; i++) {
        const char *cte = parts[i][0] + strlen(i == 0 ? t_hdr : h_hdr);
        const char *content = strstr(cte, "\r\n\r\n") + 4;
        size_t n = (size_t)(parts[i][1] - content);
        if (strncmp(cte, "quoted-printable\r\n", 18) == 0) {
            char *dec = decode_qp(content, n);
            assert_string_equal(dec, parts[i][2]);
            free(dec);
        } else {
            assert_true(strncmp(cte, "7bit\r\n", 6) == 0);
            assert_int_equal(n, strlen(parts[i][2]));
            assert_memory_equal(content, parts[i][2], n);
        }
    }
    return b;
}

static void test_text_and_html(void **state)
{
    (void)state;
    struct ar_mail_msg m = base_msg();
    m.text = "Hi Ann,\nhow was it? Größe: 5 €\n";
    m.html = "<p>Hi Ann,</p>\n<p>how was it?</p>";
    struct ar_mime_out o;
    render_ok(&m, &o);
    char *b = check_multipart(&o, "Hi Ann,\r\nhow was it? Größe: 5 €\r\n",
                              "<p>Hi Ann,</p>\r\n<p>how was it?</p>");
    assert_non_null(strstr(o.data, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(o.data, "Content-Transfer-Encoding: 7bit\r\n"));

    /* A 7bit part that happens to hold the boundary forces another one. */
    char text[256];
    snprintf(text, sizeof(text), "see --%s\nand %s again\n", b, b);
    m.text = text;
    struct ar_mime_out o2;
    render_ok(&m, &o2);
    char want[300];
    snprintf(want, sizeof(want), "see --%s\r\nand %s again\r\n", b, b);
    char *b2 = check_multipart(&o2, want, "<p>Hi Ann,</p>\r\n<p>how was it?</p>");
    assert_string_not_equal(b, b2);
    assert_non_null(strstr(o2.data, b)); /* still there, as text */
    free(b2);
    free(b);
    ar_mime_out_free(&o2);
    ar_mime_out_free(&o);
}

static void test_utf8_subject(void **state)
{
    (void)state;
    static const char *const subjects[] = {
        "Ihre Bestellung ist unterwegs, vielen Dank für Ihren Einkauf", /* mostly ASCII: Q */
        "お問い合わせありがとうございます", /* CJK: B */
        "Café ☕ and 🎉 party",         /* 2-, 3- and 4-byte characters */
        "=?UTF-8?Q?not_an_encoded_word?=", /* ASCII a reader would decode: encoded too */
        "ASCII only, but with \"quotes\" and (parens)",
    };
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        struct ar_mail_msg m = base_msg();
        m.subject = subjects[i];
        struct ar_mime_out o;
        render_ok(&m, &o);
        char *raw = header(&o, "Subject");
        char *dec = decode_2047(raw);
        assert_string_equal(dec, subjects[i]);
        if (i == 0) {
            assert_non_null(strstr(raw, "=?UTF-8?Q?"));
        } else if (i == 1) {
            assert_non_null(strstr(raw, "=?UTF-8?B?"));
        } else if (i == 4) {
            assert_string_equal(raw, subjects[i]);
        }
        free(dec);
        free(raw);
        ar_mime_out_free(&o);
    }
}

static void test_long_subject_folding(void **state)
{
    (void)state;
    char ascii[1200], utf8[4000], word[2101];
    ascii[0] = utf8[0] = '\0';
    for (int i = 0; i < 60; i++) {
        strcat(ascii, i ? " word" : "word");
        char n[8];
        snprintf(n, sizeof(n), "%d", i);
        strcat(ascii, n);
    }
    strcat(ascii, "  two  spaces");
    for (int i = 0; i < 40; i++) {
        strcat(utf8, "Überprüfung ✓ 日本語 🎉 ");
    }
    memset(word, 'x', 2100);
    word[2100] = '\0';
    const char *subjects[] = {ascii, utf8, word};
    for (int i = 0; i < 3; i++) {
        struct ar_mail_msg m = base_msg();
        m.subject = subjects[i];
        struct ar_mime_out o;
        render_ok(&m, &o);
        /* Folded across several lines, each short. */
        const char *s = strstr(o.data, "\r\nSubject:") + 2;
        const char *e = strstr(s, "\r\nMessage-ID:");
        assert_true(count(s, "\r\n ") - count(e, "\r\n ") >= 5);
        for (const char *l = s; l < e;) {
            const char *eol = strstr(l, "\r\n");
            assert_true(eol - l <= 78);
            l = eol + 2;
        }
        char *raw = header(&o, "Subject");
        if (i == 0) {
            assert_string_equal(raw, ascii); /* folding at spaces unfolds exactly */
        } else {
            char *dec = decode_2047(raw);
            assert_string_equal(dec, subjects[i]);
            free(dec);
        }
        free(raw);
        ar_mime_out_free(&o);
    }
}

static void test_display_names(void **state)
{
    (void)state;
    static const char *const to[] = {
        "\"Doe, John\" <john@example.com>, O'Brien (Ops) <ob@example.com>",
        "山田 太郎 <taro@example.jp>",
        "\"say \\\"hi\\\" \\\\ there\" <q@example.com>",
        "<bare@example.com>, plain@example.com",
    };
    struct ar_mail_msg m = base_msg();
    m.from = "Jürgen Müller-Lüdenscheidt vom Kundendienst der Firma <j@example.de>";
    m.to = to;
    m.to_count = 4;
    struct ar_mime_out o;
    render_ok(&m, &o);

    char *from = header(&o, "From");
    char *dec = decode_2047(from);
    assert_string_equal(dec,
                        "Jürgen Müller-Lüdenscheidt vom Kundendienst der Firma <j@example.de>");
    free(dec);
    free(from);

    char *t = header(&o, "To");
    assert_non_null(strstr(t, "\"Doe, John\" <john@example.com>, "));
    assert_non_null(strstr(t, "\"O'Brien (Ops)\" <ob@example.com>, "));
    assert_non_null(strstr(t, "\"say \\\"hi\\\" \\\\ there\" <q@example.com>, "));
    assert_non_null(strstr(t, ", bare@example.com, plain@example.com"));
    dec = decode_2047(t);
    assert_non_null(strstr(dec, "山田 太郎 <taro@example.jp>"));
    free(dec);
    free(t);
    assert_int_equal(o.rcpt_count, 6);
    assert_string_equal(o.envelope_from, "j@example.de");
    assert_string_equal(o.message_id, "<" UID "@example.de>");
    ar_mime_out_free(&o);
}

static void test_quoted_printable_long_utf8(void **state)
{
    (void)state;
    char body[20000] = "";
    for (int i = 0; i < 150; i++) {
        strcat(body, "Grüße = 100 € 🎉 ");
    }
    strcat(body, "trailing space \nsecond line\ttab\t\n.leading dot\n\n");
    struct ar_mail_msg m = base_msg();
    m.text = body;
    struct ar_mime_out o;
    render_ok(&m, &o);
    char *cte = header(&o, "Content-Transfer-Encoding");
    assert_string_equal(cte, "quoted-printable");
    free(cte);
    const char *b = body_of(&o);
    char *dec = decode_qp(b, strlen(b));
    char want[21000];
    size_t k = 0;
    for (const char *p = body; *p; p++) {
        if (*p == '\n') {
            want[k++] = '\r';
        }
        want[k++] = *p;
    }
    want[k] = '\0';
    assert_string_equal(dec, want);
    free(dec);
    /* Soft breaks never split a UTF-8 character: each encoded line decodes to whole ones. */
    for (const char *l = b; *l;) {
        const char *eol = strstr(l, "\r\n");
        char *one = decode_qp(l, (size_t)(eol - l));
        size_t n = strlen(one);
        if (n > 0 && one[n - 1] == '=') {
            one[n - 1] = '\0';
        }
        assert_true(utf8_ok((unsigned char *)one, strlen(one)));
        free(one);
        l = eol + 2;
    }
    ar_mime_out_free(&o);
}

static void test_line_limits(void **state)
{
    (void)state;
    char *text = malloc(5000);
    struct ar_mail_msg m = base_msg();
    struct ar_mime_out o;

    /* 998 octets is the most a 7bit line may carry... */
    memset(text, 'a', 998);
    strcpy(text + 998, "\n");
    m.text = text;
    render_ok(&m, &o);
    char *cte = header(&o, "Content-Transfer-Encoding");
    assert_string_equal(cte, "7bit");
    free(cte);
    ar_mime_out_free(&o);

    /* ...one more and the body goes quoted-printable. */
    memset(text, 'a', 4999);
    text[4999] = '\0';
    render_ok(&m, &o);
    cte = header(&o, "Content-Transfer-Encoding");
    assert_string_equal(cte, "quoted-printable");
    free(cte);
    char *dec = decode_qp(body_of(&o), strlen(body_of(&o)));
    assert_int_equal(strlen(dec), 4999 + 2);
    free(dec);
    ar_mime_out_free(&o);
    free(text);
}

static void test_header_injection_refused(void **state)
{
    (void)state;
    static const char *const breaks[] = {"\r\n", "\n", "\r"};
    for (size_t i = 0; i < 3; i++) {
        char bad[128], badlist[128];
        const char *list[1] = {badlist};
        struct ar_mail_msg m;
        snprintf(bad, sizeof(bad), "x%sBcc: victim@example.net", breaks[i]);
        snprintf(badlist, sizeof(badlist), "Ann%s<ann@example.org>", breaks[i]);

        m = base_msg();
        m.subject = bad;
        render_fails(&m, "subject contains a line break");

        m = base_msg();
        m.from = badlist;
        render_fails(&m, "from contains a line break");

        m = base_msg();
        m.to = list;
        render_fails(&m, "to contains a line break");

        m = base_msg();
        m.cc = list;
        m.cc_count = 1;
        render_fails(&m, "cc contains a line break");

        m = base_msg();
        m.bcc = list;
        m.bcc_count = 1;
        render_fails(&m, "bcc contains a line break");

        m = base_msg();
        m.reply_to = list;
        m.reply_to_count = 1;
        render_fails(&m, "replyTo contains a line break");

        struct ar_mail_header h = {"X-Campaign", bad};
        m = base_msg();
        m.headers = &h;
        m.header_count = 1;
        render_fails(&m, "headers.X-Campaign contains a line break");

        char badname[64];
        snprintf(badname, sizeof(badname), "X-A%sBcc", breaks[i]);
        struct ar_mail_header h2 = {badname, "v"};
        m.headers = &h2;
        render_fails(&m, "headers: a header name contains a line break");
    }
    /* Other control characters are refused as well. */
    struct ar_mail_msg m = base_msg();
    m.subject = "nul\x01byte";
    render_fails(&m, "subject contains a control character");
    m.subject = "bad \xC3\x28 utf-8";
    render_fails(&m, "subject is not valid UTF-8");
    m = base_msg();
    m.text = "\xED\xA0\xBD\xED\xB8\x80"; /* CESU-8 surrogates */
    render_fails(&m, "text is not valid UTF-8");
    m = base_msg();
    m.html = "\xFF";
    render_fails(&m, "html is not valid UTF-8");
}

static void test_address_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a@b.c", "first.last@example.com", "user+tag@sub.example.co.uk", "x@localhost",
        "o'brien@example.ie", "ADMIN@EXAMPLE.COM", "a-b_c@x-y.example",
    };
    static const char *const bad[] = {
        "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@@b.c", "a@b@c.d", "a@b..c", ".a@b.c",
        "a.@b.c", "a..b@c.d", "a@.b.c", "a@b.c.", "<a@b.c>", "a@b.c>", "\"a\"@b.c", "j\xC3\xB6@b.c",
        "a@b\xC3\xB6.c", "a@[127.0.0.1]", "a,b@c.d", "a@b_c.d", "a\r@b.c", "a@b.c\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!ar_mail_address_valid(good[i])) {
            fail_msg("refused %s", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ar_mail_address_valid(bad[i])) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    assert_false(ar_mail_address_valid(NULL));

    char local[80];
    memset(local, 'l', 64);
    strcpy(local + 64, "@b.c");
    assert_true(ar_mail_address_valid(local));
    memset(local, 'l', 65);
    strcpy(local + 65, "@b.c");
    assert_false(ar_mail_address_valid(local));

    /* 255 octets of domain in labels of at most 63: ok; 256: refused. */
    char dom[300] = "a@";
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(dom);
        memset(dom + l, 'd', 63);
        strcpy(dom + l + 63, i < 3 ? "." : "");
    }
    assert_int_equal(strlen(dom + 2), 255);
    assert_true(ar_mail_address_valid(dom));
    dom[strlen(dom) - 2] = '\0';
    strcat(dom, ".dd"); /* now 256: labels fine, total too long */
    assert_int_equal(strlen(dom + 2), 256);
    assert_false(ar_mail_address_valid(dom));
    char longlabel[80] = "a@";
    memset(longlabel + 2, 'd', 64);
    strcpy(longlabel + 66, ".com");
    assert_false(ar_mail_address_valid(longlabel));
}

static void test_invalid_addresses_name_field(void **state)
{
    (void)state;
    static const char *const bad[] = {"nobody", "a@b", "Ann <ann@>", "x@y.z, ", "Ann <a@b.c",
                                      "\"Ann <a@b.c>", "Ann <a@b.c> extra", ""};
    static const char *const want[] = {"invalid address 'nobody'", "invalid address 'a@b'",
                                       "invalid address 'ann@'", "empty address", "missing '>'",
                                       "unbalanced quote", "unexpected text after '>'",
                                       "empty address"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *list[1] = {bad[i]};
        char msg[128];
        struct ar_mail_msg m = base_msg();
        m.to = list;
        snprintf(msg, sizeof(msg), "to: %s", want[i]);
        render_fails(&m, msg);

        m = base_msg();
        m.cc = list;
        m.cc_count = 1;
        snprintf(msg, sizeof(msg), "cc: %s", want[i]);
        render_fails(&m, msg);

        m = base_msg();
        m.bcc = list;
        m.bcc_count = 1;
        snprintf(msg, sizeof(msg), "bcc: %s", want[i]);
        render_fails(&m, msg);

        m = base_msg();
        m.reply_to = list;
        m.reply_to_count = 1;
        snprintf(msg, sizeof(msg), "replyTo: %s", want[i]);
        render_fails(&m, msg);
    }
    struct ar_mail_msg m = base_msg();
    m.from = "support@example";
    render_fails(&m, "from: invalid address 'support@example'");
    m.from = NULL;
    render_fails(&m, "from is required");
    m.from = "a@example.com, b@example.com";
    render_fails(&m, "from must be exactly one address");
    m = base_msg();
    m.to_count = 0;
    render_fails(&m, "no recipients");

    /* A name long enough to need splitting is refused rather than mangled. */
    char longname[400];
    memset(longname, 'n', 300);
    strcpy(longname + 300, " <a@b.c>");
    const char *list[1] = {longname};
    m = base_msg();
    m.to = list;
    render_fails(&m, "to: display name longer than 256 bytes");

    m = base_msg();
    char err[64];
    struct ar_mime_out o;
    assert_int_equal(ar_mime_render(&m, NOW, "bad id", &o, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_mime_render(&m, NOW, "", &o, err, sizeof(err)), AR_EINVAL);
    assert_int_equal(ar_mime_render(&m, -1, UID, &o, err, sizeof(err)), AR_ERANGE);
    assert_int_equal(ar_mime_render(&m, 253402300800LL, UID, &o, err, sizeof(err)), AR_ERANGE);
}

static void test_bcc_only_in_envelope(void **state)
{
    (void)state;
    static const char *const bcc[] = {"Secret Boss <boss@example.net>", "audit@example.net"};
    struct ar_mail_msg m = base_msg();
    m.bcc = bcc;
    m.bcc_count = 2;
    struct ar_mime_out o;
    render_ok(&m, &o);
    assert_null(strstr(o.data, "boss@"));
    assert_null(strstr(o.data, "audit@"));
    assert_null(strstr(o.data, "Secret"));
    assert_false(has_ci(o.data, "\nBcc:"));
    assert_int_equal(o.rcpt_count, 3);
    assert_string_equal(o.rcpt[0], "ann@example.org");
    assert_string_equal(o.rcpt[1], "boss@example.net");
    assert_string_equal(o.rcpt[2], "audit@example.net");
    ar_mime_out_free(&o);

    /* Only bcc: the To header says so without naming anyone. */
    m.to_count = 0;
    render_ok(&m, &o);
    char *to = header(&o, "To");
    assert_string_equal(to, "undisclosed-recipients:;");
    free(to);
    assert_null(strstr(o.data, "boss@"));
    assert_int_equal(o.rcpt_count, 2);
    ar_mime_out_free(&o);
}

static void test_recipient_dedup_and_folding(void **state)
{
    (void)state;
    static const char *const to[] = {"a@x.com,\tB <a@X.COM> ", " c@x.com\t"};
    static const char *const cc[] = {"A <a@x.com>", "C@x.com", "d@x.com"};
    static const char *const bcc[] = {"d@x.com, e@x.com"};
    static const char *const reply[] = {"Help <help@example.com>, help2@example.com"};
    struct ar_mail_msg m = base_msg();
    m.to = to;
    m.to_count = 2;
    m.cc = cc;
    m.cc_count = 3;
    m.bcc = bcc;
    m.bcc_count = 1;
    m.reply_to = reply;
    m.reply_to_count = 1;
    struct ar_mime_out o;
    render_ok(&m, &o);
    /* Local parts are case-sensitive, domains are not. */
    const char *want[] = {"a@x.com", "c@x.com", "C@x.com", "d@x.com", "e@x.com"};
    assert_int_equal(o.rcpt_count, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(o.rcpt[i], want[i]);
    }
    char *h = header(&o, "To");
    assert_string_equal(h, "a@x.com, B <a@X.COM>, c@x.com");
    free(h);
    h = header(&o, "Cc");
    assert_string_equal(h, "A <a@x.com>, C@x.com, d@x.com");
    free(h);
    h = header(&o, "Reply-To");
    assert_string_equal(h, "Help <help@example.com>, help2@example.com");
    free(h);
    assert_null(strstr(o.data, "e@x.com"));
    assert_false(has_ci(o.data, "\nBcc:"));
    ar_mime_out_free(&o);

    /* Many recipients fold into lines of at most 78. */
    char many[4000] = "";
    for (int i = 0; i < 60; i++) {
        char one[64];
        snprintf(one, sizeof(one), "%sPerson %d <person%d@example.com>", i ? ", " : "", i, i);
        strcat(many, one);
    }
    const char *list[1] = {many};
    m = base_msg();
    m.to = list;
    render_ok(&m, &o);
    assert_int_equal(o.rcpt_count, 60);
    const char *s = strstr(o.data, "\r\nTo:") + 2;
    const char *e = strstr(s, "\r\nSubject:");
    for (const char *l = s; l < e;) {
        const char *eol = strstr(l, "\r\n");
        assert_true(eol - l <= 78);
        l = eol + 2;
    }
    h = header(&o, "To");
    assert_string_equal(h, many);
    free(h);
    ar_mime_out_free(&o);
}

static void test_custom_headers(void **state)
{
    (void)state;
    struct ar_mail_header hs[] = {
        {"X-Campaign", "nps-2026"},
        {"List-Unsubscribe", "<https://example.com/u?id=42>, <mailto:u@example.com>"},
        {"X-Note", "Grüße, €"},
        {"X-Empty", ""},
    };
    struct ar_mail_msg m = base_msg();
    m.headers = hs;
    m.header_count = 4;
    struct ar_mime_out o;
    render_ok(&m, &o);
    char *h = header(&o, "X-Campaign");
    assert_string_equal(h, "nps-2026");
    free(h);
    h = header(&o, "List-Unsubscribe");
    assert_string_equal(h, hs[1].value);
    free(h);
    h = header(&o, "X-Note");
    char *dec = decode_2047(h);
    assert_string_equal(dec, "Grüße, €");
    free(dec);
    free(h);
    h = header(&o, "X-Empty");
    assert_string_equal(h, "");
    free(h);
    /* Custom headers come before the MIME ones, and only once each. */
    assert_true(strstr(o.data, "X-Campaign:") < strstr(o.data, "MIME-Version:"));
    assert_int_equal(count(o.data, "X-Campaign:"), 1);
    ar_mime_out_free(&o);

    static const char *const forbidden[] = {
        "From", "to", "CC", "Bcc", "date", "Message-Id", "MIME-Version", "content-type",
        "Content-Transfer-Encoding",
    };
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        struct ar_mail_header f = {forbidden[i], "x"};
        m.headers = &f;
        m.header_count = 1;
        render_fails(&m, "is set by mail.send itself");
    }
    struct ar_mail_header f = {"Subject", "x"};
    m.headers = &f;
    render_fails(&m, "use the subject field");
    f.name = "reply-to";
    render_fails(&m, "use the replyTo field");
    static const char *const badnames[] = {"X Bad", "X:Bad", "", "X-\xC3\xA9", "X-\x7F"};
    for (size_t i = 0; i < sizeof(badnames) / sizeof(badnames[0]); i++) {
        f.name = badnames[i];
        render_fails(&m, "headers: ");
    }
    f.name = "X-Ok";
    f.value = NULL;
    render_fails(&m, "headers.X-Ok has no value");
    char longword[1200];
    memset(longword, 'w', 1100);
    longword[1100] = '\0';
    f.value = longword;
    render_fails(&m, "headers.X-Ok has a word too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text),
        cmocka_unit_test(test_text_without_final_newline_and_mixed_breaks),
        cmocka_unit_test(test_html_only),
        cmocka_unit_test(test_text_and_html),
        cmocka_unit_test(test_utf8_subject),
        cmocka_unit_test(test_long_subject_folding),
        cmocka_unit_test(test_display_names),
        cmocka_unit_test(test_quoted_printable_long_utf8),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_header_injection_refused),
        cmocka_unit_test(test_address_valid),
        cmocka_unit_test(test_invalid_addresses_name_field),
        cmocka_unit_test(test_bcc_only_in_envelope),
        cmocka_unit_test(test_recipient_dedup_and_folding),
        cmocka_unit_test(test_custom_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
