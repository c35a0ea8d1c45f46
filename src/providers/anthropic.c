/* anthropic.c — Anthropic's Messages API ↔ the canonical (OpenAI chat) form, both ways.
 *
 * Ingress (a client speaking Messages, e.g. Claude Code, to a non-Anthropic provider):
 * request → canonical, canonical reply → Message, canonical chunks → the exact Messages event
 * sequence (message_start with content [] and usage, content_block_start/delta/stop with
 * matching indexes, message_delta with stop_reason and usage, message_stop), every event with
 * its `event:` line. Provider (an OpenAI client to Anthropic): canonical → request, Message →
 * canonical reply, Messages events → canonical chunks.
 *
 * Lossless where both sides can say it: text, images (base64 and URL), tools and tool_choice,
 * tool calls and results, stop sequences, sampling, usage with cache reads. Tool-call
 * arguments are carried as the same bytes: partial_json fragments become arguments fragments
 * one for one and back, so reassembly gives identical text. What one side cannot say is
 * dropped and named (x-aigw-dropped-params), never silently changed; what would change the
 * meaning (n > 1) is refused with 400. JSON output goes to Anthropic as structured outputs
 * (output_config.format), or, for models the catalog says lack them, as a forced tool whose
 * input is the JSON, given back as the message content. */
#include <stdio.h>
#include <string.h>

#include "providers/codec.h"

/* Text of a content value: a string, or the text parts/blocks of an array, concatenated. */
static void content_text(json_t *content, buf *out)
{
    if (json_is_string(content)) {
        buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) buf_append(out, json_string_value(t), json_string_length(t));
    }
}

static json_t *content_text_json(json_t *content)
{
    buf b;
    buf_init(&b, 1u << 30);
    content_text(content, &b);
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return s;
}

static bool refuse(provider_error *err, int status, const char *param, const char *message)
{
    err->status = status;
    err->type = "invalid_request_error";
    err->code = status == 400 ? "invalid_request" : NULL;
    err->param = param;
    snprintf(err->message, sizeof err->message, "%s", message);
    return false;
}

/* ==== ingress: Messages request → canonical ================================================ */

/* An image block's source → an OpenAI image_url part. */
static json_t *image_to_part(json_t *block)
{
    json_t *src = json_object_get(block, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    if (type && !strcmp(type, "url"))
        return json_pack("{s:s,s:{s:O}}", "type", "image_url", "image_url", "url",
                         json_object_get(src, "url"));
    const char *media = json_string_value(json_object_get(src, "media_type"));
    const char *data = json_string_value(json_object_get(src, "data"));
    if (!media || !data) return NULL;
    size_t n = strlen(media) + strlen(data) + 16;
    char *url = malloc(n);
    if (!url) abort();
    snprintf(url, n, "data:%s;base64,%s", media, data);
    json_t *part = json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url);
    free(url);
    return part;
}

static bool user_message_to_canonical(codec_ctx *ctx, json_t *content, json_t *messages, provider_error *err)
{
    if (json_is_string(content)) {
        json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "user", "content", content));
        return true;
    }
    if (!json_is_array(content))
        return refuse(err, 400, "messages", "messages[].content must be a string or an array");
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type) {
            json_decref(parts);
            return refuse(err, 400, "messages", "every content block needs a type");
        }
        if (json_object_get(b, "cache_control")) xlate__drop(ctx, "cache_control");
        if (!strcmp(type, "text")) {
            json_array_append_new(parts,
                                  json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text")));
        } else if (!strcmp(type, "image")) {
            json_t *p = image_to_part(b);
            if (!p) {
                json_decref(parts);
                return refuse(err, 400, "messages",
                              "an image block needs a source with media_type and data, or a url");
            }
            json_array_append_new(parts, p);
        } else if (!strcmp(type, "tool_result")) {
            /* OpenAI wants tool results as their own messages, right after the call. */
            json_t *c = json_object_get(b, "content");
            json_t *text = content_text_json(c);
            if (json_is_true(json_object_get(b, "is_error"))) xlate__drop(ctx, "tool_result.is_error");
            json_array_append_new(messages, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id",
                                                      json_object_get(b, "tool_use_id"), "content", text));
        } else {
            xlate__drop(ctx, type); /* document, search_result, server tool blocks … */
        }
    }
    if (json_array_size(parts))
        json_array_append_new(messages, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    else
        json_decref(parts);
    return true;
}

