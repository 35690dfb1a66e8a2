/* The poll and newRow triggers of `autorun serve`.
 *
 * A poll is an internal run of the recipe (trigger AR_POLL_RUN_TRIGGER) whose body is a poll
 * function instead of exports.run (lib/40_poll.js): a plugin's `fn(options, state)` for
 * {poll: 'plugin.fn'}, or a paged SELECT for {newRow: {db, table, key}}. So a poll may use http
 * and sql and wait like any run, is limited and cancelled like one, and when it fails its row
 * stays in history with its error and steps; a poll that worked leaves no row.
 *
 * Exactly once: the run's result (items and a new cursor) is handled in one loop callback,
 * with no wait in between: for each item not in the trigger's seen set, one queue event (dedup
 * key "poll|row <recipe> <spec> <id>") and the id into the seen set; then the cursor. All of it
 * lands in the engine's one open history transaction, so it commits together or not at all.
 * A crash before the commit leaves the old cursor and no event: the next poll finds the same
 * items again. After the commit the events are durable 'queued' rows, which the queue runs
 * (and recovers after a crash). An item returned again is in the seen set (or its dedup key is
 * known to the queue) and fires nothing. The first poll of a trigger records what it returns
 * as seen without firing (the baseline; all its pages when it says more), unless the trigger
 * says backfill: true. */
#include "trigger/poller.h"
#include "internal.h"
#include "core/log.h"
#include "core/queue.h"
#include "db/history.h"
#include "js/vm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 512

struct entry {
    struct entry *next;
    struct ar_poller *p;  /* borrowed; NULL once the entry is closed */
    struct ar_engine *e;  /* borrowed */
    char *recipe;         /* owned */
    const char *kind;     /* "poll" or "row": the queued events' trigger */
    char *spec;           /* owned: "zendesk.newTickets" or "customers.customers.id" */
    char *key;            /* owned: poll_state.trigger, "<kind> <spec>[ <options hash>]" */
    char *call;           /* owned: "zendesk.newTickets" or "newRow" */
    char *options_json;   /* owned */
    int64_t every_ms;
    int backfill;
    int first;            /* the poll under way is the trigger's first */
    int errors;
    struct ar_run *run;   /* borrowed: the poll under way, or NULL */
    int refs;             /* the timer, and the poll under way */
    uv_timer_t timer;
};

struct ar_poller {
    struct ar_engine *e; /* borrowed */
    struct ar_queue *q;  /* borrowed */
    struct entry *entries;
    size_t n;
};

int64_t ar_poller_backoff_ms(int64_t every_ms, int errors)
{
    int64_t cap = every_ms > AR_POLL_BACKOFF_CAP_MS ? every_ms : AR_POLL_BACKOFF_CAP_MS;
    int64_t d = every_ms;
    for (int i = 0; i < errors && d < cap; i++) {
        d *= 2;
    }
    return d < cap ? d : cap;
}

static int ident_part_valid(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return 0;
        }
    }
    return 1;
}

int ar_poller_ident_valid(const char *name, int dotted)
{
    if (name == NULL) {
        return 0;
    }
    const char *dot = dotted ? strchr(name, '.') : NULL;
    if (dot == NULL) {
        return ident_part_valid(name, strlen(name));
    }
    return ident_part_valid(name, (size_t)(dot - name)) &&
           ident_part_valid(dot + 1, strlen(dot + 1));
}

/* ---- entries ---- */

static void entry_unref(struct entry *en)
{
    if (--en->refs > 0) {
        return;
    }
    free(en->recipe);
    free(en->spec);
    free(en->key);
    free(en->call);
    free(en->options_json);
    free(en);
}

static void entry_close_cb(uv_handle_t *h)
{
    entry_unref(ar_container_of(h, struct entry, timer));
}

/* Closes every entry; a poll under way is cancelled and its result dropped. */
static void clear(struct ar_poller *p)
{
    while (p->entries) {
        struct entry *en = p->entries;
        p->entries = en->next;
        en->p = NULL;
        uv_close((uv_handle_t *)&en->timer, entry_close_cb);
        if (en->run) {
            struct ar_run *run = en->run;
            run->status = AR_RUN_CANCELLED;
            ar__run_abort(run, "Error: the poll was cancelled (the service stopped polling)");
        }
    }
    p->n = 0;
}

