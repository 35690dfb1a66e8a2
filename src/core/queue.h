/* The durable run queue of `autorun serve`: every trigger's event becomes a 'queued' row in the
 * state database, and a dispatcher starts those rows as runs within the global limit (run.max)
 * and each recipe's exports.concurrency, retries failed runs with exponential backoff and picks
 * up what a process that died left behind. Design and guarantees: docs/service.md. */
#ifndef AR_CORE_QUEUE_H
#define AR_CORE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct ar_engine;
struct ar_metrics;
struct ar_queue;
struct ar_queue_watch;

/* What ar_queue_push() did with an event. */
enum ar_queue_outcome {
    AR_QUEUE_QUEUED,    /* a new 'queued' row; it runs once the row is committed */
    AR_QUEUE_DUPLICATE, /* the dedup key was seen before: nothing written, run_id is the first */
    AR_QUEUE_SKIPPED    /* AR_QUEUE_SKIP_IF_BUSY and the recipe was busy: a 'skipped' row */
};

/* The event is recorded as 'skipped' (with the reason) instead of queued when the recipe has
 * a concurrency limit that its running and waiting runs already reach: what a cron fire does
 * when the previous run is still going. */
#define AR_QUEUE_SKIP_IF_BUSY 0x01

/* One event to queue. Every pointer is borrowed for the call. */
struct ar_queue_event {
    const char *recipe;
    const char *trigger;    /* "webhook", "cron", "poll", "row" */
    const char *input_json; /* the event, already redacted by the caller */
    /* An identity for the event across its sender's retries (a webhook delivery id, a polled
     * item's id), or NULL. Namespace it, e.g. "poll zendesk.newTickets 123": a key seen before
     * (and not expired) is answered AR_QUEUE_DUPLICATE with the first event's run id. */
    const char *dedup_key;
    int64_t dedup_ttl_ms; /* how long the key is remembered; 0 = forever */
    int flags;            /* AR_QUEUE_SKIP_IF_BUSY */
};

/* How a run chain ended: the last attempt, after every retry it was allowed. Strings are
 * borrowed for the callback. */
struct ar_queue_result {
    int64_t run_id;          /* the last attempt's row */
    const char *status;      /* "succeeded", "failed", "interrupted", "cancelled" */
    const char *result_json; /* or NULL */
    const char *error;       /* or NULL */
};

typedef void (*ar_queue_watch_cb)(void *data, const struct ar_queue_result *r);

/* Creates the queue on the engine's loop; metrics (borrowed, may be NULL) counts run ends. */
int ar_queue_create(struct ar_engine *e, struct ar_metrics *metrics, struct ar_queue **out);
/* Stops dispatching and closes the queue's handles; the queue is freed once they are closed
 * (run the loop). No run may still be active: their end would report to a freed queue. */
void ar_queue_close(struct ar_queue *q);

/* Start-up: rows a dead process left 'running' become 'interrupted', and a new attempt is
 * queued for each whose recipe allows retries; then every 'queued' row is loaded. Writes are
 * committed before this returns. *interrupted and *queued (may be NULL) get the counts. */
int ar_queue_recover(struct ar_queue *q, int64_t *interrupted, int64_t *queued);

/* Records an event (see struct ar_queue_event) in the open batch of history writes. The row is
 * durable once committed, and dispatched only after ar_queue_commit() saw the commit succeed:
 * callers that promise durability to someone (a webhook's 202) answer after that. */
int ar_queue_push(struct ar_queue *q, const struct ar_queue_event *ev, int64_t *run_id,
                  enum ar_queue_outcome *outcome);

/* Commits the batch of history writes. On success the rows pushed since the last commit become
 * ready to run; on failure (AR_EIO) they are forgotten (the transaction rolled back). Called by
 * the service before the loop waits and after I/O callbacks ran. */
int ar_queue_commit(struct ar_queue *q);

/* Group commit. When the history is durable (the service), ar_queue_create() defers its syncs:
 * a commit only writes the WAL, and the queue syncs it on worker threads (up to two syncs in
 * flight), each covering every commit made before it started. A committed row is dispatched only once
 * its commit is on disk. Commits are numbered (ar_queue_committed(): the number of the latest);
 * ar_queue_durable() is the number up to which they are on disk (all of them when the history
 * is not durable). Whoever promises durability (a webhook's 202) answers once
 * ar_queue_durable() reaches the commit that held the event. */
uint64_t ar_queue_committed(const struct ar_queue *q);
uint64_t ar_queue_durable(const struct ar_queue *q);
/* Called on the loop each time a sync ends: the commits up to `upto` are on disk (status 0),
 * or their sync failed (AR_EIO: they are committed but may not survive a power cut). One
 * callback per queue; cb NULL removes it. */
typedef void (*ar_queue_durable_cb)(void *data, uint64_t upto, int status);
void ar_queue_on_durable(struct ar_queue *q, ar_queue_durable_cb cb, void *data);
/* Commits that hold events are synced at once; the others (what runs record) join the next
 * sync, within 10 ms. A caller that waits for the next commit (a webhook answer that waits for
 * an earlier event's commit, say) calls this before ar_queue_commit(). */
void ar_queue_want_durable(struct ar_queue *q);
/* Syncs every commit made so far now, blocking (start-up, shutdown); 0 or AR_EIO. */
int ar_queue_sync(struct ar_queue *q);

/* While paused no run starts (events are still queued): reloads and shutdown drain this way. */
void ar_queue_pause(struct ar_queue *q, int paused);
/* Recipes whose load failed are set aside until this is called (after a reload). */
void ar_queue_unblock(struct ar_queue *q);

/* Calls cb once the run chain that run_id belongs to ends (following its retries). The watch
 * is released after cb, or by ar_queue_unwatch(). */
int ar_queue_watch(struct ar_queue *q, int64_t run_id, ar_queue_watch_cb cb, void *data,
                   struct ar_queue_watch **out);
void ar_queue_unwatch(struct ar_queue_watch *w);

/* Runs waiting to start: ready ones and retries waiting for their backoff. */
int64_t ar_queue_depth(const struct ar_queue *q);

/* The wait before attempt + 1 after attempt failed: backoff doubled per attempt, capped at a
 * day. Pure; exposed for tests. */
int64_t ar_queue_backoff_ms(int64_t backoff_ms, int attempt);

#endif
