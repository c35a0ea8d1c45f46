/* config.c — YAML → aigw_config, with every mistake reported as file:line.
 *
 * The document is loaded whole with libyaml's document API (nodes carry their line), then
 * walked with tables: a section is a list of rows {key, kind, bounds, offset}; a key not in
 * the table is an error listing what is allowed (the machinery is config_read.c; the tables
 * and the sections that need code are here). This keeps each setting in one place (nginx's
 * ngx_command_t, Redis's config.c) instead of a chain of strcmp. `${VAR}` (or a whole value
 * `os.environ/VAR` or `$VAR`) is expanded in `api_key`, `base_url` and `headers`; an unset
 * variable in `api_key` leaves the provider keyless (the client's own key is forwarded) and is
 * reported once on stderr (a warning with file:line), so the example config works without
 * keys; in `base_url` it is an error naming the variable.
 *
 * What depends on the modules above config is kept as written, with its line, for them to
 * finish in the load sequence (gateway_config_load): a provider's `type:` (providers_prepare
 * resolves it to a preset), `routes:` as JSON and `default_route:` (routing_build builds the
 * trees). So config includes only util and its catalog.
 *
 * Rejected: a hand-written event-stream walker (longer, and loses the node/line pairing that
 * makes error messages precise). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <yaml.h>

#include "config/config_read.h"
#include "util/alloc.h"
#include "util/conninfo.h"
#include "util/url.h"

/* ---- the tables --------------------------------------------------------------------------- */

#define CFG(member) offsetof(aigw_config, member)
#define PRV(member) offsetof(provider_config, member)

static bool parse_listen(loader *ld, yaml_node_t *node, void *target);
static bool parse_base_url(loader *ld, yaml_node_t *node, void *target);
static bool parse_providers(loader *ld, yaml_node_t *node, void *target);
static bool parse_models(loader *ld, yaml_node_t *node, void *target);
static bool parse_provider_type(loader *ld, yaml_node_t *node, void *target);
static bool parse_headers(loader *ld, yaml_node_t *node, void *target);
static bool parse_provider_models(loader *ld, yaml_node_t *node, void *target);
static bool parse_api_key(loader *ld, yaml_node_t *node, void *target);
static bool parse_virtual_key(loader *ld, yaml_node_t *node, void *target);
static bool parse_api_version(loader *ld, yaml_node_t *node, void *target);
static bool parse_routes(loader *ld, yaml_node_t *node, void *target);
static bool parse_default_route(loader *ld, yaml_node_t *node, void *target);
static bool parse_retry_statuses(loader *ld, yaml_node_t *node, void *target);
static bool parse_allowed_hosts(loader *ld, yaml_node_t *node, void *target);
static bool parse_access_log(loader *ld, yaml_node_t *node, void *target);
static bool parse_responses_mode(loader *ld, yaml_node_t *node, void *target);
static bool parse_auth(loader *ld, yaml_node_t *node, void *target);

#define RTG(member) offsetof(aigw_config, routing.member)

