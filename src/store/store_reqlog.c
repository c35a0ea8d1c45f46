/* store_reqlog.c — the request log's rows (request_log.h): batches written, pages read newest
 * first, one request with its attempts, totals per group, and trimming by age and count (the
 * request log's and, by the same rules, the feedback table's) — each written once on db.h, so
 * SQLite and PostgreSQL run the same text.
 *
 * The log is a table of batches (migration 11): a row holds up to REQLOG_BATCH_ROWS_MAX requests
 * packed into one blob (reqlog_batch.h), with the batch's time range and a Bloom filter of its
 * request ids beside it. Writing is the hot part — every request's entry — and the database's
 * insert of a row per request was most of what the log cost (bench/RESULTS.md: about 20,000
 * instructions a request with a 33-column row, 32 rows a statement; a batch row costs a few
 * hundred a request). The price is paid by the readers, which decode the batches their time
 * range overlaps and filter in C, reading them newest first a few a query (PostgreSQL's driver
 * holds a query's whole result in memory: a query is a chunk, never the table):
 * - a page: its best entries are kept as copies (without bodies) in a heap as large as the page,
 *   and the scan stops at the first batch whose newest entry is older than the page's oldest
 *   (no later batch can hold a better one);
 * - one request: the Bloom filters are read, and only the batches that may hold its id decoded;
 * - totals: the batches of the range, decoded once, grouped in a hash table;
 * - retention: whole batches are deleted; a batch straddling the cutoff is written again
 *   without its old entries, so the rules are exact to the entry and an entry keeps its seq.
 * An entry's seq is its batch's number and its index in the batch (REQLOG_SEQ): integers on both
 * backends, unique even between instances sharing a PostgreSQL store, growing as batches are
 * written, so "newest first" and a cursor mean the same thing everywhere.
 *
 * Rejected: a row per request with its columns (the cost above), packing only the columns no
 * query reads (a third of it saved), an append-only file beside the database (a second store to
 * back up, trim and share). */
#include "store/request_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/reqlog_batch.h"
#include "util/alloc.h"

/* ---- writing ---------------------------------------------------------------------------------- */

static const char insert_sql[] =
    "INSERT INTO request_log_batch (ts_min, ts_max, entries, ids, data) VALUES (?1, ?2, ?3, ?4, ?5)";

/* w as a new row. */
static bool insert_batch(db *d, reqlog_batch_writer *w)
{
    uint8_t ids[REQLOG_IDS_MAX_BYTES];
    size_t ids_len = reqlog_batch_ids(w, ids);
    db_stmt *st = db_prepare_kept(d, insert_sql);
    if (!st) return false;
    db_bind_int64(st, 1, w->ts_min);
    db_bind_int64(st, 2, w->ts_max);
    db_bind_int64(st, 3, (int64_t)w->n);
    db_bind_blob(st, 4, ids, ids_len);
    db_bind_blob_ref(st, 5, w->data.data, w->data.len); /* w outlives the step */
    bool ok = db_step(st) == DB_DONE;
    db_release(st);
    reqlog_batch_reset(w);
    return ok;
}

/* Adds e to w as its next entry, writing w first when it is full. An entry too large for any
 * blob is left out (request bodies are capped far below that). */
static bool add_entry(db *d, reqlog_batch_writer *w, const reqlog_entry *e)
{
    if (reqlog_batch_add(w, e, (unsigned)w->n)) return true;
    if (!w->n) return true; /* too large for any blob: left out */
    if (!insert_batch(d, w)) return false;
    reqlog_batch_add(w, e, 0);
    return true;
}

