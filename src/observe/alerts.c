/* alerts.c — the alert rules' thread (alerts.h).
 *
 * Each rule keeps a ring of its provider's totals, one per second, window_s + 1 long; its value
 * is the difference between the newest and the one window_s seconds older (or the oldest, while
 * the ring fills). Reading the totals takes the metrics' shard-list lock for a scan — once a
 * second, per rule, never on a request's path. */
#include "observe/alerts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "util/log.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/timeutil.h"

typedef struct rule_state {
    alert_rule rule; /* its strings owned here */
    metrics_provider_totals *ring;
    size_t ring_len, next, filled;
    bool firing, told_firing;
    double value;
    char who[256];        /* the probe's description (breaker_open, budget) */
    uint64_t last_told_s; /* monotonic seconds of the last notification; 0: never */
    /* for GET /admin/alerts (alerts_state_json), written under struct alerts' view lock */
    bool known;                   /* a value was read at least once */
    time_t fired_at, resolved_at; /* wall clock of the last changes; 0: never */
} rule_state;

struct alerts {
    metrics *m;
    rule_state *rules;
    size_t nrules;
    char *webhook_url;
    bool slack;
    struct curl_slist *headers;
    uint32_t min_interval_s, timeout_ms;
    alerts_probes probes;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    /* firing, value, who, known, fired_at, resolved_at of each rule: written by the alert
     * thread, read by alerts_state_json on a worker's loop; held for a few stores or reads,
     * never while a webhook is sent */
    pthread_mutex_t view_lock;
};

bool alerts_value(const alert_rule *r, const metrics_provider_totals *then,
                  const metrics_provider_totals *now, double *value)
{
    if (r->kind == ALERT_ERROR_RATE) {
        uint64_t attempts = now->attempts - then->attempts, failed = now->failed - then->failed;
        if (!attempts || attempts < r->min_requests) return false;
        *value = (double)failed / (double)attempts;
        return true;
    }
    uint64_t counts[METRICS_BUCKETS], total = 0;
    for (size_t b = 0; b < METRICS_BUCKETS; b++)
        total += counts[b] = now->first_byte[b] - then->first_byte[b];
    if (!total || total < r->min_requests) return false;
    /* the bound of the bucket the 95th percentile falls in; past the last bound: twice it */
    uint64_t rank = (total * 95 + 99) / 100, seen = 0;
    for (size_t b = 0; b < METRICS_BUCKETS; b++) {
        seen += counts[b];
        if (seen >= rank) {
            *value =
                b < METRICS_BUCKETS - 1 ? metrics_bucket_le[b] : 2 * metrics_bucket_le[METRICS_BUCKETS - 2];
            return true;
        }
    }
    return false;
}

static size_t discard(char *data, size_t size, size_t n, void *ud)
{
    return size * n;
}

static const char *kind_name(alert_kind k)
{
    static const char *const names[] = {[ALERT_ERROR_RATE] = "error_rate",
                                        [ALERT_TTFB_P95] = "ttfb_p95",
                                        [ALERT_BREAKER_OPEN] = "breaker_open",
                                        [ALERT_BUDGET] = "budget"};
    return names[k];
}

/* The sentence a change is told in (stderr, Slack, the generic shape's summary). */
static void describe(const rule_state *rs, char *out, size_t len)
{
    const alert_rule *r = &rs->rule;
    const char *status = rs->firing ? "firing" : "resolved", *cmp = rs->firing ? ">" : "<=";
    const char *provider = r->provider ? r->provider : "any";
    switch (r->kind) {
    case ALERT_ERROR_RATE:
        snprintf(out, len, "%s %s: error rate %.1f%% %s %.1f%% over %us (provider %s)", r->name, status,
                 rs->value * 100, cmp, r->threshold * 100, r->window_s, provider);
        break;
    case ALERT_TTFB_P95:
        snprintf(out, len, "%s %s: p95 time to first byte %.3fs %s %.3fs over %us (provider %s)", r->name,
                 status, rs->value, cmp, r->threshold, r->window_s, provider);
        break;
    case ALERT_BREAKER_OPEN:
        snprintf(out, len, "%s %s: %.0f circuit breaker%s not closed %s %.0f (provider %s%s%s)", r->name,
                 status, rs->value, rs->value == 1 ? "" : "s", cmp, r->threshold, provider,
                 rs->firing ? ": " : "", rs->firing ? rs->who : "");
        break;
    case ALERT_BUDGET:
        snprintf(out, len, "%s %s: %.1f%% of a budget spent %s %.1f%% (%s)", r->name, status, rs->value * 100,
                 cmp, r->threshold * 100, rs->who[0] ? rs->who : "no budget");
        break;
    }
}

