/* test_units.c — sizes and durations as the config writes them: every unit, the refusals
 * (unknown units, signs, spaces, overflow), and that a refusal leaves the output alone. */
#include "../../src/util/units.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static long long size_of(const char *s)
{
    long long v = -7;
    if (!units_parse_size(s, &v)) fail_msg("'%s' was refused as a size", s);
    return v;
}

static long long duration_of(const char *s)
{
    long long v = -7;
    if (!units_parse_duration(s, &v)) fail_msg("'%s' was refused as a duration", s);
    return v;
}

/* Costs as plain decimals: never 9e-06, trailing zeros trimmed, bounded for absurd values. */
static void test_decimal(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {9e-06, "0.000009"},
        {0, "0"},
        {1.5, "1.5"},
        {2, "2"},
        {0.0000123456, "0.0000123456"},
        {1.875e-8, "0.00000001875"},
        {3e-13, "0"},
        {0.1 + 0.2, "0.3"},
        {123.456, "123.456"},
        {1e20, "1e+20"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[UNITS_DECIMAL_MAX];
        size_t n = units_format_decimal(out, cases[i].v);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(size_of("0"), 0);
    assert_int_equal(size_of("65536"), 65536);
    assert_int_equal(size_of("12b"), 12);
    assert_int_equal(size_of("64k"), 64 * 1024);
    assert_int_equal(size_of("64KB"), 64 * 1024);
    assert_int_equal(size_of("64KiB"), 64 * 1024);
    assert_int_equal(size_of("16m"), 16 * 1024 * 1024);
    assert_int_equal(size_of("16MiB"), 16 * 1024 * 1024);
    assert_int_equal(size_of("2g"), 2LL * 1024 * 1024 * 1024);
    assert_int_equal(size_of("1GiB"), 1024LL * 1024 * 1024);
}

static void test_sizes_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "-1k",
        "1 k",
        "1kk",
        "1t",
        "1.5k",
        "0x10",
        "64kibs",
        "9223372036854775807k",
        "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long v = 42;
        if (units_parse_size(bad[i], &v)) fail_msg("'%s' was read as a size (%lld)", bad[i], v);
        assert_int_equal(v, 42);
    }
    long long v;
    assert_true(units_parse_size("9223372036854775807", &v)); /* the largest, without a unit */
    assert_int_equal(v, 9223372036854775807LL);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(duration_of("0"), 0);
    assert_int_equal(duration_of("250"), 250);
    assert_int_equal(duration_of("500ms"), 500);
    assert_int_equal(duration_of("10s"), 10000);
    assert_int_equal(duration_of("2m"), 120000);
    assert_int_equal(duration_of("1h"), 3600000);
}

static void test_durations_refused(void **state)
{
    (void)state;
    /* Units are lower case: "1M" could be read as a month or a megabyte, and is neither. */
    static const char *const bad[] = {
        "", "s", "-5s", "5 s", "5sec", "1M", "1S", "1H", "1d", "1.5s", "2562047788015216h", "ms10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long v = 42;
        if (units_parse_duration(bad[i], &v)) fail_msg("'%s' was read as a duration (%lld)", bad[i], v);
        assert_int_equal(v, 42);
    }
    long long v;
    assert_true(units_parse_duration("2562047788015h", &v)); /* just under the overflow */
    assert_int_equal(v, 2562047788015LL * 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal),           cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_sizes_refused),     cmocka_unit_test(test_durations),
        cmocka_unit_test(test_durations_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
