/* The plugin API table (include/autorun/plugin.h) and the JS side of native plugins:
 * native.pluginLoad() describes a plugin's module and globals to the prelude, which wraps
 * each function so that native.pluginCall() runs it and, if it suspended, the fiber waits.
 *
 * Plugin code must never be unwound by a Duktape error (longjmp): every API function that
 * touches the heap during a call only reads, or copies into C memory; values are pushed and
 * errors thrown after the plugin's function has returned. */
#include "plugin/loader.h"
#include "internal.h"
#include "core/log.h"
#include "js/vm.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

enum ret_kind { RET_UNDEFINED, RET_NUMBER, RET_BOOL, RET_NULL, RET_STRING, RET_JSON };

struct ar_js_call {
    duk_context *ctx;
    const struct ar__plugin_fn *fn; /* borrowed */
    struct ar_run *run;             /* borrowed; NULL outside a run */
    uint32_t fiber;                 /* 0 outside a run */
    duk_idx_t base;                 /* stack index of the first argument */
    int argc;
    enum ret_kind ret;
    double number;
    char *str; /* owned; RET_STRING or RET_JSON */
    size_t len;
    char *err_name; /* owned, or NULL */
    char *err_msg;  /* owned, or NULL */
    struct ar_pending *pending;
};

struct ar_pending {
    struct ar_op op;
    struct ar_js_call *call; /* borrowed; set while the function that suspended runs */
    const struct ar__plugin_fn *fn;
    ar_pending_cancel_cb cancel;
    void *data;
    int settled; /* settled during the call: the result is in call */
};

struct ar_poll {
    const struct ar__poll_source *src; /* borrowed */
    struct ar_engine *engine;          /* borrowed */
    char *options;                     /* owned */
    char *cursor;                      /* owned, or NULL */
    ar__poll_done_cb done;
    void *done_data;
    ar_poll_cancel_cb cancel;
    void *cancel_data;
    int starting; /* inside the source's function */
    int settled;
};

/* ---- Memory ---- */

static void *api_malloc(size_t size)
{
    return malloc(size ? size : 1);
}

static void *api_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size ? size : 1);
}

static void api_free(void *ptr)
{
    free(ptr);
}

/* ---- Registration and host services ---- */

static int api_export_module(struct ar_plugin_host *h, const struct ar_js_function *list,
                             const char *js)
{
    return ar__plugin_add_object(h, NULL, list, js);
}

static int api_add_global(struct ar_plugin_host *h, const char *name,
                          const struct ar_js_function *list, const char *js)
{
    if (name == NULL) {
        return AR_EINVAL;
    }
    return ar__plugin_add_object(h, name, list, js);
}

static int api_add_poll_source(struct ar_plugin_host *h, const char *name, ar_poll_fn fn,
                               void *data)
{
    return ar__plugin_add_poll(h, name, fn, data);
}

static const char *api_name(struct ar_plugin_host *h)
{
    return h->name;
}

static const char *api_setting(struct ar_plugin_host *h, const char *key)
{
    if (key == NULL || h->engine == NULL) {
        return NULL;
    }
    return ar_config_plugin_setting(h->engine->cfg, h->name, key);
}

static void api_log(struct ar_plugin_host *h, int level, const char *message)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < AR_PLUGIN_LOG_DEBUG || level > AR_PLUGIN_LOG_ERROR) {
        level = AR_PLUGIN_LOG_INFO;
    }
    struct ar_run *run = h->engine ? h->engine->vm->current : NULL;
    if (run != NULL) {
        ar__run_log(run, names[level], message ? message : "");
        return;
    }
    char component[80];
    snprintf(component, sizeof(component), "plugin:%s", h->name);
    ar_log((enum ar_log_level)level, component, "%s", message ? message : "");
}

static void api_open_failed(struct ar_plugin_host *h, const char *message)
{
    free(h->fail);
    h->fail = ar_strdup(message ? message : "unknown error");
}

static struct uv_loop_s *api_loop(struct ar_plugin_host *h)
{
    return h->engine ? &h->engine->loop : NULL;
}

/* ---- Arguments ---- */

static void set_error(struct ar_js_call *c, const char *name, const char *message)
{
    free(c->err_name);
    free(c->err_msg);
    c->err_name = ar_strdup(name ? name : "PluginError");
    c->err_msg = ar_strdup(message ? message : "");
}

