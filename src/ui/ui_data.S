/* ui_data.S — the dashboard's files (ui/) compiled into the binary, so `aigw serve` answers
 * /ui with no file beside it and nothing fetched at run time. One UI_FILE line per file: the
 * assembler's .incbin reads it at build time (paths from the repository's root, as make runs
 * it) and writes its length beside it as ui_NAME_len; ui_files.c's table names each one. The
 * Makefile makes this object depend on every file of ui/. */
    .macro UI_FILE name, file
    .section .rodata
    .global ui_\name
    .balign 16
ui_\name:
    .incbin "\file"
ui_\name\()_end:
    .byte 0
    .balign 8
    .global ui_\name\()_len
ui_\name\()_len:
    .quad ui_\name\()_end - ui_\name
    .endm

    UI_FILE index_html, "ui/index.html"
    UI_FILE app_css, "ui/app.css"
    UI_FILE app_js, "ui/js/app.js"
    UI_FILE api_js, "ui/js/api.js"
    UI_FILE dom_js, "ui/js/dom.js"
    UI_FILE charts_js, "ui/js/charts.js"
    UI_FILE metrics_js, "ui/js/metrics.js"
    UI_FILE overview_js, "ui/js/overview.js"
    UI_FILE logs_js, "ui/js/logs.js"
    UI_FILE keys_js, "ui/js/keys.js"
    UI_FILE teams_js, "ui/js/teams.js"
    UI_FILE spend_js, "ui/js/spend.js"
    UI_FILE routes_js, "ui/js/routes.js"
    UI_FILE prompts_js, "ui/js/prompts.js"
    UI_FILE alerts_js, "ui/js/alerts.js"
    UI_FILE favicon_svg, "ui/favicon.svg"

    .section .note.GNU-stack, "", @progbits
