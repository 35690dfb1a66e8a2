/* Tests for net/http_server: a loop thread runs the server, the test talks to it over sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "net/http_server.h"

/* The one time bound of these tests: a generous ceiling, never a pass/fail threshold. */
#define WAIT_S 5
#define MAX_HELD 64

/* ---- The server side: a loop thread and an application driven by the request path ------- */

/* The application answers by path:
 *   /hold...     keeps the request; the test answers it later through a loop command
 *   /swap-a      kept; /swap-b then answers itself and /swap-a, in that order
 *   /async...    kept and answered from a timer a few milliseconds later, newest first
 *   /close       answered with "Connection: close"
 *   /204         answered 204 with a body the server must drop
 *   /invalid     first answered with bad arguments (kept), then properly
 *   anything else: 200 with a description of the request (see echo()). */
struct fx {
    uv_loop_t loop;
    uv_async_t cmd;
    uv_timer_t async_timer;
    pthread_t thread;
    sem_t cmd_done;
    sem_t ev; /* posted for every held request and every abort */
    void (*cmd_fn)(struct fx *f);
    struct ar_http_server *srv;
    int port;
    int closed; /* close_cb ran */
    struct ar_http_stats stats;
    struct ar_http_req *held[MAX_HELD];
    size_t n_held;
    size_t max_held;
    struct ar_http_req *async[MAX_HELD];
    size_t n_async;
    size_t max_async;
    int rcs[MAX_HELD]; /* return codes of late answers */
    size_t n_rcs;
    int invalid_rcs[3];
    int n_aborts;
    int abort_saw_flag;
    int answer_in_abort;
    int abort_rc;
};

static int answer(struct ar_http_req *req, const char *tag)
{
    static const struct ar_header h[] = {{"Content-Type", "text/plain"}};
    char body[128];
    int n = snprintf(body, sizeof(body), "%s %s", req->path, tag);
    return ar_http_respond(req, 200, h, 1, body, (size_t)n);
}

/* 200 with "METHOD path ?query vMAJ.MIN ka=K x=X-Custom rem=ADDR n=N_HEADERS len=LEN\n" and
 * then the body. */
static void echo(struct ar_http_req *req)
{
    static const struct ar_header h[] = {{"Content-Type", "text/plain"}, {"X-Echo", "1"}};
    const char *x = ar_http_req_header(req, "x-custom");
    size_t cap = req->body_len + 1024;
    char *out = malloc(cap);
    int n;

    if (out == NULL) {
        abort(); /* the loop thread must not use cmocka's asserts */
    }
    n = snprintf(out, cap, "%s %s ?%s v%d.%d ka=%d x=%s rem=%s n=%zu len=%zu\n", req->method,
                 req->path, req->query, req->http_major, req->http_minor, req->keep_alive,
                 x ? x : "-", req->remote_addr, req->n_headers, req->body_len);
    memcpy(out + n, req->body, req->body_len);
    ar_http_respond(req, 200, h, 2, out, (size_t)n + req->body_len);
    free(out);
}

static void async_timer_cb(uv_timer_t *t)
{
    struct fx *f = t->data;

    while (f->n_async > 0) {
        struct ar_http_req *req = f->async[--f->n_async];
        answer(req, "async");
    }
}

