/* buf.h — a growable byte buffer with a hard maximum.
 *
 * Used for what can be large: request bodies, buffered upstream replies, access-log batches.
 * Every buf is created with its maximum (curl's dynbuf "toobig"); an append that would pass
 * it fails with BUF_TOO_BIG and leaves the buffer unchanged, so callers answer 413/502 with a
 * clear message instead of growing without bound. */
#ifndef AIGW_UTIL_BUF_H
#define AIGW_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct buf {
    char *data;
    size_t len, cap, max;
    bool overflowed; /* an append was refused since init or reset: the content is incomplete */
} buf;

enum { BUF_OK = 0, BUF_TOO_BIG = -1 };

void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *data, size_t len);
/* Appends a string literal (its length known at compile time). */
#define buf_append_lit(b, lit) buf_append((b), "" lit, sizeof(lit) - 1)
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a number in decimal: an integer, and a value in thousandths as "I.FFF" (what printf's
 * "%.3f" writes for v / 1000) — without printf's cost on paths run for every request. */
int buf_append_int(buf *b, long long v);
int buf_append_milli(buf *b, long long thousandths);
/* Appends s (NUL-terminated). */
int buf_append_str(buf *b, const char *s);
/* Appends s as a JSON string literal, quotes included. */
int buf_append_json_string(buf *b, const char *s, size_t len);
/* Writing without a check per append, for hot paths that know a bound: buf_room returns where
 * at least n more bytes may be written (NULL, and the buffer unchanged, past its maximum); the
 * put_* writers below write there and return the end; buf_commit takes the end as the new
 * length. Redis's sdsMakeRoomFor / sdsIncrLen. */
char *buf_room(buf *b, size_t n);
void buf_commit(buf *b, char *end);
/* A literal (its length known at compile time, so the copy is inlined). */
#define put_lit(p, lit) ((char *)memcpy((p), "" lit, sizeof(lit) - 1) + sizeof(lit) - 1)
/* At most 20 bytes; put_milli: thousandths as "I.FFF", at most 25. */
char *put_int(char *p, long long v);
char *put_milli(char *p, long long thousandths);
/* s as a JSON string literal, quotes included: at most 6 * len + 2 bytes. Bytes that are not
 * well-formed UTF-8 are written as U+FFFD: what comes from a client or a provider cannot make
 * the JSON it is put in unreadable. */
char *put_json_string(char *p, const char *s, size_t len);
/* Text for a format that takes UTF-8 only (protobuf's string fields: a collector written in Go
 * refuses a message with one bad byte): utf8_clean_size is how long s becomes when every byte
 * that is not part of well-formed UTF-8 is replaced by U+FFFD (equal to len when none is, which
 * eight-byte ASCII runs tell fast); put_utf8_clean writes it, given that size (at most 3 * len). */
size_t utf8_clean_size(const char *s, size_t len);
char *put_utf8_clean(char *p, const char *s, size_t len, size_t clean_size);
/* Lower-case hex of n bytes: 2 * n bytes. */
char *put_hex(char *p, const unsigned char *bytes, size_t n);

/* Text printed piece by piece into caller memory of a fixed size (a message, a header value):
 * a piece that does not fit is left out whole and the text marked full, so it ends at the last
 * whole piece and stays NUL-terminated. cap: the bytes usable, the NUL excluded. */
typedef struct fixed_text {
    char *out;
    size_t len, cap;
    bool full;
} fixed_text;
void fixed_text_put(fixed_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);
/* Empties the buffer; keeps the allocation when it is small, frees it otherwise. */
void buf_reset(buf *b);
void buf_free(buf *b);

#endif
