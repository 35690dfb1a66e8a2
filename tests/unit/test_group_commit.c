/* Group commit in the service's queue (src/core/queue.c with a durable history): a commit only
 * writes the WAL, a worker thread syncs it, and neither a run nor a durability callback happens
 * for an event before the sync that covers its commit has ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "core/queue.h"
#include "db/history.h"
#include "engine_fixture.h"

static struct ar_queue *queue;
static uint64_t durable_upto;
static int durable_calls;
static int durable_status;

static void durable_cb(void *data, uint64_t upto, int status)
{
    (void)data;
    durable_upto = upto;
    durable_status = status;
    durable_calls++;
}

static int setup(void **state)
{
    (void)state;
    fixture_make_dir("gcommit");
    fixture_load_config(NULL, NULL);
    write_recipe("quick", "exports.run = function (e) { return { n: e.n }; };\n");
    fixture_create_engine();
    /* As the service does: durable first, then the queue defers the syncs. */
    assert_int_equal(ar_history_set_durable(engine->history, 1), 0);
    assert_int_equal(ar_queue_create(engine, NULL, &queue), 0);
    assert_true(ar_history_sync_deferred(engine->history));
    ar_queue_on_durable(queue, durable_cb, NULL);
    durable_upto = 0;
    durable_calls = 0;
    durable_status = -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ar_queue_close(queue);
    uv_run(&engine->loop, UV_RUN_DEFAULT);
    return fixture_teardown(state);
}

static int64_t push(int n)
{
    char input[32];
    snprintf(input, sizeof(input), "{\"n\":%d}", n);
    struct ar_queue_event ev = {.recipe = "quick", .trigger = "webhook", .input_json = input};
    int64_t id = 0;
    enum ar_queue_outcome outcome;
    assert_int_equal(ar_queue_push(queue, &ev, &id, &outcome), 0);
    assert_int_equal(outcome, AR_QUEUE_QUEUED);
    return id;
}

static void status_is(int64_t id, const char *status)
{
    struct ar_run_record r;
    assert_int_equal(ar_history_get(engine->history, id, &r), 0);
    assert_string_equal(r.status, status);
    ar_run_record_free(&r);
}

static void test_runs_wait_for_the_sync(void **state)
{
    (void)state;
    int64_t a = push(1), b = push(2);
    assert_int_equal(ar_queue_commit(queue), 0);
    uint64_t commit = ar_queue_committed(queue);
    assert_true(commit > 0);
    /* The sync ends on a worker thread but is only taken into account on the loop: until the
     * loop turns, the commit is not known durable and nothing has started. */
    assert_true(ar_queue_durable(queue) < commit);
    assert_int_equal(durable_calls, 0);
    assert_int_equal(ar_queue_depth(queue), 2);
    assert_int_equal(engine->runs_active, 0);
    status_is(a, "queued");

    for (int i = 0; i < 5000 && durable_upto < commit; i++) {
        uv_run(&engine->loop, UV_RUN_ONCE);
    }
    assert_true(durable_upto >= commit);
    assert_int_equal(durable_status, 0);
    assert_true(ar_queue_durable(queue) >= commit);
    /* Now the runs go (from the queue's idle callback) and their ends are committed too. */
    for (int i = 0; i < 5000 && ar_queue_depth(queue) > 0; i++) {
        assert_int_equal(ar_queue_commit(queue), 0);
        uv_run(&engine->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(ar_queue_depth(queue), 0);
    assert_int_equal(ar_queue_commit(queue), 0);
    status_is(a, "succeeded");
    status_is(b, "succeeded");
}

static void test_sync_now(void **state)
{
    (void)state;
    int64_t a = push(3);
    assert_int_equal(ar_queue_commit(queue), 0);
    uint64_t commit = ar_queue_committed(queue);
    assert_int_equal(ar_queue_sync(queue), 0);
    assert_int_equal(ar_queue_durable(queue), commit);
    assert_int_equal(durable_upto, commit);
    assert_int_equal(durable_status, 0);
    /* Later commits are not covered until their own sync. */
    push(4);
    assert_int_equal(ar_queue_commit(queue), 0);
    assert_true(ar_queue_committed(queue) > commit);
    assert_true(ar_queue_durable(queue) < ar_queue_committed(queue));
    status_is(a, "queued");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runs_wait_for_the_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_now, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
