/* db_postgres.c — db.h on a PostgreSQL database through libpq: one blocking connection, owned
 * by the store's thread.
 *
 * Queries go out with PQexecParams (the unnamed statement: nothing to re-prepare after a
 * reconnect), their `?` placeholders rewritten to $N once at prepare, parameters as text
 * (numbers printed exactly: %lld, %.17g) and blobs in binary; results come back as text and
 * are parsed on read (bytea in its hex form). A unique violation (SQLSTATE 23505) is
 * DB_CONFLICT, as SQLite's UNIQUE constraint is.
 *
 * A lost connection (the server restarted, the network dropped) is noticed by the query that
 * fails; the next call reconnects (PQreset) unless it is too soon: attempts are spaced 250 ms,
 * doubling to 8 s, and reset by a success — a store thread polling every second does not hammer
 * a database that is down. Inside a transaction there is no reconnect: the statements after
 * the loss fail, the caller rolls back, and its next transaction starts on a new connection
 * (a silent reconnect there would commit half a transaction in autocommit).
 *
 * Changes are announced with NOTIFY on a channel the store names (db_listen): the store's
 * thread polls the socket between queries, so another instance's write arrives at once instead
 * of at the next version poll; the poll stays as the fallback (a notification is lost while the
 * connection is down).
 *
 * Each statement is bounded once the store has migrated (db_set_statement_timeout): the
 * session's statement_timeout, set after every connect unless the session has one already (the
 * connection string's or the role's: the operator's). The server cancels a statement past it —
 * a lock another session holds, a plan gone wrong — and the store's caller sees a failed
 * statement, as it sees any; without it the store's thread, which every key refresh, spend
 * flush, request-log batch and prompt read waits behind, could wait for ever. It is a
 * server-side bound: a server that stopped answering altogether is left to the keepalive and
 * tcp_user_timeout settings below, and the requests waiting on the thread to their own deadline
 * (timeouts.store, timeouts.admin). LISTEN's notifications are not statements, and an idle
 * connection is not bounded by it.
 *
 * The connection string is never logged: messages name the store by its redacted form
 * (conninfo_redact). libpq's notices (NOTICE, WARNING) are dropped instead of printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "store/db_driver.h"
#include "util/alloc.h"
#include "util/conninfo.h"

#define RECONNECT_FIRST_MS 250
#define RECONNECT_MAX_MS 8000
#define CONNECT_TIMEOUT_S "5"

typedef struct pg_db {
    db base;
    PGconn *conn;
    char *conninfo;
    char name[256]; /* the connection string without its password, for messages */
    char *channel;  /* LISTENed to, again after each reconnect; NULL: none */
    bool in_transaction;
    uint32_t statement_timeout_ms; /* 0: none asked for (the migrations run before it is) */
    uint32_t backoff_ms;
    uint64_t next_attempt_ms;
} pg_db;

typedef struct pg_stmt {
    db_stmt base;
    char *sql; /* with $N placeholders */
    int nparams;
    /* nparams each, allocated at prepare; a value is ours to free unless borrowed
     * (db_bind_blob_ref) */
    char **values;
    int *lengths, *formats;
    bool *borrowed;
    PGresult *result;
    int row, nrows;
    int64_t changes;
    struct pg_blob *blobs; /* the current row's bytea values decoded, freed at the next step */
} pg_stmt;

/* One decoded bytea: each column read keeps its own, so two blobs of a row are valid together
 * (db.h: until the next step). */
typedef struct pg_blob {
    struct pg_blob *next;
    unsigned char bytes[];
} pg_blob;

