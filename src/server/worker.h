/* worker.h — one worker thread: its loop, listener, connections and upstream client.
 *
 * A request lives on one worker from accept to the last byte, so nothing on the request's
 * path takes a lock. Shared, read-only: the config. Per worker: everything else. */
#ifndef AIGW_SERVER_WORKER_H
#define AIGW_SERVER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"

struct client_conn;
struct upstream_client;
struct accesslog_writer;
struct server;

#define WORKER_READ_BUFFER (64 * 1024)

typedef struct worker {
    int id;
    struct server *server;
    const aigw_config *config;
    uv_loop_t loop;
    uv_thread_t thread;
    int listen_fd;
    uv_tcp_t listener;
    uv_async_t wakeup; /* the main thread asks for a drain */
    uv_timer_t drain_timer;
    uv_idle_t ready_idle; /* runs connections holding pipelined requests */
    struct upstream_client *upstream;
    struct route_cache *route_cache; /* header configs' trees (routing.h) */
    struct accesslog_writer *access_log;
    struct client_conn *conns; /* every open connection */
    struct client_conn *ready; /* connections with buffered requests to run */
    int nconns;                /* open here, closing ones included: drain waits for 0 */
    uint64_t server_nonce;
    uint64_t request_counter; /* random per process: request ids differ across restarts */
    uint64_t rng;             /* the routing's random choices (load balancing, jitter) */
    bool draining;
    bool wakeup_closed;                   /* guarded by the server's wakeup_lock */
    char read_buffer[WORKER_READ_BUFFER]; /* shared by all reads on this loop */
} worker;

/* Called by a connection when it has closed, so a draining worker can finish. */
void worker_connection_closed(worker *w);
/* The server-wide connection limit (`max_connections`), shared by the workers: take a slot
 * for a new connection (false at the limit) and give it back when the connection closes. */
bool worker_connection_slot_take(worker *w);
void worker_connection_slot_release(worker *w);

#endif
