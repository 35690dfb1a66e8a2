/* Core bindings: run completion, log, sleep, secret, template, modules, ctx.file. */
#include "js/vm.h"
#include "internal.h"
#include "core/log.h"
#include "core/template.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULE_MAX_BYTES (4 << 20)
#define FILE_MAX_BYTES (1 << 20)

static struct ar_run *current_run(duk_context *ctx)
{
    return ar__vm_of(ctx)->current;
}

/* ---- done(runId, ok, value): the root fiber returned or threw ---- */

static duk_ret_t encode_safe(duk_context *ctx, void *udata)
{
    duk_json_encode(ctx, -1);
    return 1;
}

static duk_ret_t js_core_done(duk_context *ctx)
{
    struct ar_run *run = current_run(ctx);
    if (run == NULL || (int64_t)duk_require_number(ctx, 0) != run->id) {
        return 0;
    }
    int ok = duk_to_boolean(ctx, 1);
    duk_set_top(ctx, 3);
    /* -> [ id ok value ] */
    if (ok) {
        if (duk_is_undefined(ctx, 2) || duk_is_function(ctx, 2)) {
            run->result_json = ar_strdup("null");
        } else if (duk_safe_call(ctx, encode_safe, NULL, 1, 1) == DUK_EXEC_SUCCESS) {
            run->result_json = ar_strdup(duk_is_string(ctx, -1) ? duk_get_string(ctx, -1) : "null");
        } else {
            run->error = ar_asprintf("TypeError: the run's result cannot be stored as JSON: %s",
                                     duk_safe_to_string(ctx, -1));
            ok = 0;
        }
    } else {
        ar__vm_describe_error(ctx, &run->error, &run->error_where, &run->error_stack);
    }
    run->status = ok ? AR_RUN_SUCCEEDED : AR_RUN_FAILED;
    run->finished = 1;
    return 0;
}

/* ---- log(level, message) ---- */

static duk_ret_t js_core_log(duk_context *ctx)
{
    const char *level = duk_require_string(ctx, 0);
    const char *msg = duk_safe_to_string(ctx, 1);
    struct ar_run *run = current_run(ctx);
    if (run != NULL) {
        ar__run_log(run, level, msg);
    } else {
        /* A recipe logging while it loads (top-level code). */
        ar_log_flush();
        fprintf(stderr, "autorun: [load] %s: %s\n", level, msg);
    }
    return 0;
}

/* ---- sleep(fiber, ms) ---- */

struct sleep_op {
    struct ar_op op;
    uv_timer_t timer;
};

static void sleep_close_cb(uv_handle_t *h)
{
    free(ar_container_of(h, struct sleep_op, timer));
}

static void sleep_timer_cb(uv_timer_t *t)
{
    struct sleep_op *s = ar_container_of(t, struct sleep_op, timer);
    struct ar_run *run = s->op.run;
    uint32_t fiber = s->op.fiber;
    ar__run_op_remove(&s->op);
    uv_close((uv_handle_t *)&s->timer, sleep_close_cb);
    ar__vm_resume(run->engine->vm, run, fiber, NULL, NULL, 0);
}

static void sleep_cancel(struct ar_op *op)
{
    struct sleep_op *s = ar_container_of(op, struct sleep_op, op);
    uv_close((uv_handle_t *)&s->timer, sleep_close_cb);
}

static duk_ret_t js_core_sleep(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    double ms = duk_require_number(ctx, 1);
    struct ar_run *run = current_run(ctx);
    if (run == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "sleep() outside a run");
    }
    struct sleep_op *s = ar_calloc(1, sizeof(*s));
    uv_timer_init(&run->engine->loop, &s->timer);
    /* The loop's clock is cached at the start of an iteration; a run that computed for a
     * while would otherwise sleep less than it asked. */
    uv_update_time(&run->engine->loop);
    uv_timer_start(&s->timer, sleep_timer_cb, ms > 9e15 ? (uint64_t)9e15 : (uint64_t)ms, 0);
    s->op.cancel = sleep_cancel;
    ar__run_op_add(run, &s->op, fiber);
    return 0;
}

/* ---- secret(name) ---- */

static duk_ret_t js_core_secret(duk_context *ctx)
{
    const char *name = duk_require_string(ctx, 0);
    struct ar_run *run = current_run(ctx);
    const char *value;
    char err[512];
    if (ar__engine_secret(ar__vm_of(ctx)->engine, name, &value, err, sizeof(err)) != 0) {
        ar__vm_push_error(ctx, "SecretError", err);
        return duk_throw(ctx);
    }
    if (run != NULL) {
        ar_redactor_add(&run->redactor, value);
    }
    duk_push_string(ctx, value);
    return 1;
}

/* ---- template(text, values, html): values maps each tag's path to its text ---- */

