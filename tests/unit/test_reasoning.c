/* test_reasoning.c — the pure parts of the reasoning techniques: names and prefixes as OptiLLM
 * reads them, the conversation read as OptiLLM reads it, the prompts each step sends, a judge's
 * rating, the answer a sample gives and the majority vote, and cot_reflection's visible part cut
 * from a stream split at every byte. */
#include "../../src/reasoning/reasoning.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_names(void **unused)
{
    reasoning_technique t = REASON_NONE;
    size_t rest = 0;
    assert_int_equal(reasoning_from_prefix("moa-gpt-4o-mini", 15, &t, &rest), REASON_NAME_OK);
    assert_int_equal(t, REASON_MOA);
    assert_int_equal(rest, 4);
    assert_int_equal(reasoning_from_prefix("self_consistency-m", 18, &t, &rest), REASON_NAME_OK);
    assert_int_equal(t, REASON_SELF_CONSISTENCY);
    assert_int_equal(reasoning_from_prefix("gpt-4o-mini", 11, &t, &rest), REASON_NAME_NO);
    assert_int_equal(reasoning_from_prefix("moa-", 4, &t, &rest), REASON_NAME_NO);   /* no model */
    assert_int_equal(reasoning_from_prefix("moa", 3, &t, &rest), REASON_NAME_NO);    /* no dash */
    assert_int_equal(reasoning_from_prefix("none-x", 6, &t, &rest), REASON_NAME_NO); /* a model */
    assert_int_equal(reasoning_from_prefix("mcts-gpt", 8, &t, &rest), REASON_NAME_UNSUPPORTED);
    assert_int_equal(reasoning_from_prefix("moa&bon-gpt", 11, &t, &rest), REASON_NAME_UNSUPPORTED);
    assert_int_equal(reasoning_from_name("cot_reflection", 14, &t), REASON_NAME_OK);
    assert_int_equal(t, REASON_COT_REFLECTION);
    assert_int_equal(reasoning_from_name("auto", 4, &t), REASON_NAME_OK);
    assert_int_equal(t, REASON_NONE);
    assert_int_equal(reasoning_from_name("Moa", 3, &t), REASON_NAME_NO); /* OptiLLM's names are exact */
    assert_int_equal(reasoning_from_name("leap", 4, &t), REASON_NAME_UNSUPPORTED);
    assert_int_equal(reasoning_default_n(REASON_BON), 3);
    assert_int_equal(reasoning_default_n(REASON_SELF_CONSISTENCY), 5);
    assert_false(reasoning_takes_n(REASON_MOA));
}

static char *text_of(buf *b)
{
    buf_append(b, "", 1);
    return b->data;
}

static void test_conversation(void **unused)
{
    json_t *m = json_loads(
        "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":\"c\"},{\"role\":\"tool\",\"content\":\"t\"},"
        "{\"role\":\"user\",\"content\":\"d\"}]",
        0, NULL);
    buf system, query;
    buf_init(&system, 1024);
    buf_init(&query, 1024);
    assert_true(reasoning_read_conversation(m, &system, &query));
    assert_string_equal(text_of(&system), "Be brief.");
    assert_string_equal(text_of(&query), "User: a b\nAssistant: c\nUser: d");
    buf_free(&system);
    buf_free(&query);
    /* no user turn: refused; a conversation over the bound: refused */
    json_t *none = json_loads("[{\"role\":\"system\",\"content\":\"x\"}]", 0, NULL);
    buf_init(&system, 1024);
    buf_init(&query, 1024);
    assert_false(reasoning_read_conversation(none, &system, &query));
    buf_free(&system);
    buf_free(&query);
    buf_init(&system, 1024);
    buf_init(&query, 8);
    assert_false(reasoning_read_conversation(m, &system, &query));
    buf_free(&system);
    buf_free(&query);
    json_decref(m);
    json_decref(none);
}

static void test_prompts(void **unused)
{
    buf b;
    buf_init(&b, 1 << 20);
    assert_true(reasoning_re2(&b, "User: q?"));
    assert_string_equal(text_of(&b), "User: q?\nRead the question again: User: q?");
    buf_reset(&b);
    const char *cand[3] = {"one", "two", "three"};
    size_t len[3] = {3, 3, 5};
    assert_true(reasoning_moa_final(&b, "Q", cand, len, "crit", 4));
    const char *s = text_of(&b);
    assert_non_null(strstr(s, "Original query: Q"));
    assert_non_null(strstr(s, "Candidate 2:\ntwo"));
    assert_non_null(strstr(s, "Critiques of all candidates:\ncrit"));
    assert_non_null(strstr(s, "Please provide a final, optimized response to the original query:"));
    buf_reset(&b);
    /* a long candidate is cut at REASON_TEXT_MAX in the next step's prompt */
    char *big = malloc(REASON_TEXT_MAX * 3);
    memset(big, 'x', REASON_TEXT_MAX * 3);
    const char *bigc[3] = {big, big, big};
    size_t bigl[3] = {REASON_TEXT_MAX * 3, REASON_TEXT_MAX * 3, REASON_TEXT_MAX * 3};
    assert_true(reasoning_moa_critique(&b, "Q", bigc, bigl));
    assert_true(b.len < 3 * REASON_TEXT_MAX + 1024);
    free(big);
    buf_reset(&b);
    assert_true(reasoning_cot_system(&b, "SYS"));
    s = text_of(&b);
    assert_memory_equal(s, "SYS\n\n", 5);
    assert_non_null(strstr(s, "within the <output> tags"));
    buf_reset(&b);
    int count = 0;
    assert_true(reasoning_plan_list(&b, " first \n\n  second\n", 18, true, &count));
    assert_true(reasoning_plan_list(&b, "third", 5, true, &count));
    assert_string_equal(text_of(&b), "Observation 1: first\nObservation 2: second\nObservation 3: third");
    buf_free(&b);
    /* an output buffer's bound is reported */
    buf tiny;
    buf_init(&tiny, 16);
    assert_false(reasoning_plan_observations(&tiny, "problem"));
    buf_free(&tiny);
}

