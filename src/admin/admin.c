/* admin.c — the admin API's operations on gateway keys, spend and virtual keys, and the route
 * table every operation is found in (admin.h); teams are in admin_teams.c.
 *
 * A table of routes, each a method, a path pattern and a handler; a handler reads its JSON
 * body into a store_key (key_fields: every field bounded, unknown fields refused by name,
 * LiteLLM's names and aigw's own), calls the store, and writes the key back as JSON (key_json:
 * never the digest; the plaintext only in the answer that made it). A key named in a request
 * — a path segment, ?key=, {"key": …} — may be its id, its alias or, LiteLLM's way, the key
 * itself (then found by its digest); an error message never repeats a key. An admin key (the
 * caller, admin_request.admin_key) may do all of it but create, change or delete an admin key
 * (rank_allows): only the master key raises a key to that rank or takes it away.
 *
 * Virtual keys (/admin/virtual-keys…) take their secret in and never give it back: an answer
 * shows its hint (the last 4 characters) and its version. The store seals it (vault.h) before
 * it is written. Portkey's field names are accepted beside aigw's (`key` for `secret`), and
 * its answer's names given beside aigw's (`slug`, `ai_provider_name`, `masked_api_key`).
 *
 * Rejected: building the OpenAPI document from this table at run time (the schemas would have
 * to live here too); a test compares the two instead (tests/unit/test_admin.c and
 * tests/e2e/keys.test.mjs). */
#include "admin/admin.h"
#include "admin/admin_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>

#include "providers/provider.h"
#include "util/alloc.h"
#include "util/url.h"

/* ---- answers ---------------------------------------------------------------------------------- */

void admin__reply_json(admin_reply *out, int status, json_t *j)
{
    out->status = status;
    out->body = json_dumps(j, JSON_COMPACT);
    out->len = strlen(out->body);
    json_decref(j);
}

void admin__reply_error(admin_reply *out, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = status == 404   ? "not_found_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    admin__reply_json(
        out, status,
        json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type", type, "param", "code", code));
}

void admin_reply_free(admin_reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* spend (this period's, as the store has it) and budget_reset_at (when the period ends; null
 * without a budget_duration), as LiteLLM shows them. */
void admin__add_spend(json_t *j, store *s, char kind, const char *id, int64_t duration, int64_t now)
{
    double spend = 0;
    store_budget_spend(s, kind, id, duration, now, &spend); /* an error reads as 0 */
    json_object_set_new(j, "spend", json_real(spend));
    json_object_set_new(j, "budget_reset_at",
                        duration > 0 ? admin__time_json(budget_period_start(duration, now) + duration)
                                     : json_null());
}

json_t *admin__time_json(int64_t t)
{
    if (!t) return json_null();
    char when[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(when);
}

json_t *admin__string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *admin__list_json(char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

/* Seconds as the shortest of LiteLLM's spellings ("30d", "12h", "20m", "45s"). */
json_t *admin__duration_json(int64_t secs)
{
    if (secs <= 0) return json_null();
    char text[32];
    if (secs % 86400 == 0)
        snprintf(text, sizeof text, "%lldd", (long long)(secs / 86400));
    else if (secs % 3600 == 0)
        snprintf(text, sizeof text, "%lldh", (long long)(secs / 3600));
    else if (secs % 60 == 0)
        snprintf(text, sizeof text, "%lldm", (long long)(secs / 60));
    else
        snprintf(text, sizeof text, "%llds", (long long)secs);
    return json_string(text);
}

/* A key as the API shows it; plaintext: only when it was just made. */
static json_t *key_json(store *s, int64_t now, const store_key *k, const char *plaintext)
{
    json_t *metadata = json_loads(k->metadata ? k->metadata : "{}", 0, NULL);
    json_t *j = json_object();
    if (plaintext) json_object_set_new(j, "key", json_string(plaintext));
    json_object_set_new(j, "id", json_string(k->id));
    json_object_set_new(j, "token", json_string(k->id)); /* LiteLLM's name for the key's handle */
    json_object_set_new(j, "key_alias", admin__string_or_null(k->alias));
    json_object_set_new(j, "key_name", json_string(k->hint));
    json_object_set_new(j, "models", admin__list_json(k->models, k->nmodels));
    json_object_set_new(j, "enabled", json_boolean(k->enabled));
    json_object_set_new(j, "blocked", json_boolean(!k->enabled));
    json_object_set_new(j, "expires", admin__time_json(k->expires_at));
    json_object_set_new(j, "team_id", admin__string_or_null(k->team));
    json_object_set_new(j, "user_id", admin__string_or_null(k->user));
    json_object_set_new(j, "tags", admin__list_json(k->tags, k->ntags));
    json_object_set_new(j, "metadata", metadata ? metadata : json_object());
    json_object_set_new(j, "max_budget", k->max_budget >= 0 ? json_real(k->max_budget) : json_null());
    json_object_set_new(j, "soft_budget", k->soft_budget >= 0 ? json_real(k->soft_budget) : json_null());
    json_object_set_new(j, "budget_duration", admin__duration_json(k->budget_duration));
    admin__add_spend(j, s, 'k', k->id, k->budget_duration, now);
    json_object_set_new(j, "rpm_limit", k->rpm_limit >= 0 ? json_integer(k->rpm_limit) : json_null());
    json_object_set_new(j, "tpm_limit", k->tpm_limit >= 0 ? json_integer(k->tpm_limit) : json_null());
    json_object_set_new(j, "virtual_keys", admin__list_json(k->virtual_keys, k->nvirtual_keys));
    json_object_set_new(j, "rpd_limit", k->rpd_limit >= 0 ? json_integer(k->rpd_limit) : json_null());
    json_object_set_new(j, "tpd_limit", k->tpd_limit >= 0 ? json_integer(k->tpd_limit) : json_null());
    json_t *model_rpm = json_object(), *model_tpm = json_object();
    for (size_t i = 0; i < k->nmodel_limits; i++) {
        const store_model_limit *m = &k->model_limits[i];
        if (m->rpm_limit >= 0) json_object_set_new(model_rpm, m->model, json_integer(m->rpm_limit));
        if (m->tpm_limit >= 0) json_object_set_new(model_tpm, m->model, json_integer(m->tpm_limit));
    }
    json_object_set_new(j, "model_rpm_limit", model_rpm);
    json_object_set_new(j, "model_tpm_limit", model_tpm);
    json_object_set_new(j, "default_route", admin__string_or_null(k->default_route));
    json_object_set_new(j, "admin", json_boolean(k->admin));
    json_object_set_new(j, "user_role", json_string(k->admin ? "proxy_admin" : "internal_user"));
    json_object_set_new(j, "created_at", admin__time_json(k->created_at));
    json_object_set_new(j, "updated_at", admin__time_json(k->updated_at));
    return j;
}

/* ---- reading a key's fields ------------------------------------------------------------------- */

/* "30d", "12h", "20m", "45s", "2w", "1mo" (30 days) → seconds; "permanent" → 0. -1: unreadable. */
static int64_t duration_seconds(const char *s)
{
    if (!strcmp(s, "permanent")) return 0;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (end == s || errno || n <= 0 || n > 100000) return -1;
    static const struct {
        const char *unit;
        int64_t seconds;
    } units[] = {{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 604800}, {"mo", 2592000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].unit)) return n * units[i].seconds;
    return -1;
}

/* A name: a string of 1..STORE_NAME_MAX bytes without control characters. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > STORE_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

/* A list of names into *items (malloc'd; replacing what was there). false: message in err. */
bool admin__read_names(json_t *v, const char *field, size_t max, char ***items, size_t *n, char *err,
                       size_t errlen)
{
    if (!json_is_array(v)) {
        snprintf(err, errlen, "'%s' must be a list of strings", field);
        return false;
    }
    if (json_array_size(v) > max) {
        snprintf(err, errlen, "'%s' has more than %zu entries", field, max);
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || !valid_name(json_string_value(item))) {
            snprintf(err, errlen, "'%s' entries must be strings of 1 to %d characters", field,
                     STORE_NAME_MAX);
            return false;
        }
    }
    for (size_t j = 0; j < *n; j++)
        free((*items)[j]);
    free(*items);
    *n = json_array_size(v);
    *items = *n ? xcalloc(*n, sizeof **items) : NULL;
    json_array_foreach(v, i, item)(*items)[i] = xstrdup(json_string_value(item));
    return true;
}

/* A nullable name field into *dst. */
bool admin__read_name(json_t *v, const char *field, char **dst, char *err, size_t errlen)
{
    if (json_is_null(v)) {
        free(*dst);
        *dst = NULL;
        return true;
    }
    if (!json_is_string(v) || !valid_name(json_string_value(v))) {
        snprintf(err, errlen, "'%s' must be a string of 1 to %d characters, or null", field, STORE_NAME_MAX);
        return false;
    }
    free(*dst);
    *dst = xstrdup(json_string_value(v));
    return true;
}

bool admin__read_limit(json_t *v, const char *field, int64_t *dst, char *err, size_t errlen)
{
    if (json_is_null(v)) {
        *dst = STORE_LIMIT_NONE;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "'%s' must be a whole number of at least 0, or null", field);
        return false;
    }
    *dst = json_integer_value(v);
    return true;
}

