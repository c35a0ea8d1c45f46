/* responses.c — OpenAI's Responses API (POST /v1/responses) as a client format, and its row.
 *
 * To a provider that serves the Responses API itself (provider_serves_responses) a request is
 * forwarded byte for byte, like any request whose formats match; what is here serves the
 * others. A Responses request becomes a canonical (chat) request: `instructions` the system
 * message, `input` items the messages (function calls and their outputs as tool calls and
 * tool messages, reasoning items as the next assistant turn's reasoning_content), function
 * tools as chat tools, `text.format` as response_format, `reasoning.effort` as
 * reasoning_effort, `max_output_tokens` as max_completion_tokens. A built-in tool (web
 * search, file search, computer use, …) or an item only OpenAI's store knows is refused with
 * a 400 that names it: no chat provider has them. The canonical reply becomes a Response
 * object (reasoning, message and function_call output items, usage in the Responses shape);
 * streams are encoded in responses_stream.c.
 *
 * previous_response_id and store: the conversation of a translated response is kept in the
 * response store (response_store.h) under the id aigw gave it, and put in front of the next
 * turn's input; an id aigw does not hold is OpenAI's 400 previous_response_not_found. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "providers/responses_internal.h"

/* ==== requests: Responses request → canonical ============================================== */

static json_t *refuse(provider_error *err, bool whole, const char *code, const char *param, const char *fmt,
                      const char *a)
{
    err->status = 400;
    err->type = "invalid_request_error";
    err->code = code;
    err->param = param;
    err->whole_request = whole;
    snprintf(err->message, sizeof err->message, fmt, a);
    return NULL;
}

/* A content part of an input message as a chat content part; NULL with *err filled when it
 * cannot be one. */
static json_t *input_part(json_t *part, provider_error *err)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!type) return refuse(err, true, "invalid_value", "input", "%s", "every content part needs a type");
    if (!strcmp(type, "input_text") || !strcmp(type, "output_text")) {
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text))
            return refuse(err, true, "invalid_value", "input", "a %s part needs a string text", type);
        return json_pack("{s:s,s:O}", "type", "text", "text", text);
    }
    if (!strcmp(type, "refusal")) {
        json_t *text = json_object_get(part, "refusal");
        return json_pack("{s:s,s:O}", "type", "text", "text", json_is_string(text) ? text : json_string(""));
    }
    if (!strcmp(type, "input_image")) {
        json_t *url = json_object_get(part, "image_url");
        if (!json_is_string(url))
            return refuse(err, false, "unsupported_value", "input", "%s",
                          "an input_image needs image_url (a URL or a data: URL); a file_id needs "
                          "OpenAI's Files API, which this model's provider lacks");
        json_t *image = json_pack("{s:O}", "url", url);
        json_t *detail = json_object_get(part, "detail");
        if (json_is_string(detail)) json_object_set(image, "detail", detail);
        return json_pack("{s:s,s:o}", "type", "image_url", "image_url", image);
    }
    if (!strcmp(type, "input_file")) {
        json_t *data = json_object_get(part, "file_data");
        if (!json_is_string(data))
            return refuse(err, false, "unsupported_value", "input", "%s",
                          "an input_file needs file_data; a file_id or file_url needs OpenAI's own "
                          "API, which this model's provider lacks");
        json_t *file = json_pack("{s:O}", "file_data", data);
        json_t *name = json_object_get(part, "filename");
        if (json_is_string(name)) json_object_set(file, "filename", name);
        return json_pack("{s:s,s:o}", "type", "file", "file", file);
    }
    return refuse(err, true, "invalid_value", "input", "unknown content part type '%.60s'", type);
}

/* A message's content: a string, or parts (text joined for an assistant, whose turn chat
 * providers take as a string). */
static json_t *message_content(json_t *content, bool assistant, provider_error *err)
{
    if (json_is_string(content)) return json_incref(content);
    if (!json_is_array(content))
        return refuse(err, true, "invalid_value", "input", "%s",
                      "a message's content must be a string or an array of parts");
    json_t *parts = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *p = input_part(part, err);
        if (!p) {
            json_decref(parts);
            return NULL;
        }
        json_array_append_new(parts, p);
    }
    if (!assistant) return parts;
    buf text;
    buf_init(&text, (size_t)1 << 40);
    json_array_foreach(parts, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) buf_append(&text, json_string_value(t), json_string_length(t));
    }
    json_decref(parts);
    json_t *s = json_stringn(text.data ? text.data : "", text.len);
    buf_free(&text);
    return s;
}

