/* upstream.c — libcurl's multi_socket API on a libuv loop; see upstream.h for the contract.
 *
 * The glue: one uv_poll_t per curl socket, alive from curl opening the socket to curl closing
 * it (CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION), and one uv_timer_t for curl's
 * timeout; both call curl_multi_socket_action() and then collect finished transfers.
 * Rejected: curl's libuv example, which creates and closes a poll handle whenever curl adds or
 * removes a socket — curl does that around every transfer on a pooled connection, and libuv
 * re-registers a poll handle with the kernel on every start: 6 epoll_ctl, an ioctl and a malloc
 * per proxied request, measured. Also rejected after measuring: an epoll set of our own behind
 * one uv_poll_t (no epoll_ctl, but a second epoll_wait per wake-up). Transfers are never
 * removed from the multi handle inside a curl callback: a cancel from within one is deferred
 * until curl_multi_socket_action() has returned (`in_curl`).
 *
 * Easy handles are kept in a small free list and reused with their options still set,
 * saving their setup on every request; connections and DNS live in the multi handle. */
#include "upstream/upstream.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "upstream/h1.h"
#include "util/alloc.h"

#define CALL_POOL_MAX 64
#define HEAD_LINES_MAX 64
#define HEAD_BYTES_MAX 8192 /* response header lines kept for on_head; more are dropped */

struct upstream_client {
    uv_loop_t *loop;
    CURLM *multi;
    h1_client *h1; /* plain http:// origins; NULL: curl takes every URL */
    uv_timer_t timer;
    uv_check_t kick;           /* starts new transfers at the end of this loop turn */
    upstream_call *free_calls; /* finished calls kept with their easy handle and timer */
    int nfree_calls;
    upstream_call *calls; /* every call in flight, for shutdown */
    upstream_call *deferred_cancels;
    upstream_call *to_flush;       /* calls that got data in the current round */
    struct socket_watch **watches; /* by fd: the watch of each open curl socket */
    size_t nwatches;
    int in_curl;    /* depth of curl_multi_socket_action on the stack */
    int aborting;   /* inside abort_transfer: the sockets curl gives up are not kept */
    int calls_open; /* call objects alive (in flight, pooled, or closing) */
    bool closing, timer_closed, kick_closed;
    bool env_proxy; /* a proxy is set in the environment: let curl read it */
};

struct upstream_call {
    upstream__kind kind; /* UPSTREAM__CURL; h1.c's calls start with UPSTREAM__H1 */
    upstream_client *client;
    CURL *easy;
    upstream_callbacks cb;
    void *ud;
    upstream_call *prev, *next; /* client->calls */
    upstream_call *next_deferred;
    bool deferred; /* in deferred_cancels */
    upstream_call *next_flush;
    bool flush_queued;
    uv_timer_t timer;             /* first byte, then idle gap; see arm_timer */
    uint64_t deadline, timer_due; /* loop-time ms; 0 = none */
    uint32_t first_byte_ms, idle_ms;
    int status;
    bool head_done, paused, pause_wanted, cancelled;
    bool data_aborted;
    char errbuf[CURL_ERROR_SIZE];
    const char *head_lines[HEAD_LINES_MAX]; /* point into head_bytes */
    size_t nhead_lines, head_len;
    char head_bytes[HEAD_BYTES_MAX];
};

/* One watched curl socket. It lives from curl opening the socket to curl closing it (our
 * open/close socket hooks), across every transfer that reuses the connection. */
typedef struct socket_watch {
    uv_poll_t poll;
    upstream_client *client;
    int fd;
    int events; /* UV_READABLE | UV_WRITABLE currently polled; 0 when stopped */
    bool idle;  /* no transfer uses it: curl told us CURL_POLL_REMOVE */
    bool read;  /* curl has waited to read on it: connected, a transfer got as far as a reply */
} socket_watch;

static void process_finished(upstream_client *client);
static void run_deferred(upstream_client *client);
static void call_free(upstream_call *call);

/* ---- loop glue ------------------------------------------------------------------------ */

/* Lets each call that received data in the last round write it out at once. */
static void resume_transfer(upstream_call *call);