static const field routing_retry_table[] = {
    {"attempts", FIELD_INT, RTG(retry.attempts), 0, 10, NULL, NULL},
    {"on_status_codes", FIELD_CUSTOM, RTG(retry.on), 0, 0, NULL, parse_retry_statuses},
    {"use_retry_after_header", FIELD_CUSTOM, RTG(retry.use_retry_after), 0, 0, NULL, config__parse_bool},
    {"base_delay", FIELD_DURATION, RTG(retry.base_delay_ms), 0, 600000, NULL, NULL},
    {"max_delay", FIELD_DURATION, RTG(retry.max_delay_ms), 0, 600000, NULL, NULL},
    {"max_wait", FIELD_DURATION, RTG(retry.max_wait_ms), 0, 3600000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field routing_budget_table[] = {
    {"percent", FIELD_INT, RTG(budget_percent), 0, 1000, NULL, NULL},
    {"min_retries", FIELD_INT, RTG(budget_min_retries), 0, 1000000, NULL, NULL},
    {"window", FIELD_DURATION, RTG(budget_window_ms), 100, 3600000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field routing_breaker_table[] = {
    {"failures", FIELD_INT, RTG(breaker_failures), 0, 1000000, NULL, NULL},
    {"failure_rate", FIELD_INT, RTG(breaker_rate_pct), 0, 100, NULL, NULL},
    {"min_requests", FIELD_INT, RTG(breaker_min_requests), 1, 1000000, NULL, NULL},
    {"window", FIELD_DURATION, RTG(breaker_window_ms), 100, 86400000, NULL, NULL},
    {"cooldown", FIELD_DURATION, RTG(breaker_cooldown_ms), 1, 86400000, NULL, NULL},
    {"probes", FIELD_INT, RTG(breaker_probes), 1, 1000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field routing_table[] = {
    {"retry", FIELD_SECTION, 0, 0, 0, routing_retry_table, NULL},
    {"retry_budget", FIELD_SECTION, 0, 0, 0, routing_budget_table, NULL},
    {"breaker", FIELD_SECTION, 0, 0, 0, routing_breaker_table, NULL},
    {"max_attempts", FIELD_INT, RTG(max_attempts), 1, ROUTE_MAX_ATTEMPTS, NULL, NULL},
    {"allowed_hosts", FIELD_CUSTOM, 0, 0, 0, NULL, parse_allowed_hosts},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field limits_table[] = {
    {"max_header_bytes", FIELD_SIZE, CFG(max_header_bytes), 1024, 1024 * 1024, NULL, NULL},
    {"max_body_bytes", FIELD_SIZE, CFG(max_body_bytes), 1024, 1LL << 30, NULL, NULL},
    {"max_response_bytes", FIELD_SIZE, CFG(max_response_bytes), 1024, 1LL << 30, NULL, NULL},
    {"max_connections", FIELD_INT, CFG(max_connections), 1, 1000000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field responses_store_table[] = {
    {"max_bytes", FIELD_SIZE, CFG(responses_store_bytes), 0, 1LL << 34, NULL, NULL},
    {"ttl", FIELD_DURATION, CFG(responses_store_ttl_ms), 1000, 30LL * 86400000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

#define TRC(member) offsetof(aigw_config, tracing.member)
static bool parse_tracing_endpoint(loader *ld, yaml_node_t *node, void *target);
static bool parse_tracing_headers(loader *ld, yaml_node_t *node, void *target);
static bool parse_ratio(loader *ld, yaml_node_t *node, void *target);
static bool parse_tracing_protocol(loader *ld, yaml_node_t *node, void *target);

static const field tracing_table[] = {
    {"endpoint", FIELD_CUSTOM, TRC(endpoint), 0, 0, NULL, parse_tracing_endpoint},
    {"headers", FIELD_CUSTOM, 0, 0, 0, NULL, parse_tracing_headers},
    {"sample_ratio", FIELD_CUSTOM, TRC(sample_ratio), 0, 0, NULL, parse_ratio},
    {"service_name", FIELD_STRING, TRC(service_name), 0, 0, NULL, NULL},
    {"protocol", FIELD_CUSTOM, TRC(json), 0, 0, NULL, parse_tracing_protocol},
    {"queue", FIELD_INT, TRC(queue_max), 1, 1000000, NULL, NULL},
    {"batch_delay", FIELD_DURATION, TRC(batch_delay_ms), 10, 60000, NULL, NULL},
    {"timeout", FIELD_DURATION, TRC(timeout_ms), 100, 60000, NULL, NULL},
    {"content", FIELD_CUSTOM, TRC(content), 0, 0, NULL, config__parse_trace_content},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static bool parse_log_format(loader *ld, yaml_node_t *node, void *target);

static const field server_timeouts_table[] = {
    {"header_read", FIELD_DURATION, CFG(header_read_timeout_ms), 10, 3600000, NULL, NULL},
    {"request_body", FIELD_DURATION, CFG(request_body_timeout_ms), 10, 3600000, NULL, NULL},
    {"keepalive_idle", FIELD_DURATION, CFG(keepalive_idle_timeout_ms), 10, 86400000, NULL, NULL},
    {"drain", FIELD_DURATION, CFG(drain_timeout_ms), 0, 3600000, NULL, NULL},
    {"store", FIELD_DURATION, CFG(store_timeout_ms), 10, 600000, NULL, NULL},
    {"admin", FIELD_DURATION, CFG(admin_timeout_ms), 10, 3600000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field top_table[] = {
    {"listen", FIELD_CUSTOM, 0, 0, 0, NULL, parse_listen},
    {"workers", FIELD_INT, CFG(workers), 1, 256, NULL, NULL},
    {"access_log", FIELD_CUSTOM, CFG(access_log), 0, 0, NULL, parse_access_log},
    {"catalog", FIELD_STRING, CFG(catalog_path), 0, 0, NULL, NULL},
    {"limits", FIELD_SECTION, 0, 0, 0, limits_table, NULL},
    {"responses_store", FIELD_SECTION, 0, 0, 0, responses_store_table, NULL},
    {"timeouts", FIELD_SECTION, 0, 0, 0, server_timeouts_table, NULL},
    {"providers", FIELD_CUSTOM, 0, 0, 0, NULL, parse_providers},
    {"models", FIELD_CUSTOM, 0, 0, 0, NULL, parse_models},
    {"routing", FIELD_SECTION, 0, 0, 0, routing_table, NULL},
    {"routes", FIELD_CUSTOM, 0, 0, 0, NULL, parse_routes},
    {"default_route", FIELD_CUSTOM, 0, 0, 0, NULL, parse_default_route},
    {"auth", FIELD_CUSTOM, 0, 0, 0, NULL, parse_auth},
    {"tracing", FIELD_SECTION, 0, 0, 0, tracing_table, NULL},
    {"log_format", FIELD_CUSTOM, CFG(log_json), 0, 0, NULL, parse_log_format},
    {"alerts", FIELD_SECTION, 0, 0, 0, config__alerts_table, NULL},
    {"request_log", FIELD_CUSTOM, CFG(request_log), 0, 0, NULL, config__parse_request_log},
    {"cache", FIELD_CUSTOM, 0, 0, 0, NULL, config__parse_cache},
    {"router", FIELD_CUSTOM, 0, 0, 0, NULL, config__parse_router},
    {"external_router", FIELD_CUSTOM, 0, 0, 0, NULL, config__parse_external_router},
    {"prompts", FIELD_CUSTOM, 0, 0, 0, NULL, config__parse_prompts},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field provider_timeouts_table[] = {
    {"connect", FIELD_DURATION, PRV(connect_timeout_ms), 1, 600000, NULL, NULL},
    {"first_byte", FIELD_DURATION, PRV(first_byte_timeout_ms), 1, 3600000, NULL, NULL},
    {"idle", FIELD_DURATION, PRV(idle_timeout_ms), 1, 3600000, NULL, NULL},
    {"total", FIELD_DURATION, PRV(total_timeout_ms), 1, 86400000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field provider_table[] = {
    {"name", FIELD_STRING, PRV(name), 0, 0, NULL, NULL},
    {"type", FIELD_CUSTOM, 0, 0, 0, NULL, parse_provider_type},
    {"base_url", FIELD_CUSTOM, PRV(base_url), 0, 0, NULL, parse_base_url},
    {"api_version", FIELD_CUSTOM, PRV(api_version), 0, 0, NULL, parse_api_version},
    {"api_key", FIELD_CUSTOM, 0, 0, 0, NULL, parse_api_key},
    {"virtual_key", FIELD_CUSTOM, 0, 0, 0, NULL, parse_virtual_key},
    {"headers", FIELD_CUSTOM, 0, 0, 0, NULL, parse_headers},
    {"models", FIELD_CUSTOM, 0, 0, 0, NULL, parse_provider_models},
    {"responses", FIELD_CUSTOM, 0, 0, 0, NULL, parse_responses_mode},
    {"timeouts", FIELD_SECTION, 0, 0, 0, provider_timeouts_table, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

#define AUTH(member) offsetof(auth_settings, member)

static bool parse_master_key(loader *ld, yaml_node_t *node, void *target);
static bool parse_auth_secret(loader *ld, yaml_node_t *node, void *target);
static bool parse_vault_key(loader *ld, yaml_node_t *node, void *target);
static bool parse_auth_store(loader *ld, yaml_node_t *node, void *target);

static bool parse_limits_backend(loader *ld, yaml_node_t *node, void *target);
static bool parse_on_redis_error(loader *ld, yaml_node_t *node, void *target);

static const field auth_limits_table[] = {
    {"backend", FIELD_CUSTOM, AUTH(limits.backend), 0, 0, NULL, parse_limits_backend},
    {"redis", FIELD_STRING, AUTH(limits.redis), 0, 0, NULL, NULL},
    {"timeout", FIELD_DURATION, AUTH(limits.timeout_ms), 1, 10000, NULL, NULL},
    {"on_redis_error", FIELD_CUSTOM, AUTH(limits.fail_closed), 0, 0, NULL, parse_on_redis_error},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const field auth_table[] = {
    {"master_key", FIELD_CUSTOM, 0, 0, 0, NULL, parse_master_key},
    {"limits", FIELD_SECTION, 0, 0, 0, auth_limits_table, NULL},
    {"store", FIELD_CUSTOM, AUTH(store_path), 0, 0, NULL, parse_auth_store},
    {"secret", FIELD_CUSTOM, AUTH(secret), 0, 0, NULL, parse_auth_secret},
    {"secret_file", FIELD_STRING, AUTH(secret_file), 0, 0, NULL, NULL},
    {"vault_key", FIELD_CUSTOM, 0, 0, 0, NULL, parse_vault_key},
    {"vault_key_file", FIELD_STRING, AUTH(vault_key_file), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Custom parsers receive the struct being filled (base + offset 0 for those listed with 0). */

static bool parse_listen(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    if (!config__require_scalar(ld, node, "listen")) return false;
    const char *s = config__scalar(node);
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return config__fail_at(ld, node, "'listen' must be HOST:PORT (e.g. 127.0.0.1:8080)");
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 0 || port > 65535 || end == colon + 1)
        return config__fail_at(ld, node, "'listen': bad port '%s'", colon + 1);
    const char *host = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') host++, hlen -= 2;
    free(cfg->listen_host);
    cfg->listen_host = xstrndup(host, hlen);
    cfg->listen_port = (int)port;
    return true;
}

/* stdout, stderr, off or a file path: anything but empty. */
static bool parse_access_log(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "access_log")) return false;
    if (!*config__scalar(node))
        return config__fail_at(ld, node, "'access_log' must be stdout, stderr, off or a file path");
    char **dst = target;
    free(*dst);
    *dst = xstrdup(config__scalar(node));
    return true;
}

/* The master key can do everything (the admin API included), so a short one is refused: it would
 * be guessed. An unset variable leaves auth on with no master key (noted by aigw serve). */
#define MASTER_KEY_MIN 16
#define MASTER_KEY_MAX 512

static bool parse_master_key(loader *ld, yaml_node_t *node, void *target)
{
    auth_settings *a = target;
    if (!config__require_scalar(ld, node, "master_key")) return false;
    char *unset;
    char *key = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!key) return false;
    free(a->master_key);
    free(a->master_key_env);
    a->master_key = NULL;
    a->master_key_env = unset;
    if (unset || !*key) {
        free(key);
        return true;
    }
    size_t len = strlen(key);
    bool printable = true;
    for (size_t i = 0; i < len; i++)
        printable &= key[i] > 0x20 && key[i] < 0x7f;
    if (len < MASTER_KEY_MIN || len > MASTER_KEY_MAX || !printable) {
        free(key);
        return config__fail_at(ld, node,
                               "auth.master_key must be %d to %d visible ASCII characters without spaces "
                               "(e.g. the output of: openssl rand -hex 32)",
                               MASTER_KEY_MIN, MASTER_KEY_MAX);
    }
    a->master_key = key;
    return true;
}

/* The digest key's source: an unset variable is an error (keys made with one secret do not
 * match under another, so a silent fallback would lock every client out). */
static bool parse_auth_secret(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "secret")) return false;
    char *unset;
    char *value = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!value) return false;
    if (unset || strlen(value) < MASTER_KEY_MIN) {
        if (unset)
            config__fail_at(ld, node, "auth.secret: environment variable %s is not set", unset);
        else
            config__fail_at(ld, node, "auth.secret must be at least %d characters", MASTER_KEY_MIN);
        free(unset);
        free(value);
        return false;
    }
    char **dst = target;
    free(*dst);
    *dst = value;
    return true;
}

static bool parse_limits_backend(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "backend")) return false;
    const char *v = config__scalar(node);
    if (!strcmp(v, "memory"))
        *(limits_backend_kind *)target = LIMITS_BACKEND_MEMORY;
    else if (!strcmp(v, "redis"))
        *(limits_backend_kind *)target = LIMITS_BACKEND_REDIS;
    else
        return config__fail_at(ld, node, "'auth.limits.backend' must be memory or redis (got '%.64s')", v);
    return true;
}

static bool parse_on_redis_error(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "on_redis_error")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "open") && strcmp(v, "closed"))
        return config__fail_at(ld, node,
                               "'auth.limits.on_redis_error' must be open (admit what cannot be counted) or "
                               "closed (refuse it), got '%.64s'",
                               v);
    *(bool *)target = !strcmp(v, "closed");
    return true;
}

/* The virtual keys' master secret. Its form (32 bytes in hex or base64) is checked when the
 * store opens (store/vault.h, which config does not include). An unset variable leaves it
 * unset: aigw then starts only while the store holds no virtual key, and says which variable. */
static bool parse_vault_key(loader *ld, yaml_node_t *node, void *target)
{
    auth_settings *a = target;
    if (!config__require_scalar(ld, node, "vault_key")) return false;
    char *unset;
    char *value = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!value) return false;
    free(a->vault_key);
    free(a->vault_key_env);
    a->vault_key = NULL;
    a->vault_key_env = unset;
    if (unset || !*value) {
        free(value);
        return true;
    }
    a->vault_key = value;
    return true;
}

/* A file path, or a PostgreSQL connection string whose ${VAR}s (a password, typically) are
 * expanded here; an unset variable is an error, never an empty password. The value is not
 * echoed: it may hold a password. */
static bool parse_auth_store(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "store")) return false;
    char *unset;
    char *value = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!value) return false;
    if (unset || !*value) {
        if (unset)
            config__fail_at(ld, node, "auth.store: environment variable %s is not set", unset);
        else
            config__fail_at(ld, node, "auth.store must name a file or a PostgreSQL database");
        free(unset);
        free(value);
        return false;
    }
    char **dst = target;
    free(*dst);
    *dst = value;
    return true;
}

/* `auth: off`, or a mapping of auth_table's keys. */
static bool parse_auth(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    auth_settings *a = &cfg->auth;
    a->line = (int)node->start_mark.line + 1;
    if (node->type == YAML_SCALAR_NODE) {
        const char *v = config__scalar(node);
        if (strcmp(v, "off") && strcmp(v, "false"))
            return config__fail_at(
                ld, node, "'auth' must be off or a mapping such as {master_key: \"${AIGW_MASTER_KEY}\"}");
        a->mode = AUTH_OFF;
        return true;
    }
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(
            ld, node, "'auth' must be off or a mapping such as {master_key: \"${AIGW_MASTER_KEY}\"}");
    a->mode = AUTH_ON;
    a->limits.timeout_ms = 50;
    if (!config__apply_section(ld, node, "auth", auth_table, a)) return false;
    if (a->limits.backend == LIMITS_BACKEND_REDIS && !a->limits.redis)
        return config__fail_at(ld, node,
                               "auth.limits.backend is redis but auth.limits.redis is not given "
                               "(e.g. redis: redis://127.0.0.1:6379/0 or unix:/run/redis/redis.sock)");
    /* keys' digests must match on every instance sharing the database, and a secret file
     * made beside a connection string has nowhere to go */
    if (conninfo_is_postgres(a->store_path) && !a->secret && !a->secret_file)
        return config__fail_at(ld, node,
                               "auth.store is a PostgreSQL database: give every instance that shares it the "
                               "same auth.secret (e.g. secret: ${AIGW_SECRET}) or auth.secret_file");
    return true;
}

bool config__parse_bool(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "value")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "true") && strcmp(v, "false"))
        return config__fail_at(ld, node, "expected true or false, got '%s'", v);
    *(bool *)target = !strcmp(v, "true");
    return true;
}

static bool parse_retry_statuses(loader *ld, yaml_node_t *node, void *target)
{
    status_set *set = target;
    if (node->type != YAML_SEQUENCE_NODE)
        return config__fail_at(ld, node, "'on_status_codes' must be a list");
    memset(set, 0, sizeof *set);
    bool ok = true;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
        long long code;
        if (item->type != YAML_SCALAR_NODE || !config__parse_int(config__scalar(item), &code) || code < 100 ||
            code > 599)
            ok = config__fail_at(ld, item, "'on_status_codes' entries must be HTTP status codes (100-599)");
        else
            set->bits[code / 64] |= 1ULL << (code % 64);
    }
    return ok;
}

/* Entries are URL prefixes (scheme, host, port, path), kept normalised so a custom_host is
 * compared in the same spelling. A bare host allowed every port and every path of it, which
 * let a client reach whatever else listened there: it is refused with the way to write it. */
static bool parse_allowed_hosts(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    if (!config__parse_string_list(ld, node, "allowed_hosts", &cfg->routing.allowed_hosts,
                                   &cfg->routing.nallowed_hosts))
        return false; /* the entries no longer line up with the nodes: checked once all are names */
    bool ok = true;
    for (size_t i = 0; i < cfg->routing.nallowed_hosts; i++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, node->data.sequence.items.start[i]);
        char url[1024];
        const char *why;
        if (!url_normalize(cfg->routing.allowed_hosts[i], url, sizeof url, &why)) {
            ok = config__fail_at(
                ld, item,
                "'allowed_hosts' entries are URL prefixes such as 'https://api.example.com/v1' or "
                "'http://127.0.0.1:8080' (scheme, host, port, path): %s",
                why);
            continue;
        }
        free(cfg->routing.allowed_hosts[i]);
        cfg->routing.allowed_hosts[i] = xstrdup(url);
    }
    return ok;
}

static bool parse_routes(loader *ld, yaml_node_t *node, void *target)
{
    (void)target;
    if (node->type != YAML_SEQUENCE_NODE)
        return config__fail_at(ld, node, "'routes' must be a list of {name, strategy, targets, …}");
    ld->routes = node;
    return true;
}

static bool parse_default_route(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    if (!config__require_scalar(ld, node, "default_route")) return false;
    free(cfg->default_route_name);
    cfg->default_route_name = xstrdup(config__scalar(node));
    cfg->default_route_line = (int)node->start_mark.line + 1;
    return true;
}

/* Only noted here: which types exist is the providers module's knowledge (providers_prepare
 * refuses an unknown one, naming this line). */
static bool parse_provider_type(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    if (!config__require_scalar(ld, node, "type")) return false;
    free(p->type);
    p->type = xstrdup(config__scalar(node));
    p->type_line = (int)node->start_mark.line + 1;
    return true;
}

/* responses: native | translate — how OpenAI Responses API requests reach the provider. */
static bool parse_responses_mode(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    if (!config__require_scalar(ld, node, "responses")) return false;
    const char *s = config__scalar(node);
    if (!strcmp(s, "native"))
        p->responses = RESPONSES_NATIVE;
    else if (!strcmp(s, "translate"))
        p->responses = RESPONSES_TRANSLATE;
    else
        return config__fail_at(ld, node,
                               "'responses' is native (the provider serves /responses: bytes forwarded) or "
                               "translate (to its chat API), not '%s'",
                               s);
    return true;
}

static bool parse_api_key(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    if (!config__require_scalar(ld, node, "api_key")) return false;
    char *unset;
    char *key = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!key) return false;
    free(p->api_key);
    free(p->api_key_env);
    p->api_key = NULL;
    p->api_key_env = unset;
    p->api_key_line = (int)node->start_mark.line + 1;
    if (*key && !unset)
        p->api_key = key;
    else
        free(key);
    return true;
}

