/* prompt_stage.c — PROMPT: a stored prompt template rendered into the request
 * (docs/prompts.md).
 *
 * /v1/prompts/{id}/completions and /v1/prompts/{id}/render (accept.c sets x->prompt_ref) carry
 * Portkey's body: {"variables": {…}, and any chat field — model, stream, temperature, … — that
 * wins over the template's}. The reference is id, id@label or id@version (a number); a bare id
 * takes the label "production" when there is one, else the newest version. A label that splits
 * between versions (an experiment) picks one per request: sticky by the body's "user", or the
 * x-aigw-session-id header, else at random (prompt_pick_version).
 *
 * Everything is read from the key snapshot the request holds (auth_snapshot): no store I/O on
 * the loop, and a request sees one consistent set of versions and labels. The snapshot holds
 * each id's newest version and the labelled ones; an older version named by number is read
 * first by this file's other stage, prompt-fetch, on the store's thread while the exchange
 * waits — at most timeouts.store, then 503 store_timeout (a stuck store must not hold requests
 * for ever; the thread's late answer finds the request over) — and PROMPT renders what it
 * fetched. Rendering is bounded
 * (mustache.h) by the config's body limit for what it writes. /render answers here, Portkey's
 * shape {"success": true, "data": {the request}}; /completions replaces the body with the
 * rendered chat request (its model, stream and spans set as DECODE would), asks the key's model
 * globs about the template's model, and goes on to PLAN, CACHE and EXECUTE like any other
 * request. The version used is on the response head (x-aigw-prompt-version: id@N).
 *
 * After ADMIT, as the phase table says: budgets and rate limits counted the request as it came.
 * A key's per-model limits and model globs see the model the client named; when the template
 * names it, the globs are asked here. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pipeline/stages.h"
#include "prompts/prompt.h"
#include "prompts/prompt_files.h"
#include "providers/provider.h"
#include "store/store.h"
#include "util/headers.h"
#include "util/json.h"
#include "util/alloc.h"
#include "util/random.h"

static _Thread_local uint64_t rng;

/* The partials one render has used, decoded from the snapshot's JSON into the request's arena
 * once each (a partial included in a loop is decoded once). */
#define PROMPT_PARTIALS_MAX 64
typedef struct partial_lookup {
    const key_snapshot *snap;
    const struct prompt_set *files;
    arena *arena;
    struct {
        const char *name, *text;
        size_t text_len;
    } seen[PROMPT_PARTIALS_MAX];
    size_t nseen;
} partial_lookup;

/* A version found: its number and its body (JSON text, valid while the request holds its
 * snapshot and config). */
typedef struct prompt_found {
    long long version;
    const char *body;
} prompt_found;

/* A template's or partial's version: by number, by label (a split picks one), or — neither —
 * the "production" label's, else the newest. An id that prompt files define is served from
 * them alone; any other from the store's snapshot (docs/prompts.md, "Precedence"). */
static bool resolve(const key_snapshot *snap, const struct prompt_set *files, char kind, const char *id,
                    const char *label, long long version, const char *sticky, size_t sticky_len,
                    prompt_found *out)
{
    bool from_files = prompt_set_has(files, kind, id);
    if (!from_files && !snap) return false;
    const char *split_text;
    if (!version) {
        const char *name = label ? label : "production";
        if (from_files) {
            split_text = prompt_set_label(files, kind, id, name);
        } else {
            const store_prompt_label *l = key_snapshot_prompt_label(snap, kind, id, name);
            split_text = l ? l->split : NULL;
        }
        if (split_text) {
            json_t *split = json_loads(split_text, 0, NULL);
            version = prompt_pick_version(split, sticky, sticky_len,
                                          (double)(random_next(&rng) >> 11) / (double)(1ULL << 53));
            json_decref(split);
            if (!version) return false;
        } else if (label) {
            return false;
        }
    }
    if (from_files) {
        out->body = prompt_set_version(files, kind, id, version, &out->version);
        return out->body != NULL;
    }
    const store_prompt_version *v = key_snapshot_prompt_version(snap, kind, id, version);
    if (!v) return false;
    out->version = v->version;
    out->body = v->body;
    return true;
}

