/* stages.h — inside the pipeline only: the built-in stages, one file each, and what they share.
 *
 * pipeline.c lists them in its stage table by phase: trace_stage.c (OpenTelemetry: the trace
 * context at ACCEPT, spans as an observer), admin_stage.c and accept.c (ACCEPT), auth.c (AUTH),
 * budget.c (ADMIT, and an observer), decode.c (DECODE), plan.c (PLAN), cache_stage.c (CACHE, and
 * response filters), reason_stage.c (DECODE and EXECUTE: reasoning techniques), execute.c (EXECUTE), record.c
 * (the access log, an observer), reqlog_stage.c (the request log in the store, an observer), metrics_stage.c
 * (Prometheus metrics, an observer, and GET /metrics). */
#ifndef AIGW_PIPELINE_STAGES_H
#define AIGW_PIPELINE_STAGES_H

#include "pipeline/stage.h"

/* The PLAN stage's state for one request (plan.c and its parts below): the walk's context, kept
 * while the stage waits for an external router, and an auto route's decision. */
typedef struct plan_state {
    exchange *x;
    route_context ctx;
    const route_tree *tree;
    size_t prompt_tokens; /* counted once (ctx.estimate_tokens), for the ranking and the walk */
    bool counted;
    /* an auto route (plan_auto.c) */
    route_auto_request request;
    route_auto_candidate *candidates; /* the auto node's children, arena */
    uint8_t *order;                   /* … to try, best first (ctx.auto_order) */
    size_t ncandidates, norder;
    uint64_t decide_ns; /* the local decision's time */
    /* the external router (plan_external.c) */
    const route_node *external; /* the tree's node that asks it, or NULL */
    exchange_ticket ticket;
    bool waiting;
    struct upstream_call *call;
    char *answer; /* its reply, at most external_router.max_answer bytes, arena */
    size_t answer_len;
    int status;
    uint64_t external_start_ns;
    const char *external_note; /* what it said, for the decision's text ("chose gpt-4o", "timeout") */
    int external_choice; /* the candidate (a child of external) it named and the rules allow; -1: none */
} plan_state;

/* plan_router.c: the tree of a `router-<name>-<threshold>` model (NULL: not such a name, or no
 * `router:`), and the request's shape and router decision into ctx before the walk starts
 * (false: refused, answered); the router's decision goes to x->route_reason */
const route_tree *plan__router_tree(exchange *x);
bool plan__shape(exchange *x, const route_tree *tree, route_context *ctx);
/* The text of a message's content: a string as it is, or its text parts joined (bounded by max)
 * in the arena; *len its length. */
const char *plan__content_text(exchange *x, const struct json_t *content, size_t max, size_t *len);
/* x->route_reason, and the x-aigw-route-reason line every response head of x carries (after what
 * ADMIT kept: exchange_keep_head replaces, so both go together). */
void plan__keep_reason(exchange *x, const char *text, size_t len);
/* plan_auto.c: the tree's auto node ranked for the request into ps (ctx.auto_order); false:
 * no candidate can serve it, refused (answered). */
bool plan__auto(exchange *x, plan_state *ps);
/* plan_auto.c: the decision's text with the external router's part and the time taken, kept as
 * the route reason; plan.c calls it once the decision is final. */
void plan__auto_reason(exchange *x, plan_state *ps);
/* plan_external.c: asks the external router about ps->external's candidates when the tree has
 * such a node: STAGE_AGAIN while it waits (plan.c's plan__finish and exchange_resume follow its
 * answer, its timeout or its failure); STAGE_NEXT when there is nothing to ask or it could not
 * be asked (ps->external_note says why). */
stage_result plan__external(exchange *x, plan_state *ps);
void plan__external_abort(plan_state *ps);
/* plan.c: the decision made (the external router's choice applied), the reason kept, the walk
 * started. */
void plan__finish(exchange *x, plan_state *ps);

extern const stage stage_accept, stage_decode, stage_plan, stage_execute, stage_accesslog, stage_metrics,
    stage_trace;
/* trace_stage.c: the traceparent (and tracestate) an upstream call carries, added to its
 * request's headers once it is encoded */
void trace_attempt_headers(exchange *x, attempt *a);
/* … and its exporter's counts for GET /metrics: requests' spans exported and dropped (a full
 * queue, or a collector that kept refusing); false, both zero, when tracing is off */
bool trace_stage_counts(uint64_t *exported, uint64_t *dropped);
/* record.c: access-log lines dropped so far (a full queue); metrics_stage.c: GET /metrics */
uint64_t accesslog_stage_dropped(void);
stage_result answer_metrics(exchange *x);
/* metrics_stage.c: the alert rules' state for GET /admin/alerts (observe/alerts.h's
 * alerts_state_json; an empty list without rules), appended to out */
struct buf;
void metrics_stage_alerts_json(struct buf *out);
/* auth.c: the gateway key (AUTH) and the models it may use (after DECODE); accept.c: the local
 * answers that depend on the key (/v1/models, after AUTH); admin_stage.c: the admin API (ACCEPT,
 * answered from the store's thread) */
