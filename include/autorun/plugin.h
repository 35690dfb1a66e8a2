/* The native plugin API of autorun: the one public, versioned C interface (see docs/plugins.md).
 *
 * A plugin is a shared object plugins/NAME.so. It defines a `struct ar_plugin NAME_plugin`
 * with designated initializers and exports it with AR_PLUGIN_EXPORT(NAME_plugin), which
 * defines the entry point autorun looks up:
 *
 *     const struct ar_plugin *autorun_plugin_init(const struct ar_plugin_api *api);
 *
 * That contract holds for every ABI version: one pointer in, and a pointer out to a struct
 * whose first field is the uint32_t ABI version the plugin was built for. autorun checks it
 * before it touches anything else and refuses another version with a one-line error.
 *
 * The plugin calls autorun only through the function table it is given (the inline
 * functions below), so a plugin needs no symbol from the executable and no link flag.
 * Everything runs on the engine's loop thread. Types behind the API are opaque. Memory the
 * API hands to the plugin, or takes from it, comes from ar_plugin_malloc()/ar_plugin_free(). */
#ifndef AUTORUN_PLUGIN_H
#define AUTORUN_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "autorun/version.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ar_plugin_host; /* one loaded plugin as autorun sees it; valid for the process */
struct ar_js_call;     /* one call of a native function from JS; valid during the call */
struct ar_pending;     /* a suspended call waiting for its result; valid until settled */
struct ar_poll;        /* one poll of a poll source; valid until done, failed or cancelled */
struct uv_loop_s;      /* libuv's uv_loop_t */

/* Negative error codes, as everywhere in autorun (libuv's values). */
#define AR_PLUGIN_EINVAL (-22)
#define AR_PLUGIN_ENOMEM (-12)

enum ar_js_type {
    AR_JS_UNDEFINED, /* also: an argument that was not passed */
    AR_JS_NULL,
    AR_JS_BOOLEAN,
    AR_JS_NUMBER,
    AR_JS_STRING,
    AR_JS_ARRAY,
    AR_JS_OBJECT,
    AR_JS_FUNCTION,
};

enum ar_plugin_log_level {
    AR_PLUGIN_LOG_DEBUG,
    AR_PLUGIN_LOG_INFO,
    AR_PLUGIN_LOG_WARN,
    AR_PLUGIN_LOG_ERROR,
};

/* A native function callable from JS. Return 0 after setting the result (undefined if none
 * was set), or a negative code to make the call throw: the error recorded with
 * ar_js_throw() or by a failed argument getter, else a generic one naming the function. */
typedef int (*ar_js_fn)(struct ar_js_call *call);

struct ar_js_function {
    const char *name;
    ar_js_fn fn;
};

/* Called instead of any result when the run that waits is aborted (timeout, memory limit,
 * shutdown): stop the work and release what belongs to it. The pending is gone after this
 * returns; never settle it. */
typedef void (*ar_pending_cancel_cb)(struct ar_pending *pending, void *data);

/* Produces the items of one poll: call ar_poll_done() or ar_poll_fail() exactly once, now
 * or later from a loop callback. Return 0, or a negative code for "failed at once" (then
 * call neither). data is what ar_plugin_add_poll_source() was given. */
typedef int (*ar_poll_fn)(struct ar_poll *poll, void *data);
typedef void (*ar_poll_cancel_cb)(struct ar_poll *poll, void *data);

struct ar_plugin {
    uint32_t abi_version;    /* AUTORUN_PLUGIN_ABI; always the first field */
    const char *name;        /* the file's name: "csv" for csv.so */
    const char *version;     /* the plugin's own version, for humans */
    const char *description; /* one line */
    /* Registers the plugin's module, globals and poll sources; 0, or a negative code after
     * ar_plugin_fail() said why. Runs once per process, when the plugin is first needed. */
    int (*open)(struct ar_plugin_host *host);
};

/* The function table autorun passes to autorun_plugin_init(). Use the inline functions
 * below rather than the table. */
