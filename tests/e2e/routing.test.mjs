// routing.test.mjs — retries, fallbacks, load balancing, circuit breakers and route configs,
// proven against aigw-mock's fault injection with the official SDKs as clients. Each target is
// its own aigw-mock process, so its /__stats is the witness of what reached it; faults are set
// per target through the provider's `headers:` (x-mock-status, x-mock-fail-first, …), which the
// gateway sends with every request to that provider. Every test starts its own gateway, so
// breakers and budgets start fresh. Timing: cooldowns and backoffs are tens of milliseconds.
import { test, before, after, beforeEach } from 'node:test';
import http from 'node:http';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, sleep, eventually, scratchDir } from './harness.mjs';

let A, B, C, deadPort;

before(async () => {
  [A, B, C] = await Promise.all([startMock(), startMock(), startMock()]);
  // A port nobody listens on: bound, then closed.
  deadPort = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
});

after(async () => {
  await Promise.all([A?.stop(), B?.stop(), C?.stop()]);
});

beforeEach(async () => {
  await Promise.all([A.reset(), B.reset(), C.reset()]);
});

// A provider block for a mock (or any URL) with optional fault headers.
function provider(name, target, { headers = {}, type = 'openai', models = ['mock-model'], timeouts = '{connect: 1s, first_byte: 2s, idle: 2s}' } = {}) {
  const base = typeof target === 'string' ? target : type === 'openai' ? `${target.url}/v1` : target.url;
  const h = Object.entries(headers).map(([k, v]) => `${k}: "${v}"`).join(', ');
  return `  - name: ${name}
    type: ${type}
    base_url: ${base}
    api_key: mock-key
    models: [${models.join(', ')}]
    timeouts: ${timeouts}
${h ? `    headers: {${h}}\n` : ''}`;
}

// allowed_hosts: the three mocks (URL prefixes: scheme, host, port), and any extra ones.
async function gateway(providers, rest = '', routing = '', allowed = []) {
  const prefixes = [A.url, B.url, C.url, ...allowed].map((u) => `'${u}'`).join(', ');
  return startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0, base_delay: 10ms, max_delay: 50ms}
  allowed_hosts: [${prefixes}]
${routing}
providers:
${providers.join('')}
${rest}`);
}

const client = (gw, opts = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 15000, ...opts });
const ask = (text, extra = {}) => ({ model: 'smart', messages: [{ role: 'user', content: text }], ...extra });

async function chat(gw, body, opts = {}) {
  const { data, response } = await client(gw).chat.completions.create(body, opts).withResponse();
  return { data, headers: response.headers };
}

// ---- retries --------------------------------------------------------------------------------

test('transient 500s are recovered by retry: the client sees one success, the target saw three tries', async () => {
  const gw = await gateway([provider('a', A, { headers: { 'x-mock-fail-first': 2, 'x-mock-scope': 'retry500' } })], `
routes:
  - name: smart
    retry: {attempts: 2}
    targets: [{provider: a, model: mock-model}]
`);
  try {
    const { data, headers } = await chat(gw, ask('hello'));
    const line = await gw.waitLog((l) => l.route === 'smart');
    const seen = JSON.stringify({ line, stats: await A.stats() });
    assert.equal(data.choices[0].message.content, 'mock reply to: hello');
    assert.equal(headers.get('x-aigw-attempts'), '3', seen);
    assert.equal(headers.get('x-aigw-provider'), 'a');
    assert.equal(headers.get('x-aigw-route'), 'smart/0');
    const s = await A.stats();
    assert.equal(s.requests, 3, seen);
    assert.deepEqual(s.statuses, { 500: 2, 200: 1 });
    assert.deepEqual(line.attempts.map((a) => [a.outcome, a.status]), [['error_status', 500], ['error_status', 500], ['ok', 200]], seen);
    assert.ok((line.attempts[1].wait_ms ?? 0) <= 10 && (line.attempts[2].wait_ms ?? 0) <= 20, `full-jitter backoff stays under base·2^n: ${seen}`);
  } finally { await gw.stop(); }
});

test('429 with Retry-After: the gateway waits what the provider asked, then succeeds', async () => {
  const gw = await gateway([provider('a', A, { headers: { 'x-mock-fail-first': 1, 'x-mock-status': 429, 'x-mock-retry-after': 1, 'x-mock-scope': 'ra' } })], `
routes:
  - name: smart
    retry: {attempts: 1, use_retry_after_header: true}
    targets: [{provider: a, model: mock-model}]
`);
  try {
    const t0 = Date.now();
    const { data, headers } = await chat(gw, ask('patience'));
    const elapsed = Date.now() - t0;
    assert.equal(data.choices[0].message.content, 'mock reply to: patience');
    assert.ok(elapsed >= 950, `waited ${elapsed} ms, the provider asked for 1000`);
    assert.ok(elapsed < 3000, `waited ${elapsed} ms`);
    assert.equal(headers.get('x-aigw-attempts'), '2');
    assert.deepEqual((await A.stats()).statuses, { 429: 1, 200: 1 });
  } finally { await gw.stop(); }
});

test('giving up says x-should-retry: false, so the SDK does not multiply the request', async () => {
  const gw = await gateway([provider('a', A, { headers: { 'x-mock-status': 503 } })], `
routes:
  - name: smart
    retry: {attempts: 1}
    targets: [{provider: a, model: mock-model}]
`);
  try {
    // The SDK's own default: 2 retries on 503. It must not use them.
    const c = client(gw, { maxRetries: 2 });
    await assert.rejects(c.chat.completions.create(ask('x')), (e) => {
      assert.equal(e.status, 503);
      assert.equal(e.headers.get('x-should-retry'), 'false');
      return true;
    });
    assert.equal((await A.stats()).requests, 2, 'one try and one retry by the gateway, none by the SDK');
  } finally { await gw.stop(); }
});

// ---- fallbacks ----------------------------------------------------------------------------------

for (const [fault, primary] of [
  ['answers 500', (d) => provider('primary', A, { headers: { 'x-mock-status': 500 } })],
  ['times out', (d) => provider('primary', A, { headers: { 'x-mock-hang': 1 }, timeouts: '{connect: 1s, first_byte: 300ms, idle: 300ms}' })],
  ['resets the connection', (d) => provider('primary', A, { headers: { 'x-mock-reset': 1 } })],
  ['refuses connections', (d) => provider('primary', `http://127.0.0.1:${d}/v1`)],
]) {
  test(`a primary that ${fault} is answered by the fallback`, async () => {
    const gw = await gateway([primary(deadPort), provider('backup', B)], `
routes:
  - name: smart
    strategy: {mode: fallback}
    targets:
      - {provider: primary, model: mock-model}
      - {provider: backup, model: mock-model}
`);
    try {
      const { data, headers } = await chat(gw, ask('rescue me'));
      assert.equal(data.choices[0].message.content, 'mock reply to: rescue me');
      assert.equal(headers.get('x-aigw-provider'), 'backup');
      assert.equal(headers.get('x-aigw-route'), 'smart/0, smart/1');
      assert.equal(headers.get('x-aigw-attempts'), '2');
      assert.equal((await B.stats()).requests, 1);
    } finally { await gw.stop(); }
  });
}

