/* h1.c — aigw's own HTTP/1.1 client for plain http:// providers, on the worker's libuv loop.
 *
 * Why: libcurl was 45 % of a proxied request's instructions (bench/profile.sh: ~64,000 of
 * ~140,000) and made two poll() calls per transfer on top of its send and recv; nginx's whole
 * request costs about half of aigw's. For a plain-HTTP origin everything curl brings — TLS,
 * HTTP/2, proxies, redirects, cookies — is unused, and a request is one write and a response
 * one or a few reads. curl stays for https:// (TLS dominates there), for HTTP/2, and whenever
 * a proxy is set in the environment; a URL this client does not take (userinfo, bytes a URL
 * parser would have to encode, a header line it would have to rewrite) goes to curl too.
 * Measured gains are in bench/RESULTS.md.
 *
 * Shape (h2o's http1client and nginx's upstream keepalive module were the models):
 * - Connections are pooled per (host, port) and opened (name resolution included) by
 *   h1_pool.c, which knows nothing of HTTP; this file runs the calls on them. A connection goes
 *   back to the pool only after a complete response with keep-alive and no bytes after it;
 *   anything else closes it.
 * - The request (head and body) goes out with one uv_try_write (writev) when the socket has
 *   room; the rest is queued with uv_write. The body is the caller's (valid until on_done).
 * - Responses are read into the client's 64 KiB buffer (one per worker, as the server does)
 *   and parsed in place (h1_parse.c): a head is copied only when it spans reads, body spans are
 *   handed to on_data straight from the buffer. Bytes a pause leaves unread are copied into
 *   the call (at most one read's worth) and the connection stops reading until resumed.
 * - A request on a reused connection that fails before any byte of the response arrives (the
 *   server closed it while idle; the race every keep-alive client has) is sent again once on
 *   a new connection, as curl does.
 * - Timeouts as upstream.h gives them: connect, first byte (until the head is whole), idle gap
 *   (not while paused on purpose), total; one timer per call, moved lazily (a later deadline
 *   is picked up when the timer fires), so a stream chunk costs no timer-heap update.
 * - Cancel (also from inside a callback: the unwinding code finishes it), pause and resume as
 *   upstream.h says; no callback fires after a cancel. */
#include "upstream/h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h> /* struct curl_slist: the header list type upstream.h passes */

#include "upstream/h1_internal.h"
#include "upstream/h1_parse.h"
#include "util/alloc.h"

#define H1_HEAD_MAX (64 * 1024) /* a response head past this is an error */
#define H1_CALL_POOL_MAX 64

static void call_free(h1_call *call);

/* ---- timers ---------------------------------------------------------------------------- */

static bool call_connecting(const h1_call *call)
{
    return !call->conn || !call->conn->connected;
}

static uint64_t next_deadline(const h1_call *call)
{
    uint64_t d = call->total_deadline;
#define EARLIER(x)                                                                                           \
    if ((x) && (!d || (x) < d)) d = (x)
    if (!call->head_done) {
        EARLIER(call->first_byte_deadline);
        if (call_connecting(call)) EARLIER(call->connect_deadline);
    } else if (!call->paused) {
        EARLIER(call->idle_deadline);
    }
#undef EARLIER
    return d;
}

static void on_call_timer(uv_timer_t *timer);

/* Restarts the timer only when the next deadline is earlier than the one it waits for. */
static void timer_update(h1_call *call)
{
    uint64_t d = next_deadline(call);
    if (!d || (call->timer_due && call->timer_due <= d)) return;
    uint64_t now = uv_now(call->client->loop);
    call->timer_due = d;
    uv_timer_start(&call->timer, on_call_timer, d > now ? d - now : 0, 0);
}

