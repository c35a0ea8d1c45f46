/* h1.h — the upstream module's own HTTP/1.1 client for plain http:// providers (internal to
 * src/upstream: upstream.c chooses it in upstream_start and passes resume and cancel on).
 * The contract is upstream.h's, callbacks and results included. */
#ifndef AIGW_UPSTREAM_H1_H
#define AIGW_UPSTREAM_H1_H

#include <stdbool.h>

#include "upstream/upstream.h"

/* The first member of both kinds of call object, so upstream.c can tell them apart. */
typedef enum upstream__kind { UPSTREAM__CURL = 0x6375726c, UPSTREAM__H1 = 0x68317631 } upstream__kind;

typedef struct h1_client h1_client;

h1_client *h1_client_new(uv_loop_t *loop);
/* Cancels every call (no callbacks fire), closes every connection; the memory goes once the
 * loop has run the close callbacks. */
void h1_client_close(h1_client *client);

/* Starts a call when req->url is an http:// URL this client takes (no userinfo, a path of
 * visible ASCII); otherwise returns NULL with *declined set, and curl takes it. NULL without
 * *declined: could not start (no callback will fire). */
upstream_call *h1_start(h1_client *client, const upstream_request *req, const upstream_callbacks *callbacks,
                        void *ud, bool *declined);
void h1_resume(upstream_call *call);
void h1_cancel(upstream_call *call);

#endif
