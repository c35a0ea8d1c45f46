/* request.h — types only: one HTTP request as the server parsed it, and its response's state.
 *
 * A request lives inside its connection and is reused across keep-alive (h2o's h2o_req_t):
 * its small allocations come from `arena`, reset in one call when the response is done. The
 * server fills every field here; the application it serves (the pipeline) reads them, answers
 * through http_conn.h, and keeps its own state behind `app` (src/pipeline's exchange), which
 * the server never looks into. Kept types-only so both sides can include it. */
#ifndef AIGW_SERVER_REQUEST_H
#define AIGW_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/headers.h"

#define REQUEST_MAX_HEADERS 128
#define REQUEST_ID_MAX 64

struct client_conn;
struct worker;
struct aigw_config;

typedef struct http_request {
    struct client_conn *conn;
    struct worker *worker;
    /* the config this request runs on, from its first byte to its log line: a counted
     * reference the server takes and drops (http_conn.c); a reload does not change it */
    const struct aigw_config *config;
    arena arena;
    void *app; /* the application's per-request state (made by http_app.request_init) */

    /* parsed by the server */
    int method;       /* enum http_method of http_parser.h; -1 when the request line was not read */
    const char *path; /* without the query string; NUL-terminated, in the arena */
    size_t path_len;
    const char *query; /* after '?' without the fragment, NUL-terminated in the arena; "" when none */
    const http_header
        *headers; /* nheaders of them, in the arena (a connection holds none between requests) */
    size_t nheaders;
    buf body;
    char id[REQUEST_ID_MAX + 1]; /* x-request-id: the client's, or ours */
    uint64_t start_ns;
    size_t bytes_in;
    /* the client's address, read once when its connection was accepted (uv_tcp_getpeername):
     * IPv6, or IPv4 as ::ffff:a.b.c.d; all zero when it could not be read. The peer of the TCP
     * connection: behind a proxy, the proxy's (nothing a client sends, X-Forwarded-For included,
     * is taken for it) */
    uint8_t client_addr[16];

    /* the response, written through http_conn.h */
    int status;
    bool response_started; /* the status line is out: no error page can follow */
    bool chunked;
    size_t bytes_out;
    uint64_t first_byte_ns; /* first response byte to the client, 0 before */
    /* "Name: value\r\n" lines every response head to this request carries (the application's:
     * the route taken, the request id under another name), or NULL */
    const char *head_extra;
    size_t head_extra_len;
} http_request;

#endif
