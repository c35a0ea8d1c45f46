// top.test.mjs — `aigw top` as a person sees it: aigw and aigw-mock run, `aigw top` runs in a
// tmux pane (its own server on its own -L socket, killed after), the test sends keys and reads
// the pane with `tmux capture-pane -p`. It checks that the numbers move with traffic, that a
// target's breaker shows OPEN while the mock fails and closed after a reset from the UI, that a
// key created on the Keys screen (its secret read off the pane) serves a request, that a
// refused config edit shows the gateway's message, that the terminal is given back after q
// and after SIGTERM (the alternate screen gone, the shell's marker line visible again), that the
// `/` filter's name:value terms find a request older than the tail through the request log, that
// a virtual key made, rotated and deleted on its screen reaches the provider (its secret never
// on the pane), and that a gateway stopped and started again on its port under top is shown
// lost, then live again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AIGW_BIN, startMock, startGateway, eventually, sleep, headerValues } from './harness.mjs';

const MASTER = 'test-master-key-top-0123456789abcdef';
const VAULT = 'a1'.repeat(32); // the vault key: 32 bytes in hex
const SOCKET = `aigw-top-test-${process.pid}`;
let mock, gw, dir;

function tmux(...args) {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const pane = () => tmux('capture-pane', '-p', '-t', 'top');
const keys = (...k) => tmux('send-keys', '-t', 'top', ...k);
async function seen(re, ms = 8000, what = String(re)) {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    if (re.test((last = pane()))) return last;
    await sleep(100);
  }
  throw new Error(`not seen within ${ms} ms: ${what}\n--- pane ---\n${last}`);
}

// A shell in a new tmux session that prints a marker, then runs `aigw top`; after top ends the
// shell prints END and waits, so the pane shows what the terminal looks like afterwards.
function startTop(extraEnv = '') {
  spawnSync('tmux', ['-L', SOCKET, 'kill-session', '-t', 'top']);
  const cmd = `printf 'SHELL-BEFORE\\n'; ${extraEnv} ${AIGW_BIN} top --url ${gw.url} --key ${MASTER}; ` +
    `printf 'TOP-EXIT=%s\\n' $?; sleep 60`;
  tmux('new-session', '-d', '-s', 'top', '-x', '80', '-y', '24', 'sh', '-c', cmd);
}

async function chat(key, text = 'hello', model = 'mock-model') {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: text }] }),
  });
  await r.arrayBuffer();
  return r.status;
}

// The gateway's config; listen: a fixed port when it is started again on the one it had.
function config(listen = '127.0.0.1:0') {
  const base = `http://127.0.0.1:${mock.port}/v1`;
  return `
listen: ${listen}
workers: 1
access_log: off
routing:
  retry: {attempts: 0}
  breaker: {failures: 2, failure_rate: 0, cooldown: 60s}
providers:
  - {name: mockai, type: openai, base_url: "${base}", api_key: k1, models: [mock-model, old-model]}
  - {name: flaky, type: openai, base_url: "${base}", api_key: k1, models: [flaky-model]}
  - {name: vaulted, type: openai, base_url: "${base}", virtual_key: top-vk, models: [vault-model]}
auth:
  master_key: ${MASTER}
  store: ${join(dir, 'keys.db')}
  vault_key: "\${AIGW_TOP_VAULT}"
alerts:
  rules:
    - {name: flaky-open, kind: breaker_open, provider: flaky}
`;
}

