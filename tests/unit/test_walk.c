/* test_walk.c — one request's way through its route tree (walk.c), driven as the pipeline
 * drives it: route_next gives a target, route_begin / route_report tell how the attempt went.
 * Checked: fallback moves to the next child only on its statuses; retries come back to the
 * same target with a full-jitter backoff or the provider's own wait, and stop at max_wait and
 * at the retry budget; an open breaker skips its target (or makes the walk unavailable with
 * a 503 and the time until it half-opens) and lets a probe through after the cooldown;
 * conditions over metadata.* and params.* pick the child their operators say; weighted,
 * least-busy and latency balancing choose as they claim; the providers' rate-limit and
 * retry headers are read and steer the walk away from a target that has nothing left; a
 * Portkey config's request_timeout is its 408, its single strategy takes the first target and
 * its conditions read url.pathname.
 * Randomness is seeded and time is real but short (a 100 ms cooldown), so every run is the
 * same. */
#include "../../src/routing/walk.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "config_fixture.h"

static char err[1024];

typedef struct fixture {
    aigw_config *cfg;
    arena arena;
    json_t *json[64]; /* trees' JSON and metadata, kept alive as a request keeps them */
    size_t njson;
    uint64_t seed;
} fixture;

/* Three providers; retries off unless a tree asks; a budget that never runs out; no breaker
 * (the breaker tests use one that opens after 3 failures for 100 ms). */
#define PROVIDERS                                                                                            \
    "providers:\n"                                                                                           \
    "  - {name: a, base_url: 'http://127.0.0.1:1/v1', models: [ma]}\n"                                       \
    "  - {name: b, base_url: 'http://127.0.0.1:2/v1', models: [mb]}\n"                                       \
    "  - {name: c, base_url: 'http://127.0.0.1:3/v1', models: [mc]}\n"

static const char *const base_yaml = PROVIDERS "routing:\n"
                                               "  retry: {attempts: 0}\n"
                                               "  retry_budget: {percent: 1000, min_retries: 1000000}\n"
                                               "  breaker: {failures: 0, failure_rate: 0}\n";

static const char *const breaker_yaml = PROVIDERS "routing:\n"
                                                  "  retry: {attempts: 0}\n"
                                                  "  breaker: {failures: 3, cooldown: 100ms}\n";

static fixture *fixture_new(const char *yaml)
{
    fixture *f = calloc(1, sizeof *f);
    f->cfg = config_from_text(yaml);
    arena_init(&f->arena, 16384);
    f->seed = 42;
    return f;
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->njson; i++)
        json_decref(f->json[i]);
    arena_free(&f->arena);
    config_free(f->cfg);
    free(f);
}

static json_t *keep(fixture *f, const char *text)
{
    if (!text) return NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) fail_msg("bad JSON in the test: %s: %s", jerr.text, text);
    assert_true(f->njson < sizeof f->json / sizeof f->json[0]);
    f->json[f->njson++] = j;
    return j;
}

/* A tree as a header would bring it (aigw's schema), built in the fixture's arena. */
static const route_tree *tree(fixture *f, const char *text)
{
    err[0] = '\0';
    const route_tree *t = route_tree_build(&f->arena, f->cfg, f->cfg->health, keep(f, text), "t", false,
                                           false, true, err, sizeof err);
    if (!t) fail_msg("refused: %s\n(tree: %s)", err, text);
    return t;
}

/* The same, as the config file's routes: are built (the operator's, not a client's). */
static const route_tree *operator_tree(fixture *f, const char *text)
{
    err[0] = '\0';
    const route_tree *t = route_tree_build(&f->cfg->arena, f->cfg, f->cfg->health, keep(f, text), "t", false,
                                           true, false, err, sizeof err);
    if (!t) fail_msg("refused: %s\n(tree: %s)", err, text);
    return t;
}

/* A tree as x-portkey-config brings it. */
static const route_tree *portkey_tree(fixture *f, const char *text)
{
    err[0] = '\0';
    const route_tree *t = route_tree_build(&f->arena, f->cfg, f->cfg->health, keep(f, text), "t", true, false,
                                           true, err, sizeof err);
    if (!t) fail_msg("refused: %s\n(tree: %s)", err, text);
    return t;
}

static route_walk *walk_md(fixture *f, const route_tree *t, const char *metadata, const char *params)
{
    route_context ctx = {
        .arena = &f->arena,
        .state = f->cfg->health,
        .config = f->cfg,
        .model = "m",
        .metadata = keep(f, metadata),
        .params = keep(f, params),
        .rng = &f->seed,
    };
    return route_walk_new(&ctx, t);
}

static route_walk *walk_path(fixture *f, const route_tree *t, const char *path)
{
    route_context ctx = {.arena = &f->arena,
                         .state = f->cfg->health,
                         .config = f->cfg,
                         .model = "m",
                         .path = path,
                         .rng = &f->seed};
    return route_walk_new(&ctx, t);
}

static route_walk *walk(fixture *f, const route_tree *t)
{
    return walk_md(f, t, NULL, NULL);
}

/* The provider of the next target, or NULL when the walk is over. */
static const char *next(route_walk *w, route_target *t)
{
    memset(t, 0, sizeof *t);
    return route_next(w, t) ? t->leaf->provider->name : NULL;
}

/* Sends to t: begins it and reports result/status, with a wait hint (-1: none). */
static void attempt_hint(route_walk *w, const route_target *t, attempt_result result, int status,
                         int64_t retry_after_ms)
{
    assert_true(route_begin(w, t));
    attempt_report r = {.result = result, .status = status, .ttfb_us = 0, .retry_after_ms = retry_after_ms};
    route_report(w, &r);
}

static void attempt(route_walk *w, const route_target *t, attempt_result result, int status)
{
    attempt_hint(w, t, result, status, -1);
}

static target_health *health_of(fixture *f, const char *provider)
{
    return routing_health(f->cfg->health, provider, "m");
}

