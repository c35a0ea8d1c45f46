/* spend.c — one worker's spend tally between flushes (spend.h).
 *
 * Two fixed open-addressing tables, cleared at each take: the batch's rows by (hour, key, team,
 * model) and its budgets by (kind, id), each twice the size of what it may hold so a probe stays
 * short. A taken batch's budget deltas are kept sorted by (kind, id) until the store has
 * applied it: pending = the budget's amount in the batch being filled + a binary search in each
 * batch in flight (a handful: one a second while the store keeps up).
 *
 * Rejected: one running total per budget decremented when a batch is applied (the total must
 * then outlive the batches and be pruned, and a lost batch would leave it wrong for ever). */
#include "observe/spend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define ROW_SLOTS (2 * SPEND_TALLY_ROWS)
#define OWNER_SLOTS (2 * SPEND_TALLY_OWNERS)

typedef struct inflight_batch {
    uint64_t seq;
    budget_delta *deltas; /* sorted by (kind, id); ids owned */
    size_t n;
} inflight_batch;

struct spend_tally {
    int worker;
    uint64_t seq; /* the last taken */
    spend_row rows[SPEND_TALLY_ROWS];
    size_t nrows;
    uint32_t row_slots[ROW_SLOTS]; /* 0: empty; else index + 1 */
    budget_delta owners[SPEND_TALLY_OWNERS];
    size_t nowners;
    uint32_t owner_slots[OWNER_SLOTS];
    inflight_batch inflight[SPEND_TALLY_INFLIGHT]; /* oldest first */
    size_t ninflight;
};

static uint64_t hash_bytes(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL; /* a separator, so "a"+"bc" differs from "ab"+"c" */
}

static bool same(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

spend_tally *spend_tally_new(int worker)
{
    spend_tally *t = xcalloc(1, sizeof *t);
    t->worker = worker;
    return t;
}

int spend_tally_worker(const spend_tally *t)
{
    return t->worker;
}

static void free_deltas(budget_delta *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(d[i].id);
    free(d);
}

void spend_tally_free(spend_tally *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].team_id);
        free(t->rows[i].model);
    }
    for (size_t i = 0; i < t->nowners; i++)
        free(t->owners[i].id);
    for (size_t i = 0; i < t->ninflight; i++)
        free_deltas(t->inflight[i].deltas, t->inflight[i].n);
    free(t);
}

bool spend_tally_empty(const spend_tally *t)
{
    return t->nrows == 0 && t->nowners == 0;
}

bool spend_tally_full(const spend_tally *t)
{
    return t->nrows == SPEND_TALLY_ROWS || t->nowners + 2 > SPEND_TALLY_OWNERS;
}

/* The slot of (kind, id) in the owners' table: its entry, or the empty slot to fill. */
static uint32_t *owner_slot(spend_tally *t, char kind, const char *id)
{
    char k[2] = {kind, 0};
    uint64_t h = hash_bytes(hash_bytes(14695981039346656037ULL, k), id);
    for (size_t i = h % OWNER_SLOTS;; i = (i + 1) % OWNER_SLOTS) {
        uint32_t *slot = &t->owner_slots[i];
        if (!*slot) return slot;
        const budget_delta *d = &t->owners[*slot - 1];
        if (d->kind == kind && !strcmp(d->id, id)) return slot;
    }
}

static void charge(spend_tally *t, char kind, const char *id, double cost)
{
    uint32_t *slot = owner_slot(t, kind, id);
    if (!*slot) {
        if (t->nowners == SPEND_TALLY_OWNERS) return; /* the caller flushes when full: not reached */
        t->owners[t->nowners] = (budget_delta){.kind = kind, .id = xstrdup(id)};
        *slot = (uint32_t)++t->nowners;
    }
    t->owners[*slot - 1].cost_usd += cost;
}

