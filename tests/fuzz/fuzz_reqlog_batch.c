/* fuzz_reqlog_batch.c — libFuzzer target for the request log's batch blobs (src/store/reqlog_batch.c),
 * which are read back from a database another program may write (a shared PostgreSQL). Besides
 * crashes and sanitizer reports it checks that every entry the reader accepts survives a round
 * trip: written again by the writer at the same index and read back, each field is the same,
 * and the Bloom filter of the rewritten batch holds every request id in it; and each entry's
 * attempts (packed, or JSON text) are written as JSON without reading past their end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/reqlog_batch.h"
#include "store/request_log.h"

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check_same(const reqlog_entry *a, const reqlog_entry *b)
{
    const char *x[] = {a->request_id,     a->trace_id,    a->key_id,      a->key_alias, a->team,
                       a->method,         a->path,        a->route,       a->provider,  a->model,
                       a->upstream_model, a->error_class, a->error,       a->cache,     a->attempts,
                       a->request_body,   a->prompt_id,   a->route_reason};
    const char *y[] = {b->request_id,     b->trace_id,    b->key_id,      b->key_alias, b->team,
                       b->method,         b->path,        b->route,       b->provider,  b->model,
                       b->upstream_model, b->error_class, b->error,       b->cache,     b->attempts,
                       b->request_body,   b->prompt_id,   b->route_reason};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        if (!same_text(x[i], y[i])) abort();
    if (a->seq != b->seq || a->time_us != b->time_us || a->status != b->status || a->stream != b->stream ||
        a->prompt_tokens != b->prompt_tokens || a->completion_tokens != b->completion_tokens ||
        a->cached_tokens != b->cached_tokens || a->cache_write_tokens != b->cache_write_tokens ||
        a->reasoning_tokens != b->reasoning_tokens || a->retries != b->retries ||
        a->fallbacks != b->fallbacks || a->ttfb_us != b->ttfb_us || a->total_us != b->total_us ||
        a->overhead_us != b->overhead_us)
        abort();
    if (a->prompt_id && a->prompt_version != b->prompt_version) abort();
    if (!(a->cost_usd < 0 ? b->cost_usd < 0 : a->cost_usd == b->cost_usd)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reqlog_batch_reader r;
    if (!reqlog_batch_open(&r, data, size, 3)) return 0;
    reqlog_batch_writer w;
    reqlog_batch_init(&w);
    reqlog_entry e[REQLOG_BATCH_ROWS_MAX];
    size_t n = 0;
    buf json;
    buf_init(&json, 1 << 24);
    while (n < REQLOG_BATCH_ROWS_MAX && reqlog_batch_next(&r, &e[n]) > 0) {
        reqlog_attempts_json(e[n].attempts, &json);
        if (!reqlog_batch_add(&w, &e[n], (unsigned)(e[n].seq & 0xffff))) abort();
        n++;
    }
    uint8_t ids[REQLOG_IDS_MAX_BYTES];
    size_t ids_len = reqlog_batch_ids(&w, ids);
    reqlog_batch_reader again;
    if (n && !reqlog_batch_open(&again, w.data.data, w.data.len, 3)) abort();
    for (size_t i = 0; i < n; i++) {
        reqlog_entry back;
        if (reqlog_batch_next(&again, &back) != 1) abort();
        check_same(&e[i], &back);
        if (!reqlog_ids_may_hold(ids, ids_len, e[i].request_id)) abort();
    }
    if (n && reqlog_batch_next(&again, &(reqlog_entry){0}) != 0) abort();
    reqlog_batch_free(&w);
    buf_free(&json);
    return 0;
}
