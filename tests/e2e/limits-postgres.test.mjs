// limits-postgres.test.mjs — limits.test.mjs's cases against a gateway whose store is a
// PostgreSQL database the test starts (tests/e2e/postgres.mjs): the limits' admin fields
// (rpd_limit, tpd_limit, model_rpm_limit, model_tpm_limit) and the teams' limits round-trip
// through the database and are enforced the same way as on SQLite.
process.env.AIGW_TEST_STORE = 'postgres';
await import('./limits.test.mjs');
