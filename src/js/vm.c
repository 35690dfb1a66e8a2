/* The JavaScript VM: one Duktape heap per engine, recipes compiled once, each run a
 * tree of coroutines (Duktape threads), heap and CPU limits enforced per run.
 *
 * Every entry from C into JS is a protected call; an error that escapes ends the
 * run it belongs to, never the process. */
#include "js/vm.h"
#include "internal.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

/* Each allocation carries a header naming the run that made it (a slot index and
 * the slot's generation), so a run's live bytes can be limited even though all
 * runs share one heap. Slot 0 belongs to no run (runtime, modules). */
struct alloc_hdr {
    size_t size;
    uint32_t slot;
    uint32_t gen;
};

struct vm_slot {
    struct ar_run *run; /* borrowed; NULL when free */
    uint32_t gen;
    uint32_t next_free;
};

/* The runtime's lib/ files as bytecode, generated at build time (src/js/tool/jsc.c). */
extern const struct ar_js_source {
    const char *name;
    const unsigned char *bytecode;
    size_t len;
} ar__js_sources[];

struct ar_vm *ar__vm_of(duk_context *ctx)
{
    duk_memory_functions mf;
    duk_get_memory_functions(ctx, &mf);
    return mf.udata;
}

/* Called by Duktape every few thousand instructions (DUK_USE_EXEC_TIMEOUT_CHECK).
 * Once it says "timed out" it must keep saying so until the error has left JS. */
int ar__js_exec_timeout_check(void *udata)
{
    struct ar_vm *vm = udata;
    struct ar_run *run = vm->current;
    if (run == NULL) {
        return 0;
    }
    /* A run over its heap limit is stopped here too: Duktape's timeout error cannot be
     * caught, so a recipe that swallows its out-of-memory errors cannot spin on them. */
    if (run->over_heap) {
        return 1;
    }
    if (run->timed_out || uv_hrtime() >= run->deadline_hr) {
        run->timed_out = 1;
        return 1;
    }
    return 0;
}

/* src/js/duk_hooks.inc */
void ar__duk_interrupt_soon(duk_context *ctx);
void ar__duk_no_emergency_compaction(duk_context *ctx);
void ar__duk_defer_first_gc(duk_context *ctx);

static struct alloc_hdr *hdr_of(void *ptr)
{
    return (struct alloc_hdr *)ptr - 1;
}

static void account(struct ar_vm *vm, struct alloc_hdr *h, int sign)
{
    if (sign > 0) {
        vm->heap_bytes += h->size;
    } else {
        vm->heap_bytes -= h->size;
    }
    if (h->slot != 0 && vm->slots[h->slot].gen == h->gen && vm->slots[h->slot].run) {
        struct ar_run *run = vm->slots[h->slot].run;
        if (sign > 0) {
            run->heap_bytes += h->size;
        } else {
            run->heap_bytes -= h->size;
        }
    }
}

/* Refuses an allocation that would take the current run over its limit; the
 * refusal is sticky, so the run cannot catch the error and carry on. */
static int over_limit(struct ar_vm *vm, size_t grow)
{
    struct ar_run *run = vm->current;
    int over = vm->heap_bytes + grow > vm->heap_total_limit ||
               (run && (run->over_heap || run->heap_bytes + grow > vm->run_heap_limit));
    if (over && run && !run->over_heap) {
        run->over_heap = 1;
        /* Stop the run at its next instruction (ar__js_exec_timeout_check). */
        ar__duk_interrupt_soon(vm->ctx);
    }
    return over;
}

static void stamp(struct ar_vm *vm, struct alloc_hdr *h, size_t size)
{
    struct ar_run *run = vm->current;
    h->size = size;
    h->slot = run ? run->heap_slot : 0;
    h->gen = run ? vm->slots[run->heap_slot].gen : 0;
    account(vm, h, +1);
}

static void *vm_alloc(void *udata, duk_size_t size)
{
    struct ar_vm *vm = udata;
    if (over_limit(vm, size)) {
        return NULL;
    }
    struct alloc_hdr *h = malloc(sizeof(*h) + size);
    if (h == NULL) {
        return NULL;
    }
    stamp(vm, h, size);
    return h + 1;
}

