/* fuzz_cache_key.c — libFuzzer target for the response cache's key walk (src/cache/cache_key.c),
 * which reads every byte of a cached request's body at every depth. Besides crashes and
 * sanitizer reports it checks:
 *   - a key is made exactly when the body is a JSON object json_scan_object accepts (the bounds
 *     of the walk are out of reach of the 64 KiB inputs the script gives), and the top-level
 *     spans it reports are json_scan_object's;
 *   - for a body jansson reads too (no duplicate names, no lone surrogates, no number jansson
 *     would rewrite: a real, or an integer out of its range), jansson's rewritings of it — every
 *     object's members in reverse order, indented, with every non-ASCII character escaped —
 *     have the same key, and so does the body with the ignored members added at the top; a
 *     member added makes another key. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

static const cache_secret secret = {.digest = {7}, .member = {9}};

static bool key_of(const char *text, size_t len, uint8_t out[CACHE_KEY_BYTES], json_field *fields, size_t n)
{
    cache_key_input in = {.secret = &secret,
                          .namespace_name = "ns",
                          .namespace_len = 2,
                          .model = "m",
                          .model_len = 1,
                          .route = "r",
                          .body = text,
                          .body_len = len,
                          .fields = fields,
                          .nfields = n};
    return cache_key_make(&in, out);
}

/* A copy with every object's members in reverse order; false when it holds a real number. */
static json_t *reversed(json_t *v, bool *has_real)
{
    if (json_is_real(v)) *has_real = true;
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(a, reversed(e, has_real));
        return a;
    }
    if (!json_is_object(v)) return json_incref(v);
    size_t n = json_object_size(v), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e) keys[i++] = k;
    json_t *o = json_object();
    while (i--)
        json_object_set_new(o, keys[i], reversed(json_object_get(v, keys[i]), has_real));
    free(keys);
    return o;
}

static void same_key(json_t *j, size_t flags, const uint8_t want[CACHE_KEY_BYTES])
{
    char *text = json_dumps(j, flags);
    if (!text) return;
    uint8_t k[CACHE_KEY_BYTES];
    if (!key_of(text, strlen(text), k, NULL, 0) || memcmp(k, want, CACHE_KEY_BYTES)) abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_field fields[] = {{.key = "model"}, {.key = "n"}, {.key = "stream_options"}, {.key = "messages"}};
    json_field scanned[] = {{.key = "model"}, {.key = "n"}, {.key = "stream_options"}, {.key = "messages"}};
    uint8_t key[CACHE_KEY_BYTES];
    bool made = key_of(text, size, key, fields, 4);
    bool valid = json_scan_object(text, size, scanned, 4, NULL, NULL);
    if (made != valid) abort();
    for (int i = 0; i < 4; i++)
        if (fields[i].type != scanned[i].type ||
            (fields[i].type != JSON_KIND_ABSENT &&
             (fields[i].start != scanned[i].start || fields[i].end != scanned[i].end)))
            abort();
    if (!made) return 0;

    json_error_t jerr;
    json_t *j = json_loadb(text, size, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    bool has_real = false;
    json_t *r = reversed(j, &has_real);
    /* jansson writes a real its own way (17 digits): its form is another number's */
    if (!has_real) {
        same_key(r, JSON_COMPACT, key);
        same_key(j, JSON_INDENT(1), key);
        same_key(r, JSON_ENSURE_ASCII | JSON_COMPACT, key);
        json_t *extra = json_deep_copy(r);
        json_object_set_new(extra, "stream", json_true());
        json_object_set_new(extra, "user", json_string("someone"));
        json_object_set_new(extra, "metadata", json_pack("{s:[i]}", "a", 1));
        json_object_set_new(extra, "model", json_string("another"));
        same_key(extra, JSON_COMPACT, key);
        /* a member more: another key (unless it was there, or is an ignored one) */
        if (!json_object_get(j, "fuzz-added")) {
            json_object_set_new(extra, "fuzz-added", json_null());
            char *t = json_dumps(extra, JSON_COMPACT);
            uint8_t k[CACHE_KEY_BYTES];
            if (t && key_of(t, strlen(t), k, NULL, 0) && !memcmp(k, key, CACHE_KEY_BYTES)) abort();
            free(t);
        }
        json_decref(extra);
    }
    json_decref(r);
    json_decref(j);
    return 0;
}
