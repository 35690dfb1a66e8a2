/* The state database: runs, logs, steps and the per-recipe store in one SQLite file
 * (WAL). One connection, used only from the loop thread. */
#include "db/history.h"
#include "db/schema.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_RUN_INSERT,
    ST_RUN_FINISH,
    ST_LOG_INSERT,
    ST_STEP_INSERT,
    ST_STORE_GET,
    ST_STORE_SET,
    ST_STORE_DEL,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_RUN_INSERT] = "INSERT INTO runs (recipe, trigger, status, attempt, dry_run, queued_at, "
                      "started_at, input, replay_of) VALUES (?,?,?,?,?,?,?,?,?)",
    [ST_RUN_FINISH] = "UPDATE runs SET status=?, finished_at=?, duration_ms=?, result=?, "
                      "error=?, error_stack=? WHERE id=?",
    [ST_LOG_INSERT] = "INSERT INTO logs (run_id, seq, at, level, message) VALUES (?,?,?,?,?)",
    [ST_STEP_INSERT] = "INSERT INTO steps (run_id, seq, kind, name, started_at, duration_ms, "
                       "status, attempts, detail, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
    [ST_STORE_GET] = "SELECT value, expires_at FROM store WHERE recipe=? AND key=?",
    [ST_STORE_SET] = "INSERT INTO store (recipe, key, value, expires_at) VALUES (?,?,?,?) "
                     "ON CONFLICT(recipe, key) DO UPDATE SET value=excluded.value, "
                     "expires_at=excluded.expires_at",
    [ST_STORE_DEL] = "DELETE FROM store WHERE recipe=? AND key=?",
};

/* Statements of the run queue, prepared on first use (only the service needs them). */
enum queue_stmt_id {
    QST_INSERT,
    QST_BEGIN,
    QST_END,
    QST_DELIVERY_FIND,
    QST_DELIVERY_ADD,
    QST_CRON_LAST,
    QST_CRON_SET,
    QST_GET,
    QST_COUNT
};

static const char *const queue_stmt_sql[QST_COUNT] = {
    [QST_INSERT] = "INSERT INTO runs (recipe, trigger, status, attempt, queued_at, finished_at, "
                   "input, error, not_before, retry_of) VALUES (?,?,?,?,?,?,?,?,?,?)",
    [QST_BEGIN] = "UPDATE runs SET status='running', started_at=? WHERE id=? AND status='queued'",
    [QST_END] = "UPDATE runs SET status=?, error=?, finished_at=? WHERE id=? AND status='queued'",
    [QST_DELIVERY_FIND] = "SELECT run_id FROM deliveries WHERE key=? AND "
                          "(expires_at IS NULL OR expires_at > ?)",
    [QST_DELIVERY_ADD] = "INSERT OR REPLACE INTO deliveries (key, recipe, run_id, seen_at, "
                         "expires_at) VALUES (?,?,?,?,?)",
    [QST_CRON_LAST] = "SELECT last_fire FROM cron_state WHERE recipe=? AND schedule=?",
    [QST_CRON_SET] = "INSERT INTO cron_state (recipe, schedule, last_fire) VALUES (?,?,?) "
                     "ON CONFLICT(recipe, schedule) DO UPDATE SET last_fire=excluded.last_fire",
    /* The queue reads every row it starts: parsing this once per row was most of a start. */
    [QST_GET] = "SELECT id, recipe, trigger, status, attempt, dry_run, queued_at, started_at, "
                "finished_at, duration_ms, input, result, error, error_stack, replay_of "
                "FROM runs WHERE id=?",
};

struct ar_history {
    sqlite3 *db; /* owned */
    sqlite3_stmt *stmt[ST_COUNT]; /* owned */
    sqlite3_stmt *qstmt[QST_COUNT]; /* owned; NULL until first used */
    int in_batch;
    int durable;        /* ar_history_set_durable(h, 1) */
    int defer_sync;     /* ar_history_defer_sync(): durable commits are synced by the caller */
    uint64_t commits;   /* commits that wrote something, for ar_history_sync() callers */
    char *wal_path;     /* owned; set by ar_history_defer_sync(), then read-only */
    char *db_path;      /* owned; likewise */
    int wal_pages;      /* frames in the WAL after the last commit (deferred mode) */
    sqlite3 *ckpt_db;   /* owned; ar_history_checkpoint()'s connection, opened on first use */
};

#define RUN_COLUMNS                                                                              \
    "id, recipe, trigger, status, attempt, dry_run, queued_at, started_at, finished_at, "        \
    "duration_ms, input, result, error, error_stack, replay_of"

