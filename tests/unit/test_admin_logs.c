/* test_admin_logs.c — the request log's pure parsing (admin_logs.c: the query string, times,
 * status ranges, the cursor, a list's filter) and its rows on a SQLite store (store_reqlog.c:
 * filters, pages covering every row once, totals and nearest-rank percentiles, trimming by age
 * and count, a batch through its 32-, 8- and 1-row statements with every column where it
 * belongs), a worker's record and the row the store's thread makes of it (observe/reqlog.c),
 * and a kept body's redaction. */
#include "../../src/admin/admin_logs.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "observe/reqlog.h"
#include "store/db.h"

static void test_cursor_round_trip_and_refusals(void **state)
{
    char c[CURSOR_LEN + 1];
    int64_t t, seq;
    cursor_encode(1796585231845855, 42, c);
    assert_int_equal(strlen(c), CURSOR_LEN);
    assert_true(cursor_decode(c, &t, &seq));
    assert_true(t == 1796585231845855 && seq == 42);
    assert_false(cursor_decode("", &t, &seq));
    assert_false(cursor_decode("0123", &t, &seq));
    assert_false(cursor_decode("zz000000000000000000000000000000", &t, &seq));
    assert_false(cursor_decode("ffffffffffffffff0000000000000001", &t, &seq)); /* past INT64_MAX */
    assert_false(cursor_decode("00000000000000010000000000000001x", &t, &seq));
    assert_false(cursor_decode("000000000000000A0000000000000001", &t, &seq)); /* ours are lowercase */
}

static void test_query_strict(void **state)
{
    log_query q;
    log_bad b;
    static const char *const allowed[] = {"key", "error", NULL};
    assert_true(parse_query("key=k%2F1&error=time+out", allowed, &q, &b));
    assert_string_equal(param(&q, "key"), "k/1");
    assert_string_equal(param(&q, "error"), "time out");
    assert_true(parse_query("", allowed, &q, &b));
    assert_null(param(&q, "key"));
    assert_true(parse_query("key=", allowed, &q, &b));
    assert_null(param(&q, "key")); /* empty asks nothing */
    assert_false(parse_query("modle=x", allowed, &q, &b));
    assert_string_equal(b.param, "modle");
    assert_false(parse_query("key=a&key=b", allowed, &q, &b));
    assert_false(parse_query("key=%zz", allowed, &q, &b));
    assert_false(parse_query("key=%4", allowed, &q, &b));
    assert_false(parse_query("key=%0a", allowed, &q, &b)); /* a control byte */
    char big[VALUE_MAX + 16];
    memset(big, 'a', sizeof big);
    memcpy(big, "key=", 4);
    big[sizeof big - 1] = '\0';
    assert_false(parse_query(big, allowed, &q, &b));
    char huge[QUERY_MAX + 8];
    memset(huge, 'a', sizeof huge);
    huge[sizeof huge - 1] = '\0';
    assert_false(parse_query(huge, allowed, &q, &b));
}

static void test_times_and_status(void **state)
{
    int64_t t;
    assert_true(parse_time_us("1796585231", &t));
    assert_true(t == 1796585231LL * 1000000);
    assert_true(parse_time_us("2026-12-06", &t));
    assert_true(t == 1796515200LL * 1000000);
    assert_true(parse_time_us("2026-12-06T19:27:11Z", &t));
    assert_true(t == 1796585231LL * 1000000);
    assert_true(parse_time_us("2026-12-06T19:27:11.845Z", &t));
    assert_true(t == 1796585231LL * 1000000 + 845000);
    assert_true(parse_time_us("2026-12-06T19:27:11.845855Z", &t));
    assert_true(t == 1796585231LL * 1000000 + 845855);
    assert_false(parse_time_us("2026-12-06T19:27:11.8458551Z", &t));
    assert_false(parse_time_us("2026-12-06T19:27:11", &t)); /* UTC only, said */
    assert_false(parse_time_us("2026-12-06T19:27:11.Z", &t));
    assert_false(parse_time_us("yesterday", &t));
    assert_false(parse_time_us("", &t));
    int lo, hi;
    assert_true(parse_status("429", &lo, &hi) && lo == 429 && hi == 429);
    assert_true(parse_status("5xx", &lo, &hi) && lo == 500 && hi == 599);
    assert_true(parse_status("error", &lo, &hi) && lo == 400 && hi == 599);
    assert_true(parse_status("ok", &lo, &hi) && lo == 100 && hi == 399);
    assert_false(parse_status("6xx", &lo, &hi));
    assert_false(parse_status("42", &lo, &hi));
    assert_false(parse_status("4x9", &lo, &hi));
}

static void test_list_filter(void **state)
{
    log_query q;
    reqlog_filter f;
    log_bad b;
    assert_true(parse_list("key=k1&model=m&status=5xx&since=2026-12-06&limit=7&error=Timed", &q, &f, &b));
    assert_string_equal(f.key, "k1");
    assert_string_equal(f.model, "m");
    assert_string_equal(f.error_text, "Timed");
    assert_true(f.status_min == 500 && f.status_max == 599 && f.limit == 7 && f.since_us > 0 && !f.after);
    assert_true(parse_list("", &q, &f, &b));
    assert_int_equal(f.limit, PAGE_LIMIT_DEFAULT);
    assert_false(parse_list("limit=0", &q, &f, &b));
    assert_string_equal(b.param, "limit");
    assert_false(parse_list("limit=501", &q, &f, &b));
    assert_false(parse_list("limit=1e2", &q, &f, &b));
    assert_false(parse_list("status=teapot", &q, &f, &b));
    assert_string_equal(b.param, "status");
    assert_false(parse_list("since=2026-12-07&until=2026-12-06", &q, &f, &b));
    assert_string_equal(b.param, "until");
    assert_false(parse_list("cursor=abc", &q, &f, &b));
    assert_string_equal(b.param, "cursor");
    char c[CURSOR_LEN + 1], query[64];
    cursor_encode(5, 6, c);
    snprintf(query, sizeof query, "cursor=%s", c);
    assert_true(parse_list(query, &q, &f, &b));
    assert_true(f.after && f.cursor_time_us == 5 && f.cursor_seq == 6);
}

