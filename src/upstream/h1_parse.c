/* h1_parse.c — strict HTTP/1.1 response parsing; see h1_parse.h for what is refused and why.
 *
 * The head is parsed only once it is whole (h1.c finds its end in the read buffer, and copies
 * it only when it spans reads), which keeps this a plain function over one buffer. The body
 * reader is a byte-level state machine for chunked framing and a counter otherwise; data is
 * handed out as spans of the input. Rejected: http-parser for responses — Debian's build is
 * lenient in the ways ARCHITECTURE.md lists for requests (a lax chunk size, a missing CRLF
 * after chunk data), and those are exactly where a response could be read two ways. */
#include "upstream/h1_parse.h"

#include <string.h>
#include <strings.h>

enum {
    BODY_LENGTH,    /* Content-Length bytes left in remaining */
    BODY_CLOSE,     /* until the connection closes */
    CHUNK_SIZE,     /* hex digits of a chunk size (line_len: digits seen) */
    CHUNK_SIZE_WS,  /* whitespace after the size */
    CHUNK_EXT,      /* a chunk extension, skipped to the line end */
    CHUNK_SIZE_LF,  /* a CR ended the size line: LF must follow */
    CHUNK_DATA,     /* remaining bytes of chunk data */
    CHUNK_DATA_CR,  /* the line end after chunk data */
    CHUNK_DATA_LF,  /* … its LF after a CR */
    TRAILER_START,  /* the start of a trailer line, or the final blank line */
    TRAILER_LINE,   /* a trailer field, skipped */
    TRAILER_END_LF, /* the final blank line's LF after its CR */
    BODY_DONE,
};

/* Chunk sizes and lengths stay far below what could overflow a sum of them. */
#define LENGTH_MAX ((uint64_t)1 << 62)

size_t h1_head_length(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        p++;
        if (p < end && *p == '\n') return (size_t)(p + 1 - buf);
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n') return (size_t)(p + 2 - buf);
    }
    return 0;
}

static bool is_tchar(unsigned char c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    if (c >= '0' && c <= '9') return true;
    return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* A control byte other than HTAB, or DEL. */
static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
    }
    return false;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && !strncasecmp(name, want, len);
}

/* Calls each element of a comma-separated list, OWS trimmed; empty elements are skipped (RFC
 * 9110 §5.6.1). Stops at the first element `each` refuses. */
static bool each_element(const char *v, size_t len, bool (*each)(void *ud, const char *e, size_t n), void *ud)
{
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (b > a && !each(ud, v + a, b - a)) return false;
        i++;
    }
    return true;
}

typedef struct framing {
    h1_head *head;
    int lengths; /* Content-Length values seen */
    int codings; /* Transfer-Encoding codings seen */
    bool close, keep_alive_token;
} framing;

static bool on_length(void *ud, const char *e, size_t n)
{
    framing *f = ud;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i] < '0' || e[i] > '9') return false;
        v = v * 10 + (uint64_t)(e[i] - '0');
        if (v > LENGTH_MAX) return false;
    }
    if (f->lengths++ && v != f->head->content_length) return false;
    f->head->content_length = v;
    f->head->has_length = true;
    return true;
}

static bool on_coding(void *ud, const char *e, size_t n)
{
    framing *f = ud;
    if (f->codings++ || !name_is(e, n, "chunked")) return false;
    f->head->chunked = true;
    return true;
}

static bool on_connection(void *ud, const char *e, size_t n)
{
    framing *f = ud;
    if (name_is(e, n, "close")) f->close = true;
    if (name_is(e, n, "keep-alive")) f->keep_alive_token = true;
    return true;
}

static h1_result parse_status_line(const char *s, size_t len, h1_head *out)
{
    if (len < 12 || memcmp(s, "HTTP/1.", 7) || (s[7] != '0' && s[7] != '1') || s[8] != ' ') return H1_ERROR;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') return H1_ERROR;
        status = status * 10 + (s[i] - '0');
    }
    if (status < 100) return H1_ERROR;
    if (len > 12 && (s[12] != ' ' || has_ctl(s + 13, len - 13))) return H1_ERROR;
    out->status = status;
    out->minor_version = s[7] - '0';
    return H1_DONE;
}

h1_result h1_parse_head(char *buf, size_t len, h1_head *out)
{
    memset(out, 0, sizeof *out);
    framing f = {.head = out};
    char *p = buf, *end = buf + len;
    bool first = true;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return H1_ERROR; /* h1_head_length found the blank line: cannot happen */
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r') n--;
        char *next = nl + 1;
        if (first) {
            if (parse_status_line(p, n, out) != H1_DONE) return H1_ERROR;
            first = false;
            p = next;
            continue;
        }
        if (!n) break;                                    /* the blank line */
        if (p[0] == ' ' || p[0] == '\t') return H1_ERROR; /* obsolete line folding */
        size_t name_len = 0;
        while (name_len < n && is_tchar((unsigned char)p[name_len]))
            name_len++;
        if (!name_len || name_len == n || p[name_len] != ':') return H1_ERROR;
        const char *value = p + name_len + 1;
        size_t value_len = n - name_len - 1;
        bool clean = !has_ctl(value, value_len);
        bool ok = true;
        if (name_is(p, name_len, "content-length"))
            ok = clean && each_element(value, value_len, on_length, &f) && f.lengths;
        else if (name_is(p, name_len, "transfer-encoding"))
            ok = clean && each_element(value, value_len, on_coding, &f) && f.codings;
        else if (name_is(p, name_len, "connection"))
            each_element(value, value_len, on_connection, &f);
        if (!ok) return H1_ERROR;
        if (clean && out->nlines < H1_HEAD_LINES_MAX) {
            p[n] = '\0';
            out->lines[out->nlines++] = p;
        }
        p = next;
    }
    if (first) return H1_ERROR;
    if (out->chunked && out->has_length) return H1_ERROR;
    out->keep_alive = !f.close && (out->minor_version == 1 || f.keep_alive_token);
    return H1_DONE;
}

