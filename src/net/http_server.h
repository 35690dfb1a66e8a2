/* A small HTTP/1.1 server on uv_tcp and http_parser: the webhook listener, /healthz, /metrics. */
#ifndef AR_NET_HTTP_SERVER_H
#define AR_NET_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* struct ar_header { const char *name; const char *value; } is defined by the webhook
 * verification header; the server shares it so a request's headers go to ar_verify() as is. */
#include "trigger/verify.h"

struct ar_http_server;

/* Limits of one server. A field left 0 takes the default shown; ar_http_settings_init() fills
 * every field with its default. */
struct ar_http_settings {
    /* 16 KiB: request line and headers; over it -> 431 (414 for the URL alone). http_parser
     * has its own ceiling of 80 KiB, also answered 431. */
    size_t max_header_bytes;
    size_t max_headers;         /* 100 header lines; more -> 431 */
    size_t max_body_bytes;      /* 1 MiB, also for chunked bodies; over it -> 413 */
    uint64_t header_timeout_ms; /* 10 s from accept or the first byte of a request to the end of
                                 * its headers; then the connection is closed (slow loris) */
    uint64_t body_timeout_ms;   /* 30 s from the end of the headers to the end of the body */
    uint64_t idle_timeout_ms;   /* 60 s: a keep-alive connection with nothing to do is closed */
    /* 1024 open connections. A connection over the cap is accepted, answered 503 with
     * Retry-After and Connection: close, and closed, so clients get a clear answer. */
    unsigned max_connections;
    /* 16 requests per connection waiting for an answer; beyond that the server stops reading
     * from the connection until answers go out (pipelining back-pressure). */
    unsigned max_pipeline;
    int backlog; /* 511, the listen() backlog */
};

/* One request. Every field is read-only for the application except `data`. The object and
 * every string in it stay valid until ar_http_respond() is called for it, even after the
 * client has gone (see ar_http_abort_cb). Strings are NUL-terminated. */
struct ar_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *url;    /* the request target exactly as received, e.g. "/hooks/x?a=1" */
    const char *path;   /* raw (still percent-encoded) path: "/" at least, "*" for "OPTIONS *" */
    const char *query;  /* raw query string without the '?', "" when there is none */
    const struct ar_header *headers; /* in arrival order, names as sent */
    size_t n_headers;
    const char *body; /* the body (de-chunked), NUL-terminated; "" when empty */
    size_t body_len;
    const char *remote_addr; /* "127.0.0.1:51234" or "[::1]:51234" */
    int http_major;
    int http_minor;
    /* The client wants the connection kept open after the answer (HTTP/1.1 by default, 1.0
     * with Connection: keep-alive). */
    int keep_alive;
    void *data; /* free for the application */
};

/* A request is complete (body included). Answer it now or later with ar_http_respond(). */
typedef void (*ar_http_request_cb)(struct ar_http_req *req, void *arg);
/* The connection of a request that was delivered but not yet answered went away (client
 * disconnect, timeout, server close). The request stays valid: the application must still call
 * ar_http_respond() once, which then only releases it and returns AR_ECANCELED. Never called
 * from inside ar_http_respond() or ar_http_server_close(): always from the loop. */
typedef void (*ar_http_abort_cb)(struct ar_http_req *req, void *arg);
/* Every handle of the server is closed; srv is freed when this returns. */
typedef void (*ar_http_close_cb)(struct ar_http_server *srv, void *arg);

struct ar_http_handler {
    ar_http_request_cb on_request; /* required */
    ar_http_abort_cb on_abort;     /* optional */
    void *arg;                     /* borrowed; passed to every callback */
};

/* Counters for /metrics. */
struct ar_http_stats {
    uint64_t connections_accepted;
    uint64_t connections_rejected; /* over max_connections */
    uint64_t connections_open;
    uint64_t requests;         /* delivered to the application */
    uint64_t requests_aborted; /* the client went away before the answer */
    /* Requests the server answered itself: 400, 413, 414, 417, 431, 500, 505. */
    uint64_t errors;
    uint64_t timeouts; /* connections closed by a header, body or idle timeout */
};

void ar_http_settings_init(struct ar_http_settings *settings);

/* Binds to addr, "HOST:PORT" with a numeric IPv4 host, "[IPv6]:PORT" or "localhost:PORT"
 * (127.0.0.1), and starts listening; port 0 picks a free port (see ar_http_server_port()).
 * settings may be NULL for the defaults; it is copied. On success *out is the server, which
 * must be ended with ar_http_server_close(). Returns AR_EINVAL for a bad address or handler,
 * or a libuv error (UV_EADDRINUSE, UV_EACCES, ...); on failure nothing is left to close, though
 * the loop must still run once to free a handle that was opened. */
int ar_http_server_start(uv_loop_t *loop, const char *addr, const struct ar_http_settings *settings,
                         const struct ar_http_handler *handler, struct ar_http_server **out);

/* The port the server listens on (useful after binding port 0). */
int ar_http_server_port(const struct ar_http_server *srv);

/* The bound address as "127.0.0.1:8080" or "[::1]:8080"; valid while the server is. */
const char *ar_http_server_address(const struct ar_http_server *srv);

void ar_http_server_stats(const struct ar_http_server *srv, struct ar_http_stats *out);

/* Stops accepting and closes every connection at once; requests still waiting for an answer
 * get ar_http_abort_cb. close_cb (may be NULL) runs once every handle is closed, and then the
 * server is freed. Requests the application still holds stay valid until answered. */
void ar_http_server_close(struct ar_http_server *srv, ar_http_close_cb close_cb);

/* Answers req with status (200..599), extra headers and a body; the server adds Date (unless
 * given), Content-Length (not for 204 and 304) and Connection when the connection is closing or
 * an HTTP/1.0 client asked to keep it. Content-Length, Transfer-Encoding and Connection headers
 * given here are ignored, except that "Connection: close" makes the server close the
 * connection after this answer. A HEAD request gets the headers and Content-Length of body but
 * not the body; 204 and 304 get no body. Answers go out in request order, whatever the order
 * of the calls. The body is copied. Returns 0 (req is released), AR_ECANCELED when the client
 * is gone (req is released too), AR_EINVAL for a status out of range, a header name that is
 * not an HTTP token or a value with CR or LF, or AR_ENOMEM; after these two req is still the
 * caller's, to answer again. Like every function here, call it on the loop's thread. */
int ar_http_respond(struct ar_http_req *req, int status, const struct ar_header *headers,
                    size_t n_headers, const char *body, size_t body_len);

/* The value of the first header called name (ASCII case ignored), or NULL. */
const char *ar_http_req_header(const struct ar_http_req *req, const char *name);

/* 1 when the request's connection has gone and an answer can no longer be delivered. */
int ar_http_req_aborted(const struct ar_http_req *req);

#endif