store_result store_reqlog_write(store *s, const reqlog_entry *const *entries, size_t n)
{
    db *d = store__db(s);
    if (!n) return STORE_OK;
    if (!db_begin_write(d)) return store__db_failed(s);
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = add_entry(d, &w, entries[i]);
    if (ok && w.n) ok = insert_batch(d, &w);
    reqlog_batch_free(&w);
    if (ok && db_exec(d, "COMMIT")) return STORE_OK;
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

store_result store_reqlog_write_batch(store *s, reqlog_batch_writer *w)
{
    db *d = store__db(s);
    if (!w->n) return STORE_OK;
    if (!db_begin_write(d)) return store__db_failed(s);
    if (insert_batch(d, w) && db_exec(d, "COMMIT")) return STORE_OK;
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* Batches are read newest first, by (ts_max, seq), a few rows a query: PostgreSQL's driver holds
 * a query's whole result in memory, so a query is a chunk, never the table. */
#define SCAN_DATA_ROWS 8                 /* batches a query reads with their blobs (each at most ~1 MiB) */
#define SCAN_IDS_ROWS 256                /* … with their Bloom filters only (at most 2 KiB each) */
#define BATCH_SEQ_MAX (INT64_C(1) << 47) /* an entry's seq holds the batch's in 47 bits */

typedef struct batch_scan {
    store *s;
    db_stmt *st;
    int64_t since, until;  /* batches overlapping [since, until) */
    int64_t at_ts, at_seq; /* the last row read: the next chunk starts below it */
    int limit, got;
    bool running, done;
} batch_scan;

/* A scan of the batches overlapping [since, until) (0: no bound), column ("data" or "ids")
 * after seq and ts_max. */
static bool scan_open(batch_scan *b, store *s, const char *column, int64_t since, int64_t until, int limit)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT seq, ts_max, %s FROM request_log_batch WHERE ts_max >= ?1 AND ts_min < ?2 AND "
             "(ts_max, seq) < (?3, ?4) ORDER BY ts_max DESC, seq DESC LIMIT ?5",
             column);
    *b = (batch_scan){.s = s,
                      .since = since ? since : INT64_MIN,
                      .until = until ? until : INT64_MAX,
                      .at_ts = INT64_MAX,
                      .at_seq = INT64_MAX,
                      .limit = limit};
    b->st = db_prepare(store__db(s), sql);
    if (!b->st) store__db_failed(s);
    return b->st != NULL;
}

/* The next batch's row (its columns valid until the next call): 1, 0 at the end, -1 on failure
 * (the store's error says why). */
static int scan_next(batch_scan *b)
{
    for (;;) {
        if (b->done) return 0;
        if (!b->running) {
            db_reset(b->st);
            db_bind_int64(b->st, 1, b->since);
            db_bind_int64(b->st, 2, b->until);
            db_bind_int64(b->st, 3, b->at_ts);
            db_bind_int64(b->st, 4, b->at_seq);
            db_bind_int64(b->st, 5, b->limit);
            b->running = true;
            b->got = 0;
        }
        db_status rc = db_step(b->st);
        if (rc == DB_ROW) {
            b->got++;
            b->at_seq = db_column_int64(b->st, 0);
            b->at_ts = db_column_int64(b->st, 1);
            return 1;
        }
        if (rc != DB_DONE) return store__db_failed(b->s), -1;
        b->running = false;
        b->done = b->got < b->limit;
    }
}

static void scan_close(batch_scan *b)
{
    db_finalize(b->st);
}

static store_result damaged(store *s, int64_t seq)
{
    return store__fail(s,
                       "request log batch %lld is damaged (written by something other than aigw?); "
                       "retention deletes it, or: DELETE FROM request_log_batch WHERE seq = %lld",
                       (long long)seq, (long long)seq);
}

/* The blob in column col of st's row, whose column 0 is its seq, opened in *r; false (the
 * store's error set) when it is not a batch. */
static bool open_batch(store *s, db_stmt *st, int col, reqlog_batch_reader *r)
{
    int64_t seq = db_column_int64(st, 0);
    size_t len;
    const void *data = db_column_blob(st, col, &len);
    if (seq > 0 && seq < BATCH_SEQ_MAX && reqlog_batch_open(r, data, len, seq)) return true;
    damaged(s, seq);
    return false;
}

/* The next entry of r: 1, 0 at the end, -1 when the batch is damaged (said in the store's error). */
static int next_entry(store *s, reqlog_batch_reader *r, reqlog_entry *e)
{
    int rc = reqlog_batch_next(r, e);
    if (rc < 0) damaged(s, r->batch_seq);
    return rc;
}

