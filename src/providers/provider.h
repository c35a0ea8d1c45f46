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
 * Provider functions see one attempt through its codec_ctx, never the server's request: the
 * caller fills what they read and gets back what they write there. Everything allocated for
 * an attempt comes from the context's arena or is freed before returning. */
#ifndef AIGW_PROVIDERS_PROVIDER_H
#define AIGW_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "providers/wire.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/headers.h"

struct curl_slist;
struct xlate;

/* One attempt as the provider functions see it: its inputs, filled by the caller before
 * provider_encode, and its outputs, written by the provider functions for the caller to read.
 * The caller keeps it for the attempt's whole reply or stream (a hedged request keeps one per
 * attempt in flight) and owns every pointer in it; what the provider functions store here
 * lives in the arena. Nothing in it belongs to the server: the module stays below it. */
typedef struct codec_ctx {
    /* inputs */
    arena *arena;                               /* the request's: every allocation of the attempt */
    const char *request_id;                     /* NUL-terminated: reply ids, the upstream's x-request-id */
    wire_format ingress;                        /* the client's format: replies, errors, stream events */
    int endpoint;                               /* endpoint_kind (config.h) */
    bool stream;                                /* the client asked for a stream */
    const model_route *route;                   /* the attempt's provider and upstream model */
    const char *body;                           /* the client's body as received (token estimates) */
    size_t body_len;                            /* … its length */
    const char *payload;                        /* the body to send: the client's, override_params merged */
    size_t payload_len, model_start, model_end; /* … its length and the model's span in it */
    const http_header *headers;                 /* the client's request headers (its key, betas) */
    size_t nheaders;                            /* … how many */
    /* who owns what the attempt keeps (the Responses API's store): the gateway key's id, "" when
     * there are no keys, NULL for the master key (it reaches every tenant's) */
    const char *tenant;
    bool gateway_auth; /* the client's key is a gateway key: never forwarded to a keyless provider */
    /* the provider's key for this attempt from a virtual key (the store's snapshot the request
     * holds), sent in the provider's key style; NULL: the provider's own api_key, if any */
    const char *provider_key;
    size_t provider_key_len;

    /* outputs */
    struct xlate *xlate;        /* reply translation state (formats differ), arena; NULL: fast path */
    const char *dropped_params; /* comma-separated parameters the provider could not take, arena */
    usage_counts usage;         /* as the provider reported it, normalized to OpenAI's meaning */
    int reply_status;           /* set by provider_translate_reply: the status to answer with */
} codec_ctx;

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

/* Builds the upstream request for the attempt c (its inputs filled: endpoint, route, ingress,
 * payload — the body to send, the client's with any override_params merged — and the model's
 * span in it). Returns false with *err filled when the request cannot be expressed for this
 * provider (bad shape for translation, an endpoint the format lacks). Sets c->xlate when
 * replies must be translated and c->dropped_params when parameters were dropped. Everything
 * it allocates comes from c->arena. */
bool provider_encode(codec_ctx *c, provider_request *out, provider_error *err);

/* A buffered (non-stream) upstream reply, status and body as received: writes the body to
 * send to the client into out and returns its Content-Type. On the fast path out is not
 * touched and NULL is returned (send the upstream's bytes). Upstream errors are re-shaped
 * into the ingress format with their status and message intact. c->reply_status is the
 * status to answer with: status, or 502 when the reply cannot be given. The reply's usage is
 * noted in c->usage on both paths. */
const char *provider_translate_reply(codec_ctx *c, int status, const char *body, size_t len, buf *out);

typedef enum stream_step {
    STREAM_MORE,   /* keep reading */
    STREAM_DONE,   /* the provider said the stream is complete; the client's end is in out */
    STREAM_FAILED, /* the provider sent an in-band error; *message says what */
} stream_step;

/* One whole upstream SSE event (raw bytes, blank line included): appends what the client
 * must get to out — the raw event on the fast path, translated events otherwise. Usage the
 * event reports is noted in c->usage; an OpenAI client's usage chunk gets the cost as an
 * extra field ("aigw":{"cost_usd":…}). */
stream_step provider_stream_event(codec_ctx *c, const char *raw, size_t len, buf *out, const char **message);
/* The upstream transfer ended cleanly: returns true when the stream was complete (a format
 * without an end marker, like Gemini's, completes here and its end goes into out). */
bool provider_stream_finish(codec_ctx *c, buf *out);
/* Appends the ingress format's in-band stream error (OpenAI `data: {"error":…}`, Anthropic
 * `event: error`), after which the response ends. */
