/* ui_files.c — the table of the dashboard's files that ui_data.S embeds: a request path below
 * /ui to the bytes, their length and content type.
 *
 * Only the table's exact names are served, so no path a client sends ("..", "%2e", a directory)
 * can reach anything else, and there is no file system access at run time. Rejected: serving
 * ui/ from disk (a running gateway would depend on files beside it, and a path check would
 * stand between a client and the file system); a generated C array (a build step for what the
 * assembler's .incbin does as it is). Adding a file is a line here and a line in ui_data.S; the
 * unit test checks every row has bytes. */
#include <string.h>

#include "ui/ui.h"

#define UI_DECLARE(name)                                                                                     \
    extern const unsigned char ui_##name[];                                                                  \
    extern const uint64_t ui_##name##_len;

UI_DECLARE(index_html)
UI_DECLARE(app_css)
UI_DECLARE(app_js)
UI_DECLARE(api_js)
UI_DECLARE(dom_js)
UI_DECLARE(charts_js)
UI_DECLARE(metrics_js)
UI_DECLARE(overview_js)
UI_DECLARE(logs_js)
UI_DECLARE(keys_js)
UI_DECLARE(teams_js)
UI_DECLARE(spend_js)
UI_DECLARE(routes_js)
UI_DECLARE(prompts_js)
UI_DECLARE(alerts_js)
UI_DECLARE(favicon_svg)

#define HTML "text/html; charset=utf-8"
#define CSS "text/css; charset=utf-8"
#define JS "text/javascript; charset=utf-8"
#define SVG "image/svg+xml"

static const ui_file files[] = {
    {"index.html", HTML, ui_index_html, &ui_index_html_len},
    {"app.css", CSS, ui_app_css, &ui_app_css_len},
    {"js/app.js", JS, ui_app_js, &ui_app_js_len},
    {"js/api.js", JS, ui_api_js, &ui_api_js_len},
    {"js/dom.js", JS, ui_dom_js, &ui_dom_js_len},
    {"js/charts.js", JS, ui_charts_js, &ui_charts_js_len},
    {"js/metrics.js", JS, ui_metrics_js, &ui_metrics_js_len},
    {"js/overview.js", JS, ui_overview_js, &ui_overview_js_len},
    {"js/logs.js", JS, ui_logs_js, &ui_logs_js_len},
    {"js/keys.js", JS, ui_keys_js, &ui_keys_js_len},
    {"js/teams.js", JS, ui_teams_js, &ui_teams_js_len},
    {"js/spend.js", JS, ui_spend_js, &ui_spend_js_len},
    {"js/routes.js", JS, ui_routes_js, &ui_routes_js_len},
    {"js/prompts.js", JS, ui_prompts_js, &ui_prompts_js_len},
    {"js/alerts.js", JS, ui_alerts_js, &ui_alerts_js_len},
    {"favicon.svg", SVG, ui_favicon_svg, &ui_favicon_svg_len},
};

const char ui_security_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
    "data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cache-Control: no-store\r\n";

const ui_file *ui_file_find(const char *path)
{
    if (strncmp(path, "/ui", 3) != 0) return NULL;
    path += 3;
    if (!*path || !strcmp(path, "/")) return &files[0];
    if (*path != '/') return NULL; /* "/uix" */
    path++;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!strcmp(files[i].path, path)) return &files[i];
    return NULL;
}

size_t ui_file_count(void)
{
    return sizeof files / sizeof files[0];
}

const ui_file *ui_file_at(size_t i)
{
    return i < ui_file_count() ? &files[i] : NULL;
}
