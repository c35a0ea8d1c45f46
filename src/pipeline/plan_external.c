/* plan_external.c — PLAN asks an external router which candidate should serve the request
 * (docs/routing.md, "External router"): a model-select service in Not Diamond's shape, for an
 * auto or router strategy with `external: true` and the config's `external_router:`.
 *
 * The request (POST, JSON), as Not Diamond's model_select documents it:
 *   {"messages": [{"role", "content"}…], "llm_providers": [{"provider", "model"}…],
 *    "tradeoff": "cost" | "latency" (the auto objective's, when it is one of those),
 *    "preference_id": … (when configured)}
 * with `Authorization: Bearer <api_key>`. The answer: {"providers": [{"provider", "model"}],
 * "session_id"}; its first provider names the choice.
 *
 * What is sent: the candidates the hard rules leave (auto.c: an external router cannot bring
 * back a model too small for the prompt, or one the key cannot afford), each as its provider's
 * type (Not Diamond's "google" for gemini) and upstream model; the conversation as role and
 * text, newest messages first kept, at most external_router.max_prompt bytes in all (a message
 * cut at a UTF-8 boundary). What is read: at most max_answer bytes (more: the transfer is cut),
 * parsed with jansson, the first provider matched against what was sent — provider and model,
 * or the model alone when only one candidate has it. Anything else — a timeout, a status other
 * than 200, a transport failure, an answer too large, not JSON, or naming no candidate — leaves
 * the local choice (the auto ranking or the learned router's), and the decision's text says
 * which of these happened. aigw_external_router_total counts each reason as one outcome of a
 * fixed set (external_reasons: used, timeout, error, invalid, no_candidate, not_asked), so a
 * status code or a candidate's name never becomes a label value.
 *
 * The wait: the call runs on the worker's upstream client (upstream.h: h1.c or libcurl multi on
 * the worker's loop), never blocking; every timeout of the call — connect, first byte, idle,
 * total — is external_router.timeout (default 150 ms, at most 1 s), so the request waits that
 * long at most. The stage holds a ticket meanwhile (exchange_suspend); the client leaving
 * cancels the call (plan__external_abort). Only one candidate left: nothing to ask. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pipeline/stages.h"
#include "upstream/upstream.h"
#include "util/timeutil.h"

/* Why the decision came out as it did: the word the decision's text shows and the one value of
 * a fixed set the metrics count (record.h), side by side, so every reason maps to exactly one. */
typedef enum external_reason {
    REASON_CHOSEN,         /* "chose:<candidate>" */
    REASON_TIMEOUT,        /* connect, first byte, idle or total: all are external_router.timeout */
    REASON_STATUS,         /* "status_<N>": an answer other than 200 */
    REASON_UNREACHABLE,    /* refused, reset, cut: no whole answer */
    REASON_TOO_LARGE,      /* more than max_answer bytes: the transfer was cut */
    REASON_INVALID_ANSWER, /* not JSON, or no model in its first provider */
    REASON_NO_CANDIDATE,   /* it named none of the candidates sent */
    REASON_ONE_CANDIDATE,  /* the hard rules left one: nothing to ask */
    REASON_NO_REQUEST,     /* the request's body could not be written */
    REASON_NOT_STARTED,    /* the call could not be started */
    REASON_COUNT
} external_reason;

static const struct {
    const char *note;
    record_external outcome;
} external_reasons[REASON_COUNT] = {
    [REASON_CHOSEN] = {"chose", EXTERNAL_USED},
    [REASON_TIMEOUT] = {"timeout", EXTERNAL_TIMEOUT},
    [REASON_STATUS] = {"status", EXTERNAL_ERROR},
    [REASON_UNREACHABLE] = {"unreachable", EXTERNAL_ERROR},
    [REASON_TOO_LARGE] = {"answer_too_large", EXTERNAL_INVALID},
    [REASON_INVALID_ANSWER] = {"invalid_answer", EXTERNAL_INVALID},
    [REASON_NO_CANDIDATE] = {"no_candidate", EXTERNAL_NO_CANDIDATE},
    [REASON_ONE_CANDIDATE] = {"not_asked(one candidate)", EXTERNAL_NOT_ASKED},
    [REASON_NO_REQUEST] = {"not_asked(no request)", EXTERNAL_ERROR},
    [REASON_NOT_STARTED] = {"not_asked(could not start)", EXTERNAL_ERROR},
};

