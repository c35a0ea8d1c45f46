/* admin_internal.h — inside src/admin only: what the admin API's files share (admin.c holds the
 * route table, keys, spend and virtual keys; admin_teams.c the teams). The answer and field
 * helpers are admin.c's; each operation takes one op_ctx and writes its answer into c->out. */
#ifndef AIGW_ADMIN_ADMIN_INTERNAL_H
#define AIGW_ADMIN_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "admin/admin.h"

/* One operation's inputs and its answer. */
typedef struct op_ctx {
    store *s;
    const access_secret *secret;
    const admin_request *req;
    json_t *body;   /* the request's JSON object, or an empty one */
    const char *id; /* the {id} segment, decoded */
    int64_t now;
    admin_reply *out;
} op_ctx;

/* Answers: j (taken) as the body; an error in OpenAI's shape with its code and message. */
void admin__reply_json(admin_reply *out, int status, json_t *j);
void admin__reply_error(admin_reply *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Values as the API shows them: a time (RFC 3339, null for 0), a nullable string, a list of
 * strings, a duration ("30d"; null for 0), and spend + budget_reset_at of a budget. */
json_t *admin__time_json(int64_t t);
json_t *admin__string_or_null(const char *s);
json_t *admin__list_json(char *const *items, size_t n);
json_t *admin__duration_json(int64_t secs);
void admin__add_spend(json_t *j, store *s, char kind, const char *id, int64_t duration, int64_t now);

/* Fields read from a body, bounded; false with a message in err. A name (nullable), a list of
 * names (at most max), a limit (null: none), budgets (max_budget, soft_budget,
 * budget_duration where present). */
bool admin__read_name(json_t *v, const char *field, char **dst, char *err, size_t errlen);
bool admin__read_names(json_t *v, const char *field, size_t max, char ***items, size_t *n, char *err,
                       size_t errlen);
bool admin__read_limit(json_t *v, const char *field, int64_t *dst, char *err, size_t errlen);
bool admin__read_budgets(json_t *body, double *max_budget, double *soft_budget, int64_t *duration, char *err,
                         size_t errlen);
/* The value of name in a query string, percent-decoded into out; false when absent. */
bool admin__query_value(const char *query, const char *name, char *out, size_t len);

/* admin_teams.c: /admin/teams… and LiteLLM's /team/… */
void admin__op_team_create(op_ctx *c);
void admin__op_team_list(op_ctx *c);
void admin__op_team_show(op_ctx *c);
void admin__op_team_update(op_ctx *c);
void admin__op_team_delete(op_ctx *c);
void admin__op_ll_team_info(op_ctx *c);
void admin__op_ll_team_update(op_ctx *c);
void admin__op_ll_team_delete(op_ctx *c);
void admin__op_ll_team_list(op_ctx *c);

/* admin_prompts.c: /admin/prompts… and /admin/partials… */
void admin__op_prompt_create(op_ctx *c);
void admin__op_prompt_list(op_ctx *c);
void admin__op_prompt_show(op_ctx *c);
void admin__op_prompt_label(op_ctx *c);
void admin__op_prompt_promote(op_ctx *c);
void admin__op_prompt_report(op_ctx *c);
void admin__op_feedback(op_ctx *c);

#endif