/* ---- the rows, on a SQLite store ------------------------------------------------------------------ */

static char dir[256];
static store *st;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/aigw-test-reqlog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/r.db", dir);
    st = store_open(path, err, sizeof err);
    assert_non_null(st);
    return 0;
}

static int teardown(void **state)
{
    store_close(st);
    char path[512];
    const char *const files[] = {"r.db", "r.db-wal", "r.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

/* 20 requests a second apart from T: i % 2 on model a/b, every 5th a 502, total time (i+1) ms. */
#define T0 1796585231000000LL
static void write_rows(void)
{
    reqlog_entry rows[20];
    const reqlog_entry *ptrs[20];
    char ids[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(ids[i], sizeof ids[i], "req-%02d", i);
        rows[i] = (reqlog_entry){.time_us = T0 + i * 1000000LL,
                                 .request_id = ids[i],
                                 .key_id = i < 10 ? "key_a" : "key_b",
                                 .method = "POST",
                                 .path = "/v1/chat/completions",
                                 .provider = "p",
                                 .model = i % 2 ? "b" : "a",
                                 .status = i % 5 == 4 ? 502 : 200,
                                 .error = i % 5 == 4 ? "upstream Timed out" : NULL,
                                 .error_class = i % 5 == 4 ? "timeout" : NULL,
                                 .prompt_tokens = 10,
                                 .completion_tokens = i,
                                 .cost_usd = i == 3 ? -1 : 0.5,
                                 .ttfb_us = -1,
                                 .total_us = (i + 1) * 1000,
                                 .overhead_us = 7,
                                 .attempts = "[{\"provider\":\"p\"}]"};
        ptrs[i] = &rows[i];
    }
    /* a same-time pair: the seq tells them apart in the order */
    rows[19].time_us = rows[18].time_us;
    assert_int_equal(store_reqlog_write(st, ptrs, 20), STORE_OK);
}

typedef struct seen {
    char ids[128][16];
    int n;
    int64_t last_time, last_seq;
} seen;

static void on_row(const reqlog_entry *e, void *ud)
{
    seen *s = ud;
    snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", e->request_id);
    s->last_time = e->time_us;
    s->last_seq = e->seq;
}

static int list(const reqlog_filter *f, seen *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(store_reqlog_list(st, f, on_row, s), STORE_OK);
    return s->n;
}

static void test_store_filters_and_pages(void **state)
{
    write_rows();
    seen s;
    reqlog_filter f = {.limit = 100};
    assert_int_equal(list(&f, &s), 20);
    assert_string_equal(s.ids[0], "req-19"); /* same time as 18, written later: first */
    assert_string_equal(s.ids[1], "req-18");
    assert_string_equal(s.ids[19], "req-00");
    f = (reqlog_filter){.limit = 100, .key = "key_b"};
    assert_int_equal(list(&f, &s), 10);
    f = (reqlog_filter){.limit = 100, .model = "a"};
    assert_int_equal(list(&f, &s), 10);
    f = (reqlog_filter){.limit = 100, .status_min = 500, .status_max = 599};
    assert_int_equal(list(&f, &s), 4);
    f = (reqlog_filter){.limit = 100, .error_text = "timed OUT"};
    assert_int_equal(list(&f, &s), 4);
    f = (reqlog_filter){.limit = 100, .error_text = "%"}; /* LIKE's wildcard is text here */
    assert_int_equal(list(&f, &s), 0);
    f = (reqlog_filter){.limit = 100, .since_us = T0 + 5000000, .until_us = T0 + 7000000};
    assert_int_equal(list(&f, &s), 2);
    f = (reqlog_filter){.limit = 100, .provider = "nope"};
    assert_int_equal(list(&f, &s), 0);
    /* pages of 3 cover all 20 rows once, in order */
    int total = 0;
    char all[20][16];
    f = (reqlog_filter){.limit = 3};
    for (;;) {
        int n = list(&f, &s);
        for (int i = 0; i < n; i++)
            snprintf(all[total++], sizeof all[0], "%s", s.ids[i]);
        if (n < 3) break;
        f.after = true;
        f.cursor_time_us = s.last_time;
        f.cursor_seq = s.last_seq;
    }
    assert_int_equal(total, 20);
    for (int i = 0; i < 20; i++) {
        char want[16];
        snprintf(want, sizeof want, "req-%02d", 19 - i);
        assert_string_equal(all[i], want);
    }
}

typedef struct groups {
    char names[8][32];
    reqlog_totals t[8];
    int n;
} groups;

static void on_group_row(const char *g, const reqlog_totals *t, void *ud)
{
    groups *gs = ud;
    snprintf(gs->names[gs->n], sizeof gs->names[0], "%s", g);
    gs->t[gs->n++] = *t;
}

static void test_store_aggregate(void **state)
{
    write_rows();
    groups g = {0};
    bool sampled = true;
    assert_int_equal(store_reqlog_aggregate(st, "model", 0, 0, on_group_row, &g, &sampled), STORE_OK);
    assert_false(sampled);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.names[0], "a"); /* 10 each: then by name */
    assert_int_equal(g.t[0].requests, 10);
    /* model a: i = 0,2,…,18; durations (i+1) ms = 1,3,…,19; errors at i = 4, 14 */
    assert_int_equal(g.t[0].errors, 2);
    assert_int_equal(g.t[0].p50_us, 9000);  /* rank ceil(5) = 5th of 1,3,5,7,9… */
    assert_int_equal(g.t[0].p95_us, 19000); /* rank ceil(9.5) = 10th */
    assert_int_equal(g.t[0].completion_tokens, 90);
    assert_true(g.t[0].cost_usd > 4.99 && g.t[0].cost_usd < 5.01);
    assert_true(g.t[1].cost_usd > 4.49 && g.t[1].cost_usd < 4.51); /* row 3's cost unknown */
    memset(&g, 0, sizeof g);
    assert_int_equal(store_reqlog_aggregate(st, "hour", 0, 0, on_group_row, &g, &sampled), STORE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.names[0], "1796583600");
    assert_int_equal(g.t[0].requests, 20);
    assert_int_equal(store_reqlog_aggregate(st, "nope", 0, 0, on_group_row, &g, &sampled), STORE_ERROR);
}

static int64_t feedback_rows(void)
{
    db_stmt *q = db_prepare(store__db(st), "SELECT count(*) FROM feedback");
    assert_non_null(q);
    assert_int_equal(db_step(q), DB_ROW);
    int64_t n = db_column_int64(q, 0);
    db_finalize(q);
    return n;
}

static void test_store_trim(void **state)
{
    write_rows();
    /* ten ratings, one a second from T0, the request log's clock */
    for (int i = 0; i < 10; i++) {
        int64_t seq;
        char id[16];
        snprintf(id, sizeof id, "req-%d", i);
        assert_int_equal(store_feedback_add(st, id, 1, 1, NULL, NULL, NULL, T0 + i * 1000000LL, &seq),
                         STORE_OK);
    }
    int64_t deleted, deleted_feedback;
    seen s;
    reqlog_filter f = {.limit = 100};
    /* by age: the 5 oldest; bounded: at most 3 a run — in each table */
    assert_int_equal(store_reqlog_trim(st, T0 + 5000000, 0, 3, &deleted, &deleted_feedback), STORE_OK);
    assert_int_equal(deleted, 3);
    assert_int_equal(deleted_feedback, 3);
    assert_int_equal(store_reqlog_trim(st, T0 + 5000000, 0, 3, &deleted, &deleted_feedback), STORE_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(deleted_feedback, 2);
    assert_int_equal(list(&f, &s), 15);
    assert_int_equal(feedback_rows(), 5);
    /* by count: the oldest go */
    assert_int_equal(store_reqlog_trim(st, 0, 4, 100, &deleted, &deleted_feedback), STORE_OK);
    assert_int_equal(deleted, 11);
    assert_int_equal(deleted_feedback, 1);
    assert_int_equal(list(&f, &s), 4);
    assert_string_equal(s.ids[3], "req-16");
    assert_int_equal(feedback_rows(), 4);
    /* the newest ratings stay: req-6 … req-9 */
    db_stmt *q = db_prepare(store__db(st), "SELECT min(request_id) FROM feedback");
    assert_int_equal(db_step(q), DB_ROW);
    assert_string_equal(db_column_text(q, 0), "req-6");
    db_finalize(q);
}

/* Row i of a batch: every column a value of its own, so a column bound one place off shows. */
static reqlog_entry batch_row(int i, char (*text)[12][32])
{
    for (int k = 0; k < 12; k++)
        snprintf(text[i][k], sizeof text[i][k], "c%d-%d", k, i);
    return (reqlog_entry){.time_us = T0 + i,
                          .request_id = text[i][0],
                          .trace_id = text[i][1],
                          .key_id = text[i][2],
                          .key_alias = text[i][3],
                          .team = text[i][4],
                          .method = "POST",
                          .path = text[i][5],
                          .route = i % 3 ? text[i][6] : NULL,
                          .provider = text[i][7],
                          .model = text[i][8],
                          .upstream_model = text[i][9],
                          .status = 200 + i,
                          .error_class = i % 2 ? "timeout" : NULL,
                          .error = i % 2 ? text[i][10] : NULL,
                          .stream = i % 2,
                          .prompt_tokens = 1000 + i,
                          .completion_tokens = 2000 + i,
                          .cached_tokens = 3000 + i,
                          .cache_write_tokens = 4000 + i,
                          .reasoning_tokens = 5000 + i,
                          .cost_usd = i == 5 ? -1 : i * 0.25,
                          .cache = i % 4 ? "MISS" : NULL,
                          .retries = i % 5,
                          .fallbacks = i % 7,
                          .ttfb_us = i % 6 ? 6000 + i : -1,
                          .total_us = 7000 + i,
                          .overhead_us = 8000 + i,
                          .attempts = "[]",
                          .request_body = i % 2 ? NULL : text[i][11],
                          .prompt_id = i % 3 ? NULL : "greeting",
                          .prompt_version = i % 3 ? 0 : i};
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

typedef struct batch_check {
    const reqlog_entry *want;
    int found;
} batch_check;

static void on_batch_row(const reqlog_entry *e, void *ud)
{
    batch_check *c = ud;
    const reqlog_entry *w = c->want;
    assert_true(e->time_us == w->time_us && e->status == w->status && e->stream == w->stream);
    const char *got[] = {e->request_id,     e->trace_id,    e->key_id,      e->key_alias, e->team,
                         e->method,         e->path,        e->route,       e->provider,  e->model,
                         e->upstream_model, e->error_class, e->error,       e->cache,     e->attempts,
                         e->request_body,   e->prompt_id,   e->route_reason};
    const char *want[] = {w->request_id,     w->trace_id,    w->key_id,      w->key_alias, w->team,
                          w->method,         w->path,        w->route,       w->provider,  w->model,
                          w->upstream_model, w->error_class, w->error,       w->cache,     w->attempts,
                          w->request_body,   w->prompt_id,   w->route_reason};
    for (size_t k = 0; k < sizeof got / sizeof got[0]; k++)
        if (!same_text(got[k], want[k]))
            fail_msg("%s: column %zu is %s, wanted %s", w->request_id, k, got[k], want[k]);
    assert_true(e->prompt_tokens == w->prompt_tokens && e->completion_tokens == w->completion_tokens &&
                e->cached_tokens == w->cached_tokens && e->cache_write_tokens == w->cache_write_tokens &&
                e->reasoning_tokens == w->reasoning_tokens);
    assert_true(w->cost_usd < 0 ? e->cost_usd < 0 : e->cost_usd == w->cost_usd);
    assert_true(e->retries == w->retries && e->fallbacks == w->fallbacks && e->ttfb_us == w->ttfb_us &&
                e->total_us == w->total_us && e->overhead_us == w->overhead_us &&
                e->prompt_version == w->prompt_version);
    c->found++;
}

static void test_store_batch_statements(void **state)
{
    /* 77 rows: two 32-row statements, one of 8, five of 1 — then 5 more in a second batch */
    enum { N = 82 };
    static char text[N][12][32];
    static reqlog_entry rows[N];
    const reqlog_entry *ptrs[N];
    for (int i = 0; i < N; i++) {
        rows[i] = batch_row(i, text);
        ptrs[i] = &rows[i];
    }
    assert_int_equal(store_reqlog_write(st, ptrs, 77), STORE_OK);
    assert_int_equal(store_reqlog_write(st, ptrs + 77, 5), STORE_OK);
    for (int i = 0; i < N; i++) {
        batch_check c = {.want = &rows[i]};
        assert_int_equal(store_reqlog_get(st, rows[i].request_id, on_batch_row, &c), STORE_OK);
        assert_int_equal(c.found, 1);
    }
    seen s;
    reqlog_filter f = {.limit = 100};
    assert_int_equal(list(&f, &s), N);
    assert_string_equal(s.ids[0], "c0-81");
}

/* Batches whose times overlap (two workers' batches, written in turns): pages of 7 walk every
 * entry once in (time, seq) order, with a filter too — the scan's early stop must not skip an
 * entry of a later batch — and each entry is found by its id. */
static void test_store_overlapping_batches(void **state)
{
    enum { BATCHES = 20, PER = 12, N = BATCHES * PER }; /* more batches than a scan's query reads */
    static char ids[N][16];
    static reqlog_entry rows[N];
    const reqlog_entry *ptrs[PER];
    uint32_t x = 12345;
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER; i++) {
            int k = b * PER + i;
            x = x * 1103515245u + 12345u;
            snprintf(ids[k], sizeof ids[k], "ov-%03d", k);
            /* times spread over a window twice a batch's span, so batches overlap; the third and
             * fourth batches of every four all at one time, so ties straddle pages and batches */
            int64_t t = b % 4 >= 2 ? T0 + (int64_t)(b / 4) * 24000 + 5000
                                   : T0 + (int64_t)b * 6000 + (int64_t)(x >> 16) % 12000;
            rows[k] = (reqlog_entry){.time_us = t,
                                     .request_id = ids[k],
                                     .key_id = k % 3 ? "key_a" : "key_b",
                                     .method = "POST",
                                     .path = "/v1/chat/completions",
                                     .status = 200,
                                     .ttfb_us = -1,
                                     .overhead_us = -1,
                                     .cost_usd = -1,
                                     .attempts = "[]"};
            ptrs[i] = &rows[k];
        }
        assert_int_equal(store_reqlog_write(st, ptrs, PER), STORE_OK);
    }
    /* the order wanted: time descending, then the later write first */
    static int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0; j--) {
            const reqlog_entry *a = &rows[order[j - 1]], *b = &rows[order[j]];
            if (a->time_us > b->time_us || (a->time_us == b->time_us && order[j - 1] > order[j])) break;
            int t = order[j - 1];
            order[j - 1] = order[j];
            order[j] = t;
        }
    for (int pass = 0; pass < 2; pass++) {
        const char *key = pass ? "key_b" : NULL;
        reqlog_filter f = {.limit = 7, .key = key};
        int at = 0;
        seen s;
        for (int pages = 0; pages < N; pages++) {
            int n = list(&f, &s);
            for (int i = 0; i < n; i++) {
                while (key && strcmp(rows[order[at]].key_id, key))
                    at++;
                assert_string_equal(s.ids[i], ids[order[at++]]);
            }
            if (n < 7) break;
            f.after = true;
            f.cursor_time_us = s.last_time;
            f.cursor_seq = s.last_seq;
        }
        while (at < N && key && strcmp(rows[order[at]].key_id, key))
            at++;
        assert_int_equal(at, N);
    }
    for (int k = 0; k < N; k++) {
        batch_check c = {.want = &rows[k]};
        assert_int_equal(store_reqlog_get(st, ids[k], on_batch_row, &c), STORE_OK);
        assert_int_equal(c.found, 1);
    }
    batch_check none = {0};
    assert_int_equal(store_reqlog_get(st, "ov-999", on_batch_row, &none), STORE_NOT_FOUND);
}

