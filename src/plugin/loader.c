/* Native plugins: finding plugins/NAME.so, loading it once per process when something first
 * needs it (so `autorun run` opens only the plugins its recipe requires), refusing a wrong one
 * with a one-line error naming the file, and the registry of what each plugin registered.
 *
 * Everything here runs on the loop thread. A loaded plugin stays loaded for the life of the
 * process (its code may be referenced by handles and by the JS heap); a refusal is remembered
 * too, so every require() of that plugin throws the same error without reopening the file. */
#include "plugin/loader.h"
#include "internal.h"
#include "core/log.h"
#include "js/vm.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ar_plugin_host *hosts;         /* every plugin tried in this process */
static struct ar__plugin_fn *fns;            /* owned; registered functions, by id */
static size_t n_fns;
static struct ar__poll_source *poll_sources; /* owned */

const struct ar__plugin_fn *ar__plugin_fn_get(size_t id)
{
    return id < n_fns ? &fns[id] : NULL;
}

/* ---- The search path: plugins_dir, the installed share directory, the build tree ---- */

static char *exe_dir(void)
{
    char exe[4096];
    size_t len = sizeof(exe);
    if (uv_exepath(exe, &len) != 0 || len == 0) {
        return NULL;
    }
    char *slash = strrchr(exe, '/');
    if (slash == NULL) {
        return NULL;
    }
    *slash = '\0';
    return ar_strdup(exe);
}

/* Fills dirs (owned strings) with the directories searched, in order; returns how many. */
static size_t search_dirs(const struct ar_engine *e, char *dirs[3])
{
    size_t n = 0;
    dirs[n++] = ar_strdup(e->cfg->plugins_dir);
    char *share = ar_exe_share_dir();
    if (share != NULL) {
        dirs[n++] = ar_path_join(share, "plugins");
        free(share);
    }
    char *dir = exe_dir();
    if (dir != NULL) {
        dirs[n++] = ar_path_join(dir, "plugins");
        free(dir);
    }
    /* The same directory twice (plugins_dir set to the build tree's) is searched once. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(dirs[i], dirs[j]) == 0) {
                free(dirs[i]);
                memmove(&dirs[i], &dirs[i + 1], (n - i - 1) * sizeof(*dirs));
                n--;
                i--;
                break;
            }
        }
    }
    return n;
}

static void free_dirs(char *dirs[3], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(dirs[i]);
    }
}

/* The path of the first NAME.so in the search path, or NULL. */
static char *find_file(const struct ar_engine *e, const char *name)
{
    char *dirs[3];
    size_t n = search_dirs(e, dirs);
    char *found = NULL;
    char *file = ar_asprintf("%s.so", name);
    for (size_t i = 0; i < n && found == NULL; i++) {
        char *p = ar_path_join(dirs[i], file);
        if (access(p, F_OK) == 0) {
            found = p;
        } else {
            free(p);
        }
    }
    free(file);
    free_dirs(dirs, n);
    return found;
}

/* ---- Loading ---- */

static struct ar_plugin_host *find_host(const char *name)
{
    for (struct ar_plugin_host *h = hosts; h; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            return h;
        }
    }
    return NULL;
}

typedef const struct ar_plugin *(*init_fn)(const struct ar_plugin_api *api);

