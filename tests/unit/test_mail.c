/* Tests for the pure and local parts of mail.send: CESU-8 to UTF-8 (js/js_mail.c), mail.url
 * parsing and file delivery (net/smtp.c), and the outbox table (db/outbox.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/error.h"
#include "core/util.h"
#include "db/history.h"
#include "db/outbox.h"
#include "net/smtp.h"

/* js/js_mail.c: internal, declared here for the test. */
int ar__mail_cesu8_to_utf8(const char *s, size_t n, char **out, size_t *out_len);

/* ---- CESU-8 ---- */

static void check_cesu(const char *in, size_t n, const char *want, size_t want_len)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(ar__mail_cesu8_to_utf8(in, n, &out, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[len], '\0');
    free(out);
}

static void test_cesu_pair_becomes_four_bytes(void **state)
{
    (void)state;
    /* U+1F600 as a CESU-8 surrogate pair: D83D DE00. */
    const char in[] = "a\xED\xA0\xBD\xED\xB8\x80z";
    check_cesu(in, sizeof(in) - 1, "a\xF0\x9F\x98\x80z", 6);
    /* U+10000 and U+10FFFF, the ends of the range. */
    check_cesu("\xED\xA0\x80\xED\xB0\x80", 6, "\xF0\x90\x80\x80", 4);
    check_cesu("\xED\xAF\xBF\xED\xBF\xBF", 6, "\xF4\x8F\xBF\xBF", 4);
}

static void test_cesu_leaves_utf8_alone(void **state)
{
    (void)state;
    const char *s = "plain ASCII, \xC3\xBC, \xE2\x82\xAC, \xF0\x9F\x98\x80 (real UTF-8)";
    check_cesu(s, strlen(s), s, strlen(s));
    check_cesu("", 0, "", 0);
    /* U+D7FF and U+E000 sit next to the surrogates and are ordinary characters. */
    check_cesu("\xED\x9F\xBF\xEE\x80\x80", 6, "\xED\x9F\xBF\xEE\x80\x80", 6);
    /* Invalid bytes are copied: mime.c refuses them with a message naming the field. */
    check_cesu("\xFF\xC0", 2, "\xFF\xC0", 2);
}

static void test_cesu_lone_surrogates_become_fffd(void **state)
{
    (void)state;
    /* A high surrogate at the end, a low one alone, two highs in a row. */
    check_cesu("x\xED\xA0\xBD", 4, "x\xEF\xBF\xBD", 4);
    check_cesu("\xED\xB8\x80y", 4, "\xEF\xBF\xBDy", 4);
    check_cesu("\xED\xA0\xBD\xED\xA0\xBD\xED\xB8\x80", 9, "\xEF\xBF\xBD\xF0\x9F\x98\x80", 7);
    /* A truncated sequence is not a surrogate: copied as is. */
    check_cesu("\xED\xA0", 2, "\xED\xA0", 2);
}

/* ---- mail.url ---- */

static void test_transport_file(void **state)
{
    (void)state;
    struct ar_mail_transport t;
    char err[256];
    assert_int_equal(ar_mail_transport_parse("file:/var/out", &t, err, sizeof(err)), 0);
    assert_int_equal(t.kind, AR_MAIL_FILE);
    assert_string_equal(t.dir, "/var/out");
    assert_string_equal(t.shown, "file:/var/out");
    ar_mail_transport_free(&t);
    assert_int_equal(ar_mail_transport_parse("file:///abs/dir", &t, err, sizeof(err)), 0);
    assert_string_equal(t.dir, "/abs/dir");
    ar_mail_transport_free(&t);
    assert_int_equal(ar_mail_transport_parse("file:", &t, err, sizeof(err)), AR_EINVAL);
    assert_non_null(strstr(err, "needs a directory"));
}