static void on_request(struct ar_http_req *req, void *arg)
{
    struct fx *f = arg;

    if (strncmp(req->path, "/hold", 5) == 0 || strcmp(req->path, "/swap-a") == 0) {
        f->held[f->n_held++] = req;
        if (f->n_held > f->max_held) {
            f->max_held = f->n_held;
        }
        sem_post(&f->ev);
    } else if (strcmp(req->path, "/swap-b") == 0) {
        answer(req, "b");
        while (f->n_held > 0) {
            answer(f->held[--f->n_held], "a");
        }
    } else if (strncmp(req->path, "/async", 6) == 0) {
        f->async[f->n_async++] = req;
        if (f->n_async > f->max_async) {
            f->max_async = f->n_async;
        }
        if (!uv_is_active((uv_handle_t *)&f->async_timer)) {
            uv_timer_start(&f->async_timer, async_timer_cb, 5, 0);
        }
    } else if (strcmp(req->path, "/close") == 0) {
        static const struct ar_header h[] = {{"Connection", "close"}};
        ar_http_respond(req, 200, h, 1, "bye", 3);
    } else if (strcmp(req->path, "/204") == 0) {
        ar_http_respond(req, 204, NULL, 0, "dropped", 7);
    } else if (strcmp(req->path, "/invalid") == 0) {
        static const struct ar_header crlf[] = {{"X-Bad", "a\r\nInjected: 1"}};
        static const struct ar_header name[] = {{"Bad Name", "v"}};
        f->invalid_rcs[0] = ar_http_respond(req, 99, NULL, 0, NULL, 0);
        f->invalid_rcs[1] = ar_http_respond(req, 200, crlf, 1, NULL, 0);
        f->invalid_rcs[2] = ar_http_respond(req, 200, name, 1, NULL, 0);
        answer(req, "valid");
    } else {
        echo(req);
    }
}

static void on_abort(struct ar_http_req *req, void *arg)
{
    struct fx *f = arg;
    size_t i;

    f->n_aborts++;
    f->abort_saw_flag = ar_http_req_aborted(req);
    if (f->answer_in_abort) {
        for (i = 0; i < f->n_held; i++) {
            if (f->held[i] == req) {
                f->held[i] = f->held[--f->n_held];
                break;
            }
        }
        f->abort_rc = answer(req, "late");
    }
    sem_post(&f->ev);
}

static void on_closed(struct ar_http_server *srv, void *arg)
{
    struct fx *f = arg;

    (void)srv;
    f->closed++;
}

static void cmd_cb(uv_async_t *a)
{
    struct fx *f = a->data;
    void (*fn)(struct fx *) = f->cmd_fn;

    f->cmd_fn = NULL;
    if (fn != NULL) {
        fn(f);
    }
    sem_post(&f->cmd_done);
}

/* Runs fn on the loop thread and waits for it. */
static void run_in_loop(struct fx *f, void (*fn)(struct fx *))
{
    f->cmd_fn = fn;
    assert_int_equal(uv_async_send(&f->cmd), 0);
    assert_int_equal(sem_wait(&f->cmd_done), 0);
}

static void cmd_stop(struct fx *f)
{
    ar_http_server_stats(f->srv, &f->stats);
    ar_http_server_close(f->srv, on_closed);
    uv_close((uv_handle_t *)&f->cmd, NULL);
    uv_close((uv_handle_t *)&f->async_timer, NULL);
}

static void cmd_stats(struct fx *f)
{
    ar_http_server_stats(f->srv, &f->stats);
}

/* Answers the held requests in the order 3, 1, 2, ... : the last one first, then the rest. */
static void cmd_answer_held_shuffled(struct fx *f)
{
    size_t i;

    if (f->n_held == 0) {
        return;
    }
    f->rcs[f->n_rcs++] = answer(f->held[f->n_held - 1], "late");
    for (i = 0; i + 1 < f->n_held; i++) {
        f->rcs[f->n_rcs++] = answer(f->held[i], "late");
    }
    f->n_held = 0;
}

static void *loop_main(void *arg)
{
    struct fx *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static struct fx *fx_start_at(const char *addr, const struct ar_http_settings *set, int *err)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ar_http_handler h = {.on_request = on_request, .on_abort = on_abort};

    assert_non_null(f);
    h.arg = f;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *err = ar_http_server_start(&f->loop, addr, set, &h, &f->srv);
    if (*err != 0) {
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        free(f);
        return NULL;
    }
    f->port = ar_http_server_port(f->srv);
    assert_int_equal(uv_async_init(&f->loop, &f->cmd, cmd_cb), 0);
    f->cmd.data = f;
    assert_int_equal(uv_timer_init(&f->loop, &f->async_timer), 0);
    f->async_timer.data = f;
    assert_int_equal(sem_init(&f->cmd_done, 0, 0), 0);
    assert_int_equal(sem_init(&f->ev, 0, 0), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
    return f;
}

static struct fx *fx_start(const struct ar_http_settings *set)
{
    int err;
    struct fx *f = fx_start_at("127.0.0.1:0", set, &err);

    assert_int_equal(err, 0);
    assert_true(f->port > 0);
    return f;
}

/* Closes the server, lets the loop end, and checks that nothing was left open. */
static void fx_stop(struct fx *f)
{
    size_t i;

    run_in_loop(f, cmd_stop);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    /* Requests the application still holds are released by answering them. */
    for (i = 0; i < f->n_held; i++) {
        assert_int_equal(answer(f->held[i], "after-close"), AR_ECANCELED);
    }
    f->n_held = 0;
    sem_destroy(&f->cmd_done);
    sem_destroy(&f->ev);
}

static void wait_event(struct fx *f)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_S;
    assert_int_equal(sem_timedwait(&f->ev, &ts), 0);
}

