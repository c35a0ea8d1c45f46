/* aigw_mock.c — aigw-mock: an imitation of an OpenAI-compatible provider, for tests, the
 * benchmark and a demo that needs no API key.
 *
 * Replies are deterministic, derived from the request, so tests can assert on them; faults are
 * chosen per request by a directive in the prompt (`[[mock:status=503,ttfb_ms=200]]`) or by
 * `x-mock-KEY` headers; GET /__stats counts requests per path, model and status and what
 * happened to streams. The contract is tools/mock/README.md.
 *
 * It must be fast enough not to be the bottleneck of a benchmark measuring microseconds, so
 * replies are built with plain appends into one buffer and written with one write; jansson is
 * used only to read requests. One libuv loop per worker thread, SO_REUSEPORT sockets.
 * Not part of the gateway: it shares no code with src/ on purpose (a bug in the gateway's
 * parsers must not hide behind the same bug in its test double). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

#define MAX_BODY (32u * 1024 * 1024)
#define MAX_HEAD 65536
#define MAX_DELAY_MS 600000
#define MAX_WORDS 1000000
#define MAX_SCOPES 1024
#define MAX_MODELS 128

/* ---- small growable string ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
}
static void sb_add(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}
static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
static void sb_json(sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_reserve(b, n + 2);
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 6);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* ---- statistics, shared by all workers ---------------------------------------------------- */

enum { P_CHAT, P_COMPLETIONS, P_EMBEDDINGS, P_MODELS, P_OTHER, P__COUNT };
static const char *const path_names[P__COUNT] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                                 "/v1/models", "other"};

static struct {
    pthread_mutex_t lock;
    uint64_t requests, paths[P__COUNT], statuses[600];
    char *model_names[MAX_MODELS];
    uint64_t model_counts[MAX_MODELS];
    int nmodels;
    uint64_t streams_started, streams_completed, streams_aborted;
    int64_t in_flight;
    char *scope_names[MAX_SCOPES];
    uint64_t scope_counts[MAX_SCOPES];
    int nscopes;
} stats = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void stats_request(int path, const char *model)
{
    pthread_mutex_lock(&stats.lock);
    stats.requests++;
    stats.paths[path]++;
    stats.in_flight++;
    if (model) {
        int i;
        for (i = 0; i < stats.nmodels && strcmp(stats.model_names[i], model); i++) {
        }
        if (i == stats.nmodels && i < MAX_MODELS) stats.model_names[stats.nmodels++] = strdup(model);
        if (i < MAX_MODELS) stats.model_counts[i]++;
    }
    pthread_mutex_unlock(&stats.lock);
}

static void stats_status(int status)
{
    pthread_mutex_lock(&stats.lock);
    if (status > 0 && status < 600) stats.statuses[status]++;
    pthread_mutex_unlock(&stats.lock);
}

static void stats_add(uint64_t *counter, int64_t in_flight_delta)
{
    pthread_mutex_lock(&stats.lock);
    if (counter) (*counter)++;
    stats.in_flight += in_flight_delta;
    pthread_mutex_unlock(&stats.lock);
}

/* Counts one request in a fail_first scope; returns how many came before it. */
static uint64_t scope_hit(const char *scope)
{
    pthread_mutex_lock(&stats.lock);
    int i;
    for (i = 0; i < stats.nscopes && strcmp(stats.scope_names[i], scope); i++) {
    }
    if (i == stats.nscopes && i < MAX_SCOPES) stats.scope_names[stats.nscopes++] = strdup(scope);
    uint64_t before = i < MAX_SCOPES ? stats.scope_counts[i]++ : 0;
    pthread_mutex_unlock(&stats.lock);
    return before;
}

static void stats_json(sbuf *b)
{
    pthread_mutex_lock(&stats.lock);
    sb_fmt(b, "{\"requests\":%" PRIu64 ",\"paths\":{", stats.requests);
    bool first = true;
    for (int i = 0; i < P__COUNT; i++) {
        if (!stats.paths[i]) continue;
        sb_fmt(b, "%s\"%s\":%" PRIu64, first ? "" : ",", path_names[i], stats.paths[i]);
        first = false;
    }
    sb_str(b, "},\"models\":{");
    for (int i = 0; i < stats.nmodels; i++) {
        if (i) sb_str(b, ",");
        sb_json(b, stats.model_names[i], strlen(stats.model_names[i]));
        sb_fmt(b, ":%" PRIu64, stats.model_counts[i]);
    }
    sb_str(b, "},\"statuses\":{");
    first = true;
    for (int i = 0; i < 600; i++) {
        if (!stats.statuses[i]) continue;
        sb_fmt(b, "%s\"%d\":%" PRIu64, first ? "" : ",", i, stats.statuses[i]);
        first = false;
    }
    sb_fmt(b,
           "},\"streams\":{\"started\":%" PRIu64 ",\"completed\":%" PRIu64 ",\"aborted\":%" PRIu64
           "},\"in_flight\":%" PRId64 "}",
           stats.streams_started, stats.streams_completed, stats.streams_aborted, stats.in_flight);
    pthread_mutex_unlock(&stats.lock);
}

