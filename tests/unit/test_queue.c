/* Queue tests with a real engine: a fire that finds a concurrency: 1 recipe busy is recorded
 * as skipped with the reason, concurrency holds, dedup keys answer duplicates, failed runs are
 * retried with backoff until they succeed (and a watch follows the chain), and the backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "db/history.h"
#include "engine_fixture.h"

static struct ar_metrics *metrics;
static struct ar_queue *queue;

static int setup(void **state)
{
    (void)state;
    fixture_make_dir("queue");
    fixture_load_config(NULL, NULL);
    /* Runs until the test writes the gate file beside it. */
    write_recipe("one", "exports.concurrency = 1;\n"
                        "exports.run = function (e, ctx) {\n"
                        "  for (;;) { try { ctx.file('gate.txt'); break; } catch (x) { sleep(5); } }\n"
                        "  return { n: e.n };\n"
                        "};");
    write_recipe("flaky", "exports.retries = { max: 3, backoff: '10ms' };\n"
                          "exports.run = function (e, ctx) {\n"
                          "  if (ctx.attempt < 3) { throw new Error('attempt ' + ctx.attempt); }\n"
                          "  return { attempt: ctx.attempt };\n"
                          "};");
    write_recipe("hopeless", "exports.retries = { max: 1, backoff: '5ms' };\n"
                             "exports.run = function () { throw new Error('never'); };");
    fixture_create_engine();
    metrics = ar_metrics_create();
    assert_int_equal(ar_queue_create(engine, metrics, &queue), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_queue_close(queue);
    uv_run(&engine->loop, UV_RUN_DEFAULT);
    ar_metrics_destroy(metrics);
    return fixture_teardown(state);
}

/* Turns the loop, committing as the service does each iteration, until *flag is set. */
static void spin_until(const int *flag)
{
    for (int i = 0; i < 20000 && !*flag; i++) {
        assert_int_equal(ar_queue_commit(queue), 0);
        uv_run(&engine->loop, UV_RUN_NOWAIT);
        if (!*flag) {
            uv_sleep(1);
        }
    }
    assert_true(*flag);
}

static int64_t push(const char *recipe, const char *input, const char *key, int flags,
                    enum ar_queue_outcome expect)
{
    struct ar_queue_event ev = {
        .recipe = recipe, .trigger = "cron", .input_json = input, .dedup_key = key, .flags = flags,
    };
    int64_t id = 0;
    enum ar_queue_outcome outcome;
    assert_int_equal(ar_queue_push(queue, &ev, &id, &outcome), 0);
    assert_int_equal(outcome, expect);
    assert_true(id > 0);
    return id;
}

static void status_is(int64_t id, const char *status, const char *error_part)
{
    struct ar_run_record r;
    assert_int_equal(ar_history_get(engine->history, id, &r), 0);
    assert_string_equal(r.status, status);
    if (error_part) {
        assert_non_null(r.error);
        if (strstr(r.error, error_part) == NULL) {
            fail_msg("run %lld error '%s' lacks '%s'", (long long)id, r.error, error_part);
        }
    }
    ar_run_record_free(&r);
}

struct watched {
    int done;
    int64_t run_id;
    char status[32];
    char result[128];
};

static void watch_cb(void *data, const struct ar_queue_result *r)
{
    struct watched *w = data;
    w->done = 1;
    w->run_id = r->run_id;
    snprintf(w->status, sizeof(w->status), "%s", r->status);
    snprintf(w->result, sizeof(w->result), "%s", r->result_json ? r->result_json : "");
}

static void open_gate(int open)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/recipes/gate.txt", dir);
    if (open) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
    } else {
        unlink(path);
    }
}

static int running_of(const char *name)
{
    struct ar_recipe *r;
    char err[256];
    assert_int_equal(ar_engine_recipe(engine, name, &r, err, sizeof(err)), 0);
    return r->running;
}

