// hostile-client.test.mjs — what a hostile or broken client can do to the gateway's HTTP/1.1
// side, replayed as tests: aborts racing pipelined requests, chunked trailers, a NUL in a model
// name, pipelines that do not read, more than a megabyte pipelined, idle connections at the
// limit, a body that trickles, lax chunked framing, echoed names, and the small protocol
// corners. Every loop here is bounded in count and time; only 127.0.0.1 is reached. The
// harness fails a test when aigw reports anything from the sanitizers or does not exit 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
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

const post = (path, body, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const chat = (text, extra) => post('/v1/chat/completions', JSON.stringify(chatBody(text)), extra);
const healthz = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

async function healthy(g = gw) {
  const r = await fetch(`${g.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200);
}

// Item 1: a connection marked ready (pipelined bytes buffered) that closes in the same loop
// turn was freed while still on the worker's ready list.
test('clients that pipeline and abort at random points never crash the gateway', async () => {
  let seed = 12345;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const end = Date.now() + 3000;
  const one = () => new Promise((resolve) => {
    const sock = net.connect(gw.port, '127.0.0.1');
    const n = 1 + rand(200);
    const reqs = [];
    for (let i = 0; i < n; i++) reqs.push(rand(4) ? healthz : chat(`abort ${i}`));
    const mode = rand(3), wait = rand(11);
    sock.on('error', () => {});
    sock.on('close', resolve);
    sock.on('connect', () => {
      sock.write(reqs.join('') + (rand(2) ? 'stray bytes' : ''));
      setTimeout(() => {
        if (mode === 0) sock.resetAndDestroy();
        else if (mode === 1) sock.end();
        else sock.destroy();
      }, wait);
    });
    setTimeout(() => sock.destroy(), 2000).unref();
  });
  const worker = async () => { while (Date.now() < end) await one(); };
  await Promise.all(Array.from({ length: 8 }, worker));
  await healthy();
});

// Item 2: trailer fields were appended to the buffer the request's headers point into.
test('a chunked request with a large trailer is answered and its trailer dropped', async () => {
  const body = JSON.stringify(chatBody('trailer'));
  const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Transfer-Encoding: chunked\r\nx-aigw-metadata: {"a":"b"}\r\n\r\n` +
    `${body.length.toString(16)}\r\n${body}\r\n0\r\nx-trailer: ${'t'.repeat(5000)}\r\n\r\n`;
  const [res] = parseResponses(await rawExchange(gw.port, [req], { until: (d) => d.includes('"choices"'), ms: 5000 }));
  assert.equal(res.status, 200);
  assert.match(res.body, /"content"/);
  // The trailer section is bounded like a header block (16k here).
  const huge = req.replace('t'.repeat(5000), 't'.repeat(20000));
  const [big] = parseResponses(await rawExchange(gw.port, [huge], { ms: 5000 }));
  assert.equal(big.status, 431);
  await healthy();
});

// Item 3: "mock-model\u0000evil" was compared with strncmp and routed as mock-model.
test('a model name with a NUL or control character is refused with 400 naming model', async () => {
  for (const model of ['mock-model\u0000evil', 'mock-model\r\nx-evil: 1', '', 'm'.repeat(257)]) {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(r.status, 400, JSON.stringify(model).slice(0, 40));
    const e = (await r.json()).error;
    assert.equal(e.param, 'model');
    assert.equal(e.type, 'invalid_request_error');
  }
  const stats = await mock.stats();
  assert.equal(stats.models['mock-model\u0000evil'], undefined);
});

// Item 7: a client that pipelines and never reads made the gateway queue every reply.
test('pipelined replies a client does not read are bounded; the rest wait', async () => {
  const body = JSON.stringify({ model: 'mock-embed', input: Array.from({ length: 64 }, (_, i) => `input ${i}`), dimensions: 1024 });
  const one = post('/v1/embeddings', body);
  const before = rssKiB(gw.proc.pid);
  const sock = net.connect(gw.port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.on('connect', r));
  sock.pause(); // never read
  sock.write(one.repeat(100));
  await sleep(2500);
  const grown = rssKiB(gw.proc.pid) - before;
  // 100 replies are ~140 MB of JSON; a bounded queue holds a few of them.
  assert.ok(grown < 64 * 1024, `RSS grew by ${grown} KiB`);
  // Those that were answered went upstream; the rest were not even read.
  const answered = (await mock.stats()).paths['/v1/embeddings'] ?? 0;
  assert.ok(answered < 20, `${answered} embeddings requests reached the provider`);
  sock.destroy();
  await healthy();
});

test('a client that pipelines and reads gets every reply in order', async () => {
  const n = 40;
  const reqs = Array.from({ length: n }, (_, i) => post('/v1/embeddings', JSON.stringify({ model: 'mock-embed', input: `p${i}`, dimensions: 4096 })));
  const raw = await rawExchange(gw.port, [reqs.join('')], { until: (d) => parseResponses(d).length === n, ms: 20000 });
  const res = parseResponses(raw);
  assert.equal(res.length, n);
  for (const r of res) assert.equal(r.status, 200);
});

// Item 11: bytes beyond 1 MiB pending were dropped, desynchronising the framing.
test('more than a megabyte of pipelined requests is read without losing a byte', async () => {
  const n = 40000;
  const last = chat('after the flood');
  const raw = await rawExchange(gw.port, [healthz.repeat(n) + last], {
    until: (d) => d.includes('"chat.completion"') && parseResponses(d).length === n + 1, ms: 60000,
  });
  const res = parseResponses(raw);
  assert.equal(res.length, n + 1);
  assert.ok(res.slice(0, n).every((r) => r.status === 200 && r.body === '{"status":"ok"}'));
  assert.equal(res[n].status, 200);
  assert.match(JSON.parse(res[n].body).choices[0].message.content, /.+/);
});

test('a pipelined body larger than the pending buffer is framed exactly', async () => {
  const g = await startGateway(gatewayConfig(mock.port).replace('max_body_bytes: 1MiB', 'max_body_bytes: 4MiB'));
  try {
    const first = chat('first', 'x-mock-ttfb-ms: 300\r\n');
    const big = post('/v1/chat/completions', JSON.stringify(chatBody('big ' + 'y'.repeat(1100 * 1024))));
    const raw = await rawExchange(g.port, [first + big + healthz], {
      until: (d) => parseResponses(d).length === 3, ms: 20000,
    });
    const res = parseResponses(raw);
    assert.deepEqual(res.map((r) => r.status), [200, 200, 200]);
    assert.equal(res[2].body, '{"status":"ok"}');
  } finally {
    await g.stop();
  }
});

// Item 12: idle keep-alive connections kept new clients out at the limit, and the limit was
// split per worker (a busy worker refused while the other had room).
test('at the connection limit the oldest idle keep-alive connection makes room', async () => {
  const g = await startGateway(gatewayConfig(mock.port).replace('max_header_bytes: 16k', 'max_header_bytes: 16k\n  max_connections: 16'));
  const socks = [];
  try {
    for (let i = 0; i < 16; i++) {
      const s = net.connect(g.port, '127.0.0.1');
      s.on('error', () => {});
      let data = '';
      s.on('data', (d) => { data += d; });
      await new Promise((r) => s.on('connect', r));
      s.write(healthz);
      for (let t = 0; t < 200 && !data.includes('{"status":"ok"}'); t++) await sleep(10);
      assert.match(data, /^HTTP\/1\.1 200/, `connection ${i} (below the limit) was served`);
      socks.push({ s, closed: () => s.destroyed || s.readyState === 'closed' });
      s.on('close', () => { s.wasClosed = true; });
    }
    // All 16 slots are idle keep-alive connections: new clients still get in.
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${g.url}/healthz`, { headers: { connection: 'close' } });
      assert.equal(r.status, 200);
    }
    await sleep(100);
    assert.ok(socks.filter(({ s }) => s.wasClosed).length >= 1, 'an idle connection was closed to make room');
  } finally {
    for (const { s } of socks) s.destroy();
    await g.stop();
  }
});

// Item 13: a byte every few hundred ms kept a request body open for ever.
test('a body that trickles in gets 408 at timeouts.request_body', async () => {
  const g = await startGateway(gatewayConfig(mock.port).replace('header_read: 2s', 'header_read: 2s\n  request_body: 1s'));
  try {
    const started = Date.now();
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const drip = Array.from({ length: 20 }, () => async (sock) => { if (!sock.destroyed) sock.write(' '); await sleep(250); });
    const [res] = parseResponses(await rawExchange(g.port, [head, ...drip], { ms: 8000 }));
    assert.equal(res.status, 408);
    assert.match(JSON.parse(res.body).error.message, /request_body/);
    assert.ok(Date.now() - started < 4000, 'answered at the body deadline, not after the trickle');
  } finally {
    await g.stop();
  }
});

// Item 19: chunked framing is checked strictly.
test('chunked framing is strict: lax size lines and missing CRLFs are 400, extensions pass', async () => {
  const start = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const body = JSON.stringify(chatBody('chunks'));
  const n = body.length.toString(16);
  const bad = [
    `${n} \r\n${body}\r\n0\r\n\r\n`, // whitespace without an extension
    `${n}\r\n${body}XY0\r\n\r\n`, // no CRLF after the data
    `${n}\n${body}\r\n0\r\n\r\n`, // bare LF
    `-${n}\r\n${body}\r\n0\r\n\r\n`,
    `${n}\r\n${body}\r\n0\r\nbad trailer\r\n\r\n`,
    `ffffffffffffffffff\r\n`, // past the body limit
  ];
  for (const b of bad) {
    const [res] = parseResponses(await rawExchange(gw.port, [start + b], { ms: 3000 }));
    assert.ok(res, JSON.stringify(b).slice(0, 60));
    assert.ok(res.status === 400 || res.status === 413, `${res.status} for ${JSON.stringify(b).slice(0, 60)}`);
    assert.equal(res.headers.connection, 'close');
  }
  const good = `${n};name=value\r\n${body}\r\n0 ; last\r\nx-t: 1\r\n\r\n`;
  const [ok] = parseResponses(await rawExchange(gw.port, [start + good], { until: (d) => d.includes('"choices"'), ms: 5000 }));
  assert.equal(ok.status, 200);
  // Split at every byte, the same body still parses.
  const bytes = [...(start + `${n}\r\n${body}\r\n0\r\n\r\n`)];
  const [split] = parseResponses(await rawExchange(gw.port, bytes.map((c) => Buffer.from(c, 'latin1')), { until: (d) => d.includes('"choices"'), ms: 10000 }));
  assert.equal(split.status, 200);
  const te = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc`;
  const [teRes] = parseResponses(await rawExchange(gw.port, [te], { ms: 3000 }));
  assert.equal(teRes.status, 400);
});

// Item 20: echoed values are capped.
test('echoed names are capped: no response header carries a client value unbounded', async () => {
  for (const model of ['r'.repeat(256), 'mock-model']) {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chatBody('cap'), model }),
    });
    await r.text();
    assert.ok(r.headers.get('x-aigw-route'), 'the route is named');
    for (const [k, v] of r.headers) assert.ok(v.length <= 1100, `${k} is ${v.length} bytes`);
  }
  const huge = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...chatBody('cap'), model: 'm'.repeat(800 * 1024) }),
  });
  assert.equal(huge.status, 400);
  for (const [k, v] of huge.headers) assert.ok(v.length <= 1100, `${k} is ${v.length} bytes`);

  // A header config's target model is echoed in x-aigw-model: cut at 1 KiB.
  const long = 'm'.repeat(3000);
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-aigw-config': JSON.stringify({ provider: 'mock', model: long }) },
    body: JSON.stringify(chatBody('cap')),
  });
  await r.text();
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-aigw-model'), long.slice(0, 1024));
});

