/* HTTP/1.1 server on uv_tcp and http_parser: keep-alive, pipelining, limits, late answers. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "core/error.h"

#define READ_BUF_SIZE 65536
#define LINGER_MAX_MS 2000 /* how long a closing connection drains what the client still sends */
#define REJECT_SLACK 64    /* connections answered 503 at the same time, beyond the cap */
#define REQ_LINE_OVERHEAD 12
#define HEADER_LINE_OVERHEAD 4

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char REJECT_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 20\r\n"
                                 "Retry-After: 1\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "Service Unavailable\n";

/* What the one timer of a connection is counting down to. */
enum phase {
    PHASE_NONE,    /* waiting for the application: no deadline */
    PHASE_HEADERS, /* the headers of a request must complete */
    PHASE_BODY,    /* the body of a request must complete */
    PHASE_IDLE,    /* keep-alive with nothing in flight */
    PHASE_LINGER,  /* closing: the last answer drains, then what the client sends is discarded */
    PHASE_RESUME   /* not a deadline: parse what was held back by pipelining back-pressure */
};

/* Where the header callbacks are: they come in pieces, split anywhere across reads. */
enum hstate { HS_URL, HS_FIELD, HS_VALUE };

struct hbuf {
    char *data; /* owned; NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
};

struct conn;

struct req {
    struct ar_http_req pub; /* first: the application's pointer is this struct's address */
    struct conn *conn;      /* borrowed; NULL once the connection is gone */
    struct req *next;       /* the connection's answer queue, in request order */
    struct hbuf text;       /* url, header names and values, path, query; NUL-separated */
    size_t *offs;           /* owned: name/value offsets into text while parsing */
    size_t offs_cap;
    size_t n_hdr;
    struct ar_header *headers; /* owned: points into text */
    struct hbuf body;
    char *resp; /* owned: the serialized answer until it is handed to libuv */
    size_t resp_len;
    char remote[64];
    /* The request is freed when neither the queue nor the application holds it. */
    unsigned in_queue : 1;
    unsigned app_owned : 1;
    unsigned answered : 1;
    unsigned aborted : 1;
    unsigned complete : 1;
    unsigned headers_done : 1;
    unsigned want_continue : 1;
    unsigned continue_sent : 1;
    unsigned close_after : 1;
    unsigned is_head : 1;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    struct ar_http_server *srv; /* borrowed */
    struct conn *prev, *next;   /* the server's list */
    http_parser parser;
    struct req *head, *tail; /* answer queue; owned */
    size_t n_queue;
    struct req *cur;   /* borrowed: the request being parsed (the queue's tail) */
    struct req *ready; /* borrowed: set by on_message_complete for the feed loop */
    char *held;        /* owned: bytes not parsed yet because of back-pressure */
    size_t held_len;
    size_t header_bytes;
    enum hstate hstate;
    enum phase phase;
    int fail_status; /* the answer a failing parser callback asks for */
    int handles;     /* open libuv handles: memory is freed when this reaches 0 */
    char remote[64];
    unsigned reading : 1;
    unsigned paused : 1;    /* reading stopped by pipelining back-pressure */
    unsigned read_done : 1; /* no more requests are parsed; what arrives is discarded */
    unsigned shutting : 1;  /* the last answer is out, the write side is being shut down */
    unsigned closing : 1;   /* uv_close() called */
    unsigned rejected : 1;  /* over max_connections: answered 503 */
};

