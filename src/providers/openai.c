/* openai.c — the OpenAI chat format, the canonical one: its stream events and error shape.
 *
 * Requests and replies in this format need no translation (they are the canonical form);
 * what is here serves the translated paths: decoding an OpenAI-compatible provider's stream
 * into canonical chunks (for an Anthropic client), encoding canonical chunks as OpenAI SSE
 * (for an OpenAI client of another provider), and the error body both ways. */
#include <string.h>

#include "providers/codec.h"

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

const char *openai__reply_shape(json_t *reply)
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

stream_step openai__stream_decode(xlate *x, json_t *chunk, chunk_sink sink, buf *out, const char **message)
{
    json_t *error = json_object_get(chunk, "error");
    if (error) {
        const char *m = json_string_value(json_object_get(error, "message"));
        *message = arena_strndup(&x->req->arena, m ? m : "provider stream error", m ? strlen(m) : 21);
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
    if (model && x->model == x->req->route->public_name)
        x->model = arena_strndup(&x->req->arena, model, strlen(model));
    sink(x, chunk, out);
    return STREAM_MORE;
}

void openai__stream_encode(xlate *x, json_t *chunk, buf *out)
{
    if (!chunk) return;
    /* The usage-only chunk goes to a client that asked for it, as OpenAI does. */
    if (json_object_get(chunk, "usage") && !json_array_size(json_object_get(chunk, "choices")) &&
        !x->include_usage)
        return;
    if (json_is_object(json_object_get(chunk, "usage")) &&
        !json_array_size(json_object_get(chunk, "choices")))
        provider_usage_chunk_cost(x->req, chunk);
    char *text = json_dumps(chunk, JSON_COMPACT);
    buf_append_lit(out, "data: ");
    buf_append(out, text, strlen(text));
    buf_append_lit(out, "\n\n");
    free(text);
}

void openai__stream_finish(xlate *x, buf *out)
{
    if (x->encoder_done) return;
    x->encoder_done = true;
    buf_append_lit(out, "data: [DONE]\n\n");
}

void openai__error_body(buf *out, const char *type, const char *code, const char *param, const char *message)
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
