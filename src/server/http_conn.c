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
 * and put it on the worker's ready list, which closes it on the next loop turn. */
#include "server/http_conn.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "pipeline/pipeline.h"
#include "providers/provider.h"
#include "util/alloc.h"
#include "util/timeutil.h"

typedef enum conn_state { CONN_IDLE, CONN_READING, CONN_HANDLING } conn_state;

/* How the request body is framed, once the head is parsed. http-parser reads only the head: the
 * body is ours (body_feed), so chunked framing is checked strictly (Debian's http-parser is
 * built lenient: it skips the CRLF after chunk data and takes "2 \r\n") and trailers never
 * reach the header buffer that req.headers point into. */
typedef enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED } body_mode;

typedef enum chunk_state {
    CHUNK_SIZE,       /* hex digits of the size */
    CHUNK_SIZE_SPACE, /* whitespace after the size: only before a ";" extension */
    CHUNK_EXTENSION,  /* ";name=value…" up to CR, ignored */
    CHUNK_SIZE_LF,    /* CR seen, LF must follow */
    CHUNK_DATA,
    CHUNK_DATA_CR, /* the CRLF that must follow chunk data */
    CHUNK_DATA_LF,
    CHUNK_TRAILER_START, /* after the last chunk: a trailer field, or the final CRLF */
    CHUNK_TRAILER_LINE,
    CHUNK_TRAILER_LF,
    CHUNK_FINAL_LF,
} chunk_state;

#define CHUNK_LINE_MAX 4096 /* a size line with its extensions */

typedef struct header_offsets {
    size_t name_off, name_len, value_off, value_len;
} header_offsets;

typedef struct client_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    worker *w;
    http_parser parser;
    request req;
    conn_state state;
    buf pending;        /* bytes read while HANDLING, parsed after the response… */
    size_t pending_off; /* …from here on (parsed requests are skipped, not moved) */
    bool feeding_pending;
    buf head; /* URL then header names and values, as received */
    size_t url_len;
    header_offsets hoff[REQUEST_MAX_HEADERS];
    size_t nheaders;
    bool last_was_value;
    bool headers_done;
    bool head_complete; /* http-parser has read a whole head; the body is ours to read */
    bool http10;        /* the request said HTTP/1.0: keep-alive must be said in the reply */
    body_mode body;
    uint64_t body_left;     /* BODY_LENGTH: bytes still to come; BODY_CHUNKED: of this chunk */
    chunk_state chunk;      /* BODY_CHUNKED: where in the framing */
    size_t chunk_line;      /* bytes of the current size line or trailer section */
    bool trailer_value;     /* past the ':' of the current trailer field */
    uint64_t body_deadline; /* ns: the whole body must have arrived by then */
    int error_status;       /* set by a parser callback that refused the request */
    const char *error_message;
    bool keepalive;
    bool closing, close_soon, close_after_write, want_writable, in_ready;
    bool reading;
    bool output_blocked; /* a response is queued above the high mark: no next request until it drains */
    bool send_stalled;   /* a stream is above the high mark: the timer watches that the client reads */
    bool holds_slot;     /* counted in the server-wide connection limit */
    uint32_t served;     /* requests answered on this connection */
    uint64_t idle_since; /* ns: when it last became idle (the oldest idle goes first at the limit) */
    size_t write_pending;
    int open_handles;
    void (*request_timer_cb)(request *req); /* the timer's use while HANDLING */
    struct client_conn *prev, *next, *next_ready;
} client_conn;

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

