// reasoning.test.mjs — OptiLLM's reasoning techniques through the real binaries, with the
// official openai and @anthropic-ai/sdk clients: each technique's calls counted at aigw-mock,
// the fan-out's calls running at once (n calls with a delay D each take about D, not n·D), the
// final generation streamed chunk by chunk over time, usage and cost equal to the sum of what
// the mock answered (its /__stats usage totals), the calls in the access log as attempts with
// their steps, a failing branch falling back or the technique degrading, and bad input refused
// with 400 in each client's shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway } from './harness.mjs';

let mock, gw, oa, an;
let scopeSeq = 0;
const scope = () => `r${process.pid}-${++scopeSeq}`;

const config = (mockPort) => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - name: mock
    type: openai
    base_url: http://127.0.0.1:${mockPort}/v1
    api_key: k
    timeouts: {connect: 1s, first_byte: 3s, idle: 2s}
    models: [gpt-4o-mini, mock-model]
  - name: dead
    type: openai
    base_url: http://127.0.0.1:1/v1
    api_key: k
    timeouts: {connect: 500ms}
  - name: claude
    type: anthropic
    base_url: http://127.0.0.1:${mockPort}
    api_key: k
    models: [claude-mock]
routes:
  - name: sturdy
    strategy: {mode: fallback}
    targets: [{provider: dead, model: gpt-4o-mini}, {provider: mock, model: gpt-4o-mini}]
`;

before(async () => {
  mock = await startMock();
  gw = await startGateway(config(mock.port));
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
  an = new Anthropic({ baseURL: gw.url, apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

// The mock's counters from zero; what it served since.
async function fresh() { await mock.reset(); }
async function served() {
  const s = await mock.stats();
  return { calls: s.paths['/v1/chat/completions'] ?? 0, messages: s.paths['/v1/messages'] ?? 0, usage: s.usage };
}

// gpt-4o-mini's catalog prices (catalog/models.json): USD per million tokens
const PRICE = { input: 0.15, output: 0.6 };
const costOf = (u) => (u.prompt_tokens * PRICE.input + u.completion_tokens * PRICE.output) / 1e6;

async function chat(model, content, extra = {}) {
  const { data, response } = await oa.chat.completions
    .create({ model, messages: [{ role: 'user', content }], ...extra }).withResponse();
  return { data, headers: response.headers, id: response.headers.get('x-request-id') };
}

test('moa: three proposals, a critique and a synthesis; usage and cost are the sum of the five calls', async () => {
  await fresh();
  const { data, headers, id } = await chat('moa-gpt-4o-mini', 'What is the capital of France?');
  const s = await served();
  assert.equal(s.calls, 5, 'three proposals, one critique, one synthesis');
  assert.equal(headers.get('x-aigw-technique'), 'moa');
  assert.equal(headers.get('x-aigw-calls'), '5');
  assert.equal(data.usage.prompt_tokens, s.usage.prompt_tokens);
  assert.equal(data.usage.completion_tokens, s.usage.completion_tokens);
  assert.equal(data.usage.total_tokens, s.usage.prompt_tokens + s.usage.completion_tokens);
  assert.ok(Math.abs(Number(headers.get('x-aigw-cost-usd')) - costOf(data.usage)) < 1e-9,
    `x-aigw-cost-usd ${headers.get('x-aigw-cost-usd')} is the sum of the calls' costs ${costOf(data.usage)}`);
  // the synthesis saw the candidates and the critique (the mock echoes the start of its prompt)
  assert.match(data.choices[0].message.content, /^mock reply to: Original query: User: What is the capital/);
  const line = await gw.waitLog((l) => l.request_id === id);
  assert.equal(line.technique, 'moa');
  assert.deepEqual(line.attempts.map((a) => a.step), ['propose', 'propose', 'propose', 'critique', 'final']);
  assert.equal(line.usage.prompt_tokens, s.usage.prompt_tokens);
  assert.equal(line.usage.completion_tokens, s.usage.completion_tokens);
  assert.ok(Math.abs(line.cost_usd - costOf(data.usage)) < 1e-9);
});

test('self_consistency: the fan-out runs at once (five calls of 400 ms take about 400 ms) and the majority answers', async () => {
  await fresh();
  const sc = scope();
  const t0 = Date.now();
  const { data, headers } = await chat('gpt-4o-mini',
    `2+2? [[mock:ttfb_ms=400,scope=${sc},pick=the_answer_is_4|The_answer_is_5|so_the_answer_is_4.|answer:_5|I_say_the_answer_is_4]]`,
    { optillm_approach: 'self_consistency' });
  const ms = Date.now() - t0;
  const s = await served();
  assert.equal(s.calls, 5, 'five samples by default');
  assert.equal(headers.get('x-aigw-technique'), 'self_consistency');
  assert.ok(ms >= 380, `${ms} ms: the samples waited`);
  assert.ok(ms < 1400, `${ms} ms: five 400 ms calls ran concurrently (sequential would be 2000)`);
  assert.match(data.choices[0].message.content, /answer is 4/);
  assert.equal(data.usage.prompt_tokens, s.usage.prompt_tokens);
  assert.equal(data.usage.completion_tokens, s.usage.completion_tokens);
});

