/* The command line: one src/cli/<command>.c per command, sharing these helpers. */
#ifndef AR_CLI_CLI_H
#define AR_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "db/history.h"

/* Exit statuses (SPEC section 1). */
#define AR_EXIT_OK 0
#define AR_EXIT_FAILED 1
#define AR_EXIT_USAGE 2

struct ar_cli {
    struct ar_config_locations loc;
    struct ar_config cfg;
    int cfg_loaded;
    struct ar_engine *engine; /* created on demand by ar__cli_engine() */
    int color;                /* stdout is a TTY and NO_COLOR is unset */
    int no_examples;          /* never fall back to the shipped example recipes (serve) */
};

/* Prints "autorun: <message>" on stderr and returns AR_EXIT_USAGE. */
int ar__cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Loads the configuration and creates the engine; prints the error itself. */
int ar__cli_engine(struct ar_cli *cli, struct ar_engine **out);
int ar__cli_config(struct ar_cli *cli);
/* The run that id_text (RUN_ID on the command line of cmd) names, read from history with the
 * engine: 0, or after saying what is wrong (usage: cmd's usage line), AR_EXIT_USAGE. */
int ar__cli_history_run(struct ar_cli *cli, const char *cmd, const char *usage,
                        const char *id_text, struct ar_engine **e, struct ar_run_record *out);

/* Option parsing: returns 1 and sets *value when argv[*i] is --name VALUE or
 * --name=VALUE (advancing *i), -1 when the value is missing. */
int ar__cli_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* Aligned tables for humans. */
struct ar_table {
    size_t n_cols;
    size_t n_rows;
    char **cells; /* owned; row-major, n_rows * n_cols */
};
void ar__table_init(struct ar_table *t, size_t n_cols, const char *const *headers);
void ar__table_add(struct ar_table *t, const char *const *cells);
void ar__table_print(struct ar_table *t, int color);
void ar__table_free(struct ar_table *t);

void ar__cli_format_time(int64_t ms, char *buf, size_t len); /* local "2026-11-23 09:00:01" */
/* Appends a run row as a JSON object (input and result embedded as JSON). */
void ar__cli_json_run(struct ar_buf *b, const struct ar_run_record *r);

/* The commands; argv[0] is the command name. */
int ar__cli_run(struct ar_cli *cli, int argc, char **argv);
int ar__cli_replay(struct ar_cli *cli, int argc, char **argv);
int ar__cli_history(struct ar_cli *cli, int argc, char **argv);
int ar__cli_show(struct ar_cli *cli, int argc, char **argv);
int ar__cli_list(struct ar_cli *cli, int argc, char **argv);
int ar__cli_check(struct ar_cli *cli, int argc, char **argv);
int ar__cli_new(struct ar_cli *cli, int argc, char **argv);
int ar__cli_prune(struct ar_cli *cli, int argc, char **argv);
int ar__cli_help(const char *command);

#endif
