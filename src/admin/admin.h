/* admin.h — the admin API: gateway keys created, listed, shown, updated, disabled, rotated and
 * deleted; teams; spend grouped by key, team, model, day or hour — as JSON in and out; and
 * `aigw keys`, `aigw teams` and `aigw spend`, the command lines that speak it.
 *
 * Two spellings of the same operations:
 *   /admin/keys…          aigw's own (REST: POST to create, GET to list or show, PATCH,
 *                         DELETE, POST …/disable, …/enable, …/rotate), described by the OpenAPI
 *                         document at /admin/openapi.json (admin_openapi_json)
 *   /key/generate, /key/info?key=, /key/update, /key/delete, /key/block, /key/unblock,
 *   /key/list             LiteLLM's proxy, with its field names (models, key_alias, duration,
 *                         metadata, max_budget, soft_budget, budget_duration, rpm_limit,
 *                         tpm_limit, team_id, user_id), so scripts written for it work unchanged
 *   /admin/teams…, /admin/spend   teams (REST, as keys) and spend (?group_by=&from=&to=)
 *   /team/new, /team/info?team_id=, /team/update, /team/delete, /team/list   LiteLLM's teams
 *
 * admin_handle runs an operation against a store, synchronously: the gateway calls it on the
 * store's own thread (never a worker's loop), `aigw keys` on its own when no gateway answers.
 * Who may call it (the master key or an admin key) is the caller's business; what an admin key
 * may not do (touch admin keys) is checked here, from admin_request.admin_key. Every input is bounded: body
 * 64 KiB, names 256 bytes, 64 model globs, 32 tags, metadata 16 KiB. */
#ifndef AIGW_ADMIN_ADMIN_H
#define AIGW_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "access/access.h"
#include "store/store.h"

#define ADMIN_BODY_MAX (64 * 1024)

typedef struct admin_request {
    int method;        /* http_parser's enum http_method */
    const char *path;  /* without the query */
    const char *query; /* after '?', "" when none */
    const char *body;
    size_t body_len;
    /* Who asks: false for the master key (and `aigw keys` on the store itself), true for an
     * admin key — which manages user keys, teams and virtual keys but may not create, change or
     * delete an admin key (403 master_key_required). */
    bool admin_key;
    /* POST /v1/feedback takes any gateway key (admin_stage.c lets a user key reach that route
     * only): its id, for the feedback row; "" for the master key */
    char key_id[40];
    /* The prompt files of the config the request came with (prompts.dir; NULL: none): listed
     * beside the store's templates, and read-only — the admin API refuses to write an id they
     * define. The caller keeps the set alive until admin_handle returns. */
    const struct prompt_set *prompt_files;
} admin_request;

typedef struct admin_reply {
    int status;
    char *body; /* JSON, malloc'd: admin_reply_free */
    size_t len;
} admin_reply;

/* Whether path belongs to the admin API (the gateway sends it there, not to a provider). */
bool admin_path(const char *path);
/* Whether (method, path) is an operation; false also says whether the path alone is known
 * (*path_known), for 404 against 405. */
bool admin_route_exists(int method, const char *path, bool *path_known);
/* Runs one operation: out gets the status and the JSON answer (errors in OpenAI's shape,
 * {"error":{message,type,param,code}}). */
void admin_handle(store *s, const access_secret *secret, const admin_request *req, admin_reply *out);
void admin_reply_free(admin_reply *r);

/* Inside src/admin: the request log's operations (admin_logs.c) — GET /admin/logs,
 * /admin/logs/aggregate and /admin/logs/{id} (id: that segment, decoded). */
void admin__logs(store *s, const admin_request *req, const char *id, admin_reply *out);

/* The operations, for the OpenAPI document's test: method and path pattern ({id} is one
 * segment), i < admin_nroutes. */
size_t admin_nroutes(void);
void admin_route_at(size_t i, int *method, const char **pattern);
/* The OpenAPI 3.1 document of the operations above. */
extern const char admin_openapi_json[];

/* The running config as the admin API shows it (GET /admin/config): the file's text with the
 * value of every mapping key that names a secret (…key, …secret, password, token,
 * authorization, credential — not virtual_key) replaced by ADMIN_REDACTED, unless it is an
 * ${ENV} reference, and the password inside any URL (user:PASSWORD@) or libpq keyword string
 * (password=…) replaced by ADMIN_REDACTED_MARK. malloc'd, NUL-terminated; its length in
 * *out_len. A PUT of a text that still holds the mark is refused, so a secret is never
 * overwritten by its mask. */
#define ADMIN_REDACTED_MARK "<redacted>"
#define ADMIN_REDACTED "\"" ADMIN_REDACTED_MARK "\""
char *admin_config_redact(const char *src, size_t len, size_t *out_len);

/* `aigw keys …` and `aigw vkeys …` (argv from after "keys" / "vkeys"): see their --help.
 * Return the exit code. */
int admin_keys_command(int argc, char **argv);
int admin_vkeys_command(int argc, char **argv);
/* `aigw spend …` (argv from after "spend"): see its --help. Returns the exit code. */
int admin_spend_command(int argc, char **argv);
/* `aigw teams …` (argv from after "teams"): see its --help. Returns the exit code. */
int admin_teams_command(int argc, char **argv);

#endif
