/* mail: mail.send renders a message (net/mime.c), guards its idempotency key with the outbox
 * table (db/outbox.c), delivers it over SMTP or to the file outbox (net/smtp.c) without
 * blocking the loop, and records every send as a step of the run. */
#include "js/vm.h"
#include "internal.h"
#include "core/log.h"
#include "db/history.h"
#include "db/outbox.h"
#include "net/mime.h"
#include "net/smtp.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX_BYTES 512
#define NAME_RCPT_BYTES 160   /* recipients shown in a step's name */
#define NAME_SUBJECT_BYTES 120
#define UNIQUE_BYTES 12       /* random bytes of a Message-ID: 96 bits never collide */

struct mail_send;

/* One per engine, created by the first mail.send and freed with the JavaScript heap. */
struct mail_state {
    struct ar_engine *engine; /* borrowed */
    struct ar_outbox *outbox; /* owned; opened by the first send that has a key */
    struct ar_mail_transport transport;
    int transport_ready;
    struct ar_mail_sender *sender; /* owned; started by the first SMTP send */
    struct mail_send *inflight; /* keyed sends being delivered now (their keys are taken) */
};

enum send_phase {
    SEND_NEW,        /* not waiting on anything yet */
    SEND_DELIVERING, /* handed to the transport */
    SEND_WAITING,    /* another send with the same key is being delivered */
    SEND_WAKING,     /* that send ended; our wake timer will decide again */
};

struct mail_send {
    struct ar_op op;
    struct mail_state *st; /* borrowed */
    enum send_phase phase;
    struct mail_send *next; /* st->inflight */
    struct mail_send *prev;
    struct mail_send *target;      /* WAITING: the send that holds our key */
    struct mail_send *waiters;     /* sends waiting for our key */
    struct mail_send *next_waiter;
    uv_timer_t wake;
    int wake_init;
    struct ar_mail_delivery *delivery; /* owned while DELIVERING */

    struct ar_mime_out mime;
    char unique[2 * UNIQUE_BYTES + 1];
    char *key;        /* owned, or NULL */
    char *subject;    /* owned, UTF-8, or NULL */
    char *recipients; /* owned: JSON array of the envelope's recipients */
    char *dup_message_id; /* owned: the Message-ID a duplicate key went out with */
    int64_t started_ms;
    uint64_t started_hr;
};

enum outcome { OUTCOME_SUSPENDED, OUTCOME_DUPLICATE, OUTCOME_ERROR };

/* ---- CESU-8 ---- */

/* Duktape keeps a code point above U+FFFF that came from JS text (an escape, a surrogate pair)
 * as two 3-byte surrogate sequences: CESU-8, which is not UTF-8. This joins each high-low pair
 * into one 4-byte sequence and turns a lone surrogate into U+FFFD, as TextEncoder does; other
 * bytes are copied unchanged (mime.c validates them). The output is never longer than the
 * input. Returns 0 and a NUL-terminated copy, or AR_ENOMEM. */
