// auto-routes.test.mjs — "auto" routes and the external router, through the real binaries with
// the official openai SDK as the client and aigw-mock as every provider and as the model-select
// service: under objective cost the cheapest adequate candidate serves, and a context window too
// small, a capability the catalog lacks, an open breaker, the provider's rate-limit headroom and a
// gateway key's remaining budget each steer the choice elsewhere; objective latency moves to the
// faster target once both are measured; the external router's answer is used, its timeout (timed),
// its garbage, its error status, an answer too large or naming no candidate fall back to the local
// choice; x-aigw-route-reason and the access log carry the candidates and their scores, and the
// request log keeps them (SQLite; auto-routes-postgres.test.mjs runs the same on PostgreSQL); a bad
// route is refused at load naming file:line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { AIGW_BIN, startMock, startGateway, eventually } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-auto-0123456789';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
let mock, gw, budgetGw, dir, oa, pg;

// Prices in USD per million tokens; contexts in tokens.
const CATALOG = {
  models: [
    { provider: 'openai', model: 'tiny', context: 64, input: 0.1, output: 0.1, capabilities: [] },
    { provider: 'openai', model: 'cheap', context: 100000, input: 0.2, output: 0.8, capabilities: ['json_schema'] },
    { provider: 'openai', model: 'mid', context: 100000, input: 1, output: 4, capabilities: ['tools', 'json_schema'] },
    { provider: 'openai', model: 'big', context: 200000, input: 10, output: 40,
      capabilities: ['tools', 'vision', 'json_schema', 'reasoning'] },
    { provider: 'openai', model: 'flaky-cheap', context: 100000, input: 0.1, output: 0.1 },
    { provider: 'openai', model: 'limited-cheap', context: 100000, input: 0.1, output: 0.1 },
    { provider: 'openai', model: 'steady', context: 100000, input: 0.5, output: 0.5 },
    // the budget's pair: a request of the dear one costs cents
    { provider: 'openai', model: 'b-dear', context: 100000, input: 1000, output: 2000 },
    { provider: 'openai', model: 'b-cheap', context: 100000, input: 10, output: 20 },
  ],
};

const config = (base) => `
listen: 127.0.0.1:0
workers: 1
access_log: stdout
catalog: ${join(dir, 'prices.json')}
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0}
  breaker: {failures: 2, failure_rate: 0, cooldown: 30s}
providers:
  - {name: p1, type: openai, base_url: "${base}/v1", api_key: k}
  - {name: flaky, type: openai, base_url: "${base}/v1", api_key: k, headers: {x-mock-status: "500"}}
  - {name: limited, type: openai, base_url: "${base}/v1", api_key: k,
     headers: {x-mock-rl-requests: "2", x-mock-scope: "auto-limited"}}
  - {name: slowp, type: openai, base_url: "${base}/v1", api_key: k, headers: {x-mock-ttfb-ms: "250"}}
  - {name: fastp, type: openai, base_url: "${base}/v1", api_key: k}
external_router:
  url: ${base}/v2/modelRouter/modelSelect
  api_key: nd-test-key
  timeout: 150ms
router:
  strong: {provider: p1, model: big}
  weak: {provider: p1, model: cheap}
  external: true
routes:
  - name: auto-cost
    strategy: {mode: auto, objective: cost}
    targets:
      - {provider: p1, model: tiny}
      - {provider: p1, model: cheap}
      - {provider: p1, model: mid}
      - {provider: p1, model: big}
  - name: auto-breaker
    strategy: {mode: auto, objective: cost}
    targets:
      - {provider: flaky, model: flaky-cheap}
      - {provider: p1, model: steady}
  - name: auto-limited
    strategy: {mode: auto, objective: cost}
    targets:
      - {provider: limited, model: limited-cheap}
      - {provider: p1, model: steady}
  - name: auto-latency
    strategy: {mode: auto, objective: latency}
    targets:
      - {provider: slowp, model: m-slow}
      - {provider: fastp, model: m-fast}
  - name: auto-ext
    strategy: {mode: auto, objective: cost, external: true}
    targets:
      - {provider: p1, model: cheap}
      - {provider: p1, model: mid}
      - {provider: p1, model: big}
`;

