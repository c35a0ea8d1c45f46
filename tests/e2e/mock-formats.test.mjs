// mock-formats.test.mjs — aigw-mock alone (no gateway), driven by the providers' official
// clients: @anthropic-ai/sdk for the Messages API, openai for chat completions and the
// Responses API (its stream helper included), @google/genai (and raw fetch, for the bytes) for
// Gemini. It proves that the mock speaks each wire format as the official client expects, and
// that one conversation gets the same reply, tool calls and usage in every format (the contract
// of tools/mock/README.md, which the gateway's translation tests rely on). Loopback only; every request is bounded by the clients' timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { createHash, randomBytes } from 'node:crypto';
import { startMock, headerValues } from './harness.mjs';

let mock, anthropic, openai, gemini, geminiV1;

before(async () => {
  mock = await startMock();
  anthropic = new Anthropic({ baseURL: mock.url, apiKey: 'test-key', maxRetries: 0, timeout: 20000 });
  openai = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'test-key', maxRetries: 0, timeout: 20000 });
  const httpOptions = { baseUrl: mock.url, apiVersion: 'v1beta', timeout: 20000, retryOptions: { attempts: 1 } };
  gemini = new GoogleGenAI({ apiKey: 'test-key', httpOptions });
  geminiV1 = new GoogleGenAI({ apiKey: 'test-key', httpOptions: { ...httpOptions, apiVersion: 'v1' } });
});

after(async () => {
  await mock?.stop();
});

// The rule's tool-call arguments (README.md, rule 2).
const ruleArgs = (query, n) => ({ city: 'Paris', query, n, units: ['c', 'f'], note: 'line1\nline2 "quoted" ✓ é' });
const weatherTools = [
  { name: 'get_weather', description: 'weather', input_schema: { type: 'object', properties: {} } },
  { name: 'get_time', description: 'time', input_schema: { type: 'object', properties: {} } },
];
const openaiTools = weatherTools.map((t) => ({
  type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema },
}));
const geminiTools = [{ functionDeclarations: weatherTools.map((t) => ({ name: t.name, description: t.description })) }];

const anthropicHeaders = { 'content-type': 'application/json', 'x-api-key': 'k', 'anthropic-version': '2023-06-01' };

// Splits an SSE body into events: [{event, data}] (data parsed as JSON).
function sseEvents(text, separator = '\n\n') {
  return text.split(separator).filter((b) => b.trim()).map((block) => {
    const ev = {};
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
    }
    return ev;
  });
}

// ---- Anthropic ------------------------------------------------------------------------------

test('anthropic: non-stream message — content, stop_reason, usage, ids and request-id', async () => {
  const { data, response } = await anthropic.messages
    .create({ model: 'claude-mock', max_tokens: 100, system: 'be brief', messages: [{ role: 'user', content: 'Hello there' }] })
    .withResponse();
  assert.match(data.id, /^msg_mock_/);
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.equal(data.model, 'claude-mock');
  assert.deepEqual(data.content, [{ type: 'text', text: 'mock reply to: Hello there' }]);
  assert.equal(data.stop_reason, 'end_turn');
  assert.equal(data.stop_sequence, null);
  assert.deepEqual(data.usage, { input_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 5 });
  assert.match(response.headers.get('request-id'), /^req_/);
  assert.equal(data._request_id, response.headers.get('request-id'));
});

test('anthropic: stream() reassembles the same message; text arrives word by word', async () => {
  const params = { model: 'claude-mock', max_tokens: 100, system: 'be brief', messages: [{ role: 'user', content: 'Hello there' }] };
  const plain = await anthropic.messages.create(params);
  const stream = anthropic.messages.stream(params);
  const deltas = [];
  stream.on('text', (t) => deltas.push(t));
  const final = await stream.finalMessage();
  assert.deepEqual(final.content, plain.content);
  assert.deepEqual(final.usage, plain.usage);
  assert.equal(final.stop_reason, 'end_turn');
  assert.deepEqual(deltas, ['mock ', 'reply ', 'to: ', 'Hello ', 'there']);
});

test('anthropic: the raw event sequence — event names match data.type, ping after message_start', async () => {
  const res = await fetch(`${mock.url}/v1/messages`, {
    method: 'POST', headers: anthropicHeaders,
    body: JSON.stringify({ model: 'claude-mock', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'two words' }] }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.match(res.headers.get('request-id'), /^req_/);
  const events = sseEvents(await res.text());
  for (const e of events) assert.equal(e.event, e.data.type);
  assert.deepEqual(events.map((e) => e.event), [
    'message_start', 'ping', 'content_block_start',
    'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  const start = events[0].data.message;
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.deepEqual(start.usage, { input_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 });
  assert.deepEqual(events[2].data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  const delta = events.at(-2).data;
  assert.deepEqual(delta.delta, { stop_reason: 'end_turn', stop_sequence: null });
  assert.equal(delta.usage.output_tokens, 5);
});

test('anthropic: forced tool — streamed input_json_delta fragments (≤ 5 bytes) reassemble to the rule object', async () => {
  const params = {
    model: 'claude-mock', max_tokens: 100, tools: weatherTools, tool_choice: { type: 'tool', name: 'get_time' },
    messages: [{ role: 'user', content: 'what now? ✓' }],
  };
  const expected = [{ type: 'tool_use', id: 'toolu_mock_0', name: 'get_time', input: ruleArgs('what now? ✓', 0) }];
  const plain = await anthropic.messages.create(params);
  assert.deepEqual(plain.content.map(({ type, id, name, input }) => ({ type, id, name, input })), expected);
  assert.equal(plain.stop_reason, 'tool_use');
  assert.equal(plain.usage.output_tokens, 10);

  const stream = anthropic.messages.stream(params);
  const fragments = [];
  stream.on('streamEvent', (e) => {
    if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') fragments.push(e.delta.partial_json);
  });
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.map(({ type, id, name, input }) => ({ type, id, name, input })), expected);
  assert.equal(final.stop_reason, 'tool_use');
  assert.ok(fragments.length > 20, `${fragments.length} fragments`);
  for (const f of fragments) assert.ok(Buffer.byteLength(f) <= 5 && Buffer.byteLength(f) > 0, JSON.stringify(f));
  assert.equal(fragments.join(''), JSON.stringify(ruleArgs('what now? ✓', 0)));
});

test('anthropic: parallel tool calls (tool_calls=3 over two tools) are separate blocks with increasing index', async () => {
  const params = {
    model: 'claude-mock', max_tokens: 100, tools: weatherTools,
    messages: [{ role: 'user', content: 'all of it [[mock:tool_calls=3]]' }],
  };
  const expected = [0, 1, 2].map((i) => ({
    type: 'tool_use', id: `toolu_mock_${i}`, name: weatherTools[i % 2].name, input: ruleArgs('all of it', i),
  }));
  const plain = await anthropic.messages.create(params);
  assert.deepEqual(plain.content.map(({ type, id, name, input }) => ({ type, id, name, input })), expected);
  assert.equal(plain.usage.output_tokens, 30);
  const starts = [];
  const stream = anthropic.messages.stream(params);
  stream.on('streamEvent', (e) => { if (e.type === 'content_block_start') starts.push([e.index, e.content_block.id]); });
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.map(({ type, id, name, input }) => ({ type, id, name, input })), expected);
  assert.deepEqual(starts, [[0, 'toolu_mock_0'], [1, 'toolu_mock_1'], [2, 'toolu_mock_2']]);
});

test('anthropic: tool results in the last user message — rule 1 text, results joined with " | "', async () => {
  const r = await anthropic.messages.create({
    model: 'claude-mock', max_tokens: 100, tools: weatherTools,
    messages: [
      { role: 'user', content: 'weather? [[mock:tool_calls=2]]' },
      { role: 'assistant', content: [
        { type: 'tool_use', id: 'toolu_mock_0', name: 'get_weather', input: {} },
        { type: 'tool_use', id: 'toolu_mock_1', name: 'get_time', input: {} },
      ] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_mock_0', content: 'sunny 20C' },
        { type: 'tool_result', tool_use_id: 'toolu_mock_1', content: [{ type: 'text', text: 'noon' }] },
      ] },
    ],
  });
  assert.deepEqual(r.content, [{ type: 'text', text: 'mock saw 2 tool results: sunny 20C | noon' }]);
  assert.equal(r.stop_reason, 'end_turn');
  assert.equal(r.usage.input_tokens, 4); // weather? (directives do not count) + sunny 20C + noon
});

test('anthropic: thinking block first (signature), same in the stream', async () => {
  const params = {
    model: 'claude-mock', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'think hard' }],
  };
  const plain = await anthropic.messages.create(params);
  assert.equal(plain.content.length, 2);
  assert.equal(plain.content[0].type, 'thinking');
  assert.equal(plain.content[0].thinking, 'mock thinking about: think hard');
  assert.match(plain.content[0].signature, /^mock-sig-[0-9a-f]{16}$/);
  assert.deepEqual(plain.content[1], { type: 'text', text: 'mock reply to: think hard' });
  const stream = anthropic.messages.stream(params);
  const thinking = [];
  stream.on('thinking', (d) => thinking.push(d));
  const final = await stream.finalMessage();
  assert.deepEqual(final.content, plain.content);
  assert.equal(thinking.join(''), 'mock thinking about: think hard');
});

