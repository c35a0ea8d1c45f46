/* cache.h — the response cache's face: the key of a request, and the backends that keep
 * replies under it (docs/cache.md).
 *
 * The pipeline's CACHE stage (pipeline/cache_stage.c) computes a request's key with
 * cache_key_make, asks a backend for it, and stores a complete successful reply through the
 * same backend. A backend is a table of operations (cache_backend_ops), so the memory backend
 * here, a Redis backend and a semantic index later are interchangeable behind it; the stage
 * knows none of them.
 *
 * What a backend keeps is opaque bytes (the stage's entry: cache_entry_* below). A lookup
 * copies the bytes out while the backend holds its lock, never a pointer into the cache, so
 * an entry evicted or replaced meanwhile cannot be seen half-written.
 *
 * Backends: memory (cache_memory.c: this process, shared by its workers) and Redis
 * (cache_redis.c: one connection per worker on its loop; a lookup answers CACHE_PENDING and
 * calls back, within a bounded wait). The semantic index (cache_index.c) keeps vectors beside
 * the keys of the entries they answer with; the replies themselves stay in the backend. */
#ifndef AIGW_CACHE_CACHE_H
#define AIGW_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/catalog.h"
#include "util/buf.h"
#include "util/json.h"

struct json_t;

#define CACHE_KEY_BYTES 32

/* ---- the key (cache_key.c) ------------------------------------------------------------------- */

/* The keys a request's key is made with: the request's digest (keyed BLAKE2b) and the digests
 * of the objects inside its body (SipHash-2-4), both subkeys of the deployment's secret. */
typedef struct cache_secret {
    uint8_t digest[32];
    uint8_t member[16];
} cache_secret;

/* Both subkeys from the deployment's 32-byte secret (crypto_kdf, the cache's own context). */
void cache_secret_derive(const uint8_t master[32], cache_secret *out);
/* Random ones, for a process without a deployment secret (its entries die with it). */
void cache_secret_random(cache_secret *out);

/* What a request's key is made of. The namespace keeps tenants apart (a gateway key's id, a
 * team, a provider credential, or "" when shared); the model is the public name the request
 * names after routing (a route's name, an alias), the route the tree it walks; body is the
 * client's request as sent (its own format: OpenAI chat or Anthropic Messages). */
typedef struct cache_key_input {
    const cache_secret *secret; /* the deployment's, or the process's */
    const char *namespace_name;
    size_t namespace_len;
    int endpoint; /* endpoint_kind */
    const char *model;
    size_t model_len;
    const char *route; /* NULL: none */
    const char *extra; /* a client's own partition (x-portkey-cache-namespace), or NULL */
    size_t extra_len;
    const char *body; /* the body's JSON text */
    size_t body_len;
    /* Top-level members whose spans the caller wants, found by the same walk (as
     * json_scan_object fills them, the ignored members too); NULL when none. */
    json_field *fields;
    size_t nfields;
    /* The body parsed: what the semantic bucket reads (cache_semantic_bucket); the key does not. */
    struct json_t *parsed;
} cache_key_input;

/* Members of the objects open at once in a body the key is made of (more: no key). */
#define CACHE_KEY_MEMBERS_MAX 65536

/* The keyed BLAKE2b (libsodium crypto_generichash) of the request's canonical form (cache_key.c
 * says what it is): the namespace, endpoint, model, route and partition, then the body's
 * members except those that never change the reply (stream, stream_options, user, metadata,
 * store, and model, which is the public name above) — key order, white space and the spelling
 * of escapes and numbers do not matter. Walks the body with no tree and no allocation beyond
 * two buffers its size. false when the body is not a JSON object, or passes a bound (depth,
 * CACHE_KEY_MEMBERS_MAX); then the fields are all absent. */
bool cache_key_make(const cache_key_input *in, uint8_t out[CACHE_KEY_BYTES]);

/* The members of a request body that are not part of its key, NULL-terminated. */
extern const char *const cache_key_ignored[];

/* ---- backends ------------------------------------------------------------------------------ */

