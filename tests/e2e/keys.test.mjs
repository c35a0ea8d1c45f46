// keys.test.mjs — gateway keys end to end: the official OpenAI and Anthropic SDKs against a gateway
// with `auth:` (a SQLite store beside the config, a master key), keys made through the admin API
// (aigw's and LiteLLM's spellings) and through `aigw keys` on the store file. Checked: the 401/403
// shapes and messages the SDKs read, model allow-lists, /v1/models filtered, a key disabled
// through the API stopping within a bounded wait, a key made by the CLI working on the running
// gateway, the plaintext key nowhere in the database files or the access log, the client's gateway
// key never reaching the provider, the OpenAPI document listing what the server answers, and a
// non-loopback listen without auth refused at start, and a stored Responses API response kept
// to the key that made it.
//
// AIGW_TEST_STORE=postgres runs the same cases against a PostgreSQL store that the test starts
// (tests/e2e/postgres.mjs; keys-postgres.test.mjs sets it): the password reaches the config as
// ${VAR}, the digest secret is given in the config, and "the files hold no key" becomes a
// pg_dump of the database and every file of its data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock, startGateway, eventually, sleep } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-0123456789';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
let mock, gw, pg;

// auth's store lines: none (aigw.db beside the config) or the PostgreSQL database
function storeConfig() {
  if (!POSTGRES) return '';
  process.env.AIGW_TEST_PG_PASSWORD = pg.password;
  return `  store: "${pg.urlWithEnv('AIGW_TEST_PG_PASSWORD')}"\n  secret: test-digest-secret-0123456789\n`;
}

