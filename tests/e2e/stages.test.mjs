// stages.test.mjs — the stage interface carries what later modules need, shown with the
// test-only stages of tests/stages/test_stages.c in the aigw-test-stages build: a stage that
// waits for another thread and is resumed (and one whose client leaves meanwhile), a stage that
// sends two attempts at once and answers with both replies, and a response filter and an
// observer that see exactly what the client got.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, startGateway, gatewayConfig, chatBody, rawExchange, parseResponses, sleep, eventually } from './harness.mjs';

const BIN = process.env.AIGW_TEST_STAGES_BIN;
let mock, gw;

before(async () => {
  mock = await startMock();
  gw = await startGateway(gatewayConfig(mock.port), { bin: BIN });
});
after(async () => {
  await gw?.stop();
  await mock?.stop();
});

const post = (path, body, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\n${extra}`
  + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const healthz = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

// What the test filter printed for a request id.
async function filterLine(id) {
  const re = new RegExp(`test-filter: ${id} status=(\\d+) stream=(\\d) head=(\\d) bytes=(\\d+) complete=(\\d)`);
  let m;
  await eventually(() => (m = gw.stderr().match(re)), 3000, `test-filter line for ${id}`);
  return { status: Number(m[1]), stream: m[2] === '1', head: m[3] === '1', bytes: Number(m[4]), complete: m[5] === '1' };
}

test('a stage resumed from another thread lets the request go on; the loop serves others meanwhile', async () => {
  let waitedDone = 0, healthDone = 0;
  const waited = fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-wait-ms': '400', 'x-request-id': 'wait-1' },
    body: JSON.stringify(chatBody('after a wait')),
  }).then(async (r) => { waitedDone = Date.now(); return { status: r.status, body: await r.json() }; });
  await sleep(50);
  // Both workers stay free while the stage waits: health checks on new connections answer first.
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`${gw.url}/healthz`);
    assert.equal(r.status, 200);
  }
  healthDone = Date.now();
  const w = await waited;
  assert.equal(w.status, 200);
  assert.match(w.body.choices[0].message.content, /.+/);
  assert.ok(healthDone < waitedDone, 'the health checks were answered while the stage waited');
  const line = await gw.waitLog((l) => l.request_id === 'wait-1');
  assert.ok(line.total_ms >= 400, `the wait is in the request's time (${line.total_ms} ms)`);
});

test('a client that leaves while a stage waits leaves nothing behind; the late resume is ignored', async () => {
  for (let i = 0; i < 3; i++) {
    const sock = net.connect(gw.port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.on('connect', r));
    sock.write(post('/v1/chat/completions', JSON.stringify(chatBody('gone')), `x-test-wait-ms: 300\r\nx-request-id: gone-${i}\r\n`));
    await sleep(30);
    sock.destroy();
  }
  for (let i = 0; i < 3; i++) {
    const line = await gw.waitLog((l) => l.request_id === `gone-${i}`);
    assert.equal(line.status, 499);
  }
  await sleep(400); // the threads resume after their clients have gone
  const r = await fetch(`${gw.url}/healthz`);
  assert.equal(r.status, 200);
  // pipelined after a waiting request on the same connection: answered in order
  const raw = await rawExchange(gw.port, [post('/v1/chat/completions', JSON.stringify(chatBody('first')), 'x-test-wait-ms: 100\r\n') + healthz], {
    until: (d) => parseResponses(d).length === 2, ms: 5000,
  });
  const res = parseResponses(raw);
  assert.deepEqual(res.map((x) => x.status), [200, 200]);
  assert.match(res[0].body, /chat\.completion/);
  assert.equal(res[1].body, '{"status":"ok"}');
});

test('a fan-out stage sends two attempts at once and answers with both replies', async () => {
  await mock.reset();
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-fanout': 'mock-model,fast', 'x-request-id': 'fan-1' },
    body: JSON.stringify(chatBody('both of you')),
  });
  assert.equal(r.status, 200);
  const { fanout } = await r.json();
  assert.equal(fanout.length, 2);
  assert.deepEqual(fanout.map((f) => f.model), ['mock-model', 'mock-small']);
  for (const f of fanout) {
    assert.equal(f.status, 200);
    const reply = JSON.parse(f.body);
    assert.equal(reply.model, f.model, 'each reply is its own model\'s');
    assert.match(reply.choices[0].message.content, /.+/);
  }
  const sent = await mock.requests('/v1/chat/completions');
  assert.deepEqual(sent.map((q) => JSON.parse(q.body).model).sort(), ['mock-model', 'mock-small']);
  // one target failing does not lose the other's reply
  const r2 = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-fanout': 'mock-model,strict-model' },
    body: JSON.stringify(chatBody('one of you is slow [[mock:ttfb_ms=900]]')),
  });
  const two = (await r2.json()).fanout;
  assert.equal(two.length, 2);
  assert.equal(two[1].status, 504, 'strict-model (first_byte 400ms) timed out');
  assert.equal(two[0].status, 200, 'mock-model (first_byte 3s) answered');
});

