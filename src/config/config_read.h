/* config_read.h — reading a YAML document against tables of settings; internal to src/config.
 *
 * config.c describes the file (its tables, and the sections parsed by hand: providers,
 * models, routes) and assembles the aigw_config; config_read.c is the machinery those tables
 * run on. Nothing outside src/config includes this header: the rest of the gateway sees only
 * config.h. */
#ifndef AIGW_CONFIG_CONFIG_READ_H
#define AIGW_CONFIG_CONFIG_READ_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

typedef struct alias_entry {
    char *name, *provider, *model;
    int line;
} alias_entry;

typedef struct alias_list {
    alias_entry *items;
    size_t count;
} alias_list;

/* The state of one load: the document, where errors go, and what waits for the end of the
 * top level. The first error stops the load (later ones would only echo it). */
typedef struct loader {
    const char *path;
    alias_list aliases;  /* `models:` entries, resolved once every provider is known */
    yaml_node_t *routes; /* `routes:`, read once every other setting is known */
    yaml_document_t doc;
    char *err;
    size_t errlen;
    bool failed;
} loader;

/* One row of a settings table: the key, how its value is read and bounded, and where in the
 * target struct it goes (offsetof). A table ends with a row whose key is NULL. */
typedef enum field_kind {
    FIELD_INT,      /* int, bounded */
    FIELD_SIZE,     /* bytes: 1024, 64k, 16MiB */
    FIELD_DURATION, /* milliseconds: 500ms, 10s, 2m, or a bare number of ms */
    FIELD_STRING,
    FIELD_SECTION, /* nested mapping described by its own table */
    FIELD_CUSTOM,  /* parsed by a function */
} field_kind;

typedef struct field field;
typedef bool (*custom_parser)(loader *ld, yaml_node_t *node, void *target);

struct field {
    const char *key;
    field_kind kind;
    size_t offset;
    long long min, max;
    const field *section; /* FIELD_SECTION */
    custom_parser parse;  /* FIELD_CUSTOM */
};

/* Records "path:line: message" for node (line 0 without one) unless an error is already
 * recorded. Always returns false, so a parser can `return config__fail_at(…)`. */
bool config__fail_at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A scalar node's text (NUL-terminated, owned by the document). */
const char *config__scalar(const yaml_node_t *node);
/* True when node is a single value; else records an error naming key. */
bool config__require_scalar(loader *ld, yaml_node_t *node, const char *key);
/* A whole non-negative number in decimal; false when s is anything else. */
bool config__parse_int(const char *s, long long *out);
/* Expands ${VAR} references in s, a value of node (a whole value `os.environ/VAR` or `$VAR`
 * is read as ${VAR}: the spellings of LiteLLM's configs and of shells); returns a malloc'd string the caller
 * frees, or NULL after recording an error. *unset gets the first unset variable's name (malloc'd) or NULL; an
 * unset variable expands to nothing. */
char *config__expand_env(loader *ld, yaml_node_t *node, const char *s, char **unset);
/* A list of non-empty names: *out (malloc'd, as are its strings) and *count, which the caller
 * frees even after a failure (*count says how many were filled). */
bool config__parse_string_list(loader *ld, yaml_node_t *node, const char *key, char ***out, size_t *count);
/* Walks a mapping node with a field table, writing into base; a key not in the table is an
 * error that lists the allowed ones. name is the section's, for messages. */
bool config__apply_section(loader *ld, yaml_node_t *map, const char *name, const field *table, void *base);

#endif
