/* test_admin.c — the admin API's operations against a store file: the OpenAPI document lists
 * exactly the routes admin.c answers (and each with its method), fields are bounded and
 * unknown ones refused by name, durations read as LiteLLM writes them, a key named by its
 * plaintext is never repeated in a message, a virtual key's secret is taken only with a
 * vault key and never given back (the hint and the version only); budgets and teams read and
 * shown in LiteLLM's names; spend's group_by, from and to; the running config is shown with
 * its secrets masked, in block and flow style, quoted or not, while ${ENV} references and
 * names stay. */
#include "../../src/admin/admin.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256];
static store *st;
static const access_secret secret = {{9, 8, 7}};

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/aigw-test-admin-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_true(access_init());
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/a.db", dir);
    st = store_open(path, err, sizeof err);
    assert_non_null(st);
    return 0;
}

static int teardown(void **state)
{
    store_close(st);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static json_t *call(int method, const char *path, const char *body, int want_status)
{
    admin_request req = {
        .method = method, .path = path, .query = "", .body = body, .body_len = body ? strlen(body) : 0};
    const char *q = strchr(path, '?');
    char p[512];
    if (q) {
        snprintf(p, sizeof p, "%.*s", (int)(q - path), path);
        req.path = p;
        req.query = q + 1;
    }
    admin_reply r;
    admin_handle(st, &secret, &req, &r);
    if (r.status != want_status)
        fail_msg("%s %s: status %d, want %d: %s", http_method_str(method), path, r.status, want_status,
                 r.body);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(j);
    admin_reply_free(&r);
    return j;
}

/* call() as an admin key (not the master key) asks. */
static int call_as_admin_key(int method, const char *path, const char *body)
{
    admin_request req = {.method = method,
                         .path = path,
                         .query = "",
                         .body = body,
                         .body_len = body ? strlen(body) : 0,
                         .admin_key = true};
    admin_reply r;
    admin_handle(st, &secret, &req, &r);
    int status = r.status;
    if (status == 403) assert_non_null(strstr(r.body, "master_key_required"));
    admin_reply_free(&r);
    return status;
}

static const char *method_name(int m)
{
    switch (m) {
    case HTTP_GET: return "get";
    case HTTP_POST: return "post";
    case HTTP_PATCH: return "patch";
    case HTTP_PUT: return "put";
    case HTTP_DELETE: return "delete";
    default: return "?";
    }
}

/* Every route is in the document with its method; the document lists nothing else. */
static void test_openapi_matches_routes(void **state)
{
    json_error_t jerr;
    json_t *doc = json_loads(admin_openapi_json, 0, &jerr);
    if (!doc) fail_msg("the OpenAPI document is not JSON: %s", jerr.text);
    json_t *paths = json_object_get(doc, "paths");
    size_t documented = 0;
    const char *path;
    json_t *ops;
    json_object_foreach(paths, path, ops) documented += json_object_size(ops);
    assert_int_equal(documented, admin_nroutes());
    for (size_t i = 0; i < admin_nroutes(); i++) {
        int method;
        const char *pattern;
        admin_route_at(i, &method, &pattern);
        if (!json_object_get(json_object_get(paths, pattern), method_name(method)))
            fail_msg("%s %s is answered but not in the OpenAPI document", method_name(method), pattern);
    }
    json_decref(doc);
}

static void test_fields(void **state)
{
    json_t *k = call(HTTP_POST, "/admin/keys",
                     "{\"key_alias\":\"a\",\"models\":[\"gpt-*\"],\"duration\":\"2w\","
                     "\"metadata\":{\"team\":\"t\",\"tags\":[\"x\"]}}",
                     200);
    const char *key = json_string_value(json_object_get(k, "key"));
    assert_non_null(key);
    assert_string_equal(json_string_value(json_object_get(k, "team_id")), "t");
    char path[600];
    /* by its plaintext, LiteLLM's way; the answer never repeats it */
    snprintf(path, sizeof path, "/key/info?key=%s", key);
    json_t *info = call(HTTP_GET, path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(info, "info"), "key_alias")), "a");
    assert_null(json_object_get(json_object_get(info, "info"), "key"));
    json_decref(info);
    snprintf(path, sizeof path, "{\"keys\":[\"%s\"]}", "aigw-doesnotexist0000000000000000000000000000000");
    json_t *missing = call(HTTP_POST, "/key/delete", path, 404);
    char *text = json_dumps(missing, 0);
    assert_null(strstr(text, "aigw-doesnotexist"));
    free(text);
    json_decref(missing);
    json_decref(k);

    static const struct {
        const char *body, *message;
    } bad[] = {
        {"{\"nope\":1}", "unknown field 'nope'"},
        {"{\"models\":\"gpt\"}", "'models' must be a list"},
        {"{\"duration\":\"3y\"}", "'duration' must be like"},
        {"{\"rpm_limit\":-1}", "'rpm_limit' must be a whole number"},
        {"{\"max_budget\":\"a\"}", "'max_budget' must be a number"},
        {"{\"key_alias\":\"\"}", "'key_alias' must be a string of 1 to 256"},
        {"[1]", "must be a JSON object"},
        {"{\"a\":1,\"a\":2}", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *e = call(HTTP_POST, "/admin/keys", bad[i].body, 400);
        const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        if (!strstr(msg, bad[i].message)) fail_msg("%s: '%s' lacks '%s'", bad[i].body, msg, bad[i].message);
        json_decref(e);
    }
    /* bounds: 65 models, a 257-byte name */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"models\":[");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"m\"", i ? "," : "");
    snprintf(big + n, sizeof big - n, "]}");
    json_decref(call(HTTP_POST, "/admin/keys", big, 400));
    char longname[400];
    snprintf(longname, sizeof longname, "{\"key_alias\":\"%0257d\"}", 0);
    json_decref(call(HTTP_POST, "/admin/keys", longname, 400));
    assert_int_equal(duration_seconds("30d"), 30 * 86400);
    assert_int_equal(duration_seconds("1mo"), 2592000);
    assert_int_equal(duration_seconds("permanent"), 0);
    assert_int_equal(duration_seconds("-1d"), -1);
    json_decref(call(HTTP_PUT, "/admin/keys", NULL, 405));
    json_decref(call(HTTP_GET, "/admin/nothing", NULL, 404));
    json_decref(call(HTTP_POST, "/admin/keys", "{\"key_alias\":\"a\"}", 409));
}

