/* The native plugin loader and the poll-source registry, with the test plugins built into
 * <build>/tests/plugins: poll sources that answer at once, later, with errors, or are
 * cancelled; suspended calls cancelled by an aborted run; refusals; settings from the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "plugin/loader.h"
#include "engine_fixture.h"

struct poll_outcome {
    int calls;
    int rc;
    char *items;
    char *cursor;
    char *error;
};

static int setup(void **state)
{
    fixture_make_dir("plugin");
    char home[128], conf[160], plugins[4096];
    snprintf(home, sizeof(home), "%s/home", dir);
    assert_int_equal(ar_mkdir_p(home, 0700), 0);
    /* The test plugins are built beside this executable, in plugins/. */
    size_t len = sizeof(plugins) - 16;
    assert_int_equal(uv_exepath(plugins, &len), 0);
    strcpy(strrchr(plugins, '/'), "/plugins");
    snprintf(conf, sizeof(conf), "%s/autorun.conf", home);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("plugin.abi_test.greeting = from the file\nplugin.abi_test.other = 2\n", f);
    fclose(f);
    fixture_load_config(plugins, conf);
    write_recipe("hang", "exports.timeout = '100ms';\n"
                         "exports.run = function () { require('abi_test').hang(); };");
    write_recipe("counters", "exports.run = function () {\n"
                             "  var t = require('abi_test');\n"
                             "  return [t.counters(), t.setting('greeting'), t.setting('other'),\n"
                             "          t.setting('missing')];\n"
                             "};");
    fixture_create_engine();
    return 0;
}

static void poll_done_cb(void *data, int rc, const char *items, const char *cursor,
                         const char *error)
{
    struct poll_outcome *o = data;
    o->calls++;
    o->rc = rc;
    o->items = ar_strdup(items);
    o->cursor = ar_strdup(cursor);
    o->error = ar_strdup(error);
}

static void poll_outcome_free(struct poll_outcome *o)
{
    free(o->items);
    free(o->cursor);
    free(o->error);
    memset(o, 0, sizeof(*o));
}

static void test_lookup(void **state)
{
    assert_non_null(ar__plugin_poll_source(engine, "abi_test.items"));
    assert_string_equal(ar__plugin_poll_source(engine, "abi_test.items")->name, "abi_test.items");
    assert_null(ar__plugin_poll_source(engine, "abi_test.nope"));
    assert_null(ar__plugin_poll_source(engine, "nothere.items"));
    assert_null(ar__plugin_poll_source(engine, "noprefix"));
    assert_null(ar__plugin_poll_source(engine, "../x.items"));
    /* A refused plugin provides nothing and says why. */
    assert_null(ar__plugin_poll_source(engine, "abi_wrong.items"));
    assert_non_null(ar__plugin_error("abi_wrong"));
    assert_non_null(strstr(ar__plugin_error("abi_wrong"),
                           "abi_wrong.so: built for plugin ABI 2, this autorun has 1"));
    assert_null(ar__plugin_error("abi_test"));
}

static void test_poll_at_once(void **state)
{
    const struct ar__poll_source *src = ar__plugin_poll_source(engine, "abi_test.items");
    assert_non_null(src);
    struct poll_outcome o = {0};
    struct ar_poll *p = (struct ar_poll *)&o; /* must be overwritten */
    assert_int_equal(ar__plugin_poll_start(engine, src, "{\"every\":\"1m\"}", NULL, poll_done_cb,
                                           &o, &p),
                     0);
    /* Done before start returned: nothing left to cancel. */
    assert_null(p);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.items, "[{\"id\":1,\"options\":{\"every\":\"1m\"}},"
                                 "{\"id\":2,\"tag\":\"tagged\"}]");
    assert_string_equal(o.cursor, "2");
    char *cursor = ar_strdup(o.cursor);
    poll_outcome_free(&o);
    assert_int_equal(ar__plugin_poll_start(engine, src, NULL, cursor, poll_done_cb, &o, NULL), 0);
    free(cursor);
    assert_string_equal(o.items, "[{\"id\":3,\"options\":{}},{\"id\":4,\"tag\":\"tagged\"}]");
    assert_string_equal(o.cursor, "4");
    poll_outcome_free(&o);
}

