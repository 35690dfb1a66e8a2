/* autorun --help and autorun help COMMAND. docs/autorun.1 says the same; test_docs.sh checks. */
#include "cli/cli.h"

#include <string.h>

struct option_help {
    const char *name; /* "--input JSON" */
    const char *text;
};

/* One entry per command. The options are kept apart from the prose so that every command
 * prints them the same way, and a test can compare them with the man page. */
struct command_help {
    const char *name;
    const char *usage;
    const char *text;
    struct option_help options[8]; /* ends at the first entry without a name */
    const char *after;             /* exit status and notes, or NULL */
};

static const struct command_help commands[] = {
    {"run",
     "autorun run RECIPE [--input JSON | --input-file FILE|-] [--dry-run] [--json]",
     "Runs a recipe now, in this process, and records the run in history exactly as the\n"
     "service would. The result (JSON) goes to stdout; the run id, its status and the\n"
     "recipe's logs go to stderr.",
     {{"--input JSON", "the event passed to run(event, ctx) (default {})"},
      {"--input-file FILE", "read the event from FILE, or from stdin with -"},
      {"--dry-run", "reads happen; writes (non-GET HTTP, SQL writes, mail) do not"},
      {"--json", "print one JSON document: id, recipe, status, result, error"}},
     "Exit status: 0 succeeded, 1 the run failed, 2 usage or recipe load error."},
    {"serve",
     "autorun serve [--listen ADDR:PORT] [--grace DURATION]",
     "Runs every trigger of every recipe in one process: the webhook listener (which also\n"
     "answers GET /healthz and GET /metrics), the cron scheduler, pollers, new-row watchers\n"
     "and the run queue. SIGTERM or SIGINT stops accepting, lets running runs finish within\n"
     "the grace period and marks the rest interrupted; SIGHUP, or a change in the recipes\n"
     "directory, reloads the recipes without dropping queued events.",
     {{"--listen ADDR:PORT", "where to listen (default: the listen setting, 127.0.0.1:8080)"},
      {"--grace DURATION", "how long a stop waits for running runs (default 30s)"}},
     "Exit status: 0 after a clean stop, 2 when the service cannot start."},
    {"list",
     "autorun list [--json]",
     "Lists the recipes, their triggers, the next cron time and the last run's status.",
     {{"--json", "print one JSON array of recipes"}},
     NULL},
    {"history",
     "autorun history [RECIPE] [--status S] [--limit N] [--since TIME] [--json]",
     "Lists recent runs, newest first, of every recipe or of RECIPE.",
     {{"--status S", "queued, running, succeeded, failed, interrupted, cancelled or skipped"},
      {"--limit N", "at most N runs (default 20)"},
      {"--since TIME", "2026-11-01, 2026-11-01T09:00:00Z, or an age such as 24h or 7d"},
      {"--json", "print one JSON array of runs"}},
     NULL},
    {"show",
     "autorun show RUN_ID [--json]",
     "Shows one run: input, result, logs, steps, and the error with its stack.",
     {{"--json", "print the run as one JSON document"}},
     NULL},
    {"replay",
     "autorun replay RUN_ID [--dry-run] [--json]",
     "Runs a recipe again with the input of an earlier run (secrets in it stay redacted).\n"
     "The new run is recorded with trigger 'replay' and points at the run it replays.",
     {{"--dry-run", "reads happen; writes do not"},
      {"--json", "print one JSON document: id, recipe, status, result, error"}},
     "Exit status: 0 succeeded, 1 the run failed, 2 usage error or no such run."},
    {"check",
     "autorun check [RECIPE...]",
     "Loads recipes (all by default) and reports every problem as file:line: what is wrong:\n"
     "syntax errors, a missing run function, bad triggers, timeouts or missing secrets.",
     {{NULL, NULL}},
     "Exit status: 0 when every recipe is fine, 2 when there is any problem."},
    {"new",
     "autorun new NAME [--trigger cron|webhook|poll|row]",
     "Creates NAME.js in the recipes directory from a template, with a trigger of the kind\n"
     "given (none by default: a recipe you run with autorun run NAME).",
     {{"--trigger KIND", "cron, webhook, poll or row"}},
     NULL},
    {"cron",
     "autorun cron EXPR [--tz ZONE] [--from TIME] [--count N] [--json]",
     "Prints the next times a cron expression fires, one ISO 8601 time (with offset) per line.\n"
     "EXPR has five fields, minute hour day-of-month month day-of-week ('*/15 9-17 * * MON-FRI'),\n"
     "or is @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually.",
     {{"--tz ZONE", "IANA time zone such as Europe/Berlin (default: the system zone)"},
      {"--from TIME", "list fire times after TIME (default now): 2026-03-29T01:30:00Z, a local\n"
                      "time in ZONE such as 2026-03-29T02:30, @UNIX_SECONDS, or now"},
      {"--count N", "how many fire times, 1-1000 (default 5)"},
      {"--json", "print one JSON array of strings"}},
     NULL},
    {"prune",
     "autorun prune [--older-than AGE]",
     "Deletes finished runs older than AGE with their logs and steps, and expired store\n"
     "values, then gives the space back to the file system. The service does this by itself.",
     {{"--older-than AGE", "e.g. 30d or 12h (default: the history.retention setting, 30d)"}},
     NULL},
    {"help",
     "autorun help [COMMAND | config]",
     "Prints the usage of every command, of one COMMAND, or the settings reference.",
     {{NULL, NULL}},
     NULL},
    {"config",
     "autorun help config",
     "Settings come from autorun.conf ('key = value' lines, # comments) in the working\n"
     "directory, else in the state directory, or from --config FILE. Every setting has an\n"
     "environment variable, which wins over the file.",
     {{NULL, NULL}},
     NULL},
};

