/* mustache.c — the Mustache renderer (mustache.h): a template is tokenized, its standalone lines
 * removed, its sections matched, then rendered from the token array against a stack of JSON
 * contexts.
 *
 * How it works. tokenize() cuts the text into tokens (text runs end at each newline, so a line
 * is a run of tokens up to one that ends with '\n'); set-delimiter tags change how the rest is
 * cut. mark_lines() finds standalone lines — only whitespace text and at least one tag that is
 * not an interpolation — and drops their whitespace and newline, keeping the whitespace before a
 * partial or parent as its indentation (the spec's rule; a line may hold several such tags, as
 * `{{<parent}}{{$block}}` does). An empty block on a standalone line keeps its newline: a block
 * that expands to nothing must not eat the line after it (the spec's "Standalone block").
 *
 * Partials, parents and blocks are rendered from text, not from the caller's tokens: a standalone
 * partial's text is indented (each non-blank line prefixed with the tag's indentation) and then
 * parsed; a block's text is dedented where it is written and indented where it lands
 * (~inheritance's "Block reindentation"). Re-parsing is what makes indentation exact; it costs a
 * parse per expansion, which the step bound counts (a parse's tokens are steps).
 *
 * Overrides: a parent's blocks are pushed on a list before its text is rendered and popped after;
 * a block takes the outermost override of its name (the most derived template wins, so
 * multi-level inheritance works), else its own default.
 *
 * Bounds: the context stack (max_depth), partial/parent/block nesting (max_partial_depth), the
 * output (max_output) and the steps (max_steps: tokens parsed and visited, section items) — so a
 * template cannot loop, recurse or multiply its way past what the operator allows. Memory is
 * malloc'd per parse and freed when that parse's render ends, so repeated partials do not pile
 * up. Rejected: caching parsed partials (a prompt's partials are short; the parse is cheap next
 * to the upstream call, and a cache would need invalidation with the store's versions). */
#include "prompts/mustache.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define MUSTACHE_MAX_DELIM 16
#define MUSTACHE_HARD_DEPTH 512

enum tok_type {
    T_TEXT,
    T_VAR,
    T_RAW,
    T_SECTION,
    T_INVERTED,
    T_CLOSE,
    T_PARTIAL,
    T_PARENT,
    T_BLOCK,
    T_COMMENT,
    T_DELIM,
    T_DROPPED, /* text of a standalone line */
};

typedef struct delims {
    char open[MUSTACHE_MAX_DELIM], close[MUSTACHE_MAX_DELIM];
    size_t open_len, close_len;
} delims;

typedef struct mtok {
    uint8_t type;
    bool standalone;
    size_t start, len;               /* text, or the tag's trimmed content */
    size_t tag_start, tag_end;       /* the whole tag */
    size_t line_start, line_end;     /* a standalone tag's line, newline included */
    size_t indent_start, indent_len; /* whitespace before the tag on a standalone line */
    unsigned line;
    size_t close; /* section, inverted, parent, block: index of its end tag */
    delims *d;    /* block: the delimiters its text was written with */
} mtok;

typedef struct parsed {
    const char *s;
    size_t n;
    mtok *t;
    size_t count, cap;
    delims **owned; /* delimiter sets allocated by this parse */
    size_t owned_count;
} parsed;

typedef struct override {
    const char *name;
    size_t name_len;
    const char *text;
    size_t len;
    bool dedent;
    const delims *d;
    struct override *next;
} override;

typedef struct render {
    const mustache_options *opt;
    buf *out;
    size_t out_base;
    mustache_error *err;
    json_t *stack[MUSTACHE_HARD_DEPTH];
    unsigned depth;
    unsigned partial_depth;
    size_t steps;
    override *overrides;
    const char *name; /* the template being rendered, for errors */
    size_t name_len;
    unsigned line0; /* line of the text's start in its template (blocks) */
} render;

static const delims default_delims = {"{{", "}}", 2, 2};

void mustache_options_init(mustache_options *o)
{
    memset(o, 0, sizeof *o);
    o->name = "template";
    o->max_output = 1 << 20;
    o->max_depth = 64;
    o->max_partial_depth = 32;
    o->max_steps = 1000000;
}

