/* openai.c — the OpenAI-compatible wire format (the canonical one): the fast path.
 *
 * No JSON is re-serialized: when the public model name is an alias the body is rebuilt as
 * prefix + new model string + suffix (one copy into the arena); otherwise the client's bytes
 * go upstream as they are. Headers are arena-allocated curl_slist nodes chained in front of
 * the provider's prepared list, so a request costs no malloc here. */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "server/http_conn.h"

static struct curl_slist *arena_header(request *req, struct curl_slist *next, const char *fmt_name,
                                       const char *value, size_t value_len)
{
    size_t nlen = strlen(fmt_name);
    char *line = arena_alloc(&req->arena, nlen + 2 + value_len + 1);
    memcpy(line, fmt_name, nlen);
    memcpy(line + nlen, ": ", 2);
    memcpy(line + nlen + 2, value, value_len);
    line[nlen + 2 + value_len] = '\0';
    struct curl_slist *node = arena_alloc(&req->arena, sizeof *node);
    node->data = line;
    node->next = next;
    return node;
}

void provider_encode(request *req, endpoint_kind endpoint, size_t model_start, size_t model_end,
                     provider_request *out)
{
    const model_route *route = req->route;
    const provider_config *p = route->provider;
    out->url = p->urls[endpoint];

    if (route->is_alias) {
        /* Replace the model's JSON string; upstream names in config are plain text. */
        buf quoted;
        buf_init(&quoted, route->upstream_model_len * 6 + 2);
        buf_append_json_string(&quoted, route->upstream_model, route->upstream_model_len);
        size_t len = model_start + quoted.len + (req->body.len - model_end);
        char *body = arena_alloc(&req->arena, len + 1);
        memcpy(body, req->body.data, model_start);
        memcpy(body + model_start, quoted.data, quoted.len);
        memcpy(body + model_start + quoted.len, req->body.data + model_end, req->body.len - model_end);
        body[len] = '\0';
        buf_free(&quoted);
        out->body = body;
        out->body_len = len;
    } else {
        out->body = req->body.data;
        out->body_len = req->body.len;
    }

    struct curl_slist *h = p->static_headers;
    if (!p->api_key) {
        const http_header *auth = http_find_header(req, "authorization");
        if (auth) h = arena_header(req, h, "Authorization", auth->value, auth->value_len);
    }
    h = arena_header(req, h, "x-request-id", req->id, strlen(req->id));
    out->headers = h;
}
