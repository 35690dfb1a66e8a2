/* Customer databases by name, request queues, and the SQLite backend: statements run
 * on the libuv thread pool, one at a time per database, on one lazily opened
 * connection that only the request on the pool touches. */
#include "db/customer_db.h"
#include "core/config.h"
#include "core/error.h"
#include "core/util.h"
#include "db/pg.h"
#include "db/sql_text.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(AR_WITH_POSTGRES) && AR_WITH_POSTGRES
#define HAVE_PG 1
#else
#define HAVE_PG 0
#endif

#define STMT_CACHE 16
#define BUSY_TIMEOUT_MS 5000
#define SEED_MAX_BYTES (8 << 20)

enum backend { BACKEND_SQLITE, BACKEND_PG };

/* Prepared statements by text: recipes run the same few statements many times. */
struct stmt_slot {
    char *text; /* owned */
    sqlite3_stmt *stmt;
    uint64_t used;
};

struct ar_custdb {
    uv_loop_t *loop;
    const struct ar_config *cfg; /* borrowed */
    struct ar_custdb_db *dbs;    /* owned list */
};

struct ar_custdb_db {
    struct ar_custdb_db *next;
    struct ar_custdb *owner; /* borrowed */
    char *name;              /* owned */
    enum backend backend;

    /* SQLite. conn and cache belong to the request on the thread pool; the loop
     * thread reads only open_conn, a copy taken after each request. */
    char *path;   /* owned */
    char **seeds; /* owned; scripts that create the sample database when path is missing */
    size_t n_seeds;
    sqlite3 *conn;
    sqlite3 *open_conn;
    struct stmt_slot cache[STMT_CACHE];
    uint64_t tick;
    struct ar_sql_queue queue;
    struct ar_sql_req *running;
    struct ar_sql_tx *holder; /* the transaction that has the connection */

    struct ar_pg_db *pg; /* owned */
};

/* ---- Requests, queues and completions ---- */

void ar__sql_queue_push(struct ar_sql_queue *q, struct ar_sql_req *req)
{
    req->queue = q;
    req->qnext = NULL;
    req->qprev = q->last;
    if (q->last) {
        q->last->qnext = req;
    } else {
        q->first = req;
    }
    q->last = req;
    q->n++;
    req->state = AR__SQL_QUEUED;
}

void ar__sql_queue_push_front(struct ar_sql_queue *q, struct ar_sql_req *req)
{
    req->queue = q;
    req->qprev = NULL;
    req->qnext = q->first;
    if (q->first) {
        q->first->qprev = req;
    } else {
        q->last = req;
    }
    q->first = req;
    q->n++;
    req->state = AR__SQL_QUEUED;
}

void ar__sql_queue_remove(struct ar_sql_req *req)
{
    struct ar_sql_queue *q = req->queue;
    if (q == NULL) {
        return;
    }
    if (req->qprev) {
        req->qprev->qnext = req->qnext;
    } else {
        q->first = req->qnext;
    }
    if (req->qnext) {
        req->qnext->qprev = req->qprev;
    } else {
        q->last = req->qprev;
    }
    q->n--;
    req->queue = NULL;
    req->qnext = req->qprev = NULL;
}

struct ar_sql_req *ar__sql_queue_pop(struct ar_sql_queue *q)
{
    struct ar_sql_req *req = q->first;
    if (req) {
        ar__sql_queue_remove(req);
    }
    return req;
}

struct sql_defer {
    uv_timer_t timer;
    struct ar_sql_req *req; /* borrowed; NULL once cancelled */
    int status;
};

static void defer_close_cb(uv_handle_t *h)
{
    free(ar_container_of(h, struct sql_defer, timer));
}

static void defer_timer_cb(uv_timer_t *t)
{
    struct sql_defer *d = ar_container_of(t, struct sql_defer, timer);
    struct ar_sql_req *req = d->req;
    int status = d->status;
    uv_close((uv_handle_t *)t, defer_close_cb);
    if (req) {
        req->defer = NULL;
        ar__sql_complete(req, status);
    }
}

void ar__sql_complete_later(uv_loop_t *loop, struct ar_sql_req *req, int status)
{
    struct sql_defer *d = ar_calloc(1, sizeof(*d));
    d->req = req;
    d->status = status;
    req->defer = d;
    req->state = AR__SQL_DEFERRED;
    uv_timer_init(loop, &d->timer);
    uv_timer_start(&d->timer, defer_timer_cb, 0, 0);
}