test('bon: n samples, n judge calls; the best-rated sample answers, and both steps fan out', async () => {
  await fresh();
  const sc = scope();
  const t0 = Date.now();
  const { data, headers } = await chat('bon-gpt-4o-mini',
    `Name a colour. [[mock:ttfb_ms=300,scope=${sc},pick=good_7|best_9|poor_2|fair_5]]`, { n: 4 });
  const ms = Date.now() - t0;
  const s = await served();
  assert.equal(s.calls, 8, 'four samples and four ratings');
  assert.equal(headers.get('x-aigw-calls'), '8');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.content, 'best 9');
  assert.ok(ms < 1600, `${ms} ms: two concurrent steps of 300 ms (sequential would be 2400)`);
  assert.equal(data.usage.prompt_tokens, s.usage.prompt_tokens);
  assert.equal(data.usage.completion_tokens, s.usage.completion_tokens);
  // the judge saw each sample as an assistant turn followed by OptiLLM's question
  const rates = (await mock.requests('/v1/chat/completions')).map((r) => JSON.parse(r.body))
    .filter((b) => b.messages.at(-1).content === 'Rate the above response:');
  assert.equal(rates.length, 4);
  assert.ok(rates.every((b) => b.messages.at(-2).role === 'assistant' && b.temperature === 0.1 && b.max_tokens === 256));
});

test('cot_reflection streams only the <output> part, chunk by chunk, with the summed usage', async () => {
  await fresh();
  const stream = await oa.chat.completions.create({
    model: 'cot_reflection-gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Is 7 prime? [[mock:chunk_delay_ms=40]]' }],
  });
  const pieces = [], times = [];
  let usage = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0]?.delta?.content;
    if (c) { pieces.push(c); times.push(Date.now()); }
    if (chunk.usage) usage = chunk.usage;
  }
  const text = pieces.join('');
  assert.equal(text, 'mock reply to: User: Is 7 prime?');
  assert.doesNotMatch(text, /thinking|reflection|output>/);
  assert.ok(pieces.length > 3, `${pieces.length} content chunks`);
  assert.ok(times.at(-1) - times[0] >= 100, 'the chunks arrived over time, as the provider sent them');
  const s = await served();
  assert.equal(s.calls, 1);
  assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [s.usage.prompt_tokens, s.usage.completion_tokens]);
  // the one call asked for OptiLLM's format in its system prompt, at its temperature
  const [req] = (await mock.requests('/v1/chat/completions')).map((r) => JSON.parse(r.body));
  assert.match(req.messages[0].content, /<output>/);
  assert.equal(req.temperature, 0.6);
});

