// alerts.test.mjs — an alert rule fires and resolves against a webhook receiver while
// aigw-mock fails and then recovers: requests with the OpenAI SDK that the mock answers 500
// (a directive in the prompt) push a provider's error rate over the rule's threshold; then only
// successes fill the rule's window and it resolves. Each change is notified once, in the
// generic JSON shape, and said on stderr; a provider the rule does not watch changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import OpenAI from 'openai';
import { startMock, startGateway, eventually, sleep } from './harness.mjs';

let mock, gw, receiver;
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