static struct ar_plugin_host *api_js_host(struct ar_js_call *c)
{
    return c->fn->host;
}

static int api_js_argc(struct ar_js_call *c)
{
    return c->argc;
}

static int api_js_arg_type(struct ar_js_call *c, int i)
{
    if (i < 0 || i >= c->argc) {
        return AR_JS_UNDEFINED;
    }
    duk_idx_t at = c->base + i;
    switch (duk_get_type(c->ctx, at)) {
    case DUK_TYPE_NULL: return AR_JS_NULL;
    case DUK_TYPE_BOOLEAN: return AR_JS_BOOLEAN;
    case DUK_TYPE_NUMBER: return AR_JS_NUMBER;
    case DUK_TYPE_STRING: return AR_JS_STRING;
    case DUK_TYPE_OBJECT:
        if (duk_is_array(c->ctx, at)) {
            return AR_JS_ARRAY;
        }
        return duk_is_function(c->ctx, at) ? AR_JS_FUNCTION : AR_JS_OBJECT;
    case DUK_TYPE_UNDEFINED:
    case DUK_TYPE_NONE: return AR_JS_UNDEFINED;
    default: return AR_JS_OBJECT;
    }
}

static const char *type_name(int t)
{
    static const char *const names[] = {"undefined", "null",  "a boolean", "a number",
                                        "a string",  "an array", "an object", "a function"};
    return t >= 0 && t < (int)AR_ARRAY_SIZE(names) ? names[t] : "a value";
}

static int wrong_type(struct ar_js_call *c, int i, const char *want)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s(): argument %d must be %s, not %s", c->fn->name, i + 1, want,
             type_name(api_js_arg_type(c, i)));
    set_error(c, "TypeError", msg);
    return AR_EINVAL;
}

static int api_js_arg_number(struct ar_js_call *c, int i, double *out)
{
    if (api_js_arg_type(c, i) != AR_JS_NUMBER) {
        return wrong_type(c, i, "a number");
    }
    *out = duk_get_number(c->ctx, c->base + i);
    return 0;
}

static int api_js_arg_bool(struct ar_js_call *c, int i, int *out)
{
    if (api_js_arg_type(c, i) != AR_JS_BOOLEAN) {
        return wrong_type(c, i, "a boolean");
    }
    *out = duk_get_boolean(c->ctx, c->base + i) ? 1 : 0;
    return 0;
}

static int api_js_arg_string(struct ar_js_call *c, int i, const char **out, size_t *len)
{
    if (api_js_arg_type(c, i) != AR_JS_STRING) {
        return wrong_type(c, i, "a string");
    }
    duk_size_t n;
    *out = duk_get_lstring(c->ctx, c->base + i, &n);
    if (len != NULL) {
        *len = n;
    }
    return 0;
}

static duk_ret_t encode_safe(duk_context *ctx, void *udata)
{
    duk_json_encode(ctx, -1);
    return 1;
}

static int api_js_arg_json(struct ar_js_call *c, int i, char **out)
{
    duk_context *ctx = c->ctx;
    if (i < 0 || i >= c->argc) {
        *out = ar_strdup("null");
        return 0;
    }
    duk_dup(ctx, c->base + i);
    if (duk_safe_call(ctx, encode_safe, NULL, 1, 1) != DUK_EXEC_SUCCESS) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s(): argument %d cannot be converted to JSON: %s",
                 c->fn->name, i + 1, duk_safe_to_string(ctx, -1));
        duk_pop(ctx);
        set_error(c, "TypeError", msg);
        return AR_EINVAL;
    }
    *out = ar_strdup(duk_is_string(ctx, -1) ? duk_get_string(ctx, -1) : "null");
    duk_pop(ctx);
    return 0;
}

/* ---- Results ---- */

static void clear_ret(struct ar_js_call *c, enum ret_kind kind)
{
    free(c->str);
    c->str = NULL;
    c->ret = kind;
}

static int api_js_return_number(struct ar_js_call *c, double v)
{
    clear_ret(c, RET_NUMBER);
    c->number = v;
    return 0;
}

