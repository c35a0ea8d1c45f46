/* gemini.c — aigw-mock's imitation of Google's Gemini API (generativelanguage v1beta):
 * POST /v1beta/models/{model}:generateContent, :streamGenerateContent (?alt=sse: SSE; without
 * it, one JSON array sent in chunks) and :countTokens, with Google-shaped errors
 * ({"error":{"code","message","status"}}).
 *
 * The API key is required (x-goog-api-key or ?key=); without one the real API answers 403
 * PERMISSION_DENIED "Method doesn't allow unregistered callers...", and so does the mock. The
 * model comes from the path and is echoed as modelVersion.
 *
 * The reply is reply.c's canonical reply written as Gemini writes it: parts [thought?] then
 * [text] or [functionCall...] (Gemini has no call ids, and sends a call's args whole);
 * finishReason STOP (also for tool calls and stop sequences) or MAX_TOKENS; usageMetadata
 * promptTokenCount (cached included), candidatesTokenCount, totalTokenCount, and
 * cachedContentTokenCount / thoughtsTokenCount only when non-zero (proto3 JSON leaves zeros
 * out). A stream's chunks are whole GenerateContentResponses: the thought, then one word of
 * text (or one function call) per chunk, each with the running usage (as the API's usage is a
 * running total); the last chunk carries finishReason. SSE events end in CRLF CRLF; there is
 * no [DONE]. A function result's text (for rule 1) is its `response` object's only member when
 * that member is a string ({"result":"sunny"} → sunny), else the object as compact JSON with
 * sorted keys. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static const char *status_name(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
    }
}

void gemini_error(conn *c, int status, const char *message, int retry_after, long ttfb)
{
    sbuf b = {0};
    sb_fmt(&b, "{\"error\":{\"code\":%d,\"message\":", status);
    sb_json_str(&b, message);
    sb_fmt(&b, ",\"status\":\"%s\"", status_name(status));
    if (status == 429)
        sb_fmt(
            &b,
            ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"%ds\"}]",
            retry_after ? retry_after : 1);
    sb_str(&b, "}}");
    respond_body(c, status, NULL, b.p, b.len, ttfb);
    free(b.p);
}

bool gemini_admit(conn *c, const char *query)
{
    if (c->hdr_goog_api_key || query_has(query, "key", NULL)) return true;
    gemini_error(
        c, 403,
        "Method doesn't allow unregistered callers (callers without established identity). Please use "
        "API Key or other form of API consumer identity to call this API.",
        0, 0);
    return false;
}

bool gemini_validate(conn *c, json_t *req, bool count_tokens)
{
    json_t *contents = json_object_get(req, "contents");
    if (count_tokens && !contents)
        contents = json_object_get(json_object_get(req, "generateContentRequest"), "contents");
    if (json_is_array(contents) && json_array_size(contents)) return true;
    gemini_error(c, 400, "* GenerateContentRequest.contents: contents is not specified", 0, 0);
    return false;
}

/* A functionResponse's text: see the file comment. */
static void function_response_text(json_t *response, sbuf *out)
{
    if (json_is_object(response) && json_object_size(response) == 1) {
        json_t *only = json_object_iter_value(json_object_iter(response));
        if (json_is_string(only)) {
            sb_add(out, json_string_value(only), json_string_length(only));
            return;
        }
    }
    char *dump =
        json_dumps(response ? response : json_null(), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (dump) sb_str(out, dump);
    free(dump);
}

static bool is_image(json_t *data)
{
    const char *mime = json_string_value(json_object_get(data, "mimeType"));
    return !mime || !strncmp(mime, "image/", 6);
}

static void gemini_view(json_t *req, mock_view *v)
{
    size_t i, k;
    json_t *content, *part, *tool, *decl;
    sbuf t = {0};
    json_t *system = json_object_get(req, "systemInstruction");
    content_text(json_is_object(system) ? json_object_get(system, "parts") : system, &t);
    view_system(v, t.p ? t.p : "", t.len);
    json_array_foreach(json_object_get(req, "contents"), i, content)
    {
        const char *role = json_string_value(json_object_get(content, "role"));
        view_message_begin(v, !role || !strcmp(role, "user"));
        json_array_foreach(json_object_get(content, "parts"), k, part)
        {
            json_t *text = json_object_get(part, "text");
            json_t *inline_data = json_object_get(part, "inlineData"),
                   *file_data = json_object_get(part, "fileData");
            json_t *response = json_object_get(part, "functionResponse");
            if (json_is_string(text) && !json_is_true(json_object_get(part, "thought"))) {
                view_text(v, json_string_value(text), json_string_length(text));
            } else if ((inline_data && is_image(inline_data)) || (file_data && is_image(file_data))) {
                view_image(v);
            } else if (response) {
                t.len = 0;
                function_response_text(json_object_get(response, "response"), &t);
                view_result(v, t.p ? t.p : "", t.len);
            }
        }
        view_message_end(v);
    }
    free(t.p);
    json_array_foreach(json_object_get(req, "tools"), i, tool)
    {
        json_array_foreach(json_object_get(tool, "functionDeclarations"), k, decl)
        {
            view_tool(v, json_string_value(json_object_get(decl, "name")));
        }
    }
    json_t *calling = json_object_get(json_object_get(req, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(calling, "mode"));
    if (mode && !strcmp(mode, "ANY")) {
        v->forced_tool =
            json_string_value(json_array_get(json_object_get(calling, "allowedFunctionNames"), 0));
        v->tool_any = !v->forced_tool;
    }
    v->tool_none = mode && !strcmp(mode, "NONE");
    json_t *config = json_object_get(req, "generationConfig");
    const char *mime = json_string_value(json_object_get(config, "responseMimeType"));
    v->json_output = mime && !strcmp(mime, "application/json");
    view_max_tokens(v, json_object_get(config, "maxOutputTokens"));
    json_array_foreach(json_object_get(config, "stopSequences"), i, part)
    {
        if (json_is_string(part)) view_stop(v, json_string_value(part), json_string_length(part));
    }
    v->thinking = json_is_true(json_object_get(json_object_get(config, "thinkingConfig"), "includeThoughts"));
}

static void usage_json(sbuf *b, const mock_reply *r, size_t candidates)
{
    sb_fmt(b, "\"usageMetadata\":{\"promptTokenCount\":%zu", r->prompt);
    if (candidates) sb_fmt(b, ",\"candidatesTokenCount\":%zu", candidates);
    sb_fmt(b, ",\"totalTokenCount\":%zu", r->prompt + candidates + r->reasoning);
    if (r->cached) sb_fmt(b, ",\"cachedContentTokenCount\":%zu", r->cached);
    if (r->reasoning) sb_fmt(b, ",\"thoughtsTokenCount\":%zu", r->reasoning);
    sb_str(b, "}");
}

static void thought_part(sbuf *b, const mock_reply *r)
{
    sb_str(b, "{\"text\":");
    sb_json(b, r->thinking.p, r->thinking.len);
    sb_str(b, ",\"thought\":true}");
}

static void call_part(sbuf *b, const mock_call *call)
{
    sb_str(b, "{\"functionCall\":{\"name\":");
    sb_json_str(b, call->name);
    sb_str(b, ",\"args\":");
    sb_add(b, call->args.p, call->args.len);
    sb_str(b, "}}");
}

/* One GenerateContentResponse around `parts` (already JSON); finish NULL while streaming. */
static void response_json(sbuf *b, const char *parts, const char *finish, const mock_reply *r,
                          size_t candidates, const char *model, const char *id)
{
    sb_str(b, "{\"candidates\":[{\"content\":{\"parts\":[");
    sb_str(b, parts);
    sb_str(b, "],\"role\":\"model\"}");
    if (finish) sb_fmt(b, ",\"finishReason\":\"%s\"", finish);
    sb_str(b, ",\"index\":0}],");
    usage_json(b, r, candidates);
    sb_str(b, ",\"modelVersion\":");
    sb_json_str(b, model);
    sb_fmt(b, ",\"responseId\":\"%s\"}", id);
}

typedef struct chunker {
    conn *c;
    bool sse;
    int n;
    sbuf ev;
} chunker;

static void chunk_out(chunker *k, const char *parts, const char *finish, const mock_reply *r,
                      size_t candidates, const char *model, const char *id)
{
    k->ev.len = 0;
    sb_str(&k->ev, k->sse ? "data: " : k->n ? ",\r\n" : "[");
    response_json(&k->ev, parts, finish, r, candidates, model, id);
    if (k->sse) sb_str(&k->ev, "\r\n\r\n");
    if (!k->sse && finish) sb_str(&k->ev, "]");
    stream_event(k->c, k->ev.p, k->ev.len);
    k->n++;
}

static void generate_stream(conn *c, const char *model, const char *id, const mock_reply *r, bool sse,
                            const faults *f)
{
    const char *finish = r->finish == FINISH_LENGTH ? "MAX_TOKENS" : "STOP";
    stream_begin(c, sse ? "text/event-stream" : "application/json", NULL, f);
    chunker k = {.c = c, .sse = sse};
    sbuf parts = {0};
    if (r->thinking.len) {
        thought_part(&parts, r);
        chunk_out(&k, parts.p, NULL, r, 0, model, id);
    }
    for (int i = 0; i < r->ncalls; i++) {
        parts.len = 0;
        call_part(&parts, &r->calls[i]);
        chunk_out(&k, parts.p, i + 1 == r->ncalls ? finish : NULL, r, 10 * (size_t)(i + 1), model, id);
    }
    for (size_t pos = 0; !r->ncalls && (pos < r->text.len || pos == 0);) {
        size_t end = next_word_piece(r->text.p, r->text.len, pos);
        parts.len = 0;
        sb_str(&parts, "{\"text\":");
        sb_json(&parts, r->text.p + pos, end - pos);
        sb_str(&parts, "}");
        chunk_out(&k, parts.p, end == r->text.len ? finish : NULL, r, count_words(r->text.p, end), model, id);
        pos = end;
        if (end == r->text.len) break;
    }
    free(parts.p);
    free(k.ev.p);
    static const char sse_error[] = "data: {\"error\":{\"code\":503,\"message\":\"aigw-mock injected stream "
                                    "error\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
    static const char array_error[] = ",\r\n{\"error\":{\"code\":503,\"message\":\"aigw-mock injected stream "
                                      "error\",\"status\":\"UNAVAILABLE\"}}]";
    if (sse)
        stream_end(c, f, sse_error, sizeof sse_error - 1);
    else
        stream_end(c, f, array_error, sizeof array_error - 1);
}

void gemini_generate(conn *c, json_t *req, const char *model, bool stream, bool sse, const faults *f)
{
    mock_view v;
    view_init(&v);
    gemini_view(req, &v);
    mock_reply r;
    reply_build(&v, f, &r);
    view_free(&v);
    char id[64];
    snprintf(id, sizeof id, "mock-%d-%" PRIu64, conn_worker_id(c), conn_next_id(c));
    if (stream) {
        generate_stream(c, model, id, &r, sse, f);
        reply_free(&r);
        return;
    }
    sbuf parts = {0}, b = {0};
    if (r.thinking.len) thought_part(&parts, &r);
    for (int i = 0; i < r.ncalls; i++) {
        if (parts.len) sb_str(&parts, ",");
        call_part(&parts, &r.calls[i]);
    }
    if (!r.ncalls) {
        if (parts.len) sb_str(&parts, ",");
        sb_str(&parts, "{\"text\":");
        sb_json(&parts, r.text.p, r.text.len);
        sb_str(&parts, "}");
    }
    response_json(&b, parts.p, r.finish == FINISH_LENGTH ? "MAX_TOKENS" : "STOP", &r, r.output_words, model,
                  id);
    respond_reply(c, NULL, b.p, b.len, f);
    free(parts.p);
    free(b.p);
    reply_free(&r);
}

void gemini_count_tokens(conn *c, json_t *req, const faults *f)
{
    json_t *inner = json_object_get(req, "generateContentRequest");
    mock_view v;
    view_init(&v);
    gemini_view(json_object_get(req, "contents") ? req : inner, &v);
    char body[64];
    int n = snprintf(body, sizeof body, "{\"totalTokens\":%zu}", v.prompt_words);
    view_free(&v);
    respond_body(c, 200, NULL, body, (size_t)n, f->ttfb_ms);
}
