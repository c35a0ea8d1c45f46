/* response_store.c — the Responses API's recent responses, in memory (see response_store.h).
 *
 * SHARDS shards, chosen by the id's hash; each has its own mutex and a table in order of use
 * (util/lru.c: a fixed bucket array and a least-recently-used list, the kind the response
 * cache's memory backend keeps too). An entry is one allocation: the header, the id, the
 * conversation and the response. The byte bound is split evenly over the shards, so a put
 * evicts only in its own shard and never takes two locks. Expired entries go when they are met
 * (a get) or when room is needed; nothing runs in the background. */
#include "providers/response_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/alloc.h"
#include "util/lru.h"
#include "util/timeutil.h"

#define SHARDS 16
#define BUCKETS 1024 /* per shard */

typedef struct entry {
    lru_node node; /* first: the table frees the entry through it */
    size_t conversation_len, response_len;
    char id[RESPONSE_ID_MAX + 1];
    char tenant[RESPONSE_TENANT_MAX + 1];
    char data[]; /* conversation, NUL, response, NUL */
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    lru_table table;
    lru_node *buckets[BUCKETS];
} shard;

static shard shards[SHARDS] = {[0 ... SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER}};
static pthread_once_t shards_once = PTHREAD_ONCE_INIT;
static _Atomic size_t shard_max_bytes = 64u * 1024 * 1024 / SHARDS;
static _Atomic uint64_t ttl_ns = 3600ull * 1000000000u;

static void shards_init(void)
{
    for (int i = 0; i < SHARDS; i++)
        lru_init(&shards[i].table, shards[i].buckets, BUCKETS);
}

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* The shard of id, locked; *h gets the hash its table buckets by. */
static shard *lock_shard_of(const char *id, uint64_t *h)
{
    pthread_once(&shards_once, shards_init);
    uint64_t full = hash_id(id);
    shard *s = &shards[full % SHARDS];
    *h = full / SHARDS;
    pthread_mutex_lock(&s->lock);
    return s;
}

void response_store_configure(size_t max_bytes, uint32_t ttl_ms)
{
    pthread_once(&shards_once, shards_init);
    size_t per = max_bytes / SHARDS;
    atomic_store(&shard_max_bytes, per);
    atomic_store(&ttl_ns, (uint64_t)ttl_ms * 1000000u);
    uint64_t now = time_now_ns();
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        lru_shrink(&shards[i].table, per, now);
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

bool response_store_put(const char *tenant, const char *id, const char *conversation, size_t conversation_len,
                        const char *response, size_t response_len)
{
    size_t max = atomic_load(&shard_max_bytes);
    size_t bytes = sizeof(entry) + conversation_len + response_len + 2;
    size_t id_len = strlen(id);
    if (id_len > RESPONSE_ID_MAX || strlen(tenant) > RESPONSE_TENANT_MAX || bytes > max) return false;
    entry *e = xmalloc(bytes);
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->conversation_len = conversation_len;
    e->response_len = response_len;
    memcpy(e->data, conversation, conversation_len);
    e->data[conversation_len] = '\0';
    memcpy(e->data + conversation_len + 1, response, response_len);
    e->data[conversation_len + 1 + response_len] = '\0';
    uint64_t now = time_now_ns(), h;
    shard *s = lock_shard_of(id, &h);
    e->node = (lru_node){
        .hash = h, .expires_ns = now + atomic_load(&ttl_ns), .bytes = bytes, .key = e->id, .key_len = id_len};
    lru_insert(&s->table, &e->node, max, now); /* replaces what was kept under id */
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* The entry found under id belongs to tenant (NULL: any). */
static bool owned_by(const entry *e, const char *tenant)
{
    return !tenant || !strcmp(e->tenant, tenant);
}

/* The entry under id (locked), if it is tenant's (NULL: any tenant's) and has not expired. */
static entry *find(shard *s, uint64_t h, const char *id, const char *tenant)
{
    entry *e = (entry *)lru_find(&s->table, h, id, strlen(id), time_now_ns());
    return e && owned_by(e, tenant) ? e : NULL;
}

bool response_store_get(const char *tenant, const char *id, arena *a, char **conversation,
                        size_t *conversation_len, char **response, size_t *response_len)
{
    if (strlen(id) > RESPONSE_ID_MAX) return false;
    uint64_t h;
    shard *s = lock_shard_of(id, &h);
    entry *e = find(s, h, id, tenant);
    if (e) {
        lru_touch(&s->table, &e->node);
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
    uint64_t h;
    shard *s = lock_shard_of(id, &h);
    entry *e = find(s, h, id, tenant);
    if (e) lru_remove(&s->table, &e->node);
    pthread_mutex_unlock(&s->lock);
    return e != NULL;
}

size_t response_store_bytes(void)
{
    size_t total = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        total += shards[i].table.bytes;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return total;
}

void response_store_clear(void)
{
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        if (shards[i].table.buckets) lru_clear(&shards[i].table);
        pthread_mutex_unlock(&shards[i].lock);
    }
}
