/* Small shared helpers: growable buffers, durations and sizes, times, files. */
#ifndef AR_CORE_UTIL_H
#define AR_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define AR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ar_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* A growable byte buffer, always NUL-terminated once anything was appended. */
struct ar_buf {
    char *data; /* owned */
    size_t len;
    size_t cap;
};

int ar_buf_append(struct ar_buf *b, const char *s, size_t n);
int ar_buf_puts(struct ar_buf *b, const char *s);
int ar_buf_printf(struct ar_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int ar_buf_json_string(struct ar_buf *b, const char *s);
/* Hands the bytes to the caller (never NULL on success) and resets the buffer. */
char *ar_buf_steal(struct ar_buf *b);
void ar_buf_free(struct ar_buf *b);

char *ar_strdup(const char *s); /* NULL stays NULL; aborts on out-of-memory */
char *ar_strndup(const char *s, size_t n);
char *ar_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *ar_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
void *ar_malloc(size_t n); /* abort on out-of-memory: used only for small internal state */
void *ar_calloc(size_t n, size_t size);

/* Length of the UTF-8 sequence starting at s (n bytes available, n >= 1), 0 when it is not
 * valid: overlong forms, surrogates (also CESU-8 pairs) and code points past U+10FFFF are
 * refused. */
size_t ar_utf8_seq(const unsigned char *s, size_t n);
int ar_utf8_valid(const char *s, size_t n); /* every byte of s is part of a valid sequence */

/* "250ms", "30s", "10m", "1h30m", "7d", "1w"; a bare number means milliseconds. */
int ar_parse_duration(const char *s, int64_t *out_ms);
/* Formats a duration for humans: "850 ms", "12.3 s", "5m", "2h 3m". */
void ar_format_duration(int64_t ms, char *buf, size_t len);
/* "64M", "1MiB", "512k", "1048576". */
int ar_parse_size(const char *s, int64_t *out_bytes);

int64_t ar_now_ms(void); /* wall clock, milliseconds since the epoch */
/* 2026-11-23T09:00:00.000Z */
void ar_format_iso_ms(int64_t ms, char *buf, size_t len);
/* ISO 8601 (date, date-time with Z or offset) or a duration ago ("24h", "7d"). */
int ar_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Reads a whole file (at most max bytes); the result is NUL-terminated. */
int ar_read_file(const char *path, size_t max, char **out, size_t *out_len);
/* mkdir -p with the given mode for created directories. */
int ar_mkdir_p(const char *path, int mode);
/* Joins two path parts with one '/'. */
char *ar_path_join(const char *a, const char *b);
/* True when name is a safe recipe or plugin name: [A-Za-z0-9_-], 1..64 chars. */
int ar_name_valid(const char *name);
/* "<dir of the executable>/../share/autorun" (owned; NULL if the executable's path is
 * unknown): where an installed autorun finds its shipped plugins and example recipes,
 * whatever prefix or DESTDIR it was unpacked into. */
char *ar_exe_share_dir(void);

#endif
