/* top_ui.c — the screens of `aigw top` (top_ui.h): overview, keys, virtual keys, config
 * (providers and routes), breakers, alerts, and one request's detail.
 *
 * The loop waits for a key at most 100 ms (curses' timeout), takes the client's view every
 * quarter second, and draws the whole screen into curses' buffer (erase, draw, one refresh) when
 * a key was pressed, the view changed (a scrape, the gateway lost or back, rows, an action's
 * answer) or a second has passed: curses sends the terminal only the cells that changed, so a
 * refresh never flickers.
 * Everything shown is the gateway's: numbers from the client's view (differences of scrapes),
 * rows from the admin API's answers. Text from the server is drawn with control bytes replaced
 * (a key alias cannot move the cursor), cut to its column.
 *
 * Layout: the header (the gateway, the screens as tabs), the screen's body, and one line at
 * the bottom for the keys, a message, or what is being typed. 80×24 fits every screen; wider
 * and taller terminals give the log's columns and the lists more room. */
#include <curses.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "top/top_ui.h"
#include "util/alloc.h"

enum ui_screen {
    SCR_OVERVIEW,
    SCR_KEYS,
    SCR_VKEYS,
    SCR_CONFIG,
    SCR_BREAKERS,
    SCR_ALERTS,
    SCR_DETAIL,
    NSCREENS
};
static const char *const screen_names[] = {"Overview", "Keys",   "VKeys", "Config",
                                           "Breakers", "Alerts", "Detail"};
#define NTABS 6

enum { C_OK = 1, C_WARN, C_BAD, C_INFO, C_HEAD };
/* What the bottom line is reading: a filter, a new key's alias, a virtual key's name, provider
 * and secret (the secret never drawn), a rotation's secret, or a yes to a deletion. */
enum input_purpose {
    IN_NONE,
    IN_FILTER,
    IN_KEY_ALIAS,
    IN_VKEY_NAME,
    IN_VKEY_PROVIDER,
    IN_VKEY_SECRET,
    IN_VKEY_ROTATE,
    IN_VKEY_DELETE,
};
#define INPUT_MAX 1024 /* typed text: a provider's secret fits */

/* The filter's name:value terms that GET /admin/logs takes (docs/observability.md). */
static const char *const log_filters[] = {"key", "team", "model", "provider", "status", "error"};
#define NLOG_FILTERS (sizeof log_filters / sizeof log_filters[0])

typedef struct ui {
    top_client *client;
    const top_ui_options *o;
    top_view view;
    bool have_view;
    enum ui_screen screen, back; /* back: where Esc returns from the detail */
    int selected, top_row;
    char filter[128]; /* as typed */
    char words[128];  /* its plain words (matched in the rows shown), space-separated */
    bool log_terms;   /* it has name:value terms (the request log is asked for them) */
    bool paused, help;
    char message[512];
    bool message_bad;
    char secret[512]; /* a key shown once, in a box until a key is pressed */
    unsigned seen_action;
    enum input_purpose input;
    char input_text[INPUT_MAX];
    size_t input_len;
    char vkey_name[65], vkey_provider[65]; /* a virtual key being made, rotated or deleted */
    char detail_id[128];
    json_t *frozen_logs; /* the rows while paused */
} ui;

/* ---- drawing helpers ------------------------------------------------------------------------- */

static attr_t attr_for(const ui *u, int color)
{
    if (u->o->color) return COLOR_PAIR(color) | (color == C_HEAD ? A_BOLD : 0);
    switch (color) { /* monochrome: what matters stands out by weight */
    case C_BAD: return A_BOLD | A_UNDERLINE;
    case C_WARN: return A_BOLD;
    case C_HEAD: return A_REVERSE;
    default: return A_NORMAL;
    }
}

/* text at (y, x), at most width columns, control bytes as '?'. */
static void put(int y, int x, int width, const char *text, attr_t attr)
{
    if (width <= 0 || y < 0 || y >= LINES || x >= COLS) return;
    if (x + width > COLS) width = COLS - x;
    char cut[1024];
    size_t n = 0;
    int cols = 0;
    for (const unsigned char *p = (const unsigned char *)(text ? text : "");
         *p && cols < width && n + 4 < sizeof cut; p++) {
        if ((*p & 0xC0) != 0x80) cols++; /* a UTF-8 continuation byte takes no column */
        cut[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    }
    cut[n] = 0;
    attron(attr);
    mvaddstr(y, x, cut);
    attroff(attr);
}

static void putf(int y, int x, int width, attr_t attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void putf(int y, int x, int width, attr_t attr, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    put(y, x, width, text, attr);
}

static const char *jstr(const json_t *o, const char *key, const char *otherwise)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : otherwise;
}

static void fmt_seconds(char *out, size_t len, double s)
{
    if (!isfinite(s))
        snprintf(out, len, "-");
    else if (s < 1)
        snprintf(out, len, "%.0fms", s * 1000);
    else
        snprintf(out, len, "%.2fs", s);
}

static void fmt_ratio(char *out, size_t len, double r)
{
    if (!isfinite(r))
        snprintf(out, len, "-");
    else
        snprintf(out, len, "%.1f%%", r * 100);
}

/* Whether a row whose names are a…d shows under the filter: each of its plain words is in one
 * of them (name:value terms are the request log's, asked of the gateway). */
static bool matches(const ui *u, const char *a, const char *b, const char *c, const char *d)
{
    const char *fields[] = {a, b, c, d};
    for (const char *w = u->words; *w;) {
        size_t len = strcspn(w, " ");
        bool found = false;
        for (int i = 0; i < 4 && !found; i++)
            found = fields[i] && memmem(fields[i], strlen(fields[i]), w, len);
        if (!found) return false;
        w += len;
        w += strspn(w, " ");
    }
    return true;
}

/* The term's name when it is one of log_filters followed by ':' and a value; NULL otherwise. */
static const char *log_term(const char *term, size_t len, size_t *name_len)
{
    for (size_t i = 0; i < NLOG_FILTERS; i++) {
        size_t n = strlen(log_filters[i]);
        if (len > n + 1 && !strncmp(term, log_filters[i], n) && term[n] == ':') {
            *name_len = n;
            return log_filters[i];
        }
    }
    return NULL;
}

/* value (len bytes) percent-encoded onto out at *n (the query's own characters kept). */
static void url_encode(char *out, size_t size, size_t *n, const char *value, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len && *n + 4 < size; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch)) {
            out[(*n)++] = (char)ch;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[ch >> 4];
            out[(*n)++] = hex[ch & 15];
        }
    }
    out[*n] = 0;
}

/* The filter as typed split into its plain words (u->words) and its request log terms; send:
 * the terms go to the client as GET /admin/logs's parameters (on enter and esc, not on every
 * key, so typing does not ask the gateway a query per letter). */
