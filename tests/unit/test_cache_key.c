/* test_cache_key.c — the response cache's key: the same request in any member order or white
 * space, at any depth, has one key; stream, stream_options, user, metadata, store and the body's
 * model do not change it at the top level (and do inside); every output-changing part does (a
 * temperature, a message, a tool, the response format, the namespace, the public model, the
 * route, the endpoint, the secret); numbers, strings and escapes have one canonical form each;
 * hostile bodies meet their bounds; and the entry's header reads back what was written. */
#include "../../src/cache/cache_key.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static cache_secret secret_a = {.digest = {1}, .member = {1}}, secret_b = {.digest = {2}, .member = {2}};

/* The key of body under the given namespace, model and route (endpoint 0: chat completions). */
static bool try_key_of(const char *body, size_t len, const cache_secret *secret, const char *ns,
                       const char *model, const char *route, int endpoint, uint8_t out[CACHE_KEY_BYTES])
{
    cache_key_input in = {.secret = secret,
                          .namespace_name = ns,
                          .namespace_len = strlen(ns),
                          .endpoint = endpoint,
                          .model = model,
                          .model_len = strlen(model),
                          .route = route,
                          .body = body,
                          .body_len = len};
    return cache_key_make(&in, out);
}

static void key_of(const char *body, const cache_secret *secret, const char *ns, const char *model,
                   const char *route, int endpoint, uint8_t out[CACHE_KEY_BYTES])
{
    if (!try_key_of(body, strlen(body), secret, ns, model, route, endpoint, out))
        fail_msg("no key for %s", body);
}

static void key(const char *body, uint8_t out[CACHE_KEY_BYTES])
{
    key_of(body, &secret_a, "key:k1", "gpt", "gpt", 0, out);
}

static void assert_same(const char *a, const char *b)
{
    uint8_t ka[32], kb[32];
    key(a, ka);
    key(b, kb);
    if (memcmp(ka, kb, 32)) fail_msg("two keys for\n  %s\n  %s", a, b);
}

static void assert_differ(const char *a, const char *b)
{
    uint8_t ka[32], kb[32];
    key(a, ka);
    key(b, kb);
    if (!memcmp(ka, kb, 32)) fail_msg("one key for\n  %s\n  %s", a, b);
}

#define BASE "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5}"

/* A request with nesting at every level: objects of one and of several members, inside arrays
 * and inside objects (a tool's JSON schema). */
#define DEEP                                                                                                 \
    "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}" \
    "],"                                                                                                     \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","    \
    "\"properties\":{\"a\":{\"type\":\"string\",\"enum\":[\"x\",\"y\"]},\"b\":{\"items\":{\"type\":"         \
    "\"integer\"}}}}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}"

static void test_order_and_white_space_do_not_matter(void **state)
{
    assert_same(BASE, "{ \"temperature\" : 0.5,\n \"messages\" : [ { \"content\":\"hi\", \"role\":\"user\" } "
                      "],\"model\":\"gpt\" }");
    assert_same(BASE, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0068i\"}],\"temperature\":0.50,"
                      "\"model\":\"gpt\"}");
    /* every object of DEEP in reverse order, and white space between every token */
    assert_same(DEEP,
                "{ \"tool_choice\" : { \"function\" : { \"name\" : \"f\" } , \"type\" : \"function\" } ,\n"
                " \"tools\" : [ { \"function\" : { \"parameters\" : { \"properties\" : { \"b\" : { "
                "\"items\" : { \"type\" : \"integer\" } } , \"a\" : { \"enum\" : [ \"x\" , \"y\" ] , "
                "\"type\" : \"string\" } } , \"type\" : \"object\" } , \"name\" : \"f\" } , \"type\" : "
                "\"function\" } ] ,\r\n\t\"messages\" : [ { \"content\" : [ { \"text\" : \"hi\" , "
                "\"type\" : \"text\" } ] , \"role\" : \"user\" } ] , \"model\" : \"gpt\" }");
    /* objects past the insertion sort's few members (a merge): forward, backward, interleaved */
    char fwd[2048], back[2048], mixed[2048];
    size_t f = 0, b = 0, m = 0;
    f += (size_t)snprintf(fwd, sizeof fwd, "{\"o\":{");
    b += (size_t)snprintf(back, sizeof back, "{\"o\":{");
    m += (size_t)snprintf(mixed, sizeof mixed, "{\"o\":{");
    for (int i = 0; i < 40; i++) {
        int j = 39 - i, k = (i * 17) % 40; /* 17 and 40 are coprime: every member once */
        f += (size_t)snprintf(fwd + f, sizeof fwd - f, "%s\"m%02d\":%d", i ? "," : "", i, i);
        b += (size_t)snprintf(back + b, sizeof back - b, "%s\"m%02d\":%d", i ? "," : "", j, j);
        m += (size_t)snprintf(mixed + m, sizeof mixed - m, "%s\"m%02d\":%d", i ? "," : "", k, k);
    }
    snprintf(fwd + f, sizeof fwd - f, "}}");
    snprintf(back + b, sizeof back - b, "}}");
    snprintf(mixed + m, sizeof mixed - m, "}}");
    assert_same(fwd, back);
    assert_same(fwd, mixed);
    back[b - 1] = '9'; /* the last value (m00's) changed */
    assert_differ(fwd, back);
}

