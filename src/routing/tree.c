/* tree.c — a route's JSON form (aigw's and Portkey's config schema) → an immutable tree.
 *
 * One builder for every source: the config file's `routes:` (YAML turned into the same JSON
 * by config.c), `x-aigw-config` and `x-portkey-config`. Inheritance is resolved here, once:
 * a child starts from its parent's retry policy, timeout, fallback statuses and override
 * parameters, and overrides what it sets itself. Every mistake names its field as a path
 * ("targets[1].retry.attempts"), which the caller puts into a 400 or a file:line message.
 * Keys may be snake_case or Portkey's camelCase. Portkey features aigw does not have
 * (guardrails, hooks) are refused by name rather than silently ignored; a `cache` block
 * ({mode, max_age}) is read here and used by the pipeline's CACHE stage.
 *
 * A Portkey config (x-portkey-config) gets Portkey's documented behaviour where it differs
 * from aigw's: no retries unless asked, a `retry` that replaces the inherited one whole and
 * must say `attempts`, a single strategy that uses its first of several targets, conditions
 * on url.pathname. aigw's own configs keep aigw's (docs/routing.md compares them).
 *
 * Beside it: route_cache.c keeps the trees of header configs per worker, and condition.c
 * evaluates the conditions this file checks and compiles. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "routing/condition.h"
#include "routing/health.h"
#include "routing/routing.h"
#include "util/alloc.h"
#include "util/units.h"
#include "util/url.h"

typedef struct builder {
    arena *arena;
    const aigw_config *cfg;
    routing_state *state;
    bool portkey;
    retry_policy portkey_retry; /* Portkey: what a node's own `retry` starts from (not its parent's) */
    bool needs_params;
    bool needs_metadata;
    bool needs_shape;
    const route_node *router;
    const route_node *auto_node;
    const route_node *external; /* the node that asks the external router (at most one) */
    bool stored;                /* shared by many requests: round-robin orders are worth computing */
    bool client;                /* a request's config: the store's virtual keys may be named */
    bool used_virtual_keys;
    route_cache_policy cache; /* the first `cache` block met */
    int leaves;
    route_regex regexes[ROUTE_MAX_REGEXES]; /* compiled as the conditions are checked */
    size_t nregexes;
    char *err;
    size_t errlen;
} builder;

static bool fail(builder *b, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(builder *b, const char *path, const char *fmt, ...)
{
    int n = snprintf(b->err, b->errlen, "%s%s", path, *path ? ": " : "");
    if (n < 0 || (size_t)n >= b->errlen) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* A field's path for messages. Keys come from the client: a key is shown as at most 64 bytes
 * of [A-Za-z0-9_.$-] (anything else as '?'), so a message never carries much of what a
 * client put where a name belongs. */
static char *child_path(builder *b, const char *path, const char *key, int index)
{
    char shown[72];
    size_t n = 0;
    for (const char *k = key; *k && n < 64; k++)
        shown[n++] = isalnum((unsigned char)*k) || strchr("_.$-", *k) ? *k : '?';
    if (key[n]) shown[n++] = '?';
    shown[n] = '\0';
    size_t len = strlen(path) + n + 24;
    char *p = arena_alloc(b->arena, len);
    if (index >= 0)
        snprintf(p, len, "%s%s%s[%d]", path, *path && n ? "." : "", shown, index);
    else
        snprintf(p, len, "%s%s%s", path, *path ? "." : "", shown);
    return p;
}

/* Portkey accepts camelCase for every key: onStatusCodes → on_status_codes. */
static void snake_key(const char *key, char *out, size_t len)
{
    size_t o = 0;
    for (const char *k = key; *k && o + 2 < len; k++) {
        if (isupper((unsigned char)*k)) {
            out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)*k);
        } else {
            out[o++] = *k;
        }
    }
    out[o] = '\0';
}

/* ---- values ------------------------------------------------------------------------------ */

static bool get_uint(builder *b, const char *path, const json_t *v, uint32_t max, uint32_t *out)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return fail(b, path, "must be a number");
    if (d < 0 || d > max || d != floor(d)) return fail(b, path, "must be a whole number from 0 to %u", max);
    *out = (uint32_t)d;
    return true;
}

static bool get_statuses(builder *b, const char *path, const json_t *v, status_set *out)
{
    if (!json_is_array(v)) return fail(b, path, "must be a list of HTTP status codes");
    memset(out, 0, sizeof *out);
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_integer(s) || json_integer_value(s) < 100 || json_integer_value(s) > 599)
            return fail(b, child_path(b, path, "", (int)i), "must be an HTTP status code (100-599)");
        int code = (int)json_integer_value(s);
        out->bits[code / 64] |= 1ULL << (code % 64);
    }
    return true;
}

/* Strings end up in URLs, request headers to providers and response headers: no control
 * characters (a CR LF would start a header of the client's choosing). */
static bool get_string(builder *b, const char *path, const json_t *v, const char **out)
{
    if (!json_is_string(v) || !json_string_length(v)) return fail(b, path, "must be a non-empty string");
    for (size_t i = 0; i < json_string_length(v); i++) {
        unsigned char ch = (unsigned char)json_string_value(v)[i];
        if (ch < 0x20 || ch == 0x7f) return fail(b, path, "must not contain control characters");
    }
    *out = arena_strndup(b->arena, json_string_value(v), json_string_length(v));
    return true;
}

/* Milliseconds: a number, or (from YAML) a string with a unit, as the config spells it. */
static bool get_duration(builder *b, const char *path, const json_t *v, uint32_t max, uint32_t *out)
{
    if (!json_is_string(v)) return get_uint(b, path, v, max, out);
    long long ms;
    if (!units_parse_duration(json_string_value(v), &ms) || ms > max)
        return fail(b, path, "must be a duration in ms (a number, or \"500ms\", \"10s\", \"2m\") up to %u ms",
                    max);
    *out = (uint32_t)ms;
    return true;
}

/* ---- cache ------------------------------------------------------------------------------- */

/* A `cache` block: Portkey's {"mode": "simple"|"semantic", "max_age": seconds} (a string "simple"
 * too), and in aigw's configs `mode: off` and a max_age with a unit ("10m"). The first block met
 * is the tree's; the others are checked all the same. */
