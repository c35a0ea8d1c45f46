/* test_auto.c — an auto route's decision (routing/auto.c) with fixed statistics: each hard rule
 * keeps its candidate out and says why; under each objective the expected candidate wins and the
 * others follow in score order; errors and the provider's headroom lower a score by the stated
 * factors and no more; the breaker-open and rate-limited ones come last, after every usable one;
 * the decision's text stays within its bound. Then the same through a config: the route's
 * validation messages, a ranking read from the catalog and the targets' shared health, and the
 * walk following the ranking, falling back in score order. */
#include "../../src/routing/auto.c" /* first: cmocka defines a fail() macro */

#include <jansson.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "config_fixture.h"

/* A candidate the catalog knows, healthy and unmeasured. */
static route_auto_candidate cand(const char *label, double input, double output, uint32_t context,
                                 uint32_t caps, double quality)
{
    return (route_auto_candidate){.label = label,
                                  .quality = quality,
                                  .known = true,
                                  .context = context,
                                  .capabilities = caps,
                                  .priced = true,
                                  .input_price = input,
                                  .output_price = output,
                                  .admits = true,
                                  .headroom = -1,
                                  .tokens_left = -1};
}

static route_node auto_node(route_objective objective)
{
    return (route_node){.mode = ROUTE_AUTO, .objective = objective, .max_cost_usd = -1};
}

static route_auto_request request(uint64_t prompt, uint64_t output, uint32_t needs)
{
    return (route_auto_request){
        .prompt_tokens = prompt, .output_tokens = output, .needs = needs, .budget_left_usd = -1};
}

#define ALL_CAPS (CAP_TOOLS | CAP_VISION | CAP_JSON_SCHEMA | CAP_REASONING)

/* ---- the pure scoring ------------------------------------------------------------------------- */

static void test_cost_objective_picks_the_cheapest_adequate(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    route_auto_candidate c[4] = {
        cand("small", 0.1, 0.4, 1000, ALL_CAPS, 0.5), /* cheapest, but a small window */
        cand("notools", 0.2, 0.8, 100000, 0, 0.5),    /* next cheapest: no tools */
        cand("mid", 1, 4, 100000, ALL_CAPS, 0.7),     /* the cheapest adequate */
        cand("big", 10, 40, 200000, ALL_CAPS, 0.9),
    };
    route_auto_request req = request(5000, 100, CAP_TOOLS);
    uint8_t order[4];
    size_t n = route_auto_score(&node, &req, c, 4, order);
    assert_int_equal(n, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 3);
    assert_int_equal(c[0].verdict, AUTO_CONTEXT);
    assert_int_equal(c[1].verdict, AUTO_TOOLS);
    /* cost = (5000 × 1 + 100 × 4) / 1e6 */
    assert_true(fabs(c[2].cost_usd - 0.0054) < 1e-12);
    assert_true(fabs(c[2].score - 1.0) < 1e-9);
    assert_true(fabs(c[3].score - 0.1) < 1e-6); /* ten times the cost: a tenth of the score */
    assert_true(c[0].score == 0 && c[1].score == 0);
}