typedef enum cache_lookup_result {
    CACHE_FOUND,       /* the entry's bytes are in out */
    CACHE_MISSING,     /* none, or older than max_age, or expired */
    CACHE_PENDING,     /* (asynchronous backends) the answer comes through done, on the caller's loop */
    CACHE_UNAVAILABLE, /* the backend could not answer (down, slow past its timeout, too busy) */
} cache_lookup_result;

typedef struct cache_stats {
    size_t bytes;     /* held now, each entry's overhead counted */
    size_t entries;   /* held now */
    size_t max_bytes; /* the bound */
    uint64_t evictions, expired;
} cache_stats;

typedef struct cache_backend cache_backend;
typedef void (*cache_lookup_done)(void *data, cache_lookup_result result);

typedef struct cache_backend_ops {
    const char *name;
    /* Copies the entry of key into out (appended) when it exists, has not expired and is at
     * most max_age_ms old (0: any age). A synchronous backend answers FOUND or MISSING and
     * never calls done. An asynchronous one answers PENDING and later calls done once, on the
     * loop, with FOUND, MISSING or UNAVAILABLE (out must live until then); or UNAVAILABLE at
     * once (done never fires). Any thread (memory) / the backend's loop (Redis). */
    cache_lookup_result (*lookup)(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES], uint64_t max_age_ms,
                                  buf *out, cache_lookup_done done, void *data);
    /* Keeps value under key for ttl_ms, replacing what was there; a value the backend cannot
     * hold within its bounds is not kept. Any thread; value is copied. */
    void (*store)(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES], const char *value, size_t len,
                  uint64_t ttl_ms);
    void (*stats)(cache_backend *b, cache_stats *out);
    void (*free)(cache_backend *b);
} cache_backend_ops;

struct cache_backend {
    const cache_backend_ops *ops;
};

/* ---- the memory backend (cache_memory.c) ------------------------------------------------------ */

/* CACHE_MEMORY_SHARDS shards, each with its own lock, bucket array and LRU list; the byte bound
 * is split evenly over them. An entry counts its bytes, its header and its share of the
 * bucket array (cache_memory_entry_cost). */
#define CACHE_MEMORY_SHARDS 16
cache_backend *cache_memory_new(size_t max_bytes, size_t max_entry_bytes);
/* What an entry of len value bytes counts against the bound. */
size_t cache_memory_entry_cost(size_t len);

/* ---- the Redis backend (cache_redis.c) ----------------------------------------------------------- */

struct redis_target;
struct uv_loop_s;

/* A Redis backend for the worker whose loop this is (a connection of its own, opened in the
 * background). Entries are "<prefix><hex key>", their value "<stored ms>\n" and the entry's
 * bytes, with the entry's ttl (SET … PX). A lookup waits at most timeout_ms; a reply longer than
 * max_entry_bytes (+ its header) is not read as an entry. ops->free closes it (on its loop; the
 * loop must run once more for its handles to close). */
cache_backend *cache_redis_new(struct uv_loop_s *loop, const struct redis_target *target, const char *prefix,
                               uint32_t timeout_ms, size_t max_entry_bytes);
/* Lookups Redis could not answer (down, past the timeout, too many waiting), since start; and
 * stores dropped for the same reasons. Process-wide. */
uint64_t cache_redis_unavailable(void);
uint64_t cache_redis_stores_dropped(void);

struct cache_index;
/* The semantic index's vectors are kept in Redis too, beside the entries: "<prefix>v:<bucket
 * hex>:<key hex>", the vector's float32 bytes, with the entry's ttl. Sent without waiting, as a
 * store (dropped when b is not a Redis backend, or cannot take it). */
void cache_redis_store_vector(cache_backend *b, const uint8_t bucket[CACHE_KEY_BYTES],
                              const uint8_t key[CACHE_KEY_BYTES], const float *v, uint32_t dims,
                              uint64_t ttl_ms);
/* At start, before the workers: reads the vectors Redis holds (SCAN over "<prefix>v:*", each
 * value read with GETRANGE up to CACHE_INDEX_DIMS_MAX floats, with its remaining ttl) into ix,
 * at most max of them and for at most a few seconds. Blocking (a connection of its own, each
 * call bounded by timeout_ms): never call it on a loop. Returns how many were loaded; a
 * message in err when Redis could not be read (then the index starts with what it got). */