/* What a finished call says before its answer is read (pure): REASON_CHOSEN when there is an
 * answer to read (answer_choice then decides), else why there is none. */
static external_reason call_reason(upstream_result result, int status)
{
    if (result == UPSTREAM_OK && status == 200) return REASON_CHOSEN;
    if (result == UPSTREAM_TOO_LARGE) return REASON_TOO_LARGE;
    if (result == UPSTREAM_CONNECT_TIMEOUT || result == UPSTREAM_FIRST_BYTE_TIMEOUT ||
        result == UPSTREAM_IDLE_TIMEOUT || result == UPSTREAM_TOTAL_TIMEOUT)
        return REASON_TIMEOUT;
    if (status && status != 200) return REASON_STATUS;
    return REASON_UNREACHABLE;
}

/* No call is made (reason one of the not_asked ones): the decision's text and the metrics say why. */
static void not_asked(exchange *x, plan_state *ps, external_reason reason)
{
    ps->external_note = external_reasons[reason].note;
    x->decision.external = external_reasons[reason].outcome;
}

/* The provider's name as Not Diamond spells it. */
static const char *provider_name(const provider_config *p)
{
    const char *type = p && p->type ? p->type : "openai";
    return !strcmp(type, "gemini") ? "google" : type;
}

/* The node's children the router may choose from: an auto node's usable candidates (in the
 * local order), a router node's two. */
static size_t choosable(const plan_state *ps, uint8_t *out)
{
    const route_node *node = ps->external;
    size_t n = 0;
    if (node->mode == ROUTE_AUTO) {
        for (size_t k = 0; k < ps->norder; k++)
            if (ps->candidates[ps->order[k]].verdict == AUTO_USABLE) out[n++] = ps->order[k];
        return n;
    }
    for (size_t i = 0; i < node->nchildren && i < ROUTE_MAX_CHILDREN; i++)
        out[n++] = (uint8_t)i;
    return n;
}

/* Cuts len down to a UTF-8 boundary of s. */
static size_t utf8_cut(const char *s, size_t len)
{
    while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
    return len;
}

/* The conversation as [{role, content}], newest first kept within max bytes of text. */
static json_t *messages_json(exchange *x, size_t max)
{
    json_t *out = json_array();
    const json_t *messages = json_object_get(exchange_canonical(x, NULL), "messages");
    size_t n = json_array_size(messages), left = max;
    json_t *kept[256];
    size_t nkept = 0;
    for (size_t i = n; i-- > 0 && left && nkept < 256;) {
        const json_t *m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) continue;
        size_t len;
        const char *text = plan__content_text(x, json_object_get(m, "content"), left, &len);
        if (len > left) len = utf8_cut(text, left);
        /* parts joined and cut at max may end inside a character: drop its first bytes */
        json_t *t = json_stringn(text, len);
        for (int k = 0; !t && k < 3 && len; k++)
            t = json_stringn(text, --len);
        if (!t) continue;
        left -= len;
        kept[nkept++] =
            json_pack("{s:s, s:o}", "role", !strcmp(role, "developer") ? "system" : role, "content", t);
    }
    while (nkept)
        json_array_append_new(out, kept[--nkept]);
    return out;
}

