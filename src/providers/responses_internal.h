/* responses_internal.h — inside the providers module only: what responses.c (requests,
 * replies) and responses_stream.c (stream events) share about one translated Responses
 * request — the id aigw gave it, what its Response object repeats from the request, the
 * conversation to keep, and its output items as they grow. */
#ifndef AIGW_PROVIDERS_RESPONSES_INTERNAL_H
#define AIGW_PROVIDERS_RESPONSES_INTERNAL_H

#include "providers/codec.h"
#include "providers/response_store.h"

/* The text a translated Response may hold (message text, reasoning and arguments together):
 * a Response repeats its whole output in its last event, so it is kept until then; past this
 * the stream fails in-band. */
#define RESPONSES_OUTPUT_MAX (16u << 20)

typedef struct text_acc {
    char *p; /* NUL-terminated, arena */
    size_t len, cap;
} text_acc;

enum { ITEM_REASONING, ITEM_MESSAGE, ITEM_CALL };

/* One output item: a reasoning summary, the message, or a function call. */
typedef struct rsp_item {
    int kind;
    bool done;
    char id[96];
    const char *call_id, *name; /* function calls, arena */
    text_acc text;              /* summary, text or arguments */
} rsp_item;

typedef struct responses_state {
    char id[RESPONSE_ID_MAX + 1]; /* resp_… */
    const char *echo;             /* the request members the Response repeats: a JSON object, arena */
    size_t echo_len;
    const char *history; /* the conversation before this turn (canonical messages, JSON); NULL: store off */
    size_t history_len;
    bool kept;
    rsp_item *items;
    int nitems, cap;
    size_t output_bytes;
    const char *finish; /* the canonical finish reason */

    /* the stream encoder */
    long long seq; /* the next event's sequence_number */
    bool started, finished;
    int open_text, open_reasoning; /* item index, -1: none */
    int *tool_item;                /* canonical tool index → item index */
    int ntool_item;
} responses_state;

/* A new output item (NULL past XLATE_BLOCKS_MAX); call_id NULL: one is made up. */
rsp_item *responses__add_item(xlate *x, int kind, const char *call_id, const char *name);
/* Appends to an item's text; false past RESPONSES_OUTPUT_MAX. */
bool responses__append(xlate *x, rsp_item *it, const char *text, size_t len);
/* Item i as the API shows it: while in progress (done false) or complete. */
json_t *responses__item(const responses_state *s, int i, bool done);
/* Writes the Response object with the given status ("in_progress": no output, no usage yet). */
void responses__write_object(xlate *x, const char *status, buf *out);
/* "completed", or "incomplete" when the model stopped at its limit or a filter. */
const char *responses__final_status(const responses_state *s);
/* Keeps the finished response (its text) and its conversation in the store (once; not when
 * store is off). */
void responses__keep(xlate *x, const char *response, size_t len);

#endif