static void timer_cb(uv_timer_t *t);

static void arm(struct entry *en, int64_t wait)
{
    if (wait < 0) {
        wait = 0;
    }
    uv_timer_start(&en->timer, timer_cb, (uint64_t)wait, 0);
}

/* ---- one poll's result ---- */

struct result {
    const char *json; /* borrowed: the run's result */
    char **ids;       /* owned */
    char **items;     /* owned: each item as JSON */
    size_t n;
    char *cursor; /* owned JSON, or NULL when the function returned none */
    int more;
    char err[512];
};

static void result_free(struct result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ids[i]);
        free(r->items[i]);
    }
    free(r->ids);
    free(r->items);
    free(r->cursor);
}

/* Reads [items] or {items, cursor, more, idKey}; problems go to r->err (the caller fails the
 * poll), errors Duktape throws end the call. Every value is checked before anything is
 * written, so a bad result changes nothing. */
static duk_ret_t parse_safe(duk_context *ctx, void *udata)
{
    struct result *r = udata;
    duk_push_string(ctx, r->json);
    duk_json_decode(ctx, -1);
    duk_idx_t v = duk_get_top_index(ctx);
    duk_idx_t items = v;
    const char *id_key = "id";
    if (!duk_is_array(ctx, v)) {
        if (!duk_is_object(ctx, v) || duk_is_null(ctx, v)) {
            snprintf(r->err, sizeof(r->err), "the poll function returned %s, not an array of "
                                             "items or {items, cursor}",
                     duk_is_null_or_undefined(ctx, v) ? "nothing" : duk_safe_to_string(ctx, v));
            return 0;
        }
        duk_get_prop_string(ctx, v, "items");
        items = duk_get_top_index(ctx);
        if (!duk_is_array(ctx, items)) {
            snprintf(r->err, sizeof(r->err), "the poll function's result has no items array");
            return 0;
        }
        duk_get_prop_string(ctx, v, "cursor");
        if (!duk_is_null_or_undefined(ctx, -1)) {
            duk_dup_top(ctx);
            duk_json_encode(ctx, -1);
            r->cursor = ar_strdup(duk_get_string(ctx, -1));
            duk_pop(ctx);
        }
        duk_pop(ctx);
        duk_get_prop_string(ctx, v, "more");
        r->more = duk_to_boolean(ctx, -1);
        duk_pop(ctx);
        duk_get_prop_string(ctx, v, "idKey");
        if (duk_is_string(ctx, -1)) {
            id_key = duk_get_string(ctx, -1); /* stays on the stack while used */
        }
    }
    size_t n = (size_t)duk_get_length(ctx, items);
    r->ids = ar_calloc(n ? n : 1, sizeof(char *));
    r->items = ar_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        duk_get_prop_index(ctx, items, (duk_uarridx_t)i);
        if (!duk_is_object(ctx, -1) || duk_is_array(ctx, -1) || duk_is_function(ctx, -1)) {
            snprintf(r->err, sizeof(r->err), "item %zu of the poll's result is not an object", i);
            return 0;
        }
        duk_get_prop_string(ctx, -1, id_key);
        char *id = NULL;
        if (duk_is_string(ctx, -1)) {
            id = ar_strdup(duk_get_string(ctx, -1));
        } else if (duk_is_number(ctx, -1)) {
            double d = duk_get_number(ctx, -1);
            if (d == floor(d) && fabs(d) < 9.2e18) {
                id = ar_asprintf("%lld", (long long)d);
            } else if (isfinite(d)) {
                id = ar_asprintf("%.17g", d);
            }
        }
        duk_pop(ctx);
        if (id == NULL || *id == '\0' || strlen(id) > ID_MAX) {
            snprintf(r->err, sizeof(r->err),
                     "item %zu of the poll's result has no usable %s (a string or a number)", i,
                     id_key);
            free(id);
            return 0;
        }
        duk_json_encode(ctx, -1);
        r->items[r->n] = ar_strdup(duk_get_string(ctx, -1));
        r->ids[r->n] = id;
        r->n++;
        duk_pop(ctx);
    }
    return 0;
}

