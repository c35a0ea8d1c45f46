/* pipeline.h — the gateway's application: what the server runs for each request.
 *
 * main.c hands pipeline_app to server_run; the server calls it for every request, and the
 * pipeline walks the request through its stages (stage.h: the phase table and the interface a
 * module joins the path with; exchange.h: the per-request state the stages share). */
#ifndef AIGW_PIPELINE_PIPELINE_H
#define AIGW_PIPELINE_PIPELINE_H

#include "server/server.h"

extern const http_app pipeline_app;

#endif
