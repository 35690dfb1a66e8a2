/* sql: the native core of sql.query/exec/transaction (the friendly API is in
 * lib/20_sql.js). Each call starts a request on a customer database for the current
 * fiber, which then suspends; the completion records a step and resumes it. */
#include "js/vm.h"
#include "internal.h"
#include "db/customer_db.h"
#include "db/history.h"
#include "db/sql_text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXCERPT_MAX 200
#define MAX_SAFE_INT 9007199254740992LL /* 2^53: larger integers lose digits as numbers */

/* All customer databases of the engine, and the transactions runs hold open. */
struct sql_state {
    struct ar_custdb *dbs; /* owned */
    struct tx_op *txs;     /* owned list */
    uint32_t next_tx;
};

/* An open transaction: registered on its run, so that an aborted run rolls it back. */
struct tx_op {
    struct ar_op op;
    struct tx_op *next;
    struct tx_op *prev;
    struct sql_state *st;        /* borrowed */
    uint32_t id;                 /* what JS holds */
    struct ar_sql_tx *tx;        /* owned by the database layer */
    struct ar_custdb_db *db;     /* borrowed */
};

/* One call waiting for its database. */
struct sql_op {
    struct ar_op op;
    struct ar_sql_req req;
    struct sql_state *st;    /* borrowed */
    struct ar_custdb_db *db; /* borrowed */
    char *excerpt;           /* owned; the statement as history shows it */
    int query;               /* sql.query(): rows; else sql.exec(): changes */
    int cancelled;
    int status;
    uint32_t new_tx_id;
    int64_t started_ms;
    uint64_t started_hr;
};

static void sql_op_cancel(struct ar_op *op);

/* ---- The engine's state, kept in the heap stash and freed with the heap ---- */

#define STATE_PTR DUK_HIDDEN_SYMBOL("ptr")

static duk_ret_t state_finalizer(duk_context *ctx)
{
    duk_get_prop_string(ctx, 0, STATE_PTR);
    struct sql_state *st = duk_get_pointer(ctx, -1);
    duk_pop(ctx);
    if (st == NULL) {
        return 0;
    }
    duk_push_pointer(ctx, NULL);
    duk_put_prop_string(ctx, 0, STATE_PTR);
    /* Runs end before the heap does, so no transaction is left; free any anyway. */
    while (st->txs) {
        struct tx_op *t = st->txs;
        st->txs = t->next;
        free(t);
    }
    ar_custdb_destroy(st->dbs);
    free(st);
    return 0;
}

static struct sql_state *state_of(duk_context *ctx)
{
    duk_push_heap_stash(ctx);
    duk_get_prop_string(ctx, -1, AR_JS_SQL_STATE);
    duk_get_prop_string(ctx, -1, STATE_PTR);
    struct sql_state *st = duk_get_pointer(ctx, -1);
    duk_pop_3(ctx);
    return st;
}

static struct tx_op *tx_find(struct sql_state *st, uint32_t id, struct ar_run *run)
{
    for (struct tx_op *t = st->txs; t; t = t->next) {
        /* Another run's transaction is as good as closed to this one. */
        if (t->id == id && t->op.run == run) {
            return t;
        }
    }
    return NULL;
}

static void tx_unlink(struct tx_op *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        t->st->txs = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    t->next = t->prev = NULL;
}

static void tx_op_cancel(struct ar_op *op)
{
    struct tx_op *t = ar_container_of(op, struct tx_op, op);
    struct ar_run *run = t->op.run;
    /* The transaction's own requests go first: it cannot end under them. */
    struct ar_op *o = run->ops.next;
    while (o != &run->ops) {
        struct ar_op *next = o->next;
        if (o->cancel == sql_op_cancel &&
            ar_container_of(o, struct sql_op, op)->req.tx == t->tx) {
            ar__run_op_remove(o);
            o->cancel(o);
            next = run->ops.next; /* the list may have changed: start over */
        }
        o = next;
    }
    tx_unlink(t);
    ar_custdb_tx_abandon(t->tx);
    free(t);
}

