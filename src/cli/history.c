/* autorun history / show / prune: reading and trimming the run history. */
#include "cli/cli.h"
#include "db/history.h"

#include <stdlib.h>
#include <string.h>

struct list_ctx {
    struct ar_table table;
    struct ar_buf json;
    int as_json;
    int count;
};

static int list_row_cb(void *data, const struct ar_run_record *r)
{
    struct list_ctx *c = data;
    if (c->as_json) {
        if (c->count) {
            ar_buf_puts(&c->json, ",");
        }
        ar__cli_json_run(&c->json, r);
    } else {
        char id[24], started[32], dur[32] = "-", attempt[16];
        snprintf(id, sizeof(id), "%lld", (long long)r->id);
        snprintf(attempt, sizeof(attempt), "%d", r->attempt);
        ar__cli_format_time(r->started_at ? r->started_at : r->queued_at, started,
                            sizeof(started));
        if (r->finished_at) {
            ar_format_duration((int64_t)r->duration_ms, dur, sizeof(dur));
        }
        char *err = r->error ? ar_strndup(r->error, 60) : NULL;
        const char *cells[] = {id,      r->recipe, r->trigger, r->status, attempt,
                               started, dur,       err ? err : ""};
        ar__table_add(&c->table, cells);
        free(err);
    }
    c->count++;
    return 0;
}

int ar__cli_history(struct ar_cli *cli, int argc, char **argv)
{
    struct ar_history_filter f = {0};
    struct list_ctx c = {0};
    const char *v;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = ar__cli_opt(argc, argv, &i, "--status", &v)) != 0) {
            if (r < 0) {
                return ar__cli_usage_error("history: --status needs a value");
            }
            static const char *const ok[] = {"queued",      "running",   "succeeded", "failed",
                                             "interrupted", "cancelled", "skipped"};
            int found = 0;
            for (size_t k = 0; k < AR_ARRAY_SIZE(ok); k++) {
                found |= strcmp(ok[k], v) == 0;
            }
            if (!found) {
                return ar__cli_usage_error("history: --status %s: expected one of queued, "
                                           "running, succeeded, failed, interrupted, cancelled, "
                                           "skipped",
                                           v);
            }
            f.status = v;
        } else if ((r = ar__cli_opt(argc, argv, &i, "--limit", &v)) != 0) {
            char *end;
            long n = r > 0 ? strtol(v, &end, 10) : 0;
            if (r < 0 || *end != '\0' || n <= 0 || n > 1000000) {
                return ar__cli_usage_error("history: --limit needs a positive number");
            }
            f.limit = (int)n;
        } else if ((r = ar__cli_opt(argc, argv, &i, "--since", &v)) != 0) {
            if (r < 0 || ar_parse_time(v, ar_now_ms(), &f.since_ms) != 0) {
                return ar__cli_usage_error("history: --since %s: expected a time (2026-11-01, "
                                           "2026-11-01T09:00:00Z) or an age (24h, 7d)",
                                           r < 0 ? "" : v);
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            c.as_json = 1;
        } else if (argv[i][0] == '-' || f.recipe) {
            return ar__cli_usage_error("history: unexpected '%s' (see autorun help history)",
                                       argv[i]);
        } else {
            f.recipe = argv[i];
        }
    }
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    static const char *const headers[] = {"ID",      "RECIPE",   "TRIGGER", "STATUS",
                                          "ATTEMPT", "STARTED",  "DURATION", "ERROR"};
    ar__table_init(&c.table, AR_ARRAY_SIZE(headers), headers);
    ar_buf_puts(&c.json, "[");
    int rc = ar_history_list(e->history, &f, list_row_cb, &c);
    if (rc != 0) {
        ar__table_free(&c.table);
        ar_buf_free(&c.json);
        return ar__cli_usage_error("history: %s", ar_history_errmsg(e->history));
    }
    if (c.as_json) {
        ar_buf_puts(&c.json, "]\n");
        fputs(c.json.data, stdout);
    } else if (c.count == 0) {
        fprintf(stderr, "no runs%s%s\n", f.recipe ? " of " : "", f.recipe ? f.recipe : "");
    } else {
        ar__table_print(&c.table, cli->color);
    }
    ar__table_free(&c.table);
    ar_buf_free(&c.json);
    return AR_EXIT_OK;
}

/* ---- show ---- */

struct show_ctx {
    int as_json;
    int count;
    struct ar_buf *json;
};

static int show_log_cb(void *data, const struct ar_log_record *l)
{
    struct show_ctx *c = data;
    char iso[40];
    ar_format_iso_ms(l->at, iso, sizeof(iso));
    if (c->as_json) {
        ar_buf_puts(c->json, c->count ? ",{\"at\":" : "{\"at\":");
        ar_buf_json_string(c->json, iso);
        ar_buf_puts(c->json, ",\"level\":");
        ar_buf_json_string(c->json, l->level);
        ar_buf_puts(c->json, ",\"message\":");
        ar_buf_json_string(c->json, l->message);
        ar_buf_puts(c->json, "}");
    } else {
        printf("  %s %-5s %s\n", iso + 11, l->level, l->message);
    }
    c->count++;
    return 0;
}

