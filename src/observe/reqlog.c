/* reqlog.c — one request's request-log record, its row, its error class, and a kept body's
 * redaction (reqlog.h).
 *
 * The record is sized first and filled second: the struct, its attempts, then each string
 * NUL-terminated in the same block of the batch's arena, so a worker pays one bump allocation
 * and copies per request, and the store's thread frees a whole batch in one call. Everything
 * that formats — the attempts' JSON, the trace id's hex, an error sentence — waits for the
 * store's thread (reqlog_record_finish), which writes the batch anyway.
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

/* ---- the worker's copy ------------------------------------------------------------------------- */

/* The strings a record copies, in the order they are laid out. */
enum {
    S_ID,
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
    S_BODY,
    S_PROMPT,
    S_REASON,
    NSTRINGS
};

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

reqlog_record *reqlog_record_copy(arena *a, const exchange_record *r, int64_t start_unix_us, size_t body_max)
{
    const char *src[NSTRINGS] = {
        [S_ID] = r->request_id,
        [S_KEY] = r->key_id,
        [S_ALIAS] = r->key_alias,
        [S_TEAM] = r->team,
        [S_METHOD] = r->method,
        [S_PATH] = r->path,
        [S_ROUTE] = r->route,
        [S_PROVIDER] = r->provider,
        [S_MODEL] = r->model,
        [S_UPSTREAM] = r->upstream_model,
        [S_ERROR] = r->error,
        [S_BODY] =
            body_max && r->request_body_len && r->request_body_len <= body_max ? r->request_body : NULL,
        [S_PROMPT] = r->prompt_id,
        [S_REASON] = r->route_reason,
    };
    size_t size[NSTRINGS], total = ALIGN8(sizeof(reqlog_record)) + r->nattempts * sizeof(reqlog_attempt);
    for (int i = 0; i < NSTRINGS; i++) {
        size[i] = !src[i]           ? 0
                  : i == S_PATH     ? r->path_len + 1
                  : i == S_UPSTREAM ? r->upstream_model_len + 1
                  : i == S_BODY     ? r->request_body_len + 1
                                    : strlen(src[i]) + 1;
        total += size[i];
    }
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *at = &r->attempts[i];
        total += pack_size(at->provider) + pack_size(at->model) + pack_size(at->step) + pack_size(at->note);
    }
    reqlog_record *rec = arena_alloc(a, total);
    reqlog_attempt *attempts = (reqlog_attempt *)((char *)rec + ALIGN8(sizeof *rec));
    char *p = (char *)(attempts + r->nattempts);
    const char *dst[NSTRINGS];
    for (int i = 0; i < NSTRINGS; i++)
        dst[i] = pack_string(&p, src[i], size[i]);
    for (size_t i = 0; i < r->nattempts; i++) {
        const record_attempt *at = &r->attempts[i];
        attempts[i] = (reqlog_attempt){
            .provider = pack_string(&p, at->provider, pack_size(at->provider)),
            .model = pack_string(&p, at->model, pack_size(at->model)),
            .step = pack_string(&p, at->step, pack_size(at->step)),
            .note = pack_string(&p, at->note, pack_size(at->note)),
            .role = at->role,
            .outcome = at->outcome,
            .status = at->status,
            .ms = at->ms,
            .wait_ms = at->wait_ms,
        };
    }
    const record_usage *u = &r->usage;
    *rec = (reqlog_record){
        .row =
            {
                .time_us = start_unix_us,
                .request_id = dst[S_ID],
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
                .error_class = reqlog_error_class(r), /* a literal */
                .error = dst[S_ERROR],
                .stream = r->stream,
                .prompt_tokens = u->prompt,
                .completion_tokens = u->completion,
                .cached_tokens = u->cached,
                .cache_write_tokens = u->cache_write,
                .reasoning_tokens = u->reasoning,
                .cost_usd = r->cost_usd,
                .cache = r->cache, /* a literal */
                .ttfb_us = r->first_byte_ns ? (int64_t)((r->first_byte_ns - r->start_ns) / 1000) : -1,
                .total_us = r->end_ns > r->start_ns ? (int64_t)((r->end_ns - r->start_ns) / 1000) : 0,
                .overhead_us = r->overhead_us,
                .request_body = dst[S_BODY],
                .prompt_id = dst[S_PROMPT],
                .prompt_version = r->prompt_id ? r->prompt_version : 0,
                .route_reason = dst[S_REASON],
            },
        .has_trace = r->any_trace_id != NULL,
        .attempts = attempts,
        .nattempts = r->nattempts,
    };
    if (r->any_trace_id) memcpy(rec->trace_id, r->any_trace_id, 16);
    return rec;
}