test('anthropic: usage mapping — cached, cache_write, reasoning (non-stream and stream agree)', async () => {
  const params = {
    model: 'claude-mock', max_tokens: 100, system: 'one two',
    messages: [{ role: 'user', content: 'three four five [[mock:cached=2,cache_write=1,reasoning=4]]' }],
  };
  const expectedUsage = {
    input_tokens: 5 - 2 - 1, cache_read_input_tokens: 2, cache_creation_input_tokens: 1, output_tokens: 6 + 4,
    output_tokens_details: { thinking_tokens: 4 },
  };
  const plain = await anthropic.messages.create(params);
  assert.deepEqual(plain.usage, expectedUsage);
  const final = await anthropic.messages.stream(params).finalMessage();
  assert.deepEqual(final.usage, expectedUsage);
});

test('anthropic: max_tokens cuts words (stop_reason max_tokens); stop_sequences cut and are reported', async () => {
  const base = { model: 'claude-mock', messages: [{ role: 'user', content: 'one two three' }] };
  const short = await anthropic.messages.create({ ...base, max_tokens: 2 });
  assert.deepEqual(short.content, [{ type: 'text', text: 'mock reply' }]);
  assert.equal(short.stop_reason, 'max_tokens');
  assert.equal(short.usage.output_tokens, 2);
  const stopped = await anthropic.messages.create({ ...base, max_tokens: 100, stop_sequences: ['zzz', 'two'] });
  assert.deepEqual(stopped.content, [{ type: 'text', text: 'mock reply to: one ' }]);
  assert.equal(stopped.stop_reason, 'stop_sequence');
  assert.equal(stopped.stop_sequence, 'two');
  const streamed = await anthropic.messages.stream({ ...base, max_tokens: 100, stop_sequences: ['two'] }).finalMessage();
  assert.deepEqual(streamed.content, stopped.content);
  assert.equal(streamed.stop_sequence, 'two');
});

test('anthropic: images are counted, JSON output wraps the reply, ?beta=true is the same endpoint', async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
  const r = await anthropic.messages.create({
    model: 'claude-mock', max_tokens: 100,
    messages: [{ role: 'user', content: [
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
      { type: 'image', source: { type: 'url', url: 'https://example.invalid/x.png' } },
      { type: 'text', text: 'what is this' },
    ] }],
  });
  assert.deepEqual(r.content, [{ type: 'text', text: 'mock reply to: what is this [images: 2]' }]);
  const json = await anthropic.messages.create({
    model: 'claude-mock', max_tokens: 100, messages: [{ role: 'user', content: 'give json' }],
    output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: { reply: { type: 'string' } } } } },
  });
  assert.equal(json.content[0].text, '{"reply":"mock reply to: give json"}');
  await mock.reset();
  const beta = await anthropic.beta.messages.create({ model: 'claude-beta', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(beta.content[0].text, 'mock reply to: hi');
  const s = await mock.stats();
  assert.equal(s.paths['/v1/messages'], 1);
  assert.equal(s.models['claude-beta'], 1);
});

test('anthropic: count_tokens gives the prompt-token count', async () => {
  const r = await anthropic.messages.countTokens({
    model: 'claude-mock', system: [{ type: 'text', text: 'be brief' }],
    messages: [{ role: 'user', content: 'Hello there [[mock:cached=1]]' }],
  });
  assert.deepEqual(r, { input_tokens: 4 });
  const s = await mock.stats();
  assert.ok(s.paths['/v1/messages/count_tokens'] >= 1);
});

test('anthropic: errors arrive as the SDK error classes, with type and message intact', async () => {
  const ask = (text) => anthropic.messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: text }] });
  await assert.rejects(ask('x [[mock:status=429,retry_after=3]]'), (e) => {
    assert.ok(e instanceof Anthropic.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.error.error.message, 'aigw-mock injected status 429');
    assert.equal(e.headers.get('retry-after'), '3');
    assert.match(e.requestID, /^req_/);
    return true;
  });
  await assert.rejects(ask('x [[mock:status=529]]'), (e) => {
    assert.ok(e instanceof Anthropic.InternalServerError);
    assert.equal(e.status, 529);
    assert.equal(e.type, 'overloaded_error');
    assert.equal(e.headers.get('retry-after'), '1');
    return true;
  });
  await assert.rejects(ask('x [[mock:status=404]]'), (e) => e instanceof Anthropic.NotFoundError && e.type === 'not_found_error');
  await assert.rejects(ask('x [[mock:status=413]]'), (e) => e.status === 413 && e.type === 'request_too_large');
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'x-mock-status': '500' } }),
    (e) => e instanceof Anthropic.InternalServerError && e.type === 'api_error');
  // an in-band error after 4 events ends the stream: the SDK raises it
  const stream = anthropic.messages.stream({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'a b c [[mock:stream_error=4]]' }] });
  await assert.rejects(stream.finalMessage(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
    assert.equal(e.type, 'overloaded_error');
    return true;
  });
});

test('anthropic: the real API\'s request checks — key (401), anthropic-version (400), max_tokens (400)', async () => {
  const body = JSON.stringify({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
  const noVersion = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': 'k' }, body });
  assert.equal(noVersion.status, 400);
  const v = await noVersion.json();
  assert.equal(v.type, 'error');
  assert.equal(v.error.type, 'invalid_request_error');
  assert.match(v.error.message, /anthropic-version/);
  const noKey = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body });
  assert.equal(noKey.status, 401);
  assert.equal((await noKey.json()).error.type, 'authentication_error');
  const bearer = await fetch(`${mock.url}/v1/messages`, {
    method: 'POST', headers: { 'anthropic-version': '2023-06-01', authorization: 'Bearer t' }, body,
  });
  assert.equal(bearer.status, 200);
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-mock', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.error.error.message));
});

// ---- OpenAI ---------------------------------------------------------------------------------

test('openai: tool calls non-stream — content null, ids, arguments byte-equal to the rule object', async () => {
  const r = await openai.chat.completions.create({
    model: 'mock-model', tools: openaiTools, messages: [{ role: 'user', content: 'weather ✓ [[mock:tool_calls=2]]' }],
  });
  const m = r.choices[0].message;
  assert.equal(m.content, null);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(m.tool_calls.map((c) => [c.id, c.type, c.function.name]), [
    ['call_mock_0', 'function', 'get_weather'], ['call_mock_1', 'function', 'get_time'],
  ]);
  m.tool_calls.forEach((c, i) => assert.equal(c.function.arguments, JSON.stringify(ruleArgs('weather ✓', i))));
  assert.deepEqual(r.usage, { prompt_tokens: 2, completion_tokens: 20, total_tokens: 22 });
});

test('openai: tool calls stream — finalChatCompletion() arguments parse to the rule object; fragments ≤ 5 bytes', async () => {
  const params = {
    model: 'mock-model', tools: openaiTools, tool_choice: { type: 'function', function: { name: 'get_time' } },
    messages: [{ role: 'user', content: 'time é please' }],
  };
  const runner = openai.chat.completions.stream(params);
  const final = await runner.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].id, 'call_mock_0');
  assert.equal(calls[0].function.name, 'get_time');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), ruleArgs('time é please', 0));
  assert.equal(final.choices[0].finish_reason, 'tool_calls');

  const stream = await openai.chat.completions.create({ ...params, stream: true });
  const fragments = [];
  let first = null;
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      if (tc.id) first = tc;
      else fragments.push(tc.function.arguments);
    }
  }
  assert.deepEqual(first, { index: 0, id: 'call_mock_0', type: 'function', function: { name: 'get_time', arguments: '' } });
  assert.ok(fragments.length > 20);
  for (const f of fragments) assert.ok(Buffer.byteLength(f) <= 5 && f.length > 0);
  assert.equal(fragments.join(''), JSON.stringify(ruleArgs('time é please', 0)));
});