static mustache_status fail(mustache_error *err, mustache_status st, const char *name, size_t name_len,
                            unsigned line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static mustache_status fail(mustache_error *err, mustache_status st, const char *name, size_t name_len,
                            unsigned line, const char *fmt, ...)
{
    if (!err) return st;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int nl = name_len > 100 ? 100 : (int)name_len;
    err->status = st;
    err->line = line;
    snprintf(err->template_name, sizeof err->template_name, "%.*s", nl, name);
    snprintf(err->message, sizeof err->message, "template '%.*s' line %u: %s", nl, name, line, what);
    return st;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *find(const char *s, size_t from, size_t n, const char *pat, size_t plen)
{
    if (from > n || plen > n - from) return NULL;
    return memmem(s + from, n - from, pat, plen);
}

static mtok *push_token(parsed *p)
{
    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 32;
        p->t = xrealloc(p->t, p->cap * sizeof *p->t);
    }
    mtok *t = &p->t[p->count++];
    memset(t, 0, sizeof *t);
    return t;
}

static void parsed_free(parsed *p)
{
    free(p->t);
    for (size_t i = 0; i < p->owned_count; i++)
        free(p->owned[i]);
    free(p->owned);
    memset(p, 0, sizeof *p);
}

/* Text runs between tags, cut after each newline. */
static void push_text(parsed *p, size_t from, size_t to, unsigned *line)
{
    while (from < to) {
        const char *nl = memchr(p->s + from, '\n', to - from);
        size_t end = nl ? (size_t)(nl - p->s) + 1 : to;
        mtok *t = push_token(p);
        t->type = T_TEXT;
        t->start = from;
        t->len = end - from;
        t->line = *line;
        if (nl) (*line)++;
        from = end;
    }
}

static void trim(const char *s, size_t *start, size_t *len)
{
    while (*len && isspace((unsigned char)s[*start])) {
        (*start)++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)s[*start + *len - 1]))
        (*len)--;
}

static unsigned count_lines(const char *s, size_t from, size_t to)
{
    unsigned n = 0;
    for (size_t i = from; i < to; i++)
        n += s[i] == '\n';
    return n;
}

