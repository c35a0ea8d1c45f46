/* config_cache.c — the config file's `cache:` section: the response cache's backend, bounds,
 * default lifetime, namespace and default mode (docs/cache.md).
 *
 * Its own file because config.c is at its size limit; it runs on the same table machinery
 * (config_read.h). The per-route and per-request `cache` blocks are not here: they are part of
 * the route schema (routing/tree.c), so a Portkey config and a route of this file mean the same.
 *
 *   cache:
 *     backend: memory        # memory | redis
 *     redis: {url: redis://127.0.0.1:6379/0, timeout: 100ms, prefix: "aigw:cache:"}
 *     max_bytes: 64MiB       # everything the cache holds, each entry's overhead counted
 *     max_entry_bytes: 1MiB  # a larger entry (the reply as a body and as a stream) is not stored
 *     ttl: 1h                # when the request's config sets no max_age
 *     namespace: key         # key | team | shared
 *     mode: off              # off | simple: simple caches every chat request by default
 *     semantic: {embedding_model: NAME, threshold: 0.95, max_entries: 10000, max_bytes: 64MiB,
 *                dimensions: 0, max_text_bytes: 8KiB}
 *
 * Strings are kept in fixed arrays of the settings (no allocation to free with the config). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"

#define CCH(member) offsetof(cache_settings, member)

static bool parse_backend(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "backend")) return false;
    const char *v = config__scalar(node);
    if (!strcmp(v, "memory"))
        *(cache_backend_kind *)target = CACHE_BACKEND_MEMORY;
    else if (!strcmp(v, "redis"))
        *(cache_backend_kind *)target = CACHE_BACKEND_REDIS;
    else
        return config__fail_at(ld, node, "cache.backend must be memory or redis, got '%.64s'", v);
    return true;
}

/* A string into a fixed array of the settings: too long is a mistake, not a truncation. */
static bool copy_scalar(loader *ld, yaml_node_t *node, const char *key, char *dst, size_t size)
{
    if (!config__require_scalar(ld, node, key)) return false;
    const char *v = config__scalar(node);
    if (!*v || strlen(v) >= size)
        return config__fail_at(ld, node, "cache: '%s' must be 1 to %zu bytes", key, size - 1);
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

static bool parse_url(loader *ld, yaml_node_t *node, void *target)
{
    return copy_scalar(ld, node, "url", target, sizeof((cache_settings *)0)->redis.url);
}

static bool parse_prefix(loader *ld, yaml_node_t *node, void *target)
{
    return copy_scalar(ld, node, "prefix", target, sizeof((cache_settings *)0)->redis.prefix);
}

static bool parse_embedding_model(loader *ld, yaml_node_t *node, void *target)
{
    return copy_scalar(ld, node, "embedding_model", target,
                       sizeof((cache_settings *)0)->semantic.embedding_model);
}

static bool parse_threshold(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "threshold")) return false;
    const char *v = config__scalar(node);
    char *end = NULL;
    double t = strtod(v, &end);
    if (end == v || *end || !(t > 0 && t <= 1))
        return config__fail_at(ld, node, "cache.semantic.threshold must be a number in (0, 1], got '%.32s'",
                               v);
    *(double *)target = t;
    return true;
}

static bool parse_namespace(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "namespace")) return false;
    const char *v = config__scalar(node);
    cache_namespace_kind *ns = target;
    if (!strcmp(v, "key"))
        *ns = CACHE_NAMESPACE_KEY;
    else if (!strcmp(v, "team"))
        *ns = CACHE_NAMESPACE_TEAM;
    else if (!strcmp(v, "shared"))
        *ns = CACHE_NAMESPACE_SHARED;
    else
        return config__fail_at(ld, node, "cache.namespace must be key, team or shared, got '%s'", v);
    return true;
}

static bool parse_mode(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "mode")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "off") && strcmp(v, "simple"))
        return config__fail_at(ld, node, "cache.mode must be off or simple, got '%s'", v);
    *(bool *)target = !strcmp(v, "simple");
    return true;
}

