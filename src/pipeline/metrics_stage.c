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
 * (observe/alerts.h), started and stopped with it. The rules over states rather than totals
 * ask this file's probes: the newest config's breakers (routing's shared state, which a
 * reload replaces: the newest config is kept here, a reference per reload) and the budgets'
 * spend in the store service's snapshots.
 *
 * GET /metrics is a local answer (accept.c's table): open while auth is off, the master key's
 * or an admin key's when it is on — the series name keys, teams and spend. It is rendered on
 * libuv's thread pool, never on the worker's loop.
 *
 * Refusals (exchange_record.rejection: auth, models, budgets, rate limits) are counted too, as
 * aigw_rejections_total{reason, key}: the reason one of a fixed set, the key a store id. So are
 * the routing decisions PLAN made (exchange_record.decision): an auto route's or the learned
 * router's target, an auto route's refusal, the external router's outcome — labelled by the
 * config's route and target names, and by "(request)" for a request's own config, whose names
 * are the client's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "observe/alerts.h"
#include "observe/metrics.h"
#include "routing/routing.h"
#include "pipeline/stages.h"
#include "server/server.h"
#include "server/worker.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/version.h"

static metrics *registry;
static alerts *alerting;
static pthread_mutex_t newest_lock = PTHREAD_MUTEX_INITIALIZER;
static const aigw_config *newest; /* the config of the requests beginning now, for the probes */

/* ---- the alert rules' probes (alert thread) --------------------------------------------------- */

typedef struct breaker_count {
    const char *provider; /* NULL: any */
    double n;
    char *who;
    size_t len, used;
} breaker_count;

static void count_breaker(void *ud, const routing_target_view *v)
{
    breaker_count *c = ud;
    if (!v->breaker_state || (c->provider && strcmp(c->provider, v->provider))) return;
    c->n++;
    if (c->used + 4 < c->len) { /* "a/m, b/n", cut when the room ends */
        int w = snprintf(c->who + c->used, c->len - c->used, "%s%s/%s", c->used ? ", " : "", v->provider,
                         v->model);
        c->used = w < 0 ? c->used : c->used + (size_t)w < c->len ? c->used + (size_t)w : c->len - 1;
    }
}

static bool breakers_open(void *ud, const alert_rule *r, double *value, char *who, size_t len)
{
    pthread_mutex_lock(&newest_lock);
    const aigw_config *cfg = newest ? config_retain(newest) : NULL;
    pthread_mutex_unlock(&newest_lock);
    if (!cfg) return false;
    breaker_count c = {.provider = r->provider, .who = who, .len = len};
    if (cfg->health) routing_state_each(cfg->health, count_breaker, &c);
    config_release(cfg);
    *value = c.n;
    return true;
}

/* One budget's share spent, kept when it is the largest so far. */
static void consider_budget(const spend_snapshot *spend, char kind, const char *id, const char *alias,
                            double max, int64_t duration, int64_t now, double *best, char *who, size_t len)
{
    if (max <= 0) return;
    double spent = spend_snapshot_get(spend, kind, id, duration, now), share = spent / max;
    if (share <= *best) return;
    *best = share;
    snprintf(who, len, "%s %s%s%s%s: $%.4f of $%.4f", kind == 'k' ? "key" : "team", id, alias ? " (" : "",
             alias ? alias : "", alias ? ")" : "", spent, max);
}

static bool budget_spent(void *ud, const alert_rule *r, double *value, char *who, size_t len)
{
    store_service *svc = auth_service();
    if (!svc) return false;
    key_snapshot *keys = store_service_snapshot(svc);
    spend_snapshot *spend = store_service_spend(svc);
    int64_t now = (int64_t)time(NULL);
    double best = -1;
    for (size_t i = 0; keys && i < keys->nkeys; i++) {
        const store_key *k = &keys->keys[i];
        if (!k->enabled || (r->key && strcmp(r->key, k->id) && (!k->alias || strcmp(r->key, k->alias))) ||
            (r->team && (!k->team || strcmp(r->team, k->team))))
            continue;
        consider_budget(spend, 'k', k->id, k->alias, k->max_budget, k->budget_duration, now, &best, who, len);
    }
    for (size_t i = 0; keys && !r->key && i < keys->nteams; i++) {
        const store_team *t = &keys->teams[i];
        if (r->team && strcmp(r->team, t->id)) continue;
        consider_budget(spend, 't', t->id, t->alias, t->max_budget, t->budget_duration, now, &best, who, len);
    }
    spend_snapshot_release(spend);
    key_snapshot_release(keys);
    if (best < 0) return false;
    *value = best;
    return true;
}

static void metrics_reload(const aigw_config *next)
{
    pthread_mutex_lock(&newest_lock);
    const aigw_config *old = newest;
    newest = config_retain(next);
    pthread_mutex_unlock(&newest_lock);
    if (old) config_release(old);
}

/* The config's alert rules, running over the registry (read at start: a reload keeps them). */
static bool start_alerts(const alerts_config *c, char *err, size_t errlen)
{
    alert_rule rules[ALERTS_MAX_RULES];
    for (size_t i = 0; i < c->nrules && i < ALERTS_MAX_RULES; i++)
        rules[i] = (alert_rule){.name = c->rules[i].name,
                                .kind = (alert_kind)c->rules[i].kind,
                                .provider = c->rules[i].provider,
                                .key = c->rules[i].key,
                                .team = c->rules[i].team,
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
                         .timeout_ms = c->timeout_ms,
                         .probes = {.breakers_open = breakers_open, .budget_spent = budget_spent}};
    alerting = alerts_start(&s, registry, err, errlen);
    config_free_lines(lines, c->nheaders);
    return alerting != NULL;
}

static bool metrics_start(const aigw_config *cfg, char *err, size_t errlen)
{
    registry = metrics_new();
    metrics_reload(cfg);
    return !cfg->alerts.nrules || start_alerts(&cfg->alerts, err, errlen);
}

static void metrics_stop(void)
{
    alerts_stop(alerting);
    alerting = NULL;
    metrics_free(registry);
    registry = NULL;
    pthread_mutex_lock(&newest_lock);
    const aigw_config *last = newest;
    newest = NULL;
    pthread_mutex_unlock(&newest_lock);
    if (last) config_release(last);
}

void metrics_stage_alerts_json(buf *out)
{
    alerts_state_json(alerting, out); /* started before the workers, stopped after them */
}

static void *metrics_worker_init(worker *w)
{
    return metrics_shard_new(registry);
}

/* A route decision's target label: provider/model as the config names them ("provider/(request)"
 * when the config leaves the model to the client), a nested strategy's name. */
static const char *choice_target(const record_choice *c, char *out, size_t len)
{
    if (!c->provider) return c->name ? c->name : "(strategy)";
    snprintf(out, len, "%s/%s", c->provider, c->model ? c->model : "(request)");
    return out;
}

/* The routing decisions PLAN made. A request's own config (a header) is the client's to name:
 * its route and targets are all "(request)", so no name it makes up becomes a series. */
static void count_decisions(metrics_shard *s, const record_decision *d)
{
    if (!d->route) return;
    const char *route = d->client_config ? "(request)" : d->route;
    char target[METRICS_LABEL_MAX + 1];
    const record_choice *choices[] = {&d->auto_choice, &d->router_choice};
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++)
        if (choices[i]->made)
            metrics_route_decision(s, route, choices[i]->side,
                                   d->client_config ? "(request)"
                                                    : choice_target(choices[i], target, sizeof target));
    metrics_route_no_candidate(s, route, d->no_candidate);
    metrics_external_router(s, route, d->external);
}

