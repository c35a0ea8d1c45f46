/* store_feedback.c — feedback on requests and the per-version figures of an experiment
 * (request_log.h; docs/prompts.md "Experiments").
 *
 * POST /v1/feedback writes one row: the request id it scores (Portkey's trace_id), a value
 * (-10..10) and weight (0..1) as Portkey's feedback API takes them, an optional comment and
 * metadata. A report joins the feedback with the request log's entries of one prompt template
 * by request id (in C: the log's entries are packed in batches, store_reqlog.c) and sums, per version, n, Σw,
 * Σw², Σwv and Σwv² — the weighted mean and a 95 % interval come from those in C, so SQLite and PostgreSQL
 * give the same figures.
 *
 * The interval: the weighted mean m = Σwv/Σw; the effective sample size n_eff = (Σw)²/Σw²
 * (Kish); the weighted variance Σw(v−m)²/Σw corrected by n_eff/(n_eff−1); m ± t(0.975, n_eff−1)
 * · sqrt(var/n_eff), Student's t from a table up to 30 degrees of freedom, 1.96 beyond. With
 * equal weights that is the textbook t interval. Rejected: a normal interval at every size (too
 * narrow below ~30 ratings, which is when a team is tempted to stop an experiment early).
 *
 * Every function runs on the store's thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/request_log.h"
#include "util/alloc.h"

store_result store_feedback_add(store *s, const char *request_id, double value, double weight,
                                const char *comment, const char *metadata, const char *key_id, int64_t now_us,
                                int64_t *seq)
{
    db *d = store__db(s);
    db_stmt *st =
        db_prepare(d, "INSERT INTO feedback (request_id, ts_us, value, weight, comment, metadata, key_id) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING seq");
    if (!st) return store__db_failed(s);
    db_bind_text(st, 1, request_id);
    db_bind_int64(st, 2, now_us);
    db_bind_double(st, 3, value);
    db_bind_double(st, 4, weight);
    db_bind_text(st, 5, comment);
    db_bind_text(st, 6, metadata);
    db_bind_text(st, 7, key_id);
    db_status rc = db_step(st);
    if (rc == DB_ROW) *seq = db_column_int64(st, 0);
    db_finalize(st);
    return rc == DB_ROW ? STORE_OK : store__db_failed(s);
}

/* Student's t at 0.975 for 1..30 degrees of freedom. */
static const double t975[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                              2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                              2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

void feedback_interval(int64_t n, double sw, double sw2, double swv, double swv2, feedback_totals *out)
{
    memset(out, 0, sizeof *out);
    out->count = n;
    out->weight = sw;
    if (n <= 0 || sw <= 0) return;
    out->mean = swv / sw;
    double n_eff = sw2 > 0 ? sw * sw / sw2 : 0;
    if (n < 2 || n_eff <= 1.0) return;
    double ss = swv2 - out->mean * swv; /* Σw(v−m)² */
    if (ss < 0) ss = 0;                 /* rounding */
    double var = ss / sw * n_eff / (n_eff - 1.0);
    int df = (int)floor(n_eff - 1.0);
    double t = df >= 1 && df <= 30 ? t975[df - 1] : 1.96;
    double half = t * sqrt(var / n_eff);
    out->ci_low = out->mean - half;
    out->ci_high = out->mean + half;
    out->has_interval = true;
}

typedef struct version_sums {
    int64_t version, n;
    double sw, sw2, swv, swv2;
} version_sums;

/* One prompt request: its id and the version it used. */
#define IDS_A_QUERY 256 /* request ids a report's query asks feedback_request for */

typedef struct used_version {
    char *request_id;
    int64_t version;
} used_version;

typedef struct used_list {
    used_version *v;
    size_t n, cap;
    bool full; /* past FEEDBACK_ROWS_MAX: the rest left out */
} used_list;

static void on_prompt_request(const char *request_id, int64_t version, void *ud)
{
    used_list *l = ud;
    if (l->n == FEEDBACK_ROWS_MAX) {
        l->full = true;
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (used_version){xstrdup(request_id), version};
}

static int used_cmp(const void *a, const void *b)
{
    const used_version *x = a, *y = b;
    int c = strcmp(x->request_id, y->request_id);
    return c ? c : x->version < y->version ? -1 : x->version > y->version;
}

store_result store_feedback_by_version(store *s, const char *prompt_id, int64_t since_us, int64_t until_us,
                                       void (*fn)(int64_t version, const feedback_totals *t, void *ud),
                                       void *ud, bool *sampled)
{
    *sampled = false;
    /* the template's requests (id, version), sorted and distinct: a client's x-request-id may
     * name two requests; a rating counts once per version */
    used_list used = {0};
    store_result r =
        store__reqlog_prompt_requests(s, prompt_id, since_us, until_us, on_prompt_request, &used);
    size_t nused = 0;
    *sampled = used.full;
    if (used.n) {
        qsort(used.v, used.n, sizeof *used.v, used_cmp);
        for (size_t i = 0; i < used.n; i++) {
            if (nused && !used_cmp(&used.v[nused - 1], &used.v[i])) {
                free(used.v[i].request_id);
                continue;
            }
            used.v[nused++] = used.v[i];
        }
    }
    /* the ratings of those ids, IDS_A_QUERY ids a query through feedback_request: the join the
     * report is, with its bound counted on the rows it makes */
    version_sums *list = NULL;
    size_t n = 0, rows = 0;
    for (size_t at = 0; r == STORE_OK && at < nused && !*sampled;) {
        size_t end = at, ids = 0;
        char sql[64 + IDS_A_QUERY * 8];
        size_t len = (size_t)snprintf(sql, sizeof sql,
                                      "SELECT request_id, value, weight FROM feedback WHERE "
                                      "request_id IN (");
        for (; end < nused && ids < IDS_A_QUERY; end++) {
            if (end > at && !strcmp(used.v[end].request_id, used.v[end - 1].request_id)) continue;
            ids++;
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%s?%zu", ids > 1 ? "," : "", ids);
        }
        snprintf(sql + len, sizeof sql - len, ")");
        db_stmt *st = db_prepare(store__db(s), sql);
        if (!st) {
            r = store__db_failed(s);
            break;
        }
        ids = 0;
        for (size_t k = at; k < end; k++)
            if (k == at || strcmp(used.v[k].request_id, used.v[k - 1].request_id))
                db_bind_text(st, (int)++ids, used.v[k].request_id);
        db_status rc;
        while ((rc = db_step(st)) == DB_ROW) {
            const char *id = db_column_text(st, 0);
            double value = db_column_double(st, 1), w = db_column_double(st, 2);
            for (size_t k = at; id && k < end; k++) {
                if (strcmp(used.v[k].request_id, id)) continue;
                if (++rows > FEEDBACK_ROWS_MAX) {
                    *sampled = true;
                    break;
                }
                int64_t v = used.v[k].version;
                version_sums *g = NULL;
                for (size_t i = 0; i < n && !g; i++)
                    if (list[i].version == v) g = &list[i];
                if (!g) {
                    if (n == 1000) continue; /* versions beyond a report's reach */
                    list = xrealloc(list, (n + 1) * sizeof *list);
                    g = &list[n++];
                    memset(g, 0, sizeof *g);
                    g->version = v;
                }
                g->n++;
                g->sw += w;
                g->sw2 += w * w;
                g->swv += w * value;
                g->swv2 += w * value * value;
            }
        }
        if (rc != DB_DONE) r = store__db_failed(s);
        db_finalize(st);
        at = end;
    }
    for (size_t i = 0; r == STORE_OK && i < n; i++) {
        feedback_totals t;
        feedback_interval(list[i].n, list[i].sw, list[i].sw2, list[i].swv, list[i].swv2, &t);
        fn(list[i].version, &t, ud);
    }
    for (size_t i = 0; i < nused; i++)
        free(used.v[i].request_id);
    free(used.v);
    free(list);
    return r;
}