static const char *const fallback_abc = "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":["
                                        "{\"provider\":\"a\"},{\"provider\":\"b\"},{\"provider\":\"c\"}]}";

/* ---- fallback ------------------------------------------------------------------------------ */

static void test_fallback_moves_to_the_next_target_on_failure(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(f, fallback_abc);
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    assert_false(tg.retry);
    assert_string_equal(tg.path, "t/0");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    assert_string_equal(next(w, &tg), "b");
    assert_false(tg.retry);
    assert_int_equal(tg.wait_ms, 0);
    attempt(w, &tg, ATTEMPT_TIMEOUT, 0);
    assert_string_equal(next(w, &tg), "c");
    attempt(w, &tg, ATTEMPT_STATUS, 400); /* any non-2xx by default */
    assert_null(next(w, &tg));
    assert_int_equal(route_attempts(w), 3);
    assert_string_equal(route_paths(w), "t/0, t/1, t/2");
    const route_attempt_log *l = route_log(w);
    assert_string_equal(l->provider, "a");
    assert_int_equal(l->status, 500);
    assert_int_equal(l->next->result, ATTEMPT_TIMEOUT);
    assert_int_equal(l->next->next->status, 400);
    assert_null(l->next->next->next);

    /* a success is final */
    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_OK, 200);
    assert_null(next(w, &tg));
    assert_int_equal(route_attempts(w), 1);
    fixture_free(f);
}

static void test_fallback_only_on_its_status_codes(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t =
        tree(f, "{\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[429]},\"targets\":["
                "{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    assert_null(next(w, &tg)); /* the 500 is the answer */
    assert_int_equal(route_attempts(w), 1);

    /* a connection error always moves on */
    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_CONNECT, 0);
    assert_string_equal(next(w, &tg), "b");

    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_STATUS, 429);
    assert_string_equal(next(w, &tg), "b");
    fixture_free(f);
}

/* A failure inside a nested fallback moves on inside it first, then in the outer one. */
static void test_nested_fallback_climbs_to_the_outer_node(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t =
        tree(f, "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":["
                "{\"name\":\"in\",\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[503]},"
                " \"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]},"
                "{\"provider\":\"c\"}]}");
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    assert_string_equal(tg.path, "t/in/0");
    attempt(w, &tg, ATTEMPT_STATUS, 503);
    assert_string_equal(next(w, &tg), "b");
    assert_string_equal(tg.path, "t/in/1");
    attempt(w, &tg, ATTEMPT_STATUS, 503);
    assert_string_equal(next(w, &tg), "c");
    assert_string_equal(tg.path, "t/1");

    /* a 500 is not for the inner node: it goes straight to the outer one's next */
    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    assert_string_equal(next(w, &tg), "c");
    fixture_free(f);
}

/* ---- retries ------------------------------------------------------------------------------- */

static void test_retries_come_back_with_full_jitter_backoff(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(
        f, "{\"strategy\":{\"mode\":\"fallback\"},\"retry\":{\"attempts\":2,\"on_status_codes\":[503],"
           "\"base_delay\":100,\"max_delay\":150},\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    uint32_t max_first = 0, max_second = 0, min_first = UINT32_MAX, min_second = UINT32_MAX;
    double sum_first = 0, sum_second = 0;
    for (int i = 0; i < 200; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_STATUS, 503);
        assert_string_equal(next(w, &tg), "a");
        assert_true(tg.retry);
        assert_true(tg.wait_ms <= 100); /* base_delay · 2^0 */
        if (tg.wait_ms > max_first) max_first = tg.wait_ms;
        if (tg.wait_ms < min_first) min_first = tg.wait_ms;
        sum_first += tg.wait_ms;
        attempt(w, &tg, ATTEMPT_STATUS, 503);
        assert_string_equal(next(w, &tg), "a");
        assert_true(tg.retry);
        assert_true(tg.wait_ms <= 150); /* base_delay · 2^1, capped by max_delay */
        if (tg.wait_ms > max_second) max_second = tg.wait_ms;
        if (tg.wait_ms < min_second) min_second = tg.wait_ms;
        sum_second += tg.wait_ms;
        attempt(w, &tg, ATTEMPT_STATUS, 503);
        assert_string_equal(next(w, &tg), "b"); /* attempts spent: the fallback */
        assert_false(tg.retry);
        attempt(w, &tg, ATTEMPT_OK, 200);
        assert_null(next(w, &tg));
        assert_int_equal(route_attempts(w), 4);
        assert_string_equal(route_paths(w), "t/0, t/1"); /* a retry is not a new path */
    }
    /* the jitter spreads over the whole range: uniform in [0, cap], so both ends are reached
     * and the mean is near cap / 2 (a wait of cap every time, or none, fails here) */
    assert_true(max_first > 80);
    assert_true(max_second > 120);
    assert_true(min_first < 20);
    assert_true(min_second < 30);
    assert_true(sum_first / 200 > 40 && sum_first / 200 < 60);   /* 50 ± 10 (σ of the mean ≈ 2) */
    assert_true(sum_second / 200 > 60 && sum_second / 200 < 90); /* 75 ± 15 */

    /* a status not in retry.on_status_codes is not retried */
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    assert_string_equal(next(w, &tg), "b");
    assert_false(tg.retry);
    /* a transport failure is */
    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_BROKEN, 0);
    assert_string_equal(next(w, &tg), "a");
    assert_true(tg.retry);
    fixture_free(f);
}

static void test_retry_waits_what_the_provider_asks_up_to_max_wait(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t =
        tree(f, "{\"strategy\":{\"mode\":\"fallback\"},\"retry\":{\"attempts\":1,"
                "\"on_status_codes\":[429,503],\"use_retry_after_header\":true,"
                "\"max_wait\":1000},\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    attempt_hint(w, &tg, ATTEMPT_STATUS, 503, 300);
    assert_string_equal(next(w, &tg), "a");
    assert_true(tg.retry);
    assert_int_equal(tg.wait_ms, 300);

    /* asking for longer than max_wait: not retried, the next target instead, and the log says why */
    w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    attempt_hint(w, &tg, ATTEMPT_STATUS, 503, 5000);
    assert_string_equal(next(w, &tg), "b");
    assert_false(tg.retry);
    const route_attempt_log *l = route_log(w);
    assert_non_null(l->why);
    assert_non_null(strstr(l->why, "max_wait"));
    fixture_free(f);
}

static void test_retry_budget_caps_retries_per_window(void **state)
{
    (void)state;
    fixture *f = fixture_new(PROVIDERS "routing:\n"
                                       "  retry_budget: {percent: 20, min_retries: 3, window: 60s}\n"
                                       "  breaker: {failures: 0, failure_rate: 0}\n");
    const route_tree *t =
        tree(f, "{\"provider\":\"a\",\"retry\":{\"attempts\":1,\"on_status_codes\":[500],\"base_delay\":0}}");
    int granted = 0, requests = 100;
    bool saw_exhausted = false;
    for (int i = 0; i < requests; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_STATUS, 500);
        if (next(w, &tg)) {
            assert_true(tg.retry);
            granted++;
            if (i < 3) assert_true(granted == i + 1); /* min_retries: the first three at once */
            attempt(w, &tg, ATTEMPT_STATUS, 500);
            assert_null(next(w, &tg));
        } else {
            const route_attempt_log *l = route_log(w);
            saw_exhausted |= l->why && !strcmp(l->why, "retry budget exhausted");
        }
    }
    assert_true(saw_exhausted);
    /* exactly: 3 at once (min_retries), then one each time 20 % of the requests passes the
     * retries so far: at the 20th, 25th, … 100th request (17 more) */
    assert_int_equal(granted, 20);
    fixture_free(f);
}

