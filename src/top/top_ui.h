/* top_ui.h — inside src/top only: the screens of `aigw top` drawn with ncurses and the keys
 * they take (top_ui.c), given a running client (top_client.h). top.c owns the terminal. */
#ifndef AIGW_TOP_UI_H
#define AIGW_TOP_UI_H

#include <signal.h>
#include <stdbool.h>

#include "top/top_client.h"

typedef struct top_ui_options {
    const char *url; /* shown in the header */
    bool color;      /* the terminal has colours and they were not turned off */
    bool utf8;       /* the locale's charset is UTF-8: block characters for sparklines */
    bool keyless;    /* no key (a gateway without auth): only /metrics answers */
} top_ui_options;

/* Runs the screens until q or until *stop is set (a signal). The terminal is in curses mode on
 * entry and left in it. Returns 0. */
int top_ui_run(top_client *c, const top_ui_options *o, volatile sig_atomic_t *stop);

#endif