int ar__mail_cesu8_to_utf8(const char *s, size_t n, char **out, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char *o = malloc(n + 1);
    size_t j = 0;
    if (o == NULL) {
        return AR_ENOMEM;
    }
    for (size_t i = 0; i < n;) {
        /* ED A0..BF xx is U+D800..U+DFFF. */
        int sur = i + 2 < n && p[i] == 0xED && p[i + 1] >= 0xA0 && p[i + 1] <= 0xBF &&
                  (p[i + 2] & 0xC0) == 0x80;
        if (!sur) {
            o[j++] = p[i++];
            continue;
        }
        uint32_t hi = 0xD000u | ((uint32_t)(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
        int low_next = i + 5 < n && p[i + 3] == 0xED && p[i + 4] >= 0xB0 && p[i + 4] <= 0xBF &&
                       (p[i + 5] & 0xC0) == 0x80;
        if (hi <= 0xDBFF && low_next) {
            uint32_t lo = 0xD000u | ((uint32_t)(p[i + 4] & 0x3F) << 6) | (p[i + 5] & 0x3F);
            uint32_t cp = 0x10000u + ((hi - 0xD800u) << 10) + (lo - 0xDC00u);
            o[j++] = (unsigned char)(0xF0 | (cp >> 18));
            o[j++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            o[j++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            o[j++] = (unsigned char)(0x80 | (cp & 0x3F));
            i += 6;
        } else {
            o[j++] = 0xEF;
            o[j++] = 0xBF;
            o[j++] = 0xBD;
            i += 3;
        }
    }
    o[j] = '\0';
    *out = (char *)o;
    if (out_len != NULL) {
        *out_len = j;
    }
    return 0;
}

/* ---- Engine state ---- */

static struct mail_state *state_of(duk_context *ctx);

static duk_ret_t state_finalize(duk_context *ctx)
{
    /* -> [ obj heapDestruct ] */
    duk_get_prop_string(ctx, 0, DUK_HIDDEN_SYMBOL("state"));
    struct mail_state *st = duk_get_pointer(ctx, -1);
    duk_pop(ctx);
    if (st != NULL) {
        /* The engine's loop has ended, so no delivery is pending. */
        ar_mail_sender_destroy(st->sender);
        ar_outbox_close(st->outbox);
        ar_mail_transport_free(&st->transport);
        free(st);
        duk_push_pointer(ctx, NULL);
        duk_put_prop_string(ctx, 0, DUK_HIDDEN_SYMBOL("state"));
    }
    return 0;
}

/* The engine's mail state lives in the heap stash, so it needs no field in the engine and goes
 * away with the heap (after the loop has run its last callback). */
static struct mail_state *state_of(duk_context *ctx)
{
    struct mail_state *st = NULL;
    duk_push_heap_stash(ctx);
    if (duk_get_prop_string(ctx, -1, AR_JS_MAIL_STATE)) {
        duk_get_prop_string(ctx, -1, DUK_HIDDEN_SYMBOL("state"));
        st = duk_get_pointer(ctx, -1);
        duk_pop(ctx);
    }
    duk_pop(ctx);
    if (st == NULL) {
        /* -> [ stash ] */
        st = ar_calloc(1, sizeof(*st));
        st->engine = ar__vm_of(ctx)->engine;
        duk_push_object(ctx);
        duk_push_pointer(ctx, st);
        duk_put_prop_string(ctx, -2, DUK_HIDDEN_SYMBOL("state"));
        duk_push_c_function(ctx, state_finalize, 2);
        duk_set_finalizer(ctx, -2);
        duk_put_prop_string(ctx, -2, AR_JS_MAIL_STATE);
    }
    duk_pop(ctx);
    return st;
}

static int transport_ready(struct mail_state *st, char *err, size_t errlen)
{
    if (st->transport_ready) {
        return 0;
    }
    int rc = ar_mail_transport_parse(st->engine->cfg->mail_url, &st->transport, err, errlen);
    if (rc == 0) {
        st->transport_ready = 1;
    }
    return rc;
}

static int outbox_ready(struct mail_state *st, char *err, size_t errlen)
{
    if (st->outbox != NULL) {
        return 0;
    }
    char why[512];
    int rc = ar_outbox_open(st->engine->cfg->home, &st->outbox, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the outbox: %s", why);
    }
    return rc;
}

/* The outbox writes on a connection of its own, and SQLite lets one connection write at a
 * time: the history's grouped transaction is committed first. That also puts the run's
 * earlier steps on disk before a message leaves. */
static int history_flush(struct mail_state *st, char *err, size_t errlen)
{
    struct ar_history *h = st->engine->history;
    if (ar_history_commit(h) != 0) {
        snprintf(err, errlen, "cannot commit the state database: %s", ar_history_errmsg(h));
        return AR_EIO;
    }
    return 0;
}

/* ---- Sends ---- */

static void send_close_cb(uv_handle_t *h)
{
    free(ar_container_of((uv_timer_t *)h, struct mail_send, wake));
}

static void send_free(struct mail_send *s)
{
    ar_mime_out_free(&s->mime);
    free(s->key);
    free(s->subject);
    free(s->recipients);
    free(s->dup_message_id);
    if (s->wake_init) {
        uv_close((uv_handle_t *)&s->wake, send_close_cb);
    } else {
        free(s);
    }
}

static struct mail_send *inflight_find(struct mail_state *st, const char *key)
{
    for (struct mail_send *s = st->inflight; s != NULL; s = s->next) {
        if (strcmp(s->key, key) == 0) {
            return s;
        }
    }
    return NULL;
}

static void inflight_add(struct mail_send *s)
{
    struct mail_state *st = s->st;
    s->prev = NULL;
    s->next = st->inflight;
    if (st->inflight != NULL) {
        st->inflight->prev = s;
    }
    st->inflight = s;
}

static void inflight_remove(struct mail_send *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else if (s->st->inflight == s) {
        s->st->inflight = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->next = s->prev = NULL;
}

static void send_wake_cb(uv_timer_t *t);

/* The send holding a key ended: each send that waited for it decides again on the loop's
 * next turn (never from inside this call, which may run while a run is being cancelled). */
static void wake_waiters(struct mail_send *s)
{
    struct ar_engine *e = s->st->engine;
    while (s->waiters != NULL) {
        struct mail_send *w = s->waiters;
        s->waiters = w->next_waiter;
        w->next_waiter = NULL;
        w->target = NULL;
        w->phase = SEND_WAKING;
        if (!w->wake_init) {
            uv_timer_init(&e->loop, &w->wake);
            w->wake_init = 1;
        }
        uv_timer_start(&w->wake, send_wake_cb, 0, 0);
    }
}

/* Appends "a, b, c (+N more)" to b, within max bytes of addresses. */
static void put_recipients(struct ar_buf *b, const struct ar_mime_out *m, size_t max)
{
    size_t start = b->len, i;
    for (i = 0; i < m->rcpt_count; i++) {
        if (i > 0 && b->len - start + strlen(m->rcpt[i]) > max) {
            break;
        }
        ar_buf_printf(b, "%s%s", i ? ", " : "", m->rcpt[i]);
    }
    if (i < m->rcpt_count) {
        ar_buf_printf(b, " (+%zu more)", m->rcpt_count - i);
    }
}

/* Appends at most max bytes of s, cut at a character boundary. */
static void put_cut(struct ar_buf *b, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        ar_buf_append(b, s, n);
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    ar_buf_append(b, s, max);
    ar_buf_puts(b, "...");
}

struct step_extra {
    const char *status;
    const char *error;   /* "MailError: ..." or NULL */
    const char *reply;   /* the server's last reply, or NULL */
    const char *path;    /* the .eml written, or NULL */
    const char *message_id;
    int already_sent;    /* dry run of a key that was sent before */
};

static void record_step(struct ar_run *run, struct mail_send *s, const struct step_extra *x)
{
    struct mail_state *st = s->st;
    struct ar_buf name = {0}, d = {0};
    if (s->mime.rcpt_count > 0) {
        ar_buf_puts(&name, "to ");
        put_recipients(&name, &s->mime, NAME_RCPT_BYTES);
    } else {
        ar_buf_puts(&name, "mail.send");
    }
    if (s->subject != NULL) {
        ar_buf_puts(&name, ": ");
        put_cut(&name, s->subject, NAME_SUBJECT_BYTES);
    }
    ar_buf_puts(&d, "{\"transport\":");
    ar_buf_json_string(&d, st->transport_ready ? st->transport.shown : run->engine->cfg->mail_url);
    if (s->mime.envelope_from != NULL) {
        ar_buf_puts(&d, ",\"from\":");
        ar_buf_json_string(&d, s->mime.envelope_from);
    }
    ar_buf_printf(&d, ",\"recipients\":%s", s->recipients ? s->recipients : "[]");
    if (s->subject != NULL) {
        ar_buf_puts(&d, ",\"subject\":");
        ar_buf_json_string(&d, s->subject);
    }
    if (x->message_id != NULL) {
        ar_buf_puts(&d, ",\"messageId\":");
        ar_buf_json_string(&d, x->message_id);
    }
    if (s->key != NULL) {
        ar_buf_puts(&d, ",\"idempotencyKey\":");
        ar_buf_json_string(&d, s->key);
    }
    if (s->mime.data != NULL) {
        ar_buf_printf(&d, ",\"bytes\":%zu", s->mime.len);
    }
    if (x->reply != NULL && x->reply[0]) {
        ar_buf_puts(&d, ",\"reply\":");
        ar_buf_json_string(&d, x->reply);
    }
    if (x->path != NULL && x->path[0]) {
        ar_buf_puts(&d, ",\"file\":");
        ar_buf_json_string(&d, x->path);
    }
    if (x->already_sent) {
        ar_buf_puts(&d, ",\"alreadySent\":true");
    }
    ar_buf_puts(&d, "}");
    struct ar_step_record rec = {
        .kind = "mail",
        .name = name.data,
        .started_at = s->started_ms,
        .duration_ms = (double)(uv_hrtime() - s->started_hr) / 1e6,
        .status = x->status,
        .attempts = 1,
        .detail = d.data,
        .error = x->error,
    };
    ar__run_step(run, &rec);
    ar_buf_free(&name);
    ar_buf_free(&d);
}

/* Reads the SMTP credentials from the secrets when the URL has none; both are optional. */
static int smtp_credentials(struct mail_state *st, struct ar_run *run, const char **user,
                            const char **pass, char *err, size_t errlen)
{
    *user = *pass = NULL;
    if (st->transport.kind != AR_MAIL_SMTP || st->transport.user != NULL) {
        return 0;
    }
    const char *names[2] = {"SMTP_USER", "SMTP_PASS"};
    const char **values[2] = {user, pass};
    for (int i = 0; i < 2; i++) {
        char why[512];
        int rc = ar__engine_secret(st->engine, names[i], values[i], why, sizeof(why));
        if (rc == AR_ENOENT) {
            *values[i] = NULL;
        } else if (rc != 0) {
            snprintf(err, errlen, "%s", why);
            return rc;
        }
    }
    if (*pass != NULL) {
        ar_redactor_add(&run->redactor, *pass);
    }
    return 0;
}

static void send_delivered_cb(void *data, const struct ar_mail_result *r);

/* Decides what a send does now: return a duplicate, wait for the send that holds its key, or
 * record the key as 'sending' (committed) and start the transfer. */
static enum outcome send_decide(struct mail_send *s, struct ar_run *run, char *err,
                                size_t errlen)
{
    struct mail_state *st = s->st;
    struct ar_engine *e = st->engine;
    int rc;

    if (s->key != NULL) {
        struct mail_send *busy = inflight_find(st, s->key);
        if (busy != NULL) {
            s->phase = SEND_WAITING;
            s->target = busy;
            s->next_waiter = busy->waiters;
            busy->waiters = s;
            return OUTCOME_SUSPENDED;
        }
        enum ar_outbox_state state;
        if (outbox_ready(st, err, errlen) != 0) {
            return OUTCOME_ERROR;
        }
        if (ar_outbox_get(st->outbox, s->key, &state, &s->dup_message_id) != 0) {
            snprintf(err, errlen, "outbox: cannot read key '%s': %s", s->key,
                     ar_outbox_errmsg(st->outbox));
            return OUTCOME_ERROR;
        }
        if (state == AR_OUTBOX_SENT) {
            return OUTCOME_DUPLICATE;
        }
        if (history_flush(st, err, errlen) != 0) {
            return OUTCOME_ERROR;
        }
        char *subject = s->subject ? ar_redact(&run->redactor, s->subject) : NULL;
        struct ar_outbox_entry entry = {
            .key = s->key,
            .recipe = run->recipe->name,
            .run_id = run->id,
            .message_id = s->mime.message_id,
            .recipients = s->recipients,
            .subject = subject ? subject : s->subject,
            .now_ms = ar_now_ms(),
        };
        rc = ar_outbox_begin(st->outbox, &entry);
        free(subject);
        if (rc == AR_EEXIST) {
            /* Another process sent it between our read and our write. */
            free(s->dup_message_id);
            s->dup_message_id = NULL;
            if (ar_outbox_get(st->outbox, s->key, &state, &s->dup_message_id) == 0) {
                return OUTCOME_DUPLICATE;
            }
        }
        if (rc != 0) {
            snprintf(err, errlen, "outbox: cannot record key '%s': %s", s->key,
                     ar_outbox_errmsg(st->outbox));
            return OUTCOME_ERROR;
        }
    }

    const char *user, *pass;
    rc = smtp_credentials(st, run, &user, &pass, err, errlen);
    if (rc == 0 && st->transport.kind == AR_MAIL_SMTP && st->sender == NULL &&
        (rc = ar_mail_sender_create(&e->loop, &st->sender)) != 0) {
        snprintf(err, errlen, "cannot start the SMTP sender: %s", ar_strerror(rc));
    }
    if (rc == 0) {
        char name[96], stamp[32];
        int64_t now = ar_now_ms();
        time_t secs = (time_t)(now / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
        snprintf(name, sizeof(name), "%s.%03dZ-%s", stamp, (int)(now % 1000), s->unique);
        struct ar_mail_envelope env = {
            .from = s->mime.envelope_from,
            .rcpt = (const char *const *)s->mime.rcpt,
            .rcpt_count = s->mime.rcpt_count,
            .data = s->mime.data,
            .len = s->mime.len,
            .name = name,
            .user = user,
            .pass = pass,
        };
        rc = ar_mail_deliver(&e->loop, st->sender, &st->transport, &env, send_delivered_cb, s,
                             &s->delivery);
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot start the delivery: %s", st->transport.shown,
                     ar_strerror(rc));
        }
    }
    if (rc != 0) {
        if (s->key != NULL && history_flush(st, NULL, 0) == 0) {
            ar_outbox_failed(st->outbox, s->key, err, ar_now_ms());
        }
        return OUTCOME_ERROR;
    }
    if (s->key != NULL) {
        inflight_add(s);
    }
    s->phase = SEND_DELIVERING;
    return OUTCOME_SUSPENDED;
}

/* ---- Results for JS ---- */

struct result_push {
    const char *status;
    const char *message_id;
    const char *error; /* for errors: the message, without "MailError: " */
    long smtp_code;
    const char *reply;
};

static void push_result(duk_context *ctx, void *data)
{
    const struct result_push *r = data;
    duk_push_object(ctx);
    duk_push_string(ctx, r->status);
    duk_put_prop_string(ctx, -2, "status");
    if (r->message_id != NULL) {
        duk_push_string(ctx, r->message_id);
        duk_put_prop_string(ctx, -2, "messageId");
    }
}

static void push_mail_error(duk_context *ctx, void *data)
{
    const struct result_push *r = data;
    ar__vm_push_error(ctx, "MailError", r->error);
    if (r->smtp_code > 0) {
        duk_push_int(ctx, (int)r->smtp_code);
        duk_put_prop_string(ctx, -2, "smtpCode");
    }
    if (r->reply != NULL && r->reply[0]) {
        duk_push_string(ctx, r->reply);
        duk_put_prop_string(ctx, -2, "reply");
    }
}

/* Ends a suspended send that did not (or no longer) wait for a transfer. */
static void send_finish_async(struct mail_send *s, enum outcome o, const char *err)
{
    struct ar_run *run = s->op.run;
    uint32_t fiber = s->op.fiber;
    struct ar_vm *vm = run->engine->vm;
    char *error = o == OUTCOME_ERROR ? ar_asprintf("MailError: %s", err) : NULL;
    const char *mid = o == OUTCOME_DUPLICATE ? s->dup_message_id : NULL;
    record_step(run, s, &(struct step_extra){.status = o == OUTCOME_ERROR ? "error" : "duplicate",
                                             .error = error, .message_id = mid});
    free(error);
    ar__run_op_remove(&s->op);
    struct result_push r = {.status = "duplicate", .message_id = mid, .error = err};
    ar__vm_resume(vm, run, fiber, o == OUTCOME_ERROR ? push_mail_error : push_result, &r,
                  o == OUTCOME_ERROR);
    send_free(s);
}

static void send_wake_cb(uv_timer_t *t)
{
    struct mail_send *s = ar_container_of(t, struct mail_send, wake);
    char err[1024];
    s->phase = SEND_NEW;
    enum outcome o = send_decide(s, s->op.run, err, sizeof(err));
    if (o != OUTCOME_SUSPENDED) {
        send_finish_async(s, o, err);
    }
}

static void send_delivered_cb(void *data, const struct ar_mail_result *r)
{
    struct mail_send *s = data;
    struct mail_state *st = s->st;
    struct ar_run *run = s->op.run;
    uint32_t fiber = s->op.fiber;
    struct ar_vm *vm = run->engine->vm;
    char why[512];

    s->delivery = NULL;
    if (s->key != NULL) {
        inflight_remove(s);
        int rc = history_flush(st, why, sizeof(why));
        if (rc == 0) {
            rc = r->rc == 0 ? ar_outbox_sent(st->outbox, s->key, ar_now_ms())
                            : ar_outbox_failed(st->outbox, s->key, r->error, ar_now_ms());
            if (rc != 0) {
                snprintf(why, sizeof(why), "%s", ar_outbox_errmsg(st->outbox));
            }
        }
        if (rc != 0) {
            /* The key stays 'sending', so a later send of it goes out again. */
            char *line = ar_asprintf("mail.send: could not record key '%s' as %s: %s", s->key,
                                     r->rc == 0 ? "sent" : "failed", why);
            ar__run_log(run, "warn", line);
            free(line);
        }
        wake_waiters(s);
    }
    char *error = r->rc != 0 ? ar_asprintf("MailError: %s", r->error) : NULL;
    record_step(run, s, &(struct step_extra){.status = r->rc == 0 ? "sent" : "error",
                                             .error = error, .reply = r->reply,
                                             .path = r->path, .message_id = s->mime.message_id});
    free(error);
    ar__run_op_remove(&s->op);
    struct result_push res = {.status = "sent", .message_id = s->mime.message_id,
                              .error = r->error, .smtp_code = r->smtp_code, .reply = r->reply};
    ar__vm_resume(vm, run, fiber, r->rc == 0 ? push_result : push_mail_error, &res, r->rc != 0);
    send_free(s);
}

static void send_cancel(struct ar_op *op)
{
    struct mail_send *s = ar_container_of(op, struct mail_send, op);
    switch (s->phase) {
    case SEND_DELIVERING:
        /* The key stays 'sending': the message may or may not have left. */
        ar_mail_deliver_cancel(s->delivery);
        s->delivery = NULL;
        if (s->key != NULL) {
            inflight_remove(s);
            wake_waiters(s);
        }
        break;
    case SEND_WAITING:
        for (struct mail_send **p = &s->target->waiters; *p != NULL; p = &(*p)->next_waiter) {
            if (*p == s) {
                *p = s->next_waiter;
                break;
            }
        }
        break;
    case SEND_WAKING:
        uv_timer_stop(&s->wake);
        break;
    case SEND_NEW:
        break;
    }
    send_free(s);
}

/* ---- mailSend(fiber, msg) ---- */

static const char *const list_fields[] = {"to", "cc", "bcc", "replyTo", "headerNames",
                                          "headerValues"};
static const char *const text_fields[] = {"from", "subject", "text", "html", "key"};

/* Checks the shape the bundled wrapper produces, before anything is allocated. */
static void check_shape(duk_context *ctx)
{
    for (size_t i = 0; i < AR_ARRAY_SIZE(list_fields); i++) {
        duk_get_prop_string(ctx, 1, list_fields[i]);
        if (!duk_is_array(ctx, -1)) {
            (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "mail.send: %s must be an array",
                            list_fields[i]);
        }
        duk_size_t n = duk_get_length(ctx, -1);
        for (duk_size_t j = 0; j < n; j++) {
            duk_get_prop_index(ctx, -1, (duk_uarridx_t)j);
            if (!duk_is_string(ctx, -1)) {
                (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "mail.send: %s[%d] must be a string",
                                list_fields[i], (int)j);
            }
            duk_pop(ctx);
        }
        duk_pop(ctx);
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(text_fields); i++) {
        duk_get_prop_string(ctx, 1, text_fields[i]);
        if (!duk_is_undefined(ctx, -1) && !duk_is_string(ctx, -1)) {
            (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "mail.send: %s must be a string",
                            text_fields[i]);
        }
        duk_pop(ctx);
    }
    duk_get_prop_string(ctx, 1, "headerNames");
    duk_get_prop_string(ctx, 1, "headerValues");
    if (duk_get_length(ctx, -1) != duk_get_length(ctx, -2)) {
        (void)duk_error(ctx, DUK_ERR_TYPE_ERROR, "mail.send: headers do not pair up");
    }
    duk_pop_2(ctx);
}

/* A copy of the string at idx as UTF-8, or NULL with err set when it holds a NUL. */
static char *utf8_copy(duk_context *ctx, duk_idx_t idx, const char *field, char *err,
                       size_t errlen)
{
    duk_size_t n;
    const char *v = duk_get_lstring(ctx, idx, &n);
    char *out = NULL;
    if (memchr(v, '\0', n) != NULL) {
        snprintf(err, errlen, "%s contains a NUL character", field);
        return NULL;
    }
    if (ar__mail_cesu8_to_utf8(v, n, &out, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return out;
}

/* Strings of the message, converted, freed together. */
struct strings {
    char **v;
    size_t n;
};

static char *keep(struct strings *all, char *s)
{
    if (s != NULL) {
        all->v = realloc(all->v, (all->n + 1) * sizeof(*all->v));
        if (all->v == NULL) {
            abort();
        }
        all->v[all->n++] = s;
    }
    return s;
}

static void strings_free(struct strings *all)
{
    for (size_t i = 0; i < all->n; i++) {
        free(all->v[i]);
    }
    free(all->v);
}

static int copy_text(duk_context *ctx, struct strings *all, const char *prop, const char *field,
                     const char **out, char *err, size_t errlen)
{
    int rc = 0;
    *out = NULL;
    duk_get_prop_string(ctx, 1, prop);
    if (duk_is_string(ctx, -1)) {
        *out = keep(all, utf8_copy(ctx, -1, field, err, errlen));
        rc = *out ? 0 : AR_EINVAL;
    }
    duk_pop(ctx);
    return rc;
}

static int copy_list(duk_context *ctx, struct strings *all, const char *prop,
                     const char ***out, size_t *count, char *err, size_t errlen)
{
    int rc = 0;
    duk_get_prop_string(ctx, 1, prop);
    size_t n = duk_get_length(ctx, -1);
    const char **v = ar_calloc(n + 1, sizeof(*v));
    keep(all, (char *)v);
    for (size_t i = 0; i < n && rc == 0; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        v[i] = keep(all, utf8_copy(ctx, -1, prop, err, errlen));
        rc = v[i] ? 0 : AR_EINVAL;
        duk_pop(ctx);
    }
    duk_pop(ctx);
    *out = v;
    *count = n;
    return rc;
}

/* Copies the message out of JS and renders it into s. Nothing here throws. */
static int send_prepare(duk_context *ctx, struct mail_send *s, char *err, size_t errlen)
{
    struct strings all = {0};
    struct ar_mail_msg m;
    const char **names = NULL, **values = NULL, *key = NULL;
    const char **to = NULL, **cc = NULL, **bcc = NULL, **reply = NULL;
    size_t nnames = 0, nvalues = 0;
    struct ar_mail_header *headers = NULL;
    unsigned char rnd[UNIQUE_BYTES];
    int rc;

    memset(&m, 0, sizeof(m));
    if ((rc = copy_text(ctx, &all, "from", "from", &m.from, err, errlen)) != 0 ||
        (rc = copy_text(ctx, &all, "subject", "subject", &m.subject, err, errlen)) != 0 ||
        (rc = copy_text(ctx, &all, "text", "text", &m.text, err, errlen)) != 0 ||
        (rc = copy_text(ctx, &all, "html", "html", &m.html, err, errlen)) != 0 ||
        (rc = copy_text(ctx, &all, "key", "idempotencyKey", &key, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "to", &to, &m.to_count, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "cc", &cc, &m.cc_count, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "bcc", &bcc, &m.bcc_count, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "replyTo", &reply, &m.reply_to_count, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "headerNames", &names, &nnames, err, errlen)) != 0 ||
        (rc = copy_list(ctx, &all, "headerValues", &values, &nvalues, err, errlen)) != 0) {
        goto out;
    }
    m.to = to;
    m.cc = cc;
    m.bcc = bcc;
    m.reply_to = reply;
    s->subject = ar_strdup(m.subject);
    if (key != NULL) {
        if (key[0] == '\0' || strlen(key) > KEY_MAX_BYTES) {
            snprintf(err, errlen, "idempotencyKey must be 1 to %d bytes", KEY_MAX_BYTES);
            rc = AR_EINVAL;
            goto out;
        }
        s->key = ar_strdup(key);
    }
    headers = ar_calloc(nnames + 1, sizeof(*headers));
    for (size_t i = 0; i < nnames; i++) {
        headers[i].name = names[i];
        headers[i].value = values[i];
    }
    m.headers = headers;
    m.header_count = nnames;

    if ((rc = uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL)) != 0) {
        snprintf(err, errlen, "no randomness for a Message-ID: %s", ar_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        snprintf(s->unique + 2 * i, 3, "%02x", rnd[i]);
    }
    rc = ar_mime_render(&m, (int64_t)time(NULL), s->unique, &s->mime, err, errlen);
    if (rc != 0) {
        goto out;
    }
    struct ar_buf b = {0};
    ar_buf_puts(&b, "[");
    for (size_t i = 0; i < s->mime.rcpt_count; i++) {
        if (i > 0) {
            ar_buf_puts(&b, ",");
        }
        ar_buf_json_string(&b, s->mime.rcpt[i]);
    }
    ar_buf_puts(&b, "]");
    s->recipients = ar_buf_steal(&b);
out:
    free(headers);
    strings_free(&all);
    return rc;
}

static duk_ret_t js_mail_send(duk_context *ctx)
{
    uint32_t fiber = duk_require_uint(ctx, 0);
    duk_require_object(ctx, 1);
    struct ar_run *run = ar__vm_of(ctx)->current;
    if (run == NULL) {
        return duk_error(ctx, DUK_ERR_ERROR, "mail.send() outside a run");
    }
    check_shape(ctx);
    struct mail_state *st = state_of(ctx);

    /* From here on nothing throws until the send is either suspended or freed. */
    struct mail_send *s = ar_calloc(1, sizeof(*s));
    char err[1024];
    enum outcome o = OUTCOME_ERROR;
    int already_sent = 0;
    s->st = st;
    s->started_ms = ar_now_ms();
    s->started_hr = uv_hrtime();
    if (transport_ready(st, err, sizeof(err)) != 0 ||
        send_prepare(ctx, s, err, sizeof(err)) != 0) {
        goto failed;
    }
    if (run->dry_run) {
        enum ar_outbox_state state;
        char *mid = NULL;
        if (s->key != NULL && outbox_ready(st, err, sizeof(err)) == 0 &&
            ar_outbox_get(st->outbox, s->key, &state, &mid) == 0) {
            already_sent = state == AR_OUTBOX_SENT;
            free(mid);
        }
        record_step(run, s, &(struct step_extra){.status = "dry-run",
                                                 .message_id = s->mime.message_id,
                                                 .already_sent = already_sent});
        struct result_push r = {.status = "dry-run", .message_id = s->mime.message_id};
        push_result(ctx, &r);
        send_free(s);
        return 1;
    }
    o = send_decide(s, run, err, sizeof(err));
    if (o == OUTCOME_SUSPENDED) {
        s->op.cancel = send_cancel;
        ar__run_op_add(run, &s->op, fiber);
        return 0;
    }
    if (o == OUTCOME_DUPLICATE) {
        record_step(run, s, &(struct step_extra){.status = "duplicate",
                                                 .message_id = s->dup_message_id});
        struct result_push r = {.status = "duplicate", .message_id = s->dup_message_id};
        push_result(ctx, &r);
        send_free(s);
        return 1;
    }
failed:;
    char *error = ar_asprintf("MailError: %s", err);
    record_step(run, s, &(struct step_extra){.status = "error", .error = error});
    free(error);
    send_free(s);
    ar__vm_push_error(ctx, "MailError", err);
    return duk_throw(ctx);
}

/* ---- mailDefaults(): the settings a recipe may read ---- */

static duk_ret_t js_mail_defaults(duk_context *ctx)
{
    const struct ar_config *cfg = ar__vm_of(ctx)->engine->cfg;
    duk_push_object(ctx);
    duk_push_string(ctx, cfg->mail_from ? cfg->mail_from : "autorun@localhost");
    duk_put_prop_string(ctx, -2, "from");
    duk_push_string(ctx, cfg->survey_url ? cfg->survey_url : "");
    duk_put_prop_string(ctx, -2, "surveyUrl");
    return 1;
}

static const duk_function_list_entry mail_funcs[] = {
    {"mailSend", js_mail_send, 2},
    {"mailDefaults", js_mail_defaults, 0},
    {NULL, NULL, 0},
};

void ar__js_mail_open(duk_context *ctx)
{
    duk_put_function_list(ctx, -1, mail_funcs);
}
