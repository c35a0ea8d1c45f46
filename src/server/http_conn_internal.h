/* http_conn_internal.h — the connection object, shared by the files of the HTTP/1.1 server.
 *
 * Internal to src/server: http_conn.c runs the connection's state machine (reading, parsing,
 * the request's lifecycle, closing) and http_response.c writes the responses onto it. Both
 * need the same struct; nothing outside src/server includes this header (they see the
 * request through request.h and the calls of http_conn.h). */
#ifndef AIGW_SERVER_HTTP_CONN_INTERNAL_H
#define AIGW_SERVER_HTTP_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "server/http_body.h"
#include "server/http_conn.h"
#include "util/buf.h"

typedef enum conn_state { CONN_IDLE, CONN_READING, CONN_HANDLING } conn_state;

/* Where a header's name and value are in `head` (which may move as it grows); uint32_t is
 * plenty: limits.max_header_bytes is at most 1 MiB. */
typedef struct header_offsets {
    uint32_t name_off, name_len, value_off, value_len;
} header_offsets;

typedef struct client_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    worker *w;
    http_parser parser;
    http_request req;
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
    bool head_complete;     /* http-parser has read a whole head; the body is ours to read */
    bool http10;            /* the request said HTTP/1.0: keep-alive must be said in the reply */
    http_body_reader body;  /* the body's framing, once the head is parsed (http_body.c) */
    uint64_t body_deadline; /* ns: the whole body must have arrived by then */
    int error_status;       /* set by a parser callback that refused the http_request */
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
    void (*request_timer_cb)(http_request *req); /* the timer's use while HANDLING */
    struct client_conn *prev, *next, *next_ready;
} client_conn;

static inline client_conn *conn_of(const http_request *req)
{
    return req->conn;
}

/* Writes bufs to the client: what the socket takes now goes at once, the rest is copied into
 * one write request. A failure marks the connection to close on the next loop turn (never
 * closes it here). Nothing is written once the connection is closing. */
void http_conn__write(client_conn *c, uv_buf_t *bufs, unsigned nbufs);

/* The response is complete: tells the application (on_done), resets the request and moves the
 * connection to its next request, or closes it once its output is out. */
void http_conn__request_finished(client_conn *c);

/* A stream's output is above the high mark: starts (once) the timer that closes the connection
 * if the client does not read within the keep-alive idle timeout; retries and hedges are over
 * once a stream has begun, so the request's own timer is dropped. */
void http_conn__watch_stall(client_conn *c);

#endif
