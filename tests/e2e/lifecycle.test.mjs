// lifecycle.test.mjs — promises about a connection's and the process's life that no other test
// held to: drain's force-close at timeouts.drain, a second SIGTERM, the keep-alive idle close,
// /readyz while draining, the backpressure bound on a client that does not read, a client's
// disconnect cancelling a translated upstream (mid-stream and before the first byte), and
// breakers and the retry budget shared by the workers. The witnesses are outside aigw where
// possible: the client's socket, aigw's RSS in /proc, aigw-mock's /__stats.
// A second SIGTERM (or SIGINT) during drain stops waiting: every connection still open is closed
// at once and the process exits 0 (src/server/server.c, on_wakeup), as if timeouts.drain had
// passed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startMock, startGateway, gatewayConfig, rawExchange, parseResponses, sleep, eventually } from './harness.mjs';

let mock;

before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

const post = (path, body, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\n${extra}`
  + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const streamBody = (model, text) => JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: text }] });

// A client connection whose bytes, close time and state the test can watch.
function openClient(port) {
  const c = { data: '', closedAt: 0, sock: net.connect(port, '127.0.0.1') };
  c.sock.on('data', (d) => { c.data += d.toString('latin1'); });
  c.sock.on('error', () => {});
  c.sock.on('close', () => { c.closedAt = Date.now(); });
  c.connected = new Promise((r) => c.sock.once('connect', r));
  return c;
}

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(5);
  assert.ok(pred(), `${what} within ${ms} ms`);
}

function exitWithin(proc, ms) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => resolve('still running'), ms);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

const lifecycleConfig = (timeouts) => gatewayConfig(mock.port).replace(
  /timeouts:\n  header_read: 2s\n  keepalive_idle: 5s\n  drain: 5s\n/, `timeouts:\n${timeouts}\n`);

// ---- drain ---------------------------------------------------------------------------------------

test('drain force-closes a stream still running at timeouts.drain, cancels its upstream, exits 0', async () => {
  await mock.reset();
  const gw = await startGateway(lifecycleConfig('  header_read: 2s\n  keepalive_idle: 5s\n  drain: 600ms'));
  const c = openClient(gw.port);
  await c.connected;
  c.sock.write(post('/v1/chat/completions', streamBody('mock-model', 'x [[mock:words=60,chunk_delay_ms=100]]')));
  await waitFor(() => c.data.includes('\r\ndata: '), 3000, 'the first event');
  const t0 = Date.now();
  gw.proc.kill('SIGTERM');
  await waitFor(() => c.closedAt, 3000, 'the force-close');
  const after = c.closedAt - t0;
  assert.ok(after >= 450 && after < 2000, `closed ${after} ms after SIGTERM (drain: 600ms; the stream needs ~6 s)`);
  assert.doesNotMatch(c.data, /\[DONE\]/, 'the stream was cut, not finished');
  assert.ok(!c.data.endsWith('0\r\n\r\n'), 'no clean end of the chunked body');
  assert.equal(await exitWithin(gw.proc, 2000), 0);
  await eventually(async () => { const s = await mock.stats(); return s.in_flight === 0 && s.streams.aborted === 1; },
    2000, 'the upstream stream aborted at the mock');
  await gw.stop();
});

test('a second SIGTERM during drain closes the remaining connections at once (drain: 10s)', async () => {
  await mock.reset();
  const gw = await startGateway(lifecycleConfig('  header_read: 2s\n  keepalive_idle: 5s\n  drain: 10s'));
  const c = openClient(gw.port);
  await c.connected;
  c.sock.write(post('/v1/chat/completions', streamBody('mock-model', 'x [[mock:words=80,chunk_delay_ms=100]]')));
  await waitFor(() => c.data.includes('\r\ndata: '), 3000, 'the first event');
  gw.proc.kill('SIGTERM');
  const atFirst = c.data.length;
  await sleep(500);
  assert.equal(c.closedAt, 0, 'the first SIGTERM lets the stream go on');
  assert.ok(c.data.length > atFirst, 'events still arrive while draining');
  const t1 = Date.now();
  gw.proc.kill('SIGTERM');
  await waitFor(() => c.closedAt, 2000, 'the close after the second SIGTERM');
  assert.ok(c.closedAt - t1 < 1000, `closed ${c.closedAt - t1} ms after the second SIGTERM`);
  assert.doesNotMatch(c.data, /\[DONE\]/);
  assert.equal(await exitWithin(gw.proc, 2000), 0, 'exits 0 long before drain\'s 10 s');
  await gw.stop();
});

test('/readyz answers 503 while draining (on a connection that was mid-request when SIGTERM came)', async () => {
  const gw = await startGateway(gatewayConfig(mock.port));
  const ready = await fetch(`${gw.url}/readyz`);
  assert.equal(ready.status, 200);
  const c = openClient(gw.port);
  await c.connected;
  c.sock.write('GET /readyz HTTP/1.1\r\nHost: x\r\n'); // the head is not finished: the connection is busy
  await sleep(100);
  gw.proc.kill('SIGTERM');
  await sleep(200);
  assert.equal(c.closedAt, 0, 'a connection mid-request is not closed by drain');
  c.sock.write('\r\n');
  await waitFor(() => c.closedAt || parseResponses(c.data).length, 2000, 'the answer');
  const [res] = parseResponses(c.data);
  assert.equal(res.status, 503);
  assert.deepEqual(JSON.parse(res.body), { status: 'not ready' });
  assert.equal(res.headers.connection, 'close');
  assert.equal(await exitWithin(gw.proc, 3000), 0);
  await gw.stop();
});

// ---- keep-alive idle ------------------------------------------------------------------------------

test('an idle keep-alive connection is closed after timeouts.keepalive_idle, counted from its last response', async () => {
  const gw = await startGateway(lifecycleConfig('  header_read: 2s\n  keepalive_idle: 400ms\n  drain: 5s'));
  try {
    const c = openClient(gw.port);
    await c.connected;
    c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => parseResponses(c.data).length === 1, 2000, 'the first answer');
    await sleep(250); // within the idle time: the connection is still usable
    assert.equal(c.closedAt, 0);
    c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => parseResponses(c.data).length === 2, 2000, 'the second answer on the same connection');
    const t1 = Date.now();
    await waitFor(() => c.closedAt, 3000, 'the idle close');
    const idle = c.closedAt - t1;
    assert.ok(idle >= 330 && idle < 1500, `closed ${idle} ms after the last response (keepalive_idle: 400ms)`);
    assert.deepEqual(parseResponses(c.data).map((r) => r.status), [200, 200]);
  } finally { await gw.stop(); }
});

// ---- backpressure --------------------------------------------------------------------------------

const rssKiB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]);

test('backpressure: a client that does not read a long fast stream costs aigw less than 8 MB', async (t) => {
  // generous upstream timeouts: building a long stream takes the ASan-built mock seconds
  const gw = await startGateway(gatewayConfig(mock.port).replace('timeouts: {connect: 2s, first_byte: 3s, idle: 2s}',
    'timeouts: {connect: 2s, first_byte: 30s, idle: 30s}'));
  try {
    for (let i = 0; i < 5; i++) await (await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: streamBody('mock-model', 'warm [[mock:words=200]]') })).text();
    const before = rssKiB(gw.pid);
    const words = 150000; // ~23 MB of SSE, sent by the mock as fast as it can
    const c = openClient(gw.port);
    await c.connected;
    c.sock.pause(); // read nothing: the kernel's buffers fill, then aigw's queue
    await mock.reset();
    c.sock.write(post('/v1/chat/completions', streamBody('mock-model', `x [[mock:words=${words}]]`)));
    await eventually(async () => (await mock.stats()).streams.started === 1, 20000, 'the mock streaming');
    let peak = before;
    for (let i = 0; i < 30; i++) { await sleep(50); peak = Math.max(peak, rssKiB(gw.pid)); }
    assert.equal(c.data, '', 'the client has read nothing');
    const growth = (peak - before) / 1024;
    t.diagnostic(`aigw RSS ${before} kB before, ${peak} kB at most while the client did not read`);
    assert.ok(growth < 8, `aigw RSS grew ${growth.toFixed(1)} MB (from ${before} kB) while the client did not read`);
    // Nothing was lost on the way: reading now gets the whole stream, far larger than the bound.
    c.sock.resume();
    await waitFor(() => c.data.endsWith('0\r\n\r\n') || c.closedAt, 30000, 'the whole stream');
    assert.ok(c.data.length > 15e6, `the stream was ${c.data.length} bytes: ${c.data.slice(0, 600)}`);
    assert.match(c.data.slice(-300), /data: \[DONE\]/);
    assert.ok(c.data.includes(`"content":"w${words}"`), 'the last word arrived');
    c.sock.destroy();
  } finally { await gw.stop(); }
});

// ---- a client's disconnect cancels a translated upstream ----------------------------------------------

function translatedConfig() {
  const base = `http://127.0.0.1:${mock.port}`;
  const t = 'timeouts: {connect: 2s, first_byte: 10s, idle: 10s}';
  return `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: an, type: anthropic, base_url: "${base}", api_key: k2, models: [claude-mock], ${t}}
  - {name: ge, type: gemini, base_url: "${base}", api_key: k3, models: [gemini-mock], ${t}}
`;
}