static bool parse_cache(builder *b, const char *path, const json_t *v)
{
    route_cache_policy c = {0};
    const json_t *mode = json_is_string(v) ? v : json_object_get(v, "mode");
    if (!json_is_object(v) && !json_is_string(v))
        return fail(b, path, "must be an object such as {\"mode\": \"simple\", \"max_age\": 3600}");
    const char *key;
    const json_t *val;
    if (json_is_object(v)) json_object_foreach((json_t *)v, key, val)
        {
            char k[64];
            snake_key(key, k, sizeof k);
            if (strcmp(k, "mode") && strcmp(k, "max_age"))
                return fail(b, child_path(b, path, key, -1), "unknown field (allowed: mode, max_age)");
        }
    const char *m = json_string_value(mode);
    if (!m) return fail(b, child_path(b, path, "mode", -1), "must be \"simple\" or \"semantic\"");
    if (!strcmp(m, "simple"))
        c.mode = ROUTE_CACHE_SIMPLE;
    else if (!strcmp(m, "semantic"))
        c.mode = ROUTE_CACHE_SEMANTIC;
    else if (!strcmp(m, "off") && !b->portkey)
        c.mode = ROUTE_CACHE_OFF;
    else
        return fail(b, child_path(b, path, "mode", -1), "must be \"simple\" or \"semantic\"%s",
                    b->portkey ? "" : " (or \"off\")");
    const json_t *age = json_is_object(v) ? json_object_get(v, "max_age") : NULL;
    if (!age) age = json_is_object(v) ? json_object_get(v, "maxAge") : NULL;
    if (age) {
        const char *p = child_path(b, path, "max_age", -1);
        if (json_is_string(age)) {
            long long ms;
            if (!units_parse_duration(json_string_value(age), &ms) || ms < 1000 ||
                ms > (long long)ROUTE_CACHE_MAX_AGE_MAX * 1000)
                return fail(b, p, "must be seconds (a number, or \"10m\", \"1h\") from 1 s to 90 days");
            c.max_age_s = (uint32_t)(ms / 1000);
        } else if (json_is_integer(age) && json_integer_value(age) >= 1 &&
                   json_integer_value(age) <= ROUTE_CACHE_MAX_AGE_MAX) {
            c.max_age_s = (uint32_t)json_integer_value(age);
        } else {
            return fail(b, p, "must be a whole number of seconds from 1 to 7776000 (90 days)");
        }
    }
    if (b->cache.mode == ROUTE_CACHE_UNSET) b->cache = c;
    return true;
}

/* ---- retry ------------------------------------------------------------------------------- */

/* A node's `retry` over r, which holds what it inherited. aigw's configs override the fields
 * they set and keep the others; a Portkey config's `retry` replaces the inherited one whole
 * (its unset fields take Portkey's defaults), and must say `attempts`, as Portkey requires. */
static bool parse_retry(builder *b, const char *path, const json_t *v, retry_policy *r)
{
    if (!json_is_object(v)) return fail(b, path, "must be an object");
    if (b->portkey) *r = b->portkey_retry;
    bool have_attempts = false;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        char k[64];
        snake_key(key, k, sizeof k);
        const char *p = child_path(b, path, key, -1);
        if (!strcmp(k, "attempts")) {
            if (!get_uint(b, p, val, 10, &r->attempts)) return false;
            have_attempts = true;
        } else if (!strcmp(k, "on_status_codes")) {
            if (!get_statuses(b, p, val, &r->on)) return false;
        } else if (!strcmp(k, "use_retry_after_header") || !strcmp(k, "use_retry_after_headers")) {
            if (!json_is_boolean(val)) return fail(b, p, "must be true or false");
            r->use_retry_after = json_is_true(val);
        } else if (!strcmp(k, "base_delay")) {
            if (!get_duration(b, p, val, 600000, &r->base_delay_ms)) return false;
        } else if (!strcmp(k, "max_delay")) {
            if (!get_duration(b, p, val, 600000, &r->max_delay_ms)) return false;
        } else if (!strcmp(k, "max_wait")) {
            if (!get_duration(b, p, val, 3600000, &r->max_wait_ms)) return false;
        } else {
            return fail(b, p,
                        "unknown field (allowed: attempts, on_status_codes, use_retry_after_header, "
                        "base_delay, max_delay, max_wait)");
        }
    }
    if (b->portkey && !have_attempts)
        return fail(b, child_path(b, path, "attempts", -1), "is required in a Portkey config's retry");
    return true;
}

/* ---- providers of leaves ------------------------------------------------------------------- */

