/* test_limits.c — the rate limiter's arithmetic with an injected clock: window edges, several
 * subjects at once (a refusal counts nothing), token settlement both ways, the tightest rule
 * in the headers, a full table (idle cells reused, live ones never stolen), and OpenAI's
 * duration format. */
#include "../../src/limits/limits.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "limits/limits_redis.h"

/* 2026-12-06T16:00:00Z, a minute's (and an hour's) start */
#define T0 1796572800000LL

static limits_subject subject(const char *id, int64_t rpm, int64_t rpd, int64_t tpm, int64_t tpd)
{
    return (limits_subject){.id = id, .id_len = strlen(id), .what = id, .max = {rpm, rpd, tpm, tpd}};
}

static void test_requests_per_minute_window_edges(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    limits_subject s = subject("k\x1fkey_a", 3, LIMITS_NONE, LIMITS_NONE, LIMITS_NONE);
    limits_ticket tk;
    for (int i = 0; i < 3; i++) {
        assert_true(limits_admit(t, &s, 1, 0, T0 + 1000 * i, &tk));
        assert_true(tk.has_requests);
        assert_int_equal(tk.requests_limit, 3);
        assert_int_equal(tk.requests_remaining, 2 - i);
        assert_int_equal(tk.requests_reset_ms, 60000 - 1000 * i);
    }
    /* the last millisecond of the minute: still refused, retry in 1 ms */
    assert_false(limits_admit(t, &s, 1, 0, T0 + 59999, &tk));
    assert_int_equal(tk.refused_subject, 0);
    assert_int_equal(tk.refused_rule, LIMITS_RPM);
    assert_int_equal(tk.retry_after_ms, 1);
    assert_int_equal(tk.requests_remaining, 0);
    assert_false(tk.too_large);
    /* the next minute starts from zero */
    assert_true(limits_admit(t, &s, 1, 0, T0 + 60000, &tk));
    assert_int_equal(tk.requests_remaining, 2);
    assert_int_equal(tk.requests_reset_ms, 60000);
    limits_table_free(t);
}

static void test_a_refusal_counts_nothing(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    /* the key allows 10 a minute, the key + model 2 */
    limits_subject s[2] = {subject("k\x1fkey_a", 10, 100, LIMITS_NONE, LIMITS_NONE),
                           subject("m\x1fkey_a\x1fgpt", 2, LIMITS_NONE, LIMITS_NONE, LIMITS_NONE)};
    limits_ticket tk;
    assert_true(limits_admit(t, s, 2, 0, T0, &tk));
    assert_true(limits_admit(t, s, 2, 0, T0, &tk));
    /* the tightest rule shows: the model's, 0 left */
    assert_int_equal(tk.requests_limit, 2);
    assert_int_equal(tk.requests_remaining, 0);
    for (int i = 0; i < 5; i++) {
        assert_false(limits_admit(t, s, 2, 0, T0 + 10, &tk));
        assert_int_equal(tk.refused_subject, 1);
    }
    /* the key alone was counted twice, not seven times */
    assert_true(limits_admit(t, s, 1, 0, T0 + 20, &tk));
    assert_int_equal(tk.requests_limit, 10);
    assert_int_equal(tk.requests_remaining, 7);
    limits_table_free(t);
}

static void test_requests_per_day(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    limits_subject s = subject("k\x1fkey_d", LIMITS_NONE, 2, LIMITS_NONE, LIMITS_NONE);
    limits_ticket tk;
    int64_t day_end = T0 - T0 % 86400000 + 86400000;
    assert_true(limits_admit(t, &s, 1, 0, T0, &tk));
    assert_true(limits_admit(t, &s, 1, 0, T0 + 3600000, &tk));
    assert_false(limits_admit(t, &s, 1, 0, T0 + 7200000, &tk));
    assert_int_equal(tk.refused_rule, LIMITS_RPD);
    assert_int_equal(tk.retry_after_ms, day_end - (T0 + 7200000));
    assert_true(limits_admit(t, &s, 1, 0, day_end, &tk));
    limits_table_free(t);
}

static void test_tokens_settle_with_real_usage(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    limits_subject s = subject("k\x1fkey_t", LIMITS_NONE, LIMITS_NONE, 100, LIMITS_NONE);
    limits_ticket tk;
    /* estimate 30, real 50: 20 more at settlement */
    assert_true(limits_admit(t, &s, 1, 30, T0, &tk));
    assert_int_equal(tk.tokens_remaining, 70);
    limits_settle(t, &tk, 50, T0 + 10);
    /* estimate 40 fits (50 + 40), real 10: 30 given back */
    assert_true(limits_admit(t, &s, 1, 40, T0 + 20, &tk));
    assert_int_equal(tk.tokens_remaining, 10);
    limits_settle(t, &tk, 10, T0 + 30);
    /* an empty prompt still counts one token */
    assert_true(limits_admit(t, &s, 1, 0, T0 + 40, &tk));
    assert_int_equal(tk.tokens_charged, 1);
    assert_int_equal(tk.tokens_remaining, 39);
    /* 40 would pass the limit */
    assert_false(limits_admit(t, &s, 1, 40, T0 + 50, &tk));
    assert_int_equal(tk.refused_rule, LIMITS_TPM);
    assert_int_equal(tk.tokens_remaining, 39);
    assert_false(tk.too_large);
    /* used up exactly: even an empty prompt is refused */
    assert_true(limits_admit(t, &s, 1, 39, T0 + 55, &tk));
    assert_int_equal(tk.tokens_remaining, 0);
    assert_false(limits_admit(t, &s, 1, 0, T0 + 56, &tk));
    /* a prompt larger than the whole limit: no wait helps */
    assert_false(limits_admit(t, &s, 1, 101, T0 + 50, &tk));
    assert_true(tk.too_large);
    limits_table_free(t);
}

