/* test_tree.c — building route trees from their JSON form (tree.c): every mistake is refused
 * with the path of the bad field, Portkey's spellings (camelCase keys, "@name" providers,
 * provider slugs) are understood, inline credentials and custom hosts are only accepted for
 * the config's allowed_hosts, children inherit retry, timeout, fallback statuses and override
 * parameters from their parents, Portkey trees default to no retries and follow Portkey where
 * it differs (single with several targets, url.pathname, a retry replaced whole and needing
 * attempts), the store's virtual keys named by request configs (after the config's providers;
 * kept trees rebuilt when they change), and a loadbalance
 * node's smooth weighted round robin order is nginx's. The tree is built once and only read
 * on the request path, so what the builder resolves is what every request gets. */
#include "../../src/routing/tree.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "config_fixture.h"
#include "providers/prepare.h"
#include "providers/provider.h"
#include "routing/route_cache_internal.h" /* the cache's entries, checked below */

static char err[1024];

typedef struct fixture {
    aigw_config *cfg;
    arena arena;
    json_t *json[32]; /* the trees' JSON, kept alive as a request or the config does */
    size_t njson;
} fixture;

static const char *const base_yaml =
    "providers:\n"
    "  - {name: a, base_url: 'http://127.0.0.1:1/v1', models: [ma]}\n"
    "  - {name: b, base_url: 'http://127.0.0.1:2/v1', models: [mb]}\n"
    "  - {name: az1, type: azure, base_url: 'https://one.openai.azure.com',"
    " models: [d1]}\n"
    "  - {name: az2, type: azure, base_url: 'https://two.openai.azure.com',"
    " models: [d2]}\n"
    "routing:\n"
    "  retry: {attempts: 2}\n"
    "  allowed_hosts: ['HTTPS://Allowed.Example/v1/', 'http://127.0.0.1:2']\n";

static fixture *fixture_new(const char *yaml)
{
    fixture *f = calloc(1, sizeof *f);
    f->cfg = config_from_text(yaml);
    arena_init(&f->arena, 4096);
    return f;
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->njson; i++)
        json_decref(f->json[i]);
    arena_free(&f->arena);
    config_free(f->cfg);
    free(f);
}

/* Builds a tree from JSON text in arena a; NULL with the message in err. */
static route_tree *build_in(fixture *f, arena *a, const char *text, bool portkey, bool shared)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) fail_msg("bad JSON in the test: %s: %s", jerr.text, text);
    assert_true(f->njson < sizeof f->json / sizeof f->json[0]);
    f->json[f->njson++] = j;
    err[0] = '\0';
    return route_tree_build(a, f->cfg, f->cfg->health, j, "t", portkey, shared, true, err, sizeof err);
}

/* As a request's header brings it: in the request's arena. */
static route_tree *build(fixture *f, const char *text, bool portkey)
{
    return build_in(f, &f->arena, text, portkey, false);
}

/* As the config file's routes: are built: in the config's arena, living as long as it. */
static route_tree *build_stored(fixture *f, const char *text)
{
    route_tree *t = build_in(f, &f->cfg->arena, text, false, true);
    if (!t) fail_msg("refused: %s\n(tree: %s)", err, text);
    return t;
}

static route_tree *build_ok(fixture *f, const char *text, bool portkey)
{
    route_tree *t = build(f, text, portkey);
    if (!t) fail_msg("refused: %s\n(tree: %s)", err, text);
    return t;
}

