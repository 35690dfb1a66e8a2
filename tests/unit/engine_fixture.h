/* The fixture shared by the unit tests that drive a real engine: a temp dir holding recipes/
 * and home/, a config loaded from it, recipes written by the test, runs waited for on the loop,
 * and a teardown that leaves nothing behind. Parts that differ stay in each test. */
#ifndef AR_TESTS_ENGINE_FIXTURE_H
#define AR_TESTS_ENGINE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Each test executable has one fixture, so plain statics do. */
static char dir[64];
static struct ar_config cfg;
static struct ar_engine *engine;

/* What one run ended with, copied out of the run before it is freed. */
struct outcome {
    int done;
    enum ar_run_status status;
    char *result;
    char *error;
};

/* Makes /tmp/ar-<name>-XXXXXX with an empty recipes/ in it; home/ is left to the engine. */
static inline void fixture_make_dir(const char *name)
{
    snprintf(dir, sizeof(dir), "/tmp/ar-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    char recipes[128];
    snprintf(recipes, sizeof(recipes), "%s/recipes", dir);
    assert_int_equal(ar_mkdir_p(recipes, 0700), 0);
}

/* Loads cfg with home/ and recipes/ in the temp dir. Plugins are looked for in plugins, or when
 * it is NULL in recipes/, which has none; conf_file is read when not NULL. Settings from the
 * environment must be set before this call, ar_config_set() ones after it. */
static inline void fixture_load_config(const char *plugins, const char *conf_file)
{
    char recipes[128], home[128];
    snprintf(recipes, sizeof(recipes), "%s/recipes", dir);
    snprintf(home, sizeof(home), "%s/home", dir);
    struct ar_config_locations loc = {.home = home,
                                      .recipes = recipes,
                                      .plugins = plugins ? plugins : recipes,
                                      .file = conf_file};
    char err[256];
    if (ar_config_load(&cfg, &loc, err, sizeof(err)) != 0) {
        fail_msg("config: %s", err);
    }
}

/* Writes recipes/<name>.js; call it before fixture_create_engine(). */
static inline void write_recipe(const char *name, const char *js)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/recipes/%s.js", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(js, f);
    fclose(f);
}

static inline void fixture_create_engine(void)
{
    char err[256];
    if (ar_engine_create(&cfg, &engine, err, sizeof(err)) != 0) {
        fail_msg("engine: %s", err);
    }
}

/* A cmocka teardown: destroys the engine, frees cfg and removes the temp dir. Whatever the test
 * built on top of the engine must be closed before. */
static inline int fixture_teardown(void **state)
{
    ar_engine_destroy(engine);
    engine = NULL;
    ar_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static inline void run_done_cb(struct ar_run *run, void *data)
{
    struct outcome *o = data;
    o->done = 1;
    o->status = run->status;
    o->result = ar_strdup(run->result_json);
    o->error = ar_strdup(run->error);
}

/* Starts a run of recipe with input (NULL for none) that reports into o; the loop still has to
 * turn, so that several runs can be in flight at once. */
static inline void start_run(const char *recipe, const char *input, struct outcome *o)
{
    char err[512];
    struct ar_run_opts opts = {.recipe = recipe, .input_json = input};
    if (ar_run_start(engine, &opts, run_done_cb, o, err, sizeof(err)) != 0) {
        fail_msg("start %s: %s", recipe, err);
    }
}

/* Runs one recipe to its end, turning the loop until nothing is left to do. */
static inline void run_recipe(const char *recipe, const char *input, struct outcome *o)
{
    start_run(recipe, input, o);
    ar_engine_run_loop(engine);
    assert_true(o->done);
}

static inline void outcome_free(struct outcome *o)
{
    free(o->result);
    free(o->error);
}

#endif
