// responses.test.mjs — OpenAI's Responses API (POST /v1/responses) through aigw, with the
// official `openai` SDK's client.responses, against every provider format aigw-mock imitates:
// an OpenAI-compatible chat API, Anthropic and Gemini (translated through the canonical form),
// and a provider with its own Responses API (responses: native: the client's bytes forwarded).
// The mock's replies follow one rule set in every format (tools/mock/README.md), so the same
// request must give the same text, tool calls, arguments and usage whichever provider serves
// it; previous_response_id and store work from aigw's response store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startGateway } from './harness.mjs';

let mock, gw, oai, catalogDir;

const UPSTREAMS = ['openai', 'anthropic', 'gemini', 'native'];
const TRANSLATED = (u) => u !== 'native';
const ruleArgs = (q, i) => ({ city: 'Paris', query: q, n: i, units: ['c', 'f'], note: 'line1\nline2 "quoted" ✓ é' });
const TOOLS = [
  { type: 'function', name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
  { type: 'function', name: 'get_time', description: 'time', parameters: { type: 'object', properties: {} } },
];
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  catalogDir = mkdtempSync(join(tmpdir(), 'aigw-resp-'));
  const catalog = join(catalogDir, 'prices.json');
  writeFileSync(catalog, JSON.stringify({
    models: [{ provider: 'openai', model: 'm-native', input: 1, output: 2, taken: '2026-12' }],
  }));
  gw = await startGateway(`
catalog: ${catalog}
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
responses_store: {max_bytes: 4MiB, ttl: 10m}
providers:
  - {name: up-openai, type: openai, base_url: "${base}/v1", api_key: k1, models: [m-openai],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-anthropic, type: anthropic, base_url: "${base}", api_key: k2, models: [m-anthropic],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-gemini, type: gemini, base_url: "${base}", api_key: k3, models: [m-gemini],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-native, type: openai, base_url: "${base}/v1", api_key: k4, models: [m-native], responses: native,
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
models:
  - {name: native-alias, provider: up-native, model: m-native}
`);
  oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
});

// What a Response says, reduced to the facts the mock's rules fix.
function facts(r) {
  const calls = r.output.filter((o) => o.type === 'function_call');
  return {
    status: r.status,
    text: r.output_text,
    calls: calls.map((c) => ({ call_id: c.call_id, name: c.name, args: JSON.parse(c.arguments), raw: c.arguments })),
    reasoning: r.output.filter((o) => o.type === 'reasoning').map((o) => o.summary.map((s) => s.text).join('')),
    input: r.usage?.input_tokens, output: r.usage?.output_tokens, total: r.usage?.total_tokens,
  };
}

async function create(body, stream) {
  if (!stream) return oai.responses.create(body);
  return oai.responses.stream(body).finalResponse();
}

// The body the mock received last (what aigw sent upstream).
async function lastUpstreamBody() {
  const { requests } = await (await fetch(`http://127.0.0.1:${mock.port}/__requests`)).json();
  return JSON.parse(requests[requests.length - 1].body);
}

// A raw SSE stream, split into its events ({event, data}).
async function rawEvents(body) {
  const res = await fetch(`${gw.baseURL}/responses`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const event = b.match(/^event: (.*)$/m)?.[1];
    const data = JSON.parse(b.match(/^data: (.*)$/m)[1]);
    return { event, data };
  });
}

