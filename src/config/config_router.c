/* config_router.c — the config file's `router:` section: the learned strong/weak router's two
 * targets, its model file and the extra names it answers to (docs/routing.md, "Learned router");
 * and `external_router:`, the model-select service auto and router strategies may ask
 * (docs/routing.md, "External router"), below.
 *
 *   router:
 *     strong: {provider: openai, model: gpt-4o}
 *     weak: {provider: groq, model: llama-3.1-8b-instant}
 *     model_file: router/lr.model   # optional: the model built into aigw otherwise
 *     aliases: [mf]                 # optional: router-mf-… means this router too
 *     external: true                # optional: ask the external_router first
 *
 * Its own file because config.c is at its size limit; it runs on the same table machinery
 * (config_read.h). Only the shape is checked here: that the providers exist, and the model
 * file itself, are the load sequence's (gateway.c), which builds one router tree to prove it. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"
#include "util/alloc.h"

#define RTR(member) offsetof(router_settings, member)
#define TGT(member) offsetof(router_target_config, member)

static const field target_table[] = {
    {"provider", FIELD_STRING, TGT(provider), 0, 0, NULL, NULL},
    {"model", FIELD_STRING, TGT(model), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static bool parse_target(loader *ld, yaml_node_t *node, const char *name, router_target_config *t)
{
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(ld, node, "router.%s must be a mapping {provider: NAME, model: MODEL}", name);
    if (!config__apply_section(ld, node, name, target_table, t)) return false;
    if (!t->provider || !t->provider[0] || !t->model || !t->model[0])
        return config__fail_at(ld, node, "router.%s needs both provider and model", name);
    return true;
}

static bool parse_strong(loader *ld, yaml_node_t *node, void *target)
{
    return parse_target(ld, node, "strong", target);
}

static bool parse_weak(loader *ld, yaml_node_t *node, void *target)
{
    return parse_target(ld, node, "weak", target);
}

static bool parse_aliases(loader *ld, yaml_node_t *node, void *target)
{
    router_settings *r = (router_settings *)((char *)target - RTR(aliases));
    if (!config__parse_string_list(ld, node, "aliases", &r->aliases, &r->naliases)) return false;
    for (size_t i = 0; i < r->naliases; i++)
        for (const char *c = r->aliases[i]; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
                return config__fail_at(ld, node,
                                       "router.aliases: '%s': lower-case letters, digits and '_' only (a "
                                       "model name router-<alias>-<threshold> is made of it)",
                                       r->aliases[i]);
    return true;
}

static const field router_table[] = {
    {"strong", FIELD_CUSTOM, RTR(strong), 0, 0, NULL, parse_strong},
    {"weak", FIELD_CUSTOM, RTR(weak), 0, 0, NULL, parse_weak},
    {"model_file", FIELD_STRING, RTR(model_file), 0, 0, NULL, NULL},
    {"aliases", FIELD_CUSTOM, RTR(aliases), 0, 0, NULL, parse_aliases},
    {"external", FIELD_CUSTOM, RTR(external), 0, 0, NULL, config__parse_bool},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

bool config__parse_router(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    router_settings *r = &cfg->router;
    r->configured = true;
    r->line = (int)node->start_mark.line + 1;
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(
            ld, node,
            "'router' must be a mapping such as {strong: {provider, model}, weak: {provider, "
            "model}}");
    if (!config__apply_section(ld, node, "router", router_table, r)) return false;
    if (!r->strong.provider || !r->weak.provider)
        return config__fail_at(ld, node, "router needs both strong and weak targets");
    return true;
}

void config__router_free(router_settings *r)
{
    free(r->strong.provider);
    free(r->strong.model);
    free(r->weak.provider);
    free(r->weak.model);
    free(r->model_file);
    for (size_t i = 0; i < r->naliases; i++)
        free(r->aliases[i]);
    free(r->aliases);
    if (r->model && r->model_free) r->model_free(r->model);
}

/* ---- external_router: ---------------------------------------------------------------------------
 *
 *   external_router:
 *     url: https://api.notdiamond.ai/v2/modelRouter/modelSelect
 *     api_key: ${NOTDIAMOND_API_KEY}
 *     timeout: 150ms          # the whole call; at most 1 s
 *     preference_id: …        # optional: a custom router of the service
 *     headers: {…}            # optional
 *     max_answer: 16KiB       # at most 64 KiB
 *     max_prompt: 32KiB       # the messages' text sent, newest kept
 *
 * The timeout is capped because the request waits for the answer before anything is sent: a
 * router that takes longer than a model's first byte costs more than it saves. */
#define EXT(member) offsetof(external_router_settings, member)

static bool parse_external_url(loader *ld, yaml_node_t *node, void *target)
{
    return config__read_http_url(ld, node, target, "external_router.url");
}

static bool parse_external_key(loader *ld, yaml_node_t *node, void *target)
{
    external_router_settings *e = (external_router_settings *)((char *)target - EXT(api_key));
    if (!config__require_scalar(ld, node, "api_key")) return false;
    char *unset;
    char *key = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!key) return false;
    free(e->api_key);
    free(e->api_key_env);
    e->api_key = NULL;
    e->api_key_env = unset;
    if (*key && !unset && !strpbrk(key, "\r\n"))
        e->api_key = key;
    else
        free(key);
    return true;
}

static bool parse_external_headers(loader *ld, yaml_node_t *node, void *target)
{
    external_router_settings *e = (external_router_settings *)((char *)target - EXT(headers));
    return config__read_header_pairs(ld, node, &e->headers, &e->nheaders);
}

static const field external_table[] = {
    {"url", FIELD_CUSTOM, EXT(url), 0, 0, NULL, parse_external_url},
    {"api_key", FIELD_CUSTOM, EXT(api_key), 0, 0, NULL, parse_external_key},
    {"preference_id", FIELD_STRING, EXT(preference_id), 0, 0, NULL, NULL},
    {"headers", FIELD_CUSTOM, EXT(headers), 0, 0, NULL, parse_external_headers},
    {"timeout", FIELD_DURATION, EXT(timeout_ms), 1, EXTERNAL_ROUTER_TIMEOUT_MAX_MS, NULL, NULL},
    {"max_answer", FIELD_SIZE, EXT(max_answer_bytes), 256, EXTERNAL_ROUTER_ANSWER_MAX, NULL, NULL},
    {"max_prompt", FIELD_SIZE, EXT(max_prompt_bytes), 256, EXTERNAL_ROUTER_PROMPT_MAX, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

void config__external_router_defaults(external_router_settings *e)
{
    e->timeout_ms = 150;
    e->max_answer_bytes = 16 * 1024;
    e->max_prompt_bytes = 32 * 1024;
}

bool config__parse_external_router(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    external_router_settings *e = &cfg->external_router;
    e->line = (int)node->start_mark.line + 1;
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(
            ld, node, "'external_router' must be a mapping such as {url: https://…, timeout: 150ms}");
    if (!config__apply_section(ld, node, "external_router", external_table, e)) return false;
    if (!e->url) return config__fail_at(ld, node, "external_router needs a url");
    if (e->preference_id && strpbrk(e->preference_id, "\"\\\r\n"))
        return config__fail_at(
            ld, node, "external_router.preference_id must not hold quotes, backslashes or line breaks");
    return true;
}

void config__external_router_free(external_router_settings *e)
{
    free(e->url);
    free(e->api_key);
    free(e->api_key_env);
    free(e->preference_id);
    config_free_headers(e->headers, e->nheaders);
}
