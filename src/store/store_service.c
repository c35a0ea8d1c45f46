/* store_service.c — the key snapshot the workers read, and the thread that owns the store and
 * keeps the snapshot fresh (store.h).
 *
 * Workers never wait on the store: each holds a reference to an immutable snapshot, swapped on
 * its own loop when the service hands it a newer one (the way a reloaded config is handed over:
 * a mailbox and an async, in the subscriber). The thread sleeps in poll() until a job is queued
 * (an eventfd), the store announces a change (PostgreSQL's NOTIFY on the connection's socket),
 * or STORE_POLL_MS pass; then it reads the version counter and, when it moved, loads every key
 * into a new snapshot. A key revoked by another process (`aigw keys disable` on the file,
 * another instance sharing the database) so stops working here at once on PostgreSQL, and
 * within about STORE_POLL_MS when the announcement is lost or the store is SQLite.
 *
 * A snapshot also holds every virtual key with its secret opened (vault.h): opening happens
 * here, on the store's thread, once per load — a request finds the credential by name and
 * never decrypts. The first load, at start, fails when one does not open (a wrong or missing
 * vault key is said before serving); later loads leave such a key out and say so once (another
 * process wrote it under another vault key) — rejected: keeping the old snapshot, which would
 * also keep a gateway key revoked meanwhile working.
 * The opened secrets are wiped when the snapshot is freed.
 *
 * Spend reaches the workers the same way, as a spend snapshot: each budget's spend in its
 * period and, per worker, the last of its flushes the snapshot holds, so a worker adds only
 * what it has not seen written (pipeline/budget.c). A new one is loaded after each flush is
 * written, and at a poll when the store's spend counter moved (another process sharing the
 * store spends too).
 *
 * Every statement the thread runs is bounded (db_set_statement_timeout, set once the store
 * has migrated): STORE_STATEMENT_TIMEOUT_MS. The longest the store runs by design are a
 * retention run's count of the request log and its DELETE of at most 10,000 rows, the request
 * log's aggregates over their bounded rows, and a snapshot of every key. Measured on
 * PostgreSQL 15 with 2 million 600-byte rows: the count 0.43 s, the DELETE 0.06-0.08 s; the
 * count grows with the table, so 30 s leaves a log some 70 times that size room, and still
 * frees the thread (and the key refreshes, spend flushes and reads queued behind it) from a
 * lock another session holds or a plan gone wrong within half a minute. Requests do not wait
 * that long: their own deadlines (timeouts.store, timeouts.admin) answer them first.
 *
 * A snapshot is one arena: the keys array sorted by digest and their strings. Loading every
 * key is simple and, for the thousands of keys a gateway holds, a few milliseconds on the
 * store's thread; rejected: incremental updates (a change log to keep, and an ordering bug
 * would let a revoked key live on). */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "store/db.h"
#include "store/store.h"
#include "util/log.h"
#include "util/alloc.h"

#define STORE_STATEMENT_TIMEOUT_MS 30000

/* ---- the snapshot ------------------------------------------------------------------------- */

typedef struct snapshot_builder {
    key_snapshot *snap;
    size_t cap, vcap, team_cap, pv_cap, pl_cap;
    store_prompt_version *labelled; /* the versions labels name (no body), sorted once they are in */
    size_t nlabelled, labelled_cap;
    store_prompt_version held; /* the last version read, kept or not once the next shows */
    bool holding;
} snapshot_builder;

