/* fuzz_h1.c — libFuzzer target for the upstream HTTP/1.1 response parser (src/upstream/
 * h1_parse.c), which reads every byte a plain-http provider sends. The input is a response:
 * its head is parsed, then its body fed whole and again split at every few bytes (the split
 * chosen by the first byte): both must give the same bytes and the same end (done, error or
 * wanting more), every span must lie inside what was fed, and a Content-Length body that is
 * done must be exactly that long. Kept header lines must hold no control byte but HTAB.
 * Then a round trip: the input's bytes, sent chunked in pieces sized by the input, must come
 * back exactly, done, whatever the split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/h1_parse.h"

typedef struct outcome {
    char *data;
    size_t len;
    h1_result end;
} outcome;

/* Feeds in pieces of at most step bytes (0: whole). */
static void feed(const h1_head *head, const char *in, size_t len, size_t step, outcome *out)
{
    h1_body b;
    h1_body_init(&b, head);
    out->len = 0;
    out->end = H1_MORE;
    size_t off = 0;
    if (h1_body_done(&b)) {
        out->end = H1_DONE;
        return;
    }
    while (off < len) {
        size_t piece = step && len - off > step ? step : len - off;
        size_t used = 0;
        while (used < piece) {
            size_t consumed;
            const char *span;
            size_t span_len;
            h1_result r = h1_body_feed(&b, in + off + used, piece - used, &consumed, &span, &span_len);
            if (consumed > piece - used) abort();
            if (r == H1_DATA) {
                if (span < in + off + used || span + span_len > in + off + piece) abort();
                memcpy(out->data + out->len, span, span_len);
                out->len += span_len;
            }
            used += consumed;
            if (r == H1_DONE || r == H1_ERROR) {
                out->end = r;
                return;
            }
            if (r == H1_MORE && used != piece) abort();
        }
        off += piece;
    }
}

static void round_trip(const uint8_t *data, size_t size)
{
    /* body: the input; chunk sizes from its bytes */
    char *wire = malloc(size * 8 + 64), *back = malloc(size + 1);
    size_t w = 0, i = 0;
    while (i < size) {
        size_t n = 1 + data[i] % 37;
        if (n > size - i) n = size - i;
        static const char hex[] = "0123456789abcdef";
        if (n >= 16) wire[w++] = hex[n >> 4];
        wire[w++] = hex[n & 15];
        if (data[i] & 1) wire[w++] = ';', wire[w++] = 'x';
        wire[w++] = '\r', wire[w++] = '\n';
        memcpy(wire + w, data + i, n);
        w += n;
        wire[w++] = '\r', wire[w++] = '\n';
        i += n;
    }
    memcpy(wire + w, "0\r\nTrailer: t\r\n\r\n", 17);
    w += 17;
    h1_head head = {.status = 200, .minor_version = 1, .chunked = true, .keep_alive = true};
    outcome o = {.data = back};
    for (size_t step = 0; step < 8; step += 3) {
        feed(&head, wire, w, step, &o);
        if (o.end != H1_DONE || o.len != size || memcmp(back, data, size)) abort();
    }
    free(wire);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536) return 0;
    size_t step = 1 + data[0] % 16;
    const char *in = (const char *)data + 1;
    size--;
    round_trip(data + 1, size);

    char *buf = malloc(size);
    memcpy(buf, in, size);
    size_t hl = h1_head_length(buf, size);
    if (!hl) {
        free(buf);
        return 0;
    }
    h1_head head;
    if (h1_parse_head(buf, hl, &head) == H1_DONE) {
        if (head.status < 100 || head.status > 999 || head.nlines > H1_HEAD_LINES_MAX) abort();
        for (size_t i = 0; i < head.nlines; i++)
            for (const char *p = head.lines[i]; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) abort();
        if (head.chunked && head.has_length) abort();
        char *a = malloc(size), *b = malloc(size);
        outcome whole = {.data = a}, split = {.data = b};
        feed(&head, buf + hl, size - hl, 0, &whole);
        feed(&head, buf + hl, size - hl, step, &split);
        if (whole.end != split.end || whole.len != split.len || memcmp(a, b, whole.len)) abort();
        if (whole.end == H1_DONE && head.has_length && whole.len != head.content_length &&
            head.status >= 200 && head.status != 204 && head.status != 304)
            abort();
        free(a);
        free(b);
    }
    free(buf);
    return 0;
}