/* The assistant message the next function call joins: the last message when it is the
 * assistant's, else a new one. A reasoning item's text waiting for it goes with it. */
static json_t *assistant_turn(json_t *messages, json_t **reasoning)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *role = json_string_value(json_object_get(last, "role"));
    if (!last || !role || strcmp(role, "assistant") != 0 || *reasoning) {
        last = json_pack("{s:s,s:n}", "role", "assistant", "content");
        json_array_append_new(messages, last);
    }
    if (*reasoning) {
        json_object_set_new(last, "reasoning_content", *reasoning);
        *reasoning = NULL;
    }
    return last;
}

/* The text of a reasoning item's summary (and content) parts, joined by blank lines; NULL when
 * it has none. */
static json_t *reasoning_text(json_t *item)
{
    static const char *const members[] = {"summary", "content"};
    buf text;
    buf_init(&text, (size_t)1 << 40);
    for (size_t m = 0; m < 2; m++) {
        size_t i;
        json_t *part;
        json_array_foreach(json_object_get(item, members[m]), i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (!json_is_string(t) || !json_string_length(t)) continue;
            if (text.len) buf_append_lit(&text, "\n\n");
            buf_append(&text, json_string_value(t), json_string_length(t));
        }
    }
    json_t *out = text.len ? json_stringn(text.data, text.len) : NULL;
    buf_free(&text);
    return out;
}

/* A function_call_output's output as a tool message's content: a string, or its text parts. */
static json_t *call_output(json_t *output)
{
    if (json_is_string(output)) return json_incref(output);
    json_t *parts = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(output, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (json_is_string(text))
            json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", text));
    }
    return parts;
}

/* The input items, in order, as chat messages appended to messages. */
static bool input_messages(codec_ctx *ctx, json_t *input, json_t *messages, provider_error *err)
{
    if (json_is_string(input)) {
        json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "user", "content", input));
        return true;
    }
    if (!json_is_array(input)) {
        refuse(err, true, "invalid_type", "input", "%s", "input must be a string or an array of items");
        return false;
    }
    json_t *reasoning = NULL; /* a reasoning item's text, for the assistant turn after it */
    size_t i;
    json_t *item;
    json_array_foreach(input, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *role = json_string_value(json_object_get(item, "role"));
        if (!json_is_object(item) || (!type && !role)) {
            refuse(err, true, "invalid_value", "input", "%s", "every input item needs a type (or a role)");
            goto fail;
        }
        if (!type || !strcmp(type, "message")) {
            if (!role || (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") &&
                          strcmp(role, "developer"))) {
                refuse(err, true, "invalid_value", "input", "%s",
                       "a message's role must be user, assistant, system or developer");
                goto fail;
            }
            bool assistant = !strcmp(role, "assistant");
            json_t *content = message_content(json_object_get(item, "content"), assistant, err);
            if (!content) goto fail;
            json_t *m = json_pack("{s:s,s:o}", "role", role, "content", content);
            if (assistant && reasoning) {
                json_object_set_new(m, "reasoning_content", reasoning);
                reasoning = NULL;
            }
            json_array_append_new(messages, m);
        } else if (!strcmp(type, "function_call")) {
            json_t *call_id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
            json_t *args = json_object_get(item, "arguments");
            if (!json_is_string(call_id) || !json_is_string(name) || !json_is_string(args)) {
                refuse(err, true, "invalid_value", "input", "%s",
                       "a function_call item needs call_id, name and arguments (strings)");
                goto fail;
            }
            json_t *turn = assistant_turn(messages, &reasoning);
            json_t *calls = json_object_get(turn, "tool_calls");
            if (!calls) json_object_set_new(turn, "tool_calls", calls = json_array());
            json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", call_id, "type", "function",
                                                   "function", "name", name, "arguments", args));
        } else if (!strcmp(type, "function_call_output")) {
            json_t *call_id = json_object_get(item, "call_id"), *output = json_object_get(item, "output");
            if (!json_is_string(call_id) || !(json_is_string(output) || json_is_array(output))) {
                refuse(err, true, "invalid_value", "input", "%s",
                       "a function_call_output item needs call_id and output");
                goto fail;
            }
            json_array_append_new(messages, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id",
                                                      call_id, "content", call_output(output)));
        } else if (!strcmp(type, "reasoning")) {
            json_decref(reasoning);
            reasoning = reasoning_text(item);
            if (json_object_get(item, "encrypted_content")) xlate__drop(ctx, "reasoning.encrypted_content");
        } else if (!strcmp(type, "item_reference")) {
            refuse(
                err, false, "unsupported_value", "input", "%s",
                "an item_reference names an item in OpenAI's own store, which this model's provider lacks; "
                "send the item itself, or previous_response_id");
            goto fail;
        } else {
            refuse(err, false, "unsupported_value", "input",
                   "input item type '%.60s' belongs to a built-in tool, which this model's provider lacks",
                   type);
            goto fail;
        }
    }
    json_decref(reasoning);
    return true;
