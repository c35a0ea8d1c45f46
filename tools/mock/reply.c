/* reply.c — aigw-mock's format-independent rules: a canonical view of a request → a canonical
 * reply. The contract is the "Rules" section of tools/mock/README.md; this file is its only
 * implementation, and the three format files only translate into and out of it.
 *
 * Invariants:
 *   - The same conversation in any of the three formats gives the same view, hence the same
 *     reply text, tool calls, finish and usage — that is what lets a gateway's translation be
 *     checked against the mock's native answer.
 *   - Everything is derived from the request and the directives; nothing from time or order.
 *   - Prompt words are counted with every [[mock:...]] directive left out, so a directive (in the
 *     body or as an x-mock-* header) never changes the usage it is there to test.
 * Rejected: a tokenizer. Whitespace words are easy to predict in a test and identical in every
 * format; real token counts would tie the mock to one vendor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static const char tool_note[] = "line1\nline2 \"quoted\" \xe2\x9c\x93 \xc3\xa9";

size_t count_prompt_words(const char *s, size_t n)
{
    size_t words = 0;
    const char *end = s + n;
    while (s < end) {
        const char *open = memmem(s, (size_t)(end - s), "[[mock:", 7);
        const char *stop = open ? open : end;
        words += count_words(s, (size_t)(stop - s));
        if (!open) break;
        const char *close = memmem(open, (size_t)(end - open), "]]", 2);
        /* a directive separates words: "a[[mock:x]]b" counts two */
        s = close ? close + 2 : end;
    }
    return words;
}

size_t count_words(const char *s, size_t n)
{
    size_t words = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool space = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
        if (!space && !in) words++;
        in = !space;
    }
    return words;
}

void clean_text(sbuf *s)
{
    if (!s->p) sb_reserve(s, 0);
    char *p;
    while ((p = strstr(s->p, "[[mock:"))) {
        char *close = strstr(p, "]]");
        size_t cut = close ? (size_t)(close + 2 - p) : strlen(p);
        memmove(p, p + cut, strlen(p + cut) + 1);
        s->len -= cut;
    }
    size_t start = 0;
    while (start < s->len && strchr(" \t\r\n", s->p[start]))
        start++;
    size_t end = s->len;
    while (end > start && strchr(" \t\r\n", s->p[end - 1]))
        end--;
    memmove(s->p, s->p + start, end - start);
    s->len = end - start;
    if (s->len > 200) {
        s->len = 200;
        while (s->len && ((unsigned char)s->p[s->len] & 0xC0) == 0x80)
            s->len--;
    }
    s->p[s->len] = '\0';
}

size_t next_word_piece(const char *s, size_t len, size_t pos)
{
    size_t i = pos;
    while (i < len && s[i] != ' ')
        i++;
    while (i < len && s[i] == ' ')
        i++;
    return i;
}

size_t next_utf8_piece(const char *s, size_t len, size_t pos, size_t max)
{
    size_t end = pos + max;
    if (end >= len) return len;
    /* back off to the start of a sequence; a piece of `max` ≥ 4 bytes always keeps one */
    while (end > pos + 1 && ((unsigned char)s[end] & 0xC0) == 0x80)
        end--;
    return end;
}

void content_text(json_t *content, sbuf *out)
{
    if (json_is_string(content)) {
        sb_add(out, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t)) {
                if (out->len) sb_str(out, " ");
                sb_add(out, json_string_value(t), json_string_length(t));
            }
        }
    }
}

/* ---- the view ----------------------------------------------------------------------------- */

void view_init(mock_view *v)
{
    memset(v, 0, sizeof *v);
    v->max_tokens = -1;
}

void view_free(mock_view *v)
{
    free(v->last_user.p);
    free(v->results.p);
    free(v->msg_text.p);
    free(v->msg_results.p);
    free(v->last_assistant.p);
}

void view_system(mock_view *v, const char *s, size_t n)
{
    v->prompt_words += count_prompt_words(s, n);
    if (memmem(s, n, "<output>", 8)) v->cot_format = true;
}

void view_message_begin(mock_view *v, bool user)
{
    v->in_user = user;
    v->msg_text.len = v->msg_results.len = 0;
    v->msg_images = v->msg_nresults = 0;
}

void view_text(mock_view *v, const char *s, size_t n)
{
    v->prompt_words += count_prompt_words(s, n);
    if (v->msg_text.len) sb_str(&v->msg_text, " ");
    sb_add(&v->msg_text, s, n);
}

void view_image(mock_view *v)
{
    v->msg_images++;
}

