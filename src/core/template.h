/* {{name}} templates (pure): Mustache-style substitution without logic. */
#ifndef AR_CORE_TEMPLATE_H
#define AR_CORE_TEMPLATE_H

#include <stddef.h>

/* Looks up a dotted path ("customer.name") and appends its text to out.
 * Returns 0 when found, nonzero when missing (rendered as empty). */
struct ar_buf;
typedef int (*ar_template_lookup_cb)(void *data, const char *path, struct ar_buf *out);

/* Renders text: {{ path }} is replaced by the looked-up value (HTML-escaped when
 * escape_html is set), {{{ path }}} is never escaped, {{! comment }} is dropped.
 * An unterminated tag is AR_ESYNTAX with the byte offset in *err_offset. */
int ar_template_render(const char *text, ar_template_lookup_cb lookup, void *data,
                       int escape_html, char **out, size_t *err_offset);

/* Appends s with & < > " ' escaped. */
int ar_html_escape(struct ar_buf *out, const char *s, size_t n);

#endif
