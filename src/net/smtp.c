/* Mail delivery for mail.send: SMTP through libcurl on the engine's loop, or the file outbox. */
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

struct ar_mail_delivery {
    enum delivery_kind kind;
    ar_mail_done_cb cb;
    void *data;
    char *data_buf; /* owned: the message */
    size_t len;
    char *shown; /* owned: transport, for errors */

    /* SMTP */
    struct ar_curl_uv *cu; /* borrowed */
    CURL *easy;            /* owned */
    struct curl_slist *rcpt; /* owned */
    size_t off;            /* bytes of the message handed to curl */
    char errbuf[CURL_ERROR_SIZE];
    char reply[REPLY_MAX];

    /* File */
    uv_work_t work;
    char *dir;  /* owned */
    char *tmp;  /* owned: where the file is written first */
    char *path; /* owned: the final file name */
    int cancelled;
    int file_rc;
    char file_err[256];
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

/* Keeps the server's last reply line: curl's own error text has only the code. */
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
    return 0;
}

static void smtp_done_cb(CURL *easy, CURLcode result, void *data)
{
    struct ar_mail_delivery *d = data;
    long code = 0;
    char error[CURL_ERROR_SIZE + REPLY_MAX + 256];
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    struct ar_mail_result r = {.rc = 0, .smtp_code = code, .reply = d->reply, .error = "",
                               .path = ""};
    if (result != CURLE_OK) {
        const char *why = d->errbuf[0] ? d->errbuf : curl_easy_strerror(result);
        if (result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST ||
            result == CURLE_OPERATION_TIMEDOUT) {
            snprintf(error, sizeof(error), "%s: %s", d->shown, why);
        } else if (code >= 400 && d->reply[0]) {
            snprintf(error, sizeof(error), "%s: %s (server said: %s)", d->shown, why, d->reply);
        } else {
            snprintf(error, sizeof(error), "%s: %s", d->shown, why);
        }
        r.rc = result == CURLE_OPERATION_TIMEDOUT ? AR_ETIMEDOUT : AR_EIO;
        r.error = error;
    }
    d->cb(d->data, &r);
    delivery_free(d);
}

static int smtp_start(struct ar_mail_delivery *d, struct ar_curl_uv *cu,
                      const struct ar_mail_transport *t, const struct ar_mail_envelope *env)
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
    return ar_curl_uv_add(cu, e, smtp_done_cb, d);
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

int ar_mail_deliver(uv_loop_t *loop, struct ar_curl_uv *cu, const struct ar_mail_transport *t,
                    const struct ar_mail_envelope *env, ar_mail_done_cb cb, void *data,
                    struct ar_mail_delivery **out)
{
    if (loop == NULL || t == NULL || env == NULL || cb == NULL || env->from == NULL ||
        env->rcpt_count == 0 || env->data == NULL) {
        return AR_EINVAL;
    }
    if (t->kind == AR_MAIL_SMTP && cu == NULL) {
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
    if (d->data_buf == NULL || d->shown == NULL) {
        delivery_free(d);
        return AR_ENOMEM;
    }
    memcpy(d->data_buf, env->data, env->len);
    d->data_buf[env->len] = '\0';
    int rc;
    if (t->kind == AR_MAIL_SMTP) {
        d->kind = DELIVER_SMTP;
        d->cu = cu;
        rc = smtp_start(d, cu, t, env);
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
        ar_curl_uv_cancel(d->cu, d->easy);
        delivery_free(d);
        return;
    }
    /* The work may be running on another thread; its after-work callback frees it. */
    d->cancelled = 1;
    uv_cancel((uv_req_t *)&d->work);
}
