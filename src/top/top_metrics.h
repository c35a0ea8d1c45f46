/* top_metrics.h — what `aigw top` reads from GET /metrics, and the numbers its overview shows.
 *
 * Pure functions, no I/O: the Prometheus text a gateway served is parsed into one scrape's
 * totals (counters summed over their label sets, the two latency histograms summed per bucket
 * bound, one row per provider target from the target gauges); the overview's figures are
 * differences of two scrapes over the seconds between them — never computed a second way from
 * the request log. A counter that went down (the gateway restarted) counts from zero. The
 * gateway's own successful local answers (admin API, /metrics: series without route, model or
 * provider, status 2xx) are not traffic and are left out — `aigw top` itself makes two a second.
 *
 * Every bound is fixed: a line of at most TOP_LINE_MAX bytes (a longer one is skipped), label
 * values cut to the field they go into, at most TOP_MAX_TARGETS targets, TOP_MAX_PROVIDERS
 * providers and TOP_MAX_BUCKETS bucket bounds (more are ignored). The text is the server's:
 * anything may be in it, nothing in it can make these functions read or write out of bounds
 * (tests/fuzz/fuzz_top_metrics.c). */
#ifndef AIGW_TOP_METRICS_H
#define AIGW_TOP_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#define TOP_MAX_TARGETS 64
#define TOP_MAX_PROVIDERS 64
#define TOP_MAX_BUCKETS 32
#define TOP_LINE_MAX 4096
#define TOP_NAME_MAX 64

/* A histogram summed over every label set: count[i] observations at or below le[i]
 * (cumulative, as Prometheus writes them), le ascending, the last +Inf. */
typedef struct top_histogram {
    size_t n;
    double le[TOP_MAX_BUCKETS];
    double count[TOP_MAX_BUCKETS];
} top_histogram;

typedef struct top_target {
    char provider[TOP_NAME_MAX], model[TOP_NAME_MAX];
    int breaker; /* 0 closed, 1 open, 2 half-open; -1: not reported */
    double in_flight;
    double ewma_s; /* peak-EWMA time to the response head; 0: never measured */
} top_target;

typedef struct top_provider_totals {
    char name[TOP_NAME_MAX];
    double attempts, failures; /* aigw_attempts_total; failures: any outcome but ok and cancelled */
} top_provider_totals;

typedef struct top_scrape {
    bool valid;                     /* at least one aigw_ series was read */
    double requests, errors;        /* aigw_requests_total; errors: status 4xx and 5xx */
    double server_errors;           /* status 5xx */
    double tokens;                  /* aigw_tokens_total, kinds prompt and completion */
    double cost_usd;                /* aigw_cost_usd_total */
    double cache_hits, cache_asked; /* aigw_cache_results_total: HIT + SEMANTIC_HIT; all but BYPASS */
    double open_connections;        /* aigw_open_connections */
    top_histogram duration, ttfb;   /* aigw_request_duration_seconds, aigw_time_to_first_byte_seconds */
    top_target targets[TOP_MAX_TARGETS];
    size_t ntargets;
    top_provider_totals providers[TOP_MAX_PROVIDERS];
    size_t nproviders;
} top_scrape;

/* The overview's figures between two scrapes `seconds` apart. NAN where there is nothing to
 * say (no requests in the interval: no error rate, no percentile, no hit ratio). */
typedef struct top_rates {
    double requests_per_s, error_rate, tokens_per_s, spend_per_min;
    double p50_s, p95_s, ttfb_p50_s, ttfb_p95_s;
    double cache_hit_ratio;
} top_rates;

/* Parses text (len bytes, not NUL-terminated) into out (overwritten). Returns out->valid. */
bool top_metrics_parse(const char *text, size_t len, top_scrape *out);

/* A counter's rate: (now - then) / seconds; a counter that went down restarted: now / seconds.
 * 0 when seconds <= 0. */
double top_rate(double now, double then, double seconds);

/* The q-quantile (0..1) of the observations made between then and now (then NULL: all of
 * now's), interpolated linearly inside the bucket it falls in, as Prometheus's
 * histogram_quantile does; in the +Inf bucket, the largest finite bound. NAN without
 * observations or when the two histograms' bounds differ. */
double top_histogram_quantile(const top_histogram *now, const top_histogram *then, double q);

/* The overview between two scrapes (then NULL or invalid: rates from zero). */
void top_metrics_rates(const top_scrape *now, const top_scrape *then, double seconds, top_rates *out);

/* The target (provider, model) in s, or NULL. */
const top_target *top_scrape_target(const top_scrape *s, const char *provider, const char *model);
/* The provider's attempt totals in s, or NULL. */
const top_provider_totals *top_scrape_provider(const top_scrape *s, const char *provider);

/* values[0..n) (NAN: no sample, drawn as a space) as a sparkline of n cells scaled to their
 * maximum: with utf8 the eight block characters ▁…█ (3 bytes each), else " .:-=+*#". Writes at
 * most outlen bytes including the NUL; returns the bytes written without it. */
size_t top_sparkline(const double *values, size_t n, bool utf8, char *out, size_t outlen);

#endif