test('a response filter sees every byte the client gets, for whole replies, streams and errors', async () => {
  const plain = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'filter-plain' },
    body: JSON.stringify(chatBody('count me')),
  });
  const plainBody = Buffer.from(await plain.arrayBuffer());
  let f = await filterLine('filter-plain');
  assert.deepEqual(f, { status: 200, stream: false, head: true, bytes: plainBody.length, complete: true });

  const stream = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'filter-stream' },
    body: JSON.stringify(chatBody('stream me [[mock:words=40]]', { stream: true })),
  });
  const streamBody = Buffer.from(await stream.arrayBuffer());
  f = await filterLine('filter-stream');
  assert.deepEqual(f, { status: 200, stream: true, head: true, bytes: streamBody.length, complete: true });

  const missing = await fetch(`${gw.url}/nowhere`, { headers: { 'x-request-id': 'filter-404' } });
  const missingBody = Buffer.from(await missing.arrayBuffer());
  f = await filterLine('filter-404');
  assert.deepEqual(f, { status: 404, stream: false, head: true, bytes: missingBody.length, complete: true });
  // the observer runs once the response is out (its line may come in a later read)
  await eventually(() => /test-record: filter-plain status=200 attempts=1\n/.test(gw.stderr()), 3000, 'the observer saw filter-plain');
  await eventually(() => /test-record: filter-404 status=404 attempts=0\n/.test(gw.stderr()), 3000, 'the observer saw filter-404');
});

test('a filter learns that a stream was cut short when its client leaves', async () => {
  const sock = net.connect(gw.port, '127.0.0.1');
  sock.on('error', () => {});
  let got = '';
  sock.on('data', (d) => { got += d; });
  await new Promise((r) => sock.on('connect', r));
  sock.write(post('/v1/chat/completions', JSON.stringify(chatBody('slow [[mock:words=50,chunk_delay_ms=50]]', { stream: true })), 'x-request-id: filter-gone\r\n'));
  await eventually(() => got.includes('data:'), 3000, 'the first event');
  sock.destroy();
  const f = await filterLine('filter-gone');
  assert.equal(f.stream, true);
  assert.equal(f.complete, false);
  assert.ok(f.bytes > 0);
});

test('a stage gets the request in canonical form once, from either API, and the request goes on unchanged', async () => {
  const anthropic = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-test-canonical': '1', 'x-request-id': 'canon-a' },
    body: JSON.stringify({
      model: 'mock-model', max_tokens: 64, system: 'be brief',
      thinking: { type: 'enabled', budget_tokens: 5000 },
      messages: [{ role: 'user', content: 'hello' }],
    }),
  });
  assert.equal(anthropic.status, 200);
  assert.equal((await anthropic.json()).type, 'message');
  await eventually(() => /test-canonical: canon-a messages=2 roles=system,user max_tokens=64 reasoning_effort=medium same=1\n/.test(gw.stderr()),
    3000, 'the Anthropic request in canonical form');

  const openai = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-canonical': '1', 'x-request-id': 'canon-o' },
    body: JSON.stringify(chatBody('hi', { max_tokens: 7 })),
  });
  assert.equal(openai.status, 200);
  await eventually(() => /test-canonical: canon-o messages=1 roles=user max_tokens=7 reasoning_effort=- same=1\n/.test(gw.stderr()),
    3000, 'the OpenAI request in canonical form');

  // a body JSON can validate but translation cannot hold: the stage hears why, the request is answered as ever
  const huge = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-canonical': '1', 'x-request-id': 'canon-e' },
    body: '{"model":"mock-model","messages":[{"role":"user","content":"x"}],"temperature":1e999}',
  });
  assert.equal(huge.status, 400);
  await eventually(() => /test-canonical: canon-e error=request body has a number out of range \(at byte \d+\)\n/.test(gw.stderr()),
    3000, 'the reason the canonical form is not there');
});
