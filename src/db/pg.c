/* PostgreSQL through libpq's asynchronous API driven by the loop (see pg.h). A
 * connection is polled only while it connects or runs a request, so idle connections
 * never keep the loop alive; requests wait in FIFO order for a free connection. */
#include "db/pg.h"

#if defined(AR_WITH_POSTGRES) && AR_WITH_POSTGRES

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "db/sql_text.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX 4
#define CONNECT_TIMEOUT_MS 10000

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); they never change. */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

/* The libuv side of a connection, separate so that it can outlive the connection
 * until both handles are closed. */
struct pg_watch {
    uv_poll_t poll;
    uv_timer_t timer;
    struct pg_conn *conn; /* borrowed; NULL once released */
    int fd;
    int open; /* handles not closed yet */
};

enum conn_state { CONN_CONNECTING, CONN_READY };

struct pg_conn {
    struct pg_conn *next;
    struct pg_conn *prev;
    struct ar_pg_db *db; /* borrowed */
    PGconn *pq;
    enum conn_state state;
    uint64_t deadline;       /* uv_now() by which connecting must be done */
    struct pg_watch *watch;  /* owned until released; only while connecting or busy */
    struct ar_sql_req *req;  /* running */
    struct ar_sql_tx *tx;    /* the transaction it is pinned to */
    struct ar_sql_queue txq; /* that transaction's requests, waiting for this one */
    PGresult *res;
    PGresult *err;
    const char *failure; /* a protocol problem found while reading results */
    int flushing;
    int rolled_back; /* COMMIT of a failed transaction became ROLLBACK */
};

struct ar_pg_db {
    uv_loop_t *loop;
    char *name; /* owned */
    char *url;  /* owned; never shown: it may hold a password */
    struct pg_conn conns; /* list head */
    int n_conns;
    int n_connecting;
    uint64_t connect_timeout_ms;
    struct ar_sql_queue waiters;
};

static void poll_cb(uv_poll_t *h, int status, int events);
static int start(struct pg_conn *c, struct ar_sql_req *req);
static void dispatch(struct ar_pg_db *db);

/* ---- Watching the socket ---- */

static void watch_close_cb(uv_handle_t *h)
{
    struct pg_watch *w = h->data;
    if (--w->open == 0) {
        free(w);
    }
}

static void watch_release(struct pg_conn *c)
{
    struct pg_watch *w = c->watch;
    if (w == NULL) {
        return;
    }
    c->watch = NULL;
    w->conn = NULL;
    uv_close((uv_handle_t *)&w->poll, watch_close_cb);
    uv_close((uv_handle_t *)&w->timer, watch_close_cb);
}

static void connect_timeout_cb(uv_timer_t *t);

static int watch(struct pg_conn *c, int events)
{
    int fd = PQsocket(c->pq);
    if (fd < 0) {
        return AR_EIO;
    }
    /* libpq may open a new socket while connecting (another address, no SSL). */
    if (c->watch && c->watch->fd != fd) {
        watch_release(c);
    }
    if (c->watch == NULL) {
        struct pg_watch *w = ar_calloc(1, sizeof(*w));
        int rc = uv_poll_init(c->db->loop, &w->poll, fd);
        if (rc != 0) {
            free(w); /* a failed init leaves nothing registered */
            return rc;
        }
        w->poll.data = w;
        uv_timer_init(c->db->loop, &w->timer);
        w->timer.data = w;
        w->open = 2;
        w->fd = fd;
        w->conn = c;
        c->watch = w;
        if (c->state == CONN_CONNECTING) {
            uint64_t now = uv_now(c->db->loop);
            uv_timer_start(&w->timer, connect_timeout_cb, c->deadline > now ? c->deadline - now : 0,
                           0);
        }
    }
    return uv_poll_start(&c->watch->poll, events, poll_cb);
}

/* ---- Connections ---- */

static void notice_cb(void *arg, const char *message)
{
    (void)arg;
    ar_log_debug("postgres", "%s", message);
}