/* ---- Steps ---- */

static void json_value(struct ar_buf *b, const struct ar_sql_value *v)
{
    switch (v->type) {
    case AR_SQL_INT: ar_buf_printf(b, "%lld", (long long)v->i); break;
    case AR_SQL_REAL: ar_buf_printf(b, "%.17g", v->d); break;
    case AR_SQL_TEXT: ar_buf_json_string(b, v->s); break;
    default: ar_buf_puts(b, "null"); break;
    }
}

static void record_step(struct ar_run *run, struct ar_custdb_db *db, const char *dbname,
                        const char *excerpt, size_t n_params, const struct ar_sql_req *req,
                        int query, int64_t started_ms, double duration_ms, const char *error)
{
    struct ar_buf d = {0};
    ar_buf_puts(&d, "{\"db\":");
    ar_buf_json_string(&d, dbname);
    if (db) {
        ar_buf_printf(&d, ",\"engine\":\"%s\"", ar_custdb_kind(db));
    }
    ar_buf_puts(&d, ",\"statement\":");
    ar_buf_json_string(&d, excerpt);
    ar_buf_printf(&d, ",\"params\":%zu", n_params);
    const char *status = "ok";
    if (error) {
        status = "error";
    } else if (req && req->result.skipped) {
        status = "dry-run";
        ar_buf_puts(&d, ",\"dryRun\":true,\"executed\":false");
    } else if (req && req->kind == AR_SQL_RUN) {
        const struct ar_sql_result *r = &req->result;
        if (r->n_cols > 0) {
            ar_buf_printf(&d, ",\"rows\":%zu", r->n_rows);
        }
        if (!query) {
            ar_buf_printf(&d, ",\"changes\":%lld,\"lastId\":", (long long)r->changes);
            json_value(&d, &r->last_id);
        }
    }
    ar_buf_puts(&d, "}");
    char *name = ar_asprintf("%s: %s", dbname, excerpt);
    struct ar_step_record s = {
        .kind = "sql",
        .name = name,
        .started_at = started_ms,
        .duration_ms = duration_ms,
        .status = status,
        .attempts = 1,
        .detail = d.data,
        .error = error,
    };
    ar__run_step(run, &s);
    free(name);
    ar_buf_free(&d);
}

/* ---- Results into JS ---- */

static duk_ret_t json_decode_safe(duk_context *ctx, void *udata)
{
    (void)udata;
    duk_json_decode(ctx, -1);
    return 1;
}

static void push_value(duk_context *ctx, const struct ar_sql_value *v)
{
    switch (v->type) {
    case AR_SQL_INT:
        if (v->i >= -MAX_SAFE_INT && v->i <= MAX_SAFE_INT) {
            duk_push_number(ctx, (double)v->i);
        } else {
            /* A number would silently change the value; a string keeps it. */
            char buf[24];
            snprintf(buf, sizeof(buf), "%lld", (long long)v->i);
            duk_push_string(ctx, buf);
        }
        break;
    case AR_SQL_REAL: duk_push_number(ctx, v->d); break;
    case AR_SQL_TEXT: duk_push_lstring(ctx, v->s, v->len); break;
    case AR_SQL_BOOL: duk_push_boolean(ctx, v->i != 0); break;
    case AR_SQL_JSON:
        duk_push_lstring(ctx, v->s, v->len);
        if (duk_safe_call(ctx, json_decode_safe, NULL, 1, 1) != DUK_EXEC_SUCCESS) {
            duk_pop(ctx);
            duk_push_lstring(ctx, v->s, v->len);
        }
        break;
    default: duk_push_null(ctx); break;
    }
}