void ar__sql_complete(struct ar_sql_req *req, int status)
{
    req->state = AR__SQL_DONE;
    if (req->cancelled) {
        /* Nobody will end a transaction its owner stopped waiting for. */
        if (req->new_tx) {
            struct ar_sql_tx *tx = req->new_tx;
            req->new_tx = NULL;
            ar_custdb_tx_abandon(tx);
        }
        status = AR_ECANCELED;
    }
    req->done(req, status);
}

void ar__sql_fail(struct ar_sql_req *req, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = ar_vasprintf(fmt, ap);
    va_end(ap);
    free(req->error);
    req->error = msg;
    free(req->code);
    req->code = ar_strdup(code);
}

struct ar_sql_value *ar__sql_result_add_row(struct ar_sql_result *r, size_t *cap)
{
    if (r->n_rows == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        struct ar_sql_value *cells = realloc(r->cells, n * (r->n_cols ? r->n_cols : 1) *
                                                           sizeof(*cells));
        if (cells == NULL) {
            abort();
        }
        r->cells = cells;
        *cap = n;
    }
    struct ar_sql_value *row = r->cells + r->n_rows * r->n_cols;
    memset(row, 0, r->n_cols * sizeof(*row));
    r->n_rows++;
    return row;
}

static void value_clear(struct ar_sql_value *v)
{
    free(v->s);
    v->s = NULL;
    v->type = AR_SQL_NULL;
}

void ar_sql_result_clear(struct ar_sql_result *r)
{
    for (size_t i = 0; i < r->n_cols; i++) {
        free(r->cols[i]);
    }
    free(r->cols);
    for (size_t i = 0; i < r->n_rows * r->n_cols; i++) {
        free(r->cells[i].s);
    }
    free(r->cells);
    value_clear(&r->last_id);
    memset(r, 0, sizeof(*r));
}

void ar_sql_req_clear(struct ar_sql_req *req)
{
    ar_sql_result_clear(&req->result);
    for (size_t i = 0; i < req->n_params; i++) {
        free(req->params[i].s);
        if (req->pg_values) {
            free(req->pg_values[i]);
        }
    }
    free(req->params);
    free(req->pg_values);
    free(req->text);
    free(req->error);
    free(req->code);
    req->params = NULL;
    req->pg_values = NULL;
    req->n_params = 0;
    req->text = req->error = req->code = NULL;
}

static void internal_done(struct ar_sql_req *req, int status)
{
    (void)status;
    ar_sql_req_clear(req);
    free(req);
}

/* ---- SQLite on the thread pool ---- */

static const char *sqlite_code_name(int code)
{
    static const char *const primary[] = {
        "SQLITE_OK",       "SQLITE_ERROR",    "SQLITE_INTERNAL", "SQLITE_PERM",
        "SQLITE_ABORT",    "SQLITE_BUSY",     "SQLITE_LOCKED",   "SQLITE_NOMEM",
        "SQLITE_READONLY", "SQLITE_INTERRUPT", "SQLITE_IOERR",   "SQLITE_CORRUPT",
        "SQLITE_NOTFOUND", "SQLITE_FULL",     "SQLITE_CANTOPEN", "SQLITE_PROTOCOL",
        "SQLITE_EMPTY",    "SQLITE_SCHEMA",   "SQLITE_TOOBIG",   "SQLITE_CONSTRAINT",
        "SQLITE_MISMATCH", "SQLITE_MISUSE",   "SQLITE_NOLFS",    "SQLITE_AUTH",
        "SQLITE_FORMAT",   "SQLITE_RANGE",    "SQLITE_NOTADB",
    };
    switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE: return "SQLITE_CONSTRAINT_UNIQUE";
    case SQLITE_CONSTRAINT_PRIMARYKEY: return "SQLITE_CONSTRAINT_PRIMARYKEY";
    case SQLITE_CONSTRAINT_NOTNULL: return "SQLITE_CONSTRAINT_NOTNULL";
    case SQLITE_CONSTRAINT_FOREIGNKEY: return "SQLITE_CONSTRAINT_FOREIGNKEY";
    case SQLITE_CONSTRAINT_CHECK: return "SQLITE_CONSTRAINT_CHECK";
    default: break;
    }
    int p = code & 0xff;
    return p >= 0 && (size_t)p < AR_ARRAY_SIZE(primary) ? primary[p] : "SQLITE_ERROR";
}

