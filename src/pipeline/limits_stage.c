/* limits_stage.c — the ADMIT phase's rate limits: each request of a gateway key is counted
 * against the key's limits, the key's limits on the model it asks for, and its team's, before
 * any upstream call; over a limit it gets 429 in the client's API shape with Retry-After.
 * Every response of a limited key carries OpenAI's x-ratelimit-* headers (and Anthropic's
 * anthropic-ratelimit-* to Anthropic clients), plain or streamed: they are kept on the
 * exchange (exchange_keep_head), so the response made much later carries them too.
 *
 * The master key and requests with auth off are not limited; neither is a key without limits
 * (no counter is touched). The counting is src/limits — a table shared by the workers (atomics
 * only), or with auth.limits.backend: redis, a Redis shared by every instance, asked through the
 * worker's own connection (the request waits, STAGE_AGAIN, at most auth.limits.timeout; when Redis
 * cannot answer, on_redis_error says: open goes on uncounted, closed answers 503). This file only
 * says which subjects a request belongs to and what the client is told.
 *
 * Tokens: the prompt's estimate (provider_estimate_tokens, the same that routing's context
 * check makes) is counted up front; when the request is released (after its record), the
 * usage the provider reported — prompt + completion, a stream's included — settles it. A
 * request that never reached a provider settles at 0 (the estimate is given back); one that
 * did but reported no usage keeps its estimate.
 *
 * Headers: OpenAI's names and formats — x-ratelimit-limit-requests, -remaining-requests,
 * -reset-requests ("1s", "6m0s": Go's duration format) and the -tokens trio, each from the
 * tightest rule of its kind (the one with least remaining). A refusal adds Retry-After (whole
 * seconds, rounded up) and retry-after-ms, which the official OpenAI and Anthropic SDKs read
 * before Retry-After to time their own retry. A prompt larger than a token limit can never
 * pass: that 429 says x-should-retry: false, so the SDKs do not wait for nothing. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "limits/limits.h"
#include "limits/limits_redis.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "store/store.h"
#include "util/log.h"

/* Process-wide, from the config at start (auth.limits cannot change on reload): the in-process
 * table, or where Redis is (then each worker's state is its connection). */
static limits_table *table;
static bool use_redis, fail_closed;
static limits_redis_target redis_where;
static uint32_t redis_timeout_ms;

static bool limits_stage_start(const aigw_config *cfg, char *err, size_t errlen)
{
    if (cfg->auth.mode != AUTH_ON) return true;
    const limits_settings *ls = &cfg->auth.limits;
    if (ls->backend == LIMITS_BACKEND_REDIS) {
        if (!limits_redis_target_parse(ls->redis, &redis_where, err, errlen)) return false;
        use_redis = true;
        fail_closed = ls->fail_closed;
        redis_timeout_ms = ls->timeout_ms;
        log_event(LOG_INFO, "rate_limits_redis",
                  "rate limits counted in Redis at %s (timeout %u ms, on error: %s)", ls->redis,
                  ls->timeout_ms, ls->fail_closed ? "closed" : "open");
        return true;
    }
    table = limits_table_new(LIMITS_CELLS_DEFAULT);
    return true;
}

static void limits_stage_stop(void)
{
    if (table && limits_untracked(table))
        log_event(LOG_WARN, "rate_limits_untracked",
                  "rate limits: %llu counts were not kept for want of a free cell",
                  (unsigned long long)limits_untracked(table));
    limits_table_free(table);
    table = NULL;
    use_redis = false;
}

static void *limits_worker_init(worker *w)
{
    return use_redis ? limits_redis_new(&w->loop, &redis_where, redis_timeout_ms) : NULL;
}

static void limits_worker_close(void *state)
{
    limits_redis_close(state);
}

#define SUBJECT_ID_MAX (2 + STORE_ID_MAX + 1 + STORE_NAME_MAX + 1)

typedef struct subject_buf {
    char id[SUBJECT_ID_MAX];
    char what[STORE_NAME_MAX + 64];
} subject_buf;

typedef struct limits_state {
    exchange *x;
    limits_ticket *ticket;    /* arena, only for a limited key (480 bytes: most requests have none) */
    limits_subject *subjects; /* arena, only for a limited key */
    subject_buf *bufs;
    size_t nsubjects;
    int64_t tokens;       /* the estimate counted */
    exchange_ticket wait; /* while Redis is asked */
    limits_redis_call *call;
    bool counted;    /* admitted: settle when released */
    bool has_tokens; /* it has a token rule */
} limits_state;

