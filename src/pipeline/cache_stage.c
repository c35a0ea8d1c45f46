/* cache_stage.c — the CACHE phase: a stored reply answers the request, and the response filters
 * store a complete successful reply for the next identical request (docs/cache.md).
 *
 * After PLAN, the request's route tree says whether it is cached (its `cache` block, from the
 * config's route or the request's x-aigw-config / x-portkey-config; else the file's
 * `cache.mode`). A request nobody asked to cache costs one branch here and nothing in the
 * filters. One that is: its controls are read (x-aigw-cache, Cache-Control,
 * x-portkey-cache-force-refresh), its key made (src/cache: a keyed digest of the request's
 * canonical form in its namespace, walked with no tree; the same walk gives the few members
 * read here: n, logprobs, stream_options), and the backend asked. A hit is replayed in the
 * shape the client asked — one JSON body, or a stream of its format's events, whichever shape
 * stored it — with the stored usage and a cost of 0: both shapes are in the entry, rendered
 * when it was stored, so a hit parses no JSON. A miss goes on to EXECUTE; its reply is read
 * back into one canonical reply as it goes out (providers' collector, on_head/on_body/on_end)
 * and stored only when it is complete: status 200, the stream's end marker, finish stop,
 * length or tool_calls, the client still there.
 *
 * The backend is the process's memory, or Redis through the worker's own connection: a Redis
 * lookup answers later, and the stage waits for it (exchange_suspend; one ticket for a chain of
 * waits, given back once); Redis down or slower than its timeout makes the request BYPASS.
 *
 * `mode: semantic` (with cache.semantic.embedding_model): after an exact miss, the last user
 * turn is embedded by an internal attempt (attempt_new_request) walking the embedding model's
 * route — its retries after their backoff on the request's timer, its fallbacks, at most
 * EMBED_ATTEMPTS_MAX calls — and the nearest vector of the request's bucket in the process's
 * index (src/cache/cache_index.c) names the entry that answers, SEMANTIC_HIT, when its cosine
 * similarity reaches the threshold. An embedding that fails leaves the request a plain miss.
 * The client leaving stops the embedding call; a Redis lookup is waited for (its callback
 * holds the state), which its timeout bounds.
 *
 * Concurrent identical misses each go upstream and each store its own complete reply; the
 * last one stored stays. An entry is written whole before a reader can see it (the backend's
 * contract), so none is ever half one reply and half another.
 *
 * The secret the keys are made with: a subkey of the deployment's digest secret when auth is
 * on (auth.c loads it), else a random one made at start (the memory backend dies with the
 * process anyway). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "access/access.h"
#include "cache/cache.h"
#include "pipeline/attempt.h"
#include "pipeline/stages.h"
#include "server/http_conn.h"
#include "server/worker.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/redis_target.h"
#include "util/units.h"

static cache_backend *backend; /* memory; with Redis each worker has its own (worker state) */
static cache_secret secret;
static size_t max_entry_bytes;
static bool use_redis;
static redis_target redis_where;
static uint32_t redis_timeout_ms;
static char redis_prefix[64];
static cache_index *semantic_index; /* the semantic index; NULL without cache.semantic.embedding_model */
static _Atomic uint64_t embed_failures;

/* Embedding calls one semantic lookup may make (retries and fallbacks included). */
#define EMBED_ATTEMPTS_MAX 4

uint64_t cache_stage_embed_failures(void)
{
    return atomic_load(&embed_failures);
}

