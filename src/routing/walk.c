/* walk.c — one request's way through its route tree: which target, then which next.
 *
 * The walk keeps the path from the root to the current leaf as a stack (node, chosen child).
 * Descending chooses: single → its child; fallback → the first child that can be used;
 * loadbalance → one child by its balance (smooth weighted round robin, least outstanding,
 * or power of two choices over peak-EWMA latency); conditional → the first matching
 * condition's child (condition.c evaluates the conditions), else the default. A leaf can be
 * used when its breaker admits it and the prompt fits its model's context window; a leaf the
 * provider called rate-limited is used only when nothing else can be.
 *
 * After a failed attempt: the same leaf again while its retry policy and the retry budget
 * allow (with a backoff, or the provider's own wait); else the failure climbs the stack, and
 * the first fallback node whose on_status_codes match moves to its next child. A leaf whose
 * target the request already sent to (copies of one target) pays the retry budget as a retry
 * would, and a walk ends after routing.max_attempts attempts at most. In a Portkey config the
 * deadline of a request_timeout is the status 408 (Portkey's), which its retry and fallback
 * status lists match; aigw's own configs treat it as any timeout.
 *
 * Shared health hears only what is true for every client: a client's own deadline (a request
 * config's request_timeout firing) and its 4xx are neither failures nor successes of the
 * target, and leaves with the client's own host or key have a health for the request alone.
 *
 * Hedging keeps a second slot: the attempt the hedge runs against ("other") while the hedge's
 * target is the current one; whichever loses is reported on its own slot. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "routing/condition.h"
#include "routing/health.h"
#include "util/random.h"
#include "util/timeutil.h"

/* One attempt's bookkeeping: its target, its shared health, its log entry. */
typedef struct walk_slot {
    const route_node *leaf;
    target_health *health;
    const char *path;
    route_attempt_log *log;
    uint64_t begin_ns;
    uint32_t tries; /* on this leaf */
    bool begun, probe;
    bool hedged; /* one of a hedged pair: not retried */
    bool repeat; /* a target this request already sent to (another leaf of it): counts as a retry */
} walk_slot;

struct route_walk {
    route_context ctx;
    const route_tree *tree;
    const route_node *stack[ROUTE_MAX_DEPTH + 2];
    int depth;
    walk_slot cur;   /* the attempt the walk decides on */
    walk_slot other; /* while a hedge runs: the attempt it hedges against */
    int hedge_at;    /* stack index of the fallback node that hedges */
    bool hedged;     /* a hedge started (one per request) */
    bool avoid_limited, saw_limited, started, done;
    uint32_t attempts, max_attempts;
    attempt_report last;
    bool last_own;                           /* the last failure was the client's own doing (slot_report) */
    target_health *sent[ROUTE_MAX_ATTEMPTS]; /* the targets sent to, each once */
    uint32_t nsent;
    char *paths;
    size_t paths_len;
    route_attempt_log *log_head, *log_tail;
    const char *unavailable;
    uint64_t unavailable_ms;
    int unavailable_status;
    const char *error;
    const char *note;          /* route_note() */
    pcre2_match_data *matches; /* for $regex searches, made at the first one */
    size_t estimate;           /* the prompt's tokens, once counted */
    bool estimated;
};

static uint64_t now_ms(void)
{
    return time_now_ns() / 1000000;
}

static bool is_leaf(const route_node *n)
{
    return n->nchildren == 0;
}

/* The leaf's shared health; a health of its own for this request when the registry is full,
 * or when the leaf uses the client's own host or key (tree.c: attach_health). */
static target_health *leaf_health(route_walk *w, const route_node *leaf)
{
    if (leaf->health) return leaf->health;
    target_health *h =
        leaf->custom_host || leaf->api_key
            ? NULL
            : routing_health(w->ctx.state, leaf->provider->name, leaf->model ? leaf->model : w->ctx.model);
    if (h) return h;
    h = arena_alloc(w->ctx.arena, sizeof *h); /* never freed: a default mutex holds nothing */
    health_init_scratch(h, w->ctx.state);
    return h;
}

static const catalog_entry *leaf_catalog(route_walk *w, const route_node *leaf)
{
    if (leaf->route) return leaf->route->catalog;
    return catalog_find(&w->ctx.config->catalog, leaf->provider->type,
                        leaf->model ? leaf->model : w->ctx.model);
}

/* ---- the attempt log -------------------------------------------------------------------- */

