/* response_store.c — the Responses API's recent responses, in memory (see response_store.h).
 *
 * SHARDS shards, chosen by the id's hash; each has its own mutex, a fixed bucket array and a
 * least-recently-used list. An entry is one allocation: the header, the id, the conversation
 * and the response. The byte bound is split evenly over the shards, so a put evicts only in
 * its own shard and never takes two locks. Expired entries go when they are met (a get) or
 * when room is needed; nothing runs in the background. */
#include "providers/response_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/alloc.h"
#include "util/timeutil.h"

#define SHARDS 16
#define BUCKETS 1024 /* per shard */

typedef struct entry {
    struct entry *chain;         /* next in its bucket */
    struct entry *newer, *older; /* the shard's LRU list */
    uint64_t expires_ns;
    size_t bytes; /* what it counts against the bound */
    size_t conversation_len, response_len;
    char id[RESPONSE_ID_MAX + 1];
    char tenant[RESPONSE_TENANT_MAX + 1];
    char data[]; /* conversation, NUL, response, NUL */
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry *buckets[BUCKETS];
    entry *newest, *oldest;
    size_t bytes;
} shard;

static shard shards[SHARDS] = {[0 ... SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER}};
static _Atomic size_t shard_max_bytes = 64u * 1024 * 1024 / SHARDS;
static _Atomic uint64_t ttl_ns = 3600ull * 1000000000u;

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static shard *shard_of(uint64_t h)
{
    return &shards[h % SHARDS];
}

static entry **slot_of(shard *s, uint64_t h, const char *id)
{
    entry **e = &s->buckets[(h / SHARDS) % BUCKETS];
    while (*e && strcmp((*e)->id, id) != 0)
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
    free(e);
}

static void drop(shard *s, entry *e)
{
    drop_at(s, slot_of(s, hash_id(e->id), e->id));
}

/* Evicts the least recently used entries until need more bytes fit under max (locked). */
static void make_room(shard *s, size_t need, size_t max)
{
    while (s->oldest && s->bytes + need > max)
        drop(s, s->oldest);
}

void response_store_configure(size_t max_bytes, uint32_t ttl_ms)
{
    size_t per = max_bytes / SHARDS;
    atomic_store(&shard_max_bytes, per);
    atomic_store(&ttl_ns, (uint64_t)ttl_ms * 1000000u);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        make_room(&shards[i], 0, per);
        pthread_mutex_unlock(&shards[i].lock);
    }
}

void response_store_new_id(char *out)
{
    unsigned char raw[24];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n > 0) got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "resp_", 5);
    for (size_t i = 0; i < sizeof raw; i++) {
        out[5 + 2 * i] = hex[raw[i] >> 4];
        out[6 + 2 * i] = hex[raw[i] & 15];
    }
    out[5 + 2 * sizeof raw] = '\0';
}

/* The entry found under id belongs to tenant (NULL: any). */
static bool owned_by(const entry *e, const char *tenant)
{
    return !tenant || !strcmp(e->tenant, tenant);
}

bool response_store_put(const char *tenant, const char *id, const char *conversation, size_t conversation_len,
                        const char *response, size_t response_len)
{
    size_t max = atomic_load(&shard_max_bytes);
    size_t bytes = sizeof(entry) + conversation_len + response_len + 2;
    if (strlen(id) > RESPONSE_ID_MAX || strlen(tenant) > RESPONSE_TENANT_MAX || bytes > max) return false;
    entry *e = xmalloc(bytes);
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->bytes = bytes;
    e->expires_ns = time_now_ns() + atomic_load(&ttl_ns);
    e->conversation_len = conversation_len;
    e->response_len = response_len;
    memcpy(e->data, conversation, conversation_len);
    e->data[conversation_len] = '\0';
    memcpy(e->data + conversation_len + 1, response, response_len);
    e->data[conversation_len + 1 + response_len] = '\0';

    uint64_t h = hash_id(id);
    shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    entry **slot = slot_of(s, h, id);
    if (*slot) drop_at(s, slot);
    make_room(s, bytes, max);
    slot = slot_of(s, h, id); /* eviction may have changed the chain */
    e->chain = *slot;
    *slot = e;
    lru_push(s, e);
    s->bytes += bytes;
    pthread_mutex_unlock(&s->lock);
    return true;
}

bool response_store_get(const char *tenant, const char *id, arena *a, char **conversation,
                        size_t *conversation_len, char **response, size_t *response_len)
{
    if (strlen(id) > RESPONSE_ID_MAX) return false;
    uint64_t h = hash_id(id);
    shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    entry **slot = slot_of(s, h, id);
    entry *e = *slot;
    if (e && e->expires_ns <= time_now_ns()) {
        drop_at(s, slot);
        e = NULL;
    }
    if (e && !owned_by(e, tenant)) e = NULL;
    if (e) {
        lru_unlink(s, e);
        lru_push(s, e);
        if (conversation) {
            *conversation = arena_strndup(a, e->data, e->conversation_len);
            *conversation_len = e->conversation_len;
        }
        if (response) {
            *response = arena_strndup(a, e->data + e->conversation_len + 1, e->response_len);
            *response_len = e->response_len;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return e != NULL;
}

bool response_store_delete(const char *tenant, const char *id)
{
    if (strlen(id) > RESPONSE_ID_MAX) return false;
    uint64_t h = hash_id(id);
    shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    entry **slot = slot_of(s, h, id);
    bool found = *slot != NULL && owned_by(*slot, tenant);
    if (found) drop_at(s, slot);
    pthread_mutex_unlock(&s->lock);
    return found;
}

size_t response_store_bytes(void)
{
    size_t total = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        total += shards[i].bytes;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return total;
}

void response_store_clear(void)
{
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        make_room(&shards[i], 1, 0);
        pthread_mutex_unlock(&shards[i].lock);
    }
}
