/* admin_cli.c — `aigw keys`, `aigw vkeys`, `aigw teams` and `aigw spend`: the admin API from
 * the command line (admin.h).
 *
 * Each subcommand is one admin API request (method, path, JSON body). It goes to the running
 * gateway when one answers on the config's `listen:` (with the master key), so the gateway's
 * own thread writes; else — no gateway running, no master key, or --direct — the command opens
 * the store file itself and runs the same handler (admin_handle), so both ways print the same
 * thing. A gateway sharing the file sees a direct change within a poll (STORE_POLL_MS).
 *
 * `aigw vkeys` (virtual keys) is the same machinery with its own requests and printing. A
 * secret is never an argument (it would sit in the shell's history and in ps): it is read from
 * standard input, or from the environment variable --secret-env names. Direct runs set the
 * store's vault key from the config, as the gateway does.
 *
 * Rejected: a separate code path for the file (two implementations of every operation). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <curl/curl.h>
#include <http_parser.h>
#include <jansson.h>

#include "admin/admin.h"
#include "config/config.h"
#include "util/alloc.h"

static const char keys_help[] =
    "usage: aigw keys create  [-c FILE] [--alias NAME] [--models GLOB,…] [--duration 30d]\n"
    "                         [--team TEAM] [--user USER] [--tag TAG]… [--default-route NAME]\n"
    "                         [--admin] [--json]\n"
    "       aigw keys list    [-c FILE] [--json]\n"
    "       aigw keys show    [-c FILE] ID|ALIAS [--json]\n"
    "       aigw keys disable [-c FILE] ID|ALIAS\n"
    "       aigw keys enable  [-c FILE] ID|ALIAS\n"
    "       aigw keys rotate  [-c FILE] ID|ALIAS\n"
    "       aigw keys delete  [-c FILE] ID|ALIAS\n"
    "\n"
    "Gateway keys in the store named by the config's `auth:` (default: aigw.db beside the config).\n"
    "A new or rotated key is printed once: it is stored only as a digest. Keys start with aigw-;\n"
    "clients send them as Authorization: Bearer (or x-api-key, api-key, x-goog-api-key).\n"
    "\n"
    "  -c, --config FILE   the gateway's config (default: ./aigw.yaml)\n"
    "  --alias NAME        a unique name for the key\n"
    "  --models GLOB,…     the public model names it may use (fnmatch globs: gpt-4o*, openai/*);\n"
    "                      none given: any model\n"
    "  --duration D        expires after D (30d, 12h, 20m, 2w, permanent)\n"
    "  --team, --user      who it is for (shown in the access log)\n"
    "  --tag TAG           a tag (repeatable)\n"
    "  --default-route NAME  the route or model of the config that serves this key's requests\n"
    "                      whose model is absent, \"default\" or names nothing served\n"
    "  --admin             an admin key: the admin API (but not admin keys) and GET /metrics\n"
    "  --json              print the admin API's JSON as is\n"
    "  --direct            use the store (its file or database) even when a gateway answers\n"
    "  --url URL           the running gateway's base URL (default: http:// and the config's listen)\n"
    "\n"
    "The command talks to the running gateway's admin API (its `listen:`, with auth.master_key)\n"
    "when one answers, else opens the store (a SQLite file or a PostgreSQL database) itself.\nThe same "
    "operations over HTTP:\n"
    "docs/access.md, and GET /admin/openapi.json.\n";

static const char vkeys_help[] =
    "usage: aigw vkeys create [-c FILE] NAME --provider TYPE [--base-url URL] [--secret-env VAR] [--json]\n"
    "       aigw vkeys list   [-c FILE] [--json]\n"
    "       aigw vkeys show   [-c FILE] NAME [--json]\n"
    "       aigw vkeys rotate [-c FILE] NAME [--secret-env VAR]\n"
    "       aigw vkeys delete [-c FILE] NAME\n"
    "\n"
    "Virtual keys: provider credentials kept encrypted in the store named by the config's `auth:`,\n"
    "under auth.vault_key (or auth.vault_key_file). Providers name them with `virtual_key: NAME`,\n"
    "request configs with \"virtual_key\": \"NAME\" or \"provider\": \"@NAME\". The secret is read from\n"
    "standard input (one line), or from the environment variable --secret-env names; it is never\n"
    "printed back (only its last 4 characters).\n"
    "\n"
    "  -c, --config FILE   the gateway's config (default: ./aigw.yaml)\n"
    "  --provider TYPE     the provider type the secret is for (openai, anthropic, gemini, …)\n"
    "  --base-url URL      where that provider is, when not the type's own\n"
    "  --secret-env VAR    take the secret from this environment variable, not standard input\n"
    "  --json              print the admin API's JSON as is\n"
    "  --direct            use the store file even when a gateway answers\n"
    "  --url URL           the running gateway's base URL (default: http:// and the config's listen)\n";

typedef struct keys_args {
    bool virtual_keys; /* `aigw vkeys` */
    const char *cmd;   /* "keys" or "vkeys", for messages */
    const char *config, *sub, *ref, *alias, *models, *duration, *team, *user, *url, *default_route;
    const char *provider, *base_url, *secret_env;
    const char *tags[STORE_TAGS_MAX];
    size_t ntags;
    bool json, direct, admin;
} keys_args;

