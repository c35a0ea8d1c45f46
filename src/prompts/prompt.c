/* prompt.c — a template version rendered into a chat request, and the choice of a version in
 * a label's split (prompt.h).
 *
 * Each message's text (a string, or the text of each content part) is a Mustache template
 * rendered on its own against the same variables; a non-text part (an image) passes as
 * written. The parameters are copied under the request's fields, so a client's own
 * temperature or model wins (Portkey's behaviour for prompt completions). The output of all
 * messages together is bounded by max_output.
 *
 * A split's choice: without a sticky id, a uniform roll against the cumulative weights; with
 * one, a 64-bit FNV-1a hash of the id mapped into [0, 1), so a user keeps their version for as
 * long as the split is unchanged (changing the weights moves only the users whose point now
 * falls in another interval). Rejected: storing assignments (a write per new user on the
 * request path, for what a hash gives). */
#include "prompts/prompt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static mustache_status render_string(const char *name, const char *text, json_t *vars, mustache_options *opt,
                                     json_t **out, mustache_error *err)
{
    buf b;
    buf_init(&b, opt->max_output + 1);
    mustache_options o = *opt;
    o.name = name;
    mustache_status st = mustache_render(text, strlen(text), vars, &o, &b, err);
    if (st == MUSTACHE_OK) {
        *out = json_stringn(b.data ? b.data : "", b.len);
        if (!*out) *out = json_string(""); /* not UTF-8: the variables were; cannot happen */
        opt->max_output -= b.len;
    }
    buf_free(&b);
    return st;
}

mustache_status prompt_render(const char *name, const char *body_text, json_t *variables, json_t *overrides,
                              mustache_partial_fn partial, void *partial_ctx, size_t max_output, json_t **out,
                              mustache_error *err)
{
    *out = NULL;
    json_t *body = json_loads(body_text, 0, NULL);
    mustache_options opt;
    mustache_options_init(&opt);
    opt.partial = partial;
    opt.partial_ctx = partial_ctx;
    opt.max_output = max_output;
    opt.strict = !json_is_true(json_object_get(body, "allow_empty"));
    opt.escape_html = json_is_true(json_object_get(body, "escape_html"));
    json_t *req = json_object();
    json_t *params = json_object_get(body, "parameters");
    if (json_is_object(params)) json_object_update(req, params);
    json_t *model = json_object_get(body, "model");
    if (!json_is_string(model)) model = json_object_get(body, "route"); /* a route's name is a model name */
    if (json_is_string(model)) json_object_set(req, "model", model);
    json_t *messages = json_array();
    mustache_status st = MUSTACHE_OK;
    size_t i;
    json_t *m;
    char where[320];
    json_array_foreach(json_object_get(body, "messages"), i, m)
    {
        if (st != MUSTACHE_OK) break;
        json_t *copy = json_deep_copy(m), *content = json_object_get(m, "content");
        snprintf(where, sizeof where, "%s messages[%zu]", name, i);
        if (json_is_string(content)) {
            json_t *text;
            st = render_string(where, json_string_value(content), variables, &opt, &text, err);
            if (st == MUSTACHE_OK) json_object_set_new(copy, "content", text);
        } else if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(json_object_get(copy, "content"), k, part)
            {
                json_t *t = json_object_get(part, "text"), *text;
                if (!json_is_string(t)) continue;
                if ((st = render_string(where, json_string_value(t), variables, &opt, &text, err)) !=
                    MUSTACHE_OK)
                    break;
                json_object_set_new(part, "text", text);
            }
        }
        json_array_append_new(messages, copy);
    }
    json_object_set_new(req, "messages", messages);
    if (json_is_object(overrides)) json_object_update(req, overrides);
    json_decref(body);
    if (st != MUSTACHE_OK) {
        json_decref(req);
        return st;
    }
    *out = req;
    return MUSTACHE_OK;
}