void provider_stream_error(const codec_ctx *c, buf *out, const char *message);

/* The attempt's cost in USD from the usage its provider reported and the catalog's prices;
 * negative when either is unknown (or no route was chosen). */
double provider_cost(const codec_ctx *c);

/* The request's prompt tokens estimated from the text of c->body (about four bytes a token):
 * the answer to count_tokens for a provider that cannot count, and routing's context-window
 * check. Reads only c->body and c->body_len. */
size_t provider_estimate_tokens(const codec_ctx *c);

/* The client's request (c->body in c->ingress's format) in canonical form, before any target
 * is chosen (c->route NULL): an OpenAI body parsed, an Anthropic one translated, its
 * parameters kept where a target would decide (a thinking budget becomes reasoning_effort).
 * A new reference; NULL with *err filled when the body cannot be read so. */
struct json_t *provider_request_canonical(codec_ctx *c, provider_error *err);

/* The other way: a canonical request written in c->ingress's format as a client of that format
 * would send it, before any target is chosen (c->route NULL) — for a stage that builds a
 * client's request itself (PROMPT puts a rendered template, OpenAI-shaped, into an Anthropic
 * client's request). The translation a provider of that format gets, less what only a target
 * decides: the model stays as named, max_tokens is written only when given, JSON output becomes
 * the format's own structured output. What the format has no place for is left out and recorded
 * in c as for an attempt. canon may be changed. A new reference (for OpenAI's format canon
 * itself); NULL with *err filled when canon cannot be said in that format. */
struct json_t *provider_request_in_ingress(codec_ctx *c, struct json_t *canon, provider_error *err);

/* ---- the response cache's conversions (replay.c) ---- */

/* Reads a reply as the client gets it (c->ingress's format: OpenAI chat or Anthropic Messages;
 * a plain body, or a stream's events) back into one canonical reply. c gives the arena, the
 * request id and the answering route (its public name); the collector lives in the arena and
 * holds buffers until provider_collect_free. At most max_bytes of text are gathered. */
typedef struct reply_collector reply_collector;
reply_collector *provider_collect_begin(const codec_ctx *c, bool stream, size_t max_bytes);
void provider_collect(reply_collector *rc, const char *data, size_t len);
/* The canonical reply (an OpenAI chat completion: one choice, its message with content,
 * reasoning_content and whole tool calls, finish_reason, usage; a new reference) when what was
 * collected is complete and successful: the stream's end marker seen and no in-band error, one
 * choice, finish stop, length or tool_calls. Else NULL with the reason in *why. */
struct json_t *provider_collect_end(reply_collector *rc, const char **why);
void provider_collect_free(reply_collector *rc);
/* A canonical reply (provider_collect_end's) in the shapes a replay answers with, made once
 * when it is stored: the body in c->ingress's format, and its stream's events (OpenAI chunks,
 * the usage chunk; Anthropic's message_start … message_stop) made by the format's own stream
 * encoder. An OpenAI stream's usage chunk, which goes only to a client that asks for it
 * (stream_options.include_usage), is at stream[usage_at, usage_at + usage_len); usage_len 0:
 * the format always sends it. c->usage gets the reply's counts; c->route must be NULL (a replay
 * costs nothing: no chunk carries a cost). The buffers come initialised (their bounds); false
 * when canon is not a reply or a bound was passed. */
typedef struct provider_replay_shapes {
    buf body, stream;
    size_t usage_at, usage_len;
} provider_replay_shapes;
bool provider_replay_render(codec_ctx *c, struct json_t *canon, provider_replay_shapes *out);

/* Whether p is sent OpenAI Responses API requests as they are (its `responses:`, or by default
 * OpenAI's own API at its documented URL); else they are translated to its chat format. */
bool provider_serves_responses(const provider_config *p);
/* Whether provider p's format serves count_tokens; when not, the answer is an estimate made
 * here (provider_estimate_tokens). */
bool provider_counts_tokens(const provider_config *p);
/* Whether p's URL names the model (Gemini's path, an Azure deployment): only a plain name
 * ([A-Za-z0-9._-]) can go there. */
bool provider_url_names_model(const provider_config *p);

/* An error body in format's shape; type and code are OpenAI-style (code/param may be NULL). */
void provider_error_body(wire_format format, buf *out, int status, const char *type, const char *code,
                         const char *param, const char *message);

#endif
