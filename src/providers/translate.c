/* translate.c — the providers module's driver: chooses the fast path or translation for a
 * request and composes the format translators (codec.h) for its request, reply and stream.
 *
 * Invariants: the fast path never parses the body with jansson (only the validating scanner
 * already ran); translation happens only when the formats differ or a parameter rule of the
 * provider applies to the body. Every parameter dropped is named in x-aigw-dropped-params and
 * the access log. A stream being translated keeps its state in an arena `xlate`; each
 * upstream event is decoded to zero or more canonical chunks, each encoded for the client at
 * once, so a translated stream is as incremental as a forwarded one. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "providers/codec.h"
#include "server/http_conn.h"
#include "util/json.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static struct curl_slist *arena_header(request *req, struct curl_slist *next, const char *name,
                                       const char *value, size_t value_len)
{
    size_t nlen = strlen(name);
    char *line = arena_alloc(&req->arena, nlen + 2 + value_len + 1);
    memcpy(line, name, nlen);
    memcpy(line + nlen, ": ", 2);
    memcpy(line + nlen + 2, value, value_len);
    line[nlen + 2 + value_len] = '\0';
    struct curl_slist *node = arena_alloc(&req->arena, sizeof *node);
    node->data = line;
    node->next = next;
    return node;
}

static char *arena_concat(request *req, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *s = arena_alloc(&req->arena, la + lb + lc + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    if (c) memcpy(s + la + lb, c, lc);
    s[la + lb + lc] = '\0';
    return s;
}

void xlate__push_turn(json_t *turns, const char *role, const char *items_key, json_t *items)
{
    size_t n = json_array_size(turns);
    json_t *last = n ? json_array_get(turns, n - 1) : NULL;
    const char *last_role = json_string_value(json_object_get(last, "role"));
    if (last_role && !strcmp(last_role, role)) {
        json_array_extend(json_object_get(last, items_key), items);
        json_decref(items);
        return;
    }
    json_array_append_new(turns, json_pack("{s:s,s:o}", "role", role, items_key, items));
}

json_t *xlate__function_tool(request *req, json_t *tool, const char *schema_key, bool schema_required)
{
    json_t *fn = json_object_get(tool, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    if (!name) {
        xlate__drop(req, "tools[].type");
        return NULL;
    }
    json_t *out = json_pack("{s:s}", "name", name);
    json_t *description = json_object_get(fn, "description");
    if (description) json_object_set(out, "description", description);
    json_t *params = json_object_get(fn, "parameters");
    if (params)
        json_object_set(out, schema_key, params);
    else if (schema_required)
        json_object_set_new(out, schema_key, json_pack("{s:s,s:{}}", "type", "object", "properties"));
    return out;
}

json_t *xlate__call_arguments(json_t *tool_call)
{
    const char *args =
        json_string_value(json_object_get(json_object_get(tool_call, "function"), "arguments"));
    json_error_t jerr;
    json_t *object = args && *args ? json_loads(args, 0, &jerr) : json_object();
    if (json_is_object(object)) return object;
    json_decref(object);
    return NULL;
}

int *xlate__slot(xlate *x, int **map, int *n, long long index, int max)
{
    if (index < 0 || index >= max) return NULL;
    if (index >= *n) {
        int grown = *n ? *n : 16;
        while (grown <= index)
            grown *= 2;
        if (grown > max) grown = max;
        int *m = arena_alloc(&x->req->arena, (size_t)grown * sizeof *m);
        if (*n) memcpy(m, *map, (size_t)*n * sizeof *m);
        for (int i = *n; i < grown; i++)
            m[i] = -1;
        *map = m;
        *n = grown;
    }
    return &(*map)[index];
}

int xlate__lookup(const int *map, int n, long long index)
{
    return index >= 0 && index < n ? map[index] : -1;
}

void xlate__set_id(xlate *x, const char *id)
{
    size_t n = 0;
    for (; *id && n + 1 < sizeof x->id; id++) {
        unsigned char c = (unsigned char)*id;
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') x->id[n++] = (char)c;
    }
    x->id[n] = '\0';
}

void xlate__drop(request *req, const char *param)
{
    /* Each name once, and the list bounded: a body with thousands of unknown keys must not
     * make it (or the time to search it) grow without limit; past the bound it ends "...". */
    enum { DROPPED_MAX = 512, NAME_MAX_BYTES = 64 };
    /* Names come from the client's body and go into a response header: printable ASCII
     * only (no CR/LF, no commas), and short. */
    char name[NAME_MAX_BYTES + 1];
    size_t plen = 0;
    for (const char *p = param; *p && plen < NAME_MAX_BYTES; p++) {
        unsigned char c = (unsigned char)*p;
        name[plen++] = c > 0x20 && c < 0x7f && c != ',' ? (char)c : '?';
    }
    name[plen] = '\0';
    param = plen ? name : "\"\"";
    if (!plen) plen = 2;
    const char *have = req->dropped_params;
    if (!have) {
        req->dropped_params = arena_strndup(&req->arena, param, plen);
        return;
    }
    size_t hlen = strlen(have);
    if (hlen >= 3 && !strcmp(have + hlen - 3, "...")) return;
    for (const char *s = have; (s = strstr(s, param)); s += plen)
        if ((s == have || s[-1] == ',') && (s[plen] == ',' || !s[plen])) return;
    req->dropped_params = arena_concat(req, have, ",", hlen + 1 + plen <= DROPPED_MAX ? param : "...");
}