/* Lets each call that received data in the last round write it out at once. on_flush's answer
 * is the pause: a round that on_data ended early (its gathered output was full) goes on at once
 * when the consumer is not behind, so a round's gathered output stays bounded without
 * stalling a fast client. */
static void run_flushes(upstream_client *client)
{
    while (client->to_flush) {
        upstream_call *call = client->to_flush;
        client->to_flush = call->next_flush;
        call->flush_queued = false;
        if (call->cancelled || !call->cb.on_flush) continue;
        bool behind = call->cb.on_flush(call->ud);
        if (call->cancelled) continue;
        call->pause_wanted = behind;
        if (!behind && call->paused) resume_transfer(call); /* may queue the call again */
    }
}

static void socket_action(upstream_client *client, curl_socket_t fd, int events)
{
    int running;
    client->in_curl++;
    curl_multi_socket_action(client->multi, fd, events, &running);
    client->in_curl--;
    run_flushes(client);
    process_finished(client);
    run_deferred(client);
}

static socket_watch **watch_slot(upstream_client *client, int fd)
{
    if ((size_t)fd >= client->nwatches) {
        size_t n = client->nwatches ? client->nwatches : 64;
        while (n <= (size_t)fd)
            n *= 2;
        client->watches = xrealloc(client->watches, n * sizeof *client->watches);
        memset(client->watches + client->nwatches, 0, (n - client->nwatches) * sizeof *client->watches);
        client->nwatches = n;
    }
    return &client->watches[fd];
}

static void watch_set(socket_watch *w, int events);

static void on_socket_ready(uv_poll_t *handle, int status, int events)
{
    socket_watch *w = handle->data;
    if (w->idle) {
        /* A pooled connection became readable with no transfer on it: the server closed it
         * (or sent garbage). Stop watching; curl finds it dead when it next tries to reuse it. */
        watch_set(w, 0);
        return;
    }
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    socket_action(w->client, w->fd, flags);
}

/* libuv re-registers a poll handle with the kernel on every uv_poll_start, so it is called
 * only when the wanted events change. */
static void watch_set(socket_watch *w, int events)
{
    if (events == w->events) return;
    w->events = events;
    if (events)
        uv_poll_start(&w->poll, events, on_socket_ready);
    else
        uv_poll_stop(&w->poll);
}

static void on_watch_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void watch_close(upstream_client *client, int fd)
{
    socket_watch **slot = watch_slot(client, fd);
    if (!*slot) return;
    /* uv_close removes the fd from the loop's epoll set at once, so the fd may be closed
     * right after; the memory goes in the close callback. */
    uv_close((uv_handle_t *)&(*slot)->poll, on_watch_closed);
    *slot = NULL;
}

static void on_curl_timer(uv_timer_t *timer)
{
    socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* curl asks for a 0 ms timeout after a transfer is added; a timer would run it only on the
 * next loop turn, after another epoll_wait. A check handle runs it at the end of this turn,
 * once the callbacks that added transfers have returned. */
static void on_kick(uv_check_t *check)
{
    uv_check_stop(check);
    socket_action(check->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    upstream_client *client = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&client->timer);
    else
        uv_timer_start(&client->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* curl opens and closes its sockets through these hooks, so a watch never outlives its socket
 * and a reused fd number never inherits a closed socket's watch. */
static curl_socket_t on_curl_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    upstream_client *client = clientp;
    (void)purpose;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd != CURL_SOCKET_BAD) watch_close(client, fd); /* defensive: nothing should be there */
    return fd;
}

static int on_curl_close_socket(void *clientp, curl_socket_t fd)
{
    watch_close(clientp, fd);
    return close(fd);
}

/* curl tells which sockets it wants watched. It says CURL_POLL_REMOVE for a pooled
 * connection's socket after every transfer and asks again on reuse; keeping the watch (reading
 * only, marked idle) makes the common reuse cost no system call at all. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    upstream_client *client = userp;
    (void)easy;
    (void)socketp;
    socket_watch **slot = watch_slot(client, fd);
    socket_watch *w = *slot;
    if (what == CURL_POLL_REMOVE) {
        if (!w) return 0;
        /* A connect that fails or times out inside curl closes its socket without the close
         * hook (libcurl 7.88 closes a connection still being opened directly), and only then
         * says CURL_POLL_REMOVE: re-arming that watch would make libuv abort on EBADF. Such a
         * socket was only ever watched for writing (the connect); a pooled one has been read
         * from. (An fcntl per transfer would tell too, at a system call per request.) */
        if (client->aborting || !w->read) {
            watch_close(client, fd);
            return 0;
        }
        w->idle = true;
        watch_set(w, UV_READABLE);
        return 0;
    }
    if (!w) {
        w = xcalloc(1, sizeof *w);
        w->client = client;
        w->fd = fd;
        if (uv_poll_init_socket(client->loop, &w->poll, fd) != 0) {
            free(w);
            return -1;
        }
        w->poll.data = w;
        *slot = w;
    }
    w->idle = false;
    int events = 0;
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
        w->read = true;
    }
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    watch_set(w, events);
    return 0;
}

