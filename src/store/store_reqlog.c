/* store_reqlog.c — the request log's rows (request_log.h): batches written, pages read newest
 * first, one request with its attempts, totals per group, and trimming by age and count (the
 * request log's and, by the same rules, the feedback table's) — each written once on db.h, so
 * SQLite and PostgreSQL run the same text.
 *
 * Where the dialects would differ, the query avoids the difference rather than branching:
 * - order: (ts_us, seq), both integers — never a text column, whose order is the database's
 *   collation;
 * - the error filter: lower(error) LIKE '%text%' ESCAPE '!' with the text lowered here and its
 *   % _ ! escaped (LIKE is case-insensitive on SQLite and case-sensitive on PostgreSQL; lower() on
 *   both sides makes them agree for ASCII);
 * - percentiles: the durations are read and sorted here (PostgreSQL's percentile_disc has no
 *   SQLite counterpart), nearest rank;
 * - sums of BIGINT are NUMERIC on PostgreSQL: read as text, they parse as integers all the same.
 *
 * Writes are the hot part (every request's row): a batch goes in INSERTs of 32 rows, their
 * texts prepared once per connection and their strings bound by reference. Measured with
 * callgrind (bench/RESULTS.md), a row went from about 45,000 instructions (one INSERT a row,
 * prepared once a batch, every string copied at bind) to about 17,000, most of it SQLite's
 * own insert into the table and its indexes.
 *
 * Rejected: a query builder (more code than the handful of queries), a child table for attempts
 * (request_log.h says why). */
#include "store/request_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/alloc.h"

/* One statement writes up to 32 rows (32 × 33 parameters: DB_PARAMS_MAX); a batch's tail goes
 * in 8-row and 1-row statements. Each text is prepared once per connection (db_prepare_kept).
 * Measured with callgrind (bench/RESULTS.md): a row costs SQLite about a third less in a 32-row
 * statement than alone, and nothing here is parsed again per batch. */
#define INSERT_HEAD                                                                                          \
    "INSERT INTO request_log (ts_us, request_id, trace_id, key_id, key_alias, team_id, method, path, "       \
    "route, "                                                                                                \
    "provider, model, upstream_model, status, error_class, error, stream, prompt_tokens, "                   \
    "completion_tokens, "                                                                                    \
    "cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cache, retries, fallbacks, ttfb_us, "    \
    "total_us, overhead_us, attempts, request_body, prompt_id, prompt_version, route_reason) VALUES "
#define COLUMNS 33
#define ROW_1 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define ROW_4 ROW_1 "," ROW_1 "," ROW_1 "," ROW_1
#define ROW_8 ROW_4 "," ROW_4
#define ROW_32 ROW_8 "," ROW_8 "," ROW_8 "," ROW_8
static const char insert_1_sql[] = INSERT_HEAD ROW_1;
static const char insert_8_sql[] = INSERT_HEAD ROW_8;
static const char insert_32_sql[] = INSERT_HEAD ROW_32;
_Static_assert(32 * COLUMNS <= DB_PARAMS_MAX, "a 32-row INSERT binds more than a statement takes");

static const char select_columns[] =
    "seq, ts_us, request_id, trace_id, key_id, key_alias, team_id, method, path, route, provider, model, "
    "upstream_model, status, error_class, error, stream, prompt_tokens, completion_tokens, cached_tokens, "
    "cache_write_tokens, reasoning_tokens, cost_usd, cache, retries, fallbacks, ttfb_us, total_us, "
    "overhead_us, attempts, request_body, prompt_id, prompt_version, route_reason";

static void bind_opt_int64(db_stmt *st, int i, int64_t v)
{
    if (v < 0)
        db_bind_null(st, i);
    else
        db_bind_int64(st, i, v);
}

/* e's columns from parameter i on. Text is bound by reference: the entries outlive the
 * statement's step. */
