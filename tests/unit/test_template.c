/* Unit tests: {{name}} templates (src/core/template.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/template.h"
#include "core/util.h"

/* A lookup over a fixed table, standing in for the JS data object. */
static int lookup(void *data, const char *path, struct ar_buf *out)
{
    const char *const *kv = data;
    for (; kv[0]; kv += 2) {
        if (strcmp(kv[0], path) == 0) {
            ar_buf_puts(out, kv[1]);
            return 0;
        }
    }
    return 1;
}

static const char *const values[] = {"name", "Sam", "c.email", "sam@example.com",
                                      "html", "<b>Tom & \"Jerry\"</b>", "n", "7", NULL};

static char *render(const char *tpl, int html)
{
    char *out = NULL;
    size_t at;
    assert_int_equal(ar_template_render(tpl, lookup, (void *)values, html, &out, &at), 0);
    return out;
}

static void test_substitution(void **state)
{
    char *s = render("Hi {{name}}, {{ c.email }} scored {{n}}.", 0);
    assert_string_equal(s, "Hi Sam, sam@example.com scored 7.");
    free(s);
    s = render("no tags at all", 0);
    assert_string_equal(s, "no tags at all");
    free(s);
    s = render("", 0);
    assert_string_equal(s, "");
    free(s);
}

static void test_missing_is_empty(void **state)
{
    char *s = render("[{{nope}}][{{c.nope}}]", 0);
    assert_string_equal(s, "[][]");
    free(s);
}

static void test_html_escaping(void **state)
{
    char *s = render("{{html}}|{{{html}}}", 1);
    assert_string_equal(s, "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;|<b>Tom & \"Jerry\"</b>");
    free(s);
    s = render("{{html}}", 0); /* text: never escaped */
    assert_string_equal(s, "<b>Tom & \"Jerry\"</b>");
    free(s);
}

static void test_comments_and_errors(void **state)
{
    char *s = render("a{{! a comment }}b", 0);
    assert_string_equal(s, "ab");
    free(s);
    char *out = (char *)"untouched";
    size_t at = 0;
    assert_int_equal(ar_template_render("ok {{name} broken", lookup, (void *)values, 0, &out, &at),
                     AR_ESYNTAX);
    assert_int_equal(at, 3);
    assert_string_equal(out, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_substitution),
        cmocka_unit_test(test_missing_is_empty),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_comments_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