test('streams fall back before the first byte; the client sees one clean stream', async () => {
  const gw = await gateway([provider('primary', A, { headers: { 'x-mock-status': 502 } }), provider('backup', B)], `
routes:
  - name: smart
    strategy: {mode: fallback}
    targets: [{provider: primary, model: mock-model}, {provider: backup, model: mock-model}]
`);
  try {
    const { data: stream, response } = await client(gw).chat.completions.create(ask('w1 w2 w3', { stream: true })).withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'mock reply to: w1 w2 w3');
    assert.equal(response.headers.get('x-aigw-provider'), 'backup');
    assert.equal((await A.stats()).statuses['502'], 1);
    assert.equal((await B.stats()).streams.completed, 1);
  } finally { await gw.stop(); }
});

test('a failure after the first byte surfaces as an error, never as a silent switch', async () => {
  const gw = await gateway([provider('primary', A, { headers: { 'x-mock-drop-after': 3 } }), provider('backup', B)], `
routes:
  - name: smart
    strategy: {mode: fallback}
    retry: {attempts: 2}
    targets: [{provider: primary, model: mock-model}, {provider: backup, model: mock-model}]
`);
  try {
    const stream = await client(gw).chat.completions.create(ask('a b c d e f g', { stream: true }));
    let text = '';
    await assert.rejects(async () => { for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''; });
    assert.ok('mock reply to: a b c d e f g'.startsWith(text) && text.length < 29, `partial text: ${text}`);
    assert.equal((await A.stats()).requests, 1, 'no retry once the client has bytes');
    assert.equal((await B.stats()).requests, 0, 'no fallback once the client has bytes');
  } finally { await gw.stop(); }
});

test('on_status_codes limits what falls back: a 400 is the client\'s own and comes back as it is', async () => {
  const gw = await gateway([provider('primary', A, { headers: { 'x-mock-status': 400 } }), provider('backup', B)], `
routes:
  - name: smart
    strategy: {mode: fallback, on_status_codes: [429, 500, 502, 503, 504]}
    targets: [{provider: primary, model: mock-model}, {provider: backup, model: mock-model}]
`);
  try {
    await assert.rejects(chat(gw, ask('bad')), (e) => e.status === 400);
    assert.equal((await B.stats()).requests, 0);
  } finally { await gw.stop(); }
});

test('a prompt over a target\'s context window skips that target instead of failing', async () => {
  const dir = scratchDir('aigw-ctx-');
  const catalog = join(dir, 'ctx.json');
  writeFileSync(catalog, JSON.stringify({ models: [{ provider: 'openai', model: 'tiny-ctx', context: 50, max_output: 100 }] }));
  const gw = await gateway([provider('small', A, { models: ['tiny-ctx'] }), provider('big', B)], `
catalog: ${catalog}
routes:
  - name: smart
    strategy: {mode: fallback}
    targets: [{provider: small, model: tiny-ctx}, {provider: big, model: mock-model}]
`);
  try {
    const short = await chat(gw, ask('short'));
    assert.equal(short.headers.get('x-aigw-provider'), 'small');
    const long = await chat(gw, ask('word '.repeat(400)));
    assert.equal(long.headers.get('x-aigw-provider'), 'big');
    assert.equal(long.headers.get('x-aigw-attempts'), '1', 'the small target was skipped, not tried');
    assert.equal((await A.stats()).requests, 1);
    const line = await gw.waitLog((l) => l.attempts?.some((a) => a.outcome === 'skipped'));
    assert.match(line.attempts[0].note, /context window/);
  } finally { await gw.stop(); }
});

// ---- load balancing ---------------------------------------------------------------------------------

async function fire(gw, n, concurrency, body = ask('lb')) {
  const c = client(gw);
  let next = 0;
  const providers = {};
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      const { response } = await c.chat.completions.create(body).withResponse();
      const p = response.headers.get('x-aigw-provider');
      providers[p] = (providers[p] ?? 0) + 1;
    }
  }));
  return providers;
}

test('weighted load balancing: a stored route splits 1,200 requests 3:1, by smooth round robin', async () => {
  const gw = await gateway([provider('a', A), provider('b', B)], `
routes:
  - name: smart
    strategy: {mode: loadbalance}
    targets: [{provider: a, model: mock-model, weight: 3}, {provider: b, model: mock-model, weight: 1}]
`);
  try {
    const got = await fire(gw, 1200, 8);
    // One shared position in a precomputed order: exact, whatever the workers interleave.
    assert.deepEqual(got, { a: 900, b: 300 });
    assert.equal((await A.stats()).requests, 900);
  } finally { await gw.stop(); }
});

test('least-busy load balancing keeps traffic away from a slow target', async () => {
  const gw = await gateway([provider('slow', A, { headers: { 'x-mock-ttfb-ms': 300 } }), provider('quick', B)], `
routes:
  - name: smart
    strategy: {mode: loadbalance, balance: least_busy}
    targets: [{provider: slow, model: mock-model}, {provider: quick, model: mock-model}]
`);
  try {
    const got = await fire(gw, 60, 4);
    assert.ok((got.slow ?? 0) <= 8, `slow target got ${got.slow} of 60`);
    assert.equal((got.slow ?? 0) + got.quick, 60);
  } finally { await gw.stop(); }
});

test('latency-aware load balancing (power of two choices over peak-EWMA) prefers the fast target', async () => {
  const gw = await gateway([provider('slow', A, { headers: { 'x-mock-ttfb-ms': 80 } }), provider('quick', B)], `
routes:
  - name: smart
    strategy: {mode: loadbalance, balance: latency}
    targets: [{provider: slow, model: mock-model}, {provider: quick, model: mock-model}]
`);
  try {
    const got = await fire(gw, 40, 1);
    assert.ok((got.slow ?? 0) <= 3, `slow target got ${got.slow} of 40 (only while unmeasured)`);
  } finally { await gw.stop(); }
});

test('rate-limit aware: a target whose headers say nothing is left is avoided before it answers 429', async () => {
  const gw = await gateway([
    provider('limited', A, { headers: { 'x-mock-rl-requests': 3, 'x-mock-rl-window-ms': 60000, 'x-mock-scope': 'rl' } }),
    provider('other', B),
  ], `
routes:
  - name: smart
    strategy: {mode: loadbalance}
    targets: [{provider: limited, model: mock-model}, {provider: other, model: mock-model}]
`);
  try {
    const got = await fire(gw, 30, 1);
    const s = await A.stats();
    assert.equal(s.statuses['429'], undefined, `the limited target answered 429: ${JSON.stringify(s.statuses)}`);
    assert.equal(got.limited, 3);
    assert.equal(got.other, 27);
  } finally { await gw.stop(); }
});

// ---- circuit breakers ---------------------------------------------------------------------------------