test('openai: parallel calls stream one after another; tool results give the rule 1 text', async () => {
  const final = await openai.chat.completions
    .stream({ model: 'mock-model', tools: openaiTools, messages: [{ role: 'user', content: 'both [[mock:tool_calls=3]]' }] })
    .finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments).n]), [
    ['call_mock_0', 'get_weather', 0], ['call_mock_1', 'get_time', 1], ['call_mock_2', 'get_weather', 2],
  ]);
  const r = await openai.chat.completions.create({
    model: 'mock-model', tools: openaiTools,
    messages: [
      { role: 'user', content: 'both [[mock:tool_calls=3]]' },
      { role: 'assistant', content: null, tool_calls: calls.map(({ id, type, function: f }) => ({ id, type, function: f })) },
      { role: 'tool', tool_call_id: 'call_mock_0', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_mock_1', content: [{ type: 'text', text: 'noon' }] },
      { role: 'tool', tool_call_id: 'call_mock_2', content: 'rain later' },
    ],
  });
  assert.equal(r.choices[0].message.content, 'mock saw 3 tool results: sunny | noon | rain later');
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('openai: JSON output, images, length and stop finishes', async () => {
  const json = await openai.chat.completions.create({
    model: 'mock-model', response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'as json' }],
  });
  assert.deepEqual(JSON.parse(json.choices[0].message.content), { reply: 'mock reply to: as json' });
  const img = await openai.chat.completions.create({
    model: 'mock-model', messages: [{ role: 'user', content: [
      { type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
    ] }],
  });
  assert.equal(img.choices[0].message.content, 'mock reply to: look [images: 1]');
  const short = await openai.chat.completions.create({
    model: 'mock-model', max_completion_tokens: 3, messages: [{ role: 'user', content: 'one two three' }],
  });
  assert.equal(short.choices[0].message.content, 'mock reply to:');
  assert.equal(short.choices[0].finish_reason, 'length');
  assert.equal(short.usage.completion_tokens, 3);
  const stopped = await openai.chat.completions.create({
    model: 'mock-model', stop: ['three'], messages: [{ role: 'user', content: 'one two three' }],
  });
  assert.equal(stopped.choices[0].message.content, 'mock reply to: one two ');
  assert.equal(stopped.choices[0].finish_reason, 'stop');
});

test('openai: usage details only when non-zero — cached_tokens and reasoning_tokens', async () => {
  const params = { model: 'mock-model', messages: [{ role: 'user', content: 'count [[mock:cached=1,reasoning=7]]' }] };
  const expected = {
    prompt_tokens: 1, completion_tokens: 4 + 7, total_tokens: 12,
    prompt_tokens_details: { cached_tokens: 1 }, completion_tokens_details: { reasoning_tokens: 7 },
  };
  const r = await openai.chat.completions.create(params);
  assert.deepEqual(r.usage, expected);
  const final = await openai.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
  assert.deepEqual(final.usage, expected);
  // cached tokens never exceed the prompt
  const clamped = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'two words [[mock:cached=9]]' }] });
  assert.deepEqual(clamped.usage.prompt_tokens_details, { cached_tokens: 2 });
});

test('openai: an in-band stream error (stream_error=N) makes the SDK raise; no [DONE]', async () => {
  const stream = await openai.chat.completions.create({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'a b [[mock:stream_error=2]]' }] });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (e) => e instanceof OpenAI.APIError && /injected stream error/.test(e.message));
  assert.equal(text, 'mock ');
  const raw = await (await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST', body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'a [[mock:stream_error=1]]' }] }),
  })).text();
  assert.doesNotMatch(raw, /\[DONE\]/);
  assert.equal(sseEvents(raw).length, 2);
});

// ---- OpenAI Responses -----------------------------------------------------------------------

const responsesTools = weatherTools.map((t) => ({
  type: 'function', name: t.name, description: t.description, parameters: t.input_schema, strict: false,
}));
// An output item as the wire has it: the SDK's helpers add `parsed` / `parsed_arguments`.
const wireItem = ({ parsed_arguments, ...item }) =>
  item.content ? { ...item, content: item.content.map(({ parsed, ...part }) => part) } : item;
// Ids differ between two responses (resp_/msg_/rs_/fc_ carry a counter); call ids do not.
const noIds = (o) => JSON.parse(JSON.stringify(o, (k, v) => (k === 'id' || k === 'item_id' ? undefined : v)));

test('responses: create — the Response object, its echoed settings, output_text and usage', async () => {
  const r = await openai.responses.create({
    model: 'mock-model', instructions: 'be brief', input: 'Hello there [[mock:cached=1,reasoning=3]]',
    temperature: 0.7, metadata: { k: 'v' }, store: false,
  });
  assert.match(r.id, /^resp_mock_/);
  const { id, output, usage, output_text, ...rest } = r;
  assert.deepEqual(rest, {
    object: 'response', created_at: 1700000000, status: 'completed', error: null, incomplete_details: null,
    instructions: 'be brief', max_output_tokens: null, model: 'mock-model', parallel_tool_calls: true,
    previous_response_id: null, reasoning: { effort: null, summary: null }, store: false, temperature: 0.7,
    text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: 1, truncation: 'disabled',
    user: null, metadata: { k: 'v' },
  });
  assert.equal(output.length, 1);
  assert.match(output[0].id, /^msg_/);
  assert.deepEqual(noIds(output[0]), {
    type: 'message', status: 'completed', role: 'assistant',
    content: [{ type: 'output_text', text: 'mock reply to: Hello there', annotations: [], logprobs: [] }],
  });
  assert.equal(output_text, 'mock reply to: Hello there');
  assert.deepEqual(usage, {
    input_tokens: 4, input_tokens_details: { cached_tokens: 1 },
    output_tokens: 5 + 3, output_tokens_details: { reasoning_tokens: 3 }, total_tokens: 12,
  });
  // the same request in chat completions
  const chat = await openai.chat.completions.create({
    model: 'mock-model', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello there [[mock:cached=1,reasoning=3]]' }],
  });
  assert.equal(chat.choices[0].message.content, output_text);
  assert.deepEqual(chat.usage, {
    prompt_tokens: usage.input_tokens, completion_tokens: usage.output_tokens, total_tokens: usage.total_tokens,
    prompt_tokens_details: { cached_tokens: 1 }, completion_tokens_details: { reasoning_tokens: 3 },
  });
});