static bool assistant_message_to_canonical(codec_ctx *ctx, json_t *content, json_t *messages,
                                           provider_error *err)
{
    if (json_is_string(content)) {
        json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "assistant", "content", content));
        return true;
    }
    if (!json_is_array(content))
        return refuse(err, 400, "messages", "messages[].content must be a string or an array");
    buf text;
    buf_init(&text, 1u << 30);
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type) continue;
        if (!strcmp(type, "text")) {
            json_t *t = json_object_get(b, "text");
            if (json_is_string(t)) buf_append(&text, json_string_value(t), json_string_length(t));
        } else if (!strcmp(type, "tool_use")) {
            char *args = json_dumps(json_object_get(b, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(calls,
                                  json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(b, "id"), "type",
                                            "function", "function", "name", json_object_get(b, "name"),
                                            "arguments", args ? args : "{}"));
            free(args);
        } else {
            xlate__drop(ctx, type); /* thinking, redacted_thinking: OpenAI has no place for them */
        }
    }
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(m, "content",
                        text.len || !json_array_size(calls)
                            ? json_stringn(text.data ? text.data : "", text.len)
                            : json_null());
    if (json_array_size(calls))
        json_object_set_new(m, "tool_calls", calls);
    else
        json_decref(calls);
    json_array_append_new(messages, m);
    buf_free(&text);
    return true;
}

