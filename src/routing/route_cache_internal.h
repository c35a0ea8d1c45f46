/* route_cache_internal.h — the per-worker cache of header-config trees, laid out (see
 * route_cache.c for what it is for).
 *
 * Internal to src/routing: only route_cache.c and its unit test (tests/unit/test_tree.c, which
 * checks what the cache keeps and drops) read these fields; everyone else goes through
 * routing.h's route_cache_* calls. */
#ifndef AIGW_ROUTING_ROUTE_CACHE_INTERNAL_H
#define AIGW_ROUTING_ROUTE_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "routing/routing.h"
#include "util/arena.h"

#define CACHE_ENTRIES 64
#define CACHE_TEXT_MAX 8192

struct route_cache_entry {
    uint64_t hash, last_used;
    char *text;
    size_t len;
    bool portkey;
    int refs;
    bool detached; /* out of the cache (a reload): freed when its last holder lets go */
    arena arena;
    json_t *json; /* the tree's conditions point into it */
    route_tree *tree;
};

struct route_cache {
    route_cache_entry *entries[CACHE_ENTRIES];
    uint64_t clock;
    const aigw_config *config; /* what the trees were built against; NULL until first use */
};

#endif
