/* top_client.c — the background thread of `aigw top` (top_client.h).
 *
 * One thread, one libcurl easy handle reused (its connection kept alive), a loop: the waiting
 * action if any, then GET /metrics, the request log's tail (with the UI's filters, which the
 * admin API applies to the whole log), the watched path, then a wait on a
 * condition variable until the next second or until the UI asks for something. Each call has a
 * connect timeout of 1 s and a total of 5 s, and a progress callback that ends it when the
 * client stops, so quitting never waits for a slow gateway. Rejected: curl multi on the UI's
 * poll loop — it would interleave the drawing with transfer bookkeeping for no gain, since
 * only one call at a time is ever needed.
 *
 * The view's numbers come from the scrapes only: rates are differences of two consecutive
 * scrapes (top_metrics_rates) over the monotonic time between them; a target's error rate is
 * its provider's failed attempts over its attempts in that interval. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "top/top_client.h"
#include "util/alloc.h"
#include "util/buf.h"

struct top_client {
    char *base, *auth_header;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, woken;
    /* asked by the UI (under lock) */
    char *watch;
    bool follow_logs;
    char *log_query; /* the request log's filters ("&model=…"), or NULL */
    char *act_method, *act_path, *act_body, act_what[64];
    bool act_pending;
    /* published (under lock) */
    top_view view;
    /* the thread's own */
    CURL *curl;
    top_scrape scrapes[2];
    int current; /* which of scrapes holds the newest; -1: none */
    double scraped_at;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct sink {
    buf *b;
    size_t max;
    bool too_big;
} sink;

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    if (s->b->len + len > s->max) {
        s->too_big = true;
        return 0; /* ends the transfer: CURLE_WRITE_ERROR */
    }
    buf_append(s->b, data, len);
    return s->b->overflowed ? 0 : len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    top_client *c = ud;
    pthread_mutex_lock(&c->lock);
    bool stop = c->stopping;
    pthread_mutex_unlock(&c->lock);
    return stop; /* non-zero aborts the call */
}

/* One call; its body into out (bounded by max). Returns the HTTP status, 0 when there was no
 * answer (why in err). */
static int call(top_client *c, const char *method, const char *path, const char *body, buf *out, size_t max,
                char *err, size_t errlen)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    sink s = {.b = out, .max = max};
    buf_reset(out);
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *headers = c->auth_header ? curl_slist_append(NULL, c->auth_header) : NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    long status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        return (int)status;
    }
    if (s.too_big)
        snprintf(err, errlen, "%s %s: the answer is larger than %zu bytes", method, path, max);
    else
        snprintf(err, errlen, "%s: %s", c->base, curl_easy_strerror(rc));
    return 0;
}

static json_t *parse_json(const buf *b)
{
    return b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
}

/* Replaces *slot with fresh (lock held). */
static void publish(json_t **slot, json_t *fresh)
{
    json_decref(*slot);
    *slot = fresh;
}

static void shift_in(double *ring, double v)
{
    memmove(ring, ring + 1, (TOP_HISTORY - 1) * sizeof *ring);
    ring[TOP_HISTORY - 1] = v;
}

/* The newest scrape into the view (lock held). */
static void publish_scrape(top_client *c, const top_scrape *now, const top_scrape *then, double seconds)
{
    top_view *v = &c->view;
    v->connected = true;
    v->status[0] = 0;
    v->scrapes++;
    v->open_connections = now->open_connections;
    v->have_rates = then != NULL;
    if (then) top_metrics_rates(now, then, seconds, &v->rates);
    shift_in(v->rps, then ? v->rates.requests_per_s : NAN);
    top_target_row rows[TOP_MAX_TARGETS];
    size_t n = 0;
    for (size_t i = 0; i < now->ntargets && n < TOP_MAX_TARGETS; i++) {
        const top_target *t = &now->targets[i];
        top_target_row *r = &rows[n++];
        const top_target_row *old = NULL;
        for (size_t j = 0; j < v->ntargets; j++)
            if (!strcmp(v->targets[j].provider, t->provider) && !strcmp(v->targets[j].model, t->model))
                old = &v->targets[j];
        if (old) {
            memcpy(r->latency, old->latency, sizeof r->latency);
        } else {
            for (size_t k = 0; k < TOP_HISTORY; k++)
                r->latency[k] = NAN;
        }
        memcpy(r->provider, t->provider, sizeof r->provider);
        memcpy(r->model, t->model, sizeof r->model);
        r->breaker = t->breaker;
        r->in_flight = t->in_flight;
        r->ewma_s = t->ewma_s;
        shift_in(r->latency, t->ewma_s > 0 ? t->ewma_s : NAN);
        r->error_rate = NAN;
        const top_provider_totals *p1 = top_scrape_provider(now, t->provider);
        const top_provider_totals *p0 = then ? top_scrape_provider(then, t->provider) : NULL;
        if (p1) {
            double a = p1->attempts - (p0 && p0->attempts <= p1->attempts ? p0->attempts : 0);
            double f = p1->failures - (p0 && p0->attempts <= p1->attempts ? p0->failures : 0);
            if (a > 0) r->error_rate = f / a;
        }
    }
    memcpy(v->targets, rows, n * sizeof rows[0]);
    v->ntargets = n;
}

