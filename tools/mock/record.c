/* record.c — what aigw-mock received: the last N requests (default 64), read at GET /__requests
 * and cleared by POST /__reset, so an end-to-end test can prove what a gateway sent upstream —
 * the body's exact bytes, which key, which headers.
 *
 * Each request is rendered into its JSON object once, when it has been read (outside the lock),
 * and kept in a ring shared by all workers under one mutex; /__requests only joins the kept
 * objects. Everything is bounded: RECORD_MAX requests, RECORD_BODY_BYTES of each body,
 * RECORD_HEADER_BYTES of each request's header JSON and RECORD_VALUE_BYTES of one value (what
 * is cut is said by `body_truncated` / `headers_truncated`). Header values are kept as sent,
 * authorization included: this is a local test double, and which key arrived is what a test
 * asks. The control endpoints (/__stats, /__reset, /__requests) are not recorded.
 *
 * Bytes that are not valid UTF-8 cannot be a JSON string as they are: a body is then given in
 * base64 (`body_base64` instead of `body`); a header name or value byte by byte as Latin-1.
 * Rejected: keeping raw buffers and rendering at read time — the read would hold the lock for
 * the whole rendering, and the benchmark's workers contend on it. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static struct {
    pthread_mutex_t lock;
    int keep;          /* requests kept; 0: recording off */
    char **items;      /* ring of rendered JSON objects, `keep` slots */
    size_t *lens;      /* their lengths */
    uint64_t next_seq; /* sequence number of the next request recorded */
    uint64_t count;    /* requests recorded since the last reset (the ring holds the last `keep`) */
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER, .keep = RECORD_DEFAULT};

void record_configure(int keep)
{
    rec.keep = keep < 0 ? 0 : keep > RECORD_MAX ? RECORD_MAX : keep;
}

/* Whether n bytes are valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

/* A JSON string of arbitrary bytes: as they are when valid UTF-8, else each byte as Latin-1. */
static void json_bytes(sbuf *b, const char *s, size_t n)
{
    if (utf8_valid((const unsigned char *)s, n)) {
        sb_json(b, s, n);
        return;
    }
    sbuf latin1 = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char two[2] = {(char)(0xC0 | c >> 6), (char)(0x80 | (c & 0x3F))};
        if (c < 0x80)
            sb_add(&latin1, (const char *)&c, 1);
        else
            sb_add(&latin1, two, 2);
    }
    sb_json(b, latin1.p ? latin1.p : "", latin1.len);
    free(latin1.p);
}

void record_header(conn *c, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!rec.keep || c->rec_headers_truncated) return;
    bool cut = vlen > RECORD_VALUE_BYTES;
    if (cut) vlen = RECORD_VALUE_BYTES;
    sbuf pair = {0};
    sb_str(&pair, c->rec_headers.len ? ",[" : "[");
    json_bytes(&pair, name, nlen);
    sb_str(&pair, ",");
    json_bytes(&pair, value, vlen);
    sb_str(&pair, "]");
    if (c->rec_headers.len + pair.len > RECORD_HEADER_BYTES)
        cut = true; /* this header and the ones after it are left out */
    else
        sb_add(&c->rec_headers, pair.p, pair.len);
    free(pair.p);
    if (cut) c->rec_headers_truncated = true;
}

void record_request(conn *c, const char *method, const char *images_json)
{
    if (!rec.keep) return;
    pthread_mutex_lock(&rec.lock);
    uint64_t seq = ++rec.next_seq;
    pthread_mutex_unlock(&rec.lock);

    size_t body_len = c->body.len, kept = body_len < RECORD_BODY_BYTES ? body_len : RECORD_BODY_BYTES;
    const char *body = c->body.p ? c->body.p : "";
    sbuf b = {0};
    sb_fmt(&b, "{\"seq\":%llu,\"worker\":%d,\"request_id\":", (unsigned long long)seq, conn_worker_id(c));
    sb_json_str(&b, c->req_id);
    sb_str(&b, ",\"method\":");
    sb_json_str(&b, method);
    sb_str(&b, ",\"url\":");
    json_bytes(&b, c->url.p ? c->url.p : "", c->url.len);
    sb_str(&b, ",\"headers\":[");
    sb_add(&b, c->rec_headers.p ? c->rec_headers.p : "", c->rec_headers.len);
    sb_fmt(&b, "],\"headers_truncated\":%s,\"body_bytes\":%zu,\"body_truncated\":%s,",
           c->rec_headers_truncated ? "true" : "false", body_len, kept < body_len ? "true" : "false");
    /* a cut may split a UTF-8 sequence: the kept part is then given in base64 */
    if (utf8_valid((const unsigned char *)body, kept)) {
        sb_str(&b, "\"body\":");
        sb_json(&b, body, kept);
    } else {
        sb_str(&b, "\"body_base64\":\"");
        sb_base64(&b, (const unsigned char *)body, kept);
        sb_str(&b, "\"");
    }
    sb_str(&b, ",\"images\":");
    sb_str(&b, images_json ? images_json : "[]");
    sb_str(&b, "}");

    pthread_mutex_lock(&rec.lock);
    if (!rec.items) {
        rec.items = calloc((size_t)rec.keep, sizeof *rec.items);
        rec.lens = calloc((size_t)rec.keep, sizeof *rec.lens);
        if (!rec.items || !rec.lens) abort();
    }
    size_t slot = (size_t)(rec.count++ % (uint64_t)rec.keep);
    char *old = rec.items[slot];
    rec.items[slot] = b.p;
    rec.lens[slot] = b.len;
    pthread_mutex_unlock(&rec.lock);
    free(old);
}

void record_json(sbuf *out)
{
    pthread_mutex_lock(&rec.lock);
    sb_fmt(out, "{\"kept\":%d,\"requests\":[", rec.keep);
    uint64_t n = rec.count < (uint64_t)rec.keep ? rec.count : (uint64_t)rec.keep;
    for (uint64_t i = 0; i < n; i++) {
        size_t slot = (size_t)((rec.count - n + i) % (uint64_t)rec.keep);
        if (i) sb_str(out, ",");
        sb_add(out, rec.items[slot], rec.lens[slot]);
    }
    sb_str(out, "]}");
    pthread_mutex_unlock(&rec.lock);
}

void record_reset(void)
{
    pthread_mutex_lock(&rec.lock);
    if (rec.items)
        for (int i = 0; i < rec.keep; i++) {
            free(rec.items[i]);
            rec.items[i] = NULL;
        }
    free(rec.items);
    free(rec.lens);
    rec.items = NULL;
    rec.lens = NULL;
    rec.count = 0;
    pthread_mutex_unlock(&rec.lock);
}