/* A copy of e in one allocation (free() frees it), its request body left out unless with_body. */
static reqlog_entry *entry_copy(const reqlog_entry *e, bool with_body)
{
    const char *const *from[] = {
        &e->request_id, &e->trace_id, &e->key_id,   &e->key_alias,    &e->team,           &e->method,
        &e->path,       &e->route,    &e->provider, &e->model,        &e->upstream_model, &e->error_class,
        &e->error,      &e->cache,    &e->attempts, &e->request_body, &e->prompt_id,      &e->route_reason};
    enum { N = sizeof from / sizeof from[0] };
    size_t len[N], total = sizeof *e;
    for (size_t i = 0; i < N; i++) {
        const char *v = *from[i];
        len[i] = v && (with_body || from[i] != &e->request_body) ? strlen(v) + 1 : 0;
        total += len[i];
    }
    reqlog_entry *c = xmalloc(total);
    *c = *e;
    const char **to[] = {&c->request_id,     &c->trace_id,    &c->key_id,      &c->key_alias, &c->team,
                         &c->method,         &c->path,        &c->route,       &c->provider,  &c->model,
                         &c->upstream_model, &c->error_class, &c->error,       &c->cache,     &c->attempts,
                         &c->request_body,   &c->prompt_id,   &c->route_reason};
    char *p = (char *)(c + 1);
    for (size_t i = 0; i < N; i++) {
        *to[i] = len[i] ? memcpy(p, *from[i], len[i]) : NULL;
        p += len[i];
    }
    return c;
}

static bool same(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

/* a newer than b: later time, then larger seq */
static bool newer(const reqlog_entry *a, const reqlog_entry *b)
{
    return a->time_us != b->time_us ? a->time_us > b->time_us : a->seq > b->seq;
}

static bool matches(const reqlog_filter *f, const reqlog_entry *e)
{
    if (f->key && !same(e->key_id, f->key) && !same(e->key_alias, f->key)) return false;
    if (f->team && !same(e->team, f->team)) return false;
    if (f->model && !same(e->model, f->model) && !same(e->upstream_model, f->model)) return false;
    if (f->provider && !same(e->provider, f->provider)) return false;
    if ((f->status_min || f->status_max) && (e->status < f->status_min || e->status > f->status_max))
        return false;
    if (f->since_us && e->time_us < f->since_us) return false;
    if (f->until_us && e->time_us >= f->until_us) return false;
    if (f->after && !newer(&(reqlog_entry){.time_us = f->cursor_time_us, .seq = f->cursor_seq}, e))
        return false;
    /* ASCII case-insensitive (aigw keeps the C locale); glibc's strcasestr is linear in both */
    if (f->error_text && (!e->error || !strcasestr(e->error, f->error_text))) return false;
    return true;
}

/* The page's best entries (copies without their bodies) as a binary heap whose root is the
 * oldest of them: memory is the page's, however many entries the scan offers. */
typedef struct page_heap {
    reqlog_entry **e;
    size_t n, cap;
} page_heap;

static void heap_swap(reqlog_entry **a, reqlog_entry **b)
{
    reqlog_entry *t = *a;
    *a = *b;
    *b = t;
}

/* Offers x: copied in while the heap has room, or in place of the oldest when x is newer. */
static void heap_offer(page_heap *h, const reqlog_entry *x)
{
    size_t i;
    if (h->n < h->cap) {
        i = h->n++;
        h->e[i] = entry_copy(x, false);
        while (i && newer(h->e[(i - 1) / 2], h->e[i])) {
            heap_swap(&h->e[(i - 1) / 2], &h->e[i]);
            i = (i - 1) / 2;
        }
        return;
    }
    if (!newer(x, h->e[0])) return;
    free(h->e[0]);
    h->e[0] = entry_copy(x, false);
    for (i = 0;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < h->n && newer(h->e[m], h->e[l])) m = l;
        if (l + 1 < h->n && newer(h->e[m], h->e[l + 1])) m = l + 1;
        if (m == i) break;
        heap_swap(&h->e[i], &h->e[m]);
        i = m;
    }
}

static int newest_first(const void *a, const void *b)
{
    const reqlog_entry *x = *(reqlog_entry *const *)a, *y = *(reqlog_entry *const *)b;
    return newer(x, y) ? -1 : newer(y, x) ? 1 : 0;
}