test('a breaker opens after consecutive failures, skips the target, half-opens after the cooldown and closes on success', async () => {
  const gw = await gateway([
    provider('flaky', A, { headers: { 'x-mock-fail-first': 4, 'x-mock-scope': 'breaker' } }),
    provider('backup', B),
  ], `
routes:
  - name: smart
    strategy: {mode: fallback}
    targets: [{provider: flaky, model: mock-model}, {provider: backup, model: mock-model}]
`, `  breaker: {failures: 3, failure_rate: 0, cooldown: 250ms}`);
  try {
    const route = async () => (await chat(gw, ask('cb'))).headers.get('x-aigw-route');
    for (let i = 0; i < 3; i++) assert.equal(await route(), 'smart/0, smart/1'); // failures 1-3: open
    assert.equal(await route(), 'smart/1', 'open: the flaky target is skipped');
    assert.equal((await A.stats()).requests, 3);
    await sleep(300);
    assert.equal(await route(), 'smart/0, smart/1', 'half-open: one probe, which fails (4th) and reopens');
    assert.equal(await route(), 'smart/1', 'open again');
    assert.equal((await A.stats()).requests, 4);
    await sleep(300);
    const probe = await chat(gw, ask('cb'));
    assert.equal(probe.headers.get('x-aigw-provider'), 'flaky', 'the probe succeeds: closed');
    assert.equal((await chat(gw, ask('cb'))).headers.get('x-aigw-provider'), 'flaky');
    assert.equal((await A.stats()).requests, 6);
  } finally { await gw.stop(); }
});

test('every target open: a fast 503 with Retry-After, and nothing sent upstream', async () => {
  const gw = await gateway([provider('down', A, { headers: { 'x-mock-status': 500 } })], `
routes:
  - name: smart
    targets: [{provider: down, model: mock-model}]
`, `  breaker: {failures: 2, failure_rate: 0, cooldown: 30s}`);
  try {
    for (let i = 0; i < 2; i++) await assert.rejects(chat(gw, ask('x')), (e) => e.status === 500);
    const t0 = Date.now();
    await assert.rejects(chat(gw, ask('x')), (e) => {
      assert.equal(e.status, 503);
      assert.match(e.message, /every target of route smart is unavailable \(circuit open\)/);
      assert.equal(e.headers.get('x-should-retry'), 'false');
      assert.equal(e.headers.get('x-aigw-attempts'), '0');
      assert.equal(e.headers.get('x-aigw-route'), 'smart', 'nothing was sent: the route asked for');
      assert.ok(Number(e.headers.get('retry-after')) >= 29);
      return true;
    });
    assert.ok(Date.now() - t0 < 500);
    assert.equal((await A.stats()).requests, 2);
  } finally { await gw.stop(); }
});

test('the retry budget caps upstream calls during a total outage', async () => {
  const gw = await gateway([provider('down', A, { headers: { 'x-mock-status': 503 } })], `
routes:
  - name: smart
    retry: {attempts: 3, base_delay: 0}
    targets: [{provider: down, model: mock-model}]
`, `  retry_budget: {percent: 20, min_retries: 3, window: 60s}
  breaker: {failures: 0, failure_rate: 0}`);
  try {
    const c = client(gw);
    for (let i = 0; i < 100; i++) await assert.rejects(c.chat.completions.create(ask('x')), (e) => e.status === 503);
    const calls = (await A.stats()).requests;
    // Without a budget: 400 calls (1 + 3 retries each); without retries: 100. With the budget,
    // exactly: the first request's 3 retries (min_retries), then one retry each time 20 % of
    // the requests so far passes the retries so far (the 20th, 25th, … 100th request: 17).
    assert.equal(calls, 120, `${calls} upstream calls for 100 requests`);
  } finally { await gw.stop(); }
});

// ---- configs in headers: Portkey's schema, aigw's own, stored routes --------------------------------------

async function portkeyGateway() {
  return gateway([
    provider('openai-prod', A, { headers: { 'x-mock-status': 503 } }),
    provider('azure-prod', B),
    provider('xx', A),
    provider('yy', B),
    provider('virtual-key-xxx', C, { headers: { 'x-mock-fail-first': 2, 'x-mock-status': 401, 'x-mock-scope': 'vk' } }),
    provider('openai', A, { headers: { 'x-mock-status': 500 } }),
    provider('anthropic', B, { type: 'anthropic' }),
  ]);
}

test('Portkey configs from Portkey\'s documentation work unchanged in x-portkey-config', async () => {
  const gw = await portkeyGateway();
  try {
    // portkey.ai/docs/product/ai-gateway/fallbacks
    const fallback = { strategy: { mode: 'fallback', on_status_codes: [429, 503] }, targets: [{ provider: '@openai-prod' }, { provider: '@azure-prod' }] };
    let r = await chat(gw, ask('pk'), { headers: { 'x-portkey-config': JSON.stringify(fallback) } });
    assert.equal(r.headers.get('x-aigw-provider'), 'azure-prod');
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/0, x-portkey-config/1');

    // portkey.ai/docs/product/ai-gateway/automatic-retries
    const retry = { retry: { attempts: 3, on_status_codes: [408, 429, 401] }, virtual_key: 'virtual-key-xxx' };
    r = await chat(gw, ask('pk'), { headers: { 'x-portkey-config': JSON.stringify(retry) } });
    assert.equal(r.headers.get('x-aigw-attempts'), '3');
    assert.deepEqual((await C.stats()).statuses, { 401: 2, 200: 1 });

    // mintlify.com/portkey-AI/gateway/concepts/routing: inline keys (the mocks' URLs are allowed
    // prefixes in this config), an OpenAI target falling back to an Anthropic one for an OpenAI client.
    const inline = {
      strategy: { mode: 'fallback', on_status_codes: [429, 500, 502, 503] },
      targets: [{ provider: 'openai', api_key: 'sk-...' }, { provider: 'anthropic', api_key: 'sk-ant-...' }],
    };
    r = await chat(gw, ask('translated'), { headers: { 'x-portkey-config': JSON.stringify(inline) } });
    assert.equal(r.data.choices[0].message.content, 'mock reply to: translated');
    assert.equal(r.headers.get('x-aigw-provider'), 'anthropic');
    assert.equal((await B.stats()).paths['/v1/messages'], 1);

    // portkey.ai/docs/product/ai-gateway/load-balancing: weights 0.7 / 0.3, per-request config: weighted random.
    const lb = { strategy: { mode: 'loadbalance' }, targets: [{ provider: '@xx', weight: 0.7 }, { provider: '@yy', weight: 0.3 }] };
    const c = client(gw);
    const counts = { xx: 0, yy: 0 };
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < 1000) {
        next++;
        const { response } = await c.chat.completions.create(ask('lb'), { headers: { 'x-portkey-config': JSON.stringify(lb) } }).withResponse();
        counts[response.headers.get('x-aigw-provider')]++;
      }
    }));
    assert.ok(Math.abs(counts.xx - 700) <= 60, `0.7 / 0.3 over 1,000: ${JSON.stringify(counts)}`);
  } finally { await gw.stop(); }
});

