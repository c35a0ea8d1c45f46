/* h1_pool.c — the connections of aigw's plain-http client (h1.c): a keep-alive pool per
 * origin, and opening new connections.
 *
 * Separate from h1.c because it is the one part that knows nothing of HTTP: it owns sockets,
 * their lifetimes and addresses, while h1.c owns what a call says on them (request, response,
 * timeouts, pause, cancel, retry). The two meet in h1_internal.h: a call takes a connection
 * from here (h1__conn_take_idle, or h1__call_connect for a new one), reads on it through
 * h1__on_read, and gives it back (h1__conn_release) or closes it (h1__conn_close).
 *
 * - Connections are pooled per (host, port): at most H1_IDLE_PER_ORIGIN idle ones, each
 *   closed after H1_IDLE_MS unused; the most recently used is taken first. An idle connection
 *   keeps reading: any byte or EOF on it closes it (the server closed it or sent garbage). A
 *   connection goes back to the pool only after a complete response with keep-alive and no
 *   bytes after it; anything else closes it.
 * - Host names are resolved with uv_getaddrinfo (libuv's thread pool, never on the loop),
 *   trying each address in turn; IP literals are not resolved. Rejected: a DNS cache — a
 *   connection is opened rarely once the pool is warm.
 * - An origin lives while a call names it or a connection of it is open (refs); a connection's
 *   memory goes in its close callback, and the client after its last handle
 *   (h1__client_free_if_done). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/h1_internal.h"
#include "util/alloc.h"

#define H1_IDLE_PER_ORIGIN 128
#define H1_IDLE_MS 60000
#define H1_SWEEP_MS 5000

/* ---- origins and connections ---------------------------------------------------------- */

h1_origin *h1__origin_get(h1_client *client, const char *host, size_t host_len, uint16_t port)
{
    for (h1_origin *o = client->origins; o; o = o->next)
        if (o->port == port && strlen(o->host) == host_len && !memcmp(o->host, host, host_len)) return o;
    h1_origin *o = xcalloc(1, sizeof *o);
    memcpy(o->host, host, host_len);
    o->port = port;
    o->client = client;
    o->next = client->origins;
    client->origins = o;
    return o;
}

void h1__origin_free_if_unused(h1_origin *o)
{
    if (o->refs) return;
    h1_client *client = o->client;
    h1_origin **pp = &client->origins;
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    free(o);
}

static void idle_remove(h1_conn *conn)
{
    if (!conn->idle) return;
    h1_origin *o = conn->origin;
    if (conn->idle_prev)
        conn->idle_prev->idle_next = conn->idle_next;
    else
        o->idle = conn->idle_next;
    if (conn->idle_next) conn->idle_next->idle_prev = conn->idle_prev;
    conn->idle_prev = conn->idle_next = NULL;
    conn->idle = false;
    o->nidle--;
    o->client->nidle--;
}

h1_conn *h1__conn_take_idle(h1_origin *o)
{
    h1_conn *conn = o->idle;
    if (conn) idle_remove(conn);
    return conn;
}

static void on_conn_closed(uv_handle_t *handle)
{
    h1_conn *conn = handle->data;
    h1_origin *o = conn->origin;
    h1_client *client = o->client;
    o->refs--;
    h1__origin_free_if_unused(o);
    free(conn);
    client->handles_open--;
    h1__client_free_if_done(client);
}

void h1__conn_close(h1_conn *conn)
{
    if (conn->closing) return;
    conn->closing = true;
    idle_remove(conn);
    if (conn->call) conn->call->conn = NULL;
    conn->call = NULL;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void on_sweep(uv_timer_t *timer)
{
    h1_client *client = timer->data;
    uint64_t now = uv_now(client->loop);
    for (h1_origin *o = client->origins, *next; o; o = next) {
        next = o->next; /* closing connections never frees an origin here (close is deferred) */
        for (h1_conn *c = o->idle, *cn; c; c = cn) {
            cn = c->idle_next;
            if (now - c->idle_since >= H1_IDLE_MS) h1__conn_close(c);
        }
    }
    if (!client->nidle) uv_timer_stop(&client->sweep);
}

static void on_read_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    h1_conn *conn = handle->data;
    (void)suggested;
    *buf = uv_buf_init(conn->origin->client->read_buf, H1_READ_BUF);
}

void h1__conn_read(h1_conn *conn, bool on)
{
    if (on == conn->reading || conn->closing) return;
    conn->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&conn->tcp, on_read_alloc, h1__on_read);
    else
        uv_read_stop((uv_stream_t *)&conn->tcp);
}

/* After a complete response: back to the pool, or closed. */
void h1__conn_release(h1_conn *conn)
{
    h1_origin *o = conn->origin;
    h1_client *client = o->client;
    conn->call = NULL;
    if (client->closing || o->nidle >= H1_IDLE_PER_ORIGIN) {
        h1__conn_close(conn);
        return;
    }
    h1__conn_read(conn, true); /* an idle connection watches for its server closing it */
    conn->idle = true;
    conn->reused = true;
    conn->idle_since = uv_now(client->loop);
    conn->idle_prev = NULL;
    conn->idle_next = o->idle;
    if (o->idle) o->idle->idle_prev = conn;
    o->idle = conn;
    o->nidle++;
    if (!client->nidle++) uv_timer_start(&client->sweep, on_sweep, H1_SWEEP_MS, H1_SWEEP_MS);
}