static void free_blobs(pg_stmt *st)
{
    while (st->blobs) {
        pg_blob *next = st->blobs->next;
        free(st->blobs);
        st->blobs = next;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* libpq's messages end with a newline (sometimes two lines): one line for ours. */
static void set_libpq_error(pg_db *d, const char *what, const char *msg)
{
    char line[400];
    snprintf(line, sizeof line, "%s", msg && *msg ? msg : "unknown error");
    size_t n = 0; /* newlines and libpq's indenting tabs to single spaces */
    for (const char *p = line; *p; p++) {
        bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
        if (!space)
            line[n++] = *p;
        else if (n && line[n - 1] != ' ')
            line[n++] = ' ';
    }
    line[n] = '\0';
    while (n && line[n - 1] == ' ')
        line[--n] = '\0';
    conninfo_scrub(d->conninfo, line, sizeof line);
    db__set_error(&d->base, "%s: %s%s", d->name, what, line);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bool connected(pg_db *d)
{
    return d->conn && PQstatus(d->conn) == CONNECTION_OK;
}

/* LISTEN on the connection; a failure only costs the announcements (the poll remains). */
static void listen_now(pg_db *d)
{
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN \"%s\"", d->channel);
    PQclear(PQexec(d->conn, sql));
}

/* The session's statement_timeout, unless it has one (the connection string's options, the
 * role's or the database's default): a failure only leaves the statements unbounded until the
 * next connect. */
static void bound_statements_now(pg_db *d)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT set_config('statement_timeout', '%u', false) "
             "WHERE current_setting('statement_timeout') = '0'",
             (unsigned)d->statement_timeout_ms);
    PQclear(PQexec(d->conn, sql));
}

/* Connects (first time) or reconnects, at most once per backoff interval. */
static bool pg_ready(pg_db *d)
{
    if (connected(d)) return true;
    if (d->in_transaction) {
        db__set_error(&d->base, "%s: the connection was lost inside a transaction", d->name);
        return false;
    }
    uint64_t now = now_ms();
    if (now < d->next_attempt_ms) {
        db__set_error(&d->base, "%s: not connected (next attempt in %llu ms)", d->name,
                      (unsigned long long)(d->next_attempt_ms - now));
        return false;
    }
    if (d->conn) {
        PQreset(d->conn);
    } else {
        /* Our defaults first, so a connection string that sets its own wins: a bounded connect,
         * and a peer that vanished mid-query (no RST: a dead host, a dropped route) noticed in
         * seconds rather than at the kernel's TCP timeout — the store's thread waits meanwhile. */
        const char *keywords[] = {
            "connect_timeout",  "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
            "keepalives_count", "application_name", "dbname",          NULL};
        const char *values[] = {CONNECT_TIMEOUT_S, "15000", "30", "10", "3", "aigw", d->conninfo, NULL};
        d->conn = PQconnectdbParams(keywords, values, 1);
        if (d->conn) PQsetNoticeProcessor(d->conn, ignore_notice, NULL);
    }
    if (connected(d)) {
        d->backoff_ms = 0;
        d->next_attempt_ms = 0;
        if (d->statement_timeout_ms) bound_statements_now(d);
        if (d->channel) listen_now(d);
        return true;
    }
    set_libpq_error(d, "cannot connect: ", d->conn ? PQerrorMessage(d->conn) : "out of memory");
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : RECONNECT_FIRST_MS;
    if (d->backoff_ms > RECONNECT_MAX_MS) d->backoff_ms = RECONNECT_MAX_MS;
    d->next_attempt_ms = now_ms() + d->backoff_ms;
    return false;
}

static void pg_close(db *base)
{
    pg_db *d = (pg_db *)base;
    if (d->conn) PQfinish(d->conn);
    free(d->conninfo);
    free(d->channel);
    free(d);
}

static db *pg_open(const char *conninfo, char *err, size_t errlen)
{
    pg_db *d = xcalloc(1, sizeof *d);
    d->base.driver = &db__postgres_driver;
    d->conninfo = xstrdup(conninfo);
    conninfo_redact(conninfo, d->name, sizeof d->name);
    if (!pg_ready(d)) {
        snprintf(err, errlen, "store %s", d->base.error);
        pg_close(&d->base);
        return NULL;
    }
    return &d->base;
}

static bool pg_exec(db *base, const char *sql)
{
    pg_db *d = (pg_db *)base;
    bool begin = !strncmp(sql, "BEGIN", 5);
    bool end = !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK");
    if (!strcmp(sql, "ROLLBACK") && !connected(d)) { /* the server dropped it already */
        d->in_transaction = false;
        return true;
    }
    if (!pg_ready(d)) {
        if (end) d->in_transaction = false;
        return false;
    }
    PGresult *res = PQexec(d->conn, sql);
    ExecStatusType status = PQresultStatus(res);
    if (begin && status == PGRES_FATAL_ERROR && !connected(d) && pg_ready(d)) { /* as in pg_step */
        PQclear(res);
        res = PQexec(d->conn, sql);
        status = PQresultStatus(res);
    }
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok) set_libpq_error(d, "", PQresultErrorMessage(res));
    PQclear(res);
    if (begin && ok) d->in_transaction = true;
    if (end) d->in_transaction = false;
    return ok;
}

