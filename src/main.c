/* main.c — the `aigw` command: subcommands of the one binary.
 *
 *   aigw serve [-c FILE] [--listen HOST:PORT]   run the gateway
 *   aigw config check FILE                      validate a config without serving
 *   aigw config import litellm FILE             a LiteLLM config.yaml as aigw YAML
 *   aigw keys create|list|show|disable|enable|rotate|delete   gateway keys (src/admin)
 *   aigw vkeys create|list|show|rotate|delete                  virtual keys (src/admin)
 *   aigw teams create|list|show|delete                          teams (src/admin)
 *   aigw spend [--by key|team|model|day|hour] [--from D] [--to D]   spend (src/admin)
 *   aigw version
 *   aigw help [COMMAND], aigw COMMAND --help
 *
 * Help goes to stdout with exit 0; a mistake on the command line names the argument on stderr
 * and exits 2; a config that does not load exits 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config/config.h"
#include "gateway/gateway.h"
#include "admin/admin.h"
#include "gateway/import_litellm.h"
#include "pipeline/pipeline.h"
#include "providers/response_store.h"
#include "server/server.h"
#include "top/top.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/version.h"

#define DEFAULT_CONFIG "aigw.yaml"

static const char usage_text[] =
    "usage: aigw serve [-c FILE] [--listen HOST:PORT]   run the gateway\n"
    "       aigw config check FILE                      validate a config file\n"
    "       aigw config import litellm FILE             print a LiteLLM config.yaml as aigw YAML\n"
    "       aigw keys create|list|show|disable|rotate   gateway keys (aigw keys --help)\n"
    "       aigw vkeys create|list|show|rotate|delete   virtual keys (aigw vkeys --help)\n"
    "       aigw teams create|list|show|delete          teams (aigw teams --help)\n"
    "       aigw spend [--by key|team|model|day]        what keys spent (aigw spend --help)\n"
    "       aigw top [-c FILE] [--url URL] [--key KEY]  the terminal UI on a running gateway\n"
    "       aigw version\n"
    "       aigw help [COMMAND]                         help on serve or config\n";

static const char serve_help[] =
    "usage: aigw serve [-c FILE] [--listen HOST:PORT]\n"
    "\n"
    "Runs the gateway on the config FILE until SIGTERM or SIGINT (which drain in-flight\n"
    "requests first). SIGHUP reloads FILE; SIGUSR1 reopens the access log.\n"
    "\n"
    "  -c, --config FILE        the config file (default: ./" DEFAULT_CONFIG "; start from the\n"
    "                           repository's aigw.example.yaml)\n"
    "  -l, --listen HOST:PORT   listen there instead of the file's `listen:` (a reload keeps it;\n"
    "                           PORT 0 picks a free port)\n"
    "  -h, --help               this help\n";

static const char config_help[] =
    "usage: aigw config check FILE\n"
    "       aigw config import litellm FILE\n"
    "\n"
    "check: loads FILE as `aigw serve` would and prints a summary (exit 0), or every mistake it\n"
    "finds as FILE:LINE: message, in the file's order (at most 50; exit 1). Warnings (stderr, exit 0) name a "
    "provider whose api_key\n"
    "variable is unset.\n"
    "import litellm: reads a LiteLLM proxy config.yaml (model_list) and prints the same models\n"
    "as aigw YAML on stdout (os.environ/NAME becomes ${NAME}); what it cannot map is FILE:LINE.\n";

static int usage(FILE *out)
{
    fputs(usage_text, out);
    return out == stderr ? 2 : 0;
}

/* A command-line mistake: named, with where to read more. */
static int bad_argument(const char *command, const char *what, const char *arg)
{
    fprintf(stderr, "aigw: %s: %s '%s' (see 'aigw help %s')\n", command, what, arg, command);
    return 2;
}

/* --listen HOST:PORT, kept for the whole run: applied to the first config and to every reload,
 * so the command line wins over the file's `listen:` and a reload never sees it change (the
 * file's `listen:` is not compared while an override is in force). */
static char *listen_host_override;
static int listen_port_override = -1;

