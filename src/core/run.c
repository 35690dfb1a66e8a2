/* One recipe execution: from the history row that records its start, through its
 * suspensions, to the row that records how it ended. */
#include "internal.h"
#include "core/log.h"
#include "db/history.h"
#include "js/vm.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A run that logs in a tight loop must not fill the disk. */
#define RUN_MAX_LOG_LINES 10000
#define RUN_MAX_LOG_BYTES (64 * 1024)

static const char *const status_names[] = {
    [AR_RUN_QUEUED] = "queued",       [AR_RUN_RUNNING] = "running",
    [AR_RUN_SUCCEEDED] = "succeeded", [AR_RUN_FAILED] = "failed",
    [AR_RUN_INTERRUPTED] = "interrupted", [AR_RUN_CANCELLED] = "cancelled",
};

const char *ar_run_status_name(enum ar_run_status s)
{
    return status_names[s];
}

void ar__run_op_add(struct ar_run *run, struct ar_op *op, uint32_t fiber)
{
    op->run = run;
    op->fiber = fiber;
    op->next = run->ops.next;
    op->prev = &run->ops;
    run->ops.next->prev = op;
    run->ops.next = op;
}

void ar__run_op_remove(struct ar_op *op)
{
    op->prev->next = op->next;
    op->next->prev = op->prev;
    op->next = op->prev = op;
}

static void cancel_ops(struct ar_run *run)
{
    while (run->ops.next != &run->ops) {
        struct ar_op *op = run->ops.next;
        ar__run_op_remove(op);
        op->cancel(op);
    }
}

static char *redacted(struct ar_run *run, const char *text)
{
    char *r = ar_redact(&run->redactor, text);
    return r ? r : ar_strdup(text);
}

void ar__run_log(struct ar_run *run, const char *level, const char *message)
{
    if (run->log_seq > RUN_MAX_LOG_LINES) {
        return;
    }
    char *msg;
    if (run->log_seq == RUN_MAX_LOG_LINES) {
        msg = ar_asprintf("log truncated: more than %d lines", RUN_MAX_LOG_LINES);
        level = "warn";
    } else if (strlen(message) > RUN_MAX_LOG_BYTES) {
        char *cut = ar_strndup(message, RUN_MAX_LOG_BYTES);
        msg = ar_asprintf("%s... (truncated)", cut);
        free(cut);
    } else {
        msg = ar_strdup(message);
    }
    char *safe = redacted(run, msg);
    free(msg);
    struct ar_log_record l = {.at = ar_now_ms(), .level = level, .message = safe};
    if (ar_history_log_insert(run->engine->history, run->id, ++run->log_seq, &l) != 0) {
        ar_log_error("history", "run %lld: cannot record a log line: %s", (long long)run->id,
                     ar_history_errmsg(run->engine->history));
    }
    if (run->engine->echo_logs) {
        if (strcmp(level, "info") == 0) {
            fprintf(stderr, "[%s] %s\n", run->recipe->name, safe);
        } else {
            fprintf(stderr, "[%s] %s: %s\n", run->recipe->name, level, safe);
        }
    }
    free(safe);
}

void ar__run_step(struct ar_run *run, const struct ar_step_record *step)
{
    struct ar_step_record s = *step;
    char *name = step->name ? redacted(run, step->name) : ar_strdup("");
    char *detail = step->detail ? redacted(run, step->detail) : NULL;
    char *error = step->error ? redacted(run, step->error) : NULL;
    s.seq = ++run->step_seq;
    s.name = name;
    s.detail = detail;
    s.error = error;
    if (ar_history_step_insert(run->engine->history, run->id, &s) != 0) {
        ar_log_error("history", "run %lld: cannot record a step: %s", (long long)run->id,
                     ar_history_errmsg(run->engine->history));
    }
    free(name);
    free(detail);
    free(error);
}

void ar__run_failf(struct ar_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = ar_vasprintf(fmt, ap);
    va_end(ap);
    ar__run_abort(run, msg);
    free(msg);
}

static void run_free_cb(uv_handle_t *h)
{
    struct ar_run *run = ar_container_of(h, struct ar_run, timeout_timer);
    ar_redactor_free(&run->redactor);
    free(run->trigger);
    free(run->input_json);
    free(run->result_json);
    free(run->error);
    free(run->error_where);
    free(run->error_stack);
    free(run);
}

static void complete(struct ar_run *run)
{
    struct ar_engine *e = run->engine;
    cancel_ops(run);
    uv_timer_stop(&run->timeout_timer);

    char *result = run->result_json ? redacted(run, run->result_json) : NULL;
    char *error = NULL, *stack = NULL;
    if (run->error) {
        char *full = run->error_where ? ar_asprintf("%s: %s", run->error_where, run->error)
                                      : ar_strdup(run->error);
        error = redacted(run, full);
        free(full);
    }
    if (run->error_stack) {
        stack = redacted(run, run->error_stack);
    }
    struct ar_run_record rec = {
        .id = run->id,
        .status = (char *)ar_run_status_name(run->status),
        .finished_at = ar_now_ms(),
        .duration_ms = (double)(uv_hrtime() - run->started_hr) / 1e6,
        .result = result,
        .error = error,
        .error_stack = stack,
    };
    if (ar_history_run_finish(e->history, &rec) != 0) {
        ar_log_error("history", "run %lld: cannot record its end: %s", (long long)run->id,
                     ar_history_errmsg(e->history));
    }
    /* What the caller reads from the run is what history holds. */
    free(run->result_json);
    run->result_json = result;
    free(run->error);
    run->error = error;
    free(run->error_stack);
    run->error_stack = stack;

    run->prev->next = run->next;
    run->next->prev = run->prev;
    e->runs_active--;
    run->recipe->running--;
    ar__vm_run_detach(e->vm, run);
    if (run->done_cb) {
        run->done_cb(run, run->done_data);
    }
    uv_close((uv_handle_t *)&run->timeout_timer, run_free_cb);
}

