/* store.c — the store (store.h): its schema's numbered migrations and the rows of gateway
 * keys, teams, spend and virtual keys, written once on the SQL driver of db.h, so the same
 * queries run on SQLite (one file, the default) and on PostgreSQL (shared by many instances).
 *
 * Migrations are an array: migration i (from 1) takes the schema from version i-1 to i, and
 * schema_version holds the number applied. They run in one write transaction — on SQLite BEGIN
 * IMMEDIATE, on PostgreSQL BEGIN and pg_advisory_xact_lock — so two processes opening a new
 * store at once cannot both apply them: the second waits, then finds them applied. A store
 * whose version is higher than this build knows is refused (a newer aigw wrote it), as is a
 * SQLite file or a PostgreSQL schema without our schema_version table but with tables of its
 * own (another program's). A migration's text is shared by both dialects unless it gives a
 * PostgreSQL one (BLOB is BYTEA there); everything else (TEXT, BIGINT, INTEGER, DOUBLE
 * PRECISION) means the same in both.
 *
 * Lists (models, tags) and metadata are JSON text in their columns: they are read whole with
 * the key and never queried by part. Limits and budgets have their columns already (LiteLLM's
 * names). Migration 2 adds teams, spend_hourly (one row per hour, key, team and model, added
 * to by upserts: a day is a sum of hours) and budget_spend (each key's and team's spend in the
 * budget period it was last written in: periods of seconds cannot be read from hours).
 * Migration 3 adds virtual keys: a row holds its secret only sealed (vault.h: nonce and
 * ciphertext in two blobs); sealing and opening happen here, on the store's thread, with the
 * vault key the owner set (store_set_vault), so neither database ever sees the plaintext. The
 * schema grows, it is not rewritten. Every write bumps meta.keys_version in its transaction
 * (bump_version), so another instance's poll is one indexed read; on PostgreSQL it also
 * NOTIFYs, so a listening instance hears of it at once. Migration 4 adds the rate limits'
 * remaining columns to keys: per day (rpd_limit, tpd_limit) and per model (model_rpm_limit,
 * model_tpm_limit: JSON objects of model → limit). Migration 5 adds a key's default route
 * (a name the running config resolves per request, so it is not checked against a config here)
 * and whether it is an admin key. Migration 6 adds the request log (request_log.h; its
 * operations are store_reqlog.c's). Migration 7 adds prompt templates and partials, their
 * versions and labels (store_prompts.c); their writes bump keys_version, so the key snapshot
 * carries them to the workers. Migration 8 adds the prompt a logged request used, and feedback;
 * migration 9 the route's reason a logged request carries; migration 10 trims the request log's indexes to
 * what its queries use; migration 11 keeps the request log in batches, a row holding many
 * requests, and moves the old rows into them with a step in C (a migration's `then`, run in
 * the same transaction, under the same lock). Migrations 12 and 13 change no table: each marks
 * a store whose batches an older aigw would misread (RLB2 blobs; batches of 1,024).
 *
 * Adding a table: a migration at the end of the array (with a postgres_sql only where a type
 * differs, BLOB → BYTEA), and its functions here on db.h —
 * db_prepare with `?` placeholders, db_bind_*, db_step, db_column_*, db_finalize; a write runs
 * between db_begin_write and COMMIT and ends with bump_version when the snapshot must see it.
 * No SQLite or libpq call belongs in this file. */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "store/db.h"
#include "util/alloc.h"
#include "util/conninfo.h"

/* The NOTIFY channel a write announces itself on (PostgreSQL). */
#define CHANGE_CHANNEL "aigw_store"

struct store {
    db *db;
    bool listening;
    char name[256]; /* the path, or the connection string without its password */
    int version;
    bool has_vault;
    vault_key vault;
    char error[512];
};

/* Migration 5's columns, the same in both dialects. */
#define REQUEST_LOG_COLUMNS                                                                                  \
    "  ts_us BIGINT NOT NULL,"                                                                               \
    "  request_id TEXT NOT NULL,"                                                                            \
    "  trace_id TEXT,"                                                                                       \
    "  key_id TEXT,"                                                                                         \
    "  key_alias TEXT,"                                                                                      \
    "  team_id TEXT,"                                                                                        \
    "  method TEXT NOT NULL,"                                                                                \
    "  path TEXT NOT NULL,"                                                                                  \
    "  route TEXT,"                                                                                          \
    "  provider TEXT,"                                                                                       \
    "  model TEXT,"                                                                                          \
    "  upstream_model TEXT,"                                                                                 \
    "  status INTEGER NOT NULL,"                                                                             \
    "  error_class TEXT,"                                                                                    \
    "  error TEXT,"                                                                                          \
    "  stream INTEGER NOT NULL,"                                                                             \
    "  prompt_tokens BIGINT NOT NULL,"                                                                       \
    "  completion_tokens BIGINT NOT NULL,"                                                                   \
    "  cached_tokens BIGINT NOT NULL,"                                                                       \
    "  cache_write_tokens BIGINT NOT NULL,"                                                                  \
    "  reasoning_tokens BIGINT NOT NULL,"                                                                    \
    "  cost_usd DOUBLE PRECISION,"                                                                           \
    "  cache TEXT,"                                                                                          \
    "  retries INTEGER NOT NULL,"                                                                            \
    "  fallbacks INTEGER NOT NULL,"                                                                          \
    "  ttfb_us BIGINT,"                                                                                      \
    "  total_us BIGINT NOT NULL,"                                                                            \
    "  overhead_us BIGINT,"                                                                                  \
    "  attempts TEXT NOT NULL DEFAULT '[]',"                                                                 \
    "  request_body TEXT"
#define REQUEST_LOG_INDEXES                                                                                  \
    "CREATE INDEX request_log_time ON request_log (ts_us, seq);"                                             \
    "CREATE INDEX request_log_request ON request_log (request_id);"                                          \
    "CREATE INDEX request_log_key ON request_log (key_id, ts_us);"

typedef struct migration {
    const char *sql;
    const char *postgres_sql; /* NULL: sql is valid on PostgreSQL too */
    bool (*then)(store *s);   /* a step in C after the SQL, in the same transaction, or NULL */
} migration;

/* A migration that changes no table, only the schema's version — a mark that makes an older
 * aigw refuse the store — with a statement both dialects run and that does nothing. */
#define SCHEMA_MARK                                                                                          \
    {                                                                                                        \
        "CREATE INDEX IF NOT EXISTS request_log_batch_time ON request_log_batch (ts_max, seq);", NULL, NULL  \
    }

