/* store_sqlite.c — the store (store.h) in one SQLite file: WAL, numbered migrations, the
 * gateway keys' and teams' rows, spend per hour and each budget's spend in its period.
 *
 * One connection per store, used by one thread at a time (the store service's thread while
 * aigw serves). WAL lets `aigw keys` in another process write while the gateway reads; a
 * writer waits for another's lock up to busy_timeout (5 s) instead of failing at once.
 *
 * Migrations are an array: migration i (from 1) takes the schema from version i-1 to i, and
 * schema_version holds the number applied. They run in one BEGIN IMMEDIATE transaction, so
 * two processes opening a new file at once cannot both apply them. A file whose version is
 * higher than this build knows is refused (a newer aigw wrote it), as is a file that is not a
 * SQLite database or is one without our schema_version table but with tables of its own.
 *
 * Lists (models, tags) and metadata are JSON text in their columns: they are read whole with
 * the key and never queried by part. Limits and budgets have their columns already (LiteLLM's
 * names). Migration 2 adds teams, spend_hourly (one row per hour, key, team and model, added
 * to by upserts: a day is a sum of hours) and budget_spend (each key's and team's spend in the
 * budget period it was last written in: periods of seconds cannot be read from hours). Virtual
 * keys come as a further migration — the schema grows, it is not rewritten. The same schema is what
 * a PostgreSQL backend will create (types chosen to map one to one: TEXT, BIGINT, DOUBLE,
 * BYTEA). When it comes, the functions of store.h become a table of operations per backend;
 * with one backend that table would be indirection without a second row. */
#include "store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "util/alloc.h"

struct store {
    sqlite3 *db;
    char *path;
    int version;
    char error[512];
};

