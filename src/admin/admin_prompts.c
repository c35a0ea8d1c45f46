/* admin_prompts.c — the admin API's prompt templates and partials (docs/prompts.md):
 *
 *   POST /admin/prompts                 a template's first (or next) version: {"id", "messages",
 *                                       "model", "parameters", "allow_empty", "escape_html",
 *                                       "labels": [...]} — the labels are moved to it
 *   GET  /admin/prompts                 every template, the store's and the files': newest
 *                                       version, labels, source
 *   GET  /admin/prompts/{id}            its versions (bodies included) and labels
 *   POST /admin/prompts/{id}/labels     {"label", "version"} or {"label", "split": [{"version",
 *                                       "weight"}, …]} (an experiment), or {"label", "delete": true}
 *   POST /admin/prompts/{id}/promote    {"label", "version"}: the label to that version alone
 *                                       (an experiment's end)
 *   GET  /admin/prompts/{id}/report     per version: requests, errors, latency p50/p95, tokens, cost
 *                                       (the request log) and mean feedback with its 95 % interval
 *   POST /v1/feedback                   Portkey's {"trace_id", "value", "weight", "metadata"} (and
 *                                       "comment"): a score on a request id, any gateway key
 *   …and the same for /admin/partials ({"id", "text"}).
 *
 * Every text is parsed (mustache_check) before it is stored, so a template that cannot render
 * is refused here with its message and line, never at request time. Versions are immutable;
 * labels move. The config's prompt files (admin_request.prompt_files) are listed beside the
 * store's templates, marked "source": "files" and read-only: a write to an id they define is
 * refused (409), since the request path serves that id from the files alone. Runs on the
 * store's thread like every operation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin_internal.h"
#include "prompts/prompt.h"
#include "prompts/prompt_files.h"
#include "store/request_log.h"
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

/* An id the prompt files define is theirs: the request path never serves the store's versions
 * of it (docs/prompts.md "Precedence"), so a write here would change nothing a client sees. True
 * after answering 409. */
