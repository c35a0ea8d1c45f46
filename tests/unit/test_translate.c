/* test_translate.c — the format translators on request/reply/stream pairs written from the
 * providers' API references: OpenAI chat ↔ Anthropic Messages ↔ Gemini generateContent.
 * Checked: what each side receives (fields, roles, tool calls and results, images, usage with
 * cache tokens, stop reasons), that tool-call arguments split into many fragments come out
 * byte-identical after reassembly in both directions, that every Anthropic event carries its
 * event: line and every delta's index names an open block, and that what cannot be said is
 * dropped visibly or refused. Tests go through the module's face (provider.h). */
#include "../../src/providers/translate.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

/* Walks "a.0.b": object keys and array indexes. */
static json_t *json_path_get_compat(json_t *root, const char *path)
{
    char part[128];
    while (root && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        char *end;
        long idx = strtol(part, &end, 10);
        root = json_is_array(root) && !*end ? json_array_get(root, (size_t)idx) : json_object_get(root, part);
        path += n + (path[n] == '.');
    }
    return root;
}

typedef struct fixture {
    arena arena;
    http_header headers[4];
    codec_ctx codec;
    provider_config provider;
    model_route route;
} fixture;

static fixture *fixture_new(const char *preset, wire_format ingress, const char *body, bool stream)
{
    fixture *f = calloc(1, sizeof *f);
    f->provider.name = "p";
    f->provider.preset = provider_preset_find(preset);
    assert_non_null(f->provider.preset);
    f->provider.base_url = (char *)(f->provider.preset->base_url ? f->provider.preset->base_url : "http://h");
    f->provider.api_key = "k";
    static char *urls[] = {"http://h/v1/chat/completions", "http://h/v1/completions",
                           "http://h/v1/embeddings"};
    memcpy(f->provider.urls, urls, sizeof urls);
    f->route.public_name = "pub";
    f->route.provider = &f->provider;
    f->route.upstream_model = "up-model";
    f->route.upstream_model_len = 8;
    f->route.max_output_tokens = 4096;
    arena_init(&f->arena, 4096);
    f->codec =
        (codec_ctx){.arena = &f->arena,
                    .request_id = "rid1",
                    .ingress = ingress,
                    .endpoint = ingress == WIRE_ANTHROPIC ? ENDPOINT_MESSAGES : ENDPOINT_CHAT_COMPLETIONS,
                    .stream = stream,
                    .route = &f->route,
                    .body = body,
                    .body_len = strlen(body),
                    .payload = body,
                    .payload_len = strlen(body),
                    .headers = f->headers};
    return f;
}

static void fixture_free(fixture *f)
{
    arena_free(&f->arena);
    free(f);
}

/* A fixture whose request has been encoded already (for tests of replies and streams). */
static fixture *fixture_encoded(const char *preset, wire_format ingress, const char *body, bool stream);

/* Encodes and returns the upstream body parsed. */
static json_t *encode(fixture *f, provider_request *out)
{
    provider_error err;
    /* the model's span is only used on the fast path, which these tests leave */
    assert_true(provider_encode(&f->codec, out, &err));
    json_error_t jerr;
    json_t *j = json_loadb(out->body, out->body_len, 0, &jerr);
    assert_non_null(j);
    return j;
}

static fixture *fixture_encoded(const char *preset, wire_format ingress, const char *body, bool stream)
{
    fixture *f = fixture_new(preset, ingress, body, stream);
    provider_request out;
    json_decref(encode(f, &out));
    return f;
}

static const char *jstr(json_t *root, const char *path)
{
    json_t *v = json_path_get_compat(root, path);
    return json_string_value(v);
}

/* ---- OpenAI → Anthropic request ----------------------------------------------------------- */

