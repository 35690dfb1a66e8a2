/* The durable run queue and its dispatcher. The database is the queue: an event is a row with
 * status 'queued', and memory holds only each row's id, recipe and start-not-before time, so a
 * burst of large events costs disk, not memory. See docs/service.md. */
#include "core/queue.h"
#include "internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "db/history.h"

#include <stdlib.h>
#include <string.h>

/* Longest single wait of the delay timer: it re-reads the wall clock at least this often, so a
 * clock that is set forward or back cannot stall a retry for long. */
#define DELAY_CHUNK_MS 60000
#define BACKOFF_CAP_MS (24 * 3600 * 1000LL)

struct rqueue;

/* A queued row. */
struct item {
    struct item *next;
    int64_t id;
    int64_t not_before; /* unix ms; 0 = at once */
    struct rqueue *rq;  /* borrowed */
    uint64_t commit;    /* the history commit that holds the row (see unsynced) */
};

/* The ready rows of one recipe, oldest first. */
struct rqueue {
    struct rqueue *next;
    char *recipe; /* owned */
    struct item *head;
    struct item *tail;
    int64_t n;       /* ready rows */
    int64_t n_fresh; /* pushed but not committed yet */
    int blocked;     /* the recipe does not load: set aside until a reload */
};

/* Syncs in flight at once. A sync covers the commits made before it started, so while one
 * waits for the disk the next batch can already be on its way: with a single sync, an event
 * committed just after a sync began waited for that sync and then its own. Two (with the
 * checkpoint, three) leave one of libuv's four worker threads to customer database queries. */
#define SYNCS_MAX 2
/* The longest a commit that nobody waits for stays unsynced. */
#define LAZY_SYNC_MS 10

struct sync_slot {
    uv_work_t work;
    struct ar_queue *q; /* borrowed */
    uint64_t target;    /* the commits this sync makes durable */
    int rc;             /* its result, written by the worker thread */
    int busy;
};

struct ar_queue_watch {
    struct ar_queue_watch *next;
    struct ar_queue_watch *prev;
    struct ar_queue *q; /* borrowed */
    int64_t run_id;
    ar_queue_watch_cb cb;
    void *data;
};

struct ar_queue {
    struct ar_engine *e;        /* borrowed */
    struct ar_metrics *metrics; /* borrowed, or NULL */
    uv_idle_t idle;             /* dispatches from the loop, never from inside a run's end */
    uv_timer_t delay_timer;     /* wakes the earliest delayed row */
    uv_timer_t lazy_timer;      /* syncs, soon, the commits nobody waits for */
    struct rqueue *rqs;         /* owned list */
    struct item *delayed;       /* owned list, sorted by not_before */
    int64_t n_delayed;
    struct item *fresh;         /* owned list: pushed since the last commit, in order */
    struct item **fresh_tail;
    /* Group commit: with the history's sync deferred, a commit only writes the WAL and a
     * worker thread syncs it while the loop goes on. Rows committed but not yet synced wait
     * here, so a run never starts for an event a power cut could still take back. */
    struct item *unsynced;      /* owned list, in commit order */
    struct item **unsynced_tail;
    struct sync_slot syncs[SYNCS_MAX];
    int syncing;                /* syncs in flight */
    uint64_t sync_started;      /* the highest target of a sync started so far */
    uint64_t durable;           /* commits known to be on disk */
    uv_work_t ckpt_work;        /* a WAL checkpoint, off the loop thread too */
    int ckpt_busy;
    int want_durable;           /* ar_queue_want_durable() since the last commit */
    int ckpt_rc;                /* written by the worker thread */
    ar_queue_durable_cb durable_cb;
    void *durable_data;
    struct ar_queue_watch watches; /* list head */
    int paused;
    int closing;
    int handles; /* open libuv handles; the queue is freed when the last one closes */
};

