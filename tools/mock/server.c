/* server.c — aigw-mock's HTTP side: workers, connections, request parsing, response heads,
 * stream events, routing to the four wire formats, and main().
 *
 * One libuv loop per worker thread, each with its own SO_REUSEPORT socket. A connection answers
 * its requests in order (pipelined bytes wait in `pending`). A response is either one buffer
 * (head + body) or a list of stream events, each already framed as one HTTP chunk, sent one
 * after another with an optional delay; ttfb delays the head. The mock must be fast enough not
 * to be the bottleneck of a benchmark measuring microseconds, so a reply is written with one
 * uv_try_write when the socket has room.
 *
 * Not part of the gateway: it shares no code with src/ on purpose (a bug in the gateway's
 * parsers must not hide behind the same bug in its test double). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mock.h"

struct worker {
    int id;
    int fd;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_thread_t thread;
    conn *conns;
    uint64_t counter;
};

static http_parser_settings settings;
static void conn_close(conn *c);
static void conn_feed(conn *c, const char *data, size_t len);

uint64_t conn_next_id(conn *c)
{
    return ++c->w->counter;
}

int conn_worker_id(const conn *c)
{
    return c->w->id;
}

/* ---- writing ------------------------------------------------------------------------------ */

static void on_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void conn_send(conn *c, const char *data, size_t len)
{
    if (c->closing || !len) return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len) return;
    if (n < 0 && n != UV_EAGAIN) return;
    if (n < 0) n = 0;
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc(len - (size_t)n);
    if (!req || !copy) abort();
    memcpy(copy, data + n, len - (size_t)n);
    req->data = copy;
    b = uv_buf_init(copy, (unsigned)(len - (size_t)n));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done) != 0) {
        free(copy);
        free(req);
    }
}

static void free_events(conn *c)
{
    for (size_t i = 0; i < c->nevents; i++)
        free(c->events[i].data);
    free(c->events);
    c->events = NULL;
    c->nevents = c->next_event = c->events_cap = 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles) return;
    free(c->url.p);
    free(c->hfield.p);
    free(c->hvalue.p);
    free(c->body.p);
    free(c->pending.p);
    free(c->head.p);
    free(c->rec_headers.p);
    free(c->extra_head.p);
    free_events(c);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing) return;
    if (c->busy) {
        if (c->stream_open) stats_stream_ended(false);
        stats_in_flight(-1);
        c->busy = false;
    }
    c->closing = true;
    worker *w = c->w;
    if (c->prev_conn)
        c->prev_conn->next_conn = c->next_conn;
    else
        w->conns = c->next_conn;
    if (c->next_conn) c->next_conn->prev_conn = c->prev_conn;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* The response is complete: count it and go on with the next pipelined request. */
static void response_done(conn *c)
{
    if (c->busy) {
        if (c->stream_open) stats_stream_ended(true);
        stats_in_flight(-1);
        c->busy = false;
    }
    c->stream_open = c->streaming = false;
    free_events(c);
    c->head.len = 0;
    if (!c->keepalive) {
        uv_shutdown_t *sd = malloc(sizeof *sd);
        if (!sd || uv_shutdown(sd, (uv_stream_t *)&c->tcp, NULL) != 0) free(sd);
        /* the client closes, or our read sees EOF */
        return;
    }
    if (c->pending.len) {
        sbuf taken = c->pending;
        memset(&c->pending, 0, sizeof c->pending);
        conn_feed(c, taken.p, taken.len);
        free(taken.p);
    }
}

static void send_next_event(uv_timer_t *t);

static void stream_continue(conn *c)
{
    while (c->next_event < c->nevents && !c->closing) {
        if (c->drop_after && (long)c->next_event >= c->drop_after) {
            c->stream_open = false; /* our own doing, not a client abort */
            conn_close(c);          /* abrupt: no terminating event, no terminating chunk */
            return;
        }
        chunk *ev = &c->events[c->next_event++];
        conn_send(c, ev->data, ev->len);
        if (c->chunk_delay_ms && c->next_event < c->nevents) {
            uv_timer_start(&c->timer, send_next_event, (uint64_t)c->chunk_delay_ms, 0);
            return;
        }
    }
    if (!c->closing) response_done(c);
}