/* ---- The client side: blocking sockets ---------------------------------------------------- */

struct client {
    int fd;
    size_t len;
    char buf[1 << 18];
};

struct resp {
    int status;
    char head[16384];
    char *body; /* owned */
    size_t body_len;
    char value[1024];
};

static struct client *cl_open_family(int family, int port)
{
    struct client *cl = calloc(1, sizeof(*cl));
    struct timeval tv = {WAIT_S, 0};
    struct sockaddr_storage ss;
    socklen_t len;

    assert_non_null(cl);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    cl->fd = socket(family, SOCK_STREAM, 0);
    assert_true(cl->fd >= 0);
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&ss, len), 0);
    return cl;
}

static struct client *cl_open(struct fx *f)
{
    return cl_open_family(AF_INET, f->port);
}

static void cl_close(struct client *cl)
{
    if (cl != NULL) {
        close(cl->fd);
        free(cl);
    }
}

static void cl_send_n(struct client *cl, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(cl->fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cl_send(struct client *cl, const char *s)
{
    cl_send_n(cl, s, strlen(s));
}

/* Reads more bytes into the buffer: > 0 bytes read, 0 on EOF, -1 on error or timeout. */
static ssize_t cl_fill(struct client *cl)
{
    ssize_t n;

    assert_true(cl->len < sizeof(cl->buf));
    n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
    if (n > 0) {
        cl->len += (size_t)n;
    }
    return n;
}

static const char *find_crlfcrlf(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i + 4 <= len; i++) {
        if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
            return s + i;
        }
    }
    return NULL;
}

