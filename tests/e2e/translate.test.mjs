// translate.test.mjs — every client format against every provider format, through aigw:
// {OpenAI SDK on /v1/chat/completions, Anthropic SDK on /v1/messages} × {OpenAI-compatible,
// Anthropic, Gemini upstream}, all imitated by aigw-mock, whose replies follow one rule set
// in every format (tools/mock/README.md). So the same conversation must give the same text,
// tool calls, arguments and usage whichever pair carries it: translation loses nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMock, startGateway, scratchDir } from './harness.mjs';

let mock, gw, oai, ant;

const UPSTREAMS = ['openai', 'anthropic', 'gemini'];
const INGRESSES = ['openai', 'anthropic'];

// The arguments every mock tool call carries (the mock's rule), for call i and prompt text q.
const ruleArgs = (q, i) => ({ city: 'Paris', query: q, n: i, units: ['c', 'f'], note: 'line1\nline2 "quoted" ✓ é' });

const TOOLS_OPENAI = [
  { type: 'function', function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', description: 'time', parameters: { type: 'object', properties: {} } } },
];
const TOOLS_ANTHROPIC = TOOLS_OPENAI.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters }));
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

// Prices for the imitated models (USD per million tokens), added to the embedded catalog.
const PRICES = {
  openai: { input: 1, output: 2, cached_input: 0.5, cache_write: 1 },
  anthropic: { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
  gemini: { input: 1.25, output: 10, cached_input: 0.125, cache_write: 1.25 },
};

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  const catalog = join(scratchDir('aigw-cat-'), 'prices.json');
  writeFileSync(catalog, JSON.stringify({
    models: UPSTREAMS.map((u) => ({ provider: u, model: `m-${u}`, max_output: 1000, ...PRICES[u], taken: '2026-11' })),
  }));
  gw = await startGateway(`
catalog: ${catalog}
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: up-openai, type: openai, base_url: "${base}/v1", api_key: k1, models: [m-openai],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-anthropic, type: anthropic, base_url: "${base}", api_key: k2, models: [m-anthropic],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-gemini, type: gemini, base_url: "${base}", api_key: k3, models: [m-gemini],
     timeouts: {connect: 2s, first_byte: 5s, idle: 5s}}
  - {name: up-dead, type: openai, base_url: "http://127.0.0.1:9/v1", api_key: k4, models: [m-dead],
     timeouts: {connect: 1s, first_byte: 5s, idle: 5s}}
`);
  oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
  ant = new Anthropic({ baseURL: gw.url, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

// ---- one conversation, asked in either client format ----------------------------------------

// What a client gets back, reduced to the facts the rule set fixes.
function fromOpenAI(c) {
  const m = c.choices[0].message;
  return {
    text: m.content ?? '',
    calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, name: t.function.name, args: JSON.parse(t.function.arguments), raw: t.function.arguments })),
    finish: c.choices[0].finish_reason,
    prompt: c.usage?.prompt_tokens, completion: c.usage?.completion_tokens,
    cached: c.usage?.prompt_tokens_details?.cached_tokens ?? 0,
  };
}
function fromAnthropic(msg) {
  const text = msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  const calls = msg.content.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, args: b.input }));
  const finish = { end_turn: 'stop', tool_use: 'tool_calls', max_tokens: 'length', stop_sequence: 'stop' }[msg.stop_reason];
  const cached = msg.usage.cache_read_input_tokens ?? 0;
  return {
    text, calls, finish,
    prompt: msg.usage.input_tokens + cached + (msg.usage.cache_creation_input_tokens ?? 0),
    completion: msg.usage.output_tokens, cached,
  };
}