test('responses: stream — the event sequence, numbered from 0; response.completed carries the whole response', async () => {
  const params = { model: 'mock-model', instructions: 'be brief', input: 'Hello there' };
  const plain = await openai.responses.create(params);
  const events = [];
  for await (const e of await openai.responses.create({ ...params, stream: true })) events.push(e);
  assert.deepEqual(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    ...Array(5).fill('response.output_text.delta'),
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  for (const e of events.slice(0, 2)) {
    assert.equal(e.response.status, 'in_progress');
    assert.deepEqual(e.response.output, []);
    assert.equal(e.response.usage, null);
  }
  const msgId = events[2].item.id;
  assert.deepEqual(events[2].item, { type: 'message', id: msgId, status: 'in_progress', role: 'assistant', content: [] });
  assert.deepEqual(events[3], {
    type: 'response.content_part.added', item_id: msgId, output_index: 0, content_index: 0,
    part: { type: 'output_text', text: '', annotations: [], logprobs: [] }, sequence_number: 3,
  });
  const deltas = events.filter((e) => e.type === 'response.output_text.delta');
  assert.deepEqual(deltas.map((d) => d.delta), ['mock ', 'reply ', 'to: ', 'Hello ', 'there']);
  for (const d of deltas) {
    assert.deepEqual([d.item_id, d.output_index, d.content_index, d.logprobs], [msgId, 0, 0, []]);
  }
  assert.equal(events[9].text, 'mock reply to: Hello there');
  const completed = events.at(-1).response;
  assert.equal(completed.id, events[0].response.id);
  assert.deepEqual(noIds({ ...completed, output_text: plain.output_text }), noIds(plain));
  assert.deepEqual(completed.output[0], events.at(-2).item);

  const res = await fetch(`${mock.url}/v1/responses`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...params, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const raw = await res.text();
  assert.doesNotMatch(raw, /\[DONE\]/);
  for (const e of sseEvents(raw)) {
    assert.equal(e.event, e.data.type);
    const keys = Object.keys(e.data);
    assert.equal(keys[0], 'type');
    assert.equal(keys.at(-1), 'sequence_number');
  }
});

test('responses: the stream() helper — finalResponse() equals create(); reasoning summary and text word by word', async () => {
  const params = {
    model: 'mock-model', reasoning: { effort: 'low', summary: 'auto' },
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'think hard' }] }],
  };
  const plain = await openai.responses.create(params);
  assert.deepEqual(plain.output.map((o) => o.type), ['reasoning', 'message']);
  assert.match(plain.output[0].id, /^rs_/);
  assert.deepEqual(noIds(plain.output[0]), {
    type: 'reasoning', summary: [{ type: 'summary_text', text: 'mock thinking about: think hard' }],
  });
  assert.deepEqual(plain.reasoning, { effort: 'low', summary: 'auto' });
  assert.equal(plain.output_text, 'mock reply to: think hard');

  const stream = openai.responses.stream(params);
  const text = [];
  const summary = [];
  const types = [];
  stream.on('event', (e) => types.push(e.type));
  stream.on('response.output_text.delta', (e) => text.push(e.delta));
  stream.on('response.reasoning_summary_text.delta', (e) => summary.push(e.delta));
  const final = await stream.finalResponse();
  assert.deepEqual(types, [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.reasoning_summary_part.added',
    ...Array(5).fill('response.reasoning_summary_text.delta'),
    'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added',
    ...Array(5).fill('response.output_text.delta'),
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
  ]);
  assert.deepEqual(text, ['mock ', 'reply ', 'to: ', 'think ', 'hard']);
  assert.deepEqual(summary, ['mock ', 'thinking ', 'about: ', 'think ', 'hard']);
  assert.equal(final.status, 'completed');
  assert.equal(final.output_text, plain.output_text);
  assert.deepEqual(noIds(final.output.map(wireItem)), noIds(plain.output));
  assert.deepEqual(final.usage, plain.usage);
  // effort none or minimal: no reasoning item
  for (const effort of ['none', 'minimal']) {
    const r = await openai.responses.create({ ...params, reasoning: { effort } });
    assert.deepEqual(r.output.map((o) => o.type), ['message'], effort);
  }
});

test('responses: function calling — call ids as in chat, streamed argument fragments ≤ 5 bytes, function_call_output answers', async () => {
  const q = 'weather ✓ [[mock:tool_calls=2]]';
  const params = { model: 'mock-model', tools: responsesTools, input: q };
  const r1 = await openai.responses.create(params);
  assert.deepEqual(r1.output.map(({ type, call_id, name, status }) => ({ type, call_id, name, status })), [
    { type: 'function_call', call_id: 'call_mock_0', name: 'get_weather', status: 'completed' },
    { type: 'function_call', call_id: 'call_mock_1', name: 'get_time', status: 'completed' },
  ]);
  r1.output.forEach((c, i) => {
    assert.match(c.id, /^fc_/);
    assert.equal(c.arguments, JSON.stringify(ruleArgs('weather ✓', i)));
  });
  assert.equal(r1.output_text, '');
  assert.deepEqual(r1.tools, responsesTools);
  assert.equal(r1.usage.output_tokens, 20);

  const stream = openai.responses.stream(params);
  const fragments = [];
  const done = [];
  stream.on('response.function_call_arguments.delta', (e) => fragments.push([e.output_index, e.delta]));
  stream.on('response.function_call_arguments.done', (e) => done.push([e.output_index, e.name, e.arguments]));
  const final = await stream.finalResponse();
  assert.deepEqual(noIds(final.output.map(wireItem)), noIds(r1.output));
  assert.ok(fragments.length > 40, `${fragments.length} fragments`);
  for (const [, f] of fragments) assert.ok(Buffer.byteLength(f) > 0 && Buffer.byteLength(f) <= 5, JSON.stringify(f));
  for (const i of [0, 1]) {
    assert.equal(fragments.filter(([o]) => o === i).map(([, f]) => f).join(''), JSON.stringify(ruleArgs('weather ✓', i)));
  }
  assert.deepEqual(done, [
    [0, 'get_weather', JSON.stringify(ruleArgs('weather ✓', 0))], [1, 'get_time', JSON.stringify(ruleArgs('weather ✓', 1))],
  ]);

  const forced = await openai.responses.create({
    model: 'mock-model', tools: responsesTools, tool_choice: { type: 'function', name: 'get_time' }, input: 'now',
  });
  assert.deepEqual(forced.output.map((o) => [o.call_id, o.name]), [['call_mock_0', 'get_time']]);
  assert.deepEqual(forced.tool_choice, { type: 'function', name: 'get_time' });
  const required = await openai.responses.create({ model: 'mock-model', tools: responsesTools, tool_choice: 'required', input: 'now' });
  assert.deepEqual(required.output.map((o) => o.name), ['get_weather']);
  const none = await openai.responses.create({ ...params, tool_choice: 'none' });
  assert.equal(none.output_text, 'mock reply to: weather ✓');

  // turn 2: the calls go back as they came, each answered by its call_id
  const r2 = await openai.responses.create({
    model: 'mock-model', tools: responsesTools,
    input: [
      { role: 'user', content: q }, ...r1.output,
      { type: 'function_call_output', call_id: 'call_mock_0', output: 'sunny' },
      { type: 'function_call_output', call_id: 'call_mock_1', output: [{ type: 'input_text', text: 'noon' }] },
    ],
  });
  assert.equal(r2.output_text, 'mock saw 2 tool results: sunny | noon');
  assert.equal(r2.usage.input_tokens, 4); // weather ✓ + sunny + noon (directives do not count)
});

test('responses and chat completions: the same conversation gets the same text, tool calls and usage', async () => {
  const q = 'plan a trip ✓ [[mock:tool_calls=2,cached=1,reasoning=2]]';
  const o1 = await openai.chat.completions.create({
    model: 'm', tools: openaiTools, messages: [{ role: 'system', content: 'sys text' }, { role: 'user', content: q }],
  });
  const r1 = await openai.responses.create({ model: 'm', tools: responsesTools, instructions: 'sys text', input: q });
  assert.deepEqual(r1.output.map((c) => [c.call_id, c.name, c.arguments]),
    o1.choices[0].message.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]));
  const same = (r, o) => assert.deepEqual(
    [r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens, r.usage.output_tokens,
      r.usage.output_tokens_details.reasoning_tokens, r.usage.total_tokens],
    [o.usage.prompt_tokens, o.usage.prompt_tokens_details?.cached_tokens ?? 0, o.usage.completion_tokens,
      o.usage.completion_tokens_details?.reasoning_tokens ?? 0, o.usage.total_tokens]);
  same(r1, o1);
  assert.equal(r1.usage.input_tokens, 6);

  const o2 = await openai.chat.completions.create({
    model: 'm', tools: openaiTools,
    messages: [
      { role: 'system', content: 'sys text' }, { role: 'user', content: q }, o1.choices[0].message,
      { role: 'tool', tool_call_id: 'call_mock_0', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_mock_1', content: 'noon' },
    ],
  });
  // the system text as a developer message this time; a reasoning item carries no text
  const r2 = await openai.responses.create({
    model: 'm', tools: responsesTools,
    input: [
      { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'sys text' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: q }] },
      { type: 'reasoning', id: 'rs_x', summary: [{ type: 'summary_text', text: 'not counted at all' }] },
      ...r1.output,
      { type: 'function_call_output', call_id: 'call_mock_0', output: 'sunny' },
      { type: 'function_call_output', call_id: 'call_mock_1', output: 'noon' },
    ],
  });
  assert.equal(r2.output_text, 'mock saw 2 tool results: sunny | noon');
  assert.equal(o2.choices[0].message.content, r2.output_text);
  same(r2, o2);

  // an image, JSON output, and the word limit
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
  const schema = { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'], additionalProperties: false };
  const oj = await openai.chat.completions.create({
    model: 'm', response_format: { type: 'json_schema', json_schema: { name: 'r', schema, strict: true } },
    messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
  });
  const rj = await openai.responses.create({
    model: 'm', text: { format: { type: 'json_schema', name: 'r', schema, strict: true } },
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'look' }, { type: 'input_image', image_url: `data:image/png;base64,${png}`, detail: 'auto' }] }],
  });
  assert.equal(rj.output_text, '{"reply":"mock reply to: look [images: 1]"}');
  assert.equal(oj.choices[0].message.content, rj.output_text);
  assert.deepEqual(rj.text, { format: { type: 'json_schema', name: 'r', schema, strict: true } });
  same(rj, oj);
  const parsed = await openai.responses.parse({
    model: 'm', text: { format: { type: 'json_schema', name: 'r', schema, strict: true } }, input: 'as json',
  });
  assert.deepEqual(parsed.output_parsed, { reply: 'mock reply to: as json' });

  const oShort = await openai.chat.completions.create({ model: 'm', max_completion_tokens: 3, messages: [{ role: 'user', content: 'one two three' }] });
  const rShort = await openai.responses.create({ model: 'm', max_output_tokens: 3, input: 'one two three' });
  assert.equal(oShort.choices[0].finish_reason, 'length');
  assert.equal(rShort.output_text, oShort.choices[0].message.content);
  assert.equal(rShort.status, 'incomplete');
  assert.deepEqual(rShort.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(rShort.output[0].status, 'incomplete');
  assert.equal(rShort.max_output_tokens, 3);
  same(rShort, oShort);
  const events = [];
  for await (const e of await openai.responses.create({ model: 'm', max_output_tokens: 3, input: 'one two three', stream: true })) events.push(e);
  assert.equal(events.at(-1).type, 'response.incomplete');
  assert.deepEqual(noIds(events.at(-1).response), noIds({ ...rShort, output_text: undefined }));
});

