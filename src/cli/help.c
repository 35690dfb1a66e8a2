/* autorun --help and autorun help COMMAND. */
#include "cli/cli.h"

#include <string.h>

struct command_help {
    const char *name;
    const char *usage;
    const char *text;
};

static const struct command_help commands[] = {
    {"run", "autorun run RECIPE [--input JSON | --input-file FILE|-] [--dry-run] [--json]",
     "Runs a recipe now, in this process. The result (JSON) goes to stdout, the run id and\n"
     "the recipe's logs to stderr; the run is recorded in history like any other.\n"
     "  --input JSON        the event passed to run(event, ctx) (default {})\n"
     "  --input-file FILE   read the event from FILE, or from stdin with -\n"
     "  --dry-run           reads happen, writes (non-GET HTTP, SQL writes, mail) do not\n"
     "  --json              print one JSON document: id, status, result, error\n"
     "Exit status: 0 succeeded, 1 the run failed, 2 usage or recipe load error."},
    {"serve", "autorun serve [--listen ADDR:PORT]",
     "Runs every trigger of every recipe: webhooks, cron schedules, pollers."},
    {"list", "autorun list [--json]",
     "Lists the recipes, their triggers, the next cron time and the last run's status."},
    {"history", "autorun history [RECIPE] [--status S] [--limit N] [--since TIME] [--json]",
     "Lists recent runs, newest first (default 20).\n"
     "  --status S    queued, running, succeeded, failed, interrupted, cancelled, skipped\n"
     "  --since TIME  2026-11-01, 2026-11-01T09:00:00Z, or an age such as 24h or 7d"},
    {"show", "autorun show RUN_ID [--json]",
     "Shows one run: input, result, logs, steps, and the error with its stack."},
    {"replay", "autorun replay RUN_ID [--dry-run] [--json]",
     "Runs a recipe again with the input of an earlier run (secrets in it stay redacted)."},
    {"check", "autorun check [RECIPE...]",
     "Loads recipes (all by default) and reports every problem as file:line: what is wrong:\n"
     "syntax errors, a missing run function, bad triggers, timeouts or missing secrets.\n"
     "Exit status 2 when there is any problem."},
    {"new", "autorun new NAME [--trigger cron|webhook|poll|row]",
     "Creates recipes/NAME.js from a template."},
    {"cron", "autorun cron EXPR [--tz ZONE] [--from TIME] [--count N] [--json]",
     "Prints the next fire times of a cron expression (ISO 8601 with offset)."},
    {"prune", "autorun prune [--older-than 30d]",
     "Deletes runs older than the age (default: the history.retention setting) and gives\n"
     "the space back to the file system."},
    {"config", "autorun help config",
     "Settings come from autorun.conf (working directory, else the state directory) as\n"
     "'key = value' lines; each has an environment variable, which wins."},
};

static void print_usage(FILE *f)
{
    fputs("autorun " AR_VERSION " - run JavaScript recipes for support automation\n\n"
          "Usage:\n",
          f);
    for (size_t i = 0; i < AR_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, "config") != 0) {
            fprintf(f, "  %s\n", commands[i].usage);
        }
    }
    fputs("  autorun --version | --help | help COMMAND\n\n"
          "Global options (before or after the command):\n"
          "  --recipes DIR   recipes directory ($AUTORUN_RECIPES, default ./recipes)\n"
          "  --plugins DIR   plugins directory ($AUTORUN_PLUGINS, default ./plugins)\n"
          "  --home DIR      state directory ($AUTORUN_HOME, default ./.autorun)\n"
          "  --config FILE   configuration file (default ./autorun.conf or $AUTORUN_HOME/autorun.conf)\n"
          "\nSee 'autorun help COMMAND' and 'autorun help config'.\n",
          f);
}

int ar__cli_help(const char *command)
{
    if (command == NULL) {
        print_usage(stdout);
        return AR_EXIT_OK;
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, command) == 0) {
            printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].text);
            if (strcmp(command, "config") == 0) {
                putchar('\n');
                ar_config_print_reference();
            }
            return AR_EXIT_OK;
        }
    }
    return ar__cli_usage_error("help: no command '%s' (see autorun --help)", command);
}