static h1_conn *conn_new(h1_origin *o)
{
    h1_client *client = o->client;
    h1_conn *conn = xcalloc(1, sizeof *conn);
    conn->origin = o;
    if (uv_tcp_init(client->loop, &conn->tcp) != 0) {
        free(conn);
        return NULL;
    }
    conn->tcp.data = conn;
    conn->connect_req.data = conn;
    conn->write_req.data = conn;
    uv_tcp_nodelay(&conn->tcp, 1);
    o->refs++;
    client->handles_open++;
    return conn;
}

/* ---- connecting ------------------------------------------------------------------------- */

static void connect_next(h1_call *call);

static void on_connected(uv_connect_t *req, int status)
{
    h1_conn *conn = req->data;
    if (conn->closing || !conn->call) return;
    h1_call *call = conn->call;
    if (status < 0) {
        call->last_error = status;
        h1__conn_close(conn);
        connect_next(call);
        return;
    }
    conn->connected = true;
    if (call->addrs) {
        uv_freeaddrinfo(call->addrs);
        call->addrs = call->next_addr = NULL;
    }
    uv_tcp_keepalive(&conn->tcp, 1, 60);
    h1__conn_read(conn, true);
    h1__call_send(call);
}

static void connect_failed(h1_call *call)
{
    if (call->starting) {
        call->start_failed = true;
        return;
    }
    char msg[H1_HOST_MAX + 96];
    snprintf(msg, sizeof msg, "could not connect to %s port %u: %s", call->origin->host, call->origin->port,
             uv_strerror(call->last_error ? call->last_error : UV_ECONNREFUSED));
    h1__finish(call, UPSTREAM_CONNECT_FAILED, msg);
}

static void connect_to(h1_call *call, const struct sockaddr *addr)
{
    h1_conn *conn = conn_new(call->origin);
    if (!conn) {
        call->last_error = UV_ENOMEM;
        connect_next(call);
        return;
    }
    conn->call = call;
    call->conn = conn;
    int r = uv_tcp_connect(&conn->connect_req, &conn->tcp, addr, on_connected);
    if (r < 0) {
        call->last_error = r;
        h1__conn_close(conn);
        connect_next(call);
    }
}

/* The next resolved address, or the end of the list: connect failed. */
static void connect_next(h1_call *call)
{
    while (call->next_addr) {
        struct addrinfo *ai = call->next_addr;
        call->next_addr = ai->ai_next;
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            connect_to(call, ai->ai_addr);
            return;
        }
    }
    connect_failed(call);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    h1_resolve *r = req->data;
    h1_call *call = r->call;
    free(r);
    if (!call) {
        if (res) uv_freeaddrinfo(res);
        return;
    }
    call->resolve = NULL;
    if (status < 0) {
        char msg[H1_HOST_MAX + 64];
        snprintf(msg, sizeof msg, "could not resolve host %s: %s", call->origin->host, uv_strerror(status));
        h1__finish(call, UPSTREAM_CONNECT_FAILED, msg);
        return;
    }
    call->addrs = call->next_addr = res;
    connect_next(call);
}

/* A new connection for the call: at once to an IP literal, else after resolving the name. */
void h1__call_connect(h1_call *call)
{
    h1_origin *o = call->origin;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    memset(&addr, 0, sizeof addr);
    if (inet_pton(AF_INET, o->host, &addr.in4.sin_addr) == 1) {
        addr.in4.sin_family = AF_INET;
        addr.in4.sin_port = htons(o->port);
        connect_to(call, &addr.sa);
        return;
    }
    if (inet_pton(AF_INET6, o->host, &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons(o->port);
        connect_to(call, &addr.sa);
        return;
    }
    h1_resolve *r = xcalloc(1, sizeof *r);
    r->call = call;
    r->req.data = r;
    char port[8];
    snprintf(port, sizeof port, "%u", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(call->client->loop, &r->req, on_resolved, o->host, port, &hints);
    if (rc < 0) {
        free(r);
        call->last_error = rc;
        connect_failed(call);
        return;
    }
    call->resolve = r;
}

/* ---- the pool's part of the client ------------------------------------------------------- */

void h1__pool_init(h1_client *client)
{
    uv_timer_init(client->loop, &client->sweep);
    uv_unref((uv_handle_t *)&client->sweep);
    client->sweep.data = client;
}

static void on_sweep_closed(uv_handle_t *handle)
{
    h1_client *client = handle->data;
    client->handles_open--;
    h1__client_free_if_done(client);
}

void h1__pool_close(h1_client *client)
{
    for (h1_origin *o = client->origins; o; o = o->next)
        while (o->idle)
            h1__conn_close(o->idle);
    uv_timer_stop(&client->sweep);
    uv_close((uv_handle_t *)&client->sweep, on_sweep_closed);
}
