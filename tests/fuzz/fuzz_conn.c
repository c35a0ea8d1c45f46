/* fuzz_conn.c — libFuzzer target for the connection state machine (src/server/http_conn.c),
 * not just its parser: one real worker (loop, listener on 127.0.0.1:0, ready list) serves
 * real loopback TCP clients that the input scripts, and a stub pipeline (stub_pipeline.c)
 * answers the requests at once, later, as streams with backpressure, or never.
 *
 * Input:  [flags] [n] [n decision bytes for the stub] [m] [m op pairs (code, arg)] [payload]
 *   flags: bit 0 header/body read timeout 0 ms (fires the next loop turn) instead of 60 s;
 *          bit 1 keep-alive idle 0 ms; bit 2 header limit 512 bytes instead of 8 KiB;
 *          bit 3 body limit 64 bytes instead of 64 KiB; bit 4 a limit of two connections
 *          (the oldest idle one makes room, else 503); bit 5 clients end with a reset instead
 *          of a close; bit 6 total request-body deadline 0 ms instead of 60 s.
 *   ops:   send the payload's next bytes on the current client (split across reads as the
 *          ops and loop turns fall), half-close, reset (SO_LINGER 0), close, stop or resume
 *          reading (a client that does not read makes the server's writes block: socket
 *          buffers are 4 KiB), run the loop K turns, open another connection, switch client,
 *          drain the worker, close every server connection at once, and send the payload's
 *          next 1–64 bytes 4 to 256 times over (volume from a small input: long headers and
 *          trailers, thousands of pipelined requests).
 * Loop turns run only when an op says so, so data, EOF and resets land in one turn or in
 * several as the input chooses. Nothing waits on wall time: timeouts are 0 ms or 60 s.
 *
 * Checked, besides ASan/UBSan: the stub pipeline's contract (stub_pipeline.h); every byte a
 * client receives is a sequence of well-framed HTTP/1.1 responses (status line, headers,
 * Content-Length or chunked body, nothing after "Connection: close"); and every input ends
 * with every connection closed and its connection slot given back, every handle but the
 * listener and the worker's idle closed, and an empty ready list — a leak or a hang between inputs is a
 * failure too. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "server/http_conn.h"
#include "server/worker.h"
#include "stub_pipeline.h"

#define MAX_CLIENTS 8
#define SOCKET_BUFFER 4096
#define CLIENT_OUT_MAX (1024 * 1024)
#define SETTLE_TURNS 64

/* ---- checking what a client receives -------------------------------------------------- */

typedef enum check_state {
    CHECK_STATUS,
    CHECK_HEADER,
    CHECK_BODY,
    CHECK_CHUNK_SIZE,
    CHECK_CHUNK_DATA,
    CHECK_CHUNK_END,
    CHECK_TRAILER,
    CHECK_CLOSED
} check_state;

typedef struct response_check {
    check_state state;
    char line[1024];
    size_t line_len;
    int status;
    bool chunked, has_length, close;
    size_t remaining;
    unsigned responses;
} response_check;

static void check_fail(const response_check *rc, const char *why)
{
    fprintf(stderr, "fuzz_conn: malformed response #%u: %s (line: \"%.*s\")\n", rc->responses + 1, why,
            (int)rc->line_len, rc->line);
    abort();
}

static void response_done(response_check *rc)
{
    rc->responses++;
    rc->state = rc->close ? CHECK_CLOSED : CHECK_STATUS;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return false;
    const char *v = line + n + 1;
    while (v < line + len && *v == ' ')
        v++;
    *value = v;
    return true;
}

