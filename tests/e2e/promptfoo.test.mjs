// promptfoo.test.mjs — examples/promptfoo run as its README says, against aigw-mock: the two
// versions of the `support` template written through the admin API from the example's own
// files, promptfoo (pinned in examples/promptfoo/package.json, installed by scripts/deps.sh
// --test) evaluating both through aigw — promptfoo's OpenAI provider with x-aigw-prompt and its
// HTTP provider on /v1/prompts/{id}/completions — and its JSON results checked: every version
// through both providers, the mock's exact answers, is-json failing on version 1 only (the
// comparison the example makes), a planted test whose icontains must fail on both versions, and
// aigw's per-version report counting the requests promptfoo made. promptfoo runs with its home
// in a temporary directory, telemetry, update checks, sharing and remote generation off, and
// examples/promptfoo/loopback-only.cjs preloaded, so it reaches 127.0.0.1 and nothing else; a
// case below checks that guard on its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMock, startGateway, eventually } from './harness.mjs';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'promptfoo');
const PROMPTFOO = join(EXAMPLE, 'node_modules', '.bin', 'promptfoo');
const GUARD = join(EXAMPLE, 'loopback-only.cjs');
const MASTER = 'test-master-key-promptfoo-0123456789abcdef';
const EVAL_MS = 90000;

let mock, gw, dir, userKey;