/* Cuts p->s into tokens, starting with the delimiters d0; matches section ends. */
static mustache_status tokenize(parsed *p, const delims *d0, render *r, unsigned line0)
{
    const char *s = p->s;
    size_t n = p->n, pos = 0;
    unsigned line = line0;
    const delims *d = d0;
    size_t open_stack[MUSTACHE_HARD_DEPTH];
    unsigned open_depth = 0;
    for (;;) {
        const char *o = find(s, pos, n, d->open, d->open_len);
        size_t tag_start = o ? (size_t)(o - s) : n;
        push_text(p, pos, tag_start, &line);
        if (!o) break;
        size_t c = tag_start + d->open_len;
        unsigned tag_line = line;
        if (c >= n) return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line, "unclosed tag");
        char sigil = s[c];
        uint8_t type;
        switch (sigil) {
        case '!': type = T_COMMENT; break;
        case '=': type = T_DELIM; break;
        case '#': type = T_SECTION; break;
        case '^': type = T_INVERTED; break;
        case '/': type = T_CLOSE; break;
        case '>': type = T_PARTIAL; break;
        case '<': type = T_PARENT; break;
        case '$': type = T_BLOCK; break;
        case '&': type = T_RAW; break;
        case '{': type = T_RAW; break;
        default: type = T_VAR; break;
        }
        size_t content = type == T_VAR ? c : c + 1;
        const char *end;
        size_t close_len;
        if (sigil == '{') {
            char want[MUSTACHE_MAX_DELIM + 1];
            want[0] = '}';
            memcpy(want + 1, d->close, d->close_len);
            close_len = d->close_len + 1;
            end = find(s, content, n, want, close_len);
        } else {
            close_len = d->close_len;
            end = find(s, content, n, d->close, close_len);
        }
        if (!end) return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line, "unclosed tag");
        size_t cs = content, cl = (size_t)(end - s) - content;
        size_t tag_end = (size_t)(end - s) + close_len;
        line += count_lines(s, tag_start, tag_end);
        pos = tag_end;
        if (type == T_DELIM) {
            if (cl == 0 || s[cs + cl - 1] != '=')
                return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line,
                            "a set-delimiter tag must end with '='");
            cl--;
            trim(s, &cs, &cl);
            size_t a = 0;
            while (a < cl && !isspace((unsigned char)s[cs + a]))
                a++;
            size_t b = a;
            while (b < cl && isspace((unsigned char)s[cs + b]))
                b++;
            size_t blen = cl - b;
            if (a == 0 || blen == 0 || a > MUSTACHE_MAX_DELIM || blen > MUSTACHE_MAX_DELIM - 1 ||
                memchr(s + cs + b, ' ', blen) || memchr(s + cs, '=', a) || memchr(s + cs + b, '=', blen))
                return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line,
                            "a set-delimiter tag needs two delimiters of 1-15 bytes without spaces or '='");
            delims *nd = xcalloc(1, sizeof *nd);
            memcpy(nd->open, s + cs, a);
            nd->open_len = a;
            memcpy(nd->close, s + cs + b, blen);
            nd->close_len = blen;
            p->owned = xrealloc(p->owned, (p->owned_count + 1) * sizeof *p->owned);
            p->owned[p->owned_count++] = nd;
            d = nd;
        } else if (type != T_COMMENT) {
            trim(s, &cs, &cl);
            if (cl == 0) return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line, "empty tag");
        }
        mtok *t = push_token(p);
        t->type = type;
        t->start = cs;
        t->len = cl;
        t->tag_start = tag_start;
        t->tag_end = tag_end;
        t->line = tag_line;
        t->d = (delims *)d;
        size_t idx = p->count - 1;
        if (type == T_SECTION || type == T_INVERTED || type == T_PARENT || type == T_BLOCK) {
            if (open_depth >= MUSTACHE_HARD_DEPTH || open_depth >= r->opt->max_depth)
                return fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, tag_line,
                            "sections nested deeper than %u", r->opt->max_depth);
            open_stack[open_depth++] = idx;
        } else if (type == T_CLOSE) {
            if (open_depth == 0)
                return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line,
                            "closing tag '%.*s' closes nothing", (int)(cl > 64 ? 64 : cl), s + cs);
            mtok *op = &p->t[open_stack[open_depth - 1]];
            if (op->len != cl || memcmp(s + op->start, s + cs, cl) != 0)
                return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, tag_line,
                            "closing tag '%.*s' does not match '%.*s' (line %u)", (int)(cl > 64 ? 64 : cl),
                            s + cs, (int)(op->len > 64 ? 64 : op->len), s + op->start, op->line);
            op->close = idx;
            open_depth--;
        }
        r->steps++;
    }
    if (open_depth) {
        mtok *op = &p->t[open_stack[open_depth - 1]];
        return fail(r->err, MUSTACHE_SYNTAX, r->name, r->name_len, op->line, "section '%.*s' is not closed",
                    (int)(op->len > 64 ? 64 : op->len), s + op->start);
    }
    r->steps += p->count;
    return MUSTACHE_OK;
}

static bool standalone_type(uint8_t type)
{
    return type != T_TEXT && type != T_VAR && type != T_RAW && type != T_DROPPED;
}

static bool whitespace_text(const char *s, size_t start, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[start + i];
        if (!is_blank(ch) && ch != '\n' && ch != '\r') return false;
    }
    return true;
}

/* Standalone lines: their whitespace and newline dropped, indentation kept on the tags. */
static void mark_lines(parsed *p)
{
    size_t i = 0;
    while (i < p->count) {
        size_t j = i;
        while (j < p->count && !(p->t[j].type == T_TEXT && p->s[p->t[j].start + p->t[j].len - 1] == '\n'))
            j++;
        size_t last = j < p->count ? j : p->count - 1; /* the line is tokens i..last */
        bool tags = false, ok = true;
        for (size_t k = i; k <= last && ok; k++) {
            mtok *t = &p->t[k];
            if (t->type == T_TEXT)
                ok = whitespace_text(p->s, t->start, t->len);
            else if (t->type == T_VAR || t->type == T_RAW)
                ok = false;
            else if (standalone_type(t->type))
                tags = true;
        }
        if (tags && ok) {
            mtok *first = &p->t[i], *end = &p->t[last];
            size_t line_start = first->type == T_TEXT ? first->start : first->tag_start;
            size_t line_end = end->type == T_TEXT ? end->start + end->len : end->tag_end;
            bool keep_newline = false;
            for (size_t k = i; k <= last; k++) {
                mtok *t = &p->t[k];
                if (t->type == T_BLOCK && t->close == k + 1) keep_newline = true;
                if (!standalone_type(t->type)) continue;
                t->standalone = true;
                t->line_start = line_start;
                t->line_end = line_end;
                if (k > i && p->t[k - 1].type == T_TEXT) {
                    t->indent_start = p->t[k - 1].start;
                    t->indent_len = p->t[k - 1].len;
                }
            }
            for (size_t k = i; k <= last; k++) {
                mtok *t = &p->t[k];
                if (t->type != T_TEXT) continue;
                bool nl = p->s[t->start + t->len - 1] == '\n';
                if (keep_newline && nl && k == last) {
                    size_t keep = t->len >= 2 && p->s[t->start + t->len - 2] == '\r' ? 2 : 1;
                    t->start += t->len - keep;
                    t->len = keep;
                } else {
                    t->type = T_DROPPED;
                }
            }
        }
        i = last + 1;
    }
}

