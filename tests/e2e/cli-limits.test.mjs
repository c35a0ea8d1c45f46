// cli-limits.test.mjs — `aigw config check`, the connection limit and the idle keep-alive
// timeout, each with a gateway of its own configuration.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { AIGW_BIN, startMock, startGateway, gatewayConfig, parseResponses, sleep, scratchDir } from './harness.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

test('aigw config check: ok for a good file, file:line and exit 1 for a bad one', () => {
  const dir = scratchDir('aigw-cli-');
  const good = join(dir, 'good.yaml');
  writeFileSync(good, gatewayConfig(9));
  let r = spawnSync(AIGW_BIN, ['config', 'check', good], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok \(2 providers, 4 models, listen 127\.0\.0\.1:0\)/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'workers: 2\nproviders:\n  - name: p\n    base_url: http://x/v1\n    modles: [m]\n');
  r = spawnSync(AIGW_BIN, ['config', 'check', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5: unknown key 'modles' in provider`));
  r = spawnSync(AIGW_BIN, ['serve', '-c', bad], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 1, 'serve refuses a bad config too');
});

test('aigw config check and serve report every mistake, file:line each, in file order, then exit 1', () => {
  const dir = scratchDir('aigw-cli-');
  const bad = join(dir, 'many.yaml');
  writeFileSync(bad, [
    'workers: 0',                                  // 1
    'providers:',                                  // 2
    '  - name: p',                                 // 3
    '    base_url: http://x/v1',                   // 4
    '    modles: [m]',                             // 5
    '  - {name: q, base_url: ftp://y, models: [n]}', // 6
    'models:',                                     // 7
    '  - {name: f, provider: nowhere}',            // 8
    'timeouts:',                                   // 9
    '  drain: 5 s',                                // 10
    '',
  ].join('\n'));
  const at = (line) => `aigw: ${bad}:${line}: `;
  const expected = [
    `${at(1)}'workers' must be between 1 and 256 (got 0)`,
    `${at(5)}unknown key 'modles' in provider`,
    `${at(6)}provider 'q': base_url must start with http:// or https://`,
    `${at(8)}model alias 'f' names provider 'nowhere', which is not defined`,
    `${at(10)}'drain': cannot read '5 s' as a duration`,
  ];
  for (const args of [['config', 'check', bad], ['serve', '-c', bad]]) {
    const r = spawnSync(AIGW_BIN, args, { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 1, args.join(' '));
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, expected.length, r.stderr);
    lines.forEach((l, i) => assert.ok(l.startsWith(expected[i]), `${args[0]}: '${l}' should start with '${expected[i]}'`));
  }
  // Past 50 mistakes, the rest is counted.
  const many = join(dir, 'sixty.yaml');
  writeFileSync(many, Array.from({ length: 60 }, (_, i) => `key${i}: 1\n`).join(''));
  const r = spawnSync(AIGW_BIN, ['config', 'check', many], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 51, r.stderr);
  assert.ok(lines[49].startsWith(`aigw: ${many}:50: unknown key 'key49'`), lines[49]);
  assert.equal(lines[50], 'aigw: and 10 more mistakes');
  // Providers' types, then routes and default_route (checked once the providers are right):
  // every mistake of each step, not only its first.
  const steps = join(dir, 'steps.yaml');
  const providers = (a, b) => ['providers:', `  - {name: a, type: ${a}, base_url: "http://x"}`, `  - {name: b, type: ${b}}`,
    '  - {name: c, base_url: "http://x", models: [m]}'];
  const routes = ['routes:', '  - {name: r1, strategy: {mode: fallback}, targets: []}',
    '  - {name: r2, strategy: {mode: bogus}, targets: [{provider: c}]}', 'default_route: nothing', ''];
  const check = (text) => {
    writeFileSync(steps, text.join('\n'));
    const res = spawnSync(AIGW_BIN, ['config', 'check', steps], { encoding: 'utf8' });
    assert.equal(res.status, 1);
    return res.stderr.trimEnd().split('\n').map((l) => l.replace(`aigw: ${steps}:`, ''));
  };
  let got = check([...providers('nosuch', 'azure'), ...routes]);
  assert.equal(got.length, 2, got.join('\n'));
  assert.match(got[0], /^2: unknown provider type 'nosuch'/);
  assert.match(got[1], /^3: provider 'b' \(type azure\) needs a 'base_url'/);
  got = check([...providers('openai', 'groq'), ...routes]);
  assert.deepEqual(got.map((l) => l.split(':')[0]), ['6', '7', '8'], got.join('\n'));
  assert.match(got[0], /route 'r1': targets/);
  assert.match(got[1], /route 'r2': strategy.mode/);
  assert.match(got[2], /default_route 'nothing' is neither/);
  rmSync(dir, { recursive: true, force: true });
});

function openConnection(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('connect', () => resolve({ sock: s, data: () => data, closed: new Promise((r) => s.on('close', r)) }));
    s.on('error', reject);
  });
}

test('over limits.max_connections a new connection gets 503 and is closed', async () => {
  const gw = await startGateway(gatewayConfig(mock.port).replace('workers: 2', 'workers: 1')
    .replace('max_header_bytes: 16k', 'max_header_bytes: 16k\n  max_connections: 2'));
  try {
    const a = await openConnection(gw.port);
    const b = await openConnection(gw.port);
    const c = await openConnection(gw.port);
    await c.closed;
    const [res] = parseResponses(c.data());
    assert.equal(res.status, 503);
    assert.equal(JSON.parse(res.body).error.code, 'too_many_connections');
    // The two within the limit still work.
    a.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const end = Date.now() + 2000;
    while (!a.data().includes('"ok"') && Date.now() < end) await sleep(10);
    assert.match(a.data(), /HTTP\/1\.1 200/);
    a.sock.destroy();
    b.sock.destroy();
  } finally {
    await gw.stop();
  }
});

test('an idle keep-alive connection is closed after timeouts.keepalive_idle', async () => {
  const gw = await startGateway(gatewayConfig(mock.port).replace('keepalive_idle: 5s', 'keepalive_idle: 300ms'));
  try {
    const a = await openConnection(gw.port);
    a.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = Date.now();
    await a.closed;
    const took = Date.now() - t0;
    assert.match(a.data(), /HTTP\/1\.1 200/);
    assert.ok(took >= 250 && took < 2500, `closed after ${took} ms`);
  } finally {
    await gw.stop();
  }
});
