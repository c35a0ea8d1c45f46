/* catalog.c — the model catalog: load (embedded JSON, then an optional file), look up, price.
 *
 * jansson reads it once at config load; lookups are a linear scan over a few dozen entries at
 * load time only (each route keeps a pointer to its entry), so nothing here is on the request
 * path except catalog_cost(), which is arithmetic. */
#include "config/catalog.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

extern const char aigw_catalog_json[];

static catalog_entry *find_mut(catalog *cat, const char *provider, const char *model)
{
    for (size_t i = 0; i < cat->count; i++)
        if (!strcmp(cat->entries[i].provider, provider) && !strcmp(cat->entries[i].model, model))
            return &cat->entries[i];
    return NULL;
}

static bool load_json(catalog *cat, json_t *root, const char *where, char *err, size_t errlen)
{
    json_t *models = json_object_get(root, "models");
    if (!json_is_array(models)) {
        snprintf(err, errlen, "%s: the catalog needs a \"models\" array", where);
        return false;
    }
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *provider = json_string_value(json_object_get(m, "provider"));
        const char *model = json_string_value(json_object_get(m, "model"));
        if (!provider || !model) {
            snprintf(err, errlen, "%s: models[%zu] needs \"provider\" and \"model\" strings", where, i);
            return false;
        }
        catalog_entry *e = find_mut(cat, provider, model);
        if (e) {
            free(e->taken);
            e->taken = NULL;
        } else {
            cat->entries = xrealloc(cat->entries, (cat->count + 1) * sizeof *cat->entries);
            e = &cat->entries[cat->count++];
            e->provider = xstrdup(provider);
            e->model = xstrdup(model);
        }
        e->context = (uint32_t)json_integer_value(json_object_get(m, "context"));
        e->max_output = (uint32_t)json_integer_value(json_object_get(m, "max_output"));
        json_t *in = json_object_get(m, "input"), *out = json_object_get(m, "output");
        e->priced = json_is_number(in) && json_is_number(out);
        e->input = json_number_value(in);
        e->output = json_number_value(out);
        json_t *cached = json_object_get(m, "cached_input"), *write = json_object_get(m, "cache_write");
        /* Without a cached price the provider bills cached tokens as input (no discount). */
        e->cached_input = json_is_number(cached) ? json_number_value(cached) : e->input;
        e->cache_write = json_is_number(write) ? json_number_value(write) : e->input;
        static const struct {
            const char *name;
            uint32_t bit;
        } caps[] = {{"tools", CAP_TOOLS},
                    {"vision", CAP_VISION},
                    {"json_schema", CAP_JSON_SCHEMA},
                    {"reasoning", CAP_REASONING},
                    {"embeddings", CAP_EMBEDDINGS}};
        e->capabilities = 0;
        size_t k;
        json_t *cap;
        json_array_foreach(json_object_get(m, "capabilities"), k, cap)
        {
            for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++)
                if (json_is_string(cap) && !strcmp(json_string_value(cap), caps[c].name))
                    e->capabilities |= caps[c].bit;
        }
        const char *taken = json_string_value(json_object_get(m, "taken"));
        e->taken = taken ? xstrdup(taken) : NULL;
        if (e->input < 0 || e->output < 0 || e->cached_input < 0 || e->cache_write < 0) {
            snprintf(err, errlen, "%s: %s/%s has a negative price", where, provider, model);
            return false;
        }
    }
    return true;
}

bool catalog_load(catalog *cat, const char *extra_path, char *err, size_t errlen)
{
    memset(cat, 0, sizeof *cat);
    json_error_t jerr;
    json_t *root = json_loads(aigw_catalog_json, 0, &jerr);
    bool ok = root && load_json(cat, root, "embedded catalog", err, errlen);
    if (!root) snprintf(err, errlen, "embedded catalog: %s at line %d", jerr.text, jerr.line);
    json_decref(root);
    if (ok && extra_path) {
        root = json_load_file(extra_path, 0, &jerr);
        if (!root) {
            snprintf(err, errlen, "%s:%d: %s", extra_path, jerr.line, jerr.text);
            ok = false;
        } else {
            ok = load_json(cat, root, extra_path, err, errlen);
            json_decref(root);
        }
    }
    if (!ok) catalog_free(cat);
    return ok;
}

void catalog_free(catalog *cat)
{
    for (size_t i = 0; i < cat->count; i++) {
        free(cat->entries[i].provider);
        free(cat->entries[i].model);
        free(cat->entries[i].taken);
    }
    free(cat->entries);
    memset(cat, 0, sizeof *cat);
}

const catalog_entry *catalog_find(const catalog *cat, const char *provider, const char *model)
{
    return find_mut((catalog *)cat, provider, model);
}

double catalog_cost(const catalog_entry *e, const usage_counts *u)
{
    if (!e || !e->priced || !u->seen) return -1;
    long uncached = u->prompt - u->cached - u->cache_write;
    if (uncached < 0) uncached = 0;
    return ((double)uncached * e->input + (double)u->cached * e->cached_input +
            (double)u->cache_write * e->cache_write + (double)u->completion * e->output) /
           1e6;
}
