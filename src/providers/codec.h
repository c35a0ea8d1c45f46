/* codec.h — inside the providers module only: the translators between each wire format and
 * the canonical one (OpenAI chat), and the per-request state they share.
 *
 * Each non-canonical format file (anthropic.c, gemini.c) provides both directions, because a
 * format can be the client's (ingress) and the provider's: request to/from canonical, reply
 * to/from canonical, stream events to/from canonical chunks, errors both ways. translate.c
 * composes them: ingress → canonical → provider, and back. Trees are jansson objects owned
 * by the caller unless said otherwise; strings that must outlive a call go to the arena. */
#ifndef AIGW_PROVIDERS_CODEC_H
#define AIGW_PROVIDERS_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "providers/provider.h"

/* Stream translation state of one request: the provider side's decoder and the client
 * side's encoder each keep theirs here. Lives in the request's arena. Usage is not kept here:
 * translate.c notes it in req->usage (OpenAI's meaning) from every provider reply or event
 * that carries it, before the decoders run, and both sides read it from there. */
typedef struct xlate {
    wire_format ingress, upstream;
    bool include_usage; /* the client asked for the usage chunk (OpenAI ingress) */
    bool json_via_tool; /* JSON output asked of a provider without it: a forced tool */
    const char *model;  /* model name for replies, until the upstream names one */
    int64_t created;    /* unix seconds, for OpenAI chunks */
    char id[64];        /* reply id, from the upstream when it gives one */
    request *req;

    /* decoder: provider events → canonical chunks */
    bool decoder_started;
    const char *reply_failure; /* the provider's reply says the generation failed (why), arena */
    int tool_calls;            /* tool calls seen so far (canonical index of the next) */
    int *block_tool;           /* Anthropic block index → canonical tool index, -1: not a tool */
    int nblock_tool;           /* … slots in it (grown in the arena, see xlate__slot) */
    const char *finish_reason;
    const char *failure; /* an encoder could not go on (why, static): the stream fails in-band */

    /* encoder: canonical chunks → client events */
    bool started;
    int open_block; /* Anthropic: index of the open content block, -1 none */
    int open_kind;  /* 0 text, 1 tool_use, 2 thinking */
    int next_block;
    int *tool_block; /* canonical tool index → Anthropic block index, -1 none */
    int ntool_block;
    const char *stop_reason; /* Anthropic stop_reason to send */
    bool encoder_done;
} xlate;

/* Tool calls one translated stream may carry; past it the stream fails in-band (never a
 * silent drop). Anthropic content blocks get a few more (thinking, text). */
#define XLATE_TOOL_CALLS_MAX 1024
#define XLATE_BLOCKS_MAX (XLATE_TOOL_CALLS_MAX + 16)

/* The slot for index in an index map that grows in the request's arena (new slots are -1):
 * NULL when index is negative or not below max. */
int *xlate__slot(xlate *x, int **map, int *n, long long index, int max);
/* The value at index of such a map, -1 where none was set. */
int xlate__lookup(const int *map, int n, long long index);

/* Sets the reply id from the provider's, keeping only characters ids are made of (an id cut
 * inside a UTF-8 sequence would make every later chunk invalid). */
void xlate__set_id(xlate *x, const char *id);
/* Appends items to the last turn of turns when it has the same role (both Anthropic and
 * Gemini merge consecutive turns, and tool results must sit in the turn right after the calls),
 * else a new turn {role, items_key: items}. Takes ownership of items. */
void xlate__push_turn(json_t *turns, const char *role, const char *items_key, json_t *items);
/* A canonical function tool as {name, description, <schema_key>: its parameters}, the shape
 * both Anthropic's tools and Gemini's functionDeclarations take; a tool without parameters
 * gets an empty object schema when schema_required. NULL (and the drop recorded) for a tool
 * that is not a function. */
json_t *xlate__function_tool(request *req, json_t *tool, const char *schema_key, bool schema_required);
/* A canonical tool call's arguments parsed as a JSON object (a new reference; an empty string
 * is {}); NULL when they are not an object. */
json_t *xlate__call_arguments(json_t *tool_call);
/* Records that a parameter was dropped for this provider (header + log). */
void xlate__drop(request *req, const char *param);
/* A canonical chunk: {id, object, created, model, choices:[{index:0, delta, finish_reason}]}.
 * Takes ownership of delta (NULL: {}); finish_reason may be NULL. */
json_t *xlate__chunk(xlate *x, json_t *delta, const char *finish_reason);
/* A canonical usage-only chunk (choices: []) from the usage counted so far. */
json_t *xlate__usage_chunk(xlate *x);
/* The canonical usage object from x->req->usage. */
json_t *xlate__usage(const xlate *x);

/* Adds the request's cost so far to a usage chunk as "aigw":{"cost_usd":…} (known prices only). */
void provider_usage_chunk_cost(const request *req, json_t *chunk);

/* Receives each canonical chunk a decoder produces (borrowed). */
typedef void (*chunk_sink)(xlate *x, json_t *chunk, buf *out);

/* ---- replies of the wrong shape ---- */
/* Each returns NULL when a provider's reply has the shape its format documents, else what is
 * wrong (static text); the reply is then a 502, never an empty success. */
const char *openai__reply_shape(json_t *reply);
const char *anthropic__reply_shape(json_t *reply);
const char *gemini__reply_shape(json_t *reply);

/* ---- OpenAI (canonical) ---- */
/* Stream decoders: one provider event, parsed once by the caller (a JSON object, borrowed),
 * into sink calls. OpenAI's "[DONE]" is the caller's to see (it is not JSON). */
stream_step openai__stream_decode(xlate *x, json_t *event, chunk_sink sink, buf *out, const char **message);
void openai__stream_encode(xlate *x, json_t *chunk, buf *out);
void openai__stream_finish(xlate *x, buf *out);
void openai__error_body(buf *out, const char *type, const char *code, const char *param, const char *message);
/* Reads message and type from an OpenAI-shaped error body. */
bool openai__error_parse(json_t *body, const char **type, const char **message);

/* ---- Anthropic Messages ---- */
json_t *anthropic__request_to_canonical(request *req, json_t *in, provider_error *err);
json_t *anthropic__request_from_canonical(request *req, xlate *x, json_t *canon, const char *upstream_model,
                                          provider_error *err);
json_t *anthropic__reply_to_canonical(xlate *x, json_t *reply);
json_t *anthropic__reply_from_canonical(xlate *x, json_t *reply);
stream_step anthropic__stream_decode(xlate *x, json_t *event, chunk_sink sink, buf *out,
                                     const char **message);
void anthropic__stream_encode(xlate *x, json_t *chunk, buf *out);
void anthropic__stream_finish(xlate *x, buf *out);
void anthropic__error_body(buf *out, int status, const char *message);
bool anthropic__error_parse(json_t *body, const char **type, const char **message);

/* ---- Gemini generateContent ---- */
json_t *gemini__request_from_canonical(request *req, xlate *x, json_t *canon, provider_error *err);
json_t *gemini__reply_to_canonical(xlate *x, json_t *reply);
stream_step gemini__stream_decode(xlate *x, json_t *event, chunk_sink sink, buf *out, const char **message);
bool gemini__stream_finish(xlate *x, chunk_sink sink, buf *out);
bool gemini__error_parse(json_t *body, const char **type, const char **message);

#endif
