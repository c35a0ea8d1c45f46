/* record.h — types only: what an observer learns of one finished request.
 *
 * The pipeline fills an exchange_record when a request is done (answered, failed, or left by
 * its client) and hands it to each observer (the access log today; metrics, traces, usage and
 * budgets later). It is immutable and complete, and valid only during the call: an observer
 * copies what it keeps, never blocks, and allocates nothing on the loop beyond its own queue.
 * Plain values and strings only, so observers depend on nothing but this file. */
#ifndef AIGW_OBSERVE_RECORD_H
#define AIGW_OBSERVE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One upstream attempt (or a target skipped without one). */
typedef struct record_attempt {
    const char *provider, *model, *path;
    const char
        *outcome;     /* "ok", "error_status", "timeout", "connect_error", "broken", "skipped", "cancelled" */
    const char *note; /* why it was skipped or not retried, or NULL */
    const char *role; /* "first", "retry" (the same target again), "fallback", "hedge" */
    const char *step; /* a reasoning technique's step this call served ("propose", "rate", …), or NULL */
    int status;       /* 0: none */
    double ms, wait_ms;
    bool skipped;
} record_attempt;

/* One upstream call as sent (skipped targets are not calls), oldest first: for traces. */
typedef struct record_call {
    const char *provider, *provider_type, *model; /* the config's name, its type, the upstream model */
    uint64_t start_ns, end_ns;                    /* monotonic; end 0: it never ended */
    int status;                                   /* 0: no response */
    const char *outcome;                          /* as record_attempt's */
    const uint8_t *span_id;                       /* 8 bytes: the span the provider got as its parent */
    /* the formats differed: the request's translation (start 0: none) and the reply's, summed */
    uint64_t encode_start_ns, encode_ns, decode_ns;
    const char *ingress; /* the client's API ("openai", "anthropic", "responses") */
} record_call;

/* Time a traced request spent in one phase's stages on its loop: for traces. */
typedef struct record_phase {
    const char *name; /* "auth", "admit", "decode", "prompt", "routing", "cache" */
    uint64_t start_ns, ns;
    size_t name_len; /* 0: not known (strlen) — the exporter need not count a literal's length */
} record_phase;

typedef struct record_usage {
    long prompt, completion, cached, cache_write, reasoning;
    bool seen;
} record_usage;

/* Why aigw refused a request itself — who asks, what it may use, its budget or its rate limits —
 * before any provider saw it: a fixed set, so a metric can be labelled by it (metrics.c names
 * them). REJECT_NONE: not refused for any of these. */
typedef enum record_rejection {
    REJECT_NONE,
    REJECT_AUTH_MISSING,     /* 401: no key */
    REJECT_AUTH_INVALID,     /* 401: an unknown key */
    REJECT_AUTH_DISABLED,    /* 401: a disabled key */
    REJECT_AUTH_EXPIRED,     /* 401: an expired key */
    REJECT_AUTH_THROTTLED,   /* 429: too many wrong keys from the address, or from all (guess_throttle.h) */
    REJECT_FORBIDDEN_MODEL,  /* 403: a model the key (or its team) may not use */
    REJECT_FORBIDDEN_CONFIG, /* 403: a request config from a key limited to some models */
    REJECT_FORBIDDEN_VIRTUAL_KEY,  /* 403: a virtual key the key may not use */
    REJECT_FORBIDDEN_ADMIN,        /* 403: the admin API or /metrics without the rank for it */
    REJECT_TEAM_BLOCKED,           /* 403: the key's team is blocked */
    REJECT_BUDGET,                 /* 429: the key's or its team's budget is spent */
    REJECT_RATE_LIMIT_REQUESTS,    /* 429: a requests-per-minute or -per-day limit */
    REJECT_RATE_LIMIT_TOKENS,      /* 429: a tokens-per-minute or -per-day limit */
    REJECT_RATE_LIMIT_UNAVAILABLE, /* 503: limits could not be checked (on_redis_error: closed) */
    REJECT_COUNT
} record_rejection;

/* How PLAN chose a route's target (docs/routing.md), for metrics: each a fixed set, so a metric
 * can be labelled by it (metrics.c names them). */
typedef enum record_side {
    SIDE_NONE,   /* not a router's decision */
    SIDE_STRONG, /* the learned router's first target */
    SIDE_WEAK,   /* … its second */
} record_side;

/* Why an auto route had no candidate to offer: the request was refused. */
typedef enum record_no_candidate {
    NO_CANDIDATE_NONE,
    NO_CANDIDATE_ADEQUATE, /* 400 no_adequate_candidate: the hard rules left none */
    NO_CANDIDATE_BUDGET,   /* 429 budget_exceeded: the key's budget kept every priced one out */
} record_no_candidate;