for (const upstream of UPSTREAMS) {
  const model = `m-${upstream}`;
  const who = `Responses client → ${upstream} provider`;

  test(`${who}: text with instructions, plain and streamed, same text and usage`, async () => {
    for (const stream of [false, true]) {
      const r = await create({ model, instructions: 'be brief', input: 'Hello there' }, stream);
      const f = facts(r);
      assert.equal(r.object, 'response');
      assert.match(r.id, TRANSLATED(upstream) ? /^resp_[0-9a-f]{48}$/ : /^resp_mock_/);
      assert.equal(f.status, 'completed', `stream=${stream}`);
      assert.equal(f.text, 'mock reply to: Hello there');
      assert.equal(f.input, 4, `input tokens (instructions + input), stream=${stream}`);
      assert.equal(f.output, 5);
      assert.equal(f.total, 9);
      assert.equal(r.instructions, 'be brief');
      assert.equal(r.model, model);
    }
  });

  test(`${who}: parallel function calls, arguments byte for byte, then their outputs in the next turn`, async () => {
    for (const stream of [false, true]) {
      const r = await create({ model, tools: TOOLS, input: 'weather please [[mock:tool_calls=2]]' }, stream);
      const f = facts(r);
      assert.deepEqual(f.calls.map((c) => c.name), ['get_weather', 'get_time'], `stream=${stream}`);
      f.calls.forEach((c, i) => assert.equal(c.raw, JSON.stringify(ruleArgs('weather please', i))));
      assert.ok(f.calls.every((c) => typeof c.call_id === 'string' && c.call_id.length > 0));
      assert.notEqual(f.calls[0].call_id, f.calls[1].call_id);
      // the next turn carries the calls and their outputs as items (store off: nothing kept)
      const next = await create({
        model, tools: TOOLS, store: false,
        input: [
          { role: 'user', content: 'weather please' },
          ...r.output.filter((o) => o.type === 'function_call'),
          { type: 'function_call_output', call_id: f.calls[0].call_id, output: 'sunny' },
          { type: 'function_call_output', call_id: f.calls[1].call_id, output: 'noon' },
        ],
      }, stream);
      assert.equal(next.output_text, 'mock saw 2 tool results: sunny | noon', `stream=${stream}`);
    }
  });

  if (TRANSLATED(upstream)) test(`${who}: previous_response_id continues a conversation, tool outputs included`, async () => {
    const first = await oai.responses.create({ model, input: 'my name is Ann' });
    const second = await oai.responses.create({ model, previous_response_id: first.id, input: 'what is my name' });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, 'mock reply to: what is my name');
    assert.equal(second.usage.input_tokens, 4 + 7 + 4, 'the first turn (4 words and the 7 of its reply) went upstream again');
    // the agent loop: a call, then only its output and previous_response_id
    const call = await oai.responses.create({ model, tools: TOOLS, input: 'weather please [[mock:tool_calls=1]]' });
    const fc = call.output.find((o) => o.type === 'function_call');
    const done = await oai.responses.stream({
      model, tools: TOOLS, previous_response_id: call.id,
      input: [{ type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }],
    }).finalResponse();
    assert.equal(done.output_text, 'mock saw 1 tool results: sunny');
  });

  test(`${who}: an image and a JSON schema cross`, async () => {
    const img = await oai.responses.create({
      model,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'describe' }, { type: 'input_image', image_url: `data:image/png;base64,${PNG}` }] }],
    });
    assert.equal(img.output_text, 'mock reply to: describe [images: 1]');
    const json = await oai.responses.create({
      model, input: 'give json',
      text: { format: { type: 'json_schema', name: 'reply', schema: { type: 'object', properties: { reply: { type: 'string' } } } } },
    });
    assert.deepEqual(JSON.parse(json.output_text), { reply: 'mock reply to: give json' });
  });

  test(`${who}: max_output_tokens cut short is status incomplete`, async () => {
    for (const stream of [false, true]) {
      const r = await create({ model, input: 'count [[mock:words=10]]', max_output_tokens: 3 }, stream);
      assert.equal(r.status, 'incomplete', `stream=${stream}`);
      assert.equal(r.incomplete_details.reason, 'max_output_tokens');
      assert.equal(r.output_text, 'w1 w2 w3');
    }
  });

  test(`${who}: the stream's events are numbered in order and end with response.completed`, async () => {
    const events = await rawEvents({ model, tools: TOOLS, input: 'weather please [[mock:tool_calls=2]]' });
    events.forEach((e, i) => {
      assert.equal(e.data.sequence_number, i);
      assert.equal(e.event, e.data.type);
    });
    const types = events.map((e) => e.data.type);
    assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
    assert.equal(types[types.length - 1], 'response.completed');
    const args = events.filter((e) => e.data.type === 'response.function_call_arguments.delta');
    // Gemini sends each call whole; the others in pieces of at most 5 bytes
    assert.ok(upstream === 'gemini' ? args.length === 2 : args.length > 20, `argument deltas: ${args.length}`);
    const doneArgs = events.filter((e) => e.data.type === 'response.function_call_arguments.done').map((e) => e.data.arguments);
    assert.deepEqual(doneArgs, [0, 1].map((i) => JSON.stringify(ruleArgs('weather please', i))));
    const last = events[events.length - 1].data.response;
    assert.equal(last.output.length, 2);
    assert.equal(last.usage.output_tokens, 20);
  });
}

