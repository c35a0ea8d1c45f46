// openai-sdk.test.mjs — the official openai SDK as the client, through aigw, to aigw-mock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway, gatewayConfig, eventually, chatBody, sleep } from './harness.mjs';

let mock, gw, client;

before(async () => {
  mock = await startMock();
  gw = await startGateway(gatewayConfig(mock.port));
  client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

test('non-stream chat: content, model, usage as the upstream computed, x-request-id', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'mock-model', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello there' }] })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'mock reply to: Hello there');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(data.model, 'mock-model');
  assert.deepEqual(data.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
  assert.match(response.headers.get('x-request-id'), /^req_[0-9a-f]+$/);
  assert.equal(response.headers.get('content-type'), 'application/json');
});

test('a client-sent x-request-id is kept, reaches the access log with the request facts', async () => {
  const id = `e2e-${Date.now()}`;
  const { response } = await client.chat.completions
    .create(chatBody('log me'), { headers: { 'x-request-id': id } })
    .withResponse();
  assert.equal(response.headers.get('x-request-id'), id);
  const line = await gw.waitLog((l) => l.request_id === id);
  assert.equal(line.status, 200);
  assert.equal(line.model, 'mock-model');
  assert.equal(line.provider, 'mock');
  assert.equal(line.stream, false);
  assert.equal(line.path, '/v1/chat/completions');
  assert.equal(line.method, 'POST');
  for (const k of ['time', 'bytes_in', 'bytes_out', 'ttfb_ms', 'total_ms']) assert.ok(k in line, `log has ${k}`);
  assert.ok(line.bytes_in > 0 && line.bytes_out > 0 && line.total_ms >= line.ttfb_ms);
});

test('an alias reaches the provider under its upstream name', async () => {
  await mock.reset();
  const r = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.model, 'mock-small');
  const s = await mock.stats();
  assert.equal(s.models['mock-small'], 1);
  assert.equal(s.models.fast, undefined);
});

test('stream: text reassembled, role first, finish_reason, no usage unless asked', async () => {
  const stream = await client.chat.completions.create({ ...chatBody('one two three'), stream: true });
  let text = '', first = null, finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (first === null) first = c.delta;
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(first.role, 'assistant');
  assert.equal(text, 'mock reply to: one two three');
  assert.equal(finish, 'stop');
  assert.equal(usage, null);
});

test('stream with include_usage: final usage chunk with choices: []', async () => {
  const stream = await client.chat.completions.create({
    ...chatBody('count me'), stream: true, stream_options: { include_usage: true },
  });
  let usageChunk = null, text = '';
  for await (const chunk of stream) {
    if (chunk.usage) usageChunk = chunk;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, 'mock reply to: count me');
  assert.deepEqual(usageChunk.choices, []);
  assert.deepEqual(usageChunk.usage, { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
});

test('the SDK stream helper and finalChatCompletion()', async () => {
  const runner = client.chat.completions.stream({ ...chatBody('helper please'), stream_options: { include_usage: true } });
  const deltas = [];
  runner.on('content', (d) => deltas.push(d));
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'mock reply to: helper please');
  assert.equal(final.choices[0].message.role, 'assistant');
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.equal(deltas.join(''), 'mock reply to: helper please');
  assert.ok(deltas.length >= 4, 'content arrived in several deltas');
});

test('streaming is incremental: the first delta arrives while the upstream is still sending', async () => {
  await mock.reset();
  const t0 = Date.now();
  const stream = await client.chat.completions.create({ ...chatBody('x [[mock:chunk_delay_ms=150]]'), stream: true });
  let firstAt = null, statsAtFirst = null, text = '';
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta?.content;
    if (content && firstAt === null) {
      firstAt = Date.now() - t0;
      statsAtFirst = await mock.stats();
    }
    text += content ?? '';
  }
  const total = Date.now() - t0;
  assert.equal(text, 'mock reply to: x');
  // 7 events 150 ms apart: the upstream needs >= 900 ms; the first content (2nd event) comes early.
  assert.ok(total >= 850, `total ${total} ms`);
  assert.ok(firstAt < total - 400, `first delta at ${firstAt} ms of ${total} ms`);
  assert.equal(statsAtFirst.streams.completed, 0, 'the upstream had not finished when the first delta arrived');
  assert.equal(statsAtFirst.in_flight, 1);
});

test('completions, non-stream and stream', async () => {
  const r = await client.completions.create({ model: 'mock-model', prompt: 'Say this' });
  assert.equal(r.choices[0].text, 'mock completion of: Say this');
  assert.equal(r.object, 'text_completion');
  const stream = await client.completions.create({ model: 'mock-model', prompt: 'Say that', stream: true });
  let text = '', finish = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'mock completion of: Say that');
  assert.equal(finish, 'stop');
});

