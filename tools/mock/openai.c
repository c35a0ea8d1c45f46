/* openai.c — aigw-mock's OpenAI-compatible endpoints: chat completions (JSON and SSE, tool
 * calls, images, JSON output, limits, usage details), legacy completions, embeddings, models,
 * and OpenAI-shaped errors.
 *
 * Chat reads its request into the canonical view and writes the canonical reply of reply.c in
 * OpenAI's shape; the reply's content is the same in every format (README.md, "Rules").
 * Stream shape, as OpenAI sends it: a role chunk; the text one word per chunk, or per tool call
 * a first chunk with index/id/type/name and empty arguments, then argument fragments of at most
 * 5 bytes (never inside a UTF-8 sequence); a chunk with finish_reason; a usage chunk with
 * `choices: []` only when stream_options.include_usage; `data: [DONE]`. Usage details
 * (cached_tokens, reasoning_tokens) appear only when non-zero, so a plain reply's usage stays
 * exactly {prompt_tokens, completion_tokens, total_tokens}. */
#include <ctype.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define ARG_FRAGMENT 5

void openai_error(conn *c, int status, const char *type, const char *message, int retry_after, long ttfb)
{
    openai_error_param(c, status, type, message, NULL, NULL, retry_after, ttfb);
}

void openai_error_param(conn *c, int status, const char *type, const char *message, const char *param,
                        const char *code, int retry_after, long ttfb)
{
    sbuf b = {0};
    sb_str(&b, "{\"error\":{\"message\":");
    sb_json_str(&b, message);
    sb_str(&b, ",\"type\":");
    sb_json_str(&b, type);
    sb_str(&b, ",\"param\":");
    sb_json_str(&b, param);
    sb_str(&b, ",\"code\":");
    sb_json_str(&b, code);
    sb_str(&b, "}}");
    char extra[96] = "";
    if (status == 429) /* a rate limit's 429 knows the exact wait */
        snprintf(extra, sizeof extra, "Retry-After: %d\r\nretry-after-ms: %ld\r\n",
                 retry_after ? retry_after : 1,
                 c->rl_retry_ms ? c->rl_retry_ms : (retry_after ? retry_after : 1) * 1000L);
    respond_body(c, status, extra[0] ? extra : NULL, b.p, b.len, ttfb);
    free(b.p);
}

/* ---- chat completions --------------------------------------------------------------------- */

static void openai_view(json_t *req, mock_view *v)
{
    size_t i, k;
    json_t *m, *part, *tool;
    sbuf t = {0};
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role) role = "";
        t.len = 0;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            content_text(content, &t);
            view_system(v, t.p ? t.p : "", t.len);
            continue;
        }
        view_message_begin(v, !strcmp(role, "user"));
        if (!strcmp(role, "tool") || !strcmp(role, "function")) {
            content_text(content, &t);
            view_result(v, t.p ? t.p : "", t.len);
        } else if (json_is_string(content)) {
            view_text(v, json_string_value(content), json_string_length(content));
        } else {
            json_array_foreach(content, k, part)
            {
                json_t *text = json_object_get(part, "text");
                const char *type = json_string_value(json_object_get(part, "type"));
                if (json_is_string(text))
                    view_text(v, json_string_value(text), json_string_length(text));
                else if (type && !strcmp(type, "image_url"))
                    view_image(v);
            }
        }
        view_message_end(v);
    }
    free(t.p);
    json_array_foreach(json_object_get(req, "tools"), i, tool)
    {
        view_tool(v, json_string_value(json_object_get(json_object_get(tool, "function"), "name")));
    }
    json_t *choice = json_object_get(req, "tool_choice");
    const char *choice_s = json_string_value(choice);
    if (choice_s) {
        v->tool_any = !strcmp(choice_s, "required");
        v->tool_none = !strcmp(choice_s, "none");
    } else if (json_is_object(choice)) {
        v->forced_tool = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    }
    const char *format = json_string_value(json_object_get(json_object_get(req, "response_format"), "type"));
    v->json_output = format && (!strcmp(format, "json_object") || !strcmp(format, "json_schema"));
    json_t *max = json_object_get(req, "max_completion_tokens");
    view_max_tokens(v, json_is_integer(max) ? max : json_object_get(req, "max_tokens"));
    json_t *stop = json_object_get(req, "stop");
    if (json_is_string(stop)) view_stop(v, json_string_value(stop), json_string_length(stop));
    json_array_foreach(stop, i, part)
    {
        if (json_is_string(part)) view_stop(v, json_string_value(part), json_string_length(part));
    }
}