/* Ends a connection; requests of its transaction that were waiting fail (later). */
static void discard(struct pg_conn *c)
{
    struct ar_pg_db *db = c->db;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    db->n_conns--;
    if (c->state == CONN_CONNECTING) {
        db->n_connecting--;
    }
    if (c->tx) {
        c->tx->conn = NULL;
        c->tx = NULL;
    }
    struct ar_sql_req *r;
    while ((r = ar__sql_queue_pop(&c->txq)) != NULL) {
        ar__sql_fail(r, "08003", "the connection to PostgreSQL was lost during the transaction");
        if (r->kind == AR_SQL_COMMIT || r->kind == AR_SQL_ROLLBACK) {
            free(r->tx);
            r->tx = NULL;
        }
        ar__sql_complete_later(db->loop, r, AR_EIO);
    }
    /* The poll handle lets go of the socket before PQfinish closes it. */
    watch_release(c);
    PQfinish(c->pq);
    PQclear(c->res);
    PQclear(c->err);
    free(c);
}

static void fail_waiters(struct ar_pg_db *db, const char *why)
{
    struct ar_sql_req *r;
    char *msg = ar_sql_excerpt(why, 500);
    while ((r = ar__sql_queue_pop(&db->waiters)) != NULL) {
        ar__sql_fail(r, "08001", "cannot connect to PostgreSQL: %s", msg);
        ar__sql_complete_later(db->loop, r, AR_EIO);
    }
    free(msg);
}

/* A connection that could not be established; when it was the last one, nobody else
 * will serve the waiting requests, so they fail with its reason. */
static void conn_failed(struct pg_conn *c, const char *why)
{
    struct ar_pg_db *db = c->db;
    char *msg = ar_strdup(why && *why ? why : "unknown error");
    discard(c);
    if (db->n_conns == 0) {
        fail_waiters(db, msg);
    }
    free(msg);
}

/* Hands a free connection its next request, or stops watching it. */
static void conn_free(struct pg_conn *c)
{
    struct ar_pg_db *db = c->db;
    struct ar_sql_queue *q = c->tx ? &c->txq : &db->waiters;
    struct ar_sql_req *next = ar__sql_queue_pop(q);
    if (next == NULL) {
        watch_release(c);
        return;
    }
    if (start(c, next) != 0) {
        dispatch(db);
    }
}

static void connected(struct pg_conn *c)
{
    /* Sends never block the loop: what does not fit is flushed on write-readiness. */
    PQsetnonblocking(c->pq, 1);
    c->state = CONN_READY;
    c->db->n_connecting--;
    if (c->watch) {
        uv_timer_stop(&c->watch->timer);
        uv_poll_stop(&c->watch->poll);
    }
    conn_free(c);
}

static void connect_step(struct pg_conn *c)
{
    switch (PQconnectPoll(c->pq)) {
    case PGRES_POLLING_READING:
        if (watch(c, UV_READABLE) != 0) {
            conn_failed(c, "cannot watch the connection's socket");
        }
        break;
    case PGRES_POLLING_WRITING:
        if (watch(c, UV_WRITABLE) != 0) {
            conn_failed(c, "cannot watch the connection's socket");
        }
        break;
    case PGRES_POLLING_OK: connected(c); break;
    default: conn_failed(c, PQerrorMessage(c->pq)); break;
    }
}

static void connect_timeout_cb(uv_timer_t *t)
{
    struct pg_watch *w = t->data;
    struct pg_conn *c = w->conn;
    if (c && c->state == CONN_CONNECTING) {
        char why[64];
        snprintf(why, sizeof(why), "timeout expired after %llu ms",
                 (unsigned long long)c->db->connect_timeout_ms);
        conn_failed(c, why);
    }
}