static void test_virtual_keys(void **state)
{
    (void)state;
    static const char made[] = "{\"name\":\"vk\",\"provider\":\"openai\",\"secret\":\"sk-unit-SECRET-9876\"}";
    /* no vault key: nothing is stored */
    store_set_vault(st, NULL);
    json_t *e = call(HTTP_POST, "/admin/virtual-keys", made, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "code")),
                        "vault_key_not_configured");
    json_decref(e);
    vault_key k;
    memset(&k, 5, sizeof k);
    store_set_vault(st, &k);
    json_t *v = call(HTTP_POST, "/admin/virtual-keys", made, 200);
    char *text = json_dumps(v, 0);
    assert_null(strstr(text, "SECRET"));
    free(text);
    assert_string_equal(json_string_value(json_object_get(v, "hint")), "…9876");
    assert_int_equal(json_integer_value(json_object_get(v, "version")), 1);
    json_decref(v);
    /* a rotation, Portkey's `key`; a PATCH without a secret keeps the version */
    v = call(HTTP_POST, "/admin/virtual-keys/vk/rotate", "{\"key\":\"sk-unit-NEW-5555\"}", 200);
    assert_int_equal(json_integer_value(json_object_get(v, "version")), 2);
    json_decref(v);
    v = call(HTTP_PATCH, "/admin/virtual-keys/vk", "{\"base_url\":\"https://example.test/v1/\"}", 200);
    assert_int_equal(json_integer_value(json_object_get(v, "version")), 2);
    assert_string_equal(json_string_value(json_object_get(v, "base_url")), "https://example.test/v1");
    json_decref(v);
    json_decref(call(HTTP_POST, "/admin/virtual-keys", made, 409));
    /* bounds: a 65-character name, a secret past 8192 bytes */
    char big[9000];
    snprintf(big, sizeof big, "{\"name\":\"%065d\",\"provider\":\"openai\",\"secret\":\"s\"}", 0);
    json_decref(call(HTTP_POST, "/admin/virtual-keys", big, 400));
    int n = snprintf(big, sizeof big, "{\"name\":\"x\",\"provider\":\"openai\",\"secret\":\"");
    memset(big + n, 'a', 8193);
    snprintf(big + n + 8193, sizeof big - (size_t)n - 8193, "\"}");
    json_decref(call(HTTP_POST, "/admin/virtual-keys", big, 400));
    json_decref(call(HTTP_GET, "/admin/virtual-keys/x", NULL, 404));
    json_decref(call(HTTP_DELETE, "/admin/virtual-keys/vk", NULL, 200));
    json_t *list = call(HTTP_GET, "/admin/virtual-keys", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "data")), 0);
    json_decref(list);
}