/* Removes a transfer that has not finished (cancelled, timed out). curl may close such a
 * transfer's socket without the close hook (libcurl 7.88 does for a connection still being
 * opened) and only then say CURL_POLL_REMOVE: keeping that watch for reuse would re-arm a
 * closed descriptor, which libuv answers with abort(). So here every socket curl lets go of
 * loses its watch. */
static void abort_transfer(upstream_client *client, CURL *easy)
{
    client->aborting++;
    curl_multi_remove_handle(client->multi, easy);
    client->aborting--;
}

/* ---- per-call timers ------------------------------------------------------------------ */

static void on_call_timeout(uv_timer_t *timer)
{
    upstream_call *call = timer->data;
    uint64_t now = uv_now(call->client->loop);
    call->timer_due = 0;
    if (!call->deadline) return;
    if (now < call->deadline) { /* the deadline moved while the timer ran: wait the rest */
        call->timer_due = call->deadline;
        uv_timer_start(&call->timer, on_call_timeout, call->deadline - now, 0);
        return;
    }
    bool idle = call->head_done;
    /* Removing the handle here is safe: we are in a timer callback, not inside curl. */
    upstream_client *client = call->client;
    abort_transfer(client, call->easy);
    upstream_callbacks cb = call->cb;
    void *ud = call->ud;
    char msg[96];
    snprintf(msg, sizeof msg, "upstream sent nothing for %u ms (%s timeout)",
             idle ? call->idle_ms : call->first_byte_ms, idle ? "idle" : "first byte");
    call_free(call);
    cb.on_done(ud, idle ? UPSTREAM_IDLE_TIMEOUT : UPSTREAM_FIRST_BYTE_TIMEOUT, msg);
}

/* Moves the call's deadline to now + ms. The uv timer is restarted only when the new
 * deadline is earlier than the one it waits for; a later deadline is picked up when it fires.
 * Streams move their deadline on every chunk, so this saves a timer-heap update per chunk. */
static void arm_timer(upstream_call *call, uint32_t ms)
{
    if (!ms) {
        call->deadline = 0;
        return;
    }
    uint64_t now = uv_now(call->client->loop);
    call->deadline = now + ms;
    if (call->timer_due && call->timer_due <= call->deadline) return;
    call->timer_due = call->deadline;
    uv_timer_start(&call->timer, on_call_timeout, ms, 0);
}

static void disarm_timer(upstream_call *call)
{
    call->deadline = 0; /* the timer may still fire; it finds no deadline and does nothing */
}

/* ---- curl callbacks ------------------------------------------------------------------- */

/* A header line holding a bare CR (curl splits lines at LF only) could end a line where its
 * reader does not expect it: it is not handed over at all. Other control bytes are left to the
 * readers that pass values on (the pipeline sends a client only visible ASCII); a vectorised
 * memchr keeps this off the per-request cost (a byte-by-byte check was ~900 instructions). */
static bool header_line_clean(const char *line, size_t len)
{
    return !memchr(line, '\r', len);
}

