/* headers.c — header lookup by name (see headers.h). */
#include "util/headers.h"

#include <string.h>
#include <strings.h>

const http_header *http_header_find(const http_header *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == len && !strncasecmp(h[i].name, name, len)) return &h[i];
    return NULL;
}
