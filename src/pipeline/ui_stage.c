/* ui_stage.c — the web dashboard at /ui (docs/ui.md): its files, its login, and the session
 * cookie standing for an admin key on the admin API and /metrics.
 *
 * ACCEPT phase, before the admin stage:
 *   GET /ui, /ui/…         the page's files from the binary (src/ui: ui_file_find), with a strict
 *                          Content-Security-Policy, no framing, nosniff
 *   POST /ui/api/login     {"key": …} (application/json only, so a cross-site form cannot post
 *                          it): the master key or an enabled admin key becomes a session — an
 *                          HttpOnly, SameSite=Strict cookie (Secure behind an https proxy) and a
 *                          CSRF token in the answer's body, which the page keeps in memory; a
 *                          key that is no gateway key is the master key or a guess at it, and
 *                          an address's wrong ones are throttled (auth_check_master: 429 past
 *                          ten a minute, with Retry-After)
 *   GET /ui/api/session    whether the cookie's session lives, and its CSRF token again (a page
 *                          reloaded in the same tab does not ask for the key)
 *   POST /ui/api/logout    ends the session (CSRF token required), clears the cookie
 *   /admin/…, /metrics     with no key in the headers and the session cookie: the session's key
 *                          digest goes on the exchange (x->session_digest) for the admin stage and
 *                          AUTH, which check it as they check a key sent in the headers; a call
 *                          that is not GET or HEAD needs the X-AIGW-CSRF token and, when the
 *                          browser sends an Origin, one naming the Host (403 csrf_failed)
 * Everything else is declined. The dashboard computes nothing itself: it is a client of the
 * admin API (/admin/logs/aggregate, keys, config …) and /metrics.
 *
 * Rejected: the key kept by the page and sent as a bearer on every call (CSRF-proof, but the
 * key would live in the page's memory for as long as it is open, within reach of any script
 * that gets in, and a reload would ask for it again; sessionStorage would keep it on disk-backed
 * storage for the tab); the key in a cookie as is (every request would carry the long-lived
 * key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>

#include "access/access.h"
#include "admin/admin.h"
#include "pipeline/stages.h"
#include "store/store.h"
#include "ui/ui.h"

#define LOGIN_BODY_MAX 4096

static void refuse(exchange *x, int status, const char *code, const char *message)
{
    exchange_error(x, status, status == 403 ? "permission_error" : "invalid_request_error", code, NULL,
                   message);
}

static bool header_value(const exchange *x, const char *name, const char **value, size_t *len)
{
    const http_header *h = exchange_header(x, name);
    if (!h) return false;
    *value = h->value;
    *len = h->value_len;
    return true;
}

static bool session_cookie(const exchange *x, const char **id, size_t *len)
{
    const char *cookie;
    size_t cookie_len;
    return header_value(x, "cookie", &cookie, &cookie_len) &&
           ui_cookie_value(cookie, cookie_len, UI_COOKIE_NAME, id, len);
}

/* Whether a gateway key is an enabled, unexpired admin key (*who its alias or id). */
static bool admin_key(const store_key *k, const char **who)
{
    if (!k || !k->admin || access_key_state(k, (int64_t)time(NULL)) != ACCESS_OK) return false;
    *who = k->alias ? k->alias : k->id;
    return true;
}

/* Who a session's key digest is now: the master key, an enabled unexpired admin key (*who its
 * alias or id), or nobody (false). The same test the admin stage makes of a key in the headers. */
static bool admin_digest(exchange *x, const uint8_t digest[32], const char **who)
{
    if (access_is_master(&x->config->auth, auth_secret(), digest)) {
        *who = "master key";
        return true;
    }
    return admin_key(auth_find_key(x, digest), who);
}

static bool admin_available(exchange *x)
{
    const auth_settings *auth = &x->config->auth;
    if (auth->mode == AUTH_ON && auth->master_key && auth_service()) return true;
    refuse(x, 403, "admin_disabled",
           "The dashboard needs gateway auth with a master key: add `auth: {master_key: "
           "\"${AIGW_MASTER_KEY}\"}` to the config (docs/access.md)");
    return false;
}

/* "Secure" when the client reached us over https: aigw listens in plain HTTP, so only a
 * TLS-terminating proxy in front says so. */