void ar__run_finished(struct ar_run *run)
{
    if (run->over_heap) {
        ar__run_abort(run, NULL);
        return;
    }
    complete(run);
}

void ar__run_abort(struct ar_run *run, const char *error)
{
    char limit[32];
    free(run->error);
    if (run->over_heap || run->timed_out) {
        /* Where the limit happened to bite says nothing useful. */
        free(run->error_where);
        run->error_where = NULL;
    }
    if (run->over_heap) {
        run->error = ar_asprintf("RangeError: the run used more than its %lld MiB of memory",
                                 (long long)(run->engine->cfg->heap_limit >> 20));
    } else if (run->timed_out) {
        ar_format_duration(run->recipe->timeout_ms, limit, sizeof(limit));
        run->error = ar_asprintf("TimeoutError: the run did not finish within its timeout (%s)",
                                 limit);
    } else {
        run->error = ar_strdup(error ? error : "Error: the run was aborted");
    }
    if (run->status != AR_RUN_INTERRUPTED && run->status != AR_RUN_CANCELLED) {
        run->status = AR_RUN_FAILED;
    }
    run->finished = 1;
    cancel_ops(run);
    ar__vm_kill(run->engine->vm, run);
    complete(run);
}

static void timeout_cb(uv_timer_t *t)
{
    struct ar_run *run = ar_container_of(t, struct ar_run, timeout_timer);
    run->timed_out = 1;
    ar__run_abort(run, NULL);
}

int ar_run_start(struct ar_engine *e, const struct ar_run_opts *opts, ar_run_done_cb cb,
                 void *data, char *err, size_t errlen)
{
    struct ar_recipe *recipe;
    int rc = ar_engine_recipe(e, opts->recipe, &recipe, err, errlen);
    if (rc != 0) {
        return rc;
    }
    struct ar_run *run = ar_calloc(1, sizeof(*run));
    run->engine = e;
    run->recipe = recipe;
    run->trigger = ar_strdup(opts->trigger ? opts->trigger : "cli");
    run->input_json = ar_strdup(opts->input_json && *opts->input_json ? opts->input_json : "{}");
    run->dry_run = opts->dry_run;
    run->attempt = opts->attempt > 0 ? opts->attempt : 1;
    run->replay_of = opts->replay_of;
    run->ops.next = run->ops.prev = &run->ops;
    run->done_cb = cb;
    run->done_data = data;
    run->status = AR_RUN_RUNNING;
    /* Secrets the recipe declares are redacted even before it reads them. */
    for (size_t i = 0; i < recipe->n_secrets; i++) {
        const char *v;
        char why[256];
        if (ar__engine_secret(e, recipe->secrets[i], &v, why, sizeof(why)) == 0) {
            ar_redactor_add(&run->redactor, v);
        }
    }

    /* A queued row already holds its (redacted) input; only a new row needs it. */
    char *input = opts->queued_id > 0 ? NULL : redacted(run, run->input_json);
    struct ar_run_record rec = {
        .recipe = recipe->name,
        .trigger = run->trigger,
        .status = "running",
        .attempt = run->attempt,
        .dry_run = run->dry_run,
        .started_at = ar_now_ms(),
        .input = input,
        .replay_of = run->replay_of,
    };
    run->started_ms = rec.started_at;
    if (opts->queued_id > 0) {
        run->id = opts->queued_id;
        rc = ar_history_run_begin(e->history, run->id, rec.started_at);
    } else {
        rc = ar_history_run_insert(e->history, &rec, &run->id);
    }
    free(input);
    if (rc != 0) {
        if (rc == AR_ENOENT) {
            snprintf(err, errlen, "history.db: run %lld is no longer queued",
                     (long long)opts->queued_id);
        } else {
            snprintf(err, errlen, "history.db: cannot record the run: %s",
                     ar_history_errmsg(e->history));
        }
        ar_redactor_free(&run->redactor);
        free(run->trigger);
        free(run->input_json);
        free(run);
        return rc;
    }

    run->started_hr = uv_hrtime();
    run->deadline_hr = run->started_hr + (uint64_t)recipe->timeout_ms * 1000000u;
    uv_timer_init(&e->loop, &run->timeout_timer);
    uv_update_time(&e->loop); /* the cached loop time may be old: count from now */
    uv_timer_start(&run->timeout_timer, timeout_cb, (uint64_t)recipe->timeout_ms, 0);
    run->next = e->runs.next;
    run->prev = &e->runs;
    e->runs.next->prev = run;
    e->runs.next = run;
    e->runs_active++;
    recipe->running++;
    ar__vm_run_attach(e->vm, run);
    ar__vm_start(e->vm, run);
    return 0;
}