static size_t on_curl_header(char *data, size_t size, size_t nitems, void *userp)
{
    upstream_call *call = userp;
    size_t len = size * nitems;
    if (call->cancelled) return 0;
    if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
        /* A new status line: an interim 1xx block may precede the final one. */
        call->nhead_lines = call->head_len = 0;
        const char *sp = memchr(data, ' ', len);
        call->status = 0;
        if (sp && (size_t)(sp - data) + 4 <= len)
            for (int i = 1; i <= 3 && sp[i] >= '0' && sp[i] <= '9'; i++)
                call->status = call->status * 10 + (sp[i] - '0');
        return len;
    }
    if (len <= 2) { /* the blank line ending a header block */
        if (call->status >= 100 && call->status < 200) return len;
        call->head_done = true;
        arm_timer(call, call->idle_ms);
        bool ok = call->cb.on_head(call->ud, call->status, call->head_lines, call->nhead_lines);
        return ok && !call->cancelled ? len : 0;
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (call->nhead_lines < HEAD_LINES_MAX && len + 1 <= HEAD_BYTES_MAX - call->head_len &&
        header_line_clean(data, len)) {
        char *line = call->head_bytes + call->head_len;
        memcpy(line, data, len);
        line[len] = '\0';
        call->head_len += len + 1;
        call->head_lines[call->nhead_lines++] = line;
    }
    return size * nitems;
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userp)
{
    upstream_call *call = userp;
    size_t len = size * nmemb;
    if (call->cancelled) return 0;
    if (call->pause_wanted) {
        /* Backpressure: curl keeps these bytes and hands them back after the resume. */
        call->paused = true;
        disarm_timer(call);
        return CURL_WRITEFUNC_PAUSE;
    }
    arm_timer(call, call->idle_ms);
    int r = call->cb.on_data(call->ud, data, len);
    if (call->cancelled) return 0;
    if (call->cb.on_flush && !call->flush_queued) {
        call->flush_queued = true;
        call->next_flush = call->client->to_flush;
        call->client->to_flush = call;
    }
    if (r == UPSTREAM_DATA_ABORT) {
        call->data_aborted = true;
        return 0;
    }
    if (r == UPSTREAM_DATA_PAUSE) call->pause_wanted = true;
    return len;
}

/* ---- results ------------------------------------------------------------------------- */

static upstream_result map_curl_result(upstream_call *call, CURLcode code)
{
    if (code == CURLE_OK) return UPSTREAM_OK;
    if (call->data_aborted) return UPSTREAM_TOO_LARGE;
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE: return UPSTREAM_CONNECT_FAILED;
    /* curl's own timeouts are the connect one and the transfer's total (CURLOPT_TIMEOUT_MS);
     * first byte and idle gaps are ours (on_call_timeout) */
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t pretransfer = 0; /* the request was about to go out: connected */
        curl_easy_getinfo(call->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
        return call->status || pretransfer > 0 ? UPSTREAM_TOTAL_TIMEOUT : UPSTREAM_CONNECT_TIMEOUT;
    }
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY: return UPSTREAM_BROKEN;
    default: return UPSTREAM_FAILED;
    }
}

static void process_finished(upstream_client *client)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(client->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        upstream_call *call;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        CURLcode code = msg->data.result;
        curl_multi_remove_handle(client->multi, call->easy);
        if (call->cancelled) {
            /* Cancelled from inside a curl callback: it waits in deferred_cancels, which frees it
             * (freeing it here too would free it twice). */
            if (!call->deferred) call_free(call);
            continue;
        }
        upstream_result result = map_curl_result(call, code);
        char message[CURL_ERROR_SIZE + 64];
        if (result == UPSTREAM_OK)
            message[0] = '\0';
        else
            snprintf(message, sizeof message, "%s",
                     call->errbuf[0] ? call->errbuf : curl_easy_strerror(code));
        upstream_callbacks cb = call->cb;
        void *ud = call->ud;
        call_free(call);
        cb.on_done(ud, result, message);
    }
}

static void run_deferred(upstream_client *client)
{
    if (client->in_curl) return;
    while (client->deferred_cancels) {
        upstream_call *call = client->deferred_cancels;
        client->deferred_cancels = call->next_deferred;
        abort_transfer(client, call->easy);
        call_free(call);
    }
}

/* ---- calls --------------------------------------------------------------------------- */

static void client_free_if_done(upstream_client *client);

static void on_call_timer_closed(uv_handle_t *handle)
{
    upstream_call *call = handle->data;
    upstream_client *client = call->client;
    curl_easy_cleanup(call->easy);
    free(call);
    client->calls_open--;
    client_free_if_done(client);
}