struct ar_plugin_api {
    uint32_t abi_version; /* AUTORUN_PLUGIN_ABI of the autorun that loads the plugin */
    uint32_t size;        /* sizeof(struct ar_plugin_api) there; later fields may be added */

    void *(*malloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);

    int (*export_module)(struct ar_plugin_host *host, const struct ar_js_function *fns,
                         const char *js);
    int (*add_global)(struct ar_plugin_host *host, const char *name,
                      const struct ar_js_function *fns, const char *js);
    int (*add_poll_source)(struct ar_plugin_host *host, const char *name, ar_poll_fn fn,
                           void *data);
    const char *(*name)(struct ar_plugin_host *host);
    const char *(*setting)(struct ar_plugin_host *host, const char *key);
    void (*log)(struct ar_plugin_host *host, int level, const char *message);
    void (*open_failed)(struct ar_plugin_host *host, const char *message);
    struct uv_loop_s *(*loop)(struct ar_plugin_host *host);

    struct ar_plugin_host *(*js_host)(struct ar_js_call *call);
    int (*js_argc)(struct ar_js_call *call);
    int (*js_arg_type)(struct ar_js_call *call, int i);
    int (*js_arg_number)(struct ar_js_call *call, int i, double *out);
    int (*js_arg_bool)(struct ar_js_call *call, int i, int *out);
    int (*js_arg_string)(struct ar_js_call *call, int i, const char **out, size_t *len);
    int (*js_arg_json)(struct ar_js_call *call, int i, char **out);
    int (*js_return_number)(struct ar_js_call *call, double value);
    int (*js_return_bool)(struct ar_js_call *call, int value);
    int (*js_return_null)(struct ar_js_call *call);
    int (*js_return_string)(struct ar_js_call *call, const char *s, size_t len);
    int (*js_return_json)(struct ar_js_call *call, const char *json);
    int (*js_throw)(struct ar_js_call *call, const char *name, const char *message);
    int (*js_dry_run)(struct ar_js_call *call);
    struct ar_pending *(*js_suspend)(struct ar_js_call *call, ar_pending_cancel_cb cancel,
                                     void *data);

    void (*pending_resolve_json)(struct ar_pending *pending, const char *json);
    void (*pending_resolve_string)(struct ar_pending *pending, const char *s, size_t len);
    void (*pending_reject)(struct ar_pending *pending, const char *name, const char *message);

    const char *(*poll_options)(struct ar_poll *poll);
    const char *(*poll_cursor)(struct ar_poll *poll);
    void (*poll_on_cancel)(struct ar_poll *poll, ar_poll_cancel_cb cb, void *data);
    void (*poll_done)(struct ar_poll *poll, const char *items_json, const char *cursor);
    void (*poll_fail)(struct ar_poll *poll, const char *message);
};

/* Set by AR_PLUGIN_EXPORT's entry point; shared by the plugin's files, private to it. */
extern const struct ar_plugin_api *ar_plugin_api_ __attribute__((visibility("hidden")));

/* Defines autorun_plugin_init() for the plugin struct named `sym` (by convention
 * NAME_plugin). Use it once, in one file of the plugin. */
#define AR_PLUGIN_EXPORT(sym)                                                                    \
    const struct ar_plugin_api *ar_plugin_api_ __attribute__((visibility("hidden")));           \
    __attribute__((visibility("default"))) const struct ar_plugin *autorun_plugin_init(         \
        const struct ar_plugin_api *api);                                                        \
    const struct ar_plugin *autorun_plugin_init(const struct ar_plugin_api *api)                 \
    {                                                                                            \
        if (api->abi_version == AUTORUN_PLUGIN_ABI) {                                            \
            ar_plugin_api_ = api;                                                                \
        }                                                                                        \
        return &(sym);                                                                           \
    }

/* ---- Memory: everything exchanged with autorun ---- */

static inline void *ar_plugin_malloc(size_t size)
{
    return ar_plugin_api_->malloc(size);
}

static inline void *ar_plugin_realloc(void *ptr, size_t size)
{
    return ar_plugin_api_->realloc(ptr, size);
}

static inline void ar_plugin_free(void *ptr)
{
    ar_plugin_api_->free(ptr);
}