static mustache_status parse(parsed *p, const char *s, size_t n, const delims *d, render *r, unsigned line0)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->n = n;
    mustache_status st = tokenize(p, d, r, line0);
    if (st != MUSTACHE_OK) return st;
    mark_lines(p);
    return MUSTACHE_OK;
}

/* ---- rendering ---- */

static mustache_status emit(render *r, unsigned line, const char *s, size_t n)
{
    if (n == 0) return MUSTACHE_OK;
    if (r->out->len - r->out_base + n > r->opt->max_output || buf_append(r->out, s, n) != BUF_OK)
        return fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, line, "output larger than %zu bytes",
                    r->opt->max_output);
    return MUSTACHE_OK;
}

static mustache_status emit_escaped(render *r, unsigned line, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        default: continue;
        }
        mustache_status st = emit(r, line, s + from, i - from);
        if (st == MUSTACHE_OK) st = emit(r, line, rep, strlen(rep));
        if (st != MUSTACHE_OK) return st;
        from = i + 1;
    }
    return emit(r, line, s + from, n - from);
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 9) return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return false;
    return true;
}

static json_t *child(json_t *v, const char *name, size_t len)
{
    if (json_is_object(v)) return json_object_getn(v, name, len);
    if (json_is_array(v) && all_digits(name, len)) {
        size_t idx = 0;
        for (size_t i = 0; i < len; i++)
            idx = idx * 10 + (size_t)(name[i] - '0');
        return json_array_get(v, idx);
    }
    return NULL;
}

/* The spec's name resolution: "." is the top; the first part of a dotted name is found by walking
 * the stack down, the rest against what it found only. NULL: missing. */
static json_t *lookup(render *r, const char *name, size_t len)
{
    if (len == 1 && name[0] == '.') return r->stack[r->depth - 1];
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    json_t *v = NULL;
    for (unsigned i = r->depth; i-- > 0;) {
        v = child(r->stack[i], name, first);
        if (v) break;
    }
    size_t pos = first;
    while (v && pos < len) {
        pos++; /* the dot */
        const char *next = memchr(name + pos, '.', len - pos);
        size_t part = next ? (size_t)(next - (name + pos)) : len - pos;
        v = child(v, name + pos, part);
        pos += part;
    }
    return v;
}

static bool truthy(json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v)) return false;
    if (json_is_array(v)) return json_array_size(v) > 0;
    if (json_is_string(v)) return json_string_length(v) > 0;
    return true;
}

static mustache_status missing(render *r, unsigned line, const char *what, const char *name, size_t len)
{
    if (r->err)
        snprintf(r->err->variable, sizeof r->err->variable, "%s%.*s", what, (int)(len > 120 ? 120 : len),
                 name);
    return fail(r->err, MUSTACHE_MISSING, r->name, r->name_len, line, "missing %s'%.*s'",
                what[0] ? what : "variable ", (int)(len > 120 ? 120 : len), name);
}

static mustache_status emit_value(render *r, const mtok *t, json_t *v)
{
    char num[64];
    const char *s = ""; /* null: nothing (never a NULL pointer to offset, even by 0) */
    size_t n = 0;
    char *dumped = NULL;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        /* the shortest form that reads back as the same double: 1.210 is "1.21" */
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            n = (size_t)snprintf(num, sizeof num, "%.*g", prec, d);
            if (strtod(num, NULL) == d) break;
        }
        s = num;
    } else if (json_is_true(v)) {
        s = "true";
        n = 4;
    } else if (json_is_false(v)) {
        s = "false";
        n = 5;
    } else if (json_is_object(v) || json_is_array(v)) {
        /* a list or an object interpolated whole: its compact JSON (a prompt often wants it) */
        dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        s = dumped ? dumped : "";
        n = dumped ? strlen(dumped) : 0;
    }
    mustache_status st =
        (t->type == T_VAR && r->opt->escape_html) ? emit_escaped(r, t->line, s, n) : emit(r, t->line, s, n);
    free(dumped);
    return st;
}

