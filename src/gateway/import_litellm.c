/* import_litellm.c — a LiteLLM proxy config.yaml as aigw's YAML, for people moving over.
 *
 * What maps: `model_list` entries — `model_name` (the public name), `litellm_params.model`
 * (LiteLLM's `provider/model`: the provider becomes a provider `type:` through the table
 * below, the rest the upstream model), `api_key`, `api_base`, `api_version`. A value written
 * `os.environ/NAME` becomes `${NAME}`, which aigw expands when it loads. Entries that share
 * type, base URL, key and API version share one provider; every entry becomes a `models:`
 * alias, in the file's order, so several entries of one model_name are one public name served
 * by several providers, tried in that order (aigw's fallback for a name several providers
 * serve). A wildcard entry (`openai/` then a star) becomes a provider with no `models:` list, which serves
 * any `openai/MODEL` name. Providers that only serve aliases get `models: []`: nothing is
 * reachable that LiteLLM did not serve.
 *
 * What does not: a provider with no aigw preset, or a model with no provider and no
 * well-known prefix, is an error naming its line (a silent drop would change what the gateway
 * serves). Settings aigw has no place for here (rpm, timeouts, router_settings,
 * litellm_settings, general_settings, …) are listed as comments at the top of the output.
 *
 * The output is written to a memory stream and copied out only when the whole file mapped. It
 * uses double-quoted scalars throughout, so no value can change the YAML's structure.
 *
 * Rejected: emitting through libyaml's emitter (three times the code for the same flat
 * output); mapping LiteLLM's router_settings onto aigw's `routing:` (the meanings differ —
 * LiteLLM's num_retries counts across deployments, aigw's per target). */
#include "gateway/import_litellm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/alloc.h"

/* LiteLLM's provider prefix → aigw's `type:`. base_suffix: what LiteLLM's api_base leaves out
 * that aigw's base_url includes (Ollama: LiteLLM calls its native API at the root). */
typedef struct litellm_provider {
    const char *litellm, *type, *base_suffix;
} litellm_provider;

static const litellm_provider providers[] = {
    {"openai", "openai", NULL},          {"azure", "azure", NULL},
    {"anthropic", "anthropic", NULL},    {"gemini", "gemini", NULL},
    {"mistral", "mistral", NULL},        {"groq", "groq", NULL},
    {"together_ai", "together", NULL},   {"openrouter", "openrouter", NULL},
    {"cerebras", "cerebras", NULL},      {"sambanova", "sambanova", NULL},
    {"github", "github-models", NULL},   {"huggingface", "huggingface", NULL},
    {"deepseek", "deepseek", NULL},      {"xai", "xai", NULL},
    {"fireworks_ai", "fireworks", NULL}, {"ollama", "ollama", "/v1"},
    {"ollama_chat", "ollama", "/v1"},    {"hosted_vllm", "vllm", NULL},
};

/* A model written without a provider: LiteLLM knows these families' providers by name. */
static const struct {
    const char *prefix, *litellm;
} bare_models[] = {
    {"gpt-", "openai"}, {"chatgpt-", "openai"},        {"o1", "openai"},         {"o3", "openai"},
    {"o4", "openai"},   {"text-embedding-", "openai"}, {"claude-", "anthropic"},
};

#define IMPORT_MAX_ENTRIES 4096 /* model_list entries; a longer list is refused */

typedef struct import_provider {
    const char *type;
    char *base_url, *api_key, *api_version; /* as aigw writes them (${NAME}), or NULL */
    bool any_model;
    int index_of_type; /* 1 for the first provider of its type: its name is the type's */
} import_provider;

typedef struct import_model {
    char *name, *model;
    size_t provider;
} import_model;

typedef struct importer {
    const char *path;
    yaml_document_t doc;
    char *err;
    size_t errlen;
    FILE *notes; /* the comments about what was left out */
    import_provider providers[IMPORT_MAX_ENTRIES];
    size_t nproviders;
    import_model models[IMPORT_MAX_ENTRIES];
    size_t nmodels;
} importer;

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static bool fail(importer *im, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(importer *im, const yaml_node_t *at, const char *fmt, ...)
{
    int n = snprintf(im->err, im->errlen, "%s:%d: ", im->path, at ? line_of(at) : 1);
    if (n < 0 || (size_t)n >= im->errlen) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->err + n, im->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A value of a mapping by key; NULL when absent. */
static yaml_node_t *map_get(importer *im, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(&im->doc, p->key));
        if (k && !strcmp(k, key)) return yaml_document_get_node(&im->doc, p->value);
    }
    return NULL;
}

