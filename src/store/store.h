/* store.h — the gateway's persistent state (gateway keys, teams, spend and virtual keys),
 * behind one interface with two backends: SQLite and PostgreSQL.
 *
 * Three parts, one face:
 *   - the store itself (store_open …): rows in and out, synchronous, on whichever single thread
 *     owns it — the store thread in `aigw serve`, the command's own thread in `aigw keys`.
 *     Never called from a worker's loop.
 *   - the key snapshot: every key, immutable and reference-counted, sorted by digest for the
 *     request path's lookup (no lock, no I/O: workers only read it).
 *   - the store service: a thread that owns the store, runs the jobs given to it (admin writes),
 *     polls the store's version counter (every STORE_POLL_MS, after each job, and when the
 *     store announces a change) and, when it moved — a write by this process or by another
 *     one sharing the store — loads a new snapshot and hands each subscriber (a worker) a
 *     reference.
 *
 * Two backends, one schema and one set of queries (store.c, written on the SQL driver of
 * db.h): SQLite (db_sqlite.c), one file in WAL mode, the default; and PostgreSQL through libpq
 * (db_postgres.c), which many instances share. `auth.store` picks: a PostgreSQL connection
 * string (postgres://…, postgresql://…, or "host=… dbname=…") or else a file path. The schema
 * is brought up to date by numbered migrations (schema_version). A change anywhere bumps
 * meta.keys_version in the same transaction, so a poll is one indexed read on either backend.
 * On PostgreSQL each write also NOTIFYs, and the service's thread, LISTENing, wakes at once;
 * the poll stays as the fallback (a notification sent while this instance was disconnected is
 * lost) and is all SQLite has. Rejected: SQLite's `PRAGMA data_version` (SQLite-only) and an
 * update hook (sees only this connection's writes). */
#ifndef AIGW_STORE_STORE_H
#define AIGW_STORE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/vault.h"
#include "util/arena.h"

#define STORE_DIGEST_BYTES 32
#define STORE_ID_MAX 32      /* "key_" + 24 hex digits */
#define STORE_HINT_MAX 16    /* "aigw-…" + the key's last 4 characters */
#define STORE_NAME_MAX 256   /* alias, team, user, one model glob, one tag */
#define STORE_MODELS_MAX 64  /* globs per key */
#define STORE_TAGS_MAX 32    /* tags per key */
#define STORE_JSON_MAX 16384 /* metadata as JSON text */
#define STORE_POLL_MS 1000   /* how often the service looks for another process's changes */
#define STORE_LIMIT_NONE (-1)
#define STORE_VKEYS_MAX 64 /* virtual keys a gateway key may be limited to */

typedef enum store_result {
    STORE_OK,
    STORE_NOT_FOUND,
    STORE_CONFLICT, /* the alias (or digest) is taken */
    STORE_ERROR,    /* the database failed: the message says why */
} store_result;

/* A limit of one key on one model (LiteLLM's model_rpm_limit / model_tpm_limit, merged by
 * model name). */
typedef struct store_model_limit {
    char *model;                  /* the public model name, exactly */
    int64_t rpm_limit, tpm_limit; /* STORE_LIMIT_NONE: none */
} store_model_limit;

/* A gateway key as stored: never its plaintext, only its keyed digest (src/access). Strings
 * are NUL-terminated; who owns them depends on where the key came from (store_key_clear for
 * one the store filled, the snapshot's arena for a snapshot's). */
typedef struct store_key {
    char id[STORE_ID_MAX + 1];
    uint8_t digest[STORE_DIGEST_BYTES];
    char hint[STORE_HINT_MAX + 1]; /* for people to tell keys apart: "aigw-…wxyz" */
    char *alias;                   /* NULL: none; unique */
    bool enabled;
    int64_t expires_at; /* unix seconds; 0: never */
    char **models;      /* globs (fnmatch) of the public model names it may use; none: any */
    size_t nmodels;
    char *team, *user; /* NULL: none */
    char **tags;
    size_t ntags;
    char *metadata;      /* a JSON object as text ("{}" when empty) */
    char **virtual_keys; /* names of the virtual keys it may use; none: any */
    size_t nvirtual_keys;
    /* Policy, LiteLLM's names. Budgets: USD per period (budget_duration seconds; 0: one period
     * for ever); negative: none. */
    double max_budget, soft_budget;
    int64_t budget_duration;
    /* Rate limits (src/limits), STORE_LIMIT_NONE: none. Requests and tokens per minute
     * (LiteLLM's names) and per day; per model: at most STORE_MODELS_MAX. */
    int64_t rpm_limit, tpm_limit, rpd_limit, tpd_limit;
    store_model_limit *model_limits;
    size_t nmodel_limits;
    /* The route or model of the config (its name, resolved per request) that serves this key's
     * requests whose model names nothing the config serves, or is absent or "default"; NULL:
     * none (the config's default_route applies). */
    char *default_route;
    bool admin; /* an admin key: the admin API and GET /metrics (pipeline/admin_stage.c) */
    int64_t created_at, updated_at;
} store_key;

