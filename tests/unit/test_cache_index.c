/* test_cache_index.c — the semantic cache's vector index: the nearest vector of the bucket is
 * found and answers only at or above the threshold; other buckets and expired vectors are never
 * found; an insertion under a key already held replaces it; the bounds in entries and in bytes
 * hold, the oldest insertion going first; a vector of another size empties the index; and the
 * bucket and text a request is compared by (cache_semantic.c). */
#include "../../src/cache/cache_index.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#define DIMS 16

static void id(uint8_t out[CACHE_KEY_BYTES], unsigned n)
{
    memset(out, 0, CACHE_KEY_BYTES);
    memcpy(out, &n, sizeof n);
    out[CACHE_KEY_BYTES - 1] = (uint8_t)(n * 7 + 1);
}

/* e_i, or a mix of e_a and e_b with weight w on e_b, normalized */
static void unit(float v[DIMS], int a, int b, float w)
{
    memset(v, 0, DIMS * sizeof *v);
    v[a] = 1 - w;
    v[b] += w;
    assert_true(cache_index_normalize(v, DIMS));
}

static void test_nearest_and_threshold(void **state)
{
    cache_index *ix = cache_index_new(100, 1 << 20);
    uint8_t bucket[32], k1[32], k2[32], got[32];
    id(bucket, 1);
    id(k1, 11);
    id(k2, 12);
    float v1[DIMS], v2[DIMS], q[DIMS];
    unit(v1, 0, 1, 0);
    unit(v2, 2, 3, 0);
    assert_true(cache_index_insert(ix, bucket, k1, v1, DIMS, 1000, 60000));
    assert_true(cache_index_insert(ix, bucket, k2, v2, DIMS, 1000, 60000));
    float sim = 0;
    /* close to v1: v1's key, with its similarity */
    unit(q, 0, 1, 0.1f);
    assert_true(cache_index_nearest(ix, bucket, q, DIMS, 2000, 0.95f, got, &sim));
    assert_memory_equal(got, k1, 32);
    assert_true(sim > 0.99f && sim <= 1.0001f);
    /* between: the nearer one is found, but not above a high threshold */
    unit(q, 0, 2, 0.4f);
    assert_false(cache_index_nearest(ix, bucket, q, DIMS, 2000, 0.95f, got, &sim));
    assert_true(sim > 0.7f && sim < 0.95f);
    assert_true(cache_index_nearest(ix, bucket, q, DIMS, 2000, 0.5f, got, &sim));
    assert_memory_equal(got, k1, 32);
    unit(q, 0, 2, 0.6f);
    assert_true(cache_index_nearest(ix, bucket, q, DIMS, 2000, 0.5f, got, &sim));
    assert_memory_equal(got, k2, 32);
    /* exactly at the threshold answers */
    unit(q, 2, 3, 0);
    assert_true(cache_index_nearest(ix, bucket, q, DIMS, 2000, 1.0f - 1e-6f, got, &sim));
    /* unrelated: far */
    unit(q, 9, 10, 0.5f);
    assert_false(cache_index_nearest(ix, bucket, q, DIMS, 2000, 0.1f, got, &sim));
    assert_true(sim < 0.01f);
    cache_index_free(ix);
}