static void test_rating(void **unused)
{
    assert_true(reasoning_rating(" 7 ", 3) == 7);
    assert_true(reasoning_rating("8.5\n", 4) == 8.5);
    assert_true(reasoning_rating("7/10", 4) == 0); /* float() would refuse it too */
    assert_true(reasoning_rating("", 0) == 0);
    assert_true(reasoning_rating("nan", 3) == 0);
}

static const char *key(const char *text)
{
    static char k[64];
    reasoning_answer_key(text, strlen(text), k, sizeof k);
    return k;
}

static void test_answer_key(void **unused)
{
    assert_string_equal(key("so x = \\boxed{\\frac{1}{2}} and done 3"), "\\frac{1}{2}");
    assert_string_equal(key("Thinking 12...\nThe answer is 42.\nThanks 7"), "42");
    assert_string_equal(key("**Answer:** Paris"), "paris");
    assert_string_equal(key("we get 3, then 17."), "17");
    assert_string_equal(key("  Hello   World. "), "hello world");
    assert_string_equal(key("minus -5"), "-5");
    char small[4];
    assert_int_equal(reasoning_answer_key("The answer is 123456", 20, small, sizeof small), 3);
    assert_string_equal(small, "123");
}

static void test_majority(void **unused)
{
    const char *t[5] = {"the answer is 4", "The answer is 5", "so the answer is 4.", NULL, "answer: 5"};
    size_t l[5];
    for (int i = 0; i < 5; i++)
        l[i] = t[i] ? strlen(t[i]) : 0;
    int votes;
    assert_int_equal(reasoning_majority(t, l, 5, &votes), 0); /* a tie goes to the answer seen first */
    assert_int_equal(votes, 2);
    const char *u[4] = {"5", "4", "it is 4", "4!"};
    size_t m[4] = {1, 1, 7, 2};
    assert_int_equal(reasoning_majority(u, m, 4, &votes), 1);
    assert_int_equal(votes, 3);
    const char *none[2] = {NULL, NULL};
    size_t z[2] = {0, 0};
    assert_int_equal(reasoning_majority(none, z, 2, &votes), -1);
}

/* The visible part, fed in pieces of `step` bytes. */
static char *cot(const char *answer, size_t step)
{
    static char out[1024];
    reasoning_cot_filter f;
    reasoning_cot_init(&f, 4096);
    buf shown;
    buf_init(&shown, 4096);
    size_t len = strlen(answer);
    for (size_t i = 0; i < len; i += step)
        assert_true(reasoning_cot_feed(&f, answer + i, i + step > len ? len - i : step, &shown));
    reasoning_cot_finish(&f, &shown);
    reasoning_cot_free(&f);
    snprintf(out, sizeof out, "%.*s", (int)shown.len, shown.data ? shown.data : "");
    buf_free(&shown);
    return out;
}

static void test_cot_filter(void **unused)
{
    const char *tagged = "<thinking>x <reflection>y</reflection></thinking>\n<output>\n  The answer: 4 < 5.\n"
                         "</output> trailing";
    for (size_t step = 1; step <= strlen(tagged); step++)
        assert_string_equal(cot(tagged, step), "The answer: 4 < 5.");
    /* never opened: the whole answer; not closed: what it holds */
    assert_string_equal(cot("  plain answer \n", 3), "plain answer");
    assert_string_equal(cot("<thinking>t</thinking><output>partial </outp", 2), "partial </outp");
    assert_string_equal(cot("<output></output>", 1), "");
    /* what is shown before the end is shown as it comes: the thinking never is */
    reasoning_cot_filter f;
    reasoning_cot_init(&f, 4096);
    buf shown;
    buf_init(&shown, 4096);
    reasoning_cot_feed(&f, "<thinking>secret</thinking><output>Hel", 38, &shown);
    assert_int_equal(shown.len, 3);
    assert_memory_equal(shown.data, "Hel", 3);
    reasoning_cot_feed(&f, "lo wor", 6, &shown);
    assert_int_equal(shown.len, 9);
    reasoning_cot_feed(&f, "ld </out", 8, &shown); /* the space and the tag's start wait */
    assert_int_equal(shown.len, 11);
    assert_memory_equal(shown.data, "Hello world", 11);
    reasoning_cot_feed(&f, "put> more", 9, &shown);
    assert_int_equal(shown.len, 11);
    reasoning_cot_free(&f);
    buf_free(&shown);
    /* the held text is bounded */
    reasoning_cot_init(&f, 8);
    buf_init(&shown, 64);
    assert_false(reasoning_cot_feed(&f, "<thinking> long", 15, &shown));
    reasoning_cot_free(&f);
    buf_free(&shown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),      cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_prompts),    cmocka_unit_test(test_rating),
        cmocka_unit_test(test_answer_key), cmocka_unit_test(test_majority),
        cmocka_unit_test(test_cot_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
