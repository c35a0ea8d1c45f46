/* pipeline.c — the stage table, the runner that walks a request through it, and the exchange
 * the stages share; see stage.h for the phases and pipeline.h for the server's side.
 *
 * The table below is the one place that says which stages exist and in which order: a module
 * joins the request's path by adding its row (curl's protocol handlers, nginx's phase
 * handlers). The runner calls each stage's on_request in order until one answers (DONE) or
 * waits (AGAIN, resumed by exchange_resume); responses go out through exchange_respond /
 * exchange_stream_*, which show them to every response filter; when the server says the
 * request is done, the exchange's summary goes to every observer and the exchange is reset
 * for the connection's next request.
 *
 * Per worker: the upstream client, the cache of header configs' route trees, each stage's
 * worker state, and the queue other threads resume exchanges through. */
#include "pipeline/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <jansson.h>

#include "pipeline/attempt.h"
#include "pipeline/stages.h"
#include "server/http_conn.h"
#include "store/store.h"
#include "upstream/upstream.h"
#include "util/alloc.h"
#include "util/timeutil.h"

#ifdef AIGW_TEST_STAGES
/* tests/stages/: stages that exist only in the test build, to exercise the interface */
extern const stage test_stage_wait, test_stage_canonical, test_stage_fanout, test_stage_filter;
#define TEST_STAGE_WAIT &test_stage_wait,
#define TEST_STAGE_CANONICAL &test_stage_canonical,
#define TEST_STAGE_FANOUT &test_stage_fanout,
#define TEST_STAGE_FILTER &test_stage_filter,
#else
#define TEST_STAGE_WAIT
#define TEST_STAGE_CANONICAL
#define TEST_STAGE_FANOUT
#define TEST_STAGE_FILTER
#endif

/* In phase order (pipeline_app.start checks it). */
// clang-format off
static const stage *const stages[] = {
    &stage_trace,           /* ACCEPT */
    &stage_ui,              /* the dashboard; its session cookie for the admin stage */
    &stage_admin,
    &stage_admin_reply,
    &stage_accept,
    &stage_auth,            /* AUTH */
    &stage_local,
    &stage_decode,          /* DECODE */
    &stage_reason_name,     /* before key-route: `moa-gpt-4o-mini` routes as `gpt-4o-mini` */
    &stage_key_route,       /* before key-models: the globs see the default route's name */
    &stage_key_models,
    TEST_STAGE_WAIT         /* ADMIT */
    &stage_budget,          /* before limits: a refused key takes no rate-limit slot */
    &stage_limits,
    TEST_STAGE_CANONICAL    /* PROMPT */
    &stage_prompt_fetch,    /* PROMPT: a version named by number that the snapshot left out */
    &stage_prompt,
    &stage_plan,            /* PLAN */
    &stage_cache,           /* CACHE */
    TEST_STAGE_FANOUT       /* EXECUTE */
    &stage_reason,          /* a technique's calls; else the walk */
    &stage_execute,
    TEST_STAGE_FILTER       /* RECORD */
    &stage_accesslog,
    &stage_reqlog,
    &stage_metrics,
};
// clang-format on
#define NSTAGES (sizeof stages / sizeof stages[0])

/* Whether the next stage that handles requests after stage i belongs to i's phase (set at start,
 * read by run_stages). */
static bool phase_goes_on[NSTAGES];

static size_t stage_index(const stage *s)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i] == s) return i;
    abort(); /* a stage not in the table asked for its state */
}

/* ---- per worker ---------------------------------------------------------------------------------- */

typedef struct resume_item {
    exchange_ticket ticket;
    stage_result result;
    struct resume_item *next;
} resume_item;

struct pipeline_worker {
    worker *w;
    upstream_client *upstream;
    route_cache *route_cache;
    void *stage_state[NSTAGES];
    uv_async_t resume_async; /* other threads' exchange_resume_from_thread */
    pthread_mutex_t resume_lock;
    resume_item *resumes;
};

