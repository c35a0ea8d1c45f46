// chaos.test.mjs — the real aigw (two workers) in front of aigw-mock with random faults, under
// many concurrent clients that misbehave the way real ones do: pipelining 1–200 requests,
// resetting or half-closing at random points, reading slowly or not at all, sending chunked
// bodies with trailers, streaming and cancelling through the official SDKs; SIGTERM at the end.
//
// What must hold: aigw never reports a sanitizer error and exits 0 after the drain; every whole
// response a client received is well-formed HTTP/1.1 (status line, headers, framed by
// Content-Length or chunked; JSON bodies parse; errors in the shape of the client's API; SSE
// data lines parse); a client that waits gets one response per request; an SDK call that was
// not cancelled ends in a result or an API error with a status, never a dropped connection;
// and /healthz answers throughout on fresh connections.
//
// Seeded: the seed is printed; CHAOS_SEED=N replays the same choices (timing still varies).
// Bounded: CHAOS_MS of traffic (default 35 s; about 45 s in all), every wait has a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, gatewayConfig, sleep } from './harness.mjs';

const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TRAFFIC_MS = Number(process.env.CHAOS_MS ?? 35000);
const RAW_CLIENTS = 10;
const SDK_CLIENTS = 3;
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

// mulberry32: small, seedable, good enough to pick test cases.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- what clients send ----------------------------------------------------------------------

const FAULTS = ['', '', '', '', 'status=500', 'status=429', 'status=503', 'status=400', 'ttfb_ms=30',
  'reset=1', 'drop_after=2', 'stream_error=1', 'chunk_delay_ms=3', 'words=40'];

function pick(r, list) { return list[Math.floor(r() * list.length)]; }

function chatJson(r, { stream = false, anthropic = false } = {}) {
  const fault = pick(r, FAULTS);
  const text = `chaos ${Math.floor(r() * 1e6)}${fault ? ` [[mock:${fault}]]` : ''}`;
  const body = anthropic
    ? { model: 'mock-model', max_tokens: 64, messages: [{ role: 'user', content: text }] }
    : { model: r() < 0.1 ? 'strict-model' : 'mock-model', messages: [{ role: 'user', content: text }] };
  if (stream) body.stream = true;
  return JSON.stringify(body);
}

