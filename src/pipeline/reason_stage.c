/* reason_stage.c — OptiLLM's reasoning techniques as an EXECUTE stage: several upstream calls
 * for one client request, sent concurrently where the technique allows, each through aigw's own
 * routing, and one answer whose usage and cost are the sum of them all.
 *
 * Two rows of the stage table:
 *   reason-name (DECODE, before key-route): a model `moa-gpt-4o-mini` (OptiLLM's prefix) or a
 *     body's `optillm_approach` names a technique; x->model becomes the rest of the name, so the
 *     key's model globs, the limits and PLAN see the model that serves. A name the config serves
 *     as it is (a route called `re2-test`) is never read as a prefix. An unknown approach, one
 *     of OptiLLM's that aigw does not run, a combination, or a technique on an endpoint other
 *     than chat completions and messages: 400 in the client's shape.
 *   reason (EXECUTE, before the walk): runs the technique. Each call is an attempt made with
 *     attempt_new_request (an OpenAI chat body of the technique's own) on a walk of its own
 *     through the request's tree (route_walk_fresh), so every call gets the route's retries,
 *     fallbacks, breakers, timeouts and rate-limit steering; a call's backoff waits on the
 *     request's one timer, armed for the earliest due call. A step's calls start together and
 *     the next step begins when all have ended.
 *
 * The final generation — moa's synthesis, cot_reflection's and re2's one call, plan search's
 * implementation — is sent with "stream": true when the client streams, and its text goes to
 * the client as each upstream read brings it, re-encoded as OpenAI chunks or Anthropic events
 * by this file (so the usage it reports can be the sum of every call, and cot_reflection can be
 * cut to its <output> part: reasoning_cot_feed). bon and self_consistency end in a choice among
 * samples, not a generation: their answer is sent once chosen, as one content chunk.
 *
 * Bounds: n ≤ REASON_N_MAX, at most REASON_CALLS_MAX attempts per request (a call whose walk
 * would pass it fails), each earlier answer carried into a later prompt cut at REASON_TEXT_MAX,
 * the conversation at REASON_QUERY_MAX; per-call timeouts are the route's. Techniques are not
 * cached (cache_stage.c declines them) and not hedged: their samples are meant to differ.
 * Rejected: running a technique as a chain of stages (PLAN → CACHE → EXECUTE per call) — the
 * stages answer a client, not a step; an attempt is the unit that is already shared by the walk,
 * the hedge and the semantic cache. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pipeline/attempt.h"
#include "pipeline/stages.h"
#include "reasoning/reasoning.h"
#include "server/http_conn.h"
#include "util/json.h"
#include "util/timeutil.h"
#include "util/units.h"

#define CALLS_MAX (2 * REASON_N_MAX + 4)  /* bon: n samples and n ratings */
#define STREAM_HELD_MAX (4 * 1024 * 1024) /* cot_reflection's text held before <output> */

typedef struct reason_state reason_state;

typedef struct reason_call {
    reason_state *rs;
    const char *step; /* "propose", "critique", "final", "sample", "rate", "observe", … */
    int index;        /* within its step */
    char *body;       /* OpenAI chat JSON, arena */
    size_t body_len;
    bool stream; /* the final generation, streamed to the client */
    route_walk *walk;
    route_target target;
    attempt *a;    /* in flight */
    attempt *last; /* the last ended */
    bool waiting;  /* for its backoff */
    uint64_t due_ns;
    bool done, ok;
    char *text; /* the answer's content, arena */
    size_t text_len;
    bool truncated; /* finish_reason length */
} reason_call;

struct reason_state {
    exchange *x;
    reasoning_technique t;
    int n;
    int step; /* the technique's progress */
    reason_call calls[CALLS_MAX];
    route_walk *walks[CALLS_MAX];
    const char *steps[CALLS_MAX];
    int ncalls, first_of_step, pending;
    uint32_t sent; /* attempts, for REASON_CALLS_MAX */
    char *system, *query;
    double temperature; /* the client's, or -1 */
    long max_tokens;    /* the client's, or -1 */
    bool include_usage;
    const char *degraded; /* why the answer is less than the technique meant, for a header */
    /* the answer to the client */
    bool began, ended;
    reasoning_cot_filter cot;
    bool cot_on;
    const char *finish;
};

static reason_state *state_of(exchange *x);
static void call_next(reason_call *c);
static void step_done(reason_state *rs);

/* ---- DECODE: the technique's name ------------------------------------------------------------- */

static stage_result refuse(exchange *x, const char *param, const char *message)
{
    exchange_error(x, 400, "invalid_request_error", "invalid_value", param, message);
    return STAGE_DONE;
}