const budgetConfig = (base) => `
listen: 127.0.0.1:0
workers: 1
access_log: stdout
catalog: ${join(dir, 'prices.json')}
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: p1, type: openai, base_url: "${base}/v1", api_key: k}
auth:
  master_key: ${MASTER}
  ${POSTGRES ? `store: "${pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', 'auto')}"\n  secret: test-digest-secret-auto-0123456789`
    : `store: ${join(dir, 'auto.db')}`}
routes:
  - name: auto-budget
    strategy: {mode: auto, objective: quality, output_tokens: 100}
    targets:
      - {provider: p1, model: b-dear, quality: 0.9}
      - {provider: p1, model: b-cheap, quality: 0.6}
  - name: auto-dear-only
    strategy: {mode: auto, objective: quality, output_tokens: 100}
    targets:
      - {provider: p1, model: b-dear, quality: 0.9}
`;

before(async () => {
  if (POSTGRES) {
    pg = await startPostgres();
    process.env.AIGW_TEST_PG_PASSWORD = pg.password;
    pg.psql('CREATE DATABASE auto', 'postgres');
  }
  dir = mkdtempSync(join(tmpdir(), 'aigw-auto-'));
  writeFileSync(join(dir, 'prices.json'), JSON.stringify(CATALOG));
  mock = await startMock();
  gw = await startGateway(config(mock.url));
  budgetGw = await startGateway(budgetConfig(mock.url));
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await budgetGw?.stop();
  await mock?.stop();
  await pg?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

// A chat request through the SDK; what answered and the decision's text.
async function ask(model, content, extra = {}, client = oa) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content }], ...extra }).withResponse();
  return {
    data,
    model: response.headers.get('x-aigw-model'),
    route: response.headers.get('x-aigw-route'),
    attempts: Number(response.headers.get('x-aigw-attempts')),
    reason: response.headers.get('x-aigw-route-reason') ?? '',
    id: response.headers.get('x-request-id'),
  };
}

// One candidate's part of the reason: "label:score=…,cost=…" or "label:excluded=why,…".
function part(reason, label) {
  const m = new RegExp(`(?:candidates=|; )${label.replace('/', '\\/')}:([^;]*?)(?=; | external=| decide_us=)`).exec(reason);
  return m ? m[1] : null;
}

const LONG = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' '); // ~900 bytes: past tiny's 64 tokens

test('objective cost: the cheapest adequate candidate serves; the context window, tools and images steer it', async () => {
  const short = await ask('auto-cost', 'hello');
  assert.equal(short.model, 'tiny');
  assert.equal(short.data.model, 'tiny', 'the mock served the cheapest');
  assert.match(short.reason, /^auto objective=cost prompt_tokens=\d+\(bytes\/4\) output_tokens=256 choice=p1\/tiny candidates=p1\/tiny:score=1\.0000,cost=0\.0000\d+/);
  // scores fall with the price: cheap costs twice tiny's per input token
  const scores = ['p1/tiny', 'p1/cheap', 'p1/mid', 'p1/big'].map((l) => Number(/score=([0-9.]+)/.exec(part(short.reason, l))[1]));
  assert.deepEqual([...scores].sort((a, b) => b - a), scores, `scores in order: ${scores}`);
  assert.match(short.reason, / decide_us=[0-9.]+$/);

  // a prompt past tiny's 64-token window (counted, since bytes / 4 passes it): the next cheapest
  const long = await ask('auto-cost', LONG);
  assert.equal(long.model, 'cheap');
  assert.match(part(long.reason, 'p1/tiny'), /^excluded=context window,.*context=64/);
  assert.match(long.reason, /prompt_tokens=\d+\(counted\)/);

  // tools: cheap has none in the catalog
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
  const withTools = await ask('auto-cost', LONG, { tools });
  assert.equal(withTools.model, 'mid');
  assert.match(part(withTools.reason, 'p1/cheap'), /^excluded=no tools/);

  // an image: only big takes images
  const image = await oa.chat.completions.create({
    model: 'auto-cost',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
  }).withResponse();
  assert.equal(image.response.headers.get('x-aigw-model'), 'big');
  assert.match(image.response.headers.get('x-aigw-route-reason'), /p1\/mid:excluded=no images/);

  // the access log carries the same text
  const line = await gw.waitLog((l) => l.request_id === long.id);
  assert.equal(line.route_reason, long.reason);
});