static bool partial_text(void *ctx, const char *name, size_t len, const char **text, size_t *out_len)
{
    partial_lookup *p = ctx;
    if (len > STORE_NAME_MAX) return false;
    for (size_t i = 0; i < p->nseen; i++)
        if (strlen(p->seen[i].name) == len && !memcmp(p->seen[i].name, name, len)) {
            *text = p->seen[i].text;
            *out_len = p->seen[i].text_len;
            return true;
        }
    if (p->nseen == PROMPT_PARTIALS_MAX) return false;
    char id[STORE_NAME_MAX + 1];
    memcpy(id, name, len);
    id[len] = '\0';
    prompt_found v;
    if (!resolve(p->snap, p->files, 'p', id, NULL, 0, NULL, 0, &v)) return false;
    json_t *body = json_loads(v.body, 0, NULL);
    json_t *t = json_object_get(body, "text");
    bool ok = json_is_string(t);
    if (ok) {
        p->seen[p->nseen].name = arena_strndup(p->arena, name, len);
        p->seen[p->nseen].text = arena_strndup(p->arena, json_string_value(t), json_string_length(t));
        p->seen[p->nseen].text_len = json_string_length(t);
        *text = p->seen[p->nseen].text;
        *out_len = p->seen[p->nseen].text_len;
        p->nseen++;
    }
    json_decref(body);
    return ok;
}

static void refuse(exchange *x, int status, const char *code, const char *param, const char *msg)
{
    exchange_error(x, status, "invalid_request_error", code, param, msg);
}

/* The variables: x-aigw-prompt-variables (a JSON object, at most PROMPT_VARIABLES_MAX bytes)
 * or the body's "variables" (Portkey's field), which is taken out of the body either way. A
 * new reference, or NULL after answering. */
#define PROMPT_VARIABLES_MAX (32 * 1024)
static json_t *take_variables(exchange *x, json_t *body, bool *answered)
{
    *answered = false;
    json_t *variables = json_incref(json_object_get(body, "variables"));
    json_object_del(body, "variables");
    const http_header *h = x->prompt_from_header ? exchange_header(x, "x-aigw-prompt-variables") : NULL;
    if (h) {
        json_decref(variables);
        variables = NULL;
        if (h->value_len > PROMPT_VARIABLES_MAX) {
            refuse(x, 400, "invalid_value", "x-aigw-prompt-variables",
                   "x-aigw-prompt-variables is larger than 32 KiB: send the variables in the body's "
                   "\"variables\"");
            *answered = true;
            return NULL;
        }
        variables = json_loadb(h->value, h->value_len, 0, NULL);
        if (!json_is_object(variables)) {
            json_decref(variables);
            refuse(x, 400, "invalid_value", "x-aigw-prompt-variables",
                   "x-aigw-prompt-variables must be a JSON object");
            *answered = true;
            return NULL;
        }
    }
    if (variables && !json_is_object(variables)) {
        json_decref(variables);
        refuse(x, 400, "invalid_type", "variables", "'variables' must be an object");
        *answered = true;
        return NULL;
    }
    return variables;
}

/* The request that goes on, for x-aigw-prompt on a chat or messages request: the template's
 * messages in the client's format — written by the providers' own translation
 * (provider_request_in_ingress: the one an Anthropic provider gets, so tool calls and results,
 * images, JSON output and the rest say the same here as there) — the client's own messages
 * after them, and every other field of the client's body over the template's. NULL after
 * answering when the template cannot be said in the client's format. */
static json_t *merge_client(exchange *x, json_t *rendered, json_t *body)
{
    codec_ctx c = {.arena = x->arena,
                   .request_id = x->http->id,
                   .ingress = x->ingress,
                   .endpoint = x->endpoint,
                   .stream = x->stream,
                   .headers = x->http->headers,
                   .nheaders = x->http->nheaders};
    provider_error err;
    json_t *out = provider_request_in_ingress(&c, rendered, &err);
    if (!out) {
        char msg[1024];
        snprintf(msg, sizeof msg, "prompt %s@%lld cannot be written as this API's request: %s", x->prompt_id,
                 (long long)x->prompt_version, err.message);
        refuse(x, 400, "template_error", NULL, msg);
        return NULL;
    }
    json_t *mine = json_object_get(body, "messages");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) if (strcmp(key, "messages")) json_object_set(out, key, v);
    if (json_is_array(mine)) json_array_extend(json_object_get(out, "messages"), mine);
    return out;
}

/* ---- prompt-fetch: a version named by number that the snapshot left out ---- */