static stage_result reason_name_on_request(exchange *x, void *state)
{
    (void)state;
    if (!x->model) return STAGE_NEXT;
    bool chat = x->endpoint == ENDPOINT_CHAT_COMPLETIONS || x->endpoint == ENDPOINT_MESSAGES;
    reasoning_technique t = REASON_NONE;
    char msg[400];
    if (x->reasoning.approach_end) {
        const char *body = x->http->body.data;
        size_t s = x->reasoning.approach_start, e = x->reasoning.approach_end;
        if (body[s] != '"') return refuse(x, "optillm_approach", "'optillm_approach' must be a string");
        size_t len;
        const char *name = json_string_decode(x->arena, body, s, e, &len);
        reasoning_name_result r = reasoning_from_name(name, len, &t);
        if (r != REASON_NAME_OK) {
            snprintf(msg, sizeof msg,
                     r == REASON_NAME_UNSUPPORTED
                         ? "optillm_approach `%.60s` is not run by this gateway (supported: moa, bon, "
                           "self_consistency, cot_reflection, re2, plansearch; one at a time)"
                         : "unknown optillm_approach `%.60s` (supported: moa, bon, self_consistency, "
                           "cot_reflection, re2, plansearch, none, auto)",
                     name);
            return refuse(x, "optillm_approach", msg);
        }
    }
    /* a name the config serves is a model, whatever it begins with */
    bool served = config_find_route(x->config, x->model, x->model_len) ||
                  config_find_model(x->config, x->model, x->model_len);
    size_t rest = 0;
    reasoning_technique prefixed = REASON_NONE;
    reasoning_name_result pr =
        served ? REASON_NAME_NO : reasoning_from_prefix(x->model, x->model_len, &prefixed, &rest);
    if (pr == REASON_NAME_UNSUPPORTED) {
        snprintf(msg, sizeof msg,
                 "the model `%.200s` asks for an OptiLLM approach this gateway does not run (supported "
                 "prefixes: moa-, bon-, self_consistency-, cot_reflection-, re2-, plansearch-)",
                 x->model);
        return refuse(x, "model", msg);
    }
    if (pr == REASON_NAME_OK) {
        if (t != REASON_NONE)
            return refuse(x, "optillm_approach",
                          "one technique at a time: the model's prefix and "
                          "optillm_approach both name one");
        /* a second prefix (moa-bon-…) is a combination: refused, not sent as a model name */
        reasoning_technique second;
        size_t rest2;
        if (reasoning_from_prefix(x->model + rest, x->model_len - rest, &second, &rest2) != REASON_NAME_NO)
            return refuse(x, "model", "one technique at a time: the model names two");
        t = prefixed;
        x->model += rest;
        x->model_len -= rest;
    }
    if (t == REASON_NONE) return STAGE_NEXT;
    if (!chat)
        return refuse(x, "model", "reasoning techniques are served on /v1/chat/completions and /v1/messages");
    x->reasoning.technique = t;
    x->reasoning.name = reasoning_name(t);
    return STAGE_NEXT;
}

const stage stage_reason_name = {
    .name = "reason-name",
    .phase = PHASE_DECODE,
    .on_request = reason_name_on_request,
};

/* ---- the client's answer: OpenAI chunks or Anthropic events ------------------------------------- */

static bool anthropic(const reason_state *rs)
{
    return rs->x->ingress == WIRE_ANTHROPIC;
}

/* The usage and cost of every attempt the technique made, summed into x->reasoning. */
static void sum_usage(reason_state *rs)
{
    exchange *x = rs->x;
    usage_counts sum = {0};
    double cost = 0;
    uint32_t calls = 0;
    for (attempt *a = x->attempts; a; a = a->next) {
        if (a->sink_data == NULL || !a->internal) continue;
        bool ours = false;
        for (int i = 0; i < rs->ncalls && !ours; i++)
            ours = a->sink_data == &rs->calls[i];
        if (!ours) continue;
        calls += a->start_ns != 0;
        const usage_counts *u = &a->codec.usage;
        if (!u->seen) continue;
        sum.prompt += u->prompt;
        sum.completion += u->completion;
        sum.cached += u->cached;
        sum.cache_write += u->cache_write;
        sum.reasoning += u->reasoning;
        sum.seen = true;
        double c = attempt_cost(a);
        if (c < 0 || cost < 0)
            cost = -1;
        else
            cost += c;
    }
    x->reasoning.summed = true;
    x->reasoning.usage = sum;
    x->reasoning.cost_usd = sum.seen ? cost : -1;
    x->reasoning.calls = calls;
}

static void usage_json(reason_state *rs, buf *b)
{
    const usage_counts *u = &rs->x->reasoning.usage;
    if (anthropic(rs)) {
        long input = (long)u->prompt - (long)u->cached - (long)u->cache_write;
        buf_printf(b,
                   "{\"input_tokens\":%ld,\"output_tokens\":%ld,\"cache_creation_input_tokens\":%ld,"
                   "\"cache_read_input_tokens\":%ld}",
                   input < 0 ? 0 : input, (long)u->completion, (long)u->cache_write, (long)u->cached);
        return;
    }
    buf_printf(b, "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld", (long)u->prompt,
               (long)u->completion, (long)(u->prompt + u->completion));
    if (u->cached) buf_printf(b, ",\"prompt_tokens_details\":{\"cached_tokens\":%ld}", (long)u->cached);
    if (u->reasoning)
        buf_printf(b, ",\"completion_tokens_details\":{\"reasoning_tokens\":%ld}", (long)u->reasoning);
    buf_append_lit(b, "}");
}

/* x-aigw-technique, x-aigw-calls, x-aigw-route, the degradation if any, and the cost when it is
 * known now (a reply, not a stream's head). */
static void set_head(reason_state *rs, bool with_cost)
{
    exchange *x = rs->x;
    buf h;
    buf_init(&h, 4096);
    buf_printf(&h, "x-aigw-technique: %s\r\nx-aigw-calls: %u\r\n", x->reasoning.name, rs->sent);
    if (x->walk) {
        const char *route = route_tree_name(x->walk);
        buf_append_lit(&h, "x-aigw-route: ");
        for (const char *p = route; *p && p - route < 512; p++)
            if ((unsigned char)*p >= 0x20 && *p != 0x7f) buf_append(&h, p, 1);
        buf_append_lit(&h, "\r\n");
    }
    if (rs->degraded) buf_printf(&h, "x-aigw-reasoning-degraded: %s\r\n", rs->degraded);
    if (with_cost && x->reasoning.cost_usd >= 0) {
        char usd[UNITS_DECIMAL_MAX];
        units_format_decimal(usd, x->reasoning.cost_usd);
        buf_printf(&h, "x-aigw-cost-usd: %s\r\n", usd);
    }
    exchange_set_head(x, arena_strndup(x->arena, h.data ? h.data : "", h.len), h.len);
    buf_free(&h);
}

