/* Native plugins: finding plugins/NAME.so, loading it once per process on first use,
 * refusing a wrong one with a one-line error, and the registry of what it registered
 * (its module, globals and poll sources). The JS side is in api.c and the prelude. */
#ifndef AR_PLUGIN_LOADER_H
#define AR_PLUGIN_LOADER_H

#include <stddef.h>

#include "autorun/plugin.h"

struct ar_engine;

/* A poll source a native plugin registered, e.g. "csv.newRows". The poller (src/trigger/)
 * looks it up with ar__plugin_poll_source() and starts polls with ar__plugin_poll_start(). */
struct ar__poll_source {
    struct ar__poll_source *next;
    char *name;                   /* owned; "PLUGIN.source" */
    struct ar_plugin_host *host;  /* borrowed; lives as long as the process */
    ar_poll_fn fn;
    void *data;                   /* the plugin's */
};

/* How a poll ended: rc 0 with items_json (a JSON array, each item an object with an "id")
 * and cursor (NULL: keep the previous one); or rc < 0 with error ("csv.newRows: ..."). The
 * strings are valid during the callback only. Never called after ar__plugin_poll_cancel(). */
typedef void (*ar__poll_done_cb)(void *data, int rc, const char *items_json, const char *cursor,
                                 const char *error);

/* Finds the native poll source NAME ("csv.newRows"), loading plugins/csv.so if it exists
 * and is not loaded yet. NULL when no native plugin provides it: then the name may still be
 * a JS plugin's poll function. If a native plugin exists but was refused, NULL too, and
 * ar__plugin_error() tells why. */
const struct ar__poll_source *ar__plugin_poll_source(struct ar_engine *e, const char *name);

/* Starts one poll. options_json: the trigger object as JSON ("{}" if NULL); cursor: from
 * the previous poll or NULL. done is called exactly once unless the poll is cancelled,
 * possibly before this returns. On success *out (may be NULL if the caller never cancels)
 * identifies the poll until done is called. */
int ar__plugin_poll_start(struct ar_engine *e, const struct ar__poll_source *src,
                          const char *options_json, const char *cursor, ar__poll_done_cb done,
                          void *data, struct ar_poll **out);
/* Abandons a poll that is not done yet: the plugin's cancel callback runs, done never will. */
void ar__plugin_poll_cancel(struct ar_poll *poll);

/* Loads plugin NAME for engine e if a NAME.so exists in the search path. Returns 0 and sets
 * *out; AR_ENOENT if there is no such file (a JS plugin, maybe); AR_EINVAL if it exists but
 * was refused (err holds "plugins/x.so: built for plugin ABI 2, this autorun has 1"). A
 * plugin is loaded once per process; a refusal is remembered too. */
int ar__plugin_load(struct ar_engine *e, const char *name, struct ar_plugin_host **out,
                    char *err, size_t errlen);
/* The one-line refusal of plugin NAME, or NULL if it is not refused (or not tried). */
const char *ar__plugin_error(const char *name);

/* Checks every NAME.so in the plugin search path (loading each), reporting every refused one
 * through cb as one line; returns how many were refused. For `autorun check`. */
int ar__plugin_check_all(struct ar_engine *e, void (*cb)(void *data, const char *problem),
                         void *data);

/* ---- Shared by loader.c and api.c only ---- */

/* A native function a plugin registered; its index in the process-wide table is the id the
 * JS wrapper passes to native.pluginCall(). */
struct ar__plugin_fn {
    struct ar_plugin_host *host; /* borrowed */
    char *name;                  /* owned; "csv.parse" or "global.fn", for messages */
    ar_js_fn fn;
};

/* The module or a global: a range of the function table and optional JS glue. */
struct ar__plugin_object {
    struct ar__plugin_object *next;
    char *global; /* owned; the global's name, or NULL for the module */
    char *js;     /* owned, or NULL */
    size_t first_fn;
    size_t n_fns;
};

struct ar_plugin_host {
    struct ar_plugin_host *next;
    char *name;                      /* owned */
    char *path;                      /* owned; as found, e.g. "plugins/csv.so" */
    void *handle;                    /* owned; never closed: code may still be referenced */
    const struct ar_plugin *plugin;  /* the plugin's */
    char *error;                     /* owned; the one-line refusal, or NULL when loaded */
    char *fail;                      /* owned; what open() said with ar_plugin_fail() */
    int opening;                     /* registration calls are allowed only in open() */
    struct ar_engine *engine;        /* borrowed; the engine of the latest entry */
    struct ar__plugin_object *objects; /* owned */
};

/* Every poll source registered in this process (a list through next). */
const struct ar__poll_source *ar__plugin_poll_sources(void);

/* The function table the plugin gets (api.c). */
extern const struct ar_plugin_api ar__plugin_api;
/* The registered function with that id, or NULL. */
const struct ar__plugin_fn *ar__plugin_fn_get(size_t id);
/* Registration (loader.c), used by the API table. */
int ar__plugin_add_object(struct ar_plugin_host *host, const char *global,
                          const struct ar_js_function *fns, const char *js);
int ar__plugin_add_poll(struct ar_plugin_host *host, const char *name, ar_poll_fn fn,
                        void *data);

#endif