static const char *resp_header(struct resp *r, const char *name)
{
    size_t n = strlen(name);
    const char *line = strstr(r->head, "\r\n");

    while (line != NULL && line[2] != '\0') {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            const char *end = strstr(v, "\r\n");
            size_t vlen;
            while (*v == ' ') {
                v++;
            }
            vlen = end ? (size_t)(end - v) : strlen(v);
            if (vlen >= sizeof(r->value)) {
                vlen = sizeof(r->value) - 1;
            }
            memcpy(r->value, v, vlen);
            r->value[vlen] = '\0';
            return r->value;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

/* Reads one response; head_request: the answer has no body whatever Content-Length says.
 * Returns 0, or -1 when the connection ended or timed out first. */
static int cl_read(struct client *cl, struct resp *r, int head_request)
{
    const char *end;
    size_t head_len;
    size_t need;
    const char *clen;

    memset(r, 0, sizeof(*r));
    for (;;) {
        end = find_crlfcrlf(cl->buf, cl->len);
        if (end != NULL) {
            break;
        }
        if (cl_fill(cl) <= 0) {
            return -1;
        }
    }
    head_len = (size_t)(end - cl->buf) + 4;
    assert_true(head_len < sizeof(r->head));
    memcpy(r->head, cl->buf, head_len);
    r->head[head_len] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    clen = resp_header(r, "Content-Length");
    need = clen ? (size_t)strtoul(clen, NULL, 10) : 0;
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
        need = 0;
    }
    while (cl->len < head_len + need) {
        if (cl_fill(cl) <= 0) {
            return -1;
        }
    }
    r->body = malloc(need + 1);
    assert_non_null(r->body);
    memcpy(r->body, cl->buf + head_len, need);
    r->body[need] = '\0';
    r->body_len = need;
    memmove(cl->buf, cl->buf + head_len + need, cl->len - head_len - need);
    cl->len -= head_len + need;
    return 0;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* 1 when the server closed the connection (EOF or reset), 0 on timeout. Bytes that arrive
 * first are kept in the buffer. */
static int cl_wait_closed(struct client *cl)
{
    for (;;) {
        ssize_t n = cl_fill(cl);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 1;
        }
        if (n < 0) {
            return 0;
        }
    }
}

/* Sends one request and reads its answer on a new connection. */
static void one_shot(struct fx *f, const char *request, struct resp *r)
{
    struct client *cl = cl_open(f);

    cl_send(cl, request);
    assert_int_equal(cl_read(cl, r, 0), 0);
    cl_close(cl);
}

/* A request that the server refuses: status and a closed connection. */
static void expect_refused(struct fx *f, const char *request, size_t len, int status)
{
    struct client *cl = cl_open(f);
    struct resp r;

    cl_send_n(cl, request, len);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, status);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(cl_wait_closed(cl), 1);
    assert_int_equal(cl->len, 0);
    resp_free(&r);
    cl_close(cl);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_get_fields(void **state)
{
    struct fx *f = fx_start(NULL);
    struct resp r;

    (void)state;
    one_shot(f,
             "GET /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: example\r\nX-Custom: Val  \r\n"
             "Accept: */*\r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /a/b%20c ?x=1&y=2 v1.1 ka=1 x=Val rem=127.0.0.1:"));
    assert_non_null(strstr(r.body, " n=3 len=0\n"));
    assert_string_equal(resp_header(&r, "X-Echo"), "1");
    assert_non_null(resp_header(&r, "Date"));
    assert_null(resp_header(&r, "Connection"));
    assert_int_equal(atoi(resp_header(&r, "Content-Length")), (int)r.body_len);
    resp_free(&r);

    /* Absolute-form target, no query, and the only header is Host. */
    one_shot(f, "GET http://example/p HTTP/1.1\r\nHost: example\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /p ? v1.1 ka=1 x=- "));
    assert_non_null(strstr(r.body, " n=1 len=0\n"));
    resp_free(&r);
    fx_stop(f);
    free(f);
}

