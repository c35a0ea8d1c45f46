/* auth.c — the AUTH phase: which gateway key asks (401 when none valid), and, once the body is
 * read, whether it may use the model it names (403). Off when the config has no `auth:` or
 * says `auth: off`: nothing is asked, as before keys existed.
 *
 * Process-wide (start/stop): the digest secret and the store service (store.h), which owns the
 * SQLite file on its own thread. Per worker: the key snapshot in use and a mailbox the store
 * thread puts newer ones in (an atomic pointer and a uv_async, as a reloaded config reaches the
 * worker), so a request's lookup is a hash and a binary search in memory — never the store.
 * Per request: a reference to the snapshot its key lives in, dropped when the request is
 * released, so a swap mid-request frees nothing still pointed at.
 *
 * What the request path does with a presented key: at most ACCESS_KEY_MAX bytes are hashed
 * (longer is invalid at once); the digest is looked up in the snapshot and compared in
 * constant time; a miss is compared with the master key's digest — unless its client address
 * has tried too many wrong keys (auth_check_master: access/guess_throttle.h, 429 with
 * Retry-After, and the key is not compared at all). Messages name what is wrong
 * (missing, invalid, disabled, expired, a model not allowed) and never echo the key. The
 * client's key is never sent upstream while auth is on (translate.c's client_key is off).
 *
 * Virtual keys (docs/access.md) ride in the same snapshot, their secrets opened by the store's
 * thread with the vault key given at start (a store holding virtual keys does not start
 * without the key that opens them). Every request holds the snapshot it started with, so an
 * attempt finds its provider's credential there (auth_virtual_key): a rotation reaches new
 * requests with the next snapshot, and one in flight keeps the secret it began with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "access/access.h"
#include "access/guess_throttle.h"
#include "pipeline/pipeline.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "store/store.h"
#include "util/log.h"

static store_service *service;
static access_secret secret;

store_service *auth_service(void)
{
    return service;
}

const access_secret *auth_secret(void)
{
    return service ? &secret : NULL;
}

static bool auth_start(const aigw_config *cfg, char *err, size_t errlen)
{
    if (cfg->auth.mode != AUTH_ON) return true;
    if (!access_init()) {
        snprintf(err, errlen, "auth: libsodium cannot start (no random source)");
        return false;
    }
    if (!access_secret_load(&cfg->auth, &secret, err, errlen)) return false;
    vault_key vault;
    bool has_vault;
    if (!access_vault_key_load(&cfg->auth, &vault, &has_vault, err, errlen)) return false;
    store *s = store_open(cfg->auth.store_path, err, errlen);
    if (!s) return false;
    store_set_vault(s, has_vault ? &vault : NULL);
    sodium_memzero(&vault, sizeof vault);
    /* the first snapshot opens every virtual key: a missing or wrong vault key stops here */
    char why[768];
    service = store_service_start(s, why, sizeof why);
    if (!service) {
        if (!has_vault && cfg->auth.vault_key_env)
            snprintf(err, errlen, "auth: %s (auth.vault_key names ${%s}, which is not set)", why,
                     cfg->auth.vault_key_env);
        else
            snprintf(err, errlen, "auth: %s", why);
        return false;
    }
    key_snapshot *snap = store_service_snapshot(service);
    char where[256];
    store_describe(cfg->auth.store_path, where, sizeof where);
    log_event(LOG_INFO, "auth", "auth on: %zu gateway key%s and %zu virtual key%s in %s; master key %s",
              snap->nkeys, snap->nkeys == 1 ? "" : "s", snap->nvkeys, snap->nvkeys == 1 ? "" : "s", where,
              cfg->auth.master_key       ? "set"
              : cfg->auth.master_key_env ? "not set (its variable is unset): no admin API"
                                         : "not configured: no admin API");
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (cfg->providers[i].virtual_key && !key_snapshot_vkey(snap, cfg->providers[i].virtual_key))
            log_event(LOG_WARN, "virtual_key_missing",
                      "provider '%s' takes its key from the virtual key `%s`, which the store does not "
                      "hold yet: its requests fail until it is created (POST /admin/virtual-keys)",
                      cfg->providers[i].name, cfg->providers[i].virtual_key);
    key_snapshot_release(snap);
    return true;
}

