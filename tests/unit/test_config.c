/* test_config.c — the config loader: the example loads, defaults hold, every kind of mistake is
 * an error naming file:line and what is wrong, env vars expand, model lookup is exact. */
#include "../../src/config/config.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "gateway/gateway.h"
#include "providers/wire.h"

static char path[64];
static char err[32768]; /* room for 50 mistakes */

static aigw_config *load_text(const char *text)
{
    snprintf(path, sizeof path, "/tmp/aigw-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    err[0] = '\0';
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    unlink(path);
    return cfg;
}

/* The error must start with "<path>:<line>: " and contain `needle`. */
static void expect_error(const char *text, int line, const char *needle)
{
    aigw_config *cfg = load_text(text);
    if (cfg) fail_msg("accepted a bad config:\n%s", text);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
}

static const char *const minimal = "providers:\n"
                                   "  - name: p\n"
                                   "    base_url: http://127.0.0.1:9/v1/\n"
                                   "    models: [m1, m2]\n";

static void test_defaults(void **state)
{
    (void)state;
    aigw_config *cfg = load_text(minimal);
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_true(cfg->workers >= 1);
    assert_int_equal(cfg->max_body_bytes, 16 * 1024 * 1024);
    assert_int_equal(cfg->max_header_bytes, 64 * 1024);
    assert_int_equal(cfg->header_read_timeout_ms, 10000);
    assert_int_equal(cfg->store_timeout_ms, 2000);
    assert_int_equal(cfg->admin_timeout_ms, 60000);
    assert_string_equal(cfg->access_log, "stdout");
    assert_int_equal(cfg->nproviders, 1);
    const provider_config *p = &cfg->providers[0];
    assert_string_equal(p->base_url, "http://127.0.0.1:9/v1"); /* trailing slash dropped */
    assert_string_equal(p->urls[ENDPOINT_CHAT_COMPLETIONS], "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(p->urls[ENDPOINT_EMBEDDINGS], "http://127.0.0.1:9/v1/embeddings");
    assert_null(p->api_key);
    assert_int_equal(p->connect_timeout_ms, 10000);
    config_free(cfg);
}

/* A preset needs only its key: the documented base URL, the provider's key header, and for
 * Anthropic the API version; Azure takes its api_version. */
static void test_presets(void **state)
{
    (void)state;
    setenv("AIGW_TEST_KEY", "sk-test", 1);
    aigw_config *cfg =
        load_text("providers:\n"
                  "  - {name: a, type: anthropic, api_key: '${AIGW_TEST_KEY}', models: [claude]}\n"
                  "  - {name: g, type: groq, api_key: '${AIGW_TEST_KEY}', models: [llama]}\n"
                  "  - {name: z, type: azure, base_url: 'https://r.openai.azure.com', models: [dep]}\n"
                  "  - {name: m, type: gemini, api_key: '${AIGW_TEST_KEY}', models: [gem]}\n");
    assert_non_null(cfg);
    const provider_config *a = &cfg->providers[0], *g = &cfg->providers[1], *z = &cfg->providers[2],
                          *m = &cfg->providers[3];
    assert_int_equal(a->preset->format, WIRE_ANTHROPIC);
    assert_string_equal(a->base_url, "https://api.anthropic.com");
    bool key = false, version = false;
    for (const struct curl_slist *h = a->static_headers; h; h = h->next) {
        key |= !strcmp(h->data, "x-api-key: sk-test");
        version |= !strcmp(h->data, "anthropic-version: 2023-06-01");
    }
    assert_true(key && version);
    assert_string_equal(g->base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(g->urls[ENDPOINT_CHAT_COMPLETIONS],
                        "https://api.groq.com/openai/v1/chat/completions");
    assert_true(z->preset->deployments);
    assert_string_equal(z->api_version, "2024-10-21");
    bool goog = false;
    for (const struct curl_slist *h = m->static_headers; h; h = h->next)
        goog |= !strcmp(h->data, "x-goog-api-key: sk-test");
    assert_true(goog);
    config_free(cfg);
    unsetenv("AIGW_TEST_KEY");
}

static void test_units_and_sections(void **state)
{
    (void)state;
    aigw_config *cfg =
        load_text("listen: '[::1]:0'\n"
                  "workers: 3\n"
                  "access_log: off\n"
                  "limits: {max_body_bytes: 2MiB, max_header_bytes: 16k, max_connections: 7}\n"
                  "timeouts: {header_read: 500ms, keepalive_idle: 2m, drain: 0, store: 750ms, admin: 5s}\n"
                  "providers:\n"
                  "  - name: p\n"
                  "    base_url: https://api.example.com/v1\n"
                  "    headers: {X-Org: acme}\n"
                  "    timeouts: {connect: 1s, first_byte: 90s, idle: 250}\n"
                  "    models: [m]\n");
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 0);
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->max_body_bytes, 2 * 1024 * 1024);
    assert_int_equal(cfg->max_header_bytes, 16 * 1024);
    assert_int_equal(cfg->max_connections, 7);
    assert_int_equal(cfg->header_read_timeout_ms, 500);
    assert_int_equal(cfg->keepalive_idle_timeout_ms, 120000);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    assert_int_equal(cfg->store_timeout_ms, 750);
    assert_int_equal(cfg->admin_timeout_ms, 5000);
    const provider_config *p = &cfg->providers[0];
    assert_int_equal(p->connect_timeout_ms, 1000);
    assert_int_equal(p->first_byte_timeout_ms, 90000);
    assert_int_equal(p->idle_timeout_ms, 250);
    assert_int_equal(p->nheaders, 1);
    /* The prepared header list carries the extra header and no Authorization (keyless). */
    bool saw_org = false, saw_auth = false;
    for (struct curl_slist *h = p->static_headers; h; h = h->next) {
        if (!strcmp(h->data, "X-Org: acme")) saw_org = true;
        if (!strncasecmp(h->data, "Authorization:", 14)) saw_auth = true;
    }
    assert_true(saw_org);
    assert_false(saw_auth);
    config_free(cfg);
}

static void test_env_expansion_and_keys(void **state)
{
    (void)state;
    const char *text = "providers:\n"
                       "  - name: p\n"
                       "    base_url: http://x/v1\n"
                       "    api_key: ${AIGW_UNIT_KEY}\n"
                       "    models: [m]\n";
    setenv("AIGW_UNIT_KEY", "sk-test", 1);
    aigw_config *cfg = load_text(text);
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].api_key, "sk-test");
    bool saw_auth = false;
    for (struct curl_slist *h = cfg->providers[0].static_headers; h; h = h->next)
        if (!strcmp(h->data, "Authorization: Bearer sk-test")) saw_auth = true;
    assert_true(saw_auth);
    config_free(cfg);
    unsetenv("AIGW_UNIT_KEY");
    cfg = load_text(text); /* unset: the provider forwards the client's key, and says why */
    assert_non_null(cfg);
    assert_null(cfg->providers[0].api_key);
    assert_string_equal(cfg->providers[0].api_key_env, "AIGW_UNIT_KEY");
    config_free(cfg);
}