size_t cache_redis_load_vectors(const struct redis_target *target, const char *prefix, uint32_t timeout_ms,
                                struct cache_index *ix, size_t max, char *err, size_t errlen);

/* ---- what a semantic lookup compares (cache_semantic.c) ------------------------------------------ */

/* The text to embed: the last message's when it is the user's (its string, or its text parts
 * joined by newlines), appended to out. false when there is none, or it is longer than
 * max_len: such a request is looked up exactly only. */
bool cache_semantic_text(struct json_t *body, size_t max_len, buf *out);
/* The bucket a request's vector is compared within: a keyed digest of the namespace, the
 * partition, endpoint, model, route, system prompt, tools, tool_choice and response_format of
 * in (the same input as its exact key; the body as in->parsed). false when it cannot be
 * serialized. */
bool cache_semantic_bucket(const cache_key_input *in, uint8_t out[CACHE_KEY_BYTES]);

/* ---- the semantic index (cache_index.c) --------------------------------------------------------- */

/* Unit vectors of one dimension count, each in a bucket (a digest of what must be equal for a
 * semantic hit: namespace, model, system prompt, tools), each naming the key of the exact
 * entry it answers with. Bounded in entries and bytes; full, the oldest insertion goes.
 * Process-wide; any thread (a read-write lock). */
#define CACHE_INDEX_DIMS_MAX 8192
typedef struct cache_index cache_index;
cache_index *cache_index_new(size_t max_entries, size_t max_bytes);
void cache_index_free(cache_index *ix);
/* What one vector of dims costs against max_bytes (its slot and its floats). */
size_t cache_index_slot_bytes(uint32_t dims);
/* Scales v to length 1; false when it is zero or not finite (not a usable vector). */
bool cache_index_normalize(float *v, uint32_t dims);
/* Keeps unit vector v (copied) in bucket under key until now + ttl, replacing the slot of the
 * same bucket and key. A dims unlike the index's empties it first (the model changed). false
 * when dims is 0 or above CACHE_INDEX_DIMS_MAX, or the bound holds not even one vector. */
bool cache_index_insert(cache_index *ix, const uint8_t bucket[CACHE_KEY_BYTES],
                        const uint8_t key[CACHE_KEY_BYTES], const float *v, uint32_t dims, uint64_t now_ms,
                        uint64_t ttl_ms);
/* The live vector of bucket most similar to unit vector v (cosine: the dot product): true with
 * its key when the similarity is at least threshold. *similarity gets the best one found (0
 * when the bucket is empty), hit or not. */
bool cache_index_nearest(cache_index *ix, const uint8_t bucket[CACHE_KEY_BYTES], const float *v,
                         uint32_t dims, uint64_t now_ms, float threshold, uint8_t key_out[CACHE_KEY_BYTES],
                         float *similarity);
void cache_index_stats(cache_index *ix, size_t *entries, size_t *bytes, uint64_t *evicted);

/* ---- the stage's entry: what a backend keeps (cache_entry.c) ------------------------------------ */

/* A stored reply in both shapes a hit answers with, rendered in the client's format when it was
 * stored (providers/replay.c): one JSON body, and the whole stream. */
typedef struct cache_entry {
    double cost_usd;    /* what the reply cost when it was made: what a hit saves */
    int format;         /* the client format it is rendered in (wire_format) */
    usage_counts usage; /* the reply's (seen) */
    const char *body;
    size_t body_len;
    const char *stream;
    size_t stream_len;
    size_t usage_at, usage_len; /* the stream's usage chunk, sent on include_usage only (0: none) */
} cache_entry;

#define CACHE_ENTRY_MAGIC "aigw-cache 2 "
/* Appends e (its header, body and stream) to out; false past out's bound. */
bool cache_entry_write(const cache_entry *e, buf *out);
/* Reads an entry: e's pointers point into data. false when it is not one (another version, a
 * header or lengths that do not agree with the bytes). */
bool cache_entry_parse(const char *data, size_t len, cache_entry *e);

#endif
