// first-day.test.mjs — what someone trying aigw meets on the first day: a second gateway on a
// taken port, the command line's help and errors, the small endpoints a client lists models
// with, plain-decimal costs and the config's environment variables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock, startGateway, gatewayConfig, chatBody, headerValues } from './harness.mjs';

let mock;
const dirs = [];
before(async () => { mock = await startMock(); });
after(async () => {
  await mock?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// A config file in a temporary directory removed after the tests.
function configFile(text, name = 'aigw.yaml') {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-firstday-'));
  dirs.push(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

// Runs aigw to its end (bounded).
function aigw(args, opts = {}) {
  return spawnSync(AIGW_BIN, args, { encoding: 'utf8', timeout: 10000, ...opts });
}

test('a second aigw on a port another process listens on refuses to start', async () => {
  const gw = await startGateway(gatewayConfig(mock.port));
  try {
    const file = configFile(gatewayConfig(mock.port).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${gw.port}`));
    const r = aigw(['serve', '-c', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`aigw: listen: 127\\.0\\.0\\.1:${gw.port} is already in use \\(another aigw\\?\\)`));
    // The first one still answers.
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  } finally {
    await gw.stop();
  }
});

test('help: aigw --help, aigw help serve, aigw serve --help, aigw config --help', () => {
  let r = aigw(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /aigw serve \[-c FILE\] \[--listen HOST:PORT\]/);
  assert.match(r.stdout, /aigw config check FILE/);
  for (const args of [['help', 'serve'], ['serve', '--help'], ['serve', '-h']]) {
    r = aigw(args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /-c, --config FILE/);
    assert.match(r.stdout, /--listen HOST:PORT/);
  }
  for (const args of [['help', 'config'], ['config', '--help']]) {
    r = aigw(args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /usage: aigw config check FILE/);
  }
});

test('an unknown argument or command is named, exit 2', () => {
  let r = aigw(['serve', '--x']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /aigw: serve: unknown argument '--x'/);
  r = aigw(['serve', '-c']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /aigw: serve: missing FILE after '-c'/);
  r = aigw(['serve', '--listen', 'nope']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--listen wants HOST:PORT, not 'nope'/);
  r = aigw(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /aigw: unknown command 'frobnicate'/);
  r = aigw(['config', 'frob']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /aigw: config: unknown subcommand 'frob'/);
});

test('aigw serve with no -c and no ./aigw.yaml says where it looked and how to start', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'aigw-firstday-'));
  dirs.push(cwd);
  const r = aigw(['serve'], { cwd });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /looked for \.\/aigw\.yaml/);
  assert.match(r.stderr, /cp aigw\.example\.yaml aigw\.yaml/);
});

test('--listen overrides the file and a reload keeps it', async () => {
  // The file's port is taken (the mock's): only the override lets it start.
  const text = gatewayConfig(mock.port).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${mock.port}`);
  const gw = await startGateway(text, { args: ['--listen', '127.0.0.1:0'] });
  try {
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    writeFileSync(gw.file, text.replace('workers: 2', 'workers: 2\n# touched'));
    gw.proc.kill('SIGHUP');
    const end = Date.now() + 5000;
    while (!/config reloaded|reload refused/.test(gw.stderr()) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    assert.match(gw.stderr(), /config reloaded/);
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  } finally {
    await gw.stop();
  }
});

test('GET /v1/models/{id}, Anthropic\'s model list, and an unknown model\'s 404 naming what is served', async () => {
  const gw = await startGateway(gatewayConfig(mock.port));
  try {
    const openai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'any', maxRetries: 0 });
    const m = await openai.models.retrieve('mock-model');
    assert.deepEqual({ ...m }, { id: 'mock-model', object: 'model', created: 0, owned_by: 'mock' });
    let r = await fetch(`${gw.baseURL}/models/fast`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).id, 'fast');
    r = await fetch(`${gw.baseURL}/models/no-such-model`);
    assert.equal(r.status, 404);
    let e = (await r.json()).error;
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.type, 'invalid_request_error');
    assert.match(e.message, /The model `no-such-model` does not exist/);
    r = await fetch(`${gw.baseURL}/models/mock-model`, { method: 'POST' });
    assert.equal(r.status, 405);

    // Anthropic's shape for a client that sends anthropic-version (its SDK does).
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'any', maxRetries: 0 });
    const page = await anthropic.models.list();
    const ids = page.data.map((d) => d.id);
    assert.ok(ids.includes('mock-model') && ids.includes('fast'), ids.join());
    assert.deepEqual(page.data.find((d) => d.id === 'mock-model'),
      { type: 'model', id: 'mock-model', display_name: 'mock-model', created_at: '1970-01-01T00:00:00Z' });
    r = await fetch(`${gw.baseURL}/models`, { headers: { 'anthropic-version': '2023-06-01' } });
    const list = await r.json();
    assert.equal(list.has_more, false);
    assert.equal(list.first_id, list.data[0].id);
    assert.equal(list.last_id, list.data.at(-1).id);
    assert.equal(list.object, undefined);
    const one = await anthropic.models.retrieve('strict-model');
    assert.equal(one.id, 'strict-model');
    assert.equal(one.type, 'model');
    r = await fetch(`${gw.baseURL}/models/nope`, { headers: { 'anthropic-version': '2023-06-01' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('request-id'), r.headers.get('x-request-id'), 'Anthropic\'s SDKs read request-id');
    assert.ok(r.headers.get('request-id'));
    const body = await r.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'not_found_error');

    // A chat request for an unknown model: the 404 names a few served models and /v1/models.
    r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('hi', { model: 'mock-modle' })),
    });
    assert.equal(r.status, 404);
    e = (await r.json()).error;
    assert.match(e.message, /The model `mock-modle` does not exist/);
    assert.match(e.message, /Served here: .*mock-model/);
    assert.match(e.message, /GET \/v1\/models/);
  } finally {
    await gw.stop();
  }
});