static int conn_open(struct ar_pg_db *db, char *why, size_t whylen)
{
    /* Dates come back in ISO form and timestamps in UTC, as recipes compare them with
     * ctx.now(); "options" comes before the URL so that the URL's own options win. */
    const char *const keys[] = {"options", "dbname", "client_encoding",
                                "fallback_application_name", NULL};
    const char *const vals[] = {"-c DateStyle=ISO,YMD -c TimeZone=UTC", db->url, "UTF8",
                                "autorun", NULL};
    PGconn *pq = PQconnectStartParams(keys, vals, 1);
    if (pq == NULL) {
        snprintf(why, whylen, "out of memory");
        return AR_ENOMEM;
    }
    if (PQstatus(pq) == CONNECTION_BAD) {
        snprintf(why, whylen, "%s", PQerrorMessage(pq));
        PQfinish(pq);
        return AR_EIO;
    }
    PQsetNoticeProcessor(pq, notice_cb, NULL);
    struct pg_conn *c = ar_calloc(1, sizeof(*c));
    c->db = db;
    c->pq = pq;
    c->state = CONN_CONNECTING;
    c->deadline = uv_now(db->loop) + db->connect_timeout_ms;
    c->next = db->conns.next;
    c->prev = &db->conns;
    db->conns.next->prev = c;
    db->conns.next = c;
    db->n_conns++;
    db->n_connecting++;
    /* Right after PQconnectStart, libpq's protocol is "as if it asked to write". */
    if (watch(c, UV_WRITABLE) != 0) {
        snprintf(why, whylen, "cannot watch the connection's socket");
        discard(c);
        return AR_EIO;
    }
    return 0;
}

/* An idle connection may have been closed by the server since its last use. */
static int conn_alive(struct pg_conn *c)
{
    int fd = PQsocket(c->pq);
    if (fd < 0 || PQstatus(c->pq) != CONNECTION_OK) {
        return 0;
    }
    /* A server that ends a session first sends why, then closes: reading the message
     * succeeds and only the next read sees the end. */
    for (int i = 0; i < 4; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0) {
            return 1;
        }
        if (!PQconsumeInput(c->pq) || PQstatus(c->pq) != CONNECTION_OK) {
            return 0;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->pq)) != NULL) {
            PQfreemem(n);
        }
    }
    return 0; /* still talking while idle: not a connection to trust */
}

static void dispatch(struct ar_pg_db *db)
{
    while (db->waiters.first) {
        struct pg_conn *idle = NULL;
        for (struct pg_conn *c = db->conns.next; c != &db->conns; c = c->next) {
            if (c->state == CONN_READY && c->req == NULL && c->tx == NULL) {
                idle = c;
                break;
            }
        }
        if (idle) {
            if (!conn_alive(idle)) {
                discard(idle);
            } else {
                start(idle, ar__sql_queue_pop(&db->waiters));
            }
            continue;
        }
        if (db->n_conns >= POOL_MAX || (size_t)db->n_connecting >= db->waiters.n) {
            return;
        }
        char why[512];
        if (conn_open(db, why, sizeof(why)) != 0) {
            if (db->n_conns == 0) {
                fail_waiters(db, why);
            }
            return;
        }
    }
}

/* ---- Requests ---- */

static char *number_text(double d)
{
    /* The shortest text that reads back as the same double, so 0.1 stays "0.1". */
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    return ar_strdup(buf);
}

static void prepare_values(struct ar_sql_req *req)
{
    req->pg_values = ar_calloc(req->n_params ? req->n_params : 1, sizeof(char *));
    for (size_t i = 0; i < req->n_params; i++) {
        const struct ar_sql_value *v = &req->params[i];
        switch (v->type) {
        case AR_SQL_INT: req->pg_values[i] = ar_asprintf("%lld", (long long)v->i); break;
        case AR_SQL_REAL: req->pg_values[i] = number_text(v->d); break;
        case AR_SQL_BOOL: req->pg_values[i] = ar_strdup(v->i ? "t" : "f"); break;
        case AR_SQL_TEXT:
        case AR_SQL_JSON: req->pg_values[i] = ar_strdup(v->s); break;
        default: req->pg_values[i] = NULL; break;
        }
    }
}

