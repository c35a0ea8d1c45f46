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
 * Waiting: the connection (util/redis_conn.c, shared with the response cache's Redis backend)
 * keeps each call on a list in the order sent, with its deadline; one timer per connection
 * fires at the oldest deadline and has every call past it answered LIMITS_UNAVAILABLE. hiredis
 * still owns the command: its callback comes later (the reply, or NULL when the connection is
 * freed) and frees the call then. A call is freed only from hiredis's callback, so no callback
 * ever sees a freed call. The connection also reopens itself, gives up a stalled one and says
 * when Redis went away and came back; this file adds the script and what its answers mean. */
#include "limits/limits_redis.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "limits/limits_internal.h"
#include "util/redis_conn.h"

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

/* process-wide: one line per outage, whichever worker sees it first; requests uncounted */
static redis_outage outage = {.part = "rate limits",
                              .down_event = "redis_down",
                              .up_event = "redis_up",
                              .meanwhile = "requests of limited keys are admitted or refused as "
                                           "auth.limits.on_redis_error says",
                              .missed = "requests went uncounted"};

uint64_t limits_redis_uncounted(void)
{
    return atomic_load(&outage.unanswered);
}

struct limits_redis_call {
    redis_call call; /* first: its place on the connection's list; answered: cb has fired, or
                      * the caller cancelled */
    limits_redis *r;
    limits_redis_cb cb;
    void *ud;
    bool retried; /* sent again as EVAL after NOSCRIPT */
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
    redis_conn conn;
    char sha[41]; /* the script's, once SCRIPT LOAD answered */
};

/* ---- where Redis is ------------------------------------------------------------------------------ */

bool limits_redis_target_parse(const char *url, limits_redis_target *out, char *err, size_t errlen)
{
    return redis_target_parse(url, "auth.limits.redis", out, err, errlen);
}

/* ---- the connection (util/redis_conn.c) --------------------------------------------------------- */

static void answer(limits_redis_call *c, limits_verdict v, const limits_ticket *tk)
{
    if (c->call.answered) return;
    c->call.answered = true;
    if (v == LIMITS_UNAVAILABLE) redis_outage_unanswered(&outage);
    c->cb(c->ud, v, tk);
}

static void on_unanswered(redis_conn *conn, redis_call *call)
{
    answer((limits_redis_call *)call, LIMITS_UNAVAILABLE, NULL);
}

static void on_script_loaded(redisAsyncContext *ctx, void *reply, void *privdata)
{
    limits_redis *r = redis_conn_of(ctx)->owner;
    redisReply *rep = reply;
    if (r && rep && rep->type == REDIS_REPLY_STRING && rep->len == 40) memcpy(r->sha, rep->str, 41);
}

static void on_connected(redis_conn *conn)
{
    redisAsyncCommand(conn->ctx, on_script_loaded, NULL, "SCRIPT LOAD %s", script);
}

static void on_lost(redis_conn *conn)
{
    limits_redis *r = conn->owner;
    r->sha[0] = '\0';
}

static void on_closed(redis_conn *conn)
{
    free(conn->owner);
}

static const redis_conn_hooks hooks = {
    .on_connected = on_connected, .on_lost = on_lost, .on_unanswered = on_unanswered, .on_closed = on_closed};

limits_redis *limits_redis_new(uv_loop_t *loop, const limits_redis_target *target, uint32_t timeout_ms)
{
    limits_redis *r = calloc(1, sizeof *r);
    if (!r) abort();
    redis_conn_open(&r->conn, loop, target, timeout_ms, "no answer within auth.limits.timeout", &outage,
                    &hooks, r);
    return r;
}

void limits_redis_close(limits_redis *r)
{
    if (r) redis_conn_close(&r->conn); /* on_closed frees r */
}

/* ---- admission ------------------------------------------------------------------------------------ */

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
        redis_conn_back(&c->r->conn);
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
    redis_conn_back(&c->r->conn);
    answer(c, LIMITS_ADMITTED, &tk);
}

static void on_reply(redisAsyncContext *ctx, void *reply, void *privdata)
{
    limits_redis_call *c = privdata;
    redisReply *rep = reply;
    if (rep) redis_conn_heard(&c->r->conn);
    if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8) && !c->retried &&
        c->r->conn.ctx == ctx && !c->r->conn.closing) {
        c->retried = true;
        c->r->sha[0] = '\0';
        if (send_call(c, false)) return; /* the same call: this callback again */
        rep = NULL;
    }
    if (!c->call.answered) read_reply(c, rep);
    redis_conn_untrack(&c->r->conn, &c->call);
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
    return redisAsyncCommandArgv(r->conn.ctx, on_reply, c, c->argc, c->argv, c->argvlen) == REDIS_OK;
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
    if (!redis_conn_ready(&r->conn) || r->conn.inflight >= LIMITS_REDIS_INFLIGHT_MAX) {
        redis_outage_unanswered(&outage);
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
    redis_conn_track(&r->conn, &c->call);
    if (!send_call(c, r->sha[0] != '\0')) {
        redis_conn_untrack(&r->conn, &c->call);
        free(c);
        redis_outage_unanswered(&outage);
        return NULL;
    }
    return c;
}

void limits_redis_cancel(limits_redis_call *c)
{
    if (c) c->call.answered = true;
}

void limits_redis_settle(limits_redis *r, const limits_ticket *tk, int64_t tokens, int64_t now_ms)
{
    if (tokens < 0) tokens = 0;
    int64_t delta = tokens - tk->tokens_charged;
    if (!delta || !redis_conn_ready(&r->conn)) return;
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
    redisAsyncCommandArgv(r->conn.ctx, NULL, NULL, c.argc, c.argv, c.argvlen);
}
