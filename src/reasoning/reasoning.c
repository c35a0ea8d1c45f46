/* reasoning.c — the techniques' names, prompts and decisions; see reasoning.h.
 *
 * The prompts are OptiLLM's wording (its Python f-strings' indentation left out): a client that
 * moves from OptiLLM to aigw gets the same calls. Every text that grows a prompt — the
 * conversation, an earlier step's answer — is bounded here (REASON_QUERY_MAX, REASON_TEXT_MAX)
 * and every output buffer has its own maximum, so no client can make a step's prompt grow
 * without bound across steps.
 *
 * Self-consistency: OptiLLM clusters samples by difflib's similarity ratio (>= 0.8). That is
 * quadratic in the texts' lengths and would run on the worker's loop; aigw votes on each
 * sample's extracted answer (reasoning_answer_key) instead — the usual self-consistency vote —
 * which is linear. Rejected: a bounded similarity on the first kilobytes (it still costs
 * milliseconds for eight long samples, and two answers that differ only in the final number
 * are "similar" to it). */
#include "reasoning/reasoning.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const names[REASON_COUNT] = {
    [REASON_NONE] = "none",
    [REASON_MOA] = "moa",
    [REASON_BON] = "bon",
    [REASON_SELF_CONSISTENCY] = "self_consistency",
    [REASON_COT_REFLECTION] = "cot_reflection",
    [REASON_RE2] = "re2",
    [REASON_PLANSEARCH] = "plansearch",
};

/* OptiLLM's other approaches: known to its parser, not run by aigw (a prefix of one of them is
 * refused rather than sent as a model name that no provider has). */
static const char *const unsupported[] = {"mcts", "rto", "z3", "pvg", "rstar", "leap", "cepo", "mars"};

const char *reasoning_name(reasoning_technique t)
{
    return t >= 0 && t < REASON_COUNT ? names[t] : "none";
}

static bool same(const char *a, size_t len, const char *b)
{
    return strlen(b) == len && !memcmp(a, b, len);
}

reasoning_name_result reasoning_from_name(const char *name, size_t len, reasoning_technique *t)
{
    if (same(name, len, "auto")) {
        *t = REASON_NONE;
        return REASON_NAME_OK;
    }
    for (int i = 0; i < REASON_COUNT; i++)
        if (same(name, len, names[i])) {
            *t = (reasoning_technique)i;
            return REASON_NAME_OK;
        }
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (same(name, len, unsupported[i])) return REASON_NAME_UNSUPPORTED;
    if (memchr(name, '&', len) || memchr(name, '|', len)) return REASON_NAME_UNSUPPORTED;
    return REASON_NAME_NO;
}

reasoning_name_result reasoning_from_prefix(const char *name, size_t len, reasoning_technique *t,
                                            size_t *rest)
{
    const char *dash = memchr(name, '-', len);
    if (!dash || dash == name || (size_t)(dash - name) + 1 >= len) return REASON_NAME_NO;
    size_t plen = (size_t)(dash - name);
    reasoning_technique found;
    reasoning_name_result r = reasoning_from_name(name, plen, &found);
    /* "auto-…" and "none-…" are model names here: OptiLLM's parser only strips techniques */
    if (r == REASON_NAME_NO || (r == REASON_NAME_OK && found == REASON_NONE)) return REASON_NAME_NO;
    *rest = plen + 1;
    if (r == REASON_NAME_OK) *t = found;
    return r;
}

int reasoning_default_n(reasoning_technique t)
{
    return t == REASON_BON ? 3 : t == REASON_SELF_CONSISTENCY ? 5 : 1;
}

bool reasoning_takes_n(reasoning_technique t)
{
    return t == REASON_BON || t == REASON_SELF_CONSISTENCY;
}

/* ---- the conversation ------------------------------------------------------------------------- */

static void content_text(const json_t *content, buf *out)
{
    if (json_is_string(content)) {
        buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i, parts = 0;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *text = json_object_get(part, "text");
        if (!json_is_string(text)) continue;
        if (parts++) buf_append_lit(out, " ");
        buf_append(out, json_string_value(text), json_string_length(text));
    }
}

bool reasoning_read_conversation(const json_t *messages, buf *system, buf *query)
{
    size_t i;
    const json_t *m;
    bool user = false;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");
        if (!role) continue;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (system->len) buf_append_lit(system, "\n");
            content_text(content, system);
        } else if (!strcmp(role, "user") || !strcmp(role, "assistant")) {
            if (query->len) buf_append_lit(query, "\n");
            buf_append_str(query, role[0] == 'u' ? "User: " : "Assistant: ");
            content_text(content, query);
            user |= role[0] == 'u';
        }
    }
    return user && !system->overflowed && !query->overflowed;
}

/* ---- prompts ------------------------------------------------------------------------------------ */

