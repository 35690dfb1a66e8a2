/* `autorun serve`: the webhook listener, the cron scheduler and the run queue in one process,
 * with /healthz, /metrics, graceful shutdown and reloads. See docs/service.md. */
#ifndef AR_CORE_SERVICE_H
#define AR_CORE_SERVICE_H

#include <stdint.h>

struct ar_engine;

#define AR_SERVICE_GRACE_MS 30000

struct ar_service_opts {
    const char *listen; /* "ADDR:PORT", or NULL for the listen setting */
    int64_t grace_ms;   /* how long SIGTERM waits for running runs; 0 = AR_SERVICE_GRACE_MS */
};

/* Serves until SIGTERM or SIGINT, on the engine's loop. Returns the process exit status: 0 after
 * a clean stop, 2 when the service cannot start (address in use, another service on the same
 * state directory, ...), with the reason on stderr. */
int ar_service_run(struct ar_engine *e, const struct ar_service_opts *opts);

#endif
