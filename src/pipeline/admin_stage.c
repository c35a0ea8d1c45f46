/* admin_stage.c — the admin API on the gateway's own listener: /admin/… and LiteLLM's /key/…, /team/…
 * (src/admin does the work; this file is the stage that takes a request there and back).
 *
 * ACCEPT phase, before the endpoint table: a path of the admin API is answered here and never
 * reaches a provider. /admin/openapi.json is public (it describes, it holds nothing); every other
 * operation needs the master key (auth.master_key, compared as a digest in constant time) or an
 * admin key: a gateway key with `admin` set, enabled and unexpired, found in the worker's key
 * snapshot as AUTH finds keys (auth_find_key: no store I/O on the loop, and a revoked admin key
 * stops with the next snapshot). An admin key manages user keys, teams and virtual keys and may
 * read the config; creating, changing or deleting an admin key (src/admin checks it from
 * admin_request.admin_key) and replacing or reloading the config take the master key. The
 * dashboard's session cookie stands for the key it was opened with (ui_stage.c, the row before:
 * x->session_digest, its CSRF token already checked), checked here like a key in the headers.
 * A key in the headers that is no gateway key is the master key or a guess at it: its client
 * address's wrong keys are throttled (auth_check_master; 429 past ten a minute).
 *
 * The operation writes SQLite, which must not happen on a worker's loop: the stage copies the
 * request into a job, queues it to the store's thread (store_service_submit_then) and waits
 * (STAGE_AGAIN); the thread runs admin_handle, hands the workers the snapshot with its writes,
 * and gives the ticket back (exchange_resume_from_thread); the next row, admin-reply, sends the answer on the
 * loop. The job is counted twice (the thread's and the exchange's): whichever side lets go last frees it, so
 * a client that leaves while the thread works leaves nothing behind. A worker closing waits for its jobs in
 * flight, since their resumes go through its loop.
 *
 * Rejected: a second listener with its own application table for the admin API (the server
 * runs one application; a second would need its own workers, drain and reload paths for a
 * handful of requests a day) — `admin.listen` can come later if an operator wants the API off
 * the public port; until then it is as reachable as the gateway and guarded by the master key and
 * admin keys. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>

#include "admin/admin.h"
#include "pipeline/stages.h"
#include "routing/routing.h"
#include "server/server.h"
#include "server/worker.h"
#include "util/alloc.h"
#include "util/buf.h"

typedef struct admin_job {
    atomic_int refs; /* the store thread's and the exchange's */
    exchange_ticket ticket;
    thread_jobs *jobs; /* the worker's: counts this job until its exchange is resumed */
    admin_request req;
    char *path, *query, *body; /* the request's, copied: the thread must not read the arena */
    const aigw_config *config; /* a reference of its own: req.prompt_files is the config's, and the
                                  exchange (and with it its reference) may end before the job */
    admin_reply reply;
} admin_job;

typedef struct admin_state {
    admin_job *job; /* the exchange's reference */
} admin_state;

static void job_release(admin_job *job)
{
    if (!job || atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1) return;
    free(job->path);
    free(job->query);
    free(job->body);
    admin_reply_free(&job->reply);
    config_release(job->config);
    free(job);
}

/* The job's answer is in job->reply: back to the worker's loop (any thread). */
static void job_done(admin_job *job)
{
    thread_jobs *jobs = job->jobs;
    exchange_resume_from_thread(job->ticket, STAGE_NEXT);
    job_release(job);
    thread_jobs_done(jobs);
}

/* On the store's thread. */
static void run_job(store *s, void *arg)
{
    admin_job *job = arg;
    admin_handle(s, auth_secret(), &job->req, &job->reply);
}

/* On the store's thread, once the workers have been handed the keys as run_job left them: the
 * client that made a key can use it as soon as it has the answer. */
static void run_job_done(void *arg)
{
    job_done(arg);
}

/* On the main thread: the reload a config job asked for is over. */
static void config_job_done(void *ud, bool ok, const char *message)
{
    admin_job *job = ud;
    json_t *j = ok ? json_pack("{s:b,s:s}", "reloaded", 1, "message", message)
                   : json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", message, "type",
                               "invalid_request_error", "param", "code", "config_refused");
    job->reply.status = ok ? 200 : 400;
    job->reply.body = json_dumps(j, JSON_COMPACT);
    job->reply.len = strlen(job->reply.body);
    json_decref(j);
    job_done(job);
}

static void *admin_worker_init(worker *w)
{
    return thread_jobs_new();
}