static void test_each_hard_rule_keeps_its_candidate_out(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    node.quality_floor = 0.6;
    node.max_cost_usd = 0.01;
    route_auto_candidate c[9] = {
        cand("ok", 1, 1, 100000, ALL_CAPS, 0.8),
        cand("vision", 1, 1, 100000, ALL_CAPS & ~CAP_VISION, 0.8),
        cand("schema", 1, 1, 100000, ALL_CAPS & ~CAP_JSON_SCHEMA, 0.8),
        cand("reasoning", 1, 1, 100000, ALL_CAPS & ~CAP_REASONING, 0.8),
        cand("low", 1, 1, 100000, ALL_CAPS, 0.5),
        cand("dear", 100, 100, 100000, ALL_CAPS, 0.8), /* 0.2 USD: over max_cost */
        cand("budget", 4, 4, 100000, ALL_CAPS, 0.8),   /* 0.008 USD: over the 0.005 left */
        cand("open", 1, 1, 100000, ALL_CAPS, 0.8),
        cand("limited", 1, 1, 100000, ALL_CAPS, 0.8),
    };
    c[7].admits = false;
    c[8].limited = true;
    route_auto_request req = request(1000, 1000, CAP_VISION | CAP_JSON_SCHEMA | CAP_REASONING);
    req.budget_left_usd = 0.005;
    uint8_t order[9];
    size_t n = route_auto_score(&node, &req, c, 9, order);
    static const route_auto_verdict want[9] = {AUTO_USABLE,    AUTO_VISION,  AUTO_JSON_SCHEMA,
                                               AUTO_REASONING, AUTO_QUALITY, AUTO_MAX_COST,
                                               AUTO_BUDGET,    AUTO_BREAKER, AUTO_RATE_LIMITED};
    for (int i = 0; i < 9; i++)
        assert_int_equal(c[i].verdict, want[i]);
    /* the usable one, then the two the moment keeps out, in the config's order at equal score */
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 7);
    assert_int_equal(order[2], 8);
    /* an unknown model (no catalog entry) is not judged on what the catalog would say */
    route_auto_candidate u = cand("unknown", 1, 1, 10, 0, 0.8);
    u.known = false;
    assert_int_equal(route_auto_score(&node, &req, &u, 1, order), 1);
    assert_int_equal(u.verdict, AUTO_USABLE);
}

static void test_the_provider_s_tokens_left_below_the_prompt_is_rate_limited(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    route_auto_candidate c[2] = {cand("a", 1, 1, 100000, ALL_CAPS, 0.5),
                                 cand("b", 2, 2, 100000, ALL_CAPS, 0.5)};
    c[0].tokens_left = 999;
    route_auto_request req = request(1000, 10, 0);
    uint8_t order[2];
    assert_int_equal(route_auto_score(&node, &req, c, 2, order), 2);
    assert_int_equal(c[0].verdict, AUTO_RATE_LIMITED);
    assert_int_equal(order[0], 1); /* the usable one first, the limited one as a last resort */
    assert_int_equal(order[1], 0);
    c[0].tokens_left = 1000;
    route_auto_score(&node, &req, c, 2, order);
    assert_int_equal(c[0].verdict, AUTO_USABLE);
    assert_int_equal(order[0], 0);
}

static void test_counted_tokens_decide_the_context_window(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    route_auto_candidate c = cand("small", 1, 1, 1000, ALL_CAPS, 0.5);
    route_auto_request req = request(4000, 10, 0); /* bytes / 4: too large … */
    uint8_t order[1];
    route_auto_score(&node, &req, &c, 1, order);
    assert_int_equal(c.verdict, AUTO_CONTEXT);
    req.counted_tokens = 900; /* … but the text itself fits */
    assert_int_equal(route_auto_score(&node, &req, &c, 1, order), 1);
    assert_int_equal(c.verdict, AUTO_USABLE);
}

static void test_latency_objective_tries_the_unmeasured_then_takes_the_faster(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_LATENCY);
    route_auto_candidate c[3] = {cand("slow", 1, 1, 100000, ALL_CAPS, 0.5),
                                 cand("fast", 5, 5, 100000, ALL_CAPS, 0.5),
                                 cand("new", 9, 9, 100000, ALL_CAPS, 0.5)};
    c[0].ttfb_ms = 300;
    c[1].ttfb_ms = 20;
    route_auto_request req = request(100, 100, 0);
    uint8_t order[3];
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[0], 2); /* never measured: counts 0, so it is tried */
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 0);
    c[2].ttfb_ms = 100;
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_true(fabs(c[1].score - 1.0) < 1e-9);
    assert_true(fabs(c[0].score - 21.0 / 301.0) < 1e-9);
    /* the output at the measured rate counts too: fast to start, slow to write loses */
    c[1].tokens_per_s = 10; /* 100 tokens: 10 s */
    c[2].tokens_per_s = 1000;
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[0], 2);
    assert_true(fabs(c[1].latency_ms - 10020) < 1e-6);
    /* an unmeasured rate is the best measured one: measuring cannot make a target look slower */
    assert_true(fabs(c[0].latency_ms - 400) < 1e-6); /* 300 ms + 100 tokens at 1,000/s */
    c[1].tokens_per_s = 0;
    c[2].tokens_per_s = 50;
    route_auto_score(&node, &req, c, 3, order);
    assert_true(fabs(c[1].latency_ms - 2020) < 1e-6);
    assert_int_equal(order[0], 1);
}