static const migration migrations[] = {
    /* 1: gateway keys */
    {"CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
     "INSERT INTO meta (name, value) VALUES ('keys_version', 0);"
     "CREATE TABLE keys ("
     "  id TEXT PRIMARY KEY,"
     "  digest BLOB NOT NULL UNIQUE,"
     "  hint TEXT NOT NULL,"
     "  alias TEXT UNIQUE,"
     "  enabled INTEGER NOT NULL DEFAULT 1,"
     "  expires_at BIGINT,"
     "  models TEXT NOT NULL DEFAULT '[]',"
     "  team_id TEXT,"
     "  user_id TEXT,"
     "  tags TEXT NOT NULL DEFAULT '[]',"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  max_budget DOUBLE PRECISION,"
     "  rpm_limit BIGINT,"
     "  tpm_limit BIGINT,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL"
     ");"
     "CREATE INDEX keys_team ON keys (team_id);",
     "CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
     "INSERT INTO meta (name, value) VALUES ('keys_version', 0);"
     "CREATE TABLE keys ("
     "  id TEXT PRIMARY KEY,"
     "  digest BYTEA NOT NULL UNIQUE,"
     "  hint TEXT NOT NULL,"
     "  alias TEXT UNIQUE,"
     "  enabled INTEGER NOT NULL DEFAULT 1,"
     "  expires_at BIGINT,"
     "  models TEXT NOT NULL DEFAULT '[]',"
     "  team_id TEXT,"
     "  user_id TEXT,"
     "  tags TEXT NOT NULL DEFAULT '[]',"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  max_budget DOUBLE PRECISION,"
     "  rpm_limit BIGINT,"
     "  tpm_limit BIGINT,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL"
     ");"
     "CREATE INDEX keys_team ON keys (team_id);",
     NULL},
    /* 2: spend, budgets and teams */
    {"ALTER TABLE keys ADD COLUMN soft_budget DOUBLE PRECISION;"
     "ALTER TABLE keys ADD COLUMN budget_duration BIGINT;"
     "CREATE TABLE teams ("
     "  id TEXT PRIMARY KEY,"
     "  alias TEXT UNIQUE,"
     "  models TEXT NOT NULL DEFAULT '[]',"
     "  max_budget DOUBLE PRECISION,"
     "  soft_budget DOUBLE PRECISION,"
     "  budget_duration BIGINT,"
     "  rpm_limit BIGINT,"
     "  tpm_limit BIGINT,"
     "  blocked INTEGER NOT NULL DEFAULT 0,"
     "  metadata TEXT NOT NULL DEFAULT '{}',"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL"
     ");"
     "CREATE TABLE spend_hourly ("
     "  hour BIGINT NOT NULL,"
     "  key_id TEXT NOT NULL,"
     "  team_id TEXT NOT NULL,"
     "  model TEXT NOT NULL,"
     "  requests BIGINT NOT NULL,"
     "  prompt_tokens BIGINT NOT NULL,"
     "  completion_tokens BIGINT NOT NULL,"
     "  cached_tokens BIGINT NOT NULL,"
     "  reasoning_tokens BIGINT NOT NULL,"
     "  cost_usd DOUBLE PRECISION NOT NULL,"
     "  PRIMARY KEY (hour, key_id, team_id, model)"
     ");"
     "CREATE TABLE budget_spend ("
     "  kind TEXT NOT NULL,"
     "  id TEXT NOT NULL,"
     "  period_start BIGINT NOT NULL,"
     "  spend DOUBLE PRECISION NOT NULL,"
     "  PRIMARY KEY (kind, id)"
     ");"
     "INSERT INTO meta (name, value) VALUES ('spend_version', 0);",
     NULL, NULL},
    /* 3: virtual keys (provider credentials, sealed) and the ones a gateway key may use */
    {"CREATE TABLE virtual_keys ("
     "  name TEXT PRIMARY KEY,"
     "  provider TEXT NOT NULL,"
     "  base_url TEXT,"
     "  nonce BLOB NOT NULL,"
     "  sealed BLOB NOT NULL,"
     "  hint TEXT NOT NULL,"
     "  version BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL"
     ");"
     "ALTER TABLE keys ADD COLUMN virtual_keys TEXT NOT NULL DEFAULT '[]';",
     "CREATE TABLE virtual_keys ("
     "  name TEXT PRIMARY KEY,"
     "  provider TEXT NOT NULL,"
     "  base_url TEXT,"
     "  nonce BYTEA NOT NULL,"
     "  sealed BYTEA NOT NULL,"
     "  hint TEXT NOT NULL,"
     "  version BIGINT NOT NULL,"
     "  created_at BIGINT NOT NULL,"
     "  updated_at BIGINT NOT NULL"
     ");"
     "ALTER TABLE keys ADD COLUMN virtual_keys TEXT NOT NULL DEFAULT '[]';",
     NULL},
    /* 4: rate limits per day and per model (LiteLLM's model_rpm_limit / model_tpm_limit: JSON
     * objects of model name → limit) */
    {"ALTER TABLE keys ADD COLUMN rpd_limit BIGINT;"
     "ALTER TABLE keys ADD COLUMN tpd_limit BIGINT;"
     "ALTER TABLE keys ADD COLUMN model_rpm_limit TEXT NOT NULL DEFAULT '{}';"
     "ALTER TABLE keys ADD COLUMN model_tpm_limit TEXT NOT NULL DEFAULT '{}';",
     NULL, NULL},
    /* 5: a key's own default route (the name of a route or model of the config: it serves the
     * key's requests whose model names nothing) and its role (admin: the admin API) */
    {"ALTER TABLE keys ADD COLUMN default_route TEXT;"
     "ALTER TABLE keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;",
     NULL, NULL},
    /* 6: the request log (store_reqlog.c, request_log.h): one row per request, attempts as JSON;
     * seq is the row's number in both dialects (the tiebreaker of the newest-first order) */
    {"CREATE TABLE request_log (seq INTEGER PRIMARY KEY AUTOINCREMENT," REQUEST_LOG_COLUMNS
     ");" REQUEST_LOG_INDEXES,
     "CREATE TABLE request_log (seq BIGSERIAL PRIMARY KEY," REQUEST_LOG_COLUMNS ");" REQUEST_LOG_INDEXES,
     NULL},
    /* 7: prompt templates and partials (store_prompts.c): immutable numbered versions, and
     * labels that point at one version or split traffic between several (weights as JSON) */
    {"CREATE TABLE prompt_versions ("
     "  kind TEXT NOT NULL,"
     "  id TEXT NOT NULL,"
     "  version BIGINT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  created_at BIGINT NOT NULL,"
     "  PRIMARY KEY (kind, id, version));"
     "CREATE TABLE prompt_labels ("
     "  kind TEXT NOT NULL,"
     "  id TEXT NOT NULL,"
     "  label TEXT NOT NULL,"
     "  split TEXT NOT NULL,"
     "  updated_at BIGINT NOT NULL,"
     "  PRIMARY KEY (kind, id, label));",
     NULL, NULL},
    /* 8: experiments (docs/prompts.md): the prompt template and version a request used, and
     * feedback on a request (POST /v1/feedback: Portkey's value -10..10 and weight 0..1, a comment) */
    {"ALTER TABLE request_log ADD COLUMN prompt_id TEXT;"
     "ALTER TABLE request_log ADD COLUMN prompt_version BIGINT;"
     "CREATE INDEX request_log_prompt ON request_log (prompt_id, prompt_version);"
     "CREATE TABLE feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, ts_us BIGINT "
     "NOT NULL,"
     " value DOUBLE PRECISION NOT NULL, weight DOUBLE PRECISION NOT NULL, comment TEXT, metadata TEXT, "
     "key_id TEXT);"
     "CREATE INDEX feedback_request ON feedback (request_id);",
     "ALTER TABLE request_log ADD COLUMN prompt_id TEXT;"
     "ALTER TABLE request_log ADD COLUMN prompt_version BIGINT;"
     "CREATE INDEX request_log_prompt ON request_log (prompt_id, prompt_version);"
     "CREATE TABLE feedback (seq BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, ts_us BIGINT NOT NULL,"
     " value DOUBLE PRECISION NOT NULL, weight DOUBLE PRECISION NOT NULL, comment TEXT, metadata TEXT, "
     "key_id TEXT);"
     "CREATE INDEX feedback_request ON feedback (request_id);",
     NULL},
    /* 9: how the route was chosen (docs/routing.md): the learned router's score, an auto route's
     * candidates and their scores, the external router's answer — x-aigw-route-reason's text */
    {"ALTER TABLE request_log ADD COLUMN route_reason TEXT;", NULL, NULL},
    /* 10: the request log's writes made cheaper (bench/RESULTS.md): request_log_key goes — no
     * query could use it (the key filter matches key_id OR key_alias, and key_alias has no
     * index; EXPLAIN QUERY PLAN walks request_log_time either way) — and request_log_prompt
     * indexes only the rows of a prompt template, the only rows its queries (prompt_id = ?)
     * look for, instead of an entry per request */
    {"DROP INDEX IF EXISTS request_log_key;"
     "DROP INDEX IF EXISTS request_log_prompt;"
     "CREATE INDEX request_log_prompt ON request_log (prompt_id, prompt_version) WHERE prompt_id IS NOT "
     "NULL;",
     NULL, NULL},
    /* 11: the request log in batches (store_reqlog.c, reqlog_batch.h): a row holds a batch of
     * requests packed in one blob, with its time range and a Bloom filter of its request ids —
     * a row a request cost the database most of what the log cost (bench/RESULTS.md). The rows
     * of request_log move into batches and the table goes (store__reqlog_move_rows). */
    {"CREATE TABLE request_log_batch (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts_min BIGINT NOT NULL,"
     " ts_max BIGINT NOT NULL, entries BIGINT NOT NULL, ids BLOB NOT NULL, data BLOB NOT NULL);"
     "CREATE INDEX request_log_batch_time ON request_log_batch (ts_max, seq);",
     "CREATE TABLE request_log_batch (seq BIGSERIAL PRIMARY KEY, ts_min BIGINT NOT NULL,"
     " ts_max BIGINT NOT NULL, entries BIGINT NOT NULL, ids BYTEA NOT NULL, data BYTEA NOT NULL);"
     "CREATE INDEX request_log_batch_time ON request_log_batch (ts_max, seq);",
     store__reqlog_move_rows},
    /* 12: nothing to change in the tables, a mark: batches are written as RLB2 from here (strings
     * that refer to the previous entry's, attempts packed: reqlog_batch.h), which an aigw that
     * knows 11 migrations would take for damaged batches — and its retention deletes those.
     * Such an aigw now refuses the store ("written by a newer aigw") instead. */
    SCHEMA_MARK,
    /* 13: a mark again: a batch holds up to 1,024 requests from here, where an aigw that knows
     * 12 migrations rewrites at most 256 of a batch in retention and would lose the rest. Such an
     * aigw now refuses the store instead. */
    SCHEMA_MARK,
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* Any 64-bit number only aigw uses: the lock migrations take on PostgreSQL ("aigw" in ASCII). */
#define MIGRATION_LOCK_ID 0x61696777

static store_result set_error(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static store_result set_error(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    return STORE_ERROR;
}

/* The driver's last message (it names the store) as the store's. */
static store_result db_failed(store *s)
{
    return set_error(s, "%s", db_error(s->db));
}

struct db *store__db(store *s)
{
    return s->db;
}

store_result store__db_failed(store *s)
{
    return db_failed(s);
}

store_result store__fail(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    return STORE_ERROR;
}

const char *store_error(store *s)
{
    return s->error;
}

const char *store_name(store *s)
{
    return s->name;
}

void store_describe(const char *target, char *out, size_t len)
{
    conninfo_redact(target, out, len);
}

bool store_is_shared(const char *target)
{
    return conninfo_is_postgres(target);
}

int store_schema_version(store *s)
{
    return s->version;
}

void store_key_clear(store_key *k)
{
    free(k->alias);
    free(k->team);
    free(k->user);
    free(k->metadata);
    free(k->default_route);
    for (size_t i = 0; i < k->nmodels; i++)
        free(k->models[i]);
    free(k->models);
    for (size_t i = 0; i < k->ntags; i++)
        free(k->tags[i]);
    free(k->tags);
    for (size_t i = 0; i < k->nvirtual_keys; i++)
        free(k->virtual_keys[i]);
    free(k->virtual_keys);
    for (size_t i = 0; i < k->nmodel_limits; i++)
        free(k->model_limits[i].model);
    free(k->model_limits);
    memset(k, 0, sizeof *k);
}

void store_vkey_clear(store_vkey *v)
{
    free(v->provider);
    free(v->base_url);
    memset(v, 0, sizeof *v);
}

static bool exec(store *s, const char *sql)
{
    if (db_exec(s->db, sql)) return true;
    db_failed(s);
    return false;
}

/* One integer from a query with an optional text parameter; false with s->error when it
 * fails. *found (may be NULL) says whether a row came. */
static bool query_int(store *s, const char *sql, const char *param, int64_t *out, bool *found)
{
    db_stmt *st = db_prepare(s->db, sql);
    if (!st) {
        db_failed(s);
        return false;
    }
    if (param) db_bind_text(st, 1, param);
    db_status rc = db_step(st);
    if (rc == DB_ROW) *out = db_column_int64(st, 0);
    if (found) *found = rc == DB_ROW;
    if (rc != DB_ROW && rc != DB_DONE) db_failed(s);
    db_finalize(st);
    return rc == DB_ROW || rc == DB_DONE;
}

/* How many tables the store's namespace holds, and whether one is named name (NULL: any). */
static bool count_tables(store *s, const char *name, int64_t *n)
{
    if (db_dialect_of(s->db) == DB_POSTGRES)
        return query_int(
            s,
            name ? "SELECT count(*) FROM information_schema.tables "
                   "WHERE table_schema = current_schema() AND table_name = ?"
                 : "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            name, n, NULL);
    return query_int(s,
                     name ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
                          : "SELECT count(*) FROM sqlite_master",
                     name, n, NULL);
}

/* Brings the schema to NMIGRATIONS, or refuses the store. */
static bool migrate(store *s)
{
    bool postgres = db_dialect_of(s->db) == DB_POSTGRES;
    if (!db_begin_write(s->db)) {
        db_failed(s);
        return false;
    }
    char lock[64];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK_ID);
    int64_t n = 0, version = 0;
    if (postgres && !exec(s, lock)) goto refused;
    if (!count_tables(s, "schema_version", &n)) goto refused;
    if (n == 0) {
        if (!count_tables(s, NULL, &n)) goto refused;
        if (n > 0) {
            if (postgres)
                set_error(s,
                          "%s holds tables of another program (no schema_version table): give aigw a "
                          "database of its own, or a schema of its own (options=-csearch_path=…)",
                          s->name);
            else
                set_error(
                    s,
                    "%s is a SQLite database of another program (no schema_version table): not an aigw store",
                    s->name);
            goto refused;
        }
        if (!exec(s, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version) VALUES (0);"))
            goto refused;
    } else if (!query_int(s, "SELECT version FROM schema_version", NULL, &version, NULL)) {
        goto refused;
    }
    if (version > NMIGRATIONS) {
        set_error(s, "%s was written by a newer aigw (schema version %lld; this one knows up to %d)", s->name,
                  (long long)version, NMIGRATIONS);
        goto refused;
    }
    for (int i = (int)version; i < NMIGRATIONS; i++) {
        const migration *m = &migrations[i];
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", i + 1);
        if (!exec(s, postgres && m->postgres_sql ? m->postgres_sql : m->sql) || (m->then && !m->then(s)) ||
            !exec(s, sql))
            goto refused;
    }
    if (!exec(s, "COMMIT")) goto refused;
    s->version = NMIGRATIONS;
    return true;
refused:
    db_rollback(s->db);
    return false;
}

store *store_open(const char *target, char *err, size_t errlen)
{
    store *s = xcalloc(1, sizeof *s);
    conninfo_redact(target, s->name, sizeof s->name);
    s->db = db_open(target, err, errlen);
    if (!s->db) {
        free(s);
        return NULL;
    }
    if (!migrate(s)) {
        if (db_dialect_of(s->db) == DB_SQLITE &&
            (strstr(s->error, "not a database") || strstr(s->error, "malformed")))
            snprintf(err, errlen,
                     "store %s is damaged or not an aigw store (SQLite: %s); move it away to start "
                     "with an empty store, or point auth.store at the right file",
                     s->name, s->error);
        else
            snprintf(err, errlen, "store %s", s->error);
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(store *s)
{
    if (!s) return;
    sodium_memzero(&s->vault, sizeof s->vault);
    db_close(s->db);
    free(s);
}

/* ---- rows ----------------------------------------------------------------------------------- */

static const char key_columns[] =
    "id, digest, hint, alias, enabled, expires_at, models, team_id, user_id, tags, metadata, max_budget, "
    "rpm_limit, tpm_limit, created_at, updated_at, soft_budget, budget_duration, virtual_keys, rpd_limit, "
    "tpd_limit, model_rpm_limit, model_tpm_limit, default_route, admin";

static char *column_text(db_stmt *st, int i)
{
    const char *t = db_column_text(st, i);
    return t ? xstrdup(t) : NULL;
}

/* A JSON array of strings as a malloc'd list; what is not a string is skipped. */
static void json_list(const char *text, size_t max, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    size_t count = json_array_size(a);
    if (count > max) count = max;
    if (count) *out = xcalloc(count, sizeof **out);
    for (size_t i = 0; i < count; i++) {
        const char *v = json_string_value(json_array_get(a, i));
        if (v) (*out)[(*n)++] = xstrdup(v);
    }
    json_decref(a);
}

static char *json_list_text(char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

/* The entry of model in k's per-model limits, added (with no limits) when absent; NULL when
 * STORE_MODELS_MAX models already have one. */
static store_model_limit *model_limit_entry(store_key *k, const char *model)
{
    for (size_t i = 0; i < k->nmodel_limits; i++)
        if (!strcmp(k->model_limits[i].model, model)) return &k->model_limits[i];
    if (k->nmodel_limits == STORE_MODELS_MAX) return NULL;
    k->model_limits = xrealloc(k->model_limits, (k->nmodel_limits + 1) * sizeof *k->model_limits);
    store_model_limit *m = &k->model_limits[k->nmodel_limits++];
    *m = (store_model_limit){
        .model = xstrdup(model), .rpm_limit = STORE_LIMIT_NONE, .tpm_limit = STORE_LIMIT_NONE};
    return m;
}

/* A model_*_limit column ({"model": n}) into k's per-model limits; tokens: which limit. */
static void model_limits_read(const char *text, store_key *k, bool tokens)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    const char *model;
    json_t *v;
    json_object_foreach(o, model, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0) continue;
        store_model_limit *m = model_limit_entry(k, model);
        if (!m) break;
        if (tokens)
            m->tpm_limit = json_integer_value(v);
        else
            m->rpm_limit = json_integer_value(v);
    }
    json_decref(o);
}

static char *model_limits_text(const store_key *k, bool tokens)
{
    json_t *o = json_object();
    for (size_t i = 0; i < k->nmodel_limits; i++) {
        int64_t v = tokens ? k->model_limits[i].tpm_limit : k->model_limits[i].rpm_limit;
        if (v >= 0) json_object_set_new(o, k->model_limits[i].model, json_integer(v));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

static void row_to_key(db_stmt *st, store_key *k)
{
    memset(k, 0, sizeof *k);
    const char *id = db_column_text(st, 0);
    snprintf(k->id, sizeof k->id, "%s", id ? id : "");
    size_t len;
    const void *digest = db_column_blob(st, 1, &len);
    if (digest && len == STORE_DIGEST_BYTES) memcpy(k->digest, digest, STORE_DIGEST_BYTES);
    const char *hint = db_column_text(st, 2);
    snprintf(k->hint, sizeof k->hint, "%s", hint ? hint : "");
    k->alias = column_text(st, 3);
    k->enabled = db_column_int64(st, 4) != 0;
    k->expires_at = db_column_int64(st, 5);
    json_list(db_column_text(st, 6), STORE_MODELS_MAX, &k->models, &k->nmodels);
    k->team = column_text(st, 7);
    k->user = column_text(st, 8);
    json_list(db_column_text(st, 9), STORE_TAGS_MAX, &k->tags, &k->ntags);
    k->metadata = column_text(st, 10);
    if (!k->metadata) k->metadata = xstrdup("{}");
    k->max_budget = db_column_is_null(st, 11) ? -1 : db_column_double(st, 11);
    k->rpm_limit = db_column_is_null(st, 12) ? STORE_LIMIT_NONE : db_column_int64(st, 12);
    k->tpm_limit = db_column_is_null(st, 13) ? STORE_LIMIT_NONE : db_column_int64(st, 13);
    k->created_at = db_column_int64(st, 14);
    k->updated_at = db_column_int64(st, 15);
    k->soft_budget = db_column_is_null(st, 16) ? -1 : db_column_double(st, 16);
    k->budget_duration = db_column_int64(st, 17);
    json_list(db_column_text(st, 18), STORE_VKEYS_MAX, &k->virtual_keys, &k->nvirtual_keys);
    k->rpd_limit = db_column_is_null(st, 19) ? STORE_LIMIT_NONE : db_column_int64(st, 19);
    k->tpd_limit = db_column_is_null(st, 20) ? STORE_LIMIT_NONE : db_column_int64(st, 20);
    model_limits_read(db_column_text(st, 21), k, false);
    model_limits_read(db_column_text(st, 22), k, true);
    k->default_route = column_text(st, 23);
    k->admin = db_column_int64(st, 24) != 0;
}

/* A budget (negative: none) or a limit (negative: none) as a value or NULL. */
static void bind_money(db_stmt *st, int i, double v)
{
    if (v >= 0)
        db_bind_double(st, i, v);
    else
        db_bind_null(st, i);
}

static void bind_limit(db_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        db_bind_int64(st, i, v);
    else
        db_bind_null(st, i);
}

/* Binds a key's columns in key_columns' order from 1. */
static void bind_key(db_stmt *st, const store_key *k)
{
    db_bind_text(st, 1, k->id);
    db_bind_blob(st, 2, k->digest, STORE_DIGEST_BYTES);
    db_bind_text(st, 3, k->hint);
    db_bind_text(st, 4, k->alias);
    db_bind_int64(st, 5, k->enabled);
    if (k->expires_at)
        db_bind_int64(st, 6, k->expires_at);
    else
        db_bind_null(st, 6);
    char *models = json_list_text(k->models, k->nmodels);
    db_bind_text(st, 7, models);
    free(models);
    db_bind_text(st, 8, k->team);
    db_bind_text(st, 9, k->user);
    char *tags = json_list_text(k->tags, k->ntags);
    db_bind_text(st, 10, tags);
    free(tags);
    db_bind_text(st, 11, k->metadata ? k->metadata : "{}");
    if (k->max_budget >= 0)
        db_bind_double(st, 12, k->max_budget);
    else
        db_bind_null(st, 12);
    if (k->rpm_limit >= 0)
        db_bind_int64(st, 13, k->rpm_limit);
    else
        db_bind_null(st, 13);
    if (k->tpm_limit >= 0)
        db_bind_int64(st, 14, k->tpm_limit);
    else
        db_bind_null(st, 14);
    db_bind_int64(st, 15, k->created_at);
    db_bind_int64(st, 16, k->updated_at);
    bind_money(st, 17, k->soft_budget);
    bind_limit(st, 18, k->budget_duration > 0 ? k->budget_duration : -1);
    char *vkeys = json_list_text(k->virtual_keys, k->nvirtual_keys);
    db_bind_text(st, 19, vkeys);
    free(vkeys);
    bind_limit(st, 20, k->rpd_limit);
    bind_limit(st, 21, k->tpd_limit);
    char *limits = model_limits_text(k, false);
    db_bind_text(st, 22, limits);
    free(limits);
    limits = model_limits_text(k, true);
    db_bind_text(st, 23, limits);
    free(limits);
    db_bind_text(st, 24, k->default_route);
    db_bind_int64(st, 25, k->admin);
}

/* Inside a write's transaction: the version counter the other instances poll, and on
 * PostgreSQL a NOTIFY (delivered at commit, dropped on rollback) so they need not wait for the
 * poll. Every write of the store ends with it. */
static bool bump_version(store *s)
{
    if (!exec(s, "UPDATE meta SET value = value + 1 WHERE name = 'keys_version'")) return false;
    return db_dialect_of(s->db) != DB_POSTGRES || exec(s, "NOTIFY " CHANGE_CHANNEL);
}

bool store__bump_version(store *s)
{
    return bump_version(s);
}

int store_change_fd(store *s)
{
    if (!s->listening) s->listening = db_listen(s->db, CHANGE_CHANNEL);
    return db_notify_fd(s->db);
}

bool store_change_announced(store *s)
{
    return db_notified(s->db);
}

/* Runs a prepared write inside a transaction with the version bump, and finalizes it. No row
 * changed → NOT_FOUND. */
static store_result write_one(store *s, db_stmt *st)
{
    if (!db_begin_write(s->db)) {
        db_finalize(st);
        return db_failed(s);
    }
    db_status rc = db_step(st);
    store_result r = STORE_OK;
    if (rc == DB_CONFLICT)
        r = STORE_CONFLICT;
    else if (rc != DB_DONE)
        r = db_failed(s);
    else if (db_changes(st) == 0)
        r = STORE_NOT_FOUND;
    db_finalize(st);
    if (r == STORE_OK && !bump_version(s)) r = STORE_ERROR;
    if (r == STORE_OK && exec(s, "COMMIT")) return STORE_OK;
    db_rollback(s->db);
    return r == STORE_OK ? STORE_ERROR : r;
}

static db_stmt *prepare(store *s, const char *sql)
{
    db_stmt *st = db_prepare(s->db, sql);
    if (!st) db_failed(s);
    return st;
}

store_result store_key_insert(store *s, const store_key *k)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO keys (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", key_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    bind_key(st, k);
    return write_one(s, st);
}

store_result store_key_update(store *s, const store_key *k)
{
    db_stmt *st = prepare(s, "UPDATE keys SET id = ?1, digest = ?2, hint = ?3, alias = ?4, enabled = ?5, "
                             "expires_at = ?6, models = ?7, team_id = ?8, user_id = ?9, tags = ?10, "
                             "metadata = ?11, max_budget = ?12, rpm_limit = ?13, tpm_limit = ?14, "
                             "created_at = ?15, updated_at = ?16, soft_budget = ?17, budget_duration = ?18, "
                             "virtual_keys = ?19, rpd_limit = ?20, tpd_limit = ?21, model_rpm_limit = ?22, "
                             "model_tpm_limit = ?23, default_route = ?24, admin = ?25 WHERE id = ?1");
    if (!st) return STORE_ERROR;
    bind_key(st, k);
    return write_one(s, st);
}

store_result store_key_delete(store *s, const char *id)
{
    db_stmt *st = prepare(s, "DELETE FROM keys WHERE id = ?1");
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, id);
    return write_one(s, st);
}

/* The first row of a prepared query into out; finalizes it. */
static store_result read_one(store *s, db_stmt *st, store_key *out)
{
    db_status rc = db_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == DB_ROW) {
        row_to_key(st, out);
        r = STORE_OK;
    } else if (rc != DB_DONE) {
        r = db_failed(s);
    }
    db_finalize(st);
    return r;
}

store_result store_key_get(store *s, const char *ref, store_key *out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC LIMIT 1",
             key_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, ref);
    return read_one(s, st, out);
}

store_result store_key_get_by_digest(store *s, const uint8_t digest[STORE_DIGEST_BYTES], store_key *out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys WHERE digest = ?1", key_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_bind_blob(st, 1, digest, STORE_DIGEST_BYTES);
    return read_one(s, st, out);
}

store_result store_keys_each(store *s, void (*fn)(const store_key *k, void *ud), void *ud)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys ORDER BY created_at, id", key_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_status rc;
    while ((rc = db_step(st)) == DB_ROW) {
        store_key k;
        row_to_key(st, &k);
        fn(&k, ud);
        store_key_clear(&k);
    }
    store_result r = rc == DB_DONE ? STORE_OK : db_failed(s);
    db_finalize(st);
    return r;
}

store_result store_keys_version(store *s, uint64_t *version)
{
    int64_t v = 0;
    if (!query_int(s, "SELECT value FROM meta WHERE name = 'keys_version'", NULL, &v, NULL))
        return STORE_ERROR;
    *version = (uint64_t)v;
    return STORE_OK;
}

/* ---- teams -------------------------------------------------------------------------------------- */

static const char team_columns[] = "id, alias, models, max_budget, soft_budget, budget_duration, rpm_limit, "
                                   "tpm_limit, blocked, metadata, created_at, updated_at";

void store_team_clear(store_team *t)
{
    free(t->id);
    free(t->alias);
    for (size_t i = 0; i < t->nmodels; i++)
        free(t->models[i]);
    free(t->models);
    free(t->metadata);
    memset(t, 0, sizeof *t);
}

static void row_to_team(db_stmt *st, store_team *t)
{
    memset(t, 0, sizeof *t);
    t->id = column_text(st, 0);
    if (!t->id) t->id = xstrdup("");
    t->alias = column_text(st, 1);
    json_list(db_column_text(st, 2), STORE_MODELS_MAX, &t->models, &t->nmodels);
    t->max_budget = db_column_is_null(st, 3) ? -1 : db_column_double(st, 3);
    t->soft_budget = db_column_is_null(st, 4) ? -1 : db_column_double(st, 4);
    t->budget_duration = db_column_int64(st, 5);
    t->rpm_limit = db_column_is_null(st, 6) ? STORE_LIMIT_NONE : db_column_int64(st, 6);
    t->tpm_limit = db_column_is_null(st, 7) ? STORE_LIMIT_NONE : db_column_int64(st, 7);
    t->blocked = db_column_int64(st, 8) != 0;
    t->metadata = column_text(st, 9);
    if (!t->metadata) t->metadata = xstrdup("{}");
    t->created_at = db_column_int64(st, 10);
    t->updated_at = db_column_int64(st, 11);
}

/* Binds a team's columns in team_columns' order from 1. */
static void bind_team(db_stmt *st, const store_team *t)
{
    db_bind_text(st, 1, t->id);
    db_bind_text(st, 2, t->alias);
    char *models = json_list_text(t->models, t->nmodels);
    db_bind_text(st, 3, models);
    free(models);
    bind_money(st, 4, t->max_budget);
    bind_money(st, 5, t->soft_budget);
    bind_limit(st, 6, t->budget_duration > 0 ? t->budget_duration : -1);
    bind_limit(st, 7, t->rpm_limit);
    bind_limit(st, 8, t->tpm_limit);
    db_bind_int64(st, 9, t->blocked ? 1 : 0);
    db_bind_text(st, 10, t->metadata ? t->metadata : "{}");
    db_bind_int64(st, 11, t->created_at);
    db_bind_int64(st, 12, t->updated_at);
}

store_result store_team_insert(store *s, const store_team *t)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO teams (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", team_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    bind_team(st, t);
    return write_one(s, st);
}

store_result store_team_update(store *s, const store_team *t)
{
    db_stmt *st = prepare(s, "UPDATE teams SET alias = ?2, models = ?3, max_budget = ?4, soft_budget = ?5, "
                             "budget_duration = ?6, rpm_limit = ?7, tpm_limit = ?8, blocked = ?9, "
                             "metadata = ?10, created_at = ?11, updated_at = ?12 WHERE id = ?1");
    if (!st) return STORE_ERROR;
    bind_team(st, t);
    return write_one(s, st);
}

store_result store_team_delete(store *s, const char *id)
{
    db_stmt *st = prepare(s, "DELETE FROM teams WHERE id = ?1");
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, id);
    return write_one(s, st);
}

store_result store_team_get(store *s, const char *ref, store_team *out)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM teams WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC LIMIT 1", team_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, ref);
    db_status rc = db_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == DB_ROW) {
        row_to_team(st, out);
        r = STORE_OK;
    } else if (rc != DB_DONE) {
        r = db_failed(s);
    }
    db_finalize(st);
    return r;
}