/* Queues the new items and records them and the cursor, all in the open history batch. */
static int record(struct entry *en, struct result *r, struct ar_poll_state *st, int64_t *fired,
                  int64_t *seen, char *err, size_t errlen)
{
    struct ar_engine *e = en->e;
    struct ar_history *h = e->history;
    int64_t now = ar_now_ms();
    int baseline = en->first && !en->backfill;
    for (size_t i = 0; i < r->n; i++) {
        int rc = ar_history_poll_seen(h, en->recipe, en->key, r->ids[i]);
        if (rc == 0) {
            continue;
        }
        if (rc == AR_ENOENT && !baseline) {
            char *dedup = ar_asprintf("%s %s %s %s", en->kind, en->recipe, en->spec, r->ids[i]);
            struct ar_queue_event ev = {
                .recipe = en->recipe,
                .trigger = en->kind,
                .input_json = r->items[i],
                .dedup_key = dedup,
                .dedup_ttl_ms = e->cfg->retention_ms,
            };
            int64_t run_id;
            enum ar_queue_outcome outcome;
            rc = ar_queue_push(en->p->q, &ev, &run_id, &outcome);
            free(dedup);
            if (rc == 0 && outcome == AR_QUEUE_QUEUED) {
                (*fired)++;
            }
        }
        if (rc == 0 || rc == AR_ENOENT) {
            rc = ar_history_poll_see(h, en->recipe, en->key, r->ids[i], now);
        }
        if (rc != 0) {
            snprintf(err, errlen, "history.db: cannot record item %s: %s", r->ids[i],
                     ar_history_errmsg(h));
            return rc;
        }
        (*seen)++;
    }
    if (r->cursor && strcmp(r->cursor, "null") != 0) {
        free(st->cursor);
        st->cursor = r->cursor;
        r->cursor = NULL;
    }
    /* A baseline that spans pages (more) is complete with its last page: until then every
     * poll is still the first one, and fires nothing. */
    if (st->baseline_at == 0 && !(r->more && r->n > 0)) {
        st->baseline_at = now;
    }
    st->fired += *fired;
    int64_t keep = (int64_t)r->n * 2 > AR_POLL_SEEN_KEEP ? (int64_t)r->n * 2 : AR_POLL_SEEN_KEEP;
    if (ar_history_poll_trim(h, en->recipe, en->key, keep) != 0) {
        snprintf(err, errlen, "history.db: cannot trim the seen ids: %s", ar_history_errmsg(h));
        return AR_EIO;
    }
    return 0;
}

/* ---- polling ---- */

static void fail_row(struct ar_history *h, int64_t run_id, const char *error)
{
    struct ar_run_record rec = {
        .id = run_id,
        .status = "failed",
        .finished_at = ar_now_ms(),
        .error = (char *)error,
    };
    ar_history_run_finish(h, &rec);
}

/* Records the poll's outcome in poll_state and plans the next one. */
static void settle(struct entry *en, struct ar_poll_state *st, const char *error, int64_t run_id,
                   int more)
{
    struct ar_history *h = en->e->history;
    int64_t now = ar_now_ms(), wait;
    char dur[32];
    st->last_poll_at = now;
    if (error) {
        en->errors = ++st->errors;
        free(st->last_error);
        st->last_error = ar_strdup(error);
        wait = ar_poller_backoff_ms(en->every_ms, st->errors);
        ar_format_duration(wait, dur, sizeof(dur));
        if (run_id) {
            ar_log_warn("poll", "%s: %s failed (%d in a row; run %lld): %s; next try in %s",
                        en->recipe, en->spec, st->errors, (long long)run_id, error, dur);
        } else {
            ar_log_warn("poll", "%s: %s failed (%d in a row): %s; next try in %s", en->recipe,
                        en->spec, st->errors, error, dur);
        }
    } else {
        if (st->errors > 0) {
            ar_log_info("poll", "%s: %s works again after %d failure(s)", en->recipe, en->spec,
                        st->errors);
        }
        en->errors = st->errors = 0;
        st->last_ok_at = now;
        wait = more ? 0 : en->every_ms;
    }
    st->next_poll_at = now + wait;
    if (ar_history_poll_put(h, en->recipe, en->key, st) != 0) {
        ar_log_error("poll", "%s: %s: cannot record the poll: %s", en->recipe, en->spec,
                     ar_history_errmsg(h));
    }
    arm(en, wait);
}