static void *vm_realloc(void *udata, void *ptr, duk_size_t size)
{
    struct ar_vm *vm = udata;
    if (ptr == NULL) {
        return vm_alloc(udata, size);
    }
    struct alloc_hdr *old = hdr_of(ptr);
    if (size == 0) {
        account(vm, old, -1);
        free(old);
        return NULL;
    }
    if (size > old->size && over_limit(vm, size - old->size)) {
        return NULL;
    }
    struct alloc_hdr saved = *old;
    account(vm, old, -1);
    struct alloc_hdr *h = realloc(old, sizeof(*h) + size);
    if (h == NULL) {
        account(vm, &saved, +1);
        return NULL;
    }
    stamp(vm, h, size);
    return h + 1;
}

static void vm_free(void *udata, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    struct alloc_hdr *h = hdr_of(ptr);
    account(udata, h, -1);
    free(h);
}

static void vm_fatal(void *udata, const char *msg)
{
    /* Only reached for errors outside any protected call, which autorun never makes. */
    ar_log_flush();
    fprintf(stderr, "autorun: fatal JavaScript engine error: %s\n", msg ? msg : "(none)");
    abort();
}

void ar__vm_run_attach(struct ar_vm *vm, struct ar_run *run)
{
    uint32_t s = vm->free_slot;
    if (s == 0) {
        uint32_t n = vm->n_slots ? vm->n_slots * 2 : 64;
        struct vm_slot *slots = realloc(vm->slots, n * sizeof(*slots));
        if (slots == NULL) {
            abort();
        }
        /* Slot 0 is never handed out. */
        for (uint32_t i = vm->n_slots ? vm->n_slots : 1; i < n; i++) {
            slots[i].run = NULL;
            slots[i].gen = 0;
            slots[i].next_free = i + 1 < n ? i + 1 : 0;
        }
        if (vm->n_slots == 0) {
            memset(&slots[0], 0, sizeof(slots[0]));
        }
        s = vm->n_slots ? vm->n_slots : 1;
        vm->slots = slots;
        vm->n_slots = n;
    }
    vm->free_slot = vm->slots[s].next_free;
    vm->slots[s].run = run;
    vm->slots[s].gen++;
    run->heap_slot = s;
    run->heap_bytes = 0;
}

void ar__vm_run_detach(struct ar_vm *vm, struct ar_run *run)
{
    struct vm_slot *slot = &vm->slots[run->heap_slot];
    slot->run = NULL;
    slot->gen++; /* what the run left behind is freed later, on no one's account */
    slot->next_free = vm->free_slot;
    vm->free_slot = run->heap_slot;
    run->heap_slot = 0;
}

void ar__vm_push_error(duk_context *ctx, const char *name, const char *message)
{
    duk_push_error_object(ctx, DUK_ERR_ERROR, "%s", message);
    duk_push_string(ctx, name);
    duk_put_prop_string(ctx, -2, "name");
}

/* ---- Entry points into the prelude, stored in the heap stash ---- */

static void push_entry(duk_context *ctx, const char *fn)
{
    duk_push_heap_stash(ctx);
    duk_get_prop_string(ctx, -1, "entry");
    duk_get_prop_string(ctx, -1, fn);
    duk_remove(ctx, -2);
    duk_remove(ctx, -2);
}

/* The innermost frame of a stack that is in a recipe or plugin file ("path.js:LINE"):
 * errors raised by the runtime (its lib files, or C) are reported where the recipe
 * called it, the place a user can fix. NULL when there is none. */
static char *user_frame(const char *stack)
{
    for (const char *p = strchr(stack, '('); p; p = strchr(p + 1, '(')) {
        const char *close = strchr(p, ')');
        const char *colon = close ? memchr(p, ':', (size_t)(close - p)) : NULL;
        if (colon == NULL) {
            continue;
        }
        const char *c2;
        while ((c2 = memchr(colon + 1, ':', (size_t)(close - colon - 1))) != NULL) {
            colon = c2;
        }
        if (colon - p > 4 && memcmp(colon - 3, ".js", 3) == 0) {
            return ar_strndup(p + 1, (size_t)(close - p - 1));
        }
    }
    return NULL;
}

