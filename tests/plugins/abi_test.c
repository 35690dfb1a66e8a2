/* Test plugin (never installed): uses every function of the plugin API so the tests can check
 * each one from a recipe: arguments and results of every type, errors, suspension resolved and
 * rejected from a libuv timer, settled at once, cancelled; settings, logs, the allocator, a
 * global with JS glue, and poll sources (at once, later, failing, cancelled). */
#include "autorun/plugin.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

static struct ar_plugin_host *host;
static int cancelled;      /* pendings cancelled by an aborted run */
static int polls_cancelled;
static int late_rc;        /* what a registration outside open() returned */

/* ---- Plain functions ---- */

static int abi_add(struct ar_js_call *call)
{
    double a, b;
    int rc;
    if ((rc = ar_js_arg_number(call, 0, &a)) != 0 || (rc = ar_js_arg_number(call, 1, &b)) != 0) {
        return rc;
    }
    return ar_js_return_number(call, a + b);
}

static int abi_concat(struct ar_js_call *call)
{
    const char *a, *b;
    size_t la, lb;
    int rc;
    if ((rc = ar_js_arg_string(call, 0, &a, &la)) != 0 ||
        (rc = ar_js_arg_string(call, 1, &b, &lb)) != 0) {
        return rc;
    }
    char *s = ar_plugin_malloc(la + lb);
    if (s == NULL) {
        return AR_PLUGIN_ENOMEM;
    }
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    rc = ar_js_return_string(call, s, la + lb);
    ar_plugin_free(s);
    return rc;
}

static int abi_not(struct ar_js_call *call)
{
    int b;
    int rc = ar_js_arg_bool(call, 0, &b);
    return rc ? rc : ar_js_return_bool(call, !b);
}

static int abi_nothing(struct ar_js_call *call)
{
    return ar_js_return_null(call);
}

static int abi_undefined(struct ar_js_call *call)
{
    return 0;
}

/* echo(v): the value through JSON both ways. */
static int abi_echo(struct ar_js_call *call)
{
    char *json;
    int rc = ar_js_arg_json(call, 0, &json);
    if (rc != 0) {
        return rc;
    }
    rc = ar_js_return_json(call, json);
    ar_plugin_free(json);
    return rc;
}

static int abi_types(struct ar_js_call *call)
{
    static const char *const names[] = {"undefined", "null",  "boolean", "number",
                                        "string",    "array", "object",  "function"};
    char out[256] = "";
    for (int i = 0; i < ar_js_argc(call) && i < 8; i++) {
        strcat(out, i ? "," : "");
        strcat(out, names[ar_js_arg_type(call, i)]);
    }
    return ar_js_return_string(call, out, strlen(out));
}

static int abi_fail(struct ar_js_call *call)
{
    const char *msg;
    size_t n;
    int rc = ar_js_arg_string(call, 0, &msg, &n);
    return rc ? rc : ar_js_throwf(call, "AbiError", "failed on purpose: %.*s", (int)n, msg);
}

static int abi_fail_code(struct ar_js_call *call)
{
    return AR_PLUGIN_ENOMEM;
}

static int abi_bad_json(struct ar_js_call *call)
{
    ar_js_return_json(call, "{\"unterminated\": ");
    return 0;
}

static int abi_setting(struct ar_js_call *call)
{
    const char *key;
    size_t n;
    int rc = ar_js_arg_string(call, 0, &key, &n);
    if (rc != 0) {
        return rc;
    }
    const char *v = ar_plugin_setting(ar_js_host(call), key);
    return v ? ar_js_return_string(call, v, strlen(v)) : ar_js_return_null(call);
}

static int abi_log(struct ar_js_call *call)
{
    double level;
    const char *msg;
    size_t n;
    int rc;
    if ((rc = ar_js_arg_number(call, 0, &level)) != 0 ||
        (rc = ar_js_arg_string(call, 1, &msg, &n)) != 0) {
        return rc;
    }
    ar_plugin_log(ar_js_host(call), (enum ar_plugin_log_level)(int)level, "abi_test says %.*s",
                  (int)n, msg);
    return 0;
}

