/* units.c — sizes and durations as the config writes them (units.h).
 *
 * A number is read with strtoll (base 10, no sign accepted in the result, no overflow), the
 * rest of the string must be exactly one known unit. Multiplying checks for overflow first,
 * so "9223372036854775807h" is refused rather than wrapped. */
#include "util/units.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The leading number of s and where its unit starts; false for no digits, overflow or < 0. */
static bool number_with_unit(const char *s, long long *out, const char **unit)
{
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) return false;
    *out = v;
    *unit = end;
    return true;
}

static bool scale(long long v, long long mul, long long *out)
{
    if (v > LLONG_MAX / mul) return false;
    *out = v * mul;
    return true;
}

bool units_parse_size(const char *s, long long *bytes)
{
    const char *u;
    long long v, mul;
    if (!number_with_unit(s, &v, &u)) return false;
    if (!*u || !strcasecmp(u, "b"))
        mul = 1;
    else if (!strcasecmp(u, "k") || !strcasecmp(u, "kb") || !strcasecmp(u, "kib"))
        mul = 1024;
    else if (!strcasecmp(u, "m") || !strcasecmp(u, "mb") || !strcasecmp(u, "mib"))
        mul = 1024 * 1024;
    else if (!strcasecmp(u, "g") || !strcasecmp(u, "gb") || !strcasecmp(u, "gib"))
        mul = 1024LL * 1024 * 1024;
    else
        return false;
    return scale(v, mul, bytes);
}

bool units_parse_duration(const char *s, long long *ms)
{
    const char *u;
    long long v, mul;
    if (!number_with_unit(s, &v, &u)) return false;
    if (!*u || !strcmp(u, "ms"))
        mul = 1;
    else if (!strcmp(u, "s"))
        mul = 1000;
    else if (!strcmp(u, "m"))
        mul = 60 * 1000;
    else if (!strcmp(u, "h"))
        mul = 3600 * 1000;
    else
        return false;
    return scale(v, mul, ms);
}

size_t units_format_decimal(char *out, double v)
{
    int n;
    if (!(v > -1e15 && v < 1e15)) /* also NaN */
        n = snprintf(out, UNITS_DECIMAL_MAX, "%g", v);
    else
        n = snprintf(out, UNITS_DECIMAL_MAX, "%.12f", v);
    if (n < 0) n = 0;
    if (n >= UNITS_DECIMAL_MAX) n = UNITS_DECIMAL_MAX - 1;
    if (memchr(out, '.', (size_t)n) && !memchr(out, 'e', (size_t)n)) {
        while (n > 0 && out[n - 1] == '0')
            n--;
        if (n > 0 && out[n - 1] == '.') n--;
    }
    if (n == 2 && out[0] == '-' && out[1] == '0') n = 1, out[0] = '0'; /* -0.0000000000001 */
    out[n] = '\0';
    return (size_t)n;
}
