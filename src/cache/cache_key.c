/* cache_key.c — a request's cache key: the keyed digest of its normalized form (cache.h).
 *
 * The client's body is parsed by jansson (which keeps every member, and reads "\u0041" and
 * "A" as one string); the members that never change a reply are left out; what remains is
 * serialized with sorted keys and no white space, the same bytes for any order or formatting
 * of the same request. The digest is libsodium's keyed BLAKE2b under a subkey of the
 * deployment's secret, so a key seen anywhere (a Redis dump, later) says nothing of the
 * prompt and cannot be tested against guesses without the secret. Every part is fed with its
 * length first, so no two different inputs can make the same byte stream. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cache/cache.h"

/* Never part of the key: how the reply is delivered (stream, stream_options), who asked for
 * the provider's records (user, metadata, store), and the model, which the key takes from
 * routing (the public name) rather than from the body. */
const char *const cache_key_ignored[] = {"stream", "stream_options", "user", "metadata",
                                         "store",  "model",          NULL};

void cache_secret_derive(const uint8_t master[32], uint8_t out[CACHE_SECRET_BYTES])
{
    crypto_kdf_derive_from_key(out, CACHE_SECRET_BYTES, 1, "aigwcach", master);
}

static void feed(crypto_generichash_state *st, const void *data, size_t len)
{
    uint8_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_generichash_update(st, n, sizeof n);
    if (len) crypto_generichash_update(st, data, len);
}

/* jansson's dump callback: the serialized request goes straight into the digest. */
static int dump_to_hash(const char *buffer, size_t size, void *data)
{
    crypto_generichash_update(data, (const unsigned char *)buffer, size);
    return 0;
}

bool cache_key_make(const cache_key_input *in, uint8_t out[CACHE_KEY_BYTES])
{
    if (!json_is_object(in->body)) return false;
    /* a shallow copy without the ignored members: the values are shared, not copied */
    json_t *norm = json_copy(in->body);
    if (!norm) return false;
    for (const char *const *k = cache_key_ignored; *k; k++)
        json_object_del(norm, *k);

    crypto_generichash_state st;
    crypto_generichash_init(&st, in->secret, CACHE_SECRET_BYTES, CACHE_KEY_BYTES);
    static const char domain[] = "aigw response cache v1";
    feed(&st, domain, sizeof domain - 1);
    feed(&st, in->namespace_name ? in->namespace_name : "", in->namespace_len);
    uint8_t endpoint = (uint8_t)in->endpoint;
    feed(&st, &endpoint, 1);
    feed(&st, in->model ? in->model : "", in->model_len);
    feed(&st, in->route ? in->route : "", in->route ? strlen(in->route) : 0);
    feed(&st, in->extra ? in->extra : "", in->extra ? in->extra_len : 0);
    /* the body last, unprefixed: it is the only part of unknown length left */
    int rc = json_dump_callback(norm, dump_to_hash, &st, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(norm);
    if (rc != 0) {
        sodium_memzero(&st, sizeof st);
        return false;
    }
    crypto_generichash_final(&st, out, CACHE_KEY_BYTES);
    return true;
}

bool cache_entry_parse(const char *data, size_t len, double *cost_usd, const char **reply, size_t *reply_len)
{
    size_t mlen = sizeof CACHE_ENTRY_MAGIC - 1;
    if (len < mlen + 2 || memcmp(data, CACHE_ENTRY_MAGIC, mlen)) return false;
    const char *nl = memchr(data + mlen, '\n', len - mlen);
    if (!nl || nl - (data + mlen) > 40) return false;
    /* the cost as written by the stage: digits, '.', 'e', '-' (strtod needs a NUL) */
    char num[48];
    size_t n = (size_t)(nl - (data + mlen));
    memcpy(num, data + mlen, n);
    num[n] = '\0';
    char *end;
    *cost_usd = strtod(num, &end);
    if (end == num || *end) return false;
    *reply = nl + 1;
    *reply_len = len - (size_t)(nl + 1 - data);
    return *reply_len > 0;
}