static void test_delivery_and_bookkeeping_are_ignored_at_the_top_only(void **state)
{
    assert_same(BASE, "{\"model\":\"other-name\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                      "\"user\":\"u-1\",\"metadata\":{\"x\":[\"y\",{\"z\":1}]},\"store\":true,\"messages\":[{"
                      "\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5}");
    /* an escaped spelling of an ignored name is that name (providers decode names) */
    assert_same(BASE, "{\"model\":\"gpt\",\"str\\u0065am\":true,\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"hi\"}],\"temperature\":0.5}");
    /* the same names deeper are part of the request */
    assert_differ(BASE,
                  "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"user\":\"u\"}],"
                  "\"temperature\":0.5}");
    assert_differ(BASE,
                  "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":\"m\"}],"
                  "\"temperature\":0.5}");
    assert_differ(DEEP, "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"hi\"}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                        "\"enum\":[\"x\",\"y\"]},\"b\":{\"items\":{\"type\":\"integer\"}},\"stream\":{}}}}}],"
                        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}");
    /* not a name of the list, only its prefix or longer */
    assert_differ(BASE, "{\"model\":\"gpt\",\"stre\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"temperature\":0.5}");
    assert_differ(BASE,
                  "{\"model\":\"gpt\",\"users\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"temperature\":0.5}");
}

static void test_what_changes_the_output_changes_the_key(void **state)
{
    static const char *const others[] = {
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi!\"}],\"temperature\":0.5}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"system\",\"content\":\"hi\"}],\"temperature\":0.5}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"user\","
        "\"content\":"
        "\"hi\"}],\"temperature\":0.5}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}"
        "]}],"
        "\"temperature\":0.5}",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        assert_differ(BASE, others[i]);
    /* each parameter added changes it */
    static const char *const params[] = {
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]",
        "\"tool_choice\":\"required\"",
        "\"response_format\":{\"type\":\"json_object\"}",
        "\"max_tokens\":5",
        "\"max_completion_tokens\":5",
        "\"seed\":1",
        "\"stop\":[\"x\"]",
        "\"top_p\":0.9",
        "\"presence_penalty\":0",
        "\"frequency_penalty\":0",
        "\"reasoning_effort\":\"low\"",
        "\"system\":\"be brief\"",
        "\"n\":1",
        "\"logit_bias\":{}",
        "\"parallel_tool_calls\":false",
        "\"x\":null",
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                 "\"temperature\":0.5,%s}",
                 params[i]);
        assert_differ(BASE, body);
    }

    uint8_t a[32], b[32];
    key(BASE, a);
    key_of(BASE, &secret_a, "key:k2", "gpt", "gpt", 0, b); /* another tenant */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, &secret_a, "key:k1", "gpt-2", "gpt", 0, b); /* another public model */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, &secret_a, "key:k1", "gpt", "other-route", 0, b);
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, &secret_a, "key:k1", "gpt", "gpt", 3, b); /* another endpoint */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, &secret_b, "key:k1", "gpt", "gpt", 0, b); /* another deployment */
    assert_memory_not_equal(a, b, 32);
    /* parts are length-prefixed: moving bytes between the namespace and the model is another key */
    key_of(BASE, &secret_a, "key:k1g", "pt", "gpt", 0, b);
    assert_memory_not_equal(a, b, 32);
    /* only the member subkey differs: the digest of the message object differs */
    cache_secret other = secret_a;
    other.member[0] ^= 1;
    key_of(BASE, &other, "key:k1", "gpt", "gpt", 0, b);
    assert_memory_not_equal(a, b, 32);
}