// One request's bytes and the API whose error shape its answer must have.
function makeRequest(r) {
  const x = r();
  if (x < 0.3) return { api: 'openai', bytes: 'GET /healthz HTTP/1.1\r\nHost: chaos\r\n\r\n' };
  const anthropic = x > 0.85;
  const path = anthropic ? '/v1/messages' : '/v1/chat/completions';
  const api = anthropic ? 'anthropic' : 'openai';
  // Headers as SDKs send them (a header the gateway looks up by name must be among them).
  const extra = 'User-Agent: chaos/1\r\n' +
    (anthropic ? 'anthropic-version: 2023-06-01\r\nx-api-key: k\r\n' : 'Authorization: Bearer chaos-key\r\n');
  const body = chatJson(r, { stream: r() < 0.25, anthropic });
  if (r() < 0.2) { // chunked, in two or three chunks, with a trailer of up to 6 KB
    const cut = 1 + Math.floor(r() * (body.length - 2));
    const parts = [body.slice(0, cut), body.slice(cut)].filter((p) => p.length);
    const chunks = parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('');
    const trailer = r() < 0.5 ? `x-chaos-trailer: ${'t'.repeat(Math.floor(r() * 6000))}\r\n` : '';
    return {
      api,
      bytes: `POST ${path} HTTP/1.1\r\nHost: chaos\r\nContent-Type: application/json\r\n${extra}` +
        `Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n${trailer}\r\n`,
    };
  }
  return {
    api,
    bytes: `POST ${path} HTTP/1.1\r\nHost: chaos\r\nContent-Type: application/json\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  };
}

// ---- what clients receive ---------------------------------------------------------------------

// Splits the bytes received on one connection into whole responses, checking each; returns
// { responses, rest } where rest is an unfinished response (allowed only when the
// connection was cut). Throws on anything malformed.
function parseStrict(buf) {
  const responses = [];
  let at = 0;
  for (;;) {
    if (at === buf.length) return { responses, rest: 0 };
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) {
      if (!'HTTP/1.1 '.startsWith(buf.subarray(at, at + 9).toString('latin1')))
        throw new Error(`bytes at a response boundary are not a status line: ${JSON.stringify(buf.subarray(at, at + 80).toString('latin1'))}`);
      return { responses, rest: buf.length - at };
    }
    const lines = buf.subarray(at, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0].slice(0, 200))}`);
    const status = Number(m[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i <= 0 || /[\s]/.test(l.slice(0, i))) throw new Error(`bad header line: ${JSON.stringify(l.slice(0, 200))}`);
      const name = l.slice(0, i).toLowerCase();
      if (name in headers && (name === 'content-length' || name === 'transfer-encoding'))
        throw new Error(`duplicate ${name}`);
      headers[name] = l.slice(i + 1).trim();
    }
    let p = headEnd + 4;
    if (status === 100) { at = p; continue; }
    let body;
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (te !== undefined) {
      if (cl !== undefined) throw new Error('both Content-Length and Transfer-Encoding');
      if (te !== 'chunked') throw new Error(`unknown transfer-encoding ${te}`);
      const parts = [];
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p);
        if (lineEnd < 0) return { responses, rest: buf.length - at };
        const sizeText = buf.subarray(p, lineEnd).toString('latin1');
        if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw new Error(`bad chunk size line ${JSON.stringify(sizeText)}`);
        const size = parseInt(sizeText, 16);
        p = lineEnd + 2;
        if (size === 0) {
          if (buf.length < p + 2) return { responses, rest: buf.length - at };
          if (buf[p] !== 13 || buf[p + 1] !== 10) throw new Error('chunked terminator not followed by CRLF');
          p += 2;
          break;
        }
        if (buf.length < p + size + 2) return { responses, rest: buf.length - at };
        parts.push(buf.subarray(p, p + size));
        if (buf[p + size] !== 13 || buf[p + size + 1] !== 10) throw new Error('chunk data not followed by CRLF');
        p += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new Error(`bad content-length ${cl}`);
      const n = Number(cl);
      if (buf.length < p + n) return { responses, rest: buf.length - at };
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      throw new Error(`response ${status} without framing`);
    }
    responses.push({ status, headers, body: body.toString('utf8') });
    at = p;
  }
}

function checkResponse(res, api) {
  assert.ok(res.headers['x-request-id'], 'x-request-id on every response');
  const type = res.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    const j = JSON.parse(res.body);
    if (res.status >= 400) {
      if (api === 'anthropic') {
        assert.equal(j.type, 'error', `Anthropic error shape: ${res.body.slice(0, 300)}`);
        assert.equal(typeof j.error?.type, 'string');
        assert.equal(typeof j.error?.message, 'string');
      } else {
        assert.equal(typeof j.error?.message, 'string', `OpenAI error shape: ${res.body.slice(0, 300)}`);
        assert.equal(typeof j.error?.type, 'string');
      }
    }
  } else if (type.startsWith('text/event-stream')) {
    for (const line of res.body.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data !== '[DONE]') JSON.parse(data);
    }
  }
}

// ---- a raw client -------------------------------------------------------------------------------

const ENDINGS = ['wait', 'wait', 'reset', 'halfclose', 'noread', 'slowread'];

