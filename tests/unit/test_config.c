/* Unit tests: configuration file, environment overrides, errors (src/core/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char dir[64];

static int setup(void **state)
{
    strcpy(dir, "/tmp/ar-config-XXXXXX");
    assert_non_null(mkdtemp(dir));
    unsetenv("AUTORUN_HOME");
    unsetenv("AUTORUN_LISTEN");
    unsetenv("AUTORUN_RUN_TIMEOUT");
    unsetenv("AUTORUN_DB_CUSTOMERS");
    unsetenv("TRELLO_API_BASE");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *write_conf(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/autorun.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void **state)
{
    struct ar_config cfg;
    char err[256];
    struct ar_config_locations loc = {.home = dir, .file = NULL};
    assert_int_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_int_equal(cfg.run_timeout_ms, 5 * 60 * 1000);
    assert_int_equal(cfg.heap_limit, 64 << 20);
    assert_int_equal(cfg.body_limit, 1 << 20);
    assert_int_equal(cfg.response_limit, 16 << 20);
    char expect[128];
    snprintf(expect, sizeof(expect), "file:%s/outbox", dir);
    assert_string_equal(cfg.mail_url, expect);
    ar_config_free(&cfg);
}

static void test_file_and_env_precedence(void **state)
{
    struct ar_config cfg;
    char err[256];
    char *path = write_conf("# comment\n\nlisten = 127.0.0.1:9999\nrun.timeout = 10m\n"
                            "db.customers = sqlite:/tmp/c.db\napi.trello = 'http://127.0.0.1:1'\n");
    struct ar_config_locations loc = {.home = dir, .file = path};
    setenv("AUTORUN_RUN_TIMEOUT", "30s", 1);
    setenv("AUTORUN_DB_BILLING", "postgres://x/y", 1);
    assert_int_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:9999");
    assert_int_equal(cfg.run_timeout_ms, 30000); /* the environment wins */
    assert_string_equal(ar_config_db_url(&cfg, "customers"), "sqlite:/tmp/c.db");
    assert_string_equal(ar_config_db_url(&cfg, "billing"), "postgres://x/y");
    assert_null(ar_config_db_url(&cfg, "nope"));
    assert_string_equal(ar_config_api_base(&cfg, "trello"), "http://127.0.0.1:1");
    ar_config_free(&cfg);
    unsetenv("AUTORUN_RUN_TIMEOUT");
    unsetenv("AUTORUN_DB_BILLING");
    setenv("TRELLO_API_BASE", "http://127.0.0.1:2", 1);
    assert_int_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_string_equal(ar_config_api_base(&cfg, "trello"), "http://127.0.0.1:2");
    ar_config_free(&cfg);
    unsetenv("TRELLO_API_BASE");
}

static void test_errors_name_file_and_line(void **state)
{
    struct ar_config cfg;
    char err[256];
    struct ar_config_locations loc = {.home = dir};
    loc.file = write_conf("listen = 1.2.3.4:5\n\nbogus.key = 1\n");
    assert_int_not_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "autorun.conf:3: unknown setting 'bogus.key'"));
    ar_config_free(&cfg);
    loc.file = write_conf("run.timeout = soon\n");
    assert_int_not_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "autorun.conf:1: run.timeout: 'soon' is not a duration"));
    ar_config_free(&cfg);
    const char *bad_ints[] = {"run.max = -1\n", "run.max = 12x\n", "run.max =\n",
                              "run.max = 99999999999999999999\n"};
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        loc.file = write_conf(bad_ints[i]);
        assert_int_not_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "is not a non-negative integer"));
        ar_config_free(&cfg);
    }
    loc.file = write_conf("run.max = 250\n");
    assert_int_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_runs, 250);
    ar_config_free(&cfg);
    loc.file = write_conf("just words\n");
    assert_int_not_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, ":1: expected 'key = value'"));
    ar_config_free(&cfg);
    unlink(loc.file);
    setenv("AUTORUN_RUN_HEAP", "huge", 1);
    loc.file = NULL;
    assert_int_not_equal(ar_config_load(&cfg, &loc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "AUTORUN_RUN_HEAP"));
    ar_config_free(&cfg);
    unsetenv("AUTORUN_RUN_HEAP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_env_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_name_file_and_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
