/* Mail delivery for mail.send: SMTP through libcurl on a sender thread, or the file outbox.
 *
 * libcurl's SMTP waits for the server's reply to the end of a message's data synchronously, in
 * its DONE phase (curl's TODO "More non-blocking"; curl issue #8555), also when driven by a
 * multi handle. On the engine's loop every message would stall every run for that round trip,
 * and for as long as a slow server takes (seconds, when it scans content). So SMTP transfers
 * run on a thread of their own with its own libuv loop and multi handle (whose connection
 * cache reuses connections across messages); the engine's loop only hands messages over and
 * receives results. */
#include "net/smtp.h"
#include "net/curl_uv.h"
#include "core/error.h"
#include "core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A server that stops answering must not hold a message (and its run) until the run's
 * timeout: after this long without a reply the transfer fails. */
#define SMTP_RESPONSE_TIMEOUT_S 60L
#define SMTP_CONNECT_TIMEOUT_MS 30000L
#define REPLY_MAX 512

enum delivery_kind { DELIVER_SMTP, DELIVER_FILE };

/* Where an SMTP delivery is; changed only with the sender's lock held. */
enum delivery_state {
    D_QUEUED,     /* in sender->inbox, not seen by the thread yet */
    D_ACTIVE,     /* the thread transfers it */
    D_DONE,       /* in sender->done, waiting for the engine's loop */
    D_REPORTING,  /* taken by the engine's loop, whose callbacks may still cancel it */
    D_CANCELLING, /* in sender->cancels: the thread stops and frees it */
};

struct ar_mail_delivery {
    enum delivery_kind kind;
    ar_mail_done_cb cb;
    void *data;
    char *data_buf; /* owned: the message */
    size_t len;
    char *shown; /* owned: transport, for errors */

    /* SMTP: the easy handle is set up on the engine's loop, then used by the sender thread. */
    struct ar_mail_sender *sender; /* borrowed */
    enum delivery_state state;
    struct ar_mail_delivery *next;        /* in inbox, cancels or done */
    struct ar_mail_delivery *active_prev; /* the thread's list of transfers */
    struct ar_mail_delivery *active_next;
    int finished;            /* the transfer ended (thread only) */
    int dropped;             /* D_REPORTING: cancelled before its result was reported */
    CURL *easy;              /* owned */
    struct curl_slist *rcpt; /* owned */
    size_t off;              /* bytes of the message handed to curl */
    char errbuf[CURL_ERROR_SIZE];
    char reply[REPLY_MAX];   /* the server's last reply line */
    char refusal[REPLY_MAX]; /* its first 4xx/5xx reply line: what went wrong */
    int rc;
    long code;
    char error[CURL_ERROR_SIZE + REPLY_MAX + 256];

    /* File */
    uv_work_t work;
    char *dir;  /* owned */
    char *tmp;  /* owned: where the file is written first */
    char *path; /* owned: the final file name */
    int cancelled;
    int file_rc;
    char file_err[256];
};

/* Wakes the engine's loop when results are ready. It exists only while SMTP deliveries are
 * pending, so it never holds the loop open (or outlives it) when no mail is in flight. */
struct notify {
    uv_async_t async;
    struct ar_mail_sender *sender; /* borrowed */
};

struct ar_mail_sender {
    uv_loop_t *main_loop;   /* borrowed: callbacks run there */
    struct notify *notify;  /* engine's loop only; NULL when nothing is pending */
    size_t pending;         /* engine's loop only: deliveries not yet reported or cancelled */

    uv_thread_t thread;
    int thread_started;
    uv_mutex_t lock;
    /* Guarded by lock. */
    struct ar_mail_delivery *inbox; /* FIFO */
    struct ar_mail_delivery *inbox_tail;
    struct ar_mail_delivery *cancels;
    struct ar_mail_delivery *done; /* FIFO */
    struct ar_mail_delivery *done_tail;
    uv_async_t *notify_async; /* what the thread signals, or NULL */
    int stop;

    /* The sender thread only (after it started). */
    uv_loop_t loop;
    uv_async_t wake;
    struct ar_curl_uv *cu; /* owned */
    struct ar_mail_delivery *active;
};

