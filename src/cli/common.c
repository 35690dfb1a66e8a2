/* Helpers shared by the commands: errors, options, tables, times, JSON. */
#include "cli/cli.h"
#include "db/history.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int ar__cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("autorun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return AR_EXIT_USAGE;
}

int ar__cli_config(struct ar_cli *cli)
{
    if (cli->cfg_loaded) {
        return 0;
    }
    char err[512];
    if (ar_config_load(&cli->cfg, &cli->loc, err, sizeof(err)) != 0) {
        ar__cli_usage_error("%s", err);
        return AR_EINVAL;
    }
    cli->cfg_loaded = 1;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* An installed autorun started where there is no ./recipes (and neither --recipes nor
 * $AUTORUN_RECIPES is given) uses the example recipes it ships, so `autorun run nps-survey`
 * works out of the box. An explicitly chosen directory is never replaced: a typo there must
 * be an error, not a run of some other recipe. */
static void recipes_fallback(struct ar_cli *cli)
{
    const char *env = getenv("AUTORUN_RECIPES");
    if (cli->no_examples || cli->loc.recipes != NULL || (env != NULL && *env) ||
        is_dir(cli->cfg.recipes_dir)) {
        return;
    }
    char *share = ar_exe_share_dir();
    char *dir = share ? ar_path_join(share, "recipes") : NULL;
    free(share);
    if (!is_dir(dir)) {
        free(dir);
        dir = is_dir(AR_SHARE_DIR "/recipes") ? ar_strdup(AR_SHARE_DIR "/recipes") : NULL;
    }
    if (dir != NULL) {
        fprintf(stderr, "autorun: no %s directory here; using the example recipes in %s\n",
                cli->cfg.recipes_dir, dir);
        free(cli->cfg.recipes_dir);
        cli->cfg.recipes_dir = dir;
    }
}

int ar__cli_engine(struct ar_cli *cli, struct ar_engine **out)
{
    if (cli->engine == NULL) {
        char err[512];
        if (ar__cli_config(cli) != 0) {
            return AR_EINVAL;
        }
        recipes_fallback(cli);
        if (ar_engine_create(&cli->cfg, &cli->engine, err, sizeof(err)) != 0) {
            ar__cli_usage_error("%s", err);
            return AR_EINVAL;
        }
    }
    *out = cli->engine;
    return 0;
}

int ar__cli_history_run(struct ar_cli *cli, const char *cmd, const char *usage,
                        const char *id_text, struct ar_engine **e, struct ar_run_record *out)
{
    char *end;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    if (id_text == NULL || *end != '\0' || id <= 0) {
        return ar__cli_usage_error("%s: usage: %s", cmd, usage);
    }
    if (ar__cli_engine(cli, e) != 0) {
        return AR_EXIT_USAGE;
    }
    if (ar_history_get((*e)->history, id, out) != 0) {
        return ar__cli_usage_error("%s: no run %lld in history", cmd, id);
    }
    return 0;
}

int ar__cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) {
        return 0;
    }
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc) {
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

void ar__table_init(struct ar_table *t, size_t n_cols, const char *const *headers)
{
    t->n_cols = n_cols;
    t->n_rows = 0;
    t->cells = NULL;
    ar__table_add(t, headers);
}

void ar__table_add(struct ar_table *t, const char *const *cells)
{
    t->cells = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));
    if (t->cells == NULL) {
        abort();
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        const char *s = cells[c] ? cells[c] : "";
        /* One line per row: newlines inside a cell would break the columns. */
        char *copy = ar_strdup(s);
        for (char *p = copy; *p; p++) {
            if (*p == '\n' || *p == '\r' || *p == '\t') {
                *p = ' ';
            }
        }
        t->cells[t->n_rows * t->n_cols + c] = copy;
    }
    t->n_rows++;
}

/* Display width of UTF-8 text: counts code points, not bytes. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        w += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return w;
}

void ar__table_print(struct ar_table *t, int color)
{
    size_t *w = ar_calloc(t->n_cols, sizeof(size_t));
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t l = width(t->cells[r * t->n_cols + c]);
            w[c] = l > w[c] ? l : w[c];
        }
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        if (r == 0 && color) {
            fputs("\033[1m", stdout);
        }
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[r * t->n_cols + c];
            if (c + 1 == t->n_cols) {
                fputs(s, stdout);
            } else {
                fputs(s, stdout);
                for (size_t k = width(s); k < w[c] + 2; k++) {
                    fputc(' ', stdout);
                }
            }
        }
        if (r == 0 && color) {
            fputs("\033[0m", stdout);
        }
        fputc('\n', stdout);
    }
    free(w);
}

void ar__table_free(struct ar_table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    t->cells = NULL;
}

void ar__cli_format_time(int64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void json_raw_or_null(struct ar_buf *b, const char *json)
{
    ar_buf_puts(b, json && *json ? json : "null");
}

static void json_str_or_null(struct ar_buf *b, const char *s)
{
    if (s) {
        ar_buf_json_string(b, s);
    } else {
        ar_buf_puts(b, "null");
    }
}

static void json_time(struct ar_buf *b, int64_t ms)
{
    char iso[40];
    if (ms == 0) {
        ar_buf_puts(b, "null");
        return;
    }
    ar_format_iso_ms(ms, iso, sizeof(iso));
    ar_buf_json_string(b, iso);
}

void ar__cli_json_run(struct ar_buf *b, const struct ar_run_record *r)
{
    ar_buf_printf(b, "{\"id\":%lld,\"recipe\":", (long long)r->id);
    json_str_or_null(b, r->recipe);
    ar_buf_puts(b, ",\"trigger\":");
    json_str_or_null(b, r->trigger);
    ar_buf_puts(b, ",\"status\":");
    json_str_or_null(b, r->status);
    ar_buf_printf(b, ",\"attempt\":%d,\"dryRun\":%s,\"startedAt\":", r->attempt,
                  r->dry_run ? "true" : "false");
    json_time(b, r->started_at);
    ar_buf_puts(b, ",\"finishedAt\":");
    json_time(b, r->finished_at);
    if (r->finished_at) {
        ar_buf_printf(b, ",\"durationMs\":%.3f", r->duration_ms);
    } else {
        ar_buf_puts(b, ",\"durationMs\":null");
    }
    ar_buf_puts(b, ",\"input\":");
    json_raw_or_null(b, r->input);
    ar_buf_puts(b, ",\"result\":");
    json_raw_or_null(b, r->result);
    ar_buf_puts(b, ",\"error\":");
    json_str_or_null(b, r->error);
    if (r->replay_of) {
        ar_buf_printf(b, ",\"replayOf\":%lld", (long long)r->replay_of);
    }
    ar_buf_puts(b, "}");
}
