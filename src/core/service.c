/* `autorun serve`: wires the queue, the webhooks, the scheduler and the HTTP listener to the
 * engine's loop, and handles signals, reloads and maintenance.
 *
 * Everything that changes the service's state (finishing a shutdown, swapping in reloaded
 * recipes) happens in the loop's prepare and check hooks, after the iteration's writes are
 * committed and never inside a run's callbacks. */
#include "core/service.h"
#include "internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "db/history.h"
#include "js/vm.h"
#include "net/http_server.h"
#include "trigger/poller.h"
#include "trigger/scheduler.h"
#include "trigger/webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Editors save in bursts (temporary file, rename, chmod): one reload after the burst. */
#define RELOAD_DEBOUNCE_MS 300
#define MAINTENANCE_FIRST_MS 10000
#define MAINTENANCE_EVERY_MS (3600 * 1000)

struct service {
    struct ar_engine *e;           /* borrowed */
    struct ar_metrics *metrics;    /* owned */
    struct ar_queue *q;            /* owned; freed by its close */
    struct ar_webhooks *hooks;     /* owned */
    struct ar_scheduler *sched;    /* owned */
    struct ar_poller *poller;      /* owned */
    struct ar_http_server *http;   /* owned; freed by its close */
    uv_prepare_t prepare;
    uv_check_t check;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
    uv_fs_event_t watch;
    uv_timer_t debounce;
    uv_timer_t grace;
    uv_timer_t maintenance;
    int watching;
    int64_t grace_ms;
    int64_t started_ms;
    size_t n_recipes;
    size_t n_webhooks;
    size_t n_crons;
    int stopping;
    int stopped;
    int reload_pending;
    int lock_fd;
};

/* ---- recipes ---- */

/* Loads every recipe of the recipes directory into the engine; problems are logged. */
static size_t load_recipes(struct service *s)
{
    char **names;
    size_t n, loaded = 0;
    int rc = ar_engine_recipe_names(s->e, &names, &n);
    if (rc != 0) {
        ar_log_error("service", "%s: %s", s->e->cfg->recipes_dir, ar_strerror(rc));
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct ar_recipe *r;
        char err[1024];
        if (ar_engine_recipe(s->e, names[i], &r, err, sizeof(err)) == 0) {
            loaded++;
        } else {
            ar_log_error("service", "%s; its triggers are off until it loads", err);
        }
    }
    ar_names_free(names, n);
    return loaded;
}

static void load_triggers(struct service *s)
{
    s->n_webhooks = ar_webhooks_load(s->hooks);
    s->n_crons = ar_scheduler_load(s->sched);
    ar_poller_load(s->poller);
}

/* The swap: no run is active, so the old VM (and the recipes compiled into it) can go. */
static void reload_now(struct service *s)
{
    struct ar_engine *e = s->e;
    struct ar_vm *vm;
    char err[1024];
    s->reload_pending = 0;
    if (ar__vm_create(e, &vm, err, sizeof(err)) != 0) {
        ar_log_error("service", "reload failed, keeping the recipes loaded before: %s", err);
        ar_queue_pause(s->q, 0);
        return;
    }
    struct ar_vm *old = e->vm;
    e->vm = vm;
    ar__vm_destroy(old);
    /* The secrets file is read again too: rotating a secret is a reason to reload. */
    ar__engine_forget_recipes(e);

    s->n_recipes = load_recipes(s);
    load_triggers(s);
    ar_queue_unblock(s->q);
    ar_queue_pause(s->q, 0);
    ar_log_info("service", "reloaded: %zu recipe(s), %zu webhook(s), %zu cron schedule(s), "
                           "%lld queued run(s)",
                s->n_recipes, s->n_webhooks, s->n_crons, (long long)ar_queue_depth(s->q));
}

static void request_reload(struct service *s, const char *why)
{
    if (s->stopping || s->reload_pending) {
        return;
    }
    s->reload_pending = 1;
    ar_queue_pause(s->q, 1);
    if (s->e->runs_active > 0) {
        ar_log_info("service", "reloading recipes (%s) once %lld running run(s) finish; new "
                               "events are queued meanwhile",
                    why, (long long)s->e->runs_active);
    } else {
        ar_log_info("service", "reloading recipes (%s)", why);
    }
}

static void debounce_cb(uv_timer_t *t)
{
    struct service *s = ar_container_of(t, struct service, debounce);
    request_reload(s, "the recipes directory changed");
}

