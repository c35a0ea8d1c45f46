// litellm.test.mjs — what LiteLLM users bring: `provider/model` names, and their proxy's
// config.yaml. Through the official `openai` SDK against aigw-mock serving as OpenAI-compatible
// and Anthropic providers: a `type/model` name reaches a provider of that type serving the model
// (the upstream is asked for the part after the slash), a provider with no `models:` list takes
// any model of its type, several providers of the type are a fallback in the config's order, an
// exact configured name wins over the reading, and anything else is the usual 404. Then a
// LiteLLM config written as LiteLLM's documentation writes it (os.environ/…) is imported,
// checked, and served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AIGW_BIN, startMock, startGateway, scratchDir } from './harness.mjs';

let mock, gw, oai;

const T = '{connect: 2s, first_byte: 5s, idle: 5s}';

before(async () => {
  mock = await startMock();
  const base = `http://127.0.0.1:${mock.port}`;
  gw = await startGateway(`
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0}
providers:
  - {name: oa-listed, type: openai, base_url: "${base}/v1", api_key: k-listed, models: [gpt-4o-mini], timeouts: ${T}}
  - {name: oa-any, type: openai, base_url: "${base}/v1", api_key: k-any, timeouts: ${T}}
  - {name: ant, type: anthropic, base_url: "${base}", api_key: k-ant, models: [claude-sonnet-4-5], timeouts: ${T}}
  - {name: groq-dead, type: groq, base_url: "http://127.0.0.1:9/v1", api_key: k-dead, models: [llama-3.3], timeouts: {connect: 1s}}
  - {name: groq-up, type: groq, base_url: "${base}/v1", api_key: k-groq, models: [llama-3.3], timeouts: ${T}}
models:
  - {name: "openai/gpt-4.1", provider: ant, model: claude-sonnet-4-5}
routes:
  - {name: "openai/o3", provider: ant, model: claude-sonnet-4-5}
`);
  oai = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

async function ask(model, extra = {}) {
  const { data, response } = await oai.chat.completions
    .create({ model, messages: [{ role: 'user', content: 'hello there' }], max_tokens: 20, ...extra })
    .withResponse();
  return { data, headers: response.headers };
}

// The body the mock last received on path.
async function lastBody(path) {
  const reqs = await mock.requests(path);
  assert.ok(reqs.length, `the mock got a request on ${path}`);
  return { body: JSON.parse(reqs.at(-1).body), headers: reqs.at(-1).headers };
}

const header = (rec, name) => rec.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);

test('openai/MODEL: the first openai provider listing the model; the upstream gets MODEL', async () => {
  await mock.reset();
  const { data, headers } = await ask('openai/gpt-4o-mini');
  assert.ok(data.choices[0].message.content.length > 0);
  assert.equal(headers.get('x-aigw-provider'), 'oa-listed');
  assert.equal(headers.get('x-aigw-model'), 'gpt-4o-mini');
  const got = await lastBody('/v1/chat/completions');
  assert.equal(got.body.model, 'gpt-4o-mini');
  assert.deepEqual(header(got, 'authorization'), ['Bearer k-listed']);
  const line = await gw.waitLog((l) => l.model === 'openai/gpt-4o-mini');
  assert.equal(line.provider, 'oa-listed');
  assert.equal(line.upstream_model, 'gpt-4o-mini');
  assert.equal(line.status, 200);
});

test('a provider with no models list takes any model of its type, passed through', async () => {
  await mock.reset();
  const { headers } = await ask('openai/gpt-5-nano');
  assert.equal(headers.get('x-aigw-provider'), 'oa-any');
  assert.equal(headers.get('x-aigw-model'), 'gpt-5-nano');
  const got = await lastBody('/v1/chat/completions');
  assert.equal(got.body.model, 'gpt-5-nano');
  assert.deepEqual(header(got, 'authorization'), ['Bearer k-any']);
  // streamed too
  const stream = await oai.chat.completions.create({
    model: 'openai/gpt-5-nano', messages: [{ role: 'user', content: 'one two three' }], stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);
  assert.equal((await lastBody('/v1/chat/completions')).body.model, 'gpt-5-nano');
});

test('anthropic/MODEL reaches the Anthropic provider, translated from the OpenAI request', async () => {
  await mock.reset();
  const { data, headers } = await ask('anthropic/claude-sonnet-4-5');
  assert.ok(data.choices[0].message.content.length > 0);
  assert.equal(data.object, 'chat.completion');
  assert.equal(headers.get('x-aigw-provider'), 'ant');
  assert.equal(headers.get('x-aigw-model'), 'claude-sonnet-4-5');
  const got = await lastBody('/v1/messages');
  assert.equal(got.body.model, 'claude-sonnet-4-5');
  assert.deepEqual(header(got, 'x-api-key'), ['k-ant']);
});

test('several providers of the type serving the model: a fallback in the config order', async () => {
  await mock.reset();
  const { headers } = await ask('groq/llama-3.3');
  assert.equal(headers.get('x-aigw-provider'), 'groq-up');
  assert.equal(headers.get('x-aigw-attempts'), '2');
  assert.equal((await lastBody('/v1/chat/completions')).body.model, 'llama-3.3');
});

test('an exact configured name with a slash keeps precedence: models alias and route', async () => {
  await mock.reset();
  for (const name of ['openai/gpt-4.1', 'openai/o3']) {
    const { headers } = await ask(name);
    assert.equal(headers.get('x-aigw-provider'), 'ant', name);
    assert.equal(headers.get('x-aigw-model'), 'claude-sonnet-4-5', name);
  }
  assert.equal((await mock.requests('/v1/messages')).length, 2);
  assert.equal((await mock.requests('/v1/chat/completions')).length, 0);
});

test('an unknown prefix, or a type not serving the model: 404 model_not_found', async () => {
  await mock.reset();
  for (const name of ['mistral/mistral-large', 'anthropic/claude-opus-4-1', 'gemini/gemini-2.5-flash', 'openai/', '/gpt-4o-mini']) {
    await assert.rejects(ask(name), (e) => {
      assert.equal(e.status, 404, name);
      assert.equal(e.code, 'model_not_found', name);
      return true;
    });
  }
  assert.equal((await mock.stats()).requests, 0);
});

test('a LiteLLM config.yaml: imported, checked, served', async () => {
  const dir = scratchDir('aigw-litellm-');
  const litellm = join(dir, 'config.yaml');
  // As LiteLLM's documentation writes a proxy config (keys and bases from the environment).
  writeFileSync(litellm, `model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: os.environ/LITELLM_TEST_OPENAI_BASE
      api_key: os.environ/AIGW_TEST_KEY
      rpm: 480
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: os.environ/LITELLM_TEST_ANTHROPIC_BASE
      api_key: os.environ/AIGW_TEST_KEY
  - model_name: claude-sonnet
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: os.environ/LITELLM_TEST_OPENAI_BASE
      api_key: os.environ/AIGW_TEST_KEY

litellm_settings:
  drop_params: True
  num_retries: 3

router_settings:
  routing_strategy: simple-shuffle

general_settings:
  master_key: sk-1234
`);
  const out = execFileSync(AIGW_BIN, ['config', 'import', 'litellm', litellm], { encoding: 'utf8' });
  assert.match(out, /api_key: "\$\{AIGW_TEST_KEY\}"/);
  assert.match(out, /base_url: "\$\{LITELLM_TEST_OPENAI_BASE\}"/);
  assert.match(out, /#   line \d+: litellm_params\.rpm of 'gpt-4o'/);
  assert.match(out, /#   line 19: litellm_settings/);
  assert.match(out, /#   line 23: router_settings/);
  assert.equal(out.match(/type: "openai"/g).length, 1, 'one openai provider for the two entries');

  process.env.LITELLM_TEST_OPENAI_BASE = `${mock.url}/v1`;
  process.env.LITELLM_TEST_ANTHROPIC_BASE = mock.url;
  process.env.AIGW_TEST_KEY = 'test-key-123';
  const aigwYaml = join(dir, 'aigw.yaml');
  writeFileSync(aigwYaml, out);
  const check = spawnSync(AIGW_BIN, ['config', 'check', aigwYaml], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /ok \(2 providers, 3 models/);

  // LiteLLM's port is a command-line flag: the listener is the one thing added here.
  const served = await startGateway(`listen: 127.0.0.1:0\nworkers: 1\naccess_log: off\n${out}`);
  try {
    const client = new OpenAI({ baseURL: served.baseURL, apiKey: 'client-key', maxRetries: 0, timeout: 20000 });
    await mock.reset();
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(r.response.headers.get('x-aigw-provider'), 'openai');
    const got = await lastBody('/v1/chat/completions');
    assert.equal(got.body.model, 'gpt-4o');
    assert.deepEqual(header(got, 'authorization'), ['Bearer test-key-123']);
    // the name two entries share: the first entry's provider first
    const c = await client.chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 }).withResponse();
    assert.equal(c.response.headers.get('x-aigw-provider'), 'anthropic');
    assert.equal(c.response.headers.get('x-aigw-model'), 'claude-sonnet-4-5');
    assert.deepEqual(header(await lastBody('/v1/messages'), 'x-api-key'), ['test-key-123']);
  } finally {
    await served.stop();
  }

  // What cannot map is an error naming its line, and nothing is printed.
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'model_list:\n  - model_name: x\n    litellm_params:\n      model: bedrock/anthropic.claude-v2\n');
  const r = spawnSync(AIGW_BIN, ['config', 'import', 'litellm', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /bad\.yaml:4: 'bedrock\/anthropic\.claude-v2': LiteLLM provider 'bedrock' has no aigw equivalent/);
});