cache_index *cache_stage_index(void)
{
    return semantic_index;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef enum cache_result {
    RESULT_HIT,
    RESULT_MISS,
    RESULT_SEMANTIC_HIT,
    RESULT_REFRESH,
    RESULT_BYPASS
} cache_result;

static const char *const result_names[] = {"HIT", "MISS", "SEMANTIC_HIT", "REFRESH", "BYPASS"};
/* Portkey's x-portkey-cache-status words for the same */
static const char *const portkey_names[] = {"HIT", "MISS", "SEMANTIC HIT", "REFRESH", "DISABLED"};

typedef enum lookup_step { STEP_EXACT, STEP_SEMANTIC } lookup_step;

typedef struct cache_state {
    exchange *x;
    bool armed; /* store the reply that goes out */
    bool portkey, refresh;
    uint8_t key[CACHE_KEY_BYTES];
    uint32_t max_age_s;
    uint64_t ttl_ms;
    reply_collector *rc;
    bool include_usage;    /* stream_options.include_usage: a replayed OpenAI stream has the usage chunk */
    struct json_t *parsed; /* semantic only: the client's body, parsed (held while the stage waits) */
    /* waiting (one ticket for the whole chain of waits) */
    exchange_ticket ticket;
    bool waiting, lookup_pending, timer_pending, aborted;
    lookup_step step; /* which key the lookup in flight is for */
    buf entry;        /* what the lookup found */
    /* semantic: the bucket, the embedding call, the vector (kept to be indexed on a store) */
    bool semantic;
    uint8_t bucket[CACHE_KEY_BYTES];
    const char *embed_body;
    size_t embed_body_len;
    route_walk *embed_walk;
    route_target embed_target;
    attempt *embed;
    int embed_tries;
    float *vector;
    uint32_t dims;
} cache_state;

cache_backend *cache_stage_backend(void)
{
    return backend; /* NULL with Redis: what it holds is Redis's to say */
}

/* ---- start and stop ----------------------------------------------------------------------- */

static bool cache_start(const aigw_config *cfg, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "cache: libsodium cannot start (no random source)");
        return false;
    }
    const access_secret *s = auth_secret();
    if (s)
        cache_secret_derive(s->bytes, &secret);
    else
        cache_secret_random(&secret);
    /* The backend is made at start with the file's bounds; a reload keeps it (docs/cache.md). */
    const cache_settings *c = &cfg->cache;
    use_redis = c->backend == CACHE_BACKEND_REDIS;
    if (use_redis) {
        if (!auth_secret())
            log_event(LOG_WARN, "cache_redis_secret",
                      "cache: the Redis backend without auth.secret: this process's keys are random, so "
                      "entries are not shared with other instances nor kept across a restart");
        if (!redis_target_parse(c->redis.url, "cache.redis.url", &redis_where, err, errlen)) return false;
        redis_timeout_ms = c->redis.timeout_ms;
        snprintf(redis_prefix, sizeof redis_prefix, "%s", c->redis.prefix);
    }
    /* with Redis, each worker has its own connection (cache_worker_init) */
    if (!use_redis) backend = cache_memory_new(c->max_bytes, c->max_entry_bytes);
    max_entry_bytes = c->max_entry_bytes;
    if (c->semantic.embedding_model[0]) {
        const char *name = c->semantic.embedding_model;
        if (!config_find_model(cfg, name, strlen(name))) {
            snprintf(err, errlen, "cache.semantic.embedding_model: '%.200s' is not a model the config serves",
                     name);
            return false;
        }
        semantic_index = cache_index_new((size_t)c->semantic.max_entries, c->semantic.max_bytes);
        if (use_redis) { /* the vectors other instances (and this one, before) stored */
            char why[256] = "";
            size_t n = cache_redis_load_vectors(&redis_where, redis_prefix, redis_timeout_ms, semantic_index,
                                                (size_t)c->semantic.max_entries, why, sizeof why);
            if (why[0])
                log_event(
                    LOG_WARN, "cache_vectors_load",
                    "cache: the semantic index's vectors could not all be read from Redis (%s); %zu loaded",
                    why, n);
            else
                log_event(LOG_INFO, "cache_vectors_loaded", "cache: %zu semantic vectors loaded from Redis",
                          n);
        }
    }
    return true;
}

static void cache_stop(void)
{
    if (backend) backend->ops->free(backend);
    backend = NULL;
    cache_index_free(semantic_index);
    semantic_index = NULL;
    sodium_memzero(&secret, sizeof secret);
}

static void *cache_worker_init(struct worker *w)
{
    return use_redis
               ? cache_redis_new(&w->loop, &redis_where, redis_prefix, redis_timeout_ms, max_entry_bytes)
               : NULL;
}

static void cache_worker_close(void *state)
{
    cache_backend *b = state;
    if (b) b->ops->free(b);
}

/* ---- the request -------------------------------------------------------------------------- */

/* Adds "name: value" to the lines every response of this request carries (after the rate-limit
 * lines ADMIT may have kept). */
static void keep_line(exchange *x, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), len = x->kept_head_len + nl + vl + 4;
    char *h = arena_alloc(x->arena, len);
    if (x->kept_head_len) memcpy(h, x->kept_head, x->kept_head_len);
    char *p = h + x->kept_head_len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    exchange_keep_head(x, h, len);
}

static void set_result(exchange *x, cache_result r, bool portkey)
{
    x->cache.status = result_names[r];
    x->cache.hit = r == RESULT_HIT || r == RESULT_SEMANTIC_HIT;
    keep_line(x, "x-aigw-cache", result_names[r]);
    if (portkey) keep_line(x, "x-portkey-cache-status", portkey_names[r]);
    if (r == RESULT_SEMANTIC_HIT) {
        char sim[24];
        snprintf(sim, sizeof sim, "%.4f", (double)x->cache.similarity);
        keep_line(x, "x-aigw-cache-similarity", sim);
    }
}

