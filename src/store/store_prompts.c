/* store_prompts.c — prompt templates and partials in the store (store.h): immutable numbered
 * versions and movable labels, on the SQL driver of db.h (both dialects), and their part of the
 * key snapshot.
 *
 * A version is written once and never changed (experiments and request logs name it, so what
 * it meant must not move); a new text is a new number, taken as MAX+1 inside the write
 * transaction — BEGIN IMMEDIATE on SQLite, and on PostgreSQL the primary key refuses the second
 * of two racing writers, which is answered as a conflict for its caller to retry. A label is a
 * row per (kind, id, label) whose split lists versions and weights; moving it (a promotion) is
 * one upsert. Every write bumps keys_version, so the key snapshot — and through it every
 * worker — sees it within one poll; prompts change rarely, so reloading the snapshot with them
 * costs nothing the request path feels. Rejected: a snapshot of its own with its own counter
 * (a second publication path to every worker for the same rarity of change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/db.h"
#include "store/store.h"
#include "util/alloc.h"

static const char kind_text[2][2] = {"t", "p"};

static const char *kind_str(char kind)
{
    return kind == 'p' ? kind_text[1] : kind_text[0];
}

store_result store_prompt_add(store *s, char kind, const char *id, const char *body, int64_t now,
                              int64_t *version)
{
    db *d = store__db(s);
    if (!db_begin_write(d)) return store__db_failed(s);
    db_stmt *st = db_prepare(d, "SELECT MAX(version) FROM prompt_versions WHERE kind = ? AND id = ?");
    if (!st) goto failed;
    db_bind_text(st, 1, kind_str(kind));
    db_bind_text(st, 2, id);
    db_status r = db_step(st);
    if (r != DB_ROW) {
        db_finalize(st);
        goto failed;
    }
    int64_t next = db_column_is_null(st, 0) ? 1 : db_column_int64(st, 0) + 1;
    db_finalize(st);
    st = db_prepare(
        d, "INSERT INTO prompt_versions (kind, id, version, body, created_at) VALUES (?, ?, ?, ?, ?)");
    if (!st) goto failed;
    db_bind_text(st, 1, kind_str(kind));
    db_bind_text(st, 2, id);
    db_bind_int64(st, 3, next);
    db_bind_text(st, 4, body);
    db_bind_int64(st, 5, now);
    r = db_step(st);
    db_finalize(st);
    if (r == DB_CONFLICT) {
        db_rollback(d);
        return STORE_CONFLICT;
    }
    if (r != DB_DONE || !store__bump_version(s) || !db_commit(d)) goto failed;
    *version = next;
    return STORE_OK;
failed:
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

/* Whether every version split names exists. */
static store_result split_versions_exist(store *s, char kind, const char *id, const char *split)
{
    json_t *j = json_loads(split, 0, NULL);
    size_t i;
    json_t *e;
    store_result res = STORE_OK;
    json_array_foreach(j, i, e)
    {
        db_stmt *st = db_prepare(store__db(s),
                                 "SELECT 1 FROM prompt_versions WHERE kind = ? AND id = ? AND version = ?");
        if (!st) {
            res = store__db_failed(s);
            break;
        }
        db_bind_text(st, 1, kind_str(kind));
        db_bind_text(st, 2, id);
        db_bind_int64(st, 3, json_integer_value(json_object_get(e, "version")));
        db_status r = db_step(st);
        db_finalize(st);
        if (r == DB_FAILED) {
            res = store__db_failed(s);
            break;
        }
        if (r != DB_ROW) {
            store__fail(s, "version %lld of %.256s does not exist",
                        (long long)json_integer_value(json_object_get(e, "version")), id);
            res = STORE_NOT_FOUND;
            break;
        }
    }
    json_decref(j);
    return res;
}

store_result store_prompt_label_set(store *s, char kind, const char *id, const char *label, const char *split,
                                    int64_t now)
{
    db *d = store__db(s);
    if (!db_begin_write(d)) return store__db_failed(s);
    store_result res = split_versions_exist(s, kind, id, split);
    if (res != STORE_OK) {
        db_rollback(d);
        return res;
    }
    /* an upsert both dialects read the same way */
    db_stmt *st =
        db_prepare(d, "INSERT INTO prompt_labels (kind, id, label, split, updated_at) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (kind, id, label) DO UPDATE SET split = excluded.split, "
                      "updated_at = excluded.updated_at");
    if (!st) goto failed;
    db_bind_text(st, 1, kind_str(kind));
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, label);
    db_bind_text(st, 4, split);
    db_bind_int64(st, 5, now);
    db_status r = db_step(st);
    db_finalize(st);
    if (r != DB_DONE || !store__bump_version(s) || !db_commit(d)) goto failed;
    return STORE_OK;