static void test_quality_objective_and_its_tie_break(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_QUALITY);
    route_auto_candidate c[3] = {cand("a", 5, 5, 100000, ALL_CAPS, 0.9),
                                 cand("b", 1, 1, 100000, ALL_CAPS, 0.9),
                                 cand("c", 0.1, 0.1, 100000, ALL_CAPS, 0.6)};
    route_auto_request req = request(100, 100, 0);
    uint8_t order[3];
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[0], 1); /* equal quality: the cheaper */
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 2);
    /* under cost, equal cost goes to the better one */
    node.objective = OBJECTIVE_COST;
    c[0].input_price = c[0].output_price = 1;
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[0], 2);
    assert_true(fabs(c[0].score - c[1].score) < 1e-12);
    c[1].quality = 0.95;
    route_auto_score(&node, &req, c, 3, order);
    assert_int_equal(order[1], 1);
}

static void test_balanced_is_the_mean_of_the_three(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_BALANCED);
    route_auto_candidate c[2] = {cand("cheap", 1, 1, 100000, ALL_CAPS, 0.5),
                                 cand("good", 2, 2, 100000, ALL_CAPS, 1.0)};
    c[0].ttfb_ms = 99;
    c[1].ttfb_ms = 199;
    route_auto_request req = request(100, 100, 0);
    uint8_t order[2];
    route_auto_score(&node, &req, c, 2, order);
    /* cheap: quality 0.5, cost 1, latency 1; good: quality 1, cost 0.5, latency 100/200 */
    assert_true(fabs(c[0].score - (0.5 + 1 + 1) / 3) < 1e-9);
    assert_true(fabs(c[1].score - (1 + 0.5 + 0.5) / 3) < 1e-6);
    assert_int_equal(order[0], 0);
}

static void test_errors_and_headroom_lower_a_score_by_their_factors(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    route_auto_candidate c[2] = {cand("cheap", 1, 1, 100000, ALL_CAPS, 0.5),
                                 cand("double", 2, 2, 100000, ALL_CAPS, 0.5)};
    route_auto_request req = request(100, 100, 0);
    uint8_t order[2];
    /* one failure of one: 1 − 1/5 = 0.8, still above the other's 0.5 */
    c[0].requests = 1;
    c[0].failures = 1;
    route_auto_score(&node, &req, c, 2, order);
    assert_true(fabs(c[0].score - 0.8) < 1e-9);
    assert_int_equal(order[0], 0);
    /* five of five: 1 − 5/9 < 0.5 */
    c[0].requests = c[0].failures = 5;
    route_auto_score(&node, &req, c, 2, order);
    assert_true(fabs(c[0].score - 4.0 / 9.0) < 1e-9);
    assert_int_equal(order[0], 1);
    /* headroom: none at 10 % and above, ½ + 5 × share below */
    c[0].requests = c[0].failures = 0;
    c[0].headroom = 0.2;
    route_auto_score(&node, &req, c, 2, order);
    assert_true(fabs(c[0].score - 1.0) < 1e-9);
    c[0].headroom = 0.02;
    route_auto_score(&node, &req, c, 2, order);
    assert_true(fabs(c[0].score - 0.6) < 1e-9);
    assert_int_equal(order[0], 0);
    c[0].headroom = 0;
    c[1].input_price = c[1].output_price = 1.5; /* two thirds of the score */
    route_auto_score(&node, &req, c, 2, order);
    assert_int_equal(order[0], 1);
}

