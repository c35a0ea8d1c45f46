/* cache_stage.c — the CACHE phase: a stored reply answers the request, and the response filters
 * store a complete successful reply for the next identical request (docs/cache.md).
 *
 * After PLAN, the request's route tree says whether it is cached (its `cache` block, from the
 * config's route or the request's x-aigw-config / x-portkey-config; else the file's
 * `cache.mode`). A request nobody asked to cache costs one branch here and nothing in the
 * filters. One that is: its controls are read (x-aigw-cache, Cache-Control,
 * x-portkey-cache-force-refresh), its key made (src/cache: a keyed digest of the normalized
 * request in its namespace), and the backend asked. A hit is replayed in the shape the client
 * asked — one JSON body, or a stream of its format's events, whichever shape stored it — with
 * the stored usage and a cost of 0. A miss goes on to EXECUTE; its reply is read back into one
 * canonical reply as it goes out (providers' collector, on_head/on_body/on_end) and stored only
 * when it is complete: status 200, the stream's end marker, finish stop, length or tool_calls,
 * the client still there.
 *
 * Concurrent identical misses each go upstream and each store its own complete reply; the
 * last one stored stays. An entry is written whole before a reader can see it (the backend's
 * contract), so none is ever half one reply and half another.
 *
 * The secret the keys are made with: a subkey of the deployment's digest secret when auth is
 * on (auth.c loads it), else a random one made at start (the memory backend dies with the
 * process anyway). */
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
#include "store/store.h"
#include "util/units.h"

static cache_backend *backend;
static uint8_t secret[CACHE_SECRET_BYTES];
static size_t max_entry_bytes;

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

typedef struct cache_state {
    bool armed; /* store the reply that goes out */
    uint8_t key[CACHE_KEY_BYTES];
    uint64_t ttl_ms;
    reply_collector *rc;
} cache_state;

cache_backend *cache_stage_backend(void)
{
    return backend;
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
        cache_secret_derive(s->bytes, secret);
    else
        randombytes_buf(secret, sizeof secret);
    /* The backend is made at start with the file's bounds; a reload keeps it (docs/cache.md). */
    backend = cache_memory_new(cfg->cache.max_bytes, cfg->cache.max_entry_bytes);
    max_entry_bytes = cfg->cache.max_entry_bytes;
    return true;
}

