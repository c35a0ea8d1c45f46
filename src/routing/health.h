/* health.h — inside the routing module: one target's shared health (health.c). */
#ifndef AIGW_ROUTING_HEALTH_H
#define AIGW_ROUTING_HEALTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "routing/routing.h"

typedef enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state;

struct target_health {
    uint64_t hash;
    char *provider, *model;
    const routing_settings *settings;
    pthread_mutex_t lock;
    breaker_state state;
    uint32_t consecutive_failures, probes_in_flight;
    uint64_t open_until_ms;
    uint64_t rate_start_ms;
    uint32_t rate_requests, rate_failures;
    uint64_t budget_start_ms;
    uint32_t req_cur, req_prev, retry_cur, retry_prev;
    double ewma_ms;
    uint64_t ewma_at_ms;
    uint64_t limited_until_ms;
    double tps_ewma; /* output tokens per second of its streams; 0: never measured */
    uint64_t tps_at_ms;
    /* the provider's own counts (rate-limit headers): the least remaining share of any limit it
     * reported, and its remaining tokens, both until the matching reset */
    double headroom;     /* remaining / limit; < 0: not reported */
    int64_t tokens_left; /* < 0: not reported */
    uint64_t remaining_until_ms;
    uint64_t last_ms;       /* the latest clock reading seen under the lock */
    uint32_t ttfb_ring[32]; /* the last successful times to first byte, ms, for hedging's p95 */
    uint32_t ttfb_count, ttfb_next;
    atomic_int outstanding;
    bool configured; /* named by the config (made before the state was sealed) */
    target_health *next;
};

typedef struct health_view {
    breaker_state state;
    bool admits;      /* closed, or half-open with a probe slot free */
    bool limited;     /* the provider said it has nothing left until a reset */
    uint64_t open_ms; /* open: ms until half-open */
    double ewma_ms;   /* 0: never measured */
    int outstanding;
    uint32_t window_requests, window_failures; /* in the breaker's current window */
    double tokens_per_s;                       /* output rate of its streams (EWMA); 0: never measured */
    double headroom;     /* the provider's remaining / limit, least over its limits; < 0: unknown */
    int64_t tokens_left; /* the provider's remaining tokens; < 0: unknown */
} health_view;

/* The providers functions the state was made with (tree.c's leaves with a custom_host). */
const routing_providers *routing__providers(const routing_state *s);

/* A health that lives for one request (registry full): nothing shared, nothing remembered. */
void health_init_scratch(target_health *h, const routing_state *s);
health_view health_look(target_health *h, uint64_t now_ms);
/* An attempt starts: false when the breaker does not admit it. A first try counts as a
 * request for the retry budget; *probe says it holds a half-open probe slot. */
bool health_begin(target_health *h, uint64_t now_ms, bool retry, bool *probe);
/* Takes one retry from the budget when there is one left. */
bool health_retry_allowed(target_health *h, uint64_t now_ms);
/* The attempt ended; failure counts for the breaker; ttfb_ms < 0 when no head came. */
void health_end(target_health *h, uint64_t now_ms, bool failure, bool probe, double ttfb_ms);
/* The attempt was cancelled by aigw: its in-flight count and probe slot are given back, and
 * nothing is learned about the target. */
void health_release(target_health *h, bool probe);
/* A successful reply's time to first byte, for hedging's p95. */
void health_note_ttfb(target_health *h, double ttfb_ms);
/* The p95 of the last 32 successful times to first byte; false with fewer than 10. */
bool health_ttfb_p95(target_health *h, uint32_t *ms);
/* The provider has nothing left until then (monotonic ms). */
void health_limit(target_health *h, uint64_t until_ms);
/* The provider's counts from its rate-limit headers, good until until_ms (monotonic ms): the
 * least remaining share of its limits (headroom < 0: none reported) and its remaining tokens
 * (tokens_left < 0: not reported). A later report replaces them. */
void health_note_remaining(target_health *h, double headroom, int64_t tokens_left, uint64_t until_ms);
/* A stream's output rate: tokens over the ms from its head to its end (EWMA, as latency's
 * faster samples decay in: a 10 s time constant). */
void health_note_throughput(target_health *h, uint64_t now_ms, double tokens, double ms);

#endif
