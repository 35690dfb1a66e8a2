/* Unit tests for the per-host rate limit and admission gate (src/net/ratelimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/util.h"
#include "net/ratelimit.h"

static void test_ratelimit_rejects_bad_settings(void **state)
{
    (void)state;
    struct ar_ratelimit rl;
    assert_int_equal(ar_ratelimit_init(&rl, 10, 0), AR_EINVAL);
    assert_int_equal(ar_ratelimit_init(&rl, AR_RATELIMIT_MAX + 1, 1000), AR_EINVAL);
    assert_int_equal(ar_ratelimit_init(&rl, 0, 0), 0);
    /* No limit: always free, take and put are no-ops. */
    assert_int_equal(ar_ratelimit_wait(&rl, 0), 0);
    ar_ratelimit_take(&rl, 0);
    ar_ratelimit_put(&rl, 0);
    assert_int_equal(ar_ratelimit_wait(&rl, 0), 0);
    ar_ratelimit_free(&rl);
}

static void test_ratelimit_burst_then_window(void **state)
{
    (void)state;
    struct ar_ratelimit rl;
    assert_int_equal(ar_ratelimit_init(&rl, 3, 1000), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ar_ratelimit_wait(&rl, 100), 0);
        ar_ratelimit_take(&rl, 100);
    }
    /* Every token is held by a running request: only an end can free one. */
    assert_int_equal(ar_ratelimit_wait(&rl, 100), -1);
    ar_ratelimit_put(&rl, 150);
    /* The token is back one whole window after the request ended, not after it started: a
     * millisecond later than the window, since an end read as 150 may be at 150.9. */
    assert_int_equal(ar_ratelimit_wait(&rl, 150), 1001);
    assert_int_equal(ar_ratelimit_wait(&rl, 1150), 1);
    assert_int_equal(ar_ratelimit_wait(&rl, 1151), 0);
    ar_ratelimit_put(&rl, 300);
    ar_ratelimit_put(&rl, 400);
    assert_int_equal(ar_ratelimit_wait(&rl, 1151), 0);
    ar_ratelimit_take(&rl, 1151);
    /* The next to come back is the one that ended at 300. */
    assert_int_equal(ar_ratelimit_wait(&rl, 1151), 150);
    ar_ratelimit_free(&rl);
}

/* Simulates requests with a fixed latency through the limiter and checks, on the "server's"
 * clock (arrival = start), that no window of per_ms ever holds more than rate arrivals. */
static void test_ratelimit_window_never_exceeded(void **state)
{
    (void)state;
    enum { RATE = 5, PER = 1000, N = 60, LATENCY = 37 };
    struct ar_ratelimit rl;
    int64_t start[N], end[N];
    assert_int_equal(ar_ratelimit_init(&rl, RATE, PER), 0);
    int64_t now = 0;
    int started = 0, ended = 0;
    while (ended < N) {
        /* Start everything that may start now, then move to the next event. */
        while (started < N && ar_ratelimit_wait(&rl, now) == 0) {
            ar_ratelimit_take(&rl, now);
            start[started] = now;
            end[started] = now + LATENCY;
            started++;
        }
        int64_t next = INT64_MAX;
        for (int i = ended; i < started; i++) {
            if (end[i] < next) {
                next = end[i];
            }
        }
        int64_t w = started < N ? ar_ratelimit_wait(&rl, now) : -1;
        if (w > 0 && now + w < next) {
            now += w;
            continue;
        }
        assert_true(next != INT64_MAX);
        now = next;
        while (ended < started && end[ended] <= now) {
            ar_ratelimit_put(&rl, end[ended]);
            ended++;
        }
    }
    for (int i = 0; i + RATE < N; i++) {
        /* The (RATE+1)-th arrival after i is at least one window later. */
        assert_true(start[i + RATE] - start[i] >= PER);
    }
    /* And the limiter is not needlessly slow: one window plus one latency per RATE. */
    assert_true(start[N - 1] <= (N / RATE) * (PER + LATENCY));
    ar_ratelimit_free(&rl);
}

struct req {
    struct ar_gate_waiter w;
    int id;
};

static int id_of(struct ar_gate_waiter *w)
{
    return ar_container_of(w, struct req, w)->id;
}

