/* top_metrics.c — the Prometheus text of GET /metrics read into the overview's numbers
 * (top_metrics.h).
 *
 * One pass over the lines, each copied into a bounded buffer (a longer line is skipped whole):
 * the series name, its labels (only those the overview uses are kept, each cut to its field),
 * the value. Series are summed as Prometheus's sum() would; a histogram's buckets are summed
 * per bound (`le`), which is what histogram_quantile over sum by (le) does. The format's
 * timestamps and exemplars are ignored. Rejected: a general Prometheus parser building a tree
 * of families — the overview needs a dozen sums, and a fixed struct keeps every bound visible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "top/top_metrics.h"

typedef struct labels {
    char provider[TOP_NAME_MAX], model[TOP_NAME_MAX], route[TOP_NAME_MAX];
    char state[16], status[8], kind[16], outcome[16], le[32], result[16];
} labels;

static void copy_cut(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = 0;
}

/* The label value into the field named, when it is one the overview reads. */
static void keep_label(labels *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    static const struct {
        const char *name;
        size_t off, cap;
    } kept[] = {
        {"provider", offsetof(labels, provider), sizeof(((labels *)0)->provider)},
        {"model", offsetof(labels, model), sizeof(((labels *)0)->model)},
        {"route", offsetof(labels, route), sizeof(((labels *)0)->route)},
        {"state", offsetof(labels, state), sizeof(((labels *)0)->state)},
        {"status", offsetof(labels, status), sizeof(((labels *)0)->status)},
        {"kind", offsetof(labels, kind), sizeof(((labels *)0)->kind)},
        {"outcome", offsetof(labels, outcome), sizeof(((labels *)0)->outcome)},
        {"le", offsetof(labels, le), sizeof(((labels *)0)->le)},
        {"result", offsetof(labels, result), sizeof(((labels *)0)->result)},
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strlen(kept[i].name) == nlen && !memcmp(kept[i].name, name, nlen)) {
            copy_cut((char *)l + kept[i].off, kept[i].cap, value, vlen);
            return;
        }
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* `{a="x",b="y"}` from *p (at the brace) to past the closing brace; values unescaped in place
 * (the line is our copy). false: malformed. */
static bool parse_labels(char **p, labels *l)
{
    char *s = *p + 1;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == '}') break;
        char *name = s;
        while (name_char(*s, s == name))
            s++;
        size_t nlen = (size_t)(s - name);
        if (!nlen) return false;
        while (*s == ' ')
            s++;
        if (*s++ != '=') return false;
        while (*s == ' ')
            s++;
        if (*s++ != '"') return false;
        char *value = s, *w = s;
        for (;;) {
            if (!*s) return false;
            if (*s == '"') break;
            if (*s == '\\') {
                s++;
                if (*s == 'n')
                    *w++ = '\n';
                else if (*s == '\\' || *s == '"')
                    *w++ = *s;
                else
                    return false;
                s++;
                continue;
            }
            *w++ = *s++;
        }
        keep_label(l, name, nlen, value, (size_t)(w - value));
        s++; /* the closing quote */
        while (*s == ' ')
            s++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s != '}') return false;
    }
    *p = s + 1;
    return true;
}

static void add_bucket(top_histogram *h, const char *le, double v)
{
    char *end;
    double bound = strtod(le, &end);
    if (end == le || *end || isnan(bound)) return;
    size_t i = 0;
    while (i < h->n && h->le[i] < bound)
        i++;
    if (i < h->n && h->le[i] == bound) {
        h->count[i] += v;
        return;
    }
    if (h->n == TOP_MAX_BUCKETS) return;
    memmove(&h->le[i + 1], &h->le[i], (h->n - i) * sizeof h->le[0]);
    memmove(&h->count[i + 1], &h->count[i], (h->n - i) * sizeof h->count[0]);
    h->le[i] = bound;
    h->count[i] = v;
    h->n++;
}

static top_target *target_for(top_scrape *s, const labels *l)
{
    for (size_t i = 0; i < s->ntargets; i++)
        if (!strcmp(s->targets[i].provider, l->provider) && !strcmp(s->targets[i].model, l->model))
            return &s->targets[i];
    if (s->ntargets == TOP_MAX_TARGETS) return NULL;
    top_target *t = &s->targets[s->ntargets++];
    memset(t, 0, sizeof *t);
    memcpy(t->provider, l->provider, sizeof t->provider);
    memcpy(t->model, l->model, sizeof t->model);
    t->breaker = -1;
    return t;
}