static bool header_is(const http_header *h, const char *value)
{
    return h && h->value_len == strlen(value) && !strncasecmp(h->value, value, h->value_len);
}

/* Cache-Control's directives include name (a comma-separated list, any case). */
static bool has_directive(const http_header *h, const char *name)
{
    if (!h) return false;
    size_t n = strlen(name);
    for (size_t i = 0; i < h->value_len;) {
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == ',' || h->value[i] == '\t'))
            i++;
        size_t j = i;
        while (j < h->value_len && h->value[j] != ',' && h->value[j] != ' ' && h->value[j] != '=')
            j++;
        if (j - i == n && !strncasecmp(h->value + i, name, n)) return true;
        while (j < h->value_len && h->value[j] != ',')
            j++;
        i = j;
    }
    return false;
}

/* The namespace the request's entries live in: its gateway key's (or team's) unless shared; the
 * master key its own; without auth the provider credential the client sent ("" when none). */
static void request_namespace(exchange *x, const char **ns, size_t *len)
{
    const aigw_config *cfg = x->config;
    *ns = "";
    *len = 0;
    if (cfg->cache.namespace_kind == CACHE_NAMESPACE_SHARED) return;
    if (x->master_key) {
        *ns = "master:";
    } else if (x->key) {
        const char *team = x->key->team;
        if (cfg->cache.namespace_kind == CACHE_NAMESPACE_TEAM && team && *team) {
            size_t tl = strlen(team);
            char *t = arena_alloc(x->arena, tl + 6);
            memcpy(t, "team:", 5);
            memcpy(t + 5, team, tl + 1);
            *ns = t;
        } else {
            size_t il = strlen(x->key->id);
            char *k = arena_alloc(x->arena, il + 5);
            memcpy(k, "key:", 4);
            memcpy(k + 4, x->key->id, il + 1);
            *ns = k;
        }
    } else {
        /* no gateway keys: the client's own credential (what a keyless provider is sent) */
        const char *key;
        size_t klen;
        if (access_key_from_headers(x->http->headers, x->http->nheaders, &key, &klen)) {
            char *c = arena_alloc(x->arena, klen + 6);
            memcpy(c, "cred:", 5);
            memcpy(c + 5, key, klen);
            c[klen + 5] = '\0';
            *ns = c;
        }
    }
    *len = strlen(*ns);
}

/* The top-level members the stage reads, found by the key's walk (cache_key_input.fields). */
enum { FIELD_N, FIELD_LOGPROBS, FIELD_STREAM_OPTIONS, NFIELDS };

static bool span_is(const char *body, const json_field *f, json_kind kind, const char *text)
{
    size_t n = strlen(text);
    return f->type == kind && f->end - f->start == n && !memcmp(body + f->start, text, n);
}

/* Why a request whose key was made is not cached whatever its config says (NULL: it may be):
 * n other than the integer 1, logprobs true. */
static const char *uncacheable(const char *body, const json_field *f)
{
    if (f[FIELD_N].type != JSON_KIND_ABSENT && !span_is(body, &f[FIELD_N], JSON_KIND_NUMBER, "1"))
        return "n is not 1";
    if (f[FIELD_LOGPROBS].type == JSON_KIND_TRUE) return "logprobs are not stored";
    return NULL;
}

/* stream_options.include_usage is true (the walk has validated the member's object). */
static bool wants_usage(const char *body, const json_field *options)
{
    if (options->type != JSON_KIND_OBJECT) return false;
    json_field f = {.key = "include_usage"};
    return json_scan_object(body + options->start, options->end - options->start, &f, 1, NULL, NULL) &&
           f.type == JSON_KIND_TRUE;
}

/* A stored reply answers: the stored body, or the stored stream in the client's format (without
 * its usage chunk unless asked), with the stored usage and a cost of 0. The entry's bytes are
 * the stage's copy (cs->entry), which it may edit. false when the entry cannot be read (then it
 * is a miss). */