/* Portkey's provider slugs whose name differs from aigw's preset type. */
static const char *preset_type_of_slug(const char *slug)
{
    static const char *const map[][2] = {
        {"azure-openai", "azure"},     {"google", "gemini"},
        {"mistral-ai", "mistral"},     {"together-ai", "together"},
        {"fireworks-ai", "fireworks"}, {"x-ai", "xai"},
        {"github", "github-models"},   {"hugging-face", "huggingface"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(slug, map[i][0])) return map[i][1];
    return slug;
}

static const provider_config *provider_named(const aigw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (!strcmp(cfg->providers[i].name, name)) return &cfg->providers[i];
    return NULL;
}

/* ---- URLs a request may name (custom_host): the prefixes that allow them ---------------- */

bool route_url_allowed(const routing_settings *s, const char *normalized)
{
    for (size_t i = 0; i < s->nallowed_hosts; i++) {
        const char *prefix = s->allowed_hosts[i];
        size_t n = strlen(prefix);
        if (!strncmp(normalized, prefix, n) && (normalized[n] == '\0' || normalized[n] == '/')) return true;
    }
    return false;
}

/* A target naming one of the store's virtual keys (Portkey's `virtual_key`, or "@name" that no
 * provider of the config has): a provider of the key's type at its base URL, whose key comes
 * from the virtual key when the attempt is encoded (the credential is never in the tree, so a
 * rotation needs no rebuild). A virtual key carries its own host and key: custom_host and
 * api_key are refused beside it. */
static bool resolve_virtual_key(builder *b, const char *path, route_node *n, const char *name,
                                const char *field, const char *type, const char *base_url)
{
    const routing_providers *providers = routing__providers(b->state);
    if (n->custom_host || n->api_key)
        return fail(b, child_path(b, path, n->custom_host ? "custom_host" : "api_key", -1),
                    "not with a virtual key, which carries its own host and key");
    const struct provider_preset *preset = providers->preset_find(type);
    provider_config *d =
        preset ? (provider_config *)providers->derive(b->arena, NULL, preset, base_url, NULL) : NULL;
    if (!d)
        return fail(b, child_path(b, path, field, -1),
                    "names a virtual key whose provider type or base_url this gateway cannot use");
    d->name = arena_strndup(b->arena, name, strlen(name));
    d->virtual_key = d->name;
    n->provider = d;
    b->used_virtual_keys = true;
    return true;
}

static bool resolve_leaf_provider(builder *b, const char *path, route_node *n, const char *name,
                                  bool by_virtual_key)
{
    const aigw_config *cfg = b->cfg;
    const routing_providers *providers = routing__providers(b->state);
    const char *original = name;
    if (name[0] == '@') name++; /* Portkey's "@openai-prod": a provider by its name */
    const provider_config *p = provider_named(cfg, name);
    const struct provider_preset *preset = NULL;
    if (!p && !by_virtual_key) {
        /* Portkey names a provider by its type: the first provider of that type serves it. */
        preset = providers->preset_find(preset_type_of_slug(name));
        for (size_t i = 0; preset && !p && i < cfg->nproviders; i++)
            if (cfg->providers[i].preset == preset) p = &cfg->providers[i];
    }
    const char *field = by_virtual_key ? "virtual_key" : "provider";
    const char *vkey_type = NULL, *vkey_base_url = NULL;
    if (!p && (by_virtual_key || name != original) && b->client && providers->virtual_key &&
        providers->virtual_key(b->arena, name, &vkey_type, &vkey_base_url))
        return resolve_virtual_key(b, path, n, name, field, vkey_type, vkey_base_url);
    if (!p && !(preset && n->custom_host)) {
        char names[512];
        size_t off = 0;
        names[0] = '\0';
        for (size_t i = 0; i < cfg->nproviders && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                    cfg->providers[i].name);
        /* the client's value is not echoed (a key pasted into the wrong field would be) */
        return fail(b, child_path(b, path, field, -1),
                    "names no provider of the gateway's config (known: %s)%s", names,
                    by_virtual_key || name != original ? " nor one of its virtual keys" : "");
    }
    char url[1024];
    const char *why = NULL;
    if (n->custom_host && !url_normalize(n->custom_host, url, sizeof url, &why))
        return fail(b, child_path(b, path, "custom_host", -1), "%s", why);
    if (n->custom_host)
        n->custom_host = arena_strndup(b->arena, url, strlen(url)); /* what is checked is sent */
    if (n->api_key && !n->custom_host && !url_normalize(p->base_url, url, sizeof url, &why)) url[0] = '\0';
    if ((n->custom_host || n->api_key) && !(url[0] && route_url_allowed(&cfg->routing, url)))
        return fail(
            b, child_path(b, path, n->custom_host ? "custom_host" : "api_key", -1),
            "accepted only for URLs under a prefix listed in the config's routing.allowed_hosts (%s is "
            "not)",
            n->custom_host ? "this one" : "the provider's");
    if (n->custom_host || n->api_key) {
        provider_config *d = (provider_config *)providers->derive(b->arena, p, p ? p->preset : preset,
                                                                  n->custom_host, n->api_key);
        if (!d) return fail(b, child_path(b, path, "custom_host", -1), "must be an http:// or https:// URL");
        if (n->custom_host) d->name = (char *)d->base_url; /* another host: its own health */
        n->provider = d;
    } else {
        n->provider = p;
    }
    return true;
}

/* ---- regular expressions ------------------------------------------------------------------ */

/* PCRE2 allocates through these: everything of a compiled pattern lives in the tree's arena and
 * goes with it (a request's tree, a kept header config, the config's routes). */
static void *on_pcre2_alloc(PCRE2_SIZE size, void *ud)
{
    return arena_alloc(ud, size ? size : 1);
}

static void on_pcre2_free(void *p, void *ud)
{
    (void)p;
    (void)ud;
}

void *route__pcre2_context(arena *a)
{
    return pcre2_general_context_create(on_pcre2_alloc, on_pcre2_free, a);
}

/* A `$regex` pattern compiled into a, or NULL when refused. PCRE2 rather than glibc's regexec:
 * its searches run under a match limit (a pattern such as ((a|b|ab)*)*c took glibc 11 s on an
 * 80 KB value, on the worker's loop), and its compiler bounds the compiled size itself (glibc
 * expanded nested counted repetitions into gigabytes), so counted repetition and
 * back-references no longer need refusing. */
static pcre2_code *regex_compile(arena *a, const char *pattern, size_t len)
{
    if (len > ROUTE_REGEX_MAX_PATTERN) return NULL;
    pcre2_compile_context *cc = pcre2_compile_context_create(route__pcre2_context(a));
    pcre2_set_parens_nest_limit(cc, 32);
    int code;
    PCRE2_SIZE offset;
    return pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &code, &offset, cc);
}

bool route_regex_valid(const char *pattern)
{
    arena a;
    arena_init(&a, 4096);
    bool ok = regex_compile(&a, pattern, strlen(pattern)) != NULL;
    arena_free(&a);
    return ok;
}

/* ---- nodes --------------------------------------------------------------------------------- */

