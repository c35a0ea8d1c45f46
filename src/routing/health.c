/* health.c — what aigw knows about each target right now, shared by every worker.
 *
 * A target is a provider + model. Its health is one small struct behind its own mutex (the
 * critical sections are a few loads and stores; two workers rarely meet there), found in a
 * registry that only grows — a target named once is likely named again — up to a bound once
 * the config is loaded. It holds:
 *
 *   circuit breaker   closed → open after `failures` consecutive failures, or when the
 *                     failure rate of the current window passes rate_pct with at least
 *                     min_requests; open → half-open after the cooldown, letting `probes`
 *                     requests through; a probe's success closes it, a failure reopens it.
 *   retry budget      requests and retries counted over a sliding window (the current fixed
 *                     window, plus the previous one weighted by how much of it still overlaps
 *                     the last `window` ms); a retry is allowed while
 *                     retries < max(min_retries, percent × requests).
 *   latency           a peak-EWMA of the time to the response head: a slower sample is taken
 *                     at once, a faster one decays in with a 10 s time constant (Finagle's
 *                     rule, so a target that turns slow is avoided at once and trusted again
 *                     slowly); outstanding requests as an atomic counter; the last 32
 *                     successful times to first byte, for hedging's p95.
 *   throughput        an EWMA of its streams' output tokens per second (head to end), for an
 *                     auto route's latency estimate.
 *   rate limits       the provider's own remaining-requests/-tokens and reset headers, and a
 *                     429's wait: until then the target counts as limited and strategies
 *                     prefer others; what is left of each limit (headroom) until its reset. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "routing/health.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#define REGISTRY_BUCKETS 256
/* After load, targets named by requests (header configs, a default route's client-chosen
 * model) are remembered up to this many, with names up to REGISTRY_KEY_MAX bytes; beyond,
 * a request gets a scratch health for itself: a client cannot grow the gateway's memory. */
#define REGISTRY_MAX 4096
#define REGISTRY_KEY_MAX 256
#define EWMA_TAU_MS 10000.0

struct routing_state {
    routing_settings settings;
    const routing_providers *providers;
    pthread_mutex_t lock; /* the registry's buckets */
    target_health *buckets[REGISTRY_BUCKETS];
    size_t count;
    bool sealed; /* the config is loaded: growth is bounded from here on */
};