static mustache_status render_text(render *r, const char *name, size_t name_len, const char *s, size_t n,
                                   const delims *d, unsigned line0);

/* A copy of s with prefix before every line that is not blank. */
static char *indent_text(const char *s, size_t n, const char *prefix, size_t plen, size_t *out_len)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    char *o = xmalloc(n + lines * plen + 1), *w = o;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : n;
        if (!whitespace_text(s, i, end - i)) {
            memcpy(w, prefix, plen);
            w += plen;
        }
        memcpy(w, s + i, end - i);
        w += end - i;
        i = end;
    }
    *w = '\0';
    *out_len = (size_t)(w - o);
    return o;
}

/* The whitespace every non-blank line starts with (its length). */
static size_t common_indent(const char *s, size_t n, size_t *first_line_start)
{
    size_t best = SIZE_MAX, i = 0;
    *first_line_start = SIZE_MAX;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : n;
        if (!whitespace_text(s, i, end - i)) {
            if (*first_line_start == SIZE_MAX) {
                *first_line_start = i;
                size_t k = 0;
                while (i + k < end && is_blank(s[i + k]))
                    k++;
                best = k;
            } else {
                size_t k = 0;
                while (k < best && i + k < end && s[i + k] == s[*first_line_start + k])
                    k++;
                best = k;
            }
        }
        i = end;
    }
    return best == SIZE_MAX ? 0 : best;
}

/* A copy of s with the common indentation removed and blank lines emptied. */
static char *dedent_text(const char *s, size_t n, size_t *out_len)
{
    size_t first;
    size_t cut = common_indent(s, n, &first);
    char *o = xmalloc(n + 1), *w = o;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : n;
        if (whitespace_text(s, i, end - i)) {
            if (nl) *w++ = '\n';
        } else {
            memcpy(w, s + i + cut, end - i - cut);
            w += end - i - cut;
        }
        i = end;
    }
    *w = '\0';
    *out_len = (size_t)(w - o);
    return o;
}

static void block_inner(const parsed *p, size_t i, const char **text, size_t *len)
{
    const mtok *o = &p->t[i], *c = &p->t[o->close];
    size_t start = o->standalone ? o->line_end : o->tag_end;
    size_t end = c->standalone ? c->line_start : c->tag_start;
    if (end < start) end = start;
    *text = p->s + start;
    *len = end - start;
}

static mustache_status enter_partial(render *r, const mtok *t)
{
    if (r->partial_depth >= r->opt->max_partial_depth)
        return fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, t->line, "partials nested deeper than %u",
                    r->opt->max_partial_depth);
    return MUSTACHE_OK;
}

/* Finds a partial or parent's text by its (maybe dynamic) name. MUSTACHE_OK with *text NULL:
 * none (empty output, or an error when strict). */
static mustache_status partial_text(render *r, const parsed *p, const mtok *t, const char **name,
                                    size_t *name_len, const char **text, size_t *len)
{
    *text = NULL;
    *name = p->s + t->start;
    *name_len = t->len;
    if (**name == '*') {
        size_t ns = t->start + 1, nl = t->len - 1;
        trim(p->s, &ns, &nl);
        json_t *v = lookup(r, p->s + ns, nl);
        if (!json_is_string(v)) return MUSTACHE_OK;
        *name = json_string_value(v);
        *name_len = json_string_length(v);
    }
    if (!r->opt->partial || !r->opt->partial(r->opt->partial_ctx, *name, *name_len, text, len)) {
        *text = NULL;
        if (r->opt->strict) return missing(r, t->line, "partial ", *name, *name_len);
    }
    return MUSTACHE_OK;
}

static mustache_status render_range(render *r, const parsed *p, size_t from, size_t to);

static mustache_status render_partial(render *r, const parsed *p, const mtok *t)
{
    mustache_status st = enter_partial(r, t);
    const char *name, *text;
    size_t name_len, len;
    if (st == MUSTACHE_OK) st = partial_text(r, p, t, &name, &name_len, &text, &len);
    if (st != MUSTACHE_OK || !text) return st;
    char *indented = NULL;
    if (t->standalone && t->indent_len) {
        indented = indent_text(text, len, p->s + t->indent_start, t->indent_len, &len);
        text = indented;
    }
    r->partial_depth++;
    st = render_text(r, name, name_len, text, len, &default_delims, 1);
    r->partial_depth--;
    free(indented);
    return st;
}

