/* cache_redis.c — the response cache's Redis backend (cache.h): one Redis that every aigw
 * instance shares, one hiredis async connection per worker on the worker's libuv loop.
 *
 * Same semantics as the memory backend: an entry is the stage's bytes under the request's
 * key, with a lifetime (SET key value PX ttl) and the time it was stored (so a request's
 * max_age can refuse an older one). Keys are "<prefix><64 hex digits>", so a deployment can
 * share a Redis with other users (the rate limiter's keys are "aigw:rl:…").
 *
 * The cache never fails a request. A lookup waits at most the configured timeout: past it, or
 * when the connection is down, or when CACHE_REDIS_INFLIGHT_MAX lookups already wait on this
 * worker, it is answered CACHE_UNAVAILABLE and the request goes on uncached (the stage says
 * BYPASS). Stores are sent without waiting for an answer, and dropped (counted) when not
 * connected or when CACHE_REDIS_STORE_BYTES_MAX bytes of stores are already unanswered — a hung
 * Redis must not make hiredis's output buffer grow without bound. One line says when Redis went
 * away and one when it is back, for the whole process.
 *
 * Bounded replies: a lookup asks GETRANGE key 0 N (N = the largest entry + its header), so an
 * honest Redis never sends more; a reply longer than that, or not a string, is not an entry.
 * hiredis 0.14 reads a whole reply before handing it over and has no limit of its own on a bulk
 * string's length: a hostile server could still make it buffer one large reply (written in
 * docs/cache.md; a Redis is a trusted party of the deployment, as the rate limiter's is).
 *
 * The connection is the rate limiter's kind (util/redis_conn.c, shared with
 * src/limits/limits_redis.c): each lookup on a list in the order sent with its deadline, one
 * timer per connection at the oldest deadline, a call freed only from hiredis's callback (so no
 * callback ever sees a freed call), a connection that answers nothing for a second while calls
 * time out opened again, reconnection every REDIS_CONN_RECONNECT_MS, and the outage lines; the
 * URL is read by util/redis_target.c. This file adds the commands and what their answers mean. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cache/cache.h"
#include "util/redis_conn.h"
#include "util/redis_target.h"

#define CACHE_REDIS_INFLIGHT_MAX 4096                  /* lookups waiting on one worker's connection */
#define CACHE_REDIS_STORE_BYTES_MAX (64 * 1024 * 1024) /* unanswered stores on one connection */
#define ENTRY_HEAD_MAX 24                              /* "<ms>\n" */

static uint64_t time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* process-wide: one line per outage, whichever worker sees it first; lookups unanswered */
static redis_outage outage = {.part = "cache",
                              .down_event = "cache_redis_down",
                              .up_event = "cache_redis_up",
                              .meanwhile = "cached requests go on uncached (x-aigw-cache: BYPASS)",
                              .missed = "lookups went unanswered"};
static _Atomic uint64_t stores_dropped;

uint64_t cache_redis_unavailable(void)
{
    return atomic_load(&outage.unanswered);
}

uint64_t cache_redis_stores_dropped(void)
{
    return atomic_load(&stores_dropped);
}

typedef struct redis_backend redis_backend;

typedef struct lookup_call {
    redis_call call; /* first: its place on the connection's list */
    redis_backend *r;
    cache_lookup_done done;
    void *data;
    buf *out;
    uint64_t max_age_ms;
} lookup_call;

typedef struct store_call {
    redis_backend *r;
    size_t bytes;
} store_call;

struct redis_backend {
    cache_backend base;
    redis_conn conn;
    char prefix[64];
    size_t max_entry_bytes;
    size_t store_bytes; /* sent, not yet answered */
};

/* ---- the connection (util/redis_conn.c) ------------------------------------------------------------ */

static void answer(lookup_call *c, cache_lookup_result result)
{
    if (c->call.answered) return;
    c->call.answered = true;
    if (result == CACHE_UNAVAILABLE) redis_outage_unanswered(&outage);
    c->done(c->data, result);
}

static void on_unanswered(redis_conn *conn, redis_call *call)
{
    answer((lookup_call *)call, CACHE_UNAVAILABLE);
}

static void on_lost(redis_conn *conn)
{
    redis_backend *r = conn->owner;
    r->store_bytes = 0; /* their callbacks come with NULL (or came): nothing is unanswered now */
}

static void on_closed(redis_conn *conn)
{
    free(conn->owner);
}

