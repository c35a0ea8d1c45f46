/* plan.c — the PLAN phase: which route tree serves the request, and a walk through it.
 *
 * The tree: a config in the x-aigw-config / x-portkey-config header (JSON, or a stored route's
 * name), else the route named like the model, else the model's own one-target route, else a
 * `type/model` name's providers (built for the request), else a `router-<name>-<threshold>` name's
 * router tree (plan_router.c, which also reads the request's shape and makes the router's
 * decision before the walk starts), else the default route; none of them: 404
 * model_not_found. Header configs are built once per worker and found again by their bytes (routing's cache).
 *
 * Before the walk: the learned router's decision and the request's shape (plan_router.c), an auto
 * route's ranking (plan_auto.c), and, when the tree asks, an external router's (plan_external.c:
 * the request waits for it here, at most its timeout, then plan__finish goes on). The decision's
 * text is kept for every response head (x-aigw-route-reason) and the record, and its facts —
 * the route, each strategy's target, an auto route's refusal, the external router's outcome —
 * go to the record as x->decision for the metrics (metrics_stage.c bounds the labels). The walk
 * (routing/walk.c) lives in the arena; EXECUTE follows it. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "pipeline/stages.h"
#include "server/worker.h"
#include "store/store.h"

#define HINT_NAMES 5      /* served names an unknown model's 404 shows */
#define HINT_NAME_MAX 60  /* bytes of each shown */
#define HINT_LIST_MAX 300 /* bytes of the whole list */

/* ". Served here: a, b, c, … (GET /v1/models lists them all)" into out (NUL-terminated,
 * truncated to outlen): the first few public names, so a typo is seen at once; bounded, since
 * a config can serve thousands. */
static void served_names_hint(const aigw_config *cfg, char *out, size_t outlen)
{
    char list[HINT_LIST_MAX + 8];
    size_t len = 0, shown = 0, total = 0;
    list[0] = '\0';
    for (size_t i = 0; i < cfg->ntrees + cfg->nroutes; i++) {
        const char *name = served_model_name(cfg, i, NULL);
        if (!name) continue;
        total++;
        size_t nlen = strlen(name);
        int w = nlen > HINT_NAME_MAX ? HINT_NAME_MAX : (int)nlen;
        if (shown == HINT_NAMES || len + (size_t)w + 8 > HINT_LIST_MAX) continue;
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%.*s%s", shown ? ", " : "", w, name,
                                nlen > HINT_NAME_MAX ? "…" : "");
        shown++;
    }
    if (total == 0)
        snprintf(out, outlen, ". This gateway serves no models yet (see GET /v1/models)");
    else
        snprintf(out, outlen, ". Served here: %s%s (GET /v1/models lists them all)", list,
                 shown < total ? ", …" : "");
}

static const route_tree *choose_tree(exchange *x)
{
    const aigw_config *cfg = x->config;
    const http_header *h = exchange_header(x, "x-aigw-config");
    bool portkey = false;
    if (!h) {
        h = exchange_header(x, "x-portkey-config");
        portkey = h != NULL;
    }
    const char *header = portkey ? "x-portkey-config" : "x-aigw-config";
    char msg[700];
    if (h) {
        size_t i = 0;
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == '\t'))
            i++;
        if (i == h->value_len || h->value[i] != '{') {
            const route_tree *t = config_find_route(cfg, h->value, h->value_len);
            if (t) return t;
            /* the header's text is not echoed: it may be a key sent in the wrong header */
            snprintf(msg, sizeof msg, "%s names no route of this gateway (and is not a JSON object)", header);
            exchange_refuse(x, header, 400, "invalid_config", header, msg);
            return NULL;
        }
        char err[512] = "";
        const route_tree *t =
            route_cache_get(pipeline_route_cache(x->pw), cfg, h->value + i, h->value_len - i, header, portkey,
                            &x->cache_entry, err, sizeof err);
        if (!t && !err[0]) { /* not kept (large, or every entry in use): built for this request */
            json_error_t jerr;
            x->config_json = json_loadb(h->value, h->value_len, 0, &jerr);
            if (!x->config_json)
                route_json_error(&jerr, err, sizeof err);
            else
                t = route_tree_build(x->arena, cfg, cfg->health, x->config_json, header, portkey, false, true,
                                     err, sizeof err);
        }
        if (!t) {
            snprintf(msg, sizeof msg, "invalid %s: %s", header, err);
            exchange_refuse(x, header, 400, "invalid_config", header, msg);
        }
        return t;
    }
    const route_tree *t = config_find_route(cfg, x->model, x->model_len);
    const model_route *r = t ? NULL : config_find_model(cfg, x->model, x->model_len);
    x->model_served = t || r;
    if (t) return t;
    if (r) return r->tree;
    t = route_tree_for_typed_model(x->arena, cfg, cfg->health, x->model, x->model_len);
    if (t) return t;
    t = plan__router_tree(x); /* router-<name>-<threshold> (plan_router.c) */
    if (t) return t;
    if (cfg->default_route) return cfg->default_route;
    int n = snprintf(msg, sizeof msg, "The model `%.200s` does not exist or is not served by this gateway",
                     x->model);
    served_names_hint(cfg, msg + n, sizeof msg - (size_t)n);
    exchange_refuse(x, x->model, 404, "model_not_found", "model", msg);
    return NULL;
}

/* The prompt's tokens, counted once per request (a parse of the body: about 1.5 ms for 84 KB)
 * whoever asks first — an auto route's ranking or the walk's context check. */