store_result store_reqlog_list(store *s, const reqlog_filter *f, void (*fn)(const reqlog_entry *e, void *ud),
                               void *ud)
{
    page_heap h = {.cap = (size_t)(f->limit > 0 && f->limit <= REQLOG_PAGE_MAX ? f->limit : REQLOG_PAGE_MAX)};
    h.e = xmalloc(h.cap * sizeof *h.e);
    int64_t newest = f->until_us ? f->until_us : INT64_MAX;
    if (f->after && f->cursor_time_us < newest - 1) newest = f->cursor_time_us + 1;
    batch_scan b;
    store_result r = scan_open(&b, s, "data", f->since_us, newest, SCAN_DATA_ROWS) ? STORE_OK : STORE_ERROR;
    int got;
    while (r == STORE_OK && (got = scan_next(&b)) != 0) {
        /* every later batch's entries are older than the page's oldest: done */
        if (got > 0 && h.n == h.cap && b.at_ts < h.e[0]->time_us) break;
        reqlog_batch_reader rd;
        if (got < 0 || !open_batch(s, b.st, 2, &rd)) {
            r = STORE_ERROR;
            break;
        }
        reqlog_entry e;
        int rc;
        while ((rc = next_entry(s, &rd, &e)) > 0)
            if (matches(f, &e)) heap_offer(&h, &e);
        if (rc < 0) r = STORE_ERROR;
    }
    scan_close(&b);
    qsort(h.e, h.n, sizeof *h.e, newest_first);
    for (size_t i = 0; i < h.n; i++) {
        if (r == STORE_OK) fn(h.e[i], ud);
        free(h.e[i]);
    }
    free(h.e);
    return r;
}

store_result store_reqlog_get(store *s, const char *request_id, void (*fn)(const reqlog_entry *e, void *ud),
                              void *ud)
{
    batch_scan b;
    if (!scan_open(&b, s, "ids", 0, 0, SCAN_IDS_ROWS)) return STORE_ERROR;
    db_stmt *one = db_prepare(store__db(s), "SELECT seq, data FROM request_log_batch WHERE seq = ?1");
    store_result r = one ? STORE_OK : store__db_failed(s);
    reqlog_entry *best = NULL;
    int got;
    while (r == STORE_OK && (got = scan_next(&b)) != 0) {
        if (got < 0) {
            r = STORE_ERROR;
            break;
        }
        if (best && b.at_ts < best->time_us) break; /* the rest hold only older entries */
        size_t ids_len;
        const void *ids = db_column_blob(b.st, 2, &ids_len);
        if (!reqlog_ids_may_hold(ids, ids_len, request_id)) continue;
        db_reset(one);
        db_bind_int64(one, 1, b.at_seq);
        db_status rc = db_step(one);
        if (rc == DB_DONE) continue; /* trimmed meanwhile (another instance) */
        reqlog_batch_reader rd;
        if (rc != DB_ROW) r = store__db_failed(s);
        if (rc != DB_ROW || !open_batch(s, one, 1, &rd)) {
            r = STORE_ERROR;
            break;
        }
        reqlog_entry e;
        int erc;
        while ((erc = next_entry(s, &rd, &e)) > 0)
            if (!strcmp(e.request_id, request_id) && (!best || newer(&e, best))) {
                free(best);
                best = entry_copy(&e, true);
            }
        if (erc < 0) r = STORE_ERROR;
    }
    scan_close(&b);
    db_finalize(one);
    if (r == STORE_OK && !best) r = STORE_NOT_FOUND;
    if (r == STORE_OK) fn(best, ud);
    free(best);
    return r;
}

/* ---- totals ----------------------------------------------------------------------------------- */

typedef struct agg_group {
    char *name;
    reqlog_totals t;
    int64_t *durations;
    size_t n, cap;
} agg_group;

/* Groups by name: an open-addressing table of indexes into the list. */
typedef struct agg_table {
    agg_group *list;
    size_t n, cap;
    uint32_t *slots; /* index + 1; 0: empty */
    size_t nslots;   /* a power of two, at least twice REQLOG_GROUPS_MAX */
} agg_table;

/* The group called name, made when new; NULL past REQLOG_GROUPS_MAX groups. */
static agg_group *group_of(agg_table *t, const char *name)
{
    size_t mask = t->nslots - 1;
    for (size_t i = reqlog_batch_hash(name) & mask;; i = (i + 1) & mask) {
        if (!t->slots[i]) {
            if (t->n == REQLOG_GROUPS_MAX) return NULL;
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 64;
                t->list = xrealloc(t->list, t->cap * sizeof *t->list);
            }
            agg_group *g = &t->list[t->n];
            memset(g, 0, sizeof *g);
            g->name = xstrdup(name);
            t->slots[i] = (uint32_t)++t->n;
            return g;
        }
        agg_group *g = &t->list[t->slots[i] - 1];
        if (!strcmp(g->name, name)) return g;
    }
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

