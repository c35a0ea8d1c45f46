/* key_route.c — a gateway key's own default route (store_key.default_route), in the DECODE
 * phase: after the body's model is read, before the key's model globs are checked.
 *
 * A key whose default_route is set has its requests served there when their model names nothing
 * the config serves (no route of `routes:`, no served model, no `type/model` reading), or is
 * "default", or is absent — like the config's `default_route:`, but per key and taking
 * precedence over it. The request is then rewritten to ask for the default route by name: the
 * body's `model` is replaced (or, absent, added) and x->model becomes that name. Every stage
 * after sees a request for the default route, exactly as if the client had asked for it — the
 * key's model globs and its team's (key-models, next row) are checked against that name, a limit
 * per model and spend by model count it, the access log and metrics show it, and PLAN finds its
 * tree by name. The name the client sent is not checked against the globs: it names nothing the
 * key could reach another way.
 *
 * Not applied: with a request config (x-aigw-config / x-portkey-config), which names its own
 * targets (an absent model is then the usual 400); to a `@provider/model` name, which addresses
 * a provider explicitly (an unknown one stays a 404). A default route that names nothing in the
 * running config (the store is shared by instances and outlives config changes, so it is not
 * checked against a config when written) is a 404 model_not_found naming it.
 *
 * Rejected: resolving the key's default route in PLAN (choose_tree) without a rewrite — the
 * globs, a model's rate limits and spend would then see the name the client sent, which may be
 * any string, and the body would reach a provider with a model name it does not serve. */
#include <stdio.h>
#include <string.h>

#include "pipeline/stages.h"
#include "store/store.h"
#include "util/alloc.h"

/* Whether the config serves name by itself: a route, a served model, a `type/model` reading or
 * a `@provider/model` name. */
static bool config_names(const aigw_config *cfg, const char *name, size_t len)
{
    if (config_find_route(cfg, name, len) || config_find_model(cfg, name, len)) return true;
    if (len && name[0] == '@') return true;
    const provider_config *found[1];
    size_t offset;
    return config_find_typed(cfg, name, len, found, 1, &offset) > 0;
}

/* The body with its model replaced by name (or added as the first member when absent), and the
 * model's span and x->model moved to it. The body may pass its limit by the name's length (at
 * most STORE_NAME_MAX bytes, escaped): the name is the operator's, not the client's. */
static void rewrite_body(exchange *x, const char *name, size_t len)
{
    buf *body = &x->http->body;
    const char *old = body->data ? body->data : "";
    size_t start, end;
    const char *pre = "", *post = "";
    if (x->model) {
        start = x->body_model_start;
        end = x->body_model_end;
    } else { /* after the object's '{' (decode checked it is one) */
        start = strcspn(old, "{") + 1;
        if (start > body->len) start = body->len;
        end = start;
        size_t next = start;
        while (next < body->len &&
               (old[next] == ' ' || old[next] == '\t' || old[next] == '\r' || old[next] == '\n'))
            next++;
        pre = "\"model\":";
        post = next < body->len && old[next] == '}' ? "" : ",";
    }
    buf quoted;
    buf_init(&quoted, len * 6 + 2);
    buf_append_json_string(&quoted, name, len);
    size_t new_len = start + strlen(pre) + quoted.len + strlen(post) + (body->len - end);
    buf out;
    buf_init(&out, new_len > body->max ? new_len : body->max);
    buf_append(&out, old, start);
    buf_append_str(&out, pre);
    x->body_model_start = out.len;
    buf_append(&out, quoted.data, quoted.len);
    x->body_model_end = out.len;
    buf_append_str(&out, post);
    buf_append(&out, old + end, body->len - end);
    buf_free(&quoted);
    buf_free(body);
    *body = out;
    x->model = arena_strndup(x->arena, name, len);
    x->model_len = len;
}

static stage_result key_route_on_request(exchange *x, void *state)
{
    if (x->prompt_ref && !x->model) return STAGE_DECLINED; /* the template names its model */
    const store_key *k = x->key;
    if (!k || !k->default_route) return STAGE_DECLINED;
    const aigw_config *cfg = x->config;
    if (exchange_header(x, "x-aigw-config") || exchange_header(x, "x-portkey-config")) {
        if (x->model) return STAGE_DECLINED;
        exchange_error(x, 400, "invalid_request_error", "missing_required_parameter", "model",
                       "you must provide a model parameter (a request config was sent, so this gateway "
                       "key's default route does not apply)");
        return STAGE_DONE;
    }
    bool asks_default = x->model && x->model_len == 7 && !memcmp(x->model, "default", 7);
    if (x->model && !asks_default && config_names(cfg, x->model, x->model_len)) return STAGE_DECLINED;
    const char *name = k->default_route;
    size_t len = strlen(name);
    if (!config_find_route(cfg, name, len) && !config_find_model(cfg, name, len)) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "This gateway key's default route `%.256s` is neither a route nor a model of this gateway",
                 name);
        exchange_refuse(x, name, 404, "model_not_found", "model", msg);
        return STAGE_DONE;
    }
    rewrite_body(x, name, len);
    return STAGE_NEXT;
}

const stage stage_key_route = {
    .name = "key-route",
    .phase = PHASE_DECODE,
    .on_request = key_route_on_request,
};
