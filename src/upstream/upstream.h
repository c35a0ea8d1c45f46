/* upstream.h — the worker's HTTP client towards providers.
 *
 * One upstream_client per worker. Plain http:// URLs go to the module's own HTTP/1.1 client
 * (h1.c: keep-alive pools per host and port on the worker's loop); everything else — https://,
 * HTTP/2, a proxy from the environment — to a libcurl multi handle driven by that worker's
 * libuv loop (curl's multi_socket API: curl says which sockets and timeouts it wants, the loop
 * tells it when they fire). Both keep this contract, results and error categories included.
 * Connections are pooled and reused per host; with curl, HTTP/2 is negotiated by ALPN when the
 * upstream offers it (requests are multiplexed then); TLS is verified; DNS runs in a resolver
 * thread (curl's, or libuv's pool for h1.c), never on the loop.
 *
 * Timeouts: connect, the whole transfer, time to first byte and the idle gap between body
 * chunks (the last two our own timers with curl, so an idle stream is not confused with a slow
 * client we paused on purpose).
 *
 * Header lines holding a control character other than HTAB (a bare CR, a NUL) are never
 * handed over: they could end a line for whoever reads them further on.
 *
 * Backpressure: on_data may end the current round early (its consumer has gathered enough)
 * and on_flush may ask for a pause; the transfer then stops reading from the upstream socket
 * (the kernel buffers fill and the provider slows down) until upstream_resume(). curl reads up
 * to 100 buffers of CURLOPT_BUFFERSIZE in one round, so without the early end one round could
 * gather over a megabyte. */
#ifndef AIGW_UPSTREAM_UPSTREAM_H
#define AIGW_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct curl_slist;

typedef struct upstream_client upstream_client;
typedef struct upstream_call upstream_call;

typedef enum upstream_result {
    UPSTREAM_OK = 0,
    UPSTREAM_CONNECT_FAILED, /* refused, unreachable, DNS, TLS handshake */
    UPSTREAM_CONNECT_TIMEOUT,
    UPSTREAM_FIRST_BYTE_TIMEOUT,
    UPSTREAM_IDLE_TIMEOUT,
    UPSTREAM_TOTAL_TIMEOUT, /* the whole transfer took longer than total_timeout_ms */
    UPSTREAM_BROKEN,        /* connection dropped or reset mid-response, bad framing */
    UPSTREAM_TOO_LARGE,     /* on_data refused more bytes */
    UPSTREAM_FAILED,        /* anything else curl reports */
} upstream_result;

/* Callbacks, all on the worker's loop. None fires after upstream_cancel(). */
typedef struct upstream_callbacks {
    /* The final response head arrived: status and the headers, as "Name: value" lines.
     * Returning false aborts the transfer (on_done then reports UPSTREAM_FAILED). */
    bool (*on_head)(void *ud, int status, const char *const *lines, size_t nlines);
    /* Body bytes. Return UPSTREAM_DATA_PAUSE after consuming them to stop reading: with an
     * on_flush, the round ends there and on_flush's answer decides whether reading goes on at
     * once or waits for upstream_resume(); without one, it waits for upstream_resume().
     * UPSTREAM_DATA_ABORT fails with UPSTREAM_TOO_LARGE. curl hands over a chunked body one
     * HTTP chunk at a time, so a single socket read can mean many calls. */
    int (*on_data)(void *ud, const char *data, size_t len);
    /* Optional: called once after each round of on_data calls (one socket read's worth), so the
     * consumer can write what it gathered in one go. Returning true pauses the transfer until
     * upstream_resume(); false lets it go on (also after on_data asked to end the round).
     * Never called after on_done. */
    bool (*on_flush)(void *ud);
    /* The transfer ended; message is a short human-readable reason when result != OK. The
     * call object is freed right after this returns. */
    void (*on_done)(void *ud, upstream_result result, const char *message);
} upstream_callbacks;

enum { UPSTREAM_DATA_OK = 0, UPSTREAM_DATA_PAUSE = 1, UPSTREAM_DATA_ABORT = 2 };

typedef struct upstream_request {
    const char *url;
    const char *body; /* must stay valid until on_done or cancel */
    size_t body_len;
    struct curl_slist *headers; /* must stay valid until on_done or cancel */
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    uint32_t total_timeout_ms; /* the whole transfer, reply included; 0: none */
    bool send_once;            /* never send again on a new connection when a reused one fails before the
                                * reply began (the server may have the request); the own HTTP/1.1 client
                                * only: libcurl decides that for itself */
} upstream_request;

/* Creates the client of one worker's loop. */
upstream_client *upstream_client_new(uv_loop_t *loop);
/* Cancels every transfer still running (no callbacks fire) and closes the client's handles;
 * the loop must run once more to finish closing. */
void upstream_client_close(upstream_client *client);

/* Starts a transfer. Returns NULL (and no callback will fire) when curl refuses to start it. */
upstream_call *upstream_start(upstream_client *client, const upstream_request *req,
                              const upstream_callbacks *callbacks, void *ud);
/* Lifts a pause asked for by on_data. May deliver data synchronously. */
void upstream_resume(upstream_call *call);
/* Stops the transfer at once and closes its connection if a response was in progress; no
 * callback fires afterwards and the call object is gone. */
void upstream_cancel(upstream_call *call);

const char *upstream_result_name(upstream_result result);

#endif
