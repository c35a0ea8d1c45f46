/* test_lru.c — the bounded table in order of use that the cache's memory backend and the
 * Responses API's store share: keys of one hash and one bucket kept apart, a put replacing the
 * entry of its key, room made oldest first (a touched entry kept), expired entries dropped when
 * met and counted apart from evictions, the bytes counted back to zero. */
#include "../../src/util/lru.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

typedef struct item {
    lru_node node;
    char key[16];
    int value;
} item;

/* An entry of key (its hash given: tests choose collisions) counting bytes, living until expires. */
static item *make(const char *key, uint64_t hash, int value, size_t bytes, uint64_t expires)
{
    item *it = calloc(1, sizeof *it);
    snprintf(it->key, sizeof it->key, "%s", key);
    it->value = value;
    it->node = (lru_node){
        .hash = hash, .expires_ns = expires, .bytes = bytes, .key = it->key, .key_len = strlen(it->key)};
    return it;
}

static item *get(lru_table *t, const char *key, uint64_t hash, uint64_t now)
{
    return (item *)lru_find(t, hash, key, strlen(key), now);
}

static void test_keys_of_one_bucket_and_hash_stay_apart(void **state)
{
    lru_node *buckets[4] = {0};
    lru_table t;
    lru_init(&t, buckets, 4);
    lru_insert(&t, &make("a", 1, 1, 10, 100)->node, 1000, 0);
    lru_insert(&t, &make("b", 1, 2, 10, 100)->node, 1000, 0);  /* one hash, another key */
    lru_insert(&t, &make("ab", 5, 3, 10, 100)->node, 1000, 0); /* another hash, one bucket */
    assert_int_equal(get(&t, "a", 1, 0)->value, 1);
    assert_int_equal(get(&t, "b", 1, 0)->value, 2);
    assert_int_equal(get(&t, "ab", 5, 0)->value, 3);
    assert_null(get(&t, "ab", 1, 0)); /* the key under another hash: not found */
    assert_null(get(&t, "c", 1, 0));
    /* a put of a key replaces its entry: the newer wins, the bytes counted once */
    lru_insert(&t, &make("b", 1, 20, 15, 100)->node, 1000, 0);
    assert_int_equal(get(&t, "b", 1, 0)->value, 20);
    assert_int_equal(t.entries, 3);
    assert_int_equal(t.bytes, 35);
    /* removing one from the middle of a chain leaves the others */
    lru_remove(&t, &get(&t, "a", 1, 0)->node);
    assert_null(get(&t, "a", 1, 0));
    assert_int_equal(get(&t, "b", 1, 0)->value, 20);
    assert_int_equal(get(&t, "ab", 5, 0)->value, 3);
    lru_clear(&t);
    assert_int_equal(t.bytes, 0);
    assert_int_equal(t.entries, 0);
    assert_null(t.newest);
    assert_null(t.oldest);
}

static void test_room_is_made_oldest_first(void **state)
{
    lru_node *buckets[8] = {0};
    lru_table t;
    lru_init(&t, buckets, 8);
    char k[16];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        lru_insert(&t, &make(k, (uint64_t)i, i, 10, 100)->node, 40, 0);
    }
    lru_touch(&t, &get(&t, "k0", 0, 0)->node); /* k1 is the least recently used now */
    lru_insert(&t, &make("k4", 4, 4, 10, 100)->node, 40, 0);
    assert_null(get(&t, "k1", 1, 0));
    assert_non_null(get(&t, "k0", 0, 0));
    assert_int_equal(t.evicted, 1);
    assert_int_equal(t.bytes, 40);
    lru_clear(&t);
    /* an entry past its lifetime met on the way out counts as expired, not evicted */
    lru_table u;
    lru_node *more[8] = {0};
    lru_init(&u, more, 8);
    lru_insert(&u, &make("e1", 1, 1, 10, 20)->node, 20, 0); /* expires at 20 */
    lru_insert(&u, &make("e2", 2, 2, 10, 100)->node, 20, 0);
    lru_insert(&u, &make("e3", 3, 3, 10, 100)->node, 20, 50); /* at 50: e1 goes, expired */
    assert_int_equal(u.entries, 2);
    assert_int_equal(u.expired, 1);
    assert_int_equal(u.evicted, 0);
    assert_null(get(&u, "e1", 1, 50));
    /* found past its lifetime: dropped and counted */
    assert_null(get(&u, "e2", 2, 100));
    assert_int_equal(u.expired, 2);
    assert_int_equal(u.bytes, 10);
    lru_clear(&u);
    /* a bound that went down */
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        lru_insert(&t, &make(k, (uint64_t)i, i, 10, 1000)->node, 100, 0);
    }
    lru_shrink(&t, 25, 0);
    assert_int_equal(t.entries, 2);
    assert_non_null(get(&t, "k3", 3, 0));
    assert_non_null(get(&t, "k2", 2, 0));
    lru_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_of_one_bucket_and_hash_stay_apart),
        cmocka_unit_test(test_room_is_made_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
