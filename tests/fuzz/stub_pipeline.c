/* stub_pipeline.c — the pipeline as fuzz_conn.c's connections see it; see stub_pipeline.h.
 *
 * Every request object the server prepares (http_app.request_init) gets a slot here, found by
 * its address. A slot is "active" from on_request until the stub finishes the response
 * (http_respond / http_stream_end, which make the server call on_done) or the server calls
 * on_abort (and then on_done). Anything else the server does to a slot is a contract violation and
 * aborts, so libFuzzer reports it with the input.
 *
 * Like the real pipeline, a handled request reads its path, every header (name and value
 * bytes) and its body, so a header pointer left dangling by the connection is read under
 * ASan. The timers are created once and kept (a fixed pool): they are not what leaks. */
#include "stub_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_conn.h"
#include "server/server.h"

#define STUB_MAX_REQUESTS 64
#define PATTERN_BYTES (320 * 1024)

typedef enum stub_mode {
    MODE_RESPOND_NOW,
    MODE_ERROR_NOW,
    MODE_RESPOND_LATER,      /* from the stub's own timer, next loop turn */
    MODE_RESPOND_CONN_TIMER, /* from http_request_timer, as a retry's backoff does */
    MODE_STREAM_NOW,         /* begin, writes and end inside on_request */
    MODE_STREAM_LATER,       /* begin now, one chunk per loop turn, then end */
    MODE_NEVER,              /* until the client goes (on_abort) */
    MODE_STREAM_BEGIN_LATER, /* like MODE_STREAM_LATER, the head also from the timer */
    MODE_COUNT
} stub_mode;

typedef struct stub_request {
    http_request *req; /* NULL: a free slot */
    bool active;
    bool finishing; /* inside our own http_respond / http_stream_end call */
    bool began, waiting_writable, resume_inline;
    bool aborted; /* on_abort came: on_done follows */
    stub_mode mode;
    int chunks_left;
    size_t chunk_len, body_len;
    uv_timer_t timer;
} stub_request;

static stub_request slots[STUB_MAX_REQUESTS];
static char pattern[PATTERN_BYTES];
static const uint8_t *decisions;
static size_t ndecisions, next_decision_at;

static void fail(const char *why, const http_request *req)
{
    fprintf(stderr, "stub_pipeline: contract broken: %s (request %p, path %s)\n", why, (const void *)req,
            req && req->path ? req->path : "-");
    abort();
}

static uint8_t next_decision(void)
{
    if (!ndecisions) return 0;
    uint8_t d = decisions[next_decision_at % ndecisions];
    next_decision_at++;
    return d;
}

static stub_request *slot_of(const http_request *req)
{
    for (int i = 0; i < STUB_MAX_REQUESTS; i++)
        if (slots[i].req == req) return &slots[i];
    fail("a request the server never prepared", req);
    return NULL;
}

void stub_pipeline_init(uv_loop_t *loop)
{
    for (size_t i = 0; i < PATTERN_BYTES; i++)
        pattern[i] = (char)('a' + i % 26);
    for (int i = 0; i < STUB_MAX_REQUESTS; i++) {
        uv_timer_init(loop, &slots[i].timer);
        slots[i].timer.data = &slots[i];
    }
}

static unsigned aborts; /* requests the server took back (a client gone mid-request) */

void stub_pipeline_start(const uint8_t *d, size_t len)
{
    aborts = 0;
    decisions = d;
    ndecisions = len;
    next_decision_at = 0;
}

bool stub_pipeline_quiet(void)
{
    for (int i = 0; i < STUB_MAX_REQUESTS; i++)
        if (slots[i].active || uv_is_active((uv_handle_t *)&slots[i].timer)) return false;
    return true;
}

void stub_pipeline_check_end(void)
{
    for (int i = 0; i < STUB_MAX_REQUESTS; i++)
        if (slots[i].req) fail("request object not released after its connection closed", slots[i].req);
}

bool stub_pipeline_owns(const uv_handle_t *handle)
{
    return (const char *)handle >= (const char *)slots &&
           (const char *)handle < (const char *)(slots + STUB_MAX_REQUESTS);
}

/* ---- answering ------------------------------------------------------------------------- */