static int bad_in(const keys_args *a, const char *what, const char *arg)
{
    fprintf(stderr, "aigw: %s: %s '%s' (see 'aigw %s --help')\n", a->cmd, what, arg, a->cmd);
    return 2;
}
#define bad(what, arg) bad_in(a, what, arg)

static int parse_args(int argc, char **argv, keys_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char **value = NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help")) {
            fputs(a->virtual_keys ? vkeys_help : keys_help, stdout);
            return 0;
        } else if (!strcmp(arg, "-c") || !strcmp(arg, "--config"))
            value = &a->config;
        else if (!strcmp(arg, "--alias") && !a->virtual_keys)
            value = &a->alias;
        else if (!strcmp(arg, "--provider") && a->virtual_keys)
            value = &a->provider;
        else if (!strcmp(arg, "--base-url") && a->virtual_keys)
            value = &a->base_url;
        else if (!strcmp(arg, "--secret-env") && a->virtual_keys)
            value = &a->secret_env;
        else if (!strcmp(arg, "--models") && !a->virtual_keys)
            value = &a->models;
        else if (!strcmp(arg, "--url"))
            value = &a->url;
        else if (!strcmp(arg, "--duration") && !a->virtual_keys)
            value = &a->duration;
        else if (!strcmp(arg, "--team") && !a->virtual_keys)
            value = &a->team;
        else if (!strcmp(arg, "--user") && !a->virtual_keys)
            value = &a->user;
        else if (!strcmp(arg, "--default-route") && !a->virtual_keys)
            value = &a->default_route;
        else if (!strcmp(arg, "--admin") && !a->virtual_keys)
            a->admin = true;
        else if (!strcmp(arg, "--tag") && !a->virtual_keys) {
            if (a->ntags == STORE_TAGS_MAX) return bad("too many tags at", arg);
            value = &a->tags[a->ntags++];
        } else if (!strcmp(arg, "--json"))
            a->json = true;
        else if (!strcmp(arg, "--direct"))
            a->direct = true;
        else if (arg[0] == '-')
            return bad("unknown option", arg);
        else if (!a->sub)
            a->sub = arg;
        else if (!a->ref)
            a->ref = arg;
        else
            return bad("unexpected argument", arg);
        if (value) {
            if (i + 1 >= argc) return bad("missing value after", arg);
            *value = argv[++i];
        }
    }
    return -1; /* go on */
}

/* base + ref as one path segment (what is not plain percent-encoded) + suffix. */
static void path_with_ref(char *path, size_t pathlen, const char *base, const char *ref, const char *suffix)
{
    size_t n = (size_t)snprintf(path, pathlen, "%s", base);
    for (const char *p = ref; *p && n + 4 < pathlen; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
            path[n++] = (char)ch;
        else
            n += (size_t)snprintf(path + n, pathlen - n, "%%%02X", ch);
    }
    snprintf(path + n, pathlen - n, "%s", suffix);
}

/* "a,b,c" as a JSON list of its non-empty parts. */
static json_t *comma_list(const char *text)
{
    json_t *list = json_array();
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len) json_array_append_new(list, json_stringn(p, len));
        p += len + (p[len] == ',');
    }
    return list;
}

/* The secret for create and rotate: --secret-env's variable, or one line of standard input
 * (a terminal is asked). False after a message. */
static bool read_secret(const keys_args *a, char *out, size_t len)
{
    if (a->secret_env) {
        const char *v = getenv(a->secret_env);
        if (!v || !*v) {
            fprintf(stderr, "aigw: vkeys %s: the environment variable %s is not set\n", a->sub,
                    a->secret_env);
            return false;
        }
        if (strlen(v) >= len) {
            fprintf(stderr, "aigw: vkeys %s: the secret in %s is too long\n", a->sub, a->secret_env);
            return false;
        }
        snprintf(out, len, "%s", v);
        return true;
    }
    if (isatty(STDIN_FILENO)) fprintf(stderr, "secret for %s (one line): ", a->ref);
    if (!fgets(out, (int)len, stdin)) {
        fprintf(stderr, "aigw: vkeys %s: no secret on standard input (or use --secret-env VAR)\n", a->sub);
        return false;
    }
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return true;
}

