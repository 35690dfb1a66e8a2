/* Tests for net/curl_uv: real HTTP over 127.0.0.1 against a tiny server in the same loop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "net/curl_uv.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/* ---- A tiny HTTP/1.1 server on the test's loop ------------------------------------------ */

/* It answers "GET /path" with 200 and the path as the body, keeps connections alive, and
 * answers "/delay/<ms>/..." only after that many milliseconds. It counts what it sees, which
 * is how the tests observe connection reuse and closed connections. */
struct srv;

struct sconn {
    struct sconn *prev;
    struct sconn *next;
    struct srv *srv;
    uv_tcp_t tcp;
    uv_timer_t delay;
    int open_handles; /* tcp and delay; the struct is freed when both have closed */
    int closing;
    int waiting;      /* a delayed answer is pending */
    char path[256];
    size_t len;
    char buf[4096];
};

struct srv {
    uv_loop_t *loop;  /* borrowed */
    uv_tcp_t listener;
    int port;
    int accepted;     /* connections accepted */
    int requests;     /* requests read */
    int closed;       /* connections closed (by the peer, or by srv_close) */
    struct sconn *conns;
    void (*on_request)(struct srv *srv, const char *path);
    void *user;
};

struct reply {
    uv_write_t req;
    char data[512];
};

static void sconn_handle_close_cb(uv_handle_t *handle)
{
    struct sconn *c = handle->data;

    if (--c->open_handles == 0) {
        free(c);
    }
}

static void sconn_close(struct sconn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->srv->closed++;
    uv_close((uv_handle_t *)&c->tcp, sconn_handle_close_cb);
    uv_close((uv_handle_t *)&c->delay, sconn_handle_close_cb);
}

static void reply_write_cb(uv_write_t *req, int status)
{
    (void)status;
    free(container_of(req, struct reply, req));
}

static void sconn_respond(struct sconn *c)
{
    struct reply *r = malloc(sizeof(*r));
    uv_buf_t buf;
    int n;

    assert_non_null(r);
    n = snprintf(r->data, sizeof(r->data),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(c->path), c->path);
    buf = uv_buf_init(r->data, (unsigned)n);
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &buf, 1, reply_write_cb) != 0) {
        free(r);
        sconn_close(c);
    }
}

static void sconn_delay_cb(uv_timer_t *timer);

/* Answers every complete request in the buffer, one at a time. */
static void sconn_serve(struct sconn *c)
{
    while (!c->waiting && !c->closing) {
        size_t end = 0;
        size_t i;

        for (i = 0; i + 4 <= c->len; i++) {
            if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) {
                end = i + 4;
                break;
            }
        }
        if (end == 0) {
            return;
        }
        c->buf[end - 1] = '\0';
        if (sscanf(c->buf, "%*s %255s", c->path) != 1) {
            sconn_close(c);
            return;
        }
        memmove(c->buf, c->buf + end, c->len - end);
        c->len -= end;
        c->srv->requests++;
        if (c->srv->on_request != NULL) {
            c->srv->on_request(c->srv, c->path);
        }
        if (strncmp(c->path, "/delay/", 7) == 0) {
            c->waiting = 1;
            uv_timer_start(&c->delay, sconn_delay_cb, strtoull(c->path + 7, NULL, 10), 0);
        } else {
            sconn_respond(c);
        }
    }
}

static void sconn_delay_cb(uv_timer_t *timer)
{
    struct sconn *c = timer->data;

    c->waiting = 0;
    sconn_respond(c);
    sconn_serve(c);
}

static void sconn_alloc_cb(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
    struct sconn *c = handle->data;

    (void)hint;
    buf->base = c->buf + c->len;
    buf->len = sizeof(c->buf) - c->len;
}

static void sconn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct sconn *c = stream->data;

    (void)buf;
    if (nread < 0) {
        sconn_close(c);
        return;
    }
    c->len += (size_t)nread;
    sconn_serve(c);
}

static void srv_connection_cb(uv_stream_t *listener, int status)
{
    struct srv *s = container_of((uv_tcp_t *)listener, struct srv, listener);
    struct sconn *c;

    assert_int_equal(status, 0);
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->srv = s;
    assert_int_equal(uv_tcp_init(s->loop, &c->tcp), 0);
    assert_int_equal(uv_timer_init(s->loop, &c->delay), 0);
    c->tcp.data = c;
    c->delay.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        sconn_close(c);
        return;
    }
    s->accepted++;
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, sconn_alloc_cb, sconn_read_cb), 0);
}