/* ---- Registration, from open() ---- */

/* What require('NAME') returns: an object with fns as methods. js, if not NULL, is the body
 * of a function (exports, native) run once per engine to build the friendly API in JS:
 * native holds fns, exports starts empty and is what require() returns. */
static inline int ar_plugin_export_module(struct ar_plugin_host *host,
                                          const struct ar_js_function *fns, const char *js)
{
    return ar_plugin_api_->export_module(host, fns, js);
}

/* A global object `name` with fns (and the js body as above). It is defined in an engine's
 * JS when the plugin is first required there (by a recipe or a JS plugin), before require()
 * returns. fns, here and above, end with an entry whose name is NULL. */
static inline int ar_plugin_add_global(struct ar_plugin_host *host, const char *name,
                                       const struct ar_js_function *fns, const char *js)
{
    return ar_plugin_api_->add_global(host, name, fns, js);
}

/* A source for poll triggers, {poll: 'NAME.name', every: '1m', ...options}. */
static inline int ar_plugin_add_poll_source(struct ar_plugin_host *host, const char *name,
                                            ar_poll_fn fn, void *data)
{
    return ar_plugin_api_->add_poll_source(host, name, fn, data);
}

/* Why open() failed: shown in the one-line error that refuses the plugin. */
static inline void ar_plugin_fail(struct ar_plugin_host *host, const char *message)
{
    ar_plugin_api_->open_failed(host, message);
}

/* ---- Host services, at any time ---- */

static inline const char *ar_plugin_name(struct ar_plugin_host *host)
{
    return ar_plugin_api_->name(host);
}

/* The setting plugin.NAME.KEY of autorun.conf, or the environment variable
 * AUTORUN_PLUGIN_NAME_KEY (upper case, '.' and '-' as '_'), which wins; NULL if unset.
 * The string is autorun's: read it, do not keep it. */
static inline const char *ar_plugin_setting(struct ar_plugin_host *host, const char *key)
{
    return ar_plugin_api_->setting(host, key);
}

