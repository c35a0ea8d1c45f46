/* pipeline.c — the request's stages, in the order they run; see pipeline.h.
 *
 * Data flows one way: the parsed request → route → decode → plan → encode → attempt (the
 * upstream call) → answer (its callbacks) → record. A stage that waits (the upstream, a retry's
 * backoff) returns and is resumed by a callback; nothing here blocks the loop. Per-request
 * state lives in the request object (server/request.h) and its arena.
 *
 * Routing (src/routing) decides the targets: plan picks the route tree and starts a walk;
 * encode and attempt run once per target the walk gives; a failure before the client has a
 * byte goes back to the walk (retry, fallback, or the final answer with x-should-retry:
 * false); a hedge keeps a second attempt in flight until one of them answers.
 *
 * Streams: the upstream's SSE is framed into whole events (upstream/sse.h) and each read's
 * events go to the client as one chunk as soon as they arrive. The client's write queue
 * pauses the upstream above a high-water mark. A stream the upstream does not finish with
 * `data: [DONE]` gets an in-band `data: {"error":…}` event and then the end — never a clean
 * finish, so SDKs raise instead of returning a truncated answer. */
#include "pipeline/pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <jansson.h>

#include "observe/accesslog.h"
#include "providers/provider.h"
#include "server/http_conn.h"
#include "server/server.h"
#include "server/worker.h"
#include "upstream/upstream.h"
#include "util/json.h"
#include "util/timeutil.h"

#define SSE_EVENT_MAX (8 * 1024 * 1024)
#define STREAM_GATHER_MAX (16 * 1024) /* client events gathered in one round before they are written */

/* ---- request state -------------------------------------------------------------------- */

void pipeline_request_init(request *req)
{
    req->endpoint = -1;
    req->tag[0].req = req->tag[1].req = req;
    buf_init(&req->upstream_reply, 0);
    buf_init(&req->stream_out, SSE_EVENT_MAX * 2);
    sse_reader_init(&req->sse, SSE_EVENT_MAX);
}

/* The header config's tree, the parsed metadata and body a walk reads, kept until the
 * request ends. */
static void release_json(request *req)
{
    route_cache_release(req->cache_entry);
    req->cache_entry = NULL;
    json_decref(req->config_json);
    json_decref(req->metadata);
    json_decref(req->params);
    req->config_json = req->metadata = req->params = NULL;
}

void pipeline_request_reset(request *req)
{
    req->endpoint = -1;
    req->model = NULL;
    req->route = NULL;
    req->walk = NULL;
    release_json(req);
    req->route_headers = NULL;
    req->route_headers_len = 0;
    req->local_error = NULL;
    req->failure = 0;
    req->other_call = NULL;
    req->tag_index = 0;
    req->stream = req->stream_done_seen = false;
    req->xlate = NULL;
    req->stream_error = NULL;
    req->dropped_params = NULL;
    memset(&req->usage, 0, sizeof req->usage);
    req->ingress = WIRE_OPENAI;
    req->upstream = NULL;
    buf_reset(&req->upstream_reply);
    buf_reset(&req->stream_out);
    sse_reader_reset(&req->sse);
    req->pass_headers = NULL;
    req->pass_headers_len = 0;
    req->upstream_content_type = NULL;
    req->error_note = NULL;
    req->head_refusal = NULL;
}

void pipeline_request_free(request *req)
{
    if (req->other_call) upstream_cancel(req->other_call);
    req->other_call = NULL;
    release_json(req);
    if (req->upstream) upstream_cancel(req->upstream);
    req->upstream = NULL;
    buf_free(&req->upstream_reply);
    buf_free(&req->stream_out);
    sse_reader_free(&req->sse);
}

/* ---- local endpoints -------------------------------------------------------------------- */

static void handle_models(request *req)
{
    const aigw_config *cfg = req->worker->config;
    buf out;
    buf_init(&out, 16 * 1024 * 1024);
    buf_append_lit(&out, "{\"object\":\"list\",\"data\":[");
    /* Each public name once: a route's, then each served model's (owned by its first provider). */
    size_t listed = 0;
    for (size_t i = 0; i < cfg->ntrees + cfg->nroutes; i++) {
        const char *name, *owner;
        if (i < cfg->ntrees) {
            name = cfg->trees[i]->name;
            owner = "aigw";
        } else {
            const model_route *r = &cfg->routes[i - cfg->ntrees];
            if ((r > cfg->routes && !strcmp(r[-1].public_name, r->public_name)) ||
                config_find_route(cfg, r->public_name, strlen(r->public_name)))
                continue;
            name = r->public_name;
            owner = r->provider->name;
        }
        if (listed++) buf_append_lit(&out, ",");
        buf_append_lit(&out, "{\"id\":");
        buf_append_json_string(&out, name, strlen(name));
        buf_append_lit(&out, ",\"object\":\"model\",\"created\":0,\"owned_by\":");
        buf_append_json_string(&out, owner, strlen(owner));
        buf_append_lit(&out, "}");
    }
    buf_append_lit(&out, "]}");
    http_respond(req, 200, "application/json", NULL, 0, out.data, out.len);
    buf_free(&out);
}

static void handle_healthz(request *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond(req, 200, "application/json", NULL, 0, body, sizeof body - 1);
}

static void handle_readyz(request *req)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char not_ready[] = "{\"status\":\"not ready\"}";
    if (server_is_ready(req->worker->server))
        http_respond(req, 200, "application/json", NULL, 0, ready, sizeof ready - 1);
    else
        http_respond(req, 503, "application/json", NULL, 0, not_ready, sizeof not_ready - 1);
}

/* ---- stage: route ------------------------------------------------------------------------ */

static void stage_decode(request *req);

typedef struct endpoint_row {
    int method;
    const char *path;
    int endpoint; /* endpoint_kind for proxied endpoints, -1 for local ones */
    void (*handle)(request *req);
} endpoint_row;

static const endpoint_row endpoints[] = {
    {HTTP_POST, "/v1/chat/completions", ENDPOINT_CHAT_COMPLETIONS, stage_decode},
    {HTTP_POST, "/v1/completions", ENDPOINT_COMPLETIONS, stage_decode},
    {HTTP_POST, "/v1/embeddings", ENDPOINT_EMBEDDINGS, stage_decode},
    {HTTP_POST, "/v1/messages", ENDPOINT_MESSAGES, stage_decode},
    {HTTP_POST, "/v1/messages/count_tokens", ENDPOINT_COUNT_TOKENS, stage_decode},
    {HTTP_GET, "/v1/models", -1, handle_models},
    {HTTP_GET, "/healthz", -1, handle_healthz},
    {HTTP_GET, "/readyz", -1, handle_readyz},
};

