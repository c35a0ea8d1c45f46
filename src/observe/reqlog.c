/* reqlog.c — one request's request-log entry, its error class, and a kept body's redaction
 * (reqlog.h).
 *
 * The entry is sized first and filled second: the struct, then each string NUL-terminated in
 * the same block, so the queue holds one pointer per request and the store's thread frees it in
 * one call. The attempts' JSON is written into the worker's scratch buffer (reused across
 * requests: no allocation once it has grown) and copied into the block.
 *
 * Redaction parses with jansson on the store's thread (never the worker's loop) and replaces
 * values, not members, so a reader still sees which fields the client sent. Rejected: a regex
 * over the text (it would miss escaped names and cut values at the wrong quote). */
#include "observe/reqlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "util/alloc.h"

#define ATTEMPTS_JSON_MAX (64 * 1024)

bool reqlog_wanted(const exchange_record *r)
{
    const char *p = r->path;
    size_t n = r->path_len;
    if (n >= 10 && !memcmp(p, "/v1/models", 10) && !strcmp(r->method, "GET")) return false;
    if (n >= 4 && !memcmp(p, "/v1/", 4)) return true;
    return r->model || r->provider;
}

const char *reqlog_error_class(const exchange_record *r)
{
    if (r->status < 400) return r->error ? "stream_error" : NULL; /* a stream cut after its head */
    if (r->status == 499) return "client_closed";
    if (r->status == 401 || r->status == 403) return "auth";
    if (r->status == 429) return "rate_limited";
    if (r->status == 404) return "not_found";
    const record_attempt *last = NULL;
    for (size_t i = 0; i < r->nattempts; i++)
        if (!r->attempts[i].skipped) last = &r->attempts[i];
    if (r->status < 500) return last && last->status == r->status ? "upstream_error" : "invalid_request";
    if (!last) return "gateway_error";
    if (!strcmp(last->outcome, "timeout")) return "timeout";
    if (!strcmp(last->outcome, "connect_error")) return "connect_error";
    if (!strcmp(last->outcome, "broken")) return "upstream_broken";
    if (!strcmp(last->outcome, "error_status")) return "upstream_error";
    return "gateway_error";
}

static void attempts_json(const exchange_record *r, buf *b)
{
    buf_reset(b);
    buf_append_lit(b, "[");
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *a = &r->attempts[i];
        buf_append_str(b, i ? ",{\"provider\":" : "{\"provider\":");
        buf_append_json_string(b, a->provider ? a->provider : "", a->provider ? strlen(a->provider) : 0);
        buf_append_lit(b, ",\"model\":");
        buf_append_json_string(b, a->model ? a->model : "", a->model ? strlen(a->model) : 0);
        if (a->step) {
            buf_append_lit(b, ",\"step\":");
            buf_append_json_string(b, a->step, strlen(a->step));
        }
        buf_append_lit(b, ",\"role\":\"");
        buf_append_str(b, a->role ? a->role : "first");
        buf_append_lit(b, "\",\"outcome\":\"");
        buf_append_str(b, a->outcome ? a->outcome : "");
        buf_append_lit(b, "\",\"status\":");
        if (a->status)
            buf_append_int(b, a->status);
        else
            buf_append_lit(b, "null");
        buf_append_lit(b, ",\"ms\":");
        buf_append_milli(b, (long long)(a->ms * 1000 + 0.5));
        buf_append_lit(b, ",\"wait_ms\":");
        buf_append_milli(b, (long long)(a->wait_ms * 1000 + 0.5));
        if (a->note) {
            buf_append_lit(b, ",\"note\":");
            buf_append_json_string(b, a->note, strlen(a->note));
        }
        buf_append_lit(b, "}");
    }
    buf_append_lit(b, "]");
    if (b->overflowed) { /* thousands of attempts cannot happen (routing.max_attempts): keep it valid */
        buf_reset(b);
        buf_append_lit(b, "[]");
    }
}

/* The strings of an entry, in the order they are laid out. */
enum {
    S_ID,
    S_TRACE,
    S_KEY,
    S_ALIAS,
    S_TEAM,
    S_METHOD,
    S_PATH,
    S_ROUTE,
    S_PROVIDER,
    S_MODEL,
    S_UPSTREAM,
    S_ERROR,
    S_ATTEMPTS,
    S_BODY,
    S_PROMPT,
    S_REASON,
    NSTRINGS
};

