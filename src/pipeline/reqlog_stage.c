/* reqlog_stage.c — the request log's observer: every finished model-API request, with its
 * attempts, queued from the worker to the store's thread and written there in batches
 * (observe/reqlog.h packs the entry, store/request_log.h writes and reads the rows).
 *
 * The road is spend's (budget.c): no lock and no I/O on the worker. Each worker keeps its own
 * batch — the blob of up to REQLOG_BATCH_ROWS_MAX entries that becomes one row of the store
 * (store/reqlog_batch.h), each entry packed into it once, straight from the request's record;
 * a timer (every `batch_delay`) or a full batch hands it to the store's thread as one job
 * (store_service_submit), which inserts the blob as it is (store_reqlog_write_batch) — or, with
 * bodies kept, reads it back to redact each body and writes the entries again — and frees it.
 * The next batch's blob starts with the last one's size, so a full batch is never grown by
 * copying. A worker's queue is bounded: what it
 * holds plus what it has handed over and the store has not yet written may not pass
 * `request_log.queue`. Past that a request is dropped from the log — counted
 * (aigw_request_log_dropped_total{reason="queue_full"}) and said once per episode on the event
 * log (request_log_full, then request_log_resumed with the episode's count) — never silently. A batch the
 * store's job queue refuses is counted the same way; one the database fails to write under reason
 * "store_error".
 *
 * Retention runs as a job too, at most every `request_log.trim_every`, asked by whichever
 * worker's timer passes the deadline first (one compare-and-swap), and deletes at most
 * TRIM_ROWS_MAX rows per rule a run: a store behind by millions catches up over several runs
 * instead of holding its write lock for minutes.
 *
 * Counters shared with the store's thread are per worker slot, each on its own cache line: the
 * worker adds a batch's size when it hands it over, the store's thread subtracts it once
 * written. The settings (the redaction names) are reference-counted: a job still queued when
 * the stage stops (the service runs them before it stops, after this stage's stop) keeps them.
 *
 * Off when there is no store (`auth:` absent or off) unless `request_log: on` asks for it —
 * then the start fails saying why. The settings are read at start; a reload keeps them. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "observe/reqlog.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "store/request_log.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/timeutil.h"

#define TRIM_ROWS_MAX 10000
#define SLOTS_MAX 256

typedef struct reqlog_settings {
    atomic_int refs;
    long long retention_ms, max_rows;
    uint32_t trim_every_ms, batch_delay_ms;
    size_t queue_max, body_max;
    char **redact;
    size_t nredact;
} reqlog_settings;

typedef struct slot_counter {
    _Alignas(64) atomic_llong n;
} slot_counter;

static reqlog_settings *settings; /* NULL: the log is off */
static store_service *service;
static slot_counter inflight[SLOTS_MAX]; /* handed to the store's thread, not yet written */
static slot_counter buffered[SLOTS_MAX]; /* in the worker's array (a gauge: the worker stores it) */
static atomic_int next_slot;
static atomic_llong next_trim_ms;
static atomic_ullong dropped_full, dropped_store, written_total;

static reqlog_settings *settings_retain(reqlog_settings *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void settings_release(reqlog_settings *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < s->nredact; i++)
        free(s->redact[i]);
    free(s->redact);
    free(s);
}

static bool reqlog_start(const aigw_config *cfg, char *err, size_t errlen)
{
    const request_log_settings *c = &cfg->request_log;
    service = auth_service();
    if (c->mode == REQUEST_LOG_OFF || (c->mode == REQUEST_LOG_UNSET && !service)) return true;
    if (!service) {
        snprintf(err, errlen,
                 "%s:%d: request_log is on but there is no store to keep it in: add `auth:` (its store "
                 "holds the log), or say request_log: off",
                 cfg->path ? cfg->path : "config", c->line);
        return false;
    }
    reqlog_settings *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->retention_ms = c->retention_ms;
    s->max_rows = c->max_rows;
    s->trim_every_ms = c->trim_every_ms;
    s->batch_delay_ms = c->batch_delay_ms;
    s->queue_max = (size_t)c->queue_max;
    s->body_max = c->bodies ? c->body_max_bytes : 0;
    s->nredact = c->nredact;
    s->redact = xcalloc(c->nredact ? c->nredact : 1, sizeof *s->redact);
    for (size_t i = 0; i < c->nredact; i++)
        s->redact[i] = xstrdup(c->redact[i]);
    settings = s;
    atomic_store(&next_trim_ms, 0);
    return true;
}

