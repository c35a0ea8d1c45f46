/* log.c — event lines on stderr, text or JSON (log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/timeutil.h"

static atomic_bool json_lines;

void log_set_json(bool json)
{
    atomic_store(&json_lines, json);
}

/* s as the inside of a JSON string into out (room for len bytes, NUL included); cut to fit. */
static size_t json_escape(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[*p >> 4];
            out[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
    return n;
}

void log_event(log_level level, const char *event, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[20480];
    int n;
    if (!atomic_load(&json_lines)) {
        n = snprintf(line, sizeof line, "aigw: %s\n", msg);
    } else {
        static const char *const levels[] = {"info", "warn", "error"};
        char when[40], escaped[16384];
        time_format_utc(when, sizeof when);
        json_escape(escaped, sizeof escaped, msg);
        n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"msg\":\"%s\"}\n", when,
                     levels[level], event, escaped);
    }
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (line[len - 1] != '\n') line[len - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere to report a failing stderr */
}