/* Bodies that a careless canonical form could make equal: none may share a key. */
static void test_structure_is_kept(void **state)
{
    static const char *const pairs[][2] = {
        {"{\"a\":[\"x\",\"y\"]}", "{\"a\":[\"y\",\"x\"]}"}, /* an array's order */
        {"{\"a\":[\"x,y\"]}", "{\"a\":[\"x\",\"y\"]}"},
        {"{\"ab\":\"c\"}", "{\"a\":\"bc\"}"}, /* where a name ends */
        {"{\"a\":\"b\",\"c\":\"d\"}", "{\"a\":\"b\\\",\\\"c\\\":\\\"d\"}"},
        {"{\"a\":[1]}", "{\"a\":1}"},
        {"{\"a\":{}}", "{\"a\":[]}"},
        {"{\"a\":[[]]}", "{\"a\":[]}"},
        {"{\"a\":true}", "{\"a\":\"true\"}"},
        {"{\"a\":null}", "{\"a\":\"null\"}"},
        {"{\"a\":null}", "{}"},
        {"{\"a\":\"\"}", "{}"},
        {"{\"a\":\"1\"}", "{\"a\":1}"},
        {"{\"a\":12}", "{\"a\":[1,2]}"},
        {"{\"x\":{\"a\":1,\"b\":2}}", "{\"x\":{\"a\":1},\"b\":2}"},
        {"{\"x\":{\"a\":{\"b\":1}}}", "{\"x\":{\"a\":1,\"b\":1}}"},
        {"{\"x\":[{\"a\":1},{\"b\":2}]}", "{\"x\":[{\"a\":1,\"b\":2}]}"},
        {"{\"x\":[{\"a\":1,\"b\":2},{\"c\":3,\"d\":4}]}", "{\"x\":[{\"a\":1,\"d\":4},{\"c\":3,\"b\":2}]}"},
        /* members of one name keep their order: a parser keeping the last reads these apart */
        {"{\"a\":1,\"a\":2}", "{\"a\":2,\"a\":1}"},
        {"{\"a\":1,\"a\":2}", "{\"a\":2}"},
        {"{\"x\":{\"a\":1,\"a\":2}}", "{\"x\":{\"a\":2,\"a\":1}}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        assert_differ(pairs[i][0], pairs[i][1]);
}

/* Numbers: an integer as written ("-0" is 0); a number with a fraction or an exponent by its
 * exact decimal value. */
static void test_numbers_have_one_form(void **state)
{
    static const struct {
        const char *in, *out;
    } forms[] = {
        {"0", "0"},
        {"-0", "0"},
        {"7", "7"},
        {"-12", "-12"},
        {"100", "100"},
        {"0.5", "5e-1"},
        {"0.50", "5e-1"},
        {"5e-1", "5e-1"},
        {"5.0E-1", "5e-1"},
        {"50e-2", "5e-1"},
        {"1.0", "1e0"},
        {"1e0", "1e0"},
        {"10e-1", "1e0"},
        {"1e2", "1e2"},
        {"100.0", "1e2"},
        {"0.0", "0e0"},
        {"-0.0", "0e0"},
        {"0e5", "0e0"},
        {"-1.25", "-125e-2"},
        {"1E+2", "1e2"},
        {"0.001", "1e-3"},
        {"120.50", "1205e-1"},
        {"1e000000002", "1e2"},
        {"12345678901234567890", "12345678901234567890"}, /* integers of any size, exactly */
        {"1.2345678901234567890123", "12345678901234567890123e-22"},
        {"1e1234567890", "r1e1234567890"}, /* an exponent past nine digits: as written, apart */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char out[128];
        size_t n = strlen(forms[i].in);
        char *end = put_number(out, forms[i].in, n);
        *end = '\0';
        if (strcmp(out, forms[i].out)) fail_msg("%s: '%s', expected '%s'", forms[i].in, out, forms[i].out);
        assert_true((size_t)(end - out) <= n + 22);
    }
    assert_same("{\"t\":0.5}", "{\"t\":5e-1}");
    assert_same("{\"t\":[1.0,-0]}", "{\"t\":[10e-1,0]}");
    assert_differ("{\"t\":1}", "{\"t\":1.0}"); /* an integer and a real: a provider may refuse one */
    assert_differ("{\"t\":100}", "{\"t\":1e2}");
    assert_differ("{\"t\":0.5}", "{\"t\":0.51}");
    assert_differ("{\"t\":12345678901234567890}", "{\"t\":12345678901234567891}");
    assert_differ("{\"t\":0.10000000000000000001}", "{\"t\":0.1}"); /* one double, two decimals */
}

/* Strings are compared decoded: escapes do not matter, every code point does. */
static void test_strings_and_escapes(void **state)
{
    assert_same("{\"s\":\"A\"}", "{\"s\":\"\\u0041\"}");
    assert_same("{\"s\":\"a/b\"}", "{\"s\":\"a\\/b\"}");
    assert_same("{\"s\":\"\\n\"}", "{\"s\":\"\\u000a\"}");
    assert_same("{\"s\":\"\\u00e9\"}", "{\"s\":\"\xc3\xa9\"}");
    assert_same("{\"s\":\"\\ud83d\\ude00\"}", "{\"s\":\"\xf0\x9f\x98\x80\"}"); /* a surrogate pair */
    assert_same("{\"\\u0073\":1}", "{\"s\":1}");                               /* names too */
    assert_differ("{\"s\":\"\\ud800\"}", "{\"s\":\"\\ufffd\"}"); /* a lone surrogate is itself */
    assert_differ("{\"s\":\"\\ud800\"}", "{\"s\":\"\\udc00\"}");
    assert_differ("{\"s\":\"\\u0000\"}", "{\"s\":\"\"}");
    assert_differ("{\"s\":\"a\"}", "{\"s\":\"A\"}");
    assert_differ("{\"s\":\"\\\\n\"}", "{\"s\":\"\\n\"}");
}

static void test_bounds_and_refusals(void **state)
{
    uint8_t out[32];
    static const char *const refused[] = {"[]", "\"x\"",    "1",          "",
                                          "{",  "{\"a\":}", "{\"a\":1}x", "{\"a\":01}"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (try_key_of(refused[i], strlen(refused[i]), &secret_a, "", "m", NULL, 0, out))
            fail_msg("a key for %s", refused[i]);
    assert_false(try_key_of(NULL, 0, &secret_a, "", "m", NULL, 0, out));

    /* depth: the lexer's bound, {"a": and the arrays */
    char deep[2 * JSON_MAX_DEPTH + 16];
    for (int arrays = JSON_MAX_DEPTH - 1; arrays <= JSON_MAX_DEPTH; arrays++) {
        size_t n = 0;
        memcpy(deep, "{\"a\":", 5);
        n = 5;
        for (int d = 0; d < arrays; d++)
            deep[n++] = '[';
        for (int d = 0; d < arrays; d++)
            deep[n++] = ']';
        deep[n++] = '}';
        assert_int_equal(try_key_of(deep, n, &secret_a, "", "m", NULL, 0, out), arrays < JSON_MAX_DEPTH);
    }

    /* members open at once: CACHE_KEY_MEMBERS_MAX, and one more is refused */
    for (size_t members = CACHE_KEY_MEMBERS_MAX; members <= CACHE_KEY_MEMBERS_MAX + 1; members++) {
        buf b;
        buf_init(&b, 64 * members + 16);
        buf_append_lit(&b, "{\"x\":{");
        for (size_t i = 0; i < members - 1; i++) {
            char m[32];
            int l = snprintf(m, sizeof m, "%s\"k%zu\":%zu", i ? "," : "", members - i, i);
            buf_append(&b, m, (size_t)l);
        }
        buf_append_lit(&b, "}}");
        bool made = try_key_of(b.data, b.len, &secret_a, "", "m", NULL, 0, out);
        assert_int_equal(made, members == CACHE_KEY_MEMBERS_MAX);
        buf_free(&b);
    }

    /* the canonical bytes' bound: a body of empty strings, the worst case, still has a key */
    buf b;
    buf_init(&b, 1 << 20);
    buf_append_lit(&b, "{\"a\":[\"\"");
    for (int i = 0; i < 100000; i++)
        buf_append_lit(&b, ",\"\"");
    buf_append_lit(&b, "]}");
    assert_true(try_key_of(b.data, b.len, &secret_a, "", "m", NULL, 0, out));
    buf_free(&b);
}

/* The spans the stage reads come from the same walk, as json_scan_object reports them, for
 * ignored members too; none when there is no key. */
static void test_fields_are_reported(void **state)
{
    const char *body = "{\"n\":1,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"n\":2}],"
                       "\"logprobs\":false,\"n\":3}";
    json_field f[] = {{.key = "n"}, {.key = "stream_options"}, {.key = "logprobs"}, {.key = "absent"}};
    uint8_t out[32];
    cache_key_input in = {
        .secret = &secret_a, .body = body, .body_len = strlen(body), .fields = f, .nfields = 4};
    assert_true(cache_key_make(&in, out));
    json_field g[] = {{.key = "n"}, {.key = "stream_options"}, {.key = "logprobs"}, {.key = "absent"}};
    assert_true(json_scan_object(body, strlen(body), g, 4, NULL, NULL));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f[i].type, g[i].type);
        if (f[i].type == JSON_KIND_ABSENT) continue;
        assert_int_equal(f[i].start, g[i].start);
        assert_int_equal(f[i].end, g[i].end);
    }
    assert_memory_equal(body + f[0].start, "3", 1); /* the last one */
    in.body = "{\"n\":1,";
    in.body_len = strlen(in.body);
    assert_false(cache_key_make(&in, out));
    assert_int_equal(f[0].type, JSON_KIND_ABSENT);
}

static void test_entry_round_trip(void **state)
{
    cache_entry e = {.cost_usd = 0.00125,
                     .format = 1,
                     .usage = {.prompt = 10, .completion = 3, .cached = 2, .cache_write = 1, .reasoning = 1},
                     .body = "{\"id\":\"x\"}",
                     .body_len = 10,
                     .stream = "data: a\n\ndata: u\n\ndata: [DONE]\n\n",
                     .stream_len = 32,
                     .usage_at = 9,
                     .usage_len = 9};
    buf b;
    buf_init(&b, 4096);
    assert_true(cache_entry_write(&e, &b));
    cache_entry r;
    assert_true(cache_entry_parse(b.data, b.len, &r));
    assert_true(r.cost_usd > 0.00124 && r.cost_usd < 0.00126);
    assert_int_equal(r.format, 1);
    assert_int_equal(r.usage.prompt, 10);
    assert_int_equal(r.usage.completion, 3);
    assert_int_equal(r.usage.cached, 2);
    assert_int_equal(r.usage.cache_write, 1);
    assert_int_equal(r.usage.reasoning, 1);
    assert_true(r.usage.seen);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, e.body, 10);
    assert_int_equal(r.stream_len, 32);
    assert_memory_equal(r.stream, e.stream, 32);
    assert_int_equal(r.usage_at, 9);
    assert_int_equal(r.usage_len, 9);

    /* cut anywhere, or a byte more: not an entry */
    for (size_t cut = 0; cut < b.len; cut++)
        if (cache_entry_parse(b.data, cut, &r)) fail_msg("an entry cut at %zu read", cut);
    buf_append_lit(&b, "x");
    assert_false(cache_entry_parse(b.data, b.len, &r));
    buf_free(&b);

    /* the first version (a canonical reply after the cost) and headers that lie */
    static const char *const refused[] = {
        "aigw-cache 1 0.00125\n{\"id\":\"x\"}",
        "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 0 0\n{}ab",  /* stream length 3 ≠ what is left */
        "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 2 2\n{}abc", /* the usage chunk past the stream */
        "aigw-cache 2 x 0 1 1 0 0 0 2 3 0 0\n{}abc",
        "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 0\n{}abc",     /* a field missing */
        "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 0 0 0\n{}abc", /* one too many */
        "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 0 -1\n{}abc",
        "aigw-cache 2 0.1 0 1 1 0 0 0 99999999999999999999 3 0 0\n{}abc",
        "aigw-cache 2 0.1 0 1 1 0 0 0 0 5 0 0\n{}abc", /* no body */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (cache_entry_parse(refused[i], strlen(refused[i]), &r)) fail_msg("read: %s", refused[i]);
    const char *good = "aigw-cache 2 0.1 0 1 1 0 0 0 2 3 1 1\n{}abc";
    assert_true(cache_entry_parse(good, strlen(good), &r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_white_space_do_not_matter),
        cmocka_unit_test(test_delivery_and_bookkeeping_are_ignored_at_the_top_only),
        cmocka_unit_test(test_what_changes_the_output_changes_the_key),
        cmocka_unit_test(test_structure_is_kept),
        cmocka_unit_test(test_numbers_have_one_form),
        cmocka_unit_test(test_strings_and_escapes),
        cmocka_unit_test(test_bounds_and_refusals),
        cmocka_unit_test(test_fields_are_reported),
        cmocka_unit_test(test_entry_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
