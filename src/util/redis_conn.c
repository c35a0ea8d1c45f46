/* redis_conn.c — a self-reopening hiredis connection on a libuv loop, with its calls' deadlines
 * (redis_conn.h). */
#include "util/redis_conn.h"

#include <stdio.h>
#include <stdlib.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>

#include "util/log.h"

/* ---- outages ------------------------------------------------------------------------------------- */

static void note_outage(redis_conn *c, const char *why)
{
    redis_outage *o = c->outage;
    bool was = false;
    if (atomic_compare_exchange_strong(&o->down, &was, true)) {
        atomic_store(&o->unanswered_at_outage, atomic_load(&o->unanswered));
        log_event(LOG_WARN, o->down_event, "%s: Redis at %s cannot be reached (%s); until it is back, %s",
                  o->part, c->target.url, why, o->meanwhile);
    }
}

void redis_conn_back(redis_conn *c)
{
    redis_outage *o = c->outage;
    if (!atomic_load_explicit(&o->down, memory_order_relaxed)) return; /* the usual case: one load */
    bool was = true;
    if (atomic_compare_exchange_strong(&o->down, &was, false))
        log_event(LOG_INFO, o->up_event, "%s: Redis at %s is back (%llu %s meanwhile)", o->part,
                  c->target.url,
                  (unsigned long long)(atomic_load(&o->unanswered) - atomic_load(&o->unanswered_at_outage)),
                  o->missed);
}

void redis_outage_unanswered(redis_outage *o)
{
    atomic_fetch_add(&o->unanswered, 1);
}

/* ---- the connection ------------------------------------------------------------------------------ */

static void connect_now(redis_conn *c);

static void on_reconnect_timer(uv_timer_t *t)
{
    redis_conn *c = t->data;
    if (!c->closing && !c->ctx) connect_now(c);
}

static void lost(redis_conn *c, const char *why)
{
    c->ctx = NULL;
    c->connected = false;
    if (c->hooks->on_lost) c->hooks->on_lost(c);
    if (c->closing) return;
    note_outage(c, why);
    uv_timer_start(&c->reconnect_timer, on_reconnect_timer, REDIS_CONN_RECONNECT_MS, 0);
}

static void on_connect(const redisAsyncContext *ctx, int status)
{
    redis_conn *c = ctx->data;
    if (status != REDIS_OK) { /* hiredis frees ctx after this */
        lost(c, ctx->errstr[0] ? ctx->errstr : "cannot connect");
        return;
    }
    c->connected = true;
    c->stalled_since = 0;
    if (c->target.db) redisAsyncCommand((redisAsyncContext *)ctx, NULL, NULL, "SELECT %d", c->target.db);
    if (c->hooks->on_connected) c->hooks->on_connected(c);
    /* "back" is said by the first answer, not here: a hung Redis still accepts connections */
}

static void on_disconnect(const redisAsyncContext *ctx, int status)
{
    lost(ctx->data, status == REDIS_OK ? "closed" : ctx->errstr[0] ? ctx->errstr : "connection lost");
}

static void connect_now(redis_conn *c)
{
    redisAsyncContext *ctx = c->target.path[0] ? redisAsyncConnectUnix(c->target.path)
                                               : redisAsyncConnect(c->target.host, c->target.port);
    if (!ctx || ctx->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ctx ? ctx->errstr : "out of memory");
        if (ctx) redisAsyncFree(ctx);
        lost(c, why);
        return;
    }
    ctx->data = c;
    if (redisLibuvAttach(ctx, c->loop) != REDIS_OK) {
        redisAsyncFree(ctx);
        lost(c, "cannot attach to the loop");
        return;
    }
    redisAsyncSetConnectCallback(ctx, on_connect);
    redisAsyncSetDisconnectCallback(ctx, on_disconnect);
    c->ctx = ctx;
}

void redis_conn_open(redis_conn *c, uv_loop_t *loop, const redis_target *target, uint32_t timeout_ms,
                     const char *timeout_why, redis_outage *outage, const redis_conn_hooks *hooks,
                     void *owner)
{
    *c = (redis_conn){.loop = loop,
                      .target = *target,
                      .timeout_ms = timeout_ms,
                      .timeout_why = timeout_why,
                      .outage = outage,
                      .hooks = hooks,
                      .owner = owner};
    uv_timer_init(loop, &c->deadline_timer);
    uv_timer_init(loop, &c->reconnect_timer);
    c->deadline_timer.data = c->reconnect_timer.data = c;
    c->open_handles = 2;
    connect_now(c);
}

bool redis_conn_ready(const redis_conn *c)
{
    return c->connected && c->ctx && !c->closing;
}

redis_conn *redis_conn_of(const redisAsyncContext *ctx)
{
    return ctx->data;
}

void redis_conn_heard(redis_conn *c)
{
    c->stalled_since = 0;
}

/* ---- calls and their deadlines ------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    redis_conn *c = t->data;
    uint64_t now = uv_now(c->loop), next = 0;
    bool timed_out = false;
    for (redis_call *call = c->first; call; call = call->next) {
        if (call->answered) continue;
        if (call->deadline_ms <= now) {
            note_outage(c, c->timeout_why);
            c->hooks->on_unanswered(c, call);
            timed_out = true;
        } else if (!next || call->deadline_ms < next)
            next = call->deadline_ms;
    }
    if (next) uv_timer_start(&c->deadline_timer, on_deadline, next - now, 0);
    if (!timed_out || !c->ctx || c->closing) return;
    if (!c->stalled_since) {
        c->stalled_since = now;
    } else if (now - c->stalled_since >= REDIS_CONN_STALLED_MS) {
        /* hiredis answers every waiting call NULL (they are answered already), then on_disconnect
         * or nothing: either way the connection is gone and a new one is due */
        redisAsyncContext *ctx = c->ctx;
        c->stalled_since = 0;
        redisAsyncFree(ctx);
        if (c->ctx == ctx) lost(c, "no answer for a second");
    }
}

void redis_conn_track(redis_conn *c, redis_call *call)
{
    call->deadline_ms = uv_now(c->loop) + c->timeout_ms;
    call->answered = false;
    call->next = NULL;
    call->prev = c->last;
    if (c->last)
        c->last->next = call;
    else
        c->first = call;
    c->last = call;
    c->inflight++;
    if (!uv_is_active((uv_handle_t *)&c->deadline_timer))
        uv_timer_start(&c->deadline_timer, on_deadline, c->timeout_ms, 0);
}

void redis_conn_untrack(redis_conn *c, redis_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->first = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        c->last = call->prev;
    c->inflight--;
}

/* ---- closing ------------------------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    redis_conn *c = h->data;
    if (--c->open_handles == 0) c->hooks->on_closed(c);
}

void redis_conn_close(redis_conn *c)
{
    c->closing = true;
    for (redis_call *call = c->first; call; call = call->next)
        if (!call->answered) c->hooks->on_unanswered(c, call);
    /* hiredis calls every pending callback with NULL (the parts free their calls there), then
     * on_disconnect */
    if (c->ctx) redisAsyncFree(c->ctx);
    c->ctx = NULL;
    uv_close((uv_handle_t *)&c->deadline_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->reconnect_timer, on_timer_closed);
}
