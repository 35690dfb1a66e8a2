/* Unit tests: the poller's pure parts (backoff, identifiers) and the poll state it keeps in
 * history.db (cursor, seen-id set and its bound, deleting internal runs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "db/history.h"
#include "trigger/poller.h"

static void test_backoff(void **state)
{
    assert_int_equal(ar_poller_backoff_ms(1000, 0), 1000);
    assert_int_equal(ar_poller_backoff_ms(1000, 1), 2000);
    assert_int_equal(ar_poller_backoff_ms(1000, 3), 8000);
    /* Capped at 15 minutes... */
    assert_int_equal(ar_poller_backoff_ms(60000, 10), AR_POLL_BACKOFF_CAP_MS);
    assert_int_equal(ar_poller_backoff_ms(60000, 1000000), AR_POLL_BACKOFF_CAP_MS);
    /* ...unless the interval itself is longer: failures never poll more often. */
    assert_int_equal(ar_poller_backoff_ms(3600000, 5), 3600000);
}

static void test_identifiers(void **state)
{
    assert_true(ar_poller_ident_valid("customers", 0));
    assert_true(ar_poller_ident_valid("_x9", 0));
    assert_true(ar_poller_ident_valid("public.signups", 1));
    assert_false(ar_poller_ident_valid("public.signups", 0));
    assert_false(ar_poller_ident_valid("a.b.c", 1));
    assert_false(ar_poller_ident_valid("9lives", 0));
    assert_false(ar_poller_ident_valid("", 0));
    assert_false(ar_poller_ident_valid(".x", 1));
    assert_false(ar_poller_ident_valid("x.", 1));
    assert_false(ar_poller_ident_valid("customers; DROP TABLE x", 1));
    assert_false(ar_poller_ident_valid("\"quoted\"", 0));
    assert_false(ar_poller_ident_valid("na me", 0));
    assert_false(ar_poller_ident_valid(NULL, 0));
}

struct fixture {
    char dir[64];
    struct ar_history *h;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ar-test-poller.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    assert_int_equal(ar_history_open(f->dir, &f->h, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ar_history_close(f->h);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_state_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct ar_poll_state st = {0};
    assert_int_equal(ar_history_poll_get(f->h, "r", "poll z.fn", &st), AR_ENOENT);
    struct ar_poll_state w = {
        .cursor = "{\"after\":\"abc\"}",
        .baseline_at = 1000,
        .last_poll_at = 2000,
        .last_ok_at = 1500,
        .errors = 2,
        .last_error = "HttpError: 503",
        .next_poll_at = 6000,
        .fired = 7,
    };
    assert_int_equal(ar_history_poll_put(f->h, "r", "poll z.fn", &w), 0);
    assert_int_equal(ar_history_commit(f->h), 0);
    assert_int_equal(ar_history_poll_get(f->h, "r", "poll z.fn", &st), 0);
    assert_string_equal(st.trigger, "poll z.fn");
    assert_string_equal(st.cursor, "{\"after\":\"abc\"}");
    assert_int_equal(st.baseline_at, 1000);
    assert_int_equal(st.errors, 2);
    assert_string_equal(st.last_error, "HttpError: 503");
    assert_int_equal(st.next_poll_at, 6000);
    assert_int_equal(st.fired, 7);
    ar_poll_state_free(&st);
    /* Another recipe's trigger of the same name is another row. */
    assert_int_equal(ar_history_poll_get(f->h, "other", "poll z.fn", &st), AR_ENOENT);
}

static void test_seen_set_is_bounded(void **state)
{
    struct fixture *f = *state;
    char id[16];
    for (int i = 1; i <= 50; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(ar_history_poll_see(f->h, "r", "row db.t.id", id, i), 0);
    }
    /* Seeing an id again is harmless. */
    assert_int_equal(ar_history_poll_see(f->h, "r", "row db.t.id", "7", 99), 0);
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.id", "1"), 0);
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.id", "51"), AR_ENOENT);
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.other", "1"), AR_ENOENT);
    assert_int_equal(ar_history_poll_see(f->h, "r", "row db.t.other", "1", 1), 0);

    assert_int_equal(ar_history_poll_trim(f->h, "r", "row db.t.id", 10), 0);
    assert_int_equal(ar_history_commit(f->h), 0);
    /* The newest ten stay; the others, and no other trigger's ids, go. */
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.id", "40"), AR_ENOENT);
    for (int i = 41; i <= 50; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.id", id), 0);
    }
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.other", "1"), 0);
    /* Trimming below the bound changes nothing. */
    assert_int_equal(ar_history_poll_trim(f->h, "r", "row db.t.id", 10), 0);
    assert_int_equal(ar_history_poll_seen(f->h, "r", "row db.t.id", "41"), 0);
}

static void test_run_delete(void **state)
{
    struct fixture *f = *state;
    struct ar_run_record rec = {.recipe = "r", .trigger = AR_POLL_RUN_TRIGGER,
                                .status = "running", .started_at = 1};
    int64_t a, b, c, n = -1;
    assert_int_equal(ar_history_run_insert(f->h, &rec, &a), 0);
    assert_int_equal(ar_history_run_insert(f->h, &rec, &b), 0);
    rec.trigger = "cli";
    assert_int_equal(ar_history_run_insert(f->h, &rec, &c), 0);
    struct ar_log_record l = {.at = 1, .level = "info", .message = "x"};
    assert_int_equal(ar_history_log_insert(f->h, a, 1, &l), 0);
    assert_int_equal(ar_history_run_delete(f->h, a), 0);
    struct ar_run_record out;
    assert_int_equal(ar_history_get(f->h, a, &out), AR_ENOENT);
    /* Runs of that trigger left running go; others stay. */
    assert_int_equal(ar_history_run_delete_running(f->h, AR_POLL_RUN_TRIGGER, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ar_history_get(f->h, b, &out), AR_ENOENT);
    assert_int_equal(ar_history_get(f->h, c, &out), 0);
    ar_run_record_free(&out);
    assert_int_equal(ar_history_commit(f->h), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test_setup_teardown(test_state_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seen_set_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