/* The key snapshot holds each id's newest version and the ones labels name (what a request
 * resolves without a number); an older version named by number (greet@3) is read from the
 * store on its thread, the exchange waiting, before PROMPT renders it. */
typedef struct fetch_job {
    atomic_int refs; /* the store thread's and the exchange's */
    exchange_ticket ticket;
    thread_jobs *jobs;
    char id[STORE_NAME_MAX + 1];
    long long version;
    char *body;          /* found: the version's body (malloc'd); NULL: not read */
    store_result result; /* STORE_OK, STORE_NOT_FOUND, or STORE_ERROR (PROMPT answers 503) */
} fetch_job;

/* Reads one worker may have waiting on the store's thread at once: the store's queue (256
 * jobs) is shared with every worker's spend and request-log batches, which must keep their room
 * whatever a client asks for — with two workers, half the queue at most; past it, 503
 * store_busy at once. */
#define FETCHES_MAX 64

typedef struct fetch_state {
    fetch_job *job; /* the exchange's reference, once a job was handed over */
} fetch_state;

static void fetch_release(fetch_job *job)
{
    if (!job || atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1) return;
    free(job->body);
    free(job);
}

/* On the store's thread. A store error is kept: PROMPT answers 503 (retry), not 404. A job
 * whose exchange has let go (its deadline passed, or the client left) while it waited in the
 * store's queue reads nothing: a store that comes back after a stall does not first run every
 * read nobody waits for. */
static void run_fetch(store *s, void *arg)
{
    fetch_job *job = arg;
    if (atomic_load_explicit(&job->refs, memory_order_acquire) > 1)
        job->result = store_prompt_version_get(s, 't', job->id, job->version, &job->body);
    if (job->result != STORE_OK) {
        free(job->body);
        job->body = NULL;
    }
    thread_jobs *jobs = job->jobs;
    exchange_resume_from_thread(job->ticket, STAGE_NEXT);
    fetch_release(job);
    thread_jobs_done(jobs);
}

/* A template id and version number from the request's reference, when it names one by number
 * (0 otherwise). */
static long long ref_version(const char *ref, char *id, size_t idlen)
{
    const char *at = strchr(ref, '@');
    size_t len = at ? (size_t)(at - ref) : 0;
    if (!at || len == 0 || len >= idlen) return 0;
    char *end;
    long long version = strtoll(at + 1, &end, 10);
    if (*end || version <= 0) return 0;
    memcpy(id, ref, len);
    id[len] = '\0';
    return version;
}

/* timeouts.store passed and the store's thread has not answered (a database that stopped
 * answering, a lock held elsewhere, a long queue): 503, and the late answer is dropped — the
 * job keeps its own reference, and its resume finds the request over (stage.h). */
static void fetch_expired(exchange *x)
{
    exchange_error(x, 503, "server_error", "store_timeout", NULL,
                   "the store did not answer in time (timeouts.store): the prompt version cannot be "
                   "read now, retry");
}

static stage_result prompt_fetch_on_request(exchange *x, void *state)
{
    fetch_state *fs = state;
    char id[STORE_NAME_MAX + 1];
    long long version = x->prompt_ref ? ref_version(x->prompt_ref, id, sizeof id) : 0;
    const key_snapshot *snap = auth_snapshot(x);
    if (!version || !snap || prompt_set_has(x->config->prompts.set, 't', id) ||
        key_snapshot_prompt_version(snap, 't', id, version))
        return STAGE_DECLINED;
    /* newer than the newest (which the snapshot always holds), or an id it has never seen: no
     * such version, and PROMPT says so without a trip to the store */
    const store_prompt_version *newest = key_snapshot_prompt_version(snap, 't', id, 0);
    if (!newest || version > newest->version) return STAGE_DECLINED;
    thread_jobs *jobs = exchange_worker_state(x, &stage_prompt_fetch);
    if (thread_jobs_pending(jobs) >= FETCHES_MAX) {
        exchange_error(x, 503, "server_error", "store_busy", NULL,
                       "too many prompt versions are being read from the store now: retry");
        return STAGE_DONE;
    }
    fetch_job *job = xcalloc(1, sizeof *job);
    atomic_init(&job->refs, 2);
    memcpy(job->id, id, strlen(id) + 1);
    job->version = version;
    job->jobs = jobs;
    job->ticket = exchange_suspend_bounded(x, x->config->store_timeout_ms, fetch_expired);
    thread_jobs_add(job->jobs);
    if (!store_service_submit(auth_service(), run_fetch, job)) {
        thread_jobs_done(job->jobs);
        exchange_resume(job->ticket, STAGE_DONE); /* not suspended yet: only gives the ticket back */
        fetch_release(job);
        fetch_release(job);
        exchange_error(x, 503, "server_error", "store_busy", NULL,
                       "the store's queue is full: the prompt version cannot be read now, retry");
        return STAGE_DONE;
    }
    fs->job = job;
    return STAGE_AGAIN;
}

