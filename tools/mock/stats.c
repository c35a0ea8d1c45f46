/* stats.c — aigw-mock's counters, shared by all workers, read by GET /__stats.
 *
 * One mutex: the counters are touched a few times per request, far below what would make the
 * lock visible next to parsing and writing. Paths are counted by template (Gemini's model is
 * part of its path, so `/v1beta/models:generateContent` stands for all of them; `/v1/models:...`
 * for the stable version's); models by the
 * name the request carried. `in_flight` is a gauge and survives /__reset. The rate-limit windows
 * (rl_requests) live here too, under the same lock, so every worker sees one budget per scope;
 * a window's time is monotonic (uv_hrtime), immune to clock steps. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static const char *const path_names[P__COUNT] = {
    [P_CHAT] = "/v1/chat/completions",
    [P_RESPONSES] = "/v1/responses",
    [P_COMPLETIONS] = "/v1/completions",
    [P_EMBEDDINGS] = "/v1/embeddings",
    [P_MODELS] = "/v1/models",
    [P_MESSAGES] = "/v1/messages",
    [P_COUNT_TOKENS] = "/v1/messages/count_tokens",
    [P_GEMINI_GENERATE] = "/v1beta/models:generateContent",
    [P_GEMINI_STREAM] = "/v1beta/models:streamGenerateContent",
    [P_GEMINI_COUNT] = "/v1beta/models:countTokens",
    [P_GEMINI_V1_GENERATE] = "/v1/models:generateContent",
    [P_GEMINI_V1_STREAM] = "/v1/models:streamGenerateContent",
    [P_GEMINI_V1_COUNT] = "/v1/models:countTokens",
    [P_MODEL_SELECT] = "/v2/modelRouter/modelSelect",
    [P_OTHER] = "other",
};

static struct {
    pthread_mutex_t lock;
    uint64_t requests, paths[P__COUNT], statuses[600];
    char *model_names[MAX_MODELS];
    uint64_t model_counts[MAX_MODELS];
    int nmodels;
    uint64_t streams_started, streams_completed, streams_aborted;
    int64_t in_flight;
    char *scope_names[MAX_SCOPES];
    uint64_t scope_counts[MAX_SCOPES];
    int nscopes;
    char *rl_names[MAX_SCOPES];
    uint64_t rl_start[MAX_SCOPES], rl_count[MAX_SCOPES]; /* the window's start (ms), its requests */
    int nrl;
    uint64_t rate_limited;
    uint64_t usage_prompt, usage_completion, usage_replies;
} stats = {.lock = PTHREAD_MUTEX_INITIALIZER};

void stats_request(mock_path path, const char *model)
{
    pthread_mutex_lock(&stats.lock);
    stats.requests++;
    stats.paths[path]++;
    if (model) {
        int i;
        for (i = 0; i < stats.nmodels && strcmp(stats.model_names[i], model); i++) {
        }
        if (i == stats.nmodels && i < MAX_MODELS) {
            stats.model_names[stats.nmodels++] = strdup(model);
            if (!stats.model_names[i]) abort();
        }
        if (i < MAX_MODELS) stats.model_counts[i]++;
    }
    pthread_mutex_unlock(&stats.lock);
}

void stats_status(int status)
{
    pthread_mutex_lock(&stats.lock);
    if (status > 0 && status < 600) stats.statuses[status]++;
    pthread_mutex_unlock(&stats.lock);
}

void stats_uncount_status(int status)
{
    pthread_mutex_lock(&stats.lock);
    if (status > 0 && status < 600 && stats.statuses[status]) stats.statuses[status]--;
    pthread_mutex_unlock(&stats.lock);
}

void stats_stream_started(void)
{
    pthread_mutex_lock(&stats.lock);
    stats.streams_started++;
    pthread_mutex_unlock(&stats.lock);
}

void stats_stream_ended(bool completed)
{
    pthread_mutex_lock(&stats.lock);
    if (completed)
        stats.streams_completed++;
    else
        stats.streams_aborted++;
    pthread_mutex_unlock(&stats.lock);
}

void stats_in_flight(int delta)
{
    pthread_mutex_lock(&stats.lock);
    stats.in_flight += delta;
    pthread_mutex_unlock(&stats.lock);
}

void stats_usage(size_t prompt, size_t completion)
{
    pthread_mutex_lock(&stats.lock);
    stats.usage_prompt += prompt;
    stats.usage_completion += completion;
    stats.usage_replies++;
    pthread_mutex_unlock(&stats.lock);
}

