/* ui_session.c — the dashboard's login sessions: a bounded table of (session id, CSRF token,
 * the admin key's digest, times) shared by the workers, and the pure checks of the headers
 * that carry them (Cookie, Origin, the CSRF token's header).
 *
 * A login exchanges the admin key for a session id in an HttpOnly, SameSite=Strict cookie, so
 * the page's script never holds the key once it has sent it (a script injected later could use
 * the session while it lasts, but could not carry the key away). The session holds the key's
 * digest, not a verdict: every use checks that digest again against the running config's master
 * key or the worker's key snapshot (pipeline/ui_stage.c), so disabling the key or changing the
 * master key ends its sessions at once. State-changing calls need the CSRF token besides the
 * cookie (and an Origin, when the browser sends one, naming the host): SameSite=Strict alone
 * leaves sibling subdomains and old browsers.
 *
 * Invariants: at most UI_SESSIONS_MAX sessions (a login past it ends the least recently used);
 * a session lives at most UI_SESSION_LIFETIME_S and UI_SESSION_IDLE_S unused; ids and tokens
 * are 32 bytes from libsodium's random source and compared in constant time. The table is
 * touched by a login and by each dashboard call — a few a second — so one mutex is enough;
 * nothing here does I/O. Rejected: a signed stateless cookie (a logout could not end it, nor a
 * full table bound it); sessions in the store (a write per login on the store's thread, for
 * state that may die with the process: a restart asks for the key again). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ui/ui.h"

typedef struct ui_session {
    bool used;
    uint8_t id[32], csrf[32], key_digest[32];
    int64_t created, last_used;
} ui_session;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ui_session sessions[UI_SESSIONS_MAX];

static void to_hex(const uint8_t bytes[32], char out[UI_TOKEN_HEX + 1])
{
    sodium_bin2hex(out, UI_TOKEN_HEX + 1, bytes, 32);
}

/* false unless exactly 64 lower- or upper-case hex digits */
static bool from_hex(const char *hex, size_t len, uint8_t out[32])
{
    if (len != UI_TOKEN_HEX) return false;
    size_t n = 0;
    return sodium_hex2bin(out, 32, hex, len, NULL, &n, NULL) == 0 && n == 32;
}

static bool alive(const ui_session *s, int64_t now)
{
    return s->used && now - s->created < UI_SESSION_LIFETIME_S && now - s->last_used < UI_SESSION_IDLE_S;
}

void ui_session_create(const uint8_t key_digest[32], int64_t now, char id[UI_TOKEN_HEX + 1],
                       char csrf[UI_TOKEN_HEX + 1])
{
    if (sodium_init() < 0) abort();
    pthread_mutex_lock(&lock);
    ui_session *slot = NULL;
    for (size_t i = 0; i < UI_SESSIONS_MAX && !slot; i++)
        if (!alive(&sessions[i], now)) slot = &sessions[i];
    if (!slot) { /* full of live sessions: the least recently used ends */
        slot = &sessions[0];
        for (size_t i = 1; i < UI_SESSIONS_MAX; i++)
            if (sessions[i].last_used < slot->last_used) slot = &sessions[i];
    }
    randombytes_buf(slot->id, sizeof slot->id);
    randombytes_buf(slot->csrf, sizeof slot->csrf);
    memcpy(slot->key_digest, key_digest, 32);
    slot->created = slot->last_used = now;
    slot->used = true;
    to_hex(slot->id, id);
    to_hex(slot->csrf, csrf);
    pthread_mutex_unlock(&lock);
}

/* The live session with this id, under the lock; every slot is compared (constant time). */
static ui_session *find_locked(const uint8_t id[32], int64_t now)
{
    ui_session *hit = NULL;
    for (size_t i = 0; i < UI_SESSIONS_MAX; i++) {
        bool same = sodium_memcmp(sessions[i].id, id, 32) == 0;
        if (same && alive(&sessions[i], now)) hit = &sessions[i];
    }
    return hit;
}

ui_session_result ui_session_find(const char *id, size_t id_len, int64_t now, uint8_t key_digest[32],
                                  char csrf[UI_TOKEN_HEX + 1])
{
    uint8_t raw[32];
    if (!from_hex(id, id_len, raw)) return UI_SESSION_UNKNOWN;
    pthread_mutex_lock(&lock);
    ui_session *s = find_locked(raw, now);
    if (s) {
        s->last_used = now;
        memcpy(key_digest, s->key_digest, 32);
        to_hex(s->csrf, csrf);
    }
    pthread_mutex_unlock(&lock);
    return s ? UI_SESSION_OK : UI_SESSION_UNKNOWN;
}

bool ui_session_end(const char *id, size_t id_len)
{
    uint8_t raw[32];
    if (!from_hex(id, id_len, raw)) return false;
    bool found = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < UI_SESSIONS_MAX; i++)
        if (sessions[i].used && sodium_memcmp(sessions[i].id, raw, 32) == 0) {
            sodium_memzero(&sessions[i], sizeof sessions[i]);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

void ui_session_reset(void)
{
    pthread_mutex_lock(&lock);
    sodium_memzero(sessions, sizeof sessions);
    pthread_mutex_unlock(&lock);
}

bool ui_cookie_value(const char *header, size_t len, const char *name, const char **value, size_t *value_len)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i < len) {
        while (i < len && (header[i] == ' ' || header[i] == '\t' || header[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && header[i] != ';')
            i++;
        /* [start, i) is one "name=value" pair */
        size_t pair_len = i - start;
        if (pair_len > name_len && !memcmp(header + start, name, name_len) &&
            header[start + name_len] == '=') {
            size_t v = start + name_len + 1, end = i;
            while (end > v && (header[end - 1] == ' ' || header[end - 1] == '\t'))
                end--;
            if (end - v >= 2 && header[v] == '"' && header[end - 1] == '"') v++, end--;
            *value = header + v;
            *value_len = end - v;
            return true;
        }
    }
    return false;
}

bool ui_csrf_matches(const char *expected, const char *given, size_t given_len)
{
    size_t len = strlen(expected);
    if (len != UI_TOKEN_HEX || given_len != len) return false;
    return sodium_memcmp(expected, given, len) == 0;
}

bool ui_origin_matches(const char *origin, size_t origin_len, const char *host, size_t host_len)
{
    static const char *const schemes[] = {"http://", "https://"};
    if (!host_len) return false;
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (origin_len == n + host_len && !strncasecmp(origin, schemes[i], n) &&
            !strncasecmp(origin + n, host, host_len))
            return true;
    }
    return false;
}