/* Opens the file and checks the plugin; on refusal sets host->error (one line). */
static void open_host(struct ar_plugin_host *h)
{
    /* dlopen() searches the library path for a name without a slash. */
    char *path = strchr(h->path, '/') ? ar_strdup(h->path) : ar_asprintf("./%s", h->path);
    h->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    free(path);
    if (h->handle == NULL) {
        const char *why = dlerror();
        h->error = ar_asprintf("%s: cannot load: %s", h->path, why ? why : "unknown error");
        return;
    }
    init_fn init;
    *(void **)&init = dlsym(h->handle, "autorun_plugin_init");
    if (init == NULL) {
        h->error = ar_asprintf("%s: not an autorun plugin (no autorun_plugin_init symbol)",
                               h->path);
        goto refuse;
    }
    const struct ar_plugin *p = init(&ar__plugin_api);
    if (p == NULL) {
        h->error = ar_asprintf("%s: autorun_plugin_init() returned no plugin", h->path);
        goto refuse;
    }
    /* Only the first field is common to every ABI version. */
    if (p->abi_version != AUTORUN_PLUGIN_ABI) {
        h->error = ar_asprintf("%s: built for plugin ABI %u, this autorun has %d", h->path,
                               (unsigned)p->abi_version, AUTORUN_PLUGIN_ABI);
        goto refuse;
    }
    if (p->name == NULL || strcmp(p->name, h->name) != 0) {
        h->error = ar_asprintf("%s: the plugin calls itself '%s'; its file must be %s.so",
                               h->path, p->name ? p->name : "(no name)",
                               p->name ? p->name : "NAME");
        goto refuse;
    }
    h->plugin = p;
    if (p->open != NULL) {
        h->opening = 1;
        int rc = p->open(h);
        h->opening = 0;
        if (rc != 0) {
            h->error = ar_asprintf("%s: failed to start: %s", h->path,
                                   h->fail ? h->fail : ar_strerror(rc));
            /* Its open() ran: it may have left handles or threads that use its code, so the
             * file stays mapped; what it registered is ignored. */
            return;
        }
    }
    return;
refuse:
    dlclose(h->handle);
    h->handle = NULL;
}

int ar__plugin_load(struct ar_engine *e, const char *name, struct ar_plugin_host **out,
                    char *err, size_t errlen)
{
    if (!ar_name_valid(name)) {
        return AR_ENOENT;
    }
    struct ar_plugin_host *h = find_host(name);
    if (h == NULL) {
        char *path = find_file(e, name);
        if (path == NULL) {
            return AR_ENOENT;
        }
        h = ar_calloc(1, sizeof(*h));
        h->name = ar_strdup(name);
        h->path = path;
        h->engine = e;
        h->next = hosts;
        hosts = h;
        open_host(h);
        if (h->error != NULL) {
            ar_log_debug("plugin", "%s", h->error);
        } else {
            ar_log_debug("plugin", "loaded %s (%s %s)", h->path, h->plugin->name,
                         h->plugin->version ? h->plugin->version : "");
        }
    }
    if (h->error != NULL) {
        snprintf(err, errlen, "%s", h->error);
        return AR_EINVAL;
    }
    h->engine = e;
    *out = h;
    return 0;
}

const char *ar__plugin_error(const char *name)
{
    struct ar_plugin_host *h = find_host(name);
    return h ? h->error : NULL;
}

int ar__plugin_check_all(struct ar_engine *e, void (*cb)(void *data, const char *problem),
                         void *data)
{
    char *dirs[3];
    size_t n = search_dirs(e, dirs);
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        DIR *d = opendir(dirs[i]);
        if (d == NULL) {
            continue;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l < 4 || strcmp(de->d_name + l - 3, ".so") != 0) {
                continue;
            }
            char *name = ar_strndup(de->d_name, l - 3);
            struct ar_plugin_host *h;
            char err[512];
            /* Only the first file of a name counts: it is the one require() loads. */
            char *first = ar_name_valid(name) ? find_file(e, name) : NULL;
            char *here = ar_path_join(dirs[i], de->d_name);
            if (first != NULL && strcmp(first, here) == 0 &&
                ar__plugin_load(e, name, &h, err, sizeof(err)) == AR_EINVAL) {
                cb(data, err);
                refused++;
            }
            free(here);
            free(first);
            free(name);
        }
        closedir(d);
    }
    free_dirs(dirs, n);
    return refused;
}

/* ---- Registration, from a plugin's open() ---- */

static int valid_identifier(const char *s)
{
    if (s == NULL || !(*s == '_' || *s == '$' || (*s >= 'a' && *s <= 'z') ||
                       (*s >= 'A' && *s <= 'Z'))) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!(*s == '_' || *s == '$' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9'))) {
            return 0;
        }
    }
    return 1;
}

