/* test_store.c — the store on SQLite and the key snapshot: migrations on a new file and
 * again on an existing one (and from the first slice's schema, keys kept), refusals (a damaged
 * file, another program's database, a newer schema), keys written and found by id, alias and
 * digest, a disabled key seen as such by the snapshot, the plaintext key nowhere in the files,
 * the service handing a subscriber a new snapshot after a write; rate limits per day and per
 * model read back and copied into the snapshot; teams written, found and in
 * the snapshot; spend added up per hour and grouped, budget periods that reset, and the spend
 * snapshot a flush publishes. */
#include "../../src/store/store.c" /* first: cmocka defines a fail() macro */

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "access/access.h"

static char dir[256];

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/aigw-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_true(access_init());
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static store *open_ok(const char *name)
{
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, name);
    store *s = store_open(path, err, sizeof err);
    if (!s) fail_msg("store_open %s: %s", path, err);
    return s;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[512];
    path_in_dir(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static const access_secret test_secret = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};

/* A key as the admin API makes one; the plaintext into text. */
static void make_key(store_key *k, char text[ACCESS_KEY_LEN + 1], const char *alias, const char *model)
{
    memset(k, 0, sizeof *k);
    access_key_generate(text);
    access_key_new_id(k->id);
    access_key_digest(&test_secret, text, strlen(text), k->digest);
    access_key_hint(text, strlen(text), k->hint);
    k->alias = alias ? xstrdup(alias) : NULL;
    k->enabled = true;
    if (model) {
        k->models = xcalloc(1, sizeof *k->models);
        k->models[0] = xstrdup(model);
        k->nmodels = 1;
    }
    k->team = xstrdup("search");
    k->metadata = xstrdup("{\"owner\":\"ops\"}");
    k->max_budget = k->soft_budget = -1;
    k->rpm_limit = k->tpm_limit = k->rpd_limit = k->tpd_limit = STORE_LIMIT_NONE;
    k->created_at = k->updated_at = 1700000000;
}

static void test_migrations(void **state)
{
    store *s = open_ok("m.db");
    assert_int_equal(store_schema_version(s), NMIGRATIONS);
    uint64_t v = 99;
    assert_int_equal(store_keys_version(s, &v), STORE_OK);
    assert_int_equal(v, 0);
    store_close(s);
    /* again: nothing to apply, same version */
    s = open_ok("m.db");
    assert_int_equal(store_schema_version(s), NMIGRATIONS);
    int64_t applied = 0;
    assert_true(query_int(s, "SELECT version FROM schema_version", NULL, &applied, NULL));
    assert_int_equal(applied, NMIGRATIONS);
    /* WAL, as promised */
    db_stmt *st = db_prepare(s->db, "PRAGMA journal_mode");
    assert_non_null(st);
    assert_int_equal(db_step(st), DB_ROW);
    assert_string_equal(db_column_text(st, 0), "wal");
    db_finalize(st);
    store_close(s);
}

