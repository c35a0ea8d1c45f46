// prompts-experiments.test.mjs — an experiment between two versions of a template, end to end:
// a 70/30 split served within a stated tolerance through x-aigw-prompt (the official openai
// SDK), sticky per user; the version each request used in the access log and the request log;
// POST /v1/feedback (Portkey's shape) from a user key, bounded and checked; GET
// /admin/prompts/{id}/report with requests, errors, latency, tokens, cost and mean feedback with
// its 95 % interval per version, as computed here from what the test sent; then the promotion.
// prompts-postgres.test.mjs runs the same cases on a PostgreSQL store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, eventually } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-prompt-exp-0123456789';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
let mock, gw, dir, pg, userKey;

before(async () => {
  if (POSTGRES) {
    pg = await startPostgres();
    process.env.AIGW_TEST_PG_PASSWORD = pg.password;
    pg.psql('CREATE DATABASE prompts', 'postgres');
  }
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'aigw-prompt-exp-'));
  writeFileSync(join(dir, 'prices.json'), JSON.stringify({
    models: [{ provider: 'openai', model: 'm-priced', input: 1000, output: 2000, taken: '2026-12' }],
  }));
  const store = POSTGRES
    ? `store: "${pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', 'prompts')}"\n  secret: test-digest-secret-prompt-exp-0123456789`
    : `store: ${join(dir, 'aigw.db')}`;
  gw = await startGateway(`
catalog: ${join(dir, 'prices.json')}
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", api_key: k1, models: [m-priced]}
auth:
  master_key: ${MASTER}
  ${store}
`);
  const r = await admin('POST', '/admin/keys', { key_alias: 'app' });
  assert.equal(r.status, 200, r.text);
  userKey = r.body.key;
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function admin(method, path, body, key = MASTER) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, body: json, text };
}

// the 95 % Student's t interval of equal-weight ratings, as the report must give it
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
function interval(values) {
  const n = values.length, mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = T975[n - 2] * sd / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half };
}