static void parse_filter(ui *u, bool send)
{
    char query[TOP_LOG_QUERY_MAX + 1] = "";
    size_t q = 0, wn = 0;
    u->words[0] = 0;
    u->log_terms = false;
    for (const char *t = u->filter; *t;) {
        t += strspn(t, " ");
        size_t len = strcspn(t, " "), name_len;
        if (!len) break;
        const char *name = log_term(t, len, &name_len);
        if (name) {
            u->log_terms = true;
            if (q + name_len + 2 < sizeof query) {
                q += (size_t)snprintf(query + q, sizeof query - q, "&%s=", name);
                url_encode(query, sizeof query, &q, t + name_len + 1, len - name_len - 1);
            }
        } else if (wn + len + 2 < sizeof u->words) {
            wn += (size_t)snprintf(u->words + wn, sizeof u->words - wn, "%s%.*s", wn ? " " : "", (int)len, t);
        }
        t += len;
    }
    if (send) top_client_log_query(u->client, query);
}

static void set_message(ui *u, bool bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_message(ui *u, bool bad, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->message, sizeof u->message, fmt, ap);
    va_end(ap);
    u->message_bad = bad;
}

/* Instead of a screen that needs the admin API, without a key. */
static const char keyless_note[] =
    "no key: the request log and admin API need `auth:` and a master key, or --key";

/* ---- the header and the footer ------------------------------------------------------------- */

static void draw_header(ui *u)
{
    attr_t head = attr_for(u, C_HEAD);
    attron(head);
    mvhline(0, 0, ' ', COLS);
    attroff(head);
    int x = 0;
    putf(0, x, COLS, head, " aigw top  %s ", u->o->url);
    x = (int)strlen(u->o->url) + 12;
    const top_view *v = &u->view;
    if (!u->have_view || !v->connected) {
        put(0, x, COLS - x, "DISCONNECTED", head | attr_for(u, C_BAD));
        x += 13;
    }
    for (int s = 0; s < NTABS; s++) {
        char tab[32];
        int w =
            snprintf(tab, sizeof tab, s == (int)u->screen ? "[%d %s]" : " %d %s ", s + 1, screen_names[s]);
        if (x + w > COLS) break;
        put(0, x, w, tab, s == (int)u->screen ? head | A_BOLD : head);
        x += w;
    }
    if (u->screen == SCR_DETAIL && x + 9 <= COLS) put(0, x, 9, "[Detail]", head | A_BOLD);
}

static const char *const screen_keys[] = {
    [SCR_OVERVIEW] = "tab screens  p pause  enter detail  / filter  ? help  q quit",
    [SCR_KEYS] = "n new  d disable  e enable  r rotate  / filter  ? help  q quit",
    [SCR_VKEYS] = "n new  r rotate secret  d delete  / filter  ? help  q quit",
    [SCR_CONFIG] = "E edit and apply  R reload file  tab screens  ? help  q quit",
    [SCR_BREAKERS] = "r reset selected  R reset all  tab screens  ? help  q quit",
    [SCR_ALERTS] = "tab screens  / filter  ? help  q quit",
    [SCR_DETAIL] = "esc back  tab screens  ? help  q quit",
};

static void draw_footer(ui *u)
{
    int y = LINES - 1;
    move(y, 0);
    clrtoeol();
    switch (u->input) {
    case IN_NONE: break;
    case IN_FILTER: putf(y, 0, COLS, A_BOLD, "filter: %s", u->input_text); return;
    case IN_KEY_ALIAS: putf(y, 0, COLS, A_BOLD, "new key alias: %s", u->input_text); return;
    case IN_VKEY_NAME: putf(y, 0, COLS, A_BOLD, "new virtual key, its name: %s", u->input_text); return;
    case IN_VKEY_PROVIDER:
        putf(y, 0, COLS, A_BOLD, "%s's provider type (openai, anthropic, …): %s", u->vkey_name,
             u->input_text);
        return;
    case IN_VKEY_SECRET:
    case IN_VKEY_ROTATE: /* the secret itself is never drawn: how much was typed is */
        putf(y, 0, COLS, A_BOLD,
             "%s secret for %s (not shown; %zu characters): ", u->input == IN_VKEY_SECRET ? "the" : "a new",
             u->vkey_name, u->input_len);
        return;
    case IN_VKEY_DELETE:
        putf(y, 0, COLS, attr_for(u, C_BAD),
             "delete the virtual key %s? y deletes it, any other key keeps it", u->vkey_name);
        return;
    }
    if (u->message[0]) {
        put(y, 0, COLS, u->message, u->message_bad ? attr_for(u, C_BAD) : attr_for(u, C_OK));
        return;
    }
    char keys[256];
    snprintf(keys, sizeof keys, "%s%s%s%s", u->filter[0] ? "[filter: " : "", u->filter[0] ? u->filter : "",
             u->log_terms ? " (asked of the request log)" : "", u->filter[0] ? "] " : "");
    size_t n = strlen(keys);
    snprintf(keys + n, sizeof keys - n, "%s", screen_keys[u->screen]);
    put(y, 0, COLS, keys, A_DIM);
}

/* A list's selection kept in range and in sight; rows: the list's length, height: its lines. */
static void clamp_selection(ui *u, int rows, int height)
{
    if (u->selected >= rows) u->selected = rows - 1;
    if (u->selected < 0) u->selected = 0;
    if (height < 1) height = 1;
    if (u->selected < u->top_row) u->top_row = u->selected;
    if (u->selected >= u->top_row + height) u->top_row = u->selected - height + 1;
    if (u->top_row < 0) u->top_row = 0;
}

/* ---- overview ------------------------------------------------------------------------------- */

static const json_t *log_rows(const ui *u)
{
    const json_t *logs = u->paused ? u->frozen_logs : u->view.logs;
    return json_object_get(logs, "data");
}

/* The route path of a logged request: its route, then each attempt's provider. */
static void route_path(const json_t *row, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "%s", jstr(row, "route", "-"));
    const json_t *attempts = json_object_get(row, "attempts");
    size_t i;
    const json_t *a;
    json_array_foreach(attempts, i, a)
    {
        if (n >= len) break;
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ">" : ":", jstr(a, "provider", "?"));
    }
}

