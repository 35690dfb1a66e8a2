/* RFC 4180 CSV parsing and formatting, and the JSON the csv plugin exchanges; see csv_parse.h. */
#include "csv_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- Buffers ---- */

static int buf_reserve(struct csv_buf *b, size_t more)
{
    if (b->failed) {
        return CSV_ENOMEM;
    }
    if (b->len + more + 1 <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return CSV_ENOMEM;
        }
        cap *= 2;
    }
    char *d = b->mem->realloc(b->data, cap);
    if (d == NULL) {
        b->failed = 1;
        return CSV_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int csv_buf_append(struct csv_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        return CSV_ENOMEM;
    }
    if (n > 0) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int buf_putc(struct csv_buf *b, char c)
{
    return csv_buf_append(b, &c, 1);
}

void csv_buf_free(struct csv_buf *b)
{
    if (b->data != NULL) {
        b->mem->free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

int csv_buf_json_string(struct csv_buf *b, const char *s, size_t n)
{
    int rc = buf_putc(b, '"');
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': rc = csv_buf_append(b, "\\\"", 2); break;
        case '\\': rc = csv_buf_append(b, "\\\\", 2); break;
        case '\n': rc = csv_buf_append(b, "\\n", 2); break;
        case '\r': rc = csv_buf_append(b, "\\r", 2); break;
        case '\t': rc = csv_buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                rc = csv_buf_append(b, esc, 6);
            } else {
                rc = buf_putc(b, (char)c);
            }
        }
    }
    return rc ? rc : buf_putc(b, '"');
}

/* ---- Parsing ---- */

static int add_field(struct csv_row *r, struct csv_buf *f, const struct csv_mem *mem)
{
    if (buf_reserve(f, 0) != 0) {
        return CSV_ENOMEM;
    }
    f->data[f->len] = '\0';
    struct csv_field *grown = mem->realloc(r->fields, (r->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        return CSV_ENOMEM;
    }
    r->fields = grown;
    r->fields[r->n].data = f->data;
    r->fields[r->n].len = f->len;
    r->n++;
    f->data = NULL;
    f->len = f->cap = 0;
    return 0;
}

static void row_free(struct csv_row *r, const struct csv_mem *mem)
{
    for (size_t i = 0; i < r->n; i++) {
        mem->free(r->fields[i].data);
    }
    if (r->fields != NULL) {
        mem->free(r->fields);
    }
    r->fields = NULL;
    r->n = 0;
}

static int add_row(struct csv_table *t, struct csv_row *r, const struct csv_mem *mem)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct csv_row *grown = mem->realloc(t->rows, cap * sizeof(*grown));
        if (grown == NULL) {
            return CSV_ENOMEM;
        }
        t->rows = grown;
        t->cap = cap;
    }
    t->rows[t->n++] = *r;
    r->fields = NULL;
    r->n = 0;
    return 0;
}

void csv_table_free(struct csv_table *t, const struct csv_mem *mem)
{
    for (size_t i = 0; i < t->n; i++) {
        row_free(&t->rows[i], mem);
    }
    if (t->rows != NULL) {
        mem->free(t->rows);
    }
    t->rows = NULL;
    t->n = t->cap = 0;
}

