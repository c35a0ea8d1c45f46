// spend.test.mjs — spend, budgets and teams end to end, with the official OpenAI and Anthropic SDKs
// against gateways with `auth:` (a SQLite store in a temporary directory, a master key) and a
// catalog that prices the mock's models. Checked: spend per key from /admin/spend and from
// `aigw spend --json` equal to the sum of the requests' cost in the access log (streams
// included), the master key's under "master"; a hard budget stopping a key mid-run (the request that crosses it finishes, the
// next is 429 budget_exceeded in OpenAI's and Anthropic's shape, and reaches no provider); a
// soft budget only flagging; a team's budget stopping all its keys and its models bounding
// them; a budget_duration of seconds resetting; spend surviving a restart; the team API in
// aigw's and LiteLLM's spellings, and `aigw teams`; two instances sharing the store, one's spend
// stopping the key on the other.
//
// The budget gateway runs one worker, so "the next request is refused" holds exactly; with
// more, a worker sees the others' spend within about a second (docs/access.md).
//
// AIGW_TEST_STORE=postgres runs the same cases against PostgreSQL (tests/e2e/postgres.mjs;
// spend-postgres.test.mjs sets it): the two stores are two databases of one cluster, the
// password reaches the config as ${VAR}, and "the store holds no key" is a pg_dump of each and
// every file of the data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock, startGateway, eventually, sleep } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const MASTER = 'test-master-key-spend-0123456789';
const POSTGRES = process.env.AIGW_TEST_STORE === 'postgres';
// what `aigw spend|teams --direct` says it works on
const ON_STORE = POSTGRES ? /on the store database postgres:\/\/aigw:\*\*\*@127\.0\.0\.1:\d+\// : /on the store file/;
let mock, gw, budgetGw, dir, config, pg;
const keysMade = []; // every gateway key the tests made: none may be in a store

// auth's store lines for the store called name: a file in dir, or a database of the cluster
function storeLines(name) {
  if (!POSTGRES) return `store: ${join(dir, `${name}.db`)}`;
  return `store: "${pg.urlWithEnvFor('AIGW_TEST_PG_PASSWORD', name)}"\n  secret: test-digest-secret-spend-0123456789`;
}

function gatewayText(store, workers) {
  const base = `http://127.0.0.1:${mock.port}`;
  return `
catalog: ${join(dir, 'prices.json')}
listen: 127.0.0.1:0
workers: ${workers}
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
providers:
  - {name: oa, type: openai, base_url: "${base}/v1", api_key: k1, models: [m-priced, m-other]}
  - {name: an, type: anthropic, base_url: "${base}", api_key: k2, models: [a-priced]}
auth:
  master_key: ${MASTER}
  ${storeLines(store)}
`;
}

before(async () => {
  if (POSTGRES) {
    pg = await startPostgres();
    process.env.AIGW_TEST_PG_PASSWORD = pg.password;
    pg.psql('CREATE DATABASE spend', 'postgres');
    pg.psql('CREATE DATABASE budget', 'postgres');
  }
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'aigw-spend-'));
  // $1,000 and $2,000 per million tokens: a request costs cents, easy to tell apart
  writeFileSync(join(dir, 'prices.json'), JSON.stringify({
    models: [
      { provider: 'openai', model: 'm-priced', input: 1000, output: 2000, taken: '2026-12' },
      { provider: 'openai', model: 'm-other', input: 1000, output: 2000, taken: '2026-12' },
      { provider: 'anthropic', model: 'a-priced', input: 1000, output: 2000, taken: '2026-12' },
    ],
  }));
  config = gatewayText('spend', 2);
  gw = await startGateway(config);
  budgetGw = await startGateway(gatewayText('budget', 1));
});

