/* limits.c — the in-process rate limiter of limits.h: a fixed table of counters shared by the
 * workers, updated by compare-and-swap only.
 *
 * A cell is two 64-bit words: its tag (a hash of the subject's id and the rule, the rule in
 * the low two bits so an idle cell knows its own period; 0 is an empty cell) and its state,
 * the window's number (low 24 bits of minutes or days since 1970) above a 40-bit count. One
 * compare-and-swap of the state both rolls the window over and counts, so a check and its
 * count cannot be split by another worker: two workers racing for the 60th request of a
 * minute cannot both have it.
 *
 * A subject's cell is found by probing LIMITS_PROBE cells from its hash; a cell whose window
 * has passed (for its own rule's period) counts as free, so the table needs no sweeper.
 * Known slack, accepted for a lock-free path: two workers that both miss a new subject at the
 * same instant may claim two cells for it (the second one's counts are lost: an under-count of
 * the requests that raced); a cell can be taken over by another subject between one worker's
 * lookup and its count (only a cell idle for a whole window, so a request at the very edge of
 * a window may count once in the wrong subject). Neither lets a client pass a limit by more
 * than the requests in flight at that instant. */
#include "limits/limits.h"
#include "limits/limits_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMITS_PROBE 16
#define COUNT_BITS 40
#define COUNT_MASK ((1ULL << COUNT_BITS) - 1)
#define WINDOW_MASK ((1ULL << 24) - 1)

typedef struct limits_cell {
    _Atomic uint64_t tag;
    _Atomic uint64_t state;
} limits_cell;

struct limits_table {
    limits_cell *cells;
    size_t mask;
    _Atomic uint64_t untracked;
};

int64_t limits_rule_period_ms(limits_rule r)
{
    return r == LIMITS_RPD || r == LIMITS_TPD ? 86400000 : 60000;
}

const char *limits_rule_name(limits_rule r)
{
    static const char *const names[] = {"requests per minute", "requests per day", "tokens per minute",
                                        "tokens per day"};
    return names[r];
}

limits_table *limits_table_new(size_t cells)
{
    size_t n = 64;
    while (n < cells && n < ((size_t)1 << 28))
        n <<= 1;
    limits_table *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->cells = calloc(n, sizeof *t->cells);
    if (!t->cells) {
        fprintf(stderr, "aigw: out of memory for %zu rate-limit cells\n", n);
        abort();
    }
    t->mask = n - 1;
    return t;
}

void limits_table_free(limits_table *t)
{
    if (!t) return;
    free(t->cells);
    free(t);
}

uint64_t limits_untracked(const limits_table *t)
{
    return atomic_load_explicit(&((limits_table *)t)->untracked, memory_order_relaxed);
}

/* ---- cells ------------------------------------------------------------------------------------ */

uint64_t limits__tag(const char *id, size_t len, limits_rule rule)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29; /* the probe start takes low bits: spread the high ones down */
    h = (h & ~3ULL) | (uint64_t)rule;
    return h >> 2 ? h : h | (1ULL << 63);
}

uint32_t limits__window(limits_rule rule, int64_t now_ms)
{
    return (uint32_t)((uint64_t)(now_ms / limits_rule_period_ms(rule)) & WINDOW_MASK);
}

static uint64_t pack(uint32_t window, int64_t count)
{
    return ((uint64_t)window << COUNT_BITS) | ((uint64_t)count & COUNT_MASK);
}

static uint32_t state_window(uint64_t s)
{
    return (uint32_t)(s >> COUNT_BITS);
}

static int64_t state_count(uint64_t s)
{
    return (int64_t)(s & COUNT_MASK);
}

/* The cell holding tag; with claim, a free one is taken for it. -1: none (full, or not there). */
static long find_cell(limits_table *t, uint64_t tag, int64_t now_ms, bool claim)
{
    size_t start = (size_t)(tag >> 2) & t->mask;
    for (size_t i = 0; i < LIMITS_PROBE; i++) {
        size_t at = (start + i) & t->mask;
        if (atomic_load_explicit(&t->cells[at].tag, memory_order_acquire) == tag) return (long)at;
    }
    if (!claim) return -1;
    limits_rule rule = (limits_rule)(tag & 3);
    uint32_t fresh = limits__window(rule, now_ms);
    for (size_t i = 0; i < LIMITS_PROBE; i++) {
        size_t at = (start + i) & t->mask;
        limits_cell *c = &t->cells[at];
        uint64_t old = atomic_load_explicit(&c->tag, memory_order_acquire);
        uint64_t state = atomic_load_explicit(&c->state, memory_order_acquire);
        bool idle = !old || state_window(state) != limits__window((limits_rule)(old & 3), now_ms);
        if (!idle || !atomic_compare_exchange_strong(&c->tag, &old, tag)) continue;
        /* a new owner starts at zero; if another worker already counted for it, keep that */
        atomic_compare_exchange_strong(&c->state, &state, pack(fresh, 0));
        return (long)at;
    }
    return -1;
}

/* Adds amount in the current window unless that would pass max (LIMITS_NONE: no check).
 * Returns the count after, or -1 (with *count_before) when refused. */
static int64_t cell_add(limits_cell *c, limits_rule rule, int64_t amount, int64_t max, int64_t now_ms,
                        int64_t *count_before)
{
    uint32_t w = limits__window(rule, now_ms);
    uint64_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    for (;;) {
        int64_t count = state_window(s) == w ? state_count(s) : 0;
        *count_before = count;
        if (max >= 0 && count + amount > max) return -1;
        int64_t next = count + amount;
        if (next > (int64_t)COUNT_MASK) next = (int64_t)COUNT_MASK;
        if (next < 0) next = 0;
        if (atomic_compare_exchange_weak(&c->state, &s, pack(w, next))) return next;
    }
}

