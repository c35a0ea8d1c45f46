/* cache_memory.c — the memory backend of the response cache (cache.h): shared by every worker
 * of the process, bounded in bytes, least recently used first out, a lifetime per entry.
 *
 * CACHE_MEMORY_SHARDS shards, chosen by the key's first bytes (the key is a keyed digest, so
 * they are uniform); each has a mutex, a fixed bucket array and an LRU list. A lock is held
 * only to find, link or unlink an entry and to copy a found entry's bytes out — never while a
 * reply is built or parsed. The bound is split evenly over the shards, so a store evicts only
 * in its own shard and never takes two locks; the bucket arrays are counted against it when
 * the backend is made, and each entry counts its header, its bytes and the allocator's word
 * (cache_memory_entry_cost), so `bytes` is what the cache really holds. Expired entries go
 * when they are met (a lookup) or when room is needed; nothing runs in the background.
 *
 * An entry is one allocation, written completely before it is linked under the lock: a
 * lookup sees the old entry or the new one, never a half-written one. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "util/alloc.h"
#include "util/timeutil.h"

typedef struct entry {
    struct entry *chain;         /* next in its bucket */
    struct entry *newer, *older; /* the shard's LRU list */
    uint64_t stored_ns, expires_ns;
    size_t bytes; /* what it counts against the bound */
    size_t len;
    uint8_t key[CACHE_KEY_BYTES];
    char data[];
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    entry *newest, *oldest;
    size_t bytes, entries, max_bytes;
    uint64_t evictions, expired;
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

static entry **slot_of(shard *s, uint64_t h, const uint8_t *key)
{
    entry **e = &s->buckets[(h / CACHE_MEMORY_SHARDS) & (s->nbuckets - 1)];
    while (*e && memcmp((*e)->key, key, CACHE_KEY_BYTES) != 0)
        e = &(*e)->chain;
    return e;
}

static void lru_unlink(shard *s, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(shard *s, entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest) s->newest->newer = e;
    s->newest = e;
    if (!s->oldest) s->oldest = e;
}

/* Unlinks and frees the entry *slot points at (locked). */
static void drop_at(shard *s, entry **slot)
{
    entry *e = *slot;
    *slot = e->chain;
    lru_unlink(s, e);
    s->bytes -= e->bytes;
    s->entries--;
    free(e);
}

/* Evicts until need more bytes fit (locked): expired entries met on the way first go anyway;
 * then the least recently used. */
static void make_room(shard *s, size_t need, uint64_t now)
{
    while (s->oldest && s->bytes + need > s->max_bytes) {
        entry *e = s->oldest;
        if (e->expires_ns <= now)
            s->expired++;
        else
            s->evictions++;
        drop_at(s, slot_of(s, key_hash(e->key), e->key));
    }
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
    entry **slot = slot_of(s, h, key);
    entry *e = *slot;
    if (e && e->expires_ns <= now) {
        s->expired++;
        drop_at(s, slot);
        e = NULL;
    }
    if (e && (!max_age_ms || now - e->stored_ns <= max_age_ms * 1000000u)) {
        lru_unlink(s, e);
        lru_push(s, e);
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
    e->bytes = bytes;
    uint64_t now = time_now_ns();
    e->stored_ns = now;
    e->expires_ns = now + ttl_ms * 1000000u;
    pthread_mutex_lock(&s->lock);
    entry **slot = slot_of(s, h, key);
    if (*slot) drop_at(s, slot); /* replaced: the newer reply wins */
    make_room(s, bytes, now);
    slot = slot_of(s, h, key); /* eviction may have changed the chain */
    e->chain = *slot;
    *slot = e;
    lru_push(s, e);
    s->bytes += bytes;
    s->entries++;
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
        out->bytes += s->bytes;
        out->entries += s->entries;
        out->evictions += s->evictions;
        out->expired += s->expired;
        pthread_mutex_unlock(&s->lock);
    }
}

static void memory_free(cache_backend *b)
{
    memory_backend *m = (memory_backend *)b;
    if (!m) return;
    for (int i = 0; i < CACHE_MEMORY_SHARDS; i++) {
        shard *s = &m->shards[i];
        while (s->oldest)
            drop_at(s, slot_of(s, key_hash(s->oldest->key), s->oldest->key));
        free(s->buckets);
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
        s->nbuckets = nb;
        s->buckets = xcalloc(nb, sizeof *s->buckets);
        s->bytes = nb * sizeof *s->buckets + MALLOC_OVERHEAD;
        s->max_bytes = per;
    }
    return &m->base;
}
