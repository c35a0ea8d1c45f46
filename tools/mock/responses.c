/* responses.c — aigw-mock's imitation of OpenAI's Responses API: POST /v1/responses (JSON and
 * SSE), with OpenAI-shaped errors.
 *
 * The request is read into reply.c's canonical view: `instructions` and system/developer
 * message items are the system text; `input` is a string (one user message) or items —
 * messages ({role, content}, `type: "message"` optional; content a string or parts whose
 * `text` counts, `input_image` parts are images), `function_call` items (an assistant turn),
 * `function_call_output` items (tool results; consecutive ones are one turn, as OpenAI's chat
 * `tool` messages), `reasoning` and other items ignored. Tools are the flat
 * `{type:"function", name, …}` entries; tool_choice "required" / "none" /
 * `{type:"function", name}`; `text.format.type` json_schema or json_object asks for JSON;
 * `max_output_tokens` limits the words; `reasoning.effort` other than none/minimal asks for
 * thinking. So the same conversation asked here and in chat completions gets the same text,
 * tool calls (call ids `call_mock_<i>`) and token counts.
 *
 * The reply is the Response object: output [reasoning item (when thinking)] then [message] or
 * [function_call items]; status "completed", or "incomplete" with incomplete_details
 * {reason: "max_output_tokens"} when the word limit cut the text (the message item is then
 * "incomplete" too). The request's settings are echoed (instructions, max_output_tokens,
 * parallel_tool_calls, reasoning, store, temperature, text.format, tool_choice, tools, top_p,
 * truncation, user, metadata) with OpenAI's defaults when absent; created_at is fixed, as
 * chat's `created` is (nothing in a reply comes from time).
 *
 * The stream is OpenAI's event sequence, each event an `event: <type>` line and a `data:` line
 * whose JSON starts with the same `type` and ends with `sequence_number` (0, 1, …), no [DONE]:
 * response.created, response.in_progress (the response in_progress, output []), then per output
 * item output_item.added … output_item.done (reasoning: summary part added, summary text one
 * word per delta, text done, part done; message: content part added, output text one word per
 * delta, text done, part done; function call: argument fragments of at most 5 bytes never
 * inside a UTF-8 sequence, arguments done), and response.completed or response.incomplete with
 * the whole response. stream_error=N ends the stream after N events with an `error` event in
 * the nested shape OpenAI sends ({"type":"error","sequence_number":N,"error":{…}}; its
 * reference page shows code/message at the top level, but traffic carries the object, and
 * that is what the openai SDK raises on).
 *
 * The mock keeps no state, so a request naming a previous_response_id is refused as OpenAI
 * refuses an unknown one (400 previous_response_not_found). Rejected: remembering responses to
 * continue them — a reply would then depend on earlier requests and on which worker kept them,
 * and the rules derive everything from the request alone. Request values are echoed with
 * jansson's encoder (compact); a top-level real such as temperature is written in its shortest
 * round-trip form (0.7, not 0.69999999999999996). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define ARG_FRAGMENT 5

/* ---- the request ------------------------------------------------------------------------- */

bool responses_validate(conn *c, json_t *req)
{
    const char *previous = json_string_value(json_object_get(req, "previous_response_id"));
    if (!previous) return true;
    sbuf msg = {0};
    sb_str(&msg, "Previous response with id '");
    sb_str(&msg, previous);
    sb_str(&msg, "' not found.");
    openai_error_param(c, 400, "invalid_request_error", msg.p, "previous_response_id",
                       "previous_response_not_found", 0, 0);
    free(msg.p);
    return false;
}

/* One message item's content: a string, or parts whose `text` counts (input_text, output_text)
 * and input_image parts, which are images. */
static void message_content(mock_view *v, json_t *content)
{
    size_t k;
    json_t *part;
    if (json_is_string(content)) view_text(v, json_string_value(content), json_string_length(content));
    json_array_foreach(content, k, part)
    {
        json_t *text = json_object_get(part, "text");
        const char *type = json_string_value(json_object_get(part, "type"));
        if (json_is_string(text))
            view_text(v, json_string_value(text), json_string_length(text));
        else if (type && !strcmp(type, "input_image"))
            view_image(v);
    }
}