static json_t *request_to_canonical(codec_ctx *ctx, xlate *x, json_t *in, provider_error *err)
{
    json_t *out = json_object();
    json_t *messages = json_array();
    json_object_set_new(out, "model", json_incref(json_object_get(in, "model")));
    json_object_set_new(out, "messages", messages);

    json_t *system = json_object_get(in, "system");
    if (system) {
        if (json_is_array(system)) {
            size_t i;
            json_t *b;
            json_array_foreach(system, i, b) if (json_object_get(b, "cache_control"))
                xlate__drop(ctx, "cache_control");
        }
        json_array_append_new(messages,
                              json_pack("{s:s,s:o}", "role", "system", "content", content_text_json(system)));
    }
    json_t *msgs = json_object_get(in, "messages");
    if (!json_is_array(msgs)) {
        json_decref(out);
        refuse(err, 400, "messages", "messages: field required (an array of {role, content})");
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        bool ok;
        if (role && !strcmp(role, "user"))
            ok = user_message_to_canonical(ctx, content, messages, err);
        else if (role && !strcmp(role, "assistant"))
            ok = assistant_message_to_canonical(ctx, content, messages, err);
        else if (role && !strcmp(role, "system")) /* some clients send it in messages[] */
            ok = json_array_append_new(messages, json_pack("{s:s,s:o}", "role", "system", "content",
                                                           content_text_json(content))) == 0;
        else
            ok = refuse(err, 400, "messages", "messages[].role must be \"user\" or \"assistant\"");
        if (!ok) {
            json_decref(out);
            return NULL;
        }
    }

    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (!strcmp(key, "model") || !strcmp(key, "messages") || !strcmp(key, "system")) continue;
        if (!strcmp(key, "max_tokens")) {
            /* OpenAI's own API (and Azure's) names the limit max_completion_tokens, the only
             * name its reasoning models take; OpenAI-compatible servers know max_tokens. */
            /* no route: the request's own canonical form, before any target (max_tokens) */
            const char *type = ctx->route ? ctx->route->provider->preset->type : "";
            bool openai_api = !strcmp(type, "openai") || !strcmp(type, "azure");
            json_object_set(out, openai_api ? "max_completion_tokens" : "max_tokens", v);
        } else if (!strcmp(key, "temperature") || !strcmp(key, "top_p") || !strcmp(key, "stream")) {
            json_object_set(out, key, v);
        } else if (!strcmp(key, "stop_sequences")) {
            json_object_set(out, "stop", v);
        } else if (!strcmp(key, "metadata")) {
            json_t *user = json_object_get(v, "user_id");
            if (json_is_string(user)) json_object_set(out, "user", user);
        } else if (!strcmp(key, "tools")) {
            json_t *tools = json_array();
            size_t j;
            json_t *t;
            json_array_foreach(v, j, t)
            {
                const char *type = json_string_value(json_object_get(t, "type"));
                if (type && strcmp(type, "custom")) { /* server tools run at Anthropic only */
                    xlate__drop(ctx, type);
                    continue;
                }
                json_t *fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
                if (json_object_get(t, "description"))
                    json_object_set(fn, "description", json_object_get(t, "description"));
                json_t *schema = json_object_get(t, "input_schema");
                json_object_set_new(fn, "parameters", schema ? json_incref(schema) : json_object());
                json_array_append_new(tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
            }
            json_object_set_new(out, "tools", tools);
        } else if (!strcmp(key, "output_config")) {
            /* Structured output: output_config.format {type: json_schema, schema} is OpenAI's
             * response_format json_schema. Other settings in it have no OpenAI equivalent. */
            json_t *format = json_object_get(v, "format");
            const char *ftype = json_string_value(json_object_get(format, "type"));
            json_t *schema = json_object_get(format, "schema");
            if (ftype && !strcmp(ftype, "json_schema") && json_is_object(schema))
                json_object_set_new(out, "response_format",
                                    json_pack("{s:s,s:{s:s,s:O}}", "type", "json_schema", "json_schema",
                                              "name", "output", "schema", schema));
            const char *k;
            json_t *item;
            json_object_foreach(v, k, item) if (strcmp(k, "format")) xlate__drop(ctx, "output_config");
        } else if (!strcmp(key, "thinking")) {
            /* To a model the catalog knows reasons: its effort by the budget; else dropped.
             * Without a route (the request's own canonical form) the effort is kept: which
             * target can use it is not known yet. */
            const char *type = json_string_value(json_object_get(v, "type"));
            const catalog_entry *e = ctx->route ? ctx->route->catalog : NULL;
            if (type && !strcmp(type, "disabled")) continue;
            if (ctx->route && (!e || !(e->capabilities & CAP_REASONING))) {
                xlate__drop(ctx, key);
                continue;
            }
            json_int_t budget = json_integer_value(json_object_get(v, "budget_tokens"));
            const char *effort = !strcmp(type ? type : "", "enabled") && budget < 4096 ? "low"
                                 : budget >= 16384 ? "high"
                                                   : "medium";
            json_object_set_new(out, "reasoning_effort", json_string(effort));
        } else if (!strcmp(key, "tool_choice")) {
            const char *type = json_string_value(json_object_get(v, "type"));
            if (type && !strcmp(type, "any"))
                json_object_set_new(out, "tool_choice", json_string("required"));
            else if (type && !strcmp(type, "none"))
                json_object_set_new(out, "tool_choice", json_string("none"));
            else if (type && !strcmp(type, "tool"))
                json_object_set_new(out, "tool_choice",
                                    json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                                              json_object_get(v, "name")));
            else
                json_object_set_new(out, "tool_choice", json_string("auto"));
            if (json_is_true(json_object_get(v, "disable_parallel_tool_use")))
                json_object_set_new(out, "parallel_tool_calls", json_false());
        } else {
            xlate__drop(ctx, key); /* top_k, thinking, context_management, output_config, … */
        }
    }
    return out;
}

/* ==== provider: canonical request → Messages request ======================================= */

static json_t *part_to_block_inner(codec_ctx *ctx, json_t *part);

/* Some OpenAI-format clients mark prompt-cache breakpoints with Anthropic's cache_control on
 * content parts: it goes to Anthropic untouched. */
static json_t *part_to_block(codec_ctx *ctx, json_t *part)
{
    json_t *block = part_to_block_inner(ctx, part);
    json_t *cache = json_object_get(part, "cache_control");
    if (block && cache) json_object_set(block, "cache_control", cache);
    return block;
}