/* ---- Transport URLs ---- */

static int failf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Reads one option of the query string into t. */
static int apply_option(struct ar_mail_transport *t, const char *key, const char *value,
                        char *err, size_t errlen)
{
    if (strcmp(key, "starttls") == 0) {
        if (strcasecmp(value, "required") == 0 || strcasecmp(value, "yes") == 0 ||
            strcmp(value, "1") == 0) {
            t->use_ssl = CURLUSESSL_ALL;
        } else if (strcasecmp(value, "try") == 0) {
            t->use_ssl = CURLUSESSL_TRY;
        } else if (strcasecmp(value, "no") == 0 || strcmp(value, "0") == 0) {
            t->use_ssl = CURLUSESSL_NONE;
        } else {
            return failf(err, errlen, AR_EINVAL,
                         "mail.url: starttls=%s: use required, try or no", value);
        }
        return 0;
    }
    if (strcmp(key, "insecure") == 0) {
        if (strcmp(value, "1") != 0 && strcmp(value, "0") != 0) {
            return failf(err, errlen, AR_EINVAL, "mail.url: insecure=%s: use 1 or 0", value);
        }
        t->insecure = value[0] == '1';
        return 0;
    }
    if (strcmp(key, "cacert") == 0) {
        if (value[0] == '\0') {
            return failf(err, errlen, AR_EINVAL, "mail.url: cacert needs a file name");
        }
        free(t->cacert);
        t->cacert = ar_strdup(value);
        return 0;
    }
    return failf(err, errlen, AR_EINVAL,
                 "mail.url: unknown option '%s' (known: starttls, insecure, cacert)", key);
}

static int parse_query(struct ar_mail_transport *t, const char *query, char *err, size_t errlen)
{
    char *copy = ar_strdup(query);
    char *save = NULL;
    int rc = 0;
    for (char *kv = strtok_r(copy, "&", &save); kv != NULL && rc == 0;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        const char *raw = "";
        if (eq != NULL) {
            *eq = '\0';
            raw = eq + 1;
        }
        char *value = curl_easy_unescape(NULL, raw, 0, NULL);
        if (value == NULL) {
            rc = failf(err, errlen, AR_ENOMEM, "out of memory");
            break;
        }
        rc = apply_option(t, kv, value, err, errlen);
        curl_free(value);
    }
    free(copy);
    return rc;
}

/* Copies a part of the URL, or NULL when it is absent. */
static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK || v == NULL) {
        return NULL;
    }
    char *copy = ar_strdup(v);
    curl_free(v);
    return copy;
}

static int parse_smtp(const char *url, struct ar_mail_transport *t, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *query = NULL;
    int rc = 0;
    if (u == NULL) {
        return failf(err, errlen, AR_ENOMEM, "out of memory");
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = failf(err, errlen, AR_EINVAL, "mail.url: not a valid URL");
        goto out;
    }
    scheme = url_part(u, CURLUPART_SCHEME, 0);
    if (scheme == NULL || (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)) {
        rc = failf(err, errlen, AR_EINVAL,
                   "mail.url: use smtp://host:port, smtps://host:port or file:DIR");
        goto out;
    }
    t->kind = AR_MAIL_SMTP;
    t->user = url_part(u, CURLUPART_USER, CURLU_URLDECODE);
    t->pass = url_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
    query = url_part(u, CURLUPART_QUERY, 0);
    if (query != NULL && (rc = parse_query(t, query, err, errlen)) != 0) {
        goto out;
    }
    if (t->use_ssl != CURLUSESSL_NONE && strcmp(scheme, "smtps") == 0) {
        rc = failf(err, errlen, AR_EINVAL,
                   "mail.url: starttls applies to smtp://; smtps:// is TLS from the start");
        goto out;
    }
    /* What curl sees and what history shows carry neither credentials nor our options. */
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    t->url = url_part(u, CURLUPART_URL, 0);
    if (t->url == NULL) {
        rc = failf(err, errlen, AR_EINVAL, "mail.url: not a valid URL");
        goto out;
    }
    /* curl writes "smtp://host:25/" for an empty path; the slash says nothing. */
    size_t ul = strlen(t->url);
    if (ul > 3 && t->url[ul - 1] == '/' && t->url[ul - 2] != '/') {
        t->url[ul - 1] = '\0';
    }
    t->shown = ar_strdup(t->url);
out:
    free(scheme);
    free(query);
    curl_url_cleanup(u);
    return rc;
}

