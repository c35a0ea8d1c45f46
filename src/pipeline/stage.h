/* stage.h — how a module joins the request's path: the phase table and the stage interface.
 *
 * A request walks a fixed table of phases, nginx's phases being the model (h2o's handlers,
 * filters and loggers, and Varnish's request steps, the same idea):
 *
 *   ACCEPT   method + path → endpoint (404 / 405); local endpoints answer here
 *   AUTH     who is asking (gateway keys: 401), and local answers that depend on it
 *   DECODE   the body: valid JSON, `model`, `stream` (400); the models the key may use (403)
 *   ADMIT    may they, now: budgets (budget.c: 429 budget_exceeded, 403 team_blocked), then
 *            rate limits (limits_stage.c: 429). After DECODE, not before it: a limit of a key
 *            on one model, and a token limit's estimate, need the model and the body
 *   PROMPT   a stored template rendered into the request (prompt_stage.c)
 *   PLAN     the route tree and a walk through it (404 model_not_found)
 *   CACHE    a stored answer answers here (cache_stage.c); its filters store the reply
 *   EXECUTE  attempts upstream, the answer to the client
 *   then, on the way out, response filters (head, each piece of the body, end), and at the
 *   very end, RECORD: observers receive the exchange's summary (observe/record.h).
 *
 * A stage is a row of pipeline.c's table: its phase, the size of its per-request state (zeroed
 * for each request, exchange_state), and callbacks, each optional:
 *
 *   on_request  returns STAGE_NEXT (go on), STAGE_DECLINED (not mine: go on), STAGE_DONE (the
 *               stage has taken the answer on: now, or later from its own callbacks), or
 *               STAGE_AGAIN (it waits: for a libuv callback on this loop, or for another
 *               thread; it calls exchange_resume with what on_request would have returned).
 *   on_abort    the client left while this stage owned the exchange (DONE or AGAIN): stop
 *               what runs (attempts, timers, a thread's work is ignored on resume).
 *   on_head / on_body / on_end — response filters: they see the response the client gets,
 *               head, byte runs in the client's format, and the end (complete or not). They
 *               see; they do not change it (a cache stores through them).
 *   on_record   an observer: the typed, immutable summary when the request is done.
 *   on_release  the request is over (recorded, or its connection gone): drop what its state
 *               holds beyond the arena (a reference to the key snapshot).
 *   worker_init / worker_close — per worker state (exchange_worker_state), on its loop.
 *   start / stop — process-wide, before the workers start and after they stop; reopen —
 *               SIGUSR1, the files it writes are opened again (log rotation); reload — a new
 *               config was accepted (for a stage's own threads: workers get theirs per request).
 *
 * Stages answer through the exchange (exchange_respond, exchange_error, exchange_stream_*),
 * never through http_conn.h directly, so that every filter sees every response. */
#ifndef AIGW_PIPELINE_STAGE_H
#define AIGW_PIPELINE_STAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "observe/record.h"
#include "pipeline/exchange.h"

struct worker;

typedef enum stage_phase {
    PHASE_ACCEPT,
    PHASE_AUTH,
    PHASE_DECODE,
    PHASE_ADMIT,
    PHASE_PROMPT,
    PHASE_PLAN,
    PHASE_CACHE,
    PHASE_EXECUTE,
    PHASE_RECORD, /* observers and filters only: no on_request */
} stage_phase;
_Static_assert(PHASE_RECORD + 1 == PHASES_MAX, "exchange.h's PHASES_MAX counts the phases");

typedef enum stage_result {
    STAGE_NEXT,
    STAGE_DONE,
    STAGE_AGAIN,
    STAGE_DECLINED,
} stage_result;

typedef struct stage {
    const char *name;
    stage_phase phase;
    size_t state_size;
    bool (*start)(const aigw_config *cfg, char *err, size_t errlen);
    void (*stop)(void);
    void *(*worker_init)(struct worker *w);
    void (*worker_close)(void *worker_state);
    stage_result (*on_request)(exchange *x, void *state);
    void (*on_abort)(exchange *x, void *state);
    void (*on_head)(exchange *x, void *state, int status, const char *content_type, bool stream);
    void (*on_body)(exchange *x, void *state, const char *data, size_t len);
    void (*on_end)(exchange *x, void *state, bool complete);
    void (*on_record)(const exchange_record *r, void *worker_state);
    void (*on_release)(exchange *x, void *state);
    void (*reopen)(void); /* SIGUSR1: open the files it writes again (log rotation) */
    /* A reload was accepted: next is the config of the requests that begin from now on. Once
     * per reload, on the server's main thread (threads of its own that read the config follow
     * it from here). */
    void (*reload)(const aigw_config *next);
} stage;

/* ---- what stages call ------------------------------------------------------------------------ */

/* A stage's per-request state (state_size bytes, zeroed for each request) and per-worker state. */
void *exchange_state(exchange *x, const stage *s);
void *exchange_worker_state(const exchange *x, const stage *s);