static const redis_conn_hooks hooks = {
    .on_lost = on_lost, .on_unanswered = on_unanswered, .on_closed = on_closed};

/* ---- lookups ------------------------------------------------------------------------------------- */

/* The value as stored: "<stored wall ms>\n<entry>". FOUND appends the entry to out. */
static cache_lookup_result read_entry(lookup_call *c, const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_NIL) return CACHE_MISSING;
    if (rep->type != REDIS_REPLY_STRING) return CACHE_UNAVAILABLE;
    size_t len = (size_t)rep->len;
    if (!len) return CACHE_MISSING; /* GETRANGE of a missing key */
    if (len > c->r->max_entry_bytes + ENTRY_HEAD_MAX) return CACHE_MISSING;
    const char *nl = memchr(rep->str, '\n', len < ENTRY_HEAD_MAX ? len : ENTRY_HEAD_MAX);
    if (!nl) return CACHE_MISSING;
    uint64_t stored = 0;
    for (const char *p = rep->str; p < nl; p++) {
        if (*p < '0' || *p > '9') return CACHE_MISSING;
        stored = stored * 10 + (uint64_t)(*p - '0');
    }
    uint64_t now = time_wall_ms();
    if (c->max_age_ms && now > stored && now - stored > c->max_age_ms) return CACHE_MISSING;
    size_t head = (size_t)(nl + 1 - rep->str);
    if (buf_append(c->out, nl + 1, len - head) != BUF_OK) return CACHE_MISSING;
    return CACHE_FOUND;
}

static void on_lookup_reply(redisAsyncContext *ctx, void *reply, void *privdata)
{
    lookup_call *c = privdata;
    redisReply *rep = reply;
    if (rep) {
        redis_conn_heard(&c->r->conn);
        redis_conn_back(&c->r->conn);
    }
    if (!c->call.answered) answer(c, rep ? read_entry(c, rep) : CACHE_UNAVAILABLE);
    redis_conn_untrack(&c->r->conn, &c->call);
    free(c);
}

static void hex(const uint8_t key[CACHE_KEY_BYTES], char out[2 * CACHE_KEY_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CACHE_KEY_BYTES; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[2 * CACHE_KEY_BYTES] = '\0';
}

static cache_lookup_result redis_lookup(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES],
                                        uint64_t max_age_ms, buf *out, cache_lookup_done done, void *data)
{
    redis_backend *r = (redis_backend *)b;
    if (!done || !redis_conn_ready(&r->conn) || r->conn.inflight >= CACHE_REDIS_INFLIGHT_MAX) {
        redis_outage_unanswered(&outage);
        return CACHE_UNAVAILABLE;
    }
    lookup_call *c = calloc(1, sizeof *c);
    if (!c) abort();
    *c = (lookup_call){.r = r, .done = done, .data = data, .out = out, .max_age_ms = max_age_ms};
    char name[sizeof r->prefix + 2 * CACHE_KEY_BYTES + 1];
    char h[2 * CACHE_KEY_BYTES + 1];
    hex(key, h);
    int nl = snprintf(name, sizeof name, "%s%s", r->prefix, h);
    char end[24];
    int el = snprintf(end, sizeof end, "%zu", r->max_entry_bytes + ENTRY_HEAD_MAX);
    const char *argv[] = {"GETRANGE", name, "0", end};
    size_t argvlen[] = {8, (size_t)nl, 1, (size_t)el};
    redis_conn_track(&r->conn, &c->call);
    if (redisAsyncCommandArgv(r->conn.ctx, on_lookup_reply, c, 4, argv, argvlen) != REDIS_OK) {
        redis_conn_untrack(&r->conn, &c->call);
        free(c);
        redis_outage_unanswered(&outage);
        return CACHE_UNAVAILABLE;
    }
    return CACHE_PENDING;
}

/* ---- stores -------------------------------------------------------------------------------------- */

static void on_store_reply(redisAsyncContext *ctx, void *reply, void *privdata)
{
    store_call *s = privdata;
    if (reply && s->r->conn.ctx == ctx) {
        redis_conn_heard(&s->r->conn);
        if (s->r->store_bytes >= s->bytes) s->r->store_bytes -= s->bytes;
    }
    free(s);
}

