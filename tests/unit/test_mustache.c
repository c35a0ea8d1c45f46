/* test_mustache.c — the Mustache renderer against every file of the official specification in
 * tests/conformance/mustache/ (copied from the spec with its LICENSE beside it; inheritance and
 * dynamic names included), and its own rules: the bounds, each an error naming the template and
 * the line; strict mode naming the missing variable; escaping off unless asked for. */
#include "../../src/prompts/mustache.c" /* first: cmocka defines a fail() macro */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#ifndef SPEC_DIR
#define SPEC_DIR "tests/conformance/mustache"
#endif

static bool partial_from_object(void *ctx, const char *name, size_t len, const char **text, size_t *out_len)
{
    json_t *v = json_object_getn(ctx, name, len);
    if (!json_is_string(v)) return false;
    *text = json_string_value(v);
    *out_len = json_string_length(v);
    return true;
}

static void test_specification(void **state)
{
    (void)state;
    DIR *dir = opendir(SPEC_DIR);
    assert_non_null(dir);
    struct dirent *e;
    int files = 0, tests = 0, failed = 0;
    while ((e = readdir(dir))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SPEC_DIR, e->d_name);
        json_error_t jerr;
        json_t *spec = json_load_file(path, 0, &jerr);
        assert_non_null(spec);
        files++;
        json_t *list = json_object_get(spec, "tests"), *t;
        size_t i;
        json_array_foreach(list, i, t)
        {
            json_t *tpl = json_object_get(t, "template");
            mustache_options opt;
            mustache_options_init(&opt);
            opt.escape_html = true; /* the spec's default */
            opt.partial = partial_from_object;
            opt.partial_ctx = json_object_get(t, "partials");
            buf out;
            buf_init(&out, 1 << 20);
            mustache_error err;
            mustache_status st = mustache_render(json_string_value(tpl), json_string_length(tpl),
                                                 json_object_get(t, "data"), &opt, &out, &err);
            const char *want = json_string_value(json_object_get(t, "expected"));
            tests++;
            if (st != MUSTACHE_OK || out.len != strlen(want) ||
                memcmp(out.data ? out.data : "", want, out.len)) {
                failed++;
                fprintf(stderr, "FAIL %s: %s\n  want %s\n  got  %.*s (%s)\n", e->d_name,
                        json_string_value(json_object_get(t, "name")), want, (int)out.len,
                        out.data ? out.data : "", st ? err.message : "ok");
            }
            buf_free(&out);
        }
        json_decref(spec);
    }
    closedir(dir);
    printf("mustache specification: %d tests in %d files, %d failed\n", tests, files, failed);
    assert_int_equal(files, 8);
    assert_int_equal(tests, 184); /* every test of the eight files */
    assert_int_equal(failed, 0);
}

static mustache_status render_str(const char *tpl, const char *data_json, mustache_options *opt, char *out_s,
                                  size_t out_cap, mustache_error *err)
{
    json_t *data = data_json ? json_loads(data_json, JSON_DECODE_ANY, NULL) : NULL;
    buf out;
    buf_init(&out, 1 << 22);
    mustache_status st = mustache_render(tpl, strlen(tpl), data, opt, &out, err);
    snprintf(out_s, out_cap, "%.*s", (int)out.len, out.data ? out.data : "");
    buf_free(&out);
    json_decref(data);
    return st;
}

static void test_escaping_off_by_default(void **state)
{
    (void)state;
    mustache_options opt;
    mustache_options_init(&opt);
    char out[256];
    mustache_error err;
    assert_int_equal(render_str("Q: {{q}}", "{\"q\":\"a < b & \\\"c\\\"\"}", &opt, out, sizeof out, &err), 0);
    assert_string_equal(out, "Q: a < b & \"c\"");
    opt.escape_html = true;
    assert_int_equal(render_str("Q: {{q}}", "{\"q\":\"a < b\"}", &opt, out, sizeof out, &err), 0);
    assert_string_equal(out, "Q: a &lt; b");
    /* null is nothing, escaped or not (fuzz_mustache found it offsetting a NULL pointer: UB) */
    assert_int_equal(render_str("Hell{{name}}!", "{\"name\":null}", &opt, out, sizeof out, &err), 0);
    assert_string_equal(out, "Hell!");
    opt.escape_html = false;
    assert_int_equal(render_str("Hell{{name}}!", "{\"name\":null}", &opt, out, sizeof out, &err), 0);
    assert_string_equal(out, "Hell!");
}

