/* log.h — the gateway's own events (start, reload, drain, breaker changes, alerts, exporter
 * and store trouble) as lines on stderr: "aigw: message" for a person at a terminal (the
 * default), or one JSON object per line — {"time","level","event","msg"} — for a log shipper
 * (`log_format: json`). Each line is one write(2), so lines from different threads never
 * interleave. Requests are not events: they go to the access log. */
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

#endif