store_result store_teams_each(store *s, void (*fn)(const store_team *t, void *ud), void *ud)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM teams ORDER BY created_at, id", team_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_status rc;
    while ((rc = db_step(st)) == DB_ROW) {
        store_team t;
        row_to_team(st, &t);
        fn(&t, ud);
        store_team_clear(&t);
    }
    store_result r = rc == DB_DONE ? STORE_OK : db_failed(s);
    db_finalize(st);
    return r;
}

/* ---- spend -------------------------------------------------------------------------------------- */

int64_t budget_period_start(int64_t duration, int64_t t)
{
    if (duration <= 0) return 0;
    return t - (t % duration + duration) % duration;
}

/* One hour's row added to (the upsert's expressions name their table: PostgreSQL refuses a
 * bare column that excluded also has). */
static const char spend_row_sql[] =
    "INSERT INTO spend_hourly (hour, key_id, team_id, model, requests, prompt_tokens, completion_tokens, "
    "cached_tokens, reasoning_tokens, cost_usd) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
    "ON CONFLICT (hour, key_id, team_id, model) DO UPDATE SET "
    "requests = spend_hourly.requests + excluded.requests, "
    "prompt_tokens = spend_hourly.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = spend_hourly.completion_tokens + excluded.completion_tokens, "
    "cached_tokens = spend_hourly.cached_tokens + excluded.cached_tokens, "
    "reasoning_tokens = spend_hourly.reasoning_tokens + excluded.reasoning_tokens, "
    "cost_usd = spend_hourly.cost_usd + excluded.cost_usd";

