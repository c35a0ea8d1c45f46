/* server.c — workers, listeners, signals and drain; see server.h.
 *
 * Listening sockets are created and bound by the main thread before any worker starts, so a
 * port in use is reported once, clearly, and `listen: HOST:0` resolves to one real port that
 * every worker's socket then shares (printed as "listening on HOST:PORT"). libuv 1.44 has no
 * UV_TCP_REUSEPORT, hence the plain socket() + uv_tcp_open(). */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "observe/accesslog.h"
#include "routing/routing.h"
#include "server/http_conn.h"
#include "server/worker.h"
#include "upstream/upstream.h"
#include "util/alloc.h"

struct server {
    const aigw_config *config;
    worker *workers;
    int nworkers;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_async_t worker_done; /* a worker's loop has ended */
    accesslog *access_log;
    atomic_int workers_ready, workers_done;
    pthread_mutex_t wakeup_lock; /* a worker closes its wakeup handle only under it */
    atomic_bool draining;
    atomic_int connections; /* slots taken of max_connections, across workers */
    int signals_seen;
};

bool server_is_ready(const server *srv)
{
    return atomic_load(&((server *)srv)->workers_ready) == srv->nworkers &&
           !atomic_load(&((server *)srv)->draining);
}

/* ---- listening sockets ------------------------------------------------------------------ */

static int open_listener(const char *host, int *port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", *port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen: cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "listen: cannot listen on %s:%d: %s", host, *port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    if (*port == 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return fd;
}

/* ---- a worker ----------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    worker *w = listener->data;
    if (status < 0 || w->draining) return;
    http_conn_accept(w, listener);
}

static void worker_shutdown(worker *w)
{
    if (!w->upstream) return; /* already shut down */
    upstream_client_close(w->upstream);
    w->upstream = NULL;
    accesslog_writer_close(w->access_log);
    pthread_mutex_lock(&w->server->wakeup_lock);
    w->wakeup_closed = true; /* the main thread must not signal a closed handle */
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    pthread_mutex_unlock(&w->server->wakeup_lock);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->ready_idle, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->listener)) uv_close((uv_handle_t *)&w->listener, NULL);
}

void worker_connection_closed(worker *w)
{
    w->nconns--;
    if (w->draining && w->nconns == 0) worker_shutdown(w);
}

bool worker_connection_slot_take(worker *w)
{
    atomic_int *n = &w->server->connections;
    int seen = atomic_load_explicit(n, memory_order_relaxed);
    do
        if (seen >= w->config->max_connections) return false;
    while (!atomic_compare_exchange_weak_explicit(n, &seen, seen + 1, memory_order_relaxed,
                                                  memory_order_relaxed));
    return true;
}

void worker_connection_slot_release(worker *w)
{
    atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    worker *w = timer->data;
    http_conn_close_all(w);
}

static void on_wakeup(uv_async_t *async)
{
    worker *w = async->data;
    if (w->draining) { /* a second signal: stop waiting */
        http_conn_close_all(w);
        return;
    }
    w->draining = true;
    uv_close((uv_handle_t *)&w->listener, NULL);
    http_conn_drain(w);
    if (w->nconns == 0)
        worker_shutdown(w);
    else
        uv_timer_start(&w->drain_timer, on_drain_timeout, w->config->drain_timeout_ms, 0);
}

static void worker_main(void *arg)
{
    worker *w = arg;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, w->listen_fd) != 0 ||
        uv_listen((uv_stream_t *)&w->listener, 1024, on_connection) != 0) {
        fprintf(stderr, "aigw: worker %d cannot listen\n", w->id);
        exit(1);
    }
    atomic_fetch_add(&w->server->workers_ready, 1);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    route_cache_free(w->route_cache); /* every request has ended: nothing holds an entry */
    w->route_cache = NULL;
    atomic_fetch_add(&w->server->workers_done, 1);
    uv_async_send(&w->server->worker_done);
}

