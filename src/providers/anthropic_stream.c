/* anthropic_stream.c — Anthropic Messages streams ↔ canonical chunks, both ways (the rest of
 * the format, and its wire_codec row, is in anthropic.c; split only to keep files readable).
 *
 * Decoding (an Anthropic provider's events for another client): message_start names the
 * reply and reports input usage, content blocks become deltas (text, thinking, tool calls
 * whose partial_json fragments become arguments fragments one for one), message_delta gives
 * the stop reason and output usage, message_stop ends. Encoding (canonical chunks for an
 * Anthropic client): the exact Messages sequence, every event with its `event:` line and
 * every delta's index naming an open block. */
#include <stdio.h>
#include <string.h>

#include "providers/codec.h"

/* ==== streams: Messages events → canonical chunks ========================================== */

stream_step anthropic__stream_decode(xlate *x, json_t *ev, chunk_sink sink, buf *out, const char **message)
{
    /* The event: line is not read: the data's own "type" says the same. */
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type) {
        *message = "provider sent a stream event that is not a Messages event";
        return STREAM_FAILED;
    }
    bool block_start = !strcmp(type, "content_block_start");
    if ((block_start || !strcmp(type, "content_block_delta")) &&
        (!json_is_integer(json_object_get(ev, "index")) ||
         !json_is_object(json_object_get(ev, block_start ? "content_block" : "delta")))) {
        *message = "provider sent a content block event of the wrong shape";
        return STREAM_FAILED;
    }
    stream_step step = STREAM_MORE;
    json_t *chunk = NULL;
    if (!strcmp(type, "message_start")) {
        json_t *msg = json_object_get(ev, "message");
        const char *id = json_string_value(json_object_get(msg, "id"));
        if (id) xlate__set_id(x, id);
        const char *model = json_string_value(json_object_get(msg, "model"));
        if (model) x->model = arena_strndup(x->ctx->arena, model, strlen(model));
        chunk = xlate__chunk(x, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
    } else if (!strcmp(type, "content_block_start")) {
        json_t *block = json_object_get(ev, "content_block");
        json_int_t index = json_integer_value(json_object_get(ev, "index"));
        const char *btype = json_string_value(json_object_get(block, "type"));
        if (btype && !strcmp(btype, "tool_use")) {
            bool is_json = x->json_via_tool && json_string_value(json_object_get(block, "name")) &&
                           !strcmp(json_string_value(json_object_get(block, "name")), ANTHROPIC_JSON_TOOL);
            int *slot = xlate__slot(x, &x->block_tool, &x->nblock_tool, index, XLATE_BLOCKS_MAX);
            if (!slot || (!is_json && x->tool_calls >= XLATE_TOOL_CALLS_MAX)) {
                *message =
                    "the provider's stream has more tool calls than a translated stream carries (1024)";
                return STREAM_FAILED;
            }
            if (is_json) {
                *slot = -2; /* its input is the message content */
            } else {
                int t = x->tool_calls++;
                *slot = t;
                chunk =
                    xlate__chunk(x,
                                 json_pack("{s:[{s:i,s:O,s:s,s:{s:O,s:s}}]}", "tool_calls", "index", t, "id",
                                           json_object_get(block, "id"), "type", "function", "function",
                                           "name", json_object_get(block, "name"), "arguments", ""),
                                 NULL);
            }
        } else if (btype && !strcmp(btype, "text")) {
            json_t *t = json_object_get(block, "text");
            if (json_string_length(t)) chunk = xlate__chunk(x, json_pack("{s:O}", "content", t), NULL);
        }
    } else if (!strcmp(type, "content_block_delta")) {
        json_t *delta = json_object_get(ev, "delta");
        int tool =
            xlate__lookup(x->block_tool, x->nblock_tool, json_integer_value(json_object_get(ev, "index")));
        const char *dtype = json_string_value(json_object_get(delta, "type"));
        if (dtype && !strcmp(dtype, "text_delta")) {
            chunk = xlate__chunk(x, json_pack("{s:O}", "content", json_object_get(delta, "text")), NULL);
        } else if (dtype && !strcmp(dtype, "input_json_delta")) {
            json_t *part = json_object_get(delta, "partial_json");
            if (tool == -2)
                chunk = xlate__chunk(x, json_pack("{s:O}", "content", part), NULL);
            else if (tool >= 0 && json_string_length(part))
                chunk = xlate__chunk(x,
                                     json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index", tool, "function",
                                               "arguments", part),
                                     NULL);
        } else if (dtype && !strcmp(dtype, "thinking_delta")) {
            json_t *t = json_object_get(delta, "thinking");
            if (json_string_length(t))
                chunk = xlate__chunk(x, json_pack("{s:O}", "reasoning_content", t), NULL);
        } /* signatures have no place in a chat completion */
    } else if (!strcmp(type, "message_delta")) {
        const char *stop = json_string_value(json_object_get(json_object_get(ev, "delta"), "stop_reason"));
        const char *finish = anthropic__finish_from_stop(stop);
        if (x->json_via_tool && !x->tool_calls && !strcmp(finish, "tool_calls")) finish = "stop";
        chunk = xlate__chunk(x, NULL, finish);
    } else if (!strcmp(type, "message_stop")) {
        chunk = xlate__usage_chunk(x);
        step = STREAM_DONE;
    } else if (!strcmp(type, "error")) {
        const char *m = json_string_value(json_object_get(json_object_get(ev, "error"), "message"));
        *message = arena_strndup(x->ctx->arena, m ? m : "provider stream error", m ? strlen(m) : 21);
        step = STREAM_FAILED;
    } /* ping and unknown events: nothing for the client */
    if (chunk) {
        sink(x, chunk, out);
        json_decref(chunk);
    }
    return step;
}