static void watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct service *s = ar_container_of(h, struct service, watch);
    if (status < 0) {
        return;
    }
    /* Recipes and their modules are .js files; editor swap files and ctx.file() texts are not
     * worth a reload. */
    size_t n = filename ? strlen(filename) : 0;
    if (filename && (n < 3 || strcmp(filename + n - 3, ".js") != 0 || filename[0] == '.')) {
        return;
    }
    uv_timer_start(&s->debounce, debounce_cb, RELOAD_DEBOUNCE_MS, 0);
}

/* ---- shutdown ---- */

static void close_if(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* Closes everything the service opened; the loop then ends by itself. */
static void close_all(struct service *s)
{
    if (s->stopped) {
        return;
    }
    s->stopped = 1;
    if (s->hooks) {
        ar_webhooks_destroy(s->hooks);
        s->hooks = NULL;
    }
    if (s->http) {
        ar_http_server_close(s->http, NULL);
        s->http = NULL;
    }
    ar_scheduler_destroy(s->sched);
    s->sched = NULL;
    ar_poller_destroy(s->poller);
    s->poller = NULL;
    if (s->q) {
        ar_queue_close(s->q);
        s->q = NULL;
    }
    close_if((uv_handle_t *)&s->prepare);
    close_if((uv_handle_t *)&s->check);
    close_if((uv_handle_t *)&s->sigterm);
    close_if((uv_handle_t *)&s->sigint);
    close_if((uv_handle_t *)&s->sighup);
    if (s->watching) {
        close_if((uv_handle_t *)&s->watch);
    }
    close_if((uv_handle_t *)&s->debounce);
    close_if((uv_handle_t *)&s->grace);
    close_if((uv_handle_t *)&s->maintenance);
}

static void interrupt_runs(struct service *s, const char *why)
{
    struct ar_engine *e = s->e;
    while (e->runs.next != &e->runs) {
        struct ar_run *run = e->runs.next;
        run->status = AR_RUN_INTERRUPTED;
        ar__run_abort(run, why);
    }
}

static void grace_cb(uv_timer_t *t)
{
    struct service *s = ar_container_of(t, struct service, grace);
    char limit[32];
    ar_format_duration(s->grace_ms, limit, sizeof(limit));
    ar_log_warn("service", "grace period (%s) over: interrupting %lld run(s)", limit,
                (long long)s->e->runs_active);
    interrupt_runs(s, "Error: autorun stopped before the run finished (the grace period ended)");
}

static void begin_stop(struct service *s, int signum)
{
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (s->stopping) {
        ar_log_warn("service", "%s again: interrupting %lld run(s) now", name,
                    (long long)s->e->runs_active);
        uv_timer_stop(&s->grace);
        interrupt_runs(s, "Error: autorun stopped before the run finished (second signal)");
        return;
    }
    s->stopping = 1;
    s->reload_pending = 0;
    /* Answers already earned go out first; from now on new requests get 503. */
    ar_webhooks_flush(s->hooks);
    ar_webhooks_stop(s->hooks);
    ar_queue_pause(s->q, 1);
    ar_scheduler_destroy(s->sched);
    s->sched = NULL;
    ar_poller_destroy(s->poller);
    s->poller = NULL;
    if (s->watching) {
        uv_fs_event_stop(&s->watch);
    }
    uv_timer_stop(&s->debounce);
    uv_timer_stop(&s->maintenance);
    char limit[32];
    ar_format_duration(s->grace_ms, limit, sizeof(limit));
    ar_log_info("service", "%s: stopping; %lld run(s) active get up to %s to finish, %lld "
                           "queued run(s) wait for the next start",
                name, (long long)s->e->runs_active, limit, (long long)ar_queue_depth(s->q));
    if (s->e->runs_active > 0) {
        uv_timer_start(&s->grace, grace_cb, (uint64_t)s->grace_ms, 0);
    }
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct service *s = h->data;
    if (signum == SIGHUP) {
        request_reload(s, "SIGHUP");
    } else {
        begin_stop(s, signum);
    }
}

/* ---- the loop's hooks ---- */

static void tick(struct service *s)
{
    if (s->stopped) {
        return;
    }
    ar_webhooks_flush(s->hooks);
    if (s->e->runs_active > 0) {
        return;
    }
    if (s->stopping) {
        ar_log_info("service", "stopped");
        close_all(s);
    } else if (s->reload_pending) {
        reload_now(s);
    }
}

static void prepare_cb(uv_prepare_t *h)
{
    tick(ar_container_of(h, struct service, prepare));
}

static void check_cb(uv_check_t *h)
{
    tick(ar_container_of(h, struct service, check));
}

static void maintenance_cb(uv_timer_t *t)
{
    struct service *s = ar_container_of(t, struct service, maintenance);
    struct ar_history *h = s->e->history;
    int64_t now = ar_now_ms(), n = 0;
    if (ar_history_delivery_prune(h, now, &n) == 0 && n > 0) {
        ar_log_info("service", "forgot %lld expired delivery id(s)", (long long)n);
    }
    if (s->e->cfg->retention_ms > 0 &&
        ar_history_prune(h, now - s->e->cfg->retention_ms, &n) == 0 && n > 0) {
        ar_log_info("service", "pruned %lld run(s) older than the retention", (long long)n);
    }
}

/* ---- HTTP ---- */

static void respond(struct service *s, struct ar_http_req *req, int status, const char *type,
                    const char *body, size_t len)
{
    struct ar_header hdrs[2] = {{"Content-Type", type}, {"Cache-Control", "no-store"}};
    ar_metrics_response(s->metrics, status);
    if (ar_http_respond(req, status, hdrs, 2, body, len) == AR_ENOMEM) {
        ar_http_respond(req, 500, NULL, 0, NULL, 0);
    }
}

static void healthz(struct service *s, struct ar_http_req *req)
{
    struct ar_buf b = {0};
    ar_buf_printf(&b,
                  "{\"status\":\"%s\",\"queueDepth\":%lld,\"runsActive\":%lld,\"recipes\":%zu,"
                  "\"webhooks\":%zu,\"cronTriggers\":%zu,\"uptimeSeconds\":%lld,"
                  "\"version\":\"%s\"}\n",
                  s->stopping ? "stopping" : "ok", (long long)ar_queue_depth(s->q),
                  (long long)s->e->runs_active, s->n_recipes, s->n_webhooks, s->n_crons,
                  (long long)((ar_now_ms() - s->started_ms) / 1000), AR_VERSION);
    respond(s, req, s->stopping ? 503 : 200, "application/json", b.data, b.len);
    ar_buf_free(&b);
}

static void metrics(struct service *s, struct ar_http_req *req)
{
    struct ar_http_stats st = {0};
    if (s->http) {
        ar_http_server_stats(s->http, &st);
    }
    struct ar_metrics_gauges g = {
        .queue_depth = ar_queue_depth(s->q),
        .runs_active = s->e->runs_active,
        .webhooks = (int64_t)s->n_webhooks,
        .cron_triggers = (int64_t)s->n_crons,
        .http_connections_open = st.connections_open,
        .http_requests = st.requests,
        .http_server_errors = st.errors,
        .http_timeouts = st.timeouts,
        .started_at_ms = s->started_ms,
    };
    struct ar_buf b = {0};
    ar_metrics_render(s->metrics, &g, &b);
    respond(s, req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    ar_buf_free(&b);
}

static void request_cb(struct ar_http_req *req, void *arg)
{
    struct service *s = arg;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (get && strcmp(req->path, "/healthz") == 0) {
        healthz(s, req);
    } else if (get && strcmp(req->path, "/metrics") == 0) {
        metrics(s, req);
    } else if (s->hooks) {
        ar_webhooks_handle(s->hooks, req);
    } else {
        respond(s, req, 503, "application/json", "{\"error\":\"stopping\"}", 20);
    }
}

static void abort_cb(struct ar_http_req *req, void *arg)
{
    struct service *s = arg;
    if (s->hooks) {
        ar_webhooks_abort(s->hooks, req);
    }
}

/* ---- start ---- */

/* One service per state directory: two would each take the other's running runs for dead. */
static int lock_home(struct service *s)
{
    char *path = ar_path_join(s->e->cfg->home, "serve.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        ar_log_error("service", "%s: %s", path, strerror(errno));
        rc = AR_EIO;
    } else {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            fprintf(stderr, "autorun: another autorun serve is already using %s\n",
                    s->e->cfg->home);
            close(fd);
            fd = -1;
            rc = AR_EEXIST;
        } else {
            char pid[32];
            int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
                /* Only informational. */
            }
        }
    }
    free(path);
    s->lock_fd = fd;
    return rc;
}

