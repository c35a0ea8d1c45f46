/* test_db.c — the store's SQL driver where it is pure: SQLite's `?`/`?N` placeholders
 * rewritten to PostgreSQL's $N (numbering as SQLite numbers them, quoted text left alone,
 * refusals for numbers out of range and for a buffer too small). Which driver a store's name
 * picks is test_conninfo.c's; the drivers themselves run against SQLite in test_store.c and against a real
 * PostgreSQL in tests/e2e (keys-postgres, postgres-shared). */
#include "../../src/store/db.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void expect_rewrite(const char *sql, const char *want, int want_params)
{
    char out[512];
    int n = -1;
    if (!db_placeholders_to_dollar(sql, out, sizeof out, &n)) fail_msg("refused: %s", sql);
    assert_string_equal(out, want);
    assert_int_equal(n, want_params);
}

static void test_placeholders(void **state)
{
    (void)state;
    expect_rewrite("SELECT 1", "SELECT 1", 0);
    expect_rewrite("INSERT INTO t (a, b, c) VALUES (?,?,?)", "INSERT INTO t (a, b, c) VALUES ($1,$2,$3)", 3);
    /* numbered ones, reused, as the store's UPDATE and get-by-ref write them */
    expect_rewrite("UPDATE keys SET id = ?1, alias = ?2 WHERE id = ?1",
                   "UPDATE keys SET id = $1, alias = $2 WHERE id = $1", 2);
    expect_rewrite("WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC",
                   "WHERE id = $1 OR alias = $1 ORDER BY id = $1 DESC", 1);
    /* SQLite's rule for a bare ? after a numbered one: one more than the largest so far */
    expect_rewrite("a = ?3 AND b = ? AND c = ?", "a = $3 AND b = $4 AND c = $5", 5);
    expect_rewrite("a = ?10", "a = $10", 10);
    /* inside strings and quoted identifiers a ? is text */
    expect_rewrite("SELECT '?', \"col?\", ? FROM t WHERE x = 'it''s ?'",
                   "SELECT '?', \"col?\", $1 FROM t WHERE x = 'it''s ?'", 1);
}

static void test_placeholder_refusals(void **state)
{
    (void)state;
    char out[64];
    int n;
    assert_false(db_placeholders_to_dollar("a = ?0", out, sizeof out, &n));
    char past[32], last[32];
    snprintf(past, sizeof past, "a = ?%d", DB_PARAMS_MAX + 1);
    snprintf(last, sizeof last, "a = ?%d", DB_PARAMS_MAX);
    assert_false(db_placeholders_to_dollar(past, out, sizeof out, &n));
    assert_false(db_placeholders_to_dollar("a = ?99999999999999999999", out, sizeof out, &n));
    assert_true(db_placeholders_to_dollar(last, out, sizeof out, &n));
    assert_int_equal(n, DB_PARAMS_MAX);
    /* DB_PARAMS_MAX bare ones (a 32-row INSERT of 33 columns) and one more */
    char many[2 * (DB_PARAMS_MAX + 1) + 1];
    for (int i = 0; i < DB_PARAMS_MAX + 1; i++)
        memcpy(many + 2 * i, "?,", 2);
    many[sizeof many - 1] = '\0';
    static char big[8 * (DB_PARAMS_MAX + 1)];
    assert_false(db_placeholders_to_dollar(many, big, sizeof big, &n));
    many[2 * DB_PARAMS_MAX - 1] = '\0';
    assert_true(db_placeholders_to_dollar(many, big, sizeof big, &n));
    assert_int_equal(n, DB_PARAMS_MAX);
    char last_dollar[16];
    snprintf(last_dollar, sizeof last_dollar, "$%d", DB_PARAMS_MAX);
    assert_string_equal(big + strlen(big) - strlen(last_dollar), last_dollar);
    /* too small for the result: refused, never truncated */
    char tiny[8];
    assert_false(db_placeholders_to_dollar("SELECT ?, ?", tiny, sizeof tiny, &n));
    assert_true(db_placeholders_to_dollar("SELECT", tiny, sizeof tiny, &n));
    assert_false(db_placeholders_to_dollar("SELECT 1", tiny, sizeof tiny, &n)); /* 8 + NUL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_placeholder_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