static void sqlite_fail(struct ar_sql_req *req, sqlite3 *conn)
{
    ar__sql_fail(req, sqlite_code_name(sqlite3_extended_errcode(conn)), "%s",
                 sqlite3_errmsg(conn));
}

/* Creates the sample database from the first seed script found. A temporary file is
 * linked into place, so a concurrent process never sees a half-built database. */
static int create_sample(struct ar_custdb_db *db, struct ar_sql_req *req)
{
    char *script = NULL;
    const char *from = NULL;
    for (size_t i = 0; i < db->n_seeds && script == NULL; i++) {
        if (ar_read_file(db->seeds[i], SEED_MAX_BYTES, &script, NULL) == 0) {
            from = db->seeds[i];
        }
    }
    if (script == NULL) {
        ar__sql_fail(req, "SQLITE_CANTOPEN",
                     "the sample database %s does not exist and there is no %s to create it "
                     "from",
                     db->path, db->n_seeds ? db->seeds[0] : "data/customers.sql");
        return -1;
    }
    char *tmp = ar_asprintf("%s.tmp-%ld", db->path, (long)getpid());
    unlink(tmp);
    sqlite3 *c = NULL;
    char *msg = NULL;
    int rc = sqlite3_open_v2(tmp, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c, "BEGIN", NULL, NULL, &msg);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c, script, NULL, NULL, &msg);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c, "COMMIT", NULL, NULL, &msg);
    }
    if (rc != SQLITE_OK) {
        ar__sql_fail(req, sqlite_code_name(rc), "cannot create the sample database from %s: %s",
                     from, msg ? msg : c ? sqlite3_errmsg(c) : sqlite3_errstr(rc));
    }
    sqlite3_free(msg);
    sqlite3_close(c);
    free(script);
    if (rc == SQLITE_OK) {
        chmod(tmp, 0600);
        if (link(tmp, db->path) != 0 && errno != EEXIST) {
            ar__sql_fail(req, "SQLITE_CANTOPEN", "cannot create %s: %s", db->path,
                         ar_strerror(-errno));
            rc = SQLITE_CANTOPEN;
        }
    }
    unlink(tmp);
    free(tmp);
    return rc == SQLITE_OK ? 0 : -1;
}

static int sqlite_open(struct ar_custdb_db *db, struct ar_sql_req *req)
{
    if (db->n_seeds > 0 && access(db->path, F_OK) != 0 && create_sample(db, req) != 0) {
        return -1;
    }
    sqlite3 *conn = NULL;
    /* One request uses the connection at a time, so SQLite's own mutex is not needed. */
    int rc = sqlite3_open_v2(db->path, &conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        ar__sql_fail(req, sqlite_code_name(rc), "cannot open %s: %s", db->path,
                     conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
        sqlite3_close(conn);
        return -1;
    }
    sqlite3_extended_result_codes(conn, 1);
    sqlite3_busy_timeout(conn, BUSY_TIMEOUT_MS);
    /* WAL lets other processes read while a recipe writes; a read-only file keeps
     * its journal mode, which is fine. */
    sqlite3_exec(conn, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    db->conn = conn;
    return 0;
}

/* True when nothing but blanks, semicolons and comments is left. */
static int only_trivia(const char *p)
{
    while (*p) {
        if (isspace((unsigned char)*p) || *p == ';') {
            p++;
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n') {
                p++;
            }
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            return 0;
        }
    }
    return 1;
}

static sqlite3_stmt *stmt_get(struct ar_custdb_db *db, struct ar_sql_req *req)
{
    struct stmt_slot *victim = &db->cache[0];
    for (size_t i = 0; i < STMT_CACHE; i++) {
        struct stmt_slot *s = &db->cache[i];
        if (s->text && strcmp(s->text, req->text) == 0) {
            s->used = ++db->tick;
            return s->stmt;
        }
        if (s->used < victim->used) {
            victim = s;
        }
    }
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v3(db->conn, req->text, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail) !=
        SQLITE_OK) {
        sqlite_fail(req, db->conn);
        return NULL;
    }
    if (stmt == NULL) {
        ar__sql_fail(req, "SQLITE_MISUSE", "the statement is empty");
        return NULL;
    }
    if (tail && !only_trivia(tail)) {
        sqlite3_finalize(stmt);
        ar__sql_fail(req, "SQLITE_MISUSE",
                     "one statement per call: there is more after the first ';'");
        return NULL;
    }
    sqlite3_finalize(victim->stmt);
    free(victim->text);
    victim->text = ar_strdup(req->text);
    victim->stmt = stmt;
    victim->used = ++db->tick;
    return stmt;
}