/* A complete response. extra_headers: "Name: value\r\n" lines, or NULL. */
void exchange_respond(exchange *x, int status, const char *content_type, const char *extra_headers,
                      size_t extra_len, const char *body, size_t body_len);
/* An error in the client's API shape (OpenAI's {"error":{message,type,param,code}} or
 * Anthropic's {"type":"error","error":{type,message}}); type and code OpenAI-style, code and
 * param may be NULL. The message also goes to the log. */
void exchange_error(exchange *x, int status, const char *type, const char *code, const char *param,
                    const char *message);
/* A streamed response: begin, then write byte runs (returns true when the client is behind —
 * pause the source until the pipeline resumes x->answer), then end with the last bytes. */
void exchange_stream_begin(exchange *x, int status, const char *content_type, const char *extra_headers,
                           size_t extra_len);
bool exchange_stream_write(exchange *x, const char *data, size_t len);
void exchange_stream_end(exchange *x, const char *data, size_t len);
/* "Name: value\r\n" lines for every response head of this request (the route taken), replacing
 * what was set before. */
void exchange_set_head(exchange *x, const char *lines, size_t len);

/* Lines that every response head of this request carries from now on, besides (after) what
 * exchange_set_head sets: the rate-limit headers, which the ADMIT phase knows and the response
 * that comes much later must show. lines must live as long as the request (its arena). */
void exchange_keep_head(exchange *x, const char *lines, size_t len);

/* A stage that waits takes a ticket (exchange_suspend) and returns STAGE_AGAIN; when its wait is
 * over it gives the ticket back with what its on_request would have returned (NEXT or
 * DECLINED: the next stage runs; DONE: it has answered). Every ticket is given back exactly
 * once — a wait cancelled in on_abort gives it back with STAGE_DONE — and the exchange outlives
 * its connection until then, so a late resume is harmless. exchange_resume runs on the
 * worker's loop. */
typedef struct exchange_ticket {
    exchange *x;
    uint32_t serial;
} exchange_ticket;
exchange_ticket exchange_suspend(exchange *x);
void exchange_resume(exchange_ticket t, stage_result result);
/* The same from any other thread: queued to the worker's loop (its uv_async). A ticket whose
 * request has ended meanwhile (the client left) is dropped there. */
void exchange_resume_from_thread(exchange_ticket t, stage_result result);
/* exchange_suspend for a wait that must not outlast ms (one on another thread that may stall:
 * the store's). When the ticket has not come back by then, expired(x) runs on the worker's loop
 * with the exchange no longer waiting: it answers (exchange_error: 503) and drops whatever
 * the wait would have used; the ticket, given back later by whoever holds it, finds the request
 * over and is dropped (the exchange outlives its request until then, so that late delivery
 * touches nothing freed). A ticket given back in time stops the deadline. The deadline is the
 * connection's request timer (http_request_timer): one bounded wait at a time, with its one
 * ticket, and no other request timer while it runs. expired never runs after the ticket came
 * back, nor after the client left (on_abort runs instead). */
exchange_ticket exchange_suspend_bounded(exchange *x, uint32_t ms, void (*expired)(exchange *x));
/* Whether the request that gave t still waits on it (its client has not left): a stage whose
 * wait ends on the loop may then answer it (exchange_respond, …) before giving the ticket back
 * with STAGE_DONE. On the worker's loop. */
bool exchange_ticket_live(exchange_ticket t);

/* A worker's jobs handed to another thread (the store's) that will resume its exchanges: the
 * resume needs the worker's loop, so a stage's worker_close waits until none is pending. Add one
 * before handing a job over (and take it back, thread_jobs_done, when the handing failed); the
 * job calls thread_jobs_done after its exchange_resume_from_thread. Any thread but close. */
typedef struct thread_jobs thread_jobs;
thread_jobs *thread_jobs_new(void);
void thread_jobs_add(thread_jobs *j);
void thread_jobs_done(thread_jobs *j);
/* How many are handed over and not done yet (a stage may cap what one worker has waiting). */
int thread_jobs_pending(thread_jobs *j);
/* On the worker's loop, from worker_close: waits for the pending jobs, then frees j. */
void thread_jobs_close(thread_jobs *j);

/* The request in canonical form (OpenAI chat), built on first use and kept for the request:
 * parsed from the client's body, translated when the client speaks another API. NULL with
 * the reason in *why (may be NULL) when the body cannot be read so. Borrowed: valid until the
 * request ends. The byte-forwarding path never builds it; only stages that ask pay for it. */
struct json_t *exchange_canonical(exchange *x, const char **why);

/* A header of the client's request; NULL when absent. */
const http_header *exchange_header(const exchange *x, const char *name);
/* Whose the request's stored things are (the Responses API's store): the gateway key's id, ""
 * when auth is off, NULL for the master key (every tenant's). */
const char *exchange_tenant(const exchange *x);

#endif