before(async () => {
  if (POSTGRES) pg = await startPostgres();
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", models: [mock-model, mock-other, mock-embed]}
  - {name: an, type: anthropic, base_url: "${base}", api_key: provider-side-key, models: [claude-mock]}
routes:
  - name: by-team
    strategy:
      mode: conditional
      conditions: [{query: {metadata.team: search}, then: search}, {query: {metadata.tier: gold}, then: gold}]
      default: others
    targets:
      - {name: search, provider: oa, model: mock-other}
      - {name: gold, provider: oa, model: mock-embed}
      - {name: others, provider: oa, model: mock-model}
  - name: cheap
    strategy: {mode: fallback}
    targets: [{provider: oa, model: mock-other}]
auth:
  master_key: ${MASTER}
${storeConfig()}`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  await pg?.cleanup();
});

async function admin(method, path, body, key = MASTER) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const openai = (apiKey) => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0 });
const anthropic = (apiKey) => new Anthropic({ apiKey, baseURL: gw.url, maxRetries: 0 });
const chat = (client, model = 'mock-model') =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

function cli(...args) {
  return spawnSync(AIGW_BIN, ['keys', ...args, '-c', gw.file], { encoding: 'utf8', timeout: 20000 });
}
// the config listens on port 0, so the CLI is told where the gateway is
const cliGw = (...args) => cli(...args, '--url', gw.url);

test('no key, an unknown key, and a key too long: 401 in each SDK\'s shape, naming what is wrong', async () => {
  const raw = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', body: '{}' });
  assert.equal(raw.status, 401);
  assert.equal(raw.headers.get('www-authenticate'), 'Bearer');
  const body = await raw.json();
  assert.equal(body.error.code, 'missing_api_key');
  assert.match(body.error.message, /No gateway key: send one as Authorization: Bearer/);

  await assert.rejects(chat(openai('aigw-not-a-real-key')), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.error.message, 'Invalid gateway key');
    assert.doesNotMatch(JSON.stringify(e.error), /aigw-not-a-real-key/);
    return true;
  });
  await assert.rejects(
    anthropic('sk-ant-wrong').messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.AuthenticationError);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'authentication_error');
      assert.equal(e.error.error.message, 'Invalid gateway key');
      return true;
    });
  await assert.rejects(chat(openai('x'.repeat(5000))), (e) => e.status === 401 && e.code === 'invalid_api_key');
  // health checks need no key
  assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
});

test('a key made through the admin API: its models only, in both SDKs; 403 names the model, never the key', async () => {
  const made = await admin('POST', '/admin/keys', { key_alias: 'sdk', models: ['mock-*', 'claude-mock'], team_id: 'search', user_id: 'ana' });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const key = made.body.key;
  assert.match(key, /^aigw-[A-Za-z0-9_-]{43}$/);
  assert.equal(made.body.key_name, `aigw-…${key.slice(-4)}`);

  const ok = await chat(openai(key));
  assert.match(ok.choices[0].message.content, /mock reply/);
  const msg = await anthropic(key).messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
  // Anthropic clients that send x-api-key, Azure's api-key, Gemini's x-goog-api-key
  for (const h of ['x-api-key', 'api-key', 'x-goog-api-key']) {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { [h]: key, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 200, h);
  }

  const limited = await admin('POST', '/admin/keys', { key_alias: 'only-mock-model', models: ['mock-model'] });
  const lk = limited.body.key;
  await assert.rejects(chat(openai(lk), 'mock-other'), (e) => {
    assert.ok(e instanceof OpenAI.PermissionDeniedError);
    assert.equal(e.status, 403);
    assert.equal(e.code, 'model_not_allowed');
    assert.equal(e.param, 'model');
    assert.equal(e.error.message, 'This gateway key may not use the model `mock-other`');
    assert.ok(!JSON.stringify(e.error).includes(lk));
    return true;
  });
  await assert.rejects(
    anthropic(lk).messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof Anthropic.PermissionDeniedError && e.error.error.type === 'permission_error' &&
      /may not use the model `claude-mock`/.test(e.error.error.message));
  // a request config could name any target: refused for a key limited to some models
  const cfgReq = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${lk}`, 'x-aigw-config': '{"provider":"an"}', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(cfgReq.status, 403);
  assert.equal((await cfgReq.json()).error.code, 'config_not_allowed');

  // /v1/models lists what the key may use, in both shapes
  const listed = [];
  for await (const m of openai(lk).models.list()) listed.push(m.id);
  assert.deepEqual(listed, ['mock-model']);
  const all = [];
  for await (const m of openai(key).models.list()) all.push(m.id);
  assert.deepEqual(all.sort(), ['claude-mock', 'mock-embed', 'mock-model', 'mock-other']);
  const anth = await anthropic(lk).models.list();
  assert.deepEqual(anth.data.map((m) => m.id), ['mock-model']);
  assert.equal((await fetch(`${gw.baseURL}/models/mock-other`, { headers: { authorization: `Bearer ${lk}` } })).status, 403);
  assert.equal((await fetch(`${gw.baseURL}/models`)).status, 401);

  // the access log says who asked, never the key
  const line = await gw.waitLog((l) => l.key_alias === 'sdk' && l.path === '/v1/chat/completions' && l.status === 200);
  assert.equal(line.team, 'search');
  assert.equal(line.user, 'ana');
  assert.equal(line.key_id, made.body.id);
  const denied = await gw.waitLog((l) => l.status === 403 && l.key_alias === 'only-mock-model' && /mock-other/.test(l.error));
  assert.equal(denied.error, 'This gateway key may not use the model `mock-other`');
  const logText = JSON.stringify(gw.logLines);
  assert.ok(!logText.includes(key) && !logText.includes(lk), 'a gateway key in the access log');
  assert.ok(!gw.stderr().includes(key), 'a gateway key on stderr');
});

test('the client\'s gateway key never reaches the provider (a keyless one gets none, a keyed one its own)', async () => {
  const { body } = await admin('POST', '/admin/keys', { key_alias: 'upstream-check' });
  await mock.reset();
  await chat(openai(body.key));
  await anthropic(body.key).messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  await chat(openai(body.key), 'claude-mock'); // translated to Anthropic's format
  const seen = await mock.requests();
  assert.ok(seen.length >= 3);
  for (const r of seen) {
    const text = JSON.stringify(r.headers);
    assert.ok(!text.includes(body.key), `the gateway key reached the provider: ${text}`);
    if (r.url.startsWith('/v1/chat/')) assert.ok(!r.headers.some(([n]) => n.toLowerCase() === 'authorization'), text);
    else assert.deepEqual(r.headers.filter(([n]) => n.toLowerCase() === 'x-api-key').map(([, v]) => v), ['provider-side-key']);
  }
});

