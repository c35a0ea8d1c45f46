/* vault.h — provider credentials sealed at rest: the master secret (the vault key) and
 * libsodium's crypto_secretbox (XSalsa20-Poly1305) around each virtual key's secret.
 *
 * The vault key is 32 random bytes, written as 64 hex digits or as base64 (44 characters with
 * padding, or 43 without; standard or url-safe alphabet) — `openssl rand -hex 32` makes one.
 * Rejected: a passphrase stretched by crypto_pwhash — it needs a salt kept in the store and
 * a slow (by design) start, and is weaker than 32 random bytes; a vault key is written once
 * into a secret manager, not typed.
 *
 * Each secret is sealed under a subkey of the vault key for its name (BLAKE2b keyed with the
 * vault key over "aigw-vkey:" + name), with a fresh random 24-byte nonce per write stored
 * beside the ciphertext: a ciphertext copied into another row does not open there, and a
 * changed byte (nonce, ciphertext or tag) fails the Poly1305 check. Opening is what tells a
 * wrong vault key: there is no separate verifier to keep in step. */
#ifndef AIGW_STORE_VAULT_H
#define AIGW_STORE_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VAULT_KEY_BYTES 32
#define VAULT_NONCE_BYTES 24  /* crypto_secretbox_NONCEBYTES */
#define VAULT_MAC_BYTES 16    /* crypto_secretbox_MACBYTES */
#define VAULT_SECRET_MAX 8192 /* a provider credential (a key, a JSON service account) */

typedef struct vault_key {
    uint8_t bytes[VAULT_KEY_BYTES];
} vault_key;

/* libsodium's set-up; false when it cannot run. Any thread, any number of times. */
bool vault_init(void);

/* The vault key from its text (hex or base64 as above; surrounding white space ignored).
 * False with a message in err that never repeats the text. */
bool vault_key_parse(const char *text, size_t len, vault_key *out, char *err, size_t errlen);

/* Seals secret (len <= VAULT_SECRET_MAX bytes) for the virtual key name: a new random nonce
 * into nonce, len + VAULT_MAC_BYTES bytes into sealed (the caller's buffer). */
void vault_seal(const vault_key *key, const char *name, const char *secret, size_t len,
                uint8_t nonce[VAULT_NONCE_BYTES], uint8_t *sealed);

/* Opens what vault_seal made for name: sealed_len - VAULT_MAC_BYTES bytes into out (the
 * caller's buffer, at least that long). False when the key is wrong, the name differs or any
 * byte was changed; out is then zeroed. */
bool vault_open(const vault_key *key, const char *name, const uint8_t nonce[VAULT_NONCE_BYTES],
                const uint8_t *sealed, size_t sealed_len, char *out);

/* "…" and the last 4 characters of a secret (all of it when shorter than 12: then only "…"),
 * for people to tell credentials apart. out holds 16 bytes. */
void vault_hint(const char *secret, size_t len, char out[16]);

#endif