/* The tree must be refused with an error starting with `prefix` and mentioning `needle`. */
static void expect_error(fixture *f, const char *text, const char *prefix, const char *needle)
{
    if (build(f, text, false)) fail_msg("accepted a bad tree: %s", text);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* A node's override parameters, as one JSON object, equal to expected. Each value must be
 * JSON text of its own (it is spliced into request bodies as it is). */
static void assert_overrides(const route_node *n, const char *expected)
{
    if (!n->noverrides) fail_msg("no override parameters where %s was expected", expected);
    json_t *a = json_object(), *e = json_loads(expected, 0, NULL);
    for (size_t i = 0; i < n->noverrides; i++) {
        json_t *v = json_loads(n->overrides[i].value, JSON_DECODE_ANY, NULL);
        if (!v) fail_msg("override %s is not JSON text: %s", n->overrides[i].key, n->overrides[i].value);
        json_object_set_new(a, n->overrides[i].key, v);
    }
    assert_non_null(e);
    if (!json_equal(a, e)) {
        char *text = json_dumps(a, JSON_COMPACT);
        fail_msg("overrides %s, expected %s", text, expected);
    }
    json_decref(a);
    json_decref(e);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_unknown_fields_and_refused_features_are_named(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    expect_error(f, "{\"provider\":\"a\",\"colour\":1}", "colour: ", "unknown field");
    expect_error(f, "{\"strategy\":{\"mode\":\"fallback\",\"on\":1},\"targets\":[{\"provider\":\"a\"}]}",
                 "strategy.on: ", "unknown field");
    expect_error(f, "{\"provider\":\"a\",\"retry\":{\"tries\":1}}", "retry.tries: ", "unknown field");
    expect_error(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"fuzzy\"}}", "cache.mode: ", "simple");
    expect_error(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"ttl\":1}}",
                 "cache.ttl: ", "unknown field");
    expect_error(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"max_age\":0}}",
                 "cache.max_age: ", "from 1");
    expect_error(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"max_age\":7776001}}",
                 "cache.max_age: ", "90 days");
    expect_error(f, "{\"provider\":\"a\",\"cache\":[]}", "cache: ", "must be an object");
    expect_error(f, "{\"provider\":\"a\",\"input_guardrails\":[]}", "input_guardrails: ", "not supported");
    expect_error(f, "{\"strategy\":{\"mode\":\"roundrobin\"},\"targets\":[{\"provider\":\"a\"}]}",
                 "strategy.mode: ", "unknown mode (single");
    expect_error(f, "{\"strategy\":{},\"targets\":[{\"provider\":\"a\"}]}", "strategy.mode: ", "is required");
    expect_error(f, "{\"provider\":\"a\",\"retry\":{\"attempts\":11}}", "retry.attempts: ", "0 to 10");
    expect_error(f, "{\"provider\":\"a\",\"request_timeout\":\"5 parsecs\"}",
                 "request_timeout: ", "duration");
    expect_error(
        f, "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}",
        "targets: ", "exactly one target");
    expect_error(f, "{\"strategy\":{\"mode\":\"fallback\"}}", "", "needs targets");
    expect_error(f, "{\"provider\":\"a\",\"targets\":[{\"provider\":\"b\"}]}", "", "not both");
    fixture_free(f);
}

/* The index of a target is part of the path, whatever its exact spelling
 * (test_errors_name_the_field_path_exactly checks the spelling). */

/* A `cache` block at any level: the first met (root first, then depth first) is the tree's. */
static void test_cache_blocks(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const route_tree *t = build_ok(f, "{\"provider\":\"a\"}", true);
    assert_int_equal(t->cache.mode, ROUTE_CACHE_UNSET);
    t = build_ok(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"max_age\":60}}", true);
    assert_int_equal(t->cache.mode, ROUTE_CACHE_SIMPLE);
    assert_int_equal(t->cache.max_age_s, 60);
    t = build_ok(f,
                 "{\"cache\":{\"mode\":\"semantic\"},\"strategy\":{\"mode\":\"fallback\"},"
                 "\"targets\":[{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"max_age\":5}}]}",
                 true);
    assert_int_equal(t->cache.mode, ROUTE_CACHE_SEMANTIC);
    assert_int_equal(t->cache.max_age_s, 0);
    t = build_ok(f,
                 "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                 "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"maxAge\":5}}]}",
                 true);
    assert_int_equal(t->cache.mode, ROUTE_CACHE_SIMPLE);
    assert_int_equal(t->cache.max_age_s, 5);
    t = build_ok(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"off\"}}", false);
    assert_int_equal(t->cache.mode, ROUTE_CACHE_OFF);
    t = build_ok(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"simple\",\"max_age\":\"2m\"}}", false);
    assert_int_equal(t->cache.max_age_s, 120);
    if (build(f, "{\"provider\":\"a\",\"cache\":{\"mode\":\"off\"}}", true))
        fail_msg("Portkey has no mode off");
    fixture_free(f);
}

static void test_errors_name_the_target_index_and_field(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                      "{\"provider\":\"a\",\"retry\":{\"attempts\":\"x\"}}]}",
                      false));
    assert_non_null(strstr(err, "[1]"));
    assert_non_null(strstr(err, "retry.attempts: must be a number"));
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                      "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"b\"},"
                      "{\"provider\":\"b\",\"on_status_codes\":[99]}]}]}",
                      false));
    assert_non_null(strstr(err, "on_status_codes"));
    assert_non_null(strstr(err, "HTTP status code"));
    fixture_free(f);
}

/* Guards a fix (5f20312): at f1ace08 child_path (tree.c:51) put a '.' before a list index,
 * so this path came out as "targets.[1].retry.attempts" (and "conditions.[0].then"). */
static void test_errors_name_the_field_path_exactly(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    expect_error(f,
                 "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                 "{\"provider\":\"a\",\"retry\":{\"attempts\":\"x\"}}]}",
                 "targets[1].retry.attempts: ", "must be a number");
    expect_error(f,
                 "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.x\":1},"
                 "\"then\":\"nobody\"}]},\"targets\":[{\"name\":\"t1\",\"provider\":\"a\"}]}",
                 "conditions[0].then: ", "names no target");
    fixture_free(f);
}

static void test_unknown_provider_names_the_known_ones(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    expect_error(f, "{\"provider\":\"nope\"}", "provider: ", "names no provider");
    assert_non_null(strstr(err, "known: a, b, az1, az2"));
    expect_error(f, "{\"virtual_key\":\"openai\"}", "virtual_key: ", "names no provider");
    fixture_free(f);
}

static void test_conditions_are_checked_when_built(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    /* `then` naming no target */
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.x\":1},"
                      "\"then\":\"nobody\"}]},\"targets\":[{\"name\":\"t1\",\"provider\":\"a\"}]}",
                      false));
    assert_non_null(strstr(err, "then: names no target"));
    /* a default naming no target */
    expect_error(f,
                 "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.x\":1},"
                 "\"then\":\"t1\"}],\"default\":\"t9\"},\"targets\":[{\"name\":\"t1\",\"provider\":\"a\"}]}",
                 "default: ", "names no target");
    /* an invalid regular expression */
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.x\":"
                      "{\"$regex\":\"(unclosed\"}},\"then\":\"t1\"}]},\"targets\":[{\"name\":\"t1\","
                      "\"provider\":\"a\"}]}",
                      false));
    assert_non_null(strstr(err, "$regex: is not a valid regular expression"));
    /* an unknown operator, and a key that is neither metadata.* nor params.* */
    assert_null(
        build(f,
              "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.x\":"
              "{\"$like\":\"a\"}},\"then\":\"t1\"}]},\"targets\":[{\"name\":\"t1\",\"provider\":\"a\"}]}",
              false));
    assert_non_null(strstr(err, "$like: unknown operator"));
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"user\":1},"
                      "\"then\":\"t1\"}]},\"targets\":[{\"name\":\"t1\",\"provider\":\"a\"}]}",
                      false));
    assert_non_null(strstr(err, "metadata.<key>, params.<key> or request.<shape>"));
    /* a valid one: params.* makes the tree ask for the parsed body */
    route_tree *t =
        build_ok(f,
                 "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"$or\":["
                 "{\"metadata.x\":{\"$regex\":\"^a+$\"}},{\"params.n\":{\"$gt\":1}}]},"
                 "\"then\":\"t2\"}],\"default\":\"t1\"},\"targets\":[{\"name\":\"t1\",\"provider\":"
                 "\"a\"},{\"name\":\"t2\",\"provider\":\"b\"}]}",
                 false);
    assert_true(t->needs_params);
    assert_int_equal(t->root.nconditions, 1);
    assert_int_equal(t->root.conditions[0].child, 1);
    assert_int_equal(t->root.default_child, 0);
    fixture_free(f);
}

