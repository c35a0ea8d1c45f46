/* top.h — `aigw top`: the terminal UI on a running gateway's admin API, /metrics and request
 * log (docs/ui.md). Only a client: everything it shows comes from those answers. */
#ifndef AIGW_TOP_H
#define AIGW_TOP_H

/* argv after "top": [-c FILE] [--url URL] [--key KEY] [--no-color] [-h]. Runs until q or a
 * signal (SIGINT, SIGTERM, SIGHUP), restoring the terminal on every way out. Returns the exit
 * code (2: a mistake on the command line; 1: it could not start). */
int top_command(int argc, char **argv);

#endif
