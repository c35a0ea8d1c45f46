/* limits_internal.h — what limits.c shares with limits_redis.c (inside src/limits only): a
 * counter's identity and window, and how a count becomes what the client is told, so both
 * backends count the same windows and answer the same headers. */
#ifndef AIGW_LIMITS_LIMITS_INTERNAL_H
#define AIGW_LIMITS_LIMITS_INTERNAL_H

#include "limits/limits.h"

/* A counter's tag: a 64-bit hash of the subject's id with the rule in its low two bits; never 0. */
uint64_t limits__tag(const char *id, size_t len, limits_rule rule);
/* The number of the window now_ms falls in (low 24 bits of minutes or days since 1970). */
uint32_t limits__window(limits_rule rule, int64_t now_ms);
/* Milliseconds from now_ms to the end of its window. */
int64_t limits__reset_ms(limits_rule rule, int64_t now_ms);
/* Keeps the rule for the ticket's headers when it has the least remaining of its kind. */
void limits__note(limits_ticket *tk, limits_rule rule, int64_t max, int64_t count, int64_t now_ms);

#endif