/* A string setting: `os.environ/NAME` becomes `${NAME}`; NULL when absent or empty. */
static bool value_of(importer *im, yaml_node_t *map, const char *key, char **out)
{
    *out = NULL;
    yaml_node_t *v = map_get(im, map, key);
    if (!v) return true;
    const char *s = scalar(v);
    if (!s) return fail(im, v, "'%s' must be a string", key);
    if (!*s) return true;
    static const char env[] = "os.environ/";
    if (!strncmp(s, env, sizeof env - 1)) {
        const char *name = s + sizeof env - 1;
        if (!*name || name[strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")])
            return fail(im, v, "'%s': '%s' is not an environment variable's name", key, name);
        size_t len = strlen(name);
        *out = xmalloc(len + 4);
        memcpy(*out, "${", 2);
        memcpy(*out + 2, name, len);
        memcpy(*out + 2 + len, "}", 2);
    } else {
        *out = xstrdup(s);
    }
    return true;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The provider for these settings, shared with an earlier entry that has the same. */
static size_t provider_for(importer *im, const char *type, char *base_url, char *api_key, char *api_version)
{
    int of_type = 1;
    for (size_t i = 0; i < im->nproviders; i++) {
        import_provider *p = &im->providers[i];
        if (strcmp(p->type, type)) continue;
        if (same(p->base_url, base_url) && same(p->api_key, api_key) && same(p->api_version, api_version)) {
            free(base_url);
            free(api_key);
            free(api_version);
            return i;
        }
        of_type++;
    }
    import_provider *p = &im->providers[im->nproviders];
    p->type = type;
    p->base_url = base_url;
    p->api_key = api_key;
    p->api_version = api_version;
    p->index_of_type = of_type;
    return im->nproviders++;
}

static const litellm_provider *provider_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strlen(providers[i].litellm) == len && !memcmp(providers[i].litellm, name, len))
            return &providers[i];
    return NULL;
}

static void known_providers(char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof providers / sizeof providers[0] && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%s", i ? ", " : "", providers[i].litellm);
}

static const char *const mapped_params[] = {"model", "api_key", "api_base", "api_version"};

static bool import_entry(importer *im, yaml_node_t *entry)
{
    if (entry->type != YAML_MAPPING_NODE)
        return fail(im, entry, "a model_list entry must be a mapping of model_name and litellm_params");
    yaml_node_t *name_node = map_get(im, entry, "model_name");
    const char *name = scalar(name_node);
    if (!name || !*name) return fail(im, entry, "a model_list entry needs a 'model_name'");
    yaml_node_t *params = map_get(im, entry, "litellm_params");
    if (!params || params->type != YAML_MAPPING_NODE)
        return fail(im, params ? params : entry, "model '%s' needs 'litellm_params' with a 'model'", name);
    yaml_node_t *model_node = map_get(im, params, "model");
    const char *model = scalar(model_node);
    if (!model || !*model)
        return fail(im, model_node ? model_node : params, "model '%s': litellm_params needs a 'model'", name);

    /* provider/model; a bare name of a well-known family keeps the provider LiteLLM infers. */
    const char *slash = strchr(model, '/');
    const litellm_provider *lp = NULL;
    const char *upstream = model;
    if (slash) {
        lp = provider_find(model, (size_t)(slash - model));
        if (!lp) {
            char known[512];
            known_providers(known, sizeof known);
            return fail(im, model_node,
                        "'%s': LiteLLM provider '%.*s' has no aigw equivalent (aigw imports: %s)", model,
                        (int)(slash - model), model, known);
        }
        upstream = slash + 1;
    } else {
        for (size_t i = 0; i < sizeof bare_models / sizeof bare_models[0] && !lp; i++)
            if (!strncmp(model, bare_models[i].prefix, strlen(bare_models[i].prefix)))
                lp = provider_find(bare_models[i].litellm, strlen(bare_models[i].litellm));
        if (!lp)
            return fail(im, model_node, "'%s' names no provider: write it as provider/model (e.g. openai/%s)",
                        model, model);
    }
    if (!*upstream) return fail(im, model_node, "'%s' names no model after the provider", model);

    char *base_url, *api_key, *api_version;
    if (!value_of(im, params, "api_base", &base_url)) return false;
    if (!value_of(im, params, "api_key", &api_key) || !value_of(im, params, "api_version", &api_version)) {
        free(base_url);
        free(api_key);
        return false;
    }
    if (base_url && lp->base_suffix) {
        size_t blen = strlen(base_url), slen = strlen(lp->base_suffix);
        while (blen && base_url[blen - 1] == '/')
            base_url[--blen] = '\0';
        if (blen < slen || strcmp(base_url + blen - slen, lp->base_suffix)) {
            base_url = xrealloc(base_url, blen + slen + 1);
            memcpy(base_url + blen, lp->base_suffix, slen + 1);
        }
    }
    if (!strcmp(lp->type, "azure") && !base_url) {
        free(api_key);
        free(api_version);
        return fail(im, params, "model '%s': an azure deployment needs 'api_base' (its resource URL)", name);
    }
    if (im->nmodels == IMPORT_MAX_ENTRIES) {
        free(base_url);
        free(api_key);
        free(api_version);
        return fail(im, entry, "more than %d model_list entries", IMPORT_MAX_ENTRIES);
    }
    size_t p = provider_for(im, lp->type, base_url, api_key, api_version);

    for (yaml_node_pair_t *pr = params->data.mapping.pairs.start; pr < params->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&im->doc, pr->key);
        const char *key = scalar(k);
        bool mapped = false;
        for (size_t i = 0; key && i < sizeof mapped_params / sizeof mapped_params[0]; i++)
            mapped |= !strcmp(key, mapped_params[i]);
        if (!mapped)
            fprintf(im->notes, "#   line %d: litellm_params.%s of '%s'\n", line_of(k), key ? key : "?", name);
    }
    for (yaml_node_pair_t *pr = entry->data.mapping.pairs.start; pr < entry->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&im->doc, pr->key);
        const char *key = scalar(k);
        if (!key || (strcmp(key, "model_name") && strcmp(key, "litellm_params")))
            fprintf(im->notes, "#   line %d: %s of '%s'\n", line_of(k), key ? key : "?", name);
    }

    if (!strcmp(upstream, "*")) { /* a wildcard: any model of this provider, as type/MODEL */
        im->providers[p].any_model = true;
        fprintf(im->notes, "#   line %d: '%s' (%s): served as %s/MODEL names\n", line_of(name_node), name,
                model, lp->type);
        return true;
    }
    if (strchr(upstream, '*'))
        return fail(im, model_node, "'%s': aigw serves a whole provider (%s/*), not a pattern of names",
                    model, lp->litellm);
    import_model *m = &im->models[im->nmodels++];
    m->name = xstrdup(name);
    m->model = xstrdup(upstream);
    m->provider = p;
    return true;
}

