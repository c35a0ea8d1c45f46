/* routing.h — where a request goes, and what happens when a target fails.
 *
 * A route is a tree (Portkey's config schema, which aigw's own uses too): inner nodes have a
 * strategy — single, fallback (children in order), loadbalance (weighted, least busy, or
 * latency-aware) or conditional (first matching condition over metadata.* and params.*, in
 * Portkey configs also url.pathname, else the default) — and leaves name a provider of the
 * config file. Nodes carry retry, request_timeout, override_params and on_status_codes, which
 * children inherit and may override (a Portkey config's `retry` replaces the inherited one
 * whole); everything is resolved when the tree is built, so the request path only reads.
 *
 * Trees come from the config file (`routes:`, built at load, immutable and shared by every
 * worker), or per request from the `x-aigw-config` / `x-portkey-config` headers (JSON, built
 * in the request's arena; a header naming a stored route uses the file's tree).
 *
 * A walk (route_walk, in the request's arena) is the state of one request's way through its
 * tree: route_first() gives the first target, route_next() the next one after a failure —
 * a retry of the same target (after a backoff the caller waits for) or a fallback — or NULL
 * when the answer is final. Health (circuit breakers, retry budgets, latency, outstanding
 * requests, rate-limit headers) is per target, shared by all workers (health.c), and every
 * strategy skips a target whose breaker is open. Semantics as tables: docs/routing.md. */
#ifndef AIGW_ROUTING_ROUTING_H
#define AIGW_ROUTING_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/arena.h"

struct json_t;

#define ROUTE_MAX_DEPTH 8
#define ROUTE_MAX_CHILDREN 64
#define ROUTE_MAX_LEAVES 256 /* in one tree: what a header config can make aigw consider */

/* ROUTE_ROUTER: the learned strong/weak router (docs/routing.md, "Learned router"): two targets, the
 * strong one first; the pipeline scores the request (src/router) and the walk takes the child it
 * chose, falling back to the other one as a fallback node would.
 * ROUTE_AUTO: an "auto" route's candidates (docs/routing.md, "Auto routes"): leaves with a model;
 * the pipeline ranks them for the request (route_auto_rank: hard rules, then the node's
 * objective) and the walk takes them in that order, as a fallback node takes its children. */
typedef enum route_mode {
    ROUTE_SINGLE,
    ROUTE_FALLBACK,
    ROUTE_LOADBALANCE,
    ROUTE_CONDITIONAL,
    ROUTE_ROUTER,
    ROUTE_AUTO
} route_mode;
/* What an auto node optimises among the candidates the hard rules leave. */
typedef enum route_objective {
    OBJECTIVE_COST,     /* the lowest estimated cost of the request */
    OBJECTIVE_LATENCY,  /* the lowest expected time: time to first byte, then output at the measured rate */
    OBJECTIVE_QUALITY,  /* the highest `quality` the operator gave the candidate */
    OBJECTIVE_BALANCED, /* the mean of the three, each scaled to the best candidate's */
} route_objective;
typedef enum route_balance { BALANCE_WEIGHTED, BALANCE_LEAST_BUSY, BALANCE_LATENCY } route_balance;

typedef struct target_health target_health;

typedef struct route_condition {
    struct json_t *query; /* {"metadata.x": {"$eq": …}, "$or": […]} */
    int child;            /* index of the target named by `then` */
} route_condition;

/* One override parameter: its name, and its value as compact JSON text (ready to splice). */
typedef struct route_param {
    const char *key, *value;
} route_param;

