/* Settings: declared once in a table that drives parsing of autorun.conf, the
 * environment overrides and `autorun help config`. */
#ifndef AR_CORE_CONFIG_H
#define AR_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct ar_named_url {
    char *name; /* owned */
    char *url;  /* owned */
};

struct ar_config {
    /* Locations, from flags or environment (never from the file itself). */
    char *home;        /* owned; state directory */
    char *recipes_dir; /* owned */
    char *plugins_dir; /* owned */
    char *file;        /* owned; the config file that was read, or NULL */

    /* Settings from the table in config.c. */
    char *listen;
    char *mail_url;
    char *mail_from;  /* mail.send's sender when a message names none */
    char *survey_url; /* base URL of the NPS survey links (recipes/nps-survey.js) */
    char *secrets_file;
    char *log_level;
    int64_t run_timeout_ms;
    int64_t heap_limit;
    int64_t max_runs;
    int64_t body_limit;
    int64_t response_limit;
    int64_t retention_ms;
    int64_t parallel_default;
    int64_t http_attempts;          /* tries per request, the first included */
    int64_t http_backoff_ms;        /* first wait between attempts; doubles each time */
    int64_t http_timeout_ms;        /* default timeout of one attempt */
    int64_t http_host_concurrency;  /* requests in flight per host unless limited otherwise */
    char *http_limits;              /* "HOST rate=N/DURATION concurrency=N; ..." */

    struct ar_named_url *dbs; /* owned; db.NAME / AUTORUN_DB_<NAME> */
    size_t n_dbs;
    struct ar_named_url *apis; /* owned; api.NAME / <NAME>_API_BASE */
    size_t n_apis;
    struct ar_named_url *plugin_settings; /* owned; plugin.NAME.KEY ("NAME.KEY" -> value) */
    size_t n_plugin_settings;
};

struct ar_config_locations {
    const char *home;    /* --home, or NULL */
    const char *recipes; /* --recipes, or NULL */
    const char *plugins; /* --plugins, or NULL */
    const char *file;    /* --config, or NULL to search */
};

/* Fills cfg from defaults, the config file and the environment (which wins).
 * On error writes "file:line: what is wrong" into err and returns AR_EINVAL. */
int ar_config_load(struct ar_config *cfg, const struct ar_config_locations *loc, char *err,
                   size_t errlen);
/* Applies one "key = value" setting; used by the file parser and by tests. */
int ar_config_set(struct ar_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen);
void ar_config_free(struct ar_config *cfg);

const char *ar_config_db_url(const struct ar_config *cfg, const char *name);
const char *ar_config_api_base(const struct ar_config *cfg, const char *name);
/* A native plugin's setting: the environment variable AUTORUN_PLUGIN_<NAME>_<KEY> (upper
 * case, '.' and '-' read as '_') wins over plugin.NAME.KEY from the file; NULL if unset. */
const char *ar_config_plugin_setting(const struct ar_config *cfg, const char *plugin,
                                     const char *key);

/* Prints the settings reference (key, environment variable, default, help). */
void ar_config_print_reference(void);

#endif
