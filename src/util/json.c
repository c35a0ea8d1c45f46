/* json.c — single-pass strict JSON validation: a lexer that hands out one token at a time, and
 * on it the top-level member spans of json_scan_object; see json.h.
 *
 * Written as an explicit state machine over a small stack instead of recursion, so a
 * hostile body of 100,000 '[' costs a bounded stack and a clean "too deep" error. The lexer
 * is the one state machine: json_scan_object (every request's DECODE) and the response cache's
 * key (src/cache/cache_key.c, which needs every member at every depth) both walk its tokens,
 * so what one accepts the other does, and the fuzz target's comparison with jansson covers
 * both. */
#include "util/json.h"

#include <string.h>

static inline void skip_ws(json_lexer *lx)
{
    while (lx->pos < lx->len) {
        char c = lx->text[lx->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        lx->pos++;
    }
}

static bool fail(json_lexer *lx, const char *why)
{
    if (!lx->error) lx->error = why;
    return false;
}

static json_token refuse(json_lexer *lx, const char *why)
{
    fail(lx, why);
    lx->state = JSON_LEX_FAILED;
    return JSON_TOKEN_ERROR;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Length of a valid UTF-8 sequence starting at p (max n bytes), or 0. Rejects overlongs,
 * surrogates and code points past U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;
        if (c == 0xED && p[1] > 0x9F) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

/* The bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const bool plain[256] = {[0x20 ... 0x21] = true, [0x23 ... 0x5b] = true, [0x5d ... 0x7f] = true};

/* At an opening quote: validates the string and leaves pos after the closing quote (on a
 * fault: at it); notes whether it holds an escape. The position is kept in a local, and plain
 * ASCII, most of every body, costs one table lookup a byte (a quarter fewer instructions per
 * scan than four comparisons). */
static bool scan_string(json_lexer *lx)
{
    const unsigned char *s = (const unsigned char *)lx->text;
    size_t p = lx->pos + 1, len = lx->len; /* after the opening quote */
    bool ok = false;
    lx->escaped = false;
    while (p < len) {
        unsigned char c = s[p];
        if (plain[c]) {
            p++;
            continue;
        }
        if (c == '"') {
            p++;
            ok = true;
            goto out;
        }
        if (c < 0x20) {
            fail(lx, "control character in string");
            goto out;
        }
        if (c == '\\') {
            lx->escaped = true;
            if (p + 1 >= len) break;
            char e = (char)s[p + 1];
            if (e == 'u') {
                if (p + 6 > len) break;
                for (int i = 2; i < 6; i++)
                    if (hex_value((char)s[p + i]) < 0) {
                        fail(lx, "bad \\u escape");
                        goto out;
                    }
                p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                p += 2;
            } else {
                fail(lx, "bad escape in string");
                goto out;
            }
            continue;
        }
        size_t n = utf8_len(s + p, len - p);
        if (!n) {
            fail(lx, "invalid UTF-8 in string");
            goto out;
        }
        p += n;
    }
    fail(lx, "unterminated string");
out:
    lx->pos = p;
    return ok;
}

static bool scan_number(json_lexer *lx)
{
    const char *s = lx->text;
    size_t p = lx->pos, n = lx->len;
    if (p < n && s[p] == '-') p++;
    if (p >= n) return fail(lx, "bad number");
    if (s[p] == '0') {
        p++;
    } else if (s[p] >= '1' && s[p] <= '9') {
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    } else {
        return fail(lx, "bad number");
    }
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || s[p] < '0' || s[p] > '9') return fail(lx, "bad number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= n || s[p] < '0' || s[p] > '9') return fail(lx, "bad number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    lx->pos = p;
    return true;
}

static bool scan_literal(json_lexer *lx, const char *word, size_t wlen)
{
    if (lx->len - lx->pos < wlen || memcmp(lx->text + lx->pos, word, wlen) != 0)
        return fail(lx, "unexpected token");
    lx->pos += wlen;
    return true;
}

void json_lexer_init(json_lexer *lx, const char *text, size_t len)
{
    memset(lx, 0, offsetof(json_lexer, stack));
    lx->text = text;
    lx->len = len;
    lx->state = JSON_LEX_VALUE;
}

/* A value starting with c at pos: a scalar read whole, or a container opened (pushed). */
static inline __attribute__((always_inline)) json_token lex_value(json_lexer *lx, char c)
{
    lx->start = lx->pos;
    bool ok;
    switch (c) {
    case '{':
    case '[':
        if (lx->depth >= JSON_MAX_DEPTH) return refuse(lx, "nesting too deep");
        lx->stack[lx->depth++] = c;
        lx->pos++;
        lx->end = lx->pos;
        lx->kind = c == '{' ? JSON_KIND_OBJECT : JSON_KIND_ARRAY;
        lx->state = c == '{' ? JSON_LEX_FIRST_MEMBER : JSON_LEX_FIRST_ELEMENT;
        return JSON_TOKEN_VALUE;
    case '"':
        lx->kind = JSON_KIND_STRING;
        ok = scan_string(lx);
        break;
    case 't':
        lx->kind = JSON_KIND_TRUE;
        ok = scan_literal(lx, "true", 4);
        break;
    case 'f':
        lx->kind = JSON_KIND_FALSE;
        ok = scan_literal(lx, "false", 5);
        break;
    case 'n':
        lx->kind = JSON_KIND_NULL;
        ok = scan_literal(lx, "null", 4);
        break;
    default:
        if (c != '-' && (c < '0' || c > '9')) return refuse(lx, "unexpected character");
        lx->kind = JSON_KIND_NUMBER;
        ok = scan_number(lx);
        break;
    }
    if (!ok) {
        lx->state = JSON_LEX_FAILED;
        return JSON_TOKEN_ERROR;
    }
    lx->end = lx->pos;
    lx->state = JSON_LEX_AFTER;
    return JSON_TOKEN_VALUE;
}

/* The walk's one step, a state machine on what may come next; inlined into json_scan_object,
 * every request's scan (a call per token cost it a quarter more instructions), and behind
 * json_lexer_next for the others. */
static inline __attribute__((always_inline)) json_token lex_next(json_lexer *lx)
{
    for (;;) {
        skip_ws(lx);
        if (lx->pos >= lx->len) {
            if (lx->state == JSON_LEX_AFTER && lx->depth == 0) return JSON_TOKEN_END;
            return refuse(lx, "unexpected end of input");
        }
        char c = lx->text[lx->pos], top;
        switch (lx->state) {
        case JSON_LEX_AFTER: /* a separator, or the close of the container */
            if (lx->depth == 0) return refuse(lx, "trailing characters after JSON value");
            top = lx->stack[lx->depth - 1];
            if (c == ',') {
                lx->pos++;
                lx->state = top == '{' ? JSON_LEX_MEMBER : JSON_LEX_VALUE;
                continue;
            }
            if (c != (top == '{' ? '}' : ']'))
                return refuse(lx, top == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
            goto close;
        case JSON_LEX_FIRST_ELEMENT:
            if (c == ']') goto close;
            if (c == '}') return refuse(lx, "mismatched bracket");
            return lex_value(lx, c);
        case JSON_LEX_VALUE: return lex_value(lx, c);
        case JSON_LEX_FIRST_MEMBER:
            if (c == '}') goto close;
            if (c == ']') return refuse(lx, "mismatched bracket");
            /* fall through */
        case JSON_LEX_MEMBER: /* a name now, its value on the next call */
            if (c != '"') return refuse(lx, "expected a member name");
            lx->start = lx->pos;
            if (!scan_string(lx)) {
                lx->state = JSON_LEX_FAILED;
                return JSON_TOKEN_ERROR;
            }
            lx->end = lx->pos;
            skip_ws(lx);
            if (lx->pos >= lx->len || lx->text[lx->pos] != ':') return refuse(lx, "expected ':'");
            lx->pos++;
            lx->state = JSON_LEX_VALUE;
            return JSON_TOKEN_KEY;
        default: return JSON_TOKEN_ERROR; /* failed before */
        }
    close:
        lx->kind = lx->stack[lx->depth - 1] == '{' ? JSON_KIND_OBJECT : JSON_KIND_ARRAY;
        lx->pos++;
        lx->depth--;
        lx->end = lx->pos;
        lx->state = JSON_LEX_AFTER;
        return JSON_TOKEN_CLOSE;
    }
}

json_token json_lexer_next(json_lexer *lx)
{
    return lex_next(lx);
}

/* Compares a raw (still escaped, already validated) key with a wanted plain ASCII name. The
 * common key without escapes is a memcmp; a key with escapes is compared as it decodes,
 * because providers decode it: "mod\u0065l" is `model` to them and must be to us. */
static bool key_equals(const char *raw, size_t raw_len, const char *key)
{
    size_t klen = strlen(key);
    if (!memchr(raw, '\\', raw_len)) return raw_len == klen && memcmp(raw, key, klen) == 0;
    size_t k = 0;
    for (size_t i = 0; i < raw_len; k++) {
        int c = (unsigned char)raw[i];
        if (c == '\\') {
            char e = raw[i + 1];
            if (e == 'u') {
                int h[4];
                for (int d = 0; d < 4; d++)
                    h[d] = hex_value(raw[i + 2 + d]);
                c = (h[0] << 12) | (h[1] << 8) | (h[2] << 4) | h[3];
                i += 6;
            } else {
                c = e == 'n'   ? '\n'
                    : e == 't' ? '\t'
                    : e == 'r' ? '\r'
                    : e == 'b' ? '\b'
                    : e == 'f' ? '\f'
                               : e;
                i += 2;
            }
        } else {
            i++;
        }
        if (k >= klen || c != (unsigned char)key[k]) return false; /* wanted names are ASCII */
    }
    return k == klen;
}

bool json_scan_object(const char *text, size_t len, json_field *fields, size_t nfields, const char **error,
                      size_t *error_at)
{
    json_lexer lx;
    json_lexer_init(&lx, text, len);
    bool ok = false;
    json_field *want = NULL;    /* the wanted member whose value comes next */
    json_field *pending = NULL; /* wanted top-level container whose end is not yet known */

    for (size_t i = 0; i < nfields; i++)
        fields[i].type = JSON_KIND_ABSENT;

    skip_ws(&lx);
    if (lx.pos >= len || text[lx.pos] != '{') {
        fail(&lx, lx.pos >= len ? "empty body" : "body is not a JSON object");
        goto out;
    }
    for (;;) {
        switch (lex_next(&lx)) {
        case JSON_TOKEN_ERROR: goto out;
        case JSON_TOKEN_END: ok = true; goto out;
        case JSON_TOKEN_KEY:
            if (lx.depth == 1)
                for (size_t i = 0; i < nfields; i++)
                    if (key_equals(text + lx.start + 1, lx.end - lx.start - 2, fields[i].key))
                        want = &fields[i];
            break;
        case JSON_TOKEN_VALUE:
            if (want) {
                want->type = lx.kind;
                want->start = lx.start;
                want->end = lx.end;
                if (lx.kind == JSON_KIND_OBJECT || lx.kind == JSON_KIND_ARRAY) pending = want;
                want = NULL;
            }
            break;
        case JSON_TOKEN_CLOSE:
            if (lx.depth == 1 && pending) {
                pending->end = lx.end;
                pending = NULL;
            }
            break;
        }
    }
out:
    if (!ok) {
        if (error) *error = lx.error ? lx.error : "invalid JSON";
        if (error_at) *error_at = lx.pos;
        for (size_t i = 0; i < nfields; i++)
            fields[i].type = JSON_KIND_ABSENT;
    }
    return ok;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8 | hex_value(p[2]) << 4 | hex_value(p[3]));
}

size_t json_string_unescape(char *out, const char *text, size_t start, size_t end, bool exact)
{
    const char *s = text + start + 1;
    size_t n = end - start - 2; /* without quotes */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp = hex4(s + i + 1);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
                unsigned lo = hex4(s + i + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            /* a lone surrogate: U+FFFD, or its own three bytes (WTF-8) when exact */
            if (cp >= 0xD800 && cp <= 0xDFFF && !exact) cp = 0xFFFD;
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = e; break; /* \" \\ \/ */
        }
    }
    return o;
}

char *json_string_decode(arena *a, const char *text, size_t start, size_t end, size_t *out_len)
{
    char *out = arena_alloc(a, end - start - 1); /* decoding never lengthens */
    size_t o = json_string_unescape(out, text, start, end, false);
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}
