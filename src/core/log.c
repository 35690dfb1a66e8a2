/* Service and CLI diagnostics on stderr: one line per event, with a component prefix. */
#include "core/log.h"
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum ar_log_level ar__log_level = AR_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void ar_log_set_level(enum ar_log_level level)
{
    ar__log_level = level;
}

int ar_log_parse_level(const char *s, enum ar_log_level *out)
{
    for (int i = 0; i <= AR_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum ar_log_level)i;
            return 0;
        }
    }
    return AR_EINVAL;
}

const char *ar_log_level_name(enum ar_log_level level)
{
    return level_names[level];
}

void ar__log_write(enum ar_log_level level, const char *component, const char *fmt, ...)
{
    char line[4096];
    int n = snprintf(line, sizeof(line), "autorun %s [%s] ", level_names[level], component);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line)) {
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    }
    va_end(ap);
    /* One write per line, so concurrent writers never interleave inside a line. */
    size_t len = strlen(line);
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