test('a stored response is its key\'s: another key can neither read, delete nor continue it; the master key reads it', async () => {
  const a = (await admin('POST', '/admin/keys', { key_alias: 'responses-a' })).body.key;
  const b = (await admin('POST', '/admin/keys', { key_alias: 'responses-b' })).body.key;
  const made = await openai(a).responses.create({ model: 'mock-model', input: 'hi' });
  assert.match(made.id, /^resp_/);
  assert.equal((await openai(a).responses.retrieve(made.id)).id, made.id);
  await assert.rejects(openai(b).responses.retrieve(made.id), (e) => e.status === 404);
  await assert.rejects(openai(b).responses.delete(made.id), (e) => e.status === 404);
  await assert.rejects(openai(b).responses.create({ model: 'mock-model', input: 'more', previous_response_id: made.id }),
    (e) => e.status === 400 && e.param === 'previous_response_id');
  const next = await openai(a).responses.create({ model: 'mock-model', input: 'more', previous_response_id: made.id });
  assert.equal(next.status, 'completed');
  assert.equal((await openai(MASTER).responses.retrieve(made.id)).id, made.id);
  await openai(a).responses.delete(made.id);
  await assert.rejects(openai(MASTER).responses.retrieve(made.id), (e) => e.status === 404);
});

test('a key\'s team and metadata reach routing conditions, over what the client claims', async () => {
  const search = (await admin('POST', '/admin/keys', { key_alias: 'route-search', team_id: 'search', metadata: { tier: 'gold' } })).body.key;
  const plain = (await admin('POST', '/admin/keys', { key_alias: 'route-plain', metadata: { tier: 'gold' } })).body.key;
  const other = (await admin('POST', '/admin/keys', { key_alias: 'route-other', team_id: 'ads' })).body.key;
  const ask = async (key, claimed) => {
    const client = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0,
      defaultHeaders: claimed ? { 'x-aigw-metadata': JSON.stringify(claimed) } : {} });
    const { data, response } = await client.chat.completions
      .create({ model: 'by-team', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.match(data.choices[0].message.content, /mock reply/);
    return response.headers.get('x-aigw-route').split('/').pop();
  };
  assert.equal(await ask(search), 'search');
  assert.equal(await ask(plain), 'gold');
  assert.equal(await ask(other), 'others');
  // a client's own metadata still counts where the key says nothing, never over the key
  assert.equal(await ask(other, { team: 'search' }), 'others');
  assert.equal(await ask(other, { tier: 'gold' }), 'gold');
});

test('a key disabled through the admin API stops within seconds; enabled again it works; expired keys say so', async () => {
  const { body } = await admin('POST', '/admin/keys', { key_alias: 'to-disable' });
  const client = openai(body.key);
  await chat(client);
  const off = await admin('POST', `/admin/keys/${body.id}/disable`);
  assert.equal(off.body.enabled, false);
  const started = Date.now();
  await eventually(async () => {
    try { await chat(client); return false; } catch (e) { return e.status === 401 && e.code === 'key_disabled'; }
  }, 5000, 'the disabled key refused');
  assert.ok(Date.now() - started < 5000);
  await assert.rejects(chat(client), (e) => e.error.message === 'This gateway key is disabled');
  await admin('POST', `/admin/keys/to-disable/enable`);
  await eventually(async () => { try { await chat(client); return true; } catch { return false; } }, 5000, 'enabled again');

  const past = await admin('POST', '/admin/keys', { key_alias: 'expired', expires_at: 1000000000 });
  await eventually(async () => {
    try { await chat(openai(past.body.key)); return false; } catch (e) { return e.code === 'key_expired'; }
  }, 5000, 'expired');
  await assert.rejects(chat(openai(past.body.key)), (e) => /expired at 2001-09-09T01:46:40Z/.test(e.error.message));

  // rotate: the old key stops, the new one works, same id
  const rot = await admin('POST', `/admin/keys/${body.id}/rotate`);
  assert.equal(rot.body.id, body.id);
  assert.notEqual(rot.body.key, body.key);
  await eventually(async () => { try { await chat(openai(rot.body.key)); return true; } catch { return false; } }, 5000, 'rotated key');
  await assert.rejects(chat(client), (e) => e.status === 401);
  // delete
  assert.equal((await admin('DELETE', `/admin/keys/${body.id}`)).body.deleted, true);
  assert.equal((await admin('GET', `/admin/keys/${body.id}`)).status, 404);
});

