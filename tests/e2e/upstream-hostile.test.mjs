// upstream-hostile.test.mjs — a provider (or a client's custom_host) that misbehaves, through
// aigw, with the official SDKs as clients: header values with a bare CR, redirects, encoded
// bodies, replies of the wrong shape, a reply trickled a byte at a time, hundreds of tool calls,
// a body translation cannot hold, and a client that never reads a long stream. aigw-mock plays
// the provider (its faults: tools/mock/README.md). Each test fails without the fix it guards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, rawExchange, sleep, headerValues, AIGW_BIN } from './harness.mjs';

let mock, gw, oai, ant;

const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
const TOOLS_ANTHROPIC = [{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }];
const ruleArgs = (q, i) => ({ city: 'Paris', query: q, n: i, units: ['c', 'f'], note: 'line1\nline2 "quoted" ✓ é' });

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: up-openai, type: openai, base_url: "${base}/v1", api_key: k1, models: [m-openai],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-anthropic, type: anthropic, base_url: "${base}", api_key: k2, models: [m-anthropic],
     timeouts: {connect: 2s, first_byte: 30s, idle: 5s}}  # aigw-mock builds 1100 calls before its first byte
  - {name: up-gemini, type: gemini, base_url: "${base}", api_key: k3, models: [m-gemini],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-slow, type: openai, base_url: "${base}/v1", api_key: k4, models: [m-slow],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 1s}}
  - {name: up-slow-anthropic, type: anthropic, base_url: "${base}", api_key: k5, models: [m-slow-anthropic],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 1s}}