static client_conn *conn_of(const request *req)
{
    return req->conn;
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
    pipeline_request_free(&c->req);
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
    if (c->state == CONN_HANDLING) pipeline_abort(&c->req);
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
        pipeline_on_writable(&c->req);
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

static void conn_write(client_conn *c, uv_buf_t *bufs, unsigned nbufs)
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

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* Writes the status line and common headers into out (size HEAD_MAX). */
#define HEAD_MAX 512 /* status line + our headers; the Content-Type is clamped to 200 bytes */
static size_t format_head(client_conn *c, int status, const char *content_type, bool chunked,
                          size_t content_length, char *out)
{
    request *req = &c->req;
    bool keep = c->keepalive && !c->w->draining && !c->error_status;
    int n;
    if (chunked)
        n = snprintf(out, HEAD_MAX,
                     "HTTP/1.1 %d %s\r\nContent-Type: %.200s\r\nTransfer-Encoding: chunked\r\n"
                     "Cache-Control: no-cache\r\nx-request-id: %s\r\n%s",
                     status, reason_phrase(status), content_type, req->id,
                     keep ? "" : "Connection: close\r\n");
    else
        n = snprintf(
            out, HEAD_MAX,
            "HTTP/1.1 %d %s\r\nContent-Type: %.200s\r\nContent-Length: %zu\r\nx-request-id: %s\r\n%s", status,
            reason_phrase(status), content_type, content_length, req->id,
            keep ? "" : "Connection: close\r\n");
    /* Anthropic's SDKs read the request id from request-id. */
    if (req->ingress == WIRE_ANTHROPIC && n > 0 && n < HEAD_MAX)
        n += snprintf(out + n, HEAD_MAX - (size_t)n, "request-id: %s\r\n", req->id);
    /* HTTP/1.0 closes by default: a connection kept open must say so. */
    if (keep && c->http10 && n > 0 && n < HEAD_MAX)
        n += snprintf(out + n, HEAD_MAX - (size_t)n, "Connection: keep-alive\r\n");
    if (!keep) c->keepalive = false;
    return n < 0 ? 0 : (size_t)n >= HEAD_MAX ? HEAD_MAX - 1 : (size_t)n;
}

static void request_finished(client_conn *c);

void http_respond(request *req, int status, const char *content_type, const char *extra_headers,
                  size_t extra_len, const char *body, size_t body_len)
{
    client_conn *c = conn_of(req);
    char head[HEAD_MAX];
    size_t hlen = format_head(c, status, content_type, false, body_len, head);
    uv_buf_t bufs[5] = {
        uv_buf_init(head, (unsigned)hlen),
        uv_buf_init((char *)(extra_headers ? extra_headers : ""), (unsigned)(extra_headers ? extra_len : 0)),
        uv_buf_init((char *)(req->route_headers ? req->route_headers : ""), (unsigned)req->route_headers_len),
        uv_buf_init("\r\n", 2),
        uv_buf_init((char *)body, req->method == HTTP_HEAD ? 0 : (unsigned)body_len),
    };
    if (req->method == HTTP_HEAD) body_len = 0; /* the head says how long the body would be */
    req->status = status;
    req->response_started = true;
    if (!req->first_byte_ns) req->first_byte_ns = time_now_ns();
    req->bytes_out += hlen + extra_len + req->route_headers_len + 2 + body_len;
    conn_write(c, bufs, 5);
    request_finished(c);
}

void http_respond_error(request *req, int status, const char *type, const char *code, const char *param,
                        const char *message)
{
    buf body;
    buf_init(&body, 64 * 1024);
    provider_error_body(req->ingress, &body, status, type, code, param, message);
    if (!req->error_note) req->error_note = arena_strndup(&req->arena, message, strlen(message));
    http_respond(req, status, "application/json", NULL, 0, body.data, body.len);
    buf_free(&body);
}

void http_stream_begin(request *req, int status, const char *content_type, const char *extra_headers,
                       size_t extra_len)
{
    client_conn *c = conn_of(req);
    char head[HEAD_MAX];
    size_t hlen = format_head(c, status, content_type, true, 0, head);
    uv_buf_t bufs[4] = {
        uv_buf_init(head, (unsigned)hlen),
        uv_buf_init((char *)(extra_headers ? extra_headers : ""), (unsigned)(extra_headers ? extra_len : 0)),
        uv_buf_init((char *)(req->route_headers ? req->route_headers : ""), (unsigned)req->route_headers_len),
        uv_buf_init("\r\n", 2),
    };
    req->status = status;
    req->response_started = true;
    req->chunked = true;
    if (!req->first_byte_ns) req->first_byte_ns = time_now_ns();
    req->bytes_out += hlen + extra_len + req->route_headers_len + 2;
    conn_write(c, bufs, 4);
}

/* A stream whose client stopped reading: the upstream is paused, and the connection would hold
 * its slot and buffers for as long as the client likes. */
static void on_send_stall(uv_timer_t *timer)
{
    client_conn *c = timer->data;
    c->send_stalled = false;
    if (c->state == CONN_HANDLING && c->write_pending) conn_close(c);
}

bool http_stream_write(request *req, const char *data, size_t len)
{
    client_conn *c = conn_of(req);
    if (!len) return c->write_pending >= HTTP_OUTPUT_HIGH_WATER;
    char size_line[24];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    uv_buf_t bufs[3] = {
        uv_buf_init(size_line, (unsigned)n),
        uv_buf_init((char *)data, (unsigned)len),
        uv_buf_init("\r\n", 2),
    };
    req->bytes_out += (size_t)n + len + 2;
    conn_write(c, bufs, 3);
    if (c->write_pending >= HTTP_OUTPUT_HIGH_WATER) {
        c->want_writable = true;
        if (!c->send_stalled) { /* retries and hedges are over once a stream has begun */
            uint64_t ms = c->w->config->keepalive_idle_timeout_ms;
            c->send_stalled = true;
            c->request_timer_cb = NULL;
            uv_timer_start(&c->timer, on_send_stall, ms, ms);
        }
        return true;
    }
    return false;
}

void http_stream_end(request *req, const char *data, size_t len)
{
    client_conn *c = conn_of(req);
    char size_line[24];
    int n = len ? snprintf(size_line, sizeof size_line, "%zx\r\n", len) : 0;
    uv_buf_t bufs[4] = {
        uv_buf_init(size_line, (unsigned)n),
        uv_buf_init((char *)data, (unsigned)len),
        uv_buf_init("\r\n", len ? 2 : 0),
        uv_buf_init("0\r\n\r\n", 5),
    };
    req->bytes_out += (size_t)n + len + (len ? 2 : 0) + 5;
    conn_write(c, bufs, 4);
    request_finished(c);
}

const http_header *http_find_header(const request *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == len && !strncasecmp(req->headers[i].name, name, len))
            return &req->headers[i];
    return NULL;
}

