/* test_router_model.c — the learned router's model file: the shipped model parses and scores
 * in [0, 1] (a hard prompt above a trivial one), each kind of bad file is refused with its
 * line and a reason, the calibration turns "X % to strong" into a threshold, and model names'
 * thresholds are read strictly. */
#include "../../src/router/router_model.c" /* first: cmocka defines a fail() macro */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

extern const char aigw_router_model_text[];

static router_model *shipped(void)
{
    char err[256] = "";
    router_model *m =
        router_model_parse(aigw_router_model_text, strlen(aigw_router_model_text), err, sizeof err);
    if (!m) fail_msg("the shipped model: %s", err);
    return m;
}

static void test_shipped_model_scores(void **state)
{
    (void)state;
    router_model *m = shipped();
    assert_string_equal(router_model_name(m), "lr");
    assert_int_equal(router_model_bits(m), 16);
    /* a hard prompt in the benchmarks' manner (an MMLU statement question, mathematics, code:
     * tests/e2e/router.test.mjs sends the same) outranks a greeting */
    router_input hard = {
        .text = "Let f(x) = 4x^3 - 9x - 14. Prove that the equation f(x) = 0 has exactly one real root, then "
                "write a C++ function using Newton's method to find it to 1e-12 and analyse its convergence. "
                "Statement 1 | Every integral domain has characteristic 0. Statement 2 | ...",
        .turns = 1};
    hard.len = strlen(hard.text);
    router_input easy = {.text = "hi", .len = 2, .turns = 1}, empty = {.text = "", .len = 0, .turns = 1};
    double h = router_model_decide(m, &hard), e = router_model_decide(m, &easy),
           z = router_model_decide(m, &empty);
    assert_true(h >= 0 && h <= 1 && e >= 0 && e <= 1);
    assert_true(h > e);
    /* a text of a few hashes stays near the score of no text at all (router_hash_norm): two
     * buckets' weights do not decide on their own */
    assert_true(fabs(e - z) < 0.03);
    router_model_free(m);
}

static void test_calibration(void **state)
{
    (void)state;
    router_model *m = shipped();
    assert_true(router_model_threshold_for_percent(m, 0) > 1.0);
    assert_true(router_model_threshold_for_percent(m, 100) == 0.0);
    double t10 = router_model_threshold_for_percent(m, 10), t50 = router_model_threshold_for_percent(m, 50),
           t90 = router_model_threshold_for_percent(m, 90);
    assert_true(t10 >= t50 && t50 >= t90);
    assert_true(t10 > t90);
    double t505 = router_model_threshold_for_percent(m, 50.5);
    assert_true(t505 <= t50 && t505 >= router_model_threshold_for_percent(m, 51));
    router_model_free(m);
}

/* The shipped text with one line replaced (the first line starting with prefix). */
static char *with_line(const char *prefix, const char *line)
{
    const char *t = aigw_router_model_text;
    char key[64];
    snprintf(key, sizeof key, "\n%s", prefix); /* at a line's start: comments mention the words */
    const char *at = strstr(t, key);
    assert_non_null(at);
    at++;
    const char *eol = strchr(at, '\n');
    size_t out_len = strlen(t) - (size_t)(eol - at) + strlen(line);
    char *out = malloc(out_len + 1);
    size_t head = (size_t)(at - t);
    memcpy(out, t, head);
    memcpy(out + head, line, strlen(line));
    memcpy(out + head + strlen(line), eol, strlen(eol) + 1);
    return out;
}

static void refused(const char *text, const char *want)
{
    char err[256] = "";
    router_model *m = router_model_parse(text, strlen(text), err, sizeof err);
    if (m) fail_msg("accepted, expected: %s", want);
    if (!strstr(err, want)) fail_msg("message '%s' does not say '%s'", err, want);
    assert_non_null(strstr(err, "line "));
}

static void test_bad_files(void **state)
{
    (void)state;
    refused("", "the file ends early");
    refused("hello\n", "not an aigw router model of format 1");
    char *t;
    refused(t = with_line("features ", "features 1"), "features version 1"), free(t);
    refused(t = with_line("bits ", "bits 40"), "bits: an integer from 10 to 20"), free(t);
    refused(t = with_line("bias ", "bias nan"), "bias: expected a finite number"), free(t);
    refused(t = with_line("bias ", "bias 1 2"), "unexpected text"), free(t);
    refused(t = with_line("dense ", "dense 3 1 2 3"), "dense features"), free(t);
    refused(t = with_line("name ", "name Bad-Name"), "lower-case letters"), free(t);
    refused(t = with_line("calibration ", "calibration 101 0.5 0.9"), "non-increasing"), free(t);
    refused(t = with_line("weights", "weight"), "expected 'weights'"), free(t);
    /* a weights line with a stray character, and a file cut short */
    const char *w = strstr(aigw_router_model_text, "\nweights\n") + 9;
    char *bad = strdup(aigw_router_model_text);
    bad[(w - aigw_router_model_text) + 5] = 'g';
    refused(bad, "not a hex digit");
    bad[(w - aigw_router_model_text) + 5] = '\0';
    refused(bad, "weights: pairs of hex digits");
    free(bad);
    size_t n = strlen(aigw_router_model_text);
    char *extra = malloc(n + 8);
    memcpy(extra, aigw_router_model_text, n);
    memcpy(extra + n, "more\n", 6);
    refused(extra, "text after 'end'");
    free(extra);
    char err[256];
    assert_null(router_model_load("/nonexistent/x.model", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.model: No such file"));
}

static void test_thresholds(void **state)
{
    (void)state;
    double t, p;
    assert_true(router_parse_threshold("0.116", 5, &t, &p));
    assert_true(t == 0.116 && p < 0);
    assert_true(router_parse_threshold("30%", 3, &t, &p));
    assert_true(p == 30 && t < 0);
    assert_true(router_parse_threshold("1", 1, &t, &p) && t == 1);
    const char *bad[] = {"", "1.5", "-0.1", "abc", "101%", "%", "0.1x", "nan", "inf", "1e400"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (router_parse_threshold(bad[i], strlen(bad[i]), &t, &p)) fail_msg("'%s' was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_model_scores),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
