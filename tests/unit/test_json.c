/* test_json.c — the body scanner: what it accepts, what it rejects and why, and the spans it
 * reports (the fast path splices the model name at exactly those bytes). */
#include "../../src/util/json.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static bool scan(const char *text, json_field *fields, size_t n, const char **why)
{
    size_t at;
    return json_scan_object(text, strlen(text), fields, n, why, &at);
}

static void span_is(const char *text, const json_field *f, json_kind type, const char *expected)
{
    assert_int_equal(f->type, type);
    assert_int_equal(f->end - f->start, strlen(expected));
    assert_memory_equal(text + f->start, expected, strlen(expected));
}

static void test_spans_of_top_level_members(void **state)
{
    (void)state;
    const char *body =
        " {\"messages\": [{\"model\": \"inner\"}], \"model\" : \"gpt-4o\",\n"
        "  \"stream\":true, \"n\": -1.5e3, \"tools\": {\"a\": [1, {\"b\": null}]}, \"x\": false} ";
    json_field f[] = {{.key = "model"}, {.key = "stream"}, {.key = "n"},       {.key = "tools"},
                      {.key = "x"},     {.key = "absent"}, {.key = "messages"}};
    const char *why = NULL;
    assert_true(scan(body, f, 7, &why));
    span_is(body, &f[0], JSON_KIND_STRING, "\"gpt-4o\""); /* the nested "model" is not reported */
    span_is(body, &f[1], JSON_KIND_TRUE, "true");
    span_is(body, &f[2], JSON_KIND_NUMBER, "-1.5e3");
    span_is(body, &f[3], JSON_KIND_OBJECT, "{\"a\": [1, {\"b\": null}]}");
    span_is(body, &f[4], JSON_KIND_FALSE, "false");
    assert_int_equal(f[5].type, JSON_KIND_ABSENT);
    span_is(body, &f[6], JSON_KIND_ARRAY, "[{\"model\": \"inner\"}]");
}

static void test_last_duplicate_wins(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"a\",\"model\":\"bb\"}";
    json_field f[] = {{.key = "model"}};
    assert_true(scan(body, f, 1, NULL));
    span_is(body, &f[0], JSON_KIND_STRING, "\"bb\"");
}

/* Providers decode keys: "mod\u0065l" is model to them, so it is to the scanner too — else a
 * client could route by one model and be served another (the last duplicate wins). */
static void test_escaped_keys_match_as_decoded(void **state)
{
    (void)state;
    const char *text = "{\"model\":\"cheap\",\"messages\":[],\"mod\\u0065l\":\"dear\",\"s\\/t\":1}";
    json_field f[] = {{.key = "model"}, {.key = "s/t"}, {.key = "mode"}};
    const char *why;
    size_t at;
    assert_true(json_scan_object(text, strlen(text), f, 3, &why, &at));
    span_is(text, &f[0], JSON_KIND_STRING, "\"dear\"");
    span_is(text, &f[1], JSON_KIND_NUMBER, "1");
    assert_int_equal(f[2].type, JSON_KIND_ABSENT); /* a prefix is no match */
}

static void test_empty_containers(void **state)
{
    (void)state;
    const char *body = "{\"a\":{},\"b\":[],\"c\":[[]],\"d\":{\"e\":{}}}";
    json_field f[] = {{.key = "a"}, {.key = "b"}, {.key = "c"}, {.key = "d"}};
    assert_true(scan(body, f, 4, NULL));
    span_is(body, &f[0], JSON_KIND_OBJECT, "{}");
    span_is(body, &f[1], JSON_KIND_ARRAY, "[]");
    span_is(body, &f[2], JSON_KIND_ARRAY, "[[]]");
    span_is(body, &f[3], JSON_KIND_OBJECT, "{\"e\":{}}");
    assert_true(scan("{}", NULL, 0, NULL));
}