/* The scan's early stop at a tie: a batch written first holds the newest entry and one at time
 * 50; a batch written later holds another at 50, which is newer (its seq is larger) though its
 * batch's newest time is only the page's oldest. A page of two must hold it. */
static void test_store_page_tie_across_batches(void **state)
{
    reqlog_entry a = {.time_us = 100, .request_id = "a-100", .method = "POST", .path = "/", .attempts = "[]"},
                 b = {.time_us = 50, .request_id = "a-50", .method = "POST", .path = "/", .attempts = "[]"},
                 c = {.time_us = 50, .request_id = "b-50", .method = "POST", .path = "/", .attempts = "[]"};
    const reqlog_entry *first[] = {&a, &b}, *second[] = {&c};
    assert_int_equal(store_reqlog_write(st, first, 2), STORE_OK);
    assert_int_equal(store_reqlog_write(st, second, 1), STORE_OK);
    seen s;
    reqlog_filter f = {.limit = 2};
    assert_int_equal(list(&f, &s), 2);
    assert_string_equal(s.ids[0], "a-100");
    assert_string_equal(s.ids[1], "b-50");
    f = (reqlog_filter){.limit = 2, .after = true, .cursor_time_us = s.last_time, .cursor_seq = s.last_seq};
    assert_int_equal(list(&f, &s), 1);
    assert_string_equal(s.ids[0], "a-50");
}