int64_t ar_queue_backoff_ms(int64_t backoff_ms, int attempt)
{
    if (backoff_ms <= 0) {
        return 0;
    }
    int64_t d = backoff_ms;
    for (int i = 1; i < attempt && d < BACKOFF_CAP_MS; i++) {
        d *= 2;
    }
    return d < BACKOFF_CAP_MS ? d : BACKOFF_CAP_MS;
}

static struct rqueue *rqueue_of(struct ar_queue *q, const char *recipe)
{
    struct rqueue **p = &q->rqs;
    for (; *p; p = &(*p)->next) {
        if (strcmp((*p)->recipe, recipe) == 0) {
            return *p;
        }
    }
    struct rqueue *rq = ar_calloc(1, sizeof(*rq));
    rq->recipe = ar_strdup(recipe);
    *p = rq;
    return rq;
}

static void idle_cb(uv_idle_t *h);

/* Runs start from an idle callback: never inside the end of another run (which happens deep
 * inside the VM) nor inside a request's callback. */
static void schedule_dispatch(struct ar_queue *q)
{
    if (!q->closing && !q->paused) {
        uv_idle_start(&q->idle, idle_cb);
    }
}

static void rq_append(struct rqueue *rq, struct item *it)
{
    it->next = NULL;
    if (rq->tail) {
        rq->tail->next = it;
    } else {
        rq->head = it;
    }
    rq->tail = it;
    rq->n++;
}

static struct item *rq_pop(struct rqueue *rq)
{
    struct item *it = rq->head;
    if (it) {
        rq->head = it->next;
        if (rq->head == NULL) {
            rq->tail = NULL;
        }
        rq->n--;
    }
    return it;
}

static void delay_timer_cb(uv_timer_t *t);

static void arm_delay_timer(struct ar_queue *q)
{
    if (q->closing) {
        return;
    }
    if (q->delayed == NULL) {
        uv_timer_stop(&q->delay_timer);
        return;
    }
    int64_t wait = q->delayed->not_before - ar_now_ms();
    if (wait < 0) {
        wait = 0;
    }
    if (wait > DELAY_CHUNK_MS) {
        wait = DELAY_CHUNK_MS;
    }
    uv_timer_start(&q->delay_timer, delay_timer_cb, (uint64_t)wait, 0);
}

static void delay_insert(struct ar_queue *q, struct item *it)
{
    struct item **p = &q->delayed;
    while (*p && (*p)->not_before <= it->not_before) {
        p = &(*p)->next;
    }
    it->next = *p;
    *p = it;
    q->n_delayed++;
}

/* Moves the delayed rows that are due to their recipes' ready lists. */
static int promote_due(struct ar_queue *q)
{
    int64_t now = ar_now_ms();
    int moved = 0;
    while (q->delayed && q->delayed->not_before <= now) {
        struct item *it = q->delayed;
        q->delayed = it->next;
        q->n_delayed--;
        rq_append(it->rq, it);
        moved = 1;
    }
    return moved;
}

static void delay_timer_cb(uv_timer_t *t)
{
    struct ar_queue *q = ar_container_of(t, struct ar_queue, delay_timer);
    if (promote_due(q)) {
        schedule_dispatch(q);
    }
    arm_delay_timer(q);
}

/* Places a committed row: ready now, or delayed until its not_before. */
static void place(struct ar_queue *q, struct item *it)
{
    if (it->not_before > ar_now_ms()) {
        delay_insert(q, it);
    } else {
        rq_append(it->rq, it);
    }
}

static struct item *new_item(struct ar_queue *q, int64_t id, const char *recipe,
                             int64_t not_before)
{
    struct item *it = ar_calloc(1, sizeof(*it));
    it->id = id;
    it->not_before = not_before;
    it->rq = rqueue_of(q, recipe);
    return it;
}

static void add_fresh(struct ar_queue *q, struct item *it)
{
    it->next = NULL;
    *q->fresh_tail = it;
    q->fresh_tail = &it->next;
    it->rq->n_fresh++;
}

/* ---- watches ---- */