// Runs a command with a bounded time; resolves {code, stdout, stderr}.
function run(cmd, args, { env, cwd, ms }) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} did not finish within ${ms} ms; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-2000)}`));
    }, ms);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? signal, stdout, stderr }); });
  });
}

// The environment promptfoo runs in: nothing of this machine's own promptfoo set-up, no
// telemetry, no update check, no sharing, no remote generation, the guard preloaded.
function promptfooEnv(extra = {}) {
  const env = {};
  for (const k of ['PATH', 'LANG', 'TZ']) if (process.env[k]) env[k] = process.env[k];
  return {
    ...env,
    HOME: join(dir, 'home'),
    PROMPTFOO_CONFIG_DIR: join(dir, 'home', '.promptfoo'),
    PROMPTFOO_DISABLE_TELEMETRY: '1',
    PROMPTFOO_DISABLE_UPDATE: '1',
    PROMPTFOO_DISABLE_SHARING: '1',
    PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION: '1',
    PROMPTFOO_DISABLE_ERROR_LOG: '1',
    PROMPTFOO_REQUEST_BACKOFF_MS: '50',
    NO_COLOR: '1',
    NODE_OPTIONS: `--require ${GUARD}`,
    AIGW_LOOPBACK_LOG: join(dir, 'refused.log'),
    ...extra,
  };
}

async function admin(method, path, body) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, body: json, text };
}

before(async () => {
  assert.ok(existsSync(PROMPTFOO),
    'promptfoo is not installed in examples/promptfoo: run scripts/deps.sh --test (or npm ci there)');
  dir = mkdtempSync(join(tmpdir(), 'aigw-promptfoo-'));
  mock = await startMock();
  // the example's own gateway config, on free ports (as readme.test does with 8080 and 9090)
  const config = readFileSync(join(EXAMPLE, 'aigw.yaml'), 'utf8')
    .replace('127.0.0.1:8080', '127.0.0.1:0')
    .replace('127.0.0.1:9090', `127.0.0.1:${mock.port}`);
  assert.notEqual(config, readFileSync(join(EXAMPLE, 'aigw.yaml'), 'utf8'));
  process.env.AIGW_MASTER_KEY = MASTER;
  gw = await startGateway(config);
  // the two versions, from the example's files, as its README writes them
  for (const v of [1, 2]) {
    const r = await admin('POST', '/admin/prompts', JSON.parse(readFileSync(join(EXAMPLE, 'templates', `support-v${v}.json`), 'utf8')));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.version, v);
  }
  const k = await admin('POST', '/admin/keys', { key_alias: 'promptfoo' });
  assert.equal(k.status, 200, k.text);
  userKey = k.body.key;
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  delete process.env.AIGW_MASTER_KEY;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('promptfoo evaluates support@1 and support@2 through aigw: both providers, the expected passes and failures, the report per version', async (t) => {
  // the example's promptfoo config, pointed at this gateway, with one planted test whose
  // order number is not the one asked about: its icontains must fail on every provider
  const original = readFileSync(join(EXAMPLE, 'promptfooconfig.yaml'), 'utf8');
  const config = original.replaceAll('127.0.0.1:8080', `127.0.0.1:${gw.port}`) +
    "  - vars: {order: '4321', question: 'Where is order 1234?'}\n";
  assert.doesNotMatch(config, /:8080/);
  writeFileSync(join(dir, 'promptfooconfig.yaml'), config);
  copyFileSync(join(EXAMPLE, 'prompt.js'), join(dir, 'prompt.js'));
  const out = join(dir, 'results.json');
  const started = Date.now();
  const r = await run(PROMPTFOO, ['eval', '-c', 'promptfooconfig.yaml', '--no-progress-bar',
    '--no-table', '-o', out], { cwd: dir, env: promptfooEnv({ AIGW_KEY: userKey }), ms: EVAL_MS });
  t.diagnostic(`promptfoo eval took ${Date.now() - started} ms`);
  // promptfoo's exit code when a test failed (PROMPTFOO_FAILED_TEST_EXIT_CODE's default)
  assert.equal(r.code, 100, `promptfoo exit code; stdout: ${r.stdout.slice(-3000)} stderr: ${r.stderr.slice(-3000)}`);
  const results = JSON.parse(readFileSync(out, 'utf8')).results;
  assert.equal(results.results.length, 16, '4 tests × 4 providers');
  assert.deepEqual({ ...results.stats, tokenUsage: undefined }, { successes: 6, failures: 10, errors: 0, tokenUsage: undefined });

  const questions = ['Where is order 1234?', 'Has order 5678 shipped yet?', 'Can I still change the address on order 9012?'];
  const byProvider = {};
  for (const row of results.results) (byProvider[row.provider.label] ??= []).push(row);
  assert.deepEqual(Object.keys(byProvider).sort(), ['chat support@1', 'chat support@2', 'template support@1', 'template support@2']);
  for (const [label, rows] of Object.entries(byProvider)) {
    const version = Number(label.slice(-1));
    assert.equal(rows.length, 4, label);
    for (const row of rows) {
      assert.equal(row.response?.error, undefined, `${label}: ${row.response?.error}`);
      // the mock's answer to the template's user turn, rendered by aigw from the variables;
      // version 2's response_format makes it a JSON object
      const want = `mock reply to: ${row.vars.question}`;
      if (version === 1) assert.equal(row.response.output, want, label);
      else assert.deepEqual(JSON.parse(row.response.output), { reply: want }, label);
      const verdict = Object.fromEntries(row.gradingResult.componentResults.map((c) => [c.assertion.type, c.pass]));
      const planted = row.vars.order === '4321';
      assert.deepEqual(verdict, { 'is-json': version === 2, icontains: !planted, javascript: true },
        `${label} ${row.vars.question} (order ${row.vars.order})`);
      assert.equal(row.success, version === 2 && !planted, `${label} ${row.vars.order}`);
    }
    assert.deepEqual(rows.filter((x) => x.vars.order !== '4321').map((x) => x.vars.question).sort(), [...questions].sort());
  }
  // a failure says why: the schema check on version 1, the missing order number on the planted test
  const v1 = byProvider['chat support@1'].find((x) => x.vars.order === '1234');
  assert.match(v1.gradingResult.reason, /valid JSON/);
  const planted = byProvider['template support@2'].find((x) => x.vars.order === '4321');
  assert.match(planted.gradingResult.reason, /4321/);

  // what aigw sent on: the template rendered with the test's variables, version 2 asking for JSON
  const sent = (await mock.requests('/v1/chat/completions')).map((x) => JSON.parse(x.body));
  assert.equal(sent.length, 16);
  for (const body of sent) {
    assert.equal(body.model, 'mock-model');
    assert.equal(body.messages.length, 2);
    assert.match(body.messages[0].content, /^You are Acme's support assistant\. /);
    assert.ok(questions.includes(body.messages[1].content), body.messages[1].content);
    assert.equal(body.variables, undefined, 'the variables stay in aigw');
  }
  assert.equal(sent.filter((b) => b.response_format?.type === 'json_object').length, 8);

  // aigw's report per version counts the requests promptfoo made: 4 tests × 2 providers each
  let report;
  await eventually(async () => {
    report = await admin('GET', '/admin/prompts/support/report');
    return report.status === 200 && report.body.versions.reduce((a, v) => a + v.requests, 0) >= 16;
  }, 10000, 'the request log reaches the store');
  assert.deepEqual(report.body.versions.map((v) => [v.version, v.requests, v.errors]), [[1, 8, 0], [2, 8, 0]]);
  for (const v of report.body.versions) assert.ok(v.tokens.prompt > 0 && v.tokens.completion > 0, JSON.stringify(v));

  // whatever promptfoo tried beyond 127.0.0.1 was refused by the guard before it left, and it
  // was only promptfoo's own telemetry (0.118 sends a "telemetry disabled" event): no provider
  // was called past aigw
  const refused = existsSync(join(dir, 'refused.log')) ? readFileSync(join(dir, 'refused.log'), 'utf8').trim() : '';
  if (refused) t.diagnostic(`refused: ${refused.split('\n').join(', ')}`);
  for (const line of refused ? refused.split('\n') : [])
    assert.match(line, /^(connect|lookup) [a-z0-9.-]+\.promptfoo\.(app|dev)$/, line);
});

test('loopback-only.cjs: a connection beyond 127.0.0.1 is refused before any lookup, loopback passes', async () => {
  const script = `
    const dns = require('node:dns'), net = require('node:net');
    const out = {};
    fetch('http://example.invalid/').then(() => { out.name = 'reached'; }, (e) => { out.name = String(e.cause?.code ?? e.code); })
      .then(() => fetch('http://192.0.2.1/').then(() => { out.address = 'reached'; }, (e) => { out.address = String(e.cause?.code ?? e.code); }))
      .then(() => new Promise((res) => net.connect(443, '198.51.100.7').on('connect', () => { out.socket = 'reached'; res(); })
        .on('error', (e) => { out.socket = e.code; res(); })))
      .then(() => new Promise((res) => dns.lookup('example.invalid', (e) => { out.lookup = e?.code ?? 'resolved'; res(); })))
      .then(() => fetch(process.argv[1] + '/healthz')).then((r) => { out.loopback = r.status; })
      .finally(() => console.log(JSON.stringify(out)));`;
  const r = await run(process.execPath, ['-e', script, gw.url], {
    env: { PATH: process.env.PATH, NODE_OPTIONS: `--require ${GUARD}`, AIGW_LOOPBACK_LOG: join(dir, 'guard.log') }, ms: 20000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { name: 'ECONNREFUSED', address: 'ECONNREFUSED', socket: 'ECONNREFUSED', lookup: 'ECONNREFUSED', loopback: 200 });
  assert.deepEqual(readFileSync(join(dir, 'guard.log'), 'utf8').trim().split('\n'),
    ['connect example.invalid', 'connect 192.0.2.1', 'connect 198.51.100.7', 'lookup example.invalid']);
});