static void bind_entry(db_stmt *st, int i, const reqlog_entry *e)
{
    db_bind_int64(st, i++, e->time_us);
    db_bind_text_ref(st, i++, e->request_id ? e->request_id : "");
    db_bind_text_ref(st, i++, e->trace_id);
    db_bind_text_ref(st, i++, e->key_id);
    db_bind_text_ref(st, i++, e->key_alias);
    db_bind_text_ref(st, i++, e->team);
    db_bind_text_ref(st, i++, e->method ? e->method : "-");
    db_bind_text_ref(st, i++, e->path ? e->path : "");
    db_bind_text_ref(st, i++, e->route);
    db_bind_text_ref(st, i++, e->provider);
    db_bind_text_ref(st, i++, e->model);
    db_bind_text_ref(st, i++, e->upstream_model);
    db_bind_int64(st, i++, e->status);
    db_bind_text_ref(st, i++, e->error_class);
    db_bind_text_ref(st, i++, e->error);
    db_bind_int64(st, i++, e->stream ? 1 : 0);
    db_bind_int64(st, i++, e->prompt_tokens);
    db_bind_int64(st, i++, e->completion_tokens);
    db_bind_int64(st, i++, e->cached_tokens);
    db_bind_int64(st, i++, e->cache_write_tokens);
    db_bind_int64(st, i++, e->reasoning_tokens);
    if (e->cost_usd < 0)
        db_bind_null(st, i++);
    else
        db_bind_double(st, i++, e->cost_usd);
    db_bind_text_ref(st, i++, e->cache);
    db_bind_int64(st, i++, e->retries);
    db_bind_int64(st, i++, e->fallbacks);
    bind_opt_int64(st, i++, e->ttfb_us);
    db_bind_int64(st, i++, e->total_us);
    bind_opt_int64(st, i++, e->overhead_us);
    db_bind_text_ref(st, i++, e->attempts ? e->attempts : "[]");
    db_bind_text_ref(st, i++, e->request_body);
    db_bind_text_ref(st, i++, e->prompt_id);
    bind_opt_int64(st, i++, e->prompt_id ? e->prompt_version : -1);
    db_bind_text_ref(st, i, e->route_reason);
}

/* Writes entries[0..n) with the statement of per rows (n a multiple of per). */
static bool insert_rows(db *d, const char *sql, int per, const reqlog_entry *const *entries, size_t n)
{
    db_stmt *st = db_prepare_kept(d, sql);
    if (!st) return false;
    bool ok = true;
    for (size_t at = 0; ok && at < n; at += (size_t)per) {
        for (int r = 0; r < per; r++)
            bind_entry(st, 1 + r * COLUMNS, entries[at + (size_t)r]);
        ok = db_step(st) == DB_DONE;
        db_reset(st);
    }
    db_release(st);
    return ok;
}

store_result store_reqlog_write(store *s, const reqlog_entry *const *entries, size_t n)
{
    db *d = store__db(s);
    if (!n) return STORE_OK;
    if (!db_begin_write(d)) return store__db_failed(s);
    size_t n32 = n / 32 * 32, n8 = (n - n32) / 8 * 8;
    if (insert_rows(d, insert_32_sql, 32, entries, n32) &&
        insert_rows(d, insert_8_sql, 8, entries + n32, n8) &&
        insert_rows(d, insert_1_sql, 1, entries + n32 + n8, n - n32 - n8) && db_exec(d, "COMMIT"))
        return STORE_OK;
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int64_t column_opt_int64(db_stmt *st, int i)
{
    return db_column_is_null(st, i) ? -1 : db_column_int64(st, i);
}

static void row_to_entry(db_stmt *st, reqlog_entry *e)
{
    int i = 0;
    e->seq = db_column_int64(st, i++);
    e->time_us = db_column_int64(st, i++);
    e->request_id = db_column_text(st, i++);
    e->trace_id = db_column_text(st, i++);
    e->key_id = db_column_text(st, i++);
    e->key_alias = db_column_text(st, i++);
    e->team = db_column_text(st, i++);
    e->method = db_column_text(st, i++);
    e->path = db_column_text(st, i++);
    e->route = db_column_text(st, i++);
    e->provider = db_column_text(st, i++);
    e->model = db_column_text(st, i++);
    e->upstream_model = db_column_text(st, i++);
    e->status = (int)db_column_int64(st, i++);
    e->error_class = db_column_text(st, i++);
    e->error = db_column_text(st, i++);
    e->stream = db_column_int64(st, i++) != 0;
    e->prompt_tokens = db_column_int64(st, i++);
    e->completion_tokens = db_column_int64(st, i++);
    e->cached_tokens = db_column_int64(st, i++);
    e->cache_write_tokens = db_column_int64(st, i++);
    e->reasoning_tokens = db_column_int64(st, i++);
    e->cost_usd = db_column_is_null(st, i) ? -1 : db_column_double(st, i);
    i++;
    e->cache = db_column_text(st, i++);
    e->retries = (int)db_column_int64(st, i++);
    e->fallbacks = (int)db_column_int64(st, i++);
    e->ttfb_us = column_opt_int64(st, i++);
    e->total_us = db_column_int64(st, i++);
    e->overhead_us = column_opt_int64(st, i++);
    e->attempts = db_column_text(st, i++);
    e->request_body = db_column_text(st, i++);
    e->prompt_id = db_column_text(st, i++);
    e->prompt_version = db_column_is_null(st, i) ? 0 : db_column_int64(st, i);
    i++;
    e->route_reason = db_column_text(st, i);
}

static store_result each_row(store *s, db_stmt *st, void (*fn)(const reqlog_entry *e, void *ud), void *ud,
                             size_t *count)
{
    db_status rc;
    *count = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        reqlog_entry e;
        row_to_entry(st, &e);
        fn(&e, ud);
        (*count)++;
    }
    store_result r = rc == DB_DONE ? STORE_OK : store__db_failed(s);
    db_finalize(st);
    return r;
}