static int api_js_return_bool(struct ar_js_call *c, int v)
{
    clear_ret(c, RET_BOOL);
    c->number = v ? 1 : 0;
    return 0;
}

static int api_js_return_null(struct ar_js_call *c)
{
    clear_ret(c, RET_NULL);
    return 0;
}

static int api_js_return_string(struct ar_js_call *c, const char *s, size_t len)
{
    clear_ret(c, RET_STRING);
    c->str = ar_strndup(s ? s : "", s ? len : 0);
    c->len = s ? len : 0;
    return 0;
}

static int api_js_return_json(struct ar_js_call *c, const char *json)
{
    clear_ret(c, RET_JSON);
    c->str = ar_strdup(json ? json : "null");
    c->len = strlen(c->str);
    return 0;
}

static int api_js_throw(struct ar_js_call *c, const char *name, const char *message)
{
    set_error(c, name, message);
    return AR_EINVAL;
}

static int api_js_dry_run(struct ar_js_call *c)
{
    return c->run ? c->run->dry_run : 0;
}

/* ---- Suspending ---- */

static void pending_cancel(struct ar_op *op)
{
    struct ar_pending *p = ar_container_of(op, struct ar_pending, op);
    if (p->cancel != NULL) {
        p->cancel(p, p->data);
    }
    free(p);
}

static struct ar_pending *api_js_suspend(struct ar_js_call *c, ar_pending_cancel_cb cancel,
                                         void *data)
{
    char msg[256];
    if (c->run == NULL || c->fiber == 0) {
        snprintf(msg, sizeof(msg),
                 "%s() can only be called while a recipe runs, not while it loads", c->fn->name);
        set_error(c, "Error", msg);
        return NULL;
    }
    if (c->pending != NULL) {
        snprintf(msg, sizeof(msg), "%s(): the plugin suspended the call twice", c->fn->name);
        set_error(c, "PluginError", msg);
        return NULL;
    }
    struct ar_pending *p = ar_calloc(1, sizeof(*p));
    p->call = c;
    p->fn = c->fn;
    p->cancel = cancel;
    p->data = data;
    p->op.cancel = pending_cancel;
    ar__run_op_add(c->run, &p->op, c->fiber);
    c->pending = p;
    return p;
}

struct settle {
    const char *text;
    size_t len;
    const char *name;
    int json;
};

static void push_settle(duk_context *ctx, void *data)
{
    const struct settle *s = data;
    if (s->name != NULL) {
        ar__vm_push_error(ctx, s->name, s->text);
    } else if (s->json) {
        duk_push_lstring(ctx, s->text, s->len);
        duk_json_decode(ctx, -1);
    } else {
        duk_push_lstring(ctx, s->text, s->len);
    }
}

/* Resumes the waiting fiber with the settled value; the pending is freed first, since the
 * run may finish (and be freed) inside the resume. */
static void settle_later(struct ar_pending *p, const struct settle *s)
{
    struct ar_run *run = p->op.run;
    uint32_t fiber = p->op.fiber;
    ar__run_op_remove(&p->op);
    free(p);
    ar__vm_resume(run->engine->vm, run, fiber, push_settle, (void *)s, s->name != NULL);
}

static void api_pending_reject(struct ar_pending *p, const char *name, const char *message)
{
    if (p->call != NULL) {
        set_error(p->call, name, message);
        p->settled = 1;
        return;
    }
    struct settle s = {message ? message : "", 0, name ? name : "PluginError", 0};
    settle_later(p, &s);
}

static void api_pending_resolve_json(struct ar_pending *p, const char *json)
{
    if (json == NULL) {
        json = "null";
    }
    if (p->call != NULL) {
        api_js_return_json(p->call, json);
        p->settled = 1;
        return;
    }
    struct ar_engine *e = p->op.run->engine;
    char why[256], msg[512];
    if (ar__vm_json_check(e->vm, json, why, sizeof(why)) != 0) {
        snprintf(msg, sizeof(msg), "%s() returned invalid JSON: %s", p->fn->name, why);
        api_pending_reject(p, "PluginError", msg);
        return;
    }
    struct settle s = {json, strlen(json), NULL, 1};
    settle_later(p, &s);
}