static bool parse_strategy(builder *b, const char *path, const json_t *v, route_node *n,
                           const json_t **conditions, const char **default_name)
{
    if (!json_is_object(v)) return fail(b, path, "must be an object with a 'mode'");
    const char *key;
    const json_t *val;
    bool have_mode = false, auto_fields = false;
    json_object_foreach((json_t *)v, key, val)
    {
        char k[64];
        snake_key(key, k, sizeof k);
        const char *p = child_path(b, path, key, -1);
        if (!strcmp(k, "mode")) {
            const char *m = json_string_value(val);
            if (!m) return fail(b, p, "must be a string");
            if (!strcmp(m, "single"))
                n->mode = ROUTE_SINGLE;
            else if (!strcmp(m, "fallback"))
                n->mode = ROUTE_FALLBACK;
            else if (!strcmp(m, "loadbalance"))
                n->mode = ROUTE_LOADBALANCE;
            else if (!strcmp(m, "conditional"))
                n->mode = ROUTE_CONDITIONAL;
            else if (!strcmp(m, "router"))
                n->mode = ROUTE_ROUTER;
            else if (!strcmp(m, "auto"))
                n->mode = ROUTE_AUTO;
            else
                return fail(b, p, "unknown mode (single, fallback, loadbalance, conditional, router, auto)");
            have_mode = true;
        } else if (!strcmp(k, "on_status_codes")) {
            if (!get_statuses(b, p, val, &n->fallback_on)) return false;
            n->fallback_on_any = false;
        } else if (!strcmp(k, "balance")) {
            const char *m = json_string_value(val);
            if (m && !strcmp(m, "weighted"))
                n->balance = BALANCE_WEIGHTED;
            else if (m && !strcmp(m, "least_busy"))
                n->balance = BALANCE_LEAST_BUSY;
            else if (m && !strcmp(m, "latency"))
                n->balance = BALANCE_LATENCY;
            else
                return fail(b, p, "must be weighted, least_busy or latency");
        } else if (!strcmp(k, "hedge")) {
            if (json_is_true(val)) {
                n->hedge_p95 = true;
            } else if (!json_is_false(val)) {
                if (!get_duration(b, p, val, 600000, &n->hedge_ms)) return false;
                if (!n->hedge_ms)
                    return fail(b, p, "must be true (the target's p95 time to first byte) or a delay > 0");
            }
        } else if (!strcmp(k, "conditions")) {
            if (!json_is_array(val)) return fail(b, p, "must be a list of {query, then}");
            *conditions = val;
        } else if (!strcmp(k, "default")) {
            if (!json_is_string(val)) return fail(b, p, "must name a target");
            *default_name = json_string_value(val);
        } else if (!strcmp(k, "threshold")) {
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 1)
                return fail(b, p,
                            "must be a number from 0 to 1 (the score from which the strong target is used)");
            n->router_threshold = json_number_value(val);
        } else if (!strcmp(k, "strong_percent")) {
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 100)
                return fail(b, p,
                            "must be a number from 0 to 100 (the share of prompts for the strong target)");
            n->router_percent = json_number_value(val);
        } else if (!strcmp(k, "objective")) {
            const char *o = json_string_value(val);
            static const char *const names[] = {"cost", "latency", "quality", "balanced"};
            size_t i = 0;
            while (o && i < 4 && strcmp(o, names[i]))
                i++;
            if (!o || i == 4) return fail(b, p, "must be cost, latency, quality or balanced");
            n->objective = (route_objective)i;
            auto_fields = true;
        } else if (!strcmp(k, "quality_floor")) {
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 1)
                return fail(b, p, "must be a number from 0 to 1 (the least quality a candidate needs)");
            n->quality_floor = json_number_value(val);
            auto_fields = true;
        } else if (!strcmp(k, "max_cost")) {
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 1000)
                return fail(b, p, "must be a number of USD from 0 to 1000 (the most a request may cost)");
            n->max_cost_usd = json_number_value(val);
            auto_fields = true;
        } else if (!strcmp(k, "output_tokens")) {
            if (!get_uint(b, p, val, 1000000, &n->output_tokens)) return false;
            if (!n->output_tokens) return fail(b, p, "must be at least 1");
            auto_fields = true;
        } else if (!strcmp(k, "external")) {
            if (!json_is_boolean(val)) return fail(b, p, "must be true or false");
            n->external = json_is_true(val);
        } else {
            return fail(b, p,
                        "unknown field (allowed: mode, on_status_codes, balance, hedge, conditions, default, "
                        "threshold, strong_percent, objective, quality_floor, max_cost, output_tokens, "
                        "external)");
        }
    }
    if (!have_mode) return fail(b, child_path(b, path, "mode", -1), "is required");
    if (n->mode == ROUTE_ROUTER) {
        if ((n->router_threshold >= 0) == (n->router_percent >= 0))
            return fail(b, path, "a router strategy needs one of threshold and strong_percent");
        if (b->router) return fail(b, path, "a route has at most one router strategy");
    } else if (n->router_threshold >= 0 || n->router_percent >= 0) {
        return fail(b, path, "threshold and strong_percent belong to a router strategy");
    }
    if ((n->hedge_ms || n->hedge_p95) && n->mode != ROUTE_FALLBACK)
        return fail(b, child_path(b, path, "hedge", -1), "belongs to a fallback strategy");
    if (auto_fields && n->mode != ROUTE_AUTO)
        return fail(b, path,
                    "objective, quality_floor, max_cost and output_tokens belong to an auto strategy");
    if (n->mode == ROUTE_AUTO && b->auto_node) return fail(b, path, "a route has at most one auto strategy");
    if (n->external) {
        if (n->mode != ROUTE_AUTO && n->mode != ROUTE_ROUTER)
            return fail(b, child_path(b, path, "external", -1), "belongs to an auto or a router strategy");
        if (b->client)
            return fail(b, child_path(b, path, "external", -1),
                        "only the config file's routes may ask the external router");
        if (!b->cfg->external_router.url)
            return fail(b, child_path(b, path, "external", -1),
                        "the config has no external_router section to ask");
        if (b->external)
            return fail(b, child_path(b, path, "external", -1), "at most one strategy of a route");
    }
    return true;
}

/* An auto node's candidates, once built: leaves with a model (so the catalog entry is known),
 * the quality each needs for the node's objective and floor, the price each needs for its
 * objective and max_cost. */
static bool check_auto(builder *b, const char *path, route_node *n)
{
    bool need_quality =
        n->objective == OBJECTIVE_QUALITY || n->objective == OBJECTIVE_BALANCED || n->quality_floor > 0;
    bool need_price =
        n->objective == OBJECTIVE_COST || n->objective == OBJECTIVE_BALANCED || n->max_cost_usd >= 0;
    const char *why_price =
        n->max_cost_usd >= 0 && n->objective != OBJECTIVE_COST && n->objective != OBJECTIVE_BALANCED
            ? "max_cost"
        : n->objective == OBJECTIVE_COST ? "objective cost"
                                         : "objective balanced";
    const char *objective = n->objective == OBJECTIVE_QUALITY    ? "objective quality"
                            : n->objective == OBJECTIVE_BALANCED ? "objective balanced"
                                                                 : "quality_floor";
    for (size_t i = 0; i < n->nchildren; i++) {
        route_node *c = &n->children[i];
        const char *p = child_path(b, child_path(b, path, "targets", -1), "", (int)i);
        if (c->nchildren) return fail(b, p, "an auto strategy's candidates are targets (provider and model)");
        if (!c->route)
            return fail(b, p,
                        "an auto candidate names its model (its price and limits come from the catalog)");
        if (need_quality && c->quality < 0)
            return fail(b, child_path(b, p, "quality", -1),
                        "is required by %s (a number from 0 to 1: the operator's rating of the candidate)",
                        objective);
        const catalog_entry *e = c->route->catalog;
        if (need_price && !(e && e->priced))
            return fail(b, p,
                        "%s needs the candidate's price, and the model catalog has none for %s/%s (add it "
                        "with `catalog: FILE`)",
                        why_price, c->provider->type, c->model);
        if (c->name) {
            c->display = c->name;
        } else {
            size_t len = strlen(c->provider->name) + strlen(c->model) + 2;
            char *d = arena_alloc(b->arena, len);
            snprintf(d, len, "%s/%s", c->provider->name, c->model);
            c->display = d;
        }
    }
    return true;
}

