// guess-throttle.test.mjs — wrong keys throttled per client address (src/access/guess_throttle.c):
// the dashboard's login, the admin API and the model endpoints each refuse the eleventh wrong key
// of a minute from one address with 429 and Retry-After in the client's API shape, and then do
// not even compare the master key from there; another address is not held back. The whole of
// 127.0.0.0/8 is loopback, so the test's clients bind 127.0.0.2, 127.0.0.3 … as their source
// address (every connection still goes to aigw on 127.0.0.1). The global ceiling (100 a minute
// from all addresses) and the table's bounds are in tests/unit/test_guess_throttle.c.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'test-master-key-throttle-0123456789';
let mock, gw, dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-throttle-'));
  mock = await startMock();
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: off
providers:
  - {name: mockai, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", api_key: k, models: [mock-model]}
  - {name: mockant, type: anthropic, base_url: "http://127.0.0.1:${mock.port}", api_key: k, models: [mock-claude]}
auth:
  master_key: ${MASTER}
  store: ${join(dir, 'keys.db')}
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// One request from a chosen loopback source address (a new connection each time); bounded.
function from(source, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: gw.port, localAddress: source, method, path, agent: false, timeout: 10000,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} from ${source}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}
const login = (source, key) => from(source, 'POST', '/ui/api/login', { body: { key } });
const bearer = (key) => ({ authorization: `Bearer ${key}` });
const chat = (source, key) => from(source, 'POST', '/v1/chat/completions',
  { headers: bearer(key), body: { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] } });

function assertThrottled(r, what) {
  assert.equal(r.status, 429, `${what}: ${r.text}`);
  const wait = Number(r.headers['retry-after']);
  assert.ok(wait >= 1 && wait <= 60, `${what}: Retry-After ${r.headers['retry-after']}`);
  return wait;
}

async function rejections() {
  const text = await (await fetch(`${gw.url}/metrics`, { headers: bearer(MASTER) })).text();
  const counts = {};
  for (const m of text.matchAll(/^aigw_rejections_total\{reason="([a-z_]+)",key="([^"]*)"\} (\d+)$/gm)) counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[3]);
  return counts;
}

test('the eleventh wrong login from an address is 429; the master key from there is not even compared; another address logs in', async () => {
  const before = await rejections();
  for (let i = 0; i < 10; i++) {
    const r = await login('127.0.0.2', `not-the-master-key-${i}`);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.error.code, 'invalid_api_key');
  }
  const eleventh = await login('127.0.0.2', 'not-the-master-key-10');
  assertThrottled(eleventh, 'the 11th login');
  assert.deepEqual(Object.keys(eleventh.body), ['error'], 'OpenAI\'s error shape');
  assert.equal(eleventh.body.error.type, 'requests');
  assert.equal(eleventh.body.error.code, 'too_many_wrong_keys');
  assert.match(eleventh.body.error.message, /Too many wrong keys from this address \(10 a minute at most\)/);
  assert.equal(eleventh.headers['set-cookie'], undefined);
  // the right key from the throttled address is refused the same way: a guess that happens to
  // be right cannot be told from a wrong one while the address waits
  const right = await login('127.0.0.2', MASTER);
  assertThrottled(right, 'the master key from the throttled address');
  assert.equal(right.headers['set-cookie'], undefined, 'no session for a refused login');
  // another address is not held back by those failures
  const other = await login('127.0.0.3', MASTER);
  assert.equal(other.status, 200, other.text);
  assert.equal(other.body.who, 'master key');
  assert.match(other.headers['set-cookie'][0], /^aigw_session=[0-9a-f]{64};/);
  // the refusals are counted: ten wrong keys, then two throttled
  await eventually(async () => {
    const now = await rejections();
    return (now.auth_invalid ?? 0) - (before.auth_invalid ?? 0) === 10 &&
      (now.auth_throttled ?? 0) - (before.auth_throttled ?? 0) === 2 &&
      (now.rate_limit_requests ?? 0) === (before.rate_limit_requests ?? 0);
  }, 5000, 'auth_invalid +10 and auth_throttled +2 (rate_limit_requests unchanged) in aigw_rejections_total');
});

