/* auto.c — an "auto" route's decision: which of its candidates serves a request, and in what
 * order the others follow (docs/routing.md, "Auto routes").
 *
 * Two steps, both on the worker, no I/O, no allocation:
 *
 *   hard rules   a candidate is not used when the prompt is larger than its context window,
 *                the request needs what its catalog entry says it lacks (tools, images, a JSON
 *                schema, reasoning), its quality is below the node's floor, its estimated cost
 *                passes the node's max_cost or what is left of the gateway key's budget, its
 *                breaker admits nothing, or its provider said it has nothing left (or fewer
 *                tokens than the prompt) until a reset;
 *   objective    the others are scored: cost (the cheapest estimate scores 1, another the
 *                ratio), latency (time to first byte plus the expected output at the target's
 *                measured rate — the best measured one while its own is not; an unmeasured
 *                time to first byte counts 0, so the target is tried, as the latency balance
 *                does), quality (the operator's rating), or balanced (the mean of the
 *                three, each scaled to the best candidate); × (1 − failures / (requests + 4))
 *                over the breaker's window; × a headroom factor (½ + 5 × the provider's
 *                remaining share, at most 1: no effect above 10 % left).
 *
 * The estimate of the request's cost uses the prompt's tokens as the body's bytes / 4 — an upper
 * bound for text in most languages (JSON keys and structure count as text), no parse — and as
 * output the request's max_tokens, else the node's output_tokens (default 256): a budget check
 * that errs on the side of the budget. A context window is compared with bytes / 4 first, and
 * only when that passes it is the text counted (the walk's own context check does the same).
 *
 * The result is an order of the node's children that the walk follows as a fallback node
 * follows its own (walk.c, ROUTE_AUTO): the chosen candidate's failure falls back along the
 * rest in score order, with the usual retries, breakers and budgets. Rejected: a second
 * executor for auto routes (two sets of retry and breaker semantics), and scoring inside the
 * walk (PLAN must know the choice to ask an external router about the same candidates, and to
 * say why before anything is sent).
 *
 * route_auto_score is the pure part (tests give it fixed statistics); route_auto_rank reads the
 * catalog entries and the shared health (health.c: one short lock per candidate). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "routing/health.h"
#include "routing/routing.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define ERROR_PRIOR 4.0 /* requests added to the window's count: one failure does not sink a target */

const char *route_auto_verdict_name(route_auto_verdict v)
{
    switch (v) {
    case AUTO_USABLE: return "usable";
    case AUTO_CONTEXT: return "context window";
    case AUTO_TOOLS: return "no tools";
    case AUTO_VISION: return "no images";
    case AUTO_JSON_SCHEMA: return "no json_schema";
    case AUTO_REASONING: return "no reasoning";
    case AUTO_QUALITY: return "below quality_floor";
    case AUTO_MAX_COST: return "over max_cost";
    case AUTO_BUDGET: return "over the key's budget";
    case AUTO_BREAKER: return "circuit open";
    case AUTO_RATE_LIMITED: return "rate-limited";
    }
    return "?";
}

static const char *objective_name(route_objective o)
{
    static const char *const names[] = {"cost", "latency", "quality", "balanced"};
    return (unsigned)o < 4 ? names[o] : "?";
}

/* The hard rules, in order; the first that fails is the verdict. */
static route_auto_verdict judge(const route_node *node, const route_auto_request *req,
                                const route_auto_candidate *c, uint64_t prompt)
{
    uint64_t context_tokens = req->counted_tokens ? req->counted_tokens : req->prompt_tokens;
    if (c->known && c->context && context_tokens > c->context) return AUTO_CONTEXT;
    if (c->known) {
        static const struct {
            uint32_t cap;
            route_auto_verdict verdict;
        } caps[] = {{CAP_TOOLS, AUTO_TOOLS},
                    {CAP_VISION, AUTO_VISION},
                    {CAP_JSON_SCHEMA, AUTO_JSON_SCHEMA},
                    {CAP_REASONING, AUTO_REASONING}};
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
            if ((req->needs & caps[k].cap) && !(c->capabilities & caps[k].cap)) return caps[k].verdict;
    }
    if (node->quality_floor > 0 && (c->quality < 0 ? 0 : c->quality) < node->quality_floor)
        return AUTO_QUALITY;
    if (node->max_cost_usd >= 0 && c->cost_usd >= 0 && c->cost_usd > node->max_cost_usd) return AUTO_MAX_COST;
    if (req->budget_left_usd >= 0 && c->cost_usd >= 0 && c->cost_usd > req->budget_left_usd)
        return AUTO_BUDGET;
    if (!c->admits) return AUTO_BREAKER;
    if (c->limited || (c->tokens_left >= 0 && (uint64_t)c->tokens_left < prompt)) return AUTO_RATE_LIMITED;
    return AUTO_USABLE;
}

/* Kept out only by the moment (a breaker, the provider's limit): the walk's last resort. */
static bool last_resort(route_auto_verdict v)
{
    return v == AUTO_BREAKER || v == AUTO_RATE_LIMITED;
}