static void test_budgets_and_teams(void **state)
{
    json_t *k = call(HTTP_POST, "/key/generate",
                     "{\"max_budget\":5,\"soft_budget\":4,\"budget_duration\":\"24h\"}", 200);
    assert_true(json_real_value(json_object_get(k, "soft_budget")) == 4);
    assert_string_equal(json_string_value(json_object_get(k, "budget_duration")), "1d");
    assert_true(json_real_value(json_object_get(k, "spend")) == 0);
    const char *reset = json_string_value(json_object_get(k, "budget_reset_at"));
    assert_non_null(reset);
    assert_non_null(strstr(reset, "T00:00:00Z")); /* a day's period starts at UTC midnight */
    json_decref(k);
    static const struct {
        const char *body, *message;
    } bad[] = {
        {"{\"budget_duration\":\"3y\"}", "'budget_duration' must be like"},
        {"{\"soft_budget\":-1}", "'soft_budget' must be a number"},
        {"{\"max_budget\":1e13}", "'max_budget' must be a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *e = call(HTTP_POST, "/admin/keys", bad[i].body, 400);
        const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        if (!strstr(msg, bad[i].message)) fail_msg("%s: '%s' lacks '%s'", bad[i].body, msg, bad[i].message);
        json_decref(e);
    }

    json_t *t = call(HTTP_POST, "/team/new",
                     "{\"team_id\":\"eng\",\"team_alias\":\"Engineering\",\"models\":[\"gpt-*\"],"
                     "\"max_budget\":100,\"budget_duration\":\"30d\",\"rpm_limit\":10,\"tpm_limit\":1000}",
                     200);
    assert_string_equal(json_string_value(json_object_get(t, "team_id")), "eng");
    assert_string_equal(json_string_value(json_object_get(t, "budget_duration")), "30d");
    assert_int_equal(json_integer_value(json_object_get(t, "tpm_limit")), 1000);
    json_decref(t);
    json_decref(call(HTTP_POST, "/team/new", "{\"team_id\":\"eng\"}", 409));
    json_decref(call(HTTP_POST, "/admin/teams", "{\"team_alias\":\"Engineering\"}", 409));
    json_decref(call(HTTP_POST, "/admin/teams", "{\"members\":[]}", 400));
    json_t *info = call(HTTP_GET, "/team/info?team_id=Engineering", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(info, "team_id")), "eng");
    json_decref(info);
    json_decref(call(HTTP_GET, "/team/info", NULL, 400));
    json_decref(call(HTTP_GET, "/admin/teams/nobody", NULL, 404));
    json_t *upd =
        call(HTTP_POST, "/team/update", "{\"team_id\":\"eng\",\"blocked\":true,\"models\":[]}", 200);
    assert_true(json_is_true(json_object_get(upd, "blocked")));
    assert_int_equal(json_array_size(json_object_get(upd, "models")), 0);
    json_decref(upd);
    json_t *list = call(HTTP_GET, "/team/list", NULL, 200);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    json_decref(call(HTTP_POST, "/team/delete", "{\"team_ids\":[\"eng\",\"nobody\"]}", 404));
    json_decref(call(HTTP_POST, "/team/delete", "{\"team_ids\":[\"eng\"]}", 200));
    json_decref(call(HTTP_DELETE, "/admin/teams/eng", NULL, 404));

    int64_t when;
    assert_true(parse_when("2026-12-06", false, &when));
    assert_int_equal(when, 1796515200);
    assert_true(parse_when("2026-12-06", true, &when)); /* a "to" date: the whole day */
    assert_int_equal(when, 1796515200 + 86400);
    assert_true(parse_when("2026-12-06T16:30:00Z", true, &when));
    assert_int_equal(when, 1796515200 + 16 * 3600 + 1800);
    assert_true(parse_when("1796515200", false, &when));
    assert_false(parse_when("yesterday", false, &when));
    assert_false(parse_when("2026-12-06T16:30:00+02:00", false, &when));
    json_t *spend = call(HTTP_GET, "/admin/spend?group_by=day&from=2026-12-06&to=2026-12-06", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(spend, "group_by")), "day");
    assert_int_equal(json_array_size(json_object_get(spend, "data")), 0);
    json_decref(spend);
    json_decref(call(HTTP_GET, "/admin/spend?group_by=user", NULL, 400));
    json_decref(call(HTTP_GET, "/admin/spend?to=soon", NULL, 400));
}

