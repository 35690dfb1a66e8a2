/* Webhook triggers: a request on a hook path is verified, de-duplicated by its delivery id and
 * queued as an event; its answer waits until the loop iteration's writes are committed, so one
 * commit acknowledges every request that arrived in the same iteration. */
#include "trigger/webhook.h"
#include "internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "js/vm.h"
#include "trigger/verify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct route {
    struct route *next;
    char *path;   /* owned; without a trailing '/' */
    char *recipe; /* owned */
    int respond_result;
    int64_t result_timeout_ms;
    char *problem; /* owned; set when the route cannot verify: it answers 500 */
    int stale;     /* its recipe stopped loading at a reload: it answers 503 until fixed */
    struct ar_verify_spec spec; /* strings point at the owned copies below */
    char *secret_name;
    char *header;
    char *prefix;
    char *algorithm;
    char *encoding;
    char *timestamp_header;
    char *timestamp_sep;
    char *callback_url;
    char *delivery_header; /* the trigger's deliveryHeader, else the scheme's */
};

/* A request whose event is written but not committed yet, or committed but not yet on disk. */
struct pending {
    struct pending *next;
    struct ar_http_req *req; /* borrowed until answered */
    char *recipe;            /* owned */
    int64_t run_id;
    int duplicate;
    int respond_result;
    int64_t timeout_ms;
    uint64_t commit; /* the queue's commit that holds the event (see ar_queue_durable()) */
};

/* A respond: 'result' request waiting for its run. */
struct waiter {
    struct waiter *next;
    struct waiter *prev;
    struct ar_webhooks *w;       /* borrowed */
    struct ar_http_req *req;     /* borrowed until answered */
    struct ar_queue_watch *watch;
    uv_timer_t timer;
    int64_t run_id;
    int64_t timeout_ms;
    char *recipe; /* owned */
};

struct ar_webhooks {
    struct ar_engine *e;        /* borrowed */
    struct ar_queue *q;         /* borrowed */
    struct ar_metrics *metrics; /* borrowed */
    struct route *routes;       /* owned */
    size_t n_routes;
    struct pending *pending;    /* owned, in arrival order */
    struct pending **pending_tail;
    size_t n_pending;
    struct pending *committed;  /* owned: committed, waiting for the sync; in commit order */
    struct pending **committed_tail;
    size_t n_committed;
    struct waiter waiters;      /* list head */
    size_t n_waiters;
    int stopping;
};

/* ---- JSON text ---- */

/* A JSON string of len bytes (NULs allowed); bytes that are not UTF-8 become U+FFFD, so the
 * event is always valid JSON text. */
static void json_string_n(struct ar_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    ar_buf_puts(b, "\"");
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = ar_utf8_seq(p + i, len - i);
        if (n == 0) {
            ar_buf_puts(b, "\\ufffd");
            i++;
            continue;
        }
        if (n > 1) {
            ar_buf_append(b, s + i, n);
        } else if (c == '"' || c == '\\') {
            char esc[3] = {'\\', (char)c, 0};
            ar_buf_puts(b, esc);
        } else if (c == '\n') {
            ar_buf_puts(b, "\\n");
        } else if (c == '\r') {
            ar_buf_puts(b, "\\r");
        } else if (c == '\t') {
            ar_buf_puts(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            ar_buf_printf(b, "\\u%04x", c);
        } else {
            ar_buf_append(b, s + i, 1);
        }
        i += n;
    }
    ar_buf_puts(b, "\"");
}

/* Decodes application/x-www-form-urlencoded text in place ('+' is a space); returns the length.
 * A '%' not followed by two hex digits is kept as it is. */
