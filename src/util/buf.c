/* buf.c — bounded growable buffer; see buf.h. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
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

char *buf_room(buf *b, size_t n)
{
    return buf_reserve(b, n) == BUF_OK ? b->data + b->len : NULL;
}

void buf_commit(buf *b, char *end)
{
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
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

/* Whether any of eight bytes is below 0x20, '"' or '\\' (the bit tricks of "Bit Twiddling Hacks":
 * a zero byte in x ^ c, and a byte below n). */
static inline bool needs_escape8(const char *s)
{
    uint64_t x;
    memcpy(&x, s, 8);
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t below_space = (x - ones * 0x20) & ~x & highs;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    uint64_t quote = (q - ones) & ~q & highs, backslash = (bs - ones) & ~bs & highs;
    return (below_space | quote | backslash | (x & highs)) != 0; /* non-ASCII: checked as UTF-8 */
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when the bytes are not one. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (!n || c > 0xf4 || n > left) return 0;
    for (size_t k = 1; k < n; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

char *put_json_string(char *p, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        while (i + 8 <= len && !needs_escape8(s + i)) /* eight plain bytes at a time */
            i += 8;
        if (i >= len) break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) { /* well-formed UTF-8 as it is; any other byte U+FFFD, so the text stays JSON */
            size_t n = utf8_sequence((const unsigned char *)s + i, len - i);
            if (n) {
                i += n - 1;
                continue;
            }
            memcpy(p, s + run, i - run);
            p = put_lit(p + (i - run), "\\ufffd");
            run = i + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        memcpy(p, s + run, i - run);
        p += i - run;
        run = i + 1;
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            p = put_lit(p, "u00");
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    if (len > run) memcpy(p, s + run, len - run); /* s may be NULL when len is 0 */
    p += len - run;
    *p++ = '"';
    return p;
}

size_t utf8_clean_size(const char *s, size_t len)
{
    const uint64_t highs = 0x8080808080808080ULL;
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        uint64_t x;
        while (i + 8 <= len && (memcpy(&x, s + i, 8), !(x & highs))) /* eight ASCII bytes at a time */
            i += 8;
        if (i >= len) break;
        if ((unsigned char)s[i] < 0x80) continue;
        size_t seq = utf8_sequence((const unsigned char *)s + i, len - i);
        if (seq)
            i += seq - 1;
        else
            n += 2; /* one byte becomes U+FFFD's three */
    }
    return n;
}

char *put_utf8_clean(char *p, const char *s, size_t len, size_t clean_size)
{
    if (clean_size == len) { /* nothing to replace: the common case */
        if (len) memcpy(p, s, len);
        return p + len;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t seq = c < 0x80 ? 1 : utf8_sequence((const unsigned char *)s + i, len - i);
        if (!seq) {
            p = put_lit(p, "\xef\xbf\xbd");
            continue;
        }
        memcpy(p, s + i, seq);
        p += seq;
        i += seq - 1;
    }
    return p;
}

/* The exact length put_json_string writes. */
static size_t json_string_size(const char *s, size_t len)
{
    size_t n = len + 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            n += 1;
        } else if (c < 0x20) {
            n += 5;
        } else if (c >= 0x80) {
            size_t seq = utf8_sequence((const unsigned char *)s + i, len - i);
            if (seq)
                i += seq - 1;
            else
                n += 5;
        }
    }
    return n;
}

int buf_append_json_string(buf *b, const char *s, size_t len)
{
    size_t need = 6 * len + 2;
    if (need > b->max - b->len) need = json_string_size(s, len); /* near the maximum: the exact size */
    char *p = buf_room(b, need);
    if (!p) return BUF_TOO_BIG;
    buf_commit(b, put_json_string(p, s, len));
    return BUF_OK;
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

char *put_int(char *p, long long v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    if (v < 0) *p++ = '-';
    size_t n = 1;
    for (unsigned long long t = u; t >= 10; t /= 10)
        n++;
    char *end = p + n, *d = end;
    for (; u >= 100; u /= 100) { /* two digits a step, from the right */
        d -= 2;
        memcpy(d, pairs + 2 * (u % 100), 2);
    }
    if (u >= 10)
        memcpy(d - 2, pairs + 2 * u, 2);
    else
        d[-1] = (char)('0' + u);
    return end;
}

/* Every byte's two hex digits, "000102…ff": a byte is one load and one two-byte store (the
 * digit-by-digit loop's two loads, shifts and stores cost about three times as much — a
 * traceparent's 24 bytes took ~300 instructions, now ~110). */
#define HEX_ROW(h)                                                                                           \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4") HEX_ROW("5")
    HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b") HEX_ROW("c") HEX_ROW("d")
        HEX_ROW("e") HEX_ROW("f");

char *put_hex(char *p, const unsigned char *bytes, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4, p += 8) { /* four at a time: the ids are 8 and 16 bytes */
        memcpy(p, hex_pairs + 2 * (size_t)bytes[i], 2);
        memcpy(p + 2, hex_pairs + 2 * (size_t)bytes[i + 1], 2);
        memcpy(p + 4, hex_pairs + 2 * (size_t)bytes[i + 2], 2);
        memcpy(p + 6, hex_pairs + 2 * (size_t)bytes[i + 3], 2);
    }
    for (; i < n; i++, p += 2)
        memcpy(p, hex_pairs + 2 * (size_t)bytes[i], 2);
    return p;
}

int buf_append_int(buf *b, long long v)
{
    char digits[24];
    return buf_append(b, digits, (size_t)(put_int(digits, v) - digits));
}

char *put_milli(char *p, long long thousandths)
{
    unsigned long long u =
        thousandths < 0 ? 0ULL - (unsigned long long)thousandths : (unsigned long long)thousandths;
    if (thousandths < 0) *p++ = '-';
    p = put_int(p, (long long)(u / 1000));
    *p++ = '.';
    *p++ = (char)('0' + u / 100 % 10);
    *p++ = (char)('0' + u / 10 % 10);
    *p++ = (char)('0' + u % 10);
    return p;
}

int buf_append_milli(buf *b, long long thousandths)
{
    char digits[32];
    return buf_append(b, digits, (size_t)(put_milli(digits, thousandths) - digits));
}

int buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

void fixed_text_put(fixed_text *t, const char *fmt, ...)
{
    if (t->full) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->out + t->len, t->cap + 1 - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || t->len + (size_t)n > t->cap) {
        t->out[t->len] = '\0'; /* the piece's part that was written goes */
        t->full = true;
        return;
    }
    t->len += (size_t)n;
}
