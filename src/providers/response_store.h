/* response_store.h — the OpenAI Responses API's store of recent responses, in memory.
 *
 * A Responses client continues a conversation by naming the previous response
 * (previous_response_id) instead of resending it, and reads a response back by id
 * (GET /v1/responses/{id}). For a response aigw made by translation (the provider has no
 * Responses API) aigw keeps both here: the conversation in canonical (chat) messages, to be
 * put in front of the next turn, and the response object as the client got it. A response a
 * provider served itself (bytes forwarded) is kept by that provider, not here.
 *
 * Process-wide and shared by the workers (a follow-up may reach another worker): sharded, each
 * shard under its own mutex, bounded in bytes (least recently used dropped first) and in age
 * (ttl). Ids are 192 random bits, and an entry belongs to a tenant (the gateway key that made
 * it): another key's request finds nothing under the id. */
#ifndef AIGW_PROVIDERS_RESPONSE_STORE_H
#define AIGW_PROVIDERS_RESPONSE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

#define RESPONSE_ID_MAX 63     /* the longest id kept */
#define RESPONSE_TENANT_MAX 63 /* the longest tenant name ("": no gateway keys) */

/* Sets the bounds (0 bytes: nothing is kept); called at start and on every reload, shrinking
 * the store at once when the bound went down. Thread-safe. */
void response_store_configure(size_t max_bytes, uint32_t ttl_ms);
/* A new response id, "resp_" and 48 hex digits, into out (at least RESPONSE_ID_MAX + 1 bytes). */
void response_store_new_id(char *out);
/* Keeps a response of tenant under id, replacing one kept there. False when it is not kept
 * (the store is off, or the entry is larger than a shard's share of it: a sixteenth). */
bool response_store_put(const char *tenant, const char *id, const char *conversation, size_t conversation_len,
                        const char *response, size_t response_len);
/* Copies what tenant keeps under id into the arena (NUL-terminated); false when nothing is,
 * it is another tenant's, or it is older than the ttl. tenant NULL: any tenant's (the master
 * key). Either out pointer may be NULL. */
bool response_store_get(const char *tenant, const char *id, arena *a, char **conversation,
                        size_t *conversation_len, char **response, size_t *response_len);
/* Forgets tenant's id (NULL: any tenant's); false when nothing of it was kept under it. */
bool response_store_delete(const char *tenant, const char *id);
/* Bytes kept now (entries and their bookkeeping), for tests and the benchmark. */
size_t response_store_bytes(void);
/* Frees everything (at exit). */
void response_store_clear(void);

#endif
