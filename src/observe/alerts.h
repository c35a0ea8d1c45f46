/* alerts.h — rules over the metrics, evaluated in the background, that fire and resolve
 * through a webhook and a log line.
 *
 * A rule watches one provider (or all of them) over a window: `error_rate` (failed upstream
 * attempts over all attempts, with at least min_requests attempts in the window) or
 * `ttfb_p95` (seconds, from the time-to-first-byte histogram, the bucket bound the 95th
 * percentile falls in). Once a second one thread reads the metrics' running totals, keeps a
 * sample per second for the longest window, and compares each rule's value over its window
 * with its threshold: above it, the rule fires; back at or below (or without enough requests),
 * it resolves. Two kinds are states rather than windows, read through the caller's probes
 * (the metrics know neither): `breaker_open`, the circuit breakers of a provider (or any) not
 * closed now, and `budget`, the largest share of a hard budget spent now among the keys and
 * teams the rule names (all of them without a key or team). Each change is a stderr line and a webhook POST —
 * Slack's {"text": …} or a generic JSON object — sent once per change; a rule that keeps flapping notifies at
 * most once per min_interval, and the resolution of a firing that was not notified is not sent either. The
 * webhook gets one try per change with a timeout; a failure is logged, never retried into a storm. */
#ifndef AIGW_OBSERVE_ALERTS_H
#define AIGW_OBSERVE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/metrics.h"

#define ALERTS_MAX_RULES 64
#define ALERTS_MAX_WINDOW_S 3600

typedef enum alert_kind { ALERT_ERROR_RATE, ALERT_TTFB_P95, ALERT_BREAKER_OPEN, ALERT_BUDGET } alert_kind;

typedef struct alert_rule {
    const char *name;
    alert_kind kind;
    const char *provider;   /* NULL: every provider together */
    const char *key, *team; /* budget: the key (id or alias) or team watched; both NULL: all */
    double threshold;       /* a fraction (error_rate, budget), seconds (ttfb_p95), breakers */
    uint32_t window_s;
    uint32_t min_requests; /* error_rate: fewer attempts in the window say nothing */
} alert_rule;

/* What the alert thread asks its caller for, the kinds the metrics do not hold. Each returns
 * false when it has nothing to say (no store, no budget), else the value and in who a short
 * description of what it found ("openai/gpt-4o", "key key_1a2b (ci-bot) 83.0%"). On the alert
 * thread, once a second per rule: no request waits for them. */
typedef struct alerts_probes {
    bool (*breakers_open)(void *ud, const alert_rule *r, double *value, char *who, size_t len);
    bool (*budget_spent)(void *ud, const alert_rule *r, double *value, char *who, size_t len);
    void *ud;
} alerts_probes;

typedef struct alerts_settings {
    const alert_rule *rules;
    size_t nrules;
    const char *webhook_url; /* NULL: log lines only */
    bool slack;              /* {"text": …} rather than the generic object */
    char *const *headers;    /* "Name: value" lines with each POST */
    size_t nheaders;
    uint32_t min_interval_s; /* between two notifications of one rule */
    uint32_t timeout_ms;     /* one POST */
    alerts_probes probes;
} alerts_settings;

typedef struct alerts alerts;

/* Starts the evaluating thread over m (which must outlive it). NULL with err when it cannot. */
alerts *alerts_start(const alerts_settings *s, metrics *m, char *err, size_t errlen);
void alerts_stop(alerts *a);

/* The rules' state now, for GET /admin/alerts: {"alerts":[{name, kind, provider, threshold,
 * window_seconds, status ("firing", "resolved": fired and resolved since, "ok": never fired),
 * value (the last reading, null before one), fired_at, resolved_at (UTC, null: never),
 * summary}]}, appended to out. a NULL (no rules): an empty list. Any thread; holds the
 * rules' view lock for a few reads per rule. */
struct buf;
void alerts_state_json(alerts *a, struct buf *out);

/* The pure part, for tests: one rule's value from the totals at the window's start and end;
 * false when there is too little to say (no attempts, fewer than min_requests, no first
 * bytes). */
bool alerts_value(const alert_rule *r, const metrics_provider_totals *then,
                  const metrics_provider_totals *now, double *value);

#endif