static void poll_done_cb(struct ar_run *run, void *data)
{
    struct entry *en = data;
    struct ar_history *h = en->e->history;
    int64_t run_id = run->id;
    en->run = NULL;
    if (en->p == NULL) {
        /* Closed while polling: nothing of this poll is recorded but its row, if it failed. */
        if (run->status != AR_RUN_FAILED) {
            ar_history_run_delete(h, run_id);
        }
        entry_unref(en);
        return;
    }
    struct ar_poll_state st;
    if (ar_history_poll_get(h, en->recipe, en->key, &st) != 0) {
        memset(&st, 0, sizeof(st));
    }
    char err[1024] = "";
    int more = 0;
    if (run->status == AR_RUN_SUCCEEDED) {
        struct result r = {.json = run->result_json ? run->result_json : "null"};
        duk_context *ctx = en->e->vm->ctx;
        int64_t fired = 0, seen = 0;
        if (duk_safe_call(ctx, parse_safe, &r, 0, 1) != DUK_EXEC_SUCCESS) {
            snprintf(err, sizeof(err), "the poll's result cannot be read: %s",
                     duk_safe_to_string(ctx, -1));
        } else if (r.err[0] == '\0') {
            record(en, &r, &st, &fired, &seen, err, sizeof(err));
        } else {
            snprintf(err, sizeof(err), "%s", r.err);
        }
        duk_pop(ctx);
        more = r.more && r.n > 0;
        result_free(&r);
        if (err[0] == '\0') {
            ar_history_run_delete(h, run_id);
            if (en->first && !en->backfill && st.baseline_at != 0) {
                ar_log_info("poll", "%s: %s: baseline recorded (%lld item(s) seen); only items "
                                    "that appear from now on fire",
                            en->recipe, en->spec, (long long)seen);
            } else if (fired > 0) {
                ar_log_info("poll", "%s: %s: %lld new item(s) queued", en->recipe, en->spec,
                            (long long)fired);
            }
        } else {
            fail_row(h, run_id, err);
        }
    } else {
        snprintf(err, sizeof(err), "%s", run->error ? run->error : "the poll did not finish");
    }
    settle(en, &st, err[0] ? err : NULL, err[0] ? run_id : 0, more);
    ar_poll_state_free(&st);
    entry_unref(en);
}

static char *poll_input(struct entry *en, const char *cursor)
{
    struct ar_buf b = {0};
    ar_buf_puts(&b, "{\"call\":");
    ar_buf_json_string(&b, en->call);
    ar_buf_printf(&b, ",\"options\":%s,\"state\":{\"cursor\":%s,\"first\":%s,\"backfill\":%s}}",
                  en->options_json, cursor ? cursor : "null", en->first ? "true" : "false",
                  en->backfill ? "true" : "false");
    return ar_buf_steal(&b);
}

static void timer_cb(uv_timer_t *t)
{
    struct entry *en = ar_container_of(t, struct entry, timer);
    struct ar_engine *e = en->e;
    if (en->run != NULL) {
        return; /* cannot happen: the timer is armed only once a poll ended */
    }
    struct ar_poll_state st;
    int rc = ar_history_poll_get(e->history, en->recipe, en->key, &st);
    if (rc != 0 && rc != AR_ENOENT) {
        ar_log_error("poll", "%s: %s: cannot read its state: %s", en->recipe, en->spec,
                     ar_history_errmsg(e->history));
        arm(en, ar_poller_backoff_ms(en->every_ms, ++en->errors));
        return;
    }
    if (rc == AR_ENOENT) {
        memset(&st, 0, sizeof(st));
    }
    en->first = st.baseline_at == 0;
    char *input = poll_input(en, st.cursor);
    struct ar_run_opts opts = {
        .recipe = en->recipe,
        .trigger = AR_POLL_RUN_TRIGGER,
        .input_json = input,
    };
    char err[1024];
    /* The run may end (and call poll_done_cb) before ar_run_start returns. */
    en->refs++;
    rc = ar_run_start(e, &opts, poll_done_cb, en, err, sizeof(err));
    free(input);
    if (rc != 0) {
        en->refs--;
        settle(en, &st, err, 0, 0);
    } else if (e->runs.next != &e->runs && e->runs.next->done_cb == poll_done_cb &&
               e->runs.next->done_data == en) {
        /* Still running: a run starts at the head of the engine's list, and only one poll of
         * an entry is under way at a time. */
        en->run = e->runs.next;
    }
    ar_poll_state_free(&st);
}

