/* db.h — the small SQL driver the store's operations are written on, once, for SQLite and
 * PostgreSQL (libpq).
 *
 * A query is one text in the SQL both dialects accept, with SQLite's placeholders: `?` (the
 * next number) or `?N`. The PostgreSQL driver rewrites them to $1, $2 … once, at prepare
 * (db_placeholders_to_dollar). Values cross the interface as int64, double, text, blob and
 * NULL; the drivers map them (a blob is a BLOB in SQLite, a BYTEA sent and read in hex/binary
 * by libpq). What the dialects do not share — the DDL's BLOB vs BYTEA, how a write
 * transaction takes its lock, the catalog's table list — is said once where it is needed,
 * by asking db_dialect_of.
 *
 * One connection is used by one thread at a time (the store's). Every call may block on I/O.
 * A PostgreSQL connection that was lost is re-established by the next call, at most once per
 * backoff interval (250 ms doubling to 8 s): until then calls fail at once with a message
 * saying so, and the caller keeps what it had.
 *
 * Rejected: an ORM-like layer or one function per operation per backend (each later table
 * would be written twice); libpq's server-side prepared statements (one round trip saved per
 * query, paid with statement names to manage across reconnects — the store runs a few queries
 * a second). */
#ifndef AIGW_STORE_DB_H
#define AIGW_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum db_dialect {
    DB_SQLITE,
    DB_POSTGRES,
} db_dialect;

typedef enum db_status {
    DB_ROW,      /* a row is there to read */
    DB_DONE,     /* no (more) rows; a write finished */
    DB_CONFLICT, /* a UNIQUE or PRIMARY KEY constraint refused the write */
    DB_FAILED,   /* db_error says why */
} db_status;

/* Parameters of one statement: what every SQLite takes (999 before 3.32). */
#define DB_PARAMS_MAX 999

typedef struct db db;
typedef struct db_stmt db_stmt;

/* Opens target: a PostgreSQL connection string (conninfo_is_postgres) or a SQLite file
 * (created when missing). NULL with err (never holding a password) when it cannot. */
db *db_open(const char *target, char *err, size_t errlen);
void db_close(db *d);
db_dialect db_dialect_of(const db *d);
/* The last failure's message; valid until the next call on d. */
const char *db_error(const db *d);

/* Runs sql (one or more statements, no parameters). */
bool db_exec(db *d, const char *sql);
/* Starts a write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE: two
 * writers wait for each other instead of failing at commit), PostgreSQL a plain BEGIN. */
bool db_begin_write(db *d);
bool db_commit(db *d);
/* Never fails in a way the caller could act on; safe when no transaction is open. */
void db_rollback(db *d);

/* A statement from sql with `?`/`?N` placeholders (at most DB_PARAMS_MAX). NULL on failure
 * (db_error says). Parameters are numbered from 1; text and blobs are copied at bind. */
db_stmt *db_prepare(db *d, const char *sql);
void db_bind_int64(db_stmt *st, int i, int64_t v);
void db_bind_double(db_stmt *st, int i, double v);
void db_bind_text(db_stmt *st, int i, const char *v); /* NULL binds NULL */
void db_bind_blob(db_stmt *st, int i, const void *v, size_t len);
/* Binds v without copying it (SQLite's SQLITE_STATIC; libpq is handed the pointer): v must
 * stay unchanged until the statement has been stepped and reset, released or finalized — for
 * the request log's batch blob, which the writer owns. */
void db_bind_blob_ref(db_stmt *st, int i, const void *v, size_t len);
void db_bind_null(db_stmt *st, int i);
/* The first call runs the statement; each call moves to the next row. */
db_status db_step(db_stmt *st);
/* The current row's columns, from 0. Text and blobs stay valid until the next step. */
bool db_column_is_null(db_stmt *st, int i);
int64_t db_column_int64(db_stmt *st, int i);
double db_column_double(db_stmt *st, int i);
const char *db_column_text(db_stmt *st, int i); /* NULL for NULL */
const void *db_column_blob(db_stmt *st, int i, size_t *len);
/* Rows the (finished) write changed. */
int64_t db_changes(db_stmt *st);
/* The statement ready to run again (its result dropped; its bindings stay until bound again,
 * so a batch that binds every parameter of every row clears nothing): one prepared INSERT for
 * a whole batch, where preparing it per row would cost more than the row. */
void db_reset(db_stmt *st);
void db_finalize(db_stmt *st); /* takes NULL */

/* The statement of sql prepared on d's first call and kept by d until db_close, so work done
 * often (the request log's batches) parses its SQL once — a 32-row INSERT costs more to
 * prepare than its rows to write. sql must be static text: its address is the key. The
 * statement comes with no bindings; give it back with db_release (never db_finalize), and
 * take it again only after that. At most DB_KEPT_MAX texts; past that, or on failure, NULL
 * (db_error says). */
#define DB_KEPT_MAX 8
db_stmt *db_prepare_kept(db *d, const char *sql);
/* A kept statement given back: its result and bindings dropped (no pointer into the caller's
 * memory stays behind), ready for the next db_prepare_kept. Takes NULL. */
void db_release(db_stmt *st);

/* Change announcements (PostgreSQL's LISTEN/NOTIFY; SQLite has none and answers -1/false).
 * db_listen subscribes this connection to channel (an identifier, not user input), again after
 * each reconnect. db_notify_fd is a descriptor to poll for readability, or -1 (none, or not
 * connected: it changes across reconnects, so ask again before each wait). db_notified reads
 * what arrived and says whether a notification did, including one libpq already buffered
 * during a query — call it before waiting. */
bool db_listen(db *d, const char *channel);
int db_notify_fd(db *d);
bool db_notified(db *d);

/* A bound on each statement from now on: on PostgreSQL the session's statement_timeout, set on
 * this connection and again on every reconnection — unless the session already has one (the
 * connection string's options=-cstatement_timeout=…, or the role's or database's setting),
 * which is the operator's and wins. A statement that runs longer (a lock held by another
 * session, a plan gone wrong) fails with the server's "canceling statement due to statement
 * timeout", as any failed statement does (DB_FAILED, db_error). Called after the migrations:
 * they may wait on another instance's migration lock and take as long as they need. SQLite:
 * nothing (its waits are bounded by its busy timeout). */
void db_set_statement_timeout(db *d, uint32_t ms);

/* sql with `?` and `?N` placeholders rewritten to PostgreSQL's $N (outside quoted strings and
 * identifiers) into out. *nparams: the highest number used. False when out is too small or a
 * number is out of 1..DB_PARAMS_MAX. */
bool db_placeholders_to_dollar(const char *sql, char *out, size_t outlen, int *nparams);

#endif