static json_t *part_to_block_inner(codec_ctx *ctx, json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type && !strcmp(type, "text"))
        return json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(part, "text"));
    if (type && !strcmp(type, "image_url")) {
        json_t *iu = json_object_get(part, "image_url");
        const char *url = json_string_value(json_is_string(iu) ? iu : json_object_get(iu, "url"));
        if (!url) return NULL;
        if (!strncmp(url, "data:", 5)) {
            const char *semi = strchr(url, ';'), *comma = strchr(url, ',');
            if (!semi || !comma || semi > comma) return NULL;
            json_t *media = json_stringn(url + 5, (size_t)(semi - url - 5));
            return json_pack("{s:s,s:{s:s,s:o,s:s}}", "type", "image", "source", "type", "base64",
                             "media_type", media, "data", comma + 1);
        }
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
    }
    xlate__drop(ctx, type ? type : "content part");
    return NULL;
}

static json_t *blocks_of(codec_ctx *ctx, json_t *content)
{
    json_t *blocks = json_array();
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
        return blocks;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *b = part_to_block(ctx, part);
        if (b) json_array_append_new(blocks, b);
    }
    return blocks;
}

static bool messages_from_canonical(codec_ctx *ctx, json_t *canon, json_t *out, provider_error *err)
{
    json_t *system = json_array();
    json_t *messages = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(canon, "messages"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role) {
            json_decref(system);
            json_decref(messages);
            return refuse(err, 400, "messages", "every message needs a role");
        }
        if (json_object_get(m, "name")) xlate__drop(ctx, "messages[].name");
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            json_t *blocks = blocks_of(ctx, content);
            json_array_extend(system, blocks);
            json_decref(blocks);
        } else if (!strcmp(role, "user")) {
            json_t *blocks = blocks_of(ctx, content);
            if (json_array_size(blocks))
                xlate__push_turn(messages, "user", "content", blocks);
            else
                json_decref(blocks);
        } else if (!strcmp(role, "assistant")) {
            json_t *blocks = content && !json_is_null(content) ? blocks_of(ctx, content) : json_array();
            size_t j;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), j, tc)
            {
                json_t *fn = json_object_get(tc, "function");
                json_t *input = xlate__call_arguments(tc);
                if (!input) {
                    json_decref(blocks);
                    json_decref(system);
                    json_decref(messages);
                    return refuse(
                        err, 400, "messages",
                        "an assistant tool call's arguments are not a JSON object; Anthropic needs one");
                }
                json_array_append_new(blocks, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id",
                                                        json_object_get(tc, "id"), "name",
                                                        json_object_get(fn, "name"), "input", input));
            }
            if (json_array_size(blocks))
                xlate__push_turn(messages, "assistant", "content", blocks);
            else
                json_decref(blocks);
        } else if (!strcmp(role, "tool")) {
            json_t *result =
                json_pack("{s:s,s:O,s:o}", "type", "tool_result", "tool_use_id",
                          json_object_get(m, "tool_call_id"), "content", content_text_json(content));
            xlate__push_turn(messages, "user", "content", json_pack("[o]", result));
        } else {
            json_decref(system);
            json_decref(messages);
            return refuse(err, 400, "messages", "unknown message role");
        }
    }
    if (json_array_size(system))
        json_object_set_new(out, "system", system);
    else
        json_decref(system);
    json_object_set_new(out, "messages", messages);
    return true;
}

/* reasoning_effort → thinking with a budget. OpenAI's max_completion_tokens and Anthropic's
 * max_tokens both bound reasoning and answer together, so the budget must fit below it (at
 * least 1024, Anthropic's minimum); thinking also needs the default temperature. Where it
 * cannot be said the parameter is dropped and named. "none"/"minimal" mean no thinking. */