test('LiteLLM\'s /key/generate, /key/info, /key/update, /key/block, /key/delete with its field names', async () => {
  const gen = await admin('POST', '/key/generate', {
    models: ['mock-model'], duration: '30d', key_alias: 'litellm-script', max_budget: 10, rpm_limit: 60, tpm_limit: 1000,
    metadata: { team: 'core-infra', user: 'ishaan@example.com', tags: ['ci'] },
  });
  assert.equal(gen.status, 200, JSON.stringify(gen.body));
  const k = gen.body;
  assert.match(k.key, /^aigw-/);
  const in30d = Date.now() + 30 * 86400 * 1000;
  assert.ok(Math.abs(Date.parse(k.expires) - in30d) < 60000, k.expires);
  assert.equal(k.team_id, 'core-infra');
  assert.equal(k.user_id, 'ishaan@example.com');
  assert.deepEqual(k.tags, ['ci']);
  assert.equal(k.max_budget, 10);
  assert.equal(k.rpm_limit, 60);

  for (const ref of [k.key, k.token, 'litellm-script']) {
    const info = await admin('GET', `/key/info?key=${encodeURIComponent(ref)}`);
    assert.equal(info.status, 200);
    assert.equal(info.body.key, k.id);
    assert.equal(info.body.info.key_alias, 'litellm-script');
    assert.equal(info.body.info.key, undefined, 'the plaintext is shown once');
  }
  const upd = await admin('POST', '/key/update', { key: k.key, models: ['mock-*'], metadata: { team: 'other' } });
  assert.deepEqual(upd.body.models, ['mock-*']);
  assert.equal(upd.body.team_id, 'other');
  const blocked = await admin('POST', '/key/block', { key: k.key });
  assert.equal(blocked.body.blocked, true);
  await eventually(async () => { try { await chat(openai(k.key)); return false; } catch (e) { return e.code === 'key_disabled'; } }, 5000, 'blocked');
  assert.equal((await admin('POST', '/key/unblock', { key: k.key })).body.blocked, false);
  const list = await admin('GET', '/key/list');
  assert.ok(list.body.keys.includes(k.id));
  const bad = await admin('POST', '/key/generate', { models: 'gpt-4', unknown_thing: 1 });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /unknown field 'unknown_thing'/);
  const badDuration = await admin('POST', '/key/generate', { duration: 'forever' });
  assert.match(badDuration.body.error.message, /'duration' must be like 30d/);
  const del = await admin('POST', '/key/delete', { keys: [k.key] });
  assert.deepEqual(del.body.deleted_keys, [k.id]);
  const missing = await admin('POST', '/key/delete', { keys: [k.key] });
  assert.equal(missing.status, 404);
  assert.doesNotMatch(JSON.stringify(missing.body), new RegExp(k.key));
});

test('the admin API needs the master key or an admin key', async () => {
  const { body } = await admin('POST', '/admin/keys', { key_alias: 'not-admin' });
  for (const [key, code] of [['', 'missing_api_key'], ['wrong', 'invalid_api_key']]) {
    const r = await admin('GET', '/admin/keys', undefined, key);
    assert.equal(r.status, 401, key);
    assert.equal(r.body.error.code, code);
    assert.match(r.body.error.message, /needs the master key or an admin key/);
  }
  // a user key is known but has not the rank: 403
  const user = await admin('GET', '/admin/keys', undefined, body.key);
  assert.equal(user.status, 403);
  assert.equal(user.body.error.code, 'admin_key_required');
  assert.equal((await admin('GET', '/admin/nothing')).status, 404);
  assert.equal((await admin('PUT', '/admin/keys')).status, 405);
});

