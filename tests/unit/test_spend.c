/* test_spend.c — a worker's spend tally (observe/spend.c): requests added up per hour, key, team
 * and model; budgets charged to the key (never to "master") and the team; a taken batch stamped
 * with the worker and the next seq; what a budget check adds (the batch being filled plus every
 * batch taken and not yet applied) dropping as the store applies them; the bounds (full, and the
 * oldest batch in flight forgotten). */
#include "../../src/observe/spend.c" /* first: cmocka defines a fail() macro */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define HOUR 1700002800 /* a multiple of 3600 */

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-12;
}

static const spend_row *find_row(const spend_batch *b, int64_t hour, const char *key, const char *team,
                                 const char *model)
{
    for (size_t i = 0; i < b->nrows; i++) {
        const spend_row *r = &b->rows[i];
        if (r->hour == hour && !strcmp(r->key_id, key) && !strcmp(r->team_id, team) &&
            !strcmp(r->model, model))
            return r;
    }
    return NULL;
}

static double delta_of(const spend_batch *b, char kind, const char *id)
{
    for (size_t i = 0; i < b->ndeltas; i++)
        if (b->deltas[i].kind == kind && !strcmp(b->deltas[i].id, id)) return b->deltas[i].cost_usd;
    return -1;
}

static void test_rows_and_deltas(void **state)
{
    spend_tally *t = spend_tally_new(5);
    assert_int_equal(spend_tally_worker(t), 5);
    assert_true(spend_tally_empty(t));
    assert_null(spend_tally_take(t, HOUR));
    spend_tally_add(t, "key_a", "search", "gpt", 10, 5, 2, 1, 0.25, HOUR + 10);
    spend_tally_add(t, "key_a", "search", "gpt", 20, 6, 0, 0, 0.5, HOUR + 3599);
    spend_tally_add(t, "key_a", "search", "gpt", 1, 1, 0, 0, 0.125, HOUR + 3600); /* the next hour */
    spend_tally_add(t, "key_a", NULL, "gpt", 1, 1, 0, 0, -1, HOUR);               /* unknown cost: 0 */
    spend_tally_add(t, "master", "search", NULL, 3, 3, 0, 0, 1, HOUR);
    assert_false(spend_tally_empty(t));
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 0.875));
    assert_true(near(spend_tally_pending(t, 't', "search"), 1.875));
    assert_true(near(spend_tally_pending(t, 'k', "master"), 0)); /* the master key has no budget */

    spend_batch *b = spend_tally_take(t, HOUR + 4000);
    assert_non_null(b);
    assert_int_equal(b->worker, 5);
    assert_int_equal(b->seq, 1);
    assert_int_equal(b->now, HOUR + 4000);
    assert_int_equal(b->nrows, 4);
    const spend_row *r = find_row(b, HOUR, "key_a", "search", "gpt");
    assert_non_null(r);
    assert_int_equal(r->requests, 2);
    assert_int_equal(r->prompt_tokens, 30);
    assert_int_equal(r->completion_tokens, 11);
    assert_int_equal(r->cached_tokens, 2);
    assert_int_equal(r->reasoning_tokens, 1);
    assert_true(near(r->cost_usd, 0.75));
    assert_non_null(find_row(b, HOUR + 3600, "key_a", "search", "gpt"));
    assert_true(near(find_row(b, HOUR, "key_a", "", "gpt")->cost_usd, 0));
    assert_non_null(find_row(b, HOUR, "master", "search", ""));
    assert_int_equal(b->ndeltas, 2);
    assert_true(near(delta_of(b, 'k', "key_a"), 0.875));
    assert_true(near(delta_of(b, 't', "search"), 1.875));

    /* taken, not applied: still counted; the new batch adds to it */
    assert_true(spend_tally_empty(t));
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 0.875));
    spend_tally_add(t, "key_a", "search", "gpt", 1, 1, 0, 0, 0.5, HOUR + 4001);
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 1.375));
    spend_batch *b2 = spend_tally_take(t, HOUR + 4002);
    assert_int_equal(b2->seq, 2);
    /* the store applied the first: only the second is still this worker's to add */
    spend_tally_applied(t, 1);
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 0.5));
    assert_true(near(spend_tally_pending(t, 't', "search"), 0.5));
    spend_tally_applied(t, 1); /* again: nothing more */
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 0.5));
    spend_tally_applied(t, 2);
    assert_true(near(spend_tally_pending(t, 'k', "key_a"), 0));
    spend_batch_free(b);
    spend_batch_free(b2);
    spend_tally_free(t);
}

static void test_bounds(void **state)
{
    spend_tally *t = spend_tally_new(0);
    char key[32];
    size_t n = 0;
    while (!spend_tally_full(t)) {
        snprintf(key, sizeof key, "key_%zu", n++);
        spend_tally_add(t, key, NULL, "m", 1, 1, 0, 0, 0.001, HOUR);
    }
    assert_int_equal(n, SPEND_TALLY_ROWS); /* one row and one budget per key: the rows fill first */
    spend_tally_add(t, "key_more", NULL, "m", 1, 1, 0, 0, 0.001, HOUR); /* past the bound: no row */
    spend_batch *b = spend_tally_take(t, HOUR);
    assert_int_equal(b->nrows, SPEND_TALLY_ROWS);
    spend_batch_free(b);
    /* batches in flight past the bound: the oldest is forgotten */
    for (int i = 0; i < SPEND_TALLY_INFLIGHT + 3; i++) {
        spend_tally_add(t, "key_z", NULL, "m", 1, 1, 0, 0, 1, HOUR);
        spend_batch_free(spend_tally_take(t, HOUR));
    }
    assert_true(near(spend_tally_pending(t, 'k', "key_z"), SPEND_TALLY_INFLIGHT));
    spend_tally_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_deltas),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