static void thinking_from_effort(codec_ctx *ctx, json_t *canon, json_t *out)
{
    const char *effort = json_string_value(json_object_get(canon, "reasoning_effort"));
    if (!effort || !strcmp(effort, "none") || !strcmp(effort, "minimal")) return;
    const catalog_entry *e = ctx->route ? ctx->route->catalog : NULL; /* none: a client's request */
    json_int_t budget = !strcmp(effort, "low") ? 1024 : !strcmp(effort, "medium") ? 4096 : 16384;
    json_int_t max = json_integer_value(json_object_get(out, "max_tokens"));
    if (budget >= max) budget = max / 2;
    json_t *temperature = json_object_get(out, "temperature");
    bool temperature_ok = !temperature || json_number_value(temperature) == 1.0;
    /* Anthropic refuses thinking together with a forced tool. */
    const char *choice = json_string_value(json_object_get(json_object_get(out, "tool_choice"), "type"));
    bool forced = choice && (!strcmp(choice, "any") || !strcmp(choice, "tool"));
    if ((e && !(e->capabilities & CAP_REASONING)) || budget < 1024 || !temperature_ok || forced) {
        xlate__drop(ctx, "reasoning_effort");
        return;
    }
    json_object_set_new(out, "thinking", json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens", budget));
}

/* JSON output: structured outputs (output_config.format) where the model has them — unknown
 * models are assumed current — else a forced tool whose input schema is the wanted schema
 * (the newest models refuse forced tools, the oldest lack structured outputs; the catalog's
 * json_schema capability tells them apart). */
static void json_output(codec_ctx *ctx, xlate *x, json_t *canon, json_t *out)
{
    json_t *v = json_object_get(canon, "response_format");
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type || !strcmp(type, "text")) return;
    json_t *schema = json_object_get(json_object_get(v, "json_schema"), "schema");
    const catalog_entry *e = ctx->route ? ctx->route->catalog : NULL; /* none: a client's request */
    if (!e || (e->capabilities & CAP_JSON_SCHEMA)) {
        json_object_set_new(out, "output_config",
                            json_pack("{s:{s:s,s:o}}", "format", "type", "json_schema", "schema",
                                      schema ? json_incref(schema) : json_pack("{s:s}", "type", "object")));
        return;
    }
    json_t *tool = json_pack("{s:s,s:s,s:o}", "name", ANTHROPIC_JSON_TOOL, "description",
                             "Give the answer as this tool's input.", "input_schema",
                             schema ? json_incref(schema) : json_pack("{s:s}", "type", "object"));
    json_t *tools = json_object_get(out, "tools");
    if (!tools) json_object_set_new(out, "tools", tools = json_array());
    json_array_append_new(tools, tool);
    json_object_set_new(out, "tool_choice",
                        json_pack("{s:s,s:s}", "type", "tool", "name", ANTHROPIC_JSON_TOOL));
    x->json_via_tool = true;
}