test('conditional routing on metadata and on params (Portkey\'s documented examples)', async () => {
  const gw = await portkeyGateway();
  try {
    // portkey.ai/docs/product/ai-gateway/conditional-routing, "@xx" / "@yy" are providers here.
    const onMetadata = {
      strategy: {
        mode: 'conditional',
        conditions: [
          { query: { 'metadata.user_plan': { $eq: 'paid' } }, then: 'finetuned-gpt4' },
          { query: { 'metadata.user_plan': { $eq: 'free' } }, then: 'base-gpt4' },
        ],
        default: 'base-gpt4',
      },
      targets: [
        { name: 'finetuned-gpt4', provider: '@xx', override_params: { model: 'ft://gpt4-xxxxx' } },
        { name: 'base-gpt4', provider: '@yy', override_params: { model: 'gpt-4' } },
      ],
    };
    const h = (meta) => ({ headers: { 'x-portkey-config': JSON.stringify(onMetadata), ...(meta ? { 'x-portkey-metadata': JSON.stringify(meta) } : {}) } });
    let r = await chat(gw, ask('m'), h({ user_plan: 'paid' }));
    assert.equal(r.headers.get('x-aigw-model'), 'ft://gpt4-xxxxx');
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/finetuned-gpt4');
    r = await chat(gw, ask('m'), h({ user_plan: 'free' }));
    assert.equal(r.headers.get('x-aigw-model'), 'gpt-4');
    r = await chat(gw, ask('m'), h(null));
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/base-gpt4', 'no metadata: the default');
    assert.equal((await A.stats()).models['ft://gpt4-xxxxx'], 1);
    assert.equal((await B.stats()).models['gpt-4'], 2);

    const onParams = {
      strategy: {
        mode: 'conditional',
        conditions: [
          { query: { 'params.model': { $eq: 'fastest' } }, then: 'fastest-model-target' },
          { query: { 'params.model': { $eq: 'smartest' } }, then: 'smartest-model-target' },
        ],
        default: 'fastest-model-target',
      },
      targets: [
        { name: 'smartest-model-target', provider: '@xx', override_params: { model: 'claude-3.5-sonnet' } },
        { name: 'fastest-model-target', provider: '@yy', override_params: { model: 'gpt-4o-mini' } },
      ],
    };
    r = await chat(gw, { ...ask('p'), model: 'smartest' }, { headers: { 'x-portkey-config': JSON.stringify(onParams) } });
    assert.equal(r.headers.get('x-aigw-model'), 'claude-3.5-sonnet');
    r = await chat(gw, { ...ask('p'), model: 'fastest' }, { headers: { 'x-portkey-config': JSON.stringify(onParams) } });
    assert.equal(r.headers.get('x-aigw-model'), 'gpt-4o-mini');

    // Operators over params and metadata together, in aigw's header.
    const mixed = {
      strategy: {
        mode: 'conditional',
        conditions: [
          { query: { $and: [{ 'params.max_tokens': { $gte: 1000 } }, { 'metadata.tier': { $in: ['gold', 'silver'] } }] }, then: 'big' },
          { query: { 'metadata.team': { $regex: '^ml-' } }, then: 'big' },
        ],
        default: 'small',
      },
      targets: [{ name: 'big', provider: 'xx', model: 'big-model' }, { name: 'small', provider: 'yy', model: 'small-model' }],
    };
    const pick = async (extra, meta) =>
      (await chat(gw, ask('c', extra), { headers: { 'x-aigw-config': JSON.stringify(mixed), 'x-aigw-metadata': JSON.stringify(meta) } })).headers.get('x-aigw-model');
    assert.equal(await pick({ max_tokens: 2000 }, { tier: 'gold' }), 'big-model');
    assert.equal(await pick({ max_tokens: 10 }, { tier: 'gold' }), 'small-model');
    assert.equal(await pick({ max_tokens: 2000 }, { tier: 'bronze' }), 'small-model');
    assert.equal(await pick({}, { team: 'ml-search' }), 'big-model');
  } finally { await gw.stop(); }
});

test('invalid configs are refused with a 400 that names the bad field', async () => {
  const gw = await portkeyGateway();
  try {
    const bad = async (header, value) => {
      try {
        await chat(gw, ask('x'), { headers: { [header]: value } });
      } catch (e) {
        assert.equal(e.status, 400);
        return e.message;
      }
      assert.fail('accepted');
    };
    // Portkey's request-timeouts page has this one with trailing commas: not JSON.
    assert.match(await bad('x-portkey-config', '{"strategy":{"mode":"fallback","on_status_codes":[408]},"targets":[{"virtual_key":"open-ai-xxx","request_timeout":2000,},{"virtual_key":"azure-open-ai-xxx"}]}'),
      /invalid x-portkey-config: not valid JSON/);
    assert.match(await bad('x-aigw-config', JSON.stringify({ strategy: { mode: 'fallback' }, targets: [{ provider: 'xx' }, { provider: 'yy', retry: { attempts: 'three' } }] })),
      /targets\[1\]\.retry\.attempts: must be a number/);
    assert.match(await bad('x-aigw-config', JSON.stringify({ strategy: { mode: 'roundrobin' }, targets: [{ provider: 'xx' }] })), /strategy\.mode: unknown mode \(single/);
    assert.match(await bad('x-aigw-config', JSON.stringify({ provider: 'nope' })), /provider: names no provider/);
    assert.match(await bad('x-portkey-config', JSON.stringify({ provider: 'openai', custom_host: 'http://169.254.169.254/latest' })), /custom_host: accepted only for URLs under a prefix listed in the config's routing\.allowed_hosts/);
    assert.match(await bad('x-aigw-config', 'no-such-route'), /names no route/);
    assert.match(await bad('x-portkey-config', JSON.stringify({ provider: 'xx', cache: { mode: 'fuzzy' } })), /cache\.mode: must be "simple" or "semantic"/);
    // A CR LF in anything that reaches a header (x-aigw-model, x-aigw-route, the provider's key)
    // would let a client write headers of its choosing.
    assert.match(await bad('x-aigw-config', JSON.stringify({ provider: 'xx', model: 'm\r\nx-evil: 1' })), /model: must not contain control characters/);
    assert.match(await bad('x-portkey-config', JSON.stringify({ provider: 'openai', api_key: 'sk\r\nx-evil: 1' })), /api_key: must not contain control characters/);
  } finally { await gw.stop(); }
});

// ---- Portkey's documented behaviour for x-portkey-config, aigw's for x-aigw-config ---------------------
// docs/routing.md, "Where aigw differs from Portkey": each row, the same config in both headers.

test('Portkey\'s single strategy uses its first target; aigw\'s refuses several', async () => {
  const gw = await portkeyGateway();
  try {
    const single = { strategy: { mode: 'single' }, targets: [{ provider: '@yy' }, { provider: '@xx' }] };
    const r = await chat(gw, ask('one'), { headers: { 'x-portkey-config': JSON.stringify(single) } });
    assert.equal(r.data.choices[0].message.content, 'mock reply to: one');
    assert.equal(r.headers.get('x-aigw-provider'), 'yy');
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/0');
    assert.equal((await B.stats()).requests, 1);
    assert.equal((await A.stats()).requests, 0, 'the second target is never asked');
    await assert.rejects(chat(gw, ask('one'), { headers: { 'x-aigw-config': JSON.stringify(single) } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /targets: a single strategy has exactly one target/);
      return true;
    });
  } finally { await gw.stop(); }
});

test('Portkey conditions on url.pathname route chat completions one way and embeddings another', async () => {
  const gw = await portkeyGateway();
  try {
    // Portkey's conditional router reads url.pathname (the request's path) beside metadata.* and params.*.
    const byPath = {
      strategy: {
        mode: 'conditional',
        conditions: [
          { query: { 'url.pathname': { $eq: '/v1/chat/completions' } }, then: 'chat-target' },
          { query: { 'url.pathname': { $eq: '/v1/embeddings' } }, then: 'embedding-target' },
        ],
        default: 'chat-target',
      },
      targets: [
        { name: 'chat-target', provider: '@xx', override_params: { model: 'gpt-4o-mini' } },
        { name: 'embedding-target', provider: '@yy', override_params: { model: 'text-embedding-3-small' } },
      ],
    };
    const headers = { 'x-portkey-config': JSON.stringify(byPath) };
    const r = await chat(gw, ask('route me'), { headers });
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/chat-target');
    const { data, response } = await client(gw).embeddings.create({ model: 'mock-embed', input: 'route me' }, { headers }).withResponse();
    assert.equal(data.data.length, 1);
    assert.equal(response.headers.get('x-aigw-route'), 'x-portkey-config/embedding-target');
    assert.deepEqual((await A.stats()).paths, { '/v1/chat/completions': 1 });
    assert.deepEqual((await B.stats()).paths, { '/v1/embeddings': 1 });
    assert.equal(JSON.parse((await B.requests('/v1/embeddings'))[0].body).model, 'text-embedding-3-small');
    // aigw's own configs read metadata.* and params.* only: refused, naming the field.
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(byPath) } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /conditions\[0\]\.query\.url\.pathname: a condition reads metadata/);
      return true;
    });
  } finally { await gw.stop(); }
});