test('an admin key made by the master key manages keys and teams, but not admin keys; revoked, it stops', async () => {
  const made = await admin('POST', '/admin/keys', { key_alias: 'ops', admin: true });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.equal(made.body.admin, true);
  assert.equal(made.body.user_role, 'proxy_admin');
  const opsKey = made.body.key;
  // it manages user keys: create, show, update, disable, delete (aigw's and LiteLLM's spellings)
  const u = await admin('POST', '/admin/keys', { key_alias: 'made-by-ops', models: ['mock-*'] }, opsKey);
  assert.equal(u.status, 200, JSON.stringify(u.body));
  assert.equal(u.body.admin, false);
  await chat(openai(u.body.key));
  assert.equal((await admin('PATCH', `/admin/keys/${u.body.id}`, { tags: ['x'] }, opsKey)).body.tags[0], 'x');
  assert.equal((await admin('GET', '/key/info?key=made-by-ops', undefined, opsKey)).body.info.key_alias, 'made-by-ops');
  assert.equal((await admin('POST', '/key/block', { key: u.body.key }, opsKey)).body.blocked, true);
  assert.equal((await admin('GET', '/admin/keys', undefined, opsKey)).status, 200);
  assert.equal((await admin('POST', '/admin/teams', { team_id: 'ops-team' }, opsKey)).status, 200);
  assert.equal((await admin('DELETE', '/admin/teams/ops-team', undefined, opsKey)).status, 200);
  assert.equal((await admin('GET', '/admin/config', undefined, opsKey)).status, 200);
  assert.equal((await admin('DELETE', `/admin/keys/${u.body.id}`, undefined, opsKey)).body.deleted, true);
  // …but it cannot mint an admin key, raise a key to admin, or touch an admin key (its own too)
  for (const [method, path, body] of [
    ['POST', '/admin/keys', { key_alias: 'ops2', admin: true }],
    ['POST', '/key/generate', { user_role: 'proxy_admin' }],
    ['PATCH', '/admin/keys/not-admin', { admin: true }],
    ['POST', '/key/update', { key: 'not-admin', user_role: 'proxy_admin' }],
    ['POST', `/admin/keys/${made.body.id}/disable`],
    ['POST', `/admin/keys/${made.body.id}/rotate`],
    ['DELETE', `/admin/keys/${made.body.id}`],
    ['POST', '/key/delete', { keys: [opsKey] }],
  ]) {
    const r = await admin(method, path, body, opsKey);
    assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'master_key_required');
  }
  assert.equal((await admin('GET', '/admin/keys/ops2')).status, 404);
  assert.equal((await admin('GET', '/admin/keys/not-admin')).body.admin, false);
  // nor replace or reload the config
  assert.equal((await admin('POST', '/admin/config/reload', undefined, opsKey)).status, 403);
  // `user_role` and `admin` must agree; a bad role is a 400
  assert.equal((await admin('POST', '/key/generate', { user_role: 'root' })).status, 400);
  assert.equal((await admin('POST', '/key/generate', { user_role: 'internal_user', admin: true })).status, 400);
  // the master key may: the CLI shows the role
  const show = cliGw('show', 'ops');
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /role:\s+admin/);

  // disabled (revoked), the admin key stops within the poll interval, with the 401 every key gets
  assert.equal((await admin('POST', `/admin/keys/${made.body.id}/disable`)).body.enabled, false);
  const started = Date.now();
  await eventually(async () => (await admin('GET', '/admin/keys', undefined, opsKey)).status === 401, 5000, 'revoked admin key refused');
  assert.ok(Date.now() - started < 3000, 'within about a second (STORE_POLL_MS), not minutes');
  const off = await admin('GET', '/admin/keys', undefined, opsKey);
  assert.equal(off.body.error.code, 'key_disabled');
  // expired: the same 401 as elsewhere
  const old = await admin('POST', '/admin/keys', { key_alias: 'ops-old', admin: true, expires_at: 1000000000 });
  const expired = await admin('GET', '/admin/keys', undefined, old.body.key);
  assert.equal(expired.status, 401);
  assert.equal(expired.body.error.code, 'key_expired');
  await admin('DELETE', `/admin/keys/${made.body.id}`);
  await admin('DELETE', '/admin/keys/ops-old');
});