static mustache_status render_parent(render *r, const parsed *p, size_t i)
{
    const mtok *t = &p->t[i];
    size_t blocks = 0;
    for (size_t j = i + 1; j < t->close; j++) {
        uint8_t ty = p->t[j].type;
        if (ty == T_BLOCK) blocks++;
        if (ty == T_BLOCK || ty == T_SECTION || ty == T_INVERTED || ty == T_PARENT) j = p->t[j].close;
    }
    override *ov = blocks ? xcalloc(blocks, sizeof *ov) : NULL;
    override *saved = r->overrides;
    size_t k = 0;
    for (size_t j = i + 1; j < t->close; j++) {
        const mtok *b = &p->t[j];
        if (b->type == T_BLOCK) {
            ov[k].name = p->s + b->start;
            ov[k].name_len = b->len;
            block_inner(p, j, &ov[k].text, &ov[k].len);
            ov[k].dedent = b->standalone;
            ov[k].d = b->d;
            ov[k].next = r->overrides;
            r->overrides = &ov[k];
            k++;
        }
        if (b->type == T_BLOCK || b->type == T_SECTION || b->type == T_INVERTED || b->type == T_PARENT)
            j = b->close;
    }
    mustache_status st = render_partial(r, p, t);
    r->overrides = saved;
    free(ov);
    return st;
}

static mustache_status render_block(render *r, const parsed *p, size_t i)
{
    const mtok *t = &p->t[i];
    mustache_status st = enter_partial(r, t);
    if (st != MUSTACHE_OK) return st;
    const override *found = NULL;
    for (const override *o = r->overrides; o; o = o->next)
        if (o->name_len == t->len && memcmp(o->name, p->s + t->start, t->len) == 0)
            found = o; /* the outermost wins: keep looking */
    const char *own;
    size_t own_len;
    block_inner(p, i, &own, &own_len);
    const char *text = found ? found->text : own;
    size_t len = found ? found->len : own_len;
    const delims *d = found ? found->d : t->d;
    char *dedented = NULL, *indented = NULL;
    if (found ? found->dedent : t->standalone) {
        dedented = dedent_text(text, len, &len);
        text = dedented;
    }
    if (t->standalone) {
        /* where the block lands: its default's indentation, else the tag's */
        size_t first;
        size_t cut = common_indent(own, own_len, &first);
        const char *prefix = cut ? own + first : p->s + t->indent_start;
        size_t plen = cut ? cut : t->indent_len;
        if (plen) {
            indented = indent_text(text, len, prefix, plen, &len);
            text = indented;
        }
    }
    r->partial_depth++;
    st = render_text(r, r->name, r->name_len, text, len, d, t->line + (t->standalone ? 1 : 0));
    r->partial_depth--;
    free(dedented);
    free(indented);
    return st;
}

static mustache_status push_context(render *r, const mtok *t, json_t *v)
{
    if (r->depth >= r->opt->max_depth || r->depth >= MUSTACHE_HARD_DEPTH)
        return fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, t->line, "sections nested deeper than %u",
                    r->opt->max_depth);
    r->stack[r->depth++] = v;
    return MUSTACHE_OK;
}

static mustache_status step(render *r, unsigned line)
{
    if (++r->steps > r->opt->max_steps)
        return fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, line, "more than %zu steps of rendering",
                    r->opt->max_steps);
    return MUSTACHE_OK;
}