struct upstream_client *pipeline_upstream(pipeline_worker *pw)
{
    return pw->upstream;
}

route_cache *pipeline_route_cache(pipeline_worker *pw)
{
    return pw->route_cache;
}

struct server *pipeline_server(pipeline_worker *pw)
{
    return pw->w->server;
}

static void on_resume_async(uv_async_t *async)
{
    pipeline_worker *pw = async->data;
    pthread_mutex_lock(&pw->resume_lock);
    resume_item *list = pw->resumes;
    pw->resumes = NULL;
    pthread_mutex_unlock(&pw->resume_lock);
    while (list) {
        resume_item *next = list->next;
        exchange_resume(list->ticket, list->result);
        free(list);
        list = next;
    }
}

static void *pipeline_worker_init(worker *w)
{
    pipeline_worker *pw = xcalloc(1, sizeof *pw);
    pw->w = w;
    pw->upstream = upstream_client_new(&w->loop);
    pw->route_cache = route_cache_new();
    pthread_mutex_init(&pw->resume_lock, NULL);
    uv_async_init(&w->loop, &pw->resume_async, on_resume_async);
    pw->resume_async.data = pw;
    w->app_state = pw; /* stages' worker_init may look for it */
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->worker_init) pw->stage_state[i] = stages[i]->worker_init(w);
    return pw;
}

static void pipeline_worker_close(worker *w)
{
    pipeline_worker *pw = w->app_state;
    for (size_t i = NSTAGES; i-- > 0;)
        if (stages[i]->worker_close) stages[i]->worker_close(pw->stage_state[i]);
    upstream_client_close(pw->upstream);
    uv_close((uv_handle_t *)&pw->resume_async, NULL);
}

static void pipeline_worker_free(worker *w)
{
    pipeline_worker *pw = w->app_state;
    route_cache_free(pw->route_cache); /* every request has ended: nothing holds an entry */
    /* resumes that came after the loop's last turn: their exchanges are closed connections' */
    on_resume_async(&pw->resume_async);
    pthread_mutex_destroy(&pw->resume_lock);
    free(pw);
    w->app_state = NULL;
}

static bool pipeline_start(const aigw_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 1; i < NSTAGES; i++)
        if (stages[i]->phase < stages[i - 1]->phase) {
            snprintf(err, errlen, "stage %s is listed after a later phase's stage", stages[i]->name);
            return false;
        }
    for (size_t i = 0; i < NSTAGES; i++) {
        size_t k = i + 1;
        while (k < NSTAGES && !stages[k]->on_request)
            k++;
        phase_goes_on[i] = k < NSTAGES && stages[k]->phase == stages[i]->phase;
    }
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->start && !stages[i]->start(cfg, err, errlen)) {
            while (i-- > 0)
                if (stages[i]->stop) stages[i]->stop();
            return false;
        }
    return true;
}

static void pipeline_stop(void)
{
    for (size_t i = NSTAGES; i-- > 0;)
        if (stages[i]->stop) stages[i]->stop();
}

/* ---- the exchange's life ----------------------------------------------------------------------------- */

static void pipeline_request_init(http_request *req)
{
    exchange *x = xcalloc(1, sizeof *x);
    x->http = req;
    x->arena = &req->arena;
    x->pw = req->worker->app_state;
    x->endpoint = -1;
    buf_init(&x->spare_reply, 0);
    buf_init(&x->spare_events, 0);
    req->app = x;
}

/* What one request held beyond its arena. */
static void exchange_release(exchange *x)
{
    if (x->state)
        for (size_t i = 0; i < NSTAGES; i++)
            if (stages[i]->on_release) stages[i]->on_release(x, x->state[i]);
    attempt_release_all(x);
    route_cache_release(x->cache_entry);
    json_decref(x->config_json);
    json_decref(x->metadata);
    json_decref(x->params);
    json_decref(x->canonical);
    json_decref(x->shape);
}