fail:
    json_decref(reasoning);
    return false;
}

/* Function tools as chat tools; a built-in tool is refused (chat providers have none). */
static json_t *chat_tools(json_t *tools, provider_error *err)
{
    if (!json_is_array(tools))
        return refuse(err, true, "invalid_type", "tools", "%s", "tools must be an array");
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type || strcmp(type, "function") != 0) {
            json_decref(out);
            return refuse(err, false, "unsupported_tool", "tools",
                          "the built-in tool '%.60s' is OpenAI's own and this model's provider has none; "
                          "use function tools, or route to an OpenAI provider (responses: native)",
                          type ? type : "(no type)");
        }
        json_t *name = json_object_get(t, "name");
        if (!json_is_string(name)) {
            json_decref(out);
            return refuse(err, true, "invalid_value", "tools", "%s", "a function tool needs a name");
        }
        json_t *fn = json_pack("{s:O}", "name", name);
        static const char *const members[] = {"description", "parameters", "strict"};
        for (size_t m = 0; m < 3; m++) {
            json_t *v = json_object_get(t, members[m]);
            if (v && !json_is_null(v)) json_object_set(fn, members[m], v);
        }
        json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    return out;
}

static json_t *chat_tool_choice(codec_ctx *ctx, json_t *choice, provider_error *err)
{
    if (json_is_string(choice)) return json_incref(choice);
    const char *type = json_string_value(json_object_get(choice, "type"));
    if (type && !strcmp(type, "function"))
        return json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                         json_object_get(choice, "name"));
    if (type && !strcmp(type, "allowed_tools")) { /* the list narrows; the mode is kept */
        xlate__drop(ctx, "tool_choice.tools");
        json_t *mode = json_object_get(choice, "mode");
        return json_is_string(mode) ? json_incref(mode) : json_string("auto");
    }
    return refuse(err, false, "unsupported_value", "tool_choice",
                  "tool_choice '%.60s' names a built-in tool, which this model's provider lacks",
                  type ? type : "(no type)");
}

