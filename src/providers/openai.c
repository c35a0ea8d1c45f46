/* openai.c — the OpenAI chat format, the canonical one, and its wire_codec row.
 *
 * Requests and replies in this format need no translation (they are the canonical form: the
 * row's conversions are NULL); what is here serves the translated paths: the last touches of
 * a canonical request for an OpenAI-compatible provider (its model, the usage an Anthropic
 * client's stream needs), its URL (Azure's names the deployment), its usage's counts,
 * decoding its stream into canonical chunks (for an Anthropic client), encoding canonical
 * chunks as OpenAI SSE (for an OpenAI client of another provider), and the error body both
 * ways. */
#include <string.h>

#include "providers/codec.h"
#include "upstream/sse.h"

/* ---- requests ----------------------------------------------------------------------------- */

/* The preset's rule for param drops it (a rename keeps it). */
static bool preset_drops(const provider_preset *preset, const char *param)
{
    for (const compat_rule *r = preset->compat; r && r->param; r++)
        if (!strcmp(r->param, param)) return r->action == COMPAT_DROP;
    return false;
}

static json_t *request_from_canonical(codec_ctx *ctx, xlate *x, json_t *canon, provider_error *err)
{
    const model_route *route = ctx->route;
    json_object_set_new(canon, "model", json_stringn(route->upstream_model, route->upstream_model_len));
    /* A client whose stream always reports usage (Anthropic's) needs it at the end of the
     * provider's stream. */
    if (wire_codecs[ctx->ingress]->stream_reports_usage && ctx->stream &&
        !preset_drops(route->provider->preset, "stream_options"))
        json_object_set_new(canon, "stream_options", json_pack("{s:b}", "include_usage", 1));
    return json_incref(canon);
}

static const char *url(codec_ctx *ctx)
{
    const model_route *route = ctx->route;
    const provider_config *p = route->provider;
    /* Anthropic Messages and translated Responses go to chat completions. */
    int e = ctx->endpoint == ENDPOINT_MESSAGES || ctx->endpoint == ENDPOINT_RESPONSES
                ? ENDPOINT_CHAT_COMPLETIONS
                : ctx->endpoint;
    if (p->preset->deployments) {
        static const char *const tail[] = {"/chat/completions", "/completions", "/embeddings"};
        char *mid = xlate__concat(ctx, "/openai/deployments/", route->upstream_model, tail[e]);
        return xlate__concat(ctx, p->base_url, mid,
                             xlate__concat(ctx, "?api-version=", p->api_version, NULL));
    }
    return p->urls[e];
}

/* ---- replies and usage -------------------------------------------------------------------- */

/* A tool call's place in a reply or chunk: an object whose function, when given, is an object. */
static bool tool_calls_shape_ok(json_t *calls)
{
    if (!calls || json_is_null(calls)) return true;
    if (!json_is_array(calls)) return false;
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        if (!json_is_object(tc) || (fn && !json_is_object(fn))) return false;
    }
    return true;
}

static const char *reply_shape(json_t *reply)
{
    json_t *choices = json_object_get(reply, "choices");
    if (!json_is_array(choices) || !json_array_size(choices)) return "choices is not a non-empty array";
    json_t *choice = json_array_get(choices, 0);
    json_t *message = json_object_get(choice, "message");
    if (!json_is_object(choice) || !json_is_object(message)) return "choices[0].message is not an object";
    json_t *content = json_object_get(message, "content");
    if (content && !json_is_string(content) && !json_is_null(content))
        return "choices[0].message.content is neither a string nor null";
    if (!tool_calls_shape_ok(json_object_get(message, "tool_calls")))
        return "choices[0].message.tool_calls is not an array of objects";
    return NULL;
}

static json_t *usage_in(json_t *message)
{
    return json_object_get(message, "usage");
}

static void usage_note(usage_counts *c, count_getter get, const void *source)
{
    get(source, "prompt_tokens", &c->prompt);
    get(source, "completion_tokens", &c->completion);
    get(source, "prompt_tokens_details.cached_tokens", &c->cached);
    get(source, "completion_tokens_details.reasoning_tokens", &c->reasoning);
}

/* ---- streams ------------------------------------------------------------------------------ */