json_t *xlate__usage(const xlate *x)
{
    const usage_counts *c = &x->req->usage;
    json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)c->prompt, "completion_tokens",
                          (json_int_t)c->completion, "total_tokens", (json_int_t)(c->prompt + c->completion));
    if (c->cached)
        json_object_set_new(u, "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)c->cached));
    if (c->reasoning)
        json_object_set_new(u, "completion_tokens_details",
                            json_pack("{s:I}", "reasoning_tokens", (json_int_t)c->reasoning));
    return u;
}

static json_t *chunk_base(xlate *x)
{
    if (!x->id[0]) snprintf(x->id, sizeof x->id, "chatcmpl-%.54s", x->req->id);
    return json_pack("{s:s,s:s,s:I,s:s}", "id", x->id, "object", "chat.completion.chunk", "created",
                     (json_int_t)x->created, "model", x->model);
}

json_t *xlate__chunk(xlate *x, json_t *delta, const char *finish_reason)
{
    json_t *c = chunk_base(x);
    json_t *choice =
        json_pack("{s:i,s:o,s:o,s:n}", "index", 0, "delta", delta ? delta : json_object(), "finish_reason",
                  finish_reason ? json_string(finish_reason) : json_null(), "logprobs");
    json_object_set_new(c, "choices", json_pack("[o]", choice));
    return c;
}

json_t *xlate__usage_chunk(xlate *x)
{
    json_t *c = chunk_base(x);
    json_object_set_new(c, "choices", json_array());
    json_object_set_new(c, "usage", xlate__usage(x));
    return c;
}

/* ---- presets and parameter rules ------------------------------------------------------- */

/* True when the body has a top-level member a rule of the provider touches (found by the
 * validating scanner, which compares keys as decoded: "se\u0065d" is seed); a body without
 * any stays on the fast path. */
static bool compat_may_apply(const provider_preset *preset, const char *body, size_t len)
{
    if (!preset->compat) return false;
    json_field fields[32];
    size_t n = 0;
    for (const compat_rule *r = preset->compat; r->param && n < 32; r++)
        fields[n++] = (json_field){.key = r->param};
    const char *why;
    size_t at;
    if (!json_scan_object(body, len, fields, n, &why, &at)) return true; /* let the parser say */
    for (size_t i = 0; i < n; i++)
        if (fields[i].type != JSON_KIND_ABSENT) return true;
    return false;
}

static bool preset_drops(const provider_preset *preset, const char *param)
{
    for (const compat_rule *r = preset->compat; r && r->param; r++)
        if (!strcmp(r->param, param)) return r->action == COMPAT_DROP;
    return false;
}

static void compat_apply(request *req, const provider_preset *preset, json_t *canon)
{
    if (!preset->compat) return;
    for (const compat_rule *r = preset->compat; r->param; r++) {
        json_t *v = json_object_get(canon, r->param);
        if (!v) continue;
        if (r->action == COMPAT_RENAME) {
            if (!json_object_get(canon, r->rename_to)) json_object_set(canon, r->rename_to, v);
        } else {
            xlate__drop(req, r->param);
        }
        json_object_del(canon, r->param);
    }
}

/* ---- request ------------------------------------------------------------------------------ */

