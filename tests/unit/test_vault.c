/* test_vault.c — virtual keys' secrets at rest: sealing and opening (a round trip, a wrong vault
 * key, every kind of tampering, a ciphertext moved to another name), the vault key's accepted
 * forms, and the store around it: a sealed secret nowhere in the database files in the clear,
 * a snapshot holding it opened, a rotation that bumps the version, and a snapshot refused
 * without the vault key or with the wrong one. */
#include "../../src/store/vault.c" /* first: cmocka defines a fail() macro */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

static const char secret[] = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz-WXYZ";

static vault_key key_of(uint8_t fill)
{
    vault_key k;
    memset(k.bytes, fill, sizeof k.bytes);
    return k;
}

static void test_round_trip(void **state)
{
    (void)state;
    assert_true(vault_init());
    vault_key k = key_of(7);
    uint8_t nonce[VAULT_NONCE_BYTES], sealed[sizeof secret - 1 + VAULT_MAC_BYTES];
    vault_seal(&k, "openai-prod", secret, sizeof secret - 1, nonce, sealed);
    assert_null(memmem(sealed, sizeof sealed, "sk-test", 7));
    char out[sizeof secret];
    memset(out, 0, sizeof out);
    assert_true(vault_open(&k, "openai-prod", nonce, sealed, sizeof sealed, out));
    assert_memory_equal(out, secret, sizeof secret - 1);
    /* a fresh nonce each time: the same secret never seals to the same bytes */
    uint8_t nonce2[VAULT_NONCE_BYTES], sealed2[sizeof sealed];
    vault_seal(&k, "openai-prod", secret, sizeof secret - 1, nonce2, sealed2);
    assert_memory_not_equal(nonce, nonce2, sizeof nonce);
    assert_memory_not_equal(sealed, sealed2, sizeof sealed);
}

static void test_wrong_key_and_wrong_name_fail(void **state)
{
    (void)state;
    vault_key k = key_of(7), other = key_of(8);
    uint8_t nonce[VAULT_NONCE_BYTES], sealed[sizeof secret - 1 + VAULT_MAC_BYTES];
    vault_seal(&k, "a", secret, sizeof secret - 1, nonce, sealed);
    char out[sizeof secret];
    assert_false(vault_open(&other, "a", nonce, sealed, sizeof sealed, out));
    /* nothing of the plaintext is left in out after a failure */
    assert_null(memmem(out, sizeof secret - 1, "sk-test", 7));
    /* a ciphertext copied into another row does not open there */
    assert_false(vault_open(&k, "b", nonce, sealed, sizeof sealed, out));
}

static void test_tampering_is_detected(void **state)
{
    (void)state;
    vault_key k = key_of(1);
    uint8_t nonce[VAULT_NONCE_BYTES], sealed[sizeof secret - 1 + VAULT_MAC_BYTES];
    vault_seal(&k, "a", secret, sizeof secret - 1, nonce, sealed);
    char out[sizeof secret];
    /* every byte of the ciphertext and tag, and of the nonce */
    for (size_t i = 0; i < sizeof sealed; i++) {
        sealed[i] ^= 0x01;
        assert_false(vault_open(&k, "a", nonce, sealed, sizeof sealed, out));
        sealed[i] ^= 0x01;
    }
    for (size_t i = 0; i < sizeof nonce; i++) {
        nonce[i] ^= 0x80;
        assert_false(vault_open(&k, "a", nonce, sealed, sizeof sealed, out));
        nonce[i] ^= 0x80;
    }
    /* cut short, or shorter than a tag */
    assert_false(vault_open(&k, "a", nonce, sealed, sizeof sealed - 1, out));
    assert_false(vault_open(&k, "a", nonce, sealed, VAULT_MAC_BYTES - 1, out));
    assert_true(vault_open(&k, "a", nonce, sealed, sizeof sealed, out));
}

