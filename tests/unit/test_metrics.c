/* test_metrics.c — the Prometheus series: two workers' shards add up to one series per label
 * set, tokens and cost and histograms count what the records say, label values are escaped,
 * and a full table sends new label sets to the one overflow series instead of growing. */
#include "../../src/observe/metrics.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static exchange_record record(int status, long prompt, long completion, double cost, uint64_t total_ms)
{
    static record_attempt one = {.provider = "oa", .outcome = "ok", .status = 200, .ms = 2};
    exchange_record r = {.status = status,
                         .start_ns = 1000000000,
                         .first_byte_ns = 1000000000 + 1000000,
                         .end_ns = 1000000000 + total_ms * 1000000,
                         .usage = {.prompt = prompt, .completion = completion, .seen = true},
                         .cost_usd = cost,
                         .attempts = &one,
                         .nattempts = 1};
    return r;
}

static char *render(metrics *m)
{
    buf out;
    buf_init(&out, 64u << 20);
    metrics_gauges g = {.open_connections = 3, .log_dropped = 0, .version = "9.9.9"};
    metrics_render(m, &g, &out);
    buf_append(&out, "", 1);
    return out.data; /* the caller frees */
}

static void test_shards_sum(void **state)
{
    metrics *m = metrics_new();
    metrics_shard *a = metrics_shard_new(m), *b = metrics_shard_new(m);
    metrics_labels l = {
        .route = "chat", .model = "gpt", .provider = "oa", .ingress = "openai", .key = "key_1"};
    exchange_record r = record(200, 10, 5, 0.25, 30);
    metrics_add(a, &l, &r);
    metrics_add(b, &l, &r);
    r = record(503, 0, 0, -1, 3);
    r.usage.seen = false;
    metrics_add(b, &l, &r);
    char *text = render(m);
    const char *base =
        "{route=\"chat\",model=\"gpt\",provider=\"oa\",status=\"%s\",ingress=\"openai\",key=\"key_1\"";
    char want[512], label[256];
    snprintf(label, sizeof label, base, "2xx");
    snprintf(want, sizeof want, "aigw_requests_total%s} 2\n", label);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "aigw_tokens_total%s,kind=\"prompt\"} 20\n", label);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "aigw_cost_usd_total%s} 0.500000000\n", label);
    assert_non_null(strstr(text, want));
    /* 30 ms: not in the 0.025 bucket, in the 0.05 one, cumulative */
    snprintf(want, sizeof want, "aigw_request_duration_seconds_bucket%s,le=\"0.025\"} 0\n", label);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "aigw_request_duration_seconds_bucket%s,le=\"0.05\"} 2\n", label);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "aigw_request_duration_seconds_count%s} 2\n", label);
    assert_non_null(strstr(text, want));
    snprintf(label, sizeof label, base, "5xx");
    snprintf(want, sizeof want, "aigw_requests_total%s} 1\n", label);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "aigw_attempts_total{provider=\"oa\",outcome=\"ok\"} 3\n"));
    assert_non_null(strstr(text, "aigw_open_connections 3\n"));
    assert_non_null(strstr(text, "aigw_build_info{version=\"9.9.9\"} 1\n"));
    /* each family's header once */
    const char *first = strstr(text, "# TYPE aigw_requests_total counter");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE aigw_requests_total counter"));
    free(text);
    metrics_free(m);
}