/* A budget's delta: the period is the one of the owner's budget_duration as stored now (none:
 * period 0), read in the same statement so a concurrent change of the duration cannot split
 * it. The CASTs give PostgreSQL the parameter's type (it infers it from the first use). */
#define BUDGET_DELTA_SQL(table)                                                                              \
    "INSERT INTO budget_spend (kind, id, period_start, spend) VALUES (?1, ?2, COALESCE((SELECT "             \
    "CAST(?3 AS BIGINT) - CAST(?3 AS BIGINT) % budget_duration FROM " table " WHERE id = ?2 AND "            \
    "budget_duration > 0), 0), ?4) ON CONFLICT (kind, id) DO UPDATE SET spend = CASE WHEN "                  \
    "budget_spend.period_start = excluded.period_start THEN budget_spend.spend + excluded.spend ELSE "       \
    "excluded.spend END, period_start = excluded.period_start"
static const char budget_delta_keys_sql[] = BUDGET_DELTA_SQL("keys");
static const char budget_delta_teams_sql[] = BUDGET_DELTA_SQL("teams");

/* A kept statement (db_prepare_kept: the spend flush's, prepared once per connection rather
 * than once per row and flush) stepped to its end and given back. */
static bool step_kept(store *s, db_stmt *st)
{
    if (!st) return db_failed(s), false;
    db_status rc = db_step(st);
    if (rc != DB_DONE) db_failed(s);
    db_release(st);
    return rc == DB_DONE;
}

