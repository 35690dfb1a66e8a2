/* Service metrics: counters and duration histograms kept in memory, rendered as Prometheus text.
 * Counters start at zero with the process, as Prometheus expects of counters. */
#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[] = AR_METRICS_BUCKETS;
#define N_BUCKETS AR_ARRAY_SIZE(bucket_bounds)

struct run_counter {
    struct run_counter *next;
    char *recipe; /* owned */
    char *status; /* owned */
    uint64_t n;
};

struct histogram {
    struct histogram *next;
    char *recipe;                  /* owned */
    uint64_t buckets[N_BUCKETS];   /* observations <= bound, not cumulative here */
    uint64_t count;
    double sum;
};

struct code_counter {
    struct code_counter *next;
    int code;
    uint64_t n;
};

struct ar_metrics {
    struct run_counter *runs;  /* owned list, sorted by recipe then status */
    struct histogram *hists;   /* owned list, sorted by recipe */
    struct code_counter *codes; /* owned list, sorted by code */
};

struct ar_metrics *ar_metrics_create(void)
{
    return ar_calloc(1, sizeof(struct ar_metrics));
}

void ar_metrics_destroy(struct ar_metrics *m)
{
    if (m == NULL) {
        return;
    }
    while (m->runs) {
        struct run_counter *c = m->runs;
        m->runs = c->next;
        free(c->recipe);
        free(c->status);
        free(c);
    }
    while (m->hists) {
        struct histogram *h = m->hists;
        m->hists = h->next;
        free(h->recipe);
        free(h);
    }
    while (m->codes) {
        struct code_counter *c = m->codes;
        m->codes = c->next;
        free(c);
    }
    free(m);
}

/* Sorted insertion keeps the output stable, which makes it easy to read and to diff. */
static struct run_counter *run_counter(struct ar_metrics *m, const char *recipe,
                                       const char *status, int create)
{
    struct run_counter **p = &m->runs;
    for (; *p; p = &(*p)->next) {
        int c = strcmp((*p)->recipe, recipe);
        if (c == 0) {
            c = strcmp((*p)->status, status);
        }
        if (c == 0) {
            return *p;
        }
        if (c > 0) {
            break;
        }
    }
    if (!create) {
        return NULL;
    }
    struct run_counter *n = ar_calloc(1, sizeof(*n));
    n->recipe = ar_strdup(recipe);
    n->status = ar_strdup(status);
    n->next = *p;
    *p = n;
    return n;
}

static struct histogram *histogram(struct ar_metrics *m, const char *recipe)
{
    struct histogram **p = &m->hists;
    for (; *p; p = &(*p)->next) {
        int c = strcmp((*p)->recipe, recipe);
        if (c == 0) {
            return *p;
        }
        if (c > 0) {
            break;
        }
    }
    struct histogram *n = ar_calloc(1, sizeof(*n));
    n->recipe = ar_strdup(recipe);
    n->next = *p;
    *p = n;
    return n;
}

