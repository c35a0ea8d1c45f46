/* store_sqlite.c — the store (store.h) in one SQLite file: WAL, numbered migrations, the
 * gateway keys' and the virtual keys' rows.
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
 * names). A virtual key's row holds its secret only sealed (vault.h: nonce and ciphertext in
 * two BLOBs); sealing and opening happen here, on the store's thread, with the vault key the
 * owner set (store_set_vault). Spend (per key, team, model, hour and day) and teams come as
 * further migrations in later slices — the schema grows, it is not rewritten. The same schema is what
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

#include <sodium.h>

#include "util/alloc.h"

struct store {
    sqlite3 *db;
    char *path;
    int version;
    bool has_vault;
    vault_key vault;
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
    /* 2: virtual keys (provider credentials, sealed) and the ones a gateway key may use */
    "CREATE TABLE virtual_keys ("
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
    for (size_t i = 0; i < k->nvirtual_keys; i++)
        free(k->virtual_keys[i]);
    free(k->virtual_keys);
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
    sodium_memzero(&s->vault, sizeof s->vault);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* ---- rows ----------------------------------------------------------------------------------- */

static const char key_columns[] =
    "id, digest, hint, alias, enabled, expires_at, models, team_id, user_id, tags, metadata, max_budget, "
    "rpm_limit, tpm_limit, created_at, updated_at, virtual_keys";

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
    json_list((const char *)sqlite3_column_text(st, 16), STORE_VKEYS_MAX, &k->virtual_keys,
              &k->nvirtual_keys);
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
    char *vkeys = json_list_text(k->virtual_keys, k->nvirtual_keys);
    sqlite3_bind_text(st, 17, vkeys, -1, SQLITE_TRANSIENT);
    free(vkeys);
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
    snprintf(sql, sizeof sql, "INSERT INTO keys (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             key_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    bind_key(st, k);
    return write_one(s, st);
}

store_result store_key_update(store *s, const store_key *k)
{
    sqlite3_stmt *st =
        prepare(s, "UPDATE keys SET id = ?1, digest = ?2, hint = ?3, alias = ?4, enabled = ?5, "
                   "expires_at = ?6, models = ?7, team_id = ?8, user_id = ?9, tags = ?10, "
                   "metadata = ?11, max_budget = ?12, rpm_limit = ?13, tpm_limit = ?14, "
                   "created_at = ?15, updated_at = ?16, virtual_keys = ?17 WHERE id = ?1");
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

store_result store_keys_version(store *s, uint64_t *version)
{
    int64_t v = 0;
    if (!query_int(s, "SELECT value FROM meta WHERE name = 'keys_version'", &v, NULL)) return STORE_ERROR;
    *version = (uint64_t)v;
    return STORE_OK;
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

static void row_to_vkey(sqlite3_stmt *st, store_vkey *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", (const char *)sqlite3_column_text(st, 0));
    v->provider = column_text(st, 1);
    if (!v->provider) v->provider = xstrdup("");
    v->base_url = column_text(st, 2);
    const unsigned char *hint = sqlite3_column_text(st, 3);
    snprintf(v->hint, sizeof v->hint, "%s", hint ? (const char *)hint : "");
    v->version = sqlite3_column_int64(st, 4);
    v->created_at = sqlite3_column_int64(st, 5);
    v->updated_at = sqlite3_column_int64(st, 6);
}

/* Binds nonce (?n) and the sealed secret (?n+1) and the hint (?n+2). */
static bool bind_sealed(store *s, sqlite3_stmt *st, int n, const store_vkey *v)
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
    sqlite3_bind_blob(st, n, nonce, sizeof nonce, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, n + 1, sealed, (int)(v->secret_len + VAULT_MAC_BYTES), SQLITE_TRANSIENT);
    free(sealed);
    char hint[16];
    vault_hint(v->secret, v->secret_len, hint);
    sqlite3_bind_text(st, n + 2, hint, -1, SQLITE_TRANSIENT);
    return true;
}

store_result store_vkey_insert(store *s, const store_vkey *v)
{
    sqlite3_stmt *st =
        prepare(s, "INSERT INTO virtual_keys (name, provider, base_url, nonce, sealed, hint, "
                   "version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, v->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, v->provider, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 3, v->base_url);
    if (!bind_sealed(s, st, 4, v)) {
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(st, 7, v->created_at);
    sqlite3_bind_int64(st, 8, v->updated_at);
    return write_one(s, st);
}

store_result store_vkey_update(store *s, const store_vkey *v)
{
    sqlite3_stmt *st =
        v->secret
            ? prepare(s, "UPDATE virtual_keys SET provider = ?2, base_url = ?3, nonce = ?4, sealed = ?5, "
                         "hint = ?6, version = version + 1, updated_at = ?7 WHERE name = ?1")
            : prepare(s, "UPDATE virtual_keys SET provider = ?2, base_url = ?3, updated_at = ?7 "
                         "WHERE name = ?1");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, v->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, v->provider, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 3, v->base_url);
    if (v->secret && !bind_sealed(s, st, 4, v)) {
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(st, 7, v->updated_at);
    return write_one(s, st);
}

store_result store_vkey_delete(store *s, const char *name)
{
    sqlite3_stmt *st = prepare(s, "DELETE FROM virtual_keys WHERE name = ?1");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    return write_one(s, st);
}

store_result store_vkey_get(store *s, const char *name, store_vkey *out)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM virtual_keys WHERE name = ?1", vkey_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    store_result r = STORE_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        row_to_vkey(st, out);
        r = STORE_OK;
    } else if (rc != SQLITE_DONE) {
        r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return r;
}

/* Every row, by name; open: with its secret opened. A secret that does not open ends the walk,
 * or — with unopened — leaves its row out and is counted there. */
static store_result vkeys_walk(store *s, bool open, void (*fn)(const store_vkey *v, void *ud), void *ud,
                               size_t *unopened)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s, nonce, sealed FROM virtual_keys ORDER BY name", vkey_columns);
    sqlite3_stmt *st = prepare(s, sql);
    if (!st) return STORE_ERROR;
    int rc;
    store_result r = STORE_OK;
    char *plain = open ? xmalloc(VAULT_SECRET_MAX + 1) : NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_vkey v;
        row_to_vkey(st, &v);
        if (open) {
            const void *nonce = sqlite3_column_blob(st, 7), *sealed = sqlite3_column_blob(st, 8);
            int sealed_len = sqlite3_column_bytes(st, 8);
            if (!s->has_vault) {
                r = set_error(
                    s,
                    "%s holds encrypted virtual keys (`%.64s` and maybe more) but no vault key is "
                    "configured: set auth.vault_key (e.g. ${AIGW_VAULT_KEY}) or auth.vault_key_file "
                    "to the key they were written with",
                    s->path, v.name);
            } else if (!nonce || sqlite3_column_bytes(st, 7) != VAULT_NONCE_BYTES || !sealed ||
                       sealed_len < VAULT_MAC_BYTES || sealed_len - VAULT_MAC_BYTES > VAULT_SECRET_MAX ||
                       !vault_open(&s->vault, v.name, nonce, sealed, (size_t)sealed_len, plain)) {
                r = set_error(s,
                              "the vault key cannot decrypt the virtual key `%.64s` in %s: it is not the key "
                              "the virtual keys were written with (or the row was changed)",
                              v.name, s->path);
            } else {
                v.secret_len = (size_t)sealed_len - VAULT_MAC_BYTES;
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
    if (r == STORE_OK && rc != SQLITE_DONE) r = set_error(s, "%s: %s", s->path, sqlite3_errmsg(s->db));
    free(plain);
    sqlite3_finalize(st);
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