/* LiteLLM's model_rpm_limit / model_tpm_limit: {"model": n}, replacing that kind of k's
 * per-model limits (null or {}: none). */
static bool read_model_limits(json_t *v, const char *field, bool tokens, store_key *k, char *err,
                              size_t errlen)
{
    if (!json_is_null(v) && !json_is_object(v)) {
        snprintf(err, errlen, "'%s' must be an object of model name to a whole number, or null", field);
        return false;
    }
    const char *model;
    json_t *n;
    json_object_foreach(v, model, n)
    {
        if (!valid_name(model)) {
            snprintf(err, errlen, "'%s' has a model name that is empty, too long or has control characters",
                     field);
            return false;
        }
        if (!json_is_integer(n) || json_integer_value(n) < 0) {
            snprintf(err, errlen, "'%s' of `%.256s` must be a whole number of at least 0", field, model);
            return false;
        }
    }
    /* drop this kind everywhere, then set what v says; entries left with no limit go */
    size_t kept = 0;
    for (size_t i = 0; i < k->nmodel_limits; i++) {
        store_model_limit *m = &k->model_limits[i];
        if (tokens)
            m->tpm_limit = STORE_LIMIT_NONE;
        else
            m->rpm_limit = STORE_LIMIT_NONE;
        if (m->rpm_limit < 0 && m->tpm_limit < 0)
            free(m->model);
        else
            k->model_limits[kept++] = *m;
    }
    k->nmodel_limits = kept;
    json_object_foreach(v, model, n)
    {
        store_model_limit *m = NULL;
        for (size_t i = 0; i < k->nmodel_limits && !m; i++)
            if (!strcmp(k->model_limits[i].model, model)) m = &k->model_limits[i];
        if (!m) {
            if (k->nmodel_limits == STORE_MODELS_MAX) {
                snprintf(err, errlen, "at most %d models may have limits of their own", STORE_MODELS_MAX);
                return false;
            }
            k->model_limits = xrealloc(k->model_limits, (k->nmodel_limits + 1) * sizeof *k->model_limits);
            m = &k->model_limits[k->nmodel_limits++];
            *m = (store_model_limit){
                .model = xstrdup(model), .rpm_limit = STORE_LIMIT_NONE, .tpm_limit = STORE_LIMIT_NONE};
        }
        if (tokens)
            m->tpm_limit = json_integer_value(n);
        else
            m->rpm_limit = json_integer_value(n);
    }
    return true;
}

static bool read_money(json_t *v, const char *field, double *dst, char *err, size_t errlen)
{
    if (!json_is_null(v) && (!json_is_number(v) || json_number_value(v) < 0 ||
                             !isfinite(json_number_value(v)) || json_number_value(v) > 1e12)) {
        snprintf(err, errlen, "'%s' must be a number of USD from 0 to 10^12, or null", field);
        return false;
    }
    *dst = json_is_null(v) ? -1 : json_number_value(v);
    return true;
}

/* max_budget, soft_budget and budget_duration (LiteLLM's "30d", "1h", "10s"…; null: none), where
 * present. */
bool admin__read_budgets(json_t *body, double *max_budget, double *soft_budget, int64_t *duration, char *err,
                         size_t errlen)
{
    json_t *v;
    if ((v = json_object_get(body, "max_budget")) && !read_money(v, "max_budget", max_budget, err, errlen))
        return false;
    if ((v = json_object_get(body, "soft_budget")) && !read_money(v, "soft_budget", soft_budget, err, errlen))
        return false;
    if ((v = json_object_get(body, "budget_duration"))) {
        int64_t secs = json_is_null(v) ? 0 : json_is_string(v) ? duration_seconds(json_string_value(v)) : -1;
        if (secs < 0) {
            snprintf(err, errlen,
                     "'budget_duration' must be like 30d, 1d, 12h, 20m, 10s, 2w or 1mo, or null");
            return false;
        }
        *duration = secs;
    }
    return true;
}

/* aigw's `admin` (true or false) or LiteLLM's `user_role` ("proxy_admin" is an admin key;
 * "internal_user" and "internal_user_viewer" are not), where present; both must agree. */
