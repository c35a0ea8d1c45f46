/* otlp.h — one traced request's spans as a worker records them, and OTLP's two encodings of a
 * batch of them, written on the exporter's thread (observe/trace.h sends them).
 *
 * The worker's part is a copy: otlp_request_copy takes what the spans need from the
 * exchange_record — ids, times already on the wall clock, status, usage, cost, and the strings,
 * copied because the config and key snapshot they point into may be gone by the time the
 * exporter runs — into one block of the worker's batch (observe/trace.h). Nothing is
 * formatted there. The exporter's thread
 * turns a batch into one ExportTraceServiceRequest (OTLP 1.x, trace/v1):
 *
 * - protobuf (OTLP/HTTP's default, Content-Type application/x-protobuf): written by hand —
 *   varints, fixed64 times, length-delimited fields (a span is written after two bytes kept for
 *   its length, then moved only when its length needs more or fewer — a phase's span, of a
 *   length known in advance, is not; every other length is known before its field is written). Strings are
 * made well-formed UTF-8 (a bad byte becomes U+FFFD: a Go collector refuses a message with one bad byte).
 * Less than half the JSON's size, and no escaping. Rejected: a protobuf library (a dependency for six message
 * types).
 * - JSON (Content-Type application/json), OTLP's JSON mapping: ids in hex, times and int
 *   attributes as decimal strings, enums as numbers.
 *
 * The spans, for either: a SERVER span for the request (named "{operation} {model}", the GenAI
 * conventions' name) with its attributes; an INTERNAL span "aigw.{phase}" per phase that did
 * work, its id derived from the request's; a CLIENT span per upstream call (its id the one the
 * provider got in traceparent) with its role (first, retry, fallback, hedge) derived from the
 * call before it; and an INTERNAL span "aigw.translate" before a call whose formats differed.
 * Pure functions: no I/O, no shared state. */
#ifndef AIGW_OBSERVE_OTLP_H
#define AIGW_OBSERVE_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/record.h"
#include "util/arena.h"
#include "util/buf.h"

typedef enum otlp_encoding {
    OTLP_PROTOBUF, /* http/protobuf */
    OTLP_JSON,     /* http/json */
} otlp_encoding;

/* A string and its length in bytes (no NUL counted; s is NUL-terminated all the same); s NULL:
 * none. The copy knows each length, so the encoders need not count them again. */
typedef struct otlp_text {
    const char *s;
    size_t len;
} otlp_text;

/* One upstream call. */
typedef struct otlp_call {
    otlp_text provider, provider_type, model; /* copies */
    const char *outcome, *ingress;            /* literals (record.h's names) */
    uint8_t span_id[8];
    uint64_t start_ns, end_ns; /* unix nanoseconds; end 0: it never ended (the request's end) */
    int status;                /* 0: no response */
    /* the formats differed: the request's translation (start 0: none) and the reply's, summed */
    uint64_t encode_start_ns, encode_ns, decode_ns;
} otlp_call;

/* Time in one phase's stages. */
typedef struct otlp_phase {
    const char *name;          /* a literal: "auth", "admit", "decode", "prompt", "routing", "cache" */
    uint64_t start_ns, end_ns; /* unix nanoseconds */
    size_t name_len;           /* 0: not known (strlen) */
} otlp_phase;

/* One request's spans, as recorded; a string's s may be NULL (none). */
typedef struct otlp_request {
    uint8_t trace_id[16], span_id[8], parent_span_id[8];
    bool has_parent;
    otlp_text operation; /* a literal: "chat", "text_completion", "embeddings" */
    otlp_text model, provider_type, upstream_model, route, provider, key_id, request_id;
    otlp_text error; /* the request's status message (a 5xx), at most OTLP_ERROR_MAX bytes */
    uint64_t start_ns, end_ns;
    int status;
    bool usage_seen;
    long long input_tokens, output_tokens;
    double cost_usd; /* negative: unknown */
    size_t attempts; /* upstream calls made */
    /* tracing.content: the bodies as the span carries them (already redacted and cut) */
    otlp_text prompt, completion;
    const otlp_phase *phases;
    size_t nphases;
    const otlp_call *calls;
    size_t ncalls;
    size_t bound; /* bytes either encoding of this request's spans can take at most */
} otlp_request;

#define OTLP_ERROR_MAX 200
#define OTLP_MODEL_IN_NAME 120 /* bytes of the model in a span's name */

/* r as one otlp_request allocated from a (freed with it). unix_offset_ns: the wall clock less
 * the monotonic one (r's times are monotonic). prompt and completion: tracing.content's texts,
 * or NULL. r must carry a trace (r->trace_id). */
otlp_request *otlp_request_copy(arena *a, const exchange_record *r, uint64_t unix_offset_ns,
                                const char *prompt, size_t prompt_len, const char *completion,
                                size_t completion_len);

/* One ExportTraceServiceRequest — a ResourceSpans whose resource has service.name, one
 * ScopeSpans of scope "aigw", and the spans of reqs[0..n) — written into out (appended, though
 * it may start a little past out's old end): returns where it starts inside out's data, and
 * *len its length. NULL (out as it was) when out's maximum cannot take it. */
const char *otlp_encode(otlp_encoding encoding, const char *service_name, const otlp_request *const *reqs,
                        size_t n, buf *out, size_t *len);

/* The Content-Type of an encoding. */
const char *otlp_content_type(otlp_encoding encoding);

#endif