/* Describes the error at -1 as "Name: message", its location and its stack. */
void ar__vm_describe_error(duk_context *ctx, char **error, char **where, char **stack)
{
    if (duk_is_error(ctx, -1)) {
        duk_get_prop_string(ctx, -1, "name");
        duk_get_prop_string(ctx, -2, "message");
        *error = ar_asprintf("%s: %s", duk_safe_to_string(ctx, -2), duk_safe_to_string(ctx, -1));
        duk_pop_2(ctx);
        duk_get_prop_string(ctx, -1, "stack");
        *stack = duk_is_string(ctx, -1) ? ar_strdup(duk_get_string(ctx, -1)) : NULL;
        duk_pop(ctx);
        *where = *stack ? user_frame(*stack) : NULL;
        if (*where == NULL) {
            duk_get_prop_string(ctx, -1, "fileName");
            duk_get_prop_string(ctx, -2, "lineNumber");
            const char *file = duk_get_string(ctx, -2);
            size_t fl = file ? strlen(file) : 0;
            if (fl > 3 && strcmp(file + fl - 3, ".js") == 0 && duk_is_number(ctx, -1)) {
                *where = ar_asprintf("%s:%d", file, duk_get_int(ctx, -1));
            }
            duk_pop_2(ctx);
        }
    } else {
        *error = ar_asprintf("Error: uncaught %s", duk_safe_to_string(ctx, -1));
        *where = NULL;
        *stack = NULL;
    }
}

/* Runs after every call into a run's JS: finish it, or notice it can go no further. */
static void after_entry(struct ar_vm *vm, struct ar_run *run, int rc)
{
    duk_context *ctx = vm->ctx;
    vm->current = NULL;
    if (rc != DUK_EXEC_SUCCESS && !run->finished) {
        char *error, *where, *stack;
        ar__vm_describe_error(ctx, &error, &where, &stack);
        duk_pop(ctx);
        free(run->error_where);
        run->error_where = where;
        free(run->error_stack);
        run->error_stack = stack;
        ar__run_abort(run, error);
        free(error);
        return;
    }
    duk_pop(ctx);
    if (run->finished) {
        ar__run_finished(run);
    } else if (run->ops.next == &run->ops) {
        ar__run_abort(run, "InternalError: the run is waiting but nothing can wake it");
    }
}

struct start_args {
    struct ar_run *run;
};

static duk_ret_t start_safe(duk_context *ctx, void *udata)
{
    struct ar_run *run = ((struct start_args *)udata)->run;
    push_entry(ctx, "start");
    duk_push_number(ctx, (double)run->id);
    duk_push_string(ctx, run->recipe->name);
    duk_push_string(ctx, run->input_json ? run->input_json : "");
    duk_push_string(ctx, run->trigger);
    duk_push_boolean(ctx, run->dry_run);
    duk_push_int(ctx, run->attempt);
    duk_call(ctx, 6);
    return 1;
}

void ar__vm_start(struct ar_vm *vm, struct ar_run *run)
{
    struct start_args a = {run};
    vm->current = run;
    int rc = duk_safe_call(vm->ctx, start_safe, &a, 0, 1);
    after_entry(vm, run, rc);
}

struct resume_args {
    struct ar_run *run;
    uint32_t fiber;
    ar_vm_push_cb push;
    void *data;
    int is_error;
};

static duk_ret_t resume_safe(duk_context *ctx, void *udata)
{
    struct resume_args *a = udata;
    push_entry(ctx, "resume");
    duk_push_number(ctx, (double)a->run->id);
    duk_push_uint(ctx, a->fiber);
    if (a->push) {
        a->push(ctx, a->data);
    } else {
        duk_push_undefined(ctx);
    }
    duk_push_boolean(ctx, a->is_error);
    duk_call(ctx, 4);
    return 1;
}

void ar__vm_resume(struct ar_vm *vm, struct ar_run *run, uint32_t fiber, ar_vm_push_cb push,
                   void *data, int is_error)
{
    struct resume_args a = {run, fiber, push, data, is_error};
    vm->current = run;
    int rc = duk_safe_call(vm->ctx, resume_safe, &a, 0, 1);
    after_entry(vm, run, rc);
}

static duk_ret_t kill_safe(duk_context *ctx, void *udata)
{
    struct ar_run *run = udata;
    push_entry(ctx, "kill");
    duk_push_number(ctx, (double)run->id);
    duk_call(ctx, 1);
    return 0;
}