/* ---- request lifecycle -------------------------------------------------------------------- */

static void request_reset(client_conn *c)
{
    request *req = &c->req;
    pipeline_request_reset(req);
    arena_reset(&req->arena);
    buf_reset(&req->body);
    buf_reset(&c->head);
    req->path = NULL;
    req->path_len = 0;
    req->nheaders = 0;
    req->id[0] = '\0';
    req->bytes_in = req->bytes_out = 0;
    req->status = 0;
    req->response_started = req->chunked = false;
    req->first_byte_ns = 0;
    c->url_len = 0;
    c->nheaders = 0;
    c->last_was_value = false;
    c->headers_done = false;
    c->head_complete = false;
    c->body = BODY_NONE;
    c->want_writable = false;
}

static void request_finished(client_conn *c)
{
    pipeline_record(&c->req);
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
    request *req = &c->req;
    if (!req->id[0]) assign_request_id(c);
    if (!req->start_ns) req->start_ns = time_now_ns();
    if (!req->path) req->method = -1; /* the request line was not (fully) read */
    c->state = CONN_HANDLING;
    http_respond_error(req, status, "invalid_request_error", NULL, NULL, message);
}

static void on_request_timer(uv_timer_t *timer)
{
    client_conn *c = timer->data;
    void (*cb)(request *) = c->request_timer_cb;
    c->request_timer_cb = NULL;
    if (c->state == CONN_HANDLING && cb) cb(&c->req);
}