static void pipeline_request_reset(http_request *req)
{
    exchange *x = req->app;
    exchange_release(x);
    buf spare_reply = x->spare_reply, spare_events = x->spare_events;
    uint32_t serial = x->serial, tickets = x->tickets;
    pipeline_worker *pw = x->pw;
    memset(x, 0, sizeof *x);
    x->tickets = tickets;
    x->http = req;
    x->arena = &req->arena;
    x->pw = pw;
    x->endpoint = -1;
    x->spare_reply = spare_reply;
    x->spare_events = spare_events;
    x->serial = serial + 1; /* a resume for the request that ended is ignored */
}

static void pipeline_request_free(http_request *req)
{
    exchange *x = req->app;
    exchange_release(x);
    buf_free(&x->spare_reply);
    buf_free(&x->spare_events);
    req->app = NULL;
    /* a stage's wait still holds a ticket: the exchange goes when it is given back */
    if (x->tickets)
        x->http = NULL;
    else
        free(x);
}

/* The API a request path belongs to (its errors take that API's shape). */
static wire_format ingress_of(const char *path)
{
    if (path && !strncmp(path, "/v1/messages", 12)) return WIRE_ANTHROPIC;
    if (path && !strncmp(path, "/v1/responses", 13)) return WIRE_RESPONSES;
    return WIRE_OPENAI;
}

static void exchange_begin(exchange *x)
{
    http_request *req = x->http;
    x->config = req->config;
    x->ingress = ingress_of(req->path);
    exchange_set_head(x, NULL, 0);
    x->state = arena_alloc(x->arena, NSTAGES * sizeof *x->state);
    for (size_t i = 0; i < NSTAGES; i++) {
        size_t size = stages[i]->state_size;
        x->state[i] = size ? memset(arena_alloc(x->arena, size), 0, size) : NULL;
    }
}

/* Runs the stages from x->stage on, until one answers or waits. A traced request's phases
 * become spans: the clock is read where a phase's run of stages ends (its start is where the
 * run before ended; the trace stage, first, decides whether the request is traced) — once a
 * phase rather than once a stage, which saved about ten reads a traced request. */
static void run_stages(exchange *x)
{
    uint64_t t0 = x->trace.sampled ? time_now_ns() : 0;
    while (x->stage < NSTAGES) {
        const stage *s = stages[x->stage];
        if (!s->on_request) {
            x->stage++;
            continue;
        }
        uint32_t serial = x->serial;
        stage_result r = s->on_request(x, x->state[x->stage]);
        if (x->serial != serial) return; /* it answered, and the request is over */
        if (x->trace.sampled &&
            (!t0 || (r != STAGE_NEXT && r != STAGE_DECLINED) || !phase_goes_on[x->stage])) {
            uint64_t t1 = time_now_ns();
            if (t0) {
                if (!x->phase_ns[s->phase]) x->phase_start_ns[s->phase] = t0;
                x->phase_ns[s->phase] += t1 - t0 + 1;
            }
            t0 = t1;
        }
        switch (r) {
        case STAGE_NEXT:
        case STAGE_DECLINED: x->stage++; continue;
        case STAGE_DONE: return;
        case STAGE_AGAIN: x->suspended = true; return;
        }
    }
    /* every stage passed it on: a path that is known but served by nothing */
    exchange_error(x, 500, "server_error", "internal_error", NULL, "no stage answered the request");
}

static void pipeline_on_request(http_request *req)
{
    exchange *x = req->app;
    exchange_begin(x);
    run_stages(x);
}

static void pipeline_on_error(http_request *req, int status, const char *code, const char *message)
{
    exchange *x = req->app;
    exchange_begin(x);
    x->stage = NSTAGES; /* no stage runs, and none owns it */
    exchange_error(x, status, status == 503 ? "server_error" : "invalid_request_error", code, NULL, message);
}

