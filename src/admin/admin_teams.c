/* admin_teams.c — the admin API's teams: /admin/teams… (REST, as keys) and LiteLLM's /team/new,
 * /team/info?team_id=, /team/update, /team/delete, /team/list, with LiteLLM's field names.
 *
 * A team carries model globs, budgets, shared rate limits, metadata and a blocked flag; its
 * keys name it by team_id (docs/access.md). Split from admin.c along this seam: the route table
 * there names these operations, the helpers that read fields and write answers are shared
 * through admin_internal.h. Like every operation, these run on the store's thread (or in `aigw
 * teams` when no gateway answers), never on a worker's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin_internal.h"
#include "util/alloc.h"

static json_t *team_json(op_ctx *c, const store_team *t)
{
    json_t *metadata = json_loads(t->metadata ? t->metadata : "{}", 0, NULL);
    json_t *j = json_object();
    json_object_set_new(j, "team_id", json_string(t->id));
    json_object_set_new(j, "team_alias", admin__string_or_null(t->alias));
    json_object_set_new(j, "models", admin__list_json(t->models, t->nmodels));
    json_object_set_new(j, "max_budget", t->max_budget >= 0 ? json_real(t->max_budget) : json_null());
    json_object_set_new(j, "soft_budget", t->soft_budget >= 0 ? json_real(t->soft_budget) : json_null());
    json_object_set_new(j, "budget_duration", admin__duration_json(t->budget_duration));
    admin__add_spend(j, c->s, 't', t->id, t->budget_duration, c->now);
    json_object_set_new(j, "rpm_limit", t->rpm_limit >= 0 ? json_integer(t->rpm_limit) : json_null());
    json_object_set_new(j, "tpm_limit", t->tpm_limit >= 0 ? json_integer(t->tpm_limit) : json_null());
    json_object_set_new(j, "blocked", json_boolean(t->blocked));
    json_object_set_new(j, "metadata", metadata ? metadata : json_object());
    json_object_set_new(j, "created_at", admin__time_json(t->created_at));
    json_object_set_new(j, "updated_at", admin__time_json(t->updated_at));
    return j;
}

/* A team's fields from body into t (absent ones left alone); skip: a field the operation reads
 * itself. LiteLLM's names. */
static bool team_fields(json_t *body, store_team *t, const char *skip, char *err, size_t errlen)
{
    static const char *const known[] = {"team_alias",  "models",          "max_budget",
                                        "soft_budget", "budget_duration", "rpm_limit",
                                        "tpm_limit",   "metadata",        "blocked"};
    const char *name;
    json_t *v;
    json_object_foreach(body, name, v)
    {
        bool ok = skip && !strcmp(name, skip);
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = !strcmp(name, known[i]);
        if (!ok) {
            snprintf(err, errlen,
                     "unknown field '%.64s' (known: team_id, team_alias, models, max_budget, soft_budget, "
                     "budget_duration, rpm_limit, tpm_limit, metadata, blocked)",
                     name);
            return false;
        }
    }
    if ((v = json_object_get(body, "team_alias")) &&
        !admin__read_name(v, "team_alias", &t->alias, err, errlen))
        return false;
    if ((v = json_object_get(body, "models")) &&
        !admin__read_names(v, "models", STORE_MODELS_MAX, &t->models, &t->nmodels, err, errlen))
        return false;
    if (!admin__read_budgets(body, &t->max_budget, &t->soft_budget, &t->budget_duration, err, errlen))
        return false;
    if ((v = json_object_get(body, "rpm_limit")) &&
        !admin__read_limit(v, "rpm_limit", &t->rpm_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "tpm_limit")) &&
        !admin__read_limit(v, "tpm_limit", &t->tpm_limit, err, errlen))
        return false;
    if ((v = json_object_get(body, "metadata"))) {
        if (!json_is_object(v)) {
            snprintf(err, errlen, "'metadata' must be an object");
            return false;
        }
        char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (strlen(text) > STORE_JSON_MAX) {
            free(text);
            snprintf(err, errlen, "'metadata' is longer than %d bytes as JSON", STORE_JSON_MAX);
            return false;
        }
        free(t->metadata);
        t->metadata = text;
    }
    if ((v = json_object_get(body, "blocked"))) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "'blocked' must be true or false");
            return false;
        }
        t->blocked = json_is_true(v);
    }
    return true;
}

static void reply_team_error(admin_reply *out, store *s, store_result r, const char *ref)
{
    if (r == STORE_NOT_FOUND)
        admin__reply_error(out, 404, "team_not_found", "no team %.256s", ref);
    else if (r == STORE_CONFLICT)
        admin__reply_error(out, 409, "team_exists", "another team has this team_id or team_alias");
    else
        admin__reply_error(out, 500, "store_error", "the store failed: %s", store_error(s));
}