static int send_request(struct pg_conn *c, struct ar_sql_req *req)
{
    switch (req->kind) {
    case AR_SQL_BEGIN: return PQsendQuery(c->pq, "BEGIN");
    case AR_SQL_ROLLBACK: return PQsendQuery(c->pq, "ROLLBACK");
    case AR_SQL_COMMIT:
        /* PostgreSQL answers COMMIT of a failed transaction with a silent rollback;
         * say so instead. */
        if (PQtransactionStatus(c->pq) == PQTRANS_INERROR) {
            c->rolled_back = 1;
            return PQsendQuery(c->pq, "ROLLBACK");
        }
        return PQsendQuery(c->pq, "COMMIT");
    case AR_SQL_RUN: break;
    }
    /* Untyped text parameters let the server infer each type from its use, as
     * node-postgres does; booleans say they are booleans. */
    Oid *types = ar_calloc(req->n_params ? req->n_params : 1, sizeof(Oid));
    for (size_t i = 0; i < req->n_params; i++) {
        types[i] = req->params[i].type == AR_SQL_BOOL ? OID_BOOL : 0;
    }
    int ok = PQsendQueryParams(c->pq, req->text, (int)req->n_params, types,
                               (const char *const *)req->pg_values, NULL, NULL, 0);
    free(types);
    return ok;
}

/* Frees the transaction a COMMIT or ROLLBACK ended. */
static void end_tx(struct pg_conn *c, struct ar_sql_req *req)
{
    if (req->kind != AR_SQL_COMMIT && req->kind != AR_SQL_ROLLBACK) {
        return;
    }
    if (c && c->tx == req->tx) {
        c->tx = NULL;
    }
    free(req->tx);
    req->tx = NULL;
}

/* Starts req on c. On failure req completes later and c is gone: returns -1. */
static int start(struct pg_conn *c, struct ar_sql_req *req)
{
    c->req = req;
    req->conn = c;
    req->state = AR__SQL_RUNNING;
    c->failure = NULL;
    c->rolled_back = 0;
    int flushed = 1;
    if (send_request(c, req)) {
        flushed = PQflush(c->pq);
    } else {
        flushed = -1;
    }
    if (flushed >= 0) {
        c->flushing = flushed == 1;
        if (watch(c, flushed ? UV_READABLE | UV_WRITABLE : UV_READABLE) == 0) {
            return 0;
        }
    }
    char *msg = ar_sql_excerpt(PQerrorMessage(c->pq), 500);
    ar__sql_fail(req, "08006", "%s", *msg ? msg : "cannot send the statement to PostgreSQL");
    free(msg);
    uv_loop_t *loop = c->db->loop;
    c->req = NULL;
    req->conn = NULL;
    end_tx(c, req);
    discard(c);
    ar__sql_complete_later(loop, req, AR_EIO);
    return -1;
}

static void convert(Oid type, const char *s, size_t len, struct ar_sql_value *v)
{
    switch (type) {
    case OID_BOOL:
        v->type = AR_SQL_BOOL;
        v->i = s[0] == 't';
        return;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        v->type = AR_SQL_INT;
        v->i = strtoll(s, NULL, 10);
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        v->type = AR_SQL_REAL;
        v->d = strtod(s, NULL);
        return;
    case OID_NUMERIC:
        if (ar_sql_decimal_exact(s)) {
            v->type = AR_SQL_REAL;
            v->d = strtod(s, NULL);
            return;
        }
        break;
    case OID_JSON:
    case OID_JSONB:
        v->type = AR_SQL_JSON;
        v->s = ar_strndup(s, len);
        v->len = len;
        return;
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ: {
        char iso[40];
        if (ar_sql_pg_timestamp(s, iso, sizeof(iso)) == 0) {
            v->type = AR_SQL_TEXT;
            v->s = ar_strdup(iso);
            v->len = strlen(iso);
            return;
        }
        break;
    }
    case OID_BYTEA: s = ar_sql_pg_bytea_hex(s); break;
    default: break;
    }
    v->type = AR_SQL_TEXT;
    v->s = ar_strdup(s);
    v->len = strlen(v->s);
}

