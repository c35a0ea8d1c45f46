/* otlp.c — a traced request's spans recorded by the worker, and written as OTLP protobuf or
 * JSON on the exporter's thread (otlp.h).
 *
 * The record is sized first and filled second (the struct, its phases and calls in one bump
 * allocation of the worker's batch, then each string NUL-terminated in a second): a few copies
 * and no formatting on the worker. Each string keeps the length the copy counted, so neither
 * encoder counts it again. Measured with callgrind (bench/RESULTS.md), writing the spans' JSON on
 * the worker cost about 11,000 instructions a request; the copy costs about a thousand, and the
 * exporter's protobuf about two thousand more on its own thread.
 *
 * Both encoders write through a cursor into room reserved once for the batch (the sum of each
 * request's bound, computed at copy time: every string at its worst — six bytes a byte for
 * JSON's escapes, which also covers protobuf's three for U+FFFD), literals inlined: an append
 * with a check per call cost more than the rest of a span. Protobuf's lengths not known in
 * advance: a span's is written after two bytes kept for it (a length of 128 to 16383 bytes, a
 * request's or a call's span as a rule), then the span is moved over by the bytes its length
 * needs more or less — none as a rule (five bytes kept, every span moved back three: about 150
 * instructions a request, a few hundred bytes moved a span) — except a phase's span,
 * whose length is known before it is written (fixed-size ids and times, a literal name), and a
 * span's name, written in place from its parts rather than joined first; the batch's envelope
 * is written last, just before the spans, in room kept for it, and the body starts there
 * (moving the whole batch instead cost about a thousand instructions a request). */
#include "observe/otlp.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* n bytes of s at p: a short string (most of a span's are, in the copy as in the encoders) by
 * two moves of a word that overlap, inlined, neither reading past s's end; a longer one by
 * memcpy (its call and size dispatch cost about as much as the copy of a short one). */
static inline char *put_bytes(char *p, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t head, tail;
        memcpy(&head, s, 8);
        memcpy(&tail, s + n - 8, 8);
        memcpy(p, &head, 8);
        memcpy(p + n - 8, &tail, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t head, tail;
        memcpy(&head, s, 4);
        memcpy(&tail, s + n - 4, 4);
        memcpy(p, &head, 4);
        memcpy(p + n - 4, &tail, 4);
    } else {
        memcpy(p, s, n);
    }
    return p + n;
}

/* ---- the worker's copy ------------------------------------------------------------------------ */

/* GenAI's operation name for the endpoint the client called (by the path's end: two compares
 * rather than two searches of it). */
static otlp_text operation_of(const exchange_record *r)
{
    const char *p = r->path;
    size_t n = r->path_len;
    if (n >= 11 && !memcmp(p + n - 11, "/embeddings", 11)) return (otlp_text){"embeddings", 10};
    if (n >= 15 && !memcmp(p + n - 15, "/v1/completions", 15)) return (otlp_text){"text_completion", 15};
    return (otlp_text){"chat", 4};
}

/* What one string can take in either encoding, everywhere it is written once. */
#define STR_BOUND(n) (6 * (size_t)(n) + 16)
#define REQUEST_FIXED 1024 /* the request span's ids, literals, numbers and punctuation */
#define PHASE_FIXED 400
#define CALL_FIXED 1600 /* a call's span and its translation's */

/* n bytes of s and a NUL at *p, which moves past them; none when s is NULL. */
static inline otlp_text pack_text(char **p, const char *s, size_t n)
{
    if (!s) return (otlp_text){NULL, 0};
    char *out = *p;
    put_bytes(out, s, n)[0] = '\0';
    *p = out + n + 1;
    return (otlp_text){out, n};
}

#define LEN(s) ((s) ? strlen(s) : 0)

/* Each string's length is kept in the struct as it is counted, and each string packed straight
 * into its field: no arrays of sources, lengths and destinations walked in loops (about a
 * hundred instructions a request fewer). */