test('a key\'s default route serves a model that is absent, "default" or served nowhere; its globs see that route', async () => {
  const made = await admin('POST', '/admin/keys', { key_alias: 'with-default', default_route: 'cheap' });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.equal(made.body.default_route, 'cheap');
  const client = openai(made.body.key);
  const upstreamModel = async (fn) => {
    await mock.reset();
    const r = await fn();
    const seen = await mock.requests('/v1/chat/completions');
    assert.equal(seen.length, 1);
    return [r, JSON.parse(seen[0].body).model];
  };
  // "default", a name nothing serves, and no model at all: the key's default route answers
  for (const model of ['default', 'no-such-model', undefined]) {
    const [r, sent] = await upstreamModel(() => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }));
    assert.match(r.choices[0].message.content, /mock reply/);
    assert.equal(sent, 'mock-other', `model ${model}`);
  }
  const raw = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST',
    headers: { authorization: `Bearer ${made.body.key}`, 'content-type': 'application/json' },
    body: '{ }' });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('x-aigw-route'), /^cheap\b/);
  // a model the config serves is served as asked
  const [, asked] = await upstreamModel(() => chat(client, 'mock-model'));
  assert.equal(asked, 'mock-model');
  // the access log names the route that served it
  await gw.waitLog((l) => l.key_alias === 'with-default' && l.model === 'cheap');
  // without a default route of its own, "default" is an unknown model (the config has none)
  const plain = await admin('POST', '/admin/keys', { key_alias: 'no-default' });
  await assert.rejects(chat(openai(plain.body.key), 'default'), (e) => e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(openai(plain.body.key).chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status === 400);

  // globs: a default route the key's own models do not allow is refused when written…
  const refused = await admin('POST', '/admin/keys', { models: ['mock-model'], default_route: 'cheap' });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error.message, /'default_route' `cheap` is not among the key's models/);
  // …and a key limited to some models reaches its default route by any name nothing serves, but
  // a served model outside its globs is still 403
  const limited = await admin('POST', '/key/generate', { models: ['cheap'], default_route: 'cheap' });
  assert.equal(limited.status, 200, JSON.stringify(limited.body));
  const [, via] = await upstreamModel(() => chat(openai(limited.body.key), 'gpt-unknown'));
  assert.equal(via, 'mock-other');
  await assert.rejects(chat(openai(limited.body.key), 'mock-model'), (e) => e.status === 403 && e.code === 'model_not_allowed');
  // its team's globs apply to the default route too
  await admin('POST', '/admin/teams', { team_id: 'no-cheap', models: ['mock-model'] });
  await admin('PATCH', `/admin/keys/${made.body.id}`, { team_id: 'no-cheap' });
  await eventually(async () => {
    try { await chat(client, 'default'); return false; } catch (e) { return e.status === 403 && /`cheap`/.test(e.error.message); }
  }, 5000, 'the team\'s globs refuse the default route');
  await admin('PATCH', `/admin/keys/${made.body.id}`, { team_id: null });

  // LiteLLM's /key/update sets and clears it; a name the config does not serve is a 404 naming it
  assert.equal((await admin('POST', '/key/update', { key: made.body.key, default_route: 'gone' })).body.default_route, 'gone');
  await eventually(async () => {
    try { await chat(client, 'default'); return false; } catch (e) { return e.status === 404 && /default route `gone`/.test(e.error.message); }
  }, 5000, 'a default route the config lacks');
  assert.equal((await admin('POST', '/key/update', { key: made.body.key, default_route: null })).body.default_route, null);
  await eventually(async () => {
    try { await chat(client, 'default'); return false; } catch (e) { return e.status === 404 && e.code === 'model_not_found'; }
  }, 5000, 'no default route');
  // a request config names its own targets: the key's default route does not apply
  const cfgd = await admin('POST', '/admin/keys', { default_route: 'cheap' });
  const noModel = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST',
    headers: { authorization: `Bearer ${cfgd.body.key}`, 'x-aigw-config': '{"provider":"oa"}' }, body: '{"messages":[]}' });
  assert.equal(noModel.status, 400);
  // the CLI sets it
  const c = cli('create', '--alias', 'cli-default', '--default-route', 'cheap', '--direct');
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /default:\s+cheap/);
});

test('the OpenAPI document lists what the server answers, and each operation it lists answers', async () => {
  const doc = await (await fetch(`${gw.url}/admin/openapi.json`)).json();
  assert.equal(doc.openapi, '3.1.0');
  const { body: key } = await admin('POST', '/admin/keys', { key_alias: 'openapi-probe' });
  let n = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      let url = path.replace('{id}', key.id);
      if (path === '/key/info') url += `?key=${key.id}`;
      const body = ['post', 'patch'].includes(method)
        ? (path.startsWith('/key/') && path !== '/key/generate' ? (path === '/key/delete' ? { keys: ['nope'] } : { key: key.id }) : {})
        : undefined;
      const r = await admin(method.toUpperCase(), url, body);
      // an operation the server knows: never its 404 for an unknown path, never 405
      assert.notEqual(r.status, 405, `${method} ${path}`);
      assert.ok(!(r.status === 404 && r.body?.error?.code === 'not_found'), `${method} ${path}: ${JSON.stringify(r.body)}`);
      n++;
    }
  }
  assert.equal(n, 52); // every operation the document lists was called
});