static void on_call_timer(uv_timer_t *timer)
{
    h1_call *call = timer->data;
    uint64_t now = uv_now(call->client->loop);
    call->timer_due = 0;
    char msg[96];
    upstream_result result;
    if (call->total_deadline && now >= call->total_deadline) {
        /* curl's rule: a transfer that never got connected timed out connecting */
        result = call_connecting(call) ? UPSTREAM_CONNECT_TIMEOUT : UPSTREAM_TOTAL_TIMEOUT;
        snprintf(msg, sizeof msg, "the transfer took longer than %u ms", call->total_ms);
    } else if (!call->head_done && call_connecting(call) && call->connect_deadline &&
               now >= call->connect_deadline) {
        result = UPSTREAM_CONNECT_TIMEOUT;
        snprintf(msg, sizeof msg, "could not connect within %u ms", call->connect_ms);
    } else if (!call->head_done && call->first_byte_deadline && now >= call->first_byte_deadline) {
        result = UPSTREAM_FIRST_BYTE_TIMEOUT;
        snprintf(msg, sizeof msg, "upstream sent nothing for %u ms (first byte timeout)",
                 call->first_byte_ms);
    } else if (call->head_done && !call->paused && call->idle_deadline && now >= call->idle_deadline) {
        result = UPSTREAM_IDLE_TIMEOUT;
        snprintf(msg, sizeof msg, "upstream sent nothing for %u ms (idle timeout)", call->idle_ms);
    } else {
        timer_update(call); /* a deadline moved while the timer ran: wait for the next */
        return;
    }
    h1__finish(call, result, msg);
}

/* ---- the end of a call ------------------------------------------------------------------ */

/* Ends the call: its connection goes back to the pool after a complete response, else it is
 * closed; the call object is freed before on_done runs (which may start another call). */
void h1__finish(h1_call *call, upstream_result result, const char *message)
{
    h1_conn *conn = call->conn;
    if (conn) {
        call->conn = NULL;
        conn->call = NULL;
        if (result == UPSTREAM_OK && h1_body_done(&call->body_state) && call->body_state.keep_alive &&
            !call->held_len && !conn->writing)
            h1__conn_release(conn);
        else
            h1__conn_close(conn);
    }
    upstream_callbacks cb = call->cb;
    void *ud = call->ud;
    call_free(call);
    cb.on_done(ud, result, message ? message : "");
}

/* Ends the call without a callback (a cancel). */
static void call_abort(h1_call *call)
{
    if (call->conn) h1__conn_close(call->conn);
    call_free(call);
}

/* A reused connection failed before the response began: send once more on a new one. */
static bool maybe_retry(h1_call *call)
{
    if (call->retried || call->got_bytes || !call->conn || !call->conn->reused) return false;
    call->retried = true;
    h1__conn_close(call->conn);
    call->conn = NULL;
    h1__call_connect(call);
    return true;
}

static void fail_io(h1_call *call, const char *what, int err)
{
    if (maybe_retry(call)) return;
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", what, uv_strerror(err));
    h1__finish(call, UPSTREAM_BROKEN, msg);
}

/* ---- the response ------------------------------------------------------------------------ */

typedef enum { FEED_GO, FEED_STOP } feed_result; /* STOP: the call is gone, or waits for a resume */

static void hold(h1_call *call, const char *data, size_t len)
{
    char *held = xmalloc(len);
    memcpy(held, data, len);
    call->held = held;
    call->held_len = len;
}