static void stats_reset(void)
{
    pthread_mutex_lock(&stats.lock);
    stats.requests = 0;
    memset(stats.paths, 0, sizeof stats.paths);
    memset(stats.statuses, 0, sizeof stats.statuses);
    for (int i = 0; i < stats.nmodels; i++)
        free(stats.model_names[i]);
    stats.nmodels = 0;
    memset(stats.model_counts, 0, sizeof stats.model_counts);
    for (int i = 0; i < stats.nscopes; i++)
        free(stats.scope_names[i]);
    stats.nscopes = 0;
    memset(stats.scope_counts, 0, sizeof stats.scope_counts);
    stats.streams_started = stats.streams_completed = stats.streams_aborted = 0;
    /* in_flight is a gauge, not a counter: it stays true across a reset. */
    pthread_mutex_unlock(&stats.lock);
}

static void stats_free(void)
{
    stats_reset();
}

/* ---- fault directives --------------------------------------------------------------------- */

typedef struct faults {
    int status;      /* 0: none */
    int retry_after; /* seconds, for 429 */
    long fail_first; /* 0: none */
    char scope[128];
    long ttfb_ms, chunk_delay_ms, drop_after, words;
    bool reset, hang;
} faults;

static void fault_set(faults *f, const char *key, size_t klen, const char *val, size_t vlen)
{
    char v[128];
    if (vlen >= sizeof v) vlen = sizeof v - 1;
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    long n = vlen ? strtol(v, NULL, 10) : 1;
#define KEY(name) (klen == sizeof(name) - 1 && !strncasecmp(key, name, klen))
    if (KEY("status"))
        f->status = (int)n;
    else if (KEY("retry_after"))
        f->retry_after = (int)n;
    else if (KEY("fail_first"))
        f->fail_first = n;
    else if (KEY("scope"))
        snprintf(f->scope, sizeof f->scope, "%s", v);
    else if (KEY("ttfb_ms"))
        f->ttfb_ms = n;
    else if (KEY("chunk_delay_ms"))
        f->chunk_delay_ms = n;
    else if (KEY("drop_after"))
        f->drop_after = n;
    else if (KEY("words"))
        f->words = n;
    else if (KEY("reset"))
        f->reset = n != 0;
    else if (KEY("hang"))
        f->hang = n != 0;
#undef KEY
}

/* Reads every [[mock:k=v,...]] in the raw body (directives contain no JSON escapes). */
static void faults_from_body(faults *f, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *start = memmem(p, (size_t)(end - p), "[[mock:", 7);
        if (!start) break;
        const char *close = memmem(start, (size_t)(end - start), "]]", 2);
        if (!close) break;
        const char *q = start + 7;
        while (q < close) {
            const char *comma = memchr(q, ',', (size_t)(close - q));
            const char *item_end = comma ? comma : close;
            const char *eq = memchr(q, '=', (size_t)(item_end - q));
            if (eq)
                fault_set(f, q, (size_t)(eq - q), eq + 1, (size_t)(item_end - eq - 1));
            else
                fault_set(f, q, (size_t)(item_end - q), "", 0);
            q = item_end + 1;
        }
        p = close + 2;
    }
}

static void faults_bound(faults *f)
{
    if (f->ttfb_ms < 0 || f->ttfb_ms > MAX_DELAY_MS) f->ttfb_ms = MAX_DELAY_MS;
    if (f->chunk_delay_ms < 0 || f->chunk_delay_ms > MAX_DELAY_MS) f->chunk_delay_ms = MAX_DELAY_MS;
    if (f->words < 0 || f->words > MAX_WORDS) f->words = MAX_WORDS;
    if (f->retry_after <= 0) f->retry_after = 1;
    if (f->status && (f->status < 100 || f->status > 599)) f->status = 500;
    if (!f->scope[0]) snprintf(f->scope, sizeof f->scope, "default");
}

/* ---- connections -------------------------------------------------------------------------- */

typedef struct worker worker;
typedef struct conn conn;