// One connection: n pipelined requests, then one of the endings. Resolves to a problem
// description, or null.
// A lenient session (started as the drain begins) may be refused or cut without an answer.
function rawSession(port, r, stats, lenient = false) {
  const n = 1 + Math.floor(r() ** 3 * 200);
  const reqs = Array.from({ length: n }, () => makeRequest(r));
  const ending = pick(r, ENDINGS);
  const delay = r() < 0.4 ? 0 : 1 + Math.floor(r() * 10); // 0: end in the same tick as the last write
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const started = Date.now();
    const chunks = [];
    let received = 0;
    let finished = false;
    let cut = false; // we ended the connection early: an unfinished response is expected
    const finish = (problem = null) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (!sock.destroyed) sock.destroy();
      const buf = Buffer.concat(chunks);
      let parsed;
      try {
        parsed = parseStrict(buf);
        parsed.responses.forEach((res, i) => checkResponse(res, reqs[i]?.api ?? 'openai'));
      } catch (e) {
        return resolve(`${ending} session of ${n} requests: ${e.message}`);
      }
      stats.responses += parsed.responses.length;
      if (ending === 'wait') stats.longestWaitMs = Math.max(stats.longestWaitMs, Date.now() - started);
      stats.sessions++;
      stats.endings[ending] = (stats.endings[ending] ?? 0) + 1;
      if (problem) return resolve(`${ending} session of ${n} requests: ${problem}`);
      if (parsed.responses.length > n) return resolve(`${parsed.responses.length} responses to ${n} requests`);
      const last = parsed.responses.at(-1);
      if (!cut && !lenient && parsed.responses.length < n && last?.headers.connection !== 'close')
        return resolve(`waited for ${n} responses, got ${parsed.responses.length} and the connection ${sock.closedByPeer ? 'closed' : 'stalled'}`);
      resolve(null);
    };
    // Time to answer everything: a retried 429 or 5xx waits for its Retry-After or a backoff.
    const allowMs = 10000 + 100 * n;
    const deadline = setTimeout(
      () => finish(ending === 'wait' && !lenient ? `no complete answer within ${allowMs} ms` : null), allowMs);
    sock.on('data', (d) => {
      chunks.push(d);
      received += d.length;
      if (ending === 'wait' && d.at(-1) === 10 && parseStrictCount(chunks) >= n) finish();
    });
    sock.on('error', () => { if (ending === 'wait') sock.closedByPeer = true; });
    sock.on('close', () => { sock.closedByPeer = true; finish(); });
    sock.on('connect', async () => {
      // Pipelined, in a few writes so requests straddle reads.
      const all = reqs.map((q) => q.bytes).join('');
      const writes = 1 + Math.floor(r() * 4);
      const step = Math.ceil(all.length / writes);
      for (let i = 0; i < all.length && !sock.destroyed; i += step) sock.write(all.slice(i, i + step));
      if (ending === 'noread' || ending === 'slowread') sock.pause();
      if (delay) await sleep(delay);
      if (sock.destroyed) return;
      switch (ending) {
        case 'reset': cut = true; sock.resetAndDestroy(); finish(); break;
        case 'halfclose': cut = true; sock.end(); break; // the server may answer or give up
        case 'noread': cut = true; await sleep(200 + delay * 50); sock.resetAndDestroy(); finish(); break;
        case 'slowread':
          cut = true;
          for (let i = 0; i < 20 && !sock.destroyed; i++) { sock.resume(); await sleep(1); sock.pause(); await sleep(20); }
          sock.resume();
          await sleep(50);
          sock.end();
          break;
        default: break; // wait: the data handler finishes when all answers are in
      }
    });
  });
}

// Counts whole responses so far (cheap enough: sessions are small).
function parseStrictCount(chunks) {
  try { return parseStrict(Buffer.concat(chunks)).responses.length; } catch { return Infinity; }
}

// ---- an SDK client ------------------------------------------------------------------------------

async function sdkSession(gw, r, stats) {
  const openai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'chaos', maxRetries: 0, timeout: 15000 });
  const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'chaos', maxRetries: 0, timeout: 15000 });
  const kind = pick(r, ['openai', 'openai-stream', 'openai-cancel', 'anthropic', 'anthropic-stream']);
  const fault = pick(r, FAULTS);
  const content = `sdk ${kind}${fault ? ` [[mock:${fault}]]` : ''}`;
  const controller = new AbortController();
  const cancelAfter = kind === 'openai-cancel' ? Math.floor(r() * 4) : -1;
  stats.sdk++;
  try {
    if (kind === 'openai') {
      const c = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content }] });
      assert.equal(typeof c.choices[0].message.content, 'string');
    } else if (kind === 'anthropic') {
      const m = await anthropic.messages.create({ model: 'mock-model', max_tokens: 64, messages: [{ role: 'user', content }] });
      assert.equal(m.type, 'message');
    } else if (kind === 'anthropic-stream') {
      const s = anthropic.messages.stream({ model: 'mock-model', max_tokens: 64, messages: [{ role: 'user', content }] });
      await s.finalMessage();
    } else {
      const s = await openai.chat.completions.create(
        { model: 'mock-model', stream: true, messages: [{ role: 'user', content: `${content} [[mock:words=30]]` }] },
        { signal: controller.signal });
      let i = 0;
      for await (const chunk of s) {
        assert.ok(Array.isArray(chunk.choices));
        if (i++ === cancelAfter) { controller.abort(); break; }
      }
    }
    return null;
  } catch (e) {
    if (controller.signal.aborted) return null;
    if (e instanceof OpenAI.APIError && !(e instanceof OpenAI.APIConnectionError)) return null;
    if (e instanceof Anthropic.APIError && !(e instanceof Anthropic.APIConnectionError)) return null;
    return `SDK ${kind} with [${fault}]: ${e.constructor.name}: ${e.message}`;
  }
}

