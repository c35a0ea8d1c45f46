/* vault.c — sealing and opening virtual keys' secrets (vault.h).
 *
 * Pure functions over libsodium: no I/O, no state. The store calls them on its own thread
 * (store.c seals on write; store_service.c opens every secret when it loads a
 * snapshot), so a worker never decrypts. Buffers that held a key or a plaintext are wiped
 * with sodium_memzero before they are given back. */
#include "store/vault.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

_Static_assert(VAULT_NONCE_BYTES == crypto_secretbox_NONCEBYTES, "nonce size");
_Static_assert(VAULT_MAC_BYTES == crypto_secretbox_MACBYTES, "tag size");
_Static_assert(VAULT_KEY_BYTES == crypto_secretbox_KEYBYTES, "key size");

bool vault_init(void)
{
    return sodium_init() >= 0;
}

bool vault_key_parse(const char *text, size_t len, vault_key *out, char *err, size_t errlen)
{
    while (len && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r'))
        text++, len--;
    while (len &&
           (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    size_t n = 0;
    const char *end = NULL;
    if (len == 2 * VAULT_KEY_BYTES &&
        sodium_hex2bin(out->bytes, sizeof out->bytes, text, len, NULL, &n, &end) == 0 &&
        n == VAULT_KEY_BYTES && end == text + len)
        return true;
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; len >= 43 && len <= 44 && i < sizeof variants / sizeof variants[0]; i++) {
        uint8_t raw[VAULT_KEY_BYTES + 3];
        if (sodium_base642bin(raw, sizeof raw, text, len, NULL, &n, &end, variants[i]) == 0 &&
            n == VAULT_KEY_BYTES && end == text + len) {
            memcpy(out->bytes, raw, VAULT_KEY_BYTES);
            sodium_memzero(raw, sizeof raw);
            return true;
        }
        sodium_memzero(raw, sizeof raw);
    }
    sodium_memzero(out->bytes, sizeof out->bytes);
    snprintf(err, errlen,
             "the vault key must be 32 bytes written as 64 hex digits or in base64 (e.g. the output of: "
             "openssl rand -hex 32); the value given is %zu characters of something else",
             len);
    return false;
}

/* The subkey that seals name's secret: a ciphertext belongs to its row. */
static void subkey_for(const vault_key *key, const char *name, uint8_t out[VAULT_KEY_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key->bytes, VAULT_KEY_BYTES, VAULT_KEY_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)"aigw-vkey:", 10);
    crypto_generichash_update(&st, (const unsigned char *)name, strlen(name));
    crypto_generichash_final(&st, out, VAULT_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}

void vault_seal(const vault_key *key, const char *name, const char *secret, size_t len,
                uint8_t nonce[VAULT_NONCE_BYTES], uint8_t *sealed)
{
    uint8_t sub[VAULT_KEY_BYTES];
    subkey_for(key, name, sub);
    randombytes_buf(nonce, VAULT_NONCE_BYTES);
    crypto_secretbox_easy(sealed, (const unsigned char *)secret, len, nonce, sub);
    sodium_memzero(sub, sizeof sub);
}

bool vault_open(const vault_key *key, const char *name, const uint8_t nonce[VAULT_NONCE_BYTES],
                const uint8_t *sealed, size_t sealed_len, char *out)
{
    if (sealed_len < VAULT_MAC_BYTES || sealed_len - VAULT_MAC_BYTES > VAULT_SECRET_MAX) return false;
    uint8_t sub[VAULT_KEY_BYTES];
    subkey_for(key, name, sub);
    bool ok = crypto_secretbox_open_easy((unsigned char *)out, sealed, sealed_len, nonce, sub) == 0;
    sodium_memzero(sub, sizeof sub);
    if (!ok) sodium_memzero(out, sealed_len - VAULT_MAC_BYTES);
    return ok;
}

void vault_hint(const char *secret, size_t len, char out[16])
{
    if (len < 12)
        snprintf(out, 16, "…");
    else
        snprintf(out, 16, "…%.4s", secret + len - 4);
}