static bool build_vkey_request(const keys_args *a, admin_request *req, char *path, size_t pathlen,
                               char **body)
{
    static const struct {
        const char *sub;
        int method;
        const char *suffix; /* after /admin/virtual-keys/{name}; NULL: the collection */
    } subs[] = {
        {"create", HTTP_POST, NULL}, {"list", HTTP_GET, NULL},         {"show", HTTP_GET, ""},
        {"delete", HTTP_DELETE, ""}, {"rotate", HTTP_POST, "/rotate"},
    };
    size_t i;
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(a->sub, subs[i].sub)) break;
    if (i == sizeof subs / sizeof subs[0]) {
        bad("unknown subcommand", a->sub);
        return false;
    }
    bool create = !strcmp(a->sub, "create"), rotate = !strcmp(a->sub, "rotate");
    bool wants_name = subs[i].suffix != NULL || create;
    if (wants_name != (a->ref != NULL)) {
        fprintf(stderr, "aigw: vkeys %s: %s (see 'aigw vkeys --help')\n", a->sub,
                wants_name ? "name the virtual key" : "takes no name");
        return false;
    }
    if (create != (a->provider != NULL) || (!create && a->base_url) ||
        (!create && !rotate && a->secret_env)) {
        fprintf(stderr, "aigw: vkeys %s: %s\n", a->sub,
                create ? "--provider TYPE is needed (openai, anthropic, …)"
                       : "--provider and --base-url are for create, --secret-env for create and rotate");
        return false;
    }
    req->method = subs[i].method;
    req->query = "";
    if (create || !wants_name)
        snprintf(path, pathlen, "/admin/virtual-keys");
    else
        path_with_ref(path, pathlen, "/admin/virtual-keys/", a->ref, subs[i].suffix);
    req->path = path;
    *body = NULL;
    if (create || rotate) {
        char secret[VAULT_SECRET_MAX + 2];
        if (!read_secret(a, secret, sizeof secret)) return false;
        json_t *j = json_object();
        if (create) {
            json_object_set_new(j, "name", json_string(a->ref));
            json_object_set_new(j, "provider", json_string(a->provider));
            if (a->base_url) json_object_set_new(j, "base_url", json_string(a->base_url));
        }
        json_t *value = json_string(secret);
        explicit_bzero(secret, sizeof secret);
        if (!value) {
            json_decref(j);
            fprintf(stderr, "aigw: vkeys %s: the secret is not UTF-8 text\n", a->sub);
            return false;
        }
        json_object_set_new(j, "secret", value);
        *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    req->body = *body;
    req->body_len = *body ? strlen(*body) : 0;
    return true;
}

/* The request a subcommand makes; false (after a message) when the arguments do not fit. */
static bool build_request(const keys_args *a, admin_request *req, char *path, size_t pathlen, char **body)
{
    if (a->virtual_keys) return build_vkey_request(a, req, path, pathlen, body);
    static const struct {
        const char *sub;
        int method;
        const char *suffix; /* after /admin/keys/{ref}; NULL: the collection */
    } subs[] = {
        {"create", HTTP_POST, NULL},      {"list", HTTP_GET, NULL},
        {"show", HTTP_GET, ""},           {"disable", HTTP_POST, "/disable"},
        {"enable", HTTP_POST, "/enable"}, {"rotate", HTTP_POST, "/rotate"},
        {"delete", HTTP_DELETE, ""},
    };
    size_t i;
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(a->sub, subs[i].sub)) break;
    if (i == sizeof subs / sizeof subs[0]) {
        bad("unknown subcommand", a->sub);
        return false;
    }
    bool wants_ref = subs[i].suffix != NULL;
    if (wants_ref != (a->ref != NULL)) {
        fprintf(stderr, "aigw: keys %s: %s (see 'aigw keys --help')\n", a->sub,
                wants_ref ? "name the key: its id or alias" : "takes no key name");
        return false;
    }
    if (strcmp(a->sub, "create") && (a->alias || a->models || a->duration || a->team || a->user || a->ntags ||
                                     a->default_route || a->admin)) {
        fprintf(stderr,
                "aigw: keys %s: --alias, --models, --duration, --team, --user, --tag, --default-route and "
                "--admin are for create\n",
                a->sub);
        return false;
    }
    req->method = subs[i].method;
    req->query = "";
    if (!wants_ref) {
        snprintf(path, pathlen, "/admin/keys");
    } else {
        path_with_ref(path, pathlen, "/admin/keys/", a->ref, subs[i].suffix);
    }
    req->path = path;
    *body = NULL;
    if (!strcmp(a->sub, "create")) {
        json_t *j = json_object();
        if (a->alias) json_object_set_new(j, "key_alias", json_string(a->alias));
        if (a->duration) json_object_set_new(j, "duration", json_string(a->duration));
        if (a->team) json_object_set_new(j, "team_id", json_string(a->team));
        if (a->user) json_object_set_new(j, "user_id", json_string(a->user));
        if (a->models) json_object_set_new(j, "models", comma_list(a->models));
        if (a->default_route) json_object_set_new(j, "default_route", json_string(a->default_route));
        if (a->admin) json_object_set_new(j, "admin", json_true());
        if (a->ntags) {
            json_t *list = json_array();
            for (size_t t = 0; t < a->ntags; t++)
                json_array_append_new(list, json_string(a->tags[t]));
            json_object_set_new(j, "tags", list);
        }
        *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    req->body = *body;
    req->body_len = *body ? strlen(*body) : 0;
    return true;
}