static void test_escaping_and_bounds(void **state)
{
    metrics *m = metrics_new();
    metrics_shard *s = metrics_shard_new(m);
    exchange_record r = record(200, 1, 1, -1, 1);
    metrics_labels odd = {.route = "a\"b\\c\nd", .model = "m", .provider = "p", .ingress = "openai"};
    metrics_add(s, &odd, &r);
    char longname[METRICS_LABEL_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    metrics_labels big = {.route = longname, .model = "m", .provider = "p", .ingress = "openai"};
    metrics_add(s, &big, &r);
    char *text = render(m);
    assert_non_null(strstr(text, "route=\"a\\\"b\\\\c\\nd\""));
    assert_null(strstr(text, "xxxxxxxx"));
    assert_non_null(strstr(text, "aigw_requests_total{route=\"other\",model=\"m\""));
    free(text);

    /* more label sets than the table holds: the rest count under the overflow series */
    char name[32];
    for (int i = 0; i < METRICS_SERIES_MAX + 50; i++) {
        snprintf(name, sizeof name, "k%d", i);
        metrics_labels l = {.route = "r", .model = "m", .provider = "p", .ingress = "openai", .key = name};
        metrics_add(s, &l, &r);
    }
    text = render(m);
    size_t series = 0;
    for (const char *p = text; (p = strstr(p, "\naigw_requests_total{")); p++)
        series++;
    assert_true(series <= METRICS_SERIES_MAX + 1);
    assert_non_null(strstr(
        text, "aigw_requests_total{route=\"other\",model=\"other\",provider=\"other\",status=\"other\","
              "ingress=\"other\",key=\"other\"}"));
    assert_null(strstr(text, "aigw_metrics_overflow_total 0\n"));
    free(text);
    metrics_free(m);
}

/* Routing decisions: two shards add up per (route, kind, target); each kind writes its fixed
 * labels; an external outcome or refusal of NONE counts nothing; families are sorted and
 * written once even when empty. */
static void test_route_decisions(void **state)
{
    metrics *m = metrics_new();
    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE aigw_route_decisions_total counter\n"));
    assert_non_null(strstr(text, "# TYPE aigw_route_no_candidate_total counter\n"));
    assert_non_null(strstr(text, "# TYPE aigw_external_router_total counter\n"));
    assert_null(strstr(text, "aigw_route_decisions_total{"));
    free(text);

    metrics_shard *a = metrics_shard_new(m), *b = metrics_shard_new(m);
    metrics_route_decision(a, "auto", SIDE_NONE, "p1/cheap");
    metrics_route_decision(b, "auto", SIDE_NONE, "p1/cheap");
    metrics_route_decision(b, "auto", SIDE_NONE, "p1/big");
    metrics_route_decision(a, "smart", SIDE_STRONG, "p1/big");
    metrics_route_decision(a, "smart", SIDE_WEAK, "p1/cheap");
    metrics_route_decision(b, "smart", SIDE_WEAK, "p1/cheap");
    metrics_route_no_candidate(a, "auto", NO_CANDIDATE_ADEQUATE);
    metrics_route_no_candidate(b, "auto", NO_CANDIDATE_BUDGET);
    metrics_route_no_candidate(b, "auto", NO_CANDIDATE_NONE);
    for (record_external o = EXTERNAL_NONE; o < EXTERNAL_COUNT; o++)
        metrics_external_router(o % 2 ? a : b, "auto", o);
    metrics_external_router(a, "auto", EXTERNAL_TIMEOUT);
    text = render(m);
    static const char *const want[] = {
        "aigw_route_decisions_total{route=\"auto\",strategy=\"auto\",target=\"p1/big\",side=\"\"} 1\n"
        "aigw_route_decisions_total{route=\"auto\",strategy=\"auto\",target=\"p1/cheap\",side=\"\"} 2\n"
        "aigw_route_decisions_total{route=\"smart\",strategy=\"router\",target=\"p1/big\",side=\"strong\"} "
        "1\n"
        "aigw_route_decisions_total{route=\"smart\",strategy=\"router\",target=\"p1/cheap\",side=\"weak\"} "
        "2\n",
        "aigw_route_no_candidate_total{route=\"auto\",reason=\"no_adequate_candidate\"} 1\n"
        "aigw_route_no_candidate_total{route=\"auto\",reason=\"budget_exceeded\"} 1\n",
        "aigw_external_router_total{route=\"auto\",outcome=\"used\"} 1\n"
        "aigw_external_router_total{route=\"auto\",outcome=\"timeout\"} 2\n"
        "aigw_external_router_total{route=\"auto\",outcome=\"error\"} 1\n"
        "aigw_external_router_total{route=\"auto\",outcome=\"invalid\"} 1\n"
        "aigw_external_router_total{route=\"auto\",outcome=\"no_candidate\"} 1\n"
        "aigw_external_router_total{route=\"auto\",outcome=\"not_asked\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_non_null(strstr(text, want[i]));
    assert_null(strstr(text, "outcome=\"none\""));
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "\naigw_external_router_total{")); p++)
        lines++;
    assert_int_equal(lines, EXTERNAL_COUNT - 1);
    free(text);
    metrics_free(m);
}

/* Routing decisions' label values: escaped, too long is "other", and more (route, target) pairs
 * than the table holds count under the kind's all-"other" series. */
static void test_route_bounds(void **state)
{
    metrics *m = metrics_new();
    metrics_shard *s = metrics_shard_new(m);
    char longname[METRICS_LABEL_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    metrics_route_decision(s, longname, SIDE_NONE, "p/m");
    metrics_route_decision(s, "r\"q", SIDE_NONE, longname);
    char target[32];
    for (int i = 0; i < METRICS_ROUTE_SERIES_MAX + 40; i++) {
        snprintf(target, sizeof target, "p/m%d", i);
        metrics_route_decision(s, "many", SIDE_WEAK, target);
    }
    char *text = render(m);
    assert_null(strstr(text, "xxxxxxxx"));
    assert_non_null(strstr(
        text, "aigw_route_decisions_total{route=\"other\",strategy=\"auto\",target=\"p/m\",side=\"\"} 1\n"));
    assert_non_null(strstr(
        text,
        "aigw_route_decisions_total{route=\"r\\\"q\",strategy=\"auto\",target=\"other\",side=\"\"} 1\n"));
    size_t series = 0;
    for (const char *p = text; (p = strstr(p, "\naigw_route_decisions_total{route=\"many\"")); p++)
        series++;
    assert_int_equal(series, METRICS_ROUTE_SERIES_MAX - 2);
    char want[200];
    snprintf(
        want, sizeof want,
        "aigw_route_decisions_total{route=\"other\",strategy=\"router\",target=\"other\",side=\"weak\"} %d\n",
        40 + 2);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "aigw_metrics_overflow_total 42\n"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_sum),
        cmocka_unit_test(test_escaping_and_bounds),
        cmocka_unit_test(test_route_decisions),
        cmocka_unit_test(test_route_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
