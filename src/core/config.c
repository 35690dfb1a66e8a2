/* Settings: declared once in a table that drives parsing of autorun.conf, the
 * environment overrides and `autorun help config`. */
#include "core/config.h"
#include "core/error.h"
#include "core/util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum setting_type { SET_STRING, SET_DURATION, SET_SIZE, SET_INT };

struct setting {
    enum setting_type type;
    const char *key;
    const char *env;
    const char *def;
    size_t offset;
    const char *help;
};

#define FIELD(f) offsetof(struct ar_config, f)

static const struct setting settings[] = {
    {SET_STRING, "listen", "AUTORUN_LISTEN", "127.0.0.1:8080", FIELD(listen),
     "address the service listens on (webhooks, /healthz, /metrics)"},
    {SET_STRING, "mail.url", "AUTORUN_MAIL_URL", NULL, FIELD(mail_url),
     "smtp://host:port, smtps://..., or file:DIR (default file:$AUTORUN_HOME/outbox)"},
    {SET_STRING, "mail.from", "AUTORUN_MAIL_FROM", "autorun@localhost", FIELD(mail_from),
     "sender of mail.send messages that set no from ('Name <addr>' or addr)"},
    {SET_STRING, "survey.url", "AUTORUN_SURVEY_URL", "https://survey.example.com/nps",
     FIELD(survey_url), "base URL of the survey links the nps-survey recipe sends"},
    {SET_STRING, "secrets.file", "AUTORUN_SECRETS_FILE", NULL, FIELD(secrets_file),
     "NAME=value lines; refused if group or world can read it (default $AUTORUN_HOME/secrets)"},
    {SET_STRING, "log.level", "AUTORUN_LOG_LEVEL", "info", FIELD(log_level),
     "debug, info, warn or error"},
    {SET_DURATION, "run.timeout", "AUTORUN_RUN_TIMEOUT", "5m", FIELD(run_timeout_ms),
     "default run timeout; a recipe's exports.timeout overrides it"},
    {SET_SIZE, "run.heap", "AUTORUN_RUN_HEAP", "64M", FIELD(heap_limit),
     "JavaScript memory one run may hold"},
    {SET_INT, "run.max", "AUTORUN_RUN_MAX", "10000", FIELD(max_runs),
     "runs executing at once in one process"},
    {SET_INT, "parallel.concurrency", "AUTORUN_PARALLEL_CONCURRENCY", "8",
     FIELD(parallel_default), "default concurrency of parallel()"},
    {SET_SIZE, "http.body_limit", "AUTORUN_HTTP_BODY_LIMIT", "1M", FIELD(body_limit),
     "largest webhook request body accepted"},
    {SET_SIZE, "http.response_limit", "AUTORUN_HTTP_RESPONSE_LIMIT", "16M",
     FIELD(response_limit), "largest HTTP response body a recipe keeps in memory"},
    {SET_INT, "http.attempts", "AUTORUN_HTTP_ATTEMPTS", "4", FIELD(http_attempts),
     "tries per HTTP request (first included) on 429, 5xx and connection errors"},
    {SET_DURATION, "http.backoff", "AUTORUN_HTTP_BACKOFF", "500ms", FIELD(http_backoff_ms),
     "first wait between HTTP attempts; doubles each time, with jitter"},
    {SET_DURATION, "http.timeout", "AUTORUN_HTTP_TIMEOUT", "30s", FIELD(http_timeout_ms),
     "default timeout of one HTTP attempt (a request's timeout option overrides it)"},
    {SET_INT, "http.host_concurrency", "AUTORUN_HTTP_HOST_CONCURRENCY", "20",
     FIELD(http_host_concurrency),
     "HTTP requests in flight to one host at once (0 = no limit), unless limited otherwise"},
    {SET_STRING, "http.limits", "AUTORUN_HTTP_LIMITS", NULL, FIELD(http_limits),
     "per-host limits, winning over plugins: 'HOST rate=N/DURATION concurrency=N; ...'"},
    {SET_DURATION, "history.retention", "AUTORUN_HISTORY_RETENTION", "30d",
     FIELD(retention_ms), "runs older than this are pruned"},
};

static int apply(struct ar_config *cfg, const struct setting *s, const char *value, char *err,
                 size_t errlen)
{
    void *field = (char *)cfg + s->offset;
    int64_t n = 0;
    switch (s->type) {
    case SET_STRING:
        free(*(char **)field);
        *(char **)field = ar_strdup(value);
        return 0;
    case SET_DURATION:
        if (ar_parse_duration(value, &n) != 0) {
            snprintf(err, errlen, "%s: '%s' is not a duration (e.g. 30s, 5m, 1h)", s->key, value);
            return AR_EINVAL;
        }
        break;
    case SET_SIZE:
        if (ar_parse_size(value, &n) != 0) {
            snprintf(err, errlen, "%s: '%s' is not a size (e.g. 512K, 64M)", s->key, value);
            return AR_EINVAL;
        }
        break;
    case SET_INT: {
        const char *p = value;
        while (isdigit((unsigned char)*p) && n <= (INT64_MAX - 9) / 10) {
            n = n * 10 + (*p++ - '0');
        }
        if (*value == '\0' || *p != '\0') {
            snprintf(err, errlen, "%s: '%s' is not a non-negative integer", s->key, value);
            return AR_EINVAL;
        }
        break;
    }
    }
    *(int64_t *)field = n;
    return 0;
}