static void expect_redacted(const char *in, const char *want)
{
    size_t len;
    char *out = admin_config_redact(in, strlen(in), &len);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_config_redact(void **state)
{
    expect_redacted("providers:\n  - name: a\n    api_key: sk-live-123\n    base_url: http://x\n",
                    "providers:\n  - name: a\n    api_key: \"<redacted>\"\n    base_url: http://x\n");
    expect_redacted("  - {name: a, api_key: sk-1, models: [m]}\n",
                    "  - {name: a, api_key: \"<redacted>\", models: [m]}\n");
    expect_redacted("auth: {master_key: \"abc, def\"}\n", "auth: {master_key: \"<redacted>\"}\n");
    expect_redacted("api_key: ${OPENAI_API_KEY}\nsecret: '${S}'\n",
                    "api_key: ${OPENAI_API_KEY}\nsecret: '${S}'\n");
    expect_redacted("headers: {Authorization: Bearer sk-9}\n", "headers: {Authorization: \"<redacted>\"}\n");
    expect_redacted("aws_secret_access_key: abc # why\n", "aws_secret_access_key: \"<redacted>\" # why\n");
    expect_redacted("virtual_key: openai-prod\nauth: off\nauth:\n  master_key:\n",
                    "virtual_key: openai-prod\nauth: off\nauth:\n  master_key:\n");
    /* whole words of the name count: keyless and monkey_business are not secrets */
    expect_redacted(
        "keyless: ok\nmonkey_business: x\nx-api-key: k\nclient_secret: s\n",
        "keyless: ok\nmonkey_business: x\nx-api-key: \"<redacted>\"\nclient_secret: \"<redacted>\"\n");
    /* a password inside a URL or a libpq keyword string, whatever the setting's name */
    expect_redacted("auth: {store: \"postgres://aigw:s3cret@db:5432/aigw\"}\n",
                    "auth: {store: \"postgres://aigw:<redacted>@db:5432/aigw\"}\n");
    expect_redacted("store: host=db dbname=aigw password=s3cret user=x\n",
                    "store: host=db dbname=aigw password=<redacted> user=x\n");
    expect_redacted("redis: redis://:pw@127.0.0.1:6379/0\nurl: http://host/a:b@c\n",
                    "redis: redis://:<redacted>@127.0.0.1:6379/0\nurl: http://host/a:b@c\n");
    /* a value that only starts like a reference is a secret all the same */
    expect_redacted("token: ${A} and more\n", "token: \"<redacted>\"\n");
    /* a long run of name characters is copied once, not scanned again from each position */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'k', n);
    big[n] = '\0';
    size_t len;
    char *out = admin_config_redact(big, n, &len);
    assert_int_equal(len, n);
    assert_memory_equal(out, big, n);
    free(out);
    free(big);
}