/* A credential from the store's virtual keys by name (docs/access.md): the file then holds no
 * secret. Not with api_key (which one would be sent?). */
static bool parse_virtual_key(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    if (!config__require_scalar(ld, node, "virtual_key")) return false;
    const char *name = config__scalar(node);
    size_t len = strlen(name);
    if (!len || len > 256 || strpbrk(name, "\r\n\t"))
        return config__fail_at(ld, node, "'virtual_key' must name a virtual key (1 to 256 characters)");
    free(p->virtual_key);
    p->virtual_key = xstrdup(name[0] == '@' ? name + 1 : name);
    p->virtual_key_line = (int)node->start_mark.line + 1;
    return true;
}

/* A string with ${VAR} expanded (base_url, api_version: an Azure resource is often given as
 * AZURE_API_BASE); unlike a key, an unset variable is an error, since nothing could stand in. */
static bool parse_env_string(loader *ld, yaml_node_t *node, void *target, const char *key)
{
    if (!config__require_scalar(ld, node, key)) return false;
    char *unset;
    char *value = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!value) return false;
    if (unset) {
        config__fail_at(ld, node, "%s: environment variable %s is not set", key, unset);
        free(unset);
        free(value);
        return false;
    }
    char **dst = target;
    free(*dst);
    *dst = value;
    return true;
}

