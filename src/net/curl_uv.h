/* libcurl's multi interface driven by a libuv loop: one per engine carries all HTTP and SMTP. */
#ifndef AR_NET_CURL_UV_H
#define AR_NET_CURL_UV_H

#include <stddef.h>

#include <curl/curl.h>
#include <uv.h>

/* One CURLM watched with uv_poll handles and one uv_timer, after curl's docs/examples/multi-uv.c.
 * Every function here must be called on the loop's thread, and never from inside a libcurl
 * callback (CURLOPT_WRITEFUNCTION and friends): curl refuses multi calls from there. */
struct ar_curl_uv;

/* Called exactly once per transfer that was added and not cancelled, from a libuv callback of
 * the loop, after the easy has been removed from the multi handle: the callee owns the easy
 * again and may clean it up, change it and add it again, add other transfers, cancel other
 * transfers or destroy the whole ar_curl_uv. The HTTP status and other details come from
 * curl_easy_getinfo(easy, ...). */
typedef void (*ar_curl_done_cb)(CURL *easy, CURLcode result, void *data);

/* Calls curl_global_init(CURL_GLOBAL_DEFAULT) once per process; later calls return the first
 * result. main() calls it before it starts any thread; ar_curl_uv_create() calls it too, so
 * tests and tools need not. curl_global_cleanup() is left to process exit. */
int ar_curl_global_init(void);

/* Creates the multi handle and its timer on loop. *out is written only on success. */
int ar_curl_uv_create(uv_loop_t *loop, struct ar_curl_uv **out);

/* Limits simultaneous connections to one host (CURLMOPT_MAX_HOST_CONNECTIONS; 0, the default,
 * means no limit). Transfers over the limit wait in curl for a connection to come free. */
int ar_curl_uv_set_max_host_connections(struct ar_curl_uv *cu, long max);

/* Starts a transfer. The easy belongs to cu until cb runs or the transfer is cancelled; in that
 * time the caller must not touch it, and cu uses its CURLOPT_PRIVATE (the caller's value is put
 * back before cb runs). cb never runs from inside this call. Connections are kept in the multi
 * handle's cache and reused by later transfers to the same host. Returns AR_EINVAL if the easy
 * is already in a multi handle or cu is being destroyed. */
int ar_curl_uv_add(struct ar_curl_uv *cu, CURL *easy, ar_curl_done_cb cb, void *data);

/* Stops a transfer at once; its cb is not called and the caller owns the easy again (it may
 * reuse or clean it up right away). Returns AR_ENOENT if the easy is not a transfer of cu. */
int ar_curl_uv_cancel(struct ar_curl_uv *cu, CURL *easy);

/* Cancels every transfer (no cb is called; each caller owns its easy again), closes cached
 * connections and closes the libuv handles asynchronously: run the loop afterwards and it ends
 * with every handle closed, so uv_loop_close() returns 0. Also allowed from inside a done cb.
 * cu must not be used after this call; NULL is a no-op. */
void ar_curl_uv_destroy(struct ar_curl_uv *cu);

/* Number of transfers added and neither done nor cancelled. With none, cu keeps no handle
 * active, so it does not hold the loop open (libcurl 7.88 does not watch idle cached
 * connections). */
size_t ar_curl_uv_active(const struct ar_curl_uv *cu);

#endif