static void responses_view(json_t *req, mock_view *v)
{
    size_t i;
    json_t *item, *tool;
    sbuf t = {0};
    json_t *instructions = json_object_get(req, "instructions");
    if (json_is_string(instructions))
        view_system(v, json_string_value(instructions), json_string_length(instructions));
    json_t *input = json_object_get(req, "input");
    if (json_is_string(input)) {
        view_message_begin(v, true);
        view_text(v, json_string_value(input), json_string_length(input));
        view_message_end(v);
    }
    json_array_foreach(input, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *role = json_string_value(json_object_get(item, "role"));
        if ((!type || !strcmp(type, "message")) && role) {
            if (!strcmp(role, "system") || !strcmp(role, "developer")) {
                t.len = 0;
                content_text(json_object_get(item, "content"), &t);
                view_system(v, t.p ? t.p : "", t.len);
                continue;
            }
            view_message_begin(v, !strcmp(role, "user"));
            message_content(v, json_object_get(item, "content"));
            view_message_end(v);
        } else if (type && !strcmp(type, "function_call_output")) {
            t.len = 0;
            content_text(json_object_get(item, "output"), &t);
            view_message_begin(v, false);
            view_result(v, t.p ? t.p : "", t.len);
            view_message_end(v);
        } else if (type && !strcmp(type, "function_call")) {
            /* an assistant turn without text, as chat's assistant message with tool_calls */
            view_message_begin(v, false);
            view_message_end(v);
        } /* reasoning items and the rest carry no text for the rules */
    }
    free(t.p);
    json_array_foreach(json_object_get(req, "tools"), i, tool)
    {
        const char *type = json_string_value(json_object_get(tool, "type"));
        if (type && !strcmp(type, "function")) view_tool(v, json_string_value(json_object_get(tool, "name")));
    }
    json_t *choice = json_object_get(req, "tool_choice");
    const char *choice_s = json_string_value(choice);
    if (choice_s) {
        v->tool_any = !strcmp(choice_s, "required");
        v->tool_none = !strcmp(choice_s, "none");
    } else {
        const char *type = json_string_value(json_object_get(choice, "type"));
        if (type && !strcmp(type, "function"))
            v->forced_tool = json_string_value(json_object_get(choice, "name"));
    }
    const char *format =
        json_string_value(json_object_get(json_object_get(json_object_get(req, "text"), "format"), "type"));
    v->json_output = format && (!strcmp(format, "json_object") || !strcmp(format, "json_schema"));
    view_max_tokens(v, json_object_get(req, "max_output_tokens"));
    const char *effort = json_string_value(json_object_get(json_object_get(req, "reasoning"), "effort"));
    v->thinking = effort && strcmp(effort, "none") && strcmp(effort, "minimal");
}

/* ---- the Response object ----------------------------------------------------------------- */

/* The ids of one response and its items: resp_mock_W_N, rs_mock_W_N, msg_mock_W_N and
 * fc_mock_W_N_<i>; the call ids are the rules' call_mock_<i>, as chat completions gives them. */
typedef struct response_ids {
    int worker;
    uint64_t n;
} response_ids;

/* A request value as JSON, or `fallback` when it is absent or null. */
static void echo(sbuf *b, json_t *value, const char *fallback)
{
    if (!value || json_is_null(value)) {
        sb_str(b, fallback);
        return;
    }
    if (json_is_real(value)) { /* the shortest form that reads back as the same double */
        double d = json_real_value(value);
        char num[40];
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(num, sizeof num, "%.*g", precision, d);
            if (strtod(num, NULL) == d) break;
        }
        sb_str(b, num);
        if (!strpbrk(num, ".eEni")) sb_str(b, ".0"); /* still a real: 1 → 1.0 */
        return;
    }
    char *dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    sb_str(b, dump ? dump : fallback);
    free(dump);
}

static bool incomplete(const mock_reply *r)
{
    return r->finish == FINISH_LENGTH;
}

static void summary_part(sbuf *b, const char *text, size_t len)
{
    sb_str(b, "{\"type\":\"summary_text\",\"text\":");
    sb_json(b, text, len);
    sb_str(b, "}");
}

static void text_part(sbuf *b, const char *text, size_t len)
{
    sb_str(b, "{\"type\":\"output_text\",\"text\":");
    sb_json(b, text, len);
    sb_str(b, ",\"annotations\":[],\"logprobs\":[]}");
}

/* The output items; `done` false gives them as output_item.added shows them (empty, in
 * progress). */