static top_provider_totals *provider_for(top_scrape *s, const char *name)
{
    for (size_t i = 0; i < s->nproviders; i++)
        if (!strcmp(s->providers[i].name, name)) return &s->providers[i];
    if (s->nproviders == TOP_MAX_PROVIDERS) return NULL;
    top_provider_totals *p = &s->providers[s->nproviders++];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, sizeof p->name);
    return p;
}

/* A request series of the gateway's own local answers — the admin API, /metrics, /healthz, and
 * so `aigw top`'s own calls — that succeeded: no route, model or provider, status 2xx. Not
 * traffic: left out of the rates and percentiles. (A model request refused before it named a
 * model has no route either, but a refusal is never 2xx.) */
static bool local_answer(const labels *l)
{
    return !l->route[0] && !l->model[0] && !l->provider[0] && l->status[0] == '2';
}

static void take(top_scrape *s, const char *name, const labels *l, double v)
{
    if (!strncmp(name, "aigw_", 5)) s->valid = true;
    if (!strncmp(name, "aigw_request", 12) || !strncmp(name, "aigw_time_to_first_byte", 23)) {
        if (local_answer(l)) return;
    }
    if (!strcmp(name, "aigw_requests_total")) {
        s->requests += v;
        if (l->status[0] == '4' || l->status[0] == '5') s->errors += v;
        if (l->status[0] == '5') s->server_errors += v;
    } else if (!strcmp(name, "aigw_tokens_total")) {
        if (!strcmp(l->kind, "prompt") || !strcmp(l->kind, "completion")) s->tokens += v;
    } else if (!strcmp(name, "aigw_cost_usd_total")) {
        s->cost_usd += v;
    } else if (!strcmp(name, "aigw_cache_results_total")) {
        if (!strcmp(l->result, "HIT") || !strcmp(l->result, "SEMANTIC_HIT")) s->cache_hits += v;
        if (l->result[0] && strcmp(l->result, "BYPASS")) s->cache_asked += v;
    } else if (!strcmp(name, "aigw_open_connections")) {
        s->open_connections = v;
    } else if (!strcmp(name, "aigw_request_duration_seconds_bucket")) {
        add_bucket(&s->duration, l->le, v);
    } else if (!strcmp(name, "aigw_time_to_first_byte_seconds_bucket")) {
        add_bucket(&s->ttfb, l->le, v);
    } else if (!strncmp(name, "aigw_target_", 12)) {
        top_target *t = target_for(s, l);
        if (!t) return;
        if (!strcmp(name, "aigw_target_breaker_state"))
            t->breaker = v >= 0 && v <= 2 ? (int)v : -1;
        else if (!strcmp(name, "aigw_target_in_flight"))
            t->in_flight = v;
        else if (!strcmp(name, "aigw_target_latency_ewma_seconds"))
            t->ewma_s = v;
    } else if (!strcmp(name, "aigw_attempts_total")) {
        top_provider_totals *p = provider_for(s, l->provider);
        if (!p) return;
        p->attempts += v;
        if (strcmp(l->outcome, "ok") && strcmp(l->outcome, "cancelled")) p->failures += v;
    }
}

/* One line (NUL-terminated, our copy). */
static void parse_line(top_scrape *s, char *line)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || *p == '#') return;
    char *name = p;
    while (name_char(*p, p == name))
        p++;
    if (p == name) return;
    char name_end = *p;
    labels l;
    memset(&l, 0, sizeof l);
    if (name_end == '{') {
        char saved_name[128]; /* longer names are none of ours; cut, they match nothing */
        copy_cut(saved_name, sizeof saved_name, name, (size_t)(p - name));
        if (!parse_labels(&p, &l)) return;
        if (*p != ' ' && *p != '\t') return;
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || (*end && *end != ' ' && *end != '\t')) return;
        take(s, saved_name, &l, v);
        return;
    }
    if (name_end != ' ' && name_end != '\t') return;
    *p++ = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v) || (*end && *end != ' ' && *end != '\t')) return;
    take(s, name, &l, v);
}

bool top_metrics_parse(const char *text, size_t len, top_scrape *out)
{
    memset(out, 0, sizeof *out);
    char line[TOP_LINE_MAX + 1];
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        if (n && text[i + n - 1] == '\r') n--;
        if (n <= TOP_LINE_MAX && !memchr(text + i, 0, n)) {
            memcpy(line, text + i, n);
            line[n] = 0;
            parse_line(out, line);
        }
        i += (nl ? (size_t)(nl - (text + i)) + 1 : len - i);
    }
    return out->valid;
}

