/* Load target for net/http_server: answers every request 200 "ok", for wrk and friends. */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "core/error.h"
#include "net/http_server.h"

static struct ar_http_server *server;
static uv_signal_t sigint_handle;
static uv_signal_t sigterm_handle;

static void on_request(struct ar_http_req *req, void *arg)
{
    static const struct ar_header h[] = {{"Content-Type", "text/plain"}};

    (void)arg;
    ar_http_respond(req, 200, h, 1, "ok", 2);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct ar_http_stats st;

    (void)signum;
    ar_http_server_stats(server, &st);
    fprintf(stderr, "requests %llu, connections %llu, errors %llu\n",
            (unsigned long long)st.requests, (unsigned long long)st.connections_accepted,
            (unsigned long long)st.errors);
    (void)sig;
    ar_http_server_close(server, NULL);
    uv_close((uv_handle_t *)&sigint_handle, NULL);
    uv_close((uv_handle_t *)&sigterm_handle, NULL);
}

/* Usage: http_server_bench [HOST:PORT]   (default 127.0.0.1:8089), then for example
 *   wrk -t2 -c64 -d10s http://127.0.0.1:8089/
 * and SIGINT or SIGTERM to stop. */
int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8089";
    struct ar_http_handler handler = {.on_request = on_request};
    struct ar_http_settings set;
    uv_loop_t loop;
    int err;

    ar_http_settings_init(&set);
    set.max_connections = 10000;
    uv_loop_init(&loop);
    err = ar_http_server_start(&loop, addr, &set, &handler, &server);
    if (err) {
        fprintf(stderr, "http_server_bench: cannot listen on %s: %s\n", addr, ar_strerror(err));
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    fprintf(stderr, "listening on %s\n", ar_http_server_address(server));
    uv_signal_init(&loop, &sigint_handle);
    uv_signal_init(&loop, &sigterm_handle);
    uv_signal_start_oneshot(&sigint_handle, on_signal, SIGINT);
    uv_signal_start_oneshot(&sigterm_handle, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