/* text, cut at REASON_TEXT_MAX bytes on a UTF-8 boundary */
static void append_bounded(buf *out, const char *text, size_t len)
{
    if (len > REASON_TEXT_MAX) {
        len = REASON_TEXT_MAX;
        while (len && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    buf_append(out, text, len);
}

static void candidates(buf *out, const char *const cand[3], const size_t len[3])
{
    for (int i = 0; i < 3; i++) {
        buf_printf(out, "Candidate %d:\n", i + 1);
        append_bounded(out, cand[i], len[i]);
        buf_append_lit(out, "\n\n");
    }
}

bool reasoning_moa_critique(buf *out, const char *query, const char *const cand[3], const size_t len[3])
{
    buf_append_lit(out, "Original query: ");
    buf_append_str(out, query);
    buf_append_lit(out, "\n\nI will present you with three candidate responses to the original query. Please "
                        "analyze and critique each response, discussing their strengths and weaknesses. "
                        "Provide your analysis for each candidate separately.\n\n");
    candidates(out, cand, len);
    buf_append_lit(out, "Please provide your critique for each candidate:");
    return !out->overflowed;
}

bool reasoning_moa_final(buf *out, const char *query, const char *const cand[3], const size_t len[3],
                         const char *critique, size_t critique_len)
{
    buf_append_lit(out, "Original query: ");
    buf_append_str(out, query);
    buf_append_lit(out,
                   "\n\nBased on the following candidate responses and their critiques, generate a final "
                   "response to the original query.\n\n");
    candidates(out, cand, len);
    buf_append_lit(out, "Critiques of all candidates:\n");
    append_bounded(out, critique, critique_len);
    buf_append_lit(out, "\n\nPlease provide a final, optimized response to the original query:");
    return !out->overflowed;
}

const char reasoning_moa_generic_critique[] = "All candidates show reasonable approaches to the problem.";

const char reasoning_bon_rate_system[] =
    "Rate the following responses on a scale from 0 to 10, where 0 is poor and 10 is excellent. Consider "
    "factors such as relevance, coherence, and helpfulness. Respond with only a number.";
const char reasoning_bon_rate_user[] = "Rate the above response:";

bool reasoning_cot_system(buf *out, const char *system)
{
    buf_append_str(out, system);
    buf_append_lit(
        out,
        "\n\nYou are an AI assistant that uses a Chain of Thought (CoT) approach with reflection to answer "
        "queries. Follow these steps:\n\n"
        "1. Think through the problem step by step within the <thinking> tags.\n"
        "2. Reflect on your thinking to check for any errors or improvements within the <reflection> tags.\n"
        "3. Make any necessary adjustments based on your reflection.\n"
        "4. Provide your final, concise answer within the <output> tags.\n\n"
        "Important: The <thinking> and <reflection> sections are for your internal reasoning process only.\n"
        "Do not include any part of the final answer in these sections.\n"
        "The actual response to the query must be entirely contained within the <output> tags.\n\n"
        "Use the following format for your response:\n"
        "<thinking>\n"
        "[Your step-by-step reasoning goes here. This is your internal thought process, not the final "
        "answer.]\n"
        "<reflection>\n"
        "[Your reflection on your reasoning, checking for errors or improvements]\n"
        "</reflection>\n"
        "[Any adjustments to your thinking based on your reflection]\n"
        "</thinking>\n"
        "<output>\n"
        "[Your final, concise answer to the query. This is the only part that will be shown to the user.]\n"
        "</output>");
    return !out->overflowed;
}

bool reasoning_re2(buf *out, const char *query)
{
    buf_append_str(out, query);
    buf_append_lit(out, "\nRead the question again: ");
    buf_append_str(out, query);
    return !out->overflowed;
}

bool reasoning_plan_observations(buf *out, const char *problem)
{
    buf_append_lit(out, "You are an expert Python programmer. You will be given a competitive programming "
                        "question\n(problem specification). You will return several useful, non-obvious, and "
                        "correct observations\nabout the problem, like hints to solve the problem. You will "
                        "NOT return any code. Be as\ncreative as possible, going beyond what you think is "
                        "intuitively correct.\n\nHere is the competitive programming problem:\n");
    buf_append_str(out, problem);
    buf_append_lit(out, "\n\nPlease provide 3 observations.");
    return !out->overflowed;
}

bool reasoning_plan_derived(buf *out, const char *problem, const char *observations, size_t len)
{
    buf_append_lit(out,
                   "You are an expert Python programmer. You will be given a competitive programming "
                   "question\n(problem specification) and several correct observations about the problem.\n"
                   "You will brainstorm several new, useful, and correct observations about the problem, "
                   "derived\nfrom the given observations. You will NOT return any code. Be as creative as "
                   "possible, going\nbeyond what you think is intuitively correct.\n\nHere is the "
                   "competitive programming problem:\n");
    buf_append_str(out, problem);
    buf_append_lit(out, "\n\nHere are the existing observations:\n");
    append_bounded(out, observations, len);
    buf_append_lit(out, "\n\nPlease provide 2 new observations derived from the existing ones.");
    return !out->overflowed;
}

bool reasoning_plan_solution(buf *out, const char *problem, const char *observations, size_t len)
{
    buf_append_lit(out, "Here is the competitive programming problem:\n");
    buf_append_str(out, problem);
    buf_append_lit(out, "\n\nHere are the intelligent observations to help solve the problem:\n");
    append_bounded(out, observations, len);
    buf_append_lit(out,
                   "\n\nUse these observations above to brainstorm a natural language solution to the "
                   "problem above.\nNote that your intuition may lead you astray, so come up with simple, "
                   "creative ideas that\ngo beyond what you would usually come up with and exceeds your "
                   "narrow intuition.\nQuote relevant parts of the observations EXACTLY before each step "
                   "of the solution. QUOTING\nIS CRUCIAL.");
    return !out->overflowed;
}

bool reasoning_plan_implement(buf *out, const char *problem, const char *solution, size_t len)
{
    buf_append_lit(out,
                   "You are an expert Python programmer. You will be given a question (problem "
                   "specification)\nand a natural language solution/tutorial that describes how to solve "
                   "the problem. You will\ngenerate a correct Python program that matches said "
                   "specification and tutorial and passes\nall tests. You will NOT return anything except "
                   "for the program inside markdown codeblocks.\n\nProblem:\n");
    buf_append_str(out, problem);
    buf_append_lit(out, "\n\nSolution:\n");
    append_bounded(out, solution, len);
    buf_append_lit(out, "\n\nPlease implement the solution in Python.");
    return !out->overflowed;
}

bool reasoning_plan_list(buf *out, const char *text, size_t len, bool as_observation, int *count)
{
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t a = start, b = end;
        while (a < b && isspace((unsigned char)text[a]))
            a++;
        while (b > a && isspace((unsigned char)text[b - 1]))
            b--;
        if (b > a) {
            ++*count;
            if (out->len) buf_append_lit(out, "\n");
            if (as_observation)
                buf_printf(out, "Observation %d: ", *count);
            else
                buf_printf(out, "%d. ", *count);
            append_bounded(out, text + a, b - a);
        }
        start = end + 1;
    }
    return !out->overflowed;
}

/* ---- decisions ------------------------------------------------------------------------------- */

double reasoning_rating(const char *text, size_t len)
{
    char num[64];
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)text[a]))
        a++;
    while (b > a && isspace((unsigned char)text[b - 1]))
        b--;
    if (b == a || b - a >= sizeof num) return 0;
    memcpy(num, text + a, b - a);
    num[b - a] = '\0';
    char *end;
    double v = strtod(num, &end);
    if (*end || v != v) return 0; /* not a whole number, or NaN */
    return v;
}