typedef struct route_node route_node;
struct route_node {
    route_mode mode;
    route_balance balance;
    uint32_t hedge_ms; /* fallback: start the next target after this long without a first byte */
    bool hedge_p95;    /* … after the current target's p95 time to first byte */
    const char *name;  /* `name`, or NULL */
    char label[24];    /* the child's name or index, for x-aigw-route */
    uint32_t weight;   /* ×1000 of Portkey's weight (default 1 → 1000) */
    route_node *children;
    size_t nchildren;
    route_condition *conditions;
    size_t nconditions;
    int default_child;       /* conditional: -1 when there is no default */
    double router_threshold; /* router: strong when the score is at least this; -1: by router_percent */
    double router_percent;   /* router: the share of prompts for strong, calibrated; -1: by threshold */
    bool external;           /* router, auto: ask the config's external_router first (config file only) */
    /* auto: the objective and the constraints a candidate must meet */
    route_objective objective;
    double quality_floor;   /* candidates whose quality is below it are not used; 0: none */
    double max_cost_usd;    /* a candidate whose estimated cost passes it is not used; < 0: none */
    uint32_t output_tokens; /* output expected when the request sets no max_tokens */
    double quality;         /* a candidate (a leaf of an auto node): 0..1, the operator's rating */
    const char *display;    /* a candidate: its name, else provider/model (the decision's text) */

    /* resolved with inheritance */
    retry_policy retry;
    status_set fallback_on;       /* a child's failure with one of these moves to the next child */
    bool fallback_on_any;         /* Portkey's default: any non-2xx */
    uint32_t request_timeout_ms;  /* 0: none */
    const route_param *overrides; /* merged override_params without `model` */
    size_t noverrides;

    /* leaves */
    const struct provider_config *provider;
    const char *model;   /* upstream model, or NULL: the client's */
    const char *api_key; /* inline key (allowed hosts only) */
    const char *custom_host;
    target_health *health;           /* when the model is known at build time */
    const struct model_route *route; /* an implicit route's own, with its catalog entry */

    /* smooth weighted round robin of a stored loadbalance node: the children's order, as
     * nginx's algorithm produces it, computed once; position = a shared counter */
    uint16_t *sequence;
    size_t sequence_len;
    uint64_t *cursor; /* atomic */
};

/* A `$regex` condition's pattern, compiled once when its tree is built (PCRE2, in the tree's
 * arena), found by the JSON string it was written as. */
#define ROUTE_MAX_REGEXES 64           /* in one tree */
#define ROUTE_REGEX_MAX_PATTERN 256    /* bytes of a pattern */
#define ROUTE_REGEX_MAX_SUBJECT 4096   /* bytes a pattern is run on; a longer value does not match */
#define ROUTE_REGEX_MATCH_LIMIT 100000 /* PCRE2 match() calls for one search (~1 ms) */
#define ROUTE_REGEX_DEPTH_LIMIT 1000
#define ROUTE_REGEX_HEAP_LIMIT_KIB 256
struct pcre2_real_code_8;
struct pcre2_real_match_context_8;
typedef struct route_regex {
    const struct json_t *pattern;
    struct pcre2_real_code_8 *code;
} route_regex;

/* A config's `cache` block (Portkey's {mode, max_age}, at any level of the tree): the first one
 * met, root first and then depth first, is the request's — the cache is asked before a target
 * is chosen (docs/cache.md). */
typedef enum route_cache_mode {
    ROUTE_CACHE_UNSET,    /* no block: the config file's `cache.mode` decides */
    ROUTE_CACHE_OFF,      /* `mode: off` (aigw's configs): not cached, whatever the default */
    ROUTE_CACHE_SIMPLE,   /* exact match */
    ROUTE_CACHE_SEMANTIC, /* exact, then the semantic index (exact only without cache.semantic) */
} route_cache_mode;

#define ROUTE_CACHE_MAX_AGE_MAX (90u * 86400u) /* seconds: Portkey's documented maximum */

typedef struct route_cache_policy {
    route_cache_mode mode;
    uint32_t max_age_s; /* 0: the config file's cache.ttl */
} route_cache_policy;

typedef struct route_tree {
    const char *name;         /* the route's name: a public model, a stored config, or the header's */
    route_cache_policy cache; /* its `cache` block, if any */
    route_node root;
    bool portkey;             /* Portkey's defaults (fallback on any non-2xx) */
    bool needs_params;        /* a condition reads params.*: the body must be parsed */
    bool needs_metadata;      /* a condition reads metadata.* */
    bool needs_shape;         /* a condition reads request.* (the request's shape: tools, turns, size…) */
    const route_node *router; /* the tree's router node (at most one), or NULL */
    const route_node *auto_node; /* the tree's auto node (at most one), or NULL */
    bool client;       /* a request's own config (a header): its request_timeouts are the client's */
    bool virtual_keys; /* a target is one of the store's virtual keys (not a provider of the config) */
    uint64_t virtual_keys_version; /* … as they were when it was built */
    const route_regex *regexes;
    size_t nregexes;
    struct pcre2_real_match_context_8 *match_context; /* the limits every search runs under */
} route_tree;