static int draw_overview_numbers(ui *u, int y)
{
    const top_view *v = &u->view;
    char p50[16], p95[16], t50[16], t95[16], err[16], hit[16];
    const top_rates *r = &v->rates;
    fmt_seconds(p50, sizeof p50, v->have_rates ? r->p50_s : NAN);
    fmt_seconds(p95, sizeof p95, v->have_rates ? r->p95_s : NAN);
    fmt_seconds(t50, sizeof t50, v->have_rates ? r->ttfb_p50_s : NAN);
    fmt_seconds(t95, sizeof t95, v->have_rates ? r->ttfb_p95_s : NAN);
    fmt_ratio(err, sizeof err, v->have_rates ? r->error_rate : NAN);
    fmt_ratio(hit, sizeof hit, v->have_rates ? r->cache_hit_ratio : NAN);
    attr_t erra =
        v->have_rates && isfinite(r->error_rate) && r->error_rate > 0.05 ? attr_for(u, C_BAD) : A_BOLD;
    putf(y, 0, 24, A_BOLD, "req/s %8.1f", v->have_rates ? r->requests_per_s : 0.0);
    putf(y, 24, 16, erra, "errors %s", err);
    putf(y, 42, COLS - 42, A_NORMAL, "latency p50 %s p95 %s", p50, p95);
    y++;
    putf(y, 0, 24, A_NORMAL, "tokens/s %6.0f", v->have_rates ? r->tokens_per_s : 0.0);
    putf(y, 24, 18, A_NORMAL, "spend/min $%.4f", v->have_rates ? r->spend_per_min : 0.0);
    putf(y, 42, COLS - 42, A_NORMAL, "ttfb    p50 %s p95 %s", t50, t95);
    y++;
    putf(y, 0, 24, A_NORMAL, "cache hits %s", hit);
    putf(y, 24, 18, A_NORMAL, "connections %.0f", v->open_connections);
    int spark_w = COLS - 42 - 6;
    if (spark_w > 0) {
        if (spark_w > TOP_HISTORY) spark_w = TOP_HISTORY;
        char spark[TOP_HISTORY * 3 + 1];
        top_sparkline(v->rps + TOP_HISTORY - spark_w, (size_t)spark_w, u->o->utf8, spark, sizeof spark);
        put(y, 42, 6, "req/s ", A_DIM);
        put(y, 48, spark_w, spark, attr_for(u, C_INFO));
    }
    return y + 1;
}

static const char *breaker_name(int b)
{
    return b == 0 ? "closed" : b == 1 ? "OPEN" : b == 2 ? "half-open" : "?";
}

static int breaker_color(int b)
{
    return b == 0 ? C_OK : b == 1 ? C_BAD : C_WARN;
}

/* The provider targets, at most max_rows of them; returns the next free line. With selection,
 * the selected one is shown reversed (the breakers screen). */
static int draw_targets(ui *u, int y, int max_rows, bool selection)
{
    const top_view *v = &u->view;
    int name_w = COLS >= 100 ? 36 : 28;
    int spark_w = COLS - name_w - 10 - 9 - 9 - 8 - 1;
    if (spark_w > TOP_HISTORY) spark_w = TOP_HISTORY;
    putf(y++, 0, COLS, A_UNDERLINE, "%-*s %-9s %8s %8s %7s %s", name_w, "TARGET", "BREAKER", "IN-FLIGHT",
         "LATENCY", "ERRORS", spark_w > 8 ? "LATENCY (EWMA, 1 cell/s)" : "");
    int shown = 0;
    if (selection) clamp_selection(u, (int)v->ntargets, max_rows);
    for (size_t i = selection ? (size_t)u->top_row : 0; i < v->ntargets && shown < max_rows; i++) {
        const top_target_row *t = &v->targets[i];
        char name[160], lat[16], err[16];
        snprintf(name, sizeof name, "%s/%s", t->provider, t->model);
        if (!matches(u, name, NULL, NULL, NULL)) continue;
        fmt_seconds(lat, sizeof lat, t->ewma_s > 0 ? t->ewma_s : NAN);
        fmt_ratio(err, sizeof err, t->error_rate);
        attr_t sel = selection && (int)i == u->selected ? A_REVERSE : 0;
        put(y, 0, name_w, name, sel);
        put(y, name_w + 1, 9, breaker_name(t->breaker), attr_for(u, breaker_color(t->breaker)) | sel);
        putf(y, name_w + 11, 8, sel, "%8.0f", t->in_flight);
        putf(y, name_w + 20, 8, sel, "%8s", lat);
        putf(y, name_w + 29, 7, isfinite(t->error_rate) && t->error_rate > 0 ? attr_for(u, C_BAD) | sel : sel,
             "%7s", err);
        if (spark_w > 0) {
            char spark[TOP_HISTORY * 3 + 1];
            top_sparkline(t->latency + TOP_HISTORY - spark_w, (size_t)spark_w, u->o->utf8, spark,
                          sizeof spark);
            put(y, name_w + 37, spark_w, spark, attr_for(u, C_INFO));
        }
        y++;
        shown++;
    }
    if (!v->ntargets) put(y++, 0, COLS, "(no targets reported yet)", A_DIM);
    return y;
}

static void draw_log(ui *u, int y, int bottom)
{
    const json_t *rows = log_rows(u);
    int extra = COLS > 80 ? COLS - 80 : 0;
    int key_w = 10 + extra / 6, model_w = 14 + extra / 4, prov_w = 10 + extra / 6;
    putf(y++, 0, COLS, A_UNDERLINE, "%-8s %-*s %-*s %-*s %3s %7s %8s %-5s %s%s", "TIME", key_w, "KEY",
         model_w, "MODEL", prov_w, "PROVIDER", "ST", "LATENCY", "COST", "CACHE", "ROUTE",
         u->paused ? "  (paused: p resumes)" : "");
    if (u->o->keyless) {
        put(y, 0, COLS, keyless_note, attr_for(u, C_WARN));
        return;
    }
    if (u->view.logs_status && u->view.logs_status != 200) {
        const json_t *e = json_object_get(u->view.logs, "error");
        putf(y, 0, COLS, attr_for(u, C_WARN), "request log: HTTP %d %s", u->view.logs_status,
             jstr(e, "message", ""));
        return;
    }
    int nrows = 0, height = bottom - y;
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) nrows++;
    clamp_selection(u, nrows, height);
    int index = -1;
    json_array_foreach(rows, i, row)
    {
        const char *key = jstr(row, "key_alias", jstr(row, "key_id", "-"));
        const char *model = jstr(row, "model", "-"), *provider = jstr(row, "provider", "-");
        if (!matches(u, key, model, provider, jstr(row, "route", NULL))) continue;
        index++;
        if (index < u->top_row) continue;
        if (y >= bottom) break;
        const char *time = jstr(row, "time", "");
        char clock[9] = "";
        if (strlen(time) >= 19) memcpy(clock, time + 11, 8);
        int status = (int)json_integer_value(json_object_get(row, "status"));
        double ms = json_number_value(json_object_get(row, "total_ms"));
        const json_t *cost = json_object_get(row, "cost_usd");
        char lat[16], costs[16], path[256];
        fmt_seconds(lat, sizeof lat, json_is_number(json_object_get(row, "total_ms")) ? ms / 1000 : NAN);
        if (json_is_number(cost))
            snprintf(costs, sizeof costs, "$%.5f", json_number_value(cost));
        else
            snprintf(costs, sizeof costs, "-");
        route_path(row, path, sizeof path);
        attr_t sel = index == u->selected && u->screen == SCR_OVERVIEW ? A_REVERSE : 0;
        int color = status >= 500 ? C_BAD : status >= 400 ? C_WARN : C_OK;
        int x = 0;
        put(y, x, 8, clock, sel);
        x += 9;
        put(y, x, key_w, key, sel);
        x += key_w + 1;
        put(y, x, model_w, model, sel);
        x += model_w + 1;
        put(y, x, prov_w, provider, sel);
        x += prov_w + 1;
        putf(y, x, 3, attr_for(u, color) | sel, "%3d", status);
        x += 4;
        putf(y, x, 7, sel, "%7s", lat);
        x += 8;
        putf(y, x, 8, sel, "%8s", costs);
        x += 9;
        const char *cache = jstr(row, "cache", "-");
        put(y, x, 5, cache, (strstr(cache, "HIT") ? attr_for(u, C_INFO) : 0) | sel);
        x += 6;
        put(y, x, COLS - x, path, sel);
        y++;
    }
    if (!nrows) put(y, 0, COLS, "(no requests logged yet)", A_DIM);
}