static void test_the_decision_s_text_is_bounded(void **state)
{
    (void)state;
    route_node node = auto_node(OBJECTIVE_COST);
    route_auto_candidate c[64];
    char labels[64][80];
    for (int i = 0; i < 64; i++) {
        snprintf(labels[i], sizeof labels[i], "provider-%02d/a-rather-long-model-name-%02d", i, i);
        c[i] = cand(labels[i], 1 + i, 1 + i, 100000, ALL_CAPS, 0.5);
    }
    c[3].verdict = AUTO_USABLE;
    c[3].context = 10; /* too small: excluded, listed after the ordered ones */
    route_auto_request req = request(1000, 100, 0);
    uint8_t order[64];
    size_t n = route_auto_score(&node, &req, c, 64, order);
    assert_int_equal(n, 63);
    char text[ROUTE_AUTO_REASON_MAX];
    size_t len = route_auto_describe(&node, &req, c, 64, order, n, text, sizeof text);
    assert_int_equal(len, strlen(text));
    assert_true(len < sizeof text);
    assert_non_null(strstr(text, "auto objective=cost"));
    assert_non_null(strstr(text, "choice=provider-00/a-rather-long-model-name-00 "));
    assert_non_null(strstr(text, "candidates=provider-00/a-rather-long-model-name-00:score=1.0000,cost="));
    assert_non_null(strstr(text, "more)"));
    /* a small one: every candidate, the excluded with why */
    n = route_auto_score(&node, &req, c, 4, order);
    len = route_auto_describe(&node, &req, c, 4, order, n, text, sizeof text);
    assert_non_null(strstr(text, "provider-03/a-rather-long-model-name-03:excluded=context window"));
    assert_null(strstr(text, "more)"));
    /* a tiny buffer stays a string */
    assert_int_equal(route_auto_describe(&node, &req, c, 4, order, n, text, 10), 0);
    assert_string_equal(text, "");
}

/* ---- through a config: validation, the catalog, shared health, the walk ---------------------------- */

#define PROVIDERS                                                                                            \
    "providers:\n"                                                                                           \
    "  - {name: a, type: openai, base_url: 'http://127.0.0.1:1/v1'}\n"                                       \
    "  - {name: b, type: openai, base_url: 'http://127.0.0.1:2/v1'}\n"                                       \
    "routing:\n"                                                                                             \
    "  retry: {attempts: 0}\n"                                                                               \
    "  breaker: {failures: 1, cooldown: 10s}\n"

static aigw_config *config_with_route(const char *route, char *err, size_t errlen)
{
    char text[4096];
    snprintf(text, sizeof text, PROVIDERS "routes:\n%s", route);
    char dir[] = "/tmp/aigw-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/aigw.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    aigw_config *cfg = gateway_config_load(path, err, errlen);
    unlink(path);
    rmdir(dir);
    return cfg;
}

static void expect_refused(const char *route, const char *message)
{
    char err[1024] = "";
    aigw_config *cfg = config_with_route(route, err, sizeof err);
    if (cfg) fail_msg("accepted: %s", route);
    if (!strstr(err, message)) fail_msg("message '%s' lacks '%s'", err, message);
}

