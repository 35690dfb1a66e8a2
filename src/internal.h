/* Cross-module internals of the engine: the engine, recipes, runs and the
 * operations a suspended run waits on. Modules include this, never each other's .c. */
#ifndef AR_INTERNAL_H
#define AR_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "core/config.h"
#include "core/error.h"
#include "core/redact.h"
#include "core/util.h"

struct ar_vm;
struct ar_history;
struct ar_run;
struct duk_hthread; /* duk_context */

/* A loaded recipe: its module lives in the VM, its settings are read once here. */
struct ar_recipe {
    struct ar_recipe *next;
    char *name;        /* owned */
    char *path;        /* owned; recipes/NAME.js */
    char *dir;         /* owned; the directory ctx.file() and require('./x') resolve in */
    char *description; /* owned, or NULL */
    char *triggers_json; /* owned; JSON array, "[]" when none */
    int64_t timeout_ms;
    int concurrency;   /* 0 = unlimited */
    int retries_max;
    int64_t retries_backoff_ms;
    char **secrets;    /* owned; names from exports.secrets */
    size_t n_secrets;
    int running;       /* runs of this recipe executing now */
};

/* Something a suspended fiber waits for (a timer, an HTTP transfer, a query).
 * The run owns the list; cancel() stops the I/O and releases the op (possibly
 * later, from a close callback) without resuming anything. */
struct ar_op {
    struct ar_op *next;
    struct ar_op *prev;
    struct ar_run *run; /* borrowed */
    uint32_t fiber;
    void (*cancel)(struct ar_op *op);
};

enum ar_run_status {
    AR_RUN_QUEUED,
    AR_RUN_RUNNING,
    AR_RUN_SUCCEEDED,
    AR_RUN_FAILED,
    AR_RUN_INTERRUPTED,
    AR_RUN_CANCELLED,
};

typedef void (*ar_run_done_cb)(struct ar_run *run, void *data);

struct ar_run_opts {
    const char *recipe;
    const char *trigger;   /* cli, replay, cron, webhook, poll, row */
    const char *input_json; /* NULL or "" means {} */
    int dry_run;
    int attempt;
    int64_t replay_of;
    /* Non-zero: the run is the row the queue inserted with status 'queued' (input, trigger
     * and attempt already recorded there); it becomes 'running' instead of a new row. */
    int64_t queued_id;
};

struct ar_run {
    struct ar_run *next; /* the engine's list of active runs */
    struct ar_run *prev;
    struct ar_engine *engine; /* borrowed */
    struct ar_recipe *recipe; /* borrowed */
    int64_t id;
    char *trigger;    /* owned */
    char *input_json; /* owned */
    int dry_run;
    int attempt;
    int64_t replay_of;
    int64_t started_ms;
    uint64_t started_hr;
    uint64_t deadline_hr; /* uv_hrtime() after which the run has timed out */
    uv_timer_t timeout_timer;
    struct ar_op ops; /* list head of pending operations */

    /* JS heap accounting: see vm.c's allocator. */
    uint32_t heap_slot;
    size_t heap_bytes;
    unsigned over_heap : 1;
    unsigned timed_out : 1;
    unsigned finished : 1;

    struct ar_redactor redactor;
    int log_seq;
    int step_seq;
    enum ar_run_status status;
    char *result_json; /* owned */
    char *error;       /* owned; "Error: message" */
    char *error_where; /* owned; "recipes/x.js:12", or NULL */
    char *error_stack; /* owned */
    ar_run_done_cb done_cb;
    void *done_data;
};

struct ar_engine {
    uv_loop_t loop;
    struct ar_config *cfg;        /* borrowed */
    struct ar_history *history;   /* owned */
    struct ar_vm *vm;             /* owned */
    struct ar_recipe *recipes;    /* owned list */
    uv_prepare_t commit_prepare;  /* commits grouped history writes before the loop blocks */
    uv_check_t commit_check;      /* ... and after I/O callbacks ran */
    int64_t runs_active;
    struct ar_run runs;           /* list head of active runs (only next/prev used) */
    int echo_logs;                /* print run logs on stderr (autorun run) */
    int progress;                 /* show progress of parallel() on stderr (a TTY) */
    struct ar_curl_uv *curl;      /* owned; all HTTP and SMTP transfers, created on first use */
    struct ar_named_url *secrets; /* owned; the secrets file, read on first use */
    size_t n_secrets;
    int secrets_loaded;
};