otlp_request *otlp_request_copy(arena *a, const exchange_record *r, uint64_t unix_offset_ns,
                                const char *prompt, size_t prompt_len, const char *completion,
                                size_t completion_len)
{
    const char *why = r->status >= 500 ? (r->error ? r->error : "server error") : NULL;
    /* the struct, its phases and calls first (the calls' string lengths are kept there as they
     * are counted), then the strings, in a second allocation sized by them */
    otlp_request *q = arena_alloc(a, sizeof(otlp_request) + r->nphases * sizeof(otlp_phase) +
                                         r->ncalls * sizeof(otlp_call));
    otlp_phase *phases = (otlp_phase *)(q + 1);
    otlp_call *calls = (otlp_call *)(phases + r->nphases);
    size_t model = LEN(r->model), type = LEN(r->provider_type),
           upstream = r->upstream_model ? r->upstream_model_len : 0, route = LEN(r->route),
           provider = LEN(r->provider), key = LEN(r->key_id), id = LEN(r->request_id), error = LEN(why);
    if (error > OTLP_ERROR_MAX) error = OTLP_ERROR_MAX;
    if (!prompt) prompt_len = 0;
    if (!completion) completion_len = 0;
    enum { NSTRINGS = 10 };
    size_t chars =
        model + type + upstream + route + provider + key + id + error + prompt_len + completion_len;
    size_t total = chars + NSTRINGS;
    /* every string at its worst once (STR_BOUND), and the model twice: the span's name too */
    size_t bound = REQUEST_FIXED + STR_BOUND(model) + r->nphases * PHASE_FIXED + 6 * chars + 16 * NSTRINGS;
    for (size_t i = 0; i < r->ncalls; i++) {
        const record_call *c = &r->calls[i];
        otlp_call *d = &calls[i];
        d->provider.len = LEN(c->provider);
        d->provider_type.len = LEN(c->provider_type);
        d->model.len = LEN(c->model);
        total += d->provider.len + d->provider_type.len + d->model.len + 3;
        bound += CALL_FIXED + 2 * STR_BOUND(d->provider.len) + 2 * STR_BOUND(d->provider_type.len) +
                 2 * STR_BOUND(d->model.len);
    }
    char *p = arena_alloc(a, total);
    for (size_t i = 0; i < r->nphases; i++) {
        const record_phase *ph = &r->phases[i];
        phases[i] = (otlp_phase){.name = ph->name,
                                 .start_ns = ph->start_ns + unix_offset_ns,
                                 .end_ns = ph->start_ns + ph->ns + unix_offset_ns,
                                 .name_len = ph->name_len};
    }
    for (size_t i = 0; i < r->ncalls; i++) {
        const record_call *c = &r->calls[i];
        otlp_call *d = &calls[i];
        *d = (otlp_call){
            .provider = pack_text(&p, c->provider, d->provider.len),
            .provider_type = pack_text(&p, c->provider_type, d->provider_type.len),
            .model = pack_text(&p, c->model, d->model.len),
            .outcome = c->outcome,
            .ingress = c->ingress,
            .start_ns = c->start_ns + unix_offset_ns,
            .end_ns = c->end_ns ? c->end_ns + unix_offset_ns : 0,
            .status = c->status,
            .encode_start_ns = c->encode_start_ns ? c->encode_start_ns + unix_offset_ns : 0,
            .encode_ns = c->encode_ns,
            .decode_ns = c->decode_ns,
        };
        memcpy(d->span_id, c->span_id, 8);
    }
    *q = (otlp_request){
        .has_parent = r->parent_span_id != NULL,
        .operation = operation_of(r),
        .model = pack_text(&p, r->model, model),
        .provider_type = pack_text(&p, r->provider_type, type),
        .upstream_model = pack_text(&p, r->upstream_model, upstream),
        .route = pack_text(&p, r->route, route),
        .provider = pack_text(&p, r->provider, provider),
        .key_id = pack_text(&p, r->key_id, key),
        .request_id = pack_text(&p, r->request_id, id),
        .error = pack_text(&p, why, error),
        .start_ns = r->start_ns + unix_offset_ns,
        .end_ns = r->end_ns + unix_offset_ns,
        .status = r->status,
        .usage_seen = r->usage.seen,
        .input_tokens = r->usage.prompt,
        .output_tokens = r->usage.completion,
        .cost_usd = r->cost_usd,
        .attempts = r->ncalls,
        .prompt = pack_text(&p, prompt, prompt_len),
        .completion = pack_text(&p, completion, completion_len),
        .phases = phases,
        .nphases = r->nphases,
        .calls = calls,
        .ncalls = r->ncalls,
        .bound = bound,
    };
    memcpy(q->trace_id, r->trace_id, 16);
    memcpy(q->span_id, r->span_id, 8);
    if (r->parent_span_id) memcpy(q->parent_span_id, r->parent_span_id, 8);
    return q;
}

/* ---- what both encodings write ----------------------------------------------------------------- */

enum { SPAN_INTERNAL = 1, SPAN_SERVER = 2, SPAN_CLIENT = 3 };

static bool text_equal(otlp_text a, otlp_text b)
{
    return a.len == b.len && (a.s == b.s || (a.s && b.s && !memcmp(a.s, b.s, a.len)));
}

/* A call's role: the first; a hedge started while the one before ran; a retry of the same
 * target; a fallback to another. */
