/* http_body.h — reading a request body off the wire: Content-Length or chunked framing.
 *
 * Internal to the server layer (http_conn.c is its one user). http-parser reads only the
 * head: the body is ours, so chunked framing is checked strictly (Debian's http-parser is
 * built lenient: it skips the CRLF after chunk data and takes "2 \r\n") and trailers never
 * reach the header buffer that req.headers point into. The reader is a plain state machine
 * over the bytes it is given: it resumes where the last read stopped, copies body bytes into
 * the request's body buffer (bounded by that buffer's max) and knows nothing of sockets or
 * timers. */
#ifndef AIGW_SERVER_HTTP_BODY_H
#define AIGW_SERVER_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* How the request body is framed, once the head is parsed. */
typedef enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED } body_mode;

typedef enum chunk_state {
    CHUNK_SIZE,       /* hex digits of the size */
    CHUNK_SIZE_SPACE, /* whitespace after the size: only before a ";" extension */
    CHUNK_EXTENSION,  /* ";name=value…" up to CR, ignored */
    CHUNK_SIZE_LF,    /* CR seen, LF must follow */
    CHUNK_DATA,
    CHUNK_DATA_CR, /* the CRLF that must follow chunk data */
    CHUNK_DATA_LF,
    CHUNK_TRAILER_START, /* after the last chunk: a trailer field, or the final CRLF */
    CHUNK_TRAILER_LINE,
    CHUNK_TRAILER_LF,
    CHUNK_FINAL_LF,
} chunk_state;

#define CHUNK_LINE_MAX 4096 /* a size line with its extensions */

typedef struct http_body_reader {
    body_mode mode;
    uint64_t left;             /* BODY_LENGTH: bytes still to come; BODY_CHUNKED: of this chunk */
    chunk_state chunk;         /* BODY_CHUNKED: where in the framing */
    size_t chunk_line;         /* bytes of the current size line or trailer section */
    bool trailer_value;        /* past the ':' of the current trailer field */
    int error_status;          /* BODY_ERROR: the status to answer with… */
    const char *error_message; /* …and why (a static string) */
} http_body_reader;

typedef enum body_result { BODY_MORE, BODY_DONE, BODY_ERROR } body_result;

/* Reads body bytes from data into body (up to body->max): a fixed length, or chunked framing
 * exactly as RFC 9112 §7.1 has it (bare LF, whitespace without an extension, a missing CRLF
 * after data, a size past the limit are all refused; trailer fields are checked for shape,
 * bounded by trailer_max bytes and dropped). Sets *used to the bytes consumed: on BODY_DONE
 * what follows belongs to the next request. On BODY_ERROR r->error_status and
 * r->error_message say what to answer (413, 431 or 400). r->mode must not be BODY_NONE. */
body_result http_body_feed(http_body_reader *r, buf *body, size_t trailer_max, const char *data, size_t len,
                           size_t *used);

#endif
