/* inspect.c — aigw-mock's strict checks beyond each format's required fields, made so that a
 * gateway's translation cannot get a wrong conversation past the mock:
 *   - every tool result answers a tool call made earlier in the same conversation (OpenAI
 *     `tool` message → an earlier assistant `tool_calls[].id`; Responses `function_call_output`
 *     item → an earlier `function_call` item's `call_id`; Anthropic `tool_result` →
 *     an earlier assistant `tool_use` block's id; Gemini `functionResponse` → an earlier
 *     `functionCall` of the same name, as Gemini calls carry no ids);
 *   - every inline image is valid base64; its decoded bytes are hashed (SHA-256), so a test can
 *     compare the digest with its own image's and prove the bytes crossed a translation intact.
 * The real APIs answer these mistakes with 400 too (their wording differs; the mock names the
 * offending id). "Earlier in the conversation" rather than "in the message just before": the
 * check is about ids surviving translation, not about turn order, which the formats differ on.
 *
 * SHA-256 is written here (FIPS 180-4) rather than taken from a crypto library: the mock links
 * nothing the gateway links for this, and 60 lines do not justify a dependency. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

/* ---- SHA-256 ------------------------------------------------------------------------------ */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* The hex digest of n bytes into out[65]. */
static void sha256_hex(const unsigned char *data, size_t n, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha256_block(h, data + i);
    unsigned char last[128] = {0};
    size_t rest = n - i, tail = rest < 56 ? 64 : 128;
    memcpy(last, data + i, rest);
    last[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int b = 0; b < 8; b++)
        last[tail - 1 - b] = (unsigned char)(bits >> (8 * b));
    sha256_block(h, last);
    if (tail == 128) sha256_block(h, last + 64);
    for (int w = 0; w < 8; w++)
        snprintf(out + 8 * w, 9, "%08x", h[w]);
}

/* ---- base64 ------------------------------------------------------------------------------- */

/* Decodes standard base64 (RFC 4648 §4; padding optional, nothing else allowed: no whitespace,
 * no URL-safe alphabet) into out (at least n * 3 / 4 bytes). Returns the decoded length, or -1. */
static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static long base64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n >= 1 && s[n - 1] == '=') n--;
    if (n >= 1 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) out[o++] = (unsigned char)(acc >> 4);
    if (n % 4 == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    return (long)o;
}

/* ---- images ------------------------------------------------------------------------------- */

typedef struct image_list {
    sbuf *json;
    int count;
    char *msg;
    size_t size;
    bool failed;
} image_list;

static void image_inline(image_list *l, const char *mime, size_t mime_len, const char *data, size_t len)
{
    if (l->failed) return;
    unsigned char *bytes = malloc(len / 4 * 3 + 3);
    if (!bytes) abort();
    long n = base64_decode(data, len, bytes);
    if (n < 0) {
        snprintf(l->msg, l->size, "aigw-mock: image %d: the data is not valid base64", l->count);
        l->failed = true;
        free(bytes);
        return;
    }
    char hex[65];
    sha256_hex(bytes, (size_t)n, hex);
    free(bytes);
    sb_str(l->json, l->count++ ? ",{\"mime\":" : "{\"mime\":");
    if (mime)
        sb_json(l->json, mime, mime_len);
    else
        sb_str(l->json, "null");
    sb_fmt(l->json, ",\"bytes\":%ld,\"sha256\":\"%s\"}", n, hex);
}

static void image_url(image_list *l, const char *url)
{
    if (l->failed) return;
    sb_str(l->json, l->count++ ? ",{\"url\":" : "{\"url\":");
    sb_json_str(l->json, url);
    sb_str(l->json, "}");
}

