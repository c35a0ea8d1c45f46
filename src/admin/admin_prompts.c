/* admin_prompts.c — the admin API's prompt templates and partials (docs/prompts.md):
 *
 *   POST /admin/prompts                 a template's first (or next) version: {"id", "messages",
 *                                       "model", "parameters", "allow_empty", "escape_html",
 *                                       "labels": [...]} — the labels are moved to it
 *   GET  /admin/prompts                 every template: newest version, labels
 *   GET  /admin/prompts/{id}            its versions (bodies included) and labels
 *   POST /admin/prompts/{id}/labels     {"label", "version"} or {"label", "split": [{"version",
 *                                       "weight"}, …]} (an experiment), or {"label", "delete": true}
 *   POST /admin/prompts/{id}/promote    {"label", "version"}: the label to that version alone
 *                                       (an experiment's end)
 *   …and the same for /admin/partials ({"id", "text"}).
 *
 * Every text is parsed (mustache_check) before it is stored, so a template that cannot render
 * is refused here with its message and line, never at request time. Versions are immutable;
 * labels move. Runs on the store's thread like every operation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin_internal.h"
#include "prompts/prompt.h"
#include "util/alloc.h"

#define PROMPT_SPLIT_MAX 16

static char kind_of(op_ctx *c)
{
    return !strncmp(c->req->path, "/admin/partials", 15) ? 'p' : 't';
}

static void reply_store_error(op_ctx *c, store_result r, const char *what)
{
    if (r == STORE_NOT_FOUND)
        admin__reply_error(c->out, 404, "prompt_not_found", "%s", store_error(c->s));
    else if (r == STORE_CONFLICT)
        admin__reply_error(c->out, 409, "version_conflict",
                           "another version of %.256s was written at once: retry", what);
    else
        admin__reply_error(c->out, 500, "store_error", "the store failed: %s", store_error(c->s));
}

static char *split_single(int64_t version)
{
    json_t *j = json_pack("[{s:I,s:i}]", "version", (json_int_t)version, "weight", 100);
    char *t = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return t;
}

/* POST /admin/prompts and /admin/partials: a new version; its labels moved to it. */
void admin__op_prompt_create(op_ctx *c)
{
    char kind = kind_of(c), err[512];
    const char *id = json_string_value(json_object_get(c->body, "id"));
    if (!prompt_valid_ident(id, STORE_NAME_MAX)) {
        admin__reply_error(c->out, 400, "invalid_field",
                           "'id' must be 1 to %d characters of letters, digits, '-', '_' and '.'",
                           STORE_NAME_MAX);
        return;
    }
    json_t *labels = json_object_get(c->body, "labels");
    if (labels && (!json_is_array(labels) || json_array_size(labels) > 16)) {
        admin__reply_error(c->out, 400, "invalid_field", "'labels' must be a list of at most 16 names");
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach(labels, i, l) if (!prompt_valid_ident(json_string_value(l), PROMPT_LABEL_MAX))
    {
        admin__reply_error(c->out, 400, "invalid_field",
                           "a label is 1 to %d letters, digits, '-', '_' or '.'", PROMPT_LABEL_MAX);
        return;
    }
    json_t *body = kind == 'p' ? prompt_partial_body(c->body, id, err, sizeof err)
                               : prompt_template_body(c->body, id, err, sizeof err);
    if (!body) {
        admin__reply_error(c->out, 400, "invalid_template", "%s", err);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (strlen(text) > STORE_PROMPT_BODY_MAX) {
        free(text);
        admin__reply_error(c->out, 413, "template_too_large", "a version is at most %d bytes as JSON",
                           STORE_PROMPT_BODY_MAX);
        return;
    }
    int64_t version = 0;
    store_result r = store_prompt_add(c->s, kind, id, text, c->now, &version);
    free(text);
    if (r != STORE_OK) {
        reply_store_error(c, r, id);
        return;
    }
    char *split = split_single(version);
    json_array_foreach(labels, i, l)
    {
        r = store_prompt_label_set(c->s, kind, id, json_string_value(l), split, c->now);
        if (r != STORE_OK) break;
    }
    free(split);
    if (r != STORE_OK) {
        reply_store_error(c, r, id);
        return;
    }
    admin__reply_json(c->out, 200,
                      json_pack("{s:s,s:s,s:I,s:o}", "object", kind == 'p' ? "partial" : "prompt", "id", id,
                                "version", (json_int_t)version, "labels",
                                labels ? json_incref(labels) : json_array()));
}

typedef struct list_ctx {
    json_t *by_id; /* id → {id, versions | latest_version, labels} */
    bool bodies;
} list_ctx;

static json_t *entry(list_ctx *l, const char *id)
{
    json_t *e = json_object_get(l->by_id, id);
    if (!e) {
        e = json_pack("{s:s,s:I,s:[],s:{}}", "id", id, "latest_version", (json_int_t)0, "versions", "labels");
        json_object_set_new(l->by_id, id, e);
    }
    return e;
}

static void on_version(const store_prompt_version *v, void *ud)
{
    list_ctx *l = ud;
    json_t *e = entry(l, v->id);
    json_object_set_new(e, "latest_version", json_integer(v->version));
    json_t *row = json_pack("{s:I,s:o}", "version", (json_int_t)v->version, "created_at",
                            admin__time_json(v->created_at));
    if (l->bodies) {
        json_t *body = json_loads(v->body, 0, NULL);
        json_object_update(row, body);
        json_decref(body);
    }
    json_array_append_new(json_object_get(e, "versions"), row);
}

static void on_label(const store_prompt_label *lb, void *ud)
{
    list_ctx *l = ud;
    json_t *e = entry(l, lb->id);
    json_t *split = json_loads(lb->split, 0, NULL);
    json_t *v = json_array_size(split) == 1 ? json_object_get(json_array_get(split, 0), "version") : NULL;
    json_object_set_new(json_object_get(e, "labels"), lb->label,
                        v ? json_incref(v) : json_pack("{s:O}", "split", split));
    json_decref(split);
}

static void list(op_ctx *c, const char *id)
{
    char kind = kind_of(c);
    list_ctx l = {json_object(), id != NULL};
    store_result r = store_prompt_versions_each(c->s, kind, id, on_version, &l);
    if (r == STORE_OK) r = store_prompt_labels_each(c->s, kind, id, on_label, &l);
    if (r != STORE_OK) {
        json_decref(l.by_id);
        reply_store_error(c, r, id ? id : "");
        return;
    }
    if (id) {
        json_t *e = json_object_get(l.by_id, id);
        if (!e)
            admin__reply_error(c->out, 404, "prompt_not_found", "no %s %.256s",
                               kind == 'p' ? "partial" : "prompt", id);
        else
            admin__reply_json(c->out, 200, json_incref(e));
    } else {
        json_t *data = json_array();
        const char *k;
        json_t *e;
        json_object_foreach(l.by_id, k, e)
        {
            json_object_del(e, "versions");
            json_array_append(data, e);
        }
        admin__reply_json(c->out, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    }
    json_decref(l.by_id);
}

void admin__op_prompt_list(op_ctx *c)
{
    list(c, NULL);
}

void admin__op_prompt_show(op_ctx *c)
{
    list(c, c->id);
}

/* {"version": N} or {"split": [{"version", "weight"}, …]} as the stored split; NULL with err. */
static char *read_split(json_t *body, char *err, size_t errlen)
{
    json_t *version = json_object_get(body, "version"), *split = json_object_get(body, "split");
    if (json_is_integer(version) && json_integer_value(version) > 0 && !split)
        return split_single(json_integer_value(version));
    if (!json_is_array(split) || json_array_size(split) == 0 || json_array_size(split) > PROMPT_SPLIT_MAX ||
        version) {
        snprintf(err, errlen,
                 "give \"version\": N, or \"split\": a list of 1 to %d {\"version\", \"weight\"}",
                 PROMPT_SPLIT_MAX);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    double total = 0;
    json_array_foreach(split, i, e)
    {
        json_t *v = json_object_get(e, "version"), *w = json_object_get(e, "weight");
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || !json_is_number(w) ||
            json_number_value(w) < 0 || json_number_value(w) > 1e6) {
            json_decref(out);
            snprintf(err, errlen,
                     "split[%zu] needs \"version\" (a version number) and \"weight\" (0 to 1000000)", i);
            return NULL;
        }
        total += json_number_value(w);
        json_array_append_new(out, json_pack("{s:O,s:f}", "version", v, "weight", json_number_value(w)));
    }
    if (total <= 0) {
        json_decref(out);
        snprintf(err, errlen, "the split's weights add up to 0");
        return NULL;
    }
    char *t = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return t;
}

static void set_label(op_ctx *c, bool promote)
{
    char kind = kind_of(c), err[512];
    const char *label = json_string_value(json_object_get(c->body, "label"));
    if (!prompt_valid_ident(label, PROMPT_LABEL_MAX)) {
        admin__reply_error(c->out, 400, "invalid_field",
                           "\"label\" is 1 to %d letters, digits, '-', '_' or '.'", PROMPT_LABEL_MAX);
        return;
    }
    if (!promote && json_is_true(json_object_get(c->body, "delete"))) {
        store_result r = store_prompt_label_delete(c->s, kind, c->id, label);
        if (r == STORE_NOT_FOUND)
            admin__reply_error(c->out, 404, "label_not_found", "%.256s has no label %s", c->id, label);
        else if (r != STORE_OK)
            reply_store_error(c, r, c->id);
        else
            admin__reply_json(c->out, 200,
                              json_pack("{s:s,s:s,s:b}", "id", c->id, "label", label, "deleted", 1));
        return;
    }
    if (promote && !json_is_integer(json_object_get(c->body, "version"))) {
        admin__reply_error(c->out, 400, "invalid_field", "promote needs \"version\": the version that won");
        return;
    }
    char *split = read_split(c->body, err, sizeof err);
    if (!split) {
        admin__reply_error(c->out, 400, "invalid_field", "%s", err);
        return;
    }
    store_result r = store_prompt_label_set(c->s, kind, c->id, label, split, c->now);
    if (r == STORE_OK) {
        json_t *j =
            json_pack("{s:s,s:s,s:o}", "id", c->id, "label", label, "split", json_loads(split, 0, NULL));
        admin__reply_json(c->out, 200, j);
    } else {
        reply_store_error(c, r, c->id);
    }
    free(split);
}

void admin__op_prompt_label(op_ctx *c)
{
    set_label(c, false);
}

void admin__op_prompt_promote(op_ctx *c)
{
    set_label(c, true);
}