/* A team: its keys (store_key.team naming its id) share its model globs and its budgets. A
 * key's team that names no team is a label only (the access log, spend by team). */
typedef struct store_team {
    char *id; /* 1..STORE_NAME_MAX bytes */
    char *alias;
    char **models; /* globs; none: any */
    size_t nmodels;
    double max_budget, soft_budget; /* USD; negative: none */
    int64_t budget_duration;        /* seconds; 0: none */
    int64_t rpm_limit, tpm_limit;   /* shared by the team's keys (pipeline/limits_stage.c) */
    bool blocked;
    char *metadata; /* a JSON object as text */
    int64_t created_at, updated_at;
} store_team;

void store_team_clear(store_team *t);

/* Spend: what requests cost, per hour, key, team and model (a day is a sum of hours). The
 * master key's requests are recorded under key_id "master"; team_id "" is none. */
typedef struct spend_row {
    int64_t hour; /* unix seconds, a multiple of 3600 */
    char key_id[STORE_ID_MAX + 1];
    char *team_id, *model; /* "" when none */
    int64_t requests, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    double cost_usd;
} spend_row;

/* What a budget has spent in its current period: owner is 'k' (a key's id) or 't' (a team's). A
 * period of duration seconds starts at a multiple of duration since 1970 (UTC midnight for
 * "1d"); duration 0 is one period for ever. The duration is the key's or team's as stored when
 * the delta is written. */
typedef struct budget_delta {
    char kind; /* 'k' or 't' */
    char *id;
    double cost_usd;
} budget_delta;

/* One worker's flush: rows added to the hourly table and deltas to the budgets' periods, in one
 * transaction. worker/seq tell the workers which of their flushes the next spend snapshot
 * holds. */
#define SPEND_WORKERS_MAX 256
typedef struct spend_batch {
    int worker;   /* 0..SPEND_WORKERS_MAX-1 */
    uint64_t seq; /* 1, 2, … per worker */
    int64_t now;  /* when it was flushed: the period its deltas count in */
    spend_row *rows;
    size_t nrows;
    budget_delta *deltas;
    size_t ndeltas;
} spend_batch;

/* The period that holds t for a duration (seconds; 0: the one period, start 0). */
int64_t budget_period_start(int64_t duration, int64_t t);

/* Frees what a store_key filled by the store owns, and zeroes it. */
void store_key_clear(store_key *k);

/* A virtual key: a provider credential kept sealed (vault.h) under a name that providers,
 * request configs and gateway keys refer to. The store never holds secret in the clear: it is
 * sealed on write with the store's vault key; only a snapshot (below) holds it opened. */
typedef struct store_vkey {
    char name[STORE_NAME_MAX + 1]; /* unique; the reference */
    char *provider;                /* a provider type as the config spells it (openai, anthropic, …) */
    char *base_url;                /* NULL: the type's own */
    char hint[STORE_HINT_MAX + 1]; /* "…wxyz": the secret's last 4 characters */
    int64_t version;               /* 1 when made; each new secret adds one */
    int64_t created_at, updated_at;
    char *secret; /* to write: the plaintext (the caller's); in a snapshot: opened, arena */
    size_t secret_len;
} store_vkey;

/* Frees what a store_vkey filled by the store owns (provider, base_url), and zeroes it. */
void store_vkey_clear(store_vkey *v);

/* ---- the store ------------------------------------------------------------------------------ */

typedef struct store store;

/* Opens the store target names (a SQLite file, created on first use, or a PostgreSQL
 * connection string: store_is_shared) and brings its schema up to date. NULL with a message in
 * err naming the store (never its password): unreadable or unreachable, not an aigw store (a
 * damaged file, another program's tables), or written by a newer aigw. Blocking: call it off
 * every event loop. A PostgreSQL store whose connection is lost later reconnects by itself;
 * calls fail meanwhile (STORE_ERROR). */
store *store_open(const char *target, char *err, size_t errlen);
void store_close(store *s);
/* True when target names a PostgreSQL database (a store many instances share) rather than a
 * file. */