static void openai_image(image_list *l, json_t *part)
{
    const char *url = json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
    if (!url) url = json_string_value(json_object_get(part, "image_url")); /* the old string form */
    if (!url) return;
    if (strncmp(url, "data:", 5)) {
        image_url(l, url);
        return;
    }
    const char *comma = strchr(url, ','), *b64 = strstr(url, ";base64,");
    if (!comma || b64 != comma - 7) {
        snprintf(l->msg, l->size, "aigw-mock: image %d: a data URL must be data:<mime>;base64,<data>",
                 l->count);
        l->failed = true;
        return;
    }
    image_inline(l, url + 5, (size_t)(b64 - url - 5), comma + 1, strlen(comma + 1));
}

/* A Responses input_image part: image_url is a data URL or an https URL (chat's old string
 * form, which openai_image reads), or the image is an uploaded file named by file_id. */
static void responses_image(image_list *l, json_t *part)
{
    const char *file_id = json_string_value(json_object_get(part, "file_id"));
    if (json_object_get(part, "image_url") || !file_id) {
        openai_image(l, part);
        return;
    }
    if (l->failed) return;
    sb_str(l->json, l->count++ ? ",{\"file_id\":" : "{\"file_id\":");
    sb_json_str(l->json, file_id);
    sb_str(l->json, "}");
}

static void anthropic_image(image_list *l, json_t *block)
{
    json_t *source = json_object_get(block, "source");
    const char *type = json_string_value(json_object_get(source, "type"));
    json_t *data = json_object_get(source, "data"), *mime = json_object_get(source, "media_type");
    if (type && !strcmp(type, "base64") && json_is_string(data))
        image_inline(l, json_string_value(mime), json_string_length(mime), json_string_value(data),
                     json_string_length(data));
    else if (type && !strcmp(type, "url"))
        image_url(l, json_string_value(json_object_get(source, "url")));
}

static void gemini_image(image_list *l, json_t *part)
{
    json_t *inline_data = json_object_get(part, "inlineData"), *file = json_object_get(part, "fileData");
    json_t *mime = json_object_get(inline_data ? inline_data : file, "mimeType");
    if (mime && strncmp(json_string_value(mime) ? json_string_value(mime) : "", "image/", 6)) return;
    json_t *data = json_object_get(inline_data, "data");
    if (json_is_string(data))
        image_inline(l, json_string_value(mime), json_string_length(mime), json_string_value(data),
                     json_string_length(data));
    else if (file)
        image_url(l, json_string_value(json_object_get(file, "fileUri")));
}

/* Gemini's contents, also inside countTokens' generateContentRequest. */
static json_t *gemini_contents(json_t *req)
{
    json_t *contents = json_object_get(req, "contents");
    return contents ? contents : json_object_get(json_object_get(req, "generateContentRequest"), "contents");
}

bool inspect_images(mock_api api, json_t *req, sbuf *json, char *msg, size_t size)
{
    image_list l = {.json = json, .msg = msg, .size = size};
    size_t i, k;
    json_t *m, *part;
    sb_str(json, "[");
    if (api == API_GEMINI) {
        json_array_foreach(gemini_contents(req), i, m)
        {
            json_array_foreach(json_object_get(m, "parts"), k, part) gemini_image(&l, part);
        }
    } else if (api == API_RESPONSES) {
        json_array_foreach(json_object_get(req, "input"), i, m)
        {
            json_array_foreach(json_object_get(m, "content"), k, part)
            {
                const char *type = json_string_value(json_object_get(part, "type"));
                if (type && !strcmp(type, "input_image")) responses_image(&l, part);
            }
        }
    } else {
        json_array_foreach(json_object_get(req, "messages"), i, m)
        {
            json_array_foreach(json_object_get(m, "content"), k, part)
            {
                const char *type = json_string_value(json_object_get(part, "type"));
                if (!type) continue;
                if (api == API_OPENAI && !strcmp(type, "image_url")) openai_image(&l, part);
                if (api == API_ANTHROPIC && !strcmp(type, "image")) anthropic_image(&l, part);
            }
        }
    }
    sb_str(json, "]");
    return !l.failed;
}

/* ---- tool results ------------------------------------------------------------------------- */

