/* limits_redis.h — the rate limiter's Redis backend: the same windows and answers as the
 * in-process table (limits.h), counted in one Redis that every aigw instance shares.
 *
 * One connection per worker, on the worker's libuv loop (hiredis's async API and its libuv
 * adapter): a request's admission is one round trip — one Lua script (EVALSHA, loaded with
 * SCRIPT LOAD when the connection opens; EVAL when Redis answers NOSCRIPT) that checks every
 * counter of every subject and, only if none would pass its limit, counts them all. Counters
 * are keys "aigw:rl:TAG:WINDOW" (TAG: the 64-bit hash of subject and rule, as the in-process
 * table's; WINDOW: the clock's minute or day number), expiring a minute after their window, so
 * Redis holds only the live windows. Settlement is one fire-and-forget call of the same script.
 *
 * A request never waits more than the timeout: past it (or when the connection is down, or
 * LIMITS_REDIS_INFLIGHT_MAX calls already wait) the caller is told LIMITS_UNAVAILABLE at once
 * and applies its policy (open or closed); a reply that comes later is dropped. A lost
 * connection is opened again every REDIS_CONN_RECONNECT_MS (util/redis_conn.h, the connection
 * the response cache's Redis backend uses too), and so is one that has answered
 * nothing for a second while its calls time out (a hung Redis, or a connection's end that the
 * libuv adapter of hiredis 0.14 does not report: it ignores poll errors); one line on stderr says when
 * Redis went away and one when it came back (with how many requests went uncounted), for the
 * whole process, not per worker and never per request. */
#ifndef AIGW_LIMITS_LIMITS_REDIS_H
#define AIGW_LIMITS_LIMITS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "limits/limits.h"
#include "util/redis_target.h"

#define LIMITS_REDIS_INFLIGHT_MAX 4096 /* admissions waiting on one worker's connection */

/* Where Redis is (util/redis_target.h), read once at start. */
typedef redis_target limits_redis_target;

/* Reads redis://HOST[:PORT][/DB] or unix:PATH[?db=N] (a bare /PATH too). HOST is resolved now.
 * False with a message in err. */
bool limits_redis_target_parse(const char *url, limits_redis_target *out, char *err, size_t errlen);

typedef struct limits_redis limits_redis;

/* A connection for the worker whose loop this is; it connects in the background. */
limits_redis *limits_redis_new(uv_loop_t *loop, const limits_redis_target *target, uint32_t timeout_ms);
/* Closes the connection; admissions still waiting are told LIMITS_UNAVAILABLE first. On the
 * loop's thread; the loop must run once more for the handles to close. */
void limits_redis_close(limits_redis *r);

typedef enum limits_verdict {
    LIMITS_ADMITTED,
    LIMITS_REFUSED,
    LIMITS_UNAVAILABLE, /* Redis did not answer in time, or is not connected */
} limits_verdict;

/* The answer to an admission: the ticket is filled as limits_admit fills it (for ADMITTED and
 * REFUSED). Called on the loop, at most once. */
typedef void (*limits_redis_cb)(void *ud, limits_verdict verdict, const limits_ticket *ticket);
typedef struct limits_redis_call limits_redis_call;

/* Sends the admission of one request (as limits_admit). Returns the call, whose cb fires once;
 * or NULL when Redis cannot be asked now (not connected, too many waiting): cb never fires and
 * the caller treats it as LIMITS_UNAVAILABLE. */
limits_redis_call *limits_redis_admit(limits_redis *r, const limits_subject *subjects, size_t n,
                                      int64_t tokens, int64_t now_ms, limits_redis_cb cb, void *ud);
/* The caller no longer wants the answer (the client left): cb never fires after this. */
void limits_redis_cancel(limits_redis_call *c);
/* As limits_settle, sent without waiting for an answer (dropped when not connected). */
void limits_redis_settle(limits_redis *r, const limits_ticket *ticket, int64_t tokens, int64_t now_ms);

/* Requests admitted or refused by policy, uncounted, while Redis could not be asked (since start). */
uint64_t limits_redis_uncounted(void);

#endif