static void stream_begin(reason_state *rs)
{
    if (rs->began) return;
    rs->began = true;
    exchange *x = rs->x;
    set_head(rs, false);
    exchange_stream_begin(x, 200, "text/event-stream", NULL, 0);
    buf b;
    buf_init(&b, 8192);
    if (anthropic(rs)) {
        buf_printf(&b,
                   "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_%s\","
                   "\"type\":\"message\",\"role\":\"assistant\",\"model\":",
                   x->http->id);
        buf_append_json_string(&b, x->model, x->model_len);
        buf_append_lit(
            &b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
                "\"output_tokens\":0}}}\n\n"
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else {
        buf_printf(
            &b,
            "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
            x->http->id, (long long)time(NULL));
        buf_append_json_string(&b, x->model, x->model_len);
        buf_append_lit(&b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                           "\"finish_reason\":null}]}\n\n");
    }
    exchange_stream_write(x, b.data, b.len);
    buf_free(&b);
}

/* One piece of the answer's text to the client; true when the client is behind. */
static bool stream_text(reason_state *rs, const char *text, size_t len)
{
    if (!len) return false;
    exchange *x = rs->x;
    buf b;
    buf_init(&b, 6 * len + 512);
    if (anthropic(rs)) {
        buf_append_lit(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                           "\"delta\":{\"type\":\"text_delta\",\"text\":");
        buf_append_json_string(&b, text, len);
        buf_append_lit(&b, "}}\n\n");
    } else {
        buf_printf(
            &b,
            "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
            x->http->id, (long long)time(NULL));
        buf_append_json_string(&b, x->model, x->model_len);
        buf_append_lit(&b, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        buf_append_json_string(&b, text, len);
        buf_append_lit(&b, "},\"finish_reason\":null}]}\n\n");
    }
    bool behind = exchange_stream_write(x, b.data, b.len);
    buf_free(&b);
    return behind;
}

static void stream_finish(reason_state *rs, const char *error)
{
    exchange *x = rs->x;
    rs->ended = true;
    sum_usage(rs);
    buf b;
    buf_init(&b, 8192);
    bool length = rs->finish && !strcmp(rs->finish, "length");
    if (error) {
        x->error_note = arena_strndup(x->arena, error, strlen(error));
        if (anthropic(rs)) {
            buf_append_lit(
                &b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":");
            buf_append_json_string(&b, error, strlen(error));
            buf_append_lit(&b, "}}\n\n");
        } else {
            buf_append_lit(&b, "data: {\"error\":{\"message\":");
            buf_append_json_string(&b, error, strlen(error));
            buf_append_lit(
                &b, ",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n");
        }
    } else if (anthropic(rs)) {
        buf_append_lit(&b,
                       "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
        buf_append_str(&b, length ? "\"max_tokens\"" : "\"end_turn\"");
        buf_append_lit(&b, ",\"stop_sequence\":null},\"usage\":");
        usage_json(rs, &b);
        buf_append_lit(&b, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    } else {
        buf_printf(
            &b,
            "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
            x->http->id, (long long)time(NULL));
        buf_append_json_string(&b, x->model, x->model_len);
        buf_printf(&b, ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}\n\n",
                   length ? "length" : "stop");
        if (rs->include_usage) {
            buf_printf(
                &b,
                "data: "
                "{\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                x->http->id, (long long)time(NULL));
            buf_append_json_string(&b, x->model, x->model_len);
            buf_append_lit(&b, ",\"choices\":[],\"usage\":");
            usage_json(rs, &b);
            if (x->reasoning.cost_usd >= 0) {
                char usd[UNITS_DECIMAL_MAX];
                units_format_decimal(usd, x->reasoning.cost_usd);
                b.len--; /* inside the usage object */
                buf_printf(&b, ",\"aigw\":{\"cost_usd\":%s}}", usd);
            }
            buf_append_lit(&b, "}\n\n");
        }
        buf_append_lit(&b, "data: [DONE]\n\n");
    }
    exchange_stream_end(x, b.data, b.len);
    buf_free(&b);
}

/* The whole answer: a reply (the client did not stream), or a stream of one text chunk (bon's and
 * self_consistency's choice, a degraded answer). */
static void answer_text(reason_state *rs, const char *text, size_t len)
{
    exchange *x = rs->x;
    for (int i = rs->ncalls - 1; i >= 0 && !x->answer; i--) /* the record's provider: the last call's */
        if (rs->calls[i].ok) x->answer = rs->calls[i].last;
    if (x->stream) {
        stream_begin(rs);
        stream_text(rs, text, len);
        stream_finish(rs, NULL);
        return;
    }
    rs->ended = true;
    sum_usage(rs);
    bool length = rs->finish && !strcmp(rs->finish, "length");
    buf b;
    buf_init(&b, 6 * len + 8192);
    if (anthropic(rs)) {
        buf_printf(&b,
                   "{\"id\":\"msg_%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", x->http->id);
        buf_append_json_string(&b, x->model, x->model_len);
        buf_append_lit(&b, ",\"content\":[{\"type\":\"text\",\"text\":");
        buf_append_json_string(&b, text, len);
        buf_printf(&b, "}],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":",
                   length ? "max_tokens" : "end_turn");
    } else {
        buf_printf(&b, "{\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                   x->http->id, (long long)time(NULL));
        buf_append_json_string(&b, x->model, x->model_len);
        buf_append_lit(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        buf_append_json_string(&b, text, len);
        buf_printf(&b, "},\"finish_reason\":\"%s\"}],\"usage\":", length ? "length" : "stop");
    }
    usage_json(rs, &b);
    buf_append_lit(&b, "}");
    set_head(rs, true);
    exchange_respond(x, 200, "application/json", NULL, 0, b.data, b.len);
    buf_free(&b);
}

/* The technique could not answer: the failing call's error, in the client's shape. */
static void answer_failure(reason_state *rs, const reason_call *c)
{
    exchange *x = rs->x;
    rs->ended = true;
    sum_usage(rs);
    const attempt *a = c ? c->last : NULL;
    char msg[700];
    int status = 502;
    const char *code = "upstream_error";
    if (a && a->outcome == ATTEMPT_ANSWERED && a->status >= 400) {
        status = a->status;
        const char *upstream = NULL;
        json_t *j = a->reply.data ? json_loadb(a->reply.data, a->reply.len, 0, NULL) : NULL;
        json_t *e = json_object_get(j, "error");
        upstream = json_string_value(json_is_object(e) ? json_object_get(e, "message") : e);
        snprintf(msg, sizeof msg, "%s: its %s call failed: the provider answered %d%s%.400s",
                 x->reasoning.name, c->step, a->status, upstream ? ": " : "", upstream ? upstream : "");
        json_decref(j);
    } else if (a) {
        if (a->failure_status == 504) status = 504, code = "upstream_timeout";
        if (a->failure_status == 408) status = 504, code = "upstream_timeout";
        snprintf(msg, sizeof msg, "%s: its %s call failed: %.500s", x->reasoning.name, c->step,
                 a->message ? a->message : "no answer");
    } else if (c && c->walk && route_unavailable(c->walk, &status, &(uint32_t){0})) {
        snprintf(msg, sizeof msg, "%s: its %s call found no usable target: %.400s", x->reasoning.name,
                 c->step, route_unavailable(c->walk, &status, &(uint32_t){0}));
        status = status == 400 ? 400 : 503;
        code = status == 400 ? "context_length_exceeded" : "targets_unavailable";
    } else {
        snprintf(msg, sizeof msg, "%s: more than %d upstream calls would be needed", x->reasoning.name,
                 REASON_CALLS_MAX);
        status = 502;
    }
    if (rs->began) {
        stream_finish(rs, msg);
        return;
    }
    set_head(rs, false);
    exchange_error(x, status, status == 400 ? "invalid_request_error" : "server_error", code, NULL, msg);
}

/* ---- calls ------------------------------------------------------------------------------------- */

static reason_state *state_of(exchange *x);

/* A new call of the current step: an OpenAI chat body — the model, the system text (when there
 * is one) and the messages given, and the parameters OptiLLM sends for this step. */
static reason_call *call_new(reason_state *rs, const char *step, json_t *messages, double temperature,
                             long max_tokens, bool stream)
{
    exchange *x = rs->x;
    if (rs->ncalls == CALLS_MAX) {
        json_decref(messages);
        return NULL;
    }
    reason_call *c = &rs->calls[rs->ncalls];
    memset(c, 0, sizeof *c);
    c->rs = rs;
    c->step = step;
    c->index = rs->ncalls - rs->first_of_step;
    c->stream = stream;
    json_t *body = json_object();
    json_object_set_new(body, "model", json_stringn(x->model, x->model_len));
    json_object_set_new(body, "messages", messages);
    if (temperature >= 0) json_object_set_new(body, "temperature", json_real(temperature));
    if (max_tokens > 0) json_object_set_new(body, "max_tokens", json_integer(max_tokens));
    if (stream) {
        json_object_set_new(body, "stream", json_true());
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    c->body_len = strlen(s);
    c->body = arena_strndup(x->arena, s, c->body_len);
    free(s);
    c->walk = route_walk_fresh(x->walk);
    rs->walks[rs->ncalls] = c->walk;
    rs->steps[rs->ncalls] = step;
    rs->ncalls++;
    x->reasoning.nwalks = (size_t)rs->ncalls;
    rs->pending++;
    return c;
}

/* [system?, user] */
static json_t *messages_of(const char *system, const char *user, size_t user_len)
{
    json_t *m = json_array();
    if (system && system[0])
        json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", system));
    json_array_append_new(m, json_pack("{s:s, s:s#}", "role", "user", "content", user, (int)user_len));
    return m;
}

static void call_end(reason_call *c, bool ok)
{
    c->done = true;
    c->ok = ok;
    reason_state *rs = c->rs;
    if (--rs->pending == 0 && !rs->ended) step_done(rs);
}

/* The content of a reply translated to OpenAI's shape. */
static bool read_reply(reason_call *c, attempt *a)
{
    buf out;
    buf_init(&out, a->x->config->max_response_bytes * 2);
    const char *type = provider_translate_reply(&a->codec, a->status, a->reply.data ? a->reply.data : "",
                                                a->reply.len, &out);
    const char *data = type ? out.data : a->reply.data;
    size_t len = type ? out.len : a->reply.len;
    json_t *j = data ? json_loadb(data, len, 0, NULL) : NULL;
    buf_free(&out);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    const char *content = json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    bool ok = content != NULL;
    if (ok) {
        size_t n = json_string_length(json_object_get(json_object_get(choice, "message"), "content"));
        c->text = arena_strndup(a->x->arena, content, n);
        c->text_len = n;
        c->truncated = finish && !strcmp(finish, "length");
        if (c->stream) c->rs->finish = finish ? arena_strndup(a->x->arena, finish, strlen(finish)) : NULL;
    }
    json_decref(j);
    return ok;
}

/* The text of the streamed final generation's events (OpenAI chunks), to the client. */
static bool stream_events(reason_call *c, const char *data, size_t len)
{
    reason_state *rs = c->rs;
    exchange *x = rs->x;
    bool behind = false;
    size_t pos = 0;
    buf shown;
    buf_init(&shown, STREAM_HELD_MAX);
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        const char *line = data + pos;
        size_t llen = end - pos;
        pos = end + 1;
        if (llen < 5 || memcmp(line, "data:", 5)) continue;
        line += 5, llen -= 5;
        while (llen && *line == ' ')
            line++, llen--;
        if (llen && line[llen - 1] == '\r') llen--;
        if (llen == 6 && !memcmp(line, "[DONE]", 6)) continue;
        json_t *j = json_loadb(line, llen, 0, NULL);
        json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
        json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
        const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
        if (finish) rs->finish = arena_strndup(x->arena, finish, strlen(finish));
        if (json_is_string(content)) {
            const char *t = json_string_value(content);
            size_t tl = json_string_length(content);
            if (rs->cot_on) {
                buf_reset(&shown);
                reasoning_cot_feed(&rs->cot, t, tl, &shown);
                behind |= stream_text(rs, shown.data, shown.len);
            } else {
                behind |= stream_text(rs, t, tl);
            }
        }
        json_decref(j);
    }
    buf_free(&shown);
    return behind;
}

static bool on_call_head(attempt *a)
{
    reason_call *c = a->sink_data;
    reason_state *rs = c->rs;
    a->retry_after_ms = route_note_headers(c->walk, false, a->status, a->head_lines, a->head_nlines);
    if (c->stream && a->is_stream && !rs->ended) {
        /* the first byte goes to the client: from here on, no retry or fallback for this call */
        stream_begin(rs);
        rs->x->answer = a;
    }
    return true;
}

static bool on_call_events(attempt *a, const char *data, size_t len)
{
    reason_call *c = a->sink_data;
    if (!c->stream || c->rs->ended) return false;
    return stream_events(c, data, len);
}

static uint64_t ttfb_us(const attempt *a)
{
    return a->head_ns ? (a->head_ns - a->start_ns) / 1000 : 0;
}

static void on_call_end(attempt *a)
{
    reason_call *c = a->sink_data;
    reason_state *rs = c->rs;
    c->a = NULL;
    c->last = a;
    if (rs->ended) return;
    if (a->is_stream) {
        if (a->events.len) stream_events(c, a->events.data, a->events.len);
        bool ok = a->outcome == ATTEMPT_ANSWERED;
        route_report(c->walk, &(attempt_report){.result = ok ? ATTEMPT_OK : ATTEMPT_BROKEN,
                                                .ttfb_us = ttfb_us(a),
                                                .retry_after_ms = -1});
        if (rs->cot_on) {
            buf rest;
            buf_init(&rest, STREAM_HELD_MAX);
            reasoning_cot_finish(&rs->cot, &rest);
            stream_text(rs, rest.data, rest.len);
            buf_free(&rest);
        }
        c->done = c->ok = ok;
        rs->pending--;
        stream_finish(rs, ok ? NULL : (a->message ? a->message : "the final generation was cut"));
        return;
    }
    if (a->outcome == ATTEMPT_ANSWERED && a->status >= 200 && a->status < 300) {
        route_report(c->walk, &(attempt_report){.result = ATTEMPT_OK,
                                                .status = a->status,
                                                .ttfb_us = ttfb_us(a),
                                                .retry_after_ms = -1});
        if (read_reply(c, a)) {
            call_end(c, true);
            return;
        }
        a->message = "the provider's reply had no message content";
        call_end(c, false);
        return;
    }
    attempt_result r = a->outcome == ATTEMPT_ANSWERED ? ATTEMPT_STATUS : a->result;
    route_report(c->walk, &(attempt_report){.result = r,
                                            .status = r == ATTEMPT_STATUS ? a->status : 0,
                                            .retry_after_ms = a->retry_after_ms,
                                            .local = a->outcome == ATTEMPT_REFUSED,
                                            .ttfb_us = ttfb_us(a)});
    call_next(c);
}

static const attempt_sink call_sink = {
    .on_head = on_call_head, .on_events = on_call_events, .on_end = on_call_end};

static void call_send(reason_call *c)
{
    reason_state *rs = c->rs;
    exchange *x = rs->x;
    c->waiting = false;
    if (!route_begin(c->walk, &c->target)) { /* its breaker opened meanwhile */
        call_next(c);
        return;
    }
    attempt *a = attempt_new_request(x, &c->target, &call_sink, c, ENDPOINT_CHAT_COMPLETIONS, x->model,
                                     c->body, c->body_len);
    a->codec.stream = c->stream;
    c->last = a;
    if (attempt_prepare(a) != PREP_READY) {
        a->outcome = ATTEMPT_REFUSED;
        route_report(c->walk, &(attempt_report){.result = ATTEMPT_STATUS,
                                                .status = a->local_error ? a->local_error->status : 400,
                                                .retry_after_ms = -1,
                                                .local = true});
        call_next(c);
        return;
    }
    rs->sent++;
    if (!attempt_send(a)) {
        route_report(c->walk, &(attempt_report){.result = ATTEMPT_CONNECT, .retry_after_ms = -1});
        call_next(c);
        return;
    }
    c->a = a;
}

/* Arms the request's timer for the earliest call waiting for its backoff. */
static void on_backoff_timer(http_request *req);
static void arm_timer(reason_state *rs)
{
    uint64_t now = time_now_ns(), first = 0;
    for (int i = 0; i < rs->ncalls; i++)
        if (rs->calls[i].waiting && (!first || rs->calls[i].due_ns < first)) first = rs->calls[i].due_ns;
    if (!first) return;
    uint64_t ms = first > now ? (first - now + 999999) / 1000000 : 0;
    http_request_timer(rs->x->http, (uint32_t)(ms ? ms : 1), on_backoff_timer);
}

static void on_backoff_timer(http_request *req)
{
    exchange *x = req->app;
    reason_state *rs = state_of(x);
    /* the connection's timer: it may fire for a later request on the connection (NULL state) */
    if (!rs || rs->ended) return;
    uint64_t now = time_now_ns();
    /* held while sending: a call that ends at once cannot end the step (and free rs, with the
     * request's arena, when it answers) while this loop still reads it */
    rs->pending++;
    for (int i = 0; i < rs->ncalls; i++)
        if (rs->calls[i].waiting && rs->calls[i].due_ns <= now) call_send(&rs->calls[i]);
    if (--rs->pending == 0 && !rs->ended) {
        step_done(rs);
        return;
    }
    arm_timer(rs);
}

/* The call's next target (the first, a retry after its backoff, a fallback), or its end. */
static void call_next(reason_call *c)
{
    reason_state *rs = c->rs;
    if (rs->ended) return;
    if (rs->sent >= REASON_CALLS_MAX || !route_next(c->walk, &c->target)) {
        call_end(c, false);
        return;
    }
    if (c->target.wait_ms) {
        c->waiting = true;
        c->due_ns = time_now_ns() + (uint64_t)c->target.wait_ms * 1000000;
        arm_timer(rs);
        return;
    }
    call_send(c);
}

/* Every call made since the step began is sent (each may end at once: an answer then waits for
 * the last). */
static void step_start(reason_state *rs)
{
    int from = rs->first_of_step, to = rs->ncalls;
    rs->pending++; /* held while sending, so a call ending at once cannot end the step */
    for (int i = from; i < to && !rs->ended; i++)
        call_next(&rs->calls[i]);
    if (--rs->pending == 0 && !rs->ended) step_done(rs);
}

static void begin_step(reason_state *rs)
{
    rs->step++;
    rs->first_of_step = rs->ncalls;
}

/* ---- the techniques ----------------------------------------------------------------------------- */

static long final_max_tokens(const reason_state *rs, long optillm)
{
    return rs->max_tokens > 0 ? rs->max_tokens : optillm;
}

static const reason_call *first_failed(const reason_state *rs)
{
    for (int i = rs->first_of_step; i < rs->ncalls; i++)
        if (!rs->calls[i].ok) return &rs->calls[i];
    return NULL;
}

static int ok_calls(const reason_state *rs, int from, int to)
{
    int n = 0;
    for (int i = from; i < to; i++)
        n += rs->calls[i].ok;
    return n;
}

static void moa_step(reason_state *rs)
{
    exchange *x = rs->x;
    static const int proposals = 3;
    if (rs->step == 0) {
        begin_step(rs);
        for (int i = 0; i < proposals; i++)
            call_new(rs, "propose", messages_of(rs->system, rs->query, strlen(rs->query)), 1, 4096, false);
        step_start(rs);
        return;
    }
    const char *cand[3];
    size_t len[3];
    int have = 0;
    for (int i = 0; i < proposals; i++)
        if (rs->calls[i].ok) cand[have] = rs->calls[i].text, len[have++] = rs->calls[i].text_len;
    if (!have) {
        answer_failure(rs, &rs->calls[0]);
        return;
    }
    for (int i = have; i < 3; i++) /* OptiLLM pads with the first */
        cand[i] = cand[0], len[i] = len[0];
    buf p;
    buf_init(&p, 4 * REASON_TEXT_MAX + 2 * REASON_QUERY_MAX);
    if (rs->step == 1) {
        begin_step(rs);
        reasoning_moa_critique(&p, rs->query, cand, len);
        call_new(rs, "critique", messages_of(rs->system, p.data, p.len), 0.1, 512, false);
        buf_free(&p);
        step_start(rs);
        return;
    }
    if (rs->step == 2) {
        const reason_call *critique = &rs->calls[proposals];
        const char *text =
            critique->ok && !critique->truncated ? critique->text : reasoning_moa_generic_critique;
        size_t tlen = text == reasoning_moa_generic_critique ? strlen(text) : critique->text_len;
        if (text == reasoning_moa_generic_critique)
            rs->degraded = "critique failed; a generic critique was used";
        begin_step(rs);
        reasoning_moa_final(&p, rs->query, cand, len, text, tlen);
        call_new(rs, "final", messages_of(rs->system, p.data, p.len), 0.1, final_max_tokens(rs, 8192),
                 x->stream);
        buf_free(&p);
        step_start(rs);
        return;
    }
    buf_free(&p);
    const reason_call *final = &rs->calls[rs->ncalls - 1];
    if (final->ok) {
        answer_text(rs, final->text, final->text_len);
        return;
    }
    /* OptiLLM answers with the first proposal when the synthesis gives nothing */
    rs->degraded = "the synthesis failed; the first proposal answers";
    answer_text(rs, cand[0], len[0]);
}

static void bon_step(reason_state *rs)
{
    if (rs->step == 0) {
        begin_step(rs);
        for (int i = 0; i < rs->n; i++)
            call_new(rs, "sample", messages_of(rs->system, rs->query, strlen(rs->query)), 1, 4096, false);
        step_start(rs);
        return;
    }
    if (rs->step == 1) {
        if (!ok_calls(rs, 0, rs->n)) {
            answer_failure(rs, first_failed(rs));
            return;
        }
        begin_step(rs);
        for (int i = 0; i < rs->n; i++) {
            if (!rs->calls[i].ok) continue;
            json_t *m = messages_of(rs->system, rs->query, strlen(rs->query));
            json_array_append_new(
                m, json_pack("{s:s, s:s}", "role", "system", "content", reasoning_bon_rate_system));
            json_array_append_new(
                m, json_pack("{s:s, s:s#}", "role", "assistant", "content", rs->calls[i].text,
                             (int)(rs->calls[i].text_len > REASON_TEXT_MAX ? REASON_TEXT_MAX
                                                                           : rs->calls[i].text_len)));
            json_array_append_new(
                m, json_pack("{s:s, s:s}", "role", "user", "content", reasoning_bon_rate_user));
            reason_call *r = call_new(rs, "rate", m, 0.1, 256, false);
            if (r) r->index = i; /* the sample it rates */
        }
        step_start(rs);
        return;
    }
    /* the best-rated sample (a failed rating is 0, as OptiLLM's; a tie goes to the first) */
    int best = -1;
    double best_rating = -1e300;
    for (int i = rs->first_of_step; i < rs->ncalls; i++) {
        const reason_call *r = &rs->calls[i];
        double v = r->ok ? reasoning_rating(r->text, r->text_len) : 0;
        if (v > best_rating) best_rating = v, best = r->index;
    }
    if (!rs->calls[best].ok) best = 0;
    rs->finish = rs->calls[best].truncated ? "length" : "stop";
    answer_text(rs, rs->calls[best].text, rs->calls[best].text_len);
}

static void self_consistency_step(reason_state *rs)
{
    if (rs->step == 0) {
        begin_step(rs);
        for (int i = 0; i < rs->n; i++)
            call_new(rs, "sample", messages_of(rs->system, rs->query, strlen(rs->query)), 1, 4096, false);
        step_start(rs);
        return;
    }
    const char *texts[REASON_N_MAX];
    size_t lens[REASON_N_MAX];
    for (int i = 0; i < rs->n; i++) {
        texts[i] = rs->calls[i].ok ? rs->calls[i].text : NULL;
        lens[i] = rs->calls[i].text_len;
    }
    int votes;
    int best = reasoning_majority(texts, lens, rs->n, &votes);
    if (best < 0) {
        answer_failure(rs, first_failed(rs));
        return;
    }
    char note[64];
    snprintf(note, sizeof note, "%d of %d samples agree", votes, rs->n);
    rs->x->route_reason = arena_strndup(rs->x->arena, note, strlen(note));
    answer_text(rs, rs->calls[best].text, rs->calls[best].text_len);
}

static void one_call_step(reason_state *rs)
{
    exchange *x = rs->x;
    if (rs->step == 0) {
        buf p;
        buf_init(&p, 2 * REASON_QUERY_MAX + 8192);
        begin_step(rs);
        if (rs->t == REASON_COT_REFLECTION) {
            reasoning_cot_system(&p, rs->system);
            json_t *m = json_array();
            json_array_append_new(m,
                                  json_pack("{s:s, s:s#}", "role", "system", "content", p.data, (int)p.len));
            json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", rs->query));
            rs->cot_on = true;
            reasoning_cot_init(&rs->cot, STREAM_HELD_MAX);
            call_new(rs, "final", m, rs->temperature >= 0 ? rs->temperature : 0.6, final_max_tokens(rs, 4096),
                     x->stream);
        } else {
            reasoning_re2(&p, rs->query);
            call_new(rs, "final", messages_of(rs->system, p.data, p.len), -1, final_max_tokens(rs, 0),
                     x->stream);
        }
        buf_free(&p);
        step_start(rs);
        return;
    }
    const reason_call *c = &rs->calls[0];
    if (!c->ok) {
        answer_failure(rs, c);
        return;
    }
    if (!rs->cot_on) {
        answer_text(rs, c->text, c->text_len);
        return;
    }
    buf out;
    buf_init(&out, STREAM_HELD_MAX);
    reasoning_cot_feed(&rs->cot, c->text, c->text_len, &out);
    reasoning_cot_finish(&rs->cot, &out);
    answer_text(rs, out.data ? out.data : "", out.len);
    buf_free(&out);
}

static void plansearch_step(reason_state *rs)
{
    exchange *x = rs->x;
    if (rs->step > 0) {
        const reason_call *last = &rs->calls[rs->ncalls - 1];
        if (!last->ok) {
            answer_failure(rs, last);
            return;
        }
        if (rs->step == 4) {
            answer_text(rs, last->text, last->text_len);
            return;
        }
    }
    buf p, list;
    buf_init(&p, 2 * REASON_QUERY_MAX + 8 * REASON_TEXT_MAX);
    buf_init(&list, 4 * REASON_TEXT_MAX);
    int count = 0;
    const char *step = NULL;
    bool final = false;
    switch (rs->step) {
    case 0:
        reasoning_plan_observations(&p, rs->query);
        step = "observe";
        break;
    case 1:
        reasoning_plan_list(&list, rs->calls[0].text, rs->calls[0].text_len, false, &count);
        reasoning_plan_derived(&p, rs->query, list.data ? list.data : "", list.len);
        step = "derive";
        break;
    case 2:
        reasoning_plan_list(&list, rs->calls[0].text, rs->calls[0].text_len, true, &count);
        reasoning_plan_list(&list, rs->calls[1].text, rs->calls[1].text_len, true, &count);
        reasoning_plan_solution(&p, rs->query, list.data ? list.data : "", list.len);
        step = "plan";
        break;
    default:
        reasoning_plan_implement(&p, rs->query, rs->calls[2].text, rs->calls[2].text_len);
        step = "final";
        final = true;
        break;
    }
    begin_step(rs);
    call_new(rs, step, messages_of(rs->system, p.data ? p.data : "", p.len), -1,
             final ? final_max_tokens(rs, 4096) : 4096, final && x->stream);
    buf_free(&p);
    buf_free(&list);
    step_start(rs);
}

/* All calls of the step have ended: the technique's next step, or its answer. */
static void step_done(reason_state *rs)
{
    switch (rs->t) {
    case REASON_MOA: moa_step(rs); break;
    case REASON_BON: bon_step(rs); break;
    case REASON_SELF_CONSISTENCY: self_consistency_step(rs); break;
    case REASON_PLANSEARCH: plansearch_step(rs); break;
    default: one_call_step(rs); break;
    }
}

/* ---- EXECUTE ------------------------------------------------------------------------------------ */

static reason_state *state_of(exchange *x)
{
    return *(reason_state **)exchange_state(x, &stage_reason);
}

static stage_result reason_on_request(exchange *x, void *state)
{
    if (!x->reasoning.technique || !x->walk) return STAGE_DECLINED;
    const char *why = NULL;
    json_t *canon = exchange_canonical(x, &why);
    if (!canon) {
        exchange_refuse(x, route_tree_name(x->walk), 400, "invalid_request", NULL,
                        why ? why : "the request cannot be read");
        return STAGE_DONE;
    }
    reason_state *rs = arena_alloc(x->arena, sizeof *rs);
    memset(rs, 0, sizeof *rs);
    *(reason_state **)state = rs;
    rs->x = x;
    rs->t = (reasoning_technique)x->reasoning.technique;
    rs->step = 0;
    rs->temperature = -1;
    rs->max_tokens = -1;
    x->reasoning.walks = rs->walks;
    x->reasoning.steps = rs->steps;
    json_t *n = json_object_get(canon, "n");
    rs->n = reasoning_default_n(rs->t);
    if (n && !json_is_null(n)) {
        char msg[200];
        if (!json_is_integer(n) || json_integer_value(n) < 1) {
            exchange_refuse(x, route_tree_name(x->walk), 400, "invalid_value", "n",
                            "'n' must be a positive integer");
            return STAGE_DONE;
        }
        json_int_t v = json_integer_value(n);
        if (reasoning_takes_n(rs->t) && v > REASON_N_MAX) {
            snprintf(msg, sizeof msg, "'n' is %lld; %s takes at most %d samples", (long long)v,
                     x->reasoning.name, REASON_N_MAX);
            exchange_refuse(x, route_tree_name(x->walk), 400, "invalid_value", "n", msg);
            return STAGE_DONE;
        }
        if (!reasoning_takes_n(rs->t) && v > 1) {
            snprintf(msg, sizeof msg, "'n' must be 1 with %s (it answers one choice)", x->reasoning.name);
            exchange_refuse(x, route_tree_name(x->walk), 400, "invalid_value", "n", msg);
            return STAGE_DONE;
        }
        if (reasoning_takes_n(rs->t)) rs->n = (int)v;
    }
    json_t *temp = json_object_get(canon, "temperature");
    if (json_is_number(temp)) rs->temperature = json_number_value(temp);
    json_t *max = json_object_get(canon, "max_completion_tokens");
    if (!json_is_integer(max)) max = json_object_get(canon, "max_tokens");
    if (json_is_integer(max) && json_integer_value(max) > 0) rs->max_tokens = (long)json_integer_value(max);
    rs->include_usage =
        json_is_true(json_object_get(json_object_get(canon, "stream_options"), "include_usage"));
    buf system, query;
    buf_init(&system, REASON_QUERY_MAX);
    buf_init(&query, REASON_QUERY_MAX);
    bool read = reasoning_read_conversation(json_object_get(canon, "messages"), &system, &query);
    rs->system = arena_strndup(x->arena, system.data ? system.data : "", system.len);
    rs->query = arena_strndup(x->arena, query.data ? query.data : "", query.len);
    bool overflow = system.overflowed || query.overflowed;
    buf_free(&system);
    buf_free(&query);
    if (!read) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 overflow ? "the conversation is too long for a reasoning technique (at most %d bytes)"
                          : "a reasoning technique needs a user message%.0d",
                 REASON_QUERY_MAX);
        exchange_refuse(x, route_tree_name(x->walk), 400,
                        overflow ? "context_length_exceeded" : "invalid_request", "messages", msg);
        return STAGE_DONE;
    }
    step_done(rs);
    return STAGE_DONE;
}

/* The client left: the calls in flight end here; their targets' in-flight slots are given back. */
static void reason_on_abort(exchange *x, void *state)
{
    reason_state *rs = *(reason_state **)state;
    if (!rs) return;
    rs->ended = true;
    for (int i = 0; i < rs->ncalls; i++) {
        reason_call *c = &rs->calls[i];
        if (c->a && c->a->call) {
            attempt_cancel(c->a);
            route_report(c->walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
        }
        c->waiting = false;
    }
    sum_usage(rs);
}

static void reason_on_release(exchange *x, void *state)
{
    reason_state *rs = *(reason_state **)state;
    if (rs && rs->cot_on) reasoning_cot_free(&rs->cot);
}

const stage stage_reason = {
    .name = "reason",
    .phase = PHASE_EXECUTE,
    .state_size = sizeof(reason_state *),
    .on_request = reason_on_request,
    .on_abort = reason_on_abort,
    .on_release = reason_on_release,
};
