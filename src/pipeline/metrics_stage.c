/* metrics_stage.c — the RECORD phase's Prometheus metrics, and GET /metrics (observe/metrics.h).
 *
 * An observer: each worker adds every finished request to its own shard. The labels are chosen
 * here, where the config is known, so that a client cannot make new series: the model is the
 * one asked for only when the config serves that name (else "other"), the route is a name of
 * the config or of the header that carried a config (a typed model's tree, named after what
 * the client sent, is "other"), the provider is a config name, the ingress one of aigw's
 * client APIs, the key a gateway key's id (bounded by the store; the per-worker table bounds it
 * again).
 *
 * The config's alert rules run on a thread of their own over the same registry
 * (observe/alerts.h), started and stopped with it.
 *
 * GET /metrics is a local answer (accept.c's table): open while auth is off, the master key's
 * when it is on — the series name keys, teams and spend. */
#include <stdio.h>
#include <string.h>

#include "observe/alerts.h"
#include "observe/metrics.h"
#include "routing/routing.h"
#include "pipeline/stages.h"
#include "server/server.h"
#include "server/worker.h"
#include "util/version.h"

static metrics *registry;
static alerts *alerting;

/* The config's alert rules, running over the registry (read at start: a reload keeps them). */
static bool start_alerts(const alerts_config *c, char *err, size_t errlen)
{
    alert_rule rules[ALERTS_MAX_RULES];
    for (size_t i = 0; i < c->nrules && i < ALERTS_MAX_RULES; i++)
        rules[i] = (alert_rule){.name = c->rules[i].name,
                                .kind = c->rules[i].kind ? ALERT_TTFB_P95 : ALERT_ERROR_RATE,
                                .provider = c->rules[i].provider,
                                .threshold = c->rules[i].above,
                                .window_s = (c->rules[i].window_ms + 999) / 1000,
                                .min_requests = (uint32_t)c->rules[i].min_requests};
    char **lines = config_header_lines(c->headers, c->nheaders);
    alerts_settings s = {.rules = rules,
                         .nrules = c->nrules < ALERTS_MAX_RULES ? c->nrules : ALERTS_MAX_RULES,
                         .webhook_url = c->webhook_url,
                         .slack = c->slack,
                         .headers = lines,
                         .nheaders = c->nheaders,
                         .min_interval_s = c->min_interval_ms / 1000,
                         .timeout_ms = c->timeout_ms};
    alerting = alerts_start(&s, registry, err, errlen);
    config_free_lines(lines, c->nheaders);
    return alerting != NULL;
}

static bool metrics_start(const aigw_config *cfg, char *err, size_t errlen)
{
    registry = metrics_new();
    return !cfg->alerts.nrules || start_alerts(&cfg->alerts, err, errlen);
}

static void metrics_stop(void)
{
    alerts_stop(alerting);
    alerting = NULL;
    metrics_free(registry);
    registry = NULL;
}

static void *metrics_worker_init(worker *w)
{
    return metrics_shard_new(registry);
}

static void metrics_on_record(const exchange_record *r, void *shard)
{
    const char *route = r->route;
    if (route && !r->model_served && r->model && !strcmp(route, r->model)) route = "other";
    metrics_labels l = {
        .route = route,
        .model = !r->model         ? NULL
                 : r->model_served ? r->model
                                   : "other",
        .provider = r->provider,
        .ingress = r->ingress ? r->ingress : "openai",
        .key = r->key_id,
    };
    metrics_add(shard, &l, r);
}

typedef struct target_gauges {
    buf *out;
    int family; /* which of the three is being written */
} target_gauges;

static void target_gauge(void *ud, const routing_target_view *v)
{
    target_gauges *g = ud;
    static const char *const names[] = {"aigw_target_breaker_state", "aigw_target_in_flight",
                                        "aigw_target_latency_ewma_seconds"};
    buf_printf(g->out, "%s{provider=\"", names[g->family]);
    metrics_append_escaped(g->out, v->provider);
    buf_append_str(g->out, "\",model=\"");
    metrics_append_escaped(g->out, v->model);
    if (g->family == 0)
        buf_printf(g->out, "\",state=\"%s\"} %d\n", v->breaker, v->breaker_state);
    else if (g->family == 1)
        buf_printf(g->out, "\"} %d\n", v->in_flight);
    else
        buf_printf(g->out, "\"} %.6f\n", v->ewma_ms / 1e3);
}

/* The targets' health now (routing's shared state), as gauges. */
static void render_targets(routing_state *health, buf *out)
{
    static const char *const help[][3] = {
        {"aigw_target_breaker_state", "gauge", "A target's circuit breaker: 0 closed, 1 open, 2 half-open."},
        {"aigw_target_in_flight", "gauge", "Requests a target has in flight now."},
        {"aigw_target_latency_ewma_seconds", "gauge",
         "A target's peak-EWMA time to the response head (0: never measured)."},
    };
    for (int f = 0; f < 3; f++) {
        metrics_family(out, help[f][0], help[f][1], help[f][2]);
        target_gauges g = {.out = out, .family = f};
        routing_state_each(health, target_gauge, &g);
    }
}

void answer_metrics(exchange *x)
{
    if (x->config->auth.mode == AUTH_ON && !x->master_key) {
        auth_refuse(x, 403, "metrics_not_allowed", NULL,
                    "GET /metrics needs the master key while auth is on");
        return;
    }
    reqlog_stage_stats rl;
    bool reqlog_on = reqlog_stage_counts(&rl);
    metrics_gauges g = {
        .open_connections = server_open_connections(pipeline_server(x->pw)),
        .log_dropped = accesslog_stage_dropped(),
        .reqlog_on = reqlog_on,
        .reqlog_queued = rl.queued,
        .reqlog_dropped_full = rl.dropped_full,
        .reqlog_dropped_store = rl.dropped_store,
        .reqlog_written = rl.written,
        .version = AIGW_VERSION,
    };
    buf out;
    buf_init(&out, (size_t)64 << 20);
    metrics_render(registry, &g, &out);
    if (x->config->health) render_targets(x->config->health, &out);
    exchange_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, 0, out.data, out.len);
    buf_free(&out);
}

const stage stage_metrics = {
    .name = "metrics",
    .phase = PHASE_RECORD,
    .start = metrics_start,
    .stop = metrics_stop,
    .worker_init = metrics_worker_init,
    .on_record = metrics_on_record,
};