static void test_openai_request_to_anthropic(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"pub\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\","
        "\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r1\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":[{\"type\":\"text\",\"text\":\"r2\"}]}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}"
        "},{\"type\":\"function\",\"function\":{\"name\":\"bare\"}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,\"stop\":\"END\",\"seed\":7,"
        "\"logprobs\":true,\"temperature\":0.5,\"user\":\"u1\"}";
    fixture *f = fixture_new("anthropic", WIRE_OPENAI, body, false);
    provider_request out;
    json_t *a = encode(f, &out);
    assert_string_equal(out.url, "https://api.anthropic.com/v1/messages");
    assert_string_equal(jstr(a, "model"), "up-model");
    assert_int_equal(json_integer_value(json_object_get(a, "max_tokens")), 4096); /* required: filled */
    assert_string_equal(jstr(a, "system.0.text"), "be brief");
    json_t *msgs = json_object_get(a, "messages");
    assert_int_equal(json_array_size(msgs), 3); /* user, assistant, user(tool results) */
    assert_string_equal(jstr(a, "messages.0.content.0.cache_control.type"), "ephemeral"); /* untouched */
    assert_string_equal(jstr(a, "messages.0.content.1.type"), "image");
    assert_string_equal(jstr(a, "messages.0.content.1.source.media_type"), "image/png");
    assert_string_equal(jstr(a, "messages.0.content.1.source.data"), "AAAA");
    assert_string_equal(jstr(a, "messages.1.content.0.type"), "tool_use");
    assert_int_equal(json_integer_value(json_path_get_compat(a, "messages.1.content.0.input.a")), 1);
    assert_string_equal(jstr(a, "messages.2.content.0.tool_use_id"), "c1");
    assert_string_equal(jstr(a, "messages.2.content.1.tool_use_id"), "c2");
    assert_string_equal(jstr(a, "messages.2.content.1.content"), "r2");
    assert_string_equal(jstr(a, "tools.0.name"), "f");
    assert_string_equal(jstr(a, "tools.1.input_schema.type"), "object"); /* Qwen Code's bare tools */
    assert_string_equal(jstr(a, "tool_choice.type"), "any");
    assert_true(json_is_true(json_path_get_compat(a, "tool_choice.disable_parallel_tool_use")));
    assert_string_equal(jstr(a, "stop_sequences.0"), "END");
    assert_string_equal(jstr(a, "metadata.user_id"), "u1");
    assert_null(json_object_get(a, "seed"));
    assert_non_null(strstr(f->codec.dropped_params, "seed"));
    assert_non_null(strstr(f->codec.dropped_params, "logprobs"));
    assert_non_null(f->codec.xlate);
    json_decref(a);
    fixture_free(f);
}

/* Qwen Code sends tools: [] when every tool is off; OpenCode tool_choice "auto" with it. */
static void test_empty_tools_leave_no_tool_choice(void **state)
{
    (void)state;
    fixture *f =
        fixture_new("anthropic", WIRE_OPENAI,
                    "{\"model\":\"pub\",\"tools\":[],\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                    false);
    provider_request out;
    json_t *a = encode(f, &out);
    assert_null(json_object_get(a, "tools"));
    assert_null(json_object_get(a, "tool_choice"));
    json_decref(a);
    fixture_free(f);
}

static void test_n_above_one_is_refused_for_anthropic(void **state)
{
    (void)state;
    fixture *f = fixture_new(
        "anthropic", WIRE_OPENAI,
        "{\"model\":\"pub\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
    provider_request out;
    provider_error err;
    assert_false(provider_encode(&f->codec, &out, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "n");
    fixture_free(f);
}

/* ---- Anthropic reply → OpenAI reply --------------------------------------------------------- */

static void test_anthropic_reply_to_openai(void **state)
{
    (void)state;
    fixture *f =
        fixture_encoded("anthropic", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
    const char *reply =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"let me see\",\"signature\":\"sig\"},"
        "{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"b\":[1,2],\"s\":\"\\u00e9\"}}]"
        ","
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_"
        "tokens\":5,"
        "\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":20}}";
    buf b;
    buf_init(&b, 1 << 20);
    assert_string_equal(provider_translate_reply(&f->codec, 200, reply, strlen(reply), &b),
                        "application/json");
    json_error_t jerr;
    json_t *o = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(jstr(o, "object"), "chat.completion");
    assert_string_equal(jstr(o, "choices.0.message.content"), "hi");
    assert_string_equal(jstr(o, "choices.0.message.reasoning_content"), "let me see");
    assert_string_equal(jstr(o, "choices.0.finish_reason"), "tool_calls");
    assert_string_equal(jstr(o, "choices.0.message.tool_calls.0.id"), "toolu_1");
    assert_string_equal(jstr(o, "choices.0.message.tool_calls.0.function.arguments"),
                        "{\"b\":[1,2],\"s\":\"é\"}");
    /* OpenAI's prompt_tokens count cached tokens too */
    assert_int_equal(json_integer_value(json_path_get_compat(o, "usage.prompt_tokens")), 130);
    assert_int_equal(json_integer_value(json_path_get_compat(o, "usage.prompt_tokens_details.cached_tokens")),
                     100);
    assert_int_equal(json_integer_value(json_path_get_compat(o, "usage.completion_tokens")), 5);
    json_decref(o);
    buf_free(&b);
    fixture_free(f);
}

static void test_anthropic_error_reaches_openai_client_intact(void **state)
{
    (void)state;
    fixture *f =
        fixture_encoded("anthropic", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
    const char *err =
        "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}";
    buf b;
    buf_init(&b, 1 << 20);
    provider_translate_reply(&f->codec, 429, err, strlen(err), &b);
    json_error_t jerr;
    json_t *o = json_loadb(b.data, b.len, 0, &jerr);
    assert_string_equal(jstr(o, "error.message"), "slow down");
    assert_string_equal(jstr(o, "error.type"), "rate_limit_error");
    json_decref(o);
    buf_free(&b);
    fixture_free(f);
}

/* ---- streams ---------------------------------------------------------------------------------- */

/* Feeds raw SSE events (separated by blank lines) and returns everything sent to the client. */
static void feed_events(fixture *f, const char *const *events, size_t n, buf *out, stream_step *last)
{
    for (size_t i = 0; i < n; i++) {
        const char *msg = NULL;
        *last = provider_stream_event(&f->codec, events[i], strlen(events[i]), out, &msg);
    }
}

/* Splits client SSE into events; checks each Anthropic one has event: equal to its type. */
static json_t *parse_client_events(const buf *b, bool anthropic)
{
    json_t *list = json_array();
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        const char *sep = memmem(p, (size_t)(end - p), "\n\n", 2);
        assert_non_null(sep);
        char ev[256] = "";
        const char *data = NULL;
        for (const char *line = p; line < sep;) {
            const char *nl = memchr(line, '\n', (size_t)(sep - line));
            if (!nl) nl = sep;
            if (!strncmp(line, "event: ", 7)) snprintf(ev, sizeof ev, "%.*s", (int)(nl - line - 7), line + 7);
            if (!strncmp(line, "data: ", 6)) data = line + 6;
            line = nl + 1;
        }
        assert_non_null(data);
        if (!strncmp(data, "[DONE]", 6)) {
            json_array_append_new(list, json_string("[DONE]"));
        } else {
            json_error_t jerr;
            json_t *j = json_loadb(data, (size_t)(sep - data), 0, &jerr);
            assert_non_null(j);
            if (anthropic) assert_string_equal(ev, json_string_value(json_object_get(j, "type")));
            json_array_append_new(list, j);
        }
        p = sep + 2;
    }
    return list;
}

static void test_anthropic_stream_to_openai_chunks(void **state)
{
    (void)state;
    fixture *f =
        fixture_encoded("anthropic", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        true);
    /* The event sequence of the Messages streaming reference, tool input in many fragments. */
    const char *const events[] = {
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"stop_sequence\":"
        "null,"
        "\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":5}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"ty\\\": \\\"Par\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\\n\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    };
    buf b;
    buf_init(&b, 1 << 20);
    stream_step last;
    feed_events(f, events, sizeof events / sizeof events[0], &b, &last);
    assert_int_equal(last, STREAM_DONE);
    json_t *list = parse_client_events(&b, false);
    assert_string_equal(jstr(list, "0.choices.0.delta.role"), "assistant");
    buf text, args;
    buf_init(&text, 4096);
    buf_init(&args, 4096);
    const char *finish = NULL;
    json_t *usage = NULL;
    size_t i;
    json_t *c;
    size_t tool_deltas = 0;
    json_array_foreach(list, i, c)
    {
        if (json_is_string(c)) continue;
        json_t *d = json_path_get_compat(c, "choices.0.delta");
        const char *t = json_string_value(json_object_get(d, "content"));
        if (t) buf_append(&text, t, strlen(t));
        json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (tc) {
            /* an index on every delta (a missing one is not read as 0), and the call's own */
            assert_true(json_is_integer(json_object_get(tc, "index")));
            assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
            tool_deltas++;
            if (json_object_get(tc, "id")) {
                assert_string_equal(jstr(tc, "id"), "toolu_1");
                assert_string_equal(jstr(tc, "function.name"), "get");
                assert_string_equal(jstr(tc, "type"), "function");
            }
            const char *a = jstr(tc, "function.arguments");
            if (a) buf_append(&args, a, strlen(a));
        }
        const char *fr = jstr(c, "choices.0.finish_reason");
        if (fr) finish = fr;
        if (json_object_get(c, "usage") && !json_array_size(json_object_get(c, "choices")))
            usage = json_object_get(c, "usage");
    }
    assert_int_equal(tool_deltas, 4); /* the start, then one delta per fragment */
    assert_int_equal(text.len, 5);
    assert_memory_equal(text.data, "Hello", 5);
    const char *want = "{\"city\": \"Paris\\n\"}";
    assert_int_equal(args.len, strlen(want)); /* byte-identical after reassembly */
    assert_memory_equal(args.data, want, args.len);
    assert_string_equal(finish, "tool_calls");
    assert_non_null(usage);
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 30);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 15);
    assert_string_equal(json_string_value(json_array_get(list, json_array_size(list) - 1)), "[DONE]");
    json_decref(list);
    buf_free(&text);
    buf_free(&args);
    buf_free(&b);
    fixture_free(f);
}

static void test_openai_chunks_to_anthropic_events(void **state)
{
    (void)state;
    fixture *f = fixture_new(
        "openai", WIRE_ANTHROPIC,
        "{\"model\":\"pub\",\"max_tokens\":100,\"stream\":true,\"system\":[{\"type\":\"text\","
        "\"text\":\"s\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{\"type\":\"adaptive\"}}",
        true);
    provider_request out;
    json_t *up = encode(f, &out);
    assert_string_equal(out.url, "http://h/v1/chat/completions");
    assert_true(json_is_true(json_path_get_compat(up, "stream_options.include_usage")));
    /* OpenAI's own API takes the limit under its current name */
    assert_int_equal(json_integer_value(json_object_get(up, "max_completion_tokens")), 100);
    assert_null(json_object_get(up, "max_tokens"));
    assert_string_equal(jstr(up, "messages.0.role"), "system");
    assert_non_null(strstr(f->codec.dropped_params, "thinking"));
    assert_non_null(strstr(f->codec.dropped_params, "cache_control"));
    json_decref(up);
    /* Two parallel tool calls, arguments in fragments, then finish and the usage chunk. */
    const char *const events[] = {
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
        "\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}"
        "\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_"
        "calls\"}]}"
        "\n\n",
        "data: "
        "{\"id\":\"c\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,"
        "\"total_tokens\":13}}\n\n",
        "data: [DONE]\n\n",
    };
    buf b;
    buf_init(&b, 1 << 20);
    stream_step last;
    feed_events(f, events, sizeof events / sizeof events[0], &b, &last);
    assert_int_equal(last, STREAM_DONE);
    json_t *list = parse_client_events(&b, true); /* asserts event: == type on each */
    static const char *const want[] = {
        "message_start",       "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",  "message_delta",
        "message_stop",
    };
    assert_int_equal(json_array_size(list), sizeof want / sizeof want[0]);
    int open = -1;
    buf args;
    buf_init(&args, 4096);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *e = json_array_get(list, i);
        assert_string_equal(jstr(e, "type"), want[i]);
        int idx = (int)json_integer_value(json_object_get(e, "index"));
        if (!strcmp(want[i], "content_block_start")) open = idx;
        if (!strcmp(want[i], "content_block_delta")) {
            assert_int_equal(idx, open); /* deltas name the open block */
            const char *pj = jstr(e, "delta.partial_json");
            if (pj && idx == 1) buf_append(&args, pj, strlen(pj));
        }
    }
    assert_int_equal(json_array_size(json_path_get_compat(list, "0.message.content")), 0);
    assert_string_equal(jstr(list, "4.content_block.id"), "call_a");
    assert_memory_equal(args.data, "{\"x\":1}", 7);
    assert_int_equal(args.len, 7);
    assert_string_equal(jstr(list, "11.delta.stop_reason"), "tool_use");
    assert_int_equal(json_integer_value(json_path_get_compat(list, "11.usage.output_tokens")), 4);
    assert_int_equal(json_integer_value(json_path_get_compat(list, "11.usage.input_tokens")), 9);
    json_decref(list);
    buf_free(&args);
    buf_free(&b);
    fixture_free(f);
}

/* ---- Gemini ------------------------------------------------------------------------------------ */

static void test_openai_request_to_gemini(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"content\":\"q\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"cold\"}],"
        "\"max_tokens\":50,\"stop\":[\"x\"],\"response_format\":{\"type\":\"json_object\"},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"parameters\":{\"type\":"
        "\"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"weather\"}}}";
    fixture *f = fixture_new("gemini", WIRE_OPENAI, body, true);
    provider_request out;
    json_t *g = encode(f, &out);
    assert_string_equal(
        out.url,
        "https://generativelanguage.googleapis.com/v1beta/models/up-model:streamGenerateContent?alt=sse");
    assert_string_equal(jstr(g, "systemInstruction.parts.0.text"), "sys");
    assert_string_equal(jstr(g, "contents.0.role"), "user");
    assert_string_equal(jstr(g, "contents.1.role"), "model");
    assert_string_equal(jstr(g, "contents.1.parts.0.functionCall.args.city"), "Oslo");
    assert_string_equal(jstr(g, "contents.2.parts.0.functionResponse.name"),
                        "weather"); /* by the call's id */
    assert_int_equal(json_integer_value(json_path_get_compat(g, "generationConfig.maxOutputTokens")), 50);
    assert_string_equal(jstr(g, "generationConfig.responseMimeType"), "application/json");
    assert_string_equal(jstr(g, "toolConfig.functionCallingConfig.mode"), "ANY");
    assert_string_equal(jstr(g, "toolConfig.functionCallingConfig.allowedFunctionNames.0"), "weather");
    assert_string_equal(jstr(g, "tools.0.functionDeclarations.0.name"), "weather");
    assert_null(json_object_get(g, "model"));
    json_decref(g);
    fixture_free(f);
}

static void test_gemini_stream_to_openai(void **state)
{
    (void)state;
    fixture *f =
        fixture_encoded("gemini", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        true);
    const char *const events[] = {
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi "
        "\"}]},\"index\":0}],"
        "\"modelVersion\":\"gemini-x\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"there\"}]},"
        "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,"
        "\"candidatesTokenCount\":2,\"thoughtsTokenCount\":3,\"cachedContentTokenCount\":4,"
        "\"totalTokenCount\":13},\"modelVersion\":\"gemini-x\"}\r\n\r\n",
    };
    buf b;
    buf_init(&b, 1 << 20);
    stream_step last;
    feed_events(f, events, 2, &b, &last);
    assert_int_equal(last, STREAM_MORE);                /* Gemini has no end marker… */
    assert_true(provider_stream_finish(&f->codec, &b)); /* …the clean end of the transfer is it */
    json_t *list = parse_client_events(&b, false);
    size_t n = json_array_size(list);
    assert_string_equal(json_string_value(json_array_get(list, n - 1)), "[DONE]");
    json_t *usage = json_object_get(json_array_get(list, n - 2), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 8);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 5); /* thoughts count */
    assert_int_equal(
        json_integer_value(json_path_get_compat(usage, "completion_tokens_details.reasoning_tokens")), 3);
    assert_int_equal(json_integer_value(json_path_get_compat(usage, "prompt_tokens_details.cached_tokens")),
                     4);
    assert_string_equal(jstr(list, "0.choices.0.delta.role"), "assistant");
    assert_string_equal(jstr(list, "1.choices.0.delta.content"), "Hi ");
    json_decref(list);
    buf_free(&b);
    fixture_free(f);
}

