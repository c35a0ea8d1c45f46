/* test_cache_memory.c — the response cache's memory backend: a stored value comes back byte for
 * byte and a replaced one is the newer; the byte bound holds however much is stored (each
 * entry's overhead counted), the least recently used going first; an entry past its ttl or
 * older than the max_age asked is a miss; an entry larger than max_entry_bytes is not kept. */
#include "../../src/cache/cache_memory.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

/* A key whose shard is chosen: the first 8 bytes are the hash (shard = hash % 16). */
static void make_key(uint8_t k[CACHE_KEY_BYTES], uint64_t n, unsigned shard_no)
{
    memset(k, 0, CACHE_KEY_BYTES);
    uint64_t h = n * CACHE_MEMORY_SHARDS + shard_no;
    memcpy(k, &h, sizeof h);
    memcpy(k + 8, &n, sizeof n);
}

static bool get(cache_backend *b, const uint8_t *k, uint64_t max_age_ms, buf *out)
{
    buf_reset(out);
    return b->ops->lookup(b, k, max_age_ms, out, NULL, NULL) == CACHE_FOUND;
}

static void test_store_and_lookup(void **state)
{
    cache_backend *b = cache_memory_new(1u << 20, 4096);
    uint8_t k[32], other[32];
    make_key(k, 1, 3);
    make_key(other, 2, 3);
    buf out;
    buf_init(&out, 1 << 20);
    assert_false(get(b, k, 0, &out));
    b->ops->store(b, k, "first", 5, 60000);
    assert_true(get(b, k, 0, &out));
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "first", 5);
    assert_false(get(b, other, 0, &out));
    b->ops->store(b, k, "second!", 7, 60000);
    assert_true(get(b, k, 0, &out));
    assert_memory_equal(out.data, "second!", 7);
    cache_stats st;
    b->ops->stats(b, &st);
    assert_int_equal(st.entries, 1);
    /* too large for one entry: not kept, the old one replaced by nothing new */
    char big[5000];
    memset(big, 'x', sizeof big);
    b->ops->store(b, other, big, sizeof big, 60000);
    assert_false(get(b, other, 0, &out));
    buf_free(&out);
    b->ops->free(b);
}

static void test_byte_bound_and_lru(void **state)
{
    size_t max = 256 * 1024; /* 16 KiB a shard */
    cache_backend *b = cache_memory_new(max, 2048);
    char value[1000];
    memset(value, 'v', sizeof value);
    uint8_t k[32];
    cache_stats st;
    /* far past the bound, in every shard */
    for (uint64_t i = 0; i < 4000; i++) {
        make_key(k, i, (unsigned)(i % CACHE_MEMORY_SHARDS));
        b->ops->store(b, k, value, sizeof value, 60000);
        b->ops->stats(b, &st);
        assert_true(st.bytes <= max);
    }
    assert_true(st.entries > 0);
    assert_true(st.evictions > 0);
    assert_true(st.bytes + cache_memory_entry_cost(sizeof value) * CACHE_MEMORY_SHARDS > max);

    /* LRU within one shard: store keys 0, 1, 2, … in shard 5, reading key 0 after each; the first
     * eviction takes key 1 (the least recently used), never key 0 */
    cache_backend *c = cache_memory_new(max, 2048);
    buf out;
    buf_init(&out, 1 << 20);
    uint64_t n = 0;
    for (;; n++) {
        make_key(k, n, 5);
        c->ops->store(c, k, value, sizeof value, 60000);
        c->ops->stats(c, &st);
        if (st.evictions) break;
        make_key(k, 0, 5);
        if (!get(c, k, 0, &out)) fail_msg("key 0 is gone before any eviction");
        if (n > 100) fail_msg("the shard never filled");
    }
    assert_int_equal(st.evictions, 1);
    assert_true(n > 2);
    make_key(k, 1, 5);
    assert_false(get(c, k, 0, &out));
    make_key(k, 2, 5);
    assert_true(get(c, k, 0, &out));
    make_key(k, 0, 5);
    assert_true(get(c, k, 0, &out));
    make_key(k, n, 5);
    assert_true(get(c, k, 0, &out));
    buf_free(&out);
    b->ops->free(b);
    c->ops->free(c);
}

static void test_ttl_and_max_age(void **state)
{
    cache_backend *b = cache_memory_new(1u << 20, 4096);
    uint8_t k[32], k2[32];
    make_key(k, 7, 1);
    make_key(k2, 8, 1);
    buf out;
    buf_init(&out, 1 << 20);
    b->ops->store(b, k, "short", 5, 50);    /* 50 ms */
    b->ops->store(b, k2, "long", 4, 60000); /* a minute */
    assert_true(get(b, k, 0, &out));
    usleep(120 * 1000);
    assert_false(get(b, k, 0, &out));    /* expired */
    assert_true(get(b, k2, 0, &out));    /* any age */
    assert_true(get(b, k2, 5000, &out)); /* younger than 5 s */
    assert_false(get(b, k2, 100, &out)); /* older than 100 ms: a miss, though it has not expired */
    cache_stats st;
    b->ops->stats(b, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.expired, 1);
    buf_free(&out);
    b->ops->free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_and_lookup),
        cmocka_unit_test(test_byte_bound_and_lru),
        cmocka_unit_test(test_ttl_and_max_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
