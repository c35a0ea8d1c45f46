/* test_health.c — one target's shared health (health.c), on a clock the test sets: the
 * circuit breaker's states (consecutive failures, the failure rate of a window once it has
 * min_requests, the cooldown, half-open letting exactly `probes` through, a probe's success
 * closing and its failure reopening), the peak-EWMA of the time to first byte (a slower
 * sample at once, a faster one only as time passes), outstanding requests, rate-limit
 * marks, the retry budget over its sliding window, and the registry handing out one struct
 * per provider + model, and a reload's adoption of the old state (what carries over, for
 * which targets, and what does not). Every strategy of walk.c reads these, so their rules are pinned
 * here with exact numbers. */
#include "../../src/routing/health.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#define T0 1000000 /* a monotonic "now" in ms, far from 0 like the real one */

static routing_state *state_with(void (*tweak)(routing_settings *))
{
    routing_settings s;
    config_routing_defaults(&s);
    s.breaker_failures = 3;
    s.breaker_rate_pct = 0;
    s.breaker_cooldown_ms = 1000;
    s.breaker_probes = 1;
    if (tweak) tweak(&s);
    return routing_state_new(&s, NULL);
}

/* One attempt from begin to end at `now`; false when the breaker did not admit it. */
static bool attempt(target_health *h, uint64_t now, bool failure)
{
    bool probe;
    if (!health_begin(h, now, false, &probe)) return false;
    health_end(h, now, failure, probe, -1);
    return true;
}

/* ---- breaker -------------------------------------------------------------------------------- */

static void test_consecutive_failures_open_the_breaker(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    assert_true(attempt(h, T0, true));
    assert_true(attempt(h, T0, true));
    assert_true(attempt(h, T0, false)); /* a success in between starts the count again */
    assert_true(attempt(h, T0, true));
    assert_true(attempt(h, T0, true));
    assert_int_equal(health_look(h, T0).state, BREAKER_CLOSED);
    assert_true(attempt(h, T0 + 10, true));
    health_view v = health_look(h, T0 + 10);
    assert_int_equal(v.state, BREAKER_OPEN);
    assert_false(v.admits);
    assert_int_equal(v.open_ms, 1000);
    assert_int_equal(health_look(h, T0 + 500).open_ms, 510);
    bool probe = true;
    assert_false(health_begin(h, T0 + 500, false, &probe));
    assert_false(probe);
    assert_int_equal(health_look(h, T0 + 500).outstanding, 0); /* a refused begin holds nothing */
    routing_state_free(s);
}

static void rate_breaker(routing_settings *s)
{
    s->breaker_failures = 0; /* only the rate */
    s->breaker_rate_pct = 50;
    s->breaker_min_requests = 10;
    s->breaker_window_ms = 1000;
}

static void test_failure_rate_opens_only_past_min_requests(void **state)
{
    (void)state;
    routing_state *s = state_with(rate_breaker);
    target_health *h = routing_health(s, "p", "m");
    /* 9 requests, all failures: not enough requests to judge */
    for (int i = 0; i < 9; i++)
        assert_true(attempt(h, T0, true));
    assert_int_equal(health_look(h, T0).state, BREAKER_CLOSED);
    /* the window passes: those nine are forgotten */
    for (int i = 0; i < 9; i++)
        assert_true(attempt(h, T0 + 1000, i % 2 == 0)); /* 5 failures of 9 */
    assert_int_equal(health_look(h, T0 + 1000).state, BREAKER_CLOSED);
    assert_true(attempt(h, T0 + 1000, true)); /* 6 of 10: over 50 % */
    assert_int_equal(health_look(h, T0 + 1000).state, BREAKER_OPEN);
    routing_state_free(s);

    /* 4 failures in 10 stays closed; the 50 % line itself opens */
    s = state_with(rate_breaker);
    h = routing_health(s, "p", "m");
    for (int i = 0; i < 10; i++)
        assert_true(attempt(h, T0, i < 4));
    assert_int_equal(health_look(h, T0).state, BREAKER_CLOSED);
    assert_true(attempt(h, T0, true)); /* 5 of 11 */
    assert_int_equal(health_look(h, T0).state, BREAKER_CLOSED);
    assert_true(attempt(h, T0, true)); /* 6 of 12 */
    assert_int_equal(health_look(h, T0).state, BREAKER_OPEN);
    routing_state_free(s);
}

