// cache.test.mjs — the exact response cache (memory backend) with the official SDKs and
// aigw-mock's counters: a miss then a hit (the mock sees one call), one entry replayed in both
// shapes and both client formats, tool calls replayed identical, max_age expiry, refresh and
// no-store controls, no hit across two gateway keys, errors and cut streams never stored,
// concurrent identical misses, Portkey's documented cache configs and status header, the
// metrics and the access log; and a second gateway whose byte bound holds under a flood.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, sleep } from './harness.mjs';

const MASTER = 'cache-master-key-0123456789';
let mock, gw, keyA, keyB, oa, oaB, ant;

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: k, models: [mock-model]}
  - {name: an, type: anthropic, base_url: "${base}", api_key: k, models: [claude-mock]}
routes:
  - name: cached
    cache: {mode: simple}
    targets: [{provider: oa, model: mock-model}]
  - name: cached-claude
    cache: {mode: simple}
    targets: [{provider: an, model: claude-mock}]
  - name: short
    cache: {mode: simple, max_age: 1}
    targets: [{provider: oa, model: mock-model}]
  - name: uncached
    targets: [{provider: oa, model: mock-model}]
cache:
  max_bytes: 16MiB
  ttl: 10m
auth:
  master_key: ${MASTER}
`);
  const admin = async (body) => {
    const r = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    return (await r.json()).key;
  };
  keyA = await admin({ key_alias: 'tenant-a' });
  keyB = await admin({ key_alias: 'tenant-b' });
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: keyA, maxRetries: 0 });
  oaB = new OpenAI({ baseURL: gw.baseURL, apiKey: keyB, maxRetries: 0 });
  ant = new Anthropic({ baseURL: gw.url, apiKey: keyA, maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

const calls = async () => (await mock.stats()).requests;
const user = (text) => [{ role: 'user', content: text }];
const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

// An OpenAI stream, summed: content, tool calls by index, finish, usage, and the chunks' count.
async function sumStream(stream) {
  let content = '', finish = null, usage = null, role = null, n = 0;
  const tools = [];
  for await (const c of stream) {
    n++;
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta.role) role ??= ch.delta.role;
    if (n === 1) assert.equal(ch.delta.role, 'assistant', 'the role comes first');
    content += ch.delta.content ?? '';
    for (const t of ch.delta.tool_calls ?? []) {
      tools[t.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
      if (t.id) tools[t.index].id = t.id;
      if (t.function?.name) tools[t.index].function.name = t.function.name;
      tools[t.index].function.arguments += t.function?.arguments ?? '';
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { content, finish, usage, role, tools };
}

test('a miss then a hit: the mock sees one call; the hit has the stored usage and costs 0', async () => {
  const before = await calls();
  const first = await oa.chat.completions.create({ model: 'cached', messages: user('miss then hit') }).withResponse();
  assert.equal(first.response.headers.get('x-aigw-cache'), 'MISS');
  // key order and white space do not matter: the same request written differently hits
  const raw = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
    body: '{ "messages" : [ {"content": "miss then hit", "role": "user"} ],\n "model": "cached" }',
  });
  assert.equal(raw.headers.get('x-aigw-cache'), 'HIT');
  assert.equal(raw.headers.get('x-aigw-cost-usd'), '0');
  const hit = await raw.json();
  assert.equal(await calls(), before + 1);
  assert.equal(hit.choices[0].message.content, first.data.choices[0].message.content);
  assert.deepEqual(hit.usage, first.data.usage);
  assert.equal(hit.choices[0].finish_reason, 'stop');
  const line = await gw.waitLog((l) => l.request_id === raw.headers.get('x-request-id'));
  assert.equal(line.cache, 'HIT');
  assert.equal(line.usage.prompt_tokens, first.data.usage.prompt_tokens);
  // a route without a cache block is not cached, and says nothing about it
  const plain = await oa.chat.completions.create({ model: 'uncached', messages: user('miss then hit') }).withResponse();
  assert.equal(plain.response.headers.get('x-aigw-cache'), null);
  assert.equal(await calls(), before + 2);
});

test('one entry, both shapes: plain then stream, stream then plain (OpenAI)', async () => {
  const before = await calls();
  const plain = await oa.chat.completions.create({ model: 'cached', messages: user('plain first') });
  const s = await oa.chat.completions.create({ model: 'cached', messages: user('plain first'), stream: true, stream_options: { include_usage: true } }).withResponse();
  assert.equal(s.response.headers.get('x-aigw-cache'), 'HIT');
  const sum = await sumStream(s.data);
  assert.equal(sum.content, plain.choices[0].message.content);
  assert.equal(sum.finish, 'stop');
  assert.deepEqual(sum.usage, plain.usage, 'the usage chunk, as include_usage asks');
  assert.equal(await calls(), before + 1);

  const first = await sumStream(await oa.chat.completions.create({ model: 'cached', messages: user('stream first please'), stream: true }));
  const again = await oa.chat.completions.create({ model: 'cached', messages: user('stream first please') }).withResponse();
  assert.equal(again.response.headers.get('x-aigw-cache'), 'HIT');
  assert.equal(again.data.choices[0].message.content, first.content);
  // a stream without include_usage has no usage chunk
  const noUsage = await sumStream(await oa.chat.completions.create({ model: 'cached', messages: user('stream first please'), stream: true }));
  assert.equal(noUsage.usage, null);
  assert.equal(noUsage.content, first.content);
  // byte for byte: the stream with include_usage is the one without and its usage chunk, just
  // before [DONE] (one stored stream, its usage chunk left out unless asked)
  const rawStream = async (extra) => {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'cached', messages: user('stream first please'), stream: true, ...extra }),
    });
    assert.equal(r.headers.get('x-aigw-cache'), 'HIT');
    return (await r.text()).split('\n\n').filter(Boolean);
  };
  const without = await rawStream({});
  const withUsage = await rawStream({ stream_options: { include_usage: true } });
  assert.equal(without.at(-1), 'data: [DONE]');
  assert.equal(withUsage.length, without.length + 1);
  assert.deepEqual([...withUsage.slice(0, -2), withUsage.at(-1)], without);
  const usageChunk = JSON.parse(withUsage.at(-2).slice('data: '.length));
  assert.deepEqual(usageChunk.choices, []);
  assert.equal(typeof usageChunk.usage.total_tokens, 'number'); // 0: this stream stored none (docs/cache.md)
  assert.deepEqual(await rawStream({}), without, 'the stored entry is unchanged by a replay');
  assert.equal(await calls(), before + 2);
});

test('tool-call replies are replayed identical, in both shapes and both client formats', async () => {
  const before = await calls();
  const req = { model: 'cached', messages: user('weather [[mock:tool_calls=2]]'), tools: TOOLS, tool_choice: 'required' };
  const plain = await oa.chat.completions.create(req);
  assert.equal(plain.choices[0].finish_reason, 'tool_calls');
  const hit = await oa.chat.completions.create(req).withResponse();
  assert.equal(hit.response.headers.get('x-aigw-cache'), 'HIT');
  assert.deepEqual(hit.data.choices[0].message.tool_calls, plain.choices[0].message.tool_calls);
  const s = await sumStream(await oa.chat.completions.create({ ...req, stream: true }));
  assert.equal(s.finish, 'tool_calls');
  assert.deepEqual(s.tools, plain.choices[0].message.tool_calls);
  assert.equal(await calls(), before + 1);

  // Anthropic's client on an Anthropic provider (the fast path): a stream stored, replayed plain
  // and as a stream again
  const areq = { model: 'cached-claude', max_tokens: 200, messages: user('claude tools [[mock:tool_calls=2]]'), tools: [{ name: 'get_weather', input_schema: { type: 'object' } }], tool_choice: { type: 'any' } };
  const streamed = await ant.messages.stream(areq).finalMessage();
  assert.equal(streamed.stop_reason, 'tool_use');
  const { data: aplain, response } = await ant.messages.create(areq).withResponse();
  assert.equal(response.headers.get('x-aigw-cache'), 'HIT');
  assert.deepEqual(aplain.content, streamed.content);
  assert.equal(aplain.stop_reason, 'tool_use');
  const restreamed = await ant.messages.stream(areq).finalMessage();
  assert.deepEqual(restreamed.content, streamed.content);
  assert.equal(restreamed.usage.output_tokens, streamed.usage.output_tokens);
  assert.equal(await calls(), before + 2);
});

test('Anthropic text: plain stored, stream replayed with the whole event sequence', async () => {
  const before = await calls();
  const areq = { model: 'cached-claude', max_tokens: 200, messages: user('hello claude') };
  const plain = await ant.messages.create(areq);
  const r = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': keyA, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ ...areq, stream: true }),
  });
  assert.equal(r.headers.get('x-aigw-cache'), 'HIT');
  const text = await r.text();
  const events = [...text.matchAll(/^event: (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(events, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const streamed = await ant.messages.stream(areq).finalMessage();
  assert.deepEqual(streamed.content, plain.content);
  assert.equal(streamed.usage.input_tokens, plain.usage.input_tokens);
  assert.equal(await calls(), before + 1);
});

test('max_age: an entry older than it is a miss', async () => {
  const before = await calls();
  const req = { model: 'short', messages: user('short lived') };
  await oa.chat.completions.create(req);
  const hit = await oa.chat.completions.create(req).withResponse();
  assert.equal(hit.response.headers.get('x-aigw-cache'), 'HIT');
  await sleep(1300);
  const late = await oa.chat.completions.create(req).withResponse();
  assert.equal(late.response.headers.get('x-aigw-cache'), 'MISS');
  assert.equal(await calls(), before + 2);
});

test('controls: refresh and no-store, in aigw\'s, HTTP\'s and Portkey\'s spellings; a bad value is a 400', async () => {
  const req = { model: 'cached', messages: user('controls') };
  await oa.chat.completions.create(req);
  let before = await calls();
  for (const headers of [{ 'x-aigw-cache': 'refresh' }, { 'cache-control': 'no-cache' }]) {
    const r = await oa.chat.completions.create(req, { headers }).withResponse();
    assert.equal(r.response.headers.get('x-aigw-cache'), 'REFRESH');
  }
  assert.equal(await calls(), before + 2);
  for (const headers of [{ 'x-aigw-cache': 'no-store' }, { 'cache-control': 'no-store' }]) {
    const r = await oa.chat.completions.create(req, { headers }).withResponse();
    assert.equal(r.response.headers.get('x-aigw-cache'), 'BYPASS');
  }
  assert.equal(await calls(), before + 4);
  // no-store stored nothing: a fresh prompt sent with no-store first is still a miss after
  const fresh = { model: 'cached', messages: user('never stored') };
  await oa.chat.completions.create(fresh, { headers: { 'x-aigw-cache': 'no-store' } });
  const after1 = await oa.chat.completions.create(fresh).withResponse();
  assert.equal(after1.response.headers.get('x-aigw-cache'), 'MISS');

  await assert.rejects(oa.chat.completions.create(req, { headers: { 'x-aigw-cache': 'sometimes' } }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /x-aigw-cache must be no-store or refresh/);
    return true;
  });
  await assert.rejects(ant.messages.create({ model: 'cached-claude', max_tokens: 10, messages: user('x') }, { headers: { 'x-aigw-cache': 'bad' } }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error.type, 'error', 'Anthropic\'s error shape');
    return true;
  });
});

test('no hit across gateway keys: each key has its own namespace', async () => {
  const req = { model: 'cached', messages: user('tenant secret') };
  const before = await calls();
  await oa.chat.completions.create(req);
  const b = await oaB.chat.completions.create(req).withResponse();
  assert.equal(b.response.headers.get('x-aigw-cache'), 'MISS');
  const a = await oa.chat.completions.create(req).withResponse();
  assert.equal(a.response.headers.get('x-aigw-cache'), 'HIT');
  assert.equal(await calls(), before + 2);
});

test('errors, cut streams and streams ended by an in-band error are never stored', async () => {
  for (const directive of ['status=400', 'stream_error=3', 'drop_after=2']) {
    const stream = directive !== 'status=400';
    const req = { model: 'cached', messages: user(`broken [[mock:${directive}]]`), stream };
    for (let i = 0; i < 2; i++) {
      const before = await calls();
      const r = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
        body: JSON.stringify(req),
      });
      assert.equal(r.headers.get('x-aigw-cache'), 'MISS', `${directive}, try ${i}`);
      await r.text();
      assert.ok((await calls()) > before, `${directive}: the provider is asked again`);
    }
  }
  // a reply cut by the word limit (finish length) is complete: it is stored
  const req = { model: 'cached', messages: user('long reply [[mock:words=20]]'), max_tokens: 3 };
  const cut = await oa.chat.completions.create(req);
  assert.equal(cut.choices[0].finish_reason, 'length');
  const again = await oa.chat.completions.create(req).withResponse();
  assert.equal(again.response.headers.get('x-aigw-cache'), 'HIT');
  assert.equal(again.data.choices[0].finish_reason, 'length');
});

test('concurrent identical misses: each goes upstream, every answer whole, the entry whole after', async () => {
  const req = { model: 'cached', messages: user('concurrent [[mock:ttfb_ms=300]]') };
  const before = await calls();
  const replies = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    (i % 2 ? oa.chat.completions.create({ ...req, stream: true }).then(sumStream) : oa.chat.completions.create(req))));
  const texts = replies.map((r) => r.content ?? r.choices[0].message.content);
  assert.ok(texts.every((t) => t === texts[0] && t.startsWith('mock reply to: concurrent')));
  assert.equal(await calls(), before + 6, 'N identical misses make N upstream calls');
  const hit = await oa.chat.completions.create(req).withResponse();
  assert.equal(hit.response.headers.get('x-aigw-cache'), 'HIT');
  assert.equal(hit.data.choices[0].message.content, texts[0]);
  assert.equal(await calls(), before + 6);
});

test('Portkey configs: cache blocks as Portkey documents them, x-portkey-cache-status, force refresh', async () => {
  const send = (config, text, headers = {}) => oa.chat.completions.create({ model: 'mock-model', messages: user(text) },
    { headers: { 'x-portkey-config': JSON.stringify(config), ...headers } }).withResponse();
  const before = await calls();
  // { "cache": { "mode": "simple" } } beside a target, and with a max_age in seconds
  const simple = { cache: { mode: 'simple' }, provider: 'oa' };
  let r = await send(simple, 'portkey simple');
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'MISS');
  r = await send(simple, 'portkey simple');
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'HIT');
  assert.equal(r.response.headers.get('x-aigw-cache'), 'HIT');
  r = await send({ cache: { mode: 'simple', max_age: 60 }, provider: 'oa' }, 'portkey simple', { 'x-portkey-cache-force-refresh': 'true' });
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'REFRESH');
  // semantic mode: exact matching until the semantic index exists
  const semantic = { cache: { mode: 'semantic', max_age: 3600 }, strategy: { mode: 'fallback' }, targets: [{ provider: 'oa' }] };
  await send(semantic, 'portkey semantic');
  r = await send(semantic, 'portkey semantic');
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'HIT');
  // a cache block on a target
  const onTarget = { strategy: { mode: 'fallback' }, targets: [{ provider: 'oa', cache: { mode: 'simple' } }] };
  await send(onTarget, 'portkey target');
  r = await send(onTarget, 'portkey target');
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'HIT');
  assert.equal(await calls(), before + 4);
  // x-portkey-cache-namespace partitions further
  r = await send(simple, 'portkey simple', { 'x-portkey-cache-namespace': 'user-123' });
  assert.equal(r.response.headers.get('x-portkey-cache-status'), 'MISS');
  // a bad block is a 400 naming the field
  await assert.rejects(send({ cache: { mode: 'simple', max_age: -1 }, provider: 'oa' }, 'x'), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /cache\.max_age/);
    return true;
  });
});

test('metrics: results counted, the bytes and entries held', async () => {
  const text = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  const value = (re) => Number(text.match(re)?.[1]);
  assert.ok(value(/^aigw_cache_results_total\{result="HIT"\} (\d+)$/m) >= 10);
  assert.ok(value(/^aigw_cache_results_total\{result="MISS"\} (\d+)$/m) >= 10);
  assert.ok(value(/^aigw_cache_results_total\{result="BYPASS"\} (\d+)$/m) >= 2);
  assert.ok(value(/^aigw_cache_results_total\{result="REFRESH"\} (\d+)$/m) >= 3);
  assert.ok(value(/^aigw_cache_entries (\d+)$/m) >= 10);
  assert.ok(value(/^aigw_cache_bytes (\d+)$/m) > 0);
  assert.equal(value(/^aigw_cache_max_bytes (\d+)$/m), 16 * 1024 * 1024);
});

test('the byte bound holds under a flood of distinct replies (mode: simple for every request)', async () => {
  const m2 = await startMock();
  const g2 = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: "off"
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${m2.port}/v1", api_key: k, models: [mock-model]}
cache: {max_bytes: 256KiB, max_entry_bytes: 8KiB, mode: simple, namespace: shared}
`);
  try {
    const client = new OpenAI({ baseURL: g2.baseURL, apiKey: 'any', maxRetries: 0 });
    const gauge = async () => {
      const t = await (await fetch(`${g2.url}/metrics`)).text();
      return { bytes: Number(t.match(/^aigw_cache_bytes (\d+)$/m)[1]), entries: Number(t.match(/^aigw_cache_entries (\d+)$/m)[1]) };
    };
    let most = 0;
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) =>
        client.chat.completions.create({ model: 'mock-model', messages: user(`flood ${round} ${i} [[mock:words=300]]`) })));
      const g = await gauge();
      assert.ok(g.bytes <= 256 * 1024, `bytes ${g.bytes} within the bound`);
      most = Math.max(most, g.entries);
    }
    assert.ok(most > 20 && most < 300, `entries were evicted (${most} held at most of 300)`);
    // a reply over max_entry_bytes is not stored
    await client.chat.completions.create({ model: 'mock-model', messages: user('huge [[mock:words=3000]]') });
    const r = await client.chat.completions.create({ model: 'mock-model', messages: user('huge [[mock:words=3000]]') }).withResponse();
    assert.equal(r.response.headers.get('x-aigw-cache'), 'MISS');
    // shared namespace: another client key hits
    const other = new OpenAI({ baseURL: g2.baseURL, apiKey: 'another', maxRetries: 0 });
    await client.chat.completions.create({ model: 'mock-model', messages: user('shared one') });
    const s = await other.chat.completions.create({ model: 'mock-model', messages: user('shared one') }).withResponse();
    assert.equal(s.response.headers.get('x-aigw-cache'), 'HIT');
  } finally {
    await g2.stop();
    await m2.stop();
  }
});
