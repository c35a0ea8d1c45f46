/* accept.c — the ACCEPT phase: method + path → endpoint, and the endpoints aigw answers itself.
 *
 * A proxied endpoint (chat completions, completions, embeddings, messages, count_tokens) sets
 * x->endpoint and goes on; /v1/models (OpenAI's list, or Anthropic's for a client that sends
 * anthropic-version), /v1/models/{id}, /healthz and /readyz answer here; anything else is a
 * 404, or a 405 for a known path with another method. HEAD is GET without the body (the server
 * leaves it out). */
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "access/access.h"
#include "pipeline/stages.h"
#include "providers/response_store.h"
#include "server/http_conn.h"
#include "server/server.h"

const char *served_model_name(const aigw_config *cfg, size_t i, const char **owner)
{
    if (i < cfg->ntrees) {
        if (owner) *owner = "aigw";
        return cfg->trees[i]->name;
    }
    const model_route *r = &cfg->routes[i - cfg->ntrees];
    if ((r > cfg->routes && !strcmp(r[-1].public_name, r->public_name)) ||
        config_find_route(cfg, r->public_name, strlen(r->public_name)))
        return NULL;
    if (owner) *owner = r->provider->name;
    return r->public_name;
}

/* The client speaks Anthropic's API: its SDKs send anthropic-version on every request. */
static bool wants_anthropic(const exchange *x)
{
    return exchange_header(x, "anthropic-version") != NULL;
}

/* One model object: OpenAI's {id, object, created, owned_by} or Anthropic's ModelInfo {type,
 * id, display_name, created_at} (the release date is unknown: the epoch, as Anthropic's
 * reference allows). */
static void append_model(buf *out, bool anthropic, const char *name, const char *owner)
{
    if (anthropic) {
        buf_append_lit(out, "{\"type\":\"model\",\"id\":");
        buf_append_json_string(out, name, strlen(name));
        buf_append_lit(out, ",\"display_name\":");
        buf_append_json_string(out, name, strlen(name));
        buf_append_lit(out, ",\"created_at\":\"1970-01-01T00:00:00Z\"}");
        return;
    }
    buf_append_lit(out, "{\"id\":");
    buf_append_json_string(out, name, strlen(name));
    buf_append_lit(out, ",\"object\":\"model\",\"created\":0,\"owned_by\":");
    buf_append_json_string(out, owner, strlen(owner));
    buf_append_lit(out, "}");
}

/* GET /v1/models: every public name once, in OpenAI's list shape, or Anthropic's (one page:
 * has_more false, first_id / last_id null when empty) for an Anthropic client. */