/* ---- the subjects of a request ---------------------------------------------------------------- */

/* The request's team as a limits subject — its id "t\x1fTEAM" into b->id, a name for messages
 * into b->what ("the team `search`"), and its limits into out->max (teams have per-minute ones
 * only: rpm_limit, tpm_limit). The team is the one the key's team_id names in the key snapshot
 * the request was authenticated with (auth_key_team, as budgets and the team's models read it);
 * a team_id that names no team is a label and limits nothing. Returns false without a team. The
 * subject's id is the team's, not the key's, so every key of the team counts in one window. */
static bool team_limits_subject(exchange *x, limits_subject *out, subject_buf *b)
{
    const store_team *t = auth_key_team(x);
    if (!t) return false;
    int len = snprintf(b->id, sizeof b->id, "t\x1f%.*s", STORE_NAME_MAX, t->id);
    snprintf(b->what, sizeof b->what, "the team `%.*s`", STORE_NAME_MAX, t->alias ? t->alias : t->id);
    *out = (limits_subject){.id = b->id,
                            .id_len = (size_t)len,
                            .what = b->what,
                            .max = {t->rpm_limit, LIMITS_NONE, t->tpm_limit, LIMITS_NONE}};
    return true;
}

static bool has_rule(const limits_subject *s)
{
    for (int r = 0; r < LIMITS_RULES; r++)
        if (s->max[r] >= 0) return true;
    return false;
}

/* The key's subjects with a rule: the key, the key on this model, the team. */
static size_t request_subjects(exchange *x, limits_subject *subjects, subject_buf *bufs)
{
    const store_key *k = x->key;
    size_t n = 0;
    limits_subject *s = &subjects[n];
    int len = snprintf(bufs[n].id, sizeof bufs[n].id, "k\x1f%s", k->id);
    *s = (limits_subject){.id = bufs[n].id,
                          .id_len = (size_t)len,
                          .what = "this gateway key",
                          .max = {k->rpm_limit, k->rpd_limit, k->tpm_limit, k->tpd_limit}};
    if (has_rule(s)) n++;
    for (size_t i = 0; i < k->nmodel_limits; i++) {
        const store_model_limit *m = &k->model_limits[i];
        if (strlen(m->model) != x->model_len || memcmp(m->model, x->model, x->model_len)) continue;
        s = &subjects[n];
        len = snprintf(bufs[n].id, sizeof bufs[n].id, "m\x1f%s\x1f%s", k->id, m->model);
        snprintf(bufs[n].what, sizeof bufs[n].what, "this gateway key on the model `%s`", m->model);
        *s = (limits_subject){.id = bufs[n].id,
                              .id_len = (size_t)len,
                              .what = bufs[n].what,
                              .max = {m->rpm_limit, LIMITS_NONE, m->tpm_limit, LIMITS_NONE}};
        if (has_rule(s)) n++;
        break;
    }
    s = &subjects[n];
    if (team_limits_subject(x, s, &bufs[n]) && has_rule(s)) n++;
    return n;
}

