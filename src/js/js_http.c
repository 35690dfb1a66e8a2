/* http: requests for recipes on the engine's curl multi, with per-host limits, retries with
 * backoff, redirects checked against allowHosts, dry runs, and one history step per call.
 *
 * The friendly API (option objects, query strings, JSON, HttpError) is src/js/lib/10_http.js;
 * this file starts a request for a suspended fiber and resumes it with a plain result object.
 * A request goes through its host's gate (concurrency cap, rate limit, FIFO; see
 * net/ratelimit.h), then through curl; a 429, a 5xx or a connection error sends it back through
 * the gate after a backoff timer, so a waiting run never blocks the loop. */
#include "js/vm.h"
#include "internal.h"
#include "core/log.h"
#include "db/history.h"
#include "net/curl_uv.h"
#include "net/ratelimit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define EXCERPT_BYTES 2048        /* of each body kept in a step's detail */
#define STEP_NAME_MAX 1000
#define MAX_ATTEMPTS 20
#define MAX_REDIRECTS 5
#define MAX_HEADER_BYTES (256 * 1024)
#define BACKOFF_MAX_MS (60 * 1000)
#define CONNECT_TIMEOUT_MS 10000
#define POOL_MAX 64               /* idle easy handles kept for reuse */
#define HOSTS_SWEEP_AT 4096       /* idle hosts without limits are forgotten past this */
#define STATE_KEY "\xff" "httpState"

struct http_state;

/* Requests to one host (and port, when the URL names one) share a gate. */
struct host {
    struct host *next;
    struct http_state *st;    /* borrowed */
    char *key;                /* owned; "api.trello.com" or "127.0.0.1:8123" */
    struct ar_gate gate;
    struct host_timer *timer; /* owned until closed; NULL when no one waits on time */
    size_t refs;              /* requests that point here */
    unsigned limited : 1;     /* limits from http.limit() or config, not the defaults */
    unsigned from_config : 1; /* http.limits: plugins cannot change it */
};

/* Wakes a host's queue when its rate limit or pause allows the next request. Separate from
 * the host so that a host can be forgotten while its handle is still closing. */
struct host_timer {
    uv_timer_t timer;
    struct host *host; /* borrowed; NULL once the host let go of it */
};

struct http_state {
    struct ar_engine *engine; /* borrowed */
    struct host *hosts;       /* owned */
    size_t n_hosts;
    CURL *pool[POOL_MAX];     /* owned; reset easy handles */
    size_t n_pool;
    uint64_t rng;
    char *limits_error;       /* owned; why the http.limits setting is unusable, or NULL */
};

enum op_state { OP_WAITING, OP_RUNNING, OP_BACKOFF, OP_FAILING, OP_DONE };

struct http_op {
    struct ar_op op;
    uv_timer_t timer;           /* backoff between attempts; defers early failures */
    struct ar_gate_waiter wait;
    struct http_state *st;      /* borrowed */
    struct host *host;          /* borrowed; counted in host->refs */
    enum op_state state;
    CURL *easy;                 /* owned */
    struct curl_slist *headers; /* owned */
    char *method;               /* owned */
    char *url;                  /* owned; changes on redirects */
    char *hostport;             /* owned; "host[:port]" of url, for messages */
    char *path;                 /* owned; path of url without the query, for messages */
    char *body;                 /* owned, or NULL */
    size_t body_len;
    char *user;                 /* owned, or NULL */
    char *pass;                 /* owned, or NULL */
    char **allow;               /* owned; the recipe's allowHosts (redirects are checked) */
    size_t n_allow;
    int has_allow;
    int64_t timeout_ms;
    int max_attempts;
    int attempt;
    int redirects;
    int throw_on_error;
    int follow;
    int64_t started_at;
    uint64_t started_hr;
    /* The last attempt. */
    long status;
    CURLcode result;
    int too_big;
    struct ar_buf resp;
    struct ar_buf hdrs;         /* "name: value\n" lines of the last response */
    char reason[64];
    char errbuf[CURL_ERROR_SIZE];
    struct ar_buf retries;      /* JSON objects for the step's detail, comma separated */
    char *error;                /* owned; why the call fails, or NULL */
};

static void host_pump(struct host *h);
static void op_start(struct http_op *op);
static void op_complete(struct http_op *op);

/* ---- State: one per VM, freed by a finalizer when the heap is destroyed ---- */

static struct http_state *state_of(duk_context *ctx)
{
    duk_push_heap_stash(ctx);
    duk_get_prop_string(ctx, -1, STATE_KEY);
    struct http_state *st = duk_get_pointer(ctx, -1);
    duk_pop_2(ctx);
    return st;
}

static const struct ar_config *cfg_of(const struct http_state *st)
{
    return st->engine->cfg;
}

static uint64_t next_random(struct http_state *st)
{
    /* xorshift64: jitter needs spread, not secrecy. */
    uint64_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x;
}

/* The time for the rate limits, read now: the loop's cached time is that of the start of the
 * iteration, and a response read later in it would count as ended too early. */
static int64_t now_ms(const struct http_state *st)
{
    uv_update_time(&st->engine->loop);
    return (int64_t)uv_now(&st->engine->loop);
}

static void host_timer_close_cb(uv_handle_t *h)
{
    free(ar_container_of((uv_timer_t *)h, struct host_timer, timer));
}

static void host_timer_release(struct host *h)
{
    if (h->timer != NULL) {
        h->timer->host = NULL;
        uv_close((uv_handle_t *)&h->timer->timer, host_timer_close_cb);
        h->timer = NULL;
    }
}

static void host_free(struct host *h)
{
    host_timer_release(h);
    ar_gate_free(&h->gate);
    free(h->key);
    free(h);
}

static void state_destroy(struct http_state *st)
{
    while (st->hosts != NULL) {
        struct host *h = st->hosts;
        st->hosts = h->next;
        /* The loop is gone by now; a timer still open (nothing should wait once every run
         * has ended) is left to the engine's final walk rather than touched. */
        if (h->timer != NULL) {
            h->timer->host = NULL;
            h->timer = NULL;
        }
        ar_gate_free(&h->gate);
        free(h->key);
        free(h);
    }
    for (size_t i = 0; i < st->n_pool; i++) {
        curl_easy_cleanup(st->pool[i]);
    }
    free(st->limits_error);
    free(st);
}