static void draw_overview(ui *u)
{
    int y = draw_overview_numbers(u, 2);
    y++;
    int target_rows = (LINES - 10) / 3;
    if (target_rows < 2) target_rows = 2;
    y = draw_targets(u, y, target_rows, false);
    y++;
    draw_log(u, y, LINES - 1);
}

/* The id of the selected log row (with the filter applied), or NULL. */
static const char *selected_log_id(ui *u)
{
    size_t i;
    const json_t *row;
    int index = -1;
    json_array_foreach(log_rows(u), i, row)
    {
        if (!matches(u, jstr(row, "key_alias", jstr(row, "key_id", "-")), jstr(row, "model", "-"),
                     jstr(row, "provider", "-"), jstr(row, "route", NULL)))
            continue;
        if (++index == u->selected) return jstr(row, "id", NULL);
    }
    return NULL;
}

/* ---- the admin lists ------------------------------------------------------------------------ */

/* The watched answer's "data" (or the answer itself when it is a list), or NULL with the
 * reason drawn at y. */
static const json_t *screen_data(ui *u, int y, const char *key)
{
    if (u->o->keyless) {
        put(y, 0, COLS, keyless_note, attr_for(u, C_WARN));
        return NULL;
    }
    if (!u->view.screen_status) {
        put(y, 0, COLS, "loading…", A_DIM);
        return NULL;
    }
    if (u->view.screen_status != 200) {
        const json_t *e = json_object_get(u->view.screen, "error");
        putf(y, 0, COLS, attr_for(u, C_BAD), "HTTP %d: %s", u->view.screen_status, jstr(e, "message", ""));
        return NULL;
    }
    const json_t *d = key ? json_object_get(u->view.screen, key) : u->view.screen;
    return json_is_array(d) ? d : NULL;
}

/* The selected row of the current list (with the filter applied). */
static const json_t *selected_item(ui *u, const char *list_key, const char *a, const char *b)
{
    const json_t *d = json_object_get(u->view.screen, list_key);
    size_t i;
    const json_t *row;
    int index = -1;
    json_array_foreach(d, i, row)
    {
        if (!matches(u, jstr(row, a, NULL), jstr(row, b, NULL), jstr(row, "id", NULL), NULL)) continue;
        if (++index == u->selected) return row;
    }
    return NULL;
}

static void draw_keys(ui *u)
{
    int y = 2;
    putf(y++, 0, COLS, A_UNDERLINE, "%-22s %-20s %-8s %-10s %12s %s", "ID", "ALIAS", "ENABLED", "TEAM",
         "SPEND", "BUDGET");
    const json_t *d = screen_data(u, y, "data");
    if (!d) return;
    int n = 0, height = LINES - 1 - y;
    size_t i;
    const json_t *k;
    json_array_foreach(d, i, k) if (matches(u, jstr(k, "key_alias", NULL), jstr(k, "team_id", NULL),
                                            jstr(k, "id", NULL), NULL)) n++;
    clamp_selection(u, n, height);
    int index = -1;
    json_array_foreach(d, i, k)
    {
        if (!matches(u, jstr(k, "key_alias", NULL), jstr(k, "team_id", NULL), jstr(k, "id", NULL), NULL))
            continue;
        if (++index < u->top_row) continue;
        if (y >= LINES - 1) break;
        bool on = json_is_true(json_object_get(k, "enabled"));
        attr_t sel = index == u->selected ? A_REVERSE : 0;
        const json_t *budget = json_object_get(k, "max_budget");
        char b[24] = "-";
        if (json_is_number(budget)) snprintf(b, sizeof b, "$%.2f", json_number_value(budget));
        putf(y, 0, 22, sel, "%-22s", jstr(k, "id", "?"));
        putf(y, 23, 20, sel, "%-20s", jstr(k, "key_alias", "-"));
        put(y, 44, 8, on ? "yes" : "DISABLED", attr_for(u, on ? C_OK : C_BAD) | sel);
        putf(y, 53, 10, sel, "%-10s", jstr(k, "team_id", "-"));
        putf(y, 64, 12, sel, "%12.6f", json_number_value(json_object_get(k, "spend")));
        put(y, 77, COLS - 77, b, sel);
        y++;
    }
    if (!n) put(y, 0, COLS, "(no keys: n makes one)", A_DIM);
}

static void draw_vkeys(ui *u)
{
    int y = 2;
    putf(y++, 0, COLS, A_UNDERLINE, "%-24s %-14s %-12s %-7s %s", "NAME", "PROVIDER", "SECRET", "VERSION",
         "BASE URL");
    const json_t *d = screen_data(u, y, "data");
    if (!d) return;
    size_t i;
    const json_t *v;
    int n = 0;
    json_array_foreach(d, i, v) if (matches(u, jstr(v, "name", NULL), jstr(v, "provider", NULL), NULL, NULL))
        n++;
    clamp_selection(u, n, LINES - 1 - y);
    int index = -1;
    json_array_foreach(d, i, v)
    {
        if (!matches(u, jstr(v, "name", NULL), jstr(v, "provider", NULL), NULL, NULL)) continue;
        if (++index < u->top_row) continue;
        if (y >= LINES - 1) break;
        putf(y++, 0, COLS, index == u->selected ? A_REVERSE : 0, "%-24s %-14s %-12s %-7lld %s",
             jstr(v, "name", "?"), jstr(v, "provider", "?"), jstr(v, "hint", "?"),
             (long long)json_integer_value(json_object_get(v, "version")),
             jstr(v, "base_url", "(the type's)"));
    }
    if (!n) put(y, 0, COLS, "(no virtual keys: n makes one)", A_DIM);
}

