/* server.c — workers, listeners, signals and drain; see server.h.
 *
 * Listening sockets are created and bound by the main thread before any worker starts, so a
 * port in use is reported once, clearly, and `listen: HOST:0` resolves to one real port that
 * every worker's socket then shares (printed as "listening on HOST:PORT"). libuv 1.44 has no
 * UV_TCP_REUSEPORT, hence the plain socket() + uv_tcp_open().
 *
 * Reload (SIGHUP) on the main thread, whose loop does nothing else: load the file with the
 * loader main.c gave (blocking file I/O is fine here, never on a worker's loop; the loader
 * carries shared health over), check what cannot change live, then give each worker a reference to the new
 * config in its `next_config` mailbox and wake its `reload` async; the worker's loop swaps its pointer, tells
 * the application (which drops what it built against the old config) and drops its reference to the old
 * config. A mailbox still full from a reload the worker has not taken yet is emptied by the next one (that
 * config was never used). The listening sockets stay: a change of `listen` or `workers` would need new ones,
 * and `access_log` a new writer; those are refused, and a restart applies them. Rejected: a lock (or an
 * RCU-like epoch) around the config on the request path — the reference count is touched twice per request,
 * by the worker that owns it. */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "server/http_conn.h"
#include "server/worker.h"
#include "util/log.h"
#include "util/alloc.h"

struct server {
    const aigw_config *config; /* the main thread's reference to the newest config */
    const http_app *app;
    server_config_loader loader;
    worker *workers;
    int nworkers;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    uv_async_t worker_done; /* a worker's loop has ended */
    atomic_int workers_ready, workers_done;
    pthread_mutex_t wakeup_lock; /* a worker closes its wakeup handle only under it */
    atomic_bool draining;
    atomic_int connections; /* slots taken of max_connections, across workers */
    int signals_seen;
    /* a reload the application asked for (server_request_reload), run on the main loop */
    uv_async_t reload_asked;
    pthread_mutex_t reload_lock;
    bool reload_waiting;
    char *reload_text; /* NULL: read the file again */
    size_t reload_len;
    server_reload_done reload_done;
    void *reload_ud;
};

bool server_is_ready(const server *srv)
{
    return atomic_load(&((server *)srv)->workers_ready) == srv->nworkers &&
           !atomic_load(&((server *)srv)->draining);
}

long server_open_connections(const server *srv)
{
    return atomic_load(&((server *)srv)->connections);
}

/* ---- listening sockets ------------------------------------------------------------------ */

/* Whether something else already listens on addr. SO_REUSEPORT would let our sockets share the
 * port with it silently (the kernel then splits new connections between the two processes, so a
 * second aigw would answer half the traffic with its config), so connect to it first: a listener
 * accepts, a free port refuses. A wildcard address is tried on loopback. Rejected: a plain bind
 * on a throwaway socket — without SO_REUSEADDR a previous run's TIME_WAIT connections make it
 * fail, and with it Linux lets it succeed beside a listener. The address is local, so the
 * connect is answered at once; SO_SNDTIMEO bounds it all the same (runs before the loops). */
static bool address_in_use(const struct addrinfo *addr)
{
    struct sockaddr_storage to;
    if (addr->ai_addrlen > sizeof to) return false;
    memcpy(&to, addr->ai_addr, addr->ai_addrlen);
    if (to.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&to;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY)) in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (to.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&to;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) in6->sin6_addr = in6addr_loopback;
    } else {
        return false;
    }
    int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false; /* the real socket will report the failure */
    struct timeval limit = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    bool busy = connect(fd, (struct sockaddr *)&to, addr->ai_addrlen) == 0;
    close(fd);
    return busy;
}

/* A listening socket on host:*port with SO_REUSEPORT, so that every worker gets its own.
 * probe: first check that no other process listens there (the first socket only: the later
 * ones join it). *port 0 becomes the port the kernel chose. Returns the fd, or -1 with err. */
static int open_listener(const char *host, int *port, bool probe, char *err, size_t errlen)
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
    if (probe && *port != 0 && address_in_use(res)) {
        snprintf(err, errlen, "listen: %s:%d is already in use (another aigw?)", host, *port);
        freeaddrinfo(res);
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
    if (!w->app_open) return; /* already shut down */
    w->app_open = false;
    w->app->worker_close(w);
    pthread_mutex_lock(&w->server->wakeup_lock);
    w->wakeup_closed = true; /* the main thread must not signal a closed handle */
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->reload, NULL);
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

