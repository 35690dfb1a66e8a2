/* The cron scheduler of `autorun serve`. Timers count monotonic time but schedules follow the
 * wall clock, so a timer never sleeps longer than a minute and every wake re-reads the clock:
 * a clock set back waits for the wall time again (nothing runs twice), a clock set forward (or
 * a machine that slept) fires once for the latest time that came due. */
#include "trigger/scheduler.h"
#include "internal.h"
#include "core/log.h"
#include "core/queue.h"
#include "db/history.h"
#include "js/vm.h"

#include <stdlib.h>
#include <string.h>

#define WAKE_CHUNK_MS 60000
/* Enough to walk a once-a-minute schedule through two years of downtime. */
#define DUE_LIMIT 1100000

struct entry {
    struct entry *next;
    struct ar_scheduler *s; /* borrowed; NULL once the entry is closing */
    char *recipe;           /* owned */
    char *expr;             /* owned */
    char *key;              /* owned: cron_state.schedule */
    struct ar_cron cron;
    struct ar_tz *tz;       /* owned */
    int missed_once;
    int64_t next_s; /* the next fire, UTC seconds */
    uv_timer_t timer;
};

struct ar_scheduler {
    struct ar_engine *e; /* borrowed */
    struct ar_queue *q;  /* borrowed */
    struct entry *entries;
    size_t n;
    int64_t started_s; /* fires due after this came due while this process ran */
};

char *ar_scheduler_key(const char *expr, const char *tz)
{
    return tz ? ar_asprintf("%s %s", expr, tz) : ar_strdup(expr);
}

int ar_cron_due(const struct ar_cron *cron, const struct ar_tz *tz, int64_t after_s,
                int64_t now_s, int64_t limit, int64_t *latest_s, int64_t *count)
{
    int64_t n = 0, t = after_s, next;
    while (n < limit) {
        int rc = ar_cron_next(cron, tz, t, &next);
        if (rc == AR_ENOENT || (rc == 0 && next > now_s)) {
            break;
        }
        if (rc != 0) {
            return rc;
        }
        t = next;
        n++;
    }
    *count = n;
    *latest_s = n ? t : 0;
    return 0;
}

static void entry_close_cb(uv_handle_t *h)
{
    struct entry *en = ar_container_of(h, struct entry, timer);
    free(en->recipe);
    free(en->expr);
    free(en->key);
    ar_tz_destroy(en->tz);
    free(en);
}

static void clear(struct ar_scheduler *s)
{
    while (s->entries) {
        struct entry *en = s->entries;
        s->entries = en->next;
        en->s = NULL;
        uv_close((uv_handle_t *)&en->timer, entry_close_cb);
    }
    s->n = 0;
}

/* Queues the event of one fire and records the fire. */
static void fire(struct entry *en, int64_t at_s, const char *why)
{
    struct ar_scheduler *s = en->s;
    char iso[AR_TZ_ISO_MAX];
    if (ar_tz_format(en->tz, at_s, iso, sizeof(iso)) != 0) {
        snprintf(iso, sizeof(iso), "@%lld", (long long)at_s);
    }
    char *input = ar_asprintf("{\"scheduledAt\":\"%s\"}", iso);
    struct ar_queue_event ev = {
        .recipe = en->recipe,
        .trigger = "cron",
        .input_json = input,
        .flags = AR_QUEUE_SKIP_IF_BUSY,
    };
    int64_t id = 0;
    enum ar_queue_outcome outcome;
    int rc = ar_queue_push(s->q, &ev, &id, &outcome);
    free(input);
    if (rc != 0) {
        /* Not recorded as fired either: the next start sees it as missed. */
        ar_log_error("cron", "%s: '%s' at %s: the fire could not be recorded", en->recipe,
                     en->expr, iso);
        return;
    }
    if (ar_history_cron_set(s->e->history, en->recipe, en->key, at_s * 1000) != 0) {
        ar_log_error("cron", "%s: cannot record the last fire of '%s'", en->recipe, en->expr);
    }
    ar_log_info("cron", "%s: '%s' fired for %s%s: run %lld %s", en->recipe, en->expr, iso, why,
                (long long)id, outcome == AR_QUEUE_SKIPPED ? "skipped (still running)" : "queued");
}

static void timer_cb(uv_timer_t *t);

static void arm(struct entry *en)
{
    int64_t wait = en->next_s * 1000 - ar_now_ms();
    if (wait < 0) {
        wait = 0;
    }
    if (wait > WAKE_CHUNK_MS) {
        wait = WAKE_CHUNK_MS;
    }
    uv_timer_start(&en->timer, timer_cb, (uint64_t)wait, 0);
}

/* Computes the next fire strictly after after_s and arms the timer; a schedule that never
 * fires again is left unarmed. */
static void plan(struct entry *en, int64_t after_s)
{
    int rc = ar_cron_next(&en->cron, en->tz, after_s, &en->next_s);
    if (rc != 0) {
        ar_log_warn("cron", "%s: '%s' does not fire again", en->recipe, en->expr);
        uv_timer_stop(&en->timer);
        return;
    }
    arm(en);
}

