/* conninfo.c — PostgreSQL connection strings told apart from file paths, and shown without
 * their password (conninfo.h).
 *
 * The redaction is deliberately blunt: it does not parse the whole libpq grammar, it finds the
 * places a password can be written (the URI's userinfo after the first ':', a `password=`
 * query parameter, a `password` keyword and its value, quoted or not) and masks them. Any
 * string it does not understand still loses those spans; nothing else is changed. The same
 * spans are scrubbed from libpq's own messages, which quote a malformed token as written (a
 * password with a stray '%' in a URI is one). */
#include "util/conninfo.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SPANS_MAX 8 /* where a password can be written in one string, with room to spare */

typedef struct span {
    size_t at, len;
} span;

static const char *const uri_schemes[] = {"postgresql://", "postgres://"};
static const char *const leading_keywords[] = {"host", "hostaddr", "dbname",  "user",
                                               "port", "service",  "password"};

static size_t uri_scheme_len(const char *s)
{
    for (size_t i = 0; i < sizeof uri_schemes / sizeof uri_schemes[0]; i++)
        if (!strncasecmp(s, uri_schemes[i], strlen(uri_schemes[i]))) return strlen(uri_schemes[i]);
    return 0;
}

bool conninfo_is_postgres(const char *s)
{
    if (!s) return false;
    if (uri_scheme_len(s)) return true;
    while (isspace((unsigned char)*s))
        s++;
    for (size_t i = 0; i < sizeof leading_keywords / sizeof leading_keywords[0]; i++) {
        size_t n = strlen(leading_keywords[i]);
        if (strncmp(s, leading_keywords[i], n)) continue;
        const char *p = s + n;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '=') return true;
    }
    return false;
}

static void add_span(span *spans, size_t *n, const char *base, const char *from, const char *to)
{
    if (*n < SPANS_MAX && to > from) spans[(*n)++] = (span){(size_t)(from - base), (size_t)(to - from)};
}

/* The URI's password spans: userinfo after ':' up to the authority's last '@'; password=
 * query parameters up to the next '&' or '#'. */
static size_t uri_passwords(const char *s, size_t scheme, span *spans)
{
    size_t n = 0;
    const char *rest = s + scheme;
    size_t authority = strcspn(rest, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < authority; i++)
        if (rest[i] == '@') at = rest + i;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon) add_span(spans, &n, s, colon + 1, at);
    }
    const char *query = strchr(rest + authority, '?');
    for (const char *p = query ? query + 1 : ""; *p;) {
        size_t param = strcspn(p, "&#");
        if (param >= 9 && !strncasecmp(p, "password=", 9)) add_span(spans, &n, s, p + 9, p + param);
        p += param;
        if (*p == '#') break;
        if (*p) p++;
    }
    return n;
}

/* key = value pairs separated by spaces; values may be 'quoted' with \' and \\ escapes. */
static size_t keyword_passwords(const char *s, span *spans)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        p += strspn(p, " \t\n\r");
        if (!*p) break;
        size_t key = strcspn(p, "= \t\n\r");
        bool is_password = key == 8 && !strncmp(p, "password", 8);
        p += key;
        p += strspn(p, " \t");
        if (*p != '=') continue;
        p++;
        p += strspn(p, " \t");
        const char *value = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1]) p++;
                p++;
            }
            if (*p) p++;
        } else {
            p += strcspn(p, " \t\n\r");
        }
        if (is_password) add_span(spans, &n, s, value, p);
    }
    return n;
}

static size_t find_passwords(const char *s, span *spans)
{
    size_t scheme = uri_scheme_len(s);
    if (scheme) return uri_passwords(s, scheme, spans);
    return conninfo_is_postgres(s) ? keyword_passwords(s, spans) : 0;
}

/* A bounded writer: what does not fit is dropped, out stays terminated. */
typedef struct writer {
    char *out;
    size_t len, used;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    while (n-- && w->used + 1 < w->len)
        w->out[w->used++] = *s++;
    w->out[w->used] = '\0';
}

void conninfo_redact(const char *s, char *out, size_t len)
{
    writer w = {out, len, 0};
    out[0] = '\0';
    if (!s) return;
    span spans[SPANS_MAX];
    size_t n = find_passwords(s, spans), from = 0;
    for (size_t i = 0; i < n; i++) { /* found left to right */
        put(&w, s + from, spans[i].at - from);
        put(&w, "***", 3);
        from = spans[i].at + spans[i].len;
    }
    put(&w, s + from, strlen(s + from));
}

void conninfo_scrub(const char *conninfo, char *msg, size_t len)
{
    if (!conninfo || !len) return;
    span spans[SPANS_MAX];
    size_t n = find_passwords(conninfo, spans);
    for (size_t i = 0; i < n; i++) {
        const char *secret = conninfo + spans[i].at;
        size_t secret_len = spans[i].len;
        char *from = msg, *hit;
        while ((hit = memmem(from, strlen(from), secret, secret_len))) {
            size_t prefix = (size_t)(hit - msg);
            if (prefix + 3 >= len) { /* no room even for the mask: the message ends here */
                *hit = '\0';
                break;
            }
            size_t tail = strlen(hit + secret_len);
            if (prefix + 3 + tail >= len) tail = len - 1 - prefix - 3;
            memmove(hit + 3, hit + secret_len, tail);
            memcpy(hit, "***", 3);
            hit[3 + tail] = '\0';
            from = hit + 3; /* past the mask: a password of asterisks cannot match it forever */
        }
    }
}
