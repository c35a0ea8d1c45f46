// vkeys.test.mjs — virtual keys end to end: provider credentials stored encrypted in aigw's
// store through the admin API, used by the official OpenAI and Anthropic SDKs through a gateway
// whose config holds no provider secret. Checked at the provider (aigw-mock records the headers
// it received): a provider configured with `virtual_key:` receives the decrypted credential; a
// rotation through the admin API reaches the next requests within a bounded wait and the old
// secret is no longer sent; Portkey configs' `virtual_key` and `"provider": "@name"`, and its
// model catalog's `"model": "@name/model"`, route to a virtual key's provider with its credential; a gateway key limited to some virtual keys is
// refused another (403); the plaintext secrets appear nowhere in the database, its WAL, the
// access log, stderr or an admin answer; and a store holding encrypted secrets refuses to start
// without its vault key, or with a wrong one, saying which.
//
// AIGW_TEST_STORE=postgres runs the same cases against a PostgreSQL store that the test starts
// (tests/e2e/postgres.mjs; vkeys-postgres.test.mjs sets it), as keys.test.mjs does: "no secret in
// the database" becomes a pg_dump of it (and every file of its data directory) holding no
// virtual key's secret, no gateway key and no vault key, and the refused starts use a second
// database of the same server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock, startGateway, eventually, headerValues } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-0123456789';
const VAULT_KEY = '6f'.repeat(32); // 32 bytes in hex, as `openssl rand -hex 32` writes them
const OPENAI_SECRET = 'sk-vk-original-0123456789abcdefOLD1';
const OPENAI_ROTATED = 'sk-vk-rotated-0123456789abcdefNEW2';
const ANTHROPIC_SECRET = 'sk-ant-vk-0123456789abcdefANT3';
const CLI_SECRET = 'sk-cli-made-0123456789abcdefCLI4';
const CLI_ROTATED = 'sk-cli-rotated-0123456789abcdCLI5';
const SECRETS = [OPENAI_SECRET, OPENAI_ROTATED, ANTHROPIC_SECRET, CLI_SECRET, CLI_ROTATED];
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
const GATEWAY_KEYS = []; // every gateway key made, for the grep of the database
let mock, gw, base, pg;

// auth's store lines (block style): none (aigw.db beside the config) or the PostgreSQL database
function storeConfig() {
  if (!POSTGRES) return '';
  process.env.AIGW_TEST_PG_PASSWORD = pg.password;
  return `  store: "${pg.urlWithEnv('AIGW_TEST_PG_PASSWORD')}"\n  secret: test-digest-secret-0123456789\n`;
}

