// auto-routes-postgres.test.mjs — auto-routes.test.mjs's cases, unchanged, with the gateway key's
// store (its budget, and the request log that keeps each decision's route_reason) in a PostgreSQL
// database the test starts (tests/e2e/postgres.mjs).
process.env.AIGW_TEST_STORE = 'postgres';
await import('./auto-routes.test.mjs');
