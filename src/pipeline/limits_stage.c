/* limits_stage.c — the ADMIT phase's rate limits: each request of a gateway key is counted
 * against the key's limits, the key's limits on the model it asks for, and its team's, before
 * any upstream call; over a limit it gets 429 in the client's API shape with Retry-After.
 * Every response of a limited key carries OpenAI's x-ratelimit-* headers (and Anthropic's
 * anthropic-ratelimit-* to Anthropic clients), plain or streamed: they are kept on the
 * exchange (exchange_keep_head), so the response made much later carries them too.
 *
 * The master key and requests with auth off are not limited; neither is a key without limits
 * (no counter is touched). The counting is src/limits (a table shared by the workers, atomics
 * only); this file only says which subjects a request belongs to and what the client is told.
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
#include "pipeline/stages.h"
#include "store/store.h"

static limits_table *table;

static bool limits_stage_start(const aigw_config *cfg, char *err, size_t errlen)
{
    if (cfg->auth.mode == AUTH_ON) table = limits_table_new(LIMITS_CELLS_DEFAULT);
    return true;
}

static void limits_stage_stop(void)
{
    if (table && limits_untracked(table))
        fprintf(stderr, "aigw: rate limits: %llu counts were not kept for want of a free cell\n",
                (unsigned long long)limits_untracked(table));
    limits_table_free(table);
    table = NULL;
}

typedef struct limits_state {
    limits_ticket ticket;
    bool counted; /* admitted: settle when released */
    bool tokens;  /* it has a token rule */
} limits_state;

/* ---- the subjects of a request ---------------------------------------------------------------- */

#define SUBJECT_ID_MAX (2 + STORE_ID_MAX + 1 + STORE_NAME_MAX + 1)

typedef struct subject_buf {
    char id[SUBJECT_ID_MAX];
    char what[STORE_NAME_MAX + 64];
} subject_buf;

/* MERGE (teams): the request's team as a limits subject — its id "t\x1fTEAM" into b->id, a name
 * for messages into b->what ("the team `search`"), and its rpm/rpd/tpm/tpd into out->max.
 * Returns false when the team has no limits. Teams (a table with limits and budgets) are made
 * by the spend slice at the same time as this one; until they are merged, no team has limits
 * and this returns false for every request. When they are, it looks x->key->team up in the
 * worker's snapshot of teams and fills the four limits from it; nothing else here changes. */
static bool team_limits_subject(const exchange *x, limits_subject *out, subject_buf *b)
{
    (void)x;
    (void)out;
    (void)b;
    return false;
}

static bool has_rule(const limits_subject *s)
{
    for (int r = 0; r < LIMITS_RULES; r++)
        if (s->max[r] >= 0) return true;
    return false;
}

/* The key's subjects with a rule: the key, the key on this model, the team. */
static size_t request_subjects(const exchange *x, limits_subject *subjects, subject_buf *bufs)
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

/* The rate-limit lines of the response head into out (HEAD_MAX bytes); their length. */
static size_t rate_limit_head(const exchange *x, const limits_ticket *tk, int64_t now_ms, char *out)
{
    size_t n = 0;
    char reset[32], when[32];
    if (tk->has_requests) {
        limits_format_duration(tk->requests_reset_ms, reset, sizeof reset);
        n += (size_t)snprintf(out + n, HEAD_MAX - n,
                              "x-ratelimit-limit-requests: %lld\r\nx-ratelimit-remaining-requests: %lld\r\n"
                              "x-ratelimit-reset-requests: %s\r\n",
                              (long long)tk->requests_limit, (long long)tk->requests_remaining, reset);
        if (x->ingress == WIRE_ANTHROPIC) {
            reset_time(now_ms, tk->requests_reset_ms, when, sizeof when);
            n += (size_t)snprintf(out + n, HEAD_MAX - n,
                                  "anthropic-ratelimit-requests-limit: %lld\r\n"
                                  "anthropic-ratelimit-requests-remaining: %lld\r\n"
                                  "anthropic-ratelimit-requests-reset: %s\r\n",
                                  (long long)tk->requests_limit, (long long)tk->requests_remaining, when);
        }
    }
    if (tk->has_tokens) {
        limits_format_duration(tk->tokens_reset_ms, reset, sizeof reset);
        n += (size_t)snprintf(out + n, HEAD_MAX - n,
                              "x-ratelimit-limit-tokens: %lld\r\nx-ratelimit-remaining-tokens: %lld\r\n"
                              "x-ratelimit-reset-tokens: %s\r\n",
                              (long long)tk->tokens_limit, (long long)tk->tokens_remaining, reset);
        if (x->ingress == WIRE_ANTHROPIC) {
            reset_time(now_ms, tk->tokens_reset_ms, when, sizeof when);
            n += (size_t)snprintf(out + n, HEAD_MAX - n,
                                  "anthropic-ratelimit-tokens-limit: %lld\r\n"
                                  "anthropic-ratelimit-tokens-remaining: %lld\r\n"
                                  "anthropic-ratelimit-tokens-reset: %s\r\n",
                                  (long long)tk->tokens_limit, (long long)tk->tokens_remaining, when);
        }
    }
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
    exchange_error(x, 429, tok ? "tokens" : "requests", "rate_limit_exceeded", NULL, msg);
}

/* ---- the stage -------------------------------------------------------------------------------------- */

static stage_result limits_on_request(exchange *x, void *state)
{
    limits_state *ls = state;
    if (!x->key || !table) return STAGE_DECLINED;
    limits_subject subjects[LIMITS_SUBJECTS_MAX];
    subject_buf bufs[LIMITS_SUBJECTS_MAX];
    size_t n = request_subjects(x, subjects, bufs);
    if (!n) return STAGE_DECLINED;
    for (size_t i = 0; i < n && !ls->tokens; i++)
        ls->tokens = subjects[i].max[LIMITS_TPM] >= 0 || subjects[i].max[LIMITS_TPD] >= 0;
    int64_t tokens = 0;
    if (ls->tokens) {
        codec_ctx c = {.body = x->http->body.data ? x->http->body.data : "", .body_len = x->http->body.len};
        tokens = (int64_t)provider_estimate_tokens(&c);
    }
    int64_t now_ms = wall_ms();
    bool admitted = limits_admit(table, subjects, n, tokens, now_ms, &ls->ticket);
    char *head = arena_alloc(x->arena, HEAD_MAX);
    size_t len = rate_limit_head(x, &ls->ticket, now_ms, head);
    exchange_keep_head(x, head, len);
    if (!admitted) {
        refuse(x, &subjects[ls->ticket.refused_subject], &ls->ticket, tokens);
        return STAGE_DONE;
    }
    ls->counted = true;
    return STAGE_NEXT;
}

/* After the record: the tokens the provider reported settle the estimate. */
static void limits_on_release(exchange *x, void *state)
{
    limits_state *ls = state;
    if (!ls->counted || !ls->tokens || !table) return;
    ls->counted = false;
    const attempt *a = x->answer ? x->answer : x->attempts;
    int64_t used;
    if (!a)
        used = 0; /* nothing reached a provider */
    else if (a->codec.usage.seen)
        used = (int64_t)(a->codec.usage.prompt + a->codec.usage.completion);
    else
        used = ls->ticket.tokens_charged;
    limits_settle(table, &ls->ticket, used, wall_ms());
}

const stage stage_limits = {
    .name = "limits",
    .phase = PHASE_ADMIT,
    .state_size = sizeof(limits_state),
    .start = limits_stage_start,
    .stop = limits_stage_stop,
    .on_request = limits_on_request,
    .on_release = limits_on_release,
};
