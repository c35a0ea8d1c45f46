/* config.h — the gateway's configuration: what `aigw serve -c FILE` runs on.
 *
 * Loaded once from YAML (libyaml), validated completely (unknown keys, wrong types, values
 * out of bounds, dangling references are all errors naming file:line), then immutable:
 * workers read it without locks. A reload (SIGHUP) builds a new one and swaps a pointer; the
 * old one lives on, reference-counted, until the last request that started on it is done.
 * Every setting is one row of a table in config.c with its bounds and default.
 *
 * config reads the file; the modules above it finish what depends on them, in one sequence
 * (gateway_config_load, src/gateway): config_load(), then providers_prepare() (`type:` to its
 * preset, base URLs, request URLs and static headers), then routing_build() (the route trees
 * and the shared routing state). So config includes only util and its own catalog: the
 * preset and the route types are opaque here, filled in by the modules that own them. */
#ifndef AIGW_CONFIG_CONFIG_H
#define AIGW_CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/catalog.h"
#include "util/arena.h"

struct curl_slist;
struct json_t;
struct provider_preset; /* providers/wire.h; set by providers_prepare() */
struct route_tree;      /* routing/routing.h; built by routing_build() */
struct routing_state;

/* The proxied endpoints. The first ENDPOINT__OPENAI_URLS have a URL under an
 * OpenAI-compatible provider's base_url (provider_config.urls). */
typedef enum endpoint_kind {
    ENDPOINT_CHAT_COMPLETIONS,
    ENDPOINT_COMPLETIONS,
    ENDPOINT_EMBEDDINGS,
    ENDPOINT__OPENAI_URLS,
    ENDPOINT_MESSAGES = ENDPOINT__OPENAI_URLS, /* Anthropic Messages ingress */
    ENDPOINT_COUNT_TOKENS,
    ENDPOINT_RESPONSES, /* OpenAI's Responses API */
} endpoint_kind;

/* Whether a provider is sent OpenAI Responses API requests as they are (`responses:`). */
typedef enum responses_mode {
    RESPONSES_AUTO,      /* as its type documents: OpenAI's own API serves them */
    RESPONSES_NATIVE,    /* base_url/responses takes them: bytes forwarded */
    RESPONSES_TRANSLATE, /* translated to its chat format */
} responses_mode;

typedef struct header_pair {
    char *name, *value;
} header_pair;
void config_free_headers(header_pair *headers, size_t n);
/* "Name: value" lines of n pairs (malloc'd, as is each line), as libcurl and the exporters take
 * them; config_free_lines frees them. */
char **config_header_lines(const header_pair *headers, size_t n);
void config_free_lines(char **lines, size_t n);

/* `tracing:` — OpenTelemetry spans sent as OTLP/HTTP, protobuf or JSON (observe/trace.h). Off
 * without an endpoint. */
/* `tracing.content:` — the bodies a traced request's span carries (off by default). */
typedef struct trace_content_settings {
    bool on;
    size_t max_bytes; /* `max:` each body cut here (default 16k) */
    char **redact; /* `redact:` JSON member names whose values are hidden (the request log's default list) */
    size_t nredact;
} trace_content_settings;

typedef struct tracing_settings {
    char *endpoint;       /* e.g. http://127.0.0.1:4318/v1/traces; NULL: no spans are made */
    header_pair *headers; /* sent with each POST (a collector's key) */
    size_t nheaders;
    double sample_ratio; /* of traces that start here; a client's sampled flag decides for its own */
    char *service_name;  /* NULL: "aigw" */
    int queue_max;       /* requests' span sets waiting to be sent */
    uint32_t batch_delay_ms, timeout_ms;
    bool json; /* `protocol: http/json`; else http/protobuf (OTLP's default) */
    trace_content_settings content;
} tracing_settings;

typedef struct provider_config {
    char *name;
    char *type;                           /* `type:` as written ("openai" when not given) */
    int type_line;                        /* where it was written, for providers_prepare's message */
    const struct provider_preset *preset; /* from type: wire format, key style, rules */
    char *base_url;                       /* without trailing slash; the preset's when not given */
    char *api_version;                    /* Azure's api-version */
    char *api_key;                        /* NULL: the client's own Authorization is forwarded */
    char *api_key_env;                    /* the ${VAR} it came from when unset, for messages */
    int api_key_line;                     /* where api_key was written */
    char *virtual_key;                    /* `virtual_key:` the store's credential by name, or NULL */
    int virtual_key_line;
    header_pair *headers;
    size_t nheaders;
    char **models;
    size_t nmodels;
    bool any_model; /* no `models:` list: serves any model asked as `type/model` (passed through) */
    responses_mode responses;
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    uint32_t total_timeout_ms;         /* a non-stream reply, from request to last byte */
    char *urls[ENDPOINT__OPENAI_URLS]; /* base_url + path, by providers_prepare (OpenAI format) */
    struct curl_slist *static_headers; /* by providers_prepare; read-only for curl afterwards */
    int line;
} provider_config;

