/* metrics.c — per-worker series tables and the Prometheus text they render to (metrics.h).
 *
 * A shard is two open-addressed tables (requests by their labels; attempts by provider and
 * outcome) whose slots are claimed once and never freed: the owner fills a slot's labels, then
 * publishes it (a release store of `used`); a scrape skips slots not yet published (an acquire
 * load). Counters are _Atomic uint64_t written by the owner alone with relaxed load + store —
 * an ordinary add on x86, no lock prefix — so a scrape reads whole values without a lock.
 * Durations are summed in nanoseconds and cost in nano-dollars, so every counter is an integer.
 * A third table counts refusals by (reason, key): the reason is record.h's enum, the key a store
 * id, METRICS_REJECTION_SERIES_MAX of them per shard and then one "other" key per reason. A
 * fourth counts routing decisions (auto routes, the learned router, the external router) by a
 * kind — which fixes the family and its bounded labels (strategy and side, reason, outcome) — and
 * the route and target the caller bounded: METRICS_ROUTE_SERIES_MAX of them per shard, then one
 * series per kind whose route and target are "other". The decision was made in PLAN; it is
 * counted with the rest of the request, in RECORD, one relaxed add in the worker's table.
 *
 * A scrape collects every published series of every shard, sorts them by labels and adds up
 * equal neighbours: O(S log S) for S series, S ≤ workers × METRICS_SERIES_MAX. */
