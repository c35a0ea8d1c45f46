/* attempt.h — one upstream call made for an exchange (types in exchange.h).
 *
 * An attempt goes to one target: the client's body with the target's override_params merged,
 * encoded for its provider (providers/: bytes forwarded, or translated), sent through the
 * worker's upstream client, and its reply handed to the sink that made it — head (after
 * aigw's checks: no redirects, no encoded bodies, visible header values), stream events
 * translated for the client, or the buffered reply; then the end. Attempts know nothing of
 * retries, fallbacks or hedges: the EXECUTE stage's walk (execute.c) is built on them, and so
 * is any stage that asks several targets at once. */
#ifndef AIGW_PIPELINE_ATTEMPT_H
#define AIGW_PIPELINE_ATTEMPT_H

#include <stdbool.h>

#include "pipeline/exchange.h"

/* A new attempt at target for x, not yet sent: its route resolved, nothing encoded. */
attempt *attempt_new(exchange *x, const route_target *target, const attempt_sink *sink, void *sink_data);

/* An attempt that sends a request of the stage's own on the client's behalf (the cache's
 * embedding of the last user turn), not the client's body: body is OpenAI-format JSON whose
 * `model` names model (the public name the target serves), sent to endpoint, never streamed,
 * with the client's headers (its provider key reaches a keyless provider as for its own
 * request). body must live until the attempt ends (the arena). Marked internal: it is not the
 * request's answer, and the record does not take its provider for the request's. */
attempt *attempt_new_request(exchange *x, const route_target *target, const attempt_sink *sink,
                             void *sink_data, int endpoint, const char *model, const char *body,
                             size_t body_len);

typedef enum attempt_prep {
    PREP_READY,        /* encoded: attempt_send() may go */
    PREP_LOCAL_ANSWER, /* count_tokens at a provider that cannot count: answer with an estimate */
    PREP_REFUSED,      /* this provider cannot take it (a->local_error, or a->message) */
    PREP_UNREADABLE,   /* no provider could: the body cannot be translated (a->local_error) */
} attempt_prep;

/* Merges override_params and encodes the request for the attempt's provider. */
attempt_prep attempt_prepare(attempt *a);
/* Sends a prepared attempt. false: it could not start (a->outcome ATTEMPT_FAILED; on_end is
 * not called). */
bool attempt_send(attempt *a);
/* Ends the transfer; no sink callback follows (outcome ATTEMPT_STOPPED). */
void attempt_cancel(attempt *a);
/* Lifts a pause the sink asked for. */
void attempt_resume(attempt *a);
/* Every attempt of the exchange is cancelled and its buffers given up (the exchange ends); the
 * attempts themselves stay readable until the request is reset. */
void attempt_release_all(exchange *x);

/* The stream's in-band error in the client's format, appended to a->events. */
void attempt_stream_error(attempt *a, const char *message);
/* The cost of the attempt's reply in USD, negative when unknown. */
double attempt_cost(const attempt *a);

#endif