/* text lowered (ASCII) and wrapped in % with LIKE's specials escaped by '!'; malloc'd. */
static char *like_pattern(const char *text)
{
    size_t n = strlen(text);
    char *out = xmalloc(2 * n + 3), *p = out;
    *p++ = '%';
    for (const char *c = text; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '!') *p++ = '!';
        *p++ = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

store_result store_reqlog_list(store *s, const reqlog_filter *f, void (*fn)(const reqlog_entry *e, void *ud),
                               void *ud)
{
    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof sql, "SELECT %s FROM request_log WHERE 1 = 1", select_columns);
    int n = 0;
    /* each condition with its own numbers; values bound below in the same order */
#define COND(...) len += (size_t)snprintf(sql + len, sizeof sql - len, __VA_ARGS__)
    if (f->key) {
        n++;
        COND(" AND (key_id = ?%d OR key_alias = ?%d)", n, n);
    }
    if (f->team) COND(" AND team_id = ?%d", ++n);
    if (f->model) {
        n++;
        COND(" AND (model = ?%d OR upstream_model = ?%d)", n, n);
    }
    if (f->provider) COND(" AND provider = ?%d", ++n);
    if (f->status_min || f->status_max) {
        COND(" AND status >= ?%d", ++n);
        COND(" AND status <= ?%d", ++n);
    }
    if (f->since_us) COND(" AND ts_us >= ?%d", ++n);
    if (f->until_us) COND(" AND ts_us < ?%d", ++n);
    if (f->error_text) COND(" AND lower(error) LIKE ?%d ESCAPE '!'", ++n);
    if (f->after) {
        n += 2;
        COND(" AND (ts_us < ?%d OR (ts_us = ?%d AND seq < ?%d))", n - 1, n - 1, n);
    }
    COND(" ORDER BY ts_us DESC, seq DESC LIMIT ?%d", ++n);
#undef COND
    db_stmt *st = db_prepare(store__db(s), sql);
    if (!st) return store__db_failed(s);
    int i = 0;
    char *pattern = NULL;
    if (f->key) db_bind_text(st, ++i, f->key);
    if (f->team) db_bind_text(st, ++i, f->team);
    if (f->model) db_bind_text(st, ++i, f->model);
    if (f->provider) db_bind_text(st, ++i, f->provider);
    if (f->status_min || f->status_max) {
        db_bind_int64(st, ++i, f->status_min);
        db_bind_int64(st, ++i, f->status_max);
    }
    if (f->since_us) db_bind_int64(st, ++i, f->since_us);
    if (f->until_us) db_bind_int64(st, ++i, f->until_us);
    if (f->error_text) {
        pattern = like_pattern(f->error_text);
        db_bind_text(st, ++i, pattern);
    }
    if (f->after) {
        db_bind_int64(st, ++i, f->cursor_time_us);
        db_bind_int64(st, ++i, f->cursor_seq);
    }
    db_bind_int64(st, ++i, f->limit > 0 && f->limit <= REQLOG_PAGE_MAX ? f->limit : REQLOG_PAGE_MAX);
    free(pattern);
    size_t count;
    return each_row(s, st, fn, ud, &count);
}

store_result store_reqlog_get(store *s, const char *request_id, void (*fn)(const reqlog_entry *e, void *ud),
                              void *ud)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM request_log WHERE request_id = ?1 ORDER BY ts_us DESC, seq DESC LIMIT 1",
             select_columns);
    db_stmt *st = db_prepare(store__db(s), sql);
    if (!st) return store__db_failed(s);
    db_bind_text(st, 1, request_id);
    size_t count;
    store_result r = each_row(s, st, fn, ud, &count);
    return r == STORE_OK && !count ? STORE_NOT_FOUND : r;
}

/* ---- totals ----------------------------------------------------------------------------------- */

typedef struct agg_group {
    char *name;
    reqlog_totals t;
    int64_t *durations;
    size_t n, cap;
} agg_group;