// Item 18: a value too long for the line left the line without it (invalid JSON).
test('access-log values are cut with a marker and every line stays one JSON object', async () => {
  const g = await startGateway(gatewayConfig(mock.port).replace('max_header_bytes: 16k', 'max_header_bytes: 1MiB'));
  try {
    const path = '/' + 'p'.repeat(70 * 1024); // http-parser's own head limit is 80 KiB
    const [res] = parseResponses(await rawExchange(g.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\nx-request-id: long-path\r\nConnection: close\r\n\r\n`], { ms: 5000 }));
    assert.equal(res.status, 404);
    const line = await g.waitLog((l) => l.request_id === 'long-path');
    assert.ok(line.path.length < 1200, `path logged with ${line.path.length} chars`);
    assert.match(line.path, /^\/p+\u2026\[\+\d+ bytes\]$/);
    assert.equal(line.status, 404);
  } finally {
    await g.stop();
  }
});

// Item 21: the protocol's corners.
test('HEAD, absolute-form targets, HTTP versions and HTTP/1.0 keep-alive', async () => {
  const head = await rawExchange(gw.port, ['HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { ms: 3000 });
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /Content-Length: 15\r\n/);
  assert.ok(head.endsWith('\r\n\r\n'), 'no body after the head');
  const models = await fetch(`${gw.baseURL}/models`, { method: 'HEAD' });
  assert.equal(models.status, 200);

  const abs = parseResponses(await rawExchange(gw.port, [`GET http://127.0.0.1:${gw.port}/healthz?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`], { ms: 3000 }));
  assert.equal(abs[0].status, 200);
  assert.equal(abs[0].body, '{"status":"ok"}');

  for (const v of ['HTTP/1.7', 'HTTP/2.0']) {
    const [res] = parseResponses(await rawExchange(gw.port, [`GET /healthz ${v}\r\nHost: x\r\n\r\n`], { ms: 3000 }));
    assert.equal(res.status, 505, v);
  }

  const ten = 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
  const raw = await rawExchange(gw.port, [ten, async () => sleep(100), ten], { until: (d) => parseResponses(d).length === 2, ms: 3000 });
  const res = parseResponses(raw);
  assert.equal(res.length, 2, 'the connection stayed open for a second HTTP/1.0 request');
  assert.equal(res[0].headers.connection, 'keep-alive');
  const plain = parseResponses(await rawExchange(gw.port, ['GET /healthz HTTP/1.0\r\n\r\n'], { ms: 3000 }));
  assert.equal(plain[0].headers.connection, 'close');
});

// A client's tiny request_timeout ends the upstream connect inside libcurl, which closes that
// socket without the close hook; re-arming its watch made libuv abort the worker.
test('requests whose own deadline ends mid-connect leave the gateway serving', async () => {
  for (let i = 0; i < 40; i++) {
    const cfg = JSON.stringify({ provider: 'mock', model: 'mock-model', request_timeout: 1 + (i % 10) });
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-aigw-config': cfg, 'x-mock-ttfb-ms': '50' },
      body: JSON.stringify(chatBody(`deadline ${i}`)),
    });
    await r.text();
    assert.ok([200, 504].includes(r.status), `status ${r.status}`);
  }
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chatBody('after')),
  });
  assert.equal(r.status, 200);
  await healthy();
});

