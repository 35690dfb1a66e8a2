/* Per-host admission of HTTP requests: concurrency cap, rate limit, FIFO (pure logic). */
#include "net/ratelimit.h"

#include <stdlib.h>

#include "core/error.h"

int ar_ratelimit_init(struct ar_ratelimit *rl, uint32_t rate, int64_t per_ms)
{
    if (rate > AR_RATELIMIT_MAX || (rate > 0 && per_ms < 1)) {
        return AR_EINVAL;
    }
    int64_t *ended = NULL;
    if (rate > 0) {
        ended = malloc(rate * sizeof(*ended));
        if (ended == NULL) {
            return AR_ENOMEM;
        }
    }
    rl->ended = ended;
    rl->rate = rate;
    rl->head = 0;
    rl->n_ended = 0;
    rl->held = 0;
    rl->per_ms = rate > 0 ? per_ms : 0;
    return 0;
}

void ar_ratelimit_free(struct ar_ratelimit *rl)
{
    free(rl->ended);
    rl->ended = NULL;
    rl->rate = 0;
    rl->n_ended = 0;
    rl->held = 0;
}

/* When the token of a request that ended at end_ms is back. The clock counts whole
 * milliseconds: an end read as T may have happened just before T+1, so the token comes back at
 * T + per + 1, when a whole window has surely passed (the server must not see rate + 1 requests
 * in one window, not even by a fraction of a millisecond). */
static int64_t token_back(const struct ar_ratelimit *rl, int64_t end_ms)
{
    return end_ms + rl->per_ms + 1;
}

/* Forgets end times whose tokens are back: they no longer limit anything. */
static void expire(struct ar_ratelimit *rl, int64_t now_ms)
{
    while (rl->n_ended > 0 && token_back(rl, rl->ended[rl->head]) <= now_ms) {
        rl->head = (rl->head + 1) % rl->rate;
        rl->n_ended--;
    }
}

int64_t ar_ratelimit_wait(const struct ar_ratelimit *rl, int64_t now_ms)
{
    if (rl->rate == 0) {
        return 0;
    }
    uint32_t out = rl->held;
    uint32_t i = rl->head;
    int64_t oldest_back = -1;
    /* Only the oldest end time matters once it is known to be still out. */
    for (uint32_t k = 0; k < rl->n_ended; k++) {
        int64_t back = token_back(rl, rl->ended[i]);
        if (back > now_ms) {
            out += rl->n_ended - k;
            oldest_back = back;
            break;
        }
        i = (i + 1) % rl->rate;
    }
    if (out < rl->rate) {
        return 0;
    }
    return oldest_back < 0 ? -1 : oldest_back - now_ms;
}

void ar_ratelimit_take(struct ar_ratelimit *rl, int64_t now_ms)
{
    if (rl->rate == 0) {
        return;
    }
    expire(rl, now_ms);
    rl->held++;
}

void ar_ratelimit_put(struct ar_ratelimit *rl, int64_t now_ms)
{
    if (rl->rate == 0 || rl->held == 0) {
        return;
    }
    rl->held--;
    expire(rl, now_ms);
    /* held + n_ended never exceeds rate, so there is room. End times arrive in time order
     * because the caller's clock is monotonic; guard anyway so the ring stays sorted. */
    uint32_t tail = (rl->head + rl->n_ended) % rl->rate;
    if (rl->n_ended > 0) {
        int64_t last = rl->ended[(tail + rl->rate - 1) % rl->rate];
        if (now_ms < last) {
            now_ms = last;
        }
    }
    rl->ended[tail] = now_ms;
    rl->n_ended++;
}

int ar_gate_init(struct ar_gate *g, uint32_t concurrency, uint32_t rate, int64_t per_ms)
{
    int rc = ar_ratelimit_init(&g->rl, rate, per_ms);
    if (rc != 0) {
        return rc;
    }
    g->concurrency = concurrency;
    g->active = 0;
    g->paused_until = 0;
    g->queue.next = g->queue.prev = &g->queue;
    g->queued = 0;
    return 0;
}

void ar_gate_free(struct ar_gate *g)
{
    ar_ratelimit_free(&g->rl);
}

int ar_gate_set(struct ar_gate *g, uint32_t concurrency, uint32_t rate, int64_t per_ms)
{
    struct ar_ratelimit next;
    int rc = ar_ratelimit_init(&next, rate, per_ms);
    if (rc != 0) {
        return rc;
    }
    if (rate > 0) {
        /* Running requests keep their tokens (even past the new rate: they are real). */
        next.held = g->rl.held < rate ? g->rl.held : rate;
        uint32_t keep = g->rl.n_ended;
        if (keep > rate - next.held) {
            keep = rate - next.held;
        }
        for (uint32_t k = g->rl.n_ended - keep; k < g->rl.n_ended; k++) {
            next.ended[next.n_ended++] = g->rl.ended[(g->rl.head + k) % g->rl.rate];
        }
    }
    ar_ratelimit_free(&g->rl);
    g->rl = next;
    g->concurrency = concurrency;
    return 0;
}

/* Milliseconds until one more request may be admitted: 0 now, -1 after someone leaves. */
static int64_t admit_wait(const struct ar_gate *g, int64_t now_ms)
{
    if (g->concurrency > 0 && g->active >= g->concurrency) {
        return -1;
    }
    if (g->paused_until > now_ms) {
        return g->paused_until - now_ms;
    }
    return ar_ratelimit_wait(&g->rl, now_ms);
}

static void admit(struct ar_gate *g, int64_t now_ms)
{
    ar_ratelimit_take(&g->rl, now_ms);
    g->active++;
}

int ar_gate_enter(struct ar_gate *g, struct ar_gate_waiter *w, int64_t now_ms)
{
    if (g->queued == 0 && admit_wait(g, now_ms) == 0) {
        admit(g, now_ms);
        w->next = w->prev = NULL;
        return 1;
    }
    w->next = &g->queue;
    w->prev = g->queue.prev;
    g->queue.prev->next = w;
    g->queue.prev = w;
    g->queued++;
    return 0;
}

struct ar_gate_waiter *ar_gate_next(struct ar_gate *g, int64_t now_ms, int64_t *wait_ms)
{
    if (g->queued == 0) {
        *wait_ms = -1;
        return NULL;
    }
    int64_t wait = admit_wait(g, now_ms);
    if (wait != 0) {
        *wait_ms = wait;
        return NULL;
    }
    struct ar_gate_waiter *w = g->queue.next;
    ar_gate_remove(g, w);
    admit(g, now_ms);
    return w;
}

void ar_gate_leave(struct ar_gate *g, int64_t now_ms)
{
    if (g->active > 0) {
        g->active--;
    }
    ar_ratelimit_put(&g->rl, now_ms);
}

void ar_gate_remove(struct ar_gate *g, struct ar_gate_waiter *w)
{
    if (w->next == NULL) {
        return;
    }
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    g->queued--;
}

void ar_gate_pause(struct ar_gate *g, int64_t until_ms)
{
    if (until_ms > g->paused_until) {
        g->paused_until = until_ms;
    }
}

int ar_gate_queued(const struct ar_gate_waiter *w)
{
    return w->next != NULL;
}
