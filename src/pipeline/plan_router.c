/* plan_router.c — PLAN's part for the learned router and for conditions on the request's shape.
 *
 * Two things plan.c asks for here:
 *  - the tree of a `router-<name>-<threshold>` model name (RouteLLM's naming): a router node
 *    over the config's `router.strong` and `router.weak` targets, built for the request
 *    (routing/tree.c: route_tree_for_router), so the chosen target goes through the usual walk —
 *    retries, the other target as fallback, breakers;
 *  - the request's shape, read from its canonical form (any ingress API), when the tree has a
 *    router node (the model's score decides which child the walk takes) or a condition that
 *    reads request.* (tools, tool_result, tokens, turns, system_digest, system_bytes, step).
 *
 * Every decision is visible: `x-aigw-route-reason` on the response (kept on the exchange for
 * every response head, as the rate-limit lines are) and `route_reason` in the access log:
 * the router's name, its score, the threshold (and the share it was calibrated from), the
 * choice.
 *
 * Bounds: the text the features read is the last user turn's, at most SHAPE_TEXT_MAX bytes of
 * it copied when it comes in parts (router_features_extract then reads at most
 * ROUTER_TEXT_MAX of those); the system digest reads at most SHAPE_SYSTEM_MAX bytes; the step
 * header at most SHAPE_STEP_MAX. The canonical form itself is the request's (built once, kept).
 *
 * The other producers of a decision before route_walk_new: an auto route's ranking
 * (plan_auto.c) and an external router's answer (plan_external.c, for a router node with
 * `external: true` too); plan.c keeps the final reason once all have spoken. Reasoning
 * techniques are EXECUTE stages and never see this file. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "pipeline/stages.h"
#include "router/router.h"
#include "util/timeutil.h"

#define SHAPE_TEXT_MAX (16 * 1024)    /* bytes of a multi-part user turn joined for the features */
#define SHAPE_SYSTEM_MAX (256 * 1024) /* bytes of the system prompt the digest reads */
#define SHAPE_STEP_MAX 64             /* bytes of the x-aigw-step header kept */

const route_tree *plan__router_tree(exchange *x)
{
    const aigw_config *cfg = x->config;
    const router_settings *r = &cfg->router;
    if (!r->configured || !r->model || x->model_len < 9 || memcmp(x->model, "router-", 7)) return NULL;
    const char *name = x->model + 7, *end = x->model + x->model_len;
    const char *dash = memrchr(name, '-', (size_t)(end - name));
    if (!dash || dash == name) return NULL;
    size_t nlen = (size_t)(dash - name);
    bool known =
        strlen(router_model_name(r->model)) == nlen && !memcmp(name, router_model_name(r->model), nlen);
    for (size_t i = 0; i < r->naliases && !known; i++)
        known = strlen(r->aliases[i]) == nlen && !memcmp(name, r->aliases[i], nlen);
    double threshold, percent;
    if (!known || !router_parse_threshold(dash + 1, (size_t)(end - dash - 1), &threshold, &percent))
        return NULL;
    char err[256];
    char tree_name[300];
    snprintf(tree_name, sizeof tree_name, "%.*s", (int)x->model_len, x->model);
    route_tree *t =
        route_tree_for_router(x->arena, cfg, cfg->health, tree_name, threshold, percent, err, sizeof err);
    /* the threshold is the client's to choose: the metrics name the route without it */
    if (t) x->decision.route = arena_strndup(x->arena, x->model, (size_t)(dash - x->model));
    return t; /* NULL: the load checked the same tree, so only when memory is short of a name */
}

/* The text of a message's content: a string as it is, or its text parts joined (bounded) in the
 * arena. */
const char *plan__content_text(exchange *x, const json_t *content, size_t max, size_t *len)
{
    if (json_is_string(content)) {
        *len = json_string_length(content);
        return json_string_value(content);
    }
    *len = 0;
    if (!json_is_array(content)) return "";
    size_t total = 0, i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) total += json_string_length(t) + 1;
    }
    if (total > max) total = max;
    char *out = arena_alloc(x->arena, total + 1);
    json_array_foreach(content, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (!json_is_string(t) || *len >= total) continue;
        size_t n = json_string_length(t);
        if (n > total - *len) n = total - *len;
        memcpy(out + *len, json_string_value(t), n);
        *len += n;
        if (*len < total) out[(*len)++] = '\n';
    }
    out[*len] = '\0';
    return out;
}