static size_t pick_size(uint8_t d)
{
    static const size_t sizes[] = {0, 1, 100, 3000, 20000, 70000, 300000, 26};
    return sizes[d & 7];
}

/* The slot ends before the call: once the server has recorded the request, it may reuse the
 * object for the next pipelined request. */
static void finish_respond(stub_request *s)
{
    http_request *req = s->req;
    uv_timer_stop(&s->timer);
    s->finishing = true;
    if (s->body_len % 7 == 3)
        http_respond(req, 503, "application/json", NULL, 0, "{\"error\":\"stub\"}", 16);
    else
        http_respond(req, 200, "application/json", "x-stub: 1\r\n", 11, pattern, s->body_len);
    if (s->active) fail("http_respond did not record the request", req);
}

static void finish_stream(stub_request *s)
{
    http_request *req = s->req;
    uv_timer_stop(&s->timer);
    s->finishing = true;
    http_stream_end(req, pattern, s->chunk_len % 5 == 0 ? 0 : 12);
    if (s->active) fail("http_stream_end did not record the request", req);
}

/* Writes chunks until the stream is done or the client is behind; true when it ended. */
static bool stream_some(stub_request *s, int at_most)
{
    if (!s->began) {
        http_stream_begin(s->req, 200, "text/event-stream", NULL, 0);
        s->began = true;
    }
    while (s->chunks_left > 0 && at_most-- > 0) {
        s->chunks_left--;
        if (http_stream_write(s->req, pattern, s->chunk_len)) {
            s->waiting_writable = true;
            return false;
        }
    }
    if (s->chunks_left > 0) return false;
    finish_stream(s);
    return true;
}

static void on_stub_timer(uv_timer_t *timer);

/* One chunk now; the next from the timer unless the stream ended or waits for the client. */
static void stream_advance(stub_request *s)
{
    if (!stream_some(s, 1) && !s->waiting_writable) uv_timer_start(&s->timer, on_stub_timer, 0, 0);
}

static void on_stub_timer(uv_timer_t *timer)
{
    stub_request *s = timer->data;
    if (!s->active) fail("stub timer fired for a finished request", s->req);
    switch (s->mode) {
    case MODE_RESPOND_LATER: finish_respond(s); break;
    case MODE_STREAM_NOW:
    case MODE_STREAM_LATER:
    case MODE_STREAM_BEGIN_LATER:
        if (!s->waiting_writable) stream_advance(s);
        break;
    default: fail("stub timer fired in a mode that set none", s->req);
    }
}

static void on_conn_timer(http_request *req)
{
    stub_request *s = slot_of(req);
    if (!s->active || s->mode != MODE_RESPOND_CONN_TIMER)
        fail("request timer for a request not waiting on it", req);
    finish_respond(s);
}

/* What the real pipeline reads first: path, every header, the body. */
static void read_request(const http_request *req)
{
    volatile unsigned sum = 0;
    if (!req->path || strlen(req->path) != req->path_len) fail("path not set or of the wrong length", req);
    if (req->nheaders > REQUEST_MAX_HEADERS) fail("too many headers", req);
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        for (size_t k = 0; k < h->name_len; k++)
            sum += (unsigned char)h->name[k];
        for (size_t k = 0; k < h->value_len; k++)
            sum += (unsigned char)h->value[k];
    }
    (void)http_find_header(req, "x-aigw-config");
    (void)http_find_header(req, "x-portkey-config");
    for (size_t i = 0; i < req->body.len; i++)
        sum += (unsigned char)req->body.data[i];
    (void)sum;
}

/* ---- the pipeline's face ----------------------------------------------------------------- */

static void stub_request_init(http_request *req)
{
    for (int i = 0; i < STUB_MAX_REQUESTS; i++)
        if (slots[i].req == req) fail("request prepared twice", req);
    for (int i = 0; i < STUB_MAX_REQUESTS; i++)
        if (!slots[i].req) {
            slots[i].req = req;
            slots[i].active = false;
            return;
        }
    fail("more request objects than the stub holds (fuzz_conn opens too many connections)", req);
}

static void stub_request_reset(http_request *req)
{
    if (slot_of(req)->active) fail("request reset while the pipeline handles it", req);
}

