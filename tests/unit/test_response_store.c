/* test_response_store.c — the Responses API's store: what is put is got back byte for byte,
 * a delete forgets, the byte bound holds by dropping the least recently used first, the ttl
 * expires, an entry too large for a shard is refused, ids are fresh and well formed, and one
 * tenant (gateway key) never reaches another's response. */
#include "../../src/providers/response_store.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static arena a;

static int setup(void **state)
{
    arena_init(&a, 4096);
    response_store_configure(64u << 20, 3600 * 1000);
    return 0;
}

static int teardown(void **state)
{
    response_store_clear();
    arena_free(&a);
    return 0;
}

static void test_put_get_delete(void **state)
{
    assert_true(response_store_put("", "resp_a", "[1,2]", 5, "{\"id\":\"resp_a\"}", 15));
    char *conv, *resp;
    size_t clen, rlen;
    assert_true(response_store_get("", "resp_a", &a, &conv, &clen, &resp, &rlen));
    assert_int_equal(clen, 5);
    assert_memory_equal(conv, "[1,2]", 6); /* NUL-terminated */
    assert_int_equal(rlen, 15);
    assert_string_equal(resp, "{\"id\":\"resp_a\"}");
    /* a second put under the id replaces the first */
    assert_true(response_store_put("", "resp_a", "[3]", 3, "{}", 2));
    assert_true(response_store_get("", "resp_a", &a, &conv, &clen, NULL, NULL));
    assert_string_equal(conv, "[3]");
    assert_true(response_store_delete("", "resp_a"));
    assert_false(response_store_get("", "resp_a", &a, &conv, &clen, NULL, NULL));
    assert_false(response_store_delete("", "resp_a"));
    assert_int_equal(response_store_bytes(), 0);
}

/* Ids with the same shard, so the per-shard bound is what is tested. */
static void same_shard_ids(char ids[][16], int n)
{
    uint64_t want = 0;
    int found = 0;
    for (int i = 0; found < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        uint64_t h = hash_id(id) % SHARDS;
        if (!found) want = h;
        if (h == want) snprintf(ids[found++], 16, "%s", id);
    }
}

static void test_bound_drops_least_recently_used(void **state)
{
    /* 16 KiB per shard: three entries of 6000 bytes do not fit, two do */
    response_store_configure(16 * 16384, 3600 * 1000);
    static char big[6000];
    memset(big, 'x', sizeof big);
    char ids[3][16];
    same_shard_ids(ids, 3);
    assert_true(response_store_put("", ids[0], big, sizeof big, "{}", 2));
    assert_true(response_store_put("", ids[1], big, sizeof big, "{}", 2));
    assert_true(response_store_get("", ids[0], &a, NULL, NULL, NULL, NULL)); /* ids[0] is now the newer */
    assert_true(response_store_put("", ids[2], big, sizeof big, "{}", 2));
    assert_true(response_store_get("", ids[0], &a, NULL, NULL, NULL, NULL));
    assert_false(
        response_store_get("", ids[1], &a, NULL, NULL, NULL, NULL)); /* the least recently used went */
    assert_true(response_store_get("", ids[2], &a, NULL, NULL, NULL, NULL));
    assert_true(response_store_bytes() <= 16384);
    /* larger than a shard: refused, and nothing else is evicted for it */
    static char huge[20000];
    assert_false(response_store_put("", "huge", huge, sizeof huge, "{}", 2));
    assert_true(response_store_get("", ids[0], &a, NULL, NULL, NULL, NULL));
    /* a smaller bound on reload applies at once */
    response_store_configure(16 * 1024, 3600 * 1000);
    assert_int_equal(response_store_bytes(), 0);
    /* 0: off */
    response_store_configure(0, 3600 * 1000);
    assert_false(response_store_put("", "r", "[]", 2, "{}", 2));
}

static void test_ttl_expires(void **state)
{
    response_store_configure(1u << 20, 1000);
    assert_true(response_store_put("", "resp_t", "[]", 2, "{}", 2));
    assert_true(response_store_get("", "resp_t", &a, NULL, NULL, NULL, NULL));
    /* the entry's expiry, moved into the past (sleeping a second in a unit test is avoided) */
    uint64_t h = hash_id("resp_t");
    lru_find(&shards[h % SHARDS].table, h / SHARDS, "resp_t", 6, 0)->expires_ns = time_now_ns() - 1;
    assert_false(response_store_get("", "resp_t", &a, NULL, NULL, NULL, NULL));
    assert_int_equal(response_store_bytes(), 0);
}

static void test_ids(void **state)
{
    char x[RESPONSE_ID_MAX + 1], y[RESPONSE_ID_MAX + 1];
    response_store_new_id(x);
    response_store_new_id(y);
    assert_int_equal(strlen(x), 5 + 48);
    assert_memory_equal(x, "resp_", 5);
    for (const char *p = x + 5; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    assert_string_not_equal(x, y);
    /* an id longer than any kept is never found, never stored */
    char longid[100];
    memset(longid, 'a', 99);
    longid[99] = '\0';
    assert_false(response_store_put("", longid, "[]", 2, "{}", 2));
    assert_false(response_store_get("", longid, &a, NULL, NULL, NULL, NULL));
}

static void test_tenants_apart(void **state)
{
    assert_true(response_store_put("key_a", "resp_k", "[1]", 3, "{}", 2));
    /* another key neither reads nor deletes it; the master key (NULL) does */
    assert_false(response_store_get("key_b", "resp_k", &a, NULL, NULL, NULL, NULL));
    assert_false(response_store_get("", "resp_k", &a, NULL, NULL, NULL, NULL));
    assert_false(response_store_delete("key_b", "resp_k"));
    assert_true(response_store_get("key_a", "resp_k", &a, NULL, NULL, NULL, NULL));
    assert_true(response_store_get(NULL, "resp_k", &a, NULL, NULL, NULL, NULL));
    assert_true(response_store_delete("key_a", "resp_k"));
    assert_false(response_store_get(NULL, "resp_k", &a, NULL, NULL, NULL, NULL));
    /* a tenant name longer than kept is refused, not cut to another tenant's */
    char longname[RESPONSE_TENANT_MAX + 2];
    memset(longname, 'k', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(response_store_put(longname, "resp_l", "[]", 2, "{}", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_drops_least_recently_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants_apart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