static bool build_node(builder *b, const char *path, const json_t *v, route_node *n, const route_node *parent,
                       int depth);

static int child_named(const route_node *n, const char *name)
{
    for (size_t i = 0; i < n->nchildren; i++)
        if (n->children[i].name && !strcmp(n->children[i].name, name)) return (int)i;
    return -1;
}

/* A condition's query is checked for shape here, so a request never meets a bad one. */
static bool check_query(builder *b, const char *path, const json_t *q)
{
    if (!json_is_object(q)) return fail(b, path, "must be an object");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)q, key, val)
    {
        const char *p = child_path(b, path, key, -1);
        if (!strcmp(key, "$and") || !strcmp(key, "$or")) {
            if (!json_is_array(val) || !json_array_size(val))
                return fail(b, p, "must be a non-empty list of queries");
            size_t i;
            const json_t *sub;
            json_array_foreach(val, i,
                               sub) if (!check_query(b, child_path(b, p, "", (int)i), sub)) return false;
            continue;
        }
        bool pathname = b->portkey && !strcmp(key, "url.pathname"); /* Portkey's: the request's path */
        if (!strncmp(key, "request.", 8)) {
            static const char *const shape[] = {
                "request.tools",         "request.tool_result", "request.tokens",      "request.turns",
                "request.system_digest", "request.step",        "request.system_bytes"};
            bool known = false;
            for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
                known |= !strcmp(key, shape[i]);
            if (!known)
                return fail(b, p,
                            "request.* is one of tools, tool_result, tokens, turns, system_digest, "
                            "system_bytes, step");
            b->needs_shape = true;
        } else if (!pathname && strncmp(key, "metadata.", 9) && strncmp(key, "params.", 7))
            return fail(b, p,
                        b->portkey ? "a condition reads metadata.<key>, params.<key>, request.<shape> or "
                                     "url.pathname, or combines with $and / $or"
                                   : "a condition reads metadata.<key>, params.<key> or request.<shape>, or "
                                     "combines with $and / $or");
        if (!strncmp(key, "params.", 7)) b->needs_params = true;
        if (!strncmp(key, "metadata.", 9)) b->needs_metadata = true;
        if (!json_is_object(val)) continue; /* a bare value means $eq */
        const char *op;
        const json_t *arg;
        json_object_foreach((json_t *)val, op, arg)
        {
            static const char *const ops[] = {"$eq",  "$ne", "$gt",  "$gte",  "$lt",
                                              "$lte", "$in", "$nin", "$regex"};
            bool known = false;
            for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
                known |= !strcmp(op, ops[i]);
            const char *op_path = child_path(b, p, op, -1);
            if (!known)
                return fail(b, op_path,
                            "unknown operator (known: $eq $ne $gt $gte $lt $lte $in $nin $regex)");
            if ((!strcmp(op, "$in") || !strcmp(op, "$nin")) && !json_is_array(arg))
                return fail(b, op_path, "must be a list");
            if (!strcmp(op, "$regex")) {
                if (!json_is_string(arg)) return fail(b, op_path, "must be a string");
                if (b->nregexes >= ROUTE_MAX_REGEXES)
                    return fail(b, op_path, "a route has at most %d $regex conditions", ROUTE_MAX_REGEXES);
                pcre2_code *code = regex_compile(b->arena, json_string_value(arg), json_string_length(arg));
                if (!code)
                    return fail(b, op_path, "is not a valid regular expression (PCRE2, at most %d bytes)",
                                ROUTE_REGEX_MAX_PATTERN);
                b->regexes[b->nregexes++] = (route_regex){.pattern = arg, .code = code};
            }
        }
    }
    return true;
}

static bool build_children(builder *b, const char *path, const json_t *targets, route_node *n, int depth)
{
    size_t count = json_array_size(targets);
    if (!json_is_array(targets) || !count) return fail(b, path, "must be a non-empty list of targets");
    if (count > ROUTE_MAX_CHILDREN) return fail(b, path, "at most %d targets", ROUTE_MAX_CHILDREN);
    n->children = arena_alloc(b->arena, count * sizeof *n->children);
    memset(n->children, 0, count * sizeof *n->children);
    n->nchildren = count;
    for (size_t i = 0; i < count; i++) {
        route_node *c = &n->children[i];
        if (!build_node(b, child_path(b, path, "", (int)i), json_array_get(targets, i), c, n, depth + 1))
            return false;
        if (c->name)
            snprintf(c->label, sizeof c->label, "%.23s", c->name);
        else
            snprintf(c->label, sizeof c->label, "%zu", i);
    }
    return true;
}

static bool build_conditions(builder *b, const char *path, const json_t *conds, const char *default_name,
                             route_node *n)
{
    if (n->mode != ROUTE_CONDITIONAL) {
        if (conds || default_name)
            return fail(b, path, "conditions and default belong to a conditional strategy");
        return true;
    }
    if (!conds || !json_array_size(conds))
        return fail(b, child_path(b, path, "conditions", -1), "is required");
    n->nconditions = json_array_size(conds);
    n->conditions = arena_alloc(b->arena, n->nconditions * sizeof *n->conditions);
    for (size_t i = 0; i < n->nconditions; i++) {
        const json_t *c = json_array_get(conds, i);
        const char *p = child_path(b, child_path(b, path, "conditions", -1), "", (int)i);
        const json_t *query = json_object_get(c, "query");
        const json_t *then = json_object_get(c, "then");
        if (!json_is_object(c) || !query || !json_is_string(then))
            return fail(b, p, "must be {\"query\": {…}, \"then\": \"<target name>\"}");
        if (!check_query(b, child_path(b, p, "query", -1), query)) return false;
        int child = child_named(n, json_string_value(then));
        if (child < 0) return fail(b, child_path(b, p, "then", -1), "names no target of this node");
        n->conditions[i].query = (json_t *)query; /* the tree's owner keeps the JSON alive */
        n->conditions[i].child = child;
    }
    n->default_child = -1;
    if (default_name) {
        n->default_child = child_named(n, default_name);
        if (n->default_child < 0)
            return fail(b, child_path(b, path, "default", -1), "names no target of this node");
    }
    return true;
}

