/* gemini.c — Google's Gemini API (generateContent / streamGenerateContent?alt=sse) as a
 * provider: canonical request → Gemini request, Gemini reply and stream → canonical.
 *
 * Mapping (from the Gemini API reference): messages → contents (assistant is role "model"),
 * system/developer → systemInstruction, image parts → inlineData (data: URLs) or fileData,
 * tools → functionDeclarations with their JSON Schema (parametersJsonSchema), tool_choice →
 * toolConfig.functionCallingConfig (AUTO / ANY / NONE, allowedFunctionNames), tool results →
 * functionResponse parts named after the call they answer, sampling and limits →
 * generationConfig, JSON output → responseMimeType (+ responseJsonSchema). Replies: text parts
 * (thoughts left out), functionCall parts → tool calls (Gemini sends arguments whole; ids are
 * made up when it gives none), finishReason → finish_reason, usageMetadata → usage with
 * cached and reasoning (thoughts) tokens. Gemini's stream has no end marker: the stream is
 * complete when a finishReason has come and the transfer ends cleanly. No endpoint takes
 * requests in this format, so the row's client-side members are NULL. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "providers/codec.h"

static bool refuse(provider_error *err, const char *param, const char *message)
{
    err->status = 400;
    err->type = "invalid_request_error";
    err->code = "invalid_request";
    err->param = param;
    snprintf(err->message, sizeof err->message, "%s", message);
    return false;
}

static json_t *text_of(json_t *content)
{
    if (json_is_string(content)) return json_incref(content);
    buf b;
    buf_init(&b, 1u << 30);
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t)) buf_append(&b, json_string_value(t), json_string_length(t));
    }
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

static const char *mime_from_url(const char *url)
{
    const char *dot = strrchr(url, '.');
    if (dot && (!strcasecmp(dot, ".png"))) return "image/png";
    if (dot && (!strcasecmp(dot, ".webp"))) return "image/webp";
    if (dot && (!strcasecmp(dot, ".gif"))) return "image/gif";
    return "image/jpeg";
}

static json_t *parts_of(codec_ctx *ctx, json_t *content)
{
    json_t *parts = json_array();
    if (json_is_string(content)) {
        if (json_string_length(content)) json_array_append_new(parts, json_pack("{s:O}", "text", content));
        return parts;
    }
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && !strcmp(type, "text")) {
            json_array_append_new(parts, json_pack("{s:O}", "text", json_object_get(p, "text")));
        } else if (type && !strcmp(type, "image_url")) {
            json_t *iu = json_object_get(p, "image_url");
            const char *url = json_string_value(json_is_string(iu) ? iu : json_object_get(iu, "url"));
            if (!url) continue;
            const char *semi = strchr(url, ';'), *comma = strchr(url, ',');
            if (!strncmp(url, "data:", 5) && semi && comma && semi < comma)
                json_array_append_new(parts, json_pack("{s:{s:s%,s:s}}", "inlineData", "mimeType", url + 5,
                                                       (size_t)(semi - url - 5), "data", comma + 1));
            else
                json_array_append_new(parts, json_pack("{s:{s:s,s:s}}", "fileData", "mimeType",
                                                       mime_from_url(url), "fileUri", url));
        } else {
            xlate__drop(ctx, type ? type : "content part");
        }
    }
    return parts;
}

/* Tool call id → function name over the whole conversation, built once (Gemini answers calls
 * by name; a lookup per tool message would make the translation quadratic). */
static json_t *call_names(json_t *messages)
{
    json_t *names = json_object();
    size_t i, j;
    json_t *m, *tc;
    json_array_foreach(messages, i, m)
    {
        json_array_foreach(json_object_get(m, "tool_calls"), j, tc)
        {
            const char *id = json_string_value(json_object_get(tc, "id"));
            json_t *name = json_object_get(json_object_get(tc, "function"), "name");
            if (id && json_is_string(name)) json_object_set(names, id, name);
        }
    }
    return names;
}

