/* router.h — the learned strong/weak router: a request's features and a trained model's score.
 *
 * RouteLLM's idea (a cheap classifier decides whether a prompt needs the strong model), aigw's
 * own implementation: the features are hashed word uni- and bigrams and character trigrams of
 * the last user turn plus a few dense signals of the request's shape (length, code and math markers, turns,
 * tools, a tool result last, the system prompt's size, non-ASCII text, a multiple-choice layout); the model
 * is a logistic regression over them, trained offline by tools/router_train.c on public judgements
 * (docs/routing-quality.md) and shipped as a small text file (router/lr.model; the format is documented in
 * router_model.c and docs/routing-quality.md). The score is the model's probability that the strong model is
 * needed; a threshold (or "send X % to strong", turned into a threshold by the calibration table the file
 * carries) decides.
 *
 * Everything here is a pure function: router_features_extract writes into caller-given
 * memory (the request's arena or the stack) and examines at most ROUTER_TEXT_MAX bytes of the
 * prompt, so a decision costs microseconds whatever the client sends (bench/router_bench.c).
 * The same code computes the features for training (tools/router_train.c), so the model sees
 * at run time exactly what it was trained on.
 *
 * Where later routers plug in: anything that turns a router_input into a score in [0, 1] can
 * stand beside router_model_score (an external model-select API, another model file); the
 * pipeline (plan.c) asks for a score and compares it with the threshold, and the route
 * tree's `router` node only reads the decision. */
#ifndef AIGW_ROUTER_ROUTER_H
#define AIGW_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_TEXT_MAX 1024   /* bytes of the last user turn examined: the first and last half */
#define ROUTER_MAX_HASHES 4096 /* hashed n-grams kept from one prompt (the text bound keeps it below) */
#define ROUTER_TOKEN_MAX 32    /* bytes of one word that are hashed */
#define ROUTER_DENSE 13        /* dense features, in the order router_dense_names lists */
#define ROUTER_BITS_MIN 10
#define ROUTER_BITS_MAX 20
#define ROUTER_FEATURES_VERSION 2 /* changes whenever the features change: a model names the one it needs */

/* What the features are computed from: the request's canonical form reduced to its shape. */
typedef struct router_input {
    const char *text; /* the last user turn's text (its text parts joined), not NUL-terminated */
    size_t len;
    uint32_t turns;        /* user turns in the conversation (1 for a first question) */
    bool tools;            /* the request offers tools */
    bool tool_result_last; /* the last message is a tool result */
    size_t system_bytes;   /* the system prompt's size */
} router_input;

typedef struct router_features {
    uint32_t hashes[ROUTER_MAX_HASHES]; /* bucket numbers, < 2^bits; repeats count twice */
    size_t nhashes;
    float dense[ROUTER_DENSE];
} router_features;

#define ROUTER_HASH_NORM_MIN 16
/* What a prompt's summed bucket weights are divided by the square root of: its number of
 * hashes, but at least ROUTER_HASH_NORM_MIN, so that the two or three buckets of a short text
 * ("hi") move its score no more than a sentence's worth of evidence would. */
static inline size_t router_hash_norm(size_t nhashes)
{
    return nhashes > ROUTER_HASH_NORM_MIN ? nhashes : ROUTER_HASH_NORM_MIN;
}

/* The names of the dense features, for the model file and the docs. */
extern const char *const router_dense_names[ROUTER_DENSE];

/* Computes in's features into out for a model of 2^bits buckets (ROUTER_BITS_MIN..MAX). Reads at
 * most ROUTER_TEXT_MAX bytes of in->text: all of it when shorter, else its first and last
 * ROUTER_TEXT_MAX / 2 bytes. No allocation; any bytes are accepted (not only UTF-8). */
void router_features_extract(const router_input *in, unsigned bits, router_features *out);

/* ---- the model (router_model.c) --------------------------------------------------------------- */

typedef struct router_model router_model;

/* Parses a model file's text (len bytes). NULL with a message naming the line in err when the
 * text is not a model this build can use (another format or features version, bad numbers,
 * missing or extra weights). The model is immutable and may be shared by every thread. */
router_model *router_model_parse(const char *text, size_t len, char *err, size_t errlen);
/* Reads and parses the file at path (blocking: at start or reload, never on a worker's loop);
 * errors as router_model_parse, prefixed with the path. */
router_model *router_model_load(const char *path, char *err, size_t errlen);
void router_model_free(router_model *m);

/* The model's name ("lr"), as `router-<name>-<threshold>` model names use it. */
const char *router_model_name(const router_model *m);
unsigned router_model_bits(const router_model *m);
/* The probability in [0, 1] that the strong model is needed for features f (extracted with the
 * model's bits). */
double router_model_score(const router_model *m, const router_features *f);
/* features + score in one call, the features on the caller's stack. */
double router_model_decide(const router_model *m, const router_input *in);
/* The threshold that sends percent % (0..100) of the training prompts to the strong model:
 * the calibration table's quantile, interpolated. */
double router_model_threshold_for_percent(const router_model *m, double percent);

/* Reads a `router-…` model name's tail: "0.116" is a score threshold in [0, 1]; "30%" asks for
 * 30 % of prompts on the strong model. Returns false for anything else. */
bool router_parse_threshold(const char *s, size_t len, double *threshold, double *percent);

#endif
