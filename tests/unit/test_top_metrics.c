/* test_top_metrics.c — the pure half of `aigw top` (src/top/top_metrics.c): the metrics text
 * read into the overview's numbers, percentiles from histogram buckets, rates from two scrapes
 * (a restart included), and sparklines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/top/top_metrics.c"

static const char scrape1[] =
    "# HELP aigw_requests_total Requests.\n"
    "# TYPE aigw_requests_total counter\n"
    "aigw_requests_total{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",ingress=\"openai\",key="
    "\"k1\"} 90\n"
    "aigw_requests_total{route=\"main\",model=\"m\",provider=\"a\",status=\"5xx\",ingress=\"openai\",key="
    "\"k1\"} 6\n"
    "aigw_requests_total{route=\"main\",model=\"m\",provider=\"\",status=\"4xx\",ingress=\"openai\",key=\"\"}"
    " 4\n"
    "aigw_requests_total{route=\"\",model=\"\",provider=\"\",status=\"2xx\",ingress=\"openai\",key="
    "\"master\"} 500\n"
    "aigw_tokens_total{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",ingress=\"openai\",key="
    "\"k1\",kind=\"prompt\"} 1000\n"
    "aigw_tokens_total{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",ingress=\"openai\",key="
    "\"k1\",kind=\"completion\"} 500\n"
    "aigw_tokens_total{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",ingress=\"openai\",key="
    "\"k1\",kind=\"cached\"} 300\n"
    "aigw_cost_usd_total{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",ingress=\"openai\",key="
    "\"k1\"} 0.5\n"
    "aigw_request_duration_seconds_bucket{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",le=\"0."
    "1\"} 50\n"
    "aigw_request_duration_seconds_bucket{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",le=\"0."
    "5\"} 90\n"
    "aigw_request_duration_seconds_bucket{route=\"main\",model=\"m\",provider=\"a\",status=\"2xx\",le=\"+"
    "Inf\"} 100\n"
    "aigw_request_duration_seconds_bucket{route=\"\",model=\"\",provider=\"\",status=\"2xx\",le=\"0.1\"} "
    "500\n"
    "aigw_request_duration_seconds_bucket{route=\"\",model=\"\",provider=\"\",status=\"2xx\",le=\"0.5\"} "
    "500\n"
    "aigw_request_duration_seconds_bucket{route=\"\",model=\"\",provider=\"\",status=\"2xx\",le=\"+Inf\"} "
    "500\n"
    "aigw_attempts_total{provider=\"a\",outcome=\"ok\"} 90\n"
    "aigw_attempts_total{provider=\"a\",outcome=\"error_status\"} 6\n"
    "aigw_attempts_total{provider=\"a\",outcome=\"cancelled\"} 2\n"
    "aigw_cache_results_total{result=\"HIT\"} 30\n"
    "aigw_cache_results_total{result=\"MISS\"} 60\n"
    "aigw_cache_results_total{result=\"BYPASS\"} 10\n"
    "aigw_open_connections 7\n"
    "aigw_target_breaker_state{provider=\"a\",model=\"m\",state=\"open\"} 1\n"
    "aigw_target_in_flight{provider=\"a\",model=\"m\"} 3\n"
    "aigw_target_latency_ewma_seconds{provider=\"a\",model=\"m\"} 0.250000\n"
    "aigw_target_breaker_state{provider=\"we\\\"ird\\\\\",model=\"x\",state=\"closed\"} 0\n";

static void test_parse_sums_the_series(void **state)
{
    top_scrape s;
    assert_true(top_metrics_parse(scrape1, strlen(scrape1), &s));
    /* the admin API's own successful calls (no route, model, provider) are not traffic */
    assert_true(s.requests == 100);
    assert_true(s.errors == 10);
    assert_true(s.server_errors == 6);
    assert_true(s.tokens == 1500); /* prompt + completion; cached is inside prompt */
    assert_true(fabs(s.cost_usd - 0.5) < 1e-9);
    assert_true(s.cache_hits == 30 && s.cache_asked == 90);
    assert_true(s.open_connections == 7);
    assert_int_equal(s.duration.n, 3);
    assert_true(s.duration.count[0] == 50 && s.duration.count[2] == 100);
    assert_true(isinf(s.duration.le[2]));
    const top_target *t = top_scrape_target(&s, "a", "m");
    assert_non_null(t);
    assert_int_equal(t->breaker, 1);
    assert_true(t->in_flight == 3 && fabs(t->ewma_s - 0.25) < 1e-9);
    assert_non_null(top_scrape_target(&s, "we\"ird\\", "x")); /* escapes read */
    const top_provider_totals *p = top_scrape_provider(&s, "a");
    assert_true(p->attempts == 98 && p->failures == 6);
}