/* ---- the main thread ---------------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    server *srv = sig->data;
    if (srv->signals_seen++ == 0)
        fprintf(stderr, "aigw: %s received, draining (up to %u ms)\n",
                signum == SIGTERM ? "SIGTERM" : "SIGINT", srv->config->drain_timeout_ms);
    atomic_store(&srv->draining, true);
    pthread_mutex_lock(&srv->wakeup_lock);
    for (int i = 0; i < srv->nworkers; i++)
        if (!srv->workers[i].wakeup_closed) uv_async_send(&srv->workers[i].wakeup);
    pthread_mutex_unlock(&srv->wakeup_lock);
}

static void on_worker_done(uv_async_t *async)
{
    server *srv = async->data;
    if (atomic_load(&srv->workers_done) < srv->nworkers) return;
    /* Closing the last signal handle restores the default action; block the signals first so
     * a late SIGTERM cannot turn this clean exit into a kill. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->worker_done, NULL);
}

int server_run(const aigw_config *cfg)
{
    char err[512];
    server srv = {.config = cfg, .nworkers = cfg->workers, .wakeup_lock = PTHREAD_MUTEX_INITIALIZER};
    /* Threads start with SIGTERM/SIGINT blocked, so only the main thread's loop handles them. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    srv.access_log = accesslog_open(cfg->access_log, err, sizeof err);
    if (!srv.access_log) {
        fprintf(stderr, "aigw: %s\n", err);
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        return 1;
    }
    srv.workers = xcalloc((size_t)srv.nworkers, sizeof *srv.workers);
    uv_loop_init(&srv.loop);
    uv_async_init(&srv.loop, &srv.worker_done, on_worker_done);
    srv.worker_done.data = &srv;
    int port = cfg->listen_port;
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
        nonce = (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
    for (int i = 0; i < srv.nworkers; i++) {
        worker *w = &srv.workers[i];
        w->listen_fd = open_listener(cfg->listen_host, &port, err, sizeof err);
        if (w->listen_fd < 0) {
            fprintf(stderr, "aigw: %s\n", err);
            for (int j = 0; j < i; j++)
                close(srv.workers[j].listen_fd);
            pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
            free(srv.workers);
            accesslog_close(srv.access_log);
            uv_close((uv_handle_t *)&srv.worker_done, NULL);
            uv_run(&srv.loop, UV_RUN_DEFAULT);
            uv_loop_close(&srv.loop);
            return 1;
        }
    }
    for (int i = 0; i < srv.nworkers; i++) {
        worker *w = &srv.workers[i];
        w->id = i;
        w->server = &srv;
        w->config = cfg;
        w->server_nonce = nonce & 0xffffffffffffULL;
        w->rng = (nonce ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL)) | 1;
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_idle_init(&w->loop, &w->ready_idle);
        w->ready_idle.data = w;
        w->upstream = upstream_client_new(&w->loop);
        w->route_cache = route_cache_new();
        w->access_log = accesslog_writer_new(srv.access_log, &w->loop);
        uv_thread_create(&w->thread, worker_main, w);
    }

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    uv_signal_init(&srv.loop, &srv.sigterm);
    uv_signal_init(&srv.loop, &srv.sigint);
    srv.sigterm.data = srv.sigint.data = &srv;
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);

    for (int spins = 0; atomic_load(&srv.workers_ready) < srv.nworkers && spins < 5000; spins++)
        usleep(1000);
    fprintf(stderr, "aigw: listening on %s:%d (%d worker%s)\n", cfg->listen_host, port, srv.nworkers,
            srv.nworkers == 1 ? "" : "s");

    /* Runs until every worker's loop has ended (on_worker_done closes the handles). */
    uv_run(&srv.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv.nworkers; i++)
        uv_thread_join(&srv.workers[i].thread);
    uv_loop_close(&srv.loop);
    free(srv.workers);
    accesslog_close(srv.access_log);
    fprintf(stderr, "aigw: drained, exiting\n");
    return 0;
}