static void call_destroy(upstream_call *call)
{
    uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
}

/* Unlinks the call and keeps it for reuse (or destroys it); the easy handle must already be
 * out of the multi. */
static void call_free(upstream_call *call)
{
    upstream_client *client = call->client;
    if (call->flush_queued) {
        upstream_call **pp = &client->to_flush;
        while (*pp != call)
            pp = &(*pp)->next_flush;
        *pp = call->next_flush;
        call->flush_queued = false;
    }
    if (call->prev)
        call->prev->next = call->next;
    else
        client->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    uv_timer_stop(&call->timer);
    call->deadline = call->timer_due = 0;
    if (client->closing || client->nfree_calls >= CALL_POOL_MAX) {
        call_destroy(call);
        return;
    }
    call->next = client->free_calls;
    client->free_calls = call;
    client->nfree_calls++;
}

/* Whether the environment names a proxy (read when a worker's client is made). */
static bool proxy_from_environment(void)
{
    static const char *const vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                       "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) return true;
    return false;
}

/* A pooled handle keeps its options across transfers (curl allows reuse without reset), so
 * only what differs per call is set in upstream_start. */
static CURL *easy_new(upstream_client *client)
{
    CURL *easy = curl_easy_init();
    if (!easy) return NULL;
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_curl_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, client);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, client);
    /* No CURLOPT_ACCEPT_ENCODING: bodies pass through exactly as the provider sends them. */
    if (!client->env_proxy)
        curl_easy_setopt(easy, CURLOPT_PROXY, ""); /* spares curl six getenv() per transfer */
    return easy;
}

/* A call object ready for a transfer: a pooled one, or a new one with its easy handle. */
static upstream_call *call_acquire(upstream_client *client)
{
    upstream_call *call = client->free_calls;
    if (call) {
        client->free_calls = call->next;
        client->nfree_calls--;
        CURL *easy = call->easy;
        uv_timer_t timer = call->timer; /* an initialised handle: keep it as it is */
        memset(call, 0, offsetof(upstream_call, head_bytes));
        call->kind = UPSTREAM__CURL;
        call->easy = easy;
        call->timer = timer;
        call->client = client;
        return call;
    }
    CURL *easy = easy_new(client);
    if (!easy) return NULL;
    call = xcalloc(1, sizeof *call);
    call->kind = UPSTREAM__CURL;
    call->client = client;
    call->easy = easy;
    uv_timer_init(client->loop, &call->timer);
    call->timer.data = call;
    client->calls_open++;
    return call;
}

upstream_call *upstream_start(upstream_client *client, const upstream_request *req,
                              const upstream_callbacks *callbacks, void *ud)
{
    if (client->closing) return NULL;
    if (client->h1) {
        bool declined;
        upstream_call *h1 = h1_start(client->h1, req, callbacks, ud, &declined);
        if (h1 || !declined) return h1;
    }
    upstream_call *call = call_acquire(client);
    if (!call) return NULL;
    CURL *easy = call->easy;
    call->cb = *callbacks;
    call->ud = ud;
    call->first_byte_ms = req->first_byte_timeout_ms;
    call->idle_ms = req->idle_timeout_ms;

    /* Per call; the constant options were set when the handle was made (easy_acquire). */
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    /* Waiting for a connection that may multiplex pays only where HTTP/2 can be negotiated
     * (TLS): to a plain-http origin a second transfer would wait for the first's reply. */
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, strncmp(req->url, "https:", 6) ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)req->total_timeout_ms);

    call->next = client->calls;
    if (client->calls) client->calls->prev = call;
    client->calls = call;

    if (!uv_is_active((uv_handle_t *)&client->kick)) uv_check_start(&client->kick, on_kick);
    if (curl_multi_add_handle(client->multi, easy) != CURLM_OK) {
        call->cb.on_done = NULL;
        call_free(call);
        return NULL;
    }
    arm_timer(call, call->first_byte_ms);
    return call;
}

/* Lifts curl's pause. May call on_curl_write synchronously with the bytes held back; curl
 * reads the socket again only from a later socket action. */
