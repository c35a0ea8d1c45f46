/* limits_redis.c — the Redis backend of the rate limiter (limits_redis.h): one hiredis async
 * connection per worker on its libuv loop, one Lua script per admission.
 *
 * The script checks every counter first and counts only when none would pass, so a refused
 * request counts nowhere (as the in-process table's rollback does) and the check and the count
 * are one atomic step in Redis: two instances cannot both take the 60th request of a minute.
 * Rejected: MULTI/EXEC of INCRs (the check would need a second round trip), one key per subject
 * holding a hash of rules (a refused rule's sibling would still need rolling back), GCRA (see
 * limits.h: it is not what rpm_limit reads as).
 *
 * Waiting: each call is on a list in the order sent, with its deadline; one timer per
 * connection fires at the oldest deadline and answers every call past it LIMITS_UNAVAILABLE.
 * hiredis still owns the command: its callback comes later (the reply, or NULL when the
 * connection is freed) and frees the call then. A call is freed only from hiredis's callback,
 * so no callback ever sees a freed call. */
#include "limits/limits_redis.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "limits/limits_internal.h"
#include "util/log.h"

/* KEYS: the counters. ARGV[1]: "admit" or "settle"; then for counter i: ARGV[3i-1] the amount,
 * ARGV[3i] the limit (-1: none), ARGV[3i+1] the key's time to live (ms). Admit answers {i, count}
 * when counter i would pass its limit (nothing counted), else {0, count1, count2, …} after. */
static const char script[] = "local n = #KEYS\n"
                             "if ARGV[1] == 'admit' then\n"
                             "  for i = 1, n do\n"
                             "    local max = tonumber(ARGV[3*i])\n"
                             "    if max >= 0 then\n"
                             "      local c = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
                             "      if c + tonumber(ARGV[3*i-1]) > max then return {i, c} end\n"
                             "    end\n"
                             "  end\n"
                             "end\n"
                             "local out = {0}\n"
                             "for i = 1, n do\n"
                             "  local amount = tonumber(ARGV[3*i-1])\n"
                             "  local v = 0\n"
                             "  if amount >= 0 then\n"
                             "    v = redis.call('INCRBY', KEYS[i], amount)\n"
                             "    if v == amount then redis.call('PEXPIRE', KEYS[i], ARGV[3*i+1]) end\n"
                             "  elseif redis.call('EXISTS', KEYS[i]) == 1 then\n"
                             "    v = redis.call('INCRBY', KEYS[i], amount)\n"
                             "    if v < 0 then v = redis.call('INCRBY', KEYS[i], -v) end\n"
                             "  end\n"
                             "  out[i+1] = v\n"
                             "end\n"
                             "return out\n";

#define COUNTERS_MAX (LIMITS_SUBJECTS_MAX * LIMITS_RULES)
#define ARGS_MAX (4 + COUNTERS_MAX * 4)
#define KEY_TTL_MARGIN_MS 60000

/* process-wide: one line per outage, whichever worker sees it first */
static atomic_bool outage;
static _Atomic uint64_t uncounted, uncounted_at_outage;

uint64_t limits_redis_uncounted(void)
{
    return atomic_load(&uncounted);
}

struct limits_redis_call {
    limits_redis *r;
    limits_redis_cb cb;
    void *ud;
    uint64_t deadline_ms; /* on the loop's clock */
    bool answered;        /* cb has fired, or the caller cancelled */
    bool retried;         /* sent again as EVAL after NOSCRIPT */
    struct limits_redis_call *prev, *next;
    /* what the answer is read against */
    int64_t now_ms, tokens;
    size_t ncounters;
    struct {
        uint64_t tag;
        uint32_t window;
        uint8_t rule, subject;
        int64_t max, amount;
    } counters[COUNTERS_MAX];
    /* the command, kept for a retry */
    int argc;
    const char *argv[ARGS_MAX];
    size_t argvlen[ARGS_MAX];
    char strings[COUNTERS_MAX * 96 + 64];
};

