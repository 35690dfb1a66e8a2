/* Customer databases: the SQLite files and PostgreSQL servers recipes query by name.
 * SQLite statements run on the libuv thread pool, one connection per database and one
 * statement at a time (a FIFO per database); PostgreSQL runs on the loop through
 * libpq's asynchronous API with a small pool of connections per database. Every
 * completion is reported on the loop thread, never from inside the call that
 * submitted the request. */
#ifndef AR_DB_CUSTOMER_DB_H
#define AR_DB_CUSTOMER_DB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct ar_config;
struct ar_custdb;
struct ar_custdb_db;
struct ar_sql_tx;
struct ar_sql_req;

enum ar_sql_type {
    AR_SQL_NULL,
    AR_SQL_INT,  /* i; beyond 2^53 JS gets it as a string */
    AR_SQL_REAL, /* d */
    AR_SQL_TEXT, /* s, len */
    AR_SQL_BOOL, /* i: 0 or 1 */
    AR_SQL_JSON, /* s, len: JSON text (PostgreSQL json/jsonb, or a JS object bound) */
};

struct ar_sql_value {
    enum ar_sql_type type;
    int64_t i;
    double d;
    char *s; /* owned; NUL-terminated */
    size_t len;
};

struct ar_sql_result {
    size_t n_cols;
    char **cols; /* owned */
    size_t n_rows;
    struct ar_sql_value *cells; /* owned; row-major, n_rows * n_cols */
    int64_t changes;
    struct ar_sql_value last_id; /* SQLite: the inserted rowid; PostgreSQL: the first
                                    column RETURNING gave; AR_SQL_NULL when none */
    int skipped;                 /* a dry run did not execute this write */
};

enum ar_sql_kind { AR_SQL_RUN, AR_SQL_BEGIN, AR_SQL_COMMIT, AR_SQL_ROLLBACK };

/* status: 0, AR_EIO (the database refused: see req->error) or AR_ECANCELED. */
typedef void (*ar_sql_done_cb)(struct ar_sql_req *req, int status);

/* Requests wait in queues linked through the request itself. */
struct ar_sql_queue {
    struct ar_sql_req *first;
    struct ar_sql_req *last;
    size_t n;
};

struct ar_sql_req {
    /* Set by the caller before ar_custdb_submit(). */
    enum ar_sql_kind kind;
    char *text; /* owned; the statement (AR_SQL_RUN) */
    struct ar_sql_value *params; /* owned */
    size_t n_params;
    int dry_run;          /* run only statements that read */
    struct ar_sql_tx *tx; /* borrowed; the transaction (required for COMMIT and ROLLBACK,
                             which end it: the layer frees it) */
    ar_sql_done_cb done;
    void *data;

    /* Set by the layer before done() is called. */
    struct ar_sql_result result;
    char *error;              /* owned; the database's message */
    char *code;               /* owned; SQLSTATE or SQLite's code name, or NULL */
    struct ar_sql_tx *new_tx; /* AR_SQL_BEGIN that succeeded: use it, then end it */

    /* Private to the layer. */
    struct ar_custdb_db *db;
    struct ar_sql_queue *queue; /* the queue it waits in, or NULL */
    struct ar_sql_req *qnext;
    struct ar_sql_req *qprev;
    int state;
    int cancelled;
    uv_work_t work;
    void *conn;             /* PostgreSQL: the connection running it */
    struct sql_defer *defer; /* a completion scheduled for the next loop turn */
    char **pg_values;       /* owned; PostgreSQL: parameters as text */
};

/* A transaction holds one connection of one database from BEGIN to its end. */
struct ar_sql_tx {
    struct ar_custdb_db *db; /* borrowed */
    void *conn;              /* PostgreSQL: the pinned connection, NULL once lost */
    int ending;              /* COMMIT or ROLLBACK was submitted */
    int abandoned;
};

int ar_custdb_create(uv_loop_t *loop, const struct ar_config *cfg, struct ar_custdb **out);
/* Closes every connection. Only once the loop runs nothing of this layer (no request
 * pending): at engine shutdown, after the loop ran dry. */
void ar_custdb_destroy(struct ar_custdb *c);

/* The database recipes call name: from configuration (db.NAME, AUTORUN_DB_<NAME>),
 * or for "customers" the sample database in the state directory. On error err says
 * what to configure. The handle lives as long as c. */
int ar_custdb_get(struct ar_custdb *c, const char *name, struct ar_custdb_db **out, char *err,
                  size_t errlen);
const char *ar_custdb_name(const struct ar_custdb_db *db);
const char *ar_custdb_kind(const struct ar_custdb_db *db); /* "sqlite" or "postgres" */

/* Queues req; done() is called exactly once, later, on the loop. */
void ar_custdb_submit(struct ar_custdb_db *db, struct ar_sql_req *req);
/* The caller no longer wants req (its run was aborted): done() is called with
 * AR_ECANCELED, either from inside this call or, when the database is executing it,
 * once it stopped. Free req only in done(). */
void ar_custdb_cancel(struct ar_sql_req *req);
/* Rolls back and frees a transaction its owner can no longer end (an aborted run).
 * Cancel the transaction's pending requests first. */
void ar_custdb_tx_abandon(struct ar_sql_tx *tx);

/* Frees what the layer put into req (result, error, code) and what the caller owns
 * by contract (text, params); not req itself. */
void ar_sql_req_clear(struct ar_sql_req *req);
void ar_sql_result_clear(struct ar_sql_result *r);

/* ---- Shared by the backends (customer_db.c, pg.c) ---- */

enum { AR__SQL_NEW, AR__SQL_QUEUED, AR__SQL_RUNNING, AR__SQL_DEFERRED, AR__SQL_DONE };

void ar__sql_queue_push(struct ar_sql_queue *q, struct ar_sql_req *req);
void ar__sql_queue_push_front(struct ar_sql_queue *q, struct ar_sql_req *req);
void ar__sql_queue_remove(struct ar_sql_req *req);
struct ar_sql_req *ar__sql_queue_pop(struct ar_sql_queue *q);
/* Reports req's end now (from a loop callback) or on the next loop turn (from
 * anywhere, including inside submit). */
void ar__sql_complete(struct ar_sql_req *req, int status);
void ar__sql_complete_later(uv_loop_t *loop, struct ar_sql_req *req, int status);
/* Sets req->error from a printf format. */
void ar__sql_fail(struct ar_sql_req *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a row of n_cols NULL cells to a result (rows grow by doubling; *cap is the
 * capacity in rows) and returns its first cell. */
struct ar_sql_value *ar__sql_result_add_row(struct ar_sql_result *r, size_t *cap);

#endif
