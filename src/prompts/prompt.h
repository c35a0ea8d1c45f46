/* prompt.h — a stored prompt template turned into a request: its messages rendered with the
 * client's variables (mustache.h), its model and parameters put beside them.
 *
 * A template version's body (what the admin API stored, docs/prompts.md) is
 * {"messages": [{role, content: text | [parts]}], "model", "parameters": {…}, "allow_empty",
 * "escape_html"}. Rendering is strict unless allow_empty: a variable the template interpolates
 * and the client did not give is an error naming it (the caller's 400). Pure: no I/O, no state. */
#ifndef AIGW_PROMPTS_PROMPT_H
#define AIGW_PROMPTS_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "prompts/mustache.h"
#include "util/buf.h"

/* Renders body_text (a version's body) with variables (an object; NULL: none) into a new
 * OpenAI chat request {"model"?, "messages", …parameters} (*out, owned by the caller).
 * overrides (an object or NULL: the client's own fields — model, stream, temperature, …) win over
 * the template's. MUSTACHE_OK, or the error with err filled. */
mustache_status prompt_render(const char *name, const char *body_text, json_t *variables, json_t *overrides,
                              mustache_partial_fn partial, void *partial_ctx, size_t max_output, json_t **out,
                              mustache_error *err);

/* Which of a split's versions a request gets: split is [{"version", "weight"}, …]; sticky is a
 * user or session id (NULL: none, then roll is used: a uniform number in [0, 1)). The same
 * sticky id always gets the same version while the split stays. 0 when split is empty. */
long long prompt_pick_version(json_t *split, const char *sticky, size_t sticky_len, double roll);

/* Bounds of a template version's document. */
#define PROMPT_MESSAGES_MAX 256
#define PROMPT_LABEL_MAX 64

/* An id or label: 1 to max letters, digits, '-', '_' and '.'. */
bool prompt_valid_ident(const char *s, size_t max);
/* A template's body as stored, from the document the admin API or a prompt file gives ({"id",
 * "messages", "model", "route", "parameters", "allow_empty", "escape_html", "labels",
 * "description"}): the document without id and labels, every Mustache text checked
 * (mustache_check). A new reference, or NULL with err saying why (naming the message). */
json_t *prompt_template_body(json_t *in, const char *id, char *err, size_t errlen);
/* The same for a partial ({"id", "text", "labels", "description"}). */
json_t *prompt_partial_body(json_t *in, const char *id, char *err, size_t errlen);

#endif