struct limits_redis {
    uv_loop_t *loop;
    limits_redis_target target;
    uint32_t timeout_ms;
    redisAsyncContext *ctx; /* NULL while disconnected */
    bool connected, closing;
    char sha[41]; /* the script's, once SCRIPT LOAD answered */
    uv_timer_t deadline_timer, reconnect_timer;
    int open_handles;
    limits_redis_call *first, *last; /* in the order sent */
    size_t inflight;
    uint64_t stalled_since; /* loop time of the first timeout since the last reply; 0: none */
};

/* ---- where Redis is ------------------------------------------------------------------------------ */

bool limits_redis_target_parse(const char *url, limits_redis_target *out, char *err, size_t errlen)
{
    return redis_target_parse(url, "auth.limits.redis", out, err, errlen);
}

/* ---- the connection ------------------------------------------------------------------------------ */

static void connect_now(limits_redis *r);

static void note_outage(limits_redis *r, const char *why)
{
    bool was = false;
    if (atomic_compare_exchange_strong(&outage, &was, true)) {
        atomic_store(&uncounted_at_outage, atomic_load(&uncounted));
        log_event(LOG_WARN, "redis_down",
                  "rate limits: Redis at %s cannot be reached (%s); until it is back, requests of "
                  "limited keys are admitted or refused as auth.limits.on_redis_error says",
                  r->target.url, why);
    }
}

static void note_back(limits_redis *r)
{
    if (!atomic_load_explicit(&outage, memory_order_relaxed)) return; /* the usual case: one load */
    bool was = true;
    if (atomic_compare_exchange_strong(&outage, &was, false))
        log_event(LOG_INFO, "redis_up",
                  "rate limits: Redis at %s is back (%llu requests went uncounted meanwhile)", r->target.url,
                  (unsigned long long)(atomic_load(&uncounted) - atomic_load(&uncounted_at_outage)));
}

static void on_reconnect_timer(uv_timer_t *t)
{
    limits_redis *r = t->data;
    if (!r->closing && !r->ctx) connect_now(r);
}

static void lost(limits_redis *r, const char *why)
{
    r->ctx = NULL;
    r->connected = false;
    r->sha[0] = '\0';
    if (r->closing) return;
    note_outage(r, why);
    uv_timer_start(&r->reconnect_timer, on_reconnect_timer, LIMITS_REDIS_RECONNECT_MS, 0);
}

static void on_script_loaded(redisAsyncContext *ctx, void *reply, void *privdata)
{
    limits_redis *r = ctx->data;
    redisReply *rep = reply;
    if (r && rep && rep->type == REDIS_REPLY_STRING && rep->len == 40) memcpy(r->sha, rep->str, 41);
}

static void on_connect(const redisAsyncContext *ctx, int status)
{
    limits_redis *r = ctx->data;
    if (status != REDIS_OK) { /* hiredis frees ctx after this */
        lost(r, ctx->errstr[0] ? ctx->errstr : "cannot connect");
        return;
    }
    r->connected = true;
    r->stalled_since = 0;
    redisAsyncContext *c = (redisAsyncContext *)ctx;
    if (r->target.db) redisAsyncCommand(c, NULL, NULL, "SELECT %d", r->target.db);
    redisAsyncCommand(c, on_script_loaded, NULL, "SCRIPT LOAD %s", script);
    /* "back" is said by the first answer, not here: a hung Redis still accepts connections */
}

static void on_disconnect(const redisAsyncContext *ctx, int status)
{
    limits_redis *r = ctx->data;
    lost(r, status == REDIS_OK ? "closed" : ctx->errstr[0] ? ctx->errstr : "connection lost");
}

