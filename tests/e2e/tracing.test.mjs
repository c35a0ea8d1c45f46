// tracing.test.mjs — OpenTelemetry traces end to end: an OTLP/HTTP receiver in this test collects
// what aigw exports while the official OpenAI SDK makes requests — protobuf bodies by default,
// read by a small decoder here written from opentelemetry-proto's field numbers (it shares no
// code with aigw's encoder, and refuses a truncated field or a string that is not UTF-8), JSON
// bodies with `protocol: http/json`. Checked: the client's traceparent continues (same trace id, the client's span as
// the request span's parent), a CLIENT span per upstream call as the request span's child with
// its role (first, retry, fallback), the traceparent each call carried naming that call's span,
// the GenAI attributes, an unsampled parent (flag 00) exporting nothing while still propagated,
// a trace started here when the client sent none, a receiver that fails at first (503)
// getting the spans on a later try, and spans dropped — a collector that keeps refusing, a full
// queue — counted in aigw_traces_dropped_total as exports are in aigw_traces_exported_total.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import OpenAI from 'openai';
import { startMock, startGateway, eventually, headerValues } from './harness.mjs';

let mock, gw, receiver, receiverPort;
const spans = [];
const encodings = new Map(); // service name → the Content-Types its exports came with

// ---- OTLP protobuf, as far as these tests read it (opentelemetry/proto: collector/trace/v1,
// trace/v1, common/v1, resource/v1), decoded into the shape of OTLP's JSON mapping
const utf8 = new TextDecoder('utf-8', { fatal: true });
function* fields(bytes) {
  let i = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= bytes.length) throw new Error('protobuf: a varint past the end');
      const b = bytes[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw new Error('protobuf: a varint longer than ten bytes');
  };
  while (i < bytes.length) {
    const key = varint(), field = Number(key >> 3n), wire = Number(key & 7n);
    if (wire === 0) yield { field, value: varint() };
    else if (wire === 1) {
      if (i + 8 > bytes.length) throw new Error('protobuf: a fixed64 past the end');
      const raw = bytes.subarray(i, i + 8);
      yield { field, value: Buffer.from(raw).readBigUInt64LE(), bytes: raw };
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      if (i + len > bytes.length) throw new Error('protobuf: a field past the end');
      yield { field, bytes: bytes.subarray(i, i + len) };
      i += len;
    } else throw new Error(`protobuf: wire type ${wire}`);
  }
}
const text = (b) => utf8.decode(b);
const hexOf = (b) => Buffer.from(b).toString('hex');
function anyValue(bytes) {
  for (const f of fields(bytes)) {
    if (f.field === 1) return { stringValue: text(f.bytes) };
    if (f.field === 2) return { boolValue: f.value !== 0n };
    if (f.field === 3) return { intValue: String(BigInt.asIntN(64, f.value)) };
    if (f.field === 4) return { doubleValue: Buffer.from(f.bytes).readDoubleLE(0) };
  }
  return {};
}
function keyValue(bytes) {
  const kv = { key: undefined, value: {} };
  for (const f of fields(bytes)) {
    if (f.field === 1) kv.key = text(f.bytes);
    if (f.field === 2) kv.value = anyValue(f.bytes);
  }
  return kv;
}
function span(bytes) {
  const s = { attributes: [] };
  for (const f of fields(bytes)) {
    if (f.field === 1) s.traceId = hexOf(f.bytes);
    else if (f.field === 2) s.spanId = hexOf(f.bytes);
    else if (f.field === 4) s.parentSpanId = hexOf(f.bytes);
    else if (f.field === 5) s.name = text(f.bytes);
    else if (f.field === 6) s.kind = Number(f.value);
    else if (f.field === 7) s.startTimeUnixNano = String(f.value);
    else if (f.field === 8) s.endTimeUnixNano = String(f.value);
    else if (f.field === 9) s.attributes.push(keyValue(f.bytes));
    else if (f.field === 15) {
      s.status = {};
      for (const g of fields(f.bytes)) {
        if (g.field === 2) s.status.message = text(g.bytes);
        if (g.field === 3) s.status.code = Number(g.value);
      }
    }
  }
  return s;
}
function exportRequest(bytes) {
  const body = { resourceSpans: [] };
  for (const f of fields(bytes)) {
    if (f.field !== 1) continue;
    const rs = { resource: { attributes: [] }, scopeSpans: [] };
    for (const g of fields(f.bytes)) {
      if (g.field === 1) for (const h of fields(g.bytes)) if (h.field === 1) rs.resource.attributes.push(keyValue(h.bytes));
      if (g.field === 2) {
        const ss = { scope: {}, spans: [] };
        for (const h of fields(g.bytes)) {
          if (h.field === 1) for (const k of fields(h.bytes)) if (k.field === 1) ss.scope.name = text(k.bytes);
          if (h.field === 2) ss.spans.push(span(h.bytes));
        }
        rs.scopeSpans.push(ss);
      }
    }
    body.resourceSpans.push(rs);
  }
  return body;
}
let failNext = 0;
let posts = 0;