#include "observe/metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* Upper bounds in seconds (Prometheus' `le`), +Inf after them. */
const double metrics_bucket_le[METRICS_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
#define NBUCKETS (METRICS_BUCKETS - 1)

enum { LABEL_ROUTE, LABEL_MODEL, LABEL_PROVIDER, LABEL_STATUS, LABEL_INGRESS, LABEL_KEY, NLABELS };
static const char *const label_names[NLABELS] = {"route", "model", "provider", "status", "ingress", "key"};

enum { TOKENS_PROMPT, TOKENS_COMPLETION, TOKENS_CACHED, TOKENS_REASONING, NTOKENS };
static const char *const token_kinds[NTOKENS] = {"prompt", "completion", "cached", "reasoning"};

enum { HIST_TOTAL, HIST_FIRST_BYTE, HIST_UPSTREAM, HIST_OVERHEAD, NHISTS };
static const struct {
    const char *name, *help;
} hist_families[NHISTS] = {
    {"aigw_request_duration_seconds", "Time from the request's first byte to the response's last."},
    {"aigw_time_to_first_byte_seconds", "Time from the request's first byte to the response's first."},
    {"aigw_upstream_duration_seconds", "Time spent in upstream attempts (every attempt of the request)."},
    {"aigw_overhead_seconds",
     "Time spent in aigw itself: the total less the upstream attempts and retry waits."},
};

typedef _Atomic uint64_t counter;

typedef struct histogram {
    counter buckets[NBUCKETS + 1]; /* not cumulative: the render adds them up */
    counter sum_ns;
} histogram;

typedef struct request_series {
    atomic_uint used;
    uint64_t hash;
    char labels[NLABELS][METRICS_LABEL_MAX];
    counter requests, retries, cost_nano_usd;
    counter tokens[NTOKENS];
    histogram hist[NHISTS];
} request_series;

typedef struct attempt_series {
    atomic_uint used;
    uint64_t hash;
    char provider[METRICS_LABEL_MAX];
    char outcome[32];
    counter attempts;
} attempt_series;

/* Refusals by reason and key (aigw_rejections_total). */
typedef struct rejection_series {
    atomic_uint used;
    uint64_t hash;
    record_rejection reason;
    char key[METRICS_LABEL_MAX];
    counter rejections;
} rejection_series;

static const char *const rejection_names[REJECT_COUNT] = {
    [REJECT_NONE] = "none",
    [REJECT_AUTH_MISSING] = "auth_missing",
    [REJECT_AUTH_INVALID] = "auth_invalid",
    [REJECT_AUTH_DISABLED] = "auth_disabled",
    [REJECT_AUTH_EXPIRED] = "auth_expired",
    [REJECT_AUTH_THROTTLED] = "auth_throttled",
    [REJECT_FORBIDDEN_MODEL] = "forbidden_model",
    [REJECT_FORBIDDEN_CONFIG] = "forbidden_config",
    [REJECT_FORBIDDEN_VIRTUAL_KEY] = "forbidden_virtual_key",
    [REJECT_FORBIDDEN_ADMIN] = "forbidden_admin",
    [REJECT_TEAM_BLOCKED] = "team_blocked",
    [REJECT_BUDGET] = "budget",
    [REJECT_RATE_LIMIT_REQUESTS] = "rate_limit_requests",
    [REJECT_RATE_LIMIT_TOKENS] = "rate_limit_tokens",
    [REJECT_RATE_LIMIT_UNAVAILABLE] = "rate_limit_unavailable",
};

/* Routing decisions (metrics_route_*): a kind fixes the family and every label but the route
 * and the target (only aigw_route_decisions_total has a target). */
enum { FAMILY_DECISIONS, FAMILY_NO_CANDIDATE, FAMILY_EXTERNAL, NFAMILIES };
enum {
    KIND_AUTO,
    KIND_ROUTER_STRONG,
    KIND_ROUTER_WEAK,
    KIND_NO_ADEQUATE,
    KIND_NO_BUDGET,
    KIND_EXTERNAL, /* + record_external − 1 */
    NKINDS = KIND_EXTERNAL + EXTERNAL_COUNT - 1
};
static const struct {
    int family;
    const char *strategy; /* aigw_route_decisions_total's strategy */
    const char *value;    /* its side; the others' reason or outcome */
} route_kinds[NKINDS] = {
    [KIND_AUTO] = {FAMILY_DECISIONS, "auto", ""},
    [KIND_ROUTER_STRONG] = {FAMILY_DECISIONS, "router", "strong"},
    [KIND_ROUTER_WEAK] = {FAMILY_DECISIONS, "router", "weak"},
    [KIND_NO_ADEQUATE] = {FAMILY_NO_CANDIDATE, NULL, "no_adequate_candidate"},
    [KIND_NO_BUDGET] = {FAMILY_NO_CANDIDATE, NULL, "budget_exceeded"},
    [KIND_EXTERNAL + EXTERNAL_USED - 1] = {FAMILY_EXTERNAL, NULL, "used"},
    [KIND_EXTERNAL + EXTERNAL_TIMEOUT - 1] = {FAMILY_EXTERNAL, NULL, "timeout"},
    [KIND_EXTERNAL + EXTERNAL_ERROR - 1] = {FAMILY_EXTERNAL, NULL, "error"},
    [KIND_EXTERNAL + EXTERNAL_INVALID - 1] = {FAMILY_EXTERNAL, NULL, "invalid"},
    [KIND_EXTERNAL + EXTERNAL_NO_CANDIDATE - 1] = {FAMILY_EXTERNAL, NULL, "no_candidate"},
    [KIND_EXTERNAL + EXTERNAL_NOT_ASKED - 1] = {FAMILY_EXTERNAL, NULL, "not_asked"},
};
static const struct {
    const char *name, *help, *label; /* label: the kind's value's name */
} route_families[NFAMILIES] = {
    [FAMILY_DECISIONS] = {"aigw_route_decisions_total",
                          "Targets chosen by an auto route or the learned router, by route, strategy, target "
                          "(provider/model) and, for the router, side (strong or weak).",
                          "side"},
    [FAMILY_NO_CANDIDATE] =
        {"aigw_route_no_candidate_total",
         "Requests an auto route refused because no candidate could serve them, by route and "
         "reason (no_adequate_candidate: 400; budget_exceeded: 429).",
         "reason"},
    [FAMILY_EXTERNAL] =
        {"aigw_external_router_total",
         "Decisions of routes that ask the external router, by route and what asking came to (used, "
         "timeout, error, invalid, no_candidate, not_asked).",
         "outcome"},
};

typedef struct route_series {
    atomic_uint used;
    uint64_t hash;
    uint8_t kind;
    char route[METRICS_LABEL_MAX];
    char target[METRICS_LABEL_MAX]; /* "" for the kinds without one */
    counter count;
} route_series;

/* The response cache's results (exchange_record.cache), a fixed set. */
static const char *const cache_results[] = {"HIT", "MISS", "SEMANTIC_HIT", "REFRESH", "BYPASS"};
#define NCACHE_RESULTS (sizeof cache_results / sizeof cache_results[0])

struct metrics_shard {
    counter cache[NCACHE_RESULTS]; /* aigw_cache_results_total */
    request_series requests[METRICS_SERIES_MAX];
    request_series overflow; /* every label "other" */
    attempt_series attempts[METRICS_ATTEMPT_SERIES_MAX];
    rejection_series rejections[METRICS_REJECTION_SERIES_MAX];
    rejection_series rejections_overflow[REJECT_COUNT]; /* key "other", per reason */
    route_series routes[METRICS_ROUTE_SERIES_MAX];
    route_series routes_overflow[NKINDS]; /* route and target "other", per kind */
    counter overflowed;
    metrics_shard *next;
};

struct metrics {
    pthread_mutex_t lock; /* the shard list (worker start and scrape; never a request) */
    metrics_shard *shards;
};

static void bump(counter *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static uint64_t read_counter(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

metrics *metrics_new(void)
{
    metrics *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    for (metrics_shard *s = m->shards, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

metrics_shard *metrics_shard_new(metrics *m)
{
    metrics_shard *s = xcalloc(1, sizeof *s); /* large: its pages are touched as series appear */
    for (int i = 0; i < NLABELS; i++)
        snprintf(s->overflow.labels[i], METRICS_LABEL_MAX, "other");
    atomic_store(&s->overflow.used, 1);
    for (int r = 0; r < REJECT_COUNT; r++) {
        s->rejections_overflow[r].reason = (record_rejection)r;
        snprintf(s->rejections_overflow[r].key, METRICS_LABEL_MAX, "other");
        atomic_store(&s->rejections_overflow[r].used, 1);
    }
    for (int k = 0; k < NKINDS; k++) {
        route_series *e = &s->routes_overflow[k];
        e->kind = (uint8_t)k;
        snprintf(e->route, METRICS_LABEL_MAX, "other");
        snprintf(e->target, METRICS_LABEL_MAX, "%s",
                 route_kinds[k].family == FAMILY_DECISIONS ? "other" : "");
        atomic_store(&e->used, 1);
    }
    pthread_mutex_lock(&m->lock);
    s->next = m->shards;
    m->shards = s;
    pthread_mutex_unlock(&m->lock);
    return s;
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* a separator, so ("ab","c") differs from ("a","bc") */
}

/* The shard's series for these label values (each NUL-terminated and shorter than
 * METRICS_LABEL_MAX), claimed when new; the overflow series when the table is full. */
static request_series *request_slot(metrics_shard *s, const char *const values[NLABELS])
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < NLABELS; i++)
        h = hash_bytes(h, values[i], strlen(values[i]));
    for (size_t probe = 0; probe < METRICS_SERIES_MAX; probe++) {
        request_series *e = &s->requests[(h + probe) % METRICS_SERIES_MAX];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            e->hash = h;
            for (int i = 0; i < NLABELS; i++)
                memcpy(e->labels[i], values[i], strlen(values[i]) + 1);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            return e;
        }
        if (e->hash != h) continue;
        bool same = true;
        for (int i = 0; i < NLABELS && same; i++)
            same = !strcmp(e->labels[i], values[i]);
        if (same) return e;
    }
    bump(&s->overflowed, 1);
    return &s->overflow;
}

static attempt_series *attempt_slot(metrics_shard *s, const char *provider, const char *outcome)
{
    uint64_t h =
        hash_bytes(hash_bytes(1469598103934665603ull, provider, strlen(provider)), outcome, strlen(outcome));
    for (size_t probe = 0; probe < METRICS_ATTEMPT_SERIES_MAX; probe++) {
        attempt_series *e = &s->attempts[(h + probe) % METRICS_ATTEMPT_SERIES_MAX];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            e->hash = h;
            snprintf(e->provider, sizeof e->provider, "%s", provider);
            snprintf(e->outcome, sizeof e->outcome, "%s", outcome);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            return e;
        }
        if (e->hash == h && !strcmp(e->provider, provider) && !strcmp(e->outcome, outcome)) return e;
    }
    bump(&s->overflowed, 1);
    return NULL;
}

static void observe(histogram *hg, double seconds)
{
    if (seconds < 0) seconds = 0;
    size_t b = 0;
    while (b < NBUCKETS && seconds > metrics_bucket_le[b])
        b++;
    bump(&hg->buckets[b], 1);
    bump(&hg->sum_ns, (uint64_t)(seconds * 1e9));
}

static const char *bounded(const char *v)
{
    if (!v) return "";
    return strlen(v) < METRICS_LABEL_MAX ? v : "other";
}

void metrics_add(metrics_shard *s, const metrics_labels *l, const exchange_record *r)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    int cls = r->status / 100;
    const char *values[NLABELS] = {
        [LABEL_ROUTE] = bounded(l->route),
        [LABEL_MODEL] = bounded(l->model),
        [LABEL_PROVIDER] = bounded(l->provider),
        [LABEL_STATUS] = cls >= 1 && cls <= 5 ? classes[cls - 1] : "other",
        [LABEL_INGRESS] = bounded(l->ingress),
        [LABEL_KEY] = bounded(l->key),
    };
    request_series *e = request_slot(s, values);
    bump(&e->requests, 1);
    if (r->cache)
        for (size_t i = 0; i < NCACHE_RESULTS; i++)
            if (!strcmp(r->cache, cache_results[i])) bump(&s->cache[i], 1);
    if (r->usage.seen) {
        long t[NTOKENS] = {r->usage.prompt, r->usage.completion, r->usage.cached, r->usage.reasoning};
        for (int i = 0; i < NTOKENS; i++)
            if (t[i] > 0) bump(&e->tokens[i], (uint64_t)t[i]);
    }
    if (r->cost_usd > 0) bump(&e->cost_nano_usd, (uint64_t)(r->cost_usd * 1e9 + 0.5));

    double total = (double)(r->end_ns - r->start_ns) / 1e9, upstream = 0, waited = 0;
    size_t tried = 0;
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *a = &r->attempts[i];
        waited += a->wait_ms / 1e3;
        if (a->skipped) continue;
        tried++;
        upstream += a->ms / 1e3;
        attempt_series *as = attempt_slot(s, bounded(a->provider), a->outcome ? a->outcome : "");
        if (as) bump(&as->attempts, 1);
    }
    if (tried > 1) bump(&e->retries, tried - 1);
    observe(&e->hist[HIST_TOTAL], total);
    if (r->first_byte_ns) observe(&e->hist[HIST_FIRST_BYTE], (double)(r->first_byte_ns - r->start_ns) / 1e9);
    if (tried) observe(&e->hist[HIST_UPSTREAM], upstream);
    observe(&e->hist[HIST_OVERHEAD], total - upstream - waited);
}