int ar_queue_watch(struct ar_queue *q, int64_t run_id, ar_queue_watch_cb cb, void *data,
                   struct ar_queue_watch **out)
{
    struct ar_queue_watch *w = ar_calloc(1, sizeof(*w));
    w->q = q;
    w->run_id = run_id;
    w->cb = cb;
    w->data = data;
    w->next = q->watches.next;
    w->prev = &q->watches;
    q->watches.next->prev = w;
    q->watches.next = w;
    if (out) {
        *out = w;
    }
    return 0;
}

void ar_queue_unwatch(struct ar_queue_watch *w)
{
    if (w == NULL) {
        return;
    }
    w->prev->next = w->next;
    w->next->prev = w->prev;
    free(w);
}

static void watches_retarget(struct ar_queue *q, int64_t from, int64_t to)
{
    for (struct ar_queue_watch *w = q->watches.next; w != &q->watches; w = w->next) {
        if (w->run_id == from) {
            w->run_id = to;
        }
    }
}

static void watches_fire(struct ar_queue *q, const struct ar_queue_result *r)
{
    struct ar_queue_watch *w = q->watches.next;
    while (w != &q->watches) {
        struct ar_queue_watch *next = w->next;
        if (w->run_id == r->run_id) {
            ar_queue_watch_cb cb = w->cb;
            void *data = w->data;
            ar_queue_unwatch(w);
            /* The callback may unwatch others; restart from the head, which is safe because
             * this one is gone. */
            cb(data, r);
            next = q->watches.next;
        }
        w = next;
    }
}

/* ---- rows ---- */

static int insert_row(struct ar_queue *q, const struct ar_queue_record *rec, int64_t *id)
{
    int rc = ar_history_queue_insert(q->e->history, rec, id);
    if (rc != 0) {
        ar_log_error("queue", "%s: cannot record a %s event: %s", rec->recipe, rec->trigger,
                     ar_history_errmsg(q->e->history));
    }
    return rc;
}

/* The id of a run of recipe that is executing now, or 0. */
static int64_t running_id(struct ar_engine *e, const char *recipe)
{
    for (struct ar_run *run = e->runs.next; run != &e->runs; run = run->next) {
        if (strcmp(run->recipe->name, recipe) == 0) {
            return run->id;
        }
    }
    return 0;
}

int ar_queue_push(struct ar_queue *q, const struct ar_queue_event *ev, int64_t *run_id,
                  enum ar_queue_outcome *outcome)
{
    struct ar_history *h = q->e->history;
    int64_t now = ar_now_ms(), id;
    int rc;
    if (ev->dedup_key) {
        rc = ar_history_delivery_find(h, ev->dedup_key, now, &id);
        if (rc == 0) {
            *run_id = id;
            *outcome = AR_QUEUE_DUPLICATE;
            return 0;
        }
        if (rc != AR_ENOENT) {
            return rc;
        }
    }
    struct rqueue *rq = rqueue_of(q, ev->recipe);
    char *why = NULL;
    if (ev->flags & AR_QUEUE_SKIP_IF_BUSY) {
        struct ar_recipe *r;
        char err[512];
        if (ar_engine_recipe(q->e, ev->recipe, &r, err, sizeof(err)) == 0 && r->concurrency > 0 &&
            r->running + rq->n + rq->n_fresh >= r->concurrency) {
            int64_t prev = running_id(q->e, ev->recipe);
            why = prev ? ar_asprintf("skipped: the previous run (%lld) was still running",
                                     (long long)prev)
                       : ar_asprintf("skipped: %lld earlier run(s) were still waiting to start",
                                     (long long)(rq->n + rq->n_fresh));
        }
    }
    struct ar_queue_record rec = {
        .recipe = ev->recipe,
        .trigger = ev->trigger,
        .status = why ? "skipped" : "queued",
        .input = ev->input_json && *ev->input_json ? ev->input_json : "{}",
        .error = why,
        .attempt = 1,
        .queued_at = now,
    };
    rc = insert_row(q, &rec, &id);
    if (rc == 0 && ev->dedup_key) {
        rc = ar_history_delivery_add(h, ev->dedup_key, ev->recipe, id, now,
                                     ev->dedup_ttl_ms > 0 ? now + ev->dedup_ttl_ms : 0);
    }
    if (rc != 0) {
        free(why);
        return rc;
    }
    if (why) {
        ar_log_info("queue", "%s: %s event recorded as run %lld, %s", ev->recipe, ev->trigger,
                    (long long)id, why);
        if (q->metrics) {
            ar_metrics_run(q->metrics, ev->recipe, "skipped", -1);
        }
        free(why);
        *outcome = AR_QUEUE_SKIPPED;
    } else {
        add_fresh(q, new_item(q, id, ev->recipe, 0));
        *outcome = AR_QUEUE_QUEUED;
    }
    *run_id = id;
    return 0;
}

