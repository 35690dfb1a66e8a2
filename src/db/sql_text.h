/* Pure helpers for SQL text and values: placeholder conversion for PostgreSQL, the
 * read-only test dry runs use, statement excerpts for history, and the conversions
 * of PostgreSQL's text output (numeric, timestamps, bytea) into JS-friendly forms. */
#ifndef AR_DB_SQL_TEXT_H
#define AR_DB_SQL_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Rewrites positional '?' placeholders into PostgreSQL's $1..$n, outside string
 * literals (also E'' and $tag$ quoting), quoted identifiers and comments. Text that
 * already uses $n is returned unchanged (its '?' may be jsonb operators). *out is
 * owned by the caller; *n_params is the number of placeholders found (the highest
 * $n when native ones are used). */
int ar_sql_pg_placeholders(const char *text, char **out, int *n_params);

/* True when the statement only reads and may run in a dry run: SELECT (without
 * INTO), VALUES, TABLE, SHOW, EXPLAIN (without ANALYZE of a write), WITH without a
 * data-modifying part, PRAGMA without '=', and transaction control. Lexical and
 * conservative: anything it does not recognise counts as a write. */
int ar_sql_is_read(const char *text);

/* 1 for statements that begin or end a transaction (BEGIN, START, COMMIT, END,
 * ABORT, ROLLBACK), 2 for savepoints (SAVEPOINT, RELEASE, ROLLBACK TO), else 0. */
int ar_sql_tx_control(const char *text);

/* The statement's first keyword, upper-cased (after comments and parentheses), or
 * "" when there is none. */
void ar_sql_first_word(const char *text, char *word, size_t cap);

/* The statement for history and logs: whitespace runs folded into one space, cut at
 * max bytes (on a UTF-8 boundary) with "..." appended. Owned by the caller. */
char *ar_sql_excerpt(const char *text, size_t max);

/* True when the decimal text converts to a double without losing digits: at most 15
 * significant digits, or an integer no larger than 2^53 in magnitude. */
int ar_sql_decimal_exact(const char *s);

/* PostgreSQL's ISO timestamp output ("2024-05-01 10:00:00.123456+02", with or
 * without fraction and zone) as JS's Date.toISOString(): "2024-05-01T08:00:00.123Z".
 * Text without a zone is taken as UTC. Returns AR_EINVAL for anything else
 * ("infinity", BC dates, years past 9999); out is written only on success. */
int ar_sql_pg_timestamp(const char *s, char *out, size_t len);

/* bytea's hex output "\x0aff" as "0aff"; other forms are returned unchanged. */
const char *ar_sql_pg_bytea_hex(const char *s);

#endif