static void api_pending_resolve_string(struct ar_pending *p, const char *str, size_t len)
{
    if (p->call != NULL) {
        api_js_return_string(p->call, str, len);
        p->settled = 1;
        return;
    }
    struct settle s = {str ? str : "", str ? len : 0, NULL, 0};
    settle_later(p, &s);
}

/* ---- Poll sources ---- */

static const char *api_poll_options(struct ar_poll *p)
{
    return p->options;
}

static const char *api_poll_cursor(struct ar_poll *p)
{
    return p->cursor;
}

static void api_poll_on_cancel(struct ar_poll *p, ar_poll_cancel_cb cb, void *data)
{
    p->cancel = cb;
    p->cancel_data = data;
}

static void poll_free(struct ar_poll *p)
{
    free(p->options);
    free(p->cursor);
    free(p);
}

static void poll_settle(struct ar_poll *p, int rc, const char *items, const char *cursor,
                        const char *error)
{
    if (p->settled) {
        return;
    }
    p->settled = 1;
    p->done(p->done_data, rc, items, cursor, error);
    if (!p->starting) {
        poll_free(p);
    }
}

static void api_poll_fail(struct ar_poll *p, const char *message)
{
    char *msg = ar_asprintf("%s: %s", p->src->name, message ? message : "failed");
    poll_settle(p, AR_EINVAL, NULL, NULL, msg);
    free(msg);
}

/* The context of the JS that is calling into a poll source right now, if any: JSON is checked
 * on it, since the heap's main context cannot be used while a fiber runs. */
static duk_context *poll_calling_ctx;

static duk_ret_t json_check_safe(duk_context *ctx, void *udata)
{
    duk_push_string(ctx, udata);
    duk_json_decode(ctx, -1);
    return 0;
}

static int json_valid(duk_context *ctx, const char *text, char *why, size_t len)
{
    int rc = duk_safe_call(ctx, json_check_safe, (void *)text, 0, 1);
    if (rc != DUK_EXEC_SUCCESS) {
        snprintf(why, len, "%s", duk_safe_to_string(ctx, -1));
    }
    duk_pop(ctx);
    return rc == DUK_EXEC_SUCCESS;
}

static void api_poll_done(struct ar_poll *p, const char *items, const char *cursor)
{
    char why[256] = "";
    const char *s = items ? items : "";
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') {
        s++;
    }
    duk_context *ctx = poll_calling_ctx ? poll_calling_ctx : p->engine->vm->ctx;
    if (*s != '[' || !json_valid(ctx, items, why, sizeof(why))) {
        char *msg = ar_asprintf("%s: the plugin returned items that are not a JSON array%s%s",
                                p->src->name, *s == '[' ? ": " : "", *s == '[' ? why : "");
        poll_settle(p, AR_EINVAL, NULL, NULL, msg);
        free(msg);
        return;
    }
    poll_settle(p, 0, items, cursor, NULL);
}

int ar__plugin_poll_start(struct ar_engine *e, const struct ar__poll_source *src,
                          const char *options_json, const char *cursor, ar__poll_done_cb done,
                          void *data, struct ar_poll **out)
{
    if (e == NULL || src == NULL || done == NULL) {
        return AR_EINVAL;
    }
    struct ar_poll *p = ar_calloc(1, sizeof(*p));
    p->src = src;
    p->engine = e;
    p->options = ar_strdup(options_json && *options_json ? options_json : "{}");
    p->cursor = ar_strdup(cursor);
    p->done = done;
    p->done_data = data;
    p->starting = 1;
    src->host->engine = e;
    int rc = src->fn(p, src->data);
    if (rc != 0 && !p->settled) {
        char *msg = ar_asprintf("%s: %s", src->name, ar_strerror(rc));
        poll_settle(p, rc, NULL, NULL, msg);
        free(msg);
    }
    p->starting = 0;
    if (p->settled) {
        poll_free(p);
        p = NULL;
    }
    if (out != NULL) {
        *out = p;
    }
    return 0;
}

void ar__plugin_poll_cancel(struct ar_poll *p)
{
    if (p == NULL || p->settled) {
        return;
    }
    p->settled = 1;
    if (p->cancel != NULL) {
        p->cancel(p, p->cancel_data);
    }
    poll_free(p);
}

