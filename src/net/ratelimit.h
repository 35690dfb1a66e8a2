/* Per-host admission of HTTP requests: a concurrency cap, a rate limit and a FIFO of waiters.
 * Pure logic without I/O: the caller passes the (monotonic) time and drives its own timer. */
#ifndef AR_NET_RATELIMIT_H
#define AR_NET_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* The largest rate accepted: the limiter keeps one time stamp per token. */
#define AR_RATELIMIT_MAX 100000

/* A token bucket of `rate` tokens for windows of `per_ms`. A request takes a token when it is
 * admitted and holds it while it runs; the token comes back `per_ms` after the request ended.
 * So no window of `per_ms` on the server's clock sees more than `rate` requests, however the
 * network delays them: the server received a request before it answered, and the next user of
 * the token starts `per_ms` after that answer. (A bucket that refills continuously lets up to
 * twice `rate` through in one window, which is what trips limits like Trello's.) */
struct ar_ratelimit {
    int64_t *ended; /* owned; ring of the end times of finished requests, oldest first */
    uint32_t rate;  /* 0 = no limit */
    uint32_t head;
    uint32_t n_ended;
    uint32_t held;  /* tokens taken by requests that have not ended */
    int64_t per_ms;
};

/* rate 0 means no limit; otherwise 1..AR_RATELIMIT_MAX and per_ms >= 1, else AR_EINVAL. */
int ar_ratelimit_init(struct ar_ratelimit *rl, uint32_t rate, int64_t per_ms);
void ar_ratelimit_free(struct ar_ratelimit *rl);
/* Milliseconds until a token is free: 0 now, -1 when every token is held by a running
 * request (one comes back only after a request ends). */
int64_t ar_ratelimit_wait(const struct ar_ratelimit *rl, int64_t now_ms);
/* Takes a token; only after ar_ratelimit_wait() returned 0 at the same time. */
void ar_ratelimit_take(struct ar_ratelimit *rl, int64_t now_ms);
/* A request that held a token ended at now_ms; its token is free again at now_ms + per_ms. */
void ar_ratelimit_put(struct ar_ratelimit *rl, int64_t now_ms);

/* A request waiting in a gate's queue; embed it and recover the owner with container_of. */
struct ar_gate_waiter {
    struct ar_gate_waiter *next;
    struct ar_gate_waiter *prev;
};

struct ar_gate {
    struct ar_ratelimit rl;
    uint32_t concurrency;       /* 0 = no limit */
    uint32_t active;            /* admitted and not yet left */
    int64_t paused_until;       /* e.g. a 429's Retry-After: nobody is admitted before */
    struct ar_gate_waiter queue; /* list head, oldest first */
    size_t queued;
};

int ar_gate_init(struct ar_gate *g, uint32_t concurrency, uint32_t rate, int64_t per_ms);
void ar_gate_free(struct ar_gate *g);
/* Changes the limits. Admitted requests keep running and keep their tokens; when the rate
 * shrinks, the most recent end times are kept. */
int ar_gate_set(struct ar_gate *g, uint32_t concurrency, uint32_t rate, int64_t per_ms);
/* Admits w now (returns 1; it counts as active) when no one waits before it and the limits
 * allow; otherwise queues it at the back (returns 0) for ar_gate_next() to admit later. */
int ar_gate_enter(struct ar_gate *g, struct ar_gate_waiter *w, int64_t now_ms);
/* Admits and returns the oldest waiter if the limits allow it now; otherwise returns NULL
 * and sets *wait_ms to the milliseconds until one could be admitted, or -1 when nothing
 * but a request leaving can change that (or when no one waits). */
struct ar_gate_waiter *ar_gate_next(struct ar_gate *g, int64_t now_ms, int64_t *wait_ms);
/* An admitted request ended (or was cancelled after it started) at now_ms. */
void ar_gate_leave(struct ar_gate *g, int64_t now_ms);
/* Takes a waiter out of the queue before it was admitted; no-op if it is not queued. */
void ar_gate_remove(struct ar_gate *g, struct ar_gate_waiter *w);
/* Admits no one before until_ms (keeps the later of two pauses). */
void ar_gate_pause(struct ar_gate *g, int64_t until_ms);
/* True while w sits in a queue. */
int ar_gate_queued(const struct ar_gate_waiter *w);

#endif