static const field redis_table[] = {
    {"url", FIELD_CUSTOM, CCH(redis.url), 0, 0, NULL, parse_url},
    {"timeout", FIELD_DURATION, CCH(redis.timeout_ms), 1, 10000, NULL, NULL},
    {"prefix", FIELD_CUSTOM, CCH(redis.prefix), 0, 0, NULL, parse_prefix},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field semantic_table[] = {
    {"embedding_model", FIELD_CUSTOM, CCH(semantic.embedding_model), 0, 0, NULL, parse_embedding_model},
    {"threshold", FIELD_CUSTOM, CCH(semantic.threshold), 0, 0, NULL, parse_threshold},
    {"max_entries", FIELD_INT, CCH(semantic.max_entries), 1, 10000000, NULL, NULL},
    {"max_bytes", FIELD_SIZE, CCH(semantic.max_bytes), 64 * 1024, 1LL << 36, NULL, NULL},
    {"dimensions", FIELD_INT, CCH(semantic.dimensions), 0, 8192, NULL, NULL},
    {"max_text_bytes", FIELD_SIZE, CCH(semantic.max_text_bytes), 16, 1024 * 1024, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field cache_table[] = {
    {"backend", FIELD_CUSTOM, CCH(backend), 0, 0, NULL, parse_backend},
    {"max_bytes", FIELD_SIZE, CCH(max_bytes), 64 * 1024, 1LL << 40, NULL, NULL},
    {"max_entry_bytes", FIELD_SIZE, CCH(max_entry_bytes), 1024, 1LL << 30, NULL, NULL},
    {"ttl", FIELD_DURATION, CCH(ttl_ms), 1000, 90LL * 86400000, NULL, NULL},
    {"namespace", FIELD_CUSTOM, CCH(namespace_kind), 0, 0, NULL, parse_namespace},
    {"mode", FIELD_CUSTOM, CCH(default_simple), 0, 0, NULL, parse_mode},
    {"redis", FIELD_SECTION, 0, 0, 0, redis_table, NULL},
    {"semantic", FIELD_SECTION, 0, 0, 0, semantic_table, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

void config__cache_defaults(aigw_config *cfg)
{
    cfg->cache = (cache_settings){
        .backend = CACHE_BACKEND_MEMORY,
        .max_bytes = 64u * 1024 * 1024,
        .max_entry_bytes = 1024 * 1024, /* or a sixteenth of a smaller max_bytes */
        .ttl_ms = 3600 * 1000,
        .namespace_kind = CACHE_NAMESPACE_KEY,
        .redis = {.timeout_ms = 100, .prefix = "aigw:cache:"},
        .semantic = {.threshold = 0.95,
                     .max_entries = 10000,
                     .max_bytes = 64u * 1024 * 1024,
                     .max_text_bytes = 8 * 1024},
    };
}

bool config__parse_cache(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    cache_settings *c = &cfg->cache;
    c->configured = true;
    c->line = (int)node->start_mark.line + 1;
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(ld, node, "'cache' must be a mapping such as {max_bytes: 256MiB, ttl: 1h}");
    c->max_entry_bytes = 0; /* unset: the default, below */
    if (!config__apply_section(ld, node, "cache", cache_table, c)) return false;
    if (!c->max_entry_bytes)
        c->max_entry_bytes = c->max_bytes / 16 < 1024 * 1024 ? c->max_bytes / 16 : 1024 * 1024;
    if (c->max_entry_bytes > c->max_bytes / 16)
        return config__fail_at(
            ld, node,
            "cache.max_entry_bytes (%zu) must be at most a sixteenth of cache.max_bytes (%zu): "
            "the bound is split over 16 shards",
            c->max_entry_bytes, c->max_bytes);
    if (c->backend == CACHE_BACKEND_REDIS && !c->redis.url[0])
        return config__fail_at(ld, node,
                               "cache.backend is redis but cache.redis.url is not given (e.g. redis: {url: "
                               "redis://127.0.0.1:6379/0} or {url: unix:/run/redis/redis.sock})");
    return true;
}
