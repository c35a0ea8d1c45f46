/* db_driver.h — what a driver of db.h provides (db.c dispatches through it; db_sqlite.c and
 * db_postgres.c each fill one). Internal to src/store. */
#ifndef AIGW_STORE_DB_DRIVER_H
#define AIGW_STORE_DB_DRIVER_H

#include "store/db.h"

typedef struct db_driver {
    db_dialect dialect;
    db *(*open)(const char *target, char *err, size_t errlen);
    void (*close)(db *d);
    bool (*exec)(db *d, const char *sql);
    db_stmt *(*prepare)(db *d, const char *sql);
    void (*bind_int64)(db_stmt *st, int i, int64_t v);
    void (*bind_double)(db_stmt *st, int i, double v);
    void (*bind_text)(db_stmt *st, int i, const char *v);
    void (*bind_blob_ref)(db_stmt *st, int i, const void *v, size_t len);
    void (*bind_blob)(db_stmt *st, int i, const void *v, size_t len);
    void (*bind_null)(db_stmt *st, int i);
    db_status (*step)(db_stmt *st);
    bool (*column_is_null)(db_stmt *st, int i);
    int64_t (*column_int64)(db_stmt *st, int i);
    double (*column_double)(db_stmt *st, int i);
    const char *(*column_text)(db_stmt *st, int i);
    const void *(*column_blob)(db_stmt *st, int i, size_t *len);
    int64_t (*changes)(db_stmt *st);
    void (*reset)(db_stmt *st); /* the result dropped, the bindings kept */
    void (*clear)(db_stmt *st); /* the bindings dropped */
    void (*finalize)(db_stmt *st);
    bool (*listen)(db *d, const char *channel); /* NULL: no announcements */
    int (*notify_fd)(db *d);
    bool (*notified)(db *d);
    void (*set_statement_timeout)(db *d, uint32_t ms); /* NULL: none to set */
    const char *begin_write_sql;
} db_driver;

/* The head of every driver's connection and statement. */
struct db {
    const db_driver *driver;
    char error[512];
    struct {
        const char *sql; /* static text: compared by address */
        db_stmt *st;
    } kept[DB_KEPT_MAX]; /* db_prepare_kept's, finalized by db_close */
};

struct db_stmt {
    db *db;
};

extern const db_driver db__sqlite_driver;
extern const db_driver db__postgres_driver;

void db__set_error(db *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
