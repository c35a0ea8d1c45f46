// forwarding.test.mjs — what aigw sends upstream, proven at the provider: aigw-mock records every
// request it receives (GET /__requests: method, URL, headers with their values, the body's
// bytes, the SHA-256 of each image it decoded), so these tests compare the bytes a client sent
// with the bytes the provider got. The fast path must forward the body unchanged; an alias must
// change only the `model` member's value; the provider's own key replaces the client's, which
// must then reach no provider; without a provider key the client's key is forwarded in the
// provider's header style; images cross every translation byte for byte.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, headerValues } from './harness.mjs';

let mock, gw;

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  const t = 'timeouts: {connect: 2s, first_byte: 5s, idle: 5s}';
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: cfg-openai-key, models: [mock-model],
     headers: {x-team: "blue"}, ${t}}
  - {name: oa-open, type: openai, base_url: "${base}/v1", models: [open-model], ${t}}
  - {name: an, type: anthropic, base_url: "${base}", api_key: cfg-anthropic-key, models: [claude-mock], ${t}}
  - {name: an-open, type: anthropic, base_url: "${base}", models: [claude-open], ${t}}
  - {name: ge, type: gemini, base_url: "${base}", api_key: cfg-gemini-key, models: [gemini-mock], ${t}}
models:
  - {name: fast, provider: oa, model: mock-small}
  - {name: claude-fast, provider: an, model: claude-small}
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

beforeEach(async () => { await mock.reset(); });

const ANTHROPIC_HEADERS = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };

async function post(path, headers, body) {
  const r = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

// The one request the mock recorded (each test sends one request upstream at a time).
async function onlyRecord() {
  const recs = await mock.requests();
  assert.equal(recs.length, 1, `one upstream request, got ${recs.map((r) => r.url).join(', ')}`);
  return recs[0];
}

// No header value the provider got contains any of the client's secrets.
function assertNoSecret(rec, ...secrets) {
  for (const [name, value] of rec.headers)
    for (const s of secrets) assert.ok(!value.includes(s), `the client's secret reached the provider in ${name}: ${value}`);
  for (const s of secrets) assert.ok(!rec.url.includes(s), `the client's secret reached the provider in the URL ${rec.url}`);
}

// ---- the fast path --------------------------------------------------------------------------------

// Written by hand: whitespace, key order, escapes, number spellings and unknown members that a
// parse-and-print would change.
const OPENAI_BODY = '{\n  "messages" : [ {"role":"user","content":"caf\\u00e9 \\"q\\" ✓ \\/ fast"} ],\n'
  + '\t"temperature": 0.70, "top_p":1e0, "x_unknown": {"nested": [1, 2.50, null, true, "\\ud83d\\ude00"]},\n'
  + ' "metadata": {"model": "fast"},  "model" : "MODEL", "user":"u-1" }';

test('fast path OpenAI → OpenAI: the provider gets the client\'s body byte for byte', async () => {
  const body = OPENAI_BODY.replace('MODEL', 'mock-model');
  const r = await post('/v1/chat/completions', { authorization: 'Bearer client-secret-1' }, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).choices[0].message.content, 'mock reply to: café "q" ✓ / fast');
  const rec = await onlyRecord();
  assert.equal(rec.url, '/v1/chat/completions');
  assert.equal(rec.body, body);
  assert.equal(rec.body_bytes, Buffer.byteLength(body));
});

test('fast path Anthropic → Anthropic: the provider gets the client\'s body byte for byte, and its anthropic-beta', async () => {
  const body = '{"max_tokens" :100,"model":"claude-mock", "system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}],\n'
    + '"messages":[{"role":"user","content":[{"type":"text","text":"hi \\u2713"}]}],"context_management":{"x":[1.0]},'
    + '"thinking":{"type":"enabled","budget_tokens":1024} }';
  const r = await post('/v1/messages?beta=true', { ...ANTHROPIC_HEADERS, 'x-api-key': 'client-secret-2', 'anthropic-beta': 'feature-a,feature-b' }, body);
  assert.equal(r.status, 200, r.text);
  const rec = await onlyRecord();
  assert.equal(rec.url.split('?')[0], '/v1/messages');
  assert.equal(rec.body, body);
  assert.deepEqual(headerValues(rec, 'anthropic-beta'), ['feature-a,feature-b']);
});