static void pipeline_on_writable(http_request *req)
{
    exchange *x = req->app;
    if (x->answer) attempt_resume(x->answer);
}

static void filters_end(exchange *x, bool complete)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->on_end) stages[i]->on_end(x, x->state[i], complete);
}

static void pipeline_on_abort(http_request *req)
{
    exchange *x = req->app;
    x->aborted = true;
    x->suspended = false;
    x->wait_expired = NULL; /* the connection's timer goes with it */
    if (x->stage < NSTAGES && stages[x->stage]->on_abort) stages[x->stage]->on_abort(x, x->state[x->stage]);
    attempt_release_all(x);
    if (x->responded) filters_end(x, false);
    if (!req->response_started) req->status = 499;
    x->error_note = "client closed the connection";
}

/* ---- what stages call -------------------------------------------------------------------------------- */

void *exchange_state(exchange *x, const stage *s)
{
    return x->state[stage_index(s)];
}

void *exchange_worker_state(const exchange *x, const stage *s)
{
    return x->pw->stage_state[stage_index(s)];
}

const http_header *exchange_header(const exchange *x, const char *name)
{
    return http_find_header(x->http, name);
}

const char *exchange_tenant(const exchange *x)
{
    if (x->master_key) return NULL;
    return x->key ? x->key->id : "";
}

/* The head's extra lines: exchange_set_head's, then exchange_keep_head's. */
static void apply_head(exchange *x)
{
    http_request *req = x->http;
    const char *lines = x->head_lines;
    size_t len = x->head_len;
    if (x->kept_head_len) {
        char *both = arena_alloc(x->arena, len + x->kept_head_len);
        if (len) memcpy(both, lines, len);
        memcpy(both + len, x->kept_head, x->kept_head_len);
        lines = both;
        len += x->kept_head_len;
    }
    if (x->ingress != WIRE_ANTHROPIC) {
        req->head_extra = lines;
        req->head_extra_len = len;
        return;
    }
    /* Anthropic's SDKs read the request id from request-id. */
    size_t idlen = strlen(req->id);
    char *h = arena_alloc(x->arena, idlen + len + 16);
    memcpy(h, "request-id: ", 12);
    memcpy(h + 12, req->id, idlen);
    memcpy(h + 12 + idlen, "\r\n", 2);
    if (len) memcpy(h + 14 + idlen, lines, len);
    req->head_extra = h;
    req->head_extra_len = 14 + idlen + len;
}

void exchange_set_head(exchange *x, const char *lines, size_t len)
{
    x->head_lines = lines;
    x->head_len = len;
    apply_head(x);
}

void exchange_keep_head(exchange *x, const char *lines, size_t len)
{
    x->kept_head = lines;
    x->kept_head_len = len;
    apply_head(x);
}

static void filters_head(exchange *x, int status, const char *content_type, bool stream)
{
    x->responded = true;
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->on_head) stages[i]->on_head(x, x->state[i], status, content_type, stream);
}

static void filters_body(exchange *x, const char *data, size_t len)
{
    if (!len) return;
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->on_body) stages[i]->on_body(x, x->state[i], data, len);
}

/* Where the time went before this response's head: x-aigw-overhead-us (aigw's own share, in
 * microseconds) and Server-Timing (upstream and aigw, in milliseconds), added to the head's
 * lines. Upstream time is each attempt's, from its send to its head (or its end); retry waits
 * are neither. Hedged attempts overlap, so their sum can pass the wall time: the overhead is
 * then 0, never negative. */
