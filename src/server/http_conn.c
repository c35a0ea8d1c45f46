/* http_conn.c — one HTTP/1.1 client connection; see http_conn.h for the contract.
 *
 * Life of a connection:  IDLE (keep-alive timer) → READING (header timer; http-parser
 * callbacks copy the URL and headers into a bounded buffer, the body into req.body) →
 * HANDLING (the pipeline owns the request; we keep reading only to notice a disconnect and to
 * buffer pipelined bytes) → the response is finished → IDLE again, or closed.
 *
 * Reads land in the worker's one shared read buffer and are parsed in place; only bytes that
 * arrive while a request is being handled are copied (into `pending`), to be parsed once the
 * response is out. That is how pipelined requests are answered in order.
 *
 * Writes try uv_try_write first (no copy, no allocation when the socket has room — the usual
 * case) and copy only what the kernel did not take into one write request. Connections are
 * never freed inside a callback chain that may still use them: failures mark the connection
 * and put it on the worker's ready list, which closes it on the next loop turn.
 *
 * The state machine is this file; two parts with no state of their own live beside it: the
 * body's framing (http_body.c, Content-Length and chunked) and the bytes of a response
 * (http_response.c, status line, headers, chunks). The connection object they share is in
 * http_conn_internal.h. */
#include "server/http_conn.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "server/http_conn_internal.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/timeutil.h"

typedef struct write_req {
    uv_write_t req;
    client_conn *conn;
    size_t len;
    char data[];
} write_req;

/* Bytes buffered from a client while its request is handled; at this we stop reading. The
 * buffer holds one more read beyond it, so a read is never dropped (that would desync the
 * framing of the next request). */
#define PENDING_MAX (1024 * 1024)

static http_parser_settings parser_settings;
static void assign_request_id(client_conn *c);
static void conn_close(client_conn *c);
static void conn_feed(client_conn *c, const char *data, size_t len);
static void start_reading(client_conn *c);
static void stop_reading(client_conn *c);
static void conn_next_request(client_conn *c);
static void on_timer(uv_timer_t *timer);

/* Bytes read and not yet parsed. */
static size_t pending_bytes(const client_conn *c)
{
    return c->pending.len - c->pending_off;
}

/* The request's config: taken when its first byte is parsed (or when an answer is made
 * for it without one), dropped once it is logged or its connection is gone. */
static void request_hold_config(client_conn *c)
{
    if (!c->req.config) c->req.config = worker_config_acquire(c->w);
}

static void request_drop_config(client_conn *c)
{
    worker_config_release(c->w, c->req.config);
    c->req.config = NULL;
}

/* ---- closing and the ready list --------------------------------------------------------- */

static void on_ready_idle(uv_idle_t *idle)
{
    worker *w = idle->data;
    http_conn_run_ready(w);
    if (!w->ready) uv_idle_stop(idle);
}

static void mark_ready(client_conn *c)
{
    if (c->in_ready || c->closing) return;
    c->in_ready = true;
    c->next_ready = c->w->ready;
    c->w->ready = c;
    uv_idle_start(&c->w->ready_idle, on_ready_idle);
}

static void close_soon(client_conn *c)
{
    c->close_soon = true;
    mark_ready(c);
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    client_conn *c = handle->data;
    if (--c->open_handles > 0) return;
    worker *w = c->w;
    w->app->request_free(&c->req);
    request_drop_config(c);
    arena_free(&c->req.arena);
    buf_free(&c->req.body);
    buf_free(&c->pending);
    buf_free(&c->head);
    free(c);
    worker_connection_closed(w);
}

/* Takes c off the ready list: a closed connection is freed by its close callbacks, which may
 * run before the ready list does. */
static void unmark_ready(client_conn *c)
{
    if (!c->in_ready) return;
    for (client_conn **p = &c->w->ready; *p; p = &(*p)->next_ready)
        if (*p == c) {
            *p = c->next_ready;
            break;
        }
    c->in_ready = false;
}

