/* autorun new NAME [--trigger cron|webhook|poll|row]: scaffolds a recipe to edit. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *trigger_line(const char *kind)
{
    if (kind == NULL) {
        return "exports.triggers = [];   // run it with: autorun run %s\n";
    }
    if (strcmp(kind, "cron") == 0) {
        return "exports.triggers = [{ cron: '0 9 * * MON-FRI', tz: 'UTC' }];\n";
    }
    if (strcmp(kind, "webhook") == 0) {
        return "exports.triggers = [{ webhook: '/hooks/%s', respond: 'accepted' }];\n";
    }
    if (strcmp(kind, "poll") == 0) {
        return "exports.triggers = [{ poll: 'zendesk.newTickets', every: '1m' }];\n";
    }
    if (strcmp(kind, "row") == 0) {
        return "exports.triggers = [{ newRow: { db: 'customers', table: 'customers', key: 'id' },"
               " every: '30s' }];\n";
    }
    return NULL;
}

int ar__cli_new(struct ar_cli *cli, int argc, char **argv)
{
    const char *name = NULL, *kind = NULL, *v;
    for (int i = 1; i < argc; i++) {
        int r = ar__cli_opt(argc, argv, &i, "--trigger", &v);
        if (r < 0) {
            return ar__cli_usage_error("new: --trigger needs cron, webhook, poll or row");
        } else if (r > 0) {
            kind = v;
        } else if (argv[i][0] == '-' || name) {
            return ar__cli_usage_error("new: unexpected '%s' (usage: autorun new NAME "
                                       "[--trigger cron|webhook|poll|row])",
                                       argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (name == NULL) {
        return ar__cli_usage_error("new: usage: autorun new NAME [--trigger cron|webhook|poll|row]");
    }
    if (!ar_name_valid(name)) {
        return ar__cli_usage_error("new: '%s' is not a recipe name (letters, digits, - and _)",
                                   name);
    }
    const char *trig = trigger_line(kind);
    if (trig == NULL) {
        return ar__cli_usage_error("new: unknown trigger '%s' (cron, webhook, poll or row)", kind);
    }
    if (ar__cli_config(cli) != 0) {
        return AR_EXIT_USAGE;
    }
    int rc = ar_mkdir_p(cli->cfg.recipes_dir, 0755);
    if (rc != 0) {
        return ar__cli_usage_error("new: %s: %s", cli->cfg.recipes_dir, ar_strerror(rc));
    }
    char *file = ar_asprintf("%s.js", name);
    char *path = ar_path_join(cli->cfg.recipes_dir, file);
    free(file);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        int status = ar__cli_usage_error("new: %s: %s", path,
                                         err == EEXIST ? "already exists" : strerror(err));
        free(path);
        return status;
    }
    struct ar_buf b = {0};
    ar_buf_printf(&b, "// %s: what this recipe does, in one line.\n", name);
    ar_buf_printf(&b, "exports.description = 'Describe %s here';\n", name);
    ar_buf_printf(&b, trig, name);
    ar_buf_puts(&b, "exports.timeout = '1m';\n\n"
                    "exports.run = function (event, ctx) {\n"
                    "    log.info('run', ctx.runId, 'of', ctx.recipe, 'triggered by', "
                    "ctx.trigger);\n"
                    "    // var rows = sql.query('customers', 'SELECT id, email FROM customers "
                    "LIMIT ?', [10]);\n"
                    "    // var res = http.get('https://api.example.com/things', { query: { "
                    "page: 1 } });\n"
                    "    return { ok: true, event: event };\n"
                    "};\n");
    ssize_t w = write(fd, b.data, b.len);
    close(fd);
    ar_buf_free(&b);
    if (w < 0) {
        int status = ar__cli_usage_error("new: %s: %s", path, strerror(errno));
        free(path);
        return status;
    }
    printf("%s\n", path);
    fprintf(stderr, "created %s; try it with: autorun run %s\n", path, name);
    free(path);
    return AR_EXIT_OK;
}
