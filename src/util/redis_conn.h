/* redis_conn.h — one hiredis async connection on a worker's libuv loop that keeps itself open,
 * and the calls waiting on it: shared by the parts that talk to Redis on the workers' loops (the
 * rate limiter's src/limits/limits_redis.c, the response cache's src/cache/cache_redis.c), which
 * add only their commands and what their answers mean.
 *
 * What it does for them:
 *   - connects in the background (hiredis's libuv adapter), selects the URL's database, and
 *     opens the connection again REDIS_CONN_RECONNECT_MS after it is lost;
 *   - keeps each call on a list in the order sent, with its deadline; one timer per connection
 *     fires at the oldest deadline and has every call past it answered "unavailable" by its part
 *     (hooks.on_unanswered). hiredis still owns the command: its callback comes later (the
 *     reply, or NULL when the connection is freed), and that is where the part frees the call —
 *     so no callback ever sees a freed call;
 *   - gives up a connection that has answered nothing for REDIS_CONN_STALLED_MS while its calls
 *     time out, and opens a new one: a Redis that hangs, or a connection's end that hiredis
 *     0.14's libuv adapter does not report (it ignores poll errors), must not stall the part
 *     until someone restarts aigw;
 *   - says, once per outage and per part for the whole process (not per worker, never per
 *     request), when Redis went away and when it is back, with how many calls went unanswered
 *     meanwhile (redis_outage).
 *
 * Rejected: one connection shared by the workers (a lock and a cross-thread wake-up per call,
 * for a round trip that is already cheaper than that), blocking calls (they would stall the
 * loop for as long as Redis does). Placed in util, below both parts (which may not include
 * each other), beside redis_target.c, which reads the URL. */
#ifndef AIGW_UTIL_REDIS_CONN_H
#define AIGW_UTIL_REDIS_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <uv.h>

#include "util/redis_target.h"

#define REDIS_CONN_RECONNECT_MS 250
#define REDIS_CONN_STALLED_MS 1000

/* One part's outages, process-wide (a static of the part). The words make its two lines:
 *   "<part>: Redis at <url> cannot be reached (<why>); until it is back, <meanwhile>"
 *   "<part>: Redis at <url> is back (<n> <missed> meanwhile)" */
typedef struct redis_outage {
    const char *part, *down_event, *up_event, *meanwhile, *missed;
    atomic_bool down;
    _Atomic uint64_t unanswered, unanswered_at_outage; /* calls that went unanswered, since start */
} redis_outage;

/* A call: the first member of a part's call, its place on the connection's list. */
typedef struct redis_call {
    struct redis_call *prev, *next;
    uint64_t deadline_ms; /* on the loop's clock */
    bool answered;        /* the part has answered it (or its caller no longer wants it) */
} redis_call;

typedef struct redis_conn redis_conn;

typedef struct redis_conn_hooks {
    /* Connected (and the database selected): a part's first commands (SCRIPT LOAD). NULL: none. */
    void (*on_connected)(redis_conn *c);
    /* The connection went away: what the part knew of it is forgotten. NULL: nothing. */
    void (*on_lost)(redis_conn *c);
    /* call is past its deadline, or the connection is closing: the part answers it
     * unavailable (and sets call->answered). It stays linked until hiredis's callback. */
    void (*on_unanswered)(redis_conn *c, redis_call *call);
    /* After redis_conn_close, its handles are closed: the part frees what holds c. */
    void (*on_closed)(redis_conn *c);
} redis_conn_hooks;

struct redis_conn {
    uv_loop_t *loop;
    redis_target target;
    uint32_t timeout_ms;
    const char *timeout_why; /* the outage's reason when calls time out ("no answer within …") */
    redis_outage *outage;
    const redis_conn_hooks *hooks;
    void *owner;            /* the part's, for its hooks */
    redisAsyncContext *ctx; /* NULL while disconnected; ctx->data is this connection */
    bool connected, closing;
    uv_timer_t deadline_timer, reconnect_timer;
    int open_handles;
    redis_call *first, *last; /* in the order sent */
    size_t inflight;
    uint64_t stalled_since; /* loop time of the first timeout since the last reply; 0: none */
};

/* Starts c (its memory the caller's, unmoved until on_closed) on loop: it connects in the
 * background. On the loop's thread. */
void redis_conn_open(redis_conn *c, uv_loop_t *loop, const redis_target *target, uint32_t timeout_ms,
                     const char *timeout_why, redis_outage *outage, const redis_conn_hooks *hooks,
                     void *owner);
/* Commands may be sent now: connected, not closing. */
bool redis_conn_ready(const redis_conn *c);
/* The part of the connection hiredis calls back with (a command's callback gets ctx). */
redis_conn *redis_conn_of(const redisAsyncContext *ctx);
/* Puts call at the end of the list with its deadline (now + timeout) and makes sure the timer
 * runs; after the command is sent (or before: the timer does not mind an early start). */
void redis_conn_track(redis_conn *c, redis_call *call);
/* Takes call off the list: from hiredis's callback, or when the command could not be sent. */
void redis_conn_untrack(redis_conn *c, redis_call *call);
/* A reply came: the connection is not stalled. */
void redis_conn_heard(redis_conn *c);
/* A reply that means Redis works: says "back" when it was down (one load when it was not). */
void redis_conn_back(redis_conn *c);
/* A call the part could not send or have answered: counted for the "back" line. Any thread. */
void redis_outage_unanswered(redis_outage *o);
/* Closes c: every call still waiting is answered unavailable first, hiredis calls each pending
 * callback with NULL, then on_closed once the handles are closed (the loop must run once more).
 * On the loop's thread. */
void redis_conn_close(redis_conn *c);

#endif