static void conn_close(client_conn *c)
{
    if (c->closing) return;
    if (c->state == CONN_HANDLING) {
        c->w->app->on_abort(&c->req);
        c->w->app->on_done(&c->req);
    }
    c->closing = true;
    worker *w = c->w;
    unmark_ready(c);
    if (c->holds_slot) worker_connection_slot_release(w);
    c->holds_slot = false;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void on_write_done(uv_write_t *req, int status)
{
    write_req *wr = (write_req *)req;
    client_conn *c = wr->conn;
    c->write_pending -= wr->len;
    free(wr);
    if (c->closing) return;
    if (status < 0) {
        close_soon(c);
        return;
    }
    if (c->want_writable && c->write_pending < HTTP_OUTPUT_LOW_WATER) {
        c->want_writable = false;
        c->w->app->on_writable(&c->req);
    }
    if (c->close_after_write && c->write_pending == 0) close_soon(c);
    if (c->state == CONN_IDLE && !c->close_soon) /* the client reads: its idle time starts again */
        uv_timer_start(&c->timer, on_timer, c->w->config->keepalive_idle_timeout_ms, 0);
    if (c->send_stalled) {
        if (c->write_pending < HTTP_OUTPUT_LOW_WATER) {
            c->send_stalled = false;
            uv_timer_stop(&c->timer);
        } else {
            uv_timer_again(&c->timer); /* progress: the client has the idle timeout again */
        }
    }
    if (c->output_blocked && c->write_pending < HTTP_OUTPUT_LOW_WATER) {
        c->output_blocked = false;
        conn_next_request(c);
    }
}

void http_conn__write(client_conn *c, uv_buf_t *bufs, unsigned nbufs)
{
    if (c->closing || c->close_soon) return;
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (c->write_pending == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN) {
            close_soon(c);
            return;
        }
    }
    if (done == total) return;
    write_req *wr = xmalloc(sizeof *wr + (total - done));
    wr->conn = c;
    wr->len = total - done;
    size_t skip = done, off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(wr->data + off, bufs[i].base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    c->write_pending += wr->len;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done) != 0) {
        c->write_pending -= wr->len;
        free(wr);
        close_soon(c);
    }
}

/* A stream whose client stopped reading: the upstream is paused, and the connection would hold
 * its slot and buffers for as long as the client likes. */
static void on_send_stall(uv_timer_t *timer)
{
    client_conn *c = timer->data;
    c->send_stalled = false;
    if (c->state == CONN_HANDLING && c->write_pending) conn_close(c);
}

void http_conn__watch_stall(client_conn *c)
{
    if (c->send_stalled) return;
    uint64_t ms = c->w->config->keepalive_idle_timeout_ms;
    c->send_stalled = true;
    c->request_timer_cb = NULL;
    uv_timer_start(&c->timer, on_send_stall, ms, ms);
}

/* ---- request lifecycle -------------------------------------------------------------------- */

static void request_reset(client_conn *c)
{
    http_request *req = &c->req;
    c->w->app->request_reset(req);
    request_drop_config(c);
    arena_reset(&req->arena);
    buf_reset(&req->body);
    buf_reset(&c->head);
    req->path = NULL;
    req->path_len = 0;
    req->query = NULL;
    req->headers = NULL;
    req->nheaders = 0;
    req->id[0] = '\0';
    req->bytes_in = req->bytes_out = 0;
    req->status = 0;
    req->response_started = req->chunked = false;
    req->first_byte_ns = 0;
    req->head_extra = NULL;
    req->head_extra_len = 0;
    c->url_len = 0;
    c->nheaders = 0;
    c->last_was_value = false;
    c->headers_done = false;
    c->head_complete = false;
    c->body.mode = BODY_NONE;
    c->want_writable = false;
}

void http_conn__request_finished(client_conn *c)
{
    c->w->app->on_done(&c->req);
    request_reset(c);
    if (c->request_timer_cb || c->send_stalled) {
        c->request_timer_cb = NULL;
        c->send_stalled = false;
        uv_timer_stop(&c->timer);
    }
    c->state = CONN_IDLE;
    c->served++;
    if (!c->keepalive || c->error_status || c->w->draining) {
        c->close_after_write = true;
        if (c->write_pending == 0)
            close_soon(c);
        else /* a client that never reads its last answer does not hold the connection for ever */
            uv_timer_start(&c->timer, on_timer, c->w->config->keepalive_idle_timeout_ms, 0);
        return;
    }
    c->idle_since = time_now_ns();
    uv_timer_start(&c->timer, on_timer, c->w->config->keepalive_idle_timeout_ms, 0);
    if (c->write_pending >= HTTP_OUTPUT_HIGH_WATER) {
        /* A client that sends requests and does not read the answers: no next request (and no
         * more reading) until its queue drains, or the idle timer closes it. */
        c->output_blocked = true;
        stop_reading(c);
        return;
    }
    conn_next_request(c);
}

