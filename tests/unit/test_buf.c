/* test_buf.c — bounded buffers (limits refuse without changing anything, JSON escaping) and the
 * per-request arena (alignment, growth, reset keeping its first block). */
#include "../../src/util/buf.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/arena.h"

static void test_limit_refuses_and_keeps_content(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345", 5), BUF_OK);
    assert_int_equal(buf_append(&b, "6789", 4), BUF_TOO_BIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(buf_append(&b, "678", 3), BUF_OK);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(buf_printf(&b, "%d", 1), BUF_TOO_BIG);
    assert_int_equal(b.len, 8);
    buf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    buf_free(&b);
}

static void test_printf_grows_past_its_stack_buffer(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 4096);
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_printf(&b, "<%s>", big), BUF_OK);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1000], '>');
    buf_free(&b);
}

static void test_json_string_escaping(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1024);
    const char in[] = "a\"b\\c\n\r\t\x01\x1f"
                      "\xc3\xa9/";
    assert_int_equal(buf_append_json_string(&b, in, sizeof in - 1), BUF_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\xc3\xa9/\"");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_init(&b, 5);
    assert_int_equal(buf_append_json_string(&b, "\n\n", 2), BUF_TOO_BIG);
    buf_free(&b);
}

/* A byte at a time, as JSON says: the reference the eight-bytes-at-a-time writer must match. */
static size_t reference_escape(char *out, const unsigned char *s, size_t len)
{
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            out[n++] = '\\';
            out[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    return n;
}

/* Every byte that needs escaping, at every position of strings up to 40 bytes (so on both
 * sides of each eight-byte block), next to plain ASCII and UTF-8. */
static void test_json_string_matches_a_byte_at_a_time(void **state)
{
    (void)state;
    static const unsigned char specials[] = {0x00, 0x01, 0x08, 0x0a, 0x0d, 0x09, 0x1f,
                                             '"',  '\\', 0x20, 0x7f, 0x80, 0xc3, 0xff};
    unsigned char in[40];
    char want[6 * sizeof in + 2], got[6 * sizeof in + 2];
    for (size_t len = 0; len <= sizeof in; len++)
        for (size_t at = 0; at < (len ? len : 1); at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                for (size_t i = 0; i < len; i++)
                    in[i] = (unsigned char)('a' + i % 26);
                if (len) in[at] = specials[k];
                size_t n = reference_escape(want, in, len);
                char *end = put_json_string(got, (const char *)in, len);
                assert_int_equal((size_t)(end - got), n);
                assert_memory_equal(got, want, n);
            }
}

static void test_reset_frees_large_allocations(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1 << 20);
    char chunk[4096] = {0};
    for (int i = 0; i < 16; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), BUF_OK);
    buf_reset(&b);
    assert_null(b.data); /* a 64 KiB body does not stay pinned on an idle keep-alive connection */
    assert_int_equal(buf_append(&b, "x", 1), BUF_OK);
    buf_reset(&b);
    assert_non_null(b.data); /* small ones are kept for reuse */
    buf_free(&b);
}

/* The direct number appends write what printf writes, for every value the access log meets. */
static void test_number_appends_match_printf(void **state)
{
    (void)state;
    static const long long values[] = {0,
                                       1,
                                       9,
                                       10,
                                       999,
                                       1000,
                                       1001,
                                       123456789,
                                       -1,
                                       -999,
                                       -1000,
                                       -1001,
                                       9223372036854775807LL,
                                       -9223372036854775807LL - 1,
                                       99,
                                       100,
                                       101,
                                       9999,
                                       10000,
                                       99999,
                                       1000000000,
                                       1700000000123456789LL};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        buf got, want;
        buf_init(&got, 64);
        buf_init(&want, 64);
        buf_append_int(&got, values[i]);
        buf_printf(&want, "%lld", values[i]);
        assert_string_equal(got.data, want.data);
        if (values[i] > -9223372036854775807LL && values[i] < 9223372036854775807LL) {
            buf_reset(&got);
            buf_reset(&want);
            buf_append_milli(&got, values[i]);
            buf_printf(&want, "%s%lld.%03lld", values[i] < 0 ? "-" : "", llabs(values[i]) / 1000,
                       llabs(values[i]) % 1000);
            assert_string_equal(got.data, want.data);
        }
        buf_free(&got);
        buf_free(&want);
    }
    for (long long v = 1; v > 0 && v <= 1000000000000000000LL; v *= 10) /* each digit count, both sides */
        for (long long d = -1; d <= 1; d++) {
            char got[32], want[32];
            *put_int(got, v + d) = '\0';
            snprintf(want, sizeof want, "%lld", v + d);
            assert_string_equal(got, want);
        }
    buf b;
    buf_init(&b, 64);
    buf_append_milli(&b, -1000); /* the log's "no first byte" */
    assert_string_equal(b.data, "-1.000");
    buf_reset(&b);
    buf_append_milli(&b, 1369);
    assert_string_equal(b.data, "1.369");
    buf_reset(&b);
    buf_append_milli(&b, 7);
    assert_string_equal(b.data, "0.007");
    buf_free(&b);
}

static void test_arena(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 128);
    char *first = arena_alloc(&a, 1);
    for (int i = 0; i < 100; i++) {
        void *p = arena_alloc(&a, (size_t)i * 7 + 1);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xAB, (size_t)i * 7 + 1);
    }
    char *big = arena_alloc(&a, 100000); /* larger than any block so far */
    memset(big, 1, 100000);
    char *s = arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    arena_reset(&a);
    assert_ptr_equal(arena_alloc(&a, 1), first); /* the first block is reused after a reset */
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_refuses_and_keeps_content),
        cmocka_unit_test(test_printf_grows_past_its_stack_buffer),
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_json_string_matches_a_byte_at_a_time),
        cmocka_unit_test(test_reset_frees_large_allocations),
        cmocka_unit_test(test_number_appends_match_printf),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
