// http.test.mjs — the gateway's HTTP/1.1 behaviour on raw sockets: keep-alive, pipelining,
// chunked bodies, 100-continue, limits with clear errors, health endpoints, and drain.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, startGateway, gatewayConfig, rawExchange, parseResponses, sleep, chatBody } from './harness.mjs';

let mock, gw;

before(async () => {
  mock = await startMock();
  gw = await startGateway(gatewayConfig(mock.port));
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

const post = (body, extraHeaders = '') =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extraHeaders}` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

function assertOpenAIError(res, status, codeOrNull) {
  assert.equal(res.status, status);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.ok(res.headers['x-request-id'], 'x-request-id on errors too');
  const e = JSON.parse(res.body).error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e);
  if (codeOrNull !== undefined) assert.equal(e.code, codeOrNull);
  return e;
}

test('keep-alive: two requests on one connection', async () => {
  const raw = await rawExchange(gw.port, [
    post(JSON.stringify(chatBody('first'))),
    async (sock, data) => { while (!data().includes('first"')) await sleep(5); sock.write(post(JSON.stringify(chatBody('second')))); },
  ], { until: (d) => parseResponses(d).length === 2 });
  const [a, b] = parseResponses(raw);
  assert.match(a.body, /mock reply to: first/);
  assert.match(b.body, /mock reply to: second/);
  assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
});

test('pipelined requests are answered in order', async () => {
  const reqs = [
    'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    post(JSON.stringify(chatBody('slow one [[mock:ttfb_ms=150]]'))),
    post(JSON.stringify(chatBody('quick two'))),
    'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ];
  const raw = await rawExchange(gw.port, [reqs.join('')]);
  const res = parseResponses(raw);
  assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 404]);
  assert.match(res[1].body, /slow one/);
  assert.match(res[2].body, /quick two/);
  assert.equal(res[3].headers.connection, 'close');
});

test('chunked request body', async () => {
  const body = JSON.stringify(chatBody('chunked body'));
  const half = Math.floor(body.length / 2);
  const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const raw = await rawExchange(gw.port, [
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    chunk(body.slice(0, half)), chunk(body.slice(half)), '0\r\n\r\n',
  ], { gapMs: 20 });
  const [res] = parseResponses(raw);
  assert.equal(res.status, 200);
  assert.match(res.body, /mock reply to: chunked body/);
});

test('Expect: 100-continue gets 100 before the body is sent', async () => {
  const body = JSON.stringify(chatBody('after continue'));
  const raw = await rawExchange(gw.port, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`,
    async (sock, data) => {
      const end = Date.now() + 2000;
      while (!data().startsWith('HTTP/1.1 100 Continue\r\n\r\n') && Date.now() < end) await sleep(5);
      assert.ok(data().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), `got: ${data()}`);
      sock.write(body);
    },
  ]);
  const res = parseResponses(raw);
  assert.deepEqual(res.map((r) => r.status), [100, 200]);
  assert.match(res[1].body, /after continue/);
});

