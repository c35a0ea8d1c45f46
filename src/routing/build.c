/* build.c — the config's route trees, built once the file is read (routing_build).
 *
 * config.c reads `routes:` as JSON and keeps each entry's line; the trees are built here, by
 * the same builder as a request's config header (tree.c), into the config's arena, so the
 * file and the headers can never mean different things. Built after providers_prepare(): a
 * leaf points at its provider, whose preset and URLs are then known. Everything built is
 * immutable afterwards and shared by the workers; what changes at run time (breakers,
 * budgets, round-robin positions) lives in the routing state made here.
 *
 * Rejected: building the trees while the YAML is read (config.c called into routing, and
 * routing's tree builder read the config: a loop between the two folders). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "routing/routing.h"
#include "util/alloc.h"

bool routing_build(aigw_config *cfg, const routing_providers *providers, char *err, size_t errlen)
{
    cfg->health = routing_state_new(&cfg->routing, providers);
    cfg->health_free = routing_state_free;
    /* The implicit one-target tree of each served model (a fallback when several serve it). */
    for (size_t i = 0, j; i < cfg->nroutes; i = j) {
        for (j = i + 1; j < cfg->nroutes && !strcmp(cfg->routes[j].public_name, cfg->routes[i].public_name);
             j++)
            ;
        const route_tree *t = route_tree_for_model(&cfg->arena, cfg, cfg->health, &cfg->routes[i], j - i);
        for (size_t k = i; k < j; k++)
            cfg->routes[k].tree = t;
    }
    /* `routes:`, in the sources' order (by name), so config_find_route finds trees[i] by
     * route_sources[i]'s name. */
    cfg->trees = xcalloc(cfg->nroute_sources ? cfg->nroute_sources : 1, sizeof *cfg->trees);
    bool ok = true; /* every route's mistake is reported, not only the first */
    for (size_t i = 0; i < cfg->nroute_sources; i++) {
        const route_source *src = &cfg->route_sources[i];
        char msg[512];
        route_tree *t = route_tree_build(&cfg->arena, cfg, cfg->health, src->json, src->name, false, true,
                                         false, msg, sizeof msg);
        if (!t) ok = config_error_at(cfg, src->line, err, errlen, "route '%s': %s", src->name, msg);
        cfg->trees[cfg->ntrees++] = t; /* NULL for a refused one: the config is not used */
    }
    routing_state_seal(cfg->health);
    if (cfg->default_route_name) {
        const char *name = cfg->default_route_name;
        size_t len = strlen(name);
        const model_route *r = config_find_model(cfg, name, len);
        cfg->default_route = config_find_route(cfg, name, len);
        if (!cfg->default_route) cfg->default_route = r ? r->tree : NULL;
        bool named_route = false; /* a route that was refused above is still a route by that name */
        for (size_t i = 0; i < cfg->nroute_sources && !named_route; i++)
            named_route = !strcmp(cfg->route_sources[i].name, name);
        if (!cfg->default_route && !named_route)
            ok = config_error_at(cfg, cfg->default_route_line, err, errlen,
                                 "default_route '%s' is neither a route nor a served model", name);
    }
    return ok;
}