/* ---- group commit ---- */

static int deferred(const struct ar_queue *q)
{
    return ar_history_sync_deferred(q->e->history);
}

uint64_t ar_queue_committed(const struct ar_queue *q)
{
    return ar_history_commits(q->e->history);
}

uint64_t ar_queue_durable(const struct ar_queue *q)
{
    return deferred(q) ? q->durable : ar_history_commits(q->e->history);
}

void ar_queue_on_durable(struct ar_queue *q, ar_queue_durable_cb cb, void *data)
{
    q->durable_cb = cb;
    q->durable_data = data;
}

/* Rows whose commit is now on disk become ready to run. */
static void place_durable(struct ar_queue *q)
{
    int any = 0;
    while (q->unsynced && q->unsynced->commit <= q->durable) {
        struct item *it = q->unsynced;
        q->unsynced = it->next;
        it->rq->n_fresh--;
        place(q, it);
        any = 1;
    }
    if (q->unsynced == NULL) {
        q->unsynced_tail = &q->unsynced;
    }
    if (any) {
        schedule_dispatch(q);
        arm_delay_timer(q);
    }
}

static void mark_durable(struct ar_queue *q, uint64_t upto, int status)
{
    if (upto > q->durable) {
        q->durable = upto;
    }
    place_durable(q);
    if (q->durable_cb) {
        q->durable_cb(q->durable_data, upto, status);
    }
}

static void sync_work_cb(uv_work_t *req)
{
    struct sync_slot *sl = ar_container_of(req, struct sync_slot, work);
    sl->rc = ar_history_sync(sl->q->e->history);
}

static void sync_start(struct ar_queue *q);
static void queue_release(struct ar_queue *q);

static void sync_after_cb(uv_work_t *req, int status)
{
    struct sync_slot *sl = ar_container_of(req, struct sync_slot, work);
    struct ar_queue *q = sl->q;
    sl->busy = 0;
    q->syncing--;
    if (q->closing) {
        queue_release(q);
        return;
    }
    q->handles--;
    int rc = status == 0 ? sl->rc : AR_EIO;
    if (rc != 0) {
        /* The rows are committed, so they still run; whoever was promised durability hears
         * that it is not certain. */
        ar_log_error("queue", "history.db: cannot sync the WAL to disk: %s", ar_strerror(rc));
    }
    /* Syncs may end out of order; each one covers everything committed before it began. */
    mark_durable(q, sl->target, rc);
    sync_start(q);
}

/* Starts a sync of the commits no sync covers yet, when a slot is free. */
static void sync_start(struct ar_queue *q)
{
    uv_timer_stop(&q->lazy_timer);
    uint64_t commits = ar_history_commits(q->e->history);
    if (q->closing || !deferred(q) || commits <= q->sync_started || commits <= q->durable ||
        q->syncing >= SYNCS_MAX) {
        return;
    }
    struct sync_slot *sl = NULL;
    for (int i = 0; i < SYNCS_MAX && sl == NULL; i++) {
        sl = q->syncs[i].busy ? NULL : &q->syncs[i];
    }
    sl->q = q;
    sl->target = commits;
    sl->busy = 1;
    q->sync_started = commits;
    q->syncing++;
    q->handles++;
    if (uv_queue_work(&q->e->loop, &sl->work, sync_work_cb, sync_after_cb) != 0) {
        sl->busy = 0;
        q->syncing--;
        q->handles--;
        int rc = ar_history_sync(q->e->history);
        mark_durable(q, commits, rc);
    }
}