/* Takes amount back from the window it was counted in (nothing once that window has passed). */
static void cell_sub(limits_cell *c, uint32_t window, int64_t amount)
{
    uint64_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    for (;;) {
        if (state_window(s) != window) return;
        int64_t next = state_count(s) - amount;
        if (next < 0) next = 0;
        if (atomic_compare_exchange_weak(&c->state, &s, pack(window, next))) return;
    }
}

/* ---- admission and settlement --------------------------------------------------------------------- */

int64_t limits__reset_ms(limits_rule rule, int64_t now_ms)
{
    int64_t p = limits_rule_period_ms(rule);
    return (now_ms / p + 1) * p - now_ms;
}

/* Keeps the rule with the least remaining of its kind for the headers. */
void limits__note(limits_ticket *tk, limits_rule rule, int64_t max, int64_t count, int64_t now_ms)
{
    int64_t remaining = max - count;
    if (remaining < 0) remaining = 0;
    if (limits_rule_is_tokens(rule)) {
        if (tk->has_tokens && tk->tokens_remaining <= remaining) return;
        tk->has_tokens = true;
        tk->tokens_limit = max;
        tk->tokens_remaining = remaining;
        tk->tokens_reset_ms = limits__reset_ms(rule, now_ms);
    } else {
        if (tk->has_requests && tk->requests_remaining <= remaining) return;
        tk->has_requests = true;
        tk->requests_limit = max;
        tk->requests_remaining = remaining;
        tk->requests_reset_ms = limits__reset_ms(rule, now_ms);
    }
}

bool limits_admit(limits_table *t, const limits_subject *subjects, size_t n, int64_t tokens, int64_t now_ms,
                  limits_ticket *out)
{
    memset(out, 0, sizeof *out);
    out->refused_subject = -1;
    /* at least one token: a request with an empty prompt still needs room under a token limit */
    out->tokens_charged = tokens < 1 ? 1 : tokens;
    if (n > LIMITS_SUBJECTS_MAX) n = LIMITS_SUBJECTS_MAX;
    for (size_t i = 0; i < n; i++) {
        const limits_subject *s = &subjects[i];
        for (limits_rule r = 0; r < LIMITS_RULES; r++) {
            int64_t max = s->max[r];
            if (max < 0 || max >= LIMITS_COUNT_MAX) continue;
            uint64_t tag = limits__tag(s->id, s->id_len, r);
            long at = find_cell(t, tag, now_ms, true);
            if (at < 0) {
                atomic_fetch_add_explicit(&t->untracked, 1, memory_order_relaxed);
                continue;
            }
            int64_t amount = limits_rule_is_tokens(r) ? out->tokens_charged : 1;
            int64_t before;
            int64_t after = cell_add(&t->cells[at], r, amount, max, now_ms, &before);
            if (after < 0) {
                /* refused: take back what this request counted so far */
                for (size_t j = 0; j < out->ncounted; j++) {
                    limits_rule cr = out->counted[j].rule;
                    cell_sub(&t->cells[out->counted[j].cell], out->counted[j].window,
                             limits_rule_is_tokens(cr) ? out->tokens_charged : 1);
                }
                out->ncounted = 0;
                out->refused_subject = (int)i;
                out->refused_rule = r;
                out->too_large = amount > max;
                out->retry_after_ms = limits__reset_ms(r, now_ms);
                out->has_requests = out->has_tokens = false;
                limits__note(out, r, max, before, now_ms);
                return false;
            }
            out->counted[out->ncounted].tag = tag;
            out->counted[out->ncounted].cell = (uint32_t)at;
            out->counted[out->ncounted].window = limits__window(r, now_ms);
            out->counted[out->ncounted].rule = (uint8_t)r;
            out->ncounted++;
            limits__note(out, r, max, after, now_ms);
        }
    }
    return true;
}

void limits_settle(limits_table *t, const limits_ticket *tk, int64_t tokens, int64_t now_ms)
{
    if (tokens < 0) tokens = 0;
    int64_t delta = tokens - tk->tokens_charged;
    if (!delta) return;
    for (size_t i = 0; i < tk->ncounted; i++) {
        limits_rule r = tk->counted[i].rule;
        if (!limits_rule_is_tokens(r)) continue;
        uint64_t tag = tk->counted[i].tag;
        long at = tk->counted[i].cell;
        if (atomic_load_explicit(&t->cells[at].tag, memory_order_acquire) != tag)
            at = find_cell(t, tag, now_ms, delta > 0);
        if (at < 0) continue; /* its cell went idle and was taken: nothing left to correct */
        if (delta < 0) {
            cell_sub(&t->cells[at], tk->counted[i].window, -delta);
        } else {
            int64_t before;
            cell_add(&t->cells[at], r, delta, LIMITS_NONE, now_ms, &before);
        }
    }
}

/* ---- headers ------------------------------------------------------------------------------------------ */

size_t limits_format_duration(int64_t ms, char *out, size_t len)
{
    if (ms < 0) ms = 0;
    int n;
    if (ms == 0)
        n = snprintf(out, len, "0s");
    else if (ms < 1000)
        n = snprintf(out, len, "%lldms", (long long)ms);
    else {
        long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
        char secs[16];
        if (frac) {
            int k = snprintf(secs, sizeof secs, "%lld.%03lld", s, frac);
            while (k > 0 && secs[k - 1] == '0')
                secs[--k] = '\0';
        } else {
            snprintf(secs, sizeof secs, "%lld", s);
        }
        if (h)
            n = snprintf(out, len, "%lldh%lldm%ss", h, m, secs);
        else if (m)
            n = snprintf(out, len, "%lldm%ss", m, secs);
        else
            n = snprintf(out, len, "%ss", secs);
    }
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}