test('embeddings: float and base64 (the SDK default) give the same vectors; dimensions', async () => {
  const input = ['alpha', 'beta'];
  const asFloat = await client.embeddings.create({ model: 'mock-embed', input, encoding_format: 'float' });
  const asDefault = await client.embeddings.create({ model: 'mock-embed', input }); // SDK asks base64, decodes
  assert.equal(asFloat.data.length, 2);
  for (let i = 0; i < 2; i++) {
    const f = asFloat.data[i].embedding, d = asDefault.data[i].embedding;
    assert.equal(f.length, 8);
    assert.equal(d.length, 8);
    for (let k = 0; k < 8; k++) assert.equal(Math.fround(f[k]), d[k]);
    assert.ok(f.every((v) => v >= -1 && v <= 1));
  }
  assert.notDeepEqual(asFloat.data[0].embedding, asFloat.data[1].embedding);
  const small = await client.embeddings.create({ model: 'mock-embed', input: 'alpha', dimensions: 3, encoding_format: 'float' });
  assert.equal(small.data[0].embedding.length, 3);
});

test('models list shows provider models and aliases', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const id of ['mock-model', 'mock-embed', 'fast', 'strict-model']) assert.ok(ids.includes(id), `${id} listed`);
});

test('gateway errors arrive as the SDK error classes with the message intact', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.param, 'model');
      assert.match(e.message, /The model `no-such-model` does not exist/);
      return true;
    });
});

test('upstream errors pass through with status and body', async () => {
  await assert.rejects(client.chat.completions.create(chatBody('x [[mock:status=400]]')), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.status, 400);
    assert.match(e.message, /aigw-mock injected status 400/);
    return true;
  });
  await assert.rejects(client.chat.completions.create(chatBody('x [[mock:status=429,retry_after=7]]')), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.headers.get('retry-after'), '7');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ ...chatBody('x [[mock:status=503]]'), stream: true }), (e) => {
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name);
    assert.equal(e.status, 503);
    return true;
  });
});

test('a client that disconnects mid-stream cancels the upstream call', async () => {
  await mock.reset();
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { ...chatBody('a b c d e f g h [[mock:chunk_delay_ms=200]]'), stream: true },
    { signal: controller.signal });
  let deltas = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) { deltas++; controller.abort(); }
    }
  } catch (e) {
    // Depending on timing the SDK ends the iteration or raises its abort error.
    assert.ok(e.name === 'AbortError' || e instanceof OpenAI.APIUserAbortError, e.constructor.name);
  }
  assert.equal(deltas, 1, 'nothing is read after the abort');
  const s = await eventually(async () => {
    const st = await mock.stats();
    return st.streams.aborted === 1 && st.in_flight === 0 ? st : null;
  }, 1500, 'upstream stream aborted');
  assert.equal(s.streams.completed, 0);
  const line = await gw.waitLog((l) => l.stream && l.error === 'client closed the connection');
  assert.equal(line.status, 200);
});

test('an upstream dying mid-stream makes the SDK throw, never a clean end', async () => {
  const stream = await client.chat.completions.create({ ...chatBody('a b c d e f [[mock:drop_after=3]]'), stream: true });
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (e) => {
    assert.ok(e instanceof OpenAI.APIError, e.constructor.name);
    assert.match(e.message, /stream failed|without \[DONE\]/);
    return true;
  });
  assert.equal(text, 'mock reply ', 'what arrived before the failure was delivered');
  // The dropped upstream connection is gone; the next requests open new ones (often on the
  // same fd number) and must be served at once, not hang until a timeout.
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const r = await client.chat.completions.create(chatBody(`after drop ${i}`));
    assert.equal(r.choices[0].message.content, `mock reply to: after drop ${i}`);
    assert.ok(Date.now() - t0 < 1000, `served in ${Date.now() - t0} ms`);
  }
});

test('upstream timeouts and connection failures: 504 and 502 in the OpenAI shape', async () => {
  const t0 = Date.now();
  await assert.rejects(
    client.chat.completions.create({ model: 'strict-model', messages: [{ role: 'user', content: 'x [[mock:ttfb_ms=3000]]' }] }),
    (e) => {
      assert.equal(e.status, 504);
      assert.equal(e.code, 'upstream_timeout');
      assert.match(e.message, /first byte/);
      return true;
    });
  assert.ok(Date.now() - t0 < 2000, 'the first-byte timeout (400 ms) fired well before the upstream answered');
  await assert.rejects(client.chat.completions.create(chatBody('x [[mock:reset=1]]')), (e) => {
    assert.equal(e.status, 502);
    assert.equal(e.code, 'upstream_error');
    return true;
  });
  // An idle gap longer than the idle timeout in the middle of a stream: an in-band error.
  const stream = await client.chat.completions.create({
    model: 'strict-model', stream: true, messages: [{ role: 'user', content: 'a b [[mock:chunk_delay_ms=1000]]' }],
  });
  await assert.rejects(async () => { for await (const _ of stream) { /* drain */ } }, (e) => {
    assert.match(e.message, /idle/);
    return true;
  });
});
