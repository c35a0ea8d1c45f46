// router.test.mjs — the learned strong/weak router and per-step routing, through the real
// binaries with aigw-mock as both targets: RouteLLM's `router-<name>-<threshold>` model names
// split by the threshold (the mock's per-model counters show where each prompt went), the
// "X % to strong" form, a `routes:` entry with a router strategy, the x-aigw-route-reason header
// and the access log's route_reason, a reload that replaces the model file, a bad model file
// refused with its line; and a Claude Code-like session (the official Anthropic SDK) whose
// steps a conditional route sends to a cheap or a strong model by the request's shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, sleep } from './harness.mjs';

const MODEL = readFileSync(new URL('../../router/lr.model', import.meta.url), 'utf8');
const HARD = 'Let f(x) = 4x^3 - 9x - 14. Prove that the equation f(x) = 0 has exactly one real root, '
  + 'then write a C++ function using Newton\'s method to find it to 1e-12 and analyse its convergence. '
  + 'Statement 1 | Every integral domain has characteristic 0. Statement 2 | ...';
const TRIVIAL = 'hi';

let mock, gw, oa;

const config = (base, extra = '') => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: k}
  - {name: an, type: anthropic, base_url: "${base}", api_key: k}
router:
  strong: {provider: oa, model: strong-model}
  weak: {provider: oa, model: weak-model}
  aliases: [mf]
${extra}
routes:
  - name: smart
    strategy: {mode: router, strong_percent: 50}
    targets: [{provider: oa, model: strong-model}, {provider: oa, model: weak-model}]
`;

before(async () => {
  mock = await startMock();
  gw = await startGateway(config(`http://127.0.0.1:${mock.port}`));
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

async function ask(model, text, g = gw) {
  const client = g === gw ? oa : new OpenAI({ baseURL: g.baseURL, apiKey: 'x', maxRetries: 0 });
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content: text }] }).withResponse();
  const reason = response.headers.get('x-aigw-route-reason');
  const m = /router=(\w+) score=([0-9.]+) threshold=([0-9.]+).* choice=(strong|weak) model=([\w-]+) decide_us=([0-9.]+)/
    .exec(reason ?? '');
  assert.ok(m, `x-aigw-route-reason: ${reason}`);
  return { data, reason, router: m[1], score: Number(m[2]), threshold: Number(m[3]), choice: m[4], model: m[5],
    id: response.headers.get('x-request-id') };
}

async function models() {
  return (await mock.stats()).models;
}

test('router-lr-<threshold> splits by the score: the hard prompt goes strong, the trivial one weak', async () => {
  const hard = await ask('router-lr-0', HARD);
  const easy = await ask('router-lr-0', TRIVIAL);
  assert.equal(hard.router, 'lr');
  assert.ok(hard.score > easy.score, `the hard prompt scores higher (${hard.score} vs ${easy.score})`);
  const mid = ((hard.score + easy.score) / 2).toFixed(4);
  const before0 = await models();
  const h = await ask(`router-lr-${mid}`, HARD);
  const e = await ask(`router-lr-${mid}`, TRIVIAL);
  assert.equal(h.choice, 'strong');
  assert.equal(h.model, 'strong-model');
  assert.equal(h.data.model, 'strong-model', 'the strong target answered');
  assert.equal(e.choice, 'weak');
  assert.equal(e.data.model, 'weak-model', 'the weak target answered');
  assert.equal(h.threshold, Number(mid));
  const after0 = await models();
  assert.equal((after0['strong-model'] ?? 0) - (before0['strong-model'] ?? 0), 1);
  assert.equal((after0['weak-model'] ?? 0) - (before0['weak-model'] ?? 0), 1);
  assert.ok(h.score === hard.score, 'the same prompt scores the same');
  // the decision is in the access log too
  const line = await gw.waitLog((l) => l.route_reason && l.route_reason.includes(`threshold=${Number(mid).toFixed(4)}`)
    && l.route_reason.includes('choice=weak'));
  assert.equal(line.model, `router-lr-${mid}`);
  // threshold 1: nothing reaches it; 0: everything does
  assert.equal((await ask('router-lr-1', HARD)).choice, 'weak');
  assert.equal((await ask('router-lr-0', TRIVIAL)).choice, 'strong');
  // RouteLLM's names through an alias
  assert.equal((await ask('router-mf-0', TRIVIAL)).choice, 'strong');
});

