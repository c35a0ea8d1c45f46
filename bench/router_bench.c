/* router_bench.c — the learned router's decision time: features + score, per prompt.
 *
 *   router-bench MODEL EXAMPLES.jsonl [ROUNDS]      (make router-bench DATA=…)
 *
 * Reads the prompts of tools/router_data.py's examples (RouteLLM's MMLU, GSM8K and MT-Bench
 * prompts: short questions to long passages), then times router_model_decide — the whole
 * decision as plan_router.c makes it, given the last user turn — once per prompt per round with
 * CLOCK_MONOTONIC, and prints the percentiles. What it leaves out: reading the canonical form
 * (the request's JSON, parsed once whoever asks; a Claude Code body costs far more to parse
 * than to score), which the access log's decide_us leaves out too. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/router.h"
#include "util/alloc.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL EXAMPLES.jsonl [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
    char err[512];
    router_model *m = router_model_load(argv[1], err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    router_input *in = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    while ((len = getline(&line, &linecap, f)) > 0) {
        json_t *j = json_loadb(line, (size_t)len, 0, NULL);
        json_t *text = json_object_get(j, "text");
        if (!json_is_string(text)) {
            json_decref(j);
            continue;
        }
        if (n == cap) in = xrealloc(in, (cap = cap ? cap * 2 : 1024) * sizeof *in);
        json_int_t turns = json_integer_value(json_object_get(j, "turns"));
        in[n++] = (router_input){.text = xstrndup(json_string_value(text), json_string_length(text)),
                                 .len = json_string_length(text),
                                 .turns = turns > 0 ? (uint32_t)turns : 1};
        bytes += json_string_length(text);
        json_decref(j);
    }
    free(line);
    fclose(f);
    size_t total = n * (size_t)rounds, k = 0;
    uint64_t *t = xmalloc(total * sizeof *t);
    double sink = 0;
    for (size_t i = 0; i < n && i < 1000; i++) /* warm the caches as a serving worker's are */
        sink += router_model_decide(m, &in[i]);
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i++) {
            uint64_t a = now_ns();
            sink += router_model_decide(m, &in[i]);
            t[k++] = now_ns() - a;
        }
    qsort(t, total, sizeof *t, cmp_u64);
    printf("decisions: %zu (%zu prompts, mean %zu bytes, %d rounds)\n", total, n, n ? bytes / n : 0, rounds);
    printf("p50 %.2f us  p90 %.2f us  p99 %.2f us  p99.9 %.2f us  max %.2f us\n", t[total / 2] / 1e3,
           t[total * 9 / 10] / 1e3, t[total * 99 / 100] / 1e3, t[total * 999 / 1000] / 1e3,
           t[total - 1] / 1e3);
    fprintf(stderr, "(checksum %.3f)\n", sink);
    router_model_free(m);
    return 0;
}
