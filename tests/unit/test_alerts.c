/* test_alerts.c — an alert rule's value over its window: the error rate of the attempts between
 * two samples (nothing said below min_requests), and the p95 time to first byte as the bound of
 * the bucket it falls in. */
#include "../../src/observe/alerts.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_error_rate(void **state)
{
    alert_rule r = {.kind = ALERT_ERROR_RATE, .threshold = 0.2, .window_s = 60, .min_requests = 10};
    metrics_provider_totals then = {.attempts = 100, .failed = 5}, now = {.attempts = 120, .failed = 15};
    double v = -1;
    assert_true(alerts_value(&r, &then, &now, &v));
    assert_true(v > 0.499 && v < 0.501); /* 10 of the 20 attempts in the window failed */
    now.attempts = 105;                  /* 5 attempts: too few to say */
    assert_false(alerts_value(&r, &then, &now, &v));
    r.min_requests = 0;
    assert_false(alerts_value(&r, &then, &then, &v)); /* none at all */
}

static void test_ttfb_p95(void **state)
{
    alert_rule r = {.kind = ALERT_TTFB_P95, .threshold = 1, .window_s = 60, .min_requests = 1};
    metrics_provider_totals then = {0}, now = {0};
    now.first_byte[2] = 90;  /* ≤ 2.5 ms */
    now.first_byte[12] = 10; /* ≤ 5 s */
    double v;
    assert_true(alerts_value(&r, &then, &now, &v));
    assert_true(v == 5); /* the 95th of 100 falls among the slow ten */
    now.first_byte[12] = 4;
    assert_true(alerts_value(&r, &then, &now, &v));
    assert_true(v == 0.0025);
    now.first_byte[METRICS_BUCKETS - 1] = 100; /* past the last bound */
    assert_true(alerts_value(&r, &then, &now, &v));
    assert_true(v == 240);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_rate),
        cmocka_unit_test(test_ttfb_p95),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