test('an open breaker: the chosen candidate fails over in score order, then is kept out while its breaker is open', async () => {
  const first = await ask('auto-breaker', 'hi');
  assert.equal(first.model, 'steady');
  assert.equal(first.route, 'auto-breaker/0, auto-breaker/1', 'the cheapest was tried first, then the next in rank');
  assert.equal(first.attempts, 2);
  const second = await ask('auto-breaker', 'hi');
  assert.equal(second.attempts, 2); // one failure of one does not outweigh half the price
  assert.match(second.reason, /choice=flaky\/flaky-cheap candidates=flaky\/flaky-cheap:score=0\.8000,.*err=1\/1/);
  // two consecutive failures opened its breaker (breaker.failures: 2)
  const third = await ask('auto-breaker', 'hi');
  assert.equal(third.model, 'steady');
  assert.equal(third.attempts, 1);
  assert.equal(third.route, 'auto-breaker/1');
  assert.match(third.reason, /choice=p1\/steady/);
  assert.match(part(third.reason, 'flaky/flaky-cheap'), /^excluded=circuit open/);
});

test('rate-limit headroom: the provider\'s remaining count is kept, and nothing left steers the choice', async () => {
  const a = await ask('auto-limited', 'hi');
  assert.equal(a.model, 'limited-cheap');
  const b = await ask('auto-limited', 'hi');
  assert.equal(b.model, 'limited-cheap');
  // the first reply said 1 of 2 left: half the headroom, which costs nothing above 10 %
  assert.match(part(b.reason, 'limited/limited-cheap'), /score=1\.0000,.*headroom=0\.50/);
  // the second said 0 left until the window's end: kept out (the mock would answer 429)
  const c = await ask('auto-limited', 'hi');
  assert.equal(c.model, 'steady');
  assert.equal(c.attempts, 1);
  assert.match(part(c.reason, 'limited/limited-cheap'), /^excluded=rate-limited/);
  assert.equal((await mock.stats()).rate_limited ?? 0, 0, 'the provider never had to refuse');
});

test('objective latency: each target is measured once, then the faster one serves (streams measure throughput too)', async () => {
  const served = [];
  for (let i = 0; i < 5; i++) served.push((await ask('auto-latency', `hi ${i}`)).model);
  // unmeasured targets count 0 and are tried: the config's first, then the other; then the faster
  assert.deepEqual(served, ['m-slow', 'm-fast', 'm-fast', 'm-fast', 'm-fast']);
  const last = await ask('auto-latency', 'hi');
  const slow = /ttfb=(\d+)ms/.exec(part(last.reason, 'slowp/m-slow'));
  assert.ok(slow && Number(slow[1]) >= 250, `the slow target's measured time to first byte: ${last.reason}`);
  // a stream with usage: the fast target's output rate is kept and shown
  const stream = await oa.chat.completions.create({
    model: 'auto-latency', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'count [[mock:words=40,chunk_delay_ms=2]]' }],
  });
  for await (const chunk of stream) void chunk;
  const after = await ask('auto-latency', 'hi');
  assert.equal(after.model, 'm-fast');
  assert.match(part(after.reason, 'fastp/m-fast'), /tps=\d+/);
});