static int bind_params(struct ar_custdb_db *db, sqlite3_stmt *stmt, struct ar_sql_req *req)
{
    int want = sqlite3_bind_parameter_count(stmt);
    if ((size_t)want != req->n_params) {
        ar__sql_fail(req, "SQLITE_RANGE", "the statement has %d parameter%s but %zu value%s given",
                     want, want == 1 ? "" : "s", req->n_params,
                     req->n_params == 1 ? " was" : "s were");
        return -1;
    }
    for (size_t i = 0; i < req->n_params; i++) {
        const struct ar_sql_value *v = &req->params[i];
        int at = (int)i + 1, rc;
        switch (v->type) {
        case AR_SQL_INT:
        case AR_SQL_BOOL: rc = sqlite3_bind_int64(stmt, at, v->i); break;
        case AR_SQL_REAL: rc = sqlite3_bind_double(stmt, at, v->d); break;
        case AR_SQL_TEXT:
        case AR_SQL_JSON: rc = sqlite3_bind_text(stmt, at, v->s, (int)v->len, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(stmt, at); break;
        }
        if (rc != SQLITE_OK) {
            sqlite_fail(req, db->conn);
            return -1;
        }
    }
    return 0;
}

static void read_column(sqlite3_stmt *stmt, int i, struct ar_sql_value *v)
{
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        v->type = AR_SQL_INT;
        v->i = sqlite3_column_int64(stmt, i);
        break;
    case SQLITE_FLOAT:
        v->type = AR_SQL_REAL;
        v->d = sqlite3_column_double(stmt, i);
        break;
    case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_column_text(stmt, i);
        v->len = (size_t)sqlite3_column_bytes(stmt, i);
        v->s = ar_strndup(t ? (const char *)t : "", v->len);
        v->type = AR_SQL_TEXT;
        break;
    }
    case SQLITE_BLOB: {
        /* Blobs come back as lower-case hex text, as PostgreSQL's bytea does. */
        const unsigned char *b = sqlite3_column_blob(stmt, i);
        size_t n = (size_t)sqlite3_column_bytes(stmt, i);
        v->s = ar_malloc(n * 2 + 1);
        for (size_t k = 0; k < n; k++) {
            snprintf(v->s + k * 2, 3, "%02x", b[k]);
        }
        v->s[n * 2] = '\0';
        v->len = n * 2;
        v->type = AR_SQL_TEXT;
        break;
    }
    default: v->type = AR_SQL_NULL; break;
    }
}

static void sqlite_run(struct ar_custdb_db *db, struct ar_sql_req *req)
{
    sqlite3 *conn = db->conn;
    sqlite3_stmt *stmt = stmt_get(db, req);
    if (stmt == NULL) {
        return;
    }
    int readonly = sqlite3_stmt_readonly(stmt);
    if (req->dry_run && !readonly) {
        req->result.skipped = 1;
        return;
    }
    if (bind_params(db, stmt, req) == 0) {
        struct ar_sql_result *r = &req->result;
        char first[16];
        ar_sql_first_word(req->text, first, sizeof(first));
        sqlite3_int64 rowid_before = sqlite3_last_insert_rowid(conn);
        r->n_cols = (size_t)sqlite3_column_count(stmt);
        r->cols = ar_calloc(r->n_cols ? r->n_cols : 1, sizeof(char *));
        for (size_t i = 0; i < r->n_cols; i++) {
            const char *name = sqlite3_column_name(stmt, (int)i);
            r->cols[i] = ar_strdup(name ? name : "?");
        }
        size_t cap = 0;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            struct ar_sql_value *row = ar__sql_result_add_row(r, &cap);
            for (size_t i = 0; i < r->n_cols; i++) {
                read_column(stmt, (int)i, &row[i]);
            }
        }
        if (rc != SQLITE_DONE) {
            sqlite_fail(req, conn);
        } else if (!readonly) {
            r->changes = sqlite3_changes64(conn);
            sqlite3_int64 rowid = sqlite3_last_insert_rowid(conn);
            int insert = strcmp(first, "INSERT") == 0 || strcmp(first, "REPLACE") == 0;
            if (r->changes > 0 && (insert || rowid != rowid_before)) {
                r->last_id.type = AR_SQL_INT;
                r->last_id.i = rowid;
            }
        }
    }
    /* The cached statement must not keep pointers into this request's parameters. */
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static void sqlite_exec(struct ar_sql_req *req, sqlite3 *conn, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        ar__sql_fail(req, sqlite_code_name(sqlite3_extended_errcode(conn)), "%s",
                     msg ? msg : sqlite3_errmsg(conn));
    }
    sqlite3_free(msg);
}

