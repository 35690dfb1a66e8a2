/* Time zones without the C library's global TZ state: TZif files, POSIX TZ rules, civil time. */
#ifndef AR_CORE_TZ_H
#define AR_CORE_TZ_H

#include <stddef.h>
#include <stdint.h>

/* A loaded zone. Immutable once loaded, so one zone may be shared by any number of schedules. */
struct ar_tz;

/* Loads a zone by IANA name ("Europe/Berlin") from $TZDIR, else /usr/share/zoneinfo. "UTC" and
 * "Etc/UTC" are built in and need no files. NULL means the system zone (/etc/localtime), or UTC
 * when the system has none. Names that start with '/' or contain ".." are refused (AR_EINVAL);
 * an unknown zone is AR_ENOENT; a file that is not a valid TZif file is AR_EINVAL. */
int ar_tz_load(const char *name, struct ar_tz **out);

/* The system zone: the same as ar_tz_load(NULL, out). */
int ar_tz_local(struct ar_tz **out);

/* Parses TZif data (RFC 8536, versions 1 to 4) held in memory; name is kept for display. */
int ar_tz_parse(const char *name, const void *data, size_t len, struct ar_tz **out);

/* Builds a zone from a POSIX TZ rule string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
int ar_tz_from_posix(const char *spec, struct ar_tz **out);

void ar_tz_destroy(struct ar_tz *tz);

/* The name the zone was loaded under ("Europe/Berlin", "UTC", or the system zone's name). */
const char *ar_tz_name(const struct ar_tz *tz);

/* The queries below take NULL for UTC. */

/* The UTC offset in seconds (east of Greenwich is positive) in effect at a UTC instant. */
int ar_tz_offset_at(const struct ar_tz *tz, int64_t utc_s);

/* The first instant strictly after after_utc_s at which the UTC offset changes, or AR_ENOENT
 * when it never changes again. */
int ar_tz_next_transition(const struct ar_tz *tz, int64_t after_utc_s, int64_t *at_utc_s);

enum ar_tz_local_kind {
    AR_TZ_UNIQUE = 0,    /* the local time happens exactly once */
    AR_TZ_GAP = 1,       /* skipped by a forward jump (spring forward) */
    AR_TZ_AMBIGUOUS = 2  /* happens twice (fall back) */
};

struct ar_tz_local {
    int64_t first;   /* UTC of the first occurrence; for a gap, the instant the gap ends */
    int64_t second;  /* UTC of the second occurrence; equal to first unless ambiguous */
    int kind;        /* enum ar_tz_local_kind */
};

/* Converts a local civil time, given as seconds since 1970-01-01T00:00:00 local, to UTC. */
int ar_tz_local_to_utc(const struct ar_tz *tz, int64_t local_s, struct ar_tz_local *out);

/* ISO 8601 with the zone's offset, e.g. "2026-03-29T03:00:00+02:00". Needs AR_TZ_ISO_MAX
 * bytes at most; years outside 0000-9999 are AR_ERANGE, a short buffer AR_E2BIG. */
#define AR_TZ_ISO_MAX 32
int ar_tz_format(const struct ar_tz *tz, int64_t utc_s, char *buf, size_t size);

/* Parses a user-supplied instant: "now", "@<unix seconds>", ISO 8601 with "Z" or an offset
 * ("2026-03-29T02:30:00+01:00", "...+0100", "...Z"), or a local time without offset in tz
 * ("2026-03-29T02:30", "2026-03-29 02:30:00", "2026-03-29"). A local time that happens twice
 * means its first occurrence; one skipped by a forward jump means the instant the gap ends.
 * Fractions of a second are truncated. Malformed text is AR_EINVAL. */
int ar_tz_parse_time(const char *text, const struct ar_tz *tz, int64_t now_utc_s,
                     int64_t *out_utc_s);

/* Proleptic Gregorian calendar helpers: days since 1970-01-01 and back, weekday 0 = Sunday. */
int64_t ar__days_from_civil(int64_t year, int month, int day);
void ar__civil_from_days(int64_t days, int64_t *year, int *month, int *day);
int ar__weekday(int64_t days);
int ar__days_in_month(int64_t year, int month);

#endif