static void check_line(response_check *rc)
{
    const char *l = rc->line, *v;
    size_t len = rc->line_len;
    switch (rc->state) {
    case CHECK_STATUS:
        if (len < 13 || memcmp(l, "HTTP/1.1 ", 9) != 0 || l[9] < '1' || l[9] > '5' || l[10] < '0' ||
            l[10] > '9' || l[11] < '0' || l[11] > '9' || l[12] != ' ')
            check_fail(rc, "not a status line");
        rc->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
        rc->chunked = rc->has_length = rc->close = false;
        rc->state = CHECK_HEADER;
        break;
    case CHECK_HEADER:
        if (len == 0) {
            if (rc->status < 200)
                rc->state = CHECK_STATUS;
            else if (rc->chunked && rc->has_length)
                check_fail(rc, "both Content-Length and chunked");
            else if (rc->chunked)
                rc->state = CHECK_CHUNK_SIZE;
            else if (!rc->has_length)
                check_fail(rc, "a response without framing");
            else if (rc->remaining == 0)
                response_done(rc);
            else
                rc->state = CHECK_BODY;
            break;
        }
        if (!memchr(l, ':', len) || l[0] == ' ' || l[0] == ':') check_fail(rc, "not a header line");
        for (size_t i = 0; i < len; i++)
            if (l[i] == '\r' || l[i] == '\0') check_fail(rc, "control byte in a header line");
        if (header_is(l, len, "content-length", &v)) {
            if (rc->has_length) check_fail(rc, "two Content-Length headers");
            rc->has_length = true;
            rc->remaining = 0;
            for (; v < l + len; v++) {
                if (*v < '0' || *v > '9') check_fail(rc, "Content-Length not a number");
                rc->remaining = rc->remaining * 10 + (size_t)(*v - '0');
            }
        } else if (header_is(l, len, "transfer-encoding", &v)) {
            if ((size_t)(l + len - v) != 7 || strncasecmp(v, "chunked", 7) != 0)
                check_fail(rc, "unknown coding");
            rc->chunked = true;
        } else if (header_is(l, len, "connection", &v)) {
            rc->close = (size_t)(l + len - v) == 5 && strncasecmp(v, "close", 5) == 0;
        }
        break;
    case CHECK_CHUNK_SIZE: {
        if (len == 0 || len > 16) check_fail(rc, "bad chunk size line");
        size_t size = 0;
        for (size_t i = 0; i < len; i++) {
            int d = l[i] >= '0' && l[i] <= '9'   ? l[i] - '0'
                    : l[i] >= 'a' && l[i] <= 'f' ? l[i] - 'a' + 10
                                                 : -1;
            if (d < 0) check_fail(rc, "bad chunk size");
            size = size * 16 + (size_t)d;
        }
        rc->remaining = size;
        rc->state = size ? CHECK_CHUNK_DATA : CHECK_TRAILER;
        break;
    }
    case CHECK_CHUNK_END:
        if (len != 0) check_fail(rc, "chunk data longer than its size");
        rc->state = CHECK_CHUNK_SIZE;
        break;
    case CHECK_TRAILER:
        if (len == 0) response_done(rc);
        break;
    default: check_fail(rc, "internal: line in a body state");
    }
}

static void check_feed(response_check *rc, const char *data, size_t len)
{
    while (len) {
        if (rc->state == CHECK_CLOSED) check_fail(rc, "bytes after a Connection: close response");
        if (rc->state == CHECK_BODY || rc->state == CHECK_CHUNK_DATA) {
            size_t n = len < rc->remaining ? len : rc->remaining;
            data += n;
            len -= n;
            rc->remaining -= n;
            if (rc->remaining == 0) {
                if (rc->state == CHECK_BODY)
                    response_done(rc);
                else
                    rc->state = CHECK_CHUNK_END;
            }
            continue;
        }
        char c = *data++;
        len--;
        if (rc->line_len == sizeof rc->line) check_fail(rc, "line too long");
        rc->line[rc->line_len++] = c;
        if (c != '\n') continue;
        if (rc->line_len < 2 || rc->line[rc->line_len - 2] != '\r') check_fail(rc, "line not ended by CRLF");
        rc->line_len -= 2;
        check_line(rc);
        rc->line_len = 0;
    }
}

