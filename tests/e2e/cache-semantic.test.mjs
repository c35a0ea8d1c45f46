// cache-semantic.test.mjs — the semantic cache with the official openai SDK and aigw-mock's
// counters. aigw-mock's embeddings are hashed bags of words (tools/mock/README.md), so the same
// words reordered embed identically and one word changed stays close. Checked: a paraphrase
// answered with the stored reply (SEMANTIC_HIT, the similarity shown, no chat call, the
// embedding call counted), also as a stream; an unrelated prompt a miss; no hit across gateway
// keys (namespaces), across models, or under another system prompt; an exact repeat a plain HIT
// with no embedding call; with the embedding provider down, requests answered uncached (MISS)
// and the failure counted; the metrics. (Over the Redis backend: cache-redis.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway } from './harness.mjs';

const MASTER = 'cache-semantic-master-0123456789';
let mock, gw, gwDown, keyA, keyB, oa, oaB, oaDown;

const PROMPT = 'what is the capital city of france please answer me in one short and simple sentence with no extra detail';

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  const cfg = (embedModel) => `
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: k, models: [mock-model, mock-embed]}
  - name: dead
    type: openai
    base_url: "http://127.0.0.1:1/v1"
    api_key: k
    timeouts: {connect: 300ms}
    models: [dead-embed]
routes:
  - name: sem
    cache: {mode: semantic}
    targets: [{provider: oa, model: mock-model}]
  - name: sem-other
    cache: {mode: semantic}
    targets: [{provider: oa, model: mock-model}]
  - name: exact-only
    cache: {mode: simple}
    targets: [{provider: oa, model: mock-model}]
cache:
  ttl: 10m
  semantic: {embedding_model: ${embedModel}, threshold: 0.9, dimensions: 256, max_entries: 1000}
auth:
  master_key: ${MASTER}
`;
  gw = await startGateway(cfg('mock-embed'));
  gwDown = await startGateway(cfg('dead-embed'));
  const admin = async (body) => {
    const r = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    return (await r.json()).key;
  };
  keyA = await admin({ key_alias: 'sem-a' });
  keyB = await admin({ key_alias: 'sem-b' });
  oa = new OpenAI({ baseURL: gw.baseURL, apiKey: keyA, maxRetries: 0 });
  oaB = new OpenAI({ baseURL: gw.baseURL, apiKey: keyB, maxRetries: 0 });
  oaDown = new OpenAI({ baseURL: gwDown.baseURL, apiKey: MASTER, maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await gwDown?.stop();
  await mock?.stop();
});

const counts = async () => {
  const s = await mock.stats();
  return { chat: s.paths['/v1/chat/completions'] ?? 0, embed: s.paths['/v1/embeddings'] ?? 0 };
};

async function ask(client, model, text, extra = {}) {
  const messages = extra.system ? [{ role: 'system', content: extra.system }, { role: 'user', content: text }]
    : [{ role: 'user', content: text }];
  const r = await client.chat.completions.create({ model, messages }).withResponse();
  return {
    cache: r.response.headers.get('x-aigw-cache'),
    similarity: r.response.headers.get('x-aigw-cache-similarity'),
    content: r.data.choices[0].message.content,
  };
}