void ar_metrics_run(struct ar_metrics *m, const char *recipe, const char *status,
                    double duration_s)
{
    run_counter(m, recipe, status, 1)->n++;
    if (duration_s < 0) {
        return;
    }
    struct histogram *h = histogram(m, recipe);
    for (size_t i = 0; i < N_BUCKETS; i++) {
        if (duration_s <= bucket_bounds[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum += duration_s;
}

void ar_metrics_response(struct ar_metrics *m, int code)
{
    struct code_counter **p = &m->codes;
    for (; *p && (*p)->code < code; p = &(*p)->next) {
    }
    if (*p == NULL || (*p)->code != code) {
        struct code_counter *n = ar_calloc(1, sizeof(*n));
        n->code = code;
        n->next = *p;
        *p = n;
    }
    (*p)->n++;
}

uint64_t ar_metrics_runs(const struct ar_metrics *m, const char *recipe, const char *status)
{
    struct run_counter *c = run_counter((struct ar_metrics *)m, recipe, status, 0);
    return c ? c->n : 0;
}

/* A label value: backslash, double quote and newline are escaped (exposition format). */
static void label(struct ar_buf *out, const char *s)
{
    ar_buf_puts(out, "\"");
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            char esc[3] = {'\\', *s, 0};
            ar_buf_puts(out, esc);
        } else if (*s == '\n') {
            ar_buf_puts(out, "\\n");
        } else {
            ar_buf_append(out, s, 1);
        }
    }
    ar_buf_puts(out, "\"");
}

static void header(struct ar_buf *out, const char *name, const char *type, const char *help)
{
    ar_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ar_metrics_render(const struct ar_metrics *m, const struct ar_metrics_gauges *g,
                       struct ar_buf *out)
{
    header(out, "autorun_runs_total", "counter",
           "Runs that ended (or were skipped) since the service started, by recipe and status.");
    for (const struct run_counter *c = m->runs; c; c = c->next) {
        ar_buf_puts(out, "autorun_runs_total{recipe=");
        label(out, c->recipe);
        ar_buf_puts(out, ",status=");
        label(out, c->status);
        ar_buf_printf(out, "} %llu\n", (unsigned long long)c->n);
    }

    header(out, "autorun_run_duration_seconds", "histogram", "Wall time of runs, by recipe.");
    for (const struct histogram *h = m->hists; h; h = h->next) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            ar_buf_puts(out, "autorun_run_duration_seconds_bucket{recipe=");
            label(out, h->recipe);
            if (i < N_BUCKETS) {
                cumulative += h->buckets[i];
                ar_buf_printf(out, ",le=\"%g\"} %llu\n", bucket_bounds[i],
                              (unsigned long long)cumulative);
            } else {
                ar_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
            }
        }
        ar_buf_puts(out, "autorun_run_duration_seconds_sum{recipe=");
        label(out, h->recipe);
        ar_buf_printf(out, "} %.6f\n", h->sum);
        ar_buf_puts(out, "autorun_run_duration_seconds_count{recipe=");
        label(out, h->recipe);
        ar_buf_printf(out, "} %llu\n", (unsigned long long)h->count);
    }

    header(out, "autorun_webhook_responses_total", "counter",
           "Answers the service gave to HTTP requests, by status code.");
    for (const struct code_counter *c = m->codes; c; c = c->next) {
        ar_buf_printf(out, "autorun_webhook_responses_total{code=\"%d\"} %llu\n", c->code,
                      (unsigned long long)c->n);
    }

    header(out, "autorun_queue_depth", "gauge", "Runs waiting to start.");
    ar_buf_printf(out, "autorun_queue_depth %lld\n", (long long)g->queue_depth);
    header(out, "autorun_runs_active", "gauge", "Runs executing now.");
    ar_buf_printf(out, "autorun_runs_active %lld\n", (long long)g->runs_active);
    header(out, "autorun_webhook_routes", "gauge", "Webhook paths the service answers.");
    ar_buf_printf(out, "autorun_webhook_routes %lld\n", (long long)g->webhooks);
    header(out, "autorun_cron_triggers", "gauge", "Cron schedules the service fires.");
    ar_buf_printf(out, "autorun_cron_triggers %lld\n", (long long)g->cron_triggers);
    header(out, "autorun_http_connections_open", "gauge", "Open HTTP connections.");
    ar_buf_printf(out, "autorun_http_connections_open %llu\n",
                  (unsigned long long)g->http_connections_open);
    header(out, "autorun_http_requests_total", "counter", "HTTP requests received whole.");
    ar_buf_printf(out, "autorun_http_requests_total %llu\n", (unsigned long long)g->http_requests);
    header(out, "autorun_http_protocol_errors_total", "counter",
           "Requests the HTTP layer refused itself (malformed, too large, ...).");
    ar_buf_printf(out, "autorun_http_protocol_errors_total %llu\n",
                  (unsigned long long)g->http_server_errors);
    header(out, "autorun_http_timeouts_total", "counter",
           "Connections closed because the client was too slow or idle.");
    ar_buf_printf(out, "autorun_http_timeouts_total %llu\n", (unsigned long long)g->http_timeouts);
    header(out, "autorun_start_time_seconds", "gauge", "When the service started (Unix time).");
    ar_buf_printf(out, "autorun_start_time_seconds %.3f\n", (double)g->started_at_ms / 1000.0);
}