/* ---- loading ---- */

/* 64-bit FNV-1a: a short, stable name for a trigger's options. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The trigger's options as JSON: every property but the trigger's own (poll, every,
 * backfill). Run in a safe call: [ trigger ] -> [ trigger json ]. */
static duk_ret_t options_safe(duk_context *ctx, void *udata)
{
    /* A safe call's function shares its caller's frame: the trigger is at the top. */
    duk_idx_t t = duk_get_top_index(ctx);
    duk_push_object(ctx);
    duk_enum(ctx, t, DUK_ENUM_OWN_PROPERTIES_ONLY);
    while (duk_next(ctx, -1, 1)) {
        const char *k = duk_get_string(ctx, -2);
        if (strcmp(k, "poll") == 0 || strcmp(k, "every") == 0 || strcmp(k, "backfill") == 0) {
            duk_pop_2(ctx);
            continue;
        }
        duk_put_prop(ctx, -4);
    }
    duk_pop(ctx);
    duk_json_encode(ctx, -1);
    return 1;
}

static char *get_str(duk_context *ctx, duk_idx_t obj, const char *key)
{
    duk_get_prop_string(ctx, obj, key);
    char *v = duk_is_string(ctx, -1) ? ar_strdup(duk_get_string(ctx, -1)) : NULL;
    duk_pop(ctx);
    return v;
}

static int64_t get_every(duk_context *ctx, duk_idx_t t, const char *recipe, const char *spec)
{
    char *every = get_str(ctx, t, "every");
    int64_t ms = AR_POLL_EVERY_MS;
    if (every && (ar_parse_duration(every, &ms) != 0 || ms < 1000)) {
        ar_log_error("poll", "%s: %s: every: '%s' is not a duration of at least 1s; polling "
                             "every minute",
                     recipe, spec, every);
        ms = AR_POLL_EVERY_MS;
    }
    free(every);
    return ms;
}

/* Reads the poll or newRow trigger at t; NULL (with the problem logged) when it is neither or
 * cannot be polled. */
