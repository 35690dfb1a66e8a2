/* store: per-recipe persistent key-value state, kept in the state database.
 * In a dry run, writes are not kept (reads still see what is stored). */
#include "js/vm.h"
#include "internal.h"
#include "db/history.h"

#include <stdlib.h>

static struct ar_run *require_run(duk_context *ctx)
{
    struct ar_run *run = ar__vm_of(ctx)->current;
    if (run == NULL) {
        (void)duk_error(ctx, DUK_ERR_ERROR, "store can only be used while a recipe runs");
    }
    return run;
}

static duk_ret_t js_store_get(duk_context *ctx)
{
    const char *key = duk_require_string(ctx, 0);
    struct ar_run *run = require_run(ctx);
    char *json;
    int rc = ar_store_get(run->engine->history, run->recipe->name, key, ar_now_ms(), &json);
    if (rc == AR_ENOENT) {
        return 0;
    }
    if (rc != 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "store.get: %s",
                         ar_history_errmsg(run->engine->history));
    }
    duk_push_string(ctx, json);
    free(json);
    return 1;
}

static duk_ret_t js_store_set(duk_context *ctx)
{
    const char *key = duk_require_string(ctx, 0);
    const char *json = duk_require_string(ctx, 1);
    double ttl = duk_get_number_default(ctx, 2, 0);
    struct ar_run *run = require_run(ctx);
    if (run->dry_run) {
        return 0;
    }
    int64_t expires = ttl > 0 ? ar_now_ms() + (int64_t)ttl : 0;
    if (ar_store_set(run->engine->history, run->recipe->name, key, json, expires) != 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "store.set: %s",
                         ar_history_errmsg(run->engine->history));
    }
    return 0;
}

static duk_ret_t js_store_del(duk_context *ctx)
{
    const char *key = duk_require_string(ctx, 0);
    struct ar_run *run = require_run(ctx);
    if (run->dry_run) {
        return 0;
    }
    if (ar_store_del(run->engine->history, run->recipe->name, key) != 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "store.del: %s",
                         ar_history_errmsg(run->engine->history));
    }
    return 0;
}

static const duk_function_list_entry store_funcs[] = {
    {"storeGet", js_store_get, 1},
    {"storeSet", js_store_set, 3},
    {"storeDel", js_store_del, 1},
    {NULL, NULL, 0},
};

void ar__js_store_open(duk_context *ctx)
{
    duk_put_function_list(ctx, -1, store_funcs);
}