/* Whether a URL normalised by url_normalize() (util/url.h) is under one of the settings' allowed_hosts
 * prefixes: the same scheme, host and port, and a path equal to the prefix's or below it ("/v1" allows "/v1"
 * and "/v1/x", not "/v10"). */
bool route_url_allowed(const routing_settings *s, const char *normalized);

/* ---- the config's trees (build.c) ------------------------------------------------------------ */

/* What route trees need from the providers module, which routing does not include (both sit
 * on config; neither includes the other): the load sequence hands these in. */
typedef struct routing_providers {
    /* A preset by the name a provider's `type:` uses; NULL when there is none. */
    const struct provider_preset *(*preset_find)(const char *type);
    /* A provider at a request config's custom_host and/or with its inline api_key, in a:
     * providers_derive() (providers/prepare.h), whose contract holds. */
    const provider_config *(*derive)(arena *a, const provider_config *base,
                                     const struct provider_preset *preset, const char *base_url,
                                     const char *api_key);
    /* The store's virtual keys, for request configs' `virtual_key` and "@name" when no provider
     * of the config has the name (NULL: none): the provider type and base URL (NULL: the
     * type's) of the one named, copied into a; and a version that moves whenever they may
     * have changed (a kept tree that used one is built again then). */
    bool (*virtual_key)(arena *a, const char *name, const char **type, const char **base_url);
    uint64_t (*virtual_keys_version)(void);
} routing_providers;

/* The third step of the load sequence (gateway_config_load), after config_load() and
 * providers_prepare(): the shared routing state (cfg->health, which keeps providers for the
 * header configs built later), the tree of each served model, the tree of each `routes:`
 * entry, default_route resolved. providers must outlive cfg. Returns false with
 * "file:line: message" in err (a route's own mistakes as "route 'NAME': field: …"); cfg is
 * then only fit for config_free(), which frees what this attached. */
bool routing_build(aigw_config *cfg, const routing_providers *providers, char *err, size_t errlen);

/* ---- building trees (tree.c) ---------------------------------------------------------------- */

/* Whether a `$regex` pattern is accepted: at most ROUTE_REGEX_MAX_PATTERN bytes, and PCRE2
 * (UTF mode) compiles it within its own bounds on compiled size and nesting. */
bool route_regex_valid(const char *pattern);

/* The message for a config header that is not valid JSON: the character position and a
 * reason, never an excerpt of the text (it may hold an inline api_key). */
struct json_error_t;
void route_json_error(const struct json_error_t *e, char *err, size_t errlen);

typedef struct routing_state routing_state;

/* Builds a tree from its JSON form (aigw's and Portkey's schema). All allocations come from
 * a. A shared tree (the config's routes, a worker's kept header configs) serves many requests:
 * its load-balancing nodes get a round-robin order and position; a tree for one request
 * balances by weighted random. client: the config came with a request (a header), so what it
 * sets is the client's doing (walk.c keeps its timeouts out of shared health). Returns NULL with a message
 * naming the bad field
 * ("targets[1].retry.attempts: …") in err. */
route_tree *route_tree_build(arena *a, const struct aigw_config *cfg, routing_state *state,
                             const struct json_t *json, const char *name, bool portkey, bool shared,
                             bool client, char *err, size_t errlen);
/* Header configs, built once per worker (tree.c): the tree of the config text (its exact
 * bytes), found or built and kept, against the one config the cache is bound to (the first
 * one it is given, then the one of route_cache_reset). *entry holds it for the request: give it back with
 * route_cache_release() when the request ends. NULL with *entry NULL: invalid (message in
 * err, which is then non-empty) or not kept (too large, or every entry in use; err empty):
 * the caller builds it for the request alone. */