static void test_example_config_loads(void **state)
{
    (void)state;
    /* The file `make run` uses, found from the test's working directory (the repo root). */
    aigw_config *cfg = gateway_config_load("aigw.example.yaml", err, sizeof err);
    if (!cfg) fail_msg("%s", err);
    assert_non_null(config_find_model(cfg, "mock-model", 10));
    const model_route *fast = config_find_model(cfg, "fast", 4);
    assert_non_null(fast);
    assert_true(fast->is_alias);
    assert_string_equal(fast->upstream_model, "mock-small");
    assert_string_equal(fast->provider->name, "mock");
    /* Claude Code's model names are served by the demo's mock, not refused with a 404. */
    assert_non_null(cfg->default_route);
    assert_null(config_find_model(cfg, "claude-sonnet-4-5", 17));
    /* The demo's models have prices (aigw.example.catalog.json), so costs show. */
    const model_route *mm = config_find_model(cfg, "mock-model", 10);
    assert_non_null(mm->catalog);
    assert_true(mm->catalog->priced);
    assert_non_null(catalog_find(&cfg->catalog, "anthropic", "mock-claude"));
    /* … and only there: the embedded catalog keeps to real providers' models. */
    catalog embedded;
    char msg[256];
    assert_true(catalog_load(&embedded, NULL, msg, sizeof msg));
    assert_null(catalog_find(&embedded, "openai", "mock-model"));
    catalog_free(&embedded);
    config_free(cfg);
}

