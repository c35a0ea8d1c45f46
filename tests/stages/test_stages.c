/* test_stages.c — stages that exist only in the test build (build/aigw-test-stages), to show
 * that the stage interface (src/pipeline/stage.h) carries what later modules will need; the
 * e2e test tests/e2e/stages.test.mjs drives them through request headers.
 *
 *   wait    (ADMIT)   x-test-wait-ms: N — the stage returns STAGE_AGAIN and another thread
 *                     resumes the exchange after N ms (exchange_resume_from_thread), as a
 *                     store lookup on a thread pool will; a client that leaves meanwhile must
 *                     leave nothing behind.
 *   fanout  (EXECUTE) x-test-fanout: MODEL,MODEL — one attempt to each model's first target at
 *                     once, both replies buffered and answered joined: {"fanout":[{model,
 *                     status, body}, …]} — the shape best-of-n and mixture of agents take.
 *   canonical (PROMPT) x-test-canonical — asks for the request's canonical form (twice: it is
 *                     built once) and prints what it holds ("test-canonical: …").
 *   filter  (RECORD)  a response filter counting the bytes of every response, and an observer;
 *                     both print what they saw on stderr ("test-filter: …", "test-record: …")
 *                     for the test to compare with what the client got. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pipeline/attempt.h"
#include "pipeline/stage.h"
#include "server/worker.h"

/* ---- wait: resumed from another thread ---------------------------------------------------------- */

typedef struct wait_job {
    exchange_ticket ticket;
    unsigned ms;
} wait_job;

typedef struct wait_worker {
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int running; /* threads not yet finished: the worker's close waits for them */
} wait_worker;

static wait_worker *wait_shared;

static void *wait_thread(void *arg)
{
    wait_job *job = arg;
    usleep(job->ms * 1000);
    exchange_resume_from_thread(job->ticket, STAGE_NEXT);
    free(job);
    pthread_mutex_lock(&wait_shared->lock);
    if (--wait_shared->running == 0) pthread_cond_broadcast(&wait_shared->idle);
    pthread_mutex_unlock(&wait_shared->lock);
    return NULL;
}

static bool wait_start(const aigw_config *cfg, char *err, size_t errlen)
{
    wait_shared = calloc(1, sizeof *wait_shared);
    pthread_mutex_init(&wait_shared->lock, NULL);
    pthread_cond_init(&wait_shared->idle, NULL);
    return true;
}

static void wait_stop(void)
{
    pthread_mutex_destroy(&wait_shared->lock);
    pthread_cond_destroy(&wait_shared->idle);
    free(wait_shared);
    wait_shared = NULL;
}

static void *wait_worker_init(worker *w)
{
    return wait_shared;
}

/* Threads resume through the worker's queue: they must be done before it closes. */
static void wait_worker_close(void *state)
{
    wait_worker *ww = state;
    pthread_mutex_lock(&ww->lock);
    while (ww->running)
        pthread_cond_wait(&ww->idle, &ww->lock);
    pthread_mutex_unlock(&ww->lock);
}

static stage_result wait_on_request(exchange *x, void *state)
{
    const http_header *h = exchange_header(x, "x-test-wait-ms");
    if (!h) return STAGE_DECLINED;
    wait_job *job = malloc(sizeof *job);
    job->ticket = exchange_suspend(x);
    job->ms = (unsigned)atoi(h->value) % 5000;
    pthread_mutex_lock(&wait_shared->lock);
    wait_shared->running++;
    pthread_mutex_unlock(&wait_shared->lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, wait_thread, job);
    pthread_attr_destroy(&attr);
    return STAGE_AGAIN;
}

const stage test_stage_wait = {
    .name = "test-wait",
    .phase = PHASE_ADMIT,
    .start = wait_start,
    .stop = wait_stop,
    .worker_init = wait_worker_init,
    .worker_close = wait_worker_close,
    .on_request = wait_on_request,
};

/* ---- canonical: the request's canonical form, on demand --------------------------------------------- */

static stage_result canonical_on_request(exchange *x, void *state)
{
    if (!exchange_header(x, "x-test-canonical")) return STAGE_DECLINED;
    const char *why = NULL;
    json_t *canon = exchange_canonical(x, &why);
    if (!canon) {
        fprintf(stderr, "test-canonical: %s error=%s\n", x->http->id, why ? why : "?");
        return STAGE_NEXT;
    }
    char roles[256] = "";
    size_t n = 0, at = 0;
    json_t *messages = json_object_get(canon, "messages"), *m;
    json_array_foreach(messages, n, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        at += (size_t)snprintf(roles + at, at < sizeof roles ? sizeof roles - at : 0, "%s%s", n ? "," : "",
                               role ? role : "?");
        if (at >= sizeof roles) break;
    }
    const char *effort = json_string_value(json_object_get(canon, "reasoning_effort"));
    fprintf(stderr, "test-canonical: %s messages=%zu roles=%s max_tokens=%lld reasoning_effort=%s same=%d\n",
            x->http->id, json_array_size(messages), roles,
            (long long)json_integer_value(json_object_get(canon, "max_tokens")), effort ? effort : "-",
            exchange_canonical(x, NULL) == canon);
    return STAGE_NEXT;
}

const stage test_stage_canonical = {
    .name = "test-canonical",
    .phase = PHASE_PROMPT,
    .on_request = canonical_on_request,
};