// A client that half-closes once its request is answered (the answer queued, not yet read)
// still receives the whole answer; only a half-close before the answer cancels. (With 8 MB
// queued, reading has stopped until it drains; an answer below the mark is the fuzz_conn seed
// half-close-after-request, where the kernel's buffers are 4 KiB.)
test('a half-close after the answer is queued does not cut the answer', async () => {
  const body = JSON.stringify({ model: 'mock-embed', input: Array.from({ length: 200 }, (_, i) => `half ${i}`), dimensions: 4096 });
  const sock = net.connect(gw.port, '127.0.0.1');
  const chunks = [];
  sock.on('data', (d) => chunks.push(d));
  await new Promise((r) => sock.on('connect', r));
  sock.pause();
  sock.write(post('/v1/embeddings', body, 'x-request-id: half-close\r\n'));
  // The access-log line is written once the reply is complete and queued; the client has
  // read nothing (8 MB do not fit in the socket buffers).
  await gw.waitLog((l) => l.request_id === 'half-close', 10000);
  sock.end();
  sock.resume();
  await new Promise((r) => { sock.on('close', r); setTimeout(r, 10000); });
  const [res] = parseResponses(Buffer.concat(chunks).toString('latin1'));
  assert.equal(res?.status, 200);
  assert.equal(JSON.parse(res.body).data.length, 200);
});

