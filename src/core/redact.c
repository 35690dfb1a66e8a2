/* Secret redaction (pure): replaces every known secret value by "***". */
#include "core/redact.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

void ar_redactor_add(struct ar_redactor *r, const char *value)
{
    if (value == NULL || strlen(value) < AR_REDACT_MIN_LEN) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->values[i], value) == 0) {
            return;
        }
    }
    char **v = realloc(r->values, (r->n + 1) * sizeof(*v));
    if (v == NULL) {
        abort();
    }
    r->values = v;
    /* Longest first, so a secret that contains another is replaced whole. */
    size_t len = strlen(value), at = r->n;
    while (at > 0 && strlen(r->values[at - 1]) < len) {
        r->values[at] = r->values[at - 1];
        at--;
    }
    r->values[at] = ar_strdup(value);
    r->n++;
}

char *ar_redact(const struct ar_redactor *r, const char *text)
{
    if (r == NULL || r->n == 0 || text == NULL) {
        return NULL;
    }
    struct ar_buf out = {0};
    int changed = 0;
    const char *p = text;
    while (*p) {
        size_t matched = 0;
        for (size_t i = 0; i < r->n; i++) {
            size_t l = strlen(r->values[i]);
            if (*p == r->values[i][0] && strncmp(p, r->values[i], l) == 0) {
                matched = l;
                break;
            }
        }
        if (matched) {
            ar_buf_append(&out, "***", 3);
            p += matched;
            changed = 1;
        } else {
            /* Copy up to the next byte that starts any secret. */
            const char *q = p + 1;
            while (*q) {
                int starts = 0;
                for (size_t i = 0; i < r->n && !starts; i++) {
                    starts = *q == r->values[i][0];
                }
                if (starts) {
                    break;
                }
                q++;
            }
            ar_buf_append(&out, p, (size_t)(q - p));
            p = q;
        }
    }
    if (!changed) {
        ar_buf_free(&out);
        return NULL;
    }
    return ar_buf_steal(&out);
}

void ar_redactor_free(struct ar_redactor *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->values[i]);
    }
    free(r->values);
    r->values = NULL;
    r->n = 0;
}