static void test_poll_later_and_cancel(void **state)
{
    const struct ar__poll_source *src = ar__plugin_poll_source(engine, "abi_test.itemsLater");
    assert_non_null(src);
    struct poll_outcome o = {0}, c = {0};
    struct ar_poll *p = NULL, *q = NULL;
    assert_int_equal(ar__plugin_poll_start(engine, src, "{}", NULL, poll_done_cb, &o, &p), 0);
    assert_non_null(p);
    assert_int_equal(o.calls, 0);
    assert_int_equal(ar__plugin_poll_start(engine, src, "{}", NULL, poll_done_cb, &c, &q), 0);
    assert_non_null(q);
    ar__plugin_poll_cancel(q);
    ar_engine_run_loop(engine);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.items, "[{\"id\":\"later-1\"}]");
    assert_null(o.cursor);
    /* The cancelled poll never reports, and the plugin saw the cancel. */
    assert_int_equal(c.calls, 0);
    poll_outcome_free(&o);

    struct outcome r = {0};
    run_recipe("counters", NULL, &r);
    assert_int_equal(r.status, AR_RUN_SUCCEEDED);
    assert_non_null(strstr(r.result, "\"pollsCancelled\":1"));
    outcome_free(&r);
}

static void test_poll_failures(void **state)
{
    static const struct {
        const char *name;
        const char *error;
    } cases[] = {
        {"abi_test.itemsFail", "abi_test.itemsFail: the source is down"},
        {"abi_test.itemsCode", "abi_test.itemsCode: "},
        {"abi_test.itemsBad", "abi_test.itemsBad: the plugin returned items that are not a JSON "
                              "array"},
    };
    for (size_t i = 0; i < AR_ARRAY_SIZE(cases); i++) {
        const struct ar__poll_source *src = ar__plugin_poll_source(engine, cases[i].name);
        assert_non_null(src);
        struct poll_outcome o = {0};
        assert_int_equal(ar__plugin_poll_start(engine, src, "{}", NULL, poll_done_cb, &o, NULL),
                         0);
        assert_int_equal(o.calls, 1);
        assert_true(o.rc < 0);
        assert_null(o.items);
        assert_non_null(o.error);
        if (strncmp(o.error, cases[i].error, strlen(cases[i].error)) != 0) {
            fail_msg("%s: got '%s'", cases[i].name, o.error);
        }
        poll_outcome_free(&o);
    }
}

static void test_aborted_run_cancels_pending(void **state)
{
    struct outcome hang = {0}, after = {0};
    run_recipe("hang", NULL, &hang);
    assert_int_equal(hang.status, AR_RUN_FAILED);
    assert_non_null(strstr(hang.error, "TimeoutError"));
    run_recipe("counters", NULL, &after);
    assert_int_equal(after.status, AR_RUN_SUCCEEDED);
    assert_non_null(strstr(after.result, "\"cancelled\":1"));
    /* Settings from autorun.conf (plugin.abi_test.KEY); unknown keys are null. */
    assert_non_null(strstr(after.result, ",\"from the file\",\"2\",null]"));
    outcome_free(&hang);
    outcome_free(&after);
}

static void problem_cb(void *data, const char *problem)
{
    struct ar_buf *b = data;
    ar_buf_printf(b, "%s\n", problem);
}

static void test_check_all(void **state)
{
    struct ar_buf b = {0};
    int refused = ar__plugin_check_all(engine, problem_cb, &b);
    assert_int_equal(refused, 3);
    assert_non_null(strstr(b.data, "abi_wrong.so: built for plugin ABI 2, this autorun has 1\n"));
    assert_non_null(strstr(b.data, "abi_nosym.so: not an autorun plugin"));
    assert_non_null(strstr(b.data, "abi_initfail.so: failed to start: the licence server"));
    ar_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_poll_at_once),
        cmocka_unit_test(test_poll_later_and_cancel),
        cmocka_unit_test(test_poll_failures),
        cmocka_unit_test(test_aborted_run_cancels_pending),
        cmocka_unit_test(test_check_all),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
