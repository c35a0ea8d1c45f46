/* attempt.c — one upstream call for an exchange; see attempt.h.
 *
 * The body sent is the client's, with the target's override_params set at the top level and
 * the model spliced by the providers module (encode). The reply comes back through the
 * upstream client's callbacks: the head is checked here (what aigw refuses — a redirect, an
 * encoded body, an invalid status — ends the attempt as a failure before any sink sees it),
 * stream bytes are framed into whole SSE events (upstream/sse.h) and each is forwarded or
 * translated for the client (provider_stream_event) into a->events, which the sink gets once
 * per upstream read; a buffered reply gathers in a->reply (bounded by max_response_bytes). */
#include "pipeline/attempt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pipeline/stages.h"
#include "providers/provider.h"
#include "upstream/upstream.h"
#include "util/json.h"
#include "util/timeutil.h"

#define SSE_EVENT_MAX (8 * 1024 * 1024)
#define STREAM_GATHER_MAX (16 * 1024) /* client events gathered in one round before they are written */

/* The provider + upstream model of a target: an implicit route's own, or made for it. */
static const model_route *target_route(exchange *x, const route_node *leaf)
{
    const model_route *known = leaf->route;
    if (known && (!known->is_alias || strcmp(known->upstream_model, x->model) != 0)) return known;
    model_route *r = arena_alloc(x->arena, sizeof *r);
    if (known) { /* the client asked for the upstream model's own name: nothing to splice */
        *r = *known;
        r->is_alias = false;
        return r;
    }
    config_route_fill(x->config, r, leaf->provider, x->model, leaf->model ? leaf->model : x->model);
    return r;
}

attempt *attempt_new(exchange *x, const route_target *target, const attempt_sink *sink, void *sink_data)
{
    attempt *a = arena_alloc(x->arena, sizeof *a);
    memset(a, 0, sizeof *a);
    a->x = x;
    a->sink = sink;
    a->sink_data = sink_data;
    a->target = *target;
    a->target.route = target_route(x, target->leaf);
    a->custom_host = target->leaf->custom_host != NULL;
    a->retry_after_ms = -1;
    a->next = x->attempts;
    x->attempts = a;
    /* the buffers of an ended attempt, when there is one (keep-alive reuse) */
    a->reply = x->spare_reply;
    a->events = x->spare_events;
    buf_init(&x->spare_reply, 0);
    buf_init(&x->spare_events, 0);
    a->reply.max = x->config->max_response_bytes;
    a->events.max = SSE_EVENT_MAX * 2;
    sse_reader_init(&a->sse, SSE_EVENT_MAX);

    codec_ctx *c = &a->codec;
    http_request *req = x->http;
    c->arena = x->arena;
    c->request_id = req->id;
    c->ingress = x->ingress;
    c->endpoint = x->endpoint;
    c->stream = x->stream;
    c->route = a->target.route;
    c->body = req->body.data ? req->body.data : "";
    c->body_len = req->body.len;
    c->headers = req->headers;
    c->nheaders = req->nheaders;
    c->gateway_auth = x->config->auth.mode == AUTH_ON;
    c->tenant = exchange_tenant(x);
    a->model_start = x->body_model_start;
    a->model_end = x->body_model_end;
    return a;
}

attempt *attempt_new_request(exchange *x, const route_target *target, const attempt_sink *sink,
                             void *sink_data, int endpoint, const char *model, const char *body,
                             size_t body_len)
{
    /* the route of an implicit leaf is named after the request's model: this one's, for now */
    const char *saved_model = x->model;
    size_t saved_len = x->model_len;
    x->model = model;
    x->model_len = strlen(model);
    attempt *a = attempt_new(x, target, sink, sink_data);
    x->model = saved_model;
    x->model_len = saved_len;
    a->internal = true;
    codec_ctx *c = &a->codec;
    c->ingress = WIRE_OPENAI;
    c->endpoint = endpoint;
    c->stream = false;
    c->body = body;
    c->body_len = body_len;
    json_field f = {.key = "model"};
    const char *why;
    size_t at;
    if (json_scan_object(body, body_len, &f, 1, &why, &at) && f.type) {
        a->model_start = f.start;
        a->model_end = f.end;
    }
    return a;
}

