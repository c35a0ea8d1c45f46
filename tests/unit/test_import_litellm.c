/* test_import_litellm.c — `aigw config import litellm`: a LiteLLM config as LiteLLM's docs write
 * it becomes aigw YAML that loads and means the same (names, order, keys from the environment);
 * what cannot map is an error naming its line; nothing is printed for a file that fails. */
#include "../../src/gateway/import_litellm.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "config_fixture.h"

static char err[1024];

/* The import of text; NULL (message in err) when it fails. The caller frees the result. */
static char *import_text(const char *text)
{
    char path[] = "/tmp/aigw-unit-litellm-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    err[0] = '\0';
    bool ok = import_litellm(path, f, err, sizeof err);
    fclose(f);
    unlink(path);
    if (!ok) {
        assert_int_equal(len, 0); /* all or nothing */
        free(out);
        return NULL;
    }
    return out;
}

static const char docs_config[] = "model_list:\n"
                                  "  - model_name: gpt-4o\n"
                                  "    litellm_params:\n"
                                  "      model: azure/gpt-4o-eu\n"
                                  "      api_base: https://my-endpoint-europe.openai.azure.com/\n"
                                  "      api_key: os.environ/AZURE_API_KEY_EU\n"
                                  "      api_version: \"2024-02-01\"\n"
                                  "      rpm: 6\n"
                                  "  - model_name: gpt-4o\n"
                                  "    litellm_params:\n"
                                  "      model: openai/gpt-4o\n"
                                  "      api_key: os.environ/OPENAI_API_KEY\n"
                                  "  - model_name: gpt-4o-mini\n"
                                  "    litellm_params:\n"
                                  "      model: openai/gpt-4o-mini\n"
                                  "      api_key: os.environ/OPENAI_API_KEY\n"
                                  "  - model_name: claude\n"
                                  "    litellm_params:\n"
                                  "      model: anthropic/claude-sonnet-4-5\n"
                                  "      api_key: os.environ/ANTHROPIC_API_KEY\n"
                                  "  - model_name: local\n"
                                  "    litellm_params:\n"
                                  "      model: ollama/llama3\n"
                                  "      api_base: http://localhost:11434\n"
                                  "litellm_settings:\n"
                                  "  drop_params: True\n"
                                  "router_settings:\n"
                                  "  routing_strategy: simple-shuffle\n"
                                  "general_settings:\n"
                                  "  master_key: sk-1234\n";

static void test_docs_config_imports_and_loads(void **state)
{
    (void)state;
    char *out = import_text(docs_config);
    assert_non_null(out);
    /* one provider per type + base + key: the two openai entries share theirs */
    assert_non_null(strstr(out,
                           "  - name: \"openai\"\n    type: \"openai\"\n    api_key: \"${OPENAI_API_KEY}\"\n"
                           "    models: []\n"));
    assert_null(strstr(out, "openai-2"));
    assert_non_null(strstr(out, "api_key: \"${AZURE_API_KEY_EU}\""));
    assert_non_null(strstr(out, "api_version: \"2024-02-01\""));
    assert_non_null(strstr(out, "base_url: \"http://localhost:11434/v1\"")); /* Ollama's OpenAI API */
    /* the ignored settings, each with its line */
    assert_non_null(strstr(out, "#   line 8: litellm_params.rpm of 'gpt-4o'"));
    assert_non_null(strstr(out, "#   line 25: litellm_settings"));
    assert_non_null(strstr(out, "#   line 27: router_settings"));
    assert_non_null(strstr(out, "#   line 29: general_settings"));
    /* what was printed loads, and serves what LiteLLM served, in its order */
    setenv("OPENAI_API_KEY", "sk-o", 1);
    char *azure = strstr(out, "{name: \"gpt-4o\", provider: \"azure\"");
    char *openai = strstr(out, "{name: \"gpt-4o\", provider: \"openai\"");
    assert_non_null(azure);
    assert_non_null(openai);
    assert_true(azure < openai);
    aigw_config *cfg = config_from_text(out);
    const model_route *r = config_find_model(cfg, "gpt-4o", 6);
    assert_non_null(r);
    while (r > cfg->routes && !strcmp(r[-1].public_name, "gpt-4o")) /* the first of the name */
        r--;
    assert_string_equal(r->provider->name, "azure");
    assert_string_equal(r->upstream_model, "gpt-4o-eu");
    assert_string_equal(r[1].public_name, "gpt-4o");
    assert_string_equal(r[1].provider->name, "openai");
    assert_string_equal(cfg->providers[1].api_key, "sk-o");
    assert_non_null(config_find_model(cfg, "claude", 6));
    assert_null(config_find_model(cfg, "claude-sonnet-4-5", 17)); /* only LiteLLM's public names */
    const provider_config *found[4];
    size_t off;
    assert_int_equal(config_find_typed(cfg, "openai/o3", 9, found, 4, &off), 0); /* models: [] */
    config_free(cfg);
    unsetenv("OPENAI_API_KEY");
    free(out);
}

