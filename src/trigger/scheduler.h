/* The cron scheduler of `autorun serve`: one timer per cron trigger, the last fire of each
 * schedule kept durably, and the missed: 'once' | 'skip' policy for fires missed while the
 * service was down. */
#ifndef AR_TRIGGER_SCHEDULER_H
#define AR_TRIGGER_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "trigger/cron.h"

struct ar_engine;
struct ar_queue;
struct ar_scheduler;

/* engine and queue are borrowed and must outlive the scheduler. */
int ar_scheduler_create(struct ar_engine *e, struct ar_queue *q, struct ar_scheduler **out);
/* Stops every timer; memory held by a timer is freed when the loop closes it. */
void ar_scheduler_destroy(struct ar_scheduler *s);

/* (Re)builds the schedules from the engine's loaded recipes. A schedule seen for the first
 * time starts from now. One whose fires were missed while no service ran fires once at once
 * (missed: 'once', the default) or not ('skip'); fires due while this process ran (a reload)
 * are never dropped. Returns the number of schedules. */
size_t ar_scheduler_load(struct ar_scheduler *s);

/* The key a schedule's last fire is stored under in cron_state.schedule: the expression, then
 * ' ' and the zone when the trigger names one. Owned by the caller. */
char *ar_scheduler_key(const char *expr, const char *tz);

/* The fires of cron in tz strictly after after_s and at or before now_s: *count of them (at
 * most limit) and the latest in *latest_s. *count is 0 when there is none. Pure. */
int ar_cron_due(const struct ar_cron *cron, const struct ar_tz *tz, int64_t after_s,
                int64_t now_s, int64_t limit, int64_t *latest_s, int64_t *count);

#endif
