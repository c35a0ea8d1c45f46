/* presets.c — what aigw knows about each provider, as data: wire format, documented base URL,
 * how the key is sent, and the OpenAI parameters the provider renames or rejects.
 *
 * A provider in the config names one of these rows in `type:`; `base_url` may then be left
 * out. The parameter rules apply on the way to OpenAI-compatible providers (translation to
 * Anthropic and Gemini has its own mapping in anthropic.c and gemini.c): a rename keeps the
 * meaning under the provider's name, a drop removes the parameter and says so in the
 * x-aigw-dropped-params header and the access log. Sources for every row are listed in
 * docs/provider-facts.md; a parameter is listed where the provider documents that it rejects,
 * ignores or renames it (or does not document it at all, for DeepSeek), so the client learns
 * from the header that it had no effect. */
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

static const compat_rule mistral_rules[] = {
    {"seed", COMPAT_RENAME, "random_seed"},
    {"max_completion_tokens", COMPAT_RENAME, "max_tokens"},
    {"user", COMPAT_DROP, NULL}, /* Mistral refuses unknown fields */
    {"logprobs", COMPAT_DROP, NULL},
    {"top_logprobs", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {"stream_options", COMPAT_DROP, NULL},
    {"service_tier", COMPAT_DROP, NULL},
    {"store", COMPAT_DROP, NULL},
    {"metadata", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

static const compat_rule groq_rules[] = {
    {"logprobs", COMPAT_DROP, NULL},
    {"top_logprobs", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

static const compat_rule cerebras_rules[] = {
    {"frequency_penalty", COMPAT_DROP, NULL},
    {"presence_penalty", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {"parallel_tool_calls", COMPAT_DROP, NULL},
    {"service_tier", COMPAT_DROP, NULL},
    {"store", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

static const compat_rule sambanova_rules[] = {
    {"frequency_penalty", COMPAT_DROP, NULL},
    {"presence_penalty", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

static const compat_rule deepseek_rules[] = {
    {"max_completion_tokens", COMPAT_RENAME, "max_tokens"},
    {"n", COMPAT_DROP, NULL},
    {"seed", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {"user", COMPAT_DROP, NULL},
    {"parallel_tool_calls", COMPAT_DROP, NULL},
    {"service_tier", COMPAT_DROP, NULL},
    {"store", COMPAT_DROP, NULL},
    {"metadata", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

static const compat_rule ollama_rules[] = {
    {"max_completion_tokens", COMPAT_RENAME, "max_tokens"},
    {"tool_choice", COMPAT_DROP, NULL},
    {"logit_bias", COMPAT_DROP, NULL},
    {"user", COMPAT_DROP, NULL},
    {"n", COMPAT_DROP, NULL},
    {NULL, 0, NULL},
};

/* Servers that document only the older chat API's max_tokens. */
static const compat_rule max_tokens_rules[] = {
    {"max_completion_tokens", COMPAT_RENAME, "max_tokens"},
    {NULL, 0, NULL},
};

static const provider_preset presets[] = {
    /* type            format          base_url (documented)                 key  deployments rules  Responses
       API */
    {"openai", WIRE_OPENAI, "https://api.openai.com/v1", KEY_BEARER, false, NULL, true},
    {"azure", WIRE_OPENAI, NULL, KEY_API_KEY, true, NULL, false},
    {"anthropic", WIRE_ANTHROPIC, "https://api.anthropic.com", KEY_X_API_KEY, false, NULL, false},
    {"gemini", WIRE_GEMINI, "https://generativelanguage.googleapis.com", KEY_GOOGLE, false, NULL, false},
    {"mistral", WIRE_OPENAI, "https://api.mistral.ai/v1", KEY_BEARER, false, mistral_rules, false},
    {"groq", WIRE_OPENAI, "https://api.groq.com/openai/v1", KEY_BEARER, false, groq_rules, false},
    {"together", WIRE_OPENAI, "https://api.together.ai/v1", KEY_BEARER, false, NULL, false},
    {"openrouter", WIRE_OPENAI, "https://openrouter.ai/api/v1", KEY_BEARER, false, NULL, false},
    {"cerebras", WIRE_OPENAI, "https://api.cerebras.ai/v1", KEY_BEARER, false, cerebras_rules, false},
    {"sambanova", WIRE_OPENAI, "https://api.sambanova.ai/v1", KEY_BEARER, false, sambanova_rules, false},
    {"github-models", WIRE_OPENAI, "https://models.github.ai/inference", KEY_BEARER, false, max_tokens_rules,
     false},
    {"huggingface", WIRE_OPENAI, "https://router.huggingface.co/v1", KEY_BEARER, false, NULL, false},
    {"deepseek", WIRE_OPENAI, "https://api.deepseek.com", KEY_BEARER, false, deepseek_rules, false},
    {"xai", WIRE_OPENAI, "https://api.x.ai/v1", KEY_BEARER, false, NULL, false},
    {"fireworks", WIRE_OPENAI, "https://api.fireworks.ai/inference/v1", KEY_BEARER, false, NULL, false},
    {"ollama", WIRE_OPENAI, "http://localhost:11434/v1", KEY_BEARER, false, ollama_rules, false},
    {"vllm", WIRE_OPENAI, "http://localhost:8000/v1", KEY_BEARER, false, NULL, false},
    {"llama-cpp", WIRE_OPENAI, "http://localhost:8080/v1", KEY_BEARER, false, max_tokens_rules, false},
};

const provider_preset *provider_preset_find(const char *type)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].type, type)) return &presets[i];
    return NULL;
}

void provider_preset_names(char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof presets / sizeof presets[0] && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%s", i ? ", " : "", presets[i].type);
}