static void draw_config(ui *u)
{
    int y = 2;
    if (u->o->keyless) {
        put(y, 0, COLS, keyless_note, attr_for(u, C_WARN));
        return;
    }
    if (!u->view.screen_status) {
        put(y, 0, COLS, "loading…", A_DIM);
        return;
    }
    if (u->view.screen_status != 200) {
        putf(y, 0, COLS, attr_for(u, C_BAD), "HTTP %d: %s", u->view.screen_status,
             jstr(json_object_get(u->view.screen, "error"), "message", ""));
        return;
    }
    const char *src = jstr(u->view.screen, "source", "");
    putf(y++, 0, COLS, A_UNDERLINE, "%s (secrets masked; E edits and applies it through the live reload)",
         jstr(u->view.screen, "path", "config"));
    int lines = 0;
    for (const char *p = src; *p; p++)
        if (*p == '\n') lines++;
    clamp_selection(u, lines + 1, LINES - 1 - y);
    int line = 0;
    for (const char *p = src; *p && y < LINES - 1;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char text[512];
        snprintf(text, sizeof text, "%.*s", (int)(len < 500 ? len : 500), p);
        if (line >= u->top_row && matches(u, text, NULL, NULL, NULL)) {
            bool head = len && p[0] != ' ' && p[0] != '#';
            putf(y++, 0, COLS, head ? A_BOLD : 0, "%4d %s", line + 1, text);
        }
        line++;
        p += len + (nl ? 1 : 0);
    }
}

static void draw_breakers(ui *u)
{
    int y = draw_targets(u, 2, LINES - 4, true);
    (void)y;
}

static void draw_alerts(ui *u)
{
    int y = 2;
    putf(y++, 0, COLS, A_UNDERLINE, "%-20s %-12s %-9s %-20s %s", "RULE", "KIND", "STATUS", "SINCE",
         "SUMMARY");
    const json_t *d = screen_data(u, y, "alerts");
    if (!d) return;
    size_t i;
    const json_t *a;
    int n = 0;
    json_array_foreach(d, i, a)
    {
        if (!matches(u, jstr(a, "name", NULL), jstr(a, "kind", NULL), jstr(a, "status", NULL), NULL))
            continue;
        if (y >= LINES - 1) break;
        const char *status = jstr(a, "status", "?");
        bool firing = !strcmp(status, "firing");
        const char *since = firing ? jstr(a, "fired_at", "") : jstr(a, "resolved_at", "-");
        putf(y, 0, 33, 0, "%-20s %-12s", jstr(a, "name", "?"), jstr(a, "kind", "?"));
        putf(y, 34, 9, attr_for(u, firing ? C_BAD : C_OK), "%-9s", status);
        putf(y, 44, 20, 0, "%-20s", since);
        put(y, 65, COLS - 65, jstr(a, "summary", ""), 0);
        y++;
        n++;
    }
    if (!n) put(y, 0, COLS, "(no alert rules: `alerts:` in the config)", A_DIM);
}

static void draw_detail(ui *u)
{
    int y = 2;
    if (!u->view.screen_status) {
        putf(y, 0, COLS, A_DIM, "loading %s…", u->detail_id);
        return;
    }
    const json_t *r = u->view.screen;
    if (u->view.screen_status != 200) {
        putf(y, 0, COLS, attr_for(u, C_BAD), "HTTP %d: %s", u->view.screen_status,
             jstr(json_object_get(r, "error"), "message", ""));
        return;
    }
    const json_t *usage = json_object_get(r, "usage");
    int status = (int)json_integer_value(json_object_get(r, "status"));
    putf(y++, 0, COLS, A_BOLD, "request %s", jstr(r, "id", "?"));
    putf(y++, 0, COLS, 0, "time %s   trace %s", jstr(r, "time", "?"), jstr(r, "trace_id", "-"));
    putf(y++, 0, COLS, 0, "key %s (%s)   team %s", jstr(r, "key_alias", "-"), jstr(r, "key_id", "-"),
         jstr(r, "team_id", "-"));
    putf(y, 0, COLS, 0, "%s %s   route %s   model %s → %s %s", jstr(r, "method", "?"), jstr(r, "path", "?"),
         jstr(r, "route", "-"), jstr(r, "model", "-"), jstr(r, "provider", "-"),
         jstr(r, "upstream_model", ""));
    y++;
    putf(y, 0, 12, attr_for(u, status >= 500 ? C_BAD : status >= 400 ? C_WARN : C_OK), "status %d", status);
    putf(y++, 12, COLS - 12, 0, "  %s %s   cache %s   stream %s", jstr(r, "error_class", ""),
         jstr(r, "error", ""), jstr(r, "cache", "-"),
         json_is_true(json_object_get(r, "stream")) ? "yes" : "no");
    putf(y++, 0, COLS, 0, "tokens: prompt %lld  completion %lld  cached %lld  reasoning %lld   cost $%.6f",
         (long long)json_integer_value(json_object_get(usage, "prompt_tokens")),
         (long long)json_integer_value(json_object_get(usage, "completion_tokens")),
         (long long)json_integer_value(json_object_get(usage, "cached_tokens")),
         (long long)json_integer_value(json_object_get(usage, "reasoning_tokens")),
         json_number_value(json_object_get(r, "cost_usd")));
    putf(y++, 0, COLS, 0,
         "timing: first byte %.1f ms  total %.1f ms  in aigw %.3f ms   retries %lld  fallbacks %lld",
         json_number_value(json_object_get(r, "ttfb_ms")), json_number_value(json_object_get(r, "total_ms")),
         json_number_value(json_object_get(r, "overhead_ms")),
         (long long)json_integer_value(json_object_get(r, "retries")),
         (long long)json_integer_value(json_object_get(r, "fallbacks")));
    y++;
    putf(y++, 0, COLS, A_UNDERLINE, "%-3s %-24s %-9s %-14s %6s %10s %10s %s", "#", "ATTEMPT", "ROLE",
         "OUTCOME", "STATUS", "MS", "WAIT MS", "NOTE");
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(r, "attempts"), i, a)
    {
        if (y >= LINES - 1) break;
        const char *outcome = jstr(a, "outcome", "?");
        char target[160];
        snprintf(target, sizeof target, "%s/%s", jstr(a, "provider", "?"), jstr(a, "model", "?"));
        putf(y, 0, 29, 0, "%-3zu %-24s", i + 1, target);
        putf(y, 29, 9, 0, "%-9s", jstr(a, "role", ""));
        putf(y, 39, 14, attr_for(u, !strcmp(outcome, "ok") ? C_OK : C_BAD), "%-14s", outcome);
        putf(y, 54, COLS - 54, 0, "%6lld %10.1f %10.1f %s",
             (long long)json_integer_value(json_object_get(a, "status")),
             json_number_value(json_object_get(a, "ms")), json_number_value(json_object_get(a, "wait_ms")),
             jstr(a, "note", ""));
        y++;
    }
}

