// postgres-shared.test.mjs — two aigw processes sharing one PostgreSQL store (and the digest
// secret), as instances behind a load balancer would: started together on an empty database,
// they migrate it once; a key made through one's admin API works
// on the other within a bounded wait; disabled, enabled or deleted on one, the other follows; the
// database stopped mid-run — both keep serving the keys they hold, an admin write says the
// store failed, and when the database is back both pick up changes again; the connection
// string's password never in their output. Also: a store that does not answer at start is
// refused with a message that names it without its password; `aigw keys` on a libpq keyword
// string; another program's tables and a newer schema refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock, startGateway, eventually, sleep } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-0123456789';
const SHARED_WITHIN_MS = 5000; // a change on one instance reaches the other within this
let pg, mock, a, b;

const config = (storeLine) => `
listen: 127.0.0.1:0
workers: 2
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}
  - {name: an, type: anthropic, base_url: "http://127.0.0.1:${mock.port}", api_key: provider-side-key, models: [claude-mock]}
auth:
  master_key: ${MASTER}
  store: "${storeLine}"
  secret: \${AIGW_TEST_DIGEST_SECRET}
`;

before(async () => {
  pg = await startPostgres();
  mock = await startMock();
  process.env.AIGW_TEST_PG_PASSWORD = pg.password;
  process.env.AIGW_TEST_DIGEST_SECRET = 'shared-digest-secret-0123456789';
  const text = config(pg.urlWithEnv('AIGW_TEST_PG_PASSWORD'));
  // both at once against the empty database: the migrations' advisory lock lets one apply them
  [a, b] = await Promise.all([startGateway(text), startGateway(text)]);
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await mock?.stop();
  await pg?.cleanup();
});

async function admin(gw, method, path, body) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const chat = (gw, key) =>
  new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0, timeout: 5000 })
    .chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