static void push_rows(duk_context *ctx, const struct ar_sql_result *r)
{
    duk_push_array(ctx);
    for (size_t row = 0; row < r->n_rows; row++) {
        const struct ar_sql_value *cells = r->cells + row * r->n_cols;
        duk_push_object(ctx);
        for (size_t i = 0; i < r->n_cols; i++) {
            push_value(ctx, &cells[i]);
            duk_put_prop_string(ctx, -2, r->cols[i]);
        }
        duk_put_prop_index(ctx, -2, (duk_uarridx_t)row);
    }
}

static void push_result(duk_context *ctx, void *data)
{
    struct sql_op *o = data;
    const struct ar_sql_req *req = &o->req;
    const struct ar_sql_result *r = &req->result;
    if (o->status != 0) {
        char *msg = ar_asprintf("%s (%s)", req->error ? req->error : "the database failed",
                                ar_custdb_name(o->db));
        ar__vm_push_error(ctx, "SqlError", msg);
        free(msg);
        duk_push_string(ctx, ar_custdb_name(o->db));
        duk_put_prop_string(ctx, -2, "db");
        if (req->code) {
            duk_push_string(ctx, req->code);
            duk_put_prop_string(ctx, -2, "code");
        }
        return;
    }
    switch (req->kind) {
    case AR_SQL_BEGIN: duk_push_uint(ctx, o->new_tx_id); return;
    case AR_SQL_COMMIT:
    case AR_SQL_ROLLBACK: duk_push_undefined(ctx); return;
    case AR_SQL_RUN: break;
    }
    if (o->query) {
        /* A write that a dry run skipped returns no rows. */
        push_rows(ctx, r);
        return;
    }
    duk_push_object(ctx);
    duk_push_number(ctx, (double)r->changes);
    duk_put_prop_string(ctx, -2, "changes");
    push_value(ctx, &r->last_id);
    duk_put_prop_string(ctx, -2, "lastId");
    if (r->skipped) {
        duk_push_true(ctx);
        duk_put_prop_string(ctx, -2, "dryRun");
    } else if (r->n_cols > 0) {
        /* INSERT/UPDATE ... RETURNING */
        push_rows(ctx, r);
        duk_put_prop_string(ctx, -2, "rows");
    }
}

/* ---- Requests ---- */

static void sql_op_free(struct sql_op *o)
{
    ar_sql_req_clear(&o->req);
    free(o->excerpt);
    free(o);
}

static void sql_done_cb(struct ar_sql_req *req, int status)
{
    struct sql_op *o = req->data;
    if (o->cancelled) {
        sql_op_free(o);
        return;
    }
    struct ar_run *run = o->op.run;
    uint32_t fiber = o->op.fiber;
    ar__run_op_remove(&o->op);
    o->status = status;
    double ms = (double)(uv_hrtime() - o->started_hr) / 1e6;
    record_step(run, o->db, ar_custdb_name(o->db), o->excerpt, req->n_params, req, o->query,
                o->started_ms, ms, status ? (req->error ? req->error : "the database failed") : NULL);
    if (req->kind == AR_SQL_BEGIN && status == 0 && req->new_tx) {
        struct sql_state *st = o->st;
        struct tx_op *t = ar_calloc(1, sizeof(*t));
        t->st = st;
        if (++st->next_tx == 0) {
            st->next_tx = 1; /* 0 means "no transaction" to JS */
        }
        t->id = st->next_tx;
        t->tx = req->new_tx;
        t->db = o->db;
        t->op.cancel = tx_op_cancel;
        t->next = st->txs;
        if (st->txs) {
            st->txs->prev = t;
        }
        st->txs = t;
        ar__run_op_add(run, &t->op, fiber);
        o->new_tx_id = t->id;
        req->new_tx = NULL;
    }
    /* The run may end inside resume: nothing of it is touched afterwards. */
    ar__vm_resume(run->engine->vm, run, fiber, push_result, o, status != 0);
    sql_op_free(o);
}

static void sql_op_cancel(struct ar_op *op)
{
    struct sql_op *o = ar_container_of(op, struct sql_op, op);
    o->cancelled = 1;
    ar_custdb_cancel(&o->req); /* done() frees o, now or when the database stops */
}