/* max_tokens sent to a provider that requires one (Anthropic) when the client gave none. */
#define CONFIG_DEFAULT_MAX_OUTPUT_TOKENS 4096

/* What a public model name resolves to. */
typedef struct model_route {
    char *public_name;
    const provider_config *provider;
    char *upstream_model;
    size_t upstream_model_len;
    bool is_alias;
    uint32_t max_output_tokens;    /* sent as max_tokens where the provider requires one */
    const catalog_entry *catalog;  /* prices and limits; NULL when the catalog has no entry */
    const struct route_tree *tree; /* the tree a request for it walks (shared by equal names) */
    size_t order;                  /* position in the file, to keep equal names in order */
} model_route;

#define ROUTE_MAX_ATTEMPTS 32 /* the most routing.max_attempts may allow (its default: 6) */

/* HTTP statuses 100…599 as a bitmap. */
typedef struct status_set {
    uint64_t bits[10];
} status_set;

static inline bool status_set_has(const status_set *s, int status)
{
    return status >= 0 && status < 640 && (s->bits[status / 64] >> (status % 64)) & 1;
}

typedef struct retry_policy {
    uint32_t attempts;                    /* retries after the first try (Portkey's retry.attempts) */
    status_set on;                        /* statuses that are retried */
    bool use_retry_after;                 /* wait what the provider asks (Retry-After and friends) */
    uint32_t base_delay_ms, max_delay_ms; /* full-jitter exponential backoff */
    uint32_t max_wait_ms;                 /* a provider asking for longer is not retried */
} retry_policy;

/* Settings of the config file's `routing:` section (ints where the config table writes ints). */
typedef struct routing_settings {
    retry_policy retry; /* defaults for aigw's routes and implicit single-provider routes */
    int budget_percent, budget_min_retries; /* retries ≤ max(min, percent × requests) */
    uint32_t budget_window_ms;
    int breaker_failures, breaker_rate_pct, breaker_min_requests, breaker_probes;
    uint32_t breaker_window_ms, breaker_cooldown_ms;
    int max_attempts;     /* upstream requests per client request, retries/fallbacks/hedges included */
    char **allowed_hosts; /* URL prefixes, normalised (url_normalize), for custom_host / api_key */
    size_t nallowed_hosts;
} routing_settings;

/* routing's defaults, before the file's `routing:` section is applied. */
void config_routing_defaults(routing_settings *s);

/* A `routes:` entry as the file writes it, for routing_build(): the route's name, the rest of
 * the entry as JSON (the schema header configs are written in too) and its line. */
typedef struct route_source {
    char *name;
    struct json_t *json; /* without `name`; kept with the config: trees point into it */
    int line;
} route_source;

/* `auth:` — who may use the gateway (docs/access.md). No `auth:` at all: no client is asked for
 * a key (a non-loopback `listen` is then refused at start); `auth: off`: the same, said on
 * purpose; a mapping: every request needs a gateway key from the store or the master key. */
typedef enum auth_mode {
    AUTH_UNSET,
    AUTH_OFF,
    AUTH_ON,
} auth_mode;

/* `auth.limits:` — where rate limits are counted (docs/access.md). */
typedef enum limits_backend_kind {
    LIMITS_BACKEND_MEMORY, /* this process's table (default) */
    LIMITS_BACKEND_REDIS,  /* one Redis shared by every instance */
} limits_backend_kind;

typedef struct limits_settings {
    limits_backend_kind backend;
    char *redis;         /* `redis:`: redis://HOST:PORT[/DB] or unix:PATH[?db=N] */
    uint32_t timeout_ms; /* `timeout:`: the longest a request waits for Redis (default 50ms) */
    bool fail_closed;    /* `on_redis_error: closed`: refuse what cannot be counted (default open) */
} limits_settings;