static route_attempt_log *log_add(route_walk *w, const route_node *leaf, const char *path)
{
    route_attempt_log *l = arena_alloc(w->ctx.arena, sizeof *l);
    memset(l, 0, sizeof *l);
    l->provider = leaf->provider->name;
    l->model = leaf->model ? leaf->model : w->ctx.model;
    l->path = path;
    if (w->log_tail)
        w->log_tail->next = l;
    else
        w->log_head = l;
    w->log_tail = l;
    return l;
}

static const char *leaf_path_of(route_walk *w)
{
    size_t len = 0;
    for (int i = 0; i < w->depth; i++)
        len += strlen(w->stack[i]->label) + 1;
    char *p = arena_alloc(w->ctx.arena, len + 1);
    size_t off = 0;
    for (int i = 0; i < w->depth; i++) {
        if (i) p[off++] = '/';
        size_t l = strlen(w->stack[i]->label);
        memcpy(p + off, w->stack[i]->label, l);
        off += l;
    }
    p[off] = '\0';
    return p;
}

/* ---- choosing ---------------------------------------------------------------------------- */

static const route_node *descend(route_walk *w, const route_node *n);

/* Outstanding requests and the best latency over a subtree's leaves. */
static void subtree_load(route_walk *w, const route_node *n, int *outstanding, double *ewma)
{
    if (is_leaf(n)) {
        health_view v = health_look(leaf_health(w, n), now_ms());
        *outstanding += v.outstanding;
        if (*ewma < 0 || v.ewma_ms < *ewma) *ewma = v.ewma_ms;
        return;
    }
    for (size_t i = 0; i < n->nchildren; i++)
        subtree_load(w, &n->children[i], outstanding, ewma);
}

/* One child of a loadbalance node among those not excluded; -1 when none is left. */
static int balance_pick(route_walk *w, const route_node *n, const bool *excluded)
{
    int cand[ROUTE_MAX_CHILDREN];
    int nc = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n->nchildren; i++)
        if (!excluded[i] && n->children[i].weight) {
            cand[nc++] = (int)i;
            total += n->children[i].weight;
        }
    if (!nc) return -1;
    if (nc == 1) return cand[0];
    switch (n->balance) {
    case BALANCE_LEAST_BUSY: {
        /* fewest outstanding per unit of weight; ties broken at random */
        int best = -1;
        double best_score = 0;
        uint64_t start = random_next(w->ctx.rng) % (uint64_t)nc;
        for (int k = 0; k < nc; k++) {
            int i = cand[(start + (uint64_t)k) % (uint64_t)nc];
            int out = 0;
            double ewma = -1;
            subtree_load(w, &n->children[i], &out, &ewma);
            double score = (double)out / n->children[i].weight;
            if (best < 0 || score < best_score) best = i, best_score = score;
        }
        return best;
    }
    case BALANCE_LATENCY: {
        /* two random candidates; the one with the lower peak-EWMA × (outstanding + 1) */
        int a = cand[random_next(w->ctx.rng) % (uint64_t)nc];
        int b = cand[random_next(w->ctx.rng) % (uint64_t)(nc - 1)];
        if (b == a) b = cand[nc - 1];
        double cost[2];
        int pick[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            int out = 0;
            double ewma = -1;
            subtree_load(w, &n->children[pick[k]], &out, &ewma);
            cost[k] = (ewma < 0 ? 0 : ewma) * (out + 1);
        }
        return cost[1] < cost[0] ? b : a;
    }
    case BALANCE_WEIGHTED:
        if (n->sequence) {
            uint64_t pos = atomic_fetch_add_explicit((_Atomic uint64_t *)n->cursor, 1, memory_order_relaxed);
            for (size_t k = 0; k < n->sequence_len; k++) {
                int i = n->sequence[(pos + k) % n->sequence_len];
                if (!excluded[i] && n->children[i].weight) return i;
            }
        }
        /* a per-request tree has no shared position: weighted random, as Portkey does */
        uint64_t r = random_next(w->ctx.rng) % total;
        for (int k = 0; k < nc; k++) {
            uint32_t wt = n->children[cand[k]].weight;
            if (r < wt) return cand[k];
            r -= wt;
        }
        return cand[nc - 1];
    }
    return cand[0];
}

/* Prompt bytes / 4 is an upper bound on tokens for text; only past it is the text itself
 * counted (images are bytes, not tokens), so the usual request pays nothing. */