static const char *const migrations[] = {
    /* 1: gateway keys */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
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
    /* 2: spend, budgets and teams */
    "ALTER TABLE keys ADD COLUMN soft_budget DOUBLE PRECISION;"
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
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static store_result set_error(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static store_result set_error(store *s, const char *fmt, ...)
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
    for (size_t i = 0; i < k->nmodels; i++)
        free(k->models[i]);
    free(k->models);
    for (size_t i = 0; i < k->ntags; i++)
        free(k->tags[i]);
    free(k->tags);
    memset(k, 0, sizeof *k);
}

static bool exec(store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return true;
    set_error(s, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return false;
}

/* One integer from a query without parameters; false with s->error when it fails. *found
 * (may be NULL) says whether a row came. */
static bool query_int(store *s, const char *sql, int64_t *out, bool *found)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
        return false;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    if (found) *found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

/* Brings the schema to NMIGRATIONS, or refuses the file. */
static bool migrate(store *s)
{
    if (!exec(s, "BEGIN IMMEDIATE")) return false;
    int64_t n = 0, version = 0;
    bool ours = false;
    if (!query_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                   &n, NULL))
        goto refused;
    ours = n > 0;
    if (!ours) {
        if (!query_int(s, "SELECT count(*) FROM sqlite_master", &n, NULL)) goto refused;
        if (n > 0) {
            set_error(
                s, "%s is a SQLite database of another program (no schema_version table): not an aigw store",
                s->path);
            goto refused;
        }
        if (!exec(s, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version) VALUES (0);"))
            goto refused;
    } else if (!query_int(s, "SELECT version FROM schema_version", &version, NULL)) {
        goto refused;
    }
    if (version > NMIGRATIONS) {
        set_error(s, "%s was written by a newer aigw (schema version %lld; this one knows up to %d)", s->path,
                  (long long)version, NMIGRATIONS);
        goto refused;
    }
    for (int i = (int)version; i < NMIGRATIONS; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", i + 1);
        if (!exec(s, migrations[i]) || !exec(s, sql)) goto refused;
    }
    if (!exec(s, "COMMIT")) goto refused;
    s->version = NMIGRATIONS;
    return true;
refused:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

store *store_open(const char *path, char *err, size_t errlen)
{
    store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    int rc =
        sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store %s: cannot open: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        store_close(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* journal_mode reads the header: a damaged file fails here or in migrate */
    if (!exec(s, "PRAGMA journal_mode = WAL") || !exec(s, "PRAGMA synchronous = NORMAL") ||
        !exec(s, "PRAGMA foreign_keys = ON") || !migrate(s)) {
        if (strstr(s->error, "not a database") || strstr(s->error, "malformed"))
            snprintf(err, errlen,
                     "store %s is damaged or not an aigw store (SQLite: %s); move it away to start "
                     "with an empty store, or point auth.store at the right file",
                     path, sqlite3_errmsg(s->db));
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
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* ---- rows ----------------------------------------------------------------------------------- */

static const char key_columns[] =
    "id, digest, hint, alias, enabled, expires_at, models, team_id, user_id, tags, metadata, max_budget, "
    "rpm_limit, tpm_limit, created_at, updated_at, soft_budget, budget_duration";

static char *column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
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

static void row_to_key(sqlite3_stmt *st, store_key *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", (const char *)sqlite3_column_text(st, 0));
    const void *digest = sqlite3_column_blob(st, 1);
    if (digest && sqlite3_column_bytes(st, 1) == STORE_DIGEST_BYTES)
        memcpy(k->digest, digest, STORE_DIGEST_BYTES);
    const unsigned char *hint = sqlite3_column_text(st, 2);
    snprintf(k->hint, sizeof k->hint, "%s", hint ? (const char *)hint : "");
    k->alias = column_text(st, 3);
    k->enabled = sqlite3_column_int(st, 4) != 0;
    k->expires_at = sqlite3_column_int64(st, 5);
    json_list((const char *)sqlite3_column_text(st, 6), STORE_MODELS_MAX, &k->models, &k->nmodels);
    k->team = column_text(st, 7);
    k->user = column_text(st, 8);
    json_list((const char *)sqlite3_column_text(st, 9), STORE_TAGS_MAX, &k->tags, &k->ntags);
    k->metadata = column_text(st, 10);
    if (!k->metadata) k->metadata = xstrdup("{}");
    k->max_budget = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 11);
    k->rpm_limit =
        sqlite3_column_type(st, 12) == SQLITE_NULL ? STORE_LIMIT_NONE : sqlite3_column_int64(st, 12);
    k->tpm_limit =
        sqlite3_column_type(st, 13) == SQLITE_NULL ? STORE_LIMIT_NONE : sqlite3_column_int64(st, 13);
    k->created_at = sqlite3_column_int64(st, 14);
    k->updated_at = sqlite3_column_int64(st, 15);
    k->soft_budget = sqlite3_column_type(st, 16) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 16);
    k->budget_duration = sqlite3_column_int64(st, 17);
}

static void bind_money(sqlite3_stmt *st, int i, double v)
{
    if (v >= 0)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_limit(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Binds a key's columns in key_columns' order from 1. */
static void bind_key(sqlite3_stmt *st, const store_key *k)
{
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, k->digest, STORE_DIGEST_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, k->hint, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 4, k->alias);
    sqlite3_bind_int(st, 5, k->enabled);
    if (k->expires_at)
        sqlite3_bind_int64(st, 6, k->expires_at);
    else
        sqlite3_bind_null(st, 6);
    char *models = json_list_text(k->models, k->nmodels);
    sqlite3_bind_text(st, 7, models, -1, SQLITE_TRANSIENT);
    free(models);
    bind_text_or_null(st, 8, k->team);
    bind_text_or_null(st, 9, k->user);
    char *tags = json_list_text(k->tags, k->ntags);
    sqlite3_bind_text(st, 10, tags, -1, SQLITE_TRANSIENT);
    free(tags);
    sqlite3_bind_text(st, 11, k->metadata ? k->metadata : "{}", -1, SQLITE_TRANSIENT);
    if (k->max_budget >= 0)
        sqlite3_bind_double(st, 12, k->max_budget);
    else
        sqlite3_bind_null(st, 12);
    if (k->rpm_limit >= 0)
        sqlite3_bind_int64(st, 13, k->rpm_limit);
    else
        sqlite3_bind_null(st, 13);
    if (k->tpm_limit >= 0)
        sqlite3_bind_int64(st, 14, k->tpm_limit);
    else
        sqlite3_bind_null(st, 14);
    sqlite3_bind_int64(st, 15, k->created_at);
    sqlite3_bind_int64(st, 16, k->updated_at);
    bind_money(st, 17, k->soft_budget);
    bind_limit(st, 18, k->budget_duration > 0 ? k->budget_duration : -1);
}

/* Runs a prepared write inside a transaction with the version bump. changes: rows it changed
 * (0 → NOT_FOUND). */
static store_result write_one(store *s, sqlite3_stmt *st)
{
    if (!exec(s, "BEGIN IMMEDIATE")) {
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(s->db);
    store_result r = STORE_OK;
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        r = STORE_CONFLICT;
    else if (rc != SQLITE_DONE)
        r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    else if (changes == 0)
        r = STORE_NOT_FOUND;
    sqlite3_finalize(st);
    if (r == STORE_OK && !exec(s, "UPDATE meta SET value = value + 1 WHERE name = 'keys_version'"))
        r = STORE_ERROR;
    if (r == STORE_OK && exec(s, "COMMIT")) return STORE_OK;
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return r == STORE_OK ? STORE_ERROR : r;
}

static sqlite3_stmt *prepare(store *s, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
        return NULL;
    }
    return st;
}

store_result store_key_insert(store *s, const store_key *k)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO keys (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             key_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    bind_key(st, k);
    return write_one(s, st);
}

store_result store_key_update(store *s, const store_key *k)
{
    sqlite3_stmt *st = prepare(
        s, "UPDATE keys SET id = ?1, digest = ?2, hint = ?3, alias = ?4, enabled = ?5, "
           "expires_at = ?6, models = ?7, team_id = ?8, user_id = ?9, tags = ?10, "
           "metadata = ?11, max_budget = ?12, rpm_limit = ?13, tpm_limit = ?14, "
           "created_at = ?15, updated_at = ?16, soft_budget = ?17, budget_duration = ?18 WHERE id = ?1");
    if (!st) return STORE_ERROR;
    bind_key(st, k);
    return write_one(s, st);
}

store_result store_key_delete(store *s, const char *id)
{
    sqlite3_stmt *st = prepare(s, "DELETE FROM keys WHERE id = ?1");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return write_one(s, st);
}

/* The first row of a prepared query into out. */
static store_result read_one(store *s, sqlite3_stmt *st, store_key *out)
{
    int rc = sqlite3_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        row_to_key(st, out);
        r = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return r;
}

store_result store_key_get(store *s, const char *ref, store_key *out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC LIMIT 1",
             key_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
    return read_one(s, st, out);
}

store_result store_key_get_by_digest(store *s, const uint8_t digest[STORE_DIGEST_BYTES], store_key *out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys WHERE digest = ?1", key_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_blob(st, 1, digest, STORE_DIGEST_BYTES, SQLITE_TRANSIENT);
    return read_one(s, st, out);
}

store_result store_keys_each(store *s, void (*fn)(const store_key *k, void *ud), void *ud)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM keys ORDER BY created_at, id", key_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_key k;
        row_to_key(st, &k);
        fn(&k, ud);
        store_key_clear(&k);
    }
    store_result r = rc == SQLITE_DONE ? STORE_OK : set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return r;
}

store_result store__spend_version(store *s, uint64_t *version)
{
    int64_t v = 0;
    if (!query_int(s, "SELECT value FROM meta WHERE name = 'spend_version'", &v, NULL)) return STORE_ERROR;
    *version = (uint64_t)v;
    return STORE_OK;
}

store_result store_keys_version(store *s, uint64_t *version)
{
    int64_t v = 0;
    if (!query_int(s, "SELECT value FROM meta WHERE name = 'keys_version'", &v, NULL)) return STORE_ERROR;
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

static void row_to_team(sqlite3_stmt *st, store_team *t)
{
    memset(t, 0, sizeof *t);
    t->id = column_text(st, 0);
    t->alias = column_text(st, 1);
    json_list((const char *)sqlite3_column_text(st, 2), STORE_MODELS_MAX, &t->models, &t->nmodels);
    t->max_budget = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 3);
    t->soft_budget = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 4);
    t->budget_duration = sqlite3_column_int64(st, 5);
    t->rpm_limit = sqlite3_column_type(st, 6) == SQLITE_NULL ? STORE_LIMIT_NONE : sqlite3_column_int64(st, 6);
    t->tpm_limit = sqlite3_column_type(st, 7) == SQLITE_NULL ? STORE_LIMIT_NONE : sqlite3_column_int64(st, 7);
    t->blocked = sqlite3_column_int(st, 8) != 0;
    t->metadata = column_text(st, 9);
    if (!t->metadata) t->metadata = xstrdup("{}");
    t->created_at = sqlite3_column_int64(st, 10);
    t->updated_at = sqlite3_column_int64(st, 11);
}

static void bind_team(sqlite3_stmt *st, const store_team *t)
{
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 2, t->alias);
    char *models = json_list_text(t->models, t->nmodels);
    sqlite3_bind_text(st, 3, models, -1, SQLITE_TRANSIENT);
    free(models);
    bind_money(st, 4, t->max_budget);
    bind_money(st, 5, t->soft_budget);
    bind_limit(st, 6, t->budget_duration > 0 ? t->budget_duration : -1);
    bind_limit(st, 7, t->rpm_limit);
    bind_limit(st, 8, t->tpm_limit);
    sqlite3_bind_int(st, 9, t->blocked);
    sqlite3_bind_text(st, 10, t->metadata ? t->metadata : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 11, t->created_at);
    sqlite3_bind_int64(st, 12, t->updated_at);
}

store_result store_team_insert(store *s, const store_team *t)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO teams (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", team_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    bind_team(st, t);
    return write_one(s, st);
}

store_result store_team_update(store *s, const store_team *t)
{
    sqlite3_stmt *st =
        prepare(s, "UPDATE teams SET alias = ?2, models = ?3, max_budget = ?4, soft_budget = ?5, "
                   "budget_duration = ?6, rpm_limit = ?7, tpm_limit = ?8, blocked = ?9, "
                   "metadata = ?10, created_at = ?11, updated_at = ?12 WHERE id = ?1");
    if (!st) return STORE_ERROR;
    bind_team(st, t);
    return write_one(s, st);
}

store_result store_team_delete(store *s, const char *id)
{
    sqlite3_stmt *st = prepare(s, "DELETE FROM teams WHERE id = ?1");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return write_one(s, st);
}

store_result store_team_get(store *s, const char *ref, store_team *out)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM teams WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC LIMIT 1", team_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        row_to_team(st, out);
        r = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return r;
}