static const char *role_of(const otlp_request *q, size_t i)
{
    if (!i) return "first";
    const otlp_call *c = &q->calls[i], *prev = &q->calls[i - 1];
    if (!prev->end_ns || c->start_ns < prev->end_ns) return "hedge";
    return text_equal(prev->provider, c->provider) && text_equal(prev->model, c->model) ? "retry"
                                                                                        : "fallback";
}

static bool call_failed(const otlp_call *c)
{
    return strcmp(c->outcome, "ok") && strcmp(c->outcome, "cancelled");
}

/* A phase's span id: the request's, changed so that it is unique within the trace. */
static void phase_span_id(const otlp_request *q, size_t i, uint8_t id[8])
{
    memcpy(id, q->span_id, 8);
    id[7] ^= (uint8_t)(0x80 | i);
    id[0] ^= 0x5a;
}

static void translate_span_id(const otlp_call *c, uint8_t id[8])
{
    memcpy(id, c->span_id, 8);
    id[0] ^= 0xa5;
}

/* "{op} {model}" (the model cut at OTLP_MODEL_IN_NAME bytes), or "{op}" when there is no model,
 * into out. */
static size_t span_name(char *out, otlp_text op, otlp_text model)
{
    size_t mlen = model.len < OTLP_MODEL_IN_NAME ? model.len : OTLP_MODEL_IN_NAME;
    memcpy(out, op.s, op.len);
    if (!model.s) return op.len;
    out[op.len] = ' ';
    memcpy(out + op.len + 1, model.s, mlen);
    return op.len + 1 + mlen;
}

/* The request span's model: none is an empty one ("chat "). */
static otlp_text request_model(const otlp_request *q)
{
    return q->model.s ? q->model : (otlp_text){"", 0};
}

/* A phase's name's length, at most 26 bytes: as the record knew it, else counted. */
static size_t phase_name_len(const otlp_phase *ph)
{
    size_t n = ph->name_len ? ph->name_len : strlen(ph->name);
    return n < 26 ? n : 26;
}

static size_t phase_name(char *out, const otlp_phase *ph)
{
    size_t n = phase_name_len(ph);
    memcpy(out, "aigw.", 5);
    memcpy(out + 5, ph->name, n);
    return 5 + n;
}

#define NAME_MAX_BYTES (OTLP_MODEL_IN_NAME + 32)
/* Attribute keys are literals: their lengths are known at compile time. */
#define KEY(lit) "" lit, sizeof(lit) - 1

/* ---- protobuf --------------------------------------------------------------------------------- */

/* Field numbers of opentelemetry/proto (collector/trace/v1, trace/v1, common/v1, resource/v1). */
enum {
    PB_VARINT = 0,
    PB_I64 = 1,
    PB_LEN = 2,
    EXPORT_RESOURCE_SPANS = 1, /* ExportTraceServiceRequest */
    RESOURCE_SPANS_RESOURCE = 1,
    RESOURCE_SPANS_SCOPE_SPANS = 2,
    RESOURCE_ATTRIBUTES = 1,
    SCOPE_SPANS_SCOPE = 1,
    SCOPE_SPANS_SPANS = 2,
    SCOPE_NAME = 1,
    SPAN_TRACE_ID = 1,
    SPAN_SPAN_ID = 2,
    SPAN_PARENT_SPAN_ID = 4,
    SPAN_NAME = 5,
    SPAN_KIND = 6,
    SPAN_START = 7,
    SPAN_END = 8,
    SPAN_ATTRIBUTES = 9,
    SPAN_STATUS = 15,
    STATUS_MESSAGE = 2,
    STATUS_CODE = 3,
    KEY_VALUE_KEY = 1,
    KEY_VALUE_VALUE = 2,
    ANY_STRING = 1,
    ANY_INT = 3,
    ANY_DOUBLE = 4,
    STATUS_CODE_ERROR = 2,
};

#define PB_TAG(field, wire) ((char)((field) << 3 | (wire)))

static inline size_t pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline char *pb_varint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

/* How long s is once made well-formed UTF-8: ASCII, the common case, told inline a word at a
 * time; anything else asked of utf8_clean_size. */
static inline size_t clean_size(const char *s, size_t len)
{
    uint64_t any = 0, x;
    if (len >= 8) { /* whole words, the last one overlapping the one before */
        for (size_t i = 0; i + 8 < len; i += 8) {
            memcpy(&x, s + i, 8);
            any |= x;
        }
        memcpy(&x, s + len - 8, 8);
        any |= x;
    } else if (len >= 4) { /* two words of four, overlapping */
        uint32_t head, tail;
        memcpy(&head, s, 4);
        memcpy(&tail, s + len - 4, 4);
        any = head | tail;
    } else {
        for (size_t i = 0; i < len; i++)
            any |= (unsigned char)s[i];
    }
    return any & 0x8080808080808080ULL ? utf8_clean_size(s, len) : len;
}

