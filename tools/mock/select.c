/* select.c — POST /v2/modelRouter/modelSelect: an imitation of a model-select service in Not
 * Diamond's shape, for aigw's external router (docs/routing.md, "External router").
 *
 * Request: {"messages": [{"role", "content"}…], "llm_providers": [{"provider", "model"}…],
 * "tradeoff"?, "preference_id"?}; anything else is a 400 naming what is wrong, so a gateway
 * that sends the wrong shape is caught. Answer: {"providers": [{"provider", "model"}],
 * "session_id": "mock-select-N"}.
 *
 * Directives (in the messages, or x-mock-* headers), so one test drives the service through the
 * prompt it sends to the gateway:
 *   select=first (default) | last | PROVIDER/MODEL (named, even one not offered) | none (an
 *          empty list) | garbage (200 with a body that is not JSON) | huge (a 1 MiB answer)
 *   select_ms=N      answer after N ms
 *   select_status=N  answer N with an error body */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define HUGE_ANSWER (1024 * 1024)

static void select_error(conn *c, int status, const char *message, long ttfb)
{
    sbuf b = {0};
    sb_str(&b, "{\"detail\":");
    sb_json_str(&b, message);
    sb_str(&b, "}");
    respond_body(c, status, NULL, b.p, b.len, ttfb);
    free(b.p);
}

void mock_model_select(conn *c, json_t *req, const faults *f)
{
    long ttfb = f->select_ms;
    json_t *messages = json_object_get(req, "messages");
    json_t *providers = json_object_get(req, "llm_providers");
    if (!json_is_object(req) || !json_is_array(messages) || !json_is_array(providers) ||
        !json_array_size(providers)) {
        select_error(c, 400, "aigw-mock: messages and a non-empty llm_providers list are required", ttfb);
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(providers, i, p)
    {
        if (!json_is_string(json_object_get(p, "provider")) || !json_is_string(json_object_get(p, "model"))) {
            select_error(c, 400, "aigw-mock: each of llm_providers needs provider and model strings", ttfb);
            return;
        }
    }
    json_array_foreach(messages, i, p)
    {
        if (!json_is_string(json_object_get(p, "role")) || !json_is_string(json_object_get(p, "content"))) {
            select_error(c, 400, "aigw-mock: each message needs role and content strings", ttfb);
            return;
        }
    }
    if (f->select_status) {
        char msg[64];
        snprintf(msg, sizeof msg, "aigw-mock injected status %d", f->select_status);
        select_error(c, f->select_status, msg, ttfb);
        return;
    }
    const char *how = f->select[0] ? f->select : "first";
    if (!strcmp(how, "garbage")) {
        static const char garbage[] = "<html>not the answer you were looking for</html>";
        respond_body(c, 200, NULL, garbage, sizeof garbage - 1, ttfb);
        return;
    }
    sbuf b = {0};
    if (!strcmp(how, "huge")) {
        sb_str(&b, "{\"providers\":[{\"provider\":\"openai\",\"model\":\"");
        sb_reserve(&b, HUGE_ANSWER);
        memset(b.p + b.len, 'x', HUGE_ANSWER);
        b.len += HUGE_ANSWER;
        b.p[b.len] = '\0';
        sb_str(&b, "\"}],\"session_id\":\"mock-select-huge\"}");
        respond_body(c, 200, NULL, b.p, b.len, ttfb);
        free(b.p);
        return;
    }
    const char *provider = NULL, *model = NULL;
    char named[128];
    if (!strcmp(how, "first") || !strcmp(how, "last")) {
        json_t *chosen =
            json_array_get(providers, !strcmp(how, "first") ? 0 : json_array_size(providers) - 1);
        provider = json_string_value(json_object_get(chosen, "provider"));
        model = json_string_value(json_object_get(chosen, "model"));
    } else if (strcmp(how, "none")) {
        snprintf(named, sizeof named, "%s", how);
        char *slash = strchr(named, '/');
        if (slash) {
            *slash = '\0';
            provider = named;
            model = slash + 1;
        } else {
            model = named;
        }
    }
    sb_str(&b, "{\"providers\":[");
    if (model) {
        sb_str(&b, "{\"provider\":");
        sb_json_str(&b, provider ? provider : "");
        sb_str(&b, ",\"model\":");
        sb_json_str(&b, model);
        sb_str(&b, "}");
    }
    sb_fmt(&b, "],\"session_id\":\"mock-select-%llu\"}", (unsigned long long)conn_next_id(c));
    respond_body(c, 200, NULL, b.p, b.len, ttfb);
    free(b.p);
}
