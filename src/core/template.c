/* {{name}} templates (pure): Mustache-style substitution without logic. */
#include "core/template.h"
#include "core/error.h"
#include "core/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int ar_html_escape(struct ar_buf *out, const char *s, size_t n)
{
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        rc = ar_buf_append(out, s + start, i - start);
        if (rc == 0) {
            rc = ar_buf_puts(out, rep);
        }
        start = i + 1;
    }
    return rc ? rc : ar_buf_append(out, s + start, n - start);
}

int ar_template_render(const char *text, ar_template_lookup_cb lookup, void *data,
                       int escape_html, char **out, size_t *err_offset)
{
    struct ar_buf b = {0}, val = {0};
    const char *p = text;
    int rc = 0;
    ar_buf_append(&b, "", 0);
    while (rc == 0) {
        const char *open = strstr(p, "{{");
        if (open == NULL) {
            rc = ar_buf_puts(&b, p);
            break;
        }
        rc = ar_buf_append(&b, p, (size_t)(open - p));
        int raw = open[2] == '{';
        const char *start = open + (raw ? 3 : 2);
        const char *close = strstr(start, raw ? "}}}" : "}}");
        if (close == NULL) {
            if (err_offset) {
                *err_offset = (size_t)(open - text);
            }
            rc = AR_ESYNTAX;
            break;
        }
        p = close + (raw ? 3 : 2);
        while (start < close && isspace((unsigned char)*start)) {
            start++;
        }
        const char *end = close;
        while (end > start && isspace((unsigned char)end[-1])) {
            end--;
        }
        if (start < end && *start == '!') {
            continue;
        }
        char *path = ar_strndup(start, (size_t)(end - start));
        val.len = 0;
        if (lookup(data, path, &val) == 0 && val.len > 0) {
            rc = escape_html && !raw ? ar_html_escape(&b, val.data, val.len)
                                     : ar_buf_append(&b, val.data, val.len);
        }
        free(path);
    }
    ar_buf_free(&val);
    if (rc != 0) {
        ar_buf_free(&b);
        return rc;
    }
    *out = ar_buf_steal(&b);
    return 0;
}
