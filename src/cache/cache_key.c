/* cache_key.c — a request's cache key: the keyed digest of its canonical form (cache.h).
 *
 * The body is walked once by the lexer every request's DECODE uses (util/json.h), with no tree:
 * each token is written in a canonical form into one buffer, and the members of each object are
 * put in order of their (decoded) names when the object closes. The form, which docs/cache.md
 * describes for users:
 *
 *   string    '"', its decoded length (4 bytes), its decoded bytes: "\u0041" and "A" are one
 *             string; a lone surrogate escape keeps its own three bytes (WTF-8), so no two
 *             different strings meet
 *   number    an integer as written ("-0" is "0"); a number with a fraction or an exponent as
 *             its exact decimal value, digits without leading or trailing zeros and a power of
 *             ten ("0.50", "5e-1" and "0.5" are "5e-1"; "1.0" is "1e0", not the integer "1");
 *             an exponent of more than nine digits as written, marked apart ('r')
 *   literals  't', 'f', 'n'
 *   array     '[', each element and ',', ']' — in order
 *   object    with 0 or 1 member: '{', the member, '}'; with more: '#' and a 16-byte keyed
 *             digest (SipHash-2-4, libsodium's crypto_shorthash_siphashx24) of its members
 *             in order of name — a member is its name (a string as above), its value and ','
 *
 * Every form is self-delimiting, so the whole is a function of the value alone: key order and
 * white space do not matter, every other difference does. Members of one name keep their
 * order (a stable sort): {"a":1,"a":2} and {"a":2,"a":1} are two keys, as a parser that keeps
 * the last duplicate reads them. Digesting an object with more than one member, rather than
 * moving its bytes into order, keeps the work linear: each byte is copied into order at most
 * once (by its innermost such object), where moving bytes would copy them again at every
 * depth. The digest is keyed (a subkey of the deployment's secret), so nobody can look for two
 * objects with one digest.
 *
 * The top-level object's members, in order of name and without those that never change a
 * reply (cache_key_ignored), are the last part fed to the request's digest: libsodium's keyed
 * BLAKE2b under a subkey of the deployment's secret, so a key seen anywhere (a Redis dump) says
 * nothing of the prompt and cannot be tested against guesses without the secret. The other
 * parts are fed with their length first, so no two different inputs make the same stream.
 *
 * Bounds, for hostile bodies: the lexer's depth (JSON_MAX_DEPTH); at most CACHE_KEY_MEMBERS_MAX
 * members in the objects open at once (else no key: the request is not cached); the canonical
 * bytes at most three times the body's (their worst case: a body of empty strings).
 * Measured (callgrind, bench/RESULTS.md): 9,200 instructions of a 43,800-instruction hit for the
 * benchmark's body. Rejected: jansson's tree and a sorted dump (what this replaced: 17,000 of a
 * 79,000-instruction hit), and a commutative sum of member digests (cheap, but it cannot keep
 * the order of duplicates). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cache/cache.h"
#include "util/alloc.h"

/* Never part of the key: how the reply is delivered (stream, stream_options), who asked for
 * the provider's records (user, metadata, store), and the model, which the key takes from
 * routing (the public name) rather than from the body. Top-level members only: a tool's
 * parameter named "user" is part of the request. */
const char *const cache_key_ignored[] = {"stream", "stream_options", "user", "metadata",
                                         "store",  "model",          NULL};

void cache_secret_derive(const uint8_t master[32], cache_secret *out)
{
    crypto_kdf_derive_from_key(out->digest, sizeof out->digest, 1, "aigwcach", master);
    crypto_kdf_derive_from_key(out->member, sizeof out->member, 2, "aigwcach", master);
}

void cache_secret_random(cache_secret *out)
{
    randombytes_buf(out, sizeof *out);
}

/* A part of the key, its length first (8 bytes, little-endian). */
static bool feed(buf *b, const void *data, size_t len)
{
    char *p = buf_room(b, 8 + len);
    if (!p) return false;
    for (int i = 0; i < 8; i++)
        p[i] = (char)((uint64_t)len >> (8 * i));
    if (len) memcpy(p + 8, data, len);
    buf_commit(b, p + 8 + len);
    return true;
}

/* ---- the canonical walk ---------------------------------------------------------------------- */

