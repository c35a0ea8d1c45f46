/* sse.h — incremental Server-Sent Events framing for upstream streams.
 *
 * Bytes from the provider arrive in arbitrary pieces; the gateway forwards and inspects whole
 * events only, so that an error it injects after a broken upstream always lands on an event
 * boundary and never inside half a line. The reader finds event ends (a blank line after
 * LF, CRLF or CR line endings, also split across reads) and reports each complete event as a
 * span of raw bytes — pointing into the caller's data when the event lies within one read,
 * into the reader's own buffer when it straddles reads. Only straddling bytes are copied.
 * Every input byte is in exactly one event, in order; when a read ends between the CR and LF
 * of an event's closing CRLF, the LF starts the next event (an empty line, ignored by SSE
 * clients) rather than delaying the event until the next read. */
#ifndef AIGW_UPSTREAM_SSE_H
#define AIGW_UPSTREAM_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct sse_reader {
    buf partial;     /* bytes of an event not yet complete */
    bool line_empty; /* at the start of a line so far empty */
    bool prev_cr;    /* the last byte was CR: a following LF belongs to it */
} sse_reader;

/* Called for each complete event; raw includes the blank line ending it. */
typedef void (*sse_event_fn)(void *ud, const char *raw, size_t len);

/* max_event bounds one event's size (a stream of a single endless event is an error). */
void sse_reader_init(sse_reader *r, size_t max_event);
/* Feeds bytes; returns false when an event exceeds max_event. */
bool sse_reader_feed(sse_reader *r, const char *data, size_t len, sse_event_fn on_event, void *ud);
/* True when bytes of an unfinished event are held. */
bool sse_reader_has_partial(const sse_reader *r);
void sse_reader_reset(sse_reader *r);
void sse_reader_free(sse_reader *r);

/* True when the event's data is exactly "[DONE]" (OpenAI's end-of-stream marker). */
bool sse_event_is_done(const char *raw, size_t len);

#endif
