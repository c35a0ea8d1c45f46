/* random.h — a fast per-thread generator for choices and ids that need no secrecy (load
 * balancing, jitter, trace and span ids): xorshift64*, its state a worker's own word. Keys and
 * secrets come from libsodium, never from here. */
#ifndef AIGW_UTIL_RANDOM_H
#define AIGW_UTIL_RANDOM_H

#include <stdint.h>

static inline uint64_t random_next(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

#endif