static int show_step_cb(void *data, const struct ar_step_record *s)
{
    struct show_ctx *c = data;
    if (c->as_json) {
        ar_buf_printf(c->json, "%s{\"seq\":%d,\"kind\":", c->count ? "," : "", s->seq);
        ar_buf_json_string(c->json, s->kind);
        ar_buf_puts(c->json, ",\"name\":");
        ar_buf_json_string(c->json, s->name);
        ar_buf_printf(c->json, ",\"durationMs\":%.3f,\"status\":", s->duration_ms);
        ar_buf_json_string(c->json, s->status);
        ar_buf_printf(c->json, ",\"attempts\":%d,\"detail\":%s,\"error\":", s->attempts,
                      s->detail && *s->detail ? s->detail : "null");
        if (s->error) {
            ar_buf_json_string(c->json, s->error);
        } else {
            ar_buf_puts(c->json, "null");
        }
        ar_buf_puts(c->json, "}");
    } else {
        char dur[32];
        ar_format_duration((int64_t)s->duration_ms, dur, sizeof(dur));
        printf("  %3d %-5s %-8s %8s  %s%s%s\n", s->seq, s->kind, s->status, dur, s->name,
               s->error ? "  " : "", s->error ? s->error : "");
    }
    c->count++;
    return 0;
}

int ar__cli_show(struct ar_cli *cli, int argc, char **argv)
{
    const char *id_text = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (argv[i][0] == '-' || id_text) {
            return ar__cli_usage_error("show: unexpected '%s' (usage: autorun show RUN_ID)",
                                       argv[i]);
        } else {
            id_text = argv[i];
        }
    }
    struct ar_engine *e;
    struct ar_run_record r;
    int status = ar__cli_history_run(cli, "show", "autorun show RUN_ID [--json]", id_text, &e, &r);
    if (status != 0) {
        return status;
    }
    struct ar_buf json = {0};
    struct show_ctx c = {.as_json = as_json, .json = &json};
    if (as_json) {
        ar__cli_json_run(&json, &r);
        json.len--; /* reopen the object to add logs, steps and the stack */
        ar_buf_puts(&json, ",\"errorStack\":");
        if (r.error_stack) {
            ar_buf_json_string(&json, r.error_stack);
        } else {
            ar_buf_puts(&json, "null");
        }
        ar_buf_puts(&json, ",\"logs\":[");
        ar_history_logs(e->history, r.id, show_log_cb, &c);
        ar_buf_puts(&json, "],\"steps\":[");
        c.count = 0;
        ar_history_steps(e->history, r.id, show_step_cb, &c);
        ar_buf_puts(&json, "]}\n");
        fputs(json.data, stdout);
        ar_buf_free(&json);
        ar_run_record_free(&r);
        return AR_EXIT_OK;
    }
    char started[32], finished[32], dur[32] = "-";
    ar__cli_format_time(r.started_at, started, sizeof(started));
    ar__cli_format_time(r.finished_at, finished, sizeof(finished));
    if (r.finished_at) {
        ar_format_duration((int64_t)r.duration_ms, dur, sizeof(dur));
    }
    printf("run       %lld\n", (long long)r.id);
    printf("recipe    %s\n", r.recipe);
    printf("trigger   %s%s\n", r.trigger, r.dry_run ? " (dry run)" : "");
    printf("status    %s (attempt %d)\n", r.status, r.attempt);
    printf("started   %s\n", started);
    printf("finished  %s (%s)\n", finished, dur);
    if (r.replay_of) {
        printf("replay of %lld\n", (long long)r.replay_of);
    }
    printf("input     %s\n", r.input ? r.input : "null");
    printf("result    %s\n", r.result ? r.result : "null");
    if (r.error) {
        printf("error     %s\n", r.error);
    }
    if (r.error_stack) {
        printf("stack\n");
        for (const char *p = r.error_stack; *p;) {
            const char *nl = strchr(p, '\n');
            int n = nl ? (int)(nl - p) : (int)strlen(p);
            printf("  %.*s\n", n, p);
            p += n + (nl != NULL);
        }
    }
    printf("logs\n");
    ar_history_logs(e->history, r.id, show_log_cb, &c);
    if (c.count == 0) {
        printf("  (none)\n");
    }
    printf("steps\n");
    c.count = 0;
    ar_history_steps(e->history, r.id, show_step_cb, &c);
    if (c.count == 0) {
        printf("  (none)\n");
    }
    ar_run_record_free(&r);
    return AR_EXIT_OK;
}

/* ---- prune ---- */

int ar__cli_prune(struct ar_cli *cli, int argc, char **argv)
{
    const char *v = NULL;
    int64_t age = -1;
    for (int i = 1; i < argc; i++) {
        int r = ar__cli_opt(argc, argv, &i, "--older-than", &v);
        if (r <= 0 || ar_parse_duration(v, &age) != 0) {
            return ar__cli_usage_error("prune: usage: autorun prune [--older-than 30d]");
        }
    }
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    if (age < 0) {
        age = cli->cfg.retention_ms;
    }
    int64_t deleted;
    if (ar_history_prune(e->history, ar_now_ms() - age, &deleted) != 0) {
        return ar__cli_usage_error("prune: %s", ar_history_errmsg(e->history));
    }
    char d[32];
    ar_format_duration(age, d, sizeof(d));
    fprintf(stderr, "pruned %lld runs older than %s\n", (long long)deleted, d);
    return AR_EXIT_OK;
}
