/* log.c — event lines on stderr, text or JSON, and the queue that keeps loop threads from
 * writing them themselves (log.h). */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/timeutil.h"

static atomic_bool json_lines;

#define LOG_QUEUE_MAX 256 /* lines waiting for the writer; past it they are dropped, counted */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stopping;
    char *lines[LOG_QUEUE_MAX];
    size_t lens[LOG_QUEUE_MAX];
    size_t head, count;
    unsigned long dropped;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local bool on_loop_thread;

static void write_line(const char *line, size_t len)
{
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere to report a failing stderr */
}

/* false when the writer is not running: the caller writes the line itself */
static bool queue_line(const char *line, size_t len)
{
    pthread_mutex_lock(&queue.lock);
    bool running = queue.running;
    if (running && queue.count == LOG_QUEUE_MAX) {
        queue.dropped++;
    } else if (running) {
        char *copy = malloc(len);
        if (copy) {
            memcpy(copy, line, len);
            size_t tail = (queue.head + queue.count) % LOG_QUEUE_MAX;
            queue.lines[tail] = copy;
            queue.lens[tail] = len;
            queue.count++;
            pthread_cond_signal(&queue.wake);
        } else {
            queue.dropped++;
        }
    }
    pthread_mutex_unlock(&queue.lock);
    return running;
}

void log_set_json(bool json)
{
    atomic_store(&json_lines, json);
}

/* s as the inside of a JSON string into out (room for len bytes, NUL included); cut to fit. */
static size_t json_escape(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[*p >> 4];
            out[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
    return n;
}

void log_event(log_level level, const char *event, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[20480];
    int n;
    if (!atomic_load(&json_lines)) {
        n = snprintf(line, sizeof line, "aigw: %s\n", msg);
    } else {
        static const char *const levels[] = {"info", "warn", "error"};
        char when[40], escaped[16384];
        time_format_utc(when, sizeof when);
        json_escape(escaped, sizeof escaped, msg);
        n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"msg\":\"%s\"}\n", when,
                     levels[level], event, escaped);
    }
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (line[len - 1] != '\n') line[len - 1] = '\n';
    if (!on_loop_thread || !queue_line(line, len)) write_line(line, len);
}

/* ---- the queue for loop threads ---- */

void log_thread_is_loop(void)
{
    on_loop_thread = true;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "aigw-events");
    pthread_mutex_lock(&queue.lock);
    for (;;) {
        while (!queue.count && !queue.stopping)
            pthread_cond_wait(&queue.wake, &queue.lock);
        if (!queue.count) break; /* stopping, and everything is written */
        char *line = queue.lines[queue.head];
        size_t len = queue.lens[queue.head];
        unsigned long dropped = queue.dropped;
        queue.dropped = 0;
        queue.head = (queue.head + 1) % LOG_QUEUE_MAX;
        queue.count--;
        pthread_mutex_unlock(&queue.lock);
        if (dropped) {
            char note[96];
            int k = snprintf(note, sizeof note, "aigw: %lu event line%s dropped: stderr was not keeping up\n",
                             dropped, dropped == 1 ? "" : "s");
            write_line(note, (size_t)k);
        }
        write_line(line, len);
        free(line);
        pthread_mutex_lock(&queue.lock);
    }
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

void log_writer_start(void)
{
    pthread_mutex_lock(&queue.lock);
    queue.stopping = false;
    queue.running = pthread_create(&queue.thread, NULL, writer_main, NULL) == 0;
    pthread_mutex_unlock(&queue.lock);
}

void log_writer_stop(void)
{
    pthread_mutex_lock(&queue.lock);
    bool running = queue.running;
    queue.running = false; /* lines from now on are written by their callers */
    queue.stopping = true;
    pthread_cond_signal(&queue.wake);
    pthread_mutex_unlock(&queue.lock);
    if (running) pthread_join(queue.thread, NULL);
}