test('a key made by `aigw keys` on the store file works on the running gateway; the files hold no key', async () => {
  const made = cli('create', '--direct', '--alias', 'from-cli', '--models', 'mock-model', '--team', 'ops');
  assert.equal(made.status, 0, made.stderr);
  if (POSTGRES) {
    assert.match(made.stderr, /on the store database postgres:\/\/aigw:\*\*\*@127\.0\.0\.1:\d+\/aigw/);
    assert.ok(!made.stderr.includes(pg.password), 'the CLI shows the database password');
    assert.ok(!gw.stderr().includes(pg.password), 'the gateway logs the database password');
  } else {
    assert.match(made.stderr, /on the store file/);
  }
  const key = made.stdout.match(/^key: +(aigw-\S+)/m)[1];
  await eventually(async () => { try { await chat(openai(key)); return true; } catch { return false; } }, 5000, 'CLI key works');
  // through the gateway's admin API when it answers
  const list = cliGw('list');
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stderr, /via the gateway at http:\/\/127\.0\.0\.1:/);
  assert.match(list.stdout, /from-cli/);
  const shown = cliGw('show', 'from-cli', '--json');
  assert.equal(JSON.parse(shown.stdout).team_id, 'ops');
  assert.equal(JSON.parse(shown.stdout).key, undefined);
  const off = cliGw('disable', 'from-cli');
  assert.equal(off.status, 0, off.stderr);
  await eventually(async () => { try { await chat(openai(key)); return false; } catch (e) { return e.code === 'key_disabled'; } }, 5000, 'CLI disable');
  const rot = cliGw('rotate', 'from-cli');
  assert.match(rot.stdout, /^key: +aigw-/m);
  assert.equal(cli('show', 'nobody').status, 1);
  const help = spawnSync(AIGW_BIN, ['keys', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /aigw keys create/);

  if (POSTGRES) {
    // a dump of the database, and every file PostgreSQL wrote (tables, WAL, its log): no key
    const dump = pg.dump();
    assert.match(dump, /from-cli/);
    for (const needle of [key, key.slice(5, 25), MASTER]) {
      assert.ok(!dump.includes(needle), 'pg_dump holds a key');
      assert.deepEqual(pg.filesHolding(needle), [], 'files of the data directory hold a key');
    }
    assert.ok(pg.filesHolding('from-cli').length > 0, 'the data directory is where the rows are');
    return;
  }
  // the database, its WAL and the secret file: no key in any of them; the secret file is 0600
  const dir = dirname(gw.file);
  const secret = join(dir, 'aigw.db.secret');
  assert.equal(statSync(secret).mode & 0o777, 0o600);
  for (const f of ['aigw.db', 'aigw.db-wal', 'aigw.db.secret']) {
    if (!existsSync(join(dir, f))) continue;
    const bytes = readFileSync(join(dir, f)).toString('latin1');
    assert.ok(!bytes.includes(key), `${f} holds the key`);
    assert.ok(!bytes.includes(key.slice(5, 25)), `${f} holds part of the key`);
    assert.ok(!bytes.includes(MASTER), `${f} holds the master key`);
  }
  assert.ok(readFileSync(join(dir, 'aigw.db')).toString('latin1').includes('from-cli') ||
    (existsSync(join(dir, 'aigw.db-wal')) && readFileSync(join(dir, 'aigw.db-wal')).toString('latin1').includes('from-cli')));
});

