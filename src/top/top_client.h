/* top_client.h — `aigw top`'s connection to a gateway: one background thread that scrapes
 * GET /metrics, reads the request log's tail and the current screen's admin resource about
 * once a second, and runs the operator's actions, so the terminal never waits on the network.
 *
 * The UI thread reads what was fetched through a view (top_client_view): plain numbers copied,
 * and references to immutable JSON trees taken under the client's lock (every reference count
 * change happens under it, so jansson's counts are never raced). A tree, once published, is
 * never changed. Every response is bounded (TOP_METRICS_MAX, TOP_JSON_MAX): a larger one is an
 * error, never a larger allocation. A gateway that goes away is retried every second — the
 * view says so — and its counters starting again from zero read as a restart (top_metrics.h). */
#ifndef AIGW_TOP_CLIENT_H
#define AIGW_TOP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "top/top_metrics.h"

#define TOP_HISTORY 120                     /* samples (seconds) kept for the sparklines */
#define TOP_METRICS_MAX (16u * 1024 * 1024) /* one scrape */
#define TOP_JSON_MAX (8u * 1024 * 1024)     /* one admin answer */
#define TOP_LOG_ROWS 100                    /* the tail of the request log fetched */
#define TOP_LOG_QUERY_MAX 1024              /* the request log's filters, encoded */

typedef struct top_target_row {
    char provider[TOP_NAME_MAX], model[TOP_NAME_MAX];
    int breaker; /* 0 closed, 1 open, 2 half-open, -1 unknown */
    double in_flight, ewma_s;
    double error_rate;           /* the provider's failed attempts over the last interval; NAN: none */
    double latency[TOP_HISTORY]; /* ewma_s per second, oldest first; NAN: no sample */
} top_target_row;

typedef struct top_view {
    bool connected;   /* the last scrape answered */
    char status[256]; /* what went wrong, when not connected */
    unsigned long scrapes;
    bool have_rates; /* two scrapes in a row: the rates mean something */
    top_rates rates;
    double open_connections;
    double rps[TOP_HISTORY]; /* requests/s per second, oldest first */
    top_target_row targets[TOP_MAX_TARGETS];
    size_t ntargets;
    json_t *logs;      /* GET /admin/logs's answer (an object with "data"), or NULL */
    int logs_status;   /* its HTTP status; 0: not fetched */
    json_t *screen;    /* the watched path's answer, or NULL */
    int screen_status; /* its HTTP status; 0: not fetched yet */
    char screen_path[512];
    unsigned action_seq; /* moves when an action's answer arrives */
    int action_status;   /* 0: could not reach the gateway */
    json_t *action_reply;
    char action_what[64];
} top_view;

typedef struct top_client top_client;

/* A client of base_url (e.g. http://127.0.0.1:8080, no trailing slash needed) with the admin
 * key sent as Bearer (NULL: none — a gateway without auth serves /metrics to anyone, and its
 * admin API answers 403); starts its thread. NULL (err set) when the thread cannot start. */
top_client *top_client_start(const char *base_url, const char *key, char *err, size_t errlen);
/* Stops the thread (an HTTP call in flight is abandoned at once) and frees the client. */
void top_client_stop(top_client *c);

/* The path (with its query) fetched each second for the screen shown; NULL: none. Copied. */
void top_client_watch(top_client *c, const char *path);
/* The request log's filters as GET /admin/logs takes them, each "&name=value" URL-encoded
 * (e.g. "&model=gpt-4o&status=5xx"), or NULL/"" for none: the tail fetched is then the newest
 * matching rows of the whole log. A change drops the rows shown until the next answer. */
void top_client_log_query(top_client *c, const char *query);
/* Whether the request log's tail is fetched (off while paused: the rows stay as they were). */
void top_client_follow_logs(top_client *c, bool on);

/* One action (method, path, JSON body or NULL), run before the next fetch; `what` names it in
 * the view. false when another action is still waiting. */
bool top_client_act(top_client *c, const char *method, const char *path, const char *body, const char *what);

/* The current view into out, with references to its JSON trees; give them back with
 * top_client_view_release before the next call with the same out. */
void top_client_view(top_client *c, top_view *out);
void top_client_view_release(top_client *c, top_view *v);

#endif
