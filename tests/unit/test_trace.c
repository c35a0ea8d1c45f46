/* test_trace.c — W3C trace context: a traceparent is read only when it is a valid version-00
 * one (lower-case hex, no all-zero ids, the right length and dashes), its sampled flag is the
 * low bit, and what is formatted reads back the same. */
#include "../../src/observe/trace.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_parse_and_format(void **state)
{
    uint8_t trace[16], span[8];
    bool sampled = false;
    const char *ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_true(trace_parse_parent(ok, strlen(ok), trace, span, &sampled));
    assert_true(sampled);
    assert_int_equal(trace[0], 0x0a);
    assert_int_equal(span[7], 0x31);
    char out[56];
    trace_format_parent(out, trace, span, true);
    assert_string_equal(out, ok);
    const char *off = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02";
    assert_true(trace_parse_parent(off, strlen(off), trace, span, &sampled));
    assert_false(sampled);
}

static void test_invalid(void **state)
{
    uint8_t trace[16], span[8];
    bool sampled;
    const char *bad[] = {
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", /* upper case */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01", /* zero trace id */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", /* zero span id */
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", /* another version */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",  /* short */
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", /* separator */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g", /* flags */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(trace_parse_parent(bad[i], strlen(bad[i]), trace, span, &sampled));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