static bool fits_context(route_walk *w, const route_node *leaf)
{
    const catalog_entry *e = leaf_catalog(w, leaf);
    if (!e || !e->context || w->ctx.prompt_bytes / 4 <= e->context) return true;
    if (!w->ctx.estimate_tokens) return true;
    if (!w->estimated) { /* once per request, however many targets are checked */
        w->estimate = w->ctx.estimate_tokens(w->ctx.estimate_ud);
        w->estimated = true;
    }
    return w->estimate <= e->context;
}

static bool was_sent(const route_walk *w, const target_health *h)
{
    for (uint32_t i = 0; i < w->nsent; i++)
        if (w->sent[i] == h) return true;
    return false;
}

static const route_node *use_leaf(route_walk *w, const route_node *leaf)
{
    health_view v = health_look(leaf_health(w, leaf), now_ms());
    const char *why = NULL;
    if (!v.admits) {
        why = v.state == BREAKER_OPEN ? "circuit open" : "circuit half-open, probe in flight";
        uint64_t in = v.state == BREAKER_OPEN ? v.open_ms : 1;
        if (!w->unavailable || in < w->unavailable_ms) w->unavailable_ms = in;
        w->unavailable = why;
        w->unavailable_status = 503;
    } else if (v.limited && w->avoid_limited) {
        why = "rate-limited by the provider";
        w->saw_limited = true;
    } else if (!fits_context(w, leaf)) {
        why = "prompt larger than the model's context window";
        if (!w->unavailable) w->unavailable = why, w->unavailable_status = 400;
    } else if (was_sent(w, leaf_health(w, leaf)) && !health_retry_allowed(leaf_health(w, leaf), now_ms())) {
        /* the same target again by another leaf (a fallback or a hedge over copies of it):
         * a retry in all but name, so the retry budget pays for it */
        why = "retry budget exhausted (a target this request already sent to)";
    }
    if (!why) return leaf;
    route_attempt_log *l = log_add(w, leaf, leaf_path_of(w));
    l->result = ATTEMPT_SKIPPED;
    l->why = why;
    return NULL;
}

/* An auto node's candidates to try, and the k-th of them (route_context.auto_order). */
static size_t auto_count(const route_walk *w, const route_node *n)
{
    return w->ctx.auto_order ? w->ctx.auto_n : n->nchildren;
}

static size_t auto_child(const route_walk *w, size_t k)
{
    return w->ctx.auto_order ? w->ctx.auto_order[k] : k;
}

static const route_node *descend_child(route_walk *w, const route_node *n, size_t i)
{
    return descend(w, &n->children[i]);
}

static const route_node *descend(route_walk *w, const route_node *n)
{
    w->stack[w->depth++] = n;
    const route_node *leaf = NULL;
    if (is_leaf(n)) {
        leaf = use_leaf(w, n);
    } else {
        switch (n->mode) {
        case ROUTE_SINGLE: leaf = descend_child(w, n, 0); break;
        case ROUTE_FALLBACK:
            for (size_t i = 0; i < n->nchildren && !leaf; i++)
                leaf = descend_child(w, n, i);
            break;
        case ROUTE_LOADBALANCE: {
            bool excluded[ROUTE_MAX_CHILDREN] = {false};
            int i;
            while (!leaf && (i = balance_pick(w, n, excluded)) >= 0) {
                excluded[i] = true;
                leaf = descend_child(w, n, (size_t)i);
            }
            break;
        }
        case ROUTE_CONDITIONAL: {
            int child = n->default_child;
            for (size_t i = 0; i < n->nconditions; i++)
                if (route__query_matches(&w->ctx, w->tree, n->conditions[i].query, &w->matches, &w->note)) {
                    child = n->conditions[i].child;
                    break;
                }
            if (child < 0)
                w->error = "no condition of the conditional route matched the request, and it has no default";
            else
                leaf = descend_child(w, n, (size_t)child);
            break;
        }
        case ROUTE_ROUTER: {
            /* the pipeline decided (plan.c); the other target only when the chosen one cannot
             * be used now (its breaker), as a fallback node would */
            int chosen = w->ctx.router_choice;
            if (chosen < 0 || chosen > 1) {
                w->error = "the router strategy has no decision (no router model is loaded)";
                break;
            }
            leaf = descend_child(w, n, (size_t)chosen);
            if (!leaf && !w->error) leaf = descend_child(w, n, (size_t)(1 - chosen));
            break;
        }
        case ROUTE_AUTO:
            /* the pipeline ranked the candidates (route_auto_rank): in that order, as a fallback
             * node takes its children; unranked (nothing asked), in the config's */
            for (size_t k = 0; k < auto_count(w, n) && !leaf && !w->error; k++)
                leaf = descend_child(w, n, auto_child(w, k));
            break;
        }
    }
    if (!leaf) w->depth--;
    return leaf;
}