static void reqlog_stop(void)
{
    settings_release(settings);
    settings = NULL;
    service = NULL;
}

/* ---- the store's side ------------------------------------------------------------------------- */

/* A worker's batch, then the store's job: its entries packed in one blob. */
typedef struct write_job {
    reqlog_settings *settings; /* one reference (taken when the batch is handed over) */
    int slot;
    reqlog_batch_writer entries;
} write_job;

#define BATCH_ROOM_MIN (64 * 1024) /* a first batch's room: a few hundred entries without bodies */

/* A new batch, its blob given room for size bytes — the last batch's, so one as full grows no
 * more by copying — but at least BATCH_ROOM_MIN and at most a full blob's (a batch that held
 * one large body does not make the next take as much). */
static write_job *batch_new(int slot, size_t size)
{
    write_job *b = xcalloc(1, sizeof *b);
    b->slot = slot;
    reqlog_batch_init(&b->entries);
    size = size < BATCH_ROOM_MIN           ? BATCH_ROOM_MIN
           : size > REQLOG_BATCH_BYTES_MAX ? REQLOG_BATCH_BYTES_MAX
                                           : size;
    buf_room(&b->entries.data, size - 1); /* and the buffer's NUL: size bytes in all */
    return b;
}

static void batch_free(write_job *b)
{
    reqlog_batch_free(&b->entries);
    settings_release(b->settings);
    free(b);
}

static bool store_error_said; /* the store's thread's own: a failing write is said once */

/* The batch's entries written again, each kept body redacted (one that is not JSON is not
 * kept): rows as many as may be split over more than one blob, since redaction may lengthen a
 * body. */
static store_result write_redacted(store *s, write_job *job)
{
    size_t n = job->entries.n;
    reqlog_entry *rows = xcalloc(n, sizeof *rows);
    const reqlog_entry **ptrs = xcalloc(n, sizeof *ptrs);
    char **bodies = xcalloc(n, sizeof *bodies);
    reqlog_batch_reader rd;
    size_t got = 0;
    if (reqlog_batch_open(&rd, job->entries.data.data, job->entries.data.len, 0))
        while (got < n && reqlog_batch_next(&rd, &rows[got]) > 0) {
            reqlog_entry *e = &rows[got];
            if (e->request_body) {
                bodies[got] = reqlog_redact_body(e->request_body, strlen(e->request_body),
                                                 job->settings->redact, job->settings->nredact);
                /* written again it may be longer (jansson's numbers: 0.1 is 0.10000000000000001):
                 * past body_max it is not kept, as a body that came longer is not */
                if (bodies[got] && strlen(bodies[got]) > job->settings->body_max) {
                    free(bodies[got]);
                    bodies[got] = NULL;
                }
                e->request_body = bodies[got];
            }
            ptrs[got] = e;
            got++;
        }
    store_result rc = got == n ? store_reqlog_write(s, ptrs, n) : STORE_ERROR; /* our own blob: never short */
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(ptrs);
    free(rows);
    return rc;
}