/* Smooth weighted round robin (nginx): each pick adds every weight to its current value,
 * takes the largest, and subtracts the total from it. The order repeats every `total` picks,
 * so it is computed once for a stored tree and walked with a shared counter. */
static void build_sequence(builder *b, route_node *n)
{
    uint64_t total = 0;
    uint32_t w[ROUTE_MAX_CHILDREN];
    uint32_t g = 0;
    for (size_t i = 0; i < n->nchildren; i++) {
        uint32_t x = n->children[i].weight, y = g;
        while (y) {
            uint32_t t = x % y;
            x = y;
            y = t;
        }
        g = x;
    }
    if (!g) return; /* every weight 0: nothing is chosen, and walk.c says so */
    for (size_t i = 0; i < n->nchildren; i++)
        total += w[i] = n->children[i].weight / g;
    while (total > 4096) { /* keep the table small: scale down, keeping every non-zero weight */
        total = 0;
        for (size_t i = 0; i < n->nchildren; i++)
            total += w[i] = w[i] ? (w[i] + 1) / 2 : 0;
    }
    int64_t current[ROUTE_MAX_CHILDREN] = {0};
    n->sequence = arena_alloc(b->arena, total * sizeof *n->sequence);
    n->sequence_len = total;
    for (uint64_t k = 0; k < total; k++) {
        size_t best = 0;
        for (size_t i = 0; i < n->nchildren; i++) {
            current[i] += w[i];
            if (current[i] > current[best]) best = i;
        }
        current[best] -= (int64_t)total;
        n->sequence[k] = (uint16_t)best;
    }
    n->cursor = arena_alloc(b->arena, sizeof *n->cursor);
    *n->cursor = 0;
}

/* Merges the override objects of the chain: the child's keys win. */
/* Merges a node's override_params over its parent's (the child's keys win) into n, each value
 * turned into JSON text once here so a request only splices it. `model` picks the model. */
static void merge_overrides(builder *b, route_node *n, const json_t *own)
{
    json_t *merged = json_object();
    for (size_t i = 0; i < n->noverrides; i++)
        json_object_set_new(merged, n->overrides[i].key,
                            json_loads(n->overrides[i].value, JSON_DECODE_ANY, NULL));
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)own, key, val)
    {
        if (!strcmp(key, "model") && json_is_string(val))
            n->model = arena_strndup(b->arena, json_string_value(val), json_string_length(val));
        else
            json_object_set(merged, key, (json_t *)val);
    }
    route_param *params = arena_alloc(b->arena, (json_object_size(merged) + 1) * sizeof *params);
    size_t count = 0;
    json_object_foreach(merged, key, val)
    {
        char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        params[count].key = arena_strndup(b->arena, key, strlen(key));
        params[count++].value = arena_strndup(b->arena, text, strlen(text));
        free(text);
    }
    json_decref(merged);
    n->overrides = params;
    n->noverrides = count;
}