/* HOST:PORT as the config's `listen:` takes it ([::1]:8080 for IPv6). False if malformed. */
static bool parse_listen_arg(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || end == colon + 1 || port < 0 || port > 65535) return false;
    const char *host = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') host++, hlen -= 2;
    if (hlen == 0) return false;
    free(listen_host_override);
    listen_host_override = xstrndup(host, hlen);
    listen_port_override = (int)port;
    return true;
}

static void listen_override_apply(aigw_config *cfg)
{
    if (!listen_host_override) return;
    free(cfg->listen_host);
    cfg->listen_host = xstrdup(listen_host_override);
    cfg->listen_port = listen_port_override;
}

/* The loader server_run calls on SIGHUP: gateway_config_reload, then the command line's
 * override. */
static aigw_config *serve_reload(const char *path, const aigw_config *previous, char *err, size_t errlen)
{
    aigw_config *cfg = gateway_config_reload(path, previous, err, errlen);
    if (!cfg) return NULL;
    listen_override_apply(cfg);
    if (!config_exposure_ok(cfg, err, errlen)) {
        config_release(cfg);
        return NULL;
    }
    response_store_configure(cfg->responses_store_bytes, cfg->responses_store_ttl_ms);
    return cfg;
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE"; NULL if arg is not it. *i
 * moves past a separate value; *missing is set when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *shortname, const char *longname,
                                bool *missing)
{
    const char *arg = argv[*i];
    size_t n = strlen(longname);
    if (!strncmp(arg, longname, n) && arg[n] == '=') return arg + n + 1;
    if (strcmp(arg, longname) && (!shortname || strcmp(arg, shortname))) return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return arg;
    }
    return argv[++*i];
}

static void warn_unset_keys(const aigw_config *cfg);

/* Room for the mistakes a config load reports (at most 50 lines, then "and N more"). */
#define LOAD_ERRORS_BYTES 32768

/* A refused config's mistakes, one "aigw: FILE:LINE: message" line each. */
static void print_load_errors(const char *err)
{
    for (const char *line = err; *line;) {
        size_t len = strcspn(line, "\n");
        fprintf(stderr, "aigw: %.*s\n", (int)len, line);
        line += len + (line[len] == '\n');
    }
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(serve_help, stdout);
            return 0;
        } else if ((v = option_value(argc, argv, &i, "-c", "--config", &missing))) {
            if (missing) return bad_argument("serve", "missing FILE after", v);
            path = v;
        } else if ((v = option_value(argc, argv, &i, "-l", "--listen", &missing))) {
            if (missing) return bad_argument("serve", "missing HOST:PORT after", v);
            if (!parse_listen_arg(v)) return bad_argument("serve", "--listen wants HOST:PORT, not", v);
        } else {
            return bad_argument("serve", "unknown argument", argv[i]);
        }
    }
    if (!path) {
        path = DEFAULT_CONFIG;
        if (access(path, F_OK) != 0) {
            fprintf(stderr,
                    "aigw: serve: no config file: looked for ./" DEFAULT_CONFIG " (none here) and no -c FILE "
                    "was given.\n"
                    "  Start from the example: cp aigw.example.yaml " DEFAULT_CONFIG
                    " (in the aigw repository), "
                    "then aigw serve -c " DEFAULT_CONFIG "\n"
                    "  (or try it at once: make run). See aigw help serve.\n");
            return 1;
        }
    }
    static char err[LOAD_ERRORS_BYTES];
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    if (!cfg) {
        print_load_errors(err);
        return 1;
    }
    listen_override_apply(cfg);
    if (!config_exposure_ok(cfg, err, sizeof err)) {
        print_load_errors(err);
        config_free(cfg);
        return 1;
    }
    log_set_json(cfg->log_json); /* from here on (the refusals above stay text: nothing runs yet) */
    warn_unset_keys(cfg);
    response_store_configure(cfg->responses_store_bytes, cfg->responses_store_ttl_ms);
    signal(SIGPIPE, SIG_IGN);
    int status = server_run(cfg, &pipeline_app, serve_reload); /* reloads (SIGHUP) load the same way */
    response_store_clear();
    return status;
}

/* The providers whose api_key names a variable that is not set: the client's own key goes
 * upstream instead (none when gateway auth is on: the client's key is then a gateway key). A
 * warning, not an error, so the example config runs without keys. */
