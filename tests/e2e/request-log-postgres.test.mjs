// request-log-postgres.test.mjs — request-log.test.mjs's cases, unchanged, against gateways whose
// stores are PostgreSQL databases the test starts (tests/e2e/postgres.mjs): the same rows, filters,
// pages, percentiles, retention and counted drops on both backends.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./request-log.test.mjs');