store_result store_spend_write(store *s, const spend_batch *b)
{
    if (!db_begin_write(s->db)) return db_failed(s);
    bool ok = true;
    for (size_t i = 0; i < b->nrows && ok; i++) {
        const spend_row *w = &b->rows[i];
        db_stmt *st = db_prepare_kept(s->db, spend_row_sql);
        if (st) {
            db_bind_int64(st, 1, w->hour);
            db_bind_text(st, 2, w->key_id);
            db_bind_text(st, 3, w->team_id ? w->team_id : "");
            db_bind_text(st, 4, w->model ? w->model : "");
            db_bind_int64(st, 5, w->requests);
            db_bind_int64(st, 6, w->prompt_tokens);
            db_bind_int64(st, 7, w->completion_tokens);
            db_bind_int64(st, 8, w->cached_tokens);
            db_bind_int64(st, 9, w->reasoning_tokens);
            db_bind_double(st, 10, w->cost_usd);
        }
        ok = step_kept(s, st);
    }
    for (size_t i = 0; i < b->ndeltas && ok; i++) {
        const budget_delta *d = &b->deltas[i];
        char kind[2] = {d->kind, 0};
        db_stmt *st = db_prepare_kept(s->db, d->kind == 't' ? budget_delta_teams_sql : budget_delta_keys_sql);
        if (st) {
            db_bind_text(st, 1, kind);
            db_bind_text(st, 2, d->id);
            db_bind_int64(st, 3, b->now);
            db_bind_double(st, 4, d->cost_usd);
        }
        ok = step_kept(s, st);
    }
    /* its own counter, without a NOTIFY: another instance sharing the store reloads budgets
     * when its poll sees it moved, and its keys are not reloaded for spend */
    if (ok) ok = exec(s, "UPDATE meta SET value = value + 1 WHERE name = 'spend_version'");
    if (ok && exec(s, "COMMIT")) return STORE_OK;
    db_rollback(s->db);
    return STORE_ERROR;
}

