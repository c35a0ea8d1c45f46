/* config_alerts.c — the `alerts:` section (config.h's alerts_config): the webhook, the minimum
 * interval and the rules, each checked with its line (observe/alerts.h evaluates them;
 * docs/observability.md "Alerts").
 *
 *   alerts:
 *     webhook: {url: https://…, format: slack|generic, headers: {…}, timeout: 5s}
 *     min_interval: 5m
 *     rules:
 *       - {name: openai-errors, kind: error_rate, provider: openai, above: 0.2, window: 1m, min_requests: 20}
 *       - {name: ci-budget, kind: budget, key: ci-bot, above: 0.8}
 *
 * In its own file because config.c is the gateway's main table: each section that grows its own
 * parsers lives beside it (config_request_log.c, config_cache.c, config_router.c,
 * config_prompts.c). */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"
#include "util/alloc.h"

#define ALR(member) offsetof(aigw_config, alerts.member)
static bool parse_alert_rules(loader *ld, yaml_node_t *node, void *target);
static bool parse_alert_webhook_url(loader *ld, yaml_node_t *node, void *target);
static bool parse_alert_format(loader *ld, yaml_node_t *node, void *target);
static bool parse_alert_headers(loader *ld, yaml_node_t *node, void *target);

static const field alert_webhook_table[] = {
    {"url", FIELD_CUSTOM, ALR(webhook_url), 0, 0, NULL, parse_alert_webhook_url},
    {"format", FIELD_CUSTOM, ALR(slack), 0, 0, NULL, parse_alert_format},
    {"headers", FIELD_CUSTOM, 0, 0, 0, NULL, parse_alert_headers},
    {"timeout", FIELD_DURATION, ALR(timeout_ms), 100, 60000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

const field config__alerts_table[] = {
    {"webhook", FIELD_SECTION, 0, 0, 0, alert_webhook_table, NULL},
    {"min_interval", FIELD_DURATION, ALR(min_interval_ms), 0, 86400000, NULL, NULL},
    {"rules", FIELD_CUSTOM, 0, 0, 0, NULL, parse_alert_rules},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static bool parse_alert_webhook_url(loader *ld, yaml_node_t *node, void *target)
{
    return config__read_http_url(ld, node, target, "alerts.webhook.url");
}

static bool parse_alert_format(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "format")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "slack") && strcmp(v, "generic"))
        return config__fail_at(ld, node, "alerts.webhook.format is slack or generic, got '%s'", v);
    *(bool *)target = !strcmp(v, "slack");
    return true;
}

static bool parse_alert_headers(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    return config__read_header_pairs(ld, node, &cfg->alerts.headers, &cfg->alerts.nheaders);
}

static bool parse_alert_kind(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "kind")) return false;
    const char *v = config__scalar(node);
    static const char *const kinds[] = {"error_rate", "ttfb_p95", "breaker_open", "budget"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, kinds[i])) return *(int *)target = i, true;
    return config__fail_at(ld, node,
                           "an alert's kind is error_rate, ttfb_p95, breaker_open or budget, got '%s'", v);
}

static bool parse_number(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "above")) return false;
    const char *s = config__scalar(node);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v < 1e9))
        return config__fail_at(ld, node, "expected a number, got '%s'", s);
    *(double *)target = v;
    return true;
}

#define RULE(member) offsetof(alert_rule_config, member)
static const field alert_rule_table[] = {
    {"name", FIELD_STRING, RULE(name), 0, 0, NULL, NULL},
    {"kind", FIELD_CUSTOM, RULE(kind), 0, 0, NULL, parse_alert_kind},
    {"provider", FIELD_STRING, RULE(provider), 0, 0, NULL, NULL},
    {"key", FIELD_STRING, RULE(key), 0, 0, NULL, NULL},
    {"team", FIELD_STRING, RULE(team), 0, 0, NULL, NULL},
    {"above", FIELD_CUSTOM, RULE(above), 0, 0, NULL, parse_number},
    {"window", FIELD_DURATION, RULE(window_ms), 1000, 600000, NULL, NULL},
    {"min_requests", FIELD_INT, RULE(min_requests), 0, 1000000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static bool parse_alert_rules(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    if (node->type != YAML_SEQUENCE_NODE)
        return config__fail_at(ld, node, "'alerts.rules' must be a list of {name, kind, above, window, …}");
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > 64) return config__fail_at(ld, node, "at most 64 alert rules (got %zu)", n);
    alerts_config *a = &cfg->alerts;
    a->rules = xcalloc(n ? n : 1, sizeof *a->rules);
    bool ok = true;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
        alert_rule_config *r = &a->rules[a->nrules++];
        *r = (alert_rule_config){
            .window_ms = 60000, .min_requests = 1, .above = -1, .line = (int)item->start_mark.line + 1};
        if (item->type != YAML_MAPPING_NODE) {
            ok = config__fail_at(ld, item, "an alert rule is a mapping {name, kind, above, window, …}");
            continue;
        }
        if (!config__apply_section(ld, item, "an alert rule", alert_rule_table, r)) {
            ok = false;
            continue;
        }
        if (r->kind == 2 && r->above < 0) r->above = 0; /* breaker_open: any breaker */
        if (!r->name || r->above < 0)
            ok = config__fail_at(ld, item, "an alert rule needs a name and `above:` (its threshold)");
        else if ((r->key || r->team) && r->kind != 3)
            ok = config__fail_at(ld, item, "`key:` and `team:` belong to budget alert rules");
    }
    return ok;
}