static bool read_role(json_t *body, store_key *k, char *err, size_t errlen)
{
    json_t *admin = json_object_get(body, "admin"), *role = json_object_get(body, "user_role");
    if (admin && !json_is_boolean(admin)) {
        snprintf(err, errlen, "'admin' must be true or false");
        return false;
    }
    if (role) {
        const char *r = json_string_value(role);
        if (!r ||
            (strcmp(r, "proxy_admin") && strcmp(r, "internal_user") && strcmp(r, "internal_user_viewer"))) {
            snprintf(err, errlen,
                     "'user_role' must be \"proxy_admin\", \"internal_user\" or \"internal_user_viewer\"");
            return false;
        }
        if (admin && json_is_true(admin) != !strcmp(r, "proxy_admin")) {
            snprintf(err, errlen, "'admin' and 'user_role' disagree");
            return false;
        }
        k->admin = !strcmp(r, "proxy_admin");
    }
    if (admin) k->admin = json_is_true(admin);
    return true;
}

/* The fields every write may carry, read into k (those absent are left alone). skip: a field
 * the operation reads itself (LiteLLM's "key" in /key/update). */
static bool key_fields(json_t *body, store_key *k, int64_t now, const char *skip, char *err, size_t errlen)
{
    static const char *const known[] = {"key_alias",       "alias",         "models",      "duration",
                                        "expires_at",      "team_id",       "user_id",     "tags",
                                        "metadata",        "max_budget",    "rpm_limit",   "tpm_limit",
                                        "enabled",         "blocked",       "soft_budget", "budget_duration",
                                        "virtual_keys",    "rpd_limit",     "tpd_limit",   "model_rpm_limit",
                                        "model_tpm_limit", "default_route", "admin",       "user_role"};
    const char *name;
    json_t *v;
    json_object_foreach(body, name, v)
    {
        bool ok = skip && !strcmp(name, skip);
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = !strcmp(name, known[i]);
        if (!ok) {
            snprintf(
                err, errlen,
                "unknown field '%.64s' (known: key_alias, models, duration, expires_at, team_id, user_id, "
                "tags, metadata, max_budget, soft_budget, budget_duration, rpm_limit, tpm_limit, rpd_limit, "
                "tpd_limit, model_rpm_limit, model_tpm_limit, enabled, blocked, virtual_keys, default_route, "
                "admin, user_role)",
                name);
            return false;
        }
    }
    /* metadata first: its team, user and tags fill in what the fields of their own do not */
    json_t *metadata = json_object_get(body, "metadata");
    if (metadata) {
        if (!json_is_object(metadata)) {
            snprintf(err, errlen, "'metadata' must be an object");
            return false;
        }
        char *text = json_dumps(metadata, JSON_COMPACT | JSON_SORT_KEYS);
        if (strlen(text) > STORE_JSON_MAX) {
            free(text);
            snprintf(err, errlen, "'metadata' is longer than %d bytes as JSON", STORE_JSON_MAX);
            return false;
        }
        free(k->metadata);
        k->metadata = text;
        json_t *team = json_object_get(metadata, "team"), *user = json_object_get(metadata, "user");
        json_t *tags = json_object_get(metadata, "tags");
        if (team && !json_object_get(body, "team_id") &&
            !admin__read_name(team, "metadata.team", &k->team, err, errlen))
            return false;
        if (user && !json_object_get(body, "user_id") &&
            !admin__read_name(user, "metadata.user", &k->user, err, errlen))
            return false;
        if (tags && !json_object_get(body, "tags") &&
            !admin__read_names(tags, "metadata.tags", STORE_TAGS_MAX, &k->tags, &k->ntags, err, errlen))
            return false;
    }
    if ((v = json_object_get(body, "key_alias")) || (v = json_object_get(body, "alias")))
        if (!admin__read_name(v, "key_alias", &k->alias, err, errlen)) return false;
    if ((v = json_object_get(body, "models")) &&
        !admin__read_names(v, "models", STORE_MODELS_MAX, &k->models, &k->nmodels, err, errlen))
        return false;
    if ((v = json_object_get(body, "virtual_keys")) &&
        !admin__read_names(v, "virtual_keys", STORE_VKEYS_MAX, &k->virtual_keys, &k->nvirtual_keys, err,
                           errlen))
        return false;
    if ((v = json_object_get(body, "team_id")) && !admin__read_name(v, "team_id", &k->team, err, errlen))
        return false;
    if ((v = json_object_get(body, "user_id")) && !admin__read_name(v, "user_id", &k->user, err, errlen))
        return false;
    if ((v = json_object_get(body, "tags")) &&
        !admin__read_names(v, "tags", STORE_TAGS_MAX, &k->tags, &k->ntags, err, errlen))
        return false;
    if ((v = json_object_get(body, "duration"))) {
        int64_t secs = json_is_null(v) ? 0 : json_is_string(v) ? duration_seconds(json_string_value(v)) : -1;
        if (secs < 0) {
            snprintf(err, errlen, "'duration' must be like 30d, 12h, 20m, 45s, 2w or permanent");
            return false;
        }
        k->expires_at = secs ? now + secs : 0;
    }
    if ((v = json_object_get(body, "expires_at"))) {
        if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            snprintf(err, errlen, "'expires_at' must be a time in seconds since 1970, or null");
            return false;
        }
        k->expires_at = json_is_null(v) ? 0 : json_integer_value(v);
    }
    if (!admin__read_budgets(body, &k->max_budget, &k->soft_budget, &k->budget_duration, err, errlen))
        return false;
    if ((v = json_object_get(body, "rpm_limit")) &&
        !admin__read_limit(v, "rpm_limit", &k->rpm_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "tpm_limit")) &&
        !admin__read_limit(v, "tpm_limit", &k->tpm_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "rpd_limit")) &&
        !admin__read_limit(v, "rpd_limit", &k->rpd_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "tpd_limit")) &&
        !admin__read_limit(v, "tpd_limit", &k->tpd_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "model_rpm_limit")) &&
        !read_model_limits(v, "model_rpm_limit", false, k, err, errlen))
        return false;
    if ((v = json_object_get(body, "model_tpm_limit")) &&
        !read_model_limits(v, "model_tpm_limit", true, k, err, errlen))
        return false;
    if ((v = json_object_get(body, "enabled"))) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "'enabled' must be true or false");
            return false;
        }
        k->enabled = json_is_true(v);
    }
    if ((v = json_object_get(body, "blocked"))) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "'blocked' must be true or false");
            return false;
        }
        k->enabled = !json_is_true(v);
    }
    if ((v = json_object_get(body, "default_route")) &&
        !admin__read_name(v, "default_route", &k->default_route, err, errlen))
        return false;
    if (!read_role(body, k, err, errlen)) return false;
    /* a key that may not use its own default route is a mistake: said now, not per request */
    if (k->default_route &&
        !access_models_allow(k->models, k->nmodels, k->default_route, strlen(k->default_route))) {
        snprintf(err, errlen, "'default_route' `%.256s` is not among the key's models", k->default_route);
        return false;
    }
    return true;
}