int csv_parse(const char *text, size_t len, const struct csv_options *o,
              const struct csv_mem *mem, struct csv_table *out, char *err, size_t errlen)
{
    char delim = o && o->delimiter ? o->delimiter : ',';
    char quote = o && o->quote ? o->quote : '"';
    struct csv_table t = {0};
    struct csv_row row = {0};
    struct csv_buf field = {.mem = mem};
    size_t i = 0, line = 1;
    int rc = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        i = 3;
    }
    if (delim == quote || delim == '\r' || delim == '\n') {
        snprintf(err, errlen, "the delimiter cannot be a quote or a line break");
        return CSV_EINVAL;
    }
    while (i < len && rc == 0) {
        /* At the start of a field. */
        row.line = row.n == 0 ? line : row.line;
        if (text[i] == quote) {
            size_t opened = line;
            i++;
            for (;;) {
                if (i >= len) {
                    snprintf(err, errlen, "line %zu: the quoted field opened here never ends",
                             opened);
                    rc = CSV_EINVAL;
                    goto out;
                }
                if (text[i] == quote) {
                    if (i + 1 < len && text[i + 1] == quote) {
                        rc = buf_putc(&field, quote);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (text[i] == '\n' || (text[i] == '\r' && !(i + 1 < len && text[i + 1] == '\n'))) {
                    line++;
                }
                rc = buf_putc(&field, text[i++]);
                if (rc != 0) {
                    goto out;
                }
            }
            if (i < len && text[i] != delim && text[i] != '\r' && text[i] != '\n') {
                snprintf(err, errlen, "line %zu: unexpected '%c' after the closing quote", line,
                         text[i]);
                rc = CSV_EINVAL;
                goto out;
            }
        } else {
            size_t start = i;
            while (i < len && text[i] != delim && text[i] != '\r' && text[i] != '\n') {
                i++;
            }
            rc = csv_buf_append(&field, text + start, i - start);
        }
        if (rc == 0) {
            rc = add_field(&row, &field, mem);
        }
        if (rc != 0) {
            goto out;
        }
        if (i < len && text[i] == delim) {
            i++;
            if (i == len) {
                /* "a,b," at the very end: the last field is empty. */
                rc = add_field(&row, &field, mem);
            }
            continue;
        }
        /* End of the record: CRLF, LF, CR or the end of the text. */
        if (i < len && text[i] == '\r') {
            i++;
        }
        if (i < len && text[i] == '\n') {
            i++;
        }
        line++;
        if (rc == 0) {
            rc = add_row(&t, &row, mem);
        }
        /* Empty lines are not records. */
        while (rc == 0 && i < len && (text[i] == '\n' || text[i] == '\r')) {
            if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') {
                i++;
            }
            i++;
            line++;
        }
    }
    if (rc == 0 && row.n > 0) {
        rc = add_row(&t, &row, mem);
    }
out:
    if (rc == CSV_ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    csv_buf_free(&field);
    row_free(&row, mem);
    if (rc != 0) {
        csv_table_free(&t, mem);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- Rows as JSON ---- */

int csv_table_to_json(const struct csv_table *t, int header, struct csv_buf *out)
{
    int rc = buf_putc(out, '[');
    if (!header || t->n == 0) {
        for (size_t r = 0; r < t->n && rc == 0; r++) {
            rc = csv_buf_append(out, r ? ",[" : "[", r ? 2 : 1);
            for (size_t f = 0; f < t->rows[r].n && rc == 0; f++) {
                if (f) {
                    rc = buf_putc(out, ',');
                }
                rc = rc ? rc : csv_buf_json_string(out, t->rows[r].fields[f].data,
                                                   t->rows[r].fields[f].len);
            }
            rc = rc ? rc : buf_putc(out, ']');
        }
        return rc ? rc : buf_putc(out, ']');
    }
    const struct csv_row *h = &t->rows[0];
    for (size_t r = 1; r < t->n && rc == 0; r++) {
        const struct csv_row *row = &t->rows[r];
        rc = csv_buf_append(out, r > 1 ? ",{" : "{", r > 1 ? 2 : 1);
        for (size_t f = 0; f < h->n && rc == 0; f++) {
            if (f) {
                rc = buf_putc(out, ',');
            }
            rc = rc ? rc : csv_buf_json_string(out, h->fields[f].data, h->fields[f].len);
            rc = rc ? rc : buf_putc(out, ':');
            if (rc == 0 && f < row->n) {
                rc = csv_buf_json_string(out, row->fields[f].data, row->fields[f].len);
            } else if (rc == 0) {
                rc = csv_buf_append(out, "\"\"", 2);
            }
        }
        if (rc == 0 && row->n > h->n) {
            rc = csv_buf_append(out, h->n ? ",\"_extra\":[" : "\"_extra\":[", h->n ? 11 : 10);
            for (size_t f = h->n; f < row->n && rc == 0; f++) {
                if (f > h->n) {
                    rc = buf_putc(out, ',');
                }
                rc = rc ? rc : csv_buf_json_string(out, row->fields[f].data, row->fields[f].len);
            }
            rc = rc ? rc : buf_putc(out, ']');
        }
        rc = rc ? rc : buf_putc(out, '}');
    }
    return rc ? rc : buf_putc(out, ']');
}

/* ---- Formatting ---- */

int csv_format_field(struct csv_buf *b, const char *s, size_t len, const struct csv_options *o,
                     int quote_all)
{
    char delim = o && o->delimiter ? o->delimiter : ',';
    char quote = o && o->quote ? o->quote : '"';
    int needs = quote_all;
    for (size_t i = 0; i < len && !needs; i++) {
        needs = s[i] == delim || s[i] == quote || s[i] == '\r' || s[i] == '\n';
    }
    if (!needs) {
        return csv_buf_append(b, s, len);
    }
    int rc = buf_putc(b, quote);
    for (size_t i = 0; i < len && rc == 0; i++) {
        if (s[i] == quote) {
            rc = buf_putc(b, quote);
        }
        rc = rc ? rc : buf_putc(b, s[i]);
    }
    return rc ? rc : buf_putc(b, quote);
}

/* A JSON reader for exactly what csv.format's JS side sends: arrays of arrays of scalars. */
struct reader {
    const char *s;
    size_t i, len;
    char *err;
    size_t errlen;
};

static void skip_ws(struct reader *r)
{
    while (r->i < r->len && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
                             r->s[r->i] == '\r')) {
        r->i++;
    }
}

static int bad(struct reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "rows: %s at offset %zu", what, r->i);
    return CSV_EINVAL;
}

static int hex4(struct reader *r, unsigned *out)
{
    if (r->i + 4 > r->len) {
        return bad(r, "truncated \\u escape");
    }
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = r->s[r->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return bad(r, "bad \\u escape");
        }
    }
    *out = v;
    return 0;
}

