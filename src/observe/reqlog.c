/* reqlog.c — one request's request-log entry packed into its worker's batch, its error class,
 * and a kept body's redaction (reqlog.h).
 *
 * The entry is written once, straight from the exchange_record into the batch's blob
 * (store/reqlog_batch.h: varints and the strings' bytes), each string's length known or counted
 * once; the attempts are packed into the worker's scratch buffer first (their JSON is written
 * when a query reads them). Rejected: copying a record for the store's thread to pack (a copy,
 * then a second pass over the same bytes: about 800 instructions a request more); writing the
 * attempts' JSON here (three times the bytes for the database to write, and escaping: about 900
 * more, bench/RESULTS.md).
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
#include "util/buf.h"

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

/* ---- the worker's entry ------------------------------------------------------------------------ */

/* The attempts, packed (store/reqlog_batch.h), into out; false past out's maximum. */
static bool pack_attempts(const record_attempt *list, size_t n, buf *out)
{
    reqlog_attempts_start(out);
    for (size_t i = 0; i < n; i++) {
        const record_attempt *at = &list[i];
        reqlog_attempt a = {.provider = at->provider,
                            .model = at->model,
                            .step = at->step,
                            .note = at->note,
                            .role = at->role,
                            .outcome = at->outcome,
                            .status = at->status,
                            .ms = at->ms,
                            .wait_ms = at->wait_ms};
        if (!reqlog_attempts_add(out, &a)) return false;
    }
    return !out->overflowed;
}

static size_t text_len(const char *s)
{
    return s ? strlen(s) : 0;
}

bool reqlog_pack(reqlog_batch_writer *w, const exchange_record *r, int64_t start_unix_us, size_t body_max,
                 buf *scratch)
{
    int retries = 0, fallbacks = 0;
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *at = &r->attempts[i];
        if (!at->role || (at->outcome && !strcmp(at->outcome, "skipped"))) continue;
        retries += !strcmp(at->role, "retry");
        fallbacks += !strcmp(at->role, "fallback");
    }
    if (!pack_attempts(r->attempts, r->nattempts, scratch)) return false;
    char trace_hex[33];
    if (r->any_trace_id) *put_hex(trace_hex, r->any_trace_id, 16) = '\0';
    const char *error_class = reqlog_error_class(r); /* a literal */
    /* an upstream's error passed through has no note of aigw's: say which provider answered
     * what, so the error filter finds it too */
    char said[320];
    const char *error = r->error;
    if (!error && error_class && r->provider) {
        snprintf(said, sizeof said, "provider %.128s answered %d (%s)", r->provider, r->status, error_class);
        error = said;
    }
    const char *body =
        body_max && r->request_body_len && r->request_body_len <= body_max ? r->request_body : NULL;
    const record_usage *u = &r->usage;
    reqlog_entry e = {
        .time_us = start_unix_us,
        .request_id = r->request_id ? r->request_id : "",
        .trace_id = r->any_trace_id ? trace_hex : NULL,
        .key_id = r->key_id,
        .key_alias = r->key_alias,
        .team = r->team,
        .method = r->method ? r->method : "-",
        .path = r->path ? r->path : "",
        .route = r->route,
        .provider = r->provider,
        .model = r->model,
        .upstream_model = r->upstream_model,
        .status = r->status,
        .error_class = error_class,
        .error = error,
        .stream = r->stream,
        .prompt_tokens = u->prompt,
        .completion_tokens = u->completion,
        .cached_tokens = u->cached,
        .cache_write_tokens = u->cache_write,
        .reasoning_tokens = u->reasoning,
        .cost_usd = r->cost_usd,
        .cache = r->cache,
        .retries = retries,
        .fallbacks = fallbacks,
        .ttfb_us = r->first_byte_ns ? (int64_t)((r->first_byte_ns - r->start_ns) / 1000) : -1,
        .total_us = r->end_ns > r->start_ns ? (int64_t)((r->end_ns - r->start_ns) / 1000) : 0,
        .overhead_us = r->overhead_us,
        .attempts = scratch->data,
        .request_body = body,
        .prompt_id = r->prompt_id,
        .prompt_version = r->prompt_id ? r->prompt_version : 0,
        .route_reason = r->route_reason,
    };
    size_t lens[REQLOG_BATCH_STRINGS] = {
        [RLB_REQUEST_ID] = strlen(e.request_id),
        [RLB_TRACE_ID] = 32,
        [RLB_KEY_ID] = text_len(e.key_id),
        [RLB_KEY_ALIAS] = text_len(e.key_alias),
        [RLB_TEAM] = text_len(e.team),
        [RLB_METHOD] = strlen(e.method),
        [RLB_PATH] = r->path ? r->path_len : 0,
        [RLB_ROUTE] = text_len(e.route),
        [RLB_PROVIDER] = text_len(e.provider),
        [RLB_MODEL] = text_len(e.model),
        [RLB_UPSTREAM_MODEL] = r->upstream_model_len,
        [RLB_ERROR_CLASS] = text_len(error_class),
        [RLB_ERROR] = text_len(error),
        [RLB_CACHE] = text_len(e.cache),
        [RLB_ATTEMPTS] = scratch->len,
        [RLB_REQUEST_BODY] = body ? r->request_body_len : 0,
        [RLB_PROMPT_ID] = text_len(e.prompt_id),
        [RLB_ROUTE_REASON] = text_len(e.route_reason),
    };
    return reqlog_batch_add_sized(w, &e, lens, (unsigned)w->n);
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