static bool parse_base_url(loader *ld, yaml_node_t *node, void *target)
{
    return parse_env_string(ld, node, target, "base_url");
}

static bool parse_api_version(loader *ld, yaml_node_t *node, void *target)
{
    return parse_env_string(ld, node, target, "api_version");
}

/* A `headers:` mapping of name: value (values may be ${ENV}) into *headers; a second one in the
 * same place replaces the first. */
bool config__read_header_pairs(loader *ld, yaml_node_t *node, header_pair **headers, size_t *nheaders)
{
    if (node->type != YAML_MAPPING_NODE)
        return config__fail_at(ld, node, "'headers' must be a mapping of name: value");
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    config_free_headers(*headers, *nheaders);
    header_pair *out = *headers = xcalloc(n ? n : 1, sizeof *out);
    *nheaders = 0;
    bool ok = true;
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&ld->doc, pr->value);
        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            ok = config__fail_at(ld, k, "'headers' entries must be name: value");
            continue;
        }
        const char *name = config__scalar(k);
        if (!*name || name[strcspn(name, " \t\r\n:")]) {
            ok = config__fail_at(ld, k, "bad header name '%s'", name);
            continue;
        }
        char *unset;
        char *value = config__expand_env(ld, v, config__scalar(v), &unset);
        if (!value) {
            ok = false;
            continue;
        }
        free(unset);
        if (strpbrk(value, "\r\n")) {
            free(value);
            ok = config__fail_at(ld, v, "header '%s' value contains a line break", name);
            continue;
        }
        out[*nheaders].name = xstrdup(name);
        out[*nheaders].value = value;
        (*nheaders)++;
    }
    return ok;
}

void config_free_headers(header_pair *headers, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        free(headers[j].name);
        free(headers[j].value);
    }
    free(headers);
}

char **config_header_lines(const header_pair *headers, size_t n)
{
    char **lines = xcalloc(n ? n : 1, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(headers[i].name) + strlen(headers[i].value) + 3;
        lines[i] = xmalloc(len);
        snprintf(lines[i], len, "%s: %s", headers[i].name, headers[i].value);
    }
    return lines;
}