static void named_set(struct ar_named_url **list, size_t *n, const char *name, const char *url)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i].name, name) == 0) {
            free((*list)[i].url);
            (*list)[i].url = ar_strdup(url);
            return;
        }
    }
    *list = realloc(*list, (*n + 1) * sizeof(**list));
    if (*list == NULL) {
        abort();
    }
    (*list)[*n].name = ar_strdup(name);
    (*list)[*n].url = ar_strdup(url);
    (*n)++;
}

int ar_config_set(struct ar_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen)
{
    if (strncmp(key, "db.", 3) == 0 && ar_name_valid(key + 3)) {
        named_set(&cfg->dbs, &cfg->n_dbs, key + 3, value);
        return 0;
    }
    if (strncmp(key, "api.", 4) == 0 && ar_name_valid(key + 4)) {
        named_set(&cfg->apis, &cfg->n_apis, key + 4, value);
        return 0;
    }
    if (strncmp(key, "plugin.", 7) == 0) {
        /* plugin.NAME.KEY: the plugin reads KEY (any case, dots allowed) when it wants it. */
        const char *dot = strchr(key + 7, '.');
        char *name = dot ? ar_strndup(key + 7, (size_t)(dot - key - 7)) : NULL;
        int ok = name != NULL && ar_name_valid(name) && dot[1] != '\0';
        free(name);
        if (ok) {
            named_set(&cfg->plugin_settings, &cfg->n_plugin_settings, key + 7, value);
            return 0;
        }
        snprintf(err, errlen, "'%s': plugin settings are plugin.NAME.KEY", key);
        return AR_EINVAL;
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(settings); i++) {
        if (strcmp(settings[i].key, key) == 0) {
            return apply(cfg, &settings[i], value, err, errlen);
        }
    }
    snprintf(err, errlen, "unknown setting '%s' (see autorun help config)", key);
    return AR_EINVAL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static int parse_file(struct ar_config *cfg, const char *path, char *err, size_t errlen)
{
    char *text;
    int rc = ar_read_file(path, 1 << 20, &text, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, ar_strerror(rc));
        return AR_EINVAL;
    }
    int lineno = 0;
    char *save = NULL;
    /* strtok_r would merge empty lines and shift line numbers, so split by hand. */
    for (char *line = text; line != NULL; line = save) {
        save = strchr(line, '\n');
        if (save) {
            *save++ = '\0';
        }
        lineno++;
        char *l = trim(line);
        if (*l == '\0' || *l == '#' || *l == ';') {
            continue;
        }
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = AR_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(l), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
            value[vl - 1] = '\0';
            value++;
        }
        char why[256];
        if (ar_config_set(cfg, key, value, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = AR_EINVAL;
            break;
        }
    }
    free(text);
    return rc;
}

static int file_exists(const char *p)
{
    return access(p, R_OK) == 0;
}

static void apply_prefixed_env(struct ar_named_url **list, size_t *n, const char *prefix,
                               const char *suffix)
{
    extern char **environ;
    size_t pl = strlen(prefix), sl = strlen(suffix);
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL) {
            continue;
        }
        size_t kl = (size_t)(eq - *e);
        if (kl <= pl + sl || strncmp(*e, prefix, pl) != 0 || strncmp(eq - sl, suffix, sl) != 0) {
            continue;
        }
        char name[80];
        size_t nl = kl - pl - sl;
        if (nl == 0 || nl >= sizeof(name)) {
            continue;
        }
        for (size_t i = 0; i < nl; i++) {
            name[i] = (char)tolower((unsigned char)(*e)[pl + i]);
        }
        name[nl] = '\0';
        if (ar_name_valid(name)) {
            named_set(list, n, name, eq + 1);
        }
    }
}

