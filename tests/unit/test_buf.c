/* test_buf.c — bounded buffers (limits refuse without changing anything, JSON escaping, text
 * made well-formed UTF-8, hex four bytes at a time against printf's) and the per-request arena (alignment,
 * growth, reset keeping its first block). */
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
    /* UTF-8: whole sequences pass; overlong forms, surrogates, past U+10FFFF, cut sequences and
     * stray bytes become U+FFFD, one per byte that starts nothing valid */
    static const struct {
        const char *in, *want;
    } utf8[] = {
        {"\xe2\x82\xac \xf0\x9f\x98\x80", "\"\xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
        {"a\xe2\x82", "\"a\\ufffd\\ufffd\""},
        {"\xff\xfeok", "\"\\ufffd\\ufffdok\""},
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        buf_init(&b, 1024);
        assert_int_equal(buf_append_json_string(&b, utf8[i].in, strlen(utf8[i].in)), BUF_OK);
        assert_string_equal(b.data, utf8[i].want);
        assert_int_equal(json_string_size(utf8[i].in, strlen(utf8[i].in)), b.len);
        buf_free(&b);
    }
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
        } else if (c >= 0x80) { /* a whole two-byte sequence (the only kind the inputs form), else U+FFFD */
            if (c >= 0xc2 && c <= 0xdf && i + 1 < len && (s[i + 1] & 0xc0) == 0x80) {
                out[n++] = (char)c;
                out[n++] = (char)s[++i];
            } else {
                n += (size_t)sprintf(out + n, "\\ufffd");
            }
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
    for (int digits = 0; digits <= 18; digits++) { /* each digit count, both sides */
        long long v = 1;
        for (int k = 0; k < digits; k++)
            v *= 10;
        for (long long d = -1; d <= 1; d++) {
            char got[32], want[32];
            *put_int(got, v + d) = '\0';
            snprintf(want, sizeof want, "%lld", v + d);
            assert_string_equal(got, want);
        }
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

/* Each case: the input, and what it becomes with every byte outside well-formed UTF-8 as U+FFFD. */
static void test_utf8_clean(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain ascii, longer than a word", "plain ascii, longer than a word"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}, /* é € 😀 */
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        {"cut \xc3", "cut \xef\xbf\xbd"},                         /* a sequence cut at the end */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* an overlong '/' */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
        {"12345678\x80", "12345678\xef\xbf\xbd"},                 /* past a whole word */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].in), want = strlen(cases[i].out);
        size_t size = utf8_clean_size(cases[i].in, len);
        assert_int_equal(size, want);
        char out[64];
        char *end = put_utf8_clean(out, cases[i].in, len, size);
        assert_int_equal((size_t)(end - out), want);
        assert_memory_equal(out, cases[i].out, want);
    }
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

static void test_fixed_text_leaves_out_a_piece_whole(void **state)
{
    (void)state;
    char out[12];
    memset(out, 'z', sizeof out);
    fixed_text t = {.out = out, .cap = sizeof out - 1};
    fixed_text_put(&t, "%s", "abc");
    fixed_text_put(&t, "-%d", 42);
    assert_string_equal(out, "abc-42");
    fixed_text_put(&t, "%s", "too long"); /* 6 + 8 > 11: left out, and nothing after it */
    assert_true(t.full);
    assert_int_equal(t.len, 6);
    assert_string_equal(out, "abc-42");
    fixed_text_put(&t, "%s", "x");
    assert_string_equal(out, "abc-42");
    fixed_text t2 = {.out = out, .cap = sizeof out - 1};
    fixed_text_put(&t2, "%s", "exactly 11!"); /* fills cap to the byte, NUL in the last one */
    assert_false(t2.full);
    assert_string_equal(out, "exactly 11!");
}

static void test_hex_matches_printf(void **state)
{
    (void)state;
    unsigned char bytes[19];
    char out[40], want[40];
    uint32_t seed = 1;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)round % sizeof bytes + 1;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* every value of every byte position once in the first rounds, then random */
            bytes[i] = round < 256 ? (unsigned char)(round + i * 37) : (unsigned char)(seed >> 16);
        }
        char *end = put_hex(out, bytes, n);
        assert_int_equal(end - out, 2 * n);
        *end = '\0';
        for (size_t i = 0; i < n; i++)
            snprintf(want + 2 * i, 3, "%02x", bytes[i]);
        assert_string_equal(out, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_text_leaves_out_a_piece_whole),
        cmocka_unit_test(test_limit_refuses_and_keeps_content),
        cmocka_unit_test(test_printf_grows_past_its_stack_buffer),
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_json_string_matches_a_byte_at_a_time),
        cmocka_unit_test(test_reset_frees_large_allocations),
        cmocka_unit_test(test_number_appends_match_printf),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_hex_matches_printf),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
