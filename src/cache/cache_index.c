/* cache_index.c — the semantic cache's vector index (cache.h): for a request's embedding, the
 * nearest stored one of the same bucket (namespace, model, system prompt, tools), by cosine
 * similarity, brute force.
 *
 * What it holds is not replies: each slot is a unit vector, the bucket it belongs to, the key
 * of the exact-cache entry it answers with, and when it expires. A semantic hit looks that key
 * up in the backend, so a reply lives in one place and a vector whose entry was evicted or
 * expired answers nothing (a miss), never a stale reply.
 *
 * Layout: one process-wide index shared by the workers, a read-write lock (lookups share it,
 * an insertion takes it alone). Slots are two parallel arrays — the slots' fixed part and the
 * vectors packed one after the other (dims floats each), so a scan reads memory in order and
 * the dot product vectorizes. All vectors have one dimension count, the first insertion's; an
 * insertion of another size (the embedding model changed) empties the index first. The arrays
 * grow by doubling up to the capacity: min(max_entries, max_bytes / the bytes of one slot),
 * fixed at the first insertion. When full, a new vector replaces the oldest insertion (a ring:
 * FIFO, not LRU — a lookup then never writes, so lookups never contend on a lock). An insertion
 * under a key already held replaces that slot.
 *
 * Why brute force: a lookup is one pass of multiply-adds over the bucket's vectors; measured in
 * bench/index_bench.c (docs/cache.md, bench/RESULTS.md). Rejected for now: an ANN index (Faiss,
 * hnswlib: C++, their own memory bounds, deletions that degrade the graph) — to adopt when a
 * deployment's index outgrows what a pass costs, not before. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

typedef struct slot {
    uint64_t tag; /* the bucket's first 8 bytes: most slots are skipped on this word */
    uint64_t expires_ms;
    uint8_t bucket[CACHE_KEY_BYTES];
    uint8_t key[CACHE_KEY_BYTES];
} slot;

struct cache_index {
    pthread_rwlock_t lock;
    size_t max_entries, max_bytes;
    uint32_t dims;                 /* 0 until the first insertion */
    size_t capacity;               /* slots at most (0 until the first insertion) */
    size_t allocated, count, next; /* slots allocated, used; the ring's next victim */
    slot *slots;
    float *vectors;
    uint64_t evicted;
};

size_t cache_index_slot_bytes(uint32_t dims)
{
    return sizeof(slot) + (size_t)dims * sizeof(float);
}

cache_index *cache_index_new(size_t max_entries, size_t max_bytes)
{
    cache_index *ix = calloc(1, sizeof *ix);
    if (!ix) abort();
    pthread_rwlock_init(&ix->lock, NULL);
    ix->max_entries = max_entries;
    ix->max_bytes = max_bytes;
    return ix;
}

static void empty(cache_index *ix)
{
    free(ix->slots);
    free(ix->vectors);
    ix->slots = NULL;
    ix->vectors = NULL;
    ix->dims = 0;
    ix->capacity = ix->allocated = ix->count = ix->next = 0;
}