int ar_mail_transport_parse(const char *url, struct ar_mail_transport *out, char *err,
                            size_t errlen)
{
    struct ar_mail_transport t;
    memset(&t, 0, sizeof(t));
    t.use_ssl = CURLUSESSL_NONE;
    if (url == NULL || url[0] == '\0') {
        return failf(err, errlen, AR_EINVAL, "mail.url is empty");
    }
    if (strncmp(url, "file:", 5) == 0) {
        const char *dir = url + 5;
        if (strncmp(dir, "//", 2) == 0) {
            dir += 2;
        }
        if (dir[0] == '\0') {
            return failf(err, errlen, AR_EINVAL, "mail.url: file: needs a directory");
        }
        t.kind = AR_MAIL_FILE;
        t.dir = ar_strdup(dir);
        t.shown = ar_asprintf("file:%s", dir);
        *out = t;
        return 0;
    }
    int rc = ar_curl_global_init();
    if (rc == 0) {
        rc = parse_smtp(url, &t, err, errlen);
    }
    if (rc != 0) {
        ar_mail_transport_free(&t);
        return rc;
    }
    *out = t;
    return 0;
}

void ar_mail_transport_free(struct ar_mail_transport *t)
{
    if (t == NULL) {
        return;
    }
    free(t->url);
    free(t->shown);
    free(t->dir);
    free(t->user);
    free(t->pass);
    free(t->cacert);
    memset(t, 0, sizeof(*t));
}

/* ---- Deliveries ---- */

static void delivery_free(struct ar_mail_delivery *d)
{
    if (d->easy != NULL) {
        curl_easy_cleanup(d->easy);
    }
    curl_slist_free_all(d->rcpt);
    free(d->data_buf);
    free(d->shown);
    free(d->dir);
    free(d->tmp);
    free(d->path);
    free(d);
}

static size_t smtp_read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct ar_mail_delivery *d = userp;
    size_t n = d->len - d->off;
    if (n > size * nitems) {
        n = size * nitems;
    }
    memcpy(buf, d->data_buf + d->off, n);
    d->off += n;
    return n;
}

/* Keeps the server's last reply line and its first refusal: curl's own error text has only
 * the code, and after a refusal curl says QUIT, whose "221 Bye" would hide the reason. */
static int smtp_debug_cb(CURL *easy, curl_infotype type, char *text, size_t n, void *userp)
{
    struct ar_mail_delivery *d = userp;
    (void)easy;
    if (type != CURLINFO_HEADER_IN) {
        return 0;
    }
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n')) {
        n--;
    }
    /* A multi-line reply arrives line by line; the last one wins. */
    if (n >= sizeof(d->reply)) {
        n = sizeof(d->reply) - 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        d->reply[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    d->reply[n] = '\0';
    if (d->refusal[0] == '\0' && (d->reply[0] == '4' || d->reply[0] == '5')) {
        memcpy(d->refusal, d->reply, n + 1);
    }
    return 0;
}

/* Sets up the transfer on the engine's loop: curl copies every string option, so the thread
 * needs nothing but the easy handle and the message. */
static int smtp_setup(struct ar_mail_delivery *d, const struct ar_mail_transport *t,
                      const struct ar_mail_envelope *env)
{
    char addr[600];
    d->easy = curl_easy_init();
    if (d->easy == NULL) {
        return AR_ENOMEM;
    }
    for (size_t i = 0; i < env->rcpt_count; i++) {
        snprintf(addr, sizeof(addr), "<%s>", env->rcpt[i]);
        struct curl_slist *l = curl_slist_append(d->rcpt, addr);
        if (l == NULL) {
            return AR_ENOMEM;
        }
        d->rcpt = l;
    }
    snprintf(addr, sizeof(addr), "<%s>", env->from);
    CURL *e = d->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, addr);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, d->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, smtp_read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, d);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->len);
    /* SMTP replies are short and most messages are small: curl's default buffers (16 KiB in,
     * 64 KiB out, allocated for every transfer) would cost more than the message. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, SMTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, SMTP_RESPONSE_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, d);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_USE_SSL, t->use_ssl);
    if (t->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->cacert != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, t->cacert);
    }
    const char *user = t->user ? t->user : env->user;
    const char *pass = t->user ? t->pass : env->pass;
    if (user != NULL) {
        curl_easy_setopt(e, CURLOPT_USERNAME, user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, pass ? pass : "");
    }
    return 0;
}

/* ---- The sender thread ---- */

