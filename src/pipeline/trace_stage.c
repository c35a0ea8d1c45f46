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
 * span per upstream call, its children, with the OpenTelemetry GenAI attributes — are copied
 * into one compact record (observe/otlp.h) in the worker's batch, which goes to the exporter
 * thread every FLUSH_MS or when full; that thread writes them as OTLP protobuf or JSON. A
 * request that is not sampled costs a few comparisons.
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
#include <uv.h>

#include "observe/reqlog.h"
#include "observe/trace.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "util/alloc.h"
#include "util/random.h"
#include "util/timeutil.h"

#define FLUSH_MS 100         /* a worker's batch of spans waits at most this long */
#define WORKER_BATCH_MAX 256 /* … or goes when this many requests' spans are in it */

static trace_exporter *exporter;
static size_t worker_batch_max; /* WORKER_BATCH_MAX, or the exporter's queue when that is smaller */
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
        .encoding = t->json ? OTLP_JSON : OTLP_PROTOBUF,
        .queue_max = (size_t)t->queue_max,
        .batch_delay_ms = t->batch_delay_ms,
        .timeout_ms = t->timeout_ms,
    };
    exporter = trace_exporter_start(&s, err, errlen);
    config_free_lines(lines, t->nheaders);
    sample_ratio = t->sample_ratio;
    worker_batch_max = (size_t)t->queue_max < WORKER_BATCH_MAX ? (size_t)t->queue_max : WORKER_BATCH_MAX;
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

/* An id of n bytes, n a multiple of 8 (a trace's 16, a span's 8): whole words, each copy of a
 * known size. */
static void random_bytes(exchange *x, uint8_t *out, size_t n)
{
    uint64_t *rng = &x->http->worker->rng;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = random_next(rng);
        memcpy(out + i, &v, 8);
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
    /* JSON's first byte past whitespace and a byte-order mark: a body that looks like JSON and
     * did not parse is never kept as text */
    size_t lead = len >= 3 && !memcmp(body, "\xef\xbb\xbf", 3) ? 3 : 0;
    while (lead < len &&
           (body[lead] == ' ' || body[lead] == '\t' || body[lead] == '\r' || body[lead] == '\n'))
        lead++;
    bool json_like = lead < len && (body[lead] == '{' || body[lead] == '[');
    if (whole) {
        buf_append_str(&out, whole);
        free(whole);
    } else if (len > CONTENT_PARSE_MAX || (!sse && json_like)) {
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

/* A sampled request's spans are recorded here and written on the exporter's thread (otlp.h):
 * the worker copies, it does not format. Each worker keeps its records in a batch of its own
 * (observe/trace.h: an arena and an array, no lock), handed to the exporter when it is full or
 * every FLUSH_MS. Only tracing.content's bodies are made here — their redaction and cut — so
 * that what waits in the queue stays bounded by content.max. */

typedef struct trace_worker {
    uv_timer_t timer;
    trace_batch *batch; /* never NULL */
} trace_worker;

static void flush(trace_worker *tw)
{
    if (!tw->batch->n) return;
    trace_exporter_submit(exporter, tw->batch); /* takes it; a full queue counts it dropped */
    tw->batch = trace_batch_new(worker_batch_max);
}

bool trace_stage_counts(uint64_t *exported, uint64_t *dropped)
{
    *exported = exporter ? trace_exporter_exported(exporter) : 0;
    *dropped = exporter ? trace_exporter_dropped(exporter) : 0;
    return exporter != NULL;
}

static void on_flush_timer(uv_timer_t *timer)
{
    flush(timer->data);
}

static void *trace_worker_init(worker *w)
{
    if (!exporter) return NULL;
    trace_worker *tw = xcalloc(1, sizeof *tw);
    tw->batch = trace_batch_new(worker_batch_max);
    uv_timer_init(&w->loop, &tw->timer);
    tw->timer.data = tw;
    uv_timer_start(&tw->timer, on_flush_timer, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&tw->timer); /* a worker's loop ends without waiting for it */
    return tw;
}

static void on_timer_closed(uv_handle_t *h)
{
    trace_worker *tw = h->data;
    flush(tw); /* a request recorded after worker_close: the exporter runs until the stage stops */
    trace_batch_free(tw->batch);
    free(tw);
}

static void trace_worker_close(void *state)
{
    trace_worker *tw = state;
    if (!tw) return;
    flush(tw);
    uv_timer_stop(&tw->timer);
    uv_close((uv_handle_t *)&tw->timer, on_timer_closed);
}

static void trace_on_record(const exchange_record *r, void *worker_state)
{
    trace_worker *tw = worker_state;
    if (!tw || !r->trace_id) return;
    char *prompt = NULL, *completion = NULL;
    size_t prompt_len = 0, completion_len = 0;
    if (content.on) {
        prompt = content_text(r->request_body, r->request_body_len, &prompt_len);
        if (r->response_body)
            completion = content_text(r->response_body, r->response_body_len, &completion_len);
    }
    trace_batch *b = tw->batch;
    b->sets[b->n++] =
        otlp_request_copy(&b->mem, r, unix_offset_ns, prompt, prompt_len, completion, completion_len);
    free(prompt);
    free(completion);
    if (b->n == b->cap) flush(tw);
}

const stage stage_trace = {
    .name = "trace",
    .phase = PHASE_ACCEPT,
    .start = trace_start,
    .stop = trace_stop,
    .worker_init = trace_worker_init,
    .worker_close = trace_worker_close,
    .on_request = trace_on_request,
    .on_body = trace_on_body,
    .on_record = trace_on_record,
};