static void run_write(store *s, void *arg)
{
    write_job *job = arg;
    size_t n = job->entries.n;
    store_result rc =
        job->settings->body_max ? write_redacted(s, job) : store_reqlog_write_batch(s, &job->entries);
    if (rc == STORE_OK) {
        atomic_fetch_add(&written_total, n);
        if (store_error_said) log_event(LOG_INFO, "request_log_ok", "request log: the store writes again");
        store_error_said = false;
    } else {
        atomic_fetch_add(&dropped_store, n);
        if (!store_error_said)
            log_event(LOG_ERROR, "request_log_store_error",
                      "request log: %zu requests not written: %s (counted in "
                      "aigw_request_log_dropped_total{reason=\"store_error\"})",
                      n, store_error(s));
        store_error_said = true;
    }
    atomic_fetch_sub(&inflight[job->slot].n, (long long)n);
    batch_free(job);
}

typedef struct trim_job {
    reqlog_settings *settings;
} trim_job;

static void run_trim(store *s, void *arg)
{
    trim_job *job = arg;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    int64_t deleted = 0, deleted_feedback = 0;
    int64_t before = job->settings->retention_ms ? now_us - job->settings->retention_ms * 1000 : 0;
    if (store_reqlog_trim(s, before, job->settings->max_rows, TRIM_ROWS_MAX, &deleted, &deleted_feedback) !=
        STORE_OK)
        log_event(LOG_ERROR, "request_log_store_error", "request log: retention failed: %s", store_error(s));
    settings_release(job->settings);
    free(job);
}

/* ---- per worker ------------------------------------------------------------------------------- */

typedef struct reqlog_worker {
    uv_timer_t timer;
    int slot;
    write_job *batch;       /* never NULL */
    buf scratch;            /* the attempts of the entry being packed */
    int64_t unix_offset_us; /* the wall clock less the monotonic one, read at each tick */
    bool overflowing;       /* an episode of drops is running */
    uint64_t episode;       /* requests dropped in it */
} reqlog_worker;

/* The wall clock's offset from the monotonic one: read once a tick rather than once a request,
 * so a clock stepped by NTP shows in the log within `batch_delay`. */
static int64_t unix_offset_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 - (int64_t)(time_now_ns() / 1000);
}

/* A drop for a full queue — this worker's (full) or the store's job queue — counted, and said
 * at the start of an episode. */
static void drop(reqlog_worker *rw, size_t n, bool full)
{
    atomic_fetch_add(&dropped_full, n);
    rw->episode += n;
    if (rw->overflowing) return;
    rw->overflowing = true;
    if (full)
        log_event(LOG_WARN, "request_log_full",
                  "request log: worker %d's queue is full (%zu requests wait for the store); requests "
                  "are left out of the log until it drains (counted in aigw_request_log_dropped_total)",
                  rw->slot, settings->queue_max);
    else
        log_event(LOG_WARN, "request_log_full",
                  "request log: the store's job queue is full; a batch of %zu requests is left out of the "
                  "log (counted in aigw_request_log_dropped_total)",
                  n);
}

static void flush(reqlog_worker *rw)
{
    write_job *job = rw->batch;
    size_t n = job->entries.n;
    if (!n) return;
    rw->batch = batch_new(rw->slot, job->entries.data.len);
    job->settings = settings_retain(settings);
    atomic_fetch_add(&inflight[rw->slot].n, (long long)n);
    atomic_store_explicit(&buffered[rw->slot].n, 0, memory_order_relaxed);
    if (store_service_submit(service, run_write, job)) return;
    atomic_fetch_sub(&inflight[rw->slot].n, (long long)n);
    drop(rw, n, false);
    batch_free(job);
}

static void maybe_trim(void)
{
    if (!settings->retention_ms && !settings->max_rows) return;
    long long now = (long long)(time_now_ns() / 1000000);
    long long due = atomic_load_explicit(&next_trim_ms, memory_order_relaxed);
    if (now < due || !atomic_compare_exchange_strong(&next_trim_ms, &due, now + settings->trim_every_ms))
        return;
    trim_job *job = xcalloc(1, sizeof *job);
    job->settings = settings_retain(settings);
    if (store_service_submit(service, run_trim, job)) return;
    settings_release(job->settings); /* the store is busy: the next worker's tick asks again */
    free(job);
    atomic_store(&next_trim_ms, 0);
}

