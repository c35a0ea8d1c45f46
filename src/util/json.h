/* json.h — a strict, allocation-free JSON validator that reports top-level members.
 *
 * The gateway's fast path forwards a request body byte for byte and rewrites only what must
 * change (the model name). That needs two things a tree parser like jansson does not give:
 * proof the whole body is valid JSON, and the byte offsets of a few top-level values. This
 * scanner walks the body once (RFC 8259, UTF-8 checked, depth bounded), touching no heap,
 * and fills in the spans of the members the caller asked for; the last duplicate wins, as
 * in most JSON parsers. Values nested deeper are validated but not reported. */
#ifndef AIGW_UTIL_JSON_H
#define AIGW_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/buf.h"

typedef enum json_kind {
    JSON_KIND_ABSENT = 0,
    JSON_KIND_NULL,
    JSON_KIND_FALSE,
    JSON_KIND_TRUE,
    JSON_KIND_NUMBER,
    JSON_KIND_STRING,
    JSON_KIND_ARRAY,
    JSON_KIND_OBJECT,
} json_kind;

/* One top-level member the caller wants; key is a plain (unescaped) name. */
typedef struct json_field {
    const char *key;
    json_kind type;    /* JSON_KIND_ABSENT when the body has no such member */
    size_t start, end; /* value span [start, end) in the body; strings include quotes */
} json_field;

#define JSON_MAX_DEPTH 128

/* Validates text[0..len) as one JSON object (surrounding whitespace allowed) and fills in
 * fields[]. Returns true when valid; otherwise false with a short static reason in *error
 * and the byte offset of the fault in *error_at. */
bool json_scan_object(const char *text, size_t len, json_field *fields, size_t nfields, const char **error,
                      size_t *error_at);

/* Decodes the JSON string literal at text[start..end) (quotes included, already validated)
 * into an arena copy with a NUL terminator; *out_len gets its length. */
char *json_string_decode(arena *a, const char *text, size_t start, size_t end, size_t *out_len);

#endif