static void test_transport_smtp(void **state)
{
    (void)state;
    struct ar_mail_transport t;
    char err[256];
    assert_int_equal(ar_mail_transport_parse("smtp://127.0.0.1:2525", &t, err, sizeof(err)), 0);
    assert_int_equal(t.kind, AR_MAIL_SMTP);
    assert_string_equal(t.url, "smtp://127.0.0.1:2525");
    assert_string_equal(t.shown, "smtp://127.0.0.1:2525");
    assert_null(t.user);
    assert_int_equal(t.use_ssl, CURLUSESSL_NONE);
    ar_mail_transport_free(&t);

    /* Credentials leave the URL (and so history); percent-escapes are decoded. */
    assert_int_equal(ar_mail_transport_parse("smtp://me%40x.org:p%3Ass@mail.x.org:587/"
                                             "ehlo.x.org?starttls=required&cacert=/etc/ca.pem",
                                             &t, err, sizeof(err)),
                     0);
    assert_string_equal(t.user, "me@x.org");
    assert_string_equal(t.pass, "p:ss");
    assert_string_equal(t.url, "smtp://mail.x.org:587/ehlo.x.org");
    assert_string_equal(t.shown, "smtp://mail.x.org:587/ehlo.x.org");
    assert_int_equal(t.use_ssl, CURLUSESSL_ALL);
    assert_string_equal(t.cacert, "/etc/ca.pem");
    assert_null(strstr(t.url, "p:ss"));
    ar_mail_transport_free(&t);

    assert_int_equal(ar_mail_transport_parse("smtps://h:465?insecure=1", &t, err, sizeof(err)),
                     0);
    assert_string_equal(t.url, "smtps://h:465");
    assert_int_equal(t.insecure, 1);
    ar_mail_transport_free(&t);
    assert_int_equal(ar_mail_transport_parse("smtp://h?starttls=try", &t, err, sizeof(err)), 0);
    assert_int_equal(t.use_ssl, CURLUSESSL_TRY);
    ar_mail_transport_free(&t);
}