/* text.format → response_format; text.verbosity → verbosity. */
static bool chat_text(json_t *text, json_t *canon, provider_error *err)
{
    json_t *verbosity = json_object_get(text, "verbosity");
    if (json_is_string(verbosity)) json_object_set(canon, "verbosity", verbosity);
    json_t *format = json_object_get(text, "format");
    const char *type = json_string_value(json_object_get(format, "type"));
    if (!format || json_is_null(format) || (type && !strcmp(type, "text"))) return true;
    if (type && !strcmp(type, "json_object")) {
        json_object_set_new(canon, "response_format", json_pack("{s:s}", "type", "json_object"));
        return true;
    }
    if (type && !strcmp(type, "json_schema")) {
        json_t *schema = json_object();
        static const char *const members[] = {"name", "description", "schema", "strict"};
        for (size_t m = 0; m < 4; m++) {
            json_t *v = json_object_get(format, members[m]);
            if (v) json_object_set(schema, members[m], v);
        }
        json_object_set_new(canon, "response_format",
                            json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", schema));
        return true;
    }
    refuse(err, true, "invalid_value", "text.format", "unknown text.format type '%.60s'",
           type ? type : "(none)");
    return false;
}

/* The stored conversation of previous_response_id, appended to messages. */
static bool previous_messages(codec_ctx *ctx, json_t *id, json_t *messages, provider_error *err)
{
    const char *s = json_string_value(id);
    if (!s) {
        refuse(err, true, "invalid_type", "previous_response_id", "%s",
               "previous_response_id must be a string");
        return false;
    }
    char *conversation;
    size_t len;
    json_t *stored = NULL;
    json_error_t jerr;
    if (response_store_get(ctx->tenant, s, ctx->arena, &conversation, &len, NULL, NULL))
        stored = json_loadb(conversation, len, 0, &jerr);
    if (!json_is_array(stored)) {
        json_decref(stored);
        /* OpenAI's own wording and code; the id is the client's, shown cut short. */
        refuse(err, false, "previous_response_not_found", "previous_response_id",
               "Previous response with id '%.80s' not found.", s);
        return false;
    }
    json_array_extend(messages, stored);
    json_decref(stored);
    return true;
}

/* Members of the request a Response object repeats, as the API documents their defaults. */
static json_t *echo_of(json_t *in)
{
    json_t *echo = json_pack("{s:n,s:n,s:{},s:b,s:n,s:{s:n,s:n},s:b,s:f,s:{s:{s:s}},s:s,s:[],s:f,s:s,s:n}",
                             "instructions", "max_output_tokens", "metadata", "parallel_tool_calls", 1,
                             "previous_response_id", "reasoning", "effort", "summary", "store", 1,
                             "temperature", 1.0, "text", "format", "type", "text", "tool_choice", "auto",
                             "tools", "top_p", 1.0, "truncation", "disabled", "user");
    const char *key;
    json_t *v;
    json_object_foreach(echo, key, v)
    {
        json_t *given = json_object_get(in, key);
        if (given && !json_is_null(given)) json_object_set(echo, key, given);
    }
    return echo;
}

static json_t *request_to_canonical(codec_ctx *ctx, xlate *x, json_t *in, provider_error *err)
{
    json_t *messages = json_array();
    json_t *prev = json_object_get(in, "previous_response_id");
    if (prev && !json_is_null(prev) && !previous_messages(ctx, prev, messages, err)) goto fail;
    json_t *input = json_object_get(in, "input");
    if (input && !input_messages(ctx, input, messages, err)) goto fail;

    json_t *canon = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (json_is_null(v)) continue;
        if (!strcmp(key, "input") || !strcmp(key, "instructions") || !strcmp(key, "previous_response_id") ||
            !strcmp(key, "store") || !strcmp(key, "truncation") || !strcmp(key, "stream_options") ||
            !strcmp(key, "include"))
            continue; /* read above or below; truncation "auto" and include have nothing to do here */
        if (!strcmp(key, "model") || !strcmp(key, "stream") || !strcmp(key, "temperature") ||
            !strcmp(key, "top_p") || !strcmp(key, "parallel_tool_calls") || !strcmp(key, "user") ||
            !strcmp(key, "service_tier") || !strcmp(key, "top_logprobs") ||
            !strcmp(key, "safety_identifier") || !strcmp(key, "prompt_cache_key") ||
            !strcmp(key, "metadata")) {
            json_object_set(canon, key, v);
        } else if (!strcmp(key, "max_output_tokens")) {
            json_object_set(canon, "max_completion_tokens", v);
        } else if (!strcmp(key, "reasoning")) {
            json_t *effort = json_object_get(v, "effort");
            if (json_is_string(effort)) json_object_set(canon, "reasoning_effort", effort);
        } else if (!strcmp(key, "tools")) {
            json_t *tools = chat_tools(v, err);
            if (!tools) goto fail_canon;
            json_object_set_new(canon, "tools", tools);
        } else if (!strcmp(key, "tool_choice")) {
            json_t *choice = chat_tool_choice(ctx, v, err);
            if (!choice) goto fail_canon;
            json_object_set_new(canon, "tool_choice", choice);
        } else if (!strcmp(key, "text")) {
            if (!chat_text(v, canon, err)) goto fail_canon;
        } else if ((!strcmp(key, "background") && json_is_true(v)) || !strcmp(key, "conversation") ||
                   !strcmp(key, "prompt")) {
            refuse(err, false, "unsupported_parameter", key,
                   "'%s' needs OpenAI's own Responses API, which this model's provider lacks", key);
            goto fail_canon;
        } else if (strcmp(key, "background") != 0) {
            xlate__drop(ctx, key); /* max_tool_calls, … */
        }
    }

    bool store = !json_is_false(json_object_get(in, "store"));
    if (x) {
        responses_state *s = arena_alloc(ctx->arena, sizeof *s);
        memset(s, 0, sizeof *s);
        response_store_new_id(s->id);
        json_t *echo = echo_of(in);
        s->echo = xlate__arena_json(ctx, echo, &s->echo_len);
        json_decref(echo);
        /* The conversation kept for the next turn leaves the instructions out: OpenAI does
         * not carry them over either. */
        if (store) s->history = xlate__arena_json(ctx, messages, &s->history_len);
        s->open_text = s->open_reasoning = -1;
        x->ingress_state = s;
    }
    json_t *instructions = json_object_get(in, "instructions");
    if (json_is_string(instructions) && json_string_length(instructions))
        json_array_insert_new(messages, 0, json_pack("{s:s,s:O}", "role", "system", "content", instructions));
    json_object_set_new(canon, "messages", messages);
    return canon;

fail_canon:
    json_decref(canon);
fail:
    json_decref(messages);
    return NULL;
}