static void srv_start(struct srv *s, uv_loop_t *loop)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 511, srv_connection_cb), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void srv_close(struct srv *s)
{
    uv_close((uv_handle_t *)&s->listener, NULL);
    while (s->conns != NULL) {
        sconn_close(s->conns);
    }
}

/* ---- Fixture and requests ---------------------------------------------------------------- */

struct fx {
    uv_loop_t loop;
    struct srv srv;
    struct ar_curl_uv *cu; /* NULL once a test destroyed it */
    int done;              /* done callbacks seen, over all requests */
    void *ctx;             /* the running test's own state */
};

struct req {
    struct fx *f;
    CURL *easy;
    int calls;
    CURLcode result;
    long status;
    size_t len;
    char body[256];
    char url[128];
};

static size_t req_write_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct req *r = userp;
    size_t n = size * nmemb;
    size_t room = sizeof(r->body) - 1 - r->len;

    memcpy(r->body + r->len, ptr, n < room ? n : room);
    r->len += n < room ? n : room;
    r->body[r->len] = '\0';
    return n;
}

/* Points r's easy (made on first use, reused afterwards) at path on the test server. */
static void req_prepare(struct fx *f, struct req *r, const char *path)
{
    r->f = f;
    r->len = 0;
    r->body[0] = '\0';
    if (r->easy == NULL) {
        r->easy = curl_easy_init();
        assert_non_null(r->easy);
    }
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d%s", f->srv.port, path);
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, req_write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
}

static void req_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct req *r = data;

    assert_ptr_equal(easy, r->easy);
    r->calls++;
    r->result = result;
    r->status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
    r->f->done++;
}

