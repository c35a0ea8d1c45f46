/* test_accesslog.c — the access log's line discipline: long values are cut on a UTF-8 boundary
 * with a marker and stay valid JSON; a line that does not fit is dropped whole, and the lines
 * around it are intact. */
#include "../../src/observe/accesslog.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

static void test_long_value_is_cut_with_a_marker_on_a_utf8_boundary(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64 * 1024);
    /* 'é' is two bytes: with one leading 'a' every cut at an even offset falls inside one. */
    char value[3001];
    value[0] = 'a';
    for (size_t i = 1; i + 1 < sizeof value; i += 2)
        memcpy(value + i, "\xc3\xa9", 2);
    accesslog_string(&b, value, sizeof value - 1);
    json_error_t err;
    json_t *s = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
    assert_non_null(s); /* valid JSON, valid UTF-8 */
    const char *text = json_string_value(s);
    size_t kept = strlen(text) - strlen(strstr(text, "\xe2\x80\xa6[+"));
    assert_true(kept <= ACCESSLOG_FIELD_MAX);
    assert_true(kept >= ACCESSLOG_FIELD_MAX - 1);
    char marker[32];
    snprintf(marker, sizeof marker, "\xe2\x80\xa6[+%zu bytes]", sizeof value - 1 - kept);
    assert_string_equal(text + kept, marker);
    json_decref(s);

    buf_reset(&b);
    accesslog_string(&b, "short \"one\"", 11);
    assert_string_equal(b.data, "\"short \\\"one\\\"\"");
    buf_free(&b);
}

static void test_a_line_that_does_not_fit_is_dropped_whole(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[128];
    accesslog *log = accesslog_open("off", err, sizeof err);
    log->off = false; /* a writer without a thread: the batch is inspected, not written */
    accesslog_writer *w = accesslog_writer_new(log, &loop);
    buf *b = accesslog_line_begin(w);
    buf_append_lit(b, "{\"n\":1}\n");
    assert_true(accesslog_line_done(w, 0));
    size_t start = b->len;
    buf_append_lit(b, "{\"big\":");
    char *huge = malloc(ACCESSLOG_LINE_MAX);
    memset(huge, 'x', ACCESSLOG_LINE_MAX);
    buf_append(b, huge, ACCESSLOG_LINE_MAX);
    buf_append_lit(b, "}\n");
    assert_false(accesslog_line_done(w, start));
    assert_int_equal(b->len, start);
    assert_int_equal(atomic_load(&log->dropped), 1);
    /* an append refused half-way (the batch's maximum) also drops the line whole */
    b = accesslog_line_begin(w);
    start = b->len;
    buf_append_lit(b, "{\"a\":");
    b->max = b->len + 4;
    buf_append_lit(b, "\"toolong\"");
    buf_append_lit(b, "}\n");
    assert_false(accesslog_line_done(w, start));
    assert_int_equal(b->len, start);
    assert_int_equal(b->len, 8);
    assert_memory_equal(b->data, "{\"n\":1}\n", 8);
    free(huge);
    w->batch.len = 0; /* nothing to hand to the (absent) writer thread */
    w->lines = 0;
    log->off = true;
    accesslog_writer_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    accesslog_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_value_is_cut_with_a_marker_on_a_utf8_boundary),
        cmocka_unit_test(test_a_line_that_does_not_fit_is_dropped_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