struct ar_http_server {
    uv_tcp_t listener;
    uv_loop_t *loop; /* borrowed */
    struct ar_http_settings set;
    struct ar_http_handler handler;
    struct conn *conns; /* owned list */
    unsigned n_conns;   /* every connection, rejected ones too */
    unsigned n_active;  /* connections counted against max_connections */
    int closing;
    int listener_closed;
    ar_http_close_cb close_cb;
    struct ar_http_stats stats;
    int port;
    char address[64];
    time_t date_sec;
    char date[40];
    /* One read buffer for every connection: libuv hands it to read_cb right after alloc_cb on
     * the same stream, and whatever must outlive read_cb is copied. */
    char read_buf[READ_BUF_SIZE];
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_fail(struct conn *c, int status);
static void conn_timer_cb(uv_timer_t *t);
static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers ---- */

static void *xcalloc(size_t n, size_t size)
{
    /* Connection and request structs are small and fixed: running out of memory for them is
     * not something the server can answer, so it stops like ar_malloc() does. */
    void *p = calloc(n, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

static int hbuf_reserve(struct hbuf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (extra > SIZE_MAX / 2 - b->len) {
        return AR_ENOMEM;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap ? b->cap : 128;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return AR_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

static int hbuf_append(struct hbuf *b, const char *s, size_t n)
{
    int err = hbuf_reserve(b, n);
    if (err) {
        return err;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends a NUL that is part of the content: it ends one string of a NUL-separated list. */
static int hbuf_end_string(struct hbuf *b)
{
    int err = hbuf_reserve(b, 1);
    if (err) {
        return err;
    }
    b->data[b->len++] = '\0';
    b->data[b->len] = '\0';
    return 0;
}

static int hbuf_printf(struct hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int hbuf_printf(struct hbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int err;

    va_start(ap, fmt);
    n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return AR_EINVAL;
    }
    if (b->data != NULL && (size_t)n < b->cap - b->len) {
        b->len += (size_t)n;
        return 0;
    }
    err = hbuf_reserve(b, (size_t)n);
    if (err) {
        return err;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[64] = "";

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, len, "%s:%d", ip, ntohs(a->sin_port));
    } else {
        snprintf(out, len, "unknown");
    }
}

/* "HOST:PORT", "[V6]:PORT" or "localhost:PORT" -> a socket address. Names other than
 * localhost are refused rather than resolved: a listen address is configuration, and a
 * blocking lookup at start-up would hide typos behind DNS. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[64];
    const char *port_s;
    size_t host_len;
    unsigned long port = 0;
    int v6 = 0;
    const char *p;

    if (addr == NULL) {
        return AR_EINVAL;
    }
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':') {
            return AR_EINVAL;
        }
        host_len = (size_t)(end - addr - 1);
        if (host_len == 0 || host_len >= sizeof(host)) {
            return AR_EINVAL;
        }
        memcpy(host, addr + 1, host_len);
        port_s = end + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL) {
            return AR_EINVAL;
        }
        host_len = (size_t)(colon - addr);
        if (host_len == 0 || host_len >= sizeof(host) || memchr(addr, ':', host_len) != NULL) {
            return AR_EINVAL;
        }
        memcpy(host, addr, host_len);
        port_s = colon + 1;
    }
    host[host_len] = '\0';
    if (*port_s == '\0' || strlen(port_s) > 5) {
        return AR_EINVAL;
    }
    for (p = port_s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return AR_EINVAL;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535) {
        return AR_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0) {
            return AR_EINVAL;
        }
        return 0;
    }
    if (strcasecmp(host, "localhost") == 0) {
        strcpy(host, "127.0.0.1");
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0) {
        return AR_EINVAL;
    }
    return 0;
}

static int is_token_char(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
        return 1;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int header_name_valid(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        if (!is_token_char((unsigned char)*s)) {
            return 0;
        }
    }
    return 1;
}

static int header_value_valid(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static const char *status_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}

/* The Date header value, formatted once per second and without the locale. */
static const char *server_date(struct ar_http_server *srv)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    if (now != srv->date_sec || srv->date[0] == '\0') {
        gmtime_r(&now, &tm);
        snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        srv->date_sec = now;
    }
    return srv->date;
}

/* ---- requests ---- */

static struct req *req_new(struct conn *c)
{
    struct req *r = xcalloc(1, sizeof(*r));

    r->conn = c;
    memcpy(r->remote, c->remote, sizeof(r->remote));
    r->pub.remote_addr = r->remote;
    r->pub.method = "";
    r->pub.url = "";
    r->pub.path = "";
    r->pub.query = "";
    r->pub.body = "";
    r->in_queue = 1;
    if (c->tail != NULL) {
        c->tail->next = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    c->n_queue++;
    return r;
}

/* Frees what parsing built: once answered, the application no longer sees it. */
static void req_drop_parsed(struct req *r)
{
    free(r->text.data);
    free(r->body.data);
    free(r->offs);
    free(r->headers);
    memset(&r->text, 0, sizeof(r->text));
    memset(&r->body, 0, sizeof(r->body));
    r->offs = NULL;
    r->headers = NULL;
}

static void req_free(struct req *r)
{
    req_drop_parsed(r);
    free(r->resp);
    free(r);
}

static struct req *queue_pop(struct conn *c)
{
    struct req *r = c->head;

    c->head = r->next;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->n_queue--;
    r->next = NULL;
    r->in_queue = 0;
    return r;
}

/* ---- timers ---- */

static void conn_arm(struct conn *c, enum phase phase, uint64_t ms)
{
    if (c->closing || (c->shutting && phase != PHASE_LINGER)) {
        return;
    }
    c->phase = phase;
    uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void conn_disarm(struct conn *c)
{
    if (c->closing || c->shutting) {
        return;
    }
    c->phase = PHASE_NONE;
    uv_timer_stop(&c->timer);
}

static uint64_t linger_ms(const struct ar_http_server *srv)
{
    return srv->set.header_timeout_ms < LINGER_MAX_MS ? srv->set.header_timeout_ms : LINGER_MAX_MS;
}

/* ---- parser callbacks ---- */

static int parse_fail(struct conn *c, int status)
{
    c->fail_status = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;

    c->cur = req_new(c);
    c->header_bytes = REQ_LINE_OVERHEAD;
    c->hstate = HS_URL;
    /* A new connection's first request counts from accept, so a client that connects and
     * trickles bytes cannot restart the clock. */
    if (c->phase != PHASE_HEADERS) {
        conn_arm(c, PHASE_HEADERS, c->srv->set.header_timeout_ms);
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;

    c->header_bytes += len;
    if (c->header_bytes > c->srv->set.max_header_bytes) {
        return parse_fail(c, 414);
    }
    return hbuf_append(&c->cur->text, at, len) ? parse_fail(c, 500) : 0;
}

static int end_piece(struct conn *c)
{
    return hbuf_end_string(&c->cur->text);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->cur;

    c->header_bytes += len;
    if (r->headers_done) {
        /* Chunked trailers: counted against the limit, otherwise ignored. */
        return c->header_bytes > c->srv->set.max_header_bytes ? parse_fail(c, 431) : 0;
    }
    if (c->hstate != HS_FIELD) {
        if (end_piece(c)) {
            return parse_fail(c, 500);
        }
        if (r->n_hdr >= c->srv->set.max_headers) {
            return parse_fail(c, 431);
        }
        if (2 * (r->n_hdr + 1) > r->offs_cap) {
            size_t cap = r->offs_cap ? r->offs_cap * 2 : 32;
            size_t *o = realloc(r->offs, cap * sizeof(*o));
            if (o == NULL) {
                return parse_fail(c, 500);
            }
            r->offs = o;
            r->offs_cap = cap;
        }
        r->offs[2 * r->n_hdr] = r->text.len;
        r->offs[2 * r->n_hdr + 1] = (size_t)-1;
        r->n_hdr++;
        c->header_bytes += HEADER_LINE_OVERHEAD;
        c->hstate = HS_FIELD;
    }
    if (c->header_bytes > c->srv->set.max_header_bytes) {
        return parse_fail(c, 431);
    }
    return hbuf_append(&r->text, at, len) ? parse_fail(c, 500) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->cur;

    c->header_bytes += len;
    if (c->header_bytes > c->srv->set.max_header_bytes) {
        return parse_fail(c, 431);
    }
    if (r->headers_done) {
        return 0;
    }
    if (c->hstate == HS_FIELD) {
        if (end_piece(c)) {
            return parse_fail(c, 500);
        }
        r->offs[2 * r->n_hdr - 1] = r->text.len;
        c->hstate = HS_VALUE;
    }
    return hbuf_append(&r->text, at, len) ? parse_fail(c, 500) : 0;
}

/* Ends the last piece, splits the target into path and query and turns offsets into the
 * header array. Nothing is appended to text afterwards, so the pointers stay put. */
static int finish_headers(struct conn *c, struct req *r)
{
    struct http_parser_url u;
    size_t path_off;
    size_t query_off;
    size_t url_len;
    size_t i;
    int err = 0;

    if (c->hstate == HS_FIELD) {
        /* A field without a value callback: an empty value. */
        err = end_piece(c);
        r->offs[2 * r->n_hdr - 1] = r->text.len;
    }
    err = err ? err : end_piece(c);
    if (err) {
        return 500;
    }
    url_len = strlen(r->text.data);
    /* The path and the query are copied from the URL in the same buffer: room for both (and
     * their NULs, and a "/" for a URL without a path) is made first, so the copies' source
     * cannot move under them. */
    if (hbuf_reserve(&r->text, url_len + 4)) {
        return 500;
    }

    path_off = r->text.len;
    if (url_len == 1 && r->text.data[0] == '*') {
        err = hbuf_append(&r->text, "*", 1);
        err = err ? err : end_piece(c);
        query_off = r->text.len;
        err = err ? err : end_piece(c);
    } else {
        http_parser_url_init(&u);
        if (http_parser_parse_url(r->text.data, url_len, c->parser.method == HTTP_CONNECT, &u)) {
            return 400;
        }
        if (u.field_set & (1 << UF_PATH)) {
            err = hbuf_append(&r->text, r->text.data + u.field_data[UF_PATH].off,
                              u.field_data[UF_PATH].len);
        } else {
            err = hbuf_append(&r->text, "/", 1);
        }
        err = err ? err : end_piece(c);
        query_off = r->text.len;
        if (!err && (u.field_set & (1 << UF_QUERY))) {
            err = hbuf_append(&r->text, r->text.data + u.field_data[UF_QUERY].off,
                              u.field_data[UF_QUERY].len);
        }
        err = err ? err : end_piece(c);
    }
    if (err) {
        return 500;
    }

    if (r->n_hdr > 0) {
        r->headers = calloc(r->n_hdr, sizeof(*r->headers));
        if (r->headers == NULL) {
            return 500;
        }
    }
    for (i = 0; i < r->n_hdr; i++) {
        char *value = r->text.data + r->offs[2 * i + 1];
        size_t vlen = strlen(value);
        /* The parser skips spaces before a value but keeps those after it. */
        while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t')) {
            value[--vlen] = '\0';
        }
        r->headers[i].name = r->text.data + r->offs[2 * i];
        r->headers[i].value = value;
    }
    free(r->offs);
    r->offs = NULL;
    r->offs_cap = 0;

    r->pub.url = r->text.data;
    r->pub.path = r->text.data + path_off;
    r->pub.query = r->text.data + query_off;
    r->pub.headers = r->headers;
    r->pub.n_headers = r->n_hdr;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct ar_http_server *srv = c->srv;
    struct req *r = c->cur;
    const char *expect;
    int has_cl = (p->flags & F_CONTENTLENGTH) != 0;
    int has_body = (p->flags & F_CHUNKED) || (has_cl && p->content_length > 0);
    int status;

    status = finish_headers(c, r);
    if (status != 0) {
        return parse_fail(c, status);
    }
    r->headers_done = 1;
    r->pub.method = http_method_str((enum http_method)p->method);
    r->pub.http_major = p->http_major;
    r->pub.http_minor = p->http_minor;
    r->pub.keep_alive = http_should_keep_alive(p) && !p->upgrade;
    r->is_head = p->method == HTTP_HEAD;

    if (p->http_major != 1) {
        return parse_fail(c, 505);
    }
    if (p->http_minor >= 1 && ar_http_req_header(&r->pub, "Host") == NULL) {
        return parse_fail(c, 400);
    }
    if (has_cl && p->content_length > srv->set.max_body_bytes) {
        return parse_fail(c, 413);
    }
    expect = ar_http_req_header(&r->pub, "Expect");
    if (expect != NULL) {
        if (strcasecmp(expect, "100-continue") != 0) {
            return parse_fail(c, 417);
        }
        /* HTTP/1.0 clients do not know 100 (RFC 9110 section 10.1.1). */
        r->want_continue = p->http_minor >= 1 && has_body;
    }
    if (has_body) {
        if (has_cl && hbuf_reserve(&r->body, (size_t)p->content_length) != 0) {
            return parse_fail(c, 500);
        }
        conn_arm(c, PHASE_BODY, srv->set.body_timeout_ms);
    } else {
        conn_disarm(c);
    }
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct conn *c = p->data;

    /* content_length holds the announced chunk size: refuse before reading the chunk. */
    if (p->content_length > c->srv->set.max_body_bytes - c->cur->body.len) {
        return parse_fail(c, 413);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->cur;

    if (len > c->srv->set.max_body_bytes - r->body.len) {
        return parse_fail(c, 413);
    }
    return hbuf_append(&r->body, at, len) ? parse_fail(c, 500) : 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    c->cur->complete = 1;
    c->ready = c->cur;
    c->cur = NULL;
    conn_disarm(c);
    /* Return to the feed loop, which hands the request over outside the parser. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* ---- connections ---- */

static void conn_start_reading(struct conn *c);

static void deliver(struct conn *c, struct req *r)
{
    struct ar_http_server *srv = c->srv;

    r->app_owned = 1;
    if (r->body.data != NULL) {
        r->pub.body = r->body.data;
        r->pub.body_len = r->body.len;
    }
    srv->stats.requests++;
    srv->handler.on_request(&r->pub, srv->handler.arg);
}

/* Parses data, handing over each complete request. Stops at back-pressure (keeping the rest),
 * after a request that ends the connection, or when the connection fails. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->closing && !c->read_done) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        data += n;
        len -= n;
        if (e == HPE_PAUSED) {
            struct req *r = c->ready;
            int keep_alive = r->pub.keep_alive;

            http_parser_pause(&c->parser, 0);
            c->ready = NULL;
            deliver(c, r); /* r may be answered and gone after this */
            if (c->closing) {
                return;
            }
            if (!keep_alive) {
                c->read_done = 1;
                return;
            }
            if (c->n_queue >= c->srv->set.max_pipeline) {
                if (len > 0) {
                    c->held = malloc(len);
                    if (c->held == NULL) {
                        conn_close(c);
                        return;
                    }
                    memcpy(c->held, data, len);
                    c->held_len = len;
                }
                c->paused = 1;
                if (c->reading) {
                    uv_read_stop((uv_stream_t *)&c->tcp);
                    c->reading = 0;
                }
                return;
            }
            continue;
        }
        if (e != HPE_OK) {
            int status = 400;
            if (e == HPE_HEADER_OVERFLOW) {
                status = 431;
            } else if (e >= HPE_CB_message_begin && e <= HPE_CB_chunk_complete &&
                       c->fail_status != 0) {
                status = c->fail_status;
            }
            conn_fail(c, status);
            return;
        }
        if (n == 0) {
            /* Not expected from http_parser, but never spin. */
            conn_fail(c, 400);
            return;
        }
    }
}

static void conn_resume(struct conn *c)
{
    char *held = c->held;
    size_t held_len = c->held_len;

    c->held = NULL;
    c->held_len = 0;
    c->paused = 0;
    conn_feed(c, held, held_len);
    free(held);
    if (c->closing) {
        return;
    }
    if (!c->paused) {
        conn_start_reading(c);
    }
    conn_flush(c);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct conn *c = container_of(t, struct conn, timer);

    switch (c->phase) {
    case PHASE_RESUME:
        c->phase = PHASE_NONE;
        conn_resume(c);
        break;
    case PHASE_HEADERS:
    case PHASE_BODY:
    case PHASE_IDLE:
        c->srv->stats.timeouts++;
        conn_close(c);
        break;
    case PHASE_LINGER:
    case PHASE_NONE:
        conn_close(c);
        break;
    }
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = container_of(h, struct conn, tcp);

    (void)suggested;
    buf->base = c->srv->read_buf;
    buf->len = sizeof(c->srv->read_buf);
}

static void conn_start_reading(struct conn *c)
{
    if (c->reading || c->closing) {
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) != 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = container_of(s, struct conn, tcp);

    if (c->closing) {
        return;
    }
    if (nread < 0) {
        /* EOF counts as a disconnect, as in Node's and Go's servers: requests still waiting
         * for an answer are aborted. Clients that half-close are not supported. */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->read_done) {
        return;
    }
    conn_feed(c, buf->base, (size_t)nread);
    if (!c->closing) {
        conn_flush(c);
    }
}

static void conn_write_cb(uv_write_t *w, int status)
{
    struct conn *c = container_of(w->handle, struct conn, tcp);

    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        conn_close(c);
    }
}

/* Writes buf (freed afterwards when owned), directly when the socket takes it. */
static int conn_write(struct conn *c, char *buf, size_t len, int owned)
{
    uv_buf_t b = uv_buf_init(buf, (unsigned int)len);
    uv_write_t *w;
    int n;
    int err;

    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) {
        n = 0;
    }
    if (n < 0 || (size_t)n == len) {
        if (owned) {
            free(buf);
        }
        return n < 0 ? n : 0;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        if (owned) {
            free(buf);
        }
        return AR_ENOMEM;
    }
    w->data = owned ? buf : NULL;
    b = uv_buf_init(buf + n, (unsigned int)(len - (size_t)n));
    err = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (err) {
        free(w->data);
        free(w);
        return err;
    }
    return 0;
}

static void conn_shutdown_cb(uv_shutdown_t *sr, int status)
{
    struct conn *c = container_of(sr, struct conn, shutdown_req);

    if (c->closing) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Closing with unread input makes the kernel send a reset, which can destroy the answer
     * before the client reads it: drain what the client still sends for a short while. */
    conn_arm(c, PHASE_LINGER, linger_ms(c->srv));
    c->paused = 0;
    conn_start_reading(c);
}

/* The last answer has been handed to libuv: shut the write side down once it is out. */
static void conn_shutdown(struct conn *c)
{
    if (c->shutting || c->closing) {
        return;
    }
    c->read_done = 1;
    c->shutting = 1;
    /* Bounds the time the answer may take to drain to a client that does not read. */
    conn_arm(c, PHASE_LINGER, c->srv->set.idle_timeout_ms);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
        conn_close(c);
    }
}

/* Writes the answers at the head of the queue that are ready, in request order. */
static void conn_flush(struct conn *c)
{
    struct req *r;

    if (c->closing || c->shutting) {
        return;
    }
    while ((r = c->head) != NULL) {
        int close_after;
        int err;

        if (!r->answered) {
            if (r->want_continue && !r->continue_sent && !r->complete) {
                r->continue_sent = 1;
                if (conn_write(c, (char *)CONTINUE_100, sizeof(CONTINUE_100) - 1, 0) != 0) {
                    conn_close(c);
                }
            }
            break;
        }
        close_after = r->close_after;
        err = r->resp != NULL ? conn_write(c, r->resp, r->resp_len, 1) : 0;
        r->resp = NULL;
        queue_pop(c);
        if (!r->app_owned) {
            req_free(r);
        }
        if (err) {
            conn_close(c);
            return;
        }
        if (close_after) {
            conn_shutdown(c);
            return;
        }
    }
    if (c->paused && c->n_queue < c->srv->set.max_pipeline) {
        if (c->phase != PHASE_RESUME) {
            /* Not now: this may run inside ar_http_respond(), and the application must not
             * be handed a new request from inside its own call. */
            conn_arm(c, PHASE_RESUME, 0);
        }
    } else if (c->head == NULL && !c->paused && !c->read_done) {
        conn_arm(c, PHASE_IDLE, c->srv->set.idle_timeout_ms);
    }
}

static int build_response(struct ar_http_server *srv, struct req *r, int status,
                          const struct ar_header *headers, size_t n_headers, const char *body,
                          size_t body_len, int close_after)
{
    struct hbuf b = {0};
    int no_body = status == 204 || status == 304;
    int has_date = 0;
    size_t i;
    size_t need = 160 + (no_body || r->is_head ? 0 : body_len);
    int err;

    for (i = 0; i < n_headers; i++) {
        need += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    }
    err = hbuf_reserve(&b, need);
    err = err ? err : hbuf_printf(&b, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
    for (i = 0; i < n_headers && !err; i++) {
        const char *name = headers[i].name;
        if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Connection") == 0 ||
            strcasecmp(name, "Transfer-Encoding") == 0) {
            continue;
        }
        if (strcasecmp(name, "Date") == 0) {
            has_date = 1;
        }
        err = hbuf_printf(&b, "%s: %s\r\n", name, headers[i].value);
    }
    if (!err && !has_date) {
        err = hbuf_printf(&b, "Date: %s\r\n", server_date(srv));
    }
    if (!err && !no_body) {
        err = hbuf_printf(&b, "Content-Length: %zu\r\n", body_len);
    }
    if (!err && close_after) {
        err = hbuf_append(&b, "Connection: close\r\n", 19);
    } else if (!err && r->pub.http_minor == 0 && r->pub.http_major == 1) {
        err = hbuf_append(&b, "Connection: keep-alive\r\n", 24);
    }
    err = err ? err : hbuf_append(&b, "\r\n", 2);
    if (!err && !no_body && !r->is_head && body_len > 0) {
        err = hbuf_append(&b, body, body_len);
    }
    if (err) {
        free(b.data);
        return err;
    }
    free(r->resp);
    r->resp = b.data;
    r->resp_len = b.len;
    return 0;
}

/* The server answers the request being parsed itself and stops reading: after a protocol
 * error the rest of the stream cannot be trusted. */
static void conn_fail(struct conn *c, int status)
{
    static const struct ar_header plain[] = {{"Content-Type", "text/plain"}};
    struct req *r = c->cur ? c->cur : req_new(c);
    char body[64];
    int n;

    c->srv->stats.errors++;
    c->cur = NULL;
    c->read_done = 1;
    conn_disarm(c);
    req_drop_parsed(r);
    r->is_head = 0;
    r->close_after = 1;
    r->answered = 1;
    n = snprintf(body, sizeof(body), "%s\n", status_reason(status));
    if (build_response(c->srv, r, status, plain, 1, body, (size_t)n, 1) != 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

static void conn_destroy(struct conn *c)
{
    struct ar_http_server *srv = c->srv;
    ar_http_abort_cb on_abort = srv->handler.on_abort;
    void *arg = srv->handler.arg;
    struct req *r;

    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->n_conns--;
    if (!c->rejected) {
        srv->n_active--;
    }
    while (c->head != NULL) {
        r = queue_pop(c);
        r->conn = NULL;
        if (!r->app_owned) {
            req_free(r);
            continue;
        }
        r->aborted = 1;
        srv->stats.requests_aborted++;
        /* The application may answer (and so free) r inside the callback. */
        if (on_abort != NULL) {
            on_abort(&r->pub, arg);
        }
    }
    free(c->held);
    free(c);
    if (srv->closing && srv->listener_closed && srv->n_conns == 0) {
        ar_http_close_cb cb = srv->close_cb;
        if (cb != NULL) {
            cb(srv, srv->handler.arg);
        }
        free(srv);
    }
}

static void conn_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->handles == 0) {
        conn_destroy(c);
    }
}

static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct ar_http_server *srv = container_of(listener, struct ar_http_server, listener);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct conn *c;

    if (status < 0 || srv->closing) {
        return;
    }
    /* libuv stops watching the listener until the pending socket is accepted, so it is
     * accepted even when it is closed right away. */
    c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->n_conns++;
    c->rejected = 1; /* until counted as active below */

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        format_addr(&ss, c->remote, sizeof(c->remote));
    } else {
        snprintf(c->remote, sizeof(c->remote), "unknown");
    }
    uv_tcp_nodelay(&c->tcp, 1);

    if (srv->n_active >= srv->set.max_connections) {
        srv->stats.connections_rejected++;
        if (srv->n_conns > srv->set.max_connections + REJECT_SLACK) {
            conn_close(c);
            return;
        }
        c->read_done = 1;
        conn_start_reading(c);
        if (conn_write(c, (char *)REJECT_503, sizeof(REJECT_503) - 1, 0) != 0) {
            conn_close(c);
            return;
        }
        conn_shutdown(c);
        return;
    }
    c->rejected = 0;
    srv->n_active++;
    srv->stats.connections_accepted++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    conn_arm(c, PHASE_HEADERS, srv->set.header_timeout_ms);
    conn_start_reading(c);
}

/* ---- public API ---- */

void ar_http_settings_init(struct ar_http_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->max_header_bytes = 16 * 1024;
    s->max_headers = 100;
    s->max_body_bytes = 1024 * 1024;
    s->header_timeout_ms = 10 * 1000;
    s->body_timeout_ms = 30 * 1000;
    s->idle_timeout_ms = 60 * 1000;
    s->max_connections = 1024;
    s->max_pipeline = 16;
    s->backlog = 511;
}

/* Copies src, a field left 0 taking its default. */
static void apply_settings(struct ar_http_settings *dst, const struct ar_http_settings *src)
{
    struct ar_http_settings d;

    ar_http_settings_init(&d);
    if (src == NULL) {
        *dst = d;
        return;
    }
    dst->max_header_bytes = src->max_header_bytes ? src->max_header_bytes : d.max_header_bytes;
    dst->max_headers = src->max_headers ? src->max_headers : d.max_headers;
    dst->max_body_bytes = src->max_body_bytes ? src->max_body_bytes : d.max_body_bytes;
    dst->header_timeout_ms = src->header_timeout_ms ? src->header_timeout_ms : d.header_timeout_ms;
    dst->body_timeout_ms = src->body_timeout_ms ? src->body_timeout_ms : d.body_timeout_ms;
    dst->idle_timeout_ms = src->idle_timeout_ms ? src->idle_timeout_ms : d.idle_timeout_ms;
    dst->max_connections = src->max_connections ? src->max_connections : d.max_connections;
    dst->max_pipeline = src->max_pipeline ? src->max_pipeline : d.max_pipeline;
    dst->backlog = src->backlog ? src->backlog : d.backlog;
}

static void free_on_close_cb(uv_handle_t *h)
{
    free(container_of(h, struct ar_http_server, listener));
}

int ar_http_server_start(uv_loop_t *loop, const char *addr, const struct ar_http_settings *settings,
                         const struct ar_http_handler *handler, struct ar_http_server **out)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct ar_http_server *srv;
    struct sigaction sa;
    int err;

