/* test_sse.c — SSE framing: events come out whole and byte-identical however the upstream's
 * bytes are split, for every line-ending style; [DONE] is recognised exactly. */
#include "../../src/upstream/sse.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

typedef struct collected {
    char data[8192];
    size_t len;
    size_t events;
    size_t ends[64]; /* offset where each event ends */
} collected;

static void on_event(void *ud, const char *raw, size_t len)
{
    collected *c = ud;
    assert_true(c->len + len <= sizeof c->data);
    memcpy(c->data + c->len, raw, len);
    c->len += len;
    c->ends[c->events++] = c->len;
}

static void feed_split(const char *stream, size_t len, const size_t *cuts, size_t ncuts, collected *out)
{
    sse_reader r;
    sse_reader_init(&r, 4096);
    memset(out, 0, sizeof *out);
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_true(sse_reader_feed(&r, stream + prev, end - prev, on_event, out));
        prev = end;
    }
    sse_reader_free(&r);
}

static const char *const streams[] = {
    "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n: keep-alive\n\ndata:[DONE]\n\n",
    "data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\nevent: x\r\ndata: y\r\n\r\ndata: [DONE]\r\n\r\n",
    "data: one\r\rdata: two\r\r",
    "data: mixed\n\r\ndata: lines\r\n\n",
};

static void test_all_splits_give_the_same_events(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++) {
        const char *stream = streams[s];
        size_t len = strlen(stream);
        collected whole, split;
        feed_split(stream, len, NULL, 0, &whole);
        assert_int_equal(whole.len, len); /* every byte belongs to an event; nothing invented */
        assert_memory_equal(whole.data, stream, len);
        /* Every 2-piece split: the same events with the same bytes; only a cut between the CR
         * and LF of an event's closing CRLF moves that LF into the next event. */
        for (size_t cut = 1; cut < len; cut++) {
            feed_split(stream, len, &cut, 1, &split);
            assert_int_equal(split.events, whole.events);
            bool crlf_cut = stream[cut - 1] == '\r' && stream[cut] == '\n';
            for (size_t e = 0; e < whole.events; e++) {
                if (split.ends[e] == whole.ends[e]) continue;
                if (!(crlf_cut && split.ends[e] == cut && whole.ends[e] == cut + 1))
                    fail_msg("stream %zu cut %zu: event %zu ends at %zu, expected %zu", s, cut, e,
                             split.ends[e], whole.ends[e]);
            }
            /* nothing lost or invented, except an LF left pending after the last event */
            assert_true(split.len == whole.len || (split.len + 1 == whole.len && stream[len - 1] == '\n'));
            assert_memory_equal(split.data, whole.data, split.len);
        }
        /* one byte at a time: same number of events, bytes in order */
        size_t cuts[512];
        for (size_t i = 1; i < len; i++)
            cuts[i - 1] = i;
        feed_split(stream, len, cuts, len - 1, &split);
        assert_int_equal(split.events, whole.events);
        assert_memory_equal(split.data, whole.data, split.len);
    }
}

static void test_event_counts_and_boundaries(void **state)
{
    (void)state;
    collected c;
    feed_split(streams[0], strlen(streams[0]), NULL, 0, &c);
    assert_int_equal(c.events, 4);
    assert_int_equal(c.ends[0], strlen("data: {\"a\":1}\n\n"));
    feed_split(streams[2], strlen(streams[2]), NULL, 0, &c);
    assert_int_equal(c.events, 2);
    feed_split(streams[3], strlen(streams[3]), NULL, 0, &c);
    assert_int_equal(c.events, 2);
    assert_int_equal(c.ends[0], strlen("data: mixed\n\r\n"));
}

static void test_partial_event_is_held_not_emitted(void **state)
{
    (void)state;
    sse_reader r;
    sse_reader_init(&r, 4096);
    collected c = {0};
    const char *first = "data: {\"a\":1}\n\ndata: {\"b\"";
    assert_true(sse_reader_feed(&r, first, strlen(first), on_event, &c));
    assert_int_equal(c.events, 1);
    assert_true(sse_reader_has_partial(&r));
    assert_true(sse_reader_feed(&r, ":2}\n\n", 5, on_event, &c));
    assert_int_equal(c.events, 2);
    assert_false(sse_reader_has_partial(&r));
    assert_memory_equal(c.data + c.ends[0], "data: {\"b\":2}\n\n", 15);
    sse_reader_reset(&r);
    assert_false(sse_reader_has_partial(&r));
    sse_reader_free(&r);
}

static void test_event_too_large(void **state)
{
    (void)state;
    sse_reader r;
    sse_reader_init(&r, 64);
    collected c = {0};
    char big[100];
    memset(big, 'x', sizeof big);
    assert_true(sse_reader_feed(&r, "data: ", 6, on_event, &c));
    assert_false(sse_reader_feed(&r, big, sizeof big, on_event, &c));
    sse_reader_free(&r);
}

static void test_done_marker(void **state)
{
    (void)state;
#define DONE(s) sse_event_is_done(s, strlen(s))
    assert_true(DONE("data: [DONE]\n\n"));
    assert_true(DONE("data:[DONE]\r\n\r\n"));
    assert_true(DONE(": comment\ndata: [DONE]\n\n"));
    assert_false(DONE("data: [DONE]x\n\n"));
    assert_false(DONE("data: {\"x\":\"[DONE]\"}\n\n"));
    assert_false(DONE("data: [DONE]\ndata: more\n\n"));
    assert_false(DONE(": [DONE]\n\n"));
    assert_false(DONE("\n\n"));
#undef DONE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_splits_give_the_same_events),
        cmocka_unit_test(test_event_counts_and_boundaries),
        cmocka_unit_test(test_partial_event_is_held_not_emitted),
        cmocka_unit_test(test_event_too_large),
        cmocka_unit_test(test_done_marker),
    };
    return cmocka_run_group_tests_name("sse", tests, NULL, NULL);
}
