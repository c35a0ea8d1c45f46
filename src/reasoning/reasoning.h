/* reasoning.h — inference-time reasoning techniques after OptiLLM's convention: what a
 * technique is called, the prompts each of its steps sends, and the pure decisions between
 * steps (a judge's rating, self-consistency's vote, the part of a chain-of-thought answer the
 * client sees).
 *
 * Pure functions over text: no I/O, no loop, no allocation beyond the caller's buffers (bounded
 * bufs) — the EXECUTE stage that runs a technique's calls is pipeline/reason_stage.c. The
 * technique names, their prompts and their defaults (three proposals for mixture of agents,
 * best-of-n's 0–10 rating, five self-consistency samples, cot_reflection's tags, re2's
 * re-reading, plan search's four steps) are OptiLLM's (codelion/optillm, moa.py, bon.py,
 * self_consistency.py, cot_reflection.py, reread.py, plansearch.py); where aigw differs, the
 * difference is written at the function and in docs/reasoning.md. */
#ifndef AIGW_REASONING_REASONING_H
#define AIGW_REASONING_REASONING_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct json_t;

typedef enum reasoning_technique {
    REASON_NONE,
    REASON_MOA,              /* mixture of agents: 3 proposals, a critique, a synthesis */
    REASON_BON,              /* best of n: n samples, each rated 0–10 by a judge call */
    REASON_SELF_CONSISTENCY, /* n samples, the most common answer */
    REASON_COT_REFLECTION,   /* one call in <thinking>/<reflection>/<output> form: <output> only */
    REASON_RE2,              /* the question asked twice ("Read the question again: …") */
    REASON_PLANSEARCH,       /* observations, derived observations, a plan, its code */
    REASON_COUNT
} reasoning_technique;

/* The bounds a client cannot pass (docs/reasoning.md). */
#define REASON_N_MAX 8                /* bon and self_consistency samples */
#define REASON_CALLS_MAX 24           /* upstream attempts for one request, retries and fallbacks included */
#define REASON_TEXT_MAX 16384         /* bytes of one earlier answer carried into a later step's prompt */
#define REASON_QUERY_MAX (256 * 1024) /* bytes of the conversation a technique reads */

/* OptiLLM's name of a technique ("moa", "bon", …). */
const char *reasoning_name(reasoning_technique t);

typedef enum reasoning_name_result {
    REASON_NAME_NO,          /* not a technique's name */
    REASON_NAME_OK,          /* *t set */
    REASON_NAME_UNSUPPORTED, /* a name OptiLLM knows (mcts, leap, …) that aigw does not run */
} reasoning_name_result;

/* The technique called name (the whole of it: an `optillm_approach` value). "none" and "auto"
 * are REASON_NAME_OK with REASON_NONE (OptiLLM's pass-through). A combination ("moa&bon",
 * "moa|bon") is UNSUPPORTED. */
reasoning_name_result reasoning_from_name(const char *name, size_t len, reasoning_technique *t);

/* A model name's technique prefix, as OptiLLM reads `moa-gpt-4o-mini`: the text before the first
 * '-' names the technique and the rest is the model. NO when the first part names no technique
 * of OptiLLM's (the whole name is a model), or nothing follows the '-'; *rest is the offset of
 * the model in name. */
reasoning_name_result reasoning_from_prefix(const char *name, size_t len, reasoning_technique *t,
                                            size_t *rest);

/* How many samples a technique takes by default (OptiLLM's: bon 3, self_consistency 5), and
 * whether the client's `n` sets it (bon, self_consistency: n is the number of samples; the
 * others take one answer and refuse n > 1). */
int reasoning_default_n(reasoning_technique t);
bool reasoning_takes_n(reasoning_technique t);

/* ---- the conversation ------------------------------------------------------------------------- */

/* OptiLLM's reading of a chat (parse_conversation): system = the system (and developer)
 * messages' text; query = every user and assistant turn as "User: …" / "Assistant: …" lines
 * joined by "\n" (text parts of an array joined by a space; other roles and non-text parts are
 * left out). false when the result passes its buffers' bounds or no user text is there. */