static bool answer_hit(exchange *x, cache_state *cs, char *data, size_t len, cache_result result)
{
    cache_entry e;
    if (!cache_entry_parse(data, len, &e) || e.format != (int)x->ingress) return false;
    set_result(x, result, cs->portkey);
    x->cache.usage = e.usage;
    x->cache.saved_usd = e.cost_usd > 0 ? e.cost_usd : 0;
    static const char cost_line[] = "x-aigw-cost-usd: 0\r\n";
    if (!x->stream) {
        exchange_respond(x, 200, "application/json", cost_line, sizeof cost_line - 1, e.body, e.body_len);
        return true;
    }
    size_t stream_len = e.stream_len;
    if (e.usage_len && !cs->include_usage) { /* the usage chunk out: what follows it moves up */
        char *s = data + (e.stream - data);
        memmove(s + e.usage_at, s + e.usage_at + e.usage_len, e.stream_len - e.usage_at - e.usage_len);
        stream_len -= e.usage_len;
    }
    exchange_stream_begin(x, 200, "text/event-stream", cost_line, sizeof cost_line - 1);
    exchange_stream_end(x, e.stream, stream_len);
    return true;
}

/* ---- waiting: a Redis lookup, the embedding call ------------------------------------------------- */

static stage_result after_exact_miss(exchange *x, cache_state *cs);
static stage_result semantic_search(exchange *x, cache_state *cs);
static stage_result embed_next(exchange *x, cache_state *cs);

/* The request waits (on its first wait only: one ticket for the whole chain). */
static void wait_begin(exchange *x, cache_state *cs)
{
    if (cs->waiting) return;
    cs->ticket = exchange_suspend(x);
    cs->waiting = true;
}

/* A wait ended with r: AGAIN means another wait began; anything else gives the ticket back. */
static void wait_end(cache_state *cs, stage_result r)
{
    if (r == STAGE_AGAIN || !cs->waiting) return;
    cs->waiting = false;
    exchange_resume(cs->ticket, r);
}

static void drop_body(cache_state *cs)
{
    json_decref(cs->parsed);
    cs->parsed = NULL;
}

/* A miss (or a refresh): the reply will be stored, and its vector indexed when there is one. */
static stage_result go_uncached(exchange *x, cache_state *cs, cache_result r)
{
    drop_body(cs);
    if (cs->refresh && r == RESULT_MISS) r = RESULT_REFRESH;
    set_result(x, r, cs->portkey);
    if (r == RESULT_BYPASS) return STAGE_NEXT;
    cs->armed = true;
    return STAGE_NEXT;
}

static cache_backend *request_backend(exchange *x)
{
    cache_backend *b = exchange_worker_state(x, &stage_cache);
    return b ? b : backend;
}

/* What a lookup's answer means for the request (step EXACT or SEMANTIC: which key it was). */
static stage_result lookup_answered(exchange *x, cache_state *cs, cache_lookup_result r)
{
    if (r == CACHE_FOUND) {
        bool semantic = cs->step == STEP_SEMANTIC;
        bool answered =
            answer_hit(x, cs, cs->entry.data, cs->entry.len, semantic ? RESULT_SEMANTIC_HIT : RESULT_HIT);
        buf_free(&cs->entry);
        if (answered) {
            drop_body(cs);
            return STAGE_DONE;
        }
        r = CACHE_MISSING;
    }
    buf_free(&cs->entry);
    if (r == CACHE_UNAVAILABLE) {
        /* the backend cannot be asked now: the request goes on uncached, nothing is stored */
        cs->semantic = false;
        return go_uncached(x, cs, RESULT_BYPASS);
    }
    return cs->step == STEP_EXACT ? after_exact_miss(x, cs) : go_uncached(x, cs, RESULT_MISS);
}

static void on_lookup_done(void *data, cache_lookup_result r)
{
    cache_state *cs = data;
    cs->lookup_pending = false;
    if (cs->aborted) { /* the client left meanwhile: the ticket was kept for this callback */
        buf_free(&cs->entry);
        wait_end(cs, STAGE_DONE);
        return;
    }
    wait_end(cs, lookup_answered(cs->x, cs, r));
}

/* Asks the backend for key (into cs->entry). */
static stage_result lookup(exchange *x, cache_state *cs, const uint8_t key[CACHE_KEY_BYTES])
{
    cache_backend *b = request_backend(x);
    buf_init(&cs->entry, max_entry_bytes + 256);
    cache_lookup_result r =
        b->ops->lookup(b, key, (uint64_t)cs->max_age_s * 1000, &cs->entry, on_lookup_done, cs);
    if (r != CACHE_PENDING) return lookup_answered(x, cs, r);
    cs->lookup_pending = true;
    wait_begin(x, cs);
    return STAGE_AGAIN;
}

/* ---- the semantic lookup: the last user turn embedded through the config's providers ----------- */