static void add_timing_head(exchange *x)
{
    http_request *req = x->http;
    uint64_t now = time_now_ns(), upstream = 0, waited = 0;
    for (const attempt *a = x->attempts; a; a = a->next) {
        uint64_t end = a->head_ns ? a->head_ns : a->end_ns ? a->end_ns : now;
        if (a->start_ns && end > a->start_ns) upstream += end - a->start_ns;
    }
    if (x->walk)
        for (const route_attempt_log *l = route_log(x->walk); l; l = l->next)
            waited += (uint64_t)(l->wait_ms * 1e6);
    uint64_t total = now > req->start_ns ? now - req->start_ns : 0;
    uint64_t overhead = total > upstream + waited ? total - upstream - waited : 0;
    x->overhead_ns = overhead;
    x->overhead_known = true;
    /* written by hand: snprintf's %f cost more than the rest of this function together */
    char *h = arena_alloc(x->arena, req->head_extra_len + 128);
    if (req->head_extra_len) memcpy(h, req->head_extra, req->head_extra_len);
    char *p = h + req->head_extra_len;
    p = put_lit(p, "x-aigw-overhead-us: ");
    p = put_int(p, (long long)(overhead / 1000));
    p = put_lit(p, "\r\nServer-Timing: upstream;dur=");
    p = put_milli(p, (long long)(upstream / 1000));
    p = put_lit(p, ", aigw;dur=");
    p = put_milli(p, (long long)(overhead / 1000));
    p = put_lit(p, "\r\n");
    req->head_extra = h;
    req->head_extra_len = (size_t)(p - h);
}

void exchange_respond(exchange *x, int status, const char *content_type, const char *extra_headers,
                      size_t extra_len, const char *body, size_t body_len)
{
    add_timing_head(x);
    filters_head(x, status, content_type, false);
    filters_body(x, body, body_len);
    filters_end(x, true);
    http_respond(x->http, status, content_type, extra_headers, extra_len, body, body_len);
}

void exchange_error(exchange *x, int status, const char *type, const char *code, const char *param,
                    const char *message)
{
    buf body;
    buf_init(&body, 64 * 1024);
    provider_error_body(x->ingress, &body, status, type, code, param, message);
    if (!x->error_note) x->error_note = arena_strndup(x->arena, message, strlen(message));
    exchange_respond(x, status, "application/json", NULL, 0, body.data, body.len);
    buf_free(&body);
}

void exchange_stream_begin(exchange *x, int status, const char *content_type, const char *extra_headers,
                           size_t extra_len)
{
    add_timing_head(x);
    filters_head(x, status, content_type, true);
    http_stream_begin(x->http, status, content_type, extra_headers, extra_len);
}

bool exchange_stream_write(exchange *x, const char *data, size_t len)
{
    filters_body(x, data, len);
    return http_stream_write(x->http, data, len);
}

void exchange_stream_end(exchange *x, const char *data, size_t len)
{
    filters_body(x, data, len);
    filters_end(x, true);
    http_stream_end(x->http, data, len);
}

exchange_ticket exchange_suspend(exchange *x)
{
    x->tickets++;
    return (exchange_ticket){.x = x, .serial = x->serial};
}

/* The connection's request timer, armed by exchange_suspend_bounded: the wait took too long. */
static void on_wait_deadline(http_request *req)
{
    exchange *x = req->app;
    void (*expired)(exchange *) = x->wait_expired;
    x->wait_expired = NULL;
    if (!expired || !x->suspended) return;
    /* no longer waiting: the ticket, when it comes back, is a late resume and is dropped */
    x->suspended = false;
    expired(x);
}

exchange_ticket exchange_suspend_bounded(exchange *x, uint32_t ms, void (*expired)(exchange *x))
{
    x->wait_expired = expired;
    http_request_timer(x->http, ms ? ms : 1, on_wait_deadline);
    return exchange_suspend(x);
}

void exchange_resume(exchange_ticket t, stage_result result)
{
    exchange *x = t.x;
    x->tickets--;
    if (!x->http) { /* its connection has closed */
        if (!x->tickets) free(x);
        return;
    }
    if (x->serial != t.serial) return; /* the request has ended meanwhile */
    if (x->wait_expired) {             /* a bounded wait's ticket, back in time (or handed back unused) */
        x->wait_expired = NULL;
        http_request_timer_stop(x->http);
    }
    if (!x->suspended) return; /* answered meanwhile (its deadline, or the client left) */
    x->suspended = false;
    if (result == STAGE_DONE) return;
    if (result == STAGE_AGAIN) {
        x->suspended = true;
        return;
    }
    x->stage++;
    run_stages(x);
}

