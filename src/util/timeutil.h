/* timeutil.h — clocks. Monotonic nanoseconds for durations; wall time only for log stamps. */
#ifndef AIGW_UTIL_TIMEUTIL_H
#define AIGW_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline uint64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes the current UTC time as 2026-11-22T15:04:05.123Z into out (at least 32 bytes). */
static inline size_t time_format_utc(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n + (m > 0 ? (size_t)m : 0);
}

#endif
