// request-log.test.mjs — the request log end to end: a known set of requests through aigw-mock
// with the official OpenAI SDK (non-stream, stream, an upstream error, a retry, a fallback) by two
// gateway keys, then GET /admin/logs returns exactly those requests with the tokens and cost the
// access log has for each; every filter narrows to the right rows; pages of 2 cover every row
// once; /admin/logs/{id} has the attempts with their roles; the aggregates match the rows; bad
// filters are 400 in OpenAI's shape naming the parameter. A second gateway keeps bodies (a
// redacted field hidden), has a queue of 1 (a burst is partly dropped, and written + dropped =
// the burst, in /metrics and on the event log) and a retention of 2s (rows go); a third keeps at
// most 3 rows. Bodies are absent by default.
//
// AIGW_TEST_STORE=postgres runs the same cases on PostgreSQL (request-log-postgres.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, eventually, sleep } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-reqlog-0123456789';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
let mock, gw, small, tiny, dir, pg;

function storeLines(name) {
  if (!POSTGRES) return `store: ${join(dir, `${name}.db`)}`;
  return `store: "${pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', name)}"\n  secret: test-digest-secret-reqlog-0123456789`;
}

function gatewayText(store, workers, requestLog = '') {
  const base = `http://127.0.0.1:${mock.port}/v1`;
  return `
catalog: ${join(dir, 'prices.json')}
listen: 127.0.0.1:0
workers: ${workers}
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0, base_delay: 10ms, max_delay: 20ms}
providers:
  - {name: oa, type: openai, base_url: "${base}", api_key: k1, models: [m-priced, m-other]}
  - {name: flaky, type: openai, base_url: "${base}", api_key: k1, models: [m-priced], headers: {x-mock-fail-first: "1", x-mock-scope: "reqlog-retry-${store}"}}
  - {name: down, type: openai, base_url: "${base}", api_key: k1, models: [m-priced], headers: {x-mock-status: "503"}}
routes:
  - name: with-retry
    retry: {attempts: 2}
    targets: [{provider: flaky, model: m-priced}]
  - name: with-fallback
    strategy: {mode: fallback}
    targets: [{provider: down, model: m-priced}, {provider: oa, model: m-priced}]
auth:
  master_key: ${MASTER}
  ${storeLines(store)}
${requestLog}`;
}

before(async () => {
  if (POSTGRES) {
    pg = await startPostgres();
    process.env.AIGW_TEST_PG_PASSWORD = pg.password;
    for (const db of ['main', 'small', 'tiny', 'cached']) pg.psql(`CREATE DATABASE ${db}`, 'postgres');
  }
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'aigw-reqlog-'));
  writeFileSync(join(dir, 'prices.json'), JSON.stringify({
    models: [
      { provider: 'openai', model: 'm-priced', input: 1000, output: 2000, taken: '2026-12' },
      { provider: 'openai', model: 'm-other', input: 1000, output: 3000, taken: '2026-12' },
    ],
  }));
  gw = await startGateway(gatewayText('main', 2));
  small = await startGateway(gatewayText('small', 1, `request_log:
  bodies: on
  body_max: 1k
  redact: [secret_field]
  queue: 1
  retention: 2s
  trim_every: 1s
`));
  tiny = await startGateway(gatewayText('tiny', 1, 'request_log: {max_rows: 3, trim_every: 1s}\n'));
});

