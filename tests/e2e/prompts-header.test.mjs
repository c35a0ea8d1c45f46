// prompts-header.test.mjs — a template named on a plain request and templates kept in files.
// x-aigw-prompt on /v1/chat/completions (the official openai SDK) and /v1/messages (the official
// @anthropic-ai/sdk): the template's messages go first, in the client's format, the client's own
// messages after them; variables in x-aigw-prompt-variables or the body's "variables"; streamed
// too; a missing variable is a 400 in the client's shape naming it. Prompt files (YAML and
// Markdown with front matter) serve templates and partials without the admin API, split a label
// by the weights the files give, win over the store for the ids they define, and are read again
// on a reload (SIGHUP and POST /admin/config/reload); a broken file refuses the reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'test-master-key-prompts-hdr-01';
let mock, gw, oai, ant, dir;

function writePrompts(files) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

const GREET_V1 = `id: greet
version: 1
model: mock-model
labels: {production: 50}
parameters: {temperature: 0.5}
messages:
  - role: system
    content: "v1 system for {{name}}"
  - role: user
    content: |
      v1 hello {{name}}
      {{>sig}}
`;
const GREET_V2 = `---
id: greet
version: 2
model: mock-model
labels: {production: 50, staging: 1}
---
system:
v2 system for {{name}}

user:
v2 hello {{name}} {{>sig}}
`;
const SIG = `---
kind: partial
---
-- the files team
`;