static struct entry *entry_read(struct ar_poller *p, duk_context *ctx, duk_idx_t t,
                                const char *recipe)
{
    struct entry *en = NULL;
    char *poll = get_str(ctx, t, "poll");
    if (poll) {
        const char *dot = strrchr(poll, '.');
        if (dot == NULL || dot == poll || dot[1] == '\0') {
            ar_log_error("poll", "%s: poll '%s' does not name 'plugin.function'; not polled",
                         recipe, poll);
            free(poll);
            return NULL;
        }
        duk_dup(ctx, t);
        if (duk_safe_call(ctx, options_safe, NULL, 1, 1) != DUK_EXEC_SUCCESS) {
            ar_log_error("poll", "%s: poll '%s': its options cannot be read as JSON; not polled",
                         recipe, poll);
            duk_pop(ctx);
            free(poll);
            return NULL;
        }
        en = ar_calloc(1, sizeof(*en));
        en->kind = "poll";
        en->options_json = ar_strdup(duk_get_string(ctx, -1));
        duk_pop(ctx);
        en->call = ar_strdup(poll);
        en->spec = poll;
        /* Two polls of one function with different options are different triggers. */
        en->key = strcmp(en->options_json, "{}") == 0
                      ? ar_asprintf("poll %s", poll)
                      : ar_asprintf("poll %s %016llx", poll,
                                    (unsigned long long)fnv1a(en->options_json));
    } else {
        duk_get_prop_string(ctx, t, "newRow");
        if (!duk_is_object(ctx, -1)) {
            duk_pop(ctx);
            return NULL;
        }
        duk_idx_t nr = duk_get_top_index(ctx);
        char *db = get_str(ctx, nr, "db"), *table = get_str(ctx, nr, "table");
        char *key = get_str(ctx, nr, "key");
        duk_pop(ctx);
        duk_get_prop_string(ctx, t, "limit");
        double limit = duk_is_number(ctx, -1) ? duk_get_number(ctx, -1) : AR_POLL_ROW_LIMIT;
        duk_pop(ctx);
        if (db == NULL || !ar_name_valid(db) || !ar_poller_ident_valid(table, 1) ||
            !ar_poller_ident_valid(key, 0) || limit < 1 || limit > 10000 ||
            limit != floor(limit)) {
            ar_log_error("poll", "%s: newRow needs {db, table, key} with plain SQL names (letters, "
                                 "digits, _) and a limit of 1 to 10000; not polled",
                         recipe);
        } else {
            en = ar_calloc(1, sizeof(*en));
            en->kind = "row";
            en->call = ar_strdup("newRow");
            en->spec = ar_asprintf("%s.%s.%s", db, table, key);
            en->key = ar_asprintf("row %s", en->spec);
            struct ar_buf b = {0};
            ar_buf_puts(&b, "{\"db\":");
            ar_buf_json_string(&b, db);
            ar_buf_puts(&b, ",\"table\":");
            ar_buf_json_string(&b, table);
            ar_buf_puts(&b, ",\"key\":");
            ar_buf_json_string(&b, key);
            ar_buf_printf(&b, ",\"limit\":%d}", (int)limit);
            en->options_json = ar_buf_steal(&b);
        }
        free(db);
        free(table);
        free(key);
        if (en == NULL) {
            return NULL;
        }
    }
    duk_get_prop_string(ctx, t, "backfill");
    en->backfill = duk_to_boolean(ctx, -1);
    duk_pop(ctx);
    en->every_ms = get_every(ctx, t, recipe, en->spec);
    en->p = p;
    en->e = p->e;
    en->recipe = ar_strdup(recipe);
    en->refs = 1;
    for (struct entry *o = p->entries; o; o = o->next) {
        if (strcmp(o->recipe, en->recipe) == 0 && strcmp(o->key, en->key) == 0) {
            ar_log_warn("poll", "%s: %s appears twice in exports.triggers; polled once", recipe,
                        en->spec);
            entry_unref(en);
            return NULL;
        }
    }
    return en;
}

/* The first poll: when the last process planned it, or at once. */
static void entry_start(struct ar_poller *p, struct entry *en)
{
    struct ar_poll_state st;
    int64_t wait = 0;
    if (ar_history_poll_get(p->e->history, en->recipe, en->key, &st) == 0) {
        en->errors = st.errors;
        wait = st.next_poll_at - ar_now_ms();
        /* A clock that was set back must not postpone polling by more than one interval. */
        int64_t longest = ar_poller_backoff_ms(en->every_ms, st.errors);
        if (wait > longest) {
            wait = longest;
        }
        ar_poll_state_free(&st);
    }
    arm(en, wait);
}

static void add_trigger(duk_context *ctx, int t, struct ar_recipe *r, void *data)
{
    struct ar_poller *p = data;
    struct entry *en = entry_read(p, ctx, t, r->name);
    if (en) {
        uv_timer_init(&p->e->loop, &en->timer);
        en->next = p->entries;
        p->entries = en;
        p->n++;
    }
}

size_t ar_poller_load(struct ar_poller *p)
{
    clear(p);
    ar__recipes_each_trigger(p->e, add_trigger, p);
    for (struct entry *en = p->entries; en; en = en->next) {
        entry_start(p, en);
    }
    if (p->n > 0) {
        ar_log_info("poll", "%zu poll/newRow trigger(s)", p->n);
    }
    return p->n;
}

int ar_poller_create(struct ar_engine *e, struct ar_queue *q, struct ar_poller **out)
{
    struct ar_poller *p = ar_calloc(1, sizeof(*p));
    p->e = e;
    p->q = q;
    int64_t n = 0;
    if (ar_history_run_delete_running(e->history, AR_POLL_RUN_TRIGGER, &n) == 0 && n > 0) {
        ar_log_info("poll", "forgot %lld poll(s) cut off by the end of the last process",
                    (long long)n);
    }
    *out = p;
    return 0;
}

void ar_poller_destroy(struct ar_poller *p)
{
    if (p == NULL) {
        return;
    }
    clear(p);
    free(p);
}
