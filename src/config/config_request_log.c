/* config_request_log.c — the `request_log:` section (config.h's request_log_settings): its
 * table, its defaults, and the two values the table machinery cannot read (a retention that may
 * be written in days, and on/off).
 *
 *   request_log: off                 # or on; not written: on when `auth:` gives a store
 *   request_log:
 *     enabled: true
 *     retention: 7d                  # rows older are deleted; off or 0: kept
 *     max_rows: 1000000              # the oldest past this are deleted; 0: no bound
 *     trim_every: 1m                 # how often retention runs (at most 10,000 rows per rule a run)
 *     batch_delay: 250ms             # a worker's batch waits this long for more, or until 512
 *     queue: 10000                   # per worker: requests waiting for the store's thread
 *     bodies: off                    # on: the client's request body is kept, redacted
 *     body_max: 64k                  # a longer body is not kept
 *     redact: [api_key, password]    # JSON member names whose values a kept body hides
 *
 * And `tracing.content:`, the bodies a traced request's span carries, which share the redaction
 * list and its default:
 *
 *   tracing:
 *     content: on                    # or {max: 16k, redact: [api_key, password]}; default off
 *
 * In its own file because config.c is the gateway's main table and near its size limit. A
 * retention is a duration of the config's spelling or a number of days ("7d"): the table's
 * FIELD_DURATION is 32-bit milliseconds (49 days), short of a log kept for a quarter. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_read.h"
#include "util/alloc.h"
#include "util/units.h"

/* The default redaction: names of secrets a client might put in a body. */
static const char *const default_redact[] = {"api_key",  "apikey", "authorization",
                                             "password", "secret", "token"};

#define RL(member) offsetof(request_log_settings, member)

static bool parse_enabled(loader *ld, yaml_node_t *node, void *target);
static bool parse_retention(loader *ld, yaml_node_t *node, void *target);
static bool parse_max_rows(loader *ld, yaml_node_t *node, void *target);
static bool parse_bodies(loader *ld, yaml_node_t *node, void *target);
static bool parse_redact(loader *ld, yaml_node_t *node, void *target);
static void redact_defaults(char ***names, size_t *n);

static const field request_log_table[] = {
    {"enabled", FIELD_CUSTOM, RL(mode), 0, 0, NULL, parse_enabled},
    {"retention", FIELD_CUSTOM, RL(retention_ms), 0, 0, NULL, parse_retention},
    {"max_rows", FIELD_CUSTOM, RL(max_rows), 0, 0, NULL, parse_max_rows},
    {"trim_every", FIELD_DURATION, RL(trim_every_ms), 1000, 86400000, NULL, NULL},
    {"batch_delay", FIELD_DURATION, RL(batch_delay_ms), 10, 60000, NULL, NULL},
    {"queue", FIELD_INT, RL(queue_max), 1, 1000000, NULL, NULL},
    {"bodies", FIELD_CUSTOM, RL(bodies), 0, 0, NULL, parse_bodies},
    {"body_max", FIELD_SIZE, RL(body_max_bytes), 1, 16 * 1024 * 1024, NULL, NULL},
    {"redact", FIELD_CUSTOM, 0, 0, 0, NULL, parse_redact},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

void config__request_log_defaults(request_log_settings *r)
{
    memset(r, 0, sizeof *r);
    r->retention_ms = 7LL * 86400 * 1000;
    r->max_rows = 1000000;
    r->trim_every_ms = 60000;
    r->batch_delay_ms = 250;
    r->queue_max = 10000;
    r->body_max_bytes = 64 * 1024;
    redact_defaults(&r->redact, &r->nredact);
}

void config__request_log_free(request_log_settings *r)
{
    for (size_t i = 0; i < r->nredact; i++)
        free(r->redact[i]);
    free(r->redact);
    r->redact = NULL;
    r->nredact = 0;
}

/* on / off and their YAML spellings; false when v is neither. */
static bool on_off(const char *v, bool *on)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) return *on = true, true;
    if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) return *on = false, true;
    return false;
}

static bool parse_enabled(loader *ld, yaml_node_t *node, void *target)
{
    bool on;
    if (!config__require_scalar(ld, node, "enabled")) return false;
    if (!on_off(config__scalar(node), &on))
        return config__fail_at(ld, node, "request_log.enabled must be true or false, got '%s'",
                               config__scalar(node));
    *(request_log_mode *)target = on ? REQUEST_LOG_ON : REQUEST_LOG_OFF;
    return true;
}

static bool parse_bodies(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "bodies")) return false;
    if (!on_off(config__scalar(node), target))
        return config__fail_at(ld, node, "request_log.bodies must be on or off, got '%s'",
                               config__scalar(node));
    return true;
}

