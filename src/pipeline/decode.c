/* decode.c — the DECODE phase: the body is valid JSON, and `model` and `stream` are read.
 *
 * util/json.c validates the whole body in one pass and returns the byte spans of the two
 * fields (and of `optillm_approach`, a reasoning technique's name: reason_stage.c); nothing is parsed into a
 * tree (the byte-forwarding path never builds one). A model name is compared, logged and echoed in headers:
 * 1–256 bytes, no NUL (C strings would stop at it and route "m\u0000evil" as "m"), no control bytes. An
 * absent model is a 400 unless the request's gateway key has a default route (key_route.c adds the model
 * then). */
#include <stdio.h>

#include "pipeline/stages.h"
#include "store/store.h"
#include "util/json.h"

#define MODEL_NAME_MAX 256

static bool printable_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static stage_result decode_on_request(exchange *x, void *state)
{
    const buf *body = &x->http->body;
    json_field fields[] = {{.key = "model"}, {.key = "stream"}, {.key = "optillm_approach"}};
    const char *why;
    size_t at;
    if (!json_scan_object(body->data ? body->data : "", body->len, fields, 3, &why, &at)) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body is not valid JSON: %s at byte %zu", why, at);
        exchange_error(x, 400, "invalid_request_error", "invalid_json", NULL, msg);
        return STAGE_DONE;
    }
    if (fields[0].type == JSON_KIND_ABSENT && x->prompt_ref) {
        /* a prompt template's model serves it (prompt_stage.c, in PROMPT) */
        x->stream = fields[1].type == JSON_KIND_TRUE;
        return STAGE_NEXT;
    }
    if (fields[0].type == JSON_KIND_ABSENT && x->key && x->key->default_route) {
        /* the key's default route serves it (key_route.c, next) */
        x->stream = fields[1].type == JSON_KIND_TRUE;
        return STAGE_NEXT;
    }
    if (fields[0].type != JSON_KIND_STRING) {
        exchange_error(x, 400, "invalid_request_error",
                       fields[0].type ? "invalid_type" : "missing_required_parameter", "model",
                       fields[0].type ? "'model' must be a string" : "you must provide a model parameter");
        return STAGE_DONE;
    }
    x->model = json_string_decode(x->arena, body->data, fields[0].start, fields[0].end, &x->model_len);
    if (x->model_len == 0 || x->model_len > MODEL_NAME_MAX || !printable_name(x->model, x->model_len)) {
        exchange_error(x, 400, "invalid_request_error", "invalid_value", "model",
                       x->model_len > MODEL_NAME_MAX
                           ? "'model' is too long (at most 256 bytes)"
                           : "'model' must be a non-empty name without control characters");
        return STAGE_DONE;
    }
    x->stream = fields[1].type == JSON_KIND_TRUE;
    if (fields[2].type) { /* reason_stage.c reads it next (a technique, OptiLLM's convention) */
        x->reasoning.approach_start = fields[2].start;
        x->reasoning.approach_end = fields[2].end;
    }
    x->body_model_start = fields[0].start;
    x->body_model_end = fields[0].end;
    return STAGE_NEXT;
}

const stage stage_decode = {
    .name = "decode",
    .phase = PHASE_DECODE,
    .on_request = decode_on_request,
};