bool exchange_ticket_live(exchange_ticket t)
{
    return t.x->http && t.x->serial == t.serial && t.x->suspended;
}

void exchange_resume_from_thread(exchange_ticket t, stage_result result)
{
    pipeline_worker *pw = t.x->pw;
    resume_item *item = xcalloc(1, sizeof *item);
    item->ticket = t;
    item->result = result;
    pthread_mutex_lock(&pw->resume_lock);
    item->next = pw->resumes;
    pw->resumes = item;
    pthread_mutex_unlock(&pw->resume_lock);
    uv_async_send(&pw->resume_async);
}

struct thread_jobs {
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int pending;
};

int thread_jobs_pending(thread_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    int n = j->pending;
    pthread_mutex_unlock(&j->lock);
    return n;
}

thread_jobs *thread_jobs_new(void)
{
    thread_jobs *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->idle, NULL);
    return j;
}

void thread_jobs_add(thread_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->pending++;
    pthread_mutex_unlock(&j->lock);
}

void thread_jobs_done(thread_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    if (--j->pending == 0) pthread_cond_broadcast(&j->idle);
    pthread_mutex_unlock(&j->lock);
}

void thread_jobs_close(thread_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    while (j->pending)
        pthread_cond_wait(&j->idle, &j->lock);
    pthread_mutex_unlock(&j->lock);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->idle);
    free(j);
}

json_t *exchange_canonical(exchange *x, const char **why)
{
    if (!x->canonical && !x->canonical_error) {
        const buf *body = &x->http->body;
        codec_ctx c = {.arena = x->arena,
                       .request_id = x->http->id,
                       .ingress = x->ingress,
                       .endpoint = x->endpoint,
                       .stream = x->stream,
                       .body = body->data ? body->data : "",
                       .body_len = body->len,
                       .headers = x->http->headers,
                       .nheaders = x->http->nheaders};
        provider_error err;
        x->canonical = provider_request_canonical(&c, &err);
        if (!x->canonical) x->canonical_error = arena_strndup(x->arena, err.message, strlen(err.message));
    }
    if (!x->canonical && why) *why = x->canonical_error;
    return x->canonical;
}

/* ---- the record ------------------------------------------------------------------------------------ */

static const char *const outcome_names[] = {[ATTEMPT_OK] = "ok",
                                            [ATTEMPT_STATUS] = "error_status",
                                            [ATTEMPT_TIMEOUT] = "timeout",
                                            [ATTEMPT_CONNECT] = "connect_error",
                                            [ATTEMPT_BROKEN] = "broken",
                                            [ATTEMPT_SKIPPED] = "skipped",
                                            [ATTEMPT_CANCELLED] = "cancelled"};