/* ==== replies: canonical → Response object ================================================== */

static void write_usage(buf *out, const usage_counts *u)
{
    buf_append_lit(out, "{\"input_tokens\":");
    xlate__append_integer(out, u->prompt);
    buf_append_lit(out, ",\"input_tokens_details\":{\"cached_tokens\":");
    xlate__append_integer(out, u->cached);
    buf_append_lit(out, "},\"output_tokens\":");
    xlate__append_integer(out, u->completion);
    buf_append_lit(out, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    xlate__append_integer(out, u->reasoning);
    buf_append_lit(out, "},\"total_tokens\":");
    xlate__append_integer(out, u->prompt + u->completion);
    buf_append_lit(out, "}");
}

json_t *responses__item(const responses_state *s, int i, bool done)
{
    const rsp_item *it = &s->items[i];
    const char *text = it->text.p ? it->text.p : "";
    switch (it->kind) {
    case ITEM_REASONING:
        return it->text.len && done
                   ? json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "id", it->id, "type", "reasoning", "summary",
                               "type", "summary_text", "text", text)
                   : json_pack("{s:s,s:s,s:[]}", "id", it->id, "type", "reasoning", "summary");
    case ITEM_MESSAGE:
        return json_pack("{s:s,s:s,s:s,s:o,s:s}", "id", it->id, "type", "message", "status",
                         done ? "completed" : "in_progress", "content",
                         done ? json_pack("[{s:s,s:[],s:[],s:s}]", "type", "output_text", "annotations",
                                          "logprobs", "text", text)
                              : json_array(),
                         "role", "assistant");
    default:
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", it->id, "type", "function_call", "status",
                         done ? "completed" : "in_progress", "arguments", done ? text : "", "call_id",
                         it->call_id, "name", it->name);
    }
}

/* A Response is incomplete when the model stopped at its token limit or a content filter. */
static const char *incomplete_reason(const char *finish)
{
    if (finish && !strcmp(finish, "length")) return "max_output_tokens";
    if (finish && !strcmp(finish, "content_filter")) return "content_filter";
    return NULL;
}

void responses__write_object(xlate *x, const char *status, buf *out)
{
    responses_state *s = x->ingress_state;
    bool in_progress = !strcmp(status, "in_progress");
    buf_append_lit(out, "{\"id\":\"");
    buf_append(out, s->id, strlen(s->id));
    buf_append_lit(out, "\",\"object\":\"response\",\"created_at\":");
    xlate__append_integer(out, x->created);
    buf_append_lit(out, ",\"status\":\"");
    buf_append(out, status, strlen(status));
    buf_append_lit(out, "\",\"error\":null,\"incomplete_details\":");
    const char *reason = incomplete_reason(s->finish);
    if (reason && !strcmp(status, "incomplete")) {
        buf_append_lit(out, "{\"reason\":\"");
        buf_append(out, reason, strlen(reason));
        buf_append_lit(out, "\"}");
    } else {
        buf_append_lit(out, "null");
    }
    /* the request's members, written once at the start (an object with members: "{…}") */
    buf_append_lit(out, ",");
    buf_append(out, s->echo + 1, s->echo_len - 2);
    buf_append_lit(out, ",\"model\":");
    buf_append_json_string(out, x->model, strlen(x->model));
    buf_append_lit(out, ",\"output\":[");
    for (int i = 0; !in_progress && i < s->nitems; i++) {
        if (i) buf_append_lit(out, ",");
        json_t *item = responses__item(s, i, true);
        xlate__append_json(out, item);
        json_decref(item);
    }
    buf_append_lit(out, "],\"usage\":");
    if (in_progress)
        buf_append_lit(out, "null");
    else
        write_usage(out, &x->ctx->usage);
    buf_append_lit(out, "}");
}