/* engine.c */
int ar_engine_create(struct ar_config *cfg, struct ar_engine **out, char *err, size_t errlen);
void ar_engine_destroy(struct ar_engine *e);
/* For a process about to exit: like ar_engine_destroy(), without freeing the memory. */
void ar_engine_exit(struct ar_engine *e);
/* Frees the loaded recipes and the secrets read for them; both are read again when next used. */
void ar__engine_forget_recipes(struct ar_engine *e);
int ar_engine_run_loop(struct ar_engine *e);
/* Loads (once) and returns a recipe; on error err holds "file:line: what". */
int ar_engine_recipe(struct ar_engine *e, const char *name, struct ar_recipe **out, char *err,
                     size_t errlen);
/* Lists recipe names found in the recipes directory, sorted. */
int ar_engine_recipe_names(struct ar_engine *e, char ***names, size_t *n);
void ar_names_free(char **names, size_t n);
/* The engine's curl multi handle on the loop (created on first use), or NULL. */
struct ar_curl_uv *ar__engine_curl(struct ar_engine *e);
/* A secret's value from the environment or the secrets file. */
int ar__engine_secret(struct ar_engine *e, const char *name, const char **value, char *err,
                      size_t errlen);

/* run.c */
int ar_run_start(struct ar_engine *e, const struct ar_run_opts *opts, ar_run_done_cb cb,
                 void *data, char *err, size_t errlen);
const char *ar_run_status_name(enum ar_run_status s);
void ar__run_op_add(struct ar_run *run, struct ar_op *op, uint32_t fiber);
void ar__run_op_remove(struct ar_op *op);
/* Called by the VM once the run's root fiber returned or threw. */
void ar__run_finished(struct ar_run *run);
/* Ends a run that can go no further (timeout, heap, internal error). */
void ar__run_abort(struct ar_run *run, const char *error);
void ar__run_log(struct ar_run *run, const char *level, const char *message);
/* Records one http/sql/mail step in history: name, detail (JSON) and error are
 * redacted first; seq is assigned here. */
struct ar_step_record;
void ar__run_step(struct ar_run *run, const struct ar_step_record *step);
void ar__run_failf(struct ar_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* recipe.c */
int ar__recipe_load(struct ar_engine *e, const char *name, struct ar_recipe **out, char *err,
                    size_t errlen);
void ar__recipe_free(struct ar_recipe *r);
/* Calls fn for every trigger object (the entries of exports.triggers that are objects) of
 * every loaded recipe, the trigger at index t of the VM's stack; fn must leave the stack as
 * it found it. The service's trigger modules build their tables this way. */
typedef void (*ar_trigger_fn)(struct duk_hthread *ctx, int t, struct ar_recipe *r, void *data);
void ar__recipes_each_trigger(struct ar_engine *e, ar_trigger_fn fn, void *data);
/* Reads the settings of the recipe whose exports are at the top of the VM stack. */
int ar__recipe_read_exports(struct ar_vm *vm, struct ar_recipe *r, char *err, size_t errlen);
/* Validates a loaded recipe; reports each problem as "file:line: what" through cb. */
typedef void (*ar_problem_cb)(void *data, const char *problem);
int ar_recipe_check(struct ar_engine *e, struct ar_recipe *r, ar_problem_cb cb, void *data);
/* "cron 0 9 * * MON-FRI Europe/Berlin, webhook /hooks/x" and the next cron fire (0 if none). */
int ar_recipe_summary(struct ar_engine *e, struct ar_recipe *r, struct ar_buf *out,
                      int64_t *next_ms);

#endif
