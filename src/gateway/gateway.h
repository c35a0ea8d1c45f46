/* gateway.h — the gateway's configuration, loaded whole: the one load sequence.
 *
 * Above config, providers and routing (it is the only place that calls all three in order);
 * below main.c. Whatever else needs a loaded config (aigw serve, aigw config check, the
 * tests, a live reload) goes through gateway_config_load — a reload in src/server is handed
 * it as a function pointer, since server sits below providers and routing. */
#ifndef AIGW_GATEWAY_GATEWAY_H
#define AIGW_GATEWAY_GATEWAY_H

#include <stddef.h>

#include "config/config.h"

/* The signature of gateway_config_load, for code that is given it. */
typedef aigw_config *gateway_config_loader(const char *path, char *err, size_t errlen);

/* Reads path (config_load), prepares its providers (providers_prepare), builds its routes
 * (routing_build). On success returns a config ready to serve, freed with config_free();
 * on failure returns NULL with "file:line: message" (or "file: message") in err, having
 * freed everything: every mistake config_load finds, one a line in the file's order (see
 * config_load), or else the first one providers_prepare or routing_build finds. */
aigw_config *gateway_config_load(const char *path, char *err, size_t errlen);

/* The same, for a live reload: what the new config shares with previous carries over — the
 * health of every target whose provider did not change (same type and base URL). */
aigw_config *gateway_config_reload(const char *path, const aigw_config *previous, char *err, size_t errlen);

#endif