const char *responses__final_status(const responses_state *s)
{
    return incomplete_reason(s->finish) ? "incomplete" : "completed";
}

rsp_item *responses__add_item(xlate *x, int kind, const char *call_id, const char *name)
{
    responses_state *s = x->ingress_state;
    if (s->nitems == XLATE_BLOCKS_MAX) return NULL;
    if (s->nitems == s->cap) {
        int cap = s->cap ? s->cap * 2 : 4;
        rsp_item *items = arena_alloc(x->ctx->arena, (size_t)cap * sizeof *items);
        if (s->nitems) memcpy(items, s->items, (size_t)s->nitems * sizeof *items);
        s->items = items;
        s->cap = cap;
    }
    rsp_item *it = &s->items[s->nitems];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    static const char *const prefix[] = {
        [ITEM_REASONING] = "rs_", [ITEM_MESSAGE] = "msg_", [ITEM_CALL] = "fc_"};
    snprintf(it->id, sizeof it->id, "%s%s_%d", prefix[kind], s->id + 5, s->nitems);
    arena *a = x->ctx->arena;
    it->call_id = call_id ? arena_strndup(a, call_id, strlen(call_id))
                          : xlate__concat(x->ctx, "call_", it->id + 3, NULL);
    it->name = arena_strndup(a, name ? name : "", name ? strlen(name) : 0);
    s->nitems++;
    return it;
}

bool responses__append(xlate *x, rsp_item *it, const char *text, size_t len)
{
    responses_state *s = x->ingress_state;
    if (s->output_bytes + len > RESPONSES_OUTPUT_MAX) return false;
    s->output_bytes += len;
    text_acc *t = &it->text;
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *p = arena_alloc(x->ctx->arena, cap);
        if (t->len) memcpy(p, t->p, t->len);
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, text, len);
    t->len += len;
    t->p[t->len] = '\0';
    return true;
}

/* The assistant's turn as a canonical message, for the stored conversation. */
static json_t *assistant_message(const responses_state *s)
{
    json_t *m = json_pack("{s:s,s:n}", "role", "assistant", "content");
    json_t *calls = json_array();
    for (int i = 0; i < s->nitems; i++) {
        const rsp_item *it = &s->items[i];
        json_t *text = json_stringn(it->text.p ? it->text.p : "", it->text.len);
        if (it->kind == ITEM_MESSAGE)
            json_object_set_new(m, "content", text);
        else if (it->kind == ITEM_REASONING)
            json_object_set_new(m, "reasoning_content", text);
        else
            json_array_append_new(calls,
                                  json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", it->call_id, "type", "function",
                                            "function", "name", it->name, "arguments", text));
    }
    if (json_array_size(calls))
        json_object_set_new(m, "tool_calls", calls);
    else
        json_decref(calls);
    return m;
}

void responses__keep(xlate *x, const char *response, size_t len)
{
    responses_state *s = x->ingress_state;
    if (!s->history || s->kept) return;
    s->kept = true;
    /* history is "[…]": the turn joins it before the closing bracket */
    buf conversation;
    buf_init(&conversation, (size_t)1 << 40);
    buf_append(&conversation, s->history, s->history_len - 1);
    if (s->history_len > 2) buf_append_lit(&conversation, ",");
    json_t *m = assistant_message(s);
    xlate__append_json(&conversation, m);
    json_decref(m);
    buf_append_lit(&conversation, "]");
    response_store_put(x->ctx->tenant ? x->ctx->tenant : "", s->id, conversation.data, conversation.len,
                       response, len);
    buf_free(&conversation);
}

