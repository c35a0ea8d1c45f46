/* test_plan_external.c — what the external router's call comes to (pipeline/plan_external.c):
 * every way a call ends maps to the reason the decision's text shows and to one outcome of the
 * metrics' fixed set (aigw_external_router_total); an answer naming a candidate sent is used, by
 * provider and model or by a model only one candidate has, and anything else is invalid or names
 * no candidate. */
#include "../../src/pipeline/plan_external.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Each upstream result and status, and what the metrics count for it. */
static void test_call_outcomes(void **state)
{
    static const struct {
        upstream_result result;
        int status;
        external_reason reason;
        record_external outcome;
    } cases[] = {
        {UPSTREAM_OK, 200, REASON_CHOSEN, EXTERNAL_USED}, /* an answer: answer_choice decides */
        {UPSTREAM_CONNECT_TIMEOUT, 0, REASON_TIMEOUT, EXTERNAL_TIMEOUT},
        {UPSTREAM_FIRST_BYTE_TIMEOUT, 0, REASON_TIMEOUT, EXTERNAL_TIMEOUT},
        {UPSTREAM_IDLE_TIMEOUT, 200, REASON_TIMEOUT, EXTERNAL_TIMEOUT},
        {UPSTREAM_TOTAL_TIMEOUT, 200, REASON_TIMEOUT, EXTERNAL_TIMEOUT},
        {UPSTREAM_TOO_LARGE, 200, REASON_TOO_LARGE, EXTERNAL_INVALID},
        {UPSTREAM_FAILED, 503, REASON_STATUS, EXTERNAL_ERROR}, /* on_head refused it */
        {UPSTREAM_FAILED, 404, REASON_STATUS, EXTERNAL_ERROR},
        {UPSTREAM_CONNECT_FAILED, 0, REASON_UNREACHABLE, EXTERNAL_ERROR},
        {UPSTREAM_BROKEN, 200, REASON_UNREACHABLE, EXTERNAL_ERROR}, /* cut mid-answer */
        {UPSTREAM_FAILED, 0, REASON_UNREACHABLE, EXTERNAL_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        external_reason r = call_reason(cases[i].result, cases[i].status);
        assert_int_equal(r, cases[i].reason);
        assert_int_equal(external_reasons[r].outcome, cases[i].outcome);
    }
    /* every reason has its text and one outcome that is not NONE */
    for (int r = 0; r < REASON_COUNT; r++) {
        assert_non_null(external_reasons[r].note);
        assert_true(external_reasons[r].outcome > EXTERNAL_NONE &&
                    external_reasons[r].outcome < EXTERNAL_COUNT);
    }
    assert_int_equal(external_reasons[REASON_ONE_CANDIDATE].outcome, EXTERNAL_NOT_ASKED);
    assert_int_equal(external_reasons[REASON_NO_CANDIDATE].outcome, EXTERNAL_NO_CANDIDATE);
    assert_int_equal(external_reasons[REASON_INVALID_ANSWER].outcome, EXTERNAL_INVALID);
    assert_int_equal(external_reasons[REASON_NOT_STARTED].outcome, EXTERNAL_ERROR);
}

/* Three candidates: openai/cheap, openai/mid, gemini (Not Diamond's "google")/mid. */
static provider_config openai = {.name = "p1", .type = "openai"}, gemini = {.name = "g", .type = "gemini"};
static route_node children[3];
static route_node node = {.mode = ROUTE_AUTO, .children = children, .nchildren = 3};

static int choose(const char *answer, external_reason *why)
{
    children[0] = (route_node){.provider = &openai, .model = "cheap"};
    children[1] = (route_node){.provider = &openai, .model = "mid"};
    children[2] = (route_node){.provider = &gemini, .model = "mid"};
    plan_state ps = {.external = &node, .answer = (char *)answer, .answer_len = strlen(answer)};
    uint8_t ids[] = {0, 1, 2};
    *why = REASON_CHOSEN;
    return answer_choice(&ps, "asked", ids, 3, why);
}

static void test_answers(void **state)
{
    external_reason why;
    assert_int_equal(choose("{\"providers\":[{\"provider\":\"openai\",\"model\":\"mid\"}]}", &why), 1);
    assert_int_equal(why, REASON_CHOSEN);
    assert_int_equal(choose("{\"providers\":[{\"provider\":\"google\",\"model\":\"mid\"}]}", &why), 2);
    /* the model alone, when one candidate has it */
    assert_int_equal(choose("{\"providers\":[{\"provider\":\"other\",\"model\":\"cheap\"}]}", &why), 0);
    assert_int_equal(why, REASON_CHOSEN);
    /* two have it and the provider matches neither: no candidate */
    assert_int_equal(choose("{\"providers\":[{\"provider\":\"other\",\"model\":\"mid\"}]}", &why), -1);
    assert_int_equal(why, REASON_NO_CANDIDATE);
    assert_int_equal(choose("{\"providers\":[{\"provider\":\"openai\",\"model\":\"big\"}]}", &why), -1);
    assert_int_equal(why, REASON_NO_CANDIDATE);
    /* not JSON, no providers, no model */
    static const char *const invalid[] = {"<html>", "{\"providers\":[]}",
                                          "{\"providers\":[{\"provider\":\"openai\"}]}", "[1,2]", ""};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        assert_int_equal(choose(invalid[i], &why), -1);
        assert_int_equal(why, REASON_INVALID_ANSWER);
        assert_int_equal(external_reasons[why].outcome, EXTERNAL_INVALID);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_outcomes),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