const struct ar_plugin_api ar__plugin_api = {
    .abi_version = AUTORUN_PLUGIN_ABI,
    .size = sizeof(struct ar_plugin_api),
    .malloc = api_malloc,
    .realloc = api_realloc,
    .free = api_free,
    .export_module = api_export_module,
    .add_global = api_add_global,
    .add_poll_source = api_add_poll_source,
    .name = api_name,
    .setting = api_setting,
    .log = api_log,
    .open_failed = api_open_failed,
    .loop = api_loop,
    .js_host = api_js_host,
    .js_argc = api_js_argc,
    .js_arg_type = api_js_arg_type,
    .js_arg_number = api_js_arg_number,
    .js_arg_bool = api_js_arg_bool,
    .js_arg_string = api_js_arg_string,
    .js_arg_json = api_js_arg_json,
    .js_return_number = api_js_return_number,
    .js_return_bool = api_js_return_bool,
    .js_return_null = api_js_return_null,
    .js_return_string = api_js_return_string,
    .js_return_json = api_js_return_json,
    .js_throw = api_js_throw,
    .js_dry_run = api_js_dry_run,
    .js_suspend = api_js_suspend,
    .pending_resolve_json = api_pending_resolve_json,
    .pending_resolve_string = api_pending_resolve_string,
    .pending_reject = api_pending_reject,
    .poll_options = api_poll_options,
    .poll_cursor = api_poll_cursor,
    .poll_on_cancel = api_poll_on_cancel,
    .poll_done = api_poll_done,
    .poll_fail = api_poll_fail,
};

/* ---- JS: native.pluginLoad(name) and native.pluginCall(id, fiber, args, SUSPENDED) ---- */

/* Compiles a plugin's glue into function (exports, native) { ... }. */
static duk_ret_t compile_glue_safe(duk_context *ctx, void *udata)
{
    const struct ar__plugin_object *o = udata;
    /* -> [ ... path ] */
    duk_push_string(ctx, "(function (exports, native) {");
    duk_push_string(ctx, o->js);
    duk_push_string(ctx, "\n})");
    duk_concat(ctx, 3);
    duk_swap_top(ctx, -2);
    duk_compile(ctx, DUK_COMPILE_EVAL);
    duk_call(ctx, 0);
    return 1;
}

/* Returns undefined when there is no NAME.so; throws the refusal; else
 * { objects: [ { global: name|undefined, fns: [[name, id], ...], js: fn|undefined } ] }. */
static duk_ret_t js_plugin_load(duk_context *ctx)
{
    const char *name = duk_require_string(ctx, 0);
    struct ar_vm *vm = ar__vm_of(ctx);
    struct ar_plugin_host *h;
    char err[512];
    int rc = ar__plugin_load(vm->engine, name, &h, err, sizeof(err));
    if (rc == AR_ENOENT) {
        return 0;
    }
    if (rc != 0) {
        ar__vm_push_error(ctx, "PluginError", err);
        return duk_throw(ctx);
    }
    duk_push_object(ctx);
    duk_push_array(ctx);
    /* -> [ name desc objects ] */
    duk_uarridx_t k = 0;
    for (const struct ar__plugin_object *o = h->objects; o; o = o->next) {
        duk_push_object(ctx);
        if (o->global != NULL) {
            duk_push_string(ctx, o->global);
            duk_put_prop_string(ctx, -2, "global");
        }
        duk_push_array(ctx);
        for (size_t i = 0; i < o->n_fns; i++) {
            const struct ar__plugin_fn *f = ar__plugin_fn_get(o->first_fn + i);
            duk_push_array(ctx);
            duk_push_string(ctx, strrchr(f->name, '.') + 1);
            duk_put_prop_index(ctx, -2, 0);
            duk_push_uint(ctx, (duk_uint_t)(o->first_fn + i));
            duk_put_prop_index(ctx, -2, 1);
            duk_put_prop_index(ctx, -2, (duk_uarridx_t)i);
        }
        duk_put_prop_string(ctx, -2, "fns");
        if (o->js != NULL) {
            duk_push_sprintf(ctx, "%s (%s)", h->path, o->global ? o->global : "module");
            if (duk_safe_call(ctx, compile_glue_safe, (void *)o, 1, 1) != DUK_EXEC_SUCCESS) {
                duk_push_error_object(ctx, DUK_ERR_ERROR, "%s: its JS does not compile: %s",
                                      h->path, duk_safe_to_string(ctx, -1));
                return duk_throw(ctx);
            }
            duk_put_prop_string(ctx, -2, "js");
        }
        duk_put_prop_index(ctx, -2, k++);
    }
    duk_put_prop_string(ctx, -2, "objects");
    duk_push_array(ctx);
    k = 0;
    for (const struct ar__poll_source *src = ar__plugin_poll_sources(); src; src = src->next) {
        if (src->host == h) {
            duk_push_string(ctx, src->name + strlen(h->name) + 1);
            duk_put_prop_index(ctx, -2, k++);
        }
    }
    duk_put_prop_string(ctx, -2, "polls");
    return 1;
}