/* ---- the clients ------------------------------------------------------------------------- */

typedef struct client {
    int fd; /* -1: closed */
    bool reading, eof, shut_wanted;
    bool shut; /* half-closed */
    char *out; /* bytes the kernel has not taken yet */
    size_t out_len, out_cap;
    response_check check;
} client;

static worker w;
static aigw_config cfg;
static struct sockaddr_in server_addr;
static client clients[MAX_CLIENTS];
static int nclients, current;
static bool closed_all; /* OP_CLOSE_ALL ran: connections were cut on purpose */
static const uint8_t *payload;
static size_t payload_len, payload_off;
static char read_scratch[64 * 1024];

static void client_open(void)
{
    if (nclients == MAX_CLIENTS) return;
    client *cl = &clients[nclients];
    memset(cl, 0, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cl->fd < 0) abort();
    int size = SOCKET_BUFFER;
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    fcntl(cl->fd, F_SETFL, fcntl(cl->fd, F_GETFL) | O_NONBLOCK);
    /* Loopback: the kernel completes the handshake from the listen backlog at once (the wait
     * is for a signal, such as libFuzzer's timer, landing in the middle). */
    if (connect(cl->fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            perror("fuzz_conn: connect");
            abort();
        }
        struct pollfd pfd = {.fd = cl->fd, .events = POLLOUT};
        int ready, err = 0;
        socklen_t err_len = sizeof err;
        do
            ready = poll(&pfd, 1, 3000);
        while (ready < 0 && errno == EINTR);
        if (ready != 1 || getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err) {
            /* The kernel's doing (a dropped SYN), not the server's: go on without this client. */
            fprintf(stderr, "fuzz_conn: connect did not complete: %s\n", strerror(err ? err : ETIMEDOUT));
            close(cl->fd);
            cl->fd = -1;
            return;
        }
    }
    cl->reading = true;
    current = nclients++;
}

static void client_close(client *cl, bool reset)
{
    if (cl->fd < 0) return;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(cl->fd);
    cl->fd = -1;
    free(cl->out);
    cl->out = NULL;
    cl->out_len = cl->out_cap = 0;
}

static void client_flush(client *cl)
{
    while (cl->fd >= 0 && cl->out_len) {
        ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) cl->out_len = 0; /* reset by the server */
            break;
        }
        memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
        cl->out_len -= (size_t)n;
    }
    if (cl->fd >= 0 && cl->shut_wanted && !cl->out_len) {
        shutdown(cl->fd, SHUT_WR);
        cl->shut_wanted = false;
    }
}

/* Queues the payload's next n bytes, `times` times over, and sends what the kernel takes. */
static void client_send(client *cl, size_t n, size_t times)
{
    if (n > payload_len - payload_off) n = payload_len - payload_off;
    if (cl->fd < 0 || !n) return;
    const uint8_t *slice = payload + payload_off;
    payload_off += n;
    for (; times > 0 && cl->out_len + n <= CLIENT_OUT_MAX; times--) {
        if (cl->out_len + n > cl->out_cap) {
            cl->out_cap = (cl->out_len + n) * 2;
            cl->out = realloc(cl->out, cl->out_cap);
            if (!cl->out) abort();
        }
        memcpy(cl->out + cl->out_len, slice, n);
        cl->out_len += n;
    }
    client_flush(cl);
}

static void client_read(client *cl)
{
    if (cl->fd < 0 || !cl->reading || cl->eof) return;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(cl->fd, read_scratch, sizeof read_scratch, MSG_DONTWAIT);
        if (n > 0) {
            check_feed(&cl->check, read_scratch, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) cl->eof = true;
        return;
    }
}

/* ---- the worker -------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0) return;
    if (w.draining) { /* as if the listener were closed: take the connection and drop it */
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t) abort();
        uv_tcp_init(&w.loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) != 0) abort();
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    http_conn_accept(&w, listener);
}

void worker_connection_closed(worker *wk)
{
    wk->nconns--;
}