async function admin(method, path, body) {
  const r = await fetch(`${gw.url}${path}`, {
    method, headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-top-'));
  mock = await startMock();
  process.env.AIGW_TOP_VAULT = VAULT;
  gw = await startGateway(config());
});

after(async () => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
  await gw?.stop();
  await mock?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the overview moves with traffic, a breaker opens and is reset, a key made in the UI works, q restores the terminal', async () => {
  startTop();
  await seen(/aigw top/, 8000, 'the header');
  await seen(/mockai\/mock-model\s+closed/, 8000, 'the target row');
  // traffic: req/s above zero and the requests in the log's tail
  const stopAt = Date.now() + 4000;
  let sent = 0;
  while (Date.now() < stopAt) {
    await chat(MASTER);
    sent++;
    if (sent % 5 === 0) await sleep(50);
    if (/req\/s\s+[1-9]/.test(pane())) break;
  }
  await seen(/req\/s\s+[1-9][0-9.]*/, 5000, 'a request rate above zero');
  // the request log is written in batches (a quarter second, then the store's thread) and read
  // once a second: the tail follows the rate by a moment
  await seen(/mock-model\s+mockai\s+200/, 8000, 'a logged request in the tail');
  // and it falls back to zero when traffic stops
  await seen(/req\/s\s+0\.0/, 8000, 'the rate back at zero');

  // the mock fails flaky's requests: its breaker opens, the alert fires
  for (let i = 0; i < 3; i++) await chat(MASTER, 'x [[mock:status=500]]', 'flaky-model');
  await seen(/flaky\/flaky-model\s+OPEN/, 8000, 'the breaker open on the overview');
  keys('6'); // alerts
  await seen(/flaky-open\s+breaker_open\s+firing/, 8000, 'the alert firing');
  keys('5'); // breakers
  const rows = await seen(/TARGET/, 5000, 'the breakers screen');
  // select flaky's row and reset it
  const lines = rows.split('\n').filter((l) => /\/(mock|flaky)-model/.test(l));
  const index = lines.findIndex((l) => l.includes('flaky/flaky-model'));
  for (let i = 0; i < index; i++) keys('Down');
  keys('r');
  await seen(/flaky\/flaky-model\s+closed/, 8000, 'the breaker closed after the reset');
  assert.match(pane(), /1 breaker\(s\) were open/);
  assert.equal(await chat(MASTER, 'fine now', 'flaky-model'), 200);
  keys('6');
  await seen(/flaky-open\s+breaker_open\s+resolved/, 8000, 'the alert resolved');

  // a key made on the Keys screen: its secret shown once, and it works
  keys('2');
  await seen(/ALIAS/, 5000, 'the keys screen');
  keys('n');
  await seen(/new key alias:/, 3000);
  keys('-l', 'from-top');
  keys('Enter');
  const box = await seen(/shown once[\s\S]*aigw-\S+/, 8000, 'the secret box');
  const secret = box.match(/(aigw-[A-Za-z0-9_-]+)/)[1];
  assert.equal(await chat(secret), 200, 'the key made in the UI serves a request');
  keys('Space'); // closes the box
  await seen(/from-top\s+yes/, 5000, 'the key listed');
  keys('d');
  await seen(/from-top\s+DISABLED/, 8000, 'the key disabled from the UI');
  await eventually(async () => (await chat(secret)) === 401, 5000, 'the disabled key refused');

  // a config edit the gateway refuses: its message on the screen, the old config serving
  const editor = join(dir, 'bad-editor.sh');
  writeFileSync(editor, '#!/bin/sh\nprintf "providers: 12\\n" > "$1"\n', { mode: 0o755 });
  tmux('set-environment', '-t', 'top', 'EDITOR', editor); // for show; the process reads its own env
  keys('q');
  await seen(/TOP-EXIT=0/, 8000, 'top ended with q');
  const after = pane();
  assert.match(after, /SHELL-BEFORE/, 'the shell screen is back after q');
  assert.doesNotMatch(after, /aigw top/, 'the UI is gone after q');
  tmux('kill-session', '-t', 'top');

  startTop(`EDITOR=${editor}`);
  await seen(/aigw top/, 8000);
  keys('4');
  await seen(/listen: 127\.0\.0\.1/, 8000, 'the config shown');
  keys('E');
  await seen(/apply config refused \(HTTP 400\)/, 8000, 'the refusal and its message');
  assert.equal(await chat(MASTER), 200, 'the old config still serves');
  tmux('kill-session', '-t', 'top');
});

