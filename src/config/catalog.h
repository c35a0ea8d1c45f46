/* catalog.h — what aigw knows about models: context window, output limit, prices, abilities.
 *
 * The data is catalog/models.json (embedded at build time), optionally extended or overridden
 * by the file a config names in `catalog:`. Entries are keyed by provider type (the preset
 * name) and upstream model name. Loaded once with the config and immutable afterwards. A
 * price that is not in the catalog is unknown: cost is then not reported, never guessed. */
#ifndef AIGW_CONFIG_CATALOG_H
#define AIGW_CONFIG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a model can do (catalog "capabilities"). */
enum {
    CAP_TOOLS = 1 << 0,
    CAP_VISION = 1 << 1,
    CAP_JSON_SCHEMA = 1 << 2,
    CAP_REASONING = 1 << 3,
    CAP_EMBEDDINGS = 1 << 4,
};

typedef struct catalog_entry {
    char *provider, *model;
    uint32_t capabilities;                           /* CAP_* */
    uint32_t context, max_output;                    /* 0: unknown */
    bool priced;                                     /* input and output prices known */
    double input, output, cached_input, cache_write; /* USD per million tokens */
    char *taken;                                     /* when the prices were taken */
} catalog_entry;

typedef struct catalog {
    catalog_entry *entries;
    size_t count;
} catalog;

/* Token counts of one response, in OpenAI's meaning: prompt includes cached and cache-write
 * tokens; completion includes reasoning tokens. */
typedef struct usage_counts {
    long prompt, completion, cached, cache_write, reasoning;
    bool seen;
} usage_counts;

/* Loads the embedded catalog, then the entries of extra_path (may be NULL), which override
 * embedded ones with the same key. Returns false with a message in err. */
bool catalog_load(catalog *cat, const char *extra_path, char *err, size_t errlen);
void catalog_free(catalog *cat);
const catalog_entry *catalog_find(const catalog *cat, const char *provider, const char *model);
/* The cost in USD of usage at entry's prices; negative when the prices are unknown. */
double catalog_cost(const catalog_entry *entry, const usage_counts *usage);

#endif
