/* fuzz_top_metrics.c — libFuzzer target for `aigw top`'s reading of GET /metrics
 * (src/top/top_metrics.c): the text is whatever the server sent. Parsed, then everything the
 * overview does with it — rates against a second parse of a prefix, the percentiles, a
 * sparkline of the latencies — must stay in bounds (ASan) and hold its invariants: counts
 * within their bounds, a percentile either NAN or inside the histogram's finite bounds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "top/top_metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static top_scrape now, then;
    top_metrics_parse((const char *)data, size, &now);
    top_metrics_parse((const char *)data, size / 2, &then);
    if (now.ntargets > TOP_MAX_TARGETS || now.nproviders > TOP_MAX_PROVIDERS ||
        now.duration.n > TOP_MAX_BUCKETS || now.ttfb.n > TOP_MAX_BUCKETS)
        abort();
    for (size_t i = 0; i + 1 < now.duration.n; i++)
        if (!(now.duration.le[i] < now.duration.le[i + 1])) abort(); /* ascending, no duplicates */
    top_rates r;
    top_metrics_rates(&now, &then, 1.0, &r);
    double q = top_histogram_quantile(&now.duration, NULL, 0.95);
    if (!isnan(q) && (q < 0 && now.duration.le[0] >= 0)) abort();
    double lat[TOP_MAX_TARGETS];
    for (size_t i = 0; i < now.ntargets; i++)
        lat[i] = now.targets[i].ewma_s;
    char spark[TOP_MAX_TARGETS * 3 + 1];
    size_t n = top_sparkline(lat, now.ntargets, true, spark, sizeof spark);
    if (n >= sizeof spark || strlen(spark) != n) abort();
    return 0;
}