test('"X % to strong": router-lr-N% is calibrated on the training data; a route can ask the same', async () => {
  const all = await ask('router-lr-100%', TRIVIAL);
  assert.equal(all.choice, 'strong');
  assert.equal(all.threshold, 0);
  const none = await ask('router-lr-0%', HARD);
  assert.equal(none.choice, 'weak');
  const half = await ask('router-lr-50%', HARD);
  assert.match(half.reason, /\(50% strong\)/);
  assert.ok(half.threshold > 0 && half.threshold < 1, `a calibrated threshold: ${half.threshold}`);
  const viaRoute = await ask('smart', HARD);
  assert.equal(viaRoute.threshold, half.threshold, 'the route option calibrates the same way');
  assert.equal(viaRoute.choice, half.choice);
});

test('unknown router names and thresholds are not router names', async () => {
  for (const name of ['router-xyz-0.5', 'router-lr-1.5', 'router-lr-abc', 'router-lr-']) {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(r.status, 404, name);
  }
});

test('the chosen target failing falls back to the other one (the usual walk)', async () => {
  const r = await ask('router-lr-0', `${TRIVIAL} [[mock:status=500]]`).catch((e) => e);
  assert.equal(r.status, 500, 'the mock fails every call carrying the marker');
  const line = await gw.waitLog((l) => l.model === 'router-lr-0' && l.status === 500);
  const tried = line.attempts.map((a) => a.model);
  assert.equal(tried[0], 'strong-model', JSON.stringify(tried));
  assert.ok(tried.includes('weak-model'), `the weak target was the fallback: ${JSON.stringify(tried)}`);
  assert.match(line.route_reason, /choice=strong/);
});