/* Descends preferring targets that are not rate-limited; when only those are left, uses them. */
static const route_node *descend_preferring(route_walk *w, const route_node *n)
{
    w->avoid_limited = true;
    w->saw_limited = false;
    const route_node *leaf = descend(w, n);
    if (!leaf && w->saw_limited && !w->error) {
        w->avoid_limited = false;
        leaf = descend(w, n);
    }
    return leaf;
}

/* ---- the walk ------------------------------------------------------------------------------ */

route_walk *route_walk_new(const route_context *ctx, const route_tree *tree)
{
    route_walk *w = arena_alloc(ctx->arena, sizeof *w);
    memset(w, 0, sizeof *w);
    w->ctx = *ctx;
    w->tree = tree;
    int cap = ctx->config ? ctx->config->routing.max_attempts : 0;
    w->max_attempts = cap > 0 && cap <= ROUTE_MAX_ATTEMPTS ? (uint32_t)cap : ROUTE_MAX_ATTEMPTS;
    return w;
}

route_walk *route_walk_fresh(const route_walk *w)
{
    return route_walk_new(&w->ctx, w->tree);
}

static bool fallback_triggers(const route_node *n, const attempt_report *r)
{
    if (r->result != ATTEMPT_STATUS) return true; /* timeouts, connection errors, skips */
    if (n->fallback_on_any) return r->status < 200 || r->status > 299;
    return status_set_has(&n->fallback_on, r->status);
}

static bool retryable(const route_node *leaf, const attempt_report *r)
{
    switch (r->result) {
    case ATTEMPT_TIMEOUT:
    case ATTEMPT_CONNECT:
    case ATTEMPT_BROKEN: return true;
    case ATTEMPT_STATUS: return status_set_has(&leaf->retry.on, r->status);
    default: return false;
    }
}

static bool emit(route_walk *w, const route_node *leaf, route_target *out, bool retry, uint32_t wait_ms)
{
    if (!retry) {
        memset(&w->cur, 0, sizeof w->cur);
        w->cur.leaf = leaf;
        w->cur.health = leaf_health(w, leaf);
        w->cur.path = leaf_path_of(w);
        w->cur.repeat = was_sent(w, w->cur.health);
    }
    out->leaf = leaf;
    out->path = w->cur.path;
    out->retry = retry;
    out->wait_ms = wait_ms;
    out->route = NULL;
    out->send_once = w->tree->portkey;
    return true;
}