static int by_number_cmp(const void *a, const void *b)
{
    int64_t x = strtoll(((const agg_group *)a)->name, NULL, 10),
            y = strtoll(((const agg_group *)b)->name, NULL, 10);
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p (0..100] of n sorted values. */
static int64_t percentile(const int64_t *sorted, size_t n, int p)
{
    if (!n) return 0;
    size_t nth = (size_t)(((uint64_t)n * (uint64_t)p + 99) / 100); /* ceil(n·p/100) */
    return sorted[nth ? nth - 1 : 0];
}

typedef enum group_by { BY_MODEL, BY_PROVIDER, BY_KEY, BY_HOUR, BY_VERSION } group_by;

/* e's group's name into out (at least 24 bytes for the numeric ones). */
static const char *group_name(group_by by, const reqlog_entry *e, char *out, size_t len)
{
    switch (by) {
    case BY_MODEL: return e->model ? e->model : "";
    case BY_PROVIDER: return e->provider ? e->provider : "";
    case BY_KEY: return e->key_id ? e->key_id : "";
    case BY_HOUR:
        snprintf(out, len, "%lld", (long long)((e->time_us - e->time_us % 3600000000LL) / 1000000));
        return out;
    case BY_VERSION: snprintf(out, len, "%lld", (long long)e->prompt_version); return out;
    }
    return "";
}

/* fn on every entry that started in [since, until) (0: no bound), the newest batches first. */
static store_result each_entry(store *s, int64_t since_us, int64_t until_us,
                               void (*fn)(const reqlog_entry *e, void *ud), void *ud)
{
    batch_scan b;
    if (!scan_open(&b, s, "data", since_us, until_us, SCAN_DATA_ROWS)) return STORE_ERROR;
    store_result r = STORE_OK;
    int got;
    while (r == STORE_OK && (got = scan_next(&b)) != 0) {
        reqlog_batch_reader rd;
        if (got < 0 || !open_batch(s, b.st, 2, &rd)) {
            r = STORE_ERROR;
            break;
        }
        reqlog_entry e;
        int rc;
        while ((rc = next_entry(s, &rd, &e)) > 0)
            if (e.time_us >= b.since && e.time_us < b.until) fn(&e, ud);
        if (rc < 0) r = STORE_ERROR;
    }
    scan_close(&b);
    return r;
}

/* *sum += v, held at the largest int64 rather than wrapped (a shared store's blob may hold any
 * number). */
static void add_held(int64_t *sum, int64_t v)
{
    if (__builtin_add_overflow(*sum, v, sum)) *sum = v > 0 ? INT64_MAX : INT64_MIN;
}

typedef struct agg_run {
    group_by by;
    const char *prompt_id; /* NULL: any */
    agg_table t;
    size_t durations;
    bool sampled;
} agg_run;

static void on_agg_entry(const reqlog_entry *e, void *ud)
{
    agg_run *a = ud;
    if (a->prompt_id && !same(e->prompt_id, a->prompt_id)) return;
    char num[24];
    agg_group *g = group_of(&a->t, group_name(a->by, e, num, sizeof num));
    if (!g) {
        a->sampled = true; /* more groups than an answer holds: the rest are left out */
        return;
    }
    g->t.requests++;
    g->t.errors += e->status >= 400;
    add_held(&g->t.prompt_tokens, e->prompt_tokens);
    add_held(&g->t.completion_tokens, e->completion_tokens);
    add_held(&g->t.cached_tokens, e->cached_tokens);
    add_held(&g->t.reasoning_tokens, e->reasoning_tokens);
    if (e->cost_usd > 0) g->t.cost_usd += e->cost_usd;
    if (a->durations == REQLOG_LATENCY_ROWS_MAX) {
        a->sampled = true;
        return;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->durations = xrealloc(g->durations, g->cap * sizeof *g->durations);
    }
    g->durations[g->n++] = e->total_us;
    a->durations++;
}

/* The totals of entries with time in [since, until) grouped by `by`; prompt_id (NULL: any)
 * keeps the entries of one prompt template. */
static store_result aggregate(store *s, group_by by, const char *prompt_id, int64_t since_us,
                              int64_t until_us,
                              void (*fn)(const char *group, const reqlog_totals *t, void *ud), void *ud,
                              bool *sampled)
{
    agg_run a = {.by = by, .prompt_id = prompt_id, .t = {.nslots = 32768}};
    _Static_assert(32768 >= 2 * REQLOG_GROUPS_MAX, "the groups' table must stay half empty");
    a.t.slots = xcalloc(a.t.nslots, sizeof *a.t.slots);
    store_result r = each_entry(s, since_us, until_us, on_agg_entry, &a);
    agg_table *t = &a.t;
    if (r == STORE_OK) {
        for (size_t i = 0; i < t->n; i++) {
            agg_group *g = &t->list[i];
            if (g->n) qsort(g->durations, g->n, sizeof *g->durations, duration_cmp);
            g->t.p50_us = percentile(g->durations, g->n, 50);
            g->t.p95_us = percentile(g->durations, g->n, 95);
        }
        if (t->n)
            qsort(t->list, t->n, sizeof *t->list,
                  by == BY_HOUR || by == BY_VERSION ? by_number_cmp : by_requests_cmp);
        for (size_t i = 0; i < t->n; i++)
            fn(t->list[i].name, &t->list[i].t, ud);
    }
    *sampled = a.sampled;
    for (size_t i = 0; i < t->n; i++) {
        free(t->list[i].name);
        free(t->list[i].durations);
    }
    free(t->list);
    free(t->slots);
    return r;
}

store_result store_reqlog_aggregate(store *s, const char *by, int64_t since_us, int64_t until_us,
                                    void (*fn)(const char *group, const reqlog_totals *t, void *ud), void *ud,
                                    bool *sampled)
{
    static const struct {
        const char *name;
        group_by by;
    } groups[] = {{"model", BY_MODEL}, {"provider", BY_PROVIDER}, {"key", BY_KEY}, {"hour", BY_HOUR}};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(by, groups[i].name))
            return aggregate(s, groups[i].by, NULL, since_us, until_us, fn, ud, sampled);
    return store__fail(s, "the request log cannot be grouped by %.32s", by);
}

