/* h1_internal.h — the objects of the plain-http client, shared by its two files.
 *
 * Internal to src/upstream: h1_pool.c keeps the connections (origins, idle lists and their
 * sweep, resolving and connecting) and h1.c runs the calls on them (request, response,
 * timeouts, pause, cancel, retry). Both need the same structs and each calls a few functions of
 * the other, named h1__*; nothing outside these two files includes this header (upstream.c
 * sees the client through h1.h). */
#ifndef AIGW_UPSTREAM_H1_INTERNAL_H
#define AIGW_UPSTREAM_H1_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "upstream/h1.h"
#include "upstream/h1_parse.h"
#include "upstream/upstream.h"

#define H1_READ_BUF (64 * 1024)
#define H1_HOST_MAX 255

typedef struct h1_origin h1_origin;
typedef struct h1_conn h1_conn;
typedef struct h1_call h1_call;
typedef struct h1_resolve h1_resolve;

struct h1_client {
    uv_loop_t *loop;
    h1_origin *origins;
    h1_call *calls; /* in flight, for shutdown */
    h1_call *free_calls;
    int nfree_calls;
    uv_timer_t sweep; /* closes idle connections past H1_IDLE_MS */
    int handles_open; /* the sweep timer, call timers, connections: the client goes after the last */
    int nidle;
    bool closing;
    char read_buf[H1_READ_BUF];
};

struct h1_origin {
    h1_origin *next;
    h1_client *client;
    char host[H1_HOST_MAX + 1]; /* an IPv6 literal without its brackets */
    uint16_t port;
    int refs;      /* calls naming it and open connections: the origin goes with the last */
    h1_conn *idle; /* most recently used first */
    int nidle;
};

struct h1_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    h1_origin *origin;
    h1_call *call;
    h1_conn *idle_prev, *idle_next;
    uint64_t idle_since;
    bool connected, reused, idle, closing, writing, reading;
};

struct h1_resolve {
    uv_getaddrinfo_t req;
    h1_call *call; /* NULL once the call is gone: the result is dropped */
};

struct h1_call {
    upstream__kind kind;
    h1_client *client;
    h1_call *prev, *next; /* client->calls; next also links the free list */
    h1_origin *origin;
    h1_conn *conn;
    h1_resolve *resolve;
    struct addrinfo *addrs, *next_addr; /* a resolved name's addresses, tried in turn */
    upstream_callbacks cb;
    void *ud;
    uv_timer_t timer;
    uint64_t connect_deadline, first_byte_deadline, idle_deadline, total_deadline, timer_due;
    uint32_t connect_ms, first_byte_ms, idle_ms, total_ms;
    const char *body;
    size_t body_len;
    char *request; /* the request head */
    size_t request_len;
    h1_body body_state;
    char *head_buf; /* a head that spans reads */
    size_t head_len;
    char *held; /* body bytes a pause left unread */
    size_t held_len;
    int depth; /* our callbacks on the stack: a cancel inside one is finished on the way out */
    int last_error;
    bool head_done, got_bytes, paused, pause_wanted, cancelled, retried, starting, start_failed;
};

/* ---- h1_pool.c: origins and connections ---------------------------------------------------- */

/* Sets up the client's sweep timer (unreferenced: an idle pool does not keep the loop alive);
 * counted in handles_open by the caller. */
void h1__pool_init(h1_client *client);
/* Closes every idle connection and the sweep timer; the client is freed after the last close
 * callback (h1__client_free_if_done). Called once, with client->closing already set. */
void h1__pool_close(h1_client *client);

/* The origin for (host, port), created on first use with no references; the caller takes one
 * (origin->refs++) and gives it back with h1__origin_free_if_unused after the decrement. */
h1_origin *h1__origin_get(h1_client *client, const char *host, size_t host_len, uint16_t port);
/* Frees the origin once nothing refers to it (refs == 0); otherwise does nothing. */
void h1__origin_free_if_unused(h1_origin *origin);

/* Takes the origin's most recently used idle connection out of the pool (still reading; the
 * caller attaches its call), or returns NULL when there is none. */
h1_conn *h1__conn_take_idle(h1_origin *origin);
/* Starts or stops reading (h1__on_read); nothing on a closing connection. */
void h1__conn_read(h1_conn *conn, bool on);
/* After a complete response, with conn->call already detached: back to the pool (reading, to
 * see its server close it), or closed when the pool is full or the client is closing. */
void h1__conn_release(h1_conn *conn);
/* Closes the connection (again: nothing) and detaches its call (call->conn = NULL); the memory
 * goes in the close callback, which drops the origin's reference. */
void h1__conn_close(h1_conn *conn);

/* A new connection for the call: at once to an IP literal, else after resolving the name with
 * uv_getaddrinfo, trying each address in turn. Once connected the request is sent
 * (h1__call_send). Failure ends the call with UPSTREAM_CONNECT_FAILED through h1__finish, or,
 * while h1_start is still on the stack (call->starting), sets call->start_failed instead and
 * no callback fires. */
void h1__call_connect(h1_call *call);

/* ---- h1.c: the calls --------------------------------------------------------------------- */

/* Writes the call's request on call->conn (connected); a write error ends the call or retries
 * it (a reused connection). */
void h1__call_send(h1_call *call);
/* Ends the call: its connection goes back to the pool after a complete response, else it is
 * closed; the call object is freed before on_done runs (which may start another call). */
void h1__finish(h1_call *call, upstream_result result, const char *message);
/* The read callback of every connection: hands the bytes to its call, or closes an idle one on
 * any byte or EOF. */
void h1__on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
/* Frees the client once it is closing and its last handle has closed. */
void h1__client_free_if_done(h1_client *client);

#endif
