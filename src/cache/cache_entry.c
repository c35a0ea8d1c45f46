/* cache_entry.c — what a backend keeps under a key: a stored reply in the shapes a hit answers
 * with, and the header that says where each is (cache.h).
 *
 *   "aigw-cache 2 " COST FORMAT PROMPT COMPLETION CACHED CACHE_WRITE REASONING
 *                   BODY_LEN STREAM_LEN USAGE_AT USAGE_LEN "\n" BODY STREAM
 *
 * one line of decimal fields separated by spaces, then the bytes. The reply is rendered when it
 * is stored (providers/replay.c), so a hit parses this line and writes stored bytes: the
 * stream's usage chunk (OpenAI's, sent only on include_usage) is the one part a hit may leave
 * out. The header is text so that an entry in Redis can be read with redis-cli. An entry of
 * another version (the first one kept a canonical reply that every hit parsed and encoded) is
 * not read: it is a miss, and the reply that answers it replaces it.
 *
 * Everything read comes from a backend — this process's memory, or a Redis that other
 * instances write — so every length is checked against what is there before it is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "util/units.h"

#define FIELDS 10 /* after the cost */

bool cache_entry_write(const cache_entry *e, buf *out)
{
    char usd[UNITS_DECIMAL_MAX];
    units_format_decimal(usd, e->cost_usd > 0 ? e->cost_usd : 0);
    const usage_counts *u = &e->usage;
    unsigned long long f[FIELDS] = {(unsigned long long)e->format,
                                    (unsigned long long)(u->prompt > 0 ? u->prompt : 0),
                                    (unsigned long long)(u->completion > 0 ? u->completion : 0),
                                    (unsigned long long)(u->cached > 0 ? u->cached : 0),
                                    (unsigned long long)(u->cache_write > 0 ? u->cache_write : 0),
                                    (unsigned long long)(u->reasoning > 0 ? u->reasoning : 0),
                                    e->body_len,
                                    e->stream_len,
                                    e->usage_at,
                                    e->usage_len};
    if (buf_append_lit(out, CACHE_ENTRY_MAGIC) != BUF_OK || buf_append_str(out, usd) != BUF_OK) return false;
    for (int i = 0; i < FIELDS; i++)
        if (buf_append_lit(out, " ") != BUF_OK || buf_append_int(out, (long long)f[i]) != BUF_OK)
            return false;
    return buf_append_lit(out, "\n") == BUF_OK && buf_append(out, e->body, e->body_len) == BUF_OK &&
           buf_append(out, e->stream, e->stream_len) == BUF_OK;
}

/* One " <digits>" field at *p (before end), at most 15 digits. */
static bool read_field(const char **p, const char *end, unsigned long long *out)
{
    const char *s = *p;
    if (s >= end || *s++ != ' ') return false;
    unsigned long long v = 0;
    const char *start = s;
    while (s < end && *s >= '0' && *s <= '9' && s - start < 15)
        v = v * 10 + (unsigned long long)(*s++ - '0');
    if (s == start || (s < end && *s != ' ' && *s != '\n')) return false;
    *p = s;
    *out = v;
    return true;
}

bool cache_entry_parse(const char *data, size_t len, cache_entry *e)
{
    size_t mlen = sizeof CACHE_ENTRY_MAGIC - 1;
    if (len < mlen + 2 || memcmp(data, CACHE_ENTRY_MAGIC, mlen)) return false;
    const char *end = data + len;
    const char *nl = memchr(data + mlen, '\n', len - mlen < 256 ? len - mlen : 256);
    if (!nl) return false;
    /* the cost as the stage wrote it: digits and '.' (strtod needs a NUL) */
    const char *sp = memchr(data + mlen, ' ', (size_t)(nl - (data + mlen)));
    size_t n = sp ? (size_t)(sp - (data + mlen)) : 0;
    if (!n || n > 40) return false;
    char num[48];
    memcpy(num, data + mlen, n);
    num[n] = '\0';
    if (strspn(num, "0123456789.") != n) return false; /* not strtod's inf, nan, signs or hex */
    char *num_end;
    e->cost_usd = strtod(num, &num_end);
    if (*num_end || !(e->cost_usd < 1e9)) return false;
    unsigned long long f[FIELDS];
    const char *p = sp;
    for (int i = 0; i < FIELDS; i++)
        if (!read_field(&p, nl, &f[i])) return false;
    if (p != nl) return false;
    const char *bytes = nl + 1;
    size_t have = (size_t)(end - bytes);
    unsigned long long body_len = f[6], stream_len = f[7], usage_at = f[8], usage_len = f[9];
    if (body_len > have || stream_len != have - body_len || usage_at > stream_len ||
        usage_len > stream_len - usage_at || !body_len || !stream_len)
        return false;
    e->format = (int)f[0];
    e->usage = (usage_counts){.prompt = (long)f[1],
                              .completion = (long)f[2],
                              .cached = (long)f[3],
                              .cache_write = (long)f[4],
                              .reasoning = (long)f[5],
                              .seen = true};
    e->body = bytes;
    e->body_len = body_len;
    e->stream = bytes + body_len;
    e->stream_len = stream_len;
    e->usage_at = usage_at;
    e->usage_len = usage_len;
    return true;
}
