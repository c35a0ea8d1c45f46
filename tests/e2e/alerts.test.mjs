// alerts.test.mjs — an alert rule fires and resolves against a webhook receiver while
// aigw-mock fails and then recovers: requests with the OpenAI SDK that the mock answers 500
// (a directive in the prompt) push a provider's error rate over the rule's threshold; then only
// successes fill the rule's window and it resolves. Each change is notified once, in the
// generic JSON shape, and said on stderr; a provider the rule does not watch changes nothing.
// Then the rules over states, on a second gateway with keys: a provider's breaker opening fires
// `breaker_open` and its closing resolves it; a key spending more than half its budget fires
// `budget` (Slack's shape), and a raised budget resolves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, eventually, sleep } from './harness.mjs';

let mock, gw, receiver, dir;
const notes = [];

before(async () => {
  receiver = createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      notes.push({ headers: req.headers, body: JSON.parse(Buffer.concat(parts).toString()) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}/v1`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: off
routing:
  retry: {attempts: 0}
  breaker: {failures: 0}
providers:
  - {name: flaky, type: openai, base_url: "${base}", models: [mock-model]}
  - {name: other, type: openai, base_url: "${base}", models: [mock-other]}
alerts:
  webhook: {url: "http://127.0.0.1:${receiver.address().port}/hook", format: generic, headers: {x-hook-token: t0k}}
  min_interval: 1s
  rules:
    - {name: flaky-errors, kind: error_rate, provider: flaky, above: 0.5, window: 3s, min_requests: 3}
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a provider\'s error rate fires the rule once and resolves it once, through the webhook and stderr', async () => {
  const client = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0 });
  const ask = (model, text) => client.chat.completions.create({ model, messages: [{ role: 'user', content: text }] });
  // another provider failing says nothing about flaky
  for (let i = 0; i < 5; i++) await ask('mock-other', 'x [[mock:status=500]]').catch(() => {});
  await sleep(1500);
  assert.equal(notes.length, 0);

  for (let i = 0; i < 6; i++) await assert.rejects(ask('mock-model', 'x [[mock:status=500]]'), (e) => e.status === 500);
  await eventually(() => notes.length === 1, 5000, 'the firing notification');
  const firing = notes[0];
  assert.equal(firing.headers['x-hook-token'], 't0k');
  assert.equal(firing.headers['content-type'], 'application/json');
  assert.equal(firing.body.alert, 'flaky-errors');
  assert.equal(firing.body.status, 'firing');
  assert.equal(firing.body.kind, 'error_rate');
  assert.equal(firing.body.provider, 'flaky');
  assert.equal(firing.body.threshold, 0.5);
  assert.equal(firing.body.value, 1);
  assert.equal(firing.body.window_seconds, 3);
  assert.match(firing.body.at, /^\d{4}-\d\d-\d\dT/);
  assert.match(gw.stderr(), /alert flaky-errors firing: error rate 100\.0% > 50\.0% over 3s \(provider flaky\)/);

  // recovery: successes only, for longer than the window
  const until = Date.now() + 4500;
  while (Date.now() < until) {
    await ask('mock-model', 'fine');
    await sleep(200);
  }
  await eventually(() => notes.length === 2, 5000, 'the resolved notification');
  assert.equal(notes[1].body.status, 'resolved');
  assert.ok(notes[1].body.value <= 0.5, String(notes[1].body.value)); // resolved once at or below the threshold
  assert.match(gw.stderr(), /alert flaky-errors resolved/);
  await sleep(1500);
  assert.equal(notes.length, 2, 'each change notified once');
});

test('breaker_open fires while a provider\'s breaker is not closed, and budget while a key has spent past the share', async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-alerts-'));
  writeFileSync(join(dir, 'prices.json'), JSON.stringify({
    models: [{ provider: 'openai', model: 'mock-model', input: 1000, output: 2000, taken: '2026-12' }],
  }));
  const master = 'test-master-key-alerts-0123456789';
  const base = `http://127.0.0.1:${mock.port}/v1`;
  const states = [];
  const hook = createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => { states.push(JSON.parse(Buffer.concat(parts).toString())); res.writeHead(200).end('ok'); });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const gw2 = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: off
catalog: ${join(dir, 'prices.json')}
routing:
  retry: {attempts: 0}
  breaker: {failures: 2, failure_rate: 0, cooldown: 1500ms}
providers:
  - {name: flaky, type: openai, base_url: "${base}", models: [mock-model]}
auth:
  master_key: ${master}
  store: ${join(dir, 'aigw.db')}
alerts:
  webhook: {url: "http://127.0.0.1:${hook.address().port}/hook", format: slack}
  min_interval: 1s
  rules:
    - {name: flaky-breaker, kind: breaker_open, provider: flaky}
    - {name: other-breaker, kind: breaker_open, provider: nobody}
    - {name: bot-budget, kind: budget, key: spender, above: 0.5}
`);
  try {
    const admin = (method, path, body) => fetch(`${gw2.baseURL.replace(/\/v1$/, '')}${path}`, {
      method, headers: { authorization: `Bearer ${master}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const asMaster = new OpenAI({ apiKey: master, baseURL: gw2.baseURL, maxRetries: 0 });
    const ask = (client, text) => client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: text }] });

    // two failures open flaky's breaker
    for (let i = 0; i < 2; i++) await assert.rejects(ask(asMaster, 'x [[mock:status=500]]'), (e) => e.status === 500);
    await eventually(() => states.length === 1, 5000, 'the breaker notification');
    assert.match(states[0].text, /^\[aigw\] flaky-breaker firing: 1 circuit breaker not closed > 0 \(provider flaky: flaky\/mock-model\)$/);
    assert.match(gw2.stderr(), /alert flaky-breaker firing/);
    // half-open after the cooldown is still not closed; a probe that succeeds closes it
    await sleep(1700);
    assert.equal(states.length, 1);
    await ask(asMaster, 'fine');
    await eventually(() => states.length === 2, 5000, 'the breaker resolution');
    assert.match(states[1].text, /flaky-breaker resolved: 0 circuit breakers not closed <= 0/);

    // a key with a budget of about one request: past half of it, the rule fires
    const made = await admin('POST', '/key/generate', { key_alias: 'spender', max_budget: 0.000001 });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const asKey = new OpenAI({ apiKey: made.body.key, baseURL: gw2.baseURL, maxRetries: 0 });
    await ask(asKey, 'spend a little');
    await eventually(() => states.length === 3, 8000, 'the budget notification');
    assert.match(states[2].text, new RegExp(`bot-budget firing: [0-9.]+% of a budget spent > 50\\.0% \\(key ${made.body.id} \\(spender\\): \\$`));
    // raised far above what it spent: resolved
    const raised = await admin('POST', '/key/update', { key: made.body.id, max_budget: 1000 });
    assert.equal(raised.status, 200, JSON.stringify(raised.body));
    await eventually(() => states.length === 4, 8000, 'the budget resolution');
    assert.match(states[3].text, /bot-budget resolved: 0\.0% of a budget spent <= 50\.0%/);
    await sleep(1200);
    assert.equal(states.length, 4, 'each change once; the rule over a provider without targets said nothing');
  } finally {
    await gw2.stop();
    hook.close();
  }
});