static void test_model_lookup_is_exact(void **state)
{
    (void)state;
    aigw_config *cfg = load_text("providers:\n"
                                 "  - {name: a, base_url: 'http://a/v1', models: [gpt-4o, gpt-4o-mini, o1]}\n"
                                 "  - {name: b, base_url: 'http://b/v1', models: [claude]}\n"
                                 "models:\n"
                                 "  - {name: cheap, provider: a, model: gpt-4o-mini}\n");
    assert_non_null(cfg);
    assert_int_equal(cfg->nroutes, 5);
    const model_route *r = config_find_model(cfg, "gpt-4o", 6);
    assert_non_null(r);
    assert_string_equal(r->public_name, "gpt-4o");
    assert_false(r->is_alias);
    r = config_find_model(cfg, "gpt-4o-mini", 11);
    assert_string_equal(r->public_name, "gpt-4o-mini");
    assert_null(config_find_model(cfg, "gpt-4", 5)); /* a prefix is not a match */
    assert_null(config_find_model(cfg, "gpt-4o-m", 8));
    assert_null(config_find_model(cfg, "gpt-4o-minis", 12));
    assert_null(config_find_model(cfg, "", 0));
    assert_string_equal(config_find_model(cfg, "claude", 6)->provider->name, "b");
    r = config_find_model(cfg, "cheap", 5);
    assert_true(r->is_alias);
    assert_string_equal(r->upstream_model, "gpt-4o-mini");
    config_free(cfg);
}

/* `type/model` names (LiteLLM's): providers of that type listing the model or listing none, in
 * the config's order; the rest of the name is the model, slashes included. */
static void test_typed_names_find_providers_of_the_type(void **state)
{
    (void)state;
    setenv("AIGW_UNIT_BASE", "http://o", 1);
    aigw_config *cfg = load_text("providers:\n"
                                 "  - {name: a, type: openai, base_url: 'http://a/v1', models: [gpt-4o, x]}\n"
                                 "  - {name: b, type: anthropic, base_url: 'http://b', models: [claude]}\n"
                                 "  - {name: c, type: openai, base_url: '${AIGW_UNIT_BASE}/v1'}\n"
                                 "  - {name: d, type: openai, base_url: 'http://d/v1', models: []}\n"
                                 "  - {name: e, type: openrouter, models: [vendor/m]}\n");
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[2].base_url, "http://o/v1");
    assert_false(cfg->providers[0].any_model);
    assert_true(cfg->providers[2].any_model);
    assert_false(cfg->providers[3].any_model); /* an empty list: aliases and routes only */
    const provider_config *found[8];
    size_t off = 0;
    static const char gpt[] = "openai/gpt-4o";
    assert_int_equal(config_find_typed(cfg, gpt, strlen(gpt), found, 8, &off), 2);
    assert_string_equal(found[0]->name, "a"); /* the config's order */
    assert_string_equal(found[1]->name, "c");
    assert_int_equal(off, 7);
    static const char other[] = "openai/o3";
    assert_int_equal(config_find_typed(cfg, other, strlen(other), found, 8, &off), 1);
    assert_string_equal(found[0]->name, "c");
    assert_int_equal(config_find_typed(cfg, gpt, strlen(gpt), found, 1, &off), 1); /* at most max */
    static const char claude[] = "anthropic/claude";
    assert_int_equal(config_find_typed(cfg, claude, strlen(claude), found, 8, &off), 1);
    assert_string_equal(found[0]->name, "b");
    static const char nested[] = "openrouter/vendor/m";
    assert_int_equal(config_find_typed(cfg, nested, strlen(nested), found, 8, &off), 1);
    assert_string_equal(nested + off, "vendor/m");
    static const char *const none[] = {
        "anthropic/other", "gemini/gemini-2.5-flash", "gpt-4o", "/gpt-4o", "openai/",
        "opena/gpt-4o",    "openai2/gpt-4o"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        assert_int_equal(config_find_typed(cfg, none[i], strlen(none[i]), found, 8, &off), 0);
    /* the length is the name's: a longer buffer is not read past it */
    assert_int_equal(config_find_typed(cfg, "anthropic/claudeX", 16, found, 8, &off), 1);
    config_free(cfg);
    unsetenv("AIGW_UNIT_BASE");
}

