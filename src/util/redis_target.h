/* redis_target.h — where a Redis server is, read from the config's URL: shared by the parts
 * that talk to Redis on the workers' loops (the rate limiter's src/limits/limits_redis.c, the
 * response cache's src/cache/cache_redis.c), so both read the same URL forms the same way.
 *
 * The host is resolved here, once, at start: hiredis would otherwise resolve it on an event
 * loop (a blocking getaddrinfo). A password in the URL is refused (it would show in messages
 * and in the running config). */
#ifndef AIGW_UTIL_REDIS_TARGET_H
#define AIGW_UTIL_REDIS_TARGET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct redis_target {
    char host[64]; /* a numeric address; empty for a unix socket */
    int port;
    char path[108]; /* the unix socket */
    int db;
    char url[300]; /* as configured, for messages (it carries no password: none is accepted) */
} redis_target;

/* Reads redis://HOST[:PORT][/DB] or unix:PATH[?db=N] (a bare /PATH too). HOST is resolved now
 * (blocking: call it at start, never on a loop). setting names the config's setting in
 * messages ("auth.limits.redis"). False with a message in err. */
bool redis_target_parse(const char *url, const char *setting, redis_target *out, char *err, size_t errlen);

#endif