store_result store_reqlog_aggregate_prompt(store *s, const char *prompt_id, int64_t since_us,
                                           int64_t until_us,
                                           void (*fn)(const char *version, const reqlog_totals *t, void *ud),
                                           void *ud, bool *sampled)
{
    return aggregate(s, BY_VERSION, prompt_id, since_us, until_us, fn, ud, sampled);
}

typedef struct prompt_run {
    const char *prompt_id;
    void (*fn)(const char *request_id, int64_t version, void *ud);
    void *ud;
} prompt_run;

static void on_prompt_entry(const reqlog_entry *e, void *ud)
{
    prompt_run *p = ud;
    if (same(e->prompt_id, p->prompt_id)) p->fn(e->request_id, e->prompt_version, p->ud);
}

store_result store__reqlog_prompt_requests(store *s, const char *prompt_id, int64_t since_us,
                                           int64_t until_us,
                                           void (*fn)(const char *request_id, int64_t version, void *ud),
                                           void *ud)
{
    prompt_run p = {prompt_id, fn, ud};
    return each_entry(s, since_us, until_us, on_prompt_entry, &p);
}

/* ---- retention -------------------------------------------------------------------------------- */

/* Batch seq written again with only the entries keep() says stay (their indexes kept), or
 * deleted when none stays; *removed counts the others. A damaged batch is deleted whole:
 * retention is where it goes. */