static void test_auth_limits(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%sauth:\n  master_key: a-master-key-0123456789\n", minimal);
    aigw_config *cfg = load_text(text);
    assert_non_null(cfg);
    assert_int_equal(cfg->auth.limits.backend, LIMITS_BACKEND_MEMORY);
    assert_int_equal(cfg->auth.limits.timeout_ms, 50);
    assert_false(cfg->auth.limits.fail_closed);
    config_release(cfg);
    snprintf(text, sizeof text,
             "%sauth:\n  limits: {backend: redis, redis: 'unix:/run/r.sock', timeout: 20ms, on_redis_error: "
             "closed}\n",
             minimal);
    cfg = load_text(text);
    assert_non_null(cfg);
    assert_int_equal(cfg->auth.limits.backend, LIMITS_BACKEND_REDIS);
    assert_string_equal(cfg->auth.limits.redis, "unix:/run/r.sock");
    assert_int_equal(cfg->auth.limits.timeout_ms, 20);
    assert_true(cfg->auth.limits.fail_closed);
    config_release(cfg);
    expect_error("auth:\n  limits: {backend: disk}\n", 2, "'auth.limits.backend' must be memory or redis");
    expect_error("auth:\n  limits: {on_redis_error: maybe}\n", 2, "must be open");
    expect_error("auth:\n  limits: {timeout: 0ms}\n", 2, "'timeout' must be between 1 and 10000");
    expect_error("auth:\n  limits: {backend: redis}\n", 2, "auth.limits.redis is not given");
    expect_error("auth:\n  limits: {redis_url: x}\n", 2, "unknown key 'redis_url'");
}

/* tracing.protocol: protobuf unless http/json is asked, and nothing else taken. */
static void test_tracing_protocol(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%stracing:\n  endpoint: http://127.0.0.1:4318/v1/traces\n", minimal);
    aigw_config *cfg = load_text(text);
    assert_non_null(cfg);
    assert_false(cfg->tracing.json);
    config_release(cfg);
    snprintf(text, sizeof text,
             "%stracing:\n  endpoint: http://127.0.0.1:4318/v1/traces\n  protocol: http/json\n", minimal);
    cfg = load_text(text);
    assert_non_null(cfg);
    assert_true(cfg->tracing.json);
    config_release(cfg);
    snprintf(text, sizeof text, "%stracing:\n  protocol: http/protobuf\n", minimal);
    cfg = load_text(text);
    assert_non_null(cfg);
    assert_false(cfg->tracing.json);
    config_release(cfg);
    expect_error("tracing:\n  protocol: grpc\n", 2,
                 "tracing.protocol is http/protobuf or http/json, got 'grpc'");
}