static bool contents_from_canonical(codec_ctx *ctx, json_t *canon, json_t *out, provider_error *err)
{
    json_t *names = call_names(json_object_get(canon, "messages"));
    json_t *messages = json_object_get(canon, "messages");
    json_t *contents = json_array();
    json_t *system = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role) role = "";
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            json_t *parts = parts_of(ctx, content);
            json_array_extend(system, parts);
            json_decref(parts);
        } else if (!strcmp(role, "user")) {
            xlate__push_turn(contents, "user", "parts", parts_of(ctx, content));
        } else if (!strcmp(role, "assistant")) {
            json_t *parts = content && !json_is_null(content) ? parts_of(ctx, content) : json_array();
            size_t j;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), j, tc)
            {
                json_t *fn = json_object_get(tc, "function");
                json_t *a = xlate__call_arguments(tc);
                if (!a) {
                    json_decref(parts);
                    json_decref(contents);
                    json_decref(system);
                    json_decref(names);
                    return refuse(err, "messages",
                                  "an assistant tool call's arguments are not a JSON object");
                }
                json_array_append_new(parts, json_pack("{s:{s:O,s:o}}", "functionCall", "name",
                                                       json_object_get(fn, "name"), "args", a));
            }
            if (json_array_size(parts))
                xlate__push_turn(contents, "model", "parts", parts);
            else
                json_decref(parts);
        } else if (!strcmp(role, "tool")) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            const char *name = id ? json_string_value(json_object_get(names, id)) : NULL;
            json_t *part =
                json_pack("{s:{s:s,s:{s:o}}}", "functionResponse", "name", name ? name : (id ? id : "tool"),
                          "response", "content", text_of(content));
            xlate__push_turn(contents, "user", "parts", json_pack("[o]", part));
        } else {
            json_decref(contents);
            json_decref(system);
            json_decref(names);
            return refuse(err, "messages", "unknown message role");
        }
    }
    json_decref(names);
    json_object_set_new(out, "contents", contents);
    if (json_array_size(system))
        json_object_set_new(out, "systemInstruction", json_pack("{s:o}", "parts", system));
    else
        json_decref(system);
    return true;
}

static json_t *request_from_canonical(codec_ctx *ctx, xlate *x, json_t *canon, provider_error *err)
{
    (void)x;
    json_t *n = json_object_get(canon, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1) {
        refuse(err, "n", "this gateway returns one choice from Gemini; n > 1 is not supported");
        return NULL;
    }
    json_t *out = json_object();
    if (!contents_from_canonical(ctx, canon, out, err)) {
        json_decref(out);
        return NULL;
    }
    json_t *gen = json_object();
    static const struct {
        const char *from, *to;
    } renames[] = {
        {"temperature", "temperature"},
        {"top_p", "topP"},
        {"top_k", "topK"},
        {"max_tokens", "maxOutputTokens"},
        {"max_completion_tokens", "maxOutputTokens"},
        {"seed", "seed"},
        {"presence_penalty", "presencePenalty"},
        {"frequency_penalty", "frequencyPenalty"},
    };
    const char *key;
    json_t *v;
    json_object_foreach(canon, key, v)
    {
        if (json_is_null(v)) continue; /* an explicit null is the parameter's absence */
        bool done = false;
        for (size_t i = 0; i < sizeof renames / sizeof renames[0]; i++)
            if (!strcmp(key, renames[i].from)) {
                json_object_set(gen, renames[i].to, v);
                done = true;
            }
        if (done || !strcmp(key, "model") || !strcmp(key, "messages") || !strcmp(key, "stream") ||
            !strcmp(key, "stream_options") || !strcmp(key, "n"))
            continue;
        if (!strcmp(key, "stop")) {
            json_object_set_new(gen, "stopSequences",
                                json_is_string(v) ? json_pack("[O]", v) : json_incref(v));
        } else if (!strcmp(key, "response_format")) {
            const char *type = json_string_value(json_object_get(v, "type"));
            if (type && strcmp(type, "text")) {
                json_object_set_new(gen, "responseMimeType", json_string("application/json"));
                json_t *schema = json_object_get(json_object_get(v, "json_schema"), "schema");
                if (schema) json_object_set(gen, "responseJsonSchema", schema);
            }
        } else if (!strcmp(key, "tools")) {
            json_t *decls = json_array();
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t)
            {
                json_t *d = xlate__function_tool(ctx, t, "parametersJsonSchema", false);
                if (d) json_array_append_new(decls, d);
            }
            if (json_array_size(decls))
                json_object_set_new(out, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));
            else
                json_decref(decls);
        } else if (!strcmp(key, "tool_choice")) {
            const char *s = json_string_value(v);
            json_t *cfg;
            if (s && !strcmp(s, "none"))
                cfg = json_pack("{s:s}", "mode", "NONE");
            else if (s && !strcmp(s, "required"))
                cfg = json_pack("{s:s}", "mode", "ANY");
            else if (json_is_object(v))
                cfg = json_pack("{s:s,s:[O]}", "mode", "ANY", "allowedFunctionNames",
                                json_object_get(json_object_get(v, "function"), "name"));
            else
                cfg = json_pack("{s:s}", "mode", "AUTO");
            json_object_set_new(out, "toolConfig", json_pack("{s:o}", "functionCallingConfig", cfg));
        } else {
            xlate__drop(ctx, key); /* logprobs, logit_bias, user, parallel_tool_calls, … */
        }
    }
    if (json_object_size(gen))
        json_object_set_new(out, "generationConfig", gen);
    else
        json_decref(gen);
    return out;
}

/* ==== replies ============================================================================== */