static void test_wildcard_serves_any_model_of_its_type(void **state)
{
    (void)state;
    char *out = import_text("model_list:\n"
                            "  - model_name: \"openai/*\"\n"
                            "    litellm_params:\n"
                            "      model: \"openai/*\"\n"
                            "      api_key: sk-literal\"quote\n"
                            "  - model_name: fast\n"
                            "    litellm_params: {model: gpt-4o-mini, api_key: sk-literal\"quote}\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "api_key: \"sk-literal\\\"quote\"\n\nmodels:")); /* no models: list */
    aigw_config *cfg = config_from_text(out);
    const provider_config *found[4];
    size_t off;
    assert_int_equal(config_find_typed(cfg, "openai/o3", 9, found, 4, &off), 1);
    assert_string_equal(cfg->providers[0].api_key, "sk-literal\"quote");
    assert_string_equal(config_find_model(cfg, "fast", 4)->upstream_model,
                        "gpt-4o-mini"); /* bare gpt-: openai */
    config_free(cfg);
    free(out);
}

static void expect_error(const char *text, const char *line_and_message)
{
    char *out = import_text(text);
    assert_null(out);
    const char *colon = strchr(err, ':');
    assert_non_null(colon);
    if (!strstr(colon + 1, line_and_message)) fail_msg("error '%s' lacks '%s'", err, line_and_message);
}

static void test_what_cannot_map_names_its_line(void **state)
{
    (void)state;
    expect_error(
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: bedrock/anthropic.claude\n",
        "4: 'bedrock/anthropic.claude': LiteLLM provider 'bedrock' has no aigw equivalent");
    expect_error("model_list:\n  - model_name: x\n    litellm_params:\n      model: my-model\n",
                 "4: 'my-model' names no provider: write it as provider/model");
    expect_error("model_list:\n  - model_name: x\n    litellm_params:\n      model: azure/dep\n",
                 "4: model 'x': an azure deployment needs 'api_base'");
    expect_error("model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/gpt\n"
                 "      api_key: os.environ/\n",
                 "5: 'api_key': '' is not an environment variable's name");
    expect_error("model_list:\n  - litellm_params: {model: openai/gpt}\n",
                 "2: a model_list entry needs a 'model_name'");
    expect_error("model_list:\n  - model_name: x\n", "2: model 'x' needs 'litellm_params'");
    expect_error("model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/gpt-*\n",
                 "4: 'openai/gpt-*': aigw serves a whole provider");
    expect_error("general_settings: {}\n", "1: no model_list");
    expect_error("model_list: [\n", "YAML error");
    expect_error("model_list: []\n", "1: model_list is empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_config_imports_and_loads),
        cmocka_unit_test(test_wildcard_serves_any_model_of_its_type),
        cmocka_unit_test(test_what_cannot_map_names_its_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
