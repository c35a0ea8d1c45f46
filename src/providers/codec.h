/* codec.h — inside the providers module only: the translators between each wire format and
 * the canonical one (OpenAI chat), and the per-request state they share.
 *
 * Each format file (openai.c, anthropic.c + anthropic_stream.c, gemini.c) defines its row of
 * the wire_codec table below: request to/from canonical, reply to/from canonical, stream
 * events to/from canonical chunks, usage, errors both ways, the provider's URL. translate.c
 * composes the rows: ingress → canonical → provider, and back, without knowing any format.
 * xlate.c holds what the rows share. Trees are jansson objects owned by the caller unless
 * said otherwise; strings that must outlive a call go to the attempt's arena. */
#ifndef AIGW_PROVIDERS_CODEC_H
#define AIGW_PROVIDERS_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "providers/provider.h"

/* Stream translation state of one attempt: the provider side's decoder and the client
 * side's encoder each keep theirs here. Lives in the request's arena. Usage is not kept here:
 * translate.c notes it in the codec_ctx's usage (OpenAI's meaning) from every provider reply or event
 * that carries it, before the decoders run, and both sides read it from there. */
typedef struct xlate {
    wire_format ingress, upstream;
    bool include_usage; /* the client asked for the usage chunk (OpenAI ingress) */
    bool json_via_tool; /* JSON output asked of a provider without it: a forced tool */
    const char *model;  /* model name for replies, until the upstream names one */
    int64_t created;    /* unix seconds, for OpenAI chunks */
    char id[64];        /* reply id, from the upstream when it gives one */
    codec_ctx *ctx;     /* the attempt it translates for */

    /* decoder: provider events → canonical chunks */
    bool decoder_started;
    const char *reply_failure; /* the provider's reply says the generation failed (why), arena */
    int tool_calls;            /* tool calls seen so far (canonical index of the next) */
    int *block_tool;           /* Anthropic block index → canonical tool index, -1: not a tool */
    int nblock_tool;           /* … slots in it (grown in the arena, see xlate__slot) */
    const char *finish_reason;
    const char *failure; /* an encoder could not go on (why, static): the stream fails in-band */
    void *ingress_state; /* the client format's own (Responses: responses.c), arena */

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
json_t *xlate__function_tool(codec_ctx *ctx, json_t *tool, const char *schema_key, bool schema_required);
/* A canonical tool call's arguments parsed as a JSON object (a new reference; an empty string
 * is {}); NULL when they are not an object. */
json_t *xlate__call_arguments(json_t *tool_call);
/* Records that a parameter was dropped for this provider (header + log). */
void xlate__drop(codec_ctx *ctx, const char *param);
/* A canonical chunk: {id, object, created, model, choices:[{index:0, delta, finish_reason}]}.
 * Takes ownership of delta (NULL: {}); finish_reason may be NULL. */
json_t *xlate__chunk(xlate *x, json_t *delta, const char *finish_reason);
/* A canonical usage-only chunk (choices: []) from the usage counted so far. */
json_t *xlate__usage_chunk(xlate *x);
/* The canonical usage object from x->ctx->usage. */
json_t *xlate__usage(const xlate *x);

struct wire_codec;
typedef struct wire_codec wire_codec;
/* Notes the usage a parsed reply or event of codec's format reports (its usage member, when an
 * object) in ctx->usage, in OpenAI's meaning (translate.c). */
void xlate__note_usage(codec_ctx *ctx, const wire_codec *codec, json_t *message);
/* The same from a reply's bytes, unparsed (the fast path's scan). */
void xlate__scan_usage(codec_ctx *ctx, const wire_codec *codec, const char *body, size_t len);

/* Adds the request's cost so far to a usage chunk as "aigw":{"cost_usd":…} (known prices only). */
void provider_usage_chunk_cost(const codec_ctx *ctx, json_t *chunk);

/* Receives each canonical chunk a decoder produces (borrowed). */
typedef void (*chunk_sink)(xlate *x, json_t *chunk, buf *out);

/* A token count by path ("a.b") from where a usage object lives: a parsed tree, or the raw
 * bytes of the fast path's reply (see translate.c). False, and *out untouched, when absent. */
typedef bool (*count_getter)(const void *source, const char *path, long *out);

/* Appends j as compact JSON (our serializer: json_dumps costs several times more, see xlate.c). */
void xlate__append_json(buf *out, json_t *j);
/* Appends v in decimal (no printf). */
void xlate__append_integer(buf *out, long long v);
/* j as compact JSON in the arena, NUL-terminated; its length in *len. */
char *xlate__arena_json(codec_ctx *ctx, json_t *j, size_t *len);

/* Arena copy of a, b and c (c may be NULL) joined. */
char *xlate__concat(codec_ctx *ctx, const char *a, const char *b, const char *c);

/* ==== the wire formats, one row each ========================================================
 *
 * One wire_codec per wire format (curl's protocol handlers are the model): what translate.c
 * needs to take a request from the client's format to the provider's and the reply or stream
 * back. Each row is defined in its format's file; wire_codecs[] (translate.c) indexes them by
 * wire_format. A new format is its file, its row, and its line in that table.
 *
 * Members used on the client's side (its request in, its reply, stream and errors out) are
 * NULL for a format no endpoint takes (Gemini: no request reaches aigw in it). Conversions to
 * and from canonical are NULL for the canonical format itself (OpenAI): the tree is used as
 * it is. Trees are borrowed unless said; returned trees are new references. */
struct wire_codec {
    const char *name;     /* in messages: "Anthropic Messages" */
    unsigned endpoints;   /* the endpoints a provider of this format serves: WIRE_ENDPOINT bits */
    bool url_names_model; /* the model is part of the URL path (Gemini's models/NAME:…) */
    /* a client header that names features of its own request, forwarded when client and
     * provider speak this format (Anthropic's anthropic-beta); NULL: none */
    const char *own_header;

    /* ---- requests ---- */
    /* The client's body (an object) as a canonical request; NULL with *err filled when it
     * cannot be. Parameters canonical cannot hold are dropped with xlate__drop. x is the
     * attempt's translation state, where the format may keep what its replies need; NULL when
     * only the canonical form is wanted (no target chosen). */
    json_t *(*request_to_canonical)(codec_ctx *ctx, xlate *x, json_t *in, provider_error *err);
    /* The provider's body from a canonical request (canon may be changed; the provider's
     * parameter rules have been applied) for ctx->route's upstream model; sets what x must
     * know to read the reply (json_via_tool). NULL with *err filled when it cannot be said. */
    json_t *(*request_from_canonical)(codec_ctx *ctx, xlate *x, json_t *canon, provider_error *err);
    /* The provider's URL for ctx->endpoint, ctx->stream and ctx->route (arena or config). */
    const char *(*url)(codec_ctx *ctx);

    /* ---- replies (buffered) ---- */
    /* NULL when a provider's reply has the shape the format documents, else what is wrong
     * (static text); the reply is then a 502, never an empty success. */
    const char *(*reply_shape)(json_t *reply);
    json_t *(*reply_to_canonical)(xlate *x, json_t *reply);
    /* The client's reply from the canonical one, written into out. */
    void (*reply_from_canonical)(xlate *x, json_t *canon, buf *out);

    /* ---- usage ---- */
    const char *usage_key;                /* the member of a reply or event that holds the usage */
    json_t *(*usage_in)(json_t *message); /* the usage object of a parsed reply or event, or NULL */
    /* The counts source holds (in this format's meaning) into c, in OpenAI's: only the counts
     * present change (Anthropic streams report input and output in different events). */
    void (*usage_note)(usage_counts *c, count_getter get, const void *source);

    /* ---- streams, provider side: its events → canonical chunks ---- */
    const char *end_data; /* the data of the event that ends a stream when it is not JSON ([DONE]) */
    /* One event, parsed once by the caller (a JSON object), into sink calls. */
    stream_step (*stream_decode)(xlate *x, json_t *event, chunk_sink sink, buf *out, const char **message);
    /* The transfer ended cleanly: true when that completes the stream (a format without an
     * end marker, after the last chunks went to sink); NULL: only the end marker completes. */
    bool (*stream_decode_finish)(xlate *x, chunk_sink sink, buf *out);
    /* The raw event is the stream's end marker (the fast path, which parses nothing). */
    bool (*stream_is_end)(const char *raw, size_t len);

    /* ---- streams, client side: canonical chunks → its events ---- */
    bool stream_reports_usage; /* the format's streams always report usage: ask the provider for it */
    void (*stream_encode)(xlate *x, json_t *chunk, buf *out);
    void (*stream_encode_finish)(xlate *x, buf *out);
    /* The event that carries only the usage, where the cost goes as "aigw":{"cost_usd":…};
     * NULL: the format has none. */
    bool (*stream_is_usage_chunk)(json_t *event);
    /* The in-band error that ends a stream the client already receives (x: its translation
     * state, NULL on the fast path). */
    void (*stream_error)(xlate *x, buf *out, const char *message);

    /* ---- errors ---- */
    /* An error body; type and code are OpenAI-style (code and param may be NULL). */
    void (*error_body)(buf *out, int status, const char *type, const char *code, const char *param,
                       const char *message);
    /* Message and type of a provider's error body; false when it has not this shape. */
    bool (*error_parse)(json_t *body, const char **type, const char **message);
    /* The OpenAI-style type for a provider's error status, when the format's own types are
     * not OpenAI's (Gemini's are RPC statuses); NULL: the parsed type is kept. */
    const char *(*error_type)(int status);
};

#define WIRE_ENDPOINT(e) (1u << (e))

extern const wire_codec openai__codec, anthropic__codec, gemini__codec, responses__codec;
/* The rows by wire_format. */
extern const wire_codec *const wire_codecs[WIRE__COUNT];

/* ---- OpenAI: its error shape, which the Responses API shares ---- */
void openai__error_body(buf *out, int status, const char *type, const char *code, const char *param,
                        const char *message);
bool openai__error_parse(json_t *body, const char **type, const char **message);

/* ---- Responses: shared by responses.c (requests, replies) and responses_stream.c ---- */
void responses__stream_encode(xlate *x, json_t *chunk, buf *out);
void responses__stream_finish(xlate *x, buf *out);
void responses__stream_error(xlate *x, buf *out, const char *message);

/* ---- Anthropic: shared by anthropic.c (requests, replies, errors) and anthropic_stream.c ---- */
#define ANTHROPIC_JSON_TOOL "json_output" /* the forced tool asked for JSON output */
stream_step anthropic__stream_decode(xlate *x, json_t *event, chunk_sink sink, buf *out,
                                     const char **message);
void anthropic__stream_encode(xlate *x, json_t *chunk, buf *out);
void anthropic__stream_finish(xlate *x, buf *out);
/* Stop reason ↔ finish reason. */
const char *anthropic__finish_from_stop(const char *stop);
const char *anthropic__stop_from_finish(const char *finish);
/* Anthropic's input_tokens leave out cache reads and writes (OpenAI's prompt counts them). */
long anthropic__input(const usage_counts *u);

#endif