/* One round of body bytes: each span to on_data, then on_flush once. */
static feed_result feed_body(h1_call *call, char *data, size_t len)
{
    size_t off = 0;
    bool delivered = false;
    for (;;) {
        if (call->pause_wanted && off < len) { /* on_data ended the round early */
            hold(call, data + off, len - off);
            break;
        }
        size_t used;
        const char *span;
        size_t span_len;
        h1_result r = h1_body_feed(&call->body_state, data + off, len - off, &used, &span, &span_len);
        off += used;
        if (r == H1_ERROR) {
            h1__finish(call, UPSTREAM_BROKEN, "the upstream's response body is not validly framed");
            return FEED_STOP;
        }
        if (r == H1_DATA) {
            if (!span_len) continue;
            delivered = true;
            call->idle_deadline = call->idle_ms ? uv_now(call->client->loop) + call->idle_ms : 0;
            call->depth++;
            int d = call->cb.on_data(call->ud, span, span_len);
            call->depth--;
            if (call->cancelled) {
                call_abort(call);
                return FEED_STOP;
            }
            if (d == UPSTREAM_DATA_ABORT) {
                h1__finish(call, UPSTREAM_TOO_LARGE, "the response body was refused");
                return FEED_STOP;
            }
            if (d == UPSTREAM_DATA_PAUSE) call->pause_wanted = true;
            continue;
        }
        if (r == H1_DONE) {
            if (off < len) call->body_state.keep_alive = false; /* bytes after the response */
            if (delivered && call->cb.on_flush) {
                call->depth++;
                call->cb.on_flush(call->ud);
                call->depth--;
                if (call->cancelled) {
                    call_abort(call);
                    return FEED_STOP;
                }
            }
            h1__finish(call, UPSTREAM_OK, NULL);
            return FEED_STOP;
        }
        break; /* H1_MORE: all of it used */
    }
    if (delivered && call->cb.on_flush) {
        call->depth++;
        bool behind = call->cb.on_flush(call->ud);
        call->depth--;
        if (call->cancelled) {
            call_abort(call);
            return FEED_STOP;
        }
        call->pause_wanted = behind;
    }
    if (call->pause_wanted) {
        call->paused = true;
        if (call->conn) h1__conn_read(call->conn, false);
        return FEED_STOP;
    }
    return FEED_GO;
}

/* Feeds what a pause kept back, round by round, until it is used or the call pauses again. */
static feed_result drain_held(h1_call *call)
{
    while (call->held_len && !call->pause_wanted) {
        char *buf = call->held;
        size_t n = call->held_len;
        call->held = NULL;
        call->held_len = 0;
        feed_result r = feed_body(call, buf, n);
        free(buf);
        if (r == FEED_STOP) return FEED_STOP;
    }
    return call->pause_wanted ? FEED_STOP : FEED_GO;
}

static feed_result head_complete(h1_call *call, char *head, size_t len)
{
    h1_head h;
    if (h1_parse_head(head, len, &h) != H1_DONE) {
        h1__finish(call, UPSTREAM_BROKEN, "the upstream's response head is malformed");
        return FEED_STOP;
    }
    if (h.status < 200) {
        if (h.status == 101) {
            h1__finish(call, UPSTREAM_BROKEN, "the upstream switched protocols");
            return FEED_STOP;
        }
        return FEED_GO; /* an interim response: the final head follows */
    }
    call->head_done = true;
    h1_body_init(&call->body_state, &h);
    call->idle_deadline = call->idle_ms ? uv_now(call->client->loop) + call->idle_ms : 0;
    timer_update(call);
    call->depth++;
    bool ok = call->cb.on_head(call->ud, h.status, (const char *const *)h.lines, h.nlines);
    call->depth--;
    if (call->cancelled) {
        call_abort(call);
        return FEED_STOP;
    }
    if (!ok) {
        h1__finish(call, UPSTREAM_FAILED, "the response head was refused");
        return FEED_STOP;
    }
    return FEED_GO;
}

/* Bytes from the connection (in the client's read buffer, writable: heads are parsed in place). */
static void call_input(h1_call *call, char *data, size_t len)
{
    call->got_bytes = true;
    size_t off = 0;
    while (!call->head_done) {
        if (off == len) return;
        char *p = data + off;
        size_t n = len - off;
        if (!call->head_len) {
            size_t hl = h1_head_length(p, n);
            if (!hl) {
                if (n > H1_HEAD_MAX) goto too_large;
                call->head_buf = xmalloc(H1_HEAD_MAX);
                memcpy(call->head_buf, p, n);
                call->head_len = n;
                return;
            }
            off += hl;
            if (head_complete(call, p, hl) == FEED_STOP) return;
            continue;
        }
        size_t before = call->head_len;
        size_t take = n < H1_HEAD_MAX - before ? n : H1_HEAD_MAX - before;
        memcpy(call->head_buf + before, p, take);
        call->head_len += take;
        size_t hl = h1_head_length(call->head_buf, call->head_len);
        if (!hl) {
            if (call->head_len == H1_HEAD_MAX) goto too_large;
            return;
        }
        off += hl - before;
        char *head = call->head_buf;
        call->head_buf = NULL;
        call->head_len = 0;
        feed_result r = head_complete(call, head, hl);
        free(head);
        if (r == FEED_STOP) return;
    }
    if (off < len && feed_body(call, data + off, len - off) == FEED_GO) drain_held(call);
    return;
too_large:
    h1__finish(call, UPSTREAM_BROKEN, "the upstream's response head is too large");
}