/* ---- over HTTP --------------------------------------------------------------------------------- */

static size_t on_curl_data(char *data, size_t size, size_t n, void *ud)
{
    admin_reply *r = ud;
    size_t len = size * n;
    if (r->len + len > 16 * 1024 * 1024) return 0;
    r->body = xrealloc(r->body, r->len + len + 1);
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

typedef enum { HTTP_SENT, HTTP_NO_GATEWAY, HTTP_FAILED } http_outcome;

static const char *command_name = "keys"; /* for messages: "keys", "vkeys", "teams" or "spend" */

static http_outcome send_http(const aigw_config *cfg, const char *base, const admin_request *req,
                              admin_reply *out, char *where, size_t wherelen)
{
    const char *host = cfg->listen_host;
    if (!strcmp(host, "0.0.0.0") || !*host) host = "127.0.0.1";
    if (!strcmp(host, "::")) host = "::1";
    char url[1024], auth[600];
    const char *query = req->query ? req->query : "", *query_mark = *query ? "?" : "";
    if (base) {
        size_t blen = strlen(base);
        while (blen && base[blen - 1] == '/')
            blen--;
        snprintf(url, sizeof url, "%.*s%s%s%s", (int)blen, base, req->path, query_mark, query);
    } else {
        snprintf(url, sizeof url, strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", host,
                 cfg->listen_port, req->path);
        size_t used = strlen(url);
        snprintf(url + used, sizeof url - used, "%s%s", query_mark, query);
    }
    snprintf(where, wherelen, "%.*s",
             (int)(strlen(url) - strlen(req->path) - strlen(query_mark) - strlen(query)), url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->auth.master_key);
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, http_method_str(req->method));
    if (req->body_len) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
    } else if (req->method == HTTP_POST) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_curl_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc == CURLE_COULDNT_CONNECT && !base) return HTTP_NO_GATEWAY;
    if (rc != CURLE_OK) {
        fprintf(stderr, "aigw: %s: the gateway at %s did not answer: %s\n", command_name, where,
                curl_easy_strerror(rc));
        return HTTP_FAILED;
    }
    out->status = (int)status;
    if (!out->body) out->body = xstrdup("");
    return HTTP_SENT;
}

/* ---- directly on the store file ----------------------------------------------------------------- */

static bool run_direct(const aigw_config *cfg, const admin_request *req, admin_reply *out)
{
    char err[1024];
    access_secret secret;
    vault_key vault;
    bool has_vault;
    if (!access_init()) {
        fprintf(stderr, "aigw: %s: libsodium cannot start\n", command_name);
        return false;
    }
    if (!access_secret_load(&cfg->auth, &secret, err, sizeof err) ||
        !access_vault_key_load(&cfg->auth, &vault, &has_vault, err, sizeof err)) {
        fprintf(stderr, "aigw: %s: %s\n", command_name, err);
        return false;
    }
    store *s = store_open(cfg->auth.store_path, err, sizeof err);
    if (!s) {
        fprintf(stderr, "aigw: %s: %s\n", command_name, err);
        return false;
    }
    store_set_vault(s, has_vault ? &vault : NULL);
    explicit_bzero(&vault, sizeof vault);
    admin_handle(s, &secret, req, out);
    store_close(s);
    return true;
}

/* ---- printing --------------------------------------------------------------------------------- */

static const char *str_or(json_t *j, const char *name, const char *dflt)
{
    const char *v = json_string_value(json_object_get(j, name));
    return v ? v : dflt;
}

static void print_models(json_t *k)
{
    json_t *models = json_object_get(k, "models"), *m;
    size_t i;
    if (!json_array_size(models)) {
        fputs("any", stdout);
        return;
    }
    json_array_foreach(models, i, m) printf("%s%s", i ? "," : "", json_string_value(m));
}

static void print_key(json_t *k)
{
    const char *plaintext = str_or(k, "key", NULL);
    if (plaintext) {
        printf("key:        %s\n", plaintext);
        printf("            (shown once: only its digest is stored)\n");
    }
    printf("id:         %s\n", str_or(k, "id", "?"));
    printf("alias:      %s\n", str_or(k, "key_alias", "-"));
    printf("name:       %s\n", str_or(k, "key_name", "-"));
    printf("enabled:    %s\n", json_is_true(json_object_get(k, "enabled")) ? "yes" : "no");
    printf("expires:    %s\n", str_or(k, "expires", "never"));
    printf("models:     ");
    print_models(k);
    printf("\ndefault:    %s\n", str_or(k, "default_route", "-"));
    printf("role:       %s\n", json_is_true(json_object_get(k, "admin")) ? "admin" : "user");
    printf("team:       %s\nuser:       %s\ncreated:    %s\n", str_or(k, "team_id", "-"),
           str_or(k, "user_id", "-"), str_or(k, "created_at", "-"));
}

