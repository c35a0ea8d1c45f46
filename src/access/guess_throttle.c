/* guess_throttle.c — the throttle of wrong keys per client address, with a global ceiling
 * (guess_throttle.h).
 *
 * Why: gateway keys are 256 random bits, but the master key is chosen by a person (16 visible
 * characters at least) and opens everything: every endpoint, the admin API, the dashboard's
 * login. Unthrottled, a script tries a dictionary as fast as aigw answers. So an address that
 * presented GUESS_ADDRESS_FAILURES wrong keys within GUESS_WINDOW_S of its first may present no
 * other key that needs the master key's comparison until that window ends — its callers answer
 * 429 with Retry-After and do not compare, so a right guess made while refused is not told apart
 * from a wrong one. Rotating addresses does not multiply the guesses: past GUESS_GLOBAL_FAILURES
 * wrong keys from all addresses together in the global window, every address waits the same way
 * — except one the master key came from within GUESS_TRUSTED_S, so an operator already in is not
 * locked out by a distributed guesser (only by failures of their own address). A success does
 * not wipe its address's failures: whoever holds one key (an admin key, a dashboard session)
 * gains no extra guesses at another. What waits are guesses; a refused attempt is not counted
 * (it tested nothing), so a client that keeps trying does not push its own window on.
 *
 * The table: GUESS_TABLE_SETS sets of GUESS_TABLE_WAYS entries, an address's set chosen by
 * SipHash under a key drawn at start (libsodium's crypto_shorthash), so nobody can aim many
 * addresses at one set. A new address takes a free way of its set, else one whose window is over
 * and that is not trusted, else the least recently seen untrusted one, else the least recently
 * seen: a fixed size whatever the traffic, evicting least recently used within a set (a
 * set-associative cache). Eviction can forget an address's failures early; that is what the
 * global ceiling bounds. One mutex: it is taken only by requests whose key is no gateway key
 * (the master key's, wrong ones), twice each, for a hash and a scan of 16 entries. Between the
 * two (admit, then failed) another worker may admit the same address: with N workers an address
 * can pass its limit by N - 1 guesses in a window, no more.
 *
 * Rejected: a sliding log of failure times (a window's worth of timestamps per address, for a
 * finer rate than this one needs); a global ceiling without the trusted exception (anyone could
 * keep the operator out by spraying wrong keys from many addresses); exempting loopback (a local
 * process can guess too, and the tests could not see the throttle). Known limit: behind a proxy
 * every client has the proxy's address, so they share one address's budget (aigw reads no
 * X-Forwarded-For: a client could write any address there). */
#include "access/guess_throttle.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct guess_entry {
    bool used;
    uint8_t addr[16]; /* the address as counted (an IPv6 address's /64, the rest zero) */
    uint32_t failures;
    int64_t window_start;  /* the first failure of the address's current window */
    int64_t trusted_until; /* the master key came from here: the global ceiling spares it until then */
    int64_t last_seen;
} guess_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static guess_entry table[GUESS_TABLE_SETS][GUESS_TABLE_WAYS];
static uint32_t global_failures;
static int64_t global_start;
static uint8_t hash_key[crypto_shorthash_KEYBYTES];
static bool keyed;

/* An IPv4 address (mapped) stays whole; an IPv6 one is its /64. */
static void counted_address(const uint8_t addr[16], uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(out, addr, 16);
    if (memcmp(addr, mapped, sizeof mapped) != 0) memset(out + 8, 0, 8);
}

/* The set of an address (lock held). */
static guess_entry *set_of(const uint8_t addr[16])
{
    if (!keyed) {
        if (sodium_init() < 0) abort();
        randombytes_buf(hash_key, sizeof hash_key);
        keyed = true;
    }
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, addr, 16, hash_key);
    uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    return table[n % GUESS_TABLE_SETS];
}

static guess_entry *find(guess_entry *set, const uint8_t addr[16])
{
    for (size_t i = 0; i < GUESS_TABLE_WAYS; i++)
        if (set[i].used && !memcmp(set[i].addr, addr, 16)) return &set[i];
    return NULL;
}

/* The address's entry, made when missing (lock held). */
static guess_entry *find_or_take(const uint8_t addr[16], int64_t now)
{
    guess_entry *set = set_of(addr), *e = find(set, addr);
    if (e) return e;
    guess_entry *stale = NULL, *lru_untrusted = NULL, *lru = NULL;
    for (size_t i = 0; i < GUESS_TABLE_WAYS; i++) {
        guess_entry *w = &set[i];
        if (!w->used) {
            e = w;
            break;
        }
        bool trusted = w->trusted_until > now;
        if (!trusted && !stale && now - w->window_start >= GUESS_WINDOW_S) stale = w;
        if (!trusted && (!lru_untrusted || w->last_seen < lru_untrusted->last_seen)) lru_untrusted = w;
        if (!lru || w->last_seen < lru->last_seen) lru = w;
    }
    if (!e) e = stale ? stale : lru_untrusted ? lru_untrusted : lru;
    *e = (guess_entry){.used = true, .last_seen = now};
    memcpy(e->addr, addr, 16);
    return e;
}

static int64_t at_least_one(int64_t s)
{
    return s < 1 ? 1 : s;
}

guess_verdict guess_throttle_admit(const uint8_t addr[16], int64_t now, int64_t *retry_after_s)
{
    uint8_t a[16];
    counted_address(addr, a);
    guess_verdict v = GUESS_ADMITTED;
    pthread_mutex_lock(&lock);
    guess_entry *e = find(set_of(a), a);
    if (e) e->last_seen = now;
    if (e && e->failures >= GUESS_ADDRESS_FAILURES && now - e->window_start < GUESS_WINDOW_S) {
        v = GUESS_ADDRESS_LIMITED;
        *retry_after_s = at_least_one(e->window_start + GUESS_WINDOW_S - now);
    } else if (global_failures >= GUESS_GLOBAL_FAILURES && now - global_start < GUESS_WINDOW_S &&
               !(e && e->trusted_until > now)) {
        v = GUESS_GLOBALLY_LIMITED;
        *retry_after_s = at_least_one(global_start + GUESS_WINDOW_S - now);
    }
    pthread_mutex_unlock(&lock);
    return v;
}

void guess_throttle_failed(const uint8_t addr[16], int64_t now)
{
    uint8_t a[16];
    counted_address(addr, a);
    pthread_mutex_lock(&lock);
    if (now - global_start >= GUESS_WINDOW_S) {
        global_start = now;
        global_failures = 0;
    }
    global_failures++;
    guess_entry *e = find_or_take(a, now);
    if (now - e->window_start >= GUESS_WINDOW_S) {
        e->window_start = now;
        e->failures = 0;
    }
    e->failures++;
    e->last_seen = now;
    pthread_mutex_unlock(&lock);
}

void guess_throttle_succeeded(const uint8_t addr[16], int64_t now)
{
    uint8_t a[16];
    counted_address(addr, a);
    pthread_mutex_lock(&lock);
    guess_entry *e = find_or_take(a, now);
    e->trusted_until = now + GUESS_TRUSTED_S;
    e->last_seen = now;
    pthread_mutex_unlock(&lock);
}

void guess_throttle_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(table, 0, sizeof table);
    global_failures = 0;
    global_start = 0;
    pthread_mutex_unlock(&lock);
}
