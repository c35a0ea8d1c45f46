/* top.c — the `aigw top` command (top.h): where the gateway is, with which key, and the
 * terminal's life.
 *
 * The gateway is --url (else http:// and the config's `listen:`, 0.0.0.0 read as 127.0.0.1) and
 * the key --key (else $AIGW_ADMIN_KEY, else the config's auth.master_key): an admin key is
 * enough to watch and to manage user keys; editing the config takes the master key, as the
 * admin API says. A config without `auth:` (as `make run`'s) needs no key, and neither does
 * --url with no config file to read one from: such a gateway serves /metrics to anyone, so the
 * overview's numbers and targets show, and the screens that need the admin API say why not.
 *
 * The terminal is always given back: endwin() runs when the UI ends, from an atexit handler
 * on any other exit, and after SIGINT, SIGTERM or SIGHUP — their handlers only set a flag
 * (nothing else is async-signal-safe in curses); getch's 100 ms timeout notices it, the loop
 * ends, the terminal is restored, and the signal is raised again with its default action so
 * the exit status says what ended it. Colours are used when the terminal has them and neither
 * --no-color nor $NO_COLOR says otherwise; the screens also read in monochrome. */
#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "top/top.h"
#include "top/top_client.h"
#include "top/top_ui.h"

static const char help_text[] =
    "usage: aigw top [-c FILE] [--url URL] [--key KEY] [--no-color]\n"
    "\n"
    "A live terminal view of a running gateway: traffic, latency, errors, spend, each provider\n"
    "target's breaker, the request log's tail; screens to manage keys, edit the config, reset\n"
    "breakers and see alerts (docs/ui.md). Tab moves between screens, ? lists the keys, q quits.\n"
    "\n"
    "  -c, --config FILE   where the gateway and the key come from when --url / --key are not\n"
    "                      given: its listen: and auth.master_key (default: ./aigw.yaml)\n"
    "  --url URL           the gateway's base URL, e.g. http://127.0.0.1:8080\n"
    "  --key KEY           an admin key or the master key (else $AIGW_ADMIN_KEY, else the\n"
    "                      config's master key; none for a gateway without auth:, which\n"
    "                      shows its metrics only)\n"
    "  --no-color          monochrome (also when $NO_COLOR is set or the terminal has no colours)\n"
    "  -h, --help          this help\n";

static volatile sig_atomic_t stop_signal;
static bool curses_on;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void restore_terminal(void)
{
    if (curses_on && !isendwin()) endwin();
    curses_on = false;
}

static int bad(const char *what, const char *arg)
{
    fprintf(stderr, "aigw: top: %s '%s' (see 'aigw top --help')\n", what, arg);
    return 2;
}

int top_command(int argc, char **argv)
{
    const char *config_path = NULL, *url = NULL, *key = NULL;
    bool color = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help_text, stdout);
            return 0;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && has_value) {
            config_path = argv[++i];
        } else if (!strcmp(a, "--url") && has_value) {
            url = argv[++i];
        } else if (!strcmp(a, "--key") && has_value) {
            key = argv[++i];
        } else if (!strcmp(a, "--no-color")) {
            color = false;
        } else {
            return bad(has_value || a[0] != '-' ? "unknown argument" : "missing value for", a);
        }
    }
    if (!key) key = getenv("AIGW_ADMIN_KEY");
    char url_buf[300];
    aigw_config *cfg = NULL;
    /* --url without a key and with no config file to read one from: no key */
    bool keyless = url && !key && !config_path && access("aigw.yaml", F_OK) != 0;
    if ((!url || !key) && !keyless) {
        char err[8192];
        const char *path = config_path ? config_path : "aigw.yaml";
        cfg = config_load(path, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "aigw: top: %s\n(or give --url and --key)\n", err);
            return 1;
        }
        if (!url) {
            const char *host = cfg->listen_host;
            if (!host || !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) host = "127.0.0.1";
            snprintf(url_buf, sizeof url_buf, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host,
                     (int)cfg->listen_port);
            url = url_buf;
        }
        if (!key) key = cfg->auth.master_key;
        if (!key && cfg->auth.mode == AUTH_ON) {
            fprintf(stderr,
                    "aigw: top: %s has no auth.master_key (or its variable is unset): give --key (an "
                    "admin key)\n",
                    path);
            config_free(cfg);
            return 1;
        }
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        config_free(cfg);
        return bad("the URL must start with http:// or https://:", url);
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "aigw: top: needs a terminal\n");
        config_free(cfg);
        return 1;
    }
    char err[256];
    top_client *client = top_client_start(url, key, err, sizeof err);
    char url_shown[300];
    snprintf(url_shown, sizeof url_shown, "%s", url);
    config_free(cfg); /* key and url were copied by the client and above */
    if (!client) {
        fprintf(stderr, "aigw: top: %s\n", err);
        return 1;
    }

    setlocale(LC_ALL, "");
    bool utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr, "aigw: top: this terminal (TERM=%s) cannot be driven\n",
                getenv("TERM") ? getenv("TERM") : "");
        top_client_stop(client);
        return 1;
    }
    curses_on = true;
    atexit(restore_terminal);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    cbreak();
    noecho();
    curs_set(0);
    color = color && !getenv("NO_COLOR") && has_colors();
    top_ui_options o = {.url = url_shown, .color = color, .utf8 = utf8, .keyless = !key};
    top_ui_run(client, &o, &stop_signal);
    restore_terminal();
    delscreen(scr);
    top_client_stop(client);
    if (stop_signal) {
        int sig = stop_signal;
        signal(sig, SIG_DFL);
        raise(sig);
    }
    return 0;
}