static void test_gemini_stream_without_finish_is_incomplete(void **state)
{
    (void)state;
    fixture *f = fixture_encoded(
        "gemini", WIRE_OPENAI,
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    const char *const events[] = {
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n",
    };
    buf b;
    buf_init(&b, 1 << 20);
    stream_step last;
    feed_events(f, events, 1, &b, &last);
    assert_false(provider_stream_finish(&f->codec, &b));
    buf_free(&b);
    fixture_free(f);
}

/* ---- compatibility rules on the OpenAI-compatible family ---------------------------------- */

static void test_mistral_renames_and_drops(void **state)
{
    (void)state;
    fixture *f = fixture_new("mistral", WIRE_OPENAI,
                             "{\"model\":\"pub\",\"seed\":3,\"max_completion_tokens\":9,\"logprobs\":true,"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                             false);
    provider_request out;
    json_t *m = encode(f, &out);
    assert_string_equal(out.url, "http://h/v1/chat/completions");
    assert_int_equal(json_integer_value(json_object_get(m, "random_seed")), 3);
    assert_int_equal(json_integer_value(json_object_get(m, "max_tokens")), 9);
    assert_null(json_object_get(m, "seed"));
    assert_null(json_object_get(m, "logprobs"));
    assert_string_equal(f->codec.dropped_params, "logprobs");
    assert_string_equal(jstr(m, "model"), "up-model");
    assert_null(f->codec.xlate); /* same format: replies pass through */
    json_decref(m);
    fixture_free(f);
}

static void test_plain_body_stays_on_the_fast_path(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    fixture *f = fixture_new("mistral", WIRE_OPENAI, body, false);
    provider_request out;
    provider_error err;
    assert_true(provider_encode(&f->codec, &out, &err));
    assert_ptr_equal(out.body, body); /* the client's bytes, not a copy */
    assert_null(f->codec.dropped_params);
    fixture_free(f);
}

static void test_azure_deployment_url_and_key_header(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    fixture *f = fixture_new("azure", WIRE_OPENAI, body, false);
    f->provider.base_url = "https://r.openai.azure.com";
    f->provider.api_version = "2024-10-21";
    f->provider.api_key = NULL; /* keyless: the client's key goes out in Azure's header */
    http_header auth = {"Authorization", "Bearer client-k", 13, 15};
    f->headers[0] = auth;
    f->codec.nheaders = 1;
    provider_request out;
    provider_error err;
    assert_true(provider_encode(&f->codec, &out, &err));
    assert_string_equal(out.url, "https://r.openai.azure.com/openai/deployments/up-model/chat/completions"
                                 "?api-version=2024-10-21");
    bool key = false;
    for (const struct curl_slist *h = out.headers; h; h = h->next)
        key |= !strcmp(h->data, "api-key: client-k");
    assert_true(key);
    fixture_free(f);
}

/* reasoning_effort ↔ thinking: a budget below max_tokens, the default temperature, a model
 * that reasons — otherwise a visible drop; and reasoning comes back as thinking blocks. */
static void test_reasoning_effort_and_thinking(void **state)
{
    (void)state;
    fixture *f =
        fixture_new("anthropic", WIRE_OPENAI,
                    "{\"model\":\"pub\",\"reasoning_effort\":\"medium\",\"max_completion_tokens\":10000,"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                    false);
    provider_request out;
    json_t *a = encode(f, &out);
    assert_string_equal(jstr(a, "thinking.type"), "enabled");
    assert_int_equal(json_integer_value(json_path_get_compat(a, "thinking.budget_tokens")), 4096);
    assert_null(f->codec.dropped_params);
    json_decref(a);
    fixture_free(f);

    f = fixture_new("anthropic", WIRE_OPENAI,
                    "{\"model\":\"pub\",\"reasoning_effort\":\"high\",\"temperature\":0.2,"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                    false);
    a = encode(f, &out);
    assert_null(json_object_get(a, "thinking")); /* thinking needs the default temperature */
    assert_string_equal(f->codec.dropped_params, "reasoning_effort");
    json_decref(a);
    fixture_free(f);

    /* An Anthropic client's thinking to an OpenAI model the catalog knows reasons. */
    catalog_entry reasons = {.provider = "openai", .model = "up-model", .capabilities = CAP_REASONING};
    f = fixture_new("openai", WIRE_ANTHROPIC,
                    "{\"model\":\"pub\",\"max_tokens\":30000,\"thinking\":{\"type\":\"enabled\","
                    "\"budget_tokens\":20000},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                    true);
    f->route.catalog = &reasons;
    a = encode(f, &out);
    assert_string_equal(jstr(a, "reasoning_effort"), "high");
    json_decref(a);
    /* …and its reasoning_content comes back as a thinking block before the text */
    const char *const events[] = {
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"reasoning_content\":\"hmm\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},"
        "\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    };
    buf b;
    buf_init(&b, 1 << 20);
    stream_step last;
    feed_events(f, events, 3, &b, &last);
    json_t *list = parse_client_events(&b, true);
    assert_string_equal(jstr(list, "1.content_block.type"), "thinking");
    assert_string_equal(jstr(list, "2.delta.type"), "thinking_delta");
    assert_string_equal(jstr(list, "2.delta.thinking"), "hmm");
    assert_string_equal(jstr(list, "4.content_block.type"), "text");
    assert_int_equal(json_integer_value(json_path_get_compat(list, "4.index")), 1);
    json_decref(list);
    buf_free(&b);
    fixture_free(f);
}

/* JSON output: structured outputs for a model not known to lack them; a forced tool else. */
static void test_json_output_to_anthropic(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"pub\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                       "{\"name\":\"r\",\"schema\":{\"type\":\"object\"}}},"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    fixture *f = fixture_new("anthropic", WIRE_OPENAI, body, false);
    provider_request out;
    json_t *a = encode(f, &out);
    assert_string_equal(jstr(a, "output_config.format.type"), "json_schema");
    assert_string_equal(jstr(a, "output_config.format.schema.type"), "object");
    assert_null(json_object_get(a, "tools"));
    json_decref(a);
    fixture_free(f);

    catalog_entry old = {.provider = "anthropic", .model = "up-model", .capabilities = CAP_TOOLS};
    f = fixture_new("anthropic", WIRE_OPENAI, body, false);
    f->route.catalog = &old;
    a = encode(f, &out);
    assert_null(json_object_get(a, "output_config"));
    assert_string_equal(jstr(a, "tool_choice.name"), "json_output");
    /* the forced tool's input comes back as the message content */
    const char *reply =
        "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"json_output\","
        "\"input\":{\"k\":1}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,"
        "\"output_tokens\":1}}";
    buf b;
    buf_init(&b, 1 << 20);
    provider_translate_reply(&f->codec, 200, reply, strlen(reply), &b);
    json_error_t jerr;
    json_t *o = json_loadb(b.data, b.len, 0, &jerr);
    assert_string_equal(jstr(o, "choices.0.message.content"), "{\"k\":1}");
    assert_string_equal(jstr(o, "choices.0.finish_reason"), "stop");
    json_decref(o);
    json_decref(a);
    buf_free(&b);
    fixture_free(f);
}

/* A translated event larger than the stream buffer fails the stream; no half event goes out. */
static void test_translated_event_over_the_limit_fails_whole(void **state)
{
    (void)state;
    fixture *f = fixture_encoded(
        "anthropic", WIRE_OPENAI,
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    const char *ev =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"0123456789012345678901234567890123456789\"}}\n\n";
    buf b;
    buf_init(&b, 120); /* smaller than the chunk this event becomes */
    buf_append_lit(&b, "data: {}\n\n");
    const char *msg = NULL;
    assert_int_equal(provider_stream_event(&f->codec, ev, strlen(ev), &b, &msg), STREAM_FAILED);
    assert_non_null(msg);
    assert_int_equal(b.len, 10); /* what was there before, nothing of the event */
    assert_false(b.overflowed);
    buf_free(&b);
    fixture_free(f);
}

/* A Gemini reply whose generation failed is a 502 for the client, not an empty "stop". */
static void test_gemini_failed_generation_is_502(void **state)
{
    (void)state;
    fixture *f =
        fixture_encoded("gemini", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
    const char *reply =
        "{\"candidates\":[{\"content\":{\"parts\":[]},\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}]}";
    buf b;
    buf_init(&b, 1 << 20);
    provider_translate_reply(&f->codec, 200, reply, strlen(reply), &b);
    assert_int_equal(f->codec.reply_status, 502);
    json_error_t jerr;
    json_t *o = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(strstr(jstr(o, "error.message"), "MALFORMED_FUNCTION_CALL"));
    json_decref(o);
    buf_free(&b);
    fixture_free(f);
}

/* ---- hostile replies ---------------------------------------------------------------------------- */

/* A translated reply whose shape is not the format's is a 502 (upstream_invalid_response) in the
 * client's shape, for each provider format's decoder — never a 200 with empty content. */
static void test_wrong_shape_replies_are_502(void **state)
{
    (void)state;
    static const struct {
        const char *preset;
        wire_format ingress;
        const char *reply;
    } cases[] = {
        {"openai", WIRE_ANTHROPIC, "{\"id\":\"c\",\"choices\":\"notalist\"}"},
        {"openai", WIRE_ANTHROPIC, "{\"id\":\"c\",\"choices\":[]}"},
        {"openai", WIRE_ANTHROPIC, "{\"choices\":[{\"message\":{\"content\":7}}]}"},
        {"openai", WIRE_ANTHROPIC, "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":\"x\"}}]}"},
        {"anthropic", WIRE_OPENAI, "{\"id\":\"m\",\"type\":\"message\",\"content\":\"notalist\"}"},
        {"anthropic", WIRE_OPENAI, "{\"id\":\"m\",\"type\":\"message\"}"},
        {"anthropic", WIRE_OPENAI, "{\"content\":[{\"text\":\"no type\"}]}"},
        {"gemini", WIRE_OPENAI, "{\"candidates\":\"notalist\"}"},
        {"gemini", WIRE_OPENAI, "{\"responseId\":\"r\"}"},
        {"gemini", WIRE_OPENAI, "{\"candidates\":[{\"content\":{\"parts\":{\"text\":\"x\"}}}]}"},
        {"gemini", WIRE_ANTHROPIC, "{\"candidates\":[7]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body =
            cases[i].ingress == WIRE_ANTHROPIC
                ? "{\"model\":\"pub\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
                : "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
        fixture *f = fixture_encoded(cases[i].preset, cases[i].ingress, body, false);
        buf b;
        buf_init(&b, 1 << 20);
        const char *type =
            provider_translate_reply(&f->codec, 200, cases[i].reply, strlen(cases[i].reply), &b);
        assert_string_equal(type, "application/json");
        assert_int_equal(f->codec.reply_status, 502);
        json_error_t jerr;
        json_t *o = json_loadb(b.data, b.len, 0, &jerr);
        assert_non_null(o);
        if (cases[i].ingress == WIRE_ANTHROPIC) {
            assert_string_equal(jstr(o, "type"), "error");
            assert_string_equal(jstr(o, "error.type"), "api_error");
        } else {
            assert_string_equal(jstr(o, "error.code"), "upstream_invalid_response");
            assert_string_equal(jstr(o, "error.type"), "server_error");
        }
        const char *m =
            cases[i].ingress == WIRE_ANTHROPIC ? jstr(o, "error.message") : jstr(o, "error.message");
        assert_non_null(strstr(m, "provider p sent a reply of the wrong shape ("));
        json_decref(o);
        buf_free(&b);
        fixture_free(f);
    }
    /* a Gemini prompt blocked before any candidate is a reply of the right shape */
    fixture *f =
        fixture_encoded("gemini", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
    const char *blocked = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}";
    buf b;
    buf_init(&b, 1 << 20);
    provider_translate_reply(&f->codec, 200, blocked, strlen(blocked), &b);
    assert_int_equal(f->codec.reply_status, 200);
    buf_free(&b);
    fixture_free(f);
}

/* Stream events of the wrong shape end the stream with an in-band error. */
static void test_wrong_shape_stream_events_fail(void **state)
{
    (void)state;
    static const struct {
        const char *preset;
        wire_format ingress;
        const char *event;
    } cases[] = {
        {"openai", WIRE_ANTHROPIC, "data: {\"id\":\"c\",\"choices\":\"notalist\"}\n\n"},
        {"openai", WIRE_ANTHROPIC, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"tool_calls\":7}}]}\n\n"},
        {"anthropic", WIRE_OPENAI,
         "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"content_block\":{}}\n\n"},
        {"anthropic", WIRE_OPENAI,
         "event: content_block_delta\ndata: "
         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":\"x\"}\n\n"},
        {"gemini", WIRE_OPENAI, "data: {\"candidates\":\"notalist\"}\n\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body =
            cases[i].ingress == WIRE_ANTHROPIC
                ? "{\"model\":\"pub\",\"max_tokens\":10,\"stream\":true,"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
                : "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
        fixture *f = fixture_encoded(cases[i].preset, cases[i].ingress, body, true);
        buf b;
        buf_init(&b, 1 << 20);
        const char *msg = NULL;
        assert_int_equal(provider_stream_event(&f->codec, cases[i].event, strlen(cases[i].event), &b, &msg),
                         STREAM_FAILED);
        assert_non_null(strstr(msg, "wrong shape"));
        buf_free(&b);
        fixture_free(f);
    }
}

/* An Anthropic stream of `calls` tool calls (after a text block) into OpenAI chunks. */
static stream_step anthropic_tool_stream(fixture *f, int calls, buf *out, const char **msg)
{
    char ev[512];
    stream_step step = STREAM_MORE;
    const char *start =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":2,\"output_tokens\":1}}}\n\n";
    provider_stream_event(&f->codec, start, strlen(start), out, msg);
    for (int i = 0; i < calls && step == STREAM_MORE; i++) {
        int block = i + 1;
        snprintf(
            ev, sizeof ev,
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_%d\",\"name\":\"f\",\"input\":{}}}\n\n",
            block, i);
        step = provider_stream_event(&f->codec, ev, strlen(ev), out, msg);
        if (step != STREAM_MORE) break;
        snprintf(ev, sizeof ev,
                 "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,\"delta\":"
                 "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"n\\\":%d}\"}}\n\n",
                 block, i);
        step = provider_stream_event(&f->codec, ev, strlen(ev), out, msg);
    }
    if (step != STREAM_MORE) return step;
    const char *end[] = {
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
        "\"usage\":{\"output_tokens\":5}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    };
    for (size_t k = 0; k < 2 && step == STREAM_MORE; k++)
        step = provider_stream_event(&f->codec, end[k], strlen(end[k]), out, msg);
    return step;
}

/* Far more than 64 tool calls come through whole, each with its own index and arguments. */
static void test_many_tool_calls_in_a_translated_stream(void **state)
{
    (void)state;
    fixture *f = fixture_encoded(
        "anthropic", WIRE_OPENAI,
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    buf b;
    buf_init(&b, 64 << 20);
    const char *msg = NULL;
    assert_int_equal(anthropic_tool_stream(f, 300, &b, &msg), STREAM_DONE);
    json_t *list = parse_client_events(&b, false);
    int next = 0;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        json_t *tc = json_array_get(json_path_get_compat(c, "choices.0.delta.tool_calls"), 0);
        if (!tc) continue;
        assert_true(json_is_integer(json_object_get(tc, "index")));
        int index = (int)json_integer_value(json_object_get(tc, "index"));
        if (json_object_get(tc, "id")) { /* each call starts once, in order */
            assert_int_equal(index, next);
            char id[32];
            snprintf(id, sizeof id, "toolu_%d", index);
            assert_string_equal(jstr(tc, "id"), id);
            next++;
        } else {
            char args[32];
            snprintf(args, sizeof args, "{\"n\":%d}", index);
            assert_int_equal(index, next - 1);
            assert_string_equal(jstr(tc, "function.arguments"), args);
        }
    }
    assert_int_equal(next, 300);
    json_decref(list);
    buf_free(&b);
    fixture_free(f);

    /* … and the other way: 300 OpenAI calls into 300 Anthropic tool_use blocks */
    f = fixture_encoded("openai", WIRE_ANTHROPIC,
                        "{\"model\":\"pub\",\"max_tokens\":10,\"stream\":true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        true);
    buf_init(&b, 64 << 20);
    char ev[512];
    for (int k = 0; k < 300; k++) {
        snprintf(ev, sizeof ev,
                 "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,"
                 "\"id\":\"call_%d\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}"
                 "}]}}]}"
                 "\n\n",
                 k, k);
        assert_int_equal(provider_stream_event(&f->codec, ev, strlen(ev), &b, &msg), STREAM_MORE);
    }
    const char *done = "data: [DONE]\n\n";
    assert_int_equal(provider_stream_event(&f->codec, done, strlen(done), &b, &msg), STREAM_DONE);
    list = parse_client_events(&b, true);
    int blocks = 0;
    json_array_foreach(list, i, c)
    {
        if (strcmp(jstr(c, "type"), "content_block_start")) continue;
        char id[32];
        snprintf(id, sizeof id, "call_%d", blocks);
        assert_string_equal(jstr(c, "content_block.id"), id);
        assert_int_equal(json_integer_value(json_object_get(c, "index")), blocks);
        blocks++;
    }
    assert_int_equal(blocks, 300);
    json_decref(list);
    buf_free(&b);
    fixture_free(f);
}

/* Past 1024 tool calls the stream fails in-band, in both directions: never a silent drop. */
static void test_tool_calls_past_the_cap_fail_the_stream(void **state)
{
    (void)state;
    fixture *f = fixture_encoded(
        "anthropic", WIRE_OPENAI,
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    buf b;
    buf_init(&b, 256 << 20);
    const char *msg = NULL;
    assert_int_equal(anthropic_tool_stream(f, XLATE_TOOL_CALLS_MAX + 1, &b, &msg), STREAM_FAILED);
    assert_non_null(strstr(msg, "more tool calls than a translated stream carries (1024)"));
    assert_int_equal(f->codec.xlate->tool_calls, XLATE_TOOL_CALLS_MAX);
    buf_free(&b);
    fixture_free(f);

    f = fixture_encoded("openai", WIRE_ANTHROPIC,
                        "{\"model\":\"pub\",\"max_tokens\":10,\"stream\":true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        true);
    buf_init(&b, 64 << 20);
    const char *ev =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1024,"
        "\"id\":\"call_x\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n";
    msg = NULL;
    assert_int_equal(provider_stream_event(&f->codec, ev, strlen(ev), &b, &msg), STREAM_FAILED);
    assert_non_null(strstr(msg, "more tool calls"));
    buf_free(&b);
    fixture_free(f);

    /* Gemini: the 1025th functionCall part */
    f = fixture_encoded(
        "gemini", WIRE_OPENAI,
        "{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    buf_init(&b, 256 << 20);
    const char *call =
        "data: "
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}}]}\n\n";
    stream_step step = STREAM_MORE;
    int sent = 0;
    while (step == STREAM_MORE && sent <= XLATE_TOOL_CALLS_MAX) {
        step = provider_stream_event(&f->codec, call, strlen(call), &b, &msg);
        sent++;
        b.len = 0;
    }
    assert_int_equal(step, STREAM_FAILED);
    assert_int_equal(sent, XLATE_TOOL_CALLS_MAX + 1);
    buf_free(&b);
    fixture_free(f);
}

/* A body with a number jansson cannot hold is the client's mistake for every target: refused
 * as a whole request (no attempt), by position, without quoting the body. */
static void test_unreadable_number_is_a_whole_request_400(void **state)
{
    (void)state;
    fixture *f = fixture_new("anthropic", WIRE_OPENAI,
                             "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                             "\"temperature\":1e999}",
                             false);
    provider_request out;
    provider_error err;
    assert_false(provider_encode(&f->codec, &out, &err));
    assert_true(err.whole_request);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_json");
    assert_non_null(strstr(err.message, "a number out of range (at byte"));
    assert_null(strstr(err.message, "1e999"));
    fixture_free(f);
    /* a refusal that is this provider's only (n > 1 to Anthropic) is not a whole-request one */
    f = fixture_new("anthropic", WIRE_OPENAI,
                    "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
                    false);
    assert_false(provider_encode(&f->codec, &out, &err));
    assert_false(err.whole_request);
    fixture_free(f);
}

/* Every upstream request asks for identity bodies, on the fast path and translated. */
static void test_upstream_requests_ask_for_identity(void **state)
{
    (void)state;
    for (int translated = 0; translated < 2; translated++) {
        fixture *f =
            fixture_new(translated ? "anthropic" : "openai", WIRE_OPENAI,
                        "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", false);
        provider_request out;
        provider_error err;
        assert_true(provider_encode(&f->codec, &out, &err));
        int found = 0;
        for (struct curl_slist *h = out.headers; h; h = h->next)
            if (!strncasecmp(h->data, "accept-encoding:", 16)) {
                assert_string_equal(h->data, "Accept-Encoding: identity");
                found++;
            }
        assert_int_equal(found, 1);
        fixture_free(f);
    }
}

/* ---- a canonical request written as a client's (provider_request_in_ingress) ---------------- */

/* What PROMPT does with a rendered template on /v1/messages: no route yet, so the model stays as
 * named and max_tokens is written only when given; the rest is the translation an Anthropic
 * provider gets. For OpenAI's format the tree itself comes back. */
static void test_canonical_written_as_a_client_request(void **state)
{
    fixture *f = fixture_new("anthropic", WIRE_ANTHROPIC, "{}", false);
    f->codec.route = NULL;
    provider_error err;
    json_t *canon = json_loads(
        "{\"model\":\"claude-x\",\"temperature\":0.2,\"seed\":3,\"user\":\"u1\","
        "\"response_format\":{\"type\":\"json_object\"},\"messages\":["
        "{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Q\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"R\"}]}",
        0, NULL);
    assert_non_null(canon);
    json_t *out = provider_request_in_ingress(&f->codec, canon, &err);
    assert_non_null(out);
    assert_string_equal(jstr(out, "model"), "claude-x");
    assert_null(json_object_get(out, "max_tokens"));
    assert_string_equal(jstr(out, "system.0.text"), "S");
    assert_string_equal(jstr(out, "messages.0.content.0.text"), "Q");
    assert_string_equal(jstr(out, "messages.1.content.0.type"), "tool_use");
    assert_int_equal(json_integer_value(json_path_get_compat(out, "messages.1.content.0.input.a")), 1);
    assert_string_equal(jstr(out, "messages.2.content.0.tool_use_id"), "c1");
    assert_string_equal(jstr(out, "output_config.format.type"), "json_schema");
    assert_string_equal(jstr(out, "metadata.user_id"), "u1");
    assert_null(json_object_get(out, "seed"));
    json_decref(out);
    /* max_tokens given: written */
    json_object_set_new(canon, "max_tokens", json_integer(77));
    out = provider_request_in_ingress(&f->codec, canon, &err);
    assert_int_equal(json_integer_value(json_object_get(out, "max_tokens")), 77);
    json_decref(out);
    /* what Anthropic cannot hold is refused, with the reason */
    json_t *call = json_array_get(
        json_object_get(json_array_get(json_object_get(canon, "messages"), 2), "tool_calls"), 0);
    json_object_set_new(json_object_get(call, "function"), "arguments", json_string("[1]"));
    assert_null(provider_request_in_ingress(&f->codec, canon, &err));
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.message, "arguments are not a JSON object"));
    /* OpenAI's format is the canonical one: the same tree */
    f->codec.ingress = WIRE_OPENAI;
    out = provider_request_in_ingress(&f->codec, canon, &err);
    assert_ptr_equal(out, canon);
    json_decref(out);
    fixture_free(f);
    json_decref(canon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_request_to_anthropic),
        cmocka_unit_test(test_n_above_one_is_refused_for_anthropic),
        cmocka_unit_test(test_empty_tools_leave_no_tool_choice),
        cmocka_unit_test(test_anthropic_reply_to_openai),
        cmocka_unit_test(test_anthropic_error_reaches_openai_client_intact),
        cmocka_unit_test(test_anthropic_stream_to_openai_chunks),
        cmocka_unit_test(test_openai_chunks_to_anthropic_events),
        cmocka_unit_test(test_openai_request_to_gemini),
        cmocka_unit_test(test_gemini_stream_to_openai),
        cmocka_unit_test(test_gemini_stream_without_finish_is_incomplete),
        cmocka_unit_test(test_mistral_renames_and_drops),
        cmocka_unit_test(test_plain_body_stays_on_the_fast_path),
        cmocka_unit_test(test_azure_deployment_url_and_key_header),
        cmocka_unit_test(test_reasoning_effort_and_thinking),
        cmocka_unit_test(test_json_output_to_anthropic),
        cmocka_unit_test(test_translated_event_over_the_limit_fails_whole),
        cmocka_unit_test(test_gemini_failed_generation_is_502),
        cmocka_unit_test(test_wrong_shape_replies_are_502),
        cmocka_unit_test(test_wrong_shape_stream_events_fail),
        cmocka_unit_test(test_many_tool_calls_in_a_translated_stream),
        cmocka_unit_test(test_tool_calls_past_the_cap_fail_the_stream),
        cmocka_unit_test(test_unreadable_number_is_a_whole_request_400),
        cmocka_unit_test(test_upstream_requests_ask_for_identity),
        cmocka_unit_test(test_canonical_written_as_a_client_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