/* ---- finding a key ---------------------------------------------------------------------------- */

/* ref is an id, an alias or a key itself. */
static store_result find_key(store *s, const access_secret *secret, const char *ref, store_key *out)
{
    size_t len = strlen(ref);
    if (len > sizeof ACCESS_KEY_PREFIX - 1 &&
        !strncmp(ref, ACCESS_KEY_PREFIX, sizeof ACCESS_KEY_PREFIX - 1) && len <= ACCESS_KEY_MAX) {
        uint8_t digest[STORE_DIGEST_BYTES];
        access_key_digest(secret, ref, len, digest);
        store_result r = store_key_get_by_digest(s, digest, out);
        if (r != STORE_NOT_FOUND) return r;
    }
    return len <= STORE_NAME_MAX ? store_key_get(s, ref, out) : STORE_NOT_FOUND;
}

/* How a ref is named in a message: never a key itself. */
static const char *ref_for_message(const char *ref)
{
    return !strncmp(ref, ACCESS_KEY_PREFIX, sizeof ACCESS_KEY_PREFIX - 1) ? "(the key given)" : ref;
}

static void reply_store_error(admin_reply *out, store *s, store_result r, const char *ref)
{
    if (r == STORE_NOT_FOUND)
        admin__reply_error(out, 404, "key_not_found", "no gateway key %.256s", ref_for_message(ref));
    else if (r == STORE_CONFLICT)
        admin__reply_error(out, 409, "alias_taken", "another key has this key_alias");
    else
        admin__reply_error(out, 500, "store_error", "the store failed: %s", store_error(s));
}

/* ---- the operations --------------------------------------------------------------------------- */

/* Only the master key makes, changes or deletes an admin key: an admin key manages user keys,
 * teams and virtual keys, and cannot raise a key (or keep one) to its own rank. False after
 * answering 403. */
static bool rank_allows(op_ctx *c, bool admin)
{
    if (!admin || !c->req->admin_key) return true;
    admin__reply_error(c->out, 403, "master_key_required",
                       "only the master key may create, change or delete an admin key");
    return false;
}

/* New key material into k (digest, hint); the plaintext into text. */
static void new_material(op_ctx *c, store_key *k, char text[ACCESS_KEY_LEN + 1])
{
    access_key_generate(text);
    access_key_digest(c->secret, text, ACCESS_KEY_LEN, k->digest);
    access_key_hint(text, ACCESS_KEY_LEN, k->hint);
}

static void op_create(op_ctx *c)
{
    store_key k = {.enabled = true,
                   .max_budget = -1,
                   .soft_budget = -1,
                   .rpm_limit = STORE_LIMIT_NONE,
                   .tpm_limit = STORE_LIMIT_NONE,
                   .rpd_limit = STORE_LIMIT_NONE,
                   .tpd_limit = STORE_LIMIT_NONE};
    char err[512], text[ACCESS_KEY_LEN + 1];
    if (!key_fields(c->body, &k, c->now, NULL, err, sizeof err)) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_key_clear(&k);
        return;
    }
    if (!rank_allows(c, k.admin)) {
        store_key_clear(&k);
        return;
    }
    access_key_new_id(k.id);
    new_material(c, &k, text);
    k.created_at = k.updated_at = c->now;
    if (!k.metadata) k.metadata = xstrdup("{}");
    store_result r = store_key_insert(c->s, &k);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, key_json(c->s, c->now, &k, text));
    else
        reply_store_error(c->out, c->s, r, "");
    store_key_clear(&k);
}

typedef struct list_ctx {
    op_ctx *c;
    json_t *data;
} list_ctx;

static void on_list_row(const store_key *k, void *ud)
{
    list_ctx *l = ud;
    json_array_append_new(l->data, key_json(l->c->s, l->c->now, k, NULL));
}

static void op_list(op_ctx *c)
{
    json_t *data = json_array();
    list_ctx l = {c, data};
    store_result r = store_keys_each(c->s, on_list_row, &l);
    if (r != STORE_OK) {
        json_decref(data);
        reply_store_error(c->out, c->s, r, "");
        return;
    }
    admin__reply_json(c->out, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

/* The key named ref, into k; false after answering. */
static bool load(op_ctx *c, const char *ref, store_key *k)
{
    store_result r = find_key(c->s, c->secret, ref, k);
    if (r == STORE_OK) return true;
    reply_store_error(c->out, c->s, r, ref);
    return false;
}

static void op_show(op_ctx *c)
{
    store_key k;
    if (!load(c, c->id, &k)) return;
    admin__reply_json(c->out, 200, key_json(c->s, c->now, &k, NULL));
    store_key_clear(&k);
}

/* Changes fields of the key ref (body's, or forced enabled when enabled >= 0), writes it and
 * answers with it; rotate: new key material too. */
static void change(op_ctx *c, const char *ref, const char *skip, int enabled, bool rotate)
{
    store_key k;
    char err[512], text[ACCESS_KEY_LEN + 1];
    if (!load(c, ref, &k)) return;
    if (!rank_allows(c, k.admin)) {
        store_key_clear(&k);
        return;
    }
    if (enabled < 0 && !rotate && !key_fields(c->body, &k, c->now, skip, err, sizeof err)) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_key_clear(&k);
        return;
    }
    if (!rank_allows(c, k.admin)) {
        store_key_clear(&k);
        return;
    }
    if (enabled >= 0) k.enabled = enabled;
    if (rotate) new_material(c, &k, text);
    k.updated_at = c->now;
    store_result r = store_key_update(c->s, &k);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, key_json(c->s, c->now, &k, rotate ? text : NULL));
    else
        reply_store_error(c->out, c->s, r, ref);
    store_key_clear(&k);
}

static void op_update(op_ctx *c)
{
    change(c, c->id, NULL, -1, false);
}

static void op_disable(op_ctx *c)
{
    change(c, c->id, NULL, 0, false);
}

static void op_enable(op_ctx *c)
{
    change(c, c->id, NULL, 1, false);
}

static void op_rotate(op_ctx *c)
{
    change(c, c->id, NULL, -1, true);
}