/* What asking the external router came to (plan_external.c maps each of its reasons to one). */
typedef enum record_external {
    EXTERNAL_NONE,         /* not asked for this request (no such node, or the client left first) */
    EXTERNAL_USED,         /* it named a candidate sent, which the walk tries first */
    EXTERNAL_TIMEOUT,      /* no whole answer within external_router.timeout */
    EXTERNAL_ERROR,        /* a status other than 200, a transport failure, a call that could not start */
    EXTERNAL_INVALID,      /* an answer over max_answer, not JSON, or without a model */
    EXTERNAL_NO_CANDIDATE, /* an answer naming no candidate sent */
    EXTERNAL_NOT_ASKED,    /* the hard rules left one candidate: nothing to ask */
    EXTERNAL_COUNT
} record_external;

/* One target chosen by a strategy: its provider's and model's names as the route's config gives
 * them (model NULL: the client's model is sent), or, for a child that is a strategy of its own
 * (no provider), its name (NULL: none). */
typedef struct record_choice {
    bool made;
    record_side side;
    const char *provider, *model, *name;
} record_choice;

typedef struct record_decision {
    /* the route's name as the config names it ("router-<name>" for a router-<name>-<threshold>
     * model); NULL: no route was chosen */
    const char *route;
    bool client_config; /* the route is a request's own config (a header): its names are the client's */
    record_choice auto_choice, router_choice; /* an auto node's pick, a router node's */
    record_no_candidate no_candidate;
    record_external external;
} record_decision;

typedef struct exchange_record {
    const char *request_id;
    const char *method; /* "-" when the request line was not read */
    const char *path;   /* "" when not read */
    size_t path_len;
    const char *model;                     /* the public model asked for; NULL before the body was read */
    bool model_served;                     /* … and it is a name the config serves (a route or a model) */
    const char *provider, *upstream_model; /* of the attempt that answered; NULL: none */
    size_t upstream_model_len;
    const char *ingress; /* the client's API when it is not OpenAI's ("anthropic"), else NULL */
    int status;          /* 499: the client left first */
    size_t bytes_in, bytes_out;
    uint64_t start_ns, first_byte_ns, end_ns; /* monotonic; first_byte_ns 0: nothing was sent */
    bool stream;
    record_usage usage;
    double cost_usd;   /* negative: unknown */
    const char *route; /* the route tree walked; NULL: none */
    const record_attempt *attempts;
    size_t nattempts;
    const char *route_note;     /* how the walk chose, when it has something to say */
    const char *route_reason;   /* the learned router's decision (x-aigw-route-reason), or NULL */
    const char *prompt_id;      /* the prompt template used (x-aigw-prompt, /v1/prompts/…), or NULL */
    long long prompt_version;   /* … and its version */
    const char *dropped_params; /* comma-separated, or NULL */
    const char *error;          /* why the request failed, or NULL */
    /* who asked (gateway auth), never the key itself: NULL when unknown or auth is off */
    const char *key_id, *key_alias, *team, *user;
    record_rejection rejection; /* why aigw refused it, if it did */
    /* whose soft budget this request's key was over when it started ("key", "team"), or NULL */
    const char *soft_budget_exceeded;
    /* the trace, when this request's spans are recorded (NULL otherwise): 16 and 8 bytes; the
     * parent is the client's span (NULL when the trace began here) */
    const uint8_t *trace_id, *span_id, *parent_span_id;
    const char *provider_type; /* of the attempt that answered */
    const record_call *calls;
    size_t ncalls;
    const record_phase *phases; /* the phases that did work, in order */
    size_t nphases;
    /* the trace the request belongs to whether or not its spans are recorded (the client's
     * traceparent, or aigw's own with `tracing:`): 16 bytes, NULL when none */
    const uint8_t *any_trace_id;
    int64_t overhead_us; /* aigw's own time before the response's head (x-aigw-overhead-us); -1: no head */
    const char *request_body; /* the client's body as received (not NUL-terminated) */
    size_t request_body_len;
    /* the response bytes the client got, as far as a traced request keeps them (tracing.content;
     * else NULL): a JSON body, or a stream's SSE text */
    const char *response_body;
    size_t response_body_len;
    /* the response cache: "HIT", "MISS", "SEMANTIC_HIT", "REFRESH", "BYPASS", or NULL when it
     * was not asked; a hit's cost_usd is 0 and cache_saved_usd what the stored reply had cost */
    const char *cache;
    double cache_saved_usd;
    /* the reasoning technique that answered ("moa", …; NULL: none): usage and cost are then the
     * sum of its calls, and attempts lists every call's, each with its step */
    const char *technique;
    /* the routing decisions PLAN made: an auto route's or the learned router's pick, an auto
     * route's refusal, the external router's outcome */
    record_decision decision;
} exchange_record;

#endif
