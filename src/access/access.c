/* access.c — gateway keys: making, hashing, finding, and what a key allows (access.h). */
#include "access/access.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

bool access_init(void)
{
    return sodium_init() >= 0;
}

void access_secret_default_path(const char *store_path, char *out, size_t len)
{
    snprintf(out, len, "%s.secret", store_path);
}

/* Text to 32 bytes: an unkeyed BLAKE2b of it, so any length of secret serves. */
static void secret_from_text(const char *text, size_t len, access_secret *out)
{
    crypto_generichash(out->bytes, sizeof out->bytes, (const unsigned char *)text, len, NULL, 0);
}

/* Reads a secret file: at least 16 characters once trailing white space is cut, at most 4 KiB,
 * not readable by group or others. */
static bool read_secret_file(const char *path, access_secret *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "auth: cannot open the secret file %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "auth: the secret file %s may be read by others; chmod 600 it", path);
        return false;
    }
    char text[4096];
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n < 16 || n == (ssize_t)sizeof text) {
        snprintf(err, errlen, "auth: the secret file %s must hold 16 to 4095 characters", path);
        return false;
    }
    secret_from_text(text, (size_t)n, out);
    sodium_memzero(text, sizeof text);
    return true;
}

/* The default file: made with O_EXCL (two processes starting at once: one makes it, the
 * other reads it) and 0600 from its first byte. */
static bool make_secret_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return true;
        snprintf(err, errlen, "auth: cannot create the secret file %s: %s", path, strerror(errno));
        return false;
    }
    unsigned char raw[ACCESS_SECRET_BYTES];
    char hex[2 * ACCESS_SECRET_BYTES + 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    size_t len = strlen(hex);
    hex[len++] = '\n';
    bool ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(hex, sizeof hex);
    if (!ok) {
        unlink(path);
        snprintf(err, errlen, "auth: cannot write the secret file %s", path);
    }
    return ok;
}

bool access_secret_load(const auth_settings *auth, access_secret *out, char *err, size_t errlen)
{
    if (auth->secret) {
        secret_from_text(auth->secret, strlen(auth->secret), out);
        return true;
    }
    if (auth->secret_file) return read_secret_file(auth->secret_file, out, err, errlen);
    char path[4096];
    access_secret_default_path(auth->store_path, path, sizeof path);
    return make_secret_file(path, err, errlen) && read_secret_file(path, out, err, errlen);
}

bool access_vault_key_load(const auth_settings *auth, vault_key *out, bool *given, char *err, size_t errlen)
{
    *given = false;
    char why[256];
    if (auth->vault_key) {
        *given = true;
        if (vault_key_parse(auth->vault_key, strlen(auth->vault_key), out, why, sizeof why)) return true;
        snprintf(err, errlen, "auth.vault_key: %s", why);
        return false;
    }
    if (!auth->vault_key_file) return true;
    *given = true;
    const char *path = auth->vault_key_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "auth: cannot open the vault key file %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "auth: the vault key file %s may be read by others; chmod 600 it", path);
        return false;
    }
    char text[256];
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    bool ok = n > 0 && n < (ssize_t)sizeof text && vault_key_parse(text, (size_t)n, out, why, sizeof why);
    sodium_memzero(text, sizeof text);
    if (!ok)
        snprintf(err, errlen, "auth: the vault key file %s: %s", path,
                 n <= 0 || n >= (ssize_t)sizeof text
                     ? "must hold the key: 64 hex digits or 44 base64 characters"
                     : why);
    return ok;
}

void access_key_generate(char out[ACCESS_KEY_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, ACCESS_KEY_PREFIX, sizeof ACCESS_KEY_PREFIX - 1);
    sodium_bin2base64(out + sizeof ACCESS_KEY_PREFIX - 1, ACCESS_KEY_LEN + 1 - (sizeof ACCESS_KEY_PREFIX - 1),
                      raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

bool access_key_shaped(const char *key, size_t len)
{
    if (len != ACCESS_KEY_LEN || memcmp(key, ACCESS_KEY_PREFIX, sizeof ACCESS_KEY_PREFIX - 1) != 0)
        return false;
    for (size_t i = sizeof ACCESS_KEY_PREFIX - 1; i < len; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

void access_key_new_id(char out[STORE_ID_MAX + 1])
{
    unsigned char raw[12];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "key_", 4);
    sodium_bin2hex(out + 4, STORE_ID_MAX + 1 - 4, raw, sizeof raw);
}

void access_key_digest(const access_secret *secret, const char *key, size_t len,
                       uint8_t out[STORE_DIGEST_BYTES])
{
    crypto_generichash(out, STORE_DIGEST_BYTES, (const unsigned char *)key, len, secret->bytes,
                       sizeof secret->bytes);
}

void access_key_hint(const char *key, size_t len, char out[STORE_HINT_MAX + 1])
{
    snprintf(out, STORE_HINT_MAX + 1, "aigw-…%.*s", 4, len >= 4 ? key + len - 4 : "");
}

bool access_key_from_headers(const http_header *headers, size_t n, const char **key, size_t *len)
{
    const http_header *h = http_header_find(headers, n, "authorization");
    if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
        size_t at = 7;
        while (at < h->value_len && h->value[at] == ' ')
            at++;
        *key = h->value + at;
        *len = h->value_len - at;
        return *len > 0;
    }
    static const char *const names[] = {"x-api-key", "api-key", "x-goog-api-key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        h = http_header_find(headers, n, names[i]);
        if (h && h->value_len) {
            *key = h->value;
            *len = h->value_len;
            return true;
        }
    }
    return false;
}

const store_key *access_key_find(const key_snapshot *snap, const uint8_t digest[STORE_DIGEST_BYTES])
{
    const store_key *k = key_snapshot_find(snap, digest);
    if (!k || sodium_memcmp(k->digest, digest, STORE_DIGEST_BYTES) != 0) return NULL;
    return k;
}

bool access_is_master(const auth_settings *auth, const access_secret *secret,
                      const uint8_t digest[STORE_DIGEST_BYTES])
{
    if (!auth->master_key) return false;
    uint8_t master[STORE_DIGEST_BYTES];
    access_key_digest(secret, auth->master_key, strlen(auth->master_key), master);
    return sodium_memcmp(master, digest, STORE_DIGEST_BYTES) == 0;
}

access_state access_key_state(const store_key *k, int64_t now_unix)
{
    if (!k->enabled) return ACCESS_DISABLED;
    if (k->expires_at && k->expires_at <= now_unix) return ACCESS_EXPIRED;
    return ACCESS_OK;
}

bool access_models_allow(char *const *globs, size_t nglobs, const char *model, size_t len)
{
    if (!nglobs) return true;
    char name[STORE_NAME_MAX + 1];
    if (len > STORE_NAME_MAX || memchr(model, '\0', len)) return false;
    memcpy(name, model, len);
    name[len] = '\0';
    for (size_t i = 0; i < nglobs; i++)
        if (fnmatch(globs[i], name, 0) == 0) return true;
    return false;
}

bool access_model_allowed(const store_key *k, const char *model, size_t len)
{
    return !k || access_models_allow(k->models, k->nmodels, model, len);
}