static void send_next_event(uv_timer_t *t)
{
    stream_continue(t->data);
}

static void on_ttfb(uv_timer_t *t)
{
    conn *c = t->data;
    conn_send(c, c->head.p, c->head.len);
    if (c->streaming)
        stream_continue(c);
    else
        response_done(c);
}

static void respond_start(conn *c, long ttfb_ms)
{
    if (ttfb_ms > 0) {
        uv_timer_start(&c->timer, on_ttfb, (uint64_t)ttfb_ms, 0);
        return;
    }
    on_ttfb(&c->timer);
}

void head_begin(conn *c, int status, const char *content_type, size_t content_length, bool chunked)
{
    static const char *reasons[] = {[200] = "OK",
                                    [400] = "Bad Request",
                                    [401] = "Unauthorized",
                                    [403] = "Forbidden",
                                    [404] = "Not Found",
                                    [405] = "Method Not Allowed",
                                    [408] = "Request Timeout",
                                    [413] = "Content Too Large",
                                    [429] = "Too Many Requests",
                                    [500] = "Internal Server Error",
                                    [502] = "Bad Gateway",
                                    [503] = "Service Unavailable",
                                    [504] = "Gateway Timeout",
                                    [529] = "Overloaded"};
    const char *reason =
        status < 600 && status >= 0 && (size_t)status < sizeof reasons / sizeof reasons[0] && reasons[status]
            ? reasons[status]
            : "Status";
    c->head.len = 0;
    sb_fmt(&c->head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nx-request-id: %s\r\n", status, reason,
           content_type, c->req_id);
    sb_str(&c->head, c->rl_headers);
    sb_add(&c->head, c->extra_head.p ? c->extra_head.p : "", c->extra_head.len);
    if (chunked)
        sb_str(&c->head, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    else
        sb_fmt(&c->head, "Content-Length: %zu\r\n", content_length);
    if (!c->keepalive) sb_str(&c->head, "Connection: close\r\n");
    stats_status(status);
}

void respond_body(conn *c, int status, const char *extra_headers, const char *body, size_t len, long ttfb)
{
    head_begin(c, status, "application/json", len, false);
    if (extra_headers) sb_str(&c->head, extra_headers);
    sb_add(&c->head, "\r\n", 2);
    sb_add(&c->head, body, len);
    c->streaming = false;
    respond_start(c, ttfb);
}

/* The misbehaving upstream's extra head lines (header_cr, encoding=gzip). */
static void head_faults(conn *c, const faults *f)
{
    if (f->header_cr) sb_str(&c->head, "x-ratelimit-remaining-requests: 5\rx-injected: yes\r\n");
    if (f->gzip_label) sb_str(&c->head, "Content-Encoding: gzip\r\n");
}

void respond_reply(conn *c, const char *extra_headers, const char *body, size_t len, const faults *f)
{
    static const char bad[] =
        "{\"choices\":\"notalist\",\"content\":\"notalist\",\"candidates\":\"notalist\"}";
    if (f->bad_shape) {
        body = bad;
        len = sizeof bad - 1;
    }
    if (f->trickle_ms > 0) { /* chunked, one byte per chunk, trickle_ms apart */
        free_events(c);
        c->streaming = true;
        c->chunk_delay_ms = f->trickle_ms;
        c->drop_after = 0;
        head_begin(c, 200, "application/json", 0, true);
        if (extra_headers) sb_str(&c->head, extra_headers);
        head_faults(c, f);
        sb_add(&c->head, "\r\n", 2);
        for (size_t i = 0; i < len; i++)
            stream_event(c, body + i, 1);
        stream_end(c, f, NULL, 0);
        return;
    }
    if (f->header_cr || f->gzip_label) {
        head_begin(c, 200, "application/json", len, false);
        if (extra_headers) sb_str(&c->head, extra_headers);
        head_faults(c, f);
        sb_add(&c->head, "\r\n", 2);
        if (!f->drop_after) {
            sb_add(&c->head, body, len);
            c->streaming = false;
            respond_start(c, f->ttfb_ms);
            return;
        }
        sb_add(&c->head, body, len / 2);
        conn_send(c, c->head.p, c->head.len);
        conn_close(c);
        return;
    }
    if (!f->drop_after) {
        respond_body(c, 200, extra_headers, body, len, f->ttfb_ms);
        return;
    }
    /* Headers and half the body, then the connection goes. */
    head_begin(c, 200, "application/json", len, false);
    if (extra_headers) sb_str(&c->head, extra_headers);
    sb_add(&c->head, "\r\n", 2);
    sb_add(&c->head, body, len / 2);
    conn_send(c, c->head.p, c->head.len);
    conn_close(c);
}

void respond_reset(conn *c)
{
    struct linger lg = {1, 0};
    int fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_close(c);
}

void stream_begin(conn *c, const char *content_type, const char *extra_headers, const faults *f)
{
    free_events(c);
    c->streaming = true;
    c->chunk_delay_ms = f->chunk_delay_ms;
    c->drop_after = f->drop_after;
    head_begin(c, 200, content_type, 0, true);
    if (extra_headers) sb_str(&c->head, extra_headers);
    head_faults(c, f);
    sb_add(&c->head, "\r\n", 2);
}

void stream_event(conn *c, const char *data, size_t len)
{
    if (!len) return;                  /* an empty chunk would end the chunked body */
    if (c->nevents == c->events_cap) { /* doubling: a stream of a million words stays linear */
        c->events_cap = c->events_cap ? 2 * c->events_cap : 64;
        c->events = realloc(c->events, c->events_cap * sizeof *c->events);
        if (!c->events) abort();
    }
    char size_line[24];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    chunk *ev = &c->events[c->nevents++];
    ev->len = (size_t)n + len + 2;
    ev->data = malloc(ev->len + 5); /* room for the terminating chunk */
    if (!ev->data) abort();
    memcpy(ev->data, size_line, (size_t)n);
    memcpy(ev->data + n, data, len);
    memcpy(ev->data + n + len, "\r\n", 2);
}

void stream_end(conn *c, const faults *f, const char *error_event, size_t error_len)
{
    if (error_event && f->stream_error > 0 && (size_t)f->stream_error < c->nevents) {
        for (size_t i = (size_t)f->stream_error; i < c->nevents; i++)
            free(c->events[i].data);
        c->nevents = (size_t)f->stream_error;
        stream_event(c, error_event, error_len);
    }
    if (!c->nevents) stream_event(c, "\n", 1); /* nothing to stream still needs a body */
    /* the terminating chunk leaves with the last event */
    chunk *last = &c->events[c->nevents - 1];
    memcpy(last->data + last->len, "0\r\n\r\n", 5);
    last->len += 5;
    c->stream_open = true;
    stats_stream_started();
    respond_start(c, f->ttfb_ms);
}

void api_error(conn *c, mock_api api, int status, const char *message, int retry_after, long ttfb)
{
    switch (api) {
    case API_ANTHROPIC: anthropic_error(c, status, message, retry_after, ttfb); break;
    case API_GEMINI: gemini_error(c, status, message, retry_after, ttfb); break;
    default: /* chat completions and the Responses API share OpenAI's error shape */
        openai_error(c, status,
                     status == 429  ? "rate_limit_error"
                     : status < 500 ? "invalid_request_error"
                                    : "server_error",
                     message, retry_after, ttfb);
    }
}

/* ---- rate limits -------------------------------------------------------------------------- */

/* A duration as OpenAI writes its x-ratelimit-reset-* headers (Go's time.Duration format, to the
 * millisecond): `850ms` under a second, else `[Hh][Mm]S[.fff]s` — `1s`, `1.5s`, `6m0s`, `1h0m0s`. */
static void openai_duration(char *out, size_t size, long ms)
{
    if (ms < 1000) {
        snprintf(out, size, ms > 0 ? "%ldms" : "0s", ms);
        return;
    }
    long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    int n = 0;
    if (h) n += snprintf(out + n, size - (size_t)n, "%ldh", h);
    if (h || m) n += snprintf(out + n, size - (size_t)n, "%ldm", m);
    if (!frac) {
        snprintf(out + n, size - (size_t)n, "%lds", s);
        return;
    }
    n += snprintf(out + n, size - (size_t)n, "%ld.%03ld", s, frac);
    while (out[n - 1] == '0') /* 1.500 → 1.5 */
        out[--n] = '\0';
    snprintf(out + n, size - (size_t)n, "s");
}

/* Counts the request against its scope's rl_requests budget and sets the headers every
 * response to it carries. Answers 429 and returns false when the budget is used up. */
static bool rate_limit_admit(conn *c, mock_api api, const faults *f)
{
    long limit = f->rl_requests, remaining, reset_ms;
    bool admitted = stats_rate_limit(f->scope, limit, f->rl_window_ms, &remaining, &reset_ms);
    if (api == API_OPENAI || api == API_RESPONSES) {
        char reset[32];
        openai_duration(reset, sizeof reset, reset_ms);
        snprintf(c->rl_headers, sizeof c->rl_headers,
                 "x-ratelimit-limit-requests: %ld\r\nx-ratelimit-remaining-requests: %ld\r\n"
                 "x-ratelimit-reset-requests: %s\r\n",
                 limit, remaining, reset);
    } else if (api == API_ANTHROPIC) {
        /* the window's end, rounded up to the second: waiting until then is always enough */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        long long end_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + reset_ms;
        time_t end = (time_t)((end_ms + 999) / 1000);
        struct tm tm;
        char reset[32];
        gmtime_r(&end, &tm);
        strftime(reset, sizeof reset, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(c->rl_headers, sizeof c->rl_headers,
                 "anthropic-ratelimit-requests-limit: %ld\r\nanthropic-ratelimit-requests-remaining: "
                 "%ld\r\nanthropic-ratelimit-requests-reset: %s\r\n",
                 limit, remaining, reset);
    } /* Gemini: Google sends no rate-limit headers */
    if (admitted) return true;
    c->rl_retry_ms = reset_ms;
    char msg[320];
    snprintf(msg, sizeof msg, "aigw-mock: rate limit of %ld requests per %ld ms reached (scope %s)", limit,
             f->rl_window_ms, f->scope);
    api_error(c, api, 429, msg, (int)((reset_ms + 999) / 1000), f->ttfb_ms);
    return false;
}

/* ---- routing ------------------------------------------------------------------------------ */

/* /v1beta/models/{model}:{method} or /v1/models/{model}:{method} → the method's path, and the
 * model copied into `model`. */
static mock_path gemini_route(const char *url, size_t plen, char *model, size_t model_size)
{
    static const char beta[] = "/v1beta/models/", stable[] = "/v1/models/";
    size_t skip = plen > sizeof beta - 1 && !strncmp(url, beta, sizeof beta - 1)         ? sizeof beta - 1
                  : plen > sizeof stable - 1 && !strncmp(url, stable, sizeof stable - 1) ? sizeof stable - 1
                                                                                         : 0;
    if (!skip) return P_OTHER;
    bool v1 = skip == sizeof stable - 1;
    const char *m = url + skip, *end = url + plen;
    const char *colon = memchr(m, ':', (size_t)(end - m));
    if (!colon || colon == m || (size_t)(colon - m) >= model_size || memchr(m, '/', (size_t)(colon - m)))
        return P_OTHER;
    memcpy(model, m, (size_t)(colon - m));
    model[colon - m] = '\0';
    size_t mlen = (size_t)(end - colon - 1);
#define METHOD(s) (mlen == sizeof(s) - 1 && !strncmp(colon + 1, s, mlen))
    if (METHOD("generateContent")) return v1 ? P_GEMINI_V1_GENERATE : P_GEMINI_GENERATE;
    if (METHOD("streamGenerateContent")) return v1 ? P_GEMINI_V1_STREAM : P_GEMINI_STREAM;
    if (METHOD("countTokens")) return v1 ? P_GEMINI_V1_COUNT : P_GEMINI_COUNT;
    return P_OTHER;
#undef METHOD
}

bool query_has(const char *query, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = value ? strlen(value) : 0;
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            if (!value ? v < end : ((size_t)(end - v) == vlen && !strncmp(v, value, vlen))) return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* The request's inline images, as response headers: how many, and each one's SHA-256 (at most
 * 16, so the head stays small). `images` is inspect_images' JSON array. */
static void image_header(conn *c, const char *images)
{
    int n = 0;
    sbuf digests = {0};
    for (const char *p = images; (p = strstr(p, "\"sha256\":\"")); p += 10) {
        if (n++ < 16) {
            if (digests.len) sb_str(&digests, ",");
            sb_add(&digests, p + 10, 64);
        }
    }
    if (n) {
        sb_fmt(&c->extra_head, "x-mock-images: %d\r\nx-mock-image-sha256: %s\r\n", n, digests.p);
    }
    free(digests.p);
}

static void respond_internal(conn *c, const char *body)
{
    /* /__stats and /__reset: answered, but counted nowhere */
    size_t len = strlen(body);
    head_begin(c, 200, "application/json", len, false);
    stats_uncount_status(200);
    sb_add(&c->head, "\r\n", 2);
    sb_add(&c->head, body, len);
    c->streaming = false;
    respond_start(c, 0);
}

static void handle_request(conn *c)
{
    const char *url = c->url.p ? c->url.p : "/";
    size_t plen = strcspn(url, "?#");
    const char *query = url[plen] == '?' ? url + plen + 1 : "";
    int method = c->parser.method;
    c->busy = true;
    snprintf(c->req_id, sizeof c->req_id, "mock-%d-%" PRIu64, c->w->id, ++c->w->counter);
#define PATH(p) (plen == sizeof(p) - 1 && !strncmp(url, p, plen))
    if (PATH("/__stats") && method == HTTP_GET) {
        sbuf b = {0};
        stats_json(&b);
        stats_in_flight(1); /* after the snapshot: /__stats does not count itself */
        respond_internal(c, b.p);
        free(b.p);
        return;
    }
    stats_in_flight(1);
    if (PATH("/__requests") && method == HTTP_GET) {
        sbuf b = {0};
        record_json(&b);
        respond_internal(c, b.p);
        free(b.p);
        return;
    }
    if (PATH("/__reset") && method == HTTP_POST) {
        stats_reset();
        record_reset();
        respond_internal(c, "{\"ok\":true}");
        return;
    }
    char gemini_model[256] = "";
    mock_path path = PATH("/v1/chat/completions")        ? P_CHAT
                     : PATH("/v1/responses")             ? P_RESPONSES
                     : PATH("/v1/completions")           ? P_COMPLETIONS
                     : PATH("/v1/embeddings")            ? P_EMBEDDINGS
                     : PATH("/v1/models")                ? P_MODELS
                     : PATH("/v1/messages")              ? P_MESSAGES
                     : PATH("/v1/messages/count_tokens") ? P_COUNT_TOKENS
                     : PATH("/v2/modelRouter/modelSelect")
                         ? P_MODEL_SELECT
                         : gemini_route(url, plen, gemini_model, sizeof gemini_model);
    bool gemini_stream = path == P_GEMINI_STREAM || path == P_GEMINI_V1_STREAM;
    bool gemini_count = path == P_GEMINI_COUNT || path == P_GEMINI_V1_COUNT;
    mock_api api = path == P_RESPONSES                            ? API_RESPONSES
                   : path == P_MESSAGES || path == P_COUNT_TOKENS ? API_ANTHROPIC
                   : path == P_GEMINI_GENERATE || path == P_GEMINI_V1_GENERATE || gemini_stream ||
                           gemini_count || (plen >= 8 && !strncmp(url, "/v1beta/", 8))
                       ? API_GEMINI
                       : API_OPENAI;
#undef PATH
    json_error_t jerr;
    json_t *req = json_loadb(c->body.p ? c->body.p : "", c->body.len, 0, &jerr);
    /* What arrived is recorded before any check, so a refused request is seen too. */
    bool has_messages = path == P_CHAT || path == P_RESPONSES || path == P_MESSAGES ||
                        path == P_COUNT_TOKENS || (api == API_GEMINI && path != P_OTHER);
    char strict_msg[512] = "";
    sbuf images = {0};
    if (req && json_is_object(req) && has_messages &&
        inspect_images(api, req, &images, strict_msg, sizeof strict_msg))
        image_header(c, images.p);
    record_request(c, http_method_str((enum http_method)method), strict_msg[0] ? NULL : images.p);
    free(images.p);
    if (!strict_msg[0] && req && json_is_object(req) && has_messages)
        inspect_tool_results(api, req, strict_msg, sizeof strict_msg);
    if (path == P_OTHER) {
        stats_request(path, NULL);
        if (api == API_GEMINI)
            gemini_error(c, 404, "aigw-mock: unknown path", 0, 0);
        else
            openai_error(c, 404, "invalid_request_error", "aigw-mock: unknown path", 0, 0);
        json_decref(req);
        return;
    }
    if (path == P_MODEL_SELECT) {
        stats_request(path, NULL);
        faults f = c->hdr_faults;
        faults_merge_body(&f, c->body.p ? c->body.p : "", c->body.len);
        if (method != HTTP_POST)
            openai_error(c, 405, "invalid_request_error", "aigw-mock: use POST", 0, 0);
        else
            mock_model_select(c, req, &f);
        json_decref(req);
        return;
    }
    if (path == P_MODELS) {
        stats_request(path, NULL);
        if (method != HTTP_GET)
            openai_error(c, 405, "invalid_request_error", "aigw-mock: use GET", 0, 0);
        else
            openai_models(c);
        json_decref(req);
        return;
    }
    if (method != HTTP_POST) {
        stats_request(path, api == API_GEMINI ? gemini_model : NULL);
        api_error(c, api, 405, "aigw-mock: use POST", 0, 0);
        json_decref(req);
        return;
    }
    const char *model = api == API_GEMINI ? gemini_model
                        : req             ? json_string_value(json_object_get(req, "model"))
                                          : NULL;
    stats_request(path, model);
    faults f = c->hdr_faults; /* headers first, so body directives can't override them */
    faults_merge_body(&f, c->body.p ? c->body.p : "", c->body.len);
    bool stream = gemini_stream || (req && json_is_true(json_object_get(req, "stream")));

    if (api == API_ANTHROPIC && !anthropic_admit(c)) {
        /* answered: no key, or no anthropic-version */
    } else if (api == API_GEMINI && !gemini_admit(c, query)) {
        /* answered: no API key */
    } else if (!req || !json_is_object(req)) {
        char msg[256];
        snprintf(msg, sizeof msg, "aigw-mock: invalid JSON body: %s", req ? "not an object" : jerr.text);
        api_error(c, api, 400, msg, 0, 0);
    } else if (!model) {
        api_error(c, api, 400, "aigw-mock: you must provide a model parameter", 0, 0);
    } else if (api == API_ANTHROPIC && !anthropic_validate(c, req, path == P_COUNT_TOKENS)) {
        /* answered */
    } else if (api == API_GEMINI && !gemini_validate(c, req, gemini_count)) {
        /* answered */
    } else if (api == API_RESPONSES && !responses_validate(c, req)) {
        /* answered: a previous_response_id */
    } else if (strict_msg[0]) {
        /* a tool result answering no call, or an image that is not valid base64 */
        if (api == API_RESPONSES) /* OpenAI names the offending field */
            openai_error_param(c, 400, "invalid_request_error", strict_msg, "input", NULL, 0, 0);
        else
            api_error(c, api, 400, strict_msg, 0, 0);
    } else if (f.rl_requests && !rate_limit_admit(c, api, &f)) {
        /* answered: 429, over the scope's budget (before every other fault) */
    } else if (f.reset) {
        respond_reset(c);
    } else if (f.hang) {
        /* never answer; the client's close ends it */
        if (stream) {
            c->stream_open = true;
            stats_stream_started();
        }
    } else if (f.status && (!f.fail_first || stats_scope_hit(f.scope) < (uint64_t)f.fail_first)) {
        char msg[96];
        snprintf(msg, sizeof msg, "aigw-mock injected status %d", f.status);
        api_error(c, api, f.status, msg, f.retry_after, f.ttfb_ms);
    } else if (!f.status && f.fail_first && stats_scope_hit(f.scope) < (uint64_t)f.fail_first) {
        api_error(c, api, 500, "aigw-mock injected status 500 (fail_first)", f.retry_after, f.ttfb_ms);
    } else {
        switch (path) {
        case P_CHAT: openai_chat(c, req, model, &f); break;
        case P_RESPONSES: responses_create(c, req, model, &f); break;
        case P_COMPLETIONS: openai_completion(c, req, model, &f); break;
        case P_EMBEDDINGS: openai_embeddings(c, req, model, &f); break;
        case P_MESSAGES: anthropic_messages(c, req, model, &f); break;
        case P_COUNT_TOKENS: anthropic_count_tokens(c, req, &f); break;
        case P_GEMINI_COUNT:
        case P_GEMINI_V1_COUNT: gemini_count_tokens(c, req, &f); break;
        default: gemini_generate(c, req, model, stream, query_has(query, "alt", "sse"), &f);
        }
    }
    json_decref(req);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    c->url.len = c->hfield.len = c->hvalue.len = c->body.len = 0;
    c->in_value = false;
    memset(&c->hdr_faults, 0, sizeof c->hdr_faults);
    c->hdr_api_key = c->hdr_authorization = c->hdr_anthropic_version = c->hdr_goog_api_key = false;
    c->rl_headers[0] = '\0';
    c->rl_retry_ms = 0;
    c->rec_headers.len = c->extra_head.len = 0;
    c->rec_headers_truncated = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->url.len + len > MAX_HEAD) return -1;
    sb_add(&c->url, at, len);
    return 0;
}

static void header_done(conn *c)
{
    if (!c->hfield.len) return;
    const char *name = c->hfield.p;
    size_t nlen = c->hfield.len;
    record_header(c, name, nlen, c->hvalue.p ? c->hvalue.p : "", c->hvalue.len);
#define NAME(s) (nlen == sizeof(s) - 1 && !strncasecmp(name, s, nlen))
    if (nlen > 7 && !strncasecmp(name, "x-mock-", 7)) {
        /* x-mock-ttfb-ms → ttfb_ms */
        char key[64];
        size_t k = 0;
        for (size_t i = 7; i < nlen && k + 1 < sizeof key; i++)
            key[k++] = name[i] == '-' ? '_' : name[i];
        key[k] = '\0';
        faults_set(&c->hdr_faults, key, k, c->hvalue.p ? c->hvalue.p : "", c->hvalue.len);
    } else if (NAME("expect") && c->hvalue.len == 12 && !strncasecmp(c->hvalue.p, "100-continue", 12)) {
        conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    } else if (c->hvalue.len) {
        if (NAME("x-api-key")) c->hdr_api_key = true;
        if (NAME("authorization")) c->hdr_authorization = true;
        if (NAME("anthropic-version")) c->hdr_anthropic_version = true;
        if (NAME("x-goog-api-key")) c->hdr_goog_api_key = true;
    }
#undef NAME
    c->hfield.len = c->hvalue.len = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->in_value) {
        header_done(c);
        c->in_value = false;
    }
    if (c->hfield.len + len > MAX_HEAD) return -1;
    sb_add(&c->hfield, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    c->in_value = true;
    if (c->hvalue.len + len > MAX_HEAD) return -1;
    sb_add(&c->hvalue, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    header_done(c);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > MAX_BODY) return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->body.len + len > MAX_BODY) return -1;
    sb_add(&c->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->message_done = true;
    c->keepalive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_feed(conn *c, const char *data, size_t len)
{
    if (c->busy || c->pending.len) { /* answer in order: keep for later */
        sb_add(&c->pending, data, len);
        return;
    }
    size_t used = http_parser_execute(&c->parser, &settings, data, len);
    if (c->message_done) {
        c->message_done = false;
        http_parser_pause(&c->parser, 0);
        if (used < len) sb_add(&c->pending, data + used, len - used);
        if (c->url.p == NULL) sb_reserve(&c->url, 0);
        handle_request(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        c->keepalive = false;
        c->busy = true;
        c->rl_headers[0] = '\0';
        c->rl_retry_ms = 0;
        stats_in_flight(1);
        openai_error(c, 400, "invalid_request_error", "aigw-mock: malformed or too large request", 0, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    static __thread char buffer[65536];
    (void)suggested;
    *b = uv_buf_init(buffer, sizeof buffer);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n > 0 && !c->closing) conn_feed(c, b->base, (size_t)n);
}

static void on_connection(uv_stream_t *server, int status)
{
    worker *w = server->data;
    if (status < 0) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next_conn = w->conns;
    if (w->conns) w->conns->prev_conn = c;
    w->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- workers and main --------------------------------------------------------------------- */

static void on_stop(uv_async_t *a)
{
    worker *w = a->data;
    while (w->conns)
        conn_close(w->conns);
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void worker_run(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

static int open_socket(const char *host, int *port)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, *port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, *port, (struct sockaddr_in6 *)&ss) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        close(fd);
        return -1;
    }
    if (*port == 0) {
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static uv_signal_t sigterm, sigint;
static worker *workers;
static int nworkers = 1;

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)s;
    for (int i = 0; i < nworkers; i++)
        uv_async_send(&workers[i].stop);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

int main(int argc, char **argv)
{
    char host[256] = "127.0.0.1";
    int port = 9090;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            const char *v = argv[++i], *colon = strrchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof host) {
                fprintf(stderr, "aigw-mock: --listen HOST:PORT\n");
                return 2;
            }
            memcpy(host, v, (size_t)(colon - v));
            host[colon - v] = '\0';
            port = (int)strtol(colon + 1, NULL, 10);
        } else if (!strcmp(argv[i], "--record") && i + 1 < argc) {
            record_configure((int)strtol(argv[++i], NULL, 10));
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            nworkers = (int)strtol(argv[++i], NULL, 10);
            if (nworkers < 1 || nworkers > 64) nworkers = 1;
        } else {
            fprintf(stderr, "usage: aigw-mock [--listen HOST:PORT] [--workers N] [--record N]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers) abort();
    for (int i = 0; i < nworkers; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->fd = open_socket(host, &port);
        if (w->fd < 0) {
            fprintf(stderr, "aigw-mock: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
            return 1;
        }
        uv_loop_init(&w->loop);
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        uv_tcp_open(&w->listener, w->fd);
        uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
        uv_async_init(&w->loop, &w->stop, on_stop);
        w->stop.data = w;
    }
    for (int i = 0; i < nworkers; i++)
        uv_thread_create(&workers[i].thread, worker_run, &workers[i]);
    printf("aigw-mock listening on %s:%d\n", host, port);
    fflush(stdout);
    uv_loop_t *main_loop = uv_default_loop();
    uv_signal_init(main_loop, &sigterm);
    uv_signal_init(main_loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(main_loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nworkers; i++)
        uv_thread_join(&workers[i].thread);
    uv_loop_close(main_loop);
    free(workers);
    stats_reset(); /* frees the names it holds */
    record_reset();
    return 0;
}
