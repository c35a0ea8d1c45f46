/* wire.h — types only: the wire formats aigw speaks, and what a provider preset says.
 *
 * A wire format is one API's shape on the wire (request, reply, stream events, errors). The
 * canonical form is OpenAI's chat format: every other format translates to and from it
 * (src/providers/<format>.c), so N formats need N translators, not N × N. A preset is one
 * provider's facts as data — its wire format, documented base URL, how it takes its key, and
 * which OpenAI parameters it renames or rejects — so provider quirks live in a table
 * (presets.c), never in `if` chains. Types-only so config, server and pipeline can include it. */
#ifndef AIGW_PROVIDERS_WIRE_H
#define AIGW_PROVIDERS_WIRE_H

#include <stdbool.h>

typedef enum wire_format {
    WIRE_OPENAI,    /* chat completions; the canonical form */
    WIRE_ANTHROPIC, /* Messages API */
    WIRE_GEMINI,    /* generateContent */
    WIRE_RESPONSES, /* OpenAI's Responses API (POST /v1/responses) */
    WIRE__COUNT,
} wire_format;

/* How a provider takes its key. */
typedef enum key_style {
    KEY_BEARER,    /* Authorization: Bearer KEY */
    KEY_X_API_KEY, /* x-api-key: KEY (Anthropic) */
    KEY_API_KEY,   /* api-key: KEY (Azure OpenAI) */
    KEY_GOOGLE,    /* x-goog-api-key: KEY (Gemini) */
} key_style;

/* One OpenAI request parameter a provider does not take as it is. */
typedef enum compat_action {
    COMPAT_DROP,   /* removed, and reported in x-aigw-dropped-params and the log */
    COMPAT_RENAME, /* moved to another name with the same meaning */
} compat_action;

typedef struct compat_rule {
    const char *param;
    compat_action action;
    const char *rename_to; /* COMPAT_RENAME */
} compat_rule;

typedef struct provider_preset {
    const char *type; /* what `type:` says in the config */
    wire_format format;
    const char *base_url; /* as the provider documents it; NULL: the config must give one */
    key_style key;
    bool deployments;          /* Azure: the URL names the deployment (= upstream model) and api-version */
    const compat_rule *compat; /* NULL-terminated by param; NULL for none */
    /* serves OpenAI's Responses API at base_url/responses (with its documented base_url) */
    bool responses;
} provider_preset;

#endif