static size_t form_decode(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && ar_hex_digit(s[i + 1]) >= 0 &&
                   ar_hex_digit(s[i + 2]) >= 0) {
            s[o++] = (char)(ar_hex_digit(s[i + 1]) * 16 + ar_hex_digit(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

struct pair {
    char *name; /* owned */
    size_t name_len;
    char *value; /* owned */
    size_t value_len;
    int done;
};

/* {"name": "value"} with the values of a repeated name joined (headers, with ", ") or listed
 * in an array (query parameters, sep NULL). */
static void json_object_of_pairs(struct ar_buf *b, struct pair *pairs, size_t n, const char *sep)
{
    ar_buf_puts(b, "{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].done) {
            continue;
        }
        size_t count = 0;
        for (size_t j = i; j < n; j++) {
            count += !pairs[j].done && pairs[j].name_len == pairs[i].name_len &&
                     memcmp(pairs[j].name, pairs[i].name, pairs[i].name_len) == 0;
        }
        if (!first) {
            ar_buf_puts(b, ",");
        }
        first = 0;
        json_string_n(b, pairs[i].name, pairs[i].name_len);
        ar_buf_puts(b, ":");
        if (count == 1) {
            json_string_n(b, pairs[i].value, pairs[i].value_len);
            pairs[i].done = 1;
            continue;
        }
        struct ar_buf joined = {0};
        ar_buf_puts(b, sep ? "" : "[");
        int k = 0;
        for (size_t j = i; j < n; j++) {
            if (pairs[j].done || pairs[j].name_len != pairs[i].name_len ||
                memcmp(pairs[j].name, pairs[i].name, pairs[i].name_len) != 0) {
                continue;
            }
            if (j != i) {
                pairs[j].done = 1;
            }
            if (sep) {
                if (k++) {
                    ar_buf_puts(&joined, sep);
                }
                ar_buf_append(&joined, pairs[j].value, pairs[j].value_len);
            } else {
                ar_buf_puts(b, k++ ? "," : "");
                json_string_n(b, pairs[j].value, pairs[j].value_len);
            }
        }
        pairs[i].done = 1;
        if (sep) {
            json_string_n(b, joined.data ? joined.data : "", joined.len);
            ar_buf_free(&joined);
        } else {
            ar_buf_puts(b, "]");
        }
    }
    ar_buf_puts(b, "}");
}

static void free_pairs(struct pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
}

static void json_query(struct ar_buf *b, const char *query)
{
    size_t cap = 1;
    for (const char *p = query; *p; p++) {
        cap += *p == '&';
    }
    struct pair *pairs = ar_calloc(cap, sizeof(*pairs));
    size_t n = 0;
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            pairs[n].name = ar_strndup(p, nl);
            pairs[n].name_len = form_decode(pairs[n].name, nl);
            pairs[n].value = eq ? ar_strndup(eq + 1, len - nl - 1) : ar_strdup("");
            pairs[n].value_len = form_decode(pairs[n].value, eq ? len - nl - 1 : 0);
            n++;
        }
        p += len + (end != NULL);
    }
    json_object_of_pairs(b, pairs, n, NULL);
    free_pairs(pairs, n);
}

static void json_headers(struct ar_buf *b, const struct ar_http_req *req)
{
    struct pair *pairs = ar_calloc(req->n_headers + 1, sizeof(*pairs));
    for (size_t i = 0; i < req->n_headers; i++) {
        pairs[i].name = ar_strdup(req->headers[i].name);
        pairs[i].name_len = strlen(pairs[i].name);
        for (char *c = pairs[i].name; *c; c++) {
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
            }
        }
        pairs[i].value = ar_strdup(req->headers[i].value);
        pairs[i].value_len = strlen(pairs[i].value);
    }
    json_object_of_pairs(b, pairs, req->n_headers, ", ");
    free_pairs(pairs, req->n_headers);
}

char *ar_webhook_event_json(const struct ar_http_req *req, int json_ok)
{
    struct ar_buf b = {0};
    ar_buf_puts(&b, "{\"method\":");
    json_string_n(&b, req->method, strlen(req->method));
    ar_buf_puts(&b, ",\"path\":");
    json_string_n(&b, req->path, strlen(req->path));
    ar_buf_puts(&b, ",\"query\":");
    json_query(&b, req->query);
    ar_buf_puts(&b, ",\"headers\":");
    json_headers(&b, req);
    ar_buf_puts(&b, ",\"body\":");
    json_string_n(&b, req->body, req->body_len);
    ar_buf_puts(&b, ",\"json\":");
    if (json_ok) {
        ar_buf_append(&b, req->body, req->body_len);
    } else {
        ar_buf_puts(&b, "null");
    }
    ar_buf_puts(&b, "}");
    return ar_buf_steal(&b);
}

/* ---- JSON bodies ---- */

/* A webhook body is checked in C: it is embedded in the event as it is, and handing every
 * delivery to the VM's parser only to throw the result away cost more than the run itself. The
 * grammar is RFC 8259's, which is what the run's JSON.parse accepts; nesting is capped well
 * under Duktape's own limit (1000), so whatever passes here also parses inside the event. */
#define JSON_MAX_DEPTH 512

struct jscan {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
    int too_deep;
};

static void js_space(struct jscan *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

static int js_literal(struct jscan *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
        return -1;
    }
    j->p += n;
    return 0;
}

static int js_string(struct jscan *j)
{
    j->p++;
    while (j->p < j->end) {
        unsigned char c = *j->p++;
        if (c == '"') {
            return 0;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c != '\\') {
            continue;
        }
        if (j->p >= j->end) {
            return -1;
        }
        c = *j->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, j->p++) {
                if (j->p >= j->end || ar_hex_digit(*j->p) < 0) {
                    return -1;
                }
            }
        } else if (c == 0 || strchr("\"\\/bfnrt", c) == NULL) {
            return -1;
        }
    }
    return -1;
}

static int js_digits(struct jscan *j)
{
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }
    return j->p > start ? 0 : -1;
}