/* The config is the fuzzer's static one: no reference counting (server.c is not linked). */
const aigw_config *worker_config_acquire(worker *wk)
{
    return wk->config;
}

void worker_config_release(worker *wk, const aigw_config *c)
{
    (void)wk;
    (void)c;
}

/* The server-wide connection limit, here for one worker: a slot taken must be given back. */
static int slots_taken, slot_limit;

bool worker_connection_slot_take(worker *wk)
{
    (void)wk;
    if (slots_taken >= slot_limit) return false;
    slots_taken++;
    return true;
}

void worker_connection_slot_release(worker *wk)
{
    (void)wk;
    if (--slots_taken < 0) {
        fprintf(stderr, "fuzz_conn: a connection slot given back twice\n");
        abort();
    }
}

static void setup(void)
{
    static bool done;
    if (done) return;
    done = true;
    signal(SIGPIPE, SIG_IGN); /* as main.c: a write to a reset client is an error, not a kill */
    w.config = &cfg;
    w.app = &stub_app;
    w.id = 1;
    w.server_nonce = 0x1234;
    if (uv_loop_init(&w.loop) != 0) abort();
    uv_idle_init(&w.loop, &w.ready_idle);
    w.ready_idle.data = &w;
    stub_pipeline_init(&w.loop);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int size = SOCKET_BUFFER, one = 1;
    /* Accepted sockets inherit small buffers: a client that stops reading blocks writes soon. */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof server_addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&server_addr, &len) != 0)
        abort();
    uv_tcp_init(&w.loop, &w.listener);
    w.listener.data = &w;
    if (uv_tcp_open(&w.listener, fd) != 0 || uv_listen((uv_stream_t *)&w.listener, 128, on_connection) != 0)
        abort();
}

static void turn(void)
{
    for (int i = 0; i < nclients; i++)
        client_flush(&clients[i]);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    for (int i = 0; i < nclients; i++)
        client_read(&clients[i]);
}

static void on_walk_handle(uv_handle_t *h, void *arg)
{
    if (h == (uv_handle_t *)&w.listener || h == (uv_handle_t *)&w.ready_idle || stub_pipeline_owns(h)) return;
    fprintf(stderr, "fuzz_conn: a %s handle is still open after every connection closed\n",
            uv_handle_type_name(h->type));
    *(bool *)arg = true;
}

/* Ends the input: every client goes, every server connection closes, nothing is left. */
static void teardown(bool reset)
{
    for (int i = 0; i < nclients; i++)
        clients[i].reading = true;
    for (int t = 0; t < SETTLE_TURNS / 4; t++)
        turn();
    if (getenv("FUZZ_CONN_DEBUG")) /* to see what a seed does */
        for (int i = 0; i < nclients; i++)
            fprintf(stderr, "fuzz_conn: client %d: %u whole responses, last status %d, %s\n", i,
                    clients[i].check.responses, clients[i].check.status,
                    clients[i].eof ? "closed by the server" : "open");
    /* A lone client that half-closed loses no byte of an answer it was being sent, unless the
     * server took a request back because of it (a client gone mid-request is cancelled, by
     * design), everything was force-closed, or an idle timeout of 0 closed it unread. */
    if (nclients == 1 && clients[0].shut && clients[0].fd >= 0 && clients[0].eof && !closed_all &&
        cfg.keepalive_idle_timeout_ms && cfg.header_read_timeout_ms && !stub_pipeline_aborts()) {
        const response_check *rc = &clients[0].check;
        if (!(rc->state == CHECK_CLOSED || (rc->state == CHECK_STATUS && !rc->line_len)))
            check_fail(rc, "an answer cut short after the client half-closed");
    }
    for (int i = 0; i < nclients; i++)
        client_close(&clients[i], reset);
    for (int t = 0; t < SETTLE_TURNS && (w.nconns || !stub_pipeline_quiet()); t++)
        turn();
    /* Connections that stopped reading do not see their client go: the drain timeout's way. */
    http_conn_close_all(&w);
    int t = 0;
    for (; t < SETTLE_TURNS && (w.nconns || w.ready || !stub_pipeline_quiet()); t++)
        uv_run(&w.loop, UV_RUN_NOWAIT);
    if (t == SETTLE_TURNS) {
        fprintf(stderr, "fuzz_conn: %d connection(s) did not close (ready list %s, stub %s)\n", w.nconns,
                w.ready ? "not empty" : "empty", stub_pipeline_quiet() ? "quiet" : "busy");
        abort();
    }
    if (slots_taken != 0) {
        fprintf(stderr, "fuzz_conn: %d connection slot(s) still taken after every connection closed\n",
                slots_taken);
        abort();
    }
    uv_idle_stop(&w.ready_idle);
    bool open = false;
    uv_walk(&w.loop, on_walk_handle, &open);
    if (open) abort();
    stub_pipeline_check_end();
    w.draining = false;
    nclients = 0;
    closed_all = false;
}