/* The client's body with the target's override_params set at the top level (replaced where
 * the body has them, added where not), and the model's span in it found again. */
static bool apply_overrides(attempt *a, const route_node *leaf)
{
    codec_ctx *c = &a->codec;
    size_t n = leaf->noverrides;
    json_field *fields = arena_alloc(c->arena, (n + 1) * sizeof *fields);
    memset(fields, 0, (n + 1) * sizeof *fields);
    const char **values = arena_alloc(c->arena, (n + 1) * sizeof *values);
    for (size_t i = 0; i < n; i++) {
        fields[i].key = leaf->overrides[i].key;
        values[i] = leaf->overrides[i].value;
    }
    const char *why;
    size_t at;
    if (!json_scan_object(c->body, c->body_len, fields, n, &why, &at)) return false;
    size_t room = c->body_len + 16;
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
        buf_append(&out, c->body + pos, fields[next].start - pos);
        buf_append(&out, values[next], strlen(values[next]));
        pos = fields[next].end;
    }
    size_t close = c->body_len;
    while (close > pos && c->body[close - 1] != '}')
        close--;
    buf_append(&out, c->body + pos, close - 1 - pos);
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
    buf_append(&out, c->body + close - 1, c->body_len - (close - 1));
    c->payload = arena_strndup(c->arena, out.data ? out.data : "", out.len);
    c->payload_len = out.len;
    buf_free(&out);
    json_field model = {.key = "model"};
    if (!json_scan_object(c->payload, c->payload_len, &model, 1, &why, &at)) return false;
    c->model_start = model.start;
    c->model_end = model.end;
    return true;
}

/* The key of a provider that takes it from a virtual key, from the snapshot the request holds.
 * False with a->local_error: the virtual key is gone (another target may serve: 503), or the
 * gateway key may not use it (403, for the whole request). */
static bool virtual_key_credential(attempt *a, const provider_config *p)
{
    exchange *x = a->x;
    const char *secret;
    size_t len;
    auth_vkey_result r = auth_virtual_key(x, p->virtual_key, &secret, &len);
    if (r == AUTH_VKEY_OK) {
        a->codec.provider_key = secret;
        a->codec.provider_key_len = len;
        return true;
    }
    provider_error *e = arena_alloc(x->arena, sizeof *e);
    memset(e, 0, sizeof *e);
    if (r == AUTH_VKEY_NOT_ALLOWED) {
        x->rejection = REJECT_FORBIDDEN_VIRTUAL_KEY;
        *e = (provider_error){.status = 403,
                              .type = "permission_error",
                              .code = "virtual_key_not_allowed",
                              .whole_request = true};
        snprintf(e->message, sizeof e->message, "This gateway key may not use the virtual key `%.300s`",
                 p->virtual_key);
    } else {
        *e = (provider_error){.status = 503, .type = "server_error", .code = "virtual_key_missing"};
        snprintf(e->message, sizeof e->message,
                 "the virtual key `%.200s` is not in the gateway's store (provider %.100s)", p->virtual_key,
                 p->name);
    }
    a->local_error = e;
    a->message = e->message;
    return false;
}