/* One change of one rule: a line on stderr and, with a webhook, one POST. */
static void notify(alerts *a, CURL *curl, const rule_state *rs)
{
    const alert_rule *r = &rs->rule;
    const char *status = rs->firing ? "firing" : "resolved";
    char what[640];
    describe(rs, what, sizeof what);
    log_event(rs->firing ? LOG_WARN : LOG_INFO, rs->firing ? "alert_firing" : "alert_resolved", "alert %s",
              what);
    if (!a->webhook_url || !curl) return;
    buf body;
    buf_init(&body, 64 * 1024);
    if (a->slack) {
        char text[700];
        snprintf(text, sizeof text, "[aigw] %s", what);
        buf_append_str(&body, "{\"text\":");
        buf_append_json_string(&body, text, strlen(text));
        buf_append_str(&body, "}");
    } else {
        char at[40];
        time_format_utc(at, sizeof at);
        buf_append_str(&body, "{\"alert\":");
        buf_append_json_string(&body, r->name, strlen(r->name));
        buf_printf(&body, ",\"status\":\"%s\",\"kind\":\"%s\",\"provider\":", status, kind_name(r->kind));
        const char *subject = r->provider ? r->provider : r->key ? r->key : r->team;
        if (subject)
            buf_append_json_string(&body, subject, strlen(subject));
        else
            buf_append_str(&body, "null");
        buf_printf(&body,
                   ",\"value\":%.6g,\"threshold\":%.6g,\"window_seconds\":%u,\"at\":\"%s\",\"summary\":",
                   rs->value, r->threshold, r->window_s, at);
        buf_append_json_string(&body, what, strlen(what));
        buf_append_str(&body, "}");
    }
    curl_easy_setopt(curl, CURLOPT_URL, a->webhook_url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)a->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code < 200 || code >= 300)
        log_event(LOG_ERROR, "alert_webhook_failed", "alert %s: the webhook did not take it (%s%ld)", r->name,
                  rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP ", rc != CURLE_OK ? 0L : code);
    buf_free(&body);
}

/* The value of a rule over its window of the metrics' totals: a sample taken now. */
static bool windowed(alerts *a, rule_state *rs, double *value)
{
    metrics_provider_totals *now = &rs->ring[rs->next];
    metrics_provider_read(a->m, rs->rule.provider, now);
    size_t oldest = rs->filled < rs->ring_len ? 0 : (rs->next + 1) % rs->ring_len;
    const metrics_provider_totals *then = &rs->ring[oldest];
    rs->next = (rs->next + 1) % rs->ring_len;
    if (rs->filled < rs->ring_len) rs->filled++;
    return alerts_value(&rs->rule, then, now, value);
}

/* The value of a rule that reads a state through a probe; false: nothing to say. */
static bool probe(alerts *a, rule_state *rs, double *value)
{
    char who[sizeof rs->who] = "";
    bool (*fn)(void *, const alert_rule *, double *, char *, size_t) =
        rs->rule.kind == ALERT_BREAKER_OPEN ? a->probes.breakers_open : a->probes.budget_spent;
    if (!fn || !fn(a->probes.ud, &rs->rule, value, who, sizeof who)) return false;
    if (*value > rs->rule.threshold || !rs->firing) { /* who fired it */
        pthread_mutex_lock(&a->view_lock);
        memcpy(rs->who, who, sizeof who);
        pthread_mutex_unlock(&a->view_lock);
    }
    return true;
}

static void evaluate(alerts *a, CURL *curl, rule_state *rs, uint64_t now_s)
{
    double value = 0;
    bool known;
    if (rs->rule.kind == ALERT_BREAKER_OPEN || rs->rule.kind == ALERT_BUDGET)
        known = probe(a, rs, &value);
    else
        known = windowed(a, rs, &value);
    bool firing = known && value > rs->rule.threshold;
    pthread_mutex_lock(&a->view_lock);
    if (known) {
        rs->value = value;
        rs->known = true;
    }
    bool changed = firing != rs->firing;
    if (changed) {
        rs->firing = firing;
        if (firing)
            rs->fired_at = time(NULL);
        else
            rs->resolved_at = time(NULL);
    }
    pthread_mutex_unlock(&a->view_lock);
    if (!changed) return;
    if (firing) {
        if (rs->last_told_s && now_s - rs->last_told_s < a->min_interval_s) return; /* flapping: quiet */
        rs->told_firing = true;
        rs->last_told_s = now_s;
        notify(a, curl, rs);
    } else if (rs->told_firing) {
        rs->told_firing = false;
        notify(a, curl, rs);
    }
}