test('responses: strict checks, previous_response_id, errors, faults, rate-limit headers and stats', async () => {
  await mock.reset();
  await assert.rejects(openai.responses.create({
    model: 'mock-model',
    input: [
      { role: 'user', content: 'x' },
      { type: 'function_call', call_id: 'call_a', name: 'get_weather', arguments: '{}' },
      { type: 'function_call_output', call_id: 'call_a', output: 'ok' },
      { type: 'function_call_output', call_id: 'call_zz', output: 'x' },
    ],
  }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.deepEqual(e.error, {
      message: 'aigw-mock: input[3]: No tool call found for function call output with call_id call_zz.',
      type: 'invalid_request_error', param: 'input', code: null,
    });
    return true;
  });
  await assert.rejects(openai.responses.create({ model: 'mock-model', input: 'x', previous_response_id: 'resp_abc' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.deepEqual(e.error, {
      message: "Previous response with id 'resp_abc' not found.", type: 'invalid_request_error',
      param: 'previous_response_id', code: 'previous_response_not_found',
    });
    return true;
  });

  const bytes = randomBytes(1000);
  const want = sha256(bytes);
  const img = await rawPost('/v1/responses', {}, {
    model: 'mock-model',
    input: [{ type: 'message', role: 'user', content: [
      { type: 'input_image', image_url: `data:image/jpeg;base64,${bytes.toString('base64')}`, detail: 'high' },
      { type: 'input_image', image_url: 'https://example.invalid/a.png' },
      { type: 'input_text', text: 'see' },
    ] }],
  });
  assert.equal(img.status, 200);
  assert.equal(img.headers.get('x-mock-images'), '1');
  assert.equal(img.headers.get('x-mock-image-sha256'), want);
  assert.equal((await img.json()).output[0].content[0].text, 'mock reply to: see [images: 2]');
  assert.deepEqual((await mock.requests()).at(-1).images,
    [{ mime: 'image/jpeg', bytes: 1000, sha256: want }, { url: 'https://example.invalid/a.png' }]);
  const bad = await rawPost('/v1/responses', {}, {
    model: 'mock-model', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AA$A' }] }],
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), { error: {
    message: 'aigw-mock: image 0: the data is not valid base64', type: 'invalid_request_error', param: 'input', code: null,
  } });

  await assert.rejects(openai.responses.create({ model: 'mock-model', input: 'x [[mock:status=429,retry_after=2]]' }), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.headers.get('retry-after'), '2');
    return true;
  });
  const { response } = await openai.responses
    .create({ model: 'mock-model', input: 'x' }, { headers: { 'x-mock-rl-requests': '5', 'x-mock-scope': 'resp-rl' } })
    .withResponse();
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '4');

  // an in-band error after 4 events: the SDK raises it, in both ways of reading the stream
  const seen = [];
  const stream = await openai.responses.create({ model: 'mock-model', input: 'a b c [[mock:stream_error=4]]', stream: true });
  await assert.rejects(async () => { for await (const e of stream) seen.push(e.type); },
    (e) => e instanceof OpenAI.APIError && /injected stream error/.test(e.message));
  assert.deepEqual(seen, ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  await assert.rejects(openai.responses.stream({ model: 'mock-model', input: 'a b c [[mock:stream_error=4]]' }).finalResponse(),
    (e) => e instanceof OpenAI.APIError && /injected stream error/.test(e.message));
  const raw = await (await rawPost('/v1/responses', {}, { model: 'm', stream: true, input: 'a [[mock:stream_error=2]]' })).text();
  assert.deepEqual(sseEvents(raw).at(-1), { event: 'error', data: {
    type: 'error', sequence_number: 2,
    error: { type: 'server_error', code: 'server_error', message: 'aigw-mock injected stream error', param: null },
  } });

  const s = await mock.stats();
  assert.deepEqual(s.paths, { '/v1/responses': 9 });
  assert.deepEqual(s.streams, { started: 3, completed: 3, aborted: 0 });
  assert.deepEqual(s.statuses, { 200: 5, 400: 3, 429: 1 });
});

// ---- Gemini ---------------------------------------------------------------------------------

test('gemini: non-stream generateContent — text, finishReason, usageMetadata, modelVersion', async () => {
  const r = await gemini.models.generateContent({
    model: 'gemini-mock', contents: 'Hello there', config: { systemInstruction: 'be brief' },
  });
  assert.equal(r.text, 'mock reply to: Hello there');
  assert.equal(r.candidates[0].finishReason, 'STOP');
  assert.equal(r.candidates[0].content.role, 'model');
  assert.deepEqual(r.usageMetadata, { promptTokenCount: 4, candidatesTokenCount: 5, totalTokenCount: 9 });
  assert.equal(r.modelVersion, 'gemini-mock');
  assert.ok(r.responseId);
  // the stable version's path answers the same
  const v1 = await geminiV1.models.generateContent({ model: 'gemini-mock', contents: 'Hello there', config: { systemInstruction: 'be brief' } });
  assert.equal(v1.text, r.text);
  assert.deepEqual(v1.usageMetadata, r.usageMetadata);
});

test('gemini: stream (alt=sse) — several chunks, CRLF-separated events, no [DONE], last chunk finishes', async () => {
  const chunks = [];
  for await (const c of await gemini.models.generateContentStream({ model: 'gemini-mock', contents: 'one two three' })) chunks.push(c);
  assert.ok(chunks.length >= 5);
  assert.equal(chunks.map((c) => c.text).join(''), 'mock reply to: one two three');
  assert.ok(chunks.slice(0, -1).every((c) => !c.candidates[0].finishReason));
  assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
  assert.deepEqual(chunks.at(-1).usageMetadata, { promptTokenCount: 3, candidatesTokenCount: 6, totalTokenCount: 9 });

  const res = await fetch(`${mock.url}/v1beta/models/gemini-mock:streamGenerateContent?alt=sse`, {
    method: 'POST', headers: { 'x-goog-api-key': 'k', 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'one two three' }] }] }),
  });
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const raw = await res.text();
  assert.ok(raw.endsWith('\r\n\r\n'));
  assert.doesNotMatch(raw, /\[DONE\]/);
  const events = sseEvents(raw, '\r\n\r\n');
  assert.equal(events.length, chunks.length);
  assert.deepEqual(events.at(-1).data.usageMetadata, chunks.at(-1).usageMetadata);
});