static void draw_help(ui *u)
{
    static const char *const lines[] = {
        "aigw top — keys",
        "",
        "tab / shift-tab   next / previous screen (1-6 jump to one)",
        "up/down j/k       select a row;  pgup/pgdn a page",
        "/                 filter: words match the rows shown; key: team: model:",
        "                  provider: status: error: ask the request log (overview)",
        "p                 pause or resume the request log (overview)",
        "enter             the selected request's detail (overview)",
        "n d e r           keys: new (its secret shown once), disable, enable, rotate",
        "n r d             virtual keys: new, rotate its secret (typed unseen), delete",
        "E R               config: edit in $EDITOR and apply, reload the file",
        "r R               breakers: reset the selected one, reset all",
        "esc               clear the filter; back from the detail; close this",
        "q                 quit (the terminal is restored)",
    };
    int h = (int)(sizeof lines / sizeof lines[0]) + 2, w = 66;
    if (w > COLS) w = COLS;
    int y0 = (LINES - h) / 2 > 1 ? (LINES - h) / 2 : 1, x0 = (COLS - w) / 2 > 0 ? (COLS - w) / 2 : 0;
    for (int i = 0; i < h && y0 + i < LINES - 1; i++) {
        move(y0 + i, x0);
        attron(A_REVERSE);
        for (int k = 0; k < w; k++)
            addch(' ');
        attroff(A_REVERSE);
        if (i && i <= (int)(sizeof lines / sizeof lines[0]))
            put(y0 + i, x0 + 2, w - 4, lines[i - 1], A_REVERSE);
    }
}

static void draw_secret(ui *u)
{
    int w = (int)strlen(u->secret) + 6;
    if (w < 50) w = 50;
    if (w > COLS) w = COLS;
    int y0 = LINES / 2 - 2, x0 = (COLS - w) / 2 > 0 ? (COLS - w) / 2 : 0;
    for (int i = 0; i < 5; i++) {
        move(y0 + i, x0);
        attron(A_REVERSE);
        for (int k = 0; k < w; k++)
            addch(' ');
        attroff(A_REVERSE);
    }
    put(y0 + 1, x0 + 2, w - 4, "The new key, shown once (copy it now):", A_REVERSE | A_BOLD);
    put(y0 + 2, x0 + 2, w - 4, u->secret, A_REVERSE);
    put(y0 + 3, x0 + 2, w - 4, "press any key", A_REVERSE);
}

static void draw(ui *u)
{
    erase();
    draw_header(u);
    if (u->have_view && !u->view.connected && u->view.status[0])
        put(1, 0, COLS, u->view.status, attr_for(u, C_BAD));
    switch (u->screen) {
    case SCR_OVERVIEW: draw_overview(u); break;
    case SCR_KEYS: draw_keys(u); break;
    case SCR_VKEYS: draw_vkeys(u); break;
    case SCR_CONFIG: draw_config(u); break;
    case SCR_BREAKERS: draw_breakers(u); break;
    case SCR_ALERTS: draw_alerts(u); break;
    default: draw_detail(u); break;
    }
    draw_footer(u);
    if (u->help) draw_help(u);
    if (u->secret[0]) draw_secret(u);
    refresh(); /* one update: curses sends only what changed */
}

/* ---- actions ----------------------------------------------------------------------------------- */

static void watch_for_screen(ui *u)
{
    char path[512];
    const char *p = NULL;
    switch (u->screen) {
    case SCR_KEYS: p = "/admin/keys"; break;
    case SCR_VKEYS: p = "/admin/virtual-keys"; break;
    case SCR_CONFIG: p = "/admin/config"; break;
    case SCR_ALERTS: p = "/admin/alerts"; break;
    case SCR_DETAIL:
        snprintf(path, sizeof path, "/admin/logs/%s", u->detail_id);
        p = path;
        break;
    default: break;
    }
    top_client_watch(u->client, u->o->keyless ? NULL : p);
}

static void go(ui *u, enum ui_screen s)
{
    u->screen = s;
    u->selected = u->top_row = 0;
    u->message[0] = 0;
    watch_for_screen(u);
}

static void act(ui *u, const char *method, const char *path, const char *body, const char *what)
{
    if (top_client_act(u->client, method, path, body, what))
        set_message(u, false, "%s…", what);
    else
        set_message(u, true, "still waiting for the last action");
}

/* act() with a JSON body, which it takes (and wipes: it may hold a secret). */
static void act_json(ui *u, const char *method, const char *path, json_t *body, const char *what)
{
    char *dumped = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!dumped) {
        set_message(u, true, "%s: the text typed is not UTF-8", what);
        return;
    }
    act(u, method, path, dumped, what);
    explicit_bzero(dumped, strlen(dumped));
    free(dumped);
}

/* The answer to an action, once: the secret of a new or rotated key, or the message. */
static void take_action_reply(ui *u)
{
    if (u->view.action_seq == u->seen_action) return;
    u->seen_action = u->view.action_seq;
    const json_t *r = u->view.action_reply;
    int status = u->view.action_status;
    if (status >= 200 && status < 300) {
        const char *secret = jstr(r, "key", NULL);
        if (secret) snprintf(u->secret, sizeof u->secret, "%s", secret);
        const char *msg = jstr(r, "message", NULL);
        if (json_is_integer(json_object_get(r, "reset")))
            set_message(u, false, "%s: %lld breaker(s) were open", u->view.action_what,
                        (long long)json_integer_value(json_object_get(r, "reset")));
        else
            set_message(u, false, "%s: done%s%s", u->view.action_what, msg ? ": " : "", msg ? msg : "");
    } else {
        const char *msg = jstr(json_object_get(r, "error"), "message", "no answer");
        set_message(u, true, "%s refused (HTTP %d): %s", u->view.action_what, status, msg);
    }
}

static void key_action(ui *u, const char *verb)
{
    const json_t *k = selected_item(u, "data", "key_alias", "team_id");
    const char *id = jstr(k, "id", NULL);
    if (!id) {
        set_message(u, true, "no key selected");
        return;
    }
    char path[256], what[64];
    snprintf(path, sizeof path, "/admin/keys/%s/%s", id, verb);
    snprintf(what, sizeof what, "%s %s", verb, jstr(k, "key_alias", id));
    act(u, "POST", path, NULL, what);
}

/* Runs $EDITOR (vi without one) on the running config's text with curses suspended; a changed
 * text is sent to PUT /admin/config. */