wire_format pipeline_ingress_of(const char *path)
{
    return !strncmp(path, "/v1/messages", 12) ? WIRE_ANTHROPIC : WIRE_OPENAI;
}

void pipeline_handle(request *req)
{
    bool path_known = false;
    /* HEAD is GET without the body (the server leaves it out). */
    int method = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint_row *e = &endpoints[i];
        if (strcmp(req->path, e->path) != 0) continue;
        path_known = true;
        if (e->method != method) continue;
        req->endpoint = e->endpoint;
        e->handle(req);
        return;
    }
    char msg[256];
    if (path_known) {
        snprintf(msg, sizeof msg, "method %s is not allowed on %.150s", http_method_str(req->method),
                 req->path);
        http_respond_error(req, 405, "invalid_request_error", "method_not_allowed", NULL, msg);
    } else {
        snprintf(msg, sizeof msg, "unknown path %.200s", req->path);
        http_respond_error(req, 404, "invalid_request_error", "not_found", NULL, msg);
    }
}

/* ---- stage: decode ------------------------------------------------------------------------ */

static bool stage_plan(request *req, size_t model_len);
static void attempt_next(request *req);
static void refuse_route(request *req, const char *route, int status, const char *code, const char *param,
                         const char *message);
static void answer_failure(request *req);
static void set_route_headers(request *req, bool gave_up);

#define MODEL_NAME_MAX 256

static bool printable_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static void stage_decode(request *req)
{
    json_field fields[] = {{.key = "model"}, {.key = "stream"}};
    const char *why;
    size_t at;
    if (!json_scan_object(req->body.data ? req->body.data : "", req->body.len, fields, 2, &why, &at)) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body is not valid JSON: %s at byte %zu", why, at);
        http_respond_error(req, 400, "invalid_request_error", "invalid_json", NULL, msg);
        return;
    }
    if (fields[0].type != JSON_KIND_STRING) {
        http_respond_error(
            req, 400, "invalid_request_error", fields[0].type ? "invalid_type" : "missing_required_parameter",
            "model", fields[0].type ? "'model' must be a string" : "you must provide a model parameter");
        return;
    }
    size_t model_len;
    req->model = json_string_decode(&req->arena, req->body.data, fields[0].start, fields[0].end, &model_len);
    /* A name is compared, logged and echoed in headers: no NUL (C strings would stop at it and
     * route "m\u0000evil" as "m"), no control bytes, and a length no real model name needs. */
    if (model_len == 0 || model_len > MODEL_NAME_MAX || !printable_name(req->model, model_len)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_value", "model",
                           model_len > MODEL_NAME_MAX
                               ? "'model' is too long (at most 256 bytes)"
                               : "'model' must be a non-empty name without control characters");
        return;
    }
    req->stream = fields[1].type == JSON_KIND_TRUE;
    req->body_model_start = fields[0].start;
    req->body_model_end = fields[0].end;
    if (stage_plan(req, model_len)) attempt_next(req);
}

/* ---- stage: plan (which route tree, and the walk through it) -------------------------------- */

static size_t estimate_prompt_tokens(void *ud)
{
    return provider_estimate_tokens(ud);
}

/* The tree: a config in the x-aigw-config / x-portkey-config header (JSON, or a stored
 * route's name), else the route named like the model, else the model's own one-target
 * route, else the default route. */
static const route_tree *choose_tree(request *req, size_t model_len)
{
    const aigw_config *cfg = req->worker->config;
    const http_header *h = http_find_header(req, "x-aigw-config");
    bool portkey = false;
    if (!h) {
        h = http_find_header(req, "x-portkey-config");
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
            refuse_route(req, header, 400, "invalid_config", header, msg);
            return NULL;
        }
        /* Built once per worker and found by its bytes after that (routing's cache). */
        char err[512] = "";
        const route_tree *t = route_cache_get(req->worker->route_cache, cfg, h->value + i, h->value_len - i,
                                              header, portkey, &req->cache_entry, err, sizeof err);
        if (!t && !err[0]) { /* not kept (large, or every entry in use): built for this request */
            json_error_t jerr;
            req->config_json = json_loadb(h->value, h->value_len, 0, &jerr);
            if (!req->config_json)
                route_json_error(&jerr, err, sizeof err);
            else
                t = route_tree_build(&req->arena, cfg, cfg->health, req->config_json, header, portkey, false,
                                     true, err, sizeof err);
        }
        if (!t) {
            snprintf(msg, sizeof msg, "invalid %s: %s", header, err);
            refuse_route(req, header, 400, "invalid_config", header, msg);
        }
        return t;
    }
    const route_tree *t = config_find_route(cfg, req->model, model_len);
    if (t) return t;
    const model_route *r = config_find_model(cfg, req->model, model_len);
    if (r) return r->tree;
    if (cfg->default_route) return cfg->default_route;
    snprintf(msg, sizeof msg, "The model `%.200s` does not exist or is not served by this gateway",
             req->model);
    refuse_route(req, req->model, 404, "model_not_found", "model", msg);
    return NULL;
}

static bool stage_plan(request *req, size_t model_len)
{
    const route_tree *tree = choose_tree(req, model_len);
    if (!tree) return false;
    const http_header *m = http_find_header(req, "x-aigw-metadata");
    if (!m) m = http_find_header(req, "x-portkey-metadata");
    if (m) {
        req->metadata = json_loadb(m->value, m->value_len, 0, NULL);
        if (!json_is_object(req->metadata)) {
            refuse_route(req, tree->name, 400, "invalid_metadata", "x-aigw-metadata",
                         "the metadata header must be a JSON object");
            return false;
        }
    }
    if (tree->needs_params) req->params = json_loadb(req->body.data, req->body.len, JSON_ALLOW_NUL, NULL);
    route_context ctx = {
        .arena = &req->arena,
        .state = req->worker->config->health,
        .config = req->worker->config,
        .model = req->model,
        .metadata = req->metadata,
        .params = req->params,
        .rng = &req->worker->rng,
        .prompt_bytes = req->body.len,
        .estimate_tokens = estimate_prompt_tokens,
        .estimate_ud = req,
    };
    req->walk = route_walk_new(&ctx, tree);
    return true;
}