static bool build_node(builder *b, const char *path, const json_t *v, route_node *n, const route_node *parent,
                       int depth)
{
    if (depth > ROUTE_MAX_DEPTH) return fail(b, path, "targets nest deeper than %d levels", ROUTE_MAX_DEPTH);
    if (!json_is_object(v)) return fail(b, path, "must be an object");
    /* Inherited first; then what this node sets. */
    if (parent) {
        n->retry = parent->retry;
        n->fallback_on = parent->fallback_on;
        n->fallback_on_any = parent->fallback_on_any;
        n->request_timeout_ms = parent->request_timeout_ms;
        n->overrides = parent->overrides;
        n->noverrides = parent->noverrides;
        n->model = parent->model;
    }
    n->weight = 1000;
    n->default_child = -1;
    n->router_threshold = n->router_percent = -1;
    n->max_cost_usd = -1;
    n->quality = -1;
    const json_t *targets = NULL, *conditions = NULL, *overrides = NULL;
    const char *default_name = NULL, *provider = NULL, *virtual_key = NULL;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        char k[64];
        snake_key(key, k, sizeof k);
        const char *p = child_path(b, path, key, -1);
        if (!strcmp(k, "strategy")) {
            if (!parse_strategy(b, p, val, n, &conditions, &default_name)) return false;
        } else if (!strcmp(k, "targets")) {
            targets = val;
        } else if (!strcmp(k, "name")) {
            if (!get_string(b, p, val, &n->name)) return false;
        } else if (!strcmp(k, "weight")) {
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 1e6)
                return fail(b, p, "must be a number from 0 to 1000000");
            n->weight = (uint32_t)llround(json_number_value(val) * 1000);
        } else if (!strcmp(k, "provider")) {
            if (!get_string(b, p, val, &provider)) return false;
        } else if (!strcmp(k, "virtual_key")) {
            if (!get_string(b, p, val, &virtual_key)) return false;
        } else if (!strcmp(k, "model")) {
            if (!get_string(b, p, val, &n->model)) return false;
        } else if (!strcmp(k, "api_key")) {
            if (!get_string(b, p, val, &n->api_key)) return false;
        } else if (!strcmp(k, "custom_host")) {
            if (!get_string(b, p, val, &n->custom_host)) return false;
        } else if (!strcmp(k, "retry")) {
            if (!parse_retry(b, p, val, &n->retry)) return false;
        } else if (!strcmp(k, "request_timeout")) {
            if (!get_duration(b, p, val, 3600000, &n->request_timeout_ms)) return false;
        } else if (!strcmp(k, "override_params")) {
            if (!json_is_object(val)) return fail(b, p, "must be an object of request parameters");
            overrides = val;
        } else if (!strcmp(k, "on_status_codes")) {
            if (!get_statuses(b, p, val, &n->fallback_on)) return false;
            n->fallback_on_any = false;
        } else if (!strcmp(k, "cache")) {
            if (!parse_cache(b, p, val)) return false;
        } else if (!strcmp(k, "quality")) {
            if (!parent || parent->mode != ROUTE_AUTO || depth == 0)
                return fail(b, p, "belongs to a candidate of an auto strategy");
            if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) > 1)
                return fail(b, p, "must be a number from 0 to 1 (the operator's rating of the candidate)");
            n->quality = json_number_value(val);
        } else if (!strcmp(k, "input_guardrails") || !strcmp(k, "output_guardrails") ||
                   !strcmp(k, "before_request_hooks") || !strcmp(k, "after_request_hooks") ||
                   !strcmp(k, "cb_config")) {
            return fail(b, p, "not supported by aigw (refused rather than ignored)");
        } else {
            return fail(b, p,
                        "unknown field (allowed: strategy, targets, name, weight, provider, virtual_key, "
                        "model, api_key, custom_host, retry, request_timeout, override_params, "
                        "on_status_codes, cache, quality)");
        }
    }
    if (overrides) merge_overrides(b, n, overrides);
    if (targets) {
        if (provider || virtual_key || n->api_key || n->custom_host)
            return fail(b, path, "a node has either targets or a provider, not both");
        if (!build_children(b, child_path(b, path, "targets", -1), targets, n, depth)) return false;
        if (!build_conditions(b, path, conditions, default_name, n)) return false;
        /* Portkey's single strategy uses its first target, however many there are */
        if (n->mode == ROUTE_SINGLE && n->nchildren != 1 && !b->portkey)
            return fail(b, child_path(b, path, "targets", -1), "a single strategy has exactly one target");
        if (n->mode == ROUTE_LOADBALANCE && b->stored) build_sequence(b, n);
        if (n->mode == ROUTE_ROUTER) {
            if (n->nchildren != 2)
                return fail(b, child_path(b, path, "targets", -1),
                            "a router strategy has exactly two targets: the strong one, then the weak one");
            /* the external router is told each target's provider and model, so both are one */
            for (size_t i = 0; n->external && i < 2; i++)
                if (n->children[i].nchildren || !n->children[i].provider)
                    return fail(b, child_path(b, child_path(b, path, "targets", -1), "", (int)i),
                                "a router strategy that asks the external router chooses between targets "
                                "with a provider and a model, not strategies");
            b->router = n;
        }
        if (n->mode == ROUTE_AUTO) {
            if (!check_auto(b, path, n)) return false;
            b->auto_node = n;
        }
        if (n->external) b->external = n;
        return true;
    }
    if (conditions || default_name || (n->mode != ROUTE_SINGLE))
        return fail(b, path, "a %s strategy needs targets",
                    n->mode == ROUTE_FALLBACK ? "fallback" : "non-single");
    if (!provider && !virtual_key)
        return fail(b, path,
                    "a target needs a provider (or virtual_key) naming one of the config's providers");
    if (!resolve_leaf_provider(b, path, n, virtual_key ? virtual_key : provider, virtual_key != NULL))
        return false;
    if (++b->leaves > ROUTE_MAX_LEAVES)
        return fail(b, path, "a route has at most %d targets", ROUTE_MAX_LEAVES);
    if (n->model) {
        /* Known now: the catalog entry is looked up once, not per request. The client's
         * model name differs from it in general, so the model is spliced (is_alias). Its
         * health is found once the whole tree is accepted (attach_health). */
        model_route *r = arena_alloc(b->arena, sizeof *r);
        config_route_fill(b->cfg, r, n->provider, n->model, n->model);
        r->is_alias = true;
        n->route = r;
    }
    return true;
}

/* Shared health for the leaves whose model is known (the others find theirs per request).
 * A leaf with the client's own host or key has none: what happens there is the client's
 * business and must not open a breaker, spend a budget or mark a limit for anyone else
 * (walk.c gives it a health for the request alone). */
static void attach_health(routing_state *state, route_node *n)
{
    for (size_t i = 0; i < n->nchildren; i++)
        attach_health(state, &n->children[i]);
    if (!n->nchildren && n->model && !n->custom_host && !n->api_key)
        n->health = routing_health(state, n->provider->name, n->model);
}

