/* condition.h — evaluating a conditional node's query, and the PCRE2 memory context the
 * routing files share.
 *
 * Internal to src/routing (walk.c asks, condition.c answers, tree.c compiles the patterns);
 * the rest of the gateway sees conditions only through routing.h. */
#ifndef AIGW_ROUTING_CONDITION_H
#define AIGW_ROUTING_CONDITION_H

#include <stdbool.h>

#include "routing/routing.h"
#include "util/arena.h"

struct json_t;
struct pcre2_real_match_data_8;

/* Whether query (a condition's `query`, as the tree holds it) matches the request of ctx.
 * *matches is the walk's PCRE2 match data: NULL until the first $regex search makes it in
 * ctx->arena, then reused. *note is set when a $regex search was cut short or could not run
 * (taken as not matching), and left alone otherwise. */
bool route__query_matches(const route_context *ctx, const route_tree *tree, const struct json_t *query,
                          struct pcre2_real_match_data_8 **matches, const char **note);

/* A PCRE2 general context whose memory comes from arena a (tree.c). */
void *route__pcre2_context(arena *a);

#endif