store_result store_teams_each(store *s, void (*fn)(const store_team *t, void *ud), void *ud)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM teams ORDER BY created_at, id", team_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_team t;
        row_to_team(st, &t);
        fn(&t, ud);
        store_team_clear(&t);
    }
    store_result r = rc == SQLITE_DONE ? STORE_OK : set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return r;
}

/* ---- spend -------------------------------------------------------------------------------------- */

int64_t budget_period_start(int64_t duration, int64_t t)
{
    if (duration <= 0) return 0;
    return t - (t % duration + duration) % duration;
}

store_result store_spend_write(store *s, const spend_batch *b)
{
    sqlite3_stmt *row = prepare(
        s,
        "INSERT INTO spend_hourly (hour, key_id, team_id, model, requests, prompt_tokens, completion_tokens, "
        "cached_tokens, reasoning_tokens, cost_usd) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
        "ON CONFLICT (hour, key_id, team_id, model) DO UPDATE SET requests = requests + excluded.requests, "
        "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens, "
        "cached_tokens = cached_tokens + excluded.cached_tokens, "
        "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, "
        "cost_usd = cost_usd + excluded.cost_usd");
    /* the period is the one of the owner's budget_duration as stored now; none: period 0 */
    static const char delta_sql[] =
        "INSERT INTO budget_spend (kind, id, period_start, spend) VALUES (?1, ?2, COALESCE((SELECT ?3 - ?3 "
        "%% "
        "budget_duration FROM %s WHERE id = ?2 AND budget_duration > 0), 0), ?4) ON CONFLICT (kind, id) DO "
        "UPDATE SET spend = CASE WHEN period_start = excluded.period_start THEN spend + excluded.spend ELSE "
        "excluded.spend END, period_start = excluded.period_start";
    char sql[512];
    snprintf(sql, sizeof sql, delta_sql, "keys");
    sqlite3_stmt *key_delta = row ? prepare(s, sql) : NULL;
    snprintf(sql, sizeof sql, delta_sql, "teams");
    sqlite3_stmt *team_delta = key_delta ? prepare(s, sql) : NULL;
    sqlite3_stmt *delta = team_delta;
    if (!delta || !exec(s, "BEGIN IMMEDIATE")) {
        sqlite3_finalize(row);
        sqlite3_finalize(key_delta);
        sqlite3_finalize(team_delta);
        return STORE_ERROR;
    }
    store_result r = STORE_OK;
    for (size_t i = 0; i < b->nrows && r == STORE_OK; i++) {
        const spend_row *w = &b->rows[i];
        sqlite3_reset(row);
        sqlite3_bind_int64(row, 1, w->hour);
        sqlite3_bind_text(row, 2, w->key_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(row, 3, w->team_id ? w->team_id : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(row, 4, w->model ? w->model : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(row, 5, w->requests);
        sqlite3_bind_int64(row, 6, w->prompt_tokens);
        sqlite3_bind_int64(row, 7, w->completion_tokens);
        sqlite3_bind_int64(row, 8, w->cached_tokens);
        sqlite3_bind_int64(row, 9, w->reasoning_tokens);
        sqlite3_bind_double(row, 10, w->cost_usd);
        if (sqlite3_step(row) != SQLITE_DONE) r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    }
    for (size_t i = 0; i < b->ndeltas && r == STORE_OK; i++) {
        const budget_delta *d = &b->deltas[i];
        char kind[2] = {d->kind, 0};
        delta = d->kind == 't' ? team_delta : key_delta;
        sqlite3_reset(delta);
        sqlite3_bind_text(delta, 1, kind, 1, SQLITE_TRANSIENT);
        sqlite3_bind_text(delta, 2, d->id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(delta, 3, b->now);
        sqlite3_bind_double(delta, 4, d->cost_usd);
        if (sqlite3_step(delta) != SQLITE_DONE) r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(row);
    sqlite3_finalize(key_delta);
    sqlite3_finalize(team_delta);
    /* its own counter: another instance sharing the store reloads budgets only when it moved */
    if (r == STORE_OK && !exec(s, "UPDATE meta SET value = value + 1 WHERE name = 'spend_version'"))
        r = STORE_ERROR;
    if (r == STORE_OK && exec(s, "COMMIT")) return STORE_OK;
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return STORE_ERROR;
}

store_result store_budget_spend(store *s, char kind, const char *id, int64_t duration, int64_t now,
                                double *spend)
{
    *spend = 0;
    sqlite3_stmt *st =
        prepare(s, "SELECT spend FROM budget_spend WHERE kind = ?1 AND id = ?2 AND period_start = ?3");
    if (!st) return STORE_ERROR;
    char k[2] = {kind, 0};
    sqlite3_bind_text(st, 1, k, 1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, budget_period_start(duration, now));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *spend = sqlite3_column_double(st, 0);
    store_result r = rc == SQLITE_ROW || rc == SQLITE_DONE
                         ? STORE_OK
                         : set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return r;
}

store_result store__budget_spend_each(
    store *s, void (*fn)(char kind, const char *id, int64_t start, double spend, void *ud), void *ud)
{
    sqlite3_stmt *st = prepare(s, "SELECT kind, id, period_start, spend FROM budget_spend ORDER BY kind, id");
    if (!st) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if (kind && id) fn(kind[0], id, sqlite3_column_int64(st, 2), sqlite3_column_double(st, 3), ud);
    }
    store_result r = rc == SQLITE_DONE ? STORE_OK : set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return r;
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
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, min(hour), sum(requests), sum(prompt_tokens), sum(completion_tokens), "
             "sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd) FROM spend_hourly "
             "WHERE hour >= ?1 AND (?2 = 0 OR hour < ?2) GROUP BY g ORDER BY %s",
             expr, !strcmp(by, "day") || !strcmp(by, "hour") ? "min(hour)" : "sum(cost_usd) DESC, g");
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *g = (const char *)sqlite3_column_text(st, 0);
        spend_row t = {.hour = sqlite3_column_int64(st, 1),
                       .requests = sqlite3_column_int64(st, 2),
                       .prompt_tokens = sqlite3_column_int64(st, 3),
                       .completion_tokens = sqlite3_column_int64(st, 4),
                       .cached_tokens = sqlite3_column_int64(st, 5),
                       .reasoning_tokens = sqlite3_column_int64(st, 6),
                       .cost_usd = sqlite3_column_double(st, 7)};
        fn(g ? g : "", &t, ud);
    }
    store_result r = rc == SQLITE_DONE ? STORE_OK : set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return r;
}