test('the external router\'s answer is used; what it was sent is the usable candidates and the conversation', async () => {
  const started = Date.now();
  const r = await ask('auto-ext', 'pick the middle one [[mock:select=openai/mid]]');
  assert.equal(r.model, 'mid', 'the external choice, not the local cheapest');
  assert.match(r.reason, /choice=p1\/mid .* external=chose:p1\/mid\(\d+ms\)/);
  assert.ok(Date.now() - started < 2000);
  const sent = (await mock.requests('/v2/modelRouter/modelSelect')).at(-1);
  assert.ok(sent.headers.some(([n, v]) => n.toLowerCase() === 'authorization' && v === 'Bearer nd-test-key'));
  const body = JSON.parse(sent.body);
  assert.deepEqual(body.llm_providers, [
    { provider: 'openai', model: 'cheap' }, { provider: 'openai', model: 'mid' }, { provider: 'openai', model: 'big' }]);
  assert.equal(body.tradeoff, 'cost');
  assert.deepEqual(body.messages, [{ role: 'user', content: 'pick the middle one [[mock:select=openai/mid]]' }]);

  // hard rules first: a candidate without tools is not offered, and an answer naming it is not taken
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
  const t = await ask('auto-ext', 'use a tool [[mock:select=openai/cheap]]', { tools });
  assert.equal(t.model, 'mid');
  assert.match(t.reason, /external=no_candidate\(\d+ms\)/);
  const sentTools = JSON.parse((await mock.requests('/v2/modelRouter/modelSelect')).at(-1).body);
  assert.deepEqual(sentTools.llm_providers.map((p) => p.model), ['mid', 'big']);
});

test('the external router failing in any way leaves the local choice: timeout (timed), garbage, status, too large, no candidate', async () => {
  const cases = [
    ['[[mock:select_ms=3000]]', /external=timeout\((\d+)ms\)/],
    ['[[mock:select=garbage]]', /external=invalid_answer\(\d+ms\)/],
    ['[[mock:select_status=503]]', /external=status_503\(\d+ms\)/],
    ['[[mock:select=huge]]', /external=answer_too_large\(\d+ms\)/],
    ['[[mock:select=nobody/none]]', /external=no_candidate\(\d+ms\)/],
    ['[[mock:select=none]]', /external=invalid_answer\(\d+ms\)/],
  ];
  for (const [directive, re] of cases) {
    const started = Date.now();
    const r = await ask('auto-ext', `hello ${directive}`);
    const took = Date.now() - started;
    assert.equal(r.model, 'cheap', `${directive}: the local choice`);
    const m = re.exec(r.reason);
    assert.ok(m, `${directive}: ${r.reason}`);
    if (directive.includes('select_ms')) {
      // the timeout is 150 ms: the request waited that long, and not the answer's 3 s
      assert.ok(Number(m[1]) >= 140 && Number(m[1]) < 600, `waited ${m[1]} ms`);
      assert.ok(took < 1500, `the whole request took ${took} ms`);
    } else {
      assert.ok(took < 1500, `${directive}: ${took} ms`);
    }
  }
});

test('the learned router asks the external router too (router.external): its answer decides, its failure leaves the score\'s choice', async () => {
  // threshold 0: the learned router sends everything to the strong target
  const local = await ask('router-lr-0', 'hello [[mock:select_status=500]]');
  assert.equal(local.model, 'big');
  assert.match(local.reason, /^router=lr score=[0-9.]+ threshold=0\.0000 choice=strong model=big decide_us=[0-9.]+ external=status_500\(\d+ms\)$/);
  const chosen = await ask('router-lr-0', 'hello [[mock:select=openai/cheap]]');
  assert.equal(chosen.model, 'cheap');
  assert.match(chosen.reason, /choice=strong .* external=chose:weak\(\d+ms\) final=weak$/);
  const sent = JSON.parse((await mock.requests('/v2/modelRouter/modelSelect')).at(-1).body);
  assert.deepEqual(sent.llm_providers, [{ provider: 'openai', model: 'big' }, { provider: 'openai', model: 'cheap' }]);
  assert.equal(sent.tradeoff, undefined, 'a router strategy has no objective to tell');
});