/* The embedding's reply: data[0].embedding, a list of numbers, normalized into cs->vector. */
static bool read_vector(exchange *x, cache_state *cs, const attempt *a)
{
    json_error_t jerr;
    json_t *reply = json_loadb(a->reply.data ? a->reply.data : "", a->reply.len, 0, &jerr);
    json_t *v = json_object_get(json_array_get(json_object_get(reply, "data"), 0), "embedding");
    size_t n = json_array_size(v);
    bool ok = n > 0 && n <= CACHE_INDEX_DIMS_MAX;
    if (ok) {
        cs->vector = arena_alloc(x->arena, n * sizeof(float));
        cs->dims = (uint32_t)n;
        for (size_t i = 0; i < n && ok; i++) {
            json_t *e = json_array_get(v, i);
            ok = json_is_number(e);
            cs->vector[i] = (float)json_number_value(e);
        }
        ok = ok && cache_index_normalize(cs->vector, cs->dims);
    }
    json_decref(reply);
    if (!ok) cs->vector = NULL;
    return ok;
}

static void embed_on_end(attempt *a)
{
    exchange *x = a->x;
    cache_state *cs = a->sink_data;
    cs->embed = NULL;
    bool ok = a->outcome == ATTEMPT_ANSWERED && a->result == ATTEMPT_OK;
    route_report(cs->embed_walk, &(attempt_report){.result = ok ? ATTEMPT_OK : a->result,
                                                   .status = a->status,
                                                   .retry_after_ms = a->retry_after_ms,
                                                   .local = a->outcome == ATTEMPT_REFUSED});
    stage_result r;
    if (!ok)
        r = embed_next(x, cs); /* a retry or a fallback, as the embedding model's route says */
    else if (read_vector(x, cs, a))
        r = semantic_search(x, cs);
    else {
        atomic_fetch_add(&embed_failures, 1);
        cs->semantic = false;
        r = go_uncached(x, cs, RESULT_MISS);
    }
    wait_end(cs, r);
}

static bool embed_on_head(attempt *a)
{
    return true; /* the reply is buffered whole (a->reply, bounded by max_response_bytes) */
}

static const attempt_sink embed_sink = {.on_head = embed_on_head, .on_end = embed_on_end};

static stage_result embed_send(exchange *x, cache_state *cs)
{
    const route_target *t = &cs->embed_target;
    if (!route_begin(cs->embed_walk, t)) return embed_next(x, cs); /* its breaker is open */
    const aigw_config *cfg = x->config;
    attempt *a = attempt_new_request(x, t, &embed_sink, cs, ENDPOINT_EMBEDDINGS,
                                     cfg->cache.semantic.embedding_model, cs->embed_body, cs->embed_body_len);
    if (attempt_prepare(a) != PREP_READY) {
        route_report(
            cs->embed_walk,
            &(attempt_report){.result = ATTEMPT_STATUS, .status = 400, .retry_after_ms = -1, .local = true});
        return embed_next(x, cs);
    }
    if (!attempt_send(a)) {
        route_report(cs->embed_walk, &(attempt_report){.result = ATTEMPT_CONNECT, .retry_after_ms = -1});
        return embed_next(x, cs);
    }
    cs->embed = a;
    wait_begin(x, cs);
    return STAGE_AGAIN;
}

static void embed_waited(http_request *req)
{
    exchange *x = req->app;
    cache_state *cs = exchange_state(x, &stage_cache);
    cs->timer_pending = false;
    wait_end(cs, embed_send(x, cs));
}

/* The next target of the embedding model's walk, after its backoff; none left: the request goes
 * on uncached (the embedding provider is down — the cache never fails a request). */
static stage_result embed_next(exchange *x, cache_state *cs)
{
    if (cs->aborted) return STAGE_DONE;
    if (++cs->embed_tries > EMBED_ATTEMPTS_MAX || !route_next(cs->embed_walk, &cs->embed_target)) {
        atomic_fetch_add(&embed_failures, 1);
        cs->semantic = false;
        return go_uncached(x, cs, RESULT_MISS);
    }
    if (cs->embed_target.wait_ms) {
        cs->timer_pending = true;
        wait_begin(x, cs);
        http_request_timer(x->http, cs->embed_target.wait_ms, embed_waited);
        return STAGE_AGAIN;
    }
    return embed_send(x, cs);
}

/* The exact entry is missing: a semantic request embeds its last user turn. */
static stage_result after_exact_miss(exchange *x, cache_state *cs)
{
    if (!cs->semantic) return go_uncached(x, cs, RESULT_MISS);
    const aigw_config *cfg = x->config;
    const char *name = cfg->cache.semantic.embedding_model;
    const model_route *r = config_find_model(cfg, name, strlen(name));
    if (!r || !r->tree) {
        cs->semantic = false;
        return go_uncached(x, cs, RESULT_MISS);
    }
    route_context ctx = {
        .arena = x->arena, .state = cfg->health, .config = cfg, .model = name, .rng = &x->http->worker->rng};
    cs->embed_walk = route_walk_new(&ctx, r->tree);
    return embed_next(x, cs);
}