static void *alerts_main(void *arg)
{
    alerts *a = arg;
    pthread_setname_np(pthread_self(), "aigw-alerts");
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        pthread_mutex_unlock(&a->lock);
        uint64_t now_s = time_now_ns() / 1000000000u + 1; /* never 0 */
        for (size_t i = 0; i < a->nrules; i++)
            evaluate(a, curl, &a->rules[i], now_s);
        pthread_mutex_lock(&a->lock);
        struct timespec due;
        clock_gettime(CLOCK_MONOTONIC, &due);
        due.tv_sec += 1;
        while (!a->stopping && pthread_cond_timedwait(&a->wake, &a->lock, &due) == 0) {
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (curl) curl_easy_cleanup(curl);
    return NULL;
}

alerts *alerts_start(const alerts_settings *s, metrics *m, char *err, size_t errlen)
{
    alerts *a = xcalloc(1, sizeof *a);
    a->m = m;
    a->nrules = s->nrules;
    a->rules = xcalloc(s->nrules ? s->nrules : 1, sizeof *a->rules);
    for (size_t i = 0; i < s->nrules; i++) {
        rule_state *rs = &a->rules[i];
        rs->rule = s->rules[i];
        rs->rule.name = xstrdup(s->rules[i].name);
        rs->rule.provider = s->rules[i].provider ? xstrdup(s->rules[i].provider) : NULL;
        rs->rule.key = s->rules[i].key ? xstrdup(s->rules[i].key) : NULL;
        rs->rule.team = s->rules[i].team ? xstrdup(s->rules[i].team) : NULL;
        rs->ring_len = (size_t)rs->rule.window_s + 1;
        rs->ring = xcalloc(rs->ring_len, sizeof *rs->ring);
    }
    a->webhook_url = s->webhook_url ? xstrdup(s->webhook_url) : NULL;
    a->slack = s->slack;
    a->headers = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; i < s->nheaders; i++)
        a->headers = curl_slist_append(a->headers, s->headers[i]);
    a->min_interval_s = s->min_interval_s;
    a->timeout_ms = s->timeout_ms;
    a->probes = s->probes;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->view_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&a->thread, NULL, alerts_main, a) != 0) {
        snprintf(err, errlen, "alerts: cannot start their thread");
        a->stopping = true;
        alerts_stop(a);
        return NULL;
    }
    return a;
}

void alerts_stop(alerts *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    bool running = !a->stopping;
    a->stopping = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (running) pthread_join(a->thread, NULL);
    for (size_t i = 0; i < a->nrules; i++) {
        free((char *)a->rules[i].rule.name);
        free((char *)a->rules[i].rule.provider);
        free((char *)a->rules[i].rule.key);
        free((char *)a->rules[i].rule.team);
        free(a->rules[i].ring);
    }
    free(a->rules);
    free(a->webhook_url);
    curl_slist_free_all(a->headers);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->view_lock);
    pthread_cond_destroy(&a->wake);
    free(a);
}

static void append_time(buf *out, time_t t)
{
    if (!t) {
        buf_append_str(out, "null");
        return;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    char at[32];
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_printf(out, "\"%s\"", at);
}

void alerts_state_json(alerts *a, buf *out)
{
    buf_append_str(out, "{\"alerts\":[");
    for (size_t i = 0; a && i < a->nrules; i++) {
        const rule_state *rs = &a->rules[i];
        const alert_rule *r = &rs->rule;
        if (i) buf_append_str(out, ",");
        buf_append_str(out, "{\"name\":");
        buf_append_json_string(out, r->name, strlen(r->name));
        buf_printf(out, ",\"kind\":\"%s\",\"provider\":", kind_name(r->kind));
        if (r->provider)
            buf_append_json_string(out, r->provider, strlen(r->provider));
        else
            buf_append_str(out, "null");
        buf_printf(out, ",\"threshold\":%.6g,\"window_seconds\":%u", r->threshold, r->window_s);
        pthread_mutex_lock(&a->view_lock);
        char summary[640];
        describe(rs, summary, sizeof summary);
        buf_printf(out, ",\"status\":\"%s\",\"value\":",
                   rs->firing        ? "firing"
                   : rs->resolved_at ? "resolved"
                                     : "ok");
        if (rs->known)
            buf_printf(out, "%.6g", rs->value);
        else
            buf_append_str(out, "null");
        buf_append_str(out, ",\"fired_at\":");
        append_time(out, rs->fired_at);
        buf_append_str(out, ",\"resolved_at\":");
        append_time(out, rs->resolved_at);
        pthread_mutex_unlock(&a->view_lock);
        buf_append_str(out, ",\"summary\":");
        buf_append_json_string(out, summary, strlen(summary));
        buf_append_str(out, "}");
    }
    buf_append_str(out, "]}");
}