    if (loop == NULL || out == NULL || handler == NULL || handler->on_request == NULL) {
        return AR_EINVAL;
    }
    err = parse_addr(addr, &ss);
    if (err) {
        return err;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return AR_ENOMEM;
    }
    srv->loop = loop;
    srv->handler = *handler;
    apply_settings(&srv->set, settings);
    err = uv_tcp_init(loop, &srv->listener);
    if (err) {
        free(srv);
        return err;
    }
    err = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    err = err ? err : uv_listen((uv_stream_t *)&srv->listener, srv->set.backlog, on_connection);
    err = err ? err : uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    if (err) {
        uv_close((uv_handle_t *)&srv->listener, free_on_close_cb);
        return err;
    }
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    format_addr(&ss, srv->address, sizeof(srv->address));

    /* A write to a socket the client has reset raises SIGPIPE, whose default action ends the
     * process; libuv leaves the choice to the program. A server ignores it (as Node does)
     * unless the program has installed its own handler. */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }
    *out = srv;
    return 0;
}

int ar_http_server_port(const struct ar_http_server *srv)
{
    return srv->port;
}

const char *ar_http_server_address(const struct ar_http_server *srv)
{
    return srv->address;
}

void ar_http_server_stats(const struct ar_http_server *srv, struct ar_http_stats *out)
{
    *out = srv->stats;
    out->connections_open = srv->n_active;
}

