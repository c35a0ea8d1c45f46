/* execute.c — the EXECUTE phase's default stage: the walk through the route tree, on attempts.
 *
 * PLAN left a walk (routing/): route_next names a target, an attempt goes there; a failure
 * before the client has a byte goes back to the walk — a retry after a backoff (the
 * connection's timer, idle while a request is handled), a fallback, or the final answer with
 * x-should-retry: false. A hedge is a second attempt: after the target's hedge delay without a
 * head, the next target is asked too; the first 2xx head wins and the other is cancelled.
 *
 * The answer: a stream's events go to the client as each upstream read brings them (the
 * client's write queue pauses the attempt above its high-water mark); a buffered reply is
 * translated when the formats differ and sent whole with its cost. A stream the upstream does
 * not finish with its end marker gets an in-band error event and then the end — never a clean
 * finish, so SDKs raise instead of returning a truncated answer. */
#include "pipeline/stages.h"

#include <stdio.h>
#include <string.h>

#include "pipeline/attempt.h"
#include "server/http_conn.h"
#include "util/timeutil.h"
#include "util/units.h"

typedef struct walk_state {
    attempt *cur;         /* the attempt in flight, or last started */
    attempt *other;       /* while a hedge runs: the attempt it hedges against */
    attempt *last_failed; /* the last attempt that failed: its failure answers a walk that ends */
    route_target next;    /* the target waiting for its backoff */
    attempt *hedge_for;   /* the attempt a hedge timer runs for */
} walk_state;

static walk_state *walk_of(exchange *x)
{
    return exchange_state(x, &stage_execute);
}

static void walk_next(exchange *x);
static void send_target(exchange *x, const route_target *t);
static void answer_failure(exchange *x);

/* ---- the response head: what happened ---------------------------------------------------------- */

/* Appends "name: value\r\n"; bytes that could end the header line (control characters, which a
 * client's model name may carry as JSON escapes) are left out, and a value longer than
 * ROUTE_HEADER_VALUE_MAX is cut there (route paths echo names from the client's config). */
