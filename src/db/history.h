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

#endif
