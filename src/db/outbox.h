/* The outbox table of the state database: which idempotency keys mail.send has sent, so a key
 * is never sent twice, and a crash re-sends at most the message that was in flight. */
#ifndef AR_DB_OUTBOX_H
#define AR_DB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct ar_outbox;

enum ar_outbox_state {
    AR_OUTBOX_NONE,    /* the key was never recorded */
    AR_OUTBOX_SENDING, /* recorded before a transfer that has not (yet) been confirmed */
    AR_OUTBOX_SENT,
    AR_OUTBOX_FAILED,
};

/* What is recorded before a transfer starts. Strings are borrowed. */
struct ar_outbox_entry {
    const char *key;
    const char *recipe;
    int64_t run_id;
    const char *message_id;
    const char *recipients; /* JSON array of bare addresses */
    const char *subject;    /* or NULL */
    int64_t now_ms;
};

/* Opens a connection of its own to $home/history.db, whose schema (with the outbox table) the
 * history module has already migrated. Every write commits at once: it must be on disk before
 * the transfer it guards starts. The caller commits the history's grouped transaction first
 * (ar_history_commit), because SQLite lets one connection write at a time. */
int ar_outbox_open(const char *home, struct ar_outbox **out, char *err, size_t errlen);
void ar_outbox_close(struct ar_outbox *ob);
const char *ar_outbox_errmsg(struct ar_outbox *ob);

/* The key's state and, when it was sent, the Message-ID it went out with (owned by the caller;
 * NULL otherwise). Both are written only on success. */
int ar_outbox_get(struct ar_outbox *ob, const char *key, enum ar_outbox_state *state,
                  char **message_id);
/* Records the key as 'sending' (inserting it or taking over a 'sending'/'failed' row, whose
 * attempt count grows). Refuses with AR_EEXIST a key that is already 'sent'. */
int ar_outbox_begin(struct ar_outbox *ob, const struct ar_outbox_entry *e);
/* Records the end of the transfer: 'sent', or 'failed' with error. */
int ar_outbox_sent(struct ar_outbox *ob, const char *key, int64_t now_ms);
int ar_outbox_failed(struct ar_outbox *ob, const char *key, const char *error, int64_t now_ms);

#endif
