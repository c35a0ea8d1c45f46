/* redis_target.c — a Redis URL read into an address (redis_target.h). */
#include "util/redis_target.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool redis_target_parse(const char *url, const char *setting, redis_target *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->url, sizeof out->url, "%s", url);
    const char *path = !strncmp(url, "unix:", 5) ? url + 5 : url[0] == '/' ? url : NULL;
    if (path) {
        const char *q = strstr(path, "?db=");
        size_t len = q ? (size_t)(q - path) : strlen(path);
        if (!len || len >= sizeof out->path) {
            snprintf(err, errlen, "%s: the unix socket path is empty or too long", setting);
            return false;
        }
        memcpy(out->path, path, len);
        char *end = NULL;
        long db = q ? strtol(q + 4, &end, 10) : 0;
        if (q && (end == q + 4 || *end)) db = -1;
        out->db = (int)db;
        if (db < 0 || db > 1000) {
            snprintf(err, errlen, "%s: bad database number", setting);
            return false;
        }
        return true;
    }
    if (strncmp(url, "redis://", 8)) {
        /* the scheme only: what follows may hold a password */
        snprintf(err, errlen, "%s must be redis://HOST:PORT/DB or unix:PATH (got '%.*s…')", setting,
                 (int)strcspn(url, ":/@"), url);
        return false;
    }
    const char *h = url + 8;
    if (strchr(h, '@')) {
        snprintf(err, errlen, "%s: a password in the URL is not supported", setting);
        return false;
    }
    char host[256];
    size_t hlen = strcspn(h, ":/");
    if (!hlen || hlen >= sizeof host) {
        snprintf(err, errlen, "%s: no host in '%.64s'", setting, url);
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    const char *rest = h + hlen;
    out->port = 6379;
    if (*rest == ':') {
        char *end;
        long port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || port <= 0 || port > 65535) {
            snprintf(err, errlen, "%s: bad port in '%.64s'", setting, url);
            return false;
        }
        out->port = (int)port;
        rest = end;
    }
    if (*rest == '/' && rest[1]) {
        char *end;
        long db = strtol(rest + 1, &end, 10);
        if (*end || db < 0 || db > 1000) {
            snprintf(err, errlen, "%s: bad database number in '%.64s'", setting, url);
            return false;
        }
        out->db = (int)db;
    } else if (*rest && strcmp(rest, "/")) {
        snprintf(err, errlen, "%s: cannot read '%.64s'", setting, url);
        return false;
    }
    /* resolved once, here at start: hiredis would resolve on the loop */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "%s: cannot resolve %s: %s", setting, host, gai_strerror(rc));
        return false;
    }
    void *addr = res->ai_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                                            : (void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, out->host, sizeof out->host);
    freeaddrinfo(res);
    return true;
}