static void connect_now(limits_redis *r)
{
    redisAsyncContext *ctx = r->target.path[0] ? redisAsyncConnectUnix(r->target.path)
                                               : redisAsyncConnect(r->target.host, r->target.port);
    if (!ctx || ctx->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ctx ? ctx->errstr : "out of memory");
        if (ctx) redisAsyncFree(ctx);
        lost(r, why);
        return;
    }
    ctx->data = r;
    if (redisLibuvAttach(ctx, r->loop) != REDIS_OK) {
        redisAsyncFree(ctx);
        lost(r, "cannot attach to the loop");
        return;
    }
    redisAsyncSetConnectCallback(ctx, on_connect);
    redisAsyncSetDisconnectCallback(ctx, on_disconnect);
    r->ctx = ctx;
}

limits_redis *limits_redis_new(uv_loop_t *loop, const limits_redis_target *target, uint32_t timeout_ms)
{
    limits_redis *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->loop = loop;
    r->target = *target;
    r->timeout_ms = timeout_ms;
    uv_timer_init(loop, &r->deadline_timer);
    uv_timer_init(loop, &r->reconnect_timer);
    r->deadline_timer.data = r->reconnect_timer.data = r;
    r->open_handles = 2;
    connect_now(r);
    return r;
}

static void on_timer_closed(uv_handle_t *h)
{
    limits_redis *r = h->data;
    if (--r->open_handles == 0) free(r);
}

static void answer(limits_redis_call *c, limits_verdict v, const limits_ticket *tk)
{
    if (c->answered) return;
    c->answered = true;
    if (v == LIMITS_UNAVAILABLE) atomic_fetch_add(&uncounted, 1);
    c->cb(c->ud, v, tk);
}

void limits_redis_close(limits_redis *r)
{
    if (!r) return;
    r->closing = true;
    for (limits_redis_call *c = r->first; c; c = c->next)
        answer(c, LIMITS_UNAVAILABLE, NULL);
    /* hiredis calls every pending callback with NULL (which frees the calls) and then
     * on_disconnect */
    if (r->ctx) redisAsyncFree(r->ctx);
    r->ctx = NULL;
    uv_close((uv_handle_t *)&r->deadline_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->reconnect_timer, on_timer_closed);
}

/* ---- admission ------------------------------------------------------------------------------------ */

static void unlink_call(limits_redis_call *c)
{
    limits_redis *r = c->r;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->last = c->prev;
    r->inflight--;
}

/* A connection that has answered nothing for this long while calls time out is given up and
 * opened again: a Redis that hangs, or a connection whose end went unnoticed (hiredis 0.14's
 * libuv adapter ignores poll errors), must not stall the limits until someone restarts aigw. */
#define STALLED_RECONNECT_MS 1000

static void on_deadline(uv_timer_t *t)
{
    limits_redis *r = t->data;
    uint64_t now = uv_now(r->loop);
    uint64_t next = 0;
    bool timed_out = false;
    for (limits_redis_call *c = r->first; c; c = c->next) {
        if (c->answered) continue;
        if (c->deadline_ms <= now) {
            note_outage(r, "no answer within auth.limits.timeout");
            answer(c, LIMITS_UNAVAILABLE, NULL);
            timed_out = true;
        } else if (!next || c->deadline_ms < next)
            next = c->deadline_ms;
    }
    if (next) uv_timer_start(&r->deadline_timer, on_deadline, next - now, 0);
    if (!timed_out || !r->ctx || r->closing) return;
    if (!r->stalled_since) {
        r->stalled_since = now;
    } else if (now - r->stalled_since >= STALLED_RECONNECT_MS) {
        /* hiredis answers every waiting call NULL (they are answered already), then on_disconnect
         * or nothing: either way the connection is gone and a new one is due */
        redisAsyncContext *ctx = r->ctx;
        r->stalled_since = 0;
        redisAsyncFree(ctx);
        if (r->ctx == ctx) lost(r, "no answer for a second");
    }
}

static bool send_call(limits_redis_call *c, bool by_sha);

