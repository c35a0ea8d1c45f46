/* pipeline.h — the gateway's application: what the server runs for each request.
 *
 * main.c hands pipeline_app to server_run; the server calls it for every request, and the
 * pipeline walks the request through its stages (stage.h: the phase table and the interface a
 * module joins the path with; exchange.h: the per-request state the stages share). */
#ifndef AIGW_PIPELINE_PIPELINE_H
#define AIGW_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"
#include "util/arena.h"

extern const http_app pipeline_app;

/* Virtual keys for the trees of request configs (routing.h's routing_providers, handed in by
 * the load sequence): the provider type and base URL (NULL: the type's) of the store's
 * virtual key name, copied into a — false when there is none or auth is off; and the version
 * of the store's snapshot, which moves with every change (a kept tree that used a virtual key
 * is built again when it moved). Any thread, no I/O; the first takes the store service's lock
 * (a tree is built on a cache miss only), the second is one atomic load (every hit asks). */
bool pipeline_virtual_key(arena *a, const char *name, const char **type, const char **base_url);
uint64_t pipeline_virtual_keys_version(void);

#endif
