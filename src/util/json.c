/* json.c — single-pass strict JSON validation with top-level member spans; see json.h.
 *
 * Written as an explicit state machine over a small stack instead of recursion, so a
 * hostile body of 100,000 '[' costs a bounded stack and a clean "too deep" error. */
#include "util/json.h"

#include <string.h>

typedef struct scanner {
    const char *s;
    size_t len, pos;
    const char *error;
} scanner;

static void skip_ws(scanner *sc)
{
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        sc->pos++;
    }
}

static bool fail(scanner *sc, const char *why)
{
    if (!sc->error) sc->error = why;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
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

/* At an opening quote: validates the string and leaves pos after the closing quote. */
static bool scan_string(scanner *sc)
{
    sc->pos++; /* opening quote */
    while (sc->pos < sc->len) {
        unsigned char c = (unsigned char)sc->s[sc->pos];
        if (c == '"') {
            sc->pos++;
            return true;
        }
        if (c < 0x20) return fail(sc, "control character in string");
        if (c == '\\') {
            if (sc->pos + 1 >= sc->len) break;
            char e = sc->s[sc->pos + 1];
            if (e == 'u') {
                if (sc->pos + 6 > sc->len) break;
                for (int i = 2; i < 6; i++)
                    if (hexval(sc->s[sc->pos + i]) < 0) return fail(sc, "bad \\u escape");
                sc->pos += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                sc->pos += 2;
            } else {
                return fail(sc, "bad escape in string");
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)sc->s + sc->pos, sc->len - sc->pos);
        if (!n) return fail(sc, "invalid UTF-8 in string");
        sc->pos += n;
    }
    return fail(sc, "unterminated string");
}

static bool scan_number(scanner *sc)
{
    const char *s = sc->s;
    size_t p = sc->pos, n = sc->len;
    if (p < n && s[p] == '-') p++;
    if (p >= n) return fail(sc, "bad number");
    if (s[p] == '0') {
        p++;
    } else if (s[p] >= '1' && s[p] <= '9') {
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    } else {
        return fail(sc, "bad number");
    }
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || s[p] < '0' || s[p] > '9') return fail(sc, "bad number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-')) p++;
        if (p >= n || s[p] < '0' || s[p] > '9') return fail(sc, "bad number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    sc->pos = p;
    return true;
}

static bool scan_literal(scanner *sc, const char *word, size_t wlen)
{
    if (sc->len - sc->pos < wlen || memcmp(sc->s + sc->pos, word, wlen) != 0)
        return fail(sc, "unexpected token");
    sc->pos += wlen;
    return true;
}

/* Scans one scalar, or opens a container by pushing onto the stack. */
static bool scan_value_start(scanner *sc, char *stack, int *depth, json_kind *type)
{
    skip_ws(sc);
    if (sc->pos >= sc->len) return fail(sc, "unexpected end of input");
    char c = sc->s[sc->pos];
    switch (c) {
    case '{':
    case '[':
        if (*depth >= JSON_MAX_DEPTH) return fail(sc, "nesting too deep");
        stack[(*depth)++] = c;
        sc->pos++;
        *type = c == '{' ? JSON_KIND_OBJECT : JSON_KIND_ARRAY;
        return true;
    case '"': *type = JSON_KIND_STRING; return scan_string(sc);
    case 't': *type = JSON_KIND_TRUE; return scan_literal(sc, "true", 4);
    case 'f': *type = JSON_KIND_FALSE; return scan_literal(sc, "false", 5);
    case 'n': *type = JSON_KIND_NULL; return scan_literal(sc, "null", 4);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            *type = JSON_KIND_NUMBER;
            return scan_number(sc);
        }
        return fail(sc, "unexpected character");
    }
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
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
    scanner sc = {.s = text, .len = len, .pos = 0, .error = NULL};
    char stack[JSON_MAX_DEPTH];
    int depth = 0;
    bool ok = false;
    json_field *pending = NULL; /* wanted top-level container whose end is not yet known */

    for (size_t i = 0; i < nfields; i++)
        fields[i].type = JSON_KIND_ABSENT;

    skip_ws(&sc);
    if (sc.pos >= len || text[sc.pos] != '{') {
        fail(&sc, sc.pos >= len ? "empty body" : "body is not a JSON object");
        goto out;
    }
    stack[depth++] = '{';
    sc.pos++;

    /* Each turn starts just after '{', '[' or ',' : a member or element is expected, or
     * (right after an opening bracket only) the matching close. */
    bool just_opened = true;
    while (depth > 0) {
        skip_ws(&sc);
        if (sc.pos >= len) {
            fail(&sc, "unexpected end of input");
            goto out;
        }
        char top = stack[depth - 1];
        char c = text[sc.pos];
        json_field *want = NULL;
        if (just_opened && (c == '}' || c == ']')) {
            if (c != (top == '{' ? '}' : ']')) {
                fail(&sc, "mismatched bracket");
                goto out;
            }
            /* falls to the closing logic below */
        } else {
            if (top == '{') {
                if (c != '"') {
                    fail(&sc, "expected a member name");
                    goto out;
                }
                size_t kstart = sc.pos + 1;
                if (!scan_string(&sc)) goto out;
                if (depth == 1)
                    for (size_t i = 0; i < nfields; i++)
                        if (key_equals(text + kstart, sc.pos - 1 - kstart, fields[i].key)) want = &fields[i];
                skip_ws(&sc);
                if (sc.pos >= len || text[sc.pos] != ':') {
                    fail(&sc, "expected ':'");
                    goto out;
                }
                sc.pos++;
                skip_ws(&sc);
            }
            size_t vstart = sc.pos;
            json_kind type;
            int before = depth;
            if (!scan_value_start(&sc, stack, &depth, &type)) goto out;
            if (want) {
                want->type = type;
                want->start = vstart;
                want->end = sc.pos;
                if (depth > before) pending = want;
            }
            if (depth > before) {
                just_opened = true;
                continue;
            }
        }
        just_opened = false;
        /* After a value or at a close: consume closes and one separator. */
        for (;;) {
            skip_ws(&sc);
            if (sc.pos >= len) {
                fail(&sc, "unexpected end of input");
                goto out;
            }
            top = stack[depth - 1];
            c = text[sc.pos];
            if (c == ',') {
                sc.pos++;
                break;
            }
            if (c != (top == '{' ? '}' : ']')) {
                fail(&sc, top == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
                goto out;
            }
            sc.pos++;
            depth--;
            if (depth == 1 && pending) {
                pending->end = sc.pos;
                pending = NULL;
            }
            if (depth == 0) break;
        }
    }
    skip_ws(&sc);
    if (sc.pos != len) {
        fail(&sc, "trailing characters after JSON value");
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        if (error) *error = sc.error ? sc.error : "invalid JSON";
        if (error_at) *error_at = sc.pos;
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
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

char *json_string_decode(arena *a, const char *text, size_t start, size_t end, size_t *out_len)
{
    const char *s = text + start + 1;
    size_t n = end - start - 2; /* without quotes; decoding never lengthens */
    char *out = arena_alloc(a, n + 1);
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
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n + 0 && s[i + 1] == '\\' && s[i + 2] == 'u') {
                unsigned lo = hex4(s + i + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate */
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = e; break; /* \" \\ \/ */
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}