long long prompt_pick_version(json_t *split, const char *sticky, size_t sticky_len, double roll)
{
    double total = 0;
    size_t i;
    json_t *e;
    json_array_foreach(split, i, e) total += json_number_value(json_object_get(e, "weight"));
    if (total <= 0) return json_integer_value(json_object_get(json_array_get(split, 0), "version"));
    if (sticky && sticky_len) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t k = 0; k < sticky_len; k++) {
            h ^= (unsigned char)sticky[k];
            h *= 1099511628211ULL;
        }
        roll = (double)(h >> 11) / (double)(1ULL << 53);
    }
    double point = roll * total, acc = 0;
    long long last = 0;
    json_array_foreach(split, i, e)
    {
        double w = json_number_value(json_object_get(e, "weight"));
        last = json_integer_value(json_object_get(e, "version"));
        acc += w;
        if (w > 0 && point < acc) return last;
    }
    return last;
}

/* ---- what a version may hold (the admin API and prompt files both check with these) ---- */

bool prompt_valid_ident(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool check_text(const char *text, const char *where, char *err, size_t errlen)
{
    mustache_error merr;
    if (mustache_check(text, strlen(text), where, &merr) == MUSTACHE_OK) return true;
    snprintf(err, errlen, "%s", merr.message);
    return false;
}

json_t *prompt_template_body(json_t *in, const char *id, char *err, size_t errlen)
{
    static const char *const known[] = {"id",          "messages", "model",       "parameters", "allow_empty",
                                        "escape_html", "labels",   "description", "route"};
    const char *name;
    json_t *v;
    json_object_foreach(in, name, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = !strcmp(name, known[i]);
        if (!ok) {
            snprintf(err, errlen,
                     "unknown field '%.64s' (known: id, messages, model, route, parameters, allow_empty, "
                     "escape_html, labels, description)",
                     name);
            return NULL;
        }
    }
    json_t *messages = json_object_get(in, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0 ||
        json_array_size(messages) > PROMPT_MESSAGES_MAX) {
        snprintf(err, errlen, "'messages' must be a list of 1 to %d messages", PROMPT_MESSAGES_MAX);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        char where[300];
        snprintf(where, sizeof where, "%s messages[%zu]", id, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!json_is_object(m) || !role || !*role) {
            snprintf(err, errlen, "messages[%zu] needs a \"role\"", i);
            return NULL;
        }
        if (json_is_string(content)) {
            if (!check_text(json_string_value(content), where, err, errlen)) return NULL;
        } else if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part)
            {
                json_t *text = json_object_get(part, "text");
                if (json_is_string(text) && !check_text(json_string_value(text), where, err, errlen))
                    return NULL;
            }
        } else if (!json_is_null(content) || !json_object_get(m, "tool_calls")) {
            snprintf(err, errlen, "messages[%zu].content must be a string or a list of parts", i);
            return NULL;
        }
    }
    json_t *model = json_object_get(in, "model"), *params = json_object_get(in, "parameters");
    if (model && !json_is_string(model)) {
        snprintf(err, errlen, "'model' must be a string");
        return NULL;
    }
    if (params && !json_is_object(params)) {
        snprintf(err, errlen,
                 "'parameters' must be an object (temperature, max_tokens, tools, response_format, …)");
        return NULL;
    }
    json_t *body = json_deep_copy(in);
    json_object_del(body, "id");
    json_object_del(body, "labels");
    return body;
}

json_t *prompt_partial_body(json_t *in, const char *id, char *err, size_t errlen)
{
    const char *name;
    json_t *v;
    json_object_foreach(in, name, v) if (strcmp(name, "id") && strcmp(name, "text") &&
                                         strcmp(name, "labels") && strcmp(name, "description"))
    {
        snprintf(err, errlen, "unknown field '%.64s' (known: id, text, labels, description)", name);
        return NULL;
    }
    const char *text = json_string_value(json_object_get(in, "text"));
    if (!text) {
        snprintf(err, errlen, "a partial needs \"text\"");
        return NULL;
    }
    if (!check_text(text, id, err, errlen)) return NULL;
    json_t *body = json_deep_copy(in);
    json_object_del(body, "id");
    json_object_del(body, "labels");
    return body;
}
