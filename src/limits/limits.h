/* limits.h — rate limits: whether a request may go now, counted against every subject it
 * belongs to (its gateway key, the key with the model it asks for, its team), and what the
 * client is told (the x-ratelimit-* headers, Retry-After).
 *
 * A subject has up to four rules: requests per minute and per day, tokens per minute and per
 * day. Each rule of each subject is one counter in a fixed window aligned to the clock: a
 * minute is 12:01:00–12:02:00 UTC, a day a UTC day. Every instance and every worker agrees on
 * where a window starts without talking to the others, which is what lets the Redis backend
 * count the same windows; the reset a client is told is exact (the window's end). Rejected: a
 * sliding log (memory grows with the limit), GCRA and token buckets (a 60-per-minute limit
 * lets a burst of 60 then one a second, so "at most 60 in a minute" — what a user reads in
 * rpm_limit — is not what it counts), a window starting at a subject's first request (every
 * subject a timer of its own, and instances cannot agree on it).
 *
 * A request's tokens are counted twice: up front, the prompt's estimate (admission refuses it
 * when the estimate would pass the rule), and at settlement (limits_settle, when the request
 * is over), the real usage: the difference is added (or given back while the window is the
 * same one), so tokens the estimate did not know are charged then.
 *
 * In one process the counters live in one table shared by the workers, updated with atomics
 * only (compare-and-swap of one 64-bit word per counter: the window's number and the count):
 * no lock on the request path. The table has a fixed number of cells; a cell whose window has
 * passed is idle and is taken by the next subject that needs one. Subjects come from the
 * store's keys and the limits an administrator set on them, never from what a client sends, so
 * a client cannot fill the table; should it be full of live counters (more active subjects
 * than cells), a rule with no cell is not enforced for that request and limits_untracked()
 * counts it — open, not a refusal, so a full table never stops traffic. */
#ifndef AIGW_LIMITS_LIMITS_H
#define AIGW_LIMITS_LIMITS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIMITS_NONE (-1)
#define LIMITS_SUBJECTS_MAX 4              /* key, key + model, team, and one to spare */
#define LIMITS_COUNT_MAX ((1LL << 40) - 1) /* a count saturates here; larger limits mean none */
#define LIMITS_CELLS_DEFAULT 65536

/* The rules, in the order a subject's max[] holds them. */
typedef enum limits_rule {
    LIMITS_RPM, /* requests per minute */
    LIMITS_RPD, /* requests per day */
    LIMITS_TPM, /* tokens per minute */
    LIMITS_TPD, /* tokens per day */
    LIMITS_RULES
} limits_rule;

static inline bool limits_rule_is_tokens(limits_rule r)
{
    return r == LIMITS_TPM || r == LIMITS_TPD;
}
/* The window's length in milliseconds: a minute or a day. */
int64_t limits_rule_period_ms(limits_rule r);
/* "requests per minute", "tokens per day", … */
const char *limits_rule_name(limits_rule r);

/* What counts are kept under, and its limits. id is the counter's identity (the stage uses
 * "k\x1fKEY_ID", "m\x1fKEY_ID\x1fMODEL", "t\x1fTEAM"); what names it for people, in a
 * refusal's message ("this gateway key"). Both borrowed for the call. */
typedef struct limits_subject {
    const char *id;
    size_t id_len;
    const char *what;
    int64_t max[LIMITS_RULES]; /* LIMITS_NONE: no such rule */
} limits_subject;

/* The counters a request was counted in, and what its response tells the client. Filled by
 * limits_admit, kept by the caller until limits_settle. */
typedef struct limits_ticket {
    struct {
        uint64_t tag;    /* the counter (subject + rule) */
        uint32_t cell;   /* where it was */
        uint32_t window; /* which window the request was counted in */
        uint8_t rule;
    } counted[LIMITS_SUBJECTS_MAX * LIMITS_RULES];
    size_t ncounted;
    int64_t tokens_charged; /* the estimate counted in each token rule */

    /* for the headers: the tightest rule of each kind (least remaining); has_*: one exists */
    bool has_requests, has_tokens;
    int64_t requests_limit, requests_remaining, requests_reset_ms;
    int64_t tokens_limit, tokens_remaining, tokens_reset_ms;

    /* a refusal: which subject (index into the caller's list) and rule, and when to retry */
    int refused_subject; /* -1: admitted */
    limits_rule refused_rule;
    int64_t retry_after_ms;
    bool too_large; /* the prompt alone passes the rule's limit: no wait helps */
} limits_ticket;

typedef struct limits_table limits_table;

/* A table of cells counters (rounded up to a power of two, at least 64). Aborts when out of memory. */
limits_table *limits_table_new(size_t cells);
void limits_table_free(limits_table *t);

/* Counts one request of tokens estimated tokens (at least 1) against every rule of the n subjects, at the
 * wall-clock time now_ms (milliseconds since 1970; injected so tests need no sleep). True:
 * admitted, counted everywhere. False: one rule would pass its limit (out->refused_*), and
 * nothing was counted. Any thread, no lock. */
bool limits_admit(limits_table *t, const limits_subject *subjects, size_t n, int64_t tokens, int64_t now_ms,
                  limits_ticket *out);

/* The request is over and used tokens (prompt + completion) in all: each token rule it was
 * counted in gets the difference from the estimate (given back only while its window is the
 * one it was counted in). Call at most once per admitted ticket. Any thread, no lock. */
void limits_settle(limits_table *t, const limits_ticket *ticket, int64_t tokens, int64_t now_ms);

/* How many rules went unenforced because the table had no free cell (since start). */
uint64_t limits_untracked(const limits_table *t);

/* A reset duration as OpenAI writes it (Go's duration format): "20ms", "1s", "1.5s", "6m0s",
 * "1h2m3s". Returns the length written (out of at least 32 bytes). */
size_t limits_format_duration(int64_t ms, char *out, size_t len);

#endif
