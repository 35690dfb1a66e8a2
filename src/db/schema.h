/* The history database schema, as a list of migrations. Version N of the schema is
 * what migrations[0..N-1] build; PRAGMA user_version records N. Never edit a shipped
 * migration: append a new one. Documented in docs/history.md. */
#ifndef AR_DB_SCHEMA_H
#define AR_DB_SCHEMA_H

static const char *const ar__schema_migrations[] = {
    /* 1: runs, their logs and steps, per-recipe store. */
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  recipe TEXT NOT NULL,"
    "  trigger TEXT NOT NULL,"        /* cli, cron, webhook, poll, row, replay */
    "  status TEXT NOT NULL,"         /* queued running succeeded failed interrupted cancelled skipped */
    "  attempt INTEGER NOT NULL DEFAULT 1,"
    "  dry_run INTEGER NOT NULL DEFAULT 0,"
    "  queued_at INTEGER,"            /* unix ms */
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  duration_ms REAL,"
    "  input TEXT,"                   /* JSON, redacted */
    "  result TEXT,"                  /* JSON, redacted */
    "  error TEXT,"                   /* one line: 'TypeError: x is undefined' */
    "  error_stack TEXT,"
    "  replay_of INTEGER"
    ");"
    "CREATE INDEX runs_by_recipe ON runs(recipe, id);"
    "CREATE INDEX runs_by_status ON runs(status, id);"
    "CREATE INDEX runs_by_start ON runs(started_at);"
    "CREATE TABLE logs ("
    "  run_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  level TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE steps ("
    "  run_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"           /* http, sql, mail, store */
    "  name TEXT NOT NULL,"           /* 'GET https://api.trello.com/1/boards/x' (redacted) */
    "  started_at INTEGER NOT NULL,"
    "  duration_ms REAL NOT NULL,"
    "  status TEXT NOT NULL,"         /* ok, error, dry-run, or an HTTP status */
    "  attempts INTEGER NOT NULL DEFAULT 1,"
    "  detail TEXT,"                  /* JSON: request/response excerpts (truncated, redacted) */
    "  error TEXT,"
    "  PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE store ("
    "  recipe TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"          /* JSON */
    "  expires_at INTEGER,"           /* unix ms, NULL = never */
    "  PRIMARY KEY (recipe, key)"
    ") WITHOUT ROWID;",
    /* 2: the mail outbox: idempotency keys of mail.send (src/db/outbox.c). A key is global,
     * not per recipe: "a key already sent is never sent again". */
    "CREATE TABLE outbox ("
    "  key TEXT PRIMARY KEY,"
    "  recipe TEXT NOT NULL,"
    "  run_id INTEGER,"               /* the run that sent (or last tried to send) it */
    "  message_id TEXT,"              /* '<hex@domain>' of the last attempt */
    "  recipients TEXT NOT NULL,"     /* JSON array of bare addresses, bcc included */
    "  subject TEXT,"                 /* redacted */
    "  state TEXT NOT NULL CHECK (state IN ('sending','sent','failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 1,"
    "  error TEXT,"                   /* the last failure */
    "  created_at INTEGER NOT NULL,"  /* unix ms */
    "  updated_at INTEGER NOT NULL,"
    "  sent_at INTEGER"
    ") WITHOUT ROWID;"
    "CREATE INDEX outbox_by_state ON outbox(state, updated_at);",
    /* 3: the run queue of `autorun serve` (src/core/queue.c, docs/service.md). Queued runs are
     * rows with status 'queued'; a retry is a new row pointing at the attempt it retries. */
    "ALTER TABLE runs ADD COLUMN not_before INTEGER;" /* queued: not started before (unix ms) */
    "ALTER TABLE runs ADD COLUMN retry_of INTEGER;"   /* the run (attempt) this row retries */
    "CREATE TABLE deliveries ("       /* de-duplication keys: webhook delivery ids, poll items */
    "  key TEXT PRIMARY KEY,"         /* 'webhook /hooks/x <delivery id>' */
    "  recipe TEXT NOT NULL,"
    "  run_id INTEGER NOT NULL,"      /* the run the first delivery queued */
    "  seen_at INTEGER NOT NULL,"     /* unix ms */
    "  expires_at INTEGER"            /* unix ms, NULL = never forgotten */
    ") WITHOUT ROWID;"
    "CREATE INDEX deliveries_by_expiry ON deliveries(expires_at);"
    "CREATE TABLE cron_state ("       /* the last fire of each cron schedule */
    "  recipe TEXT NOT NULL,"
    "  schedule TEXT NOT NULL,"       /* the expression, then ' ' and the zone when one is set */
    "  last_fire INTEGER NOT NULL,"   /* unix ms of the scheduled time last fired (or skipped) */
    "  PRIMARY KEY (recipe, schedule)"
    ") WITHOUT ROWID;",
    /* 4: poll and newRow triggers (src/trigger/poller.c): each trigger's cursor and health,
     * and a bounded set of the item ids it has seen (the newest are kept). */
    "CREATE TABLE poll_state ("
    "  recipe TEXT NOT NULL,"
    "  trigger TEXT NOT NULL,"        /* 'poll zendesk.newTickets', 'row customers.customers.id' */
    "  cursor TEXT,"                  /* JSON the poll function returned, or NULL */
    "  baseline_at INTEGER,"          /* unix ms of the first successful poll; NULL before */
    "  last_poll_at INTEGER,"
    "  last_ok_at INTEGER,"
    "  errors INTEGER NOT NULL DEFAULT 0," /* failures in a row; 0 when the last poll worked */
    "  last_error TEXT,"              /* the last failure (redacted), kept after a recovery */
    "  next_poll_at INTEGER,"
    "  fired INTEGER NOT NULL DEFAULT 0," /* events queued so far */
    "  PRIMARY KEY (recipe, trigger)"
    ") WITHOUT ROWID;"
    "CREATE TABLE poll_seen ("
    "  id INTEGER PRIMARY KEY,"       /* insertion order: the oldest are trimmed first */
    "  recipe TEXT NOT NULL,"
    "  trigger TEXT NOT NULL,"
    "  item TEXT NOT NULL,"           /* the item's id as text */
    "  seen_at INTEGER NOT NULL,"     /* unix ms */
    "  UNIQUE (recipe, trigger, item)"
    ");"
    "CREATE INDEX poll_seen_by_age ON poll_seen(recipe, trigger, id);",
    /* 5: retention finds old runs through an index (src/db/history.c ar_history_prune), not a
     * scan of the whole table on the service's loop thread. */
    "CREATE INDEX runs_by_age ON runs(coalesce(finished_at, started_at, queued_at));",
    /* 6: nothing reads runs by start time alone (listing goes by id, retention by age), and
     * every run moved this index twice: one page less written per run. */
    "DROP INDEX runs_by_start;",
    /* 7: only the queue reads runs by status, and only queued and running ones (`history
     * --status` goes by id). Indexing every status moved each finished run's entry from the
     * running range into the middle of a large index: five pages written per run, where
     * this small index takes one. */
    "DROP INDEX runs_by_status;"
    "CREATE INDEX runs_live ON runs(status, id) WHERE status='queued' OR status='running';",
};

#define AR_SCHEMA_VERSION ((int)(sizeof(ar__schema_migrations) / sizeof(ar__schema_migrations[0])))

#endif