static void active_add(struct ar_mail_sender *s, struct ar_mail_delivery *d)
{
    d->active_prev = NULL;
    d->active_next = s->active;
    if (s->active != NULL) {
        s->active->active_prev = d;
    }
    s->active = d;
}

static void active_remove(struct ar_mail_sender *s, struct ar_mail_delivery *d)
{
    if (d->active_prev != NULL) {
        d->active_prev->active_next = d->active_next;
    } else if (s->active == d) {
        s->active = d->active_next;
    }
    if (d->active_next != NULL) {
        d->active_next->active_prev = d->active_prev;
    }
    d->active_prev = d->active_next = NULL;
}

/* Turns curl's outcome into the delivery's result (thread only). */
static void smtp_result(struct ar_mail_delivery *d, CURLcode result)
{
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->code);
    if (result == CURLE_OK) {
        d->rc = 0;
        return;
    }
    const char *why = d->errbuf[0] ? d->errbuf : curl_easy_strerror(result);
    if (d->refusal[0] && result != CURLE_COULDNT_CONNECT &&
        result != CURLE_COULDNT_RESOLVE_HOST && result != CURLE_OPERATION_TIMEDOUT) {
        snprintf(d->error, sizeof(d->error), "%s: %s (server said: %s)", d->shown, why,
                 d->refusal);
        d->code = strtol(d->refusal, NULL, 10);
    } else {
        snprintf(d->error, sizeof(d->error), "%s: %s", d->shown, why);
    }
    d->rc = result == CURLE_OPERATION_TIMEDOUT ? AR_ETIMEDOUT : AR_EIO;
}

/* Hands a finished delivery to the engine's loop (thread only). */
static void post_done(struct ar_mail_sender *s, struct ar_mail_delivery *d)
{
    int free_now = 0;
    uv_mutex_lock(&s->lock);
    if (d->state == D_CANCELLING) {
        /* The cancel request is on its way: the thread frees it when it reads it. */
        d->finished = 1;
    } else if (d->state == D_ACTIVE) {
        d->state = D_DONE;
        d->next = NULL;
        if (s->done_tail != NULL) {
            s->done_tail->next = d;
        } else {
            s->done = d;
        }
        s->done_tail = d;
        if (s->notify_async != NULL) {
            uv_async_send(s->notify_async);
        }
    } else {
        free_now = 1; /* cannot happen: a delivery the engine no longer knows */
    }
    uv_mutex_unlock(&s->lock);
    if (free_now) {
        delivery_free(d);
    }
}

static void thread_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct ar_mail_delivery *d = data;
    (void)easy;
    active_remove(d->sender, d);
    smtp_result(d, result);
    d->finished = 1;
    post_done(d->sender, d);
}

/* Stops a transfer on the thread. curl's DONE phase would otherwise wait for the server's
 * reply (and may send the end of the data); a timeout of 1 ms makes it give up at once. */
static void thread_stop_transfer(struct ar_mail_sender *s, struct ar_mail_delivery *d)
{
    if (!d->finished) {
        active_remove(s, d);
        curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, 1L);
        ar_curl_uv_cancel(s->cu, d->easy);
    }
    delivery_free(d);
}