static const char *endpoint_path(int endpoint)
{
    switch (endpoint) {
    case ENDPOINT_CHAT_COMPLETIONS: return "/v1/chat/completions";
    case ENDPOINT_COMPLETIONS: return "/v1/completions";
    case ENDPOINT_EMBEDDINGS: return "/v1/embeddings";
    case ENDPOINT_MESSAGES: return "/v1/messages";
    default: return "/v1/messages/count_tokens";
    }
}

static const char *format_name(wire_format f)
{
    return f == WIRE_ANTHROPIC ? "Anthropic Messages" : f == WIRE_GEMINI ? "Gemini" : "OpenAI";
}

/* The client's key, from Authorization: Bearer or x-api-key (Anthropic clients send either). */
static bool client_key(const request *req, const char **key, size_t *len)
{
    const http_header *h = http_find_header(req, "authorization");
    if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
        *key = h->value + 7;
        *len = h->value_len - 7;
        return true;
    }
    h = http_find_header(req, "x-api-key");
    if (!h) h = http_find_header(req, "x-goog-api-key");
    if (!h || !h->value_len) return false;
    *key = h->value;
    *len = h->value_len;
    return true;
}

static struct curl_slist *key_header(request *req, struct curl_slist *h, key_style style, const char *key,
                                     size_t len)
{
    switch (style) {
    case KEY_X_API_KEY: return arena_header(req, h, "x-api-key", key, len);
    case KEY_API_KEY: return arena_header(req, h, "api-key", key, len);
    case KEY_GOOGLE: return arena_header(req, h, "x-goog-api-key", key, len);
    default: {
        char *v = arena_alloc(&req->arena, len + 8);
        memcpy(v, "Bearer ", 7);
        memcpy(v + 7, key, len);
        return arena_header(req, h, "Authorization", v, len + 7);
    }
    }
}

static const char *upstream_url(request *req, const provider_config *p, int endpoint, bool stream)
{
    const model_route *route = req->route;
    switch (p->preset->format) {
    case WIRE_ANTHROPIC:
        return arena_concat(req, p->base_url,
                            endpoint == ENDPOINT_COUNT_TOKENS ? "/v1/messages/count_tokens" : "/v1/messages",
                            NULL);
    case WIRE_GEMINI:
        return arena_concat(req, p->base_url, "/v1beta/models/",
                            arena_concat(req, route->upstream_model,
                                         stream ? ":streamGenerateContent?alt=sse" : ":generateContent",
                                         NULL));
    default: break;
    }
    int e = endpoint == ENDPOINT_MESSAGES ? ENDPOINT_CHAT_COMPLETIONS : endpoint;
    if (p->preset->deployments) {
        static const char *const tail[] = {"/chat/completions", "/completions", "/embeddings"};
        char *mid = arena_concat(req, "/openai/deployments/", route->upstream_model, tail[e]);
        return arena_concat(req, p->base_url, mid, arena_concat(req, "?api-version=", p->api_version, NULL));
    }
    return p->urls[e];
}

static bool refuse(provider_error *err, int status, const char *type, const char *code, const char *param,
                   const char *fmt, const char *a, const char *b)
{
    err->status = status;
    err->type = type;
    err->code = code;
    err->param = param;
    snprintf(err->message, sizeof err->message, fmt, a, b);
    return false;
}

/* Splices the upstream model name into the body (alias) or forwards it as it is. */
static void encode_bytes(request *req, size_t model_start, size_t model_end, provider_request *out)
{
    const model_route *route = req->route;
    if (!route->is_alias) {
        out->body = req->payload;
        out->body_len = req->payload_len;
        return;
    }
    buf quoted;
    buf_init(&quoted, route->upstream_model_len * 6 + 2);
    buf_append_json_string(&quoted, route->upstream_model, route->upstream_model_len);
    size_t len = model_start + quoted.len + (req->payload_len - model_end);
    char *body = arena_alloc(&req->arena, len + 1);
    memcpy(body, req->payload, model_start);
    memcpy(body + model_start, quoted.data, quoted.len);
    memcpy(body + model_start + quoted.len, req->payload + model_end, req->payload_len - model_end);
    body[len] = '\0';
    buf_free(&quoted);
    out->body = body;
    out->body_len = len;
}

