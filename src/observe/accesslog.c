/* accesslog.c — batched access log with a writer thread; see accesslog.h.
 *
 * Rejected: a line per queue entry (a malloc and a lock per request), and writing from the
 * loop with O_NONBLOCK (a pipe or slow disk would still stall it or lose lines). */
#include "observe/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/timeutil.h"
#include "util/units.h"

#define BATCH_FLUSH_BYTES (32 * 1024)
#define BATCH_MAX_BYTES (1024 * 1024)
/* A batch's first allocation: its flush size and room for the line that crosses it. Grown
 * from nothing by doubling, a batch was reallocated eight times, and each move copied it
 * whenever another allocation sat after it — about 450 instructions a request with traces on
 * (callgrind: realloc's copy, a byte an instruction), about 60 without. */
#define BATCH_FIRST_BYTES (2 * BATCH_FLUSH_BYTES)
#define BATCH_FLUSH_MS 100
#define QUEUE_MAX 256

typedef struct batch {
    char *data;
    size_t len;
    size_t lines;
} batch;

struct accesslog {
    int fd;
    bool own_fd, off;
    char *path;  /* a file target's, for reopening */
    bool reopen; /* under lock: open path again before the next write */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    batch queue[QUEUE_MAX];
    size_t head, count;
    bool stopping;
    atomic_uint_fast64_t dropped;
};

struct accesslog_writer {
    accesslog *log;
    uv_timer_t timer;
    buf batch;
    size_t lines;
};

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return; /* the log target is gone; nothing better to do than stop writing */
        }
        p += n;
        len -= (size_t)n;
    }
}

/* On the writer thread, which alone writes to log->fd. */
static void reopen_file(accesslog *log)
{
    int fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "aigw: access_log: cannot reopen %s: %s; still writing to the file open before\n",
                log->path, strerror(errno));
        return;
    }
    close(log->fd);
    log->fd = fd;
}

static void *writer_thread(void *arg)
{
    accesslog *log = arg;
    pthread_setname_np(pthread_self(), "aigw-accesslog");
    pthread_mutex_lock(&log->lock);
    for (;;) {
        while (!log->count && !log->stopping && !log->reopen)
            pthread_cond_wait(&log->cond, &log->lock);
        if (log->reopen) {
            log->reopen = false;
            pthread_mutex_unlock(&log->lock);
            reopen_file(log);
            pthread_mutex_lock(&log->lock);
            continue;
        }
        if (!log->count && log->stopping) break;
        batch b = log->queue[log->head];
        log->head = (log->head + 1) % QUEUE_MAX;
        log->count--;
        pthread_mutex_unlock(&log->lock);
        write_all(log->fd, b.data, b.len);
        free(b.data);
        pthread_mutex_lock(&log->lock);
    }
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

accesslog *accesslog_open(const char *target, char *err, size_t errlen)
{
    accesslog *log = xcalloc(1, sizeof *log);
    if (!strcmp(target, "off")) {
        log->off = true;
        return log;
    }
    if (!strcmp(target, "stdout"))
        log->fd = STDOUT_FILENO;
    else if (!strcmp(target, "stderr"))
        log->fd = STDERR_FILENO;
    else {
        log->fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log->fd < 0) {
            snprintf(err, errlen, "access_log: cannot open %s: %s", target, strerror(errno));
            free(log);
            return NULL;
        }
        log->own_fd = true;
        log->path = xstrdup(target);
    }
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->cond, NULL);
    pthread_create(&log->thread, NULL, writer_thread, log);
    return log;
}

void accesslog_close(accesslog *log)
{
    if (!log) return;
    if (!log->off) {
        pthread_mutex_lock(&log->lock);
        log->stopping = true;
        pthread_cond_signal(&log->cond);
        pthread_mutex_unlock(&log->lock);
        pthread_join(log->thread, NULL);
        pthread_mutex_destroy(&log->lock);
        pthread_cond_destroy(&log->cond);
        if (log->own_fd) close(log->fd);
    }
    free(log->path);
    uint64_t dropped = atomic_load(&log->dropped);
    if (dropped)
        fprintf(stderr, "aigw: access log dropped %llu lines (writer could not keep up)\n",
                (unsigned long long)dropped);
    free(log);
}