const aigw_config *worker_config_acquire(worker *w)
{
    return config_retain(w->config);
}

void worker_config_release(worker *w, const aigw_config *cfg)
{
    (void)w;
    config_release(cfg);
}

/* The main thread has put a new config in the mailbox: from now on requests begin on it. */
static void on_reload(uv_async_t *async)
{
    worker *w = async->data;
    const aigw_config *next = atomic_exchange(&w->next_config, NULL);
    if (!next) return;              /* a later wake-up for a config already taken */
    w->app->worker_config(w, next); /* what it built against the old config goes */
    const aigw_config *old = w->config;
    w->config = next;
    config_release(old); /* freed here if no request still runs on it */
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
    pthread_setname_np(pthread_self(), "aigw-worker"); /* what top -H and /proc show */
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, w->listen_fd) != 0 ||
        uv_listen((uv_stream_t *)&w->listener, 1024, on_connection) != 0) {
        log_event(LOG_ERROR, "listen_failed", "worker %d cannot listen", w->id);
        exit(1);
    }
    log_thread_is_loop(); /* from here its event lines are queued (the one above is written before exit) */
    atomic_fetch_add(&w->server->workers_ready, 1);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    w->app->worker_free(w); /* every request has ended */
    /* The mailbox is closed (wakeup_closed): what is left in it is ours to drop. */
    config_release(atomic_exchange(&w->next_config, NULL));
    config_release(w->config);
    w->config = NULL;
    atomic_fetch_add(&w->server->workers_done, 1);
    uv_async_send(&w->server->worker_done);
}

/* ---- the main thread ---------------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    server *srv = sig->data;
    if (srv->signals_seen++ == 0)
        log_event(LOG_INFO, "draining", "%s received, draining (up to %u ms)",
                  signum == SIGTERM ? "SIGTERM" : "SIGINT", srv->config->drain_timeout_ms);
    atomic_store(&srv->draining, true);
    pthread_mutex_lock(&srv->wakeup_lock);
    for (int i = 0; i < srv->nworkers; i++)
        if (!srv->workers[i].wakeup_closed) uv_async_send(&srv->workers[i].wakeup);
    pthread_mutex_unlock(&srv->wakeup_lock);
}

/* ---- reload ------------------------------------------------------------------------------ */

/* What only a restart can change: the listening sockets and the access-log writer are made
 * once. False with the reason in why. */
static bool reload_allowed(const aigw_config *old, const aigw_config *fresh, char *why, size_t len)
{
    if (strcmp(old->listen_host, fresh->listen_host) || old->listen_port != fresh->listen_port)
        snprintf(why, len, "'listen' cannot change without a restart (serving %s:%d, the file says %s:%d)",
                 old->listen_host, old->listen_port, fresh->listen_host, fresh->listen_port);
    else if (old->workers != fresh->workers)
        snprintf(why, len, "'workers' cannot change without a restart (running %d, the file says %d)",
                 old->workers, fresh->workers);
    else if (strcmp(old->access_log, fresh->access_log))
        snprintf(why, len, "'access_log' cannot change without a restart (writing to %s, the file says %s)",
                 old->access_log, fresh->access_log);
    else
        return true;
    return false;
}

/* Loads the config file again and hands it to the workers. False when it is refused; msg says
 * what happened either way (and goes to stderr). */
static bool server_reload(server *srv, char *msg, size_t msglen)
{
    char err[8192];
    aigw_config *fresh = srv->loader(srv->config->path, srv->config, err, sizeof err);
    if (!fresh) {
        snprintf(msg, msglen, "reload refused: %.8000s; still serving the previous config", err);
        log_event(LOG_ERROR, "reload_refused", "%s", msg);
        return false;
    }
    char why[512];
    if (!reload_allowed(srv->config, fresh, why, sizeof why)) {
        snprintf(msg, msglen, "reload refused: %s: %s; still serving the previous config", fresh->path, why);
        log_event(LOG_ERROR, "reload_refused", "%s", msg);
        config_release(fresh);
        return false;
    }
    pthread_mutex_lock(&srv->wakeup_lock);
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        if (w->wakeup_closed) continue;
        config_release(atomic_exchange(&w->next_config, config_retain(fresh)));
        uv_async_send(&w->reload);
    }
    pthread_mutex_unlock(&srv->wakeup_lock);
    config_release(srv->config);
    srv->config = fresh;
    if (srv->app->reloaded) srv->app->reloaded(fresh);
    snprintf(msg, msglen, "config reloaded from %s (%zu provider%s, %zu model%s, %zu route%s)", fresh->path,
             fresh->nproviders, fresh->nproviders == 1 ? "" : "s", fresh->nroutes,
             fresh->nroutes == 1 ? "" : "s", fresh->ntrees, fresh->ntrees == 1 ? "" : "s");
    log_event(LOG_INFO, "reloaded", "%s", msg);
    return true;
}