bool route_next(route_walk *w, route_target *out)
{
    if (w->done) return false;
    if (w->attempts >= w->max_attempts && !(w->started && w->last.result == ATTEMPT_OK)) {
        /* one request never fans out further: the last attempt's answer is final */
        if (w->log_tail) w->log_tail->why = "routing.max_attempts reached";
        w->done = true;
        return false;
    }
    if (!w->started) {
        w->started = true;
        const route_node *leaf = descend_preferring(w, &w->tree->root);
        if (leaf) return emit(w, leaf, out, false, 0);
        w->done = true;
        return false;
    }
    attempt_report r = w->last;
    if (r.result == ATTEMPT_OK) {
        w->done = true;
        return false;
    }
    const route_node *leaf = w->cur.leaf;
    route_attempt_log *cur = w->cur.log;
    /* the same target again? (not one of a hedged pair: two targets were already asked) */
    if (r.result != ATTEMPT_SKIPPED && !w->cur.hedged && w->cur.tries <= leaf->retry.attempts &&
        retryable(leaf, &r)) {
        const retry_policy *p = &leaf->retry;
        int64_t wait;
        const char *why = NULL;
        if (p->use_retry_after && r.retry_after_ms >= 0) {
            wait = r.retry_after_ms;
            if ((uint64_t)wait > p->max_wait_ms)
                why = "the provider asked to wait longer than retry.max_wait";
        } else {
            uint64_t cap = (uint64_t)p->base_delay_ms << (w->cur.tries > 16 ? 16 : w->cur.tries - 1);
            if (cap > p->max_delay_ms) cap = p->max_delay_ms;
            wait = cap ? (int64_t)(random_next(w->ctx.rng) % (cap + 1)) : 0; /* full jitter */
        }
        /* A retry after the client's own failure (its deadline, its 4xx) is not taken from the
         * shared budget, which would leave other clients without retries; routing.max_attempts
         * bounds it. */
        if (!why && !w->last_own && !health_retry_allowed(w->cur.health, now_ms()))
            why = "retry budget exhausted";
        if (!why) return emit(w, leaf, out, true, (uint32_t)wait);
        if (cur) cur->why = why;
    }
    /* the failure climbs to the first fallback node that takes it */
    while (w->depth > 1) {
        w->depth--;
        const route_node *parent = w->stack[w->depth - 1];
        const route_node *failed = w->stack[w->depth];
        if (parent->mode == ROUTE_ROUTER && fallback_triggers(parent, &r) &&
            failed - parent->children == w->ctx.router_choice) { /* the chosen one failed: the other */
            const route_node *next = descend_preferring(w, &parent->children[1 - w->ctx.router_choice]);
            if (next) return emit(w, next, out, false, 0);
            if (w->error) break;
            continue;
        }
        if (parent->mode == ROUTE_AUTO && fallback_triggers(parent, &r)) { /* the next in rank */
            size_t failed_i = (size_t)(failed - parent->children), k = 0, n = auto_count(w, parent);
            while (k < n && auto_child(w, k) != failed_i)
                k++;
            for (k++; k < n; k++) {
                const route_node *next = descend_preferring(w, &parent->children[auto_child(w, k)]);
                if (next) return emit(w, next, out, false, 0);
                if (w->error) break;
            }
            if (w->error) break;
            continue;
        }
        if (parent->mode != ROUTE_FALLBACK || !fallback_triggers(parent, &r)) continue;
        for (size_t i = (size_t)(failed - parent->children) + 1; i < parent->nchildren; i++) {
            const route_node *next = descend_preferring(w, &parent->children[i]);
            if (next) return emit(w, next, out, false, 0);
            if (w->error) break;
        }
        if (w->error) break;
    }
    w->done = true;
    return false;
}

bool route_begin(route_walk *w, const route_target *t)
{
    walk_slot *c = &w->cur;
    route_attempt_log *l = log_add(w, t->leaf, t->path);
    l->wait_ms = t->wait_ms;
    l->retry = t->retry;
    l->hedge = c->hedged; /* route_hedge_next marked the slot it made */
    c->log = l;
    c->tries++;
    c->begun = health_begin(c->health, now_ms(), t->retry || c->repeat, &c->probe);
    c->begin_ns = time_now_ns();
    if (!c->begun) {
        l->result = ATTEMPT_SKIPPED;
        l->why = "circuit opened meanwhile";
        w->last = (attempt_report){.result = ATTEMPT_SKIPPED, .retry_after_ms = -1};
        return false;
    }
    w->attempts++;
    if (!was_sent(w, c->health) && w->nsent < ROUTE_MAX_ATTEMPTS) w->sent[w->nsent++] = c->health;
    if (!t->retry && w->paths_len < 1024) { /* x-aigw-route: each target once, in order, bounded */
        size_t plen = strlen(t->path);
        char *p = arena_alloc(w->ctx.arena, w->paths_len + plen + 3);
        if (w->paths_len) {
            memcpy(p, w->paths, w->paths_len);
            memcpy(p + w->paths_len, ", ", 2);
            w->paths_len += 2;
        }
        memcpy(p + w->paths_len, t->path, plen + 1);
        w->paths_len += plen;
        w->paths = p;
    }
    return true;
}

/* Whether a timeout is the deadline of the leaf's request_timeout: the attempt lasted that long
 * (the other deadlines, the provider's connect / first byte / idle, would have fired later). */
static bool deadline_fired(const walk_slot *s, const attempt_report *r, double ms)
{
    return r->result == ATTEMPT_TIMEOUT && s->leaf->request_timeout_ms &&
           ms + 2 >= s->leaf->request_timeout_ms;
}

/* Whether a failure is the client's own doing, which says nothing about the target for anyone
 * else: the deadline of a request_timeout the client's own config set fired, or a 4xx other
 * than 429 (its request, its parameters, its override_params). */
static bool clients_own(const route_walk *w, const walk_slot *s, const attempt_report *r, double ms)
{
    if (r->result == ATTEMPT_STATUS) return r->status >= 400 && r->status < 500 && r->status != 429;
    return w->tree->client && deadline_fired(s, r, ms);
}

