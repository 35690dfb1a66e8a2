/* Recipes: finding the file, loading the module once, reading its settings
 * (description, timeout, concurrency, retries, secrets, triggers) and checking them. */
#include "internal.h"
#include "js/vm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void ar__recipe_free(struct ar_recipe *r)
{
    if (r == NULL) {
        return;
    }
    free(r->name);
    free(r->path);
    free(r->dir);
    free(r->description);
    free(r->triggers_json);
    for (size_t i = 0; i < r->n_secrets; i++) {
        free(r->secrets[i]);
    }
    free(r->secrets);
    free(r);
}

/* The first line of the recipe that mentions needle, so problems point somewhere
 * useful even though exports carry no positions. */
static int line_of(const char *path, const char *needle)
{
    char *text;
    if (needle == NULL || ar_read_file(path, 4 << 20, &text, NULL) != 0) {
        return 1;
    }
    const char *hit = strstr(text, needle);
    int line = 1;
    for (const char *p = text; hit && p < hit; p++) {
        line += *p == '\n';
    }
    free(text);
    return hit ? line : 1;
}

int ar__recipe_load(struct ar_engine *e, const char *name, struct ar_recipe **out, char *err,
                    size_t errlen)
{
    if (!ar_name_valid(name)) {
        snprintf(err, errlen, "'%s' is not a recipe name (letters, digits, - and _)", name);
        return AR_EINVAL;
    }
    struct ar_recipe *r = ar_calloc(1, sizeof(*r));
    r->name = ar_strdup(name);
    r->dir = ar_strdup(e->cfg->recipes_dir);
    char *file = ar_asprintf("%s.js", name);
    r->path = ar_path_join(r->dir, file);
    free(file);
    r->timeout_ms = e->cfg->run_timeout_ms;
    struct stat st;
    if (stat(r->path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "unknown recipe '%s': no %s (see autorun list)", name, r->path);
        ar__recipe_free(r);
        return AR_ENOENT;
    }
    int rc = ar__vm_load_recipe(e->vm, r, err, errlen);
    if (rc != 0) {
        ar__recipe_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static duk_ret_t stringify_safe(duk_context *ctx, void *udata)
{
    duk_json_encode(ctx, -1);
    return 1;
}

int ar__recipe_read_exports(struct ar_vm *vm, struct ar_recipe *r, char *err, size_t errlen)
{
    duk_context *ctx = vm->ctx;
    /* -> [ exports ] */
    if (duk_get_prop_string(ctx, -1, "description") && duk_is_string(ctx, -1)) {
        r->description = ar_strdup(duk_get_string(ctx, -1));
    }
    duk_pop(ctx);

    if (duk_get_prop_string(ctx, -1, "timeout") && !duk_is_undefined(ctx, -1)) {
        int64_t ms = -1;
        if (duk_is_number(ctx, -1)) {
            ms = (int64_t)duk_get_number(ctx, -1);
        } else if (!duk_is_string(ctx, -1) || ar_parse_duration(duk_get_string(ctx, -1), &ms)) {
            ms = -1;
        }
        if (ms <= 0) {
            snprintf(err, errlen, "%s:%d: exports.timeout: '%s' is not a duration (e.g. 30s, 10m)",
                     r->path, line_of(r->path, "timeout"), duk_safe_to_string(ctx, -1));
            duk_pop(ctx);
            return AR_EINVAL;
        }
        r->timeout_ms = ms;
    }
    duk_pop(ctx);

    if (duk_get_prop_string(ctx, -1, "concurrency") && !duk_is_undefined(ctx, -1)) {
        double c = duk_is_number(ctx, -1) ? duk_get_number(ctx, -1) : -1;
        if (c < 1 || c != (double)(int)c) {
            snprintf(err, errlen, "%s:%d: exports.concurrency must be a positive integer",
                     r->path, line_of(r->path, "concurrency"));
            duk_pop(ctx);
            return AR_EINVAL;
        }
        r->concurrency = (int)c;
    }
    duk_pop(ctx);

    if (duk_get_prop_string(ctx, -1, "retries") && duk_is_object(ctx, -1)) {
        duk_get_prop_string(ctx, -1, "max");
        r->retries_max = duk_is_number(ctx, -1) ? duk_get_int(ctx, -1) : 0;
        duk_pop(ctx);
        duk_get_prop_string(ctx, -1, "backoff");
        r->retries_backoff_ms = 30000;
        if (duk_is_string(ctx, -1) &&
            ar_parse_duration(duk_get_string(ctx, -1), &r->retries_backoff_ms) != 0) {
            snprintf(err, errlen, "%s:%d: exports.retries.backoff: '%s' is not a duration",
                     r->path, line_of(r->path, "backoff"), duk_get_string(ctx, -1));
            duk_pop_2(ctx);
            return AR_EINVAL;
        }
        duk_pop(ctx);
    }
    duk_pop(ctx);

    if (duk_get_prop_string(ctx, -1, "secrets") && duk_is_array(ctx, -1)) {
        duk_size_t n = duk_get_length(ctx, -1);
        r->secrets = ar_calloc(n, sizeof(char *));
        for (duk_size_t i = 0; i < n; i++) {
            duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
            if (duk_is_string(ctx, -1)) {
                r->secrets[r->n_secrets++] = ar_strdup(duk_get_string(ctx, -1));
            }
            duk_pop(ctx);
        }
    }
    duk_pop(ctx);

    duk_get_prop_string(ctx, -1, "triggers");
    if (duk_is_undefined(ctx, -1)) {
        r->triggers_json = ar_strdup("[]");
    } else if (duk_safe_call(ctx, stringify_safe, NULL, 1, 1) == DUK_EXEC_SUCCESS &&
               duk_is_string(ctx, -1)) {
        r->triggers_json = ar_strdup(duk_get_string(ctx, -1));
    } else {
        snprintf(err, errlen, "%s:%d: exports.triggers cannot be read as JSON", r->path,
                 line_of(r->path, "triggers"));
        duk_pop(ctx);
        return AR_EINVAL;
    }
    duk_pop(ctx);
    return 0;
}

static duk_ret_t decode_triggers_safe(duk_context *ctx, void *udata)
{
    duk_push_string(ctx, udata);
    duk_json_decode(ctx, -1);
    return 1;
}

void ar__recipes_each_trigger(struct ar_engine *e, ar_trigger_fn fn, void *data)
{
    duk_context *ctx = e->vm->ctx;
    for (struct ar_recipe *r = e->recipes; r; r = r->next) {
        if (duk_safe_call(ctx, decode_triggers_safe, r->triggers_json, 0, 1) !=
                DUK_EXEC_SUCCESS ||
            !duk_is_array(ctx, -1)) {
            duk_pop(ctx);
            continue;
        }
        duk_idx_t arr = duk_get_top_index(ctx);
        duk_size_t n = duk_get_length(ctx, arr);
        for (duk_size_t i = 0; i < n; i++) {
            duk_get_prop_index(ctx, arr, (duk_uarridx_t)i);
            duk_idx_t t = duk_get_top_index(ctx);
            if (duk_is_object(ctx, t)) {
                fn(ctx, (int)t, r, data);
            }
            duk_pop(ctx);
        }
        duk_pop(ctx);
    }
}