static bool encode_translated(request *req, provider_request *out, provider_error *err)
{
    const model_route *route = req->route;
    const provider_config *p = route->provider;
    wire_format up = p->preset->format;
    json_error_t jerr;
    json_t *in = json_loadb(req->payload, req->payload_len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(in)) {
        /* The scanner let the body through, so it is JSON that translation cannot hold (a
         * number beyond a double's range, an integer beyond 64 bits): no target that
         * translates could send it. Position and reason only: the body may hold secrets. */
        json_decref(in);
        char at[32];
        snprintf(at, sizeof at, "%d", jerr.position);
        err->whole_request = in == NULL;
        return refuse(err, 400, "invalid_request_error", "invalid_json", NULL,
                      in ? "request body is not a JSON object%s%s"
                      : json_error_code(&jerr) == json_error_numeric_overflow
                          ? "request body has a number out of range (at byte %s)%s"
                          : "request body cannot be translated: invalid JSON at byte %s%s",
                      in ? "" : at, "");
    }
    xlate *x = arena_alloc(&req->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    x->req = req;
    x->ingress = req->ingress;
    x->upstream = up;
    x->model = route->public_name;
    x->created = (int64_t)time(NULL);
    x->open_block = -1;

    json_t *canon = in;
    if (req->ingress == WIRE_ANTHROPIC) {
        canon = anthropic__request_to_canonical(req, in, err);
        json_decref(in);
        if (!canon) return false;
    }
    json_t *so = json_object_get(canon, "stream_options");
    x->include_usage = json_is_true(json_object_get(so, "include_usage"));
    json_t *native = NULL;
    if (up == WIRE_OPENAI) {
        compat_apply(req, p->preset, canon);
        json_object_set_new(canon, "model", json_stringn(route->upstream_model, route->upstream_model_len));
        /* An Anthropic client needs the usage at the end of its stream. */
        if (req->ingress == WIRE_ANTHROPIC && req->stream && !preset_drops(p->preset, "stream_options"))
            json_object_set_new(canon, "stream_options", json_pack("{s:b}", "include_usage", 1));
        native = json_incref(canon);
    } else if (up == WIRE_ANTHROPIC) {
        native = anthropic__request_from_canonical(req, x, canon, route->upstream_model, err);
    } else {
        native = gemini__request_from_canonical(req, x, canon, err);
    }
    json_decref(canon);
    if (!native) return false;
    char *text = json_dumps(native, JSON_COMPACT);
    json_decref(native);
    size_t len = strlen(text);
    char *body = arena_alloc(&req->arena, len + 1);
    memcpy(body, text, len + 1);
    free(text);
    out->body = body;
    out->body_len = len;
    if (req->ingress != up) req->xlate = x;
    return true;
}

bool provider_encode(request *req, size_t model_start, size_t model_end, provider_request *out,
                     provider_error *err)
{
    const model_route *route = req->route;
    const provider_config *p = route->provider;
    wire_format up = p->preset->format;
    int endpoint = req->endpoint;

    if (up != WIRE_OPENAI && (endpoint == ENDPOINT_COMPLETIONS || endpoint == ENDPOINT_EMBEDDINGS))
        return refuse(err, 400, "invalid_request_error", "unsupported_endpoint", "model",
                      "model is served by a %s provider, which has no %s endpoint", format_name(up),
                      endpoint_path(endpoint));
    if (endpoint == ENDPOINT_COUNT_TOKENS && up != WIRE_ANTHROPIC)
        return refuse(err, 400, "invalid_request_error", "unsupported_endpoint", "model",
                      "count_tokens needs an Anthropic provider (%s%s)", p->name, "");

    err->whole_request = false;
    bool fast = req->ingress == up && !compat_may_apply(p->preset, req->payload, req->payload_len);
    if (fast)
        encode_bytes(req, model_start, model_end, out);
    else if (!encode_translated(req, out, err))
        return false;
    out->url = upstream_url(req, p, endpoint, req->stream);

    struct curl_slist *h = p->static_headers;
    const char *key;
    size_t key_len;
    if (!p->api_key && client_key(req, &key, &key_len)) h = key_header(req, h, p->preset->key, key, key_len);
    if (req->ingress == WIRE_ANTHROPIC && up == WIRE_ANTHROPIC) {
        /* Betas name features of the client's own request: they go where it goes unchanged. */
        const http_header *beta = http_find_header(req, "anthropic-beta");
        if (beta) h = arena_header(req, h, "anthropic-beta", beta->value, beta->value_len);
    }
    /* Bodies come back as sent, never encoded: a reply or stream is read and forwarded as it
     * arrives (curl itself advertises no encoding: CURLOPT_ACCEPT_ENCODING is never set). */
    h = arena_header(req, h, "Accept-Encoding", "identity", 8);
    out->headers = arena_header(req, h, "x-request-id", req->id, strlen(req->id));
    return true;
}

/* ---- usage and cost ----------------------------------------------------------------------- */

/* A token count by path ("a.b") from where a usage object lives: a parsed tree, or the raw
 * bytes of the fast path's reply (no parse there: the usage objects of all three formats name
 * each count uniquely, so the path's last name is found with a search). Counts are clamped
 * so sums of them cannot overflow. */
typedef bool (*count_getter)(const void *source, const char *path, long *out);

static long clamp_count(long long n)
{
    return n < 0 ? 0 : n > (1LL << 40) ? (long)(1LL << 40) : (long)n;
}

static bool count_from_tree(const void *source, const char *path, long *out)
{
    json_t *v = (json_t *)source;
    char part[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        v = json_object_get(v, part);
        path += n + (path[n] == '.');
    }
    if (!json_is_integer(v)) return false;
    *out = clamp_count(json_integer_value(v));
    return true;
}

typedef struct byte_span {
    const char *p;
    size_t len;
} byte_span;

static bool count_from_span(const void *source, const char *path, long *out)
{
    const byte_span *span = source;
    const char *name = strrchr(path, '.');
    name = name ? name + 1 : path;
    char key[64];
    int klen = snprintf(key, sizeof key, "\"%s\"", name);
    const char *end = span->p + span->len;
    for (const char *at = span->p; (at = memmem(at, (size_t)(end - at), key, (size_t)klen));) {
        at += klen;
        while (at < end && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r' || *at == ':'))
            at++;
        if (at >= end || *at < '0' || *at > '9') continue;
        long long n = 0;
        while (at < end && *at >= '0' && *at <= '9' && n < (1LL << 50))
            n = n * 10 + (*at++ - '0');
        *out = clamp_count(n);
        return true;
    }
    return false;
}

/* A provider's usage, in its format's meaning, into req->usage (OpenAI's meaning). Only the
 * counts present change: Anthropic streams report input in message_start and output in
 * message_delta. */
static void usage_note_from(request *req, wire_format format, count_getter get, const void *source)
{
    usage_counts *c = &req->usage;
    c->seen = true;
    if (format == WIRE_ANTHROPIC) {
        long input = c->prompt - c->cached - c->cache_write;
        get(source, "input_tokens", &input);
        get(source, "cache_read_input_tokens", &c->cached);
        get(source, "cache_creation_input_tokens", &c->cache_write);
        get(source, "output_tokens", &c->completion);
        c->prompt = input + c->cached + c->cache_write;
    } else if (format == WIRE_GEMINI) {
        long candidates = 0;
        get(source, "promptTokenCount", &c->prompt);
        get(source, "cachedContentTokenCount", &c->cached);
        get(source, "thoughtsTokenCount", &c->reasoning);
        get(source, "candidatesTokenCount", &candidates);
        c->completion = candidates + c->reasoning;
    } else {
        get(source, "prompt_tokens", &c->prompt);
        get(source, "completion_tokens", &c->completion);
        get(source, "prompt_tokens_details.cached_tokens", &c->cached);
        get(source, "completion_tokens_details.reasoning_tokens", &c->reasoning);
    }
}

static void usage_note(request *req, wire_format format, json_t *u)
{
    if (json_is_object(u)) usage_note_from(req, format, count_from_tree, u);
}

static json_t *usage_of(wire_format format, json_t *reply)
{
    if (format == WIRE_GEMINI) return json_object_get(reply, "usageMetadata");
    json_t *u = json_object_get(reply, "usage");
    if (!u && format == WIRE_ANTHROPIC) u = json_object_get(json_object_get(reply, "message"), "usage");
    return u;
}

/* The fast path does not parse replies: the validating scanner finds the top-level usage
 * member and the counts are read from its bytes. */
static void usage_scan(request *req, wire_format format, const char *body, size_t len)
{
    json_field f = {.key = format == WIRE_GEMINI ? "usageMetadata" : "usage"};
    const char *why;
    size_t at;
    if (!json_scan_object(body, len, &f, 1, &why, &at) || f.type != JSON_KIND_OBJECT) return;
    byte_span span = {body + f.start, f.end - f.start};
    usage_note_from(req, format, count_from_span, &span);
}

double provider_cost(const request *req)
{
    return req->route ? catalog_cost(req->route->catalog, &req->usage) : -1;
}

void provider_usage_chunk_cost(const request *req, json_t *chunk)
{
    double cost = provider_cost(req);
    if (cost >= 0) json_object_set_new(chunk, "aigw", json_pack("{s:f}", "cost_usd", cost));
}

/* ---- replies ------------------------------------------------------------------------------ */

void provider_error_body(wire_format format, buf *out, int status, const char *type, const char *code,
                         const char *param, const char *message)
{
    if (format == WIRE_ANTHROPIC)
        anthropic__error_body(out, status, message);
    else
        openai__error_body(out, type, code, param, message);
}

static void dump_into(buf *out, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text) buf_append(out, text, strlen(text));
    free(text);
}

/* The reply cannot be given: a 502 in the client's format instead of it. */
static const char *reply_failed_code(request *req, buf *out, const char *code, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, "provider %s %s", req->route->provider->name, what);
    buf_reset(out);
    provider_error_body(req->ingress, out, 502, "server_error", code, NULL, msg);
    req->status = 502;
    return "application/json";
}

