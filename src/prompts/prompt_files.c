/* prompt_files.c — a directory of prompt files read into an immutable prompt_set
 * (prompt_files.h, docs/prompts.md "Prompt files").
 *
 * A file is one version of one template or partial:
 *   - YAML (*.yaml, *.yml): the document the admin API takes — id, messages, model (or route),
 *     parameters, allow_empty, escape_html, description — plus kind (template | partial; a
 *     partial has text), version (default 1) and labels: a list of names, or a mapping of name
 *     to weight when versions in several files split a label (an experiment kept in git).
 *   - Markdown (*.md): the same fields as YAML front matter between `---` lines; the text after
 *     it is the partial's text, or the template's messages: a line that is only `system:`,
 *     `user:` or `assistant:` starts a message (Prompty's convention); text before any such line
 *     is one user message.
 * id defaults to the file's name without its extension. Every text is checked as the admin API
 * checks it (prompt_template_body): a file that cannot render fails the load, so a reload with a
 * broken prompt is refused and the running config keeps serving.
 *
 * YAML becomes JSON by scalar style: a plain scalar that reads as a number, true, false or null
 * is one; anything quoted or a block scalar is a string. Anchors are expanded by libyaml, so the
 * conversion counts nodes (PROMPT_NODES_MAX) and depth: a file of aliases cannot blow up.
 * Rejected: one file holding every version of a template (a diff of a new version is then a diff
 * of one file, but a label's history and git's per-file history stop matching). */
#include "prompts/prompt_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "prompts/prompt.h"
#include "util/alloc.h"

#define PROMPT_NODES_MAX 100000
#define PROMPT_YAML_DEPTH 64
#define PROMPT_LABELS_PER_FILE 16

typedef struct file_version {
    char kind;
    char *id;
    long long version;
    char *body; /* JSON text */
    char *file;
} file_version;

typedef struct file_label {
    char kind;
    char *id, *label;
    json_t *split; /* [{"version", "weight"}] while loading */
    bool weighted;
    char *text; /* the split as JSON text, once loaded */
    char *file; /* the first file that named it */
} file_label;

struct prompt_set {
    file_version *versions;
    size_t nversions;
    file_label *labels;
    size_t nlabels;
};

/* ---- YAML to JSON ---- */

typedef struct yaml_walk {
    yaml_document_t *doc;
    size_t nodes;
} yaml_walk;

static json_t *scalar_json(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_stringn(s, len);
    if (!strcmp(s, "true")) return json_true();
    if (!strcmp(s, "false")) return json_false();
    if (!strcmp(s, "null") || !strcmp(s, "~") || len == 0) return json_null();
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (!*end && end != s && !errno) return json_integer(i);
    double d = strtod(s, &end);
    if (!*end && end != s && (s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
        return json_real(d);
    return json_stringn(s, len);
}

static json_t *node_json(yaml_walk *w, yaml_node_t *n, int depth)
{
    if (!n || depth > PROMPT_YAML_DEPTH || ++w->nodes > PROMPT_NODES_MAX) return NULL;
    if (n->type == YAML_SCALAR_NODE) return scalar_json(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            json_t *v = node_json(w, yaml_document_get_node(w->doc, *it), depth + 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    if (n->type == YAML_MAPPING_NODE) {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
            json_t *v = k && k->type == YAML_SCALAR_NODE
                            ? node_json(w, yaml_document_get_node(w->doc, p->value), depth + 1)
                            : NULL;
            if (!v) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, (const char *)k->data.scalar.value, v);
        }
        return o;
    }
    return NULL;
}

/* The YAML text as a JSON object, or NULL with err ("line N: why"). */
static json_t *yaml_object(const char *text, size_t len, int first_line, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "line %d: %s", (int)parser.problem_mark.line + first_line,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_walk w = {.doc = &doc};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *out = root && root->type == YAML_MAPPING_NODE ? node_json(&w, root, 0) : NULL;
    if (!out)
        snprintf(err, errlen, "line %d: %s", first_line,
                 !root || root->type != YAML_MAPPING_NODE
                     ? "a prompt file is a mapping (id, messages, model, …)"
                     : "too deep or too many nodes (aliases expanded)");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}

/* ---- Markdown ---- */

static void add_message(json_t *messages, const char *role, const char *start, const char *end)
{
    while (start < end && (*start == '\n' || *start == '\r'))
        start++;
    while (end > start && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    if (end == start && !strcmp(role, "user") && json_array_size(messages) == 0) return;
    json_array_append_new(messages,
                          json_pack("{s:s,s:s%}", "role", role, "content", start, (size_t)(end - start)));
}

/* The messages of a Markdown body: `system:` / `user:` / `assistant:` lines start one. */
static json_t *markdown_messages(const char *text, size_t len)
{
    static const char *const roles[] = {"system", "user", "assistant"};
    json_t *messages = json_array();
    const char *role = "user", *start = text, *end = text + len, *line = text;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl : end, *le = stop;
        if (le > line && le[-1] == '\r') le--;
        for (size_t r = 0; r < 3; r++) {
            size_t n = strlen(roles[r]);
            if ((size_t)(le - line) == n + 1 && !memcmp(line, roles[r], n) && line[n] == ':') {
                add_message(messages, role, start, line);
                role = roles[r];
                start = nl ? nl + 1 : end;
            }
        }
        line = nl ? nl + 1 : end;
    }
    add_message(messages, role, start, end);
    return messages;
}

/* ---- one file ---- */

static bool read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return false;
    }
    char *b = xmalloc(PROMPT_FILE_MAX + 2);
    size_t n = fread(b, 1, PROMPT_FILE_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > PROMPT_FILE_MAX) {
        free(b);
        snprintf(err, errlen, bad ? "cannot read" : "larger than %d bytes", PROMPT_FILE_MAX);
        return false;
    }
    b[n] = '\0';
    *text = b;
    *len = n;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && !strcmp(s + a - b, suffix);
}