/* alloc(n): grows a block to n bytes with the API's allocator and checks it kept its bytes. */
static int abi_alloc(struct ar_js_call *call)
{
    double n;
    int rc = ar_js_arg_number(call, 0, &n);
    if (rc != 0) {
        return rc;
    }
    if (n < 1 || n > 1 << 24) {
        return ar_js_throw(call, "RangeError", "alloc(n): 1 <= n <= 16M");
    }
    unsigned char *p = ar_plugin_malloc(1);
    if (p == NULL) {
        return AR_PLUGIN_ENOMEM;
    }
    p[0] = 0xA5;
    unsigned char *q = ar_plugin_realloc(p, (size_t)n);
    if (q == NULL) {
        ar_plugin_free(p);
        return AR_PLUGIN_ENOMEM;
    }
    memset(q + 1, 0x5A, (size_t)n - 1);
    int ok = q[0] == 0xA5 && q[(size_t)n - 1] == ((size_t)n > 1 ? 0x5A : 0xA5);
    ar_plugin_free(q);
    return ar_js_return_bool(call, ok);
}

static int abi_dry_run(struct ar_js_call *call)
{
    return ar_js_return_bool(call, ar_js_dry_run(call));
}

static int abi_name(struct ar_js_call *call)
{
    const char *n = ar_plugin_name(ar_js_host(call));
    return ar_js_return_string(call, n, strlen(n));
}

static int abi_counters(struct ar_js_call *call)
{
    char json[160];
    snprintf(json, sizeof(json), "{\"cancelled\":%d,\"pollsCancelled\":%d,\"lateRc\":%d}",
             cancelled, polls_cancelled, late_rc);
    return ar_js_return_json(call, json);
}

/* registerLate(): registration is only allowed in open(); returns what the API said. */
static int abi_register_late(struct ar_js_call *call)
{
    static const struct ar_js_function none[] = {{NULL, NULL}};
    late_rc = ar_plugin_add_global(ar_js_host(call), "tooLate", none, NULL);
    return ar_js_return_number(call, late_rc);
}

/* ---- Suspending: a timer settles the call ---- */

enum settle_how { SETTLE_JSON, SETTLE_STRING, SETTLE_REJECT, SETTLE_NEVER };

struct waiter {
    uv_timer_t timer;
    struct ar_pending *pending;
    enum settle_how how;
    char *text; /* the plugin's copy of the argument: JS strings do not outlive the call */
};

static void waiter_close_cb(uv_handle_t *h)
{
    struct waiter *w = (struct waiter *)h;
    ar_plugin_free(w->text);
    ar_plugin_free(w);
}

static void waiter_timer_cb(uv_timer_t *t)
{
    struct waiter *w = (struct waiter *)t;
    struct ar_pending *p = w->pending;
    w->pending = NULL;
    switch (w->how) {
    case SETTLE_JSON: ar_pending_resolve_json(p, w->text); break;
    case SETTLE_STRING: ar_pending_resolve_string(p, w->text, strlen(w->text)); break;
    case SETTLE_REJECT: ar_pending_reject(p, "AbiError", w->text); break;
    case SETTLE_NEVER: break;
    }
    uv_close((uv_handle_t *)&w->timer, waiter_close_cb);
}

static void waiter_cancel(struct ar_pending *p, void *data)
{
    struct waiter *w = data;
    cancelled++;
    uv_close((uv_handle_t *)&w->timer, waiter_close_cb);
}