/* ---- nothing of the client's config text in messages (issue 8, item 4) ------------------------ */

/* A config header that is not JSON, or names what does not exist, is refused with the position
 * and a reason: never an excerpt of the text, which may carry an inline api_key. */
static void test_errors_never_quote_the_clients_values(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_cache *c = route_cache_new();
    route_cache_entry *e;
    static const char *const broken[] = {
        "{\"provider\":\"b\",\"api_key\" \"sk-SECRET-0123456789\"}", /* ':' expected near '"sk-…"' */
        "{\"provider\":\"b\",\"api_key\":sk-SECRET-0123456789}",     /* invalid token near 'sk-…' */
        "{\"api_key\":\"sk-SECRET-0123456789\"",                     /* ends too early */
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        err[0] = '\0';
        assert_null(
            route_cache_get(c, f->cfg, broken[i], strlen(broken[i]), "hdr", false, &e, err, sizeof err));
        assert_non_null(strstr(err, "not valid JSON at character "));
        if (strstr(err, "SECRET") || strstr(err, "sk-")) fail_msg("the message quotes the config: %s", err);
    }
    /* values in the wrong place are not echoed either */
    expect_error(f, "{\"provider\":\"sk-SECRET-0123456789\"}", "provider: ", "names no provider");
    assert_null(strstr(err, "SECRET"));
    expect_error(f, "{\"strategy\":{\"mode\":\"sk-SECRET-0123456789\"},\"targets\":[{\"provider\":\"a\"}]}",
                 "strategy.mode: ", "unknown mode");
    assert_null(strstr(err, "SECRET"));
    expect_error(f,
                 "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":{\"metadata.a\":1},"
                 "\"then\":\"sk-SECRET-0123456789\"}],\"default\":\"sk-SECRET-0123456789\"},"
                 "\"targets\":[{\"name\":\"t\",\"provider\":\"a\"}]}",
                 "conditions[0].then: ", "names no target");
    assert_null(strstr(err, "SECRET"));
    /* a field name is shown, bounded, with odd bytes masked */
    expect_error(f, "{\"provider\":\"a\",\"x\\ny\":1}", "x?y: ", "unknown field");
    route_cache_free(c);
    fixture_free(f);
}

/* ---- allowed hosts ----------------------------------------------------------------------- */

static void test_custom_host_and_inline_key_only_for_allowed_hosts(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    assert_string_equal(f->cfg->routing.allowed_hosts[0], "https://allowed.example:443/v1"); /* normalised */
    assert_string_equal(f->cfg->routing.allowed_hosts[1], "http://127.0.0.1:2");
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"https://evil.example/v1\"}",
                 "custom_host: ", "allowed_hosts");
    expect_error(f, "{\"provider\":\"a\",\"api_key\":\"sk-x\"}", "api_key: ", "allowed_hosts");
    /* the port is part of the prefix: another port, or the default one of another scheme, is not */
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"http://127.0.0.1:3/v1\"}",
                 "custom_host: ", "allowed_hosts");
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"https://allowed.example:8443/v1\"}",
                 "custom_host: ", "allowed_hosts");
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"http://allowed.example/v1\"}",
                 "custom_host: ", "allowed_hosts");
    /* so is the path: outside it, or a longer name beside it */
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"https://allowed.example/admin\"}",
                 "custom_host: ", "allowed_hosts");
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"https://allowed.example/v10\"}",
                 "custom_host: ", "allowed_hosts");
    /* a look-alike host is not the allowed one */
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"https://allowed.example.evil/v1\"}",
                 "custom_host: ", "allowed_hosts");
    /* what would leave the prefix once curl or the host reads the URL is refused outright,
     * naming the field: a query or fragment (the rest of the URL would be ignored), spaces,
     * dot segments written or escaped, escaped slashes, credentials, other schemes */
    static const char *const refused[][2] = {
        {"https://allowed.example/v1?", "query"},
        {"https://allowed.example/v1#", "query"},
        {"https://allowed.example?/v1", "query"},
        {"https://allowed.example/v1 x", "space"},
        {"https://allowed.example /v1", "space"},
        {"https://allowed.example/v1/../admin", "dot segments"},
        {"https://allowed.example/v1/..", "dot segments"},
        {"https://allowed.example/v1/./x", "dot segments"},
        {"https://allowed.example/v1/%2e%2E/admin", "escaped"},
        {"https://allowed.example/v1/%2fadmin", "escaped"},
        {"https://allowed.example/v1/%5c", "escaped"},
        {"https://allowed.example/v1/%zz", "escape"},
        {"https://allowed.example/v1\\\\x", "query"},
        {"https://u:p@allowed.example/v1", "credentials"},
        {"https://allowed.example:0/v1", "port"},
        {"https://allowed.example:65536/v1", "port"},
        {"https://allowed.example:/v1", "port"},
        {"ftp://allowed.example/v1", "http://"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"provider\":\"a\",\"custom_host\":\"%s\"}", refused[i][0]);
        expect_error(f, text, "custom_host: ", refused[i][1]);
    }

    /* allowed: normalised (case, default port, trailing '/'), and that is what is sent */
    route_tree *t = build_ok(
        f, "{\"provider\":\"a\",\"model\":\"m\",\"custom_host\":\"HTTPS://Allowed.Example:443/v1/chat/\"}",
        false);
    assert_string_equal(t->root.provider->base_url, "https://allowed.example:443/v1/chat");
    assert_string_equal(t->root.provider->name, t->root.provider->base_url); /* named by its URL */
    assert_null(t->root.health); /* a client's host: no shared health (a health per request) */
    assert_ptr_not_equal(t->root.provider, &f->cfg->providers[0]);
    build_ok(f, "{\"provider\":\"a\",\"custom_host\":\"https://allowed.example/v1\"}", false);
    build_ok(f, "{\"provider\":\"a\",\"custom_host\":\"http://127.0.0.1:2/anything/%20x\"}", false);
    /* b's URL is under an allowed prefix: its key may be given inline */
    t = build_ok(f, "{\"provider\":\"b\",\"api_key\":\"sk-inline\"}", false);
    assert_string_equal(t->root.provider->api_key, "sk-inline");
    assert_string_equal(t->root.provider->name, "b");
    assert_string_equal(t->root.provider->base_url, "http://127.0.0.1:2/v1");
    assert_null(f->cfg->providers[1].api_key); /* the config's provider is untouched */
    fixture_free(f);
}