void ar__vm_kill(struct ar_vm *vm, struct ar_run *run)
{
    struct ar_run *saved = vm->current;
    vm->current = NULL;
    duk_safe_call(vm->ctx, kill_safe, run, 0, 1);
    duk_pop(vm->ctx);
    vm->current = saved;
}

static duk_ret_t json_check_safe(duk_context *ctx, void *udata)
{
    duk_push_string(ctx, udata);
    duk_json_decode(ctx, -1);
    return 0;
}

int ar__vm_json_check(struct ar_vm *vm, const char *text, char *err, size_t errlen)
{
    int rc = duk_safe_call(vm->ctx, json_check_safe, (void *)text, 0, 1);
    if (rc != DUK_EXEC_SUCCESS) {
        duk_get_prop_string(vm->ctx, -1, "message");
        snprintf(err, errlen, "%s", duk_safe_to_string(vm->ctx, -1));
        duk_pop(vm->ctx);
    }
    duk_pop(vm->ctx);
    return rc == DUK_EXEC_SUCCESS ? 0 : AR_EINVAL;
}

/* ---- Recipes ---- */

struct load_args {
    struct ar_recipe *r;
};

static duk_ret_t load_safe(duk_context *ctx, void *udata)
{
    struct ar_recipe *r = ((struct load_args *)udata)->r;
    push_entry(ctx, "loadRecipe");
    duk_push_string(ctx, r->name);
    duk_push_string(ctx, r->path);
    duk_push_string(ctx, r->dir);
    duk_call(ctx, 3);
    return 1;
}

/* Compile errors say "... (line 12)"; runtime errors carry lineNumber. */
static void format_load_error(duk_context *ctx, const char *path, char *err, size_t errlen)
{
    char *error, *where, *stack;
    ar__vm_describe_error(ctx, &error, &where, &stack);
    const char *line = strstr(error, " (line ");
    if (line != NULL && strncmp(error, "SyntaxError", 11) == 0) {
        int n = atoi(line + 7);
        snprintf(err, errlen, "%s:%d: %.*s", path, n, (int)(line - error), error);
    } else if (where != NULL && strstr(where, ".js:") != NULL) {
        /* A location inside a recipe or plugin file, not inside the runtime. */
        snprintf(err, errlen, "%s: %s", where, error);
    } else {
        snprintf(err, errlen, "%s: %s", path, error);
    }
    free(error);
    free(where);
    free(stack);
}

int ar__vm_load_recipe(struct ar_vm *vm, struct ar_recipe *r, char *err, size_t errlen)
{
    duk_context *ctx = vm->ctx;
    struct load_args a = {r};
    if (duk_safe_call(ctx, load_safe, &a, 0, 1) != DUK_EXEC_SUCCESS) {
        format_load_error(ctx, r->path, err, errlen);
        duk_pop(ctx);
        return AR_EINVAL;
    }
    /* -> [ exports ] */
    int rc = 0;
    if (!duk_is_object(ctx, -1)) {
        snprintf(err, errlen, "%s:1: module.exports is not an object", r->path);
        rc = AR_EINVAL;
        goto out;
    }
    duk_get_prop_string(ctx, -1, "run");
    if (!duk_is_function(ctx, -1)) {
        snprintf(err, errlen, "%s:1: exports.run is not a function (every recipe needs one)",
                 r->path);
        rc = AR_EINVAL;
    }
    duk_pop(ctx);
    if (rc == 0) {
        rc = ar__recipe_read_exports(vm, r, err, errlen);
    }
out:
    duk_pop(ctx);
    return rc;
}

/* ---- Heap ---- */

/* Every js_<module>.c adds its native functions to the one native object. */
static void (*const binding_opens[])(duk_context *ctx) = {
    ar__js_core_open, ar__js_store_open, ar__js_http_open, ar__js_sql_open, ar__js_mail_open,
    ar__js_plugin_open,
};

/* Each bundled file is "(function (global, native) { ... })"; they share one native
 * object (stash.native), and the one that returns an object provides the entry points. */
static duk_ret_t native_load_runtime(duk_context *ctx);