static void redis_store(cache_backend *b, const uint8_t key[CACHE_KEY_BYTES], const char *value, size_t len,
                        uint64_t ttl_ms)
{
    redis_backend *r = (redis_backend *)b;
    if (!redis_conn_ready(&r->conn) || len > r->max_entry_bytes ||
        r->store_bytes + len > CACHE_REDIS_STORE_BYTES_MAX) {
        atomic_fetch_add(&stores_dropped, 1);
        return;
    }
    char name[sizeof r->prefix + 2 * CACHE_KEY_BYTES + 1];
    char h[2 * CACHE_KEY_BYTES + 1];
    hex(key, h);
    int nl = snprintf(name, sizeof name, "%s%s", r->prefix, h);
    char head[ENTRY_HEAD_MAX];
    int hl = snprintf(head, sizeof head, "%llu\n", (unsigned long long)time_wall_ms());
    char *v = malloc((size_t)hl + len);
    if (!v) abort();
    memcpy(v, head, (size_t)hl);
    memcpy(v + hl, value, len);
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)(ttl_ms ? ttl_ms : 1));
    const char *argv[] = {"SET", name, v, "PX", ttl};
    size_t argvlen[] = {3, (size_t)nl, (size_t)hl + len, 2, (size_t)tl};
    store_call *s = malloc(sizeof *s);
    if (!s) abort();
    *s = (store_call){.r = r, .bytes = (size_t)hl + len};
    if (redisAsyncCommandArgv(r->conn.ctx, on_store_reply, s, 5, argv, argvlen) == REDIS_OK)
        r->store_bytes += s->bytes;
    else {
        free(s);
        atomic_fetch_add(&stores_dropped, 1);
    }
    free(v); /* hiredis formatted its own copy */
}

static void redis_stats(cache_backend *b, cache_stats *out)
{
    (void)b;
    memset(out, 0, sizeof *out); /* what Redis holds is Redis's to say (INFO memory) */
}

static void redis_free(cache_backend *b)
{
    redis_backend *r = (redis_backend *)b;
    if (r) redis_conn_close(&r->conn); /* on_closed frees r */
}

static const cache_backend_ops redis_ops = {
    .name = "redis",
    .lookup = redis_lookup,
    .store = redis_store,
    .stats = redis_stats,
    .free = redis_free,
};

cache_backend *cache_redis_new(uv_loop_t *loop, const redis_target *target, const char *prefix,
                               uint32_t timeout_ms, size_t max_entry_bytes)
{
    redis_backend *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->base.ops = &redis_ops;
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    r->max_entry_bytes = max_entry_bytes;
    redis_conn_open(&r->conn, loop, target, timeout_ms, "no answer within cache.redis.timeout", &outage,
                    &hooks, r);
    return &r->base;
}

/* ---- the semantic index's vectors ----------------------------------------------------------------- */

/* "<prefix>v:<bucket hex>:<key hex>" */
static int vector_name(char *out, size_t size, const char *prefix, const uint8_t bucket[CACHE_KEY_BYTES],
                       const uint8_t key[CACHE_KEY_BYTES])
{
    char hb[2 * CACHE_KEY_BYTES + 1], hk[2 * CACHE_KEY_BYTES + 1];
    hex(bucket, hb);
    hex(key, hk);
    return snprintf(out, size, "%sv:%s:%s", prefix, hb, hk);
}

void cache_redis_store_vector(cache_backend *b, const uint8_t bucket[CACHE_KEY_BYTES],
                              const uint8_t key[CACHE_KEY_BYTES], const float *v, uint32_t dims,
                              uint64_t ttl_ms)
{
    redis_backend *r = (redis_backend *)b;
    size_t len = (size_t)dims * sizeof(float);
    if (b->ops != &redis_ops) return;
    if (!redis_conn_ready(&r->conn) || !dims || dims > CACHE_INDEX_DIMS_MAX ||
        r->store_bytes + len > CACHE_REDIS_STORE_BYTES_MAX) {
        atomic_fetch_add(&stores_dropped, 1);
        return;
    }
    char name[sizeof r->prefix + 4 * CACHE_KEY_BYTES + 8];
    int nl = vector_name(name, sizeof name, r->prefix, bucket, key);
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)(ttl_ms ? ttl_ms : 1));
    const char *argv[] = {"SET", name, (const char *)v, "PX", ttl};
    size_t argvlen[] = {3, (size_t)nl, len, 2, (size_t)tl};
    store_call *s = malloc(sizeof *s);
    if (!s) abort();
    *s = (store_call){.r = r, .bytes = len};
    if (redisAsyncCommandArgv(r->conn.ctx, on_store_reply, s, 5, argv, argvlen) == REDIS_OK)
        r->store_bytes += s->bytes;
    else {
        free(s);
        atomic_fetch_add(&stores_dropped, 1);
    }
}