/* The index's scans and inserts run on libuv's thread pool: a scan reads every vector of its
 * bucket (milliseconds at ten thousand, bench/RESULTS.md "Response cache"), and an insert waits
 * for the scans that hold the index's read lock — neither may hold up a worker's loop. A search
 * is a pending lookup to the stage: a client that leaves meanwhile is answered by its callback
 * (lookup_pending keeps the ticket), the request's vector stays in its arena until then. */
typedef struct index_job {
    uv_work_t work;
    cache_state *cs; /* a search's; NULL for an insert */
    uint8_t bucket[CACHE_KEY_BYTES], key[CACHE_KEY_BYTES];
    const float *vector;
    uint32_t dims;
    uint64_t now_ms, ttl_ms;
    float threshold, similarity;
    bool near;
    float copy[]; /* an insert's vector: the request may be gone when it runs */
} index_job;

static void search_run(uv_work_t *work)
{
    index_job *j = work->data;
    j->near = cache_index_nearest(semantic_index, j->bucket, j->vector, j->dims, j->now_ms, j->threshold,
                                  j->key, &j->similarity);
}

static void search_done(uv_work_t *work, int status)
{
    index_job *j = work->data;
    cache_state *cs = j->cs;
    cs->lookup_pending = false;
    stage_result r = STAGE_DONE;
    if (!cs->aborted) {
        exchange *x = cs->x;
        x->cache.similarity = j->similarity;
        if (status != 0 || !j->near || cs->refresh) {
            r = go_uncached(x, cs, RESULT_MISS);
        } else {
            cs->step = STEP_SEMANTIC;
            r = lookup(x, cs, j->key);
        }
    }
    free(j);
    wait_end(cs, r);
}

/* The vector is known: the nearest stored one of the bucket (on the thread pool), and then its
 * entry when close enough. */
static stage_result semantic_search(exchange *x, cache_state *cs)
{
    if (!semantic_index) return go_uncached(x, cs, RESULT_MISS);
    index_job *j = xcalloc(1, sizeof *j);
    j->work.data = j;
    j->cs = cs;
    memcpy(j->bucket, cs->bucket, sizeof j->bucket);
    j->vector = cs->vector;
    j->dims = cs->dims;
    j->now_ms = wall_ms();
    j->threshold = (float)x->config->cache.semantic.threshold;
    cs->lookup_pending = true;
    wait_begin(x, cs);
    uv_queue_work(&x->http->worker->loop, &j->work, search_run, search_done);
    return STAGE_AGAIN;
}

static void insert_run(uv_work_t *work)
{
    index_job *j = work->data;
    cache_index_insert(semantic_index, j->bucket, j->key, j->copy, j->dims, j->now_ms, j->ttl_ms);
}

static void insert_done(uv_work_t *work, int status)
{
    free(work->data);
}

/* A stored reply's vector into the index, on the thread pool (a copy: the request ends now). */
static void index_insert(exchange *x, const cache_state *cs)
{
    index_job *j = xmalloc(sizeof *j + cs->dims * sizeof(float));
    *j = (index_job){.dims = cs->dims, .now_ms = wall_ms(), .ttl_ms = cs->ttl_ms};
    j->work.data = j;
    memcpy(j->bucket, cs->bucket, sizeof j->bucket);
    memcpy(j->key, cs->key, sizeof j->key);
    memcpy(j->copy, cs->vector, cs->dims * sizeof(float));
    uv_queue_work(&x->http->worker->loop, &j->work, insert_run, insert_done);
}

/* The request's embedding body: {"model","input","encoding_format"[,"dimensions"]}. */
static bool embed_body(exchange *x, cache_state *cs, const char *text, size_t len)
{
    const aigw_config *cfg = x->config;
    json_t *j = json_pack("{s:s, s:s#, s:s}", "model", cfg->cache.semantic.embedding_model, "input", text,
                          len, "encoding_format", "float");
    if (!j) return false;
    if (cfg->cache.semantic.dimensions)
        json_object_set_new(j, "dimensions", json_integer(cfg->cache.semantic.dimensions));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return false;
    cs->embed_body_len = strlen(s);
    cs->embed_body = arena_strndup(x->arena, s, cs->embed_body_len);
    free(s);
    return true;
}

