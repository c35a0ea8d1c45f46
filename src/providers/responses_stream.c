/* responses_stream.c — canonical chunks → the Responses API's stream events, for a Responses
 * client of a provider that has no Responses API.
 *
 * Each event is `event: <type>` + `data: {"type":<type>, …, "sequence_number":n}`, n counting
 * from 0, in the order OpenAI sends them: response.created and response.in_progress first;
 * then per output item its output_item.added, its deltas (reasoning_summary_text,
 * output_text, function_call_arguments) and its closing events (…done, output_item.done);
 * last response.completed (or response.incomplete) with the whole Response — which is why the
 * items' text is kept (responses_internal.h) — and its usage. A reasoning summary and the
 * message text close when something else starts; function calls stay open until the finish
 * reason, since a provider may interleave their arguments. No [DONE]: the last event ends the
 * stream. */
#include <string.h>

#include "providers/responses_internal.h"
#include "util/units.h"

/* One event: data gets its type first and its sequence number last. Takes data. */
static void emit(responses_state *s, buf *out, const char *type, json_t *data)
{
    json_t *ev = json_pack("{s:s}", "type", type);
    json_object_update(ev, data);
    json_decref(data);
    json_object_set_new(ev, "sequence_number", json_integer(s->seq++));
    buf_append_lit(out, "event: ");
    buf_append(out, type, strlen(type));
    buf_append_lit(out, "\ndata: ");
    xlate__append_json(out, ev);
    buf_append_lit(out, "\n\n");
    json_decref(ev);
}

/* An event that carries the whole Response, written as text (responses__write_object); the
 * final one is also kept in the store and gets the request's cost. */
static void emit_response(xlate *x, responses_state *s, buf *out, const char *type, const char *status)
{
    buf_append_lit(out, "event: ");
    buf_append(out, type, strlen(type));
    buf_append_lit(out, "\ndata: {\"type\":\"");
    buf_append(out, type, strlen(type));
    buf_append_lit(out, "\",\"response\":");
    size_t at = out->len;
    responses__write_object(x, status, out);
    if (strcmp(status, "in_progress") != 0 && !out->overflowed) {
        responses__keep(x, out->data + at, out->len - at);
        double cost = provider_cost(x->ctx);
        if (cost >= 0) {
            char usd[UNITS_DECIMAL_MAX];
            units_format_decimal(usd, cost);
            buf_printf(out, ",\"aigw\":{\"cost_usd\":%s}", usd);
        }
    }
    buf_append_lit(out, ",\"sequence_number\":");
    xlate__append_integer(out, s->seq++);
    buf_append_lit(out, "}\n\n");
}

static void start(xlate *x, responses_state *s, buf *out)
{
    if (s->started) return;
    s->started = true;
    emit_response(x, s, out, "response.created", "in_progress");
    emit_response(x, s, out, "response.in_progress", "in_progress");
}

static json_t *item_ref(const responses_state *s, int i)
{
    return json_pack("{s:s,s:i}", "item_id", s->items[i].id, "output_index", i);
}

static int open_item(xlate *x, responses_state *s, buf *out, int kind, const char *call_id, const char *name)
{
    rsp_item *it = responses__add_item(x, kind, call_id, name);
    if (!it) {
        x->failure = "the stream has more output items than a translated Responses stream carries";
        return -1;
    }
    int i = s->nitems - 1;
    emit(s, out, "response.output_item.added",
         json_pack("{s:i,s:o}", "output_index", i, "item", responses__item(s, i, false)));
    if (kind == ITEM_MESSAGE) {
        json_t *ev = item_ref(s, i);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(
            ev, "part",
            json_pack("{s:s,s:[],s:[],s:s}", "type", "output_text", "annotations", "logprobs", "text", ""));
        emit(s, out, "response.content_part.added", ev);
    } else if (kind == ITEM_REASONING) {
        json_t *ev = item_ref(s, i);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "part", json_pack("{s:s,s:s}", "type", "summary_text", "text", ""));
        emit(s, out, "response.reasoning_summary_part.added", ev);
    }
    return i;
}

static void close_item(responses_state *s, buf *out, int i)
{
    rsp_item *it = &s->items[i];
    if (it->done) return;
    it->done = true;
    const char *text = it->text.p ? it->text.p : "";
    json_t *ev;
    switch (it->kind) {
    case ITEM_MESSAGE:
        ev = item_ref(s, i);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(ev, "text", json_stringn(text, it->text.len));
        json_object_set_new(ev, "logprobs", json_array());
        emit(s, out, "response.output_text.done", ev);
        ev = item_ref(s, i);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(ev, "part",
                            json_pack("{s:s,s:[],s:[],s:s%}", "type", "output_text", "annotations",
                                      "logprobs", "text", text, it->text.len));
        emit(s, out, "response.content_part.done", ev);
        break;
    case ITEM_REASONING:
        ev = item_ref(s, i);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "text", json_stringn(text, it->text.len));
        emit(s, out, "response.reasoning_summary_text.done", ev);
        ev = item_ref(s, i);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "part",
                            json_pack("{s:s,s:s%}", "type", "summary_text", "text", text, it->text.len));
        emit(s, out, "response.reasoning_summary_part.done", ev);
        break;
    default:
        ev = item_ref(s, i);
        json_object_set_new(ev, "name", json_string(it->name));
        json_object_set_new(ev, "arguments", json_stringn(text, it->text.len));
        emit(s, out, "response.function_call_arguments.done", ev);
        break;
    }
    emit(s, out, "response.output_item.done",
         json_pack("{s:i,s:o}", "output_index", i, "item", responses__item(s, i, true)));
}