static duk_ret_t state_finalizer(duk_context *ctx)
{
    duk_get_prop_string(ctx, 0, STATE_KEY);
    struct http_state *st = duk_get_pointer(ctx, -1);
    duk_pop(ctx);
    if (st != NULL) {
        duk_push_pointer(ctx, NULL);
        duk_put_prop_string(ctx, 0, STATE_KEY);
        state_destroy(st);
    }
    return 0;
}

static CURL *easy_get(struct http_state *st)
{
    if (st->n_pool > 0) {
        return st->pool[--st->n_pool];
    }
    return curl_easy_init();
}

static void easy_put(struct http_state *st, CURL *easy)
{
    if (easy == NULL) {
        return;
    }
    if (st->n_pool < POOL_MAX) {
        curl_easy_reset(easy);
        st->pool[st->n_pool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* ---- Hosts ---- */

static char *lower_dup(const char *s)
{
    char *d = ar_strdup(s);
    for (char *p = d; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    return d;
}

static struct host *host_find(struct http_state *st, const char *key)
{
    for (struct host *h = st->hosts; h; h = h->next) {
        if (strcmp(h->key, key) == 0) {
            return h;
        }
    }
    return NULL;
}

/* Forgets hosts that have no limits of their own and nothing going on. */
static void hosts_sweep(struct http_state *st)
{
    struct host **pp = &st->hosts;
    while (*pp) {
        struct host *h = *pp;
        if (!h->limited && h->refs == 0 && h->gate.active == 0 && h->gate.queued == 0) {
            *pp = h->next;
            st->n_hosts--;
            host_free(h);
        } else {
            pp = &h->next;
        }
    }
}

static struct host *host_add(struct http_state *st, const char *key)
{
    if (st->n_hosts >= HOSTS_SWEEP_AT) {
        hosts_sweep(st);
    }
    struct host *h = ar_calloc(1, sizeof(*h));
    int64_t conc = cfg_of(st)->http_host_concurrency;
    if (ar_gate_init(&h->gate, conc > 0 ? (uint32_t)conc : 0, 0, 0) != 0) {
        free(h);
        return NULL;
    }
    h->st = st;
    h->key = lower_dup(key);
    h->next = st->hosts;
    st->hosts = h;
    st->n_hosts++;
    return h;
}

/* The gate for a request to host[:port]: a limit for exactly that, else one for the host
 * on any port, else a new gate with the default limits. */
static struct host *host_for(struct http_state *st, const char *host, const char *port)
{
    char *h = lower_dup(host);
    struct host *found = NULL;
    char *key = NULL;
    if (port != NULL) {
        key = ar_asprintf("%s:%s", h, port);
        found = host_find(st, key);
    }
    if (found == NULL) {
        found = host_find(st, h);
    }
    if (found == NULL) {
        found = host_add(st, key ? key : h);
    }
    free(key);
    free(h);
    return found;
}

static void host_timer_cb(uv_timer_t *t)
{
    struct host_timer *ht = ar_container_of(t, struct host_timer, timer);
    if (ht->host != NULL) {
        host_pump(ht->host);
    }
}

/* Starts every waiting request the limits allow now; arms the host's timer for the next one
 * when only time stands in the way, and lets go of the timer when nothing waits on time. */
static void host_pump(struct host *h)
{
    int64_t wait = -1;
    struct ar_gate_waiter *w;
    while ((w = ar_gate_next(&h->gate, now_ms(h->st), &wait)) != NULL) {
        op_start(ar_container_of(w, struct http_op, wait));
    }
    if (wait <= 0) {
        host_timer_release(h);
        return;
    }
    if (h->timer == NULL) {
        struct host_timer *ht = ar_calloc(1, sizeof(*ht));
        uv_timer_init(&h->st->engine->loop, &ht->timer);
        ht->host = h;
        h->timer = ht;
    }
    uv_timer_start(&h->timer->timer, host_timer_cb, (uint64_t)wait, 0);
}

static void op_host_set(struct http_op *op, struct host *h)
{
    if (op->host != NULL) {
        op->host->refs--;
    }
    op->host = h;
    if (h != NULL) {
        h->refs++;
    }
}

/* ---- Settings: http.limits = "HOST rate=N/DURATION concurrency=N; ..." ---- */

struct limits {
    int64_t rate;        /* -1 = not given */
    int64_t per_ms;
    int64_t concurrency; /* -1 = not given */
};

static int limits_apply(struct http_state *st, const char *key, const struct limits *l,
                        int from_config)
{
    struct host *h = host_find(st, key);
    if (h != NULL && h->from_config && !from_config) {
        return 0; /* the operator's setting wins over a plugin's default */
    }
    if (h == NULL && (h = host_add(st, key)) == NULL) {
        return AR_ENOMEM;
    }
    int64_t conc = l->concurrency >= 0 ? l->concurrency : cfg_of(st)->http_host_concurrency;
    int64_t rate = l->rate > 0 ? l->rate : 0;
    int rc = ar_gate_set(&h->gate, (uint32_t)conc, (uint32_t)rate, rate > 0 ? l->per_ms : 0);
    if (rc == 0) {
        h->limited = 1;
        h->from_config |= (unsigned)from_config;
        host_pump(h);
    }
    return rc;
}

static int parse_count(const char *s, size_t n, int64_t max, int64_t *out)
{
    if (n == 0 || n > 9) {
        return AR_EINVAL;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return AR_EINVAL;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) {
        return AR_ERANGE;
    }
    *out = v;
    return 0;
}

static int parse_limit_entry(struct http_state *st, char *entry, char *err, size_t errlen)
{
    char *save = NULL;
    char *host = strtok_r(entry, " \t", &save);
    if (host == NULL) {
        return 0;
    }
    struct limits l = {.rate = -1, .per_ms = 0, .concurrency = -1};
    for (char *tok = strtok_r(NULL, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (strncmp(tok, "rate=", 5) == 0) {
            char *slash = strchr(tok + 5, '/');
            if (slash == NULL ||
                parse_count(tok + 5, (size_t)(slash - tok - 5), AR_RATELIMIT_MAX, &l.rate) ||
                ar_parse_duration(slash + 1, &l.per_ms) != 0 || l.per_ms < 1) {
                snprintf(err, errlen, "'%s': expected rate=N/DURATION (N at most %d), e.g. "
                         "rate=100/10s", tok, AR_RATELIMIT_MAX);
                return AR_EINVAL;
            }
        } else if (strncmp(tok, "concurrency=", 12) == 0) {
            if (parse_count(tok + 12, strlen(tok + 12), 100000, &l.concurrency) != 0) {
                snprintf(err, errlen, "'%s': expected concurrency=N", tok);
                return AR_EINVAL;
            }
        } else {
            snprintf(err, errlen, "'%s': expected rate=N/DURATION or concurrency=N after %s",
                     tok, host);
            return AR_EINVAL;
        }
    }
    char *key = lower_dup(host);
    int rc = limits_apply(st, key, &l, 1);
    free(key);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, ar_strerror(rc));
    }
    return rc;
}

static void parse_limits_setting(struct http_state *st, const char *text)
{
    char *copy = ar_strdup(text);
    char *save = NULL;
    char err[256];
    for (char *e = strtok_r(copy, ";\n", &save); e; e = strtok_r(NULL, ";\n", &save)) {
        if (parse_limit_entry(st, e, err, sizeof(err)) != 0) {
            st->limits_error = ar_asprintf("setting http.limits: %s (format: 'HOST "
                                           "rate=N/DURATION concurrency=N; HOST ...')", err);
            break;
        }
    }
    free(copy);
}

/* ---- URLs ---- */

struct url_parts {
    char *scheme; /* curl-owned (curl_free) */
    char *host;
    char *port;   /* NULL when the URL names none */
    char *path;
};

static void url_parts_free(struct url_parts *u)
{
    curl_free(u->scheme);
    curl_free(u->host);
    curl_free(u->port);
    curl_free(u->path);
    memset(u, 0, sizeof(*u));
}

/* 0, or AR_EINVAL for a malformed URL, or AR_ENOENT for a scheme other than http(s). */
static int url_parse(const char *url, struct url_parts *u)
{
    memset(u, 0, sizeof(*u));
    CURLU *h = curl_url();
    if (h == NULL) {
        return AR_ENOMEM;
    }
    int rc = 0;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &u->scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &u->host, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PATH, &u->path, 0) != CURLUE_OK) {
        rc = AR_EINVAL;
    } else if (strcasecmp(u->scheme, "http") != 0 && strcasecmp(u->scheme, "https") != 0) {
        rc = AR_ENOENT;
    } else if (curl_url_get(h, CURLUPART_PORT, &u->port, 0) != CURLUE_OK) {
        u->port = NULL;
    }
    curl_url_cleanup(h);
    if (rc != 0) {
        url_parts_free(u);
    }
    return rc;
}

static char *hostport_of(const struct url_parts *u)
{
    return u->port ? ar_asprintf("%s:%s", u->host, u->port) : lower_dup(u->host);
}

/* allowHosts entries: "example.com" (any port), "example.com:8443", "*.example.com". */
static int host_allowed(char *const *allow, size_t n, const struct url_parts *u)
{
    size_t hl = strlen(u->host);
    for (size_t i = 0; i < n; i++) {
        const char *a = allow[i];
        const char *colon = strrchr(a, ':');
        size_t al = strlen(a);
        /* A port is named when what follows the last colon is all digits (not IPv6). */
        if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
            (a[0] != '[' || colon[-1] == ']')) {
            if (u->port == NULL || strcmp(colon + 1, u->port) != 0) {
                continue;
            }
            al = (size_t)(colon - a);
        }
        if (al > 2 && a[0] == '*' && a[1] == '.') {
            size_t sl = al - 1; /* ".example.com" */
            if (hl > sl && strncasecmp(u->host + hl - sl, a + 1, sl) == 0) {
                return 1;
            }
        } else if (al == hl && strncasecmp(u->host, a, al) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- Steps ---- */

static void format_size(int64_t n, char *buf, size_t len)
{
    if (n >= (1 << 20) && n % (1 << 20) == 0) {
        snprintf(buf, len, "%lld MiB", (long long)(n >> 20));
    } else if (n >= 1024 && n % 1024 == 0) {
        snprintf(buf, len, "%lld KiB", (long long)(n >> 10));
    } else {
        snprintf(buf, len, "%lld bytes", (long long)n);
    }
}

/* "key":"excerpt" with at most EXCERPT_BYTES of data, cut on a character boundary; bytes
 * that are not UTF-8 (or NUL) become '?' so the detail stays valid JSON. */
static void put_excerpt(struct ar_buf *b, const char *key, const char *data, size_t len)
{
    struct ar_buf text = {0};
    size_t i = 0;
    while (i < len && i < EXCERPT_BYTES) {
        size_t n = ar_utf8_seq((const unsigned char *)data + i, len - i);
        if (n == 0 || data[i] == '\0') {
            ar_buf_append(&text, "?", 1);
            i++;
            continue;
        }
        if (i + n > EXCERPT_BYTES) {
            break;
        }
        ar_buf_append(&text, data + i, n);
        i += n;
    }
    ar_buf_printf(b, "\"%s\":", key);
    ar_buf_json_string(b, text.data ? text.data : "");
    ar_buf_free(&text);
    if (i < len) {
        ar_buf_puts(b, ",\"truncated\":true");
    }
}

static const char *header_value(const struct ar_buf *hdrs, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = hdrs->data;
    while (p != NULL && *p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < p + ll && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *len = (size_t)(p + ll - v);
            return v;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

static void record_step(struct http_op *op, struct ar_run *run, const char *status)
{
    struct ar_buf d = {0};
    ar_buf_puts(&d, "{\"host\":");
    ar_buf_json_string(&d, op->hostport ? op->hostport : "");
    ar_buf_puts(&d, ",\"request\":{");
    ar_buf_printf(&d, "\"bytes\":%zu", op->body_len);
    if (op->body_len > 0) {
        ar_buf_puts(&d, ",");
        put_excerpt(&d, "body", op->body, op->body_len);
    }
    ar_buf_puts(&d, "}");
    if (op->status > 0) {
        size_t cl = 0;
        const char *ct = header_value(&op->hdrs, "content-type", &cl);
        ar_buf_printf(&d, ",\"response\":{\"status\":%ld,\"bytes\":%zu", op->status,
                      op->resp.len);
        if (ct != NULL) {
            char *c = ar_strndup(ct, cl);
            ar_buf_puts(&d, ",\"contentType\":");
            ar_buf_json_string(&d, c);
            free(c);
        }
        if (op->resp.len > 0 && !op->too_big) {
            ar_buf_puts(&d, ",");
            put_excerpt(&d, "body", op->resp.data, op->resp.len);
        }
        ar_buf_puts(&d, "}");
    }
    if (op->retries.len > 0) {
        ar_buf_printf(&d, ",\"retries\":[%s]", op->retries.data);
    }
    if (op->redirects > 0) {
        ar_buf_printf(&d, ",\"redirects\":%d", op->redirects);
    }
    ar_buf_puts(&d, "}");

    char *name = ar_asprintf("%s %.*s", op->method, STEP_NAME_MAX, op->url);
    struct ar_step_record s = {
        .kind = "http",
        .name = name,
        .started_at = op->started_at,
        .duration_ms = (double)(uv_hrtime() - op->started_hr) / 1e6,
        .status = status,
        .attempts = op->attempt > 0 ? op->attempt : 1,
        .detail = d.data,
        .error = op->error,
    };
    ar__run_step(run, &s);
    free(name);
    ar_buf_free(&d);
}

/* ---- Messages users can act on ---- */

static const char *reason_of(long status)
{
    static const struct {
        long code;
        const char *text;
    } reasons[] = {
        {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {408, "Request Timeout"}, {409, "Conflict"},
        {410, "Gone"}, {413, "Content Too Large"}, {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"}, {429, "Too Many Requests"},
        {500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
        {503, "Service Unavailable"}, {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < AR_ARRAY_SIZE(reasons); i++) {
        if (reasons[i].code == status) {
            return reasons[i].text;
        }
    }
    return "";
}

static const char *op_reason(const struct http_op *op)
{
    return op->reason[0] ? op->reason : reason_of(op->status);
}

static char *attempts_note(const struct http_op *op)
{
    return op->attempt > 1 ? ar_asprintf(" after %d attempts", op->attempt) : ar_strdup("");
}

static int is_json_type(const char *ct, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (strncasecmp(ct + i, "json", 4) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The first line of a short text body ("invalid key"), or "" for anything else. */
static char *body_snippet(const struct http_op *op)
{
    size_t cl = 0;
    const char *ct = header_value(&op->hdrs, "content-type", &cl);
    if (op->resp.len == 0 || op->too_big ||
        (ct != NULL && !(cl >= 5 && strncasecmp(ct, "text/", 5) == 0) && !is_json_type(ct, cl))) {
        return ar_strdup("");
    }
    struct ar_buf b = {0};
    size_t i = 0;
    while (i < op->resp.len && b.len < 200) {
        unsigned char c = (unsigned char)op->resp.data[i++];
        if (c == '\r' || c == '\n' || c == '\t') {
            c = ' ';
        }
        if (c < 0x20) {
            continue;
        }
        if (c == ' ' && (b.len == 0 || b.data[b.len - 1] == ' ')) {
            continue;
        }
        char ch = (char)c;
        ar_buf_append(&b, &ch, 1);
    }
    while (b.len > 0 && b.data[b.len - 1] == ' ') {
        b.data[--b.len] = '\0';
    }
    char *s = b.len ? ar_asprintf(": %s%s", b.data, i < op->resp.len ? "..." : "")
                    : ar_strdup("");
    ar_buf_free(&b);
    return s;
}

static char *failure_message(struct http_op *op)
{
    char *att = attempts_note(op);
    char *msg;
    if (op->too_big) {
        char size[32];
        format_size(cfg_of(op->st)->response_limit, size, sizeof(size));
        msg = ar_asprintf("the response from %s (%s %s) is larger than http.response_limit (%s)",
                          op->hostport, op->method, op->path, size);
    } else if (op->result == CURLE_OPERATION_TIMEDOUT) {
        char t[32];
        ar_format_duration(op->timeout_ms, t, sizeof(t));
        msg = ar_asprintf("timed out after %s waiting for %s%s (%s %s)", t, op->hostport, att,
                          op->method, op->path);
    } else if (op->result == CURLE_COULDNT_CONNECT || op->result == CURLE_COULDNT_RESOLVE_HOST) {
        msg = ar_asprintf("cannot connect to %s%s (%s %s): %s", op->hostport, att, op->method,
                          op->path, op->errbuf[0] ? op->errbuf : curl_easy_strerror(op->result));
    } else if (op->result != CURLE_OK) {
        msg = ar_asprintf("%s %s to %s failed%s: %s", op->method, op->path, op->hostport, att,
                          op->errbuf[0] ? op->errbuf : curl_easy_strerror(op->result));
    } else {
        char *snip = body_snippet(op);
        const char *reason = op_reason(op);
        msg = ar_asprintf("%ld%s%s from %s%s (%s %s)%s", op->status, reason[0] ? " " : "", reason,
                          op->hostport, att, op->method, op->path, snip);
        free(snip);
    }
    free(att);
    return msg;
}

/* ---- Transfers ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct http_op *op = data;
    size_t n = size * nmemb;
    if ((int64_t)(op->resp.len + n) > cfg_of(op->st)->response_limit) {
        op->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (ar_buf_append(&op->resp, ptr, n) != 0) {
        return 0;
    }
    return n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *data)
{
    struct http_op *op = data;
    size_t n = size * nitems;
    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n')) {
        n--;
    }
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one's headers. */
        op->hdrs.len = 0;
        if (op->hdrs.data) {
            op->hdrs.data[0] = '\0';
        }
        op->reason[0] = '\0';
        const char *sp = memchr(buf, ' ', n);
        const char *sp2 = sp ? memchr(sp + 1, ' ', n - (size_t)(sp + 1 - buf)) : NULL;
        if (sp2 != NULL) {
            size_t rl = n - (size_t)(sp2 + 1 - buf);
            if (rl >= sizeof(op->reason)) {
                rl = sizeof(op->reason) - 1;
            }
            memcpy(op->reason, sp2 + 1, rl);
            op->reason[rl] = '\0';
        }
    } else if (n > 0 && memchr(buf, ':', n) != NULL && op->hdrs.len + n < MAX_HEADER_BYTES) {
        ar_buf_append(&op->hdrs, buf, n);
        ar_buf_append(&op->hdrs, "\n", 1);
    }
    return size * nitems;
}

static int has_header(const struct curl_slist *l, const char *name)
{
    size_t nl = strlen(name);
    for (; l; l = l->next) {
        if (strncasecmp(l->data, name, nl) == 0 && l->data[nl] == ':') {
            return 1;
        }
    }
    return 0;
}

static void transfer_done_cb(CURL *easy, CURLcode result, void *data);

static int op_setup(struct http_op *op)
{
    CURL *e = op->easy;
    int write_method = strcmp(op->method, "POST") == 0 || strcmp(op->method, "PUT") == 0 ||
                       strcmp(op->method, "PATCH") == 0;
    curl_easy_setopt(e, CURLOPT_URL, op->url);
    if (strcmp(op->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(op->method, "GET") == 0 && op->body == NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, op->method);
        if (op->body != NULL || write_method) {
            /* An empty body still says Content-Length: 0, which some servers insist on. */
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)op->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body ? op->body : "");
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "autorun/" AR_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)op->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(op->timeout_ms < CONNECT_TIMEOUT_MS ? op->timeout_ms
                                                                : CONNECT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg_of(op->st)->response_limit);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, op->errbuf);
    if (op->user != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, op->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, op->pass ? op->pass : "");
    }
    return 0;
}

static void op_timer_cb(uv_timer_t *t);

/* Ends the call from the loop's next turn: the caller may be inside a gate's pump or a native
 * function, where resuming JS is not allowed. */
static void op_fail_soon(struct http_op *op, char *message)
{
    free(op->error);
    op->error = message;
    op->state = OP_FAILING;
    uv_timer_start(&op->timer, op_timer_cb, 0, 0);
}

static void op_start(struct http_op *op)
{
    struct ar_curl_uv *cu = ar__engine_curl(op->st->engine);
    op->state = OP_RUNNING;
    op->attempt++;
    op->status = 0;
    op->result = CURLE_OK;
    op->too_big = 0;
    op->resp.len = 0;
    op->hdrs.len = 0;
    if (op->hdrs.data) {
        op->hdrs.data[0] = '\0';
    }
    op->reason[0] = '\0';
    op->errbuf[0] = '\0';
    if (op->easy == NULL) {
        op->easy = easy_get(op->st);
    }
    if (cu == NULL || op->easy == NULL) {
        ar_gate_leave(&op->host->gate, now_ms(op->st));
        op_fail_soon(op, ar_strdup("cannot start an HTTP transfer (libcurl failed to start)"));
        return;
    }
    curl_easy_reset(op->easy);
    op_setup(op);
    int rc = ar_curl_uv_add(cu, op->easy, transfer_done_cb, op);
    if (rc != 0) {
        ar_gate_leave(&op->host->gate, now_ms(op->st));
        op_fail_soon(op, ar_asprintf("cannot start an HTTP transfer: %s", ar_strerror(rc)));
    }
}

static void op_enter(struct http_op *op)
{
    op->state = OP_WAITING;
    if (ar_gate_enter(&op->host->gate, &op->wait, now_ms(op->st))) {
        op_start(op);
    } else {
        host_pump(op->host);
    }
}

static int is_idempotent(const char *method)
{
    return strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
}

/* POST and PATCH are tried again only where the server surely did not act on them. */
static int retryable(const struct http_op *op)
{
    int idem = is_idempotent(op->method);
    if (op->too_big) {
        return 0;
    }
    switch (op->result) {
    case CURLE_OK:
        if (op->status == 429 || op->status == 503) {
            return 1;
        }
        return op->status >= 500 && op->status <= 599 && idem;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return 1;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return idem;
    default:
        return 0;
    }
}

/* Retry-After in milliseconds (seconds or an HTTP-date), or -1 when absent or unreadable. */
static int64_t retry_after_ms(const struct http_op *op)
{
    size_t len = 0;
    const char *v = header_value(&op->hdrs, "retry-after", &len);
    if (v == NULL || len == 0 || len > 64) {
        return -1;
    }
    char text[65];
    memcpy(text, v, len);
    text[len] = '\0';
    if (strspn(text, "0123456789") == len) {
        return len > 7 ? INT64_MAX / 2 : atoll(text) * 1000;
    }
    time_t at = curl_getdate(text, NULL);
    if (at == (time_t)-1) {
        return -1;
    }
    int64_t ms = (int64_t)at * 1000 - ar_now_ms();
    return ms > 0 ? ms : 0;
}

static int64_t backoff_ms(struct http_op *op)
{
    int64_t base = cfg_of(op->st)->http_backoff_ms;
    int64_t d = base;
    for (int i = 1; i < op->attempt && d < BACKOFF_MAX_MS; i++) {
        d *= 2;
    }
    if (d > BACKOFF_MAX_MS) {
        d = BACKOFF_MAX_MS;
    }
    /* Half fixed, half random, so that many clients do not retry in lockstep. */
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t)(next_random(op->st) % (uint64_t)(half + 1)) : 0);
}

/* Follows a redirect by hand, so that allowHosts and the new host's limits apply to it.
 * Returns 1 when the request goes on, 0 when the response is final, or sets op->error. */
static int follow_redirect(struct http_op *op)
{
    long s = op->status;
    if (!op->follow || !(s == 301 || s == 302 || s == 303 || s == 307 || s == 308)) {
        return 0;
    }
    char *target = NULL;
    if (curl_easy_getinfo(op->easy, CURLINFO_REDIRECT_URL, &target) != CURLE_OK ||
        target == NULL) {
        return 0;
    }
    if (op->redirects >= MAX_REDIRECTS) {
        op->error = ar_asprintf("more than %d redirects from %s (%s %s)", MAX_REDIRECTS,
                                op->hostport, op->method, op->path);
        return 0;
    }
    struct url_parts u;
    if (url_parse(target, &u) != 0) {
        op->error = ar_asprintf("%s (%s %s) redirects to a URL that is not http or https",
                                op->hostport, op->method, op->path);
        return 0;
    }
    if (op->has_allow && !host_allowed(op->allow, op->n_allow, &u)) {
        op->error = ar_asprintf("%s (%s %s) redirects to host %s, which is not in this "
                                "recipe's allowHosts", op->hostport, op->method, op->path,
                                u.host);
        url_parts_free(&u);
        return 0;
    }
    struct host *h = host_for(op->st, u.host, u.port);
    if (h == NULL) {
        url_parts_free(&u);
        return 0;
    }
    char *url = ar_strdup(target); /* target belongs to the easy handle */
    free(op->url);
    op->url = url;
    free(op->hostport);
    op->hostport = hostport_of(&u);
    free(op->path);
    op->path = ar_strdup(u.path);
    url_parts_free(&u);
    if (s == 303 || ((s == 301 || s == 302) && strcmp(op->method, "POST") == 0)) {
        /* As browsers and curl -L do: the method becomes GET and the body is dropped. */
        free(op->method);
        op->method = ar_strdup("GET");
        free(op->body);
        op->body = NULL;
        op->body_len = 0;
    }
    op->redirects++;
    op->attempt--; /* a redirect is not another attempt */
    op_host_set(op, h);
    op_enter(op);
    return 1;
}

static void transfer_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct http_op *op = data;
    struct host *h = op->host;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    op->status = result == CURLE_OK ? status : 0;
    op->result = result;
    if (result == CURLE_FILESIZE_EXCEEDED) {
        op->too_big = 1;
    }
    ar_gate_leave(&h->gate, now_ms(op->st));

    if (result == CURLE_OK && follow_redirect(op)) {
        host_pump(h);
        return;
    }
    if (op->error == NULL && op->attempt < op->max_attempts && retryable(op)) {
        int64_t ra = op->result == CURLE_OK ? retry_after_ms(op) : -1;
        int64_t delay = ra >= 0 ? ra : backoff_ms(op);
        struct ar_run *run = op->op.run;
        uint64_t left_ms = run->deadline_hr > uv_hrtime()
                               ? (run->deadline_hr - uv_hrtime()) / 1000000u : 0;
        if ((uint64_t)delay < left_ms) {
            ar_buf_printf(&op->retries, "%s{\"attempt\":%d,\"status\":%ld,\"waitMs\":%lld}",
                          op->retries.len ? "," : "", op->attempt, op->status, (long long)delay);
            if (ra >= 0 && op->status == 429) {
                /* The server speaks for every request to it, not just this one. */
                ar_gate_pause(&h->gate, now_ms(op->st) + delay);
            }
            op->state = OP_BACKOFF;
            uv_timer_start(&op->timer, op_timer_cb, (uint64_t)delay, 0);
            host_pump(h);
            return;
        }
        char *base = failure_message(op);
        op->error = ar_asprintf("%s; the next attempt would be in %lld s, after the run's "
                                "timeout", base, (long long)(delay / 1000));
        free(base);
    }
    int ok = op->result == CURLE_OK && !op->too_big && op->status >= 200 && op->status < 300;
    if (op->error == NULL && !ok && (op->result != CURLE_OK || op->too_big ||
                                     op->throw_on_error)) {
        op->error = failure_message(op);
    }
    op_complete(op);
    host_pump(h);
}

static void op_timer_cb(uv_timer_t *t)
{
    struct http_op *op = ar_container_of(t, struct http_op, timer);
    if (op->state == OP_BACKOFF) {
        op_enter(op);
    } else if (op->state == OP_FAILING) {
        op_complete(op);
    }
}

static void op_close_cb(uv_handle_t *handle)
{
    struct http_op *op = ar_container_of((uv_timer_t *)handle, struct http_op, timer);
    op_host_set(op, NULL);
    easy_put(op->st, op->easy);
    curl_slist_free_all(op->headers);
    free(op->method);
    free(op->url);
    free(op->hostport);
    free(op->path);
    free(op->body);
    free(op->user);
    free(op->pass);
    for (size_t i = 0; i < op->n_allow; i++) {
        free(op->allow[i]);
    }
    free(op->allow);
    ar_buf_free(&op->resp);
    ar_buf_free(&op->hdrs);
    ar_buf_free(&op->retries);
    free(op->error);
    free(op);
}

/* -> [ ... headers ] : an object of lower-case names; repeated headers joined with ", ". */
static void push_headers(duk_context *ctx, const struct ar_buf *hdrs)
{
    duk_push_object(ctx);
    const char *p = hdrs->data;
    while (p != NULL && *p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        const char *colon = memchr(p, ':', ll);
        if (colon != NULL && colon > p) {
            char *name = ar_strndup(p, (size_t)(colon - p));
            for (char *c = name; *c; c++) {
                *c = (char)tolower((unsigned char)*c);
            }
            const char *v = colon + 1;
            while (v < p + ll && (*v == ' ' || *v == '\t')) {
                v++;
            }
            if (duk_get_prop_string(ctx, -1, name)) {
                /* -> [ ... headers old ] */
                duk_push_string(ctx, ", ");
                duk_push_lstring(ctx, v, (size_t)(p + ll - v));
                duk_concat(ctx, 3);
            } else {
                duk_pop(ctx);
                duk_push_lstring(ctx, v, (size_t)(p + ll - v));
            }
            duk_put_prop_string(ctx, -2, name);
            free(name);
        }
        p = eol ? eol + 1 : NULL;
    }
}

static void push_result(duk_context *ctx, void *data)
{
    struct http_op *op = data;
    duk_push_object(ctx);
    duk_push_int(ctx, (int)op->status);
    duk_put_prop_string(ctx, -2, "status");
    duk_push_string(ctx, op->status ? op_reason(op) : "");
    duk_put_prop_string(ctx, -2, "statusText");
    push_headers(ctx, &op->hdrs);
    duk_put_prop_string(ctx, -2, "headers");
    if (op->too_big || op->resp.len == 0) {
        duk_push_string(ctx, "");
    } else {
        duk_push_lstring(ctx, op->resp.data, op->resp.len);
    }
    duk_put_prop_string(ctx, -2, "body");
    duk_push_int(ctx, op->attempt);
    duk_put_prop_string(ctx, -2, "attempts");
    duk_push_string(ctx, op->method);
    duk_put_prop_string(ctx, -2, "method");
    duk_push_string(ctx, op->url);
    duk_put_prop_string(ctx, -2, "url");
    duk_push_string(ctx, op->hostport);
    duk_put_prop_string(ctx, -2, "host");
    if (op->error != NULL) {
        duk_push_string(ctx, op->error);
        duk_put_prop_string(ctx, -2, "error");
    }
}

static void op_complete(struct http_op *op)
{
    struct ar_run *run = op->op.run;
    uint32_t fiber = op->op.fiber;
    struct ar_vm *vm = run->engine->vm;
    char status[16];
    if (op->result != CURLE_OK || op->too_big || op->status == 0) {
        snprintf(status, sizeof(status), "error");
    } else {
        snprintf(status, sizeof(status), "%ld", op->status);
    }
    ar__run_op_remove(&op->op);
    record_step(op, run, status);
    op->state = OP_DONE;
    /* The op lives until its timer has closed, after this turn of the loop: long enough for
     * push_result, and nothing here touches run once it has been resumed. */
    uv_close((uv_handle_t *)&op->timer, op_close_cb);
    ar__vm_resume(vm, run, fiber, push_result, op, 0);
}

static void op_cancel(struct ar_op *o)
{
    struct http_op *op = ar_container_of(o, struct http_op, op);
    struct host *h = op->host;
    switch (op->state) {
    case OP_WAITING:
        ar_gate_remove(&h->gate, &op->wait);
        host_pump(h);
        break;
    case OP_RUNNING:
        ar_curl_uv_cancel(ar__engine_curl(op->st->engine), op->easy);
        ar_gate_leave(&h->gate, now_ms(op->st));
        host_pump(h);
        break;
    case OP_BACKOFF:
    case OP_FAILING:
        uv_timer_stop(&op->timer);
        break;
    case OP_DONE:
        return;
    }
    op->state = OP_DONE;
    uv_close((uv_handle_t *)&op->timer, op_close_cb);
}

/* ---- Bindings ---- */

static const char *opt_string(duk_context *ctx, const char *key, int required, size_t *len)
{
    /* The spec object keeps the string alive, so the pointer outlives the pop. */
    duk_get_prop_string(ctx, 1, key);
    const char *s = NULL;
    if (duk_is_string(ctx, -1)) {
        s = duk_get_lstring(ctx, -1, len);
    } else if (required || !duk_is_null_or_undefined(ctx, -1)) {
        (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: %s must be a string", key);
    }
    duk_pop(ctx);
    return s;
}

static double opt_number(duk_context *ctx, const char *key, double dflt)
{
    duk_get_prop_string(ctx, 1, key);
    double v = dflt;
    if (duk_is_number(ctx, -1)) {
        v = duk_get_number(ctx, -1);
    } else if (!duk_is_null_or_undefined(ctx, -1)) {
        (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: %s must be a number", key);
    }
    duk_pop(ctx);
    return v;
}

/* Checks that spec[key] is an array of strings (with no CR/LF when it holds headers); returns
 * its length, or -1 when it is absent. */
static int opt_string_array(duk_context *ctx, const char *key, int headers)
{
    duk_get_prop_string(ctx, 1, key);
    if (duk_is_null_or_undefined(ctx, -1)) {
        duk_pop(ctx);
        return -1;
    }
    if (!duk_is_array(ctx, -1)) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: %s must be an array", key);
    }
    int n = (int)duk_get_length(ctx, -1);
    for (int i = 0; i < n; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        if (!duk_is_string(ctx, -1)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: %s[%d] must be a string", key, i);
        }
        const char *s = duk_get_string(ctx, -1);
        if (headers && (strpbrk(s, "\r\n") != NULL || strchr(s, ':') == NULL)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR,
                             "http: header '%s' is not 'Name: value' on one line", s);
        }
        duk_pop(ctx);
    }
    duk_pop(ctx);
    return n;
}

static char **copy_string_array(duk_context *ctx, const char *key, int n)
{
    char **out = ar_calloc(n > 0 ? (size_t)n : 1, sizeof(char *));
    duk_get_prop_string(ctx, 1, key);
    for (int i = 0; i < n; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        out[i] = ar_strdup(duk_get_string(ctx, -1));
        duk_pop(ctx);
    }
    duk_pop(ctx);
    return out;
}

/* Values of secrets also appear percent-encoded in query strings; redact that form too.
 * Values holding '%' are skipped, so encoding an encoded form never adds another one. */
static void redact_encoded_secrets(struct ar_run *run)
{
    size_t n = run->redactor.n;
    for (size_t i = 0; i < n; i++) {
        const char *v = run->redactor.values[i];
        if (strchr(v, '%') != NULL) {
            continue;
        }
        char *enc = curl_easy_escape(NULL, v, 0);
        if (enc != NULL && strcmp(enc, v) != 0) {
            ar_redactor_add(&run->redactor, enc);
        }
        curl_free(enc);
    }
}

static int push_refusal(duk_context *ctx, const char *message)
{
    duk_push_object(ctx);
    duk_push_string(ctx, message);
    duk_put_prop_string(ctx, -2, "error");
    return 1;
}

/* httpStart(fiber, spec): undefined when the fiber must suspend for the result, true when a
 * dry run recorded the call instead of sending it, or {error} when the call is refused. */
static duk_ret_t js_http_start(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    duk_require_object(ctx, 1);
    struct ar_run *run = ar__vm_of(ctx)->current;
    struct http_state *st = state_of(ctx);
    if (run == NULL || st == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "http: no run is executing");
    }
    size_t url_len = 0, body_len = 0;
    const char *method = opt_string(ctx, "method", 1, NULL);
    const char *url = opt_string(ctx, "url", 1, &url_len);
    const char *body = opt_string(ctx, "body", 0, &body_len);
    const char *user = opt_string(ctx, "user", 0, NULL);
    const char *pass = opt_string(ctx, "pass", 0, NULL);
    double timeout = opt_number(ctx, "timeoutMs", (double)cfg_of(st)->http_timeout_ms);
    double attempts = opt_number(ctx, "attempts", 0);
    int n_headers = opt_string_array(ctx, "headers", 1);
    int n_allow = opt_string_array(ctx, "allowHosts", 0);
    duk_get_prop_string(ctx, 1, "throwOnError");
    int throw_on_error = duk_is_undefined(ctx, -1) ? 1 : duk_to_boolean(ctx, -1);
    duk_pop(ctx);
    duk_get_prop_string(ctx, 1, "follow");
    int follow = duk_is_undefined(ctx, -1) ? 1 : duk_to_boolean(ctx, -1);
    duk_pop(ctx);

    size_t ml = strlen(method);
    if (ml == 0 || ml > 16 || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != ml) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: '%s' is not an HTTP method", method);
    }
    if (!(timeout >= 1 && timeout <= 86400000.0)) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "http: timeout must be 1 ms to 1 day");
    }
    if (!(attempts >= 0 && attempts <= MAX_ATTEMPTS) || attempts != (int)attempts) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "http: attempts must be 1 to %d",
                         MAX_ATTEMPTS);
    }
    if (url_len > 65536 || strlen(url) != url_len) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: the URL is not valid");
    }
    if (st->limits_error != NULL) {
        return push_refusal(ctx, st->limits_error);
    }
    struct url_parts u;
    int rc = url_parse(url, &u);
    if (rc == AR_ENOENT) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: '%s' is not an http or https URL", url);
    } else if (rc != 0) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http: '%s' is not a valid URL", url);
    }

    /* Nothing below throws until the op is handed over. */
    char **allow = n_allow >= 0 ? copy_string_array(ctx, "allowHosts", n_allow) : NULL;
    if (allow != NULL && !host_allowed(allow, (size_t)n_allow, &u)) {
        char *msg = ar_asprintf("host %s is not in this recipe's allowHosts", u.host);
        for (int i = 0; i < n_allow; i++) {
            free(allow[i]);
        }
        free(allow);
        url_parts_free(&u);
        push_refusal(ctx, msg);
        free(msg);
        return 1;
    }
    redact_encoded_secrets(run);

    struct http_op *op = ar_calloc(1, sizeof(*op));
    op->st = st;
    op->method = ar_strdup(method);
    op->url = ar_strdup(url);
    op->hostport = hostport_of(&u);
    op->path = ar_strdup(u.path);
    if (body != NULL) {
        op->body = ar_malloc(body_len + 1);
        memcpy(op->body, body, body_len);
        op->body[body_len] = '\0';
        op->body_len = body_len;
    }
    op->user = ar_strdup(user);
    op->pass = ar_strdup(pass);
    op->allow = allow;
    op->n_allow = n_allow > 0 ? (size_t)n_allow : 0;
    op->has_allow = allow != NULL;
    op->timeout_ms = (int64_t)timeout;
    op->max_attempts = attempts > 0 ? (int)attempts : (int)cfg_of(st)->http_attempts;
    if (op->max_attempts < 1) {
        op->max_attempts = 1;
    }
    op->throw_on_error = throw_on_error;
    op->follow = follow;
    op->started_at = ar_now_ms();
    op->started_hr = uv_hrtime();
    int has_type = 0;
    if (n_headers > 0) {
        char **hs = copy_string_array(ctx, "headers", n_headers);
        for (int i = 0; i < n_headers; i++) {
            op->headers = curl_slist_append(op->headers, hs[i]);
            free(hs[i]);
        }
        free(hs);
        has_type = has_header(op->headers, "Content-Type");
    }
    if (!has_type) {
        /* Otherwise curl labels every body as a form (application/x-www-form-urlencoded). */
        op->headers = curl_slist_append(op->headers, "Content-Type:");
    }
    op->headers = curl_slist_append(op->headers, "Expect:");
    uv_timer_init(&st->engine->loop, &op->timer);
    struct host *h = host_for(st, u.host, u.port);
    url_parts_free(&u);

    int read_only = strcmp(op->method, "GET") == 0 || strcmp(op->method, "HEAD") == 0;
    if (run->dry_run && !read_only) {
        /* A write in a dry run: say what would have been sent, send nothing. */
        record_step(op, run, "dry-run");
        op->state = OP_DONE;
        uv_close((uv_handle_t *)&op->timer, op_close_cb);
        duk_push_true(ctx);
        return 1;
    }
    op->op.cancel = op_cancel;
    ar__run_op_add(run, &op->op, fiber);
    if (h == NULL) {
        op_fail_soon(op, ar_strdup("out of memory"));
        return 0;
    }
    op_host_set(op, h);
    op_enter(op);
    return 0;
}