static void print_vkey(json_t *v)
{
    printf("name:       %s\n", str_or(v, "name", "?"));
    printf("provider:   %s\n", str_or(v, "provider", "?"));
    printf("base_url:   %s\n", str_or(v, "base_url", "(the type's)"));
    printf("secret:     %s  (version %lld)\n", str_or(v, "hint", "?"),
           (long long)json_integer_value(json_object_get(v, "version")));
    printf("updated:    %s\n", str_or(v, "updated_at", "-"));
}

static void print_vkeys_reply(const keys_args *a, json_t *j)
{
    if (!strcmp(a->sub, "list")) {
        json_t *data = json_object_get(j, "data"), *v;
        size_t i;
        printf("%-24s %-12s %-10s %-8s %s\n", "NAME", "PROVIDER", "SECRET", "VERSION", "BASE_URL");
        json_array_foreach(data, i, v)
        {
            printf("%-24s %-12s %-10s %-8lld %s\n", str_or(v, "name", "?"), str_or(v, "provider", "?"),
                   str_or(v, "hint", "?"), (long long)json_integer_value(json_object_get(v, "version")),
                   str_or(v, "base_url", "(the type's)"));
        }
    } else if (!strcmp(a->sub, "delete")) {
        printf("deleted %s\n", str_or(j, "name", "?"));
    } else {
        print_vkey(j);
    }
}

static int print_reply(const keys_args *a, const admin_reply *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (r->status >= 400 || !j) {
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "aigw: %s %s: %s (HTTP %d)\n", a->cmd, a->sub, msg ? msg : "unreadable answer",
                r->status);
        json_decref(j);
        return 1;
    }
    if (a->json) {
        char *text = json_dumps(j, JSON_INDENT(2));
        puts(text);
        free(text);
    } else if (a->virtual_keys) {
        print_vkeys_reply(a, j);
    } else if (!strcmp(a->sub, "list")) {
        json_t *data = json_object_get(j, "data"), *k;
        size_t i;
        printf("%-28s %-20s %-12s %-8s %-20s %s\n", "ID", "ALIAS", "NAME", "ENABLED", "EXPIRES", "MODELS");
        json_array_foreach(data, i, k)
        {
            printf("%-28s %-20s %-12s %-8s %-20s ", str_or(k, "id", "?"), str_or(k, "key_alias", "-"),
                   str_or(k, "key_name", "-"), json_is_true(json_object_get(k, "enabled")) ? "yes" : "no",
                   str_or(k, "expires", "never"));
            print_models(k);
            putchar('\n');
        }
    } else if (!strcmp(a->sub, "delete")) {
        printf("deleted %s\n", str_or(j, "id", "?"));
    } else {
        print_key(j);
    }
    json_decref(j);
    return 0;
}

/* Runs req the way the file's comment says (the gateway's admin API, else the store file) and
 * prints the answer with print. Returns the exit code. */
static int run_request(const char *config_arg, const char *url, bool direct, const admin_request *req,
                       int (*print)(const void *args, const admin_reply *r), const void *args)
{
    const char *config_path = config_arg ? config_arg : "aigw.yaml";
    char err[32768];
    aigw_config *cfg = config_load(config_path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "aigw: %s: %s\n", command_name, err);
        return 1;
    }
    int rc = 1;
    if (cfg->auth.mode != AUTH_ON) {
        fprintf(stderr,
                "aigw: %s: %s has no `auth:` section, so the gateway asks for no keys; add\n"
                "  auth:\n    master_key: ${AIGW_MASTER_KEY}\nfirst (docs/access.md)\n",
                command_name, config_path);
        goto out;
    }
    admin_reply reply = {0};
    char where[1100] = "";
    http_outcome how = HTTP_NO_GATEWAY;
    if (url && !cfg->auth.master_key) {
        fprintf(stderr, "aigw: %s: --url needs auth.master_key in %s (the admin API asks for it)\n",
                command_name, config_path);
        goto out;
    }
    if (cfg->auth.master_key && !direct) how = send_http(cfg, url, req, &reply, where, sizeof where);
    if (how == HTTP_FAILED) {
        admin_reply_free(&reply);
        goto out;
    }
    if (how == HTTP_SENT) {
        fprintf(stderr, "aigw: %s: via the gateway at %s\n", command_name, where);
    } else {
        admin_reply_free(&reply);
        memset(&reply, 0, sizeof reply);
        if (!run_direct(cfg, req, &reply)) goto out;
        char store_shown[256];
        store_describe(cfg->auth.store_path, store_shown, sizeof store_shown);
        fprintf(stderr, "aigw: %s: on the store %s %s\n", command_name,
                store_is_shared(cfg->auth.store_path) ? "database" : "file", store_shown);
    }
    rc = print(args, &reply);
    admin_reply_free(&reply);
