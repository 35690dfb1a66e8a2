/* Secret redaction: every secret value a run touched is replaced by "***"
 * before anything is written to history or printed. */
#ifndef AR_CORE_REDACT_H
#define AR_CORE_REDACT_H

#include <stddef.h>

/* Values shorter than this are not redacted: "a" or "no" would mangle every
 * log line, and are not credentials anyone should use. */
#define AR_REDACT_MIN_LEN 4

struct ar_redactor {
    char **values; /* owned */
    size_t n;
};

/* Adds a value (copied); duplicates and too-short values are ignored. */
void ar_redactor_add(struct ar_redactor *r, const char *value);
/* Returns a new string with every occurrence of every value replaced by "***",
 * or NULL when nothing had to change (the caller keeps using text). */
char *ar_redact(const struct ar_redactor *r, const char *text);
void ar_redactor_free(struct ar_redactor *r);

#endif
