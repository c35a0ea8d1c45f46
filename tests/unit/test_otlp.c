/* test_otlp.c — OTLP's encodings of a traced request's spans (observe/otlp.c): the protobuf
 * encoder against bytes worked out by hand from opentelemetry-proto's field numbers (varints,
 * a negative int64's ten bytes, a double's eight, a span whose length needs two bytes, a
 * status), the JSON of the same request, bytes that are not UTF-8 made U+FFFD in both, the
 * spans a request with phases, calls and a translation makes (their ids, parents and roles,
 * read back by a small decoder), and the worker's copy owning its strings. The encoder was also
 * checked once against protobufjs decoding the official messages (bench/RESULTS.md says how). */
#include "../../src/observe/otlp.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A literal as an otlp_text. */
#define TEXT(lit) ((otlp_text){"" lit, sizeof(lit) - 1})

static const otlp_request small = {
    .trace_id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
    .span_id = {0xa1, 2, 3, 4, 5, 6, 7, 8},
    .operation = TEXT("chat"),
    .model = TEXT("m"),
    .error = TEXT("boom"),
    .start_ns = 1,
    .end_ns = 0x0102,
    .status = 502,
    .usage_seen = true,
    .input_tokens = 3,
    .output_tokens = -1,
    .cost_usd = 0.25,
    .bound = 4096,
};

/* The encoding alone, in a buf of its own. */
static buf encode(otlp_encoding e, const otlp_request *const *reqs, size_t n, const char *service)
{
    buf b, out;
    buf_init(&b, 1 << 20);
    size_t len;
    const char *data = otlp_encode(e, service, reqs, n, &b, &len);
    assert_non_null(data);
    assert_true(data >= b.data && data + len == b.data + b.len);
    buf_init(&out, 1 << 20);
    buf_append(&out, data, len);
    buf_free(&b);
    return out;
}

static void test_protobuf_known_bytes(void **state)
{
    static const char want[] =
        "\x0a\xc4\x02" /* resource_spans (1), 324 bytes */
        "\x0a\x15"     /* . resource (1), 21 */
        "\x0a\x13"     /* . . attributes (1), 19 */
        "\x0a\x0c"
        "service.name" /* . . . key */
        "\x12\x03\x0a\x01"
        "s"            /* . . . value: string_value */
        "\x12\xaa\x02" /* . scope_spans (2), 298 */
        "\x0a\x06\x0a\x04"
        "aigw"         /* . . scope: name */
        "\x12\x9f\x02" /* . . spans (2), 287: a two-byte length */
        "\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10" /* trace_id */
        "\x12\x08\xa1\x02\x03\x04\x05\x06\x07\x08" /* span_id; no parent_span_id */
        "\x2a\x06"
        "chat m"                               /* name (5) */
        "\x30\x02"                             /* kind (6): SERVER */
        "\x39\x01\x00\x00\x00\x00\x00\x00\x00" /* start_time_unix_nano (7): fixed64 */
        "\x41\x02\x01\x00\x00\x00\x00\x00\x00" /* end_time_unix_nano (8) */
        "\x4a\x1f\x0a\x15"
        "gen_ai.operation.name"
        "\x12\x06\x0a\x04"
        "chat" /* attributes (9) */
        "\x4a\x1b\x0a\x14"
        "gen_ai.request.model"
        "\x12\x03\x0a\x01"
        "m"
        "\x4a\x1f\x0a\x19"
        "gen_ai.usage.input_tokens"
        "\x12\x02\x18\x03" /* int_value (3) */
        "\x4a\x29\x0a\x1a"
        "gen_ai.usage.output_tokens"
        "\x12\x0b\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" /* -1: ten bytes */
        "\x4a\x20\x0a\x19"
        "http.response.status_code"
        "\x12\x03\x18\xf6\x03" /* 502 */
        "\x4a\x13\x0a\x0d"
        "aigw.attempts"
        "\x12\x02\x18\x00"
        "\x4a\x1a\x0a\x0d"
        "aigw.cost_usd"
        "\x12\x09\x21\x00\x00\x00\x00\x00\x00\xd0\x3f" /* double 0.25 */
        "\x7a\x08\x12\x04"
        "boom"
        "\x18\x02"; /* status (15): message, code ERROR */
    const otlp_request *list[] = {&small};
    buf b = encode(OTLP_PROTOBUF, list, 1, "s");
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    buf_free(&b);
}