static int group_name_cmp(const void *a, const void *b)
{
    return strcmp(((const agg_group *)a)->name, ((const agg_group *)b)->name);
}

static int duration_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int by_requests_cmp(const void *a, const void *b)
{
    const agg_group *x = a, *y = b;
    if (x->t.requests != y->t.requests) return x->t.requests > y->t.requests ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int by_hour_cmp(const void *a, const void *b)
{
    int64_t x = strtoll(((const agg_group *)a)->name, NULL, 10),
            y = strtoll(((const agg_group *)b)->name, NULL, 10);
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p (0..100] of n sorted values. */
static int64_t percentile(const int64_t *sorted, size_t n, int p)
{
    if (!n) return 0;
    size_t rank = (size_t)(((uint64_t)n * (uint64_t)p + 99) / 100); /* ceil(n·p/100) */
    return sorted[rank ? rank - 1 : 0];
}

/* The totals of rows in [since, until) grouped by expr; prompt_id (NULL: any) keeps the rows of
 * one prompt template; numeric_order sorts groups by their name as a number. */
static store_result aggregate(store *s, const char *expr, const char *prompt_id, bool numeric_order,
                              int64_t since_us, int64_t until_us,
                              void (*fn)(const char *group, const reqlog_totals *t, void *ud), void *ud,
                              bool *sampled)
{
    *sampled = false;
    int64_t until = until_us > 0 ? until_us : INT64_MAX;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, count(*), sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END), sum(prompt_tokens), "
             "sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), COALESCE(sum(cost_usd), 0) "
             "FROM request_log WHERE ts_us >= ?1 AND ts_us < ?2%s GROUP BY g",
             expr, prompt_id ? " AND prompt_id = ?3" : "");
    db *d = store__db(s);
    db_stmt *st = db_prepare(d, sql);
    if (!st) return store__db_failed(s);
    db_bind_int64(st, 1, since_us);
    db_bind_int64(st, 2, until);
    if (prompt_id) db_bind_text(st, 3, prompt_id);
    agg_group *list = NULL;
    size_t ngroups = 0, cap = 0;
    store_result r = STORE_OK;
    db_status rc;
    while ((rc = db_step(st)) == DB_ROW) {
        if (ngroups == REQLOG_GROUPS_MAX) {
            *sampled = true; /* more groups than an answer holds: the rest are left out */
            continue;
        }
        if (ngroups == cap) {
            cap = cap ? cap * 2 : 64;
            list = xrealloc(list, cap * sizeof *list);
        }
        agg_group *g = &list[ngroups++];
        memset(g, 0, sizeof *g);
        const char *name = db_column_text(st, 0);
        g->name = xstrdup(name ? name : "");
        g->t.requests = db_column_int64(st, 1);
        g->t.errors = db_column_int64(st, 2);
        g->t.prompt_tokens = db_column_int64(st, 3);
        g->t.completion_tokens = db_column_int64(st, 4);
        g->t.cached_tokens = db_column_int64(st, 5);
        g->t.reasoning_tokens = db_column_int64(st, 6);
        g->t.cost_usd = db_column_double(st, 7);
    }
    if (rc != DB_DONE) r = store__db_failed(s);
    db_finalize(st);
    if (r != STORE_OK || !ngroups) goto out;
    qsort(list, ngroups, sizeof *list, group_name_cmp);

    snprintf(sql, sizeof sql,
             "SELECT %s AS g, total_us FROM request_log WHERE ts_us >= ?1 AND ts_us < ?2%s LIMIT ?3", expr,
             prompt_id ? " AND prompt_id = ?4" : "");
    st = db_prepare(d, sql);
    if (!st) {
        r = store__db_failed(s);
        goto out;
    }
    db_bind_int64(st, 1, since_us);
    db_bind_int64(st, 2, until);
    db_bind_int64(st, 3, REQLOG_LATENCY_ROWS_MAX + 1);
    if (prompt_id) db_bind_text(st, 4, prompt_id);
    size_t rows = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (++rows > REQLOG_LATENCY_ROWS_MAX) {
            *sampled = true;
            continue;
        }
        const char *name = db_column_text(st, 0);
        agg_group want = {.name = (char *)(name ? name : "")};
        agg_group *g = bsearch(&want, list, ngroups, sizeof *list, group_name_cmp);
        if (!g) continue; /* a group past REQLOG_GROUPS_MAX, or a row written between the queries */
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 16;
            g->durations = xrealloc(g->durations, g->cap * sizeof *g->durations);
        }
        g->durations[g->n++] = db_column_int64(st, 1);
    }
    if (rc != DB_DONE) r = store__db_failed(s);
    db_finalize(st);
    if (r != STORE_OK) goto out;
    for (size_t i = 0; i < ngroups; i++) {
        agg_group *g = &list[i];
        if (g->n) qsort(g->durations, g->n, sizeof *g->durations, duration_cmp);
        g->t.p50_us = percentile(g->durations, g->n, 50);
        g->t.p95_us = percentile(g->durations, g->n, 95);
    }
    qsort(list, ngroups, sizeof *list, numeric_order ? by_hour_cmp : by_requests_cmp);
    for (size_t i = 0; i < ngroups; i++)
        fn(list[i].name, &list[i].t, ud);
