/* The state database ($AUTORUN_HOME/history.db): runs, logs, steps, store.
 * Writes are grouped: the first write opens a transaction that the engine commits
 * once per loop iteration, so a burst of runs costs one commit, not one each. */
#ifndef AR_DB_HISTORY_H
#define AR_DB_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct ar_history;

/* A run row. Strings are borrowed when writing, owned (free with
 * ar_run_record_free) when read back. */
struct ar_run_record {
    int64_t id;
    char *recipe;
    char *trigger;
    char *status;
    int attempt;
    int dry_run;
    int64_t queued_at;
    int64_t started_at;
    int64_t finished_at;
    double duration_ms;
    char *input;
    char *result;
    char *error;
    char *error_stack;
    int64_t replay_of;
};

struct ar_history_filter {
    const char *recipe; /* or NULL */
    const char *status; /* or NULL */
    int64_t since_ms;   /* 0 = any */
    int limit;          /* 0 = default 20 */
};

struct ar_log_record {
    int64_t at;
    const char *level;
    const char *message;
};

struct ar_step_record {
    int seq;
    const char *kind;
    const char *name;
    int64_t started_at;
    double duration_ms;
    const char *status;
    int attempts;
    const char *detail;
    const char *error;
};

typedef int (*ar_run_row_cb)(void *data, const struct ar_run_record *r);
typedef int (*ar_log_row_cb)(void *data, const struct ar_log_record *l);
typedef int (*ar_step_row_cb)(void *data, const struct ar_step_record *s);

int ar_history_open(const char *home, struct ar_history **out, char *err, size_t errlen);
void ar_history_close(struct ar_history *h);

/* For a process about to exit: commits (and syncs) as ar_history_close() does, and closes
 * only when the WAL is due a checkpoint. Otherwise closing would just unlock and unmap what
 * exit does too, 0.2 ms of a short run: the next process finds the database as after any
 * close. Nothing may use h afterwards. */
void ar_history_exit(struct ar_history *h);
const char *ar_history_errmsg(struct ar_history *h);

/* Commits the grouped writes, if any. */
int ar_history_commit(struct ar_history *h);
int ar_history_in_batch(const struct ar_history *h);

int ar_history_run_insert(struct ar_history *h, const struct ar_run_record *r, int64_t *id);
int ar_history_run_finish(struct ar_history *h, const struct ar_run_record *r);
int ar_history_log_insert(struct ar_history *h, int64_t run_id, int seq,
                          const struct ar_log_record *l);
int ar_history_step_insert(struct ar_history *h, int64_t run_id, const struct ar_step_record *s);
/* Runs left 'running' by a process that died become 'interrupted'. */
int ar_history_mark_interrupted(struct ar_history *h, int64_t *count);

int ar_history_list(struct ar_history *h, const struct ar_history_filter *f, ar_run_row_cb cb,
                    void *data);
int ar_history_get(struct ar_history *h, int64_t id, struct ar_run_record *out);
int ar_history_logs(struct ar_history *h, int64_t id, ar_log_row_cb cb, void *data);
int ar_history_steps(struct ar_history *h, int64_t id, ar_step_row_cb cb, void *data);
/* The newest run of a recipe (status and start), for `autorun list`. */
int ar_history_last(struct ar_history *h, const char *recipe, struct ar_run_record *out);
int ar_history_prune(struct ar_history *h, int64_t before_ms, int64_t *deleted);
void ar_run_record_free(struct ar_run_record *r);

/* Per-recipe store. Values are JSON text. get returns AR_ENOENT when absent or expired. */
int ar_store_get(struct ar_history *h, const char *recipe, const char *key, int64_t now_ms,
                 char **json);
int ar_store_set(struct ar_history *h, const char *recipe, const char *key, const char *json,
                 int64_t expires_at);
int ar_store_del(struct ar_history *h, const char *recipe, const char *key);

/* ---- The run queue of `autorun serve` (src/core/queue.c; docs/service.md) ---- */

/* In the service every commit is synced to disk (synchronous=FULL), so an event that was
 * acknowledged survives a power loss too; `autorun run` keeps the cheaper default. */
int ar_history_set_durable(struct ar_history *h, int full);

/* Group commit without blocking the loop. After ar_history_defer_sync(), a durable history's
 * commits only write the WAL (synchronous=NORMAL), and the caller makes them durable with
 * ar_history_sync(), which does the fdatasync FULL would have done inside each commit: every
 * commit counted by ar_history_commits() before ar_history_sync() started is on disk once it
 * returns 0. ar_history_sync() touches nothing but the WAL file, so it may run on a worker
 * thread while the loop thread goes on writing; it is also called by ar_history_close(). */