/* The end of the last occurrence of a case-insensitive needle in text, or -1. */
static long last_match(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (!strncasecmp(text + i, needle, n)) return (long)(i + n);
    return -1;
}

static void span_of_last_number(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t i = len;
    while (i > 0 && !isdigit((unsigned char)text[i - 1]))
        i--;
    *end = i;
    while (i > 0 && (isdigit((unsigned char)text[i - 1]) || text[i - 1] == '.' || text[i - 1] == ',' ||
                     (text[i - 1] == '-' && (i == 1 || !isalnum((unsigned char)text[i - 2])))))
        i--;
    while (i < *end && (text[i] == '.' || text[i] == ',')) /* a sentence's full stop is not part */
        i++;
    *start = i;
}

size_t reasoning_answer_key(const char *text, size_t len, char *key, size_t cap)
{
    size_t start = 0, end = len;
    long boxed = last_match(text, len, "\\boxed{");
    long answer_is = last_match(text, len, "answer is");
    long answer_colon = last_match(text, len, "answer:");
    if (boxed >= 0) {
        start = (size_t)boxed;
        int depth = 1;
        end = start;
        while (end < len && depth) {
            depth += text[end] == '{' ? 1 : text[end] == '}' ? -1 : 0;
            if (depth) end++;
        }
    } else if (answer_is >= 0 || answer_colon >= 0) {
        start = (size_t)(answer_is > answer_colon ? answer_is : answer_colon);
        const char *nl = memchr(text + start, '\n', len - start);
        end = nl ? (size_t)(nl - text) : len;
    } else {
        size_t s, e;
        span_of_last_number(text, len, &s, &e);
        if (e > s) start = s, end = e;
    }
    size_t k = 0;
    bool space = false;
    for (size_t i = start; i < end && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c)) {
            space = k > 0;
            continue;
        }
        if (space && k + 2 < cap) key[k++] = ' ';
        space = false;
        key[k++] = (char)tolower(c);
    }
    while (k && (key[k - 1] == '.' || key[k - 1] == ' '))
        k--;
    while (k && key[0] == '*') /* "**Answer:** 42": the bold's closing marks */
        memmove(key, key + 1, --k);
    while (k && key[0] == ' ')
        memmove(key, key + 1, --k);
    if (cap) key[k] = '\0';
    return k;
}