/* ---- fanout: N attempts at once, one answer ---------------------------------------------------------- */

#define FANOUT_MAX 4

typedef struct fanout_state {
    attempt *attempts[FANOUT_MAX];
    route_walk *walks[FANOUT_MAX];
    int n, ended;
} fanout_state;

static bool fanout_on_head(attempt *a)
{
    return true;
}

static void fanout_answer(exchange *x, fanout_state *fs)
{
    json_t *list = json_array();
    for (int i = 0; i < fs->n; i++) {
        attempt *a = fs->attempts[i];
        bool ok = a->outcome == ATTEMPT_ANSWERED;
        json_array_append_new(list, json_pack("{s:s, s:i, s:s#}", "model", a->target.route->upstream_model,
                                              "status", ok ? a->status : a->failure_status, "body",
                                              ok ? (a->reply.data ? a->reply.data : "") : a->message,
                                              ok ? a->reply.len : strlen(a->message)));
        route_report(fs->walks[i],
                     &(attempt_report){.result = a->result, .status = a->status, .retry_after_ms = -1});
    }
    json_t *answer = json_pack("{s:o}", "fanout", list);
    char *body = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    exchange_respond(x, 200, "application/json", NULL, 0, body, strlen(body));
    free(body);
}

static void fanout_on_end(attempt *a)
{
    exchange *x = a->x;
    fanout_state *fs = a->sink_data;
    if (++fs->ended == fs->n) fanout_answer(x, fs);
}

static const attempt_sink fanout_sink = {.on_head = fanout_on_head, .on_end = fanout_on_end};

static stage_result fanout_on_request(exchange *x, void *state)
{
    fanout_state *fs = state;
    const http_header *h = exchange_header(x, "x-test-fanout");
    if (!h) return STAGE_DECLINED;
    if (x->stream) {
        exchange_error(x, 400, "invalid_request_error", NULL, NULL,
                       "the fan-out test stage answers plain requests");
        return STAGE_DONE;
    }
    char *list = arena_strndup(x->arena, h->value, h->value_len), *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name && fs->n < FANOUT_MAX;
         name = strtok_r(NULL, ",", &save)) {
        const model_route *r = config_find_model(x->config, name, strlen(name));
        if (!r) {
            exchange_error(x, 404, "invalid_request_error", "model_not_found", NULL,
                           "x-test-fanout names an unknown model");
            return STAGE_DONE;
        }
        route_context ctx = {
            .arena = x->arena, .state = x->config->health, .config = x->config, .model = name};
        route_walk *walk = route_walk_new(&ctx, r->tree);
        route_target t;
        if (!route_next(walk, &t) || !route_begin(walk, &t)) {
            exchange_error(x, 503, "server_error", NULL, NULL, "a fan-out target is unavailable");
            return STAGE_DONE;
        }
        fs->walks[fs->n] = walk;
        fs->attempts[fs->n++] = attempt_new(x, &t, &fanout_sink, fs);
    }
    /* every attempt starts before any can end (an end answers once all have) */
    for (int i = 0; i < fs->n; i++) {
        attempt *a = fs->attempts[i];
        if (attempt_prepare(a) != PREP_READY || !attempt_send(a)) {
            a->outcome = ATTEMPT_FAILED;
            if (!a->message) a->message = "not sent";
            fs->ended++;
        }
    }
    if (fs->ended == fs->n) fanout_answer(x, fs);
    return STAGE_DONE;
}

/* The client left: attempts still out give their targets' in-flight slots back. */
static void fanout_on_abort(exchange *x, void *state)
{
    fanout_state *fs = state;
    for (int i = 0; i < fs->n; i++)
        if (fs->attempts[i]->call) {
            attempt_cancel(fs->attempts[i]);
            route_report(fs->walks[i], &(attempt_report){.result = ATTEMPT_CANCELLED, .retry_after_ms = -1});
        }
}

const stage test_stage_fanout = {
    .name = "test-fanout",
    .phase = PHASE_EXECUTE,
    .state_size = sizeof(fanout_state),
    .on_request = fanout_on_request,
    .on_abort = fanout_on_abort,
};

/* ---- filter and observer ------------------------------------------------------------------------------ */

typedef struct filter_state {
    int status;
    bool stream, head;
    size_t bytes;
} filter_state;

static void filter_on_head(exchange *x, void *state, int status, const char *content_type, bool stream)
{
    filter_state *fs = state;
    fs->head = true;
    fs->status = status;
    fs->stream = stream;
}

static void filter_on_body(exchange *x, void *state, const char *data, size_t len)
{
    ((filter_state *)state)->bytes += len;
}

static void filter_on_end(exchange *x, void *state, bool complete)
{
    filter_state *fs = state;
    fprintf(stderr, "test-filter: %s status=%d stream=%d head=%d bytes=%zu complete=%d\n", x->http->id,
            fs->status, fs->stream, fs->head, fs->bytes, complete);
}

static void filter_on_record(const exchange_record *r, void *worker_state)
{
    fprintf(stderr, "test-record: %s status=%d attempts=%zu\n", r->request_id, r->status, r->nattempts);
}

const stage test_stage_filter = {
    .name = "test-filter",
    .phase = PHASE_RECORD,
    .state_size = sizeof(filter_state),
    .on_head = filter_on_head,
    .on_body = filter_on_body,
    .on_end = filter_on_end,
    .on_record = filter_on_record,
};