static int template_lookup(void *data, const char *path, struct ar_buf *out)
{
    duk_context *ctx = data;
    int found = 0;
    /* values holds only strings the prelude put there, so this cannot throw. */
    if (duk_get_prop_string(ctx, 1, path) && duk_is_string(ctx, -1)) {
        duk_size_t n;
        const char *s = duk_get_lstring(ctx, -1, &n);
        ar_buf_append(out, s, n);
        found = 1;
    }
    duk_pop(ctx);
    return found ? 0 : 1;
}

static duk_ret_t js_core_template(duk_context *ctx)
{
    const char *text = duk_require_string(ctx, 0);
    duk_require_object(ctx, 1);
    int html = duk_to_boolean(ctx, 2);
    char *out;
    size_t at = 0;
    int rc = ar_template_render(text, template_lookup, ctx, html, &out, &at);
    if (rc != 0) {
        return duk_error(ctx, DUK_ERR_SYNTAX_ERROR, "template: unterminated {{ at offset %d",
                         (int)at);
    }
    duk_push_string(ctx, out);
    free(out);
    return 1;
}

/* ---- Files: modules and ctx.file, confined to the recipe and plugin directories ---- */

/* Lexically normalises a relative or absolute path: removes "." and "x/.." parts.
 * Returns NULL when ".." would climb above the start. */
static char *normalize(const char *path)
{
    char *copy = ar_strdup(path);
    char **parts = ar_calloc(strlen(path) + 1, sizeof(char *));
    size_t n = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0) {
            continue;
        }
        if (strcmp(p, "..") == 0) {
            if (n == 0) {
                free(parts);
                free(copy);
                return NULL;
            }
            n--;
            continue;
        }
        parts[n++] = p;
    }
    struct ar_buf b = {0};
    if (path[0] == '/') {
        ar_buf_puts(&b, "/");
    }
    for (size_t i = 0; i < n; i++) {
        ar_buf_printf(&b, "%s%s", i ? "/" : "", parts[i]);
    }
    free(parts);
    free(copy);
    return ar_buf_steal(&b);
}

static int under(const char *path, const char *root)
{
    char *r = normalize(root);
    int ok = r != NULL && (r[0] == '\0' || (strncmp(path, r, strlen(r)) == 0 &&
                                            path[strlen(r)] == '/'));
    free(r);
    return ok;
}

static int is_file(const char *path)
{
    return access(path, R_OK) == 0;
}

/* Pushes the path of a module that exists, trying NAME, NAME.js, NAME/index.js. */
static int push_candidate(duk_context *ctx, const char *base)
{
    static const char *const suffixes[] = {"", ".js", "/index.js"};
    for (size_t i = 0; i < AR_ARRAY_SIZE(suffixes); i++) {
        char *p = ar_asprintf("%s%s", base, suffixes[i]);
        size_t l = strlen(p);
        if (l > 3 && strcmp(p + l - 3, ".js") == 0 && is_file(p)) {
            duk_push_string(ctx, p);
            free(p);
            return 1;
        }
        free(p);
    }
    return 0;
}

/* The plugins an installed autorun ships, found from the executable's own path so that a
 * package unpacked anywhere (another prefix, a DESTDIR) still finds them. Looked up only after
 * the configured directories, so a normal require() costs nothing extra. */
static char *exe_plugins_dir(void)
{
    char *share = ar_exe_share_dir();
    char *dir = share ? ar_path_join(share, "plugins") : NULL;
    free(share);
    return dir;
}

static duk_ret_t js_core_resolve(duk_context *ctx)
{
    const char *dir = duk_require_string(ctx, 0);
    const char *name = duk_require_string(ctx, 1);
    const struct ar_config *cfg = ar__vm_of(ctx)->engine->cfg;
    if (strncmp(name, "./", 2) == 0 || strncmp(name, "../", 3) == 0) {
        char *joined = ar_path_join(dir, name);
        char *path = normalize(joined);
        free(joined);
        int allowed = path && (under(path, cfg->recipes_dir) || under(path, cfg->plugins_dir) ||
                               under(path, AR_SHARE_DIR "/plugins"));
        if (path && !allowed) {
            char *exe_dir = exe_plugins_dir();
            allowed = exe_dir && under(path, exe_dir);
            free(exe_dir);
        }
        int found = allowed && push_candidate(ctx, path);
        free(path);
        if (!allowed) {
            return duk_error(ctx, DUK_ERR_ERROR,
                             "require('%s'): outside the recipes and plugins directories", name);
        }
        if (!found) {
            return duk_error(ctx, DUK_ERR_ERROR, "require('%s'): no such module beside %s", name,
                             dir);
        }
        return 1;
    }
    if (!ar_name_valid(name)) {
        return duk_error(ctx, DUK_ERR_ERROR,
                         "require('%s'): not a plugin name (use './file' for recipe files)", name);
    }
    const char *roots[] = {cfg->plugins_dir, AR_SHARE_DIR "/plugins"};
    for (size_t i = 0; i < AR_ARRAY_SIZE(roots); i++) {
        char *base = ar_path_join(roots[i], name);
        int found = push_candidate(ctx, base);
        free(base);
        if (found) {
            return 1;
        }
    }
    char *exe_dir = exe_plugins_dir();
    if (exe_dir) {
        char *base = ar_path_join(exe_dir, name);
        int found = push_candidate(ctx, base);
        free(base);
        free(exe_dir);
        if (found) {
            return 1;
        }
    }
    return duk_error(ctx, DUK_ERR_ERROR, "require('%s'): no plugin %s.js in %s or %s", name, name,
                     cfg->plugins_dir, AR_SHARE_DIR "/plugins");
}