typedef struct route_cache route_cache;
typedef struct route_cache_entry route_cache_entry;
route_cache *route_cache_new(void);
void route_cache_free(route_cache *c);
const route_tree *route_cache_get(route_cache *c, const struct aigw_config *cfg, const char *text, size_t len,
                                  const char *name, bool portkey, route_cache_entry **entry, char *err,
                                  size_t errlen);
void route_cache_release(route_cache_entry *e);
/* A reload: the trees kept were built against the old config. Those no request holds are
 * freed now, held ones when their last route_cache_release comes. From here on the cache
 * keeps trees for cfg only; route_cache_get with another config (a request that began before
 * the reload) returns NULL with err empty: built for that request alone. */
void route_cache_reset(route_cache *c, const struct aigw_config *cfg);

/* The tree of a public model served directly by providers (or aliases): one leaf, or when
 * several providers serve the name, a fallback over them in the config's order. */
route_tree *route_tree_for_model(arena *a, const struct aigw_config *cfg, routing_state *state,
                                 const struct model_route *routes, size_t n);
/* The tree of a `type/model` name (config_find_typed: `openai/gpt-4o-mini` to the providers of
 * type openai serving gpt-4o-mini, or serving any model), built in a for one request: one leaf,
 * or a fallback over several providers in the config's order, as route_tree_for_model. The
 * upstream is asked for the part after the slash. NULL when no provider serves the name.
 * Portkey's model catalog spelling `@NAME/model` is one too: the provider of the config named
 * NAME, else the store's virtual key NAME (routing_providers.virtual_key), asked for model. */
route_tree *route_tree_for_typed_model(arena *a, const struct aigw_config *cfg, routing_state *state,
                                       const char *name, size_t len);

/* The tree of a `router-<name>-<threshold>` model name (plan.c) or of the load's check
 * (gateway.c): a router node over the config's `router.strong` and `router.weak` targets, with
 * threshold (0..1) or, when threshold < 0, percent (0..100 % of prompts for strong), built in a
 * for one request. NULL with a message in err when the config has no `router:` section or a
 * target names no provider. */
route_tree *route_tree_for_router(arena *a, const struct aigw_config *cfg, routing_state *state,
                                  const char *name, double threshold, double percent, char *err,
                                  size_t errlen);

/* ---- shared health (health.c) ---------------------------------------------------------------- */

/* A registry for settings (copied); providers is kept for the trees built on it (NULL only
 * where no tree is built on the state, as in health's own tests). */
routing_state *routing_state_new(const routing_settings *settings, const routing_providers *providers);
void routing_state_free(routing_state *state);
/* The health of a target: provider name (or custom host) + model; created on first use.
 * After routing_state_seal() (the config is loaded) NULL when the registry is full or the
 * names are long: the caller then keeps a scratch health for the one request. */
target_health *routing_health(routing_state *state, const char *provider, const char *model);
void routing_state_seal(routing_state *state);
/* A reload: carries what `old` knows about each target over to `fresh`, the new config's
 * state, for the targets `same_target(provider, ud)` says did not change (the key is
 * provider name + model, so the caller answers for the provider: same base URL, same type).
 * Copied: breaker state and windows, retry budget, latency EWMA, times to first byte, stream
 * throughput, rate limit marks and the provider's remaining counts. Not copied: the in-flight
 * count and half-open probe slots, which belong to attempts still running on old and are given
 * back there. Targets missing in fresh are
 * created in it, within its registry bound. old may still be in use by other threads (each
 * target is copied under its lock); fresh must not be in use yet. */
void routing_state_adopt(routing_state *fresh, routing_state *old,
                         bool (*same_target)(const char *provider, void *ud), void *ud);
/* What one target looks like now, for metrics. */
typedef struct routing_target_view {
    const char *provider, *model;
    const char *breaker; /* "closed", "open", "half_open" */
    int breaker_state;   /* 0, 1, 2: the same */
    int in_flight;
    double ewma_ms; /* latency to the response head; 0: never measured */
} routing_target_view;
/* Calls fn for each target the config names (targets client requests named are not listed:
 * their number is the clients' choice). Any thread; fn must not call back into routing. */
void routing_state_each(routing_state *s, void (*fn)(void *ud, const routing_target_view *v), void *ud);

