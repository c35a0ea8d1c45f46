/* budget.c — budgets and spend: the ADMIT check (429 budget_exceeded before any upstream call,
 * a soft budget flagged in the log) and the observer that tallies each keyed request's tokens
 * and cost for the store (one stage: its observer feeds the tally its check reads).
 *
 * Per worker: a spend tally (observe/spend.h) that on_record adds to — no lock, no I/O — and
 * a one-second timer that takes it as a batch and queues it to the store's thread
 * (store_service_submit), which writes it in one transaction and publishes a spend snapshot to
 * every worker (a mailbox: an atomic pointer and a uv_async, as key snapshots arrive). A
 * worker's closing flushes what is left; the store service runs queued jobs before it stops.
 *
 * The check reads no store: spent = the snapshot's spend of the budget in its current period
 * + what this worker has tallied that the snapshot does not hold yet. So a key's own requests
 * on one worker stop exactly at the budget (the request that crosses it is finished and
 * counted; the next one is refused). What it cannot see: requests still in flight (their cost
 * is known only at their end) and the other workers' and instances' last second or so (the
 * flush period plus a write). docs/access.md says how far that lets a budget overshoot.
 *
 * Which requests are recorded: those with a gateway key or the master key (key "master") that
 * reached a provider (an attempt was made); auth off records nothing in the store. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "observe/spend.h"
#include "pipeline/stages.h"
#include "server/worker.h"
#include "store/store.h"
#include "util/alloc.h"

#define FLUSH_MS 1000

static atomic_int next_worker_slot;

typedef struct budget_worker {
    uv_async_t async;
    uv_timer_t timer;
    int open_handles;
    _Atomic(spend_snapshot *) next; /* from the store's thread; one reference */
    spend_snapshot *current;        /* one reference */
    spend_tally *tally;
    store_subscriber sub;
    store_service *service;
    bool submit_failed_said;
} budget_worker;

typedef struct flush_job {
    store_service *service;
    spend_batch *batch;
} flush_job;

/* On the store's thread. */
static void run_flush(store *s, void *arg)
{
    flush_job *job = arg;
    store_service_write_spend(job->service, s, job->batch);
    spend_batch_free(job->batch);
    free(job);
}

static void flush(budget_worker *bw)
{
    spend_batch *b = spend_tally_take(bw->tally, (int64_t)time(NULL));
    if (!b) return;
    flush_job *job = xcalloc(1, sizeof *job);
    job->service = bw->service;
    job->batch = b;
    if (store_service_submit(bw->service, run_flush, job)) return;
    /* the store's queue is full: this batch's spend is lost to the store (the tally keeps
     * counting it for this worker's budget checks until it is forgotten) */
    if (!bw->submit_failed_said)
        fprintf(stderr, "aigw: spend: the store's queue is full; a second of spend was not recorded\n");
    bw->submit_failed_said = true;
    spend_batch_free(b);
    free(job);
}

static void on_flush_timer(uv_timer_t *timer)
{
    flush(timer->data);
}

/* On the store's thread: replace what waits in the mailbox, wake the loop. */
static void on_spend_published(void *ud, spend_snapshot *snap)
{
    budget_worker *bw = ud;
    spend_snapshot_release(atomic_exchange(&bw->next, snap));
    uv_async_send(&bw->async);
}

static void on_spend_async(uv_async_t *async)
{
    budget_worker *bw = async->data;
    spend_snapshot *next = atomic_exchange(&bw->next, NULL);
    if (!next) return;
    spend_snapshot_release(bw->current);
    bw->current = next;
    spend_tally_applied(bw->tally, next->applied[spend_tally_worker(bw->tally)]);
}

static void *budget_worker_init(worker *w)
{
    store_service *service = auth_service();
    if (!service) return NULL;
    budget_worker *bw = xcalloc(1, sizeof *bw);
    bw->service = service;
    bw->tally = spend_tally_new(atomic_fetch_add(&next_worker_slot, 1) % SPEND_WORKERS_MAX);
    atomic_init(&bw->next, NULL);
    bw->current = store_service_spend(service);
    uv_async_init(&w->loop, &bw->async, on_spend_async);
    bw->async.data = bw;
    uv_timer_init(&w->loop, &bw->timer);
    bw->timer.data = bw;
    uv_timer_start(&bw->timer, on_flush_timer, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&bw->timer); /* a worker's loop ends without waiting for it */
    bw->open_handles = 2;
    bw->sub = (store_subscriber){.publish_spend = on_spend_published, .ud = bw};
    store_service_subscribe(service, &bw->sub);
    return bw;
}

static void on_handle_closed(uv_handle_t *h)
{
    budget_worker *bw = h->data;
    if (--bw->open_handles) return;
    spend_snapshot_release(atomic_exchange(&bw->next, NULL));
    spend_snapshot_release(bw->current);
    spend_tally_free(bw->tally);
    free(bw);
}