static void test_mistakes_name_file_line_and_cause(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:8080\nlisten_port: 9\n", 2, "unknown key 'listen_port'");
    expect_error("workers: 0\n", 1, "'workers' must be between 1 and 256");
    expect_error("workers: two\n", 1, "cannot read 'two' as a whole number");
    expect_error("limits:\n  max_body_bytes: lots\n", 2, "as a size");
    expect_error("timeouts:\n  drain: 5 s\n", 2, "as a duration");
    expect_error("limits: 5\n", 1, "'limits' must be a mapping");
    expect_error("listen: 8080\n", 1, "'listen' must be HOST:PORT");
    expect_error("listen: 'h:99999'\n", 1, "bad port");
    expect_error("providers: [\n", 2, "YAML error");
    expect_error("", 1, "empty");
    expect_error("workers: 1\n", 1, "no 'providers'");
    expect_error("providers:\n  - name: p\n    models: [m]\n", 2, "needs a 'base_url'");
    expect_error("providers:\n  - name: p\n    base_url: ftp://x\n    models: [m]\n", 2,
                 "http:// or https://");
    expect_error("providers:\n  - {name: p, base_url: '${AIGW_UNSET_BASE}/v1', models: [m]}\n", 2,
                 "base_url: environment variable AIGW_UNSET_BASE is not set");
    expect_error("providers:\n  - name: p\n    type: anthropik\n    base_url: http://x\n    models: [m]\n", 3,
                 "unknown provider type 'anthropik' (known: openai, azure, anthropic");
    expect_error("providers:\n  - name: p\n    type: azure\n    models: [m]\n", 2,
                 "(type azure) needs a 'base_url'");
    expect_error("providers:\n  - name: p\n    base_url: http://x\n    modles: [m]\n", 4,
                 "unknown key 'modles' in provider");
    expect_error("providers:\n  - {name: p, base_url: 'http://x', models: [m]}\n"
                 "  - {name: p, base_url: 'http://y', models: [n]}\n",
                 3, "used twice");
    expect_error("providers:\n  - {name: a, base_url: 'http://x', models: [m]}\nmodels:\n"
                 "  - {name: f, provider: nope}\n",
                 4, "names provider 'nope', which is not defined");
    expect_error("providers:\n  - {name: a, base_url: 'http://x', models: [m], headers: {'Bad Name': v}}\n",
                 2, "bad header name");
    expect_error("providers:\n  - {name: a, base_url: 'http://x', api_key: '${UNCLOSED', models: [m]}\n", 2,
                 "unterminated ${");
    /* Routes are built after the file is read (routing_build), still naming their lines. */
    static const char *const one = "providers:\n  - {name: a, base_url: 'http://x', models: [m]}\n";
    char text[512];
    snprintf(text, sizeof text, "%sroutes:\n  - {name: r, provider: a}\n  - {name: s, provider: zz}\n", one);
    expect_error(text, 5, "route 's': provider: names no provider");
    snprintf(text, sizeof text, "%sroutes:\n  - {name: r, provider: a}\n  - {name: r, provider: a}\n", one);
    expect_error(text, 5, "route 'r' is defined twice");
    snprintf(text, sizeof text, "%sroutes:\n  - {provider: a}\n", one);
    expect_error(text, 4, "a route needs a 'name'");
    snprintf(text, sizeof text, "%sworkers: 1\ndefault_route: nothing\n", one);
    expect_error(text, 4, "default_route 'nothing' is neither a route nor a served model");
    aigw_config *cfg = gateway_config_load("/nonexistent/aigw.yaml", err, sizeof err);
    assert_null(cfg);
    assert_non_null(strstr(err, "/nonexistent/aigw.yaml: cannot open"));
}

/* Several mistakes in one file: all reported, one line each, in the file's order; what depends
 * on a broken part (an alias to a broken provider) is not reported again. */
static void test_every_mistake_in_file_order(void **state)
{
    (void)state;
    static const char *const text =
        "listen: 8080\n"                                                               /* 1 */
        "workers: 0\n"                                                                 /* 2 */
        "limits:\n"                                                                    /* 3 */
        "  max_body_bytes: lots\n"                                                     /* 4 */
        "providers:\n"                                                                 /* 5 */
        "  - name: a\n"                                                                /* 6 */
        "    base_url: ftp://x\n"                                                      /* 7 */
        "    models: [m]\n"                                                            /* 8 */
        "  - name: b\n"                                                                /* 9 */
        "    base_url: http://x\n"                                                     /* 10 */
        "    modles: [m]\n"                                                            /* 11 */
        "  - {name: c, base_url: 'http://y', models: [n], headers: {'Bad Name': v}}\n" /* 12 */
        "models:\n"                                                                    /* 13 */
        "  - {name: f, provider: nope}\n"                                              /* 14 */
        "  - {name: g, provider: a}\n"                                                 /* 15 */
        "routes:\n"                                                                    /* 16 */
        "  - {provider: c}\n"                                                          /* 17 */
        "access_log: ''\n"                                                             /* 18 */
        "bogus: 1\n";                                                                  /* 19 */
    static const struct {
        int line;
        const char *needle;
    } want[] = {
        {1, "'listen' must be HOST:PORT"},
        {2, "'workers' must be between 1 and 256"},
        {4, "cannot read 'lots' as a size"},
        {6, "provider 'a': base_url must start with http://"},
        {11, "unknown key 'modles' in provider"},
        {12, "bad header name 'Bad Name'"},
        {14, "names provider 'nope', which is not defined"},
        {17, "a route needs a 'name'"},
        {18, "'access_log' must be stdout, stderr, off or a file path"},
        {19, "unknown key 'bogus' in the top level"},
    };
    aigw_config *cfg = load_text(text);
    assert_null(cfg);
    const char *line = err;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, want[i].line);
        size_t len = strcspn(line, "\n");
        if (strncmp(line, prefix, strlen(prefix)) != 0 ||
            !memmem(line, len, want[i].needle, strlen(want[i].needle)))
            fail_msg("mistake %zu: '%.*s' is not '%s%s…'", i, (int)len, line, prefix, want[i].needle);
        line += len + (line[len] == '\n');
    }
    if (*line) fail_msg("more than the expected mistakes: '%s'", line);

    /* Past 50, the rest is counted. */
    char many[4096];
    size_t off = 0;
    for (int i = 0; i < 60; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "key%d: 1\n", i);
    assert_null(load_text(many));
    size_t lines = 0;
    for (const char *c = err; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 50); /* 50 mistakes, then the count of the rest on the last line */
    assert_non_null(strstr(err, ":50: unknown key 'key49'"));
    assert_null(strstr(err, "'key50'"));
    const char *last = strrchr(err, '\n') + 1;
    assert_string_equal(last, "and 10 more mistakes");
}