static int exec(struct ar_history *h, const char *sql)
{
    return sqlite3_exec(h->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : AR_EIO;
}

static int migrate(struct ar_history *h, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (version > AR_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "history.db has schema version %d, newer than this autorun (%d): upgrade autorun",
                 version, AR_SCHEMA_VERSION);
        return AR_EINVAL;
    }
    for (int v = version; v < AR_SCHEMA_VERSION; v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
        if (exec(h, "BEGIN IMMEDIATE") != 0 || exec(h, ar__schema_migrations[v]) != 0 ||
            exec(h, pragma) != 0 || exec(h, "COMMIT") != 0) {
            snprintf(err, errlen, "history.db: migration to version %d failed: %s", v + 1,
                     sqlite3_errmsg(h->db));
            exec(h, "ROLLBACK");
            return AR_EIO;
        }
    }
    return 0;
}

/* Two system calls of SQLite's unix VFS are replaced (xSetSystemCall), for `autorun run`:
 *
 * - mmap(): the first process to open history.db rebuilds its WAL index, writing every 4 KiB
 *   page of the -shm mapping, one page fault each, and faults are costly on virtual machines
 *   (about 10 us). Shared writable mappings are mapped in at once.
 * - fchown(): run as root, SQLite gives the -wal and -shm files the database's owner at
 *   every open; a change of owner to the same owner still writes the inode. Skipped when the
 *   file has that owner already. */
static sqlite3_syscall_ptr vfs_mmap, vfs_fchown;

static void *populating_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *(*real)(void *, size_t, int, int, int, off_t) =
        (void *(*)(void *, size_t, int, int, int, off_t))vfs_mmap;
    void *p = real(addr, len, prot, flags, fd, off);
#if defined(MADV_POPULATE_WRITE)
    if (p != MAP_FAILED && (flags & MAP_SHARED) && (prot & PROT_WRITE)) {
        madvise(p, len, MADV_POPULATE_WRITE);
    }
#endif
    return p;
}

static int fchown_if_needed(int fd, uid_t uid, gid_t gid)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_uid == uid && st.st_gid == gid) {
        return 0;
    }
    return ((int (*)(int, uid_t, gid_t))vfs_fchown)(fd, uid, gid);
}

static void replace_vfs_calls(void)
{
    sqlite3_vfs *vfs = sqlite3_vfs_find("unix");
    if (vfs == NULL || vfs->iVersion < 3) {
        return;
    }
    if ((vfs_mmap = vfs->xGetSystemCall(vfs, "mmap")) != NULL) {
        vfs->xSetSystemCall(vfs, "mmap", (sqlite3_syscall_ptr)populating_mmap);
    }
    if ((vfs_fchown = vfs->xGetSystemCall(vfs, "fchown")) != NULL) {
        vfs->xSetSystemCall(vfs, "fchown", (sqlite3_syscall_ptr)fchown_if_needed);
    }
}

int ar_history_open(const char *home, struct ar_history **out, char *err, size_t errlen)
{
    struct stat st;
    if (stat(home, &st) != 0) {
        int rc = ar_mkdir_p(home, 0700);
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot create state directory: %s", home, ar_strerror(rc));
            return rc;
        }
    }
    char *path = ar_path_join(home, "history.db");
    /* Create the file ourselves so it is 0600 from the first byte; SQLite gives the
     * -wal and -shm files the same mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(path);
        return -errno;
    }
    int created = fstat(fd, &st) == 0 && st.st_size == 0;
    close(fd);

    /* SQLite counts every allocation under a global mutex unless told not to; autorun never
     * asks it for memory statistics. Only possible before SQLite's first use, hence here. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
    pthread_once(&vfs_once, replace_vfs_calls);
    struct ar_history *h = ar_calloc(1, sizeof(*h));
    int rc = 0;
    if (sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(h->db));
        rc = AR_EIO;
        goto out;
    }
    sqlite3_busy_timeout(h->db, 10000);
    /* Keep the -wal file between processes: deleting and re-creating it costs a
     * directory fsync on every short `autorun run`. */
    int persist = 1;
    sqlite3_file_control(h->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    /* auto_vacuum must be chosen before the first table exists (setting it later would
     * write, and sync, on every open); incremental lets pruning give space back without
     * a full VACUUM. The WAL is bounded where it is checkpointed (bound_wal()). */
    if ((created && exec(h, "PRAGMA auto_vacuum=INCREMENTAL") != 0) ||
        (created && exec(h, "PRAGMA journal_mode=WAL") != 0) || /* persistent in the file */
        exec(h, "PRAGMA synchronous=NORMAL") != 0) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(h->db));
        rc = AR_EIO;
        goto out;
    }
    if ((rc = migrate(h, err, errlen)) != 0) {
        goto out;
    }
