/* trace_stage.c — OpenTelemetry traces of requests (observe/trace.h): the trace context in,
 * the traceparent each upstream call carries, and the spans out.
 *
 * ACCEPT, first of all stages: the client's traceparent is read (an invalid one starts a new
 * trace, as the W3C spec says); with `tracing:` configured the request gets a span id and a
 * sampling decision — the client's sampled flag when it sent one (parent-based), else
 * sample_ratio. Each upstream call then carries "traceparent: 00-<trace>-<call's span>-<flag>"
 * and the client's tracestate. Without `tracing:` the client's traceparent and tracestate go
 * upstream as they came: aigw is then not a hop of the trace.
 *
 * RECORD, an observer: a sampled request's spans — one SERVER span for the request, a CLIENT
 * span per upstream call, its child, with the OpenTelemetry GenAI attributes — are written as
 * OTLP JSON on the worker and handed to the exporter thread. A request that is not sampled
 * costs a few comparisons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "observe/trace.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "util/alloc.h"
#include "util/random.h"
#include "util/timeutil.h"

static trace_exporter *exporter;
static double sample_ratio;
static uint64_t unix_offset_ns; /* CLOCK_REALTIME − CLOCK_MONOTONIC, once */

static bool trace_start(const aigw_config *cfg, char *err, size_t errlen)
{
    const tracing_settings *t = &cfg->tracing;
    if (!t->endpoint) return true;
    char **lines = config_header_lines(t->headers, t->nheaders);
    trace_exporter_settings s = {
        .endpoint = t->endpoint,
        .headers = lines,
        .nheaders = t->nheaders,
        .service_name = t->service_name,
        .queue_max = (size_t)t->queue_max,
        .batch_delay_ms = t->batch_delay_ms,
        .timeout_ms = t->timeout_ms,
    };
    exporter = trace_exporter_start(&s, err, errlen);
    config_free_lines(lines, t->nheaders);
    sample_ratio = t->sample_ratio;
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    unix_offset_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec - time_now_ns();
    return exporter != NULL;
}

static void trace_stop(void)
{
    trace_exporter_stop(exporter);
    exporter = NULL;
}

static void random_bytes(exchange *x, uint8_t *out, size_t n)
{
    uint64_t *rng = &x->http->worker->rng;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = random_next(rng);
        memcpy(out + i, &v, n - i < 8 ? n - i : 8);
    }
}

static stage_result trace_on_request(exchange *x, void *state)
{
    const http_header *parent = exchange_header(x, "traceparent");
    bool sampled = false;
    x->trace.has_parent = parent && trace_parse_parent(parent->value, parent->value_len, x->trace.trace_id,
                                                       x->trace.parent_id, &sampled);
    const http_header *ts = exchange_header(x, "tracestate");
    if (x->trace.has_parent && ts && ts->value_len <= TRACE_STATE_MAX) x->trace.state = ts->value;
    if (!exporter) {
        x->trace.propagate = x->trace.has_parent; /* passed on as it came */
        if (x->trace.has_parent) memcpy(x->trace.span_id, x->trace.parent_id, 8);
        x->trace.sampled = sampled;
        return STAGE_DECLINED;
    }
    if (!x->trace.has_parent) {
        random_bytes(x, x->trace.trace_id, 16);
        sampled = sample_ratio >= 1 ||
                  (double)(random_next(&x->http->worker->rng) >> 11) / 9007199254740992.0 < sample_ratio;
    }
    random_bytes(x, x->trace.span_id, 8);
    x->trace.sampled = sampled;
    x->trace.propagate = true;
    return STAGE_DECLINED;
}

void trace_attempt_headers(exchange *x, attempt *a)
{
    if (!x->trace.propagate) return;
    /* a traced call gets a span of its own; passed on untraced, the client's parent stays */
    if (exporter)
        random_bytes(x, a->span_id, 8);
    else
        memcpy(a->span_id, x->trace.span_id, 8);
    char *line = arena_alloc(x->arena, 13 + 56);
    memcpy(line, "traceparent: ", 13);
    trace_format_parent(line + 13, x->trace.trace_id, a->span_id, x->trace.sampled);
    struct curl_slist *node = arena_alloc(x->arena, sizeof *node);
    *node = (struct curl_slist){.data = line, .next = a->request.headers};
    a->request.headers = node;
    if (x->trace.state) {
        const http_header *ts = exchange_header(x, "tracestate");
        char *sline = arena_alloc(x->arena, 12 + ts->value_len + 1);
        memcpy(sline, "tracestate: ", 12);
        memcpy(sline + 12, ts->value, ts->value_len);
        sline[12 + ts->value_len] = '\0';
        struct curl_slist *snode = arena_alloc(x->arena, sizeof *snode);
        *snode = (struct curl_slist){.data = sline, .next = a->request.headers};
        a->request.headers = snode;
    }
}

/* ---- spans ------------------------------------------------------------------------------------ */

static void attr_string(buf *out, bool *first, const char *key, const char *value)
{
    if (!value) return;
    buf_append_str(out, *first ? "{\"key\":\"" : ",{\"key\":\"");
    *first = false;
    buf_append_str(out, key);
    buf_append_str(out, "\",\"value\":{\"stringValue\":");
    buf_append_json_string(out, value, strlen(value));
    buf_append_str(out, "}}");
}

static void attr_int(buf *out, bool *first, const char *key, long long value)
{
    buf_printf(out, "%s{\"key\":\"%s\",\"value\":{\"intValue\":\"%lld\"}}", *first ? "" : ",", key, value);
    *first = false;
}

