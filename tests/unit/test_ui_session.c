/* test_ui_session.c — the dashboard's C side, its pure parts: the embedded file table (every
 * row has bytes, the page's entry is HTML naming its module, only exact names are found) and
 * the session checks (ids and CSRF tokens, idle time and lifetime, logout, the table's bound,
 * the Cookie and Origin headers read strictly). */
#include "../../src/ui/ui_session.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_files_table(void **state)
{
    (void)state;
    assert_true(ui_file_count() >= 10);
    for (size_t i = 0; i < ui_file_count(); i++) {
        const ui_file *f = ui_file_at(i);
        assert_non_null(f);
        assert_true(*f->len > 0);
        assert_int_equal(f->data[*f->len], 0); /* the assembler's NUL after the bytes */
        char path[128];
        snprintf(path, sizeof path, "/ui/%s", f->path);
        assert_ptr_equal(ui_file_find(path), f);
    }
    assert_null(ui_file_at(ui_file_count()));
    const ui_file *index = ui_file_find("/ui");
    assert_non_null(index);
    assert_ptr_equal(ui_file_find("/ui/"), index);
    assert_string_equal(index->path, "index.html");
    assert_non_null(strstr(index->content_type, "text/html"));
    assert_non_null(strstr((const char *)index->data, "<script type=\"module\" src=\"/ui/js/app.js\">"));
    assert_null(strstr((const char *)index->data, "<script>")); /* no inline script */
    assert_non_null(strstr(ui_file_find("/ui/js/app.js")->content_type, "text/javascript"));
    /* only the table's exact names */
    assert_null(ui_file_find("/uix"));
    assert_null(ui_file_find("/ui/../etc/passwd"));
    assert_null(ui_file_find("/ui/js/../app.css"));
    assert_null(ui_file_find("/ui/js/"));
    assert_null(ui_file_find("/ui/app.css/"));
    assert_null(ui_file_find("/admin/keys"));
    assert_non_null(strstr(ui_security_headers, "frame-ancestors 'none'"));
    assert_non_null(strstr(ui_security_headers, "script-src 'self';"));
    assert_null(strstr(ui_security_headers, "unsafe-inline"));
}

static void test_session_lifecycle(void **state)
{
    (void)state;
    ui_session_reset();
    uint8_t digest[32], got[32];
    memset(digest, 0xab, sizeof digest);
    char id[UI_TOKEN_HEX + 1], csrf[UI_TOKEN_HEX + 1], csrf2[UI_TOKEN_HEX + 1];
    ui_session_create(digest, 1000, id, csrf);
    assert_int_equal(strlen(id), UI_TOKEN_HEX);
    assert_int_equal(strlen(csrf), UI_TOKEN_HEX);
    assert_string_not_equal(id, csrf);
    assert_int_equal(ui_session_find(id, strlen(id), 1001, got, csrf2), UI_SESSION_OK);
    assert_memory_equal(got, digest, 32);
    assert_string_equal(csrf2, csrf);
    /* a different id, a truncated one, a non-hex one */
    char other[UI_TOKEN_HEX + 1];
    memcpy(other, id, sizeof other);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_int_equal(ui_session_find(other, strlen(other), 1001, got, csrf2), UI_SESSION_UNKNOWN);
    assert_int_equal(ui_session_find(id, UI_TOKEN_HEX - 1, 1001, got, csrf2), UI_SESSION_UNKNOWN);
    assert_int_equal(ui_session_find("zz", 2, 1001, got, csrf2), UI_SESSION_UNKNOWN);
    /* used within its idle time, it stays; unused past it, it ends */
    assert_int_equal(ui_session_find(id, strlen(id), 1000 + UI_SESSION_IDLE_S - 1, got, csrf2),
                     UI_SESSION_OK);
    assert_int_equal(ui_session_find(id, strlen(id), 1000 + 2 * UI_SESSION_IDLE_S - 1, got, csrf2),
                     UI_SESSION_UNKNOWN);
    /* the lifetime bounds a session used all the time */
    ui_session_create(digest, 5000, id, csrf);
    for (int64_t t = 5000; t < 5000 + UI_SESSION_LIFETIME_S; t += UI_SESSION_IDLE_S / 2)
        assert_int_equal(ui_session_find(id, strlen(id), t, got, csrf2), UI_SESSION_OK);
    assert_int_equal(ui_session_find(id, strlen(id), 5000 + UI_SESSION_LIFETIME_S, got, csrf2),
                     UI_SESSION_UNKNOWN);
    /* logout */
    ui_session_create(digest, 9000, id, csrf);
    assert_true(ui_session_end(id, strlen(id)));
    assert_int_equal(ui_session_find(id, strlen(id), 9001, got, csrf2), UI_SESSION_UNKNOWN);
    assert_false(ui_session_end(id, strlen(id)));
}

