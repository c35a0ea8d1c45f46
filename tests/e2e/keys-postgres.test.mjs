// keys-postgres.test.mjs — keys.test.mjs's cases, unchanged, against a gateway whose store is a
// PostgreSQL database the test starts (tests/e2e/postgres.mjs): the same behaviour on both
// backends, and the plaintext key nowhere in a pg_dump or the data directory.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./keys.test.mjs');