/* An operator's reset (POST /admin/breakers/reset): the breakers of the targets matching
 * provider and model (NULL: any) closed, their failure counts and rate window cleared. Any
 * thread. Returns how many were not closed before. */
size_t routing_state_reset_breakers(routing_state *state, const char *provider, const char *model);

/* ---- the walk (walk.c) --------------------------------------------------------------------- */

typedef enum attempt_result {
    ATTEMPT_OK,        /* 2xx */
    ATTEMPT_STATUS,    /* an HTTP error status */
    ATTEMPT_TIMEOUT,   /* connect, first byte, idle or request_timeout */
    ATTEMPT_CONNECT,   /* refused, unreachable, TLS */
    ATTEMPT_BROKEN,    /* reset or cut mid-response */
    ATTEMPT_SKIPPED,   /* not sent: breaker open, rate-limited, prompt over the context window */
    ATTEMPT_CANCELLED, /* ended by aigw (the client left): neither success nor failure */
} attempt_result;

/* What the caller learned from one attempt. */
typedef struct attempt_report {
    attempt_result result;
    int status;
    uint64_t ttfb_us;       /* time to the response head; 0 when none came */
    int64_t retry_after_ms; /* the provider's wait hint, -1 when none */
    bool local;             /* failed inside aigw (nothing sent): says nothing about the target */
    /* a successful stream: its output tokens and the time from its head to its end, the
     * target's output rate (0: not measured) */
    uint64_t output_tokens, stream_us;
} attempt_report;

/* Everything a walk needs from the request. */
typedef struct route_context {
    arena *arena;
    routing_state *state;
    const struct aigw_config *config;
    const char *model;             /* the client's model */
    const struct json_t *metadata; /* x-aigw-metadata / x-portkey-metadata, or NULL */
    const struct json_t *params;   /* the parsed body when the tree needs_params, or NULL */
    const struct json_t *shape;    /* the request's shape when the tree needs_shape (request.*), or NULL */
    int router_choice;             /* the tree's router node: 0 strong, 1 weak, -1 not decided */
    const uint8_t *auto_order;     /* the tree's auto node: its children to try, best first */
    size_t auto_n;                 /* … how many (0 with auto_order NULL: not ranked, the config's order) */
    const char *path;              /* the request's path without its query (a Portkey condition's
                                    * url.pathname), or NULL */
    uint64_t *rng;
    size_t prompt_bytes;                 /* the body's size, for the context-window check */
    size_t (*estimate_tokens)(void *ud); /* the prompt's tokens, asked only past bytes / 4 */
    void *estimate_ud;
} route_context;

typedef struct route_attempt_log route_attempt_log;
struct route_attempt_log {
    const char *provider, *model, *path;
    attempt_result result;
    int status;
    double ms, wait_ms;
    const char *why; /* skipped or not retried: why */
    bool retry;      /* a retry of the target before (after its backoff) */
    bool hedge;      /* started while the attempt before still ran (a hedge) */
    route_attempt_log *next;
};

typedef struct route_walk route_walk;

/* One target to send to. */
typedef struct route_target {
    const route_node *leaf;
    const struct model_route *route; /* provider + upstream model (+ catalog), arena or shared */
    const char *path;                /* for x-aigw-route: "smart/1/0" */
    uint32_t wait_ms;                /* wait this long before sending (a retry's backoff) */
    bool retry;                      /* a retry of the previous target */
    bool send_once; /* one attempt is one request: the transport must not send it again on a new
                     * connection when a reused one fails (Portkey configs: Portkey sends once) */
} route_target;

/* Starts a walk (nothing chosen yet). */
route_walk *route_walk_new(const route_context *ctx, const route_tree *tree);
/* A new walk through w's tree for the same request (its context, the router's decision): a
 * fan-out's branch, which retries and falls back on its own. */
route_walk *route_walk_fresh(const route_walk *w);
/* The next target: the first when nothing was tried, then after each failure reported with
 * route_report(). Returns false when the walk is over: the last attempt's answer is final,
 * or nothing could be sent (route_unavailable, route_error say why). */