void view_result(mock_view *v, const char *s, size_t n)
{
    v->prompt_words += count_prompt_words(s, n);
    if (v->msg_nresults++) sb_str(&v->msg_results, " | ");
    sb_add(&v->msg_results, s, n);
}

void view_message_end(mock_view *v)
{
    if (v->msg_nresults) {
        /* consecutive result messages (OpenAI's one per `tool` message) are one turn */
        if (!v->prev_had_results) {
            v->results.len = 0;
            v->nresults = 0;
        }
        if (v->nresults) sb_str(&v->results, " | ");
        sb_add(&v->results, v->msg_results.p, v->msg_results.len);
        v->nresults += v->msg_nresults;
    } else {
        v->results.len = 0;
        v->nresults = 0;
        if (!v->in_user) {
            v->last_assistant.len = 0;
            sb_add(&v->last_assistant, v->msg_text.p ? v->msg_text.p : "", v->msg_text.len);
        }
        if (v->in_user) {
            v->last_user.len = 0;
            sb_add(&v->last_user, v->msg_text.p ? v->msg_text.p : "", v->msg_text.len);
            v->last_user_images = v->msg_images;
        }
    }
    v->prev_had_results = v->msg_nresults > 0;
}

void view_tool(mock_view *v, const char *name)
{
    if (name && v->ntools < MAX_TOOLS) v->tools[v->ntools++] = name;
}

void view_stop(mock_view *v, const char *s, size_t n)
{
    if (n && v->nstops < MAX_STOPS) {
        v->stops[v->nstops] = s;
        v->stop_lens[v->nstops++] = n;
    }
}

void view_max_tokens(mock_view *v, json_t *n)
{
    if (json_is_integer(n) && json_integer_value(n) >= 0) v->max_tokens = (long)json_integer_value(n);
}

/* ---- the reply ---------------------------------------------------------------------------- */

static void make_words(sbuf *out, long n)
{
    for (long i = 1; i <= n; i++)
        sb_fmt(out, i == 1 ? "w%ld" : " w%ld", i);
}

/* The byte offset just after the n-th word (n ≥ 0), or len when there are fewer words. */
static size_t end_of_word(const char *s, size_t len, long n)
{
    size_t i = 0;
    for (long w = 0; w < n; w++) {
        while (i < len && strchr(" \t\r\n", s[i]))
            i++;
        if (i == len) return len;
        while (i < len && !strchr(" \t\r\n", s[i]))
            i++;
    }
    return n == 0 ? 0 : i;
}

/* Rule 3's limits: the earlier of the first stop sequence and the max_tokens-th word. */
static void limit_text(const mock_view *v, mock_reply *r)
{
    size_t cut = r->text.len;
    mock_finish finish = FINISH_STOP;
    if (v->max_tokens >= 0 && count_words(r->text.p, r->text.len) > (size_t)v->max_tokens) {
        cut = end_of_word(r->text.p, r->text.len, v->max_tokens);
        finish = FINISH_LENGTH;
    }
    size_t best = (size_t)-1;
    for (int i = 0; i < v->nstops; i++) {
        const char *hit = memmem(r->text.p, r->text.len, v->stops[i], v->stop_lens[i]);
        if (hit && (size_t)(hit - r->text.p) < best) {
            best = (size_t)(hit - r->text.p);
            r->stop_sequence = v->stops[i];
            r->stop_sequence_len = v->stop_lens[i];
        }
    }
    if (best != (size_t)-1 && best <= cut) { /* a tie goes to the stop sequence */
        cut = best;
        finish = FINISH_STOP_SEQUENCE;
    } else {
        r->stop_sequence = NULL;
        r->stop_sequence_len = 0;
    }
    r->text.len = cut;
    r->text.p[cut] = '\0';
    r->finish = finish;
}

static void add_call(mock_reply *r, const char *name, const char *query, size_t qlen)
{
    mock_call *call = &r->calls[r->ncalls];
    call->name = name;
    sb_str(&call->args, "{\"city\":\"Paris\",\"query\":");
    sb_json(&call->args, query, qlen);
    sb_fmt(&call->args, ",\"n\":%d,\"units\":[\"c\",\"f\"],\"note\":", r->ncalls);
    sb_json(&call->args, tool_note, sizeof tool_note - 1);
    sb_str(&call->args, "}");
    r->ncalls++;
}