static char *request_body(exchange *x, plan_state *ps, const uint8_t *ids, size_t nids, size_t *len)
{
    const external_router_settings *e = &x->config->external_router;
    json_t *providers = json_array();
    for (size_t k = 0; k < nids; k++) {
        const route_node *leaf = &ps->external->children[ids[k]];
        json_array_append_new(providers, json_pack("{s:s, s:s}", "provider", provider_name(leaf->provider),
                                                   "model", leaf->model ? leaf->model : x->model));
    }
    json_t *body = json_pack("{s:o, s:o}", "messages", messages_json(x, e->max_prompt_bytes), "llm_providers",
                             providers);
    if (ps->external->mode == ROUTE_AUTO && ps->external->objective == OBJECTIVE_COST)
        json_object_set_new(body, "tradeoff", json_string("cost"));
    if (ps->external->mode == ROUTE_AUTO && ps->external->objective == OBJECTIVE_LATENCY)
        json_object_set_new(body, "tradeoff", json_string("latency"));
    if (e->preference_id) json_object_set_new(body, "preference_id", json_string(e->preference_id));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return NULL;
    *len = strlen(text);
    char *copy = arena_strndup(x->arena, text, *len);
    free(text);
    return copy;
}

/* A header line in the arena, linked before next (curl_slist's shape: both clients read it). */
static struct curl_slist *header_line(exchange *x, struct curl_slist *next, const char *name,
                                      const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = arena_alloc(x->arena, len);
    snprintf(line, len, "%s: %s", name, value);
    struct curl_slist *node = arena_alloc(x->arena, sizeof *node);
    *node = (struct curl_slist){.data = line, .next = next};
    return node;
}

/* The answer's first provider as one of the candidates sent; -1 when it names none (*why:
 * REASON_INVALID_ANSWER or REASON_NO_CANDIDATE). */
static int answer_choice(plan_state *ps, const char *model_default, const uint8_t *ids, size_t nids,
                         external_reason *why)
{
    json_t *root = json_loadb(ps->answer, ps->answer_len, 0, NULL);
    json_t *first = json_array_get(json_object_get(root, "providers"), 0);
    const char *provider = json_string_value(json_object_get(first, "provider"));
    const char *model = json_string_value(json_object_get(first, "model"));
    int choice = -1, by_model = -1, models = 0;
    if (!root || !model) {
        *why = REASON_INVALID_ANSWER;
    } else {
        for (size_t k = 0; k < nids; k++) {
            const route_node *leaf = &ps->external->children[ids[k]];
            const char *m = leaf->model ? leaf->model : model_default;
            if (strcmp(m, model)) continue;
            models++;
            by_model = ids[k];
            if (provider && !strcmp(provider, provider_name(leaf->provider)) && choice < 0) choice = ids[k];
        }
        if (choice < 0 && models == 1) choice = by_model;
        if (choice < 0) *why = REASON_NO_CANDIDATE;
    }
    json_decref(root);
    return choice;
}

/* The call's end, whatever it was: the decision is final; the request goes on. */
static void settle(exchange *x, plan_state *ps, external_reason reason)
{
    ps->call = NULL;
    uint64_t ms = (time_now_ns() - ps->external_start_ns) / 1000000;
    char text[160];
    if (ps->external_choice >= 0) {
        const route_node *leaf = &ps->external->children[ps->external_choice];
        snprintf(text, sizeof text, "chose:%.64s(%llums)", leaf->display ? leaf->display : leaf->label,
                 (unsigned long long)ms);
    } else if (reason == REASON_STATUS) {
        snprintf(text, sizeof text, "status_%d(%llums)", ps->status, (unsigned long long)ms);
    } else {
        snprintf(text, sizeof text, "%s(%llums)", external_reasons[reason].note, (unsigned long long)ms);
    }
    ps->external_note = arena_strndup(x->arena, text, strlen(text));
    x->decision.external = external_reasons[reason].outcome;
    plan__finish(x, ps);
    ps->waiting = false;
    exchange_resume(ps->ticket, STAGE_NEXT);
}