/* ---- what the client is told -------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An RFC 3339 time, ms from now (Anthropic's reset headers). */
static void reset_time(int64_t now_ms, int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)((now_ms + ms + 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define HEAD_MAX 1024

/* One kind's lines (OpenAI's x-ratelimit-*-KIND, and Anthropic's anthropic-ratelimit-KIND-*
 * for its clients) at out + n; the new length. */
static size_t kind_head(const exchange *x, const char *kind, int64_t limit, int64_t remaining,
                        int64_t reset_ms, int64_t now_ms, char *out, size_t n)
{
    char reset[32], when[32];
    limits_format_duration(reset_ms, reset, sizeof reset);
    n += (size_t)snprintf(out + n, HEAD_MAX - n,
                          "x-ratelimit-limit-%s: %lld\r\nx-ratelimit-remaining-%s: %lld\r\n"
                          "x-ratelimit-reset-%s: %s\r\n",
                          kind, (long long)limit, kind, (long long)remaining, kind, reset);
    if (x->ingress == WIRE_ANTHROPIC && n < HEAD_MAX) {
        reset_time(now_ms, reset_ms, when, sizeof when);
        n += (size_t)snprintf(
            out + n, HEAD_MAX - n,
            "anthropic-ratelimit-%s-limit: %lld\r\nanthropic-ratelimit-%s-remaining: %lld\r\n"
            "anthropic-ratelimit-%s-reset: %s\r\n",
            kind, (long long)limit, kind, (long long)remaining, kind, when);
    }
    return n < HEAD_MAX ? n : HEAD_MAX - 1;
}

/* The rate-limit lines of the response head into out (HEAD_MAX bytes); their length. */
static size_t rate_limit_head(const exchange *x, const limits_ticket *tk, int64_t now_ms, char *out)
{
    size_t n = 0;
    if (tk->has_requests)
        n = kind_head(x, "requests", tk->requests_limit, tk->requests_remaining, tk->requests_reset_ms,
                      now_ms, out, n);
    if (tk->has_tokens)
        n = kind_head(x, "tokens", tk->tokens_limit, tk->tokens_remaining, tk->tokens_reset_ms, now_ms, out,
                      n);
    if (tk->refused_subject >= 0) {
        int64_t ms = tk->retry_after_ms;
        if (tk->too_large)
            n += (size_t)snprintf(out + n, HEAD_MAX - n, "x-should-retry: false\r\n");
        else
            n += (size_t)snprintf(out + n, HEAD_MAX - n, "retry-after: %lld\r\nretry-after-ms: %lld\r\n",
                                  (long long)((ms + 999) / 1000), (long long)ms);
    }
    return n < HEAD_MAX ? n : HEAD_MAX - 1;
}

static void refuse(exchange *x, const limits_subject *s, const limits_ticket *tk, int64_t tokens)
{
    limits_rule r = tk->refused_rule;
    bool tok = limits_rule_is_tokens(r);
    int64_t limit = tok ? tk->tokens_limit : tk->requests_limit;
    char msg[STORE_NAME_MAX + 320], wait[32];
    if (tk->too_large) {
        snprintf(msg, sizeof msg,
                 "Request too large: its prompt is about %lld tokens, more than the limit of %lld %s of %s; "
                 "it cannot pass however long it waits",
                 (long long)tokens, (long long)limit, limits_rule_name(r), s->what);
    } else {
        limits_format_duration(tk->retry_after_ms, wait, sizeof wait);
        if (tok)
            snprintf(msg, sizeof msg,
                     "Rate limit reached: %lld %s of %s (used %lld, this request needs about %lld). "
                     "Try again in %s.",
                     (long long)limit, limits_rule_name(r), s->what,
                     (long long)(limit - tk->tokens_remaining), (long long)tokens, wait);
        else
            snprintf(msg, sizeof msg, "Rate limit reached: %lld %s of %s. Try again in %s.", (long long)limit,
                     limits_rule_name(r), s->what, wait);
    }
    x->rejection = tok ? REJECT_RATE_LIMIT_TOKENS : REJECT_RATE_LIMIT_REQUESTS;
    exchange_error(x, 429, tok ? "tokens" : "requests", "rate_limit_exceeded", NULL, msg);
}

/* ---- the stage -------------------------------------------------------------------------------------- */

/* What the verdict means for the request: NEXT (admitted, or not counted under
 * on_redis_error: open) or DONE (answered: 429, or 503 under on_redis_error: closed). */
static stage_result conclude(exchange *x, limits_state *ls, limits_verdict verdict)
{
    if (verdict == LIMITS_UNAVAILABLE) {
        if (!fail_closed) return STAGE_NEXT;
        static const char retry[] = "retry-after: 1\r\nretry-after-ms: 1000\r\n";
        exchange_keep_head(x, retry, sizeof retry - 1);
        x->rejection = REJECT_RATE_LIMIT_UNAVAILABLE;
        exchange_error(x, 503, "server_error", "rate_limit_unavailable", NULL,
                       "Rate limits cannot be checked now (their Redis does not answer) and this gateway "
                       "refuses what it cannot count (auth.limits.on_redis_error: closed)");
        return STAGE_DONE;
    }
    int64_t now_ms = wall_ms();
    char *head = arena_alloc(x->arena, HEAD_MAX);
    size_t len = rate_limit_head(x, ls->ticket, now_ms, head);
    exchange_keep_head(x, head, len);
    if (verdict == LIMITS_REFUSED) {
        refuse(x, &ls->subjects[ls->ticket->refused_subject], ls->ticket, ls->tokens);
        return STAGE_DONE;
    }
    ls->counted = true;
    return STAGE_NEXT;
}

/* Redis answered (or its timeout passed): the request goes on from here. */
static void on_redis_verdict(void *ud, limits_verdict verdict, const limits_ticket *ticket)
{
    limits_state *ls = ud;
    ls->call = NULL;
    if (ticket) *ls->ticket = *ticket;
    exchange_resume(ls->wait, conclude(ls->x, ls, verdict));
}

static stage_result limits_on_request(exchange *x, void *state)
{
    limits_state *ls = state;
    if (!x->key || (!table && !use_redis)) return STAGE_DECLINED;
    limits_subject subjects[LIMITS_SUBJECTS_MAX];
    subject_buf bufs[LIMITS_SUBJECTS_MAX];
    size_t n = request_subjects(x, subjects, bufs);
    if (!n) return STAGE_DECLINED;
    /* kept for the refusal's message, which Redis's answer may give later */
    ls->x = x;
    ls->ticket = memset(arena_alloc(x->arena, sizeof *ls->ticket), 0, sizeof *ls->ticket);
    ls->bufs = arena_alloc(x->arena, n * sizeof *ls->bufs);
    ls->subjects = arena_alloc(x->arena, n * sizeof *ls->subjects);
    for (size_t i = 0; i < n; i++) {
        ls->bufs[i] = bufs[i];
        ls->subjects[i] = subjects[i];
        ls->subjects[i].id = ls->bufs[i].id;
        if (subjects[i].what == bufs[i].what) ls->subjects[i].what = ls->bufs[i].what;
    }
    ls->nsubjects = n;
    for (size_t i = 0; i < n && !ls->has_tokens; i++)
        ls->has_tokens = subjects[i].max[LIMITS_TPM] >= 0 || subjects[i].max[LIMITS_TPD] >= 0;
    if (ls->has_tokens) {
        codec_ctx c = {.body = x->http->body.data ? x->http->body.data : "", .body_len = x->http->body.len};
        ls->tokens = (int64_t)provider_estimate_tokens(&c);
    }
    int64_t now_ms = wall_ms();
    if (use_redis) {
        limits_redis *r = exchange_worker_state(x, &stage_limits);
        /* its callback fires on a later turn of the loop, never inside this call */
        ls->call = limits_redis_admit(r, ls->subjects, n, ls->tokens, now_ms, on_redis_verdict, ls);
        if (!ls->call) return conclude(x, ls, LIMITS_UNAVAILABLE);
        ls->wait = exchange_suspend(x);
        return STAGE_AGAIN;
    }
    bool admitted = limits_admit(table, ls->subjects, n, ls->tokens, now_ms, ls->ticket);
    return conclude(x, ls, admitted ? LIMITS_ADMITTED : LIMITS_REFUSED);
}

static void limits_on_abort(exchange *x, void *state)
{
    limits_state *ls = state;
    if (!ls->call) return;
    limits_redis_cancel(ls->call);
    ls->call = NULL;
    exchange_resume(ls->wait, STAGE_DONE);
}

/* After the record: the tokens the provider reported settle the estimate. */
static void limits_on_release(exchange *x, void *state)
{
    limits_state *ls = state;
    if (!ls->counted || !ls->has_tokens) return;
    ls->counted = false;
    const attempt *a = x->answer ? x->answer : x->attempts;
    int64_t used;
    if (x->reasoning.summed) /* a technique's calls, all of them (reason_stage.c) */
        used = x->reasoning.usage.seen ? (int64_t)(x->reasoning.usage.prompt + x->reasoning.usage.completion)
                                       : ls->ticket->tokens_charged;
    else if (!a)
        used = 0; /* nothing reached a provider */
    else if (a->codec.usage.seen)
        used = (int64_t)(a->codec.usage.prompt + a->codec.usage.completion);
    else
        used = ls->ticket->tokens_charged;
    if (use_redis)
        limits_redis_settle(exchange_worker_state(x, &stage_limits), ls->ticket, used, wall_ms());
    else if (table)
        limits_settle(table, ls->ticket, used, wall_ms());
}

const stage stage_limits = {
    .name = "limits",
    .phase = PHASE_ADMIT,
    .state_size = sizeof(limits_state),
    .start = limits_stage_start,
    .stop = limits_stage_stop,
    .worker_init = limits_worker_init,
    .worker_close = limits_worker_close,
    .on_request = limits_on_request,
    .on_abort = limits_on_abort,
    .on_release = limits_on_release,
};