out:
    free(path);
    if (rc != 0) {
        ar_history_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* Closing the last connection normally checkpoints the WAL into the database: two fsyncs,
 * then a third when the next process restarts the WAL, which is most of what a short
 * `autorun run` costs. While the WAL is small the checkpoint is left to a later process
 * (or to the service's automatic checkpoints); the next open then rebuilds the WAL index
 * by reading at most this much, about 3.5 us per 4 KiB frame. The checkpoint costs about
 * 6.5 ms of fsyncs, and a short run writes four frames: near 512 KiB the two costs per run
 * balance. Committed runs are in the WAL either way. */
#define WAL_KEEP_ON_CLOSE_BYTES (512 * 1024)

/* A checkpoint that finds every frame copied truncates the WAL to this size (to zero when the
 * last connection closes), so a burst of writes does not leave a large file behind. Set only
 * on connections that checkpoint: the service's, and a closing one whose WAL is due. */
static void bound_wal(struct ar_history *h)
{
    exec(h, "PRAGMA journal_size_limit=67108864");
}

static int wal_is_small(struct ar_history *h)
{
    const char *db = sqlite3_db_filename(h->db, "main");
    if (db == NULL || *db == '\0') {
        return 0;
    }
    char *wal = ar_asprintf("%s-wal", db);
    struct stat st;
    int small = stat(wal, &st) == 0 && st.st_size < WAL_KEEP_ON_CLOSE_BYTES;
    free(wal);
    return small;
}

static void commit_for_good(struct ar_history *h)
{
    ar_history_commit(h);
    if (ar_history_sync_deferred(h)) {
        /* The last commits are durable like every other: nobody is left to sync them. */
        ar_history_sync(h);
    }
}

/* Closes what is committed: a small WAL is kept for the next process, a larger one is
 * checkpointed and truncated. */
static void close_connection(struct ar_history *h, int wal_small)
{
    if (wal_small) {
        sqlite3_db_config(h->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    } else {
        bound_wal(h);
    }
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(h->stmt[i]);
    }
    for (int i = 0; i < QST_COUNT; i++) {
        sqlite3_finalize(h->qstmt[i]);
    }
    sqlite3_close(h->db);
    sqlite3_close(h->ckpt_db);
    free(h->wal_path);
    free(h->db_path);
    free(h);
}

void ar_history_exit(struct ar_history *h)
{
    if (h == NULL) {
        return;
    }
    commit_for_good(h);
    int small = wal_is_small(h);
    if (h->ckpt_db == NULL && small) {
        return;
    }
    close_connection(h, small);
}

void ar_history_close(struct ar_history *h)
{
    if (h == NULL) {
        return;
    }
    commit_for_good(h);
    close_connection(h, wal_is_small(h));
}

const char *ar_history_errmsg(struct ar_history *h)
{
    return sqlite3_errmsg(h->db);
}

/* Statements are prepared on first use: a short `autorun run` needs only a few of them,
 * and parsing SQL is a visible part of its start-up. */
static sqlite3_stmt *stmt(struct ar_history *h, enum stmt_id id)
{
    if (h->stmt[id] == NULL &&
        sqlite3_prepare_v3(h->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &h->stmt[id],
                           NULL) != SQLITE_OK) {
        ar_log_error("history", "cannot prepare '%s': %s", stmt_sql[id], sqlite3_errmsg(h->db));
        return NULL;
    }
    return h->stmt[id];
}

static int step_done(sqlite3_stmt *st)
{
    if (st == NULL) {
        return AR_EIO;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : AR_EIO;
}

/* A one-off statement: steps it once, finalizes it, 0 when it ran to completion. */
static int step_once(sqlite3_stmt *st)
{
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : AR_EIO;
}

/* Calls row(st, data) for each row of a one-off statement until row returns non-zero, then
 * finalizes it. Returns what row returned, AR_EIO if a step failed, else 0. */
typedef int (*row_fn)(sqlite3_stmt *st, void *data);

static int each_row(sqlite3_stmt *st, row_fn row, void *data)
{
    int rc = 0, s = SQLITE_DONE;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = row(st, data);
    }
    if (rc == 0 && s != SQLITE_DONE) {
        rc = AR_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Every write goes through here: it opens the grouped transaction on first use. */
static int batch(struct ar_history *h)
{
    if (h->in_batch) {
        return 0;
    }
    if (step_done(stmt(h, ST_BEGIN)) != 0) {
        return AR_EIO;
    }
    h->in_batch = 1;
    return 0;
}

int ar_history_commit(struct ar_history *h)
{
    if (!h->in_batch) {
        return 0;
    }
    h->in_batch = 0;
    if (step_done(stmt(h, ST_COMMIT)) != 0) {
        exec(h, "ROLLBACK");
        return AR_EIO;
    }
    h->commits++;
    return 0;
}

int ar_history_in_batch(const struct ar_history *h)
{
    return h->in_batch;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s) {
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static void bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
    if (ms) {
        sqlite3_bind_int64(st, i, ms);
    } else {
        sqlite3_bind_null(st, i);
    }
}

int ar_history_run_insert(struct ar_history *h, const struct ar_run_record *r, int64_t *id)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_RUN_INSERT);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, r->recipe);
    bind_text(st, 2, r->trigger);
    bind_text(st, 3, r->status);
    sqlite3_bind_int(st, 4, r->attempt > 0 ? r->attempt : 1);
    sqlite3_bind_int(st, 5, r->dry_run);
    bind_time(st, 6, r->queued_at);
    bind_time(st, 7, r->started_at);
    bind_text(st, 8, r->input);
    if (r->replay_of) {
        sqlite3_bind_int64(st, 9, r->replay_of);
    }
    if (step_done(st) != 0) {
        return AR_EIO;
    }
    *id = sqlite3_last_insert_rowid(h->db);
    return 0;
}

int ar_history_run_finish(struct ar_history *h, const struct ar_run_record *r)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_RUN_FINISH);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, r->status);
    bind_time(st, 2, r->finished_at);
    sqlite3_bind_double(st, 3, r->duration_ms);
    bind_text(st, 4, r->result);
    bind_text(st, 5, r->error);
    bind_text(st, 6, r->error_stack);
    sqlite3_bind_int64(st, 7, r->id);
    return step_done(st);
}