store_result store_budget_spend(store *s, char kind, const char *id, int64_t duration, int64_t now,
                                double *spend)
{
    *spend = 0;
    db_stmt *st =
        prepare(s, "SELECT spend FROM budget_spend WHERE kind = ?1 AND id = ?2 AND period_start = ?3");
    if (!st) return STORE_ERROR;
    char k[2] = {kind, 0};
    db_bind_text(st, 1, k);
    db_bind_text(st, 2, id);
    db_bind_int64(st, 3, budget_period_start(duration, now));
    db_status rc = db_step(st);
    if (rc == DB_ROW) *spend = db_column_double(st, 0);
    store_result r = rc == DB_ROW || rc == DB_DONE ? STORE_OK : db_failed(s);
    db_finalize(st);
    return r;
}

store_result store__budget_spend_each(
    store *s, void (*fn)(char kind, const char *id, int64_t start, double spend, void *ud), void *ud)
{
    db_stmt *st = prepare(s, "SELECT kind, id, period_start, spend FROM budget_spend ORDER BY kind, id");
    if (!st) return STORE_ERROR;
    db_status rc;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *kind = db_column_text(st, 0);
        const char *id = db_column_text(st, 1);
        if (kind && id) fn(kind[0], id, db_column_int64(st, 2), db_column_double(st, 3), ud);
    }
    store_result r = rc == DB_DONE ? STORE_OK : db_failed(s);
    db_finalize(st);
    return r;
}