static void ckpt_work_cb(uv_work_t *req)
{
    struct ar_queue *q = ar_container_of(req, struct ar_queue, ckpt_work);
    q->ckpt_rc = ar_history_checkpoint(q->e->history);
}

static void ckpt_after_cb(uv_work_t *req, int status)
{
    struct ar_queue *q = ar_container_of(req, struct ar_queue, ckpt_work);
    q->ckpt_busy = 0;
    if (q->ckpt_rc != 0 && !q->closing) {
        ar_log_warn("queue", "history.db: a checkpoint failed; the next one tries again");
    }
    queue_release(q);
}

static void ckpt_start(struct ar_queue *q)
{
    if (q->ckpt_busy || q->closing ||
        ar_history_wal_pages(q->e->history) < AR_HISTORY_CHECKPOINT_PAGES) {
        return;
    }
    q->ckpt_busy = 1;
    q->handles++;
    if (uv_queue_work(&q->e->loop, &q->ckpt_work, ckpt_work_cb, ckpt_after_cb) != 0) {
        q->ckpt_busy = 0;
        q->handles--;
    }
}

int ar_queue_sync(struct ar_queue *q)
{
    uint64_t commits = ar_history_commits(q->e->history);
    if (!deferred(q) || commits <= q->durable) {
        return 0;
    }
    int rc = ar_history_sync(q->e->history);
    mark_durable(q, commits, rc);
    return rc;
}

static void lazy_timer_cb(uv_timer_t *t)
{
    sync_start(ar_container_of(t, struct ar_queue, lazy_timer));
}

void ar_queue_want_durable(struct ar_queue *q)
{
    q->want_durable = 1;
}

int ar_queue_commit(struct ar_queue *q)
{
    struct ar_history *h = q->e->history;
    int rc = 0;
    if (ar_history_in_batch(h) && ar_history_commit(h) != 0) {
        ar_log_error("queue", "commit failed: %s", ar_history_errmsg(h));
        rc = AR_EIO;
    }
    struct item *it = q->fresh;
    q->fresh = NULL;
    q->fresh_tail = &q->fresh;
    uint64_t commit = ar_history_commits(h);
    int awaited = it != NULL || q->want_durable;
    q->want_durable = 0;
    while (it) {
        struct item *next = it->next;
        if (rc == 0) {
            it->commit = commit;
            it->next = NULL;
            *q->unsynced_tail = it;
            q->unsynced_tail = &it->next;
        } else {
            it->rq->n_fresh--;
            free(it);
        }
        it = next;
    }
    if (deferred(q)) {
        place_durable(q);
        /* A commit that holds events (or that someone waits for) is synced at once. One that
         * only records what runs did joins the next sync, which is at most LAZY_SYNC_MS away:
         * syncing it alone would make the next event's sync queue behind it at the disk. */
        if (awaited) {
            sync_start(q);
        } else if (ar_history_commits(h) > q->sync_started && !uv_is_active(
                       (uv_handle_t *)&q->lazy_timer) && !q->closing) {
            uv_timer_start(&q->lazy_timer, lazy_timer_cb, LAZY_SYNC_MS, 0);
        }
        ckpt_start(q);
    } else {
        q->durable = commit;
        place_durable(q);
    }
    return rc;
}

/* ---- runs ---- */

