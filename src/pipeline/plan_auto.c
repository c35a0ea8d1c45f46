/* plan_auto.c — PLAN's part for an "auto" route: what the request asks of a model, read cheaply
 * from its body, and the route's candidates ranked for it (routing/auto.c) before the walk
 * starts (docs/routing.md, "Auto routes").
 *
 * What is read, with one validating pass of the body (util/json.c: spans of a few top-level
 * members, no tree) and byte searches inside those spans — no parse: measured, 1–3 µs for a chat
 * message and about 55 µs for an 84 KB agent request (51 of them the scan), where jansson takes
 * 1.5 ms:
 *   tools        `tools` (or the old `functions`) is a non-empty array;
 *   images       the conversation (`messages`, `input`, `contents`, `system`) holds a member
 *                "image_url", "input_image", "inline_data" / "inlineData" or a part of type
 *                "image" — a key or a whole string value, so a prompt quoting the word does not
 *                count (its quotes would be escaped), and a false positive only asks more of a
 *                candidate;
 *   JSON schema  "json_schema" inside `response_format` (OpenAI), `text` (Responses API),
 *                `output_config` / `output_format` (Anthropic);
 *   reasoning    `reasoning_effort` other than "none" / "minimal", a Responses `reasoning` with an
 *                effort, an Anthropic `thinking` "enabled" or "adaptive";
 *   output       `max_completion_tokens`, `max_tokens` or `max_output_tokens`, else the node's
 *                output_tokens;
 *   prompt       the body's bytes / 4 (see auto.c: counted only when that passes a window).
 * The key's budget comes from ADMIT (budget.c: what its key and team may still spend).
 *
 * No candidate left: 400 `no_adequate_candidate` naming each candidate and why, in the client's
 * shape (429 `budget_exceeded` when the budget is what kept the priced ones out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/stages.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/timeutil.h"

/* Whether [s, s + len) holds needle. */
static bool span_has(const char *s, size_t len, const char *needle)
{
    return len && memmem(s, len, needle, strlen(needle)) != NULL;
}

/* Whether a span of JSON holds an image part: at each quote (memchr finds them fast; a prompt's
 * own quotes are escaped, so a quote starts a key or a string), one of the members or types an
 * image part has. One pass, however many marks: an agent's body is mostly prose. */
#define MARK(s)                                                                                              \
    {                                                                                                        \
        s, sizeof s - 1                                                                                      \
    }
static bool has_image(const char *s, size_t len)
{
    static const struct {
        const char *mark;
        size_t len;
    } marks[] = {MARK("\"image_url\""),  MARK("\"input_image\""),    MARK("\"inline_data\""),
                 MARK("\"inlineData\""), MARK("\"type\":\"image\""), MARK("\"type\": \"image\"")};
    const char *end = s + len;
    for (const char *p = s; (p = memchr(p, '"', (size_t)(end - p))); p++)
        for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++)
            if ((size_t)(end - p) >= marks[k].len && !memcmp(p, marks[k].mark, marks[k].len)) return true;
    return false;
}
#undef MARK

static bool field_has(const char *body, const json_field *f, const char *needle)
{
    return f->type && span_has(body + f->start, f->end - f->start, needle);
}