/* A store of schema version 10 holds a row a request (table request_log); opening it moves
 * every row into batches, in order and with every column, and drops the table. */
static void test_store_old_rows_move_into_batches(void **state)
{
    db *d = store__db(st);
    assert_true(db_exec(
        d, "DROP TABLE request_log_batch;"
           "CREATE TABLE request_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_us BIGINT NOT NULL,"
           " request_id TEXT NOT NULL, trace_id TEXT, key_id TEXT, key_alias TEXT, team_id TEXT,"
           " method TEXT NOT NULL, path TEXT NOT NULL, route TEXT, provider TEXT, model TEXT,"
           " upstream_model TEXT, status INTEGER NOT NULL, error_class TEXT, error TEXT,"
           " stream INTEGER NOT NULL, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,"
           " cached_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,"
           " reasoning_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION, cache TEXT,"
           " retries INTEGER NOT NULL, fallbacks INTEGER NOT NULL, ttfb_us BIGINT, total_us BIGINT NOT NULL,"
           " overhead_us BIGINT, attempts TEXT NOT NULL DEFAULT '[]', request_body TEXT,"
           " prompt_id TEXT, prompt_version BIGINT, route_reason TEXT);"
           "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 599)"
           " INSERT INTO request_log (ts_us, request_id, trace_id, key_id, method, path, provider,"
           " model, status, error, stream, prompt_tokens, completion_tokens, cached_tokens,"
           " cache_write_tokens, reasoning_tokens, cost_usd, retries, fallbacks, ttfb_us, total_us,"
           " overhead_us, attempts, prompt_id, prompt_version, route_reason)"
           " SELECT 1796585231000000 + i * 1000, 'old-' || i, 't' || i, 'k' || (i % 4), 'POST',"
           " '/v1/chat/completions', 'p', 'm' || (i % 2), CASE WHEN i % 10 = 9 THEN 502 ELSE 200 END,"
           " CASE WHEN i % 10 = 9 THEN 'upstream timed out' END, i % 2, 10, i, 1, 2, 3,"
           " CASE WHEN i = 7 THEN NULL ELSE 0.25 END, i % 3, i % 5, CASE WHEN i % 6 = 0 THEN NULL"
           " ELSE 500 + i END, 1000 + i, 9, '[]', CASE WHEN i % 50 = 0 THEN 'greeting' END,"
           " CASE WHEN i % 50 = 0 THEN 2 END, 'reason ' || i FROM n;"
           "UPDATE schema_version SET version = 10;"));
    store_close(st);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/r.db", dir);
    st = store_open(path, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(store_schema_version(st), 13);
    db_stmt *q = db_prepare(store__db(st), "SELECT count(*) FROM sqlite_master WHERE name = 'request_log'");
    assert_int_equal(db_step(q), DB_ROW);
    assert_int_equal(db_column_int64(q, 0), 0);
    db_finalize(q);
    seen s;
    reqlog_filter f = {.limit = 100};
    assert_int_equal(list(&f, &s), 100);
    assert_string_equal(s.ids[0], "old-599");
    assert_string_equal(s.ids[99], "old-500");
    groups g = {0};
    bool sampled;
    assert_int_equal(store_reqlog_aggregate(st, "model", 0, 0, on_group_row, &g, &sampled), STORE_OK);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.t[0].requests + g.t[1].requests, 600);
    f = (reqlog_filter){.limit = 1000, .error_text = "TIMED"};
    assert_int_equal(list(&f, &s), 60);
    char tid[24], key[24], model[24], reason[24];
    for (int i = 0; i < 600; i += 7) {
        char id[16];
        snprintf(id, sizeof id, "old-%d", i);
        snprintf(tid, sizeof tid, "t%d", i);
        snprintf(key, sizeof key, "k%d", i % 4);
        snprintf(model, sizeof model, "m%d", i % 2);
        snprintf(reason, sizeof reason, "reason %d", i);
        reqlog_entry want = {.time_us = 1796585231000000LL + i * 1000,
                             .request_id = id,
                             .trace_id = tid,
                             .key_id = key,
                             .method = "POST",
                             .path = "/v1/chat/completions",
                             .provider = "p",
                             .model = model,
                             .status = i % 10 == 9 ? 502 : 200,
                             .error = i % 10 == 9 ? "upstream timed out" : NULL,
                             .stream = i % 2,
                             .prompt_tokens = 10,
                             .completion_tokens = i,
                             .cached_tokens = 1,
                             .cache_write_tokens = 2,
                             .reasoning_tokens = 3,
                             .cost_usd = i == 7 ? -1 : 0.25,
                             .retries = i % 3,
                             .fallbacks = i % 5,
                             .ttfb_us = i % 6 ? 500 + i : -1,
                             .total_us = 1000 + i,
                             .overhead_us = 9,
                             .attempts = "[]",
                             .prompt_id = i % 50 ? NULL : "greeting",
                             .prompt_version = i % 50 ? 0 : 2,
                             .route_reason = reason};
        batch_check c = {.want = &want};
        assert_int_equal(store_reqlog_get(st, id, on_batch_row, &c), STORE_OK);
        assert_int_equal(c.found, 1);
    }
}