static void req_free(struct req *r)
{
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

/* Runs the loop until cond holds; fails if the loop runs out of work first. */
#define RUN_UNTIL(f, cond)                                                                     \
    do {                                                                                       \
        while (!(cond)) {                                                                      \
            if (uv_run(&(f)->loop, UV_RUN_ONCE) == 0 && !(cond)) {                             \
                fail_msg("loop ran out of work before: %s", #cond);                            \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_start(&f->srv, &f->loop);
    f->srv.user = f;
    assert_int_equal(ar_curl_uv_create(&f->loop, &f->cu), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Destroys what is left, closes the server and checks every handle got closed. */
static void finish(struct fx *f)
{
    ar_curl_uv_destroy(f->cu);
    f->cu = NULL;
    srv_close(&f->srv);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- Tests --------------------------------------------------------------------------------- */

static void test_global_init_idempotent(void **state)
{
    (void)state;
    assert_int_equal(ar_curl_global_init(), 0);
    assert_int_equal(ar_curl_global_init(), 0);
}

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    struct ar_curl_uv *cu = (struct ar_curl_uv *)&cu;
    struct req r = {0};

    assert_int_equal(ar_curl_uv_create(NULL, &cu), AR_EINVAL);
    assert_ptr_equal(cu, (struct ar_curl_uv *)&cu); /* untouched on failure */
    assert_int_equal(ar_curl_uv_set_max_host_connections(f->cu, -1), AR_EINVAL);
    req_prepare(f, &r, "/x");
    assert_int_equal(ar_curl_uv_add(f->cu, NULL, req_done_cb, &r), AR_EINVAL);
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, NULL, &r), AR_EINVAL);
    assert_int_equal(ar_curl_uv_cancel(f->cu, r.easy), AR_ENOENT);
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    /* Adding the same easy twice is refused and leaves the first transfer alone. */
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), AR_EINVAL);
    assert_int_equal(ar_curl_uv_active(f->cu), 1);
    RUN_UNTIL(f, r.calls == 1);
    assert_int_equal(r.result, CURLE_OK);
    assert_int_equal(ar_curl_uv_active(NULL), 0);
    ar_curl_uv_destroy(NULL);
    req_free(&r);
    finish(f);
}

static void test_one_get(void **state)
{
    struct fx *f = *state;
    struct req r = {0};
    char *priv = NULL;

    req_prepare(f, &r, "/hello");
    curl_easy_setopt(r.easy, CURLOPT_PRIVATE, (void *)&r);
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    assert_int_equal(ar_curl_uv_active(f->cu), 1);
    /* The callback never runs from inside add. */
    assert_int_equal(r.calls, 0);
    RUN_UNTIL(f, r.calls == 1);
    assert_int_equal(r.result, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "/hello");
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    assert_int_equal(f->srv.requests, 1);
    /* The caller's CURLOPT_PRIVATE is back. */
    assert_int_equal(curl_easy_getinfo(r.easy, CURLINFO_PRIVATE, &priv), CURLE_OK);
    assert_ptr_equal(priv, (char *)&r);
    req_free(&r);
    finish(f);
    assert_int_equal(r.calls, 1);
}

#define MANY 200

static void test_many_concurrent(void **state)
{
    struct fx *f = *state;
    struct req *rs = calloc(MANY, sizeof(*rs));
    int i;

    assert_non_null(rs);
    for (i = 0; i < MANY; i++) {
        char path[32];

        snprintf(path, sizeof(path), "/n/%d", i);
        req_prepare(f, &rs[i], path);
        assert_int_equal(ar_curl_uv_add(f->cu, rs[i].easy, req_done_cb, &rs[i]), 0);
    }
    assert_int_equal(ar_curl_uv_active(f->cu), MANY);
    RUN_UNTIL(f, f->done == MANY);
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    assert_int_equal(f->srv.requests, MANY);
    /* A few more turns of the loop must not call anything twice. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (i = 0; i < MANY; i++) {
        char path[32];

        snprintf(path, sizeof(path), "/n/%d", i);
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].result, CURLE_OK);
        assert_int_equal(rs[i].status, 200);
        assert_string_equal(rs[i].body, path);
        req_free(&rs[i]);
    }
    assert_int_equal(f->done, MANY);
    free(rs);
    finish(f);
}

static void test_closed_port(void **state)
{
    struct fx *f = *state;
    struct req r = {0};
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    /* A port that was just free and is closed again: nothing listens there. */
    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);

    req_prepare(f, &r, "/");
    snprintf(r.url, sizeof(r.url), "http://127.0.0.1:%d/", port);
    curl_easy_setopt(r.easy, CURLOPT_URL, r.url);
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    RUN_UNTIL(f, r.calls == 1);
    assert_int_equal(r.result, CURLE_COULDNT_CONNECT);
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    req_free(&r);
    finish(f);
    assert_int_equal(r.calls, 1);
}

/* Cancels the request as soon as the server has read it: it is in flight for sure. */
static struct req *cancel_target;

static void cancel_on_request(struct srv *s, const char *path)
{
    struct fx *f = s->user;

    (void)path;
    assert_int_equal(ar_curl_uv_cancel(f->cu, cancel_target->easy), 0);
    /* A second cancel finds nothing. */
    assert_int_equal(ar_curl_uv_cancel(f->cu, cancel_target->easy), AR_ENOENT);
}

static void test_cancel_in_flight(void **state)
{
    struct fx *f = *state;
    struct req r = {0};
    struct req early = {0};

    /* Cancel straight after add, before the loop ever ran. */
    req_prepare(f, &early, "/early");
    assert_int_equal(ar_curl_uv_add(f->cu, early.easy, req_done_cb, &early), 0);
    assert_int_equal(ar_curl_uv_cancel(f->cu, early.easy), 0);
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    req_free(&early);

    req_prepare(f, &r, "/delay/60000");
    cancel_target = &r;
    f->srv.on_request = cancel_on_request;
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    RUN_UNTIL(f, f->srv.requests == 1);
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    f->srv.on_request = NULL;
    /* curl drops the half-done connection, and the server sees it go. */
    RUN_UNTIL(f, f->srv.closed == 1);
    assert_int_equal(f->srv.requests, 1);

    /* The easy is the caller's again and works for a new transfer. */
    req_prepare(f, &r, "/again");
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    RUN_UNTIL(f, r.calls == 1);
    assert_int_equal(r.result, CURLE_OK);
    assert_string_equal(r.body, "/again");
    assert_int_equal(early.calls, 0);
    assert_int_equal(f->done, 1);
    req_free(&r);
    finish(f);
}

/* Each done cb reuses its easy for the next request of a chain, and adds a fresh easy too. */
struct chain {
    struct fx *f;
    struct req reused;
    struct req fresh[5];
    int next_fresh;
    int steps;
};

static void chain_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct chain *ch = data;
    char path[32];

    req_done_cb(easy, result, &ch->reused);
    assert_int_equal(result, CURLE_OK);
    snprintf(path, sizeof(path), "/chain/%d", ch->steps);
    assert_string_equal(ch->reused.body, path);
    ch->steps++;
    if (ch->steps == 5) {
        return;
    }
    snprintf(path, sizeof(path), "/chain/%d", ch->steps);
    req_prepare(ch->f, &ch->reused, path);
    assert_int_equal(ar_curl_uv_add(ch->f->cu, easy, chain_done_cb, ch), 0);

    snprintf(path, sizeof(path), "/fresh/%d", ch->next_fresh);
    req_prepare(ch->f, &ch->fresh[ch->next_fresh], path);
    assert_int_equal(ar_curl_uv_add(ch->f->cu, ch->fresh[ch->next_fresh].easy, req_done_cb,
                                    &ch->fresh[ch->next_fresh]),
                     0);
    ch->next_fresh++;
}

