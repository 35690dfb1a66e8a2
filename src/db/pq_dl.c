/* libpq, opened on first use (see core/dynlib.h): the functions autorun calls. libpq and its
 * dependencies (Kerberos, LDAP, OpenSSL) cost more to load than a whole `autorun run`. */
#ifdef AR_WITH_POSTGRES
#include <libpq-fe.h>

#include "core/dynlib.h"

static struct ar_dynlib libpq = {.sonames = (const char *const[]){"libpq.so.5", NULL}};

/* Connections */
AR_DYNLIB_FN(libpq, PGconn *, PQconnectStart, (const char *conninfo), (conninfo))
AR_DYNLIB_FN(libpq, PGconn *, PQconnectStartParams,
             (const char *const *keywords, const char *const *values, int expand_dbname),
             (keywords, values, expand_dbname))
AR_DYNLIB_FN(libpq, PostgresPollingStatusType, PQconnectPoll, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, void, PQfinish, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, ConnStatusType, PQstatus, (const PGconn *conn), (conn))
AR_DYNLIB_FN(libpq, PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn))
AR_DYNLIB_FN(libpq, char *, PQerrorMessage, (const PGconn *conn), (conn))
AR_DYNLIB_FN(libpq, int, PQsocket, (const PGconn *conn), (conn))
AR_DYNLIB_FN(libpq, int, PQsetnonblocking, (PGconn * conn, int arg), (conn, arg))
AR_DYNLIB_FN(libpq, PQnoticeProcessor, PQsetNoticeProcessor,
             (PGconn * conn, PQnoticeProcessor proc, void *arg), (conn, proc, arg))
AR_DYNLIB_FN(libpq, PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg),
             (conninfo, errmsg))
AR_DYNLIB_FN(libpq, void, PQconninfoFree, (PQconninfoOption * options), (options))
AR_DYNLIB_FN(libpq, PGcancel *, PQgetCancel, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, void, PQfreeCancel, (PGcancel * cancel), (cancel))
AR_DYNLIB_FN(libpq, int, PQcancel, (PGcancel * cancel, char *errbuf, int errbufsize),
             (cancel, errbuf, errbufsize))

/* Asynchronous queries */
AR_DYNLIB_FN(libpq, int, PQsendQuery, (PGconn * conn, const char *query), (conn, query))
AR_DYNLIB_FN(libpq, int, PQsendQueryParams,
             (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,
              const char *const *paramValues, const int *paramLengths, const int *paramFormats,
              int resultFormat),
             (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
              resultFormat))
AR_DYNLIB_FN(libpq, int, PQconsumeInput, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, int, PQisBusy, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, int, PQflush, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, PGresult *, PQgetResult, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, PGnotify *, PQnotifies, (PGconn * conn), (conn))
AR_DYNLIB_FN(libpq, void, PQfreemem, (void *ptr), (ptr))

/* Results */
AR_DYNLIB_FN(libpq, void, PQclear, (PGresult * res), (res))
AR_DYNLIB_FN(libpq, ExecStatusType, PQresultStatus, (const PGresult *res), (res))
AR_DYNLIB_FN(libpq, char *, PQresultErrorMessage, (const PGresult *res), (res))
AR_DYNLIB_FN(libpq, char *, PQresultErrorField, (const PGresult *res, int fieldcode),
             (res, fieldcode))
AR_DYNLIB_FN(libpq, char *, PQcmdStatus, (PGresult * res), (res))
AR_DYNLIB_FN(libpq, char *, PQcmdTuples, (PGresult * res), (res))
AR_DYNLIB_FN(libpq, int, PQntuples, (const PGresult *res), (res))
AR_DYNLIB_FN(libpq, int, PQnfields, (const PGresult *res), (res))
AR_DYNLIB_FN(libpq, char *, PQfname, (const PGresult *res, int field_num), (res, field_num))
AR_DYNLIB_FN(libpq, Oid, PQftype, (const PGresult *res, int field_num), (res, field_num))
AR_DYNLIB_FN(libpq, char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num),
             (res, tup_num, field_num))
AR_DYNLIB_FN(libpq, int, PQgetlength, (const PGresult *res, int tup_num, int field_num),
             (res, tup_num, field_num))
AR_DYNLIB_FN(libpq, int, PQgetisnull, (const PGresult *res, int tup_num, int field_num),
             (res, tup_num, field_num))

#endif
