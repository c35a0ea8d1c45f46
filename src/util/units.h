/* units.h — numbers with units as the config file writes them: sizes ("64k", "16MiB") and
 * durations ("500ms", "10s", "2m", "1h").
 *
 * One spelling for the whole gateway: the config's settings and the route trees built from
 * `routes:` or a request's config header read durations through the same function, so a
 * value means the same wherever it is written. Pure functions, no allocation. */
#ifndef AIGW_UTIL_UNITS_H
#define AIGW_UTIL_UNITS_H

#include <stdbool.h>

/* A size in bytes: a bare number, or with a unit b, k/kb/kib, m/mb/mib, g/gb/gib (any case;
 * all powers of 1024). False when unreadable, negative, or past LLONG_MAX bytes. */
bool units_parse_size(const char *s, long long *bytes);

/* A duration in ms: a bare number of ms, or with a unit ms, s, m or h (lower case). False
 * when unreadable, negative, or past LLONG_MAX ms. */
bool units_parse_duration(const char *s, long long *ms);

#endif
