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
 * costs a few comparisons.
 *
 * With `tracing.content: on` the request span also carries the bodies, as the OpenLLMetry-era
 * attributes gen_ai.prompt (the client's request) and gen_ai.completion (the response bytes the
 * client got, kept by this stage's body filter), each redacted (the request log's rule: JSON
 * members by name, any depth; an SSE stream event by event) and cut at content.max. Off by
 * default: bodies hold what users type. The redaction parses them on the worker, a cost only
 * those who turn it on pay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "observe/reqlog.h"
#include "observe/trace.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "util/alloc.h"
#include "util/random.h"
#include "util/timeutil.h"

static trace_exporter *exporter;
static double sample_ratio;
static trace_content_settings content; /* a copy: the bodies spans carry, redacted */
static uint64_t unix_offset_ns;        /* CLOCK_REALTIME − CLOCK_MONOTONIC, once */

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
    content = (trace_content_settings){.on = t->content.on, .max_bytes = t->content.max_bytes};
    if (content.on) {
        content.nredact = t->content.nredact;
        content.redact = xcalloc(content.nredact ? content.nredact : 1, sizeof *content.redact);
        for (size_t i = 0; i < content.nredact; i++)
            content.redact[i] = xstrdup(t->content.redact[i]);
    }
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    unix_offset_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec - time_now_ns();
    return exporter != NULL;
}

static void trace_stop(void)
{
    trace_exporter_stop(exporter);
    exporter = NULL;
    for (size_t i = 0; i < content.nredact; i++)
        free(content.redact[i]);
    free(content.redact);
    content = (trace_content_settings){0};
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

/* ---- content --------------------------------------------------------------------------------- */

/* The response bytes a traced request's client gets, kept up to four times content.max — room
 * for a JSON body to be parsed whole and redacted before it is cut at max (one allocation in the
 * request's arena, when the first bytes come). */
static void trace_on_body(exchange *x, void *state, const char *data, size_t len)
{
    if (!content.on || !x->trace.sampled || !exporter) return;
    size_t capture = 4 * content.max_bytes;
    if (!x->trace.output) x->trace.output = arena_alloc(x->arena, capture);
    size_t room = capture - x->trace.output_len;
    if (len > room) len = room;
    memcpy(x->trace.output + x->trace.output_len, data, len);
    x->trace.output_len += len;
}

/* n, cut back to the start of a UTF-8 sequence, so a body cut at max stays text. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max) return len;
    while (max && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* A longer body is not parsed on the worker to be redacted: the span says it was left out. */
#define CONTENT_PARSE_MAX ((size_t)1 << 20)

/* A body for a span: JSON redacted; an SSE stream's data lines redacted one by one (a line that
 * does not parse — the last one of a stream cut at the capture's bound — left out); JSON that
 * does not parse, or a body past CONTENT_PARSE_MAX, left out; other text as it is. malloc'd,
 * NUL-terminated, cut at content.max. */
static char *content_text(const char *body, size_t len, size_t *out_len)
{
    buf out;
    buf_init(&out, (size_t)1 << 30);
    char *whole = len && len <= CONTENT_PARSE_MAX
                      ? reqlog_redact_body(body, len, content.redact, content.nredact)
                      : NULL;
    bool sse = len > 5 && (!memcmp(body, "data:", 5) || !memcmp(body, "event:", 6));
    if (whole) {
        buf_append_str(&out, whole);
        free(whole);
    } else if (len > CONTENT_PARSE_MAX || (!sse && len && (body[0] == '{' || body[0] == '['))) {
        buf_printf(&out, "[%zu bytes not kept: they could not be redacted]", len);
    } else {
        for (size_t at = 0; at < len && out.len < content.max_bytes;) { /* SSE, or text: line by line */
            const char *nl = memchr(body + at, '\n', len - at);
            size_t end = nl ? (size_t)(nl - body) + 1 : len, llen = end - at;
            const char *line = body + at;
            at = end;
            if (!sse || llen < 6 || memcmp(line, "data: ", 6) || line[6] != '{') {
                buf_append(&out, line, llen);
                continue;
            }
            bool newline = line[llen - 1] == '\n';
            char *redacted =
                reqlog_redact_body(line + 6, llen - 6 - newline, content.redact, content.nredact);
            buf_append_lit(&out, "data: ");
            buf_append_str(&out, redacted ? redacted : "[not kept: it could not be redacted]");
            if (newline) buf_append_lit(&out, "\n");
            free(redacted);
        }
    }
    if (!out.data) buf_append_lit(&out, "");
    *out_len = cut_utf8(out.data, out.len, content.max_bytes);
    out.data[*out_len] = '\0';
    return out.data;
}

/* ---- spans ------------------------------------------------------------------------------------ */

/* Spans are written through a cursor into room reserved once for the whole request (span_bound),
 * literals inlined: appends with a check and a call each cost more than the rest of the span
 * together, and printf more again (callgrind, bench/RESULTS.md "Observability"). */

#define SPAN_FIXED 640 /* a span's ids, name, kind, times, status and punctuation */
#define ATTR_FIXED 80  /* one attribute's key and punctuation, its value's non-string part */
#define MODEL_IN_NAME 120

static size_t str_bound(const char *s)
{
    return s ? 6 * strlen(s) + 2 : 0;
}

/* What the request's spans can take at most: every string escaped at its worst. */
static size_t span_bound(const exchange_record *r)
{
    size_t n = SPAN_FIXED + 16 * ATTR_FIXED + 6 * MODEL_IN_NAME + str_bound(r->model) +
               str_bound(r->provider_type) + 6 * r->upstream_model_len + 2 + str_bound(r->route) +
               str_bound(r->provider) + str_bound(r->key_id) + str_bound(r->request_id) + 6 * 200 + 2;
    n += r->nphases * (SPAN_FIXED + 32);
    if (content.on) n += 2 * ATTR_FIXED + 2 * (6 * content.max_bytes + 2);
    for (size_t i = 0; i < r->ncalls; i++) {
        const record_call *c = &r->calls[i];
        n += SPAN_FIXED + 8 * ATTR_FIXED + 6 * MODEL_IN_NAME + str_bound(c->provider_type) +
             str_bound(c->model) + str_bound(c->provider) + 2 * str_bound(c->outcome);
    }
    return n;
}

static char *attr_head(char *p, bool *first, const char *key, size_t key_len)
{
    if (!*first) *p++ = ',';
    *first = false;
    p = put_lit(p, "{\"key\":\"");
    memcpy(p, key, key_len);
    return p + key_len;
}
/* Attribute keys are literals: their lengths are known at compile time. */
#define KEY(lit) "" lit, sizeof(lit) - 1

static char *attr_string(char *p, bool *first, const char *key, size_t key_len, const char *value, size_t len)
{
    if (!value) return p;
    p = attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"stringValue\":");
    p = put_json_string(p, value, len);
    return put_lit(p, "}}");
}

