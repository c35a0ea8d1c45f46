/* request.h — types only: one client request as every pipeline stage sees it.
 *
 * A request lives inside its connection and is reused across keep-alive (h2o's h2o_req_t):
 * its small allocations come from `arena`, reset in one call when the response is done.
 * The server fills the parsed fields; the pipeline (src/pipeline) fills the rest; nothing
 * else writes here. Kept types-only so server and pipeline can include it without a loop. */
#ifndef AIGW_SERVER_REQUEST_H
#define AIGW_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/catalog.h"
#include "providers/wire.h"
#include "routing/routing.h"
#include "upstream/sse.h"
#include "util/arena.h"
#include "util/buf.h"

#define REQUEST_MAX_HEADERS 128
#define REQUEST_ID_MAX 64

struct client_conn;
struct worker;
struct model_route;
struct upstream_call;
struct xlate;
struct json_t;
struct provider_error;

typedef struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
} http_header;

/* What an upstream call's callbacks get: which request, through which of its two slots (a
 * hedged request has two transfers in flight; the slot tells them apart). */
typedef struct call_tag {
    struct request *req;
} call_tag;

typedef struct request {
    struct client_conn *conn;
    struct worker *worker;
    arena arena;

    /* parsed by the server */
    int method;       /* enum http_method of http_parser.h */
    const char *path; /* without the query string; NUL-terminated, in the arena */
    size_t path_len;
    http_header headers[REQUEST_MAX_HEADERS];
    size_t nheaders;
    buf body;
    char id[REQUEST_ID_MAX + 1]; /* x-request-id: the client's, or ours */
    wire_format ingress;         /* the API the client speaks, from the path: errors use its shape */
    uint64_t start_ns;
    size_t bytes_in;

    /* the response, written through http_conn.h */
    int status;
    bool response_started; /* the status line is out: no error page can follow */
    bool chunked;
    size_t bytes_out;
    uint64_t first_byte_ns; /* first response byte to the client, 0 before */

    /* pipeline state (src/pipeline) */
    int endpoint;                                   /* endpoint_kind, or -1 */
    const char *model;                              /* public model name asked for, arena */
    const struct model_route *route;                /* the current attempt's provider + upstream model */
    route_walk *walk;                               /* the way through the route tree, arena */
    route_target target;                            /* the current attempt's target */
    struct json_t *config_json, *metadata, *params; /* header config, metadata, parsed body */
    route_cache_entry *cache_entry;                 /* the header config's tree, held */
    const char *payload;                        /* the body sent: the client's, with override_params merged */
    size_t payload_len, model_start, model_end; /* the model's span in the payload */
    size_t body_model_start, body_model_end;    /* … and in the client's body */
    int64_t retry_after_ms;                     /* the current attempt's wait hint */
    uint64_t attempt_ns;                        /* when the current attempt started */
    uint64_t head_ns;                           /* when its response head arrived */
    int failure;                                /* how the last attempt failed: pipeline.c's enum */
    int failure_status;                         /* … and the status that answers it */
    const char *failure_message;
    struct provider_error *local_error; /* the provider could not take the request, arena */
    const char *route_headers;          /* x-aigw-provider … for the response head, arena */
    size_t route_headers_len;
    bool stream;
    bool stream_done_seen;      /* the upstream's stream reached its end marker */
    struct xlate *xlate;        /* reply translation state (formats differ), arena; NULL: fast path */
    const char *stream_error;   /* the provider's in-band stream error, arena */
    const char *dropped_params; /* comma-separated parameters the provider could not take, arena */
    usage_counts usage;         /* as the provider reported it, normalized to OpenAI's meaning */
    struct upstream_call *upstream;
    call_tag tag[2]; /* ud of the current call: tag[tag_index] */
    int tag_index;
    /* while a hedge runs: the attempt it hedges against, and what attempt_send set for it */
    struct upstream_call *other_call;
    const struct model_route *other_route;
    struct xlate *other_xlate;
    const char *other_dropped;
    uint64_t other_attempt_ns;
    uint32_t attempt_serial, hedge_serial; /* a hedge timer is for one attempt only */
    buf upstream_reply;                    /* buffered non-stream reply */
    sse_reader sse;                        /* stream framing */
    buf stream_out;                        /* events gathered for one client write */
    const char *pass_headers;              /* upstream headers passed to the client, arena */
    size_t pass_headers_len;
    const char *upstream_content_type; /* of a buffered reply, arena */
    const char *error_note;            /* why the request failed, for the access log */
    const char *head_refusal;          /* why the upstream's head was refused (3xx, encoded), arena */
} request;

#endif