static void op_delete(op_ctx *c)
{
    store_key k;
    if (!load(c, c->id, &k)) return;
    if (!rank_allows(c, k.admin)) {
        store_key_clear(&k);
        return;
    }
    store_result r = store_key_delete(c->s, k.id);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, json_pack("{s:s,s:b}", "id", k.id, "deleted", 1));
    else
        reply_store_error(c->out, c->s, r, c->id);
    store_key_clear(&k);
}

/* LiteLLM's {"key": …} in a body; NULL after answering. */
static const char *body_key(op_ctx *c)
{
    const char *ref = json_string_value(json_object_get(c->body, "key"));
    if (!ref || !*ref)
        admin__reply_error(c->out, 400, "missing_key",
                           "the body needs \"key\": the key, its id or its alias");
    return ref && *ref ? ref : NULL;
}

static void op_ll_update(op_ctx *c)
{
    const char *ref = body_key(c);
    if (ref) change(c, ref, "key", -1, false);
}

static void op_ll_block(op_ctx *c)
{
    const char *ref = body_key(c);
    if (ref) change(c, ref, NULL, 0, false);
}

static void op_ll_unblock(op_ctx *c)
{
    const char *ref = body_key(c);
    if (ref) change(c, ref, NULL, 1, false);
}

/* The value of name in a query string (percent-decoded into out); false when absent. */
bool admin__query_value(const char *query, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            size_t n = 0;
            for (size_t i = nlen + 1; i < plen && n + 1 < len; i++) {
                char ch = p[i];
                unsigned hex;
                if (ch == '%' && i + 2 < plen + 1 && sscanf(p + i + 1, "%2x", &hex) == 1) {
                    ch = (char)hex;
                    i += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                out[n++] = ch;
            }
            out[n] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

static void op_ll_info(op_ctx *c)
{
    char ref[ACCESS_KEY_MAX + 1];
    if (!admin__query_value(c->req->query, "key", ref, sizeof ref) || !*ref) {
        admin__reply_error(c->out, 400, "missing_key", "add ?key= with the key, its id or its alias");
        return;
    }
    store_key k;
    if (!load(c, ref, &k)) return;
    admin__reply_json(c->out, 200,
                      json_pack("{s:s,s:o}", "key", k.id, "info", key_json(c->s, c->now, &k, NULL)));
    store_key_clear(&k);
}

static void on_id_row(const store_key *k, void *ud)
{
    json_array_append_new(ud, json_string(k->id));
}

static void op_ll_list(op_ctx *c)
{
    json_t *ids = json_array();
    store_result r = store_keys_each(c->s, on_id_row, ids);
    if (r != STORE_OK) {
        json_decref(ids);
        reply_store_error(c->out, c->s, r, "");
        return;
    }
    admin__reply_json(c->out, 200,
                      json_pack("{s:o,s:I}", "keys", ids, "total_count", (json_int_t)json_array_size(ids)));
}

/* {"keys": [...], "key_aliases": [...]}: every one must exist, then all go. */
static void op_ll_delete(op_ctx *c)
{
    json_t *keys = json_object_get(c->body, "keys"), *aliases = json_object_get(c->body, "key_aliases");
    if ((keys && !json_is_array(keys)) || (aliases && !json_is_array(aliases)) ||
        json_array_size(keys) + json_array_size(aliases) == 0 ||
        json_array_size(keys) + json_array_size(aliases) > 1000) {
        admin__reply_error(c->out, 400, "missing_keys",
                           "the body needs \"keys\" or \"key_aliases\": lists of 1 to 1000 keys");
        return;
    }
    json_t *refs = json_array(), *ids = json_array();
    if (keys) json_array_extend(refs, keys);
    if (aliases) json_array_extend(refs, aliases);
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        store_key k;
        if (!json_is_string(ref)) {
            admin__reply_error(c->out, 400, "invalid_field", "\"keys\" and \"key_aliases\" hold strings");
            goto out;
        }
        if (!load(c, json_string_value(ref), &k)) goto out;
        bool allowed = rank_allows(c, k.admin);
        json_array_append_new(ids, json_string(k.id));
        store_key_clear(&k);
        if (!allowed) goto out;
    }
    json_array_foreach(ids, i, ref)
    {
        store_result r = store_key_delete(c->s, json_string_value(ref));
        if (r != STORE_OK && r != STORE_NOT_FOUND) {
            reply_store_error(c->out, c->s, r, json_string_value(ref));
            goto out;
        }
    }
    admin__reply_json(c->out, 200, json_pack("{s:O}", "deleted_keys", ids));
out:
    json_decref(refs);
    json_decref(ids);
}

/* ---- spend ------------------------------------------------------------------------------------ */

/* A time as the API takes it: "2026-12-06", "2026-12-06T16:00:00Z" or seconds since 1970. A
 * date alone is its day's start; end_of_day: its next day's start (a "to" date is inclusive). */
static bool parse_when(const char *text, bool end_of_day, int64_t *out)
{
    struct tm tm = {0};
    char *end;
    if (*text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 12) {
        *out = strtoll(text, &end, 10);
        return true;
    }
    end = strptime(text, "%Y-%m-%d", &tm);
    if (!end) return false;
    bool date_only = *end == '\0';
    if (!date_only) {
        end = strptime(end, "T%H:%M:%S", &tm);
        if (!end || (*end && strcmp(end, "Z"))) return false;
    }
    *out = (int64_t)timegm(&tm) + (date_only && end_of_day ? 86400 : 0);
    return true;
}

typedef struct spend_ctx {
    const char *by;
    json_t *data;
    spend_row total;
} spend_ctx;

static json_t *spend_totals_json(const spend_row *t)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "requests", (json_int_t)t->requests, "prompt_tokens",
                     (json_int_t)t->prompt_tokens, "completion_tokens", (json_int_t)t->completion_tokens,
                     "cached_tokens", (json_int_t)t->cached_tokens, "reasoning_tokens",
                     (json_int_t)t->reasoning_tokens, "cost_usd", t->cost_usd);
}

static void on_spend_group(const char *group, const spend_row *t, void *ud)
{
    spend_ctx *sc = ud;
    json_t *row = spend_totals_json(t);
    if (!strcmp(sc->by, "day") || !strcmp(sc->by, "hour")) {
        char when[32];
        time_t tt = (time_t)strtoll(group, NULL, 10);
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(when, sizeof when, !strcmp(sc->by, "day") ? "%Y-%m-%d" : "%Y-%m-%dT%H:00:00Z", &tm);
        json_object_set_new(row, sc->by, json_string(when));
    } else {
        json_object_set_new(row,
                            !strcmp(sc->by, "key")    ? "key_id"
                            : !strcmp(sc->by, "team") ? "team_id"
                                                      : "model",
                            *group ? json_string(group) : json_null());
    }
    json_array_append_new(sc->data, row);
    sc->total.requests += t->requests;
    sc->total.prompt_tokens += t->prompt_tokens;
    sc->total.completion_tokens += t->completion_tokens;
    sc->total.cached_tokens += t->cached_tokens;
    sc->total.reasoning_tokens += t->reasoning_tokens;
    sc->total.cost_usd += t->cost_usd;
}

