/* Unit tests: log lines, levels and batching (src/core/log.c). stderr is pointed at a
 * temporary file so what reached it can be read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char path[] = "/tmp/ar-test-log.XXXXXX";

/* What stderr has received so far (NUL-terminated, caller frees). */
static char *written(void)
{
    fflush(stderr);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int redirect(void **state)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_non_null(freopen(path, "w", stderr));
    ar_log_set_level(AR_LOG_INFO);
    return 0;
}

static int cleanup(void **state)
{
    ar_log_batch(0);
    unlink(path);
    return 0;
}

static void test_line_format_and_level(void **state)
{
    assert_non_null(freopen(path, "w", stderr));
    ar_log_info("queue", "run %d (%s) succeeded", 7, "nps");
    ar_log_debug("queue", "not at info level");
    char *out = written();
    assert_string_equal(out, "autorun info [queue] run 7 (nps) succeeded\n");
    free(out);

    enum ar_log_level level;
    assert_int_equal(ar_log_parse_level("warn", &level), 0);
    assert_int_equal(level, AR_LOG_WARN);
    assert_int_not_equal(ar_log_parse_level("loud", &level), 0);
}

static void test_batch_holds_lines_until_flush(void **state)
{
    assert_non_null(freopen(path, "w", stderr));
    ar_log_batch(1);
    ar_log_info("webhook", "one");
    ar_log_warn("webhook", "two");
    char *out = written();
    assert_string_equal(out, "");
    free(out);
    ar_log_flush();
    out = written();
    assert_string_equal(out, "autorun info [webhook] one\nautorun warn [webhook] two\n");
    free(out);
    ar_log_batch(0); /* back to one write per line */
    ar_log_info("webhook", "three");
    out = written();
    assert_non_null(strstr(out, "[webhook] three\n"));
    free(out);
}

static void test_full_batch_spills_in_order(void **state)
{
    assert_non_null(freopen(path, "w", stderr));
    ar_log_batch(1);
    /* Far more than the batch holds: nothing may be lost or reordered. */
    for (int i = 0; i < 5000; i++) {
        ar_log_info("load", "line %05d", i);
    }
    char *out = written();
    assert_true(strlen(out) > 0); /* a full batch went out without a flush */
    free(out);
    ar_log_batch(0);
    out = written();
    char *p = out;
    for (int i = 0; i < 5000; i++) {
        char want[64];
        snprintf(want, sizeof(want), "autorun info [load] line %05d\n", i);
        assert_memory_equal(p, want, strlen(want));
        p += strlen(want);
    }
    assert_int_equal(*p, '\0');
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format_and_level),
        cmocka_unit_test(test_batch_holds_lines_until_flush),
        cmocka_unit_test(test_full_batch_spills_in_order),
    };
    return cmocka_run_group_tests(tests, redirect, cleanup);
}