/* Whether candidate a goes before b. */
static bool before(const route_node *node, const route_auto_candidate *c, uint8_t a, uint8_t b)
{
    const route_auto_candidate *x = &c[a], *y = &c[b];
    if (fabs(x->score - y->score) > 1e-12) return x->score > y->score;
    if (node->objective == OBJECTIVE_COST && fabs(x->quality - y->quality) > 1e-12)
        return x->quality > y->quality;
    if ((x->cost_usd >= 0) != (y->cost_usd >= 0)) return x->cost_usd >= 0;
    if (fabs(x->cost_usd - y->cost_usd) > 1e-15) return x->cost_usd < y->cost_usd;
    return a < b;
}

size_t route_auto_score(const route_node *node, const route_auto_request *req, route_auto_candidate *c,
                        size_t n, uint8_t *order)
{
    if (n > ROUTE_MAX_CHILDREN) n = ROUTE_MAX_CHILDREN;
    uint64_t prompt = req->counted_tokens ? req->counted_tokens : req->prompt_tokens;
    uint64_t output = req->output_tokens;
    double cost_min = -1, latency_min = -1, quality_max = 0, rate_max = 0;
    /* a target whose output rate is not measured yet is given the best measured one (as an
     * unmeasured time to first byte counts 0): measuring a rate must not make a target look
     * slower than one never measured */
    for (size_t i = 0; i < n; i++)
        if (c[i].tokens_per_s > rate_max) rate_max = c[i].tokens_per_s;
    for (size_t i = 0; i < n; i++) {
        route_auto_candidate *x = &c[i];
        x->score = 0;
        x->cost_usd =
            x->priced ? ((double)prompt * x->input_price + (double)output * x->output_price) / 1e6 : -1;
        double rate = x->tokens_per_s > 0 ? x->tokens_per_s : rate_max;
        x->latency_ms = x->ttfb_ms > 0 ? x->ttfb_ms + (rate > 0 ? (double)output * 1000.0 / rate : 0) : -1;
        x->verdict = judge(node, req, x, prompt);
        if (x->verdict != AUTO_USABLE && !last_resort(x->verdict)) continue;
        /* the best of each measure among those that may be used (last resorts included: they
         * are ranked among themselves on the same scale) */
        if (x->cost_usd >= 0 && (cost_min < 0 || x->cost_usd < cost_min)) cost_min = x->cost_usd;
        double latency = x->latency_ms < 0 ? 0 : x->latency_ms; /* unmeasured: tried */
        if (latency_min < 0 || latency < latency_min) latency_min = latency;
        if (x->quality > quality_max) quality_max = x->quality;
    }
    size_t norder = 0;
    for (int pass = 0; pass < 2; pass++) { /* the usable ones, then the last resorts */
        size_t first = norder;
        for (size_t i = 0; i < n; i++) {
            route_auto_candidate *x = &c[i];
            if (pass == 0 ? x->verdict != AUTO_USABLE : !last_resort(x->verdict)) continue;
            double cost_score =
                x->cost_usd >= 0 && cost_min >= 0 ? (cost_min + 1e-12) / (x->cost_usd + 1e-12) : 0;
            double latency = x->latency_ms < 0 ? 0 : x->latency_ms;
            double latency_score = (latency_min + 1) / (latency + 1);
            double quality = x->quality < 0 ? 0 : x->quality;
            double base;
            switch (node->objective) {
            case OBJECTIVE_COST: base = cost_score; break;
            case OBJECTIVE_LATENCY: base = latency_score; break;
            case OBJECTIVE_QUALITY: base = quality; break;
            default:
                base = ((quality_max > 0 ? quality / quality_max : 1) + cost_score + latency_score) / 3;
                break;
            }
            double reliability = 1.0 - (double)x->failures / ((double)x->requests + ERROR_PRIOR);
            if (reliability < 0) reliability = 0;
            double headroom = x->headroom < 0 ? 1 : fmin(1.0, 0.5 + 5.0 * x->headroom);
            x->score = base * reliability * headroom;
            /* insertion into this pass's part of the order (64 candidates at most) */
            size_t k = norder++;
            while (k > first && before(node, c, (uint8_t)i, order[k - 1])) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = (uint8_t)i;
        }
    }
    return norder;
}

