/* url.h — an http(s) URL in the one spelling URL prefixes are compared in. */
#ifndef AIGW_UTIL_URL_H
#define AIGW_UTIL_URL_H

#include <stdbool.h>
#include <stddef.h>

/* Writes url into out (len bytes; 1 KiB is plenty) with scheme and host in lower case, the
 * port written out (80 / 443 when absent), the path without its trailing '/'
 * ("HTTPS://Api.Example/v1/" → "https://api.example:443/v1"). Refused (false, *why a fixed
 * sentence that quotes nothing of the URL): other schemes, credentials, a query or fragment,
 * spaces and control characters, characters URLs do not allow, dot segments ('.', '..')
 * written or %-encoded, escaped '/' or '\'. */
bool url_normalize(const char *url, char *out, size_t len, const char **why);

#endif