static json_t *request_from_canonical(codec_ctx *ctx, xlate *x, json_t *canon, provider_error *err)
{
    json_t *n = json_object_get(canon, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1) {
        refuse(err, 400, "n",
               "this model's provider (Anthropic) returns one choice per request; n > 1 is not possible");
        return NULL;
    }
    /* Without a route this is a client's request (provider_request_in_ingress): its model as
     * named, and max_tokens only when given — the client's own body supplies the rest. */
    json_t *out = json_object();
    if (ctx->route)
        json_object_set_new(out, "model", json_string(ctx->route->upstream_model));
    else if (json_is_string(json_object_get(canon, "model")))
        json_object_set(out, "model", json_object_get(canon, "model"));
    if (!messages_from_canonical(ctx, canon, out, err)) {
        json_decref(out);
        return NULL;
    }
    json_t *max = json_object_get(canon, "max_completion_tokens");
    if (!json_is_integer(max)) max = json_object_get(canon, "max_tokens");
    if (!json_is_integer(max)) max = NULL;
    /* Anthropic requires max_tokens; the catalog's limit for the model when the client
     * gives none. */
    if (max || ctx->route)
        json_object_set_new(out, "max_tokens",
                            max ? json_incref(max) : json_integer(ctx->route->max_output_tokens));

    bool parallel_off = json_is_false(json_object_get(canon, "parallel_tool_calls"));
    const char *key;
    json_t *v;
    json_object_foreach(canon, key, v)
    {
        if (json_is_null(v)) continue; /* an explicit null is the parameter's absence */
        if (!strcmp(key, "model") || !strcmp(key, "messages") || !strcmp(key, "max_tokens") ||
            !strcmp(key, "max_completion_tokens") || !strcmp(key, "parallel_tool_calls") ||
            !strcmp(key, "n") || !strcmp(key, "stream_options"))
            continue;
        if (!strcmp(key, "temperature") || !strcmp(key, "top_p") || !strcmp(key, "top_k") ||
            !strcmp(key, "stream")) {
            json_object_set(out, key, v);
        } else if (!strcmp(key, "stop")) {
            json_object_set_new(out, "stop_sequences",
                                json_is_string(v) ? json_pack("[O]", v) : json_incref(v));
        } else if (!strcmp(key, "user")) {
            json_object_set_new(out, "metadata", json_pack("{s:O}", "user_id", v));
        } else if (!strcmp(key, "tools")) {
            json_t *tools = json_array();
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t)
            {
                json_t *tool = xlate__function_tool(ctx, t, "input_schema", true); /* required there */
                if (tool) json_array_append_new(tools, tool);
            }
            json_object_set_new(out, "tools", tools);
        } else if (!strcmp(key, "tool_choice")) {
            const char *s = json_string_value(v);
            json_t *choice;
            if (s && !strcmp(s, "required"))
                choice = json_pack("{s:s}", "type", "any");
            else if (s && !strcmp(s, "none"))
                choice = json_pack("{s:s}", "type", "none");
            else if (json_is_object(v))
                choice = json_pack("{s:s,s:O}", "type", "tool", "name",
                                   json_object_get(json_object_get(v, "function"), "name"));
            else
                choice = json_pack("{s:s}", "type", "auto");
            json_object_set_new(out, "tool_choice", choice);
        } else if (!strcmp(key, "reasoning_effort")) {
            continue; /* after the loop, once max_tokens and temperature are known */
        } else if (!strcmp(key, "response_format")) {
            continue; /* after the loop, so a later tools or tool_choice cannot undo it */
        } else {
            /* logprobs, seed, penalties, logit_bias, reasoning_effort, service_tier, … */
            xlate__drop(ctx, key);
        }
    }
    json_output(ctx, x, canon, out);
    thinking_from_effort(ctx, canon, out);
    /* Agents send `tools: []` when every tool is off; Anthropic refuses a tool_choice without
     * tools, and both say nothing then. */
    if (!json_array_size(json_object_get(out, "tools"))) {
        json_object_del(out, "tools");
        json_object_del(out, "tool_choice");
    } else if (parallel_off) {
        json_t *choice = json_object_get(out, "tool_choice");
        if (!choice) json_object_set_new(out, "tool_choice", choice = json_pack("{s:s}", "type", "auto"));
        json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    return out;
}

/* ==== replies ============================================================================== */

const char *anthropic__finish_from_stop(const char *stop)
{
    if (!stop) return "stop";
    if (!strcmp(stop, "max_tokens") || !strcmp(stop, "model_context_window_exceeded")) return "length";
    if (!strcmp(stop, "tool_use")) return "tool_calls";
    if (!strcmp(stop, "refusal")) return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *anthropic__stop_from_finish(const char *finish)
{
    if (!finish) return "end_turn";
    if (!strcmp(finish, "length")) return "max_tokens";
    if (!strcmp(finish, "tool_calls") || !strcmp(finish, "function_call")) return "tool_use";
    if (!strcmp(finish, "content_filter")) return "refusal";
    return "end_turn";
}

/* Anthropic's input_tokens leave out cache reads and writes (OpenAI's prompt counts them). */
long anthropic__input(const usage_counts *u)
{
    long input = u->prompt - u->cached - u->cache_write;
    return input < 0 ? 0 : input;
}

/* ==== usage ================================================================================ */

/* A reply's usage, or a stream event's (message_start carries it inside its message). */
static json_t *usage_in(json_t *message)
{
    json_t *u = json_object_get(message, "usage");
    return u ? u : json_object_get(json_object_get(message, "message"), "usage");
}

static void usage_note(usage_counts *c, count_getter get, const void *source)
{
    long input = c->prompt - c->cached - c->cache_write;
    get(source, "input_tokens", &input);
    get(source, "cache_read_input_tokens", &c->cached);
    get(source, "cache_creation_input_tokens", &c->cache_write);
    get(source, "output_tokens", &c->completion);
    c->prompt = input + c->cached + c->cache_write;
}

static const char *reply_shape(json_t *reply)
{
    json_t *content = json_object_get(reply, "content");
    if (!json_is_array(content)) return "content is not an array";
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (!json_is_string(json_object_get(b, "type"))) return "a content block has no type";
    }
    return NULL;
}

