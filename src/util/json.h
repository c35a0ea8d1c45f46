/* json.h — a strict, allocation-free JSON validator that reports top-level members, and the
 * lexer it is made of.
 *
 * The gateway's fast path forwards a request body byte for byte and rewrites only what must
 * change (the model name). That needs two things a tree parser like jansson does not give:
 * proof the whole body is valid JSON, and the byte offsets of a few top-level values. This
 * scanner walks the body once (RFC 8259, UTF-8 checked, depth bounded), touching no heap,
 * and fills in the spans of the members the caller asked for; the last duplicate wins, as
 * in most JSON parsers. Values nested deeper are validated but not reported.
 *
 * The lexer under it (json_lexer) hands out the same walk one token at a time — every member
 * name, every value's span, every container's close — for a caller that needs the members at
 * every depth without a tree (the response cache's key, src/cache/cache_key.c). */
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

/* ---- the lexer ---------------------------------------------------------------------------- */

typedef enum json_token {
    JSON_TOKEN_ERROR, /* not valid JSON: error says why, pos where; every later call says it again */
    JSON_TOKEN_END,   /* the value and the white space after it end the text: all of it is valid */
    JSON_TOKEN_KEY,   /* a member's name: [start, end) is the string, quotes included */
    JSON_TOKEN_VALUE, /* a scalar whole in [start, end); or a container opened (kind OBJECT or
                       * ARRAY, start at its bracket, depth counting it) */
    JSON_TOKEN_CLOSE, /* the innermost container closed: kind which, end just after its bracket */
} json_token;

/* One walk over text[0..len): any JSON value, nested at most JSON_MAX_DEPTH deep (RFC 8259,
 * UTF-8 checked, as json_scan_object). Fields above the line are the last token's; the lexer
 * keeps no pointer but text, which must outlive it. */
typedef struct json_lexer {
    const char *text;
    size_t len, pos;
    const char *error;
    json_kind kind;    /* the last VALUE's or CLOSE's */
    size_t start, end; /* the last KEY's or VALUE's span; a CLOSE's end */
    bool escaped;      /* the last KEY or string VALUE holds a backslash escape */
    int depth;         /* containers open after the last token */
    /* ---- the walk's own state: what may come next */
    enum {
        JSON_LEX_VALUE,         /* a value (the first, a member's, an element after ',') */
        JSON_LEX_FIRST_MEMBER,  /* after '{': a name or '}' */
        JSON_LEX_MEMBER,        /* after ',' in an object: a name */
        JSON_LEX_FIRST_ELEMENT, /* after '[': a value or ']' */
        JSON_LEX_AFTER,         /* after a value: ',', a close, or the end */
        JSON_LEX_FAILED,
    } state;
    char stack[JSON_MAX_DEPTH];
} json_lexer;

void json_lexer_init(json_lexer *lx, const char *text, size_t len);
/* The next token. The text's first value may be of any kind (json_scan_object checks for an
 * object before it starts). */
json_token json_lexer_next(json_lexer *lx);

/* Decodes the JSON string literal at text[start..end) (quotes included, already validated: a
 * KEY's or a string VALUE's span) into out, which has room for end - start - 2 bytes (decoding
 * never lengthens); returns the decoded length. A surrogate pair is one code point in UTF-8;
 * a lone surrogate escape ("\ud800") becomes U+FFFD, or, when exact, its own three bytes
 * (WTF-8: what no valid UTF-8 text holds), so that two different strings never decode the
 * same. */
size_t json_string_unescape(char *out, const char *text, size_t start, size_t end, bool exact);

/* Decodes the JSON string literal at text[start..end) (quotes included, already validated)
 * into an arena copy with a NUL terminator; *out_len gets its length. */
char *json_string_decode(arena *a, const char *text, size_t start, size_t end, size_t *out_len);

#endif
