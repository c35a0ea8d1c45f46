/* test_cache_key.c — the response cache's key: the same request in any key order or white
 * space has one key; stream, stream_options, user, metadata and the body's model do not change
 * it; every output-changing part does (a temperature, a message, a tool, the response format,
 * the namespace, the public model, the route, the endpoint, the secret); and the entry's
 * header parses back. */
#include "../../src/cache/cache_key.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static uint8_t secret_a[32] = {1}, secret_b[32] = {2};

/* The key of body under the given namespace, model and route (endpoint 0: chat completions). */
static void key_of(const char *body, const uint8_t *secret, const char *ns, const char *model,
                   const char *route, int endpoint, uint8_t out[CACHE_KEY_BYTES])
{
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    if (!j) fail_msg("bad JSON in the test: %s", body);
    cache_key_input in = {.secret = secret,
                          .namespace_name = ns,
                          .namespace_len = strlen(ns),
                          .endpoint = endpoint,
                          .model = model,
                          .model_len = strlen(model),
                          .route = route,
                          .body = j};
    assert_true(cache_key_make(&in, out));
    json_decref(j);
}

static void key(const char *body, uint8_t out[CACHE_KEY_BYTES])
{
    key_of(body, secret_a, "key:k1", "gpt", "gpt", 0, out);
}

#define BASE "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5}"

static void test_order_and_white_space_do_not_matter(void **state)
{
    uint8_t a[32], b[32], c[32];
    key(BASE, a);
    key("{ \"temperature\" : 0.5,\n \"messages\" : [ { \"content\":\"hi\", \"role\":\"user\" } "
        "],\"model\":\"gpt\" }",
        b);
    key("{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0068i\"}],\"temperature\":0.50,\"model\":"
        "\"gpt\"}",
        c);
    assert_memory_equal(a, b, 32);
    assert_memory_equal(a, c, 32);
}

static void test_delivery_and_bookkeeping_are_ignored(void **state)
{
    uint8_t a[32], b[32];
    key(BASE, a);
    key("{\"model\":\"other-name\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u-"
        "1\","
        "\"metadata\":{\"x\":\"y\"},\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"temperature\":0.5}",
        b);
    assert_memory_equal(a, b, 32);
}

static void assert_differs(const char *body)
{
    uint8_t a[32], b[32];
    key(BASE, a);
    key(body, b);
    if (!memcmp(a, b, 32)) fail_msg("same key for %s", body);
}

static void test_what_changes_the_output_changes_the_key(void **state)
{
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7}");
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi!\"}],\"temperature\":0.5}");
    assert_differs("{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5,"
        "\"response_format\":{\"type\":\"json_object\"}}");
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5,"
        "\"max_tokens\":5}");
    assert_differs(
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"system\",\"content\":\"hi\"}],\"temperature\":0.5}");

    uint8_t a[32], b[32];
    key(BASE, a);
    key_of(BASE, secret_a, "key:k2", "gpt", "gpt", 0, b); /* another tenant */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, secret_a, "key:k1", "gpt-2", "gpt", 0, b); /* another public model */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, secret_a, "key:k1", "gpt", "other-route", 0, b);
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, secret_a, "key:k1", "gpt", "gpt", 3, b); /* another endpoint */
    assert_memory_not_equal(a, b, 32);
    key_of(BASE, secret_b, "key:k1", "gpt", "gpt", 0, b); /* another deployment */
    assert_memory_not_equal(a, b, 32);
    /* parts are length-prefixed: moving bytes between the namespace and the model is another key */
    key_of(BASE, secret_a, "key:k1g", "pt", "gpt", 0, b);
    assert_memory_not_equal(a, b, 32);
}

static void test_not_an_object_has_no_key(void **state)
{
    json_t *j = json_array();
    uint8_t out[32];
    cache_key_input in = {.secret = secret_a, .body = j};
    assert_false(cache_key_make(&in, out));
    json_decref(j);
}

static void test_entry_header(void **state)
{
    static const char e[] = CACHE_ENTRY_MAGIC "0.00125\n{\"id\":\"x\"}";
    double cost;
    const char *reply;
    size_t len;
    assert_true(cache_entry_parse(e, sizeof e - 1, &cost, &reply, &len));
    assert_true(cost > 0.00124 && cost < 0.00126);
    assert_int_equal(len, 10);
    assert_memory_equal(reply, "{\"id\":\"x\"}", 10);
    assert_false(cache_entry_parse("aigw-cache 1 x\n{}", 17, &cost, &reply, &len));
    assert_false(cache_entry_parse("nope", 4, &cost, &reply, &len));
    assert_false(
        cache_entry_parse(CACHE_ENTRY_MAGIC "1\n", sizeof CACHE_ENTRY_MAGIC + 1, &cost, &reply, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_white_space_do_not_matter),
        cmocka_unit_test(test_delivery_and_bookkeeping_are_ignored),
        cmocka_unit_test(test_what_changes_the_output_changes_the_key),
        cmocka_unit_test(test_not_an_object_has_no_key),
        cmocka_unit_test(test_entry_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