static void auth_stop(void)
{
    store_service_stop(service);
    service = NULL;
}

/* ---- per worker: the snapshot in use and the mailbox ---------------------------------------- */

typedef struct auth_worker {
    uv_async_t async;
    _Atomic(key_snapshot *) next; /* from the store's thread; one reference */
    key_snapshot *current;        /* one reference */
    store_subscriber sub;
} auth_worker;

/* On the store's thread: replace what waits in the mailbox, wake the loop. */
static void on_snapshot_published(void *ud, key_snapshot *snap)
{
    auth_worker *aw = ud;
    key_snapshot_release(atomic_exchange(&aw->next, snap));
    uv_async_send(&aw->async);
}

static void on_snapshot_async(uv_async_t *async)
{
    auth_worker *aw = async->data;
    key_snapshot *next = atomic_exchange(&aw->next, NULL);
    if (!next) return;
    key_snapshot_release(aw->current); /* requests that hold it keep it alive */
    aw->current = next;
}

static void *auth_worker_init(worker *w)
{
    if (!service) return NULL;
    auth_worker *aw = calloc(1, sizeof *aw);
    if (!aw) abort();
    uv_async_init(&w->loop, &aw->async, on_snapshot_async);
    aw->async.data = aw;
    atomic_init(&aw->next, NULL);
    aw->current = store_service_snapshot(service);
    aw->sub = (store_subscriber){.publish = on_snapshot_published, .ud = aw};
    store_service_subscribe(service, &aw->sub);
    return aw;
}

static void on_async_closed(uv_handle_t *h)
{
    auth_worker *aw = h->data;
    key_snapshot_release(atomic_exchange(&aw->next, NULL));
    key_snapshot_release(aw->current);
    free(aw);
}

static void auth_worker_close(void *state)
{
    auth_worker *aw = state;
    if (!aw) return;
    store_service_unsubscribe(service, &aw->sub); /* no publish after this */
    uv_close((uv_handle_t *)&aw->async, on_async_closed);
}

/* ---- per request ------------------------------------------------------------------------------ */

typedef struct auth_state {
    key_snapshot *snap; /* the one the request started with: x->key and the virtual keys live in it */
} auth_state;

void auth_refuse(exchange *x, int status, const char *code, const char *param, const char *message)
{
    static const char unauthorized[] = "www-authenticate: Bearer\r\nx-should-retry: false\r\n";
    static const char other[] = "x-should-retry: false\r\n";
    if (status == 401)
        exchange_set_head(x, unauthorized, sizeof unauthorized - 1);
    else
        exchange_set_head(x, other, sizeof other - 1);
    exchange_error(x, status, status == 403 ? "permission_error" : "invalid_request_error", code, param,
                   message);
}

#define refuse auth_refuse

auth_master_result auth_check_master(exchange *x, const char *key, size_t len, const uint8_t *digest)
{
    /* A key shaped as aigw makes them is a revoked, rotated or mistyped gateway key (a client
     * still holding an old one is common) — unless the master key has that shape too, it cannot
     * be the master key: refused without a comparison, and no guess is counted. */
    const char *master = x->config->auth.master_key;
    if (access_key_shaped(key, len) && !(master && access_key_shaped(master, strlen(master))))
        return AUTH_NOT_MASTER;
    const uint8_t *addr = x->http->client_addr;
    int64_t now = (int64_t)time(NULL), wait = 0;
    guess_verdict v = guess_throttle_admit(addr, now, &wait);
    if (v != GUESS_ADMITTED) {
        char head[64], msg[256];
        int n = snprintf(head, sizeof head, "retry-after: %lld\r\n", (long long)wait);
        exchange_set_head(x, head, (size_t)n);
        if (v == GUESS_ADDRESS_LIMITED)
            snprintf(msg, sizeof msg,
                     "Too many wrong keys from this address (%d a minute at most): no key that is not a "
                     "gateway key is checked from it for %lld s",
                     GUESS_ADDRESS_FAILURES, (long long)wait);
        else
            snprintf(msg, sizeof msg,
                     "Too many wrong keys from all addresses together (%d a minute at most): no key that is "
                     "not a gateway key is checked for %lld s",
                     GUESS_GLOBAL_FAILURES, (long long)wait);
        x->rejection = REJECT_AUTH_THROTTLED;
        exchange_error(x, 429, "requests", "too_many_wrong_keys", NULL, msg);
        return AUTH_THROTTLED;
    }
    if (digest && access_is_master(&x->config->auth, &secret, digest)) {
        guess_throttle_succeeded(addr, now);
        return AUTH_IS_MASTER;
    }
    guess_throttle_failed(addr, now);
    return AUTH_NOT_MASTER;
}