static bool add_label(prompt_set *set, char kind, const char *id, const char *label, long long version,
                      json_t *weight, const char *file, char *err, size_t errlen)
{
    if (!prompt_valid_ident(label, PROMPT_LABEL_MAX)) {
        snprintf(err, errlen, "label '%.80s': 1 to %d letters, digits, '-', '_' or '.'", label,
                 PROMPT_LABEL_MAX);
        return false;
    }
    if (weight && (!json_is_number(weight) || json_number_value(weight) < 0)) {
        snprintf(err, errlen, "label '%s': its weight must be a number >= 0", label);
        return false;
    }
    file_label *l = NULL;
    for (size_t i = 0; i < set->nlabels && !l; i++)
        if (set->labels[i].kind == kind && !strcmp(set->labels[i].id, id) &&
            !strcmp(set->labels[i].label, label))
            l = &set->labels[i];
    if (!l) {
        set->labels = xrealloc(set->labels, (set->nlabels + 1) * sizeof *set->labels);
        l = &set->labels[set->nlabels++];
        memset(l, 0, sizeof *l);
        l->kind = kind;
        l->id = xstrdup(id);
        l->label = xstrdup(label);
        l->split = json_array();
        l->weighted = true;
        l->file = xstrdup(file);
    }
    l->weighted = l->weighted && weight;
    if (json_array_size(l->split) && !l->weighted) {
        snprintf(err, errlen,
                 "label '%s' of %s also names a version in %s: give both weights (labels: {%s: 50})", label,
                 id, l->file, label);
        return false;
    }
    json_array_append_new(l->split, json_pack("{s:I,s:f}", "version", (json_int_t)version, "weight",
                                              weight ? json_number_value(weight) : 100.0));
    return true;
}

