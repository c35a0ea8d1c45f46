/* router_features.c — a prompt's features for the learned router, in one pass over a bounded
 * text.
 *
 * Words: runs of ASCII letters and digits and of non-ASCII bytes (so any script makes words),
 * lower-cased; a word made only of digits is the one token "#" (the numbers of a GSM8K problem
 * say nothing about its difficulty, their presence does); the first ROUTER_TOKEN_MAX bytes of
 * a word are hashed. Each word gives its unigram, its bigram with the word before, and its
 * character trigrams with the word's boundaries ("<wo", "wor", "ord", "rd>": shared by a
 * word's inflections and by the terms of a field — "-ology", "poly" — which is what carries to
 * a subject the model never saw), hashed (FNV-1a, then a multiply-shift mix) into 2^bits
 * buckets — the hashing trick: no vocabulary to ship, a fixed-size model, collisions absorbed
 * by training. Dense features are counts scaled to about [0, 1] (router_dense_names).
 *
 * Bounds: at most ROUTER_TEXT_MAX bytes are read (the head and the tail of a longer prompt:
 * RouteLLM-style prompts put the question and its options at the end, a coding agent's
 * instructions at the start), hence at most ROUTER_TEXT_MAX / 2 words, each with two word
 * hashes and at most its length in trigrams — within ROUTER_MAX_HASHES. The markers are looked
 * for in the same bytes.
 *
 * Measured and left out (docs/routing-quality.md): 2-, 4- and 5-grams of characters, word
 * trigrams (no better held out). Rejected: a vocabulary file (a second artefact to keep in
 * step with the model, where hashing needs none). */
#include <math.h>
#include <string.h>

#include "router/router.h"

const char *const router_dense_names[ROUTER_DENSE] = {
    "log_bytes",  "log_words",    "code",      "digits",           "operators",
    "math_words", "turns",        "tools",     "tool_result_last", "log_system_bytes",
    "non_ascii",  "multi_choice", "questions",
};

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint32_t bucket(uint64_t h, unsigned bits)
{
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)(h >> (64 - bits));
}

static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

typedef struct scan {
    router_features *out;
    unsigned bits;
    uint64_t prev; /* the previous word's hash, 0 at a segment's start */
    size_t words, digits, operators, non_ascii, questions;
} scan;

static void add_hash(scan *s, uint64_t h)
{
    if (s->out->nhashes < ROUTER_MAX_HASHES) s->out->hashes[s->out->nhashes++] = bucket(h, s->bits);
}

static void add_word(scan *s, const unsigned char *w, size_t len, bool all_digits)
{
    s->words++;
    uint64_t h = FNV_OFFSET ^ 0x77; /* the unigrams' namespace */
    if (all_digits) {
        h = (h ^ '#') * FNV_PRIME;
        add_hash(s, h);
        if (s->prev) add_hash(s, (s->prev * 0x9e3779b97f4a7c15ull) ^ h ^ 0x62); /* the bigrams' */
        s->prev = h;
        return;
    }
    /* "<word>", lower-cased: the unigram hashes the word, the trigrams slide over all of it */
    unsigned char b[ROUTER_TOKEN_MAX + 2];
    size_t n = len < ROUTER_TOKEN_MAX ? len : ROUTER_TOKEN_MAX;
    b[0] = '<';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = w[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        b[i + 1] = c;
        h = (h ^ c) * FNV_PRIME;
    }
    b[n + 1] = '>';
    add_hash(s, h);
    if (s->prev) add_hash(s, (s->prev * 0x9e3779b97f4a7c15ull) ^ h ^ 0x62); /* the bigrams' */
    s->prev = h;
    /* a trigram's three bytes are its own key (bucket() mixes them); the top byte keeps it
     * apart from the word hashes */
    for (size_t i = 0; i + 3 <= n + 2; i++)
        add_hash(s, 0x4300000000000000ull | b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16);
}

static void scan_segment(scan *s, const unsigned char *p, size_t len)
{
    s->prev = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (!word_byte(c)) {
            if (c >= '0' && c <= '9') s->digits++;
            if (c == '+' || c == '-' || c == '*' || c == '/' || c == '=' || c == '^' || c == '<' || c == '>')
                s->operators++;
            if (c == '?') s->questions++;
            i++;
            continue;
        }
        size_t start = i;
        bool all_digits = true;
        while (i < len && word_byte(p[i])) {
            if (p[i] >= 0x80) s->non_ascii++;
            if (p[i] >= '0' && p[i] <= '9')
                s->digits++;
            else
                all_digits = false;
            i++;
        }
        add_word(s, p + start, i - start, all_digits);
    }
}