#define KEY_MAX 256

int reasoning_majority(const char *const *texts, const size_t *lens, int n, int *votes)
{
    char keys[REASON_N_MAX][KEY_MAX];
    size_t klen[REASON_N_MAX];
    if (n > REASON_N_MAX) n = REASON_N_MAX;
    for (int i = 0; i < n; i++)
        if (texts[i]) klen[i] = reasoning_answer_key(texts[i], lens[i], keys[i], KEY_MAX);
    int best = -1, best_votes = 0;
    for (int i = 0; i < n; i++) {
        if (!texts[i]) continue;
        bool seen = false; /* counted with an earlier sample already */
        for (int j = 0; j < i && !seen; j++)
            seen = texts[j] && klen[j] == klen[i] && !memcmp(keys[j], keys[i], klen[i]);
        if (seen) continue;
        int count = 0;
        for (int j = i; j < n; j++)
            count += texts[j] && klen[j] == klen[i] && !memcmp(keys[j], keys[i], klen[i]);
        if (count > best_votes) best = i, best_votes = count;
    }
    if (votes) *votes = best_votes;
    return best;
}

/* ---- cot_reflection's visible part -------------------------------------------------------------- */

static const char open_tag[] = "<output>", close_tag[] = "</output>";

void reasoning_cot_init(reasoning_cot_filter *f, size_t max)
{
    memset(f, 0, sizeof *f);
    buf_init(&f->held, max);
}

void reasoning_cot_free(reasoning_cot_filter *f)
{
    buf_free(&f->held);
}

/* Inside <output>: shows what cannot be the start of "</output>" or trailing white space, keeps
 * the rest in held. */
static void cot_inside(reasoning_cot_filter *f, buf *out)
{
    buf *h = &f->held;
    const char *close = h->len ? memmem(h->data, h->len, close_tag, sizeof close_tag - 1) : NULL;
    size_t show = close ? (size_t)(close - h->data) : h->len;
    if (!close) {
        /* keep a tail that could begin "</output>" */
        for (size_t k = sizeof close_tag - 2; k > 0; k--)
            if (h->len >= k && !memcmp(h->data + h->len - k, close_tag, k)) {
                show = h->len - k;
                break;
            }
    }
    size_t visible = show;
    while (visible && isspace((unsigned char)h->data[visible - 1])) /* maybe trailing: held */
        visible--;
    size_t from = 0;
    if (!f->began) {
        while (from < visible && isspace((unsigned char)h->data[from]))
            from++;
        if (from < visible) f->began = true;
    }
    if (close) {
        buf_append(out, h->data + from, visible - from);
        f->state = 2;
        buf_reset(h);
        return;
    }
    if (visible > from) buf_append(out, h->data + from, visible - from);
    buf_consume(h, f->began ? visible : from);
}

bool reasoning_cot_feed(reasoning_cot_filter *f, const char *text, size_t len, buf *out)
{
    if (f->state == 2 || !len) return true;
    if (buf_append(&f->held, text, len) != BUF_OK) return false;
    if (f->state == 0) {
        const char *open = memmem(f->held.data, f->held.len, open_tag, sizeof open_tag - 1);
        if (!open) return true;
        buf_consume(&f->held, (size_t)(open - f->held.data) + sizeof open_tag - 1);
        f->state = 1;
    }
    cot_inside(f, out);
    return true;
}

void reasoning_cot_finish(reasoning_cot_filter *f, buf *out)
{
    buf *h = &f->held;
    if (f->state == 0) { /* never opened <output>: the whole answer, trimmed */
        size_t a = 0, b = h->len;
        while (a < b && isspace((unsigned char)h->data[a]))
            a++;
        while (b > a && isspace((unsigned char)h->data[b - 1]))
            b--;
        buf_append(out, h->data + a, b - a);
    } else if (f->state == 1) { /* <output> not closed: what it holds, without trailing space */
        size_t a = 0, b = h->len;
        if (!f->began)
            while (a < b && isspace((unsigned char)h->data[a]))
                a++;
        while (b > a && isspace((unsigned char)h->data[b - 1]))
            b--;
        buf_append(out, h->data + a, b - a);
    }
    buf_reset(h);
    f->state = 2;
}