/* A key's default route and role: stored and shown; the default route bounded by the key's
 * globs; an admin key's writes to admin keys refused, its others allowed. */
static void test_default_route_and_admin_keys(void **state)
{
    json_t *k =
        call(HTTP_POST, "/key/generate",
             "{\"key_alias\":\"ops\",\"user_role\":\"proxy_admin\",\"default_route\":\"cheap\"}", 200);
    assert_true(json_is_true(json_object_get(k, "admin")));
    assert_string_equal(json_string_value(json_object_get(k, "default_route")), "cheap");
    json_decref(k);
    k = call(HTTP_GET, "/admin/keys/ops", NULL, 200); /* read back from the store */
    assert_true(json_is_true(json_object_get(k, "admin")));
    assert_string_equal(json_string_value(json_object_get(k, "user_role")), "proxy_admin");
    assert_string_equal(json_string_value(json_object_get(k, "default_route")), "cheap");
    json_decref(k);
    json_decref(call(HTTP_POST, "/admin/keys", "{\"models\":[\"gpt-*\"],\"default_route\":\"cheap\"}", 400));
    json_decref(call(HTTP_POST, "/admin/keys", "{\"models\":[\"gpt-*\"],\"default_route\":\"gpt-4o\"}", 200));
    json_decref(call(HTTP_POST, "/admin/keys", "{\"admin\":\"yes\"}", 400));
    json_decref(call(HTTP_PATCH, "/admin/keys/ops", "{\"default_route\":null}", 200));
    k = call(HTTP_GET, "/admin/keys/ops", NULL, 200);
    assert_true(json_is_null(json_object_get(k, "default_route")));
    json_decref(k);

    assert_int_equal(call_as_admin_key(HTTP_POST, "/admin/keys", "{\"key_alias\":\"u\"}"), 200);
    assert_int_equal(call_as_admin_key(HTTP_PATCH, "/admin/keys/u", "{\"tags\":[\"t\"]}"), 200);
    assert_int_equal(call_as_admin_key(HTTP_POST, "/admin/keys", "{\"admin\":true}"), 403);
    assert_int_equal(call_as_admin_key(HTTP_PATCH, "/admin/keys/u", "{\"admin\":true}"), 403);
    assert_int_equal(call_as_admin_key(HTTP_POST, "/admin/keys/ops/disable", NULL), 403);
    assert_int_equal(call_as_admin_key(HTTP_DELETE, "/admin/keys/ops", NULL), 403);
    assert_int_equal(call_as_admin_key(HTTP_POST, "/key/delete", "{\"key_aliases\":[\"u\",\"ops\"]}"), 403);
    k = call(HTTP_GET, "/admin/keys/u", NULL, 200); /* the refused delete removed neither */
    json_decref(k);
    assert_int_equal(call_as_admin_key(HTTP_DELETE, "/admin/keys/u", NULL), 200);
    json_decref(call(HTTP_POST, "/admin/keys/ops/disable", NULL, 200)); /* the master key may */
}

/* Prompt templates: a text that cannot parse is refused with its line; versions count up and
 * stay; a label moves (to one version, to a split, by promotion); the key snapshot carries them. */