static void stub_request_free(http_request *req)
{
    stub_request *s = slot_of(req);
    if (s->active) fail("request freed while the pipeline handles it (no on_abort)", req);
    s->req = NULL;
}

static void stub_on_request(http_request *req)
{
    stub_request *s = slot_of(req);
    if (s->active) fail("request handed over while already handled", req);
    if (req->response_started) fail("handed over with a response already started", req);
    read_request(req);
    uint8_t d = next_decision();
    s->active = true;
    s->finishing = s->began = s->waiting_writable = false;
    s->mode = (stub_mode)(d % MODE_COUNT);
    s->resume_inline = d & 0x80;
    uint8_t size = next_decision();
    s->body_len = pick_size(size);
    s->chunk_len = pick_size(size >> 3) | 1; /* a stream chunk is never empty */
    s->chunks_left = 1 + (size >> 6) * 2;
    switch (s->mode) {
    case MODE_RESPOND_NOW: finish_respond(s); break;
    case MODE_ERROR_NOW:
        s->finishing = true;
        http_respond(req, 400 + (d >> 3) % 130, "application/json", NULL, 0, "{\"error\":\"refused\"}", 19);
        break;
    case MODE_RESPOND_LATER: uv_timer_start(&s->timer, on_stub_timer, 0, 0); break;
    case MODE_RESPOND_CONN_TIMER: http_request_timer(req, 0, on_conn_timer); break;
    case MODE_STREAM_NOW: stream_some(s, 1000); break;
    case MODE_STREAM_LATER:
        http_stream_begin(req, 200, "text/event-stream", "x-stub: 1\r\n", 11);
        s->began = true;
        uv_timer_start(&s->timer, on_stub_timer, 0, 0);
        break;
    case MODE_STREAM_BEGIN_LATER: uv_timer_start(&s->timer, on_stub_timer, 0, 0); break;
    case MODE_NEVER:
    case MODE_COUNT: break;
    }
}

static void stub_on_writable(http_request *req)
{
    stub_request *s = slot_of(req);
    if (!s->active) fail("on_writable for a request that ended", req);
    if (!s->waiting_writable) return; /* a wake-up nobody asked for is harmless */
    s->waiting_writable = false;
    if (s->resume_inline) /* the real pipeline may resume curl, which writes at once */
        stream_advance(s);
    else
        uv_timer_start(&s->timer, on_stub_timer, 0, 0);
}

static void stub_on_abort(http_request *req)
{
    stub_request *s = slot_of(req);
    if (!s->active) fail("on_abort for a request the pipeline does not hold", req);
    if (s->finishing) fail("on_abort while the response is being finished", req);
    s->active = false;
    s->aborted = true;
    uv_timer_stop(&s->timer);
    aborts++;
}

unsigned stub_pipeline_aborts(void)
{
    return aborts;
}

static void stub_on_done(http_request *req)
{
    stub_request *s = slot_of(req);
    if (s->aborted) {
        s->aborted = false;
        return;
    }
    if (s->active) {
        if (!s->finishing) fail("request recorded while the pipeline still handles it", req);
        s->active = false;
        s->finishing = false;
        return;
    }
    /* The server's own answers (400, 408, 413, 431, 503…) are recorded without a handle. */
    if (req->status < 400) fail("a request recorded that was never handled, with a success status", req);
}

/* The server refuses a request itself (malformed, too large, too slow): the application shapes
 * the answer, at once. */
static void stub_on_error(http_request *req, int status, const char *code, const char *message)
{
    stub_request *s = slot_of(req);
    if (s->active) fail("on_error for a request the stub is handling", req);
    if (!message || !*message) fail("on_error without a message", req);
    http_respond(req, status, "application/json", NULL, 0, "{\"error\":\"server\"}", 18);
}

const http_app stub_app = {
    .request_init = stub_request_init,
    .request_reset = stub_request_reset,
    .request_free = stub_request_free,
    .on_request = stub_on_request,
    .on_error = stub_on_error,
    .on_writable = stub_on_writable,
    .on_abort = stub_on_abort,
    .on_done = stub_on_done,
};
