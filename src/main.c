/* autorun: the command line. Parses global options and dispatches to src/cli/. */
#include "cli/cli.h"
#include "core/prefault.h"
#include "hugetext.h"
#include "trigger/cron.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where no huge page is to be had, the small pages mapped up front; also the step the heap
 * grows by. The heap of `autorun run` with a short recipe peaks near 450 KiB; of 384, 448,
 * 512, 640 and 768 KiB, 512 was fastest: populating pages a run never touches costs too. */
#define AR_HEAP_PREFAULT_BYTES (512 * 1024)
#define AR_STACK_PREFAULT_BYTES (32 * 1024)

struct command {
    const char *name;
    int (*fn)(struct ar_cli *cli, int argc, char **argv);
};

/* src/cli/serve.c; its declaration belongs in cli/cli.h with the other commands. */
int ar__cli_serve(struct ar_cli *cli, int argc, char **argv);

static const struct command commands[] = {
    {"run", ar__cli_run},         {"replay", ar__cli_replay}, {"history", ar__cli_history},
    {"show", ar__cli_show},       {"list", ar__cli_list},     {"check", ar__cli_check},
    {"new", ar__cli_new},         {"prune", ar__cli_prune},   {"serve", ar__cli_serve},
};

/* Removes the global options from argv wherever they are; returns the new argc. */
static int take_globals(struct ar_cli *cli, int argc, char **argv, int *status)
{
    static const struct {
        const char *name;
        size_t offset;
    } globals[] = {
        {"--recipes", offsetof(struct ar_config_locations, recipes)},
        {"--plugins", offsetof(struct ar_config_locations, plugins)},
        {"--home", offsetof(struct ar_config_locations, home)},
        {"--config", offsetof(struct ar_config_locations, file)},
    };
    int out = 1;
    for (int i = 1; i < argc; i++) {
        int matched = 0;
        for (size_t g = 0; g < AR_ARRAY_SIZE(globals) && !matched; g++) {
            const char *v;
            int r = ar__cli_opt(argc, argv, &i, globals[g].name, &v);
            if (r < 0) {
                *status = ar__cli_usage_error("%s needs a value", globals[g].name);
                return -1;
            }
            if (r > 0) {
                *(const char **)((char *)&cli->loc + globals[g].offset) = v;
                matched = 1;
            }
        }
        if (!matched) {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    /* First: none of the code it maps may have run yet. */
    int code_mapped = ar_hugetext_map();
    struct ar_cli cli = {0};
    int status = AR_EXIT_USAGE;
    /* A peer closing a socket must be an error on that socket, not the end of us. */
    signal(SIGPIPE, SIG_IGN);
    cli.color = isatty(1) && getenv("NO_COLOR") == NULL;

    argc = take_globals(&cli, argc, argv, &status);
    if (argc < 0) {
        return status;
    }
    if (argc < 2) {
        ar__cli_help(NULL);
        return AR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("autorun %s\n", AR_VERSION);
        return AR_EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        return ar__cli_help(NULL);
    }
    if (strcmp(cmd, "help") == 0) {
        return ar__cli_help(argc > 2 ? argv[2] : NULL);
    }
    if (strcmp(cmd, "cron") == 0) {
        return ar__cli_cron(argc - 1, argv + 1);
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return ar__cli_help(cmd);
        }
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, cmd) == 0) {
            /* Nothing has grown the heap yet. Not for the service: glibc would then keep
             * its mmap threshold fixed, and a long-lived process gains nothing from it. */
            if (commands[i].fn != ar__cli_serve) {
                ar_heap_prefault(AR_HEAP_PREFAULT_BYTES);
                ar_stack_prefault(AR_STACK_PREFAULT_BYTES);
                if (!code_mapped) { /* else code and constants are in the block */
                    ar_code_prefault();
                }
            }
            status = commands[i].fn(&cli, argc - 1, argv + 1);
            ar_engine_exit(cli.engine);
            if (cli.cfg_loaded) {
                ar_config_free(&cli.cfg);
            }
            return status;
        }
    }
    return ar__cli_usage_error("unknown command '%s' (see autorun --help)", cmd);
}
