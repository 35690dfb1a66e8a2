/* The engine: one libuv loop that owns the state database, the JavaScript VM and
 * every run. History writes made during a loop iteration are committed together. */
#include "internal.h"
#include "core/log.h"
#include "core/prefault.h"
#include "db/history.h"
#include "js/vm.h"
#include "net/curl_uv.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void commit_now(struct ar_engine *e)
{
    if (ar_history_in_batch(e->history) && ar_history_commit(e->history) != 0) {
        ar_log_error("history", "commit failed: %s", ar_history_errmsg(e->history));
    }
}

/* The last prepare callback of an iteration (libuv runs the oldest handle last): commit what
 * the iteration wrote, then let out the log lines it produced before the loop waits. */
static void commit_prepare_cb(uv_prepare_t *h)
{
    commit_now(ar_container_of(h, struct ar_engine, commit_prepare));
    ar_log_flush();
}

static void commit_check_cb(uv_check_t *h)
{
    commit_now(ar_container_of(h, struct ar_engine, commit_check));
}

int ar_engine_create(struct ar_config *cfg, struct ar_engine **out, char *err, size_t errlen)
{
    struct ar_engine *e = ar_calloc(1, sizeof(*e));
    e->cfg = cfg;
    e->runs.next = e->runs.prev = &e->runs;
    int rc = uv_loop_init(&e->loop);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the event loop: %s", uv_strerror(rc));
        free(e);
        return rc;
    }
    uv_prepare_init(&e->loop, &e->commit_prepare);
    uv_check_init(&e->loop, &e->commit_check);
    uv_prepare_start(&e->commit_prepare, commit_prepare_cb);
    uv_check_start(&e->commit_check, commit_check_cb);
    /* They only flush; they must not keep the loop alive. */
    uv_unref((uv_handle_t *)&e->commit_prepare);
    uv_unref((uv_handle_t *)&e->commit_check);

    if ((rc = ar_history_open(cfg->home, &e->history, err, errlen)) != 0 ||
        (rc = ar__vm_create(e, &e->vm, err, errlen)) != 0) {
        ar_engine_destroy(e);
        return rc;
    }
    *out = e;
    return 0;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* free_memory 0: the process exits next. What other processes must see still happens (runs
 * recorded as interrupted, history committed and closed, database and SMTP sessions ended);
 * the JavaScript heap and the recipes are left to the kernel, which takes them back at once,
 * where Duktape would walk the heap three times and free each object. */