/* httpLimit(host, rate, perMs, concurrency): a plugin's limits for a host (or a URL's host);
 * rate 0 = none, concurrency -1 = the default. False when the operator's setting wins. */
static duk_ret_t js_http_limit(duk_context *ctx)
{
    const char *host = duk_require_string(ctx, 0);
    double rate = duk_require_number(ctx, 1);
    double per = duk_require_number(ctx, 2);
    double conc = duk_require_number(ctx, 3);
    struct http_state *st = state_of(ctx);
    if (!(rate >= 0 && rate <= AR_RATELIMIT_MAX) || rate != (int64_t)rate) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "http.limit: rate must be 0 to %d",
                         AR_RATELIMIT_MAX);
    }
    if (rate > 0 && !(per >= 1 && per <= 86400000.0)) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "http.limit: per must be 1 ms to 1 day");
    }
    if (!(conc >= -1 && conc <= 100000) || conc != (int64_t)conc) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "http.limit: concurrency must be 0 to 100000");
    }
    if (host[0] == '\0' || st == NULL) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http.limit: host must be a host name or URL");
    }
    char *key;
    if (strstr(host, "://") != NULL) {
        struct url_parts u;
        if (url_parse(host, &u) != 0) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "http.limit: '%s' is not a valid URL",
                             host);
        }
        key = hostport_of(&u);
        url_parts_free(&u);
    } else {
        key = lower_dup(host);
    }
    struct limits l = {.rate = (int64_t)rate, .per_ms = (int64_t)per,
                       .concurrency = (int64_t)conc};
    struct host *h = host_find(st, key);
    int applies = !(h != NULL && h->from_config);
    int rc = limits_apply(st, key, &l, 0);
    free(key);
    if (rc != 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "http.limit: %s", ar_strerror(rc));
    }
    duk_push_boolean(ctx, applies);
    return 1;
}