static bool rewrite_batch(store *s, int64_t seq, const void *data, size_t len,
                          bool (*keep)(const reqlog_entry *e, void *ud), void *ud, int64_t *removed)
{
    db *d = store__db(s);
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    reqlog_batch_reader rd;
    reqlog_entry e;
    int rc = reqlog_batch_open(&rd, data, len, seq) ? 1 : -1;
    int64_t gone = 0;
    while (rc > 0 && (rc = reqlog_batch_next(&rd, &e)) > 0) {
        /* an entry kept fits (it came from a batch) unless the blob held more than a batch may */
        if (!keep(&e, ud) || !reqlog_batch_add(&w, &e, (unsigned)(e.seq & 0xffff))) gone++;
    }
    if (rc < 0) reqlog_batch_reset(&w); /* damaged: nothing of it stays */
    db_stmt *st = NULL;
    if (!w.n) {
        st = db_prepare(d, "DELETE FROM request_log_batch WHERE seq = ?1");
        if (st) db_bind_int64(st, 1, seq);
    } else if (gone) {
        uint8_t ids[REQLOG_IDS_MAX_BYTES];
        size_t ids_len = reqlog_batch_ids(&w, ids);
        st = db_prepare(d, "UPDATE request_log_batch SET ts_min = ?1, ts_max = ?2, entries = ?3, ids = ?4, "
                           "data = ?5 WHERE seq = ?6");
        if (st) {
            db_bind_int64(st, 1, w.ts_min);
            db_bind_int64(st, 2, w.ts_max);
            db_bind_int64(st, 3, (int64_t)w.n);
            db_bind_blob(st, 4, ids, ids_len);
            db_bind_blob(st, 5, w.data.data, w.data.len);
            db_bind_int64(st, 6, seq);
        }
    }
    bool ok = true;
    if (!w.n || gone) ok = st && db_step(st) == DB_DONE;
    if (!ok) store__db_failed(s);
    db_finalize(st);
    reqlog_batch_free(&w);
    if (ok) *removed += gone;
    return ok;
}

typedef struct trim_rule {
    int64_t before_us; /* by age: entries that started before this go; 0: by count, any */
    int64_t budget;    /* entries that may still go in this run */
} trim_rule;

static bool keep_entry(const reqlog_entry *e, void *ud)
{
    trim_rule *t = ud;
    if ((t->before_us && e->time_us >= t->before_us) || t->budget <= 0) return true;
    t->budget--;
    return false;
}

/* The rule applied to the oldest batches, one at a time (one blob in memory), while its budget
 * lasts: by age, those holding an entry older than the cutoff; by count, any. */
static bool trim_batches(store *s, trim_rule *rule, int64_t *deleted)
{
    db_stmt *st = db_prepare(store__db(s), rule->before_us ? "SELECT seq, data FROM request_log_batch WHERE "
                                                             "seq > ?1 AND ts_min < ?2 ORDER BY seq LIMIT 1"
                                                           : "SELECT seq, data FROM request_log_batch WHERE "
                                                             "seq > ?1 ORDER BY seq LIMIT 1");
    if (!st) return store__db_failed(s), false;
    bool ok = true;
    for (int64_t last = 0; ok && rule->budget > 0;) {
        db_reset(st);
        db_bind_int64(st, 1, last);
        if (rule->before_us) db_bind_int64(st, 2, rule->before_us);
        db_status rc = db_step(st);
        if (rc == DB_DONE) break;
        if (rc != DB_ROW) {
            ok = false;
            store__db_failed(s);
            break;
        }
        last = db_column_int64(st, 0);
        size_t len;
        const void *blob = db_column_blob(st, 1, &len);
        void *data = xmalloc(len ? len : 1); /* the row is changed below: its blob copied first */
        if (len) memcpy(data, blob, len);
        db_reset(st);
        ok = rewrite_batch(s, last, data, len, keep_entry, rule, deleted);
        free(data);
    }
    db_finalize(st);
    return ok;
}

/* *over: how many rows count_sql counts past max_rows (0: none, or no bound when max_rows <= 0). */
static bool rows_over(store *s, const char *count_sql, int64_t max_rows, int64_t *over)
{
    *over = 0;
    if (max_rows <= 0) return true;
    db_stmt *st = db_prepare(store__db(s), count_sql);
    if (!st) return store__db_failed(s), false;
    db_status rc = db_step(st);
    int64_t rows = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    db_finalize(st);
    if (rc != DB_ROW) return store__db_failed(s), false;
    if (rows > max_rows) *over = rows - max_rows;
    return true;
}

static bool trim_log(store *s, int64_t older_than_us, int64_t max_rows, int64_t max_delete, int64_t *deleted)
{
    if (older_than_us > 0) {
        trim_rule rule = {older_than_us, max_delete};
        if (!trim_batches(s, &rule, deleted)) return false;
    }
    int64_t over;
    if (!rows_over(s, "SELECT COALESCE(sum(entries), 0) FROM request_log_batch", max_rows, &over))
        return false;
    if (!over) return true;
    trim_rule rule = {0, over < max_delete ? over : max_delete};
    return trim_batches(s, &rule, deleted);
}