static void two_probes(routing_settings *s)
{
    s->breaker_probes = 2;
}

static void test_half_open_lets_through_only_its_probes(void **state)
{
    (void)state;
    routing_state *s = state_with(two_probes);
    target_health *h = routing_health(s, "p", "m");
    for (int i = 0; i < 3; i++)
        attempt(h, T0, true);
    bool p1, p2, p3;
    assert_false(health_begin(h, T0 + 999, false, &p1)); /* still cooling down */
    assert_int_equal(health_look(h, T0 + 1000).state, BREAKER_HALF_OPEN);
    assert_true(health_look(h, T0 + 1000).admits);
    assert_true(health_begin(h, T0 + 1000, false, &p1));
    assert_true(p1);
    assert_true(health_begin(h, T0 + 1001, false, &p2));
    assert_true(p2);
    assert_false(health_begin(h, T0 + 1002, false, &p3)); /* both slots taken */
    assert_false(health_look(h, T0 + 1002).admits);
    assert_int_equal(health_look(h, T0 + 1002).outstanding, 2);
    /* a probe's success closes it; then anyone is admitted, and not as a probe */
    health_end(h, T0 + 1003, false, p1, 50);
    assert_int_equal(health_look(h, T0 + 1003).state, BREAKER_CLOSED);
    health_end(h, T0 + 1003, false, p2, 50);
    assert_true(health_begin(h, T0 + 1004, false, &p3));
    assert_false(p3);
    health_end(h, T0 + 1004, false, p3, -1);
    assert_int_equal(health_look(h, T0 + 1004).outstanding, 0);
    routing_state_free(s);
}

static void test_failed_probe_reopens_for_another_cooldown(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    for (int i = 0; i < 3; i++)
        attempt(h, T0, true);
    bool probe;
    assert_true(health_begin(h, T0 + 1500, false, &probe));
    assert_true(probe);
    health_end(h, T0 + 1600, true, probe, -1);
    health_view v = health_look(h, T0 + 1600);
    assert_int_equal(v.state, BREAKER_OPEN);
    assert_int_equal(v.open_ms, 1000);
    assert_false(health_begin(h, T0 + 2599, false, &probe));
    assert_true(health_begin(h, T0 + 2600, false, &probe)); /* half-open again */
    assert_true(probe);
    routing_state_free(s);
}

/* A request begun before the breaker opened and ending after does not close it, even when
 * it succeeds: only a probe decides. */
static void test_late_success_of_an_old_request_does_not_close_the_breaker(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    bool old;
    assert_true(health_begin(h, T0, false, &old));
    for (int i = 0; i < 3; i++)
        attempt(h, T0, true);
    health_end(h, T0 + 1, false, old, 30);
    assert_int_equal(health_look(h, T0 + 1).state, BREAKER_OPEN);
    routing_state_free(s);
}

/* ---- latency, outstanding, limits ------------------------------------------------------------ */

static void test_peak_ewma_takes_slow_samples_at_once_and_fast_ones_slowly(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    bool probe;
    assert_true(health_look(h, T0).ewma_ms == 0); /* never measured */
    health_begin(h, T0, false, &probe);
    health_end(h, T0, false, probe, 100);
    assert_true(health_look(h, T0).ewma_ms == 100); /* the first sample is the value */
    health_begin(h, T0, false, &probe);
    health_end(h, T0, false, probe, 10);
    assert_true(health_look(h, T0).ewma_ms == 100); /* no time passed: a fast sample does not count */
    health_begin(h, T0, false, &probe);
    health_end(h, T0 + 100, false, probe, 300);
    assert_true(health_look(h, T0).ewma_ms == 300); /* slower: taken at once */
    health_begin(h, T0, false, &probe);
    health_end(h, T0 + 100 + 10000, false, probe, 10); /* one time constant later */
    double expect = 300 * exp(-1.0) + 10 * (1 - exp(-1.0));
    assert_true(fabs(health_look(h, T0).ewma_ms - expect) < 1e-6);
    health_begin(h, T0, false, &probe);
    health_end(h, T0 + 200000, false, probe, 10); /* long after: the fast value is all there is */
    assert_true(fabs(health_look(h, T0).ewma_ms - 10) < 1e-3);
    /* an attempt with no head (ttfb < 0) leaves it alone */
    health_begin(h, T0, false, &probe);
    health_end(h, T0 + 300000, true, probe, -1);
    assert_true(fabs(health_look(h, T0).ewma_ms - 10) < 1e-3);
    routing_state_free(s);
}