size_t route_auto_rank(const route_context *ctx, const route_tree *tree, route_auto_request *req,
                       route_auto_candidate *c, uint8_t *order)
{
    const route_node *node = tree->auto_node;
    if (!node) return 0;
    uint64_t now_ms = time_now_ns() / 1000000;
    size_t n = node->nchildren < ROUTE_MAX_CHILDREN ? node->nchildren : ROUTE_MAX_CHILDREN;
    bool count = false;
    for (size_t i = 0; i < n; i++) {
        const route_node *leaf = &node->children[i];
        route_auto_candidate *x = &c[i];
        memset(x, 0, sizeof *x);
        x->label = leaf->display ? leaf->display : leaf->label;
        x->quality = leaf->quality;
        const catalog_entry *e = leaf->route ? leaf->route->catalog : NULL;
        if (e) {
            x->known = true;
            x->context = e->context;
            x->capabilities = e->capabilities;
            x->priced = e->priced;
            x->input_price = e->input;
            x->output_price = e->output;
            if (e->context && req->prompt_tokens > e->context) count = true;
        }
        x->admits = true;
        x->headroom = -1;
        x->tokens_left = -1;
        if (leaf->health) { /* a client's own host or key has none shared: nothing is known of it */
            health_view v = health_look(leaf->health, now_ms);
            x->admits = v.admits;
            x->limited = v.limited;
            x->ttfb_ms = v.ewma_ms;
            x->tokens_per_s = v.tokens_per_s;
            x->requests = v.window_requests;
            x->failures = v.window_failures;
            x->headroom = v.headroom;
            x->tokens_left = v.tokens_left;
        }
    }
    /* bytes / 4 passes some context window: the text is counted, once */
    if (count && !req->counted_tokens && ctx->estimate_tokens) {
        req->counted_tokens = ctx->estimate_tokens(ctx->estimate_ud);
        if (!req->counted_tokens) req->counted_tokens = 1;
    }
    return route_auto_score(node, req, c, n, order);
}

/* ---- the decision as text ---------------------------------------------------------------------- */

/* One candidate's part, "gpt-4o-mini:score=0.9310,cost=0.000275,ttfb=120ms,err=0/12". */
static void candidate_text(char *out, size_t outlen, const route_auto_candidate *x)
{
    int n = snprintf(out, outlen, "%.64s", x->label);
    if (n < 0 || (size_t)n >= outlen) return;
    size_t len = (size_t)n;
#define ADD(...)                                                                                             \
    do {                                                                                                     \
        int k = snprintf(out + len, outlen - len, __VA_ARGS__);                                              \
        if (k > 0 && len + (size_t)k < outlen) len += (size_t)k;                                             \
    } while (0)
    if (x->verdict == AUTO_USABLE)
        ADD(":score=%.4f", x->score);
    else
        ADD(":excluded=%s", route_auto_verdict_name(x->verdict));
    if (x->cost_usd >= 0) ADD(",cost=%.6f", x->cost_usd);
    if (x->ttfb_ms > 0) ADD(",ttfb=%.*fms", x->ttfb_ms < 10 ? 1 : 0, x->ttfb_ms);
    if (x->tokens_per_s > 0) ADD(",tps=%.0f", x->tokens_per_s);
    if (x->requests) ADD(",err=%u/%u", x->failures, x->requests);
    if (x->headroom >= 0) ADD(",headroom=%.2f", x->headroom);
    if (x->verdict == AUTO_CONTEXT) ADD(",context=%u", x->context);
#undef ADD
}

size_t route_auto_describe(const route_node *node, const route_auto_request *req,
                           const route_auto_candidate *c, size_t n, const uint8_t *order, size_t norder,
                           char *out, size_t outlen)
{
    if (!outlen) return 0;
    out[0] = '\0';
    if (outlen < 64) return 0;
    fixed_text w = {.out = out, .cap = outlen - 1 - 24}; /* room kept for " …(+N more)" */
    uint64_t prompt = req->counted_tokens ? req->counted_tokens : req->prompt_tokens;
    fixed_text_put(&w, "auto objective=%s", objective_name(node->objective));
    if (node->quality_floor > 0) fixed_text_put(&w, " quality_floor=%.2f", node->quality_floor);
    if (node->max_cost_usd >= 0) fixed_text_put(&w, " max_cost=%.6f", node->max_cost_usd);
    if (req->budget_left_usd >= 0) fixed_text_put(&w, " budget_left=%.6f", req->budget_left_usd);
    fixed_text_put(&w, " prompt_tokens=%llu%s output_tokens=%llu", (unsigned long long)prompt,
                   req->counted_tokens ? "(counted)" : "(bytes/4)", (unsigned long long)req->output_tokens);
    fixed_text_put(&w, " choice=%.64s candidates=", norder ? c[order[0]].label : "none");
    /* in order (the chosen first), then those not in the order */
    bool listed[ROUTE_MAX_CHILDREN] = {false};
    size_t shown = 0, total = n < ROUTE_MAX_CHILDREN ? n : ROUTE_MAX_CHILDREN;
    char part[256];
    for (size_t k = 0; k < norder + total && !w.full; k++) {
        size_t i;
        if (k < norder) {
            i = order[k];
        } else {
            i = k - norder;
            if (listed[i]) continue;
        }
        listed[i] = true;
        candidate_text(part, sizeof part, &c[i]);
        fixed_text_put(&w, "%s%s", shown ? "; " : "", part);
        if (w.full) break; /* a candidate that does not fit is left out whole */
        shown++;
    }
    if (shown < total) {
        int k = snprintf(out + w.len, outlen - w.len, " …(+%zu more)", total - shown);
        if (k > 0 && w.len + (size_t)k < outlen) w.len += (size_t)k;
    }
    return w.len;
}