/* ---- breaker ------------------------------------------------------------------------------- */

static void test_open_breaker_skips_its_target_and_probes_after_cooldown(void **state)
{
    (void)state;
    fixture *f = fixture_new(breaker_yaml);
    const route_tree *fb = tree(f, "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":["
                                   "{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    const route_tree *only = tree(f, "{\"provider\":\"a\"}");
    route_target tg;
    for (int i = 0; i < 3; i++) {
        route_walk *w = walk(f, fb);
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_STATUS, 502);
        assert_string_equal(next(w, &tg), "b");
        attempt(w, &tg, ATTEMPT_OK, 200);
    }
    /* open: a is skipped, b is first */
    route_walk *w = walk(f, fb);
    assert_string_equal(next(w, &tg), "b");
    assert_string_equal(tg.path, "t/1");
    const route_attempt_log *l = route_log(w);
    assert_string_equal(l->provider, "a");
    assert_int_equal(l->result, ATTEMPT_SKIPPED);
    assert_string_equal(l->why, "circuit open");
    /* the only target open: nothing is sent; 503 and the time until half-open */
    w = walk(f, only);
    assert_null(next(w, &tg));
    int status = 0;
    uint32_t retry_in = 0;
    const char *why = route_unavailable(w, &status, &retry_in);
    assert_non_null(why);
    assert_int_equal(status, 503);
    assert_true(retry_in >= 1 && retry_in <= 100);
    assert_int_equal(route_attempts(w), 0);

    /* after the cooldown one probe goes through; others wait for it */
    usleep(110000);
    w = walk(f, only);
    assert_string_equal(next(w, &tg), "a");
    assert_true(route_begin(w, &tg));
    route_walk *w2 = walk(f, only);
    route_target tg2;
    assert_null(next(w2, &tg2));
    assert_non_null(strstr(route_unavailable(w2, &status, &retry_in), "half-open"));
    assert_int_equal(status, 503);
    /* the probe's success closes it */
    route_report(w, &(attempt_report){.result = ATTEMPT_OK, .status = 200, .retry_after_ms = -1});
    w = walk(f, fb);
    assert_string_equal(next(w, &tg), "a");
    w = walk(f, only);
    assert_string_equal(next(w, &tg), "a");
    fixture_free(f);
}

static void test_failed_probe_reopens_the_breaker(void **state)
{
    (void)state;
    fixture *f = fixture_new(breaker_yaml);
    const route_tree *only = tree(f, "{\"provider\":\"a\"}");
    route_target tg;
    for (int i = 0; i < 3; i++) {
        route_walk *w = walk(f, only);
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_TIMEOUT, 0);
    }
    usleep(110000);
    route_walk *w = walk(f, only);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    w = walk(f, only);
    assert_null(next(w, &tg));
    int status;
    uint32_t retry_in;
    assert_string_equal(route_unavailable(w, &status, &retry_in), "circuit open");
    assert_true(retry_in >= 1 && retry_in <= 100);
    fixture_free(f);
}

/* A 4xx is the client's mistake, not the target's: it does not open the breaker. */
static void test_client_errors_do_not_open_the_breaker(void **state)
{
    (void)state;
    fixture *f = fixture_new(breaker_yaml);
    const route_tree *only = tree(f, "{\"provider\":\"a\"}");
    route_target tg;
    for (int i = 0; i < 10; i++) {
        route_walk *w = walk(f, only);
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_STATUS, 400);
    }
    route_walk *w = walk(f, only);
    assert_string_equal(next(w, &tg), "a");
    fixture_free(f);
}

static breaker_state breaker_of(fixture *f, const char *provider)
{
    return health_look(health_of(f, provider), now_ms()).state;
}

/* Issue 8, item 9: a client's own settings must not open a breaker for everyone. A request
 * config's request_timeout of 10 ms fires before any deadline of the gateway's: five such
 * timeouts leave the breaker closed, and a retry after one is not taken from the shared
 * budget. The same timeout in the operator's route, or a client deadline longer than the
 * time the attempt took (the provider's own deadline fired), counts. */
static void test_a_clients_own_deadline_does_not_count_against_the_target(void **state)
{
    (void)state;
    fixture *f = fixture_new(PROVIDERS "routing:\n"
                                       "  retry: {attempts: 0}\n"
                                       "  retry_budget: {percent: 0, min_retries: 0}\n"
                                       "  breaker: {failures: 3, failure_rate: 0, cooldown: 10s}\n");
    const char *text = "{\"provider\":\"a\",\"model\":\"m\",\"request_timeout\":10,"
                       "\"retry\":{\"attempts\":1,\"base_delay\":0}}";
    const route_tree *client = tree(f, text);
    route_target tg;
    for (int i = 0; i < 5; i++) {
        route_walk *w = walk(f, client);
        assert_string_equal(next(w, &tg), "a");
        assert_true(route_begin(w, &tg));
        usleep(12000); /* the client's 10 ms pass */
        route_report(w, &(attempt_report){.result = ATTEMPT_TIMEOUT, .retry_after_ms = -1});
        /* retried although the budget has nothing: routing.max_attempts bounds it instead */
        assert_string_equal(next(w, &tg), "a");
        assert_true(tg.retry);
        attempt(w, &tg, ATTEMPT_OK, 200);
    }
    assert_int_equal(breaker_of(f, "a"), BREAKER_CLOSED);
    assert_int_equal(health_look(health_of(f, "a"), now_ms()).outstanding, 0);

    /* the provider's own deadline (the attempt ended before the client's 10 s) counts */
    const route_tree *patient = tree(f, "{\"provider\":\"a\",\"model\":\"m\",\"request_timeout\":10000,"
                                        "\"retry\":{\"attempts\":1,\"base_delay\":0}}");
    route_walk *w = walk(f, patient);
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_TIMEOUT, 0);
    assert_null(next(w, &tg)); /* and its retry needs the budget, which has none */
    assert_string_equal(route_log(w)->why, "retry budget exhausted");
    /* the operator's request_timeout is the operator's: it counts too */
    const route_tree *stored = operator_tree(f, text);
    for (int i = 0; i < 2; i++) {
        w = walk(f, stored);
        assert_string_equal(next(w, &tg), "a");
        assert_true(route_begin(w, &tg));
        usleep(12000);
        route_report(w, &(attempt_report){.result = ATTEMPT_TIMEOUT, .retry_after_ms = -1});
    }
    assert_int_equal(breaker_of(f, "a"), BREAKER_OPEN);
    fixture_free(f);
}

