/* config_cache.c — the config file's `cache:` section: the response cache's backend, bounds,
 * default lifetime, namespace and default mode (docs/cache.md).
 *
 * Its own file because config.c is at its size limit; it runs on the same table machinery
 * (config_read.h). The per-route and per-request `cache` blocks are not here: they are part of
 * the route schema (routing/tree.c), so a Portkey config and a route of this file mean the same.
 *
 *   cache:
 *     backend: memory        # the only one so far (redis comes next)
 *     max_bytes: 64MiB       # everything the cache holds, each entry's overhead counted
 *     max_entry_bytes: 1MiB  # a larger reply is simply not stored
 *     ttl: 1h                # when the request's config sets no max_age
 *     namespace: key         # key | team | shared
 *     mode: off              # off | simple: simple caches every chat request by default */
#include <stddef.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"

#define CCH(member) offsetof(cache_settings, member)

static bool parse_backend(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "backend")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "memory"))
        return config__fail_at(ld, node, "cache.backend must be memory (redis is not built yet), got '%s'",
                               v);
    *(cache_backend_kind *)target = CACHE_BACKEND_MEMORY;
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

static const field cache_table[] = {
    {"backend", FIELD_CUSTOM, CCH(backend), 0, 0, NULL, parse_backend},
    {"max_bytes", FIELD_SIZE, CCH(max_bytes), 64 * 1024, 1LL << 40, NULL, NULL},
    {"max_entry_bytes", FIELD_SIZE, CCH(max_entry_bytes), 1024, 1LL << 30, NULL, NULL},
    {"ttl", FIELD_DURATION, CCH(ttl_ms), 1000, 90LL * 86400000, NULL, NULL},
    {"namespace", FIELD_CUSTOM, CCH(namespace_kind), 0, 0, NULL, parse_namespace},
    {"mode", FIELD_CUSTOM, CCH(default_simple), 0, 0, NULL, parse_mode},
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
    return true;
}