/* GET /admin/spend?group_by=key|team|model|day|hour&from=…&to=… */
static void op_spend(op_ctx *c)
{
    char by[16] = "key", from_text[64] = "", to_text[64] = "";
    if (admin__query_value(c->req->query, "group_by", by, sizeof by) && strcmp(by, "key") &&
        strcmp(by, "team") && strcmp(by, "model") && strcmp(by, "day") && strcmp(by, "hour")) {
        admin__reply_error(c->out, 400, "invalid_group_by", "group_by must be key, team, model, day or hour");
        return;
    }
    int64_t from = 0, to = 0;
    if (admin__query_value(c->req->query, "from", from_text, sizeof from_text) &&
        !parse_when(from_text, false, &from)) {
        admin__reply_error(c->out, 400, "invalid_from",
                           "from must be a date (2026-12-06), a time (2026-12-06T16:00:00Z) "
                           "or seconds since 1970");
        return;
    }
    if (admin__query_value(c->req->query, "to", to_text, sizeof to_text) && !parse_when(to_text, true, &to)) {
        admin__reply_error(c->out, 400, "invalid_to",
                           "to must be a date (2026-12-06, inclusive), a time "
                           "(2026-12-06T16:00:00Z) or seconds since 1970");
        return;
    }
    spend_ctx sc = {.by = by, .data = json_array()};
    /* an hour counts when it starts in [from, to): from is rounded down to its hour */
    store_result r = store_spend_query(c->s, by, from - from % 3600, to, on_spend_group, &sc);
    if (r != STORE_OK) {
        json_decref(sc.data);
        admin__reply_error(c->out, 500, "store_error", "the store failed: %s", store_error(c->s));
        return;
    }
    json_t *j = json_pack(
        "{s:s,s:o,s:o,s:o,s:o}", "group_by", by, "from", from ? admin__time_json(from) : json_null(), "to",
        to ? admin__time_json(to) : json_null(), "data", sc.data, "total", spend_totals_json(&sc.total));
    admin__reply_json(c->out, 200, j);
}

/* ---- virtual keys ----------------------------------------------------------------------------- */

#define VKEY_NAME_MAX 64

/* A virtual key as the API shows it: never its secret. */
static json_t *vkey_json(const store_vkey *v)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(v->name));
    json_object_set_new(j, "slug", json_string(v->name)); /* Portkey's name for the reference */
    json_object_set_new(j, "provider", json_string(v->provider));
    json_object_set_new(j, "ai_provider_name", json_string(v->provider));
    json_object_set_new(j, "base_url", admin__string_or_null(v->base_url));
    json_object_set_new(j, "hint", json_string(v->hint));
    json_object_set_new(j, "masked_api_key", json_string(v->hint));
    json_object_set_new(j, "version", json_integer(v->version));
    json_object_set_new(j, "created_at", admin__time_json(v->created_at));
    json_object_set_new(j, "updated_at", admin__time_json(v->updated_at));
    return j;
}

/* A name that can stand in a path, a config and "@name": [A-Za-z0-9._-], 1..64, not "." or "..". */
static bool valid_vkey_name(const char *s)
{
    size_t len = strlen(s);
    if (!len || len > VKEY_NAME_MAX || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* The fields of a create or update into v (those absent are left alone); the secret, when
 * given, points into body (valid while it is). create: name and provider are read too. */
static bool vkey_fields(json_t *body, store_vkey *v, bool create, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "slug", "provider", "base_url", "secret", "key"};
    const char *field;
    json_t *val;
    json_object_foreach(body, field, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = !strcmp(field, known[i]);
        if (!ok) {
            snprintf(err, errlen, "unknown field '%.64s' (known: name, provider, base_url, secret)", field);
            return false;
        }
        if (!create && (!strcmp(field, "name") || !strcmp(field, "slug")) &&
            !(json_is_string(val) && !strcmp(json_string_value(val), v->name))) {
            snprintf(err, errlen, "a virtual key's name cannot change (delete it and create another)");
            return false;
        }
    }
    if (create) {
        if (!(val = json_object_get(body, "name"))) val = json_object_get(body, "slug");
        if (!json_is_string(val) || !valid_vkey_name(json_string_value(val))) {
            snprintf(err, errlen, "'name' must be 1 to %d characters of A-Z a-z 0-9 . _ -", VKEY_NAME_MAX);
            return false;
        }
        snprintf(v->name, sizeof v->name, "%s", json_string_value(val));
        if (!json_object_get(body, "provider")) {
            snprintf(err, errlen,
                     "'provider' is needed: the provider type the secret is for (openai, anthropic, …)");
            return false;
        }
        if (!json_object_get(body, "secret") && !json_object_get(body, "key")) {
            snprintf(err, errlen, "'secret' is needed: the provider's API key");
            return false;
        }
    }
    if ((val = json_object_get(body, "provider"))) {
        const char *type = json_string_value(val);
        if (!type || strlen(type) > 64 || !provider_preset_find(type)) {
            snprintf(err, errlen,
                     "'provider' must be a provider type as the config spells it (openai, anthropic, …)");
            return false;
        }
        free(v->provider);
        v->provider = xstrdup(type);
    }
    if ((val = json_object_get(body, "base_url"))) {
        char url[1024];
        const char *why = "must be a string";
        if (!json_is_null(val) && (!json_is_string(val) || strlen(json_string_value(val)) >= sizeof url ||
                                   (strncmp(json_string_value(val), "http://", 7) &&
                                    strncmp(json_string_value(val), "https://", 8)) ||
                                   !url_normalize(json_string_value(val), url, sizeof url, &why))) {
            snprintf(err, errlen,
                     "'base_url' must be an http:// or https:// URL of up to 1023 bytes, or null");
            return false;
        }
        free(v->base_url);
        v->base_url = NULL;
        if (!json_is_null(val)) {
            size_t len = strlen(json_string_value(val));
            while (len && json_string_value(val)[len - 1] == '/')
                len--;
            v->base_url = xstrndup(json_string_value(val), len);
        }
    }
    if ((val = json_object_get(body, "secret")) || (val = json_object_get(body, "key"))) {
        const char *secret = json_string_value(val);
        size_t len = secret ? strlen(secret) : 0;
        /* it becomes a header value: visible ASCII only, nothing that could end the line */
        bool visible = len > 0 && len <= VAULT_SECRET_MAX;
        for (size_t i = 0; visible && i < len; i++)
            visible = secret[i] > 0x20 && secret[i] < 0x7f;
        if (!visible) {
            snprintf(err, errlen, "'secret' must be 1 to %d visible ASCII characters (no spaces)",
                     VAULT_SECRET_MAX);
            return false;
        }
        v->secret = (char *)secret;
        v->secret_len = len;
    }
    return true;
}

static void reply_vkey_store_error(admin_reply *out, store *s, store_result r, const char *name)
{
    if (r == STORE_NOT_FOUND)
        admin__reply_error(out, 404, "virtual_key_not_found", "no virtual key %.64s", name);
    else if (r == STORE_CONFLICT)
        admin__reply_error(out, 409, "name_taken", "a virtual key named %.64s exists already", name);
    else
        admin__reply_error(out, 500, "store_error", "the store failed: %s", store_error(s));
}

/* Refuses a write of a secret when there is no vault key to seal it with; false after answering. */
static bool vault_ready(op_ctx *c)
{
    if (store_has_vault(c->s)) return true;
    admin__reply_error(
        c->out, 400, "vault_key_not_configured",
        "no vault key is configured: set auth.vault_key (e.g. ${AIGW_VAULT_KEY}: 32 random bytes in hex, "
        "openssl rand -hex 32) or auth.vault_key_file, then restart aigw");
    return false;
}

/* The answer to a write of v (r: how it went): the row as stored now (version, hint). v is
 * cleared. */
static void reply_vkey_written(op_ctx *c, store_result r, store_vkey *v)
{
    char name[sizeof v->name];
    snprintf(name, sizeof name, "%s", v->name);
    store_vkey_clear(v);
    if (r != STORE_OK) {
        reply_vkey_store_error(c->out, c->s, r, name);
    } else if ((r = store_vkey_get(c->s, name, v)) == STORE_OK) {
        admin__reply_json(c->out, 200, vkey_json(v));
        store_vkey_clear(v);
    } else { /* deleted by another process between the two */
        reply_vkey_store_error(c->out, c->s, r, name);
    }
}

static void op_vkey_create(op_ctx *c)
{
    store_vkey v = {0};
    char err[512];
    if (!vault_ready(c)) return;
    if (!vkey_fields(c->body, &v, true, err, sizeof err)) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_vkey_clear(&v);
        return;
    }
    v.created_at = v.updated_at = c->now;
    v.version = 1;
    store_result r = store_vkey_insert(c->s, &v);
    v.secret = NULL;
    reply_vkey_written(c, r, &v);
}