static duk_ret_t runtime_safe(duk_context *ctx, void *udata)
{
    const struct ar_js_source *src = udata;
    struct ar_vm *vm = ar__vm_of(ctx);
    /* Loading reads the bytecode where it is: no zero-filled copy. */
    duk_push_external_buffer(ctx);
    duk_config_buffer(ctx, -1, (void *)src->bytecode, src->len);
    duk_load_function(ctx);
    duk_call(ctx, 0);
    /* -> [ fn ] */
    duk_push_global_object(ctx);
    duk_push_heap_stash(ctx);
    if (!duk_get_prop_string(ctx, -1, "native")) {
        duk_pop(ctx);
        duk_push_object(ctx);
        for (size_t i = 0; i < AR_ARRAY_SIZE(binding_opens); i++) {
            binding_opens[i](ctx);
        }
        duk_push_int(ctx, (int)vm->engine->cfg->parallel_default);
        duk_put_prop_string(ctx, -2, "parallelDefault");
        duk_push_c_function(ctx, native_load_runtime, 1);
        duk_put_prop_string(ctx, -2, "loadRuntime");
        duk_dup(ctx, -1);
        duk_put_prop_string(ctx, -3, "native");
    }
    duk_remove(ctx, -2);
    /* -> [ fn global native ] */
    duk_call(ctx, 2);
    if (duk_is_object(ctx, -1)) {
        duk_push_heap_stash(ctx);
        duk_dup(ctx, -2);
        duk_put_prop_string(ctx, -2, "entry");
        duk_pop(ctx);
    }
    duk_pop(ctx);
    return 0;
}

/* The tools (parallel, template, store), http, sql and mail runtimes are loaded the first
 * time code reads one of their globals: a short run seldom needs them all, and loading them
 * costs every process about 0.3 ms. Until then each global is an accessor that loads its
 * file, which then defines the globals as plain properties. Magic: runtime index *
 * LAZY_GLOBALS + global index. The poll runtime has no global: the prelude loads it through
 * native.loadRuntime() for the first poll. */
#define LAZY_GLOBALS 4
static const struct lazy_runtime {
    const char *source;
    const char *globals[LAZY_GLOBALS];
} lazy_runtimes[] = {
    {"05_tools", {"parallel", "ParallelError", "template", "store"}},
    {"10_http", {"http", "HttpError"}},
    {"20_sql", {"sql"}},
    {"30_mail", {"mail"}},
    {"40_poll", {NULL}}, /* native.pollCheck, for the internal runs of poll triggers */
};

static const struct lazy_runtime *lazy_runtime_of(const char *source)
{
    for (size_t i = 0; i < AR_ARRAY_SIZE(lazy_runtimes); i++) {
        if (strcmp(lazy_runtimes[i].source, source) == 0) {
            return &lazy_runtimes[i];
        }
    }
    return NULL;
}

/* Loads a lazy runtime now, or throws its error. */
static void load_lazy_runtime(duk_context *ctx, const struct lazy_runtime *lr)
{
    const struct ar_js_source *src = ar__js_sources;
    while (src->name && strcmp(src->name, lr->source) != 0) {
        src++;
    }
    /* Shared by every run from now on: charged to none of them. */
    struct ar_vm *vm = ar__vm_of(ctx);
    struct ar_run *current = vm->current;
    vm->current = NULL;
    duk_int_t rc = duk_safe_call(ctx, runtime_safe, (void *)src, 0, 1);
    vm->current = current;
    if (rc != DUK_EXEC_SUCCESS) {
        (void)duk_throw(ctx);
    }
    duk_pop(ctx);
}

/* native.loadRuntime(name): for a runtime reached through `native` rather than a global. */
static duk_ret_t native_load_runtime(duk_context *ctx)
{
    const struct lazy_runtime *lr = lazy_runtime_of(duk_require_string(ctx, 0));
    if (lr == NULL) {
        return duk_type_error(ctx, "no lazy runtime '%s'", duk_get_string(ctx, 0));
    }
    load_lazy_runtime(ctx, lr);
    return 0;
}

static duk_ret_t lazy_runtime_get(duk_context *ctx)
{
    int magic = duk_get_current_magic(ctx);
    const struct lazy_runtime *lr = &lazy_runtimes[magic / LAZY_GLOBALS];
    load_lazy_runtime(ctx, lr);
    duk_push_global_object(ctx);
    duk_get_prop_string(ctx, -1, lr->globals[magic % LAZY_GLOBALS]);
    return 1;
}

