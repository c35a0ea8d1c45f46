/* gateway.c — the load sequence (gateway.h): config, then providers, then routing.
 *
 * Each module finishes what it owns once the one below has done its part, so no module
 * reaches up: config does not know presets or route trees, providers and routing do not
 * include each other (routing gets the two providers functions it needs from here, and the
 * store's virtual keys through the pipeline, which holds the store while aigw serves).
 *
 * Rejected: keeping the sequence in main.c (the unit tests, the fuzzers and a later live
 * reload need the same sequence and do not link main.c); letting config_load call the
 * modules above it (the include loops this layout removes). */
#include "gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "prompts/prompt_files.h"
#include "providers/prepare.h"
#include "providers/provider.h"
#include "router/router.h"
#include "routing/routing.h"

extern const char aigw_router_model_text[]; /* router/lr.model, embedded (router_data.S) */

static void free_router_model(struct router_model *m)
{
    router_model_free(m);
}

/* `router:` — the model loaded (model_file beside the config, else the one built in), and one
 * router tree built to prove its targets name providers of this config. */
static bool load_router(aigw_config *cfg, char *err, size_t errlen)
{
    router_settings *r = &cfg->router;
    if (!r->configured) return true;
    char why[512];
    if (r->model_file) {
        const char *slash = strrchr(cfg->path, '/');
        int dir = r->model_file[0] == '/' || !slash ? 0 : (int)(slash - cfg->path) + 1;
        char path[4096];
        snprintf(path, sizeof path, "%.*s%s", dir, cfg->path, r->model_file);
        r->model = router_model_load(path, why, sizeof why);
    } else {
        r->model =
            router_model_parse(aigw_router_model_text, strlen(aigw_router_model_text), why, sizeof why);
    }
    if (!r->model) return config_error_at(cfg, r->line, err, errlen, "router.model_file: %s", why);
    r->model_free = free_router_model;
    arena a;
    arena_init(&a, 4096);
    route_tree *t = route_tree_for_router(&a, cfg, cfg->health, "router", 0.5, -1, why, sizeof why);
    arena_free(&a);
    if (!t) return config_error_at(cfg, r->line, err, errlen, "router: %s", why);
    return true;
}

static void free_prompt_set(struct prompt_set *set)
{
    prompt_set_free(set);
}

/* `prompts:` — the directory of prompt files read (beside the config when relative); a broken
 * file fails the load, so a reload with one keeps the running config. */
static bool load_prompts(aigw_config *cfg, char *err, size_t errlen)
{
    prompts_settings *p = &cfg->prompts;
    if (!p->dir) return true;
    const char *slash = strrchr(cfg->path, '/');
    int dir = p->dir[0] == '/' || !slash ? 0 : (int)(slash - cfg->path) + 1;
    char path[4096], why[1024];
    snprintf(path, sizeof path, "%.*s%s", dir, cfg->path, p->dir);
    p->set = prompt_files_load(path, (size_t)p->max_files, why, sizeof why);
    if (!p->set) return config_error_at(cfg, p->line, err, errlen, "prompts.dir: %s", why);
    p->set_free = free_prompt_set;
    return true;
}

static const routing_providers providers_for_routing = {
    .preset_find = provider_preset_find,
    .derive = providers_derive,
    .virtual_key = pipeline_virtual_key,
    .virtual_keys_version = pipeline_virtual_keys_version,
};

aigw_config *gateway_config_load(const char *path, char *err, size_t errlen)
{
    aigw_config *cfg = config_load(path, err, errlen);
    if (!cfg) return NULL;
    if (errlen) err[0] = '\0'; /* the steps below add their mistakes as lines */
    if (!providers_prepare(cfg, err, errlen) || !routing_build(cfg, &providers_for_routing, err, errlen) ||
        !load_router(cfg, err, errlen) || !load_prompts(cfg, err, errlen)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

typedef struct config_pair {
    const aigw_config *old, *fresh;
} config_pair;

static const provider_config *provider_named(const aigw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (!strcmp(cfg->providers[i].name, name)) return &cfg->providers[i];
    return NULL;
}

/* Health is keyed on provider name + model; the provider is the same target when its type
 * and base URL are. A name neither config has is a header config's custom host, which is
 * named by its URL: the same name is the same host. */
static bool same_provider(const char *name, void *ud)
{
    const config_pair *p = ud;
    const provider_config *a = provider_named(p->old, name), *b = provider_named(p->fresh, name);
    if (!a && !b) return true;
    if (!a || !b) return false;
    return a->preset == b->preset && !strcmp(a->base_url, b->base_url);
}

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* The store, its digest secret and its vault key are opened once, at start: a reload cannot
 * change them (a new secret would make every stored key unknown, a new vault key every
 * virtual key unreadable). The master key may change. */
static bool auth_reload_allowed(const aigw_config *old, const aigw_config *fresh, char *err, size_t errlen)
{
    const auth_settings *a = &old->auth, *b = &fresh->auth;
    if ((a->mode == AUTH_ON) != (b->mode == AUTH_ON))
        return config_error_at(fresh, b->line ? b->line : 1, err, errlen,
                               "'auth' cannot be turned %s without a restart",
                               b->mode == AUTH_ON ? "on" : "off");
    if (b->mode == AUTH_ON &&
        (!same_string(a->store_path, b->store_path) || !same_string(a->secret, b->secret) ||
         !same_string(a->secret_file, b->secret_file) || !same_string(a->vault_key, b->vault_key) ||
         !same_string(a->vault_key_file, b->vault_key_file)))
        return config_error_at(fresh, b->line, err, errlen,
                               "auth.store, auth.secret, auth.secret_file, auth.vault_key and "
                               "auth.vault_key_file cannot change without a restart");
    if (b->mode == AUTH_ON &&
        (a->limits.backend != b->limits.backend || !same_string(a->limits.redis, b->limits.redis) ||
         a->limits.timeout_ms != b->limits.timeout_ms || a->limits.fail_closed != b->limits.fail_closed))
        return config_error_at(fresh, b->line, err, errlen, "auth.limits cannot change without a restart");
    return true;
}

aigw_config *gateway_config_reload(const char *path, const aigw_config *previous, char *err, size_t errlen)
{
    aigw_config *fresh = gateway_config_load(path, err, errlen);
    if (!fresh || !previous) return fresh;
    if (!auth_reload_allowed(previous, fresh, err, errlen)) {
        config_free(fresh);
        return NULL;
    }
    config_pair pair = {.old = previous, .fresh = fresh};
    routing_state_adopt(fresh->health, previous->health, same_provider, &pair);
    return fresh;
}