static bool on_external_head(void *ud, int status, const char *const *lines, size_t nlines)
{
    plan_state *ps = ud;
    ps->status = status;
    return status == 200;
}

static int on_external_data(void *ud, const char *data, size_t len)
{
    plan_state *ps = ud;
    exchange *x = ps->ticket.x;
    size_t max = x->config->external_router.max_answer_bytes;
    if (len > max - ps->answer_len) return UPSTREAM_DATA_ABORT;
    memcpy(ps->answer + ps->answer_len, data, len);
    ps->answer_len += len;
    return UPSTREAM_DATA_OK;
}

static void on_external_done(void *ud, upstream_result result, const char *message)
{
    plan_state *ps = ud;
    exchange *x = ps->ticket.x;
    external_reason reason = call_reason(result, ps->status);
    if (reason == REASON_CHOSEN) {
        uint8_t ids[ROUTE_MAX_CHILDREN];
        size_t nids = choosable(ps, ids);
        ps->external_choice = answer_choice(ps, x->model, ids, nids, &reason);
    }
    settle(x, ps, reason);
}

static const upstream_callbacks external_callbacks = {
    .on_head = on_external_head,
    .on_data = on_external_data,
    .on_done = on_external_done,
};

stage_result plan__external(exchange *x, plan_state *ps)
{
    const route_tree *tree = ps->tree;
    ps->external = tree->auto_node && tree->auto_node->external ? tree->auto_node
                   : tree->router && tree->router->external     ? tree->router
                                                                : NULL;
    const external_router_settings *e = &x->config->external_router;
    if (!ps->external || !e->url) return STAGE_NEXT;
    uint8_t ids[ROUTE_MAX_CHILDREN];
    size_t nids = choosable(ps, ids);
    if (nids < 2) {
        not_asked(x, ps, REASON_ONE_CANDIDATE);
        return STAGE_NEXT;
    }
    size_t len;
    char *body = request_body(x, ps, ids, nids, &len);
    if (!body) {
        not_asked(x, ps, REASON_NO_REQUEST);
        return STAGE_NEXT;
    }
    struct curl_slist *headers = header_line(x, NULL, "Content-Type", "application/json");
    headers = header_line(x, headers, "Accept", "application/json");
    if (e->api_key) {
        char bearer[16 + 4096];
        snprintf(bearer, sizeof bearer, "Bearer %s", e->api_key);
        headers = header_line(x, headers, "Authorization", bearer);
    }
    for (size_t i = 0; i < e->nheaders; i++)
        headers = header_line(x, headers, e->headers[i].name, e->headers[i].value);
    ps->answer = arena_alloc(x->arena, e->max_answer_bytes);
    ps->answer_len = 0;
    ps->status = 0;
    upstream_request ur = {
        .url = e->url,
        .body = body,
        .body_len = len,
        .headers = headers,
        .connect_timeout_ms = e->timeout_ms,
        .first_byte_timeout_ms = e->timeout_ms,
        .idle_timeout_ms = e->timeout_ms,
        .total_timeout_ms = e->timeout_ms,
        .send_once = true,
    };
    ps->external_start_ns = time_now_ns();
    /* the callbacks fire from the loop, never inside upstream_start: the ticket is taken after */
    ps->ticket = (exchange_ticket){.x = x};
    ps->call = upstream_start(pipeline_upstream(x->pw), &ur, &external_callbacks, ps);
    if (!ps->call) { /* no callback will fire */
        not_asked(x, ps, REASON_NOT_STARTED);
        return STAGE_NEXT;
    }
    ps->ticket = exchange_suspend(x);
    ps->waiting = true;
    return STAGE_AGAIN;
}

void plan__external_abort(plan_state *ps)
{
    if (!ps->waiting) return;
    if (ps->call) upstream_cancel(ps->call); /* no callback fires after this */
    ps->call = NULL;
    ps->waiting = false;
    exchange_resume(ps->ticket, STAGE_DONE);
}