static void test_prompts(void **state)
{
    json_t *bad =
        call(HTTP_POST, "/admin/prompts",
             "{\"id\":\"greet\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\\n{{#a}}\"}]}", 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(bad, "error"), "message")),
                        "template 'greet messages[0]' line 2: section 'a' is not closed");
    json_decref(bad);
    json_t *v1 = call(HTTP_POST, "/admin/prompts",
                      "{\"id\":\"greet\",\"model\":\"m\",\"labels\":[\"production\"],"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"Hello {{name}}\"}]}",
                      200);
    assert_int_equal(json_integer_value(json_object_get(v1, "version")), 1);
    json_decref(v1);
    json_t *v2 =
        call(HTTP_POST, "/admin/prompts",
             "{\"id\":\"greet\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi {{name}}\"}]}", 200);
    assert_int_equal(json_integer_value(json_object_get(v2, "version")), 2);
    json_decref(v2);
    json_decref(
        call(HTTP_POST, "/admin/prompts/greet/labels", "{\"label\":\"production\",\"version\":9}", 404));
    json_decref(call(HTTP_POST, "/admin/prompts/greet/labels",
                     "{\"label\":\"production\",\"split\":[{\"version\":1,\"weight\":50},"
                     "{\"version\":2,\"weight\":50}]}",
                     200));
    json_t *shown = call(HTTP_GET, "/admin/prompts/greet", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(shown, "versions")), 2);
    assert_true(json_is_object(json_object_get(json_object_get(shown, "labels"), "production")));
    json_decref(shown);
    json_decref(
        call(HTTP_POST, "/admin/prompts/greet/promote", "{\"label\":\"production\",\"version\":2}", 200));
    char err[256];
    key_snapshot *snap = key_snapshot_load(st, false, err, sizeof err);
    assert_non_null(snap);
    const store_prompt_label *l = key_snapshot_prompt_label(snap, 't', "greet", "production");
    assert_non_null(l);
    assert_string_equal(l->split, "[{\"version\":2,\"weight\":100}]");
    /* version 1 is neither the newest nor labelled any more: the store keeps it, the snapshot
     * does not (PROMPT reads it from the store when a request names it) */
    assert_null(key_snapshot_prompt_version(snap, 't', "greet", 1));
    assert_int_equal(snap->nprompt_versions_left_out, 1);
    char *body;
    assert_int_equal(store_prompt_version_get(st, 't', "greet", 1, &body), STORE_OK);
    assert_non_null(strstr(body, "\"messages\""));
    free(body);
    assert_int_equal(store_prompt_version_get(st, 't', "greet", 3, &body), STORE_NOT_FOUND);
    assert_null(body);
    assert_int_equal(key_snapshot_prompt_version(snap, 't', "greet", 0)->version, 2);
    assert_null(key_snapshot_prompt_version(snap, 't', "greet", 3));
    assert_null(key_snapshot_prompt_version(snap, 'p', "greet", 0));
    key_snapshot_release(snap);
    /* a label on it brings it back into the snapshot */
    json_decref(call(HTTP_POST, "/admin/prompts/greet/labels", "{\"label\":\"old\",\"version\":1}", 200));
    snap = key_snapshot_load(st, false, err, sizeof err);
    assert_non_null(key_snapshot_prompt_version(snap, 't', "greet", 1));
    assert_int_equal(snap->nprompt_versions_left_out, 0);
    key_snapshot_release(snap);
    json_decref(call(HTTP_POST, "/admin/partials", "{\"id\":\"sig\",\"text\":\"-- {{team}}\"}", 200));
    json_t *list = call(HTTP_GET, "/admin/partials", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "data")), 1);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_matches_routes),
        cmocka_unit_test(test_prompts),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_virtual_keys),
        cmocka_unit_test(test_budgets_and_teams),
        cmocka_unit_test(test_config_redact),
        cmocka_unit_test(test_default_route_and_admin_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
