/* test_router_features.c — the learned router's features: the same input gives the same
 * hashes, the hashes stay within the buckets, a long prompt is read only at its head and tail
 * (a change in its middle changes nothing), markers and shape reach their dense features, and
 * odd bytes (NUL, invalid UTF-8) are taken as they are. */
#include "../../src/router/router_features.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

static router_features extract(const char *text, size_t len, unsigned bits)
{
    router_input in = {.text = text, .len = len, .turns = 1};
    router_features f;
    router_features_extract(&in, bits, &f);
    return f;
}

static void test_deterministic_and_bounded(void **state)
{
    (void)state;
    const char *t = "What is the derivative of x^2? Explain step by step.";
    router_features a = extract(t, strlen(t), 12), b = extract(t, strlen(t), 12);
    assert_int_equal(a.nhashes, b.nhashes);
    assert_memory_equal(a.hashes, b.hashes, a.nhashes * sizeof a.hashes[0]);
    /* 11 words: 11 unigrams + 10 bigrams, and each word but "2" its length in character
     * trigrams ("<what>": <wh wha hat at>): 4+2+3+10+2+1+7+4+2+4 = 39 */
    assert_int_equal(a.nhashes, 21 + 39);
    for (size_t i = 0; i < a.nhashes; i++)
        assert_true(a.hashes[i] < (1u << 12));
    /* case does not matter; numbers are one token */
    router_features c = extract("WHAT is 12 plus 7", 17, 16), d = extract("what IS 3 plus 99", 17, 16);
    assert_memory_equal(c.hashes, d.hashes, c.nhashes * sizeof c.hashes[0]);
    router_features e = extract("what is 3 minus 99", 18, 16);
    assert_memory_not_equal(c.hashes, e.hashes, c.nhashes * sizeof c.hashes[0]);
}

static void test_long_text_head_and_tail_only(void **state)
{
    (void)state;
    size_t len = 200000;
    char *t = malloc(len);
    for (size_t i = 0; i < len; i++)
        t[i] = "abc de"[i % 6];
    router_features a = extract(t, len, 16);
    assert_true(a.nhashes <= ROUTER_MAX_HASHES);
    memcpy(t + len / 2, "```#include def function", 24); /* the middle is never read */
    router_features b = extract(t, len, 16);
    assert_int_equal(a.nhashes, b.nhashes);
    assert_memory_equal(a.hashes, b.hashes, a.nhashes * sizeof a.hashes[0]);
    assert_true(b.dense[2] == 0.0f);
    memcpy(t + len - 30, "```#include def function", 24); /* the tail is */
    router_features c = extract(t, len, 16);
    assert_true(c.dense[2] > 0.0f);
    assert_true(c.dense[0] > 1.0f); /* log of the whole length */
    free(t);
}

static void test_markers_and_shape(void **state)
{
    (void)state;
    const char *code = "```python\ndef f(x):\n    return x\n```";
    router_features f = extract(code, strlen(code), 16);
    assert_true(f.dense[2] > 0.3f);
    const char *mc = "Which is prime?\nA. 4\nB. 7\nC. 9\nD. 12\nAnswer:";
    f = extract(mc, strlen(mc), 16);
    assert_true(f.dense[11] == 1.0f);
    assert_true(f.dense[12] > 0.0f);
    router_input in = {
        .text = "ok", .len = 2, .turns = 3, .tools = true, .tool_result_last = true, .system_bytes = 30000};
    router_features_extract(&in, 16, &f);
    assert_true(f.dense[6] == 0.5f);
    assert_true(f.dense[7] == 1.0f);
    assert_true(f.dense[8] == 1.0f);
    assert_true(f.dense[9] > 0.8f);
    const char *jp = "これは日本語の文です";
    f = extract(jp, strlen(jp), 16);
    assert_true(f.dense[10] > 0.9f);
}

static void test_odd_bytes(void **state)
{
    (void)state;
    const char t[] = {'a', '\0', (char)0xff, (char)0xc3, ' ', 'b', '\n', '\0'};
    router_features f = extract(t, sizeof t, 10);
    assert_true(f.nhashes >= 2);
    f = extract(NULL, 0, 16);
    assert_int_equal(f.nhashes, 0);
    router_input in = {.text = "x", .len = 1};
    router_features_extract(&in, 99, &f); /* bits clamped */
    assert_true(f.hashes[0] < (1u << ROUTER_BITS_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_bounded),
        cmocka_unit_test(test_long_text_head_and_tail_only),
        cmocka_unit_test(test_markers_and_shape),
        cmocka_unit_test(test_odd_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