static void thread_wake_cb(uv_async_t *a)
{
    struct ar_mail_sender *s = ar_container_of(a, struct ar_mail_sender, wake);
    uv_mutex_lock(&s->lock);
    struct ar_mail_delivery *in = s->inbox, *cancels = s->cancels;
    int stop = s->stop;
    s->inbox = s->inbox_tail = NULL;
    s->cancels = NULL;
    for (struct ar_mail_delivery *d = in; d != NULL; d = d->next) {
        d->state = D_ACTIVE;
    }
    uv_mutex_unlock(&s->lock);

    while (cancels != NULL) {
        struct ar_mail_delivery *d = cancels;
        cancels = d->next;
        thread_stop_transfer(s, d);
    }
    while (in != NULL) {
        struct ar_mail_delivery *d = in;
        in = d->next;
        if (stop) {
            d->finished = 1;
            thread_stop_transfer(s, d);
            continue;
        }
        active_add(s, d);
        int rc = ar_curl_uv_add(s->cu, d->easy, thread_done_cb, d);
        if (rc != 0) {
            active_remove(s, d);
            d->rc = rc;
            snprintf(d->error, sizeof(d->error), "%s: cannot start the transfer: %s", d->shown,
                     ar_strerror(rc));
            d->finished = 1;
            post_done(s, d);
        }
    }
    if (stop) {
        while (s->active != NULL) {
            thread_stop_transfer(s, s->active);
        }
        /* This also says QUIT on the cached connections. */
        ar_curl_uv_destroy(s->cu);
        s->cu = NULL;
        uv_close((uv_handle_t *)&s->wake, NULL);
    }
}

static void thread_main(void *arg)
{
    struct ar_mail_sender *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* The notify handle's memory is released when libuv is done with it. */
static void notify_close_cb(uv_handle_t *h)
{
    free(ar_container_of((uv_async_t *)h, struct notify, async));
}

/* Engine's loop: closes the notify handle once nothing is pending, so an idle sender holds no
 * handle of the engine's loop. */
static void notify_release(struct ar_mail_sender *s)
{
    if (s->pending > 0 || s->notify == NULL) {
        return;
    }
    struct notify *n = s->notify;
    s->notify = NULL;
    uv_mutex_lock(&s->lock);
    s->notify_async = NULL;
    uv_mutex_unlock(&s->lock);
    uv_close((uv_handle_t *)&n->async, notify_close_cb);
}

static void notify_cb(uv_async_t *a)
{
    struct notify *n = ar_container_of(a, struct notify, async);
    struct ar_mail_sender *s = n->sender;
    uv_mutex_lock(&s->lock);
    struct ar_mail_delivery *list = s->done;
    s->done = s->done_tail = NULL;
    for (struct ar_mail_delivery *d = list; d != NULL; d = d->next) {
        d->state = D_REPORTING;
    }
    uv_mutex_unlock(&s->lock);
    while (list != NULL) {
        struct ar_mail_delivery *d = list;
        list = d->next;
        /* An earlier callback (ending a run) may have cancelled this one. */
        if (!d->dropped) {
            struct ar_mail_result r = {
                .rc = d->rc,
                .smtp_code = d->code,
                .reply = d->rc != 0 && d->refusal[0] ? d->refusal : d->reply,
                .error = d->rc != 0 ? d->error : "",
                .path = "",
            };
            s->pending--;
            d->cb(d->data, &r);
        }
        delivery_free(d);
    }
    notify_release(s);
}

static int notify_acquire(struct ar_mail_sender *s)
{
    if (s->notify != NULL) {
        return 0;
    }
    struct notify *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return AR_ENOMEM;
    }
    n->sender = s;
    int rc = uv_async_init(s->main_loop, &n->async, notify_cb);
    if (rc != 0) {
        free(n);
        return rc;
    }
    s->notify = n;
    uv_mutex_lock(&s->lock);
    s->notify_async = &n->async;
    uv_mutex_unlock(&s->lock);
    return 0;
}

/* libcurl is opened on first use through shims that look each function up the first time it
 * is called (core/dynlib.h). Calling here, on the engine's thread, the ones the sender thread
 * uses keeps those lookups off the thread. */
static void resolve_curl(struct ar_curl_uv *cu)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return;
    }
    char *priv = NULL;
    long code = 0;
    struct curl_slist *l = curl_slist_append(NULL, "<x@example.com>");
    curl_slist_free_all(l);
    curl_easy_setopt(e, CURLOPT_URL, "smtp://127.0.0.1:1");
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    (void)curl_easy_strerror(CURLE_OK);
    /* Added and removed before the loop runs: nothing is sent. */
    if (ar_curl_uv_add(cu, e, thread_done_cb, NULL) == 0) {
        ar_curl_uv_cancel(cu, e);
    }
    curl_easy_cleanup(e);
}

