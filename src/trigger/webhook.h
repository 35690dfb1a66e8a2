/* Webhook triggers: routes from the recipes' {webhook: PATH} triggers, delivery verification and
 * de-duplication, events queued durably before any answer, and answers grouped per commit. */
#ifndef AR_TRIGGER_WEBHOOK_H
#define AR_TRIGGER_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "net/http_server.h"

struct ar_engine;
struct ar_queue;
struct ar_metrics;
struct ar_webhooks;

/* How long a delivery id is remembered (a sender's retries come within hours; GitHub and Stripe
 * retry for up to three days). */
#define AR_WEBHOOK_DEDUP_TTL_MS (7 * 24 * 3600 * 1000LL)
/* How long respond: 'result' waits for the run unless the trigger sets `timeout`. */
#define AR_WEBHOOK_RESULT_TIMEOUT_MS 30000

/* All three are borrowed and must outlive the webhooks. */
int ar_webhooks_create(struct ar_engine *e, struct ar_queue *q, struct ar_metrics *metrics,
                       struct ar_webhooks **out);
/* Answers every request still waiting (503) and frees everything; call it before the HTTP
 * server is closed or after, but before the queue is. */
void ar_webhooks_destroy(struct ar_webhooks *w);

/* (Re)builds the routes from the engine's loaded recipes. A problem (two recipes on one path,
 * a verify block that cannot work) is logged; a route whose verification cannot work answers
 * 500 rather than run unverified. Returns the number of routes. */
size_t ar_webhooks_load(struct ar_webhooks *w);

/* Handles a request for a path that is not one of the service's own (/healthz, /metrics):
 * 404 for an unknown path, 200 for HEAD on a hook path, 401, 400 ... or an event queued and an
 * answer that waits for ar_webhooks_flush(). */
void ar_webhooks_handle(struct ar_webhooks *w, struct ar_http_req *req);
/* The connection of a request handed to ar_webhooks_handle() went away. */
void ar_webhooks_abort(struct ar_webhooks *w, struct ar_http_req *req);

/* Commits the events queued since the last call (ar_queue_commit) and answers their requests:
 * 202 {"runId": N} (or 200 for a duplicate delivery) once the commit succeeded, 503 when it
 * failed; respond: 'result' requests start waiting for their runs. */
void ar_webhooks_flush(struct ar_webhooks *w);

/* While stopping, new requests are answered 503 with Connection: close, and the requests that
 * wait for a result are answered 503 (their runs go on). */
void ar_webhooks_stop(struct ar_webhooks *w);

/* Requests waiting for a commit or for a run's result. */
size_t ar_webhooks_waiting(const struct ar_webhooks *w);

/* Builds the event JSON of a request: {method, path, query, headers, body, json}. json_ok says
 * whether body is JSON (then embedded as `json`, else json is null). Pure; exposed for tests. */
char *ar_webhook_event_json(const struct ar_http_req *req, int json_ok);

/* 0 when text is one JSON value (RFC 8259, UTF-8, nested at most 512 deep); else AR_EINVAL
 * with the reason in why. Pure; exposed for tests. */
int ar_webhook_json_check(const char *text, size_t len, char *why, size_t why_len);

#endif
