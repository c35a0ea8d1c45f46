/* fuzz_translate.c — libFuzzer target for the format translators (src/providers): the code
 * that reads client bodies in one format and provider replies and stream events in another.
 *
 * The first input byte picks the ingress format (OpenAI chat, Anthropic, OpenAI Responses) and
 * the provider preset, and whether the provider serves the Responses API itself; the rest is either a
 * request body (encoded for the provider, then a reply translated back) or an SSE stream from
 * the provider, split at a fuzzed point so events straddle reads. Besides sanitizer reports it
 * checks that whatever reaches the client is whole SSE events (every event ends with a blank
 * line) and that an encoded upstream body is valid JSON. The attempt carries no client
 * headers: headers are not what is fuzzed here. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/codec.h"
#include "upstream/sse.h"

typedef struct stream_feed {
    codec_ctx *codec;
    buf *out;
    bool stop; /* the provider's stream ended or failed: later events are not read */
} stream_feed;

static void on_event(void *ud, const char *raw, size_t n)
{
    stream_feed *f = ud;
    if (f->stop) return;
    const char *message = NULL;
    stream_step step = provider_stream_event(f->codec, raw, n, f->out, &message);
    if (step != STREAM_MORE) f->stop = true;
    if (step == STREAM_FAILED && !message) abort();
}

static const char *const presets[] = {"openai", "anthropic", "gemini", "mistral"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t sel = data[0], cut_at = data[1];
    const char *body = (const char *)data + 2;
    size_t len = size - 2;

    provider_config provider = {.name = "p", .api_key = "k"};
    provider.preset = provider_preset_find(presets[sel & 3]);
    provider.responses = (sel >> 6) & 1 ? RESPONSES_NATIVE : RESPONSES_AUTO;
    provider.base_url = (char *)"http://h";
    static char *urls[] = {"http://h/v1/chat/completions", "http://h/v1/completions",
                           "http://h/v1/embeddings"};
    memcpy(provider.urls, urls, sizeof urls);
    model_route route = {.public_name = "pub",
                         .provider = &provider,
                         .upstream_model = "up",
                         .upstream_model_len = 2,
                         .max_output_tokens = 64};
    arena a;
    arena_init(&a, 1024);
    wire_format ingress = (sel >> 5) & 1 ? WIRE_RESPONSES : (sel >> 2) & 1 ? WIRE_ANTHROPIC : WIRE_OPENAI;
    codec_ctx codec = {.arena = &a,
                       .request_id = "fz",
                       .ingress = ingress,
                       .endpoint = ingress == WIRE_ANTHROPIC   ? ENDPOINT_MESSAGES
                                   : ingress == WIRE_RESPONSES ? ENDPOINT_RESPONSES
                                                               : ENDPOINT_CHAT_COMPLETIONS,
                       .stream = (sel >> 3) & 1,
                       .route = &route};

    buf out;
    buf_init(&out, 64u << 20);
    if (!((sel >> 4) & 1)) {
        /* A request body (already validated JSON on the real path; here anything). */
        codec.body = codec.payload = body;
        codec.body_len = codec.payload_len = len;
        provider_request preq;
        provider_error err;
        if (provider_encode(&codec, &preq, &err)) {
            json_error_t jerr;
            json_t *j = json_loadb(preq.body, preq.body_len, JSON_ALLOW_NUL, &jerr);
            /* the fast path forwards what it got; a translated body must be JSON */
            if (codec.xlate || codec.dropped_params) {
                if (!j) abort();
            }
            json_decref(j);
            /* the same bytes as the provider's reply, success and error */
            provider_translate_reply(&codec, 200, body, len, &out);
            out.len = 0;
            provider_translate_reply(&codec, 429, body, len, &out);
        }
    } else {
        /* A provider stream against a translated request. */
        static const char canon[] =
            "{\"model\":\"pub\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
        static const char anth[] = "{\"model\":\"pub\",\"stream\":true,\"max_tokens\":5,"
                                   "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
        static const char responses[] = "{\"model\":\"pub\",\"stream\":true,\"input\":\"x\"}";
        codec.stream = true;
        codec.body = codec.payload = ingress == WIRE_ANTHROPIC   ? anth
                                     : ingress == WIRE_RESPONSES ? responses
                                                                 : canon;
        codec.body_len = codec.payload_len = strlen(codec.body);
        provider_request preq;
        provider_error err;
        if (provider_encode(&codec, &preq, &err)) {
            sse_reader r;
            sse_reader_init(&r, 1u << 20);
            size_t cut = len ? cut_at % (len + 1) : 0;
            stream_feed f = {&codec, &out, false};
            if (sse_reader_feed(&r, body, cut, on_event, &f))
                sse_reader_feed(&r, body + cut, len - cut, on_event, &f);
            if (!f.stop) provider_stream_finish(&codec, &out);
            provider_stream_error(&codec, &out, "end");
            /* the client gets whole events only */
            if (out.len && (out.len < 2 || memcmp(out.data + out.len - 2, "\n\n", 2))) abort();
            sse_reader_free(&r);
        }
    }
    buf_free(&out);
    arena_free(&a);
    return 0;
}
