/* route_cache.c — header configs, built once per worker.
 *
 * A Portkey user sends the same config header with every request; parsing and building it
 * each time cost more than the rest of the request (jansson alone ~45,000 instructions for a
 * 260-byte config). So each worker keeps the trees of the configs it saw last, by their exact
 * bytes: a hit costs a hash and a compare. An entry lives while a request uses it or while it
 * is among the most recent CACHE_ENTRIES; its tree keeps a round-robin position, like a
 * stored route's. Per worker: no locks. A tree is built against one config (its providers,
 * its shared health): the cache is bound to the config of its first use, and a reload
 * (route_cache_reset) drops every tree and binds it to the new one. A tree that names one of
 * the store's virtual keys is good while they are unchanged: when their version has moved it is
 * built again (the credential itself is never in a tree, so a rotation alone costs a rebuild of
 * such trees, not a wrong key).
 *
 * Split from the tree builder (tree.c): the builder turns JSON into a tree; this file decides
 * which trees to keep and for how long, and calls the builder on a miss. The entries' layout is
 * in route_cache_internal.h, for the unit test that checks what is kept. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "routing/health.h"
#include "routing/route_cache_internal.h"
#include "routing/routing.h"
#include "util/alloc.h"

route_cache *route_cache_new(void)
{
    return xcalloc(1, sizeof(route_cache));
}

static void entry_free(route_cache_entry *e)
{
    arena_free(&e->arena);
    json_decref(e->json);
    free(e->text);
    free(e);
}

void route_cache_free(route_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        if (c->entries[i]) entry_free(c->entries[i]);
    free(c);
}

void route_cache_release(route_cache_entry *e)
{
    if (e && --e->refs == 0 && e->detached) entry_free(e);
}

void route_cache_reset(route_cache *c, const aigw_config *cfg)
{
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        route_cache_entry *e = c->entries[i];
        if (!e) continue;
        c->entries[i] = NULL;
        if (e->refs)
            e->detached = true;
        else
            entry_free(e);
    }
    c->config = cfg;
}

static bool virtual_keys_moved(const aigw_config *cfg, const route_tree *t)
{
    const routing_providers *p = routing__providers(cfg->health);
    return p && p->virtual_keys_version && p->virtual_keys_version() != t->virtual_keys_version;
}

const route_tree *route_cache_get(route_cache *c, const aigw_config *cfg, const char *text, size_t len,
                                  const char *name, bool portkey, route_cache_entry **entry, char *err,
                                  size_t errlen)
{
    *entry = NULL;
    if (!c->config) c->config = cfg;
    if (c->config != cfg) return NULL; /* a request older than the last reload: not kept */
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)portkey;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
    route_cache_entry **free_slot = NULL, **oldest = NULL;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        route_cache_entry *e = c->entries[i];
        if (!e) {
            if (!free_slot) free_slot = &c->entries[i];
            continue;
        }
        if (e->hash == h && e->len == len && e->portkey == portkey && !memcmp(e->text, text, len)) {
            if (e->tree->virtual_keys && virtual_keys_moved(cfg, e->tree)) {
                c->entries[i] = NULL; /* stale: out of the cache, built again below */
                if (e->refs)
                    e->detached = true;
                else
                    entry_free(e);
                if (!free_slot) free_slot = &c->entries[i];
                continue;
            }
            e->refs++;
            e->last_used = ++c->clock;
            *entry = e;
            return e->tree;
        }
        if (!e->refs && (!oldest || e->last_used < (*oldest)->last_used)) oldest = &c->entries[i];
    }
    if (len > CACHE_TEXT_MAX) return NULL; /* not kept: the caller builds it for the request */
    route_cache_entry **slot = free_slot ? free_slot : oldest;
    if (!slot) return NULL; /* every entry in use */
    json_error_t jerr;
    json_t *json = json_loadb(text, len, 0, &jerr);
    if (!json) {
        route_json_error(&jerr, err, errlen);
        return NULL;
    }
    route_cache_entry *e = xcalloc(1, sizeof *e);
    arena_init(&e->arena, 4096);
    e->json = json;
    e->tree = route_tree_build(&e->arena, cfg, cfg->health, json, name, portkey, true, true, err, errlen);
    if (!e->tree) { /* invalid configs are not kept: each such request is told again */
        entry_free(e);
        return NULL;
    }
    if (*slot) entry_free(*slot);
    e->hash = h;
    e->text = xmalloc(len ? len : 1);
    memcpy(e->text, text, len);
    e->len = len;
    e->portkey = portkey;
    e->refs = 1;
    e->last_used = ++c->clock;
    *slot = e;
    *entry = e;
    return e->tree;
}