static void test_json_of_the_same(void **state)
{
    const otlp_request *list[] = {&small};
    buf b = encode(OTLP_JSON, list, 1, "s");
    buf_append(&b, "", 1);
    assert_string_equal(
        b.data,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{"
        "\"stringValue\":"
        "\"s\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"aigw\"},\"spans\":[{\"traceId\":"
        "\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a102030405060708\",\"name\":\"chat m\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"258\",\"attributes\":["
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"m\"}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"3\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"-1\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"502\"}},"
        "{\"key\":\"aigw.attempts\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"aigw.cost_usd\",\"value\":{\"doubleValue\":0.250000000}}],"
        "\"status\":{\"code\":2,\"message\":\"boom\"}}]}]}]}");
    buf_free(&b);
}

/* A phase's span is written whole, its length known in advance: the bytes, by hand. */
static void test_phase_span_known_bytes(void **state)
{
    static const otlp_phase phases[] = {{"auth", 10, 20, 4}};
    static const char want[] =
        "\x12\x45"                                                                 /* spans (2), 69 bytes */
        "\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10" /* trace_id */
        "\x12\x08\xfb\x02\x03\x04\x05\x06\x07\x88" /* span_id: a1^5a, …, 08^80 (phase 0) */
        "\x22\x08\xa1\x02\x03\x04\x05\x06\x07\x08" /* parent_span_id (4): the request's */
        "\x2a\x09"
        "aigw.auth"                             /* name (5) */
        "\x30\x01"                              /* kind (6): INTERNAL */
        "\x39\x0a\x00\x00\x00\x00\x00\x00\x00"  /* start_time_unix_nano (7) */
        "\x41\x14\x00\x00\x00\x00\x00\x00\x00"; /* end_time_unix_nano (8) */
    otlp_request q = small;
    q.phases = phases;
    q.nphases = 1;
    const otlp_request *list[] = {&q};
    buf b = encode(OTLP_PROTOBUF, list, 1, "s");
    /* the request's span, then this one: the body's last bytes */
    assert_true(b.len > sizeof want - 1);
    assert_memory_equal(b.data + b.len - (sizeof want - 1), want, sizeof want - 1);
    buf_free(&b);
}

/* ---- a small decoder, to read back what longer inputs make ------------------------------------ */

typedef struct pb_reader {
    const unsigned char *p, *end;
} pb_reader;

static uint64_t read_varint(pb_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(r->p < r->end);
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    fail_msg("a varint longer than ten bytes");
    return 0;
}

/* The next field: its number, wire type and, for LEN, its bytes (a reader over them). */
static bool next_field(pb_reader *r, int *field, int *wire, pb_reader *sub, uint64_t *value)
{
    if (r->p == r->end) return false;
    uint64_t key = read_varint(r);
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    if (*wire == PB_VARINT) {
        *value = read_varint(r);
    } else if (*wire == PB_I64) {
        assert_true(r->end - r->p >= 8);
        *value = 0;
        for (int i = 7; i >= 0; i--)
            *value = *value << 8 | r->p[i];
        r->p += 8;
    } else if (*wire == PB_LEN) {
        uint64_t len = read_varint(r);
        assert_true(len <= (uint64_t)(r->end - r->p));
        *sub = (pb_reader){r->p, r->p + len};
        r->p += len;
    } else {
        fail_msg("wire type %d", *wire);
    }
    return true;
}

/* The first LEN field numbered field inside r. */
static pb_reader sub_field(pb_reader r, int want)
{
    int field, wire;
    pb_reader sub = {0};
    uint64_t v;
    while (next_field(&r, &field, &wire, &sub, &v))
        if (field == want && wire == PB_LEN) return sub;
    fail_msg("no field %d", want);
    return sub;
}

typedef struct decoded_span {
    uint8_t span_id[8], parent[8];
    bool has_parent;
    char name[160];
    int kind;
    char role[16];
    char model[320];
    bool error;
} decoded_span;

static void copy_text(char *out, size_t cap, pb_reader s)
{
    size_t n = (size_t)(s.end - s.p);
    assert_true(n < cap);
    memcpy(out, s.p, n);
    out[n] = '\0';
}

/* The spans of an ExportTraceServiceRequest. */
static size_t decode_spans(const buf *b, decoded_span *out, size_t cap)
{
    pb_reader all = {(const unsigned char *)b->data, (const unsigned char *)b->data + b->len};
    pb_reader rs = sub_field(all, EXPORT_RESOURCE_SPANS), ss = sub_field(rs, RESOURCE_SPANS_SCOPE_SPANS);
    size_t n = 0;
    int field, wire;
    pb_reader span;
    uint64_t v;
    while (next_field(&ss, &field, &wire, &span, &v)) {
        if (field != SCOPE_SPANS_SPANS) continue;
        assert_true(n < cap);
        decoded_span *d = &out[n++];
        memset(d, 0, sizeof *d);
        pb_reader f;
        while (next_field(&span, &field, &wire, &f, &v)) {
            if (field == SPAN_SPAN_ID) memcpy(d->span_id, f.p, 8);
            if (field == SPAN_PARENT_SPAN_ID) {
                memcpy(d->parent, f.p, 8);
                d->has_parent = true;
            }
            if (field == SPAN_NAME) copy_text(d->name, sizeof d->name, f);
            if (field == SPAN_KIND) d->kind = (int)v;
            if (field == SPAN_STATUS) d->error = true;
            if (field == SPAN_ATTRIBUTES) {
                char key[64];
                copy_text(key, sizeof key, sub_field(f, KEY_VALUE_KEY));
                pb_reader any = sub_field(f, KEY_VALUE_VALUE);
                if (!strcmp(key, "aigw.attempt.role"))
                    copy_text(d->role, sizeof d->role, sub_field(any, ANY_STRING));
                if (!strcmp(key, "gen_ai.request.model"))
                    copy_text(d->model, sizeof d->model, sub_field(any, ANY_STRING));
            }
        }
    }
    return n;
}

static void test_spans_of_a_request(void **state)
{
    static const otlp_call calls[] = {
        {.provider = TEXT("broken"),
         .provider_type = TEXT("openai"),
         .model = TEXT("m1"),
         .outcome = "error_status",
         .ingress = "openai",
         .span_id = {0xc1, 0, 0, 0, 0, 0, 0, 1},
         .start_ns = 100,
         .end_ns = 200,
         .status = 500},
        {.provider = TEXT("broken"),
         .provider_type = TEXT("openai"),
         .model = TEXT("m1"),
         .outcome = "timeout",
         .ingress = "openai",
         .span_id = {0xc2, 0, 0, 0, 0, 0, 0, 2},
         .start_ns = 210,
         .end_ns = 300},
        {.provider = TEXT("an"),
         .provider_type = TEXT("anthropic"),
         .model = TEXT("claude"),
         .outcome = "ok",
         .ingress = "openai",
         .span_id = {0xc3, 0, 0, 0, 0, 0, 0, 3},
         .start_ns = 320,
         .end_ns = 400,
         .status = 200,
         .encode_start_ns = 310,
         .encode_ns = 5,
         .decode_ns = 7},
        {.provider = TEXT("an"),
         .provider_type = TEXT("anthropic"),
         .model = TEXT("claude"),
         .outcome = "cancelled",
         .ingress = "openai",
         .span_id = {0xc4, 0, 0, 0, 0, 0, 0, 4},
         .start_ns = 330,
         .end_ns = 0},
    };
    static const otlp_phase phases[] = {{"auth", 10, 20, 4}, {"routing", 30, 40, 0 /* counted */}};
    otlp_request q = small;
    q.has_parent = true;
    memcpy(q.parent_span_id, "\xb1\x02\x03\x04\x05\x06\x07\x08", 8);
    q.phases = phases;
    q.nphases = 2;
    q.calls = calls;
    q.ncalls = 4;
    q.error = (otlp_text){NULL, 0};
    const otlp_request *list[] = {&q};
    buf b = encode(OTLP_PROTOBUF, list, 1, "gateway-under-test");
    decoded_span s[16];
    size_t n = decode_spans(&b, s, 16);
    assert_int_equal(n, 1 + 2 + 4 + 1); /* request, phases, calls, one translation */
    assert_int_equal(s[0].kind, SPAN_SERVER);
    assert_memory_equal(s[0].parent, q.parent_span_id, 8);
    assert_string_equal(s[1].name, "aigw.auth");
    assert_string_equal(s[2].name, "aigw.routing");
    for (size_t i = 1; i < n; i++) { /* every other span is the request span's child, its id its own */
        assert_true(s[i].has_parent);
        assert_memory_equal(s[i].parent, q.span_id, 8);
        for (size_t k = 0; k < i; k++)
            assert_memory_not_equal(s[i].span_id, s[k].span_id, 8);
    }
    assert_string_equal(s[3].role, "first");
    assert_true(s[3].error);
    assert_string_equal(s[4].role, "retry");
    assert_string_equal(s[4].name, "chat m1");
    assert_string_equal(s[5].role, "fallback");
    assert_false(s[5].error);
    assert_memory_equal(s[5].span_id, calls[2].span_id, 8); /* the id the provider got */
    assert_string_equal(s[6].name, "aigw.translate");
    assert_int_equal(s[6].kind, SPAN_INTERNAL);
    assert_string_equal(s[7].role, "hedge"); /* started while the one before ran */
    assert_false(s[7].error);                /* cancelled is no failure */
    assert_string_equal(s[7].model, "claude");
    buf_free(&b);
}

/* A long model (past OTLP_MODEL_IN_NAME in the name) and bytes that are not UTF-8. */
static void test_names_cut_and_bad_bytes(void **state)
{
    char model[300];
    memset(model, 'x', sizeof model - 1);
    model[sizeof model - 1] = '\0';
    model[3] = '\xff';                  /* not UTF-8 */
    memcpy(model + 119, "\xc3\xa9", 2); /* é, cut in two by the name's bound */
    otlp_request q = small;
    q.model = (otlp_text){model, strlen(model)};
    q.bound = 8192;
    const otlp_request *list[] = {&q};
    buf b = encode(OTLP_PROTOBUF, list, 1, "s");
    decoded_span s[4];
    assert_int_equal(decode_spans(&b, s, 4), 1);
    /* "chat " + 120 bytes of the model: \xff and the half é become U+FFFD, two bytes longer each */
    assert_int_equal(strlen(s[0].name), 5 + 120 + 2 + 2);
    assert_memory_equal(s[0].name, "chat xxx\xef\xbf\xbdxxx", 14);
    assert_memory_equal(s[0].name + strlen(s[0].name) - 4, "x\xef\xbf\xbd", 4);
    buf_free(&b);
    b = encode(OTLP_JSON, list, 1, "s");
    buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "\"name\":\"chat xxx\\ufffdxxx"));
    buf_free(&b);
}