test('the 404 lists at most 5 served names, each and all bounded', async () => {
  const many = Array.from({ length: 12 }, (_, i) => `m${i}-${'x'.repeat(100)}`);
  const gw = await startGateway(gatewayConfig(mock.port).replace('models: [strict-model]', `models: [${many.join(', ')}]`));
  try {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('hi', { model: 'unknown' })),
    });
    assert.equal(r.status, 404);
    const msg = (await r.json()).error.message;
    const listed = msg.slice(msg.indexOf('Served here: ') + 13, msg.indexOf(' (GET /v1/models'));
    const names = listed.split(', ');
    assert.ok(names.length <= 6, listed); // five names and "…"
    assert.equal(names.at(-1), '…');
    assert.ok(Buffer.byteLength(listed) <= 310, `${Buffer.byteLength(listed)} bytes`);
    for (const n of names) assert.ok(Buffer.byteLength(n) <= 63, n);
  } finally {
    await gw.stop();
  }
});

test('cost as a plain decimal: header, access log and the stream\'s usage chunk', async () => {
  const catalog = configFile(JSON.stringify({
    models: [{ provider: 'openai', model: 'm-priced', max_output: 1000, input: 1, output: 1, taken: '2026-11' }],
  }), 'prices.json');
  const log = join(catalog, '..', 'access.log');
  const text = gatewayConfig(mock.port).replace('access_log: stdout', `access_log: ${log}\ncatalog: ${catalog}`) +
    `  - name: priced\n    provider: mock\n    model: m-priced\n`;
  const gw = await startGateway(text);
  try {
    // 2 prompt + 5 completion tokens at $1 per million: 7e-06, written 0.000007.
    let r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('Hello there', { model: 'priced' })),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-aigw-cost-usd'), '0.000007');
    r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('Hello there', { model: 'priced', stream: true, stream_options: { include_usage: true } })),
    });
    const sse = await r.text();
    assert.match(sse, /"aigw":\{"cost_usd":0\.000007\}/);
    let lines = '';
    const end = Date.now() + 3000;
    while ((lines.match(/cost_usd/g) || []).length < 2 && Date.now() < end) {
      try { lines = readFileSync(log, 'utf8'); } catch { /* not yet written */ }
      await new Promise((res) => setTimeout(res, 25));
    }
    assert.equal((lines.match(/"cost_usd":0\.000007[,}]/g) || []).length, 2, lines);
    assert.doesNotMatch(lines, /e-0/);
  } finally {
    await gw.stop();
  }
});