void config_free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static bool parse_headers(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    return config__read_header_pairs(ld, node, &p->headers, &p->nheaders);
}

static bool parse_tracing_headers(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    return config__read_header_pairs(ld, node, &cfg->tracing.headers, &cfg->tracing.nheaders);
}

/* An http:// or https:// URL (${ENV} expanded) into *(char **)target; what names it in the error. */
bool config__read_http_url(loader *ld, yaml_node_t *node, void *target, const char *what)
{
    if (!config__require_scalar(ld, node, what)) return false;
    char *unset;
    char *url = config__expand_env(ld, node, config__scalar(node), &unset);
    if (!url) return false;
    free(unset);
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        free(url);
        return config__fail_at(ld, node, "%s must be an http:// or https:// URL", what);
    }
    free(*(char **)target);
    *(char **)target = url;
    return true;
}

static bool parse_tracing_endpoint(loader *ld, yaml_node_t *node, void *target)
{
    return config__read_http_url(ld, node, target, "tracing.endpoint (OTLP/HTTP)");
}

/* A number from 0 to 1. */
static bool parse_ratio(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "sample_ratio")) return false;
    const char *s = config__scalar(node);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 1))
        return config__fail_at(ld, node, "expected a number from 0 to 1, got '%s'", s);
    *(double *)target = v;
    return true;
}

/* OTLP/HTTP's two encodings, named as OTEL_EXPORTER_OTLP_PROTOCOL names them. */
static bool parse_tracing_protocol(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "protocol")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "http/protobuf") && strcmp(v, "http/json"))
        return config__fail_at(ld, node, "tracing.protocol is http/protobuf or http/json, got '%s'", v);
    *(bool *)target = !strcmp(v, "http/json");
    return true;
}

static bool parse_log_format(loader *ld, yaml_node_t *node, void *target)
{
    if (!config__require_scalar(ld, node, "log_format")) return false;
    const char *v = config__scalar(node);
    if (strcmp(v, "text") && strcmp(v, "json"))
        return config__fail_at(ld, node, "log_format is text or json, got '%s'", v);
    *(bool *)target = !strcmp(v, "json");
    return true;
}

static bool parse_provider_models(loader *ld, yaml_node_t *node, void *target)
{
    provider_config *p = target;
    return config__parse_string_list(ld, node, "models", &p->models, &p->nmodels);
}

static bool valid_base_url(const char *u)
{
    return !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8);
}

static void provider_free(provider_config *p);

/* One `providers:` entry into p; false after recording its mistakes. The checks of the whole
 * entry (name, base_url, a name used twice) are made only when its keys were read, so a
 * mistake in a key is not echoed by them. */
static bool read_provider(loader *ld, aigw_config *cfg, yaml_node_t *item, provider_config *p)
{
    p->line = (int)item->start_mark.line + 1;
    p->connect_timeout_ms = 10000;
    p->first_byte_timeout_ms = 120000;
    p->idle_timeout_ms = 60000;
    p->total_timeout_ms = 600000;
    if (!config__apply_section(ld, item, "provider", provider_table, p)) return false;
    if (!p->name || !*p->name) return config__fail_at(ld, item, "provider needs a 'name'");
    if (p->virtual_key && (p->api_key || p->api_key_env))
        return config__fail_at(
            ld, item, "provider '%s' has both api_key and virtual_key: the key comes from one of them",
            p->name);
    /* No type: any OpenAI-compatible server, which then needs its base_url. A type's
     * documented base URL is filled in by providers_prepare. */
    if (!p->type && !p->base_url)
        return config__fail_at(
            ld, item, "provider '%s' needs a 'base_url' (or a 'type' such as openai or groq)", p->name);
    if (!p->type) {
        p->type = xstrdup("openai");
        p->type_line = p->line;
    }
    if (p->base_url && !valid_base_url(p->base_url))
        return config__fail_at(ld, item, "provider '%s': base_url must start with http:// or https://",
                               p->name);
    size_t blen = p->base_url ? strlen(p->base_url) : 0;
    while (blen && p->base_url[blen - 1] == '/')
        p->base_url[--blen] = '\0';
    /* No `models:` at all: the provider serves whatever `type/model` names ask of it; an
     * empty list: only what aliases and routes send it. */
    p->any_model = p->models == NULL;
    for (size_t j = 0; j < cfg->nproviders; j++)
        if (!strcmp(cfg->providers[j].name, p->name))
            return config__fail_at(ld, item, "provider name '%s' is used twice (first at line %d)", p->name,
                                   cfg->providers[j].line);
    return true;
}

/* Entries with a mistake are left out of cfg->providers (so what is there is whole), their
 * names noted in the loader: an alias naming one is then not reported as undefined. */
static bool parse_providers(loader *ld, yaml_node_t *node, void *target)
{
    aigw_config *cfg = target;
    if (node->type != YAML_SEQUENCE_NODE) {
        ld->broken_provider_list = true;
        return config__fail_at(ld, node, "'providers' must be a list");
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    cfg->providers = xcalloc(n ? n : 1, sizeof *cfg->providers);
    bool ok = true;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
        provider_config *p = &cfg->providers[cfg->nproviders];
        if (read_provider(ld, cfg, item, p)) {
            cfg->nproviders++;
            continue;
        }
        ok = false;
        if (p->name && *p->name) {
            if (!ld->broken_providers) ld->broken_providers = xcalloc(n, sizeof *ld->broken_providers);
            ld->broken_providers[ld->nbroken_providers++] = xstrdup(p->name);
        } else {
            ld->broken_unnamed_provider = true;
        }
        provider_free(p);
        memset(p, 0, sizeof *p);
    }
    return ok;
}

/* Whether an alias naming provider `name`, which is not defined, may name a provider entry
 * that had a mistake (then only that mistake is reported). */
static bool provider_maybe_broken(const loader *ld, const char *name)
{
    if (ld->broken_provider_list || ld->broken_unnamed_provider) return true;
    for (size_t i = 0; i < ld->nbroken_providers; i++)
        if (!strcmp(ld->broken_providers[i], name)) return true;
    return false;
}

