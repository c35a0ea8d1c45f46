/* exchange.h — types only: one client request as the pipeline's stages see it (the exchange),
 * and the upstream calls made for it (its attempts).
 *
 * The server owns the HTTP request (server/request.h); the pipeline owns the exchange, reached
 * from it through req->app and reused with it across keep-alive. An exchange holds any number
 * of attempts: the walk's retries and fallbacks one after another, a hedge's two at once, a
 * fan-out's N. Each attempt has its target, its encoding (the providers' codec_ctx), its
 * transfer and a sink that receives its head, its events and its end — the stage that made it
 * decides what they become. Small allocations come from the request's arena; the few buffers
 * that grow (a buffered reply, stream framing) are the attempt's and freed with it.
 *
 * Kept types-only so every stage can include it; the functions are in stage.h (what stages
 * call) and attempt.h (attempts). */
#ifndef AIGW_PIPELINE_EXCHANGE_H
#define AIGW_PIPELINE_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "observe/record.h"
#include "providers/provider.h"
#include "routing/routing.h"
#include "server/request.h"
#include "upstream/sse.h"
#include "util/buf.h"

#define PHASES_MAX 9 /* stage.h's stage_phase values */

struct upstream_call;
struct json_t;
struct store_key;
typedef struct pipeline_worker pipeline_worker;
typedef struct exchange exchange;
typedef struct attempt attempt;

/* How an attempt ended, for the stage that made it. */
typedef enum attempt_outcome {
    ATTEMPT_RUNNING,    /* not ended yet */
    ATTEMPT_ANSWERED,   /* a complete reply (any status) or a complete stream */
    ATTEMPT_REFUSED,    /* the provider cannot take the request (local_error): nothing was sent */
    ATTEMPT_FAILED,     /* no usable reply: transport, timeout, refused head (message, failure_status) */
    ATTEMPT_TOO_LARGE,  /* the reply passed limits.max_response_bytes */
    ATTEMPT_STREAM_CUT, /* a stream that had begun failed (in-band error, cut, no end marker) */
    ATTEMPT_STOPPED,    /* cancelled by aigw */
} attempt_outcome;

/* What receives an attempt's reply. All on the worker's loop; none is called after
 * attempt_cancel(). */
typedef struct attempt_sink {
    /* The head arrived and passed aigw's checks (status, pass_headers, content_type,
     * is_stream are set). Return false to end the transfer here: on_end is not called, the
     * attempt is over (ATTEMPT_STOPPED) and the sink has taken care of it. */
    bool (*on_head)(attempt *a);
    /* Client events of a stream (already in the client's format), gathered over one upstream
     * read. Return true when the consumer is behind: the transfer pauses until
     * attempt_resume(). NULL: events gather in a->events until the end. */
    bool (*on_events)(attempt *a, const char *data, size_t len);
    /* The attempt is over (a->outcome says how). A buffered reply is in a->reply; the rest of
     * a stream's events in a->events. The attempt stays valid until the exchange ends. */
    void (*on_end)(attempt *a);
} attempt_sink;

struct attempt {
    exchange *x;
    const attempt_sink *sink;
    void *sink_data; /* the sink's own, per attempt */
    attempt *next;   /* every attempt of the exchange, newest first */

    route_target target;           /* leaf (timeouts, overrides), route (provider + model), path */
    bool internal;                 /* made by a stage for itself (attempt_new_request), not an answer */
    size_t model_start, model_end; /* the model's span in codec.body */
    codec_ctx codec;               /* its encoding: payload, translation state, usage, dropped params */
    provider_request request;      /* URL, headers and body as sent: valid until the transfer ends */
    struct upstream_call *call;
    uint32_t total_timeout_ms; /* of a buffered reply, as sent */

    /* the reply */
    int status;
    bool is_stream; /* a 2xx text/event-stream head */
    const char *content_type;
    const char *pass_headers; /* upstream headers passed to the client, arena */
    size_t pass_headers_len;
    int64_t retry_after_ms;        /* the provider's wait hint, -1 when none */
    const char *const *head_lines; /* the raw head, during on_head only */
    size_t head_nlines;
    buf reply;      /* a buffered reply */
    sse_reader sse; /* stream framing */
    buf events;     /* client events gathered for one write */
    bool stream_done_seen;
    const char *stream_error;           /* the provider's in-band stream error, arena */
    uint64_t start_ns, head_ns, end_ns; /* sent, its head came, it ended (0: not yet) */
    uint8_t span_id[8];                 /* its span: the provider's traceparent names it */
    /* traced requests only, when the formats differ: the request's translation (from, for) and
     * the time spent translating the reply, summed over its events */
    uint64_t encode_start_ns, encode_ns, decode_ns;

    /* the end */
    attempt_outcome outcome;
    attempt_result result;       /* for routing's health (routing.h) */
    int failure_status;          /* ATTEMPT_FAILED: 502 or 504 (408: a Portkey request_timeout) */
    const char *message;         /* why, for the client or the log, arena */
    provider_error *local_error; /* ATTEMPT_REFUSED, arena */
    bool custom_host;            /* the target was a client's custom_host: details stay in the log */
};

