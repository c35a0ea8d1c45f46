/* prepare.c — the config's providers made ready to send to, and providers derived from them
 * at run time (prepare.h).
 *
 * config.c reads a provider as the file writes it; what follows from its `type:` is this
 * module's knowledge: the preset row (presets.c), the documented base URL when the file gives
 * none, Azure's api-version, the request URLs and the headers every request carries (the key
 * in the preset's style, Anthropic's API version, the file's extra headers). Done once, after
 * config_load, into the config's own fields; read-only afterwards.
 *
 * Derived providers (a request config's custom_host or inline api_key) are built the same way
 * in the request's or a kept header config's arena; routing reaches providers_derive through
 * the function pointers it is given (routing does not include providers).
 *
 * Rejected: resolving presets while the YAML is read (config.c then had to include the
 * providers module, which includes config: a loop between the two). */
#include "providers/prepare.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "providers/provider.h"
#include "util/alloc.h"

static bool valid_base_url(const char *u)
{
    return !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8);
}

static const char *const endpoint_paths[ENDPOINT__OPENAI_URLS] = {
    [ENDPOINT_CHAT_COMPLETIONS] = "/chat/completions",
    [ENDPOINT_COMPLETIONS] = "/completions",
    [ENDPOINT_EMBEDDINGS] = "/embeddings",
};

/* The headers every request to a provider carries, one "Name: value" line at a time, to
 * sink (a curl list for the config's providers, an arena list for derived ones). "Expect:"
 * stops curl from waiting for a 100 Continue on large bodies — a round trip for nothing. */
static void provider_header_lines(const provider_config *p, void (*sink)(void *ud, const char *line),
                                  void *ud)
{
    char line[2048];
    sink(ud, "Content-Type: application/json");
    sink(ud, "Expect:");
    if (p->api_key) {
        static const char *const key_prefix[] = {
            [KEY_BEARER] = "Authorization: Bearer ",
            [KEY_X_API_KEY] = "x-api-key: ",
            [KEY_API_KEY] = "api-key: ",
            [KEY_GOOGLE] = "x-goog-api-key: ",
        };
        snprintf(line, sizeof line, "%s%s", key_prefix[p->preset->key], p->api_key);
        sink(ud, line);
    }
    /* The Messages API version aigw's translation is written against. */
    if (p->preset->format == WIRE_ANTHROPIC) sink(ud, "anthropic-version: 2023-06-01");
    for (size_t i = 0; i < p->nheaders; i++) {
        snprintf(line, sizeof line, "%s: %s", p->headers[i].name, p->headers[i].value);
        sink(ud, line);
    }
}

static void curl_sink(void *ud, const char *line)
{
    struct curl_slist **list = ud, *next = curl_slist_append(*list, line);
    if (!next) {
        fprintf(stderr, "aigw: out of memory building provider headers\n");
        abort();
    }
    *list = next;
}

static void provider_urls(provider_config *p, char *(*dup)(void *ud, const char *a, const char *b), void *ud)
{
    for (int e = 0; e < ENDPOINT__OPENAI_URLS; e++)
        p->urls[e] = dup(ud, p->base_url, endpoint_paths[e]);
}

static char *heap_concat(void *ud, const char *a, const char *b)
{
    (void)ud;
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* The request URLs and the static headers of one of the config's providers. */
static void prepare_requests(provider_config *p)
{
    provider_urls(p, heap_concat, NULL);
    struct curl_slist *h = NULL;
    provider_header_lines(p, curl_sink, &h);
    p->static_headers = h;
}

typedef struct arena_list {
    arena *a;
    struct curl_slist *head, **tail;
} arena_list;

static void arena_sink(void *ud, const char *line)
{
    arena_list *l = ud;
    struct curl_slist *node = arena_alloc(l->a, sizeof *node);
    node->data = arena_strndup(l->a, line, strlen(line));
    node->next = NULL;
    *l->tail = node;
    l->tail = &node->next;
}

static char *arena_concat2(void *ud, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = arena_alloc(ud, la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

const provider_config *providers_derive(arena *a, const provider_config *base, const provider_preset *preset,
                                        const char *base_url, const char *api_key)
{
    provider_config *p = arena_alloc(a, sizeof *p);
    if (base) {
        *p = *base;
    } else {
        memset(p, 0, sizeof *p);
        p->name = (char *)preset->type;
        p->type = (char *)preset->type;
        p->preset = preset;
        p->base_url = (char *)preset->base_url;
        p->connect_timeout_ms = 10000;
        p->first_byte_timeout_ms = 120000;
        p->idle_timeout_ms = 60000;
        p->total_timeout_ms = 600000;
        if (preset->deployments) p->api_version = (char *)"2024-10-21";
    }
    if (base_url) {
        /* Another host never gets this provider's secrets: its key and its extra headers
         * stay with its own base URL. A key for the new host comes inline, or from the client. */
        p->api_key = NULL;
        p->headers = NULL;
        p->nheaders = 0;
        if (!valid_base_url(base_url)) return NULL;
        size_t len = strlen(base_url);
        while (len && base_url[len - 1] == '/')
            len--;
        p->base_url = arena_strndup(a, base_url, len);
    }
    if (!p->base_url) return NULL;
    if (api_key) p->api_key = (char *)api_key;
    provider_urls(p, arena_concat2, a);
    arena_list l = {.a = a, .head = NULL, .tail = &l.head};
    provider_header_lines(p, arena_sink, &l);
    p->static_headers = l.head;
    return p;
}

bool providers_prepare(aigw_config *cfg, char *err, size_t errlen)
{
    bool ok = true; /* every provider's mistake is reported, not only the first */
    for (size_t i = 0; i < cfg->nproviders; i++) {
        provider_config *p = &cfg->providers[i];
        const provider_preset *preset = provider_preset_find(p->type);
        if (!preset) {
            char names[512];
            provider_preset_names(names, sizeof names);
            ok = config_error_at(
                cfg, p->type_line, err, errlen,
                "unknown provider type '%s' (known: %s; openai serves any OpenAI-compatible API)", p->type,
                names);
            continue;
        }
        p->preset = preset;
        if (!p->base_url && preset->base_url) p->base_url = xstrdup(preset->base_url);
        if (!p->base_url) {
            ok = config_error_at(cfg, p->line, err, errlen, "provider '%s' (type %s) needs a 'base_url'",
                                 p->name, preset->type);
            continue;
        }
        if (preset->deployments && !p->api_version) p->api_version = xstrdup("2024-10-21");
        if (p->virtual_key && cfg->auth.mode != AUTH_ON)
            ok = config_error_at(cfg, p->virtual_key_line, err, errlen,
                                 "provider '%s': virtual_key needs an 'auth:' section (virtual keys are kept "
                                 "in its store)",
                                 p->name);
    }
    if (!ok) return false;
    for (size_t i = 0; i < cfg->nproviders; i++)
        prepare_requests(&cfg->providers[i]);
    return true;
}