test('a Portkey request_timeout answers 408, which Portkey\'s fallback and retry status lists match; aigw\'s answers 504', async () => {
  const gw = await gateway([
    provider('open-ai-xxx', A, { headers: { 'x-mock-hang': 1 }, timeouts: '{connect: 1s, first_byte: 5s, idle: 5s}' }),
    provider('azure-open-ai-xxx', B),
    provider('slow', C, { headers: { 'x-mock-ttfb-ms': 1000 }, timeouts: '{connect: 1s, first_byte: 5s, idle: 5s}' }),
  ]);
  try {
    // portkey.ai/docs/product/ai-gateway/request-timeouts (its trailing commas removed)
    const documented = { strategy: { mode: 'fallback', on_status_codes: [408] }, targets: [{ virtual_key: 'open-ai-xxx', request_timeout: 2000 }, { virtual_key: 'azure-open-ai-xxx' }] };
    const t0 = Date.now();
    const r = await chat(gw, ask('late'), { headers: { 'x-portkey-config': JSON.stringify(documented) } });
    assert.ok(Date.now() - t0 >= 1900, 'the first target had its 2 s');
    assert.equal(r.headers.get('x-aigw-provider'), 'azure-open-ai-xxx');
    assert.equal(r.headers.get('x-aigw-route'), 'x-portkey-config/0, x-portkey-config/1');
    assert.equal((await B.stats()).requests, 1);

    // A fallback on [429] only does not move on for Portkey's 408: the client gets the 408.
    const only429 = { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'open-ai-xxx', request_timeout: 200 }, { virtual_key: 'azure-open-ai-xxx' }] };
    await assert.rejects(chat(gw, ask('late'), { headers: { 'x-portkey-config': JSON.stringify(only429) } }), (e) => {
      assert.equal(e.status, 408);
      assert.equal(e.error?.type, 'timeout_error');
      assert.match(e.message, /Request exceeded the timeout sent in the request: 200ms/);
      assert.equal(e.headers.get('x-aigw-attempts'), '1');
      return true;
    });
    assert.equal((await B.stats()).requests, 1, 'no fallback');
    // aigw's own config: a timeout always falls back, and alone it is a 504.
    const ours = await chat(gw, ask('late'), { headers: { 'x-aigw-config': JSON.stringify(only429) } });
    assert.equal(ours.headers.get('x-aigw-provider'), 'azure-open-ai-xxx');
    await assert.rejects(chat(gw, ask('late'), { headers: { 'x-aigw-config': JSON.stringify({ provider: 'open-ai-xxx', request_timeout: 200 }) } }), (e) => e.status === 504);

    // portkey.ai/docs/product/ai-gateway/automatic-retries: its list has 408, so a target slower
    // than the request_timeout is tried 1 + 3 times; a list without 408 tries it once.
    const retry = { retry: { attempts: 3, on_status_codes: [408, 429, 401] }, virtual_key: 'slow', request_timeout: 150 };
    await assert.rejects(chat(gw, ask('again'), { headers: { 'x-portkey-config': JSON.stringify(retry) } }), (e) => {
      assert.equal(e.status, 408);
      assert.equal(e.headers.get('x-aigw-attempts'), '4');
      return true;
    });
    const line = await gw.waitLog((l) => l.route === 'x-portkey-config' && l.attempts.length === 4);
    assert.deepEqual(line.attempts.map((a) => a.outcome), Array(4).fill('timeout'));
    await eventually(async () => (await C.stats()).requests === 4, 3000, 'four requests at the slow target');
    const no408 = { retry: { attempts: 3, on_status_codes: [429] }, virtual_key: 'slow', request_timeout: 150 };
    await assert.rejects(chat(gw, ask('again'), { headers: { 'x-portkey-config': JSON.stringify(no408) } }), (e) => {
      assert.equal(e.status, 408);
      assert.equal(e.headers.get('x-aigw-attempts'), '1');
      return true;
    });
  } finally { await gw.stop(); }
});

test('a target\'s own retry replaces the inherited one whole in Portkey configs; aigw merges it field by field', async () => {
  const gw = await gateway([provider('xx', A, { headers: { 'x-mock-status': 401 } })]);
  try {
    // The parent retries 401s (as Portkey's automatic-retries page does); the target asks for one
    // attempt and names no statuses: in Portkey that is Portkey's default list, which has no 401.
    const config = { retry: { attempts: 3, on_status_codes: [408, 429, 401] }, strategy: { mode: 'fallback' }, targets: [{ provider: '@xx', retry: { attempts: 1 } }] };
    await assert.rejects(chat(gw, ask('r'), { headers: { 'x-portkey-config': JSON.stringify(config) } }), (e) => e.status === 401);
    assert.equal((await A.stats()).requests, 1, 'Portkey: not retried');
    await A.reset();
    await assert.rejects(chat(gw, ask('r'), { headers: { 'x-aigw-config': JSON.stringify(config) } }), (e) => e.status === 401);
    assert.equal((await A.stats()).requests, 2, 'aigw: one retry, on the inherited 401');
  } finally { await gw.stop(); }
});

test('a Portkey config without retries sends one request when the connection is reset, even on a reused connection', async () => {
  const gw = await portkeyGateway();
  try {
    const c = client(gw); // one keep-alive connection to the gateway: one worker, whose pool to A is reused
    const config = { 'x-portkey-config': JSON.stringify({ provider: '@xx', retry: { attempts: 0 } }) };
    for (let i = 0; i < 3; i++) await c.chat.completions.create(ask('warm'), { headers: config });
    await assert.rejects(c.chat.completions.create(ask('boom [[mock:reset=1]]'), { headers: config }), (e) => e.status === 502);
    const resets = (await A.requests('/v1/chat/completions')).filter((r) => r.body.includes('reset=1'));
    assert.equal(resets.length, 1, 'the upstream saw the request once');
    const line = await gw.waitLog((l) => l.route === 'x-portkey-config' && l.attempts[0].outcome === 'broken');
    assert.equal(line.attempts.length, 1);
  } finally { await gw.stop(); }
});

