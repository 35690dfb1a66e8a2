/* The poll and newRow triggers of `autorun serve`: one timer per trigger, each poll an internal
 * run of the recipe, a durable cursor and seen-id set per trigger, and one queued run per new
 * item, exactly once across restarts. Design: the comment at the top of poller.c. */
#ifndef AR_TRIGGER_POLLER_H
#define AR_TRIGGER_POLLER_H

#include <stddef.h>
#include <stdint.h>

struct ar_engine;
struct ar_queue;
struct ar_poller;

/* The trigger name of the internal runs that poll (history shows the failed ones). */
#define AR_POLL_RUN_TRIGGER "poll-check"
/* Default interval when a trigger names no `every`, and the longest wait after failures. */
#define AR_POLL_EVERY_MS 60000
#define AR_POLL_BACKOFF_CAP_MS (15 * 60 * 1000)
/* How many item ids each trigger remembers (the newest); the queue's dedup keys back it up. */
#define AR_POLL_SEEN_KEEP 10000
/* Rows a newRow poll reads at most; a full page polls again at once. */
#define AR_POLL_ROW_LIMIT 100

/* engine and queue are borrowed and must outlive the poller. Poll runs that a process which
 * died left 'running' are deleted here (before ar_queue_recover() would see them). */
int ar_poller_create(struct ar_engine *e, struct ar_queue *q, struct ar_poller **out);
/* Stops every timer and cancels the polls under way (their results are dropped: nothing of
 * them was committed, so the next start polls from the same cursor). */
void ar_poller_destroy(struct ar_poller *p);

/* (Re)builds the triggers from the engine's loaded recipes and plans each one's next poll from
 * its durable state (at once when it is due or new). Returns the number of triggers. */
size_t ar_poller_load(struct ar_poller *p);

/* The wait before the next poll after errors failures in a row: every_ms doubled per failure,
 * capped at AR_POLL_BACKOFF_CAP_MS (or every_ms when that is longer). Pure. */
int64_t ar_poller_backoff_ms(int64_t every_ms, int errors);

/* Checks a newRow identifier: letters, digits and _, not starting with a digit; with dotted,
 * also schema.table. Pure. */
int ar_poller_ident_valid(const char *name, int dotted);

#endif