static void listener_close_cb(uv_handle_t *h)
{
    struct ar_http_server *srv = container_of(h, struct ar_http_server, listener);

    srv->listener_closed = 1;
    if (srv->n_conns == 0) {
        if (srv->close_cb != NULL) {
            srv->close_cb(srv, srv->handler.arg);
        }
        free(srv);
    }
}

void ar_http_server_close(struct ar_http_server *srv, ar_http_close_cb close_cb)
{
    struct conn *c;

    if (srv == NULL || srv->closing) {
        return;
    }
    srv->closing = 1;
    srv->close_cb = close_cb;
    uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
    for (c = srv->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}

int ar_http_respond(struct ar_http_req *pub, int status, const struct ar_header *headers,
                    size_t n_headers, const char *body, size_t body_len)
{
    struct req *r = (struct req *)pub;
    struct conn *c = r->conn;
    int close_after;
    size_t i;
    int err;

    if (status < 200 || status > 599 || (headers == NULL && n_headers > 0) ||
        (body == NULL && body_len > 0)) {
        return AR_EINVAL;
    }
    close_after = !r->pub.keep_alive;
    for (i = 0; i < n_headers; i++) {
        if (!header_name_valid(headers[i].name) || !header_value_valid(headers[i].value)) {
            return AR_EINVAL;
        }
        if (strcasecmp(headers[i].name, "Connection") == 0 &&
            strcasecmp(headers[i].value, "close") == 0) {
            close_after = 1;
        }
    }
    if (c == NULL || c->closing || c->shutting) {
        /* Gone: the queue (if the connection still has one) or this call frees it. */
        r->app_owned = 0;
        r->answered = 1;
        r->aborted = 1;
        if (!r->in_queue) {
            req_free(r);
        }
        return AR_ECANCELED;
    }
    err = build_response(c->srv, r, status, headers, n_headers, body, body_len, close_after);
    if (err) {
        return err;
    }
    r->close_after = close_after;
    r->answered = 1;
    r->app_owned = 0;
    req_drop_parsed(r);
    conn_flush(c);
    return 0;
}

const char *ar_http_req_header(const struct ar_http_req *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

int ar_http_req_aborted(const struct ar_http_req *req)
{
    const struct req *r = (const struct req *)req;

    return r->aborted || r->conn == NULL || r->conn->closing || r->conn->shutting;
}
