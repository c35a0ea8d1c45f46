/* worker.h — one worker thread: its loop, listener, connections and the application's state.
 *
 * A request lives on one worker from accept to the last byte, so nothing on the request's
 * path takes a lock. Shared, read-only: the config. Per worker: everything else.
 *
 * The config is reference-counted (config_retain/config_release): the worker holds one
 * reference to its current config, each request one to the config it began on. A reload
 * hands the worker a new config through `next_config` and the `reload` async; the worker's
 * own loop swaps `config` (and resets what it built against the old one) and drops its old
 * reference — the old config is freed when its last request is done. */
#ifndef AIGW_SERVER_WORKER_H
#define AIGW_SERVER_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"

struct client_conn;
struct server;
struct http_app;

#define WORKER_READ_BUFFER (64 * 1024)

typedef struct worker {
    int id;
    struct server *server;
    const aigw_config *config; /* one reference held; swapped by the worker's own loop only */
    uv_loop_t loop;
    uv_thread_t thread;
    int listen_fd;
    uv_tcp_t listener;
    uv_async_t wakeup;                        /* the main thread asks for a drain */
    uv_async_t reload;                        /* … for a config swap: next_config */
    _Atomic(const aigw_config *) next_config; /* a reference from the main thread, or NULL */
    uv_timer_t drain_timer;
    uv_idle_t ready_idle;       /* runs connections holding pipelined requests */
    const struct http_app *app; /* what the server serves (server.h) */
    void *app_state;            /* its per-worker state (the pipeline's stages') */
    bool app_open;              /* app_state made and not yet closed */
    struct client_conn *conns;  /* every open connection */
    struct client_conn *ready;  /* connections with buffered requests to run */
    int nconns;                 /* open here, closing ones included: drain waits for 0 */
    uint64_t server_nonce;
    uint64_t request_counter; /* random per process: request ids differ across restarts */
    uint64_t rng;             /* the routing's random choices (load balancing, jitter) */
    bool draining;
    bool wakeup_closed;                   /* wakeup and reload; guarded by the server's wakeup_lock */
    char read_buffer[WORKER_READ_BUFFER]; /* shared by all reads on this loop */
} worker;

/* Called by a connection when it has closed, so a draining worker can finish. */
void worker_connection_closed(worker *w);
/* The server-wide connection limit (`max_connections`), shared by the workers: take a slot
 * for a new connection (false at the limit) and give it back when the connection closes. */
bool worker_connection_slot_take(worker *w);
void worker_connection_slot_release(worker *w);
/* A request begins: a reference to the worker's current config, which the request keeps
 * until worker_config_release, whatever reloads happen meanwhile. On the worker's loop. */
const aigw_config *worker_config_acquire(worker *w);
/* The request is done with cfg (NULL: nothing). cfg may be freed here, if a reload replaced
 * it and this was its last request. */
void worker_config_release(worker *w, const aigw_config *cfg);

#endif
