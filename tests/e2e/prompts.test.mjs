// prompts.test.mjs — prompt templates end to end: templates and partials written through the
// admin API (versions, labels, a split, a promotion) reach the workers through the key snapshot;
// /v1/prompts/{id}/render answers with the rendered request (Portkey's shape), a missing
// variable is a 400 naming it, and /v1/prompts/{id}/completions sends the rendered request
// through routing to the provider, plain and streamed, with the version on the response head.
// A label split 50/50 between two versions serves both within a stated tolerance, and a sticky
// user always gets the same one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'test-master-key-prompts-0123';
let mock, gw;

before(async () => {
  mock = await startMock();
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model, mock-other]}
auth:
  master_key: ${MASTER}
`);
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

async function call(method, path, body, headers = {}) {
  const r = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, body: json, text, headers: r.headers };
}

// the workers see a write within one snapshot poll
async function rendered(ref, variables) {
  let r;
  await eventually(async () => {
    r = await call('POST', `/v1/prompts/${ref}/render`, { variables });
    return r.status !== 404;
  }, 5000, `${ref} reaches the workers`);
  return r;
}

test('templates with partials render, versions and labels choose, a missing variable is a 400 naming it', async () => {
  let r = await call('POST', '/admin/partials', { id: 'signature', text: '-- {{team}} team' });
  assert.equal(r.status, 200, r.text);
  r = await call('POST', '/admin/prompts', { id: 'greet', messages: [{ role: 'user', content: 'broken {{#x}}' }] });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /template 'greet messages\[0\]' line 1: section 'x' is not closed/);
  r = await call('POST', '/admin/prompts', {
    id: 'greet',
    model: 'mock-model',
    parameters: { temperature: 0.2, max_tokens: 50 },
    labels: ['production'],
    messages: [
      { role: 'system', content: 'You help {{company}}.\n{{>signature}}' },
      { role: 'user', content: [{ type: 'text', text: 'Hello, I am {{name}}. {{#items}}[{{.}}]{{/items}} <b>' }] },
    ],
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.version, 1);
  r = await rendered('greet', { company: 'Acme & Co', name: 'Ada', team: 'core', items: ['a', 'b'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true);
  assert.equal(r.body.prompt_version, 1);
  assert.deepEqual(r.body.data.messages[0], { role: 'system', content: 'You help Acme & Co.\n-- core team' });
  assert.equal(r.body.data.messages[1].content[0].text, 'Hello, I am Ada. [a][b] <b>');
  assert.equal(r.body.data.temperature, 0.2);
  assert.equal(r.body.data.model, 'mock-model');

  r = await call('POST', '/v1/prompts/greet/render', { variables: { company: 'x', team: 't' } });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'missing_variable');
  assert.equal(r.body.error.param, 'name');
  assert.match(r.body.error.message, /Missing variable 'name'/);

  // a second version; production stays on 1 until promoted; @2 and @latest-style refs
  r = await call('POST', '/admin/prompts', {
    id: 'greet', model: 'mock-model', messages: [{ role: 'user', content: 'v2 for {{name}}' }], labels: ['staging'],
  });
  assert.equal(r.body.version, 2);
  r = await rendered('greet@staging', { name: 'Bo' });
  assert.equal(r.body.data.messages[0].content, 'v2 for Bo');
  r = await call('POST', '/v1/prompts/greet@1/render', { variables: { company: 'c', name: 'n', team: 't' } });
  assert.equal(r.body.prompt_version, 1);
  r = await call('POST', '/v1/prompts/greet/render', { variables: { company: 'c', name: 'n', team: 't' } });
  assert.equal(r.body.prompt_version, 1, 'production still names version 1');
  r = await call('POST', '/v1/prompts/nope/render', { variables: {} });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'prompt_not_found');
});

test('completions through a template reach the provider, plain and streamed, with the version on the head', async () => {
  let r = await call('POST', '/admin/prompts', {
    id: 'ask', model: 'mock-model', messages: [{ role: 'user', content: 'Question: {{q}}' }], labels: ['production'],
  });
  assert.equal(r.status, 200);
  await rendered('ask', { q: 'warm up' });
  r = await call('POST', '/v1/prompts/ask/completions', { variables: { q: 'why?' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-aigw-prompt-version'), 'ask@1');
  assert.equal(r.body.object, 'chat.completion');
  assert.ok(r.body.choices[0].message.content.length > 0);
  // the request's own model wins over the template's
  r = await call('POST', '/v1/prompts/ask/completions', { variables: { q: 'x' }, model: 'mock-other' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.model, 'mock-other');
  r = await call('POST', '/v1/prompts/ask/completions', { variables: { q: 'stream me' }, stream: true });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  assert.match(r.text, /data: \[DONE\]/);
  r = await call('POST', '/v1/prompts/ask/completions', { variables: {} });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'q');
});

test('a label split between versions serves both by weight, and a sticky user keeps one', async () => {
  let r = await call('POST', '/admin/prompts', { id: 'exp', messages: [{ role: 'user', content: 'A {{x}}' }], labels: ['production'] });
  r = await call('POST', '/admin/prompts', { id: 'exp', messages: [{ role: 'user', content: 'B {{x}}' }] });
  assert.equal(r.body.version, 2);
  r = await call('POST', '/admin/prompts/exp/labels', { label: 'production', split: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => {
    const seen = new Set();
    for (let i = 0; i < 20; i++) seen.add((await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 } })).body.prompt_version);
    return seen.size === 2;
  }, 5000, 'the split reaches the workers');
  const N = 400;
  let ones = 0;
  for (let i = 0; i < N; i++) if ((await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 } })).body.prompt_version === 1) ones++;
  // 50/50 over 400 draws: 5 standard deviations is ±50
  assert.ok(Math.abs(ones - N / 2) <= 50, `version 1 served ${ones} of ${N}`);
  for (const user of ['alice', 'bob', 'carol']) {
    const first = (await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 }, user })).body.prompt_version;
    for (let i = 0; i < 10; i++)
      assert.equal((await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 }, user })).body.prompt_version, first);
    const bySession = (await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 } }, { 'x-aigw-session-id': user })).body.prompt_version;
    assert.equal(bySession, first, 'the session header sticks as the user field does');
  }
  // promotion: the label to version 2 alone
  r = await call('POST', '/admin/prompts/exp/promote', { label: 'production', version: 2 });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => {
    for (let i = 0; i < 10; i++)
      if ((await call('POST', '/v1/prompts/exp/render', { variables: { x: 1 } })).body.prompt_version !== 2) return false;
    return true;
  }, 5000, 'the promotion reaches the workers');
});

test('a version named by number that the key snapshot leaves out is read from the store: render, completions, x-aigw-prompt', async () => {
  // five versions; the snapshot keeps the newest (5) and the labelled (2); 1, 3 and 4 stay in
  // the store and are read from it when a request names them
  for (let v = 1; v <= 5; v++) {
    const r = await call('POST', '/admin/prompts', {
      id: 'many', model: 'mock-model', labels: v === 2 ? ['stable'] : [],
      messages: [{ role: 'user', content: `version ${v} for {{name}}` }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.version, v);
  }
  await rendered('many@5', { name: 'x' });
  for (const v of [1, 2, 3, 4, 5]) {
    const r = await call('POST', `/v1/prompts/many@${v}/render`, { variables: { name: 'Ann' } });
    assert.equal(r.status, 200, `many@${v}: ${r.text}`);
    assert.equal(r.body.prompt_version, v);
    assert.equal(r.body.data.messages[0].content, `version ${v} for Ann`);
  }
  for (const ref of ['many@6', 'many@0x1', 'nothing@1']) {
    const r = await call('POST', `/v1/prompts/${ref}/render`, { variables: { name: 'Ann' } });
    assert.equal(r.status, 404, `${ref}: ${r.text}`);
    assert.equal(r.body.error.code, 'prompt_not_found');
  }
  // the label and the bare id resolve from the snapshot as before
  assert.equal((await call('POST', '/v1/prompts/many@stable/render', { variables: { name: 'a' } })).body.prompt_version, 2);
  assert.equal((await call('POST', '/v1/prompts/many/render', { variables: { name: 'a' } })).body.prompt_version, 5);
  // completions and a chat request naming an old version reach the provider with its text
  let r = await call('POST', '/v1/prompts/many@3/completions', { variables: { name: 'Bo' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-aigw-prompt-version'), 'many@3');
  assert.equal(r.body.choices[0].message.content, 'mock reply to: version 3 for Bo');
  r = await call('POST', '/v1/chat/completions', { model: 'mock-model', messages: [] },
    { 'x-aigw-prompt': 'many@1', 'x-aigw-prompt-variables': '{"name":"Cy"}' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-aigw-prompt-version'), 'many@1');
  assert.equal(r.body.choices[0].message.content, 'mock reply to: version 1 for Cy');
  // many at once, across both workers, each answered with its own version
  const many = await Promise.all(Array.from({ length: 40 }, (_, i) => call('POST', `/v1/prompts/many@${1 + (i % 4)}/render`, { variables: { name: `n${i}` } })));
  many.forEach((x, i) => assert.equal(x.body.data.messages[0].content, `version ${1 + (i % 4)} for n${i}`));
});
