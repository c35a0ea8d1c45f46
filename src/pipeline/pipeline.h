/* pipeline.h — what happens to a parsed request: the gateway's stages, in one place.
 *
 * The server calls pipeline_handle() with a complete request; the pipeline answers through
 * http_conn.h, now or later (after the upstream). The stages, in order (pipeline.c lists
 * them in this order too):
 *
 *   route     method + path → endpoint (404/405 otherwise); local endpoints answer here
 *   decode    validate the JSON body, read `model` and `stream` (400 otherwise)
 *   plan      model → provider and upstream model (404 model_not_found otherwise)
 *   encode    provider request: URL, headers, the body with only `model` rewritten
 *   attempt   upstream call (streaming, with backpressure)
 *   answer    status/headers/body back to the client, SSE event by event for streams
 *   record    access log line, when the response is done or the client has gone
 */
#ifndef AIGW_PIPELINE_PIPELINE_H
#define AIGW_PIPELINE_PIPELINE_H

#include "server/request.h"

/* Prepares and releases the pipeline's part of a request object (once per connection). */
void pipeline_request_init(request *req);
void pipeline_request_reset(request *req);
void pipeline_request_free(request *req);

/* The API a request path belongs to (its errors take that API's shape). */
wire_format pipeline_ingress_of(const char *path);
/* A complete request is ready. */
void pipeline_handle(request *req);
/* The client's output fell below the low-water mark: resume a paused stream. */
void pipeline_on_writable(request *req);
/* The client went away before the response was done: stop the upstream at once. The
 * request is recorded (status 499) and must not be answered. */
void pipeline_abort(request *req);
/* The response is complete: write the access-log record. */
void pipeline_record(request *req);

#endif