extern const stage stage_auth, stage_key_models, stage_local, stage_admin, stage_admin_reply;
/* key_route.c: a gateway key's default route (DECODE, before key-models) */
extern const stage stage_key_route;
/* limits_stage.c: rate limits of gateway keys (ADMIT) */
extern const stage stage_limits;
extern const stage stage_prompt_fetch; /* PROMPT: prompt_stage.c, a version the snapshot left out */
extern const stage stage_prompt;       /* PROMPT: prompt_stage.c */
/* ui_stage.c: the dashboard's files, login and session (ACCEPT, before the admin stage) */
extern const stage stage_ui;
/* reqlog_stage.c: the request log (an observer, with the store); its counters for GET /metrics
 * (false, all zero, when the log is off) */
extern const stage stage_reqlog;
typedef struct reqlog_stage_stats {
    uint64_t queued;        /* waiting for the store's thread, every worker's */
    uint64_t dropped_full;  /* left out: a queue was full */
    uint64_t dropped_store; /* left out: the database refused the batch */
    uint64_t written;
} reqlog_stage_stats;
bool reqlog_stage_counts(reqlog_stage_stats *out);
/* cache_stage.c: the response cache (CACHE: a hit answers; its filters store a miss's reply) */
extern const stage stage_cache;
struct cache_backend;
struct cache_backend *cache_stage_backend(void); /* for the metrics' gauges; NULL before start */
struct cache_index *cache_stage_index(void);     /* the semantic index; NULL when not configured */
uint64_t cache_stage_embed_failures(void);       /* semantic lookups whose embedding failed */
/* reason_stage.c: OptiLLM's reasoning techniques — the name (DECODE, before key-route) and the
 * calls (EXECUTE, before the walk) */
extern const stage stage_reason_name, stage_reason;
/* budget.c: budgets checked (ADMIT: 429 budget_exceeded) and spend tallied (its observer) */
extern const stage stage_budget;

struct store_service;
struct access_secret;
/* The store's service and the digest secret while auth is on (auth.c starts them); NULL when
 * auth is off. */
struct store_service *auth_service(void);
/* A refusal of who asks (401: with WWW-Authenticate; 403) in the client's API shape, with
 * x-should-retry: false. */
void auth_refuse(exchange *x, int status, const char *code, const char *param, const char *message);
const struct access_secret *auth_secret(void);
/* Whether the key a client sent (len bytes, found in no key snapshot; digest its digest, or
 * NULL when it was too long to hash) is the master key, under the throttle of wrong keys per
 * client address (access/guess_throttle.h): IS_MASTER, NOT_MASTER (counted against the address,
 * unless the key has a gateway key's shape and the master key has not: a stale gateway key
 * cannot be a guess at it), or THROTTLED (answered: 429 too_many_wrong_keys with Retry-After, in
 * the client's API shape; the key was not compared). Auth must be on. A dashboard session's
 * digest is not asked about here. */
typedef enum auth_master_result {
    AUTH_IS_MASTER,
    AUTH_NOT_MASTER,
    AUTH_THROTTLED,
} auth_master_result;
auth_master_result auth_check_master(exchange *x, const char *key, size_t len, const uint8_t *digest);
/* The gateway key with this digest in the worker's key snapshot (no store I/O), or NULL; the
 * request holds that snapshot until it is released, so the key stays valid as long. For a stage
 * that runs before AUTH (the admin API's). */
struct store_key;
const struct store_key *auth_find_key(exchange *x, const uint8_t digest[32]);
/* The key snapshot the request holds (taken now if it holds none; kept until it is released):
 * its prompt templates for the PROMPT stage. NULL when auth is off (no store). */
const struct key_snapshot *auth_snapshot(exchange *x);
/* The team of the request's gateway key, from the snapshot the key lives in; NULL when the key
 * has no team, its team is not in the store, or there is no key. */
const struct store_team *auth_key_team(exchange *x);
/* Whether the request's key and its team may use the model (no key: yes). */
bool auth_model_allowed(exchange *x, const char *model, size_t len);

/* The secret of the virtual key name for x, from the snapshot x started with (valid until x is
 * released). NOT_ALLOWED: x's gateway key names the virtual keys it may use and not this one. */
typedef enum auth_vkey_result {
    AUTH_VKEY_OK,
    AUTH_VKEY_MISSING,
    AUTH_VKEY_NOT_ALLOWED,
} auth_vkey_result;
auth_vkey_result auth_virtual_key(exchange *x, const char *name, const char **secret, size_t *len);

/* A request refused before any target was chosen still says so: no attempt, the route it was
 * for, and that sending it again unchanged will not help (x-should-retry: false). */
void exchange_refuse(exchange *x, const char *route, int status, const char *code, const char *param,
                     const char *message);

/* The i-th public model name of cfg (0 <= i < ntrees + nroutes): a route's, then each served
 * model's. NULL for an entry already listed under another i (each name is listed once). owner
 * (optional) gets "aigw" for a route, else the provider's name. The strings are cfg's. */
const char *served_model_name(const aigw_config *cfg, size_t i, const char **owner);

/* The worker's upstream client and route cache (pipeline.c keeps them per worker). */
struct upstream_client *pipeline_upstream(struct pipeline_worker *pw);
route_cache *pipeline_route_cache(struct pipeline_worker *pw);
/* The server, for /readyz. */
struct server *pipeline_server(struct pipeline_worker *pw);

#endif
