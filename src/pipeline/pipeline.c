/* pipeline.c — the request's stages, in the order they run; see pipeline.h.
 *
 * Data flows one way: the parsed request → route → decode → plan → encode → attempt (the
 * upstream call) → answer (its callbacks) → record. A stage that waits (the upstream) returns
 * and is resumed by a callback; nothing here blocks the loop. Per-request state lives in the
 * request object (server/request.h) and its arena.
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

#include "observe/accesslog.h"
#include "providers/provider.h"
#include "server/http_conn.h"
#include "server/server.h"
#include "server/worker.h"
#include "upstream/upstream.h"
#include "util/json.h"
#include "util/timeutil.h"

#define SSE_EVENT_MAX (8 * 1024 * 1024)

/* ---- request state -------------------------------------------------------------------- */

void pipeline_request_init(request *req)
{
    req->endpoint = -1;
    buf_init(&req->upstream_reply, 0);
    buf_init(&req->stream_out, SSE_EVENT_MAX * 2);
    sse_reader_init(&req->sse, SSE_EVENT_MAX);
}

void pipeline_request_reset(request *req)
{
    req->endpoint = -1;
    req->model = NULL;
    req->route = NULL;
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
}

void pipeline_request_free(request *req)
{
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
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const model_route *r = &cfg->routes[i];
        if (i) buf_append_lit(&out, ",");
        buf_append_lit(&out, "{\"id\":");
        buf_append_json_string(&out, r->public_name, strlen(r->public_name));
        buf_append_lit(&out, ",\"object\":\"model\",\"created\":0,\"owned_by\":");
        buf_append_json_string(&out, r->provider->name, strlen(r->provider->name));
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
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        const endpoint_row *e = &endpoints[i];
        if (strcmp(req->path, e->path) != 0) continue;
        path_known = true;
        if (e->method != req->method) continue;
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

/* ---- stage: decode, plan, encode, attempt ------------------------------------------------ */

static void stage_attempt(request *req, const provider_request *preq);

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
    req->stream = fields[1].type == JSON_KIND_TRUE;

    /* plan: one target per model today; routing strategies replace this lookup later. */
    req->route = config_find_model(req->worker->config, req->model, model_len);
    if (!req->route) {
        char msg[320];
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist or is not served by this gateway",
                 req->model);
        http_respond_error(req, 404, "invalid_request_error", "model_not_found", "model", msg);
        return;
    }

    if (req->endpoint == ENDPOINT_COUNT_TOKENS && req->route->provider->preset->format != WIRE_ANTHROPIC) {
        /* The provider cannot count: an estimate from the text, marked as one. */
        buf out;
        buf_init(&out, 64);
        provider_estimate_tokens(req, &out);
        static const char marker[] = "x-aigw-estimate: true\r\n";
        http_respond(req, 200, "application/json", marker, sizeof marker - 1, out.data, out.len);
        buf_free(&out);
        return;
    }

    /* encode */
    provider_request preq;
    provider_error err;
    if (!provider_encode(req, fields[0].start, fields[0].end, &preq, &err)) {
        http_respond_error(req, err.status, err.type, err.code, err.param, err.message);
        return;
    }
    stage_attempt(req, &preq);
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

/* The body and headers curl sends live in the request (its body or arena) until the request
 * is reset, which happens only after the transfer has ended or been cancelled. */
static void stage_attempt(request *req, const provider_request *preq)
{
    const provider_config *p = req->route->provider;
    upstream_request ureq = {
        .url = preq->url,
        .body = preq->body,
        .body_len = preq->body_len,
        .headers = preq->headers,
        .connect_timeout_ms = p->connect_timeout_ms,
        .first_byte_timeout_ms = p->first_byte_timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
    };
    req->upstream_reply.max = req->worker->config->max_response_bytes;
    req->upstream = upstream_start(req->worker->upstream, &ureq, &upstream_cbs, req);
    if (!req->upstream)
        http_respond_error(req, 502, "server_error", "upstream_error", NULL,
                           "could not start the upstream request");
}

/* ---- stage: answer ----------------------------------------------------------------------- */

/* Upstream response headers a client may rely on (rate limits, retry hints). */
static bool header_passes(const char *line, size_t name_len)
{
    static const char *const exact[] = {"retry-after",          "retry-after-ms", "x-should-retry",
                                        "openai-processing-ms", "openai-version", "openai-organization"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == name_len && !strncasecmp(line, exact[i], name_len)) return true;
    return (name_len > 12 && !strncasecmp(line, "x-ratelimit-", 12)) ||
           (name_len > 20 && !strncasecmp(line, "anthropic-ratelimit-", 20));
}

