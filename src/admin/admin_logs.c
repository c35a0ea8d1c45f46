/* admin_logs.c — the request log through the admin API (admin.h): GET /admin/logs (a page of
 * requests, newest first, filtered), GET /admin/logs/{request_id} (one with its attempts and,
 * when kept, its body) and GET /admin/logs/aggregate (totals and latency percentiles per model,
 * provider, key or hour). Rows come from store/request_log.h, on the store's thread.
 *
 * Every input is bounded and checked before the store is asked: the query string at most
 * QUERY_MAX bytes, each value at most VALUE_MAX, only the parameters listed (a misspelt filter is
 * a 400 naming it, not a silently wider answer), each at most once; times as a date, an
 * RFC 3339 UTC time or seconds since 1970; a limit of 1..PAGE_LIMIT_MAX. A 400 is OpenAI's error
 * shape with `param` naming the parameter.
 *
 * The cursor is opaque to clients: 32 hex digits, the last row's (time, seq) — the store's
 * order — so a page after it starts strictly below it, and rows written meanwhile (newer) never
 * shift the pages still to come. Rejected: an offset (rows written or trimmed between two pages
 * would repeat or skip rows). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "admin/admin.h"
#include "store/request_log.h"
#include "util/alloc.h"

#define QUERY_MAX 4096
#define VALUE_MAX 512
#define PARAMS_MAX 16
#define PAGE_LIMIT_DEFAULT 50
#define PAGE_LIMIT_MAX 500
#define CURSOR_LEN 32

/* ---- parsing (pure: tests/unit/test_admin_logs.c) ----------------------------------------------- */

typedef struct log_param {
    char name[16];
    char value[VALUE_MAX + 1];
} log_param;

typedef struct log_query {
    log_param params[PARAMS_MAX];
    size_t n;
} log_query;

/* What went wrong with a request's parameters: the parameter and a sentence. */
typedef struct log_bad {
    char param[16];
    char message[256];
} log_bad;

static bool bad(log_bad *b, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool bad(log_bad *b, const char *param, const char *fmt, ...)
{
    snprintf(b->param, sizeof b->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->message, sizeof b->message, fmt, ap);
    va_end(ap);
    return false;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into out (at most max bytes and a NUL); false when too long, a %
 * escape is broken, or a byte is a control byte. */
static bool decode_component(const char *s, size_t len, char *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len) return false;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f || n == max) return false;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return true;
}

/* The query string split into its parameters, each one of allowed (a NULL-terminated list) and
 * given at most once. */
static bool parse_query(const char *query, const char *const *allowed, log_query *q, log_bad *b)
{
    memset(q, 0, sizeof *q);
    size_t total = strlen(query);
    if (total > QUERY_MAX) return bad(b, "query", "the query string is longer than %d bytes", QUERY_MAX);
    for (const char *p = query; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        if (len) {
            char name[16];
            if (name_len >= sizeof name || !decode_component(p, name_len, name, sizeof name - 1))
                return bad(b, "query", "unknown parameter %.*s", (int)(name_len > 32 ? 32 : name_len), p);
            bool known = false;
            for (const char *const *a = allowed; *a; a++)
                known |= !strcmp(*a, name);
            if (!known) return bad(b, name, "unknown parameter %s", name);
            for (size_t i = 0; i < q->n; i++)
                if (!strcmp(q->params[i].name, name)) return bad(b, name, "%s is given more than once", name);
            if (q->n == PARAMS_MAX) return bad(b, name, "too many parameters");
            log_param *lp = &q->params[q->n++];
            snprintf(lp->name, sizeof lp->name, "%s", name);
            if (eq && !decode_component(eq + 1, len - name_len - 1, lp->value, VALUE_MAX))
                return bad(b, name, "%s: the value is longer than %d bytes or badly escaped", name,
                           VALUE_MAX);
        }
        p = amp ? amp + 1 : p + len;
    }
    return true;
}

/* The value of name, NULL when absent; "" counts as absent too (an empty filter asks nothing). */
static const char *param(const log_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (!strcmp(q->params[i].name, name)) return q->params[i].value[0] ? q->params[i].value : NULL;
    return NULL;
}

/* A time as the API takes it, in microseconds since 1970: seconds since 1970 ("1796585231"), a
 * date ("2026-12-06": its start) or an RFC 3339 UTC time with up to 6 decimals
 * ("2026-12-06T19:27:11.845Z"). */