enum {
    OP_SEND,
    OP_SEND_ALL,
    OP_RUN,
    OP_SHUT_WR,
    OP_RESET,
    OP_CLOSE,
    OP_PAUSE_READ,
    OP_RESUME_READ,
    OP_CONNECT,
    OP_SWITCH,
    OP_DRAIN,
    OP_CLOSE_ALL,
    OP_REPEAT,
    OP_COUNT
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 3) return 0;
    uint8_t flags = data[0];
    size_t ndecisions = data[1], at = 2;
    if (at + ndecisions + 1 > size) return 0;
    const uint8_t *decisions = data + at;
    at += ndecisions;
    size_t nops = data[at++];
    if (at + 2 * nops > size) return 0;
    const uint8_t *ops = data + at;
    at += 2 * nops;
    payload = data + at;
    payload_len = size - at;
    payload_off = 0;

    cfg.header_read_timeout_ms = flags & 1 ? 0 : 60000;
    cfg.keepalive_idle_timeout_ms = flags & 2 ? 0 : 60000;
    cfg.max_header_bytes = flags & 4 ? 512 : 8192;
    cfg.max_body_bytes = flags & 8 ? 64 : 65536;
    cfg.request_body_timeout_ms = flags & 64 ? 0 : 60000;
    slot_limit = flags & 16 ? 2 : 64;
    stub_pipeline_start(decisions, ndecisions);

    client_open();
    for (size_t i = 0; i < nops; i++) {
        uint8_t code = ops[2 * i] % OP_COUNT, arg = ops[2 * i + 1];
        client *cl = &clients[current];
        switch (code) {
        case OP_SEND: client_send(cl, arg < 128 ? (size_t)arg + 1 : (size_t)(arg - 127) * 512, 1); break;
        case OP_SEND_ALL: client_send(cl, payload_len, 1); break;
        case OP_REPEAT: client_send(cl, 1 + (arg & 63), (size_t)4 << (arg >> 6) * 2); break;
        case OP_RUN:
            for (int t = 0; t <= arg % 8; t++)
                turn();
            break;
        case OP_SHUT_WR:
            cl->shut_wanted = true;
            cl->shut = true;
            client_flush(cl);
            break;
        case OP_RESET: client_close(cl, true); break;
        case OP_CLOSE: client_close(cl, false); break;
        case OP_PAUSE_READ: cl->reading = false; break;
        case OP_RESUME_READ: cl->reading = true; break;
        case OP_CONNECT: client_open(); break;
        case OP_SWITCH: current = nclients ? arg % nclients : 0; break;
        case OP_DRAIN:
            if (!w.draining) {
                w.draining = true;
                http_conn_drain(&w);
            }
            break;
        case OP_CLOSE_ALL:
            http_conn_close_all(&w);
            closed_all = true;
            break;
        }
    }
    teardown(flags & 32);
    return 0;
}
