/* PostgreSQL through libpq's asynchronous API driven by the loop (no threads): a
 * pool of up to four connections per database with FIFO waiters; a transaction pins
 * one connection until it ends. Compiled to nothing without AR_WITH_POSTGRES. */
#ifndef AR_DB_PG_H
#define AR_DB_PG_H

#include <stddef.h>
#include <uv.h>

#include "db/customer_db.h"

struct ar_pg_db;

/* url is postgres://... or postgresql://...; nothing connects before the first
 * request. A URL libpq cannot parse is refused with its reason in err. */
int ar_pg_db_create(uv_loop_t *loop, const char *name, const char *url, struct ar_pg_db **out,
                    char *err, size_t errlen);
void ar_pg_db_destroy(struct ar_pg_db *db);
void ar_pg_submit(struct ar_pg_db *db, struct ar_sql_req *req);
void ar_pg_cancel(struct ar_sql_req *req);
void ar_pg_tx_abandon(struct ar_sql_tx *tx);

#endif