static void run_done_cb(struct ar_run *run, void *data)
{
    struct ar_queue *q = data;
    struct ar_recipe *r = run->recipe;
    const char *status = ar_run_status_name(run->status);
    double secs = (double)(uv_hrtime() - run->started_hr) / 1e9;
    char dur[32];
    ar_format_duration((int64_t)(secs * 1000), dur, sizeof(dur));
    if (q->metrics) {
        ar_metrics_run(q->metrics, r->name, status, secs);
    }
    if (run->status == AR_RUN_SUCCEEDED) {
        ar_log_info("queue", "run %lld (%s) succeeded in %s", (long long)run->id, r->name, dur);
    } else {
        ar_log_warn("queue", "run %lld (%s) %s after %s: %s", (long long)run->id, r->name, status,
                    dur, run->error ? run->error : "no error recorded");
    }

    int retry = (run->status == AR_RUN_FAILED || run->status == AR_RUN_INTERRUPTED) &&
                !run->dry_run && run->attempt <= r->retries_max;
    int64_t next_id = 0;
    if (retry) {
        /* An interrupted run did nothing wrong: it goes again at once. */
        int64_t wait = run->status == AR_RUN_FAILED
                           ? ar_queue_backoff_ms(r->retries_backoff_ms, run->attempt)
                           : 0;
        char *redacted_input = ar_redact(&run->redactor, run->input_json);
        struct ar_queue_record rec = {
            .recipe = r->name,
            .trigger = run->trigger,
            .status = "queued",
            .input = redacted_input ? redacted_input : run->input_json,
            .attempt = run->attempt + 1,
            .queued_at = ar_now_ms(),
            .not_before = ar_now_ms() + wait,
            .retry_of = run->id,
        };
        if (insert_row(q, &rec, &next_id) == 0) {
            add_fresh(q, new_item(q, next_id, r->name, rec.not_before));
            ar_format_duration(wait, dur, sizeof(dur));
            ar_log_info("queue", "run %lld (%s) will be retried as run %lld (attempt %d) in %s",
                        (long long)run->id, r->name, (long long)next_id, rec.attempt, dur);
            watches_retarget(q, run->id, next_id);
        } else {
            next_id = 0;
        }
        free(redacted_input);
    }
    if (next_id == 0) {
        struct ar_queue_result res = {
            .run_id = run->id,
            .status = status,
            .result_json = run->result_json,
            .error = run->error,
        };
        watches_fire(q, &res);
    }
    schedule_dispatch(q);
}

/* Ends every waiting row of a recipe whose file is gone: it can never run. */
static void fail_recipe_rows(struct ar_queue *q, struct rqueue *rq, const char *why)
{
    struct item *it;
    while ((it = rq_pop(rq)) != NULL) {
        ar_history_run_end(q->e->history, it->id, "failed", why, ar_now_ms());
        ar_log_error("queue", "run %lld (%s) cannot start: %s", (long long)it->id, rq->recipe,
                     why);
        if (q->metrics) {
            ar_metrics_run(q->metrics, rq->recipe, "failed", -1);
        }
        struct ar_queue_result res = {.run_id = it->id, .status = "failed", .error = why};
        free(it);
        watches_fire(q, &res);
    }
}

/* Starts one row; a row that cannot start stays queued in the database for the next start. */
static void start_item(struct ar_queue *q, struct item *it)
{
    struct ar_engine *e = q->e;
    struct ar_run_record rec;
    char err[1024];
    int rc = ar_history_get(e->history, it->id, &rec);
    if (rc != 0 || strcmp(rec.status, "queued") != 0) {
        /* Pruned, or ended by hand: nothing to run. */
        ar_log_warn("queue", "run %lld is no longer queued; not started", (long long)it->id);
        if (rc == 0) {
            ar_run_record_free(&rec);
        }
        free(it);
        return;
    }
    struct ar_run_opts opts = {
        .recipe = rec.recipe,
        .trigger = rec.trigger,
        .input_json = rec.input,
        .attempt = rec.attempt,
        .queued_id = it->id,
    };
    /* Debug: at thousands of runs a second, the line that says how each ended is enough. */
    ar_log_debug("queue", "run %lld (%s) starts: %s event, attempt %d", (long long)it->id,
                 rec.recipe, rec.trigger, rec.attempt);
    rc = ar_run_start(e, &opts, run_done_cb, q, err, sizeof(err));
    if (rc != 0) {
        /* The row stays queued and is tried again at the next start of the service. */
        ar_log_error("queue", "run %lld (%s) cannot start: %s", (long long)it->id, rec.recipe,
                     err);
    }
    ar_run_record_free(&rec);
    free(it);
}

