/* units.h — numbers with units as the config file writes them: sizes ("64k", "16MiB") and
 * durations ("500ms", "10s", "2m", "1h"), and
 * costs written back as plain decimals.
 *
 * One spelling for the whole gateway: the config's settings and the route trees built from
 * `routes:` or a request's config header read durations through the same function, so a
 * value means the same wherever it is written. Pure functions, no allocation. */
#ifndef AIGW_UTIL_UNITS_H
#define AIGW_UTIL_UNITS_H

#include <stdbool.h>
#include <stddef.h>

/* A size in bytes: a bare number, or with a unit b, k/kb/kib, m/mb/mib, g/gb/gib (any case;
 * all powers of 1024). False when unreadable, negative, or past LLONG_MAX bytes. */
bool units_parse_size(const char *s, long long *bytes);

/* A duration in ms: a bare number of ms, or with a unit ms, s, m or h (lower case). False
 * when unreadable, negative, or past LLONG_MAX ms. */
bool units_parse_duration(const char *s, long long *ms);

/* The longest text units_format_decimal writes, with its NUL. */
#define UNITS_DECIMAL_MAX 32

/* v (a cost in USD) as a plain decimal, never in exponent notation: 12 places (picodollars),
 * trailing zeros and a bare point trimmed ("0.000009", "1.5", "0"). Clients and logs read it
 * as is; 9e-06 in a header surprises people. Beyond 1e15, or not finite, it falls back to %g
 * so the text stays bounded. Writes a NUL-terminated string to out (at least UNITS_DECIMAL_MAX
 * bytes) and returns its length. */
size_t units_format_decimal(char *out, double v);

#endif