typedef struct auth_settings {
    auth_mode mode;
    limits_settings limits; /* `limits:` */
    char *master_key;       /* `master_key:` expanded; NULL when not given or its variable is unset */
    char *master_key_env;   /* the ${VAR} it named when unset, for the warning */
    char *store_path;       /* `store:`: a SQLite file resolved beside the config (default aigw.db), or a
                               PostgreSQL connection string (${VAR}s expanded; it may hold a password) */
    char *secret;           /* `secret:` expanded (the digest key's source), or NULL */
    char *secret_file;      /* `secret_file:` resolved, or NULL: both NULL = STORE.secret, made once */
    char *vault_key;        /* `vault_key:` expanded (virtual keys' master secret), or NULL */
    char *vault_key_env;    /* the ${VAR} it named when unset, for the message */
    char *vault_key_file;   /* `vault_key_file:` resolved, or NULL */
    int line;
} auth_settings;

/* `alerts:` — rules over the metrics, notified through a webhook (observe/alerts.h). */
typedef struct alert_rule_config {
    char *name;
    int kind;         /* alert_kind: 0 error_rate, 1 ttfb_p95, 2 breaker_open, 3 budget */
    char *provider;   /* NULL: every provider */
    char *key, *team; /* budget: whose (NULL: every key and team) */
    double above;     /* the threshold: a fraction, or seconds */
    uint32_t window_ms;
    int min_requests;
    int line;
} alert_rule_config;

typedef struct alerts_config {
    alert_rule_config *rules;
    size_t nrules;
    char *webhook_url; /* NULL: log lines only */
    bool slack;        /* `format: slack`: {"text": …}; else the generic object */
    header_pair *headers;
    size_t nheaders;
    uint32_t min_interval_ms, timeout_ms;
} alerts_config;

/* `request_log:` — every request kept in the store, queryable through the admin API
 * (store/request_log.h, pipeline/reqlog_stage.c; docs/observability.md). Parsed by
 * config_request_log.c. */
typedef enum request_log_mode {
    REQUEST_LOG_UNSET, /* not written: on when `auth:` gives a store, else off */
    REQUEST_LOG_OFF,
    REQUEST_LOG_ON,
} request_log_mode;

typedef struct request_log_settings {
    request_log_mode mode;
    long long retention_ms;  /* `retention:` rows older are deleted (default 7d); 0: kept */
    long long max_rows;      /* `max_rows:` the oldest past this are deleted (default 1,000,000); 0: none */
    uint32_t trim_every_ms;  /* `trim_every:` how often retention runs (default 1m) */
    uint32_t batch_delay_ms; /* `batch_delay:` how long a worker's batch waits for more (250ms) */
    int queue_max;           /* `queue:` per worker, requests waiting for the store's thread (10,000) */
    bool bodies;             /* `bodies: on`: the client's request body is kept (default off) */
    size_t body_max_bytes;   /* `body_max:` a longer body is not kept (default 64k) */
    char **redact;           /* `redact:` JSON member names whose values a kept body hides */
    size_t nredact;
    int line;
} request_log_settings;

/* `cache:` — the response cache (src/cache, docs/cache.md). Without the section the memory
 * backend still serves the requests whose route or request config asks for caching, with
 * these defaults. */
typedef enum cache_backend_kind {
    CACHE_BACKEND_MEMORY, /* this process, shared by its workers */
    CACHE_BACKEND_REDIS,  /* one Redis every instance shares: a connection per worker */
} cache_backend_kind;

typedef enum cache_namespace_kind {
    CACHE_NAMESPACE_KEY,    /* per gateway key (the master key its own); default */
    CACHE_NAMESPACE_TEAM,   /* per team (a key without a team: its own) */
    CACHE_NAMESPACE_SHARED, /* one namespace for every caller: an explicit choice */
} cache_namespace_kind;

typedef struct cache_settings {
    bool configured; /* the file has a `cache:` section */
    cache_backend_kind backend;
    size_t max_bytes;       /* the whole cache, entries' overhead counted (default 64 MiB) */
    size_t max_entry_bytes; /* one reply; a larger one is not stored (default 1 MiB) */
    uint32_t ttl_ms;        /* an entry's life when the request sets no max_age (default 1 h) */
    cache_namespace_kind namespace_kind;
    bool default_simple; /* `mode: simple`: every chat request is cached unless a route says off */
    /* `redis:` (backend redis): where, how long a lookup may wait, the keys' prefix */
    struct {
        char url[300];
        uint32_t timeout_ms; /* default 100 ms; past it the request goes on uncached */
        char prefix[64];     /* default "aigw:cache:" */
    } redis;
    /* `semantic:` — the index `mode: semantic` asks (docs/cache.md) */
    struct {
        char embedding_model[257]; /* a model the config serves; "" : mode semantic is exact only */
        double threshold;          /* cosine similarity a hit needs (default 0.95) */
        int max_entries;           /* the index's bound in entries (default 10,000) */
        size_t max_bytes;          /* … and in bytes (default 64 MiB) */
        int dimensions;            /* sent as `dimensions` to the embedding model; 0: not sent */
        size_t max_text_bytes;     /* a longer last user turn is not embedded (default 8 KiB) */
    } semantic;
    int line;
} cache_settings;