store_result store__spend_version(store *s, uint64_t *version)
{
    int64_t v = 0;
    if (!query_int(s, "SELECT value FROM meta WHERE name = 'spend_version'", NULL, &v, NULL))
        return STORE_ERROR;
    *version = (uint64_t)v;
    return STORE_OK;
}

store_result store_spend_query(store *s, const char *by, int64_t from, int64_t to,
                               void (*fn)(const char *group, const spend_row *totals, void *ud), void *ud)
{
    static const struct {
        const char *by, *expr;
    } groups[] = {{"key", "key_id"},
                  {"team", "team_id"},
                  {"model", "model"},
                  {"day", "CAST(hour - hour % 86400 AS TEXT)"},
                  {"hour", "CAST(hour AS TEXT)"}};
    const char *expr = NULL;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(by, groups[i].by)) expr = groups[i].expr;
    if (!expr) return set_error(s, "spend cannot be grouped by %.32s", by);
    /* sums of BIGINT are NUMERIC on PostgreSQL: read as text, they parse as integers all the same */
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, min(hour), sum(requests), sum(prompt_tokens), sum(completion_tokens), "
             "sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd) FROM spend_hourly "
             "WHERE hour >= ?1 AND hour < ?2 GROUP BY g ORDER BY %s",
             expr, !strcmp(by, "day") || !strcmp(by, "hour") ? "min(hour)" : "sum(cost_usd) DESC, g");
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_bind_int64(st, 1, from);
    db_bind_int64(st, 2, to > 0 ? to : INT64_MAX);
    db_status rc;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *g = db_column_text(st, 0);
        spend_row t = {.hour = db_column_int64(st, 1),
                       .requests = db_column_int64(st, 2),
                       .prompt_tokens = db_column_int64(st, 3),
                       .completion_tokens = db_column_int64(st, 4),
                       .cached_tokens = db_column_int64(st, 5),
                       .reasoning_tokens = db_column_int64(st, 6),
                       .cost_usd = db_column_double(st, 7)};
        fn(g ? g : "", &t, ud);
    }
    store_result r = rc == DB_DONE ? STORE_OK : db_failed(s);
    db_finalize(st);
    return r;
}

/* ---- virtual keys --------------------------------------------------------------------------- */

void store_set_vault(store *s, const vault_key *key)
{
    s->has_vault = key != NULL;
    if (key)
        s->vault = *key;
    else
        sodium_memzero(&s->vault, sizeof s->vault);
}

bool store_has_vault(store *s)
{
    return s->has_vault;
}

static const char vkey_columns[] = "name, provider, base_url, hint, version, created_at, updated_at";