/* On the thread pool. */
static void sqlite_work_cb(uv_work_t *w)
{
    struct ar_sql_req *req = ar_container_of(w, struct ar_sql_req, work);
    struct ar_custdb_db *db = req->db;
    if (db->conn == NULL && sqlite_open(db, req) != 0) {
        return;
    }
    sqlite3 *conn = db->conn;
    switch (req->kind) {
    case AR_SQL_BEGIN:
        /* IMMEDIATE takes the write lock now, so a later write in the transaction
         * cannot fail on another process's lock half-way. */
        sqlite_exec(req, conn, "BEGIN IMMEDIATE");
        break;
    case AR_SQL_COMMIT:
        if (sqlite3_get_autocommit(conn)) {
            ar__sql_fail(req, "SQLITE_ABORT",
                         "the transaction was rolled back by an error in one of its statements");
            break;
        }
        sqlite_exec(req, conn, "COMMIT");
        if (req->error && !sqlite3_get_autocommit(conn)) {
            sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
        }
        break;
    case AR_SQL_ROLLBACK:
        if (!sqlite3_get_autocommit(conn)) {
            sqlite_exec(req, conn, "ROLLBACK");
        }
        break;
    case AR_SQL_RUN:
        if (req->tx && sqlite3_get_autocommit(conn)) {
            /* SQLite ends a transaction on some errors; running on would write outside
             * of it. */
            ar__sql_fail(req, "SQLITE_ABORT",
                         "the transaction was rolled back by an error in one of its statements");
            break;
        }
        sqlite_run(db, req);
        break;
    }
}

static void sqlite_kick(struct ar_custdb_db *db);

static void sqlite_after_cb(uv_work_t *w, int status)
{
    (void)status; /* never cancelled: uv_cancel() is not used */
    struct ar_sql_req *req = ar_container_of(w, struct ar_sql_req, work);
    struct ar_custdb_db *db = req->db;
    db->running = NULL;
    db->open_conn = db->conn;
    int st = req->error ? AR_EIO : 0;
    if (req->kind == AR_SQL_BEGIN && st == 0) {
        struct ar_sql_tx *tx = ar_calloc(1, sizeof(*tx));
        tx->db = db;
        db->holder = tx;
        req->new_tx = tx;
    } else if (req->kind == AR_SQL_COMMIT || req->kind == AR_SQL_ROLLBACK) {
        if (db->holder == req->tx) {
            db->holder = NULL;
        }
        free(req->tx);
        req->tx = NULL;
    }
    sqlite_kick(db);
    ar__sql_complete(req, st);
}

static void sqlite_kick(struct ar_custdb_db *db)
{
    if (db->running) {
        return;
    }
    struct ar_sql_req *req = db->queue.first;
    /* While a transaction holds the connection only its own requests may run. */
    while (req && db->holder && req->tx != db->holder) {
        req = req->qnext;
    }
    if (req == NULL) {
        return;
    }
    ar__sql_queue_remove(req);
    req->state = AR__SQL_RUNNING;
    db->running = req;
    uv_queue_work(db->owner->loop, &req->work, sqlite_work_cb, sqlite_after_cb);
}

/* ---- Databases by name ---- */