/* `router:` — the learned strong/weak router (src/router, docs/routing.md: "Learned router").
 * Parsed by config_router.c; the model itself is loaded by the load sequence (gateway.c), which
 * config cannot reach: config holds it as an opaque pointer and frees it with model_free. */
typedef struct router_target_config {
    char *provider; /* a provider's name in this file */
    char *model;    /* the upstream model */
} router_target_config;

typedef struct router_settings {
    bool configured;
    char *model_file; /* `model_file:` as written (beside the config); NULL: the model built into aigw */
    router_target_config strong, weak;
    char **aliases; /* `aliases:` more names `router-<name>-…` answers to (RouteLLM's mf, …) */
    size_t naliases;
    bool external; /* `external:` router-<name>-… asks the external_router first */
    int line;
    struct router_model *model;                 /* loaded by gateway_config_load */
    void (*model_free)(struct router_model *m); /* how config_free releases it */
} router_settings;

/* `external_router:` — a model-select service that an auto or router strategy with `external:
 * true` asks first (Not Diamond's model_select shape: POST messages and the candidates, the
 * chosen provider and model back; docs/routing.md "External router"). Parsed by
 * config_router.c; asked by pipeline/plan_external.c. */
#define EXTERNAL_ROUTER_TIMEOUT_MAX_MS 1000    /* the hard cap of `timeout:` */
#define EXTERNAL_ROUTER_ANSWER_MAX (64 * 1024) /* the hard cap of `max_answer:` */
#define EXTERNAL_ROUTER_PROMPT_MAX (256 * 1024)
typedef struct external_router_settings {
    char *url;            /* http:// or https://; NULL: no external router */
    char *api_key;        /* sent as `Authorization: Bearer`; NULL: none */
    char *api_key_env;    /* the ${VAR} it named when unset, for the message */
    char *preference_id;  /* sent as Not Diamond's preference_id (a custom router); NULL: none */
    header_pair *headers; /* more request headers */
    size_t nheaders;
    uint32_t timeout_ms;     /* the whole call, connect included (default 150 ms) */
    size_t max_answer_bytes; /* a longer answer is not read (default 16 KiB) */
    size_t max_prompt_bytes; /* the messages' text sent, newest kept (default 32 KiB) */
    int line;
} external_router_settings;

/* `prompts:` — prompt templates and partials kept in files (docs/prompts.md, "Prompt files").
 * Parsed by config_prompts.c; the directory is read by the load sequence (gateway.c, through
 * src/prompts, which config cannot reach), so a reload re-reads it. */
typedef struct prompts_settings {
    char *dir; /* `dir:` as written (beside the config when relative); NULL: no prompt files */
    int max_files;
    int line;
    struct prompt_set *set;                   /* loaded by gateway_config_load */
    void (*set_free)(struct prompt_set *set); /* how config_free releases it */
} prompts_settings;

#define CONFIG_SOURCE_MAX (4 * 1024 * 1024)