const store_team *auth_key_team(exchange *x)
{
    const auth_state *as = exchange_state(x, &stage_auth);
    return x->key && as && as->snap ? key_snapshot_team(as->snap, x->key->team) : NULL;
}

bool auth_model_allowed(exchange *x, const char *model, size_t len)
{
    const store_team *team = auth_key_team(x);
    return access_model_allowed(x->key, model, len) &&
           (!team || access_models_allow(team->models, team->nmodels, model, len));
}

static stage_result auth_on_request(exchange *x, void *state)
{
    auth_state *as = state;
    if (x->config->auth.mode != AUTH_ON) return STAGE_DECLINED;
    auth_worker *aw = exchange_worker_state(x, &stage_auth);
    if (!aw) { /* auth was off at start: a reload cannot turn it on (gateway.c refuses it) */
        refuse(x, 500, "auth_unavailable", NULL, "gateway auth is configured but its store is not running");
        return STAGE_DONE;
    }
    /* the request keeps the snapshot it started with until it is released */
    if (!as->snap) as->snap = key_snapshot_retain(aw->current);
    const char *key;
    size_t len;
    uint8_t digest[STORE_DIGEST_BYTES];
    if (!access_key_from_headers(x->http->headers, x->http->nheaders, &key, &len)) {
        if (!x->session_digest) {
            x->rejection = REJECT_AUTH_MISSING;
            refuse(x, 401, "missing_api_key", NULL,
                   "No gateway key: send one as Authorization: Bearer <key> (or in x-api-key)");
            return STAGE_DONE;
        }
        /* /metrics with the dashboard's session cookie (ui_stage.c sets it on that path only) */
        memcpy(digest, x->session_digest, sizeof digest);
        len = 0;
    } else if (len <= ACCESS_KEY_MAX)
        access_key_digest(&secret, key, len, digest);
    const store_key *k = len <= ACCESS_KEY_MAX ? access_key_find(as->snap, digest) : NULL;
    if (!k) {
        /* the dashboard's session (len 0) stands for a digest checked when it was opened */
        auth_master_result m =
            !len ? (access_is_master(&x->config->auth, &secret, digest) ? AUTH_IS_MASTER : AUTH_NOT_MASTER)
                 : auth_check_master(x, key, len, len <= ACCESS_KEY_MAX ? digest : NULL);
        if (m == AUTH_THROTTLED) return STAGE_DONE;
        if (m == AUTH_IS_MASTER) {
            x->master_key = true;
            return STAGE_NEXT;
        }
        x->rejection = REJECT_AUTH_INVALID;
        refuse(x, 401, "invalid_api_key", NULL, "Invalid gateway key");
        return STAGE_DONE;
    }
    x->key = k;
    switch (access_key_state(k, (int64_t)time(NULL))) {
    case ACCESS_OK: return STAGE_NEXT;
    case ACCESS_DISABLED:
        x->rejection = REJECT_AUTH_DISABLED;
        refuse(x, 401, "key_disabled", NULL, "This gateway key is disabled");
        return STAGE_DONE;
    case ACCESS_EXPIRED: {
        char msg[128], when[32];
        time_t t = (time_t)k->expires_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(msg, sizeof msg, "This gateway key expired at %s", when);
        x->rejection = REJECT_AUTH_EXPIRED;
        refuse(x, 401, "key_expired", NULL, msg);
        return STAGE_DONE;
    }
    }
    return STAGE_DONE;
}

const store_key *auth_find_key(exchange *x, const uint8_t digest[STORE_DIGEST_BYTES])
{
    auth_worker *aw = exchange_worker_state(x, &stage_auth);
    auth_state *as = exchange_state(x, &stage_auth);
    if (!aw || !as) return NULL;
    if (!as->snap) as->snap = key_snapshot_retain(aw->current);
    return access_key_find(as->snap, digest);
}