static void reasoning_item(sbuf *b, const response_ids *ids, const mock_reply *r, bool done)
{
    sb_fmt(b, "{\"type\":\"reasoning\",\"id\":\"rs_mock_%d_%" PRIu64 "\",\"summary\":[", ids->worker, ids->n);
    if (done) summary_part(b, r->thinking.p, r->thinking.len);
    sb_str(b, "]}");
}

static void message_item(sbuf *b, const response_ids *ids, const mock_reply *r, bool done)
{
    sb_fmt(b, "{\"type\":\"message\",\"id\":\"msg_mock_%d_%" PRIu64 "\",\"status\":\"%s\",", ids->worker,
           ids->n,
           !done           ? "in_progress"
           : incomplete(r) ? "incomplete"
                           : "completed");
    sb_str(b, "\"role\":\"assistant\",\"content\":[");
    if (done) text_part(b, r->text.p, r->text.len);
    sb_str(b, "]}");
}

static void call_item(sbuf *b, const response_ids *ids, const mock_reply *r, int i, bool done)
{
    sb_fmt(b,
           "{\"type\":\"function_call\",\"id\":\"fc_mock_%d_%" PRIu64
           "_%d\",\"call_id\":\"call_mock_%d\",\"name\":",
           ids->worker, ids->n, i, i);
    sb_json_str(b, r->calls[i].name);
    sb_str(b, ",\"arguments\":");
    if (done)
        sb_json(b, r->calls[i].args.p, r->calls[i].args.len);
    else
        sb_str(b, "\"\"");
    sb_fmt(b, ",\"status\":\"%s\"}", done ? "completed" : "in_progress");
}

static void usage_json(sbuf *b, const mock_reply *r)
{
    size_t output = reply_completion_tokens(r);
    sb_fmt(b,
           "{\"input_tokens\":%zu,\"input_tokens_details\":{\"cached_tokens\":%zu},\"output_tokens\":%zu,"
           "\"output_tokens_details\":{\"reasoning_tokens\":%zu},\"total_tokens\":%zu}",
           r->prompt, r->cached, output, r->reasoning, r->prompt + output);
}

/* The Response object; `done` false gives it as response.created shows it (in_progress, no
 * output, no usage). */
static void response_json(sbuf *b, json_t *req, const char *model, const response_ids *ids,
                          const mock_reply *r, bool done)
{
    sb_fmt(b, "{\"id\":\"resp_mock_%d_%" PRIu64 "\",\"object\":\"response\",\"created_at\":1700000000,",
           ids->worker, ids->n);
    sb_fmt(b, "\"status\":\"%s\",\"error\":null,\"incomplete_details\":%s,\"instructions\":",
           !done           ? "in_progress"
           : incomplete(r) ? "incomplete"
                           : "completed",
           done && incomplete(r) ? "{\"reason\":\"max_output_tokens\"}" : "null");
    echo(b, json_object_get(req, "instructions"), "null");
    sb_str(b, ",\"max_output_tokens\":");
    echo(b, json_object_get(req, "max_output_tokens"), "null");
    sb_str(b, ",\"model\":");
    sb_json_str(b, model);
    sb_str(b, ",\"output\":[");
    if (done) {
        bool first = true;
        if (r->thinking.len) {
            reasoning_item(b, ids, r, true);
            first = false;
        }
        if (!r->ncalls) {
            if (!first) sb_str(b, ",");
            message_item(b, ids, r, true);
        }
        for (int i = 0; i < r->ncalls; i++, first = false) {
            if (!first) sb_str(b, ",");
            call_item(b, ids, r, i, true);
        }
    }
    sb_str(b, "],\"parallel_tool_calls\":");
    echo(b, json_object_get(req, "parallel_tool_calls"), "true");
    json_t *reasoning = json_object_get(req, "reasoning");
    sb_str(b, ",\"previous_response_id\":null,\"reasoning\":{\"effort\":");
    echo(b, json_object_get(reasoning, "effort"), "null");
    sb_str(b, ",\"summary\":");
    echo(b, json_object_get(reasoning, "summary"), "null");
    sb_str(b, "},\"store\":");
    echo(b, json_object_get(req, "store"), "true");
    sb_str(b, ",\"temperature\":");
    echo(b, json_object_get(req, "temperature"), "1.0");
    sb_str(b, ",\"text\":{\"format\":");
    echo(b, json_object_get(json_object_get(req, "text"), "format"), "{\"type\":\"text\"}");
    sb_str(b, "},\"tool_choice\":");
    echo(b, json_object_get(req, "tool_choice"), "\"auto\"");
    sb_str(b, ",\"tools\":");
    echo(b, json_object_get(req, "tools"), "[]");
    sb_str(b, ",\"top_p\":");
    echo(b, json_object_get(req, "top_p"), "1.0");
    sb_str(b, ",\"truncation\":");
    echo(b, json_object_get(req, "truncation"), "\"disabled\"");
    sb_str(b, ",\"usage\":");
    if (done)
        usage_json(b, r);
    else
        sb_str(b, "null");
    sb_str(b, ",\"user\":");
    echo(b, json_object_get(req, "user"), "null");
    sb_str(b, ",\"metadata\":");
    echo(b, json_object_get(req, "metadata"), "{}");
    sb_str(b, "}");
}