static db_stmt *pg_prepare(db *base, const char *sql)
{
    pg_db *d = (pg_db *)base;
    size_t cap = strlen(sql) + 1; /* a bare "?" becomes at most "$1056"; "?N" stays as long */
    for (const char *p = sql; *p; p++)
        cap += *p == '?' ? 4 : 0;
    char *text = xmalloc(cap);
    int nparams;
    if (!db_placeholders_to_dollar(sql, text, cap, &nparams)) {
        db__set_error(&d->base, "%s: a query's placeholders are out of range", d->name);
        free(text);
        return NULL;
    }
    pg_stmt *st = xcalloc(1, sizeof *st);
    st->base.db = base;
    st->sql = text;
    st->nparams = nparams;
    size_t n = nparams ? (size_t)nparams : 1;
    st->values = xcalloc(n, sizeof *st->values);
    st->lengths = xcalloc(n, sizeof *st->lengths);
    st->formats = xcalloc(n, sizeof *st->formats);
    st->borrowed = xcalloc(n, sizeof *st->borrowed);
    return &st->base;
}

static void drop_param(pg_stmt *st, int k)
{
    if (!st->borrowed[k]) free(st->values[k]);
    st->values[k] = NULL;
    st->borrowed[k] = false;
}

static void set_param(db_stmt *base, int i, char *value, int length, int format)
{
    pg_stmt *st = (pg_stmt *)base;
    if (i < 1 || i > st->nparams) {
        free(value);
        return;
    }
    drop_param(st, i - 1);
    st->values[i - 1] = value;
    st->lengths[i - 1] = length;
    st->formats[i - 1] = format;
}

static void pg_bind_int64(db_stmt *st, int i, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    set_param(st, i, xstrdup(text), 0, 0);
}

static void pg_bind_double(db_stmt *st, int i, double v)
{
    char text[40];
    snprintf(text, sizeof text, "%.17g", v);
    set_param(st, i, xstrdup(text), 0, 0);
}

static void pg_bind_text(db_stmt *st, int i, const char *v)
{
    set_param(st, i, xstrdup(v), 0, 0);
}

static void pg_bind_blob_ref(db_stmt *base, int i, const void *v, size_t len)
{
    pg_stmt *st = (pg_stmt *)base;
    if (i < 1 || i > st->nparams) return;
    set_param(base, i, NULL, (int)len, 1);
    st->values[i - 1] = (char *)v; /* binary format: libpq reads len bytes */
    st->borrowed[i - 1] = true;
}

static void pg_bind_blob(db_stmt *st, int i, const void *v, size_t len)
{
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, v, len);
    set_param(st, i, copy, (int)len, 1);
}

static void pg_bind_null(db_stmt *st, int i)
{
    set_param(st, i, NULL, 0, 0);
}

static db_status pg_step(db_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    pg_db *d = (pg_db *)base->db;
    free_blobs(st);
    if (st->result) {
        if (st->row < st->nrows) st->row++;
        return st->row < st->nrows ? DB_ROW : DB_DONE;
    }
    if (!pg_ready(d)) return DB_FAILED;
    st->result = PQexecParams(d->conn, st->sql, st->nparams, NULL, (const char *const *)st->values,
                              st->lengths, st->formats, 0);
    ExecStatusType status = PQresultStatus(st->result);
    /* an idle connection the server dropped (a restart) fails its next query: outside a
     * transaction, where the store only reads, the query is run again on a new connection */
    if (status == PGRES_FATAL_ERROR && !connected(d) && !d->in_transaction && pg_ready(d)) {
        PQclear(st->result);
        st->result = PQexecParams(d->conn, st->sql, st->nparams, NULL, (const char *const *)st->values,
                                  st->lengths, st->formats, 0);
        status = PQresultStatus(st->result);
    }
    if (status == PGRES_TUPLES_OK) {
        st->nrows = PQntuples(st->result);
        st->row = 0;
        return st->nrows ? DB_ROW : DB_DONE;
    }
    if (status == PGRES_COMMAND_OK) {
        st->changes = strtoll(PQcmdTuples(st->result), NULL, 10);
        st->nrows = 0;
        return DB_DONE;
    }
    set_libpq_error(d, "", PQresultErrorMessage(st->result));
    /* the SQLSTATE lives in the result: read before it is cleared */
    const char *sqlstate = PQresultErrorField(st->result, PG_DIAG_SQLSTATE);
    bool conflict = sqlstate && !strcmp(sqlstate, "23505");
    PQclear(st->result);
    st->result = NULL;
    return conflict ? DB_CONFLICT : DB_FAILED;
}