static int put_utf8(struct csv_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return csv_buf_append(b, u, n);
}

/* Reads a string, number, boolean or null as the field's text into f. */
static int read_scalar(struct reader *r, struct csv_buf *f)
{
    skip_ws(r);
    if (r->i >= r->len) {
        return bad(r, "unexpected end");
    }
    char c = r->s[r->i];
    if (c == '"') {
        r->i++;
        while (r->i < r->len && r->s[r->i] != '"') {
            char d = r->s[r->i++];
            int rc;
            if (d != '\\') {
                rc = buf_putc(f, d);
            } else if (r->i >= r->len) {
                return bad(r, "truncated escape");
            } else {
                char e = r->s[r->i++];
                unsigned cp;
                switch (e) {
                case 'n': rc = buf_putc(f, '\n'); break;
                case 'r': rc = buf_putc(f, '\r'); break;
                case 't': rc = buf_putc(f, '\t'); break;
                case 'b': rc = buf_putc(f, '\b'); break;
                case 'f': rc = buf_putc(f, '\f'); break;
                case 'u':
                    if ((rc = hex4(r, &cp)) != 0) {
                        return rc;
                    }
                    if (cp >= 0xD800 && cp < 0xDC00 && r->i + 6 <= r->len &&
                        r->s[r->i] == '\\' && r->s[r->i + 1] == 'u') {
                        unsigned lo;
                        size_t at = r->i;
                        r->i += 2;
                        if ((rc = hex4(r, &lo)) != 0) {
                            return rc;
                        }
                        if (lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            r->i = at;
                        }
                    }
                    rc = put_utf8(f, cp);
                    break;
                default: rc = buf_putc(f, e); break;
                }
            }
            if (rc != 0) {
                return rc;
            }
        }
        if (r->i >= r->len) {
            return bad(r, "unterminated string");
        }
        r->i++;
        return buf_reserve(f, 0);
    }
    if (r->len - r->i >= 4 && memcmp(r->s + r->i, "null", 4) == 0) {
        r->i += 4;
        return buf_reserve(f, 0);
    }
    if (r->len - r->i >= 4 && memcmp(r->s + r->i, "true", 4) == 0) {
        r->i += 4;
        return csv_buf_append(f, "true", 4);
    }
    if (r->len - r->i >= 5 && memcmp(r->s + r->i, "false", 5) == 0) {
        r->i += 5;
        return csv_buf_append(f, "false", 5);
    }
    size_t start = r->i;
    if (c != '-' && !(c >= '0' && c <= '9')) {
        return bad(r, "expected a string, number, boolean or null");
    }
    while (r->i < r->len && (r->s[r->i] == '-' || r->s[r->i] == '+' || r->s[r->i] == '.' ||
                             (r->s[r->i] >= '0' && r->s[r->i] <= '9') || r->s[r->i] == 'e' ||
                             r->s[r->i] == 'E')) {
        r->i++;
    }
    size_t n = r->i - start;
    return csv_buf_append(f, r->s + start, n);
}

int csv_format_json(const char *json, const struct csv_options *o, const char *eol,
                    int quote_all, struct csv_buf *out, char *err, size_t errlen)
{
    struct reader r = {json, 0, strlen(json), err, errlen};
    struct csv_buf f = {.mem = out->mem};
    int rc = 0;
    skip_ws(&r);
    if (r.i >= r.len || json[r.i++] != '[') {
        return bad(&r, "expected an array of rows");
    }
    skip_ws(&r);
    if (r.i < r.len && json[r.i] == ']') {
        return 0;
    }
    for (;;) {
        skip_ws(&r);
        if (r.i >= r.len || json[r.i++] != '[') {
            rc = bad(&r, "each row must be an array");
            break;
        }
        skip_ws(&r);
        int first = 1;
        if (r.i < r.len && json[r.i] == ']') {
            r.i++;
        } else {
            for (;;) {
                f.len = 0;
                if ((rc = read_scalar(&r, &f)) != 0) {
                    goto out;
                }
                if (!first) {
                    rc = buf_putc(out, o && o->delimiter ? o->delimiter : ',');
                }
                first = 0;
                rc = rc ? rc : csv_format_field(out, f.data, f.len, o, quote_all);
                if (rc != 0) {
                    goto out;
                }
                skip_ws(&r);
                if (r.i < r.len && json[r.i] == ',') {
                    r.i++;
                    continue;
                }
                if (r.i < r.len && json[r.i] == ']') {
                    r.i++;
                    break;
                }
                rc = bad(&r, "expected ',' or ']' in a row");
                goto out;
            }
        }
        if ((rc = csv_buf_append(out, eol, strlen(eol))) != 0) {
            break;
        }
        skip_ws(&r);
        if (r.i < r.len && json[r.i] == ',') {
            r.i++;
            continue;
        }
        if (r.i < r.len && json[r.i] == ']') {
            r.i++;
            break;
        }
        rc = bad(&r, "expected ',' or ']' between rows");
        break;
    }
out:
    if (rc == CSV_ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    csv_buf_free(&f);
    return rc;
}