static void test_outstanding_counts_begun_attempts(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    bool probe;
    for (int i = 0; i < 4; i++)
        assert_true(health_begin(h, T0, i > 1, &probe));
    assert_int_equal(health_look(h, T0).outstanding, 4);
    health_end(h, T0, false, probe, -1);
    assert_int_equal(health_look(h, T0).outstanding, 3);
    for (int i = 0; i < 3; i++)
        health_end(h, T0, false, probe, -1);
    assert_int_equal(health_look(h, T0).outstanding, 0);
    routing_state_free(s);
}

/* Hedging waits the target's p95 time to first byte: known once 10 successful replies are
 * measured, from the last 32 (the walk notes only successes). */
static void test_ttfb_p95_of_the_last_successes(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    uint32_t ms = 0;
    for (int i = 1; i <= 9; i++)
        health_note_ttfb(h, i * 10.0);
    assert_false(health_ttfb_p95(h, &ms)); /* 9 samples: not yet */
    for (int i = 10; i <= 40; i++)         /* 40 samples in all, 10…400 ms: the ring keeps 90…400 */
        health_note_ttfb(h, i * 10.0);
    assert_true(health_ttfb_p95(h, &ms));
    assert_int_equal(ms, 390); /* the 31st of 32 sorted samples (ceil(0.95 × 32) = 31) */
    routing_state_free(s);
}

static void test_rate_limit_mark_lasts_until_its_time(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    assert_false(health_look(h, T0).limited);
    health_limit(h, T0 + 2000);
    assert_true(health_look(h, T0 + 1000).limited);
    health_limit(h, T0 + 500); /* an earlier reset does not shorten it */
    assert_true(health_look(h, T0 + 1999).limited);
    assert_true(health_look(h, T0 + 1999).admits); /* limited is not broken */
    assert_false(health_look(h, T0 + 2000).limited);
    routing_state_free(s);
}

/* ---- retry budget ------------------------------------------------------------------------------ */

static void budget_half(routing_settings *s)
{
    s->budget_percent = 50;
    s->budget_min_retries = 1;
    s->budget_window_ms = 1000; /* two halves of 500 ms */
}

static int retries_granted(target_health *h, uint64_t now, int asked)
{
    int n = 0;
    for (int i = 0; i < asked; i++)
        n += health_retry_allowed(h, now);
    return n;
}

static void begin_requests(target_health *h, uint64_t now, int n)
{
    bool probe;
    for (int i = 0; i < n; i++) {
        assert_true(health_begin(h, now, false, &probe));
        health_end(h, now, false, probe, -1);
    }
}

static void test_retry_budget_is_a_share_of_requests_with_a_floor(void **state)
{
    (void)state;
    routing_state *s = state_with(budget_half);
    target_health *h = routing_health(s, "p", "m");
    assert_int_equal(retries_granted(h, T0, 5), 1); /* no requests yet: min_retries */
    begin_requests(h, T0, 10);
    assert_int_equal(retries_granted(h, T0, 10), 4); /* 50 % of 10, one already spent */
    /* retries are not requests: beginning a retry does not grow the budget */
    bool probe;
    for (int i = 0; i < 10; i++) {
        assert_true(health_begin(h, T0, true, &probe));
        health_end(h, T0, false, probe, -1);
    }
    assert_int_equal(retries_granted(h, T0, 5), 0);
    routing_state_free(s);
}

static void test_retry_budget_slides_with_time(void **state)
{
    (void)state;
    routing_state *s = state_with(budget_half);
    target_health *h = routing_health(s, "p", "m");
    begin_requests(h, T0, 10);
    assert_int_equal(retries_granted(h, T0, 10), 5);
    /* the next half: the old half weighs fully at its start, so nothing is left */
    assert_int_equal(retries_granted(h, T0 + 500, 10), 0);
    /* halfway through it the old half counts half: 5 requests, 2.5 retries; ten new requests
     * make 15, room for 7.5 − 2.5 = 5 more */
    begin_requests(h, T0 + 750, 10);
    assert_int_equal(retries_granted(h, T0 + 750, 10), 5);
    /* long after, everything is forgotten: the floor again */
    assert_int_equal(retries_granted(h, T0 + 5000, 10), 1);
    routing_state_free(s);
}