static stage_result answer_models(exchange *x)
{
    const aigw_config *cfg = x->config;
    bool anthropic = wants_anthropic(x);
    buf out;
    buf_init(&out, 16 * 1024 * 1024);
    if (anthropic)
        buf_append_lit(&out, "{\"data\":[");
    else
        buf_append_lit(&out, "{\"object\":\"list\",\"data\":[");
    const char *first = NULL, *last = NULL;
    for (size_t i = 0; i < cfg->ntrees + cfg->nroutes; i++) {
        const char *owner, *name = served_model_name(cfg, i, &owner);
        if (!name || !auth_model_allowed(x, name, strlen(name))) continue;
        if (first) buf_append_lit(&out, ",");
        if (!first) first = name;
        last = name;
        append_model(&out, anthropic, name, owner);
    }
    buf_append_lit(&out, "]");
    if (anthropic) {
        buf_append_lit(&out, ",\"has_more\":false,\"first_id\":");
        if (first)
            buf_append_json_string(&out, first, strlen(first));
        else
            buf_append_lit(&out, "null");
        buf_append_lit(&out, ",\"last_id\":");
        if (last)
            buf_append_json_string(&out, last, strlen(last));
        else
            buf_append_lit(&out, "null");
    }
    buf_append_lit(&out, "}");
    exchange_respond(x, 200, "application/json", NULL, 0, out.data, out.len);
    buf_free(&out);
    return STAGE_DONE;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

#define MODEL_ID_MAX 256 /* the longest model name decode.c accepts */

/* GET /v1/models/{id}: the model object, or a 404 in the client's API shape. The id is
 * percent-decoded (a name with a slash arrives as %2F, or as is). */
static stage_result answer_model(exchange *x)
{
    const char *enc = x->http->path + sizeof "/v1/models/" - 1;
    char id[MODEL_ID_MAX + 1];
    size_t n = 0;
    bool valid = *enc != '\0';
    for (const char *p = enc; *p && valid; p++) {
        char c = *p;
        if (c == '%' && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
            c = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
            p += 2;
        }
        if (n == MODEL_ID_MAX || (unsigned char)c < 0x20 || c == 0x7f)
            valid = false;
        else
            id[n++] = c;
    }
    id[n] = '\0';
    bool anthropic = wants_anthropic(x);
    const aigw_config *cfg = x->config;
    for (size_t i = 0; valid && i < cfg->ntrees + cfg->nroutes; i++) {
        const char *owner, *name = served_model_name(cfg, i, &owner);
        if (!name || strcmp(name, id) != 0) continue;
        if (!auth_model_allowed(x, name, strlen(name))) {
            if (anthropic) x->ingress = WIRE_ANTHROPIC;
            char msg[400];
            snprintf(msg, sizeof msg, "This gateway key may not use the model `%.256s`", id);
            x->rejection = REJECT_FORBIDDEN_MODEL;
            auth_refuse(x, 403, "model_not_allowed", "model", msg);
            return STAGE_DONE;
        }
        buf out;
        buf_init(&out, 4096);
        append_model(&out, anthropic, name, owner);
        exchange_respond(x, 200, "application/json", NULL, 0, out.data, out.len);
        buf_free(&out);
        return STAGE_DONE;
    }
    if (anthropic) { /* the 404 in the shape the client reads, with the request-id it reads */
        x->ingress = WIRE_ANTHROPIC;
        exchange_set_head(x, NULL, 0);
    }
    char msg[400];
    if (valid)
        snprintf(msg, sizeof msg, "The model `%.256s` does not exist or is not served by this gateway", id);
    else
        snprintf(msg, sizeof msg, "The model does not exist or is not served by this gateway");
    exchange_error(x, 404, anthropic ? "not_found_error" : "invalid_request_error", "model_not_found",
                   "model", msg);
    return STAGE_DONE;
}

/* GET and DELETE /v1/responses/{id}: a response aigw made by translation, from the response
 * store (one a provider served itself is that provider's to give). */
static stage_result answer_response(exchange *x, bool delete)
{
    const char *id = x->http->path + sizeof "/v1/responses/" - 1;
    bool valid = *id && strlen(id) <= RESPONSE_ID_MAX;
    for (const char *p = id; *p && valid; p++)
        valid = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '_' || *p == '-';
    char *response = NULL;
    size_t len = 0;
    const char *tenant = exchange_tenant(x);
    bool found = valid && (delete ? response_store_delete(tenant, id)
                                  : response_store_get(tenant, id, x->arena, NULL, NULL, &response, &len));
    if (!found) {
        char msg[160];
        snprintf(msg, sizeof msg, "Response with id '%.64s' not found.", valid ? id : "");
        exchange_error(x, 404, "invalid_request_error", "not_found", NULL, msg);
        return STAGE_DONE;
    }
    if (!delete) {
        exchange_respond(x, 200, "application/json", NULL, 0, response, len);
        return STAGE_DONE;
    }
    buf out;
    buf_init(&out, 256);
    buf_append_lit(&out, "{\"id\":");
    buf_append_json_string(&out, id, strlen(id));
    buf_append_lit(&out, ",\"object\":\"response\",\"deleted\":true}");
    exchange_respond(x, 200, "application/json", NULL, 0, out.data, out.len);
    buf_free(&out);
    return STAGE_DONE;
}

static stage_result answer_response_get(exchange *x)
{
    return answer_response(x, false);
}

static stage_result answer_response_delete(exchange *x)
{
    return answer_response(x, true);
}

static stage_result answer_healthz(exchange *x)
{
    static const char body[] = "{\"status\":\"ok\"}";
    exchange_respond(x, 200, "application/json", NULL, 0, body, sizeof body - 1);
    return STAGE_DONE;
}

static stage_result answer_readyz(exchange *x)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char not_ready[] = "{\"status\":\"not ready\"}";
    if (server_is_ready(pipeline_server(x->pw)))
        exchange_respond(x, 200, "application/json", NULL, 0, ready, sizeof ready - 1);
    else
        exchange_respond(x, 503, "application/json", NULL, 0, not_ready, sizeof not_ready - 1);
    return STAGE_DONE;
}

typedef struct endpoint_row {
    int method;
    const char *path;
    int endpoint;                        /* endpoint_kind for proxied endpoints, -1 for local ones */
    stage_result (*answer)(exchange *x); /* local ones: DONE, or AGAIN holding a ticket */
    bool keyed;                          /* a local answer that depends on the gateway key: after AUTH */
} endpoint_row;

static const endpoint_row endpoints[] = {
    {HTTP_POST, "/v1/chat/completions", ENDPOINT_CHAT_COMPLETIONS, NULL, false},
    {HTTP_POST, "/v1/completions", ENDPOINT_COMPLETIONS, NULL, false},
    {HTTP_POST, "/v1/embeddings", ENDPOINT_EMBEDDINGS, NULL, false},
    {HTTP_POST, "/v1/messages", ENDPOINT_MESSAGES, NULL, false},
    {HTTP_POST, "/v1/messages/count_tokens", ENDPOINT_COUNT_TOKENS, NULL, false},
    {HTTP_POST, "/v1/responses", ENDPOINT_RESPONSES, NULL, false},
    {HTTP_GET, "/v1/models", -1, answer_models, true},
    {HTTP_GET, "/healthz", -1, answer_healthz, false},
    {HTTP_GET, "/readyz", -1, answer_readyz, false},
    {HTTP_GET, "/metrics", -1, answer_metrics, true},
};