/* The previous response is out (or queued below the mark): parse what is pending on the next
 * loop turn, or read. */
static void conn_next_request(client_conn *c)
{
    if (c->closing || c->state != CONN_IDLE) return;
    if (pending_bytes(c))
        mark_ready(c);
    else
        start_reading(c);
}

static void respond_parse_error(client_conn *c, int status, const char *message)
{
    c->error_status = status;
    c->keepalive = false;
    http_request *req = &c->req;
    if (!req->id[0]) assign_request_id(c);
    if (!req->start_ns) req->start_ns = time_now_ns();
    if (!req->path) req->method = -1; /* the request line was not (fully) read */
    request_hold_config(c);
    c->state = CONN_HANDLING;
    c->w->app->on_error(req, status, NULL, message);
}

static void on_request_timer(uv_timer_t *timer)
{
    client_conn *c = timer->data;
    void (*cb)(http_request *) = c->request_timer_cb;
    c->request_timer_cb = NULL;
    if (c->state == CONN_HANDLING && cb) cb(&c->req);
}

void http_request_timer(http_request *req, uint32_t ms, void (*cb)(http_request *req))
{
    client_conn *c = conn_of(req);
    c->request_timer_cb = cb;
    uv_timer_start(&c->timer, on_request_timer, ms, 0);
}

void http_request_timer_stop(http_request *req)
{
    client_conn *c = conn_of(req);
    if (!c->request_timer_cb) return; /* fired, never started, or the send-stall watch's now */
    c->request_timer_cb = NULL;
    uv_timer_stop(&c->timer);
}

static void on_timer(uv_timer_t *timer)
{
    client_conn *c = timer->data;
    if (c->state == CONN_READING && !c->req.response_started) {
        if (!c->headers_done)
            respond_parse_error(c, 408, "request headers not received in time (timeouts.header_read)");
        else if (time_now_ns() + 1000000 >= c->body_deadline)
            respond_parse_error(c, 408, "request body not received in time (timeouts.request_body)");
        else
            respond_parse_error(c, 408, "request body stalled (no bytes for timeouts.header_read)");
        return;
    }
    if (c->state == CONN_IDLE) conn_close(c);
}

/* ---- parser callbacks ------------------------------------------------------------------- */

static bool head_append(client_conn *c, const char *at, size_t len)
{
    if (buf_append(&c->head, at, len) == BUF_OK) return true;
    c->error_status = 431;
    c->error_message = "request headers too large";
    return false;
}

static int on_message_begin(http_parser *p)
{
    client_conn *c = p->data;
    c->state = CONN_READING;
    c->req.start_ns = time_now_ns();
    request_hold_config(c);
    c->head.max = c->req.config->max_header_bytes; /* empty here: a reload's limit applies */
    uv_timer_start(&c->timer, on_timer, c->req.config->header_read_timeout_ms, 0);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    client_conn *c = p->data;
    if (!head_append(c, at, len)) return -1;
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    client_conn *c = p->data;
    if (c->last_was_value || c->nheaders == 0) {
        if (c->nheaders == REQUEST_MAX_HEADERS) {
            c->error_status = 431;
            c->error_message = "too many request headers";
            return -1;
        }
        header_offsets *h = &c->hoff[c->nheaders++];
        h->name_off = (uint32_t)c->head.len;
        h->name_len = h->value_len = 0;
        h->value_off = (uint32_t)c->head.len;
        c->last_was_value = false;
    }
    if (!head_append(c, at, len)) return -1;
    c->hoff[c->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    client_conn *c = p->data;
    header_offsets *h = &c->hoff[c->nheaders - 1];
    if (!c->last_was_value) {
        h->value_off = (uint32_t)c->head.len;
        h->value_len = 0;
        c->last_was_value = true;
    }
    if (!head_append(c, at, len)) return -1;
    h->value_len += (uint32_t)len;
    return 0;
}

static bool valid_request_id(const char *s, size_t len)
{
    if (len == 0 || len > REQUEST_ID_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)s[i])) return false;
    return true;
}

/* A fresh id: a per-process random part and a per-worker counter (no shared state). */
static void assign_request_id(client_conn *c)
{
    snprintf(c->req.id, sizeof c->req.id, "req_%012" PRIx64 "%02x%010" PRIx64, c->w->server_nonce,
             (unsigned)c->w->id & 0xff, ++c->w->request_counter);
}