/* s (its clean size known) made well-formed UTF-8: copied as it is in the common case. */
static inline char *put_clean(char *p, const char *s, size_t len, size_t clean)
{
    if (clean != len) return put_utf8_clean(p, s, len, clean);
    return put_bytes(p, s, len);
}

/* A tag of a field below 16 is one byte; SPAN_STATUS (15) is the largest written. */
/* An id: its length known, so the copy is inlined. */
static inline char *pb_id8(char *p, int field, const uint8_t id[8])
{
    *p++ = PB_TAG(field, PB_LEN);
    *p++ = 8;
    memcpy(p, id, 8);
    return p + 8;
}

static inline char *pb_fixed64(char *p, int field, uint64_t v)
{
    *p++ = PB_TAG(field, PB_I64);
    uint64_t le = htole64(v);
    memcpy(p, &le, 8);
    return p + 8;
}

static inline char *pb_varint_field(char *p, int field, uint64_t v)
{
    *p++ = PB_TAG(field, PB_VARINT);
    return pb_varint(p, v);
}

/* A KeyValue whose AnyValue takes value_size bytes, up to the AnyValue's own content. Inlined
 * where it is called with a literal key, so the key's copy and its length are constants. */
static inline __attribute__((always_inline)) char *pb_attr_head(char *p, int field, const char *key,
                                                                size_t key_len, size_t value_size)
{
    size_t kv = 1 + pb_varint_size(key_len) + key_len + 1 + pb_varint_size(value_size) + value_size;
    *p++ = PB_TAG(field, PB_LEN);
    p = pb_varint(p, kv);
    *p++ = PB_TAG(KEY_VALUE_KEY, PB_LEN);
    p = pb_varint(p, key_len);
    memcpy(p, key, key_len);
    p += key_len;
    *p++ = PB_TAG(KEY_VALUE_VALUE, PB_LEN);
    return pb_varint(p, value_size);
}

static inline __attribute__((always_inline)) char *pb_attr_string(char *p, int field, const char *key,
                                                                  size_t key_len, const char *v, size_t len)
{
    if (!v) return p;
    size_t clean = clean_size(v, len);
    p = pb_attr_head(p, field, key, key_len, 1 + pb_varint_size(clean) + clean);
    *p++ = PB_TAG(ANY_STRING, PB_LEN);
    p = pb_varint(p, clean);
    return put_clean(p, v, len, clean);
}

static inline __attribute__((always_inline)) char *pb_attr_str(char *p, const char *key, size_t key_len,
                                                               const char *v)
{
    return v ? pb_attr_string(p, SPAN_ATTRIBUTES, key, key_len, v, strlen(v)) : p;
}

static inline __attribute__((always_inline)) char *pb_attr_text(char *p, const char *key, size_t key_len,
                                                                otlp_text v)
{
    return pb_attr_string(p, SPAN_ATTRIBUTES, key, key_len, v.s, v.len);
}

static inline __attribute__((always_inline)) char *pb_attr_int(char *p, const char *key, size_t key_len,
                                                               long long v)
{
    uint64_t u = (uint64_t)v; /* int64: a negative number is ten bytes of two's complement */
    p = pb_attr_head(p, SPAN_ATTRIBUTES, key, key_len, 1 + pb_varint_size(u));
    return pb_varint_field(p, ANY_INT, u);
}

static inline char *pb_attr_double(char *p, const char *key, size_t key_len, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    p = pb_attr_head(p, SPAN_ATTRIBUTES, key, key_len, 9);
    return pb_fixed64(p, ANY_DOUBLE, bits);
}

/* A span's trace id, its own id and its parent's (if it has one). */
static inline char *pb_ids(char *p, const otlp_request *q, const uint8_t span_id[8], const uint8_t *parent)
{
    *p++ = PB_TAG(SPAN_TRACE_ID, PB_LEN);
    *p++ = 16;
    memcpy(p, q->trace_id, 16);
    p = pb_id8(p + 16, SPAN_SPAN_ID, span_id);
    return parent ? pb_id8(p, SPAN_PARENT_SPAN_ID, parent) : p;
}

static inline char *pb_kind_times(char *p, int kind, uint64_t start_ns, uint64_t end_ns)
{
    p = pb_varint_field(p, SPAN_KIND, (uint64_t)kind);
    p = pb_fixed64(p, SPAN_START, start_ns);
    return pb_fixed64(p, SPAN_END, end_ns);
}

/* Bytes kept for a span's length, not known in advance: its varint's size for 128 to 16383. */
#define SPAN_LEN_KEPT 2

/* A span's opening — its tag and SPAN_LEN_KEPT bytes kept for its length — up to its attributes. The
 * span's content starts at *content. Its name is prefix (a literal, ASCII) and, when model.s is
 * not NULL, a space and the model cut at OTLP_MODEL_IN_NAME bytes — written in place, as
 * span_name would make it. */