static const char *openai_finish(mock_finish f)
{
    return f == FINISH_LENGTH ? "length" : f == FINISH_TOOL_CALLS ? "tool_calls" : "stop";
}

static void usage_json(sbuf *b, const mock_reply *r)
{
    size_t completion = reply_completion_tokens(r);
    sb_fmt(b, "{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu", r->prompt, completion,
           r->prompt + completion);
    if (r->cached) sb_fmt(b, ",\"prompt_tokens_details\":{\"cached_tokens\":%zu}", r->cached);
    if (r->reasoning) sb_fmt(b, ",\"completion_tokens_details\":{\"reasoning_tokens\":%zu}", r->reasoning);
    sb_str(b, "}");
}

static void chunk_begin(sbuf *ev, const char *id, const char *object, const char *model)
{
    ev->len = 0;
    sb_fmt(ev, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":1700000000,\"model\":", id, object);
    sb_json_str(ev, model);
}

static const char stream_error_event[] =
    "data: {\"error\":{\"message\":\"aigw-mock injected stream error\",\"type\":\"server_error\","
    "\"param\":null,\"code\":null}}\n\n";

static void chat_stream(conn *c, json_t *req, const char *id, const char *model, const mock_reply *r,
                        const faults *f)
{
    bool include_usage =
        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    const char *usage_null = include_usage ? ",\"usage\":null" : "";
    stream_begin(c, "text/event-stream", NULL, f);
    sbuf ev = {0};
    chunk_begin(&ev, id, "chat.completion.chunk", model);
    sb_fmt(&ev,
           ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%s},"
           "\"logprobs\":null,\"finish_reason\":null}]%s}\n\n",
           r->ncalls ? "null" : "\"\"", usage_null);
    stream_event(c, ev.p, ev.len);
    for (size_t pos = 0; pos < r->text.len;) {
        size_t end = next_word_piece(r->text.p, r->text.len, pos);
        chunk_begin(&ev, id, "chat.completion.chunk", model);
        sb_str(&ev, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        sb_json(&ev, r->text.p + pos, end - pos);
        sb_fmt(&ev, "},\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", usage_null);
        stream_event(c, ev.p, ev.len);
        pos = end;
    }
    for (int i = 0; i < r->ncalls; i++) {
        chunk_begin(&ev, id, "chat.completion.chunk", model);
        sb_fmt(&ev,
               ",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"call_mock_%d\","
               "\"type\":\"function\",\"function\":{\"name\":",
               i, i);
        sb_json_str(&ev, r->calls[i].name);
        sb_fmt(&ev, ",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", usage_null);
        stream_event(c, ev.p, ev.len);
        const sbuf *args = &r->calls[i].args;
        for (size_t pos = 0; pos < args->len;) {
            size_t end = next_utf8_piece(args->p, args->len, pos, ARG_FRAGMENT);
            chunk_begin(&ev, id, "chat.completion.chunk", model);
            sb_fmt(&ev,
                   ",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":{"
                   "\"arguments\":",
                   i);
            sb_json(&ev, args->p + pos, end - pos);
            sb_fmt(&ev, "}}]},\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", usage_null);
            stream_event(c, ev.p, ev.len);
            pos = end;
        }
    }
    chunk_begin(&ev, id, "chat.completion.chunk", model);
    sb_fmt(&ev, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]%s}\n\n",
           openai_finish(r->finish), usage_null);
    stream_event(c, ev.p, ev.len);
    if (include_usage) {
        chunk_begin(&ev, id, "chat.completion.chunk", model);
        sb_str(&ev, ",\"choices\":[],\"usage\":");
        usage_json(&ev, r);
        sb_str(&ev, "}\n\n");
        stream_event(c, ev.p, ev.len);
    }
    stream_event(c, "data: [DONE]\n\n", 14);
    free(ev.p);
    stream_end(c, f, stream_error_event, sizeof stream_error_event - 1);
}