/* Writes len bytes to path through a file beside it and a rename, so a reader sees the old
 * content or the new, never part. Keeps the file's mode. False with the reason in err. */
static bool replace_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[4096];
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 0777) : 0600;
    if (snprintf(tmp, sizeof tmp, "%s.aigw-new", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "the config's path is too long");
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        done += ok ? (size_t)n : 0;
    }
    if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0)) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

/* The file's content (at most CONFIG_SOURCE_MAX bytes) into a malloc'd buffer; NULL when it
 * cannot be read. */
static char *read_config_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = xmalloc(CONFIG_SOURCE_MAX + 1);
    *len = fread(text, 1, CONFIG_SOURCE_MAX + 1, f);
    bool ok = !ferror(f) && *len <= CONFIG_SOURCE_MAX;
    fclose(f);
    if (!ok) {
        free(text);
        return NULL;
    }
    return text;
}

/* The reload server_request_reload asked for, on the main loop. */
static void on_reload_asked(uv_async_t *async)
{
    server *srv = async->data;
    pthread_mutex_lock(&srv->reload_lock);
    bool waiting = srv->reload_waiting;
    char *text = srv->reload_text;
    size_t len = srv->reload_len;
    server_reload_done done = srv->reload_done;
    void *ud = srv->reload_ud;
    srv->reload_text = NULL;
    pthread_mutex_unlock(&srv->reload_lock);
    if (!waiting) return;
    char msg[8192];
    bool ok = false;
    char *previous = NULL;
    size_t previous_len = 0;
    if (atomic_load(&srv->draining)) {
        snprintf(msg, sizeof msg, "the gateway is draining: no reload");
    } else if (text && !(previous = read_config_file(srv->config->path, &previous_len))) {
        snprintf(msg, sizeof msg, "cannot read %s to keep it: %s", srv->config->path, strerror(errno));
    } else if (text && !replace_file(srv->config->path, text, len, msg, sizeof msg)) {
        /* msg says why; the file is as it was */
    } else {
        ok = server_reload(srv, msg, sizeof msg);
        char err[512];
        if (!ok && previous && !replace_file(srv->config->path, previous, previous_len, err, sizeof err))
            log_event(LOG_ERROR, "config_not_restored", "the refused config stays in %s: %s",
                      srv->config->path, err);
    }
    free(previous);
    free(text);
    pthread_mutex_lock(&srv->reload_lock);
    srv->reload_waiting = false;
    pthread_mutex_unlock(&srv->reload_lock);
    done(ud, ok, msg);
}

bool server_request_reload(server *srv, const char *text, size_t len, server_reload_done done, void *ud)
{
    if (text && len > CONFIG_SOURCE_MAX) return false;
    pthread_mutex_lock(&srv->reload_lock);
    bool taken = !srv->reload_waiting;
    if (taken) {
        srv->reload_waiting = true;
        srv->reload_text = text ? memcpy(xmalloc(len ? len : 1), text, len) : NULL;
        srv->reload_len = len;
        srv->reload_done = done;
        srv->reload_ud = ud;
        uv_async_send(&srv->reload_asked);
    }
    pthread_mutex_unlock(&srv->reload_lock);
    return taken;
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    server *srv = sig->data;
    if (atomic_load(&srv->draining)) {
        log_event(LOG_WARN, "reload_ignored", "SIGHUP ignored: draining");
        return;
    }
    char msg[8192];
    server_reload(srv, msg, sizeof msg);
}

static void on_sigusr1(uv_signal_t *sig, int signum)
{
    (void)signum;
    server *srv = sig->data;
    srv->app->reopen_logs();
}

/* The signals the main thread's loop handles; other threads start with them blocked. */
static void handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