/* A double-quoted YAML scalar: nothing in s can end it or start new structure. */
static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(out, "\\x%02x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void put_provider_name(FILE *out, const import_provider *p)
{
    char name[64];
    if (p->index_of_type == 1)
        snprintf(name, sizeof name, "%s", p->type);
    else
        snprintf(name, sizeof name, "%s-%d", p->type, p->index_of_type);
    put_quoted(out, name);
}

static void write_config(importer *im, FILE *out, const char *notes)
{
    fprintf(out, "# aigw config imported from the LiteLLM proxy config ");
    put_quoted(out, im->path);
    fprintf(out, "\n");
    if (*notes)
        fprintf(out,
                "#\n# LiteLLM settings not carried over (aigw's own retries, fallbacks and routes:\n"
                "# docs/routing.md):\n%s",
                notes);
    fprintf(out, "\nproviders:\n");
    for (size_t i = 0; i < im->nproviders; i++) {
        const import_provider *p = &im->providers[i];
        fprintf(out, "  - name: ");
        put_provider_name(out, p);
        fprintf(out, "\n    type: ");
        put_quoted(out, p->type);
        if (p->base_url) {
            fprintf(out, "\n    base_url: ");
            put_quoted(out, p->base_url);
        }
        if (p->api_version) {
            fprintf(out, "\n    api_version: ");
            put_quoted(out, p->api_version);
        }
        if (p->api_key) {
            fprintf(out, "\n    api_key: ");
            put_quoted(out, p->api_key);
        }
        /* No list: any `type/MODEL` name; an empty one: only the names below. */
        fprintf(out, p->any_model ? "\n" : "\n    models: []\n");
    }
    if (!im->nmodels) return;
    fprintf(out, "\nmodels:\n");
    for (size_t i = 0; i < im->nmodels; i++) {
        const import_model *m = &im->models[i];
        fprintf(out, "  - {name: ");
        put_quoted(out, m->name);
        fprintf(out, ", provider: ");
        put_provider_name(out, &im->providers[m->provider]);
        fprintf(out, ", model: ");
        put_quoted(out, m->model);
        fprintf(out, "}\n");
    }
}

/* A stream into memory; out of memory aborts, as every allocation does. */
static FILE *open_stream(char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f) {
        fprintf(stderr, "aigw: out of memory\n");
        abort();
    }
    return f;
}