/* An attempt's end, into its log entry and its target's health. Returns whether it was the
 * deadline of its leaf's request_timeout. */
static bool slot_report(route_walk *w, walk_slot *s, const attempt_report *r)
{
    route_attempt_log *l = s->log;
    double ms = (double)(time_now_ns() - s->begin_ns) / 1e6;
    if (l && l->result != ATTEMPT_SKIPPED) {
        l->result = r->result;
        l->status = r->status;
        l->ms = ms;
    }
    w->last_own = s->leaf && clients_own(w, s, r, ms);
    bool deadline = s->leaf && deadline_fired(s, r, ms);
    if (!s->begun) return deadline;
    s->begun = false;
    if (r->result == ATTEMPT_CANCELLED || r->local || w->last_own) { /* nothing learned about the target */
        health_release(s->health, s->probe);
        return deadline;
    }
    if (r->result == ATTEMPT_OK && r->ttfb_us) health_note_ttfb(s->health, (double)r->ttfb_us / 1000.0);
    if (r->result == ATTEMPT_OK && r->output_tokens && r->stream_us)
        health_note_throughput(s->health, now_ms(), (double)r->output_tokens, (double)r->stream_us / 1000.0);
    bool failure = r->result == ATTEMPT_TIMEOUT || r->result == ATTEMPT_CONNECT ||
                   r->result == ATTEMPT_BROKEN || (r->result == ATTEMPT_STATUS && r->status >= 500);
    health_end(s->health, now_ms(), failure, s->probe, r->ttfb_us ? (double)r->ttfb_us / 1000.0 : -1);
    if (r->result == ATTEMPT_STATUS && r->status == 429)
        health_limit(s->health, now_ms() + (uint64_t)(r->retry_after_ms > 0 ? r->retry_after_ms : 1000));
    return deadline;
}

void route_report(route_walk *w, const attempt_report *r)
{
    w->last = *r;
    /* Portkey answers its request_timeout with 408, and its status lists match on that:
     * retried only when retry.on_status_codes has 408, fallen back on as any 408 would be. */
    if (slot_report(w, &w->cur, r) && w->tree->portkey) {
        w->last.result = ATTEMPT_STATUS;
        w->last.status = 408;
    }
}

int route_last_status(const route_walk *w)
{
    return w->last.result == ATTEMPT_STATUS ? w->last.status : 0;
}

/* ---- hedging ------------------------------------------------------------------------------ */

uint32_t route_hedge_delay(route_walk *w)
{
    if (w->hedged || !w->cur.begun || w->cur.tries != 1) return 0;
    for (int i = w->depth - 2; i >= 0; i--) {
        const route_node *f = w->stack[i];
        if (f->mode != ROUTE_FALLBACK || !(f->hedge_ms || f->hedge_p95)) continue;
        if (w->stack[i + 1] == &f->children[f->nchildren - 1]) return 0; /* nothing after it */
        uint32_t ms = f->hedge_ms;
        if (f->hedge_p95 && !health_ttfb_p95(w->cur.health, &ms)) return 0; /* not measured yet */
        w->hedge_at = i;
        return ms ? ms : 1;
    }
    return 0;
}

bool route_hedge_next(route_walk *w, route_target *out)
{
    if (w->hedged || !w->cur.begun || w->attempts >= w->max_attempts) return false;
    int i = w->hedge_at;
    const route_node *f = w->stack[i];
    const route_node *saved[ROUTE_MAX_DEPTH + 2];
    int saved_depth = w->depth;
    memcpy(saved, w->stack, sizeof saved);
    w->other = w->cur;
    w->depth = i + 1;
    for (size_t j = (size_t)(w->stack[i + 1] - f->children) + 1; j < f->nchildren && !w->error; j++) {
        const route_node *leaf = descend_preferring(w, &f->children[j]);
        if (leaf) {
            w->hedged = true;
            w->other.hedged = true;
            emit(w, leaf, out, false, 0);
            w->cur.hedged = true;
            return true;
        }
    }
    memcpy(w->stack, saved, sizeof saved);
    w->depth = saved_depth;
    w->cur = w->other;
    memset(&w->other, 0, sizeof w->other);
    return false;
}