static int js_number(struct jscan *j)
{
    if (*j->p == '-') {
        j->p++;
    }
    if (j->p < j->end && *j->p == '0') {
        j->p++;
    } else if (js_digits(j) != 0) {
        return -1;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (js_digits(j) != 0) {
            return -1;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (js_digits(j) != 0) {
            return -1;
        }
    }
    return 0;
}

static int js_value(struct jscan *j)
{
    js_space(j);
    if (j->p >= j->end) {
        return -1;
    }
    switch (*j->p) {
    case '"':
        return js_string(j);
    case 't':
        return js_literal(j, "true", 4);
    case 'f':
        return js_literal(j, "false", 5);
    case 'n':
        return js_literal(j, "null", 4);
    case '{':
    case '[':
        break;
    default:
        return js_number(j);
    }
    unsigned char close = *j->p == '{' ? '}' : ']';
    if (++j->depth > JSON_MAX_DEPTH) {
        j->too_deep = 1;
        return -1;
    }
    j->p++;
    js_space(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            js_space(j);
            if (j->p >= j->end || *j->p != '"' || js_string(j) != 0) {
                return -1;
            }
            js_space(j);
            if (j->p >= j->end || *j->p != ':') {
                return -1;
            }
            j->p++;
        }
        if (js_value(j) != 0) {
            return -1;
        }
        js_space(j);
        if (j->p >= j->end) {
            return -1;
        }
        if (*j->p == ',') {
            j->p++;
        } else if (*j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        } else {
            return -1;
        }
    }
}

int ar_webhook_json_check(const char *text, size_t len, char *why, size_t why_len)
{
    struct jscan j = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0};
    if (!ar_utf8_valid(text, len)) {
        snprintf(why, why_len, "the body is not UTF-8");
        return AR_EINVAL;
    }
    int rc = js_value(&j);
    if (rc == 0) {
        js_space(&j);
        rc = j.p == j.end ? 0 : -1;
    }
    if (rc == 0) {
        return 0;
    }
    if (j.too_deep) {
        snprintf(why, why_len, "nested more than %d levels deep", JSON_MAX_DEPTH);
    } else {
        snprintf(why, why_len, "invalid json (at offset %zu)",
                 (size_t)(j.p - (const unsigned char *)text));
    }
    return AR_EINVAL;
}

struct probe {
    const char *body;
    size_t len;
    int want_id; /* read the top-level "id" (Stripe's event id) */
    char *id;    /* owned, out */
};

static duk_ret_t probe_safe(duk_context *ctx, void *udata)
{
    struct probe *p = udata;
    duk_push_lstring(ctx, p->body, p->len);
    duk_json_decode(ctx, -1);
    /* A decoded plain object has no getters, so reading it cannot throw. */
    if (duk_is_object(ctx, -1)) {
        duk_get_prop_string(ctx, -1, "id");
        if (duk_is_string(ctx, -1)) {
            p->id = ar_strdup(duk_get_string(ctx, -1));
        }
        duk_pop(ctx);
    }
    return 0;
}

/* 0 when the body is JSON; else AR_EINVAL with the reason in why. Only a body whose top-level
 * "id" is wanted goes through the VM's parser too. */
static int probe_json(struct ar_engine *e, struct probe *p, char *why, size_t why_len)
{
    int rc = ar_webhook_json_check(p->body, p->len, why, why_len);
    if (rc != 0 || !p->want_id) {
        return rc;
    }
    duk_context *ctx = e->vm->ctx;
    if (duk_safe_call(ctx, probe_safe, p, 0, 1) != DUK_EXEC_SUCCESS) {
        duk_get_prop_string(ctx, -1, "message");
        snprintf(why, why_len, "%s", duk_safe_to_string(ctx, -1));
        duk_pop(ctx);
        rc = AR_EINVAL;
    }
    duk_pop(ctx);
    return rc;
}

