/* replay.c — the response cache's two conversions: a reply the client got, back into one
 * canonical reply (collect), and a canonical reply into what a client asks for (replay), as
 * one JSON body or as a stream in its own format (provider.h).
 *
 * Collecting reads the client's bytes as they go out (the cache stage's response filter), so
 * it serves the fast path and translation alike and adds nothing to a request whose reply is
 * not stored. A plain reply is parsed once at its end; a stream is framed (upstream/sse.h) and
 * each event decoded by the client format's own decoder — the one that reads that format
 * when it is a provider's (codec.h) — into canonical chunks, which are summed into one
 * message: content and reasoning appended, tool calls by index with their arguments whole,
 * the finish reason, the usage. Only a complete reply comes out: the format's end marker
 * seen, no in-band error, one choice, a finish reason of stop, length or tool_calls.
 *
 * Replaying goes the other way through the same rows, once, when the reply is stored: the
 * canonical reply becomes the client format's body, and it is cut into the chunks a provider
 * would have sent (the role, the reasoning, the text, each tool call with its whole
 * arguments, the finish, the usage) each given to the client format's stream encoder, so a
 * replayed stream is made by the code that makes translated ones. A hit then writes stored
 * bytes: no parse, no encoder (bench/RESULTS.md has what that saved). */
#include <string.h>
#include <time.h>

#include "providers/codec.h"
#include "upstream/sse.h"

/* One tool call being summed. */
typedef struct call_acc {
    char *id, *name; /* arena */
    buf args;
} call_acc;

struct reply_collector {
    xlate x; /* first: the decoders' sink gets it back as the collector */
    codec_ctx ctx;
    bool stream, failed, done, multi;
    const char *why; /* why it cannot be stored, static */
    size_t max_bytes, seen;
    buf body; /* a plain reply; or a stream's text */
    buf reasoning;
    sse_reader sse;
    call_acc *calls;
    int ncalls, calls_cap;
    const char *finish;
    json_t *usage; /* the last usage object seen */
};

reply_collector *provider_collect_begin(const codec_ctx *c, bool stream, size_t max_bytes)
{
    reply_collector *rc = arena_alloc(c->arena, sizeof *rc);
    memset(rc, 0, sizeof *rc);
    rc->ctx = *c;
    rc->ctx.xlate = NULL;
    rc->ctx.usage = (usage_counts){0};
    rc->stream = stream;
    rc->max_bytes = max_bytes;
    xlate *x = &rc->x;
    x->ctx = &rc->ctx;
    x->ingress = c->ingress;
    x->upstream = c->ingress;
    x->model = c->route ? c->route->public_name : "";
    x->created = (int64_t)time(NULL);
    x->open_block = -1;
    buf_init(&rc->body, max_bytes);
    buf_init(&rc->reasoning, max_bytes);
    if (stream) sse_reader_init(&rc->sse, max_bytes);
    return rc;
}

static void give_up(reply_collector *rc, const char *why)
{
    if (!rc->failed) rc->why = why;
    rc->failed = true;
}

static call_acc *call_at(reply_collector *rc, json_int_t index)
{
    if (index < 0 || index >= XLATE_TOOL_CALLS_MAX) return NULL;
    while (rc->ncalls <= index) {
        if (rc->ncalls == rc->calls_cap) {
            int cap = rc->calls_cap ? rc->calls_cap * 2 : 4;
            call_acc *n = arena_alloc(rc->ctx.arena, (size_t)cap * sizeof *n);
            if (rc->ncalls) memcpy(n, rc->calls, (size_t)rc->ncalls * sizeof *n);
            rc->calls = n;
            rc->calls_cap = cap;
        }
        call_acc *c = &rc->calls[rc->ncalls++];
        memset(c, 0, sizeof *c);
        buf_init(&c->args, rc->max_bytes);
    }
    return &rc->calls[index];
}

static void append_string(reply_collector *rc, buf *b, json_t *s)
{
    if (json_is_string(s) && json_string_length(s) &&
        (buf_append(b, json_string_value(s), json_string_length(s)) != 0 || b->overflowed))
        give_up(rc, "the reply is larger than cache.max_entry_bytes");
}