void accesslog_reopen(accesslog *log)
{
    if (log->off || !log->own_fd) return;
    pthread_mutex_lock(&log->lock);
    log->reopen = true;
    pthread_cond_signal(&log->cond);
    pthread_mutex_unlock(&log->lock);
}

uint64_t accesslog_dropped(const accesslog *log)
{
    return atomic_load(&((accesslog *)log)->dropped);
}

/* An empty batch, its room taken at once (BATCH_FIRST_BYTES). */
static void batch_start(buf *b)
{
    buf_init(b, BATCH_MAX_BYTES);
    buf_room(b, BATCH_FIRST_BYTES - 1); /* and a NUL: one power of two */
}

static void hand_over(accesslog_writer *w)
{
    if (!w->batch.len) return;
    accesslog *log = w->log;
    batch b = {.data = w->batch.data, .len = w->batch.len, .lines = w->lines};
    pthread_mutex_lock(&log->lock);
    bool queued = log->count < QUEUE_MAX;
    if (queued) {
        log->queue[(log->head + log->count) % QUEUE_MAX] = b;
        log->count++;
        pthread_cond_signal(&log->cond);
    }
    pthread_mutex_unlock(&log->lock);
    if (queued) {
        batch_start(&w->batch); /* the thread owns the old allocation now */
    } else {
        atomic_fetch_add(&log->dropped, w->lines);
        w->batch.len = 0;
    }
    w->lines = 0;
}

static void on_flush_timer(uv_timer_t *timer)
{
    hand_over(timer->data);
}

accesslog_writer *accesslog_writer_new(accesslog *log, uv_loop_t *loop)
{
    accesslog_writer *w = xcalloc(1, sizeof *w);
    w->log = log;
    if (log->off)
        buf_init(&w->batch, BATCH_MAX_BYTES); /* never written */
    else
        batch_start(&w->batch);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    return w;
}

buf *accesslog_line_begin(accesslog_writer *w)
{
    if (w->log->off) return NULL;
    if (w->batch.len > BATCH_MAX_BYTES - ACCESSLOG_LINE_MAX) {
        uv_timer_stop(&w->timer);
        hand_over(w);
    }
    w->batch.overflowed = false;
    return &w->batch;
}

bool accesslog_line_done(accesslog_writer *w, size_t line_start)
{
    buf *b = &w->batch;
    if (b->overflowed || !b->len || b->data[b->len - 1] != '\n' || b->len - line_start > ACCESSLOG_LINE_MAX) {
        /* The line did not fit: drop it whole, never half a line. */
        b->len = line_start;
        b->overflowed = false;
        atomic_fetch_add(&w->log->dropped, 1);
        return false;
    }
    w->lines++;
    if (b->len >= BATCH_FLUSH_BYTES) {
        uv_timer_stop(&w->timer);
        hand_over(w);
    } else if (w->lines == 1) {
        uv_timer_start(&w->timer, on_flush_timer, BATCH_FLUSH_MS, 0);
    }
    return true;
}

void accesslog_string(buf *b, const char *s, size_t len)
{
    if (len <= ACCESSLOG_FIELD_MAX) {
        buf_append_json_string(b, s, len);
        return;
    }
    size_t cut = ACCESSLOG_FIELD_MAX;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) /* not inside a UTF-8 sequence */
        cut--;
    if (buf_append_json_string(b, s, cut) != BUF_OK) return;
    b->len--; /* reopen the string for the marker */
    buf_printf(b, "\u2026[+%zu bytes]\"", len - cut);
}

static void on_writer_closed(uv_handle_t *handle)
{
    accesslog_writer *w = handle->data;
    buf_free(&w->batch);
    free(w);
}

void accesslog_writer_close(accesslog_writer *w)
{
    if (!w->log->off) hand_over(w);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_writer_closed);
}

