/* record.c — the RECORD phase's access log: an observer writing one JSON line per request.
 *
 * The line is observe/accesslog.c's (from the exchange's summary, observe/record.h); this
 * stage only gives it a place in the table: the log file is opened before the workers start,
 * each worker gets its own batching writer, and every finished request's summary goes to it. */
#include <stdio.h>

#include "observe/accesslog.h"
#include "pipeline/stages.h"
#include "server/worker.h"

static accesslog *access_log;

static bool accesslog_start(const aigw_config *cfg, char *err, size_t errlen)
{
    access_log = accesslog_open(cfg->access_log, err, errlen);
    return access_log != NULL;
}

static void accesslog_stop(void)
{
    accesslog_close(access_log);
    access_log = NULL;
}

static void accesslog_reopen_file(void)
{
    accesslog_reopen(access_log);
}

uint64_t accesslog_stage_dropped(void)
{
    return access_log ? accesslog_dropped(access_log) : 0;
}

static void *accesslog_worker_init(worker *w)
{
    return accesslog_writer_new(access_log, &w->loop);
}

static void accesslog_worker_close(void *writer)
{
    accesslog_writer_close(writer);
}

static void accesslog_on_record(const exchange_record *r, void *writer)
{
    accesslog_record(writer, r);
}

const stage stage_accesslog = {
    .name = "accesslog",
    .phase = PHASE_RECORD,
    .start = accesslog_start,
    .stop = accesslog_stop,
    .worker_init = accesslog_worker_init,
    .worker_close = accesslog_worker_close,
    .on_record = accesslog_on_record,
    .reopen = accesslog_reopen_file,
};
