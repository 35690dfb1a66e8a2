/* Service and CLI diagnostics on stderr: one line per event, with a component prefix. */
#ifndef AR_CORE_LOG_H
#define AR_CORE_LOG_H

enum ar_log_level { AR_LOG_DEBUG, AR_LOG_INFO, AR_LOG_WARN, AR_LOG_ERROR, AR_LOG_OFF };

extern enum ar_log_level ar__log_level;

void ar_log_set_level(enum ar_log_level level);
int ar_log_parse_level(const char *s, enum ar_log_level *out);
const char *ar_log_level_name(enum ar_log_level level);
void ar__log_write(enum ar_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ar_log_batch(1) holds lines until ar_log_flush() (or a full buffer); the engine flushes
 * before its loop waits. ar_log_batch(0) flushes and goes back to one write per line. */
void ar_log_batch(int on);
void ar_log_flush(void);

/* The level is checked before any argument is formatted. */
#define ar_log(level, component, ...)                                                            \
    do {                                                                                         \
        if ((level) >= ar__log_level) {                                                          \
            ar__log_write((level), (component), __VA_ARGS__);                                    \
        }                                                                                        \
    } while (0)
#define ar_log_debug(c, ...) ar_log(AR_LOG_DEBUG, c, __VA_ARGS__)
#define ar_log_info(c, ...) ar_log(AR_LOG_INFO, c, __VA_ARGS__)
#define ar_log_warn(c, ...) ar_log(AR_LOG_WARN, c, __VA_ARGS__)
#define ar_log_error(c, ...) ar_log(AR_LOG_ERROR, c, __VA_ARGS__)

#endif