static void metrics_on_record(const exchange_record *r, void *shard)
{
    /* no walk: PLAN's route all the same (an auto route's refusal), else none */
    const char *route = r->route ? r->route : r->decision.route;
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
    if (r->rejection != REJECT_NONE) metrics_reject(shard, r->rejection, r->key_id);
    count_decisions(shard, &r->decision);
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

/* A scrape rendered on libuv's thread pool: summing and sorting every worker's series takes
 * milliseconds at thousands of series (bench/scrape.sh), which the worker's other connections
 * must not wait for. The job holds its own reference to the config whose breakers it reads. */
typedef struct scrape_job {
    uv_work_t work;
    exchange_ticket ticket;
    const aigw_config *config;
    metrics_gauges gauges;
    buf out;
} scrape_job;

static void scrape_render(uv_work_t *work)
{
    scrape_job *job = work->data;
    metrics_render(registry, &job->gauges, &job->out);
    if (job->config->health) render_targets(job->config->health, &job->out);
}

static void scrape_answer(uv_work_t *work, int status)
{
    scrape_job *job = work->data;
    if (exchange_ticket_live(job->ticket)) { /* its client is still there */
        exchange *x = job->ticket.x;
        if (status == 0)
            exchange_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, 0, job->out.data,
                             job->out.len);
        else
            exchange_error(x, 503, "server_error", "metrics_unavailable", NULL,
                           "the scrape could not be rendered");
    }
    exchange_resume(job->ticket, STAGE_DONE);
    config_release(job->config);
    buf_free(&job->out);
    free(job);
}