static char *pb_span_head(char *p, char **content, const otlp_request *q, const uint8_t span_id[8],
                          const uint8_t *parent, otlp_text prefix, otlp_text model, int kind,
                          uint64_t start_ns, uint64_t end_ns)
{
    *p++ = PB_TAG(SCOPE_SPANS_SPANS, PB_LEN);
    *content = p + SPAN_LEN_KEPT;
    p = pb_ids(*content, q, span_id, parent);
    size_t mlen = model.len < OTLP_MODEL_IN_NAME ? model.len : OTLP_MODEL_IN_NAME;
    size_t clean = model.s ? clean_size(model.s, mlen) : 0;
    *p++ = PB_TAG(SPAN_NAME, PB_LEN);
    p = pb_varint(p, prefix.len + (model.s ? 1 + clean : 0));
    p = put_bytes(p, prefix.s, prefix.len);
    if (model.s) {
        *p++ = ' ';
        p = put_clean(p, model.s, mlen, clean);
    }
    return pb_kind_times(p, kind, start_ns, end_ns);
}

/* A phase's span, whole: its length is known before it is written (fixed-size ids and times, a
 * literal name of at most 26 bytes), so it needs no room kept and nothing moved. */
static char *pb_phase_span(char *p, const otlp_request *q, size_t i)
{
    const otlp_phase *ph = &q->phases[i];
    size_t n = phase_name_len(ph);
    uint8_t id[8];
    phase_span_id(q, i, id);
    *p++ = PB_TAG(SCOPE_SPANS_SPANS, PB_LEN);
    *p++ = (char)(18 + 10 + 10 + 2 + 5 + n + 2 + 9 + 9); /* below 128: one byte */
    p = pb_ids(p, q, id, q->span_id);
    *p++ = PB_TAG(SPAN_NAME, PB_LEN);
    *p++ = (char)(5 + n);
    memcpy(p, "aigw.", 5);
    return pb_kind_times(put_bytes(p + 5, ph->name, n), SPAN_INTERNAL, ph->start_ns, ph->end_ns);
}

/* The span's status when it failed, then its length written before it, the span moved first
 * when its length takes other than SPAN_LEN_KEPT bytes (forward at most three: the room a span's
 * bound counts for its length is five). */
static char *pb_span_end(char *p, char *content, const char *error, size_t error_len)
{
    if (error) {
        size_t clean = clean_size(error, error_len);
        size_t status = 1 + pb_varint_size(clean) + clean + 2;
        *p++ = PB_TAG(SPAN_STATUS, PB_LEN);
        p = pb_varint(p, status);
        *p++ = PB_TAG(STATUS_MESSAGE, PB_LEN);
        p = pb_varint(p, clean);
        p = put_utf8_clean(p, error, error_len, clean);
        p = pb_varint_field(p, STATUS_CODE, STATUS_CODE_ERROR);
    }
    size_t len = (size_t)(p - content);
    char *at = content - SPAN_LEN_KEPT + pb_varint_size(len);
    if (at != content) memmove(at, content, len);
    pb_varint(content - SPAN_LEN_KEPT, len);
    return at + len;
}