/* auth.store: a file beside the config, or a PostgreSQL connection string kept as written with
 * its ${VAR}s expanded; an unset variable and a shared store without a shared secret refused. */
static void test_auth_store(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text, "%sauth:\n  master_key: master-key-0123456789\n  store: keys.db\n", minimal);
    aigw_config *cfg = load_text(text);
    assert_non_null(cfg);
    assert_string_equal(cfg->auth.store_path, "/tmp/keys.db");
    config_free(cfg);

    setenv("AIGW_TEST_PG_PASSWORD", "pw-from-env", 1);
    snprintf(text, sizeof text,
             "%sauth:\n  master_key: master-key-0123456789\n"
             "  store: postgres://aigw:${AIGW_TEST_PG_PASSWORD}@db.internal/aigw\n"
             "  secret: shared-secret-0123456789\n",
             minimal);
    cfg = load_text(text);
    assert_non_null(cfg);
    assert_string_equal(cfg->auth.store_path, "postgres://aigw:pw-from-env@db.internal/aigw");
    config_free(cfg);
    snprintf(text, sizeof text,
             "%sauth:\n  master_key: master-key-0123456789\n  store: host=db.internal dbname=aigw\n"
             "  secret_file: digest.secret\n",
             minimal);
    cfg = load_text(text);
    assert_non_null(cfg);
    assert_string_equal(cfg->auth.store_path, "host=db.internal dbname=aigw");
    assert_string_equal(cfg->auth.secret_file, "/tmp/digest.secret");
    config_free(cfg);

    snprintf(text, sizeof text,
             "%sauth:\n  master_key: master-key-0123456789\n  store: "
             "postgres://aigw:${AIGW_TEST_UNSET_PW}@db/aigw\n"
             "  secret: shared-secret-0123456789\n",
             minimal);
    expect_error(text, 7, "auth.store: environment variable AIGW_TEST_UNSET_PW is not set");
    snprintf(text, sizeof text,
             "%sauth:\n  master_key: master-key-0123456789\n  store: postgres://aigw:pw-in-file@db/aigw\n",
             minimal);
    expect_error(
        text, 6,
        "auth.store is a PostgreSQL database: give every instance that shares it the same auth.secret");
    assert_null(strstr(err, "pw-in-file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_units_and_sections),
        cmocka_unit_test(test_env_expansion_and_keys),
        cmocka_unit_test(test_example_config_loads),
        cmocka_unit_test(test_model_lookup_is_exact),
        cmocka_unit_test(test_typed_names_find_providers_of_the_type),
        cmocka_unit_test(test_auth_limits),
        cmocka_unit_test(test_tracing_protocol),
        cmocka_unit_test(test_mistakes_name_file_line_and_cause),
        cmocka_unit_test(test_every_mistake_in_file_order),
        cmocka_unit_test(test_auth_store),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
