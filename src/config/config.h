/* config.h — the gateway's configuration: what `aigw serve -c FILE` runs on.
 *
 * Loaded once from YAML (libyaml), validated completely (unknown keys, wrong types, values
 * out of bounds, dangling references are all errors naming file:line), then immutable:
 * workers read it without locks. A reload (later) builds a new one and swaps a pointer.
 * Every setting is one row of a table in config.c with its bounds and default. */
#ifndef AIGW_CONFIG_CONFIG_H
#define AIGW_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/catalog.h"
#include "providers/wire.h"
#include "routing/routing.h"
#include "util/arena.h"

struct curl_slist;

/* The proxied endpoints. The first ENDPOINT__OPENAI_URLS have a URL under an
 * OpenAI-compatible provider's base_url (provider_config.urls). */
typedef enum endpoint_kind {
    ENDPOINT_CHAT_COMPLETIONS,
    ENDPOINT_COMPLETIONS,
    ENDPOINT_EMBEDDINGS,
    ENDPOINT__OPENAI_URLS,
    ENDPOINT_MESSAGES = ENDPOINT__OPENAI_URLS, /* Anthropic Messages ingress */
    ENDPOINT_COUNT_TOKENS,
} endpoint_kind;

typedef struct header_pair {
    char *name, *value;
} header_pair;

typedef struct provider_config {
    char *name;
    const provider_preset *preset; /* from `type:` (default openai): wire format, key style, rules */
    char *base_url;                /* without trailing slash; the preset's when not given */
    char *api_version;             /* Azure's api-version */
    char *api_key;                 /* NULL: the client's own Authorization is forwarded */
    char *api_key_env;             /* the ${VAR} it came from, for messages */
    header_pair *headers;
    size_t nheaders;
    char **models;
    size_t nmodels;
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    uint32_t total_timeout_ms;         /* a non-stream reply, from request to last byte */
    char *urls[ENDPOINT__OPENAI_URLS]; /* base_url + path, built at load (OpenAI format) */
    struct curl_slist *static_headers; /* built at load; read-only for curl afterwards */
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
    uint32_t max_output_tokens;   /* sent as max_tokens where the provider requires one */
    const catalog_entry *catalog; /* prices and limits; NULL when the catalog has no entry */
    const route_tree *tree;       /* the tree a request for it walks (shared by equal names) */
    size_t order;                 /* position in the file, to keep equal names in order */
} model_route;

typedef struct aigw_config {
    char *path;
    char *listen_host;
    int listen_port;
    int workers;
    size_t max_header_bytes, max_body_bytes, max_response_bytes;
    int max_connections;
    uint32_t header_read_timeout_ms, keepalive_idle_timeout_ms, drain_timeout_ms;
    uint32_t request_body_timeout_ms; /* the whole body, however steadily it trickles in */
    char *access_log;                 /* "stdout", "stderr", "off" or a file path */
    provider_config *providers;
    size_t nproviders;
    model_route *routes; /* sorted by public_name for bsearch */
    size_t nroutes;
    char *catalog_path; /* `catalog:`, entries added to or overriding the embedded catalog */
    catalog catalog;
    routing_settings routing; /* `routing:` */
    routing_state *health;    /* breakers, budgets, latency: shared by the workers */
    route_tree **trees;       /* `routes:`, sorted by name */
    size_t ntrees;
    const route_tree *default_route; /* `default_route:`, for models nothing else serves */
    arena arena;                     /* the trees */
    struct json_t *routes_json;      /* kept alive for the trees' conditions */
} aigw_config;

/* Loads and validates path. On success returns a config the caller frees with
 * config_free(); on failure returns NULL and writes "file:line: message" into err. */
aigw_config *config_load(const char *path, char *err, size_t errlen);
void config_free(aigw_config *cfg);

/* A duration as the config writes it — "500ms", "10s", "2m", "1h", or a bare number of ms —
 * in ms; false when unreadable. (Route trees read the same spelling.) */
bool config_parse_duration(const char *s, long long *ms);

/* Looks up a public model name (not NUL-terminated); NULL when no provider serves it. */
const model_route *config_find_model(const aigw_config *cfg, const char *name, size_t len);
/* Fills r for provider p serving model under public_name: catalog entry and output limit
 * looked up, is_alias when the two names differ. Strings are borrowed, not copied. */
void config_route_fill(const aigw_config *cfg, model_route *r, const provider_config *p,
                       const char *public_name, const char *model);

/* A route of `routes:` by name (not NUL-terminated); NULL when there is none. */
const route_tree *config_find_route(const aigw_config *cfg, const char *name, size_t len);

/* A provider like base (or, when base is NULL, a fresh one of preset) at another base URL
 * and/or with another key, built in a (Portkey's custom_host and inline api_key). At another
 * base URL it keeps neither base's key nor its extra headers. NULL when base_url is not an
 * http(s) URL. */
const provider_config *config_provider_derive(arena *a, const provider_config *base,
                                              const provider_preset *preset, const char *base_url,
                                              const char *api_key);

#endif