int ar_mail_sender_create(uv_loop_t *loop, struct ar_mail_sender **out)
{
    int rc = ar_curl_global_init();
    if (rc != 0) {
        return rc;
    }
    struct ar_mail_sender *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return AR_ENOMEM;
    }
    s->main_loop = loop;
    if ((rc = uv_mutex_init(&s->lock)) != 0) {
        free(s);
        return rc;
    }
    if ((rc = uv_loop_init(&s->loop)) != 0) {
        uv_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    if ((rc = uv_async_init(&s->loop, &s->wake, thread_wake_cb)) != 0 ||
        (rc = ar_curl_uv_create(&s->loop, &s->cu)) != 0) {
        goto fail;
    }
    resolve_curl(s->cu);
    if ((rc = uv_thread_create(&s->thread, thread_main, s)) != 0) {
        goto fail;
    }
    s->thread_started = 1;
    *out = s;
    return 0;
fail:
    ar_curl_uv_destroy(s->cu);
    if (s->wake.loop == &s->loop) { /* initialised */
        uv_close((uv_handle_t *)&s->wake, NULL);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    uv_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

void ar_mail_sender_destroy(struct ar_mail_sender *s)
{
    if (s == NULL) {
        return;
    }
    uv_mutex_lock(&s->lock);
    s->stop = 1;
    s->notify_async = NULL;
    uv_mutex_unlock(&s->lock);
    uv_async_send(&s->wake);
    uv_thread_join(&s->thread);
    uv_loop_close(&s->loop);
    /* Results nobody collected (the engine's loop ended with deliveries pending). */
    while (s->done != NULL) {
        struct ar_mail_delivery *d = s->done;
        s->done = d->next;
        delivery_free(d);
    }
    while (s->cancels != NULL) {
        struct ar_mail_delivery *d = s->cancels;
        s->cancels = d->next;
        delivery_free(d);
    }
    if (s->notify != NULL) {
        /* Only when the engine's loop is gone, having closed its handles itself. */
        free(s->notify);
    }
    uv_mutex_destroy(&s->lock);
    free(s);
}

static int smtp_enqueue(struct ar_mail_sender *s, struct ar_mail_delivery *d)
{
    int rc = notify_acquire(s);
    if (rc != 0) {
        return rc;
    }
    d->sender = s;
    s->pending++;
    uv_mutex_lock(&s->lock);
    d->state = D_QUEUED;
    d->next = NULL;
    if (s->inbox_tail != NULL) {
        s->inbox_tail->next = d;
    } else {
        s->inbox = d;
    }
    s->inbox_tail = d;
    uv_mutex_unlock(&s->lock);
    uv_async_send(&s->wake);
    return 0;
}

static void unlink_from(struct ar_mail_delivery **head, struct ar_mail_delivery **tail,
                        struct ar_mail_delivery *d)
{
    struct ar_mail_delivery *prev = NULL;
    for (struct ar_mail_delivery **p = head; *p != NULL; prev = *p, p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            if (*tail == d) {
                *tail = prev;
            }
            return;
        }
    }
}

static void smtp_cancel(struct ar_mail_delivery *d)
{
    struct ar_mail_sender *s = d->sender;
    int free_now = 0, wake = 0;
    uv_mutex_lock(&s->lock);
    switch (d->state) {
    case D_QUEUED:
        unlink_from(&s->inbox, &s->inbox_tail, d);
        free_now = 1;
        break;
    case D_DONE:
        unlink_from(&s->done, &s->done_tail, d);
        free_now = 1;
        break;
    case D_REPORTING:
        /* notify_cb holds it in its list and frees it. */
        d->dropped = 1;
        break;
    case D_ACTIVE:
        d->state = D_CANCELLING;
        d->next = s->cancels;
        s->cancels = d;
        wake = 1;
        break;
    case D_CANCELLING:
        uv_mutex_unlock(&s->lock);
        return;
    }
    uv_mutex_unlock(&s->lock);
    if (wake) {
        uv_async_send(&s->wake);
    }
    if (free_now) {
        delivery_free(d);
    }
    s->pending--;
    notify_release(s);
}

/* Runs on the thread pool: writes the file beside its final name, then renames it, so a
 * reader of the outbox never sees half a message. */
static void file_work_cb(uv_work_t *req)
{
    struct ar_mail_delivery *d = ar_container_of(req, struct ar_mail_delivery, work);
    const char *tmp = d->tmp;
    int fd = -1, rc;
    const char *what = "";

    if ((rc = ar_mkdir_p(d->dir, 0700)) != 0) {
        what = "cannot create the directory";
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        what = "cannot create a file";
        goto out;
    }
    for (size_t off = 0; off < d->len;) {
        ssize_t n = write(fd, d->data_buf + off, d->len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            what = "cannot write";
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        what = "cannot sync";
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        what = "cannot write";
        goto out;
    }
    fd = -1;
    if (rename(tmp, d->path) != 0) {
        rc = -errno;
        what = "cannot rename the file into place";
        goto out;
    }
    /* The rename is durable only once the directory is. */
    int dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        unlink(tmp);
        snprintf(d->file_err, sizeof(d->file_err), "%s: %s: %s", d->shown, what,
                 ar_strerror(rc));
    }
    d->file_rc = rc;
}

static void file_after_work_cb(uv_work_t *req, int status)
{
    struct ar_mail_delivery *d = ar_container_of(req, struct ar_mail_delivery, work);
    if (status == 0 && !d->cancelled) {
        struct ar_mail_result r = {
            .rc = d->file_rc,
            .reply = "",
            .error = d->file_rc ? d->file_err : "",
            .path = d->file_rc ? "" : d->path,
        };
        d->cb(d->data, &r);
    }
    delivery_free(d);
}

static int name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.' || strlen(name) > 200) {
        return 0;
    }
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

