/* The JavaScript VM: one Duktape heap per engine, recipes compiled once, each run a
 * tree of coroutines (Duktape threads), heap and CPU limits enforced per run. */
#ifndef AR_JS_VM_H
#define AR_JS_VM_H

#include <stddef.h>
#include <stdint.h>

#include "duktape.h"

struct ar_engine;
struct ar_run;
struct ar_recipe;

struct ar_vm {
    duk_context *ctx;          /* owned */
    struct ar_engine *engine;  /* borrowed */
    struct ar_run *current;    /* the run whose JS executes now, or NULL */
    size_t heap_bytes;         /* all live JS allocations */
    size_t heap_total_limit;   /* for the whole heap: a backstop, not a per-run limit */
    size_t run_heap_limit;
    struct vm_slot *slots;     /* owned; run attribution of allocations, see vm.c */
    uint32_t n_slots;
    uint32_t free_slot;        /* head of the free list, 0 = none */
};

typedef void (*ar_vm_push_cb)(duk_context *ctx, void *data);

int ar__vm_create(struct ar_engine *e, struct ar_vm **out, char *err, size_t errlen);
void ar__vm_destroy(struct ar_vm *vm);
/* Ends the sessions the heap's native state holds (database connections, SMTP) by running
 * their finalizers now, and leaves the heap itself to the exiting process. */
void ar__vm_end_sessions(struct ar_vm *vm);

/* Compiles and evaluates a recipe module; on success leaves nothing on the stack and
 * fills r's settings; on failure writes "file:line: Error: message" into err. */
int ar__vm_load_recipe(struct ar_vm *vm, struct ar_recipe *r, char *err, size_t errlen);
/* Checks that text is valid JSON; on failure err gets the parser's message. */
int ar__vm_json_check(struct ar_vm *vm, const char *text, char *err, size_t errlen);

void ar__vm_run_attach(struct ar_vm *vm, struct ar_run *run);
void ar__vm_run_detach(struct ar_vm *vm, struct ar_run *run);
/* Starts the run's root fiber. The run may finish before this returns. */
void ar__vm_start(struct ar_vm *vm, struct ar_run *run);
/* Resumes a suspended fiber with the value push() leaves on the stack (thrown into
 * the fiber when is_error). */
void ar__vm_resume(struct ar_vm *vm, struct ar_run *run, uint32_t fiber, ar_vm_push_cb push,
                   void *data, int is_error);
/* Forgets every fiber of a run that is being aborted. */
void ar__vm_kill(struct ar_vm *vm, struct ar_run *run);
/* Pushes an Error object with the given name and message. */
void ar__vm_push_error(duk_context *ctx, const char *name, const char *message);

/* Describes the value at -1 (an Error or anything thrown): "Name: message", the
 * "file:line" it was thrown at (or NULL) and its stack (or NULL). All owned. */
void ar__vm_describe_error(duk_context *ctx, char **error, char **where, char **stack);

/* Bindings: each js_<module>.c adds its functions to the native object at -1. */
void ar__js_core_open(duk_context *ctx);
void ar__js_store_open(duk_context *ctx);
void ar__js_http_open(duk_context *ctx);
void ar__js_sql_open(duk_context *ctx);
void ar__js_mail_open(duk_context *ctx);
void ar__js_plugin_open(duk_context *ctx); /* src/plugin/api.c: native plugins */

/* Heap-stash keys of the objects whose finalizers end a binding's sessions (database
 * connections, SMTP, curl handles); ar__vm_end_sessions() deletes them. */
#define AR_JS_SQL_STATE "sqlState"
#define AR_JS_MAIL_STATE "mailState"
#define AR_JS_HTTP_STATE_OWNER "\xff" "httpStateOwner"

/* The VM of the engine that owns ctx (stored in the heap's udata). */
struct ar_vm *ar__vm_of(duk_context *ctx);

#endif