/* The shape as JSON for conditions (request.*): built only when the tree reads it. */
static json_t *shape_json(exchange *x, const route_context *ctx, const router_input *in,
                          const json_t *messages)
{
    json_t *s = json_object();
    json_object_set_new(s, "tools", json_boolean(in->tools));
    json_object_set_new(s, "tool_result", json_boolean(in->tool_result_last));
    json_object_set_new(s, "turns", json_integer(in->turns));
    json_object_set_new(s, "tokens", json_integer((json_int_t)ctx->estimate_tokens(ctx->estimate_ud)));
    json_object_set_new(s, "system_bytes", json_integer((json_int_t)in->system_bytes));
    /* the system prompt's digest: BLAKE2b-64 of its text(s) in order, as 16 hex digits */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 8);
    size_t i, fed = 0;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || (strcmp(role, "system") && strcmp(role, "developer"))) continue;
        size_t len;
        const char *t = plan__content_text(x, json_object_get(m, "content"), SHAPE_SYSTEM_MAX, &len);
        if (len > SHAPE_SYSTEM_MAX - fed) len = SHAPE_SYSTEM_MAX - fed;
        crypto_generichash_update(&st, (const unsigned char *)t, len);
        fed += len;
    }
    unsigned char digest[8];
    char hex[17];
    crypto_generichash_final(&st, digest, sizeof digest);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    json_object_set_new(s, "system_digest", fed ? json_string(hex) : json_null());
    const http_header *step = exchange_header(x, "x-aigw-step");
    if (step && step->value_len) {
        size_t n = step->value_len < SHAPE_STEP_MAX ? step->value_len : SHAPE_STEP_MAX;
        json_t *v = json_stringn(step->value, n); /* NULL when not UTF-8: the condition sees none */
        if (v) json_object_set_new(s, "step", v);
    }
    return s;
}

bool plan__shape(exchange *x, const route_tree *tree, route_context *ctx)
{
    ctx->router_choice = -1;
    if (!tree->router && !tree->needs_shape) return true;
    const char *why = NULL;
    const json_t *canonical = exchange_canonical(x, &why);
    const json_t *messages = json_object_get(canonical, "messages");
    router_input in = {.text = "", .len = 0};
    const json_t *tools = json_object_get(canonical, "tools");
    in.tools = json_is_array(tools) && json_array_size(tools) > 0;
    size_t i;
    const json_t *m, *last_user = NULL, *last = NULL;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        last = m;
        if (!role) continue;
        if (!strcmp(role, "user")) {
            in.turns++;
            last_user = m;
        } else if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            size_t len;
            const json_t *c = json_object_get(m, "content");
            if (json_is_string(c))
                len = json_string_length(c);
            else
                plan__content_text(x, c, SHAPE_SYSTEM_MAX, &len);
            in.system_bytes += len;
        }
    }
    const char *last_role = last ? json_string_value(json_object_get(last, "role")) : NULL;
    in.tool_result_last = last_role && !strcmp(last_role, "tool");
    if (last_user)
        in.text = plan__content_text(x, json_object_get(last_user, "content"), SHAPE_TEXT_MAX, &in.len);
    if (tree->needs_shape && canonical) {
        x->shape = shape_json(x, ctx, &in, messages);
        ctx->shape = x->shape;
    }
    if (!tree->router) return true;
    const router_model *model = x->config->router.model;
    if (!canonical || !model) {
        char msg[300];
        snprintf(msg, sizeof msg, "the router cannot score this request: %s",
                 !model ? "no router model is loaded (a `router:` section loads one)"
                 : why  ? why
                        : "no messages");
        exchange_refuse(x, tree->name, 400, "invalid_request_error", "messages", msg);
        return false;
    }
    const route_node *node = tree->router;
    uint64_t start = time_now_ns();
    double score = router_model_decide(model, &in);
    uint64_t took = time_now_ns() - start;
    double threshold = node->router_threshold >= 0
                           ? node->router_threshold
                           : router_model_threshold_for_percent(model, node->router_percent);
    ctx->router_choice = score >= threshold ? 0 : 1;
    char reason[300], pct[48] = "";
    if (node->router_threshold < 0) snprintf(pct, sizeof pct, " (%g%% strong)", node->router_percent);
    const route_node *chosen = &node->children[ctx->router_choice];
    int n =
        snprintf(reason, sizeof reason, "router=%s score=%.4f threshold=%.4f%s choice=%s%s%s decide_us=%.1f",
                 router_model_name(model), score, threshold, pct, ctx->router_choice ? "weak" : "strong",
                 chosen->model ? " model=" : "", chosen->model ? chosen->model : "", (double)took / 1000.0);
    if (n < 0 || (size_t)n >= sizeof reason) n = (int)strlen(reason);
    x->route_reason = arena_strndup(x->arena, reason, (size_t)n); /* kept by plan__finish */
    return true;
}

void plan__keep_reason(exchange *x, const char *text, size_t len)
{
    x->route_reason = arena_strndup(x->arena, text, len);
    /* after what ADMIT kept (the rate-limit lines): keep_head replaces, so both go together */
    size_t kept = x->kept_head ? x->kept_head_len : 0, cap = kept + len + 40;
    char *lines = arena_alloc(x->arena, cap);
    if (kept) memcpy(lines, x->kept_head, kept);
    int ln = snprintf(lines + kept, cap - kept, "x-aigw-route-reason: %.*s\r\n", (int)len, text);
    exchange_keep_head(x, lines, kept + (size_t)ln);
}