static bool load_file(prompt_set *set, const char *path, const char *name, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    json_t *doc = NULL, *body = NULL;
    bool ok = false;
    if (!read_file(path, &text, &len, err, errlen)) goto out;
    const char *rest = NULL;
    size_t rest_len = 0;
    if (ends_with(name, ".md")) {
        size_t skip = !strncmp(text, "---\n", 4) ? 4 : !strncmp(text, "---\r\n", 5) ? 5 : 0;
        const char *close = skip ? strstr(text + skip - 1, "\n---") : NULL;
        if (!close) {
            snprintf(err, errlen,
                     "line 1: a Markdown prompt starts with YAML front matter between --- lines");
            goto out;
        }
        doc = yaml_object(text + skip, (size_t)(close + 1 - text - skip), 2, err, errlen);
        rest = strchr(close + 1, '\n');
        rest = rest ? rest + 1 : text + len;
        rest_len = (size_t)(text + len - rest);
    } else {
        doc = yaml_object(text, len, 1, err, errlen);
    }
    if (!doc) goto out;
    const char *kind_name = json_string_value(json_object_get(doc, "kind"));
    if (json_object_get(doc, "kind") &&
        (!kind_name || (strcmp(kind_name, "template") && strcmp(kind_name, "partial")))) {
        snprintf(err, errlen, "kind must be template or partial");
        goto out;
    }
    char kind = kind_name && !strcmp(kind_name, "partial") ? 'p' : 't';
    json_t *version = json_object_get(doc, "version");
    if (version && (!json_is_integer(version) || json_integer_value(version) < 1)) {
        snprintf(err, errlen, "version must be a whole number from 1");
        goto out;
    }
    long long v = version ? json_integer_value(version) : 1;
    char id[512];
    const char *given = json_string_value(json_object_get(doc, "id"));
    if (given) {
        snprintf(id, sizeof id, "%s", given);
    } else {
        const char *dot = strrchr(name, '.');
        snprintf(id, sizeof id, "%.*s", (int)(dot - name), name);
    }
    if (!prompt_valid_ident(id, 200)) {
        snprintf(err, errlen, "id '%.80s': 1 to 200 letters, digits, '-', '_' or '.' (set id: in the file)",
                 id);
        goto out;
    }
    if (rest && rest_len && strspn(rest, " \t\r\n") < rest_len) {
        if (kind == 'p' && !json_object_get(doc, "text"))
            json_object_set_new(doc, "text", json_stringn(rest, rest_len));
        else if (kind == 't' && !json_object_get(doc, "messages"))
            json_object_set_new(doc, "messages", markdown_messages(rest, rest_len));
        else {
            snprintf(err, errlen, "the Markdown body and %s in the front matter: give one",
                     kind == 'p' ? "text" : "messages");
            goto out;
        }
    }
    if (kind == 't' && !json_object_get(doc, "model") && json_is_string(json_object_get(doc, "route")))
        json_object_set(doc, "model", json_object_get(doc, "route"));
    json_t *labels = json_incref(json_object_get(doc, "labels"));
    json_object_del(doc, "kind");
    json_object_del(doc, "version");
    body =
        kind == 'p' ? prompt_partial_body(doc, id, err, errlen) : prompt_template_body(doc, id, err, errlen);
    if (!body) {
        json_decref(labels);
        goto out;
    }
    for (size_t i = 0; i < set->nversions; i++)
        if (set->versions[i].kind == kind && !strcmp(set->versions[i].id, id) &&
            set->versions[i].version == v) {
            snprintf(err, errlen, "%s %.200s version %lld is also defined in %.200s",
                     kind == 'p' ? "partial" : "template", id, v, set->versions[i].file);
            json_decref(labels);
            goto out;
        }
    ok = true;
    if (json_is_array(labels) && json_array_size(labels) <= PROMPT_LABELS_PER_FILE) {
        size_t i;
        json_t *l;
        json_array_foreach(labels, i, l) if (ok) ok =
            json_is_string(l) && add_label(set, kind, id, json_string_value(l), v, NULL, name, err, errlen);
        if (!ok && !err[0]) snprintf(err, errlen, "labels: names");
    } else if (json_is_object(labels) && json_object_size(labels) <= PROMPT_LABELS_PER_FILE) {
        const char *l;
        json_t *w;
        json_object_foreach(labels, l, w) if (ok) ok = add_label(set, kind, id, l, v, w, name, err, errlen);
    } else if (labels) {
        snprintf(err, errlen, "labels must be a list of names or a mapping of name to weight (at most %d)",
                 PROMPT_LABELS_PER_FILE);
        ok = false;
    }
    json_decref(labels);
    if (!ok) goto out;
    set->versions = xrealloc(set->versions, (set->nversions + 1) * sizeof *set->versions);
    file_version *fv = &set->versions[set->nversions++];
    fv->kind = kind;
    fv->id = xstrdup(id);
    fv->version = v;
    fv->body = json_dumps(body, JSON_COMPACT);
    fv->file = xstrdup(name);
out:
    json_decref(body);
    json_decref(doc);
    free(text);
    return ok;
}