static mustache_status render_range(render *r, const parsed *p, size_t from, size_t to)
{
    mustache_status st = MUSTACHE_OK;
    for (size_t i = from; i < to && st == MUSTACHE_OK; i++) {
        const mtok *t = &p->t[i];
        if ((st = step(r, t->line)) != MUSTACHE_OK) break;
        switch (t->type) {
        case T_TEXT: st = emit(r, t->line, p->s + t->start, t->len); break;
        case T_VAR:
        case T_RAW: {
            json_t *v = lookup(r, p->s + t->start, t->len);
            if (!v && r->opt->strict)
                st = missing(r, t->line, "", p->s + t->start, t->len);
            else if (v)
                st = emit_value(r, t, v);
            break;
        }
        case T_SECTION: {
            json_t *v = lookup(r, p->s + t->start, t->len);
            if (json_is_array(v)) {
                for (size_t k = 0; k < json_array_size(v) && st == MUSTACHE_OK; k++) {
                    if ((st = step(r, t->line)) != MUSTACHE_OK ||
                        (st = push_context(r, t, json_array_get(v, k))))
                        break;
                    st = render_range(r, p, i + 1, t->close);
                    r->depth--;
                }
            } else if (truthy(v)) {
                if ((st = push_context(r, t, v)) == MUSTACHE_OK) {
                    st = render_range(r, p, i + 1, t->close);
                    r->depth--;
                }
            }
            i = t->close;
            break;
        }
        case T_INVERTED:
            if (!truthy(lookup(r, p->s + t->start, t->len))) st = render_range(r, p, i + 1, t->close);
            i = t->close;
            break;
        case T_PARTIAL: st = render_partial(r, p, t); break;
        case T_PARENT:
            st = render_parent(r, p, i);
            i = t->close;
            break;
        case T_BLOCK:
            st = render_block(r, p, i);
            i = t->close;
            break;
        default: break;
        }
    }
    return st;
}

static mustache_status render_text(render *r, const char *name, size_t name_len, const char *s, size_t n,
                                   const delims *d, unsigned line0)
{
    const char *saved_name = r->name;
    size_t saved_len = r->name_len;
    r->name = name;
    r->name_len = name_len;
    parsed p;
    mustache_status st = parse(&p, s, n, d, r, line0);
    if (st == MUSTACHE_OK && r->steps > r->opt->max_steps)
        st = fail(r->err, MUSTACHE_LIMIT, r->name, r->name_len, line0, "more than %zu steps of rendering",
                  r->opt->max_steps);
    if (st == MUSTACHE_OK) st = render_range(r, &p, 0, p.count);
    parsed_free(&p);
    if (st == MUSTACHE_OK) {
        r->name = saved_name;
        r->name_len = saved_len;
    }
    return st;
}

mustache_status mustache_render(const char *text, size_t len, json_t *data, const mustache_options *opt,
                                buf *out, mustache_error *err)
{
    render r;
    memset(&r, 0, sizeof r);
    r.opt = opt;
    r.out = out;
    r.out_base = out->len;
    r.err = err;
    if (err) memset(err, 0, sizeof *err);
    json_t *empty = NULL;
    if (!data) data = empty = json_object();
    r.stack[r.depth++] = data;
    const char *name = opt->name ? opt->name : "template";
    mustache_status st = render_text(&r, name, strlen(name), text, len, &default_delims, 1);
    json_decref(empty);
    return st;
}

mustache_status mustache_check(const char *text, size_t len, const char *name, mustache_error *err)
{
    mustache_options opt;
    mustache_options_init(&opt);
    render r;
    memset(&r, 0, sizeof r);
    r.opt = &opt;
    r.err = err;
    r.name = name ? name : "template";
    r.name_len = strlen(r.name);
    if (err) memset(err, 0, sizeof *err);
    parsed p;
    mustache_status st = parse(&p, text, len, &default_delims, &r, 1);
    parsed_free(&p);
    return st;
}

mustache_status mustache_variables(const char *text, size_t len,
                                   void (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
    mustache_options opt;
    mustache_options_init(&opt);
    render r;
    memset(&r, 0, sizeof r);
    r.opt = &opt;
    r.name = "template";
    r.name_len = 8;
    parsed p;
    mustache_status st = parse(&p, text, len, &default_delims, &r, 1);
    if (st == MUSTACHE_OK) {
        unsigned inside = 0; /* sections open (their names resolve against the section first) */
        size_t ends[MUSTACHE_HARD_DEPTH];
        for (size_t i = 0; i < p.count; i++) {
            while (inside && i > ends[inside - 1])
                inside--;
            const mtok *t = &p.t[i];
            bool named =
                t->type == T_VAR || t->type == T_RAW || t->type == T_SECTION || t->type == T_INVERTED;
            if (named && inside == 0 && !(t->len == 1 && text[t->start] == '.')) {
                const char *dot = memchr(text + t->start, '.', t->len);
                fn(ctx, text + t->start, dot ? (size_t)(dot - (text + t->start)) : t->len);
            }
            if (t->type == T_SECTION && inside < MUSTACHE_HARD_DEPTH) ends[inside++] = t->close;
        }
    }
    parsed_free(&p);
    return st;
}