static bool parse_time_us(const char *text, int64_t *out)
{
    size_t len = strlen(text);
    if (len && len <= 12 && strspn(text, "0123456789") == len) {
        *out = strtoll(text, NULL, 10) * 1000000;
        return true;
    }
    struct tm tm = {0};
    const char *end = strptime(text, "%Y-%m-%d", &tm);
    if (!end || len < 10) return false;
    int64_t frac = 0;
    if (*end) {
        end = strptime(end, "T%H:%M:%S", &tm);
        if (!end) return false;
        if (*end == '.') {
            int digits = 0;
            for (end++; *end >= '0' && *end <= '9'; end++, digits++) {
                if (digits == 6) return false;
                frac = frac * 10 + (*end - '0');
            }
            if (!digits) return false;
            for (; digits < 6; digits++)
                frac *= 10;
        }
        if (strcmp(end, "Z")) return false;
    }
    time_t t = timegm(&tm);
    if (t < 0) return false;
    *out = (int64_t)t * 1000000 + frac;
    return true;
}

/* "429", "4xx", "error" (400–599) or "ok" (100–399) as an inclusive range. */
static bool parse_status(const char *text, int *min, int *max)
{
    if (!strcmp(text, "error")) return *min = 400, *max = 599, true;
    if (!strcmp(text, "ok")) return *min = 100, *max = 399, true;
    if (strlen(text) != 3 || text[0] < '1' || text[0] > '5') return false;
    if (!strcmp(text + 1, "xx")) {
        *min = (text[0] - '0') * 100;
        *max = *min + 99;
        return true;
    }
    if (!isdigit((unsigned char)text[1]) || !isdigit((unsigned char)text[2])) return false;
    *min = *max = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    return true;
}

/* The cursor after a row: 32 lowercase hex digits, its time and its seq (out: CURSOR_LEN + 1). */
static void cursor_encode(int64_t time_us, int64_t seq, char *out)
{
    snprintf(out, CURSOR_LEN + 1, "%016llx%016llx", (unsigned long long)time_us, (unsigned long long)seq);
}

static bool cursor_decode(const char *text, int64_t *time_us, int64_t *seq)
{
    if (strlen(text) != CURSOR_LEN) return false;
    uint64_t v[2] = {0, 0};
    for (int i = 0; i < CURSOR_LEN; i++) {
        int h = hex_value(text[i]);
        if (h < 0 || (text[i] >= 'A' && text[i] <= 'F')) return false;
        v[i / 16] = v[i / 16] << 4 | (uint64_t)h;
    }
    if (v[0] > INT64_MAX || v[1] > INT64_MAX) return false;
    *time_us = (int64_t)v[0];
    *seq = (int64_t)v[1];
    return true;
}

static const char *const list_params[] = {"key",   "team",  "model", "provider", "status", "since",
                                          "until", "error", "limit", "cursor",   NULL};

/* The list's parameters as a store filter (its strings point into q). */
static bool parse_list(const char *query, log_query *q, reqlog_filter *f, log_bad *b)
{
    memset(f, 0, sizeof *f);
    if (!parse_query(query, list_params, q, b)) return false;
    f->key = param(q, "key");
    f->team = param(q, "team");
    f->model = param(q, "model");
    f->provider = param(q, "provider");
    f->error_text = param(q, "error");
    const char *v;
    if ((v = param(q, "status")) && !parse_status(v, &f->status_min, &f->status_max))
        return bad(b, "status", "status must be a code (429), a class (5xx), error or ok");
    if ((v = param(q, "since")) && !parse_time_us(v, &f->since_us))
        return bad(b, "since",
                   "since must be a date (2026-12-06), a UTC time (2026-12-06T16:00:00Z, up to 6 decimals) "
                   "or seconds since 1970");
    if ((v = param(q, "until")) && !parse_time_us(v, &f->until_us))
        return bad(b, "until",
                   "until must be a date (2026-12-06), a UTC time (2026-12-06T16:00:00Z, up to 6 decimals) "
                   "or seconds since 1970");
    if (f->since_us && f->until_us && f->until_us <= f->since_us)
        return bad(b, "until", "until must be later than since");
    f->limit = PAGE_LIMIT_DEFAULT;
    if ((v = param(q, "limit"))) {
        size_t len = strlen(v);
        if (!len || len > 4 || strspn(v, "0123456789") != len || strtol(v, NULL, 10) < 1 ||
            strtol(v, NULL, 10) > PAGE_LIMIT_MAX)
            return bad(b, "limit", "limit must be a number from 1 to %d", PAGE_LIMIT_MAX);
        f->limit = (int)strtol(v, NULL, 10);
    }
    if ((v = param(q, "cursor"))) {
        if (!cursor_decode(v, &f->cursor_time_us, &f->cursor_seq))
            return bad(b, "cursor", "cursor must be a next_cursor this API gave");
        f->after = true;
    }
    return true;
}

/* ---- answers ---------------------------------------------------------------------------------- */

static void reply(admin_reply *out, int status, json_t *j)
{
    out->status = status;
    out->body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->len = strlen(out->body);
    json_decref(j);
}