test('a reload replaces the model; a bad model file is refused with its line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-router-'));
  const file = join(dir, 'mine.model');
  writeFileSync(file, MODEL);
  const g = await startGateway(config(`http://127.0.0.1:${mock.port}`, `  model_file: ${file}`));
  try {
    const first = await ask('router-lr-0.5', TRIVIAL, g);
    assert.equal(first.choice, 'weak');
    // a new model: another name, and a bias that sends everything to strong
    writeFileSync(file, MODEL.replace(/^name lr$/m, 'name lr2').replace(/^bias .*$/m, 'bias 30'));
    await hup(g);
    assert.match(g.stderr(), /config reloaded/);
    const second = await ask('router-lr2-0.5', TRIVIAL, g);
    assert.equal(second.router, 'lr2');
    assert.equal(second.choice, 'strong');
    assert.ok(second.score > 0.999, `score ${second.score}`);
    const gone = await fetch(`${g.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'router-lr-0.5', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(gone.status, 404, 'the old model name is gone with the old model');
    // a broken file: the reload is refused, naming the file and the line; the model in use stays
    writeFileSync(file, MODEL.replace(/^features \d+$/m, 'features 9'));
    await hup(g);
    assert.match(g.stderr(), /reload refused: .*router\.model_file: .*mine\.model: line \d+: features: the model was trained on features version 9/);
    assert.equal((await ask('router-lr2-0.5', TRIVIAL, g)).choice, 'strong');
  } finally {
    await g.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function hup(g, ms = 5000) {
  const count = () => (g.stderr().match(/aigw: (config reloaded from|reload refused: )/g) || []).length;
  const seen = count();
  g.proc.kill('SIGHUP');
  const end = Date.now() + ms;
  while (count() === seen && Date.now() < end) await sleep(5);
  assert.ok(count() > seen, 'aigw answered SIGHUP');
}

// A coding agent's steps (what Claude Code sends, /work CLIENTS.md: /v1/messages?beta=true,
// system blocks, 12 tools, tool_result turns) routed per step by their shape.
test('per-step routing: a Claude Code-like session, each step on the model its shape asks for', async () => {
  const base = `http://127.0.0.1:${mock.port}`;
  const g = await startGateway(`
listen: 127.0.0.1:0
workers: 1
access_log: stdout
providers:
  - {name: an, type: anthropic, base_url: "${base}", api_key: k}
routes:
  - name: claude-sonnet-4-5
    strategy:
      mode: conditional
      conditions:
        - {query: {request.step: {$in: [title, commit-message, summary]}}, then: cheap}
        - {query: {request.tools: false}, then: cheap}
        - {query: {$and: [{request.tool_result: true}, {request.tokens: {$lt: 2000}}]}, then: cheap}
      default: strong
    targets:
      - {name: strong, provider: an, model: claude-strong}
      - {name: cheap, provider: an, model: claude-cheap}
`);
  try {
    const ant = new Anthropic({ baseURL: g.url, apiKey: 'x', maxRetries: 0 });
    const system = [{ type: 'text', text: 'You are Claude Code, an interactive CLI tool.' },
      { type: 'text', text: 'x'.repeat(2000), cache_control: { type: 'ephemeral' } }];
    const tools = ['Bash', 'Read', 'Edit'].map((name) => ({ name, description: name,
      input_schema: { type: 'object', properties: { arg: { type: 'string' } } } }));
    const before0 = (await mock.stats()).models;
    const steps = [];
    const step = async (name, body, headers = {}) => {
      const msg = await ant.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, ...body }, { headers });
      steps.push([name, msg.model]);
    };
    // 1. the session's title: a short request without tools
    await step('title', { messages: [{ role: 'user', content: 'Write a 5-word title for: fix the flaky test' }] });
    // 2. planning: the user's task with the tools
    const task = { role: 'user', content: [{ type: 'text', text: 'The test in tests/x.test.mjs is flaky; find out why and fix it.' }] };
    await step('plan', { system, tools, messages: [task] });
    // 3. a tool result comes back: a small continuation
    const call = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { arg: 'ls tests' } }] };
    const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'x.test.mjs\ny.test.mjs' }] };
    await step('tool-result', { system, tools, messages: [task, call, result] });
    // 4. a large tool result (a whole file read): the strong model
    const big = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'const a = 1;\n'.repeat(2000) }] };
    await step('big-tool-result', { system, tools, messages: [task, call, big] });
    // 5. the commit message, named by the agent's step header
    await step('commit', { system, tools, messages: [task, { role: 'assistant', content: 'Fixed.' },
      { role: 'user', content: 'Write the commit message.' }] }, { 'x-aigw-step': 'commit-message' });
    assert.deepEqual(steps, [['title', 'claude-cheap'], ['plan', 'claude-strong'], ['tool-result', 'claude-cheap'],
      ['big-tool-result', 'claude-strong'], ['commit', 'claude-cheap']]);
    const after0 = (await mock.stats()).models;
    assert.equal((after0['claude-cheap'] ?? 0) - (before0['claude-cheap'] ?? 0), 3, 'the mock served 3 cheap steps');
    assert.equal((after0['claude-strong'] ?? 0) - (before0['claude-strong'] ?? 0), 2, 'and 2 strong ones');
  } finally {
    await g.stop();
  }
});

test('a condition on an unknown request.* field is refused with the field named', async () => {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-aigw-config': JSON.stringify({
      strategy: { mode: 'conditional', conditions: [{ query: { 'request.colour': 'red' }, then: 'a' }], default: 'a' },
      targets: [{ name: 'a', provider: 'oa', model: 'weak-model' }] }) },
    body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /request\.\* is one of tools, tool_result, tokens/);
});
