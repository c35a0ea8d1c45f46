/* anthropic.c — aigw-mock's imitation of Anthropic's Messages API: POST /v1/messages (JSON and
 * SSE) and POST /v1/messages/count_tokens, with Anthropic-shaped errors.
 *
 * Checks the real API makes before anything else: an x-api-key or Authorization header (401
 * authentication_error), an anthropic-version header (400), `max_tokens` and `messages` (400).
 * The reply is reply.c's canonical reply written as Anthropic writes it:
 *   content: [thinking?] then [text] or [tool_use...]; stop_reason end_turn / max_tokens /
 *   stop_sequence / tool_use; usage input_tokens (prompt − cached − cache_write),
 *   cache_creation_input_tokens, cache_read_input_tokens, output_tokens (words + reasoning).
 * The stream is the documented event sequence, each event an `event:` line and a `data:` line
 * carrying the same `type`: message_start (content [], output_tokens 1), ping, per block
 * content_block_start / content_block_delta... / content_block_stop (text_delta one word each,
 * thinking_delta one word each then one signature_delta, input_json_delta fragments of at most
 * 5 bytes never inside a UTF-8 sequence), message_delta (stop_reason, stop_sequence, cumulative
 * usage), message_stop. stream_error=N replaces what follows the N-th event by an in-band
 * `event: error` (overloaded_error). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define JSON_FRAGMENT 5

static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status < 500 ? "invalid_request_error" : "api_error";
    }
}

static void request_id_header(conn *c, char *out, size_t size, int retry_after)
{
    int n = snprintf(out, size, "request-id: req_%s\r\n", c->req_id);
    if (retry_after > 0 && n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, "retry-after: %d\r\n", retry_after);
}

void anthropic_error(conn *c, int status, const char *message, int retry_after, long ttfb)
{
    sbuf b = {0};
    sb_str(&b, "{\"type\":\"error\",\"error\":{\"type\":");
    sb_json_str(&b, error_type(status));
    sb_str(&b, ",\"message\":");
    sb_json_str(&b, message);
    sb_fmt(&b, "},\"request_id\":\"req_%s\"}", c->req_id);
    char extra[128];
    request_id_header(c, extra, sizeof extra,
                      status == 429 || status == 529 ? (retry_after ? retry_after : 1) : 0);
    respond_body(c, status, extra, b.p, b.len, ttfb);
    free(b.p);
}

bool anthropic_admit(conn *c)
{
    if (!c->hdr_api_key && !c->hdr_authorization) {
        anthropic_error(c, 401, "x-api-key header is required", 0, 0);
        return false;
    }
    if (!c->hdr_anthropic_version) {
        anthropic_error(c, 400, "anthropic-version: header is required", 0, 0);
        return false;
    }
    return true;
}

bool anthropic_validate(conn *c, json_t *req, bool count_tokens)
{
    if (!json_is_array(json_object_get(req, "messages"))) {
        anthropic_error(c, 400, "messages: Field required", 0, 0);
        return false;
    }
    if (!count_tokens && !json_is_integer(json_object_get(req, "max_tokens"))) {
        anthropic_error(c, 400, "max_tokens: Field required", 0, 0);
        return false;
    }
    return true;
}

static void anthropic_view(json_t *req, mock_view *v)
{
    size_t i, k;
    json_t *m, *block, *tool;
    sbuf t = {0};
    content_text(json_object_get(req, "system"), &t);
    view_system(v, t.p ? t.p : "", t.len);
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        view_message_begin(v, role && !strcmp(role, "user"));
        if (json_is_string(content)) view_text(v, json_string_value(content), json_string_length(content));
        json_array_foreach(content, k, block)
        {
            const char *type = json_string_value(json_object_get(block, "type"));
            json_t *text = json_object_get(block, "text");
            if (!type) type = "";
            if (!strcmp(type, "tool_result")) {
                t.len = 0;
                content_text(json_object_get(block, "content"), &t);
                view_result(v, t.p ? t.p : "", t.len);
            } else if (!strcmp(type, "image")) {
                view_image(v);
            } else if (json_is_string(text)) {
                view_text(v, json_string_value(text), json_string_length(text));
            }
        }
        view_message_end(v);
    }
    free(t.p);
    json_array_foreach(json_object_get(req, "tools"), i, tool)
    {
        view_tool(v, json_string_value(json_object_get(tool, "name")));
    }
    json_t *choice = json_object_get(req, "tool_choice");
    const char *choice_type = json_string_value(json_object_get(choice, "type"));
    if (choice_type) {
        if (!strcmp(choice_type, "tool")) v->forced_tool = json_string_value(json_object_get(choice, "name"));
        v->tool_any = !strcmp(choice_type, "any");
        v->tool_none = !strcmp(choice_type, "none");
    }
    /* structured outputs: output_config.format, and the earlier beta's output_format */
    const char *format = json_string_value(
        json_object_get(json_object_get(json_object_get(req, "output_config"), "format"), "type"));
    if (!format) format = json_string_value(json_object_get(json_object_get(req, "output_format"), "type"));
    v->json_output = format && !strcmp(format, "json_schema");
    view_max_tokens(v, json_object_get(req, "max_tokens"));
    json_array_foreach(json_object_get(req, "stop_sequences"), i, block)
    {
        if (json_is_string(block)) view_stop(v, json_string_value(block), json_string_length(block));
    }
    const char *thinking = json_string_value(json_object_get(json_object_get(req, "thinking"), "type"));
    v->thinking = thinking && (!strcmp(thinking, "enabled") || !strcmp(thinking, "adaptive"));
}

