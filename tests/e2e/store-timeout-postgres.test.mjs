// store-timeout-postgres.test.mjs — a store that stops answering holds no request for ever. The
// store is a PostgreSQL database the test starts (tests/e2e/postgres.mjs); a psql session of the
// test's own takes `LOCK TABLE prompt_versions IN ACCESS EXCLUSIVE MODE` in an open transaction,
// so the store thread's read of an old prompt version blocks on it. Then: a request naming that
// version is answered 503 store_timeout within timeouts.store, in the client's API shape (OpenAI's
// on /v1/prompts/…/render, Anthropic's on /v1/messages with x-aigw-prompt), while other requests
// (plain chat, the newest version from the key snapshot) are served at once; an admin operation
// that reads the table is answered 503 store_timeout within timeouts.admin; the statement is
// cancelled by the server's statement_timeout (the connection string's here: 3 s), the store's
// thread is free again while the lock is still held (an admin operation on keys is answered),
// and once the lock goes the old versions are served again. A second gateway with the defaults
// shows timeouts.store's 2 s and the 30 s statement_timeout aigw sets on its own connection.
// The late answers of the store's thread find their requests gone: the ASan build says nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, eventually, sleep, rawExchange } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-store-timeout-0123456789';
let mock, pg;

before(async () => {
  pg = await startPostgres();
  process.env.AIGW_TEST_PG_PASSWORD = pg.password;
  pg.psql('CREATE DATABASE bounded', 'postgres');
  pg.psql('CREATE DATABASE defaults', 'postgres');
  mock = await startMock();
});

after(async () => {
  await mock?.stop();
  await pg?.cleanup();
});

function config(store, timeouts) {
  return `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s${timeouts}}
providers:
  - {name: mock, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", api_key: k, models: [mock-model]}
auth:
  master_key: ${MASTER}
  store: "${store}"
  secret: test-digest-secret-store-timeout-0123456789
`;
}

async function call(gw, method, path, body, headers = {}) {
  const t0 = Date.now();
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, body: json, text, ms: Date.now() - t0 };
}

const render = (gw, ref, name = 'Ann') => call(gw, 'POST', `/v1/prompts/${ref}/render`, { variables: { name } });