int ar_mail_deliver(uv_loop_t *loop, struct ar_mail_sender *sender,
                    const struct ar_mail_transport *t, const struct ar_mail_envelope *env,
                    ar_mail_done_cb cb, void *data, struct ar_mail_delivery **out)
{
    if (loop == NULL || t == NULL || env == NULL || cb == NULL || env->from == NULL ||
        env->rcpt_count == 0 || env->data == NULL) {
        return AR_EINVAL;
    }
    if (t->kind == AR_MAIL_SMTP && sender == NULL) {
        return AR_EINVAL;
    }
    if (t->kind == AR_MAIL_FILE && !name_valid(env->name)) {
        return AR_EINVAL;
    }
    struct ar_mail_delivery *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return AR_ENOMEM;
    }
    d->cb = cb;
    d->data = data;
    d->len = env->len;
    d->data_buf = malloc(env->len + 1);
    d->shown = ar_strdup(t->shown ? t->shown : "mail");
    if (d->data_buf == NULL) {
        delivery_free(d);
        return AR_ENOMEM;
    }
    memcpy(d->data_buf, env->data, env->len);
    d->data_buf[env->len] = '\0';
    int rc;
    if (t->kind == AR_MAIL_SMTP) {
        d->kind = DELIVER_SMTP;
        rc = smtp_setup(d, t, env);
        if (rc == 0) {
            rc = smtp_enqueue(sender, d);
        }
    } else {
        d->kind = DELIVER_FILE;
        d->dir = ar_strdup(t->dir);
        d->tmp = ar_asprintf("%s/.%s.tmp", t->dir, env->name);
        d->path = ar_asprintf("%s/%s.eml", t->dir, env->name);
        rc = uv_queue_work(loop, &d->work, file_work_cb, file_after_work_cb);
    }
    if (rc != 0) {
        delivery_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void ar_mail_deliver_cancel(struct ar_mail_delivery *d)
{
    if (d == NULL) {
        return;
    }
    if (d->kind == DELIVER_SMTP) {
        smtp_cancel(d);
        return;
    }
    /* The work may be running on another thread; its after-work callback frees it. */
    d->cancelled = 1;
    uv_cancel((uv_req_t *)&d->work);
}
