/* libcurl's multi interface driven by a libuv loop: uv_poll per socket, one uv_timer. */
#include "net/curl_uv.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/* One transfer: an easy handle lent to us until it is done or cancelled. */
struct xfer {
    struct xfer *prev;
    struct xfer *next;
    CURL *easy;          /* borrowed from the caller */
    ar_curl_done_cb cb;
    void *data;          /* borrowed, passed to cb */
    char *user_private;  /* the caller's CURLOPT_PRIVATE, put back when the transfer leaves */
    CURLcode failed;     /* nonzero when one of its sockets could not be watched */
};

/* One socket curl asked us to watch. Its memory holds a uv_poll_t, so it is freed only in
 * sock_close_cb, never when curl says CURL_POLL_REMOVE. */
struct sock {
    uv_poll_t poll;
    struct sock *prev;   /* in cu->socks while not closing */
    struct sock *next;
    struct ar_curl_uv *cu; /* borrowed */
    curl_socket_t fd;
    int events;          /* UV_READABLE / UV_WRITABLE last asked for */
    int closing;
};

struct ar_curl_uv {
    uv_loop_t *loop;     /* borrowed */
    CURLM *multi;        /* owned; NULL once destroy has begun */
    uv_timer_t timer;    /* the one timer curl's CURLMOPT_TIMERFUNCTION drives */
    struct xfer *xfers;  /* owned */
    struct sock *socks;  /* live watchers; closing ones are owned by their close cb */
    size_t active;
    int closing;
    int in_timer_cb;
    int has_failed;      /* some xfer has failed set and waits for its cb */
};

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ar_curl_global_init(void)
{
    uv_once(&global_once, global_init_once);
    if (global_result == CURLE_OUT_OF_MEMORY) {
        return AR_ENOMEM;
    }
    return global_result == CURLE_OK ? 0 : AR_EIO;
}

/* The transfer of an easy handle curl reports. Every easy handle we add carries its xfer in
 * CURLOPT_PRIVATE; curl's own internal handles (the connection cache's closure handle) carry
 * NULL, and the multi handle holds no other easy handles. */
static struct xfer *xfer_of(CURL *easy)
{
    char *priv = NULL;

    if (easy == NULL || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK) {
        return NULL;
    }
    return (struct xfer *)(void *)priv;
}

static void xfer_unlink(struct ar_curl_uv *cu, struct xfer *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        cu->xfers = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
    cu->active--;
}

/* Takes the easy out of the multi handle and gives it back to its owner. */
static int xfer_detach(struct ar_curl_uv *cu, struct xfer *x)
{
    CURLMcode mc = curl_multi_remove_handle(cu->multi, x->easy);

    if (mc != CURLM_OK) {
        /* CURLM_RECURSIVE_API_CALL: called from inside a libcurl callback. */
        return AR_EINVAL;
    }
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x->user_private);
    xfer_unlink(cu, x);
    free(x);
    return 0;
}

/* Ends a transfer and calls its cb last, because the cb may add, cancel or destroy. */
static void xfer_finish(struct ar_curl_uv *cu, struct xfer *x, CURLcode result)
{
    CURL *easy = x->easy;
    ar_curl_done_cb cb = x->cb;
    void *data = x->data;

    if (xfer_detach(cu, x) == 0) {
        cb(easy, result, data);
    }
}

/* Reports finished transfers. It runs from our poll and timer callbacks after
 * curl_multi_socket_action() has returned, never from inside curl, so a done cb may call back
 * into this module. Each message is copied before its cb runs: curl frees it on remove. */
static void check_multi_info(struct ar_curl_uv *cu)
{
    CURLcode result;

    while (cu->multi != NULL && cu->has_failed) {
        struct xfer *x = cu->xfers;

        while (x != NULL && x->failed == CURLE_OK) {
            x = x->next;
        }
        if (x == NULL) {
            cu->has_failed = 0;
            break;
        }
        result = x->failed;
        x->failed = CURLE_OK;
        xfer_finish(cu, x, result);
    }

    /* A done cb may destroy cu; its memory lives on until the timer's close cb, which the loop
     * runs later, so testing cu->multi here is safe. */
    while (cu->multi != NULL) {
        int pending = 0;
        CURLMsg *msg = curl_multi_info_read(cu->multi, &pending);
        struct xfer *x;

        if (msg == NULL) {
            break;
        }
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        x = xfer_of(msg->easy_handle);
        if (x != NULL) {
            xfer_finish(cu, x, msg->data.result);
        }
    }
}