int ar_history_log_insert(struct ar_history *h, int64_t run_id, int seq,
                          const struct ar_log_record *l)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_LOG_INSERT);
    if (st == NULL) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, seq);
    sqlite3_bind_int64(st, 3, l->at);
    bind_text(st, 4, l->level);
    bind_text(st, 5, l->message);
    return step_done(st);
}

int ar_history_step_insert(struct ar_history *h, int64_t run_id, const struct ar_step_record *s)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_STEP_INSERT);
    if (st == NULL) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, s->seq);
    bind_text(st, 3, s->kind);
    bind_text(st, 4, s->name);
    sqlite3_bind_int64(st, 5, s->started_at);
    sqlite3_bind_double(st, 6, s->duration_ms);
    bind_text(st, 7, s->status);
    sqlite3_bind_int(st, 8, s->attempts > 0 ? s->attempts : 1);
    bind_text(st, 9, s->detail);
    bind_text(st, 10, s->error);
    return step_done(st);
}

int ar_history_mark_interrupted(struct ar_history *h, int64_t *count)
{
    if (batch(h) != 0 ||
        exec(h, "UPDATE runs SET status='interrupted', error='the process stopped during the run'"
                " WHERE status='running'") != 0) {
        return AR_EIO;
    }
    *count = sqlite3_changes(h->db);
    return 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? ar_strdup((const char *)t) : NULL;
}

static void read_run(sqlite3_stmt *st, struct ar_run_record *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->recipe = col_text(st, 1);
    r->trigger = col_text(st, 2);
    r->status = col_text(st, 3);
    r->attempt = sqlite3_column_int(st, 4);
    r->dry_run = sqlite3_column_int(st, 5);
    r->queued_at = sqlite3_column_int64(st, 6);
    r->started_at = sqlite3_column_int64(st, 7);
    r->finished_at = sqlite3_column_int64(st, 8);
    r->duration_ms = sqlite3_column_double(st, 9);
    r->input = col_text(st, 10);
    r->result = col_text(st, 11);
    r->error = col_text(st, 12);
    r->error_stack = col_text(st, 13);
    r->replay_of = sqlite3_column_int64(st, 14);
}

void ar_run_record_free(struct ar_run_record *r)
{
    free(r->recipe);
    free(r->trigger);
    free(r->status);
    free(r->input);
    free(r->result);
    free(r->error);
    free(r->error_stack);
    memset(r, 0, sizeof(*r));
}

struct run_rows {
    ar_run_row_cb cb;
    void *data;
};

static int run_row(sqlite3_stmt *st, void *data)
{
    struct run_rows *rows = data;
    struct ar_run_record r;
    read_run(st, &r);
    int rc = rows->cb(rows->data, &r);
    ar_run_record_free(&r);
    return rc;
}

int ar_history_list(struct ar_history *h, const struct ar_history_filter *f, ar_run_row_cb cb,
                    void *data)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT " RUN_COLUMNS " FROM runs WHERE (?1 IS NULL OR recipe=?1) AND "
                      "(?2 IS NULL OR status=?2) AND (?3 = 0 OR started_at >= ?3 OR "
                      "queued_at >= ?3) ORDER BY id DESC LIMIT ?4";
    if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, f->recipe);
    bind_text(st, 2, f->status);
    sqlite3_bind_int64(st, 3, f->since_ms);
    sqlite3_bind_int(st, 4, f->limit > 0 ? f->limit : 20);
    return each_row(st, run_row, &(struct run_rows){cb, data});
}

static int get_one(struct ar_history *h, const char *sql, const char *arg, int64_t id,
                   struct ar_run_record *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    if (arg) {
        bind_text(st, 1, arg);
    } else {
        sqlite3_bind_int64(st, 1, id);
    }
    int rc = AR_ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        read_run(st, out);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static sqlite3_stmt *queue_stmt(struct ar_history *h, enum queue_stmt_id id);

int ar_history_get(struct ar_history *h, int64_t id, struct ar_run_record *out)
{
    sqlite3_stmt *st = queue_stmt(h, QST_GET);
    if (st == NULL) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st), rc = AR_ENOENT;
    if (s == SQLITE_ROW) {
        read_run(st, out);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = AR_EIO;
    }
    sqlite3_reset(st);
    return rc;
}