test('moa streamed: the earlier steps are buffered, the synthesis streams over time (openai stream helper)', async () => {
  await fresh();
  const runner = oa.chat.completions.stream({
    model: 'moa-gpt-4o-mini', stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Write words. [[mock:words=12,chunk_delay_ms=30]]' }],
  });
  const times = [];
  runner.on('content', () => times.push(Date.now()));
  const final = await runner.finalChatCompletion();
  const s = await served();
  assert.equal(s.calls, 5);
  assert.equal(final.choices[0].message.content, 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12');
  assert.ok(times.length >= 12, `${times.length} content events`);
  assert.ok(times.at(-1) - times[0] >= 200, 'the synthesis arrived word by word');
  assert.equal(final.usage.prompt_tokens, s.usage.prompt_tokens);
  assert.equal(final.usage.completion_tokens, s.usage.completion_tokens);
});

test('re2 and plansearch: the prompts OptiLLM sends, and the final step streamed', async () => {
  await fresh();
  const { data } = await chat('re2-gpt-4o-mini', 'How many r in strawberry?');
  let [req] = (await mock.requests('/v1/chat/completions')).map((r) => JSON.parse(r.body));
  assert.equal(req.messages.at(-1).content,
    'User: How many r in strawberry?\nRead the question again: User: How many r in strawberry?');
  assert.match(data.choices[0].message.content, /^mock reply to: User: How many r/);

  await fresh();
  const stream = await oa.chat.completions.create({
    model: 'plansearch-gpt-4o-mini', stream: true,
    messages: [{ role: 'user', content: 'Sum two integers. [[mock:chunk_delay_ms=5]]' }],
  });
  let chunks = 0, text = '';
  for await (const c of stream) if (c.choices[0]?.delta?.content) { chunks++; text += c.choices[0].delta.content; }
  assert.ok(chunks > 3, `${chunks} chunks`);
  const reqs = (await mock.requests('/v1/chat/completions')).map((r) => JSON.parse(r.body));
  assert.equal(reqs.length, 4, 'observations, derived observations, a plan, its code');
  assert.match(reqs[0].messages.at(-1).content, /Please provide 3 observations\./);
  assert.match(reqs[1].messages.at(-1).content, /Here are the existing observations:\n1\. mock reply to:/);
  assert.match(reqs[2].messages.at(-1).content, /Observation 1: mock reply to:/);
  assert.match(reqs[3].messages.at(-1).content, /Please implement the solution in Python\./);
  assert.equal(reqs.filter((b) => b.stream).length, 1, 'only the last call streams');
  assert.match(text, /^mock reply to: You are an expert Python programmer/);
});

test('Anthropic clients: moa streamed as Anthropic events and cot_reflection as a message, usage summed', async () => {
  await fresh();
  const stream = an.messages.stream({
    model: 'moa-claude-mock', max_tokens: 300,
    messages: [{ role: 'user', content: 'Say words. [[mock:words=8,chunk_delay_ms=20]]' }],
  });
  let deltas = 0;
  stream.on('text', () => deltas++);
  const msg = await stream.finalMessage();
  let s = await served();
  assert.equal(s.messages, 5, 'five calls, to the Anthropic provider');
  assert.equal(msg.content[0].text, 'w1 w2 w3 w4 w5 w6 w7 w8');
  assert.ok(deltas >= 8, `${deltas} text deltas`);
  assert.equal(msg.usage.input_tokens, s.usage.prompt_tokens);
  assert.equal(msg.usage.output_tokens, s.usage.completion_tokens);

  await fresh();
  const m = await an.messages.create({
    model: 'claude-mock', max_tokens: 200, optillm_approach: 'cot_reflection',
    messages: [{ role: 'user', content: 'Is 9 prime?' }],
  });
  s = await served();
  assert.equal(m.content[0].text, 'mock reply to: User: Is 9 prime?');
  assert.equal(m.usage.input_tokens, s.usage.prompt_tokens);
  assert.equal(m.usage.output_tokens, s.usage.completion_tokens);
});

test('a failing branch: a route falls back for each call; samples that fail are left out of the vote', async () => {
  await fresh();
  const { data, id } = await chat('moa-sturdy', 'Fallbacks per call?');
  assert.match(data.choices[0].message.content, /^mock reply to: Original query/);
  assert.equal((await served()).calls, 5);
  const line = await gw.waitLog((l) => l.request_id === id);
  const dead = line.attempts.filter((a) => a.provider === 'dead');
  const ok = line.attempts.filter((a) => a.provider === 'mock' && a.outcome === 'ok');
  assert.ok(dead.length >= 1 && dead.every((a) => a.outcome !== 'ok'), 'the dead target was tried');
  assert.equal(ok.length, 5, 'each call fell back to the live target');
  assert.ok(ok.every((a) => a.path === 'sturdy/1'), 'answered by the fallback target');
  for (const step of ['propose', 'critique', 'final']) // each call walked the route from its first target
    assert.ok(line.attempts.some((a) => a.provider === 'dead' && a.step === step), step);

  await fresh();
  const sc = scope();
  const r = await chat('self_consistency-gpt-4o-mini',
    `Pick. [[mock:fail_first=2,status=500,scope=${sc}]]`);
  assert.match(r.data.choices[0].message.content, /^mock reply to: User: Pick\./);
  const l2 = await gw.waitLog((l) => l.request_id === r.id);
  assert.ok(l2.attempts.some((a) => a.status === 500), 'two samples failed');
  assert.equal(r.data.usage.prompt_tokens, (await served()).usage.prompt_tokens);

  // every call failing: the provider's error, in the client's shape
  await assert.rejects(chat('moa-gpt-4o-mini', 'x [[mock:status=503]]'), (e) => {
    assert.ok(e instanceof OpenAI.APIError && e.status === 503, `${e.status} ${e.message}`);
    assert.match(e.message, /moa: its propose call failed/);
    return true;
  });
});

test('bad input: an unknown approach, one aigw does not run, n too large — 400 in each client shape', async () => {
  await fresh();
  await assert.rejects(chat('gpt-4o-mini', 'x', { optillm_approach: 'wizardry' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'optillm_approach');
    return true;
  });
  await assert.rejects(chat('mcts-gpt-4o-mini', 'x'), OpenAI.BadRequestError);
  await assert.rejects(chat('moa-bon-gpt-4o-mini', 'x'), OpenAI.BadRequestError);
  await assert.rejects(chat('bon-gpt-4o-mini', 'x', { n: 9 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.match(e.message, /at most 8 samples/);
    return true;
  });
  await assert.rejects(chat('moa-gpt-4o-mini', 'x', { n: 2 }), OpenAI.BadRequestError);
  await assert.rejects(an.messages.create({
    model: 'claude-mock', max_tokens: 10, optillm_approach: 'leap', messages: [{ role: 'user', content: 'x' }],
  }), (e) => {
    assert.ok(e instanceof Anthropic.BadRequestError);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'invalid_request_error');
    return true;
  });
  assert.equal((await served()).calls + (await served()).messages, 0, 'nothing reached a provider');
  // a name the config serves is a model, and an ordinary model name is routed as before
  const plain = await chat('mock-model', 'plain');
  assert.equal(plain.headers.get('x-aigw-technique'), null);
});