uint64_t stats_scope_hit(const char *scope)
{
    pthread_mutex_lock(&stats.lock);
    int i;
    for (i = 0; i < stats.nscopes && strcmp(stats.scope_names[i], scope); i++) {
    }
    if (i == stats.nscopes && i < MAX_SCOPES) {
        stats.scope_names[stats.nscopes++] = strdup(scope);
        if (!stats.scope_names[i]) abort();
    }
    uint64_t before = i < MAX_SCOPES ? stats.scope_counts[i]++ : 0;
    pthread_mutex_unlock(&stats.lock);
    return before;
}

bool stats_rate_limit(const char *scope, long limit, long window_ms, long *remaining, long *reset_ms)
{
    uint64_t now = uv_hrtime() / 1000000, window = (uint64_t)window_ms;
    pthread_mutex_lock(&stats.lock);
    int i;
    for (i = 0; i < stats.nrl && strcmp(stats.rl_names[i], scope); i++) {
    }
    if (i == stats.nrl && i < MAX_SCOPES) {
        stats.rl_names[stats.nrl++] = strdup(scope);
        if (!stats.rl_names[i]) abort();
        stats.rl_start[i] = now;
        stats.rl_count[i] = 0;
    }
    bool admitted = true;
    if (i == MAX_SCOPES) { /* no room for another scope: not limited */
        *remaining = limit - 1;
        *reset_ms = window_ms;
    } else {
        if (now - stats.rl_start[i] >= window) {
            stats.rl_start[i] += (now - stats.rl_start[i]) / window * window;
            stats.rl_count[i] = 0;
        }
        if (stats.rl_count[i] < (uint64_t)limit)
            stats.rl_count[i]++;
        else
            admitted = false;
        *remaining = admitted ? limit - (long)stats.rl_count[i] : 0;
        *reset_ms = (long)(stats.rl_start[i] + window - now);
        if (!admitted) stats.rate_limited++;
    }
    pthread_mutex_unlock(&stats.lock);
    return admitted;
}

void stats_json(sbuf *b)
{
    pthread_mutex_lock(&stats.lock);
    sb_fmt(b, "{\"requests\":%" PRIu64 ",\"paths\":{", stats.requests);
    bool first = true;
    for (int i = 0; i < P__COUNT; i++) {
        if (!stats.paths[i]) continue;
        sb_fmt(b, "%s\"%s\":%" PRIu64, first ? "" : ",", path_names[i], stats.paths[i]);
        first = false;
    }
    sb_str(b, "},\"models\":{");
    for (int i = 0; i < stats.nmodels; i++) {
        if (i) sb_str(b, ",");
        sb_json_str(b, stats.model_names[i]);
        sb_fmt(b, ":%" PRIu64, stats.model_counts[i]);
    }
    sb_str(b, "},\"statuses\":{");
    first = true;
    for (int i = 0; i < 600; i++) {
        if (!stats.statuses[i]) continue;
        sb_fmt(b, "%s\"%d\":%" PRIu64, first ? "" : ",", i, stats.statuses[i]);
        first = false;
    }
    sb_fmt(b,
           "},\"streams\":{\"started\":%" PRIu64 ",\"completed\":%" PRIu64 ",\"aborted\":%" PRIu64
           "},\"in_flight\":%" PRId64 ",\"rate_limited\":%" PRIu64 ",\"usage\":{\"prompt_tokens\":%" PRIu64
           ",\"completion_tokens\":%" PRIu64 ",\"replies\":%" PRIu64 "}}",
           stats.streams_started, stats.streams_completed, stats.streams_aborted, stats.in_flight,
           stats.rate_limited, stats.usage_prompt, stats.usage_completion, stats.usage_replies);
    pthread_mutex_unlock(&stats.lock);
}

void stats_reset(void)
{
    pthread_mutex_lock(&stats.lock);
    stats.requests = 0;
    memset(stats.paths, 0, sizeof stats.paths);
    memset(stats.statuses, 0, sizeof stats.statuses);
    for (int i = 0; i < stats.nmodels; i++)
        free(stats.model_names[i]);
    stats.nmodels = 0;
    memset(stats.model_counts, 0, sizeof stats.model_counts);
    for (int i = 0; i < stats.nscopes; i++)
        free(stats.scope_names[i]);
    stats.nscopes = 0;
    memset(stats.scope_counts, 0, sizeof stats.scope_counts);
    for (int i = 0; i < stats.nrl; i++)
        free(stats.rl_names[i]);
    stats.nrl = 0;
    stats.rate_limited = 0;
    stats.usage_prompt = stats.usage_completion = stats.usage_replies = 0;
    stats.streams_started = stats.streams_completed = stats.streams_aborted = 0;
    /* in_flight is a gauge, not a counter: it stays true across a reset. */
    pthread_mutex_unlock(&stats.lock);
}