`);
  oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 30000 });
  ant = new Anthropic({ baseURL: gw.url, apiKey: 'client-key', maxRetries: 0, timeout: 30000 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

const chat = (model, text, extra = {}) => ({ model, messages: [{ role: 'user', content: text }], ...extra });
const msg = (model, text, extra = {}) => ({ model, max_tokens: 1000, messages: [{ role: 'user', content: text }], ...extra });

// One POST on a raw socket; the whole response as latin1 text, head and body apart.
async function rawPost(path, body, headers = {}) {
  const text = JSON.stringify(body);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const raw = await rawExchange(gw.port, [
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  ], { ms: 15000 });
  const end = raw.indexOf('\r\n\r\n');
  return { head: raw.slice(0, end), body: raw.slice(end + 4), status: Number(raw.split(' ')[1]) };
}

// Checks an SDK error is exactly aigw's answer in the client's shape.
function openaiError(status, code, message) {
  return (e) => {
    assert.ok(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.equal(e.type, 'server_error');
    assert.equal(e.code, code);
    assert.equal(e.error.message, message);
    return true;
  };
}
function anthropicError(status, type, message) {
  return (e) => {
    assert.ok(e instanceof Anthropic.APIError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.deepEqual(e.error, { type: 'error', error: { type, message } });
    return true;
  };
}

test('header values with a bare CR never reach the client (fast path and translated, reply and stream)', async () => {
  for (const model of ['m-openai', 'm-anthropic']) {
    for (const stream of [false, true]) {
      const r = await rawPost('/v1/chat/completions', chat(model, 'hi [[mock:header_cr=1]]', stream ? { stream: true } : {}));
      assert.equal(r.status, 200, `${model} stream=${stream}: ${r.head}`);
      // every line of the head ends with CRLF and holds no other CR; the injected "header" is nowhere
      for (const line of r.head.split('\r\n')) assert.ok(!/[\r\n\0]/.test(line), JSON.stringify(line));
      assert.doesNotMatch(r.head, /x-injected/i);
      assert.doesNotMatch(r.head, /x-ratelimit-remaining-requests/i); // the tainted header is dropped whole
      assert.match(r.head, /\r\nx-upstream-request-id: mock-/); // clean headers still pass
    }
  }
});

test('an upstream redirect is a 502 in the client\'s shape, not retried', async () => {
  for (const status of [301, 307, 308]) {
    await mock.reset();
    await assert.rejects(() => oai.chat.completions.create(chat('m-anthropic', `hi [[mock:status=${status}]]`)),
      openaiError(502, 'upstream_error', `provider up-anthropic answered with a redirect (${status}), which aigw does not follow`));
    await assert.rejects(() => ant.messages.create(msg('m-openai', `hi [[mock:status=${status}]]`)),
      anthropicError(502, 'api_error', `provider up-openai answered with a redirect (${status}), which aigw does not follow`));
    await assert.rejects(() => oai.chat.completions.create(chat('m-openai', `hi [[mock:status=${status}]]`, { stream: true })),
      openaiError(502, 'upstream_error', `provider up-openai answered with a redirect (${status}), which aigw does not follow`));
    assert.equal((await mock.stats()).requests, 3, 'one upstream call each: a redirect is not retried');
  }
});

test('an encoded body is refused with 502, never passed on unlabelled; aigw asks for identity', async () => {
  const want = (p) => `provider ${p} sent a body with Content-Encoding: gzip although aigw asked for identity`;
  for (const [model, provider] of [['m-openai', 'up-openai'], ['m-anthropic', 'up-anthropic'], ['m-gemini', 'up-gemini']]) {
    for (const stream of [false, true]) {
      await assert.rejects(() => oai.chat.completions.create(chat(model, 'hi [[mock:encoding=gzip]]', stream ? { stream: true } : {})),
        openaiError(502, 'upstream_error', want(provider)));
    }
  }
  await assert.rejects(() => ant.messages.create(msg('m-anthropic', 'hi [[mock:encoding=gzip]]')),
    anthropicError(502, 'api_error', want('up-anthropic')));
  // Every call asked for identity bodies, once, on the fast path and translated.
  const recs = (await mock.requests()).filter((r) => /encoding=gzip/.test(r.body ?? ''));
  assert.equal(recs.length, 7);
  for (const r of recs) assert.deepEqual(headerValues(r, 'accept-encoding'), ['identity']);
});

test('a translated reply of the wrong shape is a 502 upstream_invalid_response for every provider format', async () => {
  for (const [model, provider, what] of [['m-anthropic', 'up-anthropic', 'content is not an array'],
    ['m-gemini', 'up-gemini', 'candidates is not an array']]) {
    await assert.rejects(() => oai.chat.completions.create(chat(model, 'hi [[mock:shape=bad]]')),
      openaiError(502, 'upstream_invalid_response', `provider ${provider} sent a reply of the wrong shape (${what})`));
  }
  for (const [model, provider, what] of [['m-openai', 'up-openai', 'choices is not a non-empty array'],
    ['m-gemini', 'up-gemini', 'candidates is not an array']]) {
    await assert.rejects(() => ant.messages.create(msg(model, 'hi [[mock:shape=bad]]')),
      anthropicError(502, 'api_error', `provider ${provider} sent a reply of the wrong shape (${what})`));
  }
});

test('a reply trickled a byte at a time meets the provider\'s total timeout: 504 in the client\'s shape', async () => {
  // ~250 bytes at one byte per 100 ms would take 25 s; the idle timer (5 s) never fires
  const t0 = Date.now();
  await assert.rejects(() => oai.chat.completions.create(chat('m-slow', 'hi [[mock:trickle_ms=100]]')),
    openaiError(504, 'upstream_timeout', 'provider up-slow did not finish its reply within 1000 ms (total timeout)'));
  const ms = Date.now() - t0;
  assert.ok(ms >= 1000 && ms < 10000, `answered after ${ms} ms`); // each attempt (retries included) stops at 1 s
  await assert.rejects(() => ant.messages.create(msg('m-slow-anthropic', 'hi [[mock:trickle_ms=100]]')),
    anthropicError(504, 'timeout_error', 'provider up-slow-anthropic did not finish its reply within 1000 ms (total timeout)'));
  // a stream is not cut by the total: its gaps are what the idle timer watches
  const s = await oai.chat.completions.create(chat('m-slow', 'hi [[mock:words=12,chunk_delay_ms=150]]', { stream: true }));
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12');
});

test('hundreds of tool calls come through a translated stream whole, in both directions', async () => {
  const q = 'weather please';
  const s = oai.chat.completions.stream(chat('m-anthropic', `${q} [[mock:tool_calls=150]]`, { tools: TOOLS }));
  const done = await s.finalChatCompletion();
  const calls = done.choices[0].message.tool_calls;
  assert.equal(calls.length, 150);
  calls.forEach((c, i) => {
    assert.equal(c.id, `toolu_mock_${i}`);
    assert.equal(c.function.arguments, JSON.stringify(ruleArgs(q, i)));
  });
  assert.equal(done.choices[0].finish_reason, 'tool_calls');

  const m = await ant.messages.stream(msg('m-openai', `${q} [[mock:tool_calls=150]]`, { tools: TOOLS_ANTHROPIC })).finalMessage();
  const uses = m.content.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 150);
  uses.forEach((b, i) => {
    assert.equal(b.id, `call_mock_${i}`);
    assert.deepEqual(b.input, ruleArgs(q, i));
  });
  assert.equal(m.stop_reason, 'tool_use');
});

test('past 1024 tool calls a translated stream fails in-band, never dropping calls silently', async () => {
  const message = 'provider up-anthropic stream failed: the provider\'s stream has more tool calls than a translated stream carries (1024)';
  const s = await oai.chat.completions.create(chat('m-anthropic', 'go [[mock:tool_calls=1100]]', { tools: TOOLS, stream: true }));
  let starts = 0;
  await assert.rejects(async () => {
    for await (const c of s) for (const tc of c.choices[0]?.delta?.tool_calls ?? []) if (tc.id) starts++;
  }, (e) => {
    assert.ok(e instanceof OpenAI.APIError, e.message);
    assert.equal(e.error.message, message);
    assert.equal(e.error.code, 'upstream_stream_error');
    return true;
  });
  assert.equal(starts, 1024); // every call up to the cap, then the error
});

test('a body translation cannot hold (1e999) is a 400 before any attempt', async () => {
  await mock.reset();
  const text = '{"model":"m-anthropic","messages":[{"role":"user","content":"hi"}],"temperature":1e999}';
  const raw = await rawExchange(gw.port, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n` +
      `Content-Length: ${text.length}\r\n\r\n${text}`,
  ]);
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.match(raw, /\r\nx-aigw-attempts: 0\r\n/);
  assert.match(raw, /\r\nx-should-retry: false\r\n/);
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(body, { error: { message: `request body has a number out of range (at byte ${text.indexOf('1e999') + 5})`, type: 'invalid_request_error', param: null, code: 'invalid_json' } });
  const stats = await mock.stats();
  assert.equal(stats.paths['/v1/messages'] ?? 0, 0, 'nothing went upstream');
});

// RSS of aigw, in KiB.
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))[1]);

test('a stalled stream holds a bounded amount of aigw memory', { skip: /asan|sanitiz/i.test(AIGW_BIN) && 'sanitizer builds keep freed memory in quarantine' }, async () => {
  // Clients that never read while the provider streams ~18 MB each: kernel buffers fill, then
  // aigw pauses the upstream. Before the bound, one round of curl reads (100 × 16 KiB) went
  // to the client's queue at once: about 2.4 MB per stream (4.7 MB translated).
  const before = rss();
  const socks = [];
  for (const model of ['m-openai', 'm-openai', 'm-anthropic', 'm-anthropic']) {
    const body = JSON.stringify(chat(model, 'x [[mock:words=120000]]', { stream: true, max_tokens: 1000000 }));
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    s.pause();
    socks.push(s);
  }
  let last = 0, stable = 0;
  for (let i = 0; i < 120 && stable < 12; i++) {
    await sleep(250);
    const now = rss();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  const perStream = (last - before) / socks.length;
  for (const s of socks) s.destroy();
  assert.ok(perStream < 1024, `aigw grew by ${perStream.toFixed(0)} KiB per stalled stream`);
});