/* The decoders' sink: one canonical chunk summed into the message. */
static void sum_chunk(xlate *x, json_t *chunk, buf *out)
{
    (void)out;
    reply_collector *rc = (reply_collector *)x;
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_decref(rc->usage);
        rc->usage = json_incref(usage);
    }
    json_t *choices = json_object_get(chunk, "choices");
    if (json_array_size(choices) > 1) rc->multi = true;
    json_t *choice = json_array_get(choices, 0);
    if (!choice) return;
    json_t *index = json_object_get(choice, "index");
    if (index && json_integer_value(index) != 0) rc->multi = true;
    json_t *delta = json_object_get(choice, "delta");
    append_string(rc, &rc->body, json_object_get(delta, "content"));
    append_string(rc, &rc->reasoning, json_object_get(delta, "reasoning_content"));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
    {
        call_acc *c = call_at(rc, json_integer_value(json_object_get(tc, "index")));
        if (!c) {
            give_up(rc, "too many tool calls");
            return;
        }
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (id && !c->id) c->id = arena_strndup(rc->ctx.arena, id, strlen(id));
        if (name && !c->name) c->name = arena_strndup(rc->ctx.arena, name, strlen(name));
        append_string(rc, &c->args, json_object_get(fn, "arguments"));
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) rc->finish = arena_strndup(rc->ctx.arena, finish, strlen(finish));
}

/* One whole SSE event of the client's stream. */
static void on_event(void *ud, const char *raw, size_t len)
{
    reply_collector *rc = ud;
    if (rc->failed || rc->done) return;
    const wire_codec *codec = wire_codecs[rc->ctx.ingress];
    /* the data lines joined (each format sends one per event) */
    buf data;
    buf_init(&data, rc->max_bytes);
    for (size_t pos = 0; pos < len;) {
        size_t e = pos;
        while (e < len && raw[e] != '\n' && raw[e] != '\r')
            e++;
        if (e - pos >= 5 && !memcmp(raw + pos, "data:", 5)) {
            size_t v = pos + 5 + (e - pos > 5 && raw[pos + 5] == ' ');
            if (data.len) buf_append(&data, "\n", 1);
            buf_append(&data, raw + v, e - v);
        }
        pos = e + 1;
    }
    if (!data.len) {
        buf_free(&data);
        return;
    }
    if (codec->end_data && data.len == strlen(codec->end_data) &&
        !memcmp(data.data, codec->end_data, data.len)) {
        rc->done = true;
        buf_free(&data);
        return;
    }
    json_error_t jerr;
    json_t *ev = json_loadb(data.data, data.len, 0, &jerr);
    buf_free(&data);
    if (!json_is_object(ev)) {
        json_decref(ev);
        give_up(rc, "a stream event is not JSON");
        return;
    }
    xlate__note_usage(&rc->ctx, codec, ev);
    const char *message = NULL;
    stream_step step = codec->stream_decode(&rc->x, ev, sum_chunk, NULL, &message);
    json_decref(ev);
    if (step == STREAM_FAILED) give_up(rc, "the stream ended with an error");
    if (step == STREAM_DONE) rc->done = true;
}

void provider_collect(reply_collector *rc, const char *data, size_t len)
{
    if (rc->failed) return;
    rc->seen += len;
    if (rc->seen > rc->max_bytes * 4 + 65536) { /* a stream's framing is several times its text */
        give_up(rc, "the reply is larger than cache.max_entry_bytes");
        return;
    }
    if (!rc->stream) {
        if (buf_append(&rc->body, data, len) != 0 || rc->body.overflowed)
            give_up(rc, "the reply is larger than cache.max_entry_bytes");
        return;
    }
    if (!sse_reader_feed(&rc->sse, data, len, on_event, rc)) give_up(rc, "a stream event is too large");
}