/* A member of an open object: where its name's bytes and the whole member are in the output. */
typedef struct member {
    size_t name, name_len; /* the decoded name */
    size_t start, end;     /* the member: name, value, ',' */
} member;

typedef struct frame {
    bool object;
    size_t start; /* the container's first byte in the output */
    size_t base;  /* an object's first member in walk.members */
} frame;

typedef struct walk {
    const cache_secret *secret;
    const char *text;
    buf out;         /* the canonical bytes */
    member *members; /* of the objects open now, innermost last */
    size_t nmembers, members_cap;
    member *sorted; /* a merge's scratch */
    size_t sorted_cap;
    buf scratch; /* an object's members in order, to be digested */
    frame frames[JSON_MAX_DEPTH];
    int depth;
} walk;

#define STRING_HEAD 5 /* '"' and the length */

/* Appends a string's canonical form (the token at [start, end)); the decoded bytes' offset in
 * *at. false past the output's bound. */
static bool put_string(walk *w, const json_lexer *lx, size_t *at)
{
    size_t raw = lx->end - lx->start - 2;
    char *p = buf_room(&w->out, STRING_HEAD + raw);
    if (!p) return false;
    size_t n;
    if (lx->escaped)
        n = json_string_unescape(p + STRING_HEAD, w->text, lx->start, lx->end, true);
    else {
        memcpy(p + STRING_HEAD, w->text + lx->start + 1, raw);
        n = raw;
    }
    p[0] = '"';
    for (int i = 0; i < 4; i++)
        p[1 + i] = (char)((uint32_t)n >> (8 * i));
    *at = w->out.len + STRING_HEAD;
    buf_commit(&w->out, p + STRING_HEAD + n);
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A valid JSON number's canonical form (the file's comment): at most its length + 22 bytes
 * (a sign, an 'e' and an exponent of up to 20 characters). */
static char *put_number(char *p, const char *s, size_t n)
{
    size_t i = s[0] == '-';
    size_t int_start = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t int_end = i, frac_start = i, frac_end = i;
    bool real = false;
    if (i < n && s[i] == '.') {
        real = true;
        frac_start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        frac_end = i;
    }
    long long exp = 0;
    if (i < n) { /* 'e' or 'E' */
        real = true;
        bool negative = s[++i] == '-';
        if (s[i] == '-' || s[i] == '+') i++;
        while (i < n && s[i] == '0')
            i++;
        if (n - i > 9) { /* past what a long long adds up safely below: as written */
            *p++ = 'r';
            memcpy(p, s, n);
            return p + n;
        }
        for (; i < n; i++)
            exp = exp * 10 + (s[i] - '0');
        if (negative) exp = -exp;
    }
    if (!real) {
        if (int_end - int_start == 1 && s[int_start] == '0') return put_lit(p, "0"); /* "-0" */
        memcpy(p, s, n);
        return p + n;
    }
    /* the digits of the integer and the fraction, one after the other, times 10^exp */
    exp -= (long long)(frac_end - frac_start);
    size_t ndigits = (int_end - int_start) + (frac_end - frac_start);
#define DIGIT(k) (k < int_end - int_start ? s[int_start + k] : s[frac_start + k - (int_end - int_start)])
    size_t first = 0, last = ndigits;
    while (first < ndigits && DIGIT(first) == '0')
        first++;
    if (first == ndigits) return put_lit(p, "0e0"); /* zero, of either sign */
    while (DIGIT(last - 1) == '0') {
        last--;
        exp++;
    }
    if (s[0] == '-') *p++ = '-';
    for (size_t k = first; k < last; k++)
        *p++ = DIGIT(k);
#undef DIGIT
    *p++ = 'e';
    return put_int(p, exp);
}

static bool put_scalar(walk *w, const json_lexer *lx)
{
    size_t at;
    switch (lx->kind) {
    case JSON_KIND_STRING: return put_string(w, lx, &at);
    case JSON_KIND_NUMBER: {
        size_t n = lx->end - lx->start;
        char *p = buf_room(&w->out, n + 24);
        if (!p) return false;
        buf_commit(&w->out, put_number(p, w->text + lx->start, n));
        return true;
    }
    case JSON_KIND_TRUE: return buf_append_lit(&w->out, "t") == BUF_OK;
    case JSON_KIND_FALSE: return buf_append_lit(&w->out, "f") == BUF_OK;
    default: return buf_append_lit(&w->out, "n") == BUF_OK;
    }
}

