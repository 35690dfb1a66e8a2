/* autorun run RECIPE / autorun replay RUN_ID: one run, in this process, recorded in
 * history exactly as the service would record it. */
#include "cli/cli.h"
#include "db/history.h"
#include "js/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct run_outcome {
    int done;
    int64_t id;
    enum ar_run_status status;
    double duration_ms;
    char *result;
    char *error;
    char *recipe;
    int dry_run;
};

static void run_done_cb(struct ar_run *run, void *data)
{
    struct run_outcome *o = data;
    o->done = 1;
    o->id = run->id;
    o->status = run->status;
    o->duration_ms = (double)(uv_hrtime() - run->started_hr) / 1e6;
    o->result = ar_strdup(run->result_json);
    o->error = ar_strdup(run->error);
    o->recipe = ar_strdup(run->recipe->name);
    o->dry_run = run->dry_run;
}

/* Ctrl-C or a TERM while the run is going: record it as interrupted, then stop. */
static void signal_cb(uv_signal_t *s, int signum)
{
    struct ar_engine *e = s->data;
    while (e->runs.next != &e->runs) {
        struct ar_run *run = e->runs.next;
        run->status = AR_RUN_INTERRUPTED;
        ar__run_abort(run, signum == SIGINT ? "Error: interrupted (SIGINT)"
                                            : "Error: interrupted (SIGTERM)");
    }
}

static int read_input(const char *file, char **out)
{
    if (strcmp(file, "-") == 0) {
        struct ar_buf b = {0};
        char chunk[65536];
        ssize_t n;
        while ((n = read(0, chunk, sizeof(chunk))) > 0) {
            ar_buf_append(&b, chunk, (size_t)n);
            if (b.len > (64u << 20)) {
                ar_buf_free(&b);
                return AR_E2BIG;
            }
        }
        *out = ar_buf_steal(&b);
        return n < 0 ? -errno : 0;
    }
    return ar_read_file(file, 64u << 20, out, NULL);
}

static int execute(struct ar_cli *cli, const struct ar_run_opts *opts, int json)
{
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    e->echo_logs = 1;
    e->progress = !json && isatty(2);

    char err[1024];
    if (opts->input_json && *opts->input_json &&
        ar__vm_json_check(e->vm, opts->input_json, err, sizeof(err)) != 0) {
        return ar__cli_usage_error("--input is not valid JSON: %s", err);
    }

    uv_signal_t sigint, sigterm;
    uv_signal_init(&e->loop, &sigint);
    uv_signal_init(&e->loop, &sigterm);
    sigint.data = sigterm.data = e;
    uv_signal_start(&sigint, signal_cb, SIGINT);
    uv_signal_start(&sigterm, signal_cb, SIGTERM);
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sigterm);

    struct run_outcome o = {0};
    int rc = ar_run_start(e, opts, run_done_cb, &o, err, sizeof(err));
    if (rc == 0) {
        ar_engine_run_loop(e);
    }
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    if (rc != 0) {
        return ar__cli_usage_error("%s", err);
    }

    int status = o.status == AR_RUN_SUCCEEDED ? AR_EXIT_OK : AR_EXIT_FAILED;
    if (json) {
        struct ar_buf b = {0};
        ar_buf_printf(&b, "{\"id\":%lld,\"recipe\":", (long long)o.id);
        ar_buf_json_string(&b, o.recipe);
        ar_buf_printf(&b, ",\"status\":\"%s\",\"dryRun\":%s,\"durationMs\":%.3f,\"result\":%s,"
                          "\"error\":",
                      ar_run_status_name(o.status), o.dry_run ? "true" : "false", o.duration_ms,
                      o.result ? o.result : "null");
        if (o.error) {
            ar_buf_json_string(&b, o.error);
        } else {
            ar_buf_puts(&b, "null");
        }
        ar_buf_puts(&b, "}\n");
        fputs(b.data, stdout);
        ar_buf_free(&b);
    } else {
        if (o.result) {
            printf("%s\n", o.result);
        }
        char dur[32];
        ar_format_duration((int64_t)o.duration_ms, dur, sizeof(dur));
        if (status == AR_EXIT_OK) {
            fprintf(stderr, "run %lld %s%s in %s\n", (long long)o.id,
                    ar_run_status_name(o.status), o.dry_run ? " (dry run)" : "", dur);
        } else {
            fprintf(stderr, "autorun: run %lld %s: %s\n", (long long)o.id,
                    ar_run_status_name(o.status), o.error ? o.error : "unknown error");
        }
    }
    fflush(stdout);
    free(o.result);
    free(o.error);
    free(o.recipe);
    return status;
}

int ar__cli_run(struct ar_cli *cli, int argc, char **argv)
{
    struct ar_run_opts opts = {.trigger = "cli"};
    const char *input = NULL, *input_file = NULL, *v;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = ar__cli_opt(argc, argv, &i, "--input", &v)) != 0) {
            if (r < 0) {
                return ar__cli_usage_error("run: --input needs a JSON value");
            }
            input = v;
        } else if ((r = ar__cli_opt(argc, argv, &i, "--input-file", &v)) != 0) {
            if (r < 0) {
                return ar__cli_usage_error("run: --input-file needs a file name or -");
            }
            input_file = v;
        } else if (strcmp(argv[i], "-") == 0) {
            input_file = "-";
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            opts.dry_run = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return ar__cli_usage_error("run: unknown option '%s' (see autorun help run)", argv[i]);
        } else if (opts.recipe == NULL) {
            opts.recipe = argv[i];
        } else {
            return ar__cli_usage_error("run: one recipe at a time ('%s' is extra)", argv[i]);
        }
    }
    if (opts.recipe == NULL) {
        return ar__cli_usage_error("run: which recipe? usage: autorun run RECIPE [--input JSON]");
    }
    if (input && input_file) {
        return ar__cli_usage_error("run: use --input or --input-file, not both");
    }
    char *text = NULL;
    if (input_file) {
        int rc = read_input(input_file, &text);
        if (rc != 0) {
            return ar__cli_usage_error("run: --input-file %s: %s", input_file, ar_strerror(rc));
        }
        input = text;
    }
    opts.input_json = input;
    int status = execute(cli, &opts, json);
    free(text);
    return status;
}

int ar__cli_replay(struct ar_cli *cli, int argc, char **argv)
{
    const char *id_text = NULL;
    int dry_run = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' || id_text) {
            return ar__cli_usage_error("replay: unexpected '%s' (usage: autorun replay RUN_ID "
                                       "[--dry-run])",
                                       argv[i]);
        } else {
            id_text = argv[i];
        }
    }
    struct ar_engine *e;
    struct ar_run_record rec;
    int status = ar__cli_history_run(cli, "replay", "autorun replay RUN_ID [--dry-run]", id_text,
                                     &e, &rec);
    if (status != 0) {
        return status;
    }
    struct ar_run_opts opts = {
        .recipe = rec.recipe,
        .trigger = "replay",
        .input_json = rec.input,
        .dry_run = dry_run,
        .replay_of = rec.id,
    };
    status = execute(cli, &opts, json);
    ar_run_record_free(&rec);
    return status;
}
