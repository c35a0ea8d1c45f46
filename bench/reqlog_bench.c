/* reqlog_bench.c — the request log's queries on a large store (make reqlog-bench N=…): N entries
 * (1,000,000 by default: request_log.max_rows's default) written through store_reqlog_write in
 * batches of 512, a worker's batch, then every kind of query the admin API makes, each timed on
 * the wall clock, best of a few. It links src/store's objects, so the same program, built in an
 * older checkout, measures that build's layout (bench/RESULTS.md compares the two). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/request_log.h"
#include "store/store.h"

#define T0 1796585231000000LL
#define KEYS 100

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int seen;
static void on_row(const reqlog_entry *e, void *ud)
{
    seen++;
}
static void on_group(const char *g, const reqlog_totals *t, void *ud)
{
    seen++;
}

/* Entry j of the synthetic log: a request a millisecond, 100 keys in turn, a third on another
 * provider, 2 % failed with an upstream's error. */
static reqlog_entry entry(long j, char *id, size_t idlen, char keys[KEYS][16])
{
    static const char attempts[] = "[{\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"role\":\"first\","
                                   "\"outcome\":\"ok\",\"status\":200,\"ms\":312.5,\"wait_ms\":0}]";
    snprintf(id, idlen, "req-%08ld", j);
    bool failed = j % 50 == 49;
    return (reqlog_entry){.time_us = T0 + j * 1000,
                          .request_id = id,
                          .trace_id = "0af7651916cd43dd8448eb211c80319c",
                          .key_id = keys[j % KEYS],
                          .key_alias = "alias",
                          .method = "POST",
                          .path = "/v1/chat/completions",
                          .route = "gpt-4o-mini",
                          .provider = j % 3 ? "openai" : "anthropic",
                          .model = j % 3 ? "gpt-4o-mini" : "claude-3-5-haiku",
                          .upstream_model = "gpt-4o-mini-2024-07-18",
                          .status = failed ? 502 : 200,
                          .error_class = failed ? "upstream_error" : NULL,
                          .error = failed ? "provider openai answered 502 (upstream_error)" : NULL,
                          .prompt_tokens = 120,
                          .completion_tokens = 40,
                          .cost_usd = 0.00012,
                          .cache = "MISS",
                          .ttfb_us = 250000,
                          .total_us = 312500 + j % 1000,
                          .overhead_us = 40,
                          .attempts = attempts};
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: reqlog-bench FILE.db [N]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    char err[512];
    unlink(argv[1]);
    store *s = store_open(argv[1], err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static char ids[512][32], keys[KEYS][16];
    for (int k = 0; k < KEYS; k++)
        snprintf(keys[k], sizeof keys[k], "key_%02d", k);
    static reqlog_entry rows[512];
    const reqlog_entry *ptrs[512];
    double t = now_ms();
    for (long done = 0; done < n;) {
        int m = n - done < 512 ? (int)(n - done) : 512;
        for (int i = 0; i < m; i++) {
            rows[i] = entry(done + i, ids[i], sizeof ids[i], keys);
            ptrs[i] = &rows[i];
        }
        if (store_reqlog_write(s, ptrs, (size_t)m) != STORE_OK) {
            fprintf(stderr, "write: %s\n", store_error(s));
            return 1;
        }
        done += m;
    }
    double ms = now_ms() - t;
    printf("| write %ld entries, 512 a call | %.0f ms (%.2f µs an entry) |\n", n, ms, ms * 1000 / (double)n);
    struct {
        const char *name;
        reqlog_filter f;
    } lists[] = {
        {"a page of 50, newest", {.limit = 50}},
        {"… of one key of 100", {.limit = 50, .key = "key_42"}},
        {"… of errors (2 %)", {.limit = 50, .status_min = 500, .status_max = 599}},
        {"… by error text", {.limit = 50, .error_text = "ANSWERED 502"}},
        {"… of a key with no requests (every entry read)", {.limit = 50, .key = "key_none"}},
    };
    for (size_t q = 0; q < sizeof lists / sizeof lists[0]; q++) {
        double best = 1e18;
        for (int r = 0; r < 3; r++) {
            seen = 0;
            t = now_ms();
            if (store_reqlog_list(s, &lists[q].f, on_row, NULL) != STORE_OK) {
                fprintf(stderr, "list: %s\n", store_error(s));
                return 1;
            }
            if (now_ms() - t < best) best = now_ms() - t;
        }
        printf("| list: %s | %.2f ms (%d) |\n", lists[q].name, best, seen);
    }
    char oldest[32], newest[32];
    snprintf(oldest, sizeof oldest, "req-%08ld", 7L);
    snprintf(newest, sizeof newest, "req-%08ld", n - 10);
    const char *gets[] = {newest, oldest, "no-such-request"};
    for (int q = 0; q < 3; q++) {
        double best = 1e18;
        for (int r = 0; r < 3; r++) {
            seen = 0;
            t = now_ms();
            store_reqlog_get(s, gets[q], on_row, NULL);
            if (now_ms() - t < best) best = now_ms() - t;
        }
        printf("| get %s | %.2f ms (%d) |\n", gets[q], best, seen);
    }
    const char *bys[] = {"model", "key", "hour"};
    for (int q = 0; q < 3; q++) {
        double best = 1e18;
        bool sampled;
        for (int r = 0; r < 2; r++) {
            seen = 0;
            t = now_ms();
            if (store_reqlog_aggregate(s, bys[q], 0, 0, on_group, NULL, &sampled) != STORE_OK) {
                fprintf(stderr, "aggregate: %s\n", store_error(s));
                return 1;
            }
            if (now_ms() - t < best) best = now_ms() - t;
        }
        printf("| totals by %s, every entry | %.2f ms (%d groups) |\n", bys[q], best, seen);
    }
    int64_t deleted, deleted_feedback;
    t = now_ms();
    store_reqlog_trim(s, 0, n - 10000, 10000, &deleted, &deleted_feedback);
    printf("| retention by count, 10,000 oldest | %.2f ms (%lld) |\n", now_ms() - t, (long long)deleted);
    t = now_ms();
    store_reqlog_trim(s, T0 + 20000 * 1000LL + 500, 0, 10000, &deleted, &deleted_feedback);
    printf("| retention by age, 10,000 (a batch cut) | %.2f ms (%lld) |\n", now_ms() - t, (long long)deleted);
    store_close(s);
    struct stat st;
    if (!stat(argv[1], &st)) printf("| the file | %lld bytes |\n", (long long)st.st_size);
    return 0;
}
