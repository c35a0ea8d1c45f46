/* test_guess_throttle.c — the throttle of wrong keys per client address (access/guess_throttle.c):
 * the eleventh guess of a minute refused with the time left, other addresses unaffected, the
 * window's end forgiving, an IPv6 /64 counted as one, the global ceiling over rotating
 * addresses and the operator it spares, a success forgiving nothing, and the fixed table
 * evicting the least recently seen of a set while keeping trusted addresses. */
#include "../../src/access/guess_throttle.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void ipv4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = a, out[13] = b, out[14] = c, out[15] = d;
}

/* 2001:db8:<net>::<host> */
static void ipv6(uint8_t out[16], uint16_t net, uint16_t host)
{
    memset(out, 0, 16);
    out[0] = 0x20, out[1] = 0x01, out[2] = 0x0d, out[3] = 0xb8;
    out[6] = (uint8_t)(net >> 8), out[7] = (uint8_t)net;
    out[14] = (uint8_t)(host >> 8), out[15] = (uint8_t)host;
}

static guess_verdict admit(const uint8_t addr[16], int64_t now, int64_t *wait)
{
    int64_t w = -1;
    guess_verdict v = guess_throttle_admit(addr, now, &w);
    if (wait) *wait = w;
    return v;
}

/* n wrong keys from addr at now, each admitted first */
static void guesses(const uint8_t addr[16], int64_t now, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(admit(addr, now, NULL), GUESS_ADMITTED);
        guess_throttle_failed(addr, now);
    }
}

static void test_address_limit(void **state)
{
    (void)state;
    guess_throttle_reset();
    uint8_t a[16], b[16];
    ipv4(a, 192, 0, 2, 1);
    ipv4(b, 192, 0, 2, 2);
    guesses(a, 1000, 3);
    guesses(a, 1020, GUESS_ADDRESS_FAILURES - 3); /* the window began at 1000 */
    int64_t wait;
    assert_int_equal(admit(a, 1030, &wait), GUESS_ADDRESS_LIMITED);
    assert_int_equal(wait, 30);
    assert_int_equal(admit(a, 1059, &wait), GUESS_ADDRESS_LIMITED);
    assert_int_equal(wait, 1);
    /* another address is not held back by a's failures */
    assert_int_equal(admit(b, 1030, NULL), GUESS_ADMITTED);
    /* refused attempts are not counted: the window still ends at 1060 */
    for (int i = 0; i < 50; i++)
        assert_int_equal(admit(a, 1040, NULL), GUESS_ADDRESS_LIMITED);
    assert_int_equal(admit(a, 1060, NULL), GUESS_ADMITTED);
    /* the new window starts at the next failure and counts from zero */
    guesses(a, 1061, GUESS_ADDRESS_FAILURES - 1);
    assert_int_equal(admit(a, 1062, NULL), GUESS_ADMITTED);
    guess_throttle_failed(a, 1062);
    assert_int_equal(admit(a, 1062, &wait), GUESS_ADDRESS_LIMITED);
    assert_int_equal(wait, 59);
}

static void test_success_forgives_nothing(void **state)
{
    (void)state;
    guess_throttle_reset();
    uint8_t a[16];
    ipv4(a, 198, 51, 100, 7);
    guesses(a, 5000, GUESS_ADDRESS_FAILURES - 1);
    guess_throttle_succeeded(a, 5001); /* the master key came from here */
    assert_int_equal(admit(a, 5002, NULL), GUESS_ADMITTED);
    guess_throttle_failed(a, 5002);
    /* whoever holds the master key (or shares its address) does not get more guesses */
    assert_int_equal(admit(a, 5003, NULL), GUESS_ADDRESS_LIMITED);
}

static void test_ipv6_counts_per_64(void **state)
{
    (void)state;
    guess_throttle_reset();
    uint8_t host[16], other_net[16];
    /* every guess from a new address of the same /64 */
    for (int i = 0; i < GUESS_ADDRESS_FAILURES; i++) {
        ipv6(host, 1, (uint16_t)(i + 1));
        assert_int_equal(admit(host, 2000, NULL), GUESS_ADMITTED);
        guess_throttle_failed(host, 2000);
    }
    ipv6(host, 1, 999);
    assert_int_equal(admit(host, 2001, NULL), GUESS_ADDRESS_LIMITED);
    ipv6(other_net, 2, 1);
    assert_int_equal(admit(other_net, 2001, NULL), GUESS_ADMITTED);
    /* an IPv4 address is not widened: its neighbour is its own */
    uint8_t v4[16], v4_next[16];
    ipv4(v4, 203, 0, 113, 1);
    ipv4(v4_next, 203, 0, 113, 2);
    guesses(v4, 2000, GUESS_ADDRESS_FAILURES);
    assert_int_equal(admit(v4, 2001, NULL), GUESS_ADDRESS_LIMITED);
    assert_int_equal(admit(v4_next, 2001, NULL), GUESS_ADMITTED);
}

