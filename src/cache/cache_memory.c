/* cache_memory.c — the memory backend of the response cache (cache.h): shared by every worker
 * of the process, bounded in bytes, least recently used first out, a lifetime per entry.
 *
 * CACHE_MEMORY_SHARDS shards, chosen by the key's first bytes (the key is a keyed digest, so
 * they are uniform); each has a mutex and a table in order of use (util/lru.c: a fixed bucket
 * array and an LRU list, the kind the Responses API's store keeps too). A lock is held only to
 * find, link or unlink an entry and to copy a found entry's bytes out — never while a reply is
 * built or parsed. The bound is split evenly over the shards, so a store evicts only in its
 * own shard and never takes two locks; the bucket arrays are counted against it when the
 * backend is made, and each entry counts its header, its bytes and the allocator's word
 * (cache_memory_entry_cost), so `bytes` is what the cache really holds. Expired entries go
 * when they are met (a lookup) or when room is needed; nothing runs in the background.
 *
 * An entry is one allocation, written completely before it is linked under the lock: a
 * lookup sees the old entry or the new one, never a half-written one. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "util/alloc.h"
#include "util/lru.h"
#include "util/timeutil.h"

typedef struct entry {
    lru_node node; /* first: the table frees the entry through it */
    uint64_t stored_ns;
    size_t len;
    uint8_t key[CACHE_KEY_BYTES];
    char data[];
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    lru_table table;
    size_t max_bytes;
} shard;

typedef struct memory_backend {
    cache_backend base;
    size_t max_bytes, max_entry_bytes;
    shard shards[CACHE_MEMORY_SHARDS];
} memory_backend;

/* the allocator's own word or two per allocation, counted too */
#define MALLOC_OVERHEAD 16

size_t cache_memory_entry_cost(size_t len)
{
    return sizeof(entry) + len + MALLOC_OVERHEAD;
}

static uint64_t key_hash(const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return h;
}

static shard *shard_of(memory_backend *m, uint64_t h)
{
    return &m->shards[h % CACHE_MEMORY_SHARDS];
}

static cache_lookup_result memory_lookup(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES],
                                         uint64_t max_age_ms, buf *out, cache_lookup_done done, void *data)
{
    (void)done;
    (void)data;
    memory_backend *m = (memory_backend *)b;
    uint64_t h = key_hash(key), now = time_now_ns();
    shard *s = shard_of(m, h);
    cache_lookup_result r = CACHE_MISSING;
    pthread_mutex_lock(&s->lock);
    entry *e = (entry *)lru_find(&s->table, h / CACHE_MEMORY_SHARDS, key, CACHE_KEY_BYTES, now);
    if (e && (!max_age_ms || now - e->stored_ns <= max_age_ms * 1000000u)) {
        lru_touch(&s->table, &e->node);
        if (buf_append(out, e->data, e->len) == 0) r = CACHE_FOUND;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static void memory_store(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES], const char *value, size_t len,
                         uint64_t ttl_ms)
{
    memory_backend *m = (memory_backend *)b;
    uint64_t h = key_hash(key);
    shard *s = shard_of(m, h);
    size_t bytes = cache_memory_entry_cost(len);
    if (len > m->max_entry_bytes || bytes > s->max_bytes || !ttl_ms) return;
    /* made whole before the lock: linking it is the only thing a reader can see */
    entry *e = xmalloc(sizeof(entry) + len);
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, CACHE_KEY_BYTES);
    memcpy(e->data, value, len);
    e->len = len;
    uint64_t now = time_now_ns();
    e->stored_ns = now;
    e->node = (lru_node){.hash = h / CACHE_MEMORY_SHARDS,
                         .expires_ns = now + ttl_ms * 1000000u,
                         .bytes = bytes,
                         .key = e->key,
                         .key_len = CACHE_KEY_BYTES};
    pthread_mutex_lock(&s->lock);
    lru_insert(&s->table, &e->node, s->max_bytes, now); /* replaces: the newer reply wins */
    pthread_mutex_unlock(&s->lock);
}

static void memory_stats(cache_backend *b, cache_stats *out)
{
    memory_backend *m = (memory_backend *)b;
    memset(out, 0, sizeof *out);
    out->max_bytes = m->max_bytes;
    for (int i = 0; i < CACHE_MEMORY_SHARDS; i++) {
        shard *s = &m->shards[i];
        pthread_mutex_lock(&s->lock);
        out->bytes += s->table.bytes;
        out->entries += s->table.entries;
        out->evictions += s->table.evicted;
        out->expired += s->table.expired;
        pthread_mutex_unlock(&s->lock);
    }
}

static void memory_free(cache_backend *b)
{
    memory_backend *m = (memory_backend *)b;
    if (!m) return;
    for (int i = 0; i < CACHE_MEMORY_SHARDS; i++) {
        shard *s = &m->shards[i];
        lru_clear(&s->table);
        free(s->table.buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(m);
}

static const cache_backend_ops memory_ops = {
    .name = "memory",
    .lookup = memory_lookup,
    .store = memory_store,
    .stats = memory_stats,
    .free = memory_free,
};

cache_backend *cache_memory_new(size_t max_bytes, size_t max_entry_bytes)
{
    memory_backend *m = xcalloc(1, sizeof *m);
    m->base.ops = &memory_ops;
    m->max_bytes = max_bytes;
    m->max_entry_bytes = max_entry_bytes;
    size_t per = max_bytes / CACHE_MEMORY_SHARDS;
    /* about one bucket per 1 KiB of room (replies are rarely smaller), a power of two, from 16
     * to 64 Ki buckets a shard; the array counts against the shard's bound from the start */
    size_t nb = 16;
    while (nb < 65536 && nb * 1024 < per)
        nb *= 2;
    for (int i = 0; i < CACHE_MEMORY_SHARDS; i++) {
        shard *s = &m->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        lru_init(&s->table, xcalloc(nb, sizeof(lru_node *)), nb);
        s->table.bytes = nb * sizeof(lru_node *) + MALLOC_OVERHEAD;
        s->max_bytes = per;
    }
    return &m->base;
}