async function ask(ingress, upstream, { text, system, tools = false, stream = false, image = false, extra = {} }) {
  const model = `m-${upstream}`;
  if (ingress === 'openai') {
    const content = image
      ? [{ type: 'text', text }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }]
      : text;
    const body = {
      model,
      messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content }],
      ...(tools ? { tools: TOOLS_OPENAI } : {}),
      ...extra,
    };
    if (!stream) return fromOpenAI(await oai.chat.completions.create(body));
    const s = oai.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
    return fromOpenAI(await s.finalChatCompletion());
  }
  const content = image
    ? [{ type: 'text', text }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }]
    : text;
  const body = {
    model, max_tokens: 1000,
    ...(system ? { system } : {}),
    messages: [{ role: 'user', content }],
    ...(tools ? { tools: TOOLS_ANTHROPIC } : {}),
    ...extra,
  };
  if (!stream) return fromAnthropic(await ant.messages.create(body));
  return fromAnthropic(await ant.messages.stream(body).finalMessage());
}

for (const ingress of INGRESSES) {
  for (const upstream of UPSTREAMS) {
    const pair = `${ingress} client → ${upstream} provider`;

    test(`${pair}: text, non-stream and stream, same text and usage`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(ingress, upstream, { text: 'Hello there', system: 'be brief', stream });
        assert.equal(r.text, 'mock reply to: Hello there', `stream=${stream}`);
        assert.equal(r.finish, 'stop');
        assert.deepEqual(r.calls, []);
        assert.equal(r.prompt, 4, `prompt tokens, stream=${stream}`); // words of system + user
        assert.equal(r.completion, 5, `completion tokens, stream=${stream}`);
      }
    });

    test(`${pair}: parallel tool calls with streamed arguments reassemble identically`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(ingress, upstream, { text: 'weather please [[mock:tool_calls=2]]', tools: true, stream });
        assert.equal(r.finish, 'tool_calls', `stream=${stream}`);
        assert.equal(r.calls.length, 2);
        assert.deepEqual(r.calls.map((c) => c.name), ['get_weather', 'get_time']);
        assert.deepEqual(r.calls[0].args, ruleArgs('weather please', 0));
        assert.deepEqual(r.calls[1].args, ruleArgs('weather please', 1));
        // an OpenAI client sees the provider's argument bytes, not just an equal object
        if (ingress === 'openai') r.calls.forEach((c, i) => assert.equal(c.raw, JSON.stringify(ruleArgs('weather please', i))));
        assert.ok(r.calls.every((c) => typeof c.id === 'string' && c.id.length > 0));
        assert.notEqual(r.calls[0].id, r.calls[1].id);
      }
    });

    test(`${pair}: tool results sent back in the next turn reach the provider`, async () => {
      const first = await ask(ingress, upstream, { text: 'weather please [[mock:tool_calls=2]]', tools: true });
      let r;
      if (ingress === 'openai') {
        const c = await oai.chat.completions.create({
          model: `m-${upstream}`, tools: TOOLS_OPENAI,
          messages: [
            { role: 'user', content: 'weather please' },
            { role: 'assistant', content: null, tool_calls: first.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })) },
            { role: 'tool', tool_call_id: first.calls[0].id, content: 'sunny' },
            { role: 'tool', tool_call_id: first.calls[1].id, content: 'noon' },
          ],
        });
        r = fromOpenAI(c);
      } else {
        const m = await ant.messages.create({
          model: `m-${upstream}`, max_tokens: 100, tools: TOOLS_ANTHROPIC,
          messages: [
            { role: 'user', content: 'weather please' },
            { role: 'assistant', content: first.calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.args })) },
            { role: 'user', content: [
              { type: 'tool_result', tool_use_id: first.calls[0].id, content: 'sunny' },
              { type: 'tool_result', tool_use_id: first.calls[1].id, content: [{ type: 'text', text: 'noon' }] },
            ] },
          ],
        });
        r = fromAnthropic(m);
      }
      assert.equal(r.text, 'mock saw 2 tool results: sunny | noon');
      assert.equal(r.finish, 'stop');
    });

    test(`${pair}: an image reaches the provider`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(ingress, upstream, { text: 'describe', image: true, stream });
        assert.equal(r.text, 'mock reply to: describe [images: 1]');
      }
    });

    test(`${pair}: cached prompt tokens are reported as the provider counted them`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(ingress, upstream, { text: 'one two three four [[mock:cached=3]]', stream });
        assert.equal(r.prompt, 4, `stream=${stream}`);
        assert.equal(r.cached, 3, `stream=${stream}`);
      }
    });

    test(`${pair}: max tokens reached is a length finish`, async () => {
      const extra = ingress === 'openai' ? { max_tokens: 2 } : { max_tokens: 2 };
      const r = await ask(ingress, upstream, { text: 'Hello there', extra });
      assert.equal(r.text, 'mock reply');
      assert.equal(r.finish, 'length');
    });

    test(`${pair}: provider errors arrive in the client's shape, type and message exact`, async () => {
      const Cls = ingress === 'openai' ? OpenAI : Anthropic;
      for (const stream of [false, true]) {
        await assert.rejects(
          () => ask(ingress, upstream, { text: 'hi [[mock:status=429,retry_after=0]]', stream }),
          (e) => {
            assert.ok(e instanceof Cls.RateLimitError, `${e.constructor.name}: ${e.message}`);
            assert.equal(e.status, 429);
            if (ingress === 'openai') {
              assert.equal(e.type, 'rate_limit_error', `stream=${stream}`);
              assert.equal(e.error.message, 'aigw-mock injected status 429');
            } else {
              assert.equal(e.error.type, 'error');
              assert.deepEqual(e.error.error, { type: 'rate_limit_error', message: 'aigw-mock injected status 429' });
            }
            return true;
          },
        );
      }
    });

    // What the client saw of a stream before it failed: its text, and the error exactly.
    async function streamUntilError(text) {
      let partial = '';
      let error;
      try {
        if (ingress === 'openai') {
          const s = await oai.chat.completions.create({ model: `m-${upstream}`, stream: true, messages: [{ role: 'user', content: text }] });
          for await (const c of s) partial += c.choices[0]?.delta?.content ?? '';
        } else {
          const s = await ant.messages.create({ model: `m-${upstream}`, max_tokens: 1000, stream: true, messages: [{ role: 'user', content: text }] });
          for await (const ev of s) if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') partial += ev.delta.text;
        }
      } catch (e) {
        error = e;
      }
      assert.ok(error, `the stream of ${text} ended without an error; text: ${partial}`);
      const shape = ingress === 'openai'
        ? { type: error.error?.type, message: error.error?.message, code: error.error?.code }
        : { type: error.error?.error?.type, message: error.error?.error?.message };
      return { partial, shape };
    }
    // The words each provider format streams before its Nth event (events are counted as sent:
    // OpenAI's role chunk, Anthropic's message_start, ping and block start come first).
    const wordsBefore = (n) => ({ openai: n - 1, anthropic: n - 3, gemini: n }[upstream]);
    const words = (n) => Array.from({ length: n }, (_, i) => `w${i + 1} `).join('');

    test(`${pair}: a provider failing mid-stream: the partial text, then the error exactly`, async () => {
      const { partial, shape } = await streamUntilError('w [[mock:words=30,drop_after=6]]');
      assert.equal(partial, words(wordsBefore(6)));
      const message = `provider up-${upstream} stream failed (broken): transfer closed with outstanding read data remaining`;
      assert.deepEqual(shape, ingress === 'openai'
        ? { type: 'server_error', message, code: 'upstream_stream_error' }
        : { type: 'api_error', message });
    });

    test(`${pair}: a provider's in-band stream error becomes the client's in-band error`, async () => {
      const { partial, shape } = await streamUntilError('w [[mock:words=30,stream_error=6]]');
      assert.equal(partial, words(wordsBefore(6)));
      if (ingress === upstream) { // the fast path forwards the provider's own error event
        assert.deepEqual(shape, ingress === 'openai'
          ? { type: 'server_error', message: 'aigw-mock injected stream error', code: null }
          : { type: 'overloaded_error', message: 'aigw-mock injected stream error' });
      } else {
        const message = `provider up-${upstream} stream failed: aigw-mock injected stream error`;
        assert.deepEqual(shape, ingress === 'openai'
          ? { type: 'server_error', message, code: 'upstream_stream_error' }
          : { type: 'api_error', message });
      }
    });
  }
}

