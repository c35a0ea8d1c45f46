/* ui.h — the web dashboard's C side: the page's files compiled into the binary (ui_files.c,
 * ui_data.S) and the cookie sessions a login makes (ui_session.c). Pure functions and one
 * bounded table under a mutex; the pipeline's ui stage (pipeline/ui_stage.c) is what serves
 * them. Nothing here knows HTTP beyond the text of a Cookie, Origin or Host header. */
#ifndef AIGW_UI_UI_H
#define AIGW_UI_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the embedded files ---- */

typedef struct ui_file {
    const char *path;         /* below /ui/: "index.html", "js/app.js" */
    const char *content_type; /* with its charset */
    const unsigned char *data;
    const uint64_t *len; /* the assembler writes it beside the bytes */
} ui_file;

/* The file a request path below /ui names: "/ui" and "/ui/" are index.html, "/ui/x" is x.
 * NULL for anything else (no directory listing, no "..": only the table's exact names). */
const ui_file *ui_file_find(const char *path);
size_t ui_file_count(void);
const ui_file *ui_file_at(size_t i);

/* The headers every /ui answer carries: a strict Content-Security-Policy (scripts and styles
 * from the page's own origin only, no inline script, no framing), X-Frame-Options, nosniff,
 * no referrer, no caching of what the page shows. "Name: value\r\n" lines. */
extern const char ui_security_headers[];

/* ---- sessions ---- */

#define UI_SESSIONS_MAX 256         /* past it, the least recently used session ends */
#define UI_SESSION_IDLE_S 1800      /* unused this long: ended */
#define UI_SESSION_LIFETIME_S 43200 /* at most this long after login, used or not */
#define UI_TOKEN_HEX 64             /* a session id and a CSRF token: 32 random bytes in hex */
#define UI_COOKIE_NAME "aigw_session"

typedef enum ui_session_result {
    UI_SESSION_OK,
    UI_SESSION_UNKNOWN, /* no such session, ended, or past its idle time or lifetime */
} ui_session_result;

/* A new session for the key with this digest (the master key's or an admin key's; the caller
 * checked it). Writes its id and its CSRF token as NUL-terminated hex. Thread-safe. */
void ui_session_create(const uint8_t key_digest[32], int64_t now, char id[UI_TOKEN_HEX + 1],
                       char csrf[UI_TOKEN_HEX + 1]);
/* The session with this id (hex, as the cookie carries it): its key's digest and CSRF token
 * copied out, its idle time restarted. Ids are compared in constant time. Thread-safe. */
ui_session_result ui_session_find(const char *id, size_t id_len, int64_t now, uint8_t key_digest[32],
                                  char csrf[UI_TOKEN_HEX + 1]);
/* Ends the session with this id; false when there was none. Thread-safe. */
bool ui_session_end(const char *id, size_t id_len);
/* Ends every session (tests; a process's sessions otherwise end with it). */
void ui_session_reset(void);

/* The value of cookie name in a Cookie header ("a=1; b=2"): true with *value pointing into the
 * header; false when absent. The first of several with that name. */
bool ui_cookie_value(const char *header, size_t len, const char *name, const char **value, size_t *value_len);
/* Whether the token the page sent equals the session's (constant time, length included). */
bool ui_csrf_matches(const char *expected, const char *given, size_t given_len);
/* Whether an Origin header names the host the request was sent to (http:// or https:// and
 * exactly the Host header's value). */
bool ui_origin_matches(const char *origin, size_t origin_len, const char *host, size_t host_len);

#endif