/* Orders two members by their decoded names (bytes, then length). */
static int name_order(const walk *w, const member *a, const member *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(w->out.data + a->name, w->out.data + b->name, n);
    if (c) return c;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

/* Sorts m[0..n) by name, keeping the order of equal names: insertion for a few (most objects),
 * else a bottom-up merge through w->sorted. */
static void sort_members(walk *w, member *m, size_t n)
{
    if (n <= 12) {
        for (size_t i = 1; i < n; i++) {
            member v = m[i];
            size_t j = i;
            for (; j > 0 && name_order(w, &m[j - 1], &v) > 0; j--)
                m[j] = m[j - 1];
            m[j] = v;
        }
        return;
    }
    if (w->sorted_cap < n) {
        w->sorted = xrealloc(w->sorted, n * sizeof *w->sorted);
        w->sorted_cap = n;
    }
    member *from = m, *to = w->sorted;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                to[k++] = name_order(w, &from[b], &from[a]) < 0 ? from[b++] : from[a++];
            while (a < mid)
                to[k++] = from[a++];
            while (b < hi)
                to[k++] = from[b++];
        }
        member *t = from;
        from = to;
        to = t;
    }
    if (from != m) memcpy(m, from, n * sizeof *m);
}

/* An inner object closed: with more than one member, its members in order are digested and the
 * object's bytes become '#' and the digest; else '}' closes it as it stands. */