static void timer_cb(uv_timer_t *t)
{
    struct entry *en = ar_container_of(t, struct entry, timer);
    int64_t now_ms = ar_now_ms(), now_s = now_ms / 1000;
    if (now_ms < en->next_s * 1000) {
        arm(en); /* a chunk of a long wait, or the clock went back */
        return;
    }
    int64_t latest = en->next_s, count = 1, more = 0, last2;
    if (ar_cron_due(&en->cron, en->tz, en->next_s, now_s, DUE_LIMIT, &last2, &more) == 0 &&
        more > 0) {
        latest = last2;
        count += more;
    }
    char why[96] = "";
    if (count > 1) {
        snprintf(why, sizeof(why), " (%lld earlier fire(s) passed while the clock jumped)",
                 (long long)(count - 1));
    }
    fire(en, latest, why);
    plan(en, now_s > latest ? now_s : latest);
}

/* Starts one schedule: baseline, missed fires, first timer. */
static void entry_start(struct ar_scheduler *s, struct entry *en)
{
    int64_t now_ms = ar_now_ms(), now_s = now_ms / 1000, last_ms;
    int rc = ar_history_cron_last(s->e->history, en->recipe, en->key, &last_ms);
    if (rc == AR_ENOENT) {
        /* First sight of this schedule: it starts from now, as a new crontab line does. */
        ar_history_cron_set(s->e->history, en->recipe, en->key, now_ms);
        plan(en, now_s);
        return;
    }
    if (rc != 0) {
        ar_log_error("cron", "%s: cannot read the last fire of '%s': %s", en->recipe, en->expr,
                     ar_history_errmsg(s->e->history));
        plan(en, now_s);
        return;
    }
    int64_t latest = 0, count = 0;
    ar_cron_due(&en->cron, en->tz, last_ms / 1000, now_s, DUE_LIMIT, &latest, &count);
    if (count > 0) {
        if (latest >= s->started_s) {
            /* Due while this process ran (during a reload): a late fire, not a missed one. */
            fire(en, latest, "");
        } else if (en->missed_once) {
            char why[96];
            snprintf(why, sizeof(why), " (missed while the service was down; %lld missed)",
                     (long long)count);
            fire(en, latest, why);
        } else {
            ar_log_info("cron", "%s: '%s' missed %lld fire(s) while the service was down; "
                                "missed: 'skip' runs none of them",
                        en->recipe, en->expr, (long long)count);
            ar_history_cron_set(s->e->history, en->recipe, en->key, latest * 1000);
        }
    }
    plan(en, now_s);
}

static char *get_str(duk_context *ctx, duk_idx_t obj, const char *key)
{
    duk_get_prop_string(ctx, obj, key);
    char *v = duk_is_string(ctx, -1) ? ar_strdup(duk_get_string(ctx, -1)) : NULL;
    duk_pop(ctx);
    return v;
}

/* Reads the cron trigger at t; NULL (with the problem logged) when it cannot be scheduled. */
static struct entry *entry_read(struct ar_scheduler *s, duk_context *ctx, duk_idx_t t,
                                const char *recipe, const char *expr)
{
    char err[AR_CRON_ERRMAX];
    struct ar_cron cron;
    if (ar_cron_parse(expr, &cron, err, sizeof(err)) != 0) {
        ar_log_error("cron", "%s: cron '%s': %s; not scheduled", recipe, expr, err);
        return NULL;
    }
    char *tzname = get_str(ctx, t, "tz");
    char *missed = get_str(ctx, t, "missed");
    struct ar_tz *tz = NULL;
    int rc = tzname ? ar_tz_load(tzname, &tz) : ar_tz_local(&tz);
    struct entry *en = NULL;
    if (rc != 0) {
        ar_log_error("cron", "%s: cron '%s': unknown time zone '%s'; not scheduled", recipe, expr,
                     tzname ? tzname : "(system)");
    } else if (missed && strcmp(missed, "once") != 0 && strcmp(missed, "skip") != 0) {
        ar_log_error("cron", "%s: cron '%s': missed must be 'once' or 'skip'; not scheduled",
                     recipe, expr);
        ar_tz_destroy(tz);
    } else {
        en = ar_calloc(1, sizeof(*en));
        en->s = s;
        en->recipe = ar_strdup(recipe);
        en->expr = ar_strdup(expr);
        en->key = ar_scheduler_key(expr, tzname);
        en->cron = cron;
        en->tz = tz;
        en->missed_once = missed == NULL || strcmp(missed, "once") == 0;
    }
    free(tzname);
    free(missed);
    return en;
}

static void add_trigger(duk_context *ctx, int t, struct ar_recipe *r, void *data)
{
    struct ar_scheduler *s = data;
    char *expr = get_str(ctx, t, "cron");
    struct entry *en = expr ? entry_read(s, ctx, t, r->name, expr) : NULL;
    if (en) {
        uv_timer_init(&s->e->loop, &en->timer);
        en->next = s->entries;
        s->entries = en;
        s->n++;
    }
    free(expr);
}

size_t ar_scheduler_load(struct ar_scheduler *s)
{
    clear(s);
    ar__recipes_each_trigger(s->e, add_trigger, s);
    /* Started after the VM is no longer needed: fire() may load recipes. */
    for (struct entry *en = s->entries; en; en = en->next) {
        entry_start(s, en);
    }
    return s->n;
}

int ar_scheduler_create(struct ar_engine *e, struct ar_queue *q, struct ar_scheduler **out)
{
    struct ar_scheduler *s = ar_calloc(1, sizeof(*s));
    s->e = e;
    s->q = q;
    s->started_s = ar_now_ms() / 1000;
    *out = s;
    return 0;
}

void ar_scheduler_destroy(struct ar_scheduler *s)
{
    if (s == NULL) {
        return;
    }
    clear(s);
    free(s);
}