function serveOnce(config, ms = 5000) {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-keys-'));
  const file = join(dir, 'aigw.yaml');
  writeFileSync(file, config);
  const proc = spawn(AIGW_BIN, ['serve', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  return {
    proc, dir, file, stderr: () => stderr,
    exited: new Promise((resolve) => proc.on('close', (code) => resolve(code))), // 'close': stderr read to its end
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}

test('a non-loopback listen with no auth is refused at start, saying how to add it; `auth: off` serves', async () => {
  const providers = `providers:\n  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}\n`;
  const open = serveOnce(`listen: 0.0.0.0:0\nworkers: 1\n${providers}`);
  assert.equal(await open.exited, 1);
  assert.match(open.stderr(), /listen 0\.0\.0\.0:0 is reachable from other machines and no 'auth:' is configured/);
  assert.match(open.stderr(), /master_key: \$\{AIGW_MASTER_KEY\}/);
  assert.match(open.stderr(), /auth: off/);
  open.cleanup();
  const check = spawnSync(AIGW_BIN, ['config', 'check', '/dev/null'], { encoding: 'utf8' });
  assert.notEqual(check.status, 0);

  const off = serveOnce(`listen: 0.0.0.0:0\nworkers: 1\nauth: off\n${providers}`);
  await eventually(() => /listening on 0\.0\.0\.0:\d+/.test(off.stderr()), 5000, 'auth: off listening');
  off.proc.kill('SIGTERM');
  assert.equal(await off.exited, 0);
  off.cleanup();
});

test('a damaged store refuses to start with a message that names the file', { skip: POSTGRES && 'a SQLite file' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-keys-'));
  writeFileSync(join(dir, 'aigw.db'), Buffer.alloc(8192, 0x5a));
  const file = join(dir, 'aigw.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0\nworkers: 1\nauth: {master_key: ${MASTER}}\nproviders:\n  - {name: oa, type: openai, base_url: "http://127.0.0.1:1/v1", models: [m]}\n`);
  const r = spawnSync(AIGW_BIN, ['serve', '-c', file], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /store .*aigw\.db is damaged or not an aigw store/);
  rmSync(dir, { recursive: true, force: true });
  await sleep(0);
});

test('the running config through the admin API: read with its secrets masked, replaced, refused with every mistake, reloaded', async () => {
  const original = readFileSync(gw.file, 'utf8');
  const shown = await admin('GET', '/admin/config');
  assert.equal(shown.status, 200);
  assert.equal(shown.body.path, gw.file);
  assert.ok(!shown.body.source.includes('provider-side-key') && !shown.body.source.includes(MASTER), shown.body.source);
  assert.match(shown.body.source, /api_key: "<redacted>"/);
  assert.match(shown.body.source, /master_key: "<redacted>"/);
  assert.match(shown.body.source, /models: \[mock-model, mock-other, mock-embed\]/);
  // the masked text put back would write the mask over the secrets: refused
  const masked = await admin('PUT', '/admin/config', { source: shown.body.source });
  assert.equal(masked.status, 400);
  assert.equal(masked.body.error.code, 'config_redacted');
  assert.equal(readFileSync(gw.file, 'utf8'), original);

  // a config with two mistakes: 400 naming both; the file and the running config unchanged
  const broken = original.replace('routes:', '  - {name: bad, type: openai, base_url: "gopher://old", models: [b]}\n  - {name: worse, type: openai, base_url: "ftp://nowhere", models: [w]}\nroutes:');
  const refused = await admin('PUT', '/admin/config', { source: broken });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'config_refused');
  assert.match(refused.body.error.message, /provider 'bad': base_url/);
  assert.match(refused.body.error.message, /provider 'worse': base_url/);
  assert.equal(readFileSync(gw.file, 'utf8'), original);
  assert.equal((await chat(openai(MASTER))).object, 'chat.completion');

  // a new model, as raw YAML: served at once, and the file holds it
  const added = original.replace('models: [mock-model, mock-other, mock-embed]', 'models: [mock-model, mock-other, mock-embed, mock-added]');
  const applied = await fetch(`${gw.url}/admin/config`, {
    method: 'PUT', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/yaml' }, body: added });
  const outcome = await applied.json();
  assert.equal(applied.status, 200, JSON.stringify(outcome));
  assert.equal(outcome.reloaded, true);
  assert.match(outcome.message, /config reloaded from .*\(2 providers, 5 models, 2 routes\)/);
  assert.equal(readFileSync(gw.file, 'utf8'), added);
  await eventually(async () => { try { await chat(openai(MASTER), 'mock-added'); return true; } catch { return false; } }, 5000, 'the added model served');
  assert.equal((await admin('GET', '/admin/config')).body.source.includes('mock-added'), true);

  // the file edited by hand, then reloaded through the API; a user key may not (403: known, not
  // an admin key), nor may an admin key (only the master key changes the config)
  writeFileSync(gw.file, original);
  const { body: k } = await admin('POST', '/admin/keys', { key_alias: 'config-probe' });
  assert.equal((await admin('POST', '/admin/config/reload', undefined, k.key)).status, 403);
  const { body: ak } = await admin('POST', '/admin/keys', { key_alias: 'config-admin', admin: true });
  const byAdmin = await admin('PUT', '/admin/config', { source: original }, ak.key);
  assert.equal(byAdmin.status, 403);
  assert.equal(byAdmin.body.error.code, 'master_key_required');
  const reloaded = await admin('POST', '/admin/config/reload');
  assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
  await eventually(async () => { try { await chat(openai(MASTER), 'mock-added'); return false; } catch (e) { return e.status === 404; } }, 5000, 'the model gone again');
});
