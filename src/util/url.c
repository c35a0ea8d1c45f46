/* url.c — http(s) URLs in one comparable spelling (url.h).
 *
 * Written for routing's allowed_hosts: the config's prefixes and a request's custom_host are
 * both normalised here, so "HTTPS://Api.Example/v1/" and "https://api.example:443/v1" are
 * the same text and a prefix test on text is a prefix test on URLs. What could make curl
 * reach something other than what was compared (dot segments, escaped slashes, credentials,
 * a query) is refused rather than rewritten. */
#include "util/url.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool url_normalize(const char *url, char *out, size_t len, const char **why)
{
    static const char unreserved_path[] = "-._~!$&'()*+,;=:@/";
    size_t o = 0;
    uint32_t default_port;
#define PUT(c)                                                                                               \
    do {                                                                                                     \
        if (o + 1 >= len) return *why = "too long", false;                                                   \
        out[o++] = (c);                                                                                      \
    } while (0)
    if (!strncasecmp(url, "http://", 7)) {
        default_port = 80;
        url += 7;
    } else if (!strncasecmp(url, "https://", 8)) {
        default_port = 443;
        url += 8;
    } else {
        return *why = "must start with http:// or https://", false;
    }
    for (const char *c = default_port == 80 ? "http://" : "https://"; *c; c++)
        PUT(*c);
    if (memchr(url, '@', strcspn(url, "/"))) return *why = "credentials in the URL are not accepted", false;
    /* host: a name, an IPv4 address or a bracketed IPv6 literal; lower case */
    const char *h = url;
    if (*h == '[') {
        PUT('[');
        for (h++; *h && *h != ']'; h++) {
            if (!isxdigit((unsigned char)*h) && *h != ':' && *h != '.')
                return *why = "an IPv6 host has only hex digits, ':' and '.' between its brackets", false;
            PUT((char)tolower((unsigned char)*h));
        }
        if (*h != ']' || h == url + 1) return *why = "an IPv6 host needs its closing bracket", false;
        PUT(']');
        h++;
    } else {
        for (; *h && *h != ':' && *h != '/'; h++) {
            if (!isalnum((unsigned char)*h) && *h != '.' && *h != '-' && *h != '_')
                return *why = "the host has only letters, digits, '.', '-' and '_' (no query, fragment or "
                              "spaces)",
                       false;
            PUT((char)tolower((unsigned char)*h));
        }
        if (h == url) return *why = "the host is missing", false;
    }
    /* port: explicit, or the scheme's default — written out, so prefixes compare as text */
    uint32_t port = default_port;
    if (*h == ':') {
        port = 0;
        const char *d = ++h;
        for (; isdigit((unsigned char)*h) && h - d < 6; h++)
            port = port * 10 + (uint32_t)(*h - '0');
        if (h == d || isdigit((unsigned char)*h) || port == 0 || port > 65535)
            return *why = "the port must be a number from 1 to 65535", false;
    }
    if (*h && *h != '/') return *why = "the host is followed by something other than a port or a path", false;
    char digits[8];
    snprintf(digits, sizeof digits, ":%u", port);
    for (const char *c = digits; *c; c++)
        PUT(*c);
    /* path: RFC 3986 characters only; no '?', '#', spaces or control characters; no dot
     * segments, written or %-encoded (curl would resolve them and leave the allowed prefix) */
    const char *segment = h;
    for (;; h++) {
        if (*h == '/' || !*h) {
            size_t n = (size_t)(h - segment) - (*segment == '/');
            const char *sg = segment + (*segment == '/');
            if ((n == 1 && sg[0] == '.') || (n == 2 && sg[0] == '.' && sg[1] == '.'))
                return *why = "dot segments ('.' or '..') are not accepted in the path", false;
            segment = h;
            if (!*h) break;
        }
        if (*h == '%') {
            int hi = hex_value(h[1]), lo = hi < 0 ? -1 : hex_value(h[2]);
            if (lo < 0) return *why = "a '%' in the path must start an escape like %20", false;
            int v = hi * 16 + lo;
            if (v == '.' || v == '/' || v == '\\' || v < 0x20 || v >= 0x7f)
                return *why = "escaped '.', '/', '\\' or control characters are not accepted in the path",
                       false;
        } else if (!isalnum((unsigned char)*h) && !strchr(unreserved_path, *h)) {
            return *why = "the path has a character URLs do not allow there (a query, fragment or space?)",
                   false;
        }
        PUT(*h);
    }
    while (o > 0 && out[o - 1] == '/') /* "/v1/" is "/v1"; the root is "" */
        o--;
    out[o] = '\0';
    return true;
#undef PUT
}