bool route_next(route_walk *w, route_target *out);
/* Marks the start of the attempt on the target route_next gave (health: outstanding,
 * probes). Returns false when its breaker no longer admits it: report ATTEMPT_SKIPPED. */
bool route_begin(route_walk *w, const route_target *t);
/* The outcome of the attempt on the current target. In a Portkey config, a timeout at the
 * deadline of the target's request_timeout is Portkey's 408: its retry and fallback
 * on_status_codes lists match it as that status (aigw's own configs: a timeout, retried and
 * fallen back on always). */
void route_report(route_walk *w, const attempt_report *r);
/* The status the last reported attempt ended with as the walk judged it: the provider's
 * status for ATTEMPT_STATUS, 408 for a Portkey config's request_timeout (above), else 0. The
 * caller answers a walk that ends on that timeout with it (aigw's own configs: 504). */
int route_last_status(const route_walk *w);

/* Hedging (a fallback node's strategy.hedge): after route_begin, how long to wait for the
 * first byte before asking the next target too (0: no hedge). When that time has passed,
 * route_hedge_next() gives that target and makes it the current attempt; the one it hedges
 * against becomes the "other". Whichever answers first wins. The other losing: report it with
 * route_report_other() (ATTEMPT_CANCELLED, or its failure). The current losing (or failing
 * first): route_report() it, then route_resume_other() makes the other current again. No
 * retries follow a hedge; a fallback continues after the hedge's target. */
uint32_t route_hedge_delay(route_walk *w);
bool route_hedge_next(route_walk *w, route_target *out);
void route_report_other(route_walk *w, const attempt_report *r);
void route_resume_other(route_walk *w);

/* Reads a response head's rate-limit and retry headers into the health of the current target
 * (or, during a hedge, the other one); returns the retry hint in ms (-1 when none). lines are
 * "Name: value". */
int64_t route_note_headers(route_walk *w, bool other, int status, const char *const *lines, size_t nlines);

/* After the walk: the number of attempts sent, the paths tried ("smart/0, smart/1"; the
 * route's name when nothing was sent, as for a 503 with every breaker open), the attempt log, and why nothing
 * was sent when that is the case (every breaker open: the message and the ms until the first half-opens). */
uint32_t route_attempts(const route_walk *w);
const char *route_tree_name(const route_walk *w);
/* The tree the walk goes through (its cache policy, its flags). */
const route_tree *route_walk_tree(const route_walk *w);
const char *route_paths(const route_walk *w);
const route_attempt_log *route_log(const route_walk *w);
const char *route_unavailable(const route_walk *w, int *status, uint32_t *retry_in_ms);
const char *route_error(const route_walk *w); /* a 400 for the client (no condition matched) */
/* Something the access log should say about how the walk chose, or NULL: a `$regex` condition
 * that was not run to its end (its value over ROUTE_REGEX_MAX_SUBJECT bytes, or a PCRE2
 * limit hit) and was therefore taken as not matching. A fixed sentence. */
const char *route_note(const route_walk *w);

/* ---- auto routes (auto.c) -------------------------------------------------------------------- */

#define ROUTE_AUTO_DEFAULT_OUTPUT 256 /* output tokens expected when neither request nor node says */
#define ROUTE_AUTO_REASON_MAX 1024    /* bytes of the decision's text (x-aigw-route-reason) */

/* Why a candidate is not used for a request (the hard rules, in the order they are checked), or
 * AUTO_USABLE. */
typedef enum route_auto_verdict {
    AUTO_USABLE,
    AUTO_CONTEXT,      /* the prompt is larger than its context window */
    AUTO_TOOLS,        /* the request offers tools; its catalog entry says it takes none */
    AUTO_VISION,       /* … images */
    AUTO_JSON_SCHEMA,  /* … a JSON schema for the output */
    AUTO_REASONING,    /* … a reasoning effort or thinking budget */
    AUTO_QUALITY,      /* its quality is below the node's quality_floor */
    AUTO_MAX_COST,     /* its estimated cost passes the node's max_cost */
    AUTO_BUDGET,       /* … or what is left of the gateway key's budget */
    AUTO_BREAKER,      /* its breaker admits no request now */
    AUTO_RATE_LIMITED, /* the provider said it has nothing left, or fewer tokens than the prompt */
} route_auto_verdict;

