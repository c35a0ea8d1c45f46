/* prepare.h — providers made ready after the config file is read, and derived at run time.
 *
 * The second step of the load sequence (gateway_config_load): config_load() reads the file,
 * providers_prepare() resolves what depends on a provider's preset, routing_build() follows. */
#ifndef AIGW_PROVIDERS_PREPARE_H
#define AIGW_PROVIDERS_PREPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "providers/wire.h"
#include "util/arena.h"

/* For every provider of cfg: its `type:` resolved to a preset (an unknown type is refused),
 * the preset's base URL when the file gave none (a type without one, like azure, is refused),
 * Azure's api-version, the request URLs and the static request headers. Returns false with
 * "file:line: message" in err; cfg is then only fit for config_free(). */
bool providers_prepare(aigw_config *cfg, char *err, size_t errlen);

/* A provider like base (or, when base is NULL, a fresh one of preset) at another base URL
 * and/or with another key, built in a (Portkey's custom_host and inline api_key). At another
 * base URL it keeps neither base's key nor its extra headers. NULL when base_url is not an
 * http(s) URL. Everything is allocated in a, or borrowed from base and preset. */
const provider_config *providers_derive(arena *a, const provider_config *base, const provider_preset *preset,
                                        const char *base_url, const char *api_key);

#endif