static void test_busy_fire_is_skipped(void **state)
{
    (void)state;
    open_gate(0);
    struct watched w1 = {0}, w2 = {0};
    int64_t first = push("one", "{\"n\":1}", NULL, AR_QUEUE_SKIP_IF_BUSY, AR_QUEUE_QUEUED);
    ar_queue_watch(queue, first, watch_cb, &w1, NULL);
    /* Not committed yet: a second fire already finds one run waiting. */
    int64_t early = push("one", "{\"n\":2}", NULL, AR_QUEUE_SKIP_IF_BUSY, AR_QUEUE_SKIPPED);
    status_is(early, "skipped", "1 earlier run(s) were still waiting to start");
    assert_int_equal(ar_queue_depth(queue), 1);

    int started = 0;
    for (int i = 0; i < 2000 && !started; i++) {
        assert_int_equal(ar_queue_commit(queue), 0);
        uv_run(&engine->loop, UV_RUN_NOWAIT);
        started = running_of("one") == 1;
    }
    assert_true(started);
    status_is(first, "running", NULL);
    char why[96];
    snprintf(why, sizeof(why), "the previous run (%lld) was still running", (long long)first);
    int64_t busy = push("one", "{\"n\":3}", NULL, AR_QUEUE_SKIP_IF_BUSY, AR_QUEUE_SKIPPED);
    status_is(busy, "skipped", why);

    /* An event without the flag (a webhook) waits its turn instead: concurrency 1 holds. */
    int64_t second = push("one", "{\"n\":4}", NULL, 0, AR_QUEUE_QUEUED);
    ar_queue_watch(queue, second, watch_cb, &w2, NULL);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ar_queue_commit(queue), 0);
        uv_run(&engine->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_int_equal(running_of("one"), 1);
    status_is(second, "queued", NULL);
    assert_int_equal(ar_queue_depth(queue), 1);

    open_gate(1);
    spin_until(&w1.done);
    assert_string_equal(w1.status, "succeeded");
    assert_string_equal(w1.result, "{\"n\":1}");
    spin_until(&w2.done);
    assert_string_equal(w2.result, "{\"n\":4}");
    assert_int_equal(ar_metrics_runs(metrics, "one", "skipped"), 2);
    assert_int_equal(ar_metrics_runs(metrics, "one", "succeeded"), 2);
    assert_int_equal(ar_queue_depth(queue), 0);

    /* Idle again: a fire is queued, not skipped. */
    struct watched w3 = {0};
    int64_t third = push("one", "{\"n\":5}", NULL, AR_QUEUE_SKIP_IF_BUSY, AR_QUEUE_QUEUED);
    ar_queue_watch(queue, third, watch_cb, &w3, NULL);
    spin_until(&w3.done);
    assert_string_equal(w3.status, "succeeded");
}

static void test_dedup(void **state)
{
    (void)state;
    open_gate(1);
    int64_t a = push("one", "{\"n\":1}", "test key-1", 0, AR_QUEUE_QUEUED);
    /* Seen in the same batch, before the commit, and after it. */
    assert_int_equal(push("one", "{\"n\":1}", "test key-1", 0, AR_QUEUE_DUPLICATE), a);
    assert_int_equal(ar_queue_commit(queue), 0);
    assert_int_equal(push("one", "{\"n\":1}", "test key-1", 0, AR_QUEUE_DUPLICATE), a);
    int64_t b = push("one", "{\"n\":2}", "test key-2", 0, AR_QUEUE_QUEUED);
    assert_true(b != a);
    struct watched w = {0};
    ar_queue_watch(queue, b, watch_cb, &w, NULL);
    spin_until(&w.done);
}

static void test_retries_follow_the_chain(void **state)
{
    (void)state;
    struct watched w = {0};
    int64_t first = push("flaky", "{}", NULL, 0, AR_QUEUE_QUEUED);
    ar_queue_watch(queue, first, watch_cb, &w, NULL);
    spin_until(&w.done);
    /* The watch fired once, for the attempt that ended the chain. */
    assert_string_equal(w.status, "succeeded");
    assert_string_equal(w.result, "{\"attempt\":3}");
    assert_true(w.run_id > first);
    status_is(first, "failed", "attempt 1");
    struct ar_run_record r;
    assert_int_equal(ar_history_get(engine->history, w.run_id, &r), 0);
    assert_int_equal(r.attempt, 3);
    ar_run_record_free(&r);
    assert_int_equal(ar_metrics_runs(metrics, "flaky", "failed"), 2);

    /* Out of retries: the last failure is what the watch sees and history keeps. */
    struct watched h = {0};
    int64_t hid = push("hopeless", "{}", NULL, 0, AR_QUEUE_QUEUED);
    ar_queue_watch(queue, hid, watch_cb, &h, NULL);
    spin_until(&h.done);
    assert_string_equal(h.status, "failed");
    assert_true(h.run_id != hid);
    status_is(h.run_id, "failed", "never");
    assert_int_equal(ar_queue_depth(queue), 0);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(ar_queue_backoff_ms(0, 1), 0);
    assert_int_equal(ar_queue_backoff_ms(1000, 1), 1000);
    assert_int_equal(ar_queue_backoff_ms(1000, 2), 2000);
    assert_int_equal(ar_queue_backoff_ms(1000, 4), 8000);
    assert_int_equal(ar_queue_backoff_ms(3600 * 1000LL, 40), 24 * 3600 * 1000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_fire_is_skipped),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_retries_follow_the_chain),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