static void test_rejections_name_the_fault(void **state)
{
    (void)state;
    static const struct {
        const char *text, *reason;
    } cases[] = {
        {"", "empty body"},
        {"   ", "empty body"},
        {"[1,2]", "body is not a JSON object"},
        {"\"str\"", "body is not a JSON object"},
        {"{\"a\":1,}", "expected a member name"},
        {"{\"a\":[1,]}", "unexpected character"},
        {"{\"a\":01}", "expected ',' or '}'"},
        {"{\"a\":1.}", "bad number"},
        {"{\"a\":-}", "bad number"},
        {"{\"a\":1e}", "bad number"},
        {"{\"a\":\"\\x\"}", "bad escape in string"},
        {"{\"a\":\"\\u12G4\"}", "bad \\u escape"},
        {"{\"a\":\"tab\there\"}", "control character in string"},
        {"{\"a\":\"open", "unterminated string"},
        {"{\"a\":[1}", "expected ',' or ']'"},
        {"{\"a\":{\"b\":1]}", "expected ',' or '}'"},
        {"{\"a\" 1}", "expected ':'"},
        {"{\"a\":tru}", "unexpected token"},
        {"{\"a\":nul}", "unexpected token"},
        {"{\"a\":1} x", "trailing characters after JSON value"},
        {"{\"a\":1}{}", "trailing characters after JSON value"},
        {"{\"a\":1", "unexpected end of input"},
        {"{'a':1}", "expected a member name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_field f[] = {{.key = "a"}};
        const char *why = NULL;
        if (scan(cases[i].text, f, 1, &why)) fail_msg("accepted: %s", cases[i].text);
        if (strcmp(why, cases[i].reason) != 0)
            fail_msg("%s: reason '%s', expected '%s'", cases[i].text, why, cases[i].reason);
        assert_int_equal(f[0].type, JSON_KIND_ABSENT); /* nothing half-reported on failure */
    }
}

static void test_utf8_checked(void **state)
{
    (void)state;
    const char *good = "{\"a\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}";
    assert_true(scan(good, NULL, 0, NULL));
    static const char *const bad[] = {
        "{\"a\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"a\":\"\xe0\x80\xaf\"}",     /* overlong, 3 bytes */
        "{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate encoded in UTF-8 */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"a\":\"\xe2\x82\"}",         /* truncated */
        "{\"a\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        assert_false(scan(bad[i], NULL, 0, &why));
        assert_string_equal(why, "invalid UTF-8 in string");
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* {"a": [[[...]]]}: the object counts as one level. */
    char text[1024];
    for (int depth = JSON_MAX_DEPTH - 1; depth <= JSON_MAX_DEPTH; depth++) {
        size_t n = 0;
        n += (size_t)snprintf(text + n, sizeof text - n, "{\"a\":");
        for (int i = 0; i < depth; i++)
            text[n++] = '[';
        for (int i = 0; i < depth; i++)
            text[n++] = ']';
        text[n++] = '}';
        text[n] = '\0';
        const char *why = NULL;
        bool ok = scan(text, NULL, 0, &why);
        if (depth + 1 <= JSON_MAX_DEPTH)
            assert_true(ok);
        else {
            assert_false(ok);
            assert_string_equal(why, "nesting too deep");
        }
    }
    /* A hostile body of 100,000 '[' is refused without recursion. */
    static char deep[100010];
    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', 100000);
    deep[100005] = '\0';
    assert_false(scan(deep, NULL, 0, NULL));
}

static void test_string_decode(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 256);
    const char *text = "\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\\ud800x\"";
    size_t len;
    char *s = json_string_decode(&a, text, 0, strlen(text), &len);
    const char expected[] = "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbdx";
    assert_int_equal(len, sizeof expected - 1);
    assert_memory_equal(s, expected, len);
    assert_int_equal(s[len], '\0');
    s = json_string_decode(&a, "\"\"", 0, 2, &len);
    assert_int_equal(len, 0);
    arena_free(&a);
}

/* The lexer's tokens for a body with every kind of value: names, spans, depths, closes. */
static void test_lexer_tokens(void **state)
{
    (void)state;
    const char *text =
        " {\"a\" : [1, \"x\\n\", {}], \"b\":{\"c\":null,\"d\":true},\"e\":-2.5e3, \"f\":false} ";
    static const struct {
        json_token t;
        json_kind kind;   /* VALUE and CLOSE */
        const char *span; /* KEY and VALUE: the bytes at [start, end) (a container: its bracket) */
        int depth;
    } want[] = {
        {JSON_TOKEN_VALUE, JSON_KIND_OBJECT, "{", 1},
        {JSON_TOKEN_KEY, 0, "\"a\"", 1},
        {JSON_TOKEN_VALUE, JSON_KIND_ARRAY, "[", 2},
        {JSON_TOKEN_VALUE, JSON_KIND_NUMBER, "1", 2},
        {JSON_TOKEN_VALUE, JSON_KIND_STRING, "\"x\\n\"", 2},
        {JSON_TOKEN_VALUE, JSON_KIND_OBJECT, "{", 3},
        {JSON_TOKEN_CLOSE, JSON_KIND_OBJECT, NULL, 2},
        {JSON_TOKEN_CLOSE, JSON_KIND_ARRAY, NULL, 1},
        {JSON_TOKEN_KEY, 0, "\"b\"", 1},
        {JSON_TOKEN_VALUE, JSON_KIND_OBJECT, "{", 2},
        {JSON_TOKEN_KEY, 0, "\"c\"", 2},
        {JSON_TOKEN_VALUE, JSON_KIND_NULL, "null", 2},
        {JSON_TOKEN_KEY, 0, "\"d\"", 2},
        {JSON_TOKEN_VALUE, JSON_KIND_TRUE, "true", 2},
        {JSON_TOKEN_CLOSE, JSON_KIND_OBJECT, NULL, 1},
        {JSON_TOKEN_KEY, 0, "\"e\"", 1},
        {JSON_TOKEN_VALUE, JSON_KIND_NUMBER, "-2.5e3", 1},
        {JSON_TOKEN_KEY, 0, "\"f\"", 1},
        {JSON_TOKEN_VALUE, JSON_KIND_FALSE, "false", 1},
        {JSON_TOKEN_CLOSE, JSON_KIND_OBJECT, NULL, 0},
        {JSON_TOKEN_END, 0, NULL, 0},
    };
    json_lexer lx;
    json_lexer_init(&lx, text, strlen(text));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_token t = json_lexer_next(&lx);
        if (t != want[i].t) fail_msg("token %zu: %d, expected %d", i, t, want[i].t);
        assert_int_equal(lx.depth, want[i].depth);
        if (t == JSON_TOKEN_VALUE || t == JSON_TOKEN_CLOSE) assert_int_equal(lx.kind, want[i].kind);
        if (want[i].span) {
            assert_int_equal(lx.end - lx.start, strlen(want[i].span));
            assert_memory_equal(text + lx.start, want[i].span, strlen(want[i].span));
        }
        if (t == JSON_TOKEN_CLOSE)
            assert_int_equal(text[lx.end - 1], want[i].kind == JSON_KIND_OBJECT ? '}' : ']');
        if (t == JSON_TOKEN_VALUE && lx.kind == JSON_KIND_STRING) assert_true(lx.escaped);
        if (t == JSON_TOKEN_KEY) assert_false(lx.escaped);
    }
    /* any value at the top; an error stays */
    json_lexer_init(&lx, "[1]", 3);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_VALUE);
    assert_int_equal(lx.kind, JSON_KIND_ARRAY);
    json_lexer_init(&lx, " 7 ", 3);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_VALUE);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_END);
    json_lexer_init(&lx, "[1,]", 4);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_VALUE);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_VALUE);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_ERROR);
    assert_string_equal(lx.error, "unexpected character");
    assert_int_equal(lx.pos, 3);
    assert_int_equal(json_lexer_next(&lx), JSON_TOKEN_ERROR);
}

