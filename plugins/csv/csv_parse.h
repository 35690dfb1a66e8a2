/* RFC 4180 CSV, pure: parse text into rows of fields, format rows back, and the JSON both
 * sides of the csv plugin exchange with autorun. No I/O, no globals, no autorun API, so the
 * unit tests compile it on its own (tests/unit/test_csv.c). */
#ifndef CSV_PARSE_H
#define CSV_PARSE_H

#include <stddef.h>

/* The allocator everything here uses (the plugin passes autorun's, the tests libc's). */
struct csv_mem {
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
};

/* A growable, NUL-terminated byte string. */
struct csv_buf {
    char *data;
    size_t len;
    size_t cap;
    const struct csv_mem *mem;
    int failed; /* an allocation failed: the contents are incomplete */
};

struct csv_field {
    char *data; /* NUL-terminated; may contain NUL bytes, see len */
    size_t len;
};

struct csv_row {
    struct csv_field *fields;
    size_t n;
    size_t line; /* the line it starts on, from 1 */
};

struct csv_table {
    struct csv_row *rows;
    size_t n;
    size_t cap;
};

struct csv_options {
    char delimiter; /* ',' unless set */
    char quote;     /* '"' unless set */
};

#define CSV_EINVAL (-22)
#define CSV_ENOMEM (-12)

/* Parses text (a leading UTF-8 BOM is skipped; records end with CRLF, LF or CR; quoted
 * fields may hold delimiters, doubled quotes and line breaks; empty lines are skipped).
 * On a syntax error returns CSV_EINVAL and writes "line N: what" into err. */
int csv_parse(const char *text, size_t len, const struct csv_options *o,
              const struct csv_mem *mem, struct csv_table *out, char *err, size_t errlen);
void csv_table_free(struct csv_table *t, const struct csv_mem *mem);

/* Appends the table as JSON: an array of arrays of strings, or, with header, an array of
 * objects keyed by the first row (a missing field is "", extra fields go to "_extra"). */
int csv_table_to_json(const struct csv_table *t, int header, struct csv_buf *out);

/* Appends one field, quoted when it holds the delimiter, a quote, CR or LF (or always). */
int csv_format_field(struct csv_buf *b, const char *s, size_t len, const struct csv_options *o,
                     int quote_all);
/* Formats rows given as JSON (an array of arrays of strings, numbers, booleans or null) as
 * CSV lines ending with eol. On bad input returns CSV_EINVAL with err set. */
int csv_format_json(const char *json, const struct csv_options *o, const char *eol,
                    int quote_all, struct csv_buf *out, char *err, size_t errlen);

int csv_buf_append(struct csv_buf *b, const char *s, size_t n);
int csv_buf_json_string(struct csv_buf *b, const char *s, size_t n);
void csv_buf_free(struct csv_buf *b);

#endif
