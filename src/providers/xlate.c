/* xlate.c — what the format translators (openai.c, anthropic.c, anthropic_stream.c,
 * gemini.c) share: turns and tools in the shapes Anthropic and Gemini both use, index maps
 * that grow in the arena, visible drops, canonical chunks and usage. Each helper works on a
 * codec_ctx or an xlate, never on the server's request; allocations come from the attempt's
 * arena, trees are jansson references as each contract in codec.h says. */
#include <stdio.h>
#include <string.h>

#include "providers/codec.h"

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