static void test_transport_refused(void **state)
{
    (void)state;
    struct ar_mail_transport t;
    char err[256];
    const char *bad[][2] = {
        {"http://h", "use smtp://"},
        {"smtp://h?nope=1", "unknown option 'nope'"},
        {"smtp://h?starttls=maybe", "starttls=maybe"},
        {"smtps://h?starttls=required", "smtps:// is TLS from the start"},
        {"smtp://h?insecure=yes", "insecure=yes"},
        {"", "empty"},
        {"not a url", "mail.url"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ar_mail_transport_parse(bad[i][0], &t, err, sizeof(err)), AR_EINVAL);
        if (strstr(err, bad[i][1]) == NULL) {
            fail_msg("%s: error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        }
    }
    ar_mail_transport_free(NULL);
}

/* ---- File delivery ---- */

struct done {
    int calls;
    int rc;
    char path[512];
    char error[512];
};

static void done_cb(void *data, const struct ar_mail_result *r)
{
    struct done *d = data;
    d->calls++;
    d->rc = r->rc;
    snprintf(d->path, sizeof(d->path), "%s", r->path);
    snprintf(d->error, sizeof(d->error), "%s", r->error);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/ar-mail-test.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return ar_strdup(d);
}

static void rm_rf(const char *dir)
{
    char *cmd = ar_asprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_file_delivery(void **state)
{
    (void)state;
    char *tmp = make_tmpdir();
    char *url = ar_asprintf("file:%s/out/box", tmp);
    struct ar_mail_transport t;
    char err[256];
    assert_int_equal(ar_mail_transport_parse(url, &t, err, sizeof(err)), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *rcpt[] = {"a@example.com"};
    const char msg[] = "Subject: hi\r\n\r\nbody\r\n";
    struct ar_mail_envelope env = {.from = "me@example.com", .rcpt = rcpt, .rcpt_count = 1,
                                   .data = msg, .len = sizeof(msg) - 1, .name = "m-1"};
    struct done d = {0};
    struct ar_mail_delivery *del = NULL;
    assert_int_equal(ar_mail_deliver(&loop, NULL, &t, &env, done_cb, &d, &del), 0);
    assert_int_equal(d.calls, 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, 0);
    char *want = ar_asprintf("%s/out/box/m-1.eml", tmp);
    assert_string_equal(d.path, want);
    char *text;
    size_t len;
    assert_int_equal(ar_read_file(want, 1 << 20, &text, &len), 0);
    assert_int_equal(len, sizeof(msg) - 1);
    assert_memory_equal(text, msg, len);
    free(text);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *dir = ar_asprintf("%s/out/box", tmp);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* A name that could leave the directory is refused. */
    env.name = "../escape";
    assert_int_equal(ar_mail_deliver(&loop, NULL, &t, &env, done_cb, &d, &del), AR_EINVAL);

    /* A cancelled delivery never calls back, and its memory is released by the loop. */
    env.name = "m-2";
    assert_int_equal(ar_mail_deliver(&loop, NULL, &t, &env, done_cb, &d, &del), 0);
    ar_mail_deliver_cancel(del);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(d.calls, 1);

    /* A directory that cannot be created is a clear error. */
    char *blocker = ar_asprintf("%s/file", tmp);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    char *url2 = ar_asprintf("file:%s/sub", blocker);
    struct ar_mail_transport t2;
    assert_int_equal(ar_mail_transport_parse(url2, &t2, err, sizeof(err)), 0);
    env.name = "m-3";
    assert_int_equal(ar_mail_deliver(&loop, NULL, &t2, &env, done_cb, &d, &del), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(d.calls, 2);
    assert_int_not_equal(d.rc, 0);
    assert_non_null(strstr(d.error, "cannot create the directory"));
    assert_string_equal(d.path, "");

    assert_int_equal(uv_loop_close(&loop), 0);
    ar_mail_transport_free(&t);
    ar_mail_transport_free(&t2);
    rm_rf(tmp);
    free(blocker);
    free(url2);
    free(dir);
    free(want);
    free(url);
    free(tmp);
}

/* ---- The outbox table ---- */

static void test_outbox(void **state)
{
    (void)state;
    char *tmp = make_tmpdir();
    char err[256];
    struct ar_history *h;
    struct ar_outbox *ob;
    assert_int_equal(ar_history_open(tmp, &h, err, sizeof(err)), 0);
    assert_int_equal(ar_outbox_open(tmp, &ob, err, sizeof(err)), 0);

    enum ar_outbox_state s;
    char *mid = (char *)"untouched";
    assert_int_equal(ar_outbox_get(ob, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_NONE);
    assert_null(mid);

    struct ar_outbox_entry e = {.key = "k1", .recipe = "r", .run_id = 7, .message_id = "<m1@x>",
                                .recipients = "[\"a@x.org\"]", .subject = "Hi", .now_ms = 1000};
    assert_int_equal(ar_outbox_begin(ob, &e), 0);
    assert_int_equal(ar_outbox_get(ob, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_SENDING);
    assert_null(mid);

    /* A failed attempt can be retried; the second attempt takes the row over. */
    assert_int_equal(ar_outbox_failed(ob, "k1", "550 no", 1500), 0);
    assert_int_equal(ar_outbox_get(ob, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_FAILED);
    e.message_id = "<m2@x>";
    e.now_ms = 2000;
    assert_int_equal(ar_outbox_begin(ob, &e), 0);
    assert_int_equal(ar_outbox_sent(ob, "k1", 2500), 0);
    assert_int_equal(ar_outbox_get(ob, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_SENT);
    assert_string_equal(mid, "<m2@x>");
    free(mid);

    /* A sent key is never taken over, and a late failure does not undo it. */
    e.message_id = "<m3@x>";
    assert_int_equal(ar_outbox_begin(ob, &e), AR_EEXIST);
    assert_int_equal(ar_outbox_failed(ob, "k1", "late", 3000), 0);
    assert_int_equal(ar_outbox_get(ob, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_SENT);
    assert_string_equal(mid, "<m2@x>");
    free(mid);

    /* Each write is committed at once: a second connection sees it. */
    struct ar_outbox *other;
    assert_int_equal(ar_outbox_open(tmp, &other, err, sizeof(err)), 0);
    assert_int_equal(ar_outbox_get(other, "k1", &s, &mid), 0);
    assert_int_equal(s, AR_OUTBOX_SENT);
    free(mid);
    ar_outbox_close(other);

    /* The history's grouped transaction holds the write lock until it commits. */
    struct ar_run_record rec = {.recipe = "r", .trigger = "cli", .status = "running"};
    int64_t id;
    assert_int_equal(ar_history_run_insert(h, &rec, &id), 0);
    assert_int_equal(ar_history_commit(h), 0);
    e.key = "k2";
    assert_int_equal(ar_outbox_begin(ob, &e), 0);

    ar_outbox_close(ob);
    ar_outbox_close(NULL);
    ar_history_close(h);

    /* Without the history database there is no outbox. */
    char *none = ar_asprintf("%s/none", tmp);
    assert_int_not_equal(ar_outbox_open(none, &ob, err, sizeof(err)), 0);
    free(none);
    rm_rf(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cesu_pair_becomes_four_bytes),
        cmocka_unit_test(test_cesu_leaves_utf8_alone),
        cmocka_unit_test(test_cesu_lone_surrogates_become_fffd),
        cmocka_unit_test(test_transport_file),
        cmocka_unit_test(test_transport_smtp),
        cmocka_unit_test(test_transport_refused),
        cmocka_unit_test(test_file_delivery),
        cmocka_unit_test(test_outbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
