// events.test.mjs — the gateway's own events with `log_format: json`: every stderr line is one
// JSON object {time, level, event, msg}; a breaker opening and closing, a reload and the drain
// are events with their names. The OpenAI SDK makes the requests; aigw-mock fails on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway, eventually, sleep } from './harness.mjs';

test('with log_format: json the events are JSON lines: listening, breaker_open, breaker_closed, reloaded, drained', async () => {
  const mock = await startMock();
  const gw = await startGateway(`
listen: 127.0.0.1:0
workers: 1
access_log: off
log_format: json
routing:
  retry: {attempts: 0}
  breaker: {failures: 2, cooldown: 300ms}
providers:
  - {name: flaky, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}
`);
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 2; i++)
      await client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x [[mock:status=500]]' }] }).catch(() => {});
    await sleep(400); // the cooldown: the next request is the half-open probe
    await client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'fine' }] });
    gw.proc.kill('SIGHUP');
    const events = () => gw.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    await eventually(() => events().some((e) => e.event === 'reloaded'), 5000, 'the reload event');
    const seen = events();
    for (const e of seen) {
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['info', 'warn', 'error'].includes(e.level), e.level);
    }
    const names = seen.map((e) => e.event);
    assert.deepEqual(names.filter((n) => n !== 'config_warning'), ['listening', 'breaker_open', 'breaker_closed', 'reloaded']);
    const open = seen.find((e) => e.event === 'breaker_open');
    assert.equal(open.level, 'warn');
    assert.match(open.msg, /^breaker of flaky\/mock-model opened after 2 failures; half-open in 300 ms$/);
  } finally {
    await gw.stop();
    await mock.stop();
  }
  // the drain's own lines came last, as JSON too
  const lines = gw.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(lines.slice(-2).map((e) => e.event), ['draining', 'drained']);
});
