/* index_bench.c — how long a semantic lookup takes (src/cache/cache_index.c: brute force over
 * packed float vectors), at the sizes docs/cache.md talks of, and what a vector costs in memory.
 *
 * The worst case is measured: every vector in the one bucket the query asks (one namespace, one
 * model, one system prompt), so a lookup is a dot product with each. Random unit vectors; the
 * query is one of them, slightly moved. For each size and dimension count: the median and the
 * 99th percentile of LOOKUPS lookups on one core, and the index's bytes per vector.
 *
 *   make bench-index && build/bench/index_bench            (or: build/bench/index_bench 1536)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"

#define LOOKUPS 200

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(size_t n, uint32_t dims)
{
    cache_index *ix = cache_index_new(n, (size_t)1 << 40);
    uint8_t bucket[CACHE_KEY_BYTES] = {7}, key[CACHE_KEY_BYTES] = {0}, got[CACHE_KEY_BYTES];
    float *v = malloc(dims * sizeof *v), *q = malloc(dims * sizeof *q);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t d = 0; d < dims; d++)
            v[d] = rnd();
        cache_index_normalize(v, dims);
        memcpy(key, &i, sizeof i);
        cache_index_insert(ix, bucket, key, v, dims, 0, 3600000);
    }
    double us[LOOKUPS];
    size_t hits = 0;
    for (int l = 0; l < LOOKUPS; l++) {
        for (uint32_t d = 0; d < dims; d++)
            q[d] = v[d] + 0.01f * rnd();
        cache_index_normalize(q, dims);
        float sim;
        uint64_t t0 = now_ns();
        hits += cache_index_nearest(ix, bucket, q, dims, 1, 0.95f, got, &sim);
        us[l] = (double)(now_ns() - t0) / 1000.0;
    }
    qsort(us, LOOKUPS, sizeof us[0], cmp);
    size_t entries, bytes;
    cache_index_stats(ix, &entries, &bytes, NULL);
    printf("%8zu vectors × %4u dims: lookup median %9.1f µs, p99 %9.1f µs; %6.0f bytes per vector "
           "(%zu MiB in all); %zu/%d found\n",
           n, dims, us[LOOKUPS / 2], us[LOOKUPS * 99 / 100], (double)bytes / (double)entries, bytes >> 20,
           hits, LOOKUPS);
    free(v);
    free(q);
    cache_index_free(ix);
}

int main(int argc, char **argv)
{
    uint32_t only = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 0;
    const uint32_t dims[] = {256, 768, 1536};
    const size_t sizes[] = {1000, 10000, 100000};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        if (only && dims[d] != only) continue;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run(sizes[s], dims[d]);
    }
    return 0;
}