void metrics_reject(metrics_shard *s, record_rejection reason, const char *key)
{
    if (reason <= REJECT_NONE || reason >= REJECT_COUNT) return;
    key = bounded(key);
    uint64_t h = hash_bytes(1469598103934665603ull + (uint64_t)reason, key, strlen(key));
    for (size_t probe = 0; probe < METRICS_REJECTION_SERIES_MAX; probe++) {
        rejection_series *e = &s->rejections[(h + probe) % METRICS_REJECTION_SERIES_MAX];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            e->hash = h;
            e->reason = reason;
            memcpy(e->key, key, strlen(key) + 1);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            bump(&e->rejections, 1);
            return;
        }
        if (e->hash == h && e->reason == reason && !strcmp(e->key, key)) {
            bump(&e->rejections, 1);
            return;
        }
    }
    bump(&s->overflowed, 1);
    bump(&s->rejections_overflow[reason].rejections, 1);
}

/* One more of (kind, route, target): its series claimed when new, the kind's overflow series
 * when the table is full. */
static void count_route(metrics_shard *s, int kind, const char *route, const char *target)
{
    route = bounded(route);
    target = bounded(target);
    uint64_t h = hash_bytes(hash_bytes(1469598103934665603ull + (uint64_t)kind, route, strlen(route)), target,
                            strlen(target));
    for (size_t probe = 0; probe < METRICS_ROUTE_SERIES_MAX; probe++) {
        route_series *e = &s->routes[(h + probe) % METRICS_ROUTE_SERIES_MAX];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            e->hash = h;
            e->kind = (uint8_t)kind;
            memcpy(e->route, route, strlen(route) + 1);
            memcpy(e->target, target, strlen(target) + 1);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            bump(&e->count, 1);
            return;
        }
        if (e->hash == h && e->kind == kind && !strcmp(e->route, route) && !strcmp(e->target, target)) {
            bump(&e->count, 1);
            return;
        }
    }
    bump(&s->overflowed, 1);
    bump(&s->routes_overflow[kind].count, 1);
}