typedef struct chunk {
    char *data;
    size_t len;
} chunk;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    worker *w;
    http_parser parser;
    sbuf url, hfield, hvalue, body;
    bool in_value;
    faults hdr_faults;
    char req_id[32];
    bool keepalive, busy, closing, message_done, reading;
    sbuf pending; /* bytes after the current request (pipelining) */
    /* the response being sent */
    sbuf head; /* status line + headers, sent after ttfb */
    chunk *events;
    size_t nevents, next_event;
    bool streaming, stream_open;
    long chunk_delay_ms, drop_after;
    conn *next_conn, *prev_conn;
    int handles;
};

struct worker {
    int id;
    int fd;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_thread_t thread;
    conn *conns;
    uint64_t counter;
};

static http_parser_settings settings;
static void conn_close(conn *c);
static void conn_feed(conn *c, const char *data, size_t len);

static void on_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void conn_send(conn *c, const char *data, size_t len)
{
    if (c->closing || !len) return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len) return;
    if (n < 0 && n != UV_EAGAIN) return;
    if (n < 0) n = 0;
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc(len - (size_t)n);
    if (!req || !copy) abort();
    memcpy(copy, data + n, len - (size_t)n);
    req->data = copy;
    b = uv_buf_init(copy, (unsigned)(len - (size_t)n));
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done) != 0) {
        free(copy);
        free(req);
    }
}

static void free_events(conn *c)
{
    for (size_t i = 0; i < c->nevents; i++)
        free(c->events[i].data);
    free(c->events);
    c->events = NULL;
    c->nevents = c->next_event = 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles) return;
    free(c->url.p);
    free(c->hfield.p);
    free(c->hvalue.p);
    free(c->body.p);
    free(c->pending.p);
    free(c->head.p);
    free_events(c);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing) return;
    if (c->busy) {
        stats_add(c->stream_open ? &stats.streams_aborted : NULL, -1);
        c->busy = false;
    }
    c->closing = true;
    worker *w = c->w;
    if (c->prev_conn)
        c->prev_conn->next_conn = c->next_conn;
    else
        w->conns = c->next_conn;
    if (c->next_conn) c->next_conn->prev_conn = c->prev_conn;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* The response is complete: count it and go on with the next pipelined request. */
static void response_done(conn *c)
{
    if (c->busy) {
        stats_add(c->stream_open ? &stats.streams_completed : NULL, -1);
        c->busy = false;
    }
    c->stream_open = c->streaming = false;
    free_events(c);
    c->head.len = 0;
    if (!c->keepalive) {
        uv_shutdown_t *sd = malloc(sizeof *sd);
        if (!sd || uv_shutdown(sd, (uv_stream_t *)&c->tcp, NULL) != 0) free(sd);
        /* the client closes, or our read sees EOF */
        return;
    }
    if (c->pending.len) {
        sbuf taken = c->pending;
        memset(&c->pending, 0, sizeof c->pending);
        conn_feed(c, taken.p, taken.len);
        free(taken.p);
    }
}

static void send_next_event(uv_timer_t *t);

static void stream_continue(conn *c)
{
    while (c->next_event < c->nevents && !c->closing) {
        if (c->drop_after && (long)c->next_event >= c->drop_after) {
            c->stream_open = false; /* our own doing, not a client abort */
            conn_close(c);          /* abrupt: no [DONE], no terminating chunk */
            return;
        }
        chunk *ev = &c->events[c->next_event++];
        conn_send(c, ev->data, ev->len);
        if (c->chunk_delay_ms && c->next_event < c->nevents) {
            uv_timer_start(&c->timer, send_next_event, (uint64_t)c->chunk_delay_ms, 0);
            return;
        }
    }
    if (!c->closing) response_done(c);
}

static void send_next_event(uv_timer_t *t)
{
    stream_continue(t->data);
}

static void on_ttfb(uv_timer_t *t)
{
    conn *c = t->data;
    conn_send(c, c->head.p, c->head.len);
    if (c->streaming)
        stream_continue(c);
    else
        response_done(c);
}

/* Queues the response head (and a whole body) or stream events; honours ttfb. */
static void respond_start(conn *c, long ttfb_ms)
{
    if (ttfb_ms > 0) {
        uv_timer_start(&c->timer, on_ttfb, (uint64_t)ttfb_ms, 0);
        return;
    }
    on_ttfb(&c->timer);
}

