/* server.h — `aigw serve`: worker threads, listeners, signals and graceful drain.
 *
 * N workers (config `workers`, default: the number of cores), each with its own libuv loop,
 * its own SO_REUSEPORT listening socket (the kernel spreads connections across them), its
 * own upstream client and access-log writer. The main thread only waits for signals.
 * SIGTERM/SIGINT drain: listeners close, idle connections close, requests and streams in
 * flight finish (their responses say Connection: close), and after `timeouts.drain` whatever
 * is left is closed; then the process exits 0. A second signal closes everything at once. */
#ifndef AIGW_SERVER_SERVER_H
#define AIGW_SERVER_SERVER_H

#include <stdbool.h>

#include "config/config.h"

typedef struct server server;

/* Runs the gateway until drained; returns the process exit code. */
int server_run(const aigw_config *cfg);

/* For /readyz: every worker is serving and the server is not draining. */
bool server_is_ready(const server *srv);

#endif