/* A batch whose blob is not one (written by something else into a shared store): reading says
 * which batch is damaged, and retention deletes it. */
static void test_store_damaged_batch(void **state)
{
    write_rows();
    db_stmt *q =
        db_prepare(store__db(st), "INSERT INTO request_log_batch (ts_min, ts_max, entries, ids, data) "
                                  "VALUES (1, 2, 3, x'00', x'524c4231ff')");
    assert_int_equal(db_step(q), DB_DONE);
    db_finalize(q);
    seen s;
    memset(&s, 0, sizeof s);
    reqlog_filter f = {.limit = 20};
    assert_int_equal(store_reqlog_list(st, &f, on_row, &s), STORE_OK); /* older than a full page: not read */
    f.until_us = 3;
    assert_int_equal(store_reqlog_list(st, &f, on_row, &s), STORE_ERROR);
    assert_non_null(strstr(store_error(st), "damaged"));
    int64_t deleted, deleted_feedback;
    assert_int_equal(store_reqlog_trim(st, 100, 0, 10, &deleted, &deleted_feedback), STORE_OK);
    assert_int_equal(store_reqlog_list(st, &f, on_row, &s), STORE_OK);
    f = (reqlog_filter){.limit = 100};
    assert_int_equal(list(&f, &s), 20);
}