before(async () => {
  receiver = createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      posts++;
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      assert.equal(req.url, '/v1/traces');
      assert.equal(req.headers['x-collector-key'], 'collector-secret');
      const type = req.headers['content-type'], raw = Buffer.concat(parts);
      const body = type === 'application/x-protobuf' ? exportRequest(raw) : JSON.parse(raw.toString());
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name').value.stringValue;
        assert.equal(rs.scopeSpans[0].scope.name, 'aigw');
        if (!encodings.has(service)) encodings.set(service, new Set());
        encodings.get(service).add(type);
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  receiverPort = receiver.address().port;
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
tracing:
  endpoint: http://127.0.0.1:${receiverPort}/v1/traces
  headers: {x-collector-key: collector-secret}
  service_name: gateway-under-test
  batch_delay: 100ms
routing:
  retry: {attempts: 1, base_delay: 10ms, max_delay: 10ms}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", models: [mock-model]}
  - {name: broken, type: openai, base_url: "${base}/v1", models: [mock-model], headers: {x-mock-status: "500"}}
  - {name: an, type: anthropic, base_url: "${base}", models: [claude-mock]}
routes:
  - name: resilient
    strategy: {mode: fallback}
    targets: [{provider: broken, model: mock-model}, {provider: oa, model: mock-model}]
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  receiver?.close();
});

const attr = (span, key) => {
  const a = span.attributes.find((x) => x.key === key);
  if (!a) return undefined;
  const v = a.value;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
};
// A one-worker gateway exporting to this test's receiver, with more tracing settings (YAML lines
// under tracing:, indented two spaces).
const tracingGateway = (settings) => startGateway(`
listen: 127.0.0.1:0
workers: 1
access_log: off
tracing:
  endpoint: http://127.0.0.1:${receiverPort}/v1/traces
  headers: {x-collector-key: collector-secret}
${settings}
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}
`);

