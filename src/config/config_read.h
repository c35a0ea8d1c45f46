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

/* One recorded mistake: its line (0 when none) and "path:line: message" (malloc'd). */
typedef struct load_error {
    int line;
    char *text;
} load_error;

/* How many mistakes a load keeps (more are only counted) and how many its message shows. */
#define CONFIG_ERRORS_KEPT 1000
#define CONFIG_ERRORS_SHOWN 50

/* The state of one load: the document, the mistakes found so far, and what waits for the end
 * of the top level. A mistake does not stop the load: the parsers go on with the next key or
 * entry and skip what depends on the broken part (a provider entry with a mistake is not
 * checked further, an alias naming it is not reported), so one run reports every mistake it
 * can. config_load fails when any was recorded. */
typedef struct loader {
    const char *path;
    alias_list aliases;  /* `models:` entries, resolved once every provider is known */
    yaml_node_t *routes; /* `routes:`, read once every other setting is known */
    yaml_document_t doc;
    load_error *errors;      /* in the order found; CONFIG_ERRORS_KEPT at most */
    size_t nerrors;          /* kept */
    size_t nlost;            /* found past CONFIG_ERRORS_KEPT, only counted */
    char **broken_providers; /* names of provider entries with a mistake (aliases to them are skipped) */
    size_t nbroken_providers;
    bool broken_unnamed_provider; /* a provider entry with a mistake and no name */
    bool broken_provider_list;    /* `providers:` itself was not a list */
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

/* Records "path:line: message" for node (line 0 without one) as one more mistake of the load.
 * Always returns false, so a parser can `return config__fail_at(…)`. */
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
/* true or false into *(bool *)target; anything else is a mistake naming the value. */
bool config__parse_bool(loader *ld, yaml_node_t *node, void *target);
/* A list of non-empty names: *out (malloc'd, as are its strings) and *count, which the caller
 * frees even after a failure (*count says how many were filled). Every bad entry is reported;
 * returns false when there was one. */
bool config__parse_string_list(loader *ld, yaml_node_t *node, const char *key, char ***out, size_t *count);
/* Walks a mapping node with a field table, writing into base; a key not in the table is an
 * error that lists the allowed ones. name is the section's, for messages. A mistake in one key
 * is recorded and the walk goes on with the next; returns false when any was found. */
bool config__apply_section(loader *ld, yaml_node_t *map, const char *name, const field *table, void *base);

/* `router:` (config_router.c): its parser (target: the config) and what config_free releases. */
struct router_settings;
bool config__parse_router(loader *ld, yaml_node_t *node, void *target);
void config__router_free(struct router_settings *r);
/* `external_router:` (config_router.c too): its parser (target: the config), its defaults and
 * what config_free releases. */
struct external_router_settings;
bool config__parse_external_router(loader *ld, yaml_node_t *node, void *target);
void config__external_router_defaults(struct external_router_settings *e);
void config__external_router_free(struct external_router_settings *e);

/* `request_log:` (config_request_log.c): the top table's parser (target: the config's
 * request_log_settings), the defaults set before the file is read, and what it frees. */
/* Shared by the sections' files: a {Name: value} mapping of headers (values may be ${ENV}), and
 * an http:// or https:// URL (what names the field in the message). */
struct header_pair;
bool config__read_header_pairs(loader *ld, yaml_node_t *node, struct header_pair **headers, size_t *nheaders);
bool config__read_http_url(loader *ld, yaml_node_t *node, void *target, const char *what);
/* `alerts:` (config_alerts.c): the section's table. */
extern const field config__alerts_table[];

struct request_log_settings;
struct trace_content_settings;
bool config__parse_request_log(loader *ld, yaml_node_t *node, void *target);
void config__request_log_defaults(struct request_log_settings *r);
void config__request_log_free(struct request_log_settings *r);
/* `tracing.content:` (config_request_log.c: it shares the request log's redaction list) */
bool config__parse_trace_content(loader *ld, yaml_node_t *node, void *target);
void config__trace_content_free(struct trace_content_settings *c);
/* `cache:` (config_cache.c): a mapping of the response cache's settings into the aigw_config
 * target; config__cache_defaults sets what holds without the section. */
bool config__parse_cache(loader *ld, yaml_node_t *node, void *target);
struct aigw_config;
void config__cache_defaults(struct aigw_config *cfg);

/* `prompts:` (config_prompts.c): its parser (target: the config) and what config_free releases. */
struct prompts_settings;
bool config__parse_prompts(loader *ld, yaml_node_t *node, void *target);
void config__prompts_free(struct prompts_settings *p);

/* Writes the recorded mistakes into err, one "path:line: message" a line (no final newline),
 * sorted by line (the file's order; equal lines in the order found), at most
 * CONFIG_ERRORS_SHOWN and as many whole lines as fit, then "and N more mistakes" for the rest. */
void config__errors_write(const loader *ld, char *err, size_t errlen);
/* Frees the recorded mistakes and the loader's list of broken providers. */
void config__errors_free(loader *ld);

#endif
