/* Recipe validation for `autorun check` and the trigger summary `autorun list` shows. */
#include "internal.h"
#include "js/vm.h"
#include "trigger/cron.h"
#include "trigger/verify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct checker {
    struct ar_engine *e;
    struct ar_recipe *r;
    ar_problem_cb cb;
    void *data;
    char *source; /* owned; for line numbers */
    int problems;
};

static int line_of(const struct checker *c, const char *needle)
{
    const char *hit = c->source && needle && *needle ? strstr(c->source, needle) : NULL;
    int line = 1;
    for (const char *p = c->source; hit && p < hit; p++) {
        line += *p == '\n';
    }
    return line;
}

static void problem(struct checker *c, const char *near, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct checker *c, const char *near, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *line = ar_asprintf("%s:%d: %s", c->r->path, line_of(c, near), msg);
    c->cb(c->data, line);
    free(line);
    c->problems++;
}

/* Reads obj[key] as a string; NULL when absent or not a string. The string stays
 * valid while the decoded triggers are on the stack. */
static const char *get_string(duk_context *ctx, duk_idx_t obj, const char *key, int *present)
{
    duk_get_prop_string(ctx, obj, key);
    *present = !duk_is_undefined(ctx, -1);
    const char *s = duk_is_string(ctx, -1) ? duk_get_string(ctx, -1) : NULL;
    duk_pop(ctx);
    return s;
}

static void check_every(struct checker *c, duk_context *ctx, duk_idx_t t, const char *near,
                        const char *fallback_near)
{
    int present;
    const char *every = get_string(ctx, t, "every", &present);
    int64_t ms;
    if (present && (every == NULL || ar_parse_duration(every, &ms) != 0 || ms < 1000)) {
        problem(c, every ? every : fallback_near, "%s: every: expected a duration of at least 1s",
                near);
    }
}

static void check_cron(struct checker *c, duk_context *ctx, duk_idx_t t, const char *expr)
{
    struct ar_cron cron;
    char err[AR_CRON_ERRMAX];
    int present;
    if (ar_cron_parse(expr, &cron, err, sizeof(err)) != 0) {
        problem(c, expr, "cron '%s': %s", expr, err);
        return;
    }
    const char *tz = get_string(ctx, t, "tz", &present);
    struct ar_tz *zone = NULL;
    if (present && (tz == NULL || ar_tz_load(tz, &zone) != 0)) {
        problem(c, tz ? tz : "tz", "cron '%s': unknown time zone '%s'", expr, tz ? tz : "?");
    } else if (zone == NULL && ar_tz_local(&zone) != 0) {
        zone = NULL;
    }
    int64_t next;
    if (zone && ar_cron_next(&cron, zone, ar_now_ms() / 1000, &next) != 0) {
        problem(c, expr, "cron '%s' never fires", expr);
    }
    ar_tz_destroy(zone);
    const char *missed = get_string(ctx, t, "missed", &present);
    if (present && (missed == NULL || (strcmp(missed, "once") && strcmp(missed, "skip")))) {
        problem(c, "missed", "cron '%s': missed must be 'once' or 'skip'", expr);
    }
}

static void check_secret_name(struct checker *c, const char *name, const char *what)
{
    const char *value;
    char err[512];
    if (ar__engine_secret(c->e, name, &value, err, sizeof(err)) != 0) {
        problem(c, name, "%s: %s", what, err);
    }
}

static void check_webhook(struct checker *c, duk_context *ctx, duk_idx_t t, const char *path)
{
    int present;
    if (path[0] != '/') {
        problem(c, path, "webhook '%s': the path must start with /", path);
    }
    const char *respond = get_string(ctx, t, "respond", &present);
    if (present && (respond == NULL || (strcmp(respond, "accepted") && strcmp(respond, "result")))) {
        problem(c, "respond", "webhook '%s': respond must be 'accepted' or 'result'", path);
    }
    duk_get_prop_string(ctx, t, "verify");
    if (duk_is_object(ctx, -1)) {
        duk_idx_t v = duk_get_top_index(ctx);
        const char *scheme = get_string(ctx, v, "scheme", &present);
        enum ar_verify_scheme s;
        if (scheme == NULL || ar_verify_spec_parse_scheme(scheme, &s) != 0) {
            problem(c, scheme ? scheme : "verify",
                    "webhook '%s': verify.scheme '%s' is not one of github, zendesk, trello, "
                    "helpscout, intercom, stripe, token, basic, hmac",
                    path, scheme ? scheme : "");
        }
        const char *secret = get_string(ctx, v, "secret", &present);
        if (secret == NULL) {
            problem(c, "verify", "webhook '%s': verify.secret must name a secret", path);
        } else {
            check_secret_name(c, secret, "webhook verify.secret");
        }
    } else if (!duk_is_undefined(ctx, -1)) {
        problem(c, "verify", "webhook '%s': verify must be an object {scheme, secret}", path);
    }
    duk_pop(ctx);
}