static char *attr_str(char *p, bool *first, const char *key, size_t key_len, const char *value)
{
    return value ? attr_string(p, first, key, key_len, value, strlen(value)) : p;
}

static char *attr_int(char *p, bool *first, const char *key, size_t key_len, long long value)
{
    p = attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"intValue\":\"");
    p = put_int(p, value);
    return put_lit(p, "\"}}");
}

/* USD as a fixed-point number of nano-dollars: no printf. */
static char *attr_usd(char *p, bool *first, const char *key, size_t key_len, double usd)
{
    p = attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"doubleValue\":");
    long long nano = (long long)(usd * 1e9 + 0.5);
    p = put_int(p, nano / 1000000000);
    *p++ = '.';
    for (int i = 8; i >= 0; i--, nano /= 10)
        p[i] = (char)('0' + nano % 10);
    return put_lit(p + 9, "}}");
}

/* What a request's spans repeat, written once: its trace id and span id in hex, and the
 * seconds of its last time stamp (the spans' times mostly share them). */
typedef struct span_ids {
    char trace[32], request[16];
    uint64_t secs;
    char secs_text[20];
    size_t secs_len;
} span_ids;

static char *put_id(char *p, const char *hex, size_t n)
{
    *p++ = '"';
    memcpy(p, hex, n);
    p += n;
    *p++ = '"';
    return p;
}

/* A time as OTLP's "…UnixNano" string: the seconds (copied when they are the last time's) and
 * nine digits of nanoseconds. */