static void call_input_end(h1_call *call, ssize_t err)
{
    if (err == UV_EOF && call->head_done && h1_body_eof_ends(&call->body_state)) {
        call->body_state.keep_alive = false;
        h1__finish(call, UPSTREAM_OK, NULL); /* a body delimited by the close */
        return;
    }
    if (maybe_retry(call)) return;
    /* curl's words for the same events: clients and tests already know them */
    if (err == UV_EOF)
        h1__finish(call, UPSTREAM_BROKEN,
                   call->got_bytes ? "transfer closed with outstanding read data remaining"
                                   : "Empty reply from server");
    else
        fail_io(call, "reading the response failed", (int)err);
}

void h1__on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    h1_conn *conn = stream->data;
    h1_call *call = conn->call;
    if (nread == 0) return;
    if (!call) { /* idle: the server closed it, or sent what no request asked for */
        h1__conn_close(conn);
        return;
    }
    if (nread < 0)
        call_input_end(call, nread);
    else
        call_input(call, buf->base, (size_t)nread);
}

/* ---- the request -------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    h1_conn *conn = req->data;
    conn->writing = false;
    if (conn->closing || !conn->call) return;
    if (status < 0) fail_io(conn->call, "sending the request failed", status);
}

void h1__call_send(h1_call *call)
{
    h1_conn *conn = call->conn;
    uv_buf_t bufs[2] = {uv_buf_init(call->request, (unsigned)call->request_len),
                        uv_buf_init((char *)call->body, (unsigned)call->body_len)};
    unsigned nbufs = call->body_len ? 2 : 1;
    size_t total = call->request_len + call->body_len;
    int n = uv_try_write((uv_stream_t *)&conn->tcp, bufs, nbufs);
    if (n >= 0 && (size_t)n == total) return;
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
        fail_io(call, "sending the request failed", n);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    uv_buf_t *b = bufs;
    while (done >= b->len && nbufs) {
        done -= b->len;
        b++;
        nbufs--;
    }
    b->base += done;
    b->len -= done;
    conn->writing = true;
    int r = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, b, nbufs, on_written);
    if (r < 0) {
        conn->writing = false;
        fail_io(call, "sending the request failed", r);
    }
}

/* ---- URL and request head ------------------------------------------------------------------- */

typedef struct url_parts {
    const char *host, *authority, *path;
    size_t host_len, authority_len, path_len;
    uint16_t port;
} url_parts;

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* http://host[:port][/path][?query] with a plain host name or IP literal and a path of visible
 * ASCII; anything else is declined (curl parses and encodes it). */