static void check_trigger(struct checker *c, duk_context *ctx, duk_idx_t t, int index)
{
    int present, kinds = 0;
    char near[32];
    snprintf(near, sizeof(near), "triggers[%d]", index);
    if (!duk_is_object(ctx, t) || duk_is_array(ctx, t)) {
        problem(c, "triggers", "%s must be an object such as {cron: '0 9 * * *'}", near);
        return;
    }
    const char *cron = get_string(ctx, t, "cron", &present);
    kinds += present;
    if (present) {
        if (cron == NULL) {
            problem(c, "cron", "%s: cron must be a string", near);
        } else {
            check_cron(c, ctx, t, cron);
        }
    }
    const char *hook = get_string(ctx, t, "webhook", &present);
    kinds += present;
    if (present) {
        if (hook == NULL) {
            problem(c, "webhook", "%s: webhook must be a path string", near);
        } else {
            check_webhook(c, ctx, t, hook);
        }
    }
    const char *poll = get_string(ctx, t, "poll", &present);
    kinds += present;
    if (present) {
        const char *dot = poll ? strchr(poll, '.') : NULL;
        if (dot == NULL || dot == poll || dot[1] == '\0') {
            problem(c, poll ? poll : "poll", "%s: poll must name 'plugin.function'", near);
        }
        check_every(c, ctx, t, near, "poll");
    }
    duk_get_prop_string(ctx, t, "newRow");
    present = !duk_is_undefined(ctx, -1);
    kinds += present;
    if (present) {
        if (!duk_is_object(ctx, -1)) {
            problem(c, "newRow", "%s: newRow must be {db, table, key}", near);
        } else {
            static const char *const keys[] = {"db", "table", "key"};
            for (size_t k = 0; k < AR_ARRAY_SIZE(keys); k++) {
                int p2;
                if (get_string(ctx, duk_get_top_index(ctx), keys[k], &p2) == NULL) {
                    problem(c, "newRow", "%s: newRow.%s must be a string", near, keys[k]);
                }
            }
        }
        duk_pop(ctx);
        check_every(c, ctx, t, near, "newRow");
    } else {
        duk_pop(ctx);
    }
    if (kinds == 0) {
        problem(c, "triggers", "%s has no cron, webhook, poll or newRow", near);
    } else if (kinds > 1) {
        problem(c, "triggers", "%s has more than one kind; use one trigger object per kind",
                near);
    }
}

static duk_ret_t decode_safe(duk_context *ctx, void *udata)
{
    duk_push_string(ctx, udata);
    duk_json_decode(ctx, -1);
    return 1;
}

int ar_recipe_check(struct ar_engine *e, struct ar_recipe *r, ar_problem_cb cb, void *data)
{
    struct checker c = {.e = e, .r = r, .cb = cb, .data = data};
    ar_read_file(r->path, 4 << 20, &c.source, NULL);
    duk_context *ctx = e->vm->ctx;
    if (duk_safe_call(ctx, decode_safe, r->triggers_json, 0, 1) == DUK_EXEC_SUCCESS) {
        duk_idx_t arr = duk_get_top_index(ctx);
        if (!duk_is_array(ctx, arr)) {
            problem(&c, "triggers", "exports.triggers must be an array of trigger objects");
        } else {
            int n = (int)duk_get_length(ctx, arr);
            for (int i = 0; i < n; i++) {
                duk_get_prop_index(ctx, arr, (duk_uarridx_t)i);
                check_trigger(&c, ctx, duk_get_top_index(ctx), i);
                duk_pop(ctx);
            }
        }
    }
    duk_pop(ctx);
    for (size_t i = 0; i < r->n_secrets; i++) {
        check_secret_name(&c, r->secrets[i], "exports.secrets");
    }
    free(c.source);
    return c.problems;
}

int ar_recipe_summary(struct ar_engine *e, struct ar_recipe *r, struct ar_buf *out,
                      int64_t *next_ms)
{
    duk_context *ctx = e->vm->ctx;
    *next_ms = 0;
    if (duk_safe_call(ctx, decode_safe, r->triggers_json, 0, 1) != DUK_EXEC_SUCCESS ||
        !duk_is_array(ctx, -1)) {
        duk_pop(ctx);
        ar_buf_puts(out, "?");
        return AR_EINVAL;
    }
    int n = (int)duk_get_length(ctx, -1), present;
    for (int i = 0; i < n; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        duk_idx_t t = duk_get_top_index(ctx);
        const char *s;
        if (i) {
            ar_buf_puts(out, ", ");
        }
        if (!duk_is_object(ctx, t)) {
            ar_buf_puts(out, "?");
        } else if ((s = get_string(ctx, t, "cron", &present)) != NULL) {
            const char *tz = get_string(ctx, t, "tz", &present);
            ar_buf_printf(out, "cron %s%s%s", s, tz ? " " : "", tz ? tz : "");
            struct ar_cron cron;
            struct ar_tz *zone = NULL;
            char err[AR_CRON_ERRMAX];
            int64_t next;
            if (ar_cron_parse(s, &cron, err, sizeof(err)) == 0 &&
                (tz ? ar_tz_load(tz, &zone) : ar_tz_local(&zone)) == 0 &&
                ar_cron_next(&cron, zone, ar_now_ms() / 1000, &next) == 0 &&
                (*next_ms == 0 || next * 1000 < *next_ms)) {
                *next_ms = next * 1000;
            }
            ar_tz_destroy(zone);
        } else if ((s = get_string(ctx, t, "webhook", &present)) != NULL) {
            ar_buf_printf(out, "webhook %s", s);
        } else if ((s = get_string(ctx, t, "poll", &present)) != NULL) {
            const char *every = get_string(ctx, t, "every", &present);
            ar_buf_printf(out, "poll %s every %s", s, every ? every : "1m");
        } else {
            duk_get_prop_string(ctx, t, "newRow");
            if (duk_is_object(ctx, -1)) {
                const char *table = get_string(ctx, duk_get_top_index(ctx), "table", &present);
                ar_buf_printf(out, "new row in %s", table ? table : "?");
            } else {
                ar_buf_puts(out, "?");
            }
            duk_pop(ctx);
        }
        duk_pop(ctx);
    }
    duk_pop(ctx);
    if (n == 0) {
        ar_buf_puts(out, "manual");
    }
    return 0;
}