static char *put_time(char *p, span_ids *ids, uint64_t mono_ns)
{
    uint64_t unix_ns = mono_ns + unix_offset_ns, secs = unix_ns / 1000000000u;
    uint32_t nanos = (uint32_t)(unix_ns % 1000000000u);
    if (secs != ids->secs || !ids->secs_len) {
        ids->secs = secs;
        ids->secs_len = (size_t)(put_int(ids->secs_text, (long long)secs) - ids->secs_text);
    }
    *p++ = '"';
    memcpy(p, ids->secs_text, ids->secs_len);
    p += ids->secs_len;
    for (int i = 8; i >= 0; i--, nanos /= 10)
        p[i] = (char)('0' + nanos % 10);
    p += 9;
    *p++ = '"';
    return p;
}

/* A span up to its attributes' opening bracket. name_model: "{op} {model}" as the GenAI
 * conventions name spans (the model cut at MODEL_IN_NAME bytes); NULL: the name is op. */
static char *span_head(char *p, span_ids *ids, const char *span_hex, const char *parent_hex, const char *op,
                       const char *name_model, int kind, uint64_t start_ns, uint64_t end_ns)
{
    p = put_lit(p, "{\"traceId\":");
    p = put_id(p, ids->trace, 32);
    p = put_lit(p, ",\"spanId\":");
    p = put_id(p, span_hex, 16);
    if (parent_hex) {
        p = put_lit(p, ",\"parentSpanId\":");
        p = put_id(p, parent_hex, 16);
    }
    char name[MODEL_IN_NAME + 32];
    size_t olen = strlen(op), mlen = name_model ? strlen(name_model) : 0;
    if (mlen > MODEL_IN_NAME) mlen = MODEL_IN_NAME;
    memcpy(name, op, olen);
    if (name_model) {
        name[olen++] = ' ';
        memcpy(name + olen, name_model, mlen);
    }
    p = put_lit(p, ",\"name\":");
    p = put_json_string(p, name, olen + mlen);
    p = put_lit(p, ",\"kind\":");
    *p++ = (char)('0' + kind);
    p = put_lit(p, ",\"startTimeUnixNano\":");
    p = put_time(p, ids, start_ns);
    p = put_lit(p, ",\"endTimeUnixNano\":");
    p = put_time(p, ids, end_ns);
    return put_lit(p, ",\"attributes\":[");
}

/* The closing of a span's attributes, its status when it failed, and the span's brace. */
static char *span_end(char *p, const char *error, size_t len)
{
    *p++ = ']';
    if (error) {
        p = put_lit(p, ",\"status\":{\"code\":2,\"message\":");
        p = put_json_string(p, error, len);
        *p++ = '}';
    }
    *p++ = '}';
    return p;
}

/* GenAI's operation name for the endpoint the client called. */
static const char *operation_of(const exchange_record *r)
{
    if (strstr(r->path, "/embeddings")) return "embeddings";
    if (strstr(r->path, "/v1/completions")) return "text_completion";
    return "chat";
}

enum { SPAN_INTERNAL = 1, SPAN_SERVER = 2, SPAN_CLIENT = 3 };