static const char *stop_reason(mock_finish f)
{
    switch (f) {
    case FINISH_LENGTH: return "max_tokens";
    case FINISH_STOP_SEQUENCE: return "stop_sequence";
    case FINISH_TOOL_CALLS: return "tool_use";
    default: return "end_turn";
    }
}

static void usage_json(sbuf *b, const mock_reply *r, size_t output_tokens, bool details)
{
    sb_fmt(b,
           "{\"input_tokens\":%zu,\"cache_creation_input_tokens\":%zu,\"cache_read_input_tokens\":%zu,"
           "\"output_tokens\":%zu",
           r->prompt - r->cached - r->cache_write, r->cache_write, r->cached, output_tokens);
    if (details && r->reasoning)
        sb_fmt(b, ",\"output_tokens_details\":{\"thinking_tokens\":%zu}", r->reasoning);
    sb_str(b, "}");
}

static void stop_sequence_json(sbuf *b, const mock_reply *r)
{
    if (r->stop_sequence)
        sb_json(b, r->stop_sequence, r->stop_sequence_len);
    else
        sb_str(b, "null");
}

static void event(conn *c, sbuf *ev)
{
    sb_str(ev, "}\n\n");
    stream_event(c, ev->p, ev->len);
    ev->len = 0;
}

/* Text-like deltas, one word each: {"type":delta_type,field:piece}. */
static void word_deltas(conn *c, sbuf *ev, int index, const char *delta_type, const char *field,
                        const sbuf *text)
{
    for (size_t pos = 0; pos < text->len;) {
        size_t end = next_word_piece(text->p, text->len, pos);
        sb_fmt(ev,
               "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,"
               "\"delta\":{\"type\":\"%s\",\"%s\":",
               index, delta_type, field);
        sb_json(ev, text->p + pos, end - pos);
        sb_str(ev, "}");
        event(c, ev);
        pos = end;
    }
}

static void block_stop(conn *c, sbuf *ev, int index)
{
    sb_fmt(ev, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":%d", index);
    event(c, ev);
}

static const char stream_error_event[] =
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
    "\"message\":\"aigw-mock injected stream error\"}}\n\n";