const message = (gw, key) =>
  new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0, timeout: 5000 })
    .messages.create({ model: 'claude-mock', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

// 'ok', or the error code the gateway answered with
async function outcome(gw, key) {
  try {
    await chat(gw, key);
    return 'ok';
  } catch (e) {
    return e.code ?? `status ${e.status}`;
  }
}

const becomes = (gw, key, want, ms = SHARED_WITHIN_MS) =>
  eventually(async () => (await outcome(gw, key)) === want, ms, `${want} on the other instance`);

test('two instances started together migrated the empty database once', () => {
  // one row at the newest version (10: the spend slice's tables, virtual keys, the limits' key
  // columns, a key's default route and role, the request log, prompt templates, the prompt
  // columns of the log and feedback, then the log's route_reason, then its indexes trimmed),
  // each counter once
  assert.equal(pg.psql('SELECT count(*) || \' \' || max(version) FROM schema_version').trim(), '1 13');
  assert.equal(pg.psql("SELECT count(*) FROM meta WHERE name = 'keys_version'").trim(), '1');
  assert.equal(pg.psql("SELECT count(*) FROM meta WHERE name = 'spend_version'").trim(), '1');
});

test('a key made on one instance works on the other; disabled, enabled, deleted there, the first follows', async () => {
  const made = await admin(a, 'POST', '/admin/keys', { key_alias: 'shared', models: ['mock-model', 'claude-mock'] });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const key = made.body.key;
  await becomes(b, key, 'ok');
  const reply = await message(b, key);
  assert.equal(reply.type, 'message');

  assert.equal((await admin(a, 'POST', '/admin/keys/shared/disable')).status, 200);
  await becomes(b, key, 'key_disabled');
  await assert.rejects(message(b, key), (e) => e instanceof Anthropic.AuthenticationError && /disabled/.test(e.message));

  assert.equal((await admin(b, 'POST', '/admin/keys/shared/enable')).status, 200);
  await becomes(a, key, 'ok');

  // LiteLLM's spelling on one, the other instance stops knowing the key
  const del = await admin(b, 'POST', '/key/delete', { key_aliases: ['shared'] });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  await becomes(a, key, 'invalid_api_key');
  assert.equal((await admin(a, 'GET', '/admin/keys/shared')).status, 404);
});

test('the database restarted mid-run: both serve the keys they hold, writes fail, and changes flow again after', async () => {
  const made = await admin(a, 'POST', '/admin/keys', { key_alias: 'through-restart' });
  assert.equal(made.status, 200);
  const key = made.body.key;
  await becomes(b, key, 'ok');

  pg.stop();
  // requests keep being served from each instance's snapshot, for longer than a poll interval
  const end = Date.now() + 2500;
  let served = 0;
  while (Date.now() < end) {
    assert.equal(await outcome(a, key), 'ok');
    assert.equal(await outcome(b, key), 'ok');
    served += 2;
    await sleep(100);
  }
  assert.ok(served >= 10);
  // an admin write cannot reach the store: 500 in OpenAI's shape, naming the store without its password
  const failed = await admin(a, 'POST', '/admin/keys', { key_alias: 'during-outage' });
  assert.equal(failed.status, 500);
  assert.equal(failed.body.error.code, 'store_error');
  assert.match(failed.body.error.message, /postgres:\/\/aigw:\*\*\*@127\.0\.0\.1/);
  assert.ok(!JSON.stringify(failed.body).includes(pg.password));
  for (const gw of [a, b])
    await eventually(() => /serving the keys loaded before/.test(gw.stderr()), 5000, 'the outage is logged');

  pg.start();
  // the reconnect waits out its backoff (at most 8 s): a write goes through within a bound
  let second;
  await eventually(async () => {
    const r = await admin(b, 'POST', '/admin/keys', { key_alias: 'after-restart' });
    if (r.status === 200) second = r.body.key;
    return r.status === 200;
  }, 20000, 'an admin write after the restart');
  await becomes(a, second, 'ok', 15000);
  // and a revocation crosses again
  assert.equal((await admin(b, 'POST', '/admin/keys/through-restart/disable')).status, 200);
  await becomes(a, key, 'key_disabled', 15000);
  for (const gw of [a, b]) {
    await eventually(() => /answers again/.test(gw.stderr()), 15000, 'the recovery is logged');
    assert.ok(!gw.stderr().includes(pg.password), 'the password in the gateway\'s output');
    assert.match(gw.stderr(), /gateway keys? and \d+ virtual keys? in postgres:\/\/aigw:\*\*\*@127\.0\.0\.1:\d+\/aigw/);
  }
});

test('a PostgreSQL store that does not answer at start is refused, named without its password', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-pg-refused-'));
  const file = join(dir, 'aigw.yaml');
  // port 1 (tcpmux): nothing listens there on loopback, so the connection is refused at once
  writeFileSync(file, config(`postgres://aigw:\${AIGW_TEST_PG_PASSWORD}@127.0.0.1:1/aigw`));
  const r = spawnSync(AIGW_BIN, ['serve', '-c', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /store postgres:\/\/aigw:\*\*\*@127\.0\.0\.1:1\/aigw: cannot connect/);
  assert.ok(!r.stderr.includes(pg.password));
  // libpq quotes a malformed URI token as written: a password with a stray '%' is masked there too
  writeFileSync(file, config('postgres://aigw:pass%zzword@127.0.0.1:1/aigw'));
  const malformed = spawnSync(AIGW_BIN, ['serve', '-c', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(malformed.status, 1);
  assert.match(malformed.stderr, /invalid percent-encoded token: "\*\*\*"/);
  assert.ok(!malformed.stderr.includes('zzword'));
  // and without a shared secret the config says why one is needed
  writeFileSync(file, config(pg.url).replace(/\n {2}secret: .*\n/, '\n'));
  const check = spawnSync(AIGW_BIN, ['serve', '-c', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(check.status, 1);
  assert.match(check.stderr, /auth\.store is a PostgreSQL database: give every instance that shares it the same auth\.secret/);
  assert.ok(!check.stderr.includes(pg.password));
  rmSync(dir, { recursive: true, force: true });
});

test('`aigw keys` on a keyword connection string (unix socket); another program\'s tables and a newer schema refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-pg-direct-'));
  const file = join(dir, 'aigw.yaml');
  const keys = (...args) => spawnSync(AIGW_BIN, ['keys', ...args, '-c', file, '--direct'], { encoding: 'utf8', timeout: 20000 });
  const withStore = (store) => writeFileSync(file, config(store));
  try {
    // libpq's keyword form, over the cluster's unix socket: sees the keys the instances made
    withStore(`host=${pg.socketDir} port=${pg.port} dbname=aigw user=aigw`);
    const list = keys('list');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stderr, /on the store database host=\S+ port=\d+ dbname=aigw user=aigw/);
    assert.match(list.stdout, /after-restart/);

    // a database whose tables are another program's
    pg.psql('CREATE DATABASE other');
    pg.psql('CREATE TABLE songs (title TEXT)', 'other');
    withStore(`host=${pg.socketDir} port=${pg.port} dbname=other user=aigw password=not-needed-on-the-socket`);
    const other = keys('list');
    assert.equal(other.status, 1);
    assert.match(other.stderr, /password=\*\*\* holds tables of another program \(no schema_version table\)/);
    assert.ok(!other.stderr.includes('not-needed-on-the-socket'));

    // a schema a newer aigw wrote
    pg.psql('CREATE DATABASE newer');
    withStore(`host=${pg.socketDir} port=${pg.port} dbname=newer user=aigw`);
    assert.equal(keys('list').status, 0); // made, migrated
    pg.psql('UPDATE schema_version SET version = 999', 'newer');
    const newer = keys('list');
    assert.equal(newer.status, 1);
    assert.match(newer.stderr, /written by a newer aigw \(schema version 999/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