static void test_validation_names_the_field(void **state)
{
    (void)state;
    expect_refused("  - name: auto\n    strategy: {mode: auto, objective: cheapest}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini}]\n",
                   "route 'auto': strategy.objective: must be cost, latency, quality or balanced");
    expect_refused("  - name: auto\n    strategy: {mode: auto, quality_floor: 1.5}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini, quality: 0.5}]\n",
                   "strategy.quality_floor: must be a number from 0 to 1");
    expect_refused("  - name: auto\n    strategy: {mode: auto}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini, quality: -0.1}]\n",
                   "targets[0].quality: must be a number from 0 to 1");
    expect_refused("  - name: auto\n    strategy: {mode: auto}\n"
                   "    targets: [{provider: nobody, model: gpt-4o-mini}]\n",
                   "targets[0].provider: names no provider of the gateway's config (known: a, b)");
    expect_refused(
        "  - name: auto\n    strategy: {mode: auto, objective: quality}\n"
        "    targets: [{provider: a, model: gpt-4o-mini, quality: 0.5}, {provider: b, model: gpt-4o}]\n",
        "targets[1].quality: is required by objective quality");
    expect_refused(
        "  - name: auto\n    strategy: {mode: auto}\n"
        "    targets: [{provider: a, model: gpt-4o-mini}, {provider: b, model: no-such-model}]\n",
        "targets[1]: objective cost needs the candidate's price, and the model catalog has none for "
        "openai/no-such-model");
    expect_refused("  - name: auto\n    strategy: {mode: auto, objective: latency, max_cost: 0.01}\n"
                   "    targets: [{provider: a, model: no-such-model}]\n",
                   "targets[0]: max_cost needs the candidate's price");
    expect_refused("  - name: auto\n    strategy: {mode: auto}\n    targets: [{provider: a}]\n",
                   "targets[0]: an auto candidate names its model");
    expect_refused("  - name: auto\n    strategy: {mode: fallback}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini, quality: 0.5}]\n",
                   "targets[0].quality: belongs to a candidate of an auto strategy");
    expect_refused("  - name: auto\n    strategy: {mode: fallback, objective: cost}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini}]\n",
                   "objective, quality_floor, max_cost and output_tokens belong to an auto strategy");
    expect_refused("  - name: auto\n    strategy: {mode: auto, external: true}\n"
                   "    targets: [{provider: a, model: gpt-4o-mini}]\n",
                   "strategy.external: the config has no external_router section to ask");
    expect_refused("  - name: auto\n    strategy: {mode: fallback}\n    targets:\n"
                   "      - strategy: {mode: auto}\n        targets: [{provider: a, model: gpt-4o-mini}]\n"
                   "      - strategy: {mode: auto}\n        targets: [{provider: a, model: gpt-4o}]\n",
                   "a route has at most one auto strategy");
    expect_refused(
        "  - name: auto\n    strategy: {mode: auto}\n    targets:\n"
        "      - strategy: {mode: fallback}\n        targets: [{provider: a, model: gpt-4o-mini}]\n",
        "targets[0]: an auto strategy's candidates are targets");
}

static void test_a_header_config_may_not_ask_the_external_router(void **state)
{
    (void)state;
    char err[1024];
    aigw_config *cfg = config_from_text(PROVIDERS "external_router: {url: 'http://127.0.0.1:9/select'}\n");
    json_t *j = json_loads("{\"strategy\":{\"mode\":\"auto\",\"external\":true},"
                           "\"targets\":[{\"provider\":\"a\",\"model\":\"gpt-4o-mini\"}]}",
                           0, NULL);
    arena a;
    arena_init(&a, 4096);
    assert_null(route_tree_build(&a, cfg, cfg->health, j, "h", false, false, true, err, sizeof err));
    assert_non_null(
        strstr(err, "strategy.external: only the config file's routes may ask the external router"));
    /* the operator's may */
    assert_non_null(route_tree_build(&a, cfg, cfg->health, j, "h", false, true, false, err, sizeof err));
    json_decref(j);
    arena_free(&a);
    config_free(cfg);
}

static const char *const three = "  - name: auto\n    strategy: {mode: auto, objective: cost}\n    targets:\n"
                                 "      - {provider: a, model: gpt-4o}\n"
                                 "      - {name: mini, provider: a, model: gpt-4o-mini}\n"
                                 "      - {provider: b, model: o4-mini}\n";

static size_t estimate_none(void *ud)
{
    (void)ud;
    return 0;
}