attempt_prep attempt_prepare(attempt *a)
{
    exchange *x = a->x;
    codec_ctx *c = &a->codec;
    const model_route *route = a->target.route;
    const provider_config *p = route->provider;
    if (c->endpoint == ENDPOINT_COUNT_TOKENS && !provider_counts_tokens(p)) return PREP_LOCAL_ANSWER;
    /* This provider's URL names the model: only a plain name can go there. */
    if (provider_url_names_model(p) &&
        strspn(route->upstream_model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            route->upstream_model_len) {
        a->message = "the model name cannot be part of this provider's URL";
        return PREP_REFUSED;
    }
    c->payload = c->body;
    c->payload_len = c->body_len;
    c->model_start = a->model_start;
    c->model_end = a->model_end;
    if (a->target.leaf->noverrides && !apply_overrides(a, a->target.leaf)) {
        a->message = "override_params could not be merged";
        return PREP_REFUSED;
    }
    if (p->virtual_key && !virtual_key_credential(a, p))
        return a->local_error->whole_request ? PREP_UNREADABLE : PREP_REFUSED;
    provider_error err;
    uint64_t t0 = x->trace.sampled ? time_now_ns() : 0;
    bool encoded = provider_encode(c, &a->request, &err);
    if (t0 && c->xlate) {
        a->encode_start_ns = t0;
        a->encode_ns = time_now_ns() - t0;
    }
    if (!encoded) {
        a->local_error = arena_alloc(x->arena, sizeof err);
        *a->local_error = err;
        a->message = a->local_error->message;
        return err.whole_request ? PREP_UNREADABLE : PREP_REFUSED;
    }
    trace_attempt_headers(x, a);
    return PREP_READY;
}

/* ---- the reply ---------------------------------------------------------------------------- */

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

static void attempt_end(attempt *a, attempt_outcome outcome, attempt_result result);

static bool on_upstream_head(void *ud, int status, const char *const *lines, size_t nlines)
{
    attempt *a = ud;
    a->head_ns = time_now_ns();
    a->status = status;
    const char *content_type = "application/json";
    const char *dropped = a->codec.dropped_params;
    size_t total = dropped ? strlen(dropped) + 32 : 0;
    for (size_t i = 0; i < nlines; i++)
        total += strlen(lines[i]) + 32;
    char *pass = arena_alloc(a->x->arena, total + 1);
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
            if (header_value_visible(value)) content_type = arena_strndup(a->x->arena, value, strlen(value));
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
    if (dropped)
        plen += (size_t)snprintf(pass + plen, total + 1 - plen, "x-aigw-dropped-params: %s\r\n", dropped);
    pass[plen] = '\0';
    a->pass_headers = pass;
    a->pass_headers_len = plen;
    a->content_type = content_type;
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
        char msg[300];
        snprintf(msg, sizeof msg, "provider %s %s", a->target.route->provider->name, why);
        a->message = arena_strndup(a->x->arena, msg, strlen(msg));
        a->failure_status = 502;
        return false; /* on_upstream_done ends it as refused */
    }
    a->is_stream = status >= 200 && status < 300 && !strncasecmp(content_type, "text/event-stream", 17);
    a->head_lines = lines;
    a->head_nlines = nlines;
    /* the sink may answer here and end the request: a is not touched after it unless it says
     * the transfer ends */
    bool go_on = a->sink->on_head(a);
    if (!go_on) {
        upstream_cancel(a->call);
        a->call = NULL;
        a->outcome = ATTEMPT_STOPPED;
        a->result = ATTEMPT_CANCELLED;
    }
    return go_on;
}

/* Each whole upstream event: forwarded, or translated into the client's events. Events after
 * the end marker or an in-band error are ignored. */
static void on_sse_event(void *ud, const char *raw, size_t len)
{
    attempt *a = ud;
    if (a->stream_done_seen || a->stream_error) return;
    const char *message = NULL;
    uint64_t t0 = a->encode_start_ns ? time_now_ns() : 0; /* a traced translation: timed */
    switch (provider_stream_event(&a->codec, raw, len, &a->events, &message)) {
    case STREAM_DONE: a->stream_done_seen = true; break;
    case STREAM_FAILED: a->stream_error = message ? message : "provider stream error"; break;
    case STREAM_MORE: break;
    }
    if (t0) a->decode_ns += time_now_ns() - t0;
}