static char *pb_request(char *p, const otlp_request *q)
{
    char *content;
    p = pb_span_head(p, &content, q, q->span_id, q->has_parent ? q->parent_span_id : NULL, q->operation,
                     request_model(q), SPAN_SERVER, q->start_ns, q->end_ns);
    p = pb_attr_text(p, KEY("gen_ai.operation.name"), q->operation);
    p = pb_attr_text(p, KEY("gen_ai.request.model"), q->model);
    p = pb_attr_text(p, KEY("gen_ai.provider.name"), q->provider_type);
    p = pb_attr_text(p, KEY("gen_ai.response.model"), q->upstream_model);
    if (q->usage_seen) {
        p = pb_attr_int(p, KEY("gen_ai.usage.input_tokens"), q->input_tokens);
        p = pb_attr_int(p, KEY("gen_ai.usage.output_tokens"), q->output_tokens);
    }
    p = pb_attr_int(p, KEY("http.response.status_code"), q->status);
    p = pb_attr_text(p, KEY("aigw.route"), q->route);
    p = pb_attr_text(p, KEY("aigw.provider"), q->provider);
    p = pb_attr_text(p, KEY("aigw.key_id"), q->key_id);
    p = pb_attr_text(p, KEY("aigw.request_id"), q->request_id);
    p = pb_attr_int(p, KEY("aigw.attempts"), (long long)q->attempts);
    if (q->cost_usd >= 0) p = pb_attr_double(p, KEY("aigw.cost_usd"), q->cost_usd);
    p = pb_attr_text(p, KEY("gen_ai.prompt"), q->prompt);
    p = pb_attr_text(p, KEY("gen_ai.completion"), q->completion);
    p = pb_span_end(p, content, q->error.s, q->error.len);

    for (size_t i = 0; i < q->nphases; i++)
        p = pb_phase_span(p, q, i);
    for (size_t i = 0; i < q->ncalls; i++) {
        const otlp_call *c = &q->calls[i];
        p = pb_span_head(p, &content, q, c->span_id, q->span_id, q->operation, c->model, SPAN_CLIENT,
                         c->start_ns, c->end_ns ? c->end_ns : q->end_ns);
        p = pb_attr_text(p, KEY("gen_ai.operation.name"), q->operation);
        p = pb_attr_text(p, KEY("gen_ai.provider.name"), c->provider_type);
        p = pb_attr_text(p, KEY("gen_ai.request.model"), c->model);
        p = pb_attr_text(p, KEY("aigw.provider"), c->provider);
        p = pb_attr_str(p, KEY("aigw.attempt.role"), role_of(q, i));
        p = pb_attr_str(p, KEY("aigw.attempt.outcome"), c->outcome);
        if (c->status) p = pb_attr_int(p, KEY("http.response.status_code"), c->status);
        bool failed = call_failed(c);
        p = pb_span_end(p, content, failed ? c->outcome : NULL, failed ? strlen(c->outcome) : 0);
        if (c->encode_start_ns) {
            uint8_t id[8];
            translate_span_id(c, id);
            p = pb_span_head(p, &content, q, id, q->span_id, (otlp_text){KEY("aigw.translate")},
                             (otlp_text){NULL, 0}, SPAN_INTERNAL, c->encode_start_ns,
                             c->encode_start_ns + c->encode_ns);
            p = pb_attr_str(p, KEY("aigw.translate.from"), c->ingress);
            p = pb_attr_text(p, KEY("aigw.translate.to"), c->provider_type);
            p = pb_attr_text(p, KEY("aigw.provider"), c->provider);
            p = pb_attr_int(p, KEY("aigw.translate.reply_ns"), (long long)c->decode_ns);
            p = pb_span_end(p, content, NULL, 0);
        }
    }
    return p;
}

/* The batch's envelope before its spans: ExportTraceServiceRequest.resource_spans →
 * ResourceSpans{resource{attributes: service.name}, scope_spans → ScopeSpans{scope{name:
 * "aigw"}, spans…}} — its lengths known once the spans are written. */
static size_t pb_envelope(char *out, const char *service, size_t service_len, size_t spans_len)
{
    static const char scope[] = {
        PB_TAG(SCOPE_SPANS_SCOPE, PB_LEN), 6, PB_TAG(SCOPE_NAME, PB_LEN), 4, 'a', 'i', 'g', 'w'};
    size_t clean = clean_size(service, service_len);
    size_t any = 1 + pb_varint_size(clean) + clean;
    size_t key_value = 1 + 1 + (sizeof "service.name" - 1) + 1 + pb_varint_size(any) + any;
    size_t resource = 1 + pb_varint_size(key_value) + key_value;
    size_t scope_spans = sizeof scope + spans_len;
    size_t resource_spans =
        1 + pb_varint_size(resource) + resource + 1 + pb_varint_size(scope_spans) + scope_spans;
    char *p = out;
    *p++ = PB_TAG(EXPORT_RESOURCE_SPANS, PB_LEN);
    p = pb_varint(p, resource_spans);
    *p++ = PB_TAG(RESOURCE_SPANS_RESOURCE, PB_LEN);
    p = pb_varint(p, resource);
    p = pb_attr_string(p, RESOURCE_ATTRIBUTES, KEY("service.name"), service, service_len);
    *p++ = PB_TAG(RESOURCE_SPANS_SCOPE_SPANS, PB_LEN);
    p = pb_varint(p, scope_spans);
    memcpy(p, scope, sizeof scope);
    return (size_t)(p + sizeof scope - out);
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static char *js_attr_head(char *p, bool *first, const char *key, size_t key_len)
{
    if (!*first) *p++ = ',';
    *first = false;
    p = put_lit(p, "{\"key\":\"");
    memcpy(p, key, key_len);
    return p + key_len;
}

static char *js_attr_string(char *p, bool *first, const char *key, size_t key_len, const char *v, size_t len)
{
    if (!v) return p;
    p = js_attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"stringValue\":");
    p = put_json_string(p, v, len);
    return put_lit(p, "}}");
}

static char *js_attr_str(char *p, bool *first, const char *key, size_t key_len, const char *v)
{
    return v ? js_attr_string(p, first, key, key_len, v, strlen(v)) : p;
}