test('an alias splices only the top-level model value: every other byte is identical (OpenAI and Anthropic)', async () => {
  const body = OPENAI_BODY.replace('MODEL', 'fast');
  const r = await post('/v1/chat/completions', { authorization: 'Bearer k' }, body);
  assert.equal(r.status, 200, r.text);
  const at = body.indexOf('"model" : "fast"') + '"model" : '.length;
  const want = `${body.slice(0, at)}"mock-small"${body.slice(at + '"fast"'.length)}`;
  const rec = await onlyRecord();
  assert.equal(rec.body, want, 'only the top-level model changed (not metadata.model, not the text)');

  await mock.reset();
  const abody = '{ "model":"claude-fast" ,"max_tokens":10,"metadata":{"user_id":"claude-fast"},"messages":[{"role":"user","content":"claude-fast?"}]}';
  const a = await post('/v1/messages', { ...ANTHROPIC_HEADERS, 'x-api-key': 'k' }, abody);
  assert.equal(a.status, 200, a.text);
  assert.equal((await onlyRecord()).body, abody.replace('"model":"claude-fast"', '"model":"claude-small"'));
});

// ---- keys -----------------------------------------------------------------------------------------

test('a provider with its own key gets that key, and none of the client\'s credentials (same format)', async () => {
  const o = await post('/v1/chat/completions', { authorization: 'Bearer client-secret-3', 'x-api-key': 'client-secret-4' },
    JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'k' }] }));
  assert.equal(o.status, 200, o.text);
  let rec = await onlyRecord();
  assert.deepEqual(headerValues(rec, 'authorization'), ['Bearer cfg-openai-key']);
  assert.deepEqual(headerValues(rec, 'x-api-key'), []);
  assertNoSecret(rec, 'client-secret-3', 'client-secret-4');

  await mock.reset();
  const a = await post('/v1/messages', { ...ANTHROPIC_HEADERS, 'x-api-key': 'client-secret-5', authorization: 'Bearer client-secret-6' },
    JSON.stringify({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'k' }] }));
  assert.equal(a.status, 200, a.text);
  rec = await onlyRecord();
  assert.deepEqual(headerValues(rec, 'x-api-key'), ['cfg-anthropic-key']);
  assert.deepEqual(headerValues(rec, 'authorization'), [], 'the client\'s Authorization does not reach a provider that has its own key');
  assertNoSecret(rec, 'client-secret-5', 'client-secret-6');
});

test('a provider with its own key gets that key, and none of the client\'s, across a translation', async () => {
  const secret = 'client-secret-7';
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: secret, maxRetries: 0, timeout: 10000 });
  await oai.chat.completions.create({ model: 'claude-mock', messages: [{ role: 'user', content: 'k' }] });
  let rec = await onlyRecord();
  assert.equal(rec.url, '/v1/messages');
  assert.deepEqual(headerValues(rec, 'x-api-key'), ['cfg-anthropic-key']);
  assert.deepEqual(headerValues(rec, 'authorization'), []);
  assertNoSecret(rec, secret);

  await mock.reset();
  await oai.chat.completions.create({ model: 'gemini-mock', messages: [{ role: 'user', content: 'k' }] });
  rec = await onlyRecord();
  assert.match(rec.url, /^\/v1beta\/models\/gemini-mock:generateContent/);
  assert.deepEqual(headerValues(rec, 'x-goog-api-key'), ['cfg-gemini-key']);
  assert.deepEqual(headerValues(rec, 'authorization'), []);
  assertNoSecret(rec, secret);

  await mock.reset();
  const ant = new Anthropic({ baseURL: gw.url, apiKey: 'client-secret-8', maxRetries: 0, timeout: 10000 });
  await ant.messages.create({ model: 'mock-model', max_tokens: 10, messages: [{ role: 'user', content: 'k' }] });
  rec = await onlyRecord();
  assert.equal(rec.url, '/v1/chat/completions');
  assert.deepEqual(headerValues(rec, 'authorization'), ['Bearer cfg-openai-key']);
  assertNoSecret(rec, 'client-secret-8');
});