static void trace_on_record(const exchange_record *r, void *worker_state)
{
    if (!exporter || !r->trace_id) return;
    size_t bound = span_bound(r);
    char *start = xmalloc(bound), *p = start;
    const char *op = operation_of(r);
    span_ids ids = {.secs_len = 0};
    put_hex(ids.trace, r->trace_id, 16);
    put_hex(ids.request, r->span_id, 8);
    char parent[16], hex[16];
    if (r->parent_span_id) put_hex(parent, r->parent_span_id, 8);
    p = span_head(p, &ids, ids.request, r->parent_span_id ? parent : NULL, op, r->model ? r->model : "",
                  SPAN_SERVER, r->start_ns, r->end_ns);
    bool first = true;
    p = attr_str(p, &first, KEY("gen_ai.operation.name"), op);
    p = attr_str(p, &first, KEY("gen_ai.request.model"), r->model);
    p = attr_str(p, &first, KEY("gen_ai.provider.name"), r->provider_type);
    p = attr_string(p, &first, KEY("gen_ai.response.model"), r->upstream_model, r->upstream_model_len);
    if (r->usage.seen) {
        p = attr_int(p, &first, KEY("gen_ai.usage.input_tokens"), r->usage.prompt);
        p = attr_int(p, &first, KEY("gen_ai.usage.output_tokens"), r->usage.completion);
    }
    p = attr_int(p, &first, KEY("http.response.status_code"), r->status);
    p = attr_str(p, &first, KEY("aigw.route"), r->route);
    p = attr_str(p, &first, KEY("aigw.provider"), r->provider);
    p = attr_str(p, &first, KEY("aigw.key_id"), r->key_id);
    p = attr_str(p, &first, KEY("aigw.request_id"), r->request_id);
    p = attr_int(p, &first, KEY("aigw.attempts"), (long long)r->ncalls);
    if (r->cost_usd >= 0) p = attr_usd(p, &first, KEY("aigw.cost_usd"), r->cost_usd);
    if (content.on) {
        size_t n;
        char *text = content_text(r->request_body, r->request_body_len, &n);
        p = attr_string(p, &first, KEY("gen_ai.prompt"), text, n);
        free(text);
        if (r->response_body) {
            text = content_text(r->response_body, r->response_body_len, &n);
            p = attr_string(p, &first, KEY("gen_ai.completion"), text, n);
            free(text);
        }
    }
    const char *why = r->status >= 500 ? (r->error ? r->error : "server error") : NULL;
    p = span_end(p, why, why ? (strlen(why) > 200 ? 200 : strlen(why)) : 0);

    for (size_t i = 0; i < r->nphases; i++) { /* INTERNAL spans: aigw's own work, phase by phase */
        const record_phase *ph = &r->phases[i];
        uint8_t id[8];
        memcpy(id, r->span_id, 8);
        id[7] ^= (uint8_t)(0x80 | i); /* derived from the request's span: unique within the trace */
        id[0] ^= 0x5a;
        char name[32] = "aigw.";
        size_t nlen = strlen(ph->name);
        memcpy(name + 5, ph->name, nlen < 26 ? nlen + 1 : 27);
        *p++ = ',';
        put_hex(hex, id, 8);
        p = span_head(p, &ids, hex, ids.request, name, NULL, SPAN_INTERNAL, ph->start_ns,
                      ph->start_ns + ph->ns);
        p = span_end(p, NULL, 0);
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
        *p++ = ',';
        put_hex(hex, c->span_id, 8);
        p = span_head(p, &ids, hex, ids.request, op, c->model, SPAN_CLIENT, c->start_ns,
                      c->end_ns ? c->end_ns : r->end_ns);
        first = true;
        p = attr_str(p, &first, KEY("gen_ai.operation.name"), op);
        p = attr_str(p, &first, KEY("gen_ai.provider.name"), c->provider_type);
        p = attr_str(p, &first, KEY("gen_ai.request.model"), c->model);
        p = attr_str(p, &first, KEY("aigw.provider"), c->provider);
        p = attr_str(p, &first, KEY("aigw.attempt.role"), role);
        p = attr_str(p, &first, KEY("aigw.attempt.outcome"), c->outcome);
        if (c->status) p = attr_int(p, &first, KEY("http.response.status_code"), c->status);
        bool failed = strcmp(c->outcome, "ok") && strcmp(c->outcome, "cancelled");
        p = span_end(p, failed ? c->outcome : NULL, failed ? strlen(c->outcome) : 0);
        if (c->encode_start_ns) { /* the formats differed: aigw.translate, the request's, its reply's time */
            uint8_t id[8];
            memcpy(id, c->span_id, 8);
            id[0] ^= 0xa5;
            put_hex(hex, id, 8);
            *p++ = ',';
            p = span_head(p, &ids, hex, ids.request, "aigw.translate", NULL, SPAN_INTERNAL,
                          c->encode_start_ns, c->encode_start_ns + c->encode_ns);
            first = true;
            p = attr_str(p, &first, KEY("aigw.translate.from"), c->ingress);
            p = attr_str(p, &first, KEY("aigw.translate.to"), c->provider_type);
            p = attr_str(p, &first, KEY("aigw.provider"), c->provider);
            p = attr_int(p, &first, KEY("aigw.translate.reply_ns"), (long long)c->decode_ns);
            p = span_end(p, NULL, 0);
        }
    }
    size_t len = (size_t)(p - start);
    if (len > bound) abort();                    /* span_bound is wrong: a bug, never input */
    trace_exporter_submit(exporter, start, len); /* takes the buffer */
}

const stage stage_trace = {
    .name = "trace",
    .phase = PHASE_ACCEPT,
    .start = trace_start,
    .stop = trace_stop,
    .on_request = trace_on_request,
    .on_body = trace_on_body,
    .on_record = trace_on_record,
};