/* later(ms, value) / laterString(ms, s) / reject(ms, message) / hang(). */
static int start_waiter(struct ar_js_call *call, enum settle_how how)
{
    double ms = 0;
    char *text = NULL;
    int rc = 0;
    if (how != SETTLE_NEVER && (rc = ar_js_arg_number(call, 0, &ms)) != 0) {
        return rc;
    }
    if (how == SETTLE_JSON) {
        rc = ar_js_arg_json(call, 1, &text);
    } else if (how != SETTLE_NEVER) {
        const char *s;
        size_t n;
        if ((rc = ar_js_arg_string(call, 1, &s, &n)) == 0) {
            text = ar_plugin_malloc(n + 1);
            memcpy(text, s, n);
            text[n] = '\0';
        }
    }
    if (rc != 0) {
        return rc;
    }
    struct waiter *w = ar_plugin_malloc(sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->how = how;
    w->text = text;
    w->pending = ar_js_suspend(call, waiter_cancel, w);
    if (w->pending == NULL) {
        ar_plugin_free(w->text);
        ar_plugin_free(w);
        return AR_PLUGIN_EINVAL;
    }
    uv_timer_init(ar_plugin_loop(ar_js_host(call)), &w->timer);
    uv_timer_start(&w->timer, waiter_timer_cb, how == SETTLE_NEVER ? 3600000 : (uint64_t)ms, 0);
    return 0;
}

static int abi_later(struct ar_js_call *call)
{
    return start_waiter(call, SETTLE_JSON);
}

static int abi_later_string(struct ar_js_call *call)
{
    return start_waiter(call, SETTLE_STRING);
}

static int abi_reject(struct ar_js_call *call)
{
    return start_waiter(call, SETTLE_REJECT);
}

static int abi_hang(struct ar_js_call *call)
{
    return start_waiter(call, SETTLE_NEVER);
}

/* now(v): suspends, then settles before returning: the call must not wait. */
static int abi_now(struct ar_js_call *call)
{
    char *json;
    int rc = ar_js_arg_json(call, 0, &json);
    if (rc != 0) {
        return rc;
    }
    struct ar_pending *p = ar_js_suspend(call, NULL, NULL);
    if (p == NULL) {
        ar_plugin_free(json);
        return AR_PLUGIN_EINVAL;
    }
    ar_pending_resolve_json(p, json);
    ar_plugin_free(json);
    return 0;
}

static const struct ar_js_function abi_functions[] = {
    {"add", abi_add},
    {"concat", abi_concat},
    {"not", abi_not},
    {"nothing", abi_nothing},
    {"undef", abi_undefined},
    {"echo", abi_echo},
    {"types", abi_types},
    {"fail", abi_fail},
    {"failCode", abi_fail_code},
    {"badJson", abi_bad_json},
    {"setting", abi_setting},
    {"log", abi_log},
    {"alloc", abi_alloc},
    {"dryRun", abi_dry_run},
    {"name", abi_name},
    {"counters", abi_counters},
    {"registerLate", abi_register_late},
    {"later", abi_later},
    {"laterString", abi_later_string},
    {"reject", abi_reject},
    {"hang", abi_hang},
    {"now", abi_now},
    {NULL, NULL},
};

/* ---- A global with JS glue ---- */

static int abi_hello(struct ar_js_call *call)
{
    const char *who;
    size_t n;
    int rc = ar_js_arg_string(call, 0, &who, &n);
    if (rc != 0) {
        return rc;
    }
    char out[128];
    snprintf(out, sizeof(out), "hello %.*s", (int)(n > 100 ? 100 : n), who);
    return ar_js_return_string(call, out, strlen(out));
}

static const struct ar_js_function global_functions[] = {
    {"hello", abi_hello},
    {NULL, NULL},
};

static const char global_js[] =
    "exports.greet = function (who) { return native.hello(String(who)) + '!'; };\n"
    "exports.raw = native;\n";

/* ---- Poll sources ---- */

/* items: two items numbered after the cursor, at once; the new cursor is the last one. */
static int poll_items(struct ar_poll *poll, void *data)
{
    const char *cursor = ar_poll_cursor(poll);
    int n = cursor ? atoi(cursor) : 0;
    char items[512], next[32];
    snprintf(items, sizeof(items), "[{\"id\":%d,\"options\":%s},{\"id\":%d,\"tag\":\"%s\"}]", n + 1,
             ar_poll_options(poll), n + 2, (const char *)data);
    snprintf(next, sizeof(next), "%d", n + 2);
    ar_poll_done(poll, items, next);
    return 0;
}

struct poll_wait {
    uv_timer_t timer;
    struct ar_poll *poll;
};

static void poll_wait_close_cb(uv_handle_t *h)
{
    ar_plugin_free(h);
}

static void poll_wait_cb(uv_timer_t *t)
{
    struct poll_wait *w = (struct poll_wait *)t;
    ar_poll_done(w->poll, "[{\"id\":\"later-1\"}]", NULL);
    uv_close((uv_handle_t *)&w->timer, poll_wait_close_cb);
}

static void poll_wait_cancel(struct ar_poll *poll, void *data)
{
    struct poll_wait *w = data;
    polls_cancelled++;
    uv_close((uv_handle_t *)&w->timer, poll_wait_close_cb);
}

/* itemsLater: one item from a timer, 20 ms later; cancellable. */
static int poll_items_later(struct ar_poll *poll, void *data)
{
    struct poll_wait *w = ar_plugin_malloc(sizeof(*w));
    w->poll = poll;
    uv_timer_init(ar_plugin_loop(host), &w->timer);
    uv_timer_start(&w->timer, poll_wait_cb, 20, 0);
    ar_poll_on_cancel(poll, poll_wait_cancel, w);
    return 0;
}

static int poll_items_fail(struct ar_poll *poll, void *data)
{
    ar_poll_fail(poll, "the source is down");
    return 0;
}

static int poll_items_code(struct ar_poll *poll, void *data)
{
    return AR_PLUGIN_EINVAL;
}

static int poll_items_bad(struct ar_poll *poll, void *data)
{
    ar_poll_done(poll, "{\"id\": 1}", NULL);
    return 0;
}

static int abi_open(struct ar_plugin_host *h)
{
    host = h;
    static const struct ar_js_function bad[] = {{"not a name", abi_add}, {NULL, NULL}};
    /* Mistakes are refused without failing the plugin. */
    if (ar_plugin_add_global(h, "1nvalid", global_functions, NULL) == 0 ||
        ar_plugin_add_global(h, "abiBad", bad, NULL) == 0) {
        ar_plugin_fail(h, "a bad registration was accepted");
        return AR_PLUGIN_EINVAL;
    }
    int rc;
    if ((rc = ar_plugin_export_module(h, abi_functions, NULL)) != 0 ||
        (rc = ar_plugin_add_global(h, "abiGlobal", global_functions, global_js)) != 0 ||
        (rc = ar_plugin_add_poll_source(h, "items", poll_items, "tagged")) != 0 ||
        (rc = ar_plugin_add_poll_source(h, "itemsLater", poll_items_later, NULL)) != 0 ||
        (rc = ar_plugin_add_poll_source(h, "itemsFail", poll_items_fail, NULL)) != 0 ||
        (rc = ar_plugin_add_poll_source(h, "itemsCode", poll_items_code, NULL)) != 0 ||
        (rc = ar_plugin_add_poll_source(h, "itemsBad", poll_items_bad, NULL)) != 0) {
        return rc;
    }
    if (ar_plugin_export_module(h, abi_functions, NULL) == 0) {
        ar_plugin_fail(h, "a second module was accepted");
        return AR_PLUGIN_EINVAL;
    }
    const char *greeting = ar_plugin_setting(h, "greeting");
    ar_plugin_log(h, AR_PLUGIN_LOG_DEBUG, "opened (greeting %s)", greeting ? greeting : "unset");
    return 0;
}

const struct ar_plugin abi_test_plugin = {
    .abi_version = AUTORUN_PLUGIN_ABI,
    .name = "abi_test",
    .version = "1.0.0",
    .description = "exercises every function of the plugin API",
    .open = abi_open,
};

AR_PLUGIN_EXPORT(abi_test_plugin)
