/* alerts.h — rules over the metrics, evaluated in the background, that fire and resolve
 * through a webhook and a log line.
 *
 * A rule watches one provider (or all of them) over a window: `error_rate` (failed upstream
 * attempts over all attempts, with at least min_requests attempts in the window) or
 * `ttfb_p95` (seconds, from the time-to-first-byte histogram, the bucket bound the 95th
 * percentile falls in). Once a second one thread reads the metrics' running totals, keeps a
 * sample per second for the longest window, and compares each rule's value over its window
 * with its threshold: above it, the rule fires; back at or below (or without enough requests),
 * it resolves. Each change is a stderr line and a webhook POST — Slack's {"text": …} or a
 * generic JSON object — sent once per change; a rule that keeps flapping notifies at most once
 * per min_interval, and the resolution of a firing that was not notified is not sent either.
 * The webhook gets one try per change with a timeout; a failure is logged, never retried into
 * a storm. */
#ifndef AIGW_OBSERVE_ALERTS_H
#define AIGW_OBSERVE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/metrics.h"

#define ALERTS_MAX_RULES 64
#define ALERTS_MAX_WINDOW_S 3600

typedef enum alert_kind { ALERT_ERROR_RATE, ALERT_TTFB_P95 } alert_kind;

typedef struct alert_rule {
    const char *name;
    alert_kind kind;
    const char *provider; /* NULL: every provider together */
    double threshold;     /* a fraction (error_rate) or seconds (ttfb_p95) */
    uint32_t window_s;
    uint32_t min_requests; /* error_rate: fewer attempts in the window say nothing */
} alert_rule;

typedef struct alerts_settings {
    const alert_rule *rules;
    size_t nrules;
    const char *webhook_url; /* NULL: log lines only */
    bool slack;              /* {"text": …} rather than the generic object */
    char *const *headers;    /* "Name: value" lines with each POST */
    size_t nheaders;
    uint32_t min_interval_s; /* between two notifications of one rule */
    uint32_t timeout_ms;     /* one POST */
} alerts_settings;

typedef struct alerts alerts;

/* Starts the evaluating thread over m (which must outlive it). NULL with err when it cannot. */
alerts *alerts_start(const alerts_settings *s, metrics *m, char *err, size_t errlen);
void alerts_stop(alerts *a);

/* The pure part, for tests: one rule's value from the totals at the window's start and end;
 * false when there is too little to say (no attempts, fewer than min_requests, no first
 * bytes). */
bool alerts_value(const alert_rule *r, const metrics_provider_totals *then,
                  const metrics_provider_totals *now, double *value);

#endif
