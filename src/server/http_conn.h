/* http_conn.h — HTTP/1.1 client connections: parsing requests, writing responses.
 *
 * The server layer. A connection reads and parses one request at a time (http-parser for the
 * head, its own strict framing for the body), hands the complete request to the application
 * it serves (server.h's http_app: the pipeline), and writes what the application answers,
 * either whole (http_respond) or as a chunked stream (http_stream_*). Pipelined requests
 * wait, parsed in order, until the previous response is out. Limits and timeouts (header size
 * 431, body size 413, slow headers 408, idle keep-alive, max connections) are enforced here,
 * before the application sees the request; their error bodies are the application's to shape
 * (http_app.on_error).
 *
 * After http_respond() or http_stream_end() the request is finished: the connection tells the
 * application (http_app.on_done), resets the arena and moves to the next request. The
 * application must not touch the request afterwards. */
#ifndef AIGW_SERVER_HTTP_CONN_H
#define AIGW_SERVER_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "server/request.h"
#include "server/worker.h"

/* Client output above this pauses the upstream; below the low mark it resumes. */
#define HTTP_OUTPUT_HIGH_WATER (256 * 1024)
#define HTTP_OUTPUT_LOW_WATER (64 * 1024)

/* Accepts one connection from the worker's listener. */
void http_conn_accept(worker *w, uv_stream_t *listener);
/* Starts draining: idle connections close now; busy ones close after their response. */
void http_conn_drain(worker *w);
/* Closes every connection at once (drain timeout, shutdown). */
void http_conn_close_all(worker *w);
/* Runs connections that hold buffered pipelined requests or a deferred close. */
void http_conn_run_ready(worker *w);

/* A complete response. extra_headers are ready-made "Name: value\r\n" lines (may be NULL);
 * req->head_extra follows them. */
void http_respond(http_request *req, int status, const char *content_type, const char *extra_headers,
                  size_t extra_len, const char *body, size_t body_len);
/* Starts a chunked response (SSE). */
void http_stream_begin(http_request *req, int status, const char *content_type, const char *extra_headers,
                       size_t extra_len);
/* Sends one chunk. Returns true when the client is behind (output above the high-water mark):
 * the caller should pause its source until http_app.on_writable. */
bool http_stream_write(http_request *req, const char *data, size_t len);
/* Ends the chunked response: sends data (may be empty) and the terminating chunk together. */
void http_stream_end(http_request *req, const char *data, size_t len);

/* Calls cb(req) after ms, unless the request ends first (the connection's own timer, which
 * is idle while a request is handled). One at a time; a new call replaces the previous. */
void http_request_timer(http_request *req, uint32_t ms, void (*cb)(http_request *req));
/* Stops the timer http_request_timer started, when it has not fired yet (nothing otherwise). */
void http_request_timer_stop(http_request *req);

/* Case-insensitive header lookup; NULL when absent. */
static inline const http_header *http_find_header(const http_request *req, const char *name)
{
    return http_header_find(req->headers, req->nheaders, name);
}

#endif