void admin__op_team_create(op_ctx *c)
{
    store_team t = {
        .max_budget = -1, .soft_budget = -1, .rpm_limit = STORE_LIMIT_NONE, .tpm_limit = STORE_LIMIT_NONE};
    char err[512];
    json_t *id = json_object_get(c->body, "team_id");
    if (id && !json_is_null(id)) {
        if (!admin__read_name(id, "team_id", &t.id, err, sizeof err)) {
            admin__reply_error(c->out, 400, "invalid_field", "%s", err);
            return;
        }
    } else { /* LiteLLM makes one when none is given */
        char made[STORE_ID_MAX + 1], id_text[STORE_ID_MAX + 8];
        access_key_new_id(made); /* "key_" + 24 hex: the same randomness under a team's prefix */
        snprintf(id_text, sizeof id_text, "team_%s", made + 4);
        t.id = xstrdup(id_text);
    }
    if (!team_fields(c->body, &t, "team_id", err, sizeof err)) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_team_clear(&t);
        return;
    }
    t.created_at = t.updated_at = c->now;
    if (!t.metadata) t.metadata = xstrdup("{}");
    store_result r = store_team_insert(c->s, &t);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, team_json(c, &t));
    else
        reply_team_error(c->out, c->s, r, t.id);
    store_team_clear(&t);
}

typedef struct team_list_ctx {
    op_ctx *c;
    json_t *data;
} team_list_ctx;

static void on_team_row(const store_team *t, void *ud)
{
    team_list_ctx *l = ud;
    json_array_append_new(l->data, team_json(l->c, t));
}

/* Every team as a JSON list; NULL after answering with the error. */
static json_t *team_list(op_ctx *c)
{
    team_list_ctx l = {c, json_array()};
    store_result r = store_teams_each(c->s, on_team_row, &l);
    if (r == STORE_OK) return l.data;
    json_decref(l.data);
    reply_team_error(c->out, c->s, r, "");
    return NULL;
}

void admin__op_team_list(op_ctx *c)
{
    json_t *data = team_list(c);
    if (data) admin__reply_json(c->out, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static bool load_team(op_ctx *c, const char *ref, store_team *t)
{
    store_result r = store_team_get(c->s, ref, t);
    if (r == STORE_OK) return true;
    reply_team_error(c->out, c->s, r, ref);
    return false;
}

void admin__op_team_show(op_ctx *c)
{
    store_team t;
    if (!load_team(c, c->id, &t)) return;
    admin__reply_json(c->out, 200, team_json(c, &t));
    store_team_clear(&t);
}

static void team_change(op_ctx *c, const char *ref, const char *skip)
{
    store_team t;
    char err[512];
    if (!load_team(c, ref, &t)) return;
    if (!team_fields(c->body, &t, skip, err, sizeof err)) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        store_team_clear(&t);
        return;
    }
    t.updated_at = c->now;
    store_result r = store_team_update(c->s, &t);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, team_json(c, &t));
    else
        reply_team_error(c->out, c->s, r, ref);
    store_team_clear(&t);
}

void admin__op_team_update(op_ctx *c)
{
    team_change(c, c->id, NULL);
}

void admin__op_team_delete(op_ctx *c)
{
    store_team t;
    if (!load_team(c, c->id, &t)) return;
    store_result r = store_team_delete(c->s, t.id);
    if (r == STORE_OK)
        admin__reply_json(c->out, 200, json_pack("{s:s,s:b}", "team_id", t.id, "deleted", 1));
    else
        reply_team_error(c->out, c->s, r, c->id);
    store_team_clear(&t);
}

/* LiteLLM's team_id in a body; NULL after answering. */
static const char *body_team(op_ctx *c)
{
    const char *ref = json_string_value(json_object_get(c->body, "team_id"));
    if (!ref || !*ref) admin__reply_error(c->out, 400, "missing_team_id", "the body needs \"team_id\"");
    return ref && *ref ? ref : NULL;
}

void admin__op_ll_team_update(op_ctx *c)
{
    const char *ref = body_team(c);
    if (ref) team_change(c, ref, "team_id");
}

void admin__op_ll_team_info(op_ctx *c)
{
    char ref[STORE_NAME_MAX + 1];
    if (!admin__query_value(c->req->query, "team_id", ref, sizeof ref) || !*ref) {
        admin__reply_error(c->out, 400, "missing_team_id", "add ?team_id= with the team's id or alias");
        return;
    }
    store_team t;
    if (!load_team(c, ref, &t)) return;
    admin__reply_json(c->out, 200, json_pack("{s:s,s:o}", "team_id", t.id, "team_info", team_json(c, &t)));
    store_team_clear(&t);
}

void admin__op_ll_team_list(op_ctx *c)
{
    json_t *data = team_list(c);
    if (data) admin__reply_json(c->out, 200, data); /* LiteLLM answers with the list itself */
}

/* {"team_ids": [...]}: every one must exist, then all go. */
void admin__op_ll_team_delete(op_ctx *c)
{
    json_t *ids = json_object_get(c->body, "team_ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 1000) {
        admin__reply_error(c->out, 400, "missing_team_ids",
                           "the body needs \"team_ids\": a list of 1 to 1000 team ids");
        return;
    }
    size_t i;
    json_t *ref;
    json_array_foreach(ids, i, ref)
    {
        store_team t;
        if (!json_is_string(ref)) {
            admin__reply_error(c->out, 400, "invalid_field", "\"team_ids\" holds strings");
            return;
        }
        if (!load_team(c, json_string_value(ref), &t)) return;
        store_team_clear(&t);
    }
    json_array_foreach(ids, i, ref)
    {
        store_result r = store_team_delete(c->s, json_string_value(ref));
        if (r != STORE_OK && r != STORE_NOT_FOUND) {
            reply_team_error(c->out, c->s, r, json_string_value(ref));
            return;
        }
    }
    admin__reply_json(c->out, 200, json_pack("{s:O}", "deleted_teams", ids));
}