int ar_history_last(struct ar_history *h, const char *recipe, struct ar_run_record *out)
{
    return get_one(h,
                   "SELECT " RUN_COLUMNS " FROM runs WHERE recipe=? ORDER BY id DESC LIMIT 1",
                   recipe, 0, out);
}

struct log_rows {
    ar_log_row_cb cb;
    void *data;
};

static int log_row(sqlite3_stmt *st, void *data)
{
    struct log_rows *rows = data;
    struct ar_log_record l = {
        .at = sqlite3_column_int64(st, 0),
        .level = (const char *)sqlite3_column_text(st, 1),
        .message = (const char *)sqlite3_column_text(st, 2),
    };
    return rows->cb(rows->data, &l);
}

int ar_history_logs(struct ar_history *h, int64_t id, ar_log_row_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "SELECT at, level, message FROM logs WHERE run_id=? ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, id);
    return each_row(st, log_row, &(struct log_rows){cb, data});
}

struct step_rows {
    ar_step_row_cb cb;
    void *data;
};

static int step_row(sqlite3_stmt *st, void *data)
{
    struct step_rows *rows = data;
    struct ar_step_record s = {
        .seq = sqlite3_column_int(st, 0),
        .kind = (const char *)sqlite3_column_text(st, 1),
        .name = (const char *)sqlite3_column_text(st, 2),
        .started_at = sqlite3_column_int64(st, 3),
        .duration_ms = sqlite3_column_double(st, 4),
        .status = (const char *)sqlite3_column_text(st, 5),
        .attempts = sqlite3_column_int(st, 6),
        .detail = (const char *)sqlite3_column_text(st, 7),
        .error = (const char *)sqlite3_column_text(st, 8),
    };
    return rows->cb(rows->data, &s);
}

int ar_history_steps(struct ar_history *h, int64_t id, ar_step_row_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT seq, kind, name, started_at, duration_ms, status, attempts, "
                           "detail, error FROM steps WHERE run_id=? ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, id);
    return each_row(st, step_row, &(struct step_rows){cb, data});
}

/* Deletes the runs matching cond (?1 bound to text, else to id) with their logs and steps;
 * *count: how many runs. */
static int delete_runs(struct ar_history *h, const char *cond, int64_t id, const char *text,
                       int64_t *count)
{
    static const char *const del[] = {
        "DELETE FROM logs WHERE run_id IN (SELECT id FROM runs WHERE %s)",
        "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE %s)",
        "DELETE FROM runs WHERE %s",
    };
    if (batch(h) != 0) {
        return AR_EIO;
    }
    for (size_t i = 0; i < AR_ARRAY_SIZE(del); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), del[i], cond);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK) {
            return AR_EIO;
        }
        if (text) {
            bind_text(st, 1, text);
        } else {
            sqlite3_bind_int64(st, 1, id);
        }
        if (step_once(st) != 0) {
            return AR_EIO;
        }
        if (count) {
            *count = sqlite3_changes(h->db);
        }
    }
    return 0;
}

int ar_history_prune(struct ar_history *h, int64_t before_ms, int64_t *deleted)
{
    int64_t n = 0;
    if (delete_runs(h,
                    "coalesce(finished_at, started_at, queued_at) < ?1 AND status NOT IN "
                    "('queued','running')",
                    before_ms, NULL, &n) != 0) {
        return AR_EIO;
    }
    exec(h, "DELETE FROM store WHERE expires_at IS NOT NULL AND expires_at < "
            "CAST(strftime('%s','now') AS INTEGER) * 1000");
    int64_t freed = n + sqlite3_changes(h->db);
    if (ar_history_commit(h) != 0) {
        return AR_EIO;
    }
    /* Give the freed pages back to the file system, and cap the WAL. Only when something was
     * deleted: the TRUNCATE checkpoint holds the loop thread while it copies the whole WAL, a
     * stall of 100 ms or more that the service's periodic maintenance must not cause for
     * nothing. */
    if (freed > 0) {
        exec(h, "PRAGMA incremental_vacuum");
        exec(h, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    *deleted = n;
    return 0;
}

int ar_store_get(struct ar_history *h, const char *recipe, const char *key, int64_t now_ms,
                 char **json)
{
    sqlite3_stmt *st = stmt(h, ST_STORE_GET);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, key);
    int rc = AR_ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(st, 1);
        if (sqlite3_column_type(st, 1) == SQLITE_NULL || exp > now_ms) {
            *json = col_text(st, 0);
            rc = 0;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int ar_store_set(struct ar_history *h, const char *recipe, const char *key, const char *json,
                 int64_t expires_at)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_STORE_SET);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, key);
    bind_text(st, 3, json);
    bind_time(st, 4, expires_at);
    return step_done(st);
}