static bool import_document(importer *im)
{
    yaml_node_t *root = yaml_document_get_root_node(&im->doc);
    if (!root) return fail(im, NULL, "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return fail(im, root, "a LiteLLM config is a mapping (model_list: …)");
    yaml_node_t *list = map_get(im, root, "model_list");
    if (!list) return fail(im, root, "no model_list: nothing to import");
    if (list->type != YAML_SEQUENCE_NODE) return fail(im, list, "'model_list' must be a list");
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++)
        if (!import_entry(im, yaml_document_get_node(&im->doc, *it))) return false;
    if (!im->nproviders) return fail(im, list, "model_list is empty: nothing to import");
    /* The other sections, after the entries' notes (a config writes model_list first). */
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&im->doc, p->key);
        const char *key = scalar(k);
        if (key && !strcmp(key, "model_list")) continue;
        if (key && !strcmp(key, "environment_variables"))
            fprintf(im->notes, "#   line %d: environment_variables (set them in aigw's environment)\n",
                    line_of(k));
        else
            fprintf(im->notes, "#   line %d: %s\n", line_of(k), key ? key : "?");
    }
    return true;
}

bool import_litellm(const char *path, FILE *out, char *err, size_t errlen)
{
    importer *im = xcalloc(1, sizeof *im);
    im->path = path;
    im->err = err;
    im->errlen = errlen;
    char *notes = NULL;
    size_t notes_len = 0;
    bool ok = false, have_doc = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    have_doc = yaml_parser_load(&parser, &im->doc);
    if (!have_doc)
        snprintf(err, errlen, "%s:%lu: YAML error: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unreadable");
    yaml_parser_delete(&parser);
    fclose(f);
    if (!have_doc) goto out;
    im->notes = open_stream(&notes, &notes_len);
    ok = import_document(im);
    fclose(im->notes);
    if (ok) write_config(im, out, notes);
out:
    if (have_doc) yaml_document_delete(&im->doc);
    for (size_t i = 0; i < im->nproviders; i++) {
        free(im->providers[i].base_url);
        free(im->providers[i].api_key);
        free(im->providers[i].api_version);
    }
    for (size_t i = 0; i < im->nmodels; i++) {
        free(im->models[i].name);
        free(im->models[i].model);
    }
    free(notes);
    free(im);
    return ok;
}

int import_litellm_command(const char *path)
{
    char err[1024];
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_stream(&text, &len);
    bool ok = import_litellm(path, out, err, sizeof err);
    fclose(out);
    if (ok) fwrite(text, 1, len, stdout);
    free(text);
    if (!ok) fprintf(stderr, "aigw: %s\n", err);
    return ok ? 0 : 1;
}