static void head_begin(conn *c, int status, const char *content_type, size_t content_length, bool chunked)
{
    static const char *reasons[] = {[200] = "OK",
                                    [400] = "Bad Request",
                                    [401] = "Unauthorized",
                                    [403] = "Forbidden",
                                    [404] = "Not Found",
                                    [405] = "Method Not Allowed",
                                    [408] = "Request Timeout",
                                    [413] = "Content Too Large",
                                    [429] = "Too Many Requests",
                                    [500] = "Internal Server Error",
                                    [502] = "Bad Gateway",
                                    [503] = "Service Unavailable",
                                    [504] = "Gateway Timeout",
                                    [529] = "Overloaded"};
    const char *reason =
        status < 600 && status >= 0 && (size_t)status < sizeof reasons / sizeof reasons[0] && reasons[status]
            ? reasons[status]
            : "Status";
    c->head.len = 0;
    sb_fmt(&c->head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nx-request-id: %s\r\n", status, reason,
           content_type, c->req_id);
    if (chunked)
        sb_str(&c->head, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    else
        sb_fmt(&c->head, "Content-Length: %zu\r\n", content_length);
    if (!c->keepalive) sb_str(&c->head, "Connection: close\r\n");
    stats_status(status);
}

static void respond_body(conn *c, int status, const char *extra_headers, const char *body, size_t len,
                         long ttfb)
{
    head_begin(c, status, "application/json", len, false);
    if (extra_headers) sb_str(&c->head, extra_headers);
    sb_add(&c->head, "\r\n", 2);
    sb_add(&c->head, body, len);
    c->streaming = false;
    respond_start(c, ttfb);
}

static void respond_error(conn *c, int status, const char *type, const char *message, const char *extra,
                          long ttfb)
{
    sbuf b = {0};
    sb_str(&b, "{\"error\":{\"message\":");
    sb_json(&b, message, strlen(message));
    sb_str(&b, ",\"type\":");
    sb_json(&b, type, strlen(type));
    sb_str(&b, ",\"param\":null,\"code\":null}}");
    respond_body(c, status, extra, b.p, b.len, ttfb);
    free(b.p);
}

static void add_event(conn *c, const char *data, size_t len)
{
    c->events = realloc(c->events, (c->nevents + 1) * sizeof *c->events);
    if (!c->events) abort();
    char size_line[24];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    chunk *ev = &c->events[c->nevents++];
    ev->len = (size_t)n + len + 2;
    ev->data = malloc(ev->len);
    if (!ev->data) abort();
    memcpy(ev->data, size_line, (size_t)n);
    memcpy(ev->data + n, data, len);
    memcpy(ev->data + n + len, "\r\n", 2);
}

/* ---- replies ------------------------------------------------------------------------------ */

static size_t count_words(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
        if (!space && !in) n++;
        in = !space;
    }
    return n;
}

/* Appends a message content's text (a string or an array of {type:text,text}). */
static void content_text(json_t *content, sbuf *out)
{
    if (json_is_string(content)) {
        sb_add(out, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t)) {
                if (out->len) sb_str(out, " ");
                sb_add(out, json_string_value(t), json_string_length(t));
            }
        }
    }
}

/* Removes directives and trims; truncates to 200 bytes at a UTF-8 boundary. */
static void clean_text(sbuf *s)
{
    if (!s->p) sb_reserve(s, 0);
    char *p;
    while ((p = strstr(s->p, "[[mock:"))) {
        char *close = strstr(p, "]]");
        size_t cut = close ? (size_t)(close + 2 - p) : strlen(p);
        memmove(p, p + cut, strlen(p + cut) + 1);
        s->len -= cut;
    }
    size_t start = 0;
    while (start < s->len && strchr(" \t\r\n", s->p[start]))
        start++;
    size_t end = s->len;
    while (end > start && strchr(" \t\r\n", s->p[end - 1]))
        end--;
    memmove(s->p, s->p + start, end - start);
    s->len = end - start;
    if (s->len > 200) {
        s->len = 200;
        while (s->len && ((unsigned char)s->p[s->len] & 0xC0) == 0x80)
            s->len--;
    }
    s->p[s->len] = '\0';
}

static void make_words(sbuf *out, long n)
{
    for (long i = 1; i <= n; i++)
        sb_fmt(out, i == 1 ? "w%ld" : " w%ld", i);
}

static void usage_json(sbuf *b, size_t prompt, size_t completion)
{
    sb_fmt(b, "{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu}", prompt, completion,
           prompt + completion);
}

/* Splits text into pieces each ending after a space (concatenation == text). */
static size_t next_piece(const char *s, size_t len, size_t pos)
{
    size_t i = pos;
    while (i < len && s[i] != ' ')
        i++;
    while (i < len && s[i] == ' ')
        i++;
    return i;
}