/* A local answer waiting for AUTH (stage_local gives it). */
typedef struct accept_state {
    stage_result (*answer)(exchange *x);
} accept_state;

/* Answers now, or — when auth is on and the answer depends on the key — after AUTH. An
 * Anthropic client's refusal then takes its shape. */
static stage_result answer_local(exchange *x, accept_state *as, stage_result (*answer)(exchange *x),
                                 bool keyed)
{
    if (keyed && x->config->auth.mode == AUTH_ON) {
        if (wants_anthropic(x)) x->ingress = WIRE_ANTHROPIC;
        as->answer = answer;
        return STAGE_NEXT;
    }
    return answer(x);
}

static stage_result accept_on_request(exchange *x, void *state)
{
    const http_request *req = x->http;
    bool path_known = false;
    int method = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    if (!strncmp(req->path, "/v1/models/", sizeof "/v1/models/" - 1)) {
        if (method != HTTP_GET) {
            exchange_error(x, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "only GET is allowed on /v1/models/{model}");
            return STAGE_DONE;
        }
        x->endpoint = -1;
        return answer_local(x, state, answer_model, true);
    }
    if (!strncmp(req->path, "/v1/responses/", sizeof "/v1/responses/" - 1)) {
        if (method != HTTP_GET && method != HTTP_DELETE) {
            exchange_error(x, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "only GET and DELETE are allowed on /v1/responses/{id}");
            return STAGE_DONE;
        }
        x->endpoint = -1; /* the key's own responses only: after AUTH */
        return answer_local(x, state, method == HTTP_GET ? answer_response_get : answer_response_delete,
                            true);
    }
    if (!strncmp(req->path, "/v1/prompts/", sizeof "/v1/prompts/" - 1)) {
        /* /v1/prompts/{id}/completions and /render: a chat request the PROMPT stage makes */
        const char *id = req->path + sizeof "/v1/prompts/" - 1, *slash = strchr(id, '/');
        bool render = slash && !strcmp(slash, "/render");
        if (slash && slash > id && slash - id <= 300 && (render || !strcmp(slash, "/completions"))) {
            if (method != HTTP_POST) {
                exchange_error(x, 405, "invalid_request_error", "method_not_allowed", NULL,
                               "only POST is allowed on /v1/prompts/{id}/completions and /render");
                return STAGE_DONE;
            }
            x->endpoint = ENDPOINT_CHAT_COMPLETIONS;
            x->prompt_ref = arena_strndup(x->arena, id, (size_t)(slash - id));
            x->prompt_render_only = render;
            return STAGE_NEXT;
        }
    }
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint_row *e = &endpoints[i];
        if (strcmp(req->path, e->path) != 0) continue;
        path_known = true;
        if (e->method != method) continue;
        x->endpoint = e->endpoint;
        if (e->endpoint == ENDPOINT_CHAT_COMPLETIONS || e->endpoint == ENDPOINT_MESSAGES) {
            /* x-aigw-prompt: id[@label|@version] — the PROMPT stage renders the template into
             * this chat or messages request (prompt_stage.c) */
            const http_header *ref = exchange_header(x, "x-aigw-prompt");
            if (ref) {
                size_t ref_len = ref->value_len;
                if (ref_len == 0 || ref_len > 300) {
                    exchange_error(x, 400, "invalid_request_error", "invalid_value", "x-aigw-prompt",
                                   "x-aigw-prompt must be id, id@label or id@version (at most 300 bytes)");
                    return STAGE_DONE;
                }
                x->prompt_ref = arena_strndup(x->arena, ref->value, ref_len);
                x->prompt_from_header = true;
            }
        }
        if (!e->answer) return STAGE_NEXT;
        return answer_local(x, state, e->answer, e->keyed);
    }
    char msg[256];
    if (path_known) {
        snprintf(msg, sizeof msg, "method %s is not allowed on %.150s", http_method_str(req->method),
                 req->path);
        exchange_error(x, 405, "invalid_request_error", "method_not_allowed", NULL, msg);
    } else {
        snprintf(msg, sizeof msg, "unknown path %.200s", req->path);
        exchange_error(x, 404, "invalid_request_error", "not_found", NULL, msg);
    }
    return STAGE_DONE;
}

const stage stage_accept = {
    .name = "endpoint",
    .phase = PHASE_ACCEPT,
    .state_size = sizeof(accept_state),
    .on_request = accept_on_request,
};

static stage_result local_on_request(exchange *x, void *state)
{
    accept_state *as = exchange_state(x, &stage_accept);
    if (!as->answer) return STAGE_DECLINED;
    return as->answer(x);
}

const stage stage_local = {
    .name = "local-answer",
    .phase = PHASE_AUTH,
    .on_request = local_on_request,
};
