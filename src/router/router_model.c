/* router_model.c — the learned router's model file: parsed once, scored per request.
 *
 * The file is text, line by line ('#' lines are comments: how and on what it was trained):
 *
 *   aigw-router-model 1             the format's version
 *   name lr                         the router's name in `router-<name>-<threshold>`
 *   features 1                      ROUTER_FEATURES_VERSION the weights were trained for
 *   bits 16                         2^bits hashed buckets
 *   bias -1.25                      the logistic regression's intercept
 *   dense 13 w0 … w12               one weight per dense feature (router_dense_names' order)
 *   hash_scale 0.0031               a bucket's weight = its signed byte × hash_scale
 *   calibration 101 t0 … t100       t_p: the score at or above which p % of the training
 *                                   prompts lie (non-increasing)
 *   weights                         then 2^bits signed bytes in hex (two's complement), 64 a line
 *   end
 *
 * Bucket weights are quantized to one byte (the evaluation scores with the same bytes): a 2^16
 * model is 64 KiB in memory — it stays in a core's L2 cache, which is what keeps a decision
 * within its few microseconds — and about 130 KiB on disk. Rejected: a binary file (nothing
 * gained at this size, and a text file is read and diffed by people), float weights in text
 * (eight times the file for no measurable difference in the scores).
 *
 * The file is the operator's input, parsed strictly: every field once and in order, numbers
 * finite, exactly 2^bits weights, nothing after `end`; errors name the line
 * (tests/unit/test_router_model.c, tests/fuzz/fuzz_router.c). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"
#include "util/alloc.h"

#define ROUTER_MODEL_FILE_MAX (8u << 20)
#define ROUTER_NAME_MAX 32
#define CALIBRATION_POINTS 101

struct router_model {
    char name[ROUTER_NAME_MAX + 1];
    unsigned bits;
    double bias;
    double dense[ROUTER_DENSE];
    double hash_scale;
    double calibration[CALIBRATION_POINTS];
    int8_t *weights;
};

typedef struct reader {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
} reader;

static bool fail(reader *r, const char *fmt, ...)
{
    int n = snprintf(r->err, r->errlen, "line %d: ", r->line);
    if (n < 0 || (size_t)n >= r->errlen) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* The next line that is not a comment nor blank, NUL-terminated in buf. */
static bool next_line(reader *r, char *buf, size_t cap)
{
    while (r->p < r->end) {
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        size_t len = nl ? (size_t)(nl - r->p) : (size_t)(r->end - r->p);
        const char *start = r->p;
        r->p = nl ? nl + 1 : r->end;
        r->line++;
        if (len && start[len - 1] == '\r') len--;
        if (!len || start[0] == '#') continue;
        if (len >= cap) return fail(r, "too long");
        if (memchr(start, '\0', len)) return fail(r, "holds a NUL byte");
        memcpy(buf, start, len);
        buf[len] = '\0';
        return true;
    }
    r->line++;
    return fail(r, "the file ends early");
}

static bool number(reader *r, const char **s, double *out, const char *what)
{
    char *end;
    errno = 0;
    while (**s == ' ')
        (*s)++;
    double v = strtod(*s, &end);
    if (end == *s || errno || !isfinite(v) || (*end && *end != ' '))
        return fail(r, "%s: expected a finite number", what);
    *s = end;
    *out = v;
    return true;
}

static bool keyword(reader *r, const char *line, const char *key, const char **rest)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) || (line[n] != ' ' && line[n] != '\0')) return fail(r, "expected '%s'", key);
    *rest = line + n;
    return true;
}