static void test_global_ceiling(void **state)
{
    (void)state;
    guess_throttle_reset();
    uint8_t operator[16], fresh[16], a[16];
    ipv4(operator, 10, 0, 0, 1);
    ipv4(fresh, 10, 0, 0, 2);
    guess_throttle_succeeded(operator, 2900); /* logged in before the attack */
    /* a guesser rotating addresses: a few guesses each, never an address's limit */
    int made = 0;
    for (int i = 0; made < GUESS_GLOBAL_FAILURES; i++) {
        ipv4(a, 172, 16, (uint8_t)(i / 200), (uint8_t)(i % 200 + 1));
        for (int k = 0; k < 3 && made < GUESS_GLOBAL_FAILURES; k++, made++) {
            assert_int_equal(admit(a, 3000 + made / 10, NULL), GUESS_ADMITTED);
            guess_throttle_failed(a, 3000 + made / 10);
        }
    }
    /* the ceiling is reached at 3009 (the window began at 3000): a new address waits… */
    ipv4(a, 172, 17, 0, 1);
    int64_t wait;
    assert_int_equal(admit(a, 3010, &wait), GUESS_GLOBALLY_LIMITED);
    assert_int_equal(wait, 50);
    assert_int_equal(admit(fresh, 3010, NULL), GUESS_GLOBALLY_LIMITED);
    /* …the operator whose address the master key came from does not */
    assert_int_equal(admit(operator, 3010, NULL), GUESS_ADMITTED);
    /* the global window ends and everyone may try again */
    assert_int_equal(admit(fresh, 3060, NULL), GUESS_ADMITTED);
    /* trust lapses */
    guess_throttle_reset();
    guess_throttle_succeeded(operator, 100);
    for (int i = 0; i < GUESS_GLOBAL_FAILURES; i++) {
        ipv4(a, 172, 18, (uint8_t)(i / 200), (uint8_t)(i % 200 + 1));
        guess_throttle_failed(a, 100 + GUESS_TRUSTED_S);
    }
    assert_int_equal(admit(operator, 100 + GUESS_TRUSTED_S, NULL), GUESS_GLOBALLY_LIMITED);
}

/* Addresses that land in the same set as target (the hash is keyed, so they are searched for). */
static int same_set(const uint8_t target[16], uint8_t out[][16], int want, uint8_t first_octet)
{
    guess_entry *set = set_of(target);
    int n = 0;
    for (uint32_t i = 1; n < want && i < 16u * 1024 * 1024; i++) {
        uint8_t c[16];
        ipv4(c, first_octet, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        if (set_of(c) == set && memcmp(c, target, 16)) memcpy(out[n++], c, 16);
    }
    return n;
}

static void test_table_bounded_lru(void **state)
{
    (void)state;
    guess_throttle_reset();
    uint8_t victim[16], trusted[16], others[GUESS_TABLE_WAYS + 2][16];
    ipv4(victim, 100, 64, 0, 1);
    assert_int_equal(same_set(victim, others, GUESS_TABLE_WAYS + 2, 101), GUESS_TABLE_WAYS + 2);
    /* the victim reaches its limit; 15 more addresses of its set make the set full */
    guesses(victim, 4000, GUESS_ADDRESS_FAILURES);
    for (int i = 0; i < GUESS_TABLE_WAYS - 1; i++)
        guesses(others[i], 4001 + i, 1);
    assert_int_equal(admit(victim, 4020, NULL), GUESS_ADDRESS_LIMITED); /* still remembered: seen now */
    /* a 17th address of the set takes the least recently seen way: others[0], not the victim */
    guesses(others[GUESS_TABLE_WAYS - 1], 4021, 1);
    assert_int_equal(admit(victim, 4022, NULL), GUESS_ADDRESS_LIMITED);
    assert_null(find(set_of(others[0]), others[0]));
    /* untouched for longer than the others, the victim goes next: eviction forgets (the global
     * ceiling is what bounds that) */
    for (int i = 1; i < GUESS_TABLE_WAYS; i++)
        assert_int_equal(admit(others[i], 4030, NULL), GUESS_ADMITTED);
    guesses(others[GUESS_TABLE_WAYS], 4031, 1);
    assert_null(find(set_of(victim), victim));
    assert_int_equal(admit(victim, 4032, NULL), GUESS_ADMITTED);

    /* a trusted address is the last to go: a set full of guessers evicts guessers */
    guess_throttle_reset();
    memcpy(trusted, victim, 16);
    guess_throttle_succeeded(trusted, 5000);
    for (int i = 0; i < GUESS_TABLE_WAYS + 2; i++)
        guesses(others[i], 5001 + i, 1);
    guess_entry *e = find(set_of(trusted), trusted);
    assert_non_null(e);
    assert_true(e->trusted_until > 5100);
    /* every way of every set taken, the table is the same size: nothing grows */
    assert_int_equal(sizeof table, sizeof(guess_entry) * GUESS_TABLE_SETS * GUESS_TABLE_WAYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_limit),      cmocka_unit_test(test_success_forgives_nothing),
        cmocka_unit_test(test_ipv6_counts_per_64), cmocka_unit_test(test_global_ceiling),
        cmocka_unit_test(test_table_bounded_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