static stage_result cache_on_request(exchange *x, void *state)
{
    /* a reasoning technique's samples are meant to differ: neither it nor its calls are cached */
    if (!x->walk || !request_backend(x) || x->reasoning.technique) return STAGE_DECLINED;
    const route_tree *tree = route_walk_tree(x->walk);
    route_cache_mode mode = tree->cache.mode;
    if (mode == ROUTE_CACHE_UNSET)
        mode = x->config->cache.default_simple ? ROUTE_CACHE_SIMPLE : ROUTE_CACHE_OFF;
    if (mode == ROUTE_CACHE_OFF) return STAGE_DECLINED; /* not asked: nothing more is done */
    cache_state *cs = state;
    cs->x = x;
    cs->portkey = tree->portkey;

    /* the request's controls */
    const http_header *own = exchange_header(x, "x-aigw-cache");
    const http_header *cc = exchange_header(x, "cache-control");
    bool no_store = has_directive(cc, "no-store"), refresh = has_directive(cc, "no-cache");
    if (own) {
        if (header_is(own, "no-store"))
            no_store = true;
        else if (header_is(own, "refresh"))
            refresh = true;
        else {
            exchange_refuse(x, tree->name, 400, "invalid_cache_control", "x-aigw-cache",
                            "x-aigw-cache must be no-store or refresh");
            return STAGE_DONE;
        }
    }
    const http_header *force = exchange_header(x, "x-portkey-cache-force-refresh");
    if (header_is(force, "true")) refresh = true;
    if (no_store) {
        set_result(x, RESULT_BYPASS, cs->portkey);
        return STAGE_NEXT;
    }

    if (x->endpoint != ENDPOINT_CHAT_COMPLETIONS && x->endpoint != ENDPOINT_MESSAGES)
        return go_uncached(x, cs, RESULT_BYPASS); /* only chat completions and messages are cached */
    const buf *b = &x->http->body;
    const char *ns;
    size_t ns_len;
    request_namespace(x, &ns, &ns_len);
    const http_header *partition = exchange_header(x, "x-portkey-cache-namespace");
    json_field fields[NFIELDS] = {{.key = "n"}, {.key = "logprobs"}, {.key = "stream_options"}};
    cache_key_input in = {.secret = &secret,
                          .namespace_name = ns,
                          .namespace_len = ns_len,
                          .endpoint = x->endpoint,
                          .model = x->model,
                          .model_len = x->model_len,
                          .route = tree->name,
                          .extra = partition ? partition->value : NULL,
                          .extra_len = partition ? partition->value_len : 0,
                          .body = b->data ? b->data : "",
                          .body_len = b->len,
                          .fields = fields,
                          .nfields = NFIELDS};
    if (!cache_key_make(&in, cs->key) || uncacheable(in.body, fields))
        return go_uncached(x, cs, RESULT_BYPASS);
    cs->include_usage = wants_usage(in.body, &fields[FIELD_STREAM_OPTIONS]);
    cs->max_age_s = tree->cache.max_age_s;
    cs->ttl_ms = cs->max_age_s ? (uint64_t)cs->max_age_s * 1000 : x->config->cache.ttl_ms;

    /* semantic: the text and the bucket are known now (from the body parsed: an embedding call
     * follows anyway); the vector after an exact miss */
    const aigw_config *cfg = x->config;
    if (mode == ROUTE_CACHE_SEMANTIC && semantic_index && cfg->cache.semantic.embedding_model[0]) {
        json_error_t jerr;
        cs->parsed = in.parsed = json_loadb(in.body, in.body_len, JSON_ALLOW_NUL, &jerr);
        buf text;
        buf_init(&text, cfg->cache.semantic.max_text_bytes + 1);
        cs->semantic = cache_semantic_text(cs->parsed, cfg->cache.semantic.max_text_bytes, &text) &&
                       cache_semantic_bucket(&in, cs->bucket) && embed_body(x, cs, text.data, text.len);
        buf_free(&text);
    }
    if (refresh) { /* not looked up; the reply replaces the entry (and is indexed when semantic) */
        if (!cs->semantic) return go_uncached(x, cs, RESULT_REFRESH);
        cs->refresh = true;
        return after_exact_miss(x, cs);
    }
    cs->step = STEP_EXACT;
    return lookup(x, cs, cs->key);
}

/* The client left while the stage waited: the embedding call is stopped; a Redis lookup is
 * waited for (its callback holds the state, and comes within the lookup's timeout). */