/* ---- native.pluginPoll(source, fiber, optionsJson, cursor, SUSPENDED): a native poll source
 * called like a JS poll function (lib/40_poll.js calls plugin.fn(options, state)) ---- */

struct poll_op {
    struct ar_op op;
    struct ar_poll *poll; /* NULL once done */
    int starting;         /* inside ar__plugin_poll_start */
    int done;
    int rc;
    char *result; /* owned; {"items": [...], "cursor": "..."} */
    char *error;  /* owned */
};

static char *poll_result_json(const char *items, const char *cursor)
{
    struct ar_buf b = {0};
    ar_buf_printf(&b, "{\"items\":%s", items);
    if (cursor != NULL) {
        ar_buf_puts(&b, ",\"cursor\":");
        ar_buf_json_string(&b, cursor);
    }
    ar_buf_puts(&b, "}");
    return ar_buf_steal(&b);
}

static void poll_op_done_cb(void *data, int rc, const char *items, const char *cursor,
                            const char *error)
{
    struct poll_op *o = data;
    o->poll = NULL;
    o->done = 1;
    o->rc = rc;
    o->result = rc == 0 ? poll_result_json(items, cursor) : NULL;
    o->error = rc == 0 ? NULL : ar_strdup(error);
    if (o->starting) {
        return; /* js_plugin_poll returns the result itself */
    }
    struct ar_run *run = o->op.run;
    uint32_t fiber = o->op.fiber;
    ar__run_op_remove(&o->op);
    struct settle s = {rc == 0 ? o->result : o->error, 0, rc == 0 ? NULL : "PollError", 1};
    s.len = strlen(s.text);
    ar__vm_resume(run->engine->vm, run, fiber, push_settle, &s, rc != 0);
    free(o->result);
    free(o->error);
    free(o);
}

static void poll_op_cancel(struct ar_op *op)
{
    struct poll_op *o = ar_container_of(op, struct poll_op, op);
    ar__plugin_poll_cancel(o->poll);
    free(o->result);
    free(o->error);
    free(o);
}

static duk_ret_t js_plugin_poll(duk_context *ctx)
{
    const char *name = duk_require_string(ctx, 0);
    duk_uint_t fiber = duk_require_uint(ctx, 1);
    const char *options = duk_require_string(ctx, 2);
    const char *cursor = duk_is_string(ctx, 3) ? duk_get_string(ctx, 3) : NULL;
    struct ar_vm *vm = ar__vm_of(ctx);
    struct ar_run *run = vm->current;
    if (run == NULL || fiber == 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "%s: poll sources run only in a poll", name);
    }
    const struct ar__poll_source *src = ar__plugin_poll_source(vm->engine, name);
    if (src == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "no poll source %s", name);
    }
    struct poll_op *o = ar_calloc(1, sizeof(*o));
    o->op.cancel = poll_op_cancel;
    o->starting = 1;
    ar__run_op_add(run, &o->op, fiber);
    poll_calling_ctx = ctx;
    ar__plugin_poll_start(vm->engine, src, options, cursor, poll_op_done_cb, o, &o->poll);
    poll_calling_ctx = NULL;
    o->starting = 0;
    if (!o->done) {
        duk_dup(ctx, 4);
        return 1;
    }
    ar__run_op_remove(&o->op);
    char *result = o->result, *error = o->error;
    free(o);
    if (error != NULL) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", error);
        free(error);
        ar__vm_push_error(ctx, "PollError", msg);
        return duk_throw(ctx);
    }
    duk_push_string(ctx, result);
    free(result);
    duk_json_decode(ctx, -1);
    return 1;
}

