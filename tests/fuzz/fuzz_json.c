/* fuzz_json.c — libFuzzer target for the request-body scanner (src/util/json.c), the first code
 * to touch every client body. Besides crashes and sanitizer reports it checks the scanner
 * against jansson: both must agree on validity (for objects whose nesting stays below both
 * depth limits), and every reported span must lie inside the input and hold a value of the
 * reported type. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_field fields[] = {{.key = "model"}, {.key = "stream"}, {.key = "messages"}};
    const char *why = NULL;
    size_t at = 0;
    bool ok = json_scan_object(text, size, fields, 3, &why, &at);
    if (!ok && (!why || at > size)) abort();

    for (size_t i = 0; ok && i < 3; i++) {
        if (fields[i].type == JSON_KIND_ABSENT) continue;
        if (fields[i].start >= fields[i].end || fields[i].end > size) abort();
        char first = text[fields[i].start];
        switch (fields[i].type) {
        case JSON_KIND_STRING:
            if (first != '"' || text[fields[i].end - 1] != '"') abort();
            break;
        case JSON_KIND_OBJECT:
            if (first != '{' || text[fields[i].end - 1] != '}') abort();
            break;
        case JSON_KIND_ARRAY:
            if (first != '[' || text[fields[i].end - 1] != ']') abort();
            break;
        default: break;
        }
        if (fields[i].type == JSON_KIND_STRING) {
            arena a;
            arena_init(&a, 64);
            size_t len;
            json_string_decode(&a, text, fields[i].start, fields[i].end, &len);
            if (len > fields[i].end - fields[i].start) abort();
            arena_free(&a);
        }
    }

    /* Differential check, with the known and intended differences left out:
     * - depth: our limit (128) is below jansson's (2048);
     * - lone UTF-16 surrogate escapes ("\ude00"): RFC 8259's grammar allows them and we
     *   forward the body untouched, leaving the decision to the provider; jansson refuses them;
     * - numbers beyond double/int64 range ("7e7777777"): grammatical JSON that we forward as
     *   bytes; jansson refuses to convert them;
     * - "\u0000": jansson needs JSON_ALLOW_NUL to accept it in values, as we do, and refuses
     *   it in object keys whatever the flags ("NUL byte in object key not supported"); RFC 8259
     *   allows it in both and we forward the bytes;
     * - a raw NUL byte between tokens: not JSON (we refuse it) but jansson lets it pass. */
    if (!ok && why && !strcmp(why, "nesting too deep")) return 0;
    if (memchr(text, '\0', size)) return 0;
    json_error_t jerr;
    json_t *j = json_loadb(text, size, JSON_ALLOW_NUL, &jerr);
    bool jansson_ok = j && json_is_object(j);
    json_decref(j);
    if (ok && !jansson_ok &&
        (strstr(jerr.text, "invalid Unicode") || strstr(jerr.text, "overflow") ||
         strstr(jerr.text, "too big") || strstr(jerr.text, "NUL byte in object key")))
        return 0;
    if (ok != jansson_ok) abort();
    return 0;
}