test('a 70/30 experiment: split, stickiness, the version in both logs, feedback and the report per version, promotion', async () => {
  let r = await admin('POST', '/admin/prompts', { id: 'exp', model: 'm-priced', messages: [{ role: 'user', content: 'A: {{q}}' }], labels: ['production'] });
  assert.equal(r.status, 200, r.text);
  r = await admin('POST', '/admin/prompts', { id: 'exp', model: 'm-priced', messages: [{ role: 'user', content: 'B, longer: {{q}}' }] });
  assert.equal(r.body.version, 2);
  r = await admin('POST', '/admin/prompts/exp/labels', { label: 'production', split: [{ version: 1, weight: 70 }, { version: 2, weight: 30 }] });
  assert.equal(r.status, 200, r.text);
  const oai = new OpenAI({ baseURL: gw.baseURL, apiKey: userKey, maxRetries: 0, timeout: 20000 });
  const ask = (extra = {}, headers = {}) => oai.chat.completions.create(
    { model: 'm-priced', messages: [], ...extra },
    { headers: { 'x-aigw-prompt': 'exp', 'x-aigw-prompt-variables': '{"q":"hi"}', ...headers } }).withResponse();
  await eventually(async () => {
    const seen = new Set();
    for (let i = 0; i < 20; i++) seen.add((await ask()).response.headers.get('x-aigw-prompt-version'));
    return seen.size === 2;
  }, 5000, 'the split reaches the workers');

  const N = 300;
  const byVersion = { 1: [], 2: [] };
  for (let i = 0; i < N; i++) {
    const { response } = await ask();
    const v = Number(response.headers.get('x-aigw-prompt-version').split('@')[1]);
    byVersion[v].push(response.headers.get('x-request-id'));
  }
  // 70/30 over 300 draws: sd = sqrt(300·0.7·0.3) ≈ 7.9; 5 sd is ±40
  assert.ok(Math.abs(byVersion[1].length - 0.7 * N) <= 40, `version 1 served ${byVersion[1].length} of ${N}`);
  // sticky: a user (the body's user field) keeps one version
  for (const user of ['u-1', 'u-2', 'u-3', 'u-4']) {
    const first = (await ask({ user })).response.headers.get('x-aigw-prompt-version');
    for (let i = 0; i < 8; i++) assert.equal((await ask({ user })).response.headers.get('x-aigw-prompt-version'), first);
  }

  // the access log names the template and version
  const id1 = byVersion[1][0], id2 = byVersion[2][0];
  const line = await gw.waitLog((l) => l.request_id === id2);
  assert.equal(line.prompt, 'exp');
  assert.equal(line.prompt_version, 2);

  // feedback, Portkey's shape, from a user key: version 1 rated higher
  const ratings = { 1: [8, 9, 7, 10, 6, 9, 8, 7], 2: [3, 5, 2, 6, 4, 1] };
  for (const v of [1, 2])
    for (let i = 0; i < ratings[v].length; i++) {
      r = await admin('POST', '/v1/feedback', { trace_id: byVersion[v][i], value: ratings[v][i], weight: 1, metadata: { _user: 'rater', comment: `rated ${v}` } }, userKey);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, 'success');
      assert.equal(r.body.feedback_ids.length, 1);
    }
  for (const bad of [{ trace_id: id1, value: 11 }, { trace_id: id1, value: 1, weight: 2 }, { value: 1 },
    { trace_id: id1, value: 1, comment: 'x'.repeat(5000) }, { trace_id: id1, value: 1, metadata: 'nope' }]) {
    r = await admin('POST', '/v1/feedback', bad, userKey);
    assert.equal(r.status, 400, JSON.stringify(bad));
  }
  r = await admin('POST', '/v1/feedback', { trace_id: id1, value: 1 }, 'aigw-not-a-key');
  assert.equal(r.status, 401);

  // the request log has the version; the report counts every request once it is written
  const total = N + 20 + 4 * 9;
  let report;
  await eventually(async () => {
    report = await admin('GET', '/admin/prompts/exp/report');
    return report.status === 200 && report.body.versions.reduce((a, v) => a + v.requests, 0) >= total;
  }, 10000, 'the request log reaches the store');
  r = await admin('GET', `/admin/logs/${id1}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.prompt, 'exp');
  assert.equal(r.body.prompt_version, 1);

  const [v1, v2] = report.body.versions;
  assert.deepEqual([v1.version, v2.version], [1, 2]);
  assert.equal(v1.requests + v2.requests, total);
  assert.ok(v1.requests >= byVersion[1].length && v2.requests >= byVersion[2].length);
  for (const v of [v1, v2]) {
    assert.equal(v.errors, 0);
    assert.ok(v.latency_ms.p50 > 0 && v.latency_ms.p95 >= v.latency_ms.p50, JSON.stringify(v.latency_ms));
    assert.ok(v.tokens.prompt > 0 && v.tokens.completion > 0 && v.tokens.total === v.tokens.prompt + v.tokens.completion);
    assert.ok(v.cost_usd > 0);
  }
  for (const [v, got] of [[1, v1], [2, v2]]) {
    const want = interval(ratings[v]);
    assert.equal(got.feedback.count, ratings[v].length);
    assert.ok(Math.abs(got.feedback.mean - want.mean) < 1e-9, `mean ${got.feedback.mean} vs ${want.mean}`);
    assert.ok(Math.abs(got.feedback.ci95[0] - want.low) < 1e-3 && Math.abs(got.feedback.ci95[1] - want.high) < 1e-3,
      `ci ${got.feedback.ci95} vs ${want.low}..${want.high}`);
  }
  // enough to pick a winner: the intervals do not overlap
  assert.ok(v1.feedback.ci95[0] > v2.feedback.ci95[1]);

  r = await admin('POST', '/admin/prompts/exp/promote', { label: 'production', version: 1 });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => {
    for (let i = 0; i < 10; i++) if ((await ask()).response.headers.get('x-aigw-prompt-version') !== 'exp@1') return false;
    return true;
  }, 5000, 'the promotion reaches the workers');
  r = await admin('GET', '/admin/prompts/nothing-here/report');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.versions, []);
});