static void on_vkey_row(const store_vkey *v, void *ud)
{
    json_array_append_new(ud, vkey_json(v));
}

static void op_vkey_list(op_ctx *c)
{
    json_t *data = json_array();
    store_result r = store_vkeys_each(c->s, on_vkey_row, data);
    if (r != STORE_OK) {
        json_decref(data);
        reply_vkey_store_error(c->out, c->s, r, "");
        return;
    }
    admin__reply_json(c->out, 200,
                      json_pack("{s:s,s:I,s:o}", "object", "list", "total", (json_int_t)json_array_size(data),
                                "data", data));
}

/* The virtual key named c->id into v; false after answering. */
static bool vkey_load(op_ctx *c, store_vkey *v)
{
    store_result r = strlen(c->id) <= VKEY_NAME_MAX ? store_vkey_get(c->s, c->id, v) : STORE_NOT_FOUND;
    if (r == STORE_OK) return true;
    reply_vkey_store_error(c->out, c->s, r, c->id);
    return false;
}

static void op_vkey_show(op_ctx *c)
{
    store_vkey v;
    if (!vkey_load(c, &v)) return;
    admin__reply_json(c->out, 200, vkey_json(&v));
    store_vkey_clear(&v);
}

/* PATCH (any field) or …/rotate (a new secret, which it needs). */
static void vkey_change(op_ctx *c, bool rotate)
{
    store_vkey v;
    char err[512];
    if (!vkey_load(c, &v)) return;
    bool ok = vkey_fields(c->body, &v, false, err, sizeof err);
    if (ok && rotate && !v.secret) {
        snprintf(err, sizeof err, "'secret' is needed: the provider's new API key");
        ok = false;
    }
    if (!ok) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_vkey_clear(&v);
        return;
    }
    if (v.secret && !vault_ready(c)) {
        store_vkey_clear(&v);
        return;
    }
    v.updated_at = c->now;
    store_result r = store_vkey_update(c->s, &v);
    v.secret = NULL;
    reply_vkey_written(c, r, &v);
}

static void op_vkey_update(op_ctx *c)
{
    vkey_change(c, false);
}

static void op_vkey_rotate(op_ctx *c)
{
    vkey_change(c, true);
}

static void op_vkey_delete(op_ctx *c)
{
    store_vkey v;
    if (!vkey_load(c, &v)) return;
    store_result r = store_vkey_delete(c->s, v.name);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, json_pack("{s:s,s:b}", "name", v.name, "deleted", 1));
    else
        reply_vkey_store_error(c->out, c->s, r, v.name);
    store_vkey_clear(&v);
}

static void op_logs(op_ctx *c)
{
    admin__logs(c->s, c->req, c->id, c->out); /* admin_logs.c */
}

static void op_openapi(op_ctx *c)
{
    c->out->status = 200;
    c->out->body = xstrdup(admin_openapi_json);
    c->out->len = strlen(c->out->body);
}

typedef struct admin_route {
    int method;
    const char *pattern;
    void (*run)(op_ctx *c);
} admin_route;