static struct ar_run *require_run(duk_context *ctx, const char *what)
{
    struct ar_run *run = ar__vm_of(ctx)->current;
    if (run == NULL) {
        (void)duk_error(ctx, DUK_ERR_ERROR, "%s can only be called while a recipe runs", what);
    }
    return run;
}

/* Records the refused call as a step, then throws SqlError: message (db). */
static duk_ret_t fail_now(duk_context *ctx, struct ar_run *run, const char *dbname,
                          const char *text, size_t n_params, const char *msg)
{
    char *excerpt = ar_sql_excerpt(text, EXCERPT_MAX);
    record_step(run, NULL, dbname, excerpt, n_params, NULL, 0, ar_now_ms(), 0, msg);
    free(excerpt);
    char *full = ar_asprintf("%s (%s)", msg, dbname);
    ar__vm_push_error(ctx, "SqlError", full);
    free(full);
    duk_push_string(ctx, dbname);
    duk_put_prop_string(ctx, -2, "db");
    return duk_throw(ctx);
}

static struct sql_op *op_new(struct sql_state *st, struct ar_run *run, uint32_t fiber,
                             struct ar_custdb_db *db, enum ar_sql_kind kind, const char *text)
{
    struct sql_op *o = ar_calloc(1, sizeof(*o));
    o->st = st;
    o->db = db;
    o->excerpt = ar_sql_excerpt(text, EXCERPT_MAX);
    o->req.kind = kind;
    o->req.dry_run = run->dry_run;
    o->req.done = sql_done_cb;
    o->req.data = o;
    o->started_ms = ar_now_ms();
    o->started_hr = uv_hrtime();
    o->op.cancel = sql_op_cancel;
    ar__run_op_add(run, &o->op, fiber);
    return o;
}

/* sqlRun(fiber, db, txId, text, params, mode): mode is "query" or "exec". */
static duk_ret_t js_sql_run(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    const char *name = duk_require_string(ctx, 1);
    uint32_t tx_id = duk_require_uint(ctx, 2);
    const char *text = duk_require_string(ctx, 3);
    if (!duk_is_array(ctx, 4)) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "sql: params must be an array");
    }
    const char *mode = duk_require_string(ctx, 5);
    size_t n = (size_t)duk_get_length(ctx, 4);
    for (size_t i = 0; i < n; i++) {
        duk_get_prop_index(ctx, 4, (duk_uarridx_t)i);
        int ok = duk_is_null_or_undefined(ctx, -1) || duk_is_boolean(ctx, -1) ||
                 duk_is_number(ctx, -1) || duk_is_string(ctx, -1);
        duk_pop(ctx);
        if (!ok) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "sql: parameter %d cannot be bound",
                             (int)i + 1);
        }
    }
    struct ar_run *run = require_run(ctx, "sql.query()");
    struct sql_state *st = state_of(ctx);
    struct tx_op *t = NULL;
    if (tx_id != 0 && (t = tx_find(st, tx_id, run)) == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "sql: the transaction has ended");
    }
    struct ar_custdb_db *db;
    char err[512];
    if (ar_custdb_get(st->dbs, name, &db, err, sizeof(err)) != 0) {
        return fail_now(ctx, run, name, text, n, err);
    }
    if (t != NULL && t->db != db) {
        t = NULL; /* a transaction on another database does not cover this one */
    }
    int control = ar_sql_tx_control(text);
    if (control == 1) {
        return fail_now(ctx, run, name, text, n,
                        "use sql.transaction(db, fn) instead of BEGIN, COMMIT or ROLLBACK");
    }
    if (control == 2 && t == NULL) {
        return fail_now(ctx, run, name, text, n,
                        "savepoints work only inside sql.transaction(db, fn)");
    }

    struct sql_op *o = op_new(st, run, fiber, db, AR_SQL_RUN, text);
    o->query = strcmp(mode, "query") == 0;
    o->req.text = ar_strdup(text);
    o->req.tx = t ? t->tx : NULL;
    o->req.params = ar_calloc(n ? n : 1, sizeof(struct ar_sql_value));
    o->req.n_params = n;
    for (size_t i = 0; i < n; i++) {
        struct ar_sql_value *v = &o->req.params[i];
        duk_get_prop_index(ctx, 4, (duk_uarridx_t)i);
        if (duk_is_boolean(ctx, -1)) {
            v->type = AR_SQL_BOOL;
            v->i = duk_get_boolean(ctx, -1);
        } else if (duk_is_number(ctx, -1)) {
            double d = duk_get_number(ctx, -1);
            if (d == floor(d) && fabs(d) < 9.2e18) {
                v->type = AR_SQL_INT;
                v->i = (int64_t)d;
            } else {
                v->type = AR_SQL_REAL;
                v->d = d;
            }
        } else if (duk_is_string(ctx, -1)) {
            duk_size_t len;
            const char *s = duk_get_lstring(ctx, -1, &len);
            v->type = AR_SQL_TEXT;
            v->s = ar_strndup(s, len);
            v->len = len;
        }
        duk_pop(ctx);
    }
    ar_custdb_submit(db, &o->req);
    return 0;
}

