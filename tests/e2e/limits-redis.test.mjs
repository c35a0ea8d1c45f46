// limits-redis.test.mjs — rate limits across instances: a redis-server started here (Debian's
// package, a unix socket in a temporary directory, no TCP port, no persistence) and three aigw
// processes sharing it and one SQLite store file. Checked: a key made through one instance works
// on the others; a 60-requests-per-minute limit holds across two instances (80 requests split
// between them: exactly 60 served); with Redis stopped, the instance set to fail open serves and
// the one set to fail closed refuses (503 in OpenAI's shape), each says so once on stderr, and
// nothing crashes; a Redis that hangs costs a request at most the timeout; Redis back, limits
// resume. Every loop is bounded in count and time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, sleep, eventually } from './harness.mjs';

const MASTER = 'test-master-key-redis-0123';
let dir, redis, mock, gwA, gwB, gwClosed;

async function startRedis() {
  const proc = spawn('redis-server', [
    '--port', '0', '--unixsocket', join(dir, 'redis.sock'), '--unixsocketperm', '700',
    '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const deadline = Date.now() + 5000;
  while (!existsSync(join(dir, 'redis.sock'))) {
    assert.ok(Date.now() < deadline && proc.exitCode === null, 'redis-server did not start');
    await sleep(20);
  }
  return proc;
}

async function stopRedis() {
  if (!redis || redis.exitCode !== null) return;
  const exited = new Promise((r) => redis.once('exit', r));
  redis.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  redis = null;
}

const config = (base, policy) => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", models: [mock-model]}
auth:
  master_key: ${MASTER}
  store: ${join(dir, 'shared.db')}
  limits: {backend: redis, redis: "unix:${join(dir, 'redis.sock')}", timeout: 200ms, on_redis_error: ${policy}}
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-redis-'));
  redis = await startRedis();
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gwA = await startGateway(config(base, 'open'));
  gwB = await startGateway(config(base, 'open'));
  gwClosed = await startGateway(config(base, 'closed'));
});

after(async () => {
  await gwA?.stop();
  await gwB?.stop();
  await gwClosed?.stop();
  await mock?.stop();
  await stopRedis();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newKey(fields) {
  const r = await fetch(`${gwA.url}/key/generate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: JSON.stringify(fields),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  // the other instances read the shared store file about every second
  for (const gw of [gwA, gwB, gwClosed]) {
    const deadline = Date.now() + 5000;
    while ((await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${body.key}` } })).status !== 200) {
      assert.ok(Date.now() < deadline, 'the new key never reached an instance');
      await sleep(50);
    }
  }
  return body;
}

function post(gw, key) {
  return fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
    signal: AbortSignal.timeout(5000),
  });
}

// not within the last seconds of a minute: a run must not straddle two windows
async function awayFromMinuteEnd(needMs) {
  while (60000 - (Date.now() % 60000) < needMs) await sleep(250);
}

test('60 requests per minute hold across two instances sharing Redis: 80 sent, exactly 60 served', async () => {
  const k = await newKey({ rpm_limit: 60, key_alias: 'shared-60' });
  await awayFromMinuteEnd(15000);
  const statuses = [];
  const remaining = new Set();
  for (let batch = 0; batch < 10; batch++) {
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => post(i % 2 ? gwB : gwA, k.key)));
    for (const r of rs) {
      statuses.push(r.status);
      if (r.status === 200) remaining.add(r.headers.get('x-ratelimit-remaining-requests'));
      else {
        const body = await r.json();
        assert.equal(body.error.code, 'rate_limit_exceeded');
        assert.match(body.error.message, /60 requests per minute of this gateway key/);
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
      }
      await r.arrayBuffer().catch(() => {});
    }
  }
  assert.equal(statuses.filter((s) => s === 200).length, 60);
  assert.equal(statuses.filter((s) => s === 429).length, 20);
  // every count from 59 down to 0 was handed out once, whichever instance served it
  assert.equal(remaining.size, 60);
});

test('Redis stopped: fail open serves, fail closed refuses; a hung Redis costs at most the timeout; back: limits resume', async () => {
  const k = await newKey({ rpm_limit: 2 });
  await awayFromMinuteEnd(20000);
  assert.equal((await post(gwA, k.key)).status, 200);
  assert.equal((await post(gwB, k.key)).status, 200);
  assert.equal((await post(gwA, k.key)).status, 429);

  // hung: the request waits no longer than the timeout (200 ms here), then the policy holds
  redis.kill('SIGSTOP');
  try {
    const started = Date.now();
    const open = await post(gwA, k.key);
    assert.equal(open.status, 200);
    assert.ok(Date.now() - started < 1000, `a hung Redis held the request ${Date.now() - started} ms`);
    const closed = await post(gwClosed, k.key);
    assert.equal(closed.status, 503);
  } finally {
    redis.kill('SIGCONT');
  }

  await stopRedis();
  for (let i = 0; i < 5; i++) assert.equal((await post(gwA, k.key)).status, 200, 'fail open');
  for (let i = 0; i < 5; i++) {
    const r = await post(gwClosed, k.key);
    assert.equal(r.status, 503, 'fail closed');
    const body = await r.json();
    assert.equal(body.error.code, 'rate_limit_unavailable');
    assert.match(body.error.message, /Rate limits cannot be checked now/);
  }
  // the master key is never limited, Redis or not
  const master = new OpenAI({ apiKey: MASTER, baseURL: gwClosed.baseURL, maxRetries: 0 });
  await master.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  // one line per outage and process, not one per request
  for (const gw of [gwA, gwClosed]) {
    await eventually(() => /Redis at .* cannot be reached/.test(gw.stderr()), 3000, 'the outage said');
    assert.equal(gw.stderr().match(/Redis at .* cannot be reached/g)?.length, 1, gw.stderr());
  }

  redis = await startRedis();
  // reconnected within a few tries of 250 ms: counted again (an empty Redis: from zero)
  const deadline = Date.now() + 10000;
  let r;
  for (;;) {
    r = await post(gwA, k.key);
    if (r.headers.get('x-ratelimit-limit-requests')) break;
    assert.ok(Date.now() < deadline, `limits did not resume: ${r.status} ${gwA.stderr()}`);
    await sleep(100);
  }
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '1');
  for (const gw of [gwB, gwClosed]) {
    const until = Date.now() + 5000;
    let s;
    while ((s = (await post(gw, k.key)).status) === 503 && Date.now() < until) await sleep(100);
    assert.ok(s === 200 || s === 429, `status ${s}`);
  }
  assert.equal((await post(gwA, k.key)).status, 429);
  // event lines go through the log's queue and its writer thread: on stderr a moment later
  await eventually(() => /Redis at .* is back \(\d+ requests went uncounted meanwhile\)/.test(gwA.stderr()),
    3000, `the outage's end said: ${gwA.stderr()}`);
  for (const gw of [gwA, gwB, gwClosed]) assert.equal(gw.proc.exitCode, null, 'an instance died');
});
