/* metrics.h — Prometheus metrics: what the finished requests add up to, served as the text
 * exposition format (version 0.0.4) at GET /metrics.
 *
 * Each worker owns a shard: a fixed table of series it alone writes, on its loop, with plain
 * relaxed atomic stores (no lock, no read-modify-write shared with another thread, no cache
 * line another worker writes). A scrape reads every shard and sums, on whichever thread asks;
 * it may see a request's counters half-added, never a torn value. Shards are made at worker
 * start and live until the registry is freed, so a scrape never races a free.
 *
 * Cardinality is bounded twice: label values come only from the config (a model the config
 * does not serve is "other"; see metrics_labels) and the gateway's own sets (status class,
 * ingress, outcome), and each shard holds at most METRICS_SERIES_MAX request series and
 * METRICS_ATTEMPT_SERIES_MAX attempt series — past that a request counts under one overflow
 * series whose labels are all "other", and aigw_metrics_overflow_total says how often (the
 * refusals' and routing decisions' tables likewise, with their own bounds). A
 * client can therefore neither grow memory nor make a scrape slower than the bound. */
#ifndef AIGW_OBSERVE_METRICS_H
#define AIGW_OBSERVE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/record.h"
#include "util/buf.h"

#define METRICS_SERIES_MAX 1024          /* request series per worker */
#define METRICS_ATTEMPT_SERIES_MAX 256   /* (provider, outcome) series per worker */
#define METRICS_LABEL_MAX 128            /* bytes of one label value kept; longer ones are "other" */
#define METRICS_REJECTION_SERIES_MAX 256 /* (reason, key) series per worker */
#define METRICS_ROUTE_SERIES_MAX 512     /* routing decisions' (kind, route, target) series per worker */

typedef struct metrics metrics;
typedef struct metrics_shard metrics_shard;

metrics *metrics_new(void);
/* After every shard's worker has stopped. NULL is accepted. */
void metrics_free(metrics *m);
/* A worker's shard (at worker start; it lives as long as m). */
metrics_shard *metrics_shard_new(metrics *m);

/* The labels a request counts under; NULL values are "". The caller decides what is bounded:
 * see the pipeline's metrics stage. */
typedef struct metrics_labels {
    const char *route, *model, *provider, *ingress, *key;
} metrics_labels;

/* Adds one finished request. On the shard's worker only. */
void metrics_add(metrics_shard *s, const metrics_labels *l, const exchange_record *r);

/* Counts one refusal (aigw_rejections_total{reason, key}): key is the gateway key's id, NULL or
 * "" when none was known (no key, an unknown one). On the shard's worker only. */
void metrics_reject(metrics_shard *s, record_rejection reason, const char *key);

/* Routing decisions (docs/routing.md), each counted once on the shard's worker. route and
 * target are label values the caller has bounded (the metrics stage: config names, or one fixed
 * value for a request's own config); NULL is "".
 *   aigw_route_decisions_total{route, strategy, target, side}: an auto node's pick (side NONE)
 *     or the learned router's (side STRONG or WEAK: strategy "router");
 *   aigw_route_no_candidate_total{route, reason}: an auto route refused the request;
 *   aigw_external_router_total{route, outcome}: what asking the external router came to. */
void metrics_route_decision(metrics_shard *s, const char *route, record_side side, const char *target);
void metrics_route_no_candidate(metrics_shard *s, const char *route, record_no_candidate reason);
void metrics_external_router(metrics_shard *s, const char *route, record_external outcome);

/* Gauges the scrape reads from elsewhere (the server, the access log), and the build. */
typedef struct metrics_gauges {
    long open_connections;
    /* the response cache: what it holds now (bytes, each entry's overhead counted) and its bound */
    size_t cache_bytes, cache_entries, cache_max_bytes;
    /* … lookups the backend could not answer (Redis down or slow), stores it dropped, semantic
     * lookups whose embedding failed, and the semantic index's vectors and bytes */
    uint64_t cache_unavailable, cache_stores_dropped, cache_embed_failures;
    size_t cache_semantic_entries, cache_semantic_bytes;
    uint64_t log_dropped;
    /* the request log (pipeline/reqlog_stage.c); its series only when reqlog_on */
    bool reqlog_on;
    uint64_t reqlog_queued, reqlog_dropped_full, reqlog_dropped_store, reqlog_written;
    /* traces (pipeline/trace_stage.c); their series only when traces_on */
    bool traces_on;
    uint64_t traces_exported, traces_dropped;
    const char *version;
} metrics_gauges;

/* Appends the exposition of every shard's sums and the gauges to out. Any thread. */
void metrics_render(metrics *m, const metrics_gauges *g, buf *out);
/* What alerts read (observe/alerts.c): one provider's totals so far, summed over the workers —
 * upstream attempts and the failed ones, and its requests' times to first byte as counts per
 * bucket (metrics_bucket_le[i] seconds; the last bucket is +Inf). provider NULL: every one. */
#define METRICS_BUCKETS 18
extern const double metrics_bucket_le[METRICS_BUCKETS - 1];
typedef struct metrics_provider_totals {
    uint64_t attempts, failed;
    uint64_t first_byte[METRICS_BUCKETS];
} metrics_provider_totals;
void metrics_provider_read(metrics *m, const char *provider, metrics_provider_totals *out);

/* For series the caller adds after it: a family's # HELP and # TYPE lines, and a label value
 * escaped as the format wants (backslash, double quote, newline). */
void metrics_family(buf *out, const char *name, const char *type, const char *help);
void metrics_append_escaped(buf *out, const char *value);

#endif