/* The worker's copy: the exchange's memory may be reused at once. */
static void test_copy_owns_its_strings(void **state)
{
    char provider[] = "oa", model[] = "gpt-x", key[] = "key_1", error[300];
    memset(error, 'e', sizeof error - 1);
    error[sizeof error - 1] = '\0';
    static const uint8_t trace[16] = {9}, span[8] = {7}, call_span[8] = {5};
    record_call calls[] = {{.provider = provider,
                            .provider_type = "openai",
                            .model = model,
                            .start_ns = 1000,
                            .end_ns = 2000,
                            .status = 502,
                            .outcome = "error_status",
                            .span_id = call_span,
                            .ingress = "openai"}};
    record_phase phases[] = {{"decode", 100, 50, 6}};
    exchange_record r = {.request_id = "req-1",
                         .path = "/v1/embeddings",
                         .path_len = 14,
                         .model = model,
                         .provider = provider,
                         .upstream_model = "gpt-x-long",
                         .upstream_model_len = 5,
                         .status = 502,
                         .error = error,
                         .key_id = key,
                         .start_ns = 10,
                         .end_ns = 3000,
                         .trace_id = trace,
                         .span_id = span,
                         .calls = calls,
                         .ncalls = 1,
                         .phases = phases,
                         .nphases = 1,
                         .cost_usd = -1};
    arena a;
    arena_init(&a, 128); /* small: the record takes a block of its own */
    otlp_request *q = otlp_request_copy(&a, &r, 1000000, "prompt", 6, NULL, 0);
    memset(provider, 'X', 2);
    memset(model, 'X', 5);
    memset(key, 'X', 5);
    assert_string_equal(q->provider.s, "oa");
    assert_string_equal(q->model.s, "gpt-x");
    assert_string_equal(q->upstream_model.s, "gpt-x");
    assert_string_equal(q->key_id.s, "key_1");
    assert_string_equal(q->calls[0].provider.s, "oa");
    assert_string_equal(q->calls[0].model.s, "gpt-x");
    assert_string_equal(q->operation.s, "embeddings");
    assert_int_equal(strlen(q->error.s), OTLP_ERROR_MAX);
    assert_int_equal(q->error.len, OTLP_ERROR_MAX);
    assert_int_equal(q->upstream_model.len, 5);
    assert_int_equal(q->calls[0].model.len, 5);
    assert_string_equal(q->prompt.s, "prompt");
    assert_null(q->completion.s);
    assert_true(q->start_ns == 1000010 && q->end_ns == 1003000);
    assert_true(q->phases[0].start_ns == 1000100 && q->phases[0].end_ns == 1000150);
    assert_true(q->calls[0].start_ns == 1001000 && q->calls[0].end_ns == 1002000);
    assert_false(q->has_parent);
    const otlp_request *list[] = {q, q};
    buf b = encode(OTLP_JSON, list, 2, "s"); /* within the bound it promised, or it aborts */
    buf_free(&b);
    b = encode(OTLP_PROTOBUF, list, 2, "s");
    buf_free(&b);
    /* the operation, by the endpoint */
    static const struct {
        const char *path, *operation;
    } ops[] = {
        {"/v1/completions", "text_completion"}, {"/v1/chat/completions", "chat"}, {"/v1/messages", "chat"}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        r.path = ops[i].path;
        r.path_len = strlen(ops[i].path);
        q = otlp_request_copy(&a, &r, 0, NULL, 0, NULL, 0);
        assert_string_equal(q->operation.s, ops[i].operation);
    }
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protobuf_known_bytes),    cmocka_unit_test(test_phase_span_known_bytes),
        cmocka_unit_test(test_json_of_the_same),        cmocka_unit_test(test_spans_of_a_request),
        cmocka_unit_test(test_names_cut_and_bad_bytes), cmocka_unit_test(test_copy_owns_its_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