static int load(struct ar_config *cfg, const struct ar_config_locations *loc, char *err,
                size_t errlen)
{
    const char *env;
    cfg->home = ar_strdup(loc->home ? loc->home
                          : (env = getenv("AUTORUN_HOME")) && *env ? env : ".autorun");
    cfg->recipes_dir = ar_strdup(loc->recipes ? loc->recipes
                                 : (env = getenv("AUTORUN_RECIPES")) && *env ? env : "recipes");
    cfg->plugins_dir = ar_strdup(loc->plugins ? loc->plugins
                                 : (env = getenv("AUTORUN_PLUGINS")) && *env ? env : "plugins");

    for (size_t i = 0; i < AR_ARRAY_SIZE(settings); i++) {
        if (settings[i].def && apply(cfg, &settings[i], settings[i].def, err, errlen) != 0) {
            return AR_EINVAL;
        }
    }

    char *path = NULL;
    if (loc->file) {
        path = ar_strdup(loc->file);
    } else if (file_exists("autorun.conf")) {
        path = ar_strdup("autorun.conf");
    } else {
        char *p = ar_path_join(cfg->home, "autorun.conf");
        if (file_exists(p)) {
            path = p;
        } else {
            free(p);
        }
    }
    if (path) {
        cfg->file = path;
        if (parse_file(cfg, path, err, errlen) != 0) {
            return AR_EINVAL;
        }
    }

    /* The environment wins over the file. */
    for (size_t i = 0; i < AR_ARRAY_SIZE(settings); i++) {
        if ((env = getenv(settings[i].env)) != NULL && *env) {
            char why[256];
            if (apply(cfg, &settings[i], env, why, sizeof(why)) != 0) {
                snprintf(err, errlen, "%s: %s", settings[i].env, why);
                return AR_EINVAL;
            }
        }
    }
    apply_prefixed_env(&cfg->dbs, &cfg->n_dbs, "AUTORUN_DB_", "");
    apply_prefixed_env(&cfg->apis, &cfg->n_apis, "", "_API_BASE");

    if (cfg->mail_url == NULL) {
        cfg->mail_url = ar_asprintf("file:%s/outbox", cfg->home);
    }
    if (cfg->secrets_file == NULL) {
        cfg->secrets_file = ar_path_join(cfg->home, "secrets");
    }
    return 0;
}

int ar_config_load(struct ar_config *cfg, const struct ar_config_locations *loc, char *err,
                   size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc = load(cfg, loc, err, errlen);
    if (rc != 0) {
        /* A half-loaded configuration is never used; leave cfg zeroed. */
        ar_config_free(cfg);
        memset(cfg, 0, sizeof(*cfg));
    }
    return rc;
}

static const char *named_get(const struct ar_named_url *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0) {
            return list[i].url;
        }
    }
    return NULL;
}

const char *ar_config_db_url(const struct ar_config *cfg, const char *name)
{
    return named_get(cfg->dbs, cfg->n_dbs, name);
}

const char *ar_config_api_base(const struct ar_config *cfg, const char *name)
{
    return named_get(cfg->apis, cfg->n_apis, name);
}

const char *ar_config_plugin_setting(const struct ar_config *cfg, const char *plugin,
                                     const char *key)
{
    char env[160];
    int n = snprintf(env, sizeof(env), "AUTORUN_PLUGIN_%s_%s", plugin, key);
    if (n <= 0 || (size_t)n >= sizeof(env)) {
        return NULL;
    }
    for (char *p = env; *p; p++) {
        *p = *p == '.' || *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    }
    const char *v = getenv(env);
    if (v != NULL) {
        return v;
    }
    char *full = ar_asprintf("%s.%s", plugin, key);
    v = named_get(cfg->plugin_settings, cfg->n_plugin_settings, full);
    free(full);
    return v;
}

void ar_config_free(struct ar_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->home);
    free(cfg->recipes_dir);
    free(cfg->plugins_dir);
    free(cfg->file);
    for (size_t i = 0; i < AR_ARRAY_SIZE(settings); i++) {
        if (settings[i].type == SET_STRING) {
            free(*(char **)((char *)cfg + settings[i].offset));
        }
    }
    for (size_t i = 0; i < cfg->n_dbs; i++) {
        free(cfg->dbs[i].name);
        free(cfg->dbs[i].url);
    }
    free(cfg->dbs);
    for (size_t i = 0; i < cfg->n_apis; i++) {
        free(cfg->apis[i].name);
        free(cfg->apis[i].url);
    }
    free(cfg->apis);
    for (size_t i = 0; i < cfg->n_plugin_settings; i++) {
        free(cfg->plugin_settings[i].name);
        free(cfg->plugin_settings[i].url);
    }
    free(cfg->plugin_settings);
    memset(cfg, 0, sizeof(*cfg));
}

void ar_config_print_reference(void)
{
    printf("%-22s %-30s %-16s %s\n", "SETTING", "ENVIRONMENT", "DEFAULT", "MEANING");
    for (size_t i = 0; i < AR_ARRAY_SIZE(settings); i++) {
        printf("%-22s %-30s %-16s %s\n", settings[i].key, settings[i].env,
               settings[i].def ? settings[i].def : "-", settings[i].help);
    }
    printf("%-22s %-30s %-16s %s\n", "db.NAME", "AUTORUN_DB_<NAME>", "-",
           "sqlite:PATH or postgres://... for sql.query(NAME, ...)");
    printf("%-22s %-30s %-16s %s\n", "api.NAME", "<NAME>_API_BASE", "-",
           "API base URL for plugin NAME (e.g. TRELLO_API_BASE)");
    printf("%-22s %-30s %-16s %s\n", "plugin.NAME.KEY", "AUTORUN_PLUGIN_<NAME>_<KEY>", "-",
           "a setting native plugin NAME reads (see docs/plugins.md)");
}
