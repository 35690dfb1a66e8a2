/* Service metrics: counters and duration histograms kept in memory, rendered as Prometheus text. */
#ifndef AR_CORE_METRICS_H
#define AR_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct ar_metrics;

/* Upper bounds (seconds) of the run duration histogram's buckets; +Inf is implied. */
#define AR_METRICS_BUCKETS {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}

/* Values sampled at render time rather than counted. */
struct ar_metrics_gauges {
    int64_t queue_depth;   /* runs waiting to start (retries waiting for their backoff too) */
    int64_t runs_active;   /* runs executing now */
    int64_t webhooks;      /* webhook routes */
    int64_t cron_triggers; /* cron schedules */
    uint64_t http_connections_open;
    uint64_t http_requests;        /* requests handed to the service */
    uint64_t http_server_errors;   /* answered by the HTTP layer itself: 400, 413, 431, ... */
    uint64_t http_timeouts;        /* connections closed for slowness */
    int64_t started_at_ms;         /* process start, for autorun_start_time_seconds */
};

struct ar_metrics *ar_metrics_create(void);
void ar_metrics_destroy(struct ar_metrics *m);

/* A run ended ("succeeded", "failed", "interrupted", "cancelled") after duration_s seconds, or
 * an event was recorded without running ("skipped", duration_s < 0: not observed). */
void ar_metrics_run(struct ar_metrics *m, const char *recipe, const char *status,
                    double duration_s);
/* The service answered a webhook, /healthz or /metrics request with this status. */
void ar_metrics_response(struct ar_metrics *m, int code);

/* The total of autorun_runs_total for one recipe and status (0 when never counted). */
uint64_t ar_metrics_runs(const struct ar_metrics *m, const char *recipe, const char *status);

/* Appends the Prometheus text exposition (version 0.0.4) of every metric to out. */
void ar_metrics_render(const struct ar_metrics *m, const struct ar_metrics_gauges *g,
                       struct ar_buf *out);

#endif