int ar_custdb_create(uv_loop_t *loop, const struct ar_config *cfg, struct ar_custdb **out)
{
    struct ar_custdb *c = ar_calloc(1, sizeof(*c));
    c->loop = loop;
    c->cfg = cfg;
    *out = c;
    return 0;
}

static void db_free(struct ar_custdb_db *db)
{
    for (size_t i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(db->cache[i].stmt);
        free(db->cache[i].text);
    }
    sqlite3_close_v2(db->conn);
    free(db->holder);
#if HAVE_PG
    ar_pg_db_destroy(db->pg);
#endif
    for (size_t i = 0; i < db->n_seeds; i++) {
        free(db->seeds[i]);
    }
    free(db->seeds);
    free(db->path);
    free(db->name);
    free(db);
}

void ar_custdb_destroy(struct ar_custdb *c)
{
    if (c == NULL) {
        return;
    }
    while (c->dbs) {
        struct ar_custdb_db *db = c->dbs;
        c->dbs = db->next;
        db_free(db);
    }
    free(c);
}

static void add_seed(struct ar_custdb_db *db, const char *dir)
{
    db->seeds = realloc(db->seeds, (db->n_seeds + 1) * sizeof(char *));
    if (db->seeds == NULL) {
        abort();
    }
    db->seeds[db->n_seeds++] = ar_asprintf("%s/data/customers.sql", dir);
}

/* Only the scheme is ever shown: the rest of a URL may hold a password. */
static void bad_url(const char *name, const char *url, char *err, size_t errlen)
{
    const char *colon = strchr(url, ':');
    int n = colon ? (int)(colon - url) : (int)strlen(url);
    if (n > 20) {
        n = 20;
    }
    snprintf(err, errlen,
             "database '%s': unsupported URL '%.*s:...' (use sqlite:PATH or postgres://...)", name,
             n, url);
}

int ar_custdb_get(struct ar_custdb *c, const char *name, struct ar_custdb_db **out, char *err,
                  size_t errlen)
{
    char key[80];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(key)) {
        snprintf(err, errlen, "'%.80s' is not a database name", name);
        return AR_EINVAL;
    }
    const char *url = ar_config_db_url(c->cfg, name);
    snprintf(key, sizeof(key), "%s", name);
    if (url == NULL) {
        /* Names from the environment are lower-case (AUTORUN_DB_CRM is "crm"). */
        for (size_t i = 0; i < n; i++) {
            key[i] = (char)tolower((unsigned char)name[i]);
        }
        url = ar_config_db_url(c->cfg, key);
    }
    for (struct ar_custdb_db *db = c->dbs; db; db = db->next) {
        if (strcmp(db->name, key) == 0) {
            *out = db;
            return 0;
        }
    }
    struct ar_custdb_db *db = ar_calloc(1, sizeof(*db));
    db->owner = c;
    if (url == NULL && strcmp(key, "customers") == 0) {
        /* The sample database: works out of the box, built on first use in the state
         * directory from the shipped script, which is never modified. */
        db->backend = BACKEND_SQLITE;
        db->path = ar_path_join(c->cfg->home, "customers.db");
        add_seed(db, c->cfg->recipes_dir);
        /* Where a package put the examples, wherever it was installed. */
        char *share = ar_exe_share_dir();
        if (share) {
            char *dir = ar_path_join(share, "recipes");
            add_seed(db, dir);
            free(dir);
            free(share);
        }
        add_seed(db, AR_SHARE_DIR "/recipes");
#ifdef AR_SOURCE_DIR
        add_seed(db, AR_SOURCE_DIR "/recipes");
#endif
    } else if (url == NULL) {
        char upper[80];
        for (size_t i = 0; i <= n; i++) {
            upper[i] = (char)toupper((unsigned char)name[i]);
        }
        snprintf(err, errlen,
                 "no database '%s' is configured (set AUTORUN_DB_%s=sqlite:PATH or postgres://...)",
                 name, upper);
        free(db);
        return AR_ENOENT;
    } else if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        if (strncmp(path, "//", 2) == 0) {
            path += 2; /* sqlite:///abs/path and sqlite://relative/path */
        }
        if (*path == '\0') {
            snprintf(err, errlen, "database '%s': sqlite: needs a file path (sqlite:PATH)", name);
            free(db);
            return AR_EINVAL;
        }
        db->backend = BACKEND_SQLITE;
        db->path = ar_strdup(path);
    } else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