test('the throttled address: the master key refused on the admin API and the model endpoints too, gateway keys still served', async () => {
  // 127.0.0.2 is still in its window (the test before): the master key is not compared anywhere
  assertThrottled(await from('127.0.0.2', 'GET', '/admin/keys', { headers: bearer(MASTER) }), 'the admin API');
  assertThrottled(await chat('127.0.0.2', MASTER), 'a chat completion with the master key');
  const anthropic = await from('127.0.0.2', 'POST', '/v1/messages', {
    headers: { 'x-api-key': MASTER, 'anthropic-version': '2023-06-01' },
    body: { model: 'mock-claude', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
  });
  assertThrottled(anthropic, 'an Anthropic request');
  assert.equal(anthropic.body.type, 'error', 'Anthropic\'s error shape');
  assert.equal(anthropic.body.error.type, 'rate_limit_error');
  // a gateway key (and an admin key) is never a guess at the master key: it is served
  const made = await from('127.0.0.3', 'POST', '/admin/keys', { headers: bearer(MASTER), body: { key_alias: 'user' } });
  assert.equal(made.status, 200, made.text);
  const ops = await from('127.0.0.3', 'POST', '/admin/keys', { headers: bearer(MASTER), body: { key_alias: 'ops', admin: true } });
  assert.equal(ops.status, 200, ops.text);
  assert.equal((await chat('127.0.0.2', made.body.key)).status, 200, 'a gateway key from the throttled address');
  assert.equal((await from('127.0.0.2', 'GET', '/admin/keys', { headers: bearer(ops.body.key) })).status, 200,
    'an admin key from the throttled address');
  assert.equal((await login('127.0.0.2', ops.body.key)).status, 200, 'a login with an admin key from there');
  // the admin API and the model endpoints count wrong keys themselves
  for (const [source, ask] of [
    ['127.0.0.4', (key) => from('127.0.0.4', 'GET', '/admin/keys', { headers: bearer(key) })],
    ['127.0.0.5', (key) => chat('127.0.0.5', key)],
  ]) {
    for (let i = 0; i < 10; i++) assert.equal((await ask(`wrong-${i}`)).status, 401, `${source}: wrong key ${i + 1}`);
    const r = await ask('wrong-10');
    assertThrottled(r, `${source}: the 11th wrong key`);
    assert.equal(r.body.error.code, 'too_many_wrong_keys');
    assertThrottled(await ask(MASTER), `${source}: the master key after`);
    assert.equal((await chat(source, made.body.key)).status, 200, `${source}: a gateway key after`);
  }
  // a key in a gateway key's shape (a rotated or deleted one a client still sends) cannot be the
  // master key, which has another shape here: refused at once and never counted as a guess
  const rotated = await from('127.0.0.3', 'POST', `/admin/keys/${made.body.id}/rotate`, { headers: bearer(MASTER) });
  assert.equal(rotated.status, 200, rotated.text);
  for (let i = 0; i < 15; i++) {
    const r = await chat('127.0.0.7', made.body.key);
    assert.equal(r.status, 401, `the old key, ${i + 1}: ${r.text}`);
    assert.equal(r.body.error.code, 'invalid_api_key');
  }
  assert.equal((await chat('127.0.0.7', MASTER)).status, 200, 'the master key after 15 stale gateway keys');
  // a dashboard session opened before is a session, not a key: it still works from anywhere
  const session = (await login('127.0.0.6', MASTER)).headers['set-cookie'][0].split(';')[0];
  for (let i = 0; i < 11; i++) await login('127.0.0.6', `wrong-${i}`);
  assertThrottled(await login('127.0.0.6', MASTER), 'the master key from 127.0.0.6 once throttled');
  assert.equal((await from('127.0.0.6', 'GET', '/admin/keys', { headers: { cookie: session } })).status, 200,
    'the session opened before');
});