static const char *finish_from(const char *reason, bool calls)
{
    if (!reason) return calls ? "tool_calls" : "stop";
    if (!strcmp(reason, "MAX_TOKENS")) return "length";
    if (!strcmp(reason, "SAFETY") || !strcmp(reason, "RECITATION") || !strcmp(reason, "BLOCKLIST") ||
        !strcmp(reason, "PROHIBITED_CONTENT") || !strcmp(reason, "SPII") || !strcmp(reason, "IMAGE_SAFETY"))
        return "content_filter";
    return calls ? "tool_calls" : "stop";
}

/* Finish reasons that mean the generation failed rather than ended. */
static bool finish_failed(const char *reason)
{
    static const char *const failed[] = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "OTHER",
                                         "FINISH_REASON_UNSPECIFIED"};
    for (size_t k = 0; reason && k < sizeof failed / sizeof failed[0]; k++)
        if (!strcmp(reason, failed[k])) return true;
    return false;
}

/* A functionCall part → a canonical tool call (index given); ids are invented when absent. */
static json_t *tool_call_of(xlate *x, json_t *fc, int index, bool with_index)
{
    char id[48];
    const char *given = json_string_value(json_object_get(fc, "id"));
    if (given)
        snprintf(id, sizeof id, "%.46s", given);
    else
        snprintf(id, sizeof id, "call_%.32s_%d", x->ctx->request_id, index);
    json_t *args_value = json_object_get(fc, "args");
    char *args = args_value ? json_dumps(args_value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *name = json_string_value(json_object_get(fc, "name"));
    json_t *tc = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name",
                           name ? name : "", "arguments", args ? args : "{}");
    free(args);
    if (with_index) json_object_set_new(tc, "index", json_integer(index));
    return tc;
}

/* The first candidate: an object whose content, when given, has parts that are objects
 * (content is left out when a candidate was stopped before it said anything). */
static const char *candidate_shape(json_t *candidates)
{
    if (!json_is_array(candidates)) return "candidates is not an array";
    json_t *cand = json_array_get(candidates, 0);
    if (!cand) return NULL;
    if (!json_is_object(cand)) return "candidates[0] is not an object";
    json_t *content = json_object_get(cand, "content");
    if (!content) return NULL;
    json_t *parts = json_object_get(content, "parts");
    if (!json_is_object(content) || (parts && !json_is_array(parts)))
        return "candidates[0].content.parts is not an array";
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) if (!json_is_object(p)) return "a part is not an object";
    return NULL;
}

static json_t *usage_in(json_t *message)
{
    return json_object_get(message, "usageMetadata");
}

/* candidatesTokenCount leaves out the thoughts; OpenAI's completion tokens count them. */
static void usage_note(usage_counts *c, count_getter get, const void *source)
{
    long candidates = 0;
    get(source, "promptTokenCount", &c->prompt);
    get(source, "cachedContentTokenCount", &c->cached);
    get(source, "thoughtsTokenCount", &c->reasoning);
    get(source, "candidatesTokenCount", &candidates);
    c->completion = candidates + c->reasoning;
}

static const char *reply_shape(json_t *reply)
{
    json_t *candidates = json_object_get(reply, "candidates");
    /* no candidates at all: a prompt blocked, which promptFeedback says */
    if (!candidates) return json_is_object(json_object_get(reply, "promptFeedback")) ? NULL : "no candidates";
    return candidate_shape(candidates);
}

static json_t *reply_to_canonical(xlate *x, json_t *reply)
{
    json_t *cand = json_array_get(json_object_get(reply, "candidates"), 0);
    buf text;
    buf_init(&text, 1u << 30);
    json_t *calls = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p)
    {
        if (json_is_true(json_object_get(p, "thought"))) continue;
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t)) buf_append(&text, json_string_value(t), json_string_length(t));
        json_t *fc = json_object_get(p, "functionCall");
        if (fc) json_array_append_new(calls, tool_call_of(x, fc, (int)json_array_size(calls), false));
    }
    const char *reason = json_string_value(json_object_get(cand, "finishReason"));
    if (finish_failed(reason)) x->reply_failure = arena_strndup(x->ctx->arena, reason, strlen(reason));
    const char *finish = cand ? finish_from(reason, json_array_size(calls) > 0) : "content_filter";
    json_t *message =
        json_pack("{s:s,s:o}", "role", "assistant", "content",
                  text.len || !json_array_size(calls) ? json_stringn(text.data ? text.data : "", text.len)
                                                      : json_null());
    buf_free(&text);
    if (json_array_size(calls))
        json_object_set_new(message, "tool_calls", calls);
    else
        json_decref(calls);
    const char *id = json_string_value(json_object_get(reply, "responseId"));
    const char *model = json_string_value(json_object_get(reply, "modelVersion"));
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s,s:n}],s:o}", "id", id ? id : x->ctx->request_id,
                     "object", "chat.completion", "created", (json_int_t)x->created, "model",
                     model ? model : x->model, "choices", "index", 0, "message", message, "finish_reason",
                     finish, "logprobs", "usage", xlate__usage(x));
}

