/* reqlog.h — the request log's entry of one finished request, as a worker packs it from the
 * exchange_record (observe/record.h) into its batch for the store's thread (store/reqlog_batch.h
 * is the packing, store/request_log.h the rows and their queries), and what the store's thread
 * does to a kept body before writing it.
 *
 * The worker writes the entry once, straight into the batch's blob: the numbers, the strings
 * (names that are string literals — the attempt's role and outcome, the error class, the
 * cache's answer — too), the attempts packed, the trace id in hex, the error sentence
 * of an upstream's failure, the counts of retries and fallbacks. The store's thread then writes
 * the blob as it is: one row a batch. A body is packed as it came (bounded by body_max) and
 * redacted on the store's thread, so parsing JSON never costs a worker's loop. Pure functions:
 * no I/O, no shared state. */
#ifndef AIGW_OBSERVE_REQLOG_H
#define AIGW_OBSERVE_REQLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/record.h"
#include "store/reqlog_batch.h"
#include "util/buf.h"

/* Whether r is a request the log keeps: a call of the model API (/v1/… and what named a model
 * or reached a provider), not the admin API, /metrics, health checks or GET /v1/models. */
bool reqlog_wanted(const exchange_record *r);

/* r packed as w's next entry: start_unix_us is the request's start on the wall clock; body_max
 * > 0 packs the client's body when it is at most that long (else none is kept), unredacted (the
 * store's thread redacts it: reqlog_redact_body). The attempts are packed
 * (store/reqlog_batch.h: reqlog_attempts_add) through scratch (the worker's, reused); the
 * trace id as 32 hex digits; "provider P answered S (class)" as the error
 * when the request failed without one; retries and fallbacks counted from the attempts' roles.
 * False when w is full (write it, then pack again) or an entry would pass any bound. On the
 * worker. */
bool reqlog_pack(reqlog_batch_writer *w, const exchange_record *r, int64_t start_unix_us, size_t body_max,
                 buf *scratch);

/* What kind of failure r was, a short stable name — "client_closed", "auth", "rate_limited",
 * "not_found", "invalid_request", "timeout", "connect_error", "upstream_broken",
 * "upstream_error", "stream_error", "gateway_error" — or NULL when it succeeded. */
const char *reqlog_error_class(const exchange_record *r);

/* A JSON body with the value of every object member named (ASCII case-insensitively) in names
 * replaced by "[redacted]", at any depth, written compact; malloc'd. NULL when body is not
 * JSON (it is then not kept: a body that cannot be redacted is not stored). */
char *reqlog_redact_body(const char *body, size_t len, char *const *names, size_t nnames);

#endif