// One unlabelled counter from a gateway's /metrics (auth is off here).
const counter = async (g, name) => {
  const text = await (await fetch(`${g.baseURL.replace(/\/v1$/, '')}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};
const hex = (n) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');

test('the client\'s trace continues through aigw: a request span, a span per upstream call, and the provider sees its call\'s span', async () => {
  const traceId = hex(16), parent = hex(8);
  const client = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0,
    defaultHeaders: { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc' } });
  await mock.reset();
  const reply = await client.chat.completions.create({ model: 'resilient', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(reply.choices[0].message.content, /mock reply/);

  await eventually(() => spans.filter((s) => s.traceId === traceId && s.kind !== 1).length === 4, 10000,
    'the request span and three call spans');
  const mine = spans.filter((s) => s.traceId === traceId);
  const server = mine.find((s) => s.kind === 2);
  assert.equal(server.parentSpanId, parent);
  assert.equal(server.name, 'chat resilient');
  assert.equal(server.service, 'gateway-under-test');
  assert.deepEqual([...encodings.get('gateway-under-test')], ['application/x-protobuf'], 'protobuf by default');
  assert.equal(attr(server, 'gen_ai.operation.name'), 'chat');
  assert.equal(attr(server, 'gen_ai.request.model'), 'resilient');
  assert.equal(attr(server, 'gen_ai.response.model'), 'mock-model');
  assert.equal(attr(server, 'gen_ai.provider.name'), 'openai');
  assert.equal(attr(server, 'gen_ai.usage.input_tokens'), reply.usage.prompt_tokens);
  assert.equal(attr(server, 'gen_ai.usage.output_tokens'), reply.usage.completion_tokens);
  assert.equal(attr(server, 'http.response.status_code'), 200);
  assert.equal(attr(server, 'aigw.route'), 'resilient');
  assert.equal(attr(server, 'aigw.attempts'), 3);
  assert.ok(BigInt(server.endTimeUnixNano) > BigInt(server.startTimeUnixNano));
  const now = BigInt(Date.now()) * 1000000n;
  assert.ok(now - BigInt(server.endTimeUnixNano) < 60n * 1000000000n, 'wall-clock times');

  const calls = mine.filter((s) => s.kind === 3).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
  assert.deepEqual(calls.map((c) => attr(c, 'aigw.attempt.role')), ['first', 'retry', 'fallback']);
  assert.deepEqual(calls.map((c) => attr(c, 'aigw.provider')), ['broken', 'broken', 'oa']);
  assert.deepEqual(calls.map((c) => attr(c, 'http.response.status_code')), [500, 500, 200]);
  assert.deepEqual(calls.map((c) => c.status?.code ?? 0), [2, 2, 0]);
  for (const c of calls) {
    assert.equal(c.parentSpanId, server.spanId);
    assert.ok(BigInt(c.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
    assert.ok(BigInt(c.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
  }
  // aigw's own work, phase by phase: INTERNAL children inside the request span
  const phases = mine.filter((s) => s.kind === 1);
  assert.deepEqual(phases.map((p) => p.name).filter((n) => n === 'aigw.decode' || n === 'aigw.routing'),
    ['aigw.decode', 'aigw.routing']);
  for (const p of phases) {
    assert.equal(p.parentSpanId, server.spanId);
    assert.ok(BigInt(p.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
    assert.ok(BigInt(p.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
  }
  assert.equal(new Set(mine.map((s) => s.spanId)).size, mine.length, 'span ids unique in the trace');
  // each upstream call carried the trace, naming its own span; tracestate as the client sent it
  const seen = (await mock.requests()).filter((r) => r.url === '/v1/chat/completions');
  assert.equal(seen.length, 3);
  assert.deepEqual(seen.map((r) => headerValues(r, 'traceparent')[0]).sort(),
    calls.map((c) => `00-${traceId}-${c.spanId}-01`).sort());
  for (const r of seen) assert.deepEqual(headerValues(r, 'tracestate'), ['vendor=abc']);
});

test('a call whose formats differ has an aigw.translate span: the request\'s translation, and the reply\'s time', async () => {
  const traceId = hex(16);
  const client = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0,
    defaultHeaders: { traceparent: `00-${traceId}-${hex(8)}-01` } });
  for (const stream of [false, true]) {
    const t = stream ? hex(16) : traceId;
    const c2 = stream ? new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { traceparent: `00-${t}-${hex(8)}-01` } }) : client;
    if (stream) {
      const s = await c2.chat.completions.create({ model: 'claude-mock', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      for await (const _ of s) { /* drain */ }
    } else {
      await c2.chat.completions.create({ model: 'claude-mock', messages: [{ role: 'user', content: 'hi' }] });
    }
    await eventually(() => spans.some((s) => s.traceId === t && s.name === 'aigw.translate'), 10000, 'the translate span');
    const mine = spans.filter((s) => s.traceId === t);
    const server = mine.find((s) => s.kind === 2), call = mine.find((s) => s.kind === 3);
    const tr = mine.find((s) => s.name === 'aigw.translate');
    assert.equal(tr.kind, 1);
    assert.equal(tr.parentSpanId, server.spanId);
    assert.equal(attr(tr, 'aigw.translate.from'), 'openai');
    assert.equal(attr(tr, 'aigw.translate.to'), 'anthropic');
    assert.equal(attr(tr, 'aigw.provider'), 'an');
    assert.ok(attr(tr, 'aigw.translate.reply_ns') > 0, 'the reply\'s translation was timed');
    assert.ok(BigInt(tr.endTimeUnixNano) <= BigInt(call.startTimeUnixNano), 'translated before it was sent');
    assert.ok(BigInt(tr.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
  }
  // the same format both sides: no translation, no span
  const t3 = hex(16);
  await new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { traceparent: `00-${t3}-${hex(8)}-01` } })
    .chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  await eventually(() => spans.some((s) => s.traceId === t3 && s.kind === 2), 10000, 'the plain request span');
  assert.equal(spans.filter((s) => s.traceId === t3 && s.name === 'aigw.translate').length, 0);
});

test('a trace starts here when the client sent none; an unsampled parent exports nothing but is still propagated', async () => {
  const client = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0 });
  const { response } = await client.chat.completions
    .create({ model: 'mock-model', messages: [{ role: 'user', content: 'fresh' }] }).withResponse();
  const requestId = response.headers.get('x-request-id');
  await eventually(() => spans.some((s) => attr(s, 'aigw.request_id') === requestId), 10000, 'the new trace exported');
  const root = spans.find((s) => attr(s, 'aigw.request_id') === requestId);
  assert.equal(root.parentSpanId, undefined);
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.equal(spans.filter((s) => s.traceId === root.traceId && s.kind !== 1).length, 2);

  const traceId = hex(16);
  const unsampled = new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0,
    defaultHeaders: { traceparent: `00-${traceId}-${hex(8)}-00` } });
  await mock.reset();
  await unsampled.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'quiet' }] });
  const [sent] = (await mock.requests()).filter((r) => r.url === '/v1/chat/completions');
  assert.match(headerValues(sent, 'traceparent')[0], new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
  // a later sampled request's spans arrive; the unsampled one's never do
  const later = hex(16);
  await new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { traceparent: `00-${later}-${hex(8)}-01` } })
    .chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  await eventually(() => spans.some((s) => s.traceId === later), 10000, 'the later trace');
  assert.equal(spans.filter((s) => s.traceId === traceId).length, 0);
  // an invalid traceparent starts a new trace rather than failing the request
  const bad = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: '00-zz-bad-01' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(bad.status, 200);
});

test('a collector that fails at first gets the spans on a later try', async () => {
  const traceId = hex(16);
  const postsBefore = posts;
  failNext = 1;
  await new OpenAI({ apiKey: 'k', baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { traceparent: `00-${traceId}-${hex(8)}-01` } })
    .chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  await eventually(() => spans.some((s) => s.traceId === traceId), 10000, 'the spans after a 503');
  assert.ok(posts >= postsBefore + 2, `${posts - postsBefore} posts`);
  assert.match(gw.stderr(), /traces: .* refused spans \(HTTP 503\)/);
  // every traced request so far was exported in the end; none dropped
  await eventually(async () => (await counter(gw, 'aigw_traces_exported_total')) >= 8, 10000, 'the exports counted');
  assert.equal(await counter(gw, 'aigw_traces_dropped_total'), 0);
});

test('spans a collector keeps refusing are dropped and counted (with a queue of 2, so what does not fit is dropped too)', async () => {
  const gw3 = await tracingGateway('  batch_delay: 10ms\n  queue: 2');
  failNext = 1000;
  try {
    const client = new OpenAI({ apiKey: 'k', baseURL: gw3.baseURL, maxRetries: 0 });
    const sent = 6;
    await Promise.all(Array.from({ length: sent }, () =>
      client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] })));
    // each request's spans end one way or the other: never exported here, so all dropped (at
    // least the six: GET /metrics is a request too, traced like any other)
    await eventually(async () => (await counter(gw3, 'aigw_traces_dropped_total')) >= sent, 20000,
      'every request counted as dropped');
    assert.equal(await counter(gw3, 'aigw_traces_exported_total'), 0);
    assert.match(gw3.stderr(), /traces: .* refused spans \(HTTP 503\)/);
  } finally {
    failNext = 0;
    await gw3.stop();
  }
});

test('with tracing.content the request span carries the bodies, redacted and cut; without it, none (and protocol: http/json sends JSON)', async () => {
  const gw2 = await tracingGateway(`  service_name: json-exporter
  protocol: http/json
  batch_delay: 100ms
  content: {max: 2k, redact: [password, api_key]}`);
  try {
    const spanOf = async (t) => {
      await eventually(() => spans.some((s) => s.traceId === t && s.kind === 2), 10000, 'the request span');
      return spans.find((s) => s.traceId === t && s.kind === 2);
    };
    const client = (t, url = gw2.baseURL) => new OpenAI({ apiKey: 'k', baseURL: url, maxRetries: 0,
      defaultHeaders: { traceparent: `00-${t}-${hex(8)}-01` } });
    // a plain reply: the request with its secret member hidden, the reply as the client got it
    const t1 = hex(16);
    const reply = await client(t1).chat.completions.create({ model: 'mock-model',
      messages: [{ role: 'user', content: 'tell me about otters' }],
      metadata: { password: 'hunter2-secret', note: 'kept' } });
    const s1 = await spanOf(t1);
    assert.equal(s1.service, 'json-exporter');
    assert.deepEqual([...encodings.get('json-exporter')], ['application/json'], 'protocol: http/json');
    const prompt = attr(s1, 'gen_ai.prompt'), completion = attr(s1, 'gen_ai.completion');
    assert.equal(JSON.parse(prompt).messages[0].content, 'tell me about otters');
    assert.equal(JSON.parse(prompt).metadata.password, '[redacted]');
    assert.equal(JSON.parse(prompt).metadata.note, 'kept');
    assert.ok(!JSON.stringify(s1).includes('hunter2-secret'), 'the secret is in no attribute');
    assert.equal(JSON.parse(completion).choices[0].message.content, reply.choices[0].message.content);

    // a stream: its SSE text, event by event
    const t2 = hex(16);
    const stream = await client(t2).chat.completions.create({ model: 'mock-model', stream: true,
      messages: [{ role: 'user', content: 'stream please' }] });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    const s2 = await spanOf(t2);
    const sse = attr(s2, 'gen_ai.completion');
    assert.match(sse, /^data: \{/);
    const streamed = sse.split('\n').filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('');
    assert.equal(streamed, text);

    // a body past max is cut there, at a character's start
    const t3 = hex(16);
    await client(t3).chat.completions.create({ model: 'mock-model',
      messages: [{ role: 'user', content: 'é'.repeat(3000) }] });
    const s3 = await spanOf(t3);
    const cut = attr(s3, 'gen_ai.prompt');
    assert.ok(Buffer.byteLength(cut) <= 2048 && Buffer.byteLength(cut) >= 2040, String(Buffer.byteLength(cut)));
    assert.ok(!cut.includes('\ufffd'), 'cut between characters');

    // the first gateway has no content setting: no bodies in its spans
    const t4 = hex(16);
    await client(t4, gw.baseURL).chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'private' }] });
    const s4 = await spanOf(t4);
    assert.equal(attr(s4, 'gen_ai.prompt'), undefined);
    assert.equal(attr(s4, 'gen_ai.completion'), undefined);
  } finally {
    await gw2.stop();
  }
});