void cache_index_free(cache_index *ix)
{
    if (!ix) return;
    empty(ix);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

/* 8 accumulators: without -ffast-math the compiler may not reorder one sum, so it would not
 * vectorize a single-accumulator loop; these are independent lanes it can. */
static float dot(const float *a, const float *b, uint32_t n)
{
    float s[8] = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

bool cache_index_normalize(float *v, uint32_t dims)
{
    double sum = 0;
    for (uint32_t i = 0; i < dims; i++)
        sum += (double)v[i] * v[i];
    if (!(sum > 0) || !isfinite(sum)) return false;
    float inv = (float)(1.0 / sqrt(sum));
    for (uint32_t i = 0; i < dims; i++)
        v[i] *= inv;
    return true;
}

static uint64_t tag_of(const uint8_t bucket[CACHE_KEY_BYTES])
{
    uint64_t t;
    memcpy(&t, bucket, sizeof t);
    return t;
}

bool cache_index_insert(cache_index *ix, const uint8_t bucket[CACHE_KEY_BYTES],
                        const uint8_t key[CACHE_KEY_BYTES], const float *v, uint32_t dims, uint64_t now_ms,
                        uint64_t ttl_ms)
{
    if (!dims || dims > CACHE_INDEX_DIMS_MAX) return false;
    pthread_rwlock_wrlock(&ix->lock);
    bool ok = false;
    if (ix->dims != dims) {
        empty(ix);
        size_t cap = ix->max_bytes / cache_index_slot_bytes(dims);
        if (cap > ix->max_entries) cap = ix->max_entries;
        if (!cap) goto out;
        ix->dims = dims;
        ix->capacity = cap;
    }
    uint64_t tag = tag_of(bucket);
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < ix->count; i++)
        if (ix->slots[i].tag == tag && !memcmp(ix->slots[i].key, key, CACHE_KEY_BYTES) &&
            !memcmp(ix->slots[i].bucket, bucket, CACHE_KEY_BYTES)) {
            at = i;
            break;
        }
    if (at == SIZE_MAX) {
        if (ix->count < ix->capacity) {
            if (ix->count == ix->allocated) {
                size_t n = ix->allocated ? ix->allocated * 2 : 64;
                if (n > ix->capacity) n = ix->capacity;
                slot *s = realloc(ix->slots, n * sizeof *s);
                float *f = realloc(ix->vectors, n * dims * sizeof *f);
                if (!s || !f) abort();
                ix->slots = s;
                ix->vectors = f;
                ix->allocated = n;
            }
            at = ix->count++;
        } else { /* full: the oldest insertion makes room */
            at = ix->next;
            ix->next = (ix->next + 1) % ix->capacity;
            ix->evicted++;
        }
    }
    slot *s = &ix->slots[at];
    s->tag = tag;
    s->expires_ms = now_ms + ttl_ms;
    memcpy(s->bucket, bucket, CACHE_KEY_BYTES);
    memcpy(s->key, key, CACHE_KEY_BYTES);
    memcpy(ix->vectors + at * dims, v, dims * sizeof *v);
    ok = true;
out:
    pthread_rwlock_unlock(&ix->lock);
    return ok;
}

bool cache_index_nearest(cache_index *ix, const uint8_t bucket[CACHE_KEY_BYTES], const float *v,
                         uint32_t dims, uint64_t now_ms, float threshold, uint8_t key_out[CACHE_KEY_BYTES],
                         float *similarity)
{
    pthread_rwlock_rdlock(&ix->lock);
    float best = -2;
    size_t best_at = SIZE_MAX;
    if (ix->dims == dims) {
        uint64_t tag = tag_of(bucket);
        for (size_t i = 0; i < ix->count; i++) {
            const slot *s = &ix->slots[i];
            if (s->tag != tag || s->expires_ms <= now_ms || memcmp(s->bucket, bucket, CACHE_KEY_BYTES))
                continue;
            float sim = dot(ix->vectors + i * dims, v, dims);
            if (sim > best) {
                best = sim;
                best_at = i;
            }
        }
    }
    bool found = best_at != SIZE_MAX && best >= threshold;
    if (found) memcpy(key_out, ix->slots[best_at].key, CACHE_KEY_BYTES);
    pthread_rwlock_unlock(&ix->lock);
    if (similarity) *similarity = best_at != SIZE_MAX ? best : 0;
    return found;
}

void cache_index_stats(cache_index *ix, size_t *entries, size_t *bytes, uint64_t *evicted)
{
    pthread_rwlock_rdlock(&ix->lock);
    if (entries) *entries = ix->count;
    if (bytes) *bytes = sizeof *ix + ix->allocated * cache_index_slot_bytes(ix->dims);
    if (evicted) *evicted = ix->evicted;
    pthread_rwlock_unlock(&ix->lock);
}