/* sqlBegin(fiber, db): resumes with the transaction's id. */
static duk_ret_t js_sql_begin(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    const char *name = duk_require_string(ctx, 1);
    struct ar_run *run = require_run(ctx, "sql.transaction()");
    struct sql_state *st = state_of(ctx);
    struct ar_custdb_db *db;
    char err[512];
    if (ar_custdb_get(st->dbs, name, &db, err, sizeof(err)) != 0) {
        return fail_now(ctx, run, name, "BEGIN", 0, err);
    }
    struct sql_op *o = op_new(st, run, fiber, db, AR_SQL_BEGIN, "BEGIN");
    ar_custdb_submit(db, &o->req);
    return 0;
}

/* sqlEnd(fiber, txId, commit) */
static duk_ret_t js_sql_end(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    uint32_t tx_id = duk_require_uint(ctx, 1);
    int commit = duk_to_boolean(ctx, 2);
    struct ar_run *run = require_run(ctx, "sql.transaction()");
    struct sql_state *st = state_of(ctx);
    struct tx_op *t = tx_find(st, tx_id, run);
    if (t == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "sql: the transaction has ended");
    }
    /* From here the COMMIT or ROLLBACK request owns the transaction. */
    ar__run_op_remove(&t->op);
    tx_unlink(t);
    struct sql_op *o = op_new(st, run, fiber, t->db, commit ? AR_SQL_COMMIT : AR_SQL_ROLLBACK,
                              commit ? "COMMIT" : "ROLLBACK");
    o->req.tx = t->tx;
    free(t);
    ar_custdb_submit(o->db, &o->req);
    return 0;
}

static const duk_function_list_entry sql_funcs[] = {
    {"sqlRun", js_sql_run, 6},
    {"sqlBegin", js_sql_begin, 2},
    {"sqlEnd", js_sql_end, 3},
    {NULL, NULL, 0},
};

void ar__js_sql_open(duk_context *ctx)
{
    struct ar_engine *e = ar__vm_of(ctx)->engine;
    duk_put_function_list(ctx, -1, sql_funcs);
    /* The state lives as long as the heap: its finalizer closes the connections when
     * the engine destroys the heap, after the loop has run dry. */
    struct sql_state *st = ar_calloc(1, sizeof(*st));
    ar_custdb_create(&e->loop, e->cfg, &st->dbs);
    duk_push_heap_stash(ctx);
    duk_push_object(ctx);
    duk_push_pointer(ctx, st);
    duk_put_prop_string(ctx, -2, STATE_PTR);
    duk_push_c_function(ctx, state_finalizer, 1);
    duk_set_finalizer(ctx, -2);
    duk_put_prop_string(ctx, -2, AR_JS_SQL_STATE);
    duk_pop(ctx);
}