test('OpenAI client → Anthropic and Gemini: JSON output comes back as JSON content', async () => {
  for (const upstream of ['anthropic', 'gemini', 'openai']) {
    const r = await ask('openai', upstream, { text: 'give json', extra: { response_format: { type: 'json_object' } } });
    const parsed = JSON.parse(r.text);
    assert.equal(typeof parsed, 'object', upstream);
    assert.equal(r.finish, 'stop', upstream);
  }
});

test('Anthropic client: structured output (output_config.format) comes back as JSON from every provider', async () => {
  for (const upstream of UPSTREAMS) {
    const msg = await ant.messages.create({
      model: `m-${upstream}`, max_tokens: 200,
      messages: [{ role: 'user', content: 'give json' }],
      output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: { reply: { type: 'string' } } } } },
    });
    const text = msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.deepEqual(JSON.parse(text), { reply: 'mock reply to: give json' }, upstream);
  }
});

test('parameters a provider cannot take are dropped visibly, never silently', async () => {
  const { response } = await oai.chat.completions
    .create({ model: 'm-anthropic', messages: [{ role: 'user', content: 'hi' }], seed: 3, logprobs: true })
    .withResponse();
  assert.equal(response.headers.get('x-aigw-dropped-params'), 'seed,logprobs');
  const line = await gw.waitLog((l) => l.dropped_params === 'seed,logprobs');
  assert.equal(line.provider, 'up-anthropic');
  // n > 1 would change the meaning: refused, not dropped
  await assert.rejects(
    () => oai.chat.completions.create({ model: 'm-anthropic', messages: [{ role: 'user', content: 'hi' }], n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n',
  );
});

test('Anthropic client: errors of the gateway itself are in Anthropic shape with request-id', async () => {
  const res = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'k' },
    body: JSON.stringify({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(res.status, 404);
  assert.ok(res.headers.get('request-id'));
  const body = await res.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'not_found_error');
  assert.match(body.error.message, /no-such-model/);
  await assert.rejects(
    () => ant.messages.create({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && /no-such-model/.test(e.message),
  );
});

test('Anthropic client: Claude Code\'s ?beta=true path, Bearer or x-api-key, count_tokens', async () => {
  const res = await fetch(`${gw.url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2026-10-21', authorization: 'Bearer k' },
    body: JSON.stringify({ model: 'm-anthropic', max_tokens: 50, messages: [{ role: 'user', content: 'beta path' }] }),
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).content[0].text, 'mock reply to: beta path');
  const counted = await ant.messages.countTokens({ model: 'm-anthropic', messages: [{ role: 'user', content: 'one two three' }] });
  assert.equal(counted.input_tokens, 3); // the provider counted
  const estimated = await ant.messages.countTokens({ model: 'm-openai', messages: [{ role: 'user', content: 'one two three' }] });
  assert.ok(estimated.input_tokens > 0); // an estimate where the provider cannot count
});

// cost = uncached prompt × input + cached × cached_input + completion × output, per million
const expectedCost = (u, prompt, cached, completion) =>
  ((prompt - cached) * PRICES[u].input + cached * PRICES[u].cached_input + completion * PRICES[u].output) / 1e6;

test('usage and cost: header and log for replies, the usage chunk and log for streams', async () => {
  const text = 'one two three four [[mock:cached=3]]'; // 4 prompt words, 3 of them cached
  for (const upstream of UPSTREAMS) {
    const want = expectedCost(upstream, 4, 3, 7); // reply: "mock reply to: one two three four"
    const id = `cost-${upstream}-${Date.now()}`;
    const { data, response } = await oai.chat.completions
      .create({ model: `m-${upstream}`, messages: [{ role: 'user', content: text }] }, { headers: { 'x-request-id': id } })
      .withResponse();
    assert.equal(data.usage.prompt_tokens, 4);
    assert.ok(Math.abs(Number(response.headers.get('x-aigw-cost-usd')) - want) < 1e-12, `${upstream}: ${response.headers.get('x-aigw-cost-usd')} vs ${want}`);
    const line = await gw.waitLog((l) => l.request_id === id);
    assert.deepEqual(line.usage, { prompt_tokens: 4, completion_tokens: 7, cached_tokens: 3, cache_write_tokens: 0, reasoning_tokens: 0 });
    assert.ok(Math.abs(line.cost_usd - want) < 1e-12);

    const sid = `cost-s-${upstream}-${Date.now()}`;
    const stream = await oai.chat.completions.create(
      { model: `m-${upstream}`, messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-request-id': sid } },
    );
    let last;
    for await (const chunk of stream) last = chunk;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, 4);
    assert.ok(Math.abs(last.aigw.cost_usd - want) < 1e-12, `${upstream} stream: ${JSON.stringify(last)}`);
    const sline = await gw.waitLog((l) => l.request_id === sid);
    assert.ok(Math.abs(sline.cost_usd - want) < 1e-12);
    assert.equal(sline.usage.cached_tokens, 3);
  }
  // an Anthropic client's stream: usage from the provider, cost in the log
  const aid = `cost-a-${Date.now()}`;
  const msg = await ant.messages.stream({ model: 'm-gemini', max_tokens: 100, messages: [{ role: 'user', content: text }] },
    { headers: { 'x-request-id': aid } }).finalMessage();
  assert.equal(msg.usage.cache_read_input_tokens, 3);
  const aline = await gw.waitLog((l) => l.request_id === aid);
  assert.ok(Math.abs(aline.cost_usd - expectedCost('gemini', 4, 3, 7)) < 1e-12);
});

test('usage and cost with reasoning and cache-write tokens, in every client format', async () => {
  // 4 prompt words: 2 read from a cache, 1 written to it; 3 reasoning tokens; the reply has 7 words
  const text = 'one two three four [[mock:cached=2,cache_write=1,reasoning=3]]';
  // what each provider format can say: OpenAI and Gemini have no cache-write count, Anthropic
  // no separate reasoning count (its output_tokens include thinking)
  const want = {
    openai: { prompt_tokens: 4, completion_tokens: 10, cached_tokens: 2, cache_write_tokens: 0, reasoning_tokens: 3 },
    anthropic: { prompt_tokens: 4, completion_tokens: 10, cached_tokens: 2, cache_write_tokens: 1, reasoning_tokens: 0 },
    gemini: { prompt_tokens: 4, completion_tokens: 10, cached_tokens: 2, cache_write_tokens: 0, reasoning_tokens: 3 },
  };
  const cost = (u, w) => ((w.prompt_tokens - w.cached_tokens - w.cache_write_tokens) * PRICES[u].input +
    w.cached_tokens * PRICES[u].cached_input + w.cache_write_tokens * PRICES[u].cache_write +
    w.completion_tokens * PRICES[u].output) / 1e6;
  for (const upstream of UPSTREAMS) {
    const w = want[upstream];
    const id = `rc-${upstream}-${Date.now()}`;
    const { data, response } = await oai.chat.completions
      .create({ model: `m-${upstream}`, messages: [{ role: 'user', content: text }] }, { headers: { 'x-request-id': id } })
      .withResponse();
    assert.equal(data.usage.prompt_tokens, 4, upstream);
    assert.equal(data.usage.completion_tokens, 10, upstream);
    assert.equal(data.usage.prompt_tokens_details?.cached_tokens, 2, upstream);
    assert.equal(data.usage.completion_tokens_details?.reasoning_tokens ?? 0, w.reasoning_tokens, upstream);
    assert.ok(Math.abs(Number(response.headers.get('x-aigw-cost-usd')) - cost(upstream, w)) < 1e-12,
      `${upstream}: ${response.headers.get('x-aigw-cost-usd')} vs ${cost(upstream, w)}`);
    const line = await gw.waitLog((l) => l.request_id === id);
    assert.deepEqual(line.usage, w, upstream);
    assert.ok(Math.abs(line.cost_usd - cost(upstream, w)) < 1e-12);

    // an Anthropic client, streamed: its usage splits the prompt the Anthropic way
    const aid = `rc-a-${upstream}-${Date.now()}`;
    const m = await ant.messages.stream({ model: `m-${upstream}`, max_tokens: 100, messages: [{ role: 'user', content: text }] },
      { headers: { 'x-request-id': aid } }).finalMessage();
    assert.equal(m.usage.cache_read_input_tokens, 2, upstream);
    assert.equal(m.usage.cache_creation_input_tokens, w.cache_write_tokens, upstream);
    assert.equal(m.usage.input_tokens, 4 - 2 - w.cache_write_tokens, upstream);
    assert.equal(m.usage.output_tokens, 10, upstream);
    const aline = await gw.waitLog((l) => l.request_id === aid);
    assert.deepEqual(aline.usage, w, `${upstream} stream`);
    assert.ok(Math.abs(aline.cost_usd - cost(upstream, w)) < 1e-12);
  }
});

test('x-aigw-dropped-params on a stream, and after a fallback names the target that answered', async () => {
  const s = await oai.chat.completions
    .create({ model: 'm-anthropic', messages: [{ role: 'user', content: 'hi' }], seed: 3, stream: true })
    .withResponse();
  assert.equal(s.response.headers.get('x-aigw-dropped-params'), 'seed');
  let text = '';
  for await (const c of s.data) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'mock reply to: hi');

  // the first target (an OpenAI-format provider that takes seed) cannot be reached; the
  // fallback (Anthropic) drops seed, and only its drop is reported
  const config = { strategy: { mode: 'fallback' }, targets: [
    { provider: 'up-dead', model: 'm-dead', retry: { attempts: 0 } },
    { provider: 'up-anthropic', model: 'm-anthropic' },
  ] };
  for (const stream of [false, true]) {
    const id = `fb-${stream}-${Date.now()}`;
    const r = await oai.chat.completions
      .create({ model: 'any', messages: [{ role: 'user', content: 'hi' }], seed: 3, ...(stream ? { stream: true } : {}) },
        { headers: { 'x-aigw-config': JSON.stringify(config), 'x-request-id': id } })
      .withResponse();
    assert.equal(r.response.headers.get('x-aigw-provider'), 'up-anthropic', `stream=${stream}`);
    assert.equal(r.response.headers.get('x-aigw-attempts'), '2');
    assert.equal(r.response.headers.get('x-aigw-dropped-params'), 'seed', `stream=${stream}`);
    if (stream) for await (const c of r.data) void c;
    const line = await gw.waitLog((l) => l.request_id === id);
    assert.equal(line.dropped_params, 'seed');
    assert.deepEqual(line.attempts.map((a) => a.outcome), ['connect_error', 'ok']);
  }
  // and the other way round: a dropping target fails, the one that answers drops nothing
  const back = { strategy: { mode: 'fallback' }, targets: [
    { provider: 'up-anthropic', model: 'm-anthropic', retry: { attempts: 0 }, override_params: { messages: [{ role: 'user', content: 'x [[mock:status=500]]' }] } },
    { provider: 'up-openai', model: 'm-openai' },
  ] };
  const r = await oai.chat.completions
    .create({ model: 'any', messages: [{ role: 'user', content: 'hi' }], seed: 3 }, { headers: { 'x-aigw-config': JSON.stringify(back) } })
    .withResponse();
  assert.equal(r.response.headers.get('x-aigw-provider'), 'up-openai');
  assert.equal(r.response.headers.get('x-aigw-dropped-params'), null);
});