static void test_session_bound(void **state)
{
    (void)state;
    ui_session_reset();
    uint8_t digest[32] = {1}, got[32];
    char first[UI_TOKEN_HEX + 1], second[UI_TOKEN_HEX + 1], id[UI_TOKEN_HEX + 1], csrf[UI_TOKEN_HEX + 1];
    ui_session_create(digest, 100, first, csrf);
    ui_session_create(digest, 100, second, csrf);
    for (int i = 2; i < UI_SESSIONS_MAX; i++)
        ui_session_create(digest, 101, id, csrf);
    assert_int_equal(ui_session_find(second, UI_TOKEN_HEX, 102, got, csrf), UI_SESSION_OK); /* used now */
    ui_session_create(digest, 103, id, csrf); /* the table is full: the least recently used goes */
    assert_int_equal(ui_session_find(first, UI_TOKEN_HEX, 104, got, csrf), UI_SESSION_UNKNOWN);
    assert_int_equal(ui_session_find(second, UI_TOKEN_HEX, 104, got, csrf), UI_SESSION_OK);
    assert_int_equal(ui_session_find(id, UI_TOKEN_HEX, 104, got, csrf), UI_SESSION_OK);
    ui_session_reset();
}

static void test_cookie_value(void **state)
{
    (void)state;
    const char *v;
    size_t n;
    const char *h = "theme=dark; aigw_session=abc123; other=1";
    assert_true(ui_cookie_value(h, strlen(h), "aigw_session", &v, &n));
    assert_int_equal(n, 6);
    assert_memory_equal(v, "abc123", 6);
    h = "aigw_session=\"q\"";
    assert_true(ui_cookie_value(h, strlen(h), "aigw_session", &v, &n));
    assert_int_equal(n, 1);
    assert_int_equal(v[0], 'q');
    h = "xaigw_session=1; aigw_sessionx=2; aigw_session";
    assert_false(ui_cookie_value(h, strlen(h), "aigw_session", &v, &n));
    h = "a=1;aigw_session=first;aigw_session=second";
    assert_true(ui_cookie_value(h, strlen(h), "aigw_session", &v, &n));
    assert_int_equal(n, 5);
    assert_false(ui_cookie_value("", 0, "aigw_session", &v, &n));
    /* the header's length bounds the read: a value past it is not seen */
    h = "a=1; aigw_session=zz";
    assert_false(ui_cookie_value(h, 4, "aigw_session", &v, &n));
}

static void test_csrf_and_origin(void **state)
{
    (void)state;
    char token[UI_TOKEN_HEX + 1];
    memset(token, 'a', UI_TOKEN_HEX);
    token[UI_TOKEN_HEX] = 0;
    assert_true(ui_csrf_matches(token, token, UI_TOKEN_HEX));
    assert_false(ui_csrf_matches(token, token, UI_TOKEN_HEX - 1));
    assert_false(ui_csrf_matches(token, "", 0));
    char wrong[UI_TOKEN_HEX + 1];
    memcpy(wrong, token, sizeof wrong);
    wrong[UI_TOKEN_HEX - 1] = 'b';
    assert_false(ui_csrf_matches(token, wrong, UI_TOKEN_HEX));
    assert_false(ui_csrf_matches("", "", 0)); /* no session token: nothing matches */

    const char *host = "127.0.0.1:8080";
    assert_true(ui_origin_matches("http://127.0.0.1:8080", 21, host, strlen(host)));
    assert_true(ui_origin_matches("https://127.0.0.1:8080", 22, host, strlen(host)));
    assert_false(ui_origin_matches("http://127.0.0.1:8081", 21, host, strlen(host)));
    assert_false(ui_origin_matches("http://evil.example", 19, host, strlen(host)));
    assert_false(ui_origin_matches("http://127.0.0.1:8080.evil", 26, host, strlen(host)));
    assert_false(ui_origin_matches("null", 4, host, strlen(host)));
    assert_false(ui_origin_matches("http://", 7, "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_table),     cmocka_unit_test(test_session_lifecycle),
        cmocka_unit_test(test_session_bound),   cmocka_unit_test(test_cookie_value),
        cmocka_unit_test(test_csrf_and_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