static void reply_bad(admin_reply *out, const log_bad *b)
{
    reply(out, 400,
          json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "message", b->message, "type", "invalid_request_error",
                    "param", b->param, "code", "invalid_parameter"));
}

static void reply_store_failed(admin_reply *out, store *s)
{
    char msg[600];
    snprintf(msg, sizeof msg, "the store failed: %s", store_error(s));
    reply(out, 500,
          json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type", "server_error", "param", "code",
                    "store_error"));
}

/* A time in microseconds as "2026-12-06T19:27:11.845855Z". */
static json_t *time_us_json(int64_t us)
{
    char text[40];
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, sizeof text - n, ".%06lldZ", (long long)(us % 1000000));
    return json_string(text);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Microseconds as milliseconds with 3 decimals; negative: null. */
static json_t *ms_json(int64_t us)
{
    return us < 0 ? json_null() : json_real((double)us / 1000.0);
}

static json_t *entry_json(const reqlog_entry *e, bool detail)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(e->request_id ? e->request_id : ""));
    json_object_set_new(j, "time", time_us_json(e->time_us));
    json_object_set_new(j, "trace_id", str_or_null(e->trace_id));
    json_object_set_new(j, "key_id", str_or_null(e->key_id));
    json_object_set_new(j, "key_alias", str_or_null(e->key_alias));
    json_object_set_new(j, "team_id", str_or_null(e->team));
    json_object_set_new(j, "method", str_or_null(e->method));
    json_object_set_new(j, "path", str_or_null(e->path));
    json_object_set_new(j, "route", str_or_null(e->route));
    json_object_set_new(j, "provider", str_or_null(e->provider));
    json_object_set_new(j, "model", str_or_null(e->model));
    json_object_set_new(j, "upstream_model", str_or_null(e->upstream_model));
    json_object_set_new(j, "status", json_integer(e->status));
    json_object_set_new(j, "error_class", str_or_null(e->error_class));
    json_object_set_new(j, "error", str_or_null(e->error));
    json_object_set_new(j, "stream", json_boolean(e->stream));
    json_object_set_new(j, "usage",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "prompt_tokens", (json_int_t)e->prompt_tokens,
                                  "completion_tokens", (json_int_t)e->completion_tokens, "total_tokens",
                                  (json_int_t)(e->prompt_tokens + e->completion_tokens), "cached_tokens",
                                  (json_int_t)e->cached_tokens, "cache_write_tokens",
                                  (json_int_t)e->cache_write_tokens, "reasoning_tokens",
                                  (json_int_t)e->reasoning_tokens));
    json_object_set_new(j, "cost_usd", e->cost_usd < 0 ? json_null() : json_real(e->cost_usd));
    json_object_set_new(j, "cache", str_or_null(e->cache));
    json_object_set_new(j, "prompt", str_or_null(e->prompt_id));
    json_object_set_new(j, "prompt_version", e->prompt_id ? json_integer(e->prompt_version) : json_null());
    json_object_set_new(j, "route_reason", str_or_null(e->route_reason));
    json_object_set_new(j, "retries", json_integer(e->retries));
    json_object_set_new(j, "fallbacks", json_integer(e->fallbacks));
    json_object_set_new(j, "ttfb_ms", ms_json(e->ttfb_us));
    json_object_set_new(j, "total_ms", ms_json(e->total_us));
    json_object_set_new(j, "overhead_ms", ms_json(e->overhead_us));
    buf text;
    buf_init(&text, 16u << 20); /* the JSON of a packed list is a few times its bytes */
    json_t *attempts = reqlog_attempts_json(e->attempts, &text) ? json_loads(text.data, 0, NULL) : NULL;
    buf_free(&text);
    json_object_set_new(j, "attempts",
                        json_is_array(attempts) ? attempts : (json_decref(attempts), json_array()));
    if (detail) {
        json_t *body = e->request_body ? json_loads(e->request_body, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(j, "request_body", body ? body : json_null());
    }
    return j;
}

/* ---- the operations --------------------------------------------------------------------------- */

typedef struct page {
    json_t *data;
    int wanted; /* the client's limit: one more row was asked, to know whether there are more */
    int got;
    int64_t last_time_us, last_seq;
} page;

static void on_page_row(const reqlog_entry *e, void *ud)
{
    page *p = ud;
    if (++p->got > p->wanted) return;
    json_array_append_new(p->data, entry_json(e, false));
    p->last_time_us = e->time_us;
    p->last_seq = e->seq;
}