test('Portkey refuses a retry without attempts (400 naming the field); aigw\'s own config takes its default', async () => {
  const gw = await portkeyGateway();
  try {
    const config = { retry: { on_status_codes: [429] }, provider: '@yy' };
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-portkey-config': JSON.stringify(config) } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /invalid x-portkey-config: retry\.attempts: is required/);
      return true;
    });
    assert.equal((await B.stats()).requests, 0);
    const r = await chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(config) } });
    assert.equal(r.headers.get('x-aigw-provider'), 'yy');
  } finally { await gw.stop(); }
});

test('stored routes by id, override_params merged into the body, and an Anthropic client through a fallback', async () => {
  const gw = await gateway([provider('primary', A, { headers: { 'x-mock-status': 529 } }), provider('backup', B, { type: 'anthropic', models: ['mock-claude'] })], `
routes:
  - name: resilient
    strategy: {mode: fallback}
    override_params: {max_tokens: 3}
    targets:
      - {provider: primary, model: mock-model}
      - {provider: backup, model: mock-claude}
`);
  try {
    // x-aigw-config names a stored route; the model the client asked for does not matter then.
    const { data, headers } = await chat(gw, { ...ask('one two three four five six'), model: 'anything' }, { headers: { 'x-aigw-config': 'resilient' } });
    assert.equal(headers.get('x-aigw-provider'), 'backup');
    assert.equal(data.choices[0].message.content, 'mock reply to:', 'max_tokens 3 from override_params cut the reply');
    assert.equal(data.choices[0].finish_reason, 'length');

    const ant = new Anthropic({ baseURL: gw.url, apiKey: 'k', maxRetries: 0 });
    const { data: msg, response } = await ant.messages.create({ model: 'resilient', max_tokens: 100, messages: [{ role: 'user', content: 'hi there' }] }).withResponse();
    assert.equal(response.headers.get('x-aigw-route'), 'resilient/0, resilient/1');
    assert.equal(msg.content[0].text, 'mock reply to:');
    assert.equal((await A.stats()).statuses['529'], 2);
  } finally { await gw.stop(); }
});

// ---- what a hostile or unlucky request cannot do ------------------------------------------------

test('a fallback after a target with override_params sends the next target a well-formed body', async () => {
  const gw = await gateway([provider('first', A, { headers: { 'x-mock-status': 500 } }), provider('second', B, { models: ['mock-small'] })], `
routes:
  - name: smart
    strategy: {mode: fallback}
    targets:
      - {provider: first, model: mock-model, override_params: {max_tokens: 300, user: "${'x'.repeat(300)}"}}
      - {provider: second, model: mock-small}
`);
  try {
    // The override moved the model's position in the first body; the second target's body is
    // the client's own with its model renamed, and must not be cut or overrun.
    const { data, headers } = await chat(gw, { ...ask('intact body'), max_tokens: 50 });
    assert.equal(data.choices[0].message.content, 'mock reply to: intact body');
    assert.equal(headers.get('x-aigw-model'), 'mock-small');
    assert.equal((await B.stats()).models['mock-small'], 1);
  } finally { await gw.stop(); }
});

test('a client that leaves during a half-open probe gives the probe back', async () => {
  const gw = await gateway([provider('flaky', A, { headers: { 'x-mock-fail-first': 2, 'x-mock-scope': 'probe-leak' } })], `
routes:
  - name: smart
    targets: [{provider: flaky, model: mock-model}]
`, `  breaker: {failures: 2, failure_rate: 0, cooldown: 200ms, probes: 1}`);
  try {
    for (let i = 0; i < 2; i++) await assert.rejects(chat(gw, ask('x')), (e) => e.status === 500);
    await sleep(250);
    // The probe is slow; its client gives up.
    const ac = new AbortController();
    const probe = client(gw).chat.completions.create(ask('[[mock:ttfb_ms=1500]] slow probe'), { signal: ac.signal });
    await sleep(150);
    ac.abort();
    await assert.rejects(probe);
    await sleep(50);
    // Not "probe in flight" forever: the next request is admitted as the probe, succeeds, closes.
    const { data } = await chat(gw, ask('after'));
    assert.equal(data.choices[0].message.content, 'mock reply to: after');
    const line = await gw.waitLog((l) => l.attempts?.some((a) => a.outcome === 'cancelled'));
    assert.equal(line.status, 499);
  } finally { await gw.stop(); }
});

test('a header config cannot fan one request out: routing.max_attempts caps it, copies of a target pay the retry budget, 256 targets at most', async () => {
  const distinct = Array.from({ length: 10 }, (_, i) => provider(`d${i}`, A, { headers: { 'x-mock-status': 500 } }));
  const gw = await gateway([provider('down', A, { headers: { 'x-mock-status': 500 } }), ...distinct], '',
    `  breaker: {failures: 0, failure_rate: 0}`);
  try {
    // 64 copies of one target (it was 32 billed calls): the first try, then the budget's
    // min_retries (3) — each copy after the first is a retry of the same target.
    const copies = { strategy: { mode: 'fallback' }, targets: Array.from({ length: 64 }, () => ({ provider: 'down', model: 'mock-model' })) };
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(copies) } }), (e) => {
      assert.equal(e.status, 500);
      assert.equal(e.headers.get('x-aigw-attempts'), '4');
      assert.equal(e.headers.get('x-should-retry'), 'false');
      return true;
    });
    assert.equal((await A.stats()).requests, 4);
    // Ten distinct targets with a retry each (20 calls): routing.max_attempts, 6 by default.
    await A.reset();
    const wide = { strategy: { mode: 'fallback' }, retry: { attempts: 1, base_delay: 0 }, targets: distinct.map((_, i) => ({ provider: `d${i}`, model: 'mock-model' })) };
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(wide) } }), (e) => {
      assert.equal(e.status, 500);
      assert.equal(e.headers.get('x-aigw-attempts'), '6');
      return true;
    });
    assert.equal((await A.stats()).requests, 6);
    const line = await gw.waitLog((l) => l.attempts?.length === 6);
    assert.equal(line.attempts[5].note, 'routing.max_attempts reached');
    const huge = { strategy: { mode: 'fallback' }, targets: Array.from({ length: 20 }, () => ({ strategy: { mode: 'fallback' }, targets: Array.from({ length: 20 }, () => ({ provider: 'down' })) })) };
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(huge) } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /at most 256 targets/);
      return true;
    });
    // A pattern over 256 bytes is refused (PCRE2 bounds the rest: compiled size, matching).
    const re = { strategy: { mode: 'conditional', conditions: [{ query: { 'metadata.a': { $regex: 'a'.repeat(257) } }, then: 't' }] }, targets: [{ name: 't', provider: 'down' }] };
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(re) } }), (e) => e.status === 400 && /regular expression/.test(e.message));
  } finally { await gw.stop(); }
});

test('custom_host never receives the configured provider\'s key or headers', async () => {
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'from the custom host' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const gw = await gateway([provider('secret', A, { headers: { 'x-internal-token': 'do-not-leak' } })], '', '',
    [`http://127.0.0.1:${srv.address().port}/v1`]);
  try {
    const cfg = { provider: 'secret', custom_host: `http://127.0.0.1:${srv.address().port}/v1` };
    const { data } = await chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(cfg) } });
    assert.equal(data.choices[0].message.content, 'from the custom host');
    assert.equal(seen[0].authorization, 'Bearer client-key', 'the client\'s own key, not the provider\'s mock-key');
    assert.equal(seen[0]['x-internal-token'], undefined);
  } finally {
    await gw.stop();
    srv.close();
  }
});