#if HAVE_PG
        db->backend = BACKEND_PG;
        if (ar_pg_db_create(c->loop, key, url, &db->pg, err, errlen) != 0) {
            free(db);
            return AR_EINVAL;
        }
#else
        snprintf(err, errlen, "database '%s': this autorun was built without PostgreSQL support",
                 name);
        free(db);
        return AR_EINVAL;
#endif
    } else {
        bad_url(name, url, err, errlen);
        free(db);
        return AR_EINVAL;
    }
    db->name = ar_strdup(key);
    db->next = c->dbs;
    c->dbs = db;
    *out = db;
    return 0;
}

const char *ar_custdb_name(const struct ar_custdb_db *db)
{
    return db->name;
}

const char *ar_custdb_kind(const struct ar_custdb_db *db)
{
    return db->backend == BACKEND_PG ? "postgres" : "sqlite";
}

void ar_custdb_submit(struct ar_custdb_db *db, struct ar_sql_req *req)
{
    uv_loop_t *loop = db->owner->loop;
    req->db = db;
    req->state = AR__SQL_NEW;
    req->cancelled = 0;
    req->new_tx = NULL;
    struct ar_sql_tx *tx = req->tx;
    int ends = req->kind == AR_SQL_COMMIT || req->kind == AR_SQL_ROLLBACK;
    if (ends && tx == NULL) {
        ar__sql_fail(req, NULL, "there is no transaction to end");
        ar__sql_complete_later(loop, req, AR_EIO);
        return;
    }
    if (tx && (tx->db != db || tx->ending || tx->abandoned)) {
        ar__sql_fail(req, NULL, "the transaction has ended");
        ar__sql_complete_later(loop, req, AR_EIO);
        return;
    }
    if (ends) {
        tx->ending = 1;
    }
    if (db->backend == BACKEND_PG) {
#if HAVE_PG
        ar_pg_submit(db->pg, req);
#endif
        return;
    }
    ar__sql_queue_push(&db->queue, req);
    sqlite_kick(db);
}

void ar_custdb_cancel(struct ar_sql_req *req)
{
    if (req->cancelled || req->state == AR__SQL_DONE) {
        return;
    }
    req->cancelled = 1;
    struct ar_custdb_db *db = req->db;
    switch (req->state) {
    case AR__SQL_DEFERRED:
        req->defer->req = NULL;
        req->defer = NULL;
        ar__sql_complete(req, AR_ECANCELED);
        break;
    case AR__SQL_QUEUED:
        if (db->backend == BACKEND_SQLITE) {
            ar__sql_queue_remove(req);
            if (req->kind == AR_SQL_COMMIT || req->kind == AR_SQL_ROLLBACK) {
                /* The transaction still holds the connection: roll it back. */
                struct ar_sql_tx *tx = req->tx;
                req->tx = NULL;
                tx->ending = 0;
                tx->abandoned = 0;
                ar_custdb_tx_abandon(tx);
            }
            ar__sql_complete(req, AR_ECANCELED);
            break;
        }
#if HAVE_PG
        ar_pg_cancel(req);
#endif
        break;
    case AR__SQL_RUNNING:
        if (db->backend == BACKEND_SQLITE) {
            /* Stops a long statement; done() follows from the after-work callback. */
            if (db->open_conn) {
                sqlite3_interrupt(db->open_conn);
            }
            break;
        }
#if HAVE_PG
        ar_pg_cancel(req);
#endif
        break;
    default: break;
    }
}

void ar_custdb_tx_abandon(struct ar_sql_tx *tx)
{
    if (tx->abandoned) {
        return;
    }
    tx->abandoned = 1;
    if (tx->ending) {
        return; /* its COMMIT or ROLLBACK is under way and frees it */
    }
    struct ar_custdb_db *db = tx->db;
    if (db->backend == BACKEND_PG) {
#if HAVE_PG
        ar_pg_tx_abandon(tx);
#endif
        return;
    }
    struct ar_sql_req *req = ar_calloc(1, sizeof(*req));
    req->kind = AR_SQL_ROLLBACK;
    req->tx = tx;
    req->done = internal_done;
    req->db = db;
    tx->ending = 1;
    ar__sql_queue_push_front(&db->queue, req);
    sqlite_kick(db);
}
