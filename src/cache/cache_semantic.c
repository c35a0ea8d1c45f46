/* cache_semantic.c — what a semantic lookup compares (cache.h): the text it embeds and the
 * bucket its vector must share with a stored one.
 *
 * The text is the last message's when it is the user's: its string content, or its text parts
 * joined by newlines (OpenAI's content parts, Anthropic's text blocks). A conversation that
 * ends otherwise (a tool result, an assistant prefill) or a last turn with no text is not
 * looked up semantically: what it asks is not in words a vector can compare.
 *
 * The bucket is a keyed digest, like the exact key, of everything that must be equal for a
 * stored reply to answer another wording: the namespace and the client's partition, the
 * endpoint, the public model and route, the system prompt (OpenAI's system and developer
 * messages in order; Anthropic's `system`), the tools and tool_choice, and response_format.
 * The earlier turns of the conversation are not part of it: a semantic hit answers the last
 * question as asked in the same setting (docs/cache.md says what that trades). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cache/cache.h"

static bool role_is(json_t *msg, const char *role)
{
    const char *r = json_string_value(json_object_get(msg, "role"));
    return r && !strcmp(r, role);
}

bool cache_semantic_text(json_t *body, size_t max_len, buf *out)
{
    json_t *messages = json_object_get(body, "messages");
    size_t n = json_array_size(messages);
    if (!n) return false;
    json_t *last = json_array_get(messages, n - 1);
    if (!role_is(last, "user")) return false;
    json_t *content = json_object_get(last, "content");
    if (json_is_string(content)) {
        if (json_string_length(content) > max_len) return false;
        return buf_append(out, json_string_value(content), json_string_length(content)) == BUF_OK &&
               out->len > 0;
    }
    if (!json_is_array(content)) return false;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(text)) continue;
        if (out->len + 1 + json_string_length(text) > max_len) return false;
        if (out->len && buf_append_lit(out, "\n") != BUF_OK) return false;
        if (buf_append(out, json_string_value(text), json_string_length(text)) != BUF_OK) return false;
    }
    return out->len > 0;
}

static void feed(crypto_generichash_state *st, const void *data, size_t len)
{
    uint8_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_generichash_update(st, n, sizeof n);
    if (len) crypto_generichash_update(st, data, len);
}

/* A member serialized the one way (sorted keys, no white space) into the digest, its length
 * first; an absent member is fed as empty. */
static bool feed_json(crypto_generichash_state *st, json_t *v)
{
    if (!v) {
        feed(st, "", 0);
        return true;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    if (!text) return false;
    feed(st, text, strlen(text));
    free(text);
    return true;
}

bool cache_semantic_bucket(const cache_key_input *in, uint8_t out[CACHE_KEY_BYTES])
{
    json_t *body = in->parsed;
    if (!json_is_object(body)) return false;
    crypto_generichash_state st;
    crypto_generichash_init(&st, in->secret->digest, sizeof in->secret->digest, CACHE_KEY_BYTES);
    static const char domain[] = "aigw semantic bucket v1";
    feed(&st, domain, sizeof domain - 1);
    feed(&st, in->namespace_name ? in->namespace_name : "", in->namespace_len);
    uint8_t endpoint = (uint8_t)in->endpoint;
    feed(&st, &endpoint, 1);
    feed(&st, in->model ? in->model : "", in->model_len);
    feed(&st, in->route ? in->route : "", in->route ? strlen(in->route) : 0);
    feed(&st, in->extra ? in->extra : "", in->extra ? in->extra_len : 0);
    /* the system prompt: Anthropic's member, or OpenAI's system and developer messages */
    json_t *system = json_object_get(body, "system");
    json_t *sys = system ? json_incref(system) : json_array();
    if (!system) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(body, "messages"), i, m)
        {
            if (role_is(m, "system") || role_is(m, "developer"))
                json_array_append(sys, json_object_get(m, "content"));
        }
    }
    bool ok = feed_json(&st, sys) && feed_json(&st, json_object_get(body, "tools")) &&
              feed_json(&st, json_object_get(body, "tool_choice")) &&
              feed_json(&st, json_object_get(body, "response_format"));
    json_decref(sys);
    if (!ok) {
        sodium_memzero(&st, sizeof st);
        return false;
    }
    crypto_generichash_final(&st, out, CACHE_KEY_BYTES);
    return true;
}