static void budget_worker_close(void *state)
{
    budget_worker *bw = state;
    if (!bw) return;
    flush(bw); /* the last of it: the service writes queued jobs before it stops */
    store_service_unsubscribe(bw->service, &bw->sub); /* no publish after this */
    uv_timer_stop(&bw->timer);
    uv_close((uv_handle_t *)&bw->timer, on_handle_closed);
    uv_close((uv_handle_t *)&bw->async, on_handle_closed);
}

/* ---- the check (ADMIT) ----------------------------------------------------------------------- */

static void time_text(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* 429 budget_exceeded in the client's shape; LiteLLM's message, without the key. */
static void refuse_budget(exchange *x, const char *whose, const char *id, double spent, double max,
                          int64_t duration, int64_t now)
{
    static const char head[] = "x-should-retry: false\r\n";
    char msg[512], resets[64] = "";
    if (duration > 0) {
        char when[32];
        time_text(budget_period_start(duration, now) + duration, when, sizeof when);
        snprintf(resets, sizeof resets, "; the budget resets at %s", when);
    }
    snprintf(msg, sizeof msg, "Budget has been exceeded! %s=%.256s Current cost: %.6f, Max budget: %.6f%s",
             whose, id, spent, max, resets);
    exchange_set_head(x, head, sizeof head - 1);
    x->rejection = REJECT_BUDGET;
    exchange_error(x, 429, "budget_exceeded", "budget_exceeded", NULL, msg);
}

static double spent(const budget_worker *bw, char kind, const char *id, int64_t duration, int64_t now)
{
    return spend_snapshot_get(bw->current, kind, id, duration, now) +
           spend_tally_pending(bw->tally, kind, id);
}

/* What the request may still spend, the least of its key's and its team's (an auto route keeps
 * candidates it would cost more than this out: plan_auto.c). */
static void note_budget_left(exchange *x, double left)
{
    if (left < 0) left = 0;
    if (!x->budget_limited || left < x->budget_left_usd) x->budget_left_usd = left;
    x->budget_limited = true;
}

static stage_result budget_on_request(exchange *x, void *state)
{
    const store_key *k = x->key;
    budget_worker *bw = exchange_worker_state(x, &stage_budget);
    if (!k || !bw) return STAGE_DECLINED; /* auth off, or the master key */
    int64_t now = (int64_t)time(NULL);
    const store_team *team = auth_key_team(x);
    if (team && team->blocked) {
        x->rejection = REJECT_TEAM_BLOCKED;
        auth_refuse(x, 403, "team_blocked", NULL, "This gateway key's team is blocked");
        return STAGE_DONE;
    }
    if (k->max_budget >= 0 || k->soft_budget >= 0) {
        double s = spent(bw, 'k', k->id, k->budget_duration, now);
        if (k->max_budget >= 0 && s >= k->max_budget) {
            refuse_budget(x, "Key", k->id, s, k->max_budget, k->budget_duration, now);
            return STAGE_DONE;
        }
        if (k->soft_budget >= 0 && s >= k->soft_budget) x->budget_note = "key";
        if (k->max_budget >= 0) note_budget_left(x, k->max_budget - s);
    }
    if (team && (team->max_budget >= 0 || team->soft_budget >= 0)) {
        double s = spent(bw, 't', team->id, team->budget_duration, now);
        if (team->max_budget >= 0 && s >= team->max_budget) {
            refuse_budget(x, "Team", team->id, s, team->max_budget, team->budget_duration, now);
            return STAGE_DONE;
        }
        if (team->soft_budget >= 0 && s >= team->soft_budget && !x->budget_note) x->budget_note = "team";
        if (team->max_budget >= 0) note_budget_left(x, team->max_budget - s);
    }
    return STAGE_NEXT;
}

/* ---- the observer (RECORD) ------------------------------------------------------------------- */

static void spend_on_record(const exchange_record *r, void *worker_state)
{
    budget_worker *bw = worker_state;
    if (!bw || !r->key_id || !r->provider) return;
    const record_usage *u = &r->usage;
    spend_tally_add(bw->tally, r->key_id, r->team, r->model, u->prompt, u->completion, u->cached,
                    u->reasoning, r->cost_usd, (int64_t)time(NULL));
    if (spend_tally_full(bw->tally)) flush(bw);
}

/* One stage does both: the observer adds to the tally the check reads (a stage's worker state
 * is its own). */
const stage stage_budget = {
    .name = "budget",
    .phase = PHASE_ADMIT,
    .worker_init = budget_worker_init,
    .worker_close = budget_worker_close,
    .on_request = budget_on_request,
    .on_record = spend_on_record,
};
