// prompts-postgres.test.mjs — prompts-experiments.test.mjs's cases, unchanged, against a gateway
// whose store is a PostgreSQL database the test starts (tests/e2e/postgres.mjs): the version in
// the request log, feedback and the per-version report give the same figures on both backends.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./prompts-experiments.test.mjs');