/* httpRecipe(): the name of the recipe whose run is executing, or undefined. */
static duk_ret_t js_http_recipe(duk_context *ctx)
{
    struct ar_run *run = ar__vm_of(ctx)->current;
    if (run == NULL) {
        return 0;
    }
    duk_push_string(ctx, run->recipe->name);
    return 1;
}

/* apiBase(name): the configured base URL of an API (api.NAME / NAME_API_BASE), or undefined. */
static duk_ret_t js_http_api_base(duk_context *ctx)
{
    const char *name = duk_require_string(ctx, 0);
    const char *base = ar_config_api_base(ar__vm_of(ctx)->engine->cfg, name);
    if (base == NULL || base[0] == '\0') {
        return 0;
    }
    duk_push_string(ctx, base);
    return 1;
}

static const duk_function_list_entry http_funcs[] = {
    {"httpStart", js_http_start, 2},
    {"httpLimit", js_http_limit, 4},
    {"httpRecipe", js_http_recipe, 0},
    {"apiBase", js_http_api_base, 1},
    {NULL, NULL, 0},
};

void ar__js_http_open(duk_context *ctx)
{
    struct ar_vm *vm = ar__vm_of(ctx);
    struct http_state *st = ar_calloc(1, sizeof(*st));
    st->engine = vm->engine;
    st->rng = uv_hrtime() | 1;
    /* -> [ ... native ] */
    duk_push_heap_stash(ctx);
    duk_push_pointer(ctx, st);
    duk_put_prop_string(ctx, -2, STATE_KEY);
    /* An object whose finalizer frees the state when the heap is destroyed. */
    duk_push_object(ctx);
    duk_push_pointer(ctx, st);
    duk_put_prop_string(ctx, -2, STATE_KEY);
    duk_push_c_function(ctx, state_finalizer, 1);
    duk_set_finalizer(ctx, -2);
    duk_put_prop_string(ctx, -2, AR_JS_HTTP_STATE_OWNER);
    duk_pop(ctx);
    if (st->engine->cfg->http_limits != NULL) {
        parse_limits_setting(st, st->engine->cfg->http_limits);
    }
    duk_put_function_list(ctx, -1, http_funcs);
}