static void fill_result(struct ar_sql_req *req, const PGresult *res)
{
    struct ar_sql_result *r = &req->result;
    int cols = PQnfields(res), rows = PQntuples(res);
    r->n_cols = (size_t)cols;
    r->cols = ar_calloc(cols ? (size_t)cols : 1, sizeof(char *));
    for (int i = 0; i < cols; i++) {
        r->cols[i] = ar_strdup(PQfname(res, i));
    }
    size_t cap = 0;
    for (int row = 0; row < rows; row++) {
        struct ar_sql_value *cells = ar__sql_result_add_row(r, &cap);
        for (int i = 0; i < cols; i++) {
            if (!PQgetisnull(res, row, i)) {
                convert(PQftype(res, i), PQgetvalue(res, row, i),
                        (size_t)PQgetlength(res, row, i), &cells[i]);
            }
        }
    }
    const char *tag = PQcmdStatus((PGresult *)res);
    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
        strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0) {
        r->changes = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
    }
    /* PostgreSQL has no rowid: lastId is what INSERT ... RETURNING gave first. */
    if (strncmp(tag, "INSERT", 6) == 0 && rows > 0 && cols > 0) {
        r->last_id = r->cells[0];
        r->last_id.s = ar_strdup(r->cells[0].s);
    }
}

static void request_done(struct pg_conn *c)
{
    struct ar_sql_req *req = c->req;
    struct ar_pg_db *db = c->db;
    c->req = NULL;
    req->conn = NULL;
    int st = 0;
    if (c->failure) {
        ar__sql_fail(req, "0A000", "%s", c->failure);
        st = AR_EIO;
    } else if (c->err) {
        const char *primary = PQresultErrorField(c->err, PG_DIAG_MESSAGE_PRIMARY);
        char *msg = primary ? ar_strdup(primary) : ar_sql_excerpt(PQresultErrorMessage(c->err), 500);
        ar__sql_fail(req, PQresultErrorField(c->err, PG_DIAG_SQLSTATE), "%s", msg);
        free(msg);
        st = AR_EIO;
    } else if (c->res && req->kind == AR_SQL_RUN) {
        fill_result(req, c->res);
    } else if (c->res == NULL) {
        ar__sql_fail(req, "0A000", "PostgreSQL sent no result");
        st = AR_EIO;
    }
    PQclear(c->res);
    PQclear(c->err);
    c->res = c->err = NULL;
    if (st == 0 && req->kind == AR_SQL_COMMIT && c->rolled_back) {
        ar__sql_fail(req, "25P02",
                     "the transaction was rolled back because a statement in it failed");
        st = AR_EIO;
    }
    /* A connection left in COPY mode cannot be used again. */
    int broken = (c->failure && strncmp(c->failure, "COPY", 4) == 0) ||
                 PQstatus(c->pq) != CONNECTION_OK;
    if (req->kind == AR_SQL_BEGIN && st == 0) {
        struct ar_sql_tx *tx = ar_calloc(1, sizeof(*tx));
        tx->db = req->db;
        tx->conn = c;
        c->tx = tx;
        req->new_tx = tx;
    }
    end_tx(c, req);
    if (c->tx && c->tx->abandoned) {
        /* Its owner went away while this request ran. */
        free(c->tx);
        c->tx = NULL;
        broken = 1;
    }
    if (broken) {
        discard(c);
        dispatch(db);
    } else {
        conn_free(c);
    }
    ar__sql_complete(req, st);
}

/* The connection broke in the middle of a request. */
static void io_failed(struct pg_conn *c)
{
    struct ar_sql_req *req = c->req;
    struct ar_pg_db *db = c->db;
    char *msg = ar_sql_excerpt(PQerrorMessage(c->pq), 500);
    ar__sql_fail(req, "08006", "%s", *msg ? msg : "the connection to PostgreSQL was lost");
    free(msg);
    c->req = NULL;
    req->conn = NULL;
    end_tx(c, req);
    discard(c);
    dispatch(db);
    ar__sql_complete(req, AR_EIO);
}