static void test_rank_reads_the_catalog_and_shared_health_and_the_walk_follows(void **state)
{
    (void)state;
    char err[1024];
    aigw_config *cfg = config_with_route(three, err, sizeof err);
    if (!cfg) fail_msg("%s", err);
    const route_tree *t = config_find_route(cfg, "auto", 4);
    assert_non_null(t);
    assert_non_null(t->auto_node);
    arena a;
    arena_init(&a, 16384);
    uint64_t seed = 1;
    route_context ctx = {.arena = &a,
                         .state = cfg->health,
                         .config = cfg,
                         .model = "auto",
                         .rng = &seed,
                         .estimate_tokens = estimate_none};
    route_auto_request req = request(1000, 100, 0);
    route_auto_candidate c[ROUTE_MAX_CHILDREN];
    uint8_t order[ROUTE_MAX_CHILDREN];
    size_t n = route_auto_rank(&ctx, t, &req, c, order);
    /* the catalog's prices: gpt-4o-mini 0.15/0.60, o4-mini 1.10/4.40, gpt-4o 2.50/10 */
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 0);
    assert_string_equal(c[1].label, "mini");
    assert_string_equal(c[0].label, "a/gpt-4o");
    /* reasoning: only o4-mini has it */
    req = request(1000, 100, CAP_REASONING);
    n = route_auto_rank(&ctx, t, &req, c, order);
    assert_int_equal(n, 1);
    assert_int_equal(order[0], 2);
    /* the cheapest's breaker opens (one failure, in this config): it comes last */
    target_health *h = t->auto_node->children[1].health;
    bool probe;
    assert_true(health_begin(h, time_now_ns() / 1000000, false, &probe));
    health_end(h, time_now_ns() / 1000000, true, probe, -1);
    req = request(1000, 100, 0);
    n = route_auto_rank(&ctx, t, &req, c, order);
    assert_int_equal(c[1].verdict, AUTO_BREAKER);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 1);
    /* the walk: the ranking's first, then its next on a failure */
    ctx.auto_order = order;
    ctx.auto_n = n;
    route_walk *w = route_walk_new(&ctx, t);
    route_target tg;
    assert_true(route_next(w, &tg));
    assert_string_equal(tg.leaf->model, "o4-mini");
    assert_true(route_begin(w, &tg));
    route_report(w, &(attempt_report){.result = ATTEMPT_STATUS, .status = 503, .retry_after_ms = -1});
    assert_true(route_next(w, &tg));
    assert_string_equal(tg.leaf->model, "gpt-4o");
    assert_true(route_begin(w, &tg));
    route_report(w, &(attempt_report){.result = ATTEMPT_STATUS, .status = 503, .retry_after_ms = -1});
    /* gpt-4o-mini's breaker is open: skipped, and the walk is over */
    assert_false(route_next(w, &tg));
    assert_string_equal(route_paths(w), "auto/2, auto/0");
    /* a provider reporting fewer tokens left than the prompt: rate-limited until its reset */
    routing_state_reset_breakers(cfg->health, NULL, NULL);
    target_health *o4 = t->auto_node->children[2].health;
    health_note_remaining(o4, 0.5, 10, time_now_ns() / 1000000 + 60000);
    n = route_auto_rank(&ctx, t, &req, c, order);
    assert_int_equal(c[2].verdict, AUTO_RATE_LIMITED);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 2); /* the walk's last resort */
    arena_free(&a);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_objective_picks_the_cheapest_adequate),
        cmocka_unit_test(test_each_hard_rule_keeps_its_candidate_out),
        cmocka_unit_test(test_the_provider_s_tokens_left_below_the_prompt_is_rate_limited),
        cmocka_unit_test(test_counted_tokens_decide_the_context_window),
        cmocka_unit_test(test_latency_objective_tries_the_unmeasured_then_takes_the_faster),
        cmocka_unit_test(test_quality_objective_and_its_tie_break),
        cmocka_unit_test(test_balanced_is_the_mean_of_the_three),
        cmocka_unit_test(test_errors_and_headroom_lower_a_score_by_their_factors),
        cmocka_unit_test(test_the_decision_s_text_is_bounded),
        cmocka_unit_test(test_validation_names_the_field),
        cmocka_unit_test(test_a_header_config_may_not_ask_the_external_router),
        cmocka_unit_test(test_rank_reads_the_catalog_and_shared_health_and_the_walk_follows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
