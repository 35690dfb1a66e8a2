/* `autorun cron`: print the next fire times of a cron expression. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/tz.h"
#include "trigger/cron.h"

#define CRON_COUNT_DEFAULT 5
#define CRON_COUNT_MAX 1000
#define CRON_EXPR_MAX 512

static const char cron_usage[] =
    "usage: autorun cron EXPR [--tz ZONE] [--from TIME] [--count N] [--json]\n"
    "\n"
    "Print the next times a cron expression fires, one ISO 8601 time per line.\n"
    "\n"
    "  EXPR         five fields, minute hour day-of-month month day-of-week\n"
    "               ('*/15 9-17 * * MON-FRI'), or @hourly, @daily, @midnight, @weekly,\n"
    "               @monthly, @yearly, @annually; quote it so the shell leaves '*' alone\n"
    "  --tz ZONE    IANA time zone such as Europe/Berlin (default: the system zone)\n"
    "  --from TIME  list fire times after TIME (default: now): 2026-03-29T01:30:00Z,\n"
    "               2026-03-29T02:30+01:00, a local time in ZONE such as 2026-03-29T02:30\n"
    "               or 2026-03-29, @UNIX_SECONDS, or now\n"
    "  --count N    how many fire times, 1-1000 (default 5)\n"
    "  --json       print one JSON array of strings instead\n";

static int cron_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cron_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("autorun: cron: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int parse_count(const char *s, int *out)
{
    char *end;
    long v;

    if (s[0] < '0' || s[0] > '9') {
        return AR_EINVAL;
    }
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > CRON_COUNT_MAX) {
        return AR_ERANGE;
    }
    *out = (int)v;
    return 0;
}

int ar__cli_cron(int argc, char **argv)
{
    const char *tz_name = NULL, *from_text = NULL, *count_text = NULL;
    char expr[CRON_EXPR_MAX], err[AR_CRON_ERRMAX];
    struct ar_cron cron;
    struct ar_tz *tz = NULL;
    char (*times)[AR_TZ_ISO_MAX] = NULL;
    int64_t cur;
    size_t len = 0;
    int count = CRON_COUNT_DEFAULT, json = 0, options_done = 0, found = 0, i, r, status = 2;

    expr[0] = '\0';
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int got = 0; /* ar__cli_opt(): 1 the option and its value, -1 the option without one */

        if (!options_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                options_done = 1;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                fputs(cron_usage, stdout);
                return 0;
            } else if (strcmp(a, "--json") == 0) {
                json = 1;
            } else if ((got = ar__cli_opt(argc, argv, &i, "--tz", &v)) != 0) {
                tz_name = v;
            } else if ((got = ar__cli_opt(argc, argv, &i, "--from", &v)) != 0) {
                from_text = v;
            } else if ((got = ar__cli_opt(argc, argv, &i, "--count", &v)) != 0) {
                count_text = v;
            } else {
                return cron_fail("unknown option '%s' (see autorun cron --help)", a);
            }
            if (got < 0) {
                return cron_fail("option %s needs a value", a);
            }
            continue;
        }
        /* Several words are joined, so that an unquoted "0 9 '*' '*' 1-5" works too. */
        if (strlen(a) + len + 2 > sizeof(expr)) {
            return cron_fail("expression too long");
        }
        if (len > 0) {
            expr[len++] = ' ';
        }
        memcpy(expr + len, a, strlen(a) + 1);
        len += strlen(a);
    }
    if (len == 0) {
        return cron_fail("missing EXPR (usage: autorun cron EXPR [--tz ZONE] [--from TIME] "
                         "[--count N] [--json])");
    }
    if (count_text != NULL && parse_count(count_text, &count) != 0) {
        return cron_fail("--count: '%s' is not a number from 1 to %d", count_text,
                         CRON_COUNT_MAX);
    }
    if (ar_cron_parse(expr, &cron, err, sizeof(err)) != 0) {
        return cron_fail("%s", err);
    }

    r = ar_tz_load(tz_name, &tz);
    if (r != 0) {
        if (tz_name == NULL) {
            return cron_fail("cannot read the system time zone /etc/localtime: %s (use --tz)",
                             ar_strerror(r));
        }
        if (r == AR_ENOENT) {
            return cron_fail("--tz: unknown time zone '%s' (expected an IANA name such as "
                             "Europe/Berlin)", tz_name);
        }
        if (r == AR_EINVAL) {
            return cron_fail("--tz: '%s' is not a valid time zone (expected an IANA name such "
                             "as Europe/Berlin)", tz_name);
        }
        return cron_fail("--tz: cannot load time zone '%s': %s", tz_name, ar_strerror(r));
    }

    cur = (int64_t)time(NULL);
    if (from_text != NULL && ar_tz_parse_time(from_text, tz, cur, &cur) != 0) {
        cron_fail("--from: cannot read '%s' (expected now, @UNIX_SECONDS, or ISO 8601 such "
                  "as 2026-03-29T02:30:00+01:00, 2026-03-29T01:30Z or 2026-03-29T02:30)",
                  from_text);
        goto out;
    }

    times = malloc((size_t)count * sizeof(*times));
    if (times == NULL) {
        cron_fail("%s", ar_strerror(AR_ENOMEM));
        goto out;
    }
    for (found = 0; found < count; found++) {
        int64_t next;
        r = ar_cron_next(&cron, tz, cur, &next);
        if (r == 0) {
            r = ar_tz_format(tz, next, times[found], sizeof(times[found]));
        }
        if (r != 0) {
            break;
        }
        cur = next;
    }
    if (found == 0) {
        if (r == AR_ENOENT) {
            cron_fail("'%s' never fires within %d years", expr, AR_CRON_HORIZON_YEARS);
        } else {
            cron_fail("%s", ar_strerror(r));
        }
        goto out;
    }

    if (json) {
        fputc('[', stdout);
        for (i = 0; i < found; i++) {
            printf("%s\"%s\"", i > 0 ? "," : "", times[i]);
        }
        fputs("]\n", stdout);
    } else {
        for (i = 0; i < found; i++) {
            puts(times[i]);
        }
    }
    if (found < count) {
        fprintf(stderr, "autorun: cron: only %d fire time%s: no later one within %d years "
                "or before the year 10000\n", found, found == 1 ? "" : "s",
                AR_CRON_HORIZON_YEARS);
    }
    status = fflush(stdout) == 0 ? 0 : 2;

out:
    free(times);
    ar_tz_destroy(tz);
    return status;
}
