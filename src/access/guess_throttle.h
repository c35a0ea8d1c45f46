/* guess_throttle.h — how often a client address may present a wrong key: the bound on guessing
 * the master key (guess_throttle.c says why and how).
 *
 * A wrong key is one that is presented and is neither a gateway key of the snapshot nor the
 * master key. Callers ask guess_throttle_admit before comparing a key found in no snapshot with
 * the master key, and tell the outcome afterwards: guess_throttle_failed for a wrong key,
 * guess_throttle_succeeded for the master key. A gateway key found in the snapshot is never
 * asked about (256 random bits cannot be guessed; its requests take no lock here).
 *
 * Addresses are 16 bytes as the server reads them (request.h's client_addr: IPv6, or IPv4 as
 * ::ffff:a.b.c.d). An IPv6 address counts as its /64 — one host is commonly given a whole /64,
 * so its 2^64 addresses must not be 2^64 budgets. Every function is thread-safe and does no I/O. */
#ifndef AIGW_ACCESS_GUESS_THROTTLE_H
#define AIGW_ACCESS_GUESS_THROTTLE_H

#include <stdint.h>

#define GUESS_WINDOW_S 60           /* failures are counted over this long, from the first */
#define GUESS_ADDRESS_FAILURES 10   /* one address's wrong keys per window; then it waits */
#define GUESS_GLOBAL_FAILURES 100   /* every address's together per window; then all wait… */
#define GUESS_TRUSTED_S (24 * 3600) /* …but an address the master key came from within this long */
#define GUESS_TABLE_SETS 256        /* addresses remembered: sets × ways, least recently seen */
#define GUESS_TABLE_WAYS 16         /*   of a set goes first (a fixed 4,096 entries, ~200 KiB) */

typedef enum guess_verdict {
    GUESS_ADMITTED,         /* compare the key */
    GUESS_ADDRESS_LIMITED,  /* this address had GUESS_ADDRESS_FAILURES wrong keys in its window */
    GUESS_GLOBALLY_LIMITED, /* all addresses together had GUESS_GLOBAL_FAILURES in theirs */
} guess_verdict;

/* Whether a key from addr may be compared with the master key at now (unix seconds). When not,
 * *retry_after_s is how long until it may (1 at least). */
guess_verdict guess_throttle_admit(const uint8_t addr[16], int64_t now, int64_t *retry_after_s);
/* A wrong key came from addr: counted against it and against the global ceiling. */
void guess_throttle_failed(const uint8_t addr[16], int64_t now);
/* The master key came from addr: the global ceiling does not hold it back for GUESS_TRUSTED_S
 * (its own failures still count: a success forgives none of them). */
void guess_throttle_succeeded(const uint8_t addr[16], int64_t now);
/* Forgets every address and the global count (tests). */
void guess_throttle_reset(void);

#endif