after(async () => {
  await gw?.stop();
  await small?.stop();
  await tiny?.stop();
  await mock?.stop();
  await pg?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function admin(g, path) {
  const r = await fetch(`${g.url}${path}`, { headers: { authorization: `Bearer ${MASTER}` } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function post(g, path, body) {
  const r = await fetch(`${g.url}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function newKey(g, body) {
  const made = await post(g, '/admin/keys', body);
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await eventually(async () => (await fetch(`${g.baseURL}/models`, { headers: { authorization: `Bearer ${made.body.key}` } })).status === 200,
    5000, 'the new key reaches the workers');
  return made.body;
}

const openai = (g, apiKey) => new OpenAI({ apiKey, baseURL: g.baseURL, maxRetries: 0 });
const close = (a, b) => Math.abs(a - b) < 1e-9;

// Every row a list query gives, following the cursor.
async function allRows(g, query, limit = 2) {
  const rows = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams(query);
    q.set('limit', String(limit));
    if (cursor) q.set('cursor', cursor);
    const r = await admin(g, `/admin/logs?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.data.length <= limit);
    rows.push(...r.body.data);
    if (!r.body.has_more) { assert.equal(r.body.next_cursor, null); return rows; }
    cursor = r.body.next_cursor;
  }
  throw new Error('more than 100 pages');
}

let keyA, keyB, made = []; // made: the request ids the SDK calls were answered with

test('the log holds exactly the requests made, with the access log\'s tokens and cost; filters, pages, one request, aggregates', async () => {
  keyA = await newKey(gw, { key_alias: 'rl-a', team_id: 'team-a' });
  keyB = await newKey(gw, { key_alias: 'rl-b', team_id: 'team-b' });
  const a = openai(gw, keyA.key), b = openai(gw, keyB.key);
  const remember = ({ response }) => made.push(response.headers.get('x-request-id'));
  for (let i = 0; i < 2; i++)
    remember(await a.chat.completions.create({ model: 'm-priced', messages: [{ role: 'user', content: `hi [[mock:words=${4 + i}]]` }] }).withResponse());
  const stream = await a.chat.completions.create({
    model: 'm-other', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'stream [[mock:words=7]]' }],
  }).withResponse();
  for await (const _ of stream.data);
  remember(stream);
  await assert.rejects(b.chat.completions.create({ model: 'm-other', messages: [{ role: 'user', content: 'fail [[mock:status=400]]' }] }),
    (e) => { made.push(e.headers.get('x-request-id')); return e.status === 400; });
  remember(await b.chat.completions.create({ model: 'with-retry', messages: [{ role: 'user', content: 'again' }] }).withResponse());
  remember(await b.chat.completions.create({ model: 'with-fallback', messages: [{ role: 'user', content: 'elsewhere' }] }).withResponse());
  assert.equal(made.length, 6);
  assert.ok(made.every(Boolean), 'every answer has an x-request-id');

  const logged = () => gw.logLines.filter((l) => l.key_id === keyA.id || l.key_id === keyB.id).filter((l) => l.path !== '/v1/models');
  await eventually(() => logged().length === 6, 5000, 'six access-log lines');
  const lines = new Map(logged().map((l) => [l.request_id, l]));
  let rows;
  await eventually(async () => (rows = await allRows(gw, {})).filter((r) => made.includes(r.id)).length === 6, 5000, 'six rows in the request log');

  // exactly those requests (the master key's admin calls and GET /v1/models are not requests to log)
  assert.deepEqual(rows.map((r) => r.id).sort(), [...made].sort());
  assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'no row twice across pages');
  for (const r of rows) {
    const l = lines.get(r.id);
    assert.ok(l, `an access-log line for ${r.id}`);
    assert.equal(r.status, l.status);
    assert.equal(r.model, l.model);
    assert.equal(r.provider, l.provider);
    assert.equal(r.stream, l.stream);
    assert.equal(r.key_id, l.key_id);
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [l.usage?.prompt_tokens ?? 0, l.usage?.completion_tokens ?? 0], r.id);
    if (l.cost_usd === undefined) assert.equal(r.cost_usd, null, r.id);
    else assert.ok(close(r.cost_usd, l.cost_usd), `${r.id}: ${r.cost_usd} vs ${l.cost_usd}`);
    assert.equal(r.request_body, undefined, 'no body in a list');
    assert.ok(r.total_ms > 0 && r.total_ms >= (r.ttfb_ms ?? 0));
    assert.ok(r.overhead_ms === null || r.overhead_ms >= 0);
  }
  // newest first
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].time >= rows[i].time);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const [ok1, ok2, streamed, failed, retried, fellBack] = made.map((id) => byId.get(id));
  assert.ok(ok1.cost_usd > 0 && ok1.usage.completion_tokens > 0);
  assert.equal(streamed.stream, true);
  assert.ok(streamed.usage.completion_tokens >= 7 && streamed.cost_usd > 0);
  assert.equal(failed.status, 400);
  assert.equal(failed.error_class, 'upstream_error');
  assert.equal(ok1.error_class, null);
  assert.equal(retried.retries, 1);
  assert.deepEqual(retried.attempts.map((x) => [x.role, x.outcome, x.status]), [['first', 'error_status', 500], ['retry', 'ok', 200]]);
  assert.equal(fellBack.fallbacks, 1);
  assert.equal(fellBack.provider, 'oa');
  assert.deepEqual(fellBack.attempts.map((x) => [x.provider, x.role, x.status]), [['down', 'first', 503], ['oa', 'fallback', 200]]);
  assert.equal(ok1.team_id, 'team-a');
  assert.equal(ok1.key_alias, 'rl-a');

  // one request, with its attempts; bodies are not kept by default
  const one = await admin(gw, `/admin/logs/${encodeURIComponent(retried.id)}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.id, retried.id);
  assert.equal(one.body.attempts.length, 2);
  assert.equal(one.body.request_body, null);
  const missing = await admin(gw, '/admin/logs/no-such-request');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.type, 'not_found_error');

  // each filter narrows to exactly the rows it names
  const ids = async (q) => (await allRows(gw, q, 50)).map((r) => r.id).sort();
  const want = (pred) => rows.filter(pred).map((r) => r.id).sort();
  assert.deepEqual(await ids({ key: keyA.id }), want((r) => r.key_id === keyA.id));
  assert.deepEqual(await ids({ key: 'rl-b' }), want((r) => r.key_id === keyB.id));
  assert.deepEqual(await ids({ team: 'team-a' }), want((r) => r.key_id === keyA.id));
  assert.deepEqual(await ids({ model: 'm-other' }), [streamed.id, failed.id].sort());
  assert.deepEqual(await ids({ provider: 'oa', key: keyB.id }), [failed.id, fellBack.id].sort());
  assert.deepEqual(await ids({ provider: 'flaky' }), [retried.id]);
  assert.deepEqual(await ids({ status: '400' }), [failed.id]);
  assert.deepEqual(await ids({ status: '4xx' }), [failed.id]);
  assert.deepEqual(await ids({ status: 'error' }), [failed.id]);
  assert.equal((await ids({ status: 'ok', key: keyA.id })).length, 3);
  assert.deepEqual(await ids({ error: failed.error.slice(0, 12).toUpperCase() }), [failed.id]);
  assert.deepEqual(await ids({ since: retried.time, key: keyB.id }), [retried.id, fellBack.id].sort());
  assert.deepEqual(await ids({ until: streamed.time, key: keyA.id }), [ok1.id, ok2.id].sort());
  assert.deepEqual(await ids({ since: '2000-01-01', until: '2000-01-02' }), []);

  // aggregates match the rows
  const agg = await admin(gw, `/admin/logs/aggregate?by=key&since=${encodeURIComponent(ok1.time)}`);
  assert.equal(agg.status, 200, JSON.stringify(agg.body));
  for (const k of [keyA, keyB]) {
    const g = agg.body.data.find((x) => x.key_id === k.id);
    const mine = rows.filter((r) => r.key_id === k.id);
    assert.equal(g.requests, mine.length);
    assert.equal(g.errors, mine.filter((r) => r.status >= 400).length);
    assert.equal(g.prompt_tokens, mine.reduce((s, r) => s + r.usage.prompt_tokens, 0));
    assert.equal(g.completion_tokens, mine.reduce((s, r) => s + r.usage.completion_tokens, 0));
    assert.ok(close(g.cost_usd, mine.reduce((s, r) => s + (r.cost_usd ?? 0), 0)));
    const sorted = mine.map((r) => r.total_ms).sort((x, y) => x - y);
    assert.equal(g.p50_ms, sorted[Math.ceil(sorted.length * 0.5) - 1]);
    assert.equal(g.p95_ms, sorted[Math.ceil(sorted.length * 0.95) - 1]);
  }
  const byModel = await admin(gw, `/admin/logs/aggregate?by=model&since=${encodeURIComponent(ok1.time)}`);
  assert.equal(byModel.body.data.find((x) => x.model === 'm-other').requests, 2);
  const byHour = await admin(gw, '/admin/logs/aggregate?by=hour');
  assert.ok(byHour.body.data.reduce((s, x) => s + x.requests, 0) >= 6);
  assert.match(byHour.body.data[0].hour, /^\d{4}-\d\d-\d\dT\d\d:00:00\.000000Z$/);
  const byProvider = await admin(gw, `/admin/logs/aggregate?by=provider&since=${encodeURIComponent(ok1.time)}`);
  assert.equal(byProvider.body.data.find((x) => x.provider === 'flaky').requests, 1);
});

test('bad filters are 400 in OpenAI\'s error shape, naming the parameter', async () => {
  for (const [q, param] of [['modle=x', 'modle'], ['limit=0', 'limit'], ['limit=9999', 'limit'], ['status=teapot', 'status'],
    ['since=yesterday', 'since'], ['cursor=xyz', 'cursor'], ['key=a&key=b', 'key']]) {
    const r = await admin(gw, `/admin/logs?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.body.error.type, 'invalid_request_error', q);
    assert.equal(r.body.error.param, param, q);
  }
  const agg = await admin(gw, '/admin/logs/aggregate?by=color');
  assert.equal(agg.status, 400);
  assert.equal(agg.body.error.param, 'by');
  const noKey = await fetch(`${gw.url}/admin/logs`);
  assert.equal(noKey.status, 401);
});