static void fail(struct ar_plugin_host *h, const char *fmt, const char *arg)
{
    free(h->fail);
    h->fail = ar_asprintf(fmt, arg ? arg : "(null)");
}

int ar__plugin_add_object(struct ar_plugin_host *h, const char *global,
                          const struct ar_js_function *list, const char *js)
{
    if (h == NULL || !h->opening) {
        return AR_EINVAL;
    }
    if (global != NULL && !valid_identifier(global)) {
        fail(h, "'%s' is not a valid name for a global", global);
        return AR_EINVAL;
    }
    for (struct ar__plugin_object *o = h->objects; o; o = o->next) {
        if ((global == NULL && o->global == NULL) ||
            (global != NULL && o->global != NULL && strcmp(global, o->global) == 0)) {
            fail(h, "%s registered twice", global ? global : "the module");
            return AR_EINVAL;
        }
    }
    size_t count = 0;
    for (; list != NULL && list[count].name != NULL; count++) {
        if (!valid_identifier(list[count].name) || list[count].fn == NULL) {
            fail(h, "function '%s' needs a valid name and a C function", list[count].name);
            return AR_EINVAL;
        }
    }
    struct ar__plugin_fn *grown = realloc(fns, (n_fns + count) * sizeof(*fns) + 1);
    if (grown == NULL) {
        return AR_ENOMEM;
    }
    fns = grown;
    struct ar__plugin_object *o = ar_calloc(1, sizeof(*o));
    o->global = ar_strdup(global);
    o->js = ar_strdup(js);
    o->first_fn = n_fns;
    o->n_fns = count;
    for (size_t i = 0; i < count; i++) {
        fns[n_fns + i].host = h;
        fns[n_fns + i].name = ar_asprintf("%s.%s", global ? global : h->name, list[i].name);
        fns[n_fns + i].fn = list[i].fn;
    }
    n_fns += count;
    /* Keep registration order, so the JS glue of a global sees earlier ones. */
    struct ar__plugin_object **tail = &h->objects;
    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = o;
    return 0;
}

int ar__plugin_add_poll(struct ar_plugin_host *h, const char *name, ar_poll_fn fn, void *data)
{
    if (h == NULL || !h->opening) {
        return AR_EINVAL;
    }
    if (!valid_identifier(name) || fn == NULL) {
        fail(h, "poll source '%s' needs a valid name and a C function", name);
        return AR_EINVAL;
    }
    char *full = ar_asprintf("%s.%s", h->name, name);
    for (struct ar__poll_source *s = poll_sources; s; s = s->next) {
        if (strcmp(s->name, full) == 0) {
            fail(h, "poll source '%s' registered twice", name);
            free(full);
            return AR_EINVAL;
        }
    }
    struct ar__poll_source *s = ar_calloc(1, sizeof(*s));
    s->name = full;
    s->host = h;
    s->fn = fn;
    s->data = data;
    s->next = poll_sources;
    poll_sources = s;
    return 0;
}

/* ---- Poll sources, for the poller ---- */

const struct ar__poll_source *ar__plugin_poll_sources(void)
{
    return poll_sources;
}

const struct ar__poll_source *ar__plugin_poll_source(struct ar_engine *e, const char *name)
{
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name) {
        return NULL;
    }
    char *plugin = ar_strndup(name, (size_t)(dot - name));
    struct ar_plugin_host *h;
    char err[512];
    int rc = ar__plugin_load(e, plugin, &h, err, sizeof(err));
    free(plugin);
    if (rc != 0) {
        if (rc == AR_EINVAL) {
            ar_log_error("plugin", "%s", err);
        }
        return NULL;
    }
    for (struct ar__poll_source *s = poll_sources; s; s = s->next) {
        if (s->host == h && strcmp(s->name, name) == 0) {
            return s;
        }
    }
    return NULL;
}
