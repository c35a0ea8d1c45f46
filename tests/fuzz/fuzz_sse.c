/* fuzz_sse.c — libFuzzer target for SSE framing (src/upstream/sse.c), which sees every byte a
 * provider streams. The input is split at a point chosen by its first byte; the events that
 * come out, concatenated with what is still held, must be exactly the input (framing loses and
 * invents nothing), each event must end with a line end, and feeding it whole must give the
 * same number of events (a split may only move the LF of a CRLF into the next event). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/sse.h"

typedef struct sink {
    char *data;
    size_t len, events;
} sink;

static void on_event(void *ud, const char *raw, size_t len)
{
    sink *s = ud;
    if (!len || (raw[len - 1] != '\n' && raw[len - 1] != '\r')) abort();
    memcpy(s->data + s->len, raw, len);
    s->len += len;
    s->events++;
}

static size_t run(const char *in, size_t size, size_t cut, sink *s, size_t *held)
{
    sse_reader r;
    sse_reader_init(&r, 1 << 20);
    if (!sse_reader_feed(&r, in, cut, on_event, s)) abort();
    if (!sse_reader_feed(&r, in + cut, size - cut, on_event, s)) abort();
    *held = r.partial.len;
    if (*held) {
        memcpy(s->data + s->len, r.partial.data, r.partial.len);
    }
    sse_reader_free(&r);
    return s->events;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    size_t cut = data[0] % size;
    const char *in = (const char *)data + 1;
    size--;
    if (cut > size) cut = size;
    char *a = malloc(size + 1), *b = malloc(size + 1);
    sink whole = {.data = a}, split = {.data = b};
    size_t held_whole, held_split;
    run(in, size, 0, &whole, &held_whole);
    run(in, size, cut, &split, &held_split);
    if (whole.len + held_whole != size || memcmp(a, in, size) != 0) abort();
    if (split.len + held_split != size || memcmp(b, in, size) != 0) abort();
    if (whole.events != split.events) abort();
    free(a);
    free(b);
    return 0;
}