for (const model of ['claude-mock', 'gemini-mock']) {
  test(`OpenAI client → ${model === 'claude-mock' ? 'Anthropic' : 'Gemini'} provider: a disconnect mid-stream cancels the upstream`, async () => {
    await mock.reset();
    const gw = await startGateway(translatedConfig());
    try {
      const c = openClient(gw.port);
      await c.connected;
      c.sock.write(post('/v1/chat/completions', streamBody(model, 'x [[mock:words=60,chunk_delay_ms=100]]')));
      await waitFor(() => c.data.includes('\r\ndata: {'), 3000, 'the first translated event');
      const s0 = await mock.stats();
      assert.equal(s0.in_flight, 1);
      assert.equal(s0.streams.started, 1);
      const t0 = Date.now();
      c.sock.destroy();
      await eventually(async () => { const s = await mock.stats(); return s.in_flight === 0 && s.streams.aborted === 1; },
        1500, 'the upstream stream aborted at the mock');
      assert.ok(Date.now() - t0 < 1500);
      assert.equal((await mock.stats()).streams.completed, 0);
      // the head had gone out (200); the log says the client left and the attempt was cancelled
      const line = await gw.waitLog((l) => l.model === model);
      assert.equal(line.error, 'client closed the connection');
      assert.deepEqual(line.attempts.map((a) => a.outcome), ['cancelled']);
    } finally { await gw.stop(); }
  });
}