static bool on_upstream_head(void *ud, int status, const char *const *lines, size_t nlines)
{
    request *req = ud;
    const char *content_type = "application/json";
    size_t total = req->dropped_params ? strlen(req->dropped_params) + 32 : 0;
    for (size_t i = 0; i < nlines; i++)
        total += strlen(lines[i]) + 32;
    char *pass = arena_alloc(&req->arena, total + 1);
    size_t plen = 0;
    for (size_t i = 0; i < nlines; i++) {
        const char *line = lines[i];
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        size_t nlen = (size_t)(colon - line);
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (nlen == 12 && !strncasecmp(line, "content-type", 12)) {
            content_type = arena_strndup(&req->arena, value, strlen(value));
        } else if (nlen == 12 && !strncasecmp(line, "x-request-id", 12)) {
            int n = snprintf(pass + plen, total + 1 - plen, "x-upstream-request-id: %s\r\n", value);
            if (n > 0) plen += (size_t)n;
        } else if (header_passes(line, nlen)) {
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
    if (status >= 200 && status < 300 && !strncasecmp(content_type, "text/event-stream", 17)) {
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
    request *req = ud;
    if (!req->chunked) {
        return buf_append(&req->upstream_reply, data, len) == BUF_OK ? UPSTREAM_DATA_OK : UPSTREAM_DATA_ABORT;
    }
    /* Whole events gather in stream_out; on_upstream_flush sends them once per socket read. */
    if (!sse_reader_feed(&req->sse, data, len, on_sse_event, req)) return UPSTREAM_DATA_ABORT;
    /* After an in-band error the provider has nothing more to say that the client can use. */
    return req->stream_error ? UPSTREAM_DATA_ABORT : UPSTREAM_DATA_OK;
}

static bool on_upstream_flush(void *ud)
{
    request *req = ud;
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
    case UPSTREAM_IDLE_TIMEOUT: return 504;
    default: return 502;
    }
}

static void on_upstream_done(void *ud, upstream_result result, const char *message)
{
    request *req = ud;
    req->upstream = NULL;
    const char *provider = req->route->provider->name;
    char msg[512];
    if (req->chunked) {
        /* Events still gathered go out with the end (or before the error). */
        buf *out = &req->stream_out;
        /* After the end marker the answer is complete, whatever the transport says next. */
        if (!req->stream_error &&
            (req->stream_done_seen || (result == UPSTREAM_OK && provider_stream_finish(req, out)))) {
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
        /* A partial event from the upstream is dropped so the error starts on a boundary; a
         * blank line first ends any event the client may still be assembling. */
        if (sse_reader_has_partial(&req->sse)) buf_append_lit(out, "\n");
        provider_stream_error(req, out, msg);
        req->error_note = arena_strndup(&req->arena, msg, strlen(msg));
        http_stream_end(req, out->data, out->len);
        return;
    }
    if (result == UPSTREAM_OK && req->status) {
        const char *body = req->upstream_reply.data ? req->upstream_reply.data : "";
        buf translated;
        buf_init(&translated, req->worker->config->max_response_bytes * 2);
        const char *type =
            provider_translate_reply(req, req->status, body, req->upstream_reply.len, &translated);
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
        return;
    }
    if (result == UPSTREAM_TOO_LARGE)
        snprintf(msg, sizeof msg, "provider %s sent a reply larger than limits.max_response_bytes", provider);
    else
        snprintf(msg, sizeof msg, "provider %s: %s (%s)", provider, message, upstream_result_name(result));
    http_respond_error(req, status_for(result), "server_error",
                       status_for(result) == 504 ? "upstream_timeout" : "upstream_error", NULL, msg);
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
    }
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
    buf_append_json_string(b, req->id, strlen(req->id));
    buf_printf(b, ",\"method\":\"%s\",\"path\":", req->method >= 0 ? http_method_str(req->method) : "-");
    buf_append_json_string(b, req->path ? req->path : "", req->path ? req->path_len : 0);
    buf_append_lit(b, ",\"model\":");
    if (req->model)
        buf_append_json_string(b, req->model, strlen(req->model));
    else
        buf_append_lit(b, "null");
    buf_append_lit(b, ",\"provider\":");
    if (req->route) {
        buf_append_json_string(b, req->route->provider->name, strlen(req->route->provider->name));
        buf_append_lit(b, ",\"upstream_model\":");
        buf_append_json_string(b, req->route->upstream_model, req->route->upstream_model_len);
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
    if (req->dropped_params) {
        buf_append_lit(b, ",\"dropped_params\":");
        buf_append_json_string(b, req->dropped_params, strlen(req->dropped_params));
    }
    if (req->error_note) {
        buf_append_lit(b, ",\"error\":");
        buf_append_json_string(b, req->error_note, strlen(req->error_note));
    }
    buf_append_lit(b, "}\n");
    accesslog_line_done(w, start);
}
