// ui.test.mjs — the web dashboard at /ui in a real headless browser (Debian's chromium driven
// by puppeteer-core): aigw with a master key and a SQLite store, aigw-mock behind it, known
// traffic through the official openai SDK; then, as a person would: a wrong key refused, log
// in, the overview's charts drawn from that traffic, the request log filtered to one request
// and opened (its attempts' waterfall), a key created and used for a request (and disabled),
// a route edited and the next request following it, a bad edit refused with aigw's message,
// the other pages, a narrow window, log out. The CSRF defence: a change carrying the session
// cookie but not its token is refused, from the page and from outside it. The pages' headers
// (CSP, framing, nosniff), and no CSP violation in the console.
//
// Screenshots of each page go to build/ui-screenshots/ (AIGW_UI_SCREENSHOTS overrides), never
// committed from a run; docs/ holds three chosen ones. Every wait is bounded; the browser is
// closed in a finally.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import puppeteer from 'puppeteer-core';
import { startMock, startGateway, eventually } from './harness.mjs';

const MASTER = 'test-master-key-ui-0123456789abcdef';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = process.env.AIGW_UI_SCREENSHOTS || join(ROOT, 'build', 'ui-screenshots');
const WAIT = { timeout: 10000 };
let mock, gw;

// Every path in it is relative (beside the config, which aigw is started with as `-c
// aigw.yaml`): the routes page shows the config's path and text, and the screenshots taken of it
// for docs/ must show nothing of the machine they were taken on.
function config() {
  const base = `http://127.0.0.1:${mock.port}/v1`;
  return `
catalog: prices.json
listen: 127.0.0.1:0
workers: 2
access_log: stdout
timeouts: {header_read: 2s, keepalive_idle: 5s, drain: 5s}
routing:
  retry: {attempts: 0, base_delay: 10ms, max_delay: 20ms}
providers:
  - {name: oa, type: openai, base_url: "${base}", api_key: "\${AIGW_TEST_KEY}", models: [m-one, m-two, m-three]}
  - {name: down, type: openai, base_url: "${base}", api_key: "\${AIGW_TEST_KEY}", models: [m-down], headers: {x-mock-status: "503"}}
routes:
  - name: ui-route
    targets: [{provider: oa, model: m-one}]
auth:
  master_key: "\${AIGW_UI_MASTER}"
  store: aigw.db
alerts:
  rules:
    - {name: down-errors, kind: error_rate, provider: down, above: 0.5, window: 1m, min_requests: 1}
`;
}

before(async () => {
  const prices = JSON.stringify({
    models: [
      { provider: 'openai', model: 'm-one', input: 1000, output: 2000, taken: '2026-12' },
      { provider: 'openai', model: 'm-two', input: 1000, output: 3000, taken: '2026-12' },
    ],
  });
  mkdirSync(SHOTS, { recursive: true });
  mock = await startMock();
  process.env.AIGW_UI_MASTER = MASTER;
  gw = await startGateway(config(), { files: { 'prices.json': prices }, relative: true });
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

const client = (apiKey) => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0, timeout: 10000 });
const chat = (apiKey, model) => client(apiKey).chat.completions.create({ model, messages: [{ role: 'user', content: `hello ${model}` }] });

async function lastUpstreamModel() {
  const reqs = await mock.requests('/v1/chat/completions');
  return JSON.parse(reqs.at(-1).body).model;
}

async function adminGet(path) {
  const r = await fetch(gw.url + path, { headers: { authorization: `Bearer ${MASTER}` } });
  return { status: r.status, body: await r.json() };
}

