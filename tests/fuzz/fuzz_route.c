/* fuzz_route.c — libFuzzer target for what the routing module reads from outside: route configs
 * in the x-aigw-config / x-portkey-config headers (any client may send one), the metadata
 * header the conditions read, and the rate-limit and retry headers of provider responses.
 *
 * Input: byte 0 picks the schema (aigw or Portkey) and the outcomes the walk is fed; the rest
 * is "config JSON \0 metadata JSON \0 response header lines". A config the builder accepts is
 * walked to its end: each target route_next gives must be a leaf with a provider, retries and
 * fallbacks must end within the tree's bound, and every header line is parsed as a provider
 * response head. An auto route is ranked first (byte 0 also picks the request's needs and
 * budget): every candidate in its order once, the usable ones first by falling score, its text
 * within every bound it is given. The gateway's config (three providers, one allowed host) is
 * loaded once. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "gateway/gateway.h"
#include "pipeline/pipeline.h"
#include "routing/routing.h"

/* The fuzzed configs run without a store: no virtual key exists (the gateway asks the
 * pipeline's auth for them; that is not linked here). */
bool pipeline_virtual_key(arena *a, const char *name, const char **type, const char **base_url)
{
    return false;
}

uint64_t pipeline_virtual_keys_version(void)
{
    return 0;
}

static aigw_config *cfg;

static void load_config(void)
{
    char path[] = "/tmp/fuzz-route-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    static const char text[] =
        "providers:\n"
        "  - {name: a, base_url: 'http://127.0.0.1:1/v1', models: [m1, m2, gpt-4o-mini, gpt-4o]}\n"
        "  - {name: b, type: anthropic, base_url: 'http://127.0.0.1:2', models: [m1]}\n"
        "  - {name: c, type: gemini, base_url: 'http://10.0.0.1:3', models: [g]}\n"
        "routing:\n"
        "  allowed_hosts: ['http://127.0.0.1:1', 'http://127.0.0.1:2']\n"
        "  breaker: {failures: 2, cooldown: 1ms}\n";
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) abort();
    close(fd);
    char err[512];
    cfg = gateway_config_load(path, err, sizeof err);
    unlink(path);
    if (!cfg) {
        fprintf(stderr, "fuzz_route: %s\n", err);
        abort();
    }
}

/* The next NUL-separated part of the input. */
static const char *part(const char **p, const char *end, size_t *len)
{
    const char *start = *p;
    const char *nul = memchr(start, '\0', (size_t)(end - start));
    const char *stop = nul ? nul : end;
    *len = (size_t)(stop - start);
    *p = nul ? nul + 1 : end;
    return start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) load_config();
    if (size < 2) return 0;
    uint8_t sel = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    size_t config_len, meta_len, heads_len;
    const char *config = part(&p, end, &config_len);
    const char *meta = part(&p, end, &meta_len);
    const char *heads = part(&p, end, &heads_len);

    json_t *json = json_loadb(config, config_len, 0, NULL);
    json_t *metadata = json_loadb(meta, meta_len, 0, NULL);
    if (!json) {
        json_decref(metadata);
        return 0;
    }
    arena a;
    arena_init(&a, 4096);
    char err[512];
    route_tree *tree = route_tree_build(&a, cfg, cfg->health, json, "x-aigw-config", sel & 1, sel & 2,
                                        sel & 4, err, sizeof err);
    if (!tree && !err[0]) abort(); /* a refusal always says why */
    if (tree) {
        /* response header lines, one per line, at most 32 */
        const char *lines[32];
        char *copy = arena_strndup(&a, heads, heads_len);
        size_t nlines = 0;
        for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l && nlines < 32;
             l = strtok_r(NULL, "\n", &save))
            lines[nlines++] = l;

        uint64_t rng = sel;
        route_context ctx = {.arena = &a,
                             .state = cfg->health,
                             .config = cfg,
                             .model = "m1",
                             .metadata = json_is_object(metadata) ? metadata : NULL,
                             .params = json,
                             .rng = &rng,
                             .prompt_bytes = size};
        if (tree->auto_node) { /* an auto route: ranked as PLAN ranks it, its text bounded */
            route_auto_request req = {.prompt_tokens = size,
                                      .output_tokens = 1 + (sel >> 3),
                                      .needs = (uint32_t)(sel >> 4) & 15,
                                      .budget_left_usd = sel & 8 ? 0.001 * (double)size : -1};
            route_auto_candidate *c = arena_alloc(&a, ROUTE_MAX_CHILDREN * sizeof *c);
            uint8_t *order = arena_alloc(&a, ROUTE_MAX_CHILDREN);
            size_t n = route_auto_rank(&ctx, tree, &req, c, order), nc = tree->auto_node->nchildren;
            bool seen[ROUTE_MAX_CHILDREN] = {false};
            for (size_t k = 0; k < n; k++) {
                if (order[k] >= nc || seen[order[k]]) abort(); /* each candidate once */
                seen[order[k]] = true;
                route_auto_verdict v = c[order[k]].verdict;
                if (v != AUTO_USABLE && v != AUTO_BREAKER && v != AUTO_RATE_LIMITED) abort();
                if (k && v == AUTO_USABLE && c[order[k - 1]].verdict != AUTO_USABLE) abort();
                if (k && v == AUTO_USABLE && c[order[k]].score > c[order[k - 1]].score + 1e-9) abort();
            }
            char text[ROUTE_AUTO_REASON_MAX];
            for (size_t cap = 1; cap <= sizeof text; cap = cap * 2 + 1) {
                size_t len = route_auto_describe(tree->auto_node, &req, c, nc, order, n, text, cap);
                if (len >= cap || text[len] != '\0' || strlen(text) != len) abort();
            }
            ctx.auto_order = order;
            ctx.auto_n = n;
        }
        route_walk *w = route_walk_new(&ctx, tree);
        route_target t;
        unsigned steps = 0;
        /* bound: every leaf (≤ 64^8 in theory, far fewer here) × (1 + retries ≤ 10); a walk that
         * does not end within 4,096 steps is a bug */
        while (route_next(w, &t)) {
            if (++steps > 4096) abort();
            if (!t.leaf || t.leaf->nchildren || !t.leaf->provider || !t.path) abort();
            if (!route_begin(w, &t)) continue;
            int64_t hint = route_note_headers(w, false, 429, lines, nlines);
            uint8_t o = data[steps % size];
            attempt_report r = {.result = (attempt_result)(o % 5),
                                .status = (int[]){200, 429, 500, 503, 400, 529, 408, 302}[(o >> 3) & 7],
                                .ttfb_us = o * 100u,
                                .retry_after_ms = hint};
            route_report(w, &r);
            if (r.result == ATTEMPT_OK) break;
        }
        if (route_attempts(w) > steps) abort();
        (void)route_paths(w);
        int status;
        uint32_t in;
        (void)route_unavailable(w, &status, &in);
    }
    arena_free(&a);
    json_decref(json);
    json_decref(metadata);
    return 0;
}