static void admin_worker_close(void *state)
{
    thread_jobs_close(state);
}

static void answer_error(exchange *x, int status, const char *code, const char *message)
{
    exchange_error(x, status,
                   status == 401   ? "invalid_request_error"
                   : status == 403 ? "permission_error"
                   : status >= 500 ? "server_error"
                                   : "invalid_request_error",
                   code, NULL, message);
}

/* timeouts.admin passed and the store's thread has not answered: 503 store_timeout, the
 * exchange's reference let go. The job still runs when the thread reaches it (a write may
 * still be applied: the message says so), its reply is freed with its last reference and its
 * resume finds the request over (stage.h). */
static void job_expired(exchange *x)
{
    admin_state *as = exchange_state(x, &stage_admin);
    job_release(as->job);
    as->job = NULL;
    answer_error(x, 503, "store_timeout",
                 "the store did not answer in time (timeouts.admin); the operation may still be applied "
                 "when it does: check before retrying a change");
}

/* A job for the request, counted as pending on the worker, with the exchange suspended — for
 * at most timeouts.admin when the job goes to the store's thread (store_wait), else until the
 * main thread answers (a config reload, bounded by its own work). */
static admin_job *job_new(exchange *x, int method, bool store_wait)
{
    http_request *req = x->http;
    admin_job *job = xcalloc(1, sizeof *job);
    atomic_init(&job->refs, 2);
    job->jobs = exchange_worker_state(x, &stage_admin);
    job->path = xstrdup(req->path);
    job->query = xstrdup(req->query ? req->query : "");
    job->body = req->body.len ? xstrndup(req->body.data, req->body.len) : NULL;
    job->config = config_retain(x->config);
    job->req = (admin_request){.method = method,
                               .path = job->path,
                               .query = job->query,
                               .body = job->body,
                               .body_len = req->body.len,
                               .prompt_files = x->config->prompts.set};
    job->ticket = store_wait ? exchange_suspend_bounded(x, x->config->admin_timeout_ms, job_expired)
                             : exchange_suspend(x);
    thread_jobs_add(job->jobs);
    return job;
}

/* The job could not be handed over: undo job_new. */
static void job_cancel(exchange *x, admin_job *job)
{
    thread_jobs_done(job->jobs);
    exchange_resume(job->ticket, STAGE_DONE); /* not suspended yet: only gives the ticket back */
    job_release(job);
    job_release(job);
}

/* GET /admin/alerts: the alert rules' state, read from the alert thread's view (metrics_stage.c);
 * POST /admin/breakers/reset: the named targets' breakers closed in the routing state of the
 * config this request holds — the one every new request uses. Both on the loop: a few locked
 * reads or stores, no store I/O. */
static stage_result local_request(exchange *x, int method)
{
    if (method == HTTP_GET) {
        buf out;
        buf_init(&out, 1024 * 1024);
        metrics_stage_alerts_json(&out);
        exchange_respond(x, 200, "application/json", NULL, 0, out.data, out.len);
        buf_free(&out);
        return STAGE_DONE;
    }
    json_t *body = NULL;
    const char *provider = NULL, *model = NULL;
    if (x->http->body.len) {
        json_error_t jerr;
        body = json_loadb(x->http->body.data, x->http->body.len, 0, &jerr);
        json_t *p = body ? json_object_get(body, "provider") : NULL,
               *m = body ? json_object_get(body, "model") : NULL;
        if (!json_is_object(body) || (p && !json_is_string(p)) || (m && !json_is_string(m))) {
            json_decref(body);
            answer_error(x, 400, "invalid_body",
                         "the body is {\"provider\": \"…\", \"model\": \"…\"}, both optional");
            return STAGE_DONE;
        }
        provider = p ? json_string_value(p) : NULL;
        model = m ? json_string_value(m) : NULL;
    }
    size_t n = x->config->health ? routing_state_reset_breakers(x->config->health, provider, model) : 0;
    json_decref(body);
    char reply[64];
    int len = snprintf(reply, sizeof reply, "{\"reset\":%zu}", n);
    exchange_respond(x, 200, "application/json", NULL, 0, reply, (size_t)len);
    return STAGE_DONE;
}

/* /admin/config: GET shows the running config (its secrets masked), on the loop — it is in
 * memory; PUT (the file's new text: the raw body, or {"source": …} as JSON) and POST …/reload
 * ask the server's main thread for the reload SIGHUP would do, and answer with its outcome. */
