/* Benchmarks of the core runtime inside one process (not a test):
 *   bench_runs throughput N   N trivial runs, history recorded; prints runs/s
 *   bench_runs suspended N    N runs suspended at once in sleep(); prints bytes per run
 *   bench_runs http N URL     N runs suspended at once in http.get(URL) (a slow local server,
 *                             see bench/suspended_http.sh); prints bytes per run and wall time
 * Each makes its own state and recipes directories under $TMPDIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "js/vm.h"

static struct ar_engine *engine;
static long done_count, failed_count;

static void done_cb(struct ar_run *run, void *data)
{
    done_count++;
    if (run->status != AR_RUN_SUCCEEDED && failed_count++ == 0) {
        fprintf(stderr, "bench: run %lld failed: %s\n", (long long)run->id,
                run->error ? run->error : "?");
    }
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

static void start(const char *recipe)
{
    char err[512];
    struct ar_run_opts opts = {.recipe = recipe, .trigger = "bench"};
    if (ar_run_start(engine, &opts, done_cb, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        exit(2);
    }
}

/* Submits runs in batches, one batch per loop iteration, as a stream of events would. */
struct feeder {
    uv_idle_t idle;
    long left;
    long batch;
};

static void feed_cb(uv_idle_t *h)
{
    struct feeder *f = (struct feeder *)h;
    for (long i = 0; i < f->batch && f->left > 0; i++, f->left--) {
        start("trivial");
    }
    if (f->left == 0) {
        uv_idle_stop(h);
    }
}

int main(int argc, char **argv)
{
    int http_mode = argc == 4 && strcmp(argv[1], "http") == 0;
    if (!http_mode &&
        (argc != 3 || (strcmp(argv[1], "throughput") && strcmp(argv[1], "suspended")))) {
        fprintf(stderr, "usage: bench_runs throughput|suspended N | bench_runs http N URL\n");
        return 2;
    }
    long n = atol(argv[2]);
    char dir[] = "/tmp/ar-bench-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        return 2;
    }
    char *recipes = ar_path_join(dir, "recipes"), *home = ar_path_join(dir, "home");
    ar_mkdir_p(recipes, 0700);
    char *path = ar_path_join(recipes, "trivial.js");
    FILE *f = fopen(path, "w");
    fputs("exports.run = function (event, ctx) { return { ok: true, run: ctx.runId }; };\n", f);
    fclose(f);
    free(path);
    path = ar_path_join(recipes, "waiter.js");
    f = fopen(path, "w");
    fputs("exports.run = function (event, ctx) { sleep(2000); return { ok: true }; };\n", f);
    fclose(f);
    free(path);
    path = ar_path_join(recipes, "slowget.js");
    f = fopen(path, "w");
    fprintf(f,
            "exports.run = function (event, ctx) {\n"
            "    var r = http.get('%s', { timeout: 120000 });\n"
            "    return { status: r.status };\n"
            "};\n",
            http_mode ? argv[3] : "http://127.0.0.1:9/");
    fclose(f);
    free(path);

    struct ar_config cfg;
    struct ar_config_locations loc = {.home = home, .recipes = recipes, .plugins = recipes};
    char err[512];
    if (ar_config_load(&cfg, &loc, err, sizeof(err)) != 0 ||
        ar_engine_create(&cfg, &engine, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    /* Load the recipes before measuring: compiled once, as in the service. */
    struct ar_recipe *r;
    ar_engine_recipe(engine, "trivial", &r, err, sizeof(err));
    ar_engine_recipe(engine, "waiter", &r, err, sizeof(err));
    ar_engine_recipe(engine, "slowget", &r, err, sizeof(err));

    if (strcmp(argv[1], "throughput") == 0) {
        struct feeder fd = {.left = n, .batch = 256};
        uv_idle_init(&engine->loop, &fd.idle);
        uint64_t t0 = uv_hrtime();
        uv_idle_start(&fd.idle, feed_cb);
        ar_engine_run_loop(engine);
        double s = (double)(uv_hrtime() - t0) / 1e9;
        uv_close((uv_handle_t *)&fd.idle, NULL);
        printf("runs=%ld failed=%ld seconds=%.3f runs_per_second=%.0f\n", done_count,
               failed_count, s, (double)done_count / s);
    } else if (http_mode) {
        /* One run first: it loads libcurl and makes the engine's curl handle, which are not
         * per-run costs. */
        start("slowget");
        ar_engine_run_loop(engine);
        long before = rss_kib();
        size_t heap_before = engine->vm->heap_bytes;
        uint64_t t0 = uv_hrtime();
        for (long i = 0; i < n; i++) {
            start("slowget");
        }
        long after = rss_kib();
        size_t heap_after = engine->vm->heap_bytes;
        printf("suspended=%ld rss_delta_kib=%ld bytes_per_run=%.0f js_heap_bytes_per_run=%.0f "
               "start_seconds=%.3f\n",
               (long)engine->runs_active, after - before, (double)(after - before) * 1024.0 / n,
               (double)(heap_after - heap_before) / n, (double)(uv_hrtime() - t0) / 1e9);
        fflush(stdout);
        ar_engine_run_loop(engine);
        double s = (double)(uv_hrtime() - t0) / 1e9;
        printf("completed=%ld failed=%ld wall_seconds=%.3f peak_rss_kib=%ld\n", done_count - 1,
               failed_count, s, peak_kib());
    } else {
        /* Warm up the allocator with one batch so the baseline is not the empty heap. */
        for (int i = 0; i < 100; i++) {
            start("waiter");
        }
        long before = rss_kib();
        size_t heap_before = engine->vm->heap_bytes;
        for (long i = 0; i < n; i++) {
            start("waiter");
        }
        long after = rss_kib();
        size_t heap_after = engine->vm->heap_bytes;
        printf("suspended=%ld rss_delta_kib=%ld bytes_per_run=%.0f js_heap_bytes_per_run=%.0f\n",
               (long)engine->runs_active, after - before, (double)(after - before) * 1024.0 / n,
               (double)(heap_after - heap_before) / n);
        ar_engine_run_loop(engine);
        printf("completed=%ld failed=%ld\n", done_count, failed_count);
    }
    ar_engine_destroy(engine);
    ar_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    free(recipes);
    free(home);
    return system(cmd) == 0 && failed_count == 0 ? 0 : 1;
}