static uint64_t hash_key(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

routing_state *routing_state_new(const routing_settings *settings, const routing_providers *providers)
{
    routing_state *s = xcalloc(1, sizeof *s);
    s->settings = *settings;
    s->providers = providers;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

const routing_providers *routing__providers(const routing_state *s)
{
    return s->providers;
}

void routing_state_free(routing_state *s)
{
    if (!s) return;
    for (size_t i = 0; i < REGISTRY_BUCKETS; i++) {
        target_health *h = s->buckets[i];
        while (h) {
            target_health *next = h->next;
            pthread_mutex_destroy(&h->lock);
            free(h->provider);
            free(h->model);
            free(h);
            h = next;
        }
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void routing_state_seal(routing_state *s)
{
    s->sealed = true;
}

void routing_state_adopt(routing_state *fresh, routing_state *old,
                         bool (*same_target)(const char *provider, void *ud), void *ud)
{
    /* old's registry only grows and its entries live as long as old: walking the buckets
     * without its lock sees a consistent list (a new entry is linked in whole, at the head). */
    for (size_t i = 0; i < REGISTRY_BUCKETS; i++) {
        pthread_mutex_lock(&old->lock);
        target_health *h = old->buckets[i];
        pthread_mutex_unlock(&old->lock);
        for (; h; h = h->next) {
            if (!same_target(h->provider, ud)) continue;
            target_health *to = routing_health(fresh, h->provider, h->model);
            if (!to) continue; /* fresh's registry is full */
            pthread_mutex_lock(&h->lock);
            to->state = h->state;
            to->consecutive_failures = h->consecutive_failures;
            to->probes_in_flight = 0;
            to->open_until_ms = h->open_until_ms;
            to->rate_start_ms = h->rate_start_ms;
            to->rate_requests = h->rate_requests;
            to->rate_failures = h->rate_failures;
            to->budget_start_ms = h->budget_start_ms;
            to->req_cur = h->req_cur;
            to->req_prev = h->req_prev;
            to->retry_cur = h->retry_cur;
            to->retry_prev = h->retry_prev;
            to->ewma_ms = h->ewma_ms;
            to->ewma_at_ms = h->ewma_at_ms;
            to->limited_until_ms = h->limited_until_ms;
            to->tps_ewma = h->tps_ewma;
            to->tps_at_ms = h->tps_at_ms;
            to->headroom = h->headroom;
            to->tokens_left = h->tokens_left;
            to->remaining_until_ms = h->remaining_until_ms;
            to->last_ms = h->last_ms;
            memcpy(to->ttfb_ring, h->ttfb_ring, sizeof to->ttfb_ring);
            to->ttfb_count = h->ttfb_count;
            to->ttfb_next = h->ttfb_next;
            pthread_mutex_unlock(&h->lock);
        }
    }
}

void health_init_scratch(target_health *h, const routing_state *s)
{
    memset(h, 0, sizeof *h);
    h->settings = &s->settings;
    h->headroom = -1;
    h->tokens_left = -1;
    pthread_mutex_init(&h->lock, NULL);
}

target_health *routing_health(routing_state *s, const char *provider, const char *model)
{
    if (s->sealed && strlen(provider) + strlen(model) > REGISTRY_KEY_MAX) return NULL;
    uint64_t hv = hash_key(provider, model);
    target_health **slot = &s->buckets[hv % REGISTRY_BUCKETS];
    pthread_mutex_lock(&s->lock);
    target_health *h = *slot;
    while (h && (h->hash != hv || strcmp(h->provider, provider) || strcmp(h->model, model)))
        h = h->next;
    if (!h && !(s->sealed && s->count >= REGISTRY_MAX)) {
        s->count++;
        h = xcalloc(1, sizeof *h);
        h->hash = hv;
        h->provider = xstrdup(provider);
        h->model = xstrdup(model);
        h->settings = &s->settings;
        h->headroom = -1;
        h->tokens_left = -1;
        h->configured = !s->sealed;
        pthread_mutex_init(&h->lock, NULL);
        h->next = *slot;
        *slot = h;
    }
    pthread_mutex_unlock(&s->lock);
    return h;
}

void routing_state_each(routing_state *s, void (*fn)(void *ud, const routing_target_view *v), void *ud)
{
    static const char *const states[] = {
        [BREAKER_CLOSED] = "closed", [BREAKER_OPEN] = "open", [BREAKER_HALF_OPEN] = "half_open"};
    uint64_t now_ms = time_now_ns() / 1000000;
    pthread_mutex_lock(&s->lock);
    for (size_t b = 0; b < REGISTRY_BUCKETS; b++)
        for (target_health *h = s->buckets[b]; h; h = h->next) {
            if (!h->configured) continue;
            health_view hv = health_look(h, now_ms);
            routing_target_view v = {.provider = h->provider,
                                     .model = h->model,
                                     .breaker = states[hv.state],
                                     .breaker_state = (int)hv.state,
                                     .in_flight = hv.outstanding,
                                     .ewma_ms = hv.ewma_ms};
            fn(ud, &v);
        }
    pthread_mutex_unlock(&s->lock);
}

size_t routing_state_reset_breakers(routing_state *s, const char *provider, const char *model)
{
    size_t changed = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t b = 0; b < REGISTRY_BUCKETS; b++)
        for (target_health *h = s->buckets[b]; h; h = h->next) {
            if ((provider && strcmp(provider, h->provider)) || (model && strcmp(model, h->model))) continue;
            pthread_mutex_lock(&h->lock);
            if (h->state != BREAKER_CLOSED) changed++;
            /* closed with fresh windows; a probe still in flight gives its slot back to nothing
             * (health_end and health_release never take the count below zero) */
            h->state = BREAKER_CLOSED;
            h->consecutive_failures = 0;
            h->open_until_ms = 0;
            h->rate_requests = h->rate_failures = 0;
            pthread_mutex_unlock(&h->lock);
        }
    pthread_mutex_unlock(&s->lock);
    return changed;
}

/* ---- breaker -------------------------------------------------------------------------------- */

/* Callers read the clock before taking the lock; another worker may have moved the windows
 * past that reading meanwhile. Time never goes back for a target. Lock held. */
static uint64_t clamp_now(target_health *h, uint64_t now_ms)
{
    if (now_ms < h->last_ms) return h->last_ms;
    h->last_ms = now_ms;
    return now_ms;
}

/* Moves an open breaker whose cooldown is over to half-open. Lock held. */
static void breaker_tick(target_health *h, uint64_t now_ms)
{
    if (h->state == BREAKER_OPEN && now_ms >= h->open_until_ms) {
        h->state = BREAKER_HALF_OPEN;
        h->probes_in_flight = 0;
    }
}

/* Slides the budget and failure-rate windows to now. Lock held. */
static void windows_tick(target_health *h, uint64_t now_ms)
{
    uint32_t bw = h->settings->budget_window_ms ? h->settings->budget_window_ms : 1;
    if (now_ms - h->budget_start_ms >= bw) {
        bool adjacent = now_ms - h->budget_start_ms < 2 * (uint64_t)bw;
        h->req_prev = adjacent ? h->req_cur : 0;
        h->retry_prev = adjacent ? h->retry_cur : 0;
        h->req_cur = h->retry_cur = 0;
        h->budget_start_ms = adjacent ? h->budget_start_ms + bw : now_ms;
    }
    if (now_ms - h->rate_start_ms >= h->settings->breaker_window_ms) {
        h->rate_requests = h->rate_failures = 0;
        h->rate_start_ms = now_ms;
    }
}

health_view health_look(target_health *h, uint64_t now_ms)
{
    health_view v = {0};
    pthread_mutex_lock(&h->lock);
    now_ms = clamp_now(h, now_ms);
    breaker_tick(h, now_ms);
    windows_tick(h, now_ms); /* a window long past says nothing of now */
    v.state = h->state;
    v.open_ms = h->state == BREAKER_OPEN ? h->open_until_ms - now_ms : 0;
    v.admits = h->state == BREAKER_CLOSED ||
               (h->state == BREAKER_HALF_OPEN && (int)h->probes_in_flight < h->settings->breaker_probes);
    v.limited = h->limited_until_ms > now_ms;
    v.ewma_ms = h->ewma_ms;
    v.window_requests = h->rate_requests;
    v.window_failures = h->rate_failures;
    v.tokens_per_s = h->tps_ewma;
    bool counts = h->remaining_until_ms > now_ms;
    v.headroom = counts ? h->headroom : -1;
    v.tokens_left = counts ? h->tokens_left : -1;
    pthread_mutex_unlock(&h->lock);
    v.outstanding = atomic_load_explicit(&h->outstanding, memory_order_relaxed);
    return v;
}

bool health_begin(target_health *h, uint64_t now_ms, bool retry, bool *probe)
{
    pthread_mutex_lock(&h->lock);
    now_ms = clamp_now(h, now_ms);
    breaker_tick(h, now_ms);
    windows_tick(h, now_ms);
    *probe = false;
    bool ok = true;
    if (h->state == BREAKER_OPEN) {
        ok = false;
    } else if (h->state == BREAKER_HALF_OPEN) {
        if ((int)h->probes_in_flight < h->settings->breaker_probes) {
            h->probes_in_flight++;
            *probe = true;
        } else {
            ok = false;
        }
    }
    if (ok && !retry) h->req_cur++;
    pthread_mutex_unlock(&h->lock);
    if (ok) atomic_fetch_add_explicit(&h->outstanding, 1, memory_order_relaxed);
    return ok;
}

bool health_retry_allowed(target_health *h, uint64_t now_ms)
{
    const routing_settings *s = h->settings;
    pthread_mutex_lock(&h->lock);
    now_ms = clamp_now(h, now_ms);
    windows_tick(h, now_ms);
    uint32_t bw = s->budget_window_ms ? s->budget_window_ms : 1;
    double older = 1.0 - (double)(now_ms - h->budget_start_ms) / bw;
    if (older < 0) older = 0;
    double requests = h->req_cur + h->req_prev * older;
    double retries = h->retry_cur + h->retry_prev * older;
    double allowed = fmax((double)s->budget_min_retries, s->budget_percent / 100.0 * requests);
    bool ok = retries + 1 <= allowed;
    if (ok) h->retry_cur++;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

void health_end(target_health *h, uint64_t now_ms, bool failure, bool probe, double ttfb_ms)
{
    const routing_settings *s = h->settings;
    atomic_fetch_sub_explicit(&h->outstanding, 1, memory_order_relaxed);
    pthread_mutex_lock(&h->lock);
    breaker_state before = h->state;
    now_ms = clamp_now(h, now_ms);
    windows_tick(h, now_ms);
    if (ttfb_ms >= 0) {
        /* peak-EWMA */
        double dt = (double)(now_ms - h->ewma_at_ms);
        if (!h->ewma_at_ms || ttfb_ms > h->ewma_ms) {
            h->ewma_ms = ttfb_ms;
        } else {
            double w = exp(-dt / EWMA_TAU_MS);
            h->ewma_ms = h->ewma_ms * w + ttfb_ms * (1 - w);
        }
        h->ewma_at_ms = now_ms ? now_ms : 1;
    }
    if (probe && h->probes_in_flight) h->probes_in_flight--;
    h->rate_requests++;
    if (!failure) {
        h->consecutive_failures = 0;
        if (h->state == BREAKER_HALF_OPEN && probe) h->state = BREAKER_CLOSED;
    } else {
        h->consecutive_failures++;
        h->rate_failures++;
        bool trip = h->state == BREAKER_HALF_OPEN && probe;
        if (h->state == BREAKER_CLOSED) {
            trip = (s->breaker_failures && h->consecutive_failures >= (uint32_t)s->breaker_failures) ||
                   (s->breaker_rate_pct && h->rate_requests >= (uint32_t)s->breaker_min_requests &&
                    h->rate_failures * 100 >= (uint32_t)s->breaker_rate_pct * h->rate_requests);
        }
        if (trip) {
            h->state = BREAKER_OPEN;
            h->open_until_ms = now_ms + s->breaker_cooldown_ms;
            h->rate_requests = h->rate_failures = 0;
            h->rate_start_ms = now_ms;
        }
    }
    breaker_state after = h->state;
    uint32_t failures = h->consecutive_failures;
    pthread_mutex_unlock(&h->lock);
    /* an event for the config's targets (a client-named one is the client's business); rare —
     * once per trip and per recovery — so the line is written here, on the worker */
    if (after != before && h->configured && after == BREAKER_OPEN)
        log_event(LOG_WARN, "breaker_open", "breaker of %s/%s opened after %u failure%s; half-open in %u ms",
                  h->provider, h->model, failures, failures == 1 ? "" : "s", s->breaker_cooldown_ms);
    else if (after != before && h->configured && after == BREAKER_CLOSED)
        log_event(LOG_INFO, "breaker_closed", "breaker of %s/%s closed: a probe succeeded", h->provider,
                  h->model);
}

void health_note_ttfb(target_health *h, double ttfb_ms)
{
    pthread_mutex_lock(&h->lock);
    h->ttfb_ring[h->ttfb_next] = ttfb_ms > 4e9 ? 4000000000u : (uint32_t)ttfb_ms;
    h->ttfb_next = (h->ttfb_next + 1) % 32;
    if (h->ttfb_count < 32) h->ttfb_count++;
    pthread_mutex_unlock(&h->lock);
}

bool health_ttfb_p95(target_health *h, uint32_t *ms)
{
    uint32_t v[32];
    pthread_mutex_lock(&h->lock);
    uint32_t n = h->ttfb_count;
    memcpy(v, h->ttfb_ring, sizeof v);
    pthread_mutex_unlock(&h->lock);
    if (n < 10) return false;
    for (uint32_t i = 1; i < n; i++) /* 32 values at most: insertion sort */
        for (uint32_t j = i; j && v[j - 1] > v[j]; j--) {
            uint32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *ms = v[(n * 95 + 99) / 100 - 1];
    return true;
}

void health_release(target_health *h, bool probe)
{
    atomic_fetch_sub_explicit(&h->outstanding, 1, memory_order_relaxed);
    if (!probe) return;
    pthread_mutex_lock(&h->lock);
    if (h->probes_in_flight) h->probes_in_flight--;
    pthread_mutex_unlock(&h->lock);
}

void health_limit(target_health *h, uint64_t until_ms)
{
    pthread_mutex_lock(&h->lock);
    if (until_ms > h->limited_until_ms) h->limited_until_ms = until_ms;
    pthread_mutex_unlock(&h->lock);
}

void health_note_remaining(target_health *h, double headroom, int64_t tokens_left, uint64_t until_ms)
{
    pthread_mutex_lock(&h->lock);
    h->headroom = headroom;
    h->tokens_left = tokens_left;
    h->remaining_until_ms = until_ms;
    pthread_mutex_unlock(&h->lock);
}

void health_note_throughput(target_health *h, uint64_t now_ms, double tokens, double ms)
{
    if (!(tokens > 0) || !(ms > 0)) return;
    double rate = tokens * 1000.0 / ms;
    pthread_mutex_lock(&h->lock);
    now_ms = clamp_now(h, now_ms);
    if (!h->tps_at_ms) {
        h->tps_ewma = rate;
    } else {
        double w = exp(-(double)(now_ms - h->tps_at_ms) / EWMA_TAU_MS);
        h->tps_ewma = h->tps_ewma * w + rate * (1 - w);
    }
    h->tps_at_ms = now_ms ? now_ms : 1;
    pthread_mutex_unlock(&h->lock);
}