test('a gateway key\'s remaining budget keeps a candidate it could not pay for out; nothing affordable is 429', async () => {
  const made = await fetch(`${budgetGw.url}/key/generate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: JSON.stringify({ max_budget: 1.0 }),
  });
  assert.equal(made.status, 200);
  const key = (await made.json()).key;
  const client = new OpenAI({ baseURL: budgetGw.baseURL, apiKey: key, maxRetries: 0 });
  await eventually(async () => (await fetch(`${budgetGw.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } })).status === 200,
    5000, 'the new key reaches the worker');
  // the best first: an estimate of about 0.2 USD (100 output tokens at 2,000 per million)
  const first = await ask('auto-budget', 'write a lot [[mock:words=400]]', {}, client);
  assert.equal(first.model, 'b-dear');
  assert.match(first.reason, /budget_left=1\.000000/);
  // it spent about 0.8 USD (400 words): what is left no longer covers the dear one's estimate
  let second;
  for (let i = 0; i < 3; i++) {
    second = await ask('auto-budget', 'hi', {}, client);
    if (second.model === 'b-cheap') break;
  }
  assert.equal(second.model, 'b-cheap');
  assert.match(part(second.reason, 'p1/b-dear'), /^excluded=over the key's budget/);
  // the request log keeps the decision (GET /admin/logs/{id}), as the response said it
  const logged = await eventually(async () => {
    const r = await fetch(`${budgetGw.url}/admin/logs/${second.id}`, { headers: { authorization: `Bearer ${MASTER}` } });
    return r.status === 200 ? r.json() : null;
  }, 5000, 'the request in the request log');
  assert.equal(logged.route_reason, second.reason);
  assert.equal(logged.upstream_model, 'b-cheap');
  // a route whose only candidate costs more than is left: 429 budget_exceeded, naming it
  const refused = await fetch(`${budgetGw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'auto-dear-only', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(refused.status, 429);
  const err = (await refused.json()).error;
  assert.equal(err.code, 'budget_exceeded');
  assert.match(err.message, /no candidate of the auto route 'auto-dear-only' can serve this request: p1\/b-dear \(over the key's budget: about 0\.\d+ USD, 0\.\d+ left\)/);
});

test('no candidate fits: 400 no_adequate_candidate in the client\'s shape, naming each and why', async () => {
  const huge = 'x '.repeat(450000); // ~900 KB: past every window here (200,000 tokens at most)
  const refused = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'auto-cost', messages: [{ role: 'user', content: huge }] }),
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get('x-should-retry'), 'false');
  const err = (await refused.json()).error;
  assert.equal(err.code, 'no_adequate_candidate');
  assert.match(err.message, /no candidate of the auto route 'auto-cost' can serve this request: p1\/tiny \(context window: 64 tokens, the prompt has about \d+\); p1\/cheap \(context window: 100000 tokens/);
  assert.match(err.message, /p1\/big \(context window: 200000 tokens/);
  // reasoning asked: only big has it, and it serves
  const r = await ask('auto-cost', 'think', { reasoning_effort: 'high' });
  assert.equal(r.model, 'big');
  assert.match(part(r.reason, 'p1/mid'), /^excluded=no reasoning/);
});

test('no candidate fits, with many long-named candidates: the message is cut at its bound, and the gateway serves on', async () => {
  // twelve candidates, every one past its context window: the reasons would run to about 1,300
  // bytes; the message stops within its 900. A client picks the names, hence where each reason
  // ends: the first name's length runs through 1..64, so the eighth reason (a 64-byte name)
  // starts at every offset up to the end of the text
  for (let first = 1; first <= 64; first++) {
    const targets = Array.from({ length: 12 }, (_, i) => ({ provider: 'p1', model: 'tiny',
      name: i === 0 ? 'f'.repeat(first) : `${String(i).padStart(2, '0')}${'n'.repeat(i < 7 ? 50 : 62)}` }));
    const refused = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json',
        'x-aigw-config': JSON.stringify({ strategy: { mode: 'auto', objective: 'latency' }, targets }) },
      body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'x '.repeat(500) }] }),
    });
    assert.equal(refused.status, 400);
    const err = (await refused.json()).error;
    assert.equal(err.code, 'no_adequate_candidate');
    assert.ok(err.message.length < 900, `${err.message.length} bytes`);
    assert.match(err.message, /^no candidate of the auto route .* can serve this request: f+ \(context window: 64 tokens/);
  }
  assert.ok((await ask('auto-cost', 'still here')).model, 'the gateway still answers');
});

test('an auto strategy in a request\'s own config (x-aigw-config) ranks the same; asking the external router from one is refused', async () => {
  const config = JSON.stringify({ strategy: { mode: 'auto', objective: 'cost' },
    targets: [{ provider: 'p1', model: 'big' }, { provider: 'p1', model: 'mid' }] });
  const { data, response } = await oa.chat.completions.create({ model: 'anything', messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'x-aigw-config': config } }).withResponse();
  assert.equal(data.model, 'mid');
  assert.match(response.headers.get('x-aigw-route-reason'), /^auto objective=cost .* choice=p1\/mid candidates=p1\/mid:score=1\.0000/);
  const refused = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json',
      'x-aigw-config': JSON.stringify({ strategy: { mode: 'auto', external: true }, targets: [{ provider: 'p1', model: 'mid' }] }) },
    body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(refused.status, 400);
  const err = (await refused.json()).error;
  assert.equal(err.code, 'invalid_config');
  assert.match(err.message, /strategy\.external: only the config file's routes may ask the external router/);
});

test('a bad auto route is refused at load with file:line and the field', () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, `
providers:
  - {name: p1, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}
routes:
  - name: a
    strategy: {mode: auto, objective: fastest}
    targets: [{provider: p1, model: gpt-4o-mini}]
  - name: b
    strategy: {mode: auto, objective: quality, quality_floor: 0.5}
    targets: [{provider: p1, model: gpt-4o-mini, quality: 1.5}]
  - name: c
    strategy: {mode: auto}
    targets: [{provider: nobody, model: gpt-4o-mini}]
`);
  const r = spawnSync(AIGW_BIN, ['config', 'check', file], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.yaml:5: route 'a': strategy\.objective: must be cost, latency, quality or balanced/);
  assert.match(r.stderr, /bad\.yaml:8: route 'b': targets\[0\]\.quality: must be a number from 0 to 1/);
  assert.match(r.stderr, /bad\.yaml:11: route 'c': targets\[0\]\.provider: names no provider of the gateway's config \(known: p1\)/);
  // a router asking the external router chooses between two targets, not strategies (each is
  // sent as a provider and a model)
  const nested = join(dir, 'nested.yaml');
  writeFileSync(nested, `
providers:
  - {name: p1, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}
external_router: {url: "http://127.0.0.1:9/v2/modelRouter/modelSelect"}
routes:
  - name: r
    strategy: {mode: router, threshold: 0.5, external: true}
    targets:
      - strategy: {mode: fallback}
        targets: [{provider: p1, model: gpt-4o}, {provider: p1, model: gpt-4o-mini}]
      - {provider: p1, model: gpt-4o-mini}
`);
  const n = spawnSync(AIGW_BIN, ['config', 'check', nested], { encoding: 'utf8', timeout: 10000 });
  assert.equal(n.status, 1, n.stderr);
  assert.match(n.stderr, /nested\.yaml:\d+: route 'r': targets\[0\]: a router strategy that asks the external router chooses between targets with a provider and a model/);
});