out:
    config_free(cfg);
    return rc;
}

static int print_keys_reply(const void *args, const admin_reply *r)
{
    return print_reply(args, r);
}

static int run_keys_command(keys_args a, int argc, char **argv)
{
    command_name = a.cmd;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    if (!a.sub) {
        fputs(a.virtual_keys ? vkeys_help : keys_help, stderr);
        return 2;
    }
    admin_request req = {0};
    char path[1024], *body = NULL;
    if (!build_request(&a, &req, path, sizeof path, &body)) return 2;
    rc = run_request(a.config, a.url, a.direct, &req, print_keys_reply, &a);
    if (body) explicit_bzero(body, strlen(body)); /* a virtual key's secret may be in it */
    free(body);
    return rc;
}

int admin_keys_command(int argc, char **argv)
{
    return run_keys_command((keys_args){.cmd = "keys"}, argc, argv);
}

int admin_vkeys_command(int argc, char **argv)
{
    return run_keys_command((keys_args){.cmd = "vkeys", .virtual_keys = true}, argc, argv);
}

/* ---- aigw spend -------------------------------------------------------------------------------- */

static const char spend_help[] =
    "usage: aigw spend [-c FILE] [--by key|team|model|day|hour] [--from DATE] [--to DATE] [--json]\n"
    "\n"
    "What the gateway's keyed requests cost, from the store named by the config's `auth:`: requests,\n"
    "tokens (prompt, completion, cached, reasoning) and USD (the catalog's prices), per key (the\n"
    "default), team, model, day or hour (UTC). The master key's requests are under key \"master\".\n"
    "\n"
    "  -c, --config FILE   the gateway's config (default: ./aigw.yaml)\n"
    "  --by GROUP          key, team, model, day or hour\n"
    "  --from DATE         from this day (2026-12-06) or time (2026-12-06T16:00:00Z)\n"
    "  --to DATE           to this day, inclusive, or up to this time\n"
    "  --json              print the admin API's JSON as is\n"
    "  --direct            use the store itself even when a gateway answers\n"
    "  --url URL           the running gateway's base URL (default: http:// and the config's listen)\n"
    "\n"
    "Like `aigw keys`, it asks the running gateway's admin API (GET /admin/spend) when one answers,\n"
    "else reads the store (file or database) itself. A running gateway writes spend about once a second.\n";

typedef struct spend_args {
    const char *config, *by, *from, *to, *url;
    bool json, direct;
} spend_args;

static int print_spend_reply(const void *args, const admin_reply *r)
{
    const spend_args *a = args;
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (r->status >= 400 || !j) {
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "aigw: spend: %s (HTTP %d)\n", msg ? msg : "unreadable answer", r->status);
        json_decref(j);
        return 1;
    }
    if (a->json) {
        char *text = json_dumps(j, JSON_INDENT(2));
        puts(text);
        free(text);
        json_decref(j);
        return 0;
    }
    const char *by = json_string_value(json_object_get(j, "group_by"));
    const char *field = !strcmp(by, "key") ? "key_id" : !strcmp(by, "team") ? "team_id" : by;
    printf("%-30s %10s %12s %12s %10s %10s %14s\n", by, "REQUESTS", "PROMPT", "COMPLETION", "CACHED",
           "REASONING", "USD");
    json_t *data = json_object_get(j, "data"), *row;
    size_t i;
    json_array_foreach(data, i, row)
    {
        const char *name = json_string_value(json_object_get(row, field));
        printf("%-30s %10lld %12lld %12lld %10lld %10lld %14.6f\n", name ? name : "-",
               (long long)json_integer_value(json_object_get(row, "requests")),
               (long long)json_integer_value(json_object_get(row, "prompt_tokens")),
               (long long)json_integer_value(json_object_get(row, "completion_tokens")),
               (long long)json_integer_value(json_object_get(row, "cached_tokens")),
               (long long)json_integer_value(json_object_get(row, "reasoning_tokens")),
               json_number_value(json_object_get(row, "cost_usd")));
    }
    json_t *t = json_object_get(j, "total");
    printf("%-30s %10lld %12lld %12lld %10lld %10lld %14.6f\n", "total",
           (long long)json_integer_value(json_object_get(t, "requests")),
           (long long)json_integer_value(json_object_get(t, "prompt_tokens")),
           (long long)json_integer_value(json_object_get(t, "completion_tokens")),
           (long long)json_integer_value(json_object_get(t, "cached_tokens")),
           (long long)json_integer_value(json_object_get(t, "reasoning_tokens")),
           json_number_value(json_object_get(t, "cost_usd")));
    json_decref(j);
    return 0;
}