static void warn_unset_keys(const aigw_config *cfg)
{
    bool auth = cfg->auth.mode == AUTH_ON;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const provider_config *p = &cfg->providers[i];
        if (p->api_key_env)
            log_event(LOG_WARN, "config_warning", "%s:%d: warning: provider %s: api_key: %s is not set; %s",
                      cfg->path, p->api_key_line, p->name, p->api_key_env,
                      auth ? "no key is sent to it (gateway auth is on: a client's key is never forwarded)"
                           : "the client's own Authorization is forwarded");
    }
    if (cfg->auth.master_key_env)
        log_event(LOG_WARN, "config_warning",
                  "%s:%d: warning: auth.master_key: %s is not set; there is no master key", cfg->path,
                  cfg->auth.line, cfg->auth.master_key_env);
}

static int cmd_config_check(const char *path)
{
    static char err[LOAD_ERRORS_BYTES];
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    if (!cfg) {
        print_load_errors(err);
        return 1;
    }
    warn_unset_keys(cfg);
    char exposed[1024];
    if (!config_exposure_ok(cfg, exposed, sizeof exposed)) {
        print_load_errors(exposed);
        config_free(cfg);
        return 1;
    }
    printf("%s: ok (%zu provider%s, %zu model%s, listen %s:%d)\n", path, cfg->nproviders,
           cfg->nproviders == 1 ? "" : "s", cfg->nroutes, cfg->nroutes == 1 ? "" : "s", cfg->listen_host,
           cfg->listen_port);
    config_free(cfg);
    return 0;
}

/* `aigw config` with anything but `check FILE`. */
static int cmd_config_other(int argc, char **argv)
{
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help"))) {
        fputs(config_help, stdout);
        return 0;
    }
    if (argc == 0 || (!strcmp(argv[0], "check") && argc == 1)) {
        fputs(config_help, stderr);
        return 2;
    }
    if (!strcmp(argv[0], "check")) return bad_argument("config", "unknown argument", argv[2 < argc ? 2 : 1]);
    return bad_argument("config", "unknown subcommand", argv[0]);
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "help") && argc >= 3) { /* aigw help COMMAND */
        if (!strcmp(argv[2], "serve")) return fputs(serve_help, stdout) < 0;
        if (!strcmp(argv[2], "config")) return fputs(config_help, stdout) < 0;
        if (!strcmp(argv[2], "keys")) {
            char *help[] = {"--help", NULL};
            return admin_keys_command(1, help);
        }
        if (!strcmp(argv[2], "vkeys")) {
            char *help[] = {"--help", NULL};
            return admin_vkeys_command(1, help);
        }
        if (!strcmp(argv[2], "spend")) {
            char *help[] = {"--help", NULL};
            return admin_spend_command(1, help);
        }
        if (!strcmp(argv[2], "teams")) {
            char *help[] = {"--help", NULL};
            return admin_teams_command(1, help);
        }
        if (!strcmp(argv[2], "top")) {
            char *help[] = {"--help", NULL};
            return top_command(1, help);
        }
        if (!strcmp(argv[2], "version") || !strcmp(argv[2], "help")) return usage(stdout);
        fprintf(stderr, "aigw: help: unknown command '%s'\n", argv[2]);
        return usage(stderr);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "aigw: curl_global_init failed\n");
        return 1;
    }
    int rc;
    if (!strcmp(argv[1], "serve"))
        rc = cmd_serve(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "config") && argc == 4 && !strcmp(argv[2], "check"))
        rc = cmd_config_check(argv[3]);
    else if (!strcmp(argv[1], "config") && argc == 5 && !strcmp(argv[2], "import") &&
             !strcmp(argv[3], "litellm"))
        rc = import_litellm_command(argv[4]);
    else if (!strcmp(argv[1], "keys"))
        rc = admin_keys_command(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "vkeys"))
        rc = admin_vkeys_command(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "spend"))
        rc = admin_spend_command(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "teams"))
        rc = admin_teams_command(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "top"))
        rc = top_command(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "config")) /* keep last of the config subcommands */
        rc = cmd_config_other(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version"))
        rc = printf("aigw %s\n", AIGW_VERSION) < 0;
    else if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        rc = usage(stdout);
    else {
        fprintf(stderr, "aigw: unknown command '%s'\n", argv[1]);
        rc = usage(stderr);
    }
    curl_global_cleanup();
    return rc;
}
