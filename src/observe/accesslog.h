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

#include "util/buf.h"

typedef struct accesslog accesslog;
typedef struct accesslog_writer accesslog_writer;

/* target: "stdout", "stderr", "off" or a file path (opened for append). Returns NULL with a
 * message in err when the file cannot be opened. "off" returns a sink that writes nothing. */
accesslog *accesslog_open(const char *target, char *err, size_t errlen);
/* Writes what is queued, stops the thread and closes the file. Writers must be closed first. */
void accesslog_close(accesslog *log);
uint64_t accesslog_dropped(const accesslog *log);

/* A worker's handle; its timer lives on loop. */
accesslog_writer *accesslog_writer_new(accesslog *log, uv_loop_t *loop);
/* The buffer to append one line to, or NULL when logging is off. Append the whole line
 * (ending in '\n'), then call accesslog_line_done(). */
buf *accesslog_line_begin(accesslog_writer *w);
void accesslog_line_done(accesslog_writer *w, size_t line_start);
/* Hands the current batch over and closes the writer's timer (the loop frees the writer). */
void accesslog_writer_close(accesslog_writer *w);

#endif