/* A query value: only characters that need no escaping (dates, times, names of groups). */
static bool plain_value(const char *v)
{
    return strlen(v) < 64 &&
           strspn(v, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-:") == strlen(v);
}

int admin_spend_command(int argc, char **argv)
{
    spend_args a = {0};
    command_name = "spend";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char **value = NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help")) {
            fputs(spend_help, stdout);
            return 0;
        } else if (!strcmp(arg, "-c") || !strcmp(arg, "--config"))
            value = &a.config;
        else if (!strcmp(arg, "--by"))
            value = &a.by;
        else if (!strcmp(arg, "--from"))
            value = &a.from;
        else if (!strcmp(arg, "--to"))
            value = &a.to;
        else if (!strcmp(arg, "--url"))
            value = &a.url;
        else if (!strcmp(arg, "--json"))
            a.json = true;
        else if (!strcmp(arg, "--direct"))
            a.direct = true;
        else {
            fprintf(stderr, "aigw: spend: unknown argument '%s' (see 'aigw spend --help')\n", arg);
            return 2;
        }
        if (value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "aigw: spend: missing value after '%s'\n", arg);
                return 2;
            }
            *value = argv[++i];
            bool in_query = value == &a.by || value == &a.from || value == &a.to;
            if (in_query && !plain_value(*value)) {
                fprintf(stderr, "aigw: spend: '%s' is not a value %s takes\n", *value, arg);
                return 2;
            }
        }
    }
    char query[256];
    snprintf(query, sizeof query, "group_by=%s%s%s%s%s", a.by ? a.by : "key", a.from ? "&from=" : "",
             a.from ? a.from : "", a.to ? "&to=" : "", a.to ? a.to : "");
    admin_request req = {.method = HTTP_GET, .path = "/admin/spend", .query = query};
    return run_request(a.config, a.url, a.direct, &req, print_spend_reply, &a);
}

/* ---- aigw teams -------------------------------------------------------------------------------- */

static const char teams_help[] =
    "usage: aigw teams create [-c FILE] [--id ID] [--alias NAME] [--models GLOB,…] [--max-budget USD]\n"
    "                         [--soft-budget USD] [--budget-duration 30d] [--json]\n"
    "       aigw teams list   [-c FILE] [--json]\n"
    "       aigw teams show   [-c FILE] ID|ALIAS [--json]\n"
    "       aigw teams delete [-c FILE] ID|ALIAS\n"
    "\n"
    "Teams in the store named by the config's `auth:`. A key's team_id names its team: the team's\n"
    "models bound its keys', its budget stops them all (docs/access.md). Other fields (rpm_limit,\n"
    "tpm_limit, metadata, blocked) through the admin API: PATCH /admin/teams/ID.\n"
    "\n"
    "  -c, --config FILE   the gateway's config (default: ./aigw.yaml)\n"
    "  --id ID             the team's id (default: one is made, team_…)\n"
    "  --alias NAME        a unique name for the team\n"
    "  --models GLOB,…     the public model names its keys may use (none given: any)\n"
    "  --max-budget USD    a hard budget per period: over it, its keys get 429 budget_exceeded\n"
    "  --soft-budget USD   over it, requests are flagged in the access log\n"
    "  --budget-duration D the budget's period (30d, 1d, 1h, 10s); none: for ever\n"
    "  --json, --direct, --url   as for `aigw keys`\n";

typedef struct teams_args {
    const char *config, *sub, *ref, *id, *alias, *models, *max_budget, *soft_budget, *duration, *url;
    bool json, direct;
} teams_args;

static void print_team(json_t *t)
{
    json_t *models = json_object_get(t, "models"), *m, *max = json_object_get(t, "max_budget");
    size_t i;
    printf("id:         %s\n", str_or(t, "team_id", "?"));
    printf("alias:      %s\n", str_or(t, "team_alias", "-"));
    printf("models:     ");
    if (!json_array_size(models)) fputs("any", stdout);
    json_array_foreach(models, i, m) printf("%s%s", i ? "," : "", json_string_value(m));
    if (json_is_number(max))
        printf("\nmax budget: %.6f USD per %s\n", json_number_value(max),
               str_or(t, "budget_duration", "ever"));
    else
        printf("\nmax budget: none\n");
    const char *reset = str_or(t, "budget_reset_at", NULL);
    printf("spend:      %.6f USD", json_number_value(json_object_get(t, "spend")));
    if (reset) printf(" (this period ends at %s)", reset);
    putchar('\n');
    printf("blocked:    %s\n", json_is_true(json_object_get(t, "blocked")) ? "yes" : "no");
}