static void cache_on_abort(exchange *x, void *state)
{
    cache_state *cs = state;
    cs->aborted = true;
    if (cs->embed) {
        attempt_cancel(cs->embed);
        route_report(cs->embed_walk, &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
        cs->embed = NULL;
    }
    if (!cs->lookup_pending) wait_end(cs, STAGE_DONE);
}

/* ---- the filters: the reply that goes out, stored when complete ------------------------------------ */

static void cache_on_head(exchange *x, void *state, int status, const char *content_type, bool stream)
{
    cache_state *cs = state;
    if (!cs->armed) return;
    const attempt *a = x->answer;
    if (status != 200 || !a || x->cache.hit) {
        cs->armed = false;
        return;
    }
    codec_ctx c = {.arena = x->arena,
                   .request_id = x->http->id,
                   .ingress = x->ingress,
                   .endpoint = x->endpoint,
                   .stream = stream,
                   .route = a->target.route};
    cs->rc = provider_collect_begin(&c, stream, max_entry_bytes);
}

static void cache_on_body(exchange *x, void *state, const char *data, size_t len)
{
    cache_state *cs = state;
    if (cs->rc) provider_collect(cs->rc, data, len);
}

/* The usage the provider reported for the answering attempt, in OpenAI's shape. */
static json_t *attempt_usage(const usage_counts *u)
{
    json_t *j = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt, "completion_tokens",
                          (json_int_t)u->completion, "total_tokens", (json_int_t)(u->prompt + u->completion));
    if (u->cached)
        json_object_set_new(j, "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached));
    if (u->reasoning)
        json_object_set_new(j, "completion_tokens_details",
                            json_pack("{s:I}", "reasoning_tokens", (json_int_t)u->reasoning));
    return j;
}

static void cache_on_end(exchange *x, void *state, bool complete)
{
    cache_state *cs = state;
    reply_collector *rc = cs->rc;
    if (!rc) return;
    cs->rc = NULL;
    cs->armed = false;
    const char *why = NULL;
    json_t *canon = complete && !x->aborted ? provider_collect_end(rc, &why) : NULL;
    provider_collect_free(rc);
    if (!canon) return;
    const attempt *a = x->answer;
    /* the provider's own count wins over what the client's format carried (an OpenAI stream
     * without include_usage carries none) */
    if (a && a->codec.usage.seen) json_object_set_new(canon, "usage", attempt_usage(&a->codec.usage));
    double cost = a ? attempt_cost(a) : -1;
    /* rendered now in both shapes, so that every hit writes stored bytes (cache_entry.c); no
     * route: a replay's chunks carry no cost */
    codec_ctx c = {
        .arena = x->arena, .request_id = x->http->id, .ingress = x->ingress, .endpoint = x->endpoint};
    provider_replay_shapes shapes;
    buf_init(&shapes.body, max_entry_bytes);
    buf_init(&shapes.stream, max_entry_bytes);
    buf value;
    buf_init(&value, max_entry_bytes);
    bool ok = provider_replay_render(&c, canon, &shapes);
    json_decref(canon);
    cache_entry e = {.cost_usd = cost,
                     .format = (int)x->ingress,
                     .usage = c.usage,
                     .body = shapes.body.data,
                     .body_len = shapes.body.len,
                     .stream = shapes.stream.data,
                     .stream_len = shapes.stream.len,
                     .usage_at = shapes.usage_at,
                     .usage_len = shapes.usage_len};
    if (ok && cache_entry_write(&e, &value)) { /* a larger entry is not stored */
        cache_backend *b = request_backend(x);
        b->ops->store(b, cs->key, value.data, value.len, cs->ttl_ms);
        if (cs->semantic && cs->vector && semantic_index) {
            index_insert(x, cs);
            if (use_redis) cache_redis_store_vector(b, cs->bucket, cs->key, cs->vector, cs->dims, cs->ttl_ms);
        }
    }
    buf_free(&shapes.body);
    buf_free(&shapes.stream);
    buf_free(&value);
}

static void cache_on_release(exchange *x, void *state)
{
    cache_state *cs = state;
    drop_body(cs);
    buf_free(&cs->entry);
    if (cs->rc) provider_collect_free(cs->rc);
    cs->rc = NULL;
}

const stage stage_cache = {
    .name = "cache",
    .phase = PHASE_CACHE,
    .state_size = sizeof(cache_state),
    .start = cache_start,
    .stop = cache_stop,
    .worker_init = cache_worker_init,
    .worker_close = cache_worker_close,
    .on_request = cache_on_request,
    .on_abort = cache_on_abort,
    .on_head = cache_on_head,
    .on_body = cache_on_body,
    .on_end = cache_on_end,
    .on_release = cache_on_release,
};