static void reply_chat_or_completion(conn *c, json_t *req, const char *model, bool chat, const faults *f)
{
    sbuf text = {0}, reply = {0};
    size_t prompt_words = 0;
    if (chat) {
        json_t *messages = json_object_get(req, "messages");
        size_t i;
        json_t *m;
        sbuf last_user = {0};
        json_array_foreach(messages, i, m)
        {
            sbuf t = {0};
            content_text(json_object_get(m, "content"), &t);
            if (t.p) prompt_words += count_words(t.p);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (role && !strcmp(role, "user")) {
                last_user.len = 0;
                if (t.p) sb_add(&last_user, t.p, t.len);
            }
            free(t.p);
        }
        clean_text(&last_user);
        sb_str(&text, "mock reply to: ");
        sb_add(&text, last_user.p, last_user.len);
        free(last_user.p);
    } else {
        json_t *prompt = json_object_get(req, "prompt");
        if (json_is_array(prompt)) prompt = json_array_get(prompt, 0);
        sbuf t = {0};
        if (json_is_string(prompt)) sb_add(&t, json_string_value(prompt), json_string_length(prompt));
        if (t.p) prompt_words = count_words(t.p);
        clean_text(&t);
        sb_str(&text, "mock completion of: ");
        sb_add(&text, t.p, t.len);
        free(t.p);
    }
    if (f->words) {
        text.len = 0;
        make_words(&text, f->words);
        if (!text.p) sb_reserve(&text, 0);
    }
    size_t completion_words = count_words(text.p);
    const char *object = chat ? "chat.completion" : "text_completion";
    const char *id_prefix = chat ? "chatcmpl-mock-" : "cmpl-mock-";
    uint64_t n = ++c->w->counter;
    json_t *stream = json_object_get(req, "stream");
    if (json_is_true(stream)) {
        json_t *so = json_object_get(req, "stream_options");
        bool include_usage = json_is_true(json_object_get(so, "include_usage"));
        const char *usage_null = include_usage ? ",\"usage\":null" : "";
        c->streaming = true;
        c->chunk_delay_ms = f->chunk_delay_ms;
        c->drop_after = f->drop_after;
        head_begin(c, 200, "text/event-stream", 0, true);
        sb_add(&c->head, "\r\n", 2);
        sbuf ev = {0};
#define EVENT_BEGIN()                                                                                        \
    do {                                                                                                     \
        ev.len = 0;                                                                                          \
        sb_fmt(&ev,                                                                                          \
               "data: {\"id\":\"%s%d-%" PRIu64                                                               \
               "\",\"object\":\"%s.chunk\",\"created\":1700000000,\"model\":",                               \
               id_prefix, c->w->id, n, chat ? "chat.completion" : "text_completion");                        \
        sb_json(&ev, model, strlen(model));                                                                  \
    } while (0)
        if (chat) {
            EVENT_BEGIN();
            sb_fmt(&ev,
                   ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                   "\"logprobs\":null,\"finish_reason\":null}]%s}\n\n",
                   usage_null);
            add_event(c, ev.p, ev.len);
        }
        for (size_t pos = 0; pos < text.len;) {
            size_t end = next_piece(text.p, text.len, pos);
            EVENT_BEGIN();
            if (chat)
                sb_str(&ev, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
            else
                sb_str(&ev, ",\"choices\":[{\"index\":0,\"text\":");
            sb_json(&ev, text.p + pos, end - pos);
            sb_fmt(&ev, "%s,\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", chat ? "}" : "", usage_null);
            add_event(c, ev.p, ev.len);
            pos = end;
        }
        EVENT_BEGIN();
        if (chat)
            sb_fmt(&ev,
                   ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]%s}"
                   "\n\n",
                   usage_null);
        else
            sb_fmt(&ev,
                   ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"stop\"}]%"
                   "s}\n\n",
                   usage_null);
        add_event(c, ev.p, ev.len);
        if (include_usage) {
            EVENT_BEGIN();
            sb_str(&ev, ",\"choices\":[],\"usage\":");
            usage_json(&ev, prompt_words, completion_words);
            sb_str(&ev, "}\n\n");
            add_event(c, ev.p, ev.len);
        }
#undef EVENT_BEGIN
        add_event(c, "data: [DONE]\n\n", 14);
        /* terminating chunk, sent with the last event */
        chunk *last = &c->events[c->nevents - 1];
        last->data = realloc(last->data, last->len + 5);
        memcpy(last->data + last->len, "0\r\n\r\n", 5);
        last->len += 5;
        free(ev.p);
        c->stream_open = true;
        stats_add(&stats.streams_started, 0);
        respond_start(c, f->ttfb_ms);
    } else {
        sb_fmt(&reply,
               "{\"id\":\"%s%d-%" PRIu64 "\",\"object\":\"%s\",\"created\":1700000000,\"model\":", id_prefix,
               c->w->id, n, object);
        sb_json(&reply, model, strlen(model));
        if (chat) {
            sb_str(&reply, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            sb_json(&reply, text.p, text.len);
            sb_str(&reply, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
        } else {
            sb_str(&reply, ",\"choices\":[{\"index\":0,\"text\":");
            sb_json(&reply, text.p, text.len);
            sb_str(&reply, ",\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
        }
        usage_json(&reply, prompt_words, completion_words);
        sb_str(&reply, "}");
        if (f->drop_after) {
            /* Headers and half the body, then the connection goes. */
            head_begin(c, 200, "application/json", reply.len, false);
            sb_add(&c->head, "\r\n", 2);
            sb_add(&c->head, reply.p, reply.len / 2);
            conn_send(c, c->head.p, c->head.len);
            conn_close(c);
        } else {
            respond_body(c, 200, NULL, reply.p, reply.len, f->ttfb_ms);
        }
    }
    free(text.p);
    free(reply.p);
}

static uint64_t fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static void base64(sbuf *out, const unsigned char *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v =
            (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        sb_add(out, q, 4);
    }
}

static void reply_embeddings(conn *c, json_t *req, const char *model, const faults *f)
{
    json_t *input = json_object_get(req, "input");
    json_t *dims_j = json_object_get(req, "dimensions");
    long dims = json_is_integer(dims_j) ? (long)json_integer_value(dims_j) : 8;
    if (dims < 1 || dims > 4096) {
        respond_error(c, 400, "invalid_request_error", "dimensions must be between 1 and 4096", NULL,
                      f->ttfb_ms);
        return;
    }
    const char *enc = json_string_value(json_object_get(req, "encoding_format"));
    bool b64 = enc && !strcmp(enc, "base64");
    /* Normalise: a list of items, each a string or an array of token ids. */
    json_t *items =
        json_is_array(input) && json_array_size(input) &&
                (json_is_string(json_array_get(input, 0)) || json_is_array(json_array_get(input, 0)))
            ? json_incref(input)
            : json_pack("[O]", input);
    sbuf b = {0};
    sb_str(&b, "{\"object\":\"list\",\"data\":[");
    size_t i, tokens = 0;
    json_t *item;
    float *vec = malloc(sizeof(float) * (size_t)dims);
    json_array_foreach(items, i, item)
    {
        uint64_t h = 0xcbf29ce484222325ULL;
        if (json_is_string(item)) {
            h = fnv1a(json_string_value(item), json_string_length(item), h);
            tokens += count_words(json_string_value(item));
        } else if (json_is_array(item)) {
            size_t k;
            json_t *tok;
            json_array_foreach(item, k, tok)
            {
                json_int_t v = json_integer_value(tok);
                h = fnv1a(&v, sizeof v, h);
                tokens++;
            }
        }
        for (long d = 0; d < dims; d++) {
            uint64_t r = splitmix(h ^ (uint64_t)d * 0x9E3779B97F4A7C15ULL);
            vec[d] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        }
        sb_fmt(&b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (b64) {
            sb_str(&b, "\"");
            base64(&b, (const unsigned char *)vec, sizeof(float) * (size_t)dims); /* x86: little-endian */
            sb_str(&b, "\"");
        } else {
            sb_str(&b, "[");
            for (long d = 0; d < dims; d++)
                sb_fmt(&b, "%s%.9g", d ? "," : "", (double)vec[d]);
            sb_str(&b, "]");
        }
        sb_str(&b, "}");
    }
    free(vec);
    json_decref(items);
    sb_str(&b, "],\"model\":");
    sb_json(&b, model, strlen(model));
    sb_fmt(&b, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", tokens, tokens);
    respond_body(c, 200, NULL, b.p, b.len, f->ttfb_ms);
    free(b.p);
}

static void reply_models(conn *c)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"mock-model\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-small\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-large\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-embed\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"}]}";
    respond_body(c, 200, NULL, body, sizeof body - 1, 0);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void handle_request(conn *c)
{
    const char *url = c->url.p ? c->url.p : "/";
    size_t plen = strcspn(url, "?#");
    int method = c->parser.method;
    c->busy = true;
    snprintf(c->req_id, sizeof c->req_id, "mock-%d-%" PRIu64, c->w->id, ++c->w->counter);
#define PATH(p) (plen == sizeof(p) - 1 && !strncmp(url, p, plen))
    if (PATH("/__stats") && method == HTTP_GET) {
        c->busy = false;
        sbuf b = {0};
        stats_json(&b);
        stats_add(NULL, 1); /* balanced by response_done; not counted as a request */
        c->busy = true;
        head_begin(c, 200, "application/json", b.len, false);
        pthread_mutex_lock(&stats.lock);
        stats.statuses[200]--; /* /__stats is not counted */
        pthread_mutex_unlock(&stats.lock);
        sb_add(&c->head, "\r\n", 2);
        sb_add(&c->head, b.p, b.len);
        free(b.p);
        c->streaming = false;
        respond_start(c, 0);
        return;
    }
    if (PATH("/__reset") && method == HTTP_POST) {
        stats_reset();
        stats_add(NULL, 1);
        head_begin(c, 200, "application/json", 11, false);
        pthread_mutex_lock(&stats.lock);
        stats.statuses[200]--;
        pthread_mutex_unlock(&stats.lock);
        sb_str(&c->head, "\r\n{\"ok\":true}");
        c->streaming = false;
        respond_start(c, 0);
        return;
    }
    int path = PATH("/v1/chat/completions") ? P_CHAT
               : PATH("/v1/completions")    ? P_COMPLETIONS
               : PATH("/v1/embeddings")     ? P_EMBEDDINGS
               : PATH("/v1/models")         ? P_MODELS
                                            : P_OTHER;
#undef PATH
    if (path == P_OTHER) {
        stats_request(path, NULL);
        respond_error(c, 404, "invalid_request_error", "aigw-mock: unknown path", NULL, 0);
        return;
    }
    if (path == P_MODELS) {
        stats_request(path, NULL);
        if (method != HTTP_GET)
            respond_error(c, 405, "invalid_request_error", "aigw-mock: use GET", NULL, 0);
        else
            reply_models(c);
        return;
    }
    if (method != HTTP_POST) {
        stats_request(path, NULL);
        respond_error(c, 405, "invalid_request_error", "aigw-mock: use POST", NULL, 0);
        return;
    }
    json_error_t jerr;
    json_t *req = json_loadb(c->body.p ? c->body.p : "", c->body.len, 0, &jerr);
    const char *model = req ? json_string_value(json_object_get(req, "model")) : NULL;
    stats_request(path, model);
    faults f = c->hdr_faults; /* headers first, so body directives can't override them */
    faults from_body = {0};
    faults_from_body(&from_body, c->body.p ? c->body.p : "", c->body.len);
    if (!f.status) f.status = from_body.status;
    if (!f.retry_after) f.retry_after = from_body.retry_after;
    if (!f.fail_first) f.fail_first = from_body.fail_first;
    if (!f.scope[0]) memcpy(f.scope, from_body.scope, sizeof f.scope);
    if (!f.ttfb_ms) f.ttfb_ms = from_body.ttfb_ms;
    if (!f.chunk_delay_ms) f.chunk_delay_ms = from_body.chunk_delay_ms;
    if (!f.drop_after) f.drop_after = from_body.drop_after;
    if (!f.words) f.words = from_body.words;
    f.reset |= from_body.reset;
    f.hang |= from_body.hang;
    faults_bound(&f);

    if (!req || !json_is_object(req)) {
        char msg[256];
        snprintf(msg, sizeof msg, "aigw-mock: invalid JSON body: %s", req ? "not an object" : jerr.text);
        respond_error(c, 400, "invalid_request_error", msg, NULL, 0);
    } else if (!model) {
        respond_error(c, 400, "invalid_request_error", "aigw-mock: you must provide a model parameter", NULL,
                      0);
    } else if (f.reset) {
        struct linger lg = {1, 0};
        int fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        conn_close(c);
    } else if (f.hang) {
        /* never answer; the client's close ends it */
        if (json_is_true(json_object_get(req, "stream"))) {
            c->stream_open = true;
            stats_add(&stats.streams_started, 0);
        }
    } else if (f.status && (!f.fail_first || scope_hit(f.scope) < (uint64_t)f.fail_first)) {
        char msg[96], extra[96] = "";
        snprintf(msg, sizeof msg, "aigw-mock injected status %d", f.status);
        if (f.status == 429)
            snprintf(extra, sizeof extra, "Retry-After: %d\r\nretry-after-ms: %d\r\n", f.retry_after,
                     f.retry_after * 1000);
        respond_error(c, f.status,
                      f.status == 429  ? "rate_limit_error"
                      : f.status < 500 ? "invalid_request_error"
                                       : "server_error",
                      msg, extra[0] ? extra : NULL, f.ttfb_ms);
    } else if (!f.status && f.fail_first && scope_hit(f.scope) < (uint64_t)f.fail_first) {
        respond_error(c, 500, "server_error", "aigw-mock injected status 500 (fail_first)", NULL, f.ttfb_ms);
    } else if (path == P_EMBEDDINGS) {
        reply_embeddings(c, req, model, &f);
    } else {
        reply_chat_or_completion(c, req, model, path == P_CHAT, &f);
    }
    json_decref(req);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    c->url.len = c->hfield.len = c->hvalue.len = c->body.len = 0;
    c->in_value = false;
    memset(&c->hdr_faults, 0, sizeof c->hdr_faults);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->url.len + len > MAX_HEAD) return -1;
    sb_add(&c->url, at, len);
    return 0;
}