test('requests refused before any attempt still say so in the x-aigw headers', async () => {
  const gw = await gateway([provider('a', A)]);
  try {
    await assert.rejects(chat(gw, { ...ask('x'), model: 'no-such-model' }), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.headers.get('x-aigw-attempts'), '0');
      assert.equal(e.headers.get('x-aigw-route'), 'no-such-model');
      assert.equal(e.headers.get('x-should-retry'), 'false');
      return true;
    });
  } finally { await gw.stop(); }
});

// ---- hedging ---------------------------------------------------------------------------------------

test('hedging: a slow first byte starts the next target, the first answer wins, the other is cancelled', async () => {
  const gw = await gateway([provider('slow', A, { headers: { 'x-mock-ttfb-ms': 600 } }), provider('quick', B)], `
routes:
  - name: smart
    strategy: {mode: fallback, hedge: 100ms}
    targets: [{provider: slow, model: mock-model}, {provider: quick, model: mock-model}]
`);
  try {
    const t0 = Date.now();
    const { data, headers } = await chat(gw, ask('race'));
    const elapsed = Date.now() - t0;
    assert.equal(data.choices[0].message.content, 'mock reply to: race');
    assert.equal(headers.get('x-aigw-provider'), 'quick');
    assert.equal(headers.get('x-aigw-route'), 'smart/0, smart/1');
    assert.ok(elapsed < 450, `answered after ${elapsed} ms, the slow target needs 600`);
    // The loser is cancelled as the provider sees it: its request is no longer in flight well
    // before its 600 ms head would have been sent.
    assert.equal((await A.stats()).requests, 1);
    await eventually(async () => (await A.stats()).in_flight === 0, 2000, 'the slow request to end');
    assert.ok(Date.now() - t0 < 550, `the slow target still held the request after ${Date.now() - t0} ms`);
    const line = await gw.waitLog((l) => l.route === 'smart');
    assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome]), [['slow', 'cancelled'], ['quick', 'ok']]);

    // A stream hedges the same way, before its first byte.
    const stream = await client(gw).chat.completions.create(ask('race stream', { stream: true }));
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'mock reply to: race stream');
    assert.equal((await B.stats()).streams.completed, 1);
    await eventually(async () => (await A.stats()).in_flight === 0, 2000, 'the slow stream to be cancelled');
    assert.equal((await A.stats()).streams.completed, 0);
  } finally { await gw.stop(); }
});

test('hedging: the first target answering before the delay is not hedged; answering first after it, it wins', async () => {
  const gw = await gateway([provider('first', A, { headers: { 'x-mock-ttfb-ms': 150 } }), provider('second', B, { headers: { 'x-mock-ttfb-ms': 800 } })], `
routes:
  - name: smart
    strategy: {mode: fallback, hedge: 400ms}
    targets: [{provider: first, model: mock-model}, {provider: second, model: mock-model}]
  - name: eager
    strategy: {mode: fallback, hedge: 50ms}
    targets: [{provider: first, model: mock-model}, {provider: second, model: mock-model}]
`);
  try {
    let r = await chat(gw, ask('no hedge'));
    assert.equal(r.headers.get('x-aigw-attempts'), '1');
    assert.equal((await B.stats()).requests, 0);
    r = await chat(gw, { ...ask('hedged'), model: 'eager' });
    assert.equal(r.headers.get('x-aigw-provider'), 'first');
    assert.equal(r.headers.get('x-aigw-attempts'), '2', 'the hedge was sent');
    const line = await gw.waitLog((l) => l.route === 'eager');
    assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome]), [['first', 'ok'], ['second', 'cancelled']]);
  } finally { await gw.stop(); }
});

test('hedging: when the hedge fails first, the first target still answers', async () => {
  const gw = await gateway([provider('first', A, { headers: { 'x-mock-ttfb-ms': 300 } }), provider('broken', B, { headers: { 'x-mock-status': 503 } })], `
routes:
  - name: smart
    strategy: {mode: fallback, hedge: 50ms}
    targets: [{provider: first, model: mock-model}, {provider: broken, model: mock-model}]
`);
  try {
    const { data, headers } = await chat(gw, ask('patient'));
    assert.equal(data.choices[0].message.content, 'mock reply to: patient');
    assert.equal(headers.get('x-aigw-provider'), 'first');
    const line = await gw.waitLog((l) => l.route === 'smart');
    assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome, a.status]), [['first', 'ok', 200], ['broken', 'error_status', 503]]);
  } finally { await gw.stop(); }
});

test('hedging under churn: losers cancelled mid-connect, another format, the same origin, a retry after the pair', async () => {
  // The hedge fires about when the first target answers, so losers are often cancelled while
  // their connection is still opening; the gateway must live through it (stop() checks exit 0
  // and a clean stderr, also under ASan).
  const gw = await gateway([
    provider('first', A, { headers: { 'x-mock-ttfb-ms': 20 } }),
    provider('claude', B, { type: 'anthropic' }),
    provider('slow-same', A, { headers: { 'x-mock-ttfb-ms': 600 } }),
    provider('quick-same', A),
    provider('down', C, { headers: { 'x-mock-status': 503 } }),
    provider('flaky', C, { headers: { 'x-mock-fail-first': 1, 'x-mock-scope': 'after-hedge' } }),
  ], `
routes:
  - name: churn
    strategy: {mode: fallback, hedge: 20ms}
    targets: [{provider: first, model: mock-model}, {provider: claude, model: mock-model}]
  - name: same-origin
    strategy: {mode: fallback, hedge: 100ms}
    targets: [{provider: slow-same, model: mock-model}, {provider: quick-same, model: mock-model}]
  - name: then-retry
    strategy: {mode: fallback, hedge: 10ms}
    targets:
      - {provider: down, model: mock-model}
      - {provider: down, model: mock-model}
      - {provider: flaky, model: mock-model, retry: {attempts: 2, base_delay: 5ms}}
`);
  try {
    for (let i = 0; i < 60; i++) {
      const { data } = await chat(gw, { ...ask(`churn ${i}`), model: 'churn' });
      assert.equal(data.choices[0].message.content, `mock reply to: churn ${i}`);
    }
    // Both targets on one plain-http origin: the hedge does not wait for the slow reply to
    // learn whether the origin multiplexes.
    const t0 = Date.now();
    const same = await chat(gw, { ...ask('same'), model: 'same-origin' });
    assert.equal(same.headers.get('x-aigw-provider'), 'quick-same');
    assert.ok(Date.now() - t0 < 450, `the hedge on the same origin answered after ${Date.now() - t0} ms`);
    // A hedged pair is not retried, but a later target keeps its own retries.
    const r = await chat(gw, { ...ask('retry after'), model: 'then-retry' });
    assert.equal(r.headers.get('x-aigw-provider'), 'flaky');
    const line = await gw.waitLog((l) => l.route === 'then-retry');
    assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome]).slice(-2), [['flaky', 'error_status'], ['flaky', 'ok']]);
    const cancelled = (await gw.waitLog((l) => l.route === 'same-origin')).attempts.find((a) => a.outcome === 'cancelled');
    assert.equal(cancelled.status, undefined, 'a cancelled loser has no status of its own');
  } finally { await gw.stop(); }
});