static stage_result config_request(exchange *x, admin_state *as, int method)
{
    http_request *req = x->http;
    if (method == HTTP_GET) {
        size_t len;
        char *shown = admin_config_redact(x->config->source, x->config->source_len, &len);
        json_t *j = json_pack("{s:s,s:s%}", "path", x->config->path, "source", shown, len);
        free(shown);
        char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!body) {
            answer_error(x, 500, "config_unreadable", "the running config is not UTF-8 text");
            return STAGE_DONE;
        }
        exchange_respond(x, 200, "application/json", NULL, 0, body, strlen(body));
        free(body);
        return STAGE_DONE;
    }
    const char *text = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    if (method == HTTP_PUT) {
        text = req->body.data ? req->body.data : "";
        len = req->body.len;
        const http_header *ct = exchange_header(x, "content-type");
        if (ct && ct->value_len >= 16 && !strncasecmp(ct->value, "application/json", 16)) {
            doc = json_loadb(text, len, 0, NULL);
            const json_t *source = json_object_get(doc, "source");
            if (!json_is_string(source)) {
                json_decref(doc);
                answer_error(x, 400, "invalid_json",
                             "a JSON body is {\"source\": \"the config file's text\"}");
                return STAGE_DONE;
            }
            text = json_string_value(source);
            len = json_string_length(source);
        }
        const char *mask = memmem(text, len, ADMIN_REDACTED_MARK, sizeof ADMIN_REDACTED_MARK - 1);
        if (len > CONFIG_SOURCE_MAX || mask) {
            json_decref(doc);
            answer_error(
                x, mask ? 400 : 413, mask ? "config_redacted" : "body_too_large",
                mask ? "the config still holds \"<redacted>\" where GET /admin/config masked a secret: "
                       "put the secret (or its ${ENV} reference) back"
                     : "a config is at most 4 MiB");
            return STAGE_DONE;
        }
    }
    admin_job *job = job_new(x, method, false);
    bool asked = server_request_reload(pipeline_server(x->pw), text, len, config_job_done, job);
    json_decref(doc);
    if (!asked) {
        job_cancel(x, job);
        answer_error(x, 409, "reload_in_progress", "another config change is being applied; try again");
        return STAGE_DONE;
    }
    as->job = job;
    return STAGE_AGAIN;
}

/* Who asks: the master key (*master), or an enabled, unexpired admin key of the worker's key
 * snapshot (x->key; no store I/O), or — user_key_ok, for POST /v1/feedback — any enabled gateway
 * key. False after answering: 401 as AUTH words it for no key, an unknown, disabled or expired
 * one; 403 for a key that is not an admin key; 429 when the client's address has tried too many
 * wrong keys. */
static bool admin_caller(exchange *x, bool *master, bool user_key_ok)
{
    http_request *req = x->http;
    const char *key;
    size_t len;
    uint8_t digest[STORE_DIGEST_BYTES];
    *master = false;
    bool in_headers = access_key_from_headers(req->headers, req->nheaders, &key, &len);
    if (!in_headers && !x->session_digest) {
        x->rejection = REJECT_AUTH_MISSING;
        auth_refuse(x, 401, "missing_api_key", NULL,
                    "The admin API needs the master key or an admin key (Authorization: Bearer)");
        return false;
    }
    const store_key *k = NULL;
    if (!in_headers) { /* the dashboard's session (ui_stage.c) stands for the key it was opened with */
        memcpy(digest, x->session_digest, sizeof digest);
        *master = access_is_master(&x->config->auth, auth_secret(), digest);
        if (!*master) k = auth_find_key(x, digest);
    } else {
        bool hashed = len <= ACCESS_KEY_MAX;
        if (hashed) {
            access_key_digest(auth_secret(), key, len, digest);
            k = auth_find_key(x, digest);
        }
        if (!k) { /* the master key, or a guess at it: throttled per address */
            auth_master_result m = auth_check_master(x, key, len, hashed ? digest : NULL);
            if (m == AUTH_THROTTLED) return false;
            *master = m == AUTH_IS_MASTER;
        }
    }
    if (*master) {
        x->master_key = true;
        return true;
    }
    if (!k) {
        x->rejection = REJECT_AUTH_INVALID;
        auth_refuse(x, 401, "invalid_api_key", NULL,
                    "The admin API needs the master key or an admin key (Authorization: Bearer)");
        return false;
    }
    x->key = k; /* the access log says who asked */
    access_state state = access_key_state(k, (int64_t)time(NULL));
    if (state != ACCESS_OK) {
        x->rejection = state == ACCESS_DISABLED ? REJECT_AUTH_DISABLED : REJECT_AUTH_EXPIRED;
        auth_refuse(x, 401, state == ACCESS_DISABLED ? "key_disabled" : "key_expired", NULL,
                    state == ACCESS_DISABLED ? "This gateway key is disabled" : "This gateway key expired");
        return false;
    }
    if (!k->admin && !user_key_ok) {
        x->rejection = REJECT_FORBIDDEN_ADMIN;
        auth_refuse(
            x, 403, "admin_key_required", NULL,
            "This gateway key is not an admin key: the admin API needs the master key or an admin key");
        return false;
    }
    return true;
}