static json_t *reply_to_canonical(xlate *x, json_t *reply)
{
    buf text, reasoning;
    buf_init(&text, 1u << 30);
    buf_init(&reasoning, 1u << 30);
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(reply, "content"), i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type) continue;
        if (!strcmp(type, "text")) {
            json_t *t = json_object_get(b, "text");
            if (json_is_string(t)) buf_append(&text, json_string_value(t), json_string_length(t));
        } else if (!strcmp(type, "thinking")) {
            json_t *t = json_object_get(b, "thinking");
            if (json_is_string(t)) buf_append(&reasoning, json_string_value(t), json_string_length(t));
        } else if (!strcmp(type, "tool_use")) {
            json_t *input = json_object_get(b, "input");
            char *args = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            if (!args) args = strdup("{}");
            const char *name = json_string_value(json_object_get(b, "name"));
            if (x->json_via_tool && name && !strcmp(name, ANTHROPIC_JSON_TOOL)) {
                buf_append(&text, args, strlen(args));
            } else {
                json_array_append_new(calls,
                                      json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(b, "id"),
                                                "type", "function", "function", "name",
                                                json_object_get(b, "name"), "arguments", args));
            }
            free(args);
        }
    }
    const char *stop = json_string_value(json_object_get(reply, "stop_reason"));
    const char *finish = anthropic__finish_from_stop(stop);
    if (x->json_via_tool && !json_array_size(calls) && !strcmp(finish, "tool_calls")) finish = "stop";
    json_t *message =
        json_pack("{s:s,s:o}", "role", "assistant", "content",
                  text.len || !json_array_size(calls) ? json_stringn(text.data ? text.data : "", text.len)
                                                      : json_null());
    if (json_array_size(calls))
        json_object_set_new(message, "tool_calls", calls);
    else
        json_decref(calls);
    /* Thinking, as OpenAI-compatible providers that reason return it (reasoning_content). */
    if (reasoning.len)
        json_object_set_new(message, "reasoning_content", json_stringn(reasoning.data, reasoning.len));
    buf_free(&text);
    buf_free(&reasoning);
    json_t *usage = xlate__usage(x);
    const char *id = json_string_value(json_object_get(reply, "id"));
    const char *model = json_string_value(json_object_get(reply, "model"));
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s,s:n}],s:o}", "id", id ? id : "msg", "object",
                     "chat.completion", "created", (json_int_t)x->created, "model", model ? model : x->model,
                     "choices", "index", 0, "message", message, "finish_reason", finish, "logprobs", "usage",
                     usage);
}

