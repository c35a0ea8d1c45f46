/* access.h — gateway keys as the request path and the admin API see them: how a key is made,
 * where a client puts it, its keyed digest, and what a key allows.
 *
 * A key is "aigw-" + 256 bits from libsodium's randombytes in url-safe base64 (43 characters,
 * no padding). It is shown once, when made; the store keeps only its digest: BLAKE2b
 * (crypto_generichash, 32 bytes) keyed with the deployment's secret, so a copy of the database
 * without the secret cannot even test guesses. The secret comes from `auth.secret` (a string,
 * hashed to 32 bytes), `auth.secret_file`, or else a file made once beside the store
 * (STORE.secret, 0600, 32 random bytes in hex). Rejected: a password hash (argon2) — the input
 * already has 256 bits of entropy, and the request path cannot spend milliseconds per request.
 *
 * Lookups compare digests: the snapshot finds the candidate by its digest's order, then the
 * two digests are compared again in constant time (sodium_memcmp). */
#ifndef AIGW_ACCESS_ACCESS_H
#define AIGW_ACCESS_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"
#include "util/headers.h"

#define ACCESS_KEY_PREFIX "aigw-"
#define ACCESS_KEY_LEN 48  /* "aigw-" + 43 */
#define ACCESS_KEY_MAX 512 /* longer presented keys are not even hashed */
#define ACCESS_SECRET_BYTES 32

typedef struct access_secret {
    uint8_t bytes[ACCESS_SECRET_BYTES];
} access_secret;

/* libsodium's set-up; false if it cannot run (no random source). Any thread, any number of times. */
bool access_init(void);

/* The deployment's digest key, from auth (see above). The default file is created when missing
 * (0600; a file readable by others is refused). Blocking file I/O: call it at start. False with
 * a message in err. */
bool access_secret_load(const auth_settings *auth, access_secret *out, char *err, size_t errlen);
/* The virtual keys' master secret (store/vault.h) from auth.vault_key or auth.vault_key_file
 * (a file not readable by group or others). *given is false when neither is set (or
 * vault_key's variable is unset): then out is untouched and the call succeeds. Blocking file
 * I/O: call it at start. False with a message in err that never repeats the value. */
bool access_vault_key_load(const auth_settings *auth, vault_key *out, bool *given, char *err, size_t errlen);

/* Where the default secret file is for a store path: "STORE.secret" (into out). */
void access_secret_default_path(const char *store_path, char *out, size_t len);

/* A new key (ACCESS_KEY_LEN characters and a NUL into out) and a new key id ("key_" + 24 hex). */
void access_key_generate(char out[ACCESS_KEY_LEN + 1]);
void access_key_new_id(char out[STORE_ID_MAX + 1]);
/* Whether text has the shape access_key_generate gives ("aigw-" and 43 url-safe base64
 * characters): a gateway key, or one that was (rotated, deleted) — not a guess at a master key
 * of another shape. */
bool access_key_shaped(const char *key, size_t len);
/* The digest of a presented key. */
void access_key_digest(const access_secret *secret, const char *key, size_t len,
                       uint8_t out[STORE_DIGEST_BYTES]);
/* "aigw-…" and the key's last 4 characters, for people to tell keys apart. */
void access_key_hint(const char *key, size_t len, char out[STORE_HINT_MAX + 1]);

/* The key a client sent: Authorization: Bearer, x-api-key, api-key or x-goog-api-key, the
 * first present in that order. False when none is (an empty value counts as none). */
bool access_key_from_headers(const http_header *headers, size_t n, const char **key, size_t *len);

/* The snapshot's key with this digest, compared in constant time; NULL when none. */
const store_key *access_key_find(const key_snapshot *snap, const uint8_t digest[STORE_DIGEST_BYTES]);
/* Whether digest is the master key's (constant time). False when there is no master key. */
bool access_is_master(const auth_settings *auth, const access_secret *secret,
                      const uint8_t digest[STORE_DIGEST_BYTES]);

typedef enum access_state {
    ACCESS_OK,
    ACCESS_DISABLED,
    ACCESS_EXPIRED,
} access_state;
access_state access_key_state(const store_key *k, int64_t now_unix);

/* Whether k may use the public model name (len bytes, no NUL): a key without globs may use any;
 * otherwise one glob must match (fnmatch, `*` crossing `/`). NULL k (master): yes. */
bool access_model_allowed(const store_key *k, const char *model, size_t len);
/* The same for any list of globs (a team's): none allows every model. */
bool access_models_allow(char *const *globs, size_t nglobs, const char *model, size_t len);

#endif