/* ==== streams: canonical chunks → Messages events ========================================== */

static void emit(buf *out, const char *event, json_t *data)
{
    if (!data) return; /* json_pack refused what the provider sent: nothing to say */
    buf_append_lit(out, "event: ");
    buf_append(out, event, strlen(event));
    buf_append_lit(out, "\ndata: ");
    xlate__append_json(out, data);
    buf_append_lit(out, "\n\n");
    json_decref(data);
}

static void close_block(xlate *x, buf *out)
{
    if (x->open_block < 0) return;
    emit(out, "content_block_stop",
         json_pack("{s:s,s:i}", "type", "content_block_stop", "index", x->open_block));
    x->open_block = -1;
}

static void open_block(xlate *x, buf *out, int kind, json_t *block)
{
    close_block(x, out);
    x->open_block = x->next_block++;
    x->open_kind = kind;
    emit(out, "content_block_start",
         json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", x->open_block, "content_block",
                   block));
}

static void start_message(xlate *x, buf *out)
{
    if (x->started) return;
    x->started = true;
    emit(out, "message_start",
         json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:I,s:i}}}", "type", "message_start", "message",
                   "id", x->id[0] ? x->id : x->ctx->request_id, "type", "message", "role", "assistant",
                   "model", x->model, "content", "stop_reason", "stop_sequence", "usage", "input_tokens",
                   (json_int_t)anthropic__input(&x->ctx->usage), "output_tokens", 0));
}

void anthropic__stream_encode(xlate *x, json_t *chunk, buf *out)
{
    start_message(x, out);
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    json_t *reasoning = json_object_get(delta, "reasoning_content");
    if (json_is_string(reasoning) && json_string_length(reasoning)) {
        if (x->open_block < 0 || x->open_kind != 2)
            open_block(x, out, 2,
                       json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""));
        emit(out, "content_block_delta",
             json_pack("{s:s,s:i,s:{s:s,s:O}}", "type", "content_block_delta", "index", x->open_block,
                       "delta", "type", "thinking_delta", "thinking", reasoning));
    }
    json_t *content = json_object_get(delta, "content");
    if (json_is_string(content) && json_string_length(content)) {
        if (x->open_block < 0 || x->open_kind != 0)
            open_block(x, out, 0, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        emit(out, "content_block_delta",
             json_pack("{s:s,s:i,s:{s:s,s:O}}", "type", "content_block_delta", "index", x->open_block,
                       "delta", "type", "text_delta", "text", content));
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
    {
        int *block = xlate__slot(x, &x->tool_block, &x->ntool_block,
                                 json_integer_value(json_object_get(tc, "index")), XLATE_TOOL_CALLS_MAX);
        if (!block) { /* never a silent drop: the stream ends with an in-band error */
            x->failure = "the stream has more tool calls than a translated stream carries (1024)";
            return;
        }
        json_t *fn = json_object_get(tc, "function");
        /* A call's block opens once, at its first delta (some servers repeat the id on every
         * delta); fragments of a call whose block is already closed (calls interleaved) still
         * go to that call's index, which the SDKs accumulate by. */
        if (*block < 0) {
            const char *id = json_string_value(json_object_get(tc, "id"));
            const char *name = json_string_value(json_object_get(fn, "name"));
            open_block(x, out, 1,
                       json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", id ? id : "", "name",
                                 name ? name : "", "input"));
            *block = x->open_block;
        }
        json_t *args = json_object_get(fn, "arguments");
        if (json_is_string(args) && json_string_length(args))
            emit(out, "content_block_delta",
                 json_pack("{s:s,s:i,s:{s:s,s:O}}", "type", "content_block_delta", "index", *block, "delta",
                           "type", "input_json_delta", "partial_json", args));
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) {
        close_block(x, out);
        x->stop_reason = anthropic__stop_from_finish(finish);
    }
}

void anthropic__stream_finish(xlate *x, buf *out)
{
    if (x->encoder_done) return;
    x->encoder_done = true;
    start_message(x, out);
    close_block(x, out);
    const usage_counts *u = &x->ctx->usage;
    emit(out, "message_delta",
         json_pack("{s:s,s:{s:s,s:n},s:{s:I,s:I,s:I,s:I}}", "type", "message_delta", "delta", "stop_reason",
                   x->stop_reason ? x->stop_reason : "end_turn", "stop_sequence", "usage", "input_tokens",
                   (json_int_t)anthropic__input(u), "output_tokens", (json_int_t)u->completion,
                   "cache_read_input_tokens", (json_int_t)u->cached, "cache_creation_input_tokens",
                   (json_int_t)u->cache_write));
    emit(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}