void h1_body_init(h1_body *body, const h1_head *head)
{
    memset(body, 0, sizeof *body);
    body->keep_alive = head->keep_alive;
    if ((head->status >= 100 && head->status < 200) || head->status == 204 || head->status == 304) {
        body->state = BODY_DONE;
    } else if (head->chunked) {
        body->state = CHUNK_SIZE;
    } else if (head->has_length) {
        body->state = head->content_length ? BODY_LENGTH : BODY_DONE;
        body->remaining = head->content_length;
    } else {
        body->state = BODY_CLOSE;
        body->keep_alive = false;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/* The chunk-size line ended. */
static void size_line_done(h1_body *b)
{
    b->state = b->remaining ? CHUNK_DATA : TRAILER_START;
    b->line_len = 0;
}

h1_result h1_body_feed(h1_body *b, const char *in, size_t len, size_t *consumed, const char **data,
                       size_t *data_len)
{
    size_t i = 0;
    *data = NULL;
    *data_len = 0;
    while (i < len || b->state == BODY_DONE) {
        switch (b->state) {
        case BODY_DONE: *consumed = i; return H1_DONE;
        case BODY_CLOSE:
            *data = in + i;
            *data_len = len - i;
            *consumed = len;
            return H1_DATA;
        case BODY_LENGTH:
        case CHUNK_DATA: {
            size_t n = len - i < b->remaining ? len - i : (size_t)b->remaining;
            *data = in + i;
            *data_len = n;
            b->remaining -= n;
            if (!b->remaining) b->state = b->state == BODY_LENGTH ? BODY_DONE : CHUNK_DATA_CR;
            *consumed = i + n;
            return H1_DATA;
        }
        default: break;
        }
        char c = in[i++];
        switch (b->state) {
        case CHUNK_SIZE: {
            int h = hex_value(c);
            if (h >= 0) {
                if (b->remaining > (LENGTH_MAX >> 4)) goto error;
                b->remaining = (b->remaining << 4) | (uint64_t)h;
                b->line_len++;
            } else if (!b->line_len) {
                goto error;
            } else if (c == ' ' || c == '\t') {
                b->state = CHUNK_SIZE_WS;
            } else if (c == ';') {
                b->state = CHUNK_EXT;
            } else if (c == '\r') {
                b->state = CHUNK_SIZE_LF;
            } else if (c == '\n') {
                size_line_done(b);
            } else {
                goto error;
            }
            break;
        }
        case CHUNK_SIZE_WS:
            if (c == ';')
                b->state = CHUNK_EXT;
            else if (c == '\r')
                b->state = CHUNK_SIZE_LF;
            else if (c == '\n')
                size_line_done(b);
            else if (c != ' ' && c != '\t')
                goto error;
            break;
        case CHUNK_EXT:
            if (c == '\r')
                b->state = CHUNK_SIZE_LF;
            else if (c == '\n')
                size_line_done(b);
            else if (++b->line_len > H1_LINE_MAX || ((unsigned char)c < 0x20 && c != '\t'))
                goto error;
            break;
        case CHUNK_SIZE_LF:
            if (c != '\n') goto error;
            size_line_done(b);
            break;
        case CHUNK_DATA_CR:
            if (c == '\r')
                b->state = CHUNK_DATA_LF;
            else if (c == '\n')
                b->state = CHUNK_SIZE;
            else
                goto error;
            break;
        case CHUNK_DATA_LF:
            if (c != '\n') goto error;
            b->state = CHUNK_SIZE;
            break;
        case TRAILER_START:
            if (c == '\r') {
                b->state = TRAILER_END_LF;
            } else if (c == '\n') {
                b->state = BODY_DONE;
            } else {
                b->state = TRAILER_LINE;
                b->line_len = 1;
            }
            break;
        case TRAILER_LINE:
            if (c == '\n')
                b->state = TRAILER_START;
            else if (++b->line_len > H1_LINE_MAX)
                goto error;
            break;
        case TRAILER_END_LF:
            if (c != '\n') goto error;
            b->state = BODY_DONE;
            break;
        default: goto error;
        }
    }
    *consumed = i;
    return H1_MORE;
error:
    *consumed = i;
    return H1_ERROR;
}

bool h1_body_eof_ends(const h1_body *body)
{
    return body->state == BODY_CLOSE || body->state == BODY_DONE;
}

bool h1_body_done(const h1_body *body)
{
    return body->state == BODY_DONE;
}