const key_snapshot *auth_snapshot(exchange *x)
{
    auth_worker *aw = exchange_worker_state(x, &stage_auth);
    auth_state *as = exchange_state(x, &stage_auth);
    if (!aw || !as) return NULL;
    if (!as->snap) as->snap = key_snapshot_retain(aw->current);
    return as->snap;
}

static void auth_on_release(exchange *x, void *state)
{
    auth_state *as = state;
    key_snapshot_release(as->snap);
    as->snap = NULL;
}

auth_vkey_result auth_virtual_key(exchange *x, const char *name, const char **secret_out, size_t *len)
{
    auth_state *as = x->state ? exchange_state(x, &stage_auth) : NULL;
    const store_vkey *v = as ? key_snapshot_vkey(as->snap, name) : NULL;
    if (!v) return AUTH_VKEY_MISSING;
    const store_key *k = x->key;
    if (k && k->nvirtual_keys) {
        bool allowed = false;
        for (size_t i = 0; i < k->nvirtual_keys && !allowed; i++)
            allowed = !strcmp(k->virtual_keys[i], name);
        if (!allowed) return AUTH_VKEY_NOT_ALLOWED;
    }
    *secret_out = v->secret;
    *len = v->secret_len;
    return AUTH_VKEY_OK;
}

/* ---- for the trees of request configs (pipeline.h) ------------------------------------------ */

bool pipeline_virtual_key(arena *a, const char *name, const char **type, const char **base_url)
{
    if (!service) return false;
    key_snapshot *snap = store_service_snapshot(service);
    const store_vkey *v = key_snapshot_vkey(snap, name);
    if (v) {
        *type = arena_strndup(a, v->provider, strlen(v->provider));
        *base_url = v->base_url ? arena_strndup(a, v->base_url, strlen(v->base_url)) : NULL;
    }
    key_snapshot_release(snap);
    return v != NULL;
}

uint64_t pipeline_virtual_keys_version(void)
{
    return service ? store_service_version(service) : 0;
}

const stage stage_auth = {
    .name = "auth",
    .phase = PHASE_AUTH,
    .state_size = sizeof(auth_state),
    .start = auth_start,
    .stop = auth_stop,
    .worker_init = auth_worker_init,
    .worker_close = auth_worker_close,
    .on_request = auth_on_request,
    .on_release = auth_on_release,
};

/* ---- after DECODE: the model the key may use ------------------------------------------------- */

static stage_result key_models_on_request(exchange *x, void *state)
{
    const store_key *k = x->key;
    const store_team *team = auth_key_team(x);
    bool team_bound = team && team->nmodels;
    if (!k || (!k->nmodels && !team_bound)) return STAGE_DECLINED;
    if (!x->model && x->prompt_ref) return STAGE_DECLINED; /* the PROMPT stage asks, with the template's */
    if (!access_model_allowed(k, x->model, x->model_len)) {
        char msg[400];
        snprintf(msg, sizeof msg, "This gateway key may not use the model `%.*s`", (int)x->model_len,
                 x->model);
        x->rejection = REJECT_FORBIDDEN_MODEL;
        refuse(x, 403, "model_not_allowed", "model", msg);
        return STAGE_DONE;
    }
    if (team_bound && !access_models_allow(team->models, team->nmodels, x->model, x->model_len)) {
        char msg[400];
        snprintf(msg, sizeof msg, "This gateway key's team may not use the model `%.*s`", (int)x->model_len,
                 x->model);
        x->rejection = REJECT_FORBIDDEN_MODEL;
        refuse(x, 403, "model_not_allowed", "model", msg);
        return STAGE_DONE;
    }
    /* a request config could name any provider and model: not for a key limited to some */
    if (exchange_header(x, "x-aigw-config") || exchange_header(x, "x-portkey-config")) {
        x->rejection = REJECT_FORBIDDEN_CONFIG;
        refuse(x, 403, "config_not_allowed", NULL,
               "This gateway key (or its team) is limited to some models, so it may not send a request "
               "config (x-aigw-config / x-portkey-config)");
        return STAGE_DONE;
    }
    return STAGE_NEXT;
}

const stage stage_key_models = {
    .name = "key-models",
    .phase = PHASE_DECODE,
    .on_request = key_models_on_request,
};