int ar_store_del(struct ar_history *h, const char *recipe, const char *key)
{
    if (batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_stmt *st = stmt(h, ST_STORE_DEL);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, key);
    return step_done(st);
}

/* ---- The run queue of `autorun serve` ---- */

/* FULL makes every commit sync the WAL before it returns; with the sync deferred the commit
 * only writes it (NORMAL) and ar_history_sync() does the same fdatasync later, off the loop. */
static int apply_synchronous(struct ar_history *h)
{
    return exec(h, h->durable && !h->defer_sync ? "PRAGMA synchronous=FULL"
                                                : "PRAGMA synchronous=NORMAL");
}

int ar_history_set_durable(struct ar_history *h, int full)
{
    h->durable = full != 0;
    return apply_synchronous(h);
}

/* SQLite's automatic checkpoint runs inside a commit, on the loop thread, and syncs twice. With
 * the sync deferred the queue checkpoints on a worker instead (ar_history_checkpoint()); this
 * hook only notes the WAL's size, and checkpoints here, the old way, only when the worker's
 * passive checkpoints cannot keep up with a steady stream of commits, so the WAL stays bounded. */
#define WAL_FORCE_CHECKPOINT_PAGES (4 * AR_HISTORY_CHECKPOINT_PAGES)

static int wal_hook_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct ar_history *h = arg;
    h->wal_pages = pages;
    if (pages >= WAL_FORCE_CHECKPOINT_PAGES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    return SQLITE_OK;
}

int ar_history_defer_sync(struct ar_history *h)
{
    if (h->defer_sync) {
        return 0;
    }
    const char *db = sqlite3_db_filename(h->db, "main");
    if (db == NULL || *db == '\0') {
        return AR_EINVAL;
    }
    /* Which WAL file a commit went to must be on disk too: SQLite syncs the directory when it
     * creates the WAL only at the WAL's first sync, which is now ours to make. */
    char *dir = ar_strdup(db);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *(slash == dir ? slash + 1 : slash) = '\0';
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    free(dir);
    h->wal_path = ar_asprintf("%s-wal", db);
    h->db_path = ar_strdup(db);
    h->defer_sync = 1;
    bound_wal(h);
    sqlite3_wal_hook(h->db, wal_hook_cb, h);
    int rc = apply_synchronous(h);
    if (rc == 0) {
        rc = ar_history_sync(h);
    }
    return rc;
}

int ar_history_sync_deferred(const struct ar_history *h)
{
    return h->durable && h->defer_sync;
}

uint64_t ar_history_commits(const struct ar_history *h)
{
    return h->commits;
}

int ar_history_wal_pages(const struct ar_history *h)
{
    return h->defer_sync ? h->wal_pages : 0;
}

