/* reqlog.h — the request log's record of one finished request: what a worker copies out of the
 * exchange_record (observe/record.h) to hand to the store's thread, what that thread makes of
 * it — the row (store/request_log.h has the row and its queries) — and what it does to a kept
 * body before writing it.
 *
 * The work is split so that the worker only copies: a record is one allocation in the batch's
 * arena (the numbers, the strings, the attempts as a small array; names that are string
 * literals — the attempt's role and outcome, the error class, the cache's answer — kept as
 * pointers), no JSON, no formatting, no malloc. The store's thread, which writes the batch
 * anyway, turns each record into its row (reqlog_record_finish): the attempts as JSON, the
 * trace id in hex, the error sentence of an upstream's failure, the counts of retries and
 * fallbacks. A body is copied as it came (bounded by body_max) and redacted on the store's
 * thread, so parsing JSON never costs a worker's loop. Pure functions: no I/O, no shared state. */
#ifndef AIGW_OBSERVE_REQLOG_H
#define AIGW_OBSERVE_REQLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/record.h"
#include "store/request_log.h"
#include "util/arena.h"

/* Whether r is a request the log keeps: a call of the model API (/v1/… and what named a model
 * or reached a provider), not the admin API, /metrics, health checks or GET /v1/models. */
bool reqlog_wanted(const exchange_record *r);

/* One attempt as the record keeps it. */
typedef struct reqlog_attempt {
    const char *provider, *model, *step, *note; /* copies; step and note may be NULL */
    const char *role, *outcome;                 /* string literals (record.h's names) */
    int status;                                 /* 0: none */
    double ms, wait_ms;
} reqlog_attempt;

/* One request as the worker copies it. row's strings are copies (or literals); its trace_id,
 * attempts, retries, fallbacks and — for an upstream's failure that carried no message of
 * aigw's — error are filled by reqlog_record_finish. */
typedef struct reqlog_record {
    reqlog_entry row;
    bool has_trace;
    uint8_t trace_id[16];
    const reqlog_attempt *attempts;
    size_t nattempts;
} reqlog_record;

/* r copied into one allocation from a (the batch's arena: freed with it): start_unix_us is the
 * request's start on the wall clock; body_max > 0 copies the client's body when it is at most
 * that long (else none is kept). On the worker. */
reqlog_record *reqlog_record_copy(arena *a, const exchange_record *r, int64_t start_unix_us, size_t body_max);

/* rec's row completed, what it writes allocated from a (the same batch's arena, now on the
 * store's thread): the attempts as a JSON array
 * [{provider, model, step?, role, outcome, status, ms, wait_ms, note?}], the trace id as 32 hex
 * digits, "provider P answered S (class)" as the error when the request failed without one, and
 * the retries and fallbacks counted from the attempts' roles. */
void reqlog_record_finish(reqlog_record *rec, arena *a);

/* What kind of failure r was, a short stable name — "client_closed", "auth", "rate_limited",
 * "not_found", "invalid_request", "timeout", "connect_error", "upstream_broken",
 * "upstream_error", "stream_error", "gateway_error" — or NULL when it succeeded. */
const char *reqlog_error_class(const exchange_record *r);

/* A JSON body with the value of every object member named (ASCII case-insensitively) in names
 * replaced by "[redacted]", at any depth, written compact; malloc'd. NULL when body is not
 * JSON (it is then not kept: a body that cannot be redacted is not stored). */
char *reqlog_redact_body(const char *body, size_t len, char *const *names, size_t nnames);

#endif