#define ROUTE_HEADER_VALUE_MAX 1024
static size_t put_header(char *out, const char *name, size_t name_len, const char *value)
{
    size_t n = name_len;
    memcpy(out, name, name_len);
    for (const unsigned char *v = (const unsigned char *)value; *v && n - name_len < ROUTE_HEADER_VALUE_MAX;
         v++)
        if (*v >= 0x20 && *v != 0x7f) out[n++] = (char)*v;
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

#define PUT_HEADER(out, lit, value) put_header((out), lit, sizeof lit - 1, (value))

void exchange_refuse(exchange *x, const char *route, int status, const char *code, const char *param,
                     const char *message)
{
    size_t cap = strlen(route) + 96;
    char *h = arena_alloc(x->arena, cap);
    size_t n = PUT_HEADER(h, "x-aigw-attempts: ", "0");
    n += PUT_HEADER(h + n, "x-aigw-route: ", route);
    n += PUT_HEADER(h + n, "x-should-retry: ", "false");
    exchange_set_head(x, h, n);
    exchange_error(x, status, "invalid_request_error", code, param, message);
}

/* The provider and model that answered (a: the attempt named, NULL when none was sent), how
 * many attempts it took, the targets tried; and, once aigw has given up, that retrying the same
 * request would only multiply the load (SDKs honour x-should-retry). extra: more lines. */
static void set_route_headers(exchange *x, const attempt *a, bool gave_up, const char *extra,
                              size_t extra_len)
{
    const char *paths = route_paths(x->walk);
    uint32_t attempts = route_attempts(x->walk);
    const model_route *r = a && attempts ? a->target.route : NULL;
    size_t cap =
        strlen(paths) + (r ? strlen(r->provider->name) + r->upstream_model_len : 0) + extra_len + 128;
    char *h = arena_alloc(x->arena, cap);
    size_t n = 0;
    if (r) {
        n += PUT_HEADER(h + n, "x-aigw-provider: ", r->provider->name);
        n += PUT_HEADER(h + n, "x-aigw-model: ", r->upstream_model);
    }
    char count[12];
    char *c = count + sizeof count;
    *--c = '\0';
    do
        *--c = (char)('0' + attempts % 10);
    while (attempts /= 10);
    n += PUT_HEADER(h + n, "x-aigw-attempts: ", c);
    n += PUT_HEADER(h + n, "x-aigw-route: ", paths);
    if (gave_up) n += PUT_HEADER(h + n, "x-should-retry: ", "false");
    if (extra_len) memcpy(h + n, extra, extra_len);
    exchange_set_head(x, h, n + extra_len);
}

/* ---- hedging: two attempts in flight, the first to answer wins ------------------------------------ */

/* The attempt the hedge ran against becomes the current one again (the hedge lost or failed). */
static void resume_other(exchange *x)
{
    walk_state *ws = walk_of(x);
    ws->cur = ws->other;
    ws->other = NULL;
    route_resume_other(x->walk);
}

/* The current attempt won: the other one is cancelled, which says nothing about its health. */
static void drop_other(exchange *x)
{
    walk_state *ws = walk_of(x);
    if (!ws->other) return;
    attempt_cancel(ws->other);
    ws->other = NULL;
    route_report_other(x->walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
}

/* No first byte yet after the target's hedge delay: the next target is asked too. */
static void hedge_fire(http_request *req)
{
    exchange *x = req->app;
    walk_state *ws = walk_of(x);
    attempt *cur = ws->cur;
    if (!cur || cur != ws->hedge_for || !cur->call || cur->head_ns || ws->other) return;
    route_target t;
    if (!route_hedge_next(x->walk, &t)) return;
    ws->other = cur; /* the running attempt becomes the other */
    ws->cur = NULL;
    send_target(x, &t);
}

/* While a hedge runs, the first head decides: a success wins and the other transfer is
 * cancelled; a failure is that attempt's end, and the other one goes on. Returns false when
 * this head's transfer is not the answer. */
static bool hedge_head(exchange *x, attempt *a)
{
    walk_state *ws = walk_of(x);
    bool ok = a->status >= 200 && a->status < 300;
    attempt_report lost = {.result = ok ? ATTEMPT_CANCELLED : ATTEMPT_STATUS,
                           .status = ok ? 0 : a->status,
                           .retry_after_ms = -1};
    if (a == ws->cur && ok) {
        drop_other(x);
        return true;
    }
    if (a == ws->cur) { /* failed while the other is still out: the other may still answer */
        lost.ttfb_us = (time_now_ns() - a->start_ns) / 1000;
        lost.retry_after_ms = route_note_headers(x->walk, false, a->status, a->head_lines, a->head_nlines);
        route_report(x->walk, &lost);
        resume_other(x);
        return false;
    }
    if (ok) { /* the other answered first: the current attempt is the one cancelled */
        attempt_cancel(ws->cur);
        route_report(x->walk, &lost);
        resume_other(x);
        return true;
    }
    lost.retry_after_ms = route_note_headers(x->walk, true, a->status, a->head_lines, a->head_nlines);
    route_report_other(x->walk, &lost);
    ws->other = NULL;
    return false;
}

/* ---- the sink: what an attempt's reply becomes ----------------------------------------------------- */

static bool walk_on_head(attempt *a)
{
    exchange *x = a->x;
    if (walk_of(x)->other && !hedge_head(x, a)) return false;
    a->retry_after_ms = route_note_headers(x->walk, false, a->status, a->head_lines, a->head_nlines);
    if (a->is_stream) {
        /* The first byte goes to the client: from here on there is no retry or fallback. */
        set_route_headers(x, a, false, NULL, 0);
        x->answer = a;
        exchange_stream_begin(x, a->status, "text/event-stream", a->pass_headers, a->pass_headers_len);
    }
    return true;
}

static bool walk_on_events(attempt *a, const char *data, size_t len)
{
    return exchange_stream_write(a->x, data, len);
}

static uint64_t ttfb_us(const attempt *a)
{
    return a->head_ns ? (a->head_ns - a->start_ns) / 1000 : 0;
}

/* An attempt failed before the client had a byte: the walk decides what follows. */
static void attempt_failed(exchange *x, attempt *a, attempt_result result, int status)
{
    walk_state *ws = walk_of(x);
    ws->last_failed = a;
    attempt_report r = {.result = result,
                        .status = status,
                        .retry_after_ms = a->retry_after_ms,
                        .local = a->outcome == ATTEMPT_REFUSED,
                        .ttfb_us = ttfb_us(a)};
    route_report(x->walk, &r);
    if (result == ATTEMPT_TIMEOUT && route_last_status(x->walk) == 408) {
        /* a Portkey config's request_timeout: answered as Portkey does, should the walk end here */
        char msg[96];
        int n = snprintf(msg, sizeof msg, "Request exceeded the timeout sent in the request: %ums",
                         a->target.leaf->request_timeout_ms);
        a->failure_status = 408;
        a->message = arena_strndup(x->arena, msg, (size_t)n);
    }
    if (ws->other) /* a hedge failed first: the attempt it hedged against goes on */
        resume_other(x);
    else
        walk_next(x);
}

/* The buffered reply, translated for the client, with its cost. */
static void answer_reply(exchange *x, attempt *a, bool gave_up)
{
    const char *body = a->reply.data ? a->reply.data : "";
    buf translated;
    buf_init(&translated, x->config->max_response_bytes * 2);
    uint64_t t0 = a->encode_start_ns ? time_now_ns() : 0; /* a traced translation: timed */
    const char *type = provider_translate_reply(&a->codec, a->status, body, a->reply.len, &translated);
    if (t0) a->decode_ns += time_now_ns() - t0;
    /* The cost is known once the reply's usage is: it goes out as a header. */
    char cost_line[64];
    size_t cost_len = 0;
    double cost = attempt_cost(a);
    if (cost >= 0) {
        char usd[UNITS_DECIMAL_MAX];
        units_format_decimal(usd, cost);
        cost_len = (size_t)snprintf(cost_line, sizeof cost_line, "x-aigw-cost-usd: %s\r\n", usd);
    }
    x->answer = a;
    set_route_headers(x, a, gave_up, NULL, 0);
    char *headers = arena_alloc(x->arena, a->pass_headers_len + cost_len + 1);
    memcpy(headers, a->pass_headers, a->pass_headers_len);
    memcpy(headers + a->pass_headers_len, cost_line, cost_len);
    if (type)
        exchange_respond(x, a->codec.reply_status, type, headers, a->pass_headers_len + cost_len,
                         translated.data ? translated.data : "", translated.len);
    else
        exchange_respond(x, a->status, a->content_type, headers, a->pass_headers_len + cost_len, body,
                         a->reply.len);
    buf_free(&translated);
}

static void walk_on_end(attempt *a)
{
    exchange *x = a->x;
    walk_state *ws = walk_of(x);
    if (ws->other) { /* a hedge runs: one of the two transfers ended before its head */
        attempt_report r = {.result = a->result, .retry_after_ms = -1};
        if (a != ws->cur) {
            ws->other = NULL;
            route_report_other(x->walk, &r);
        } else {
            route_report(x->walk, &r);
            resume_other(x);
        }
        return;
    }
    switch (a->outcome) {
    case ATTEMPT_ANSWERED:
        if (a->is_stream) {
            /* its output rate too: tokens from the head to the end (an auto route's latency) */
            const usage_counts *u = &a->codec.usage;
            route_report(
                x->walk,
                &(attempt_report){
                    .result = ATTEMPT_OK,
                    .ttfb_us = ttfb_us(a),
                    .retry_after_ms = -1,
                    .output_tokens = u->seen && u->completion > 0 ? (uint64_t)u->completion : 0,
                    .stream_us = a->head_ns && a->end_ns > a->head_ns ? (a->end_ns - a->head_ns) / 1000 : 0});
            exchange_stream_end(x, a->events.data, a->events.len);
        } else if (a->result == ATTEMPT_OK) {
            route_report(x->walk, &(attempt_report){.result = ATTEMPT_OK,
                                                    .status = a->status,
                                                    .ttfb_us = ttfb_us(a),
                                                    .retry_after_ms = -1});
            answer_reply(x, a, false);
        } else {
            attempt_failed(x, a, ATTEMPT_STATUS, a->status);
        }
        return;
    case ATTEMPT_STREAM_CUT:
        /* Past the first byte there is no switching targets: the client learns it failed. */
        route_report(x->walk, &(attempt_report){
                                  .result = ATTEMPT_BROKEN, .ttfb_us = ttfb_us(a), .retry_after_ms = -1});
        attempt_stream_error(a, a->message);
        x->error_note = a->message;
        exchange_stream_end(x, a->events.data, a->events.len);
        return;
    case ATTEMPT_TOO_LARGE:
        /* The provider answered; the gateway's limit refused it: no other target would do better. */
        route_report(x->walk, &(attempt_report){.result = ATTEMPT_OK, .retry_after_ms = -1});
        x->answer = a;
        set_route_headers(x, a, true, NULL, 0);
        exchange_error(x, 502, "server_error", "upstream_error", NULL, a->message);
        return;
    default: attempt_failed(x, a, a->result, a->result == ATTEMPT_STATUS ? a->status : 0); return;
    }
}

static const attempt_sink walk_sink = {
    .on_head = walk_on_head,
    .on_events = walk_on_events,
    .on_end = walk_on_end,
};

/* ---- the walk ---------------------------------------------------------------------------------- */

static void send_waited(http_request *req)
{
    exchange *x = req->app;
    send_target(x, &walk_of(x)->next);
}

static void walk_next(exchange *x)
{
    walk_state *ws = walk_of(x);
    if (!route_next(x->walk, &ws->next)) {
        answer_failure(x);
        return;
    }
    if (ws->next.wait_ms)
        http_request_timer(x->http, ws->next.wait_ms, send_waited);
    else
        send_target(x, &ws->next);
}

/* The first attempt is encoded before its target is charged with it: a body no translation can
 * read (a number out of range) is the client's mistake, answered at once with 400 — no attempt,
 * no other target. Later attempts are charged first (their breaker may have opened meanwhile). */
static void send_target(exchange *x, const route_target *t)
{
    walk_state *ws = walk_of(x);
    bool first = !ws->other && route_attempts(x->walk) == 0;
    if (!first && !route_begin(x->walk, t)) { /* its breaker opened meanwhile */
        if (ws->other)
            resume_other(x);
        else
            walk_next(x);
        return;
    }
    attempt *a = attempt_new(x, t, &walk_sink, NULL);
    attempt_prep prep = attempt_prepare(a);
    if (first) {
        if (prep == PREP_UNREADABLE) {
            const provider_error *e = a->local_error;
            exchange_refuse(x, route_tree_name(x->walk), e->status, e->code, e->param, e->message);
            return;
        }
        if (!route_begin(x->walk, t)) { /* its breaker is open */
            walk_next(x);
            return;
        }
    }
    ws->cur = a;
    switch (prep) {
    case PREP_LOCAL_ANSWER: {
        /* The provider cannot count: an estimate from the text, marked as one. */
        route_report(x->walk, &(attempt_report){.result = ATTEMPT_OK, .retry_after_ms = -1, .local = true});
        drop_other(x);
        x->answer = a;
        static const char marker[] = "x-aigw-estimate: true\r\n";
        set_route_headers(x, a, false, NULL, 0);
        char body[48];
        int n = snprintf(body, sizeof body, "{\"input_tokens\":%zu}", provider_estimate_tokens(&a->codec));
        exchange_respond(x, 200, "application/json", marker, sizeof marker - 1, body, (size_t)n);
        return;
    }
    case PREP_REFUSED:
    case PREP_UNREADABLE: /* this provider cannot take the request as it is; another target may */
        a->outcome = ATTEMPT_REFUSED;
        attempt_failed(x, a, ATTEMPT_STATUS, a->local_error ? a->local_error->status : 400);
        return;
    case PREP_READY: break;
    }
    if (!attempt_send(a)) {
        attempt_failed(x, a, ATTEMPT_CONNECT, 0);
        return;
    }
    /* count_tokens is not hedged: a hedge to a provider that cannot count would answer an
     * estimate at once and cancel the exact count */
    uint32_t hedge = ws->other || x->endpoint == ENDPOINT_COUNT_TOKENS ? 0 : route_hedge_delay(x->walk);
    if (hedge) {
        ws->hedge_for = a;
        http_request_timer(x->http, hedge, hedge_fire);
    }
}

/* The walk is over without an answer: the last attempt's failure goes to the client as it was
 * (an upstream error reply keeps its status and message), or why nothing could be sent. */
static void answer_failure(exchange *x)
{
    attempt *a = walk_of(x)->last_failed;
    set_route_headers(x, x->attempts, true, NULL, 0);
    if (a) {
        switch (a->outcome) {
        case ATTEMPT_ANSWERED: answer_reply(x, a, true); return;
        case ATTEMPT_REFUSED: {
            const provider_error *e = a->local_error;
            if (e)
                exchange_error(x, e->status, e->type, e->code, e->param, e->message);
            else
                exchange_error(x, 400, "invalid_request_error", "invalid_request", NULL, a->message);
            return;
        }
        case ATTEMPT_FAILED: {
            const char *code = a->failure_status == 504 ? "upstream_timeout" : "upstream_error";
            if (a->failure_status == 408) { /* Portkey's timeout: its type, no code */
                exchange_error(x, 408, "timeout_error", NULL, NULL, a->message);
                return;
            }
            /* A client's custom_host: what curl says (refused, reset, which address) would map
             * what listens behind the gateway; the details go to the access log only. */
            if (a->custom_host) {
                x->error_note = a->message;
                exchange_error(x, a->failure_status, "server_error", code, NULL,
                               "the custom_host did not answer");
                return;
            }
            exchange_error(x, a->failure_status, "server_error", code, NULL, a->message);
            return;
        }
        default: break;
        }
    }
    const char *error = route_error(x->walk);
    if (error) {
        exchange_error(x, 400, "invalid_request_error", "no_matching_route", NULL, error);
        return;
    }
    int status;
    uint32_t retry_in;
    const char *why = route_unavailable(x->walk, &status, &retry_in);
    char msg[600];
    if (status == 400) {
        snprintf(msg, sizeof msg, "the prompt does not fit the context window of any target of route %s",
                 route_tree_name(x->walk));
        exchange_error(x, 400, "invalid_request_error", "context_length_exceeded", "messages", msg);
        return;
    }
    snprintf(msg, sizeof msg,
             "every target of route %s is unavailable (%s); the first may be tried again in %u ms",
             route_tree_name(x->walk), why ? why : "no usable target", retry_in);
    /* Retry-After for the client: when the first breaker half-opens */
    char retry[40];
    int n = snprintf(retry, sizeof retry, "retry-after: %u\r\n",
                     (retry_in + 999) / 1000 ? (retry_in + 999) / 1000 : 1);
    set_route_headers(x, x->attempts, true, retry, (size_t)n);
    exchange_error(x, 503, "server_error", "targets_unavailable", NULL, msg);
}

/* ---- the stage ------------------------------------------------------------------------------------ */

static stage_result execute_on_request(exchange *x, void *state)
{
    if (!x->walk) return STAGE_DECLINED; /* a local endpoint has answered already */
    walk_next(x);
    return STAGE_DONE;
}

/* The client left: the attempts in flight end here. Their in-flight counts and any half-open
 * probe slot are given back; the client leaving says nothing about the targets' health. */
static void execute_on_abort(exchange *x, void *state)
{
    walk_state *ws = state;
    if (ws->cur && ws->cur->call) {
        attempt_cancel(ws->cur);
        route_report(x->walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
    }
    drop_other(x);
}

const stage stage_execute = {
    .name = "walk",
    .phase = PHASE_EXECUTE,
    .state_size = sizeof(walk_state),
    .on_request = execute_on_request,
    .on_abort = execute_on_abort,
};