static const char *reply_failed(request *req, buf *out, const char *what)
{
    return reply_failed_code(req, out, "upstream_error", what);
}

static const char *openai_type_for(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

const char *provider_translate_reply(request *req, int status, const char *body, size_t len, buf *out)
{
    xlate *x = req->xlate;
    if (!x) {
        if (status >= 200 && status < 300) usage_scan(req, req->route->provider->preset->format, body, len);
        return NULL;
    }
    json_error_t jerr;
    json_t *reply = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (status < 200 || status >= 300) {
        /* The upstream's message, kept word for word, in the client's error shape. */
        const char *type = NULL, *message = NULL;
        bool parsed = reply && (x->upstream == WIRE_ANTHROPIC ? anthropic__error_parse(reply, &type, &message)
                                : x->upstream == WIRE_GEMINI  ? gemini__error_parse(reply, &type, &message)
                                                              : openai__error_parse(reply, &type, &message));
        char fallback[300];
        if (!parsed) {
            snprintf(fallback, sizeof fallback, "provider %s answered %d: %.*s", req->route->provider->name,
                     status, (int)(len > 200 ? 200 : len), body);
            message = fallback;
            type = status >= 500 ? "server_error" : "invalid_request_error";
        }
        /* Gemini's types are its RPC statuses (RESOURCE_EXHAUSTED): an OpenAI client reads
         * OpenAI's, which follow from the HTTP status as they do at OpenAI. */
        if (x->upstream == WIRE_GEMINI) type = openai_type_for(status);
        provider_error_body(x->ingress, out, status, type ? type : "upstream_error", NULL, NULL, message);
        json_decref(reply);
        return "application/json";
    }
    if (!json_is_object(reply)) {
        json_decref(reply);
        return reply_failed_code(req, out, "upstream_invalid_response",
                                 "sent a reply that is not a JSON object");
    }
    const char *wrong = x->upstream == WIRE_ANTHROPIC ? anthropic__reply_shape(reply)
                        : x->upstream == WIRE_GEMINI  ? gemini__reply_shape(reply)
                                                      : openai__reply_shape(reply);
    if (wrong) {
        json_decref(reply);
        char what[160];
        snprintf(what, sizeof what, "sent a reply of the wrong shape (%s)", wrong);
        return reply_failed_code(req, out, "upstream_invalid_response", what);
    }
    usage_note(req, x->upstream, usage_of(x->upstream, reply));
    json_t *canon = x->upstream == WIRE_ANTHROPIC ? anthropic__reply_to_canonical(x, reply)
                    : x->upstream == WIRE_GEMINI  ? gemini__reply_to_canonical(x, reply)
                                                  : json_incref(reply);
    json_decref(reply);
    if (x->reply_failure) {
        json_decref(canon);
        char what[120];
        snprintf(what, sizeof what, "could not complete the generation (finish reason %.60s)",
                 x->reply_failure);
        return reply_failed(req, out, what);
    }
    json_t *native =
        x->ingress == WIRE_ANTHROPIC ? anthropic__reply_from_canonical(x, canon) : json_incref(canon);
    json_decref(canon);
    dump_into(out, native);
    json_decref(native);
    if (out->overflowed)
        return reply_failed(req, out, "sent a reply that, translated, exceeds limits.max_response_bytes");
    return "application/json";
}

/* ---- streams ------------------------------------------------------------------------------ */

static void encode_chunk(xlate *x, json_t *chunk, buf *out)
{
    if (x->ingress == WIRE_ANTHROPIC)
        anthropic__stream_encode(x, chunk, out);
    else
        openai__stream_encode(x, chunk, out);
}

static void encode_finish(xlate *x, buf *out)
{
    if (x->ingress == WIRE_ANTHROPIC)
        anthropic__stream_finish(x, out);
    else
        openai__stream_finish(x, out);
}

/* The next `data:` line of a raw SSE event from *pos on: its value (a leading space taken
 * off) in *value and *value_len; false when there is none left. */
static bool next_data_line(const char *raw, size_t len, size_t *pos, const char **value, size_t *value_len)
{
    while (*pos < len) {
        size_t i = *pos, e = i;
        while (e < len && raw[e] != '\n' && raw[e] != '\r')
            e++;
        *pos = e;
        if (*pos < len && raw[*pos] == '\r') (*pos)++;
        if (*pos < len && raw[*pos] == '\n') (*pos)++;
        if (e - i >= 5 && !memcmp(raw + i, "data:", 5)) {
            size_t v = i + 5 + (e - i > 5 && raw[i + 5] == ' ');
            *value = raw + v;
            *value_len = e - v;
            return true;
        }
    }
    return false;
}

/* The data of a raw SSE event (data lines joined by \n; other fields and comments skipped).
 * Providers send one data line per event: its value is returned in place, without a copy;
 * only an event of several data lines is joined, in the arena. The result is not
 * NUL-terminated: use its length. */
static void sse_data(request *req, const char *raw, size_t len, const char **data, size_t *data_len)
{
    size_t pos = 0, lines = 0, total = 0, vlen;
    const char *v;
    *data = "";
    *data_len = 0;
    while (next_data_line(raw, len, &pos, &v, &vlen)) {
        if (!lines++) *data = v, *data_len = vlen;
        total += vlen + 1;
    }
    if (lines <= 1) return;
    char *d = arena_alloc(&req->arena, total);
    size_t dl = 0;
    for (pos = 0; next_data_line(raw, len, &pos, &v, &vlen);) {
        if (dl) d[dl++] = '\n';
        memcpy(d + dl, v, vlen);
        dl += vlen;
    }
    *data = d;
    *data_len = dl;
}

/* The event reports usage as an object ("usage":null, sent in every OpenAI chunk when
 * include_usage is on, is not worth a parse). */
static bool mentions_usage(const char *raw, size_t len, wire_format format)
{
    const char *key = format == WIRE_GEMINI ? "\"usageMetadata\"" : "\"usage\"";
    size_t klen = strlen(key);
    for (const char *p = raw, *end = raw + len; (p = memmem(p, (size_t)(end - p), key, klen));) {
        p += klen;
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        if (p < end && *p == '{') return true;
    }
    return false;
}

/* The raw event is an Anthropic `message_stop` (the fast path's end marker there). */
static bool anthropic_event_is_stop(const char *raw, size_t len)
{
    static const char marker[] = "event: message_stop";
    return len >= sizeof marker - 1 && memmem(raw, len, "message_stop", 12) &&
           (!memcmp(raw, marker, sizeof marker - 1) || memmem(raw, len, "\"type\":\"message_stop\"", 22));
}

stream_step provider_stream_event(request *req, const char *raw, size_t len, buf *out, const char **message)
{
    size_t before = out->len;
    xlate *x = req->xlate;
    wire_format up = req->route->provider->preset->format;
    const char *data = NULL;
    size_t data_len = 0;
    /* Usage: only events that report it are parsed on the fast path; a translated event is
     * parsed once, for the decoder and the usage alike. */
    bool has_usage = mentions_usage(raw, len, up);
    json_t *parsed = NULL;
    if (has_usage || x) sse_data(req, raw, len, &data, &data_len);
    if (!x) {
        if (has_usage) {
            json_error_t jerr;
            parsed = json_loadb(data, data_len, 0, &jerr);
            usage_note(req, up, usage_of(up, parsed));
        }
        bool done =
            req->ingress == WIRE_ANTHROPIC ? anthropic_event_is_stop(raw, len) : sse_event_is_done(raw, len);
        const char *brace = NULL;
        double cost = -1;
        if (parsed && up == WIRE_OPENAI && json_is_object(json_object_get(parsed, "usage")) &&
            !json_array_size(json_object_get(parsed, "choices")) && (cost = provider_cost(req)) >= 0)
            brace = memrchr(raw, '}', len);
        if (brace) { /* the usage chunk: the cost goes in as an extra field */
            buf_append(out, raw, (size_t)(brace - raw));
            buf_printf(out, ",\"aigw\":{\"cost_usd\":%.10g}", cost);
            buf_append(out, brace, len - (size_t)(brace - raw));
        } else {
            buf_append(out, raw, len);
        }
        json_decref(parsed);
        return done ? STREAM_DONE : STREAM_MORE;
    }
    if (!data_len) return STREAM_MORE;
    stream_step step;
    if (up == WIRE_OPENAI && data_len == 6 && !memcmp(data, "[DONE]", 6)) {
        step = STREAM_DONE;
    } else {
        json_error_t jerr;
        json_t *ev = json_loadb(data, data_len, 0, &jerr);
        if (!json_is_object(ev)) {
            json_decref(ev);
            *message = "provider sent a stream event that is not a JSON object";
            return STREAM_FAILED;
        }
        if (has_usage) usage_note(req, up, usage_of(up, ev));
        switch (up) {
        case WIRE_ANTHROPIC: step = anthropic__stream_decode(x, ev, encode_chunk, out, message); break;
        case WIRE_GEMINI: step = gemini__stream_decode(x, ev, encode_chunk, out, message); break;
        default: step = openai__stream_decode(x, ev, encode_chunk, out, message); break;
        }
        json_decref(ev);
    }
    if (step == STREAM_DONE) encode_finish(x, out);
    if (x->failure && step != STREAM_FAILED) {
        *message = x->failure;
        step = STREAM_FAILED;
    }
    if (out->overflowed) { /* a translated event outgrew the stream buffer: never half an event */
        out->len = before;
        out->overflowed = false;
        *message = "a translated stream event exceeded the gateway's event size limit";
        return STREAM_FAILED;
    }
    return step;
}

bool provider_stream_finish(request *req, buf *out)
{
    xlate *x = req->xlate;
    if (!x || x->upstream != WIRE_GEMINI) return false;
    if (!gemini__stream_finish(x, encode_chunk, out)) return false;
    encode_finish(x, out);
    return true;
}

void provider_stream_error(const request *req, buf *out, const char *message)
{
    if (req->ingress == WIRE_ANTHROPIC) {
        buf_append_lit(out, "event: error\ndata: ");
        anthropic__error_body(out, 502, message);
        buf_append_lit(out, "\n\n");
        return;
    }
    buf_append_lit(out, "data: {\"error\":{\"message\":");
    buf_append_json_string(out, message, strlen(message));
    buf_append_lit(out, ",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n");
}

/* ---- count_tokens estimate --------------------------------------------------------------- */

static size_t text_bytes(json_t *v)
{
    size_t n = 0, i;
    const char *key;
    json_t *item;
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v);
    case JSON_ARRAY: json_array_foreach(v, i, item) n += text_bytes(item); return n;
    case JSON_OBJECT:
        json_object_foreach(v, key, item)
        {
            /* Images are priced by size, not text; leave their bytes out of a text estimate. */
            if (!strcmp(key, "data") || !strcmp(key, "source")) continue;
            n += strlen(key) + text_bytes(item);
        }
        return n;
    default: return 0;
    }
}

size_t provider_estimate_tokens(const request *req)
{
    json_error_t jerr;
    json_t *in = json_loadb(req->body.data, req->body.len, JSON_ALLOW_NUL, &jerr);
    size_t bytes = text_bytes(json_object_get(in, "system")) + text_bytes(json_object_get(in, "messages")) +
                   text_bytes(json_object_get(in, "tools"));
    json_decref(in);
    return (bytes + 3) / 4;
}