/* The path of a request target: origin-form "/v1/x?q" or absolute-form
 * "http://host:port/v1/x?q" (which a proxy may send, RFC 9112 §3.2.2), without query or
 * fragment. Sets *len; returns a pointer into target. */
static const char *target_path(const char *target, size_t target_len, size_t *len)
{
    size_t at = 0;
    if ((target_len >= 7 && !strncasecmp(target, "http://", 7)) ||
        (target_len >= 8 && !strncasecmp(target, "https://", 8))) {
        at = target[4] == ':' ? 7 : 8;
        while (at < target_len && target[at] != '/' && target[at] != '?' && target[at] != '#')
            at++;
    }
    size_t end = at;
    while (end < target_len && target[end] != '?' && target[end] != '#')
        end++;
    *len = end - at;
    return target + at;
}

static int on_headers_complete(http_parser *p)
{
    client_conn *c = p->data;
    http_request *req = &c->req;
    const char *base = c->head.data ? c->head.data : "";
    http_header *headers = c->nheaders ? arena_alloc(&req->arena, c->nheaders * sizeof *headers) : NULL;
    for (size_t i = 0; i < c->nheaders; i++) {
        http_header *h = &headers[i];
        h->name = base + c->hoff[i].name_off;
        h->name_len = c->hoff[i].name_len;
        h->value = base + c->hoff[i].value_off;
        h->value_len = c->hoff[i].value_len;
    }
    req->headers = headers;
    req->nheaders = c->nheaders;
    req->method = p->method;
    size_t plen;
    const char *path = target_path(base, c->url_len, &plen);
    const char *q = path + plen; /* '?' when a query follows */
    if (plen == 0) {             /* "http://host" names the root */
        path = "/";
        plen = 1;
    }
    req->path = arena_strndup(&req->arena, path, plen);
    req->path_len = plen;
    /* the query: what follows '?' up to a fragment (the admin API reads ?key=) */
    const char *target_end = base + c->url_len;
    const char *qend = q < target_end && *q == '?' ? memchr(q, '#', (size_t)(target_end - q)) : NULL;
    if (q < target_end && *q == '?')
        req->query = arena_strndup(&req->arena, q + 1, (size_t)((qend ? qend : target_end) - q - 1));
    else
        req->query = "";
    req->bytes_in = c->head.len;

    const http_header *rid = http_find_header(req, "x-request-id");
    if (rid && valid_request_id(rid->value, rid->value_len)) {
        memcpy(req->id, rid->value, rid->value_len);
        req->id[rid->value_len] = '\0';
    } else {
        assign_request_id(c);
    }

    const aigw_config *cfg = c->req.config;
    if (p->http_major != 1 || p->http_minor > 1) {
        c->error_status = 505;
        c->error_message = "HTTP version not supported (this listener speaks HTTP/1.0 and HTTP/1.1)";
        return -1;
    }
    c->http10 = p->http_minor == 0;
    if (p->uses_transfer_encoding && !(p->flags & F_CHUNKED)) { /* RFC 9112 §6.3: no framing */
        c->error_status = 400;
        c->error_message = "Transfer-Encoding without chunked as the final coding";
        return -1;
    }
    if (p->flags & F_CHUNKED) {
        c->body.mode = BODY_CHUNKED;
        c->body.chunk = CHUNK_SIZE;
        c->body.chunk_line = 0;
        c->body.left = 0;
    } else if (p->content_length != ULLONG_MAX && p->content_length > 0) {
        if (p->content_length > cfg->max_body_bytes) {
            c->error_status = 413;
            c->error_message = "request body too large";
            return -1;
        }
        c->body.mode = BODY_LENGTH;
        c->body.left = p->content_length;
    } else {
        c->body.mode = BODY_NONE;
    }
    req->body.max = cfg->max_body_bytes;
    c->headers_done = true;
    const http_header *expect = http_find_header(req, "expect");
    if (expect) {
        if (expect->value_len == 12 && !strncasecmp(expect->value, "100-continue", 12)) {
            uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
            http_conn__write(c, &b, 1);
        } else {
            c->error_status = 417;
            c->error_message = "unsupported Expect header";
            return -1;
        }
    }
    /* The body has a total deadline, and between reads the header timeout, restarted on
     * progress: a byte every few seconds cannot hold the connection forever. */
    c->body_deadline = time_now_ns() + (uint64_t)cfg->request_body_timeout_ms * 1000000;
    uint32_t wait = cfg->header_read_timeout_ms;
    uv_timer_start(&c->timer, on_timer,
                   cfg->request_body_timeout_ms < wait ? cfg->request_body_timeout_ms : wait, 0);
    return 1; /* "no body" to http-parser: http_body_feed reads it */
}