/* A Portkey config's request_timeout is Portkey's 408: its fallback and retry lists match on it
 * (fallback on [429] does not move on, [408] does; retry on [408] retries); aigw's own config
 * treats it as any timeout (falls back whatever its list says). */
static void test_portkey_request_timeout_is_a_408(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_target tg;
    const char *const fallback[] = {
        "{\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[429]},\"request_timeout\":10,"
        "\"targets\":[{\"provider\":\"a\",\"model\":\"m\"},{\"provider\":\"b\",\"model\":\"m\"}]}",
        "{\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[408]},\"request_timeout\":10,"
        "\"targets\":[{\"provider\":\"a\",\"model\":\"m\"},{\"provider\":\"b\",\"model\":\"m\"}]}",
    };
    for (int k = 0; k < 2; k++) {
        for (int portkey = 0; portkey < 2; portkey++) {
            route_walk *w = walk(f, portkey ? portkey_tree(f, fallback[k]) : tree(f, fallback[k]));
            assert_string_equal(next(w, &tg), "a");
            assert_int_equal(tg.send_once, portkey);
            assert_true(route_begin(w, &tg));
            usleep(12000); /* the 10 ms pass */
            route_report(w, &(attempt_report){.result = ATTEMPT_TIMEOUT, .retry_after_ms = -1});
            assert_int_equal(route_last_status(w), portkey ? 408 : 0);
            const char *then = next(w, &tg);
            if (portkey && k == 0)
                assert_null(then); /* 408 is not in [429]: the 408 is the answer */
            else
                assert_string_equal(then, "b");
        }
    }
    /* retried when the retry list has 408, as Portkey's documented retry config does */
    const route_tree *t = portkey_tree(f, "{\"provider\":\"a\",\"model\":\"m\",\"request_timeout\":10,"
                                          "\"retry\":{\"attempts\":1,\"on_status_codes\":[408]}}");
    route_walk *w = walk(f, t);
    assert_string_equal(next(w, &tg), "a");
    assert_true(route_begin(w, &tg));
    usleep(12000);
    route_report(w, &(attempt_report){.result = ATTEMPT_TIMEOUT, .retry_after_ms = -1});
    assert_string_equal(next(w, &tg), "a");
    assert_true(tg.retry);
    attempt(w, &tg, ATTEMPT_OK, 200);
    assert_null(next(w, &tg));
    /* not in the retry list (Portkey's default one): no retry */
    w = walk(f, portkey_tree(f, "{\"provider\":\"a\",\"model\":\"m\",\"request_timeout\":10,"
                                "\"retry\":{\"attempts\":1}}"));
    assert_string_equal(next(w, &tg), "a");
    assert_true(route_begin(w, &tg));
    usleep(12000);
    route_report(w, &(attempt_report){.result = ATTEMPT_TIMEOUT, .retry_after_ms = -1});
    assert_null(next(w, &tg));
    /* a timeout before the deadline (the provider's own) stays a timeout: retried */
    w = walk(f, portkey_tree(f, "{\"provider\":\"a\",\"model\":\"m\",\"request_timeout\":10000,"
                                "\"retry\":{\"attempts\":1}}"));
    assert_string_equal(next(w, &tg), "a");
    attempt(w, &tg, ATTEMPT_TIMEOUT, 0);
    assert_int_equal(route_last_status(w), 0);
    assert_string_equal(next(w, &tg), "a");
    fixture_free(f);
}

/* Portkey's single strategy uses its first target (and only it); Portkey's conditions may
 * read url.pathname, the request's path. */
static void test_portkey_single_and_pathname_conditions(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_target tg;
    const route_tree *single = portkey_tree(
        f, "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"b\"},{\"provider\":\"a\"}]}");
    route_walk *w = walk(f, single);
    assert_string_equal(next(w, &tg), "b");
    attempt(w, &tg, ATTEMPT_STATUS, 500);
    assert_null(next(w, &tg));

    const route_tree *by_path = portkey_tree(
        f, "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":["
           "{\"query\":{\"url.pathname\":{\"$eq\":\"/v1/embeddings\"}},\"then\":\"embed\"},"
           "{\"query\":{\"url.pathname\":{\"$regex\":\"/chat/\"}},\"then\":\"chat\"}],"
           "\"default\":\"other\"},"
           "\"targets\":[{\"name\":\"embed\",\"provider\":\"a\"},{\"name\":\"chat\",\"provider\":\"b\"},"
           "{\"name\":\"other\",\"provider\":\"c\"}]}");
    assert_string_equal(next(walk_path(f, by_path, "/v1/embeddings"), &tg), "a");
    assert_string_equal(next(walk_path(f, by_path, "/v1/chat/completions"), &tg), "b");
    assert_string_equal(next(walk_path(f, by_path, "/v1/messages"), &tg), "c");
    assert_string_equal(next(walk_path(f, by_path, NULL), &tg), "c"); /* unknown: missing */
    fixture_free(f);
}

/* A 4xx is neither a failure nor a success of the target: it does not break a run of failures
 * (a client sending bad requests cannot keep a failing target's breaker closed). */
static void test_client_errors_neither_open_nor_keep_closed_the_breaker(void **state)
{
    (void)state;
    fixture *f = fixture_new(breaker_yaml);
    const route_tree *only = tree(f, "{\"provider\":\"a\",\"model\":\"m\"}");
    route_target tg;
    static const int statuses[] = {500, 400, 500, 422, 404, 500};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        route_walk *w = walk(f, only);
        assert_string_equal(next(w, &tg), "a");
        attempt(w, &tg, ATTEMPT_STATUS, statuses[i]);
    }
    assert_int_equal(breaker_of(f, "a"), BREAKER_OPEN); /* three 500s in a row, 4xx aside */
    fixture_free(f);
}

/* Issue 8, item 10: one request's upstream calls are capped by routing.max_attempts (default
 * 6), and a fallback or hedge to a target the request already sent to pays the retry budget:
 * 64 copies of one target are not 64 calls. */