static void test_gate_concurrency_fifo(void **state)
{
    (void)state;
    struct ar_gate g;
    struct req r[5];
    int64_t wait;
    assert_int_equal(ar_gate_init(&g, 2, 0, 0), 0);
    for (int i = 0; i < 5; i++) {
        r[i].id = i;
    }
    assert_int_equal(ar_gate_enter(&g, &r[0].w, 0), 1);
    assert_int_equal(ar_gate_enter(&g, &r[1].w, 0), 1);
    assert_int_equal(ar_gate_enter(&g, &r[2].w, 0), 0);
    assert_int_equal(ar_gate_enter(&g, &r[3].w, 0), 0);
    assert_true(ar_gate_queued(&r[2].w));
    assert_false(ar_gate_queued(&r[0].w));
    assert_null(ar_gate_next(&g, 0, &wait));
    assert_int_equal(wait, -1);
    ar_gate_leave(&g, 5);
    /* A newcomer does not overtake those who wait, even though a slot is free. */
    assert_int_equal(ar_gate_enter(&g, &r[4].w, 5), 0);
    struct ar_gate_waiter *w = ar_gate_next(&g, 5, &wait);
    assert_non_null(w);
    assert_int_equal(id_of(w), 2);
    assert_null(ar_gate_next(&g, 5, &wait));
    /* A waiter that gives up leaves the queue; the order of the others holds. */
    ar_gate_remove(&g, &r[3].w);
    assert_false(ar_gate_queued(&r[3].w));
    ar_gate_remove(&g, &r[3].w); /* twice is harmless */
    ar_gate_leave(&g, 6);
    w = ar_gate_next(&g, 6, &wait);
    assert_non_null(w);
    assert_int_equal(id_of(w), 4);
    assert_null(ar_gate_next(&g, 6, &wait));
    assert_int_equal(wait, -1);
    assert_int_equal(g.active, 2);
    ar_gate_free(&g);
}

static void test_gate_rate_and_pause(void **state)
{
    (void)state;
    struct ar_gate g;
    struct req r[4];
    int64_t wait;
    assert_int_equal(ar_gate_init(&g, 0, 2, 100), 0);
    for (int i = 0; i < 4; i++) {
        r[i].id = i;
    }
    assert_int_equal(ar_gate_enter(&g, &r[0].w, 0), 1);
    assert_int_equal(ar_gate_enter(&g, &r[1].w, 0), 1);
    assert_int_equal(ar_gate_enter(&g, &r[2].w, 0), 0);
    ar_gate_leave(&g, 10);
    ar_gate_leave(&g, 20);
    assert_null(ar_gate_next(&g, 20, &wait));
    assert_int_equal(wait, 91); /* the first token is back at 10 + 100 + 1 */
    assert_null(ar_gate_next(&g, 110, &wait));
    struct ar_gate_waiter *w = ar_gate_next(&g, 111, &wait);
    assert_non_null(w);
    assert_int_equal(id_of(w), 2);
    /* A pause holds everyone, even with tokens to spare. */
    ar_gate_pause(&g, 500);
    ar_gate_pause(&g, 300); /* an earlier pause does not shorten it */
    assert_int_equal(ar_gate_enter(&g, &r[3].w, 200), 0);
    assert_null(ar_gate_next(&g, 200, &wait));
    assert_int_equal(wait, 300);
    w = ar_gate_next(&g, 500, &wait);
    assert_non_null(w);
    assert_int_equal(id_of(w), 3);
    ar_gate_free(&g);
}

static void test_gate_set_changes_limits(void **state)
{
    (void)state;
    struct ar_gate g;
    struct req r[3];
    int64_t wait;
    assert_int_equal(ar_gate_init(&g, 1, 0, 0), 0);
    assert_int_equal(ar_gate_enter(&g, &r[0].w, 0), 1);
    assert_int_equal(ar_gate_enter(&g, &r[1].w, 0), 0);
    assert_int_equal(ar_gate_set(&g, 3, 0, 0), 0);
    assert_non_null(ar_gate_next(&g, 0, &wait));
    assert_int_equal(ar_gate_set(&g, 0, 1, 1000), 0);
    assert_int_equal(ar_gate_set(&g, 0, AR_RATELIMIT_MAX + 1, 1000), AR_EINVAL);
    /* The limits are still the previous ones after a refused change. */
    assert_int_equal(g.rl.rate, 1);
    assert_int_equal(ar_gate_enter(&g, &r[2].w, 0), 1);
    ar_gate_leave(&g, 50);
    assert_int_equal(ar_ratelimit_wait(&g.rl, 50), 1001);
    /* Shrinking keeps the most recent end times. */
    assert_int_equal(ar_gate_set(&g, 0, 1, 2000), 0);
    assert_int_equal(ar_ratelimit_wait(&g.rl, 50), 2001);
    ar_gate_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_rejects_bad_settings),
        cmocka_unit_test(test_ratelimit_burst_then_window),
        cmocka_unit_test(test_ratelimit_window_never_exceeded),
        cmocka_unit_test(test_gate_concurrency_fifo),
        cmocka_unit_test(test_gate_rate_and_pause),
        cmocka_unit_test(test_gate_set_changes_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