static stream_step stream_decode(xlate *x, json_t *ev, chunk_sink sink, buf *out, const char **message)
{
    json_t *error = json_object_get(ev, "error");
    if (error) {
        const char *m = json_string_value(json_object_get(error, "message"));
        *message = arena_strndup(x->ctx->arena, m ? m : "provider stream error", m ? strlen(m) : 21);
        return STREAM_FAILED;
    }
    json_t *candidates = json_object_get(ev, "candidates");
    if (candidates && candidate_shape(candidates)) {
        *message = "provider sent a stream event of the wrong shape";
        return STREAM_FAILED;
    }
    const char *model = json_string_value(json_object_get(ev, "modelVersion"));
    if (model && x->model == x->ctx->route->public_name)
        x->model = arena_strndup(x->ctx->arena, model, strlen(model));
    const char *rid = json_string_value(json_object_get(ev, "responseId"));
    if (rid && !x->id[0]) xlate__set_id(x, rid);
    if (!x->decoder_started) {
        x->decoder_started = true;
        json_t *c = xlate__chunk(x, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
        sink(x, c, out);
        json_decref(c);
    }
    json_t *cand = json_array_get(json_object_get(ev, "candidates"), 0);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p)
    {
        if (json_is_true(json_object_get(p, "thought"))) continue;
        json_t *t = json_object_get(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        if (fc && x->tool_calls >= XLATE_TOOL_CALLS_MAX) {
            *message = "the provider's stream has more tool calls than a translated stream carries (1024)";
            return STREAM_FAILED;
        }
        json_t *deltas[2] = {
            json_is_string(t) && json_string_length(t) ? json_pack("{s:O}", "content", t) : NULL,
            fc ? json_pack("{s:[o]}", "tool_calls", tool_call_of(x, fc, x->tool_calls++, true)) : NULL,
        };
        for (int k = 0; k < 2; k++) {
            if (!deltas[k]) continue;
            json_t *c = xlate__chunk(x, deltas[k], NULL);
            sink(x, c, out);
            json_decref(c);
        }
    }
    const char *reason = json_string_value(json_object_get(cand, "finishReason"));
    if (finish_failed(reason)) { /* the generation failed: the client must not see a clean end */
        *message = arena_strndup(x->ctx->arena, reason, strlen(reason));
        return STREAM_FAILED;
    }
    if (reason) {
        x->finish_reason = finish_from(reason, x->tool_calls > 0);
        json_t *c = xlate__chunk(x, NULL, x->finish_reason);
        sink(x, c, out);
        json_decref(c);
    }
    return STREAM_MORE;
}

static bool stream_decode_finish(xlate *x, chunk_sink sink, buf *out)
{
    if (!x->finish_reason) return false;
    json_t *c = xlate__usage_chunk(x);
    sink(x, c, out);
    json_decref(c);
    return true;
}

static bool error_parse(json_t *body, const char **type, const char **message)
{
    json_t *e = json_object_get(body, "error");
    if (json_is_array(body)) e = json_object_get(json_array_get(body, 0), "error"); /* stream errors */
    *message = json_string_value(json_object_get(e, "message"));
    *type = json_string_value(json_object_get(e, "status"));
    return *message != NULL;
}

/* Gemini's error types are its RPC statuses (RESOURCE_EXHAUSTED): an OpenAI client reads
 * OpenAI's, which follow from the HTTP status as they do at OpenAI. */
static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *url(codec_ctx *ctx)
{
    const model_route *route = ctx->route;
    return xlate__concat(ctx, route->provider->base_url, "/v1beta/models/",
                         xlate__concat(ctx, route->upstream_model,
                                       ctx->stream ? ":streamGenerateContent?alt=sse" : ":generateContent",
                                       NULL));
}

const wire_codec gemini__codec = {
    .name = "Gemini",
    .endpoints = WIRE_ENDPOINT(ENDPOINT_CHAT_COMPLETIONS) | WIRE_ENDPOINT(ENDPOINT_MESSAGES) |
                 WIRE_ENDPOINT(ENDPOINT_RESPONSES),
    .url_names_model = true,
    .request_from_canonical = request_from_canonical,
    .url = url,
    .reply_shape = reply_shape,
    .reply_to_canonical = reply_to_canonical,
    .usage_key = "usageMetadata",
    .usage_in = usage_in,
    .usage_note = usage_note,
    .stream_decode = stream_decode,
    .stream_decode_finish = stream_decode_finish, /* no end marker: a finishReason and a clean end */
    .stream_reports_usage = true,
    .error_parse = error_parse,
    .error_type = error_type,
};