static void span_head(buf *out, const exchange_record *r, const uint8_t *span_id, const uint8_t *parent,
                      const char *name, int kind, uint64_t start_ns, uint64_t end_ns)
{
    char hex[33];
    trace_hex(hex, r->trace_id, 16);
    buf_printf(out, "{\"traceId\":\"%s\"", hex);
    trace_hex(hex, span_id, 8);
    buf_printf(out, ",\"spanId\":\"%s\"", hex);
    if (parent) {
        trace_hex(hex, parent, 8);
        buf_printf(out, ",\"parentSpanId\":\"%s\"", hex);
    }
    buf_append_str(out, ",\"name\":");
    buf_append_json_string(out, name, strlen(name));
    buf_printf(
        out, ",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\",\"attributes\":[",
        kind, (unsigned long long)(start_ns + unix_offset_ns), (unsigned long long)(end_ns + unix_offset_ns));
}

/* GenAI's operation name for the endpoint the client called. */
static const char *operation_of(const exchange_record *r)
{
    if (strstr(r->path, "/embeddings")) return "embeddings";
    if (strstr(r->path, "/v1/completions")) return "text_completion";
    return "chat";
}

static void trace_on_record(const exchange_record *r, void *worker_state)
{
    if (!exporter || !r->trace_id) return;
    buf out;
    buf_init(&out, (size_t)1 << 30);
    const char *op = operation_of(r);
    char name[160];
    snprintf(name, sizeof name, "%s %.120s", op, r->model ? r->model : "");
    span_head(&out, r, r->span_id, r->parent_span_id, name, 2 /* SERVER */, r->start_ns, r->end_ns);
    bool first = true;
    attr_string(&out, &first, "gen_ai.operation.name", op);
    attr_string(&out, &first, "gen_ai.request.model", r->model);
    attr_string(&out, &first, "gen_ai.provider.name", r->provider_type);
    if (r->upstream_model) {
        char model[256];
        snprintf(model, sizeof model, "%.*s", (int)r->upstream_model_len, r->upstream_model);
        attr_string(&out, &first, "gen_ai.response.model", model);
    }
    if (r->usage.seen) {
        attr_int(&out, &first, "gen_ai.usage.input_tokens", r->usage.prompt);
        attr_int(&out, &first, "gen_ai.usage.output_tokens", r->usage.completion);
    }
    attr_int(&out, &first, "http.response.status_code", r->status);
    attr_string(&out, &first, "aigw.route", r->route);
    attr_string(&out, &first, "aigw.provider", r->provider);
    attr_string(&out, &first, "aigw.key_id", r->key_id);
    attr_string(&out, &first, "aigw.request_id", r->request_id);
    attr_int(&out, &first, "aigw.attempts", (long long)r->ncalls);
    if (r->cost_usd >= 0) {
        buf_printf(&out, "%s{\"key\":\"aigw.cost_usd\",\"value\":{\"doubleValue\":%.9f}}", first ? "" : ",",
                   r->cost_usd);
        first = false;
    }
    buf_append_str(&out, "]");
    if (r->status >= 500) {
        buf_append_str(&out, ",\"status\":{\"code\":2,\"message\":");
        const char *why = r->error ? r->error : "server error";
        buf_append_json_string(&out, why, strlen(why) > 200 ? 200 : strlen(why));
        buf_append_str(&out, "}");
    }
    buf_append_str(&out, "}");

    for (size_t i = 0; i < r->ncalls; i++) {
        const record_call *c = &r->calls[i];
        /* its role: the first call; a hedge started while the one before ran; a retry of the
         * same target; a fallback to another */
        const record_call *prev = i ? &r->calls[i - 1] : NULL;
        const char *role = !prev                                         ? "first"
                           : !prev->end_ns || c->start_ns < prev->end_ns ? "hedge"
                           : !strcmp(prev->provider, c->provider) && !strcmp(prev->model, c->model)
                               ? "retry"
                               : "fallback";
        snprintf(name, sizeof name, "%s %.120s", op, c->model);
        buf_append_str(&out, ",");
        span_head(&out, r, c->span_id, r->span_id, name, 3 /* CLIENT */, c->start_ns,
                  c->end_ns ? c->end_ns : r->end_ns);
        first = true;
        attr_string(&out, &first, "gen_ai.operation.name", op);
        attr_string(&out, &first, "gen_ai.provider.name", c->provider_type);
        attr_string(&out, &first, "gen_ai.request.model", c->model);
        attr_string(&out, &first, "aigw.provider", c->provider);
        attr_string(&out, &first, "aigw.attempt.role", role);
        attr_string(&out, &first, "aigw.attempt.outcome", c->outcome);
        if (c->status) attr_int(&out, &first, "http.response.status_code", c->status);
        buf_append_str(&out, "]");
        if (strcmp(c->outcome, "ok") && strcmp(c->outcome, "cancelled")) {
            buf_append_str(&out, ",\"status\":{\"code\":2,\"message\":");
            buf_append_json_string(&out, c->outcome, strlen(c->outcome));
            buf_append_str(&out, "}");
        }
        buf_append_str(&out, "}");
    }
    trace_exporter_submit(exporter, out.data, out.len); /* takes the buffer */
}

const stage stage_trace = {
    .name = "trace",
    .phase = PHASE_ACCEPT,
    .start = trace_start,
    .stop = trace_stop,
    .on_request = trace_on_request,
    .on_record = trace_on_record,
};