test('a paraphrase hits the stored reply (SEMANTIC_HIT); the embedding call is the only upstream call', async () => {
  const c0 = await counts();
  const first = await ask(oa, 'sem', PROMPT);
  assert.equal(first.cache, 'MISS');
  const c1 = await counts();
  assert.deepEqual(c1, { chat: c0.chat + 1, embed: c0.embed + 1 }, 'a miss: one embedding, one chat call');

  // the same words reordered
  const reordered = 'please answer me in one short and simple sentence with no extra detail what is the capital city of france';
  const hit = await ask(oa, 'sem', reordered);
  assert.equal(hit.cache, 'SEMANTIC_HIT');
  assert.equal(hit.content, first.content, 'the stored reply, made for the first wording');
  assert.ok(Number(hit.similarity) > 0.99, `similarity ${hit.similarity}`);
  // one word changed
  const changed = await ask(oa, 'sem', PROMPT.replace('short', 'brief'));
  assert.equal(changed.cache, 'SEMANTIC_HIT', `similarity ${changed.similarity}`);
  assert.ok(Number(changed.similarity) >= 0.9 && Number(changed.similarity) < 0.99, `similarity ${changed.similarity}`);
  assert.equal(changed.content, first.content);
  const c2 = await counts();
  assert.deepEqual(c2, { chat: c1.chat, embed: c1.embed + 2 }, 'hits: embeddings only, no chat call');

  // a stream is answered from the same entry
  const stream = await oa.chat.completions.create({ model: 'sem', messages: [{ role: 'user', content: reordered }], stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, first.content);
  assert.equal((await counts()).chat, c1.chat);
});

test('an exact repeat is a plain HIT: no embedding call', async () => {
  const c0 = await counts();
  const again = await ask(oa, 'sem', PROMPT);
  assert.equal(again.cache, 'HIT');
  assert.deepEqual(await counts(), c0);
});

test('an unrelated prompt misses; so do other namespaces, models and system prompts', async () => {
  const c0 = await counts();
  const far = await ask(oa, 'sem', 'how do i bake a sourdough bread at home with rye flour');
  assert.equal(far.cache, 'MISS');
  assert.match(far.content, /sourdough/);
  // another gateway key: its own namespace
  const other = await ask(oaB, 'sem', PROMPT);
  assert.equal(other.cache, 'MISS', 'no hit across namespaces');
  // another model (route), the same words
  const otherModel = await ask(oa, 'sem-other', PROMPT);
  assert.equal(otherModel.cache, 'MISS', 'no hit across models');
  // a system prompt the stored entry did not have
  const sys = await ask(oa, 'sem', PROMPT, { system: 'You answer in French.' });
  assert.equal(sys.cache, 'MISS', 'no hit under another system prompt');
  // a route that asks the exact cache only never embeds
  const exact = await ask(oa, 'exact-only', 'please answer me in one short and simple sentence with no extra detail what is the capital city of france');
  assert.equal(exact.cache, 'MISS');
  const c1 = await counts();
  assert.equal(c1.chat, c0.chat + 5);
  assert.equal(c1.embed, c0.embed + 4, 'the exact-only route made no embedding call');
});

test('the embedding provider down: requests answered uncached, the failure counted', async () => {
  const c0 = await counts();
  for (let i = 0; i < 2; i++) {
    const t0 = Date.now();
    const r = await ask(oaDown, 'sem', `${PROMPT} ${i}`);
    assert.equal(r.cache, 'MISS');
    assert.match(r.content, /capital city/);
    assert.ok(Date.now() - t0 < 3000, `bounded: ${Date.now() - t0} ms`);
  }
  const c1 = await counts();
  assert.equal(c1.chat, c0.chat + 2, 'both went upstream');
  assert.equal(c1.embed, c0.embed, 'no embedding reached the mock');
  const metrics = await (await fetch(`${gwDown.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  assert.equal(Number(metrics.match(/^aigw_cache_embedding_failures_total (\d+)$/m)?.[1]), 2);
  // its exact cache still works: the same prompt again is a HIT with no upstream call
  const again = await ask(oaDown, 'sem', `${PROMPT} 0`);
  assert.equal(again.cache, 'HIT');
  assert.equal((await counts()).chat, c1.chat);
});

test('metrics: SEMANTIC_HIT counted, the index holds its vectors', async () => {
  const metrics = await (await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${MASTER}` } })).text();
  assert.ok(Number(metrics.match(/aigw_cache_results_total\{result="SEMANTIC_HIT"\} (\d+)/)?.[1]) >= 3);
  const entries = Number(metrics.match(/^aigw_cache_semantic_entries (\d+)$/m)?.[1]);
  assert.ok(entries >= 5, `entries ${entries}`);
  const bytes = Number(metrics.match(/^aigw_cache_semantic_bytes (\d+)$/m)?.[1]);
  assert.ok(bytes >= entries * 256 * 4, `bytes ${bytes}`);
});