// A client that asks for Connection: close and never reads its (large) answer held its
// connection, and a slot of max_connections, for ever.
test('a last answer the client never reads does not hold the connection past the idle timeout', async () => {
  const g = await startGateway(gatewayConfig(mock.port)
    .replace('max_header_bytes: 16k', 'max_header_bytes: 16k\n  max_connections: 1')
    .replace('keepalive_idle: 5s', 'keepalive_idle: 1s'));
  const sock = net.connect(g.port, '127.0.0.1');
  sock.on('error', () => {});
  try {
    await new Promise((r) => sock.on('connect', r));
    sock.pause();
    const body = JSON.stringify({ model: 'mock-embed', input: Array.from({ length: 200 }, (_, i) => `idle ${i}`), dimensions: 4096 });
    sock.write(post('/v1/embeddings', body, 'Connection: close\r\n'));
    await sleep(3000); // the answer is queued (8 MB), the client reads nothing, the idle timeout is 1 s
    const r = await fetch(`${g.url}/healthz`);
    assert.equal(r.status, 200, 'the only connection slot was given back');
  } finally {
    sock.destroy();
    await g.stop();
  }
});

// A stream whose client stops reading paused its upstream for as long as the client liked,
// holding both connections; now the client gets the idle timeout to take bytes again.
test('a stream whose client stops reading is closed at the idle timeout, upstream included', async () => {
  const g = await startGateway(gatewayConfig(mock.port).replace('keepalive_idle: 5s', 'keepalive_idle: 1s'));
  const sock = net.connect(g.port, '127.0.0.1');
  sock.on('error', () => {});
  try {
    await new Promise((r) => sock.on('connect', r));
    sock.pause();
    const body = JSON.stringify(chatBody('stall [[mock:words=50000]]', { stream: true }));
    const started = Date.now();
    sock.write(post('/v1/chat/completions', body, 'x-request-id: stalled-stream\r\n'));
    // The request ends (and is logged) only when aigw gives up on the client.
    const line = await g.waitLog((l) => l.request_id === 'stalled-stream', 8000);
    assert.equal(line.stream, true);
    assert.ok(Date.now() - started >= 900, 'not before the idle timeout');
    assert.match(line.error ?? '', /client/);
  } finally {
    sock.destroy();
    await g.stop();
  }
});
