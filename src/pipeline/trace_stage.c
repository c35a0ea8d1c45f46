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
 * RECORD, an observer: a sampled request's spans — one SERVER span for the request, an INTERNAL
 * span per phase that did work on the loop (aigw.auth, aigw.decode, aigw.routing, …) and a CLIENT
 * span per upstream call, its children, with the OpenTelemetry GenAI attributes — are written as
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

/* Spans are written with appends only: printf's formatting cost more than the rest of the
 * span together (callgrind). */
static void attr_int(buf *out, bool *first, const char *key, long long value)
{
    buf_append_str(out, *first ? "{\"key\":\"" : ",{\"key\":\"");
    *first = false;
    buf_append_str(out, key);
    buf_append_str(out, "\",\"value\":{\"intValue\":\"");
    buf_append_int(out, value);
    buf_append_str(out, "\"}}");
}

static void append_hex(buf *out, const char *field, const uint8_t *bytes, size_t n)
{
    char hex[33];
    trace_hex(hex, bytes, n);
    buf_append_str(out, field);
    buf_append(out, hex, 2 * n);
    buf_append(out, "\"", 1);
}

/* "name": "{operation} {model}" as the GenAI conventions name spans (the model cut at 120 bytes). */
static void append_name(buf *out, const char *op, const char *model)
{
    char name[160];
    size_t olen = strlen(op), mlen = model ? strlen(model) : 0;
    if (mlen > 120) mlen = 120;
    memcpy(name, op, olen);
    name[olen] = ' ';
    if (mlen) memcpy(name + olen + 1, model, mlen);
    buf_append_str(out, ",\"name\":");
    buf_append_json_string(out, name, olen + 1 + mlen);
}

static void span_head(buf *out, const exchange_record *r, const uint8_t *span_id, const uint8_t *parent,
                      const char *op, const char *model, int kind, uint64_t start_ns, uint64_t end_ns)
{
    append_hex(out, "{\"traceId\":\"", r->trace_id, 16);
    append_hex(out, ",\"spanId\":\"", span_id, 8);
    if (parent) append_hex(out, ",\"parentSpanId\":\"", parent, 8);
    append_name(out, op, model);
    buf_append_str(out, kind == 2 ? ",\"kind\":2" : ",\"kind\":3");
    buf_append_str(out, ",\"startTimeUnixNano\":\"");
    buf_append_int(out, (long long)(start_ns + unix_offset_ns));
    buf_append_str(out, "\",\"endTimeUnixNano\":\"");
    buf_append_int(out, (long long)(end_ns + unix_offset_ns));
    buf_append_str(out, "\",\"attributes\":[");
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
    span_head(&out, r, r->span_id, r->parent_span_id, op, r->model, 2 /* SERVER */, r->start_ns, r->end_ns);
    bool first = true;
    attr_string(&out, &first, "gen_ai.operation.name", op);
    attr_string(&out, &first, "gen_ai.request.model", r->model);
    attr_string(&out, &first, "gen_ai.provider.name", r->provider_type);
    if (r->upstream_model) {
        buf_append_str(&out, ",{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":");
        buf_append_json_string(&out, r->upstream_model, r->upstream_model_len);
        buf_append_str(&out, "}}");
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
    if (r->cost_usd >= 0) { /* nano-dollars as a fixed-point number: no printf */
        long long nano = (long long)(r->cost_usd * 1e9 + 0.5);
        char frac[10];
        for (int i = 8; i >= 0; i--, nano /= 10)
            frac[i] = (char)('0' + nano % 10);
        frac[9] = '\0';
        buf_append_str(&out, first ? "{" : ",{");
        buf_append_str(&out, "\"key\":\"aigw.cost_usd\",\"value\":{\"doubleValue\":");
        buf_append_int(&out, nano);
        buf_append(&out, ".", 1);
        buf_append(&out, frac, 9);
        buf_append_str(&out, "}}");
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

    for (size_t i = 0; i < r->nphases; i++) { /* INTERNAL spans: aigw's own work, phase by phase */
        const record_phase *ph = &r->phases[i];
        uint8_t id[8];
        memcpy(id, r->span_id, 8);
        id[7] ^= (uint8_t)(0x80 | i); /* derived from the request's span: unique within the trace */
        id[0] ^= 0x5a;
        buf_append_str(&out, ",");
        append_hex(&out, "{\"traceId\":\"", r->trace_id, 16);
        append_hex(&out, ",\"spanId\":\"", id, 8);
        append_hex(&out, ",\"parentSpanId\":\"", r->span_id, 8);
        buf_append_str(&out, ",\"name\":\"aigw.");
        buf_append_str(&out, ph->name);
        buf_append_str(&out, "\",\"kind\":1,\"startTimeUnixNano\":\"");
        buf_append_int(&out, (long long)(ph->start_ns + unix_offset_ns));
        buf_append_str(&out, "\",\"endTimeUnixNano\":\"");
        buf_append_int(&out, (long long)(ph->start_ns + ph->ns + unix_offset_ns));
        buf_append_str(&out, "\",\"attributes\":[]}");
    }

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
        buf_append_str(&out, ",");
        span_head(&out, r, c->span_id, r->span_id, op, c->model, 3 /* CLIENT */, c->start_ns,
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