/* ---- the line ---------------------------------------------------------------------------------- */

void accesslog_record(accesslog_writer *w, const exchange_record *r)
{
    buf *b = accesslog_line_begin(w);
    if (!b) return;
    size_t start = b->len;
    char when[40];
    time_format_utc(when, sizeof when);
    /* Times in ms with three decimals, from the nanosecond clock (µs rounded). */
    long long ttfb_us = r->first_byte_ns ? (long long)((r->first_byte_ns - r->start_ns + 500) / 1000) : -1000;
    long long total_us = (long long)((r->end_ns - r->start_ns + 500) / 1000);
    /* Numbers are appended directly: buf_printf cost a fifth of a proxied request. */
    buf_append_lit(b, "{\"time\":\"");
    buf_append_str(b, when);
    buf_append_lit(b, "\",\"request_id\":");
    accesslog_string(b, r->request_id, strlen(r->request_id));
    buf_append_lit(b, ",\"method\":\"");
    buf_append_str(b, r->method);
    buf_append_lit(b, "\",\"path\":");
    accesslog_string(b, r->path, r->path_len);
    buf_append_lit(b, ",\"model\":");
    if (r->model)
        accesslog_string(b, r->model, strlen(r->model));
    else
        buf_append_lit(b, "null");
    buf_append_lit(b, ",\"provider\":");
    if (r->provider) {
        accesslog_string(b, r->provider, strlen(r->provider));
        buf_append_lit(b, ",\"upstream_model\":");
        accesslog_string(b, r->upstream_model, r->upstream_model_len);
    } else {
        buf_append_lit(b, "null");
    }
    /* who asked: the key's id and alias, its team and user (never the key) */
    const struct {
        const char *name, *value;
    } who[] = {{",\"key_id\":", r->key_id},
               {",\"key_alias\":", r->key_alias},
               {",\"team\":", r->team},
               {",\"user\":", r->user}};
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++)
        if (who[i].value) {
            buf_append_str(b, who[i].name);
            accesslog_string(b, who[i].value, strlen(who[i].value));
        }
    if (r->cache) { /* the response cache's result, and what a hit saved */
        buf_append_lit(b, ",\"cache\":\"");
        buf_append_str(b, r->cache);
        buf_append_lit(b, "\"");
        if (r->cache_saved_usd > 0) {
            buf_append_lit(b, ",\"cache_saved_usd\":");
            buf_printf(b, "%.9g", r->cache_saved_usd);
        }
    }
    if (r->soft_budget_exceeded) {
        buf_append_lit(b, ",\"soft_budget_exceeded\":\"");
        buf_append_str(b, r->soft_budget_exceeded);
        buf_append_lit(b, "\"");
    }
    if (r->ingress) {
        buf_append_lit(b, ",\"ingress\":\"");
        buf_append_str(b, r->ingress);
        buf_append_lit(b, "\"");
    }
    buf_append_lit(b, ",\"status\":");
    buf_append_int(b, r->status);
    buf_append_lit(b, ",\"bytes_in\":");
    buf_append_int(b, (long long)r->bytes_in);
    buf_append_lit(b, ",\"bytes_out\":");
    buf_append_int(b, (long long)r->bytes_out);
    buf_append_lit(b, ",\"ttfb_ms\":");
    buf_append_milli(b, ttfb_us);
    buf_append_lit(b, ",\"total_ms\":");
    buf_append_milli(b, total_us);
    if (r->stream)
        buf_append_lit(b, ",\"stream\":true");
    else
        buf_append_lit(b, ",\"stream\":false");
    if (r->usage.seen) {
        const record_usage *u = &r->usage;
        buf_append_lit(b, ",\"usage\":{\"prompt_tokens\":");
        buf_append_int(b, u->prompt);
        buf_append_lit(b, ",\"completion_tokens\":");
        buf_append_int(b, u->completion);
        buf_append_lit(b, ",\"cached_tokens\":");
        buf_append_int(b, u->cached);
        buf_append_lit(b, ",\"cache_write_tokens\":");
        buf_append_int(b, u->cache_write);
        buf_append_lit(b, ",\"reasoning_tokens\":");
        buf_append_int(b, u->reasoning);
        buf_append_lit(b, "}");
        if (r->cost_usd >= 0) {
            char usd[UNITS_DECIMAL_MAX];
            units_format_decimal(usd, r->cost_usd);
            buf_append_lit(b, ",\"cost_usd\":");
            buf_append_str(b, usd);
        }
    }
    if (r->technique) { /* a fixed name of aigw's */
        buf_append_lit(b, ",\"technique\":");
        buf_append_json_string(b, r->technique, strlen(r->technique));
    }
    if (r->route) {
        buf_append_lit(b, ",\"route\":");
        accesslog_string(b, r->route, strlen(r->route));
        buf_append_lit(b, ",\"attempts\":[");
        for (size_t i = 0; i < r->nattempts; i++) {
            const record_attempt *l = &r->attempts[i];
            buf_append_lit(b, "{\"provider\":");
            accesslog_string(b, l->provider, strlen(l->provider));
            buf_append_lit(b, ",\"model\":");
            accesslog_string(b, l->model, strlen(l->model));
            buf_append_lit(b, ",\"path\":");
            accesslog_string(b, l->path, strlen(l->path));
            if (l->step) {
                buf_append_lit(b, ",\"step\":");
                buf_append_json_string(b, l->step, strlen(l->step));
            }
            buf_append_lit(b, ",\"outcome\":\"");
            buf_append_str(b, l->outcome);
            buf_append_lit(b, "\"");
            if (l->status) {
                buf_append_lit(b, ",\"status\":");
                buf_append_int(b, l->status);
            }
            if (!l->skipped) {
                buf_append_lit(b, ",\"ms\":");
                buf_append_milli(b, llround(l->ms * 1000));
            }
            if (l->wait_ms) buf_printf(b, ",\"wait_ms\":%.0f", l->wait_ms);
            if (l->note) {
                buf_append_lit(b, ",\"note\":");
                accesslog_string(b, l->note, strlen(l->note));
            }
            buf_append(b, "},", i + 1 < r->nattempts ? 2 : 1);
        }
        buf_append_lit(b, "]");
        if (r->prompt_id) { /* an id the admin API or a prompt file checked: letters, digits, -_. */
            buf_append_lit(b, ",\"prompt\":");
            buf_append_json_string(b, r->prompt_id, strlen(r->prompt_id));
            buf_printf(b, ",\"prompt_version\":%lld", r->prompt_version);
        }
        if (r->route_reason) { /* made by aigw: numbers and the config's names */
            buf_append_lit(b, ",\"route_reason\":");
            buf_append_json_string(b, r->route_reason, strlen(r->route_reason));
        }
        if (r->route_note) { /* a fixed sentence */
            buf_append_lit(b, ",\"route_note\":");
            buf_append_json_string(b, r->route_note, strlen(r->route_note));
        }
    }
    if (r->dropped_params) {
        buf_append_lit(b, ",\"dropped_params\":");
        accesslog_string(b, r->dropped_params, strlen(r->dropped_params));
    }
    if (r->error) {
        buf_append_lit(b, ",\"error\":");
        accesslog_string(b, r->error, strlen(r->error));
    }
    buf_append_lit(b, "}\n");
    if (accesslog_line_done(w, start)) return;
    /* Too long even with every value capped (a route with hundreds of attempts): the line keeps
     * what identifies the request. */
    b = accesslog_line_begin(w);
    start = b->len;
    buf_printf(b, "{\"time\":\"%s\",\"request_id\":", when);
    accesslog_string(b, r->request_id, strlen(r->request_id));
    buf_printf(b,
               ",\"status\":%d,\"total_ms\":%.3f,\"error\":\"access-log line too long; details left out\"}\n",
               r->status, (double)total_us / 1000);
    accesslog_line_done(w, start);
}