/* The loader's message for a config it refuses; NULL when it loads. */
static const char *config_refusal(const char *text, char *msg, size_t len)
{
    char dir[] = "/tmp/aigw-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/aigw.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    aigw_config *cfg = gateway_config_load(path, msg, len);
    unlink(path);
    rmdir(dir);
    if (!cfg) return msg;
    config_free(cfg);
    return NULL;
}

/* allowed_hosts entries are URL prefixes: a bare host (which used to allow every port and
 * path) is refused at load with the way to write it; IPv6 literals are bracketed. */
static void test_allowed_hosts_entries_are_url_prefixes(void **state)
{
    (void)state;
    char msg[512];
    assert_non_null(config_refusal("providers:\n"
                                   "  - {name: a, base_url: 'http://127.0.0.1:1/v1', models: [ma]}\n"
                                   "routing:\n"
                                   "  allowed_hosts: ['127.0.0.1']\n",
                                   msg, sizeof msg));
    assert_non_null(strstr(msg, "URL prefixes"));
    fixture *f = fixture_new("providers:\n"
                             "  - {name: a, base_url: 'http://127.0.0.1:1/v1', models: [ma]}\n"
                             "routing:\n"
                             "  allowed_hosts: ['http://[::1]:8080']\n");
    build_ok(f, "{\"provider\":\"a\",\"custom_host\":\"http://[::1]:8080/v1\"}", false);
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"http://[::1]/v1\"}",
                 "custom_host: ", "allowed_hosts");
    expect_error(f, "{\"provider\":\"a\",\"custom_host\":\"http://[::1]:8081/v1\"}",
                 "custom_host: ", "allowed_hosts");
    fixture_free(f);
}

/* ---- Portkey's spellings ----------------------------------------------------------------- */

static void test_camel_case_keys_are_accepted(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_tree *t =
        build_ok(f,
                 "{\"strategy\":{\"mode\":\"fallback\",\"onStatusCodes\":[429]},"
                 "\"requestTimeout\":1500,"
                 "\"retry\":{\"attempts\":1,\"onStatusCodes\":[503],\"useRetryAfterHeader\":false},"
                 "\"targets\":[{\"provider\":\"a\",\"overrideParams\":{\"temperature\":0.5}},"
                 "{\"virtualKey\":\"b\"}]}",
                 true);
    const route_node *r = &t->root;
    assert_int_equal(r->mode, ROUTE_FALLBACK);
    assert_false(r->fallback_on_any);
    assert_true(status_set_has(&r->fallback_on, 429));
    assert_false(status_set_has(&r->fallback_on, 500));
    assert_int_equal(r->request_timeout_ms, 1500);
    assert_int_equal(r->retry.attempts, 1);
    assert_true(status_set_has(&r->retry.on, 503));
    assert_false(status_set_has(&r->retry.on, 500));
    assert_false(r->retry.use_retry_after);
    assert_overrides(&r->children[0], "{\"temperature\":0.5}");
    assert_string_equal(r->children[1].provider->name, "b");
    fixture_free(f);
}