static void run_action(top_client *c, buf *b, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->lock);
    if (!c->act_pending) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    char *method = c->act_method, *path = c->act_path, *body = c->act_body;
    c->act_method = c->act_path = c->act_body = NULL;
    char what[64];
    memcpy(what, c->act_what, sizeof what);
    pthread_mutex_unlock(&c->lock);

    int status = call(c, method, path, body, b, TOP_JSON_MAX, err, errlen);
    json_t *reply = status ? parse_json(b) : json_pack("{s:{s:s}}", "error", "message", err);
    pthread_mutex_lock(&c->lock);
    c->act_pending = false;
    c->view.action_seq++;
    c->view.action_status = status;
    memcpy(c->view.action_what, what, sizeof what);
    publish(&c->view.action_reply, reply);
    pthread_mutex_unlock(&c->lock);
    if (body) explicit_bzero(body, strlen(body)); /* a virtual key's secret, maybe */
    free(method);
    free(path);
    free(body);
}

static void fetch_round(top_client *c, buf *b)
{
    char err[256] = "";
    run_action(c, b, err, sizeof err);

    int status = call(c, "GET", "/metrics", NULL, b, TOP_METRICS_MAX, err, sizeof err);
    double t = now_s();
    int next = c->current < 0 ? 0 : 1 - c->current;
    bool ok = status == 200 && top_metrics_parse(b->data, b->len, &c->scrapes[next]);
    pthread_mutex_lock(&c->lock);
    if (ok) {
        const top_scrape *then = c->current < 0 ? NULL : &c->scrapes[c->current];
        publish_scrape(c, &c->scrapes[next], then, t - c->scraped_at);
    } else {
        c->view.connected = false;
        if (status)
            snprintf(c->view.status, sizeof c->view.status, "GET /metrics: HTTP %d%s", status,
                     status != 401 && status != 403 ? ""
                     : c->auth_header               ? " (the key is not an admin key)"
                                                    : " (this gateway has auth: give --key)");
        else
            snprintf(c->view.status, sizeof c->view.status, "%.230s — retrying", err);
    }
    bool follow = c->follow_logs;
    char watch[sizeof c->view.screen_path] = "", query[TOP_LOG_QUERY_MAX + 1],
                      logs_path[TOP_LOG_QUERY_MAX + 64];
    if (c->watch) snprintf(watch, sizeof watch, "%s", c->watch);
    snprintf(query, sizeof query, "%s", c->log_query ? c->log_query : "");
    snprintf(logs_path, sizeof logs_path, "/admin/logs?limit=%d%s", TOP_LOG_ROWS, query);
    pthread_mutex_unlock(&c->lock);
    if (ok) {
        c->current = next;
        c->scraped_at = t;
    } else {
        c->current = -1; /* the next answer starts the rates again */
        return;
    }

    if (follow) {
        status = call(c, "GET", logs_path, NULL, b, TOP_JSON_MAX, err, sizeof err);
        json_t *logs = status ? parse_json(b) : NULL;
        pthread_mutex_lock(&c->lock);
        /* an answer to filters the UI has changed meanwhile is not shown under the new ones */
        bool current = !strcmp(query, c->log_query ? c->log_query : "");
        if (current) c->view.logs_status = status;
        if (current && status) {
            publish(&c->view.logs, logs); /* rows, or the error's body: the UI shows its message */
            logs = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        json_decref(logs);
    }
    if (watch[0]) {
        status = call(c, "GET", watch, NULL, b, TOP_JSON_MAX, err, sizeof err);
        json_t *screen = status ? parse_json(b) : NULL;
        pthread_mutex_lock(&c->lock);
        if (c->watch && !strcmp(c->watch, watch)) { /* still what the UI wants */
            c->view.screen_status = status;
            snprintf(c->view.screen_path, sizeof c->view.screen_path, "%s", watch);
            publish(&c->view.screen, screen);
            screen = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        json_decref(screen);
    }
}

static void *client_main(void *arg)
{
    top_client *c = arg;
    buf b;
    buf_init(&b, TOP_METRICS_MAX + 1);
    for (;;) {
        double started = now_s();
        fetch_round(c, &b);
        pthread_mutex_lock(&c->lock);
        double due = started + 1.0;
        while (!c->stopping && !c->woken && now_s() < due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double left = due - now_s();
            if (left <= 0) break;
            long ns = ts.tv_nsec + (long)((left - (long)left) * 1e9);
            ts.tv_sec += (time_t)left + ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        c->woken = false;
        bool stop = c->stopping;
        pthread_mutex_unlock(&c->lock);
        if (stop) break;
    }
    buf_free(&b);
    return NULL;
}

top_client *top_client_start(const char *base_url, const char *key, char *err, size_t errlen)
{
    top_client *c = xcalloc(1, sizeof *c);
    size_t blen = strlen(base_url);
    while (blen && base_url[blen - 1] == '/')
        blen--;
    c->base = xstrndup(base_url, blen);
    if (key) {
        size_t alen = strlen(key) + 32;
        c->auth_header = xmalloc(alen);
        snprintf(c->auth_header, alen, "Authorization: Bearer %s", key);
    }
    c->follow_logs = true;
    c->current = -1;
    for (size_t k = 0; k < TOP_HISTORY; k++)
        c->view.rps[k] = NAN;
    snprintf(c->view.status, sizeof c->view.status, "connecting to %s", c->base);
    c->curl = curl_easy_init();
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (!c->curl || pthread_create(&c->thread, NULL, client_main, c) != 0) {
        snprintf(err, errlen, "cannot start the client's thread");
        if (c->curl) curl_easy_cleanup(c->curl);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        free(c->base);
        free(c->auth_header);
        free(c);
        return NULL;
    }
    return c;
}

void top_client_stop(top_client *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    curl_easy_cleanup(c->curl);
    json_decref(c->view.logs);
    json_decref(c->view.screen);
    json_decref(c->view.action_reply);
    free(c->watch);
    free(c->log_query);
    free(c->act_method);
    free(c->act_path);
    if (c->act_body) explicit_bzero(c->act_body, strlen(c->act_body));
    free(c->act_body);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c->base);
    free(c->auth_header);
    free(c);
}

static void wake(top_client *c)
{
    c->woken = true;
    pthread_cond_signal(&c->wake);
}

void top_client_watch(top_client *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    if (!path || !c->watch || strcmp(path, c->watch)) {
        free(c->watch);
        c->watch = path ? xstrdup(path) : NULL;
        publish(&c->view.screen, NULL); /* the last screen's data is not this one's */
        c->view.screen_status = 0;
        c->view.screen_path[0] = 0;
        wake(c);
    }
    pthread_mutex_unlock(&c->lock);
}

void top_client_log_query(top_client *c, const char *query)
{
    if (query && (!*query || strlen(query) > TOP_LOG_QUERY_MAX)) query = NULL;
    pthread_mutex_lock(&c->lock);
    if (!query != !c->log_query || (query && strcmp(query, c->log_query))) {
        free(c->log_query);
        c->log_query = query ? xstrdup(query) : NULL;
        publish(&c->view.logs, NULL); /* the rows of the old filters are not the new ones' */
        c->view.logs_status = 0;
        wake(c);
    }
    pthread_mutex_unlock(&c->lock);
}

void top_client_follow_logs(top_client *c, bool on)
{
    pthread_mutex_lock(&c->lock);
    c->follow_logs = on;
    pthread_mutex_unlock(&c->lock);
}

bool top_client_act(top_client *c, const char *method, const char *path, const char *body, const char *what)
{
    pthread_mutex_lock(&c->lock);
    bool free_slot = !c->act_pending;
    if (free_slot) {
        c->act_pending = true;
        c->act_method = xstrdup(method);
        c->act_path = xstrdup(path);
        c->act_body = body ? xstrdup(body) : NULL;
        snprintf(c->act_what, sizeof c->act_what, "%s", what);
        wake(c);
    }
    pthread_mutex_unlock(&c->lock);
    return free_slot;
}

void top_client_view(top_client *c, top_view *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->view;
    json_incref(out->logs);
    json_incref(out->screen);
    json_incref(out->action_reply);
    pthread_mutex_unlock(&c->lock);
}

void top_client_view_release(top_client *c, top_view *v)
{
    pthread_mutex_lock(&c->lock);
    json_decref(v->logs);
    json_decref(v->screen);
    json_decref(v->action_reply);
    v->logs = v->screen = v->action_reply = NULL;
    pthread_mutex_unlock(&c->lock);
}
