/* trace.h — OpenTelemetry traces: the W3C trace context a request brings and passes on, and
 * the exporter that sends finished spans as OTLP/HTTP.
 *
 * Trace context (https://www.w3.org/TR/trace-context/): `traceparent` is
 * "00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>", flag 01 meaning sampled;
 * `tracestate` is carried on as it came (at most TRACE_STATE_MAX bytes, else dropped).
 *
 * OTLP/HTTP with protobuf bodies by default, JSON when `tracing.protocol: http/json` asks
 * (observe/otlp.h writes both). Each worker keeps its sampled requests' spans, recorded but not
 * yet written (otlp_request: a copy, nothing formatted), in a batch of its own — an arena and
 * an array, no lock — and hands the batch to one exporter thread through a bounded queue when it
 * is full or a timer says so (a lock a batch, not a malloc and a lock a request); the thread
 * encodes and POSTs them (a POST every `batch_delay`, or sooner when many wait), retries a
 * failed POST (connection error, 429, 5xx) with backoff up to TRACE_RETRIES times, and drops
 * what still fails — counted, and said on stderr once per outage, never blocking a worker. A
 * full queue drops the newest batch, its requests' spans counted the same way. Writing the
 * spans on the exporter's thread rather than the worker's took the worker's share of a traced
 * request from about 11,000 instructions to about 1,000 (callgrind, bench/RESULTS.md). */
#ifndef AIGW_OBSERVE_TRACE_H
#define AIGW_OBSERVE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/otlp.h"
#include "util/arena.h"

#define TRACE_STATE_MAX 512
#define TRACE_RETRIES 3

/* Parses a traceparent value; false when it is not a valid version-00 one (then a new trace
 * starts). An all-zero trace or span id is invalid, as the spec says. */
bool trace_parse_parent(const char *value, size_t len, uint8_t trace_id[16], uint8_t span_id[8],
                        bool *sampled);
/* "00-…-…-0x" and a NUL into out (56 bytes). */
void trace_format_parent(char out[56], const uint8_t trace_id[16], const uint8_t span_id[8], bool sampled);
/* Lower-case hex of n bytes and a NUL into out (2n + 1 bytes). */
void trace_hex(char *out, const uint8_t *bytes, size_t n);

typedef struct trace_exporter trace_exporter;

typedef struct trace_exporter_settings {
    const char *endpoint; /* the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces */
    char *const *headers; /* "Name: value" lines sent with each POST */
    size_t nheaders;
    const char *service_name; /* the resource's service.name */
    otlp_encoding encoding;   /* the bodies' encoding (and Content-Type) */
    size_t queue_max;         /* requests' span sets waiting at most (in batches) */
    uint32_t batch_delay_ms;  /* how long a span set may wait for others */
    uint32_t timeout_ms;      /* one POST */
} trace_exporter_settings;

/* Starts the thread. NULL with a message in err when it cannot (libcurl refuses). */
trace_exporter *trace_exporter_start(const trace_exporter_settings *s, char *err, size_t errlen);
/* Sends what waits (one attempt each), stops the thread, frees. NULL is accepted. */
void trace_exporter_stop(trace_exporter *t);
/* A worker's requests' spans: each otlp_request_copy'd from mem into sets[0..n). */
typedef struct trace_batch {
    struct trace_batch *next; /* the exporter's queue */
    arena mem;
    otlp_request **sets;
    size_t n, cap;
} trace_batch;

/* An empty batch with room for cap requests' spans; trace_batch_free frees it and them. */
trace_batch *trace_batch_new(size_t cap);
void trace_batch_free(trace_batch *b);

/* Hands over a batch; the exporter frees it. False (freed, its sets counted as dropped) when
 * the queue cannot take all of them. Any thread. */
bool trace_exporter_submit(trace_exporter *t, trace_batch *b);
/* Span sets dropped (full queue, or a POST that kept failing) and exported so far. */
uint64_t trace_exporter_dropped(const trace_exporter *t);
uint64_t trace_exporter_exported(const trace_exporter *t);

#endif