static const field alias_table[] = {
    {"name", FIELD_STRING, offsetof(alias_entry, name), 0, 0, NULL, NULL},
    {"provider", FIELD_STRING, offsetof(alias_entry, provider), 0, 0, NULL, NULL},
    {"model", FIELD_STRING, offsetof(alias_entry, model), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Aliases are parsed into a side list and resolved after all providers are known, so the
 * order of the two sections in the file does not matter. */
static bool parse_models(loader *ld, yaml_node_t *node, void *target)
{
    (void)target;
    alias_list *aliases = &ld->aliases;
    if (node->type != YAML_SEQUENCE_NODE)
        return config__fail_at(ld, node, "'models' must be a list of {name, provider, model}");
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    aliases->items = xcalloc(n ? n : 1, sizeof *aliases->items);
    bool ok = true;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
        alias_entry *a = &aliases->items[aliases->count];
        a->line = (int)item->start_mark.line + 1;
        bool entry_ok = config__apply_section(ld, item, "model", alias_table, a);
        if (entry_ok && (!a->name || !*a->name))
            entry_ok = config__fail_at(ld, item, "model alias needs a 'name'");
        else if (entry_ok && !a->provider)
            entry_ok = config__fail_at(ld, item, "model alias '%s' needs a 'provider'", a->name);
        if (entry_ok) {
            aliases->count++;
            continue;
        }
        /* Left out, so the aliases kept are whole. */
        ok = false;
        free(a->name);
        free(a->provider);
        free(a->model);
        memset(a, 0, sizeof *a);
    }
    return ok;
}

/* ---- assembling --------------------------------------------------------------------------- */

static int route_cmp(const void *a, const void *b)
{
    const model_route *x = a, *y = b;
    int c = strcmp(x->public_name, y->public_name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static bool build_routes(loader *ld, aigw_config *cfg, alias_list *aliases, yaml_node_t *root)
{
    size_t total = aliases->count;
    for (size_t i = 0; i < cfg->nproviders; i++)
        total += cfg->providers[i].nmodels;
    cfg->routes = xcalloc(total ? total : 1, sizeof *cfg->routes);
    cfg->nroutes = 0;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        provider_config *p = &cfg->providers[i];
        for (size_t j = 0; j < p->nmodels; j++) {
            model_route *r = &cfg->routes[cfg->nroutes++];
            r->public_name = xstrdup(p->models[j]);
            r->provider = p;
            r->upstream_model = xstrdup(p->models[j]);
            r->upstream_model_len = strlen(r->upstream_model);
            r->max_output_tokens = CONFIG_DEFAULT_MAX_OUTPUT_TOKENS;
        }
    }
    for (size_t i = 0; i < aliases->count; i++) {
        alias_entry *a = &aliases->items[i];
        const provider_config *p = NULL;
        for (size_t j = 0; j < cfg->nproviders; j++)
            if (!strcmp(cfg->providers[j].name, a->provider)) p = &cfg->providers[j];
        if (!p) {
            if (!provider_maybe_broken(ld, a->provider))
                config__fail_at(ld, &(yaml_node_t){.start_mark = {.line = (size_t)a->line - 1}},
                                "model alias '%s' names provider '%s', which is not defined", a->name,
                                a->provider);
            continue;
        }
        model_route *r = &cfg->routes[cfg->nroutes++];
        r->public_name = xstrdup(a->name);
        r->provider = p;
        r->upstream_model = xstrdup(a->model ? a->model : a->name);
        r->upstream_model_len = strlen(r->upstream_model);
        r->max_output_tokens = CONFIG_DEFAULT_MAX_OUTPUT_TOKENS;
        r->is_alias = true;
    }
    /* Stable for equal names (a name several providers serve keeps the file's order). */
    for (size_t i = 0; i < cfg->nroutes; i++)
        cfg->routes[i].order = i;
    qsort(cfg->routes, cfg->nroutes, sizeof *cfg->routes, route_cmp);
    return true;
}

/* path as written in the config: relative ones are taken from the config file's folder.
 * Returns a malloc'd path. */
static char *path_beside_config(const aigw_config *cfg, const char *path)
{
    if (path[0] == '/') return xstrdup(path);
    const char *slash = strrchr(cfg->path, '/');
    size_t dlen = slash ? (size_t)(slash - cfg->path) + 1 : 0;
    size_t plen = strlen(path);
    char *out = xmalloc(dlen + plen + 1);
    memcpy(out, cfg->path, dlen);
    memcpy(out + dlen, path, plen + 1);
    return out;
}

/* `auth:`'s files beside the config unless written absolute; the store is aigw.db there when
 * not named (a PostgreSQL connection string stays as written). */
static void resolve_auth_paths(aigw_config *cfg)
{
    auth_settings *a = &cfg->auth;
    if (a->mode != AUTH_ON) return;
    if (!conninfo_is_postgres(a->store_path)) {
        char *store = path_beside_config(cfg, a->store_path ? a->store_path : "aigw.db");
        free(a->store_path);
        a->store_path = store;
    }
    if (a->secret_file) {
        char *file = path_beside_config(cfg, a->secret_file);
        free(a->secret_file);
        a->secret_file = file;
    }
    if (a->vault_key_file) {
        char *file = path_beside_config(cfg, a->vault_key_file);
        free(a->vault_key_file);
        a->vault_key_file = file;
    }
}

/* The catalog (a `catalog:` path is relative to the config file), and each route's entry:
 * its limits decide max_tokens where a provider requires one. */
static bool load_catalog(loader *ld, aigw_config *cfg, yaml_node_t *root)
{
    char *path = cfg->catalog_path ? path_beside_config(cfg, cfg->catalog_path) : NULL;
    char msg[512];
    bool ok = catalog_load(&cfg->catalog, path ? path : cfg->catalog_path, msg, sizeof msg);
    free(path);
    if (!ok) return config__fail_at(ld, root, "catalog: %s", msg);
    if (ld->nerrors) return true; /* the config is refused: its routes are not looked up */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        model_route *r = &cfg->routes[i];
        r->catalog = catalog_find(&cfg->catalog, r->provider->type, r->upstream_model);
        if (r->catalog && r->catalog->max_output) r->max_output_tokens = r->catalog->max_output;
    }
    return true;
}

/* A YAML node as JSON, for the route builder (one schema for the file and the headers).
 * Plain scalars that read as numbers, booleans or null become those; quoted ones stay strings. */
static json_t *yaml_to_json(loader *ld, yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
            if (k->type != YAML_SCALAR_NODE) {
                json_decref(o);
                config__fail_at(ld, k, "keys must be names");
                return NULL;
            }
            json_t *v = yaml_to_json(ld, yaml_document_get_node(&ld->doc, p->value));
            if (!v) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, config__scalar(k), v);
        }
        return o;
    }
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
             it++) {
            json_t *v = yaml_to_json(ld, yaml_document_get_node(&ld->doc, *it));
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case YAML_SCALAR_NODE: {
        const char *v = config__scalar(node);
        if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(v);
        if (!strcmp(v, "true")) return json_true();
        if (!strcmp(v, "false")) return json_false();
        if (!strcmp(v, "null") || !strcmp(v, "~")) return json_null();
        char *end;
        errno = 0;
        long long i = strtoll(v, &end, 10);
        if (*v && !*end && !errno) return json_integer(i);
        double d = strtod(v, &end);
        if (*v && !*end) return json_real(d);
        return json_string(v);
    }
    default: config__fail_at(ld, node, "unreadable value"); return NULL;
    }
}