static void on_worker_done(uv_async_t *async)
{
    server *srv = async->data;
    if (atomic_load(&srv->workers_done) < srv->nworkers) return;
    /* Closing the last signal handle restores the default action; block the signals first so
     * a late SIGTERM cannot turn this clean exit into a kill. */
    sigset_t stop_signals;
    handled_signals(&stop_signals);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sighup, NULL);
    uv_close((uv_handle_t *)&srv->sigusr1, NULL);
    uv_close((uv_handle_t *)&srv->worker_done, NULL);
    uv_close((uv_handle_t *)&srv->reload_asked, NULL);
}

int server_run(aigw_config *cfg, const http_app *app, server_config_loader loader)
{
    char err[512];
    server srv = {.config = cfg,
                  .app = app,
                  .loader = loader,
                  .nworkers = cfg->workers,
                  .wakeup_lock = PTHREAD_MUTEX_INITIALIZER,
                  .reload_lock = PTHREAD_MUTEX_INITIALIZER};
    /* Threads start with the handled signals blocked, so only the main thread's loop sees them. */
    sigset_t stop_signals, old_mask;
    handled_signals(&stop_signals);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    if (!app->start(cfg, err, sizeof err)) {
        log_event(LOG_ERROR, "start_failed", "%s", err);
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        config_release(cfg);
        return 1;
    }
    srv.workers = xcalloc((size_t)srv.nworkers, sizeof *srv.workers);
    uv_loop_init(&srv.loop);
    uv_async_init(&srv.loop, &srv.worker_done, on_worker_done);
    srv.worker_done.data = &srv;
    uv_async_init(&srv.loop, &srv.reload_asked, on_reload_asked);
    srv.reload_asked.data = &srv;
    int port = cfg->listen_port;
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
        nonce = (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
    for (int i = 0; i < srv.nworkers; i++) {
        worker *w = &srv.workers[i];
        w->listen_fd = open_listener(cfg->listen_host, &port, i == 0, err, sizeof err);
        if (w->listen_fd < 0) {
            log_event(LOG_ERROR, "start_failed", "%s", err);
            for (int j = 0; j < i; j++)
                close(srv.workers[j].listen_fd);
            pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
            free(srv.workers);
            app->stop();
            uv_close((uv_handle_t *)&srv.worker_done, NULL);
            uv_close((uv_handle_t *)&srv.reload_asked, NULL);
            uv_run(&srv.loop, UV_RUN_DEFAULT);
            uv_loop_close(&srv.loop);
            config_release(cfg);
            return 1;
        }
    }
    for (int i = 0; i < srv.nworkers; i++) {
        worker *w = &srv.workers[i];
        w->id = i;
        w->server = &srv;
        w->config = config_retain(cfg);
        w->server_nonce = nonce & 0xffffffffffffULL;
        w->rng = (nonce ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL)) | 1;
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
        uv_async_init(&w->loop, &w->reload, on_reload);
        w->reload.data = w;
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_idle_init(&w->loop, &w->ready_idle);
        w->ready_idle.data = w;
        w->app = app;
        w->app_state = app->worker_init(w);
        w->app_open = true;
        if (i == 0) log_writer_start();
        uv_thread_create(&w->thread, worker_main, w);
    }

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    uv_signal_init(&srv.loop, &srv.sigterm);
    uv_signal_init(&srv.loop, &srv.sigint);
    uv_signal_init(&srv.loop, &srv.sighup);
    uv_signal_init(&srv.loop, &srv.sigusr1);
    srv.sigterm.data = srv.sigint.data = srv.sighup.data = srv.sigusr1.data = &srv;
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);
    uv_signal_start(&srv.sighup, on_sighup, SIGHUP);
    uv_signal_start(&srv.sigusr1, on_sigusr1, SIGUSR1);

    for (int spins = 0; atomic_load(&srv.workers_ready) < srv.nworkers && spins < 5000; spins++)
        usleep(1000);
    log_event(LOG_INFO, "listening", "listening on %s:%d (%d worker%s)", cfg->listen_host, port, srv.nworkers,
              srv.nworkers == 1 ? "" : "s");

    /* Runs until every worker's loop has ended (on_worker_done closes the handles). */
    uv_run(&srv.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv.nworkers; i++)
        uv_thread_join(&srv.workers[i].thread);
    log_writer_stop();
    uv_loop_close(&srv.loop);
    free(srv.workers);
    app->stop();
    config_release(srv.config);
    log_event(LOG_INFO, "drained", "drained, exiting");
    return 0;
}