static float capped(double v)
{
    return v > 1 ? 1.0f : (float)v;
}

/* Whether the text at p (n bytes left) starts with the literal lit. */
#define AT(lit) (n >= sizeof(lit) - 1 && p[1] == (lit)[1] && !memcmp(p, lit, sizeof(lit) - 1))

/* The code and math markers and the multiple-choice layout, in one pass: each byte is looked at
 * once and only the markers that start with it are compared (25 memmem scans of the text cost
 * more than everything else of a decision together). Each count is capped where its feature
 * saturates. */
static void markers(const char *t, size_t len, float *dense)
{
    size_t code = 0, math = 0;
    bool option_a = false, option_b = false;
    for (size_t i = 0; i < len; i++) {
        const char *p = t + i;
        size_t n = len - i;
        switch (*p) {
        case '`': code += AT("```"); break;
        case 'd': code += AT("def "); break;
        case 'f': code += AT("function"), math += AT("f(x)"); break;
        case '#': code += AT("#include"); break;
        case '=': code += AT("=>"); break;
        case '}': code += AT("};"); break;
        case 'r': code += AT("return "); break;
        case 'i': code += AT("import "), math += AT("integral"); break;
        case 'c': code += AT("class "); break;
        case 'p': code += AT("print("), math += AT("probability"); break;
        case '(': code += AT("()"); break;
        case '/': code += AT("//"); break;
        case '\\': math += AT("\\frac"); break;
        case '$': math++; break;
        case 's': math += AT("sqrt") || AT("solve"); break;
        case 'e': math += AT("equation"); break;
        case 'x': math += AT("x^"); break;
        case '\n':
            option_a |= AT("\nA.") || AT("\nA)");
            option_b |= AT("\nB.") || AT("\nB)");
            break;
        default: break;
        }
    }
    dense[2] = capped((double)code / 6.0);
    dense[5] = capped((double)math / 4.0);
    dense[11] = option_a && option_b ? 1.0f : 0.0f;
}

void router_features_extract(const router_input *in, unsigned bits, router_features *out)
{
    out->nhashes = 0;
    memset(out->dense, 0, sizeof out->dense);
    if (bits < ROUTER_BITS_MIN) bits = ROUTER_BITS_MIN;
    if (bits > ROUTER_BITS_MAX) bits = ROUTER_BITS_MAX;
    scan s = {.out = out, .bits = bits};
    const char *t = in->text ? in->text : "";
    size_t len = in->text ? in->len : 0, examined = len;
    if (len <= ROUTER_TEXT_MAX) {
        scan_segment(&s, (const unsigned char *)t, len);
        markers(t, len, out->dense);
    } else {
        size_t half = ROUTER_TEXT_MAX / 2;
        scan_segment(&s, (const unsigned char *)t, half);
        scan_segment(&s, (const unsigned char *)t + len - half, half);
        float head[ROUTER_DENSE] = {0}, tail[ROUTER_DENSE] = {0};
        markers(t, half, head);
        markers(t + len - half, half, tail);
        for (size_t i = 0; i < ROUTER_DENSE; i++)
            out->dense[i] = capped((double)head[i] + tail[i]);
        examined = ROUTER_TEXT_MAX;
    }
    double ex = examined ? (double)examined : 1.0;
    out->dense[0] = (float)(log1p((double)len) / 10.0);
    out->dense[1] = (float)(log1p((double)s.words) / 7.0);
    out->dense[3] = capped((double)s.digits / ex * 5.0);
    out->dense[4] = capped((double)s.operators / ex * 20.0);
    out->dense[6] = in->turns > 1 ? capped((double)(in->turns - 1) / 4.0) : 0.0f;
    out->dense[7] = in->tools ? 1.0f : 0.0f;
    out->dense[8] = in->tool_result_last ? 1.0f : 0.0f;
    out->dense[9] = (float)(log1p((double)in->system_bytes) / 12.0);
    out->dense[10] = capped((double)s.non_ascii / ex * 2.0);
    out->dense[12] = capped((double)s.questions / 3.0);
}