/* Logs one line: into the run's history during a call from a run, else on stderr. */
static inline void ar_plugin_log(struct ar_plugin_host *host, enum ar_plugin_log_level level,
                                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void ar_plugin_log(struct ar_plugin_host *host, enum ar_plugin_log_level level,
                                 const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ar_plugin_api_->log(host, (int)level, buf);
}

/* The engine's libuv loop: start timers, work requests and I/O here. */
static inline struct uv_loop_s *ar_plugin_loop(struct ar_plugin_host *host)
{
    return ar_plugin_api_->loop(host);
}

/* ---- Inside a native function ---- */

static inline struct ar_plugin_host *ar_js_host(struct ar_js_call *call)
{
    return ar_plugin_api_->js_host(call);
}

static inline int ar_js_argc(struct ar_js_call *call)
{
    return ar_plugin_api_->js_argc(call);
}

static inline enum ar_js_type ar_js_arg_type(struct ar_js_call *call, int i)
{
    return (enum ar_js_type)ar_plugin_api_->js_arg_type(call, i);
}

/* Getters return 0, or AR_PLUGIN_EINVAL after recording a TypeError naming the function and
 * the argument (so `return rc;` makes the call throw it). Strings are NUL-terminated but may
 * hold NUL bytes (see len), and are borrowed for the call only: copy what a suspended call
 * needs later. */
static inline int ar_js_arg_number(struct ar_js_call *call, int i, double *out)
{
    return ar_plugin_api_->js_arg_number(call, i, out);
}

static inline int ar_js_arg_bool(struct ar_js_call *call, int i, int *out)
{
    return ar_plugin_api_->js_arg_bool(call, i, out);
}

static inline int ar_js_arg_string(struct ar_js_call *call, int i, const char **out, size_t *len)
{
    return ar_plugin_api_->js_arg_string(call, i, out, len);
}

/* Any value as JSON text (undefined as "null"); free it with ar_plugin_free(). */
static inline int ar_js_arg_json(struct ar_js_call *call, int i, char **out)
{
    return ar_plugin_api_->js_arg_json(call, i, out);
}

/* The call's result; the last one set wins. Values are copied. */
static inline int ar_js_return_number(struct ar_js_call *call, double value)
{
    return ar_plugin_api_->js_return_number(call, value);
}

static inline int ar_js_return_bool(struct ar_js_call *call, int value)
{
    return ar_plugin_api_->js_return_bool(call, value);
}

static inline int ar_js_return_null(struct ar_js_call *call)
{
    return ar_plugin_api_->js_return_null(call);
}

static inline int ar_js_return_string(struct ar_js_call *call, const char *s, size_t len)
{
    return ar_plugin_api_->js_return_string(call, s, len);
}

/* The result is the value json describes; invalid JSON makes the call throw. */
static inline int ar_js_return_json(struct ar_js_call *call, const char *json)
{
    return ar_plugin_api_->js_return_json(call, json);
}

/* Records the error the call throws when the function returns (name like "CsvError");
 * returns AR_PLUGIN_EINVAL for `return ar_js_throw(...)`. */
static inline int ar_js_throw(struct ar_js_call *call, const char *name, const char *message)
{
    return ar_plugin_api_->js_throw(call, name, message);
}

static inline int ar_js_throwf(struct ar_js_call *call, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int ar_js_throwf(struct ar_js_call *call, const char *name, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return ar_plugin_api_->js_throw(call, name, buf);
}

/* Non-zero in a dry run: a plugin that writes somewhere should only say what it would do. */
static inline int ar_js_dry_run(struct ar_js_call *call)
{
    return ar_plugin_api_->js_dry_run(call);
}

/* Suspends the calling recipe until the pending is settled: start the work, return 0, and
 * settle it later from a loop callback (or before returning: then the call does not wait).
 * Returning a negative code instead drops the pending (cancel is not called) and throws.
 * NULL (with an error recorded) outside a run, e.g. in a recipe's top-level code. */
static inline struct ar_pending *ar_js_suspend(struct ar_js_call *call,
                                               ar_pending_cancel_cb cancel, void *data)
{
    return ar_plugin_api_->js_suspend(call, cancel, data);
}

/* ---- Settling a suspended call: exactly once, from a loop callback (or from the function
 * that suspended it, before it returns); the pending is gone afterwards ---- */

static inline void ar_pending_resolve_json(struct ar_pending *pending, const char *json)
{
    ar_plugin_api_->pending_resolve_json(pending, json);
}

static inline void ar_pending_resolve_string(struct ar_pending *pending, const char *s,
                                             size_t len)
{
    ar_plugin_api_->pending_resolve_string(pending, s, len);
}

/* The call throws an Error with this name ("PluginError" if NULL) and message. */
static inline void ar_pending_reject(struct ar_pending *pending, const char *name,
                                     const char *message)
{
    ar_plugin_api_->pending_reject(pending, name, message);
}

/* ---- Poll sources ---- */

/* The trigger's options as a JSON object ({"every": "1m", "file": ...}). */
static inline const char *ar_poll_options(struct ar_poll *poll)
{
    return ar_plugin_api_->poll_options(poll);
}

/* The cursor the previous poll returned, or NULL the first time. */
static inline const char *ar_poll_cursor(struct ar_poll *poll)
{
    return ar_plugin_api_->poll_cursor(poll);
}

/* Called instead of nothing if the poll is abandoned (shutdown, reload) before it is done. */
static inline void ar_poll_on_cancel(struct ar_poll *poll, ar_poll_cancel_cb cb, void *data)
{
    ar_plugin_api_->poll_on_cancel(poll, cb, data);
}

/* items_json: a JSON array of objects, each with an "id" (string or number). cursor: kept
 * durably and passed to the next poll (NULL: keep the previous one). */
static inline void ar_poll_done(struct ar_poll *poll, const char *items_json, const char *cursor)
{
    ar_plugin_api_->poll_done(poll, items_json, cursor);
}

static inline void ar_poll_fail(struct ar_poll *poll, const char *message)
{
    ar_plugin_api_->poll_fail(poll, message);
}

#ifdef __cplusplus
}
#endif

#endif