static bool at_end(reader *r, const char *s)
{
    while (*s == ' ')
        s++;
    return *s ? fail(r, "unexpected text after the values") : true;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool parse(reader *r, router_model *m)
{
    char line[4096];
    const char *s;
    double v;
    if (!next_line(r, line, sizeof line)) return false;
    if (strcmp(line, "aigw-router-model 1"))
        return fail(r, "not an aigw router model of format 1 (the first line must be 'aigw-router-model 1')");
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "name", &s)) return false;
    while (*s == ' ')
        s++;
    size_t nlen = strlen(s);
    if (!nlen || nlen > ROUTER_NAME_MAX) return fail(r, "name: 1 to %d characters", ROUTER_NAME_MAX);
    for (size_t i = 0; i < nlen; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return fail(r, "name: lower-case letters, digits and '_' only (it is part of model names)");
    memcpy(m->name, s, nlen + 1);
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "features", &s) ||
        !number(r, &s, &v, "features") || !at_end(r, s))
        return false;
    if (v != ROUTER_FEATURES_VERSION)
        return fail(r,
                    "features: the model was trained on features version %g; this aigw computes version %d",
                    v, ROUTER_FEATURES_VERSION);
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "bits", &s) || !number(r, &s, &v, "bits") ||
        !at_end(r, s))
        return false;
    if (v != floor(v) || v < ROUTER_BITS_MIN || v > ROUTER_BITS_MAX)
        return fail(r, "bits: an integer from %d to %d", ROUTER_BITS_MIN, ROUTER_BITS_MAX);
    m->bits = (unsigned)v;
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "bias", &s) ||
        !number(r, &s, &m->bias, "bias") || !at_end(r, s))
        return false;
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "dense", &s) || !number(r, &s, &v, "dense"))
        return false;
    if (v != ROUTER_DENSE) return fail(r, "dense: this aigw has %d dense features", ROUTER_DENSE);
    for (int i = 0; i < ROUTER_DENSE; i++)
        if (!number(r, &s, &m->dense[i], "dense")) return false;
    if (!at_end(r, s)) return false;
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "hash_scale", &s) ||
        !number(r, &s, &m->hash_scale, "hash_scale") || !at_end(r, s))
        return false;
    if (!next_line(r, line, sizeof line) || !keyword(r, line, "calibration", &s) ||
        !number(r, &s, &v, "calibration"))
        return false;
    if (v != CALIBRATION_POINTS)
        return fail(r, "calibration: %d points (0 %% to 100 %%)", CALIBRATION_POINTS);
    for (int i = 0; i < CALIBRATION_POINTS; i++) {
        if (!number(r, &s, &m->calibration[i], "calibration")) return false;
        if (m->calibration[i] < 0 || m->calibration[i] > 1 ||
            (i && m->calibration[i] > m->calibration[i - 1]))
            return fail(r, "calibration: scores in [0, 1], non-increasing");
    }
    if (!at_end(r, s)) return false;
    if (!next_line(r, line, sizeof line)) return false;
    if (strcmp(line, "weights")) return fail(r, "expected 'weights'");
    size_t total = (size_t)1 << m->bits, have = 0;
    m->weights = xmalloc(total);
    while (have < total) {
        if (!next_line(r, line, sizeof line)) return false;
        size_t len = strlen(line);
        if (len % 2 || len / 2 > total - have)
            return fail(r, "weights: pairs of hex digits, %zu in all", total);
        for (size_t i = 0; i < len; i += 2) {
            int hi = hex(line[i]), lo = hex(line[i + 1]);
            if (hi < 0 || lo < 0) return fail(r, "weights: not a hex digit");
            m->weights[have++] = (int8_t)(uint8_t)(hi << 4 | lo);
        }
    }
    if (!next_line(r, line, sizeof line)) return false;
    if (strcmp(line, "end")) return fail(r, "expected 'end' after %zu weights", total);
    char rest[8];
    if (next_line(r, rest, sizeof rest)) return fail(r, "text after 'end'");
    r->err[0] = '\0';
    return true;
}

router_model *router_model_parse(const char *text, size_t len, char *err, size_t errlen)
{
    router_model *m = xcalloc(1, sizeof *m);
    reader r = {.p = text, .end = text + len, .err = err, .errlen = errlen};
    if (len > ROUTER_MODEL_FILE_MAX) {
        snprintf(err, errlen, "larger than %u bytes: not a router model", ROUTER_MODEL_FILE_MAX);
        router_model_free(m);
        return NULL;
    }
    if (!parse(&r, m)) {
        router_model_free(m);
        return NULL;
    }
    return m;
}

router_model *router_model_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = xmalloc(ROUTER_MODEL_FILE_MAX + 1);
    size_t len = fread(text, 1, ROUTER_MODEL_FILE_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    router_model *m = NULL;
    char why[256];
    if (bad)
        snprintf(why, sizeof why, "could not be read");
    else
        m = router_model_parse(text, len, why, sizeof why);
    free(text);
    if (!m) snprintf(err, errlen, "%s: %s", path, why);
    return m;
}

void router_model_free(router_model *m)
{
    if (!m) return;
    free(m->weights);
    free(m);
}

const char *router_model_name(const router_model *m)
{
    return m->name;
}

unsigned router_model_bits(const router_model *m)
{
    return m->bits;
}

double router_model_score(const router_model *m, const router_features *f)
{
    double z = m->bias;
    for (int i = 0; i < ROUTER_DENSE; i++)
        z += m->dense[i] * f->dense[i];
    if (f->nhashes) {
        int32_t sum = 0;
        for (size_t i = 0; i < f->nhashes; i++)
            sum += m->weights[f->hashes[i]];
        z += (double)sum * m->hash_scale / sqrt((double)router_hash_norm(f->nhashes));
    }
    return 1.0 / (1.0 + exp(-z));
}

double router_model_decide(const router_model *m, const router_input *in)
{
    router_features f;
    router_features_extract(in, m->bits, &f);
    return router_model_score(m, &f);
}

double router_model_threshold_for_percent(const router_model *m, double percent)
{
    if (!(percent > 0)) return 1.0 + 1e-9; /* nothing reaches it: everything weak */
    if (percent >= 100) return 0.0;
    size_t i = (size_t)percent;
    double frac = percent - (double)i;
    return m->calibration[i] + (m->calibration[i + 1] - m->calibration[i]) * frac;
}

bool router_parse_threshold(const char *s, size_t len, double *threshold, double *percent)
{
    char buf[32];
    if (!len || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    bool pct = buf[len - 1] == '%';
    if (pct) buf[--len] = '\0';
    if (!len || !((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '.')) return false;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno || !isfinite(v)) return false;
    if (pct) {
        if (v < 0 || v > 100) return false;
        *percent = v;
        *threshold = -1;
    } else {
        if (v < 0 || v > 1) return false;
        *threshold = v;
        *percent = -1;
    }
    return true;
}