test('kept bodies are redacted; a full queue is counted and said, never silent; retention by age deletes old rows', async () => {
  const c = new OpenAI({ apiKey: MASTER, baseURL: small.baseURL, maxRetries: 0 });
  const { response } = await c.chat.completions.create({
    model: 'm-priced', messages: [{ role: 'user', content: 'keep me' }], secret_field: 'hunter2', metadata: { Secret_Field: 'x', ok: 'y' },
  }).withResponse();
  const id = response.headers.get('x-request-id');
  let one;
  await eventually(async () => (one = await admin(small, `/admin/logs/${id}`)).status === 200, 5000, 'the row');
  assert.equal(one.body.request_body.messages[0].content, 'keep me');
  assert.equal(one.body.request_body.secret_field, '[redacted]');
  assert.deepEqual(one.body.request_body.metadata, { Secret_Field: '[redacted]', ok: 'y' });
  assert.ok(!JSON.stringify(one.body).includes('hunter2'));
  // a body under body_max as it came but over it as written again redacted (jansson writes 0.1
  // as 0.10000000000000001) is not kept; its request is
  const numbers = Array(150).fill(0.1);
  assert.ok(JSON.stringify({ model: 'm-priced', messages: [{ role: 'user', content: 'long' }], numbers }).length < 1024);
  const long = await c.chat.completions.create({ model: 'm-priced', messages: [{ role: 'user', content: 'long' }], numbers }).withResponse();
  const longId = long.response.headers.get('x-request-id');
  let kept;
  await eventually(async () => (kept = await admin(small, `/admin/logs/${longId}`)).status === 200, 5000, 'the long row');
  assert.equal(kept.body.request_body, null);
  assert.equal(kept.body.status, 200);

  // a burst on a queue of 1: some are left out, every one is counted (one request waiting for
  // the store's thread fills it, and the store writes a row in tens of microseconds where the
  // burst's 120 answers finish microseconds apart on the one worker)
  const metric = async (name) => {
    const text = await (await fetch(`${small.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
    const m = text.match(new RegExp(`^${name.replace(/[{}"]/g, (x) => `\\${x}`)} (\\d+)`, 'm'));
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };
  const written0 = await metric('aigw_request_log_written_total');
  const dropped0 = await metric('aigw_request_log_dropped_total{reason="queue_full"}');
  const N = 120;
  await Promise.all(Array.from({ length: N }, (_, i) => c.chat.completions.create({ model: 'm-priced', messages: [{ role: 'user', content: `burst ${i}` }] })));
  await eventually(async () => (await metric('aigw_request_log_written_total')) - written0 +
    (await metric('aigw_request_log_dropped_total{reason="queue_full"}')) - dropped0 === N, 5000, 'written + dropped = the burst');
  const dropped = (await metric('aigw_request_log_dropped_total{reason="queue_full"}')) - dropped0;
  assert.ok(dropped > 0, 'a queue of 1 cannot take a burst of 120');
  assert.equal(await metric('aigw_request_log_queued'), 0);
  // a worker's event lines go through the log's queue and its writer thread
  await eventually(() => /request log: worker \d+'s queue is full/.test(small.stderr()), 3000, 'the full queue said');
  assert.equal(small.stderr().match(/request_log_full|queue is full/g).length >= 1, true);

  // retention 2s: the rows go
  await eventually(async () => (await admin(small, '/admin/logs?limit=500')).body.data.length > 0, 3000, 'rows written');
  await eventually(async () => (await admin(small, '/admin/logs?limit=500')).body.data.length === 0, 8000, 'rows older than 2s deleted');
});

test('max_rows keeps the newest rows', async () => {
  const c = new OpenAI({ apiKey: MASTER, baseURL: tiny.baseURL, maxRetries: 0 });
  const ids = [];
  for (let i = 0; i < 6; i++) {
    const { response } = await c.chat.completions.create({ model: 'm-priced', messages: [{ role: 'user', content: `n${i}` }] }).withResponse();
    ids.push(response.headers.get('x-request-id'));
    await sleep(5);
  }
  await eventually(async () => {
    const rows = (await admin(tiny, '/admin/logs')).body.data;
    return rows.length === 3 && rows.map((r) => r.id).join() === ids.slice(3).reverse().join();
  }, 8000, 'the three newest rows remain');
});

test('a cached request is logged with the cache\'s answer: MISS, then HIT at cost 0', async () => {
  const cached = await startGateway(gatewayText('cached', 1, 'cache: {mode: simple}\n'));
  try {
    const key = await newKey(cached, { key_alias: 'cache-user' });
    const client = openai(cached, key.key);
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const { data, response } = await client.chat.completions
        .create({ model: 'm-priced', messages: [{ role: 'user', content: 'cache me in the log' }] }).withResponse();
      assert.equal(response.headers.get('x-aigw-cache'), i ? 'HIT' : 'MISS');
      ids.push(response.headers.get('x-request-id'));
      assert.ok(data.usage.total_tokens > 0);
    }
    await eventually(async () => (await admin(cached, '/admin/logs?key=cache-user')).body.data.length === 2, 5000, 'both rows');
    const rows = (await admin(cached, '/admin/logs?key=cache-user')).body.data; // newest first
    assert.deepEqual(rows.map((r) => r.id), [ids[1], ids[0]]);
    assert.deepEqual(rows.map((r) => r.cache), ['HIT', 'MISS']);
    assert.ok(rows[1].cost_usd > 0);
    assert.equal(rows[0].cost_usd, 0, 'a hit costs nothing');
    assert.equal(rows[0].usage.total_tokens, rows[1].usage.total_tokens, 'the stored usage is reported');
    assert.deepEqual(rows[0].attempts, [], 'a hit reaches no provider');
  } finally {
    await cached.stop();
  }
});