static void test_add_from_done(void **state)
{
    struct fx *f = *state;
    struct chain ch;
    int i;

    memset(&ch, 0, sizeof(ch));
    ch.f = f;
    req_prepare(f, &ch.reused, "/chain/0");
    assert_int_equal(ar_curl_uv_add(f->cu, ch.reused.easy, chain_done_cb, &ch), 0);
    RUN_UNTIL(f, ch.steps == 5 && f->done == 5 + 4);
    assert_int_equal(ch.reused.calls, 5);
    for (i = 0; i < 4; i++) {
        char path[32];

        snprintf(path, sizeof(path), "/fresh/%d", i);
        assert_int_equal(ch.fresh[i].calls, 1);
        assert_int_equal(ch.fresh[i].result, CURLE_OK);
        assert_string_equal(ch.fresh[i].body, path);
        req_free(&ch.fresh[i]);
    }
    assert_int_equal(f->srv.requests, 9);
    assert_int_equal(ar_curl_uv_active(f->cu), 0);
    req_free(&ch.reused);
    finish(f);
}

/* Sequential requests, each with a new easy added from the previous one's done cb. */
struct seq {
    struct fx *f;
    struct req reqs[10];
    int next;
};

static void seq_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct seq *sq = data;
    struct req *r = &sq->reqs[sq->next];
    char path[32];

    req_done_cb(easy, result, r);
    req_free(r);
    sq->next++;
    if (sq->next == 10) {
        return;
    }
    r = &sq->reqs[sq->next];
    snprintf(path, sizeof(path), "/seq/%d", sq->next);
    req_prepare(sq->f, r, path);
    assert_int_equal(ar_curl_uv_add(sq->f->cu, r->easy, seq_done_cb, sq), 0);
}

static void test_connection_reuse(void **state)
{
    struct fx *f = *state;
    struct seq sq;
    struct req rs[20];
    int i;

    /* One after another: every request goes over the one cached connection. */
    memset(&sq, 0, sizeof(sq));
    sq.f = f;
    req_prepare(f, &sq.reqs[0], "/seq/0");
    assert_int_equal(ar_curl_uv_add(f->cu, sq.reqs[0].easy, seq_done_cb, &sq), 0);
    RUN_UNTIL(f, sq.next == 10);
    for (i = 0; i < 10; i++) {
        assert_int_equal(sq.reqs[i].calls, 1);
        assert_int_equal(sq.reqs[i].result, CURLE_OK);
    }
    assert_int_equal(f->srv.requests, 10);
    assert_int_equal(f->srv.accepted, 1);

    /* Twenty at once with at most two connections to the host: they queue and share them. */
    assert_int_equal(ar_curl_uv_set_max_host_connections(f->cu, 2), 0);
    memset(rs, 0, sizeof(rs));
    for (i = 0; i < 20; i++) {
        req_prepare(f, &rs[i], "/pool");
        assert_int_equal(ar_curl_uv_add(f->cu, rs[i].easy, req_done_cb, &rs[i]), 0);
    }
    RUN_UNTIL(f, f->done == 30);
    for (i = 0; i < 20; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].result, CURLE_OK);
        assert_string_equal(rs[i].body, "/pool");
        req_free(&rs[i]);
    }
    assert_int_equal(f->srv.requests, 30);
    assert_true(f->srv.accepted <= 2);
    finish(f);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct req r = {0};
    struct req quick = {0};

    req_prepare(f, &r, "/delay/60000");
    curl_easy_setopt(r.easy, CURLOPT_TIMEOUT_MS, 100L);
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    RUN_UNTIL(f, r.calls == 1);
    assert_int_equal(r.result, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->srv.requests, 1);
    /* The timed-out connection is not reused: the server sees it closed. */
    RUN_UNTIL(f, f->srv.closed == 1);

    /* The multi handle carries on normally afterwards. */
    req_prepare(f, &quick, "/after");
    assert_int_equal(ar_curl_uv_add(f->cu, quick.easy, req_done_cb, &quick), 0);
    RUN_UNTIL(f, quick.calls == 1);
    assert_int_equal(quick.result, CURLE_OK);
    req_free(&r);
    req_free(&quick);
    finish(f);
    assert_int_equal(r.calls, 1);
}

/* Several transfers time out together; the first done cb cancels all the others, whose DONE
 * messages may already be queued in curl: none of their callbacks may run. */