test('health and readiness', async () => {
  const h = await fetch(`${gw.url}/healthz`);
  assert.equal(h.status, 200);
  const r = await fetch(`${gw.url}/readyz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ready' });
});

test('unknown path 404, wrong method 405, both in the OpenAI error shape', async () => {
  const a = await rawExchange(gw.port, ['GET /v1/unknown HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assertOpenAIError(parseResponses(a)[0], 404, 'not_found');
  const b = await rawExchange(gw.port, ['GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assertOpenAIError(parseResponses(b)[0], 405, 'method_not_allowed');
  const c = await rawExchange(gw.port, [`DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
  assertOpenAIError(parseResponses(c)[0], 405, 'method_not_allowed');
});

test('invalid JSON and a missing model: 400 with a clear message', async () => {
  const a = await rawExchange(gw.port, [post('{"model": "mock-model", "messages": [', 'Connection: close\r\n')]);
  const e = assertOpenAIError(parseResponses(a)[0], 400, 'invalid_json');
  assert.match(e.message, /not valid JSON/);
  const b = await rawExchange(gw.port, [post('{"messages": []}', 'Connection: close\r\n')]);
  const e2 = assertOpenAIError(parseResponses(b)[0], 400);
  assert.equal(e2.param, 'model');
  const c = await rawExchange(gw.port, [post('[1,2]', 'Connection: close\r\n')]);
  assertOpenAIError(parseResponses(c)[0], 400, 'invalid_json');
});

test('a body over limits.max_body_bytes: 413, by Content-Length and by chunks', async () => {
  const a = await rawExchange(gw.port, [
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n',
  ], { until: (d) => d.includes('}}') });
  const e = assertOpenAIError(parseResponses(a)[0], 413);
  assert.match(e.message, /too large/);
  const big = 'x'.repeat(256 * 1024);
  const chunk = `${big.length.toString(16)}\r\n${big}\r\n`;
  const b = await rawExchange(gw.port, [
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
    chunk, chunk, chunk, chunk, chunk,
  ], { until: (d) => d.includes('}}') });
  assertOpenAIError(parseResponses(b)[0], 413);
});

test('headers over limits.max_header_bytes: 431', async () => {
  const raw = await rawExchange(gw.port, [
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`,
  ], { until: (d) => d.includes('}}') });
  assertOpenAIError(parseResponses(raw)[0], 431);
});

test('a client that sends its headers too slowly gets 408 and is closed', async () => {
  const t0 = Date.now();
  const raw = await rawExchange(gw.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n'], { ms: 6000 });
  const res = parseResponses(raw)[0];
  assertOpenAIError(res, 408);
  const took = Date.now() - t0;
  assert.ok(took >= 1800 && took < 4000, `closed after ${took} ms (header_read is 2s)`);
});

test('SIGTERM drains: an in-flight stream finishes, new connections are refused, exit 0', async () => {
  const own = await startGateway(gatewayConfig(mock.port));
  const t0 = Date.now();
  const body = JSON.stringify({ ...chatBody('a b c d [[mock:chunk_delay_ms=120]]'), stream: true });
  let atSigterm = null;
  // No `until`: resolves when the server closes the connection after the stream. SIGTERM goes
  // once the first event has reached the client, so the stream is in flight when drain starts.
  const rawPromise = rawExchange(own.port, [post(body), async (sock, data) => {
    const end = Date.now() + 3000;
    while (!data().includes('\r\ndata: ') && Date.now() < end) await sleep(5);
    atSigterm = data();
    own.proc.kill('SIGTERM');
  }], { ms: 8000 });
  while (atSigterm === null && Date.now() - t0 < 4000) await sleep(5);
  assert.match(atSigterm ?? '', /\r\ndata: /, 'the stream had started when SIGTERM was sent');
  assert.doesNotMatch(atSigterm, /\[DONE\]/, 'and had not finished');
  await sleep(150);
  const refused = await new Promise((resolve) => {
    const s = net.connect(own.port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
  assert.ok(refused, 'no new connections during drain');
  const raw = await rawPromise;
  const [res] = parseResponses(raw);
  assert.equal(res.status, 200);
  assert.ok(raw.endsWith('0\r\n\r\n'), 'the chunked stream ended properly before the close');
  assert.match(res.body, /data: \[DONE\]/);
  const text = res.body.split('\n').filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'mock reply to: a b c d');
  // The connection closed right after the stream (draining), not at the drain timeout.
  assert.ok(Date.now() - t0 < 4000, `stream and close took ${Date.now() - t0} ms (drain timeout 5 s)`);
  await own.stop(); // asserts exit code 0 and a clean sanitizer report
});

test('Expect other than 100-continue: 417 in the OpenAI shape, the body is not waited for, the connection closes', async () => {
  for (const value of ['200-ok', '100-continue-please', 'x']) {
    const raw = await rawExchange(gw.port, [
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: ${value}\r\nContent-Length: 50\r\n\r\n`,
    ], { ms: 3000 });
    const res = parseResponses(raw);
    assert.equal(res.length, 1, `one answer to Expect: ${value}; got ${JSON.stringify(raw)}`);
    const e = assertOpenAIError(res[0], 417);
    assert.equal(e.message, 'unsupported Expect header');
    assert.equal(res[0].headers.connection, 'close');
  }
  assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
});

test('malformed HTTP gets 400 in the OpenAI shape and the gateway keeps serving', async () => {
  const bad = [
    'GARBAGE\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: a\0b\r\n\r\n',
  ];
  for (const req of bad) {
    const raw = await rawExchange(gw.port, [req], { ms: 3000 });
    const [res] = parseResponses(raw);
    assert.ok(res, `an answer to ${JSON.stringify(req)}; got ${JSON.stringify(raw)}`);
    assert.equal(res.status, 400, JSON.stringify(req));
    assert.equal(res.headers.connection, 'close');
    assert.match(JSON.parse(res.body).error.message, /malformed (HTTP request|chunked body)/);
  }
  const v = parseResponses(await rawExchange(gw.port, ['GET /healthz HTTP/9.9\r\n\r\n'], { ms: 3000 }))[0];
  assert.equal(v.status, 505);
  assert.match(JSON.parse(v.body).error.message, /HTTP version not supported/);
  const ok = await fetch(`${gw.url}/healthz`);
  assert.equal(ok.status, 200);
});