static void *prompt_fetch_worker_init(struct worker *w)
{
    return thread_jobs_new();
}

static void prompt_fetch_worker_close(void *state)
{
    thread_jobs_close(state);
}

static void prompt_fetch_on_release(exchange *x, void *state)
{
    fetch_state *fs = state;
    fetch_release(fs->job);
    fs->job = NULL;
}

const stage stage_prompt_fetch = {
    .name = "prompt-fetch",
    .phase = PHASE_PROMPT,
    .state_size = sizeof(fetch_state),
    .worker_init = prompt_fetch_worker_init,
    .worker_close = prompt_fetch_worker_close,
    .on_request = prompt_fetch_on_request,
    .on_release = prompt_fetch_on_release,
};

/* ---- prompt ---- */

static stage_result prompt_on_request(exchange *x, void *state)
{
    if (!x->prompt_ref) return STAGE_DECLINED;
    const key_snapshot *snap = auth_snapshot(x);
    const struct prompt_set *files = x->config->prompts.set;
    char id[STORE_NAME_MAX + 1], msg[1024];
    const char *at = strchr(x->prompt_ref, '@');
    size_t id_len = at ? (size_t)(at - x->prompt_ref) : strlen(x->prompt_ref);
    if (id_len == 0 || id_len > STORE_NAME_MAX) {
        refuse(x, 404, "prompt_not_found", NULL, "no such prompt template");
        return STAGE_DONE;
    }
    memcpy(id, x->prompt_ref, id_len);
    id[id_len] = '\0';
    if (!snap && !prompt_set_has(files, 't', id)) {
        refuse(x, 400, "prompts_unavailable", NULL,
               "prompt templates live in the store or in prompts.dir: this gateway has neither the "
               "store (configure auth) nor a file defining this template");
        return STAGE_DONE;
    }
    const char *label = NULL;
    long long version = 0;
    if (at) {
        char *end;
        version = strtoll(at + 1, &end, 10);
        if (*end || version <= 0) {
            version = 0;
            label = at + 1;
        }
    }
    json_t *body = json_loadb(x->http->body.data ? x->http->body.data : "{}", x->http->body.len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        refuse(x, 400, "invalid_type", NULL, "the request body must be a JSON object");
        return STAGE_DONE;
    }
    bool answered;
    json_t *variables = take_variables(x, body, &answered);
    if (answered) {
        json_decref(body);
        return STAGE_DONE;
    }
    const char *sticky = json_string_value(json_object_get(body, "user"));
    if (!sticky) sticky = json_string_value(json_object_get(json_object_get(body, "metadata"), "user_id"));
    size_t sticky_len = sticky ? strlen(sticky) : 0;
    if (!sticky) {
        const http_header *h = http_header_find(x->http->headers, x->http->nheaders, "x-aigw-session-id");
        if (h) {
            sticky = h->value;
            sticky_len = h->value_len;
        }
    }
    prompt_found v;
    const fetch_job *fetched = ((fetch_state *)exchange_state(x, &stage_prompt_fetch))->job;
    if (fetched && fetched->body && version == fetched->version && !strcmp(id, fetched->id)) {
        v.version = version;
        v.body = fetched->body; /* the fetch's, held until the request is released */
    } else if (fetched && fetched->result == STORE_ERROR && version == fetched->version &&
               !strcmp(id, fetched->id)) {
        json_decref(body);
        json_decref(variables);
        exchange_error(x, 503, "server_error", "store_unavailable", NULL,
                       "the store could not be read for this prompt version: retry");
        return STAGE_DONE;
    } else if (!resolve(snap, files, 't', id, label, version, sticky, sticky_len, &v)) {
        snprintf(msg, sizeof msg, "no prompt template %.300s", x->prompt_ref);
        json_decref(body);
        json_decref(variables);
        refuse(x, 404, "prompt_not_found", NULL, msg);
        return STAGE_DONE;
    }
    x->prompt_id = arena_strndup(x->arena, id, id_len);
    x->prompt_version = v.version;
    partial_lookup *pl = arena_alloc(x->arena, sizeof *pl);
    pl->snap = snap;
    pl->files = files;
    pl->arena = x->arena;
    pl->nseen = 0;
    json_t *req = NULL;
    mustache_error err;
    size_t max = x->http->body.max ? x->http->body.max : (1u << 20);
    mustache_status st = prompt_render(id, v.body, variables, x->prompt_from_header ? NULL : body,
                                       partial_text, pl, max, &req, &err);
    json_decref(variables);
    char head[STORE_NAME_MAX + 64];
    int head_len =
        snprintf(head, sizeof head, "x-aigw-prompt-version: %s@%lld\r\n", id, (long long)v.version);
    exchange_keep_head(x, arena_strndup(x->arena, head, (size_t)head_len), (size_t)head_len);
    if (st == MUSTACHE_MISSING) {
        snprintf(msg, sizeof msg, "Missing variable '%s' for prompt %s@%lld (%s)", err.variable, id,
                 (long long)v.version, err.message);
        json_decref(body);
        refuse(x, 400, "missing_variable", err.variable, msg);
        return STAGE_DONE;
    }
    if (st != MUSTACHE_OK) {
        snprintf(msg, sizeof msg, "prompt %s@%lld cannot be rendered: %s", id, (long long)v.version,
                 err.message);
        json_decref(body);
        refuse(x, 400, "template_error", NULL, msg);
        return STAGE_DONE;
    }
    if (x->prompt_from_header) {
        json_t *merged = merge_client(x, req, body);
        json_decref(req);
        if (!merged) {
            json_decref(body);
            return STAGE_DONE;
        }
        req = merged;
    }
    json_decref(body);
    if (x->prompt_render_only) {
        json_t *answer = json_pack("{s:b,s:o,s:s,s:I}", "success", 1, "data", req, "prompt_id", id,
                                   "prompt_version", (json_int_t)v.version);
        char *text = json_dumps(answer, JSON_COMPACT);
        json_decref(answer);
        exchange_respond(x, 200, "application/json", NULL, 0, text, strlen(text));
        free(text);
        return STAGE_DONE;
    }
    if (!json_is_string(json_object_get(req, "model"))) {
        json_decref(req);
        refuse(x, 400, "missing_required_parameter", "model",
               "the prompt template names no model and the request gives none");
        return STAGE_DONE;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t len = strlen(text);
    buf *b = &x->http->body;
    buf_reset(b);
    if (buf_append(b, text, len) != BUF_OK) {
        free(text);
        refuse(x, 413, "request_too_large", NULL,
               "the rendered prompt is larger than the request body limit");
        return STAGE_DONE;
    }
    free(text);
    /* a stage before this one may have asked for the canonical form of the body it replaced */
    json_decref(x->canonical);
    x->canonical = NULL;
    x->canonical_error = NULL;
    json_field fields[] = {{.key = "model"}, {.key = "stream"}};
    const char *why;
    size_t pos;
    if (!json_scan_object(b->data, b->len, fields, 2, &why, &pos) || fields[0].type != JSON_KIND_STRING) {
        refuse(x, 400, "template_error", NULL, "the rendered prompt is not a chat request");
        return STAGE_DONE;
    }
    x->model = json_string_decode(x->arena, b->data, fields[0].start, fields[0].end, &x->model_len);
    x->body_model_start = fields[0].start;
    x->body_model_end = fields[0].end;
    x->stream = fields[1].type == JSON_KIND_TRUE;
    if (x->key && !auth_model_allowed(x, x->model, x->model_len)) {
        snprintf(msg, sizeof msg, "This gateway key may not use the model `%.*s`", (int)x->model_len,
                 x->model);
        x->rejection = REJECT_FORBIDDEN_MODEL;
        refuse(x, 403, "model_not_allowed", "model", msg);
        return STAGE_DONE;
    }
    return STAGE_NEXT;
}

const stage stage_prompt = {
    .name = "prompt",
    .phase = PHASE_PROMPT,
    .on_request = prompt_on_request,
};