bool store_is_shared(const char *target);
/* target as messages may show it: the connection string's password replaced by "***". */
void store_describe(const char *target, char *out, size_t len);
/* The store's name as store_describe gives it. */
const char *store_name(store *s);
/* The schema version the store is at (the number of migrations applied). */
int store_schema_version(store *s);
/* The last error's message (valid until the next call on s). */
const char *store_error(store *s);

/* A descriptor that turns readable when another process may have changed the store
 * (PostgreSQL: a NOTIFY, LISTENed to from the first call), or -1 (SQLite, or not connected;
 * ask again before each wait). store_change_announced reads what came (and what libpq buffered
 * during a query: call it before waiting too) and says whether a change was announced. */
int store_change_fd(store *s);
bool store_change_announced(store *s);

/* Writes. Each is one transaction that also bumps the version counter. */
store_result store_key_insert(store *s, const store_key *k);
store_result store_key_update(store *s, const store_key *k); /* every field, by id */
store_result store_key_delete(store *s, const char *id);
/* Reads. ref is an id or an alias. */
store_result store_key_get(store *s, const char *ref, store_key *out);
store_result store_key_get_by_digest(store *s, const uint8_t digest[STORE_DIGEST_BYTES], store_key *out);
/* Every key, oldest first; fn's key is valid during the call only. */
store_result store_keys_each(store *s, void (*fn)(const store_key *k, void *ud), void *ud);
store_result store_keys_version(store *s, uint64_t *version);

/* Teams. Writes bump the version counter too (a team's policy is in the key snapshot). */
store_result store_team_insert(store *s, const store_team *t);
store_result store_team_update(store *s, const store_team *t); /* every field, by id */
store_result store_team_delete(store *s, const char *id);
store_result store_team_get(store *s, const char *ref, store_team *out); /* ref: id or alias */
store_result store_teams_each(store *s, void (*fn)(const store_team *t, void *ud), void *ud);

/* Spend. store_spend_write: one transaction; it does not bump the version counter (spend is
 * not policy: it reaches the workers as a spend snapshot). */
store_result store_spend_write(store *s, const spend_batch *b);
/* The spend of a budget (kind 'k' or 't') in the period of duration that holds now. */
store_result store_budget_spend(store *s, char kind, const char *id, int64_t duration, int64_t now,
                                double *spend);
/* Spend grouped: by is "key", "team", "model", "day" or "hour"; hours in [from, to) (unix
 * seconds; to 0: no end). fn gets the group's name (a key id, team id, model, or the day's /
 * hour's start as unix seconds in decimal) and its totals (row.hour is the group's first hour). */
store_result store_spend_query(store *s, const char *by, int64_t from, int64_t to,
                               void (*fn)(const char *group, const spend_row *totals, void *ud), void *ud);

/* Inside src/store: the counter every spend write bumps (meta.spend_version). */
store_result store__spend_version(store *s, uint64_t *version);
/* Inside src/store: the store's connection and its message, for the operations written in the
 * module's other files (store_reqlog.c). store__db_failed takes the driver's last message as the
 * store's; both return STORE_ERROR. */
