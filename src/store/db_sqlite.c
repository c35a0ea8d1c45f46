/* db_sqlite.c — db.h on one SQLite file: WAL (so `aigw keys` in another process writes while
 * the gateway reads) with synchronous=NORMAL (a commit is durable at the next checkpoint, not
 * fsynced on its own: the WAL keeps the file consistent through a crash, and the request log's
 * batches would otherwise wait for a disk flush each), a busy timeout of 5 s (a writer waits
 * for another's lock instead of failing at once), foreign keys on. Placeholders are SQLite's
 * own, so the text goes to sqlite3_prepare_v2 unchanged.
 *
 * SQLite's memory statistics are turned off for the process before its first connection
 * (SQLITE_CONFIG_MEMSTATUS): with them on, every allocation SQLite makes takes a global mutex
 * to count itself, about a tenth of a request-log row's cost (callgrind, bench/RESULTS.md), for
 * figures (sqlite3_memory_used) nothing here reads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/db_driver.h"
#include "util/alloc.h"

typedef struct sqlite_db {
    db base;
    sqlite3 *handle;
    char *path;
} sqlite_db;

typedef struct sqlite_stmt {
    db_stmt base;
    sqlite3_stmt *handle;
    int64_t changes;
} sqlite_stmt;

static void sqlite_fail(sqlite_db *d)
{
    db__set_error(&d->base, "%s: %s", d->path, sqlite3_errmsg(d->handle));
}

static void sqlite_close(db *base)
{
    sqlite_db *d = (sqlite_db *)base;
    sqlite3_close(d->handle);
    free(d->path);
    free(d);
}

static bool sqlite_exec(db *base, const char *sql)
{
    sqlite_db *d = (sqlite_db *)base;
    char *msg = NULL;
    if (sqlite3_exec(d->handle, sql, NULL, NULL, &msg) == SQLITE_OK) return true;
    db__set_error(base, "%s: %s", d->path, msg ? msg : sqlite3_errmsg(d->handle));
    sqlite3_free(msg);
    return false;
}

static void configure_library(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* refused once initialized (another user): harmless */
}

static db *sqlite_open(const char *path, char *err, size_t errlen)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, configure_library);
    sqlite_db *d = xcalloc(1, sizeof *d);
    d->base.driver = &db__sqlite_driver;
    d->path = xstrdup(path);
    int rc = sqlite3_open_v2(path, &d->handle,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store %s: cannot open: %s", path,
                 d->handle ? sqlite3_errmsg(d->handle) : sqlite3_errstr(rc));
        sqlite_close(&d->base);
        return NULL;
    }
    sqlite3_extended_result_codes(d->handle, 1);
    sqlite3_busy_timeout(d->handle, 5000);
    /* journal_mode reads the header: a damaged file fails here (or at the first query) */
    if (!sqlite_exec(&d->base, "PRAGMA journal_mode = WAL") ||
        !sqlite_exec(&d->base, "PRAGMA synchronous = NORMAL") ||
        !sqlite_exec(&d->base, "PRAGMA foreign_keys = ON")) {
        if (strstr(d->base.error, "not a database") || strstr(d->base.error, "malformed"))
            snprintf(err, errlen,
                     "store %s is damaged or not an aigw store (SQLite: %s); move it away to start "
                     "with an empty store, or point auth.store at the right file",
                     path, sqlite3_errmsg(d->handle));
        else
            snprintf(err, errlen, "store %s", d->base.error);
        sqlite_close(&d->base);
        return NULL;
    }
    return &d->base;
}

static db_stmt *sqlite_prepare(db *base, const char *sql)
{
    sqlite_db *d = (sqlite_db *)base;
    sqlite3_stmt *handle;
    if (sqlite3_prepare_v2(d->handle, sql, -1, &handle, NULL) != SQLITE_OK) {
        sqlite_fail(d);
        return NULL;
    }
    sqlite_stmt *st = xcalloc(1, sizeof *st);
    st->base.db = base;
    st->handle = handle;
    return &st->base;
}

#define HANDLE(st) (((sqlite_stmt *)(st))->handle)

static void sqlite_bind_int64(db_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(HANDLE(st), i, v);
}

static void sqlite_bind_double(db_stmt *st, int i, double v)
{
    sqlite3_bind_double(HANDLE(st), i, v);
}

static void sqlite_bind_text(db_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(HANDLE(st), i, v, -1, SQLITE_TRANSIENT);
}

static void sqlite_bind_blob_ref(db_stmt *st, int i, const void *v, size_t len)
{
    sqlite3_bind_blob(HANDLE(st), i, v, (int)len, SQLITE_STATIC);
}

static void sqlite_bind_blob(db_stmt *st, int i, const void *v, size_t len)
{
    sqlite3_bind_blob(HANDLE(st), i, v, (int)len, SQLITE_TRANSIENT);
}

static void sqlite_bind_null(db_stmt *st, int i)
{
    sqlite3_bind_null(HANDLE(st), i);
}

static db_status sqlite_step(db_stmt *base)
{
    sqlite_stmt *st = (sqlite_stmt *)base;
    sqlite_db *d = (sqlite_db *)base->db;
    int rc = sqlite3_step(st->handle);
    if (rc == SQLITE_ROW) return DB_ROW;
    if (rc == SQLITE_DONE) {
        st->changes = sqlite3_changes(d->handle);
        return DB_DONE;
    }
    sqlite_fail(d);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return DB_CONFLICT;
    return DB_FAILED;
}

static bool sqlite_column_is_null(db_stmt *st, int i)
{
    return sqlite3_column_type(HANDLE(st), i) == SQLITE_NULL;
}

static int64_t sqlite_column_int64(db_stmt *st, int i)
{
    return sqlite3_column_int64(HANDLE(st), i);
}

static double sqlite_column_double(db_stmt *st, int i)
{
    return sqlite3_column_double(HANDLE(st), i);
}

static const char *sqlite_column_text(db_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(HANDLE(st), i);
}

static const void *sqlite_column_blob(db_stmt *st, int i, size_t *len)
{
    const void *v = sqlite3_column_blob(HANDLE(st), i);
    *len = (size_t)sqlite3_column_bytes(HANDLE(st), i);
    return v;
}

static int64_t sqlite_changes(db_stmt *st)
{
    return ((sqlite_stmt *)st)->changes;
}

static void sqlite_reset(db_stmt *st)
{
    sqlite3_reset(HANDLE(st));
}

static void sqlite_clear(db_stmt *st)
{
    sqlite3_clear_bindings(HANDLE(st));
}

static void sqlite_finalize(db_stmt *st)
{
    sqlite3_finalize(HANDLE(st));
    free(st);
}

const db_driver db__sqlite_driver = {
    .dialect = DB_SQLITE,
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .prepare = sqlite_prepare,
    .reset = sqlite_reset,
    .clear = sqlite_clear,
    .bind_int64 = sqlite_bind_int64,
    .bind_double = sqlite_bind_double,
    .bind_text = sqlite_bind_text,
    .bind_blob_ref = sqlite_bind_blob_ref,
    .bind_blob = sqlite_bind_blob,
    .bind_null = sqlite_bind_null,
    .step = sqlite_step,
    .column_is_null = sqlite_column_is_null,
    .column_int64 = sqlite_column_int64,
    .column_double = sqlite_column_double,
    .column_text = sqlite_column_text,
    .column_blob = sqlite_column_blob,
    .changes = sqlite_changes,
    .finalize = sqlite_finalize,
    .begin_write_sql = "BEGIN IMMEDIATE",
};