static void close_open(responses_state *s, buf *out)
{
    for (int i = 0; i < s->nitems; i++)
        close_item(s, out, i);
    s->open_text = s->open_reasoning = -1;
}

/* Appends a delta to item i and sends it as the event of that type, written as text (one per
 * token: the stream's hot path); false (the stream fails) past the output bound. */
static bool delta(xlate *x, responses_state *s, buf *out, int i, const char *type, json_t *text)
{
    rsp_item *it = &s->items[i];
    if (!responses__append(x, it, json_string_value(text), json_string_length(text))) {
        x->failure = "the response is longer than a translated Responses stream keeps (16 MiB)";
        return false;
    }
    size_t tlen = strlen(type);
    buf_append_lit(out, "event: ");
    buf_append(out, type, tlen);
    buf_append_lit(out, "\ndata: {\"type\":\"");
    buf_append(out, type, tlen);
    buf_append_lit(out, "\",\"item_id\":\"");
    buf_append(out, it->id, strlen(it->id));
    buf_append_lit(out, "\",\"output_index\":");
    xlate__append_integer(out, i);
    if (it->kind == ITEM_MESSAGE) buf_append_lit(out, ",\"content_index\":0");
    if (it->kind == ITEM_REASONING) buf_append_lit(out, ",\"summary_index\":0");
    buf_append_lit(out, ",\"delta\":");
    buf_append_json_string(out, json_string_value(text), json_string_length(text));
    if (it->kind == ITEM_MESSAGE) buf_append_lit(out, ",\"logprobs\":[]");
    buf_append_lit(out, ",\"sequence_number\":");
    xlate__append_integer(out, s->seq++);
    buf_append_lit(out, "}\n\n");
    return true;
}

static bool nonempty(json_t *v)
{
    return json_is_string(v) && json_string_length(v);
}

void responses__stream_encode(xlate *x, json_t *chunk, buf *out)
{
    responses_state *s = x->ingress_state;
    if (!chunk || s->finished || x->failure) return;
    start(x, s, out);
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (!choice) return; /* the usage-only chunk: the usage is in the last event */
    json_t *d = json_object_get(choice, "delta");

    json_t *reasoning = json_object_get(d, "reasoning_content");
    if (nonempty(reasoning)) {
        if (s->open_reasoning < 0) {
            if (s->open_text >= 0) close_item(s, out, s->open_text);
            s->open_text = -1;
            if ((s->open_reasoning = open_item(x, s, out, ITEM_REASONING, NULL, NULL)) < 0) return;
        }
        if (!delta(x, s, out, s->open_reasoning, "response.reasoning_summary_text.delta", reasoning)) return;
    }
    json_t *content = json_object_get(d, "content");
    if (!nonempty(content)) content = json_object_get(d, "refusal");
    if (nonempty(content)) {
        if (s->open_text < 0) {
            if (s->open_reasoning >= 0) close_item(s, out, s->open_reasoning);
            s->open_reasoning = -1;
            if ((s->open_text = open_item(x, s, out, ITEM_MESSAGE, NULL, NULL)) < 0) return;
        }
        if (!delta(x, s, out, s->open_text, "response.output_text.delta", content)) return;
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
    {
        int *item = xlate__slot(x, &s->tool_item, &s->ntool_item,
                                json_integer_value(json_object_get(tc, "index")), XLATE_TOOL_CALLS_MAX);
        if (!item) {
            x->failure = "the stream has more tool calls than a translated stream carries (1024)";
            return;
        }
        json_t *fn = json_object_get(tc, "function");
        if (*item < 0) {
            if (s->open_reasoning >= 0) close_item(s, out, s->open_reasoning);
            if (s->open_text >= 0) close_item(s, out, s->open_text);
            s->open_text = s->open_reasoning = -1;
            *item = open_item(x, s, out, ITEM_CALL, json_string_value(json_object_get(tc, "id")),
                              json_string_value(json_object_get(fn, "name")));
            if (*item < 0) return;
        }
        json_t *args = json_object_get(fn, "arguments");
        if (nonempty(args) && !delta(x, s, out, *item, "response.function_call_arguments.delta", args))
            return;
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) {
        s->finish = arena_strndup(x->ctx->arena, finish, strlen(finish));
        close_open(s, out);
    }
}

void responses__stream_finish(xlate *x, buf *out)
{
    responses_state *s = x->ingress_state;
    if (s->finished || x->failure) return;
    s->finished = true;
    start(x, s, out);
    close_open(s, out);
    const char *status = responses__final_status(s);
    emit_response(x, s, out, !strcmp(status, "completed") ? "response.completed" : "response.incomplete",
                  status);
}

/* The Responses API's error event ({type, code, message, param, sequence_number}), with the
 * error also as an `error` object: the official SDKs raise an exception for that, rather than
 * end the stream without a word. */
void responses__stream_error(xlate *x, buf *out, const char *message)
{
    responses_state *s = x ? x->ingress_state : NULL;
    json_t *ev = json_pack("{s:s,s:s,s:s,s:n,s:{s:s,s:s,s:s,s:n}}", "type", "error", "code",
                           "upstream_stream_error", "message", message, "param", "error", "type",
                           "server_error", "code", "upstream_stream_error", "message", message, "param");
    if (s) json_object_set_new(ev, "sequence_number", json_integer(s->seq++));
    buf_append_lit(out, "event: error\ndata: ");
    xlate__append_json(out, ev);
    buf_append_lit(out, "\n\n");
    json_decref(ev);
}