static size_t estimate_prompt_tokens(void *ud)
{
    plan_state *ps = ud;
    if (!ps->counted) {
        const exchange *x = ps->x;
        codec_ctx c = {.body = x->http->body.data ? x->http->body.data : "", .body_len = x->http->body.len};
        ps->prompt_tokens = provider_estimate_tokens(&c);
        ps->counted = true;
    }
    return ps->prompt_tokens;
}

/* What a gateway key says about who asks — its metadata object, then its team, user, alias
 * and id — laid over the client's metadata, so a route's conditions can read it and a client
 * cannot claim another team's route by sending metadata.team. Built only for a tree whose
 * conditions read metadata. */
static void key_metadata(exchange *x)
{
    const store_key *k = x->key;
    if (!k) return;
    json_t *from_key = k->metadata ? json_loads(k->metadata, 0, NULL) : NULL;
    if (!json_is_object(from_key)) {
        json_decref(from_key);
        from_key = json_object();
    }
    const char *fields[][2] = {
        {"team", k->team}, {"user", k->user}, {"key_alias", k->alias}, {"key_id", k->id}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i][1]) json_object_set_new(from_key, fields[i][0], json_string(fields[i][1]));
    if (!x->metadata) x->metadata = json_object();
    json_object_update(x->metadata, from_key);
    json_decref(from_key);
}

static stage_result plan_on_request(exchange *x, void *state)
{
    plan_state *ps = state;
    const route_tree *tree = choose_tree(x);
    if (!tree) return STAGE_DONE;
    if (!x->decision.route) x->decision.route = tree->name; /* a router-… name's is set already */
    x->decision.client_config = tree->client;
    const http_header *m = exchange_header(x, "x-aigw-metadata");
    if (!m) m = exchange_header(x, "x-portkey-metadata");
    if (m) {
        x->metadata = json_loadb(m->value, m->value_len, 0, NULL);
        if (!json_is_object(x->metadata)) {
            exchange_refuse(x, tree->name, 400, "invalid_metadata", "x-aigw-metadata",
                            "the metadata header must be a JSON object");
            return STAGE_DONE;
        }
    }
    if (tree->needs_metadata) key_metadata(x);
    const buf *body = &x->http->body;
    if (tree->needs_params) x->params = json_loadb(body->data, body->len, JSON_ALLOW_NUL, NULL);
    ps->tree = tree;
    ps->x = x;
    ps->ctx = (route_context){
        .arena = x->arena,
        .state = x->config->health,
        .config = x->config,
        .model = x->model,
        .metadata = x->metadata,
        .params = x->params,
        .path = x->http->path,
        .rng = &x->http->worker->rng,
        .prompt_bytes = body->len,
        .estimate_tokens = estimate_prompt_tokens,
        .estimate_ud = ps,
    };
    ps->external_choice = -1;
    if (!plan__shape(x, tree, &ps->ctx)) return STAGE_DONE;
    if (tree->auto_node && !plan__auto(x, ps)) return STAGE_DONE;
    /* an external router, when the tree asks one: the request waits for it (bounded) */
    if (plan__external(x, ps) == STAGE_AGAIN) return STAGE_AGAIN;
    plan__finish(x, ps);
    return STAGE_NEXT;
}

/* A strategy's pick as the metrics see it (record.h): the names the config gives the target. */
static void keep_choice(record_choice *c, const route_node *n, record_side side)
{
    *c = (record_choice){.made = true,
                         .side = side,
                         .provider = n->provider ? n->provider->name : NULL,
                         .model = n->model,
                         .name = n->name};
}

void plan__finish(exchange *x, plan_state *ps)
{
    const route_tree *tree = ps->tree;
    int choice = ps->external_choice;
    if (ps->external && choice >= 0) {
        if (ps->external->mode == ROUTE_ROUTER) {
            ps->ctx.router_choice = choice;
        } else { /* the external router's pick first, the rest in the local order */
            size_t k = 0;
            while (k < ps->norder && ps->order[k] != choice)
                k++;
            if (k < ps->norder) { /* always: it chose among the ordered ones (plan_external.c) */
                for (; k > 0; k--)
                    ps->order[k] = ps->order[k - 1];
                ps->order[0] = (uint8_t)choice;
            }
        }
    }
    if (tree->auto_node && ps->norder)
        keep_choice(&x->decision.auto_choice, &tree->auto_node->children[ps->order[0]], SIDE_NONE);
    if (tree->router && ps->ctx.router_choice >= 0)
        keep_choice(&x->decision.router_choice, &tree->router->children[ps->ctx.router_choice],
                    ps->ctx.router_choice ? SIDE_WEAK : SIDE_STRONG);
    if (tree->auto_node) {
        plan__auto_reason(x, ps);
    } else if (x->route_reason) { /* the learned router's, and what the external one said */
        const char *r = x->route_reason;
        char text[512];
        int n = snprintf(text, sizeof text, "%s%s%s", r, ps->external_note ? " external=" : "",
                         ps->external_note ? ps->external_note : "");
        if (n >= (int)sizeof text) n = (int)sizeof text - 1;
        if (choice >= 0 && ps->external && n < (int)sizeof text - 1) { /* the external router chose */
            n += snprintf(text + n, sizeof text - (size_t)n, " final=%s", choice ? "weak" : "strong");
            if (n >= (int)sizeof text) n = (int)sizeof text - 1;
        }
        plan__keep_reason(x, text, (size_t)n);
    }
    x->walk = route_walk_new(&ps->ctx, tree);
}

/* The client left while the stage waited for the external router. */
static void plan_on_abort(exchange *x, void *state)
{
    plan__external_abort(state);
}

const stage stage_plan = {
    .name = "plan",
    .phase = PHASE_PLAN,
    .state_size = sizeof(plan_state),
    .on_request = plan_on_request,
    .on_abort = plan_on_abort,
};