/* A worker's entry: packed from the request's own memory (strings that are not NUL-terminated
 * cut at their lengths), read back as the row the queries see. */
static void test_pack_entry(void **state)
{
    char provider[] = "oa", model[] = "gpt-x", note[] = "said \"no\"", key[] = "key_1";
    record_attempt attempts[] = {
        {.provider = provider,
         .model = model,
         .outcome = "error_status",
         .role = "first",
         .status = 500,
         .ms = 1.2344,
         .wait_ms = 0},
        {.provider = provider, .model = model, .outcome = "skipped", .role = "retry", .note = note},
        {.provider = "an",
         .model = "claude",
         .outcome = "ok",
         .role = "fallback",
         .step = "propose",
         .status = 200,
         .ms = 20,
         .wait_ms = 0.5},
    };
    static const uint8_t trace[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    exchange_record r = {.request_id = "req-1",
                         .method = "POST",
                         .path = "/v1/chat/completionsXX",
                         .path_len = 20,
                         .model = "m",
                         .provider = "an",
                         .upstream_model = "claude-long",
                         .upstream_model_len = 6,
                         .status = 200,
                         .key_id = key,
                         .start_ns = 1000000,
                         .first_byte_ns = 3000000,
                         .end_ns = 5000000,
                         .cost_usd = 0.5,
                         .attempts = attempts,
                         .nattempts = 3,
                         .any_trace_id = trace,
                         .overhead_us = 40,
                         .request_body = "{\"a\":1}",
                         .request_body_len = 7,
                         .cache = "MISS"};
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    buf scratch;
    buf_init(&scratch, 1 << 20);
    assert_true(reqlog_pack(&w, &r, 1796585231000000LL, 64, &scratch));
    memset(provider, 'X', 2); /* the exchange's memory goes on to the next request */
    memset(key, 'X', 5);
    memset(note, 'X', 4);
    /* a body over body_max is not kept; an upstream's failure gets its sentence */
    r.status = 502;
    r.nattempts = 1;
    r.any_trace_id = NULL;
    assert_true(reqlog_pack(&w, &r, 0, 6, &scratch));
    assert_int_equal(w.n, 2);
    reqlog_batch_reader rd;
    assert_true(reqlog_batch_open(&rd, w.data.data, w.data.len, 7));
    reqlog_entry row, *e = &row;
    assert_int_equal(reqlog_batch_next(&rd, e), 1);
    assert_true(e->seq == REQLOG_SEQ(7, 0) && e->time_us == 1796585231000000LL);
    assert_string_equal(e->request_id, "req-1");
    assert_string_equal(e->method, "POST");
    assert_string_equal(e->path, "/v1/chat/completions");
    assert_string_equal(e->upstream_model, "claude");
    assert_string_equal(e->key_id, "key_1");
    assert_string_equal(e->request_body, "{\"a\":1}");
    assert_string_equal(e->trace_id, "deadbeef000102030405060708090a0b");
    assert_true(e->ttfb_us == 2000 && e->total_us == 4000 && e->overhead_us == 40);
    assert_int_equal(e->retries, 0); /* a skipped target is no retry */
    assert_int_equal(e->fallbacks, 1);
    assert_null(e->error);
    assert_int_equal(e->attempts[0], REQLOG_ATTEMPTS_PACKED);
    buf json;
    buf_init(&json, 1 << 20);
    assert_true(reqlog_attempts_json(e->attempts, &json));
    assert_string_equal(
        json.data,
        "[{\"provider\":\"oa\",\"model\":\"gpt-x\",\"role\":\"first\",\"outcome\":\"error_status\","
        "\"status\":500,\"ms\":1.234,\"wait_ms\":0.000},"
        "{\"provider\":\"oa\",\"model\":\"gpt-x\",\"role\":\"retry\",\"outcome\":\"skipped\","
        "\"status\":null,\"ms\":0.000,\"wait_ms\":0.000,\"note\":\"said \\\"no\\\"\"},"
        "{\"provider\":\"an\",\"model\":\"claude\",\"step\":\"propose\",\"role\":\"fallback\","
        "\"outcome\":\"ok\",\"status\":200,\"ms\":20.000,\"wait_ms\":0.500}]");
    assert_true(e->status == 200 && !e->error_class && e->cost_usd == 0.5);
    assert_string_equal(e->cache, "MISS");
    assert_int_equal(reqlog_batch_next(&rd, e), 1);
    assert_true(e->seq == REQLOG_SEQ(7, 1) && e->time_us == 0); /* a time before the last one's */
    assert_string_equal(e->path, "/v1/chat/completions");       /* the first entry's, referred to */
    assert_string_equal(e->key_id, "XXXXX"); /* the key changed in between: written again */
    assert_string_equal(e->request_id, "req-1");
    assert_null(e->request_body);
    assert_null(e->trace_id);
    assert_string_equal(e->error_class, "upstream_error");
    assert_string_equal(e->error, "provider an answered 502 (upstream_error)");
    assert_int_equal(e->fallbacks, 0);
    assert_int_equal(reqlog_batch_next(&rd, e), 0);
    /* an older entry's JSON text is passed on; a packed list cut short, or a string running
     * past its end, is damaged, never read past */
    assert_true(reqlog_attempts_json("[{\"provider\":\"x\"}]", &json));
    assert_string_equal(json.data, "[{\"provider\":\"x\"}]");
    assert_true(reqlog_attempts_json(NULL, &json));
    assert_string_equal(json.data, "[]");
    assert_true(reqlog_attempts_json("\x01", &json));
    assert_string_equal(json.data, "[]");
    assert_false(reqlog_attempts_json("\x01\x05"
                                      "ab",
                                      &json)); /* provider runs past the end */
    assert_false(reqlog_attempts_json("\x01\x01\x01\x01\x01\x01\x01\x01\x01", &json)); /* no wait_ms */
    assert_true(reqlog_attempts_json("\x01\x01\x01\x01\x01\x04\\\"\x01\xc9\x01\x01\x01", &json));
    assert_string_equal(json.data,
                        "[{\"provider\":\"\",\"model\":\"\",\"role\":\"\\\\\\\"\",\"outcome\":\"\","
                        "\"status\":200,\"ms\":0.000,\"wait_ms\":0.000}]");
    buf_free(&json);
    buf_free(&scratch);
    reqlog_batch_free(&w);
}

/* A blob written before references ("RLB1") is read alike; a reference with nothing before it,
 * or a string running past the blob's end, is damage, never read past. An entry equal to the
 * last but for its id writes little more than the id. */
static void test_batch_formats(void **state)
{
    (void)state;
    static const char v1[] = "RLB1"
                             "\x00"                                                 /* index 0 */
                             "\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" /* time 2, 12 zeros */
                             "\x00\x00\x00\x00\x00\x00\xf0\xbf"                     /* cost -1 */
                             "\x00"                                                 /* not a stream */
                             "\x03id\x00\x00\x00\x00\x00\x05POST\x00\x02/\x00"      /* id .. path */
                             "\x00\x00\x00\x00\x00\x00\x00"                         /* route .. cache */
                             "\x03[]\x00\x00\x00\x00";                              /* attempts .. */
    reqlog_batch_reader rd;
    reqlog_entry e;
    assert_true(reqlog_batch_open(&rd, v1, sizeof v1 - 1, 1));
    assert_int_equal(reqlog_batch_next(&rd, &e), 1);
    assert_true(e.time_us == 2 && e.cost_usd < 0);
    assert_string_equal(e.request_id, "id");
    assert_string_equal(e.method, "POST");
    assert_string_equal(e.path, "/");
    assert_string_equal(e.attempts, "[]");
    assert_int_equal(reqlog_batch_next(&rd, &e), 0);
    /* the same entry in the new form, its id a reference to nothing */
    char v2[sizeof v1];
    memcpy(v2, v1, sizeof v1);
    memcpy(v2, "RLB2", 4);
    v2[4 + 1 + 13 + 9] = 1;
    assert_true(reqlog_batch_open(&rd, v2, sizeof v2 - 1, 1));
    assert_int_equal(reqlog_batch_next(&rd, &e), -1);
    assert_true(reqlog_batch_open(&rd, v1, sizeof v1 - 3, 1)); /* cut short */
    assert_int_equal(reqlog_batch_next(&rd, &e), -1);

    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    reqlog_entry a = {.time_us = 1000,
                      .request_id = "req-a",
                      .method = "POST",
                      .path = "/v1/chat/completions",
                      .key_id = "key_0123456789abcdef",
                      .provider = "openai",
                      .model = "gpt-4o-mini",
                      .upstream_model = "gpt-4o-mini-2024-07-18",
                      .attempts = "[]"};
    assert_true(reqlog_batch_add(&w, &a, 0));
    size_t one = w.data.len;
    a.request_id = "req-b";
    a.time_us = 1500;
    assert_true(reqlog_batch_add(&w, &a, 1));
    assert_true(w.data.len - one < one / 2); /* the id, the numbers and a byte a string */
    assert_true(reqlog_batch_open(&rd, w.data.data, w.data.len, 1));
    assert_int_equal(reqlog_batch_next(&rd, &e), 1);
    assert_int_equal(reqlog_batch_next(&rd, &e), 1);
    assert_true(e.time_us == 1500);
    assert_string_equal(e.request_id, "req-b");
    assert_string_equal(e.upstream_model, "gpt-4o-mini-2024-07-18");
    assert_string_equal(e.key_id, "key_0123456789abcdef");
    assert_null(e.team);
    reqlog_batch_free(&w);
}

/* A batch takes REQLOG_BATCH_ROWS_MAX entries, refuses the next, reads them all back, and its
 * Bloom filter holds every id (none missed) while it turns away nearly every other one. */
static void test_batch_full(void **state)
{
    (void)state;
    assert_int_equal(REQLOG_BATCH_ROWS_MAX, 1024); /* the store's mark (migration 13) says so */
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    char ids[REQLOG_BATCH_ROWS_MAX + 1][16];
    reqlog_entry a = {.method = "POST", .path = "/v1/chat/completions", .attempts = "[]"};
    for (unsigned i = 0; i <= REQLOG_BATCH_ROWS_MAX; i++) {
        snprintf(ids[i], sizeof ids[i], "req-%u", i);
        a.request_id = ids[i];
        a.time_us = 1000 + i;
        assert_true(reqlog_batch_add(&w, &a, i) == (i < REQLOG_BATCH_ROWS_MAX));
    }
    assert_int_equal(w.n, REQLOG_BATCH_ROWS_MAX);
    uint8_t filter[REQLOG_IDS_MAX_BYTES];
    assert_int_equal(reqlog_batch_ids(&w, filter), REQLOG_IDS_MAX_BYTES);
    for (unsigned i = 0; i < REQLOG_BATCH_ROWS_MAX; i++)
        assert_true(reqlog_ids_may_hold(filter, sizeof filter, ids[i]));
    int held = 0;
    for (unsigned i = 0; i < 10000; i++) {
        char other[24];
        snprintf(other, sizeof other, "other-%u", i);
        held += reqlog_ids_may_hold(filter, sizeof filter, other);
    }
    assert_true(held < 100); /* under 1 % read for nothing (about 0.3 % expected) */
    reqlog_batch_reader rd;
    reqlog_entry e;
    assert_true(reqlog_batch_open(&rd, w.data.data, w.data.len, 1));
    unsigned n = 0;
    while (reqlog_batch_next(&rd, &e) > 0) {
        assert_string_equal(e.request_id, ids[n]);
        assert_true(e.time_us == 1000 + n);
        n++;
    }
    assert_int_equal(n, REQLOG_BATCH_ROWS_MAX);
    reqlog_batch_free(&w);
}

static void test_redact_body(void **state)
{
    char *names[] = {"api_key", "Password"};
    const char body[] =
        "{\"model\":\"m\",\"API_KEY\":\"sk-1\",\"nested\":[{\"password\":{\"a\":1}}],\"n\":2}";
    char *out = reqlog_redact_body(body, sizeof body - 1, names, 2);
    assert_non_null(out);
    assert_string_equal(
        out,
        "{\"model\":\"m\",\"API_KEY\":\"[redacted]\",\"nested\":[{\"password\":\"[redacted]\"}],\"n\":2}");
    free(out);
    assert_null(reqlog_redact_body("not json", 8, names, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_round_trip_and_refusals),
        cmocka_unit_test(test_query_strict),
        cmocka_unit_test(test_times_and_status),
        cmocka_unit_test(test_list_filter),
        cmocka_unit_test_setup_teardown(test_store_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_aggregate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_batch_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_overlapping_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_page_tie_across_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_old_rows_move_into_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_damaged_batch, setup, teardown),
        cmocka_unit_test(test_pack_entry),
        cmocka_unit_test(test_batch_formats),
        cmocka_unit_test(test_batch_full),
        cmocka_unit_test(test_redact_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
