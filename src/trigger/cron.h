/* Cron schedules: 5-field expressions as Vixie cron / cronie read them, and their fire times. */
#ifndef AR_TRIGGER_CRON_H
#define AR_TRIGGER_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "core/tz.h"

/* Which fields began with '*'. As in cronie, a day field that begins with '*' (even with a
 * step) makes day-of-month and day-of-week AND-ed instead of OR-ed, and a schedule whose minute
 * or hour begins with '*' is a "wildcard" one for daylight-saving changes. */
#define AR_CRON_MIN_STAR 0x01
#define AR_CRON_HOUR_STAR 0x02
#define AR_CRON_DOM_STAR 0x04
#define AR_CRON_DOW_STAR 0x08

/* A parsed schedule: a plain value, no resources; treat the fields as read-only. */
struct ar_cron {
    uint64_t minute; /* bit n: minute n, 0-59 */
    uint32_t hour;   /* bit n: hour n, 0-23 */
    uint32_t dom;    /* bit n: day of month n, 1-31 */
    uint16_t month;  /* bit n: month n, 1-12 */
    uint8_t dow;     /* bit n: weekday n, 0-6, Sunday = 0 (a 7 is stored as 0) */
    uint8_t flags;   /* AR_CRON_*_STAR */
};

/* Room for any message ar_cron_parse() writes. */
#define AR_CRON_ERRMAX 160

/* Parses "min hour dom month dow" (lists, ranges, steps after '*' or a range such as
 * "1-30/5", "5/10" meaning 5-59/10, JAN-DEC and SUN-SAT in any case, Sunday as 0 or 7) or a
 * macro: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually. Bad input is
 * AR_ESYNTAX with a message naming the field in err (if not NULL), e.g.
 * "hour: 25 is out of range 0-23"; out is written only on success. */
int ar_cron_parse(const char *expr, struct ar_cron *out, char *err, size_t errlen);

/* How far ar_cron_next() looks before it gives up on a schedule that never fires. */
#define AR_CRON_HORIZON_YEARS 50

/* The first fire time strictly after after_utc_s, for the schedule read in tz (NULL is UTC).
 * Daylight-saving changes follow cronie: a fixed-time schedule whose time falls in a skipped
 * hour fires once when the gap ends; in a repeated hour it fires on the first pass only; a
 * schedule whose minute or hour begins with '*' follows the clock through both passes.
 * AR_ENOENT when the schedule does not fire within AR_CRON_HORIZON_YEARS (e.g. "0 0 30 2 *"),
 * AR_ERANGE for an instant outside the years 1-9999. */
int ar_cron_next(const struct ar_cron *cron, const struct ar_tz *tz, int64_t after_utc_s,
                 int64_t *next_utc_s);

/* `autorun cron EXPR [--tz ZONE] [--from TIME] [--count N] [--json]`; argv[0] is "cron".
 * Returns the process exit status: 0, or 2 for bad usage, expression, zone or time. */
int ar__cli_cron(int argc, char **argv);

#endif