/* A recipe assigning to one of the names before reading it gets a plain global, as it would
 * had the runtime been loaded. */
static duk_ret_t lazy_runtime_set(duk_context *ctx)
{
    int magic = duk_get_current_magic(ctx);
    duk_push_global_object(ctx);
    duk_push_string(ctx, lazy_runtimes[magic / LAZY_GLOBALS].globals[magic % LAZY_GLOBALS]);
    duk_dup(ctx, 0);
    duk_def_prop(ctx, -3, DUK_DEFPROP_HAVE_VALUE | DUK_DEFPROP_SET_WRITABLE |
                              DUK_DEFPROP_SET_CONFIGURABLE | DUK_DEFPROP_CLEAR_ENUMERABLE);
    return 0;
}

static void define_lazy_runtime(duk_context *ctx, const struct lazy_runtime *lr)
{
    duk_push_global_object(ctx);
    for (int g = 0; g < LAZY_GLOBALS && lr->globals[g]; g++) {
        int magic = (int)(lr - lazy_runtimes) * LAZY_GLOBALS + g;
        duk_push_string(ctx, lr->globals[g]);
        duk_push_c_function(ctx, lazy_runtime_get, 0);
        duk_set_magic(ctx, -1, magic);
        duk_push_c_function(ctx, lazy_runtime_set, 1);
        duk_set_magic(ctx, -1, magic);
        duk_def_prop(ctx, -4, DUK_DEFPROP_HAVE_GETTER | DUK_DEFPROP_HAVE_SETTER |
                                  DUK_DEFPROP_SET_CONFIGURABLE | DUK_DEFPROP_CLEAR_ENUMERABLE);
    }
    duk_pop(ctx);
}

int ar__vm_create(struct ar_engine *e, struct ar_vm **out, char *err, size_t errlen)
{
    struct ar_vm *vm = ar_calloc(1, sizeof(*vm));
    vm->engine = e;
    vm->run_heap_limit = (size_t)e->cfg->heap_limit;
    /* The whole heap may hold many runs; the per-run limit is what bites first. */
    vm->heap_total_limit = (size_t)1 << 40;
    vm->ctx = duk_create_heap(vm_alloc, vm_realloc, vm_free, vm, vm_fatal);
    if (vm->ctx == NULL) {
        snprintf(err, errlen, "cannot create the JavaScript heap");
        free(vm);
        return AR_ENOMEM;
    }
    ar__duk_no_emergency_compaction(vm->ctx);
    ar__duk_defer_first_gc(vm->ctx);
    for (const struct ar_js_source *src = ar__js_sources; src->name; src++) {
        const struct lazy_runtime *lr = lazy_runtime_of(src->name);
        if (lr != NULL) {
            define_lazy_runtime(vm->ctx, lr);
            continue;
        }
        if (duk_safe_call(vm->ctx, runtime_safe, (void *)src, 0, 1) != DUK_EXEC_SUCCESS) {
            snprintf(err, errlen, "runtime %s.js: %s", src->name,
                     duk_safe_to_stacktrace(vm->ctx, -1));
            ar__vm_destroy(vm);
            return AR_EINVAL;
        }
        duk_pop(vm->ctx);
    }
    *out = vm;
    return 0;
}

void ar__vm_end_sessions(struct ar_vm *vm)
{
    if (vm == NULL) {
        return;
    }
    vm->current = NULL;
    /* Each state object is referenced from the stash alone: deleting the reference runs its
     * finalizer at once (reference counting), as destroying the heap would. */
    static const char *const owners[] = {AR_JS_SQL_STATE, AR_JS_MAIL_STATE,
                                         AR_JS_HTTP_STATE_OWNER};
    duk_push_heap_stash(vm->ctx);
    for (size_t i = 0; i < AR_ARRAY_SIZE(owners); i++) {
        duk_del_prop_string(vm->ctx, -1, owners[i]);
    }
    duk_pop(vm->ctx);
}

void ar__vm_destroy(struct ar_vm *vm)
{
    if (vm == NULL) {
        return;
    }
    vm->current = NULL;
    duk_destroy_heap(vm->ctx);
    free(vm->slots);
    free(vm);
}