/* A non-empty array: something other than white space between its brackets. */
static bool nonempty_array(const char *body, const json_field *f)
{
    if (f->type != JSON_KIND_ARRAY) return false;
    for (size_t i = f->start + 1; i + 1 < f->end; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' && body[i] != '\r') return true;
    return false;
}

static uint64_t field_number(const char *body, const json_field *f)
{
    if (f->type != JSON_KIND_NUMBER || f->end - f->start > 20) return 0;
    char digits[24];
    memcpy(digits, body + f->start, f->end - f->start);
    digits[f->end - f->start] = '\0';
    double v = strtod(digits, NULL);
    return v >= 1 && v < 1e9 ? (uint64_t)v : 0;
}

enum {
    F_TOOLS,
    F_FUNCTIONS,
    F_RESPONSE_FORMAT,
    F_TEXT,
    F_OUTPUT_CONFIG,
    F_OUTPUT_FORMAT,
    F_REASONING_EFFORT,
    F_REASONING,
    F_THINKING,
    F_MAX_COMPLETION,
    F_MAX_TOKENS,
    F_MAX_OUTPUT,
    F_MESSAGES,
    F_INPUT,
    F_CONTENTS,
    F_SYSTEM,
    F__COUNT
};

/* What the request asks of a model (the file's comment says how each is read). */
static void read_request(exchange *x, const route_node *node, route_auto_request *req)
{
    const buf *body = &x->http->body;
    const char *b = body->data ? body->data : "";
    json_field f[F__COUNT] = {
        [F_TOOLS] = {.key = "tools"},
        [F_FUNCTIONS] = {.key = "functions"},
        [F_RESPONSE_FORMAT] = {.key = "response_format"},
        [F_TEXT] = {.key = "text"},
        [F_OUTPUT_CONFIG] = {.key = "output_config"},
        [F_OUTPUT_FORMAT] = {.key = "output_format"},
        [F_REASONING_EFFORT] = {.key = "reasoning_effort"},
        [F_REASONING] = {.key = "reasoning"},
        [F_THINKING] = {.key = "thinking"},
        [F_MAX_COMPLETION] = {.key = "max_completion_tokens"},
        [F_MAX_TOKENS] = {.key = "max_tokens"},
        [F_MAX_OUTPUT] = {.key = "max_output_tokens"},
        [F_MESSAGES] = {.key = "messages"},
        [F_INPUT] = {.key = "input"},
        [F_CONTENTS] = {.key = "contents"},
        [F_SYSTEM] = {.key = "system"},
    };
    const char *why;
    size_t at;
    req->prompt_tokens = (body->len + 3) / 4;
    if (!json_scan_object(b, body->len, f, F__COUNT, &why, &at)) return; /* DECODE checked it */
    if (nonempty_array(b, &f[F_TOOLS]) || nonempty_array(b, &f[F_FUNCTIONS])) req->needs |= CAP_TOOLS;
    static const int conversation[] = {F_MESSAGES, F_INPUT, F_CONTENTS, F_SYSTEM};
    for (size_t i = 0; i < sizeof conversation / sizeof conversation[0]; i++)
        if (f[conversation[i]].type &&
            has_image(b + f[conversation[i]].start, f[conversation[i]].end - f[conversation[i]].start))
            req->needs |= CAP_VISION;
    if (field_has(b, &f[F_RESPONSE_FORMAT], "\"json_schema\"") ||
        field_has(b, &f[F_TEXT], "\"json_schema\"") || field_has(b, &f[F_OUTPUT_CONFIG], "\"json_schema\"") ||
        field_has(b, &f[F_OUTPUT_FORMAT], "\"json_schema\""))
        req->needs |= CAP_JSON_SCHEMA;
    const json_field *effort = &f[F_REASONING_EFFORT];
    bool reasoning = effort->type == JSON_KIND_STRING && !field_has(b, effort, "\"none\"") &&
                     !field_has(b, effort, "\"minimal\"");
    reasoning = reasoning ||
                (f[F_REASONING].type == JSON_KIND_OBJECT && field_has(b, &f[F_REASONING], "\"effort\"") &&
                 !field_has(b, &f[F_REASONING], "\"none\""));
    reasoning = reasoning || field_has(b, &f[F_THINKING], "\"enabled\"") ||
                field_has(b, &f[F_THINKING], "\"adaptive\"");
    if (reasoning) req->needs |= CAP_REASONING;
    uint64_t output = field_number(b, &f[F_MAX_COMPLETION]);
    if (!output) output = field_number(b, &f[F_MAX_TOKENS]);
    if (!output) output = field_number(b, &f[F_MAX_OUTPUT]);
    req->output_tokens = output                ? output
                         : node->output_tokens ? node->output_tokens
                                               : ROUTE_AUTO_DEFAULT_OUTPUT;
}

/* Nothing can serve the request: each candidate and why, in the client's shape. */
static void refuse(exchange *x, plan_state *ps)
{
    char msg[900];
    fixed_text t = {.out = msg, .cap = sizeof msg - 1}; /* a reason that does not fit is left out */
    const route_node *node = ps->tree->auto_node;
    fixed_text_put(&t, "no candidate of the auto route '%.64s' can serve this request:", ps->tree->name);
    bool budget = false, other = false;
    for (size_t i = 0; i < ps->ncandidates; i++) {
        const route_auto_candidate *c = &ps->candidates[i];
        fixed_text_put(&t, "%s %.64s (%s", i ? ";" : "", c->label, route_auto_verdict_name(c->verdict));
        if (c->verdict == AUTO_CONTEXT)
            fixed_text_put(&t, ": %u tokens, the prompt has about %llu", c->context,
                           (unsigned long long)(ps->request.counted_tokens ? ps->request.counted_tokens
                                                                           : ps->request.prompt_tokens));
        else if (c->verdict == AUTO_BUDGET)
            fixed_text_put(&t, ": about %.6f USD, %.6f left", c->cost_usd, ps->request.budget_left_usd);
        else if (c->verdict == AUTO_MAX_COST)
            fixed_text_put(&t, ": about %.6f USD, max_cost %.6f", c->cost_usd, node->max_cost_usd);
        fixed_text_put(&t, ")");
        budget |= c->verdict == AUTO_BUDGET;
        other |= c->verdict != AUTO_BUDGET;
    }
    if (budget && !other) {
        static const char head[] = "x-should-retry: false\r\n";
        exchange_set_head(x, head, sizeof head - 1);
        x->rejection = REJECT_BUDGET;
        x->decision.no_candidate = NO_CANDIDATE_BUDGET;
        exchange_error(x, 429, "budget_exceeded", "budget_exceeded", NULL, msg);
        return;
    }
    x->decision.no_candidate = NO_CANDIDATE_ADEQUATE;
    exchange_refuse(x, ps->tree->name, 400, "no_adequate_candidate", "model", msg);
}

bool plan__auto(exchange *x, plan_state *ps)
{
    uint64_t start = time_now_ns();
    const route_node *node = ps->tree->auto_node;
    size_t n = node->nchildren;
    ps->candidates = arena_alloc(x->arena, n * sizeof *ps->candidates);
    ps->order = arena_alloc(x->arena, n);
    route_auto_request *req = &ps->request;
    memset(req, 0, sizeof *req);
    read_request(x, node, req);
    req->budget_left_usd = x->budget_limited ? x->budget_left_usd : -1;
    ps->ncandidates = n;
    ps->norder = route_auto_rank(&ps->ctx, ps->tree, req, ps->candidates, ps->order);
    ps->decide_ns = time_now_ns() - start;
    if (!ps->norder) {
        refuse(x, ps);
        return false;
    }
    ps->ctx.auto_order = ps->order;
    ps->ctx.auto_n = ps->norder;
    return true;
}

void plan__auto_reason(exchange *x, plan_state *ps)
{
    char text[ROUTE_AUTO_REASON_MAX];
    char tail[160];
    int t = snprintf(tail, sizeof tail, "%s%s decide_us=%.1f", ps->external_note ? " external=" : "",
                     ps->external_note ? ps->external_note : "", (double)ps->decide_ns / 1000.0);
    if (t < 0) t = 0;
    if ((size_t)t >= sizeof tail) t = (int)sizeof tail - 1;
    /* the candidates get what the tail leaves */
    size_t len = route_auto_describe(ps->tree->auto_node, &ps->request, ps->candidates, ps->ncandidates,
                                     ps->order, ps->norder, text, sizeof text - (size_t)t);
    memcpy(text + len, tail, (size_t)t);
    plan__keep_reason(x, text, len + (size_t)t);
}