static void test_refusals(void **state)
{
    char path[512], err[1024];
    /* a damaged file: bytes that are not SQLite's */
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_file("damaged.db", junk, sizeof junk);
    path_in_dir(path, sizeof path, "damaged.db");
    assert_null(store_open(path, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "damaged or not an aigw store"));

    /* another program's database */
    path_in_dir(path, sizeof path, "other.db");
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "CREATE TABLE songs (title TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_null(store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "not an aigw store"));

    /* a newer aigw's */
    store *s = open_ok("newer.db");
    assert_true(exec(s, "UPDATE schema_version SET version = 999"));
    store_close(s);
    path_in_dir(path, sizeof path, "newer.db");
    assert_null(store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "newer aigw (schema version 999"));

    /* a folder that does not exist */
    assert_null(store_open("/nonexistent-aigw-dir/x.db", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-aigw-dir/x.db"));
}

static void test_keys(void **state)
{
    store *s = open_ok("k.db");
    store_key k, got;
    char text[ACCESS_KEY_LEN + 1];
    make_key(&k, text, "ci-bot", "gpt-*");
    assert_int_equal(strlen(text), ACCESS_KEY_LEN);
    assert_memory_equal(text, "aigw-", 5);
    assert_int_equal(store_key_insert(s, &k), STORE_OK);

    assert_int_equal(store_key_get(s, k.id, &got), STORE_OK);
    assert_string_equal(got.alias, "ci-bot");
    assert_int_equal(got.nmodels, 1);
    assert_string_equal(got.models[0], "gpt-*");
    assert_string_equal(got.team, "search");
    assert_true(got.enabled);
    assert_true(got.max_budget < 0);
    assert_int_equal(got.rpm_limit, STORE_LIMIT_NONE);
    assert_memory_equal(got.digest, k.digest, STORE_DIGEST_BYTES);
    store_key_clear(&got);
    assert_int_equal(store_key_get(s, "ci-bot", &got), STORE_OK);
    assert_string_equal(got.id, k.id);
    store_key_clear(&got);
    assert_int_equal(store_key_get_by_digest(s, k.digest, &got), STORE_OK);
    assert_string_equal(got.id, k.id);
    store_key_clear(&got);
    assert_int_equal(store_key_get(s, "nobody", &got), STORE_NOT_FOUND);

    /* the alias is unique */
    store_key again;
    char text2[ACCESS_KEY_LEN + 1];
    make_key(&again, text2, "ci-bot", NULL);
    assert_int_equal(store_key_insert(s, &again), STORE_CONFLICT);

    /* the digest is not the key, and no file holds the key */
    assert_true(memcmp(k.digest, text, STORE_DIGEST_BYTES) != 0);
    uint64_t v1;
    assert_int_equal(store_keys_version(s, &v1), STORE_OK);
    assert_int_equal(v1, 1);

    /* the snapshot finds it by digest; disabling it is seen by the next snapshot */
    char err[512];
    key_snapshot *snap = key_snapshot_load(s, false, err, sizeof err);
    assert_non_null(snap);
    uint8_t digest[STORE_DIGEST_BYTES];
    access_key_digest(&test_secret, text, strlen(text), digest);
    const store_key *found = access_key_find(snap, digest);
    assert_non_null(found);
    assert_int_equal(access_key_state(found, 1700000001), ACCESS_OK);
    assert_true(access_model_allowed(found, "gpt-4o", 6));
    assert_false(access_model_allowed(found, "claude-3", 8));
    digest[0] ^= 1;
    assert_null(access_key_find(snap, digest));
    key_snapshot_release(snap);

    k.enabled = false;
    k.expires_at = 1700000100;
    assert_int_equal(store_key_update(s, &k), STORE_OK);
    snap = key_snapshot_load(s, false, err, sizeof err);
    access_key_digest(&test_secret, text, strlen(text), digest);
    found = access_key_find(snap, digest);
    assert_non_null(found);
    assert_int_equal(access_key_state(found, 1700000001), ACCESS_DISABLED);
    assert_int_equal(snap->version, 2);
    key_snapshot_release(snap);

    /* expired */
    k.enabled = true;
    assert_int_equal(store_key_update(s, &k), STORE_OK);
    assert_int_equal(store_key_get(s, k.id, &got), STORE_OK);
    assert_int_equal(access_key_state(&got, 1700000100), ACCESS_EXPIRED);
    store_key_clear(&got);

    store_close(s);
    char path[512];
    const char *files[] = {"k.db", "k.db-wal"};
    for (size_t f = 0; f < 2; f++) {
        path_in_dir(path, sizeof path, files[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue; /* the WAL is folded in at close */
        static char data[1 << 20];
        size_t n = fread(data, 1, sizeof data, fp);
        fclose(fp);
        assert_null(memmem(data, n, text, strlen(text)));
        assert_null(memmem(data, n, text + 5, 16)); /* not even a part of it */
        assert_non_null(memmem(data, n, "ci-bot", 6));
    }

    s = open_ok("k.db");
    assert_int_equal(store_key_delete(s, k.id), STORE_OK);
    assert_int_equal(store_key_delete(s, k.id), STORE_NOT_FOUND);
    store_close(s);
    store_key_clear(&k);
    store_key_clear(&again);
}

typedef struct published {
    pthread_mutex_t lock;
    key_snapshot *last;
    int count;
} published;

static void on_publish(void *ud, key_snapshot *snap)
{
    published *p = ud;
    pthread_mutex_lock(&p->lock);
    key_snapshot_release(p->last);
    p->last = snap;
    p->count++;
    pthread_mutex_unlock(&p->lock);
}

static void insert_job(store *s, void *arg)
{
    assert_int_equal(store_key_insert(s, arg), STORE_OK);
}

/* What then() sees: the subscriber's last snapshot and the service's, when it ran. */
typedef struct after_write {
    published *p;
    store_service *svc;
    size_t subscriber_keys, service_keys;
    atomic_bool ran;
} after_write;

static void after_insert(void *arg)
{
    after_write *a = arg;
    pthread_mutex_lock(&a->p->lock);
    a->subscriber_keys = a->p->last ? a->p->last->nkeys : 0;
    pthread_mutex_unlock(&a->p->lock);
    key_snapshot *snap = store_service_snapshot(a->svc);
    a->service_keys = snap->nkeys;
    key_snapshot_release(snap);
    atomic_store(&a->ran, true);
}

static void insert_job_then(store *s, void *arg)
{
    (void)arg;
    store_key k;
    char text[ACCESS_KEY_LEN + 1];
    make_key(&k, text, "three", NULL);
    assert_int_equal(store_key_insert(s, &k), STORE_OK);
    store_key_clear(&k);
}

/* A write through the service reaches a subscriber at once; a write by another connection
 * (another process) within a poll; a job's then() runs after its write was published (the
 * admin API answers from there, so a client's next request sees its own write). */
static void test_service(void **state)
{
    char err[512];
    store_service *svc = store_service_start(open_ok("svc.db"), err, sizeof err);
    assert_non_null(svc);
    published p = {.lock = PTHREAD_MUTEX_INITIALIZER};
    store_subscriber sub = {.publish = on_publish, .ud = &p};
    store_service_subscribe(svc, &sub);
    store_key k;
    char text[ACCESS_KEY_LEN + 1];
    make_key(&k, text, "one", NULL);
    assert_true(store_service_submit(svc, insert_job, &k));
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&p.lock);
        bool seen = p.last && p.last->nkeys == 1;
        pthread_mutex_unlock(&p.lock);
        if (seen) break;
        usleep(10000);
    }
    key_snapshot *snap = store_service_snapshot(svc);
    assert_int_equal(snap->nkeys, 1);
    key_snapshot_release(snap);

    store *other = open_ok("svc.db");
    store_key k2;
    char text2[ACCESS_KEY_LEN + 1];
    make_key(&k2, text2, "two", NULL);
    assert_int_equal(store_key_insert(other, &k2), STORE_OK);
    store_close(other);
    bool seen = false;
    for (int i = 0; i < 300 && !seen; i++) { /* within 3 s */
        usleep(10000);
        pthread_mutex_lock(&p.lock);
        seen = p.last && p.last->nkeys == 2;
        pthread_mutex_unlock(&p.lock);
    }
    assert_true(seen);

    after_write a = {.p = &p, .svc = svc};
    assert_true(store_service_submit_then(svc, insert_job_then, after_insert, &a));
    for (int i = 0; i < 300 && !atomic_load(&a.ran); i++) /* within 3 s */
        usleep(10000);
    assert_true(atomic_load(&a.ran));
    store_service_unsubscribe(svc, &sub);
    store_service_stop(svc);
    assert_int_equal(a.subscriber_keys, 3);
    assert_int_equal(a.service_keys, 3);
    key_snapshot_release(p.last);
    store_key_clear(&k);
    store_key_clear(&k2);
}

/* The default secret file: made 0600, read back the same; one readable by others refused. */
static void test_secret_file(void **state)
{
    char store_path[512], secret_path[600], err[512];
    path_in_dir(store_path, sizeof store_path, "s.db");
    auth_settings auth = {.mode = AUTH_ON, .store_path = store_path};
    access_secret a, b;
    assert_true(access_secret_load(&auth, &a, err, sizeof err));
    assert_true(access_secret_load(&auth, &b, err, sizeof err));
    assert_memory_equal(a.bytes, b.bytes, sizeof a.bytes);
    access_secret_default_path(store_path, secret_path, sizeof secret_path);
    struct stat st;
    assert_int_equal(stat(secret_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    chmod(secret_path, 0644);
    assert_false(access_secret_load(&auth, &a, err, sizeof err));
    assert_non_null(strstr(err, "chmod 600"));
    auth.secret = "a-secret-of-twenty-chars";
    assert_true(access_secret_load(&auth, &a, err, sizeof err));
    assert_true(memcmp(a.bytes, b.bytes, sizeof a.bytes) != 0);
}

/* A file made by the first slice (schema version 1, a key in it) gains the spend slice's tables
 * and columns and the limits slice's columns; the key reads back with no soft budget, no budget
 * period, and no limits per day or per model. */
static void test_migrate_from_version_1(void **state)
{
    char path[512];
    path_in_dir(path, sizeof path, "v1.db");
    sqlite3 *file;
    assert_int_equal(sqlite3_open(path, &file), SQLITE_OK);
    char sql[4096];
    snprintf(
        sql, sizeof sql,
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1); %s;"
        "INSERT INTO keys (id, digest, hint, created_at, updated_at, max_budget) "
        "VALUES ('key_old', x'00', 'aigw-...abcd', 1, 1, 2.5);",
        migrations[0].sql);
    assert_int_equal(sqlite3_exec(file, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(file);
    store *s = open_ok("v1.db");
    assert_int_equal(store_schema_version(s), NMIGRATIONS);
    store_key k;
    assert_int_equal(store_key_get(s, "key_old", &k), STORE_OK);
    assert_true(k.max_budget == 2.5);
    assert_true(k.soft_budget < 0);
    assert_int_equal(k.budget_duration, 0);
    assert_int_equal(k.rpd_limit, STORE_LIMIT_NONE);
    assert_int_equal(k.tpd_limit, STORE_LIMIT_NONE);
    assert_int_equal(k.nmodel_limits, 0);
    store_key_clear(&k);
    store_close(s);
}

static void test_rate_limits_round_trip(void **state)
{
    store *s = open_ok("l.db");
    store_key k, got;
    char text[ACCESS_KEY_LEN + 1];
    make_key(&k, text, "limited", NULL);
    k.rpm_limit = 60;
    k.tpd_limit = 1000000;
    k.model_limits = xcalloc(2, sizeof *k.model_limits);
    k.model_limits[0] = (store_model_limit){xstrdup("gpt-4o"), 10, 5000};
    k.model_limits[1] = (store_model_limit){xstrdup("claude"), STORE_LIMIT_NONE, 700};
    k.nmodel_limits = 2;
    /* the virtual keys' column sits between main's and these: each reads back in its place */
    k.virtual_keys = xcalloc(1, sizeof *k.virtual_keys);
    k.virtual_keys[0] = xstrdup("vk-a");
    k.nvirtual_keys = 1;
    assert_int_equal(store_key_insert(s, &k), STORE_OK);
    assert_int_equal(store_key_get(s, k.id, &got), STORE_OK);
    assert_int_equal(got.nvirtual_keys, 1);
    assert_string_equal(got.virtual_keys[0], "vk-a");
    assert_int_equal(got.rpm_limit, 60);
    assert_int_equal(got.tpm_limit, STORE_LIMIT_NONE);
    assert_int_equal(got.rpd_limit, STORE_LIMIT_NONE);
    assert_int_equal(got.tpd_limit, 1000000);
    assert_int_equal(got.nmodel_limits, 2);
    /* merged by model from the two LiteLLM-shaped columns, whatever their order */
    const store_model_limit *gpt =
        strcmp(got.model_limits[0].model, "gpt-4o") ? &got.model_limits[1] : &got.model_limits[0];
    const store_model_limit *claude =
        gpt == &got.model_limits[0] ? &got.model_limits[1] : &got.model_limits[0];
    assert_string_equal(gpt->model, "gpt-4o");
    assert_int_equal(gpt->rpm_limit, 10);
    assert_int_equal(gpt->tpm_limit, 5000);
    assert_string_equal(claude->model, "claude");
    assert_int_equal(claude->rpm_limit, STORE_LIMIT_NONE);
    assert_int_equal(claude->tpm_limit, 700);
    store_key_clear(&got);
    /* an update writes them too: one model's limits dropped, a day's added */
    free(k.model_limits[1].model);
    k.nmodel_limits = 1;
    k.rpd_limit = 2000;
    assert_int_equal(store_key_update(s, &k), STORE_OK);
    assert_int_equal(store_key_get(s, "limited", &got), STORE_OK);
    assert_int_equal(got.rpd_limit, 2000);
    assert_int_equal(got.nmodel_limits, 1);
    assert_string_equal(got.model_limits[0].model, "gpt-4o");
    store_key_clear(&got);
    /* the snapshot copies them */
    char err[256];
    key_snapshot *snap = key_snapshot_load(s, false, err, sizeof err);
    assert_non_null(snap);
    assert_int_equal(snap->nkeys, 1);
    assert_int_equal(snap->keys[0].nmodel_limits, 1);
    assert_int_equal(snap->keys[0].model_limits[0].tpm_limit, 5000);
    key_snapshot_release(snap);
    store_key_clear(&k);
    store_close(s);
}

static void make_team(store_team *t, const char *id, const char *alias)
{
    memset(t, 0, sizeof *t);
    t->id = xstrdup(id);
    t->alias = alias ? xstrdup(alias) : NULL;
    t->models = xcalloc(1, sizeof *t->models);
    t->models[0] = xstrdup("gpt-*");
    t->nmodels = 1;
    t->max_budget = 10;
    t->soft_budget = -1;
    t->budget_duration = 86400;
    t->rpm_limit = 60;
    t->tpm_limit = STORE_LIMIT_NONE;
    t->metadata = xstrdup("{}");
    t->created_at = t->updated_at = 1700000000;
}

static void test_teams(void **state)
{
    store *s = open_ok("teams.db");
    store_team t, u, got;
    make_team(&t, "team-b", "bees");
    make_team(&u, "team-a", NULL);
    uint64_t v0 = 0, v1 = 0;
    assert_int_equal(store_keys_version(s, &v0), STORE_OK);
    assert_int_equal(store_team_insert(s, &t), STORE_OK);
    assert_int_equal(store_team_insert(s, &u), STORE_OK);
    assert_int_equal(store_keys_version(s, &v1), STORE_OK);
    assert_int_equal(v1, v0 + 2); /* a team's policy reaches the workers with the keys */
    assert_int_equal(store_team_insert(s, &t), STORE_CONFLICT);
    assert_int_equal(store_team_get(s, "bees", &got), STORE_OK); /* by alias */
    assert_string_equal(got.id, "team-b");
    assert_int_equal(got.nmodels, 1);
    assert_string_equal(got.models[0], "gpt-*");
    assert_true(got.max_budget == 10 && got.soft_budget < 0);
    assert_int_equal(got.budget_duration, 86400);
    assert_int_equal(got.rpm_limit, 60);
    assert_int_equal(got.tpm_limit, STORE_LIMIT_NONE);
    got.blocked = true;
    got.max_budget = -1;
    assert_int_equal(store_team_update(s, &got), STORE_OK);
    store_team_clear(&got);
    assert_int_equal(store_team_get(s, "team-b", &got), STORE_OK);
    assert_true(got.blocked && got.max_budget < 0);
    store_team_clear(&got);

    char err[256];
    key_snapshot *snap = key_snapshot_load(s, false, err, sizeof err);
    assert_non_null(snap);
    assert_int_equal(snap->nteams, 2);
    assert_string_equal(key_snapshot_team(snap, "team-a")->id, "team-a");
    assert_true(key_snapshot_team(snap, "team-b")->blocked);
    assert_null(key_snapshot_team(snap, "team-c"));
    assert_null(key_snapshot_team(snap, NULL));
    key_snapshot_release(snap);

    assert_int_equal(store_team_delete(s, "team-a"), STORE_OK);
    assert_int_equal(store_team_delete(s, "team-a"), STORE_NOT_FOUND);
    assert_int_equal(store_team_get(s, "team-a", &got), STORE_NOT_FOUND);
    store_team_clear(&t);
    store_team_clear(&u);
    store_close(s);
}

static spend_row row_at(int64_t hour, const char *key, const char *team, const char *model, double cost)
{
    spend_row r = {.hour = hour,
                   .team_id = (char *)team,
                   .model = (char *)model,
                   .requests = 1,
                   .prompt_tokens = 10,
                   .completion_tokens = 5,
                   .cached_tokens = 2,
                   .reasoning_tokens = 1,
                   .cost_usd = cost};
    snprintf(r.key_id, sizeof r.key_id, "%s", key);
    return r;
}

typedef struct groups {
    char names[8][64];
    spend_row totals[8];
    size_t n;
} groups;

static void on_group(const char *group, const spend_row *t, void *ud)
{
    groups *g = ud;
    assert_true(g->n < 8);
    snprintf(g->names[g->n], sizeof g->names[g->n], "%s", group);
    g->totals[g->n++] = *t;
}

static void test_spend(void **state)
{
    store *s = open_ok("spend.db");
    store_key k;
    char text[ACCESS_KEY_LEN + 1];
    make_key(&k, text, "spender", NULL);
    k.budget_duration = 100; /* periods of 100 s: 1000000, 1000100, … */
    assert_int_equal(store_key_insert(s, &k), STORE_OK);
    int64_t h = 1000000 - 1000000 % 3600, day = h - h % 86400;
    spend_row rows[] = {row_at(h, k.id, "search", "m1", 0.25), row_at(h, k.id, "search", "m2", 0.5),
                        row_at(h + 3600, "master", "", "m1", 1)};
    budget_delta deltas[] = {{'k', k.id, 0.75}, {'t', "search", 0.75}};
    spend_batch b = {
        .worker = 0, .seq = 1, .now = 1000005, .rows = rows, .nrows = 3, .deltas = deltas, .ndeltas = 2};
    assert_int_equal(store_spend_write(s, &b), STORE_OK);
    b.now = 1000099; /* the same period: added */
    assert_int_equal(store_spend_write(s, &b), STORE_OK);
    double spend;
    assert_int_equal(store_budget_spend(s, 'k', k.id, 100, 1000050, &spend), STORE_OK);
    assert_true(fabs(spend - 1.5) < 1e-12);
    assert_int_equal(store_budget_spend(s, 'k', k.id, 100, 1000100, &spend), STORE_OK);
    assert_true(spend == 0); /* the next period: nothing yet */
    /* a team with no row in teams: one period for ever */
    assert_int_equal(store_budget_spend(s, 't', "search", 0, 1999999, &spend), STORE_OK);
    assert_true(fabs(spend - 1.5) < 1e-12);
    b.now = 1000150; /* the next period: starts again from this delta */
    b.nrows = 0;
    assert_int_equal(store_spend_write(s, &b), STORE_OK);
    assert_int_equal(store_budget_spend(s, 'k', k.id, 100, 1000150, &spend), STORE_OK);
    assert_true(fabs(spend - 0.75) < 1e-12);

    /* the rows were added to twice: per key, model, team, day and hour */
    groups g = {0};
    assert_int_equal(store_spend_query(s, "key", 0, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.names[0], "master"); /* the most spent first */
    assert_true(fabs(g.totals[0].cost_usd - 2) < 1e-12);
    assert_string_equal(g.names[1], k.id);
    assert_int_equal(g.totals[1].requests, 4);
    assert_int_equal(g.totals[1].prompt_tokens, 40);
    assert_int_equal(g.totals[1].completion_tokens, 20);
    assert_int_equal(g.totals[1].cached_tokens, 8);
    assert_int_equal(g.totals[1].reasoning_tokens, 4);
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "model", 0, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.names[0], "m1");
    assert_true(fabs(g.totals[0].cost_usd - 2.5) < 1e-12);
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "team", 0, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 2); /* "search" and "" (none) */
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "hour", 0, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.totals[0].hour, h);
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "day", 0, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 1);
    assert_int_equal(strtoll(g.names[0], NULL, 10), day);
    assert_int_equal(g.totals[0].requests, 6);
    /* from/to: hours in [from, to) */
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "key", h + 3600, 0, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.names[0], "master");
    memset(&g, 0, sizeof g);
    assert_int_equal(store_spend_query(s, "key", 0, h + 3600, on_group, &g), STORE_OK);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.names[0], k.id);
    assert_int_equal(store_spend_query(s, "colour", 0, 0, on_group, &g), STORE_ERROR);
    /* spend is not policy: the version counter did not move for it */
    uint64_t v;
    assert_int_equal(store_keys_version(s, &v), STORE_OK);
    assert_int_equal(v, 1);
    store_key_clear(&k);
    store_close(s);
}