static void test_max_attempts_caps_a_request_and_copies_pay_the_budget(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    assert_int_equal(f->cfg->routing.max_attempts, 6);
    char text[2048] = "{\"strategy\":{\"mode\":\"fallback\"},\"retry\":{\"attempts\":1,\"base_delay\":0},"
                      "\"targets\":[";
    for (int i = 0; i < 10; i++) /* ten distinct targets, a retry each: 20 calls uncapped */
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s{\"provider\":\"a\",\"model\":\"m%d\"}",
                 i ? "," : "", i);
    snprintf(text + strlen(text), sizeof text - strlen(text), "]}");
    const route_tree *t = tree(f, text);
    route_walk *w = walk(f, t);
    route_target tg;
    int sent = 0;
    while (next(w, &tg)) {
        attempt(w, &tg, ATTEMPT_STATUS, 500);
        sent++;
    }
    assert_int_equal(sent, 6);
    assert_int_equal(route_attempts(w), 6);
    const route_attempt_log *l = route_log(w);
    while (l->next)
        l = l->next;
    assert_string_equal(l->why, "routing.max_attempts reached");
    fixture_free(f);

    f = fixture_new(PROVIDERS "routing:\n"
                              "  max_attempts: 32\n"
                              "  retry: {attempts: 0}\n"
                              "  retry_budget: {percent: 20, min_retries: 3, window: 60s}\n"
                              "  breaker: {failures: 0, failure_rate: 0}\n");
    char copies[4096] = "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[";
    for (int i = 0; i < 64; i++)
        snprintf(copies + strlen(copies), sizeof copies - strlen(copies),
                 "%s{\"provider\":\"a\",\"model\":\"m\"}", i ? "," : "");
    snprintf(copies + strlen(copies), sizeof copies - strlen(copies), "]}");
    w = walk(f, tree(f, copies));
    sent = 0;
    while (next(w, &tg)) {
        attempt(w, &tg, ATTEMPT_STATUS, 500);
        sent++;
    }
    assert_int_equal(sent, 4); /* the first try, then min_retries (3) of the budget */
    int refused = 0;
    for (l = route_log(w); l; l = l->next)
        refused +=
            l->why && !strcmp(l->why, "retry budget exhausted (a target this request already sent to)");
    assert_int_equal(refused, 60);
    fixture_free(f);
}

/* ---- conditions ---------------------------------------------------------------------------- */

/* Builds a conditional tree with one condition (→ "yes", else the default "no") and says
 * which child a request with this metadata and params gets. */
static const char *pick(fixture *f, const char *query, const char *metadata, const char *params)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":%s,\"then\":\"yes\"}],"
             "\"default\":\"no\"},\"targets\":[{\"name\":\"yes\",\"provider\":\"a\"},"
             "{\"name\":\"no\",\"provider\":\"b\"}]}",
             query);
    route_walk *w = walk_md(f, tree(f, text), metadata, params);
    route_target tg;
    const char *p = next(w, &tg);
    assert_non_null(p);
    assert_null(route_error(w));
    /* release the JSON this pick kept: the walk is over */
    while (f->njson)
        json_decref(f->json[--f->njson]);
    return strcmp(p, "a") ? "no" : "yes";
}

