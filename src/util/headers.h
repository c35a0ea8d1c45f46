/* headers.h — one HTTP header as parsed (name and value pointing into a buffer someone else
 * owns), and a lookup over an array of them.
 *
 * Kept in util so the server (which parses them) and the providers (which read a client's key
 * and betas) share the type without the providers depending on the server. Headers are few
 * (at most the server's REQUEST_MAX_HEADERS), so a linear search beats building an index. */
#ifndef AIGW_UTIL_HEADERS_H
#define AIGW_UTIL_HEADERS_H

#include <stddef.h>

typedef struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
} http_header;

/* The first of the n headers h whose name equals name (NUL-terminated), compared without
 * regard to case; NULL when there is none. The result points into h. */
const http_header *http_header_find(const http_header *h, size_t n, const char *name);

#endif