route_tree *route_tree_build(arena *a, const aigw_config *cfg, routing_state *state, const json_t *json,
                             const char *name, bool portkey, bool stored, bool client, char *err,
                             size_t errlen)
{
    builder b = {.arena = a, .cfg = cfg, .state = state, .portkey = portkey, .err = err, .errlen = errlen};
    b.stored = stored;
    b.client = client;
    const routing_providers *providers = routing__providers(state);
    /* read before the build: a change while it runs moves it, and the tree is built again */
    uint64_t vkeys_version =
        client && providers && providers->virtual_keys_version ? providers->virtual_keys_version() : 0;
    route_tree *t = arena_alloc(a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->name = arena_strndup(a, name, strlen(name));
    t->portkey = portkey;
    t->client = client;
    route_node *root = &t->root;
    /* The defaults every node starts from. Portkey retries only when a config asks. */
    root->retry = cfg->routing.retry;
    if (portkey) {
        root->retry.attempts = 0;
        root->retry.use_retry_after = false;
    }
    root->fallback_on_any = true;
    b.portkey_retry = root->retry;
    route_node defaults = *root;
    if (!build_node(&b, "", json, root, &defaults, 0)) return NULL;
    attach_health(state, root);
    snprintf(root->label, sizeof root->label, "%.23s", name);
    t->needs_params = b.needs_params;
    t->needs_metadata = b.needs_metadata;
    t->needs_shape = b.needs_shape;
    t->router = b.router;
    t->auto_node = b.auto_node;
    t->virtual_keys = b.used_virtual_keys;
    t->virtual_keys_version = vkeys_version;
    t->cache = b.cache;
    if (b.nregexes) {
        route_regex *r = arena_alloc(a, b.nregexes * sizeof *r);
        memcpy(r, b.regexes, b.nregexes * sizeof *r);
        t->regexes = r;
        t->nregexes = b.nregexes;
        pcre2_match_context *m = pcre2_match_context_create(route__pcre2_context(a));
        pcre2_set_match_limit(m, ROUTE_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(m, ROUTE_REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(m, ROUTE_REGEX_HEAP_LIMIT_KIB);
        t->match_context = m;
    }
    return t;
}

/* ---- a config header that is not JSON -------------------------------------------------------- */

/* jansson's error text quotes the token where parsing stopped ("invalid token near 'sk-…'"),
 * and a config header carries inline keys: only the position and a reason of our own wording
 * go into the message, which reaches the client and the access log. */
void route_json_error(const json_error_t *e, char *err, size_t errlen)
{
    const char *why;
    switch (json_error_code(e)) {
    case json_error_invalid_utf8: why = "invalid UTF-8"; break;
    case json_error_premature_end_of_input: why = "the text ends too early"; break;
    case json_error_end_of_input_expected: why = "text after the end of the JSON value"; break;
    case json_error_stack_overflow: why = "nested too deeply"; break;
    case json_error_null_character:
    case json_error_null_byte_in_key: why = "a NUL character"; break;
    case json_error_duplicate_key: why = "a duplicate key"; break;
    case json_error_numeric_overflow: why = "a number out of range"; break;
    case json_error_wrong_type: why = "not a JSON object"; break;
    default: why = "invalid syntax"; break;
    }
    snprintf(err, errlen, "not valid JSON at character %d: %s", e->position, why);
}

static void leaf_for_model(route_node *n, const aigw_config *cfg, routing_state *state,
                           const model_route *route, const char *label)
{
    n->retry = cfg->routing.retry;
    n->fallback_on_any = true;
    n->weight = 1000;
    n->default_child = -1;
    n->provider = route->provider;
    n->model = route->upstream_model;
    n->route = route;
    n->health = routing_health(state, route->provider->name, route->upstream_model);
    snprintf(n->label, sizeof n->label, "%.23s", label);
}

route_tree *route_tree_for_model(arena *a, const aigw_config *cfg, routing_state *state,
                                 const model_route *routes, size_t n)
{
    route_tree *t = arena_alloc(a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->name = routes[0].public_name;
    if (n == 1) {
        leaf_for_model(&t->root, cfg, state, &routes[0], t->name);
        return t;
    }
    /* Served by several providers: a fallback over them, in the config's order. */
    route_node *root = &t->root;
    root->mode = ROUTE_FALLBACK;
    root->retry = cfg->routing.retry;
    root->fallback_on_any = true;
    root->weight = 1000;
    root->default_child = -1;
    snprintf(root->label, sizeof root->label, "%.23s", t->name);
    root->children = arena_alloc(a, n * sizeof *root->children);
    memset(root->children, 0, n * sizeof *root->children);
    root->nchildren = n;
    for (size_t i = 0; i < n; i++)
        leaf_for_model(&root->children[i], cfg, state, &routes[i], routes[i].provider->name);
    return t;
}

/* Portkey's model catalog: "@NAME/model" names a provider (the config's first, then the
 * store's virtual keys) and the model to ask it for. NULL when it is not that shape or NAME is
 * neither. */
static route_tree *catalog_model_tree(arena *a, const aigw_config *cfg, routing_state *state,
                                      const char *name, size_t len)
{
    const char *slash = len > 2 && name[0] == '@' ? memchr(name, '/', len) : NULL;
    if (!slash || slash == name + 1 || slash + 1 == name + len || slash - name - 1 > 256) return NULL;
    char slug[258];
    memcpy(slug, name + 1, (size_t)(slash - name - 1));
    slug[slash - name - 1] = '\0';
    const provider_config *p = provider_named(cfg, slug);
    const routing_providers *providers = routing__providers(state);
    const char *type = NULL, *base_url = NULL;
    if (!p && providers && providers->virtual_key && providers->virtual_key(a, slug, &type, &base_url)) {
        const struct provider_preset *preset = providers->preset_find(type);
        provider_config *d =
            preset ? (provider_config *)providers->derive(a, NULL, preset, base_url, NULL) : NULL;
        if (!d) return NULL;
        d->name = arena_strndup(a, slug, strlen(slug));
        d->virtual_key = d->name;
        p = d;
    }
    if (!p) return NULL;
    char *public_name = arena_strndup(a, name, len);
    model_route *route = arena_alloc(a, sizeof *route);
    config_route_fill(cfg, route, p, public_name, public_name + (slash - name) + 1);
    return route_tree_for_model(a, cfg, state, route, 1);
}

route_tree *route_tree_for_typed_model(arena *a, const aigw_config *cfg, routing_state *state,
                                       const char *name, size_t len)
{
    if (len && name[0] == '@') return catalog_model_tree(a, cfg, state, name, len);
    const provider_config *found[ROUTE_MAX_ATTEMPTS];
    size_t model_offset;
    size_t n = config_find_typed(cfg, name, len, found, ROUTE_MAX_ATTEMPTS, &model_offset);
    if (!n) return NULL;
    /* The routes say what the upstream is asked: the part after the slash (is_alias, so the
     * body's model is replaced), with that provider's catalog entry. */
    char *public_name = arena_strndup(a, name, len);
    model_route *routes = arena_alloc(a, n * sizeof *routes);
    for (size_t i = 0; i < n; i++)
        config_route_fill(cfg, &routes[i], found[i], public_name, public_name + model_offset);
    return route_tree_for_model(a, cfg, state, routes, n);
}

route_tree *route_tree_for_router(arena *a, const aigw_config *cfg, routing_state *state, const char *name,
                                  double threshold, double percent, char *err, size_t errlen)
{
    const router_settings *r = &cfg->router;
    if (!r->configured) {
        snprintf(err, errlen, "this gateway has no `router:` section");
        return NULL;
    }
    json_t *strategy = json_pack("{s:s}", "mode", "router");
    if (threshold >= 0)
        json_object_set_new(strategy, "threshold", json_real(threshold));
    else
        json_object_set_new(strategy, "strong_percent", json_real(percent));
    if (r->external) json_object_set_new(strategy, "external", json_true());
    json_t *json = json_pack("{s:o, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "strategy", strategy, "targets",
                             "name", "strong", "provider", r->strong.provider, "model", r->strong.model,
                             "name", "weak", "provider", r->weak.provider, "model", r->weak.model);
    route_tree *t =
        json ? route_tree_build(a, cfg, state, json, name, false, false, false, err, errlen) : NULL;
    if (!json) snprintf(err, errlen, "router targets are not valid strings");
    json_decref(json); /* a router tree has no conditions: nothing of it points into the JSON */
    return t;
}
