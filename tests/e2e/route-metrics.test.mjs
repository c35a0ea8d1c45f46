// route-metrics.test.mjs — routing decisions in GET /metrics, through the real binaries with the
// official openai SDK as the client and aigw-mock as every provider and as the external router:
// after a known set of requests on two workers — an auto route's cheapest candidate N times, a
// prompt too long for it, one too long for every candidate (400), one over a key's budget (429),
// the external router used, timing out, answering garbage, too much, an error status or no
// candidate, not asked when one candidate is left, the learned router's strong and weak sides by
// its model names and by a route — aigw_route_decisions_total, aigw_route_no_candidate_total and
// aigw_external_router_total hold exactly those counts; a request's own config (x-aigw-config)
// with made-up names counts under "(request)" and adds no series named by the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'route-metrics-master-key-0123456789';
let mock, gw, dir, oa;

const CATALOG = {
  models: [
    { provider: 'openai', model: 'tiny', context: 64, input: 0.1, output: 0.1 },
    { provider: 'openai', model: 'cheap', context: 100000, input: 0.2, output: 0.8 },
    { provider: 'openai', model: 'mid', context: 100000, input: 1, output: 4, capabilities: ['tools'] },
    { provider: 'openai', model: 'big', context: 200000, input: 10, output: 40, capabilities: ['tools', 'reasoning'] },
    { provider: 'openai', model: 'dear', context: 100000, input: 1000, output: 2000 },
  ],
};

const config = (base) => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
catalog: ${join(dir, 'prices.json')}
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0}
providers:
  - {name: p1, type: openai, base_url: "${base}/v1", api_key: k}
auth:
  master_key: ${MASTER}
  store: ${join(dir, 'keys.db')}
request_log: off
external_router:
  url: ${base}/v2/modelRouter/modelSelect
  timeout: 150ms
router:
  strong: {provider: p1, model: big}
  weak: {provider: p1, model: cheap}
routes:
  - name: auto-cost
    strategy: {mode: auto, objective: cost}
    targets:
      - {provider: p1, model: tiny}
      - {name: the-cheap-one, provider: p1, model: cheap}
  - name: auto-ext
    strategy: {mode: auto, objective: cost, external: true}
    targets:
      - {provider: p1, model: cheap}
      - {provider: p1, model: mid}
      - {provider: p1, model: big}
  - name: auto-dear
    strategy: {mode: auto, objective: cost, output_tokens: 100}
    targets:
      - {provider: p1, model: dear}
  - name: smart
    strategy: {mode: router, threshold: 0}
    targets: [{provider: p1, model: big}, {provider: p1, model: cheap}]
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aigw-route-metrics-'));
  writeFileSync(join(dir, 'prices.json'), JSON.stringify(CATALOG));
  mock = await startMock();
  gw = await startGateway(config(mock.url));
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: MASTER, maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// A chat request through the SDK: the model that served and the decision's text.
async function ask(model, content, extra = {}, options = {}, client = oa) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content }], ...extra }, options).withResponse();
  return { model: data.model, reason: response.headers.get('x-aigw-route-reason') ?? '' };
}

// A request expected to be refused: its status and error code.
async function refused(model, content, headers = {}, key = MASTER) {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
  return [r.status, (await r.json()).error?.code];
}

async function scrape() {
  const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } });
  assert.equal(r.status, 200);
  return r.text();
}

// The routing families' series as {"labels": value}, labels as written.
function routeSeries(text) {
  const out = {};
  for (const m of text.matchAll(/^(aigw_route_decisions_total|aigw_route_no_candidate_total|aigw_external_router_total)(\{[^}]*\}) (\d+)$/gm))
    out[`${m[1]}${m[2]}`] = Number(m[3]);
  return out;
}

const decision = (route, strategy, target, side = '') =>
  `aigw_route_decisions_total{route="${route}",strategy="${strategy}",target="${target}",side="${side}"}`;
const noCandidate = (route, reason) => `aigw_route_no_candidate_total{route="${route}",reason="${reason}"}`;
const external = (route, outcome) => `aigw_external_router_total{route="${route}",outcome="${outcome}"}`;

const LONG = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' '); // past tiny's 64 tokens
const HUGE = 'x '.repeat(450000); // past every window here