static void reply_from_canonical(xlate *x, json_t *canon, buf *out)
{
    responses_state *s = x->ingress_state;
    json_t *choice = json_array_get(json_object_get(canon, "choices"), 0);
    json_t *message = json_object_get(choice, "message");
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    s->finish = finish ? arena_strndup(x->ctx->arena, finish, strlen(finish)) : NULL;
    const char *model = json_string_value(json_object_get(canon, "model"));
    if (model) x->model = arena_strndup(x->ctx->arena, model, strlen(model));

    json_t *reasoning = json_object_get(message, "reasoning_content");
    if (json_is_string(reasoning) && json_string_length(reasoning))
        responses__append(x, responses__add_item(x, ITEM_REASONING, NULL, NULL), json_string_value(reasoning),
                          json_string_length(reasoning));
    json_t *content = json_object_get(message, "content");
    json_t *refusal = json_object_get(message, "refusal");
    json_t *calls = json_object_get(message, "tool_calls");
    if (!json_is_string(content) || !json_string_length(content))
        content = json_is_string(refusal) ? refusal : content;
    if ((json_is_string(content) && json_string_length(content)) || !json_array_size(calls)) {
        rsp_item *it = responses__add_item(x, ITEM_MESSAGE, NULL, NULL);
        if (json_is_string(content))
            responses__append(x, it, json_string_value(content), json_string_length(content));
    }
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        rsp_item *it = responses__add_item(x, ITEM_CALL, json_string_value(json_object_get(tc, "id")),
                                           json_string_value(json_object_get(fn, "name")));
        if (!it) break;
        if (json_is_string(args)) responses__append(x, it, json_string_value(args), json_string_length(args));
    }
    size_t at = out->len;
    responses__write_object(x, responses__final_status(s), out);
    if (!out->overflowed) responses__keep(x, out->data + at, out->len - at);
}

/* ==== usage, errors, the row ================================================================= */

/* A Response's usage: at its top level, or in a stream event's response. */
static json_t *usage_in(json_t *message)
{
    json_t *u = json_object_get(message, "usage");
    return json_is_object(u) ? u : json_object_get(json_object_get(message, "response"), "usage");
}

static void usage_note(usage_counts *c, count_getter get, const void *source)
{
    get(source, "input_tokens", &c->prompt);
    get(source, "output_tokens", &c->completion);
    get(source, "input_tokens_details.cached_tokens", &c->cached);
    get(source, "output_tokens_details.reasoning_tokens", &c->reasoning);
}

static const char *reply_shape(json_t *reply)
{
    return json_is_array(json_object_get(reply, "output")) ? NULL : "output is not an array";
}

static const char *url(codec_ctx *ctx)
{
    return xlate__concat(ctx, ctx->route->provider->base_url, "/responses", NULL);
}

/* The stream's last event (the fast path's end marker): response.completed or
 * response.incomplete. A type is never inside a JSON string unescaped, so the search cannot
 * be fooled by generated text. */
static bool stream_is_end(const char *raw, size_t len)
{
    return memmem(raw, len, "\"type\":\"response.completed\"", 27) ||
           memmem(raw, len, "\"type\":\"response.incomplete\"", 28);
}

/* The event that carries the final usage, which the cost joins. */
static bool stream_is_usage_chunk(json_t *event)
{
    const char *type = json_string_value(json_object_get(event, "type"));
    return type && (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete"));
}

const wire_codec responses__codec = {
    .name = "OpenAI Responses",
    .endpoints = WIRE_ENDPOINT(ENDPOINT_RESPONSES),
    .request_to_canonical = request_to_canonical,
    .request_from_canonical = NULL, /* a provider of this format gets the client's bytes */
    .url = url,
    .reply_shape = reply_shape,
    .reply_from_canonical = reply_from_canonical,
    .usage_key = "usage",
    .usage_in = usage_in,
    .usage_note = usage_note,
    .stream_is_end = stream_is_end,
    .stream_reports_usage = true, /* response.completed always has it */
    .stream_encode = responses__stream_encode,
    .stream_encode_finish = responses__stream_finish,
    .stream_is_usage_chunk = stream_is_usage_chunk,
    .stream_error = responses__stream_error,
    .error_body = openai__error_body,
    .error_parse = openai__error_parse,
};
