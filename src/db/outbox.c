/* The outbox table of the state database: idempotency keys of mail.send. One connection of its
 * own, used only from the loop thread; each write is its own transaction. */
#include "db/outbox.h"
#include "core/error.h"
#include "core/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stmt_id { ST_GET, ST_BEGIN, ST_SENT, ST_FAILED, ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = "SELECT state, message_id FROM outbox WHERE key=?",
    /* A 'sent' row is left alone (changes() == 0 tells the caller). */
    [ST_BEGIN] = "INSERT INTO outbox (key, recipe, run_id, message_id, recipients, subject, "
                 "state, attempts, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,'sending',1,"
                 "?7,?7) ON CONFLICT(key) DO UPDATE SET recipe=excluded.recipe, "
                 "run_id=excluded.run_id, message_id=excluded.message_id, "
                 "recipients=excluded.recipients, subject=excluded.subject, state='sending', "
                 "attempts=attempts+1, error=NULL, updated_at=excluded.updated_at "
                 "WHERE state <> 'sent'",
    [ST_SENT] = "UPDATE outbox SET state='sent', error=NULL, updated_at=?2, sent_at=?2 "
                "WHERE key=?1",
    [ST_FAILED] = "UPDATE outbox SET state='failed', error=?2, updated_at=?3 "
                  "WHERE key=?1 AND state <> 'sent'",
};

struct ar_outbox {
    sqlite3 *db; /* owned */
    sqlite3_stmt *stmt[ST_COUNT]; /* owned */
};

int ar_outbox_open(const char *home, struct ar_outbox **out, char *err, size_t errlen)
{
    char *path = ar_path_join(home, "history.db");
    struct ar_outbox *ob = ar_calloc(1, sizeof(*ob));
    int rc = 0;
    /* No SQLITE_OPEN_CREATE: the history module creates the file with mode 0600 and the
     * schema; an outbox without them is a bug, not something to paper over. */
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ob->db));
        rc = AR_EIO;
        goto out;
    }
    sqlite3_busy_timeout(ob->db, 10000);
    /* The history connection put the file in WAL mode; NORMAL keeps commits cheap there while
     * a committed row survives a crash of the process. */
    if (sqlite3_exec(ob->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ob->db));
        rc = AR_EIO;
        goto out;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(ob->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ob->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: outbox: %s", path, sqlite3_errmsg(ob->db));
            rc = AR_EIO;
            goto out;
        }
    }
out:
    free(path);
    if (rc != 0) {
        ar_outbox_close(ob);
        return rc;
    }
    *out = ob;
    return 0;
}

void ar_outbox_close(struct ar_outbox *ob)
{
    if (ob == NULL) {
        return;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ob->stmt[i]);
    }
    sqlite3_close(ob->db);
    free(ob);
}

const char *ar_outbox_errmsg(struct ar_outbox *ob)
{
    return sqlite3_errmsg(ob->db);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL) {
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : AR_EIO;
}

int ar_outbox_get(struct ar_outbox *ob, const char *key, enum ar_outbox_state *state,
                  char **message_id)
{
    sqlite3_stmt *st = ob->stmt[ST_GET];
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    enum ar_outbox_state s = AR_OUTBOX_NONE;
    char *mid = NULL;
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        const char *m = (const char *)sqlite3_column_text(st, 1);
        if (t != NULL && strcmp(t, "sent") == 0) {
            s = AR_OUTBOX_SENT;
            mid = ar_strdup(m);
        } else if (t != NULL && strcmp(t, "failed") == 0) {
            s = AR_OUTBOX_FAILED;
        } else {
            s = AR_OUTBOX_SENDING;
        }
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        return AR_EIO;
    }
    *state = s;
    *message_id = mid;
    return 0;
}

int ar_outbox_begin(struct ar_outbox *ob, const struct ar_outbox_entry *e)
{
    sqlite3_stmt *st = ob->stmt[ST_BEGIN];
    bind_text(st, 1, e->key);
    bind_text(st, 2, e->recipe);
    sqlite3_bind_int64(st, 3, e->run_id);
    bind_text(st, 4, e->message_id);
    bind_text(st, 5, e->recipients ? e->recipients : "[]");
    bind_text(st, 6, e->subject);
    sqlite3_bind_int64(st, 7, e->now_ms);
    if (step_done(st) != 0) {
        return AR_EIO;
    }
    return sqlite3_changes(ob->db) == 1 ? 0 : AR_EEXIST;
}

int ar_outbox_sent(struct ar_outbox *ob, const char *key, int64_t now_ms)
{
    sqlite3_stmt *st = ob->stmt[ST_SENT];
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, now_ms);
    return step_done(st);
}

int ar_outbox_failed(struct ar_outbox *ob, const char *key, const char *error, int64_t now_ms)
{
    sqlite3_stmt *st = ob->stmt[ST_FAILED];
    bind_text(st, 1, key);
    bind_text(st, 2, error);
    sqlite3_bind_int64(st, 3, now_ms);
    return step_done(st);
}