static int on_message_complete(http_parser *p)
{
    client_conn *c = p->data;
    c->head_complete = true;
    c->keepalive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ---- reading ---------------------------------------------------------------------------- */

static void respond_feed_error(client_conn *c, enum http_errno err)
{
    if (c->error_status)
        respond_parse_error(c, c->error_status, c->error_message);
    else if (err == HPE_HEADER_OVERFLOW)
        respond_parse_error(c, 431, "request headers too large");
    else {
        char msg[128];
        snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(err));
        respond_parse_error(c, 400, msg);
    }
}

/* A whole request is in: what follows it waits in `pending`, and the pipeline runs. */
static void request_complete(client_conn *c, const char *rest, size_t rest_len)
{
    if (c->feeding_pending) /* rest is the tail of pending: parse from there next time */
        c->pending_off = c->pending.len - rest_len;
    else if (rest_len && buf_append(&c->pending, rest, rest_len) != BUF_OK) { /* cannot be: it was empty */
        respond_parse_error(c, 400, "too much pipelined data");
        return;
    }
    c->body.mode = BODY_NONE;
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    c->w->app->on_request(&c->req);
}

/* Parses data: the head with http-parser, then the body with http_body_feed. On a complete request
 * saves the rest in `pending` and runs the pipeline. */
