/* reqlog.h — the request log's record of one finished request: what a worker copies out of the
 * exchange_record (observe/record.h) to hand to the store's thread, and what that thread does to
 * a kept body before writing it (store/request_log.h has the row and its queries).
 *
 * An entry is one allocation — the reqlog_entry and every string it points at, its attempts
 * already written as JSON — so queuing a request costs one malloc on the worker and one free on
 * the store's thread, and the exchange's arena can be reset at once. A body is copied as it
 * came (bounded by body_max) and redacted on the store's thread, so parsing JSON never costs a
 * worker's loop. Pure functions: no I/O, no shared state. */
#ifndef AIGW_OBSERVE_REQLOG_H
#define AIGW_OBSERVE_REQLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/record.h"
#include "store/request_log.h"
#include "util/buf.h"

/* Whether r is a request the log keeps: a call of the model API (/v1/… and what named a model
 * or reached a provider), not the admin API, /metrics, health checks or GET /v1/models. */
bool reqlog_wanted(const exchange_record *r);

/* r as one malloc'd entry (free() frees it all): start_unix_us is the request's start on the
 * wall clock. body_max > 0 copies the client's body when it is at most that long (else none is
 * kept). scratch is the caller's buffer for the attempts' JSON, reused between calls. */
reqlog_entry *reqlog_entry_new(const exchange_record *r, int64_t start_unix_us, size_t body_max,
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