/* application/json, text/json or anything +json, parameters ignored. */
static int is_json_type(const char *ct)
{
    if (ct == NULL) {
        return 0;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n == 9 && strncasecmp(ct, "text/json", 9) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* ---- answers ---- */

static void answer(struct ar_webhooks *w, struct ar_http_req *req, int status, const char *body)
{
    struct ar_header hdrs[2] = {{"Content-Type", "application/json"}, {"Connection", "close"}};
    size_t n = w->stopping ? 2 : 1;
    if (body == NULL) {
        body = "";
    }
    ar_metrics_response(w->metrics, status);
    int rc = ar_http_respond(req, status, hdrs, n, body, strlen(body));
    if (rc == AR_ENOMEM || rc == AR_EINVAL) {
        /* The request is still ours: answer it without frills so it is released. */
        ar_http_respond(req, 500, NULL, 0, NULL, 0);
    }
}

static void answerf(struct ar_webhooks *w, struct ar_http_req *req, int status, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static void answerf(struct ar_webhooks *w, struct ar_http_req *req, int status, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = ar_vasprintf(fmt, ap);
    va_end(ap);
    answer(w, req, status, body);
    free(body);
}

/* {"error": "..."} */
static void answer_error(struct ar_webhooks *w, struct ar_http_req *req, int status,
                         const char *message)
{
    struct ar_buf b = {0};
    ar_buf_puts(&b, "{\"error\":");
    ar_buf_json_string(&b, message);
    ar_buf_puts(&b, "}");
    answer(w, req, status, b.data);
    ar_buf_free(&b);
}

/* ---- waiting for a result ---- */

static void waiter_close_cb(uv_handle_t *h)
{
    struct waiter *wt = ar_container_of(h, struct waiter, timer);
    free(wt->recipe);
    free(wt);
}

/* The request has been answered (or released): forget the waiter. */
static void waiter_finish(struct waiter *wt)
{
    struct ar_webhooks *w = wt->w;
    wt->prev->next = wt->next;
    wt->next->prev = wt->prev;
    w->n_waiters--;
    if (wt->watch) {
        ar_queue_unwatch(wt->watch);
        wt->watch = NULL;
    }
    if (wt->req) {
        wt->req->data = NULL;
        wt->req = NULL;
    }
    uv_close((uv_handle_t *)&wt->timer, waiter_close_cb);
}

static void waiter_done_cb(void *data, const struct ar_queue_result *r)
{
    struct waiter *wt = data;
    struct ar_webhooks *w = wt->w;
    wt->watch = NULL; /* released by the queue */
    struct ar_buf b = {0};
    int status;
    if (strcmp(r->status, "succeeded") == 0) {
        status = 200;
        ar_buf_puts(&b, r->result_json ? r->result_json : "null");
    } else {
        status = 500;
        ar_buf_printf(&b, "{\"runId\":%lld,\"status\":", (long long)r->run_id);
        ar_buf_json_string(&b, r->status);
        ar_buf_puts(&b, ",\"error\":");
        if (r->error) {
            ar_buf_json_string(&b, r->error);
        } else {
            ar_buf_puts(&b, "null");
        }
        ar_buf_puts(&b, "}");
    }
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)r->run_id);
    struct ar_header hdrs[3] = {{"Content-Type", "application/json"}, {"X-Autorun-Run-Id", id},
                                {"Connection", "close"}};
    ar_metrics_response(w->metrics, status);
    if (ar_http_respond(wt->req, status, hdrs, w->stopping ? 3 : 2, b.data, b.len) ==
        AR_ENOMEM) {
        ar_http_respond(wt->req, 500, NULL, 0, NULL, 0);
    }
    ar_log_info("webhook", "%s: run %lld %s; answered %d", wt->recipe, (long long)r->run_id,
                r->status, status);
    ar_buf_free(&b);
    wt->req = NULL;
    waiter_finish(wt);
}

static void waiter_timer_cb(uv_timer_t *t)
{
    struct waiter *wt = ar_container_of(t, struct waiter, timer);
    char limit[32];
    ar_format_duration(wt->timeout_ms, limit, sizeof(limit));
    answerf(wt->w, wt->req, 504,
            "{\"runId\":%lld,\"status\":\"running\",\"error\":\"the run did not finish within %s; "
            "see autorun show %lld\"}",
            (long long)wt->run_id, limit, (long long)wt->run_id);
    ar_log_warn("webhook", "%s: run %lld did not finish within %s; answered 504", wt->recipe,
                (long long)wt->run_id, limit);
    wt->req = NULL;
    waiter_finish(wt);
}

static void waiter_start(struct ar_webhooks *w, struct pending *p)
{
    struct waiter *wt = ar_calloc(1, sizeof(*wt));
    wt->w = w;
    wt->req = p->req;
    wt->run_id = p->run_id;
    wt->timeout_ms = p->timeout_ms;
    wt->recipe = ar_strdup(p->recipe);
    p->req->data = wt;
    wt->next = w->waiters.next;
    wt->prev = &w->waiters;
    w->waiters.next->prev = wt;
    w->waiters.next = wt;
    w->n_waiters++;
    uv_timer_init(&w->e->loop, &wt->timer);
    uv_timer_start(&wt->timer, waiter_timer_cb, (uint64_t)p->timeout_ms, 0);
    ar_queue_watch(w->q, p->run_id, waiter_done_cb, wt, &wt->watch);
}

void ar_webhooks_abort(struct ar_webhooks *w, struct ar_http_req *req)
{
    struct waiter *wt = req->data;
    if (wt == NULL) {
        /* Pending: the flush answers it, which releases it. */
        return;
    }
    ar_log_info("webhook", "%s: the client of run %lld went away before its result",
                wt->recipe, (long long)wt->run_id);
    ar_http_respond(req, 500, NULL, 0, NULL, 0); /* only releases it */
    wt->req = NULL;
    waiter_finish(wt);
}

/* ---- routes ---- */

static void route_free(struct route *r)
{
    free(r->path);
    free(r->recipe);
    free(r->problem);
    free(r->secret_name);
    free(r->header);
    free(r->prefix);
    free(r->algorithm);
    free(r->encoding);
    free(r->timestamp_header);
    free(r->timestamp_sep);
    free(r->callback_url);
    free(r->delivery_header);
    free(r);
}

static char *normalized_path(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        n--;
    }
    return ar_strndup(path, n);
}