static bool refuse_read_only(op_ctx *c, char kind, const char *id)
{
    if (!prompt_set_has(c->req->prompt_files, kind, id)) return false;
    admin__reply_error(c->out, 409, "prompt_read_only",
                       "%s %.256s is defined by prompt files (prompts.dir) and served from them: change "
                       "its files and reload the config",
                       kind == 'p' ? "partial" : "prompt", id);
    return true;
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
    if (refuse_read_only(c, kind, id)) return;
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

/* One version, in ascending order: row is {version, created_at | file} (taken). */
static void add_version(list_ctx *l, const char *id, long long version, const char *body, json_t *row)
{
    json_t *e = entry(l, id);
    json_object_set_new(e, "latest_version", json_integer(version));
    if (l->bodies) {
        json_t *b = json_loads(body, 0, NULL);
        json_object_update(row, b);
        json_decref(b);
    }
    json_array_append_new(json_object_get(e, "versions"), row);
}

static void add_label(list_ctx *l, const char *id, const char *label, const char *split_text)
{
    json_t *e = entry(l, id);
    json_t *split = json_loads(split_text, 0, NULL);
    json_t *v = json_array_size(split) == 1 ? json_object_get(json_array_get(split, 0), "version") : NULL;
    json_object_set_new(json_object_get(e, "labels"), label,
                        v ? json_incref(v) : json_pack("{s:O}", "split", split));
    json_decref(split);
}

static void on_version(const store_prompt_version *v, void *ud)
{
    add_version(ud, v->id, v->version, v->body,
                json_pack("{s:I,s:o}", "version", (json_int_t)v->version, "created_at",
                          admin__time_json(v->created_at)));
}

static void on_label(const store_prompt_label *lb, void *ud)
{
    add_label(ud, lb->id, lb->label, lb->split);
}

static void on_file_version(const prompt_file_version *v, void *ud)
{
    add_version(ud, v->id, v->version, v->body,
                json_pack("{s:I,s:s}", "version", (json_int_t)v->version, "file", v->file));
}

static void on_file_label(const prompt_file_label *lb, void *ud)
{
    add_label(ud, lb->id, lb->label, lb->split);
}

/* The store's entries and the prompt files' (docs/prompts.md "Precedence": an id the files
 * define is served from them alone). Every entry says its source; the files' are read-only;
 * a store entry the files shadow says so. With an id: the definition the request path serves,
 * the files' first. */
static void list(op_ctx *c, const char *id)
{
    char kind = kind_of(c);
    list_ctx l = {json_object(), id != NULL}, f = {json_object(), id != NULL};
    store_result r = store_prompt_versions_each(c->s, kind, id, on_version, &l);
    if (r == STORE_OK) r = store_prompt_labels_each(c->s, kind, id, on_label, &l);
    if (r != STORE_OK) {
        json_decref(l.by_id);
        json_decref(f.by_id);
        reply_store_error(c, r, id ? id : "");
        return;
    }
    prompt_set_each_version(c->req->prompt_files, kind, id, on_file_version, &f);
    prompt_set_each_label(c->req->prompt_files, kind, id, on_file_label, &f);
    const char *k;
    json_t *e;
    json_object_foreach(l.by_id, k, e)
    {
        json_object_set_new(e, "source", json_string("store"));
        if (json_object_get(f.by_id, k)) json_object_set_new(e, "shadowed", json_true());
    }
    json_object_foreach(f.by_id, k, e)
    {
        json_object_set_new(e, "source", json_string("files"));
        json_object_set_new(e, "read_only", json_true());
    }
    if (id) {
        json_t *served = json_object_get(f.by_id, id), *stored = json_object_get(l.by_id, id);
        if (served && stored)
            json_object_set(served, "shadowed_store_versions", json_object_get(stored, "latest_version"));
        if (!served) served = stored;
        if (!served)
            admin__reply_error(c->out, 404, "prompt_not_found", "no %s %.256s",
                               kind == 'p' ? "partial" : "prompt", id);
        else
            admin__reply_json(c->out, 200, json_incref(served));
    } else {
        json_t *data = json_array();
        for (list_ctx *from = &l;; from = &f) {
            json_object_foreach(from->by_id, k, e)
            {
                json_object_del(e, "versions");
                json_array_append(data, e);
            }
            if (from == &f) break;
        }
        admin__reply_json(c->out, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    }
    json_decref(l.by_id);
    json_decref(f.by_id);
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
    if (refuse_read_only(c, kind, c->id)) return;
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

/* ---- experiments: feedback and the report ---- */

/* POST /v1/feedback: {"trace_id" (or "request_id"), "value" -10..10, "weight" 0..1 (default 1),
 * "metadata" {…}, "comment"} — Portkey's shape, a comment also taken from metadata.comment or
 * metadata.text. Bounded: the request id as a stored name, the comment and the metadata in bytes. */
void admin__op_feedback(op_ctx *c)
{
    json_t *b = c->body;
    const char *rid = json_string_value(json_object_get(b, "trace_id"));
    if (!rid) rid = json_string_value(json_object_get(b, "request_id"));
    if (!rid || !*rid || strlen(rid) > 200) {
        admin__reply_error(c->out, 400, "invalid_field",
                           "\"trace_id\" (the request's x-request-id) must be a string of 1 to 200 bytes");
        return;
    }
    json_t *value = json_object_get(b, "value"), *weight = json_object_get(b, "weight");
    if (!json_is_number(value) || json_number_value(value) < -10 || json_number_value(value) > 10) {
        admin__reply_error(c->out, 400, "invalid_field", "\"value\" must be a number from -10 to 10");
        return;
    }
    if (weight &&
        (!json_is_number(weight) || json_number_value(weight) < 0 || json_number_value(weight) > 1)) {
        admin__reply_error(c->out, 400, "invalid_field", "\"weight\" must be a number from 0 to 1");
        return;
    }
    json_t *metadata = json_object_get(b, "metadata");
    if (metadata && !json_is_object(metadata) && !json_is_null(metadata)) {
        admin__reply_error(c->out, 400, "invalid_field", "\"metadata\" must be an object");
        return;
    }
    const char *comment = json_string_value(json_object_get(b, "comment"));
    if (!comment) comment = json_string_value(json_object_get(metadata, "comment"));
    if (!comment) comment = json_string_value(json_object_get(metadata, "text"));
    if (comment && strlen(comment) > FEEDBACK_COMMENT_MAX) {
        admin__reply_error(c->out, 400, "invalid_field", "the comment is at most %d bytes",
                           FEEDBACK_COMMENT_MAX);
        return;
    }
    char *meta = json_is_object(metadata) ? json_dumps(metadata, JSON_COMPACT) : NULL;
    if (meta && strlen(meta) > FEEDBACK_METADATA_MAX) {
        free(meta);
        admin__reply_error(c->out, 400, "invalid_field", "\"metadata\" is at most %d bytes as JSON",
                           FEEDBACK_METADATA_MAX);
        return;
    }
    int64_t seq = 0;
    store_result r =
        store_feedback_add(c->s, rid, json_number_value(value), weight ? json_number_value(weight) : 1.0,
                           comment, meta, c->req->key_id[0] ? c->req->key_id : NULL, c->now * 1000000, &seq);
    free(meta);
    if (r != STORE_OK) {
        admin__reply_error(c->out, 500, "store_error", "the store failed: %s", store_error(c->s));
        return;
    }
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)seq);
    admin__reply_json(c->out, 200,
                      json_pack("{s:s,s:s,s:[s]}", "status", "success", "message", "feedback recorded",
                                "feedback_ids", id));
}

static json_t *version_entry(json_t *versions, int64_t version)
{
    size_t i;
    json_t *v;
    json_array_foreach(versions, i,
                       v) if (json_integer_value(json_object_get(v, "version")) == version) return v;
    v = json_pack("{s:I,s:i,s:i,s:n,s:{s:n,s:n},s:{s:i,s:i,s:i},s:f,s:{s:i,s:n,s:n}}", "version",
                  (json_int_t)version, "requests", 0, "errors", 0, "error_rate", "latency_ms", "p50", "p95",
                  "tokens", "prompt", 0, "completion", 0, "total", 0, "cost_usd", 0.0, "feedback", "count", 0,
                  "mean", "ci95");
    json_array_append_new(versions, v);
    return v;
}

static void on_version_totals(const char *version, const reqlog_totals *t, void *ud)
{
    json_t *v = version_entry(ud, strtoll(version, NULL, 10));
    json_object_set_new(v, "requests", json_integer(t->requests));
    json_object_set_new(v, "errors", json_integer(t->errors));
    json_object_set_new(v, "error_rate",
                        json_real(t->requests ? (double)t->errors / (double)t->requests : 0));
    json_object_set_new(
        v, "latency_ms",
        json_pack("{s:f,s:f}", "p50", (double)t->p50_us / 1000.0, "p95", (double)t->p95_us / 1000.0));
    json_object_set_new(v, "tokens",
                        json_pack("{s:I,s:I,s:I}", "prompt", (json_int_t)t->prompt_tokens, "completion",
                                  (json_int_t)t->completion_tokens, "total",
                                  (json_int_t)(t->prompt_tokens + t->completion_tokens)));
    json_object_set_new(v, "cost_usd", json_real(t->cost_usd));
}

static void on_version_feedback(int64_t version, const feedback_totals *t, void *ud)
{
    json_t *v = version_entry(ud, version);
    json_object_set_new(v, "feedback",
                        json_pack("{s:I,s:f,s:f,s:o}", "count", (json_int_t)t->count, "weight", t->weight,
                                  "mean", t->mean, "ci95",
                                  t->has_interval ? json_pack("[f,f]", t->ci_low, t->ci_high) : json_null()));
}

static int by_version(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "version")),
               y = json_integer_value(json_object_get(*(json_t *const *)b, "version"));
    return x < y ? -1 : x > y;
}