// three versions: the snapshot holds the newest (3); 1 and 2 are read from the store
async function threeVersions(gw) {
  for (let v = 1; v <= 3; v++) {
    const r = await call(gw, 'POST', '/admin/prompts', {
      id: 'greet', model: 'mock-model', messages: [{ role: 'user', content: `version ${v} for {{name}}` }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.version, v);
  }
  await eventually(async () => (await render(gw, 'greet@3')).status === 200, 3000, 'the newest version in the snapshot');
  for (const v of [1, 2]) {
    const r = await render(gw, `greet@${v}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.messages[0].content, `version ${v} for Ann`);
  }
}

// aigw's store connection to db waits on a lock (the blocked read of prompt_versions)
function storeWaitsOnLock(db) {
  return pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'aigw' AND datname = '${db}' `
    + `AND wait_event_type = 'Lock'`, 'postgres').trim() !== '0';
}

const cancelled = () => (pg.log().match(/canceling statement due to statement timeout/g) || []).length;

test('a stuck store: 503 store_timeout within timeouts.store in both API shapes, others served, statement_timeout frees the thread, old versions served again', async () => {
  const url = `${pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', 'bounded')}?options=-c%20statement_timeout%3D3000`;
  const gw = await startGateway(config(url, ', store: 500ms, admin: 1s'));
  const lock = pg.session('bounded');
  try {
    await threeVersions(gw);
    await lock.run('BEGIN; LOCK TABLE prompt_versions IN ACCESS EXCLUSIVE MODE;');
    const cancelledBefore = cancelled();

    // the stuck read, and beside it requests that need no store: each answered at once
    const stuck = render(gw, 'greet@1');
    const others = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => call(gw, 'POST', '/v1/chat/completions',
        { model: 'mock-model', messages: [{ role: 'user', content: `hi ${i}` }] })),
      render(gw, 'greet@3', 'Bo'),
    ]);
    for (const o of others) {
      assert.equal(o.status, 200, o.text);
      assert.ok(o.ms < 450, `served in ${o.ms} ms while the store is stuck`);
    }
    assert.equal(others[6].body.data.messages[0].content, 'version 3 for Bo');
    let r = await stuck;
    assert.equal(r.status, 503, r.text);
    assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(r.body.error.code, 'store_timeout');
    assert.equal(r.body.error.type, 'server_error');
    assert.ok(r.ms >= 450 && r.ms < 1500, `answered after ${r.ms} ms (timeouts.store: 500ms)`);
    assert.ok(storeWaitsOnLock('bounded'), 'the store thread is still blocked on the lock');

    // Anthropic's shape on /v1/messages, and an old version through completions; then more of
    // them back to back on one keep-alive connection each, so that late answers meet the
    // connection's next request
    r = await call(gw, 'POST', '/v1/messages', { model: 'mock-model', max_tokens: 16, messages: [] },
      { 'x-aigw-prompt': 'greet@2', 'x-aigw-prompt-variables': '{"name":"Cy"}' });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.type, 'error');
    assert.match(r.body.error.type, /error$/);
    assert.match(r.body.error.message, /store did not answer in time/);
    assert.ok(r.ms >= 450 && r.ms < 1500, `answered after ${r.ms} ms`);
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      call(gw, 'POST', `/v1/prompts/greet@${1 + (i % 2)}/completions`, { variables: { name: `n${i}` } })));
    for (const b of burst) {
      assert.equal(b.status, 503, b.text);
      assert.equal(b.body.error.code, 'store_timeout');
      assert.ok(b.ms < 1500, `answered after ${b.ms} ms`);
    }
    // one whose connection closes after its 503, and one whose client leaves while it waits:
    // the late answers then reach exchanges that only their tickets keep alive
    const body = JSON.stringify({ variables: { name: 'raw' } });
    const head = (extra) => `POST /v1/prompts/greet@1/render HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER}\r\n`
      + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;
    const closed = await rawExchange(gw.port, [head('Connection: close\r\n')], { ms: 5000 });
    assert.match(closed, /^HTTP\/1\.1 503/);
    assert.match(closed, /store_timeout/);
    const left = await rawExchange(gw.port, [head(''), async (sock) => { await sleep(100); sock.destroy(); }], { ms: 5000 });
    assert.equal(left, '');
    const line = await gw.waitLog((l) => l.status === 503 && /store did not answer/.test(JSON.stringify(l)));
    assert.ok(line);

    // the server's statement_timeout (3 s here) cancels the blocked read; the reads queued behind
    // it, whose requests are gone, are skipped; the thread answers again while the lock is held
    await eventually(() => cancelled() > cancelledBefore && !storeWaitsOnLock('bounded'), 6000, 'the statement cancelled');
    r = await call(gw, 'GET', '/admin/keys');
    assert.equal(r.status, 200, r.text);
    assert.ok(r.ms < 1000, `an admin read of keys took ${r.ms} ms`);

    // an admin operation that reads the locked table: 503 within timeouts.admin (1 s); its
    // statement is cancelled in turn
    const before2 = cancelled();
    r = await call(gw, 'GET', '/admin/prompts/greet');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.error.code, 'store_timeout');
    assert.ok(r.ms >= 950 && r.ms < 2500, `admin answered after ${r.ms} ms (timeouts.admin: 1s)`);
    await eventually(() => cancelled() > before2 && !storeWaitsOnLock('bounded'), 6000, 'the admin statement cancelled');

    // the lock goes: old versions are read again, in both shapes
    await lock.run('COMMIT;');
    for (const v of [1, 2]) {
      r = await render(gw, `greet@${v}`, 'Di');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.data.messages[0].content, `version ${v} for Di`);
    }
    r = await call(gw, 'POST', '/v1/messages', { model: 'mock-model', max_tokens: 16, messages: [] },
      { 'x-aigw-prompt': 'greet@2', 'x-aigw-prompt-variables': '{"name":"Cy"}' });
    assert.equal(r.status, 200, r.text);
    assert.match(JSON.stringify(r.body.content), /version 2 for Cy/);
    r = await call(gw, 'GET', '/admin/prompts/greet');
    assert.equal(r.status, 200, r.text);
  } finally {
    await lock.end();
    await gw.stop();
  }
});

test('the defaults: timeouts.store is 2 s, and aigw bounds its own statements at 30 s', async () => {
  const gw = await startGateway(config(pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', 'defaults'), ''));
  const lock = pg.session('defaults');
  try {
    await threeVersions(gw);
    await lock.run('BEGIN; LOCK TABLE prompt_versions IN ACCESS EXCLUSIVE MODE;');
    const t0 = Date.now();
    const r = await render(gw, 'greet@1');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.error.code, 'store_timeout');
    assert.ok(r.ms >= 1950 && r.ms < 3500, `answered after ${r.ms} ms (timeouts.store: 2s by default)`);
    assert.ok(storeWaitsOnLock('defaults'));
    // still blocked well before 30 s; freed soon after, the lock still held
    await sleep(20000 - (Date.now() - t0));
    assert.ok(storeWaitsOnLock('defaults'), 'blocked at 20 s');
    await eventually(() => !storeWaitsOnLock('defaults'), 15000, 'the statement cancelled');
    const waited = Date.now() - t0;
    assert.ok(waited >= 28000 && waited < 35000, `cancelled after ${waited} ms`);
    assert.match(pg.log(), /canceling statement due to statement timeout/);
    await lock.run('COMMIT;');
    const ok = await render(gw, 'greet@1');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.data.messages[0].content, 'version 1 for Ann');
  } finally {
    await lock.end();
    await gw.stop();
  }
});