static void sock_close_cb(uv_handle_t *handle)
{
    struct sock *s = container_of((uv_poll_t *)handle, struct sock, poll);

    free(s);
}

static void sock_close(struct sock *s)
{
    struct ar_curl_uv *cu = s->cu;

    if (s->closing) {
        return;
    }
    s->closing = 1;
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        cu->socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    /* uv_close() stops the watcher first, and curl calls CURL_POLL_REMOVE before it closes the
     * descriptor, so a new socket that reuses the number gets a watcher of its own. */
    uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

static void sock_poll_cb(uv_poll_t *handle, int status, int events)
{
    struct sock *s = container_of(handle, struct sock, poll);
    struct ar_curl_uv *cu = s->cu;
    int flags = 0;
    int running = 0;

    if (cu->multi == NULL) {
        return;
    }
    if (status < 0) {
        /* libuv stops the watcher on POLLERR; let curl read the socket error itself. */
        flags = CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    /* An error here means out of memory or a bad handle; the transfers' own timeouts end
     * them, so there is nothing better to do than carry on. */
    (void)curl_multi_socket_action(cu->multi, s->fd, flags, &running);

    /* curl only calls the socket callback on a change, so a watcher libuv stopped on error
     * and still wanted by curl is started again here (s is alive until its close cb). */
    if (status < 0 && !s->closing && s->events != 0 && cu->multi != NULL) {
        (void)uv_poll_start(&s->poll, s->events, sock_poll_cb);
    }
    check_multi_info(cu);
}

/* Marks the transfer whose socket we could not watch; check_multi_info() ends it with result
 * after curl returns. Returning -1 to curl instead would fail every transfer of the multi. */
static void fail_transfer(struct ar_curl_uv *cu, CURL *easy, CURLcode result)
{
    struct xfer *x = xfer_of(easy);

    if (x != NULL && x->failed == CURLE_OK) {
        x->failed = result;
        cu->has_failed = 1;
    }
}

static int multi_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ar_curl_uv *cu = userp;
    struct sock *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(s);
            curl_multi_assign(cu->multi, fd, NULL);
        }
        return 0;
    }
    if (cu->closing) {
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            fail_transfer(cu, easy, CURLE_OUT_OF_MEMORY);
            return 0;
        }
        if (uv_poll_init_socket(cu->loop, &s->poll, fd) != 0) {
            /* The handle was not initialised, so it needs no close. */
            free(s);
            fail_transfer(cu, easy, CURLE_COULDNT_CONNECT);
            return 0;
        }
        s->cu = cu;
        s->fd = fd;
        s->next = cu->socks;
        if (cu->socks != NULL) {
            cu->socks->prev = s;
        }
        cu->socks = s;
        curl_multi_assign(cu->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    s->events = events;
    if (uv_poll_start(&s->poll, events, sock_poll_cb) != 0) {
        curl_multi_assign(cu->multi, fd, NULL);
        sock_close(s);
        fail_transfer(cu, easy, CURLE_COULDNT_CONNECT);
    }
    return 0;
}

static void timer_fire_cb(uv_timer_t *timer)
{
    struct ar_curl_uv *cu = container_of(timer, struct ar_curl_uv, timer);
    int running = 0;

    if (cu->multi == NULL) {
        return;
    }
    cu->in_timer_cb = 1;
    (void)curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(cu);
    cu->in_timer_cb = 0;
}