before(async () => {
  mock = await startMock();
  dir = join(mkdtempSync(join(tmpdir(), 'aigw-prompts-')), 'prompts');
  writePrompts({ 'greet.yaml': GREET_V1, 'greet-v2.md': GREET_V2, 'sig.md': SIG, 'notes.txt': 'not a prompt' });
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "http://127.0.0.1:${mock.port}/v1", models: [mock-model]}
  - {name: an, type: anthropic, base_url: "http://127.0.0.1:${mock.port}", api_key: k, models: [claude-mock]}
auth:
  master_key: ${MASTER}
prompts:
  dir: ${dir}
`);
  oai = new OpenAI({ baseURL: gw.baseURL, apiKey: MASTER, maxRetries: 0, timeout: 20000 });
  ant = new Anthropic({ baseURL: gw.url, apiKey: MASTER, maxRetries: 0, timeout: 20000 });
  const r = await call('POST', '/admin/prompts', {
    id: 'hdr', model: 'mock-model', labels: ['production'],
    messages: [
      { role: 'system', content: 'You help {{company}}.' },
      { role: 'user', content: 'Hi, I am {{name}}.' },
    ],
  });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => (await call('POST', '/v1/prompts/hdr/render', { variables: { company: 'c', name: 'n' } })).status === 200,
    5000, 'the template reaches the workers');
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
  rmSync(join(dir, '..'), { recursive: true, force: true });
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

const lastBody = async (path) => JSON.parse((await mock.requests(path)).at(-1).body);
const vars = (v) => ({ 'x-aigw-prompt-variables': JSON.stringify(v) });

test('x-aigw-prompt on a chat request (openai SDK): template first, the client\'s messages after, plain and streamed', async () => {
  const { data, response } = await oai.chat.completions.create(
    { model: 'mock-model', messages: [{ role: 'user', content: 'And one more thing.' }] },
    { headers: { 'x-aigw-prompt': 'hdr', ...vars({ company: 'Acme', name: 'Ada' }) } },
  ).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(response.headers.get('x-aigw-prompt-version'), 'hdr@1');
  let sent = await lastBody('/v1/chat/completions');
  assert.deepEqual(sent.messages, [
    { role: 'system', content: 'You help Acme.' },
    { role: 'user', content: 'Hi, I am Ada.' },
    { role: 'user', content: 'And one more thing.' },
  ]);
  assert.equal(sent.variables, undefined, 'the variables do not go upstream');

  // variables in the body (Portkey's field), no messages of the client's, streamed
  const stream = await oai.chat.completions.create(
    { model: 'mock-model', messages: [], stream: true, variables: { company: 'Initech', name: 'Bo' } },
    { headers: { 'x-aigw-prompt': 'hdr@1' } },
  );
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);
  sent = await lastBody('/v1/chat/completions');
  assert.equal(sent.stream, true);
  assert.deepEqual(sent.messages.map((m) => m.content), ['You help Initech.', 'Hi, I am Bo.']);

  // a missing variable: OpenAI's error shape, naming it
  await assert.rejects(
    oai.chat.completions.create({ model: 'mock-model', messages: [] },
      { headers: { 'x-aigw-prompt': 'hdr', ...vars({ company: 'Acme' }) } }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'missing_variable' && e.param === 'name' &&
      /Missing variable 'name'/.test(e.message),
  );
  let r = await call('POST', '/v1/chat/completions', { model: 'mock-model', messages: [] },
    { 'x-aigw-prompt': 'hdr', 'x-aigw-prompt-variables': '[1,2]' });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, 'x-aigw-prompt-variables');
  r = await call('POST', '/v1/chat/completions', { model: 'mock-model', messages: [] },
    { 'x-aigw-prompt': 'nope@production' });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'prompt_not_found');
});

test('x-aigw-prompt on a messages request (@anthropic-ai/sdk): system and turns in Anthropic\'s shape, plain and streamed', async () => {
  const { data, response } = await ant.messages.create(
    { model: 'claude-mock', max_tokens: 64, messages: [{ role: 'user', content: 'Extra turn.' }] },
    { headers: { 'x-aigw-prompt': 'hdr', ...vars({ company: 'Acme', name: 'Ada' }) } },
  ).withResponse();
  assert.equal(data.type, 'message');
  assert.equal(response.headers.get('x-aigw-prompt-version'), 'hdr@1');
  // written by the providers' translation (the one an Anthropic provider gets): text blocks
  const sent = await lastBody('/v1/messages');
  assert.deepEqual(sent.system, [{ type: 'text', text: 'You help Acme.' }]);
  assert.deepEqual(sent.messages, [
    { role: 'user', content: [{ type: 'text', text: 'Hi, I am Ada.' }] },
    { role: 'user', content: 'Extra turn.' },
  ]);
  assert.equal(sent.max_tokens, 64);
  assert.equal(sent.model, 'claude-mock');

  const stream = ant.messages.stream(
    { model: 'claude-mock', max_tokens: 64, messages: [] },
    { headers: { 'x-aigw-prompt': 'hdr', ...vars({ company: 'Acme', name: 'Cy' }) } },
  );
  const final = await stream.finalMessage();
  assert.equal(final.type, 'message');
  assert.deepEqual((await lastBody('/v1/messages')).messages[0].content, [{ type: 'text', text: 'Hi, I am Cy.' }]);

  // a template with a worked tool call, its result, a tool and JSON output: each in Anthropic's
  // own terms (tool_use, tool_result, input_schema, output_config), the client's fields winning
  let r = await call('POST', '/admin/prompts', {
    id: 'weather', model: 'claude-mock',
    parameters: { temperature: 0.3, seed: 7, user: 'tpl-user', response_format: { type: 'json_object' },
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'the weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] },
    messages: [
      { role: 'system', content: 'You report the weather for {{team}}.' },
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      { role: 'assistant', content: '{"reply":"Sunny in Oslo."}' },
    ],
  });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => (await call('POST', '/v1/prompts/weather/render', { variables: { team: 't' } })).status === 200,
    5000, 'the template reaches the workers');
  const reply = await ant.messages.create(
    { model: 'claude-mock', max_tokens: 50, temperature: 0.9, messages: [{ role: 'user', content: 'And in Bergen?' }] },
    { headers: { 'x-aigw-prompt': 'weather', ...vars({ team: 'Ops' }) } },
  );
  assert.equal(reply.type, 'message');
  const w = await lastBody('/v1/messages');
  assert.deepEqual(w.system, [{ type: 'text', text: 'You report the weather for Ops.' }, { type: 'text', text: 'Be brief.' }]);
  assert.deepEqual(w.messages, [
    { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' }] },
    { role: 'assistant', content: [{ type: 'text', text: '{"reply":"Sunny in Oslo."}' }] },
    { role: 'user', content: 'And in Bergen?' },
  ]);
  assert.deepEqual(w.tools, [{ name: 'get_weather', description: 'the weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }]);
  assert.deepEqual(w.output_config, { format: { type: 'json_schema', schema: { type: 'object' } } });
  assert.deepEqual(w.metadata, { user_id: 'tpl-user' });
  assert.equal(w.temperature, 0.9, 'the client\'s temperature wins');
  assert.equal(w.max_tokens, 50);
  assert.equal(w.seed, undefined, 'Messages has no seed');

  // a template Messages cannot say (a tool call whose arguments are no object): 400 in
  // Anthropic's shape, naming the template and why; the same template serves OpenAI's format
  r = await call('POST', '/admin/prompts', {
    id: 'odd-args', model: 'claude-mock',
    messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '[1]' } }] }],
  });
  assert.equal(r.status, 200, r.text);
  await eventually(async () => (await call('POST', '/v1/prompts/odd-args/render', {})).status === 200, 5000, 'the template reaches the workers');
  await assert.rejects(
    ant.messages.create({ model: 'claude-mock', max_tokens: 10, messages: [{ role: 'user', content: 'go' }] },
      { headers: { 'x-aigw-prompt': 'odd-args' } }),
    (e) => e instanceof Anthropic.BadRequestError && e.error.error.type === 'invalid_request_error' &&
      /prompt odd-args@1 cannot be written as this API's request: .*arguments are not a JSON object/.test(e.error.error.message),
  );

  await assert.rejects(
    ant.messages.create({ model: 'claude-mock', max_tokens: 10, messages: [] },
      { headers: { 'x-aigw-prompt': 'hdr', ...vars({ name: 'Ada' }) } }),
    (e) => e instanceof Anthropic.BadRequestError && e.error?.type === 'error' &&
      e.error.error.type === 'invalid_request_error' && /Missing variable 'company'/.test(e.error.error.message),
  );
});

test('templates and partials from files: YAML and Markdown, a split by the files\' weights, files win over the store', async () => {
  let r = await call('POST', '/v1/prompts/greet@1/render', { variables: { name: 'Ann' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.data.messages, [
    { role: 'system', content: 'v1 system for Ann' },
    { role: 'user', content: 'v1 hello Ann\n-- the files team\n' }, // a standalone partial tag keeps no line of its own
  ]);
  assert.equal(r.body.data.temperature, 0.5);
  r = await call('POST', '/v1/prompts/greet@staging/render', { variables: { name: 'Ann' } });
  assert.equal(r.body.prompt_version, 2);
  assert.deepEqual(r.body.data.messages, [
    { role: 'system', content: 'v2 system for Ann' },
    { role: 'user', content: 'v2 hello Ann -- the files team\n' },
  ]);
  // production splits 50/50 between the two files' versions
  const N = 200;
  let ones = 0;
  for (let i = 0; i < N; i++) if ((await call('POST', '/v1/prompts/greet/render', { variables: { name: 'x' } })).body.prompt_version === 1) ones++;
  // 50/50 over 200 draws: 5 standard deviations is ±35
  assert.ok(Math.abs(ones - N / 2) <= 35, `version 1 served ${ones} of ${N}`);
  // the files' ids are read-only through the admin API: the request path serves them from the
  // files alone, so a version, a label or a promotion written to the store would change nothing
  for (const [path, body] of [
    ['/admin/prompts', { id: 'greet', model: 'mock-model', labels: ['production'], messages: [{ role: 'user', content: 'store {{name}}' }] }],
    ['/admin/prompts/greet/labels', { label: 'production', version: 1 }],
    ['/admin/prompts/greet/labels', { label: 'staging', delete: true }],
    ['/admin/prompts/greet/promote', { label: 'production', version: 2 }],
    ['/admin/partials', { id: 'sig', text: 'store sig' }],
  ]) {
    r = await call('POST', path, body);
    assert.equal(r.status, 409, `${path}: ${r.text}`);
    assert.equal(r.body.error.code, 'prompt_read_only');
    assert.match(r.body.error.message, /defined by prompt files \(prompts\.dir\).*reload/);
  }
  // listed beside the store's, marked as the files' and read-only
  r = await call('GET', '/admin/prompts');
  assert.equal(r.status, 200, r.text);
  const listed = r.body.data.filter((e) => e.id !== 'weather' && e.id !== 'odd-args'); // the messages test's
  listed[1].labels.production.split.sort((a, b) => a.version - b.version); // the files' order
  assert.deepEqual(listed, [
    { id: 'hdr', latest_version: 1, labels: { production: 1 }, source: 'store' },
    { id: 'greet', latest_version: 2, source: 'files', read_only: true,
      labels: { production: { split: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] }, staging: 2 } },
  ]);
  r = await call('GET', '/admin/prompts/greet');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.source, 'files');
  assert.equal(r.body.read_only, true);
  assert.deepEqual(r.body.versions.map((v) => [v.version, v.file, v.model]), [[1, 'greet.yaml', 'mock-model'], [2, 'greet-v2.md', 'mock-model']]);
  assert.deepEqual(r.body.versions[1].messages, [{ role: 'system', content: 'v2 system for {{name}}' }, { role: 'user', content: 'v2 hello {{name}} {{>sig}}' }]);
  r = await call('GET', '/admin/partials');
  assert.deepEqual(r.body.data, [{ id: 'sig', latest_version: 1, labels: {}, source: 'files', read_only: true }]);
  // through the header, with the file template's model
  const res = await oai.chat.completions.create({ messages: [] },
    { headers: { 'x-aigw-prompt': 'greet@2', ...vars({ name: 'Dee' }) } });
  assert.equal(res.model, 'mock-model');
});

test('prompt files are read again on a reload; a broken file refuses it and the old ones keep serving', async () => {
  // a template in the store that a file then defines too: shadowed while the file is there
  let r = await call('POST', '/admin/prompts', { id: 'later', model: 'mock-model', messages: [{ role: 'user', content: 'store {{name}}' }] });
  assert.equal(r.status, 200, r.text);
  writePrompts({
    'greet.yaml': GREET_V1.replace('v1 hello', 'v1 reloaded hello').replace('{production: 50}', '[old]'),
    'greet-v2.md': GREET_V2.replace('{production: 50, staging: 1}', '[production]'),
    'sig.md': SIG,
    'later.yaml': 'model: mock-model\nmessages:\n  - {role: user, content: "file {{name}}"}\n',
  });
  process.kill(gw.pid, 'SIGHUP');
  await eventually(async () => {
    const r = await call('POST', '/v1/prompts/greet@old/render', { variables: { name: 'E' } });
    return r.status === 200 && /v1 reloaded hello E/.test(r.body.data.messages[1].content);
  }, 5000, 'SIGHUP reads the files again');
  for (let i = 0; i < 10; i++)
    assert.equal((await call('POST', '/v1/prompts/greet/render', { variables: { name: 'x' } })).body.prompt_version, 2);
  r = await call('POST', '/v1/prompts/later/render', { variables: { name: 'x' } });
  assert.equal(r.body.data.messages[0].content, 'file x');
  r = await call('GET', '/admin/prompts');
  assert.deepEqual(r.body.data.filter((e) => e.id === 'later'), [
    { id: 'later', latest_version: 1, labels: {}, source: 'store', shadowed: true },
    { id: 'later', latest_version: 1, labels: {}, source: 'files', read_only: true },
  ]);
  r = await call('GET', '/admin/prompts/later');
  assert.equal(r.body.source, 'files');
  assert.equal(r.body.shadowed_store_versions, 1);
  assert.equal(r.body.versions[0].file, 'later.yaml');

  writePrompts({ 'greet.yaml': GREET_V1, 'broken.md': '---\nid: broken\n---\nuser:\n{{#open}} never closed\n', 'sig.md': SIG });
  r = await call('POST', '/admin/config/reload', undefined);
  assert.notEqual(r.status, 200, r.text);
  assert.match(r.text, /broken\.md.*section 'open' is not closed/);
  r = await call('POST', '/v1/prompts/greet/render', { variables: { name: 'x' } });
  assert.equal(r.body.prompt_version, 2, 'the previous files keep serving');

  writePrompts({ 'greet.yaml': GREET_V1.replace('{production: 50}', '[production]'), 'sig.md': SIG });
  r = await call('POST', '/admin/config/reload', undefined);
  assert.equal(r.status, 200, r.text);
  r = await call('POST', '/v1/prompts/greet/render', { variables: { name: 'x' } });
  assert.equal(r.body.prompt_version, 1);
  // no file defines 'later' any more: the store's version serves again, and is writable
  r = await call('POST', '/v1/prompts/later/render', { variables: { name: 'x' } });
  assert.equal(r.body.data.messages[0].content, 'store x');
  r = await call('GET', '/admin/prompts/later');
  assert.equal(r.body.source, 'store');
  assert.equal(r.body.shadowed_store_versions, undefined);
  r = await call('POST', '/admin/prompts/later/labels', { label: 'production', version: 1 });
  assert.equal(r.status, 200, r.text);
});