int ar_history_checkpoint(struct ar_history *h)
{
    if (h->db_path == NULL) {
        return 0;
    }
    if (h->ckpt_db == NULL) {
        if (sqlite3_open_v2(h->db_path, &h->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
            sqlite3_close(h->ckpt_db);
            h->ckpt_db = NULL;
            return AR_EIO;
        }
        /* Like the service's own connection: the WAL is synced before pages are copied into
         * the database, and the database after. */
        sqlite3_exec(h->ckpt_db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    }
    /* Passive: it copies what it can without waiting for the loop thread's writes. */
    int rc = sqlite3_wal_checkpoint_v2(h->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : AR_EIO;
}

int ar_history_sync(struct ar_history *h)
{
    if (h->wal_path == NULL) {
        return 0;
    }
    /* Opened by name each time: an fsync reaches the file, whichever descriptor wrote it, and
     * a WAL that SQLite removed and made again is still the one found. No WAL means every
     * commit was checkpointed into the database file, which SQLite synced itself. */
    int fd = open(h->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : AR_EIO;
    }
    int rc = fdatasync(fd) == 0 ? 0 : AR_EIO;
    close(fd);
    return rc;
}

static sqlite3_stmt *queue_stmt(struct ar_history *h, enum queue_stmt_id id)
{
    if (h->qstmt[id] == NULL && sqlite3_prepare_v3(h->db, queue_stmt_sql[id], -1,
                                                   SQLITE_PREPARE_PERSISTENT, &h->qstmt[id],
                                                   NULL) != SQLITE_OK) {
        return NULL;
    }
    return h->qstmt[id];
}

int ar_history_queue_insert(struct ar_history *h, const struct ar_queue_record *r, int64_t *id)
{
    sqlite3_stmt *st = queue_stmt(h, QST_INSERT);
    if (st == NULL || batch(h) != 0) {
        return AR_EIO;
    }
    int skipped = r->status && strcmp(r->status, "queued") != 0;
    bind_text(st, 1, r->recipe);
    bind_text(st, 2, r->trigger);
    bind_text(st, 3, r->status ? r->status : "queued");
    sqlite3_bind_int(st, 4, r->attempt > 0 ? r->attempt : 1);
    bind_time(st, 5, r->queued_at);
    bind_time(st, 6, skipped ? r->queued_at : 0);
    bind_text(st, 7, r->input);
    bind_text(st, 8, r->error);
    bind_time(st, 9, r->not_before);
    bind_time(st, 10, r->retry_of);
    if (step_done(st) != 0) {
        return AR_EIO;
    }
    *id = sqlite3_last_insert_rowid(h->db);
    return 0;
}

int ar_history_run_begin(struct ar_history *h, int64_t id, int64_t started_at)
{
    sqlite3_stmt *st = queue_stmt(h, QST_BEGIN);
    if (st == NULL || batch(h) != 0) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, started_at);
    sqlite3_bind_int64(st, 2, id);
    if (step_done(st) != 0) {
        return AR_EIO;
    }
    return sqlite3_changes(h->db) == 1 ? 0 : AR_ENOENT;
}

int ar_history_run_end(struct ar_history *h, int64_t id, const char *status, const char *error,
                       int64_t at)
{
    sqlite3_stmt *st = queue_stmt(h, QST_END);
    if (st == NULL || batch(h) != 0) {
        return AR_EIO;
    }
    bind_text(st, 1, status);
    bind_text(st, 2, error);
    sqlite3_bind_int64(st, 3, at);
    sqlite3_bind_int64(st, 4, id);
    return step_done(st);
}

struct queued_rows {
    ar_queued_row_cb cb;
    void *data;
};

static int queued_row(sqlite3_stmt *st, void *data)
{
    struct queued_rows *rows = data;
    return rows->cb(rows->data, sqlite3_column_int64(st, 0),
                    (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2),
                    sqlite3_column_int64(st, 3));
}

int ar_history_queued(struct ar_history *h, ar_queued_row_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT id, recipe, attempt, not_before FROM runs WHERE status='queued' "
                           "ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    return each_row(st, queued_row, &(struct queued_rows){cb, data});
}

int ar_history_interrupt_running(struct ar_history *h, ar_run_row_cb cb, void *data,
                                 int64_t *count)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT " RUN_COLUMNS " FROM runs WHERE status='running' ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    int rc = each_row(st, run_row, &(struct run_rows){cb, data});
    return rc != 0 ? rc : ar_history_mark_interrupted(h, count);
}

/* Runs a query of at most one row: its first column into *out (0), no row (AR_ENOENT) or
 * an error (AR_EIO). The statement is reset for its next use. */
static int step_int64(sqlite3_stmt *st, int64_t *out)
{
    int s = sqlite3_step(st), rc = AR_ENOENT;
    if (s == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = AR_EIO;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int ar_history_delivery_find(struct ar_history *h, const char *key, int64_t now_ms,
                             int64_t *run_id)
{
    sqlite3_stmt *st = queue_stmt(h, QST_DELIVERY_FIND);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, now_ms);
    return step_int64(st, run_id);
}

int ar_history_delivery_add(struct ar_history *h, const char *key, const char *recipe,
                            int64_t run_id, int64_t seen_at, int64_t expires_at)
{
    sqlite3_stmt *st = queue_stmt(h, QST_DELIVERY_ADD);
    if (st == NULL || batch(h) != 0) {
        return AR_EIO;
    }
    bind_text(st, 1, key);
    bind_text(st, 2, recipe);
    sqlite3_bind_int64(st, 3, run_id);
    sqlite3_bind_int64(st, 4, seen_at);
    bind_time(st, 5, expires_at);
    return step_done(st);
}

int ar_history_delivery_prune(struct ar_history *h, int64_t now_ms, int64_t *deleted)
{
    sqlite3_stmt *st;
    if (batch(h) != 0 ||
        sqlite3_prepare_v2(h->db,
                           "DELETE FROM deliveries WHERE expires_at IS NOT NULL AND expires_at <= ?",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    if (step_once(st) != 0) {
        return AR_EIO;
    }
    *deleted = sqlite3_changes(h->db);
    return 0;
}

int ar_history_cron_last(struct ar_history *h, const char *recipe, const char *schedule,
                         int64_t *last_ms)
{
    sqlite3_stmt *st = queue_stmt(h, QST_CRON_LAST);
    if (st == NULL) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, schedule);
    return step_int64(st, last_ms);
}

int ar_history_cron_set(struct ar_history *h, const char *recipe, const char *schedule,
                        int64_t last_ms)
{
    sqlite3_stmt *st = queue_stmt(h, QST_CRON_SET);
    if (st == NULL || batch(h) != 0) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, schedule);
    sqlite3_bind_int64(st, 3, last_ms);
    return step_done(st);
}

/* ---- Poll and newRow triggers ---- */

void ar_poll_state_free(struct ar_poll_state *st)
{
    if (st == NULL) {
        return;
    }
    free(st->trigger);
    free(st->cursor);
    free(st->last_error);
    memset(st, 0, sizeof(*st));
}

#define POLL_COLUMNS                                                                             \
    "trigger, cursor, baseline_at, last_poll_at, last_ok_at, errors, last_error, next_poll_at, " \
    "fired"

static void read_poll(sqlite3_stmt *st, struct ar_poll_state *out)
{
    memset(out, 0, sizeof(*out));
    out->trigger = col_text(st, 0);
    out->cursor = col_text(st, 1);
    out->baseline_at = sqlite3_column_int64(st, 2);
    out->last_poll_at = sqlite3_column_int64(st, 3);
    out->last_ok_at = sqlite3_column_int64(st, 4);
    out->errors = sqlite3_column_int(st, 5);
    out->last_error = col_text(st, 6);
    out->next_poll_at = sqlite3_column_int64(st, 7);
    out->fired = sqlite3_column_int64(st, 8);
}

int ar_history_poll_get(struct ar_history *h, const char *recipe, const char *trigger,
                        struct ar_poll_state *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT " POLL_COLUMNS " FROM poll_state WHERE recipe=? AND trigger=?",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, trigger);
    int s = sqlite3_step(st), rc = AR_ENOENT;
    if (s == SQLITE_ROW) {
        read_poll(st, out);
        rc = 0;
    } else if (s != SQLITE_DONE) {
        rc = AR_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int ar_history_poll_put(struct ar_history *h, const char *recipe, const char *trigger,
                        const struct ar_poll_state *p)
{
    sqlite3_stmt *st;
    if (batch(h) != 0 ||
        sqlite3_prepare_v2(h->db,
                           "INSERT OR REPLACE INTO poll_state (recipe, " POLL_COLUMNS
                           ") VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, trigger);
    bind_text(st, 3, p->cursor);
    bind_time(st, 4, p->baseline_at);
    bind_time(st, 5, p->last_poll_at);
    bind_time(st, 6, p->last_ok_at);
    sqlite3_bind_int(st, 7, p->errors);
    bind_text(st, 8, p->last_error);
    bind_time(st, 9, p->next_poll_at);
    sqlite3_bind_int64(st, 10, p->fired);
    return step_once(st);
}

struct poll_rows {
    ar_poll_row_cb cb;
    void *data;
};

static int poll_row(sqlite3_stmt *st, void *data)
{
    struct poll_rows *rows = data;
    struct ar_poll_state p;
    read_poll(st, &p);
    int rc = rows->cb(rows->data, &p);
    ar_poll_state_free(&p);
    return rc;
}

int ar_history_poll_list(struct ar_history *h, const char *recipe, ar_poll_row_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT " POLL_COLUMNS " FROM poll_state WHERE recipe=? ORDER BY trigger",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    return each_row(st, poll_row, &(struct poll_rows){cb, data});
}

int ar_history_poll_seen(struct ar_history *h, const char *recipe, const char *trigger,
                         const char *item)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT 1 FROM poll_seen WHERE recipe=? AND trigger=? AND item=?", -1,
                           &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, trigger);
    bind_text(st, 3, item);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_ROW ? 0 : s == SQLITE_DONE ? AR_ENOENT : AR_EIO;
}

int ar_history_poll_see(struct ar_history *h, const char *recipe, const char *trigger,
                        const char *item, int64_t at)
{
    sqlite3_stmt *st;
    if (batch(h) != 0 ||
        sqlite3_prepare_v2(h->db,
                           "INSERT OR IGNORE INTO poll_seen (recipe, trigger, item, seen_at) "
                           "VALUES (?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, trigger);
    bind_text(st, 3, item);
    sqlite3_bind_int64(st, 4, at);
    return step_once(st);
}

int ar_history_poll_trim(struct ar_history *h, const char *recipe, const char *trigger,
                         int64_t keep)
{
    sqlite3_stmt *st;
    if (batch(h) != 0 ||
        sqlite3_prepare_v2(h->db,
                           "DELETE FROM poll_seen WHERE recipe=?1 AND trigger=?2 AND id <= "
                           "(SELECT id FROM poll_seen WHERE recipe=?1 AND trigger=?2 "
                           "ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                           -1, &st, NULL) != SQLITE_OK) {
        return AR_EIO;
    }
    bind_text(st, 1, recipe);
    bind_text(st, 2, trigger);
    sqlite3_bind_int64(st, 3, keep);
    return step_once(st);
}

int ar_history_run_delete(struct ar_history *h, int64_t id)
{
    return delete_runs(h, "id=?1", id, NULL, NULL);
}

int ar_history_run_delete_running(struct ar_history *h, const char *trigger, int64_t *count)
{
    int64_t n = 0;
    int rc = delete_runs(h, "trigger=?1 AND status='running'", 0, trigger, &n);
    if (rc == 0) {
        *count = n;
    }
    return rc;
}