test('gemini: functionCall (mode ANY + allowedFunctionNames) — args are the rule object, sent whole when streaming', async () => {
  const params = {
    model: 'gemini-mock', contents: 'weather in Paris?',
    config: { tools: geminiTools, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } } },
  };
  const r = await gemini.models.generateContent(params);
  assert.deepEqual(r.functionCalls.map(({ name, args }) => ({ name, args })), [{ name: 'get_time', args: ruleArgs('weather in Paris?', 0) }]);
  assert.equal(r.candidates[0].finishReason, 'STOP');
  assert.equal(r.usageMetadata.candidatesTokenCount, 10);
  const chunks = [];
  for await (const c of await gemini.models.generateContentStream({ ...params, contents: 'both [[mock:tool_calls=2]]' })) chunks.push(c);
  const calls = chunks.flatMap((c) => c.functionCalls ?? []);
  assert.deepEqual(calls.map(({ name, args }) => ({ name, args })), [
    { name: 'get_weather', args: ruleArgs('both', 0) }, { name: 'get_time', args: ruleArgs('both', 1) },
  ]);
  assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
  assert.equal(chunks.at(-1).usageMetadata.candidatesTokenCount, 20);
});

test('gemini: functionResponse parts — rule 1 text (a lone string member, else sorted compact JSON)', async () => {
  const r = await gemini.models.generateContent({
    model: 'gemini-mock', config: { tools: geminiTools },
    contents: [
      { role: 'user', parts: [{ text: 'weather? [[mock:tool_calls=2]]' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: {} } }, { functionCall: { name: 'get_time', args: {} } }] },
      { role: 'user', parts: [
        { functionResponse: { name: 'get_weather', response: { result: 'sunny 20C' } } },
        { functionResponse: { name: 'get_time', response: { z: 1, a: 'noon' } } },
      ] },
    ],
  });
  assert.equal(r.text, 'mock saw 2 tool results: sunny 20C | {"a":"noon","z":1}');
});

test('gemini: thought part first, JSON output, images, MAX_TOKENS, usage with cached and thoughts', async () => {
  const r = await gemini.models.generateContent({
    model: 'gemini-mock',
    contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: 'AAAA' } }, { text: 'see this [[mock:cached=2,reasoning=5]]' }] }],
    config: { thinkingConfig: { includeThoughts: true }, responseMimeType: 'application/json' },
  });
  const parts = r.candidates[0].content.parts;
  assert.deepEqual(parts[0], { text: 'mock thinking about: see this', thought: true });
  assert.deepEqual(JSON.parse(parts[1].text), { reply: 'mock reply to: see this [images: 1]' });
  assert.deepEqual(r.usageMetadata, {
    promptTokenCount: 2, candidatesTokenCount: 7, totalTokenCount: 2 + 7 + 5, cachedContentTokenCount: 2, thoughtsTokenCount: 5,
  });
  const short = await gemini.models.generateContent({ model: 'gemini-mock', contents: 'a b c', config: { maxOutputTokens: 2 } });
  assert.equal(short.text, 'mock reply');
  assert.equal(short.candidates[0].finishReason, 'MAX_TOKENS');
});

test('gemini: key required (403 PERMISSION_DENIED), Google-shaped errors reach the SDK as ApiError', async () => {
  const res = await fetch(`${mock.url}/v1beta/models/gemini-mock:generateContent`, {
    method: 'POST', body: JSON.stringify({ contents: [{ parts: [{ text: 'x' }] }] }),
  });
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.equal(body.error.code, 403);
  assert.equal(body.error.status, 'PERMISSION_DENIED');
  const keyed = await fetch(`${mock.url}/v1beta/models/gemini-mock:generateContent?key=k`, {
    method: 'POST', body: JSON.stringify({ contents: [{ parts: [{ text: 'x' }] }] }),
  });
  assert.equal(keyed.status, 200);
  await assert.rejects(gemini.models.generateContent({ model: 'gemini-mock', contents: 'x [[mock:status=429,retry_after=9]]' }), (e) => {
    assert.equal(e.status, 429);
    const err = JSON.parse(e.message).error;
    assert.equal(err.status, 'RESOURCE_EXHAUSTED');
    assert.equal(err.message, 'aigw-mock injected status 429');
    assert.equal(err.details[0].retryDelay, '9s');
    return true;
  });
  await assert.rejects(gemini.models.generateContent({ model: 'gemini-mock', contents: 'x [[mock:status=503]]' }),
    (e) => e.status === 503 && JSON.parse(e.message).error.status === 'UNAVAILABLE');
  const stream = await gemini.models.generateContentStream({ model: 'gemini-mock', contents: 'a b c [[mock:stream_error=2]]' });
  await assert.rejects(async () => { for await (const c of stream) void c; }, (e) => e.status === 503);
});

// ---- one conversation, three formats --------------------------------------------------------

test('the same conversation gets the same reply, tool calls and usage in all three formats', async () => {
  const q = 'plan a trip ✓ [[mock:tool_calls=2,cached=1,reasoning=2]]';
  // turn 1: tool calls
  const a1 = await anthropic.messages.create({ model: 'm', max_tokens: 100, system: 'sys text', tools: weatherTools, messages: [{ role: 'user', content: q }] });
  const o1 = await openai.chat.completions.create({ model: 'm', tools: openaiTools, messages: [{ role: 'system', content: 'sys text' }, { role: 'user', content: q }] });
  const g1 = await gemini.models.generateContent({ model: 'm', contents: q, config: { systemInstruction: 'sys text', tools: geminiTools } });
  const aCalls = a1.content.map((b) => [b.name, b.input]);
  const oCalls = o1.choices[0].message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]);
  const gCalls = g1.functionCalls.map((c) => [c.name, c.args]);
  assert.deepEqual(oCalls, aCalls);
  assert.deepEqual(gCalls, aCalls);
  const prompt = 6; // sys text + plan a trip ✓ (the directive does not count)
  assert.deepEqual(o1.usage, {
    prompt_tokens: prompt, completion_tokens: 22, total_tokens: prompt + 22,
    prompt_tokens_details: { cached_tokens: 1 }, completion_tokens_details: { reasoning_tokens: 2 },
  });
  assert.equal(a1.usage.input_tokens + a1.usage.cache_read_input_tokens + a1.usage.cache_creation_input_tokens, prompt);
  assert.equal(a1.usage.output_tokens, 22);
  assert.deepEqual(g1.usageMetadata, {
    promptTokenCount: prompt, candidatesTokenCount: 20, totalTokenCount: prompt + 22, cachedContentTokenCount: 1, thoughtsTokenCount: 2,
  });
  // turn 2: the results go back
  const a2 = await anthropic.messages.create({
    model: 'm', max_tokens: 100, system: 'sys text', tools: weatherTools,
    messages: [
      { role: 'user', content: q },
      { role: 'assistant', content: a1.content },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_mock_0', content: 'sunny' },
        { type: 'tool_result', tool_use_id: 'toolu_mock_1', content: 'noon' },
      ] },
    ],
  });
  const o2 = await openai.chat.completions.create({
    model: 'm', tools: openaiTools,
    messages: [
      { role: 'system', content: 'sys text' }, { role: 'user', content: q }, o1.choices[0].message,
      { role: 'tool', tool_call_id: 'call_mock_0', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_mock_1', content: 'noon' },
    ],
  });
  const g2 = await gemini.models.generateContent({
    model: 'm', config: { systemInstruction: 'sys text', tools: geminiTools },
    contents: [
      { role: 'user', parts: [{ text: q }] },
      g1.candidates[0].content,
      { role: 'user', parts: [
        { functionResponse: { name: 'get_weather', response: { result: 'sunny' } } },
        { functionResponse: { name: 'get_time', response: { result: 'noon' } } },
      ] },
    ],
  });
  const text = 'mock saw 2 tool results: sunny | noon';
  assert.equal(a2.content[0].text, text);
  assert.equal(o2.choices[0].message.content, text);
  assert.equal(g2.text, text);
  assert.equal(o2.usage.prompt_tokens, prompt + 2);
  assert.equal(g2.usageMetadata.promptTokenCount, prompt + 2);
  assert.equal(a2.usage.input_tokens + a2.usage.cache_read_input_tokens + a2.usage.cache_creation_input_tokens, prompt + 2);
  assert.equal(o2.usage.completion_tokens - 2, 8); // mock saw 2 tool results: sunny | noon
  assert.equal(g2.usageMetadata.candidatesTokenCount, 8);
  assert.equal(a2.usage.output_tokens - 2, 8);
});

