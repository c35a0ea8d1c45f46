/* provider.h — the providers module's face: requests out, replies back, in any wire format.
 *
 * The canonical form is OpenAI's chat format. A request arrives in its ingress format (OpenAI
 * chat completions, or Anthropic Messages on /v1/messages) and leaves in its provider's format
 * (wire.h). Two paths:
 *
 *   fast path   ingress format == provider format and no compatibility rule applies: the
 *               client's body is forwarded byte for byte, only `model` spliced when an alias
 *               renames it; the reply and its stream go back as they came.
 *   translated  the body is parsed (jansson), decoded to canonical, the provider's parameter
 *               rules applied (renames, visible drops), encoded for the provider; the reply is
 *               decoded to canonical and encoded for the client — for streams event by event
 *               (provider events → canonical chunks → client events), never buffered whole.
 *
 * Everything allocated for a request comes from its arena or is freed before returning. */
#ifndef AIGW_PROVIDERS_PROVIDER_H
#define AIGW_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "providers/wire.h"
#include "server/request.h"
#include "util/buf.h"

struct curl_slist;

/* Looks up a preset by the name written in a provider's `type:`; NULL when unknown. */
const provider_preset *provider_preset_find(const char *type);
/* Writes the known preset names, comma-separated, for error messages. */
void provider_preset_names(char *out, size_t len);

typedef struct provider_request {
    const char *url;
    const char *body;
    size_t body_len;
    struct curl_slist *headers;
} provider_request;

/* Why a request cannot be sent: an answer for the client in its own format. */
typedef struct provider_error {
    int status;
    const char *type, *code, *param; /* OpenAI-style type and code; param may be NULL */
    bool whole_request;              /* no target could take it (the body cannot be read): answer at once */
    char message[400];
} provider_error;

/* Builds the upstream request for req (endpoint, route, ingress, req->payload — the body to
 * send, the client's with any override_params merged — and the model's span in it known). Returns false with
 * *err filled when the request cannot be expressed for this provider (bad shape for translation, an endpoint
 * the format lacks). Sets req->xlate when replies must be translated and req->dropped_params when parameters
 * were dropped. Everything it allocates comes from the request's arena. */
bool provider_encode(request *req, size_t model_start, size_t model_end, provider_request *out,
                     provider_error *err);

/* A buffered (non-stream) upstream reply, status and body as received: writes the body to
 * send to the client into out and returns its Content-Type. On the fast path out is not
 * touched and NULL is returned (send the upstream's bytes). Upstream errors are re-shaped
 * into the ingress format with their status and message intact. The reply's usage is noted
 * in req->usage on both paths. */
const char *provider_translate_reply(request *req, int status, const char *body, size_t len, buf *out);

typedef enum stream_step {
    STREAM_MORE,   /* keep reading */
    STREAM_DONE,   /* the provider said the stream is complete; the client's end is in out */
    STREAM_FAILED, /* the provider sent an in-band error; *message says what */
} stream_step;

/* One whole upstream SSE event (raw bytes, blank line included): appends what the client
 * must get to out — the raw event on the fast path, translated events otherwise. Usage the
 * event reports is noted in req->usage; an OpenAI client's usage chunk gets the cost as an
 * extra field ("aigw":{"cost_usd":…}). */
stream_step provider_stream_event(request *req, const char *raw, size_t len, buf *out, const char **message);
/* The upstream transfer ended cleanly: returns true when the stream was complete (a format
 * without an end marker, like Gemini's, completes here and its end goes into out). */
bool provider_stream_finish(request *req, buf *out);
/* Appends the ingress format's in-band stream error (OpenAI `data: {"error":…}`, Anthropic
 * `event: error`), after which the response ends. */
void provider_stream_error(const request *req, buf *out, const char *message);

/* The request's cost in USD from the usage its provider reported and the catalog's prices;
 * negative when either is unknown. */
double provider_cost(const request *req);

/* The request's prompt tokens estimated from its text (about four bytes a token): the answer
 * to count_tokens for a provider that cannot count, and routing's context-window check. */
size_t provider_estimate_tokens(const request *req);

/* An error body in format's shape; type and code are OpenAI-style (code/param may be NULL). */
void provider_error_body(wire_format format, buf *out, int status, const char *type, const char *code,
                         const char *param, const char *message);

#endif
