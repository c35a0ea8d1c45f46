// spend-postgres.test.mjs — spend.test.mjs's cases, unchanged, against gateways whose stores are
// PostgreSQL databases the test starts (tests/e2e/postgres.mjs): spend, budgets and teams behave
// the same on both backends, and no gateway key is in a pg_dump or the data directory.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./spend.test.mjs');