static char *arena_copy(arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

static char **arena_list(arena *a, char *const *items, size_t n)
{
    if (!n) return NULL;
    char **out = arena_alloc(a, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = arena_copy(a, items[i]);
    return out;
}

static void on_snapshot_row(const store_key *k, void *ud)
{
    snapshot_builder *b = ud;
    key_snapshot *snap = b->snap;
    if (snap->nkeys == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        snap->keys = xrealloc(snap->keys, b->cap * sizeof *snap->keys);
    }
    store_key *c = &snap->keys[snap->nkeys++];
    *c = *k;
    c->alias = arena_copy(&snap->arena, k->alias);
    c->team = arena_copy(&snap->arena, k->team);
    c->user = arena_copy(&snap->arena, k->user);
    c->metadata = arena_copy(&snap->arena, k->metadata);
    c->default_route = arena_copy(&snap->arena, k->default_route);
    c->models = arena_list(&snap->arena, k->models, k->nmodels);
    c->tags = arena_list(&snap->arena, k->tags, k->ntags);
    if (k->nmodel_limits) {
        c->model_limits = arena_alloc(&snap->arena, k->nmodel_limits * sizeof *c->model_limits);
        for (size_t i = 0; i < k->nmodel_limits; i++) {
            c->model_limits[i] = k->model_limits[i];
            c->model_limits[i].model = arena_copy(&snap->arena, k->model_limits[i].model);
        }
    } else {
        c->model_limits = NULL;
    }
    c->virtual_keys = arena_list(&snap->arena, k->virtual_keys, k->nvirtual_keys);
}

static void on_snapshot_vkey(const store_vkey *v, void *ud)
{
    snapshot_builder *b = ud;
    key_snapshot *snap = b->snap;
    if (snap->nvkeys == b->vcap) {
        b->vcap = b->vcap ? b->vcap * 2 : 16;
        snap->vkeys = xrealloc(snap->vkeys, b->vcap * sizeof *snap->vkeys);
    }
    store_vkey *c = &snap->vkeys[snap->nvkeys++];
    *c = *v;
    c->provider = arena_copy(&snap->arena, v->provider);
    c->base_url = arena_copy(&snap->arena, v->base_url);
    c->secret = arena_strndup(&snap->arena, v->secret, v->secret_len);
}

static int vkey_name_cmp(const void *a, const void *b)
{
    return strcmp(((const store_vkey *)a)->name, ((const store_vkey *)b)->name);
}

static void on_snapshot_team(const store_team *t, void *ud)
{
    snapshot_builder *b = ud;
    key_snapshot *snap = b->snap;
    if (snap->nteams == b->team_cap) {
        b->team_cap = b->team_cap ? b->team_cap * 2 : 16;
        snap->teams = xrealloc(snap->teams, b->team_cap * sizeof *snap->teams);
    }
    store_team *c = &snap->teams[snap->nteams++];
    *c = *t;
    c->id = arena_copy(&snap->arena, t->id);
    c->alias = arena_copy(&snap->arena, t->alias);
    c->metadata = arena_copy(&snap->arena, t->metadata);
    c->models = arena_list(&snap->arena, t->models, t->nmodels);
}

static int team_cmp(const void *a, const void *b)
{
    return strcmp(((const store_team *)a)->id, ((const store_team *)b)->id);
}

static int digest_cmp(const void *a, const void *b)
{
    return memcmp(((const store_key *)a)->digest, ((const store_key *)b)->digest, STORE_DIGEST_BYTES);
}

static int prompt_version_cmp(const void *a, const void *b);

static void keep_prompt_version(snapshot_builder *b, const store_prompt_version *v)
{
    key_snapshot *snap = b->snap;
    if (snap->nprompt_versions == b->pv_cap) {
        b->pv_cap = b->pv_cap ? b->pv_cap * 2 : 16;
        snap->prompt_versions = xrealloc(snap->prompt_versions, b->pv_cap * sizeof *snap->prompt_versions);
    }
    store_prompt_version *c = &snap->prompt_versions[snap->nprompt_versions++];
    *c = *v;
    c->id = arena_copy(&snap->arena, v->id);
    c->body = arena_copy(&snap->arena, v->body);
}

/* The version b holds goes into the snapshot when it is its id's newest (next, the row after
 * it, has another id, or there is none) or a label names it; then it is let go. */
static void settle_held(snapshot_builder *b, const store_prompt_version *next)
{
    if (!b->holding) return;
    store_prompt_version *h = &b->held;
    bool newest = !next || next->kind != h->kind || strcmp(next->id, h->id);
    if (newest || (b->nlabelled && bsearch(h, b->labelled, b->nlabelled, sizeof *h, prompt_version_cmp)))
        keep_prompt_version(b, h);
    else
        b->snap->nprompt_versions_left_out++;
    free(h->id);
    free(h->body);
    b->holding = false;
}

/* Rows come by kind, id and version (store_prompt_versions_each), so an id's newest is the last
 * of its run. */
static void on_snapshot_prompt_version(const store_prompt_version *v, void *ud)
{
    snapshot_builder *b = ud;
    settle_held(b, v);
    b->held = *v;
    b->held.id = xstrdup(v->id);
    b->held.body = xstrdup(v->body);
    b->holding = true;
}

static void on_snapshot_prompt_label(const store_prompt_label *l, void *ud)
{
    snapshot_builder *b = ud;
    key_snapshot *snap = b->snap;
    if (snap->nprompt_labels == b->pl_cap) {
        b->pl_cap = b->pl_cap ? b->pl_cap * 2 : 16;
        snap->prompt_labels = xrealloc(snap->prompt_labels, b->pl_cap * sizeof *snap->prompt_labels);
    }
    store_prompt_label *c = &snap->prompt_labels[snap->nprompt_labels++];
    *c = *l;
    c->id = arena_copy(&snap->arena, l->id);
    c->label = arena_copy(&snap->arena, l->label);
    c->split = arena_copy(&snap->arena, l->split);
    json_t *split = json_loads(l->split, 0, NULL);
    size_t i;
    json_t *e;
    json_array_foreach(split, i, e)
    {
        if (b->nlabelled == b->labelled_cap) {
            b->labelled_cap = b->labelled_cap ? b->labelled_cap * 2 : 16;
            b->labelled = xrealloc(b->labelled, b->labelled_cap * sizeof *b->labelled);
        }
        b->labelled[b->nlabelled++] = (store_prompt_version){
            .kind = c->kind, .id = c->id, .version = json_integer_value(json_object_get(e, "version"))};
    }
    json_decref(split);
}

static int prompt_version_cmp(const void *a, const void *b)
{
    const store_prompt_version *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int prompt_label_cmp(const void *a, const void *b)
{
    const store_prompt_label *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->label, y->label);
}

const store_prompt_version *key_snapshot_prompt_version(const key_snapshot *snap, char kind, const char *id,
                                                        int64_t version)
{
    /* the first entry not below (kind, id, version); version 0 asks for the newest */
    size_t lo = 0, hi = snap ? snap->nprompt_versions : 0;
    store_prompt_version want = {.kind = kind, .id = (char *)id, .version = version ? version : INT64_MAX};
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (prompt_version_cmp(&snap->prompt_versions[mid], &want) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (version) {
        if (lo < snap->nprompt_versions && !prompt_version_cmp(&snap->prompt_versions[lo], &want))
            return &snap->prompt_versions[lo];
        return NULL;
    }
    if (lo == 0) return NULL;
    const store_prompt_version *v = &snap->prompt_versions[lo - 1];
    return v->kind == kind && !strcmp(v->id, id) ? v : NULL;
}

const store_prompt_label *key_snapshot_prompt_label(const key_snapshot *snap, char kind, const char *id,
                                                    const char *label)
{
    size_t lo = 0, hi = snap ? snap->nprompt_labels : 0;
    store_prompt_label want = {.kind = kind, .id = (char *)id, .label = (char *)label};
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = prompt_label_cmp(&snap->prompt_labels[mid], &want);
        if (c == 0) return &snap->prompt_labels[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The labels are in: sorted for settle_held's search (true, to sit in key_snapshot_load's chain). */
static bool sort_labelled(snapshot_builder *b)
{
    if (b->nlabelled) qsort(b->labelled, b->nlabelled, sizeof *b->labelled, prompt_version_cmp);
    return true;
}

key_snapshot *key_snapshot_load(store *s, bool lenient, char *err, size_t errlen)
{
    key_snapshot *snap = xcalloc(1, sizeof *snap);
    atomic_init(&snap->refs, 1);
    arena_init(&snap->arena, 16 * 1024);
    snapshot_builder b = {.snap = snap};
    if (store_keys_version(s, &snap->version) != STORE_OK ||
        store_keys_each(s, on_snapshot_row, &b) != STORE_OK ||
        store_teams_each(s, on_snapshot_team, &b) != STORE_OK ||
        store_vkeys_open_each(s, on_snapshot_vkey, &b, lenient ? &snap->nvkeys_unopened : NULL) != STORE_OK ||
        store_prompt_labels_each(s, 0, NULL, on_snapshot_prompt_label, &b) != STORE_OK ||
        !sort_labelled(&b) ||
        store_prompt_versions_each(s, 0, NULL, on_snapshot_prompt_version, &b) != STORE_OK) {
        snprintf(err, errlen, "%s", store_error(s));
        settle_held(&b, NULL);
        free(b.labelled);
        key_snapshot_release(snap);
        return NULL;
    }
    settle_held(&b, NULL);
    free(b.labelled);
    if (snap->nvkeys_unopened) snprintf(err, errlen, "%s", store_error(s));
    if (snap->nkeys) qsort(snap->keys, snap->nkeys, sizeof *snap->keys, digest_cmp);
    if (snap->nteams) qsort(snap->teams, snap->nteams, sizeof *snap->teams, team_cmp);
    /* SQLite's ORDER BY name is byte order too; sorted again so no backend's collation matters */
    if (snap->nvkeys) qsort(snap->vkeys, snap->nvkeys, sizeof *snap->vkeys, vkey_name_cmp);
    if (snap->nprompt_versions)
        qsort(snap->prompt_versions, snap->nprompt_versions, sizeof *snap->prompt_versions,
              prompt_version_cmp);
    if (snap->nprompt_labels)
        qsort(snap->prompt_labels, snap->nprompt_labels, sizeof *snap->prompt_labels, prompt_label_cmp);
    return snap;
}

const store_team *key_snapshot_team(const key_snapshot *snap, const char *id)
{
    size_t lo = 0, hi = snap && id ? snap->nteams : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(snap->teams[mid].id, id);
        if (c == 0) return &snap->teams[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const store_vkey *key_snapshot_vkey(const key_snapshot *snap, const char *name)
{
    size_t lo = 0, hi = snap ? snap->nvkeys : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(snap->vkeys[mid].name, name);
        if (c == 0) return &snap->vkeys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const store_key *key_snapshot_find(const key_snapshot *snap, const uint8_t digest[STORE_DIGEST_BYTES])
{
    size_t lo = 0, hi = snap ? snap->nkeys : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(snap->keys[mid].digest, digest, STORE_DIGEST_BYTES);
        if (c == 0) return &snap->keys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

key_snapshot *key_snapshot_retain(key_snapshot *snap)
{
    if (snap) atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

void key_snapshot_release(key_snapshot *snap)
{
    if (!snap || atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1) return;
    free(snap->keys);
    for (size_t i = 0; i < snap->nvkeys; i++)
        if (snap->vkeys[i].secret) sodium_memzero(snap->vkeys[i].secret, snap->vkeys[i].secret_len);
    free(snap->vkeys);
    free(snap->teams);
    free(snap->prompt_versions);
    free(snap->prompt_labels);
    arena_free(&snap->arena);
    free(snap);
}

/* ---- the spend snapshot -------------------------------------------------------------------- */

typedef struct spend_builder {
    spend_snapshot *snap;
    size_t cap;
} spend_builder;

static void on_spend_row(char kind, const char *id, int64_t start, double spend, void *ud)
{
    spend_builder *b = ud;
    spend_snapshot *snap = b->snap;
    if (snap->nentries == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        snap->entries = xrealloc(snap->entries, b->cap * sizeof *snap->entries);
    }
    snap->entries[snap->nentries++] = (spend_entry){
        .kind = kind, .id = arena_copy(&snap->arena, id), .period_start = start, .spend = spend};
}

static int spend_entry_cmp(const void *a, const void *b)
{
    const spend_entry *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Every budget's row; NULL on a database error (err says). */
static spend_snapshot *spend_snapshot_load(store *s, const uint64_t applied[SPEND_WORKERS_MAX], char *err,
                                           size_t errlen)
{
    spend_snapshot *snap = xcalloc(1, sizeof *snap);
    atomic_init(&snap->refs, 1);
    arena_init(&snap->arena, 4096);
    memcpy(snap->applied, applied, sizeof snap->applied);
    spend_builder b = {.snap = snap};
    if (store__budget_spend_each(s, on_spend_row, &b) != STORE_OK) {
        snprintf(err, errlen, "%s", store_error(s));
        spend_snapshot_release(snap);
        return NULL;
    }
    /* sorted by the same comparison as the lookup (SQL's order may collate differently) */
    if (snap->nentries) qsort(snap->entries, snap->nentries, sizeof *snap->entries, spend_entry_cmp);
    return snap;
}

double spend_snapshot_get(const spend_snapshot *snap, char kind, const char *id, int64_t duration,
                          int64_t now)
{
    spend_entry want = {.kind = kind, .id = (char *)id};
    size_t lo = 0, hi = snap && id ? snap->nentries : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = spend_entry_cmp(&snap->entries[mid], &want);
        if (c == 0) {
            const spend_entry *e = &snap->entries[mid];
            return e->period_start == budget_period_start(duration, now) ? e->spend : 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

spend_snapshot *spend_snapshot_retain(spend_snapshot *snap)
{
    if (snap) atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

void spend_snapshot_release(spend_snapshot *snap)
{
    if (!snap || atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1) return;
    free(snap->entries);
    arena_free(&snap->arena);
    free(snap);
}

/* ---- the service -------------------------------------------------------------------------- */

typedef struct store_job {
    void (*run)(store *s, void *arg);
    void (*then)(void *arg); /* after the snapshot with run's writes is published; NULL: none */
    void *arg;
} store_job;

struct store_service {
    store *store;
    pthread_t thread;
    int wake_fd;          /* an eventfd: a job was queued, or the service is stopping */
    pthread_mutex_t lock; /* everything below */
    store_job jobs[STORE_JOBS_MAX];
    size_t head, njobs;
    bool stopping;
    key_snapshot *current;
    _Atomic uint64_t version;            /* current's, readable without the lock */
    spend_snapshot *spend;               /* the newest */
    uint64_t spend_version;              /* the thread's own: the store's spend counter when loaded */
    uint64_t applied[SPEND_WORKERS_MAX]; /* the thread's own: each worker's last flush written */
    store_subscriber *subscribers;
    bool error_reported;    /* a failing poll is said once, not every second */
    bool unopened_reported; /* … and virtual keys left out */
};

/* A new snapshot for everyone: the service keeps one reference, each subscriber gets one. */
static void publish(store_service *svc, key_snapshot *snap)
{
    pthread_mutex_lock(&svc->lock);
    key_snapshot *old = svc->current;
    svc->current = snap;
    atomic_store_explicit(&svc->version, snap->version, memory_order_release);
    for (store_subscriber *sub = svc->subscribers; sub; sub = sub->next)
        if (sub->publish) sub->publish(sub->ud, key_snapshot_retain(snap));
    pthread_mutex_unlock(&svc->lock);
    key_snapshot_release(old);
}

/* On the thread: a new spend snapshot for everyone. */
static void publish_spend(store_service *svc)
{
    char err[512];
    store__spend_version(svc->store, &svc->spend_version); /* read first: a later write is seen next time */
    spend_snapshot *snap = spend_snapshot_load(svc->store, svc->applied, err, sizeof err);
    if (!snap) {
        if (!svc->error_reported)
            log_event(LOG_ERROR, "store_error", "store: %s; budgets use the spend read before", err);
        svc->error_reported = true;
        return;
    }
    pthread_mutex_lock(&svc->lock);
    spend_snapshot *old = svc->spend;
    svc->spend = snap;
    for (store_subscriber *sub = svc->subscribers; sub; sub = sub->next)
        if (sub->publish_spend) sub->publish_spend(sub->ud, spend_snapshot_retain(snap));
    pthread_mutex_unlock(&svc->lock);
    spend_snapshot_release(old);
}

bool store_service_write_spend(store_service *svc, store *s, const spend_batch *b)
{
    bool ok = store_spend_write(s, b) == STORE_OK;
    if (!ok)
        log_event(LOG_ERROR, "store_error", "store: spend of %zu requests' rows not written: %s", b->nrows,
                  store_error(s));
    if (b->worker >= 0 && b->worker < SPEND_WORKERS_MAX && b->seq > svc->applied[b->worker])
        svc->applied[b->worker] = b->seq; /* written or lost: the worker stops counting it */
    publish_spend(svc);
    return ok;
}

spend_snapshot *store_service_spend(store_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    spend_snapshot *snap = spend_snapshot_retain(svc->spend);
    pthread_mutex_unlock(&svc->lock);
    return snap;
}

/* On the thread: reload when the version moved. */
static void poll_version(store_service *svc)
{
    uint64_t version;
    char err[512];
    if (store_keys_version(svc->store, &version) != STORE_OK) {
        if (!svc->error_reported)
            log_event(LOG_ERROR, "store_error", "store: %s; serving the keys loaded before",
                      store_error(svc->store));
        svc->error_reported = true;
        return;
    }
    if (svc->error_reported) {
        log_event(LOG_INFO, "store_ok", "store: %s answers again", store_name(svc->store));
        svc->error_reported = false;
    }
    pthread_mutex_lock(&svc->lock);
    bool same = svc->current && svc->current->version == version;
    pthread_mutex_unlock(&svc->lock);
    if (same) return;
    key_snapshot *snap = key_snapshot_load(svc->store, true, err, sizeof err);
    if (!snap) {
        if (!svc->error_reported)
            log_event(LOG_ERROR, "store_error", "store: %s; serving the keys loaded before", err);
        svc->error_reported = true;
        return;
    }
    svc->error_reported = false;
    /* said once while it lasts: another process wrote under another vault key */
    if (snap->nvkeys_unopened && !svc->unopened_reported)
        log_event(LOG_WARN, "virtual_keys_unopened", "store: %s; %zu virtual key%s left out until %s", err,
                  snap->nvkeys_unopened, snap->nvkeys_unopened == 1 ? "" : "s",
                  snap->nvkeys_unopened == 1 ? "it opens" : "they open");
    svc->unopened_reported = snap->nvkeys_unopened > 0;
    publish(svc, snap);
}

static void wake(store_service *svc)
{
    uint64_t one = 1;
    ssize_t n = write(svc->wake_fd, &one, sizeof one);
    (void)n; /* full (2^64-2 wakes pending): it is awake anyway */
}

/* Until a job is queued, the store announces a change, or STORE_POLL_MS pass. Called without
 * the lock. */
static void wait_for_work(store_service *svc)
{
    if (store_change_announced(svc->store)) return; /* libpq read one during the last query */
    struct pollfd fds[2] = {
        {.fd = svc->wake_fd, .events = POLLIN},
        {.fd = store_change_fd(svc->store), .events = POLLIN},
    };
    if (poll(fds, fds[1].fd >= 0 ? 2 : 1, STORE_POLL_MS) <= 0) return;
    if (fds[0].revents) {
        uint64_t count;
        ssize_t n = read(svc->wake_fd, &count, sizeof count);
        (void)n;
    }
    if (fds[1].fd >= 0 && fds[1].revents) store_change_announced(svc->store);
}

static void *service_thread(void *arg)
{
    store_service *svc = arg;
    pthread_setname_np(pthread_self(), "aigw-store");
    pthread_mutex_lock(&svc->lock);
    for (;;) {
        if (!svc->njobs && !svc->stopping) {
            pthread_mutex_unlock(&svc->lock);
            wait_for_work(svc);
            pthread_mutex_lock(&svc->lock);
        }
        while (svc->njobs) {
            store_job job = svc->jobs[svc->head];
            svc->head = (svc->head + 1) % STORE_JOBS_MAX;
            svc->njobs--;
            pthread_mutex_unlock(&svc->lock);
            job.run(svc->store, job.arg);
            if (job.then) {
                poll_version(svc);
                job.then(job.arg);
            }
            pthread_mutex_lock(&svc->lock);
        }
        if (svc->stopping) break;
        pthread_mutex_unlock(&svc->lock);
        poll_version(svc);
        /* another process's spend (an instance sharing the store): reload when its counter moved */
        uint64_t spend_version;
        if (store__spend_version(svc->store, &spend_version) == STORE_OK &&
            spend_version != svc->spend_version)
            publish_spend(svc);
        pthread_mutex_lock(&svc->lock);
    }
    pthread_mutex_unlock(&svc->lock);
    return NULL;
}

store_service *store_service_start(store *s, char *err, size_t errlen)
{
    db_set_statement_timeout(store__db(s), STORE_STATEMENT_TIMEOUT_MS);
    key_snapshot *first = key_snapshot_load(s, false, err, errlen);
    if (!first) {
        store_close(s);
        return NULL;
    }
    store_service *svc = xcalloc(1, sizeof *svc);
    svc->store = s;
    svc->current = first;
    atomic_init(&svc->version, first->version);
    store__spend_version(s, &svc->spend_version);
    svc->spend = spend_snapshot_load(s, svc->applied, err, errlen);
    if (!svc->spend) {
        key_snapshot_release(first);
        store_close(s);
        free(svc);
        return NULL;
    }
    pthread_mutex_init(&svc->lock, NULL);
    svc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (svc->wake_fd < 0 || pthread_create(&svc->thread, NULL, service_thread, svc) != 0) {
        snprintf(err, errlen, "store: cannot start its thread");
        key_snapshot_release(first);
        spend_snapshot_release(svc->spend);
        store_close(s);
        pthread_mutex_destroy(&svc->lock);
        if (svc->wake_fd >= 0) close(svc->wake_fd);
        free(svc);
        return NULL;
    }
    return svc;
}

void store_service_stop(store_service *svc)
{
    if (!svc) return;
    pthread_mutex_lock(&svc->lock);
    svc->stopping = true;
    wake(svc);
    pthread_mutex_unlock(&svc->lock);
    pthread_join(svc->thread, NULL);
    key_snapshot_release(svc->current);
    spend_snapshot_release(svc->spend);
    store_close(svc->store);
    pthread_mutex_destroy(&svc->lock);
    close(svc->wake_fd);
    free(svc);
}

key_snapshot *store_service_snapshot(store_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    key_snapshot *snap = key_snapshot_retain(svc->current);
    pthread_mutex_unlock(&svc->lock);
    return snap;
}

uint64_t store_service_version(store_service *svc)
{
    return atomic_load_explicit(&svc->version, memory_order_acquire);
}

void store_service_subscribe(store_service *svc, store_subscriber *sub)
{
    pthread_mutex_lock(&svc->lock);
    sub->next = svc->subscribers;
    svc->subscribers = sub;
    pthread_mutex_unlock(&svc->lock);
}

void store_service_unsubscribe(store_service *svc, store_subscriber *sub)
{
    pthread_mutex_lock(&svc->lock);
    for (store_subscriber **p = &svc->subscribers; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    pthread_mutex_unlock(&svc->lock);
}

bool store_service_submit(store_service *svc, void (*run)(store *s, void *arg), void *arg)
{
    return store_service_submit_then(svc, run, NULL, arg);
}

bool store_service_submit_then(store_service *svc, void (*run)(store *s, void *arg), void (*then)(void *arg),
                               void *arg)
{
    pthread_mutex_lock(&svc->lock);
    bool ok = !svc->stopping && svc->njobs < STORE_JOBS_MAX;
    if (ok) {
        svc->jobs[(svc->head + svc->njobs) % STORE_JOBS_MAX] = (store_job){run, then, arg};
        svc->njobs++;
        wake(svc);
    }
    pthread_mutex_unlock(&svc->lock);
    return ok;
}