static bool unhex(const char *s, uint8_t out[CACHE_KEY_BYTES])
{
    for (size_t i = 0; i < CACHE_KEY_BYTES; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return true;
}

#define LOAD_BATCH 256
#define LOAD_TIME_MAX_MS 3000

size_t cache_redis_load_vectors(const redis_target *target, const char *prefix, uint32_t timeout_ms,
                                cache_index *ix, size_t max, char *err, size_t errlen)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = target->path[0] ? redisConnectUnixWithTimeout(target->path, tv)
                                      : redisConnectWithTimeout(target->host, target->port, tv);
    size_t loaded = 0;
    if (!c || c->err) {
        snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return 0;
    }
    redisSetTimeout(c, tv);
    if (target->db) {
        redisReply *sel = redisCommand(c, "SELECT %d", target->db);
        if (sel) freeReplyObject(sel);
    }
    char pattern[128];
    snprintf(pattern, sizeof pattern, "%sv:*", prefix);
    size_t plen = strlen(prefix) + 2, name_len = plen + 4 * CACHE_KEY_BYTES + 1;
    char cursor[32] = "0", range_end[24];
    snprintf(range_end, sizeof range_end, "%zu", (size_t)CACHE_INDEX_DIMS_MAX * sizeof(float) - 1);
    uint64_t start = time_wall_ms(), now = start;
    do {
        redisReply *scan = redisCommand(c, "SCAN %s MATCH %s COUNT %d", cursor, pattern, LOAD_BATCH);
        if (!scan || scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 ||
            scan->element[0]->type != REDIS_REPLY_STRING || scan->element[1]->type != REDIS_REPLY_ARRAY ||
            scan->element[0]->len >= (int)sizeof cursor || scan->element[1]->elements > 8 * LOAD_BATCH) {
            snprintf(err, errlen, "%s", c->err ? c->errstr : "an unexpected SCAN reply");
            if (scan) freeReplyObject(scan);
            break;
        }
        memcpy(cursor, scan->element[0]->str, (size_t)scan->element[0]->len + 1);
        redisReply *names = scan->element[1];
        size_t n = 0;
        for (size_t i = 0; i < names->elements; i++) {
            redisReply *k = names->element[i];
            if (k->type != REDIS_REPLY_STRING || (size_t)k->len != name_len) continue;
            redisAppendCommand(c, "GETRANGE %b 0 %s", k->str, (size_t)k->len, range_end);
            redisAppendCommand(c, "PTTL %b", k->str, (size_t)k->len);
            n++;
        }
        uint64_t wall = time_wall_ms();
        for (size_t i = 0, sent = 0; i < names->elements && sent < n; i++) {
            redisReply *k = names->element[i];
            if (k->type != REDIS_REPLY_STRING || (size_t)k->len != name_len) continue;
            sent++;
            redisReply *val = NULL, *ttl = NULL;
            if (redisGetReply(c, (void **)&val) != REDIS_OK || redisGetReply(c, (void **)&ttl) != REDIS_OK) {
                if (val) freeReplyObject(val);
                n = 0;
                break;
            }
            uint8_t bucket[CACHE_KEY_BYTES], key[CACHE_KEY_BYTES];
            const char *hexes = k->str + plen;
            size_t vlen = val->type == REDIS_REPLY_STRING ? (size_t)val->len : 0;
            if (loaded < max && vlen && vlen % sizeof(float) == 0 && ttl->type == REDIS_REPLY_INTEGER &&
                ttl->integer > 0 && hexes[2 * CACHE_KEY_BYTES] == ':' && unhex(hexes, bucket) &&
                unhex(hexes + 2 * CACHE_KEY_BYTES + 1, key)) {
                uint32_t dims = (uint32_t)(vlen / sizeof(float));
                float *v = malloc(vlen);
                if (!v) abort();
                memcpy(v, val->str, vlen);
                if (cache_index_normalize(v, dims) &&
                    cache_index_insert(ix, bucket, key, v, dims, wall, (uint64_t)ttl->integer))
                    loaded++;
                free(v);
            }
            freeReplyObject(val);
            freeReplyObject(ttl);
        }
        freeReplyObject(scan);
        now = time_wall_ms();
    } while (strcmp(cursor, "0") && loaded < max && now - start < LOAD_TIME_MAX_MS && !c->err);
    redisFree(c);
    return loaded;
}
