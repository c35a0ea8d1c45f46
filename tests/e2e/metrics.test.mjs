// metrics.test.mjs — GET /metrics scraped by a real Prometheus (Debian's `prometheus`, started
// here on loopback with a temporary directory and a 1 s scrape interval, stopped and removed
// after). A known set of requests is made with the official OpenAI and Anthropic SDKs; then
// Prometheus's HTTP API is asked for the series and must hold exactly their counts, tokens and
// histogram counts. Also: models a client invents add no series (they are all "other"), and
// with auth on the endpoint needs the master key or an admin key — Prometheus scrapes it with the
// master key. Refusals (auth, models, budgets, rate limits) are counted by reason and key. Every
// response says where its time went: x-aigw-overhead-us and Server-Timing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'metrics-master-key-0123456789';
let mock, gw, prom, promDir, promPort, key;

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function startPrometheus(target) {
  promDir = mkdtempSync(join(tmpdir(), 'aigw-prometheus-'));
  promPort = await freePort();
  writeFileSync(join(promDir, 'prometheus.yml'), `
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: aigw
    metrics_path: /metrics
    authorization: {credentials: ${MASTER}}
    static_configs: [{targets: ['${target}']}]
`);
  prom = spawn('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (d) => { log += d; });
  await eventually(async () => {
    try { return (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok; } catch { return false; }
  }, 20000, `prometheus ready (${log.slice(-400)})`);
}

async function query(q) {
  const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = await r.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result.map((s) => ({ ...s.metric, value: Number(s.value[1]) }));
}

before(async () => {
  mock = await startMock();
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}
  - {name: an, type: anthropic, base_url: "http://127.0.0.1:${mock.port}", api_key: k, models: [claude-mock]}
  - {name: bad, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-bad], headers: {x-mock-status: "500"}}
routing:
  breaker: {failures: 2, cooldown: 60s}
auth:
  master_key: ${MASTER}
`);
  const made = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: JSON.stringify({ key_alias: 'metrics' }) });
  key = (await made.json()).key;
  await startPrometheus(`127.0.0.1:${gw.port}`);
});

after(async () => {
  if (prom && prom.exitCode === null) {
    prom.kill('SIGTERM');
    await new Promise((r) => prom.once('exit', r));
  }
  if (promDir) rmSync(promDir, { recursive: true, force: true });
  await gw?.stop();
  await mock?.stop();
});

test('Prometheus scrapes the requests made: counts by model, provider, status and client API; tokens; histograms', async () => {
  const openai = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });
  for (let i = 0; i < 3; i++)
    await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
  const stream = await openai.chat.completions.create({ model: 'mock-model', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi' }] });
  for await (const _ of stream);
  await anthropic.messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status === 404);
  const logged = await gw.waitLog((l) => l.model === 'claude-mock');
  // each worker flushes its access-log batch on its own clock: wait for all four lines
  const okLines = () => gw.logLines.filter((l) => l.model === 'mock-model' && l.status === 200);
  await eventually(() => okLines().length === 4, 5000, 'the four access-log lines');
  const oaLines = okLines();

  let series;
  await eventually(async () => {
    series = await query('aigw_requests_total{job="aigw"}');
    const ok = series.find((s) => s.model === 'mock-model' && s.status === '2xx');
    return ok?.value === 4 && series.some((s) => s.model === 'claude-mock');
  }, 30000, 'the scrape holding every request'); /* a 1 s interval; a loaded machine delays scrapes */
  const ok = series.find((s) => s.model === 'mock-model' && s.status === '2xx');
  assert.deepEqual({ route: ok.route, provider: ok.provider, ingress: ok.ingress, key: ok.key },
    { route: 'mock-model', provider: 'oa', ingress: 'openai', key: logged.key_id });
  const claude = series.find((s) => s.model === 'claude-mock');
  assert.deepEqual([claude.value, claude.provider, claude.ingress, claude.status], [1, 'an', 'anthropic', '2xx']);
  const missing = series.find((s) => s.status === '4xx');
  assert.deepEqual([missing.value, missing.model], [1, 'other']);

  // tokens: the sums of what the access log says the provider reported
  const tokens = await query('aigw_tokens_total{job="aigw",model="mock-model"}');
  const sum = (field) => oaLines.reduce((t, l) => t + (l.usage?.[field] ?? 0), 0);
  assert.equal(tokens.find((s) => s.kind === 'prompt').value, sum('prompt_tokens'));
  assert.equal(tokens.find((s) => s.kind === 'completion').value, sum('completion_tokens'));
  // every request is in each latency histogram once; quantiles are computable
  const counts = await query('aigw_request_duration_seconds_count{job="aigw",model="mock-model"}');
  assert.equal(counts[0].value, 4);
  const ttfb = await query('aigw_time_to_first_byte_seconds_count{job="aigw",model="mock-model"}');
  assert.equal(ttfb[0].value, 4);
  const p95 = await query('histogram_quantile(0.95, sum by (le) (aigw_overhead_seconds_bucket{job="aigw"}))');
  assert.ok(p95.length === 1 && p95[0].value >= 0 && p95[0].value < 1, JSON.stringify(p95));
  const attempts = await query('aigw_attempts_total{job="aigw",provider="oa",outcome="ok"}');
  assert.equal(attempts[0].value, 4);
  const info = await query('aigw_build_info{job="aigw"}');
  assert.match(info[0].version, /^\d+\.\d+\.\d+/);
});

test('models a client invents add no series: each is "other"', async () => {
  const openai = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
  const before = (await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text())
    .split('\n').filter((l) => l.startsWith('aigw_requests_total{')).length;
  for (let i = 0; i < 40; i++) {
    await openai.chat.completions.create({ model: `invented-${i}`, messages: [{ role: 'user', content: 'hi' }] }).catch(() => {});
    await openai.chat.completions.create({ model: `oa/typed-${i}`, messages: [{ role: 'user', content: 'hi' }] }).catch(() => {});
  }
  const text = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  const lines = text.split('\n').filter((l) => l.startsWith('aigw_requests_total{'));
  assert.ok(lines.length <= before + 2, lines.join('\n'));
  assert.doesNotMatch(text, /invented-|typed-/);
});

test('with auth on, /metrics needs the master key', async () => {
  assert.equal((await fetch(`${gw.url}/metrics`)).status, 401);
  const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'metrics_not_allowed');
  const ok = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  // Prometheus itself scraped with it: its target is up
  await eventually(async () => (await query('up{job="aigw"}'))[0]?.value === 1, 30000, 'Prometheus\'s target up');
});

test('refusals are counted by reason and key (aigw_rejections_total); an admin key may scrape', async () => {
  const make = async (body) => {
    const r = await fetch(`${gw.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    return r.json();
  };
  const limited = await make({ key_alias: 'rej-rpd', rpd_limit: 2 });
  const broke = await make({ key_alias: 'rej-budget', max_budget: 0 });
  const narrow = await make({ key_alias: 'rej-model', models: ['mock-model'] });
  const off = await make({ key_alias: 'rej-off', enabled: false });
  const ops = await make({ key_alias: 'rej-admin', admin: true });
  const scrape = async (auth = MASTER) => {
    const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${auth}` } });
    assert.equal(r.status, 200);
    const counts = {};
    for (const m of (await r.text()).matchAll(/^aigw_rejections_total\{reason="([a-z_]+)",key="([^"]*)"\} (\d+)$/gm))
      counts[`${m[1]} ${m[2]}`] = Number(m[3]);
    return counts;
  };
  const before = await scrape();
  const ask = (apiKey, model = 'mock-model') => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0 })
    .chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
  await ask(limited.key);
  await ask(limited.key);
  for (let i = 0; i < 2; i++) await assert.rejects(ask(limited.key), (e) => e.status === 429 && e.code === 'rate_limit_exceeded');
  await assert.rejects(ask(broke.key), (e) => e.status === 429 && e.code === 'budget_exceeded');
  await assert.rejects(ask(narrow.key, 'claude-mock'), (e) => e.status === 403 && e.code === 'model_not_allowed');
  await assert.rejects(ask(off.key), (e) => e.status === 401 && e.code === 'key_disabled');
  for (let i = 0; i < 2; i++) await assert.rejects(ask(`aigw-invented-${i}`), (e) => e.status === 401);
  assert.equal((await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', body: '{}' })).status, 401);
  assert.equal((await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${narrow.key}` } })).status, 403);
  const want = {
    [`rate_limit_requests ${limited.id}`]: 2,
    [`budget ${broke.id}`]: 1,
    [`forbidden_model ${narrow.id}`]: 1,
    [`auth_disabled ${off.id}`]: 1,
    ['auth_invalid ']: 2,
    ['auth_missing ']: 1,
    [`forbidden_admin ${narrow.id}`]: 1,
  };
  let delta;
  await eventually(async () => {
    const now = await scrape(ops.key); // an admin key may scrape
    delta = {};
    for (const [k, v] of Object.entries(now)) if (v !== (before[k] ?? 0)) delta[k] = v - (before[k] ?? 0);
    return JSON.stringify(Object.keys(delta).sort().map((k) => [k, delta[k]])) ===
      JSON.stringify(Object.keys(want).sort().map((k) => [k, want[k]]));
  }, 5000, 'the rejections counted').catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(delta)}`); });
  // the invented keys made no series of their own
  const text = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  assert.doesNotMatch(text, /invented/);
  // …and Prometheus holds them
  await eventually(async () => (await query(`aigw_rejections_total{job="aigw",reason="budget",key="${broke.id}"}`))[0]?.value === 1,
    30000, 'Prometheus\'s rejection series');
});

test('every response says where its time went: x-aigw-overhead-us and Server-Timing', async () => {
  const openai = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
  const t0 = process.hrtime.bigint();
  const { response } = await openai.chat.completions
    .create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const overheadUs = response.headers.get('x-aigw-overhead-us');
  assert.match(overheadUs, /^\d+$/);
  const timing = Object.fromEntries(response.headers.get('server-timing').split(', ').map((p) => {
    const [name, dur] = p.split(';dur=');
    return [name, Number(dur)];
  }));
  assert.ok(timing.upstream > 0, JSON.stringify(timing));
  assert.ok(Math.abs(timing.aigw * 1000 - Number(overheadUs)) <= 1, `${timing.aigw} ms vs ${overheadUs} us`);
  assert.ok(timing.upstream + timing.aigw <= wallMs, `${JSON.stringify(timing)} within ${wallMs} ms`);
  // a stream's head says the same; a local answer has no upstream time
  const s = await openai.chat.completions.create({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.match(s.response.headers.get('x-aigw-overhead-us'), /^\d+$/);
  for await (const _ of s.data);
  const health = await fetch(`${gw.url}/healthz`);
  assert.match(health.headers.get('server-timing'), /^upstream;dur=0\.000, aigw;dur=\d+\.\d{3}$/);
});

test('each target the config names: its breaker, in-flight requests and latency, as gauges', async () => {
  const openai = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
  await assert.rejects(openai.chat.completions.create({ model: 'mock-bad', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status >= 500);
  const text = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  assert.match(text, /^# TYPE aigw_target_breaker_state gauge$/m);
  assert.match(text, /^aigw_target_breaker_state\{provider="bad",model="mock-bad",state="open"\} 1$/m);
  assert.match(text, /^aigw_target_breaker_state\{provider="oa",model="mock-model",state="closed"\} 0$/m);
  assert.match(text, /^aigw_target_in_flight\{provider="oa",model="mock-model"\} 0$/m);
  const ewma = Number(text.match(/^aigw_target_latency_ewma_seconds\{provider="oa",model="mock-model"\} (\S+)$/m)[1]);
  assert.ok(ewma > 0 && ewma < 5, String(ewma));
  // targets a client names in a request's own config are not listed
  const picked = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST',
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json', 'x-aigw-config': '{"provider":"oa"}' },
    body: JSON.stringify({ model: 'client-picked', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal((await picked.json()).model, 'client-picked');
  const after = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  assert.doesNotMatch(after, /client-picked/);
});