void openai_chat(conn *c, json_t *req, const char *model, const faults *f)
{
    mock_view v;
    view_init(&v);
    openai_view(req, &v);
    mock_reply r;
    reply_build(&v, f, &r);
    view_free(&v);
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock-%d-%" PRIu64, conn_worker_id(c), conn_next_id(c));
    if (json_is_true(json_object_get(req, "stream"))) {
        chat_stream(c, req, id, model, &r, f);
        reply_free(&r);
        return;
    }
    sbuf b = {0};
    sb_fmt(&b, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":", id);
    sb_json_str(&b, model);
    sb_str(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (r.ncalls) {
        sb_str(&b, "null,\"tool_calls\":[");
        for (int i = 0; i < r.ncalls; i++) {
            sb_fmt(&b,
                   "%s{\"id\":\"call_mock_%d\",\"type\":\"function\",\"function\":{\"name\":", i ? "," : "",
                   i);
            sb_json_str(&b, r.calls[i].name);
            sb_str(&b, ",\"arguments\":");
            sb_json(&b, r.calls[i].args.p, r.calls[i].args.len);
            sb_str(&b, "}}");
        }
        sb_str(&b, "]");
    } else {
        sb_json(&b, r.text.p, r.text.len);
    }
    sb_fmt(&b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":",
           openai_finish(r.finish));
    usage_json(&b, &r);
    sb_str(&b, "}");
    respond_reply(c, NULL, b.p, b.len, f);
    free(b.p);
    reply_free(&r);
}

/* ---- legacy completions ------------------------------------------------------------------- */

void openai_completion(conn *c, json_t *req, const char *model, const faults *f)
{
    json_t *prompt = json_object_get(req, "prompt");
    if (json_is_array(prompt)) prompt = json_array_get(prompt, 0);
    sbuf t = {0}, text = {0};
    if (json_is_string(prompt)) sb_add(&t, json_string_value(prompt), json_string_length(prompt));
    size_t prompt_words = t.p ? count_prompt_words(t.p, t.len) : 0;
    clean_text(&t);
    if (f->words) {
        for (long i = 1; i <= f->words; i++)
            sb_fmt(&text, i == 1 ? "w%ld" : " w%ld", i);
    } else {
        sb_str(&text, "mock completion of: ");
        sb_add(&text, t.p, t.len);
    }
    free(t.p);
    size_t completion = count_words(text.p, text.len);
    char id[64];
    snprintf(id, sizeof id, "cmpl-mock-%d-%" PRIu64, conn_worker_id(c), conn_next_id(c));
    sbuf b = {0};
    if (json_is_true(json_object_get(req, "stream"))) {
        bool include_usage =
            json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
        const char *usage_null = include_usage ? ",\"usage\":null" : "";
        stream_begin(c, "text/event-stream", NULL, f);
        for (size_t pos = 0; pos < text.len;) {
            size_t end = next_word_piece(text.p, text.len, pos);
            chunk_begin(&b, id, "text_completion", model);
            sb_str(&b, ",\"choices\":[{\"index\":0,\"text\":");
            sb_json(&b, text.p + pos, end - pos);
            sb_fmt(&b, ",\"logprobs\":null,\"finish_reason\":null}]%s}\n\n", usage_null);
            stream_event(c, b.p, b.len);
            pos = end;
        }
        chunk_begin(&b, id, "text_completion", model);
        sb_fmt(
            &b,
            ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"stop\"}]%s}\n\n",
            usage_null);
        stream_event(c, b.p, b.len);
        if (include_usage) {
            chunk_begin(&b, id, "text_completion", model);
            sb_fmt(&b,
                   ",\"choices\":[],\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,"
                   "\"total_tokens\":%zu}}\n\n",
                   prompt_words, completion, prompt_words + completion);
            stream_event(c, b.p, b.len);
        }
        stream_event(c, "data: [DONE]\n\n", 14);
        stream_end(c, f, stream_error_event, sizeof stream_error_event - 1);
    } else {
        sb_fmt(&b, "{\"id\":\"%s\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":", id);
        sb_json_str(&b, model);
        sb_str(&b, ",\"choices\":[{\"index\":0,\"text\":");
        sb_json(&b, text.p, text.len);
        sb_fmt(&b,
               ",\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%zu,"
               "\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
               prompt_words, completion, prompt_words + completion);
        respond_reply(c, NULL, b.p, b.len, f);
    }
    free(b.p);
    free(text.p);
}

/* ---- embeddings and models ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* One word's direction, added to vec: dims pseudo-random values in [-1, 1] from its hash. */
static void add_word(float *vec, long dims, uint64_t h)
{
    for (long d = 0; d < dims; d++) {
        uint64_t r = splitmix(h ^ (uint64_t)d * 0x9E3779B97F4A7C15ULL);
        vec[d] += (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

void openai_embeddings(conn *c, json_t *req, const char *model, const faults *f)
{
    json_t *input = json_object_get(req, "input");
    json_t *dims_j = json_object_get(req, "dimensions");
    long dims = json_is_integer(dims_j) ? (long)json_integer_value(dims_j) : 8;
    if (dims < 1 || dims > 4096) {
        openai_error(c, 400, "invalid_request_error", "dimensions must be between 1 and 4096", 0, f->ttfb_ms);
        return;
    }
    const char *enc = json_string_value(json_object_get(req, "encoding_format"));
    bool b64 = enc && !strcmp(enc, "base64");
    /* Normalise: a list of items, each a string or an array of token ids. */
    json_t *items =
        json_is_array(input) && json_array_size(input) &&
                (json_is_string(json_array_get(input, 0)) || json_is_array(json_array_get(input, 0)))
            ? json_incref(input)
            : json_pack("[O]", input ? input : json_null());
    sbuf b = {0};
    sb_str(&b, "{\"object\":\"list\",\"data\":[");
    size_t i, tokens = 0;
    json_t *item;
    float *vec = malloc(sizeof(float) * (size_t)dims);
    if (!vec) abort();
    json_array_foreach(items, i, item)
    {
        /* a hashed bag of words: each word (lower-cased letters and digits; each token id of a
         * token array) adds its own pseudo-random direction, and the sum is normalized — so
         * the same words in any order give the same vector, a text that shares most of its
         * words is close (cosine about shared / total), and an unrelated one is far */
        for (long d = 0; d < dims; d++)
            vec[d] = 0;
        size_t words = 0;
        if (json_is_string(item)) {
            const char *t = json_string_value(item);
            size_t len = json_string_length(item);
            tokens += count_words(t, len);
            for (size_t k = 0; k < len;) {
                while (k < len && !isalnum((unsigned char)t[k]))
                    k++;
                char word[64];
                size_t wl = 0;
                while (k < len && isalnum((unsigned char)t[k])) {
                    if (wl < sizeof word) word[wl++] = (char)tolower((unsigned char)t[k]);
                    k++;
                }
                if (!wl) break;
                add_word(vec, dims, fnv1a(word, wl, FNV_OFFSET));
                words++;
            }
        } else if (json_is_array(item)) {
            size_t k;
            json_t *tok;
            json_array_foreach(item, k, tok)
            {
                json_int_t v = json_integer_value(tok);
                add_word(vec, dims, fnv1a(&v, sizeof v, FNV_OFFSET));
                words++;
                tokens++;
            }
        }
        if (!words) add_word(vec, dims, FNV_OFFSET); /* no words: one fixed direction */
        double norm = 0;
        for (long d = 0; d < dims; d++)
            norm += (double)vec[d] * vec[d];
        norm = sqrt(norm);
        for (long d = 0; d < dims && norm > 0; d++)
            vec[d] = (float)(vec[d] / norm);
        sb_fmt(&b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (b64) {
            sb_str(&b, "\"");
            sb_base64(&b, (const unsigned char *)vec, sizeof(float) * (size_t)dims); /* x86: little-endian */
            sb_str(&b, "\"");
        } else {
            sb_str(&b, "[");
            for (long d = 0; d < dims; d++)
                sb_fmt(&b, "%s%.9g", d ? "," : "", (double)vec[d]);
            sb_str(&b, "]");
        }
        sb_str(&b, "}");
    }
    free(vec);
    json_decref(items);
    sb_str(&b, "],\"model\":");
    sb_json_str(&b, model);
    sb_fmt(&b, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", tokens, tokens);
    respond_body(c, 200, NULL, b.p, b.len, f->ttfb_ms);
    free(b.p);
}

void openai_models(conn *c)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"mock-model\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-small\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-large\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"},"
        "{\"id\":\"mock-embed\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-mock\"}]}";
    respond_body(c, 200, NULL, body, sizeof body - 1, 0);
}