static bool parse_url(const char *url, url_parts *u)
{
    if (strncmp(url, "http://", 7)) return false;
    const char *a = url + 7, *p = a;
    while (*p && *p != '/' && *p != '?')
        p++;
    u->authority = a;
    u->authority_len = (size_t)(p - a);
    const char *h = a, *hend;
    if (*h == '[') {
        hend = memchr(h, ']', u->authority_len);
        if (!hend) return false;
        u->host = h + 1;
        u->host_len = (size_t)(hend - h - 1);
        for (size_t i = 0; i < u->host_len; i++)
            if (!strchr("0123456789abcdefABCDEF:.", u->host[i])) return false;
        hend++;
    } else {
        hend = h;
        while (hend < p && host_char(*hend))
            hend++;
        u->host = h;
        u->host_len = (size_t)(hend - h);
    }
    if (!u->host_len || u->host_len > H1_HOST_MAX) return false;
    unsigned port = 80;
    if (hend < p) {
        if (*hend != ':' || hend + 1 == p || p - hend > 6) return false;
        port = 0;
        for (const char *c = hend + 1; c < p; c++) {
            if (*c < '0' || *c > '9') return false;
            port = port * 10 + (unsigned)(*c - '0');
        }
        if (!port || port > 65535) return false;
    }
    u->port = (uint16_t)port;
    u->path = p;
    u->path_len = strlen(p);
    for (size_t i = 0; i < u->path_len; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return false;
    return true;
}

static bool header_is(const char *line, size_t name_len, const char *want)
{
    return strlen(want) == name_len && !strncasecmp(line, want, name_len);
}

/* One line of the caller's list, as curl reads it: "Name: value" is sent, "Name:" with no
 * value removes a header (we add none that could be removed but Host), "Name;" sends it
 * empty. Writes the bytes to send at out (at most strlen(line) + 2) and returns how many (0:
 * none), or -1 to decline the list. */
static long header_out(const char *line, char *out)
{
    size_t len = strlen(line);
    if (memchr(line, '\r', len) || memchr(line, '\n', len)) return -1;
    const char *colon = memchr(line, ':', len);
    size_t name_len;
    if (colon) {
        name_len = (size_t)(colon - line);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!*v) return 0;
        if (header_is(line, name_len, "content-length") || header_is(line, name_len, "transfer-encoding") ||
            header_is(line, name_len, "connection") || header_is(line, name_len, "host"))
            return -1; /* framing and routing stay ours, or curl's */
        memcpy(out, line, len);
        memcpy(out + len, "\r\n", 2);
        return (long)len + 2;
    }
    const char *semi = memchr(line, ';', len);
    if (!semi || semi[1]) return -1;
    name_len = (size_t)(semi - line);
    memcpy(out, line, name_len);
    memcpy(out + name_len, ":\r\n", 3);
    return (long)name_len + 3;
}

static bool build_request(h1_call *call, const url_parts *u, const struct curl_slist *headers)
{
    static const char line1[] = "POST ", ver[] = " HTTP/1.1\r\nHost: ", cl[] = "\r\nContent-Length: ";
    char length[24];
    int length_len = snprintf(length, sizeof length, "%zu\r\n", call->body_len);
    size_t size = sizeof line1 - 1 + (u->path_len ? u->path_len : 1) + (u->path[0] == '?') + sizeof ver - 1 +
                  u->authority_len + sizeof cl - 1 + (size_t)length_len + 2;
    /* a line sends at most its length and CRLF ("Name;" becomes "Name:\r\n"): room is sized from
     * the lengths alone, so each line is checked once, as it is written */
    for (const struct curl_slist *h = headers; h; h = h->next)
        size += strlen(h->data) + 2;
    char *r = xmalloc(size), *w = r;
#define PUT(s, n) (memcpy(w, (s), (n)), w += (n))
    PUT(line1, sizeof line1 - 1);
    if (!u->path_len || u->path[0] == '?') PUT("/", 1);
    PUT(u->path, u->path_len);
    PUT(ver, sizeof ver - 1);
    PUT(u->authority, u->authority_len);
    PUT(cl, sizeof cl - 1);
    PUT(length, (size_t)length_len);
    for (const struct curl_slist *h = headers; h; h = h->next) {
        long n = header_out(h->data, w);
        if (n < 0) {
            free(r);
            return false;
        }
        w += n;
    }
    PUT("\r\n", 2);
#undef PUT
    call->request = r;
    call->request_len = (size_t)(w - r);
    return true;
}

/* ---- calls ---------------------------------------------------------------------------------- */

static void on_call_timer_closed(uv_handle_t *handle)
{
    h1_call *call = handle->data;
    h1_client *client = call->client;
    free(call);
    client->handles_open--;
    h1__client_free_if_done(client);
}

static void call_free(h1_call *call)
{
    h1_client *client = call->client;
    if (call->resolve) {
        call->resolve->call = NULL;
        uv_cancel((uv_req_t *)&call->resolve->req);
        call->resolve = NULL;
    }
    if (call->addrs) uv_freeaddrinfo(call->addrs);
    if (call->origin && !--call->origin->refs) h1__origin_free_if_unused(call->origin);
    free(call->request);
    free(call->head_buf);
    free(call->held);
    if (call->prev)
        call->prev->next = call->next;
    else
        client->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    uv_timer_stop(&call->timer);
    if (client->closing || client->nfree_calls >= H1_CALL_POOL_MAX) {
        uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
        return;
    }
    call->next = client->free_calls;
    client->free_calls = call;
    client->nfree_calls++;
}