static stage_result admin_on_request(exchange *x, void *state)
{
    admin_state *as = state;
    http_request *req = x->http;
    if (!admin_path(req->path)) return STAGE_DECLINED;
    int method = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    if (method == HTTP_GET && !strcmp(req->path, "/admin/openapi.json")) {
        exchange_respond(x, 200, "application/json", NULL, 0, admin_openapi_json, strlen(admin_openapi_json));
        return STAGE_DONE;
    }
    bool path_known;
    if (!admin_route_exists(method, req->path, &path_known)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 path_known ? "method %s is not allowed on %.150s" : "unknown admin path %.150s%s",
                 path_known ? http_method_str(req->method) : req->path, path_known ? req->path : "");
        answer_error(x, path_known ? 405 : 404, path_known ? "method_not_allowed" : "not_found", msg);
        return STAGE_DONE;
    }
    const auth_settings *auth = &x->config->auth;
    if (auth->mode != AUTH_ON || !auth->master_key || !auth_service()) {
        answer_error(x, 403, "admin_disabled",
                     "The admin API needs gateway auth with a master key: add `auth: {master_key: "
                     "\"${AIGW_MASTER_KEY}\"}` to the config (docs/access.md)");
        return STAGE_DONE;
    }
    bool master;
    if (!admin_caller(x, &master, !strcmp(req->path, "/v1/feedback"))) return STAGE_DONE;
    if (!strncmp(req->path, "/admin/config", 13)) {
        if (!master && method != HTTP_GET) {
            x->rejection = REJECT_FORBIDDEN_ADMIN;
            auth_refuse(x, 403, "master_key_required", NULL,
                        "Replacing or reloading the config needs the master key (an admin key may read it)");
            return STAGE_DONE;
        }
        return config_request(x, as, method);
    }
    if (req->body.len > ADMIN_BODY_MAX) {
        answer_error(x, 413, "body_too_large", "admin request bodies are at most 64 KiB");
        return STAGE_DONE;
    }
    if (!strcmp(req->path, "/admin/alerts") || !strcmp(req->path, "/admin/breakers/reset"))
        return local_request(x, method);
    admin_job *job = job_new(x, method, true);
    job->req.admin_key = !master;
    if (x->key) snprintf(job->req.key_id, sizeof job->req.key_id, "%s", x->key->id);
    if (!store_service_submit_then(auth_service(), run_job, run_job_done, job)) {
        job_cancel(x, job);
        answer_error(x, 503, "store_busy", "the store has too much queued work; try again");
        return STAGE_DONE;
    }
    as->job = job;
    return STAGE_AGAIN;
}

static void admin_on_abort(exchange *x, void *state)
{
    admin_state *as = state;
    job_release(as->job);
    as->job = NULL;
}

const stage stage_admin = {
    .name = "admin",
    .phase = PHASE_ACCEPT,
    .state_size = sizeof(admin_state),
    .worker_init = admin_worker_init,
    .worker_close = admin_worker_close,
    .on_request = admin_on_request,
    .on_abort = admin_on_abort,
};

/* The thread has answered: send it. */
static stage_result admin_reply_on_request(exchange *x, void *state)
{
    admin_state *as = exchange_state(x, &stage_admin);
    admin_job *job = as->job;
    if (!job) return STAGE_DECLINED;
    as->job = NULL;
    if (job->reply.status >= 400) {
        /* the message also goes to the log, as every error's does */
        x->error_note = "admin operation refused";
        /* src/admin's only 403: an admin key touching an admin key */
        if (job->reply.status == 403) x->rejection = REJECT_FORBIDDEN_ADMIN;
    }
    exchange_respond(x, job->reply.status, "application/json", NULL, 0, job->reply.body, job->reply.len);
    job_release(job);
    return STAGE_DONE;
}

const stage stage_admin_reply = {
    .name = "admin-reply",
    .phase = PHASE_ACCEPT,
    .on_request = admin_reply_on_request,
};