/* GET /admin/prompts/{id}/report?since=…&until=… (unix seconds; default: all the log holds). */
void admin__op_prompt_report(op_ctx *c)
{
    char since_s[32] = "", until_s[32] = "";
    admin__query_value(c->req->query, "since", since_s, sizeof since_s);
    admin__query_value(c->req->query, "until", until_s, sizeof until_s);
    int64_t since = since_s[0] ? strtoll(since_s, NULL, 10) * 1000000 : 0,
            until = until_s[0] ? strtoll(until_s, NULL, 10) * 1000000 : 0;
    json_t *versions = json_array();
    bool sampled = false, fb_sampled = false;
    store_result r =
        store_reqlog_aggregate_prompt(c->s, c->id, since, until, on_version_totals, versions, &sampled);
    if (r == STORE_OK)
        r = store_feedback_by_version(c->s, c->id, since, until, on_version_feedback, versions, &fb_sampled);
    if (r != STORE_OK) {
        json_decref(versions);
        admin__reply_error(c->out, 500, "store_error", "the store failed: %s", store_error(c->s));
        return;
    }
    size_t n = json_array_size(versions);
    json_t **items = xmalloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(versions, i));
    qsort(items, n, sizeof *items, by_version);
    json_array_clear(versions);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(versions, items[i]);
    free(items);
    admin__reply_json(
        c->out, 200,
        json_pack("{s:s,s:o,s:b}", "id", c->id, "versions", versions, "sampled", sampled || fb_sampled));
}