/* exact keeps a lone surrogate apart from U+FFFD (the cache key); the same otherwise. */
static void test_string_unescape_exact(void **state)
{
    (void)state;
    const char *text = "\"\\ud800\\ufffd\\ud83d\\ude00\\udc00\"";
    char out[64];
    size_t n = json_string_unescape(out, text, 0, strlen(text), true);
    const char exact[] = "\xed\xa0\x80\xef\xbf\xbd\xf0\x9f\x98\x80\xed\xb0\x80";
    assert_int_equal(n, sizeof exact - 1);
    assert_memory_equal(out, exact, n);
    n = json_string_unescape(out, text, 0, strlen(text), false);
    const char replaced[] = "\xef\xbf\xbd\xef\xbf\xbd\xf0\x9f\x98\x80\xef\xbf\xbd";
    assert_int_equal(n, sizeof replaced - 1);
    assert_memory_equal(out, replaced, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_of_top_level_members),
        cmocka_unit_test(test_last_duplicate_wins),
        cmocka_unit_test(test_escaped_keys_match_as_decoded),
        cmocka_unit_test(test_empty_containers),
        cmocka_unit_test(test_rejections_name_the_fault),
        cmocka_unit_test(test_utf8_checked),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_string_decode),
        cmocka_unit_test(test_lexer_tokens),
        cmocka_unit_test(test_string_unescape_exact),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
