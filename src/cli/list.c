/* autorun list / autorun check: what recipes there are, and what is wrong with them. */
#include "cli/cli.h"
#include "db/history.h"

#include <stdlib.h>
#include <string.h>

/* Poll and newRow triggers: their health, as `autorun list` shows it. */
static int poll_row_cb(void *data, const struct ar_poll_state *st)
{
    struct ar_buf *b = data;
    if (b->len > 0) {
        ar_buf_puts(b, ",");
    }
    ar_buf_puts(b, "{\"trigger\":");
    ar_buf_json_string(b, st->trigger);
    ar_buf_printf(b, ",\"errors\":%d,\"fired\":%lld,\"lastError\":", st->errors,
                  (long long)st->fired);
    if (st->last_error) {
        ar_buf_json_string(b, st->last_error);
    } else {
        ar_buf_puts(b, "null");
    }
    const int64_t times[] = {st->baseline_at, st->last_poll_at, st->last_ok_at, st->next_poll_at};
    const char *const names[] = {"baselineAt", "lastPollAt", "lastOkAt", "nextPollAt"};
    for (size_t i = 0; i < AR_ARRAY_SIZE(times); i++) {
        char iso[40];
        ar_buf_printf(b, ",\"%s\":", names[i]);
        if (times[i]) {
            ar_format_iso_ms(times[i], iso, sizeof(iso));
            ar_buf_json_string(b, iso);
        } else {
            ar_buf_puts(b, "null");
        }
    }
    ar_buf_puts(b, "}");
    return 0;
}

static int poll_failing_cb(void *data, const struct ar_poll_state *st)
{
    struct ar_buf *b = data;
    if (st->errors > 0) {
        /* "poll zendesk.newTickets [options hash]": the middle word names it. */
        const char *name = strchr(st->trigger, ' ');
        name = name ? name + 1 : st->trigger;
        ar_buf_printf(b, " (%.*s failing, %d in a row)", (int)strcspn(name, " "), name,
                      st->errors);
    }
    return 0;
}

int ar__cli_list(struct ar_cli *cli, int argc, char **argv)
{
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            return ar__cli_usage_error("list: unexpected '%s' (usage: autorun list [--json])",
                                       argv[i]);
        }
    }
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    char **names;
    size_t n;
    int rc = ar_engine_recipe_names(e, &names, &n);
    if (rc != 0) {
        return ar__cli_usage_error("list: %s: %s", cli->cfg.recipes_dir, ar_strerror(rc));
    }
    static const char *const headers[] = {"RECIPE", "TRIGGERS", "NEXT", "LAST", "DESCRIPTION"};
    struct ar_table t;
    struct ar_buf json = {0};
    ar__table_init(&t, AR_ARRAY_SIZE(headers), headers);
    ar_buf_puts(&json, "[");
    for (size_t i = 0; i < n; i++) {
        struct ar_recipe *r;
        char err[1024], next[40] = "-", last[64] = "-";
        struct ar_buf trig = {0};
        int64_t next_ms = 0;
        struct ar_run_record rec = {0};
        int loaded = ar_engine_recipe(e, names[i], &r, err, sizeof(err)) == 0;
        if (loaded) {
            ar_recipe_summary(e, r, &trig, &next_ms);
        }
        int has_last = ar_history_last(e->history, names[i], &rec) == 0;
        if (as_json) {
            ar_buf_puts(&json, i ? ",{\"name\":" : "{\"name\":");
            ar_buf_json_string(&json, names[i]);
            if (loaded) {
                ar_buf_puts(&json, ",\"description\":");
                ar_buf_json_string(&json, r->description ? r->description : "");
                ar_buf_printf(&json, ",\"triggers\":%s,\"nextCron\":", r->triggers_json);
                if (next_ms) {
                    ar_format_iso_ms(next_ms, next, sizeof(next));
                    ar_buf_json_string(&json, next);
                } else {
                    ar_buf_puts(&json, "null");
                }
            } else {
                ar_buf_puts(&json, ",\"error\":");
                ar_buf_json_string(&json, err);
            }
            struct ar_buf polls = {0};
            ar_history_poll_list(e->history, names[i], poll_row_cb, &polls);
            ar_buf_printf(&json, ",\"polls\":[%s]", polls.data ? polls.data : "");
            ar_buf_free(&polls);
            ar_buf_puts(&json, ",\"lastRun\":");
            if (has_last) {
                ar__cli_json_run(&json, &rec);
            } else {
                ar_buf_puts(&json, "null");
            }
            ar_buf_puts(&json, "}");
        } else {
            if (next_ms) {
                ar__cli_format_time(next_ms, next, sizeof(next));
            }
            if (has_last) {
                char when[32];
                ar__cli_format_time(rec.started_at, when, sizeof(when));
                snprintf(last, sizeof(last), "%s %s", rec.status, when);
            }
            if (loaded) {
                ar_history_poll_list(e->history, names[i], poll_failing_cb, &trig);
            }
            const char *cells[] = {names[i], loaded ? trig.data : "(does not load)", next, last,
                                   loaded ? (r->description ? r->description : "") : err};
            ar__table_add(&t, cells);
        }
        ar_run_record_free(&rec);
        ar_buf_free(&trig);
    }
    if (as_json) {
        ar_buf_puts(&json, "]\n");
        fputs(json.data, stdout);
    } else if (n == 0) {
        fprintf(stderr, "no recipes in %s (create one with: autorun new NAME)\n",
                cli->cfg.recipes_dir);
    } else {
        ar__table_print(&t, cli->color);
    }
    ar__table_free(&t);
    ar_buf_free(&json);
    ar_names_free(names, n);
    return AR_EXIT_OK;
}

static void print_problem(void *data, const char *problem)
{
    fprintf(stderr, "autorun: %s\n", problem);
    (*(int *)data)++;
}

int ar__cli_check(struct ar_cli *cli, int argc, char **argv)
{
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    char **names = NULL;
    size_t n = 0;
    int own = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            return ar__cli_usage_error("check: unexpected '%s' (usage: autorun check [RECIPE...])",
                                       argv[i]);
        }
    }
    if (argc > 1) {
        names = argv + 1;
        n = (size_t)argc - 1;
    } else {
        int rc = ar_engine_recipe_names(e, &names, &n);
        if (rc != 0) {
            return ar__cli_usage_error("check: %s: %s", cli->cfg.recipes_dir, ar_strerror(rc));
        }
        own = 1;
    }
    int problems = 0;
    for (size_t i = 0; i < n; i++) {
        struct ar_recipe *r;
        char err[1024];
        if (ar_engine_recipe(e, names[i], &r, err, sizeof(err)) != 0) {
            print_problem(&problems, err);
            continue;
        }
        ar_recipe_check(e, r, print_problem, &problems);
    }
    if (problems == 0) {
        fprintf(stderr, "%zu recipe%s ok\n", n, n == 1 ? "" : "s");
    } else {
        fprintf(stderr, "%d problem%s\n", problems, problems == 1 ? "" : "s");
    }
    if (own) {
        ar_names_free(names, n);
    }
    return problems ? AR_EXIT_USAGE : AR_EXIT_OK;
}