static bool close_object(walk *w, const frame *f)
{
    member *m = w->members + f->base;
    size_t n = w->nmembers - f->base;
    w->nmembers = f->base;
    if (n < 2) return buf_append_lit(&w->out, "}") == BUF_OK;
    sort_members(w, m, n);
    w->scratch.len = 0;
    for (size_t i = 0; i < n; i++)
        if (buf_append(&w->scratch, w->out.data + m[i].start, m[i].end - m[i].start) != BUF_OK) return false;
    unsigned char digest[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(digest, (const unsigned char *)w->scratch.data, w->scratch.len,
                                w->secret->member);
    w->out.len = f->start;
    return buf_append_lit(&w->out, "#") == BUF_OK && buf_append(&w->out, digest, sizeof digest) == BUF_OK;
}

/* A value ended inside the container on top: an element's or a member's ','. */
static bool value_done(walk *w)
{
    if (w->depth == 0) return true;
    if (buf_append_lit(&w->out, ",") != BUF_OK) return false;
    if (w->frames[w->depth - 1].object) w->members[w->nmembers - 1].end = w->out.len;
    return true;
}

static bool ignored(const char *name, size_t len)
{
    for (const char *const *k = cache_key_ignored; *k; k++)
        if (strlen(*k) == len && !memcmp(*k, name, len)) return true;
    return false;
}

/* Fills the wanted top-level spans as json_scan_object does (the last duplicate wins). */
static json_field *field_named(json_field *fields, size_t n, const char *name, size_t len)
{
    json_field *f = NULL;
    for (size_t i = 0; i < n; i++)
        if (strlen(fields[i].key) == len && !memcmp(fields[i].key, name, len)) f = &fields[i];
    return f;
}

/* Walks the body into w->out, leaving the top-level members (without the ignored ones) in
 * w->members[0..nmembers). false when the body is not a JSON object or passes a bound. */
static bool walk_body(walk *w, const char *text, size_t len, json_field *fields, size_t nfields)
{
    json_lexer lx;
    json_lexer_init(&lx, text, len);
    if (json_lexer_next(&lx) != JSON_TOKEN_VALUE || lx.kind != JSON_KIND_OBJECT) return false;
    w->frames[0] = (frame){.object = true};
    w->depth = 1;
    int skip = 0;                          /* > 0: inside an ignored member's value, at that depth */
    json_field *want = NULL, *open = NULL; /* a wanted member's value next; its container open */
    for (;;) {
        json_token t = json_lexer_next(&lx);
        if (t == JSON_TOKEN_END) return true;
        if (t == JSON_TOKEN_ERROR) return false;
        if (t == JSON_TOKEN_KEY) {
            if (skip) continue;
            size_t start = w->out.len, name;
            if (!put_string(w, &lx, &name)) return false;
            size_t name_len = w->out.len - name;
            if (lx.depth == 1) {
                want = field_named(fields, nfields, w->out.data + name, name_len);
                if (ignored(w->out.data + name, name_len)) {
                    w->out.len = start;
                    skip = 1;
                    continue;
                }
            }
            if (w->nmembers == CACHE_KEY_MEMBERS_MAX) return false;
            if (w->nmembers == w->members_cap) {
                w->members_cap = w->members_cap ? 2 * w->members_cap : 32;
                w->members = xrealloc(w->members, w->members_cap * sizeof *w->members);
            }
            w->members[w->nmembers++] = (member){.name = name, .name_len = name_len, .start = start};
            continue;
        }
        bool container = t == JSON_TOKEN_VALUE && (lx.kind == JSON_KIND_OBJECT || lx.kind == JSON_KIND_ARRAY);
        if (want && t == JSON_TOKEN_VALUE) {
            *want = (json_field){.key = want->key, .type = lx.kind, .start = lx.start, .end = lx.end};
            if (container) open = want;
            want = NULL;
        } else if (open && t == JSON_TOKEN_CLOSE && lx.depth == 1) {
            open->end = lx.end;
            open = NULL;
        }
        if (skip) { /* the ignored value ends when the walk is back at its depth */
            if (lx.depth == skip) skip = 0;
            continue;
        }
        if (t == JSON_TOKEN_VALUE && !container) {
            if (!put_scalar(w, &lx) || !value_done(w)) return false;
        } else if (container) {
            w->frames[w->depth++] =
                (frame){.object = lx.kind == JSON_KIND_OBJECT, .start = w->out.len, .base = w->nmembers};
            if (buf_append(&w->out, lx.kind == JSON_KIND_OBJECT ? "{" : "[", 1) != BUF_OK) return false;
        } else { /* a close */
            const frame *f = &w->frames[--w->depth];
            if (w->depth == 0) continue; /* the top-level object: its members stay for the digest */
            bool ok = f->object ? close_object(w, f) : buf_append_lit(&w->out, "]") == BUF_OK;
            if (!ok || !value_done(w)) return false;
        }
    }
}

bool cache_key_make(const cache_key_input *in, uint8_t out[CACHE_KEY_BYTES])
{
    for (size_t i = 0; i < in->nfields; i++)
        in->fields[i].type = JSON_KIND_ABSENT;
    if (!in->body) return false;
    walk w = {.secret = in->secret, .text = in->body};
    buf_init(&w.out, 3 * in->body_len + 64);
    size_t route_len = in->route ? strlen(in->route) : 0, extra_len = in->extra ? in->extra_len : 0;
    /* an object's members in order; at the end the key's other parts and the body's members */
    buf_init(&w.scratch, 3 * in->body_len + 128 + in->namespace_len + in->model_len + route_len + extra_len);
    bool ok = walk_body(&w, in->body, in->body_len, in->fields, in->nfields);
    if (ok) {
        /* the whole input in one buffer, digested in one call */
        buf *m = &w.scratch;
        static const char domain[] = "aigw response cache v2";
        uint8_t endpoint = (uint8_t)in->endpoint;
        m->len = 0;
        ok = feed(m, domain, sizeof domain - 1) &&
             feed(m, in->namespace_name ? in->namespace_name : "", in->namespace_len) &&
             feed(m, &endpoint, 1) && feed(m, in->model ? in->model : "", in->model_len) &&
             feed(m, in->route ? in->route : "", route_len) && feed(m, in->extra ? in->extra : "", extra_len);
        /* the body last, unprefixed: its members are self-delimiting */
        sort_members(&w, w.members, w.nmembers);
        for (size_t i = 0; ok && i < w.nmembers; i++)
            ok = buf_append(m, w.out.data + w.members[i].start, w.members[i].end - w.members[i].start) ==
                 BUF_OK;
        if (ok)
            crypto_generichash(out, CACHE_KEY_BYTES, (const unsigned char *)m->data, m->len,
                               in->secret->digest, sizeof in->secret->digest);
    }
    if (!ok)
        for (size_t i = 0; i < in->nfields; i++)
            in->fields[i].type = JSON_KIND_ABSENT;
    buf_free(&w.out);
    buf_free(&w.scratch);
    free(w.members);
    free(w.sorted);
    return ok;
}