/* ---- the stream -------------------------------------------------------------------------- */

typedef struct event_writer {
    conn *c;
    sbuf ev;
    long seq;
} event_writer;

/* Starts an event: `event: TYPE` and the data object up to its type; the caller appends
 * `,"field":…` members, then event_end adds the sequence number and queues it. */
static void event_begin(event_writer *w, const char *type)
{
    w->ev.len = 0;
    sb_fmt(&w->ev, "event: %s\ndata: {\"type\":\"%s\"", type, type);
}

static void event_end(event_writer *w)
{
    sb_fmt(&w->ev, ",\"sequence_number\":%ld}\n\n", w->seq++);
    stream_event(w->c, w->ev.p, w->ev.len);
}

#define ITEM_REASONING (-2)
#define ITEM_MESSAGE (-1)

/* output_item.added (done false) or output_item.done; `item` is a call's number, or
 * ITEM_REASONING / ITEM_MESSAGE. */
static void item_event(event_writer *w, const char *type, int index, const response_ids *ids,
                       const mock_reply *r, int item, bool done)
{
    event_begin(w, type);
    sb_fmt(&w->ev, ",\"output_index\":%d,\"item\":", index);
    if (item == ITEM_REASONING)
        reasoning_item(&w->ev, ids, r, done);
    else if (item == ITEM_MESSAGE)
        message_item(&w->ev, ids, r, done);
    else
        call_item(&w->ev, ids, r, item, done);
    event_end(w);
}

static void reasoning_events(event_writer *w, const response_ids *ids, const mock_reply *r)
{
    char head[96];
    snprintf(head, sizeof head,
             ",\"item_id\":\"rs_mock_%d_%" PRIu64 "\",\"output_index\":0,\"summary_index\":0", ids->worker,
             ids->n);
    item_event(w, "response.output_item.added", 0, ids, r, ITEM_REASONING, false);
    event_begin(w, "response.reasoning_summary_part.added");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"part\":");
    summary_part(&w->ev, "", 0);
    event_end(w);
    for (size_t pos = 0; pos < r->thinking.len;) {
        size_t end = next_word_piece(r->thinking.p, r->thinking.len, pos);
        event_begin(w, "response.reasoning_summary_text.delta");
        sb_str(&w->ev, head);
        sb_str(&w->ev, ",\"delta\":");
        sb_json(&w->ev, r->thinking.p + pos, end - pos);
        event_end(w);
        pos = end;
    }
    event_begin(w, "response.reasoning_summary_text.done");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"text\":");
    sb_json(&w->ev, r->thinking.p, r->thinking.len);
    event_end(w);
    event_begin(w, "response.reasoning_summary_part.done");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"part\":");
    summary_part(&w->ev, r->thinking.p, r->thinking.len);
    event_end(w);
    item_event(w, "response.output_item.done", 0, ids, r, ITEM_REASONING, true);
}