test('routing decisions are counted exactly: auto picks and refusals, the external router\'s outcomes, the router\'s sides', async () => {
  const text0 = await scrape();
  for (const family of ['aigw_route_decisions_total', 'aigw_route_no_candidate_total', 'aigw_external_router_total'])
    assert.match(text0, new RegExp(`^# TYPE ${family} counter$`, 'm'));
  assert.deepEqual(routeSeries(text0), {}, 'no series before any decision');

  // the auto route: the cheapest candidate five times, the next one for a prompt past its window
  const N = 5;
  for (let i = 0; i < N; i++) assert.equal((await ask('auto-cost', `hello ${i}`)).model, 'tiny');
  assert.equal((await ask('auto-cost', LONG)).model, 'cheap');
  assert.deepEqual(await refused('auto-cost', HUGE), [400, 'no_adequate_candidate']);

  // a key whose budget cannot pay for the only candidate: 429 from the auto route
  const made = await fetch(`${gw.url}/key/generate`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: JSON.stringify({ max_budget: 0.0001 }) });
  const key = (await made.json()).key;
  await eventually(async () => (await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } })).status === 200,
    5000, 'the new key reaches both workers');
  // twice: each worker has the key by now, and each refusal is counted once
  for (let i = 0; i < 2; i++) assert.deepEqual(await refused('auto-dear', 'hi', {}, key), [429, 'budget_exceeded']);

  // the external router: each way it can end
  const ext = [
    ['[[mock:select=openai/mid]]', 'mid', /external=chose:p1\/mid/],
    ['[[mock:select=openai/big]]', 'big', /external=chose:p1\/big/],
    ['[[mock:select_ms=3000]]', 'cheap', /external=timeout/],
    ['[[mock:select=garbage]]', 'cheap', /external=invalid_answer/],
    ['[[mock:select=huge]]', 'cheap', /external=answer_too_large/],
    ['[[mock:select=none]]', 'cheap', /external=invalid_answer/],
    ['[[mock:select_status=503]]', 'cheap', /external=status_503/],
    ['[[mock:select=nobody/none]]', 'cheap', /external=no_candidate/],
  ];
  for (const [directive, model, re] of ext) {
    const r = await ask('auto-ext', `hello ${directive}`);
    assert.equal(r.model, model, directive);
    assert.match(r.reason, re);
  }
  // reasoning asked: only big is left, so there is nothing to ask
  const one = await ask('auto-ext', 'think', { reasoning_effort: 'high' });
  assert.equal(one.model, 'big');
  assert.match(one.reason, /external=not_asked\(one candidate\)/);

  // the learned router: threshold 0 is always strong, 1 never (its model names: the route is
  // router-lr whatever the threshold); a route with a router strategy
  for (const model of ['router-lr-0', 'router-lr-0.0', 'router-lr-1']) await ask(model, 'hi');
  assert.equal((await ask('router-lr-1', 'hi')).model, 'cheap');
  assert.equal((await ask('smart', 'hi')).model, 'big');

  const want = {
    [decision('auto-cost', 'auto', 'p1/tiny')]: N,
    [decision('auto-cost', 'auto', 'p1/cheap')]: 1,
    [noCandidate('auto-cost', 'no_adequate_candidate')]: 1,
    [noCandidate('auto-dear', 'budget_exceeded')]: 2,
    [decision('auto-ext', 'auto', 'p1/mid')]: 1,
    [decision('auto-ext', 'auto', 'p1/big')]: 2,
    [decision('auto-ext', 'auto', 'p1/cheap')]: 6,
    [external('auto-ext', 'used')]: 2,
    [external('auto-ext', 'timeout')]: 1,
    [external('auto-ext', 'invalid')]: 3,
    [external('auto-ext', 'error')]: 1,
    [external('auto-ext', 'no_candidate')]: 1,
    [external('auto-ext', 'not_asked')]: 1,
    [decision('router-lr', 'router', 'p1/big', 'strong')]: 2,
    [decision('router-lr', 'router', 'p1/cheap', 'weak')]: 2,
    [decision('smart', 'router', 'p1/big', 'strong')]: 1,
  };
  let got;
  // a request is counted when it is done, just after its response: wait for the last ones
  await eventually(async () => {
    got = routeSeries(await scrape());
    return JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort());
  }, 5000, 'the routing series').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(got, null, 1)}`);
  });
  // the budget refusals are rejections too, and requests of their route like any other
  const text = await scrape();
  assert.match(text, /^aigw_rejections_total\{reason="budget",key="key_[^"]+"\} 2$/m);
  assert.match(text, /^aigw_requests_total\{route="auto-dear",model="auto-dear",[^}]*status="4xx",[^}]*\} 2$/m);
  assert.match(text, /^aigw_requests_total\{route="auto-cost",model="auto-cost",[^}]*status="4xx",[^}]*\} 1$/m);
});

test('a request\'s own config (x-aigw-config) counts under "(request)": the names it makes up create no series', async () => {
  const before = routeSeries(await scrape());
  const config = JSON.stringify({ strategy: { mode: 'auto', objective: 'latency' },
    targets: [{ name: 'madeup-target-name', provider: 'p1', model: 'invented-model-x' },
      { provider: 'p1', model: 'invented-model-y' }] });
  for (let i = 0; i < 3; i++) {
    const r = await ask('madeup-route-name', 'hi', {}, { headers: { 'x-aigw-config': config } });
    assert.match(r.model, /^invented-model-[xy]$/);
  }
  // one whose only candidate is too small for the prompt: refused, counted under "(request)"
  const small = JSON.stringify({ strategy: { mode: 'auto', objective: 'latency' },
    targets: [{ name: 'madeup-small', provider: 'p1', model: 'tiny' }] });
  assert.deepEqual(await refused('madeup-route-name', LONG, { 'x-aigw-config': small }), [400, 'no_adequate_candidate']);

  let got;
  await eventually(async () => {
    got = routeSeries(await scrape());
    return got[decision('(request)', 'auto', '(request)')] === 3 && got[noCandidate('(request)', 'no_adequate_candidate')] === 1;
  }, 5000, 'the header config\'s decisions').catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(got, null, 1)}`); });
  // nothing else moved, and no name the client chose is anywhere in the scrape
  for (const [k, v] of Object.entries(before)) assert.equal(got[k], v, k);
  assert.equal(Object.keys(got).length, Object.keys(before).length + 2);
  assert.doesNotMatch(await scrape(), /madeup|invented/);
});