void metrics_route_decision(metrics_shard *s, const char *route, record_side side, const char *target)
{
    int kind = side == SIDE_STRONG ? KIND_ROUTER_STRONG : side == SIDE_WEAK ? KIND_ROUTER_WEAK : KIND_AUTO;
    count_route(s, kind, route, target);
}

void metrics_route_no_candidate(metrics_shard *s, const char *route, record_no_candidate reason)
{
    if (reason == NO_CANDIDATE_NONE) return;
    count_route(s, reason == NO_CANDIDATE_BUDGET ? KIND_NO_BUDGET : KIND_NO_ADEQUATE, route, "");
}

void metrics_external_router(metrics_shard *s, const char *route, record_external outcome)
{
    if (outcome <= EXTERNAL_NONE || outcome >= EXTERNAL_COUNT) return;
    count_route(s, KIND_EXTERNAL + (int)outcome - 1, route, "");
}

void metrics_provider_read(metrics *m, const char *provider, metrics_provider_totals *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    for (metrics_shard *s = m->shards; s; s = s->next) {
        for (size_t i = 0; i < METRICS_ATTEMPT_SERIES_MAX; i++) {
            attempt_series *e = &s->attempts[i];
            if (!atomic_load_explicit(&e->used, memory_order_acquire)) continue;
            if (provider && strcmp(e->provider, provider)) continue;
            uint64_t n = read_counter(&e->attempts);
            out->attempts += n;
            if (strcmp(e->outcome, "ok") && strcmp(e->outcome, "cancelled")) out->failed += n;
        }
        for (size_t i = 0; i < METRICS_SERIES_MAX; i++) {
            request_series *e = &s->requests[i];
            if (!atomic_load_explicit(&e->used, memory_order_acquire)) continue;
            if (provider && strcmp(e->labels[LABEL_PROVIDER], provider)) continue;
            for (size_t b = 0; b < METRICS_BUCKETS; b++)
                out->first_byte[b] += read_counter(&e->hist[HIST_FIRST_BYTE].buckets[b]);
        }
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- the exposition ------------------------------------------------------------------------------- */

void metrics_append_escaped(buf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') {
            buf_append(out, "\\", 1);
            buf_append(out, p, 1);
        } else if (*p == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, p, 1);
    }
}

