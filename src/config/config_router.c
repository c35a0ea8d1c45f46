/* config_router.c — the config file's `router:` section: the learned strong/weak router's two
 * targets, its model file and the extra names it answers to (docs/routing.md, "Learned router").
 *
 *   router:
 *     strong: {provider: openai, model: gpt-4o}
 *     weak: {provider: groq, model: llama-3.1-8b-instant}
 *     model_file: router/lr.model   # optional: the model built into aigw otherwise
 *     aliases: [mf]                 # optional: router-mf-… means this router too
 *
 * Its own file because config.c is at its size limit; it runs on the same table machinery
 * (config_read.h). Only the shape is checked here: that the providers exist, and the model
 * file itself, are the load sequence's (gateway.c), which builds one router tree to prove it. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"

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