stage_result answer_metrics(exchange *x)
{
    if (x->config->auth.mode == AUTH_ON && !x->master_key && !(x->key && x->key->admin)) {
        x->rejection = REJECT_FORBIDDEN_ADMIN;
        auth_refuse(x, 403, "metrics_not_allowed", NULL,
                    "GET /metrics needs the master key or an admin key while auth is on");
        return STAGE_DONE;
    }
    reqlog_stage_stats rl;
    bool reqlog_on = reqlog_stage_counts(&rl);
    uint64_t traces_exported, traces_dropped;
    bool traces_on = trace_stage_counts(&traces_exported, &traces_dropped);
    scrape_job *job = xcalloc(1, sizeof *job);
    job->work.data = job;
    job->config = config_retain(x->config);
    job->gauges = (metrics_gauges){
        .open_connections = server_open_connections(pipeline_server(x->pw)),
        .log_dropped = accesslog_stage_dropped(),
        .reqlog_on = reqlog_on,
        .reqlog_queued = rl.queued,
        .reqlog_dropped_full = rl.dropped_full,
        .reqlog_dropped_store = rl.dropped_store,
        .reqlog_written = rl.written,
        .traces_on = traces_on,
        .traces_exported = traces_exported,
        .traces_dropped = traces_dropped,
        .version = AIGW_VERSION,
    };
    cache_backend *cache = cache_stage_backend();
    if (cache) {
        cache_stats cs;
        cache->ops->stats(cache, &cs);
        job->gauges.cache_bytes = cs.bytes;
        job->gauges.cache_entries = cs.entries;
        job->gauges.cache_max_bytes = cs.max_bytes;
    }
    job->gauges.cache_unavailable = cache_redis_unavailable();
    job->gauges.cache_stores_dropped = cache_redis_stores_dropped();
    job->gauges.cache_embed_failures = cache_stage_embed_failures();
    if (cache_stage_index())
        cache_index_stats(cache_stage_index(), &job->gauges.cache_semantic_entries,
                          &job->gauges.cache_semantic_bytes, NULL);
    buf_init(&job->out, (size_t)64 << 20);
    job->ticket = exchange_suspend(x);
    uv_queue_work(&x->http->worker->loop, &job->work, scrape_render, scrape_answer);
    return STAGE_AGAIN;
}

const stage stage_metrics = {
    .name = "metrics",
    .phase = PHASE_RECORD,
    .start = metrics_start,
    .stop = metrics_stop,
    .worker_init = metrics_worker_init,
    .on_record = metrics_on_record,
    .reload = metrics_reload,
};