static struct route *route_find(struct ar_webhooks *w, const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        n--;
    }
    for (struct route *r = w->routes; r; r = r->next) {
        if (strlen(r->path) == n && memcmp(r->path, path, n) == 0) {
            return r;
        }
    }
    return NULL;
}

/* obj[key] as an owned string, or NULL when absent or not a string. */
static char *get_str(duk_context *ctx, duk_idx_t obj, const char *key)
{
    duk_get_prop_string(ctx, obj, key);
    char *s = duk_is_string(ctx, -1) ? ar_strdup(duk_get_string(ctx, -1)) : NULL;
    duk_pop(ctx);
    return s;
}

/* obj[key] as a duration ('30s' or milliseconds); def when absent, -1 when malformed. */
static int64_t get_duration(duk_context *ctx, duk_idx_t obj, const char *key, int64_t def,
                            int seconds)
{
    int64_t ms = def;
    duk_get_prop_string(ctx, obj, key);
    if (duk_is_number(ctx, -1)) {
        double v = duk_get_number(ctx, -1);
        ms = v > 0 && v < 1e12 ? (int64_t)(seconds ? v * 1000 : v) : -1;
    } else if (duk_is_string(ctx, -1)) {
        if (ar_parse_duration(duk_get_string(ctx, -1), &ms) != 0 || ms <= 0) {
            ms = -1;
        }
    } else if (!duk_is_undefined(ctx, -1)) {
        ms = -1;
    }
    duk_pop(ctx);
    return ms;
}

