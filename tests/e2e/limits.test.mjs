// limits.test.mjs — rate limits of gateway keys end to end, one aigw process (the in-memory
// limiter): the official OpenAI and Anthropic SDKs see OpenAI's x-ratelimit-* headers count down
// on plain and streamed responses (Anthropic's anthropic-ratelimit-* too), a 429 in their own
// error shape naming the limit with Retry-After and retry-after-ms, a limit of a key on one model,
// token limits settling with the provider's real usage, the master key unlimited, and the OpenAI
// SDK's own retry honouring retry-after-ms (a request refused in the last seconds of a minute
// succeeds in the next one — the test waits at most a minute for such a moment).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, sleep } from './harness.mjs';

const MASTER = 'test-master-key-limits-0123';
let mock, gw;

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", models: [mock-model, mock-other]}
  - {name: an, type: anthropic, base_url: "${base}", api_key: provider-side-key, models: [claude-mock]}
auth:
  master_key: ${MASTER}
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

async function admin(method, path, body) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function newKey(fields) {
  const r = await admin('POST', '/key/generate', fields);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // a new key reaches the workers' snapshot within about a second
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${r.body.key}` } });
    if (probe.status === 200) break;
    assert.ok(Date.now() < deadline, 'the new key never worked');
    await sleep(50);
  }
  return r.body;
}

const openai = (apiKey, maxRetries = 0) => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries });
const chat = (client, model = 'mock-model', extra = {}) =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }).withResponse();
const RESET = /^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/;

function checkRetryAfter(headers, maxMs) {
  const ms = Number(headers.get('retry-after-ms'));
  const s = Number(headers.get('retry-after'));
  assert.ok(ms > 0 && ms <= maxMs, `retry-after-ms ${ms}`);
  assert.equal(s, Math.ceil(ms / 1000));
}

test('requests per minute: the headers count down, then 429 with Retry-After in OpenAI\'s shape', async () => {
  const k = await newKey({ rpm_limit: 3, key_alias: 'rpm-3' });
  assert.equal(k.rpm_limit, 3);
  const client = openai(k.key);
  for (let i = 0; i < 3; i++) {
    const { response } = await chat(client);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(2 - i));
    assert.match(response.headers.get('x-ratelimit-reset-requests'), RESET);
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), null); // no token limit
  }
  await assert.rejects(chat(client), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.type, 'requests');
    assert.match(e.message, /Rate limit reached: 3 requests per minute of this gateway key\. Try again in /);
    assert.doesNotMatch(e.message, new RegExp(k.key));
    assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
    checkRetryAfter(e.headers, 60000);
    assert.equal(e.headers.get('x-should-retry'), null); // the SDKs retry a 429 on their own
    return true;
  });
  // nothing reached the provider for the refused request
  const log = await gw.waitLog((l) => l.key_alias === 'rpm-3' && l.status === 429);
  assert.equal(log.attempts?.length ?? 0, 0);
  // the master key is not limited
  const master = openai(MASTER);
  for (let i = 0; i < 4; i++) {
    const { response } = await chat(master);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), null);
  }
});

test('Anthropic SDK: anthropic-ratelimit-* headers, then its RateLimitError with retry-after', async () => {
  const k = await newKey({ rpm_limit: 2 });
  const client = new Anthropic({ apiKey: k.key, baseURL: gw.url, maxRetries: 0 });
  const send = () =>
    client.messages.create({ model: 'claude-mock', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  for (let i = 0; i < 2; i++) {
    const { response } = await send();
    assert.equal(response.headers.get('anthropic-ratelimit-requests-limit'), '2');
    assert.equal(response.headers.get('anthropic-ratelimit-requests-remaining'), String(1 - i));
    assert.match(response.headers.get('anthropic-ratelimit-requests-reset'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(1 - i));
  }
  await assert.rejects(send(), (e) => {
    assert.ok(e instanceof Anthropic.RateLimitError);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'rate_limit_error');
    assert.match(e.error.error.message, /2 requests per minute of this gateway key/);
    checkRetryAfter(e.headers, 60000);
    return true;
  });
});

test('a key\'s limit on one model (LiteLLM\'s model_rpm_limit) leaves its other models alone', async () => {
  const k = await newKey({ model_rpm_limit: { 'mock-other': 1 }, rpm_limit: 10 });
  assert.deepEqual(k.model_rpm_limit, { 'mock-other': 1 });
  const client = openai(k.key);
  const { response } = await chat(client, 'mock-other');
  // the tightest rule shows: the model's
  assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1');
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
  await assert.rejects(chat(client, 'mock-other'), (e) => {
    assert.equal(e.status, 429);
    assert.match(e.message, /1 requests per minute of this gateway key on the model `mock-other`/);
    return true;
  });
  const other = await chat(client, 'mock-model');
  assert.equal(other.response.status, 200);
  // the key's own rule: 10, counted twice (the refused request counted nowhere)
  assert.equal(other.response.headers.get('x-ratelimit-limit-requests'), '10');
  assert.equal(other.response.headers.get('x-ratelimit-remaining-requests'), '8');
});

test('tokens per minute: counted up front by estimate, settled with the provider\'s usage', async () => {
  const k = await newKey({ tpm_limit: 20 });
  const client = openai(k.key);
  const remaining = [];
  let usage;
  for (let i = 0; i < 3; i++) {
    const { data, response } = await chat(client);
    usage = data.usage.total_tokens;
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), '20');
    assert.match(response.headers.get('x-ratelimit-reset-tokens'), RESET);
    remaining.push(Number(response.headers.get('x-ratelimit-remaining-tokens')));
    await sleep(50); // the settlement runs when the request is released, just after its response
  }
  // each request's real usage (more than its estimate) was charged once it was known
  assert.ok(usage > 1, `usage ${usage}`);
  assert.equal(remaining[0] - remaining[1], usage);
  assert.equal(remaining[1] - remaining[2], usage);
  // keep going until the limit refuses: then the message names the token limit
  let refused;
  for (let i = 0; i < 10 && !refused; i++) {
    try {
      await chat(client);
      await sleep(50);
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused, 'the token limit never refused');
  assert.equal(refused.status, 429);
  assert.equal(refused.type, 'tokens');
  assert.match(refused.message, /20 tokens per minute of this gateway key \(used \d+, this request needs about \d+\)/);
  checkRetryAfter(refused.headers, 60000);
});

test('a prompt larger than the token limit: 429 that says no wait helps (x-should-retry: false)', async () => {
  const k = await newKey({ tpm_limit: 5 });
  const client = openai(k.key, 2);
  const started = Date.now();
  await assert.rejects(
    client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'word '.repeat(200) }] }),
    (e) => {
      assert.equal(e.status, 429);
      assert.match(e.message, /Request too large: its prompt is about \d+ tokens, more than the limit of 5 tokens per minute/);
      assert.equal(e.headers.get('x-should-retry'), 'false');
      assert.equal(e.headers.get('retry-after'), null);
      return true;
    });
  assert.ok(Date.now() - started < 5000, 'the SDK did not retry');
});

test('streamed responses carry the rate-limit headers', async () => {
  const k = await newKey({ rpm_limit: 5, tpm_limit: 1000 });
  // four requests on this key below, the Anthropic stream the fourth
  const client = openai(k.key);
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  assert.equal(response.headers.get('x-ratelimit-limit-requests'), '5');
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '4');
  assert.equal(response.headers.get('x-ratelimit-limit-tokens'), '1000');
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.match(text, /mock reply/);
  // a stream's usage settles its tokens too (the prompt's estimate is the same for both requests)
  const { data: counted, response: r1 } = await client.chat.completions
    .create({ model: 'mock-model', stream: true, stream_options: { include_usage: true },
              messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  let usage;
  for await (const chunk of counted) if (chunk.usage) usage = chunk.usage.total_tokens;
  assert.ok(usage > 1, `usage ${usage}`);
  await sleep(50);
  const { response: after } = await chat(client);
  assert.equal(Number(r1.headers.get('x-ratelimit-remaining-tokens')) -
               Number(after.headers.get('x-ratelimit-remaining-tokens')), usage);
  const anthropic = new Anthropic({ apiKey: k.key, baseURL: gw.url, maxRetries: 0 });
  const { response: r2 } = await anthropic.messages
    .create({ model: 'claude-mock', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.equal(r2.headers.get('anthropic-ratelimit-requests-remaining'), '1');
  assert.equal(r2.headers.get('anthropic-ratelimit-tokens-limit'), '1000');
});

test('the admin API takes and shows the limits (aigw\'s and LiteLLM\'s names), and refuses bad ones', async () => {
  const k = await newKey({ rpm_limit: 1, tpm_limit: 2, rpd_limit: 3, tpd_limit: 4, model_tpm_limit: { a: 5 } });
  const shown = (await admin('GET', `/admin/keys/${k.id}`)).body;
  assert.equal(shown.rpd_limit, 3);
  assert.equal(shown.tpd_limit, 4);
  assert.deepEqual(shown.model_tpm_limit, { a: 5 });
  assert.deepEqual(shown.model_rpm_limit, {});
  const up = await admin('POST', '/key/update', { key: k.id, model_rpm_limit: { a: 1, b: 2 }, rpd_limit: null });
  assert.equal(up.status, 200);
  assert.deepEqual(up.body.model_rpm_limit, { a: 1, b: 2 });
  assert.deepEqual(up.body.model_tpm_limit, { a: 5 });
  assert.equal(up.body.rpd_limit, null);
  for (const [body, msg] of [
    [{ model_rpm_limit: { a: -1 } }, /'model_rpm_limit' of `a` must be a whole number/],
    [{ model_tpm_limit: [1] }, /'model_tpm_limit' must be an object/],
    [{ rpd_limit: 'x' }, /'rpd_limit' must be a whole number/],
    [{ model_rpm_limits: {} }, /unknown field 'model_rpm_limits'/],
  ]) {
    const r = await admin('PATCH', `/admin/keys/${k.id}`, body);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, msg);
  }
});

test('the OpenAI SDK\'s own retry honours retry-after-ms: refused at a minute\'s end, served in the next', async () => {
  const k = await newKey({ rpm_limit: 1, key_alias: 'retry' });
  // wait (at most a minute) for the last 2.5 s of a minute, so the window's end is near
  const inMinute = () => Date.now() % 60000;
  while (inMinute() < 57500) await sleep(Math.min(500, 57500 - inMinute()));
  const first = await chat(openai(k.key));
  assert.equal(first.response.status, 200);
  const started = Date.now();
  const second = await chat(openai(k.key, 1));
  assert.equal(second.response.status, 200);
  assert.equal(second.response.headers.get('x-ratelimit-remaining-requests'), '0');
  const waited = Date.now() - started;
  assert.ok(waited >= 100 && waited < 4000, `waited ${waited} ms`);
  // the gateway saw the refusal and the retry (two workers log: their lines' order may differ)
  const log = await gw.waitLog((l) => l.key_alias === 'retry' && l.status === 429);
  assert.ok(log);
  const statuses = gw.logLines.filter((l) => l.key_alias === 'retry').map((l) => l.status).sort();
  assert.deepEqual(statuses, [200, 200, 429]);
});