static void test_portkey_provider_forms_resolve(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    /* "@name": the provider of that name */
    route_tree *t = build_ok(f, "{\"provider\":\"@b\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[1]);
    /* a slug whose preset name differs: the first provider of that type */
    t = build_ok(f, "{\"provider\":\"azure-openai\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[2]);
    assert_string_equal(t->root.provider->name, "az1");
    /* a slug that is a preset name */
    t = build_ok(f, "{\"provider\":\"openai\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[0]);
    /* a type no provider has */
    assert_null(build(f, "{\"provider\":\"anthropic\"}", true));
    assert_non_null(strstr(err, "names no provider"));
    /* names win over types */
    t = build_ok(f, "{\"provider\":\"az2\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[3]);
    fixture_free(f);
}

/* ---- virtual keys ------------------------------------------------------------------------- */

/* The store's virtual keys as routing_providers sees them, without a store. */
static uint64_t fake_vkeys_version = 1;

static bool fake_virtual_key(arena *a, const char *name, const char **type, const char **base_url)
{
    static const char *const table[][3] = {
        {"vk1", "anthropic", "http://127.0.0.1:7"},
        {"b", "openai", NULL}, /* the name of a provider of the config too */
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i][0])) {
            *type = table[i][1];
            *base_url = table[i][2] ? arena_strndup(a, table[i][2], strlen(table[i][2])) : NULL;
            return true;
        }
    return false;
}

static uint64_t fake_virtual_keys_version(void)
{
    return fake_vkeys_version;
}

static const routing_providers fake_providers = {
    .preset_find = provider_preset_find,
    .derive = providers_derive,
    .virtual_key = fake_virtual_key,
    .virtual_keys_version = fake_virtual_keys_version,
};

static route_tree *build_vkeys(fixture *f, routing_state *st, const char *text, bool client)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    f->json[f->njson++] = j;
    err[0] = '\0';
    return route_tree_build(&f->arena, f->cfg, st, j, "t", true, false, client, err, sizeof err);
}

static void test_virtual_keys_after_the_configs_providers(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    routing_state *st = routing_state_new(&f->cfg->routing, &fake_providers);
    /* Portkey's virtual_key, and "@name": the virtual key's type and base URL, its name */
    static const char *const forms[] = {"{\"virtual_key\":\"vk1\"}", "{\"provider\":\"@vk1\"}"};
    for (size_t i = 0; i < 2; i++) {
        route_tree *t = build_vkeys(f, st, forms[i], true);
        if (!t) fail_msg("refused %s: %s", forms[i], err);
        const provider_config *p = t->root.provider;
        assert_string_equal(p->virtual_key, "vk1");
        assert_string_equal(p->name, "vk1");
        assert_string_equal(p->preset->type, "anthropic");
        assert_string_equal(p->base_url, "http://127.0.0.1:7");
        assert_null(p->api_key);
        assert_true(t->virtual_keys);
        assert_int_equal(t->virtual_keys_version, 1);
    }
    /* a provider of the config with the name comes first, in both spellings */
    route_tree *t = build_vkeys(f, st, "{\"virtual_key\":\"b\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[1]);
    assert_false(t->virtual_keys);
    t = build_vkeys(f, st, "{\"provider\":\"@b\"}", true);
    assert_ptr_equal(t->root.provider, &f->cfg->providers[1]);
    /* a bare provider name is not looked up among virtual keys ("@" or virtual_key says so) */
    assert_null(build_vkeys(f, st, "{\"provider\":\"vk1\"}", true));
    /* a virtual key carries its own host and key */
    assert_null(build_vkeys(f, st, "{\"virtual_key\":\"vk1\",\"api_key\":\"sk-x\"}", true));
    assert_non_null(strstr(err, "api_key: not with a virtual key"));
    assert_null(build_vkeys(f, st, "{\"virtual_key\":\"vk1\",\"custom_host\":\"http://127.0.0.1:2\"}", true));
    /* unknown: both places named, the value not echoed */
    assert_null(build_vkeys(f, st, "{\"virtual_key\":\"nope-SECRET\"}", true));
    assert_non_null(strstr(err, "nor one of its virtual keys"));
    assert_null(strstr(err, "SECRET"));
    /* the config file's own routes do not reach into the store */
    assert_null(build_vkeys(f, st, "{\"virtual_key\":\"vk1\"}", false));
    routing_state_free(st);
    fixture_free(f);
}

static void test_kept_trees_with_virtual_keys_are_rebuilt_when_they_change(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    routing_state *real = f->cfg->health;
    f->cfg->health = routing_state_new(&f->cfg->routing, &fake_providers);
    route_cache *c = route_cache_new();
    route_cache_entry *e1, *e2, *e3, *plain1, *plain2;
    static const char vk[] = "{\"virtual_key\":\"vk1\"}", plain[] = "{\"provider\":\"a\"}";
    fake_vkeys_version = 1;
    const route_tree *t1 = route_cache_get(c, f->cfg, vk, strlen(vk), "h", true, &e1, err, sizeof err);
    const route_tree *p1 =
        route_cache_get(c, f->cfg, plain, strlen(plain), "h", true, &plain1, err, sizeof err);
    assert_non_null(t1);
    assert_non_null(p1);
    /* unchanged: the same tree */
    assert_ptr_equal(route_cache_get(c, f->cfg, vk, strlen(vk), "h", true, &e2, err, sizeof err), t1);
    route_cache_release(e2);
    /* the store changed: built again; the tree a request still holds stays valid until released */
    fake_vkeys_version = 2;
    const route_tree *t3 = route_cache_get(c, f->cfg, vk, strlen(vk), "h", true, &e3, err, sizeof err);
    assert_non_null(t3);
    assert_ptr_not_equal(e3, e1);
    assert_true(e1->detached);
    assert_string_equal(t1->root.provider->virtual_key, "vk1");
    route_cache_release(e1);
    route_cache_release(e3);
    /* a tree without virtual keys is kept across the change */
    assert_ptr_equal(route_cache_get(c, f->cfg, plain, strlen(plain), "h", true, &plain2, err, sizeof err),
                     p1);
    route_cache_release(plain1);
    route_cache_release(plain2);
    route_cache_free(c);
    routing_state_free(f->cfg->health);
    f->cfg->health = real;
    fixture_free(f);
}

/* ---- inheritance ------------------------------------------------------------------------- */

static void test_children_inherit_and_override(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_tree *t =
        build_ok(f,
                 "{\"strategy\":{\"mode\":\"fallback\"},"
                 "\"retry\":{\"attempts\":3,\"on_status_codes\":[503],\"base_delay\":\"50ms\"},"
                 "\"request_timeout\":1000,"
                 "\"on_status_codes\":[500,502],"
                 "\"override_params\":{\"temperature\":0.1,\"max_tokens\":10},"
                 "\"targets\":["
                 "  {\"provider\":\"a\"},"
                 "  {\"provider\":\"b\",\"retry\":{\"attempts\":1},\"request_timeout\":\"2s\","
                 "   \"on_status_codes\":[429],"
                 "   \"override_params\":{\"max_tokens\":20,\"model\":\"mb-large\",\"top_p\":0.9}},"
                 "  {\"strategy\":{\"mode\":\"single\"},\"override_params\":{\"model\":\"mid\",\"seed\":1},"
                 "   \"targets\":[{\"provider\":\"a\",\"override_params\":{\"temperature\":0.9}}]}"
                 "]}",
                 false);
    const route_node *r = &t->root, *c0 = &r->children[0], *c1 = &r->children[1],
                     *g = &r->children[2].children[0];
    /* the first child takes everything from its parent */
    assert_int_equal(c0->retry.attempts, 3);
    assert_true(status_set_has(&c0->retry.on, 503));
    assert_int_equal(c0->retry.base_delay_ms, 50);
    assert_int_equal(c0->request_timeout_ms, 1000);
    assert_false(c0->fallback_on_any);
    assert_true(status_set_has(&c0->fallback_on, 500) && status_set_has(&c0->fallback_on, 502));
    assert_overrides(c0, "{\"temperature\":0.1,\"max_tokens\":10}");
    assert_null(c0->model);
    /* the second overrides what it sets, keeps the rest (retry merges field by field) */
    assert_int_equal(c1->retry.attempts, 1);
    assert_true(status_set_has(&c1->retry.on, 503));
    assert_int_equal(c1->retry.base_delay_ms, 50);
    assert_int_equal(c1->request_timeout_ms, 2000);
    assert_true(status_set_has(&c1->fallback_on, 429));
    assert_false(status_set_has(&c1->fallback_on, 500));
    assert_overrides(c1, "{\"temperature\":0.1,\"max_tokens\":20,\"top_p\":0.9}");
    assert_string_equal(c1->model, "mb-large"); /* `model` is the leaf's model, not a parameter */
    assert_non_null(c1->health);                /* known model: its health is found at build time */
    assert_ptr_equal(c1->health, routing_health(f->cfg->health, "b", "mb-large"));
    /* a grandchild inherits through its parent, model included */
    assert_string_equal(g->model, "mid");
    assert_overrides(g, "{\"temperature\":0.9,\"max_tokens\":10,\"seed\":1}");
    assert_int_equal(g->retry.attempts, 3);
    fixture_free(f);
}

static void test_portkey_trees_retry_only_when_asked(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml); /* routing.retry.attempts: 2 */
    assert_int_equal(f->cfg->routing.retry.attempts, 2);
    route_tree *t = build_ok(f, "{\"provider\":\"a\"}", true);
    assert_int_equal(t->root.retry.attempts, 0);
    assert_false(t->root.retry.use_retry_after);
    assert_true(t->root.fallback_on_any);
    assert_true(t->portkey);
    t = build_ok(f, "{\"provider\":\"a\"}", false);
    assert_int_equal(t->root.retry.attempts, 2);
    assert_true(t->root.retry.use_retry_after);
    assert_true(t->root.fallback_on_any);
    t = build_ok(f, "{\"provider\":\"a\",\"retry\":{\"attempts\":4}}", true);
    assert_int_equal(t->root.retry.attempts, 4);
    /* the children of a Portkey tree start from 0 as well */
    t = build_ok(f, "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"}]}", true);
    assert_int_equal(t->root.children[0].retry.attempts, 0);
    fixture_free(f);
}