static void append_labels(buf *out, const request_series *e, const char *extra_name, const char *extra_value)
{
    buf_append_str(out, "{");
    for (int i = 0; i < NLABELS; i++) {
        if (i) buf_append_str(out, ",");
        buf_append(out, label_names[i], strlen(label_names[i]));
        buf_append_str(out, "=\"");
        metrics_append_escaped(out, e->labels[i]);
        buf_append_str(out, "\"");
    }
    if (extra_name) {
        buf_printf(out, ",%s=\"", extra_name);
        metrics_append_escaped(out, extra_value);
        buf_append_str(out, "\"");
    }
    buf_append_str(out, "}");
}

static int compare_series(const void *a, const void *b)
{
    const request_series *x = *(request_series *const *)a, *y = *(request_series *const *)b;
    for (int i = 0; i < NLABELS; i++) {
        int c = strcmp(x->labels[i], y->labels[i]);
        if (c) return c;
    }
    return 0;
}

static int compare_rejections(const void *a, const void *b)
{
    const rejection_series *x = *(rejection_series *const *)a, *y = *(rejection_series *const *)b;
    int c = strcmp(rejection_names[x->reason], rejection_names[y->reason]);
    return c ? c : strcmp(x->key, y->key);
}

/* aigw_rejections_total: every shard's series, sorted by (reason, key), equal ones summed. */
static void render_rejections(metrics *m, buf *out)
{
    metrics_family(out, "aigw_rejections_total", "counter",
                   "Requests aigw refused itself before any provider saw them, by reason (auth, models, "
                   "budget, rate limits) and gateway key (\"\" when none was known).");
    size_t n = 0, cap = 64;
    rejection_series **all = xmalloc(cap * sizeof *all);
    for (metrics_shard *s = m->shards; s; s = s->next)
        for (size_t i = 0; i < METRICS_REJECTION_SERIES_MAX + REJECT_COUNT; i++) {
            rejection_series *e = i < METRICS_REJECTION_SERIES_MAX
                                      ? &s->rejections[i]
                                      : &s->rejections_overflow[i - METRICS_REJECTION_SERIES_MAX];
            if (!atomic_load_explicit(&e->used, memory_order_acquire) || !read_counter(&e->rejections))
                continue;
            if (n == cap) all = xrealloc(all, (cap *= 2) * sizeof *all);
            all[n++] = e;
        }
    qsort(all, n, sizeof *all, compare_rejections);
    for (size_t i = 0, end; i < n; i = end) {
        uint64_t total = 0;
        for (end = i; end < n && !compare_rejections(&all[i], &all[end]); end++)
            total += read_counter(&all[end]->rejections);
        buf_printf(out, "aigw_rejections_total{reason=\"%s\",key=\"", rejection_names[all[i]->reason]);
        metrics_append_escaped(out, all[i]->key);
        buf_printf(out, "\"} %llu\n", (unsigned long long)total);
    }
    free(all);
}