static void messages_stream(conn *c, const char *id, const char *model, const mock_reply *r, const faults *f)
{
    char extra[128];
    request_id_header(c, extra, sizeof extra, 0);
    stream_begin(c, "text/event-stream; charset=utf-8", extra, f);
    sbuf ev = {0};
    sb_fmt(&ev,
           "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"%s\","
           "\"type\":\"message\",\"role\":\"assistant\",\"model\":",
           id);
    sb_json_str(&ev, model);
    sb_str(&ev, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    usage_json(&ev, r, 1, false);
    sb_str(&ev, "}");
    event(c, &ev);
    sb_str(&ev, "event: ping\ndata: {\"type\":\"ping\"");
    event(c, &ev);
    int index = 0;
    if (r->thinking.len) {
        sb_fmt(&ev,
               "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,"
               "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
               index);
        event(c, &ev);
        word_deltas(c, &ev, index, "thinking_delta", "thinking", &r->thinking);
        sb_fmt(&ev,
               "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,"
               "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"%s\"}",
               index, r->signature);
        event(c, &ev);
        block_stop(c, &ev, index++);
    }
    if (!r->ncalls) {
        sb_fmt(&ev,
               "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,"
               "\"content_block\":{\"type\":\"text\",\"text\":\"\"}",
               index);
        event(c, &ev);
        word_deltas(c, &ev, index, "text_delta", "text", &r->text);
        block_stop(c, &ev, index++);
    }
    for (int i = 0; i < r->ncalls; i++, index++) {
        sb_fmt(&ev,
               "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,"
               "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_mock_%d\",\"name\":",
               index, i);
        sb_json_str(&ev, r->calls[i].name);
        sb_str(&ev, ",\"input\":{}}");
        event(c, &ev);
        const sbuf *args = &r->calls[i].args;
        for (size_t pos = 0; pos < args->len;) {
            size_t end = next_utf8_piece(args->p, args->len, pos, JSON_FRAGMENT);
            sb_fmt(&ev,
                   "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,"
                   "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                   index);
            sb_json(&ev, args->p + pos, end - pos);
            sb_str(&ev, "}");
            event(c, &ev);
            pos = end;
        }
        block_stop(c, &ev, index);
    }
    sb_fmt(&ev,
           "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
           "\"stop_sequence\":",
           stop_reason(r->finish));
    stop_sequence_json(&ev, r);
    sb_str(&ev, "},\"usage\":");
    usage_json(&ev, r, reply_completion_tokens(r), true);
    event(c, &ev);
    sb_str(&ev, "event: message_stop\ndata: {\"type\":\"message_stop\"");
    event(c, &ev);
    free(ev.p);
    stream_end(c, f, stream_error_event, sizeof stream_error_event - 1);
}

void anthropic_messages(conn *c, json_t *req, const char *model, const faults *f)
{
    mock_view v;
    view_init(&v);
    anthropic_view(req, &v);
    mock_reply r;
    reply_build(&v, f, &r);
    view_free(&v);
    char id[64];
    snprintf(id, sizeof id, "msg_mock_%d_%" PRIu64, conn_worker_id(c), conn_next_id(c));
    if (json_is_true(json_object_get(req, "stream"))) {
        messages_stream(c, id, model, &r, f);
        reply_free(&r);
        return;
    }
    sbuf b = {0};
    sb_fmt(&b, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", id);
    sb_json_str(&b, model);
    sb_str(&b, ",\"content\":[");
    bool first = true;
    if (r.thinking.len) {
        sb_str(&b, "{\"type\":\"thinking\",\"thinking\":");
        sb_json(&b, r.thinking.p, r.thinking.len);
        sb_fmt(&b, ",\"signature\":\"%s\"}", r.signature);
        first = false;
    }
    if (!r.ncalls) {
        sb_str(&b, first ? "{\"type\":\"text\",\"text\":" : ",{\"type\":\"text\",\"text\":");
        sb_json(&b, r.text.p, r.text.len);
        sb_str(&b, "}");
    }
    for (int i = 0; i < r.ncalls; i++, first = false) {
        sb_fmt(&b, "%s{\"type\":\"tool_use\",\"id\":\"toolu_mock_%d\",\"name\":", first ? "" : ",", i);
        sb_json_str(&b, r.calls[i].name);
        sb_str(&b, ",\"input\":");
        sb_add(&b, r.calls[i].args.p, r.calls[i].args.len);
        sb_str(&b, "}");
    }
    sb_fmt(&b, "],\"stop_reason\":\"%s\",\"stop_sequence\":", stop_reason(r.finish));
    stop_sequence_json(&b, &r);
    sb_str(&b, ",\"usage\":");
    usage_json(&b, &r, reply_completion_tokens(&r), true);
    sb_str(&b, "}");
    char extra[128];
    request_id_header(c, extra, sizeof extra, 0);
    respond_reply(c, extra, b.p, b.len, f);
    free(b.p);
    reply_free(&r);
}

void anthropic_count_tokens(conn *c, json_t *req, const faults *f)
{
    mock_view v;
    view_init(&v);
    anthropic_view(req, &v);
    char body[64], extra[128];
    int n = snprintf(body, sizeof body, "{\"input_tokens\":%zu}", v.prompt_words);
    view_free(&v);
    request_id_header(c, extra, sizeof extra, 0);
    respond_body(c, 200, extra, body, (size_t)n, f->ttfb_ms);
}