bool reasoning_read_conversation(const struct json_t *messages, buf *system, buf *query);

/* ---- prompts (OptiLLM's wording) ---------------------------------------------------------------- */

/* Texts carried into a later prompt are cut at REASON_TEXT_MAX bytes (at a UTF-8 boundary);
 * every builder returns false when out's bound is passed. */
bool reasoning_moa_critique(buf *out, const char *query, const char *const cand[3], const size_t len[3]);
bool reasoning_moa_final(buf *out, const char *query, const char *const cand[3], const size_t len[3],
                         const char *critique, size_t critique_len);
/* moa's stand-in when the critique call gives nothing (OptiLLM's words) */
extern const char reasoning_moa_generic_critique[];
/* best of n's judge: a system message after the conversation, the sample as an assistant turn,
 * then this user turn; the answer is a number (reasoning_rating) */
extern const char reasoning_bon_rate_system[], reasoning_bon_rate_user[];
bool reasoning_cot_system(buf *out, const char *system);
bool reasoning_re2(buf *out, const char *query);
bool reasoning_plan_observations(buf *out, const char *problem);
bool reasoning_plan_derived(buf *out, const char *problem, const char *observations, size_t len);
bool reasoning_plan_solution(buf *out, const char *problem, const char *observations, size_t len);
bool reasoning_plan_implement(buf *out, const char *problem, const char *solution, size_t len);
/* plan search's observation list: the answer's non-empty lines, trimmed, appended to out
 * numbered as the next step's prompt shows them ("1. …" for derived, "Observation 1: …" for
 * the solution); *count is advanced. */
bool reasoning_plan_list(buf *out, const char *text, size_t len, bool as_observation, int *count);

/* ---- decisions ------------------------------------------------------------------------------- */

/* A judge's answer as a rating: the whole text (spaces trimmed) read as a number, as OptiLLM's
 * float() does; anything else is 0. */
double reasoning_rating(const char *text, size_t len);

/* The answer a sample gives, for the vote: the last \boxed{…}; else what follows the last
 * "answer is" / "answer:" (to the end of its line); else the last number; else the whole text.
 * Lower-cased, runs of white space as one space, trimmed, trailing '.' dropped; at most cap-1
 * bytes written to key (NUL-terminated). Returns the key's length. */
size_t reasoning_answer_key(const char *text, size_t len, char *key, size_t cap);

/* Self-consistency's choice among n samples (n <= REASON_N_MAX; a NULL text is a failed
 * sample, left out): the first sample of the most common answer key; a tie goes to the answer
 * seen first. *votes gets its count. -1 when every sample failed. */
int reasoning_majority(const char *const *texts, const size_t *lens, int n, int *votes);

/* ---- cot_reflection's visible part -------------------------------------------------------------- */

/* The part of a <thinking>…<reflection>…</reflection>…</thinking><output>…</output> answer the
 * client sees, cut as the text streams in: before "<output>" nothing is shown (the text is held,
 * bounded: an answer that never opens <output> is shown whole at the end, as OptiLLM does);
 * inside it, text is shown as it comes except the last few bytes, which could be the start of
 * "</output>" or trailing white space; after "</output>", nothing more. Leading white space of
 * the output is dropped. */
typedef struct reasoning_cot_filter {
    int state;  /* 0: before <output>, 1: inside, 2: after */
    buf held;   /* state 0: everything so far; state 1: the undecided tail */
    bool began; /* state 1: something non-blank was shown */
} reasoning_cot_filter;

void reasoning_cot_init(reasoning_cot_filter *f, size_t max);
/* Feeds the next piece of the answer; what the client may see now is appended to out. false
 * when the held text passes its bound. */
bool reasoning_cot_feed(reasoning_cot_filter *f, const char *text, size_t len, buf *out);
/* The answer ended: what is still to be shown is appended to out (the whole answer when it
 * never opened <output>). */
void reasoning_cot_finish(reasoning_cot_filter *f, buf *out);
void reasoning_cot_free(reasoning_cot_filter *f);

#endif