/* By family, route, kind, target: a family's series are adjacent, equal ones too. */
static int compare_routes(const void *a, const void *b)
{
    const route_series *x = *(route_series *const *)a, *y = *(route_series *const *)b;
    int c = route_kinds[x->kind].family - route_kinds[y->kind].family;
    if (!c) c = strcmp(x->route, y->route);
    if (!c) c = (int)x->kind - (int)y->kind;
    return c ? c : strcmp(x->target, y->target);
}

/* The routing decisions' three families: every shard's series, sorted, equal ones summed. A
 * family is written (its HELP and TYPE) even before its first series. */
static void render_routes(metrics *m, buf *out)
{
    size_t n = 0, cap = 64;
    route_series **all = xmalloc(cap * sizeof *all);
    for (metrics_shard *s = m->shards; s; s = s->next)
        for (size_t i = 0; i < METRICS_ROUTE_SERIES_MAX + NKINDS; i++) {
            route_series *e = i < METRICS_ROUTE_SERIES_MAX
                                  ? &s->routes[i]
                                  : &s->routes_overflow[i - METRICS_ROUTE_SERIES_MAX];
            if (!atomic_load_explicit(&e->used, memory_order_acquire) || !read_counter(&e->count)) continue;
            if (n == cap) all = xrealloc(all, (cap *= 2) * sizeof *all);
            all[n++] = e;
        }
    qsort(all, n, sizeof *all, compare_routes);
    size_t i = 0;
    for (int f = 0; f < NFAMILIES; f++) {
        metrics_family(out, route_families[f].name, "counter", route_families[f].help);
        for (size_t end; i < n && route_kinds[all[i]->kind].family == f; i = end) {
            uint64_t total = 0;
            for (end = i; end < n && !compare_routes(&all[i], &all[end]); end++)
                total += read_counter(&all[end]->count);
            const route_series *e = all[i];
            buf_printf(out, "%s{route=\"", route_families[f].name);
            metrics_append_escaped(out, e->route);
            if (f == FAMILY_DECISIONS) {
                buf_printf(out, "\",strategy=\"%s\",target=\"", route_kinds[e->kind].strategy);
                metrics_append_escaped(out, e->target);
            }
            buf_printf(out, "\",%s=\"%s\"} %llu\n", route_families[f].label, route_kinds[e->kind].value,
                       (unsigned long long)total);
        }
    }
    free(all);
}

static int compare_attempts(const void *a, const void *b)
{
    const attempt_series *x = *(attempt_series *const *)a, *y = *(attempt_series *const *)b;
    int c = strcmp(x->provider, y->provider);
    return c ? c : strcmp(x->outcome, y->outcome);
}

/* The request series of every shard, sorted by labels; groups of equal labels are adjacent. */
static request_series **collect(metrics *m, size_t *n)
{
    size_t cap = 64;
    request_series **all = xmalloc(cap * sizeof *all);
    *n = 0;
    for (metrics_shard *s = m->shards; s; s = s->next)
        for (size_t i = 0; i <= METRICS_SERIES_MAX; i++) {
            request_series *e = i < METRICS_SERIES_MAX ? &s->requests[i] : &s->overflow;
            if (!atomic_load_explicit(&e->used, memory_order_acquire)) continue;
            if (e == &s->overflow && !read_counter(&e->requests)) continue;
            if (*n == cap) all = xrealloc(all, (cap *= 2) * sizeof *all);
            all[(*n)++] = e;
        }
    qsort(all, *n, sizeof *all, compare_series);
    return all;
}

/* The end of the group starting at i. */
static size_t group_end(request_series **all, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && !compare_series(&all[i], &all[j]))
        j++;
    return j;
}

/* The sum over the group [i, end) of the counter at offset in each series. */
static uint64_t group_sum(request_series **all, size_t i, size_t end, size_t offset)
{
    uint64_t total = 0;
    for (size_t k = i; k < end; k++)
        total += read_counter((counter *)((char *)all[k] + offset));
    return total;
}
#define SUM(field) group_sum(all, i, end, offsetof(request_series, field))