/* Where Portkey's documented behaviour differs from aigw's, a Portkey config gets Portkey's and
 * aigw's own config keeps aigw's (docs/routing.md, "Where aigw differs from Portkey"). */
static void test_portkey_configs_get_portkeys_rules(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml); /* routing.retry.attempts: 2 */
    /* a single strategy with several targets: Portkey uses the first; aigw refuses */
    const char *single =
        "{\"strategy\":{\"mode\":\"single\"},\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}";
    route_tree *t = build_ok(f, single, true);
    assert_int_equal(t->root.nchildren, 2);
    expect_error(f, single, "targets: ", "exactly one target");

    /* retry without attempts: Portkey refuses it, naming the field; aigw takes its default */
    const char *no_attempts = "{\"provider\":\"a\",\"retry\":{\"on_status_codes\":[429]}}";
    assert_null(build(f, no_attempts, true));
    if (strncmp(err, "retry.attempts: is required", 27)) fail_msg("error '%s'", err);
    assert_null(build(f,
                      "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                      "{\"provider\":\"b\",\"retry\":{}}]}",
                      true));
    if (strncmp(err, "targets[1].retry.attempts: is required", 38)) fail_msg("error '%s'", err);
    t = build_ok(f, no_attempts, false);
    assert_int_equal(t->root.retry.attempts, 2);

    /* conditions on url.pathname: Portkey's, refused in aigw's own configs */
    const char *by_path =
        "{\"strategy\":{\"mode\":\"conditional\",\"conditions\":["
        "{\"query\":{\"url.pathname\":{\"$eq\":\"/v1/embeddings\"}},\"then\":\"e\"}],"
        "\"default\":\"c\"},"
        "\"targets\":[{\"name\":\"e\",\"provider\":\"a\"},{\"name\":\"c\",\"provider\":\"b\"}]}";
    build_ok(f, by_path, true);
    expect_error(f, by_path,
                 "conditions[0].query.url.pathname: ", "metadata.<key>, params.<key> or request.<shape>");
    fixture_free(f);
}

/* A target's own retry: Portkey replaces the inherited one whole (unset fields take Portkey's
 * defaults: no retry-after, aigw's default statuses and delays); aigw merges field by field. */