// ---- /healthz on fresh connections, all along ---------------------------------------------------

function healthOnce(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); resolve('no answer within 3 s'); }, 3000);
    sock.on('connect', () => sock.write('GET /healthz HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n'));
    sock.on('data', (d) => { data += d; });
    sock.on('error', (e) => { clearTimeout(timer); resolve(`error ${e.code}`); });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(/^HTTP\/1\.1 200 /.test(data) ? null : `answer: ${JSON.stringify(data.slice(0, 120))}`);
    });
  });
}

// ---- the test -----------------------------------------------------------------------------------

test(`chaos: misbehaving clients and a faulty provider (CHAOS_SEED=${SEED})`, { timeout: TRAFFIC_MS + 60000 }, async (t) => {
  t.diagnostic(`CHAOS_SEED=${SEED} CHAOS_MS=${TRAFFIC_MS}`);
  console.log(`# chaos: CHAOS_SEED=${SEED} CHAOS_MS=${TRAFFIC_MS}`);
  const mock = await startMock();
  const gw = await startGateway(gatewayConfig(mock.port));
  const problems = [];
  const note = (p) => { if (p && problems.length < 20) problems.push(p); };
  const stats = { sessions: 0, responses: 0, sdk: 0, health: 0, endings: {}, longestWaitMs: 0 };
  const start = Date.now();
  const end = start + TRAFFIC_MS;
  let diedAt = null;
  gw.proc.once('exit', () => { diedAt = Date.now() - start; });
  const alive = () => Date.now() < end && gw.proc.exitCode === null && gw.proc.signalCode === null;
  const root = rng(SEED);
  const streams = Array.from({ length: RAW_CLIENTS + SDK_CLIENTS }, () => rng(Math.floor(root() * 2 ** 31)));
  try {
    const raw = streams.slice(0, RAW_CLIENTS).map(async (r) => {
      while (alive()) note(await rawSession(gw.port, r, stats));
    });
    const sdk = streams.slice(RAW_CLIENTS).map(async (r) => {
      while (alive()) note(await sdkSession(gw, r, stats));
    });
    const health = (async () => {
      while (alive()) {
        const p = await healthOnce(gw.port);
        stats.health++;
        if (p) note(`/healthz: ${p}`);
        await sleep(200);
      }
    })();
    await Promise.all([...raw, ...sdk, health]);

    // Some traffic in flight when SIGTERM comes: streams that take a while, then the drain.
    const late = Array.from({ length: 4 }, (_, i) => rawSession(gw.port, rng(SEED + i), stats, true));
    await sleep(20);
    const report = `(CHAOS_SEED=${SEED}, after ${((diedAt ?? Date.now() - start) / 1000).toFixed(1)} s of traffic):\n` +
      gw.stderr().slice(-6000);
    assert.ok(!SANITIZER_RE.test(gw.stderr()), `sanitizer report ${report}`);
    assert.ok(gw.proc.exitCode === null && gw.proc.signalCode === null,
      `aigw died (exit ${gw.proc.exitCode}, signal ${gw.proc.signalCode}) ${report}`);
    await gw.stop(); // SIGTERM: exit 0 after the drain, nothing from the sanitizers
    await Promise.all(late);
  } finally {
    if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL');
    await mock.stop();
  }
  console.log(`# chaos: ${stats.sessions} raw sessions (${JSON.stringify(stats.endings)}), ${stats.responses} responses, ` +
    `${stats.sdk} SDK calls, ${stats.health} health checks; longest complete session ${stats.longestWaitMs} ms`);
  assert.deepEqual(problems, [], `CHAOS_SEED=${SEED}`);
  assert.ok(stats.sessions > 20 && stats.health > 10, 'the test ran enough traffic to mean something');
});