test('SIGTERM gives the terminal back in monochrome; the help answers at once; an absent gateway shows DISCONNECTED and q still quits', async () => {
  startTop('NO_COLOR=1');
  await seen(/mockai\/mock-model\s+closed/, 8000);
  assert.match(pane(), /1 Overview/);
  // the pane's shell, and its child: aigw top
  const shell = tmux('list-panes', '-t', 'top', '-F', '#{pane_pid}').trim();
  const pid = spawnSync('pgrep', ['-P', shell], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  assert.ok(pid, 'aigw top is running');
  // the UI keeps answering keys even when nothing comes back: ? shows the help at once
  keys('?');
  await seen(/aigw top — keys/, 3000, 'the help');
  keys('Escape');
  process.kill(Number(pid), 'SIGTERM');
  const after = await seen(/TOP-EXIT=143/, 8000, 'top ended by SIGTERM');
  assert.match(after, /SHELL-BEFORE/);
  assert.doesNotMatch(after, /aigw top/);
  tmux('kill-session', '-t', 'top');
  // a gateway that is not there: DISCONNECTED, and q still quits at once
  const cmd = `printf 'SHELL-BEFORE\\n'; ${AIGW_BIN} top --url http://127.0.0.1:9 --key x; printf 'TOP-EXIT=%s\\n' $?; sleep 60`;
  tmux('new-session', '-d', '-s', 'top', '-x', '80', '-y', '24', 'sh', '-c', cmd);
  await seen(/DISCONNECTED/, 8000, 'the disconnected header');
  keys('q');
  await seen(/TOP-EXIT=0/, 3000, 'q while disconnected');
  tmux('kill-session', '-t', 'top');
});

test('the filter asks the request log: a request older than the tail is found; a filter it refuses shows why', async () => {
  assert.equal(await chat(MASTER, 'long ago', 'old-model'), 200);
  await eventually(async () => (await admin('GET', '/admin/logs?model=old-model')).body.data?.length === 1, 5000, 'the old request logged');
  // more newer requests than the tail top fetches (100)
  for (let i = 0; i < 110; i++) assert.equal(await chat(MASTER, `newer ${i}`), 200);
  await eventually(async () => {
    const tail = (await admin('GET', '/admin/logs?limit=100')).body.data ?? [];
    return tail.length === 100 && !tail.some((r) => r.model === 'old-model');
  }, 8000, 'the old request out of the newest 100');
  startTop();
  await seen(/mock-model\s+mockai\s+200/, 8000, 'the tail');
  assert.doesNotMatch(pane(), /old-model\s+mockai/);
  keys('/');
  keys('-l', 'model:old-model');
  await seen(/filter: model:old-model/, 3000, 'the filter typed');
  keys('Enter');
  const found = await seen(/old-model\s+mockai\s+200/, 8000, 'the old request, found by the request log');
  assert.match(found, /\[filter: model:old-model \(asked of the request log\)\]/);
  assert.doesNotMatch(found, /mock-model\s+mockai/, 'only the rows the filter asked for');
  // the gateway's own check of a filter, shown as it says it
  keys('/');
  keys('Escape'); // esc while typing clears the filter
  keys('/');
  keys('-l', 'status:often');
  keys('Enter');
  await seen(/request log: HTTP 400 status must be a code \(429\), a class \(5xx\), error or ok/, 8000, 'the refusal');
  keys('Escape'); // cleared: the tail again
  await seen(/mock-model\s+mockai\s+200/, 8000, 'the tail again');
  keys('q');
  await seen(/TOP-EXIT=0/, 8000);
  tmux('kill-session', '-t', 'top');
});

test('virtual keys made, rotated and deleted on their screen; the secret never drawn; the provider sees each', async () => {
  const SECRET1 = 'sk-top-secret-one-123';
  const SECRET2 = 'sk-top-secret-two-456';
  const upstreamKey = async () => headerValues((await mock.requests('/v1/chat/completions')).at(-1), 'authorization');
  startTop();
  await seen(/aigw top/, 8000);
  keys('3');
  await seen(/no virtual keys: n makes one/, 8000, 'the empty list');
  // a provider type the gateway does not know: its message
  keys('n');
  await seen(/new virtual key, its name:/, 3000);
  keys('-l', 'top-vk');
  keys('Enter');
  keys('-l', 'nonsense');
  keys('Enter');
  await seen(/the secret for top-vk \(not shown; 0 characters\)/, 3000);
  keys('-l', SECRET1);
  await seen(/not shown; 21 characters/, 3000, 'the count, not the secret');
  assert.doesNotMatch(pane(), /sk-top/);
  keys('Enter');
  await seen(/create virtual key top-vk refused \(HTTP 400\): 'provider' must be a provider type/, 8000);
  // made
  keys('n');
  keys('-l', 'top-vk');
  keys('Enter');
  await seen(/top-vk's provider type/, 3000);
  keys('-l', 'openai');
  keys('Enter');
  keys('-l', SECRET1);
  keys('Enter');
  await seen(/top-vk\s+openai\s+\S+\s+1\s/, 8000, 'the virtual key listed, version 1');
  assert.doesNotMatch(pane(), /sk-top-secret/);
  await eventually(async () => (await chat(MASTER, 'via the vault', 'vault-model')) === 200, 5000, 'the virtual key used');
  assert.deepEqual(await upstreamKey(), [`Bearer ${SECRET1}`]);
  // rotated
  keys('r');
  await seen(/a new secret for top-vk \(not shown; 0 characters\)/, 3000);
  keys('-l', SECRET2);
  keys('Enter');
  await seen(/top-vk\s+openai\s+\S+\s+2\s/, 8000, 'version 2');
  assert.doesNotMatch(pane(), /sk-top-secret/);
  await eventually(async () => {
    await chat(MASTER, 'rotated', 'vault-model');
    return (await upstreamKey())[0] === `Bearer ${SECRET2}`;
  }, 5000, 'the new secret at the provider');
  // deleted, after a question; any other answer keeps it
  keys('d');
  await seen(/delete the virtual key top-vk\? y deletes it/, 3000);
  keys('n');
  await seen(/top-vk kept/, 3000);
  keys('d');
  keys('y');
  await seen(/no virtual keys: n makes one/, 8000, 'the list empty again');
  await eventually(async () => (await chat(MASTER, 'gone', 'vault-model')) === 503, 5000, 'the deleted virtual key missing');
  keys('q');
  await seen(/TOP-EXIT=0/, 8000);
  tmux('kill-session', '-t', 'top');
});

test('the gateway restarts under top: it says so and keeps the terminal, then shows live numbers again', async () => {
  startTop();
  await seen(/mockai\/mock-model\s+closed/, 8000, 'connected');
  const port = gw.port;
  await gw.stop();
  const lost = await seen(/DISCONNECTED/, 8000, 'the lost gateway');
  assert.match(lost, /retrying/);
  assert.match(lost, /1 Overview/, 'the screen still drawn');
  assert.doesNotMatch(lost, /TOP-EXIT/, 'top still running');
  await sleep(1500); // a few reconnection attempts
  assert.doesNotMatch(pane(), /TOP-EXIT/);
  gw = await startGateway(config(`127.0.0.1:${port}`));
  assert.equal(gw.port, port);
  await eventually(() => !/DISCONNECTED/.test(pane()) && /mockai\/mock-model\s+closed/.test(pane()), 8000, 'connected again');
  const stopAt = Date.now() + 6000;
  while (!/req\/s\s+[1-9]/.test(pane()) && Date.now() < stopAt) assert.equal(await chat(MASTER), 200);
  await seen(/req\/s\s+[1-9][0-9.]*/, 3000, 'a live rate after the restart');
  keys('q');
  const after = await seen(/TOP-EXIT=0/, 8000, 'q after the restart');
  assert.match(after, /SHELL-BEFORE/);
  assert.doesNotMatch(after, /aigw top/);
  tmux('kill-session', '-t', 'top');
});