/* The canonical reply from what was summed. */
static json_t *summed_reply(reply_collector *rc)
{
    json_t *message = json_pack("{s:s}", "role", "assistant");
    if (rc->body.len || !rc->ncalls)
        json_object_set_new(message, "content",
                            json_stringn(rc->body.data ? rc->body.data : "", rc->body.len));
    else
        json_object_set_new(message, "content", json_null());
    if (rc->reasoning.len)
        json_object_set_new(message, "reasoning_content",
                            json_stringn(rc->reasoning.data, rc->reasoning.len));
    if (rc->ncalls) {
        json_t *calls = json_array();
        for (int i = 0; i < rc->ncalls; i++) {
            call_acc *c = &rc->calls[i];
            json_array_append_new(calls,
                                  json_pack("{s:s,s:s,s:{s:s,s:s%}}", "id", c->id ? c->id : "", "type",
                                            "function", "function", "name", c->name ? c->name : "",
                                            "arguments", c->args.data ? c->args.data : "", c->args.len));
        }
        json_object_set_new(message, "tool_calls", calls);
    }
    json_t *usage = rc->usage ? json_incref(rc->usage) : xlate__usage(&rc->x);
    const char *id = rc->x.id[0] ? rc->x.id : rc->ctx.request_id;
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id, "object", "chat.completion",
                     "created", (json_int_t)rc->x.created, "model", rc->x.model ? rc->x.model : "", "choices",
                     "index", 0, "message", message, "logprobs", "finish_reason",
                     rc->finish ? rc->finish : "", "usage", usage);
}