static void test_parse_refuses_what_is_not_metrics(void **state)
{
    top_scrape s;
    const char *junk = "<html>Not found</html>\n{\"error\":1}\n";
    assert_false(top_metrics_parse(junk, strlen(junk), &s));
    const char *bad = "aigw_requests_total{status=\"2xx} 5\n"     /* unterminated */
                      "aigw_requests_total{status=\"2xx\"} nan\n" /* not a number */
                      "aigw_requests_total{status=\"5xx\",route=\"r\"} 7 1700000000000\n";
    assert_true(top_metrics_parse(bad, strlen(bad), &s));
    assert_true(s.requests == 7 && s.server_errors == 7); /* a timestamp after the value is allowed */
}

static void test_quantile_interpolates_in_the_bucket(void **state)
{
    top_histogram h = {.n = 3, .le = {0.1, 0.5, INFINITY}, .count = {50, 90, 100}};
    /* p50: rank 50, the first bucket's top */
    assert_true(fabs(top_histogram_quantile(&h, NULL, 0.5) - 0.1) < 1e-9);
    /* p70: rank 70, 20 of the second bucket's 40 -> halfway from 0.1 to 0.5 */
    assert_true(fabs(top_histogram_quantile(&h, NULL, 0.7) - 0.3) < 1e-9);
    /* p95 in +Inf: the largest finite bound */
    assert_true(fabs(top_histogram_quantile(&h, NULL, 0.95) - 0.5) < 1e-9);
    /* of the difference only: then had 50 fast ones, the 50 since are slower */
    top_histogram then = {.n = 3, .le = {0.1, 0.5, INFINITY}, .count = {50, 50, 50}};
    assert_true(fabs(top_histogram_quantile(&h, &then, 0.5) - 0.35) < 1e-9);
    /* nothing observed in between: nothing to say */
    assert_true(isnan(top_histogram_quantile(&h, &h, 0.5)));
    top_histogram empty = {0};
    assert_true(isnan(top_histogram_quantile(&empty, NULL, 0.5)));
}

static void test_rates_from_two_scrapes(void **state)
{
    assert_true(top_rate(150, 100, 2) == 25);
    assert_true(top_rate(10, 100, 2) == 5); /* restarted: from zero */
    assert_true(top_rate(5, 1, 0) == 0);

    top_scrape a, b;
    top_metrics_parse(scrape1, strlen(scrape1), &a);
    b = a;
    b.requests += 20;
    b.errors += 5;
    b.tokens += 300;
    b.cost_usd += 0.02;
    b.cache_hits += 5;
    b.cache_asked += 10;
    top_rates r;
    top_metrics_rates(&b, &a, 2.0, &r);
    assert_true(fabs(r.requests_per_s - 10) < 1e-9);
    assert_true(fabs(r.error_rate - 0.25) < 1e-9);
    assert_true(fabs(r.tokens_per_s - 150) < 1e-9);
    assert_true(fabs(r.spend_per_min - 0.6) < 1e-9);
    assert_true(fabs(r.cache_hit_ratio - 0.5) < 1e-9);
    assert_true(isnan(r.p50_s)); /* the histograms did not move */
    /* no traffic: no error rate, not 0 % */
    top_metrics_rates(&a, &a, 1.0, &r);
    assert_true(r.requests_per_s == 0 && isnan(r.error_rate));
    /* the gateway restarted: its counters smaller than before; read from zero */
    top_scrape fresh = {0};
    fresh.valid = true;
    fresh.requests = 4;
    fresh.errors = 1;
    top_metrics_rates(&fresh, &a, 1.0, &r);
    assert_true(r.requests_per_s == 4 && fabs(r.error_rate - 0.25) < 1e-9);
}

static void test_sparkline(void **state)
{
    double v[] = {0, 1, 2, 4, NAN, 8};
    char out[64];
    size_t n = top_sparkline(v, 6, false, out, sizeof out);
    assert_int_equal(n, 6);
    assert_string_equal(out, "..:= #"); /* scaled to the maximum; no sample is blank */
    n = top_sparkline(v, 6, true, out, sizeof out);
    assert_int_equal(n, 5 * 3 + 1);
    assert_memory_equal(out, "\u2581", 3);
    assert_memory_equal(out + n - 3, "\u2588", 3);
    /* bounded by the room: whole cells only */
    n = top_sparkline(v, 6, true, out, 8);
    assert_int_equal(n, 6);
    double zero[] = {0, 0};
    top_sparkline(zero, 2, false, out, sizeof out);
    assert_string_equal(out, "..");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sums_the_series),
        cmocka_unit_test(test_parse_refuses_what_is_not_metrics),
        cmocka_unit_test(test_quantile_interpolates_in_the_bucket),
        cmocka_unit_test(test_rates_from_two_scrapes),
        cmocka_unit_test(test_sparkline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