static void test_portkey_retry_replaces_the_inherited_one_whole(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    const char *text = "{\"strategy\":{\"mode\":\"fallback\"},"
                       "\"retry\":{\"attempts\":3,\"on_status_codes\":[409],\"use_retry_after_header\":true,"
                       "\"base_delay\":\"50ms\"},"
                       "\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\",\"retry\":{\"attempts\":1}}]}";
    route_tree *t = build_ok(f, text, true);
    const route_node *c0 = &t->root.children[0], *c1 = &t->root.children[1];
    assert_int_equal(c0->retry.attempts, 3); /* a target without retry inherits its parent's */
    assert_true(status_set_has(&c0->retry.on, 409));
    assert_false(status_set_has(&c0->retry.on, 429));
    assert_true(c0->retry.use_retry_after);
    assert_int_equal(c0->retry.base_delay_ms, 50);
    assert_int_equal(c1->retry.attempts, 1);
    assert_false(status_set_has(&c1->retry.on, 409)); /* the default list, not the parent's */
    assert_true(status_set_has(&c1->retry.on, 429) && status_set_has(&c1->retry.on, 500));
    assert_false(c1->retry.use_retry_after);
    assert_int_equal(c1->retry.base_delay_ms, f->cfg->routing.retry.base_delay_ms);
    /* the same tree as aigw's own config: the child overrides attempts and keeps the rest */
    t = build_ok(f, text, false);
    c1 = &t->root.children[1];
    assert_int_equal(c1->retry.attempts, 1);
    assert_true(status_set_has(&c1->retry.on, 409));
    assert_false(status_set_has(&c1->retry.on, 429));
    assert_true(c1->retry.use_retry_after);
    assert_int_equal(c1->retry.base_delay_ms, 50);
    fixture_free(f);
}

/* ---- smooth weighted round robin ---------------------------------------------------------- */

static void expect_sequence(const route_node *n, const char *expected)
{
    char got[256];
    size_t i;
    for (i = 0; i < n->sequence_len && i + 1 < sizeof got; i++)
        got[i] = (char)('a' + n->sequence[i]);
    got[i] = '\0';
    if (strcmp(got, expected)) fail_msg("sequence %s, expected %s", got, expected);
}

