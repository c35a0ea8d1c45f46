/* spend.h — one worker's tally of what its keyed requests cost, between flushes to the store.
 *
 * Each worker owns one tally (no lock: only its loop touches it). A finished request adds its
 * tokens and cost to the row of its (hour, key, team, model) and its cost to its key's and
 * team's budgets (spend_tally_add). About once a second the worker takes the rows as a batch
 * (spend_tally_take) and hands it to the store's thread, which writes it and publishes a spend
 * snapshot saying the highest batch of this worker it holds (spend_tally_applied).
 *
 * A budget check asks what this worker has spent that no snapshot holds yet
 * (spend_tally_pending): the batch being filled plus every batch taken and not yet applied. So
 * a worker never forgets its own spend while it is on its way to the store; what it cannot see
 * is the other workers' (and processes') spend of their last second.
 *
 * Bounded: at most SPEND_TALLY_ROWS rows and SPEND_TALLY_OWNERS budgets in the batch being
 * filled (spend_tally_full says to flush early), at most SPEND_TALLY_INFLIGHT batches taken and
 * not applied (past that the oldest is forgotten: the store is behind, its budgets read low for
 * a moment rather than the worker growing without end). Strings are copied. */
#ifndef AIGW_OBSERVE_SPEND_H
#define AIGW_OBSERVE_SPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SPEND_TALLY_ROWS 1024
#define SPEND_TALLY_OWNERS 2048
#define SPEND_TALLY_INFLIGHT 16

typedef struct spend_tally spend_tally;

spend_tally *spend_tally_new(int worker);
void spend_tally_free(spend_tally *t);
/* The worker number it was made with. */
int spend_tally_worker(const spend_tally *t);

/* One request's spend: key_id ("master" for the master key), team (NULL: none), model (NULL:
 * none), the tokens and the cost (negative: unknown, counted as 0), at unix time now. The key's
 * budget is charged unless key_id is "master"; the team's when there is one. */
void spend_tally_add(spend_tally *t, const char *key_id, const char *team, const char *model, int64_t prompt,
                     int64_t completion, int64_t cached, int64_t reasoning, double cost_usd, int64_t now);
/* Whether the batch being filled has nothing in it / cannot take a new row or budget. */
bool spend_tally_empty(const spend_tally *t);
bool spend_tally_full(const spend_tally *t);
/* The batch being filled, as a spend_batch the caller owns (spend_batch_free), stamped with
 * this worker, the next seq and now; the tally starts a new one and remembers the batch's
 * budget deltas until spend_tally_applied covers its seq. NULL when empty. */
spend_batch *spend_tally_take(spend_tally *t, int64_t now);
/* A spend snapshot holds every batch of this worker up to seq. */
void spend_tally_applied(spend_tally *t, uint64_t seq);
/* What (kind 'k' or 't', id) has spent on this worker that no applied batch holds. */
double spend_tally_pending(const spend_tally *t, char kind, const char *id);

void spend_batch_free(spend_batch *b);

#endif
