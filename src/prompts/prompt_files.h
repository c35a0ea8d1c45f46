/* prompt_files.h — prompt templates and partials read from a directory of files, so prompts live
 * in git next to the code that uses them (docs/prompts.md, "Prompt files").
 *
 * A prompt_set is immutable once loaded: the config holds it (prompts_settings.set) and every
 * request reads it through the config reference it holds, so a reload that reads the files again
 * swaps the whole set with the config and a request never sees half of one. */
#ifndef AIGW_PROMPTS_PROMPT_FILES_H
#define AIGW_PROMPTS_PROMPT_FILES_H

#include <stdbool.h>
#include <stddef.h>

/* The largest prompt file read (bigger: the load fails naming it). */
#define PROMPT_FILE_MAX (256 * 1024)

typedef struct prompt_set prompt_set;

/* Reads every *.yaml, *.yml and *.md file of dir (not its subdirectories; at most max_files, in
 * name order) into a new set the caller frees with prompt_set_free. NULL when any file cannot be
 * read or is not a valid template or partial, a version is defined twice, or a label names two
 * versions without weights: err says which file and why ("prompts/greet.md: line 4: …"). Blocking
 * file I/O: the load sequence's, never a worker's. */
prompt_set *prompt_files_load(const char *dir, size_t max_files, char *err, size_t errlen);
void prompt_set_free(prompt_set *set);

/* Whether the set defines (kind 't' template or 'p' partial, id); false for a NULL set. */
bool prompt_set_has(const prompt_set *set, char kind, const char *id);
/* The body (JSON text, as the store keeps it) of version (0: the newest) of (kind, id), its
 * number in *got; NULL when there is none. Valid while the set lives. */
const char *prompt_set_version(const prompt_set *set, char kind, const char *id, long long version,
                               long long *got);
/* The label's split ([{"version", "weight"}, …] as JSON text), or NULL. */
const char *prompt_set_label(const prompt_set *set, char kind, const char *id, const char *label);
/* How many versions and labels the set holds (templates and partials together), for the log. */
size_t prompt_set_count(const prompt_set *set, size_t *labels);

/* What the admin API lists (GET /admin/prompts): every version of kind (0: both) and id (NULL:
 * every id), by kind, id and version, with the file that defined it; every label, by kind, id
 * and label, its split as JSON text. fn's strings live as long as the set; a NULL set has none. */
typedef struct prompt_file_version {
    char kind; /* 't' or 'p' */
    const char *id;
    long long version;
    const char *body; /* JSON text, as the store keeps a version */
    const char *file; /* the name of its file in the directory */
} prompt_file_version;
typedef struct prompt_file_label {
    char kind;
    const char *id, *label;
    const char *split; /* [{"version", "weight"}, …] */
} prompt_file_label;
void prompt_set_each_version(const prompt_set *set, char kind, const char *id,
                             void (*fn)(const prompt_file_version *v, void *ud), void *ud);
void prompt_set_each_label(const prompt_set *set, char kind, const char *id,
                           void (*fn)(const prompt_file_label *l, void *ud), void *ud);

#endif