// ---- issue 8: what a client's config may reach, and what it may do to others -----------------------

test('a config header that is not JSON is refused by position and reason: an inline key reaches neither the 400 nor the access log', async () => {
  const gw = await gateway([provider('a', A)]);
  try {
    const secret = 'sk-SECRET-e2e-0123456789';
    // jansson's own text would quote the token where it stopped: the key
    for (const text of [`{"provider":"a","api_key" "${secret}"}`, `{"provider":"a","api_key":${secret}}`]) {
      await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': text } }), (e) => {
        assert.equal(e.status, 400);
        assert.match(e.message, /^400 invalid x-aigw-config: not valid JSON at character \d+: [a-z ]+$/);
        return true;
      });
    }
    // a key pasted where a name belongs, or as the whole header
    for (const [h, v] of [['x-portkey-config', JSON.stringify({ provider: secret })], ['x-aigw-config', secret]]) {
      await assert.rejects(chat(gw, ask('x'), { headers: { [h]: v } }), (e) => {
        assert.equal(e.status, 400);
        assert.ok(!e.message.includes('SECRET'), e.message);
        return true;
      });
    }
    await eventually(() => gw.logLines.filter((l) => l.status === 400).length === 4, 3000, 'four access-log lines');
    assert.ok(!JSON.stringify(gw.logLines).includes('SECRET'), 'the key is in the access log');
    assert.ok(!gw.stderr().includes('SECRET'));
  } finally { await gw.stop(); }
});

test('allowed_hosts are URL prefixes: a custom_host cannot leave the path, port or scheme they allow, and a space or a dot segment is a 400 naming the field', async () => {
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.url);
    req.resume();
    req.on('end', () => {
      if (req.url === '/admin') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"admin":"secret"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'from the prefix' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const host = `http://127.0.0.1:${srv.address().port}`;
  const gw = await gateway([provider('a', A)], '', '', [`${host}/v1`, `http://127.0.0.1:${deadPort}/v1`]);
  try {
    const refused = [
      [`${host}/v1?`, /custom_host: .*query/], // the rest of the URL becomes a query: any path
      [`${host}/v1#`, /custom_host: .*query/],
      [`${host}/v1/../admin`, /custom_host: dot segments/],
      [`${host}/v1/%2e%2e/admin`, /custom_host: escaped/],
      [`${host}/v1 /x`, /custom_host: .*space/], // was accepted and retried
      [`${host}/admin`, /custom_host: accepted only for URLs under a prefix/],
      [`${host}/v10`, /custom_host: accepted only for URLs under a prefix/],
      [`http://127.0.0.1:1/v1`, /custom_host: accepted only/], // another port
      [`https://127.0.0.1:${srv.address().port}/v1`, /custom_host: accepted only/], // another scheme
    ];
    for (const [url, re] of refused) {
      await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify({ provider: 'a', custom_host: url }) } }), (e) => {
        assert.equal(e.status, 400, url);
        assert.match(e.message, re, url);
        assert.equal(e.headers.get('x-aigw-attempts'), '0');
        return true;
      });
    }
    assert.deepEqual(seen, [], 'nothing reached the host');
    const { data } = await chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify({ provider: 'a', custom_host: `${host.replace('http', 'HTTP')}/v1/` }) } });
    assert.equal(data.choices[0].message.content, 'from the prefix');
    assert.deepEqual(seen, ['/v1/chat/completions']);

    // A custom host that does not answer: a generic 502 for the client, curl's words in the log only.
    await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify({ provider: 'a', custom_host: `http://127.0.0.1:${deadPort}/v1`, retry: { attempts: 2 } }) } }), (e) => {
      assert.equal(e.status, 502);
      assert.equal(e.message, '502 the custom_host did not answer');
      assert.equal(e.headers.get('x-aigw-attempts'), '3');
      return true;
    });
    const line = await gw.waitLog((l) => l.status === 502);
    assert.match(line.error, /connect|refused/i, 'the details are in the access log');
  } finally {
    await gw.stop();
    srv.close();
  }
});

test('a $regex that would backtrack for ever is a prompt non-match, noted in the access log, and /healthz answers meanwhile', async () => {
  // One worker: the search, the other request and /healthz share its loop.
  const gw = await startGateway(`
listen: 127.0.0.1:0
workers: 1
access_log: stdout
providers:
${provider('hit', A)}${provider('miss', B)}
routes:
  - name: smart
    strategy:
      mode: conditional
      conditions: [{query: {params.user: {$regex: '((a|b|ab)*)*c$'}}, then: hit}]
      default: miss
    targets: [{name: hit, provider: hit, model: mock-model}, {name: miss, provider: miss, model: mock-model}]
`);
  try {
    const t0 = Date.now();
    const [big, small, health, plain] = await Promise.all([
      chat(gw, ask('big', { user: 'ab'.repeat(40000) + 'cx' })), // 80 KB: glibc's regexec took 11 s
      chat(gw, ask('small', { user: 'ab'.repeat(2047) + 'cx' })), // 4 KiB: PCRE2's match limit
      fetch(`${gw.url}/healthz`).then((r) => r.status),
      chat(gw, ask('plain', { user: 'ababc' })),
    ]);
    assert.equal(health, 200);
    assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
    assert.equal(big.headers.get('x-aigw-provider'), 'miss');
    assert.equal(small.headers.get('x-aigw-provider'), 'miss');
    assert.equal(plain.headers.get('x-aigw-provider'), 'hit');
    await eventually(() => gw.logLines.filter((l) => l.route === 'smart').length === 3, 3000, 'three log lines');
    const notes = gw.logLines.filter((l) => l.route === 'smart').map((l) => l.route_note ?? null).sort();
    assert.deepEqual(notes, [
      "a $regex condition reached its match limit: taken as not matching",
      "a $regex condition's value is over 4096 bytes: taken as not matching",
      null,
    ].sort());
  } finally { await gw.stop(); }
});

test('a client\'s own request_timeout does not open the shared breaker for every other client', async () => {
  const gw = await gateway([provider('slow', A, { headers: { 'x-mock-ttfb-ms': 200 } })], `
routes:
  - name: smart
    targets: [{provider: slow, model: mock-model}]
`, `  breaker: {failures: 2, failure_rate: 0, cooldown: 30s}`);
  try {
    // Five requests whose own config gives the target 10 ms (it needs 200): each times out
    // for its client, and says nothing about the target to anyone else.
    const impatient = { provider: 'slow', model: 'mock-model', request_timeout: 10 };
    for (let i = 0; i < 5; i++) {
      await assert.rejects(chat(gw, ask('x'), { headers: { 'x-aigw-config': JSON.stringify(impatient) } }), (e) => e.status === 504);
    }
    const { data, headers } = await chat(gw, ask('others'));
    assert.equal(data.choices[0].message.content, 'mock reply to: others');
    assert.equal(headers.get('x-aigw-provider'), 'slow');
    assert.equal(headers.get('x-aigw-attempts'), '1', 'the target was asked, not skipped as open');
    const timeouts = gw.logLines.filter((l) => l.route === 'x-aigw-config').flatMap((l) => l.attempts.map((a) => a.outcome));
    assert.deepEqual(timeouts, Array(5).fill('timeout'));
  } finally { await gw.stop(); }
});