static h1_call *call_acquire(h1_client *client)
{
    h1_call *call = client->free_calls;
    if (call) {
        client->free_calls = call->next;
        client->nfree_calls--;
        uv_timer_t timer = call->timer;
        memset(call, 0, sizeof *call);
        call->timer = timer;
    } else {
        call = xcalloc(1, sizeof *call);
        uv_timer_init(client->loop, &call->timer);
        client->handles_open++;
    }
    call->timer.data = call;
    call->client = client;
    call->kind = UPSTREAM__H1;
    return call;
}

upstream_call *h1_start(h1_client *client, const upstream_request *req, const upstream_callbacks *callbacks,
                        void *ud, bool *declined)
{
    *declined = false;
    url_parts u;
    if (client->closing) return NULL;
    if (!parse_url(req->url, &u)) {
        *declined = true;
        return NULL;
    }
    h1_call *call = call_acquire(client);
    call->cb = *callbacks;
    call->ud = ud;
    call->body = req->body;
    call->body_len = req->body_len;
    if (!build_request(call, &u, req->headers)) {
        call_free(call);
        *declined = true;
        return NULL;
    }
    call->next = client->calls;
    if (client->calls) client->calls->prev = call;
    client->calls = call;
    call->origin = h1__origin_get(client, u.host, u.host_len, u.port);
    call->origin->refs++;

    uint64_t now = uv_now(client->loop);
    call->connect_ms = req->connect_timeout_ms;
    call->first_byte_ms = req->first_byte_timeout_ms;
    call->idle_ms = req->idle_timeout_ms;
    call->total_ms = req->total_timeout_ms;
    call->retried = req->send_once; /* its one resend counted as used: maybe_retry declines */
    call->connect_deadline = call->connect_ms ? now + call->connect_ms : 0;
    call->first_byte_deadline = call->first_byte_ms ? now + call->first_byte_ms : 0;
    call->total_deadline = call->total_ms ? now + call->total_ms : 0;

    call->starting = true;
    h1_conn *conn = h1__conn_take_idle(call->origin);
    if (conn) {
        conn->call = call;
        call->conn = conn;
        h1__call_send(call);
    } else {
        h1__call_connect(call);
    }
    call->starting = false;
    if (call->start_failed) {
        call_free(call);
        return NULL;
    }
    timer_update(call);
    return (upstream_call *)call;
}

void h1_resume(upstream_call *c)
{
    h1_call *call = (h1_call *)c;
    if (!call->pause_wanted) return;
    call->pause_wanted = false;
    if (!call->paused || call->depth) return; /* inside a callback: the round goes on by itself */
    call->paused = false;
    call->idle_deadline = call->idle_ms ? uv_now(call->client->loop) + call->idle_ms : 0;
    timer_update(call);
    if (drain_held(call) == FEED_STOP) return;
    if (call->conn) h1__conn_read(call->conn, true);
}

void h1_cancel(upstream_call *c)
{
    h1_call *call = (h1_call *)c;
    if (call->cancelled) return;
    call->cancelled = true;
    if (call->depth) return; /* the code that called the callback finishes it */
    call_abort(call);
}

h1_client *h1_client_new(uv_loop_t *loop)
{
    h1_client *client = xcalloc(1, sizeof *client);
    client->loop = loop;
    h1__pool_init(client);
    client->handles_open = 1; /* the sweep timer */
    return client;
}

void h1__client_free_if_done(h1_client *client)
{
    if (client->closing && !client->handles_open) free(client);
}

void h1_client_close(h1_client *client)
{
    client->closing = true;
    while (client->calls)
        call_abort(client->calls);
    while (client->free_calls) {
        h1_call *call = client->free_calls;
        client->free_calls = call->next;
        uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
    }
    client->nfree_calls = 0;
    h1__pool_close(client);
}