static int source_cmp(const void *a, const void *b)
{
    const route_source *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* `routes:` as JSON, one source per route, for routing_build() (which builds the trees from
 * the same schema as a request's config header, and names their lines from here). */
static bool read_routes(loader *ld, aigw_config *cfg)
{
    yaml_node_t *list = ld->routes;
    size_t n = list ? (size_t)(list->data.sequence.items.top - list->data.sequence.items.start) : 0;
    cfg->route_sources = xcalloc(n ? n : 1, sizeof *cfg->route_sources);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(&ld->doc, list->data.sequence.items.start[i]);
        json_t *j = yaml_to_json(ld, item);
        if (!j) continue; /* recorded; the next route is read */
        const char *jname = json_string_value(json_object_get(j, "name"));
        if (!json_is_object(j) || !jname || !*jname) {
            json_decref(j);
            config__fail_at(ld, item, "a route needs a 'name'");
            continue;
        }
        route_source *src = &cfg->route_sources[cfg->nroute_sources++];
        src->name = xstrdup(jname);
        src->line = (int)item->start_mark.line + 1;
        /* `name` names the route; the rest is the config schema's root node. */
        json_object_del(j, "name");
        src->json = j;
    }
    qsort(cfg->route_sources, cfg->nroute_sources, sizeof *cfg->route_sources, source_cmp);
    bool ok = true;
    for (size_t i = 1; i < cfg->nroute_sources; i++)
        if (!strcmp(cfg->route_sources[i].name, cfg->route_sources[i - 1].name)) {
            const route_source *again = &cfg->route_sources[i];
            ok = config__fail_at(ld, &(yaml_node_t){.start_mark = {.line = (size_t)again->line - 1}},
                                 "route '%s' is defined twice", again->name);
        }
    return ok;
}

static void alias_list_free(alias_list *aliases)
{
    for (size_t i = 0; i < aliases->count; i++) {
        free(aliases->items[i].name);
        free(aliases->items[i].provider);
        free(aliases->items[i].model);
    }
    free(aliases->items);
}

aigw_config *config_load(const char *path, char *err, size_t errlen)
{
    loader ld = {.path = path};
    aigw_config *cfg = xcalloc(1, sizeof *cfg);
    bool have_doc = false;

    atomic_init(&cfg->refs, 1);

    cfg->path = xstrdup(path);
    cfg->listen_host = xstrdup("127.0.0.1");
    cfg->listen_port = 8080;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cores > 0 ? (int)(cores > 256 ? 256 : cores) : 1;
    cfg->max_header_bytes = 64 * 1024;
    cfg->max_body_bytes = 16 * 1024 * 1024;
    cfg->max_response_bytes = 64 * 1024 * 1024;
    cfg->responses_store_bytes = 64 * 1024 * 1024;
    cfg->responses_store_ttl_ms = 3600 * 1000;
    config__cache_defaults(cfg);
    config__external_router_defaults(&cfg->external_router);
    cfg->alerts = (alerts_config){.min_interval_ms = 300000, .timeout_ms = 5000};
    cfg->tracing =
        (tracing_settings){.sample_ratio = 1, .queue_max = 4096, .batch_delay_ms = 1000, .timeout_ms = 5000};
    cfg->max_connections = 10000;
    cfg->header_read_timeout_ms = 10000;
    cfg->request_body_timeout_ms = 120000;
    cfg->keepalive_idle_timeout_ms = 60000;
    cfg->drain_timeout_ms = 30000;
    cfg->store_timeout_ms = 2000;
    cfg->admin_timeout_ms = 60000;
    cfg->access_log = xstrdup("stdout");
    config_routing_defaults(&cfg->routing);
    config__request_log_defaults(&cfg->request_log);
    arena_init(&cfg->arena, 16 * 1024);

    /* The text is kept (cfg->source): the admin API shows the config that runs, not the file as
     * it may have been edited since. */
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    cfg->source = xmalloc(CONFIG_SOURCE_MAX + 1);
    cfg->source_len = fread(cfg->source, 1, CONFIG_SOURCE_MAX + 1, f);
    bool unread = ferror(f);
    fclose(f);
    if (unread || cfg->source_len > CONFIG_SOURCE_MAX) {
        snprintf(err, errlen, unread ? "%s: cannot read: %s" : "%s: larger than 4 MiB%s", path,
                 unread ? strerror(errno) : "");
        goto fail;
    }
    cfg->source[cfg->source_len] = '\0';
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)cfg->source, cfg->source_len);
    if (!yaml_parser_load(&parser, &ld.doc)) {
        snprintf(err, errlen, "%s:%lu: YAML error: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unreadable");
        yaml_parser_delete(&parser);
        goto fail;
    }
    yaml_parser_delete(&parser);
    have_doc = true;

    yaml_node_t *root = yaml_document_get_root_node(&ld.doc);
    if (!root) {
        snprintf(err, errlen, "%s:1: the file is empty", path);
        goto fail;
    }
    /* Every step runs even after a mistake (each skips what depends on a broken part), so one
     * run reports them all; any mistake refuses the config at the end. */
    if (!config__apply_section(&ld, root, "the top level", top_table, cfg) &&
        root->type != YAML_MAPPING_NODE) {
        config__errors_write(&ld, err, errlen); /* nothing else could be read */
        goto fail;
    }
    /* Only when nothing else is wrong: a misspelt or broken `providers:` is the mistake then,
     * and this would echo it. */
    if (!cfg->nproviders && !ld.nerrors)
        config__fail_at(&ld, root, "no 'providers' defined: the gateway would have nothing to route to");
    build_routes(&ld, cfg, &ld.aliases, root);
    load_catalog(&ld, cfg, root);
    resolve_auth_paths(cfg);
    read_routes(&ld, cfg);
    if (ld.nerrors || ld.nlost) {
        config__errors_write(&ld, err, errlen);
        goto fail;
    }
    alias_list_free(&ld.aliases);
    config__errors_free(&ld);
    yaml_document_delete(&ld.doc);
    return cfg;

fail:
    alias_list_free(&ld.aliases);
    config__errors_free(&ld);
    if (have_doc) yaml_document_delete(&ld.doc);
    config_free(cfg);
    return NULL;
}

const aigw_config *config_retain(const aigw_config *cfg)
{
    if (cfg) atomic_fetch_add_explicit(&((aigw_config *)cfg)->refs, 1, memory_order_relaxed);
    return cfg;
}

void config_release(const aigw_config *cfg)
{
    /* acq_rel: whatever a thread did with the config happens before the free on another. */
    if (cfg && atomic_fetch_sub_explicit(&((aigw_config *)cfg)->refs, 1, memory_order_acq_rel) == 1)
        config_free((aigw_config *)cfg);
}

/* What a provider_config owns (not the struct itself). */
static void provider_free(provider_config *p)
{
    free(p->name);
    free(p->type);
    free(p->base_url);
    free(p->api_key);
    free(p->api_key_env);
    free(p->virtual_key);
    config_free_headers(p->headers, p->nheaders);
    for (size_t j = 0; j < p->nmodels; j++)
        free(p->models[j]);
    free(p->models);
    for (int e = 0; e < ENDPOINT__OPENAI_URLS; e++)
        free(p->urls[e]);
    free(p->api_version);
    curl_slist_free_all(p->static_headers);
}

