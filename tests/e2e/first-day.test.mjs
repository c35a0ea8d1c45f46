// first-day.test.mjs — what someone trying aigw meets on the first day: a second gateway on a
// taken port, the command line's help and errors, the small endpoints a client lists models
// with, plain-decimal costs and the config's environment variables.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AIGW_BIN, startMock, startGateway, gatewayConfig } from './harness.mjs';

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