/* ---- the row, on the store's thread ------------------------------------------------------------ */

/* What put_json_string may write for s. */
static size_t json_bound(const char *s)
{
    return s ? 6 * strlen(s) + 2 : 2;
}

static char *put_name(char *p, const char *name)
{
    size_t n = strlen(name);
    memcpy(p, name, n);
    return p + n;
}

/* The attempts as a JSON array, written through a cursor into room sized for its worst case
 * (the literals, two numbers of at most 25 bytes, every string escaped at its worst). */
static const char *attempts_json(const reqlog_attempt *list, size_t n, arena *a)
{
    size_t bound = 3;
    for (size_t i = 0; i < n; i++) {
        const reqlog_attempt *at = &list[i];
        bound += 128 + 3 * 25 + json_bound(at->provider) + json_bound(at->model) + json_bound(at->step) +
                 json_bound(at->note) + (at->role ? strlen(at->role) : 5) +
                 (at->outcome ? strlen(at->outcome) : 0);
    }
    char *out = arena_alloc(a, bound), *p = out;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        const reqlog_attempt *at = &list[i];
        p = i ? put_lit(p, ",{\"provider\":") : put_lit(p, "{\"provider\":");
        p = put_json_string(p, at->provider ? at->provider : "", at->provider ? strlen(at->provider) : 0);
        p = put_lit(p, ",\"model\":");
        p = put_json_string(p, at->model ? at->model : "", at->model ? strlen(at->model) : 0);
        if (at->step) {
            p = put_lit(p, ",\"step\":");
            p = put_json_string(p, at->step, strlen(at->step));
        }
        p = put_lit(p, ",\"role\":\"");
        p = put_name(p, at->role ? at->role : "first"); /* literals: nothing to escape */
        p = put_lit(p, "\",\"outcome\":\"");
        p = put_name(p, at->outcome ? at->outcome : "");
        p = put_lit(p, "\",\"status\":");
        p = at->status ? put_int(p, at->status) : put_lit(p, "null");
        p = put_lit(p, ",\"ms\":");
        p = put_milli(p, (long long)(at->ms * 1000 + 0.5));
        p = put_lit(p, ",\"wait_ms\":");
        p = put_milli(p, (long long)(at->wait_ms * 1000 + 0.5));
        if (at->note) {
            p = put_lit(p, ",\"note\":");
            p = put_json_string(p, at->note, strlen(at->note));
        }
        *p++ = '}';
    }
    *p++ = ']';
    *p++ = '\0';
    if ((size_t)(p - out) > bound) abort(); /* the bound is wrong: a bug, never input */
    return out;
}

void reqlog_record_finish(reqlog_record *rec, arena *a)
{
    reqlog_entry *e = &rec->row;
    e->attempts = attempts_json(rec->attempts, rec->nattempts, a);
    if (rec->has_trace) {
        char *hex = arena_alloc(a, 33);
        *put_hex(hex, rec->trace_id, 16) = '\0';
        e->trace_id = hex;
    }
    e->retries = e->fallbacks = 0;
    for (size_t i = 0; i < rec->nattempts; i++) {
        const reqlog_attempt *at = &rec->attempts[i];
        if (!at->role || (at->outcome && !strcmp(at->outcome, "skipped"))) continue;
        e->retries += !strcmp(at->role, "retry");
        e->fallbacks += !strcmp(at->role, "fallback");
    }
    /* an upstream's error passed through has no note of aigw's: say which provider answered what,
     * so the error filter finds it too */
    if (!e->error && e->error_class && e->provider) {
        char *said = arena_alloc(a, 320);
        snprintf(said, 320, "provider %.128s answered %d (%s)", e->provider, e->status, e->error_class);
        e->error = said;
    }
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