void http_request_timer(request *req, uint32_t ms, void (*cb)(request *req))
{
    client_conn *c = conn_of(req);
    c->request_timer_cb = cb;
    uv_timer_start(&c->timer, on_request_timer, ms, 0);
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
    uv_timer_start(&c->timer, on_timer, c->w->config->header_read_timeout_ms, 0);
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
        h->name_off = c->head.len;
        h->name_len = h->value_len = 0;
        h->value_off = c->head.len;
        c->last_was_value = false;
    }
    if (!head_append(c, at, len)) return -1;
    c->hoff[c->nheaders - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    client_conn *c = p->data;
    header_offsets *h = &c->hoff[c->nheaders - 1];
    if (!c->last_was_value) {
        h->value_off = c->head.len;
        h->value_len = 0;
        c->last_was_value = true;
    }
    if (!head_append(c, at, len)) return -1;
    h->value_len += len;
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
    request *req = &c->req;
    const char *base = c->head.data ? c->head.data : "";
    for (size_t i = 0; i < c->nheaders; i++) {
        http_header *h = &req->headers[i];
        h->name = base + c->hoff[i].name_off;
        h->name_len = c->hoff[i].name_len;
        h->value = base + c->hoff[i].value_off;
        h->value_len = c->hoff[i].value_len;
    }
    req->nheaders = c->nheaders;
    req->method = p->method;
    size_t plen;
    const char *path = target_path(base, c->url_len, &plen);
    if (plen == 0) { /* "http://host" names the root */
        path = "/";
        plen = 1;
    }
    req->path = arena_strndup(&req->arena, path, plen);
    req->ingress = pipeline_ingress_of(req->path);
    req->path_len = plen;
    req->bytes_in = c->head.len;

    const http_header *rid = http_find_header(req, "x-request-id");
    if (rid && valid_request_id(rid->value, rid->value_len)) {
        memcpy(req->id, rid->value, rid->value_len);
        req->id[rid->value_len] = '\0';
    } else {
        assign_request_id(c);
    }

    const aigw_config *cfg = c->w->config;
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
        c->body = BODY_CHUNKED;
        c->chunk = CHUNK_SIZE;
        c->chunk_line = 0;
        c->body_left = 0;
    } else if (p->content_length != ULLONG_MAX && p->content_length > 0) {
        if (p->content_length > cfg->max_body_bytes) {
            c->error_status = 413;
            c->error_message = "request body too large";
            return -1;
        }
        c->body = BODY_LENGTH;
        c->body_left = p->content_length;
    } else {
        c->body = BODY_NONE;
    }
    req->body.max = cfg->max_body_bytes;
    c->headers_done = true;
    const http_header *expect = http_find_header(req, "expect");
    if (expect) {
        if (expect->value_len == 12 && !strncasecmp(expect->value, "100-continue", 12)) {
            uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
            conn_write(c, &b, 1);
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
    return 1; /* "no body" to http-parser: body_feed reads it */
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

/* ---- the body --------------------------------------------------------------------------- */

typedef enum body_result { BODY_MORE, BODY_DONE, BODY_ERROR } body_result;

static body_result body_refuse(client_conn *c, int status, const char *message)
{
    c->error_status = status;
    c->error_message = message;
    return BODY_ERROR;
}

static body_result body_take(client_conn *c, const char *data, size_t len)
{
    if (buf_append(&c->req.body, data, len) != BUF_OK) return body_refuse(c, 413, "request body too large");
    c->req.bytes_in += len;
    return BODY_MORE;
}

static bool is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Reads body bytes from data: a fixed length, or chunked framing exactly as RFC 9112 §7.1 has it
 * (bare LF, whitespace without an extension, a missing CRLF after data, a size past the limit
 * are all refused; trailer fields are checked for shape, bounded and dropped). Sets *used to
 * the bytes consumed: on BODY_DONE what follows belongs to the next request. */
static body_result body_feed(client_conn *c, const char *data, size_t len, size_t *used)
{
    size_t i = 0;
    body_result r = BODY_MORE;
    if (c->body == BODY_LENGTH) {
        size_t take = len < c->body_left ? len : (size_t)c->body_left;
        r = body_take(c, data, take);
        c->body_left -= take;
        *used = take;
        return r == BODY_MORE && c->body_left == 0 ? BODY_DONE : r;
    }
    while (i < len && r == BODY_MORE) {
        unsigned char ch = (unsigned char)data[i];
        if (c->chunk == CHUNK_DATA) {
            size_t take = len - i < c->body_left ? len - i : (size_t)c->body_left;
            r = body_take(c, data + i, take);
            c->body_left -= take;
            i += take;
            if (c->body_left == 0) c->chunk = CHUNK_DATA_CR;
            continue;
        }
        i++;
        if (c->chunk <= CHUNK_SIZE_LF && ++c->chunk_line > CHUNK_LINE_MAX)
            return body_refuse(c, 400, "malformed chunked body: chunk size line too long");
        switch (c->chunk) {
        case CHUNK_SIZE:
            if (isxdigit(ch)) {
                if (c->body_left > (c->req.body.max - c->req.body.len) / 16)
                    return body_refuse(c, 413, "request body too large");
                c->body_left =
                    c->body_left * 16 + (uint64_t)(isdigit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
            } else if (c->chunk_line > 1 && (ch == ' ' || ch == '\t')) {
                c->chunk = CHUNK_SIZE_SPACE;
            } else if (c->chunk_line > 1 && ch == ';') {
                c->chunk = CHUNK_EXTENSION;
            } else if (c->chunk_line > 1 && ch == '\r') {
                c->chunk = CHUNK_SIZE_LF;
            } else {
                return body_refuse(c, 400, "malformed chunked body: bad chunk size");
            }
            break;
        case CHUNK_SIZE_SPACE:
            if (ch == ';')
                c->chunk = CHUNK_EXTENSION;
            else if (ch != ' ' && ch != '\t')
                return body_refuse(c, 400, "malformed chunked body: bad chunk size");
            break;
        case CHUNK_EXTENSION:
            if (ch == '\r')
                c->chunk = CHUNK_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return body_refuse(c, 400, "malformed chunked body: bad chunk extension");
            break;
        case CHUNK_SIZE_LF:
            if (ch != '\n') return body_refuse(c, 400, "malformed chunked body: CR without LF");
            c->chunk_line = 0;
            c->chunk = c->body_left ? CHUNK_DATA : CHUNK_TRAILER_START;
            break;
        case CHUNK_DATA_CR:
            if (ch != '\r')
                return body_refuse(c, 400, "malformed chunked body: chunk data not followed by CRLF");
            c->chunk = CHUNK_DATA_LF;
            break;
        case CHUNK_DATA_LF:
            if (ch != '\n')
                return body_refuse(c, 400, "malformed chunked body: chunk data not followed by CRLF");
            c->chunk = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER_START:
            if (ch == '\r') {
                c->chunk = CHUNK_FINAL_LF;
                break;
            }
            if (!is_token_char(ch)) return body_refuse(c, 400, "malformed chunked body: bad trailer field");
            c->chunk = CHUNK_TRAILER_LINE;
            c->trailer_value = false;
            __attribute__((fallthrough)); /* the first byte counts toward the trailers' size */
        case CHUNK_TRAILER_LINE:
            if (++c->chunk_line > c->w->config->max_header_bytes)
                return body_refuse(c, 431, "request trailer fields too large");
            if (!c->trailer_value && ch == ':')
                c->trailer_value = true;
            else if (c->trailer_value ? (ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f
                                      : !is_token_char(ch))
                return body_refuse(c, 400, "malformed chunked body: bad trailer field");
            else if (ch == '\r')
                c->chunk = CHUNK_TRAILER_LF;
            break;
        case CHUNK_TRAILER_LF:
            if (ch != '\n') return body_refuse(c, 400, "malformed chunked body: CR without LF");
            c->chunk = CHUNK_TRAILER_START;
            break;
        case CHUNK_FINAL_LF:
            if (ch != '\n') return body_refuse(c, 400, "malformed chunked body: CR without LF");
            *used = i;
            return BODY_DONE;
        case CHUNK_DATA: break;
        }
    }
    *used = i;
    return r;
}

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
    c->body = BODY_NONE;
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    pipeline_handle(&c->req);
}

/* Parses data: the head with http-parser, then the body with body_feed. On a complete request
 * saves the rest in `pending` and runs the pipeline. */
static void conn_feed(client_conn *c, const char *data, size_t len)
{
    if (c->body == BODY_NONE || !c->headers_done) {
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
        if (c->body == BODY_NONE) {
            request_complete(c, data, len);
            return;
        }
    }
    size_t used = 0;
    body_result r = body_feed(c, data, len, &used);
    if (r == BODY_ERROR) {
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
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->req.conn = c;
    c->req.worker = w;
    arena_init(&c->req.arena, 4096);
    buf_init(&c->req.body, 0);
    buf_init(&c->pending, PENDING_MAX + WORKER_READ_BUFFER);
    buf_init(&c->head, w->config->max_header_bytes);
    pipeline_request_init(&c->req);
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
        http_respond_error(&c->req, 503, "server_error", "too_many_connections", NULL,
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