test('stats count the new paths by template and their models', async () => {
  await mock.reset();
  await anthropic.messages.create({ model: 'stats-claude', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
  await anthropic.messages.countTokens({ model: 'stats-claude', messages: [{ role: 'user', content: 'x' }] });
  await gemini.models.generateContent({ model: 'stats-gemini', contents: 'x' });
  for await (const c of await gemini.models.generateContentStream({ model: 'stats-gemini', contents: 'x' })) void c;
  const s = await mock.stats();
  assert.deepEqual(s.paths, {
    '/v1/messages': 1, '/v1/messages/count_tokens': 1,
    '/v1beta/models:generateContent': 1, '/v1beta/models:streamGenerateContent': 1,
  });
  assert.deepEqual(s.models, { 'stats-claude': 2, 'stats-gemini': 2 });
  assert.deepEqual(s.streams, { started: 1, completed: 1, aborted: 0 });
  assert.equal(s.in_flight, 0);
});

// ---- rate limits (rl_requests) ----------------------------------------------------------------

const OPENAI_RESET_RE = /^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d{1,3})?s)$/; // Go's duration format, as OpenAI
const RFC3339_UTC_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const chatBody = (text = 'x') => JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: text }] });
const chat = (headers, text) => fetch(`${mock.url}/v1/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k', ...headers }, body: chatBody(text),
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('rate limit (openai): remaining 1, 0, then a 429 with retry-after and remaining 0', async () => {
  const h = { 'x-mock-rl-requests': '2', 'x-mock-scope': 't1' };
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const r = await chat(h);
    const body = await r.json();
    seen.push({ status: r.status, body, headers: r.headers });
  }
  assert.deepEqual(seen.map((s) => s.status), [200, 200, 429]);
  assert.deepEqual(seen.map((s) => s.headers.get('x-ratelimit-remaining-requests')), ['1', '0', '0']);
  for (const s of seen) {
    assert.equal(s.headers.get('x-ratelimit-limit-requests'), '2');
    assert.match(s.headers.get('x-ratelimit-reset-requests'), OPENAI_RESET_RE);
    assert.equal(s.headers.get('x-ratelimit-limit-tokens'), null);
  }
  assert.equal(seen[0].headers.get('x-ratelimit-reset-requests'), '1m0s'); // the window just started
  const limited = seen[2];
  assert.equal(limited.body.error.type, 'rate_limit_error');
  const retryAfter = Number(limited.headers.get('retry-after'));
  const retryMs = Number(limited.headers.get('retry-after-ms'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
  assert.ok(retryMs > 0 && retryMs <= 60000 && Math.ceil(retryMs / 1000) === retryAfter, `retry-after-ms ${retryMs}`);
  // an explicit status loses to the exhausted budget; streams carry the headers too
  const r4 = await chat({ ...h, 'x-mock-status': '503' });
  assert.equal(r4.status, 429);
  await r4.text();
  const other = await chat({ 'x-mock-rl-requests': '2', 'x-mock-scope': 't1-other' }, 'x [[mock:status=503]]');
  assert.equal(other.status, 503);
  assert.equal(other.headers.get('x-ratelimit-remaining-requests'), '1');
  await other.text();
  const stream = await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-rl-requests': '2', 'x-mock-scope': 't1-other' },
    body: JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(stream.status, 200);
  assert.equal(stream.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.match(await stream.text(), /data: \[DONE\]/);
});

test('rate limit (openai SDK, maxRetries 0): the third request raises RateLimitError', async () => {
  const headers = { 'x-mock-rl-requests': '2', 'x-mock-scope': 't-sdk' };
  const ask = () => openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }, { headers });
  const { response } = await ask().withResponse();
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '1');
  await ask();
  await assert.rejects(ask(), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.ok(Number(e.headers.get('retry-after')) >= 1);
    return true;
  });
});

test('rate limit (anthropic): remaining and an RFC 3339 reset in the future; the 429 is a RateLimitError', async () => {
  const ask = () => anthropic.messages.create({
    model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'hi [[mock:rl_requests=2,scope=a1]]' }],
  });
  const { response } = await ask().withResponse();
  assert.equal(response.headers.get('anthropic-ratelimit-requests-limit'), '2');
  assert.equal(response.headers.get('anthropic-ratelimit-requests-remaining'), '1');
  const reset = response.headers.get('anthropic-ratelimit-requests-reset');
  assert.match(reset, RFC3339_UTC_RE);
  assert.ok(Date.parse(reset) > Date.now(), `reset ${reset} is in the future`);
  assert.ok(Date.parse(reset) <= Date.now() + 61000, `reset ${reset} is within the window`);
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), null);
  await ask();
  await assert.rejects(ask(), (e) => {
    assert.ok(e instanceof Anthropic.RateLimitError, e.constructor.name);
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    // the same window's end (rounded up to the second, so a ms of clock reading may move it by 1 s)
    assert.ok(Math.abs(Date.parse(e.headers.get('anthropic-ratelimit-requests-reset')) - Date.parse(reset)) <= 1000);
    const retryAfter = Number(e.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
    return true;
  });
});

test('rate limit (gemini): no rate-limit headers; the 429 is RESOURCE_EXHAUSTED with RetryInfo', async () => {
  const ask = () => fetch(`${mock.url}/v1beta/models/gem-rl:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': 'k', 'x-mock-rl-requests': '1', 'x-mock-scope': 'g1' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }),
  });
  const r1 = await ask();
  assert.equal(r1.status, 200);
  await r1.json();
  const r2 = await ask();
  assert.equal(r2.status, 429);
  for (const r of [r1, r2])
    for (const name of r.headers.keys()) assert.doesNotMatch(name, /ratelimit|retry-after/);
  const body = await r2.json();
  assert.equal(body.error.status, 'RESOURCE_EXHAUSTED');
  assert.match(body.error.details[0].retryDelay, /^\d+s$/);
});

test('rate limit: a short window (rl_window_ms=300) recovers after ~350 ms', async () => {
  const h = { 'x-mock-rl-requests': '1', 'x-mock-rl-window-ms': '300', 'x-mock-scope': 'w1' };
  const r1 = await chat(h);
  assert.equal(r1.status, 200);
  assert.match(r1.headers.get('x-ratelimit-reset-requests'), /^\d+ms$/);
  await r1.text();
  const r2 = await chat(h);
  assert.equal(r2.status, 429);
  assert.equal(r2.headers.get('retry-after'), '1'); // rounded up, at least 1
  assert.ok(Number(r2.headers.get('retry-after-ms')) <= 300);
  await r2.text();
  await sleep(350);
  const r3 = await chat(h);
  assert.equal(r3.status, 200);
  assert.equal(r3.headers.get('x-ratelimit-remaining-requests'), '0');
  await r3.text();
});

test('rate limit: /__stats rate_limited counts the 429s; /__reset clears the windows', async () => {
  await mock.reset();
  assert.equal((await mock.stats()).rate_limited, 0);
  const h = { 'x-mock-rl-requests': '1', 'x-mock-scope': 's1' };
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const r = await chat(h);
    statuses.push(r.status);
    await r.text();
  }
  const injected = await chat({}, 'x [[mock:status=429]]'); // not a rate limit: not counted there
  await injected.text();
  assert.deepEqual(statuses, [200, 429, 429]);
  const s = await mock.stats();
  assert.equal(s.rate_limited, 2);
  assert.equal(s.statuses['429'], 3);
  assert.equal(s.requests, 4);
  await mock.reset();
  assert.equal((await mock.stats()).rate_limited, 0);
  const again = await chat(h);
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.equal(again.headers.get('x-ratelimit-reset-requests'), '1m0s'); // a new window
  await again.text();
});

