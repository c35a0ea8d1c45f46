/* translate.c — the providers module's driver: chooses the fast path or translation for a
 * request and composes the format translators (codec.h) for its request, reply and stream.
 * It knows no format: each step looks up the client's or the provider's row of wire_codecs
 * (below) and calls it, so adding a format touches nothing here but the table.
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
#include "util/json.h"
#include "util/units.h"

/* One row per wire_format, each defined in its format's file. */
const wire_codec *const wire_codecs[WIRE__COUNT] = {
    [WIRE_OPENAI] = &openai__codec,
    [WIRE_ANTHROPIC] = &anthropic__codec,
    [WIRE_GEMINI] = &gemini__codec,
    [WIRE_RESPONSES] = &responses__codec,
};

bool provider_serves_responses(const provider_config *p)
{
    if (p->responses != RESPONSES_AUTO) return p->responses == RESPONSES_NATIVE;
    return p->preset->responses && p->preset->base_url && !strcmp(p->base_url, p->preset->base_url);
}

/* The format the attempt's provider is spoken to in: its preset's, or the Responses API
 * itself for a Responses request to a provider that serves it. */
static wire_format upstream_format(const codec_ctx *ctx)
{
    const provider_config *p = ctx->route->provider;
    if (ctx->endpoint == ENDPOINT_RESPONSES && provider_serves_responses(p)) return WIRE_RESPONSES;
    return p->preset->format;
}

/* The row of the provider the attempt's route names. */
static const wire_codec *provider_codec(const codec_ctx *ctx)
{
    return wire_codecs[upstream_format(ctx)];
}

/* ---- small helpers ------------------------------------------------------------------------ */

static struct curl_slist *arena_header(codec_ctx *ctx, struct curl_slist *next, const char *name,
                                       const char *value, size_t value_len)
{
    size_t nlen = strlen(name);
    char *line = arena_alloc(ctx->arena, nlen + 2 + value_len + 1);
    memcpy(line, name, nlen);
    memcpy(line + nlen, ": ", 2);
    memcpy(line + nlen + 2, value, value_len);
    line[nlen + 2 + value_len] = '\0';
    struct curl_slist *node = arena_alloc(ctx->arena, sizeof *node);
    node->data = line;
    node->next = next;
    return node;
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

static void compat_apply(codec_ctx *ctx, const provider_preset *preset, json_t *canon)
{
    if (!preset->compat) return;
    for (const compat_rule *r = preset->compat; r->param; r++) {
        json_t *v = json_object_get(canon, r->param);
        if (!v) continue;
        if (r->action == COMPAT_RENAME) {
            if (!json_object_get(canon, r->rename_to)) json_object_set(canon, r->rename_to, v);
        } else {
            xlate__drop(ctx, r->param);
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
    case ENDPOINT_RESPONSES: return "/v1/responses";
    default: return "/v1/messages/count_tokens";
    }
}

/* The client's key, from Authorization: Bearer or x-api-key (Anthropic clients send either). */
static bool client_key(const codec_ctx *ctx, const char **key, size_t *len)
{
    const http_header *h = http_header_find(ctx->headers, ctx->nheaders, "authorization");
    if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
        *key = h->value + 7;
        *len = h->value_len - 7;
        return true;
    }
    h = http_header_find(ctx->headers, ctx->nheaders, "x-api-key");
    if (!h) h = http_header_find(ctx->headers, ctx->nheaders, "x-goog-api-key");
    if (!h || !h->value_len) return false;
    *key = h->value;
    *len = h->value_len;
    return true;
}

/* How each key_style (a preset's, wire.h) puts the key in a header. */
static const struct {
    const char *name, *prefix;
} key_headers[] = {
    [KEY_BEARER] = {"Authorization", "Bearer "},
    [KEY_X_API_KEY] = {"x-api-key", ""},
    [KEY_API_KEY] = {"api-key", ""},
    [KEY_GOOGLE] = {"x-goog-api-key", ""},
};

static struct curl_slist *key_header(codec_ctx *ctx, struct curl_slist *h, key_style style, const char *key,
                                     size_t len)
{
    size_t plen = strlen(key_headers[style].prefix);
    char *v = arena_alloc(ctx->arena, plen + len + 1);
    memcpy(v, key_headers[style].prefix, plen);
    memcpy(v + plen, key, len);
    return arena_header(ctx, h, key_headers[style].name, v, plen + len);
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
static void encode_bytes(codec_ctx *ctx, provider_request *out)
{
    const model_route *route = ctx->route;
    size_t model_start = ctx->model_start, model_end = ctx->model_end;
    if (!route->is_alias) {
        out->body = ctx->payload;
        out->body_len = ctx->payload_len;
        return;
    }
    buf quoted;
    buf_init(&quoted, route->upstream_model_len * 6 + 2);
    buf_append_json_string(&quoted, route->upstream_model, route->upstream_model_len);
    size_t len = model_start + quoted.len + (ctx->payload_len - model_end);
    char *body = arena_alloc(ctx->arena, len + 1);
    memcpy(body, ctx->payload, model_start);
    memcpy(body + model_start, quoted.data, quoted.len);
    memcpy(body + model_start + quoted.len, ctx->payload + model_end, ctx->payload_len - model_end);
    body[len] = '\0';
    buf_free(&quoted);
    out->body = body;
    out->body_len = len;
}

/* A client's body (in ctx->ingress's format) parsed and, for a non-canonical format, turned into
 * the canonical request; NULL with *err filled when it cannot be. */
static json_t *to_canonical(codec_ctx *ctx, xlate *x, const char *body, size_t len, provider_error *err)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(in)) {
        /* The scanner let the body through, so it is JSON that translation cannot hold (a
         * number beyond a double's range, an integer beyond 64 bits): no target that
         * translates could send it. Position and reason only: the body may hold secrets. */
        json_decref(in);
        char at[32];
        snprintf(at, sizeof at, "%d", jerr.position);
        err->whole_request = in == NULL;
        refuse(err, 400, "invalid_request_error", "invalid_json", NULL,
               in ? "request body is not a JSON object%s%s"
               : json_error_code(&jerr) == json_error_numeric_overflow
                   ? "request body has a number out of range (at byte %s)%s"
                   : "request body cannot be translated: invalid JSON at byte %s%s",
               in ? "" : at, "");
        return NULL;
    }
    const wire_codec *client = wire_codecs[ctx->ingress];
    if (!client->request_to_canonical) return in;
    json_t *canon = client->request_to_canonical(ctx, x, in, err);
    json_decref(in);
    return canon;
}

