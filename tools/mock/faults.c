/* faults.c — aigw-mock's per-request directives: `[[mock:key=value,...]]` anywhere in the raw
 * body, or `x-mock-KEY` headers (`x-mock-ttfb-ms: 200` is `ttfb_ms=200`). Headers win.
 *
 * The body is scanned as bytes, not as JSON: a directive contains no JSON escapes, so it reads
 * the same in every wire format (a prompt, a system text, a tool result) and survives a
 * gateway's translation between formats unchanged. Every value is bounded here, once, so the
 * rest of the mock can trust it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

void faults_set(faults *f, const char *key, size_t klen, const char *val, size_t vlen)
{
    char v[128];
    if (vlen >= sizeof v) vlen = sizeof v - 1;
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    long n = vlen ? strtol(v, NULL, 10) : 1;
#define KEY(name) (klen == sizeof(name) - 1 && !strncasecmp(key, name, klen))
    if (KEY("status"))
        f->status = (int)n;
    else if (KEY("retry_after"))
        f->retry_after = (int)n;
    else if (KEY("fail_first"))
        f->fail_first = n;
    else if (KEY("scope"))
        snprintf(f->scope, sizeof f->scope, "%s", v);
    else if (KEY("ttfb_ms"))
        f->ttfb_ms = n;
    else if (KEY("chunk_delay_ms"))
        f->chunk_delay_ms = n;
    else if (KEY("drop_after"))
        f->drop_after = n;
    else if (KEY("words"))
        f->words = n;
    else if (KEY("stream_error"))
        f->stream_error = n;
    else if (KEY("tool_calls"))
        f->tool_calls = n;
    else if (KEY("cached"))
        f->cached = n;
    else if (KEY("cache_write"))
        f->cache_write = n;
    else if (KEY("reasoning"))
        f->reasoning = n;
    else if (KEY("rl_requests"))
        f->rl_requests = n;
    else if (KEY("rl_window_ms"))
        f->rl_window_ms = n;
    else if (KEY("reset"))
        f->reset = n != 0;
    else if (KEY("hang"))
        f->hang = n != 0;
    else if (KEY("header_cr"))
        f->header_cr = n != 0;
    else if (KEY("encoding"))
        f->gzip_label = !strcasecmp(v, "gzip");
    else if (KEY("shape"))
        f->bad_shape = !strcasecmp(v, "bad");
    else if (KEY("trickle_ms"))
        f->trickle_ms = n;
    else if (KEY("pick"))
        snprintf(f->pick, sizeof f->pick, "%s", v);
    else if (KEY("select"))
        snprintf(f->select, sizeof f->select, "%s", v);
    else if (KEY("select_ms"))
        f->select_ms = n;
    else if (KEY("select_status"))
        f->select_status = (int)n;
#undef KEY
}

static void faults_from_body(faults *f, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *start = memmem(p, (size_t)(end - p), "[[mock:", 7);
        if (!start) break;
        const char *close = memmem(start, (size_t)(end - start), "]]", 2);
        if (!close) break;
        const char *q = start + 7;
        while (q < close) {
            const char *comma = memchr(q, ',', (size_t)(close - q));
            const char *item_end = comma ? comma : close;
            const char *eq = memchr(q, '=', (size_t)(item_end - q));
            if (eq)
                faults_set(f, q, (size_t)(eq - q), eq + 1, (size_t)(item_end - eq - 1));
            else
                faults_set(f, q, (size_t)(item_end - q), "", 0);
            q = item_end + 1;
        }
        p = close + 2;
    }
}

static long bound(long v, long lo, long hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void faults_merge_body(faults *f, const char *body, size_t len)
{
    faults b = {0};
    faults_from_body(&b, body, len);
    if (!f->status) f->status = b.status;
    if (!f->retry_after) f->retry_after = b.retry_after;
    if (!f->fail_first) f->fail_first = b.fail_first;
    if (!f->scope[0]) memcpy(f->scope, b.scope, sizeof f->scope);
    if (!f->ttfb_ms) f->ttfb_ms = b.ttfb_ms;
    if (!f->chunk_delay_ms) f->chunk_delay_ms = b.chunk_delay_ms;
    if (!f->drop_after) f->drop_after = b.drop_after;
    if (!f->words) f->words = b.words;
    if (!f->stream_error) f->stream_error = b.stream_error;
    if (!f->tool_calls) f->tool_calls = b.tool_calls;
    if (!f->cached) f->cached = b.cached;
    if (!f->cache_write) f->cache_write = b.cache_write;
    if (!f->reasoning) f->reasoning = b.reasoning;
    if (!f->rl_requests) f->rl_requests = b.rl_requests;
    if (!f->rl_window_ms) f->rl_window_ms = b.rl_window_ms;
    f->reset |= b.reset;
    f->hang |= b.hang;
    f->header_cr |= b.header_cr;
    f->gzip_label |= b.gzip_label;
    f->bad_shape |= b.bad_shape;
    if (!f->trickle_ms) f->trickle_ms = b.trickle_ms;
    if (!f->pick[0]) memcpy(f->pick, b.pick, sizeof f->pick);
    if (!f->select[0]) memcpy(f->select, b.select, sizeof f->select);
    if (!f->select_ms) f->select_ms = b.select_ms;
    if (!f->select_status) f->select_status = b.select_status;
    f->select_ms = bound(f->select_ms, 0, MAX_DELAY_MS);
    if (f->select_status && (f->select_status < 100 || f->select_status > 599)) f->select_status = 500;
    f->trickle_ms = bound(f->trickle_ms, 0, MAX_DELAY_MS);

    if (f->ttfb_ms < 0 || f->ttfb_ms > MAX_DELAY_MS) f->ttfb_ms = MAX_DELAY_MS;
    if (f->chunk_delay_ms < 0 || f->chunk_delay_ms > MAX_DELAY_MS) f->chunk_delay_ms = MAX_DELAY_MS;
    if (f->words < 0 || f->words > MAX_WORDS) f->words = MAX_WORDS;
    if (f->retry_after <= 0) f->retry_after = 1;
    if (f->status && (f->status < 100 || f->status > 599)) f->status = 500;
    if (!f->scope[0]) snprintf(f->scope, sizeof f->scope, "default");
    f->drop_after = bound(f->drop_after, 0, MAX_WORDS);
    f->stream_error = bound(f->stream_error, 0, MAX_WORDS);
    f->tool_calls = bound(f->tool_calls, 0, MAX_TOOL_CALLS);
    f->cached = bound(f->cached, 0, 1000000000);
    f->cache_write = bound(f->cache_write, 0, 1000000000);
    f->reasoning = bound(f->reasoning, 0, 1000000000);
    f->rl_requests = bound(f->rl_requests, 0, 1000000000);
    if (f->rl_window_ms <= 0) f->rl_window_ms = 60000;
    f->rl_window_ms = bound(f->rl_window_ms, 1, MAX_RL_WINDOW_MS);
}