static bool parse_retention(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "retention")) return false;
    const char *v = config__scalar(node);
    long long ms = 0, days;
    size_t n = strlen(v);
    bool off;
    if (on_off(v, &off) && !off) {
        ms = 0;
    } else if (n > 1 && v[n - 1] == 'd') {
        char digits[32];
        if (n - 1 >= sizeof digits) goto bad;
        memcpy(digits, v, n - 1);
        digits[n - 1] = '\0';
        if (!config__parse_int(digits, &days) || days > 100000) goto bad;
        ms = days * 86400 * 1000;
    } else if (!units_parse_duration(v, &ms)) {
        goto bad;
    }
    if (ms && ms < 1000)
        return config__fail_at(ld, node, "request_log.retention must be at least 1s (or off), got '%s'", v);
    *(long long *)target = ms;
    return true;
bad:
    return config__fail_at(
        ld, node, "request_log.retention: cannot read '%s' as a duration (e.g. 7d, 12h, 30m, off)", v);
}

static bool parse_max_rows(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "max_rows")) return false;
    long long rows;
    if (!config__parse_int(config__scalar(node), &rows) || rows > 1000000000000LL)
        return config__fail_at(ld, node,
                               "request_log.max_rows must be a number of rows (0: no bound), got '%s'",
                               config__scalar(node));
    *(long long *)target = rows;
    return true;
}

static bool parse_redact(loader *ld, yaml_node_t *node, void *target)
{
    request_log_settings *r = target;
    config__request_log_free(r);
    bool ok = config__parse_string_list(ld, node, "redact", &r->redact, &r->nredact);
    if (ok && r->nredact > 256)
        return config__fail_at(ld, node, "request_log.redact names at most 256 fields");
    return ok;
}

/* `request_log: on|off`, or a mapping of request_log_table's keys (enabled unless it says). */
bool config__parse_request_log(loader *ld, yaml_node_t *node, void *target)
{
    request_log_settings *r = target;
    r->line = (int)node->start_mark.line + 1;
    if (node->type == YAML_SCALAR_NODE) {
        bool on;
        if (!on_off(config__scalar(node), &on))
            return config__fail_at(ld, node,
                                   "'request_log' must be on, off or a mapping such as {retention: 7d}");
        r->mode = on ? REQUEST_LOG_ON : REQUEST_LOG_OFF;
        return true;
    }
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(ld, node,
                               "'request_log' must be on, off or a mapping such as {retention: 7d}");
    r->mode = REQUEST_LOG_ON;
    return config__apply_section(ld, node, "request_log", request_log_table, r);
}

/* ---- tracing.content ------------------------------------------------------------------------- */

static void redact_defaults(char ***names, size_t *n)
{
    *n = sizeof default_redact / sizeof default_redact[0];
    *names = xcalloc(*n, sizeof **names);
    for (size_t i = 0; i < *n; i++)
        (*names)[i] = xstrdup(default_redact[i]);
}

void config__trace_content_free(trace_content_settings *c)
{
    for (size_t i = 0; i < c->nredact; i++)
        free(c->redact[i]);
    free(c->redact);
    c->redact = NULL;
    c->nredact = 0;
}

static bool parse_content_redact(loader *ld, yaml_node_t *node, void *target)
{
    trace_content_settings *c = target;
    config__trace_content_free(c);
    bool ok = config__parse_string_list(ld, node, "redact", &c->redact, &c->nredact);
    if (ok && c->nredact > 256)
        return config__fail_at(ld, node, "tracing.content.redact names at most 256 fields");
    return ok;
}

#define TC(member) offsetof(trace_content_settings, member)
static const field trace_content_table[] = {
    {"max", FIELD_SIZE, TC(max_bytes), 256, 16 * 1024 * 1024, NULL, NULL},
    {"redact", FIELD_CUSTOM, 0, 0, 0, NULL, parse_content_redact},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

/* `content: on|off`, or a mapping of trace_content_table's keys (on). */
bool config__parse_trace_content(loader *ld, yaml_node_t *node, void *target)
{
    trace_content_settings *c = target;
    config__trace_content_free(c);
    c->max_bytes = 16 * 1024;
    redact_defaults(&c->redact, &c->nredact);
    if (node->type == YAML_SCALAR_NODE) {
        if (!on_off(config__scalar(node), &c->on))
            return config__fail_at(ld, node,
                                   "'tracing.content' must be on, off or a mapping such as {max: 16k}");
        return true;
    }
    c->on = true;
    return config__apply_section(ld, node, "tracing.content", trace_content_table, c);
}
