/* log.h — the gateway's own events (start, reload, drain, breaker changes, alerts, exporter
 * and store trouble) as lines on stderr: "aigw: message" for a person at a terminal (the
 * default), or one JSON object per line — {"time","level","event","msg"} — for a log shipper
 * (`log_format: json`). Each line is one write(2), so lines from different threads never
 * interleave. Requests are not events: they go to the access log.
 *
 * A thread running an event loop (a worker) never writes itself: stderr may be a pipe whose
 * reader stalls, and a blocked write would stall every connection of the loop. Its lines go to
 * a bounded queue that a writer thread empties (log_writer_start); past the bound they are
 * dropped and counted, and the next line written says how many. */
#ifndef AIGW_UTIL_LOG_H
#define AIGW_UTIL_LOG_H

#include <stdbool.h>

typedef enum log_level { LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* JSON lines from now on (false: text). Any thread; set once at start. */
void log_set_json(bool json);
/* One event: event is a short stable name ("listening", "reload", "breaker_open"), the
 * message printf-formatted (at most 8 KiB; longer is cut). */
void log_event(log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The writer thread for loop threads' lines; log_writer_stop writes what is queued and joins
 * it. Called by the server around its workers' lives; without it every line is written at
 * once, by its caller. */
void log_writer_start(void);
void log_writer_stop(void);
/* This thread runs an event loop: its lines are queued while the writer runs. */
void log_thread_is_loop(void);

#endif