static const char *cookie_secure(const exchange *x)
{
    const char *proto;
    size_t len;
    return header_value(x, "x-forwarded-proto", &proto, &len) && len == 5 && !strncasecmp(proto, "https", 5)
               ? "; Secure"
               : "";
}

/* An Origin, when sent, must name the Host the request went to. */
static bool origin_ok(const exchange *x)
{
    const char *origin, *host;
    size_t origin_len, host_len;
    if (!header_value(x, "origin", &origin, &origin_len)) return true; /* same-origin GETs, old browsers */
    return header_value(x, "host", &host, &host_len) && ui_origin_matches(origin, origin_len, host, host_len);
}

static void respond_json(exchange *x, int status, json_t *j, const char *cookie_line)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "%s%s", ui_security_headers, cookie_line ? cookie_line : "");
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    exchange_respond(x, status, "application/json", head, (size_t)n, body, strlen(body));
    free(body);
}

static stage_result login(exchange *x)
{
    const char *ct;
    size_t ct_len;
    if (!header_value(x, "content-type", &ct, &ct_len) || ct_len < 16 ||
        strncasecmp(ct, "application/json", 16) != 0) {
        refuse(x, 415, "json_required", "POST /ui/api/login takes {\"key\": \"…\"} as application/json");
        return STAGE_DONE;
    }
    if (!origin_ok(x)) {
        refuse(x, 403, "csrf_failed", "the login came from another origin");
        return STAGE_DONE;
    }
    if (!admin_available(x)) return STAGE_DONE;
    http_request *req = x->http;
    json_t *doc = req->body.len <= LOGIN_BODY_MAX ? json_loadb(req->body.data, req->body.len, 0, NULL) : NULL;
    const json_t *key = json_object_get(doc, "key");
    const char *who = NULL;
    uint8_t digest[STORE_DIGEST_BYTES];
    bool ok = false, hashed = json_is_string(key) && json_string_length(key) <= ACCESS_KEY_MAX;
    const store_key *k = NULL;
    if (hashed) {
        access_key_digest(auth_secret(), json_string_value(key), json_string_length(key), digest);
        k = auth_find_key(x, digest);
    }
    auth_master_result m = AUTH_NOT_MASTER;
    if (k) /* the master key, or a guess at it, when not a gateway key: throttled per address */
        ok = admin_key(k, &who);
    else
        m = auth_check_master(x, hashed ? json_string_value(key) : "", hashed ? json_string_length(key) : 0,
                              hashed ? digest : NULL);
    json_decref(doc); /* key pointed into it */
    if (m == AUTH_THROTTLED) return STAGE_DONE;
    if (m == AUTH_IS_MASTER) {
        ok = true;
        who = "master key";
    }
    if (!ok) {
        x->rejection = REJECT_AUTH_INVALID;
        auth_refuse(x, 401, "invalid_api_key", NULL, "This is not the master key or an enabled admin key");
        return STAGE_DONE;
    }
    char id[UI_TOKEN_HEX + 1], csrf[UI_TOKEN_HEX + 1], cookie[256];
    ui_session_create(digest, (int64_t)time(NULL), id, csrf);
    snprintf(cookie, sizeof cookie,
             "Set-Cookie: " UI_COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict%s\r\n", id,
             cookie_secure(x));
    respond_json(
        x, 200,
        json_pack("{s:s,s:s,s:i}", "csrf_token", csrf, "who", who, "idle_timeout_s", UI_SESSION_IDLE_S),
        cookie);
    return STAGE_DONE;
}

/* The live session the cookie names, still standing for an admin (false: answered 401). */
static bool current_session(exchange *x, const char **id, size_t *id_len, uint8_t digest[32],
                            char csrf[UI_TOKEN_HEX + 1], const char **who)
{
    if (!session_cookie(x, id, id_len) ||
        ui_session_find(*id, *id_len, (int64_t)time(NULL), digest, csrf) != UI_SESSION_OK ||
        !admin_digest(x, digest, who)) {
        x->rejection = REJECT_AUTH_INVALID;
        auth_refuse(x, 401, "session_expired", NULL, "No dashboard session: log in with an admin key");
        return false;
    }
    return true;
}

static bool csrf_ok(exchange *x, const char *expected)
{
    const char *given;
    size_t len;
    if (header_value(x, "x-aigw-csrf", &given, &len) && ui_csrf_matches(expected, given, len) && origin_ok(x))
        return true;
    x->rejection = REJECT_FORBIDDEN_ADMIN;
    refuse(
        x, 403, "csrf_failed",
        "A change made with the dashboard's session needs its X-AIGW-CSRF token, from the page's own origin");
    return false;
}

