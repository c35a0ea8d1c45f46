/* condition.c — a conditional node's conditions, evaluated against one request.
 *
 * Portkey's query language over the request's metadata (metadata.*), body (params.*) and, in
 * Portkey configs (tree.c accepts it only there), path (url.pathname, without the query):
 * $eq $ne $in $nin $gt $gte $lt $lte $regex, combined with $and / $or, a bare value meaning
 * $eq. Metadata values are strings, so a number compares equal to its decimal text. The
 * queries were checked when the tree was built (tree.c: check_query), and every $regex
 * pattern compiled there; this file only reads them, on the worker's loop, so a search is
 * bounded (ROUTE_REGEX_MAX_SUBJECT, the tree's PCRE2 match limits) and a search that hits a
 * bound is "no match" with a note for the access log.
 *
 * Split from the walk (walk.c), which decides what to try next: this is the one part of it
 * that reads the request rather than the targets' health, and it needs no walk state beyond
 * the match data it reuses and the note it may leave. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "routing/condition.h"

/* What one evaluation reads and may leave behind for the walk. */
typedef struct condition_search {
    const route_context *ctx;
    const route_tree *tree;
    pcre2_match_data **matches; /* made at the first $regex search, kept by the walk */
    const char **note;          /* route_note() */
    json_t *pathname;           /* url.pathname as JSON, made at its first use, freed after the query */
} condition_search;

/* "metadata.user_plan" → the value in the metadata object; params.* in the body. Portkey
 * reads one level below the root; deeper dotted paths are followed the same way. */
static const json_t *lookup(condition_search *w, const char *path)
{
    const route_context *c = w->ctx;
    const json_t *v;
    if (!strcmp(path, "url.pathname")) {
        if (!w->pathname && c->path) w->pathname = json_string(c->path);
        return w->pathname; /* NULL (missing) when the path is not UTF-8 or not known */
    }
    if (!strncmp(path, "request.", 8)) /* the request's shape, computed by the pipeline (plan.c) */
        return c->shape ? json_object_get(c->shape, path + 8) : NULL;
    if (!strncmp(path, "metadata.", 9)) {
        v = c->metadata;
        path += 9;
    } else {
        v = c->params;
        path += 7;
    }
    while (v && *path) {
        const json_t *whole = json_object_get(v, path); /* a key that itself holds dots */
        if (whole) return whole;
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        char key[128];
        if (len >= sizeof key) return NULL;
        memcpy(key, path, len);
        key[len] = '\0';
        v = json_object_get(v, key);
        path += len + (dot ? 1 : 0);
    }
    return v;
}

static bool as_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v)) {
        char *end;
        *out = strtod(json_string_value(v), &end);
        return end != json_string_value(v) && !*end;
    }
    return false;
}

/* Equal as JSON, or as numbers when one side is a number written as a string (metadata
 * values are strings). */
static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_equal((json_t *)a, (json_t *)b)) return true;
    double x, y;
    return (json_is_number(a) || json_is_number(b)) && as_number(a, &x) && as_number(b, &y) && x == y;
}

static int compare(const json_t *a, const json_t *b, bool *ok)
{
    double x, y;
    *ok = true;
    if (as_number(a, &x) && as_number(b, &y)) return x < y ? -1 : x > y;
    if (json_is_string(a) && json_is_string(b)) return strcmp(json_string_value(a), json_string_value(b));
    *ok = false;
    return 0;
}

/* A `$regex` search, with the pattern compiled when the tree was built. It runs on the worker's
 * loop, so it is bounded: the value at most ROUTE_REGEX_MAX_SUBJECT bytes, the search within
 * PCRE2's match, depth and heap limits (the tree's match context). Either bound reached: not
 * a match, and the walk notes it for the access log. */
static bool regex_search(const condition_search *w, const json_t *pattern, const json_t *value)
{
    pcre2_code *code = NULL;
    for (size_t i = 0; i < w->tree->nregexes && !code; i++)
        if (w->tree->regexes[i].pattern == pattern) code = w->tree->regexes[i].code;
    if (!code) return false; /* every pattern of a tree is compiled when it is built */
    size_t len = json_string_length(value);
    if (len > ROUTE_REGEX_MAX_SUBJECT) {
        *w->note = "a $regex condition's value is over 4096 bytes: taken as not matching";
        return false;
    }
    if (!*w->matches) *w->matches = pcre2_match_data_create(1, route__pcre2_context(w->ctx->arena));
    int rc = pcre2_match(code, (PCRE2_SPTR)json_string_value(value), len, 0, 0, *w->matches,
                         w->tree->match_context);
    if (rc >= 0) return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        *w->note = rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT
                       ? "a $regex condition reached its match limit: taken as not matching"
                       : "a $regex condition could not be run on its value: taken as not matching";
    return false;
}

static bool op_matches(const condition_search *w, const char *op, const json_t *value, const json_t *arg)
{
    if (!value) return !strcmp(op, "$ne") || !strcmp(op, "$nin");
    if (!strcmp(op, "$eq")) return values_equal(value, arg);
    if (!strcmp(op, "$ne")) return !values_equal(value, arg);
    if (!strcmp(op, "$in") || !strcmp(op, "$nin")) {
        bool found = false;
        size_t i;
        const json_t *x;
        json_array_foreach(arg, i, x) found |= values_equal(value, x);
        return op[1] == 'i' ? found : !found;
    }
    if (!strcmp(op, "$regex")) return json_is_string(value) && regex_search(w, arg, value);
    bool ok;
    int c = compare(value, arg, &ok);
    if (!ok) return false;
    if (!strcmp(op, "$gt")) return c > 0;
    if (!strcmp(op, "$gte")) return c >= 0;
    if (!strcmp(op, "$lt")) return c < 0;
    return c <= 0; /* $lte */
}

static bool query_matches(condition_search *w, const json_t *q)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)q, key, val)
    {
        if (!strcmp(key, "$and") || !strcmp(key, "$or")) {
            bool any = false, all = true;
            size_t i;
            const json_t *sub;
            json_array_foreach(val, i, sub)
            {
                bool m = query_matches(w, sub);
                any |= m;
                all &= m;
            }
            if (!(key[1] == 'a' ? all : any)) return false;
            continue;
        }
        const json_t *v = lookup(w, key);
        if (!json_is_object(val)) {
            if (!op_matches(w, "$eq", v, val)) return false;
            continue;
        }
        const char *op;
        const json_t *arg;
        json_object_foreach((json_t *)val, op, arg) if (!op_matches(w, op, v, arg)) return false;
    }
    return true;
}

bool route__query_matches(const route_context *ctx, const route_tree *tree, const json_t *query,
                          struct pcre2_real_match_data_8 **matches, const char **note)
{
    condition_search search = {.ctx = ctx, .tree = tree, .matches = matches, .note = note};
    bool matched = query_matches(&search, query);
    json_decref(search.pathname);
    return matched;
}