static void test_settlement_after_the_window_passed(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    limits_subject s = subject("k\x1fkey_w", LIMITS_NONE, LIMITS_NONE, 100, LIMITS_NONE);
    limits_ticket tk, next;
    assert_true(limits_admit(t, &s, 1, 50, T0 + 59000, &tk));
    /* settled in the next minute: nothing is given back there, what the estimate missed is charged */
    limits_settle(t, &tk, 10, T0 + 61000);
    assert_true(limits_admit(t, &s, 1, 1, T0 + 61000, &next));
    assert_int_equal(next.tokens_remaining, 99);
    limits_settle(t, &tk, 80, T0 + 61000); /* a second ticket's view: 30 more than charged */
    assert_true(limits_admit(t, &s, 1, 1, T0 + 62000, &next));
    assert_int_equal(next.tokens_remaining, 68);
    limits_table_free(t);
}

static void test_full_table_reuses_idle_cells_only(void **state)
{
    (void)state;
    limits_table *t = limits_table_new(64);
    char id[32];
    limits_ticket tk;
    /* far more subjects than cells: the table never grows; some go untracked */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "k\x1fkey_%d", i);
        limits_subject s = subject(id, 1, LIMITS_NONE, LIMITS_NONE, LIMITS_NONE);
        assert_true(limits_admit(t, &s, 1, 0, T0, &tk));
    }
    assert_int_equal(t->mask + 1, 64);
    assert_true(limits_untracked(t) >= 1000 - 64);
    /* the cells that were counted are live this minute: a second request of a tracked key is refused */
    int refused = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "k\x1fkey_%d", i);
        limits_subject s = subject(id, 1, LIMITS_NONE, LIMITS_NONE, LIMITS_NONE);
        if (!limits_admit(t, &s, 1, 0, T0 + 1, &tk)) refused++;
    }
    assert_int_equal(refused, 64);
    /* next minute every cell is idle: new subjects take them */
    uint64_t before = limits_untracked(t);
    for (int i = 0; i < 64; i++) {
        snprintf(id, sizeof id, "k\x1fnew_%d", i);
        limits_subject s = subject(id, 1, LIMITS_NONE, LIMITS_NONE, LIMITS_NONE);
        assert_true(limits_admit(t, &s, 1, 0, T0 + 60000, &tk));
    }
    assert_true(limits_untracked(t) - before < 64);
    limits_table_free(t);
}

static void test_duration_format(void **state)
{
    (void)state;
    char out[32];
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{0, "0s"},          {20, "20ms"},     {1000, "1s"},        {1500, "1.5s"},
                 {59999, "59.999s"}, {360000, "6m0s"}, {3723000, "1h2m3s"}, {86400000, "24h0m0s"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        limits_format_duration(cases[i].ms, out, sizeof out);
        assert_string_equal(out, cases[i].text);
    }
}

static void test_redis_target(void **state)
{
    (void)state;
    limits_redis_target t;
    char err[256];
    assert_true(limits_redis_target_parse("redis://127.0.0.1:6380/2", &t, err, sizeof err));
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 2);
    assert_true(limits_redis_target_parse("redis://localhost", &t, err, sizeof err)); /* resolved now */
    assert_true(!strcmp(t.host, "127.0.0.1") || !strcmp(t.host, "::1"));
    assert_int_equal(t.port, 6379);
    assert_true(limits_redis_target_parse("unix:/run/redis/r.sock?db=3", &t, err, sizeof err));
    assert_string_equal(t.path, "/run/redis/r.sock");
    assert_int_equal(t.db, 3);
    assert_true(limits_redis_target_parse("/tmp/r.sock", &t, err, sizeof err));
    assert_string_equal(t.path, "/tmp/r.sock");
    static const struct {
        const char *url, *why;
    } bad[] = {{"http://x", "must be redis://"},      {"redis://:secret@h:1", "password"},
               {"redis://h:0", "bad port"},           {"redis://127.0.0.1:1/x", "bad database"},
               {"unix:/r.sock?db=x", "bad database"}, {"unix:", "empty"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(limits_redis_target_parse(bad[i].url, &t, err, sizeof err));
        if (!strstr(err, bad[i].why)) fail_msg("%s: '%s' does not say '%s'", bad[i].url, err, bad[i].why);
        assert_null(strstr(err, "secret"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_per_minute_window_edges),
        cmocka_unit_test(test_a_refusal_counts_nothing),
        cmocka_unit_test(test_requests_per_day),
        cmocka_unit_test(test_tokens_settle_with_real_usage),
        cmocka_unit_test(test_settlement_after_the_window_passed),
        cmocka_unit_test(test_full_table_reuses_idle_cells_only),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_redis_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