static void test_key_forms(void **state)
{
    (void)state;
    vault_key k;
    char err[256];
    const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    assert_true(vault_key_parse(hex, strlen(hex), &k, err, sizeof err));
    for (int i = 0; i < 32; i++)
        assert_int_equal(k.bytes[i], i);
    const char b64[] = "  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    memset(&k, 0, sizeof k);
    assert_true(vault_key_parse(b64, strlen(b64), &k, err, sizeof err));
    assert_int_equal(k.bytes[31], 31);
    const char b64_nopad[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    assert_true(vault_key_parse(b64_nopad, strlen(b64_nopad), &k, err, sizeof err));
    /* a passphrase, a short key, hex with a stray character: refused, and not repeated */
    const char *bad[] = {"correct horse battery staple, long enough", "00010203",
                         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(vault_key_parse(bad[i], strlen(bad[i]), &k, err, sizeof err));
        assert_non_null(strstr(err, "64 hex digits"));
        assert_null(strstr(err, bad[i]));
    }
}

static void test_hint(void **state)
{
    (void)state;
    char hint[16];
    vault_hint(secret, sizeof secret - 1, hint);
    assert_string_equal(hint, "…WXYZ");
    vault_hint("short", 5, hint);
    assert_string_equal(hint, "…");
}

/* ---- the store around it ------------------------------------------------------------------ */

static char dir[256], path[512];

static int store_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/aigw-test-vault-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/aigw.db", dir);
    return 0;
}

static int store_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Whether needle is anywhere in the file (a missing file holds nothing). */
static bool file_contains(const char *file, const char *needle)
{
    FILE *f = fopen(file, "rb");
    if (!f) return false;
    static char data[4 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    return memmem(data, n, needle, strlen(needle)) != NULL;
}

static void test_store_seals_and_snapshot_opens(void **state)
{
    (void)state;
    char err[1024];
    vault_key k = key_of(3);
    store *s = store_open(path, err, sizeof err);
    assert_non_null(s);
    store_vkey v = {.provider = "openai",
                    .secret = (char *)secret,
                    .secret_len = sizeof secret - 1,
                    .created_at = 1,
                    .updated_at = 1};
    snprintf(v.name, sizeof v.name, "prod");
    /* no vault key: nothing is written */
    assert_int_equal(store_vkey_insert(s, &v), STORE_ERROR);
    assert_non_null(strstr(store_error(s), "no vault key"));
    store_set_vault(s, &k);
    assert_int_equal(store_vkey_insert(s, &v), STORE_OK);
    assert_int_equal(store_vkey_insert(s, &v), STORE_CONFLICT);

    key_snapshot *snap = key_snapshot_load(s, false, err, sizeof err);
    assert_non_null(snap);
    const store_vkey *found = key_snapshot_vkey(snap, "prod");
    assert_non_null(found);
    assert_int_equal(found->version, 1);
    assert_string_equal(found->hint, "…WXYZ");
    assert_string_equal(found->secret, secret);
    assert_null(key_snapshot_vkey(snap, "nope"));
    key_snapshot_release(snap);

    /* a rotation: a new secret, version 2 */
    static const char rotated[] = "sk-rotated-abcdefghijklmnop-QRST";
    v.secret = (char *)rotated;
    v.secret_len = sizeof rotated - 1;
    assert_int_equal(store_vkey_update(s, &v), STORE_OK);
    store_vkey read;
    assert_int_equal(store_vkey_get(s, "prod", &read), STORE_OK);
    assert_int_equal(read.version, 2);
    assert_null(read.secret);
    store_vkey_clear(&read);
    snap = key_snapshot_load(s, false, err, sizeof err);
    assert_string_equal(key_snapshot_vkey(snap, "prod")->secret, rotated);
    key_snapshot_release(snap);

    /* neither secret is in the database or its WAL in the clear */
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_false(file_contains(path, "sk-test") || file_contains(wal, "sk-test"));
    assert_false(file_contains(path, "sk-rotated") || file_contains(wal, "sk-rotated"));

    /* the wrong vault key, and none: the snapshot is refused with a message naming the key */
    vault_key wrong = key_of(4);
    store_set_vault(s, &wrong);
    assert_null(key_snapshot_load(s, false, err, sizeof err));
    assert_non_null(strstr(err, "cannot decrypt the virtual key `prod`"));
    store_set_vault(s, NULL);
    assert_null(key_snapshot_load(s, false, err, sizeof err));
    assert_non_null(strstr(err, "no vault key is configured"));
    /* a running gateway's load leaves it out and says why, keeping the gateway keys current */
    snap = key_snapshot_load(s, true, err, sizeof err);
    assert_non_null(snap);
    assert_int_equal(snap->nvkeys, 0);
    assert_int_equal(snap->nvkeys_unopened, 1);
    assert_non_null(strstr(err, "no vault key is configured"));
    key_snapshot_release(snap);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_wrong_key_and_wrong_name_fail),
        cmocka_unit_test(test_tampering_is_detected),
        cmocka_unit_test(test_key_forms),
        cmocka_unit_test(test_hint),
        cmocka_unit_test_setup_teardown(test_store_seals_and_snapshot_opens, store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