static void test_weighted_sequence_is_nginx_smooth_round_robin(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_tree *t = build_stored(f, "{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                                    "{\"provider\":\"a\",\"weight\":5},{\"provider\":\"b\",\"weight\":1},"
                                    "{\"provider\":\"az1\",\"weight\":1}]}");
    expect_sequence(&t->root, "aabacaa"); /* nginx's own example for 5, 1, 1 */
    assert_non_null(t->root.cursor);
    assert_int_equal(*t->root.cursor, 0);

    t = build_stored(f, "{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                        "{\"provider\":\"a\",\"weight\":0.7},{\"provider\":\"b\",\"weight\":0.3}]}");
    expect_sequence(&t->root, "abaaabaaba"); /* 7:3, never two b's together */
    assert_int_equal(t->root.children[0].weight, 700);

    /* a zero weight is never chosen; equal weights alternate */
    t = build_stored(f, "{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                        "{\"provider\":\"a\",\"weight\":0},{\"provider\":\"b\",\"weight\":2},"
                        "{\"provider\":\"az1\",\"weight\":2}]}");
    expect_sequence(&t->root, "bc");

    /* weights that share no divisor: the table is scaled down, proportions kept roughly */
    t = build_stored(f, "{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                        "{\"provider\":\"a\",\"weight\":5.001},{\"provider\":\"b\",\"weight\":1}]}");
    assert_true(t->root.sequence_len <= 4096);
    size_t na = 0;
    for (size_t i = 0; i < t->root.sequence_len; i++)
        na += t->root.sequence[i] == 0;
    double share = (double)na / (double)t->root.sequence_len;
    assert_true(share > 0.82 && share < 0.845);
    fixture_free(f);
}

static void test_weighted_sequence_proportions_are_exact(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_tree *t =
        build_stored(f, "{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                        "{\"provider\":\"a\",\"weight\":13},{\"provider\":\"b\",\"weight\":4},"
                        "{\"provider\":\"az1\",\"weight\":2},{\"provider\":\"az2\",\"weight\":1}]}");
    assert_int_equal(t->root.sequence_len, 20);
    size_t count[4] = {0};
    for (size_t i = 0; i < t->root.sequence_len; i++)
        count[t->root.sequence[i]]++;
    assert_int_equal(count[0], 13);
    assert_int_equal(count[1], 4);
    assert_int_equal(count[2], 2);
    assert_int_equal(count[3], 1);
    /* smooth: the heavy child never runs more than ceil(13/7)+1 times in a row */
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < t->root.sequence_len; i++) {
        run = t->root.sequence[i] == 0 ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    assert_true(longest <= 3);
    fixture_free(f);
}

/* Header configs are built once per worker: the same bytes give the same tree; invalid ones
 * are refused every time and never kept; a held entry is never evicted; the oldest free one
 * makes room; a config over the size bound is left to the caller. */
static void test_header_configs_are_built_once_and_kept_boundedly(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    route_cache *c = route_cache_new();
    char e[256] = "";
    route_cache_entry *held, *again;
    const char *text =
        "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},{\"provider\":\"b\"}]}";
    const route_tree *t1 = route_cache_get(c, f->cfg, text, strlen(text), "hdr", false, &held, e, sizeof e);
    assert_non_null(t1);
    assert_non_null(held);
    const route_tree *t2 = route_cache_get(c, f->cfg, text, strlen(text), "hdr", false, &again, e, sizeof e);
    assert_ptr_equal(t1, t2); /* found by its bytes, not built again */
    route_cache_release(again);
    /* the same bytes under Portkey's schema are another tree (other defaults) */
    route_cache_entry *pk;
    assert_ptr_not_equal(route_cache_get(c, f->cfg, text, strlen(text), "hdr", true, &pk, e, sizeof e), t1);
    route_cache_release(pk);

    route_cache_entry *bad;
    assert_null(route_cache_get(c, f->cfg, "{\"provider\":\"zzz\"}", 18, "hdr", false, &bad, e, sizeof e));
    assert_null(bad);
    assert_non_null(strstr(e, "provider: names no provider"));
    e[0] = '\0';
    assert_null(route_cache_get(c, f->cfg, "{nope", 5, "hdr", false, &bad, e, sizeof e));
    assert_non_null(strstr(e, "not valid JSON"));

    /* 70 other configs, each released: the held one survives, the cache keeps at most 64 */
    char other[128];
    for (int i = 0; i < 70; i++) {
        int n = snprintf(other, sizeof other, "{\"provider\":\"a\",\"model\":\"m%d\"}", i);
        route_cache_entry *x;
        e[0] = '\0';
        assert_non_null(route_cache_get(c, f->cfg, other, (size_t)n, "hdr", false, &x, e, sizeof e));
        route_cache_release(x);
    }
    assert_ptr_equal(route_cache_get(c, f->cfg, text, strlen(text), "hdr", false, &again, e, sizeof e), t1);
    route_cache_release(again);
    size_t kept = 0;
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        kept += c->entries[i] != NULL;
    assert_int_equal(kept, CACHE_ENTRIES);

    /* over the size bound: not kept, no error — the caller builds it for the request */
    size_t big_len = CACHE_TEXT_MAX + 100;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    memcpy(big, "{\"provider\":\"a\"}", 16);
    e[0] = '\0';
    assert_null(route_cache_get(c, f->cfg, big, big_len, "hdr", false, &bad, e, sizeof e));
    assert_null(bad);
    assert_string_equal(e, "");
    free(big);

    route_cache_release(held);
    route_cache_free(c);
    fixture_free(f);
}

/* A reload: trees built against the old config are never handed out again; one a request
 * still holds lives until it is released (ASan would see a use after free); a request that
 * began on the old config gets nothing from a cache bound to the new one. */
static void test_header_config_cache_reset_on_reload(void **state)
{
    (void)state;
    fixture *f = fixture_new(base_yaml);
    fixture *g = fixture_new(base_yaml); /* the reloaded config */
    route_cache *c = route_cache_new();
    char e[256] = "";
    const char *text = "{\"provider\":\"a\",\"model\":\"ma\"}";
    const char *other = "{\"provider\":\"b\"}";
    route_cache_entry *held, *idle, *x;
    const route_tree *t1 = route_cache_get(c, f->cfg, text, strlen(text), "hdr", false, &held, e, sizeof e);
    assert_non_null(t1);
    assert_non_null(route_cache_get(c, f->cfg, other, strlen(other), "hdr", false, &idle, e, sizeof e));
    route_cache_release(idle);

    route_cache_reset(c, g->cfg);
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        assert_null(c->entries[i]);
    assert_true(held->detached);
    assert_string_equal(t1->name, "hdr"); /* still whole for the request holding it */

    const route_tree *t2 = route_cache_get(c, g->cfg, text, strlen(text), "hdr", false, &x, e, sizeof e);
    assert_non_null(t2);
    assert_ptr_not_equal(x, held);
    assert_ptr_equal(t1->root.provider, &f->cfg->providers[0]);
    assert_ptr_equal(t2->root.provider, &g->cfg->providers[0]); /* the new config's provider */
    assert_ptr_equal(t2->root.health, routing_health(g->cfg->health, "a", "ma"));
    route_cache_release(x);

    /* the old config's request asks again: nothing kept, nothing built, no error */
    route_cache_entry *old_req;
    e[0] = '\0';
    assert_null(route_cache_get(c, f->cfg, text, strlen(text), "hdr", false, &old_req, e, sizeof e));
    assert_null(old_req);
    assert_string_equal(e, "");

    route_cache_release(held); /* the last holder: the detached entry is freed here */
    route_cache_free(c);
    fixture_free(g);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_configs_are_built_once_and_kept_boundedly),
        cmocka_unit_test(test_header_config_cache_reset_on_reload),
        cmocka_unit_test(test_unknown_fields_and_refused_features_are_named),
        cmocka_unit_test(test_cache_blocks),
        cmocka_unit_test(test_errors_name_the_target_index_and_field),
        cmocka_unit_test(test_unknown_provider_names_the_known_ones),
        cmocka_unit_test(test_conditions_are_checked_when_built),
        cmocka_unit_test(test_errors_never_quote_the_clients_values),
        cmocka_unit_test(test_custom_host_and_inline_key_only_for_allowed_hosts),
        cmocka_unit_test(test_camel_case_keys_are_accepted),
        cmocka_unit_test(test_portkey_provider_forms_resolve),
        cmocka_unit_test(test_virtual_keys_after_the_configs_providers),
        cmocka_unit_test(test_kept_trees_with_virtual_keys_are_rebuilt_when_they_change),
        cmocka_unit_test(test_children_inherit_and_override),
        cmocka_unit_test(test_portkey_trees_retry_only_when_asked),
        cmocka_unit_test(test_portkey_configs_get_portkeys_rules),
        cmocka_unit_test(test_portkey_retry_replaces_the_inherited_one_whole),
        cmocka_unit_test(test_weighted_sequence_is_nginx_smooth_round_robin),
        cmocka_unit_test(test_weighted_sequence_proportions_are_exact),
        cmocka_unit_test(test_errors_name_the_field_path_exactly),
        cmocka_unit_test(test_allowed_hosts_entries_are_url_prefixes),
    };
    return cmocka_run_group_tests_name("routing tree", tests, NULL, NULL);
}