double top_rate(double now, double then, double seconds)
{
    if (seconds <= 0) return 0;
    double d = now >= then ? now - then : now; /* went down: a restart, counting from zero */
    return d / seconds;
}

double top_histogram_quantile(const top_histogram *now, const top_histogram *then, double q)
{
    if (!now->n || q < 0 || q > 1) return NAN;
    double count[TOP_MAX_BUCKETS];
    bool restarted = false;
    if (then && then->n) {
        if (then->n != now->n) return NAN;
        for (size_t i = 0; i < now->n; i++) {
            if (then->le[i] != now->le[i]) return NAN;
            if (now->count[i] < then->count[i]) restarted = true;
        }
    }
    for (size_t i = 0; i < now->n; i++)
        count[i] = now->count[i] - (then && then->n && !restarted ? then->count[i] : 0);
    double total = count[now->n - 1];
    if (!(total > 0) || !isinf(now->le[now->n - 1])) return NAN;
    double rank = q * total;
    for (size_t i = 0; i < now->n; i++) {
        if (count[i] < rank || (count[i] == 0 && rank == 0 && i + 1 < now->n)) continue;
        if (isinf(now->le[i])) return i ? now->le[i - 1] : NAN;
        double lower = i ? now->le[i - 1] : 0, below = i ? count[i - 1] : 0;
        double in_bucket = count[i] - below;
        if (lower < 0) lower = 0;
        if (in_bucket <= 0) return now->le[i];
        return lower + (now->le[i] - lower) * (rank - below) / in_bucket;
    }
    return NAN;
}

void top_metrics_rates(const top_scrape *now, const top_scrape *then, double seconds, top_rates *out)
{
    static const top_scrape zero;
    if (!then || !then->valid) then = &zero;
    double requests = now->requests >= then->requests ? now->requests - then->requests : now->requests;
    bool restarted = now->requests < then->requests;
    const top_scrape *base = restarted ? &zero : then;
    out->requests_per_s = top_rate(now->requests, base->requests, seconds);
    out->error_rate = requests > 0 ? (now->errors - base->errors) / requests : NAN;
    out->tokens_per_s = top_rate(now->tokens, base->tokens, seconds);
    out->spend_per_min = 60 * top_rate(now->cost_usd, base->cost_usd, seconds);
    double asked = now->cache_asked - base->cache_asked;
    out->cache_hit_ratio = asked > 0 ? (now->cache_hits - base->cache_hits) / asked : NAN;
    const top_histogram *d0 = base == &zero ? NULL : &base->duration,
                        *t0 = base == &zero ? NULL : &base->ttfb;
    out->p50_s = top_histogram_quantile(&now->duration, d0, 0.5);
    out->p95_s = top_histogram_quantile(&now->duration, d0, 0.95);
    out->ttfb_p50_s = top_histogram_quantile(&now->ttfb, t0, 0.5);
    out->ttfb_p95_s = top_histogram_quantile(&now->ttfb, t0, 0.95);
}

const top_target *top_scrape_target(const top_scrape *s, const char *provider, const char *model)
{
    for (size_t i = 0; i < s->ntargets; i++)
        if (!strcmp(s->targets[i].provider, provider) && !strcmp(s->targets[i].model, model))
            return &s->targets[i];
    return NULL;
}

const top_provider_totals *top_scrape_provider(const top_scrape *s, const char *provider)
{
    for (size_t i = 0; i < s->nproviders; i++)
        if (!strcmp(s->providers[i].name, provider)) return &s->providers[i];
    return NULL;
}

size_t top_sparkline(const double *values, size_t n, bool utf8, char *out, size_t outlen)
{
    static const char *const blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                         "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ascii[] = " .:-=+*#";
    if (!outlen) return 0;
    double max = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i]) && values[i] > max) max = values[i];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const char *cell;
        char one[2] = {0, 0};
        if (!isfinite(values[i]) || values[i] < 0) {
            cell = " ";
        } else {
            int level = max > 0 ? (int)(values[i] / max * 7 + 0.5) : 0;
            if (level > 7) level = 7;
            if (utf8) {
                cell = blocks[level];
            } else {
                one[0] = ascii[level ? level : 1]; /* a sample, even zero, is not blank */
                cell = one;
            }
        }
        size_t len = strlen(cell);
        if (used + len >= outlen) break;
        memcpy(out + used, cell, len);
        used += len;
    }
    out[used] = 0;
    return used;
}