static const struct option_help globals[] = {
    {"--recipes DIR", "recipes directory ($AUTORUN_RECIPES, default ./recipes)"},
    {"--plugins DIR", "plugins directory ($AUTORUN_PLUGINS, default ./plugins, then the\n"
                      "installed share/autorun/plugins)"},
    {"--home DIR", "state directory ($AUTORUN_HOME, default ./.autorun)"},
    {"--config FILE", "configuration file (default ./autorun.conf, else\n"
                      "$AUTORUN_HOME/autorun.conf)"},
    {"--version", "print the version"},
    {"--help", "print this help (also: autorun COMMAND --help)"},
};

/* "  --input JSON        text", continuation lines indented to the text column. */
static void print_option(FILE *f, const struct option_help *o)
{
    fprintf(f, "  %-19s ", o->name);
    for (const char *p = o->text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') {
            fprintf(f, "%22s", "");
        }
    }
    fputc('\n', f);
}

static void print_usage(FILE *f)
{
    fputs("autorun " AR_VERSION " - run JavaScript recipes for support automation\n\n"
          "Usage:\n",
          f);
    for (size_t i = 0; i < AR_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, "config") != 0 && strcmp(commands[i].name, "help") != 0) {
            fprintf(f, "  %s\n", commands[i].usage);
        }
    }
    fputs("  autorun --version | --help | help COMMAND\n\n"
          "Global options (before or after the command):\n",
          f);
    for (size_t i = 0; i < AR_ARRAY_SIZE(globals); i++) {
        print_option(f, &globals[i]);
    }
    fputs("\nExit status: 0 success, 1 a run failed, 2 usage, configuration or recipe error.\n"
          "See 'autorun help COMMAND', 'autorun help config' and man autorun.\n",
          f);
}

int ar__cli_help(const char *command)
{
    if (command == NULL) {
        print_usage(stdout);
        return AR_EXIT_OK;
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(commands); i++) {
        const struct command_help *c = &commands[i];
        if (strcmp(c->name, command) != 0) {
            continue;
        }
        printf("usage: %s\n\n%s\n", c->usage, c->text);
        if (c->options[0].name) {
            fputs("\nOptions:\n", stdout);
            for (size_t o = 0; o < AR_ARRAY_SIZE(c->options) && c->options[o].name; o++) {
                print_option(stdout, &c->options[o]);
            }
        }
        if (c->after) {
            printf("\n%s\n", c->after);
        }
        if (strcmp(command, "config") == 0) {
            putchar('\n');
            ar_config_print_reference();
        }
        return AR_EXIT_OK;
    }
    return ar__cli_usage_error("help: no command '%s' (see autorun --help)", command);
}