static void edit_config(ui *u)
{
    if (u->view.screen_status != 200) {
        set_message(u, true, "the config is not loaded yet");
        return;
    }
    const char *src = jstr(u->view.screen, "source", "");
    char file[] = "/tmp/aigw-top-XXXXXX.yaml";
    int fd = mkstemps(file, 5);
    if (fd < 0) {
        set_message(u, true, "cannot make a temporary file");
        return;
    }
    size_t len = strlen(src);
    bool written = write(fd, src, len) == (ssize_t)len;
    close(fd);
    if (!written) {
        unlink(file);
        set_message(u, true, "cannot write the temporary file");
        return;
    }
    def_prog_mode();
    endwin();
    const char *editor = getenv("VISUAL") ? getenv("VISUAL") : getenv("EDITOR") ? getenv("EDITOR") : "vi";
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, file, (char *)NULL);
        _exit(127);
    }
    int wstatus = 0;
    if (pid > 0) waitpid(pid, &wstatus, 0);
    reset_prog_mode();
    refresh();
    FILE *f = fopen(file, "rb");
    char *text = xmalloc(4u * 1024 * 1024 + 1);
    size_t n = f ? fread(text, 1, 4u * 1024 * 1024, f) : 0;
    bool whole = f && feof(f);
    if (f) fclose(f);
    unlink(file);
    text[n] = 0;
    if (pid < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
        set_message(u, true, "the editor (%s) failed: nothing applied", editor);
    } else if (!whole) {
        set_message(u, true, "the edited config is over 4 MiB: nothing applied");
    } else if (n == len && !memcmp(text, src, n)) {
        set_message(u, false, "no change");
    } else {
        json_t *body = json_pack("{s:s%}", "source", text, n);
        char *dumped = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (dumped)
            act(u, "PUT", "/admin/config", dumped, "apply config");
        else
            set_message(u, true, "the edited text is not UTF-8: nothing applied");
        free(dumped);
        json_decref(body);
    }
    free(text);
}

static void breaker_reset(ui *u, bool all)
{
    if (all) {
        act(u, "POST", "/admin/breakers/reset", "{}", "reset all breakers");
        return;
    }
    if (u->selected < 0 || (size_t)u->selected >= u->view.ntargets) {
        set_message(u, true, "no target selected");
        return;
    }
    const top_target_row *t = &u->view.targets[u->selected];
    json_t *body = json_pack("{s:s,s:s}", "provider", t->provider, "model", t->model);
    char *dumped = json_dumps(body, JSON_COMPACT);
    char what[64];
    snprintf(what, sizeof what, "reset %.28s/%.28s", t->provider, t->model);
    act(u, "POST", "/admin/breakers/reset", dumped, what);
    free(dumped);
    json_decref(body);
}

/* ---- keys ------------------------------------------------------------------------------------- */

static void start_input(ui *u, enum input_purpose p);

static void wipe_input(ui *u)
{
    explicit_bzero(u->input_text, sizeof u->input_text);
    u->input_len = 0;
}

/* The typed text is complete (enter): what it was for. */
static void input_done(ui *u)
{
    enum input_purpose p = u->input;
    u->input = IN_NONE;
    json_t *body = NULL;
    char path[160], what[64];
    switch (p) {
    case IN_FILTER:
        snprintf(u->filter, sizeof u->filter, "%.*s", (int)sizeof u->filter - 1, u->input_text);
        parse_filter(u, true);
        u->selected = u->top_row = 0;
        break;
    case IN_KEY_ALIAS:
        body = u->input_len ? json_pack("{s:s}", "key_alias", u->input_text) : json_object();
        act_json(u, "POST", "/admin/keys", body, "create key");
        break;
    case IN_VKEY_NAME: /* then its provider */
        if (!u->input_len || u->input_len >= sizeof u->vkey_name) {
            set_message(u, true, "a virtual key's name is 1 to 64 characters of A-Z a-z 0-9 . _ -");
            break;
        }
        snprintf(u->vkey_name, sizeof u->vkey_name, "%.*s", (int)sizeof u->vkey_name - 1, u->input_text);
        start_input(u, IN_VKEY_PROVIDER);
        break;
    case IN_VKEY_PROVIDER: /* then its secret */
        if (!u->input_len || u->input_len >= sizeof u->vkey_provider) {
            set_message(u, true, "the provider type is the config's `type:` (openai, anthropic, …)");
            break;
        }
        snprintf(u->vkey_provider, sizeof u->vkey_provider, "%.*s", (int)sizeof u->vkey_provider - 1,
                 u->input_text);
        start_input(u, IN_VKEY_SECRET);
        break;
    case IN_VKEY_SECRET: /* the gateway checks all three and says what is wrong */
        body = json_pack("{s:s,s:s,s:s%}", "name", u->vkey_name, "provider", u->vkey_provider, "secret",
                         u->input_text, u->input_len);
        snprintf(what, sizeof what, "create virtual key %.32s", u->vkey_name);
        act_json(u, "POST", "/admin/virtual-keys", body, what);
        break;
    case IN_VKEY_ROTATE:
        body = json_pack("{s:s%}", "secret", u->input_text, u->input_len);
        snprintf(path, sizeof path, "/admin/virtual-keys/%s/rotate", u->vkey_name);
        snprintf(what, sizeof what, "rotate %.32s", u->vkey_name);
        act_json(u, "POST", path, body, what);
        break;
    default: break;
    }
    if (p != IN_VKEY_NAME && p != IN_VKEY_PROVIDER) wipe_input(u);
}

static void input_key(ui *u, int ch)
{
    if (u->input == IN_VKEY_DELETE) { /* one key: y deletes */
        u->input = IN_NONE;
        if (ch == 'y' || ch == 'Y') {
            char path[160], what[64];
            snprintf(path, sizeof path, "/admin/virtual-keys/%s", u->vkey_name);
            snprintf(what, sizeof what, "delete %.32s", u->vkey_name);
            act(u, "DELETE", path, NULL, what);
        } else {
            set_message(u, false, "%s kept", u->vkey_name);
        }
        return;
    }
    size_t max = u->input == IN_FILTER ? sizeof u->filter : sizeof u->input_text;
    if (ch == 27) { /* esc */
        if (u->input == IN_FILTER) {
            u->filter[0] = 0;
            parse_filter(u, true);
        }
        u->input = IN_NONE;
        wipe_input(u);
        return;
    } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        input_done(u);
        return;
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (u->input_len) u->input_text[--u->input_len] = 0;
    } else if (ch >= 0x20 && ch < 0x7f && u->input_len + 1 < max) {
        u->input_text[u->input_len++] = (char)ch;
        u->input_text[u->input_len] = 0;
    }
    if (u->input == IN_FILTER) { /* as typed: the plain words at once, the log's terms on enter */
        snprintf(u->filter, sizeof u->filter, "%.*s", (int)sizeof u->filter - 1, u->input_text);
        parse_filter(u, false);
    }
}