typedef struct aigw_config {
    atomic_int refs; /* config_retain / config_release; config_load returns it at 1 */
    char *path;
    char *source; /* the file's text as loaded (NUL-terminated; at most CONFIG_SOURCE_MAX bytes) */
    size_t source_len;
    char *listen_host;
    int listen_port;
    int workers;
    size_t max_header_bytes, max_body_bytes, max_response_bytes;
    size_t responses_store_bytes;    /* the Responses API's store of recent responses; 0: off */
    uint32_t responses_store_ttl_ms; /* … how long one is kept */
    int max_connections;
    uint32_t header_read_timeout_ms, keepalive_idle_timeout_ms, drain_timeout_ms;
    uint32_t request_body_timeout_ms; /* the whole body, however steadily it trickles in */
    /* How long a request waits on the store's thread: a prompt version read by number
     * (prompt-fetch), and an admin API operation. Past it: 503 store_timeout. */
    uint32_t store_timeout_ms, admin_timeout_ms;
    char *access_log; /* "stdout", "stderr", "off" or a file path */
    provider_config *providers;
    size_t nproviders;
    model_route *routes; /* sorted by public_name for bsearch */
    size_t nroutes;
    char *catalog_path; /* `catalog:`, entries added to or overriding the embedded catalog */
    catalog catalog;
    routing_settings routing;    /* `routing:` */
    route_source *route_sources; /* `routes:`, sorted by name (no name twice) */
    size_t nroute_sources;
    char *default_route_name; /* `default_route:` as written, or NULL */
    int default_route_line;
    auth_settings auth;                       /* `auth:` */
    tracing_settings tracing;                 /* `tracing:` */
    alerts_config alerts;                     /* `alerts:` */
    request_log_settings request_log;         /* `request_log:` */
    cache_settings cache;                     /* `cache:` */
    router_settings router;                   /* `router:` */
    external_router_settings external_router; /* `external_router:` */
    prompts_settings prompts;                 /* `prompts:` */
    bool log_json; /* `log_format: json`: the gateway's events as JSON lines (util/log.h) */

    /* Built by routing_build() from the above; config only frees them. */
    struct routing_state *health;                 /* breakers, budgets, latency: shared by the workers */
    void (*health_free)(struct routing_state *s); /* how config_free releases it */
    struct route_tree **trees;                    /* trees[i] is route_sources[i]'s */
    size_t ntrees;
    const struct route_tree *default_route; /* for models nothing else serves */
    arena arena;                            /* the trees */
} aigw_config;

/* Reads and validates path: the first step of gateway_config_load(), which the gateway and its
 * tests use (the config is not ready to serve until providers and routing have done their part).
 * On success returns a config the caller frees with config_free(); on failure returns NULL and
 * writes every mistake found into err, one "file:line: message" a line in the file's order
 * (at most 50, then "and N more mistakes"; as many whole lines as errlen holds). */
aigw_config *config_load(const char *path, char *err, size_t errlen);
/* Frees cfg and everything in it, including what providers_prepare() and routing_build()
 * attached. NULL is accepted. */
void config_free(aigw_config *cfg);
/* Reference counting across threads (a reload swaps configs while requests are in flight):
 * config_retain takes one more reference and returns cfg; config_release drops one and frees
 * the config, from whichever thread drops the last. Both take NULL. The count is the only
 * thing ever written in a loaded config, hence the const parameters. */
const aigw_config *config_retain(const aigw_config *cfg);
void config_release(const aigw_config *cfg);

/* Writes "file:line: message" for a mistake at line of cfg's file into err, the way every
 * load step reports — as one more line when err already holds a mistake of this load (the
 * load sequence starts it empty); returns false so a step can `return config_error_at(…)`. */
bool config_error_at(const aigw_config *cfg, int line, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Whether host (a `listen:` host) names only this machine: localhost, 127.0.0.0/8 or ::1. */
bool config_host_is_loopback(const char *host);
/* Serving cfg as it is would expose the provider keys to anyone who reaches it: a `listen:`
 * that is not loopback with no `auth:` section. False with a message that says how to add
 * auth (or say `auth: off`) in err. */
bool config_exposure_ok(const aigw_config *cfg, char *err, size_t errlen);

/* Looks up a public model name (not NUL-terminated); NULL when no provider serves it. */
const model_route *config_find_model(const aigw_config *cfg, const char *name, size_t len);
/* A `type/model` name (LiteLLM's spelling: `openai/gpt-4o-mini`; not NUL-terminated): the
 * providers whose `type:` is the part before the first slash and that serve the rest — it is in
 * their `models:`, or they have no `models:` list — in the config's order, at most max of them
 * into out. Returns how many (0: no slash, or no such provider); *model_offset is where the
 * model starts in name. Exact names (config_find_route, config_find_model) come first: this
 * is for names nothing else serves. */
size_t config_find_typed(const aigw_config *cfg, const char *name, size_t len, const provider_config **out,
                         size_t max, size_t *model_offset);
/* Fills r for provider p serving model under public_name: catalog entry and output limit
 * looked up, is_alias when the two names differ. Strings are borrowed, not copied. */
void config_route_fill(const aigw_config *cfg, model_route *r, const provider_config *p,
                       const char *public_name, const char *model);

/* The tree of a route of `routes:` by name (not NUL-terminated); NULL when there is none or
 * the trees are not built. */
const struct route_tree *config_find_route(const aigw_config *cfg, const char *name, size_t len);

#endif