static duk_ret_t js_core_compile(duk_context *ctx)
{
    const char *path = duk_require_string(ctx, 0);
    char *src;
    size_t len;
    int rc = ar_read_file(path, MODULE_MAX_BYTES, &src, &len);
    if (rc != 0) {
        return duk_error(ctx, DUK_ERR_ERROR, "%s: cannot read: %s", path, ar_strerror(rc));
    }
    /* The wrapper shares the first line, so line numbers match the file. */
    duk_push_string(ctx, "(function (exports, require, module, __filename, __dirname) {");
    duk_push_lstring(ctx, src, len);
    free(src);
    duk_push_string(ctx, "\n})");
    duk_concat(ctx, 3);
    duk_push_string(ctx, path);
    duk_compile(ctx, DUK_COMPILE_EVAL);
    duk_call(ctx, 0);
    return 1;
}

static duk_ret_t js_core_read_file(duk_context *ctx)
{
    const char *dir = duk_require_string(ctx, 0);
    const char *rel = duk_require_string(ctx, 1);
    if (rel[0] == '/' || rel[0] == '\0') {
        return duk_error(ctx, DUK_ERR_ERROR, "ctx.file('%s'): use a path relative to the recipe",
                         rel);
    }
    char *joined = ar_path_join(dir, rel);
    char *path = normalize(joined);
    free(joined);
    if (path == NULL || !under(path, dir)) {
        free(path);
        return duk_error(ctx, DUK_ERR_ERROR, "ctx.file('%s'): outside the recipe's directory", rel);
    }
    char *text;
    size_t len;
    int rc = ar_read_file(path, FILE_MAX_BYTES, &text, &len);
    if (rc != 0) {
        duk_push_error_object(ctx, DUK_ERR_ERROR, "ctx.file('%s'): %s: %s", rel, path,
                              ar_strerror(rc));
        free(path);
        return duk_throw(ctx);
    }
    free(path);
    duk_push_lstring(ctx, text, len);
    free(text);
    return 1;
}

/* ---- progress(done, total): parallel() on a terminal ---- */

static duk_ret_t js_core_progress(duk_context *ctx)
{
    struct ar_engine *e = ar__vm_of(ctx)->engine;
    int done = duk_require_int(ctx, 0), total = duk_require_int(ctx, 1);
    struct ar_run *run = current_run(ctx);
    if (e->progress && run != NULL && total >= 10) {
        fprintf(stderr, "\r\033[K%s: %d/%d", run->recipe->name, done, total);
        if (done == total) {
            fputc('\n', stderr);
        }
        fflush(stderr);
    }
    return 0;
}

/* ---- duration(v): "30s" or milliseconds ---- */

static duk_ret_t js_core_duration(duk_context *ctx)
{
    if (duk_is_number(ctx, 0)) {
        return 1;
    }
    int64_t ms;
    if (!duk_is_string(ctx, 0) || ar_parse_duration(duk_get_string(ctx, 0), &ms) != 0) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR,
                         "'%s' is not a duration (e.g. 500ms, 30s, 5m, 1h, 7d)",
                         duk_safe_to_string(ctx, 0));
    }
    duk_push_number(ctx, (double)ms);
    return 1;
}

static const duk_function_list_entry core_funcs[] = {
    {"done", js_core_done, 3},
    {"log", js_core_log, 2},
    {"sleep", js_core_sleep, 2},
    {"secret", js_core_secret, 1},
    {"template", js_core_template, 3},
    {"resolve", js_core_resolve, 2},
    {"compile", js_core_compile, 1},
    {"readFile", js_core_read_file, 2},
    {"progress", js_core_progress, 2},
    {"duration", js_core_duration, 1},
    {NULL, NULL, 0},
};

void ar__js_core_open(duk_context *ctx)
{
    duk_put_function_list(ctx, -1, core_funcs);
}