static void test_post_body(void **state)
{
    struct fx *f = fx_start(NULL);
    struct resp r;

    (void)state;
    one_shot(f, "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "POST /submit ? v1.1"));
    assert_non_null(strstr(r.body, "len=11\nhello world"));
    resp_free(&r);
    fx_stop(f);
    free(f);
}

static void test_split_across_reads(void **state)
{
    static const char req[] = "POST /split?q=1 HTTP/1.1\r\nHost: x\r\nX-Custom: pieces\r\n"
                              "Content-Length: 4\r\n\r\nbody";
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(req) - 1; i++) {
        cl_send_n(cl, req + i, 1);
        usleep(500);
    }
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "POST /split ?q=1 v1.1 ka=1 x=pieces "));
    assert_non_null(strstr(r.body, "len=4\nbody"));
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_keep_alive(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;
    char req[128];
    char want[64];
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        snprintf(req, sizeof(req), "GET /n%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        snprintf(want, sizeof(want), "GET /n%d ?", i);
        cl_send(cl, req);
        assert_int_equal(cl_read(cl, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, want));
        resp_free(&r);
    }
    run_in_loop(f, cmd_stats);
    assert_int_equal(f->stats.connections_accepted, 1);
    assert_int_equal(f->stats.connections_open, 1);
    assert_int_equal(f->stats.requests, 3);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_http10(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;

    (void)state;
    cl_send(cl, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /a ? v1.0 ka=1"));
    assert_string_equal(resp_header(&r, "Connection"), "keep-alive");
    resp_free(&r);

    cl_send(cl, "GET /b HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_non_null(strstr(r.body, "GET /b ? v1.0 ka=0"));
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(cl_wait_closed(cl), 1);
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_connection_close(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;

    (void)state;
    /* The client asks; bytes after its request are ignored. */
    cl_send(cl, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_non_null(strstr(r.body, "GET /c ? v1.1 ka=0"));
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(cl_wait_closed(cl), 1);
    assert_int_equal(cl->len, 0);
    resp_free(&r);
    cl_close(cl);

    /* Upgrades are not supported: the request is answered and the connection ends. */
    cl = cl_open(f);
    cl_send(cl, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                "\r\nbinary-frames");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_non_null(strstr(r.body, "GET /ws ? v1.1 ka=0"));
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(cl_wait_closed(cl), 1);
    assert_int_equal(cl->len, 0);
    resp_free(&r);
    cl_close(cl);

    /* The application asks. */
    cl = cl_open(f);
    cl_send(cl, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "bye");
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_int_equal(cl_wait_closed(cl), 1);
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_pipeline_swapped(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;

    (void)state;
    /* The application answers the second request before the first. */
    cl_send(cl, "GET /swap-a HTTP/1.1\r\nHost: x\r\n\r\nGET /swap-b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "/swap-a a");
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "/swap-b b");
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_pipeline_late_answers(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;
    int i;

    (void)state;
    /* Three requests and a malformed fourth: the application answers 3, 1, 2 from a later
     * loop iteration; the server's own 400 for the fourth must wait its turn too. */
    cl_send(cl, "GET /hold1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /hold2 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /hold3 HTTP/1.1\r\nHost: x\r\n\r\n"
                "BOGUS\r\n\r\n");
    for (i = 0; i < 3; i++) {
        wait_event(f);
    }
    assert_int_equal(f->n_held, 3);
    run_in_loop(f, cmd_answer_held_shuffled);
    for (i = 0; i < 3; i++) {
        assert_int_equal(f->rcs[i], 0);
    }
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "/hold1 late");
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "/hold2 late");
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_string_equal(r.body, "/hold3 late");
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 400);
    assert_int_equal(cl_wait_closed(cl), 1);
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_pipeline_backpressure(void **state)
{
    struct ar_http_settings set = {.max_pipeline = 2};
    struct fx *f = fx_start(&set);
    struct client *cl = cl_open(f);
    struct resp r;
    char all[1024] = "";
    char want[64];
    int i;

    (void)state;
    for (i = 0; i < 7; i++) {
        char one[64];
        snprintf(one, sizeof(one), "GET /async%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        strcat(all, one);
    }
    cl_send(cl, all);
    for (i = 0; i < 7; i++) {
        snprintf(want, sizeof(want), "/async%d async", i);
        assert_int_equal(cl_read(cl, &r, 0), 0);
        assert_string_equal(r.body, want);
        resp_free(&r);
    }
    cl_close(cl);
    fx_stop(f);
    /* Never more than max_pipeline requests were waiting for the application at once. */
    assert_true(f->max_async >= 1);
    assert_true(f->max_async <= 2);
    free(f);
}

static void test_chunked(void **state)
{
    struct fx *f = fx_start(NULL);
    struct resp r;

    (void)state;
    one_shot(f,
             "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
             &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, " n=2 len=11\nhello world"));
    resp_free(&r);
    fx_stop(f);
    free(f);
}

static void test_expect_continue(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;

    (void)state;
    cl_send(cl, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                "Expect: 100-continue\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 100);
    assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    resp_free(&r);
    cl_send(cl, "hello");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "len=5\nhello"));
    resp_free(&r);

    /* An expectation the server does not know. */
    cl_send(cl, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: magic\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 417);
    assert_int_equal(cl_wait_closed(cl), 1);
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_body_too_large(void **state)
{
    struct ar_http_settings set = {.max_body_bytes = 1024};
    struct fx *f = fx_start(&set);
    struct client *cl;
    struct resp r;
    char *big = malloc(4096);
    char head[256];
    size_t n;

    (void)state;
    assert_non_null(big);
    /* With 100-continue: 413 at once, and no 100 before it. The body is never sent. */
    n = (size_t)snprintf(head, sizeof(head),
                         "POST /up HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
    expect_refused(f, head, n, 413);

    /* Without: the body is on its way while the server answers. */
    n = (size_t)snprintf(head, sizeof(head),
                         "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
    memcpy(big, head, n);
    memset(big + n, 'a', 3000);
    expect_refused(f, big, n + 3000, 413);

    /* Chunked: under the limit chunk by chunk, over it in total. */
    n = (size_t)snprintf(big, 4096,
                         "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "258\r\n");
    memset(big + n, 'b', 600);
    n += 600;
    memcpy(big + n, "\r\n258\r\n", 7);
    n += 7;
    memset(big + n, 'c', 600);
    n += 600;
    memcpy(big + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    expect_refused(f, big, n, 413);

    /* Chunked: one chunk announced over the limit is refused from its size line. */
    cl = cl_open(f);
    cl_send(cl, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "100000\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 413);
    assert_int_equal(cl_wait_closed(cl), 1);
    resp_free(&r);
    cl_close(cl);

    /* Exactly at the limit is fine. */
    n = (size_t)snprintf(head, sizeof(head),
                         "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
    memcpy(big, head, n);
    memset(big + n, 'd', 1024);
    cl = cl_open(f);
    cl_send_n(cl, big, n + 1024);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "len=1024\n"));
    resp_free(&r);
    cl_close(cl);

    run_in_loop(f, cmd_stats);
    assert_int_equal(f->stats.errors, 4);
    free(big);
    fx_stop(f);
    free(f);
}

static void test_headers_too_large(void **state)
{
    struct fx *f = fx_start(NULL);
    size_t n = 0;
    char *req = malloc(40000);
    int i;

    (void)state;
    assert_non_null(req);
    /* 20 KiB of headers against the default 16 KiB. */
    n += (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 20; i++) {
        n += (size_t)sprintf(req + n, "X-Fill-%d: ", i);
        memset(req + n, 'v', 1000);
        n += 1000;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    memcpy(req + n, "\r\n", 2);
    n += 2;
    expect_refused(f, req, n, 431);

    /* More header lines than max_headers (100), each small. */
    n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 150; i++) {
        n += (size_t)sprintf(req + n, "X-%d: v\r\n", i);
    }
    n += (size_t)sprintf(req + n, "\r\n");
    expect_refused(f, req, n, 431);

    /* A request target over the limit. */
    n = (size_t)sprintf(req, "GET /");
    memset(req + n, 'u', 17000);
    n += 17000;
    n += (size_t)sprintf(req + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refused(f, req, n, 414);
    free(req);
    fx_stop(f);
    free(f);
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "BOGUS / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* HTTP/1.1 without Host */
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    struct fx *f = fx_start(NULL);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_refused(f, bad[i], strlen(bad[i]), 400);
    }
    expect_refused(f, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 27, 505);
    fx_stop(f);
    free(f);
}

static void test_head_and_204(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);
    struct resp r;
    size_t get_len;

    (void)state;
    cl_send(cl, "GET /h HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    get_len = r.body_len;
    resp_free(&r);

    /* HEAD: the Content-Length the GET would have, and no body: the next answer on the
     * connection starts right after the head. */
    cl_send(cl, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(atoi(resp_header(&r, "Content-Length")), (int)get_len + 1);
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /after ?"));
    resp_free(&r);

    /* 204: neither Content-Length nor body. */
    cl_send(cl, "GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 204);
    assert_null(resp_header(&r, "Content-Length"));
    resp_free(&r);
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_respond_invalid(void **state)
{
    struct fx *f = fx_start(NULL);
    struct resp r;

    (void)state;
    one_shot(f, "GET /invalid HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "/invalid valid");
    assert_null(resp_header(&r, "Injected"));
    resp_free(&r);
    fx_stop(f);
    assert_int_equal(f->invalid_rcs[0], AR_EINVAL);
    assert_int_equal(f->invalid_rcs[1], AR_EINVAL);
    assert_int_equal(f->invalid_rcs[2], AR_EINVAL);
    free(f);
}

static void test_timeouts(void **state)
{
    struct ar_http_settings set = {
        .header_timeout_ms = 200, .body_timeout_ms = 200, .idle_timeout_ms = 200};
    struct fx *f = fx_start(&set);
    struct client *silent = cl_open(f);
    struct client *partial = cl_open(f);
    struct client *trickle = cl_open(f);
    struct client *body = cl_open(f);
    struct client *idle = cl_open(f);
    struct resp r;
    int closed = 0;
    int i;

    (void)state;
    cl_send(partial, "GET / HTTP/1.1\r\nHost: x\r\n");
    cl_send(body, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    cl_send(idle, "GET /i HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(idle, &r, 0), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* A client that sends a header byte every 20 ms never completes its headers: the
     * deadline does not move with each byte. */
    cl_send(trickle, "GET / HTTP/1.1\r\nX-Slow: ");
    for (i = 0; i < WAIT_S * 50 && !closed; i++) {
        struct pollfd pfd = {.fd = trickle->fd, .events = POLLIN};
        if (send(trickle->fd, "a", 1, MSG_NOSIGNAL) != 1) {
            closed = 1;
        } else if (poll(&pfd, 1, 20) == 1) {
            closed = cl_fill(trickle) <= 0;
        }
    }
    assert_true(closed);
    assert_int_equal(trickle->len, 0);

    /* Closed without an answer. */
    assert_int_equal(cl_wait_closed(silent), 1);
    assert_int_equal(silent->len, 0);
    assert_int_equal(cl_wait_closed(partial), 1);
    assert_int_equal(partial->len, 0);
    assert_int_equal(cl_wait_closed(body), 1);
    assert_int_equal(body->len, 0);
    assert_int_equal(cl_wait_closed(idle), 1);
    assert_int_equal(idle->len, 0);
    cl_close(silent);
    cl_close(partial);
    cl_close(trickle);
    cl_close(body);
    cl_close(idle);
    /* A client sees the close before the loop has run the close callbacks. */
    for (i = 0; i < WAIT_S * 50; i++) {
        run_in_loop(f, cmd_stats);
        if (f->stats.connections_open == 0) {
            break;
        }
        usleep(20000);
    }
    assert_int_equal(f->stats.connections_open, 0);
    assert_int_equal(f->stats.timeouts, 5);
    fx_stop(f);
    free(f);
}

static void test_disconnect_before_answer(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *cl = cl_open(f);

    (void)state;
    cl_send(cl, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_event(f);
    cl_close(cl);
    wait_event(f); /* the abort */
    assert_int_equal(f->n_aborts, 1);
    assert_int_equal(f->abort_saw_flag, 1);
    /* The late answer is a harmless no-op that releases the request. */
    run_in_loop(f, cmd_answer_held_shuffled);
    assert_int_equal(f->n_rcs, 1);
    assert_int_equal(f->rcs[0], AR_ECANCELED);

    /* Answering from inside the abort callback. */
    f->answer_in_abort = 1;
    cl = cl_open(f);
    cl_send(cl, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_event(f);
    cl_close(cl);
    wait_event(f);
    assert_int_equal(f->n_aborts, 2);
    assert_int_equal(f->abort_rc, AR_ECANCELED);
    assert_int_equal(f->n_held, 0);
    fx_stop(f);
    assert_int_equal(f->stats.requests_aborted, 2);
    free(f);
}

static void test_connection_cap(void **state)
{
    struct ar_http_settings set = {.max_connections = 2};
    struct fx *f = fx_start(&set);
    struct client *a = cl_open(f);
    struct client *b = cl_open(f);
    struct client *c;
    struct resp r;
    int i;
    int ok = 0;

    (void)state;
    /* Both answered, so both are counted. */
    cl_send(a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(a, &r, 0), 0);
    resp_free(&r);
    cl_send(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(b, &r, 0), 0);
    resp_free(&r);

    c = cl_open(f);
    cl_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(c, &r, 0), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(resp_header(&r, "Connection"), "close");
    assert_non_null(resp_header(&r, "Retry-After"));
    assert_int_equal(cl_wait_closed(c), 1);
    resp_free(&r);
    cl_close(c);

    /* A slot frees up once the server has seen a client leave. */
    cl_close(a);
    for (i = 0; i < WAIT_S * 50 && !ok; i++) {
        c = cl_open(f);
        cl_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(cl_read(c, &r, 0), 0);
        ok = r.status == 200;
        resp_free(&r);
        cl_close(c);
        if (!ok) {
            usleep(20000);
        }
    }
    assert_true(ok);
    cl_close(b);
    fx_stop(f);
    assert_true(f->stats.connections_rejected >= 1);
    free(f);
}

static void test_close_with_open_connections(void **state)
{
    struct fx *f = fx_start(NULL);
    struct client *idle = cl_open(f);
    struct client *partial = cl_open(f);
    struct client *waiting = cl_open(f);
    struct client *writer = cl_open(f);
    struct resp r;

    (void)state;
    cl_send(partial, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    cl_send(waiting, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_event(f);
    cl_send(writer, "GET /w HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(writer, &r, 0), 0);
    resp_free(&r);
    run_in_loop(f, cmd_stats);
    assert_int_equal(f->stats.connections_open, 4);

    /* fx_stop() checks close_cb ran once and uv_loop_close() == 0, then answers the held
     * request after the server is gone: AR_ECANCELED, no use after free. */
    fx_stop(f);
    assert_int_equal(f->n_aborts, 1);
    assert_int_equal(cl_wait_closed(idle), 1);
    assert_int_equal(cl_wait_closed(partial), 1);
    assert_int_equal(cl_wait_closed(waiting), 1);
    assert_int_equal(cl_wait_closed(writer), 1);
    cl_close(idle);
    cl_close(partial);
    cl_close(waiting);
    cl_close(writer);
    free(f);
}

static void test_ipv6(void **state)
{
    int err;
    struct fx *f = fx_start_at("[::1]:0", NULL, &err);
    struct client *cl;
    struct resp r;

    (void)state;
    if (f == NULL) {
        assert_true(err == UV_EADDRNOTAVAIL || err == UV_EAFNOSUPPORT);
        skip();
    }
    assert_non_null(strstr(ar_http_server_address(f->srv), "[::1]:"));
    cl = cl_open_family(AF_INET6, f->port);
    cl_send(cl, "GET /six HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cl_read(cl, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "rem=[::1]:"));
    resp_free(&r);
    cl_close(cl);
    fx_stop(f);
    free(f);
}

static void test_bad_addresses(void **state)
{
    static const char *bad[] = {
        "nope", "127.0.0.1", "127.0.0.1:", ":8080",          "127.0.0.1:70000", "127.0.0.1:8o",
        "[::1", "[::1]8080", "::1:8080",   "example.com:80", "1.2.3:80",        "[nope]:80"};
    struct ar_http_handler h = {.on_request = on_request};
    struct ar_http_server *srv = NULL;
    uv_loop_t loop;
    size_t i;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ar_http_server_start(&loop, bad[i], NULL, &h, &srv), AR_EINVAL);
        assert_null(srv);
    }
    h.on_request = NULL;
    assert_int_equal(ar_http_server_start(&loop, "127.0.0.1:0", NULL, &h, &srv), AR_EINVAL);
    assert_null(srv);

    /* "localhost" is 127.0.0.1; a busy port is refused and leaves nothing open. */
    h.on_request = on_request;
    assert_int_equal(ar_http_server_start(&loop, "localhost:0", NULL, &h, &srv), 0);
    assert_non_null(strstr(ar_http_server_address(srv), "127.0.0.1:"));
    {
        char addr[64];
        struct ar_http_server *other = NULL;
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ar_http_server_port(srv));
        assert_int_equal(ar_http_server_start(&loop, addr, NULL, &h, &other), UV_EADDRINUSE);
        assert_null(other);
    }
    ar_http_server_close(srv, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_fields),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_split_across_reads),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_pipeline_swapped),
        cmocka_unit_test(test_pipeline_late_answers),
        cmocka_unit_test(test_pipeline_backpressure),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_and_204),
        cmocka_unit_test(test_respond_invalid),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_disconnect_before_answer),
        cmocka_unit_test(test_connection_cap),
        cmocka_unit_test(test_close_with_open_connections),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_bad_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