static void route_problem(struct route *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void route_problem(struct route *rt, const char *fmt, ...)
{
    if (rt->problem) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rt->problem = ar_strdup(msg);
}

/* Reads the trigger at t (an object with a webhook path) into a route. */
static struct route *route_read(duk_context *ctx, duk_idx_t t, const char *recipe,
                                const char *path)
{
    struct route *rt = ar_calloc(1, sizeof(*rt));
    rt->path = normalized_path(path);
    rt->recipe = ar_strdup(recipe);
    char *respond = get_str(ctx, t, "respond");
    rt->respond_result = respond && strcmp(respond, "result") == 0;
    if (respond && !rt->respond_result && strcmp(respond, "accepted") != 0) {
        route_problem(rt, "respond must be 'accepted' or 'result', not '%s'", respond);
    }
    free(respond);
    rt->result_timeout_ms = get_duration(ctx, t, "timeout", AR_WEBHOOK_RESULT_TIMEOUT_MS, 0);
    if (rt->result_timeout_ms < 0) {
        route_problem(rt, "timeout must be a duration such as '30s'");
    }
    rt->delivery_header = get_str(ctx, t, "deliveryHeader");

    duk_get_prop_string(ctx, t, "verify");
    if (duk_is_object(ctx, -1)) {
        duk_idx_t v = duk_get_top_index(ctx);
        char *scheme = get_str(ctx, v, "scheme");
        if (scheme == NULL || ar_verify_spec_parse_scheme(scheme, &rt->spec.scheme) != 0) {
            route_problem(rt, "verify.scheme '%s' is not a known scheme", scheme ? scheme : "");
        }
        free(scheme);
        rt->secret_name = get_str(ctx, v, "secret");
        if (rt->secret_name == NULL && rt->spec.scheme != AR_VERIFY_NONE) {
            route_problem(rt, "verify.secret must name a secret");
        }
        rt->spec.header = rt->header = get_str(ctx, v, "header");
        rt->spec.prefix = rt->prefix = get_str(ctx, v, "prefix");
        rt->spec.algorithm = rt->algorithm = get_str(ctx, v, "algorithm");
        rt->spec.encoding = rt->encoding = get_str(ctx, v, "encoding");
        rt->spec.timestamp_header = rt->timestamp_header = get_str(ctx, v, "timestampHeader");
        rt->spec.timestamp_sep = rt->timestamp_sep = get_str(ctx, v, "timestampSeparator");
        rt->callback_url = get_str(ctx, v, "callbackUrl");
        int64_t tol = get_duration(ctx, v, "tolerance", 0, 1);
        if (tol < 0) {
            route_problem(rt, "verify.tolerance must be a duration such as '5m'");
        }
        rt->spec.tolerance_s = tol / 1000;
        char why[256];
        if (rt->problem == NULL && ar_verify_spec_check(&rt->spec, why, sizeof(why)) != 0) {
            route_problem(rt, "verify: %s", why);
        }
    } else if (!duk_is_undefined(ctx, -1)) {
        route_problem(rt, "verify must be an object {scheme, secret}");
    }
    duk_pop(ctx);
    return rt;
}

/* Adds rt unless another recipe has the path: the recipe whose name sorts first keeps it. */
static void route_add(struct ar_webhooks *w, struct route *rt)
{
    for (struct route **p = &w->routes; *p; p = &(*p)->next) {
        struct route *o = *p;
        if (strcmp(o->path, rt->path) != 0) {
            continue;
        }
        struct route *loser = rt;
        if (strcmp(rt->recipe, o->recipe) < 0) {
            rt->next = o->next;
            *p = rt;
            loser = o;
        }
        ar_log_error("webhook", "%s: webhook %s is already %s's; this trigger is ignored",
                     loser->recipe, loser->path, loser == o ? rt->recipe : o->recipe);
        route_free(loser);
        return;
    }
    rt->next = w->routes;
    w->routes = rt;
    w->n_routes++;
}

static void add_trigger(duk_context *ctx, int t, struct ar_recipe *r, void *data)
{
    struct ar_webhooks *w = data;
    char *path = get_str(ctx, t, "webhook");
    if (path && path[0] == '/') {
        struct route *rt = route_read(ctx, t, r->name, path);
        if (rt->problem) {
            ar_log_error("webhook", "%s: webhook %s: %s; it answers 500 until fixed", r->name,
                         rt->path, rt->problem);
        } else if (rt->spec.scheme == AR_VERIFY_NONE) {
            ar_log_warn("webhook", "%s: webhook %s has no verify: anyone who can reach it can "
                                   "start the recipe",
                        r->name, rt->path);
        }
        route_add(w, rt);
    } else if (path) {
        ar_log_error("webhook", "%s: webhook '%s' must start with /", r->name, path);
    }
    free(path);
}

static int recipe_loaded(struct ar_engine *e, const char *name)
{
    for (struct ar_recipe *r = e->recipes; r; r = r->next) {
        if (strcmp(r->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int recipe_file_exists(struct ar_engine *e, const char *name)
{
    char *file = ar_asprintf("%s.js", name);
    char *path = ar_path_join(e->cfg->recipes_dir, file);
    struct stat st;
    int exists = stat(path, &st) == 0;
    free(path);
    free(file);
    return exists;
}

size_t ar_webhooks_load(struct ar_webhooks *w)
{
    struct route *old = w->routes;
    w->routes = NULL;
    w->n_routes = 0;
    ar__recipes_each_trigger(w->e, add_trigger, w);
    /* A recipe that stopped loading at a reload (an edit with a syntax error) keeps its paths,
     * answering 503: senders retry a 5xx, while a 404 would make them drop the event. A recipe
     * whose file is gone loses its paths. */
    while (old) {
        struct route *r = old;
        old = r->next;
        if (route_find(w, r->path) == NULL && !recipe_loaded(w->e, r->recipe) &&
            recipe_file_exists(w->e, r->recipe)) {
            r->stale = 1;
            r->next = w->routes;
            w->routes = r;
            w->n_routes++;
            ar_log_error("webhook", "%s: webhook %s answers 503 until the recipe loads again",
                         r->recipe, r->path);
        } else {
            route_free(r);
        }
    }
    return w->n_routes;
}

/* ---- requests ---- */

static void log_answer(const struct ar_http_req *req, int status, const char *recipe,
                       int64_t run_id, const char *what)
{
    if (status < 400) {
        ar_log_info("webhook", "%s %s from %s -> %d%s%s%s run %lld%s", req->method, req->path,
                    req->remote_addr, status, recipe ? " (" : "", recipe ? recipe : "",
                    recipe ? ")" : "", (long long)run_id, what);
    } else {
        ar_log_warn("webhook", "%s %s from %s -> %d%s%s%s: %s", req->method, req->path,
                    req->remote_addr, status, recipe ? " (" : "", recipe ? recipe : "",
                    recipe ? ")" : "", what);
    }
}

/* 0 when the delivery is authentic; else the status to answer, with why filled in. */
static int verify(struct ar_webhooks *w, struct route *rt, struct ar_http_req *req,
                  const char **secret, char *why, size_t why_len)
{
    *secret = NULL;
    if (rt->spec.scheme == AR_VERIFY_NONE) {
        return 0;
    }
    char err[512];
    if (ar__engine_secret(w->e, rt->secret_name, secret, err, sizeof(err)) != 0) {
        snprintf(why, why_len, "%s", err);
        return 500;
    }
    char *callback = NULL;
    if (rt->spec.scheme == AR_VERIFY_TRELLO && rt->callback_url == NULL) {
        /* Trello signs the callback URL it was given; behind a proxy set verify.callbackUrl. */
        const char *host = ar_http_req_header(req, "Host");
        const char *proto = ar_http_req_header(req, "X-Forwarded-Proto");
        callback = ar_asprintf("%s://%s%s", proto ? proto : "http", host ? host : "localhost",
                               req->url);
    }
    struct ar_verify_input in = {
        .headers = req->headers,
        .n_headers = req->n_headers,
        .body = req->body,
        .body_len = req->body_len,
        .callback_url = rt->callback_url ? rt->callback_url : callback,
        .now_s = ar_now_ms() / 1000,
    };
    int rc = ar_verify(&rt->spec, *secret, strlen(*secret), &in, why, why_len);
    free(callback);
    if (rc == AR_EVERIFY || rc == AR_ESTALE) {
        return 401;
    }
    return rc == 0 ? 0 : 500;
}

static char *redacted_event(struct ar_webhooks *w, struct route *rt, const char *secret,
                            char *event)
{
    struct ar_redactor red = {0};
    if (secret) {
        ar_redactor_add(&red, secret);
    }
    struct ar_recipe *r;
    char err[512];
    if (ar_engine_recipe(w->e, rt->recipe, &r, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < r->n_secrets; i++) {
            const char *v;
            if (ar__engine_secret(w->e, r->secrets[i], &v, err, sizeof(err)) == 0) {
                ar_redactor_add(&red, v);
            }
        }
    }
    char *out = ar_redact(&red, event);
    ar_redactor_free(&red);
    if (out) {
        free(event);
        return out;
    }
    return event;
}

void ar_webhooks_handle(struct ar_webhooks *w, struct ar_http_req *req)
{
    req->data = NULL;
    if (w->stopping) {
        log_answer(req, 503, NULL, 0, "stopping");
        answer_error(w, req, 503, "autorun is stopping; retry later");
        return;
    }
    struct route *rt = route_find(w, req->path);
    if (rt == NULL) {
        char *msg = ar_asprintf("no webhook at %s", req->path);
        log_answer(req, 404, NULL, 0, "no such webhook");
        answer_error(w, req, 404, msg);
        free(msg);
        return;
    }
    if (strcmp(req->method, "HEAD") == 0) {
        /* Trello checks a callback URL with HEAD before it sends anything. */
        log_answer(req, 200, rt->recipe, 0, " (HEAD, nothing queued)");
        answer(w, req, 200, "");
        return;
    }
    if (rt->stale) {
        log_answer(req, 503, rt->recipe, 0, "the recipe does not load");
        answer_error(w, req, 503, "the recipe behind this webhook does not load; retry later");
        return;
    }
    if (rt->problem) {
        log_answer(req, 500, rt->recipe, 0, rt->problem);
        answer_error(w, req, 500, "this webhook is misconfigured; see the service log");
        return;
    }
    char why[512] = "";
    const char *secret;
    int status = verify(w, rt, req, &secret, why, sizeof(why));
    if (status != 0) {
        log_answer(req, status, rt->recipe, 0, why);
        answer_error(w, req, status, status == 401 ? "the delivery does not verify"
                                                   : "cannot verify deliveries; see the log");
        return;
    }

    /* A JSON body must parse; a body without a content type that looks like JSON is tried. */
    const char *ct = ar_http_req_header(req, "Content-Type");
    int json_ct = is_json_type(ct);
    const char *b = req->body;
    while (b < req->body + req->body_len && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')) {
        b++;
    }
    int looks_json = ct == NULL && b < req->body + req->body_len && (*b == '{' || *b == '[');
    struct probe p = {.body = req->body, .len = req->body_len,
                      .want_id = rt->spec.scheme == AR_VERIFY_STRIPE};
    int json_ok = 0;
    if (json_ct || looks_json) {
        json_ok = probe_json(w->e, &p, why, sizeof(why)) == 0;
        if (!json_ok && json_ct) {
            char *msg = ar_asprintf("malformed JSON: %s", why);
            log_answer(req, 400, rt->recipe, 0, msg);
            answer_error(w, req, 400, msg);
            free(msg);
            return;
        }
    }

    const char *dh = rt->delivery_header ? rt->delivery_header
                                         : ar_verify_delivery_header(rt->spec.scheme);
    const char *delivery = p.id ? p.id : dh ? ar_http_req_header(req, dh) : NULL;
    char *key = delivery && *delivery ? ar_asprintf("webhook %s %s", rt->path, delivery) : NULL;

    char *event = redacted_event(w, rt, secret, ar_webhook_event_json(req, json_ok));
    struct ar_queue_event ev = {
        .recipe = rt->recipe,
        .trigger = "webhook",
        .input_json = event,
        .dedup_key = key,
        .dedup_ttl_ms = AR_WEBHOOK_DEDUP_TTL_MS,
    };
    int64_t run_id = 0;
    enum ar_queue_outcome outcome;
    int rc = ar_queue_push(w->q, &ev, &run_id, &outcome);
    free(event);
    free(key);
    free(p.id);
    if (rc != 0) {
        log_answer(req, 503, rt->recipe, 0, "cannot record the event");
        answer_error(w, req, 503, "the event could not be recorded; retry later");
        return;
    }
    struct pending *pd = ar_calloc(1, sizeof(*pd));
    pd->req = req;
    pd->recipe = ar_strdup(rt->recipe);
    pd->run_id = run_id;
    pd->duplicate = outcome == AR_QUEUE_DUPLICATE;
    pd->respond_result = rt->respond_result && outcome == AR_QUEUE_QUEUED;
    pd->timeout_ms = rt->result_timeout_ms;
    *w->pending_tail = pd;
    w->pending_tail = &pd->next;
    w->n_pending++;
}

/* Answers a request whose commit ended (rc 0: the event is on disk) and frees pd. */
static void answer_pending(struct ar_webhooks *w, struct pending *pd, int rc)
{
    struct ar_http_req *req = pd->req;
    /* Logged before the answer: answering hands req back to the server, which frees it. */
    if (rc != 0) {
        log_answer(req, 503, pd->recipe, 0, "the commit failed");
        answer_error(w, req, 503, "the event could not be recorded; retry later");
    } else if (pd->duplicate) {
        log_answer(req, 200, pd->recipe, pd->run_id, " (a delivery seen before: not run again)");
        answerf(w, req, 200, "{\"runId\":%lld,\"duplicate\":true}", (long long)pd->run_id);
    } else if (pd->respond_result && !ar_http_req_aborted(req)) {
        log_answer(req, 202, pd->recipe, pd->run_id, " queued; the answer waits for it");
        waiter_start(w, pd);
    } else {
        log_answer(req, 202, pd->recipe, pd->run_id, " queued");
        answerf(w, req, 202, "{\"runId\":%lld}", (long long)pd->run_id);
    }
    free(pd->recipe);
    free(pd);
}

/* Answers the committed requests whose commit is on disk now (or whose sync failed). */
static void release_committed(struct ar_webhooks *w, uint64_t upto, int rc)
{
    while (w->committed && w->committed->commit <= upto) {
        struct pending *pd = w->committed;
        w->committed = pd->next;
        if (w->committed == NULL) {
            w->committed_tail = &w->committed;
        }
        w->n_committed--;
        answer_pending(w, pd, rc);
    }
}

static void durable_cb(void *data, uint64_t upto, int status)
{
    release_committed(data, upto, status);
}

void ar_webhooks_flush(struct ar_webhooks *w)
{
    if (w->pending) {
        /* A duplicate delivery writes nothing but still waits for a sync. */
        ar_queue_want_durable(w->q);
    }
    int rc = ar_queue_commit(w->q);
    uint64_t commit = ar_queue_committed(w->q);
    struct pending *pd = w->pending;
    w->pending = NULL;
    w->pending_tail = &w->pending;
    w->n_pending = 0;
    while (pd) {
        struct pending *next = pd->next;
        if (rc != 0) {
            answer_pending(w, pd, rc);
        } else {
            /* The answer waits for the sync that puts this commit on disk. */
            pd->commit = commit;
            pd->next = NULL;
            *w->committed_tail = pd;
            w->committed_tail = &pd->next;
            w->n_committed++;
        }
        pd = next;
    }
    release_committed(w, ar_queue_durable(w->q), 0);
}

void ar_webhooks_stop(struct ar_webhooks *w)
{
    w->stopping = 1;
}

size_t ar_webhooks_waiting(const struct ar_webhooks *w)
{
    return w->n_pending + w->n_committed + w->n_waiters;
}

int ar_webhooks_create(struct ar_engine *e, struct ar_queue *q, struct ar_metrics *metrics,
                       struct ar_webhooks **out)
{
    struct ar_webhooks *w = ar_calloc(1, sizeof(*w));
    w->e = e;
    w->q = q;
    w->metrics = metrics;
    w->pending_tail = &w->pending;
    w->committed_tail = &w->committed;
    w->waiters.next = w->waiters.prev = &w->waiters;
    ar_queue_on_durable(q, durable_cb, w);
    *out = w;
    return 0;
}

void ar_webhooks_destroy(struct ar_webhooks *w)
{
    if (w == NULL) {
        return;
    }
    w->stopping = 1;
    ar_webhooks_flush(w);
    /* Committed events are answered as promised once on disk: sync them now. */
    ar_queue_sync(w->q);
    release_committed(w, UINT64_MAX, AR_EIO);
    ar_queue_on_durable(w->q, NULL, NULL);
    while (w->waiters.next != &w->waiters) {
        struct waiter *wt = w->waiters.next;
        answerf(w, wt->req, 503,
                "{\"runId\":%lld,\"status\":\"running\",\"error\":\"autorun is stopping; see "
                "autorun show %lld\"}",
                (long long)wt->run_id, (long long)wt->run_id);
        wt->req = NULL;
        waiter_finish(wt);
    }
    while (w->routes) {
        struct route *r = w->routes;
        w->routes = r->next;
        route_free(r);
    }
    free(w);
}