static bool has_value(pg_stmt *st, int i)
{
    return st->result && st->row < st->nrows && i >= 0 && i < PQnfields(st->result) &&
           !PQgetisnull(st->result, st->row, i);
}

static bool pg_column_is_null(db_stmt *base, int i)
{
    return !has_value((pg_stmt *)base, i);
}

static int64_t pg_column_int64(db_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    return has_value(st, i) ? strtoll(PQgetvalue(st->result, st->row, i), NULL, 10) : 0;
}

static double pg_column_double(db_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    return has_value(st, i) ? strtod(PQgetvalue(st->result, st->row, i), NULL) : 0;
}

static const char *pg_column_text(db_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    return has_value(st, i) ? PQgetvalue(st->result, st->row, i) : NULL;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* bytea's text output, hex form ("\x0a1b…", the default since PostgreSQL 9.0). */
static const void *pg_column_blob(db_stmt *base, int i, size_t *len)
{
    pg_stmt *st = (pg_stmt *)base;
    *len = 0;
    if (!has_value(st, i)) return NULL;
    const char *text = PQgetvalue(st->result, st->row, i);
    size_t n = (size_t)PQgetlength(st->result, st->row, i);
    if (n < 2 || text[0] != '\\' || text[1] != 'x' || n % 2) return NULL;
    pg_blob *b = xmalloc(sizeof *b + n / 2);
    b->next = st->blobs;
    st->blobs = b;
    for (size_t k = 2; k < n; k += 2) {
        int hi = hex_digit(text[k]), lo = hex_digit(text[k + 1]);
        if (hi < 0 || lo < 0) return NULL;
        b->bytes[(k - 2) / 2] = (unsigned char)(hi << 4 | lo);
    }
    *len = (n - 2) / 2;
    return b->bytes;
}

static int64_t pg_changes(db_stmt *base)
{
    return ((pg_stmt *)base)->changes;
}

static void pg_reset(db_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    free_blobs(st);
    PQclear(st->result);
    st->result = NULL;
    st->row = st->nrows = 0;
}

static void pg_clear(db_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    for (int i = 0; i < st->nparams; i++) {
        drop_param(st, i);
        st->lengths[i] = st->formats[i] = 0;
    }
}

static void pg_finalize(db_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    pg_clear(base);
    if (st->result) PQclear(st->result);
    free_blobs(st);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    free(st->borrowed);
    free(st->sql);
    free(st);
}

static bool pg_listen(db *base, const char *channel)
{
    pg_db *d = (pg_db *)base;
    free(d->channel);
    d->channel = xstrdup(channel);
    if (connected(d) && !d->in_transaction) listen_now(d);
    return true;
}

static void pg_set_statement_timeout(db *base, uint32_t ms)
{
    pg_db *d = (pg_db *)base;
    d->statement_timeout_ms = ms;
    if (ms && connected(d) && !d->in_transaction) bound_statements_now(d);
}

static int pg_notify_fd(db *base)
{
    pg_db *d = (pg_db *)base;
    return d->channel && connected(d) && !d->in_transaction ? PQsocket(d->conn) : -1;
}

static bool pg_notified(db *base)
{
    pg_db *d = (pg_db *)base;
    if (!d->conn || !connected(d)) return false;
    PQconsumeInput(d->conn); /* a failure shows as a lost connection at the next query */
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(d->conn))) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

const db_driver db__postgres_driver = {
    .dialect = DB_POSTGRES,
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .reset = pg_reset,
    .clear = pg_clear,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob_ref = pg_bind_blob_ref,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .column_is_null = pg_column_is_null,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .changes = pg_changes,
    .finalize = pg_finalize,
    .listen = pg_listen,
    .notify_fd = pg_notify_fd,
    .notified = pg_notified,
    .set_statement_timeout = pg_set_statement_timeout,
    .begin_write_sql = "BEGIN",
};
