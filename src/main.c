/* main.c — the `aigw` command: subcommands of the one binary.
 *
 *   aigw serve -c FILE       run the gateway
 *   aigw config check FILE   validate a config without serving
 *   aigw version
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "config/config.h"
#include "gateway/gateway.h"
#include "gateway/import_litellm.h"
#include "pipeline/pipeline.h"
#include "server/server.h"

#define AIGW_VERSION "0.1.0"

static int usage(FILE *out)
{
    fprintf(out, "usage: aigw serve [-c FILE]        run the gateway (default config: aigw.yaml)\n"
                 "       aigw config check FILE     validate a config file\n"
                 "       aigw version\n");
    return out == stderr ? 2 : 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = "aigw.yaml";
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            path = argv[++i];
        else
            return usage(stderr);
    }
    char err[1024];
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "aigw: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (cfg->providers[i].api_key_env)
            fprintf(stderr, "aigw: provider %s: %s is not set; the client's own Authorization is forwarded\n",
                    cfg->providers[i].name, cfg->providers[i].api_key_env);
    signal(SIGPIPE, SIG_IGN);
    return server_run(cfg, &pipeline_app, gateway_config_reload); /* reloads (SIGHUP) load the same way */
}

static int cmd_config_check(const char *path)
{
    char err[1024];
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "aigw: %s\n", err);
        return 1;
    }
    printf("%s: ok (%zu provider%s, %zu model%s, listen %s:%d)\n", path, cfg->nproviders,
           cfg->nproviders == 1 ? "" : "s", cfg->nroutes, cfg->nroutes == 1 ? "" : "s", cfg->listen_host,
           cfg->listen_port);
    config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
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
    else if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version"))
        rc = printf("aigw %s\n", AIGW_VERSION) < 0;
    else if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        rc = usage(stdout);
    else
        rc = usage(stderr);
    curl_global_cleanup();
    return rc;
}