test('reasoning.effort reaches a provider that thinks, and comes back as a reasoning item', async () => {
  for (const stream of [false, true]) {
    const r = await create({ model: 'm-anthropic', input: 'think about it', reasoning: { effort: 'low' } }, stream);
    const f = facts(r);
    assert.deepEqual(f.reasoning, ['mock thinking about: think about it'], `stream=${stream}`);
    assert.equal(r.output[0].type, 'reasoning');
    assert.equal(f.text, 'mock reply to: think about it');
  }
  const sent = await lastUpstreamBody();
  assert.equal(sent.thinking.type, 'enabled');
});

test('responses are kept: retrieve and delete by id; store:false and unknown ids are 400 previous_response_not_found', async () => {
  const r = await oai.responses.create({ model: 'm-openai', input: 'keep me' });
  const got = await oai.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output[0].content[0].text, 'mock reply to: keep me');
  await oai.responses.delete(r.id);
  await assert.rejects(oai.responses.retrieve(r.id), (e) => e.status === 404);
  await assert.rejects(oai.responses.create({ model: 'm-openai', previous_response_id: r.id, input: 'x' }),
    (e) => e.status === 400 && e.code === 'previous_response_not_found' && e.param === 'previous_response_id');
  const unstored = await oai.responses.create({ model: 'm-openai', input: 'forget me', store: false });
  await assert.rejects(oai.responses.create({ model: 'm-openai', previous_response_id: unstored.id, input: 'x' }),
    (e) => e.status === 400 && e.code === 'previous_response_not_found');
});

test('a built-in tool is refused with a 400 that names it; malformed input is a 400 in OpenAI\'s shape', async () => {
  await assert.rejects(oai.responses.create({ model: 'm-anthropic', input: 'search', tools: [{ type: 'web_search' }] }),
    (e) => e.status === 400 && e.param === 'tools' && /web_search/.test(e.message));
  const res = await fetch(`${gw.baseURL}/responses`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm-gemini', input: 5 }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.param, 'input');
  assert.equal(body.error.type, 'invalid_request_error');
});

test('an upstream stream that breaks ends the Responses stream with an error the SDK raises', async () => {
  const s = oai.responses.stream({ model: 'm-anthropic', input: 'Hello [[mock:words=20,stream_error=6]]' });
  await assert.rejects(s.finalResponse(), (e) => /error|ended/i.test(String(e.message)));
});

test('a provider with its own Responses API gets the client\'s bytes; usage and cost are read from its reply and stream', async () => {
  const body = { model: 'm-native', input: 'Hello there', tools: [{ type: 'web_search' }], tool_choice: 'none', store: true };
  const res = await fetch(`${gw.baseURL}/responses`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, 'a built-in tool is the provider\'s to judge');
  assert.equal(res.headers.get('x-aigw-provider'), 'up-native');
  assert.equal(await lastUpstreamBody().then(JSON.stringify), JSON.stringify(body), 'forwarded byte for byte');
  const r = await res.json();
  assert.equal(r.output_text ?? r.output[0].content[0].text, 'mock reply to: Hello there');
  assert.equal(res.headers.get('x-aigw-cost-usd'), '0.000012', '2 input and 5 output tokens at $1 and $2 per million');
  // an alias: only the model is spliced in
  await oai.responses.create({ model: 'native-alias', input: 'via alias' });
  const sent = await lastUpstreamBody();
  assert.equal(sent.model, 'm-native');
  // the stream passes through event for event; its last event gets the cost
  const events = await rawEvents({ model: 'm-native', input: 'Hello there' });
  const last = events[events.length - 1].data;
  assert.equal(last.type, 'response.completed');
  assert.equal(last.aigw.cost_usd, 0.000012);
  events.forEach((e, i) => assert.equal(e.data.sequence_number, i));
});

test('previous_response_id to a provider with its own Responses API is its to resolve', async () => {
  await assert.rejects(oai.responses.create({ model: 'm-native', previous_response_id: 'resp_theirs', input: 'x' }),
    (e) => e.status === 400 && e.code === 'previous_response_not_found');
  assert.equal((await lastUpstreamBody()).previous_response_id, 'resp_theirs', 'forwarded, not answered by aigw');
});