static json_t *reply_message(xlate *x, json_t *reply)
{
    json_t *choice = json_array_get(json_object_get(reply, "choices"), 0);
    json_t *message = json_object_get(choice, "message");
    json_t *content = json_array();
    json_t *reasoning = json_object_get(message, "reasoning_content");
    if (json_is_string(reasoning) && json_string_length(reasoning))
        json_array_append_new(
            content, json_pack("{s:s,s:O,s:s}", "type", "thinking", "thinking", reasoning, "signature", ""));
    json_t *text = json_object_get(message, "content");
    if (json_is_string(text) && json_string_length(text))
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", text));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(message, "tool_calls"), i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *input = xlate__call_arguments(tc);
        if (!input) { /* keep the provider's bytes visible rather than lose them */
            const char *args = json_string_value(json_object_get(fn, "arguments"));
            input = json_pack("{s:s}", "_raw_arguments", args ? args : "");
        }
        json_array_append_new(content, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id",
                                                 json_object_get(tc, "id"), "name",
                                                 json_object_get(fn, "name"), "input", input));
    }
    const usage_counts *u = &x->ctx->usage;
    const char *id = json_string_value(json_object_get(reply, "id"));
    const char *model = json_string_value(json_object_get(reply, "model"));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:{s:I,s:I,s:I,s:I}}", "id", id ? id : "msg", "type",
                     "message", "role", "assistant", "model", model ? model : x->model, "content", content,
                     "stop_reason",
                     anthropic__stop_from_finish(json_string_value(json_object_get(choice, "finish_reason"))),
                     "stop_sequence", "usage", "input_tokens", (json_int_t)anthropic__input(u),
                     "output_tokens", (json_int_t)u->completion, "cache_read_input_tokens",
                     (json_int_t)u->cached, "cache_creation_input_tokens", (json_int_t)u->cache_write);
}

static void reply_from_canonical(xlate *x, json_t *canon, buf *out)
{
    json_t *message = reply_message(x, canon);
    if (message) xlate__append_json(out, message);
    json_decref(message);
}

/* ==== errors ================================================================================ */

static const char *error_type_for(int status)
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
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static void error_body(buf *out, int status, const char *type_openai, const char *code, const char *param,
                       const char *message)
{
    const char *type = error_type_for(status);
    buf_append_lit(out, "{\"type\":\"error\",\"error\":{\"type\":");
    buf_append_json_string(out, type, strlen(type));
    buf_append_lit(out, ",\"message\":");
    buf_append_json_string(out, message, strlen(message));
    buf_append_lit(out, "}}");
}

static bool error_parse(json_t *body, const char **type, const char **message)
{
    json_t *e = json_object_get(body, "error");
    *message = json_string_value(json_object_get(e, "message"));
    *type = json_string_value(json_object_get(e, "type"));
    return *message != NULL;
}

/* ==== the row ================================================================================ */

static const char *url(codec_ctx *ctx)
{
    return xlate__concat(
        ctx, ctx->route->provider->base_url,
        ctx->endpoint == ENDPOINT_COUNT_TOKENS ? "/v1/messages/count_tokens" : "/v1/messages", NULL);
}

/* The raw event is a `message_stop` (the fast path's end marker). */
static bool stream_is_end(const char *raw, size_t len)
{
    static const char marker[] = "event: message_stop";
    return len >= sizeof marker - 1 && memmem(raw, len, "message_stop", 12) &&
           (!memcmp(raw, marker, sizeof marker - 1) || memmem(raw, len, "\"type\":\"message_stop\"", 22));
}

static void stream_error(xlate *x, buf *out, const char *message)
{
    (void)x;
    buf_append_lit(out, "event: error\ndata: ");
    error_body(out, 502, NULL, NULL, NULL, message);
    buf_append_lit(out, "\n\n");
}

const wire_codec anthropic__codec = {
    .name = "Anthropic Messages",
    .endpoints = WIRE_ENDPOINT(ENDPOINT_CHAT_COMPLETIONS) | WIRE_ENDPOINT(ENDPOINT_MESSAGES) |
                 WIRE_ENDPOINT(ENDPOINT_COUNT_TOKENS) | WIRE_ENDPOINT(ENDPOINT_RESPONSES),
    .own_header = "anthropic-beta",
    .request_to_canonical = request_to_canonical,
    .request_from_canonical = request_from_canonical,
    .url = url,
    .reply_shape = reply_shape,
    .reply_to_canonical = reply_to_canonical,
    .reply_from_canonical = reply_from_canonical,
    .usage_key = "usage",
    .usage_in = usage_in,
    .usage_note = usage_note,
    .stream_decode = anthropic__stream_decode,
    .stream_is_end = stream_is_end,
    .stream_reports_usage = true, /* message_start and message_delta carry it */
    .stream_encode = anthropic__stream_encode,
    .stream_encode_finish = anthropic__stream_finish,
    .stream_error = stream_error,
    .error_body = error_body,
    .error_parse = error_parse,
};
