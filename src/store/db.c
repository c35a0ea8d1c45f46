/* db.c — db.h's calls dispatched to the connection's driver, and the placeholder rewrite the
 * PostgreSQL driver uses (here, pure, so a unit test reaches it without a server). */
#include "store/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/db_driver.h"
#include "util/conninfo.h"

void db__set_error(db *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
}

db *db_open(const char *target, char *err, size_t errlen)
{
    const db_driver *driver = conninfo_is_postgres(target) ? &db__postgres_driver : &db__sqlite_driver;
    return driver->open(target, err, errlen);
}

void db_close(db *d)
{
    if (!d) return;
    for (int i = 0; i < DB_KEPT_MAX; i++)
        db_finalize(d->kept[i].st);
    d->driver->close(d);
}

db_dialect db_dialect_of(const db *d)
{
    return d->driver->dialect;
}

const char *db_error(const db *d)
{
    return d->error;
}

bool db_exec(db *d, const char *sql)
{
    return d->driver->exec(d, sql);
}

bool db_begin_write(db *d)
{
    return d->driver->exec(d, d->driver->begin_write_sql);
}

bool db_commit(db *d)
{
    return d->driver->exec(d, "COMMIT");
}

void db_rollback(db *d)
{
    char kept[sizeof d->error];
    memcpy(kept, d->error, sizeof kept); /* the failure that led here is the one to report */
    d->driver->exec(d, "ROLLBACK");
    memcpy(d->error, kept, sizeof kept);
}

db_stmt *db_prepare(db *d, const char *sql)
{
    return d->driver->prepare(d, sql);
}

void db_bind_int64(db_stmt *st, int i, int64_t v)
{
    st->db->driver->bind_int64(st, i, v);
}

void db_bind_double(db_stmt *st, int i, double v)
{
    st->db->driver->bind_double(st, i, v);
}

void db_bind_text(db_stmt *st, int i, const char *v)
{
    if (v)
        st->db->driver->bind_text(st, i, v);
    else
        st->db->driver->bind_null(st, i);
}

void db_bind_blob_ref(db_stmt *st, int i, const void *v, size_t len)
{
    st->db->driver->bind_blob_ref(st, i, v, len);
}

void db_bind_blob(db_stmt *st, int i, const void *v, size_t len)
{
    st->db->driver->bind_blob(st, i, v, len);
}

void db_bind_null(db_stmt *st, int i)
{
    st->db->driver->bind_null(st, i);
}

db_status db_step(db_stmt *st)
{
    return st->db->driver->step(st);
}

bool db_column_is_null(db_stmt *st, int i)
{
    return st->db->driver->column_is_null(st, i);
}

int64_t db_column_int64(db_stmt *st, int i)
{
    return st->db->driver->column_int64(st, i);
}

double db_column_double(db_stmt *st, int i)
{
    return st->db->driver->column_double(st, i);
}

const char *db_column_text(db_stmt *st, int i)
{
    return st->db->driver->column_text(st, i);
}

const void *db_column_blob(db_stmt *st, int i, size_t *len)
{
    return st->db->driver->column_blob(st, i, len);
}

int64_t db_changes(db_stmt *st)
{
    return st->db->driver->changes(st);
}

void db_reset(db_stmt *st)
{
    st->db->driver->reset(st);
}

void db_finalize(db_stmt *st)
{
    if (st) st->db->driver->finalize(st);
}

db_stmt *db_prepare_kept(db *d, const char *sql)
{
    int i = 0;
    while (i < DB_KEPT_MAX && d->kept[i].sql && d->kept[i].sql != sql)
        i++;
    if (i == DB_KEPT_MAX) {
        db__set_error(d, "more than %d kept statements", DB_KEPT_MAX);
        return NULL;
    }
    if (!d->kept[i].st) {
        db_stmt *st = d->driver->prepare(d, sql);
        if (!st) return NULL;
        d->kept[i].sql = sql;
        d->kept[i].st = st;
    }
    return d->kept[i].st;
}

void db_release(db_stmt *st)
{
    if (!st) return;
    st->db->driver->reset(st);
    st->db->driver->clear(st);
}

bool db_listen(db *d, const char *channel)
{
    return d->driver->listen ? d->driver->listen(d, channel) : true;
}

int db_notify_fd(db *d)
{
    return d->driver->notify_fd ? d->driver->notify_fd(d) : -1;
}

bool db_notified(db *d)
{
    return d->driver->notified ? d->driver->notified(d) : false;
}

void db_set_statement_timeout(db *d, uint32_t ms)
{
    if (d->driver->set_statement_timeout) d->driver->set_statement_timeout(d, ms);
}

bool db_placeholders_to_dollar(const char *sql, char *out, size_t outlen, int *nparams)
{
    size_t used = 0;
    int highest = 0;
    char quote = 0; /* inside '…' or "…" */
    for (const char *p = sql; *p; p++) {
        char piece[16];
        size_t n = 1;
        piece[0] = *p;
        if (quote) {
            if (*p == quote) quote = 0; /* a doubled quote closes and reopens: same result */
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            int number;
            if (p[1] >= '0' && p[1] <= '9') {
                number = 0;
                while (p[1] >= '0' && p[1] <= '9') {
                    number = number * 10 + (*++p - '0');
                    if (number > DB_PARAMS_MAX) return false;
                }
            } else {
                number = highest + 1; /* SQLite's rule: one more than the largest so far */
            }
            if (number < 1 || number > DB_PARAMS_MAX) return false;
            if (number > highest) highest = number;
            n = (size_t)snprintf(piece, sizeof piece, "$%d", number);
        }
        if (used + n >= outlen) return false;
        memcpy(out + used, piece, n);
        used += n;
    }
    if (used >= outlen) return false;
    out[used] = '\0';
    *nparams = highest;
    return true;
}