static stream_step stream_decode(xlate *x, json_t *chunk, chunk_sink sink, buf *out, const char **message)
{
    json_t *error = json_object_get(chunk, "error");
    if (error) {
        const char *m = json_string_value(json_object_get(error, "message"));
        *message = arena_strndup(x->ctx->arena, m ? m : "provider stream error", m ? strlen(m) : 21);
        return STREAM_FAILED;
    }
    json_t *choices = json_object_get(chunk, "choices");
    json_t *delta = json_object_get(json_array_get(choices, 0), "delta");
    if ((choices && !json_is_array(choices)) || (delta && !json_is_object(delta)) ||
        !tool_calls_shape_ok(json_object_get(delta, "tool_calls"))) {
        *message = "provider sent a stream chunk of the wrong shape";
        return STREAM_FAILED;
    }
    const char *id = json_string_value(json_object_get(chunk, "id"));
    if (id && !x->id[0]) xlate__set_id(x, id);
    const char *model = json_string_value(json_object_get(chunk, "model"));
    if (model && x->model == x->ctx->route->public_name)
        x->model = arena_strndup(x->ctx->arena, model, strlen(model));
    sink(x, chunk, out);
    return STREAM_MORE;
}

/* The usage-only chunk (choices: []), which the cost joins. */
static bool stream_is_usage_chunk(json_t *event)
{
    return json_is_object(json_object_get(event, "usage")) &&
           !json_array_size(json_object_get(event, "choices"));
}

static void stream_encode(xlate *x, json_t *chunk, buf *out)
{
    if (!chunk) return;
    /* The usage-only chunk goes to a client that asked for it, as OpenAI does. */
    if (json_object_get(chunk, "usage") && !json_array_size(json_object_get(chunk, "choices")) &&
        !x->include_usage)
        return;
    if (stream_is_usage_chunk(chunk)) provider_usage_chunk_cost(x->ctx, chunk);
    buf_append_lit(out, "data: ");
    xlate__append_json(out, chunk);
    buf_append_lit(out, "\n\n");
}

static void stream_encode_finish(xlate *x, buf *out)
{
    if (x->encoder_done) return;
    x->encoder_done = true;
    buf_append_lit(out, "data: [DONE]\n\n");
}

/* ---- errors ------------------------------------------------------------------------------- */

void openai__error_body(buf *out, int status, const char *type, const char *code, const char *param,
                        const char *message)
{
    buf_append_lit(out, "{\"error\":{\"message\":");
    buf_append_json_string(out, message, strlen(message));
    buf_append_lit(out, ",\"type\":");
    buf_append_json_string(out, type, strlen(type));
    buf_append_lit(out, ",\"param\":");
    if (param)
        buf_append_json_string(out, param, strlen(param));
    else
        buf_append_lit(out, "null");
    buf_append_lit(out, ",\"code\":");
    if (code)
        buf_append_json_string(out, code, strlen(code));
    else
        buf_append_lit(out, "null");
    buf_append_lit(out, "}}");
}

bool openai__error_parse(json_t *body, const char **type, const char **message)
{
    json_t *e = json_object_get(body, "error");
    if (json_is_string(e)) {
        *message = json_string_value(e);
        *type = NULL;
        return true;
    }
    *message = json_string_value(json_object_get(e, "message"));
    *type = json_string_value(json_object_get(e, "type"));
    return *message != NULL;
}

static void stream_error(xlate *x, buf *out, const char *message)
{
    (void)x;
    buf_append_lit(out, "data: ");
    openai__error_body(out, 502, "server_error", "upstream_stream_error", NULL, message);
    buf_append_lit(out, "\n\n");
}

const wire_codec openai__codec = {
    .name = "OpenAI",
    .endpoints = WIRE_ENDPOINT(ENDPOINT_CHAT_COMPLETIONS) | WIRE_ENDPOINT(ENDPOINT_COMPLETIONS) |
                 WIRE_ENDPOINT(ENDPOINT_EMBEDDINGS) | WIRE_ENDPOINT(ENDPOINT_MESSAGES) |
                 WIRE_ENDPOINT(ENDPOINT_RESPONSES),
    .request_to_canonical = NULL, /* canonical already */
    .request_from_canonical = request_from_canonical,
    .url = url,
    .reply_shape = reply_shape,
    .usage_key = "usage",
    .usage_in = usage_in,
    .usage_note = usage_note,
    .end_data = "[DONE]",
    .stream_decode = stream_decode,
    .stream_is_end = sse_event_is_done,
    .stream_reports_usage = false, /* only when the client asks (stream_options.include_usage) */
    .stream_encode = stream_encode,
    .stream_encode_finish = stream_encode_finish,
    .stream_is_usage_chunk = stream_is_usage_chunk,
    .stream_error = stream_error,
    .error_body = openai__error_body,
    .error_parse = openai__error_parse,
};