static void collect(struct pg_conn *c, PGresult *res)
{
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        if (c->res == NULL) {
            c->res = res;
            return;
        }
        break;
    case PGRES_EMPTY_QUERY:
        if (c->err == NULL && c->failure == NULL) {
            c->failure = "the statement is empty";
        }
        break;
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH: c->failure = "COPY is not supported; use INSERT or SELECT"; break;
    default:
        if (c->err == NULL) {
            c->err = res;
            return;
        }
        break;
    }
    PQclear(res);
}

static void conn_io(struct pg_conn *c, int events)
{
    PGconn *pq = c->pq;
    if (c->req == NULL) {
        return;
    }
    if ((events & UV_READABLE) && !PQconsumeInput(pq)) {
        io_failed(c);
        return;
    }
    if (c->flushing) {
        int r = PQflush(pq);
        if (r < 0) {
            io_failed(c);
            return;
        }
        if (r == 1) {
            return;
        }
        c->flushing = 0;
        if (watch(c, UV_READABLE) != 0) {
            io_failed(c);
            return;
        }
    }
    while (!PQisBusy(pq)) {
        PGresult *res = PQgetResult(pq);
        if (res == NULL) {
            request_done(c);
            return;
        }
        collect(c, res);
        if (c->failure && strncmp(c->failure, "COPY", 4) == 0) {
            /* A connection in COPY mode cannot be used again. */
            request_done(c);
            return;
        }
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct pg_watch *w = h->data;
    struct pg_conn *c = w->conn;
    if (c == NULL) {
        return;
    }
    if (c->state == CONN_CONNECTING) {
        connect_step(c);
        return;
    }
    if (status < 0) {
        events = UV_READABLE | UV_WRITABLE; /* let libpq find out what went wrong */
    }
    conn_io(c, events);
}

/* ---- The database ---- */

int ar_pg_db_create(uv_loop_t *loop, const char *name, const char *url, struct ar_pg_db **out,
                    char *err, size_t errlen)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);
    if (opts == NULL) {
        char *msg = why ? ar_sql_excerpt(why, 300) : ar_strdup("out of memory");
        snprintf(err, errlen, "database '%s': bad PostgreSQL URL: %s", name, msg);
        free(msg);
        PQfreemem(why);
        return AR_EINVAL;
    }
    struct ar_pg_db *db = ar_calloc(1, sizeof(*db));
    db->loop = loop;
    db->name = ar_strdup(name);
    db->url = ar_strdup(url);
    db->conns.next = db->conns.prev = &db->conns;
    db->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    /* libpq ignores connect_timeout in its asynchronous API: the pool applies it. */
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atoi(o->val) > 0) {
            db->connect_timeout_ms = (uint64_t)atoi(o->val) * 1000;
        }
    }
    PQconninfoFree(opts);
    *out = db;
    return 0;
}

void ar_pg_db_destroy(struct ar_pg_db *db)
{
    if (db == NULL) {
        return;
    }
    while (db->conns.next != &db->conns) {
        struct pg_conn *c = db->conns.next;
        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (c->watch) {
            /* Cannot happen once the loop ran dry; the loop owns the handles. */
            c->watch->conn = NULL;
        }
        free(c->tx);
        PQfinish(c->pq);
        PQclear(c->res);
        PQclear(c->err);
        free(c);
    }
    free(db->name);
    free(db->url);
    free(db);
}

void ar_pg_submit(struct ar_pg_db *db, struct ar_sql_req *req)
{
    if (req->kind == AR_SQL_RUN) {
        char *text;
        int n;
        ar_sql_pg_placeholders(req->text, &text, &n);
        free(req->text);
        req->text = text;
        if (req->dry_run && !ar_sql_is_read(text)) {
            req->result.skipped = 1;
            ar__sql_complete_later(db->loop, req, 0);
            return;
        }
        prepare_values(req);
    }
    if (req->tx) {
        struct pg_conn *c = req->tx->conn;
        if (c == NULL) {
            int rollback = req->kind == AR_SQL_ROLLBACK;
            end_tx(NULL, req);
            if (rollback) {
                /* The server rolled it back when the connection ended. */
                ar__sql_complete_later(db->loop, req, 0);
                return;
            }
            ar__sql_fail(req, "08003",
                         "the connection to PostgreSQL was lost; the transaction was rolled back");
            ar__sql_complete_later(db->loop, req, AR_EIO);
            return;
        }
        if (c->req) {
            ar__sql_queue_push(&c->txq, req);
        } else if (start(c, req) != 0) {
            dispatch(db);
        }
        return;
    }
    ar__sql_queue_push(&db->waiters, req);
    dispatch(db);
}

