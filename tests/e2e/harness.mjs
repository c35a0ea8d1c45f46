// harness.mjs — starts the real binaries (aigw-mock, aigw) on loopback for the e2e tests.
// Every wait is bounded; every process is stopped by the test that started it, and aigw must
// exit 0 on SIGTERM with nothing from the sanitizers on stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import assert from 'node:assert/strict';

export const AIGW_BIN = process.env.AIGW_BIN;
export const MOCK_BIN = process.env.AIGW_MOCK_BIN;
if (!AIGW_BIN || !MOCK_BIN) throw new Error('set AIGW_BIN and AIGW_MOCK_BIN (scripts/e2e.sh does)');

const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

function waitForLine(stream, re, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${re} within ${ms} ms; got: ${buf}`)), ms);
    const onData = (d) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) { clearTimeout(timer); stream.off('data', onData); resolve(m); }
    };
    stream.on('data', onData);
  });
}

function waitExit(proc, ms) {
  return new Promise((resolve, reject) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const timer = setTimeout(() => reject(new Error(`process ${proc.pid} did not exit within ${ms} ms`)), ms);
    proc.once('exit', (code, signal) => { clearTimeout(timer); resolve(code ?? signal); });
  });
}

export async function startMock() {
  const proc = spawn(MOCK_BIN, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const m = await waitForLine(proc.stdout, /aigw-mock listening on 127\.0\.0\.1:(\d+)/, 'aigw-mock');
  const port = Number(m[1]);
  const url = `http://127.0.0.1:${port}`;
  return {
    port, url,
    async stats() { return (await fetch(`${url}/__stats`)).json(); },
    async reset() { await fetch(`${url}/__reset`, { method: 'POST' }); },
    // What the mock received (GET /__requests), oldest first; `path` keeps those whose URL
    // path (without the query) equals it.
    async requests(path) {
      const all = (await (await fetch(`${url}/__requests`)).json()).requests;
      return path ? all.filter((r) => r.url.split('?')[0] === path) : all;
    },
    async stop() {
      proc.kill('SIGTERM');
      const code = await waitExit(proc, 10000);
      assert.equal(code, 0, `aigw-mock exit code; stderr: ${stderr}`);
      assert.doesNotMatch(stderr, SANITIZER_RE);
    },
  };
}

export function gatewayConfig(mockPort, extra = '') {
  return `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
limits:
  max_body_bytes: 1MiB
  max_header_bytes: 16k
timeouts:
  header_read: 2s
  keepalive_idle: 5s
  drain: 5s
providers:
  - name: mock
    type: openai
    base_url: http://127.0.0.1:${mockPort}/v1
    api_key: \${AIGW_TEST_KEY}
    timeouts: {connect: 2s, first_byte: 3s, idle: 2s}
    models: [mock-model, mock-embed]
  - name: mock-strict
    type: openai
    base_url: http://127.0.0.1:${mockPort}/v1
    timeouts: {connect: 1s, first_byte: 400ms, idle: 400ms}
    models: [strict-model]
models:
  - name: fast
    provider: mock
    model: mock-small
${extra}`;
}

// A temporary directory for a test's own files (a catalog, a log), removed when the test file's
// process exits — even when an assertion failed on the way.
const scratchDirs = [];
process.on('exit', () => { for (const d of scratchDirs) rmSync(d, { recursive: true, force: true }); });
export function scratchDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

// bin: another build of aigw (the test-stages one); AIGW_BIN by default. args: more arguments
// for `aigw serve -c FILE`. files: {name: text} written beside the config (which may name them
// by their relative path: aigw reads them from the config's folder). relative: aigw runs in
// that folder as `aigw serve -c aigw.yaml`, so what it shows of its config's path (GET
// /admin/config, its reload messages) is `aigw.yaml`, nothing of this machine's.
export async function startGateway(configText, { bin = AIGW_BIN, args = [], files = {}, relative = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-e2e-'));
  const file = join(dir, 'aigw.yaml');
  writeFileSync(file, configText);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const proc = spawn(bin, ['serve', '-c', relative ? 'aigw.yaml' : file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: relative ? dir : undefined,
    env: { ...process.env, AIGW_TEST_KEY: 'test-key-123' },
  });
  let stderr = '';
  const logLines = [];
  let partial = '';
  proc.stdout.on('data', (d) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) if (l.trim()) logLines.push(JSON.parse(l));
  });
  proc.stderr.on('data', (d) => { stderr += d; });
  const m = await waitForLine(proc.stderr, /listening on 127\.0\.0\.1:(\d+)/, 'aigw');
  const port = Number(m[1]);
  return {
    port, proc, logLines, pid: proc.pid, file,
    baseURL: `http://127.0.0.1:${port}/v1`,
    url: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    async waitLog(pred, ms = 3000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const hit = logLines.find(pred);
        if (hit) return hit;
        await sleep(25);
      }
      throw new Error(`no access-log line matched within ${ms} ms; have ${JSON.stringify(logLines.slice(-5))}`);
    },
    // Stops aigw and removes its temporary directory (the config file and what the test put
    // beside it).
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const code = await waitExit(proc, 15000);
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 0, `aigw exit code; stderr: ${stderr}`);
      assert.doesNotMatch(stderr, SANITIZER_RE, 'sanitizer report on aigw stderr');
    },
  };
}

// A recorded request's header values by lower-cased name (all of them, in order).
export function headerValues(record, name) {
  return record.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value; bounded in time.
export async function eventually(fn, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(25);
  }
  throw new Error(`${what} not reached within ${ms} ms (last: ${JSON.stringify(last)})`);
}

// Sends raw bytes on one connection and collects the reply until the server closes it or
// `until(text)` is true. Bounded by ms.
export function rawExchange(port, chunks, { until, ms = 5000, gapMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`raw exchange timed out; got: ${data}`)); }, ms);
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (until && until(data)) { clearTimeout(timer); sock.destroy(); resolve(data); }
    });
    sock.on('error', (e) => { clearTimeout(timer); resolve(data || `ERROR ${e.code}`); });
    sock.on('close', () => { clearTimeout(timer); resolve(data); });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'function') await c(sock, () => data);
        else sock.write(c);
        if (gapMs) await sleep(gapMs);
      }
    });
  });
}

// Splits a raw HTTP/1.1 byte stream into responses: [{status, headers, body}] (Content-Length
// or chunked bodies).
export function parseResponses(raw) {
  const out = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.slice(0, headEnd).split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const l of head.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    rest = rest.slice(headEnd + 4);
    if (status === 100) { out.push({ status, headers, body: '' }); continue; }
    let body = '';
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (rest.length < n) break; // not all of it has arrived yet
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else if (headers['transfer-encoding'] === 'chunked') {
      let complete = false;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        if (lineEnd < 0) break;
        const size = parseInt(rest.slice(0, lineEnd), 16);
        if (rest.length < lineEnd + 2 + size + 2) break;
        rest = rest.slice(lineEnd + 2);
        if (size === 0) { rest = rest.slice(2); complete = true; break; }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
      if (!complete) break;
    }
    out.push({ status, headers, body });
  }
  return out;
}

export function chatBody(text, extra = {}) {
  return { model: 'mock-model', messages: [{ role: 'user', content: text }], ...extra };
}