/* The ids (or Gemini's names) of the calls seen so far: pointers into the request's JSON, as
 * many as it holds (bounded by the body's size). A linear search: conversations hold hundreds of
 * calls at most, and the mock's time per request is dominated by parsing. */
typedef struct call_ids {
    const char **ids;
    size_t n, cap;
} call_ids;

static void call_add(call_ids *c, const char *id)
{
    if (!id) return;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
        if (!c->ids) abort();
    }
    c->ids[c->n++] = id;
}

static bool call_known(const call_ids *c, const char *id)
{
    for (size_t i = 0; id && i < c->n; i++)
        if (!strcmp(c->ids[i], id)) return true;
    return false;
}

static bool tool_results_answer_calls(call_ids *known, mock_api api, json_t *req, char *msg, size_t size)
{
    size_t i, k;
    json_t *m, *part;
    if (api == API_GEMINI) {
        json_array_foreach(gemini_contents(req), i, m)
        {
            json_array_foreach(json_object_get(m, "parts"), k, part)
            {
                json_t *call = json_object_get(part, "functionCall"),
                       *resp = json_object_get(part, "functionResponse");
                if (call) call_add(known, json_string_value(json_object_get(call, "name")));
                if (!resp) continue;
                const char *name = json_string_value(json_object_get(resp, "name"));
                if (call_known(known, name)) continue;
                snprintf(msg, size,
                         "aigw-mock: contents[%zu].parts[%zu]: functionResponse %s%s%s answers no earlier "
                         "functionCall",
                         i, k, name ? "\"" : "", name ? name : "without a name", name ? "\"" : "");
                return false;
            }
        }
        return true;
    }
    if (api == API_RESPONSES) {
        json_array_foreach(json_object_get(req, "input"), i, m)
        {
            const char *type = json_string_value(json_object_get(m, "type"));
            if (!type) continue;
            if (!strcmp(type, "function_call"))
                call_add(known, json_string_value(json_object_get(m, "call_id")));
            if (strcmp(type, "function_call_output")) continue;
            const char *id = json_string_value(json_object_get(m, "call_id"));
            if (call_known(known, id)) continue;
            /* OpenAI's wording, after the index */
            snprintf(msg, size,
                     "aigw-mock: input[%zu]: No tool call found for function call output with call_id %s.", i,
                     id ? id : "(missing)");
            return false;
        }
        return true;
    }
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (api == API_OPENAI) {
            json_array_foreach(json_object_get(m, "tool_calls"), k, part)
            {
                call_add(known, json_string_value(json_object_get(part, "id")));
            }
            if (!role || strcmp(role, "tool")) continue;
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (call_known(known, id)) continue;
            snprintf(msg, size,
                     "aigw-mock: messages[%zu]: tool_call_id %s%s%s matches no tool call of an earlier "
                     "assistant message",
                     i, id ? "\"" : "", id ? id : "missing", id ? "\"" : "");
            return false;
        }
        json_array_foreach(json_object_get(m, "content"), k, part)
        {
            const char *type = json_string_value(json_object_get(part, "type"));
            if (!type) continue;
            if (!strcmp(type, "tool_use")) call_add(known, json_string_value(json_object_get(part, "id")));
            if (strcmp(type, "tool_result")) continue;
            const char *id = json_string_value(json_object_get(part, "tool_use_id"));
            if (call_known(known, id)) continue;
            snprintf(msg, size,
                     "aigw-mock: messages.%zu.content.%zu: unexpected `tool_use_id` found in `tool_result` "
                     "blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in an "
                     "earlier message.",
                     i, k, id ? id : "(missing)");
            return false;
        }
    }
    return true;
}

bool inspect_tool_results(mock_api api, json_t *req, char *msg, size_t size)
{
    call_ids calls = {0};
    bool ok = tool_results_answer_calls(&calls, api, req, msg, size);
    free(calls.ids);
    return ok;
}