int ar_service_run(struct ar_engine *e, const struct ar_service_opts *opts)
{
    struct service svc = {0}, *s = &svc;
    s->e = e;
    s->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : AR_SERVICE_GRACE_MS;
    s->started_ms = ar_now_ms();
    s->lock_fd = -1;
    e->echo_logs = 0;
    e->progress = 0;
    enum ar_log_level level;
    if (e->cfg->log_level && ar_log_parse_level(e->cfg->log_level, &level) == 0) {
        ar_log_set_level(level);
    }
    if (lock_home(s) != 0) {
        return 2;
    }
    if (ar_history_set_durable(e->history, 1) != 0) {
        ar_log_warn("service", "history.db: cannot turn on synchronous=FULL: %s",
                    ar_history_errmsg(e->history));
    }

    s->metrics = ar_metrics_create();
    ar_queue_create(e, s->metrics, &s->q);
    ar_webhooks_create(e, s->q, s->metrics, &s->hooks);
    ar_scheduler_create(e, s->q, &s->sched);
    ar_poller_create(e, s->q, &s->poller);
    s->n_recipes = load_recipes(s);

    /* Listen first: a second instance or a port in use fails before anything is changed. */
    const char *addr = opts->listen ? opts->listen : e->cfg->listen;
    struct ar_http_settings hs;
    ar_http_settings_init(&hs);
    if (e->cfg->body_limit > 0) {
        hs.max_body_bytes = (size_t)e->cfg->body_limit;
    }
    struct ar_http_handler handler = {.on_request = request_cb, .on_abort = abort_cb, .arg = s};
    int rc = ar_http_server_start(&e->loop, addr, &hs, &handler, &s->http);
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "autorun: serve: cannot listen on %s: %s\n", addr, ar_strerror(rc));
        status = 2;
        goto out;
    }
    int64_t interrupted = 0, queued = 0;
    rc = ar_queue_recover(s->q, &interrupted, &queued);
    if (rc != 0) {
        fprintf(stderr, "autorun: serve: history.db: cannot read the queue: %s\n",
                ar_history_errmsg(e->history));
        status = 2;
        goto out;
    }
    load_triggers(s);

    uv_prepare_init(&e->loop, &s->prepare);
    uv_check_init(&e->loop, &s->check);
    /* Started after the engine's own commit hooks, so these run first in each phase (libuv
     * runs the newest first): the commit that acknowledges webhooks is the one checked here. */
    uv_prepare_start(&s->prepare, prepare_cb);
    uv_check_start(&s->check, check_cb);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_unref((uv_handle_t *)&s->check);
    uv_signal_init(&e->loop, &s->sigterm);
    uv_signal_init(&e->loop, &s->sigint);
    uv_signal_init(&e->loop, &s->sighup);
    s->sigterm.data = s->sigint.data = s->sighup.data = s;
    uv_signal_start(&s->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&s->sigint, signal_cb, SIGINT);
    uv_signal_start(&s->sighup, signal_cb, SIGHUP);
    uv_timer_init(&e->loop, &s->debounce);
    uv_timer_init(&e->loop, &s->grace);
    uv_timer_init(&e->loop, &s->maintenance);
    uv_timer_start(&s->maintenance, maintenance_cb, MAINTENANCE_FIRST_MS, MAINTENANCE_EVERY_MS);
    if (uv_fs_event_init(&e->loop, &s->watch) == 0) {
        s->watching = 1;
        if ((rc = uv_fs_event_start(&s->watch, watch_cb, e->cfg->recipes_dir, 0)) != 0) {
            ar_log_warn("service", "%s: changes are not watched (%s); use SIGHUP to reload",
                        e->cfg->recipes_dir, uv_strerror(rc));
        }
    }

    ar_log_info("service", "autorun %s serving on http://%s (pid %ld): %zu recipe(s), %zu "
                           "webhook(s), %zu cron schedule(s), %lld queued run(s), %lld "
                           "interrupted run(s) found",
                AR_VERSION, ar_http_server_address(s->http), (long)getpid(), s->n_recipes,
                s->n_webhooks, s->n_crons, (long long)queued, (long long)interrupted);
    ar_log_batch(1);
    ar_engine_run_loop(e);

out:
    close_all(s);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ar_log_batch(0);
    ar_metrics_destroy(s->metrics);
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    return status;
}
