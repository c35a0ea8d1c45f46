// vkeys-postgres.test.mjs — vkeys.test.mjs's cases, unchanged, against a gateway whose store is a
// PostgreSQL database the test starts (tests/e2e/postgres.mjs): virtual keys sealed and opened the
// same on both backends, and no secret, gateway key or vault key anywhere in a pg_dump or the
// data directory.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./vkeys.test.mjs');