/* One candidate as the scoring sees it: what the config, the catalog and the target's live
 * statistics say, then what the scoring made of it. */
typedef struct route_auto_candidate {
    const char *label; /* the target's name, else provider/model (the config's) */
    double quality;    /* 0..1; < 0: not given (the objective does not read it) */
    bool known;        /* the catalog has an entry: context and capabilities are checked */
    uint32_t context;  /* tokens; 0: unknown */
    uint32_t capabilities;
    bool priced;
    double input_price, output_price; /* USD per million tokens */
    bool admits;                      /* its breaker admits a request */
    bool limited;                     /* the provider said it has nothing left until a reset */
    double ttfb_ms;                   /* peak-EWMA time to first byte; 0: never measured */
    double tokens_per_s;              /* its streams' output rate; 0: never measured */
    uint32_t requests, failures;      /* in the breaker's window */
    double headroom;                  /* the provider's remaining / limit; < 0: unknown */
    int64_t tokens_left;              /* the provider's remaining tokens; < 0: unknown */
    /* results */
    route_auto_verdict verdict;
    double cost_usd;   /* estimated for this request; < 0: unknown (no price) */
    double latency_ms; /* expected; < 0: not measured */
    double score;      /* 0..1, the higher first; 0 when not usable */
} route_auto_candidate;

/* What the request asks of a candidate (pipeline/plan_auto.c reads it from the body, cheaply). */
typedef struct route_auto_request {
    uint64_t prompt_tokens;  /* estimated: the body's bytes / 4 */
    uint64_t counted_tokens; /* the text counted (only when bytes / 4 passes a context window); 0: not */
    uint64_t output_tokens;  /* the request's max_tokens, else the node's output_tokens */
    uint32_t needs;          /* CAP_* the request uses */
    double budget_left_usd;  /* what the gateway key (and its team) may still spend; < 0: no budget */
} route_auto_request;

/* The scoring itself, pure (no clock, no lock, no allocation): each candidate's verdict by the
 * hard rules, its estimated cost and latency, its score under node's objective (the objective's
 * measure scaled to the best usable candidate's, × (1 − failures / (requests + 4)) over the
 * breaker's window — one failure does not sink a target —, × a rate-limit headroom
 * factor that falls from 1 at 10 % left to ½ at nothing left), and the order to try them in: the
 * usable ones by score (ties: the cheaper, then the config's order; under objective cost, the
 * higher quality first), then those only a breaker or the provider's rate limit keeps out (the
 * walk checks them again: a half-open breaker may admit a probe, a limited target is used when
 * nothing else can be). Returns how many are in order (at most n ≤ ROUTE_MAX_CHILDREN). */
size_t route_auto_score(const route_node *node, const route_auto_request *req, route_auto_candidate *c,
                        size_t n, uint8_t *order);

/* The tree's auto node ranked for one request: its candidates read from the catalog and their
 * shared health, then route_auto_score. req->counted_tokens is filled through ctx's
 * estimate_tokens when the body's bytes / 4 passes some candidate's context window. c and order
 * have room for ROUTE_MAX_CHILDREN. Returns how many are in order. */
size_t route_auto_rank(const route_context *ctx, const route_tree *tree, route_auto_request *req,
                       route_auto_candidate *c, uint8_t *order);

/* A verdict in a few words ("context window", "no tools", "circuit open"). */
const char *route_auto_verdict_name(route_auto_verdict v);

/* The decision as text into out (at most outlen - 1 bytes, NUL-terminated, cut at a candidate's
 * boundary with " …" and how many were left out): the objective, the tokens assumed, then each
 * candidate in order — chosen first — with its score, estimated cost, time to first byte and
 * error rate, then those excluded with why. Names come from the config; control characters
 * cannot be in them (tree.c refuses them). Returns the length written. */
size_t route_auto_describe(const route_node *node, const route_auto_request *req,
                           const route_auto_candidate *c, size_t n, const uint8_t *order, size_t norder,
                           char *out, size_t outlen);

#endif