async function adminPost(path, body) {
  const r = await fetch(gw.url + path, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

test('the dashboard, driven in a headless browser', async () => {
  // known traffic: three to the route, one to m-two, one failing at its provider
  for (let i = 0; i < 3; i++) await chat(MASTER, 'ui-route');
  const two = await chat(MASTER, 'm-two');
  await assert.rejects(chat(MASTER, 'm-down'), (e) => e.status === 503);
  await fetch(`${gw.url}/admin/prompts`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'greet', model: 'm-one', labels: ['production'], messages: [{ role: 'user', content: 'Hello {{name}}' }] }),
  });
  await eventually(async () => (await adminGet('/admin/logs?limit=50')).body.data?.length >= 5, 5000, 'five requests in the request log');

  // the page's own headers
  const head = await fetch(`${gw.url}/ui`);
  assert.equal(head.status, 200);
  const csp = head.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(head.headers.get('x-frame-options'), 'DENY');
  assert.equal(head.headers.get('x-content-type-options'), 'nosniff');
  assert.equal((await fetch(`${gw.url}/ui/nothing.js`)).status, 404);

  const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(10000);
    await page.setViewport({ width: 1280, height: 900 });
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('dialog', (d) => d.accept());
    const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    const go = async (hash) => {
      await page.evaluate((h) => { document.getElementById('page').dataset.ready = ''; location.hash = h; }, hash);
      await page.waitForFunction((k) => document.getElementById('page').dataset.ready === k, WAIT, hash.split('/')[1]);
    };

    await page.goto(`${gw.url}/ui`, { waitUntil: 'load' });
    await page.waitForSelector('#login-form', { visible: true, ...WAIT });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-key', 'the key field has the focus');
    await shot('login');

    // a wrong key is refused, and said where a screen reader hears it
    await page.type('#login-key', 'not-the-key');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /refused/.test(document.getElementById('error').textContent), WAIT);
    assert.equal(await page.$eval('#nav', (n) => n.hidden), true);
    assert.equal(await page.$eval('#error', (n) => n.getAttribute('role')), 'alert');

    // log in: the key leaves the page; the session is a cookie the page cannot read
    await page.type('#login-key', MASTER);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('page').dataset.ready === 'overview', WAIT);
    assert.equal(await page.$eval('#login-key', (n) => n.value), '');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
    assert.doesNotMatch(page.url(), new RegExp(MASTER));
    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === 'aigw_session');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));

    // the overview: charts with the traffic above in them
    const chart = (id) => page.$eval(`figure[data-chart="${id}"]`, (f) => ({ bars: f.querySelectorAll('svg rect').length, text: f.textContent }));
    const traffic = await chart('traffic');
    assert.ok(traffic.bars >= 1, 'traffic has columns');
    assert.match(traffic.text, /requests/);
    // the figures are aigw's own: the chart shows what /admin/logs/aggregate says
    const byModel = (await adminGet('/admin/logs/aggregate?by=model')).body.data;
    const routeSpend = byModel.find((r) => r.model === 'ui-route').cost_usd;
    assert.ok(routeSpend > 0);
    assert.match((await chart('spend-model')).text, new RegExp(`ui-route\\$${routeSpend.toFixed(6)}`));
    assert.match((await chart('errors-provider')).text, /down/);
    assert.match((await chart('latency')).text, /m-two/);
    assert.match((await chart('spend-key')).text, /master|\(no key\)/);
    assert.ok((await chart('cache')).text.length > 0);
    assert.match(await page.$eval('[data-card="requests"]', (n) => n.textContent), /^[5-9]/);
    await shot('overview');

    // the request log, filtered to the m-two request, opened
    await go('#/logs');
    await page.type('input[name="model"]', 'm-two');
    await page.click('form[role="search"] button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('log-results')?.dataset.count === '1', WAIT);
    await shot('logs');
    const id = await page.$eval('a[data-request]', (a) => a.dataset.request);
    const logged = (await adminGet(`/admin/logs/${id}`)).body;
    assert.equal(logged.model, 'm-two');
    assert.equal(logged.status, 200);
    await page.focus('a[data-request]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('figure[data-chart="waterfall"] svg rect', WAIT);
    const detail = await page.$eval('section[data-page="logs"]', (s) => s.textContent);
    assert.match(detail, new RegExp(`Request ${id}`));
    assert.match(detail, /oa\/m-two/);
    assert.match(detail, /Trace id/);
    assert.match(detail, new RegExp(`${two.usage.prompt_tokens} prompt`));
    await shot('log-detail');

    // keys: create one, see its secret once, use it; disable it and it stops
    await go('#/keys');
    await page.type('#create-key input[name="key_alias"]', 'ui-made');
    await page.click('#create-key button[type="submit"]');
    const secret = await page.waitForSelector('#new-secret code', WAIT).then((e) => e.evaluate((n) => n.textContent));
    assert.match(secret, /^aigw-/);
    await shot('keys');
    const used = await chat(secret, 'm-one');
    assert.equal(used.choices.length, 1);
    await page.click('button[data-action="disable"][data-key="ui-made"]');
    await page.waitForSelector('button[data-action="enable"][data-key="ui-made"]', WAIT);
    await eventually(async () => {
      try { await chat(secret, 'm-one'); return false; } catch (e) { return e.status === 401; }
    }, 5000, 'the disabled key refused');

    // teams: one made on the page; a key of it spends; its budget set, it is blocked (its key
    // refused) and unblocked, then deleted
    await go('#/teams');
    await page.type('#create-team input[name="team_id"]', 'ui-team');
    await page.type('#create-team input[name="budget_duration"]', '30d');
    await page.click('#create-team button[type="submit"]');
    await page.waitForSelector('[data-state="ui-team"]', WAIT);
    assert.equal((await adminGet('/admin/teams/ui-team')).body.budget_duration, '30d');
    const member = (await adminPost('/admin/keys', { key_alias: 'ui-member', team_id: 'ui-team' })).body;
    for (let i = 0; i < 2; i++) await chat(member.key, 'm-two');
    await eventually(async () => (await adminGet('/admin/spend?group_by=team')).body.data.find((r) => r.team_id === 'ui-team')?.requests === 2,
      5000, 'the team\'s spend written');
    const budget = await page.$('input[name="max_budget"][data-team="ui-team"]');
    await budget.click({ clickCount: 3 });
    await budget.type('0.5');
    await page.click('button[data-action="budget"][data-team="ui-team"]');
    await page.waitForFunction(() => /ui-team: budget set/.test(document.getElementById('status').textContent), WAIT);
    assert.equal((await adminGet('/admin/teams/ui-team')).body.max_budget, 0.5);
    const teamSpend = (await adminGet('/admin/teams/ui-team')).body.spend;
    assert.ok(teamSpend > 0);
    // the status line comes first; the table is drawn again from a fresh /admin/teams after it
    await page.waitForFunction(() => /\$0\.500000/.test(document.querySelector('[data-state="ui-team"]')?.closest('tr')?.textContent ?? ''), WAIT);
    const teamRow = await page.$eval('[data-state="ui-team"]', (n) => n.closest('tr').textContent);
    assert.match(teamRow, new RegExp(`\\$${teamSpend.toFixed(6)}.*\\$0\\.500000.*30d`), 'spend, budget and period in the row');
    await shot('teams');
    await page.click('button[data-action="block"][data-team="ui-team"]');
    await page.waitForSelector('button[data-action="unblock"][data-team="ui-team"]', WAIT);
    await eventually(async () => {
      try { await chat(member.key, 'm-two'); return false; } catch (e) { return e.status === 403 && e.code === 'team_blocked'; }
    }, 5000, 'the blocked team\'s key refused');
    await page.click('button[data-action="unblock"][data-team="ui-team"]');
    await page.waitForSelector('button[data-action="block"][data-team="ui-team"]', WAIT);
    await eventually(async () => {
      try { await chat(member.key, 'm-two'); return true; } catch { return false; }
    }, 5000, 'the unblocked team\'s key served');

    // spend: by team, key, model and day, the figures aigw's
    await eventually(async () => (await adminGet('/admin/spend?group_by=team')).body.data.find((r) => r.team_id === 'ui-team')?.requests === 3,
      5000, 'the third request\'s spend written');
    await go('#/spend');
    const spendBy = async (by) => {
      await page.select('select[name="group_by"]', by);
      await page.click('form[aria-label="Spend report"] button[type="submit"]');
      await page.waitForFunction((b) => document.getElementById('spend-results')?.dataset.groupBy === b, WAIT, by);
      return page.$eval('#spend-results', (n) => n.textContent);
    };
    const byTeam = (await adminGet('/admin/spend?group_by=team')).body.data.find((r) => r.team_id === 'ui-team');
    const teamText = await spendBy('team');
    assert.match(teamText, new RegExp(`ui-team3\\d+\\d+0\\$${byTeam.cost_usd.toFixed(6)}`), 'the team\'s row: requests, tokens, cost');
    assert.match(await page.$eval('figure[data-chart="spend-chart"]', (f) => f.textContent), new RegExp(`ui-team\\$${byTeam.cost_usd.toFixed(6)}`));
    await shot('spend');
    assert.match(await spendBy('key'), /ui-member3/, 'the key by its alias');
    assert.match(await spendBy('model'), /m-two/);
    await spendBy('day');
    assert.ok(await page.$eval('figure[data-chart="spend-chart"]', (f) => f.querySelectorAll('svg rect').length >= 1), 'a column per day');
    await go('#/teams');
    await page.click('button[data-action="delete"][data-team="ui-team"]');
    await page.waitForFunction(() => !document.querySelector('[data-state="ui-team"]'), WAIT);
    assert.equal((await adminGet('/admin/teams/ui-team')).status, 404);

    // routes: edit the route, apply it, the next request follows it
    await go('#/routes');
    await page.waitForSelector('#config-source', WAIT);
    assert.match(await page.$eval('#route-names', (n) => n.textContent), /ui-route/);
    await page.$eval('#config-source', (t) => { t.value = t.value.replace('{provider: oa, model: m-one}', '{provider: oa, model: m-three}'); });
    await page.click('#config-form button[type="submit"]');
    await page.waitForFunction(() => /Config applied/.test(document.getElementById('status').textContent), WAIT);
    await chat(MASTER, 'ui-route');
    assert.equal(await lastUpstreamModel(), 'm-three', 'the edited route is followed');
    // nothing of this machine on the page (the screenshot goes to docs/): the config's path as
    // aigw was given it, relative paths inside it
    const shown = await page.$eval('section[data-page="routes"]', (sec) => sec.textContent + document.getElementById('config-source').value +
      document.getElementById('status').textContent);
    assert.match(shown, /Config \(aigw\.yaml\)/);
    assert.match(shown, /config reloaded from aigw\.yaml/);
    for (const local of [tmpdir(), ROOT, process.env.HOME].filter((p) => p && p.length > 1)) {
      assert.ok(!shown.includes(local), `the routes page shows ${local}`);
    }
    await shot('routes');
    // a bad edit is refused with aigw's message, and the running config stays
    await page.$eval('#config-source', (t) => { t.value = t.value.replace('{provider: oa, model: m-three}', '{provider: nowhere, model: m-three}'); });
    await page.click('#config-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('config-message').dataset.outcome === 'refused', WAIT);
    const refusal = await page.$eval('#config-message', (n) => n.textContent);
    assert.match(refusal, /config_refused/);
    assert.match(refusal, /ui-route.*names no provider/);
    assert.match(refusal, /still serving the previous config/);
    await chat(MASTER, 'ui-route');
    assert.equal(await lastUpstreamModel(), 'm-three', 'the refused edit changed nothing');

    // the other pages render from the API
    await go('#/vkeys');
    await shot('vkeys');
    await go('#/prompts');
    assert.match(await page.$eval('section[data-page="prompts"]', (s) => s.textContent), /greet/);
    await go('#/prompts/greet');
    assert.match(await page.$eval('section[data-page="prompts"]', (s) => s.textContent), /productionv1.*Hello \{\{name\}\}/s);
    await shot('prompts');
    await go('#/alerts');
    assert.match(await page.$eval('section[data-page="alerts"]', (s) => s.textContent), /down/);
    // the rule over the failing provider, firing, as GET /admin/alerts says
    assert.match(await page.$eval('section[data-page="alerts"]', (s) => s.textContent), /down-errorserror_ratefiring/);
    await shot('alerts');

    // keyboard: the navigation is links in tab order, the current page marked
    await go('#/overview');
    assert.equal(await page.$eval('#nav a[data-page="overview"]', (a) => a.getAttribute('aria-current')), 'page');
    // a narrow window: no sideways scroll of the page itself
    await page.setViewport({ width: 380, height: 800 });
    await go('#/logs');
    await go('#/overview');
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap') && !e.closest('.sr-only'))
      .map((e) => `${e.tagName}.${e.className?.baseVal ?? e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`));
    assert.deepEqual(wide, [], 'everything fits 380 px (tables scroll in their own box)');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scroll at 380 px');
    await shot('overview-narrow');
    await page.setViewport({ width: 1280, height: 900 });

    // CSRF: the session cookie alone does not change anything
    const fromPage = await page.evaluate(async () => {
      const r = await fetch('/admin/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key_alias":"csrf"}' });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(fromPage.status, 403);
    assert.equal(fromPage.body.error.code, 'csrf_failed');
    const cookie = `aigw_session=${session.value}`;
    const outside = await fetch(`${gw.url}/admin/keys`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{"key_alias":"csrf2"}' });
    assert.equal(outside.status, 403);
    const csrf = (await (await fetch(`${gw.url}/ui/api/session`, { headers: { cookie } })).json()).csrf_token;
    const wrongOrigin = await fetch(`${gw.url}/admin/keys`, { method: 'POST', headers: { cookie, 'x-aigw-csrf': csrf, 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{"key_alias":"csrf3"}' });
    assert.equal(wrongOrigin.status, 403, 'the token from another origin');
    const aliases = (await adminGet('/admin/keys')).body.data.map((k) => k.key_alias);
    assert.ok(!aliases.some((a) => /^csrf/.test(a ?? '')), 'no key was made without the token');
    // reads with the cookie work (GET needs no token), /metrics too
    assert.equal((await fetch(`${gw.url}/metrics`, { headers: { cookie } })).status, 200);

    // log out: the session ends for everyone holding its cookie
    await page.click('#logout');
    await page.waitForSelector('#login-form', { visible: true, ...WAIT });
    assert.equal(await page.evaluate(async () => (await fetch('/admin/keys')).status), 401);
    assert.equal((await fetch(`${gw.url}/admin/keys`, { headers: { cookie } })).status, 401);
    assert.equal((await fetch(`${gw.url}/metrics`, { headers: { cookie } })).status, 401);

    assert.deepEqual(problems.filter((p) => /Content Security Policy|Uncaught|TypeError|SyntaxError/.test(p)), []);
  } finally {
    await browser.close();
  }
});

test('a login is refused for a non-admin key, from another origin, and without JSON', async () => {
  const made = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: '{"key_alias":"plain"}',
  }).then((r) => r.json());
  const login = (key, headers = {}) => fetch(`${gw.url}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ key }) });
  assert.equal((await login(made.key)).status, 401, 'a key that is not an admin key');
  assert.equal((await login(MASTER, { origin: 'http://evil.example' })).status, 403, 'a login from another origin');
  const form = await fetch(`${gw.url}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `key=${MASTER}` });
  assert.equal(form.status, 415, 'a cross-site form cannot post a login');
  const admin = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: '{"key_alias":"ops","admin":true}',
  }).then((r) => r.json());
  const ok = await login(admin.key);
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).who, 'ops');
  const cookie = ok.headers.get('set-cookie').split(';')[0];
  assert.equal((await fetch(`${gw.url}/admin/keys`, { headers: { cookie } })).status, 200);
  // the admin key disabled: its session stops at the next snapshot
  await fetch(`${gw.url}/admin/keys/ops/disable`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}` } });
  await eventually(async () => (await fetch(`${gw.url}/admin/keys`, { headers: { cookie } })).status === 401, 5000, 'the disabled admin key\'s session refused');
});