before(async () => {
  if (POSTGRES) pg = await startPostgres();
  mock = await startMock();
  base = `http://127.0.0.1:${mock.port}`;
  process.env.AIGW_VAULT_KEY = VAULT_KEY;
  // no provider secret in the file: the keys come from the store's virtual keys
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", virtual_key: prod-openai, models: [mock-model]}
  - {name: an, type: anthropic, base_url: "${base}", virtual_key: prod-anthropic, models: [claude-mock]}
auth:
  master_key: ${MASTER}
  vault_key: \${AIGW_VAULT_KEY}
${storeConfig()}`);
  delete process.env.AIGW_VAULT_KEY;
});

after(async () => {
  try {
    await gw?.stop();
  } finally {
    await mock?.stop(); // even when aigw's stop fails: a live mock would keep this file running
    await pg?.cleanup();
  }
});

async function admin(method, path, body, key = MASTER) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  for (const s of SECRETS) assert.ok(!text.includes(s), `an admin answer holds a secret: ${text}`);
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const openai = (apiKey, headers) => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: headers });
const anthropic = (apiKey) => new Anthropic({ apiKey, baseURL: gw.url, maxRetries: 0 });
const chat = (client, model = 'mock-model') =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

// The key the provider saw on the last request to path.
async function lastSeen(path, header) {
  const seen = await mock.requests(path);
  return seen.length ? headerValues(seen[seen.length - 1], header) : [];
}

let gatewayKey;

test('a provider with virtual_key: refused (503) until the virtual key exists, then the provider gets its secret', async () => {
  assert.match(gw.stderr(), /auth on: 0 gateway keys and 0 virtual keys/);
  assert.match(gw.stderr(), /provider 'oa' takes its key from the virtual key `prod-openai`, which the store does not hold yet/);
  const made = await admin('POST', '/admin/keys', { key_alias: 'app' });
  gatewayKey = made.body.key;
  GATEWAY_KEYS.push(gatewayKey);
  await assert.rejects(chat(openai(gatewayKey)), (e) => e.status === 503 && /virtual key `prod-openai` is not in the gateway's store/.test(e.error.message));

  const vk = await admin('POST', '/admin/virtual-keys', { name: 'prod-openai', provider: 'openai', base_url: `${base}/v1`, secret: OPENAI_SECRET });
  assert.equal(vk.status, 200, JSON.stringify(vk.body));
  assert.deepEqual(
    { name: vk.body.name, provider: vk.body.provider, hint: vk.body.hint, version: vk.body.version, slug: vk.body.slug, masked: vk.body.masked_api_key },
    { name: 'prod-openai', provider: 'openai', hint: '…OLD1', version: 1, slug: 'prod-openai', masked: '…OLD1' });
  // Portkey's spelling of the secret (`key`)
  const an = await admin('POST', '/admin/virtual-keys', { name: 'prod-anthropic', provider: 'anthropic', base_url: base, key: ANTHROPIC_SECRET });
  assert.equal(an.status, 200, JSON.stringify(an.body));

  await mock.reset();
  const reply = await eventually(async () => { try { return await chat(openai(gatewayKey)); } catch { return null; } }, 5000, 'virtual key in use');
  assert.match(reply.choices[0].message.content, /mock reply/);
  assert.deepEqual(await lastSeen('/v1/chat/completions', 'authorization'), [`Bearer ${OPENAI_SECRET}`]);

  const msg = await anthropic(gatewayKey).messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
  assert.deepEqual(await lastSeen('/v1/messages', 'x-api-key'), [ANTHROPIC_SECRET]);
  // the gateway key itself never goes upstream
  for (const r of await mock.requests()) assert.ok(!JSON.stringify(r.headers).includes(gatewayKey));
});

test('rotation through the admin API: the next requests use the new secret, the old one is no longer sent', async () => {
  const rot = await admin('POST', '/admin/virtual-keys/prod-openai/rotate', { secret: OPENAI_ROTATED });
  assert.equal(rot.status, 200, JSON.stringify(rot.body));
  assert.equal(rot.body.version, 2);
  assert.equal(rot.body.hint, '…NEW2');
  // within the store's publish delay (about a second); bounded at 5 s
  await eventually(async () => {
    await chat(openai(gatewayKey));
    const seen = await lastSeen('/v1/chat/completions', 'authorization');
    return seen[0] === `Bearer ${OPENAI_ROTATED}`;
  }, 5000, 'rotated secret in use');
  await mock.reset();
  for (let i = 0; i < 6; i++) await chat(openai(gatewayKey));
  const seen = (await mock.requests('/v1/chat/completions')).map((r) => headerValues(r, 'authorization')[0]);
  assert.equal(seen.length, 6);
  assert.deepEqual([...new Set(seen)], [`Bearer ${OPENAI_ROTATED}`]);
  // PATCH with a secret is a rotation too; without one it changes no secret
  const patched = await admin('PATCH', '/admin/virtual-keys/prod-anthropic', { base_url: `${base}/` });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.version, 1);
  assert.equal(patched.body.base_url, base);
});

test('Portkey: configs\' `virtual_key` and "provider": "@name", and the model "@name/model", route to the virtual key with its credential', async () => {
  const withConfig = (config) => openai(gatewayKey, { 'x-portkey-config': JSON.stringify(config) });
  await mock.reset();
  // a virtual key's own provider: Anthropic, reached from the OpenAI SDK (translated)
  const r1 = await chat(withConfig({ virtual_key: 'prod-anthropic', override_params: { model: 'claude-mock' } }), 'anything');
  assert.match(r1.choices[0].message.content, /mock reply/);
  assert.deepEqual(await lastSeen('/v1/messages', 'x-api-key'), [ANTHROPIC_SECRET]);
  const r2 = await chat(withConfig({ provider: '@prod-openai' }));
  assert.match(r2.choices[0].message.content, /mock reply/);
  assert.deepEqual(await lastSeen('/v1/chat/completions', 'authorization'), [`Bearer ${OPENAI_ROTATED}`]);
  // in a fallback, as Portkey's documentation writes them
  const r3 = await chat(withConfig({ strategy: { mode: 'fallback' }, targets: [{ virtual_key: 'prod-openai' }, { virtual_key: 'prod-anthropic' }] }));
  assert.match(r3.choices[0].message.content, /mock reply/);
  // a provider of the config's file comes first: "@an" is the config's provider `an`
  await chat(withConfig({ provider: '@an', override_params: { model: 'claude-mock' } }), 'x');
  assert.deepEqual(await lastSeen('/v1/messages', 'x-api-key'), [ANTHROPIC_SECRET]);
  // Portkey's model catalog: model "@NAME/model", in the body, with no config at all
  await mock.reset();
  const r4 = await chat(openai(gatewayKey), '@prod-openai/mock-model');
  assert.match(r4.choices[0].message.content, /mock reply/);
  let seen = await mock.requests('/v1/chat/completions');
  assert.deepEqual(headerValues(seen[seen.length - 1], 'authorization'), [`Bearer ${OPENAI_ROTATED}`]);
  assert.equal(JSON.parse(seen[seen.length - 1].body).model, 'mock-model');
  const m5 = await anthropic(gatewayKey).messages.create({ model: '@prod-anthropic/claude-mock', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m5.type, 'message');
  assert.deepEqual(await lastSeen('/v1/messages', 'x-api-key'), [ANTHROPIC_SECRET]);
  await assert.rejects(chat(openai(gatewayKey), '@nobody/mock-model'), (e) => e.status === 404 && e.code === 'model_not_found');
  // neither: a 400 that says so, not echoing the value
  await assert.rejects(chat(withConfig({ virtual_key: 'no-such-key' })), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.error.message, /virtual_key: names no provider of the gateway's config \(known: oa, an\) nor one of its virtual keys/);
    assert.ok(!e.error.message.includes('no-such-key'));
    return true;
  });
  // a virtual key carries its own host and key
  await assert.rejects(chat(withConfig({ virtual_key: 'prod-openai', api_key: 'sk-other' })), (e) => e.status === 400 && /not with a virtual key/.test(e.error.message));
});

test('a gateway key limited to some virtual keys is refused the others (403), in both SDKs', async () => {
  const made = await admin('POST', '/admin/keys', { key_alias: 'anthropic-only', virtual_keys: ['prod-anthropic'] });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.deepEqual(made.body.virtual_keys, ['prod-anthropic']);
  const key = made.body.key;
  GATEWAY_KEYS.push(key);
  await eventually(async () => { try { await anthropic(key).messages.create({ model: 'claude-mock', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }); return true; } catch { return false; } }, 5000, 'limited key works');
  await assert.rejects(chat(openai(key)), (e) => {
    assert.ok(e instanceof OpenAI.PermissionDeniedError);
    assert.equal(e.code, 'virtual_key_not_allowed');
    assert.equal(e.error.message, 'This gateway key may not use the virtual key `prod-openai`');
    return true;
  });
  await assert.rejects(chat(openai(key, { 'x-portkey-config': '{"virtual_key":"prod-openai"}' })), (e) => e.status === 403 && e.code === 'virtual_key_not_allowed');
  const ok = await chat(openai(key, { 'x-portkey-config': '{"virtual_key":"prod-anthropic","override_params":{"model":"claude-mock"}}' }));
  assert.match(ok.choices[0].message.content, /mock reply/);
  // the Anthropic shape of the refusal
  const raw = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-portkey-config': '{"virtual_key":"prod-openai"}' },
    body: JSON.stringify({ model: 'mock-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(raw.status, 403);
  const body = await raw.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'permission_error');
});

test('the admin API: list, show, bad input, conflicts, delete; never a secret', async () => {
  const list = await admin('GET', '/admin/virtual-keys');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.data.map((v) => [v.name, v.provider, v.version]), [['prod-anthropic', 'anthropic', 1], ['prod-openai', 'openai', 2]]);
  assert.equal((await admin('GET', '/admin/virtual-keys/prod-openai')).body.hint, '…NEW2');
  assert.equal((await admin('GET', '/admin/virtual-keys/nope')).status, 404);
  const dup = await admin('POST', '/admin/virtual-keys', { name: 'prod-openai', provider: 'openai', secret: 'sk-x-1234567890123' });
  assert.equal(dup.status, 409);
  const cases = [
    [{ name: 'bad name!', provider: 'openai', secret: 'sk-1' }, /'name' must be/],
    [{ name: 'x', provider: 'no-such-type', secret: 'sk-1' }, /'provider' must be a provider type/],
    [{ name: 'x', provider: 'openai', secret: 'sk with space' }, /'secret' must be 1 to 8192 visible ASCII/],
    [{ name: 'x', provider: 'openai', secret: 'sk-1\r\nx-evil: 1' }, /'secret' must be/],
    [{ name: 'x', provider: 'openai' }, /'secret' is needed/],
    [{ name: 'x', provider: 'openai', secret: 'sk-1', base_url: 'ftp://h' }, /'base_url' must be an http/],
    [{ name: 'x', provider: 'openai', secret: 'sk-1', typo: 1 }, /unknown field 'typo'/],
  ];
  for (const [body, message] of cases) {
    const r = await admin('POST', '/admin/virtual-keys', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.error.message, message);
    assert.ok(!r.body.error.message.includes('sk-1'), 'the secret echoed');
  }
  assert.equal((await admin('POST', '/admin/virtual-keys/prod-openai/rotate', {})).status, 400);
  assert.equal((await admin('PATCH', '/admin/virtual-keys/prod-openai', { name: 'renamed' })).status, 400);
  // a gateway key that is not an admin key cannot use the admin API
  const refused = await admin('GET', '/admin/virtual-keys', undefined, gatewayKey);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, 'admin_key_required');
  // an admin key manages virtual keys: stores, rotates and deletes one (never seeing a secret)
  const ops = (await admin('POST', '/admin/keys', { key_alias: 'vkeys-ops', admin: true })).body.key;
  const byOps = await admin('POST', '/admin/virtual-keys', { name: 'ops-made', provider: 'openai', secret: 'sk-ops-0123456789' }, ops);
  assert.equal(byOps.status, 200, JSON.stringify(byOps.body));
  assert.equal((await admin('POST', '/admin/virtual-keys/ops-made/rotate', { secret: 'sk-ops-9876543210' }, ops)).body.version, 2);
  assert.doesNotMatch(JSON.stringify((await admin('GET', '/admin/virtual-keys', undefined, ops)).body), /sk-ops/);
  assert.equal((await admin('DELETE', '/admin/virtual-keys/ops-made', undefined, ops)).status, 200);
  // a temporary one, deleted: requests through it then fail
  await admin('POST', '/admin/virtual-keys', { name: 'temp', provider: 'openai', base_url: `${base}/v1`, secret: 'sk-temp-0123456789' });
  const del = await admin('DELETE', '/admin/virtual-keys/temp');
  assert.deepEqual(del.body, { name: 'temp', deleted: true });
  assert.equal((await admin('GET', '/admin/virtual-keys/temp')).status, 404);
});

function vkeysCli(args, { input, env = {} } = {}) {
  return spawnSync(AIGW_BIN, ['vkeys', ...args, '-c', gw.file], {
    encoding: 'utf8', timeout: 20000, input, env: { ...process.env, AIGW_VAULT_KEY: VAULT_KEY, ...env },
  });
}

test('`aigw vkeys`: on the store and through the gateway; the secret from stdin or a variable, never printed', async () => {
  let r = vkeysCli(['create', 'cli-made', '--provider', 'openai', '--base-url', `${base}/v1`, '--direct'], { input: `${CLI_SECRET}\n` });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, POSTGRES ? /on the store database postgres:\/\/aigw:\*\*\*@127\.0\.0\.1:\d+\/aigw/ : /on the store file/);
  if (POSTGRES) assert.ok(!r.stderr.includes(pg.password), 'the CLI shows the database password');
  assert.match(r.stdout, /name: +cli-made\nprovider: +openai/);
  assert.match(r.stdout, /secret: +…CLI4 +\(version 1\)/);
  // the running gateway sees it within a poll
  const client = openai(gatewayKey, { 'x-portkey-config': '{"virtual_key":"cli-made"}' });
  await eventually(async () => { try { await chat(client); return true; } catch { return false; } }, 5000, 'CLI virtual key in use');
  assert.deepEqual(await lastSeen('/v1/chat/completions', 'authorization'), [`Bearer ${CLI_SECRET}`]);

  r = vkeysCli(['rotate', 'cli-made', '--secret-env', 'NEW_SECRET', '--url', gw.url], { env: { NEW_SECRET: CLI_ROTATED } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /via the gateway at http:\/\/127\.0\.0\.1:/);
  assert.match(r.stdout, /…CLI5 +\(version 2\)/);
  await eventually(async () => { await chat(client); return (await lastSeen('/v1/chat/completions', 'authorization'))[0] === `Bearer ${CLI_ROTATED}`; }, 5000, 'CLI rotation');

  r = vkeysCli(['list', '--url', gw.url]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^NAME +PROVIDER +SECRET +VERSION +BASE_URL$/m);
  assert.match(r.stdout, /^cli-made +openai +…CLI5 +2 +http:\/\/127\.0\.0\.1:\d+\/v1$/m);
  assert.equal(JSON.parse(vkeysCli(['show', 'cli-made', '--json', '--url', gw.url]).stdout).version, 2);
  for (const out of [r.stdout, r.stderr]) for (const sct of SECRETS) assert.ok(!out.includes(sct));

  // on the file without the vault key: refused, saying how to give it
  r = vkeysCli(['create', 'x', '--provider', 'openai', '--direct'], { input: 'sk-1\n', env: { AIGW_VAULT_KEY: '' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no vault key is configured: set auth\.vault_key/);
  // the secret is never an argument
  r = vkeysCli(['create', 'x', '--provider', 'openai', '--secret', 'sk-1']);
  assert.equal(r.status, 2);
  // another process writing under another vault key: the running gateway leaves that one out,
  // says so once, and keeps every other key current (a key disabled meanwhile stops)
  r = vkeysCli(['create', 'foreign', '--provider', 'openai', '--direct'], { input: 'sk-foreign-0123456789\n', env: { AIGW_VAULT_KEY: '71'.repeat(32) } });
  assert.equal(r.status, 0, r.stderr);
  const doomed = (await admin('POST', '/admin/keys', { key_alias: 'doomed' })).body;
  GATEWAY_KEYS.push(doomed.key);
  assert.equal((await admin('POST', `/admin/keys/${doomed.id}/disable`)).status, 200);
  await eventually(() => /the vault key cannot decrypt the virtual key `foreign` .*; 1 virtual key left out until it opens/.test(gw.stderr()), 5000, 'foreign key reported');
  await assert.rejects(chat(openai(doomed.key)), (e) => e.status === 401 && e.code === 'key_disabled');
  await assert.rejects(chat(openai(gatewayKey, { 'x-portkey-config': '{"virtual_key":"foreign"}' })), (e) => e.status === 400);
  assert.equal((await chat(client)).object, 'chat.completion');
  assert.equal((await admin('DELETE', '/admin/virtual-keys/foreign')).status, 200);
  assert.ok(!gw.stderr().includes('sk-foreign'));
  r = vkeysCli(['delete', 'cli-made', '--url', gw.url]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /deleted cli-made/);
});

test('no secret in the database, its WAL, the access log or stderr', async () => {
  assert.ok(GATEWAY_KEYS.length >= 3);
  if (POSTGRES) {
    // a dump of the database and every file PostgreSQL wrote (tables, WAL, its log): the rows are
    // there, sealed; no virtual key's secret, no gateway key, no vault key
    const dump = pg.dump();
    assert.match(dump, /prod-openai/);
    assert.match(dump, /COPY public\.virtual_keys /);
    for (const needle of [...SECRETS, ...SECRETS.map((s) => s.slice(0, 16)), ...GATEWAY_KEYS, ...GATEWAY_KEYS.map((k) => k.slice(5, 25)), VAULT_KEY, MASTER]) {
      assert.ok(!dump.includes(needle), 'pg_dump holds a secret or a key');
      assert.deepEqual(pg.filesHolding(needle), [], 'files of the data directory hold a secret or a key');
    }
    assert.ok(!gw.stderr().includes(pg.password), 'the gateway logs the database password');
  }
  const dir = dirname(gw.file);
  const files = ['aigw.db', 'aigw.db-wal'].filter((f) => existsSync(join(dir, f)));
  if (!POSTGRES) assert.ok(files.some((f) => readFileSync(join(dir, f)).toString('latin1').includes('prod-openai')), 'the row is in the files');
  for (const f of ['aigw.db', 'aigw.db-wal', 'aigw.db-shm']) {
    if (!existsSync(join(dir, f))) continue;
    const bytes = readFileSync(join(dir, f)).toString('latin1');
    for (const s of [...SECRETS, ...GATEWAY_KEYS]) {
      assert.ok(!bytes.includes(s), `${f} holds a secret`);
      assert.ok(!bytes.includes(s.slice(0, 16)), `${f} holds part of a secret`);
    }
    assert.ok(!bytes.includes(VAULT_KEY), `${f} holds the vault key`);
  }
  const log = JSON.stringify(gw.logLines);
  assert.ok(gw.logLines.length > 10);
  for (const s of [...SECRETS, VAULT_KEY]) {
    assert.ok(!log.includes(s), 'a secret in the access log');
    assert.ok(!gw.stderr().includes(s), 'a secret on stderr');
  }
});

test('the OpenAPI document lists the virtual-key operations', async () => {
  const doc = await (await fetch(`${gw.url}/admin/openapi.json`)).json();
  assert.deepEqual(Object.keys(doc.paths).filter((p) => p.includes('virtual')), ['/admin/virtual-keys', '/admin/virtual-keys/{id}', '/admin/virtual-keys/{id}/rotate']);
  assert.equal(doc.components.schemas.VirtualKeyFields.properties.secret.writeOnly, true);
  assert.equal(doc.components.schemas.VirtualKey.properties.secret, undefined);
});

// A gateway started on a directory the test keeps (startGateway removes its own on stop).
function serveIn(dir, config) {
  writeFileSync(join(dir, 'aigw.yaml'), config);
  const proc = spawn(AIGW_BIN, ['serve', '-c', join(dir, 'aigw.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  return { proc, stderr: () => stderr, exited: new Promise((resolve) => proc.on('close', (code) => resolve(code))) };
}

test('a store with encrypted secrets refuses to start without its vault key, or with a wrong one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-vkeys-'));
  const providers = `providers:\n  - {name: oa, type: openai, base_url: "${base}/v1", virtual_key: stored, models: [mock-model]}\n`;
  // on PostgreSQL a database of its own on the same server, so the store starts empty
  if (POSTGRES) pg.psql('CREATE DATABASE aigw_refusals');
  const store = POSTGRES
    ? `, store: "${pg.urlWithEnv('AIGW_TEST_PG_PASSWORD').replace(/\/aigw$/, '/aigw_refusals')}", secret: test-digest-secret-0123456789`
    : '';
  const storeName = POSTGRES ? 'postgres://aigw:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/aigw_refusals' : '.*aigw\\.db';
  const config = (auth) => `listen: 127.0.0.1:0\nworkers: 1\n${providers}auth: {master_key: ${MASTER}${store}${auth}}\n`;
  const live = []; // killed in finally when an assertion ends the test early
  try {
    // a store with one virtual key in it
    const first = serveIn(dir, config(`, vault_key: "${VAULT_KEY}"`));
    live.push(first.proc);
    const port = Number((await eventually(() => first.stderr().match(/listening on 127\.0\.0\.1:(\d+)/), 5000, 'listening'))[1]);
    const made = await fetch(`http://127.0.0.1:${port}/admin/virtual-keys`, {
      method: 'POST', headers: { authorization: `Bearer ${MASTER}` },
      body: JSON.stringify({ name: 'stored', provider: 'openai', secret: OPENAI_SECRET }),
    });
    assert.equal(made.status, 200);
    first.proc.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    const serve = () => spawnSync(AIGW_BIN, ['serve', '-c', join(dir, 'aigw.yaml')], { encoding: 'utf8', timeout: 10000, env: { ...process.env, AIGW_VAULT_KEY: '' } });
    writeFileSync(join(dir, 'aigw.yaml'), config(''));
    let r = serve();
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${storeName} holds encrypted virtual keys \\(\`stored\` and maybe more\\) but no vault key is configured: set auth\\.vault_key`));
    writeFileSync(join(dir, 'aigw.yaml'), config(', vault_key: "${AIGW_VAULT_KEY_NOT_SET}"'));
    r = serve();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no vault key is configured.*auth\.vault_key names \$\{AIGW_VAULT_KEY_NOT_SET\}, which is not set/);
    writeFileSync(join(dir, 'aigw.yaml'), config(`, vault_key: "${'70'.repeat(32)}"`));
    r = serve();
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`the vault key cannot decrypt the virtual key \`stored\` in ${storeName}: it is not the key the virtual keys were written with`));
    writeFileSync(join(dir, 'aigw.yaml'), config(', vault_key: "not a key"'));
    r = serve();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /auth\.vault_key: the vault key must be 32 bytes written as 64 hex digits or in base64/);
    assert.ok(!r.stderr.includes('not a key'));
    // a vault key file others may read is refused
    writeFileSync(join(dir, 'vault.key'), `${VAULT_KEY}\n`, { mode: 0o644 });
    chmodSync(join(dir, 'vault.key'), 0o644);
    writeFileSync(join(dir, 'aigw.yaml'), config(', vault_key_file: vault.key'));
    r = serve();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the vault key file .*vault\.key may be read by others; chmod 600 it/);
    // the vault key from a file, as written by `openssl rand -hex 32 > FILE; chmod 600 FILE`
    chmodSync(join(dir, 'vault.key'), 0o600);
    const again = serveIn(dir, config(', vault_key_file: vault.key'));
    live.push(again.proc);
    await eventually(() => /listening on 127\.0\.0\.1:\d+/.test(again.stderr()), 5000, 'starts with the right key');
    assert.match(again.stderr(), /auth on: 0 gateway keys and 1 virtual key in/);
    again.proc.kill('SIGTERM');
    assert.equal(await again.exited, 0);
    for (const s of [OPENAI_SECRET, VAULT_KEY]) assert.ok(!again.stderr().includes(s) && !r.stderr.includes(s));
  } finally {
    for (const p of live) if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`virtual_key:` without `auth:`, or beside api_key, is a config mistake', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-vkeys-'));
  try {
    const file = join(dir, 'aigw.yaml');
    writeFileSync(file, 'providers:\n  - {name: oa, type: openai, virtual_key: prod, models: [m]}\n');
    let r = spawnSync(AIGW_BIN, ['config', 'check', file], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /aigw\.yaml:2: provider 'oa': virtual_key needs an 'auth:' section/);
    writeFileSync(file, 'providers:\n  - {name: oa, type: openai, virtual_key: prod, api_key: sk-1, models: [m]}\nauth: {master_key: 0123456789abcdef0}\n');
    r = spawnSync(AIGW_BIN, ['config', 'check', file], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /provider 'oa' has both api_key and virtual_key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