static void test_buckets_expiry_and_replace(void **state)
{
    cache_index *ix = cache_index_new(100, 1 << 20);
    uint8_t b1[32], b2[32], k[32], k2[32], got[32];
    id(b1, 1);
    id(b2, 2);
    b2[0] = b1[0]; /* the same tag word: told apart by the whole bucket */
    memcpy(b2, b1, 8);
    b2[20] ^= 0xff;
    id(k, 5);
    id(k2, 6);
    float v[DIMS], w[DIMS];
    unit(v, 0, 1, 0);
    unit(w, 4, 5, 0);
    assert_true(cache_index_insert(ix, b1, k, v, DIMS, 1000, 5000));
    float sim;
    assert_false(cache_index_nearest(ix, b2, v, DIMS, 2000, 0.5f, got, &sim)); /* another bucket */
    assert_true(cache_index_nearest(ix, b1, v, DIMS, 5999, 0.5f, got, &sim));
    assert_false(cache_index_nearest(ix, b1, v, DIMS, 6000, 0.5f, got, &sim)); /* expired */
    /* the same key again: replaced in place (one entry), with its new vector and lifetime */
    assert_true(cache_index_insert(ix, b1, k, w, DIMS, 7000, 5000));
    size_t entries;
    cache_index_stats(ix, &entries, NULL, NULL);
    assert_int_equal(entries, 1);
    assert_false(cache_index_nearest(ix, b1, v, DIMS, 8000, 0.5f, got, &sim));
    assert_true(cache_index_nearest(ix, b1, w, DIMS, 8000, 0.5f, got, &sim));
    /* the same key in another bucket is another entry */
    assert_true(cache_index_insert(ix, b2, k, v, DIMS, 7000, 5000));
    cache_index_stats(ix, &entries, NULL, NULL);
    assert_int_equal(entries, 2);
    (void)k2;
    cache_index_free(ix);
}

static void test_bounds_and_eviction(void **state)
{
    /* entries: at most 10; the oldest insertion goes first */
    cache_index *ix = cache_index_new(10, 1 << 20);
    uint8_t bucket[32], k[32], got[32];
    id(bucket, 1);
    float v[DIMS];
    for (unsigned i = 0; i < 25; i++) {
        id(k, 100 + i);
        unit(v, (int)(i % DIMS), (int)((i + 1) % DIMS), 0.3f);
        assert_true(cache_index_insert(ix, bucket, k, v, DIMS, 1000, 60000));
        size_t entries, bytes;
        cache_index_stats(ix, &entries, &bytes, NULL);
        assert_true(entries <= 10);
        assert_true(bytes <= sizeof(cache_index) + 10 * cache_index_slot_bytes(DIMS));
    }
    uint64_t evicted;
    cache_index_stats(ix, NULL, NULL, &evicted);
    assert_int_equal(evicted, 15);
    float sim;
    /* the first 15 are gone, the last 10 are there */
    for (unsigned i = 0; i < 25; i++) {
        unit(v, (int)(i % DIMS), (int)((i + 1) % DIMS), 0.3f);
        bool found = cache_index_nearest(ix, bucket, v, DIMS, 2000, 0.9999f, got, &sim);
        id(k, 100 + i);
        bool same = found && !memcmp(got, k, 32);
        if (i < 15)
            assert_false(same);
        else
            assert_true(same);
    }
    cache_index_free(ix);

    /* bytes: a bound that holds 3 slots of DIMS floats holds 3 */
    size_t three = 3 * cache_index_slot_bytes(DIMS) + cache_index_slot_bytes(DIMS) / 2;
    ix = cache_index_new(1000, three);
    for (unsigned i = 0; i < 8; i++) {
        id(k, i);
        unit(v, 0, 1, 0);
        assert_true(cache_index_insert(ix, bucket, k, v, DIMS, 1000, 60000));
    }
    size_t entries;
    cache_index_stats(ix, &entries, NULL, NULL);
    assert_int_equal(entries, 3);
    cache_index_free(ix);

    /* a bound below one slot holds nothing, and says so */
    ix = cache_index_new(1000, 10);
    assert_false(cache_index_insert(ix, bucket, k, v, DIMS, 1000, 60000));
    cache_index_free(ix);
}