test('a disconnect before the first byte cancels a translated upstream (stream to Gemini, non-stream to Anthropic)', async () => {
  await mock.reset();
  const gw = await startGateway(translatedConfig());
  try {
    const cases = [
      [streamBody('gemini-mock', 'x [[mock:ttfb_ms=4000]]'), 1],
      [JSON.stringify({ model: 'claude-mock', messages: [{ role: 'user', content: 'x [[mock:ttfb_ms=4000]]' }] }), 0],
    ];
    for (const [body, streams] of cases) {
      await mock.reset();
      const c = openClient(gw.port);
      await c.connected;
      c.sock.write(post('/v1/chat/completions', body));
      await eventually(async () => (await mock.stats()).in_flight === 1, 2000, 'the upstream request in flight');
      const t0 = Date.now();
      c.sock.destroy();
      await eventually(async () => (await mock.stats()).in_flight === 0, 1500, 'the upstream request cancelled');
      assert.ok(Date.now() - t0 < 1500, 'long before the 4 s the mock would take');
      assert.equal(c.data, '', 'nothing had reached the client');
      const s = await mock.stats();
      assert.equal(s.streams.aborted, streams);
      assert.equal(s.streams.completed, 0);
      assert.equal(s.requests, 1, 'not retried after the client left');
    }
    const lines = await eventually(() => gw.logLines.length === 2 && gw.logLines, 3000, 'two log lines');
    assert.deepEqual(lines.map((l) => [l.status, l.attempts.map((a) => a.outcome).join()]), [[499, 'cancelled'], [499, 'cancelled']]);
  } finally { await gw.stop(); }
});