/* The budget remembers requests for the whole window: with window 1000 ms, 10 requests at
 * T0 allow 5 retries, and 900 ms later (inside the window) nearly all of them still count.
 * (An earlier version used two half-window buckets and forgot them after window/2.) */
static void test_retry_budget_remembers_requests_for_the_whole_window(void **state)
{
    (void)state;
    routing_state *s = state_with(budget_half);
    target_health *h = routing_health(s, "p", "m");
    begin_requests(h, T0, 10);
    assert_int_equal(retries_granted(h, T0 + 900, 10), 5);
    routing_state_free(s);
}

/* ---- registry --------------------------------------------------------------------------------- */

static void test_registry_gives_one_struct_per_provider_and_model(void **state)
{
    (void)state;
    routing_state *s = state_with(NULL);
    target_health *h = routing_health(s, "p", "m");
    assert_ptr_equal(routing_health(s, "p", "m"), h);
    assert_ptr_not_equal(routing_health(s, "p", "m2"), h);
    assert_ptr_not_equal(routing_health(s, "q", "m"), h);
    assert_ptr_not_equal(routing_health(s, "pm", ""), routing_health(s, "p", "m")); /* no concatenation */
    assert_string_equal(h->provider, "p");
    assert_string_equal(h->model, "m");
    /* many targets: every one found again (the buckets chain) */
    target_health *all[1000];
    char model[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(model, sizeof model, "model-%d", i);
        all[i] = routing_health(s, "p", model);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(model, sizeof model, "model-%d", i);
        assert_ptr_equal(routing_health(s, "p", model), all[i]);
        if (i) assert_ptr_not_equal(all[i], all[i - 1]);
    }
    /* the settings are the state's own copy */
    assert_int_equal(h->settings->breaker_failures, 3);
    routing_state_free(s);
}

/* ---- reload: adopting the old state ------------------------------------------------------------ */

/* Only provider "changed" is said to differ (its base URL moved, say). */
static bool same_unless_changed(const char *provider, void *ud)
{
    (void)ud;
    return strcmp(provider, "changed") != 0;
}

static void test_adopt_carries_health_of_unchanged_targets_only(void **state)
{
    (void)state;
    routing_state *old = state_with(NULL);
    /* p/m: breaker open, a slow EWMA, a rate-limit mark, retries taken from its budget */
    target_health *pm = routing_health(old, "p", "m");
    for (int i = 0; i < 3; i++)
        assert_true(attempt(pm, T0, true));
    bool probe;
    assert_true(health_begin(pm, T0 + 1, false, &probe) == false);
    health_limit(pm, T0 + 5000);
    for (int i = 0; i < 3; i++)
        assert_true(health_retry_allowed(pm, T0 + 2));
    assert_false(health_retry_allowed(pm, T0 + 2)); /* the floor of 3 is spent */
    /* p/fast: measured latency and times to first byte */
    target_health *fast = routing_health(old, "p", "fast");
    assert_true(health_begin(fast, T0, false, &probe));
    health_end(fast, T0, false, probe, 120);
    for (int i = 0; i < 12; i++)
        health_note_ttfb(fast, 100 + i);
    /* changed/m: its breaker is open too, but the provider is not the same any more */
    target_health *ch = routing_health(old, "changed", "m");
    for (int i = 0; i < 3; i++)
        assert_true(attempt(ch, T0, true));
    /* a half-open breaker with its one probe slot held by an attempt still running on old */
    target_health *half = routing_health(old, "p", "half");
    for (int i = 0; i < 3; i++)
        assert_true(attempt(half, T0, true));
    assert_true(health_begin(half, T0 + 1000, false, &probe) && probe);

    routing_state *fresh = state_with(NULL);
    target_health *known = routing_health(fresh, "p", "m"); /* named by the new config's trees */
    routing_state_seal(fresh);
    routing_state_adopt(fresh, old, same_unless_changed, NULL);

    assert_ptr_equal(routing_health(fresh, "p", "m"), known); /* filled in place, not replaced */
    health_view v = health_look(known, T0 + 10);
    assert_int_equal(v.state, BREAKER_OPEN);
    assert_int_equal(v.open_ms, 990);
    assert_true(v.limited);
    assert_false(health_retry_allowed(known, T0 + 10)); /* the budget spent on old stays spent */
    assert_true(known->settings == &fresh->settings);   /* fresh's own settings from here on */

    target_health *fast2 = routing_health(fresh, "p", "fast"); /* not named by fresh: created */
    assert_ptr_not_equal(fast2, fast);
    assert_true(health_look(fast2, T0).ewma_ms == 120);
    uint32_t p95;
    assert_true(health_ttfb_p95(fast2, &p95));
    assert_int_equal(p95, 111);
    assert_int_equal(health_look(fast2, T0).outstanding, 0);

    v = health_look(routing_health(fresh, "changed", "m"), T0 + 10);
    assert_int_equal(v.state, BREAKER_CLOSED); /* a changed provider starts afresh */
    assert_true(v.ewma_ms == 0);

    /* Half-open: fresh admits its own probe, since the one in flight reports to old. */
    v = health_look(routing_health(fresh, "p", "half"), T0 + 1001);
    assert_int_equal(v.state, BREAKER_HALF_OPEN);
    assert_true(v.admits);
    assert_false(health_look(half, T0 + 1001).admits);
    health_end(half, T0 + 1002, false, true, 5); /* the old attempt ends on old: no harm done */
    assert_int_equal(health_look(half, T0 + 1002).state, BREAKER_CLOSED);

    routing_state_free(old); /* fresh does not point into old */
    assert_int_equal(health_look(known, T0 + 1000).state, BREAKER_HALF_OPEN);
    routing_state_free(fresh);
}