reqlog_entry *reqlog_entry_new(const exchange_record *r, int64_t start_unix_us, size_t body_max, buf *scratch)
{
    char trace[33];
    if (r->any_trace_id) {
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            trace[2 * i] = hex[r->any_trace_id[i] >> 4];
            trace[2 * i + 1] = hex[r->any_trace_id[i] & 15];
        }
        trace[32] = '\0';
    }
    attempts_json(r, scratch);
    /* an upstream's error passed through has no note of aigw's: say which provider answered what,
     * so the error filter finds it too */
    const char *error_class = reqlog_error_class(r);
    char said[320];
    const char *error = r->error;
    if (!error && error_class && r->provider) {
        snprintf(said, sizeof said, "provider %.128s answered %d (%s)", r->provider, r->status, error_class);
        error = said;
    }
    const char *src[NSTRINGS] = {
        [S_ID] = r->request_id,
        [S_TRACE] = r->any_trace_id ? trace : NULL,
        [S_KEY] = r->key_id,
        [S_ALIAS] = r->key_alias,
        [S_TEAM] = r->team,
        [S_METHOD] = r->method,
        [S_PATH] = r->path,
        [S_ROUTE] = r->route,
        [S_PROVIDER] = r->provider,
        [S_MODEL] = r->model,
        [S_UPSTREAM] = r->upstream_model,
        [S_ERROR] = error,
        [S_ATTEMPTS] = scratch->data,
        [S_BODY] =
            body_max && r->request_body_len && r->request_body_len <= body_max ? r->request_body : NULL,
        [S_PROMPT] = r->prompt_id,
        [S_REASON] = r->route_reason,
    };
    size_t len[NSTRINGS], total = sizeof(reqlog_entry);
    for (int i = 0; i < NSTRINGS; i++) {
        len[i] = !src[i]           ? 0
                 : i == S_PATH     ? r->path_len
                 : i == S_UPSTREAM ? r->upstream_model_len
                 : i == S_ATTEMPTS ? scratch->len
                 : i == S_BODY     ? r->request_body_len
                                   : strlen(src[i]);
        if (src[i]) total += len[i] + 1;
    }
    reqlog_entry *e = xmalloc(total);
    char *p = (char *)(e + 1);
    const char *dst[NSTRINGS];
    for (int i = 0; i < NSTRINGS; i++) {
        dst[i] = NULL;
        if (!src[i]) continue;
        memcpy(p, src[i], len[i]);
        p[len[i]] = '\0';
        dst[i] = p;
        p += len[i] + 1;
    }
    int retries = 0, fallbacks = 0;
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *a = &r->attempts[i];
        if (a->skipped || !a->role) continue;
        retries += !strcmp(a->role, "retry");
        fallbacks += !strcmp(a->role, "fallback");
    }
    const record_usage *u = &r->usage;
    *e = (reqlog_entry){
        .time_us = start_unix_us,
        .request_id = dst[S_ID],
        .trace_id = dst[S_TRACE],
        .key_id = dst[S_KEY],
        .key_alias = dst[S_ALIAS],
        .team = dst[S_TEAM],
        .method = dst[S_METHOD],
        .path = dst[S_PATH],
        .route = dst[S_ROUTE],
        .provider = dst[S_PROVIDER],
        .model = dst[S_MODEL],
        .upstream_model = dst[S_UPSTREAM],
        .status = r->status,
        .error_class = error_class, /* a static string */
        .error = dst[S_ERROR],
        .stream = r->stream,
        .prompt_tokens = u->prompt,
        .completion_tokens = u->completion,
        .cached_tokens = u->cached,
        .cache_write_tokens = u->cache_write,
        .reasoning_tokens = u->reasoning,
        .cost_usd = r->cost_usd,
        .cache = r->cache, /* a static string */
        .retries = retries,
        .fallbacks = fallbacks,
        .ttfb_us = r->first_byte_ns ? (int64_t)((r->first_byte_ns - r->start_ns) / 1000) : -1,
        .total_us = r->end_ns > r->start_ns ? (int64_t)((r->end_ns - r->start_ns) / 1000) : 0,
        .overhead_us = r->overhead_us,
        .attempts = dst[S_ATTEMPTS],
        .request_body = dst[S_BODY],
        .prompt_id = dst[S_PROMPT],
        .prompt_version = r->prompt_id ? r->prompt_version : 0,
        .route_reason = dst[S_REASON],
    };
    return e;
}

/* ---- redaction (on the store's thread) ----------------------------------------------------------- */

static bool named(const char *key, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(key, names[i])) return true;
    return false;
}

static void redact(json_t *v, char *const *names, size_t n)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *member;
        json_object_foreach(v, key, member)
        {
            if (named(key, names, n))
                json_object_set_new(v, key, json_string("[redacted]"));
            else
                redact(member, names, n);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            redact(json_array_get(v, i), names, n);
    }
}

char *reqlog_redact_body(const char *body, size_t len, char *const *names, size_t nnames)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root) return NULL;
    redact(root, names, nnames);
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(root);
    return out;
}