/* The script's reply into the ticket, as limits_admit would fill it. */
static void read_reply(limits_redis_call *c, const redisReply *rep)
{
    limits_ticket tk;
    memset(&tk, 0, sizeof tk);
    tk.refused_subject = -1;
    tk.tokens_charged = c->tokens;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        answer(c, LIMITS_UNAVAILABLE, NULL);
        return;
    }
    long long which = rep->element[0]->integer;
    if (which > 0) {
        if ((size_t)which > c->ncounters || rep->elements < 2) {
            answer(c, LIMITS_UNAVAILABLE, NULL);
            return;
        }
        size_t i = (size_t)which - 1;
        int64_t count = rep->element[1]->type == REDIS_REPLY_INTEGER ? rep->element[1]->integer : 0;
        limits_rule rule = c->counters[i].rule;
        tk.refused_subject = c->counters[i].subject;
        tk.refused_rule = rule;
        tk.too_large = c->counters[i].amount > c->counters[i].max;
        tk.retry_after_ms = limits__reset_ms(rule, c->now_ms);
        limits__note(&tk, rule, c->counters[i].max, count, c->now_ms);
        note_back(c->r);
        answer(c, LIMITS_REFUSED, &tk);
        return;
    }
    if (rep->elements != c->ncounters + 1) {
        answer(c, LIMITS_UNAVAILABLE, NULL);
        return;
    }
    for (size_t i = 0; i < c->ncounters; i++) {
        const redisReply *e = rep->element[i + 1];
        int64_t count = e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
        tk.counted[tk.ncounted].tag = c->counters[i].tag;
        tk.counted[tk.ncounted].window = c->counters[i].window;
        tk.counted[tk.ncounted].rule = c->counters[i].rule;
        tk.ncounted++;
        if (c->counters[i].max >= 0)
            limits__note(&tk, c->counters[i].rule, c->counters[i].max, count, c->now_ms);
    }
    note_back(c->r);
    answer(c, LIMITS_ADMITTED, &tk);
}

static void on_reply(redisAsyncContext *ctx, void *reply, void *privdata)
{
    limits_redis_call *c = privdata;
    redisReply *rep = reply;
    if (rep) c->r->stalled_since = 0;
    if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8) && !c->retried &&
        c->r->ctx == ctx && !c->r->closing) {
        c->retried = true;
        c->r->sha[0] = '\0';
        if (send_call(c, false)) return; /* the same call: this callback again */
        rep = NULL;
    }
    if (!c->answered) read_reply(c, rep);
    unlink_call(c);
    free(c);
}

/* False when hiredis refused the command (the connection is going away): its callback will not
 * fire for it. */
static bool send_call(limits_redis_call *c, bool by_sha)
{
    limits_redis *r = c->r;
    c->argv[0] = by_sha ? "EVALSHA" : "EVAL";
    c->argvlen[0] = strlen(c->argv[0]);
    c->argv[1] = by_sha ? r->sha : script;
    c->argvlen[1] = by_sha ? 40 : sizeof script - 1;
    return redisAsyncCommandArgv(r->ctx, on_reply, c, c->argc, c->argv, c->argvlen) == REDIS_OK;
}

/* Fills c's command: EVAL(SHA) _ numkeys keys… mode (amount max ttl)… */
static void build_command(limits_redis_call *c, const char *mode)
{
    char *s = c->strings;
    size_t room = sizeof c->strings;
    int argc = 2;
#define PUT(...)                                                                                             \
    do {                                                                                                     \
        int n_ = snprintf(s, room, __VA_ARGS__);                                                             \
        c->argv[argc] = s;                                                                                   \
        c->argvlen[argc++] = (size_t)n_;                                                                     \
        s += n_ + 1;                                                                                         \
        room -= (size_t)n_ + 1;                                                                              \
    } while (0)
    PUT("%zu", c->ncounters);
    for (size_t i = 0; i < c->ncounters; i++)
        PUT("aigw:rl:%016llx:%u", (unsigned long long)c->counters[i].tag, c->counters[i].window);
    PUT("%s", mode);
    for (size_t i = 0; i < c->ncounters; i++) {
        PUT("%lld", (long long)c->counters[i].amount);
        PUT("%lld", (long long)c->counters[i].max);
        PUT("%lld", (long long)(limits_rule_period_ms(c->counters[i].rule) + KEY_TTL_MARGIN_MS));
    }
#undef PUT
    c->argc = argc;
}