static int on_upstream_data(void *ud, const char *data, size_t len)
{
    attempt *a = ud;
    if (!a->is_stream)
        return buf_append(&a->reply, data, len) == BUF_OK ? UPSTREAM_DATA_OK : UPSTREAM_DATA_ABORT;
    /* Whole events gather in a->events; on_upstream_flush hands them over once per read. */
    if (!sse_reader_feed(&a->sse, data, len, on_sse_event, a)) return UPSTREAM_DATA_ABORT;
    /* After an in-band error the provider has nothing more to say that the client can use. */
    if (a->stream_error) return UPSTREAM_DATA_ABORT;
    /* curl reads up to 100 buffers in one round: past this much gathered, the round ends and
     * on_upstream_flush writes it (and pauses if the client is behind). */
    return a->events.len >= STREAM_GATHER_MAX ? UPSTREAM_DATA_PAUSE : UPSTREAM_DATA_OK;
}

static bool on_upstream_flush(void *ud)
{
    attempt *a = ud;
    if (!a->is_stream || !a->events.len || !a->sink->on_events) return false;
    bool behind = a->sink->on_events(a, a->events.data, a->events.len);
    a->events.len = 0;
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

static void attempt_end(attempt *a, attempt_outcome outcome, attempt_result result)
{
    a->end_ns = time_now_ns();
    a->outcome = outcome;
    a->result = result;
    a->sink->on_end(a);
}

static void on_upstream_done(void *ud, upstream_result result, const char *message)
{
    attempt *a = ud;
    a->call = NULL;
    const char *provider = a->target.route->provider->name;
    char msg[512];
    if (a->is_stream) {
        /* After the end marker the answer is complete, whatever the transport says next. */
        if (!a->stream_error && (a->stream_done_seen ||
                                 (result == UPSTREAM_OK && provider_stream_finish(&a->codec, &a->events)))) {
            attempt_end(a, ATTEMPT_ANSWERED, ATTEMPT_OK);
            return;
        }
        if (a->stream_error)
            snprintf(msg, sizeof msg, "provider %s stream failed: %s", provider, a->stream_error);
        else if (result == UPSTREAM_OK)
            snprintf(msg, sizeof msg, "provider %s ended the stream before its end marker", provider);
        else
            snprintf(msg, sizeof msg, "provider %s stream failed (%s): %s", provider,
                     upstream_result_name(result), message);
        a->message = arena_strndup(a->x->arena, msg, strlen(msg));
        /* A partial event from the upstream is dropped so the error starts on a boundary; a
         * blank line first ends any event the client may still be assembling. */
        if (sse_reader_has_partial(&a->sse)) buf_append_lit(&a->events, "\n");
        attempt_end(a, ATTEMPT_STREAM_CUT, ATTEMPT_BROKEN);
        return;
    }
    if (result == UPSTREAM_OK && a->status) {
        attempt_end(a, ATTEMPT_ANSWERED, a->status >= 200 && a->status < 300 ? ATTEMPT_OK : ATTEMPT_STATUS);
        return;
    }
    if (result == UPSTREAM_TOO_LARGE) {
        snprintf(msg, sizeof msg, "provider %s sent a reply larger than limits.max_response_bytes", provider);
        a->message = arena_strndup(a->x->arena, msg, strlen(msg));
        attempt_end(a, ATTEMPT_TOO_LARGE, ATTEMPT_OK);
        return;
    }
    if (a->failure_status) { /* on_upstream_head refused the head and ended the transfer */
        /* the same request would get the same answer: a status, retried only where the
         * route's retry.on names it; another target may still be tried */
        attempt_end(a, ATTEMPT_FAILED, ATTEMPT_STATUS);
        return;
    }
    if (result == UPSTREAM_TOTAL_TIMEOUT)
        snprintf(msg, sizeof msg, "provider %s did not finish its reply within %u ms (total timeout)",
                 provider, a->total_timeout_ms);
    else
        snprintf(msg, sizeof msg, "provider %s: %s (%s)", provider, message, upstream_result_name(result));
    a->message = arena_strndup(a->x->arena, msg, strlen(msg));
    a->failure_status = status_for(result);
    attempt_end(a, ATTEMPT_FAILED, attempt_result_of(result));
}

static const upstream_callbacks upstream_cbs = {
    .on_head = on_upstream_head,
    .on_data = on_upstream_data,
    .on_flush = on_upstream_flush,
    .on_done = on_upstream_done,
};

/* How long a buffered (non-stream) reply may take in all, from the request to its last byte:
 * the provider's timeouts.total, or the route's request_timeout when shorter. A byte every
 * few seconds keeps the idle timer quiet; this does not move. */
static uint32_t reply_deadline_ms(const attempt *a)
{
    uint32_t total = a->target.route->provider->total_timeout_ms,
             timeout = a->target.leaf->request_timeout_ms;
    return timeout && (!total || timeout < total) ? timeout : total;
}

bool attempt_send(attempt *a)
{
    const provider_config *p = a->target.route->provider;
    const provider_request *preq = &a->request;
    uint32_t timeout = a->target.leaf->request_timeout_ms;
    a->total_timeout_ms = a->codec.stream ? 0 : reply_deadline_ms(a);
    upstream_request ureq = {
        .url = preq->url,
        .body = preq->body,
        .body_len = preq->body_len,
        .headers = preq->headers,
        .connect_timeout_ms = p->connect_timeout_ms,
        .first_byte_timeout_ms =
            timeout && timeout < p->first_byte_timeout_ms ? timeout : p->first_byte_timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
        /* a stream's request_timeout ends at its first byte: a long answer is not a slow one;
         * a buffered reply has until the provider's total (or the route's request_timeout) */
        .total_timeout_ms = a->total_timeout_ms,
        .send_once = a->target.send_once,
    };
    a->start_ns = time_now_ns();
    a->call = upstream_start(pipeline_upstream(a->x->pw), &ureq, &upstream_cbs, a);
    if (!a->call) {
        a->message = "could not start the upstream request";
        a->failure_status = 502;
        a->outcome = ATTEMPT_FAILED;
        a->result = ATTEMPT_CONNECT;
        return false;
    }
    a->outcome = ATTEMPT_RUNNING;
    return true;
}

void attempt_cancel(attempt *a)
{
    if (a->call) upstream_cancel(a->call);
    a->call = NULL;
    if (a->outcome == ATTEMPT_RUNNING) {
        a->end_ns = time_now_ns();
        a->outcome = ATTEMPT_STOPPED;
        a->result = ATTEMPT_CANCELLED;
    }
}

void attempt_resume(attempt *a)
{
    if (a->call) upstream_resume(a->call);
}

void attempt_release_all(exchange *x)
{
    for (attempt *a = x->attempts; a; a = a->next) {
        if (a->call) upstream_cancel(a->call);
        a->call = NULL;
        sse_reader_free(&a->sse);
        /* the first buffers go back to the exchange for its next attempt */
        if (!x->spare_reply.data && a->reply.data) {
            buf_reset(&a->reply);
            x->spare_reply = a->reply;
        } else {
            buf_free(&a->reply);
        }
        if (!x->spare_events.data && a->events.data) {
            buf_reset(&a->events);
            x->spare_events = a->events;
        } else {
            buf_free(&a->events);
        }
        buf_init(&a->reply, 0);
        buf_init(&a->events, 0);
    }
}

void attempt_stream_error(attempt *a, const char *message)
{
    provider_stream_error(&a->codec, &a->events, message);
}

double attempt_cost(const attempt *a)
{
    return provider_cost(&a->codec);
}
