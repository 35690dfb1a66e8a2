/* Service and CLI diagnostics on stderr: one line per event, with a component prefix. */
#include "core/log.h"
#include "core/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum ar_log_level ar__log_level = AR_LOG_INFO;

/* Batching: the service logs two lines per webhook event, and one write(2) per line was a
 * tenth of its loop thread's time. Lines gather here and go out in one write when the loop
 * is about to wait, or when the buffer fills; a crash loses at most one loop iteration's lines
 * (history, not the log, is the durable record). Worker threads log too, hence the lock. */
#define BATCH_BYTES (64 * 1024)
static pthread_mutex_t batch_lock = PTHREAD_MUTEX_INITIALIZER;
static int batching;
static size_t batch_len;
static char batch[BATCH_BYTES];

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
    pthread_mutex_lock(&batch_lock);
    if (batching) {
        if (batch_len + len > sizeof(batch)) {
            fwrite(batch, 1, batch_len, stderr);
            batch_len = 0;
        }
        memcpy(batch + batch_len, line, len);
        batch_len += len;
    } else {
        fwrite(line, 1, len, stderr);
    }
    pthread_mutex_unlock(&batch_lock);
}

void ar_log_batch(int on)
{
    ar_log_flush();
    pthread_mutex_lock(&batch_lock);
    batching = on;
    pthread_mutex_unlock(&batch_lock);
}

void ar_log_flush(void)
{
    pthread_mutex_lock(&batch_lock);
    if (batch_len > 0) {
        fwrite(batch, 1, batch_len, stderr);
        batch_len = 0;
    }
    pthread_mutex_unlock(&batch_lock);
}