struct db *store__db(store *s);
store_result store__db_failed(store *s);
store_result store__fail(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Inside src/store (store_reqlog.c): the request ids of one prompt template's requests that
 * started in [since, until) with the version each used (store_feedback.c joins ratings to them);
 * and migration 11's step, moving the request log's rows of one row a request into batches. */
store_result store__reqlog_prompt_requests(store *s, const char *prompt_id, int64_t since_us,
                                           int64_t until_us,
                                           void (*fn)(const char *request_id, int64_t version, void *ud),
                                           void *ud);
bool store__reqlog_move_rows(store *s);
/* Inside src/store: every budget's row, for the spend snapshot. */
store_result store__budget_spend_each(
    store *s, void (*fn)(char kind, const char *id, int64_t start, double spend, void *ud), void *ud);

/* The vault key that seals and opens virtual keys' secrets (copied; NULL: none). Without one a
 * virtual key cannot be written, and a store holding any cannot load a snapshot. */
void store_set_vault(store *s, const vault_key *key);
bool store_has_vault(store *s);
/* Virtual keys. insert: a new name (CONFLICT when taken), v->secret sealed, version 1.
 * update: by name, provider and base_url; with v->secret, the new secret sealed and the
 * version one up (a rotation). Both STORE_ERROR with "no vault key" when none is set. Reads
 * fill every field but the secret. */
store_result store_vkey_insert(store *s, const store_vkey *v);
store_result store_vkey_update(store *s, const store_vkey *v);
store_result store_vkey_delete(store *s, const char *name);
store_result store_vkey_get(store *s, const char *name, store_vkey *out);
/* Every virtual key, by name; fn's is valid during the call only. */
store_result store_vkeys_each(store *s, void (*fn)(const store_vkey *v, void *ud), void *ud);
/* Every virtual key with its secret opened (fn's secret and strings valid during the call
 * only, the secret wiped afterwards). One that does not open — the vault key is wrong, the row
 * was changed, or there is no vault key — is STORE_ERROR with a message naming the key and
 * saying which; or, when unopened is given, left out and counted there (store_error then says
 * why for the last one). */
store_result store_vkeys_open_each(store *s, void (*fn)(const store_vkey *v, void *ud), void *ud,
                                   size_t *unopened);

/* Prompt templates ('t') and partials ('p') (store_prompts.c). A version is immutable: its
 * body is the JSON document the admin API wrote (a template's messages, model and parameters;
 * a partial's text), numbered 1, 2, … per id. A label names one version, or splits traffic
 * between versions: split is a JSON list [{"version": N, "weight": W}, …]. */
#define STORE_PROMPT_BODY_MAX (256 * 1024)
typedef struct store_prompt_version {
    char kind; /* 't' or 'p' */
    char *id;
    int64_t version;
    char *body; /* JSON text */
    int64_t created_at;
} store_prompt_version;
typedef struct store_prompt_label {
    char kind;
    char *id, *label;
    char *split; /* JSON text */
    int64_t updated_at;
} store_prompt_label;
/* A new version of (kind, id): the next number, in one transaction that bumps the version
 * counter; *version gets it. */
store_result store_prompt_add(store *s, char kind, const char *id, const char *body, int64_t now,
                              int64_t *version);
/* Sets label on (kind, id) to split (every version it names must exist: STORE_NOT_FOUND). */
store_result store_prompt_label_set(store *s, char kind, const char *id, const char *label, const char *split,
                                    int64_t now);
store_result store_prompt_label_delete(store *s, char kind, const char *id, const char *label);
/* One version's body, malloc'd into *body (the caller frees): STORE_OK, STORE_NOT_FOUND, or
 * STORE_ERROR. */
store_result store_prompt_version_get(store *s, char kind, const char *id, int64_t version, char **body);
/* Versions (id NULL: every id of kind; kind 0: both kinds), by kind, id, version; labels by
 * kind, id, label. fn's strings are valid during the call only. */
store_result store_prompt_versions_each(store *s, char kind, const char *id,
                                        void (*fn)(const store_prompt_version *v, void *ud), void *ud);
store_result store_prompt_labels_each(store *s, char kind, const char *id,
                                      void (*fn)(const store_prompt_label *l, void *ud), void *ud);
/* Inside src/store: bumps keys_version (and NOTIFYs) inside the caller's write transaction. */
bool store__bump_version(store *s);

/* ---- the snapshot --------------------------------------------------------------------------- */

typedef struct key_snapshot {
    atomic_int refs;
    uint64_t version;
    store_key *keys; /* sorted by digest; strings in arena */
    size_t nkeys;
    store_team *teams; /* sorted by id; strings in arena */
    size_t nteams;
    store_vkey *vkeys; /* sorted by name; secrets opened (wiped when the snapshot is freed) */
    size_t nvkeys;
    size_t nvkeys_unopened; /* left out: their secrets did not open (a lenient load only) */
    /* the versions requests resolve without a number — each id's newest and every version a
     * label names — sorted by kind, id, version; strings in arena. The others stay in the store
     * (nprompt_versions_left_out of them): PROMPT asks the store's thread for one a request
     * names by number (store_prompt_version_get) */
    store_prompt_version *prompt_versions;
    size_t nprompt_versions, nprompt_versions_left_out;
    store_prompt_label *prompt_labels; /* sorted by kind, id, label; strings in arena */
    size_t nprompt_labels;
    arena arena;
} key_snapshot;

/* Every key of s as a snapshot holding one reference; NULL on a database error (err says).
 * A virtual key whose secret does not open fails the load too (aigw's start), unless lenient:
 * then it is left out, counted in nvkeys_unopened and err says why (a running gateway keeps
 * every gateway key's state current — a revoked key must stop — at the cost of that one
 * credential). */
key_snapshot *key_snapshot_load(store *s, bool lenient, char *err, size_t errlen);
/* The key whose digest sorts equal to digest, or NULL — a candidate: the caller compares the
 * digest again in constant time (access_key_find). */
const store_key *key_snapshot_find(const key_snapshot *snap, const uint8_t digest[STORE_DIGEST_BYTES]);
/* The team with this id, or NULL. */
const store_team *key_snapshot_team(const key_snapshot *snap, const char *id);
/* The virtual key named name (NUL-terminated), or NULL. */
const store_vkey *key_snapshot_vkey(const key_snapshot *snap, const char *name);
/* A prompt template's ('t') or partial's ('p') version (0: the newest), or NULL; a label, or
 * NULL. id and label NUL-terminated. */
const store_prompt_version *key_snapshot_prompt_version(const key_snapshot *snap, char kind, const char *id,
                                                        int64_t version);
const store_prompt_label *key_snapshot_prompt_label(const key_snapshot *snap, char kind, const char *id,
                                                    const char *label);
/* Reference counting across threads; both take NULL. The last release frees. */
key_snapshot *key_snapshot_retain(key_snapshot *snap);
void key_snapshot_release(key_snapshot *snap);

/* ---- the spend snapshot ----------------------------------------------------------------------- */

/* Every budget's spend in the period it was last written in, as the store holds it, and which
 * flush of each worker it includes (applied[worker]: the highest seq written). Immutable,
 * reference-counted like the key snapshot. */
typedef struct spend_entry {
    char kind;
    char *id;
    int64_t period_start;
    double spend;
} spend_entry;

typedef struct spend_snapshot {
    atomic_int refs;
    spend_entry *entries; /* sorted by (kind, id) */
    size_t nentries;
    uint64_t applied[SPEND_WORKERS_MAX];
    arena arena;
} spend_snapshot;

/* The spend of (kind, id) in the period of duration that holds now: 0 when its last write was
 * in an earlier period, or none. */
double spend_snapshot_get(const spend_snapshot *snap, char kind, const char *id, int64_t duration,
                          int64_t now);
spend_snapshot *spend_snapshot_retain(spend_snapshot *snap);
void spend_snapshot_release(spend_snapshot *snap);

/* ---- the service ---------------------------------------------------------------------------- */

typedef struct store_service store_service;

/* A worker that wants each new snapshot: publish receives one reference (the subscriber
 * releases it), on the service's thread, and must not block. publish_spend (may be NULL): the
 * same for each new spend snapshot — after each spend write, and at each poll (another process
 * sharing the store spends too). */
typedef struct store_subscriber {
    void (*publish)(void *ud, key_snapshot *snap);
    void (*publish_spend)(void *ud, spend_snapshot *snap);
    void *ud;
    struct store_subscriber *next;
} store_subscriber;

/* Takes over s, loads the first snapshot (blocking, before returning), and starts the thread.
 * NULL with err when the first load fails (s is closed then). */
store_service *store_service_start(store *s, char *err, size_t errlen);
/* Runs the jobs still queued, stops the thread, closes the store. No subscriber may remain. */
void store_service_stop(store_service *svc);
/* A reference to the newest snapshot. Any thread. */
key_snapshot *store_service_snapshot(store_service *svc);
/* The newest snapshot's version: one atomic load, no lock (for the request path). */
uint64_t store_service_version(store_service *svc);
void store_service_subscribe(store_service *svc, store_subscriber *sub);
/* After it returns, publish is never called for sub again. */
void store_service_unsubscribe(store_service *svc, store_subscriber *sub);
/* Queues run(store, arg) on the service's thread (then the version is polled at once, so a
 * write reaches the workers without waiting for the next poll). False, with run never called,
 * when STORE_JOBS_MAX jobs already wait or the service is stopping. */
#define STORE_JOBS_MAX 256
bool store_service_submit(store_service *svc, void (*run)(store *s, void *arg), void *arg);
/* A reference to the newest spend snapshot (never NULL once started). Any thread. */
spend_snapshot *store_service_spend(store_service *svc);
/* Writes a worker's flush (on the service's thread: call it from a job) and publishes a new
 * spend snapshot. False when the write failed (said on stderr; the batch is lost, not retried:
 * a database that refuses writes would otherwise grow the queue for ever). */
bool store_service_write_spend(store_service *svc, store *s, const spend_batch *b);
/* store_service_submit, and then then(arg) on the service's thread once the snapshot holding
 * run's writes has been handed to every subscriber: a caller that answers its client from then
 * (the admin API) lets the client's next request see its own write, on a store where loading a
 * snapshot takes a round trip. then may be NULL. */
bool store_service_submit_then(store_service *svc, void (*run)(store *s, void *arg), void (*then)(void *arg),
                               void *arg);

#endif
