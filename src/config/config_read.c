/* config_read.c — the machinery of the settings tables: walking a YAML mapping with a table
 * of rows (key, kind, bounds, offset), reading sizes, durations and bounded numbers, expanding
 * ${VAR}, and reporting every mistake as file:line; see config_read.h.
 *
 * Split from config.c, which holds the tables themselves and the sections that need code
 * (providers, models, routes): a reader of config.c sees what the file may say, and this file
 * how any row is read. Each setting stays one table row (nginx's ngx_command_t, Redis's
 * config.c) instead of a chain of strcmp. */
#include "config/config_read.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/units.h"

bool config__fail_at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    if (ld->nerrors == CONFIG_ERRORS_KEPT) {
        ld->nlost++;
        return false;
    }
    int line = node ? (int)node->start_mark.line + 1 : 0;
    char text[1024];
    int n = snprintf(text, sizeof text, "%s:%d: ", ld->path, line);
    if (n > 0 && (size_t)n < sizeof text) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (!ld->errors) ld->errors = xcalloc(CONFIG_ERRORS_KEPT, sizeof *ld->errors);
    ld->errors[ld->nerrors].line = line;
    ld->errors[ld->nerrors].text = xstrdup(text);
    ld->nerrors++;
    return false;
}

void config__errors_write(const loader *ld, char *err, size_t errlen)
{
    if (!errlen) return;
    err[0] = '\0';
    /* The file's order: by line, equal lines in the order found (an insertion sort of the
     * indexes is stable, and the list holds at most CONFIG_ERRORS_KEPT). */
    size_t *index = xcalloc(ld->nerrors ? ld->nerrors : 1, sizeof *index);
    for (size_t i = 0; i < ld->nerrors; i++) {
        size_t j = i;
        for (; j > 0 && ld->errors[index[j - 1]].line > ld->errors[i].line; j--)
            index[j] = index[j - 1];
        index[j] = i;
    }
    /* Room kept for the last line, so it is never the one cut off. */
    const size_t tail_room = 64;
    size_t len = 0, shown = 0;
    for (; shown < ld->nerrors && shown < CONFIG_ERRORS_SHOWN; shown++) {
        const char *text = ld->errors[index[shown]].text;
        size_t need = strlen(text) + (len ? 1 : 0);
        if (len + need + tail_room >= errlen) {
            if (shown == 0) { /* the first is always shown, cut to fit if it must be */
                snprintf(err, errlen, "%s", text);
                len = strlen(err);
                shown = 1;
            }
            break;
        }
        len += (size_t)snprintf(err + len, errlen - len, "%s%s", len ? "\n" : "", text);
    }
    free(index);
    size_t more = ld->nerrors - shown + ld->nlost;
    if (more && len < errlen)
        snprintf(err + len, errlen - len, "%sand %zu more mistake%s", len ? "\n" : "", more,
                 more == 1 ? "" : "s");
}

void config__errors_free(loader *ld)
{
    for (size_t i = 0; i < ld->nerrors; i++)
        free(ld->errors[i].text);
    free(ld->errors);
    ld->errors = NULL;
    ld->nerrors = 0;
    for (size_t i = 0; i < ld->nbroken_providers; i++)
        free(ld->broken_providers[i]);
    free(ld->broken_providers);
    ld->broken_providers = NULL;
    ld->nbroken_providers = 0;
}

const char *config__scalar(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

bool config__require_scalar(loader *ld, yaml_node_t *node, const char *key)
{
    if (node->type == YAML_SCALAR_NODE) return true;
    return config__fail_at(ld, node, "'%s' must be a single value", key);
}

bool config__parse_int(const char *s, long long *out)
{
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 0) return false;
    *out = v;
    return true;
}

/* A whole value that is only a variable's name in another tool's spelling: LiteLLM's
 * `os.environ/NAME`, or a shell's `$NAME`. Both used to become literal keys; they are read as
 * ${NAME}. The name goes to name (NUL-terminated); false when s is not one of them. */
