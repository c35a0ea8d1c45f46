/* http_conn.h — HTTP/1.1 client connections: parsing requests, writing responses.
 *
 * The server side of the pipeline. A connection reads and parses one request at a time
 * (http-parser), hands the complete request to the pipeline, and writes what the pipeline
 * answers, either whole (http_respond) or as a chunked stream (http_stream_*). Pipelined
 * requests wait, parsed in order, until the previous response is out. Limits and timeouts
 * (header size 431, body size 413, slow headers 408, idle keep-alive, max connections) are
 * enforced here, before any pipeline stage runs.
 *
 * After http_respond() or http_stream_end() the request is finished: the connection records
 * it (pipeline_record), resets its arena and moves to the next request. The pipeline must not
 * touch the request afterwards. */
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

/* A complete response. extra_headers are ready-made "Name: value\r\n" lines (may be NULL). */
void http_respond(request *req, int status, const char *content_type, const char *extra_headers,
                  size_t extra_len, const char *body, size_t body_len);
/* An error in the client's API shape (req->ingress): OpenAI's
 * {"error":{"message","type","param","code"}} or Anthropic's {"type":"error","error":{…}};
 * type and code are OpenAI-style; code/param may be NULL (written as null). */
void http_respond_error(request *req, int status, const char *type, const char *code, const char *param,
                        const char *message);
/* Starts a chunked response (SSE). */
void http_stream_begin(request *req, int status, const char *content_type, const char *extra_headers,
                       size_t extra_len);
/* Sends one chunk. Returns true when the client is behind (output above the high-water mark):
 * the caller should pause its source until pipeline_on_writable(). */
bool http_stream_write(request *req, const char *data, size_t len);
/* Ends the chunked response: sends data (may be empty) and the terminating chunk together. */
void http_stream_end(request *req, const char *data, size_t len);

/* Calls cb(req) after ms, unless the request ends first (the connection's own timer, which
 * is idle while a request is handled). One at a time; a new call replaces the previous. */
void http_request_timer(request *req, uint32_t ms, void (*cb)(request *req));

/* Case-insensitive header lookup; NULL when absent. */
const http_header *http_find_header(const request *req, const char *name);

#endif
