/* buf.c — bounded growable buffer; see buf.h. */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* A buffer whose allocation is at most this is kept across resets (keep-alive reuse). */
#define BUF_KEEP_BYTES 16384

void buf_init(buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->overflowed = false;
}

static int buf_reserve(buf *b, size_t extra)
{
    if (extra > b->max - b->len) {
        b->overflowed = true;
        return BUF_TOO_BIG;
    }
    size_t need = b->len + extra + 1; /* room for a NUL so data can be used as a C string */
    if (need <= b->cap) return BUF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1) cap = b->max + 1;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return BUF_OK;
}

int buf_append(buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != BUF_OK) return BUF_TOO_BIG;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return BUF_TOO_BIG;
    if ((size_t)n < sizeof small) return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n) != BUF_OK) return BUF_TOO_BIG;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return BUF_OK;
}

int buf_append_json_string(buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_append_lit(b, "\"") != BUF_OK) return BUF_TOO_BIG;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (buf_append(b, s + run, i - run) != BUF_OK) return BUF_TOO_BIG;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        int r;
        switch (c) {
        case '"': r = buf_append_lit(b, "\\\""); break;
        case '\\': r = buf_append_lit(b, "\\\\"); break;
        case '\n': r = buf_append_lit(b, "\\n"); break;
        case '\r': r = buf_append_lit(b, "\\r"); break;
        case '\t': r = buf_append_lit(b, "\\t"); break;
        default: r = buf_append(b, esc, 6); break;
        }
        if (r != BUF_OK) return BUF_TOO_BIG;
        run = i + 1;
    }
    if (buf_append(b, s + run, len - run) != BUF_OK) return BUF_TOO_BIG;
    return buf_append_lit(b, "\"");
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data) b->data[b->len] = '\0';
}

void buf_reset(buf *b)
{
    if (b->cap > BUF_KEEP_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->overflowed = false;
    if (b->data) b->data[0] = '\0';
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_append_int(buf *b, long long v)
{
    char digits[24];
    char *p = digits + sizeof digits;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    return buf_append(b, p, (size_t)(digits + sizeof digits - p));
}

int buf_append_milli(buf *b, long long thousandths)
{
    unsigned long long u =
        thousandths < 0 ? 0ULL - (unsigned long long)thousandths : (unsigned long long)thousandths;
    if (thousandths < 0 && buf_append_lit(b, "-") != BUF_OK) return BUF_TOO_BIG;
    if (buf_append_int(b, (long long)(u / 1000)) != BUF_OK) return BUF_TOO_BIG;
    char frac[4] = {'.', (char)('0' + u / 100 % 10), (char)('0' + u / 10 % 10), (char)('0' + u % 10)};
    return buf_append(b, frac, sizeof frac);
}

int buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}