void route_report_other(route_walk *w, const attempt_report *r)
{
    bool own = w->last_own; /* the other's end says nothing about the current attempt */
    slot_report(w, &w->other, r);
    w->last_own = own;
    memset(&w->other, 0, sizeof w->other);
}

void route_resume_other(route_walk *w)
{
    w->cur = w->other;
    memset(&w->other, 0, sizeof w->other);
}

/* ---- the provider's hints ------------------------------------------------------------------ */

/* "1s", "6m0s", "850ms", "1h2m3.5s" (OpenAI's reset durations) → ms; -1 when unreadable. */
static int64_t parse_go_duration(const char *s)
{
    double total = 0;
    bool any = false;
    while (*s && *s != ' ' && *s != '\r') {
        char *end;
        double v = strtod(s, &end);
        if (end == s) return -1;
        s = end;
        if (!strncmp(s, "ms", 2))
            total += v, s += 2;
        else if (*s == 's')
            total += v * 1000, s++;
        else if (*s == 'm')
            total += v * 60000, s++;
        else if (*s == 'h')
            total += v * 3600000, s++;
        else
            return -1;
        any = true;
    }
    if (!any || total != total) return -1;
    return total > 1e12 ? (int64_t)1e12 : (int64_t)(total + 0.5); /* past a year, a year is enough */
}

/* An RFC 3339 UTC time ("2026-11-24T23:12:23Z") → ms from now; -1 when unreadable. */
static int64_t ms_until_rfc3339(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) return -1;
    time_t t = timegm(&tm);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms = ((int64_t)t - now.tv_sec) * 1000 - now.tv_nsec / 1000000;
    return ms < 0 ? 0 : ms;
}

/* Retry-After: delta-seconds or an HTTP date. */
static int64_t parse_retry_after(const char *v)
{
    char *end;
    double secs = strtod(v, &end);
    if (end != v && (!*end || *end == ' ')) {
        if (!(secs >= 0)) return -1;
        return secs > 1e9 ? (int64_t)1e12 : (int64_t)(secs * 1000);
    }
    struct tm tm = {0};
    if (!strptime(v, "%a, %d %b %Y %H:%M:%S", &tm)) return -1;
    time_t t = timegm(&tm);
    int64_t ms = ((int64_t)t - (int64_t)time(NULL)) * 1000;
    return ms < 0 ? 0 : ms;
}

static bool header_is(const char *line, size_t nlen, const char *name)
{
    return strlen(name) == nlen && !strncasecmp(line, name, nlen);
}

/* Which limit a rate-limit header is about: requests, or one of the token kinds. */
enum { LIMIT_REQUESTS, LIMIT_TOKENS, LIMIT_INPUT_TOKENS, LIMIT_OUTPUT_TOKENS, LIMIT__COUNT };

/* What a rate-limit header says of its limit. */
enum { SAYS_REMAINING, SAYS_RESET, SAYS_LIMIT };

/* "requests-remaining", "input-tokens-reset", "tokens-limit" … (Anthropic's suffixes) → kind, and
 * what it says; -1 when the name is none of them. */
static int anthropic_limit(const char *name, size_t len, int *says)
{
    static const char *const kinds[LIMIT__COUNT] = {"requests", "tokens", "input-tokens", "output-tokens"};
    for (int k = 0; k < LIMIT__COUNT; k++) {
        size_t kl = strlen(kinds[k]);
        if (len <= kl || strncasecmp(name, kinds[k], kl) || name[kl] != '-') continue;
        if (header_is(name + kl + 1, len - kl - 1, "remaining")) return *says = SAYS_REMAINING, k;
        if (header_is(name + kl + 1, len - kl - 1, "reset")) return *says = SAYS_RESET, k;
        if (header_is(name + kl + 1, len - kl - 1, "limit")) return *says = SAYS_LIMIT, k;
    }
    return -1;
}