static int global_full(struct ar_engine *e)
{
    return e->cfg->max_runs > 0 && e->runs_active >= e->cfg->max_runs;
}

static void dispatch(struct ar_queue *q)
{
    struct ar_engine *e = q->e;
    int progress = 1;
    /* One row per recipe per pass, so one busy recipe cannot starve the others. */
    while (progress && !q->paused && !q->closing) {
        progress = 0;
        for (struct rqueue *rq = q->rqs; rq && !q->paused && !q->closing; rq = rq->next) {
            if (rq->blocked || rq->head == NULL) {
                continue;
            }
            if (global_full(e)) {
                return;
            }
            struct ar_recipe *r;
            char err[1024];
            int rc = ar_engine_recipe(e, rq->recipe, &r, err, sizeof(err));
            if (rc == AR_ENOENT) {
                fail_recipe_rows(q, rq, err);
                continue;
            }
            if (rc != 0) {
                /* A recipe being edited may not load for a moment: keep its events. */
                ar_log_error("queue", "%s: %lld queued run(s) wait until the recipe loads: %s",
                             rq->recipe, (long long)rq->n, err);
                rq->blocked = 1;
                continue;
            }
            if (r->concurrency > 0 && r->running >= r->concurrency) {
                continue;
            }
            start_item(q, rq_pop(rq));
            progress = 1;
        }
    }
}

static void idle_cb(uv_idle_t *h)
{
    struct ar_queue *q = ar_container_of(h, struct ar_queue, idle);
    uv_idle_stop(h);
    dispatch(q);
}

void ar_queue_pause(struct ar_queue *q, int paused)
{
    q->paused = paused;
    if (paused) {
        uv_idle_stop(&q->idle);
    } else {
        schedule_dispatch(q);
    }
}

void ar_queue_unblock(struct ar_queue *q)
{
    for (struct rqueue *rq = q->rqs; rq; rq = rq->next) {
        rq->blocked = 0;
    }
    schedule_dispatch(q);
}

int64_t ar_queue_depth(const struct ar_queue *q)
{
    int64_t n = q->n_delayed;
    for (const struct rqueue *rq = q->rqs; rq; rq = rq->next) {
        n += rq->n + rq->n_fresh;
    }
    return n;
}

/* ---- start-up ---- */

struct interrupted {
    struct interrupted *next;
    int64_t id;
    int attempt;
    char *recipe;  /* owned */
    char *trigger; /* owned */
    char *input;   /* owned */
};

static int collect_running_cb(void *data, const struct ar_run_record *r)
{
    struct interrupted **list = data;
    struct interrupted *n = ar_calloc(1, sizeof(*n));
    n->id = r->id;
    n->attempt = r->attempt;
    n->recipe = ar_strdup(r->recipe);
    n->trigger = ar_strdup(r->trigger);
    n->input = ar_strdup(r->input ? r->input : "{}");
    n->next = *list;
    *list = n;
    return 0;
}

static int load_queued_cb(void *data, int64_t id, const char *recipe, int attempt,
                          int64_t not_before)
{
    struct ar_queue *q = data;
    place(q, new_item(q, id, recipe ? recipe : "", not_before));
    return 0;
}