after(async () => {
  await gw?.stop();
  await budgetGw?.stop();
  await mock?.stop();
  await pg?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function admin(g, method, path, body) {
  const r = await fetch(`${g.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const openai = (g, apiKey) => new OpenAI({ apiKey, baseURL: g.baseURL, maxRetries: 0 });
const anthropic = (g, apiKey) => new Anthropic({ apiKey, baseURL: g.url, maxRetries: 0 });
const ask = (client, model = 'm-priced', words = 10) =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: `hi [[mock:words=${words}]]` }] });

// A request through the OpenAI SDK and what it cost (x-aigw-cost-usd).
async function spendOne(client, model = 'm-priced') {
  const { response } = await ask(client, model).withResponse();
  return Number(response.headers.get('x-aigw-cost-usd'));
}

const close = (a, b) => Math.abs(a - b) < 1e-9;

// A key made through the admin API (path: aigw's or LiteLLM's), once the gateway's workers have
// it (the store thread hands them a new snapshot within a moment of the write).
async function newKey(g, path, body) {
  const made = await admin(g, 'POST', path, body);
  assert.equal(made.status, 200, JSON.stringify(made.body));
  keysMade.push(made.body.key);
  await eventually(async () => (await fetch(`${g.baseURL}/models`, { headers: { authorization: `Bearer ${made.body.key}` } })).status === 200,
    5000, 'the new key reaches the workers');
  return made;
}

test('spend per key (admin API and `aigw spend --json`) equals the access log\'s costs, streams included; it survives a restart', async () => {
  const made = await newKey(gw, '/admin/keys', { key_alias: 'spender', team_id: 'search' });
  const key = made.body.key, id = made.body.id;
  const client = openai(gw, key);
  for (let i = 0; i < 3; i++) await ask(client, 'm-priced', 5 + i);
  for (let i = 0; i < 2; i++) {
    const stream = await client.chat.completions.create({
      model: 'm-other', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: `stream [[mock:words=${7 + i}]]` }],
    });
    for await (const _ of stream);
  }
  await anthropic(gw, key).messages.create({ model: 'a-priced', max_tokens: 50, messages: [{ role: 'user', content: 'hello there' }] });

  const mine = () => gw.logLines.filter((l) => l.key_id === id && l.path !== '/v1/models');
  await eventually(() => mine().length === 6, 5000, 'six access-log lines');
  const logged = mine().reduce((sum, l) => sum + l.cost_usd, 0);
  assert.ok(logged > 0);
  assert.ok(mine().every((l) => l.cost_usd > 0 && l.usage), JSON.stringify(mine()));

  let row;
  await eventually(async () => {
    const r = await admin(gw, 'GET', '/admin/spend?group_by=key');
    row = r.body.data.find((d) => d.key_id === id);
    return row && row.requests === 6;
  }, 5000, 'spend written by the store thread');
  assert.ok(close(row.cost_usd, logged), `${row.cost_usd} vs ${logged}`);
  const tokens = (f) => mine().reduce((s, l) => s + l.usage[f], 0);
  assert.equal(row.prompt_tokens, tokens('prompt_tokens'));
  assert.equal(row.completion_tokens, tokens('completion_tokens'));

  // the same through the CLI (via the running gateway)
  const cli = spawnSync(AIGW_BIN, ['spend', '-c', gw.file, '--url', gw.url, '--by', 'key', '--json'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(cli.status, 0, cli.stderr);
  const fromCli = JSON.parse(cli.stdout).data.find((d) => d.key_id === id);
  assert.ok(close(fromCli.cost_usd, logged));

  // by model, team and day: the same money, split differently
  const byModel = (await admin(gw, 'GET', '/admin/spend?group_by=model')).body.data;
  assert.deepEqual(byModel.map((d) => d.model).sort(), ['a-priced', 'm-other', 'm-priced']);
  assert.equal(byModel.find((d) => d.model === 'm-other').requests, 2);
  const byTeam = (await admin(gw, 'GET', '/admin/spend?group_by=team')).body.data;
  assert.ok(close(byTeam.find((d) => d.team_id === 'search').cost_usd, logged));
  const today = new Date().toISOString().slice(0, 10);
  const byDay = await admin(gw, 'GET', `/admin/spend?group_by=day&from=${today}&to=${today}`);
  assert.equal(byDay.status, 200);
  assert.equal(byDay.body.data[0].day, today);
  assert.ok(close(byDay.body.total.cost_usd, logged));
  assert.equal((await admin(gw, 'GET', '/admin/spend?group_by=day&from=2001-01-01&to=2001-01-02')).body.data.length, 0);
  assert.equal((await admin(gw, 'GET', '/admin/spend?group_by=color')).status, 400);
  assert.equal((await admin(gw, 'GET', '/admin/spend?from=yesterday')).status, 400);

  // the master key's requests are spend too, under key "master" (with no budget to stop them)
  await ask(openai(gw, MASTER));
  await eventually(async () => (await admin(gw, 'GET', '/admin/spend?group_by=key')).body.data.some((d) => d.key_id === 'master' && d.requests === 1),
    5000, 'the master key\'s spend');

  // LiteLLM's /key/info shows spend
  const info = await admin(gw, 'GET', `/key/info?key=${id}`);
  assert.ok(close(info.body.info.spend, logged));

  // a restart: the spend is in the store
  await gw.stop();
  gw = await startGateway(config);
  const after = (await admin(gw, 'GET', '/admin/spend?group_by=key')).body.data.find((d) => d.key_id === id);
  assert.equal(after.requests, 6);
  assert.ok(close(after.cost_usd, logged));
  // and on the store file directly, with no gateway asked
  const own = spawnSync(AIGW_BIN, ['spend', '-c', gw.file, '--direct', '--json'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(own.status, 0, own.stderr);
  assert.match(own.stderr, ON_STORE);
  assert.ok(close(JSON.parse(own.stdout).data.find((d) => d.key_id === id).cost_usd, logged));
});

test('a hard budget stops a key mid-run: the request that crosses it finishes, the next is 429 budget_exceeded in each SDK\'s shape', async () => {
  const probe = await newKey(budgetGw, '/key/generate', {});
  const cost = await spendOne(openai(budgetGw, probe.body.key));
  assert.ok(cost > 0);
  const made = await newKey(budgetGw, '/key/generate', { key_alias: 'capped', max_budget: cost * 1.5 });
  const client = openai(budgetGw, made.body.key);
  await spendOne(client); // spent: cost, under 1.5 × cost
  await spendOne(client); // crosses it: answered in full
  await assert.rejects(ask(client), (e) => {
    assert.equal(e.status, 429);
    assert.equal(e.code, 'budget_exceeded');
    assert.equal(e.type, 'budget_exceeded');
    assert.match(e.error.message, /^Budget has been exceeded! Key=key_\w+ Current cost: [\d.]+, Max budget: [\d.]+$/);
    assert.doesNotMatch(e.error.message, new RegExp(made.body.key));
    assert.equal(e.headers.get('x-should-retry'), 'false'); // waiting does not help: the SDKs do not retry
    return true;
  });
  await assert.rejects(
    anthropic(budgetGw, made.body.key).messages.create({ model: 'a-priced', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.RateLimitError);
      assert.equal(e.status, 429);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'rate_limit_error');
      assert.match(e.error.error.message, /Budget has been exceeded!/);
      return true;
    });
  // refused before any upstream call: the log's lines for them name no provider
  const refused = await budgetGw.waitLog((l) => l.key_id === made.body.id && l.status === 429);
  assert.equal(refused.provider, null);
  assert.ok(!budgetGw.logLines.some((l) => l.key_id === made.body.id && l.status === 429 && l.provider));
  // the key shows what it spent; raising the budget lets it go on
  await eventually(async () => (await admin(budgetGw, 'GET', `/admin/keys/${made.body.id}`)).body.spend >= cost * 1.99, 5000, 'spend shown');
  await admin(budgetGw, 'POST', '/key/update', { key: made.body.id, max_budget: cost * 10 });
  await eventually(async () => { try { await ask(client); return true; } catch { return false; } }, 5000, 'raised budget');
});

test('a soft budget only flags: the requests go on, the access log says so', async () => {
  const probe = await newKey(budgetGw, '/admin/keys', {});
  const cost = await spendOne(openai(budgetGw, probe.body.key));
  const made = await newKey(budgetGw, '/admin/keys', { soft_budget: cost * 0.5 });
  assert.equal(made.body.soft_budget, cost * 0.5);
  const client = openai(budgetGw, made.body.key);
  for (let i = 0; i < 3; i++) await spendOne(client);
  const lines = () => budgetGw.logLines.filter((l) => l.key_id === made.body.id && l.path !== '/v1/models');
  await eventually(() => lines().length === 3, 3000, 'three lines');
  assert.deepEqual(lines().map((l) => l.status), [200, 200, 200]);
  assert.deepEqual(lines().map((l) => l.soft_budget_exceeded), [undefined, 'key', 'key']);
});

test('a team: its budget stops all its keys, its models bound theirs; LiteLLM\'s /team/* and aigw\'s /admin/teams', async () => {
  const probe = await newKey(budgetGw, '/admin/keys', {});
  const cost = await spendOne(openai(budgetGw, probe.body.key));
  const team = await admin(budgetGw, 'POST', '/team/new', { team_alias: 'qa', models: ['m-priced', 'a-*'], max_budget: cost * 1.5, metadata: { cc: 7 } });
  assert.equal(team.status, 200, JSON.stringify(team.body));
  const tid = team.body.team_id;
  assert.match(tid, /^team_[0-9a-f]{24}$/);
  assert.equal(team.body.spend, 0);
  const k1 = await newKey(budgetGw, '/key/generate', { team_id: tid });
  const k2 = await newKey(budgetGw, '/key/generate', { team_id: tid });
  const c1 = openai(budgetGw, k1.body.key), c2 = openai(budgetGw, k2.body.key);
  // the team's models bound its keys
  await eventually(async () => {
    try { await ask(c1, 'm-other'); return false; } catch (e) { return e.status === 403; }
  }, 5000, 'team models apply');
  await assert.rejects(ask(c2, 'm-other'), (e) => e.status === 403 && /team may not use the model `m-other`/.test(e.error.message));
  const models = await c1.models.list();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['a-priced', 'm-priced']);
  await spendOne(c1);
  await spendOne(c2); // the team crosses its budget
  for (const c of [c1, c2]) {
    await assert.rejects(ask(c), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.code, 'budget_exceeded');
      assert.match(e.error.message, new RegExp(`^Budget has been exceeded! Team=${tid} Current cost`));
      return true;
    });
  }
  // shown in LiteLLM's and aigw's spellings
  await eventually(async () => (await admin(budgetGw, 'GET', `/team/info?team_id=${tid}`)).body.team_info.spend >= cost * 1.99, 5000, 'team spend');
  const shown = await admin(budgetGw, 'GET', '/admin/teams/qa');
  assert.equal(shown.body.team_id, tid);
  assert.deepEqual(shown.body.metadata, { cc: 7 });
  assert.ok((await admin(budgetGw, 'GET', '/team/list')).body.some((t) => t.team_id === tid));
  assert.ok((await admin(budgetGw, 'GET', '/admin/teams')).body.data.some((t) => t.team_id === tid));
  // a bad field is named; blocking the team stops its keys with 403
  const bad = await admin(budgetGw, 'POST', '/team/update', { team_id: tid, max_budjet: 1 });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /unknown field 'max_budjet'/);
  const upd = await admin(budgetGw, 'PATCH', `/admin/teams/${tid}`, { max_budget: null, blocked: true });
  assert.equal(upd.body.blocked, true);
  await eventually(async () => {
    try { await ask(c1); return false; } catch (e) { return e.status === 403 && e.code === 'team_blocked'; }
  }, 5000, 'blocked team');
  // deleted: its keys keep the name as a label, and no team policy applies
  const del = await admin(budgetGw, 'POST', '/team/delete', { team_ids: [tid] });
  assert.deepEqual(del.body.deleted_teams, [tid]);
  assert.equal((await admin(budgetGw, 'GET', `/admin/teams/${tid}`)).status, 404);
  await eventually(async () => { try { await ask(c1, 'm-other'); return true; } catch { return false; } }, 5000, 'team gone');
});

test('budget_duration: the period resets (a period of seconds, as LiteLLM allows)', async () => {
  const probe = await newKey(budgetGw, '/admin/keys', {});
  const cost = await spendOne(openai(budgetGw, probe.body.key));
  const made = await newKey(budgetGw, '/admin/keys', { max_budget: cost * 0.5, budget_duration: '4s' });
  assert.equal(made.body.budget_duration, '4s');
  const client = openai(budgetGw, made.body.key);
  // start just after a period begins (periods are multiples of 4 s since 1970)
  await eventually(async () => (await admin(budgetGw, 'GET', `/admin/keys/${made.body.id}`)).status === 200, 3000, 'key');
  const untilNext = () => 4000 - (Date.now() % 4000);
  await sleep(untilNext() + 100);
  const reset = (await admin(budgetGw, 'GET', `/admin/keys/${made.body.id}`)).body.budget_reset_at;
  assert.equal(Date.parse(reset) % 4000, 0);
  await spendOne(client); // crosses 0.5 × cost at once
  await assert.rejects(ask(client), (e) => e.status === 429 && /the budget resets at \d{4}-\d\d-\d\dT/.test(e.error.message));
  await sleep(untilNext() + 100); // the next period
  await spendOne(client);
  await assert.rejects(ask(client), (e) => e.status === 429);
});

test('`aigw teams` makes, lists, shows and deletes teams, on the store file or through the gateway', async () => {
  const teams = (...args) => spawnSync(AIGW_BIN, ['teams', ...args, '-c', gw.file], { encoding: 'utf8', timeout: 20000 });
  const made = teams('create', '--direct', '--id', 'ops', '--alias', 'Operations', '--models', 'm-priced,a-*',
    '--max-budget', '2.5', '--budget-duration', '30d', '--json');
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stderr, ON_STORE);
  const team = JSON.parse(made.stdout);
  assert.equal(team.team_id, 'ops');
  assert.deepEqual(team.models, ['m-priced', 'a-*']);
  assert.equal(team.max_budget, 2.5);
  assert.equal(team.budget_duration, '30d');
  const list = teams('list', '--url', gw.url);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stderr, /via the gateway/);
  assert.match(list.stdout, /^ops +Operations +2\.500000 +30d +0\.000000$/m);
  const shown = teams('show', 'Operations', '--url', gw.url);
  assert.match(shown.stdout, /^models: +m-priced,a-\*$/m);
  assert.match(shown.stdout, /^spend: +0\.000000 USD \(this period ends at \d{4}-\d\d-\d\dT00:00:00Z\)$/m);
  assert.equal(teams('create', '--max-budget', 'lots').status, 2);
  assert.equal(teams('show').status, 2);
  const gone = teams('delete', 'ops', '--url', gw.url);
  assert.equal(gone.status, 0, gone.stderr);
  assert.equal(gone.stdout.trim(), 'deleted ops');
  const again = teams('show', 'ops', '--url', gw.url);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /no team ops \(HTTP 404\)/);
});

test('two instances sharing the store: a budget spent on one stops the key on the other within a poll', async () => {
  const other = await startGateway(gatewayText('budget', 1));
  try {
    const probe = await newKey(budgetGw, '/admin/keys', {});
    const cost = await spendOne(openai(budgetGw, probe.body.key));
    const made = await newKey(budgetGw, '/admin/keys', { max_budget: cost * 0.5 });
    // the other instance has the key too (its poll of the version counter)
    await eventually(async () => (await fetch(`${other.baseURL}/models`, { headers: { authorization: `Bearer ${made.body.key}` } })).status === 200,
      5000, 'the key on the other instance');
    await spendOne(openai(other, made.body.key)); // answered on the other instance: a first request is never over
    // the other instance flushes it to the shared store within about a second ...
    await eventually(async () => (await admin(budgetGw, 'GET', `/admin/keys/${made.body.id}`)).body.spend > 0, 5000, 'spend in the store');
    // ... and this one's store thread polls the spend counter every second: after two polls its
    // worker has it, and this instance's first request with the key is refused
    await sleep(2200);
    await assert.rejects(ask(openai(budgetGw, made.body.key)), (e) => e.status === 429 && e.code === 'budget_exceeded');
  } finally {
    await other.stop();
  }
});

test('the stores hold spend and no gateway key (pg_dump and the data directory on PostgreSQL; the files on SQLite)', async () => {
  assert.ok(keysMade.length >= 10, `${keysMade.length} keys made`);
  const needles = [MASTER, ...keysMade.flatMap((k) => [k, k.slice(5, 25)])];
  if (POSTGRES) {
    for (const db of ['spend', 'budget']) {
      const dump = pg.dump(db);
      assert.match(dump, /spend_hourly/);
      assert.match(dump, /budget_spend/);
      for (const needle of needles) assert.ok(!dump.includes(needle), `pg_dump of ${db} holds a key`);
    }
    assert.match(pg.dump('spend'), /\bmaster\b/); // the master key's spend row: its name, not the key
    for (const needle of needles) assert.deepEqual(pg.filesHolding(needle), [], 'files of the data directory hold a key');
    assert.ok(!gw.stderr().includes(pg.password) && !budgetGw.stderr().includes(pg.password), 'a gateway logs the database password');
    return;
  }
  for (const f of ['spend.db', 'spend.db-wal', 'budget.db', 'budget.db-wal']) {
    if (!existsSync(join(dir, f))) continue;
    const bytes = readFileSync(join(dir, f)).toString('latin1');
    for (const needle of needles) assert.ok(!bytes.includes(needle), `${f} holds a key`);
  }
});
