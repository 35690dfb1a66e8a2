/* Engine tests: many runs in one process. A run that loops, exhausts its heap or
 * throws fails alone while the others finish; waits work inside every callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "db/history.h"
#include "engine_fixture.h"

static int setup(void **state)
{
    fixture_make_dir("engine");
    setenv("AUTORUN_RUN_HEAP", "8M", 1);
    fixture_load_config(NULL, NULL);
    write_recipe("ok", "exports.run = function (e) { sleep(5); return { n: e.n }; };");
    write_recipe("loop", "exports.timeout = '300ms';\n"
                         "exports.run = function () { for (;;) {} };");
    write_recipe("bomb", "exports.run = function () {\n"
                         "  var a = [];\n"
                         "  for (;;) { try { a.push([a.length, {x: a.length}]); } catch (e) {} }\n"
                         "};");
    write_recipe("throws", "exports.run = function () { sleep(1); null.x; };");
    write_recipe("waits",
                 "function w(x) { sleep(1); return x; }\n"
                 "exports.run = function () {\n"
                 "  var a = [1, 2, 3], out = {};\n"
                 "  a.forEach(function (x) { out.forEach = (out.forEach || 0) + w(x); });\n"
                 "  out.map = a.map(function (x) { return w(x) * 2; });\n"
                 "  out.filter = a.filter(function (x) { return w(x) > 1; });\n"
                 "  out.reduce = a.reduce(function (s, x) { return s + w(x); }, 0);\n"
                 "  out.reduceRight = a.reduceRight(function (s, x) { return s + w(x); }, '');\n"
                 "  out.some = a.some(function (x) { return w(x) === 2; });\n"
                 "  out.every = a.every(function (x) { return w(x) > 0; });\n"
                 "  out.parallel = parallel(a, function (x, i) { return w(x) + i; });\n"
                 "  return out;\n"
                 "};");
    write_recipe("partial",
                 "exports.run = function () {\n"
                 "  try { parallel([0, 1, 2, 3], function (x) { sleep(1); if (x % 2) throw new "
                 "Error('odd ' + x); return x; }, {concurrency: 2}); }\n"
                 "  catch (e) { return { name: e.name, failed: e.failed, results: e.results, "
                 "message: e.message }; }\n"
                 "};");
    fixture_create_engine();
    return 0;
}

static int teardown(void **state)
{
    unsetenv("AUTORUN_RUN_HEAP");
    return fixture_teardown(state);
}

static void test_bad_runs_fail_alone(void **state)
{
    struct outcome ok[20] = {{0}}, loop = {0}, bomb = {0}, thrower = {0};
    start_run("loop", NULL, &loop);
    start_run("bomb", NULL, &bomb);
    start_run("throws", NULL, &thrower);
    for (int i = 0; i < 20; i++) {
        char input[32];
        snprintf(input, sizeof(input), "{\"n\": %d}", i);
        start_run("ok", input, &ok[i]);
    }
    ar_engine_run_loop(engine);
    for (int i = 0; i < 20; i++) {
        char expect[32];
        snprintf(expect, sizeof(expect), "{\"n\":%d}", i);
        assert_true(ok[i].done);
        assert_int_equal(ok[i].status, AR_RUN_SUCCEEDED);
        assert_string_equal(ok[i].result, expect);
        outcome_free(&ok[i]);
    }
    assert_int_equal(loop.status, AR_RUN_FAILED);
    assert_non_null(strstr(loop.error, "TimeoutError"));
    assert_int_equal(bomb.status, AR_RUN_FAILED);
    assert_non_null(strstr(bomb.error, "more than its 8 MiB"));
    assert_int_equal(thrower.status, AR_RUN_FAILED);
    assert_non_null(strstr(thrower.error, "TypeError"));
    assert_non_null(strstr(thrower.error, "throws.js:1"));
    outcome_free(&loop);
    outcome_free(&bomb);
    outcome_free(&thrower);

    /* The engine is still fine: a new run succeeds after all that. */
    struct outcome after = {0};
    start_run("ok", "{\"n\": 99}", &after);
    ar_engine_run_loop(engine);
    assert_int_equal(after.status, AR_RUN_SUCCEEDED);
    outcome_free(&after);
    assert_int_equal(engine->runs_active, 0);
}

static void test_waits_inside_callbacks(void **state)
{
    struct outcome o = {0};
    start_run("waits", NULL, &o);
    ar_engine_run_loop(engine);
    assert_int_equal(o.status, AR_RUN_SUCCEEDED);
    assert_string_equal(o.result, "{\"forEach\":6,\"map\":[2,4,6],\"filter\":[2,3],\"reduce\":6,"
                                  "\"reduceRight\":\"321\",\"some\":true,\"every\":true,"
                                  "\"parallel\":[1,3,5]}");
    outcome_free(&o);
}

static void test_parallel_aggregate_error(void **state)
{
    struct outcome o = {0};
    start_run("partial", NULL, &o);
    ar_engine_run_loop(engine);
    assert_int_equal(o.status, AR_RUN_SUCCEEDED);
    assert_non_null(strstr(o.result, "\"name\":\"ParallelError\""));
    assert_non_null(strstr(o.result, "\"failed\":[1,3]"));
    assert_non_null(strstr(o.result, "\"results\":[0,null,2,null]"));
    assert_non_null(strstr(o.result, "2 of 4 failed (indexes 1, 3); first: Error: odd 1"));
    outcome_free(&o);
}

static void test_thousands_suspended(void **state)
{
    enum { N = 3000 };
    struct outcome *o = calloc(N, sizeof(*o));
    for (int i = 0; i < N; i++) {
        start_run("ok", "{\"n\": 1}", &o[i]);
    }
    assert_int_equal(engine->runs_active, N);
    ar_engine_run_loop(engine);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].status, AR_RUN_SUCCEEDED);
        outcome_free(&o[i]);
    }
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_runs_fail_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_inside_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_aggregate_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousands_suspended, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