typedef struct spend_published {
    pthread_mutex_t lock;
    spend_snapshot *last;
} spend_published;

static void on_spend(void *ud, spend_snapshot *snap)
{
    spend_published *p = ud;
    pthread_mutex_lock(&p->lock);
    spend_snapshot_release(p->last);
    p->last = snap;
    pthread_mutex_unlock(&p->lock);
}

typedef struct flush_arg {
    store_service *svc;
    spend_batch *batch;
} flush_arg;

static void flush_job(store *s, void *arg)
{
    flush_arg *f = arg;
    assert_true(store_service_write_spend(f->svc, s, f->batch));
}

/* A flush written through the service publishes a spend snapshot holding it, and says which
 * of the worker's flushes it holds. */
static void test_spend_service(void **state)
{
    char err[512];
    store_service *svc = store_service_start(open_ok("spend-svc.db"), err, sizeof err);
    assert_non_null(svc);
    spend_published p = {.lock = PTHREAD_MUTEX_INITIALIZER};
    store_subscriber sub = {.publish_spend = on_spend, .ud = &p}; /* no key snapshots wanted */
    store_service_subscribe(svc, &sub);
    spend_row rows[] = {row_at(3600, "key_x", "", "m", 0.5)};
    budget_delta deltas[] = {{'k', "key_x", 0.5}, {'t', "t1", 0.5}};
    int64_t now = (int64_t)time(NULL);
    spend_batch b = {
        .worker = 3, .seq = 7, .now = now, .rows = rows, .nrows = 1, .deltas = deltas, .ndeltas = 2};
    flush_arg f = {svc, &b};
    assert_true(store_service_submit(svc, flush_job, &f));
    bool seen = false;
    for (int i = 0; i < 300 && !seen; i++) {
        usleep(10000);
        pthread_mutex_lock(&p.lock);
        seen = p.last && p.last->applied[3] == 7;
        pthread_mutex_unlock(&p.lock);
    }
    assert_true(seen);
    assert_true(fabs(spend_snapshot_get(p.last, 'k', "key_x", 0, now) - 0.5) < 1e-12);
    assert_true(fabs(spend_snapshot_get(p.last, 't', "t1", 0, now) - 0.5) < 1e-12);
    assert_true(spend_snapshot_get(p.last, 'k', "key_y", 0, now) == 0);
    assert_true(spend_snapshot_get(p.last, 't', "key_x", 0, now) == 0);
    /* key_x has no row in keys, so its spend was written in the one period (start 0); asked for a
     * 60 s period, none of it is in the current one */
    assert_true(spend_snapshot_get(p.last, 'k', "key_x", 60, now) == 0);
    assert_int_equal(p.last->applied[0], 0);
    /* another process's spend (a second connection) reaches the subscribers within a poll */
    store *other = open_ok("spend-svc.db");
    budget_delta more[] = {{'k', "key_y", 2}};
    spend_batch ob = {.worker = 0, .seq = 1, .now = now, .deltas = more, .ndeltas = 1};
    assert_int_equal(store_spend_write(other, &ob), STORE_OK);
    store_close(other);
    seen = false;
    for (int i = 0; i < 300 && !seen; i++) { /* within 3 s */
        usleep(10000);
        pthread_mutex_lock(&p.lock);
        seen = spend_snapshot_get(p.last, 'k', "key_y", 0, now) == 2;
        pthread_mutex_unlock(&p.lock);
    }
    assert_true(seen);
    spend_snapshot *mine = store_service_spend(svc);
    assert_non_null(mine);
    spend_snapshot_release(mine);
    store_service_unsubscribe(svc, &sub);
    store_service_stop(svc);
    spend_snapshot_release(p.last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations),    cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_keys),          cmocka_unit_test(test_service),
        cmocka_unit_test(test_secret_file),   cmocka_unit_test(test_migrate_from_version_1),
        cmocka_unit_test(test_teams),         cmocka_unit_test(test_spend),
        cmocka_unit_test(test_spend_service), cmocka_unit_test(test_rate_limits_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