failed:
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

store_result store_prompt_label_delete(store *s, char kind, const char *id, const char *label)
{
    db *d = store__db(s);
    if (!db_begin_write(d)) return store__db_failed(s);
    db_stmt *st = db_prepare(d, "DELETE FROM prompt_labels WHERE kind = ? AND id = ? AND label = ?");
    if (!st) goto failed;
    db_bind_text(st, 1, kind_str(kind));
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, label);
    db_status r = db_step(st);
    int64_t changed = db_changes(st);
    db_finalize(st);
    if (r != DB_DONE) goto failed;
    if (!changed) {
        db_rollback(d);
        return STORE_NOT_FOUND;
    }
    if (!store__bump_version(s) || !db_commit(d)) goto failed;
    return STORE_OK;
failed:
    store__db_failed(s);
    db_rollback(d);
    return STORE_ERROR;
}

/* "WHERE …" for the optional kind and id; binds from 1. */
static db_stmt *prepare_filtered(store *s, const char *select, const char *order, char kind, const char *id)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%s WHERE (? = '' OR kind = ?) AND (? = '' OR id = ?) ORDER BY %s", select,
             order);
    db_stmt *st = db_prepare(store__db(s), sql);
    if (!st) return NULL;
    const char *k = kind ? kind_str(kind) : "";
    db_bind_text(st, 1, k);
    db_bind_text(st, 2, k);
    db_bind_text(st, 3, id ? id : "");
    db_bind_text(st, 4, id ? id : "");
    return st;
}

store_result store_prompt_versions_each(store *s, char kind, const char *id,
                                        void (*fn)(const store_prompt_version *v, void *ud), void *ud)
{
    db_stmt *st = prepare_filtered(s, "SELECT kind, id, version, body, created_at FROM prompt_versions",
                                   "kind, id, version", kind, id);
    if (!st) return store__db_failed(s);
    db_status r;
    while ((r = db_step(st)) == DB_ROW) {
        store_prompt_version v = {
            .kind = db_column_text(st, 0)[0],
            .id = (char *)db_column_text(st, 1),
            .version = db_column_int64(st, 2),
            .body = (char *)db_column_text(st, 3),
            .created_at = db_column_int64(st, 4),
        };
        fn(&v, ud);
    }
    db_finalize(st);
    return r == DB_DONE ? STORE_OK : store__db_failed(s);
}

store_result store_prompt_version_get(store *s, char kind, const char *id, int64_t version, char **body)
{
    *body = NULL;
    db_stmt *st = db_prepare(store__db(s),
                             "SELECT body FROM prompt_versions WHERE kind = ? AND id = ? AND version = ?");
    if (!st) return store__db_failed(s);
    db_bind_text(st, 1, kind_str(kind));
    db_bind_text(st, 2, id);
    db_bind_int64(st, 3, version);
    db_status r = db_step(st);
    if (r == DB_ROW) *body = xstrdup(db_column_text(st, 0));
    db_finalize(st);
    if (r == DB_ROW) return STORE_OK;
    return r == DB_DONE ? STORE_NOT_FOUND : store__db_failed(s);
}

store_result store_prompt_labels_each(store *s, char kind, const char *id,
                                      void (*fn)(const store_prompt_label *l, void *ud), void *ud)
{
    db_stmt *st = prepare_filtered(s, "SELECT kind, id, label, split, updated_at FROM prompt_labels",
                                   "kind, id, label", kind, id);
    if (!st) return store__db_failed(s);
    db_status r;
    while ((r = db_step(st)) == DB_ROW) {
        store_prompt_label l = {
            .kind = db_column_text(st, 0)[0],
            .id = (char *)db_column_text(st, 1),
            .label = (char *)db_column_text(st, 2),
            .split = (char *)db_column_text(st, 3),
            .updated_at = db_column_int64(st, 4),
        };
        fn(&l, ud);
    }
    db_finalize(st);
    return r == DB_DONE ? STORE_OK : store__db_failed(s);
}