static void conn_feed(client_conn *c, const char *data, size_t len)
{
    if (c->body.mode == BODY_NONE || !c->headers_done) {
        size_t used = http_parser_execute(&c->parser, &parser_settings, data, len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (!c->head_complete) {
            if (err != HPE_OK) respond_feed_error(c, err);
            return;
        }
        c->head_complete = false;
        http_parser_pause(&c->parser, 0);
        data += used;
        len -= used;
        if (c->body.mode == BODY_NONE) {
            request_complete(c, data, len);
            return;
        }
    }
    size_t used = 0, before = c->req.body.len;
    body_result r = http_body_feed(&c->body, &c->req.body, c->w->config->max_header_bytes, data, len, &used);
    c->req.bytes_in += c->req.body.len - before;
    if (r == BODY_ERROR) {
        c->error_status = c->body.error_status;
        c->error_message = c->body.error_message;
        respond_parse_error(c, c->error_status, c->error_message);
        return;
    }
    if (r == BODY_DONE) {
        request_complete(c, data + used, len - used);
        return;
    }
    /* Progress on the body restarts its read timer, within the body's total deadline. */
    uint64_t now = time_now_ns();
    if (now >= c->body_deadline) {
        respond_parse_error(c, 408, "request body not received in time (timeouts.request_body)");
        return;
    }
    uint64_t left_ms = (c->body_deadline - now) / 1000000 + 1;
    uint32_t wait = c->w->config->header_read_timeout_ms;
    uv_timer_start(&c->timer, on_timer, left_ms < wait ? left_ms : wait, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out)
{
    client_conn *c = handle->data;
    (void)suggested;
    *out = uv_buf_init(c->w->read_buffer, WORKER_READ_BUFFER);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    client_conn *c = stream->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        /* EOF or error. While a request is handled this is the client giving up: cancel. A
         * client that half-closes after its answer was complete still gets what is queued. */
        if (nread == UV_EOF && c->state != CONN_HANDLING && c->write_pending) {
            c->close_after_write = true;
            stop_reading(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->state == CONN_HANDLING || pending_bytes(c) || c->close_after_write || c->output_blocked) {
        if (c->close_after_write) return; /* nothing more will be answered */
        if (c->pending_off && c->pending.len + (size_t)nread > c->pending.max) {
            buf_consume(&c->pending, c->pending_off);
            c->pending_off = 0;
        }
        /* Below PENDING_MAX the buffer has room for a whole read: no byte is ever dropped. */
        if (buf_append(&c->pending, b->base, (size_t)nread) != BUF_OK) {
            respond_parse_error(c, 400, "too much pipelined data");
            return;
        }
        if (pending_bytes(c) >= PENDING_MAX) stop_reading(c);
        if (c->state == CONN_IDLE && !c->output_blocked) mark_ready(c);
        return;
    }
    conn_feed(c, b->base, (size_t)nread);
}

static void start_reading(client_conn *c)
{
    if (c->reading || c->closing) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
}

static void stop_reading(client_conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Parses bytes that arrived while the previous request was handled. */
static void conn_resume(client_conn *c)
{
    if (c->close_soon) {
        conn_close(c);
        return;
    }
    /* After a half-close or a final answer nothing more is parsed: what is queued goes out. */
    if (c->state != CONN_IDLE || c->output_blocked || c->close_after_write || !pending_bytes(c)) return;
    /* Everything is consumed unless a complete request leaves a tail (request_complete). */
    size_t off = c->pending_off;
    c->pending_off = c->pending.len;
    c->feeding_pending = true;
    conn_feed(c, c->pending.data + off, c->pending.len - off);
    c->feeding_pending = false;
    if (!pending_bytes(c)) {
        buf_reset(&c->pending);
        c->pending_off = 0;
    }
    if (c->closing || c->close_after_write) return;
    if (pending_bytes(c) < PENDING_MAX) start_reading(c);
    if (c->state == CONN_IDLE && !pending_bytes(c))
        uv_timer_start(&c->timer, on_timer, c->w->config->keepalive_idle_timeout_ms, 0);
}

void http_conn_run_ready(worker *w)
{
    while (w->ready) {
        client_conn *c = w->ready;
        w->ready = c->next_ready;
        c->in_ready = false;
        if (!c->closing) conn_resume(c);
    }
}

/* ---- accepting and draining ------------------------------------------------------------- */

/* At the connection limit, the connection idle the longest among those that have been served
 * (a keep-alive client between requests) makes room, as nginx does: idle keep-alive
 * connections cannot keep new clients out. NULL when there is none. */
static client_conn *oldest_idle(worker *w)
{
    client_conn *oldest = NULL;
    for (client_conn *c = w->conns; c; c = c->next)
        if (c->state == CONN_IDLE && c->served && c->holds_slot && !pending_bytes(c) && !c->write_pending &&
            !c->close_soon && !c->close_after_write && (!oldest || c->idle_since < oldest->idle_since))
            oldest = c;
    return oldest;
}

/* The peer's address into out (16 bytes: IPv6, or IPv4 mapped as ::ffff:a.b.c.d), zeros when
 * the socket cannot say. Once per connection: a keep-alive connection's requests share it. */
static void read_peer_address(uv_tcp_t *tcp, uint8_t out[16])
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(out, 0, 16);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else if (ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    }
}

void http_conn_accept(worker *w, uv_stream_t *listener)
{
    client_conn *c = xcalloc(1, sizeof *c);
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        w->nconns++; /* balanced by worker_connection_closed */
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    read_peer_address(&c->tcp, c->req.client_addr);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->req.conn = c;
    c->req.worker = w;
    arena_init(&c->req.arena, 4096);
    buf_init(&c->req.body, 0);
    buf_init(&c->pending, PENDING_MAX + WORKER_READ_BUFFER);
    buf_init(&c->head, w->config->max_header_bytes);
    w->app->request_init(&c->req);
    c->keepalive = true;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    /* The limit is the server's, not a share per worker: the kernel does not spread
     * connections evenly across SO_REUSEPORT sockets. */
    c->holds_slot = worker_connection_slot_take(w);
    if (!c->holds_slot) {
        client_conn *victim = oldest_idle(w);
        if (victim) { /* its slot passes to the new connection */
            victim->holds_slot = false;
            c->holds_slot = true;
            conn_close(victim);
        }
    }
    if (!c->holds_slot) {
        c->state = CONN_HANDLING;
        c->error_status = 503;
        c->keepalive = false;
        assign_request_id(c);
        c->req.start_ns = time_now_ns();
        c->req.method = -1;
        request_hold_config(c);
        w->app->on_error(&c->req, 503, "too_many_connections",
                         "the gateway is at its connection limit; try again shortly");
        return;
    }
    start_reading(c);
    uv_timer_start(&c->timer, on_timer, w->config->header_read_timeout_ms, 0);
}

void http_conn_drain(worker *w)
{
    for (client_conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->state != CONN_IDLE || pending_bytes(c)) continue;
        if (c->write_pending) /* an answer still on its way goes out whole first */
            c->close_after_write = true;
        else
            conn_close(c);
    }
}

void http_conn_close_all(worker *w)
{
    while (w->conns)
        conn_close(w->conns);
}