/* Deletes the oldest feedback rows, at most limit of them: of those given before before_us when
 * it is positive, else of all. */
static bool delete_oldest_feedback(store *s, int64_t before_us, int64_t limit, int64_t *deleted)
{
    db_stmt *st = db_prepare(store__db(s),
                             before_us > 0 ? "DELETE FROM feedback WHERE seq IN (SELECT seq FROM feedback "
                                             "WHERE ts_us < ?2 ORDER BY seq LIMIT ?1)"
                                           : "DELETE FROM feedback WHERE seq IN (SELECT seq FROM "
                                             "feedback ORDER BY seq LIMIT ?1)");
    if (!st) return store__db_failed(s), false;
    db_bind_int64(st, 1, limit);
    if (before_us > 0) db_bind_int64(st, 2, before_us);
    db_status rc = db_step(st);
    if (rc == DB_DONE)
        *deleted += db_changes(st);
    else
        store__db_failed(s);
    db_finalize(st);
    return rc == DB_DONE;
}

static bool trim_feedback(store *s, int64_t older_than_us, int64_t max_rows, int64_t max_delete,
                          int64_t *deleted)
{
    if (older_than_us > 0 && !delete_oldest_feedback(s, older_than_us, max_delete, deleted)) return false;
    int64_t over;
    if (!rows_over(s, "SELECT count(*) FROM feedback", max_rows, &over)) return false;
    return !over || delete_oldest_feedback(s, 0, over < max_delete ? over : max_delete, deleted);
}

store_result store_reqlog_trim(store *s, int64_t older_than_us, int64_t max_rows, int64_t max_delete,
                               int64_t *deleted, int64_t *deleted_feedback)
{
    *deleted = *deleted_feedback = 0;
    db *d = store__db(s);
    if (!db_begin_write(d)) return store__db_failed(s);
    bool ok = trim_log(s, older_than_us, max_rows, max_delete, deleted) &&
              trim_feedback(s, older_than_us, max_rows, max_delete, deleted_feedback);
    if (ok && !db_exec(d, "COMMIT")) ok = (store__db_failed(s), false);
    if (ok) return STORE_OK;
    db_rollback(d);
    *deleted = *deleted_feedback = 0;
    return STORE_ERROR;
}

/* ---- the rows of migrations 6-10, moved into batches (migration 11) --------------------------- */

static const char legacy_columns[] =
    "seq, ts_us, request_id, trace_id, key_id, key_alias, team_id, method, path, route, provider, model, "
    "upstream_model, status, error_class, error, stream, prompt_tokens, completion_tokens, cached_tokens, "
    "cache_write_tokens, reasoning_tokens, cost_usd, cache, retries, fallbacks, ttfb_us, total_us, "
    "overhead_us, attempts, request_body, prompt_id, prompt_version, route_reason";

static int64_t column_opt_int64(db_stmt *st, int i)
{
    return db_column_is_null(st, i) ? -1 : db_column_int64(st, i);
}

static void legacy_row(db_stmt *st, reqlog_entry *e)
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

bool store__reqlog_move_rows(store *s)
{
    db *d = store__db(s);
    /* an older aigw sharing the database may still be writing rows: they wait, then fail on the
     * dropped table (counted as store errors there), rather than commit behind the last read */
    if (db_dialect_of(d) == DB_POSTGRES && !db_exec(d, "LOCK TABLE request_log IN EXCLUSIVE MODE"))
        return store__db_failed(s), false;
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM request_log WHERE seq > ?1 ORDER BY seq LIMIT 256",
             legacy_columns);
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    int64_t last = 0;
    bool ok = true;
    for (bool more = true; ok && more;) {
        db_stmt *st = db_prepare(d, sql);
        if (!st) {
            ok = false;
            break;
        }
        db_bind_int64(st, 1, last);
        more = false;
        db_status rc;
        while (ok && (rc = db_step(st)) == DB_ROW) {
            reqlog_entry e = {0};
            legacy_row(st, &e);
            last = e.seq;
            more = true;
            ok = add_entry(d, &w, &e);
        }
        if (ok && rc != DB_DONE) ok = false;
        db_finalize(st);
    }
    if (ok && w.n) ok = insert_batch(d, &w);
    reqlog_batch_free(&w);
    if (ok) ok = db_exec(d, "DROP TABLE request_log");
    if (!ok) store__db_failed(s);
    return ok;
}