/* ---- stage: encode and attempt, once per target tried ---------------------------------------- */

/* How the last attempt failed, for the answer when it was the last one. */
enum { FAILED_NONE, FAILED_REPLY, FAILED_LOCAL, FAILED_TRANSPORT };

static void attempt_send(request *req);

/* The provider + upstream model of a target: an implicit route's own, or made for it. */
static const model_route *target_route(request *req, const route_node *leaf)
{
    const model_route *known = leaf->route;
    if (known && (!known->is_alias || strcmp(known->upstream_model, req->model) != 0)) return known;
    model_route *r = arena_alloc(&req->arena, sizeof *r);
    if (known) { /* the client asked for the upstream model's own name: nothing to splice */
        *r = *known;
        r->is_alias = false;
        return r;
    }
    config_route_fill(req->worker->config, r, leaf->provider, req->model,
                      leaf->model ? leaf->model : req->model);
    return r;
}

/* The client's body with the target's override_params set at the top level (replaced where
 * the body has them, added where not), and the model's span in it found again. */
static bool apply_overrides(request *req, const route_node *leaf)
{
    size_t n = leaf->noverrides;
    json_field *fields = arena_alloc(&req->arena, (n + 1) * sizeof *fields);
    memset(fields, 0, (n + 1) * sizeof *fields);
    const char **values = arena_alloc(&req->arena, (n + 1) * sizeof *values);
    for (size_t i = 0; i < n; i++) {
        fields[i].key = leaf->overrides[i].key;
        values[i] = leaf->overrides[i].value;
    }
    const char *why;
    size_t at;
    if (!json_scan_object(req->body.data, req->body.len, fields, n, &why, &at)) return false;
    size_t room = req->body.len + 16;
    for (size_t k = 0; k < n; k++)
        room += strlen(fields[k].key) * 6 + strlen(values[k]) + 4;
    buf out;
    buf_init(&out, room);
    size_t pos = 0;
    /* replaced values, in the order they appear in the body */
    for (;;) {
        size_t next = n;
        for (size_t k = 0; k < n; k++)
            if (fields[k].type && fields[k].start >= pos &&
                (next == n || fields[k].start < fields[next].start))
                next = k;
        if (next == n) break;
        buf_append(&out, req->body.data + pos, fields[next].start - pos);
        buf_append(&out, values[next], strlen(values[next]));
        pos = fields[next].end;
    }
    size_t close = req->body.len;
    while (close > pos && req->body.data[close - 1] != '}')
        close--;
    buf_append(&out, req->body.data + pos, close - 1 - pos);
    bool empty = true; /* is the client's object empty? then no comma before the first added */
    for (size_t k = 0; k < out.len && empty; k++)
        empty = out.data[k] == '{' || out.data[k] == ' ' || out.data[k] == '\t' || out.data[k] == '\r' ||
                out.data[k] == '\n';
    for (size_t k = 0; k < n; k++) {
        if (fields[k].type) continue;
        if (!empty) buf_append_lit(&out, ",");
        empty = false;
        buf_append_json_string(&out, fields[k].key, strlen(fields[k].key));
        buf_append_lit(&out, ":");
        buf_append(&out, values[k], strlen(values[k]));
    }
    buf_append(&out, req->body.data + close - 1, req->body.len - (close - 1));
    char *body = arena_strndup(&req->arena, out.data ? out.data : "", out.len);
    req->payload = body;
    req->payload_len = out.len;
    buf_free(&out);
    json_field model = {.key = "model"};
    if (!json_scan_object(req->payload, req->payload_len, &model, 1, &why, &at)) return false;
    req->model_start = model.start;
    req->model_end = model.end;
    return true;
}

/* ---- hedging: two attempts in flight, the first to answer wins ---------------------------------- */

#define SWAP(type, a, b)                                                                                     \
    do {                                                                                                     \
        type swap_tmp = (a);                                                                                 \
        (a) = (b);                                                                                           \
        (b) = swap_tmp;                                                                                      \
    } while (0)

/* Exchanges the current attempt (its transfer and what encoding it set) with the other one. */
static void swap_attempts(request *req)
{
    SWAP(struct upstream_call *, req->upstream, req->other_call);
    SWAP(const model_route *, req->route, req->other_route);
    SWAP(struct xlate *, req->xlate, req->other_xlate);
    SWAP(const char *, req->dropped_params, req->other_dropped);
    SWAP(uint64_t, req->attempt_ns, req->other_attempt_ns);
    req->tag_index ^= 1;
}

/* The attempt the hedge ran against becomes the current one again (the hedge lost or failed). */
static void resume_other(request *req)
{
    swap_attempts(req);
    req->other_call = NULL;
    req->head_ns = 0;
    route_resume_other(req->walk);
}

