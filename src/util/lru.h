/* lru.h — a hash table that knows its entries' order of use and their lifetimes: the part of
 * the process's bounded in-memory stores that they had twice (the response cache's memory
 * backend, src/cache/cache_memory.c; the Responses API's store, src/providers/response_store.c).
 *
 * Entries are the caller's single allocations, each with an lru_node as its first member; the
 * table links them into its buckets (chained) and into one list from most to least recently
 * used, counts their bytes, and frees them with free() when it drops them — replaced by an
 * entry of the same key, expired when met, or evicted, oldest first, to make room. Nothing
 * runs in the background.
 *
 * Not thread-safe: each user shards its entries and holds the shard's lock around every call
 * (a lock is held only to find, link or unlink, never while an entry is built). */
#ifndef AIGW_UTIL_LRU_H
#define AIGW_UTIL_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lru_node {
    struct lru_node *chain;         /* next in its bucket */
    struct lru_node *newer, *older; /* the order of use */
    uint64_t hash;                  /* the caller's, of the key: it picks the bucket */
    uint64_t expires_ns;            /* on time_now_ns()'s clock */
    size_t bytes;                   /* what it counts against the bound */
    const void *key;                /* inside the entry */
    size_t key_len;
} lru_node;

typedef struct lru_table {
    lru_node **buckets;
    size_t nbuckets; /* a power of two */
    lru_node *newest, *oldest;
    size_t bytes, entries;
    uint64_t evicted, expired; /* since init: dropped to make room, dropped past their lifetime */
} lru_table;

/* An empty table over the caller's nbuckets (a power of two) zeroed bucket pointers. */
void lru_init(lru_table *t, lru_node **buckets, size_t nbuckets);
/* The entry of key (hash the key's), or NULL. One past its lifetime is dropped (counted
 * expired) and not returned. Its place in the order of use is not changed: lru_touch. */
lru_node *lru_find(lru_table *t, uint64_t hash, const void *key, size_t key_len, uint64_t now_ns);
/* n becomes the most recently used. */
void lru_touch(lru_table *t, lru_node *n);
/* Links n (its hash, expires_ns, bytes, key and key_len set; chain and order its own), after
 * dropping the entry of the same key and then, oldest first, as many as it takes for
 * t->bytes + n->bytes to be at most max_bytes (expired ones met on the way counted as expired,
 * the others as evicted). The caller checks first that n->bytes fits max_bytes at all. */
void lru_insert(lru_table *t, lru_node *n, size_t max_bytes, uint64_t now_ns);
/* Unlinks and frees n. */
void lru_remove(lru_table *t, lru_node *n);
/* Drops the oldest until t->bytes is at most max_bytes (a bound that went down). */
void lru_shrink(lru_table *t, size_t max_bytes, uint64_t now_ns);
/* Drops every entry. */
void lru_clear(lru_table *t);

#endif