void config_free(aigw_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nproviders; i++)
        provider_free(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].public_name);
        free(cfg->routes[i].upstream_model);
    }
    free(cfg->routes);
    free(cfg->trees);
    if (cfg->health) cfg->health_free(cfg->health);
    arena_free(&cfg->arena); /* the trees, which point into the sources' JSON: freed first */
    for (size_t i = 0; i < cfg->nroute_sources; i++) {
        free(cfg->route_sources[i].name);
        json_decref(cfg->route_sources[i].json);
    }
    free(cfg->route_sources);
    free(cfg->default_route_name);
    for (size_t i = 0; i < cfg->routing.nallowed_hosts; i++)
        free(cfg->routing.allowed_hosts[i]);
    free(cfg->routing.allowed_hosts);
    catalog_free(&cfg->catalog);
    free(cfg->catalog_path);
    free(cfg->auth.master_key);
    free(cfg->auth.master_key_env);
    free(cfg->auth.store_path);
    free(cfg->auth.limits.redis);
    free(cfg->auth.secret);
    free(cfg->auth.secret_file);
    if (cfg->auth.vault_key) explicit_bzero(cfg->auth.vault_key, strlen(cfg->auth.vault_key));
    free(cfg->auth.vault_key);
    free(cfg->auth.vault_key_env);
    free(cfg->auth.vault_key_file);
    free(cfg->listen_host);
    free(cfg->access_log);
    for (size_t i = 0; i < cfg->alerts.nrules; i++) {
        free(cfg->alerts.rules[i].name);
        free(cfg->alerts.rules[i].provider);
        free(cfg->alerts.rules[i].key);
        free(cfg->alerts.rules[i].team);
    }
    free(cfg->alerts.rules);
    free(cfg->alerts.webhook_url);
    config_free_headers(cfg->alerts.headers, cfg->alerts.nheaders);
    config__request_log_free(&cfg->request_log);
    config__router_free(&cfg->router);
    config__external_router_free(&cfg->external_router);
    config__prompts_free(&cfg->prompts);
    free(cfg->tracing.endpoint);
    free(cfg->tracing.service_name);
    config_free_headers(cfg->tracing.headers, cfg->tracing.nheaders);
    config__trace_content_free(&cfg->tracing.content);
    free(cfg->path);
    free(cfg->source);
    free(cfg);
}

void config_routing_defaults(routing_settings *s)
{
    memset(s, 0, sizeof *s);
    s->max_attempts = 6;
    s->retry.attempts = 2;
    static const int transient[] = {429, 500, 502, 503, 504, 529};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        s->retry.on.bits[transient[i] / 64] |= 1ULL << (transient[i] % 64);
    s->retry.use_retry_after = true;
    s->retry.base_delay_ms = 250;
    s->retry.max_delay_ms = 8000;
    s->retry.max_wait_ms = 60000;
    s->budget_percent = 20;
    s->budget_min_retries = 3;
    s->budget_window_ms = 10000;
    s->breaker_failures = 5;
    s->breaker_rate_pct = 50;
    s->breaker_min_requests = 20;
    s->breaker_window_ms = 30000;
    s->breaker_cooldown_ms = 30000;
    s->breaker_probes = 1;
}

/* Orders a stored name against a client's (a byte string with a length, which may hold a NUL:
 * strncmp would stop there and then read past the stored name). Same order as strcmp. */
static int name_compare(const char *stored, const char *name, size_t len)
{
    size_t stored_len = strlen(stored);
    int c = memcmp(stored, name, stored_len < len ? stored_len : len);
    if (c) return c;
    return stored_len < len ? -1 : stored_len > len;
}

const model_route *config_find_model(const aigw_config *cfg, const char *name, size_t len)
{
    size_t lo = 0, hi = cfg->nroutes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_compare(cfg->routes[mid].public_name, name, len);
        if (c == 0) return &cfg->routes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void config_route_fill(const aigw_config *cfg, model_route *r, const provider_config *p,
                       const char *public_name, const char *model)
{
    memset(r, 0, sizeof *r);
    r->public_name = (char *)public_name;
    r->provider = p;
    r->upstream_model = (char *)model;
    r->upstream_model_len = strlen(model);
    r->is_alias = strcmp(public_name, model) != 0;
    r->catalog = catalog_find(&cfg->catalog, p->type, model);
    r->max_output_tokens =
        r->catalog && r->catalog->max_output ? r->catalog->max_output : CONFIG_DEFAULT_MAX_OUTPUT_TOKENS;
}

size_t config_find_typed(const aigw_config *cfg, const char *name, size_t len, const provider_config **out,
                         size_t max, size_t *model_offset)
{
    const char *slash = memchr(name, '/', len);
    if (!slash || slash == name || slash + 1 == name + len) return 0;
    size_t type_len = (size_t)(slash - name);
    const char *model = slash + 1;
    size_t model_len = len - type_len - 1;
    *model_offset = type_len + 1;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nproviders && n < max; i++) {
        const provider_config *p = &cfg->providers[i];
        if (name_compare(p->type, name, type_len) != 0) continue;
        bool serves = p->any_model;
        for (size_t j = 0; j < p->nmodels && !serves; j++)
            serves = name_compare(p->models[j], model, model_len) == 0;
        if (serves) out[n++] = p;
    }
    return n;
}

const struct route_tree *config_find_route(const aigw_config *cfg, const char *name, size_t len)
{
    /* The trees are built in the sources' order, so the first ntrees sources are theirs. */
    size_t lo = 0, hi = cfg->ntrees;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_compare(cfg->route_sources[mid].name, name, len);
        if (c == 0) return cfg->trees[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool config_error_at(const aigw_config *cfg, int line, char *err, size_t errlen, const char *fmt, ...)
{
    size_t at = strnlen(err, errlen);
    if (at + 1 >= errlen) return false;
    if (at) err[at++] = '\n'; /* a later mistake of the same load: one more line */
    int n = snprintf(err + at, errlen - at, "%s:%d: ", cfg->path, line);
    if (n < 0 || (size_t)n >= errlen - at) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + at + n, errlen - at - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

bool config_host_is_loopback(const char *host)
{
    if (!strcmp(host, "localhost") || !strcmp(host, "::1")) return true;
    /* 127.0.0.0/8, written as a dotted quad */
    unsigned a, b, c, d;
    char tail;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 &&
           d < 256;
}

bool config_exposure_ok(const aigw_config *cfg, char *err, size_t errlen)
{
    if (cfg->auth.mode != AUTH_UNSET || config_host_is_loopback(cfg->listen_host)) return true;
    snprintf(err, errlen,
             "%s: listen %s:%d is reachable from other machines and no 'auth:' is configured: anyone who "
             "reaches it would spend the providers' keys. Add\n"
             "  auth:\n"
             "    master_key: ${AIGW_MASTER_KEY}   # then: aigw keys create -c %s --alias NAME\n"
             "or write 'auth: off' to serve it open on purpose (docs/access.md)",
             cfg->path, cfg->listen_host, cfg->listen_port, cfg->path);
    return false;
}
