/* h1_parse.h — a strict parser for HTTP/1.1 responses from providers (RFC 9112), no I/O.
 *
 * Two parts: the head (status line and header fields, parsed once it is whole) and the body's
 * framing (Content-Length, chunked, or delimited by the connection's close), fed incrementally
 * and handing out spans of the input, so body bytes are never copied here.
 *
 * What is refused (H1_ERROR), rather than guessed at: a status line that is not
 * `HTTP/1.x NNN[ reason]`; a field line without a colon, with whitespace before the colon, a
 * name that is not a token, or obsolete line folding; Content-Length that is not digits, or
 * several that differ; Transfer-Encoding other than `chunked` alone; Transfer-Encoding with
 * Content-Length (the smuggling shape); a chunk size that is not hex or overflows; chunk data
 * not followed by a line end; chunk extensions or trailer lines beyond H1_LINE_MAX.
 * Lines may end in CRLF or a lone LF (RFC 9112 §2.2 allows accepting the latter). Field lines
 * holding a control byte other than HTAB (a bare CR, a NUL) are parsed for nothing and not
 * handed on (unless they are framing fields: then the response is refused). */
#ifndef AIGW_UPSTREAM_H1_PARSE_H
#define AIGW_UPSTREAM_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_HEAD_LINES_MAX 64 /* field lines handed on; more are parsed but not kept */
#define H1_LINE_MAX 4096     /* a chunk-size line or a trailer line */

typedef enum h1_result {
    H1_ERROR = -1,
    H1_MORE = 0, /* everything given was consumed; more input is needed */
    H1_DATA,     /* a span of body bytes is ready */
    H1_DONE,     /* the message is complete */
} h1_result;

typedef struct h1_head {
    int status;
    int minor_version;
    bool keep_alive; /* the connection may carry another request afterwards */
    bool chunked;    /* Transfer-Encoding: chunked */
    bool has_length; /* Content-Length given */
    uint64_t content_length;
    char *lines[H1_HEAD_LINES_MAX]; /* "Name: value" as received, NUL-terminated in place */
    size_t nlines;
} h1_head;

/* The length of the head at the start of buf, its blank line included, when the blank line is
 * there; 0 when it is not yet. */
size_t h1_head_length(const char *buf, size_t len);

/* Parses a whole head (len = h1_head_length's answer). Writes NULs into buf, at the end of
 * each field line kept, so out->lines point into buf and stay valid as long as it does.
 * Returns H1_DONE or H1_ERROR. */
h1_result h1_parse_head(char *buf, size_t len, h1_head *out);

typedef struct h1_body {
    int state;          /* h1_parse.c's body states */
    uint64_t remaining; /* Content-Length left, or the current chunk's bytes left */
    size_t line_len;    /* bytes of the current chunk-size / trailer line seen */
    bool keep_alive;    /* from the head; cleared when the framing says no */
} h1_body;

/* Sets up the body reader for a response with this head (to a request that was not HEAD). */
void h1_body_init(h1_body *body, const h1_head *head);

/* Feeds in[0..len). On H1_DATA, *data and *data_len give a span of body bytes inside in;
 * *consumed is how much of in was used in every case (call again with the rest). H1_DONE: the
 * message ended at in + *consumed. H1_MORE: all of in was used. */
h1_result h1_body_feed(h1_body *body, const char *in, size_t len, size_t *consumed, const char **data,
                       size_t *data_len);

/* The connection closed: whether the body is complete (close-delimited bodies end here). */
bool h1_body_eof_ends(const h1_body *body);

/* Whether the body reader has seen the whole message. */
bool h1_body_done(const h1_body *body);

#endif