static bool encode_translated(codec_ctx *ctx, provider_request *out, provider_error *err)
{
    const model_route *route = ctx->route;
    const provider_config *p = route->provider;
    wire_format up = upstream_format(ctx);
    xlate *x = arena_alloc(ctx->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    x->ctx = ctx;
    x->ingress = ctx->ingress;
    x->upstream = up;
    x->model = route->public_name;
    x->created = (int64_t)time(NULL);
    x->open_block = -1;
    json_t *canon = to_canonical(ctx, x, ctx->payload, ctx->payload_len, err);
    if (!canon) return false;

    json_t *so = json_object_get(canon, "stream_options");
    x->include_usage = json_is_true(json_object_get(so, "include_usage"));
    compat_apply(ctx, p->preset, canon);
    json_t *native = wire_codecs[up]->request_from_canonical(ctx, x, canon, err);
    json_decref(canon);
    if (!native) return false;
    out->body = xlate__arena_json(ctx, native, &out->body_len);
    json_decref(native);
    if (ctx->ingress != up) ctx->xlate = x;
    return true;
}

bool provider_encode(codec_ctx *ctx, provider_request *out, provider_error *err)
{
    const model_route *route = ctx->route;
    const provider_config *p = route->provider;
    wire_format up = upstream_format(ctx);
    const wire_codec *codec = wire_codecs[up];
    int endpoint = ctx->endpoint;

    if (!(codec->endpoints & WIRE_ENDPOINT(endpoint))) {
        if (endpoint == ENDPOINT_COUNT_TOKENS)
            return refuse(err, 400, "invalid_request_error", "unsupported_endpoint", "model",
                          "count_tokens needs an Anthropic provider (%s%s)", p->name, "");
        return refuse(err, 400, "invalid_request_error", "unsupported_endpoint", "model",
                      "model is served by a %s provider, which has no %s endpoint", codec->name,
                      endpoint_path(endpoint));
    }

    err->whole_request = false;
    /* A format no canonical request becomes (the Responses API) is only ever forwarded. */
    bool fast = ctx->ingress == up && (!codec->request_from_canonical ||
                                       !compat_may_apply(p->preset, ctx->payload, ctx->payload_len));
    if (fast)
        encode_bytes(ctx, out);
    else if (!encode_translated(ctx, out, err))
        return false;
    out->url = codec->url(ctx);

    struct curl_slist *h = p->static_headers;
    const char *key;
    size_t key_len;
    /* A keyless provider gets the client's own key — unless gateway auth is on: then that key
     * is aigw's and must never leave it. */
    if (ctx->provider_key)
        h = key_header(ctx, h, p->preset->key, ctx->provider_key, ctx->provider_key_len);
    else if (!p->api_key && !p->virtual_key && !ctx->gateway_auth && client_key(ctx, &key, &key_len))
        h = key_header(ctx, h, p->preset->key, key, key_len);
    if (ctx->ingress == up && codec->own_header) {
        /* Betas name features of the client's own request: they go where it goes unchanged. */
        const http_header *own = http_header_find(ctx->headers, ctx->nheaders, codec->own_header);
        if (own) h = arena_header(ctx, h, codec->own_header, own->value, own->value_len);
    }
    /* Bodies come back as sent, never encoded: a reply or stream is read and forwarded as it
     * arrives (curl itself advertises no encoding: CURLOPT_ACCEPT_ENCODING is never set). */
    h = arena_header(ctx, h, "Accept-Encoding", "identity", 8);
    out->headers = arena_header(ctx, h, "x-request-id", ctx->request_id, strlen(ctx->request_id));
    return true;
}

/* ---- usage and cost ----------------------------------------------------------------------- */

/* The two count_getters (codec.h): a parsed tree, or the raw bytes of the fast path's reply
 * (no parse there: the usage objects of all three formats name each count uniquely, so the
 * path's last name is found with a search). Counts are clamped so sums of them cannot
 * overflow. A format whose usage names a count twice needs a real parse here. */
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
    size_t klen = strlen(name); /* found between quotes, without formatting the key */
    const char *end = span->p + span->len;
    for (const char *at = span->p; (at = memmem(at, (size_t)(end - at), name, klen));) {
        bool quoted = at > span->p && at[-1] == '"' && at + klen < end && at[klen] == '"';
        at += klen;
        if (!quoted) continue;
        at++;
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

/* A provider's usage, in its format's meaning, into ctx->usage (OpenAI's meaning). */
static void usage_note_from(codec_ctx *ctx, const wire_codec *codec, count_getter get, const void *source)
{
    ctx->usage.seen = true;
    codec->usage_note(&ctx->usage, get, source);
}

static void usage_note(codec_ctx *ctx, const wire_codec *codec, json_t *message)
{
    json_t *u = codec->usage_in(message);
    if (json_is_object(u)) usage_note_from(ctx, codec, count_from_tree, u);
}

void xlate__note_usage(codec_ctx *ctx, const wire_codec *codec, json_t *message)
{
    usage_note(ctx, codec, message);
}

/* The fast path does not parse replies: the validating scanner finds the top-level usage
 * member and the counts are read from its bytes. */
static void usage_scan(codec_ctx *ctx, const wire_codec *codec, const char *body, size_t len)
{
    json_field f = {.key = codec->usage_key};
    const char *why;
    size_t at;
    if (!json_scan_object(body, len, &f, 1, &why, &at) || f.type != JSON_KIND_OBJECT) return;
    byte_span span = {body + f.start, f.end - f.start};
    usage_note_from(ctx, codec, count_from_span, &span);
}

void xlate__scan_usage(codec_ctx *ctx, const wire_codec *codec, const char *body, size_t len)
{
    usage_scan(ctx, codec, body, len);
}

double provider_cost(const codec_ctx *ctx)
{
    return ctx->route ? catalog_cost(ctx->route->catalog, &ctx->usage) : -1;
}

void provider_usage_chunk_cost(const codec_ctx *ctx, json_t *chunk)
{
    double cost = provider_cost(ctx);
    if (cost >= 0) json_object_set_new(chunk, "aigw", json_pack("{s:f}", "cost_usd", cost));
}

/* ---- replies ------------------------------------------------------------------------------ */

void provider_error_body(wire_format format, buf *out, int status, const char *type, const char *code,
                         const char *param, const char *message)
{
    wire_codecs[format]->error_body(out, status, type, code, param, message);
}

/* The reply cannot be given: a 502 in the client's format instead of it. */
static const char *reply_failed_code(codec_ctx *ctx, buf *out, const char *code, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, "provider %s %s", ctx->route->provider->name, what);
    buf_reset(out);
    provider_error_body(ctx->ingress, out, 502, "server_error", code, NULL, msg);
    ctx->reply_status = 502;
    return "application/json";
}

static const char *reply_failed(codec_ctx *ctx, buf *out, const char *what)
{
    return reply_failed_code(ctx, out, "upstream_error", what);
}

const char *provider_translate_reply(codec_ctx *ctx, int status, const char *body, size_t len, buf *out)
{
    xlate *x = ctx->xlate;
    const wire_codec *up = provider_codec(ctx);
    ctx->reply_status = status;
    if (!x) {
        if (status >= 200 && status < 300) usage_scan(ctx, up, body, len);
        return NULL;
    }
    const wire_codec *client = wire_codecs[x->ingress];
    json_error_t jerr;
    json_t *reply = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (status < 200 || status >= 300) {
        /* The upstream's message, kept word for word, in the client's error shape. */
        const char *type = NULL, *message = NULL;
        bool parsed = reply && up->error_parse(reply, &type, &message);
        char fallback[300];
        if (!parsed) {
            snprintf(fallback, sizeof fallback, "provider %s answered %d: %.*s", ctx->route->provider->name,
                     status, (int)(len > 200 ? 200 : len), body);
            message = fallback;
            type = status >= 500 ? "server_error" : "invalid_request_error";
        }
        if (up->error_type) type = up->error_type(status); /* the format's types are not OpenAI's */
        provider_error_body(x->ingress, out, status, type ? type : "upstream_error", NULL, NULL, message);
        json_decref(reply);
        return "application/json";
    }
    if (!json_is_object(reply)) {
        json_decref(reply);
        return reply_failed_code(ctx, out, "upstream_invalid_response",
                                 "sent a reply that is not a JSON object");
    }
    const char *wrong = up->reply_shape(reply);
    if (wrong) {
        json_decref(reply);
        char what[160];
        snprintf(what, sizeof what, "sent a reply of the wrong shape (%s)", wrong);
        return reply_failed_code(ctx, out, "upstream_invalid_response", what);
    }
    usage_note(ctx, up, reply);
    json_t *canon = up->reply_to_canonical ? up->reply_to_canonical(x, reply) : json_incref(reply);
    json_decref(reply);
    if (x->reply_failure) {
        json_decref(canon);
        char what[120];
        snprintf(what, sizeof what, "could not complete the generation (finish reason %.60s)",
                 x->reply_failure);
        return reply_failed(ctx, out, what);
    }
    if (client->reply_from_canonical)
        client->reply_from_canonical(x, canon, out);
    else
        xlate__append_json(out, canon);
    json_decref(canon);
    if (out->overflowed)
        return reply_failed(ctx, out, "sent a reply that, translated, exceeds limits.max_response_bytes");
    return "application/json";
}

/* ---- streams ------------------------------------------------------------------------------ */

/* The decoders' sink: each canonical chunk becomes the client's events at once. */
static void encode_chunk(xlate *x, json_t *chunk, buf *out)
{
    wire_codecs[x->ingress]->stream_encode(x, chunk, out);
}

static void encode_finish(xlate *x, buf *out)
{
    wire_codecs[x->ingress]->stream_encode_finish(x, out);
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
static void sse_data(codec_ctx *ctx, const char *raw, size_t len, const char **data, size_t *data_len)
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
    char *d = arena_alloc(ctx->arena, total);
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
static bool mentions_usage(const char *raw, size_t len, const wire_codec *codec)
{
    const char *key = codec->usage_key; /* found between quotes: "usage" (no formatting per event) */
    size_t klen = strlen(key);
    for (const char *p = raw, *end = raw + len; (p = memmem(p, (size_t)(end - p), key, klen));) {
        bool quoted = p > raw && p[-1] == '"' && p + klen < end && p[klen] == '"';
        p += klen;
        if (!quoted) continue;
        p++;
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        if (p < end && *p == '{') return true;
    }
    return false;
}

stream_step provider_stream_event(codec_ctx *ctx, const char *raw, size_t len, buf *out, const char **message)
{
    size_t before = out->len;
    xlate *x = ctx->xlate;
    const wire_codec *up = provider_codec(ctx);
    const char *data = NULL;
    size_t data_len = 0;
    /* Usage: only events that report it are parsed on the fast path; a translated event is
     * parsed once, for the decoder and the usage alike. */
    bool has_usage = mentions_usage(raw, len, up);
    json_t *parsed = NULL;
    if (has_usage || x) sse_data(ctx, raw, len, &data, &data_len);
    if (!x) {
        if (has_usage) {
            json_error_t jerr;
            parsed = json_loadb(data, data_len, 0, &jerr);
            usage_note(ctx, up, parsed);
        }
        /* The fast path: the client speaks the provider's format, so one row serves both. */
        bool done = up->stream_is_end && up->stream_is_end(raw, len);
        const char *brace = NULL;
        double cost = -1;
        if (parsed && up->stream_is_usage_chunk && up->stream_is_usage_chunk(parsed) &&
            (cost = provider_cost(ctx)) >= 0)
            brace = memrchr(raw, '}', len);
        if (brace) { /* the usage chunk: the cost goes in as an extra field */
            buf_append(out, raw, (size_t)(brace - raw));
            char usd[UNITS_DECIMAL_MAX];
            units_format_decimal(usd, cost);
            buf_printf(out, ",\"aigw\":{\"cost_usd\":%s}", usd);
            buf_append(out, brace, len - (size_t)(brace - raw));
        } else {
            buf_append(out, raw, len);
        }
        json_decref(parsed);
        return done ? STREAM_DONE : STREAM_MORE;
    }
    if (!data_len) return STREAM_MORE;
    stream_step step;
    if (up->end_data && data_len == strlen(up->end_data) && !memcmp(data, up->end_data, data_len)) {
        step = STREAM_DONE;
    } else {
        json_error_t jerr;
        json_t *ev = json_loadb(data, data_len, 0, &jerr);
        if (!json_is_object(ev)) {
            json_decref(ev);
            *message = "provider sent a stream event that is not a JSON object";
            return STREAM_FAILED;
        }
        if (has_usage) usage_note(ctx, up, ev);
        step = up->stream_decode(x, ev, encode_chunk, out, message);
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

bool provider_stream_finish(codec_ctx *ctx, buf *out)
{
    xlate *x = ctx->xlate;
    if (!x) return false; /* the fast path: the client's own format ends its stream */
    const wire_codec *up = wire_codecs[x->upstream];
    if (!up->stream_decode_finish || !up->stream_decode_finish(x, encode_chunk, out)) return false;
    encode_finish(x, out);
    return true;
}

void provider_stream_error(const codec_ctx *ctx, buf *out, const char *message)
{
    wire_codecs[ctx->ingress]->stream_error(ctx->xlate, out, message);
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

size_t provider_estimate_tokens(const codec_ctx *ctx)
{
    json_error_t jerr;
    json_t *in = json_loadb(ctx->body, ctx->body_len, JSON_ALLOW_NUL, &jerr);
    size_t bytes = 0;
    static const char *const text_members[] = {"system", "messages", "tools", "instructions", "input"};
    for (size_t i = 0; i < sizeof text_members / sizeof text_members[0]; i++)
        bytes += text_bytes(json_object_get(in, text_members[i]));
    json_decref(in);
    return (bytes + 3) / 4;
}

bool provider_counts_tokens(const provider_config *p)
{
    return wire_codecs[p->preset->format]->endpoints & WIRE_ENDPOINT(ENDPOINT_COUNT_TOKENS);
}

bool provider_url_names_model(const provider_config *p)
{
    return wire_codecs[p->preset->format]->url_names_model || p->preset->deployments;
}

json_t *provider_request_canonical(codec_ctx *ctx, provider_error *err)
{
    return to_canonical(ctx, NULL, ctx->body, ctx->body_len, err);
}

json_t *provider_request_in_ingress(codec_ctx *ctx, json_t *canon, provider_error *err)
{
    const wire_codec *client = wire_codecs[ctx->ingress];
    /* the canonical format reads nothing to canonical (to_canonical): it is what canon is */
    if (!client->request_to_canonical) return json_incref(canon);
    if (!client->request_from_canonical) {
        refuse(err, 400, "invalid_request_error", "unsupported", NULL, "no request can be written in %s%s",
               client->name, "");
        return NULL;
    }
    xlate *x = arena_alloc(ctx->arena, sizeof *x);
    memset(x, 0, sizeof *x);
    x->ctx = ctx;
    x->ingress = x->upstream = ctx->ingress;
    x->open_block = -1;
    return client->request_from_canonical(ctx, x, canon, err);
}
