/* RFC 5322 / MIME rendering for mail.send: validates a message and builds its bytes. No I/O. */
#ifndef AR_NET_MIME_H
#define AR_NET_MIME_H

#include <stddef.h>
#include <stdint.h>

/* One entry of mail.send's `headers` object. */
struct ar_mail_header {
    const char *name;  /* borrowed */
    const char *value; /* borrowed, UTF-8 */
};

/* A message as mail.send receives it; every string is borrowed UTF-8. Each entry of to, cc, bcc
 * and reply_to is "a@b.c", "Name <a@b.c>", "\"Doe, J\" <a@b.c>" or a comma-separated list of
 * those, so a JS string maps to one entry and a JS array to several. */
struct ar_mail_msg {
    const char *const *to; /* borrowed */
    size_t to_count;
    const char *const *cc; /* borrowed */
    size_t cc_count;
    const char *const *bcc; /* borrowed: in the envelope, never in the bytes */
    size_t bcc_count;
    const char *const *reply_to; /* borrowed */
    size_t reply_to_count;
    const char *from;    /* borrowed, required: exactly one mailbox */
    const char *subject; /* borrowed; NULL writes no Subject header */
    const char *text;    /* borrowed; NULL: no text/plain part */
    const char *html;    /* borrowed; NULL: no text/html part (neither: an empty text body) */
    const struct ar_mail_header *headers; /* borrowed */
    size_t header_count;
};

/* What ar_mime_render() produces: the message and its SMTP envelope. */
struct ar_mime_out {
    char *data;          /* owned: the message, CRLF line ends, NUL-terminated */
    size_t len;          /* bytes in data, without the NUL */
    char *message_id;    /* owned: "<unique@domain-of-from>", as in the Message-ID header */
    char *envelope_from; /* owned: the bare From address, for MAIL FROM */
    char **rcpt;         /* owned: bare to+cc+bcc addresses, deduplicated, for RCPT TO */
    size_t rcpt_count;
};

/* True (1) when addr is a bare address we accept: local@domain, dot-atom local part of at most
 * 64 octets, a domain of at most 255 octets with a dot (or "localhost"), ASCII only. */
int ar_mail_address_valid(const char *addr);

/* Validates msg and renders it. now_s (seconds since the epoch) becomes the Date header, in UTC;
 * unique_id (dot-atom text, at most 128 octets, e.g. random hex from the caller) becomes the left
 * part of the Message-ID and seeds the multipart boundary, so equal inputs give equal bytes.
 * Returns 0, AR_EINVAL with a message naming the field in err ("subject contains a line
 * break", "cc: invalid address 'x@'"), AR_ERANGE for a date beyond year 9999, or AR_ENOMEM.
 * out is written only on success; release it with ar_mime_out_free(). */
int ar_mime_render(const struct ar_mail_msg *msg, int64_t now_s, const char *unique_id,
                   struct ar_mime_out *out, char *err, size_t errlen);

/* Frees what ar_mime_render() put in out and zeroes it; NULL is a no-op. */
void ar_mime_out_free(struct ar_mime_out *out);

#endif
