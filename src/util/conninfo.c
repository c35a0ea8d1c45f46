/* conninfo.c — PostgreSQL connection strings told apart from file paths, and shown without
 * their password (conninfo.h).
 *
 * The redaction is deliberately blunt: it does not parse the whole libpq grammar, it finds the
 * places a password can be written (the URI's userinfo after the first ':', a `password=`
 * query parameter, a `password` keyword and its value, quoted or not) and masks them. Any
 * string it does not understand still loses those spans; nothing else is changed. */
#include "util/conninfo.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

static void redact_uri(writer *w, const char *s, size_t scheme)
{
    put(w, s, scheme);
    const char *rest = s + scheme;
    size_t authority = strcspn(rest, "/?#");
    /* the userinfo ends at the authority's last '@' (a password may hold '@' percent-encoded
     * only, but be lenient) */
    const char *at = NULL;
    for (size_t i = 0; i < authority; i++)
        if (rest[i] == '@') at = rest + i;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon) {
            put(w, rest, (size_t)(colon - rest) + 1);
            put(w, "***", 3);
            rest = at;
        }
    }
    /* query parameters: password=… up to the next '&' or '#' */
    const char *query = strchr(rest, '?');
    if (!query) {
        put(w, rest, strlen(rest));
        return;
    }
    put(w, rest, (size_t)(query - rest) + 1);
    const char *p = query + 1;
    while (*p) {
        size_t param = strcspn(p, "&#");
        if (param >= 9 && !strncasecmp(p, "password=", 9)) {
            put(w, p, 9);
            put(w, "***", 3);
        } else {
            put(w, p, param);
        }
        p += param;
        if (*p) put(w, p++, 1);
    }
}

/* key = value pairs separated by spaces; values may be 'quoted' with \' and \\ escapes. */
static void redact_keywords(writer *w, const char *s)
{
    const char *p = s;
    while (*p) {
        size_t space = strspn(p, " \t\n\r");
        put(w, p, space);
        p += space;
        if (!*p) break;
        size_t key = strcspn(p, "= \t\n\r");
        bool is_password = key == 8 && !strncmp(p, "password", 8);
        put(w, p, key);
        p += key;
        size_t gap = strspn(p, " \t");
        put(w, p, gap);
        p += gap;
        if (*p != '=') continue;
        put(w, p++, 1);
        gap = strspn(p, " \t");
        put(w, p, gap);
        p += gap;
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
        if (is_password)
            put(w, "***", 3);
        else
            put(w, value, (size_t)(p - value));
    }
}

void conninfo_redact(const char *s, char *out, size_t len)
{
    writer w = {out, len, 0};
    out[0] = '\0';
    if (!s) return;
    size_t scheme = uri_scheme_len(s);
    if (scheme)
        redact_uri(&w, s, scheme);
    else if (conninfo_is_postgres(s))
        redact_keywords(&w, s);
    else
        put(&w, s, strlen(s));
}