/* A plain reply in the client's format, as canonical. */
static json_t *plain_reply(reply_collector *rc)
{
    const wire_codec *codec = wire_codecs[rc->ctx.ingress];
    json_error_t jerr;
    json_t *reply = json_loadb(rc->body.data ? rc->body.data : "", rc->body.len, 0, &jerr);
    if (!json_is_object(reply) || (codec->reply_shape && codec->reply_shape(reply))) {
        json_decref(reply);
        rc->why = "the reply is not a well-formed completion";
        return NULL;
    }
    xlate__note_usage(&rc->ctx, codec, reply);
    json_t *canon = reply;
    if (codec->reply_to_canonical) {
        canon = codec->reply_to_canonical(&rc->x, reply);
        json_decref(reply);
    }
    if (json_array_size(json_object_get(canon, "choices")) != 1) {
        json_decref(canon);
        rc->why = "the reply has more than one choice";
        return NULL;
    }
    /* the same shape a stream's sum has: the fields a replay uses, nothing a provider added */
    json_t *choice = json_array_get(json_object_get(canon, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    rc->finish = json_string_value(json_object_get(choice, "finish_reason"));
    json_t *content = json_object_get(msg, "content");
    if (content && !json_is_string(content) && !json_is_null(content)) {
        json_decref(canon);
        rc->why = "the reply's content is not text";
        return NULL;
    }
    json_t *message = json_pack("{s:s,s:O}", "role", "assistant", "content", content ? content : json_null());
    json_t *reasoning = json_object_get(msg, "reasoning_content");
    if (json_is_string(reasoning)) json_object_set(message, "reasoning_content", reasoning);
    json_t *calls = json_object_get(msg, "tool_calls");
    if (json_array_size(calls)) json_object_set(message, "tool_calls", calls);
    json_t *usage = json_object_get(canon, "usage");
    const char *id = json_string_value(json_object_get(canon, "id"));
    const char *model = json_string_value(json_object_get(canon, "model"));
    json_t *created = json_object_get(canon, "created");
    json_t *out =
        json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id ? id : rc->ctx.request_id, "object",
                  "chat.completion", "created",
                  json_is_integer(created) ? json_integer_value(created) : (json_int_t)rc->x.created, "model",
                  model ? model : rc->x.model, "choices", "index", 0, "message", message, "logprobs",
                  "finish_reason", rc->finish ? rc->finish : "", "usage",
                  json_is_object(usage) ? json_incref(usage) : xlate__usage(&rc->x));
    json_decref(canon);
    rc->finish = json_string_value(
        json_object_get(json_array_get(json_object_get(out, "choices"), 0), "finish_reason"));
    return out;
}

json_t *provider_collect_end(reply_collector *rc, const char **why)
{
    json_t *canon = NULL;
    if (!rc->failed && rc->stream && !rc->done) give_up(rc, "the stream did not reach its end");
    if (!rc->failed && rc->multi) give_up(rc, "the reply has more than one choice");
    if (!rc->failed) canon = rc->stream ? summed_reply(rc) : plain_reply(rc);
    const char *f = rc->finish;
    if (canon && (!f || (strcmp(f, "stop") && strcmp(f, "length") && strcmp(f, "tool_calls")))) {
        json_decref(canon);
        canon = NULL;
        rc->why = "the reply did not finish with stop, length or tool_calls";
    }
    if (!canon && why) *why = rc->why ? rc->why : "the reply cannot be stored";
    return canon;
}

void provider_collect_free(reply_collector *rc)
{
    if (!rc) return;
    buf_free(&rc->body);
    buf_free(&rc->reasoning);
    if (rc->stream) sse_reader_free(&rc->sse);
    for (int i = 0; i < rc->ncalls; i++)
        buf_free(&rc->calls[i].args);
    json_decref(rc->usage);
    rc->usage = NULL;
    rc->ncalls = 0;
}

/* ---- replay ------------------------------------------------------------------------------- */

static void encode(xlate *x, const wire_codec *client, json_t *chunk, buf *out)
{
    if (!chunk) return;
    client->stream_encode(x, chunk, out);
    json_decref(chunk);
}

bool provider_replay_render(codec_ctx *c, json_t *canon, provider_replay_shapes *out)
{
    const wire_codec *client = wire_codecs[c->ingress];
    if (!json_is_object(canon)) return false;
    xlate *x = arena_alloc(c->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    x->ctx = c;
    x->ingress = x->upstream = c->ingress;
    x->include_usage = true; /* rendered once: a replay that was not asked for it leaves it out */
    x->open_block = -1;
    const char *model = json_string_value(json_object_get(canon, "model"));
    x->model = arena_strndup(c->arena, model ? model : "", model ? strlen(model) : 0);
    const char *id = json_string_value(json_object_get(canon, "id"));
    if (id) xlate__set_id(x, id);
    json_t *created = json_object_get(canon, "created");
    x->created = json_is_integer(created) ? (int64_t)json_integer_value(created) : (int64_t)time(NULL);
    xlate__note_usage(c, &openai__codec, canon);

    /* one body: the canonical format itself as it is, another format translated */
    if (client->reply_from_canonical)
        client->reply_from_canonical(x, canon, &out->body);
    else
        xlate__append_json(&out->body, canon);

    /* the stream */
    buf *s = &out->stream;
    json_t *choice = json_array_get(json_object_get(canon, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    json_t *calls = json_object_get(msg, "tool_calls");
    json_t *reasoning = json_object_get(msg, "reasoning_content");
    /* the role first, content "" (null before tool calls), as OpenAI streams it */
    encode(x, client,
           xlate__chunk(x,
                        json_pack("{s:s,s:o}", "role", "assistant", "content",
                                  json_array_size(calls) && !json_string_length(content) ? json_null()
                                                                                         : json_string("")),
                        NULL),
           s);
    if (json_string_length(reasoning))
        encode(x, client, xlate__chunk(x, json_pack("{s:O}", "reasoning_content", reasoning), NULL), s);
    if (json_string_length(content))
        encode(x, client, xlate__chunk(x, json_pack("{s:O}", "content", content), NULL), s);
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        args = json_is_string(args) ? json_incref(args) : json_string("");
        json_t *name = json_object_get(fn, "name"), *cid = json_object_get(tc, "id");
        encode(x, client,
               xlate__chunk(x,
                            json_pack("{s:[{s:i,s:o,s:s,s:{s:o,s:o}}]}", "tool_calls", "index", (int)i, "id",
                                      json_is_string(cid) ? json_incref(cid) : json_string(""), "type",
                                      "function", "function", "name",
                                      json_is_string(name) ? json_incref(name) : json_string(""), "arguments",
                                      args),
                            NULL),
               s);
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    encode(x, client, xlate__chunk(x, NULL, finish ? finish : "stop"), s);
    size_t before = s->len;
    encode(x, client, xlate__usage_chunk(x), s);
    /* a format that streams usage unasked always has it; OpenAI's only on include_usage */
    out->usage_at = client->stream_reports_usage ? 0 : before;
    out->usage_len = client->stream_reports_usage ? 0 : s->len - before;
    client->stream_encode_finish(x, s);
    return !out->body.overflowed && !s->overflowed && !x->failure;
}