static void test_dims(void **state)
{
    cache_index *ix = cache_index_new(100, 1 << 20);
    uint8_t bucket[32], k[32], got[32];
    id(bucket, 1);
    id(k, 1);
    float v[DIMS], small[4] = {1, 0, 0, 0};
    unit(v, 0, 1, 0);
    assert_true(cache_index_insert(ix, bucket, k, v, DIMS, 1000, 60000));
    float sim;
    assert_false(cache_index_nearest(ix, bucket, small, 4, 2000, 0.1f, got, &sim)); /* another size */
    assert_true(cache_index_insert(ix, bucket, k, small, 4, 1000, 60000));          /* the model changed */
    size_t entries;
    cache_index_stats(ix, &entries, NULL, NULL);
    assert_int_equal(entries, 1);
    assert_false(cache_index_nearest(ix, bucket, v, DIMS, 2000, 0.1f, got, &sim));
    assert_true(cache_index_nearest(ix, bucket, small, 4, 2000, 0.9f, got, &sim));
    assert_false(cache_index_insert(ix, bucket, k, v, 0, 1000, 60000));
    assert_false(cache_index_insert(ix, bucket, k, v, CACHE_INDEX_DIMS_MAX + 1, 1000, 60000));
    float zero[4] = {0};
    assert_false(cache_index_normalize(zero, 4));
    cache_index_free(ix);
}

static void test_semantic_text_and_bucket(void **state)
{
    assert_true(sodium_init() >= 0);
    json_error_t e;
    buf t;
    buf_init(&t, 1024);
    json_t *oa = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                            "{\"role\":\"user\",\"content\":\"hello there\"}]}",
                            0, &e);
    assert_true(cache_semantic_text(oa, 100, &t));
    assert_int_equal(t.len, 11);
    assert_memory_equal(t.data, "hello there", 11);
    buf_reset(&t);
    assert_false(cache_semantic_text(oa, 5, &t)); /* longer than allowed: not embedded */
    buf_reset(&t);
    json_t *parts =
        json_loads("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                   "{\"type\":\"image_url\"},{\"type\":\"text\",\"text\":\"b\"}]}]}",
                   0, &e);
    assert_true(cache_semantic_text(parts, 100, &t));
    assert_int_equal(t.len, 3);
    assert_memory_equal(t.data, "a\nb", 3);
    buf_reset(&t);
    json_t *tool_last = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\","
                                   "\"content\":\"y\",\"tool_call_id\":\"1\"}]}",
                                   0, &e);
    assert_false(cache_semantic_text(tool_last, 100, &t)); /* the conversation does not end on the user */

    cache_secret secret = {.digest = {1}};
    uint8_t b1[32], b2[32];
    cache_key_input in = {.secret = &secret,
                          .namespace_name = "key:a",
                          .namespace_len = 5,
                          .model = "m",
                          .model_len = 1,
                          .parsed = oa};
    assert_true(cache_semantic_bucket(&in, b1));
    /* another last turn: the same bucket (the text is what the vector compares) */
    json_t *oa2 = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                             "{\"role\":\"user\",\"content\":\"something else\"}],\"temperature\":1}",
                             0, &e);
    in.parsed = oa2;
    assert_true(cache_semantic_bucket(&in, b2));
    assert_memory_equal(b1, b2, 32);
    /* another system prompt, namespace, model or tools: another bucket */
    json_t *sys = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"be long\"},"
                             "{\"role\":\"user\",\"content\":\"hello there\"}]}",
                             0, &e);
    in.parsed = sys;
    assert_true(cache_semantic_bucket(&in, b2));
    assert_memory_not_equal(b1, b2, 32);
    in.parsed = oa;
    in.namespace_name = "key:b";
    assert_true(cache_semantic_bucket(&in, b2));
    assert_memory_not_equal(b1, b2, 32);
    in.namespace_name = "key:a";
    in.model = "n";
    assert_true(cache_semantic_bucket(&in, b2));
    assert_memory_not_equal(b1, b2, 32);
    in.model = "m";
    json_object_set_new(oa2, "tools", json_pack("[{s:s}]", "type", "function"));
    in.parsed = oa2;
    assert_true(cache_semantic_bucket(&in, b2));
    assert_memory_not_equal(b1, b2, 32);
    json_decref(oa);
    json_decref(oa2);
    json_decref(parts);
    json_decref(tool_last);
    json_decref(sys);
    buf_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest_and_threshold),    cmocka_unit_test(test_buckets_expiry_and_replace),
        cmocka_unit_test(test_bounds_and_eviction),      cmocka_unit_test(test_dims),
        cmocka_unit_test(test_semantic_text_and_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