static void test_conditions_pick_the_child_their_operators_say(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    static const struct {
        const char *query, *metadata, *params, *expect;
    } cases[] = {
        {"{\"metadata.plan\":{\"$eq\":\"pro\"}}", "{\"plan\":\"pro\"}", NULL, "yes"},
        {"{\"metadata.plan\":{\"$eq\":\"pro\"}}", "{\"plan\":\"free\"}", NULL, "no"},
        {"{\"metadata.plan\":\"pro\"}", "{\"plan\":\"pro\"}", NULL, "yes"}, /* a bare value is $eq */
        {"{\"metadata.plan\":{\"$ne\":\"pro\"}}", "{\"plan\":\"free\"}", NULL, "yes"},
        {"{\"metadata.plan\":{\"$ne\":\"pro\"}}", "{\"plan\":\"pro\"}", NULL, "no"},
        {"{\"params.max_tokens\":{\"$gt\":1000}}", NULL, "{\"max_tokens\":2000}", "yes"},
        {"{\"params.max_tokens\":{\"$gt\":1000}}", NULL, "{\"max_tokens\":1000}", "no"},
        {"{\"params.max_tokens\":{\"$gte\":1000}}", NULL, "{\"max_tokens\":1000}", "yes"},
        {"{\"params.max_tokens\":{\"$gte\":1000}}", NULL, "{\"max_tokens\":999}", "no"},
        {"{\"params.temperature\":{\"$lt\":0.5}}", NULL, "{\"temperature\":0.2}", "yes"},
        {"{\"params.temperature\":{\"$lt\":0.5}}", NULL, "{\"temperature\":0.5}", "no"},
        {"{\"params.temperature\":{\"$lte\":0.5}}", NULL, "{\"temperature\":0.5}", "yes"},
        {"{\"params.temperature\":{\"$lte\":0.5}}", NULL, "{\"temperature\":0.7}", "no"},
        {"{\"metadata.tier\":{\"$gt\":3}}", "{\"tier\":\"10\"}", NULL,
         "yes"}, /* numbers written as strings */
        {"{\"metadata.tier\":{\"$eq\":10}}", "{\"tier\":\"10\"}", NULL, "yes"},
        {"{\"metadata.region\":{\"$in\":[\"eu\",\"uk\"]}}", "{\"region\":\"uk\"}", NULL, "yes"},
        {"{\"metadata.region\":{\"$in\":[\"eu\",\"uk\"]}}", "{\"region\":\"us\"}", NULL, "no"},
        {"{\"metadata.region\":{\"$nin\":[\"eu\",\"uk\"]}}", "{\"region\":\"us\"}", NULL, "yes"},
        {"{\"metadata.region\":{\"$nin\":[\"eu\",\"uk\"]}}", "{\"region\":\"eu\"}", NULL, "no"},
        {"{\"params.model\":{\"$regex\":\"^gpt-4\"}}", NULL, "{\"model\":\"gpt-4o-mini\"}", "yes"},
        {"{\"params.model\":{\"$regex\":\"^gpt-4\"}}", NULL, "{\"model\":\"gpt-3.5\"}", "no"},
        {"{\"$and\":[{\"metadata.a\":\"1\"},{\"metadata.b\":\"2\"}]}", "{\"a\":\"1\",\"b\":\"2\"}", NULL,
         "yes"},
        {"{\"$and\":[{\"metadata.a\":\"1\"},{\"metadata.b\":\"2\"}]}", "{\"a\":\"1\",\"b\":\"3\"}", NULL,
         "no"},
        {"{\"$or\":[{\"metadata.a\":\"1\"},{\"params.n\":{\"$gt\":5}}]}", "{\"a\":\"0\"}", "{\"n\":6}",
         "yes"},
        {"{\"$or\":[{\"metadata.a\":\"1\"},{\"params.n\":{\"$gt\":5}}]}", "{\"a\":\"0\"}", "{\"n\":5}", "no"},
        /* two operators on one key: both must hold */
        {"{\"params.n\":{\"$gt\":1,\"$lt\":3}}", NULL, "{\"n\":2}", "yes"},
        {"{\"params.n\":{\"$gt\":1,\"$lt\":3}}", NULL, "{\"n\":3}", "no"},
        /* a nested key */
        {"{\"params.user.tier\":\"gold\"}", NULL, "{\"user\":{\"tier\":\"gold\"}}", "yes"},
        /* a missing key matches only $ne and $nin */
        {"{\"metadata.plan\":{\"$ne\":\"pro\"}}", "{}", NULL, "yes"},
        {"{\"metadata.plan\":{\"$nin\":[\"pro\"]}}", NULL, NULL, "yes"},
        {"{\"metadata.plan\":{\"$eq\":\"pro\"}}", "{}", NULL, "no"},
        {"{\"metadata.plan\":{\"$in\":[\"pro\"]}}", "{}", NULL, "no"},
        {"{\"params.n\":{\"$gt\":0}}", NULL, "{}", "no"},
        {"{\"params.n\":{\"$lte\":0}}", NULL, NULL, "no"},
        {"{\"params.model\":{\"$regex\":\".*\"}}", NULL, "{}", "no"},
        /* PCRE2: counted repetition, classes, back-references (bounded by the match limit) */
        {"{\"params.model\":{\"$regex\":\"^gpt-\\\\d{1,2}o?$\"}}", NULL, "{\"model\":\"gpt-4o\"}", "yes"},
        {"{\"params.model\":{\"$regex\":\"^(\\\\w)\\\\1\"}}", NULL, "{\"model\":\"xxl\"}", "yes"},
        {"{\"params.model\":{\"$regex\":\"^(\\\\w)\\\\1\"}}", NULL, "{\"model\":\"xl\"}", "no"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = pick(f, cases[i].query, cases[i].metadata, cases[i].params);
        if (strcmp(got, cases[i].expect))
            fail_msg("query %s with metadata %s, params %s: got '%s', expected '%s'", cases[i].query,
                     cases[i].metadata ? cases[i].metadata : "none",
                     cases[i].params ? cases[i].params : "none", got, cases[i].expect);
    }
    fixture_free(f);
}

/* A `$regex` runs on the worker's loop: a pattern that backtracks without end on a large value
 * must end at once as a non-match, noted for the access log (glibc's regexec took 11 s for
 * ((a|b|ab)*)*c on 80 KB). Both bounds: the value's length, and PCRE2's match limit below it. */
static void test_pathological_regex_is_a_prompt_non_match_with_a_note(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(
        f, "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":["
           "{\"query\":{\"params.user\":{\"$regex\":\"((a|b|ab)*)*c$\"}},\"then\":\"hit\"}],"
           "\"default\":\"miss\"},"
           "\"targets\":[{\"name\":\"hit\",\"provider\":\"a\"},{\"name\":\"miss\",\"provider\":\"b\"}]}");
    static const struct {
        size_t len;
        const char *note;
    } cases[] = {
        {80 * 1024, "over 4096 bytes"},    /* longer than any value a search is run on */
        {4094, "reached its match limit"}, /* within the length: PCRE2's limit ends it */
        {40, "reached its match limit"},   /* 40 bytes already take about 2^40 steps */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].len;
        /* "abab…ab" then "cx": the 'c' the pattern needs is there, so PCRE2's quick checks do
         * not decide, and the $ after it fails only once every split of the a/b run is tried */
        char *params = malloc(n + 16);
        memcpy(params, "{\"user\":\"", 9);
        for (size_t k = 0; k < n; k++)
            params[9 + k] = "ab"[k % 2];
        memcpy(params + 9 + n, "cx\"}", 5);
        route_walk *w = walk_md(f, t, NULL, params);
        free(params);
        route_target tg;
        assert_string_equal(next(w, &tg), "b"); /* the default: not a match */
        assert_null(route_error(w));
        assert_non_null(route_note(w));
        if (!strstr(route_note(w), cases[i].note))
            fail_msg("%zu bytes: note '%s', expected '%s'", n, route_note(w), cases[i].note);
    }
    /* a value the pattern does match, and one it does not, within the bounds: no note */
    route_walk *w = walk_md(f, t, NULL, "{\"user\":\"ababc\"}");
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    assert_null(route_note(w));
    w = walk_md(f, t, NULL, "{\"user\":\"abab\"}");
    assert_string_equal(next(w, &tg), "b");
    assert_null(route_note(w));
    fixture_free(f);
}

static void test_no_matching_condition_and_no_default_is_an_error(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(
        f, "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":["
           "{\"query\":{\"metadata.plan\":\"pro\"},\"then\":\"pro\"},"
           "{\"query\":{\"metadata.plan\":\"free\"},\"then\":\"free\"}]},"
           "\"targets\":[{\"name\":\"pro\",\"provider\":\"a\"},{\"name\":\"free\",\"provider\":\"b\"}]}");
    route_target tg;
    route_walk *w = walk_md(f, t, "{\"plan\":\"team\"}", NULL);
    assert_null(next(w, &tg));
    assert_non_null(route_error(w));
    assert_int_equal(route_attempts(w), 0);
    /* the first matching condition wins */
    w = walk_md(f, t, "{\"plan\":\"free\"}", NULL);
    assert_string_equal(next(w, &tg), "b");
    assert_string_equal(tg.path, "t/free");
    assert_null(route_error(w));
    fixture_free(f);
}

/* ---- load balancing ------------------------------------------------------------------------ */

static void test_weighted_balance_follows_the_weights(void **state)
{
    (void)state;
    /* a stored route: smooth weighted round robin, so exact over whole rounds */
    fixture *f = fixture_new(PROVIDERS "routes:\n"
                                       "  - name: lb\n"
                                       "    strategy: {mode: loadbalance}\n"
                                       "    targets:\n"
                                       "      - {provider: a, weight: 0.7}\n"
                                       "      - {provider: b, weight: 0.3}\n");
    const route_tree *t = config_find_route(f->cfg, "lb", 2);
    assert_non_null(t);
    int a = 0, b = 0;
    for (int i = 0; i < 1000; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        const char *p = next(w, &tg);
        assert_non_null(p);
        if (!strcmp(p, "a")) a++;
        if (!strcmp(p, "b")) b++;
    }
    assert_int_equal(a, 700);
    assert_int_equal(b, 300);

    /* an open breaker's child is passed over for the other */
    target_health *ha = health_of(f, "a");
    for (int i = 0; i < 5; i++) { /* the default breaker: 5 failures */
        bool probe;
        assert_true(health_begin(ha, now_ms(), false, &probe));
        health_end(ha, now_ms(), true, probe, -1);
    }
    for (int i = 0; i < 20; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "b");
    }
    fixture_free(f);
}

/* A tree a header brings is built per request (in the request's arena), so it has no shared
 * round-robin position: the choice is weighted random. Guards a fix (5f20312): at f1ace08
 * build_sequence ran for these trees too (tree.c:557) and balance_pick (walk.c:311) always
 * took sequence[0] from their fresh cursor, sending 1000 of 1000 requests to a. */
static void test_weighted_balance_of_per_request_trees_follows_the_weights(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    int a = 0;
    for (int i = 0; i < 1000; i++) {
        arena req;
        arena_init(&req, 4096);
        json_t *j = json_loads("{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                               "{\"provider\":\"a\",\"weight\":0.7},{\"provider\":\"b\",\"weight\":0.3}]}",
                               0, NULL);
        const route_tree *t =
            route_tree_build(&req, f->cfg, f->cfg->health, j, "hdr", true, false, true, err, sizeof err);
        assert_non_null(t);
        route_context ctx = {
            .arena = &req, .state = f->cfg->health, .config = f->cfg, .model = "m", .rng = &f->seed};
        route_walk *w = route_walk_new(&ctx, t);
        route_target tg;
        assert_true(route_next(w, &tg));
        a += !strcmp(tg.leaf->provider->name, "a");
        json_decref(j);
        arena_free(&req);
    }
    if (a < 640 || a > 760) fail_msg("a chosen %d times of 1000, expected about 700", a);
    fixture_free(f);
}

static void test_least_busy_avoids_the_child_with_outstanding_requests(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t =
        tree(f, "{\"strategy\":{\"mode\":\"loadbalance\",\"balance\":\"least_busy\"},"
                "\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"},{\"provider\":\"c\"}]}");
    target_health *ha = health_of(f, "a"), *hc = health_of(f, "c");
    bool probe;
    for (int i = 0; i < 5; i++)
        assert_true(health_begin(ha, now_ms(), false, &probe));
    assert_true(health_begin(hc, now_ms(), false, &probe));
    for (int i = 0; i < 50; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "b");
    }
    /* once a's requests are done and b is busy, a and c share */
    for (int i = 0; i < 5; i++)
        health_end(ha, now_ms(), false, false, -1);
    health_end(hc, now_ms(), false, false, -1);
    target_health *hb = health_of(f, "b");
    assert_true(health_begin(hb, now_ms(), false, &probe));
    int seen_a = 0, seen_c = 0;
    for (int i = 0; i < 50; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        const char *p = next(w, &tg);
        assert_string_not_equal(p, "b");
        seen_a += !strcmp(p, "a");
        seen_c += !strcmp(p, "c");
    }
    assert_true(seen_a > 0 && seen_c > 0); /* ties broken at random */
    health_end(hb, now_ms(), false, false, -1);
    fixture_free(f);
}

static void test_latency_balance_prefers_the_faster_child(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(f, "{\"strategy\":{\"mode\":\"loadbalance\",\"balance\":\"latency\"},"
                                  "\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    target_health *ha = health_of(f, "a"), *hb = health_of(f, "b");
    bool probe;
    assert_true(health_begin(ha, now_ms(), false, &probe));
    health_end(ha, now_ms(), false, probe, 200);
    assert_true(health_begin(hb, now_ms(), false, &probe));
    health_end(hb, now_ms(), false, probe, 20);
    for (int i = 0; i < 100; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "b");
    }
    /* the faster one loaded with outstanding requests costs more: 20 × 11 > 200 × 1 */
    for (int i = 0; i < 10; i++)
        assert_true(health_begin(hb, now_ms(), false, &probe));
    for (int i = 0; i < 20; i++) {
        route_walk *w = walk(f, t);
        route_target tg;
        assert_string_equal(next(w, &tg), "a");
    }
    for (int i = 0; i < 10; i++)
        health_end(hb, now_ms(), false, false, -1);
    fixture_free(f);
}

/* ---- the providers' headers ---------------------------------------------------------------- */

static void test_rate_limited_target_is_avoided_while_another_is_available(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(f, "{\"strategy\":{\"mode\":\"loadbalance\"},"
                                  "\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}");
    route_walk *w = walk(f, t);
    route_target tg;
    const char *first = next(w, &tg);
    assert_non_null(first);
    assert_true(route_begin(w, &tg));
    const char *lines[] = {"X-RateLimit-Limit-Requests: 100", "x-ratelimit-remaining-requests: 0",
                           "x-ratelimit-reset-requests: 2s"};
    assert_int_equal(route_note_headers(w, false, 200, lines, 3), -1); /* no wait asked of a 200 */
    route_report(w, &(attempt_report){.result = ATTEMPT_OK, .status = 200, .retry_after_ms = -1});
    const char *other = !strcmp(first, "a") ? "b" : "a";
    bool logged = false;
    for (int i = 0; i < 20; i++) {
        w = walk(f, t);
        assert_string_equal(next(w, &tg), other);
        /* when the round robin came to the limited one first, the log says it was passed over */
        for (const route_attempt_log *l = route_log(w); l; l = l->next)
            logged |= l->result == ATTEMPT_SKIPPED && !strcmp(l->provider, first) &&
                      !strcmp(l->why, "rate-limited by the provider");
    }
    assert_true(logged);

    /* when the limited target is all there is, it is used */
    char only[64];
    snprintf(only, sizeof only, "{\"provider\":\"%s\"}", first);
    w = walk(f, tree(f, only));
    assert_string_equal(next(w, &tg), first);
    /* a fallback prefers the unlimited second child too */
    char fb[160];
    snprintf(fb, sizeof fb,
             "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"%s\"},"
             "{\"provider\":\"%s\"}]}",
             first, other);
    w = walk(f, tree(f, fb));
    assert_string_equal(next(w, &tg), other);
    fixture_free(f);
}

static void test_a_429_limits_its_target_for_the_wait_it_asked(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = tree(f, "{\"provider\":\"a\"}");
    route_walk *w = walk(f, t);
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    uint64_t before = now_ms();
    attempt_hint(w, &tg, ATTEMPT_STATUS, 429, 5000);
    health_view v = health_look(health_of(f, "a"), before + 4000);
    assert_true(v.limited);
    v = health_look(health_of(f, "a"), now_ms() + 5001);
    assert_false(v.limited);
    fixture_free(f);
}

/* route_note_headers on one set of lines, for the current target of a fresh walk. */
static int64_t note(fixture *f, int status, const char *const *lines, size_t n)
{
    route_walk *w = walk(f, tree(f, "{\"provider\":\"a\"}"));
    route_target tg;
    assert_string_equal(next(w, &tg), "a");
    return route_note_headers(w, false, status, lines, n);
}

static void format_http_date(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void format_rfc3339(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void test_retry_hints_are_read_from_every_spelling(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const char *ms[] = {"retry-after-ms: 1500"};
    assert_int_equal(note(f, 429, ms, 1), 1500);
    const char *azure[] = {"x-ms-retry-after-ms: 250"};
    assert_int_equal(note(f, 503, azure, 1), 250);
    const char *secs[] = {"Retry-After: 7"};
    assert_int_equal(note(f, 429, secs, 1), 7000);
    const char *both[] = {"retry-after: 7", "retry-after-ms: 6500"}; /* the finer one wins */
    assert_int_equal(note(f, 429, both, 2), 6500);
    char date[96], line[128];
    format_http_date(time(NULL) + 10, date, sizeof date);
    snprintf(line, sizeof line, "retry-after: %s", date);
    const char *http_date[] = {line};
    int64_t v = note(f, 503, http_date, 1);
    assert_true(v >= 8000 && v <= 10000);
    const char *past[] = {"retry-after: Wed, 21 Oct 2015 07:28:00 GMT"};
    assert_int_equal(note(f, 503, past, 1), 0);
    const char *junk[] = {"retry-after: soon", "x-other: 5"};
    assert_int_equal(note(f, 503, junk, 2), -1);

    /* Anthropic's reset as RFC 3339: the wait of a 429 when nothing else says one */
    char reset[96], rl[160];
    format_rfc3339(time(NULL) + 30, reset, sizeof reset);
    snprintf(rl, sizeof rl, "anthropic-ratelimit-requests-reset: %s", reset);
    const char *anthropic[] = {"anthropic-ratelimit-requests-remaining: 0", rl};
    v = note(f, 429, anthropic, 2);
    assert_true(v >= 28000 && v <= 30000);
    assert_true(health_look(health_of(f, "a"), now_ms() + 20000).limited);
    v = ms_until_rfc3339(reset);
    assert_true(v >= 28000 && v <= 30000);
    assert_int_equal(ms_until_rfc3339("2015-10-21T07:28:00Z"), 0);
    assert_int_equal(ms_until_rfc3339("tomorrow"), -1);
    /* OpenAI's token reset on a 429 */
    const char *tokens[] = {"x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 6m0s"};
    assert_int_equal(note(f, 429, tokens, 2), 360000);
    /* Anthropic's output-token limit: the latest reset among the exhausted limits counts; a
     * limit with some left does not */
    char out_reset[160], in_reset[160], later[96];
    format_rfc3339(time(NULL) + 90, later, sizeof later);
    snprintf(out_reset, sizeof out_reset, "anthropic-ratelimit-output-tokens-reset: %s", later);
    snprintf(in_reset, sizeof in_reset, "Anthropic-RateLimit-Input-Tokens-Reset: %s", reset);
    const char *output[] = {"anthropic-ratelimit-output-tokens-remaining: 0", out_reset,
                            "anthropic-ratelimit-input-tokens-remaining: 12000", in_reset};
    v = note(f, 429, output, 4);
    assert_true(v >= 88000 && v <= 90000);
    assert_true(health_look(health_of(f, "a"), now_ms() + 80000).limited);
    fixture_free(f);
}

static void test_go_durations_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_go_duration("1s"), 1000);
    assert_int_equal(parse_go_duration("6m0s"), 360000);
    assert_int_equal(parse_go_duration("850ms"), 850);
    assert_int_equal(parse_go_duration("1h2m3.5s"), 3723500);
    assert_int_equal(parse_go_duration("0.25s"), 250);
    assert_int_equal(parse_go_duration("2m30s"), 150000);
    assert_int_equal(parse_go_duration(""), -1);
    assert_int_equal(parse_go_duration("soon"), -1);
    assert_int_equal(parse_go_duration("5"), -1);
    assert_int_equal(parse_go_duration("5d"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fallback_moves_to_the_next_target_on_failure),
        cmocka_unit_test(test_fallback_only_on_its_status_codes),
        cmocka_unit_test(test_nested_fallback_climbs_to_the_outer_node),
        cmocka_unit_test(test_retries_come_back_with_full_jitter_backoff),
        cmocka_unit_test(test_retry_waits_what_the_provider_asks_up_to_max_wait),
        cmocka_unit_test(test_retry_budget_caps_retries_per_window),
        cmocka_unit_test(test_open_breaker_skips_its_target_and_probes_after_cooldown),
        cmocka_unit_test(test_failed_probe_reopens_the_breaker),
        cmocka_unit_test(test_client_errors_do_not_open_the_breaker),
        cmocka_unit_test(test_a_clients_own_deadline_does_not_count_against_the_target),
        cmocka_unit_test(test_portkey_request_timeout_is_a_408),
        cmocka_unit_test(test_portkey_single_and_pathname_conditions),
        cmocka_unit_test(test_client_errors_neither_open_nor_keep_closed_the_breaker),
        cmocka_unit_test(test_max_attempts_caps_a_request_and_copies_pay_the_budget),
        cmocka_unit_test(test_conditions_pick_the_child_their_operators_say),
        cmocka_unit_test(test_no_matching_condition_and_no_default_is_an_error),
        cmocka_unit_test(test_pathological_regex_is_a_prompt_non_match_with_a_note),
        cmocka_unit_test(test_weighted_balance_follows_the_weights),
        cmocka_unit_test(test_least_busy_avoids_the_child_with_outstanding_requests),
        cmocka_unit_test(test_latency_balance_prefers_the_faster_child),
        cmocka_unit_test(test_rate_limited_target_is_avoided_while_another_is_available),
        cmocka_unit_test(test_a_429_limits_its_target_for_the_wait_it_asked),
        cmocka_unit_test(test_retry_hints_are_read_from_every_spelling),
        cmocka_unit_test(test_go_durations_parse),
        cmocka_unit_test(test_weighted_balance_of_per_request_trees_follows_the_weights),
    };
    return cmocka_run_group_tests_name("routing walk", tests, NULL, NULL);
}