void spend_tally_add(spend_tally *t, const char *key_id, const char *team, const char *model, int64_t prompt,
                     int64_t completion, int64_t cached, int64_t reasoning, double cost_usd, int64_t now)
{
    if (cost_usd < 0) cost_usd = 0;
    int64_t hour = now - now % 3600;
    uint64_t h = hash_bytes(hash_bytes(hash_bytes((uint64_t)hour * 1099511628211ULL, key_id), team), model);
    uint32_t *slot = NULL;
    for (size_t i = h % ROW_SLOTS;; i = (i + 1) % ROW_SLOTS) {
        slot = &t->row_slots[i];
        if (!*slot) break;
        const spend_row *r = &t->rows[*slot - 1];
        if (r->hour == hour && !strcmp(r->key_id, key_id) && same(r->team_id, team) && same(r->model, model))
            break;
    }
    if (!*slot && t->nrows < SPEND_TALLY_ROWS) {
        spend_row *r = &t->rows[t->nrows];
        memset(r, 0, sizeof *r);
        r->hour = hour;
        snprintf(r->key_id, sizeof r->key_id, "%s", key_id);
        r->team_id = xstrdup(team ? team : "");
        r->model = xstrdup(model ? model : "");
        *slot = (uint32_t)++t->nrows;
    }
    if (*slot) {
        spend_row *r = &t->rows[*slot - 1];
        r->requests++;
        r->prompt_tokens += prompt;
        r->completion_tokens += completion;
        r->cached_tokens += cached;
        r->reasoning_tokens += reasoning;
        r->cost_usd += cost_usd;
    }
    if (strcmp(key_id, "master")) charge(t, 'k', key_id, cost_usd);
    if (team && *team) charge(t, 't', team, cost_usd);
}

static int delta_cmp(const void *a, const void *b)
{
    const budget_delta *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return strcmp(x->id, y->id);
}

spend_batch *spend_tally_take(spend_tally *t, int64_t now)
{
    if (spend_tally_empty(t)) return NULL;
    spend_batch *b = xcalloc(1, sizeof *b);
    b->worker = t->worker;
    b->seq = ++t->seq;
    b->now = now;
    b->nrows = t->nrows;
    b->rows = xcalloc(t->nrows ? t->nrows : 1, sizeof *b->rows);
    memcpy(b->rows, t->rows, t->nrows * sizeof *b->rows); /* the strings move to the batch */
    b->ndeltas = t->nowners;
    b->deltas = xcalloc(t->nowners ? t->nowners : 1, sizeof *b->deltas);
    inflight_batch kept = {.seq = b->seq, .n = t->nowners};
    kept.deltas = xcalloc(t->nowners ? t->nowners : 1, sizeof *kept.deltas);
    for (size_t i = 0; i < t->nowners; i++) {
        b->deltas[i] = t->owners[i]; /* the id moves to the batch; the kept copy has its own */
        kept.deltas[i] = t->owners[i];
        kept.deltas[i].id = xstrdup(t->owners[i].id);
    }
    if (kept.n) qsort(kept.deltas, kept.n, sizeof *kept.deltas, delta_cmp);
    if (t->ninflight == SPEND_TALLY_INFLIGHT) { /* the store is far behind: forget the oldest */
        free_deltas(t->inflight[0].deltas, t->inflight[0].n);
        memmove(t->inflight, t->inflight + 1, (SPEND_TALLY_INFLIGHT - 1) * sizeof *t->inflight);
        t->ninflight--;
    }
    t->inflight[t->ninflight++] = kept;
    t->nrows = t->nowners = 0;
    memset(t->row_slots, 0, sizeof t->row_slots);
    memset(t->owner_slots, 0, sizeof t->owner_slots);
    return b;
}

void spend_tally_applied(spend_tally *t, uint64_t seq)
{
    size_t drop = 0;
    while (drop < t->ninflight && t->inflight[drop].seq <= seq) {
        free_deltas(t->inflight[drop].deltas, t->inflight[drop].n);
        drop++;
    }
    if (!drop) return;
    memmove(t->inflight, t->inflight + drop, (t->ninflight - drop) * sizeof *t->inflight);
    t->ninflight -= drop;
}

double spend_tally_pending(const spend_tally *t, char kind, const char *id)
{
    double sum = 0;
    uint32_t slot = *owner_slot((spend_tally *)t, kind, id); /* a lookup: nothing is written */
    if (slot) sum += t->owners[slot - 1].cost_usd;
    budget_delta want = {.kind = kind, .id = (char *)id};
    for (size_t i = 0; i < t->ninflight; i++) {
        const budget_delta *d =
            bsearch(&want, t->inflight[i].deltas, t->inflight[i].n, sizeof want, delta_cmp);
        if (d) sum += d->cost_usd;
    }
    return sum;
}

void spend_batch_free(spend_batch *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->nrows; i++) {
        free(b->rows[i].team_id);
        free(b->rows[i].model);
    }
    free(b->rows);
    free_deltas(b->deltas, b->ndeltas);
    free(b);
}