// ---- strict checks and the recording (README.md, "Strict checks", "What was received") --------------

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const rawPost = (path, headers, body) => fetch(`${mock.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });

test('strict: a tool result answering no earlier call is a 400 in each format\'s shape, naming the id', async () => {
  const o = await rawPost('/v1/chat/completions', { 'content-type': 'application/json' }, {
    model: 'mock-model', messages: [
      { role: 'user', content: 'weather' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_b', content: 'noon' },
    ],
  });
  assert.equal(o.status, 400);
  assert.deepEqual(await o.json(), { error: {
    message: 'aigw-mock: messages[3]: tool_call_id "call_b" matches no tool call of an earlier assistant message',
    type: 'invalid_request_error', param: null, code: null,
  } });
  // a result before its call does not count either; nor one without an id
  const early = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [
    { role: 'tool', tool_call_id: 'call_a', content: 'x' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'f', arguments: '{}' } }] },
  ] });
  assert.equal(early.status, 400);
  const noId = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [{ role: 'user', content: 'x' }, { role: 'tool', content: 'x' }] });
  assert.match((await noId.json()).error.message, /tool_call_id missing matches no tool call/);

  const a = await rawPost('/v1/messages', anthropicHeaders, {
    model: 'claude-mock', max_tokens: 10, messages: [
      { role: 'user', content: 'weather' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_a', content: 'ok' }, { type: 'tool_result', tool_use_id: 'toolu_zz', content: 'x' }] },
    ],
  });
  assert.equal(a.status, 400);
  const ab = await a.json();
  assert.equal(ab.type, 'error');
  assert.equal(ab.error.type, 'invalid_request_error');
  assert.equal(ab.error.message, 'aigw-mock: messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_zz. '
    + 'Each `tool_result` block must have a corresponding `tool_use` block in an earlier message.');

  const g = await rawPost('/v1beta/models/gemini-mock:generateContent', { 'x-goog-api-key': 'k' }, {
    contents: [
      { role: 'user', parts: [{ text: 'weather' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_time', response: { result: 'noon' } } }] },
    ],
  });
  assert.equal(g.status, 400);
  assert.deepEqual(await g.json(), { error: {
    code: 400, status: 'INVALID_ARGUMENT',
    message: 'aigw-mock: contents[2].parts[0]: functionResponse "get_time" answers no earlier functionCall',
  } });
  // the check comes before the faults: a directive does not hide the refusal
  const faulted = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [
    { role: 'user', content: 'x [[mock:status=500]]' }, { role: 'tool', tool_call_id: 'call_q', content: 'x' }] });
  assert.equal(faulted.status, 400);
  assert.match((await faulted.json()).error.message, /tool_call_id "call_q" matches no tool call/);
});

test('strict: inline images are decoded — SHA-256 echoed per format; invalid base64 is a 400', async () => {
  const bytes = randomBytes(3001);
  const b64 = bytes.toString('base64');
  const want = sha256(bytes);
  const o = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [{ role: 'user', content: [
    { type: 'text', text: 'look' },
    { type: 'image_url', image_url: { url: `data:image/webp;base64,${b64}` } },
    { type: 'image_url', image_url: { url: 'https://example.invalid/cat.png' } },
  ] }] });
  assert.equal(o.status, 200);
  assert.equal(o.headers.get('x-mock-images'), '1');
  assert.equal(o.headers.get('x-mock-image-sha256'), want);
  assert.equal((await o.json()).choices[0].message.content, 'mock reply to: look [images: 2]');
  const a = await rawPost('/v1/messages', anthropicHeaders, { model: 'c', max_tokens: 10, messages: [{ role: 'user', content: [
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64 } },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
  ] }] });
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('x-mock-image-sha256'), `${want},${sha256(Buffer.alloc(3))}`);
  await a.text();
  const g = await rawPost('/v1beta/models/g:generateContent', { 'x-goog-api-key': 'k' }, {
    contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: b64.replace(/=+$/, '') } }, { text: 'see' }] }],
  });
  assert.equal(g.status, 200, 'padding is optional');
  assert.equal(g.headers.get('x-mock-image-sha256'), want);
  await g.text();
  const recorded = (await mock.requests()).slice(-3).map((r) => r.images);
  assert.deepEqual(recorded, [
    [{ mime: 'image/webp', bytes: 3001, sha256: want }, { url: 'https://example.invalid/cat.png' }],
    [{ mime: 'image/png', bytes: 3001, sha256: want }, { mime: 'image/png', bytes: 3, sha256: sha256(Buffer.alloc(3)) }],
    [{ mime: 'image/png', bytes: 3001, sha256: want }],
  ]);
  // one changed byte changes the digest (the mock hashes what it decoded, not the text it got)
  const flipped = Buffer.from(bytes); flipped[1500] ^= 1;
  const f = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: `data:image/png;base64,${flipped.toString('base64')}` } }] }] });
  assert.notEqual(f.headers.get('x-mock-image-sha256'), want);
  await f.text();
  for (const bad of [`${b64.slice(0, 100)} ${b64.slice(100)}`, b64.replace(/\+/g, '-').replace(/\//g, '_') + 'A-_', 'A', 'AA$A']) {
    const r = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [{ role: 'user', content: [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${bad}` } }] }] });
    assert.equal(r.status, 400, bad.slice(0, 20));
    assert.equal((await r.json()).error.message, 'aigw-mock: image 0: the data is not valid base64');
  }
  const notB64 = await rawPost('/v1/chat/completions', {}, { model: 'm', messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: 'data:image/png,rawbytes' } }] }] });
  assert.equal(notB64.status, 400);
  await notB64.text();
  const ga = await rawPost('/v1beta/models/g:generateContent', { 'x-goog-api-key': 'k' }, {
    contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: '!!' } }] }] });
  assert.equal(ga.status, 400);
  assert.equal((await ga.json()).error.status, 'INVALID_ARGUMENT');
});

test('recording: GET /__requests has method, URL, headers in order with their values, and the exact body', async () => {
  await mock.reset();
  assert.deepEqual((await (await fetch(`${mock.url}/__requests`)).json()), { kept: 64, requests: [] });
  const body = '{ "model" : "mock-model",\n  "messages":[{"role":"user","content":"h\\u00e9llo ✓"}], "x":1.50 }';
  const r = await rawPost('/v1/chat/completions?trace=1', { Authorization: 'Bearer sk-secret-123', 'X-Custom': 'A b' }, body);
  assert.equal(r.status, 200);
  const rid = r.headers.get('x-request-id');
  await r.text();
  await fetch(`${mock.url}/__stats`); // control endpoints are not recorded
  const bin = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
  const b = await rawPost('/v1/chat/completions', {}, bin);
  assert.equal(b.status, 400);
  await b.text();
  const recs = await mock.requests();
  assert.equal(recs.length, 2);
  const [rec, binRec] = recs;
  assert.equal(rec.method, 'POST');
  assert.equal(rec.url, '/v1/chat/completions?trace=1');
  assert.equal(rec.request_id, rid);
  assert.equal(rec.body, body, 'the body byte for byte');
  assert.equal(rec.body_bytes, Buffer.byteLength(body));
  assert.equal(rec.body_truncated, false);
  assert.deepEqual(headerValues(rec, 'authorization'), ['Bearer sk-secret-123']);
  assert.deepEqual(headerValues(rec, 'x-custom'), ['A b']);
  assert.ok(binRec.seq > rec.seq);
  assert.equal(binRec.body, undefined);
  assert.ok(Buffer.from(binRec.body_base64, 'base64').equals(bin), 'bytes that are not UTF-8 come back in base64');
  await mock.reset();
  assert.deepEqual(await mock.requests(), []);
});

test('recording is bounded: the last 64 requests, 1 MiB of a body, 4 KiB of a header value', async () => {
  await mock.reset();
  const big = 'x'.repeat((1 << 20) + 10);
  const r = await rawPost('/v1/chat/completions', { 'x-long': 'v'.repeat(5000) }, JSON.stringify(chatBodyOf(big)));
  await r.text();
  let [rec] = await mock.requests();
  assert.equal(rec.body_truncated, true);
  assert.equal(rec.body.length, 1 << 20);
  assert.ok(rec.body_bytes > 1 << 20);
  assert.equal(headerValues(rec, 'x-long')[0].length, 4096);
  assert.equal(rec.headers_truncated, true);
  for (let i = 0; i < 70; i++) (await rawPost('/v1/chat/completions', {}, JSON.stringify(chatBodyOf(`n${i}`)))).text();
  await eventuallyEqual(async () => (await mock.requests()).length, 64);
  const kept = await mock.requests();
  assert.deepEqual(new Set(kept.map((k) => JSON.parse(k.body).messages[0].content)),
    new Set(Array.from({ length: 64 }, (_, i) => `n${i + 6}`)), 'the last 64, the oldest gone');
  await mock.reset();
});

const chatBodyOf = (text) => ({ model: 'mock-model', messages: [{ role: 'user', content: text }] });
async function eventuallyEqual(fn, want, ms = 3000) {
  const end = Date.now() + ms;
  let got;
  while (Date.now() < end) {
    got = await fn();
    if (got === want) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(got, want);
}