test('config check warns (file:line) for an unset api_key variable; base_url\'s is an error', () => {
  const env = { ...process.env };
  delete env.AIGW_FD_UNSET;
  const file = configFile(gatewayConfig(mock.port).replace('${AIGW_TEST_KEY}', '${AIGW_FD_UNSET}'));
  let r = aigw(['config', 'check', file], { env });
  assert.equal(r.status, 0, r.stderr);
  const line = gatewayConfig(mock.port).split('\n').findIndex((l) => l.includes('api_key:')) + 1;
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}: warning: provider mock: api_key: AIGW_FD_UNSET is not set`));
  for (const spelling of ['os.environ/AIGW_FD_UNSET', '$AIGW_FD_UNSET']) {
    r = aigw(['config', 'check', configFile(gatewayConfig(mock.port).replace('${AIGW_TEST_KEY}', spelling))], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /api_key: AIGW_FD_UNSET is not set/, spelling);
  }
  const bad = configFile(gatewayConfig(mock.port).replace(`base_url: http://127.0.0.1:${mock.port}/v1\n    api_key`,
    'base_url: ${AIGW_FD_UNSET}/v1\n    api_key'));
  r = aigw(['config', 'check', bad], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /:\d+: base_url: environment variable AIGW_FD_UNSET is not set/);
});

test('api_key: os.environ/NAME and $NAME read the variable, like ${NAME}', async () => {
  for (const spelling of ['os.environ/AIGW_TEST_KEY', '$AIGW_TEST_KEY']) {
    const text = gatewayConfig(mock.port).replace('${AIGW_TEST_KEY}', spelling)
      .replace(`base_url: http://127.0.0.1:${mock.port}/v1\n    api_key`, 'base_url: os.environ/AIGW_FD_BASE\n    api_key');
    process.env.AIGW_FD_BASE = `http://127.0.0.1:${mock.port}/v1`;
    const gw = await startGateway(text);
    delete process.env.AIGW_FD_BASE;
    try {
      await mock.reset();
      const r = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer client-key' },
        body: JSON.stringify(chatBody(spelling)),
      });
      assert.equal(r.status, 200, spelling);
      const [rec] = await mock.requests('/v1/chat/completions');
      assert.deepEqual(headerValues(rec, 'authorization'), ['Bearer test-key-123'], spelling);
      assert.doesNotMatch(gw.stderr(), /is not set/);
    } finally {
      await gw.stop();
    }
  }
});

test('the harness removes a gateway\'s temporary directory when it stops it', async () => {
  const gw = await startGateway(gatewayConfig(mock.port));
  const dir = dirname(gw.file);
  assert.ok(existsSync(dir));
  await gw.stop();
  assert.ok(!existsSync(dir), `${dir} is still there`);
});