static void message_events(event_writer *w, int index, const response_ids *ids, const mock_reply *r)
{
    char head[96];
    snprintf(head, sizeof head,
             ",\"item_id\":\"msg_mock_%d_%" PRIu64 "\",\"output_index\":%d,\"content_index\":0", ids->worker,
             ids->n, index);
    item_event(w, "response.output_item.added", index, ids, r, ITEM_MESSAGE, false);
    event_begin(w, "response.content_part.added");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"part\":");
    text_part(&w->ev, "", 0);
    event_end(w);
    for (size_t pos = 0; pos < r->text.len;) {
        size_t end = next_word_piece(r->text.p, r->text.len, pos);
        event_begin(w, "response.output_text.delta");
        sb_str(&w->ev, head);
        sb_str(&w->ev, ",\"delta\":");
        sb_json(&w->ev, r->text.p + pos, end - pos);
        sb_str(&w->ev, ",\"logprobs\":[]");
        event_end(w);
        pos = end;
    }
    event_begin(w, "response.output_text.done");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"text\":");
    sb_json(&w->ev, r->text.p, r->text.len);
    sb_str(&w->ev, ",\"logprobs\":[]");
    event_end(w);
    event_begin(w, "response.content_part.done");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"part\":");
    text_part(&w->ev, r->text.p, r->text.len);
    event_end(w);
    item_event(w, "response.output_item.done", index, ids, r, ITEM_MESSAGE, true);
}

static void call_events(event_writer *w, int index, int call, const response_ids *ids, const mock_reply *r)
{
    char head[96];
    snprintf(head, sizeof head, ",\"item_id\":\"fc_mock_%d_%" PRIu64 "_%d\",\"output_index\":%d", ids->worker,
             ids->n, call, index);
    item_event(w, "response.output_item.added", index, ids, r, call, false);
    const sbuf *args = &r->calls[call].args;
    for (size_t pos = 0; pos < args->len;) {
        size_t end = next_utf8_piece(args->p, args->len, pos, ARG_FRAGMENT);
        event_begin(w, "response.function_call_arguments.delta");
        sb_str(&w->ev, head);
        sb_str(&w->ev, ",\"delta\":");
        sb_json(&w->ev, args->p + pos, end - pos);
        event_end(w);
        pos = end;
    }
    event_begin(w, "response.function_call_arguments.done");
    sb_str(&w->ev, head);
    sb_str(&w->ev, ",\"name\":");
    sb_json_str(&w->ev, r->calls[call].name);
    sb_str(&w->ev, ",\"arguments\":");
    sb_json(&w->ev, args->p, args->len);
    event_end(w);
    item_event(w, "response.output_item.done", index, ids, r, call, true);
}

static void responses_stream(conn *c, json_t *req, const char *model, const response_ids *ids,
                             const mock_reply *r, const faults *f)
{
    stream_begin(c, "text/event-stream", NULL, f);
    event_writer w = {.c = c};
    static const char *const lifecycle[] = {"response.created", "response.in_progress"};
    for (int i = 0; i < 2; i++) {
        event_begin(&w, lifecycle[i]);
        sb_str(&w.ev, ",\"response\":");
        response_json(&w.ev, req, model, ids, r, false);
        event_end(&w);
    }
    int index = 0;
    if (r->thinking.len) {
        reasoning_events(&w, ids, r);
        index++;
    }
    if (!r->ncalls) message_events(&w, index++, ids, r);
    for (int i = 0; i < r->ncalls; i++)
        call_events(&w, index++, i, ids, r);
    event_begin(&w, incomplete(r) ? "response.incomplete" : "response.completed");
    sb_str(&w.ev, ",\"response\":");
    response_json(&w.ev, req, model, ids, r, true);
    event_end(&w);
    /* stream_error=N: the error takes the place of event N, so it carries sequence number N */
    w.ev.len = 0;
    sb_fmt(&w.ev,
           "event: error\ndata: "
           "{\"type\":\"error\",\"sequence_number\":%ld,\"error\":{\"type\":\"server_error\","
           "\"code\":\"server_error\",\"message\":\"aigw-mock injected stream error\",\"param\":null}}\n\n",
           f->stream_error);
    stream_end(c, f, w.ev.p, w.ev.len);
    free(w.ev.p);
}

void responses_create(conn *c, json_t *req, const char *model, const faults *f)
{
    mock_view v;
    view_init(&v);
    responses_view(req, &v);
    mock_reply r;
    reply_build(&v, f, &r);
    view_free(&v);
    response_ids ids = {.worker = conn_worker_id(c), .n = conn_next_id(c)};
    if (json_is_true(json_object_get(req, "stream"))) {
        responses_stream(c, req, model, &ids, &r, f);
        reply_free(&r);
        return;
    }
    sbuf b = {0};
    response_json(&b, req, model, &ids, &r, true);
    respond_reply(c, NULL, b.p, b.len, f);
    free(b.p);
    reply_free(&r);
}