static char *js_attr_text(char *p, bool *first, const char *key, size_t key_len, otlp_text v)
{
    return js_attr_string(p, first, key, key_len, v.s, v.len);
}

static char *js_attr_int(char *p, bool *first, const char *key, size_t key_len, long long v)
{
    p = js_attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"intValue\":\"");
    p = put_int(p, v);
    return put_lit(p, "\"}}");
}

/* USD as a fixed-point number of nano-dollars: no printf. */
static char *js_attr_usd(char *p, bool *first, const char *key, size_t key_len, double usd)
{
    p = js_attr_head(p, first, key, key_len);
    p = put_lit(p, "\",\"value\":{\"doubleValue\":");
    if (!(usd >= 0)) usd = 0; /* NaN, and a cost is never negative */
    if (usd > 9e9) usd = 9e9; /* an upstream's absurd usage: nano-dollars must fit a long long */
    long long nano = (long long)(usd * 1e9 + 0.5);
    p = put_int(p, nano / 1000000000);
    *p++ = '.';
    for (int i = 8; i >= 0; i--, nano /= 10)
        p[i] = (char)('0' + nano % 10);
    return put_lit(p + 9, "}}");
}

static char *js_id(char *p, const uint8_t *id, size_t n)
{
    *p++ = '"';
    p = put_hex(p, id, n);
    *p++ = '"';
    return p;
}

/* A time as OTLP's "…UnixNano" string: decimal, without leading zeros. */
static char *js_time(char *p, uint64_t unix_ns)
{
    *p++ = '"';
    uint64_t secs = unix_ns / 1000000000u;
    uint32_t nanos = (uint32_t)(unix_ns % 1000000000u);
    if (!secs) {
        p = put_int(p, nanos);
    } else {
        p = put_int(p, (long long)secs);
        for (int i = 8; i >= 0; i--, nanos /= 10)
            p[i] = (char)('0' + nanos % 10);
        p += 9;
    }
    *p++ = '"';
    return p;
}

/* A span up to its attributes' opening bracket, after a comma unless it is the batch's first. */
static char *js_span_head(char *p, bool *first_span, const otlp_request *q, const uint8_t span_id[8],
                          const uint8_t *parent, const char *name, size_t name_len, int kind,
                          uint64_t start_ns, uint64_t end_ns)
{
    if (!*first_span) *p++ = ',';
    *first_span = false;
    p = put_lit(p, "{\"traceId\":");
    p = js_id(p, q->trace_id, 16);
    p = put_lit(p, ",\"spanId\":");
    p = js_id(p, span_id, 8);
    if (parent) {
        p = put_lit(p, ",\"parentSpanId\":");
        p = js_id(p, parent, 8);
    }
    p = put_lit(p, ",\"name\":");
    p = put_json_string(p, name, name_len);
    p = put_lit(p, ",\"kind\":");
    *p++ = (char)('0' + kind);
    p = put_lit(p, ",\"startTimeUnixNano\":");
    p = js_time(p, start_ns);
    p = put_lit(p, ",\"endTimeUnixNano\":");
    p = js_time(p, end_ns);
    return put_lit(p, ",\"attributes\":[");
}

static char *js_span_end(char *p, const char *error, size_t len)
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