test('a provider without a key gets the client\'s own key, in the provider\'s header style', async () => {
  const o = await post('/v1/chat/completions', { authorization: 'Bearer client-own-1' },
    JSON.stringify({ model: 'open-model', messages: [{ role: 'user', content: 'k' }] }));
  assert.equal(o.status, 200, o.text);
  assert.deepEqual(headerValues(await onlyRecord(), 'authorization'), ['Bearer client-own-1']);

  await mock.reset();
  const a = await post('/v1/messages', { ...ANTHROPIC_HEADERS, 'x-api-key': 'client-own-2' },
    JSON.stringify({ model: 'claude-open', max_tokens: 10, messages: [{ role: 'user', content: 'k' }] }));
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(headerValues(await onlyRecord(), 'x-api-key'), ['client-own-2']);

  // Anthropic SDK 1.12 sends only Authorization: Bearer; the provider wants x-api-key
  await mock.reset();
  const ant = new Anthropic({ baseURL: gw.url, apiKey: 'client-own-3', maxRetries: 0, timeout: 10000 });
  await ant.messages.create({ model: 'claude-open', max_tokens: 10, messages: [{ role: 'user', content: 'k' }] });
  let rec = await onlyRecord();
  assert.deepEqual(headerValues(rec, 'x-api-key'), ['client-own-3']);
  assert.deepEqual(headerValues(rec, 'authorization'), []);

  // and across a translation: OpenAI client → Anthropic provider without a key
  await mock.reset();
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-own-4', maxRetries: 0, timeout: 10000 });
  await oai.chat.completions.create({ model: 'claude-open', messages: [{ role: 'user', content: 'k' }] });
  rec = await onlyRecord();
  assert.deepEqual(headerValues(rec, 'x-api-key'), ['client-own-4']);
  assert.deepEqual(headerValues(rec, 'authorization'), []);
});

test('the headers sent: the provider\'s configured headers, anthropic-version, JSON, and aigw\'s request id', async () => {
  const o = await post('/v1/chat/completions', { authorization: 'Bearer k' },
    JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'h' }] }));
  let rec = await onlyRecord();
  assert.deepEqual(headerValues(rec, 'x-team'), ['blue']);
  assert.deepEqual(headerValues(rec, 'content-type'), ['application/json']);
  assert.deepEqual(headerValues(rec, 'x-request-id'), [o.headers.get('x-request-id')]);
  assert.equal(rec.method, 'POST');

  await mock.reset();
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0, timeout: 10000 });
  await oai.chat.completions.create({ model: 'claude-mock', messages: [{ role: 'user', content: 'h' }] });
  rec = await onlyRecord();
  assert.equal(headerValues(rec, 'anthropic-version').length, 1, 'an Anthropic provider always gets anthropic-version');
  assert.deepEqual(headerValues(rec, 'x-team'), [], 'another provider\'s headers stay with it');
});

// ---- images and tool results across translations ------------------------------------------------

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

test('image bytes reach every provider intact from both clients (the mock decodes and hashes them)', async () => {
  const bytes = randomBytes(2999);
  const b64 = bytes.toString('base64');
  const want = [{ mime: 'image/webp', bytes: 2999, sha256: sha256(bytes) }];
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0, timeout: 10000 });
  const ant = new Anthropic({ baseURL: gw.url, apiKey: 'k', maxRetries: 0, timeout: 10000 });
  for (const model of ['mock-model', 'claude-mock', 'gemini-mock']) {
    await mock.reset();
    const r = await oai.chat.completions.create({ model, messages: [{ role: 'user', content: [
      { type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/webp;base64,${b64}` } }] }] });
    assert.equal(r.choices[0].message.content, 'mock reply to: look [images: 1]', model);
    assert.deepEqual((await onlyRecord()).images, want, `OpenAI client → ${model}`);

    await mock.reset();
    const m = await ant.messages.create({ model, max_tokens: 50, messages: [{ role: 'user', content: [
      { type: 'text', text: 'look' }, { type: 'image', source: { type: 'base64', media_type: 'image/webp', data: b64 } }] }] });
    assert.equal(m.content[0].text, 'mock reply to: look [images: 1]', model);
    assert.deepEqual((await onlyRecord()).images, want, `Anthropic client → ${model}`);
  }
});

test('a tool result whose id answers no call reaches the provider as sent, and its 400 comes back', async () => {
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'k', maxRetries: 0, timeout: 10000 });
  await assert.rejects(oai.chat.completions.create({ model: 'claude-mock', messages: [
    { role: 'user', content: 'weather' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_zz', content: 'x' },
  ] }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /unexpected `tool_use_id` found in `tool_result` blocks: call_zz\./);
    return true;
  });
  const rec = await onlyRecord();
  const sent = JSON.parse(rec.body);
  assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal(sent.messages[1].content[0].id, 'call_a');
  assert.equal(sent.messages[2].content[0].tool_use_id, 'call_zz');
});
