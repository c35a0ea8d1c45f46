/* accept.c — the ACCEPT phase: method + path → endpoint, and the endpoints aigw answers itself.
 *
 * A proxied endpoint (chat completions, completions, embeddings, messages, count_tokens) sets
 * x->endpoint and goes on; /v1/models, /healthz and /readyz answer here; anything else is a
 * 404, or a 405 for a known path with another method. HEAD is GET without the body (the server
 * leaves it out). */
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "pipeline/stages.h"
#include "server/http_conn.h"
#include "server/server.h"

static void answer_models(exchange *x)
{
    const aigw_config *cfg = x->config;
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
    exchange_respond(x, 200, "application/json", NULL, 0, out.data, out.len);
    buf_free(&out);
}

static void answer_healthz(exchange *x)
{
    static const char body[] = "{\"status\":\"ok\"}";
    exchange_respond(x, 200, "application/json", NULL, 0, body, sizeof body - 1);
}

static void answer_readyz(exchange *x)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char not_ready[] = "{\"status\":\"not ready\"}";
    if (server_is_ready(pipeline_server(x->pw)))
        exchange_respond(x, 200, "application/json", NULL, 0, ready, sizeof ready - 1);
    else
        exchange_respond(x, 503, "application/json", NULL, 0, not_ready, sizeof not_ready - 1);
}

typedef struct endpoint_row {
    int method;
    const char *path;
    int endpoint;                /* endpoint_kind for proxied endpoints, -1 for local ones */
    void (*answer)(exchange *x); /* local ones */
} endpoint_row;

static const endpoint_row endpoints[] = {
    {HTTP_POST, "/v1/chat/completions", ENDPOINT_CHAT_COMPLETIONS, NULL},
    {HTTP_POST, "/v1/completions", ENDPOINT_COMPLETIONS, NULL},
    {HTTP_POST, "/v1/embeddings", ENDPOINT_EMBEDDINGS, NULL},
    {HTTP_POST, "/v1/messages", ENDPOINT_MESSAGES, NULL},
    {HTTP_POST, "/v1/messages/count_tokens", ENDPOINT_COUNT_TOKENS, NULL},
    {HTTP_GET, "/v1/models", -1, answer_models},
    {HTTP_GET, "/healthz", -1, answer_healthz},
    {HTTP_GET, "/readyz", -1, answer_readyz},
};

static stage_result accept_on_request(exchange *x, void *state)
{
    const http_request *req = x->http;
    bool path_known = false;
    int method = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint_row *e = &endpoints[i];
        if (strcmp(req->path, e->path) != 0) continue;
        path_known = true;
        if (e->method != method) continue;
        x->endpoint = e->endpoint;
        if (!e->answer) return STAGE_NEXT;
        e->answer(x);
        return STAGE_DONE;
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
    .on_request = accept_on_request,
};