static char *js_request(char *p, bool *first_span, const otlp_request *q)
{
    char name[NAME_MAX_BYTES];
    size_t nlen = span_name(name, q->operation, request_model(q));
    p = js_span_head(p, first_span, q, q->span_id, q->has_parent ? q->parent_span_id : NULL, name, nlen,
                     SPAN_SERVER, q->start_ns, q->end_ns);
    bool first = true;
    p = js_attr_text(p, &first, KEY("gen_ai.operation.name"), q->operation);
    p = js_attr_text(p, &first, KEY("gen_ai.request.model"), q->model);
    p = js_attr_text(p, &first, KEY("gen_ai.provider.name"), q->provider_type);
    p = js_attr_text(p, &first, KEY("gen_ai.response.model"), q->upstream_model);
    if (q->usage_seen) {
        p = js_attr_int(p, &first, KEY("gen_ai.usage.input_tokens"), q->input_tokens);
        p = js_attr_int(p, &first, KEY("gen_ai.usage.output_tokens"), q->output_tokens);
    }
    p = js_attr_int(p, &first, KEY("http.response.status_code"), q->status);
    p = js_attr_text(p, &first, KEY("aigw.route"), q->route);
    p = js_attr_text(p, &first, KEY("aigw.provider"), q->provider);
    p = js_attr_text(p, &first, KEY("aigw.key_id"), q->key_id);
    p = js_attr_text(p, &first, KEY("aigw.request_id"), q->request_id);
    p = js_attr_int(p, &first, KEY("aigw.attempts"), (long long)q->attempts);
    if (q->cost_usd >= 0) p = js_attr_usd(p, &first, KEY("aigw.cost_usd"), q->cost_usd);
    p = js_attr_text(p, &first, KEY("gen_ai.prompt"), q->prompt);
    p = js_attr_text(p, &first, KEY("gen_ai.completion"), q->completion);
    p = js_span_end(p, q->error.s, q->error.len);

    for (size_t i = 0; i < q->nphases; i++) {
        uint8_t id[8];
        phase_span_id(q, i, id);
        nlen = phase_name(name, &q->phases[i]);
        p = js_span_head(p, first_span, q, id, q->span_id, name, nlen, SPAN_INTERNAL, q->phases[i].start_ns,
                         q->phases[i].end_ns);
        p = js_span_end(p, NULL, 0);
    }
    for (size_t i = 0; i < q->ncalls; i++) {
        const otlp_call *c = &q->calls[i];
        nlen = span_name(name, q->operation, c->model);
        p = js_span_head(p, first_span, q, c->span_id, q->span_id, name, nlen, SPAN_CLIENT, c->start_ns,
                         c->end_ns ? c->end_ns : q->end_ns);
        first = true;
        p = js_attr_text(p, &first, KEY("gen_ai.operation.name"), q->operation);
        p = js_attr_text(p, &first, KEY("gen_ai.provider.name"), c->provider_type);
        p = js_attr_text(p, &first, KEY("gen_ai.request.model"), c->model);
        p = js_attr_text(p, &first, KEY("aigw.provider"), c->provider);
        p = js_attr_str(p, &first, KEY("aigw.attempt.role"), role_of(q, i));
        p = js_attr_str(p, &first, KEY("aigw.attempt.outcome"), c->outcome);
        if (c->status) p = js_attr_int(p, &first, KEY("http.response.status_code"), c->status);
        bool failed = call_failed(c);
        p = js_span_end(p, failed ? c->outcome : NULL, failed ? strlen(c->outcome) : 0);
        if (c->encode_start_ns) {
            uint8_t id[8];
            translate_span_id(c, id);
            p = js_span_head(p, first_span, q, id, q->span_id, KEY("aigw.translate"), SPAN_INTERNAL,
                             c->encode_start_ns, c->encode_start_ns + c->encode_ns);
            first = true;
            p = js_attr_str(p, &first, KEY("aigw.translate.from"), c->ingress);
            p = js_attr_text(p, &first, KEY("aigw.translate.to"), c->provider_type);
            p = js_attr_text(p, &first, KEY("aigw.provider"), c->provider);
            p = js_attr_int(p, &first, KEY("aigw.translate.reply_ns"), (long long)c->decode_ns);
            p = js_span_end(p, NULL, 0);
        }
    }
    return p;
}

/* ---- a batch ----------------------------------------------------------------------------------- */

#define SERVICE_MAX 256                            /* bytes of service.name written */
#define ENVELOPE_MAX (64 + STR_BOUND(SERVICE_MAX)) /* what comes before the spans, at most */

const char *otlp_encode(otlp_encoding encoding, const char *service_name, const otlp_request *const *reqs,
                        size_t n, buf *out, size_t *len)
{
    size_t slen = strlen(service_name);
    if (slen > SERVICE_MAX) slen = SERVICE_MAX;
    size_t envelope = ENVELOPE_MAX, total = envelope;
    for (size_t i = 0; i < n; i++)
        total += reqs[i]->bound;
    char *start = buf_room(out, total);
    if (!start) return NULL;
    char *p, *begin = start;
    if (encoding == OTLP_PROTOBUF) {
        /* the spans first; the envelope, whose lengths they decide, then written just before them */
        char *spans = start + envelope;
        p = spans;
        for (size_t i = 0; i < n; i++)
            p = pb_request(p, reqs[i]);
        char head[ENVELOPE_MAX];
        size_t hlen = pb_envelope(head, service_name, slen, (size_t)(p - spans));
        begin = spans - hlen;
        memcpy(begin, head, hlen);
    } else {
        p = put_lit(start, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                           "\"value\":{\"stringValue\":");
        p = put_json_string(p, service_name, slen);
        p = put_lit(p, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"aigw\"},\"spans\":[");
        bool first_span = true;
        for (size_t i = 0; i < n; i++)
            p = js_request(p, &first_span, reqs[i]);
        p = put_lit(p, "]}]}]}");
    }
    if ((size_t)(p - start) > total) abort(); /* a bound is wrong: a bug, never input */
    buf_commit(out, p);
    *len = (size_t)(p - begin);
    return begin;
}

const char *otlp_content_type(otlp_encoding encoding)
{
    return encoding == OTLP_PROTOBUF ? "application/x-protobuf" : "application/json";
}