static void start_input(ui *u, enum input_purpose p)
{
    u->input = p;
    wipe_input(u);
    u->message[0] = 0;
    if (p == IN_FILTER) {
        snprintf(u->input_text, sizeof u->input_text, "%.*s", (int)sizeof u->input_text - 1, u->filter);
        u->input_len = strlen(u->input_text);
    }
}

/* The selected virtual key's name into u->vkey_name, then input p about it (rotate, delete). */
static void vkey_action(ui *u, enum input_purpose p)
{
    const char *name = jstr(selected_item(u, "data", "name", "provider"), "name", NULL);
    if (!name || strlen(name) >= sizeof u->vkey_name || strpbrk(name, "/?#% ")) {
        set_message(u, true, "no virtual key selected");
        return;
    }
    snprintf(u->vkey_name, sizeof u->vkey_name, "%.*s", (int)sizeof u->vkey_name - 1, name);
    start_input(u, p);
}

/* One key; false: quit. */
static bool on_key(ui *u, int ch)
{
    if (u->secret[0]) { /* the box goes with any key; the key does nothing else */
        u->secret[0] = 0;
        return true;
    }
    if (u->input != IN_NONE) {
        input_key(u, ch);
        return true;
    }
    if (u->help) {
        u->help = false;
        if (ch == 'q') return false;
        return true;
    }
    if (ch != ERR) u->message[0] = 0;
    int page = LINES > 8 ? LINES - 8 : 1;
    switch (ch) {
    case 'q': return false;
    case '\t': go(u, u->screen >= NTABS - 1 ? SCR_OVERVIEW : u->screen + 1); return true;
    case KEY_BTAB:
        go(u, u->screen == SCR_OVERVIEW || u->screen >= NTABS ? NTABS - 1 : u->screen - 1);
        return true;
    case '?': u->help = true; return true;
    case '/': start_input(u, IN_FILTER); return true;
    case 27:
        if (u->screen == SCR_DETAIL) {
            go(u, u->back);
        } else {
            u->filter[0] = 0;
            parse_filter(u, true);
        }
        return true;
    case KEY_UP:
    case 'k': u->selected--; return true;
    case KEY_DOWN:
    case 'j': u->selected++; return true;
    case KEY_PPAGE: u->selected -= page; return true;
    case KEY_NPAGE: u->selected += page; return true;
    case KEY_HOME: u->selected = 0; return true;
    default: break;
    }
    if (ch >= '1' && ch < '1' + NTABS) {
        go(u, (enum ui_screen)(ch - '1'));
        return true;
    }
    switch (u->screen) {
    case SCR_OVERVIEW:
        if (ch == 'p') {
            u->paused = !u->paused;
            json_decref(u->frozen_logs);
            u->frozen_logs = u->paused ? json_deep_copy(u->view.logs) : NULL;
            top_client_follow_logs(u->client, !u->paused && !u->o->keyless);
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            const char *id = selected_log_id(u);
            if (id && strlen(id) < sizeof u->detail_id && !strpbrk(id, "/?#% ")) {
                snprintf(u->detail_id, sizeof u->detail_id, "%s", id);
                u->back = SCR_OVERVIEW;
                go(u, SCR_DETAIL);
            }
        }
        break;
    case SCR_KEYS:
        if (ch == 'n')
            start_input(u, IN_KEY_ALIAS);
        else if (ch == 'd')
            key_action(u, "disable");
        else if (ch == 'e')
            key_action(u, "enable");
        else if (ch == 'r')
            key_action(u, "rotate");
        break;
    case SCR_VKEYS:
        if (ch == 'n')
            start_input(u, IN_VKEY_NAME);
        else if (ch == 'r')
            vkey_action(u, IN_VKEY_ROTATE);
        else if (ch == 'd')
            vkey_action(u, IN_VKEY_DELETE);
        break;
    case SCR_CONFIG:
        if (ch == 'E')
            edit_config(u);
        else if (ch == 'R')
            act(u, "POST", "/admin/config/reload", NULL, "reload config");
        break;
    case SCR_BREAKERS:
        if (ch == 'r')
            breaker_reset(u, false);
        else if (ch == 'R')
            breaker_reset(u, true);
        break;
    default: break;
    }
    return true;
}

static void init_colors(const top_ui_options *o)
{
    if (!o->color) return;
    start_color();
    use_default_colors();
    init_pair(C_OK, COLOR_GREEN, -1);
    init_pair(C_WARN, COLOR_YELLOW, -1);
    init_pair(C_BAD, COLOR_RED, -1);
    init_pair(C_INFO, COLOR_CYAN, -1);
    init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
}

int top_ui_run(top_client *c, const top_ui_options *o, volatile sig_atomic_t *stop)
{
    ui u = {.client = c, .o = o, .screen = SCR_OVERVIEW};
    init_colors(o);
    if (o->keyless) top_client_follow_logs(c, false); /* the admin API would only say 403 */
    timeout(100);
    keypad(stdscr, TRUE);
    set_escdelay(25);
    /* what the screen shows was drawn from: a view that differs in any of these is drawn at
     * once (a lost gateway too, which scrapes nothing); otherwise once a second */
    unsigned long drawn_scrapes = ~0ul;
    unsigned drawn_action = 0;
    bool drawn_connected = false;
    const json_t *drawn_logs = NULL, *drawn_screen = NULL;
    struct timespec last = {0}, last_draw = {0};
    bool dirty = true;
    while (!*stop) {
        int ch = getch();
        if (ch != ERR && ch != KEY_RESIZE) {
            if (!on_key(&u, ch)) break;
            dirty = true;
        }
        if (ch == KEY_RESIZE) dirty = true;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double since = (double)(now.tv_sec - last.tv_sec) + (now.tv_nsec - last.tv_nsec) / 1e9;
        if (!dirty && since < 0.25) continue;
        if (u.have_view) top_client_view_release(c, &u.view);
        top_client_view(c, &u.view);
        u.have_view = true;
        take_action_reply(&u);
        double since_draw = (double)(now.tv_sec - last_draw.tv_sec) + (now.tv_nsec - last_draw.tv_nsec) / 1e9;
        if (dirty || since_draw >= 1 || u.view.scrapes != drawn_scrapes ||
            u.view.connected != drawn_connected || u.view.action_seq != drawn_action ||
            u.view.logs != drawn_logs || u.view.screen != drawn_screen) {
            draw(&u);
            drawn_scrapes = u.view.scrapes;
            drawn_connected = u.view.connected;
            drawn_action = u.view.action_seq;
            drawn_logs = u.view.logs;
            drawn_screen = u.view.screen;
            last_draw = now;
        }
        last = now;
        dirty = false;
    }
    if (u.have_view) top_client_view_release(c, &u.view);
    json_decref(u.frozen_logs);
    return 0;
}
