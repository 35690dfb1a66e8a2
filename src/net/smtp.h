/* Mail delivery for mail.send: SMTP through libcurl on a sender thread, or the file outbox. */
#ifndef AR_NET_SMTP_H
#define AR_NET_SMTP_H

#include <stddef.h>

#include <uv.h>


enum ar_mail_transport_kind {
    AR_MAIL_FILE, /* file:DIR: one .eml per message */
    AR_MAIL_SMTP, /* smtp:// or smtps:// */
};

/* The mail.url setting, parsed once. Forms:
 *   file:DIR or file://DIR
 *   smtp://[user[:pass]@]host[:port][/ehlo-domain][?option&...]
 *   smtps://... (TLS from the first byte)
 * Options: starttls=required|try|no (STARTTLS on smtp://; default no), insecure=1 (do not verify
 * the server's certificate), cacert=PATH (trust these CA certificates). */
struct ar_mail_transport {
    enum ar_mail_transport_kind kind;
    char *url;    /* owned; SMTP: what curl connects to, without credentials or options */
    char *shown;  /* owned; for history and errors: the URL without credentials */
    char *dir;    /* owned; FILE: the outbox directory */
    char *user;   /* owned, or NULL: from the URL (percent-decoded) */
    char *pass;   /* owned, or NULL */
    long use_ssl; /* CURLUSESSL_NONE, CURLUSESSL_TRY or CURLUSESSL_ALL */
    int insecure;
    char *cacert; /* owned, or NULL */
};

/* Parses a mail.url. out is written only on success; err names what is wrong. */
int ar_mail_transport_parse(const char *url, struct ar_mail_transport *out, char *err,
                            size_t errlen);
/* Frees what parse put in t and zeroes it; NULL is a no-op. */
void ar_mail_transport_free(struct ar_mail_transport *t);

/* One message to deliver. Everything is copied by ar_mail_deliver(). */
struct ar_mail_envelope {
    const char *from;             /* bare address, for MAIL FROM */
    const char *const *rcpt;      /* bare addresses, for RCPT TO */
    size_t rcpt_count;
    const char *data;             /* the RFC 5322 message, CRLF line ends */
    size_t len;
    const char *name;             /* file outbox: the file name without ".eml" (dot-atom) */
    const char *user;             /* SMTP AUTH when the URL has no user: borrowed, or NULL */
    const char *pass;
};

/* How a delivery ended. Strings are valid during the callback only. */
struct ar_mail_result {
    int rc;            /* 0, or a negative AR_E* code */
    long smtp_code;    /* the server's last reply code (SMTP), 0 if none */
    const char *reply; /* the server's last reply line (SMTP), or "" */
    const char *error; /* one line for humans when rc != 0, else "" */
    const char *path;  /* file outbox: where the message was written, or "" */
};

typedef void (*ar_mail_done_cb)(void *data, const struct ar_mail_result *result);

/* A thread with its own libuv loop and curl multi handle that carries every SMTP transfer of an
 * engine: libcurl waits for the reply to a message's end of data synchronously (its DONE phase,
 * also under a multi handle), which must not stall the engine's loop. Connections are cached in
 * its multi handle and reused by later deliveries to the same server. */
struct ar_mail_sender;

/* Starts the thread; results are reported on loop. *out is written only on success. */
int ar_mail_sender_create(uv_loop_t *loop, struct ar_mail_sender **out);
/* Stops the thread (saying QUIT on cached connections) and frees everything. Call it when no
 * delivery is pending, or after the engine's loop has ended; NULL is a no-op. */
void ar_mail_sender_destroy(struct ar_mail_sender *s);

struct ar_mail_delivery;

/* Starts delivering env over t: SMTP through sender, files on loop's thread pool (written to a
 * temporary name, synced, then renamed, mode 0600). cb runs exactly once on loop, never inside
 * this call, unless the delivery is cancelled first. While an SMTP delivery is pending the
 * sender keeps one handle of loop open. *out is written only on success. */
int ar_mail_deliver(uv_loop_t *loop, struct ar_mail_sender *sender,
                    const struct ar_mail_transport *t, const struct ar_mail_envelope *env,
                    ar_mail_done_cb cb, void *data, struct ar_mail_delivery **out);

/* Stops a delivery: cb will not run. A message already handed to the server or the disk may
 * still arrive. Memory is released now or, for a transfer or a file being written, when the
 * other thread lets go of it. */
void ar_mail_deliver_cancel(struct ar_mail_delivery *d);

#endif