void reply_build(const mock_view *v, const faults *f, mock_reply *r)
{
    memset(r, 0, sizeof *r);
    sbuf query = {0};
    sb_add(&query, v->last_user.p ? v->last_user.p : "", v->last_user.len);
    clean_text(&query);

    if (v->thinking) {
        sb_str(&r->thinking, "mock thinking about: ");
        sb_add(&r->thinking, query.p, query.len);
        snprintf(r->signature, sizeof r->signature, "mock-sig-%016llx",
                 (unsigned long long)fnv1a(r->thinking.p, r->thinking.len, FNV_OFFSET));
    }

    bool forced = v->forced_tool || v->tool_any;
    if (v->nresults) {
        /* rule 1: the last message carries tool results */
        sb_fmt(&r->text, "mock saw %d tool results: ", v->nresults);
        sb_add(&r->text, v->results.p ? v->results.p : "", v->results.len);
    } else if (v->ntools && !v->tool_none && (f->tool_calls > 0 || forced)) {
        /* rule 2: tool calls */
        if (f->tool_calls > 0)
            for (long i = 0; i < f->tool_calls; i++)
                add_call(r, v->tools[i % v->ntools], query.p, query.len);
        else
            add_call(r, v->forced_tool ? v->forced_tool : v->tools[0], query.p, query.len);
        r->finish = FINISH_TOOL_CALLS;
        r->output_words = 10 * (size_t)r->ncalls;
    } else if (!strcmp(query.p ? query.p : "", "Rate the above response:")) {
        /* rule 3a: a judge (OptiLLM's best-of-n) rates the assistant turn before it with the
         * last whole number in it, 0 when it has none */
        const char *t = v->last_assistant.p ? v->last_assistant.p : "";
        size_t end = v->last_assistant.len;
        while (end && (t[end - 1] < '0' || t[end - 1] > '9'))
            end--;
        size_t start = end;
        while (start && t[start - 1] >= '0' && t[start - 1] <= '9')
            start--;
        if (end > start)
            sb_add(&r->text, t + start, end - start);
        else
            sb_str(&r->text, "0");
    } else {
        /* rule 3: a text reply */
        if (f->pick[0]) {
            /* one of the '|'-separated answers, each scope's requests taking them in turn */
            size_t count = 1;
            for (const char *p = f->pick; *p; p++)
                count += *p == '|';
            char scope[300];
            snprintf(scope, sizeof scope, "pick:%s:%s", f->scope, f->pick);
            size_t k = (size_t)(stats_scope_hit(scope) % count);
            const char *p = f->pick;
            for (size_t i = 0; i < k; i++)
                p = strchr(p, '|') + 1;
            size_t n = strcspn(p, "|");
            for (size_t i = 0; i < n; i++)
                sb_add(&r->text, p[i] == '_' ? " " : p + i, 1);
        } else if (f->words) {
            make_words(&r->text, f->words);
        } else {
            sb_str(&r->text, "mock reply to: ");
            sb_add(&r->text, query.p, query.len);
            if (v->last_user_images) sb_fmt(&r->text, " [images: %d]", v->last_user_images);
        }
    }
    if (!r->ncalls) {
        if (!r->text.p) sb_reserve(&r->text, 0);
        if (v->json_output) {
            sbuf json = {0};
            sb_str(&json, "{\"reply\":");
            sb_json(&json, r->text.p, r->text.len);
            sb_str(&json, "}");
            free(r->text.p);
            r->text = json;
        }
        if (v->cot_format) { /* a model following cot_reflection's format */
            sbuf tagged = {0};
            sb_str(&tagged, "<thinking> Let me think step by step. <reflection> The steps look right. "
                            "</reflection> No adjustments. </thinking> <output> ");
            sb_add(&tagged, r->text.p, r->text.len);
            sb_str(&tagged, " </output>");
            free(r->text.p);
            r->text = tagged;
        }
        limit_text(v, r);
        r->output_words = count_words(r->text.p, r->text.len);
    }
    free(query.p);

    r->prompt = v->prompt_words;
    r->cached = (size_t)f->cached < r->prompt ? (size_t)f->cached : r->prompt;
    r->cache_write =
        (size_t)f->cache_write < r->prompt - r->cached ? (size_t)f->cache_write : r->prompt - r->cached;
    r->reasoning = (size_t)f->reasoning;
    stats_usage(r->prompt, reply_completion_tokens(r));
}

void reply_free(mock_reply *r)
{
    free(r->text.p);
    free(r->thinking.p);
    for (int i = 0; i < r->ncalls; i++)
        free(r->calls[i].args.p);
}

size_t reply_completion_tokens(const mock_reply *r)
{
    return r->output_words + r->reasoning;
}