static duk_ret_t push_result_safe(duk_context *ctx, void *udata)
{
    const struct ar_js_call *c = udata;
    switch (c->ret) {
    case RET_NUMBER: duk_push_number(ctx, c->number); break;
    case RET_BOOL: duk_push_boolean(ctx, c->number != 0); break;
    case RET_NULL: duk_push_null(ctx); break;
    case RET_STRING: duk_push_lstring(ctx, c->str, c->len); break;
    case RET_JSON:
        duk_push_lstring(ctx, c->str, c->len);
        duk_json_decode(ctx, -1);
        break;
    case RET_UNDEFINED:
    default: duk_push_undefined(ctx); break;
    }
    return 1;
}

static duk_ret_t js_plugin_call(duk_context *ctx)
{
    duk_uint_t id = duk_require_uint(ctx, 0);
    duk_uint_t fiber = duk_require_uint(ctx, 1);
    duk_require_object(ctx, 2);
    const struct ar__plugin_fn *f = ar__plugin_fn_get(id);
    if (f == NULL || f->host->error != NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "no such plugin function (%u)", (unsigned)id);
    }
    duk_size_t argc = duk_get_length(ctx, 2);
    if (argc > MAX_ARGS) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "%s(): more than %d arguments", f->name,
                         MAX_ARGS);
    }
    duk_set_top(ctx, 4);
    duk_require_stack(ctx, (duk_idx_t)argc + 8);
    for (duk_size_t i = 0; i < argc; i++) {
        duk_get_prop_index(ctx, 2, (duk_uarridx_t)i);
    }
    /* -> [ id fiber args SUSPENDED arg0 ... ] : nothing allocated in C until here. */
    struct ar_vm *vm = ar__vm_of(ctx);
    struct ar_js_call call = {
        .ctx = ctx,
        .fn = f,
        .run = vm->current,
        .fiber = vm->current ? fiber : 0,
        .base = 4,
        .argc = (int)argc,
    };
    f->host->engine = vm->engine;
    int rc = f->fn(&call);

    struct ar_pending *p = call.pending;
    if (p != NULL) {
        if (p->settled || rc < 0) {
            /* Settled before returning, or given up on: the fiber does not wait. */
            ar__run_op_remove(&p->op);
            free(p);
            if (call.err_msg != NULL) {
                rc = AR_EINVAL;
            }
        } else {
            p->call = NULL;
            free(call.str);
            free(call.err_name);
            free(call.err_msg);
            duk_dup(ctx, 3);
            return 1;
        }
    }
    if (rc < 0) {
        /* Copied out so nothing is leaked when the error unwinds. */
        char name[64], msg[1024];
        if (call.err_msg != NULL) {
            snprintf(name, sizeof(name), "%s", call.err_name);
            snprintf(msg, sizeof(msg), "%s", call.err_msg);
        } else {
            snprintf(name, sizeof(name), "PluginError");
            snprintf(msg, sizeof(msg), "%s() failed: %s", f->name, ar_strerror(rc));
        }
        free(call.str);
        free(call.err_name);
        free(call.err_msg);
        ar__vm_push_error(ctx, name, msg);
        return duk_throw(ctx);
    }
    free(call.err_name);
    free(call.err_msg);
    rc = duk_safe_call(ctx, push_result_safe, &call, 0, 1);
    int was_json = call.ret == RET_JSON;
    free(call.str);
    if (rc != DUK_EXEC_SUCCESS) {
        if (was_json) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s() returned invalid JSON: %s", f->name,
                     duk_safe_to_string(ctx, -1));
            ar__vm_push_error(ctx, "PluginError", msg);
        }
        return duk_throw(ctx);
    }
    return 1;
}

static const duk_function_list_entry plugin_funcs[] = {
    {"pluginLoad", js_plugin_load, 1},
    {"pluginCall", js_plugin_call, 4},
    {"pluginPoll", js_plugin_poll, 5},
    {NULL, NULL, 0},
};

void ar__js_plugin_open(duk_context *ctx)
{
    duk_put_function_list(ctx, -1, plugin_funcs);
}
