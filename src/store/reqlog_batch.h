/* reqlog_batch.h — many request log entries packed into one blob: how the request log keeps its
 * rows (store_reqlog.c), one database row a batch instead of one a request.
 *
 * Why: the database's own insert was most of what the request log cost a request — SQLite spent
 * about 12,000 instructions a 32-column row before any index (bench/RESULTS.md). A batch of a few
 * hundred requests as one row costs it a handful of page writes, and the encoding here is a
 * few hundred instructions a request. The queries (list, get, totals, trim) read the blobs back
 * and filter in C, so both backends answer alike.
 *
 * The blob: "RLB2", then entries one after another, each
 *   varint index (its place in the batch: the low 16 bits of the entry's seq)
 *   zigzag time_us less the previous entry's (the first's less 0), status, five token counts,
 *          retries, fallbacks, ttfb_us, total_us, overhead_us, prompt_version
 *   8 bytes cost_usd (IEEE 754, little-endian; negative: unknown), 1 byte stream
 *   and the strings: varint 0 for NULL, 1 for the previous entry's string in the same place,
 *   else length + 2, the bytes and a NUL
 * in the fixed order reqlog_batch.c writes. Strings are read in place (their NUL is checked), so
 * a reader makes no copy; an entry's key, team, path, route, provider and models are mostly its
 * neighbour's, so about half of an entry's bytes are not written at all. Blobs written before
 * ("RLB1": times whole, a string's varint its length + 1 and never a reference) are read alike. The blob
 * comes from a database another program could write (a shared PostgreSQL): every length is checked against
 * the blob's end, and a damaged blob is reported, never read past.
 *
 * Beside the blob, a Bloom filter of the batch's request ids (16 bits and 4 hashes an id: about
 * 0.3 % of batches read for nothing), so finding one request reads only its batch's data. */
#ifndef AIGW_STORE_REQLOG_BATCH_H
#define AIGW_STORE_REQLOG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/request_log.h"
#include "util/buf.h"

/* entries in one blob (their index fits 16 bits): 1,024 rather than 256 halved the store's
 * thread's CPU per request (a commit's pages and syscalls shared by four times the requests;
 * bench/RESULTS.md), for a blob of about 110 KB to read where a query needs one of its entries */
#define REQLOG_BATCH_ROWS_MAX 1024
#define REQLOG_BATCH_BYTES_MAX (1u << 20) /* a blob is closed past this (one entry may pass it) */
#define REQLOG_IDS_MAX_BYTES 2048         /* the Bloom filter's size at REQLOG_BATCH_ROWS_MAX */

/* An entry's seq from its batch's and its index. */
#define REQLOG_SEQ(batch_seq, index) ((int64_t)(((uint64_t)(batch_seq) << 16) | (uint64_t)(index)))
#define REQLOG_SEQ_BATCH(seq) ((seq) >> 16)

/* An entry's strings, in the order the blob keeps them. */
enum {
    RLB_REQUEST_ID,
    RLB_TRACE_ID,
    RLB_KEY_ID,
    RLB_KEY_ALIAS,
    RLB_TEAM,
    RLB_METHOD,
    RLB_PATH,
    RLB_ROUTE,
    RLB_PROVIDER,
    RLB_MODEL,
    RLB_UPSTREAM_MODEL,
    RLB_ERROR_CLASS,
    RLB_ERROR,
    RLB_CACHE,
    RLB_ATTEMPTS,
    RLB_REQUEST_BODY,
    RLB_PROMPT_ID,
    RLB_ROUTE_REASON,
    REQLOG_BATCH_STRINGS
};

typedef struct reqlog_batch_writer {
    buf data;
    uint64_t id_hashes[REQLOG_BATCH_ROWS_MAX];
    size_t n;
    int64_t ts_min, ts_max;
    /* the last entry's time, and where each of its strings' bytes are in data (len SIZE_MAX:
     * NULL): what the next entry refers to */
    int64_t last_time_us;
    size_t last_at[REQLOG_BATCH_STRINGS], last_len[REQLOG_BATCH_STRINGS];
} reqlog_batch_writer;

void reqlog_batch_init(reqlog_batch_writer *w);

/* Appends e as entry index (0..65535). False when the blob is full (REQLOG_BATCH_ROWS_MAX
 * entries, or past REQLOG_BATCH_BYTES_MAX with at least one): write it and reset. */
bool reqlog_batch_add(reqlog_batch_writer *w, const reqlog_entry *e, unsigned index);
/* The same with each string's length given (lens[RLB_…]; a NULL string's is not read), so its
 * bytes need no NUL: a worker packs straight from the request's own memory. e's request_id,
 * method, path and attempts are not NULL here. */
bool reqlog_batch_add_sized(reqlog_batch_writer *w, const reqlog_entry *e,
                            const size_t lens[REQLOG_BATCH_STRINGS], unsigned index);
bool reqlog_batch_full(const reqlog_batch_writer *w);
/* The batch's Bloom filter of request ids into out (REQLOG_IDS_MAX_BYTES); returns its size. */
size_t reqlog_batch_ids(const reqlog_batch_writer *w, uint8_t *out);
void reqlog_batch_reset(reqlog_batch_writer *w);
void reqlog_batch_free(reqlog_batch_writer *w);

/* FNV-1a, 64 bits: the Bloom filter's hash (its four probes are slices of it), and the
 * request log's totals' table's. */
uint64_t reqlog_batch_hash(const char *s);
/* Whether a batch whose filter is ids may hold request_id (false: it does not). */
bool reqlog_ids_may_hold(const void *ids, size_t len, const char *request_id);

/* One attempt of an entry's attempts list. */
typedef struct reqlog_attempt {
    const char *provider, *model, *step, *note, *role, *outcome; /* each may be NULL */
    int status;                                                  /* 0: none */
    double ms, wait_ms;
} reqlog_attempt;

/* An entry's attempts in their packed form — what a worker writes, about a third of their
 * JSON's bytes with nothing to escape:
 *   REQLOG_ATTEMPTS_PACKED, then per attempt provider, model, step, note, role and outcome as
 *   strings (varint 1: NULL, else varint length + 2 and the bytes), then status, ms and wait_ms
 *   (in thousandths) each as varint value + 1.
 * No byte of it is 0 (a varint of a value above 0 ends in a byte that is not; the strings are C
 * strings), so it is an entry's string like any other. Entries written before it, or through
 * store_reqlog_write by callers that have JSON, hold the attempts' JSON array as text instead,
 * which begins with '['; reqlog_attempts_json (request_log.h) reads both. */
#define REQLOG_ATTEMPTS_PACKED '\x01'

/* out emptied and started as a packed attempts list. */
void reqlog_attempts_start(buf *out);
/* a appended to the packed list in out; false past out's maximum. */
bool reqlog_attempts_add(buf *out, const reqlog_attempt *a);

typedef struct reqlog_batch_reader {
    const uint8_t *p, *end;
    int64_t batch_seq;
    bool v1; /* an "RLB1" blob */
    int64_t last_time_us;
    const char *last[REQLOG_BATCH_STRINGS]; /* the last entry's strings, for references */
    size_t entries;                         /* read so far */
} reqlog_batch_reader;

/* False when data is not a batch blob. */
bool reqlog_batch_open(reqlog_batch_reader *r, const void *data, size_t len, int64_t batch_seq);
/* The next entry into *e (its strings point into the blob): 1, 0 at the end, -1 when the blob is
 * damaged. */
int reqlog_batch_next(reqlog_batch_reader *r, reqlog_entry *e);

#endif
