// cache-redis.test.mjs — the response cache's Redis backend: a redis-server started here
// (Debian's package, a unix socket in a temporary directory, no TCP port, no persistence) shared
// by two aigw instances with the same auth.secret. Checked with the official openai SDK and
// aigw-mock's counters: a miss on one instance, then a hit on the other (the mock sees one
// call), entries under the configured prefix with their lifetime (PX), max_age expiry; Redis
// killed mid-test → every request still answered, marked BYPASS (neither looked up nor stored),
// within the lookup's timeout, said once on stderr and counted in /metrics; Redis back → misses
// are stored and hits resume. Every loop is bounded in count and time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, sleep, eventually } from './harness.mjs';

const MASTER = 'cache-redis-master-key-0123';
let dir, redis, mock, gwA, gwB, oaA, oaB;

const sock = () => join(dir, 'redis.sock');

async function startRedis() {
  const proc = spawn('redis-server', [
    '--port', '0', '--unixsocket', sock(), '--unixsocketperm', '700',
    '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const deadline = Date.now() + 5000;
  while (!existsSync(sock())) {
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

const cli = (...args) => execFileSync('redis-cli', ['-s', sock(), ...args], { encoding: 'utf8' }).trim();

const config = (base) => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: k, models: [mock-model, mock-embed]}
routes:
  - name: sem
    cache: {mode: semantic}
    targets: [{provider: oa, model: mock-model}]
  - name: cached
    cache: {mode: simple}
    targets: [{provider: oa, model: mock-model}]
  - name: short
    cache: {mode: simple, max_age: 1}
    targets: [{provider: oa, model: mock-model}]
cache:
  backend: redis
  redis: {url: "unix:${sock()}", timeout: 150ms, prefix: "t:cache:"}
  ttl: 10m
  semantic: {embedding_model: mock-embed, threshold: 0.9, dimensions: 64}
auth:
  master_key: ${MASTER}
  secret: cache-redis-shared-secret-0123456789
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-cache-redis-'));
  redis = await startRedis();
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gwA = await startGateway(config(base));
  gwB = await startGateway(config(base));
  oaA = new OpenAI({ baseURL: gwA.baseURL, apiKey: MASTER, maxRetries: 0 });
  oaB = new OpenAI({ baseURL: gwB.baseURL, apiKey: MASTER, maxRetries: 0 });
});

after(async () => {
  await gwA?.stop();
  await gwB?.stop();
  await mock?.stop();
  await stopRedis();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const chatCalls = async () => (await mock.stats()).paths['/v1/chat/completions'] ?? 0;
const user = (text) => [{ role: 'user', content: text }];

async function ask(client, model, text) {
  const r = await client.chat.completions.create({ model, messages: user(text) }).withResponse();
  return { status: r.response.status, cache: r.response.headers.get('x-aigw-cache'), data: r.data };
}

// Connections open in the background: the first request may come before them.
async function waitConnected(client) {
  for (let i = 0; i < 100; i++) {
    const r = await ask(client, 'cached', `warm-up ${i}`);
    if (r.cache !== 'BYPASS') return;
    await sleep(50);
  }
  assert.fail('the Redis backend never connected');
}

test('a miss on one instance, a hit on the other: one upstream call; entries under the prefix with a lifetime', async () => {
  await waitConnected(oaA);
  await waitConnected(oaB);
  const before = await chatCalls();
  const first = await ask(oaA, 'cached', 'shared across instances');
  assert.equal(first.cache, 'MISS');
  let second;
  for (let i = 0; i < 40; i++) { // the store is sent without waiting: it lands within a moment
    second = await ask(oaB, 'cached', 'shared across instances');
    if (second.cache === 'HIT') break;
    await sleep(25);
  }
  assert.equal(second.cache, 'HIT');
  assert.equal(second.data.choices[0].message.content, first.data.choices[0].message.content);
  assert.equal(second.data.choices[0].finish_reason, 'stop');
  assert.equal(second.data.id, first.data.id);
  assert.equal(await chatCalls(), before + 1, 'the mock saw one call');

  const keys = cli('--scan', '--pattern', 't:cache:*').split('\n').filter(Boolean);
  assert.ok(keys.length >= 1);
  for (const k of keys) {
    assert.match(k, /^t:cache:[0-9a-f]{64}$/, 'the key is the prefix and a digest: no prompt text');
    const ttl = Number(cli('PTTL', k));
    assert.ok(ttl > 0 && ttl <= 600000, `a lifetime of at most cache.ttl: ${ttl}`);
  }
});

test('max_age: an entry older than the route allows is a miss, then stored again', async () => {
  const a = await ask(oaA, 'short', 'expires soon');
  assert.equal(a.cache, 'MISS');
  await sleep(100);
  assert.equal((await ask(oaB, 'short', 'expires soon')).cache, 'HIT');
  await sleep(1200);
  const before = await chatCalls();
  assert.equal((await ask(oaB, 'short', 'expires soon')).cache, 'MISS');
  assert.equal(await chatCalls(), before + 1);
});

test('semantic: the vector is kept in Redis; an instance started later loads it and answers a paraphrase', async () => {
  const prompt = 'which planet in the solar system has the most moons and how many of them are known today';
  const first = await ask(oaA, 'sem', prompt);
  assert.equal(first.cache, 'MISS');
  let vectors = [];
  for (let i = 0; i < 40 && !vectors.length; i++) {
    vectors = cli('--scan', '--pattern', 't:cache:v:*').split('\n').filter(Boolean);
    if (!vectors.length) await sleep(25);
  }
  assert.equal(vectors.length, 1);
  assert.match(vectors[0], /^t:cache:v:[0-9a-f]{64}:[0-9a-f]{64}$/);
  assert.equal(Number(cli('STRLEN', vectors[0])), 64 * 4, 'float32 × dimensions');
  assert.ok(Number(cli('PTTL', vectors[0])) > 0);

  const gwC = await startGateway(config(`http://127.0.0.1:${mock.port}`));
  try {
    assert.match(gwC.stderr(), /1 semantic vectors loaded from Redis/);
    const oaC = new OpenAI({ baseURL: gwC.baseURL, apiKey: MASTER, maxRetries: 0 });
    await waitConnected(oaC);
    const before = await chatCalls();
    const para = await ask(oaC, 'sem', 'how many moons are known today and which planet in the solar system has the most of them');
    assert.equal(para.cache, 'SEMANTIC_HIT');
    assert.equal(para.data.choices[0].message.content, first.data.choices[0].message.content);
    assert.equal(await chatCalls(), before, 'answered from the entry another instance stored');
  } finally {
    await gwC.stop();
  }
});

test('Redis killed: requests answered uncached (BYPASS) within the timeout, said once; back: hits resume', async () => {
  await stopRedis();
  const before = await chatCalls();
  for (let i = 0; i < 6; i++) {
    const t0 = Date.now();
    const r = await ask(oaA, 'cached', 'shared across instances');
    assert.equal(r.status, 200);
    assert.equal(r.cache, 'BYPASS', 'neither looked up nor stored');
    assert.match(r.data.choices[0].message.content, /mock/);
    assert.ok(Date.now() - t0 < 1500, `bounded wait: ${Date.now() - t0} ms`);
  }
  // a stream too
  const stream = await oaA.chat.completions.create({ model: 'cached', messages: user('stream while down'), stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.match(text, /mock/);
  assert.equal(await chatCalls(), before + 7, 'every request went upstream');
  await eventually(() => /cache: Redis at .* cannot be reached/.test(gwA.stderr()), 3000, 'the outage said');
  assert.equal(gwA.stderr().match(/cache: Redis at .* cannot be reached/g)?.length, 1, gwA.stderr());
  const metrics = await (await fetch(`${gwA.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  const unavailable = Number(metrics.match(/^aigw_cache_unavailable_total (\d+)$/m)?.[1]);
  assert.ok(unavailable >= 7, `counted: ${unavailable}`);
  assert.match(metrics, /aigw_cache_results_total\{result="BYPASS"\} \d+/);

  redis = await startRedis(); // empty: no persistence
  let r;
  const deadline = Date.now() + 5000;
  do {
    r = await ask(oaA, 'cached', 'after the outage');
    if (r.cache !== 'BYPASS') break;
    await sleep(100);
  } while (Date.now() < deadline);
  assert.equal(r.cache, 'MISS', `reconnected: ${gwA.stderr()}`);
  let hit;
  for (let i = 0; i < 40; i++) {
    hit = await ask(oaB, 'cached', 'after the outage');
    if (hit.cache === 'HIT') break;
    await sleep(50);
  }
  assert.equal(hit.cache, 'HIT', 'hits resume across instances');
  // event lines go through the log's queue and its writer thread: on stderr a moment later
  await eventually(() => /cache: Redis at .* is back \(\d+ lookups went unanswered meanwhile\)/.test(gwA.stderr()),
    3000, `the outage's end said: ${gwA.stderr()}`);
});
