/* accesslog.h — one JSON line per request, written without blocking any event loop.
 *
 * Each worker appends lines to its own batch buffer (no lock); a batch is handed to the one
 * writer thread when it passes 32 KiB or 100 ms after its first line, through a bounded
 * queue. The writer does the blocking write(2). When the queue is full the batch is dropped
 * and its lines counted; the count is reported on stderr at shutdown (and, later, in metrics)
 * — never silently lost. */
#ifndef AIGW_OBSERVE_ACCESSLOG_H
#define AIGW_OBSERVE_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "observe/record.h"
#include "util/buf.h"

typedef struct accesslog accesslog;
typedef struct accesslog_writer accesslog_writer;

/* target: "stdout", "stderr", "off" or a file path (opened for append). Returns NULL with a
 * message in err when the file cannot be opened. "off" returns a sink that writes nothing. */
accesslog *accesslog_open(const char *target, char *err, size_t errlen);
/* Writes what is queued, stops the thread and closes the file. Writers must be closed first. */
void accesslog_close(accesslog *log);
uint64_t accesslog_dropped(const accesslog *log);
/* Log rotation (SIGUSR1): the file target is opened again by its path, so after a rename the
 * lines go to a new file there. Returns at once: the writer thread does the open(2) before
 * its next write (an event loop never waits on the file system) and closes the old file only
 * once the new one is open; when the open fails, the old file keeps the lines and the reason
 * goes to stderr. Nothing to do for stdout, stderr or off. Any thread. */
void accesslog_reopen(accesslog *log);

/* A worker's handle; its timer lives on loop. */
accesslog_writer *accesslog_writer_new(accesslog *log, uv_loop_t *loop);
/* A line has at least this much room in its batch; one that needs more is dropped whole. */
#define ACCESSLOG_LINE_MAX (256 * 1024)
/* Bytes of one value a line carries: longer ones are cut with a marker. */
#define ACCESSLOG_FIELD_MAX 1024

/* The buffer to append one line to, or NULL when logging is off. Append the whole line
 * (ending in '\n'), then call accesslog_line_done(), which returns false when the line did not
 * fit and was dropped whole (never half a line: the log stays one JSON object per line). */
buf *accesslog_line_begin(accesslog_writer *w);
bool accesslog_line_done(accesslog_writer *w, size_t line_start);
/* Appends s as a JSON string, cut at ACCESSLOG_FIELD_MAX bytes (on a UTF-8 boundary) with
 * "…[+N bytes]" at the end when it is longer: a value a client chose cannot bloat a line. */
void accesslog_string(buf *b, const char *s, size_t len);
/* The line of one finished request (what the pipeline's access-log observer writes). */
void accesslog_record(accesslog_writer *w, const exchange_record *r);
/* Hands the current batch over and closes the writer's timer (the loop frees the writer). */
void accesslog_writer_close(accesslog_writer *w);

#endif