static void resume_transfer(upstream_call *call)
{
    call->paused = false;
    arm_timer(call, call->idle_ms);
    upstream_client *client = call->client;
    client->in_curl++;
    curl_easy_pause(call->easy, CURLPAUSE_CONT);
    client->in_curl--;
}

static bool is_h1(const upstream_call *call)
{
    return call->kind == UPSTREAM__H1;
}

void upstream_resume(upstream_call *call)
{
    if (is_h1(call)) {
        h1_resume(call);
        return;
    }
    if (!call->pause_wanted) return;
    call->pause_wanted = false;
    if (!call->paused) return;
    upstream_client *client = call->client;
    resume_transfer(call);
    run_flushes(client);
    run_deferred(client);
}

void upstream_cancel(upstream_call *call)
{
    if (is_h1(call)) {
        h1_cancel(call);
        return;
    }
    if (call->cancelled) return;
    call->cancelled = true;
    upstream_client *client = call->client;
    if (client->in_curl) {
        uv_timer_stop(&call->timer);
        call->deferred = true;
        call->next_deferred = client->deferred_cancels;
        client->deferred_cancels = call;
        return;
    }
    abort_transfer(client, call->easy);
    call_free(call);
}

upstream_client *upstream_client_new(uv_loop_t *loop)
{
    upstream_client *client = xcalloc(1, sizeof *client);
    client->loop = loop;
    client->env_proxy = proxy_from_environment();
    /* A proxy in the environment is curl's to honour; AIGW_UPSTREAM=curl sends every URL
     * through curl (the comparison bench/RESULTS.md records). */
    const char *choice = getenv("AIGW_UPSTREAM");
    if (!client->env_proxy && !(choice && !strcmp(choice, "curl"))) client->h1 = h1_client_new(loop);
    client->multi = curl_multi_init();
    if (!client->multi) {
        fprintf(stderr, "aigw: curl_multi_init failed\n");
        abort();
    }
    uv_timer_init(loop, &client->timer);
    client->timer.data = client;
    uv_check_init(loop, &client->kick);
    client->kick.data = client;
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_change);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS, 256L);
    return client;
}

/* The client goes once its own timer and every call's timer have closed (libuv runs close
 * callbacks in no order we may rely on). */
static void client_free_if_done(upstream_client *client)
{
    if (!client->closing || !client->timer_closed || !client->kick_closed || client->calls_open) return;
    curl_multi_cleanup(client->multi); /* closes the pooled connections, through our hook */
    for (size_t fd = 0; fd < client->nwatches; fd++)
        watch_close(client, (int)fd);
    free(client->watches);
    free(client);
}

static void on_client_timer_closed(uv_handle_t *handle)
{
    upstream_client *client = handle->data;
    client->timer_closed = true;
    client_free_if_done(client);
}

static void on_client_kick_closed(uv_handle_t *handle)
{
    upstream_client *client = handle->data;
    client->kick_closed = true;
    client_free_if_done(client);
}

void upstream_client_close(upstream_client *client)
{
    client->closing = true;
    if (client->h1) h1_client_close(client->h1);
    client->h1 = NULL;
    while (client->calls)
        upstream_cancel(client->calls);
    run_deferred(client);
    while (client->free_calls) {
        upstream_call *call = client->free_calls;
        client->free_calls = call->next;
        call_destroy(call);
    }
    uv_timer_stop(&client->timer);
    uv_close((uv_handle_t *)&client->timer, on_client_timer_closed);
    uv_close((uv_handle_t *)&client->kick, on_client_kick_closed);
}

const char *upstream_result_name(upstream_result result)
{
    switch (result) {
    case UPSTREAM_OK: return "ok";
    case UPSTREAM_CONNECT_FAILED: return "connect_failed";
    case UPSTREAM_CONNECT_TIMEOUT: return "connect_timeout";
    case UPSTREAM_FIRST_BYTE_TIMEOUT: return "first_byte_timeout";
    case UPSTREAM_IDLE_TIMEOUT: return "idle_timeout";
    case UPSTREAM_TOTAL_TIMEOUT: return "total_timeout";
    case UPSTREAM_BROKEN: return "broken";
    case UPSTREAM_TOO_LARGE: return "too_large";
    case UPSTREAM_FAILED: return "failed";
    }
    return "unknown";
}