#define GROUP 5

struct group {
    struct fx *f;
    struct req reqs[GROUP];
    int destroy;           /* destroy cu instead of cancelling the others */
    int cancelled;
};

static void group_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct req *r = data;
    struct group *g = r->f->ctx;
    int i;

    req_done_cb(easy, result, r);
    if (g->destroy) {
        ar_curl_uv_destroy(g->f->cu);
        g->f->cu = NULL;
        return;
    }
    for (i = 0; i < GROUP; i++) {
        if (&g->reqs[i] != r) {
            assert_int_equal(ar_curl_uv_cancel(g->f->cu, g->reqs[i].easy), 0);
            g->cancelled++;
        }
    }
    assert_int_equal(ar_curl_uv_active(g->f->cu), 0);
}

static void run_group(struct fx *f, int destroy)
{
    struct group g;
    int i;
    int calls = 0;

    memset(&g, 0, sizeof(g));
    g.f = f;
    g.destroy = destroy;
    f->ctx = &g;
    for (i = 0; i < GROUP; i++) {
        req_prepare(f, &g.reqs[i], "/delay/60000");
        curl_easy_setopt(g.reqs[i].easy, CURLOPT_TIMEOUT_MS, 100L);
        assert_int_equal(ar_curl_uv_add(f->cu, g.reqs[i].easy, group_done_cb, &g.reqs[i]), 0);
    }
    RUN_UNTIL(f, f->done == 1);
    /* More turns of the loop: no other callback may come. */
    for (i = 0; i < 5; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    for (i = 0; i < GROUP; i++) {
        calls += g.reqs[i].calls;
        if (g.reqs[i].calls == 1) {
            assert_int_equal(g.reqs[i].result, CURLE_OPERATION_TIMEDOUT);
        }
        req_free(&g.reqs[i]);
    }
    assert_int_equal(calls, 1);
    assert_int_equal(f->done, 1);
    if (!destroy) {
        assert_int_equal(g.cancelled, GROUP - 1);
    } else {
        assert_null(f->cu);
    }
    f->ctx = NULL;
    finish(f);
}

static void test_cancel_others_from_done(void **state)
{
    run_group(*state, 0);
}

static void test_destroy_from_done(void **state)
{
    run_group(*state, 1);
}

static void test_destroy_in_flight(void **state)
{
    struct fx *f = *state;
    struct req rs[10];
    int i;

    memset(rs, 0, sizeof(rs));
    for (i = 0; i < 10; i++) {
        req_prepare(f, &rs[i], "/delay/60000");
        assert_int_equal(ar_curl_uv_add(f->cu, rs[i].easy, req_done_cb, &rs[i]), 0);
    }
    RUN_UNTIL(f, f->srv.requests == 10);
    ar_curl_uv_destroy(f->cu);
    f->cu = NULL;
    /* Every easy is the caller's again. */
    for (i = 0; i < 10; i++) {
        req_free(&rs[i]);
    }
    /* Destroy closed the client sockets: the server sees every connection go. */
    RUN_UNTIL(f, f->srv.closed == 10);
    finish(f);
    for (i = 0; i < 10; i++) {
        assert_int_equal(rs[i].calls, 0);
    }
}

static void test_destroy_before_start(void **state)
{
    struct fx *f = *state;
    struct req rs[3];
    int i;

    memset(rs, 0, sizeof(rs));
    for (i = 0; i < 3; i++) {
        req_prepare(f, &rs[i], "/never");
        assert_int_equal(ar_curl_uv_add(f->cu, rs[i].easy, req_done_cb, &rs[i]), 0);
    }
    ar_curl_uv_destroy(f->cu);
    f->cu = NULL;
    for (i = 0; i < 3; i++) {
        req_free(&rs[i]);
    }
    finish(f);
    assert_int_equal(f->done, 0);
    assert_int_equal(f->srv.requests, 0);
}

/* An idle multi with cached connections does not keep the loop alive by itself. */
static void test_idle_does_not_hold_loop(void **state)
{
    struct fx *f = *state;
    struct req r = {0};

    req_prepare(f, &r, "/idle");
    assert_int_equal(ar_curl_uv_add(f->cu, r.easy, req_done_cb, &r), 0);
    RUN_UNTIL(f, r.calls == 1);
    /* Only the server's listener and its kept-alive connection remain active. */
    srv_close(&f->srv);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    ar_curl_uv_destroy(f->cu);
    f->cu = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_init_idempotent),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_others_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_does_not_hold_loop, setup, teardown),
    };

    /* The server writes to sockets curl may have closed already. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
