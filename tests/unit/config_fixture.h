/* config_fixture.h — for unit tests: a config loaded from YAML text, the way `aigw serve`
 * loads one (a file, then gateway_config_load), so tests exercise the real loader. Include
 * after cmocka.h. */
#ifndef AIGW_TESTS_CONFIG_FIXTURE_H
#define AIGW_TESTS_CONFIG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "gateway/gateway.h"

/* The config text as a loaded config; fails the test (with the loader's message) otherwise. */
static inline aigw_config *config_from_text(const char *text)
{
    static char err[1024];
    char dir[] = "/tmp/aigw-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/aigw.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    aigw_config *cfg = gateway_config_load(path, err, sizeof err);
    unlink(path);
    rmdir(dir);
    if (!cfg) fail_msg("gateway_config_load: %s", err);
    return cfg;
}

#endif