/* The current attempt won: the other one is cancelled, which says nothing about its health. */
static void drop_other(request *req)
{
    if (!req->other_call) return;
    upstream_cancel(req->other_call);
    req->other_call = NULL;
    route_report_other(req->walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
}

/* No first byte yet after the target's hedge delay: the next target is asked too. */
static void hedge_fire(request *req)
{
    if (req->hedge_serial != req->attempt_serial || !req->upstream || req->head_ns || req->other_call) return;
    route_target t;
    if (!route_hedge_next(req->walk, &t)) return;
    swap_attempts(req); /* the running attempt becomes the other; the current slot is empty */
    req->target = t;
    attempt_send(req);
}

static void attempt_failed(request *req, int kind, attempt_result result, int status, const char *message)
{
    req->failure = kind;
    req->failure_message = message ? arena_strndup(&req->arena, message, strlen(message)) : NULL;
    attempt_report r = {.result = result,
                        .status = status,
                        .retry_after_ms = req->retry_after_ms,
                        .local = kind == FAILED_LOCAL};
    if (req->head_ns) r.ttfb_us = (req->head_ns - req->attempt_ns) / 1000;
    route_report(req->walk, &r);
    if (req->other_call) /* a hedge failed first: the attempt it hedged against goes on */
        resume_other(req);
    else
        attempt_next(req);
}

static void attempt_next(request *req)
{
    if (!route_next(req->walk, &req->target)) {
        answer_failure(req);
        return;
    }
    if (req->target.wait_ms)
        http_request_timer(req, req->target.wait_ms, attempt_send);
    else
        attempt_send(req);
}

static bool on_upstream_head(void *ud, int status, const char *const *lines, size_t nlines);
static int on_upstream_data(void *ud, const char *data, size_t len);
static bool on_upstream_flush(void *ud);
static void on_upstream_done(void *ud, upstream_result result, const char *message);

static const upstream_callbacks upstream_cbs = {
    .on_head = on_upstream_head,
    .on_data = on_upstream_data,
    .on_flush = on_upstream_flush,
    .on_done = on_upstream_done,
};

/* How long a buffered (non-stream) reply of the current attempt may take in all, from the
 * request to its last byte: the provider's timeouts.total, or the route's request_timeout when
 * shorter. A byte every few seconds keeps the idle timer quiet; this does not move. */
static uint32_t reply_deadline_ms(const request *req)
{
    uint32_t total = req->route->provider->total_timeout_ms, timeout = req->target.leaf->request_timeout_ms;
    return timeout && (!total || timeout < total) ? timeout : total;
}

/* Per attempt: what the previous attempt left is cleared, the target's body encoded and sent.
 * The body and headers curl sends live in the request (its body or arena) until the request
 * is reset, which happens only after the transfer has ended or been cancelled. */
static void attempt_send(request *req)
{
    const route_target *t = &req->target;
    req->attempt_serial++;
    /* The first attempt is encoded before the target is charged with it: a body no
     * translation can read (a number out of range) is the client's mistake, answered at once
     * with 400 — no attempt, no other target. Later attempts keep what the last one left until
     * their target is sure (the answer may still be that one's). */
    bool first = !req->other_call && route_attempts(req->walk) == 0;
    if (!first && !route_begin(req->walk, t)) { /* its breaker opened meanwhile */
        if (req->other_call)
            resume_other(req);
        else
            attempt_next(req);
        return;
    }
    req->route = target_route(req, t->leaf);
    req->xlate = NULL;
    req->dropped_params = NULL;
    req->stream_error = NULL;
    req->stream_done_seen = false;
    memset(&req->usage, 0, sizeof req->usage);
    req->status = 0;
    buf_reset(&req->upstream_reply);
    sse_reader_reset(&req->sse);
    req->pass_headers = NULL;
    req->pass_headers_len = 0;
    req->retry_after_ms = -1;
    req->head_ns = 0;
    req->attempt_ns = time_now_ns();
    req->failure = FAILED_NONE;
    req->local_error = NULL;
    req->head_refusal = NULL;
    const provider_config *p = req->route->provider;

    bool local_answer = req->endpoint == ENDPOINT_COUNT_TOKENS && p->preset->format != WIRE_ANTHROPIC;
    bool plain_model = !(p->preset->format == WIRE_GEMINI || p->preset->deployments) ||
                       strspn(req->route->upstream_model,
                              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                           req->route->upstream_model_len;
    bool merged = true, encoded = false, refused_whole = false;
    provider_request preq;
    provider_error err;
    if (!local_answer && plain_model) {
        req->payload = req->body.data ? req->body.data : "";
        req->payload_len = req->body.len;
        req->model_start = req->body_model_start;
        req->model_end = req->body_model_end;
        merged = !t->leaf->noverrides || apply_overrides(req, t->leaf);
        encoded = merged && provider_encode(req, req->model_start, req->model_end, &preq, &err);
        refused_whole = merged && !encoded && err.whole_request;
    }
    if (first) {
        if (refused_whole) {
            refuse_route(req, route_tree_name(req->walk), err.status, err.code, err.param, err.message);
            return;
        }
        if (!route_begin(req->walk, t)) { /* its breaker is open */
            attempt_next(req);
            return;
        }
    }

    if (local_answer) {
        /* The provider cannot count: an estimate from the text, marked as one. */
        route_report(req->walk, &(attempt_report){.result = ATTEMPT_OK, .retry_after_ms = -1, .local = true});
        drop_other(req);
        set_route_headers(req, false);
        char body[48];
        int n = snprintf(body, sizeof body, "{\"input_tokens\":%zu}", provider_estimate_tokens(req));
        static const char marker[] = "x-aigw-estimate: true\r\n";
        http_respond(req, 200, "application/json", marker, sizeof marker - 1, body, (size_t)n);
        return;
    }
    if (!plain_model) {
        /* This provider's URL names the model: only a plain name can go there. */
        attempt_failed(req, FAILED_LOCAL, ATTEMPT_STATUS, 400,
                       "the model name cannot be part of this provider's URL");
        return;
    }
    if (!merged) {
        attempt_failed(req, FAILED_LOCAL, ATTEMPT_STATUS, 400, "override_params could not be merged");
        return;
    }
    if (!encoded) {
        /* This provider cannot take the request as it is; another target may. */
        req->local_error = arena_alloc(&req->arena, sizeof err);
        *req->local_error = err;
        attempt_failed(req, FAILED_LOCAL, ATTEMPT_STATUS, err.status, err.message);
        return;
    }
    uint32_t timeout = t->leaf->request_timeout_ms;
    upstream_request ureq = {
        .url = preq.url,
        .body = preq.body,
        .body_len = preq.body_len,
        .headers = preq.headers,
        .connect_timeout_ms = p->connect_timeout_ms,
        .first_byte_timeout_ms =
            timeout && timeout < p->first_byte_timeout_ms ? timeout : p->first_byte_timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
        /* a stream's request_timeout ends at its first byte: a long answer is not a slow one;
         * a buffered reply has until the provider's total (or the route's request_timeout) */
        .total_timeout_ms = req->stream ? 0 : reply_deadline_ms(req),
    };
    req->upstream_reply.max = req->worker->config->max_response_bytes;
    req->upstream = upstream_start(req->worker->upstream, &ureq, &upstream_cbs, &req->tag[req->tag_index]);
    if (!req->upstream) {
        attempt_failed(req, FAILED_TRANSPORT, ATTEMPT_CONNECT, 0, "could not start the upstream request");
        return;
    }
    /* count_tokens is not hedged: a hedge to a provider that cannot count would answer an
     * estimate at once and cancel the exact count */
    uint32_t hedge =
        req->other_call || req->endpoint == ENDPOINT_COUNT_TOKENS ? 0 : route_hedge_delay(req->walk);
    if (hedge) {
        req->hedge_serial = req->attempt_serial;
        http_request_timer(req, hedge, hedge_fire);
    }
}

/* ---- stage: answer ----------------------------------------------------------------------- */

/* A header value a client reads as it was meant: visible ASCII, spaces and tabs only. */
static bool header_value_visible(const char *value)
{
    for (const unsigned char *v = (const unsigned char *)value; *v; v++)
        if ((*v < 0x20 && *v != '\t') || *v > 0x7e) return false;
    return true;
}

/* Upstream response headers a client may rely on (rate limits, retry hints). The provider's
 * x-should-retry is not among them: whether retrying makes sense is aigw's to say now. */
static bool header_passes(const char *line, size_t name_len)
{
    static const char *const exact[] = {"retry-after", "retry-after-ms", "openai-processing-ms",
                                        "openai-version", "openai-organization"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == name_len && !strncasecmp(line, exact[i], name_len)) return true;
    if (!(name_len > 12 && !strncasecmp(line, "x-ratelimit-", 12)) &&
        !(name_len > 20 && !strncasecmp(line, "anthropic-ratelimit-", 20)))
        return false;
    /* the rest of a prefixed name is the provider's: a token, or the header is not passed */
    return strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == name_len;
}

/* What happened, for the response head: the provider and model that answered, how many
 * attempts it took, the targets tried; and, once aigw has given up, that retrying the same
 * request would only multiply the load (SDKs honour x-should-retry). */
/* Appends "name: value\r\n"; bytes that could end the header line (control characters, which a
 * client's model name may carry as JSON escapes) are left out, and a value longer than
 * ROUTE_HEADER_VALUE_MAX is cut there (route paths echo names from the client's config). */
#define ROUTE_HEADER_VALUE_MAX 1024
static size_t put_header(char *out, const char *name, size_t name_len, const char *value)
{
    size_t n = name_len;
    memcpy(out, name, name_len);
    for (const unsigned char *v = (const unsigned char *)value; *v && n - name_len < ROUTE_HEADER_VALUE_MAX;
         v++)
        if (*v >= 0x20 && *v != 0x7f) out[n++] = (char)*v;
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

#define PUT_HEADER(out, lit, value) put_header((out), lit, sizeof lit - 1, (value))

/* A request refused before any target was chosen still says so: no attempt, the route it was
 * for, and that sending it again unchanged will not help. */
static void refuse_route(request *req, const char *route, int status, const char *code, const char *param,
                         const char *message)
{
    size_t cap = strlen(route) + 96;
    char *h = arena_alloc(&req->arena, cap);
    size_t n = PUT_HEADER(h, "x-aigw-attempts: ", "0");
    n += PUT_HEADER(h + n, "x-aigw-route: ", route);
    n += PUT_HEADER(h + n, "x-should-retry: ", "false");
    req->route_headers = h;
    req->route_headers_len = n;
    http_respond_error(req, status, "invalid_request_error", code, param, message);
}

static void set_route_headers(request *req, bool gave_up)
{
    if (!req->walk) return;
    const char *paths = route_paths(req->walk);
    uint32_t attempts = route_attempts(req->walk);
    bool answered = req->route && attempts;
    size_t cap = strlen(paths) +
                 (answered ? strlen(req->route->provider->name) + req->route->upstream_model_len : 0) + 128;
    char *h = arena_alloc(&req->arena, cap);
    size_t n = 0;
    if (answered) {
        n += PUT_HEADER(h + n, "x-aigw-provider: ", req->route->provider->name);
        n += PUT_HEADER(h + n, "x-aigw-model: ", req->route->upstream_model);
    }
    char count[12];
    char *c = count + sizeof count;
    *--c = '\0';
    do
        *--c = (char)('0' + attempts % 10);
    while (attempts /= 10);
    n += PUT_HEADER(h + n, "x-aigw-attempts: ", c);
    n += PUT_HEADER(h + n, "x-aigw-route: ", paths);
    if (gave_up) n += PUT_HEADER(h + n, "x-should-retry: ", "false");
    req->route_headers = h;
    req->route_headers_len = n;
}

/* While a hedge runs, the first head decides: a success wins and the other transfer is
 * cancelled; a failure is that attempt's end, and the other one goes on. Returns false when
 * this head's transfer is not the answer. */
static bool hedge_head(request *req, bool current, int status, const char *const *lines, size_t nlines)
{
    bool ok = status >= 200 && status < 300;
    attempt_report lost = {
        .result = ok ? ATTEMPT_CANCELLED : ATTEMPT_STATUS, .status = ok ? 0 : status, .retry_after_ms = -1};
    if (current && ok) {
        drop_other(req);
        return true;
    }
    if (current) { /* failed while the other is still out: the other may still answer */
        upstream_cancel(req->upstream);
        req->upstream = NULL;
        lost.ttfb_us = (time_now_ns() - req->attempt_ns) / 1000;
        lost.retry_after_ms = route_note_headers(req->walk, false, status, lines, nlines);
        route_report(req->walk, &lost);
        resume_other(req);
        return false;
    }
    if (ok) { /* the other answered first: the current attempt is the one cancelled */
        upstream_cancel(req->upstream);
        req->upstream = NULL;
        route_report(req->walk, &lost);
        resume_other(req);
        return true;
    }
    upstream_cancel(req->other_call);
    req->other_call = NULL;
    lost.retry_after_ms = route_note_headers(req->walk, true, status, lines, nlines);
    route_report_other(req->walk, &lost);
    return false;
}

static bool on_upstream_head(void *ud, int status, const char *const *lines, size_t nlines)
{
    call_tag *tag = ud;
    request *req = tag->req;
    if (req->other_call && !hedge_head(req, tag == &req->tag[req->tag_index], status, lines, nlines))
        return false;
    req->head_ns = time_now_ns();
    req->retry_after_ms = route_note_headers(req->walk, false, status, lines, nlines);
    const char *content_type = "application/json";
    size_t total = req->dropped_params ? strlen(req->dropped_params) + 32 : 0;
    for (size_t i = 0; i < nlines; i++)
        total += strlen(lines[i]) + 32;
    char *pass = arena_alloc(&req->arena, total + 1);
    size_t plen = 0;
    const char *encoding = NULL;
    for (size_t i = 0; i < nlines; i++) {
        const char *line = lines[i];
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        size_t nlen = (size_t)(colon - line);
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        /* Only values a client reads as one line reach it: a provider (or a client's
         * custom_host) must not be able to add headers to aigw's response. Checked only for
         * the headers that are passed on (the rest are not read). */
        if (nlen == 16 && !strncasecmp(line, "content-encoding", 16)) {
            if (strcasecmp(value, "identity") != 0) encoding = value;
        } else if (nlen == 12 && !strncasecmp(line, "content-type", 12)) {
            if (header_value_visible(value)) content_type = arena_strndup(&req->arena, value, strlen(value));
        } else if (nlen == 12 && !strncasecmp(line, "x-request-id", 12)) {
            if (!header_value_visible(value)) continue;
            int n = snprintf(pass + plen, total + 1 - plen, "x-upstream-request-id: %s\r\n", value);
            if (n > 0) plen += (size_t)n;
        } else if (header_passes(line, nlen) && header_value_visible(value)) {
            size_t l = strlen(line);
            memcpy(pass + plen, line, l);
            memcpy(pass + plen + l, "\r\n", 2);
            plen += l + 2;
        }
    }
    if (req->dropped_params)
        plen += (size_t)snprintf(pass + plen, total + 1 - plen, "x-aigw-dropped-params: %s\r\n",
                                 req->dropped_params);
    pass[plen] = '\0';
    req->pass_headers = pass;
    req->pass_headers_len = plen;
    req->status = status;
    /* Refused heads end the transfer here (their body is not read): a redirect, which aigw
     * does not follow, and a body encoded although aigw asked for identity — passed on, it
     * would be mislabelled, and decoding it would be a way round max_response_bytes. */
    char why[200];
    why[0] = '\0';
    if (status >= 300 && status < 400)
        snprintf(why, sizeof why, "answered with a redirect (%d), which aigw does not follow", status);
    else if (status < 100 || status > 599)
        snprintf(why, sizeof why, "answered with an invalid status (%d)", status);
    else if (encoding)
        snprintf(why, sizeof why, "sent a body with Content-Encoding: %.60s although aigw asked for identity",
                 header_value_visible(encoding) ? encoding : "(unreadable)");
    if (why[0]) {
        req->head_refusal = arena_strndup(&req->arena, why, strlen(why));
        return false;
    }
    if (status >= 200 && status < 300 && !strncasecmp(content_type, "text/event-stream", 17)) {
        /* The first byte goes to the client: from here on there is no retry or fallback. */
        set_route_headers(req, false);
        http_stream_begin(req, status, "text/event-stream", pass, plen);
    } else {
        /* Buffered: a JSON reply or an upstream error, passed through whole. */
        req->upstream_content_type = content_type;
    }
    return true;
}

/* Each whole upstream event: forwarded, or translated into the client's events. Events after
 * the end marker or an in-band error are ignored. */
static void on_sse_event(void *ud, const char *raw, size_t len)
{
    request *req = ud;
    if (req->stream_done_seen || req->stream_error) return;
    const char *message = NULL;
    switch (provider_stream_event(req, raw, len, &req->stream_out, &message)) {
    case STREAM_DONE: req->stream_done_seen = true; break;
    case STREAM_FAILED: req->stream_error = message ? message : "provider stream error"; break;
    case STREAM_MORE: break;
    }
}

static int on_upstream_data(void *ud, const char *data, size_t len)
{
    request *req = ((call_tag *)ud)->req;
    if (!req->chunked) {
        return buf_append(&req->upstream_reply, data, len) == BUF_OK ? UPSTREAM_DATA_OK : UPSTREAM_DATA_ABORT;
    }
    /* Whole events gather in stream_out; on_upstream_flush sends them once per socket read. */
    if (!sse_reader_feed(&req->sse, data, len, on_sse_event, req)) return UPSTREAM_DATA_ABORT;
    /* After an in-band error the provider has nothing more to say that the client can use. */
    if (req->stream_error) return UPSTREAM_DATA_ABORT;
    /* curl reads up to 100 buffers in one round: past this much gathered, the round ends and
     * on_upstream_flush writes it (and pauses if the client is behind). */
    return req->stream_out.len >= STREAM_GATHER_MAX ? UPSTREAM_DATA_PAUSE : UPSTREAM_DATA_OK;
}

static bool on_upstream_flush(void *ud)
{
    request *req = ((call_tag *)ud)->req;
    if (!req->chunked || !req->stream_out.len) return false;
    bool behind = http_stream_write(req, req->stream_out.data, req->stream_out.len);
    req->stream_out.len = 0;
    return behind;
}

static int status_for(upstream_result result)
{
    switch (result) {
    case UPSTREAM_CONNECT_TIMEOUT:
    case UPSTREAM_FIRST_BYTE_TIMEOUT:
    case UPSTREAM_IDLE_TIMEOUT:
    case UPSTREAM_TOTAL_TIMEOUT: return 504;
    default: return 502;
    }
}

static attempt_result attempt_result_of(upstream_result result)
{
    switch (result) {
    case UPSTREAM_CONNECT_TIMEOUT:
    case UPSTREAM_FIRST_BYTE_TIMEOUT:
    case UPSTREAM_IDLE_TIMEOUT:
    case UPSTREAM_TOTAL_TIMEOUT: return ATTEMPT_TIMEOUT;
    case UPSTREAM_CONNECT_FAILED: return ATTEMPT_CONNECT;
    default: return ATTEMPT_BROKEN;
    }
}

/* The buffered upstream reply, translated for the client, with its cost. */
static void answer_reply(request *req, bool gave_up)
{
    set_route_headers(req, gave_up);
    const char *body = req->upstream_reply.data ? req->upstream_reply.data : "";
    buf translated;
    buf_init(&translated, req->worker->config->max_response_bytes * 2);
    const char *type = provider_translate_reply(req, req->status, body, req->upstream_reply.len, &translated);
    /* The cost is known once the reply's usage is: it goes out as a header. */
    const char *headers = req->pass_headers;
    size_t headers_len = req->pass_headers_len;
    double cost = provider_cost(req);
    if (cost >= 0) {
        char *h = arena_alloc(&req->arena, headers_len + 64);
        memcpy(h, headers, headers_len);
        headers_len += (size_t)snprintf(h + headers_len, 64, "x-aigw-cost-usd: %.10g\r\n", cost);
        headers = h;
    }
    if (type)
        http_respond(req, req->status, type, headers, headers_len, translated.data ? translated.data : "",
                     translated.len);
    else
        http_respond(req, req->status, req->upstream_content_type, headers, headers_len, body,
                     req->upstream_reply.len);
    buf_free(&translated);
}

/* The walk is over without an answer: the last attempt's failure goes to the client as it was
 * (an upstream error reply keeps its status and message), or why nothing could be sent. */
static void answer_failure(request *req)
{
    set_route_headers(req, true);
    char msg[600];
    switch (req->failure) {
    case FAILED_REPLY: answer_reply(req, true); return;
    case FAILED_LOCAL: {
        const provider_error *e = req->local_error;
        if (e)
            http_respond_error(req, e->status, e->type, e->code, e->param, e->message);
        else
            http_respond_error(req, 400, "invalid_request_error", "invalid_request", NULL,
                               req->failure_message);
        return;
    }
    case FAILED_TRANSPORT:
        /* A client's custom_host: what curl says (refused, reset, which address) would map
         * what listens behind the gateway; the details go to the access log only. */
        if (req->target.leaf && req->target.leaf->custom_host) {
            req->error_note = req->failure_message;
            http_respond_error(req, req->failure_status, "server_error",
                               req->failure_status == 504 ? "upstream_timeout" : "upstream_error", NULL,
                               "the custom_host did not answer");
            return;
        }
        http_respond_error(req, req->failure_status, "server_error",
                           req->failure_status == 504 ? "upstream_timeout" : "upstream_error", NULL,
                           req->failure_message);
        return;
    default: break;
    }
    const char *error = route_error(req->walk);
    if (error) {
        http_respond_error(req, 400, "invalid_request_error", "no_matching_route", NULL, error);
        return;
    }
    int status;
    uint32_t retry_in;
    const char *why = route_unavailable(req->walk, &status, &retry_in);
    if (status == 400) {
        snprintf(msg, sizeof msg, "the prompt does not fit the context window of any target of route %s",
                 route_tree_name(req->walk));
        http_respond_error(req, 400, "invalid_request_error", "context_length_exceeded", "messages", msg);
        return;
    }
    snprintf(msg, sizeof msg,
             "every target of route %s is unavailable (%s); the first may be tried again in %u ms",
             route_tree_name(req->walk), why ? why : "no usable target", retry_in);
    /* Retry-After for the client: when the first breaker half-opens */
    char *h = arena_alloc(&req->arena, req->route_headers_len + 40);
    memcpy(h, req->route_headers, req->route_headers_len);
    req->route_headers_len += (size_t)snprintf(h + req->route_headers_len, 40, "retry-after: %u\r\n",
                                               (retry_in + 999) / 1000 ? (retry_in + 999) / 1000 : 1);
    req->route_headers = h;
    http_respond_error(req, 503, "server_error", "targets_unavailable", NULL, msg);
}

static void on_upstream_done(void *ud, upstream_result result, const char *message)
{
    call_tag *tag = ud;
    request *req = tag->req;
    if (req->other_call) { /* a hedge runs: one of the two transfers ended before its head */
        attempt_report r = {.result = attempt_result_of(result), .retry_after_ms = -1};
        if (tag != &req->tag[req->tag_index]) {
            req->other_call = NULL;
            route_report_other(req->walk, &r);
        } else {
            req->upstream = NULL;
            route_report(req->walk, &r);
            resume_other(req);
        }
        return;
    }
    req->upstream = NULL;
    const char *provider = req->route->provider->name;
    char msg[512];
    if (req->chunked) {
        /* Events still gathered go out with the end (or before the error). */
        buf *out = &req->stream_out;
        /* After the end marker the answer is complete, whatever the transport says next. */
        if (!req->stream_error &&
            (req->stream_done_seen || (result == UPSTREAM_OK && provider_stream_finish(req, out)))) {
            route_report(req->walk, &(attempt_report){.result = ATTEMPT_OK,
                                                      .ttfb_us = (req->head_ns - req->attempt_ns) / 1000,
                                                      .retry_after_ms = -1});
            http_stream_end(req, out->data, out->len);
            return;
        }
        if (req->stream_error)
            snprintf(msg, sizeof msg, "provider %s stream failed: %s", provider, req->stream_error);
        else if (result == UPSTREAM_OK)
            snprintf(msg, sizeof msg, "provider %s ended the stream before its end marker", provider);
        else
            snprintf(msg, sizeof msg, "provider %s stream failed (%s): %s", provider,
                     upstream_result_name(result), message);
        /* Past the first byte there is no switching targets: the client learns it failed. */
        route_report(req->walk, &(attempt_report){.result = ATTEMPT_BROKEN,
                                                  .ttfb_us = (req->head_ns - req->attempt_ns) / 1000,
                                                  .retry_after_ms = -1});
        /* A partial event from the upstream is dropped so the error starts on a boundary; a
         * blank line first ends any event the client may still be assembling. */
        if (sse_reader_has_partial(&req->sse)) buf_append_lit(out, "\n");
        provider_stream_error(req, out, msg);
        req->error_note = arena_strndup(&req->arena, msg, strlen(msg));
        http_stream_end(req, out->data, out->len);
        return;
    }
    if (result == UPSTREAM_OK && req->status) {
        if (req->status >= 200 && req->status < 300) {
            route_report(req->walk, &(attempt_report){.result = ATTEMPT_OK,
                                                      .status = req->status,
                                                      .ttfb_us = (req->head_ns - req->attempt_ns) / 1000,
                                                      .retry_after_ms = -1});
            answer_reply(req, false);
            return;
        }
        attempt_failed(req, FAILED_REPLY, ATTEMPT_STATUS, req->status, NULL);
        return;
    }
    if (result == UPSTREAM_TOO_LARGE) {
        /* The provider answered; the gateway's limit refused it: no other target would do better. */
        route_report(req->walk, &(attempt_report){.result = ATTEMPT_OK, .retry_after_ms = -1});
        set_route_headers(req, true);
        snprintf(msg, sizeof msg, "provider %s sent a reply larger than limits.max_response_bytes", provider);
        http_respond_error(req, 502, "server_error", "upstream_error", NULL, msg);
        return;
    }
    if (req->head_refusal) { /* on_upstream_head refused it and ended the transfer */
        snprintf(msg, sizeof msg, "provider %s %s", provider, req->head_refusal);
        req->failure_status = 502;
        /* the same request would get the same answer: a status, retried only where the
         * route's retry.on names it; another target may still be tried */
        attempt_failed(req, FAILED_TRANSPORT, ATTEMPT_STATUS, req->status, msg);
        return;
    }
    if (result == UPSTREAM_TOTAL_TIMEOUT)
        snprintf(msg, sizeof msg, "provider %s did not finish its reply within %u ms (total timeout)",
                 provider, reply_deadline_ms(req));
    else
        snprintf(msg, sizeof msg, "provider %s: %s (%s)", provider, message, upstream_result_name(result));
    req->failure_status = status_for(result);
    attempt_failed(req, FAILED_TRANSPORT, attempt_result_of(result), 0, msg);
}

void pipeline_on_writable(request *req)
{
    if (req->upstream) upstream_resume(req->upstream);
}

void pipeline_abort(request *req)
{
    if (req->upstream) {
        upstream_cancel(req->upstream);
        req->upstream = NULL;
        /* The attempt ends here: its in-flight count and any half-open probe slot are given
         * back; the client leaving says nothing about the target's health. */
        route_report(req->walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
    }
    drop_other(req);
    if (!req->response_started) req->status = 499;
    req->error_note = "client closed the connection";
    pipeline_record(req);
}

/* ---- stage: record ----------------------------------------------------------------------- */

void pipeline_record(request *req)
{
    accesslog_writer *w = req->worker->access_log;
    buf *b = accesslog_line_begin(w);
    if (!b) return;
    size_t start = b->len;
    uint64_t now = time_now_ns();
    char when[40];
    time_format_utc(when, sizeof when);
    double ttfb_ms = req->first_byte_ns ? (double)(req->first_byte_ns - req->start_ns) / 1e6 : -1;
    double total_ms = (double)(now - req->start_ns) / 1e6;
    buf_printf(b, "{\"time\":\"%s\",\"request_id\":", when);
    accesslog_string(b, req->id, strlen(req->id));
    buf_printf(b, ",\"method\":\"%s\",\"path\":", req->method >= 0 ? http_method_str(req->method) : "-");
    accesslog_string(b, req->path ? req->path : "", req->path ? req->path_len : 0);
    buf_append_lit(b, ",\"model\":");
    if (req->model)
        accesslog_string(b, req->model, strlen(req->model));
    else
        buf_append_lit(b, "null");
    buf_append_lit(b, ",\"provider\":");
    if (req->route) {
        accesslog_string(b, req->route->provider->name, strlen(req->route->provider->name));
        buf_append_lit(b, ",\"upstream_model\":");
        accesslog_string(b, req->route->upstream_model, req->route->upstream_model_len);
    } else {
        buf_append_lit(b, "null");
    }
    if (req->ingress != WIRE_OPENAI) buf_append_lit(b, ",\"ingress\":\"anthropic\"");
    buf_printf(
        b,
        ",\"status\":%d,\"bytes_in\":%zu,\"bytes_out\":%zu,\"ttfb_ms\":%.3f,\"total_ms\":%.3f,\"stream\":%s",
        req->status, req->bytes_in, req->bytes_out, ttfb_ms, total_ms, req->stream ? "true" : "false");
    if (req->usage.seen) {
        const usage_counts *u = &req->usage;
        buf_printf(b,
                   ",\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"cached_tokens\":%ld,"
                   "\"cache_write_tokens\":%ld,\"reasoning_tokens\":%ld}",
                   u->prompt, u->completion, u->cached, u->cache_write, u->reasoning);
        double cost = provider_cost(req);
        if (cost >= 0) buf_printf(b, ",\"cost_usd\":%.10g", cost);
    }
    if (req->walk) {
        static const char *const outcome[] = {[ATTEMPT_OK] = "ok",
                                              [ATTEMPT_STATUS] = "error_status",
                                              [ATTEMPT_TIMEOUT] = "timeout",
                                              [ATTEMPT_CONNECT] = "connect_error",
                                              [ATTEMPT_BROKEN] = "broken",
                                              [ATTEMPT_SKIPPED] = "skipped",
                                              [ATTEMPT_CANCELLED] = "cancelled"};
        buf_append_lit(b, ",\"route\":");
        accesslog_string(b, route_tree_name(req->walk), strlen(route_tree_name(req->walk)));
        buf_append_lit(b, ",\"attempts\":[");
        for (const route_attempt_log *l = route_log(req->walk); l; l = l->next) {
            buf_append_lit(b, "{\"provider\":");
            accesslog_string(b, l->provider, strlen(l->provider));
            buf_append_lit(b, ",\"model\":");
            accesslog_string(b, l->model, strlen(l->model));
            buf_append_lit(b, ",\"path\":");
            accesslog_string(b, l->path, strlen(l->path));
            buf_printf(b, ",\"outcome\":\"%s\"", outcome[l->result]);
            if (l->status) buf_printf(b, ",\"status\":%d", l->status);
            if (l->result != ATTEMPT_SKIPPED) buf_printf(b, ",\"ms\":%.3f", l->ms);
            if (l->wait_ms) buf_printf(b, ",\"wait_ms\":%.0f", l->wait_ms);
            if (l->why) {
                buf_append_lit(b, ",\"note\":");
                accesslog_string(b, l->why, strlen(l->why));
            }
            buf_append(b, "},", l->next ? 2 : 1);
        }
        buf_append_lit(b, "]");
        const char *note = route_note(req->walk); /* a condition not run to its end */
        if (note) {
            buf_append_lit(b, ",\"route_note\":");
            buf_append_json_string(b, note, strlen(note));
        }
    }
    if (req->dropped_params) {
        buf_append_lit(b, ",\"dropped_params\":");
        accesslog_string(b, req->dropped_params, strlen(req->dropped_params));
    }
    if (req->error_note) {
        buf_append_lit(b, ",\"error\":");
        accesslog_string(b, req->error_note, strlen(req->error_note));
    }
    buf_append_lit(b, "}\n");
    if (accesslog_line_done(w, start)) return;
    /* Too long even with every value capped (a route with hundreds of attempts): the line
     * keeps what identifies the request. */
    b = accesslog_line_begin(w);
    start = b->len;
    buf_printf(b, "{\"time\":\"%s\",\"request_id\":", when);
    accesslog_string(b, req->id, strlen(req->id));
    buf_printf(b,
               ",\"status\":%d,\"total_ms\":%.3f,\"error\":\"access-log line too long; details left out\"}\n",
               req->status, total_ms);
    accesslog_line_done(w, start);
}
