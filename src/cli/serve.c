/* autorun serve [--listen ADDR:PORT] [--grace DURATION]: the service (src/core/service.c). */
#include "cli/cli.h"
#include "core/service.h"

#include <string.h>

int ar__cli_serve(struct ar_cli *cli, int argc, char **argv)
{
    struct ar_service_opts opts = {0};
    const char *v;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = ar__cli_opt(argc, argv, &i, "--listen", &v)) != 0) {
            if (r < 0 || *v == '\0') {
                return ar__cli_usage_error("serve: --listen needs ADDR:PORT (e.g. 127.0.0.1:8080)");
            }
            opts.listen = v;
        } else if ((r = ar__cli_opt(argc, argv, &i, "--grace", &v)) != 0) {
            if (r < 0 || ar_parse_duration(v, &opts.grace_ms) != 0 || opts.grace_ms <= 0) {
                return ar__cli_usage_error("serve: --grace needs a duration (e.g. 30s)");
            }
        } else {
            return ar__cli_usage_error("serve: unexpected '%s' (usage: autorun serve "
                                       "[--listen ADDR:PORT] [--grace DURATION])",
                                       argv[i]);
        }
    }
    /* A service must run the recipes it was given, never the examples (one has a cron). */
    cli->no_examples = 1;
    struct ar_engine *e;
    if (ar__cli_engine(cli, &e) != 0) {
        return AR_EXIT_USAGE;
    }
    return ar_service_run(e, &opts);
}