/* GET /admin/logs */
static void logs_list(store *s, const admin_request *req, admin_reply *out)
{
    log_query q;
    reqlog_filter f;
    log_bad b;
    if (!parse_list(req->query, &q, &f, &b)) {
        reply_bad(out, &b);
        return;
    }
    page p = {.data = json_array(), .wanted = f.limit};
    f.limit++;
    if (store_reqlog_list(s, &f, on_page_row, &p) != STORE_OK) {
        json_decref(p.data);
        reply_store_failed(out, s);
        return;
    }
    bool more = p.got > p.wanted;
    char cursor[CURSOR_LEN + 1];
    if (more) cursor_encode(p.last_time_us, p.last_seq, cursor);
    reply(out, 200,
          json_pack("{s:s,s:o,s:b,s:o}", "object", "list", "data", p.data, "has_more", more, "next_cursor",
                    more ? json_string(cursor) : json_null()));
}

static void on_one_row(const reqlog_entry *e, void *ud)
{
    *(json_t **)ud = entry_json(e, true);
}

/* GET /admin/logs/{request_id} */
static void logs_show(store *s, const char *id, admin_reply *out)
{
    json_t *j = NULL;
    store_result r = store_reqlog_get(s, id, on_one_row, &j);
    if (r == STORE_OK && j) {
        reply(out, 200, j);
        return;
    }
    json_decref(j);
    if (r == STORE_ERROR) {
        reply_store_failed(out, s);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "no request %.200s in the request log", id);
    reply(out, 404,
          json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type", "not_found_error", "param",
                    "code", "request_not_found"));
}

typedef struct aggregate_ctx {
    const char *by;
    json_t *data;
} aggregate_ctx;

static void on_group(const char *group, const reqlog_totals *t, void *ud)
{
    aggregate_ctx *c = ud;
    json_t *row = json_object();
    if (!strcmp(c->by, "hour"))
        json_object_set_new(row, "hour", time_us_json(strtoll(group, NULL, 10) * 1000000));
    else
        json_object_set_new(row, !strcmp(c->by, "key") ? "key_id" : c->by,
                            *group ? json_string(group) : json_null());
    json_object_set_new(row, "requests", json_integer(t->requests));
    json_object_set_new(row, "errors", json_integer(t->errors));
    json_object_set_new(row, "prompt_tokens", json_integer(t->prompt_tokens));
    json_object_set_new(row, "completion_tokens", json_integer(t->completion_tokens));
    json_object_set_new(row, "total_tokens", json_integer(t->prompt_tokens + t->completion_tokens));
    json_object_set_new(row, "cached_tokens", json_integer(t->cached_tokens));
    json_object_set_new(row, "reasoning_tokens", json_integer(t->reasoning_tokens));
    json_object_set_new(row, "cost_usd", json_real(t->cost_usd));
    json_object_set_new(row, "p50_ms", ms_json(t->p50_us));
    json_object_set_new(row, "p95_ms", ms_json(t->p95_us));
    json_array_append_new(c->data, row);
}

static const char *const aggregate_params[] = {"by", "since", "until", NULL};

/* GET /admin/logs/aggregate?by=model|provider|key|hour&since=&until= */
static void logs_aggregate(store *s, const admin_request *req, admin_reply *out)
{
    log_query q;
    log_bad b;
    int64_t since = 0, until = 0;
    const char *by, *v;
    if (!parse_query(req->query, aggregate_params, &q, &b)) goto refused;
    by = param(&q, "by");
    if (!by) by = "model";
    if (strcmp(by, "model") && strcmp(by, "provider") && strcmp(by, "key") && strcmp(by, "hour")) {
        bad(&b, "by", "by must be model, provider, key or hour");
        goto refused;
    }
    if ((v = param(&q, "since")) && !parse_time_us(v, &since)) {
        bad(&b, "since", "since must be a date, a UTC time (2026-12-06T16:00:00Z) or seconds since 1970");
        goto refused;
    }
    if ((v = param(&q, "until")) && !parse_time_us(v, &until)) {
        bad(&b, "until", "until must be a date, a UTC time (2026-12-06T16:00:00Z) or seconds since 1970");
        goto refused;
    }
    aggregate_ctx c = {.by = by, .data = json_array()};
    bool sampled = false;
    if (store_reqlog_aggregate(s, by, since, until, on_group, &c, &sampled) != STORE_OK) {
        json_decref(c.data);
        reply_store_failed(out, s);
        return;
    }
    reply(out, 200,
          json_pack("{s:s,s:o,s:o,s:o,s:b}", "by", by, "since", since ? time_us_json(since) : json_null(),
                    "until", until ? time_us_json(until) : json_null(), "data", c.data, "sampled", sampled));
    return;
refused:
    reply_bad(out, &b);
}

void admin__logs(store *s, const admin_request *req, const char *id, admin_reply *out)
{
    if (!strcmp(req->path, "/admin/logs"))
        logs_list(s, req, out);
    else if (!strcmp(req->path, "/admin/logs/aggregate"))
        logs_aggregate(s, req, out);
    else
        logs_show(s, id, out);
}