static void engine_teardown(struct ar_engine *e, int free_memory)
{
    if (e == NULL) {
        return;
    }
    while (e->runs.next != &e->runs) {
        struct ar_run *run = e->runs.next;
        run->status = AR_RUN_INTERRUPTED;
        ar__run_abort(run, "Error: autorun stopped before the run finished");
    }
    ar_curl_uv_destroy(e->curl);
    e->curl = NULL;
    uv_close((uv_handle_t *)&e->commit_prepare, NULL);
    uv_close((uv_handle_t *)&e->commit_check, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    if (e->history) {
        commit_now(e);
    }
    /* Anything still open belongs to no one now (it cannot happen unless a module
     * forgot a handle); close it rather than leak the loop. */
    if (uv_loop_close(&e->loop) != 0) {
        uv_walk(&e->loop, close_walk_cb, NULL);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        uv_loop_close(&e->loop);
    }
    if (!free_memory) {
        ar__vm_end_sessions(e->vm);
        ar_history_exit(e->history);
        return;
    }
    ar__vm_destroy(e->vm);
    ar_history_close(e->history);
    ar__engine_forget_recipes(e);
    free(e);
}

void ar__engine_forget_recipes(struct ar_engine *e)
{
    while (e->recipes) {
        struct ar_recipe *r = e->recipes;
        e->recipes = r->next;
        ar__recipe_free(r);
    }
    for (size_t i = 0; i < e->n_secrets; i++) {
        free(e->secrets[i].name);
        free(e->secrets[i].url);
    }
    free(e->secrets);
    e->secrets = NULL;
    e->n_secrets = 0;
    e->secrets_loaded = 0;
}

void ar_engine_destroy(struct ar_engine *e)
{
    engine_teardown(e, 1);
}

void ar_engine_exit(struct ar_engine *e)
{
    engine_teardown(e, AR_SANITIZED);
}

struct ar_curl_uv *ar__engine_curl(struct ar_engine *e)
{
    if (e->curl == NULL && ar_curl_uv_create(&e->loop, &e->curl) != 0) {
        return NULL;
    }
    return e->curl;
}

int ar_engine_run_loop(struct ar_engine *e)
{
    int rc = uv_run(&e->loop, UV_RUN_DEFAULT);
    commit_now(e);
    return rc;
}

int ar_engine_recipe(struct ar_engine *e, const char *name, struct ar_recipe **out, char *err,
                     size_t errlen)
{
    for (struct ar_recipe *r = e->recipes; r; r = r->next) {
        if (strcmp(r->name, name) == 0) {
            *out = r;
            return 0;
        }
    }
    struct ar_recipe *r;
    int rc = ar__recipe_load(e, name, &r, err, errlen);
    if (rc != 0) {
        return rc;
    }
    r->next = e->recipes;
    e->recipes = r;
    *out = r;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ar_engine_recipe_names(struct ar_engine *e, char ***names, size_t *n)
{
    DIR *d = opendir(e->cfg->recipes_dir);
    if (d == NULL) {
        return -errno;
    }
    char **list = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".js") != 0) {
            continue;
        }
        char *name = ar_strndup(de->d_name, l - 3);
        if (!ar_name_valid(name)) {
            free(name);
            continue;
        }
        list = realloc(list, (count + 1) * sizeof(*list));
        if (list == NULL) {
            abort();
        }
        list[count++] = name;
    }
    closedir(d);
    if (count > 1) {
        qsort(list, count, sizeof(*list), cmp_names);
    }
    *names = list;
    *n = count;
    return 0;
}

void ar_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* ---- Secrets: the environment first, then the secrets file ---- */

static int load_secrets_file(struct ar_engine *e, char *err, size_t errlen)
{
    const char *path = e->cfg->secrets_file;
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0; /* no file: only the environment */
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s: the secrets file is readable by group or others; run chmod 600 %s", path,
                 path);
        return AR_EACCES;
    }
    char *text;
    int rc = ar_read_file(path, 1 << 20, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, ar_strerror(rc));
        return rc;
    }
    int lineno = 0;
    char *next;
    for (char *line = text; line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') {
            line[--l] = '\0';
        }
        if (*line == '\0' || *line == '#') {
            continue;
        }
        char *eq = strchr(line, '=');
        if (eq == NULL || eq == line) {
            snprintf(err, errlen, "%s:%d: expected NAME=value", path, lineno);
            free(text);
            return AR_EINVAL;
        }
        *eq = '\0';
        e->secrets = realloc(e->secrets, (e->n_secrets + 1) * sizeof(*e->secrets));
        if (e->secrets == NULL) {
            abort();
        }
        e->secrets[e->n_secrets].name = ar_strdup(line);
        e->secrets[e->n_secrets].url = ar_strdup(eq + 1);
        e->n_secrets++;
    }
    free(text);
    return 0;
}

int ar__engine_secret(struct ar_engine *e, const char *name, const char **value, char *err,
                      size_t errlen)
{
    const char *env = getenv(name);
    if (env != NULL && *env) {
        *value = env;
        return 0;
    }
    if (!e->secrets_loaded) {
        int rc = load_secrets_file(e, err, errlen);
        if (rc != 0) {
            return rc;
        }
        e->secrets_loaded = 1;
    }
    for (size_t i = 0; i < e->n_secrets; i++) {
        if (strcmp(e->secrets[i].name, name) == 0) {
            *value = e->secrets[i].url;
            return 0;
        }
    }
    snprintf(err, errlen, "secret '%s' is not set: export %s=... or add it to %s", name, name,
             e->cfg->secrets_file);
    return AR_ENOENT;
}
