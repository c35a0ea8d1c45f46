/* request_log.h — the request log in the store: one entry per finished request, written in
 * batches on the store's thread, read back by the admin API (GET /admin/logs…), trimmed by age
 * and by count. Part of src/store (store_reqlog.c), a second face beside store.h so the key and
 * spend operations' header stays about them.
 *
 * One table, request_log_batch (migration 11; 6-10 kept a row a request), on both backends with
 * the same queries: a row holds a batch of entries packed in one blob (reqlog_batch.h), so the
 * database inserts a row a batch, not a row a request — what the log cost a request was mostly
 * that insert. Entries are ordered by (time_us, seq): the start time in microseconds since 1970
 * and a number made of the batch's row number (SQLite's AUTOINCREMENT, PostgreSQL's BIGSERIAL)
 * and the entry's index in it — unique even between instances sharing a PostgreSQL store, and an
 * integer, so "newest first" and a cursor mean the same thing on both.
 *
 * A request's attempts are one string of its entry (packed, or JSON text in entries written
 * before they were packed): they are read whole with their request and never filtered by part. Filters that
 * need an attempt's provider use the answering provider's.
 *
 * Every function runs on the thread that owns the store (store.h) and may block on I/O. */
#ifndef AIGW_STORE_REQUEST_LOG_H
#define AIGW_STORE_REQUEST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/* One request as the log holds it. Strings are NUL-terminated and may be NULL (none). When the
 * store fills one for a reader, its strings are valid during the callback only. */
typedef struct reqlog_entry {
    int64_t seq;                       /* the store's number (0 before it is written) */
    int64_t time_us;                   /* the request's start, unix microseconds */
    const char *request_id, *trace_id; /* trace_id: 32 hex digits */
    const char *key_id, *key_alias, *team;
    const char *method, *path, *route;
    const char *provider, *model, *upstream_model; /* the answering attempt's; model: as asked */
    int status;
    const char *error_class; /* NULL when the request succeeded */
    const char *error;
    bool stream;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens;
    double cost_usd;   /* negative: unknown (NULL in the store) */
    const char *cache; /* the cache's answer ("HIT", "MISS", "REFRESH", "BYPASS"); NULL: not asked */
    int retries, fallbacks;
    int64_t ttfb_us;          /* -1: nothing was sent */
    int64_t total_us;         /* start to end */
    int64_t overhead_us;      /* aigw's own share before the head; -1: no head */
    const char *attempts;     /* the attempts, packed or as JSON text: reqlog_attempts_json reads them */
    const char *request_body; /* the client's body, redacted; NULL: not stored */
    const char *prompt_id;    /* the prompt template the request used (migration 8), or NULL */
    int64_t prompt_version;   /* … and its version (0: none) */
    const char
        *route_reason; /* how the route was chosen, as x-aigw-route-reason says (migration 9), or NULL */
} reqlog_entry;

/* An entry's attempts as a JSON array into out (emptied first): [{provider, model, step?, role,
 * outcome, status, ms, wait_ms, note?}]; NULL gives []. False when they are damaged (they come
 * from a database another program could write). */
bool reqlog_attempts_json(const char *attempts, buf *out);

/* Writes n entries in one transaction (it does not bump the keys' version: the log is not
 * policy), a row a REQLOG_BATCH_ROWS_MAX of them. On failure nothing of the batch is written. */
store_result store_reqlog_write(store *s, const reqlog_entry *const *entries, size_t n);
/* The entries packed in w (store/reqlog_batch.h: a worker's batch) written as one row, as they
 * are; w is left empty. */
struct reqlog_batch_writer;
store_result store_reqlog_write_batch(store *s, struct reqlog_batch_writer *w);

#define REQLOG_PAGE_MAX 1000 /* rows one page may hold */

/* What a list asks for; NULL / 0 members ask for nothing. */
typedef struct reqlog_filter {
    const char *key;            /* a key's id or alias */
    const char *team;           /* a team's id */
    const char *model;          /* the model as asked, or the upstream model */
    const char *provider;       /* the answering provider's name */
    int status_min, status_max; /* inclusive; 0 and 0: any */
    int64_t since_us, until_us; /* [since, until); 0: no bound */
    const char *error_text;     /* a substring of the error, ASCII case-insensitive */
    bool after;                 /* a cursor: rows strictly older than (cursor_time_us, cursor_seq) */
    int64_t cursor_time_us, cursor_seq;
    int limit; /* 1..REQLOG_PAGE_MAX */
} reqlog_filter;