// ---- health shared by the workers --------------------------------------------------------------------

async function failingGateway(status, routing, routeRetry = '') {
  return startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0, base_delay: 10ms, max_delay: 50ms}
${routing}
providers:
  - {name: down, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", api_key: k, models: [mock-model],
     timeouts: {connect: 2s, first_byte: 3s, idle: 3s}, headers: {x-mock-status: "${status}"}}
routes:
  - name: smart
${routeRetry}    targets: [{provider: down, model: mock-model}]
`);
}

// One request on a connection of its own (so the kernel spreads them over the workers):
// status, the worker that answered (aigw's request id carries it), attempts.
async function oneRequest(port) {
  const body = JSON.stringify({ model: 'smart', messages: [{ role: 'user', content: 'x' }] });
  const raw = await rawExchange(port, [post('/v1/chat/completions', body, 'Connection: close\r\n')], { ms: 5000 });
  const [res] = parseResponses(raw);
  const id = res.headers['x-request-id'];
  return { status: res.status, worker: id.slice(16, 18), attempts: Number(res.headers['x-aigw-attempts']) };
}

test('the breaker is shared by the workers: it opens after breaker.failures failures summed over both', async () => {
  await mock.reset();
  const gw = await failingGateway(500, '  breaker: {failures: 5, failure_rate: 0, cooldown: 30s}');
  try {
    const seq = [];
    for (let i = 0; i < 30; i++) seq.push(await oneRequest(gw.port));
    assert.deepEqual(seq.map((r) => r.status), [...Array(5).fill(500), ...Array(25).fill(503)]);
    assert.equal((await mock.stats()).requests, 5, 'the mock saw the five failures, then nothing');
    // Every worker refuses once the five are reached, wherever the five happened: a breaker per
    // worker would have let each worker send five of its own.
    const refusing = new Set(seq.slice(5).map((r) => r.worker));
    assert.equal(refusing.size, 2, `both workers refused (workers: ${seq.map((r) => r.worker).join(' ')})`);
    // many connections at once: all refused, nothing sent
    const burst = await Promise.all(Array.from({ length: 20 }, () => oneRequest(gw.port)));
    assert.ok(burst.every((r) => r.status === 503));
    assert.equal((await mock.stats()).requests, 5);
  } finally { await gw.stop(); }
});

test('the retry budget is shared by the workers: min_retries retries in all, not per worker', async () => {
  await mock.reset();
  const gw = await failingGateway(503, `  retry_budget: {percent: 0, min_retries: 3, window: 10s}
  breaker: {failures: 0, failure_rate: 0}`, '    retry: {attempts: 3, base_delay: 0}\n');
  try {
    const seq = [];
    for (let i = 0; i < 20; i++) seq.push(await oneRequest(gw.port));
    assert.ok(seq.every((r) => r.status === 503));
    const calls = (await mock.stats()).requests;
    assert.equal(calls, 23, `20 requests + the budget's 3 retries (a budget per worker: 26); got ${calls}`);
    assert.equal(seq.reduce((n, r) => n + r.attempts, 0), 23);
    assert.equal(new Set(seq.map((r) => r.worker)).size, 2, `both workers served requests (${seq.map((r) => r.worker).join(' ')})`);
  } finally { await gw.stop(); }
});
