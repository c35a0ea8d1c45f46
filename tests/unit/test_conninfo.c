/* test_conninfo.c — `auth.store` told apart (a file path or a PostgreSQL connection string),
 * and the connection string shown without its password in every place one can be written:
 * the URI's user:password@, a password= query parameter, a password keyword (quoted or not);
 * and nothing but the password changed, a path shown as written, a small buffer truncated. */
#include "../../src/util/conninfo.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_is_postgres(void **state)
{
    (void)state;
    assert_true(conninfo_is_postgres("postgres://u:p@db:5432/aigw"));
    assert_true(conninfo_is_postgres("postgresql:///aigw?host=/run/postgresql"));
    assert_true(conninfo_is_postgres("POSTGRESQL://db/aigw"));
    assert_true(conninfo_is_postgres("host=db dbname=aigw"));
    assert_true(conninfo_is_postgres("  dbname = aigw"));
    assert_true(conninfo_is_postgres("service=aigw"));
    assert_false(conninfo_is_postgres("aigw.db"));
    assert_false(conninfo_is_postgres("/var/lib/aigw/aigw.db"));
    assert_false(conninfo_is_postgres("data/host=1.db")); /* a path that holds '=' */
    assert_false(conninfo_is_postgres("hostname.db"));
    assert_false(conninfo_is_postgres("postgres.db"));
    assert_false(conninfo_is_postgres(NULL));
}

static void expect_redacted(const char *in, const char *want)
{
    char out[256];
    conninfo_redact(in, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_redact(void **state)
{
    (void)state;
    expect_redacted("postgres://aigw:s3cret@127.0.0.1:5432/aigw", "postgres://aigw:***@127.0.0.1:5432/aigw");
    expect_redacted("postgresql://aigw@db/aigw", "postgresql://aigw@db/aigw");
    expect_redacted("postgres://db/aigw", "postgres://db/aigw");
    expect_redacted("postgres://a:p@ss@db/x", "postgres://a:***@db/x"); /* the last @ ends the userinfo */
    expect_redacted("postgres://db/aigw?sslmode=require&password=s3cret&connect_timeout=3",
                    "postgres://db/aigw?sslmode=require&password=***&connect_timeout=3");
    expect_redacted("postgres://u:one@db/aigw?password=two", "postgres://u:***@db/aigw?password=***");
    expect_redacted("host=db password=s3cret dbname=aigw", "host=db password=*** dbname=aigw");
    expect_redacted("host=db password = 'it\\'s secret' dbname=aigw", "host=db password = *** dbname=aigw");
    expect_redacted("host=db dbname=aigw", "host=db dbname=aigw");
    expect_redacted("/var/lib/aigw/aigw.db", "/var/lib/aigw/aigw.db");
    char small[12];
    conninfo_redact("postgres://aigw:s3cret@db/aigw", small, sizeof small);
    assert_string_equal(small, "postgres://");
}

static void expect_scrubbed(const char *conninfo, const char *msg, size_t len, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", msg);
    conninfo_scrub(conninfo, buf, len);
    assert_string_equal(buf, want);
}

/* libpq quotes a malformed token as written: the password is masked wherever it appears. */
static void test_scrub(void **state)
{
    (void)state;
    expect_scrubbed("postgres://aigw:p%zzw@db/aigw", "invalid percent-encoded token: \"p%zzw\"", 256,
                    "invalid percent-encoded token: \"***\"");
    expect_scrubbed("host=db password=hunter2", "hunter2 and hunter2", 256, "*** and ***");
    expect_scrubbed("postgres://db/x?password=a", "a cat", 256, "*** c***t"); /* blunt, never leaky */
    expect_scrubbed("postgres://u:*@db/x", "** *", 256, "****** ***");        /* no endless loop */
    expect_scrubbed("postgres://u:s3cret@db/x", "nothing here", 256, "nothing here");
    expect_scrubbed("/var/lib/aigw.db", "/var/lib/aigw.db: locked", 256, "/var/lib/aigw.db: locked");
    /* growing past the buffer: cut, never overflowed, never the password */
    expect_scrubbed("postgres://u:ab@db/x", "xxab", 6, "xx***");
    expect_scrubbed("postgres://u:ab@db/x", "xxxab", 6, "xxx");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_postgres),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