/* The entries f asks for, newest first by (time, seq), at most f->limit, without their request
 * bodies (store_reqlog_get gives one with its body); fn's entry is valid during the call only. */
store_result store_reqlog_list(store *s, const reqlog_filter *f, void (*fn)(const reqlog_entry *e, void *ud),
                               void *ud);
/* The newest row of request_id; NOT_FOUND when none (request ids are the client's x-request-id
 * or aigw's, so two rows may share one: the newest is shown). */
store_result store_reqlog_get(store *s, const char *request_id, void (*fn)(const reqlog_entry *e, void *ud),
                              void *ud);

/* One group's totals; p50/p95 over total time, in microseconds, nearest rank. */
typedef struct reqlog_totals {
    int64_t requests, errors; /* errors: status 400 and above */
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    double cost_usd;
    int64_t p50_us, p95_us;
} reqlog_totals;

#define REQLOG_GROUPS_MAX 10000         /* groups one aggregate returns */
#define REQLOG_LATENCY_ROWS_MAX 1000000 /* durations read for the percentiles */

/* Totals grouped by "model", "provider", "key" or "hour" over rows with time in [since, until)
 * (microseconds; 0: no bound). fn gets the group (a model, a provider, a key id — "" for none —
 * or the hour's start as unix seconds in decimal) in a fixed order: hours ascending, the others
 * by requests descending then name in byte order. The percentiles are computed here, in C, over
 * the durations sorted per group, so both backends give the same figures; past
 * REQLOG_LATENCY_ROWS_MAX rows in the range they come from the first that many the database
 * returns and *sampled says so. Sums are exact. */
store_result store_reqlog_aggregate(store *s, const char *by, int64_t since_us, int64_t until_us,
                                    void (*fn)(const char *group, const reqlog_totals *t, void *ud), void *ud,
                                    bool *sampled);

/* The same totals for one prompt template's requests (prompt_id), grouped by the version they
 * used (its number in decimal), versions ascending. */
store_result store_reqlog_aggregate_prompt(store *s, const char *prompt_id, int64_t since_us,
                                           int64_t until_us,
                                           void (*fn)(const char *version, const reqlog_totals *t, void *ud),
                                           void *ud, bool *sampled);

/* ---- feedback (store_feedback.c): a score on a request, by its request id ---- */

#define FEEDBACK_COMMENT_MAX 4096  /* bytes of a comment */
#define FEEDBACK_METADATA_MAX 8192 /* bytes of metadata as JSON */
/* Adds one feedback row (value -10..10, weight 0..1: Portkey's; comment and metadata may be NULL,
 * metadata is JSON text; key_id: who sent it, or NULL); *seq gets its number. The request need
 * not be in the log yet (its row comes with the next batch). */
store_result store_feedback_add(store *s, const char *request_id, double value, double weight,
                                const char *comment, const char *metadata, const char *key_id, int64_t now_us,
                                int64_t *seq);
/* Feedback on one prompt template's requests in [since, until), per version: how many, the
 * weighted mean and its 95 % confidence interval (Student's t on the effective sample size
 * (Σw)²/Σw²; no interval below two). */
typedef struct feedback_totals {
    int64_t count;
    double weight, mean, ci_low, ci_high;
    bool has_interval;
} feedback_totals;
#define FEEDBACK_ROWS_MAX 1000000 /* feedback rows one report reads */
store_result store_feedback_by_version(store *s, const char *prompt_id, int64_t since_us, int64_t until_us,
                                       void (*fn)(int64_t version, const feedback_totals *t, void *ud),
                                       void *ud, bool *sampled);
/* The interval of n values with weights' sums sw, sw2 (Σw²), swv (Σwv), swv2 (Σwv²): pure, for
 * the unit tests. */
void feedback_interval(int64_t n, double sw, double sw2, double swv, double swv2, feedback_totals *out);

/* Retention: deletes entries that started before older_than_us (0: none) and then, while more
 * than max_rows remain (0: no bound), the oldest written — at most max_delete entries for each
 * rule, so one run's work is bounded (the next run goes on); a batch left with some entries is
 * written again without the others, and a damaged batch (one a reader reports) goes whole. The same two rules
 * then trim the feedback table by when each rating was given: feedback on a request that has left the log has
 * nothing left to join in a report, and a deployment that rates a lot would otherwise grow it without bound.
 * *deleted: how many request log rows went; *deleted_feedback: how many feedback rows. */
store_result store_reqlog_trim(store *s, int64_t older_than_us, int64_t max_rows, int64_t max_delete,
                               int64_t *deleted, int64_t *deleted_feedback);

#endif