static void cache_stop(void)
{
    if (backend) backend->ops->free(backend);
    backend = NULL;
    sodium_memzero(secret, sizeof secret);
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

/* Why a request is not cached whatever its config says (NULL: it may be). */
static const char *uncacheable(exchange *x, json_t *body)
{
    if (x->endpoint != ENDPOINT_CHAT_COMPLETIONS && x->endpoint != ENDPOINT_MESSAGES)
        return "only chat completions and messages are cached";
    if (!json_is_object(body)) return "the body cannot be read";
    json_t *n = json_object_get(body, "n");
    if (n && !(json_is_integer(n) && json_integer_value(n) == 1)) return "n is not 1";
    if (json_is_true(json_object_get(body, "logprobs"))) return "logprobs are not stored";
    return NULL;
}

/* A stored reply answers: one body or a stream in the client's format, with the stored usage
 * and a cost of 0. false when the entry cannot be read (then it is a miss). */
static bool answer_hit(exchange *x, const char *entry, size_t len, json_t *body, bool portkey)
{
    double cost;
    const char *reply;
    size_t reply_len;
    if (!cache_entry_parse(entry, len, &cost, &reply, &reply_len)) return false;
    codec_ctx c = {.arena = x->arena,
                   .request_id = x->http->id,
                   .ingress = x->ingress,
                   .endpoint = x->endpoint,
                   .stream = x->stream};
    bool include_usage =
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    buf out;
    buf_init(&out, reply_len * 8 + 65536);
    const char *type = provider_replay(&c, reply, reply_len, x->stream, include_usage, &out);
    if (!type || out.overflowed) {
        buf_free(&out);
        return false;
    }
    set_result(x, RESULT_HIT, portkey);
    x->cache.usage = c.usage;
    x->cache.saved_usd = cost > 0 ? cost : 0;
    static const char cost_line[] = "x-aigw-cost-usd: 0\r\n";
    if (x->stream) {
        exchange_stream_begin(x, 200, type, cost_line, sizeof cost_line - 1);
        exchange_stream_end(x, out.data, out.len);
    } else {
        exchange_respond(x, 200, type, cost_line, sizeof cost_line - 1, out.data ? out.data : "", out.len);
    }
    buf_free(&out);
    return true;
}

static stage_result cache_on_request(exchange *x, void *state)
{
    if (!x->walk || !backend) return STAGE_DECLINED;
    const route_tree *tree = route_walk_tree(x->walk);
    route_cache_mode mode = tree->cache.mode;
    if (mode == ROUTE_CACHE_UNSET)
        mode = x->config->cache.default_simple ? ROUTE_CACHE_SIMPLE : ROUTE_CACHE_OFF;
    if (mode == ROUTE_CACHE_OFF) return STAGE_DECLINED; /* not asked: nothing more is done */
    bool portkey = tree->portkey;
    cache_state *cs = state;

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
        set_result(x, RESULT_BYPASS, portkey);
        return STAGE_NEXT;
    }

    const buf *b = &x->http->body;
    json_error_t jerr;
    json_t *body = json_loadb(b->data ? b->data : "", b->len, JSON_ALLOW_NUL, &jerr);
    if (uncacheable(x, body)) {
        json_decref(body);
        set_result(x, RESULT_BYPASS, portkey);
        return STAGE_NEXT;
    }
    const char *ns;
    size_t ns_len;
    request_namespace(x, &ns, &ns_len);
    const http_header *partition = exchange_header(x, "x-portkey-cache-namespace");
    cache_key_input in = {.secret = secret,
                          .namespace_name = ns,
                          .namespace_len = ns_len,
                          .endpoint = x->endpoint,
                          .model = x->model,
                          .model_len = x->model_len,
                          .route = tree->name,
                          .extra = partition ? partition->value : NULL,
                          .extra_len = partition ? partition->value_len : 0,
                          .body = body};
    if (!cache_key_make(&in, cs->key)) {
        json_decref(body);
        set_result(x, RESULT_BYPASS, portkey);
        return STAGE_NEXT;
    }
    uint32_t max_age_s = tree->cache.max_age_s;
    if (!refresh) {
        buf entry;
        buf_init(&entry, max_entry_bytes + 256);
        cache_lookup_result r =
            backend->ops->lookup(backend, cs->key, (uint64_t)max_age_s * 1000, &entry, NULL, NULL);
        bool answered = r == CACHE_FOUND && answer_hit(x, entry.data, entry.len, body, portkey);
        buf_free(&entry);
        if (answered) {
            json_decref(body);
            return STAGE_DONE;
        }
    }
    json_decref(body);
    set_result(x, refresh ? RESULT_REFRESH : RESULT_MISS, portkey);
    cs->armed = true;
    cs->ttl_ms = max_age_s ? (uint64_t)max_age_s * 1000 : x->config->cache.ttl_ms;
    return STAGE_NEXT;
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
    char head[64];
    char usd[UNITS_DECIMAL_MAX];
    units_format_decimal(usd, cost > 0 ? cost : 0);
    int hl = snprintf(head, sizeof head, CACHE_ENTRY_MAGIC "%s\n", usd);
    char *text = json_dumps(canon, JSON_COMPACT);
    json_decref(canon);
    if (!text) return;
    size_t tl = strlen(text), len = (size_t)hl + tl;
    if (tl <= max_entry_bytes) {
        char *value = malloc(len);
        if (value) {
            memcpy(value, head, (size_t)hl);
            memcpy(value + hl, text, tl);
            backend->ops->store(backend, cs->key, value, len, cs->ttl_ms);
            free(value);
        }
    }
    free(text);
}

static void cache_on_release(exchange *x, void *state)
{
    cache_state *cs = state;
    if (cs->rc) provider_collect_free(cs->rc);
    cs->rc = NULL;
}

const stage stage_cache = {
    .name = "cache",
    .phase = PHASE_CACHE,
    .state_size = sizeof(cache_state),
    .start = cache_start,
    .stop = cache_stop,
    .on_request = cache_on_request,
    .on_head = cache_on_head,
    .on_body = cache_on_body,
    .on_end = cache_on_end,
    .on_release = cache_on_release,
};