static stage_result api(exchange *x, int method)
{
    const char *path = x->http->path + sizeof "/ui/api/" - 1;
    bool is_login = !strcmp(path, "login"), is_logout = !strcmp(path, "logout"),
         is_session = !strcmp(path, "session");
    if (!is_login && !is_logout && !is_session) {
        refuse(x, 404, "not_found", "unknown dashboard call");
        return STAGE_DONE;
    }
    if ((is_session && method != HTTP_GET) || (!is_session && method != HTTP_POST)) {
        refuse(x, 405, "method_not_allowed",
               is_session ? "only GET is allowed on /ui/api/session" : "only POST is allowed here");
        return STAGE_DONE;
    }
    if (is_login) return login(x);
    if (!admin_available(x)) return STAGE_DONE;
    const char *id, *who;
    size_t id_len;
    uint8_t digest[STORE_DIGEST_BYTES];
    char csrf[UI_TOKEN_HEX + 1];
    if (!current_session(x, &id, &id_len, digest, csrf, &who)) return STAGE_DONE;
    if (is_session) {
        respond_json(
            x, 200,
            json_pack("{s:s,s:s,s:i}", "csrf_token", csrf, "who", who, "idle_timeout_s", UI_SESSION_IDLE_S),
            NULL);
        return STAGE_DONE;
    }
    if (!csrf_ok(x, csrf)) return STAGE_DONE;
    ui_session_end(id, id_len);
    char cookie[256];
    snprintf(cookie, sizeof cookie,
             "Set-Cookie: " UI_COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s\r\n",
             cookie_secure(x));
    respond_json(x, 200, json_pack("{s:b}", "logged_out", 1), cookie);
    return STAGE_DONE;
}

static stage_result serve_file(exchange *x, int method)
{
    const ui_file *f = ui_file_find(x->http->path);
    if (!f) {
        refuse(x, 404, "not_found", "no such dashboard file");
        return STAGE_DONE;
    }
    if (method != HTTP_GET) {
        refuse(x, 405, "method_not_allowed", "only GET is allowed on the dashboard's files");
        return STAGE_DONE;
    }
    exchange_respond(x, 200, f->content_type, ui_security_headers, strlen(ui_security_headers),
                     (const char *)f->data, (size_t)*f->len);
    return STAGE_DONE;
}

/* An admin or metrics call carrying the session cookie instead of a key. */
static stage_result session_call(exchange *x, int method)
{
    if (access_key_from_headers(x->http->headers, x->http->nheaders, &(const char *){0}, &(size_t){0}))
        return STAGE_DECLINED; /* a key in the headers speaks for itself; the cookie is not read */
    const char *id;
    size_t id_len;
    if (!session_cookie(x, &id, &id_len)) return STAGE_DECLINED;
    if (x->config->auth.mode != AUTH_ON || !auth_service()) return STAGE_DECLINED;
    const char *who;
    uint8_t digest[STORE_DIGEST_BYTES];
    char csrf[UI_TOKEN_HEX + 1];
    if (!current_session(x, &id, &id_len, digest, csrf, &who)) return STAGE_DONE;
    if (method != HTTP_GET && !csrf_ok(x, csrf)) return STAGE_DONE;
    uint8_t *copy = arena_alloc(x->arena, STORE_DIGEST_BYTES);
    memcpy(copy, digest, STORE_DIGEST_BYTES);
    x->session_digest = copy;
    return STAGE_DECLINED;
}

static stage_result ui_on_request(exchange *x, void *state)
{
    (void)state;
    const char *path = x->http->path;
    int method = x->http->method == HTTP_HEAD ? HTTP_GET : x->http->method;
    if (!strncmp(path, "/ui/api/", 8)) return api(x, method);
    if (!strcmp(path, "/ui") || !strncmp(path, "/ui/", 4)) return serve_file(x, method);
    if (admin_path(path) || !strcmp(path, "/metrics")) return session_call(x, method);
    return STAGE_DECLINED;
}

const stage stage_ui = {
    .name = "ui",
    .phase = PHASE_ACCEPT,
    .on_request = ui_on_request,
};