test('the example config\'s commented providers load where they are, once uncommented', () => {
  const repo = join(dirname(AIGW_BIN), '..');
  const text = readFileSync(join(repo, 'aigw.example.yaml'), 'utf8');
  const commented = text.match(/^ {2}# - \{name: \w+, type: .*$/gm) ?? [];
  assert.deepEqual(commented.map((l) => l.match(/name: (\w+)/)[1]), ['anthropic', 'gemini', 'groq']);
  const uncommented = text.replace(/^ {2}# - \{name:/gm, '  - {name:');
  const file = configFile(uncommented);
  for (const f of ['aigw.example.catalog.json']) {
    if (existsSync(join(repo, f))) writeFileSync(join(dirname(file), f), readFileSync(join(repo, f)));
  }
  const env = { ...process.env, OPENAI_API_KEY: 'sk-x', ANTHROPIC_API_KEY: 'sk-ant-x', GEMINI_API_KEY: 'g-x', GROQ_API_KEY: 'gsk-x' };
  const r = aigw(['config', 'check', file], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'no warnings with every variable set');
  assert.match(r.stdout, /ok \(\d+ providers/);
});

test('make install DESTDIR=… PREFIX=/usr puts the binary and the example config in place; uninstall removes them', () => {
  const root = join(dirname(new URL(import.meta.url).pathname), '..', '..');
  const dest = mkdtempSync(join(tmpdir(), 'aigw-install-'));
  dirs.push(dest);
  // BUILD: the build that is under test, already up to date (nothing is compiled here).
  const make = (target) => spawnSync('make', ['-s', target, `DESTDIR=${dest}`, 'PREFIX=/usr', `BUILD=${dirname(AIGW_BIN)}`],
    { cwd: root, encoding: 'utf8', timeout: 60000 });
  let r = make('install');
  assert.equal(r.status, 0, r.stderr);
  const bin = join(dest, 'usr', 'bin', 'aigw');
  const example = join(dest, 'usr', 'share', 'aigw', 'aigw.example.yaml');
  assert.ok(existsSync(bin), bin);
  assert.equal(readFileSync(example, 'utf8'), readFileSync(join(root, 'aigw.example.yaml'), 'utf8'));
  r = aigw(['version']);
  const installed = spawnSync(bin, ['version'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(installed.status, 0, installed.stderr);
  assert.equal(installed.stdout, r.stdout);
  // The embedded catalog: the installed binary checks the installed example without the tree.
  const check = spawnSync(bin, ['config', 'check', example], { encoding: 'utf8', timeout: 10000, cwd: dest });
  assert.equal(check.status, 0, check.stderr);
  r = make('uninstall');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(bin) && !existsSync(example));
  assert.ok(!existsSync(join(dest, 'usr', 'share', 'aigw')), 'the share directory is removed once empty');
});

test('the example config shows what the README says: resilient falls back visibly, costs show, Claude Code names answer', async () => {
  const repo = join(dirname(AIGW_BIN), '..');
  const text = readFileSync(join(repo, 'aigw.example.yaml'), 'utf8')
    .replace(/^listen: .*$/m, 'listen: 127.0.0.1:0')
    .replaceAll('127.0.0.1:9090', `127.0.0.1:${mock.port}`)
    .replace(/^catalog: \S+/m, `catalog: ${join(repo, 'aigw.example.catalog.json')}`)
    .replace(/^access_log: \S+/m, 'access_log: off');
  await mock.reset();
  const gw = await startGateway(text);
  try {
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer any' },
        body: JSON.stringify(chatBody(`resilient ${i}`, { model: 'resilient' })),
      });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      seen.push([r.headers.get('x-aigw-provider'), r.headers.get('x-aigw-route')]);
    }
    // the first target takes two requests per 10 s; after that the route falls back
    assert.deepEqual(seen.slice(0, 2), [['mock-limited', 'resilient/0'], ['mock-limited', 'resilient/0']]);
    assert.deepEqual(seen.slice(2), [['mock-anthropic', 'resilient/1'], ['mock-anthropic', 'resilient/1']]);

    const priced = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer any' },
      body: JSON.stringify(chatBody('what does it cost')),
    });
    await priced.arrayBuffer();
    assert.match(priced.headers.get('x-aigw-cost-usd') ?? '', /^0\.\d+$/, 'a plain decimal cost');

    // Claude Code's default model names reach the default route
    const claude = await new Anthropic({ baseURL: gw.url, apiKey: 'any', maxRetries: 0 }).messages.create({
      model: 'claude-sonnet-4-5', max_tokens: 32, messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(claude.type, 'message');
    assert.match(claude.content[0].text, /.+/);
  } finally {
    await gw.stop();
  }
});