int64_t route_note_headers(route_walk *w, bool other, int status, const char *const *lines, size_t nlines)
{
    target_health *health = other ? w->other.health : w->cur.health;
    int64_t retry_after_ms = -1, retry_after = -1;
    int64_t remaining[LIMIT__COUNT] = {-1, -1, -1, -1}, reset[LIMIT__COUNT] = {-1, -1, -1, -1};
    int64_t limit[LIMIT__COUNT] = {-1, -1, -1, -1};
    for (size_t i = 0; i < nlines; i++) {
        const char *line = lines[i];
        char first = (char)(line[0] | 0x20);
        if (first != 'r' && first != 'x' && first != 'a') continue; /* most headers, at one test */
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        int says, k;
        if (header_is(line, nlen, "retry-after-ms") || header_is(line, nlen, "x-ms-retry-after-ms")) {
            long long ms = strtoll(v, NULL, 10);
            retry_after_ms = ms >= 0 ? (int64_t)ms : -1;
        } else if (header_is(line, nlen, "retry-after")) {
            retry_after = parse_retry_after(v);
        } else if (nlen > 20 && !strncasecmp(line, "anthropic-ratelimit-", 20) &&
                   (k = anthropic_limit(line + 20, nlen - 20, &says)) >= 0) {
            if (says == SAYS_RESET)
                reset[k] = ms_until_rfc3339(v);
            else if (says == SAYS_LIMIT)
                limit[k] = (int64_t)strtoll(v, NULL, 10);
            else
                remaining[k] = (int64_t)strtoll(v, NULL, 10);
        } else if (header_is(line, nlen, "x-ratelimit-remaining-requests")) {
            remaining[LIMIT_REQUESTS] = (int64_t)strtoll(v, NULL, 10);
        } else if (header_is(line, nlen, "x-ratelimit-remaining-tokens")) {
            remaining[LIMIT_TOKENS] = (int64_t)strtoll(v, NULL, 10);
        } else if (header_is(line, nlen, "x-ratelimit-limit-requests")) {
            limit[LIMIT_REQUESTS] = (int64_t)strtoll(v, NULL, 10);
        } else if (header_is(line, nlen, "x-ratelimit-limit-tokens")) {
            limit[LIMIT_TOKENS] = (int64_t)strtoll(v, NULL, 10);
        } else if (header_is(line, nlen, "x-ratelimit-reset-requests")) {
            reset[LIMIT_REQUESTS] = parse_go_duration(v);
        } else if (header_is(line, nlen, "x-ratelimit-reset-tokens")) {
            reset[LIMIT_TOKENS] = parse_go_duration(v);
        }
    }
    /* Nothing left of some limit until its reset: steer away until the latest such reset. */
    int64_t limited = -1;
    for (int k = 0; k < LIMIT__COUNT; k++)
        if (remaining[k] == 0 && reset[k] > limited) limited = reset[k];
    if (limited > 0 && health) health_limit(health, now_ms() + (uint64_t)limited);
    /* What is left (an auto route's headroom): the least share of any limit reported with its
     * size, and the tokens left, until the earliest reset of those reported (at least a second
     * when no reset came: the next reply reports again). */
    double headroom = -1;
    int64_t tokens_left = -1, until = -1;
    for (int k = 0; k < LIMIT__COUNT; k++) {
        if (remaining[k] < 0) continue;
        if (limit[k] > 0) {
            double share = (double)remaining[k] / (double)limit[k];
            if (share > 1) share = 1;
            if (headroom < 0 || share < headroom) headroom = share;
        }
        if (k == LIMIT_TOKENS || k == LIMIT_INPUT_TOKENS)
            if (tokens_left < 0 || remaining[k] < tokens_left) tokens_left = remaining[k];
        if (reset[k] >= 0 && (until < 0 || reset[k] < until)) until = reset[k];
    }
    if (health && (headroom >= 0 || tokens_left >= 0))
        health_note_remaining(health, headroom, tokens_left, now_ms() + (uint64_t)(until > 0 ? until : 1000));
    if (retry_after_ms >= 0) return retry_after_ms;
    if (retry_after >= 0) return retry_after;
    if (status == 429) return limited;
    return -1;
}

/* ---- after the walk ------------------------------------------------------------------------ */

uint32_t route_attempts(const route_walk *w)
{
    return w->attempts;
}

const char *route_tree_name(const route_walk *w)
{
    return w->tree->name;
}

const route_tree *route_walk_tree(const route_walk *w)
{
    return w->tree;
}

const char *route_paths(const route_walk *w)
{
    return w->paths ? w->paths : w->tree->name; /* nothing sent: the route asked for */
}

const route_attempt_log *route_log(const route_walk *w)
{
    return w->log_head;
}

const char *route_unavailable(const route_walk *w, int *status, uint32_t *retry_in_ms)
{
    *status = w->unavailable_status;
    *retry_in_ms = (uint32_t)w->unavailable_ms;
    return w->unavailable;
}

const char *route_error(const route_walk *w)
{
    return w->error;
}

const char *route_note(const route_walk *w)
{
    return w->note;
}