typedef struct exchange {
    http_request *http;
    struct pipeline_worker *pw;
    const aigw_config *config;
    arena *arena;

    /* what the request is */
    wire_format ingress; /* the API the client speaks, from the path: errors use its shape */
    int endpoint;        /* endpoint_kind, or -1 for a local endpoint */
    const char *model;   /* the public model name asked for, arena */
    size_t model_len;
    bool model_served; /* the config names it (a route or a served model), not a typed or default one */
    bool stream;
    size_t body_model_start, body_model_end; /* the model's span in the client's body */
    /* a stored prompt template the request names (/v1/prompts/{id}/…, prompt_stage.c): its
     * reference as the path gives it (id[@label|@version], arena), whether only its rendering is
     * asked for, and the version the PROMPT stage chose (for the head and the log) */
    const char *prompt_ref;
    bool prompt_render_only;
    bool prompt_from_header; /* x-aigw-prompt on a chat or messages request */
    const char *prompt_id;   /* the template's id once PROMPT found it, arena */
    long long prompt_version;

    /* who asks (the AUTH stage, auth.c): a gateway key of the store (valid until the request
     * is released), or the master key; neither when auth is off */
    const struct store_key *key;
    bool master_key;
    /* the dashboard's session cookie stood for a key on an /admin/… or /metrics call
     * (ui_stage.c, ACCEPT): that key's digest (arena), read by the admin stage and AUTH when the
     * request's headers carry no key; NULL otherwise */
    const uint8_t *session_digest;
    const char *budget_note;    /* a soft budget passed (budget.c): "key" or "team", for the log */
    bool budget_limited;        /* the key or its team has a hard budget (budget.c) … */
    double budget_left_usd;     /* … and this is what is left of the tighter one, for an auto route */
    record_rejection rejection; /* why a stage refused it (auth, budget, limits), for the metrics */

    /* the trace (trace_stage.c): ids, the client's parent span, whether spans are recorded
     * (sampled) and whether a traceparent goes upstream; tracestate as the client sent it */
    struct {
        uint8_t trace_id[16], span_id[8], parent_id[8];
        bool has_parent, sampled, propagate;
        const char *state;
        /* with tracing.content: the response bytes the client got, up to its max (arena) */
        char *output;
        size_t output_len;
    } trace;
    /* a traced request's time in each phase's stages (on this loop; a stage's wait for another
     * thread or the network is not in it): when the phase began, and how long it ran */
    uint64_t phase_start_ns[PHASES_MAX], phase_ns[PHASES_MAX];

    /* the plan */
    route_walk *walk;
    struct json_t *config_json, *metadata, *params; /* header config, metadata, parsed body */
    route_cache_entry *cache_entry;                 /* the header config's tree, held */
    struct json_t *canonical;                       /* the request in canonical form, on demand */
    struct json_t *shape;                           /* request.* for conditions (plan_router.c) */
    const char *route_reason; /* the router's or auto route's decision, arena (plan_router.c, plan_auto.c) */
    record_decision decision; /* … as facts for the metrics (plan.c, plan_auto.c, plan_external.c) */
    const char *canonical_error; /* … or why it cannot be had, arena */

    /* attempts: every one made, and the one whose reply the client gets */
    attempt *attempts;
    attempt *answer;

    buf spare_reply, spare_events; /* an ended attempt's buffers, kept for the next one */

    /* a reasoning technique (reason_stage.c): read at DECODE from the model's prefix
     * (`moa-gpt-4o-mini`: x->model becomes the rest) or the body's `optillm_approach` (its span
     * here, found by decode.c's scan); once it has run, what its calls add up to, for the
     * response, the record, the limits and the spend: every attempt's usage and cost summed,
     * and each call's walk with the step it served */
    struct {
        int technique;                       /* reasoning_technique (reasoning.h); 0: none */
        const char *name;                    /* its OptiLLM name, for headers and the log; NULL: none */
        size_t approach_start, approach_end; /* the body's optillm_approach value (end 0: absent) */
        bool summed; /* the technique ran: usage and cost below replace the answer's */
        usage_counts usage;
        double cost_usd; /* negative: some call's cost is unknown */
        uint32_t calls;  /* attempts sent */
        route_walk **walks;
        const char **steps;
        size_t nwalks;
    } reasoning;

    /* the response cache (cache_stage.c), for the record: its result ("HIT", "MISS", …; NULL:
     * not asked), and for a hit the stored usage and what the reply had cost */
    struct {
        const char *status;
        bool hit;
        double saved_usd;
        usage_counts usage;
        float similarity; /* a semantic lookup's best match (0: none, or not semantic) */
    } cache;

    /* the response */
    const char *head_lines, *kept_head; /* exchange_set_head's and exchange_keep_head's, arena */
    size_t head_len, kept_head_len;
    const char *error_note; /* why the request failed, for the log */
    uint64_t overhead_ns;   /* aigw's own share before the response's head (add_timing_head) */
    bool overhead_known;    /* … set: a head was sent */
    bool responded;         /* a response has begun: no stage may start another */
    bool aborted;           /* the client left */

    /* the stage machinery (pipeline.c) */
    uint8_t stage;    /* the stage running, or that owns the exchange */
    bool suspended;   /* a stage returned STAGE_AGAIN and has not resumed it */
    uint32_t serial;  /* tells a resume for an earlier request on this connection apart */
    uint32_t tickets; /* exchange_suspend's not yet resumed: the exchange outlives its connection */
    void (*wait_expired)(exchange *x); /* exchange_suspend_bounded's, while its deadline runs */
    void **state;                      /* per-stage state, arena */
} exchange;

#endif