out:
    for (size_t i = 0; i < ngroups; i++) {
        free(list[i].name);
        free(list[i].durations);
    }
    free(list);
    return r;
}

store_result store_reqlog_aggregate(store *s, const char *by, int64_t since_us, int64_t until_us,
                                    void (*fn)(const char *group, const reqlog_totals *t, void *ud), void *ud,
                                    bool *sampled)
{
    static const struct {
        const char *by, *expr;
    } groups[] = {{"model", "COALESCE(model, '')"},
                  {"provider", "COALESCE(provider, '')"},
                  {"key", "COALESCE(key_id, '')"},
                  {"hour", "CAST((ts_us - ts_us % 3600000000) / 1000000 AS TEXT)"}};
    const char *expr = NULL;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(by, groups[i].by)) expr = groups[i].expr;
    if (!expr) return store__fail(s, "the request log cannot be grouped by %.32s", by);
    return aggregate(s, expr, NULL, !strcmp(by, "hour"), since_us, until_us, fn, ud, sampled);
}

store_result store_reqlog_aggregate_prompt(store *s, const char *prompt_id, int64_t since_us,
                                           int64_t until_us,
                                           void (*fn)(const char *version, const reqlog_totals *t, void *ud),
                                           void *ud, bool *sampled)
{
    return aggregate(s, "CAST(COALESCE(prompt_version, 0) AS TEXT)", prompt_id, true, since_us, until_us, fn,
                     ud, sampled);
}

/* ---- retention -------------------------------------------------------------------------------- */

/* Deletes the oldest rows of table (request_log or feedback: both have seq and ts_us), at most
 * limit of them: of those that started before before_us when it is positive, else of all. */
static bool delete_oldest(store *s, const char *table, int64_t before_us, int64_t limit, int64_t *deleted)
{
    char sql[256];
    if (before_us > 0)
        snprintf(sql, sizeof sql,
                 "DELETE FROM %s WHERE seq IN (SELECT seq FROM %s WHERE ts_us < ?1 ORDER BY seq LIMIT ?2)",
                 table, table);
    else
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE seq IN (SELECT seq FROM %s ORDER BY seq LIMIT ?1)",
                 table, table);
    db_stmt *st = db_prepare(store__db(s), sql);
    if (!st) return store__db_failed(s), false;
    if (before_us > 0) {
        db_bind_int64(st, 1, before_us);
        db_bind_int64(st, 2, limit);
    } else {
        db_bind_int64(st, 1, limit);
    }
    db_status rc = db_step(st);
    if (rc == DB_DONE)
        *deleted += db_changes(st);
    else
        store__db_failed(s);
    db_finalize(st);
    return rc == DB_DONE;
}

/* One table under both rules. */
static bool trim_table(store *s, const char *table, int64_t older_than_us, int64_t max_rows,
                       int64_t max_delete, int64_t *deleted)
{
    if (older_than_us > 0 && !delete_oldest(s, table, older_than_us, max_delete, deleted)) return false;
    if (max_rows <= 0) return true;
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    db_stmt *st = db_prepare(store__db(s), sql);
    if (!st) return store__db_failed(s), false;
    db_status rc = db_step(st);
    int64_t rows = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    db_finalize(st);
    if (rc != DB_ROW) return store__db_failed(s), false;
    if (rows <= max_rows) return true;
    int64_t over = rows - max_rows;
    return delete_oldest(s, table, 0, over < max_delete ? over : max_delete, deleted);
}

store_result store_reqlog_trim(store *s, int64_t older_than_us, int64_t max_rows, int64_t max_delete,
                               int64_t *deleted, int64_t *deleted_feedback)
{
    *deleted = *deleted_feedback = 0;
    if (!trim_table(s, "request_log", older_than_us, max_rows, max_delete, deleted)) return STORE_ERROR;
    return trim_table(s, "feedback", older_than_us, max_rows, max_delete, deleted_feedback) ? STORE_OK
                                                                                            : STORE_ERROR;
}