/* A full registry in fresh: what does not fit is not carried (and nothing breaks). */
static void test_adopt_stays_within_the_registry_bound(void **state)
{
    (void)state;
    routing_state *old = state_with(NULL);
    char model[32];
    for (int i = 0; i < REGISTRY_MAX + 10; i++) {
        snprintf(model, sizeof model, "model-%d", i);
        assert_true(attempt(routing_health(old, "p", model), T0, true));
    }
    routing_state *fresh = state_with(NULL);
    routing_state_seal(fresh);
    routing_state_adopt(fresh, old, same_unless_changed, NULL);
    assert_int_equal(fresh->count, REGISTRY_MAX);
    routing_state_free(old);
    routing_state_free(fresh);
}

/* The defaults of a config without a `routing:` section. */
static void test_settings_defaults(void **state)
{
    (void)state;
    routing_settings s;
    config_routing_defaults(&s);
    assert_int_equal(s.retry.attempts, 2);
    assert_int_equal(s.max_attempts, 6);
    assert_true(status_set_has(&s.retry.on, 429) && status_set_has(&s.retry.on, 503) &&
                status_set_has(&s.retry.on, 529));
    assert_false(status_set_has(&s.retry.on, 501) || status_set_has(&s.retry.on, 400));
    assert_true(s.retry.use_retry_after);
    assert_int_equal(s.budget_percent, 20);
    assert_int_equal(s.budget_min_retries, 3);
    assert_int_equal(s.breaker_failures, 5);
    assert_int_equal(s.breaker_probes, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_failures_open_the_breaker),
        cmocka_unit_test(test_failure_rate_opens_only_past_min_requests),
        cmocka_unit_test(test_half_open_lets_through_only_its_probes),
        cmocka_unit_test(test_failed_probe_reopens_for_another_cooldown),
        cmocka_unit_test(test_late_success_of_an_old_request_does_not_close_the_breaker),
        cmocka_unit_test(test_peak_ewma_takes_slow_samples_at_once_and_fast_ones_slowly),
        cmocka_unit_test(test_outstanding_counts_begun_attempts),
        cmocka_unit_test(test_rate_limit_mark_lasts_until_its_time),
        cmocka_unit_test(test_ttfb_p95_of_the_last_successes),
        cmocka_unit_test(test_retry_budget_is_a_share_of_requests_with_a_floor),
        cmocka_unit_test(test_retry_budget_slides_with_time),
        cmocka_unit_test(test_registry_gives_one_struct_per_provider_and_model),
        cmocka_unit_test(test_settings_defaults),
        cmocka_unit_test(test_retry_budget_remembers_requests_for_the_whole_window),
        cmocka_unit_test(test_adopt_carries_health_of_unchanged_targets_only),
        cmocka_unit_test(test_adopt_stays_within_the_registry_bound),
    };
    return cmocka_run_group_tests_name("routing health", tests, NULL, NULL);
}