static int print_teams_reply(const void *args, const admin_reply *r)
{
    const teams_args *a = args;
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (r->status >= 400 || !j) {
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "aigw: teams %s: %s (HTTP %d)\n", a->sub, msg ? msg : "unreadable answer", r->status);
        json_decref(j);
        return 1;
    }
    if (a->json) {
        char *text = json_dumps(j, JSON_INDENT(2));
        puts(text);
        free(text);
    } else if (!strcmp(a->sub, "list")) {
        json_t *data = json_object_get(j, "data"), *t;
        size_t i;
        printf("%-30s %-20s %14s %8s %14s\n", "ID", "ALIAS", "MAX BUDGET", "PERIOD", "SPEND");
        json_array_foreach(data, i, t)
        {
            json_t *max = json_object_get(t, "max_budget");
            char budget[32] = "-";
            if (json_is_number(max)) snprintf(budget, sizeof budget, "%.6f", json_number_value(max));
            printf("%-30s %-20s %14s %8s %14.6f\n", str_or(t, "team_id", "?"), str_or(t, "team_alias", "-"),
                   budget, str_or(t, "budget_duration", "-"), json_number_value(json_object_get(t, "spend")));
        }
    } else if (!strcmp(a->sub, "delete")) {
        printf("deleted %s\n", str_or(j, "team_id", "?"));
    } else {
        print_team(j);
    }
    json_decref(j);
    return 0;
}

/* A budget given on the command line: a number of USD. */
static bool read_usd(const char *text, double *out)
{
    char *end;
    *out = strtod(text, &end);
    return end != text && !*end && *out >= 0 && *out <= 1e12;
}

int admin_teams_command(int argc, char **argv)
{
    teams_args a = {0};
    command_name = "teams";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char **value = NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help")) {
            fputs(teams_help, stdout);
            return 0;
        } else if (!strcmp(arg, "-c") || !strcmp(arg, "--config"))
            value = &a.config;
        else if (!strcmp(arg, "--id"))
            value = &a.id;
        else if (!strcmp(arg, "--alias"))
            value = &a.alias;
        else if (!strcmp(arg, "--models"))
            value = &a.models;
        else if (!strcmp(arg, "--max-budget"))
            value = &a.max_budget;
        else if (!strcmp(arg, "--soft-budget"))
            value = &a.soft_budget;
        else if (!strcmp(arg, "--budget-duration"))
            value = &a.duration;
        else if (!strcmp(arg, "--url"))
            value = &a.url;
        else if (!strcmp(arg, "--json"))
            a.json = true;
        else if (!strcmp(arg, "--direct"))
            a.direct = true;
        else if (arg[0] == '-') {
            fprintf(stderr, "aigw: teams: unknown option '%s' (see 'aigw teams --help')\n", arg);
            return 2;
        } else if (!a.sub)
            a.sub = arg;
        else if (!a.ref)
            a.ref = arg;
        else {
            fprintf(stderr, "aigw: teams: unexpected argument '%s' (see 'aigw teams --help')\n", arg);
            return 2;
        }
        if (value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "aigw: teams: missing value after '%s'\n", arg);
                return 2;
            }
            *value = argv[++i];
        }
    }
    if (!a.sub) {
        fputs(teams_help, stderr);
        return 2;
    }
    bool create = !strcmp(a.sub, "create"), list = !strcmp(a.sub, "list");
    bool named = !strcmp(a.sub, "show") || !strcmp(a.sub, "delete");
    if (!create && !list && !named) {
        fprintf(stderr, "aigw: teams: unknown subcommand '%s' (see 'aigw teams --help')\n", a.sub);
        return 2;
    }
    if (named != (a.ref != NULL)) {
        fprintf(stderr, "aigw: teams %s: %s\n", a.sub,
                named ? "name the team: its id or alias" : "takes no team name");
        return 2;
    }
    if (!create && (a.id || a.alias || a.models || a.max_budget || a.soft_budget || a.duration)) {
        fprintf(stderr, "aigw: teams %s: --id, --alias, --models and the budgets are for create\n", a.sub);
        return 2;
    }
    char path[1024];
    admin_request req = {.method = create                     ? HTTP_POST
                                   : !strcmp(a.sub, "delete") ? HTTP_DELETE
                                                              : HTTP_GET,
                         .query = ""};
    if (named)
        path_with_ref(path, sizeof path, "/admin/teams/", a.ref, "");
    else
        snprintf(path, sizeof path, "/admin/teams");
    req.path = path;
    char *body = NULL;
    if (create) {
        json_t *j = json_object();
        double usd;
        if (a.id) json_object_set_new(j, "team_id", json_string(a.id));
        if (a.alias) json_object_set_new(j, "team_alias", json_string(a.alias));
        if (a.models) json_object_set_new(j, "models", comma_list(a.models));
        if (a.duration) json_object_set_new(j, "budget_duration", json_string(a.duration));
        const char *const budgets[][2] = {{"max_budget", a.max_budget}, {"soft_budget", a.soft_budget}};
        for (size_t b = 0; b < 2; b++) {
            if (!budgets[b][1]) continue;
            if (!read_usd(budgets[b][1], &usd)) {
                fprintf(stderr, "aigw: teams create: '%s' is not a number of USD\n", budgets[b][1]);
                json_decref(j);
                return 2;
            }
            json_object_set_new(j, budgets[b][0], json_real(usd));
        }
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        req.body = body;
        req.body_len = strlen(body);
    }
    int rc = run_request(a.config, a.url, a.direct, &req, print_teams_reply, &a);
    free(body);
    return rc;
}