static void test_values_and_strict(void **state)
{
    (void)state;
    mustache_options opt;
    mustache_options_init(&opt);
    opt.strict = true;
    char out[256];
    mustache_error err;
    assert_int_equal(render_str("{{n}} {{r}} {{b}} {{o}} {{l.1}} {{#opt}}x{{/opt}}",
                                "{\"n\":3,\"r\":0.5,\"b\":true,\"o\":{\"k\":[1]},\"l\":[\"a\",\"b\"]}", &opt,
                                out, sizeof out, &err),
                     0);
    assert_string_equal(out, "3 0.5 true {\"k\":[1]} b ");
    assert_int_equal(
        render_str("Hello\n{{name}} and {{city}}", "{\"name\":\"x\"}", &opt, out, sizeof out, &err),
        MUSTACHE_MISSING);
    assert_string_equal(err.variable, "city");
    assert_string_equal(err.message, "template 'template' line 2: missing variable 'city'");
    assert_int_equal(render_str("{{>nope}}", "{}", &opt, out, sizeof out, &err), MUSTACHE_MISSING);
    assert_string_equal(err.variable, "partial nope");
}

static bool recursive_partial(void *ctx, const char *name, size_t len, const char **text, size_t *out_len)
{
    (void)ctx;
    (void)name;
    (void)len;
    *text = "x\n{{>self}}";
    *out_len = strlen(*text);
    return true;
}

static void test_bounds_name_template_and_line(void **state)
{
    (void)state;
    mustache_options opt;
    mustache_options_init(&opt);
    opt.name = "greeting";
    char out[256];
    mustache_error err;
    /* partial recursion: the partial's name and line */
    opt.partial = recursive_partial;
    assert_int_equal(render_str("a\n{{>self}}", "{}", &opt, out, sizeof out, &err), MUSTACHE_LIMIT);
    assert_string_equal(err.message, "template 'self' line 2: partials nested deeper than 32");
    /* output size */
    opt.partial = NULL;
    opt.max_output = 10;
    assert_int_equal(
        render_str("one\n{{#l}}{{.}}{{/l}}", "{\"l\":[\"abcdef\",\"ghijk\"]}", &opt, out, sizeof out, &err),
        MUSTACHE_LIMIT);
    assert_string_equal(err.message, "template 'greeting' line 2: output larger than 10 bytes");
    /* nesting depth of the context stack */
    mustache_options_init(&opt);
    opt.max_depth = 3;
    assert_int_equal(render_str("{{#a}}{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}{{/a}}", "{\"a\":{\"a\":1}}",
                                &opt, out, sizeof out, &err),
                     MUSTACHE_LIMIT);
    /* steps: nested loops that write nothing still end */
    mustache_options_init(&opt);
    opt.max_steps = 10000;
    assert_int_equal(render_str("{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}",
                                "{\"l\":["
                                "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}",
                                &opt, out, sizeof out, &err),
                     MUSTACHE_LIMIT);
    assert_non_null(strstr(err.message, "steps"));
    /* syntax */
    assert_int_equal(mustache_check("a\n{{#x}}\n{{/y}}", 15, "t", &err), MUSTACHE_SYNTAX);
    assert_string_equal(err.message, "template 't' line 3: closing tag 'y' does not match 'x' (line 2)");
    assert_int_equal(mustache_check("{{#x}}", 6, "t", &err), MUSTACHE_SYNTAX);
    assert_int_equal(mustache_check("{{x", 3, "t", &err), MUSTACHE_SYNTAX);
    assert_int_equal(mustache_check("{{=a=}}", 7, "t", &err), MUSTACHE_SYNTAX);
}

static void collect(void *ctx, const char *name, size_t len)
{
    buf *b = ctx;
    buf_append(b, name, len);
    buf_append_lit(b, ",");
}

static void test_variables_listed(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1024);
    const char *t = "{{a}} {{#s}}{{inner}}{{/s}} {{^n}}{{m.x}}{{/n}} {{.}}";
    assert_int_equal(mustache_variables(t, strlen(t), collect, &b), MUSTACHE_OK);
    assert_string_equal(b.data, "a,s,n,m,");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specification),     cmocka_unit_test(test_escaping_off_by_default),
        cmocka_unit_test(test_values_and_strict), cmocka_unit_test(test_bounds_name_template_and_line),
        cmocka_unit_test(test_variables_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
