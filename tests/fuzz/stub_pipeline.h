/* stub_pipeline.h — a stand-in for the pipeline (the server's http_app) under fuzz_conn.c.
 *
 * It answers each request the way the fuzzer's decision bytes say (at once, later from a
 * timer, as a chunked stream written over several loop turns with backpressure, or never)
 * and aborts the process when the connection code breaks the pipeline's contract: a request
 * handed over twice, aborted or recorded when it was not in the pipeline's hands, woken for
 * writing after it ended, or freed while still handled. */
#ifndef AIGW_TESTS_FUZZ_STUB_PIPELINE_H
#define AIGW_TESTS_FUZZ_STUB_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server/server.h"

/* The table fuzz_conn's worker serves. */
extern const http_app stub_app;

/* Once per process: the loop the stub's timers live on. */
void stub_pipeline_init(uv_loop_t *loop);
/* Before each input: the decision bytes, used in turn (cycling; none: always "answer now"). */
void stub_pipeline_start(const uint8_t *decisions, size_t len);
/* No request is being handled and no stub timer is pending. */
bool stub_pipeline_quiet(void);
/* After each input, once every connection has closed: every request object the server
 * prepared was released (aborts otherwise). */
void stub_pipeline_check_end(void);
/* Requests the server aborted (its client went while it was handled) since the input began. */
unsigned stub_pipeline_aborts(void);
/* The handle is one of the stub's own timers (kept across inputs). */
bool stub_pipeline_owns(const uv_handle_t *handle);

#endif
