/* mustache.h — the Mustache renderer of prompt templates: variables are JSON values, partials
 * and parents (~inheritance: blocks overridden by the template that includes them) come from a
 * callback, dynamic names (`{{>*name}}`) are resolved from the data.
 *
 * It passes the official specification (comments, delimiters, interpolation, inverted,
 * partials, sections, ~inheritance, ~dynamic-names; lambdas are not supported: variables are
 * data, never code). Every render is bounded — nesting depth, partial recursion, output bytes
 * and work steps — and each limit is an error that names the template and the line where it
 * was hit. HTML escaping is off unless the options ask for it (a prompt is not HTML).
 *
 * Pure functions: no global state, safe on any thread; what a render allocates is freed
 * before it returns. */
#ifndef AIGW_PROMPTS_MUSTACHE_H
#define AIGW_PROMPTS_MUSTACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Looks up a partial (or parent) by name; returns false when there is none. The text must stay
 * valid until the render returns. */
typedef bool (*mustache_partial_fn)(void *ctx, const char *name, size_t name_len, const char **text,
                                    size_t *len);

typedef struct mustache_options {
    const char *name;           /* the template's name, for errors */
    bool escape_html;           /* {{x}} escapes & " < > (the spec's behaviour); off for prompts */
    bool strict;                /* interpolating a missing variable, or a missing partial, fails */
    size_t max_output;          /* bytes of output */
    unsigned max_depth;         /* sections, partials and blocks nested */
    unsigned max_partial_depth; /* partials, parents and blocks nested */
    size_t max_steps;           /* tags and text runs visited, section items included */
    mustache_partial_fn partial;
    void *partial_ctx;
} mustache_options;

/* Defaults: escaping off, not strict, 1 MiB, depth 64, partial depth 32, 1,000,000 steps. */
void mustache_options_init(mustache_options *o);

typedef enum mustache_status {
    MUSTACHE_OK = 0,
    MUSTACHE_SYNTAX,  /* the template (or a partial) cannot be parsed */
    MUSTACHE_MISSING, /* strict: a variable or partial is missing (error.variable names it) */
    MUSTACHE_LIMIT,   /* a bound was reached */
} mustache_status;

typedef struct mustache_error {
    mustache_status status;
    char message[320];  /* "template 'NAME' line N: …" */
    char variable[160]; /* MUSTACHE_MISSING: the variable (or "partial NAME") */
    char template_name[128];
    unsigned line;
} mustache_error;

/* Renders text (len bytes) against data (any JSON value; NULL is an empty object) and appends
 * the result to out. On failure returns the status, fills err, and out holds a partial render
 * the caller must discard. out's own maximum also applies (a refused append is a LIMIT). */
mustache_status mustache_render(const char *text, size_t len, json_t *data, const mustache_options *opt,
                                buf *out, mustache_error *err);

/* Parses text without rendering it: MUSTACHE_OK, or MUSTACHE_SYNTAX (or LIMIT: nested too deep)
 * with err filled. What the admin API runs before it stores a template or partial. */
mustache_status mustache_check(const char *text, size_t len, const char *name, mustache_error *err);

/* Calls fn once for each variable name the template interpolates or tests (`{{x}}`, `{{#x}}`,
 * `{{^x}}`; not names inside sections, which resolve against the section's value first; not
 * "."). Partials are not followed. Returns the status of parsing. */
mustache_status mustache_variables(const char *text, size_t len,
                                   void (*fn)(void *ctx, const char *name, size_t len), void *ctx);

#endif