static void header_done(conn *c)
{
    if (!c->hfield.len) return;
    if (c->hfield.len > 7 && !strncasecmp(c->hfield.p, "x-mock-", 7)) {
        /* x-mock-ttfb-ms → ttfb_ms */
        char key[64];
        size_t k = 0;
        for (size_t i = 7; i < c->hfield.len && k + 1 < sizeof key; i++)
            key[k++] = c->hfield.p[i] == '-' ? '_' : c->hfield.p[i];
        key[k] = '\0';
        fault_set(&c->hdr_faults, key, k, c->hvalue.p ? c->hvalue.p : "", c->hvalue.len);
    } else if (c->hfield.len == 6 && !strncasecmp(c->hfield.p, "expect", 6) && c->hvalue.len == 12 &&
               !strncasecmp(c->hvalue.p, "100-continue", 12)) {
        conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    c->hfield.len = c->hvalue.len = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->in_value) {
        header_done(c);
        c->in_value = false;
    }
    if (c->hfield.len + len > MAX_HEAD) return -1;
    sb_add(&c->hfield, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    c->in_value = true;
    if (c->hvalue.len + len > MAX_HEAD) return -1;
    sb_add(&c->hvalue, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    header_done(c);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > MAX_BODY) return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->body.len + len > MAX_BODY) return -1;
    sb_add(&c->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->message_done = true;
    c->keepalive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_feed(conn *c, const char *data, size_t len)
{
    if (c->busy || c->pending.len) { /* answer in order: keep for later */
        sb_add(&c->pending, data, len);
        return;
    }
    size_t used = http_parser_execute(&c->parser, &settings, data, len);
    if (c->message_done) {
        c->message_done = false;
        http_parser_pause(&c->parser, 0);
        if (used < len) sb_add(&c->pending, data + used, len - used);
        if (c->url.p == NULL) sb_reserve(&c->url, 0);
        handle_request(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        c->keepalive = false;
        c->busy = true;
        stats_add(NULL, 1);
        respond_error(c, 400, "invalid_request_error", "aigw-mock: malformed or too large request", NULL, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    static __thread char buffer[65536];
    (void)suggested;
    *b = uv_buf_init(buffer, sizeof buffer);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n > 0 && !c->closing) conn_feed(c, b->base, (size_t)n);
}

static void on_connection(uv_stream_t *server, int status)
{
    worker *w = server->data;
    if (status < 0) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next_conn = w->conns;
    if (w->conns) w->conns->prev_conn = c;
    w->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- workers and main --------------------------------------------------------------------- */

static void on_stop(uv_async_t *a)
{
    worker *w = a->data;
    while (w->conns)
        conn_close(w->conns);
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void worker_run(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

static int open_socket(const char *host, int *port)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, *port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, *port, (struct sockaddr_in6 *)&ss) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        close(fd);
        return -1;
    }
    if (*port == 0) {
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static uv_signal_t sigterm, sigint;
static worker *workers;
static int nworkers = 1;

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)s;
    for (int i = 0; i < nworkers; i++)
        uv_async_send(&workers[i].stop);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

int main(int argc, char **argv)
{
    char host[256] = "127.0.0.1";
    int port = 9090;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            const char *v = argv[++i], *colon = strrchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof host) {
                fprintf(stderr, "aigw-mock: --listen HOST:PORT\n");
                return 2;
            }
            memcpy(host, v, (size_t)(colon - v));
            host[colon - v] = '\0';
            port = (int)strtol(colon + 1, NULL, 10);
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            nworkers = (int)strtol(argv[++i], NULL, 10);
            if (nworkers < 1 || nworkers > 64) nworkers = 1;
        } else {
            fprintf(stderr, "usage: aigw-mock [--listen HOST:PORT] [--workers N]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    workers = calloc((size_t)nworkers, sizeof *workers);
    for (int i = 0; i < nworkers; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->fd = open_socket(host, &port);
        if (w->fd < 0) {
            fprintf(stderr, "aigw-mock: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
            return 1;
        }
        uv_loop_init(&w->loop);
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        uv_tcp_open(&w->listener, w->fd);
        uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
        uv_async_init(&w->loop, &w->stop, on_stop);
        w->stop.data = w;
    }
    for (int i = 0; i < nworkers; i++)
        uv_thread_create(&workers[i].thread, worker_run, &workers[i]);
    printf("aigw-mock listening on %s:%d\n", host, port);
    fflush(stdout);
    uv_loop_t *main_loop = uv_default_loop();
    uv_signal_init(main_loop, &sigterm);
    uv_signal_init(main_loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(main_loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nworkers; i++)
        uv_thread_join(&workers[i].thread);
    uv_loop_close(main_loop);
    free(workers);
    stats_free();
    return 0;
}
