/* sse.c — SSE event framing; see sse.h. One pass over each byte, no rescans. */
#include "upstream/sse.h"

#include <string.h>

void sse_reader_init(sse_reader *r, size_t max_event)
{
    buf_init(&r->partial, max_event);
    r->line_empty = true;
    r->prev_cr = false;
}

bool sse_reader_has_partial(const sse_reader *r)
{
    return r->partial.len > 0;
}

void sse_reader_reset(sse_reader *r)
{
    buf_reset(&r->partial);
    r->line_empty = true;
    r->prev_cr = false;
}

void sse_reader_free(sse_reader *r)
{
    buf_free(&r->partial);
}

/* The index of the first CR or LF at or after i, or len. */
static size_t line_end_from(const char *data, size_t i, size_t len)
{
    const char *lf = memchr(data + i, '\n', len - i);
    size_t stop = lf ? (size_t)(lf - data) : len;
    const char *cr = memchr(data + i, '\r', stop - i);
    return cr ? (size_t)(cr - data) : stop;
}

bool sse_reader_feed(sse_reader *r, const char *data, size_t len, sse_event_fn on_event, void *ud)
{
    size_t start = 0; /* first byte of data not yet part of an emitted event */
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n' && data[i] != '\r') {
            /* Inside a line: skip to its end with memchr (vectorised) rather than byte by byte,
             * which was most of a streamed request's instructions (bench/profile.sh). */
            i = line_end_from(data, i, len);
            r->prev_cr = false;
            r->line_empty = false;
            if (i == len) break;
        }
        char c = data[i];
        bool line_end;
        if (c == '\n') {
            if (r->prev_cr) {
                /* LF of a CRLF whose CR already ended the line. If that CR ended an event at
                 * the end of the previous read, this LF opens the next event's bytes: an
                 * empty line to SSE clients, and no byte of the stream is lost. */
                r->prev_cr = false;
                continue;
            }
            line_end = true;
        } else if (c == '\r') {
            line_end = true;
        } else {
            r->prev_cr = false;
            r->line_empty = false;
            continue;
        }
        r->prev_cr = c == '\r';
        if (!line_end) continue;
        if (!r->line_empty) {
            r->line_empty = true;
            continue;
        }
        /* A blank line: the event ends here (inclusive). Keep a CRLF whole when its LF is in
         * this read. */
        size_t end = i + 1;
        if (c == '\r' && end < len && data[end] == '\n') {
            end++;
            i++;
            r->prev_cr = false;
        }
        if (r->partial.len) {
            if (buf_append(&r->partial, data + start, end - start) != BUF_OK) return false;
            on_event(ud, r->partial.data, r->partial.len);
            r->partial.len = 0;
        } else {
            on_event(ud, data + start, end - start);
        }
        start = end;
    }
    if (start < len && buf_append(&r->partial, data + start, len - start) != BUF_OK) return false;
    return true;
}

bool sse_event_is_done(const char *raw, size_t len)
{
    const char *p = raw, *end = raw + len;
    bool done = false;
    while (p < end) {
        const char *eol = raw + line_end_from(raw, (size_t)(p - raw), len);
        if (eol - p >= 5 && !memcmp(p, "data:", 5)) {
            const char *v = p + 5;
            if (v < eol && *v == ' ') v++;
            if (eol - v == 6 && !memcmp(v, "[DONE]", 6))
                done = true;
            else
                return false;
        }
        p = eol;
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
    }
    return done;
}