void metrics_family(buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_render(metrics *m, const metrics_gauges *g, buf *out)
{
    pthread_mutex_lock(&m->lock);
    size_t n;
    request_series **all = collect(m, &n);

    metrics_family(out, "aigw_requests_total", "counter",
                   "Requests finished, by route, model, provider, status class, client API and gateway key.");
    for (size_t i = 0, end; i < n; i = end) {
        end = group_end(all, n, i);
        buf_append_str(out, "aigw_requests_total");
        append_labels(out, all[i], NULL, NULL);
        buf_printf(out, " %llu\n", (unsigned long long)SUM(requests));
    }
    metrics_family(out, "aigw_retries_total", "counter",
                   "Upstream attempts after a request's first: retries, fallbacks, hedges.");
    for (size_t i = 0, end; i < n; i = end) {
        end = group_end(all, n, i);
        uint64_t v = SUM(retries);
        if (!v) continue;
        buf_append_str(out, "aigw_retries_total");
        append_labels(out, all[i], NULL, NULL);
        buf_printf(out, " %llu\n", (unsigned long long)v);
    }
    metrics_family(out, "aigw_tokens_total", "counter", "Tokens the providers reported, by kind.");
    for (size_t i = 0, end; i < n; i = end) {
        end = group_end(all, n, i);
        for (int t = 0; t < NTOKENS; t++) {
            uint64_t v = SUM(tokens[t]);
            if (!v) continue;
            buf_append_str(out, "aigw_tokens_total");
            append_labels(out, all[i], "kind", token_kinds[t]);
            buf_printf(out, " %llu\n", (unsigned long long)v);
        }
    }
    metrics_family(out, "aigw_cost_usd_total", "counter", "Cost in US dollars at the catalog's prices.");
    for (size_t i = 0, end; i < n; i = end) {
        end = group_end(all, n, i);
        uint64_t v = SUM(cost_nano_usd);
        if (!v) continue;
        buf_append_str(out, "aigw_cost_usd_total");
        append_labels(out, all[i], NULL, NULL);
        buf_printf(out, " %.9f\n", (double)v / 1e9);
    }
    for (int h = 0; h < NHISTS; h++) {
        metrics_family(out, hist_families[h].name, "histogram", hist_families[h].help);
        for (size_t i = 0, end; i < n; i = end) {
            end = group_end(all, n, i);
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= NBUCKETS; b++) {
                cumulative += SUM(hist[h].buckets[b]);
                char le[32];
                if (b < NBUCKETS)
                    snprintf(le, sizeof le, "%g", metrics_bucket_le[b]);
                else
                    snprintf(le, sizeof le, "+Inf");
                buf_printf(out, "%s_bucket", hist_families[h].name);
                append_labels(out, all[i], "le", le);
                buf_printf(out, " %llu\n", (unsigned long long)cumulative);
            }
            buf_printf(out, "%s_sum", hist_families[h].name);
            append_labels(out, all[i], NULL, NULL);
            buf_printf(out, " %.9f\n", (double)SUM(hist[h].sum_ns) / 1e9);
            buf_printf(out, "%s_count", hist_families[h].name);
            append_labels(out, all[i], NULL, NULL);
            buf_printf(out, " %llu\n", (unsigned long long)cumulative);
        }
    }
    free(all);

    metrics_family(out, "aigw_attempts_total", "counter", "Upstream attempts by provider and outcome.");
    size_t na = 0, cap = 64;
    attempt_series **tries = xmalloc(cap * sizeof *tries);
    for (metrics_shard *s = m->shards; s; s = s->next)
        for (size_t i = 0; i < METRICS_ATTEMPT_SERIES_MAX; i++)
            if (atomic_load_explicit(&s->attempts[i].used, memory_order_acquire)) {
                if (na == cap) tries = xrealloc(tries, (cap *= 2) * sizeof *tries);
                tries[na++] = &s->attempts[i];
            }
    qsort(tries, na, sizeof *tries, compare_attempts);
    for (size_t i = 0, end; i < na; i = end) {
        uint64_t total = 0;
        for (end = i; end < na && !compare_attempts(&tries[i], &tries[end]); end++)
            total += read_counter(&tries[end]->attempts);
        buf_append_str(out, "aigw_attempts_total{provider=\"");
        metrics_append_escaped(out, tries[i]->provider);
        buf_printf(out, "\",outcome=\"%s\"} %llu\n", tries[i]->outcome, (unsigned long long)total);
    }
    free(tries);
    render_rejections(m, out);
    render_routes(m, out);

    uint64_t overflowed = 0, cache[NCACHE_RESULTS] = {0};
    for (metrics_shard *s = m->shards; s; s = s->next) {
        overflowed += read_counter(&s->overflowed);
        for (size_t i = 0; i < NCACHE_RESULTS; i++)
            cache[i] += read_counter(&s->cache[i]);
    }
    pthread_mutex_unlock(&m->lock);

    metrics_family(out, "aigw_cache_results_total", "counter",
                   "Requests the response cache was asked about, by result (HIT, MISS, REFRESH, BYPASS…).");
    for (size_t i = 0; i < NCACHE_RESULTS; i++)
        buf_printf(out, "aigw_cache_results_total{result=\"%s\"} %llu\n", cache_results[i],
                   (unsigned long long)cache[i]);
    metrics_family(out, "aigw_cache_bytes", "gauge",
                   "Bytes the response cache holds now, each entry's overhead counted.");
    buf_printf(out, "aigw_cache_bytes %zu\n", g->cache_bytes);
    metrics_family(out, "aigw_cache_max_bytes", "gauge", "The response cache's bound in bytes.");
    buf_printf(out, "aigw_cache_max_bytes %zu\n", g->cache_max_bytes);
    metrics_family(out, "aigw_cache_entries", "gauge", "Replies the response cache holds now.");
    buf_printf(out, "aigw_cache_entries %zu\n", g->cache_entries);
    metrics_family(out, "aigw_cache_unavailable_total", "counter",
                   "Cache lookups the backend could not answer in time (Redis down or slow): the request "
                   "went on uncached.");
    buf_printf(out, "aigw_cache_unavailable_total %llu\n", (unsigned long long)g->cache_unavailable);
    metrics_family(out, "aigw_cache_stores_dropped_total", "counter",
                   "Replies not stored because the backend could not take them (Redis down or behind).");
    buf_printf(out, "aigw_cache_stores_dropped_total %llu\n", (unsigned long long)g->cache_stores_dropped);
    metrics_family(out, "aigw_cache_embedding_failures_total", "counter",
                   "Semantic lookups whose embedding call failed: the request went on uncached.");
    buf_printf(out, "aigw_cache_embedding_failures_total %llu\n",
               (unsigned long long)g->cache_embed_failures);
    metrics_family(out, "aigw_cache_semantic_entries", "gauge", "Vectors the semantic index holds now.");
    buf_printf(out, "aigw_cache_semantic_entries %zu\n", g->cache_semantic_entries);
    metrics_family(out, "aigw_cache_semantic_bytes", "gauge", "Bytes the semantic index has allocated.");
    buf_printf(out, "aigw_cache_semantic_bytes %zu\n", g->cache_semantic_bytes);

    metrics_family(
        out, "aigw_metrics_overflow_total", "counter",
        "Requests counted under the all-\"other\" series because a worker's series table was full.");
    buf_printf(out, "aigw_metrics_overflow_total %llu\n", (unsigned long long)overflowed);
    metrics_family(out, "aigw_open_connections", "gauge", "Client connections open now.");
    buf_printf(out, "aigw_open_connections %ld\n", g->open_connections);
    metrics_family(out, "aigw_access_log_dropped_total", "counter",
                   "Access-log lines dropped because the writer's queue was full.");
    buf_printf(out, "aigw_access_log_dropped_total %llu\n", (unsigned long long)g->log_dropped);
    if (g->reqlog_on) {
        metrics_family(
            out, "aigw_request_log_dropped_total", "counter",
            "Requests left out of the request log: a queue was full, or the store refused the batch.");
        buf_printf(out, "aigw_request_log_dropped_total{reason=\"queue_full\"} %llu\n",
                   (unsigned long long)g->reqlog_dropped_full);
        buf_printf(out, "aigw_request_log_dropped_total{reason=\"store_error\"} %llu\n",
                   (unsigned long long)g->reqlog_dropped_store);
        metrics_family(out, "aigw_request_log_queued", "gauge",
                       "Requests waiting to be written to the request log.");
        buf_printf(out, "aigw_request_log_queued %llu\n", (unsigned long long)g->reqlog_queued);
        metrics_family(out, "aigw_request_log_written_total", "counter",
                       "Requests written to the request log.");
        buf_printf(out, "aigw_request_log_written_total %llu\n", (unsigned long long)g->reqlog_written);
    }
    if (g->traces_on) {
        metrics_family(out, "aigw_traces_exported_total", "counter",
                       "Requests whose spans an OTLP collector took.");
        buf_printf(out, "aigw_traces_exported_total %llu\n", (unsigned long long)g->traces_exported);
        metrics_family(out, "aigw_traces_dropped_total", "counter",
                       "Requests whose spans were dropped: the exporter's queue was full, or the collector "
                       "kept refusing them.");
        buf_printf(out, "aigw_traces_dropped_total %llu\n", (unsigned long long)g->traces_dropped);
    }
    metrics_family(out, "aigw_build_info", "gauge", "The running build.");
    buf_append_str(out, "aigw_build_info{version=\"");
    metrics_append_escaped(out, g->version ? g->version : "");
    buf_append_str(out, "\"} 1\n");
}