static bool env_reference_alias(const char *s, char *name, size_t namelen)
{
    const char *n = NULL;
    if (!strncmp(s, "os.environ/", 11))
        n = s + 11;
    else if (s[0] == '$' && s[1] != '{')
        n = s + 1;
    if (!n || !(*n == '_' || (*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z'))) return false;
    size_t len = strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    if (n[len] || len >= namelen) return false;
    memcpy(name, n, len + 1);
    return true;
}

/* Expands ${VAR} references (and a whole value `os.environ/VAR` or `$VAR`, as ${VAR}).
 * *unset gets the first unset variable's name (malloc'd) or NULL; an unset variable expands
 * to nothing. */
char *config__expand_env(loader *ld, yaml_node_t *node, const char *s, char **unset)
{
    char alias[256];
    if (env_reference_alias(s, alias, sizeof alias)) {
        const char *val = getenv(alias);
        *unset = !val || !*val ? xstrdup(alias) : NULL;
        return xstrdup(val ? val : "");
    }
    size_t cap = strlen(s) + 1, len = 0;
    char *out = xmalloc(cap);
    *unset = NULL;
    while (*s) {
        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s + 2, '}');
            if (!close) {
                free(out);
                config__fail_at(ld, node, "unterminated ${ in '%s'", config__scalar(node));
                return NULL;
            }
            char name[256];
            size_t nlen = (size_t)(close - (s + 2));
            if (nlen == 0 || nlen >= sizeof name) {
                free(out);
                config__fail_at(ld, node, "bad variable name in '%s'", config__scalar(node));
                return NULL;
            }
            memcpy(name, s + 2, nlen);
            name[nlen] = '\0';
            const char *val = getenv(name);
            if (!val || !*val) {
                if (!*unset) *unset = xstrdup(name);
                val = "";
            }
            size_t vlen = strlen(val);
            if (len + vlen + 1 > cap) {
                cap = len + vlen + strlen(close) + 1;
                out = xrealloc(out, cap);
            }
            memcpy(out + len, val, vlen);
            len += vlen;
            s = close + 1;
            continue;
        }
        if (len + 2 > cap) out = xrealloc(out, cap *= 2);
        out[len++] = *s++;
    }
    out[len] = '\0';
    return out;
}

bool config__parse_string_list(loader *ld, yaml_node_t *node, const char *key, char ***out, size_t *count)
{
    if (node->type != YAML_SEQUENCE_NODE) return config__fail_at(ld, node, "'%s' must be a list", key);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    char **items = xcalloc(n ? n : 1, sizeof *items);
    *out = items;
    *count = 0;
    bool ok = true;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
        if (item->type != YAML_SCALAR_NODE || !*config__scalar(item))
            ok = config__fail_at(ld, item, "'%s' entries must be non-empty names", key);
        else
            items[(*count)++] = xstrdup(config__scalar(item));
    }
    return ok;
}

/* Walks a mapping node with a field table, writing into base. A key's mistake is recorded and
 * the walk goes on with the next key (read_field's false means one was recorded). */
static bool read_field(loader *ld, const field *f, yaml_node_t *v, void *base);

bool config__apply_section(loader *ld, yaml_node_t *map, const char *name, const field *table, void *base)
{
    if (map->type != YAML_MAPPING_NODE) return config__fail_at(ld, map, "'%s' must be a mapping", name);
    bool ok = true;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            ok = config__fail_at(ld, k, "keys in '%s' must be names", name);
            continue;
        }
        const field *f = table;
        while (f->key && strcmp(f->key, config__scalar(k)) != 0)
            f++;
        if (!f->key) {
            char allowed[512];
            size_t off = 0;
            allowed[0] = '\0';
            for (const field *g = table; g->key && off < sizeof allowed; g++)
                off += (size_t)snprintf(allowed + off, sizeof allowed - off, "%s%s", off ? ", " : "", g->key);
            ok = config__fail_at(ld, k, "unknown key '%s' in %s (allowed: %s)", config__scalar(k), name,
                                 allowed);
            continue;
        }
        if (!read_field(ld, f, v, base)) ok = false;
    }
    return ok;
}

static bool read_field(loader *ld, const field *f, yaml_node_t *v, void *base)
{
    char *target = (char *)base + f->offset;
    long long val;
    switch (f->kind) {
    case FIELD_INT:
    case FIELD_SIZE:
    case FIELD_DURATION: {
        if (!config__require_scalar(ld, v, f->key)) return false;
        const char *s = config__scalar(v);
        bool parsed = f->kind == FIELD_SIZE       ? units_parse_size(s, &val)
                      : f->kind == FIELD_DURATION ? units_parse_duration(s, &val)
                                                  : config__parse_int(s, &val);
        if (!parsed)
            return config__fail_at(ld, v, "'%s': cannot read '%s' as %s", f->key, s,
                                   f->kind == FIELD_SIZE       ? "a size (e.g. 65536, 64k, 16MiB)"
                                   : f->kind == FIELD_DURATION ? "a duration (e.g. 500ms, 10s, 2m)"
                                                               : "a whole number");
        if (val < f->min || val > f->max)
            return config__fail_at(ld, v, "'%s' must be between %lld and %lld (got %lld)", f->key, f->min,
                                   f->max, val);
        if (f->kind == FIELD_INT)
            *(int *)target = (int)val;
        else if (f->kind == FIELD_SIZE)
            *(size_t *)target = (size_t)val;
        else
            *(uint32_t *)target = (uint32_t)val;
        break;
    }
    case FIELD_STRING: {
        if (!config__require_scalar(ld, v, f->key)) return false;
        char **dst = (char **)target;
        free(*dst);
        *dst = xstrdup(config__scalar(v));
        break;
    }
    case FIELD_SECTION:
        if (!config__apply_section(ld, v, f->key, f->section, base)) return false;
        break;
    case FIELD_CUSTOM:
        if (!f->parse(ld, v, target)) return false;
        break;
    }
    return true;
}