int ar_history_defer_sync(struct ar_history *h);
/* 1 when commits are durable only after ar_history_sync() (durable and deferred). */
int ar_history_sync_deferred(const struct ar_history *h);
/* How many commits have written something since the history was opened. */
uint64_t ar_history_commits(const struct ar_history *h);
int ar_history_sync(struct ar_history *h);
/* With the sync deferred, SQLite's automatic checkpoint (which would sync twice inside a commit,
 * on the loop thread) gives way to ar_history_checkpoint(), to be called on a worker thread
 * (one at a time, never after ar_history_close()) once ar_history_wal_pages() reaches
 * AR_HISTORY_CHECKPOINT_PAGES. Should those passive checkpoints fall behind, a commit
 * checkpoints by itself at four times that, so the WAL stays bounded. */
#define AR_HISTORY_CHECKPOINT_PAGES 1000
int ar_history_wal_pages(const struct ar_history *h);
int ar_history_checkpoint(struct ar_history *h);

/* A row written by the queue. Strings are borrowed. */
struct ar_queue_record {
    const char *recipe;
    const char *trigger;
    const char *status; /* "queued", or "skipped" (then finished at queued_at) */
    const char *input;  /* JSON, redacted */
    const char *error;  /* skipped: why; NULL otherwise */
    int attempt;
    int64_t queued_at;
    int64_t not_before; /* 0: at once */
    int64_t retry_of;   /* 0: none */
};
int ar_history_queue_insert(struct ar_history *h, const struct ar_queue_record *r, int64_t *id);
/* A queued row starts: its status becomes running. AR_ENOENT when it is no longer queued. */
int ar_history_run_begin(struct ar_history *h, int64_t id, int64_t started_at);
/* Ends a row that will never run (a queued run whose recipe is gone): status and error. */
int ar_history_run_end(struct ar_history *h, int64_t id, const char *status, const char *error,
                       int64_t at);
/* Every queued row in id order. */
typedef int (*ar_queued_row_cb)(void *data, int64_t id, const char *recipe, int attempt,
                                int64_t not_before);
int ar_history_queued(struct ar_history *h, ar_queued_row_cb cb, void *data);
/* Rows left 'running' by a process that died: each is passed to cb (whole), then all become
 * 'interrupted'. *count gets how many. */
int ar_history_interrupt_running(struct ar_history *h, ar_run_row_cb cb, void *data,
                                 int64_t *count);

/* De-duplication keys. find: AR_ENOENT unless key was added and has not expired at now_ms. */
int ar_history_delivery_find(struct ar_history *h, const char *key, int64_t now_ms,
                             int64_t *run_id);
/* Adds (or renews) a key; expires_at 0 means never. */
int ar_history_delivery_add(struct ar_history *h, const char *key, const char *recipe,
                            int64_t run_id, int64_t seen_at, int64_t expires_at);
int ar_history_delivery_prune(struct ar_history *h, int64_t now_ms, int64_t *deleted);

/* The last fire of a cron schedule (AR_ENOENT when never recorded), and recording one. */
int ar_history_cron_last(struct ar_history *h, const char *recipe, const char *schedule,
                         int64_t *last_ms);
int ar_history_cron_set(struct ar_history *h, const char *recipe, const char *schedule,
                        int64_t last_ms);

/* ---- Poll and newRow triggers (src/trigger/poller.c) ---- */

/* One trigger's row in poll_state. Strings are owned when read (ar_poll_state_free), borrowed
 * when written. */
struct ar_poll_state {
    char *trigger;       /* 'poll zendesk.newTickets' (read by ar_history_poll_list only) */
    char *cursor;        /* JSON, or NULL */
    int64_t baseline_at; /* 0: no baseline yet */
    int64_t last_poll_at;
    int64_t last_ok_at;
    int errors;          /* failures in a row */
    char *last_error;    /* or NULL */
    int64_t next_poll_at;
    int64_t fired;
};
void ar_poll_state_free(struct ar_poll_state *st);
/* AR_ENOENT when the trigger has never been polled. */
int ar_history_poll_get(struct ar_history *h, const char *recipe, const char *trigger,
                        struct ar_poll_state *out);
int ar_history_poll_put(struct ar_history *h, const char *recipe, const char *trigger,
                        const struct ar_poll_state *st);
typedef int (*ar_poll_row_cb)(void *data, const struct ar_poll_state *st);
/* Every trigger of a recipe that was polled, by trigger. */
int ar_history_poll_list(struct ar_history *h, const char *recipe, ar_poll_row_cb cb, void *data);
/* The seen-id set: seen is 0 when item was recorded for the trigger, AR_ENOENT otherwise. */
int ar_history_poll_seen(struct ar_history *h, const char *recipe, const char *trigger,
                         const char *item);
int ar_history_poll_see(struct ar_history *h, const char *recipe, const char *trigger,
                        const char *item, int64_t at);
/* Forgets all but the newest keep ids of a trigger. */
int ar_history_poll_trim(struct ar_history *h, const char *recipe, const char *trigger,
                         int64_t keep);
/* Deletes a finished run with its logs and steps (an internal run that has nothing to tell). */
int ar_history_run_delete(struct ar_history *h, int64_t id);
/* Deletes the runs with this trigger left 'running' by a process that died; *count gets how
 * many. */
int ar_history_run_delete_running(struct ar_history *h, const char *trigger, int64_t *count);

#endif