static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct ar_curl_uv *cu = userp;

    (void)multi;
    if (timeout_ms < 0 || cu->closing) {
        uv_timer_stop(&cu->timer);
        return 0;
    }
    /* Timeout 0 means "soon", not "now": calling curl_multi_socket_action() from inside this
     * callback is recursion curl forbids, so the loop fires the timer on its next turn. From
     * inside timer_fire_cb a 0 would fire again in the same pass of libuv's timer phase (libuv
     * before 1.45) and could starve I/O, so there it becomes 1 ms, as in multi-uv.c. */
    if (timeout_ms == 0 && cu->in_timer_cb) {
        timeout_ms = 1;
    }
    uv_timer_start(&cu->timer, timer_fire_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

int ar_curl_uv_create(uv_loop_t *loop, struct ar_curl_uv **out)
{
    struct ar_curl_uv *cu;
    int err;

    if (loop == NULL || out == NULL) {
        return AR_EINVAL;
    }
    err = ar_curl_global_init();
    if (err != 0) {
        return err;
    }
    cu = calloc(1, sizeof(*cu));
    if (cu == NULL) {
        return AR_ENOMEM;
    }
    cu->loop = loop;
    cu->multi = curl_multi_init();
    if (cu->multi == NULL) {
        free(cu);
        return AR_ENOMEM;
    }
    err = uv_timer_init(loop, &cu->timer);
    if (err != 0) {
        /* The timer was not initialised, so cu may be freed right here. */
        curl_multi_cleanup(cu->multi);
        free(cu);
        return err;
    }
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, multi_socket_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    *out = cu;
    return 0;
}

int ar_curl_uv_set_max_host_connections(struct ar_curl_uv *cu, long max)
{
    if (cu == NULL || cu->multi == NULL || max < 0) {
        return AR_EINVAL;
    }
    if (curl_multi_setopt(cu->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max) != CURLM_OK) {
        return AR_EINVAL;
    }
    return 0;
}

int ar_curl_uv_add(struct ar_curl_uv *cu, CURL *easy, ar_curl_done_cb cb, void *data)
{
    struct xfer *x;
    CURLMcode mc;

    if (cu == NULL || easy == NULL || cb == NULL || cu->closing) {
        return AR_EINVAL;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return AR_ENOMEM;
    }
    x->easy = easy;
    x->cb = cb;
    x->data = data;
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &x->user_private) != CURLE_OK) {
        free(x);
        return AR_EINVAL;
    }
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    /* This arms the timer with timeout 0; the transfer starts on the loop's next turn. */
    mc = curl_multi_add_handle(cu->multi, easy);
    if (mc != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, x->user_private);
        free(x);
        return mc == CURLM_OUT_OF_MEMORY ? AR_ENOMEM : AR_EINVAL;
    }
    x->next = cu->xfers;
    if (cu->xfers != NULL) {
        cu->xfers->prev = x;
    }
    cu->xfers = x;
    cu->active++;
    return 0;
}

int ar_curl_uv_cancel(struct ar_curl_uv *cu, CURL *easy)
{
    struct xfer *x;

    if (cu == NULL || easy == NULL || cu->multi == NULL) {
        return AR_EINVAL;
    }
    /* A linear search, not CURLOPT_PRIVATE: an easy that is not ours holds the caller's own
     * pointer there. Cancelling is rare next to adding and finishing. */
    for (x = cu->xfers; x != NULL; x = x->next) {
        if (x->easy == easy) {
            /* curl also drops a DONE message still queued for this easy, so a cancel from
             * inside another transfer's done cb never leads to a cb for this one. */
            return xfer_detach(cu, x);
        }
    }
    return AR_ENOENT;
}

static void timer_close_cb(uv_handle_t *handle)
{
    struct ar_curl_uv *cu = container_of((uv_timer_t *)handle, struct ar_curl_uv, timer);

    free(cu);
}

void ar_curl_uv_destroy(struct ar_curl_uv *cu)
{
    if (cu == NULL || cu->closing) {
        return;
    }
    cu->closing = 1;
    while (cu->xfers != NULL) {
        struct xfer *x = cu->xfers;

        if (xfer_detach(cu, x) != 0) {
            /* Only possible when called from inside a libcurl callback, which the header
             * forbids; forget the transfer rather than loop forever. */
            xfer_unlink(cu, x);
            free(x);
        }
    }
    /* This closes the cached connections and may call multi_socket_cb with CURL_POLL_REMOVE. */
    curl_multi_cleanup(cu->multi);
    cu->multi = NULL;
    /* Watchers curl did not remove would keep the loop alive; close them too. */
    while (cu->socks != NULL) {
        sock_close(cu->socks);
    }
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, timer_close_cb);
}

size_t ar_curl_uv_active(const struct ar_curl_uv *cu)
{
    return cu == NULL ? 0 : cu->active;
}