static void pipeline_on_done(http_request *req)
{
    exchange *x = req->app;
    if (!x->config) exchange_begin(x); /* a request refused before the application saw it */
    enum { CALLS_ON_STACK = 8 };
    record_call calls_on_stack[CALLS_ON_STACK];
    record_phase phases[PHASES_MAX];
    exchange_record r = {
        .request_id = req->id,
        .method = req->method >= 0 ? http_method_str(req->method) : "-",
        .path = req->path ? req->path : "",
        .path_len = req->path ? req->path_len : 0,
        .model = x->model,
        .model_served = x->model_served,
        .ingress = x->ingress == WIRE_ANTHROPIC   ? "anthropic"
                   : x->ingress == WIRE_RESPONSES ? "responses"
                                                  : NULL,
        .status = req->status,
        .bytes_in = req->bytes_in,
        .bytes_out = req->bytes_out,
        .start_ns = req->start_ns,
        .first_byte_ns = req->first_byte_ns,
        .end_ns = time_now_ns(),
        .stream = x->stream,
        .cost_usd = -1,
        .error = x->error_note,
        .soft_budget_exceeded = x->budget_note,
        .rejection = x->rejection,
        .any_trace_id = x->trace.propagate ? x->trace.trace_id : NULL,
        .overhead_us = x->overhead_known ? (int64_t)(x->overhead_ns / 1000) : -1,
        .request_body = req->body.data,
        .request_body_len = req->body.len,
        .response_body = x->trace.output,
        .response_body_len = x->trace.output_len,
    };
    if (x->key) {
        r.key_id = x->key->id;
        r.key_alias = x->key->alias;
        r.team = x->key->team;
        r.user = x->key->user;
    } else if (x->master_key) {
        r.key_id = "master";
    }
    /* the attempt that answered, else the last one started */
    const attempt *a = x->answer ? x->answer : x->attempts;
    while (!x->answer && a && a->internal) /* a stage's own call (an embedding) is not the answer */
        a = a->next;
    if (a) {
        r.provider = a->target.route->provider->name;
        r.provider_type = a->target.route->provider->type;
        r.upstream_model = a->target.route->upstream_model;
        r.upstream_model_len = a->target.route->upstream_model_len;
        const usage_counts *u = &a->codec.usage;
        r.usage = (record_usage){u->prompt, u->completion, u->cached, u->cache_write, u->reasoning, u->seen};
        if (u->seen) r.cost_usd = attempt_cost(a);
        r.dropped_params = a->codec.dropped_params;
    }
    if (x->reasoning.summed) { /* a technique: every call's usage and cost (reason_stage.c) */
        const usage_counts *u = &x->reasoning.usage;
        r.usage = (record_usage){u->prompt, u->completion, u->cached, u->cache_write, u->reasoning, u->seen};
        r.cost_usd = u->seen ? x->reasoning.cost_usd : -1;
    }
    r.technique = x->reasoning.name;
    r.decision = x->decision;
    r.cache = x->cache.status;
    if (x->cache.hit) { /* answered from the cache: the stored usage, nothing spent */
        const usage_counts *u = &x->cache.usage;
        r.usage = (record_usage){u->prompt, u->completion, u->cached, u->cache_write, u->reasoning, true};
        r.cost_usd = 0;
        r.cache_saved_usd = x->cache.saved_usd;
    }
    if (x->trace.sampled) {
        r.trace_id = x->trace.trace_id;
        r.span_id = x->trace.span_id;
        r.parent_span_id = x->trace.has_parent ? x->trace.parent_id : NULL;
        size_t n = 0;
        for (const attempt *c = x->attempts; c; c = c->next)
            n += c->start_ns != 0;
        /* on the stack when they fit: the record is read during the observers' calls only, and
         * the request's arena has little room left in its first block (a second block is a
         * malloc and a free per traced request) */
        record_call *calls = n <= CALLS_ON_STACK ? calls_on_stack : arena_alloc(x->arena, n * sizeof *calls);
        r.calls = calls;
        r.ncalls = n;
#define PHASE_NAME(s)                                                                                        \
    {                                                                                                        \
        s, 0, 0, sizeof s - 1                                                                                \
    }
        static const record_phase phase_names[PHASES_MAX] = {
            [PHASE_AUTH] = PHASE_NAME("auth"),     [PHASE_ADMIT] = PHASE_NAME("admit"),
            [PHASE_DECODE] = PHASE_NAME("decode"), [PHASE_PROMPT] = PHASE_NAME("prompt"),
            [PHASE_PLAN] = PHASE_NAME("routing"),  [PHASE_CACHE] = PHASE_NAME("cache")};
#undef PHASE_NAME
        r.phases = phases;
        for (int p = 0; p < PHASES_MAX; p++)
            if (phase_names[p].name && x->phase_ns[p])
                phases[r.nphases++] = (record_phase){phase_names[p].name, x->phase_start_ns[p],
                                                     x->phase_ns[p], phase_names[p].name_len};
        for (const attempt *c = x->attempts; c; c = c->next) /* newest first: filled from the end */
            if (c->start_ns)
                calls[--n] = (record_call){.provider = c->target.route->provider->name,
                                           .provider_type = c->target.route->provider->type,
                                           .model = c->target.route->upstream_model,
                                           .start_ns = c->start_ns,
                                           .end_ns = c->end_ns,
                                           .status = c->status,
                                           .outcome = outcome_names[c->result],
                                           .span_id = c->span_id,
                                           .encode_start_ns = c->encode_start_ns,
                                           .encode_ns = c->encode_ns,
                                           .decode_ns = c->decode_ns,
                                           .ingress = r.ingress ? r.ingress : "openai"};
    }
    r.prompt_id = x->prompt_id;
    r.prompt_version = x->prompt_version;
    if (x->walk) {
        r.route = route_tree_name(x->walk);
        r.route_note = route_note(x->walk);
        r.route_reason = x->route_reason;
        /* the walk's attempts; a technique's: every call's walk, each attempt with its step */
        route_walk *only[1] = {x->walk};
        const char *no_step[1] = {NULL};
        route_walk *const *walks = x->reasoning.nwalks ? x->reasoning.walks : only;
        const char *const *steps = x->reasoning.nwalks ? x->reasoning.steps : no_step;
        size_t nwalks = x->reasoning.nwalks ? x->reasoning.nwalks : 1;
        size_t n = 0;
        for (size_t w = 0; w < nwalks; w++)
            for (const route_attempt_log *l = route_log(walks[w]); l; l = l->next)
                n++;
        record_attempt *list = arena_alloc(x->arena, (n ? n : 1) * sizeof *list);
        n = 0;
        for (size_t w = 0; w < nwalks; w++) {
            size_t first = n;
            for (const route_attempt_log *l = route_log(walks[w]); l; l = l->next, n++)
                list[n] = (record_attempt){.role = n == first ? "first"
                                                   : l->hedge ? "hedge"
                                                   : l->retry ? "retry"
                                                              : "fallback",
                                           .step = steps[w],
                                           .provider = l->provider,
                                           .model = l->model,
                                           .path = l->path,
                                           .outcome = outcome_names[l->result],
                                           .note = l->why,
                                           .status = l->status,
                                           .ms = l->ms,
                                           .wait_ms = l->wait_ms,
                                           .skipped = l->result == ATTEMPT_SKIPPED};
        }
        r.attempts = list;
        r.nattempts = n;
    }
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->on_record) stages[i]->on_record(&r, x->pw->stage_state[i]);
}

/* A reload: header configs' trees built against the old config are not used again. */
static void pipeline_worker_config(worker *w, const aigw_config *next)
{
    pipeline_worker *pw = w->app_state;
    route_cache_reset(pw->route_cache, next);
}

static void pipeline_reopen_logs(void)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->reopen) stages[i]->reopen();
}

static void pipeline_reloaded(const aigw_config *fresh)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->reload) stages[i]->reload(fresh);
}

const http_app pipeline_app = {
    .start = pipeline_start,
    .stop = pipeline_stop,
    .worker_init = pipeline_worker_init,
    .worker_close = pipeline_worker_close,
    .worker_free = pipeline_worker_free,
    .request_init = pipeline_request_init,
    .request_reset = pipeline_request_reset,
    .request_free = pipeline_request_free,
    .on_request = pipeline_on_request,
    .on_error = pipeline_on_error,
    .on_writable = pipeline_on_writable,
    .on_abort = pipeline_on_abort,
    .on_done = pipeline_on_done,
    .worker_config = pipeline_worker_config,
    .reopen_logs = pipeline_reopen_logs,
    .reloaded = pipeline_reloaded,
};