/* PQcancel() connects to the server and waits for it, so it runs on the thread pool;
 * the cancel key it uses does not depend on the connection, which may close first. */
struct cancel_work {
    uv_work_t work;
    PGcancel *cancel;
};

static void cancel_work_cb(uv_work_t *w)
{
    struct cancel_work *cw = ar_container_of(w, struct cancel_work, work);
    char err[256];
    PQcancel(cw->cancel, err, sizeof(err));
}

static void cancel_after_cb(uv_work_t *w, int status)
{
    (void)status;
    struct cancel_work *cw = ar_container_of(w, struct cancel_work, work);
    PQfreeCancel(cw->cancel);
    free(cw);
}

static void cancel_on_server(struct pg_conn *c)
{
    PGcancel *cancel = PQgetCancel(c->pq);
    if (cancel == NULL) {
        return;
    }
    struct cancel_work *cw = ar_calloc(1, sizeof(*cw));
    cw->cancel = cancel;
    if (uv_queue_work(c->db->loop, &cw->work, cancel_work_cb, cancel_after_cb) != 0) {
        PQfreeCancel(cancel);
        free(cw);
    }
}

/* Nobody waits any more: connections still being set up would only delay shutdown. */
static void drop_connecting(struct ar_pg_db *db)
{
    struct pg_conn *c = db->conns.next;
    while (c != &db->conns) {
        struct pg_conn *next = c->next;
        if (c->state == CONN_CONNECTING) {
            discard(c);
        }
        c = next;
    }
}

/* Rolls back by closing the connection: the server ends the transaction. */
static void tx_release(struct ar_sql_tx *tx)
{
    struct pg_conn *c = tx->conn;
    if (c == NULL) {
        free(tx);
        return;
    }
    if (c->req) {
        return; /* request_done() sees the abandoned transaction */
    }
    struct ar_pg_db *db = c->db;
    c->tx = NULL;
    tx->conn = NULL;
    free(tx);
    discard(c);
    dispatch(db);
}

void ar_pg_cancel(struct ar_sql_req *req)
{
    struct pg_conn *c = req->conn;
    if (req->state == AR__SQL_QUEUED) {
        if (req->tx == NULL) {
            /* Waiting for a connection of the pool. */
            struct ar_pg_db *db = ar_container_of(req->queue, struct ar_pg_db, waiters);
            ar__sql_queue_remove(req);
            if (db->waiters.n == 0) {
                drop_connecting(db);
            }
        } else {
            ar__sql_queue_remove(req);
        }
        if (req->kind == AR_SQL_COMMIT || req->kind == AR_SQL_ROLLBACK) {
            struct ar_sql_tx *tx = req->tx;
            req->tx = NULL;
            tx->ending = 0;
            tx->abandoned = 1;
            tx_release(tx);
        }
        ar__sql_complete(req, AR_ECANCELED);
        return;
    }
    if (req->state != AR__SQL_RUNNING || c == NULL) {
        return;
    }
    /* The statement is on the server: ask the server to stop it (a closed connection
     * goes unnoticed until the statement ends), and close the connection, which also
     * rolls back its transaction. */
    struct ar_pg_db *db = c->db;
    cancel_on_server(c);
    c->req = NULL;
    req->conn = NULL;
    end_tx(c, req);
    discard(c);
    dispatch(db);
    ar__sql_complete(req, AR_ECANCELED);
}

void ar_pg_tx_abandon(struct ar_sql_tx *tx)
{
    tx_release(tx);
}

#endif
