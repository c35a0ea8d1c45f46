/* xlate.c — what the format translators (openai.c, anthropic.c, anthropic_stream.c,
 * gemini.c) share: turns and tools in the shapes Anthropic and Gemini both use, index maps
 * that grow in the arena, visible drops, canonical chunks and usage. Each helper works on a
 * codec_ctx or an xlate, never on the server's request; allocations come from the attempt's
 * arena, trees are jansson references as each contract in codec.h says. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "providers/codec.h"

/* Our own serializer of jansson trees: json_dumps checks every object and array against a
 * table of its parents (a formatted pointer and a hashtable insert per container, to refuse
 * loops) and copies the result once more to return it — most of what a translated reply or
 * stream event costs. Trees built here hold no loops. The text is JSON_COMPACT's, except that
 * control characters other than \n, \r, \t are written \u00XX (equal JSON). */
void xlate__append_integer(buf *out, long long v)
{
    char digits[24], *p = digits + sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    buf_append(out, p, (size_t)(digits + sizeof digits - p));
}

void xlate__append_json(buf *out, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        buf_append_lit(out, "{");
        bool first = true;
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
            if (!first) buf_append_lit(out, ",");
            first = false;
            buf_append_json_string(out, json_object_iter_key(it), json_object_iter_key_len(it));
            buf_append_lit(out, ":");
            xlate__append_json(out, json_object_iter_value(it));
        }
        buf_append_lit(out, "}");
        return;
    }
    case JSON_ARRAY: {
        buf_append_lit(out, "[");
        for (size_t i = 0, n = json_array_size(j); i < n; i++) {
            if (i) buf_append_lit(out, ",");
            xlate__append_json(out, json_array_get(j, i));
        }
        buf_append_lit(out, "]");
        return;
    }
    case JSON_STRING: buf_append_json_string(out, json_string_value(j), json_string_length(j)); return;
    case JSON_INTEGER: xlate__append_integer(out, json_integer_value(j)); return;
    case JSON_REAL: {
        /* as jansson writes reals: 17 significant digits, ".0" when it would read as an integer */
        char s[40];
        int n = snprintf(s, sizeof s, "%.17g", json_real_value(j));
        buf_append(out, s, (size_t)n);
        if (strspn(s, "0123456789-") == (size_t)n) buf_append_lit(out, ".0");
        return;
    }
    case JSON_TRUE: buf_append_lit(out, "true"); return;
    case JSON_FALSE: buf_append_lit(out, "false"); return;
    default: buf_append_lit(out, "null"); return;
    }
}

char *xlate__arena_json(codec_ctx *ctx, json_t *j, size_t *len)
{
    buf b;
    buf_init(&b, (size_t)1 << 40);
    xlate__append_json(&b, j);
    char *copy = arena_strndup(ctx->arena, b.data ? b.data : "", b.len);
    *len = b.len;
    buf_free(&b);
    return copy;
}

char *xlate__concat(codec_ctx *ctx, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *s = arena_alloc(ctx->arena, la + lb + lc + 1);
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

json_t *xlate__function_tool(codec_ctx *ctx, json_t *tool, const char *schema_key, bool schema_required)
{
    json_t *fn = json_object_get(tool, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    if (!name) {
        xlate__drop(ctx, "tools[].type");
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
        int *m = arena_alloc(x->ctx->arena, (size_t)grown * sizeof *m);
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

void xlate__drop(codec_ctx *ctx, const char *param)
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
    const char *have = ctx->dropped_params;
    if (!have) {
        ctx->dropped_params = arena_strndup(ctx->arena, param, plen);
        return;
    }
    size_t hlen = strlen(have);
    if (hlen >= 3 && !strcmp(have + hlen - 3, "...")) return;
    for (const char *s = have; (s = strstr(s, param)); s += plen)
        if ((s == have || s[-1] == ',') && (s[plen] == ',' || !s[plen])) return;
    ctx->dropped_params = xlate__concat(ctx, have, ",", hlen + 1 + plen <= DROPPED_MAX ? param : "...");
}

json_t *xlate__usage(const xlate *x)
{
    const usage_counts *c = &x->ctx->usage;
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
    if (!x->id[0]) snprintf(x->id, sizeof x->id, "chatcmpl-%.54s", x->ctx->request_id);
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
