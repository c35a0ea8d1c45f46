/* server.h — `aigw serve`: worker threads, listeners, signals and graceful drain, serving an
 * application given as a table of callbacks.
 *
 * N workers (config `workers`, default: the number of cores), each with its own libuv loop and
 * its own SO_REUSEPORT listening socket (the kernel spreads connections across them). The
 * main thread only waits for signals. SIGTERM/SIGINT drain: listeners close, idle connections
 * close, requests and streams in flight finish (their responses say Connection: close), and
 * after `timeouts.drain` whatever is left is closed; then the process exits 0. A second signal
 * closes everything at once.
 *
 * The server knows HTTP, not what a request means: that is the application's (h2o's
 * handler/generator split). main.c gives the pipeline's table (pipeline.h) to server_run; the
 * server calls it and never includes it, so the dependency points one way.
 *
 * SIGHUP reloads the config: the main thread loads and validates the file again with the
 * loader it was given (off the workers' loops), refuses a file that does not load, or that
 * changes what only a restart can (`listen`, `workers`, `access_log`) — one line on stderr,
 * the old config keeps serving — and otherwise carries shared health over for unchanged
 * targets and hands the new config to every worker, whose loop swaps it in: new requests
 * use it, requests in flight finish on the one they began with. The admin API asks for the
 * same reload, or for one of a new file content, through server_request_reload. SIGUSR1 reopens
 * the access log file (rotation). Both are ignored while draining. */
#ifndef AIGW_SERVER_SERVER_H
#define AIGW_SERVER_SERVER_H

#include <stdbool.h>

#include "config/config.h"
#include "server/request.h"

typedef struct server server;
struct worker;

/* What the server calls, all on the worker's loop thread. */
typedef struct http_app {
    /* Process-wide set-up before the workers start (false: cannot serve; message in err), and
     * tear-down after they have stopped. */
    bool (*start)(const aigw_config *cfg, char *err, size_t errlen);
    void (*stop)(void);
    /* Per worker: its state (worker->app_state), made before the loop runs; close when the
     * worker shuts down (every connection is gone; close handles on the loop), free after its
     * loop has ended. */
    void *(*worker_init)(struct worker *w);
    void (*worker_close)(struct worker *w);
    void (*worker_free)(struct worker *w);
    /* Per request object (one per connection, reused across keep-alive): req->app is the
     * application's; reset after each request; free when the connection closes. */
    void (*request_init)(http_request *req);
    void (*request_reset)(http_request *req);
    void (*request_free)(http_request *req);
    /* A complete request: answer it now or later with http_respond / http_stream_*. */
    void (*on_request)(http_request *req);
    /* The server refuses the request (malformed, too large, too slow, at the connection
     * limit): the application answers it with status and message in its API's shape. */
    void (*on_error)(http_request *req, int status, const char *code, const char *message);
    /* The client's output fell below the low-water mark: a paused stream may go on. */
    void (*on_writable)(http_request *req);
    /* The client went away before the response was done: stop at once. on_done follows; the
     * request must not be answered. */
    void (*on_abort)(http_request *req);
    /* The response is complete (or abandoned): record it. The request is reset after this. */
    void (*on_done)(http_request *req);
    /* A reload: the worker's config becomes next for the requests that begin from now on
     * (drop what was built against the old one). On the worker's loop. */
    void (*worker_config)(struct worker *w, const aigw_config *next);
    /* SIGUSR1: files the application writes (the access log) are opened again. Main thread. */
    void (*reopen_logs)(void);
    /* A reload was accepted: fresh is the config from now on (the workers swap it in on their
     * loops). Main thread; may be NULL. */
    void (*reloaded)(const aigw_config *fresh);
} http_app;

/* What loads a config file for a reload: the same sequence as at startup, with what carries
 * over from the previous config (shared health). Returns a config holding one reference, or
 * NULL with "file:line: message" in err. Runs on the main thread. */
typedef aigw_config *(*server_config_loader)(const char *path, const aigw_config *previous, char *err,
                                             size_t errlen);

/* Runs the gateway until drained; returns the process exit code. Takes over the caller's
 * reference to cfg (released before returning); reloads read cfg->path again with loader. */
int server_run(aigw_config *cfg, const http_app *app, server_config_loader loader);

/* For /readyz: every worker is serving and the server is not draining. */
bool server_is_ready(const server *srv);
/* Client connections open now, across workers (for metrics). */
long server_open_connections(const server *srv);

/* A reload asked for by the application (the admin API) rather than by SIGHUP, from any thread.
 * text: NULL to read the config file again as SIGHUP does; else the file's new content (at most
 * CONFIG_SOURCE_MAX bytes), written in its place first and taken back — the previous content
 * written again — when it does not load or changes what needs a restart. done runs once, on the
 * main thread, with the outcome and a message: how many providers, models and routes now serve,
 * or every mistake found. False, with done never called, when another such reload is still
 * waiting (one at a time). While the server drains, done says so and nothing is written. */
typedef void (*server_reload_done)(void *ud, bool ok, const char *message);
bool server_request_reload(server *srv, const char *text, size_t len, server_reload_done done, void *ud);

#endif