static const admin_route routes[] = {
    {HTTP_POST, "/admin/keys", op_create},
    {HTTP_GET, "/admin/keys", op_list},
    {HTTP_GET, "/admin/keys/{id}", op_show},
    {HTTP_PATCH, "/admin/keys/{id}", op_update},
    {HTTP_DELETE, "/admin/keys/{id}", op_delete},
    {HTTP_POST, "/admin/keys/{id}/disable", op_disable},
    {HTTP_POST, "/admin/keys/{id}/enable", op_enable},
    {HTTP_POST, "/admin/keys/{id}/rotate", op_rotate},
    {HTTP_POST, "/admin/teams", admin__op_team_create},
    {HTTP_GET, "/admin/teams", admin__op_team_list},
    {HTTP_GET, "/admin/teams/{id}", admin__op_team_show},
    {HTTP_PATCH, "/admin/teams/{id}", admin__op_team_update},
    {HTTP_DELETE, "/admin/teams/{id}", admin__op_team_delete},
    {HTTP_GET, "/admin/spend", op_spend},
    {HTTP_GET, "/admin/logs", op_logs},
    {HTTP_GET, "/admin/logs/aggregate", op_logs}, /* before {id}: it would match */
    {HTTP_GET, "/admin/logs/{id}", op_logs},
    {HTTP_POST, "/admin/virtual-keys", op_vkey_create},
    {HTTP_GET, "/admin/virtual-keys", op_vkey_list},
    {HTTP_GET, "/admin/virtual-keys/{id}", op_vkey_show},
    {HTTP_PATCH, "/admin/virtual-keys/{id}", op_vkey_update},
    {HTTP_DELETE, "/admin/virtual-keys/{id}", op_vkey_delete},
    {HTTP_POST, "/admin/virtual-keys/{id}/rotate", op_vkey_rotate},
    {HTTP_POST, "/admin/prompts", admin__op_prompt_create},
    {HTTP_GET, "/admin/prompts", admin__op_prompt_list},
    {HTTP_GET, "/admin/prompts/{id}", admin__op_prompt_show},
    {HTTP_POST, "/admin/prompts/{id}/labels", admin__op_prompt_label},
    {HTTP_POST, "/admin/prompts/{id}/promote", admin__op_prompt_promote},
    {HTTP_GET, "/admin/prompts/{id}/report", admin__op_prompt_report},
    {HTTP_POST, "/v1/feedback", admin__op_feedback},
    {HTTP_POST, "/admin/partials", admin__op_prompt_create},
    {HTTP_GET, "/admin/partials", admin__op_prompt_list},
    {HTTP_GET, "/admin/partials/{id}", admin__op_prompt_show},
    {HTTP_POST, "/admin/partials/{id}/labels", admin__op_prompt_label},
    {HTTP_GET, "/admin/openapi.json", op_openapi},
    /* the running config: answered by the gateway itself (pipeline/admin_stage.c), which holds it
     * and asks the server for the reload; listed here so the document and the 404/405s know them */
    {HTTP_GET, "/admin/config", NULL},
    {HTTP_PUT, "/admin/config", NULL},
    {HTTP_POST, "/admin/config/reload", NULL},
    /* the alert rules' state and the breakers' reset: the gateway's too (the alert thread and
     * routing's shared state live there) */
    {HTTP_GET, "/admin/alerts", NULL},
    {HTTP_POST, "/admin/breakers/reset", NULL},
    {HTTP_POST, "/key/generate", op_create},
    {HTTP_GET, "/key/info", op_ll_info},
    {HTTP_POST, "/key/update", op_ll_update},
    {HTTP_POST, "/key/delete", op_ll_delete},
    {HTTP_POST, "/key/block", op_ll_block},
    {HTTP_POST, "/key/unblock", op_ll_unblock},
    {HTTP_GET, "/key/list", op_ll_list},
    {HTTP_POST, "/team/new", admin__op_team_create},
    {HTTP_GET, "/team/info", admin__op_ll_team_info},
    {HTTP_POST, "/team/update", admin__op_ll_team_update},
    {HTTP_POST, "/team/delete", admin__op_ll_team_delete},
    {HTTP_GET, "/team/list", admin__op_ll_team_list},
};
#define NROUTES (sizeof routes / sizeof routes[0])

size_t admin_nroutes(void)
{
    return NROUTES;
}

void admin_route_at(size_t i, int *method, const char **pattern)
{
    *method = routes[i].method;
    *pattern = routes[i].pattern;
}

bool admin_path(const char *path)
{
    return !strcmp(path, "/v1/feedback") || !strncmp(path, "/admin/", 7) || !strcmp(path, "/admin") ||
           !strncmp(path, "/key/", 5) || !strncmp(path, "/team/", 6);
}

/* Whether path matches pattern; the {id} segment (percent-decoded, 1..STORE_NAME_MAX bytes)
 * into id. */
static bool match(const char *pattern, const char *path, char *id, size_t idlen)
{
    const char *brace = strstr(pattern, "{id}");
    if (!brace) return !strcmp(pattern, path);
    size_t head = (size_t)(brace - pattern);
    if (strncmp(pattern, path, head)) return false;
    const char *seg = path + head, *tail = brace + 4;
    const char *end = strchr(seg, '/');
    if (!end) end = seg + strlen(seg);
    if (end == seg || strcmp(end, tail)) return false;
    size_t n = 0;
    for (const char *p = seg; p < end; p++) {
        char ch = *p;
        unsigned hex;
        if (ch == '%' && end - p > 2 && sscanf(p + 1, "%2x", &hex) == 1) {
            ch = (char)hex;
            p += 2;
        }
        if (n + 1 >= idlen || (unsigned char)ch < 0x20) return false;
        id[n++] = ch;
    }
    id[n] = '\0';
    return true;
}

bool admin_route_exists(int method, const char *path, bool *path_known)
{
    char id[STORE_NAME_MAX + 1];
    *path_known = false;
    for (size_t i = 0; i < NROUTES; i++)
        if (match(routes[i].pattern, path, id, sizeof id)) {
            *path_known = true;
            if (routes[i].method == method) return true;
        }
    return false;
}

void admin_handle(store *s, const access_secret *secret, const admin_request *req, admin_reply *out)
{
    memset(out, 0, sizeof *out);
    char id[STORE_NAME_MAX + 1];
    const admin_route *route = NULL;
    bool path_known = false;
    for (size_t i = 0; i < NROUTES && !route; i++)
        if (match(routes[i].pattern, req->path, id, sizeof id)) {
            path_known = true;
            if (routes[i].method == req->method) route = &routes[i];
        }
    if (!route || !route->run) {
        if (route)
            admin__reply_error(out, 409, "gateway_only", "%.200s is answered by a running gateway only",
                               req->path);
        else if (path_known)
            admin__reply_error(out, 405, "method_not_allowed", "method %s is not allowed on %.200s",
                               http_method_str(req->method), req->path);
        else
            admin__reply_error(out, 404, "not_found", "unknown admin path %.200s", req->path);
        return;
    }
    if (req->body_len > ADMIN_BODY_MAX) {
        admin__reply_error(out, 413, "body_too_large", "admin request bodies are at most %d bytes",
                           ADMIN_BODY_MAX);
        return;
    }
    json_t *body = NULL;
    if (req->body_len) {
        json_error_t jerr;
        body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            bool parsed = body != NULL;
            json_decref(body);
            admin__reply_error(out, 400, "invalid_json",
                               "the body must be a JSON object (%s at character %d)",
                               parsed ? "not an object" : jerr.text, parsed ? 0 : jerr.position);
            return;
        }
    }
    op_ctx c = {.s = s,
                .secret = secret,
                .req = req,
                .body = body ? body : json_object(),
                .id = id,
                .now = (int64_t)time(NULL),
                .out = out};
    route->run(&c);
    json_decref(c.body);
}