/* By kind, id, then version (labels: then label). */
static int compare_versions(const void *a, const void *b)
{
    const file_version *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int compare_labels(const void *a, const void *b)
{
    const file_label *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->label, y->label);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

prompt_set *prompt_files_load(const char *dir, size_t max_files, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open the directory: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0;
    bool too_many = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' ||
            !(ends_with(e->d_name, ".yaml") || ends_with(e->d_name, ".yml") || ends_with(e->d_name, ".md")))
            continue;
        if (n == max_files) {
            too_many = true;
            break;
        }
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    prompt_set *set = xcalloc(1, sizeof *set);
    bool ok = !too_many;
    if (too_many) snprintf(err, errlen, "%s: more than %zu prompt files (prompts.max_files)", dir, max_files);
    if (n) qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n && ok; i++) {
        char path[4096], why[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!load_file(set, path, names[i], why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", path, why);
            ok = false;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    for (size_t i = 0; i < set->nlabels; i++) {
        set->labels[i].text = json_dumps(set->labels[i].split, JSON_COMPACT);
        json_decref(set->labels[i].split);
        set->labels[i].split = NULL;
    }
    /* in the order the listing functions promise */
    if (set->nversions) qsort(set->versions, set->nversions, sizeof *set->versions, compare_versions);
    if (set->nlabels) qsort(set->labels, set->nlabels, sizeof *set->labels, compare_labels);
    if (!ok) {
        prompt_set_free(set);
        return NULL;
    }
    return set;
}

void prompt_set_free(prompt_set *set)
{
    if (!set) return;
    for (size_t i = 0; i < set->nversions; i++) {
        free(set->versions[i].id);
        free(set->versions[i].body);
        free(set->versions[i].file);
    }
    for (size_t i = 0; i < set->nlabels; i++) {
        free(set->labels[i].id);
        free(set->labels[i].label);
        free(set->labels[i].file);
        free(set->labels[i].text);
        json_decref(set->labels[i].split);
    }
    free(set->versions);
    free(set->labels);
    free(set);
}

bool prompt_set_has(const prompt_set *set, char kind, const char *id)
{
    for (size_t i = 0; set && i < set->nversions; i++)
        if (set->versions[i].kind == kind && !strcmp(set->versions[i].id, id)) return true;
    return false;
}

const char *prompt_set_version(const prompt_set *set, char kind, const char *id, long long version,
                               long long *got)
{
    const file_version *best = NULL;
    for (size_t i = 0; set && i < set->nversions; i++) {
        const file_version *v = &set->versions[i];
        if (v->kind != kind || strcmp(v->id, id)) continue;
        if (version ? v->version == version : (!best || v->version > best->version)) best = v;
    }
    if (!best) return NULL;
    *got = best->version;
    return best->body;
}

const char *prompt_set_label(const prompt_set *set, char kind, const char *id, const char *label)
{
    for (size_t i = 0; set && i < set->nlabels; i++)
        if (set->labels[i].kind == kind && !strcmp(set->labels[i].id, id) &&
            !strcmp(set->labels[i].label, label))
            return set->labels[i].text;
    return NULL;
}

size_t prompt_set_count(const prompt_set *set, size_t *labels)
{
    if (labels) *labels = set ? set->nlabels : 0;
    return set ? set->nversions : 0;
}

void prompt_set_each_version(const prompt_set *set, char kind, const char *id,
                             void (*fn)(const prompt_file_version *v, void *ud), void *ud)
{
    for (size_t i = 0; set && i < set->nversions; i++) {
        const file_version *v = &set->versions[i];
        if ((kind && v->kind != kind) || (id && strcmp(v->id, id))) continue;
        prompt_file_version out = {
            .kind = v->kind, .id = v->id, .version = v->version, .body = v->body, .file = v->file};
        fn(&out, ud);
    }
}

void prompt_set_each_label(const prompt_set *set, char kind, const char *id,
                           void (*fn)(const prompt_file_label *l, void *ud), void *ud)
{
    for (size_t i = 0; set && i < set->nlabels; i++) {
        const file_label *l = &set->labels[i];
        if ((kind && l->kind != kind) || (id && strcmp(l->id, id))) continue;
        prompt_file_label out = {.kind = l->kind, .id = l->id, .label = l->label, .split = l->text};
        fn(&out, ud);
    }
}
