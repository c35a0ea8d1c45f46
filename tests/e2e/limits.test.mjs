// limits.test.mjs — rate limits of gateway keys end to end, one aigw process (the in-memory
// limiter): the official OpenAI and Anthropic SDKs see OpenAI's x-ratelimit-* headers count down
// on plain and streamed responses (Anthropic's anthropic-ratelimit-* too), a 429 in their own
// error shape naming the limit with Retry-After and retry-after-ms, a limit of a key on one model,
// token limits settling with the provider's real usage, the master key unlimited, and the OpenAI
// SDK's own retry honouring retry-after-ms (a request refused in the last seconds of a minute
// succeeds in the next one — the test waits at most a minute for such a moment), a team's limit
// shared by its keys, budgets checked before rate limits, and a later refusal (PLAN's 404)
// carrying the rate-limit headers before the timing headers.
//
// AIGW_TEST_STORE=postgres runs the same cases against a PostgreSQL store that the test starts
// (tests/e2e/postgres.mjs; limits-postgres.test.mjs sets it): the limits' admin fields, the
// teams and the keys then round-trip through the database (the counting is the same
// in-process table either way, so the minute-long retry case runs on SQLite only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, sleep } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-limits-0123';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
let mock, gw, pg;

// auth's store lines: none (aigw.db beside the config) or the PostgreSQL database
function storeConfig() {
  if (!POSTGRES) return '';
  process.env.AIGW_TEST_PG_PASSWORD = pg.password;
  return `  store: "${pg.urlWithEnv('AIGW_TEST_PG_PASSWORD')}"\n  secret: test-digest-secret-limits-0123456789\n`;
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
  - {name: oa, type: openai, base_url: "${base}/v1", models: [mock-model, mock-other]}
  - {name: an, type: anthropic, base_url: "${base}", api_key: provider-side-key, models: [claude-mock]}
auth:
  master_key: ${MASTER}
${storeConfig()}`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  await pg?.cleanup();
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

test('the OpenAI SDK\'s own retry honours retry-after-ms: refused at a minute\'s end, served in the next', { skip: POSTGRES && 'the limiter, not the store: once is enough' }, async () => {
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

// Outside the last seconds of a minute, so that a test's requests fall in one window.
async function awayFromMinuteEnd(margin = 5000) {
  const left = 60000 - (Date.now() % 60000);
  if (left < margin) await sleep(left + 50);
}

test('a team\'s requests per minute are shared by its keys; the message names the team', async () => {
  const team = await admin('POST', '/team/new', { team_id: 'shared-team', team_alias: 'crew', rpm_limit: 3 });
  assert.equal(team.status, 200, JSON.stringify(team.body));
  assert.equal(team.body.rpm_limit, 3);
  const a = await newKey({ team_id: 'shared-team' });
  const b = await newKey({ team_id: 'shared-team', rpm_limit: 10 });
  const alone = await newKey({ team_id: 'no-such-team' }); // a label: no team, no limit
  await awayFromMinuteEnd();
  const seen = [];
  for (const k of [a, b, a]) {
    const { response } = await chat(openai(k.key));
    assert.equal(response.status, 200);
    seen.push(response.headers.get('x-ratelimit-remaining-requests'));
  }
  // one window for both keys: 2, 1, 0 left; b's own 10 is looser, so the team's shows
  assert.deepEqual(seen, ['2', '1', '0']);
  for (const k of [b, a]) {
    await assert.rejects(chat(openai(k.key)), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.match(e.message, /Rate limit reached: 3 requests per minute of the team `crew`\. Try again in /);
      checkRetryAfter(e.headers, 60000);
      return true;
    });
  }
  // b's own limit counted only what the team let through: its one request
  const shown = await admin('GET', `/admin/teams/shared-team`);
  assert.equal(shown.body.rpm_limit, 3);
  const free = await chat(openai(alone.key));
  assert.equal(free.response.headers.get('x-ratelimit-limit-requests'), null);
  // the team's limit removed: its keys pass again (the snapshot has it within about a second)
  assert.equal((await admin('PATCH', '/admin/teams/shared-team', { rpm_limit: null })).status, 200);
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const { response } = await chat(openai(a.key));
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), null);
      break;
    } catch (e) {
      assert.equal(e.status, 429);
      assert.ok(Date.now() < deadline, 'the team\'s limit stayed after it was removed');
      await sleep(100);
    }
  }
});

test('budgets come first: a key over its budget is refused without taking a rate-limit slot', async () => {
  const k = await newKey({ max_budget: 0, rpm_limit: 1, key_alias: 'broke' });
  await awayFromMinuteEnd();
  for (let i = 0; i < 2; i++) {
    await assert.rejects(chat(openai(k.key)), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.code, 'budget_exceeded'); // never rate_limit_exceeded: nothing was counted
      assert.equal(e.headers.get('x-should-retry'), 'false');
      assert.equal(e.headers.get('x-ratelimit-limit-requests'), null);
      return true;
    });
  }
  // the budget lifted: the key's one request of the minute is still there
  assert.equal((await admin('PATCH', `/admin/keys/${k.id}`, { max_budget: null })).status, 200);
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const { response } = await chat(openai(k.key));
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
      break;
    } catch (e) {
      assert.equal(e.code, 'budget_exceeded');
      assert.ok(Date.now() < deadline, 'the budget stayed after it was removed');
      await sleep(100);
    }
  }
});

// One request with node:http, which keeps the head's lines in order (fetch's Headers sort them).
function rawPost(path, key, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, gw.url);
    const req = http.request(u, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, raw: res.rawHeaders, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('a refusal after the limits (no such model: 404) still carries the rate-limit headers, the timing headers last', async () => {
  const k = await newKey({ rpm_limit: 5 });
  await awayFromMinuteEnd();
  const r = await rawPost('/v1/chat/completions', k.key, { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 404, r.body);
  const names = r.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const value = (n) => r.raw[names.indexOf(n) * 2 + 1];
  assert.equal(value('x-ratelimit-limit-requests'), '5');
  assert.equal(value('x-ratelimit-remaining-requests'), '4');
  const lastLimit = names.lastIndexOf('x-ratelimit-reset-requests');
  assert.ok(lastLimit >= 0 && lastLimit < names.indexOf('x-aigw-overhead-us'), names.join(','));
  assert.ok(names.indexOf('x-aigw-overhead-us') < names.indexOf('server-timing'), names.join(','));
  assert.equal(names.indexOf('server-timing'), names.length - 1 - names.slice().reverse().findIndex((n) => n === 'server-timing'));
  // and a served request: the limits' lines, then the timing's, after the provider's
  const ok = await rawPost('/v1/chat/completions', k.key, { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(ok.status, 200, ok.body);
  const okNames = ok.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.ok(okNames.indexOf('x-ratelimit-limit-requests') < okNames.indexOf('x-aigw-overhead-us'), okNames.join(','));
});