int ar_queue_recover(struct ar_queue *q, int64_t *interrupted, int64_t *queued)
{
    struct ar_engine *e = q->e;
    struct interrupted *list = NULL;
    int64_t n_interrupted = 0;
    int rc = ar_history_interrupt_running(e->history, collect_running_cb, &list, &n_interrupted);
    while (list) {
        struct interrupted *n = list;
        list = n->next;
        struct ar_recipe *r;
        char err[1024];
        int64_t id;
        if (rc == 0 && ar_engine_recipe(e, n->recipe, &r, err, sizeof(err)) == 0 &&
            n->attempt <= r->retries_max) {
            struct ar_queue_record rec = {
                .recipe = n->recipe,
                .trigger = n->trigger,
                .status = "queued",
                .input = n->input,
                .attempt = n->attempt + 1,
                .queued_at = ar_now_ms(),
                .retry_of = n->id,
            };
            rc = insert_row(q, &rec, &id);
            if (rc == 0) {
                ar_log_info("queue", "run %lld (%s) was interrupted by the end of the last "
                                     "process; retried as run %lld (attempt %d)",
                            (long long)n->id, n->recipe, (long long)id, rec.attempt);
            }
        } else if (rc == 0) {
            ar_log_warn("queue", "run %lld (%s) was interrupted by the end of the last process",
                        (long long)n->id, n->recipe);
        }
        free(n->recipe);
        free(n->trigger);
        free(n->input);
        free(n);
    }
    if (rc == 0) {
        rc = ar_queue_commit(q);
    }
    if (rc == 0) {
        /* The rows loaded next start at once: what was written above must be on disk. */
        rc = ar_queue_sync(q);
    }
    if (rc != 0) {
        return rc;
    }
    rc = ar_history_queued(e->history, load_queued_cb, q);
    if (rc != 0) {
        return rc;
    }
    if (interrupted) {
        *interrupted = n_interrupted;
    }
    if (queued) {
        *queued = ar_queue_depth(q);
    }
    schedule_dispatch(q);
    arm_delay_timer(q);
    return 0;
}

/* ---- life cycle ---- */

int ar_queue_create(struct ar_engine *e, struct ar_metrics *metrics, struct ar_queue **out)
{
    struct ar_queue *q = ar_calloc(1, sizeof(*q));
    q->e = e;
    q->metrics = metrics;
    q->fresh_tail = &q->fresh;
    q->unsynced_tail = &q->unsynced;
    q->watches.next = q->watches.prev = &q->watches;
    uv_idle_init(&e->loop, &q->idle);
    uv_timer_init(&e->loop, &q->delay_timer);
    uv_timer_init(&e->loop, &q->lazy_timer);
    uv_unref((uv_handle_t *)&q->lazy_timer);
    q->handles = 3;
    /* A durable history (the service's) syncs commits on a worker thread from now on. */
    if (ar_history_defer_sync(e->history) != 0) {
        ar_log_warn("queue", "history.db: commits will wait for the disk: %s",
                    ar_history_errmsg(e->history));
    }
    *out = q;
    return 0;
}

static void free_items(struct item *it)
{
    while (it) {
        struct item *next = it->next;
        free(it);
        it = next;
    }
}

/* One of the handles (or the sync in flight) is done; the last one frees the queue. */
static void queue_release(struct ar_queue *q)
{
    if (--q->handles > 0) {
        return;
    }
    while (q->rqs) {
        struct rqueue *rq = q->rqs;
        q->rqs = rq->next;
        free_items(rq->head);
        free(rq->recipe);
        free(rq);
    }
    free_items(q->delayed);
    free_items(q->fresh);
    /* Committed rows stay queued in the database, for the next start. */
    free_items(q->unsynced);
    while (q->watches.next != &q->watches) {
        ar_queue_unwatch(q->watches.next);
    }
    free(q);
}

static void queue_close_cb(uv_handle_t *h)
{
    queue_release(h->data);
}

void ar_queue_close(struct ar_queue *q)
{
    if (q == NULL || q->closing) {
        return;
    }
    q->closing = 1;
    q->paused = 1;
    q->idle.data = q;
    q->delay_timer.data = q;
    q->lazy_timer.data = q;
    uv_close((uv_handle_t *)&q->idle, queue_close_cb);
    uv_close((uv_handle_t *)&q->delay_timer, queue_close_cb);
    uv_close((uv_handle_t *)&q->lazy_timer, queue_close_cb);
}