limits_redis_call *limits_redis_admit(limits_redis *r, const limits_subject *subjects, size_t n,
                                      int64_t tokens, int64_t now_ms, limits_redis_cb cb, void *ud)
{
    if (!r->connected || !r->ctx || r->closing || r->inflight >= LIMITS_REDIS_INFLIGHT_MAX) {
        atomic_fetch_add(&uncounted, 1);
        return NULL;
    }
    limits_redis_call *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->r = r;
    c->cb = cb;
    c->ud = ud;
    c->now_ms = now_ms;
    c->tokens = tokens < 1 ? 1 : tokens; /* as limits_admit */
    if (n > LIMITS_SUBJECTS_MAX) n = LIMITS_SUBJECTS_MAX;
    for (size_t i = 0; i < n; i++)
        for (limits_rule rule = 0; rule < LIMITS_RULES; rule++) {
            int64_t max = subjects[i].max[rule];
            if (max < 0 || max >= LIMITS_COUNT_MAX) continue;
            size_t k = c->ncounters++;
            c->counters[k].tag = limits__tag(subjects[i].id, subjects[i].id_len, rule);
            c->counters[k].window = limits__window(rule, now_ms);
            c->counters[k].rule = (uint8_t)rule;
            c->counters[k].subject = (uint8_t)i;
            c->counters[k].max = max;
            c->counters[k].amount = limits_rule_is_tokens(rule) ? c->tokens : 1;
        }
    build_command(c, "admit");
    c->deadline_ms = uv_now(r->loop) + r->timeout_ms;
    c->prev = r->last;
    if (r->last)
        r->last->next = c;
    else
        r->first = c;
    r->last = c;
    r->inflight++;
    if (!send_call(c, r->sha[0] != '\0')) {
        unlink_call(c);
        free(c);
        atomic_fetch_add(&uncounted, 1);
        return NULL;
    }
    if (!uv_is_active((uv_handle_t *)&r->deadline_timer))
        uv_timer_start(&r->deadline_timer, on_deadline, r->timeout_ms, 0);
    return c;
}

void limits_redis_cancel(limits_redis_call *c)
{
    if (c) c->answered = true;
}

void limits_redis_settle(limits_redis *r, const limits_ticket *tk, int64_t tokens, int64_t now_ms)
{
    if (tokens < 0) tokens = 0;
    int64_t delta = tokens - tk->tokens_charged;
    if (!delta || !r->connected || !r->ctx || r->closing) return;
    limits_redis_call c;
    memset(&c, 0, sizeof c);
    c.r = r;
    for (size_t i = 0; i < tk->ncounted; i++) {
        limits_rule rule = tk->counted[i].rule;
        if (!limits_rule_is_tokens(rule)) continue;
        size_t k = c.ncounters++;
        c.counters[k].tag = tk->counted[i].tag;
        /* given back in the window it was counted in; charged in the one running now */
        c.counters[k].window = delta < 0 ? tk->counted[i].window : limits__window(rule, now_ms);
        c.counters[k].rule = (uint8_t)rule;
        c.counters[k].max = LIMITS_NONE;
        c.counters[k].amount = delta;
    }
    if (!c.ncounters) return;
    build_command(&c, "settle");
    /* no callback: hiredis copies the command; the reply is dropped */
    c.argv[0] = r->sha[0] ? "EVALSHA" : "EVAL";
    c.argvlen[0] = strlen(c.argv[0]);
    c.argv[1] = r->sha[0] ? r->sha : script;
    c.argvlen[1] = r->sha[0] ? 40 : sizeof script - 1;
    redisAsyncCommandArgv(r->ctx, NULL, NULL, c.argc, c.argv, c.argvlen);
}