static void on_flush_timer(uv_timer_t *timer)
{
    reqlog_worker *rw = timer->data;
    rw->unix_offset_us = unix_offset_us();
    flush(rw);
    maybe_trim();
}

static void *reqlog_worker_init(worker *w)
{
    if (!settings) return NULL;
    reqlog_worker *rw = xcalloc(1, sizeof *rw);
    rw->slot = atomic_fetch_add(&next_slot, 1) % SLOTS_MAX;
    rw->batch = batch_new(rw->slot, BATCH_ROOM_MIN);
    buf_init(&rw->scratch, REQLOG_BATCH_BYTES_MAX);
    rw->unix_offset_us = unix_offset_us();
    uv_timer_init(&w->loop, &rw->timer);
    rw->timer.data = rw;
    uv_timer_start(&rw->timer, on_flush_timer, settings->batch_delay_ms, settings->batch_delay_ms);
    uv_unref((uv_handle_t *)&rw->timer); /* a worker's loop ends without waiting for it */
    return rw;
}

static void on_timer_closed(uv_handle_t *h)
{
    reqlog_worker *rw = h->data;
    flush(rw); /* a request recorded after worker_close: the store's thread runs until the stage stops */
    batch_free(rw->batch);
    buf_free(&rw->scratch);
    free(rw);
}

static void reqlog_worker_close(void *state)
{
    reqlog_worker *rw = state;
    if (!rw) return;
    flush(rw); /* the last of it: the service runs queued jobs before it stops */
    uv_timer_stop(&rw->timer);
    uv_close((uv_handle_t *)&rw->timer, on_timer_closed);
}

static void reqlog_on_record(const exchange_record *r, void *state)
{
    reqlog_worker *rw = state;
    if (!rw || !reqlog_wanted(r)) return;
    long long waiting = atomic_load_explicit(&inflight[rw->slot].n, memory_order_relaxed);
    if ((size_t)waiting + rw->batch->entries.n >= settings->queue_max) {
        drop(rw, 1, true);
        return;
    }
    if (rw->overflowing) {
        log_event(LOG_INFO, "request_log_resumed",
                  "request log: worker %d logs again; %llu requests were left out", rw->slot,
                  (unsigned long long)rw->episode);
        rw->overflowing = false;
        rw->episode = 0;
    }
    int64_t start_us = (int64_t)(r->start_ns / 1000) + rw->unix_offset_us;
    if (!reqlog_pack(&rw->batch->entries, r, start_us, settings->body_max, &rw->scratch)) {
        /* its batch was full (never after the flush below), or it passes every bound */
        drop(rw, 1, true);
        return;
    }
    size_t n = rw->batch->entries.n;
    atomic_store_explicit(&buffered[rw->slot].n, (long long)n, memory_order_relaxed);
    if (reqlog_batch_full(&rw->batch->entries) || (size_t)waiting + n >= settings->queue_max) flush(rw);
}

bool reqlog_stage_counts(reqlog_stage_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!settings) return false;
    long long queued = 0;
    for (int i = 0; i < SLOTS_MAX; i++)
        queued += atomic_load_explicit(&inflight[i].n, memory_order_relaxed) +
                  atomic_load_explicit(&buffered[i].n, memory_order_relaxed);
    out->queued = queued > 0 ? (uint64_t)queued : 0;
    out->dropped_full = atomic_load(&dropped_full);
    out->dropped_store = atomic_load(&dropped_store);
    out->written = atomic_load(&written_total);
    return true;
}

const stage stage_reqlog = {
    .name = "request_log",
    .phase = PHASE_RECORD,
    .start = reqlog_start,
    .stop = reqlog_stop,
    .worker_init = reqlog_worker_init,
    .worker_close = reqlog_worker_close,
    .on_record = reqlog_on_record,
};