static void row_to_vkey(db_stmt *st, store_vkey *v)
{
    memset(v, 0, sizeof *v);
    const char *name = db_column_text(st, 0);
    snprintf(v->name, sizeof v->name, "%s", name ? name : "");
    v->provider = column_text(st, 1);
    if (!v->provider) v->provider = xstrdup("");
    v->base_url = column_text(st, 2);
    const char *hint = db_column_text(st, 3);
    snprintf(v->hint, sizeof v->hint, "%s", hint ? hint : "");
    v->version = db_column_int64(st, 4);
    v->created_at = db_column_int64(st, 5);
    v->updated_at = db_column_int64(st, 6);
}

/* Binds nonce (?n) and the sealed secret (?n+1) and the hint (?n+2). */
static bool bind_sealed(store *s, db_stmt *st, int n, const store_vkey *v)
{
    if (!s->has_vault) {
        set_error(s, "no vault key is configured (auth.vault_key or auth.vault_key_file): a virtual key's "
                     "secret cannot be sealed");
        return false;
    }
    if (v->secret_len == 0 || v->secret_len > VAULT_SECRET_MAX) {
        set_error(s, "a virtual key's secret is 1 to %d bytes", VAULT_SECRET_MAX);
        return false;
    }
    uint8_t nonce[VAULT_NONCE_BYTES];
    uint8_t *sealed = xmalloc(v->secret_len + VAULT_MAC_BYTES);
    vault_seal(&s->vault, v->name, v->secret, v->secret_len, nonce, sealed);
    db_bind_blob(st, n, nonce, sizeof nonce);
    db_bind_blob(st, n + 1, sealed, v->secret_len + VAULT_MAC_BYTES);
    free(sealed);
    char hint[16];
    vault_hint(v->secret, v->secret_len, hint);
    db_bind_text(st, n + 2, hint);
    return true;
}

store_result store_vkey_insert(store *s, const store_vkey *v)
{
    db_stmt *st = prepare(s, "INSERT INTO virtual_keys (name, provider, base_url, nonce, sealed, hint, "
                             "version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)");
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, v->name);
    db_bind_text(st, 2, v->provider);
    db_bind_text(st, 3, v->base_url);
    if (!bind_sealed(s, st, 4, v)) {
        db_finalize(st);
        return STORE_ERROR;
    }
    db_bind_int64(st, 7, v->created_at);
    db_bind_int64(st, 8, v->updated_at);
    return write_one(s, st);
}

store_result store_vkey_update(store *s, const store_vkey *v)
{
    /* Both forms use every number up to ?7, so PostgreSQL is told each parameter's place. */
    db_stmt *st = v->secret
                      ? prepare(s, "UPDATE virtual_keys SET provider = ?2, base_url = ?3, nonce = ?4, "
                                   "sealed = ?5, hint = ?6, version = virtual_keys.version + 1, "
                                   "updated_at = ?7 WHERE name = ?1")
                      : prepare(s, "UPDATE virtual_keys SET provider = ?2, base_url = ?3, updated_at = ?4 "
                                   "WHERE name = ?1");
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, v->name);
    db_bind_text(st, 2, v->provider);
    db_bind_text(st, 3, v->base_url);
    if (v->secret) {
        if (!bind_sealed(s, st, 4, v)) {
            db_finalize(st);
            return STORE_ERROR;
        }
        db_bind_int64(st, 7, v->updated_at);
    } else {
        db_bind_int64(st, 4, v->updated_at);
    }
    return write_one(s, st);
}

store_result store_vkey_delete(store *s, const char *name)
{
    db_stmt *st = prepare(s, "DELETE FROM virtual_keys WHERE name = ?1");
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, name);
    return write_one(s, st);
}

store_result store_vkey_get(store *s, const char *name, store_vkey *out)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM virtual_keys WHERE name = ?1", vkey_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_bind_text(st, 1, name);
    db_status rc = db_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == DB_ROW) {
        row_to_vkey(st, out);
        r = STORE_OK;
    } else if (rc != DB_DONE) {
        r = db_failed(s);
    }
    db_finalize(st);
    return r;
}

/* Every row, by name; open: with its secret opened. A secret that does not open ends the walk,
 * or — with unopened — leaves its row out and is counted there. */
static store_result vkeys_walk(store *s, bool open, void (*fn)(const store_vkey *v, void *ud), void *ud,
                               size_t *unopened)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s, nonce, sealed FROM virtual_keys ORDER BY name", vkey_columns);
    db_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    db_status rc;
    store_result r = STORE_OK;
    char *plain = open ? xmalloc(VAULT_SECRET_MAX + 1) : NULL;
    while ((rc = db_step(st)) == DB_ROW) {
        store_vkey v;
        row_to_vkey(st, &v);
        if (open) {
            size_t nonce_len = 0, sealed_len = 0;
            const void *nonce = db_column_blob(st, 7, &nonce_len);
            const void *sealed = db_column_blob(st, 8, &sealed_len);
            if (!s->has_vault) {
                r = set_error(
                    s,
                    "%s holds encrypted virtual keys (`%.64s` and maybe more) but no vault key is "
                    "configured: set auth.vault_key (e.g. ${AIGW_VAULT_KEY}) or auth.vault_key_file "
                    "to the key they were written with",
                    s->name, v.name);
            } else if (!nonce || nonce_len != VAULT_NONCE_BYTES || !sealed || sealed_len < VAULT_MAC_BYTES ||
                       sealed_len - VAULT_MAC_BYTES > VAULT_SECRET_MAX ||
                       !vault_open(&s->vault, v.name, nonce, sealed, sealed_len, plain)) {
                r = set_error(s,
                              "the vault key cannot decrypt the virtual key `%.64s` in %s: it is not the key "
                              "the virtual keys were written with (or the row was changed)",
                              v.name, s->name);
            } else {
                v.secret_len = sealed_len - VAULT_MAC_BYTES;
                plain[v.secret_len] = '\0';
                v.secret = plain;
            }
        }
        bool skip = r != STORE_OK && unopened;
        if (skip) {
            (*unopened)++;
            r = STORE_OK; /* the message stays in s->error */
        } else if (r == STORE_OK) {
            fn(&v, ud);
        }
        if (v.secret) sodium_memzero(plain, v.secret_len);
        v.secret = NULL;
        store_vkey_clear(&v);
        if (r != STORE_OK) break;
    }
    if (r == STORE_OK && rc != DB_ROW && rc != DB_DONE) r = db_failed(s);
    free(plain);
    db_finalize(st);
    return r;
}

store_result store_vkeys_each(store *s, void (*fn)(const store_vkey *v, void *ud), void *ud)
{
    return vkeys_walk(s, false, fn, ud, NULL);
}

store_result store_vkeys_open_each(store *s, void (*fn)(const store_vkey *v, void *ud), void *ud,
                                   size_t *unopened)
{
    return vkeys_walk(s, true, fn, ud, unopened);
}
