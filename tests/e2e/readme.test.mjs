// readme.test.mjs — the README, followed literally, the way someone new to aigw follows it.
//
// Every command README.md shows is read from README.md itself: each line of its code blocks
// (a `\` continues a line), and each inline `…` that is a command (it starts with make, sudo,
// curl, aigw, build/…, cp, kill, postrotate, VAR=value, or is an OpenAI / Anthropic SDK
// constructor). Each must be claimed by exactly one row of WALK below, which runs it for real —
// through `sh -c`, or for an SDK line by constructing the client from the README's own text —
// and checks what the README's words around it promise. A row may also name sentences of the
// README (`says`) that it checks. A command no row claims fails the first test with its line
// number; so does a row whose command or sentence the README no longer has. Rows run in
// WALK's order, one test each, against one aigw-mock.
//
// How every command is run differently from the README (each row's `as` adds its own):
//  - Ports: 127.0.0.1:8080 (aigw) and 127.0.0.1:9090 (aigw-mock) may be taken on this machine
//    (other gateways, other engineers' `make run`). Every command and the copy of
//    aigw.example.yaml get free ports instead; the substitution is printed as a diagnostic.
//  - Directory: commands run in a scratch directory holding copies of aigw.example.yaml and its
//    catalog, with `build` a link to the build under test (AIGW_BIN's directory: build/ or
//    build-asan/), so `build/aigw …` and `cp aigw.example.yaml aigw.yaml` run as written and
//    nothing is written into the checkout. `make …` runs in the checkout. `aigw` on PATH is the
//    build under test.
//  - Environment: a new user's shell — PATH, HOME (the scratch directory, so no ~/.curlrc), no
//    API keys, no proxy variables, no make variables of a surrounding `make test`. Only
//    127.0.0.1 is contacted.
// Every process started here is stopped (aigw must exit 0, clean under the sanitizers), every
// wait is bounded, the scratch directories are removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync,
  writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { AIGW_BIN, startMock } from './harness.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const EXAMPLE = readFileSync(join(ROOT, 'aigw.example.yaml'), 'utf8');
const RUN_SH = readFileSync(join(ROOT, 'scripts', 'run.sh'), 'utf8');
const BUILD_DIR = resolve(dirname(AIGW_BIN));
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

// ---- the README's commands --------------------------------------------------------------------

const INLINE_COMMAND = /^(?:[A-Z_]+=\S*\s+)+\S|^(?:make|sudo|curl|aigw|build\/\S+|cp|kill|postrotate)(?:\s|$)|^(?:new\s+)?(?:OpenAI|Anthropic)\(/;

// The commands of README.md, each once: {text (one line, without its comment), run (what sh
// runs: the lines as written), comment, lines (1-based, every place it appears)}.
function readmeCommands(md) {
  const found = new Map();
  const add = (text, line, run = text, comment = '') => {
    const seen = found.get(text);
    if (seen) seen.lines.push(line);
    else found.set(text, { text, run, comment, lines: [line] });
  };
  const lines = md.split('\n');
  const prose = [];
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('```')) {
      fence = fence === null ? lines[i].slice(3).trim() : null;
      prose.push('');
      continue;
    }
    if (fence === null) { prose.push(lines[i]); continue; }
    // A code block of any language: its lines are commands, so that a block this test does
    // not know fails it rather than being passed over.
    prose.push('');
    if (!lines[i].trim()) continue;
    const first = i;
    let physical = [lines[i]];
    while (lines[i].endsWith('\\') && i + 1 < lines.length && !lines[i + 1].startsWith('```')) {
      physical.push(lines[++i]);
      prose.push('');
    }
    const { code, comment } = splitComment(physical.join('\n'));
    add(code.replace(/\s*\\\n\s*/g, ' ').trim(), first + 1, code.trimEnd(), comment);
  }
  // Inline spans may wrap onto the next line.
  const text = prose.join('\n');
  for (const m of text.matchAll(/`([^`]+)`/g)) {
    const span = m[1].replace(/\s+/g, ' ').trim();
    if (!/\s/.test(span) || !INLINE_COMMAND.test(span)) continue;
    add(span, text.slice(0, m.index).split('\n').length);
  }
  return [...found.values()];
}

// A shell line's trailing `# comment`, outside quotes.
function splitComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) { if (c === quote) quote = null; continue; }
    if (c === '\'' || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return { code: line.slice(0, i), comment: line.slice(i + 1).trim() };
  }
  return { code: line, comment: '' };
}

const COMMANDS = readmeCommands(README);
const README_FLAT = README.replace(/\s+/g, ' ');
const where = (cmd) => `README.md:${cmd.lines.join(',')}`;

// ---- the machine a new user has -------------------------------------------------------------

let mock, scratch, ports;
const started = new Set(); // every shell started here, stopped by after() if a test did not
let makeRun; // the gateway `make run` started, for the tour's rows

// 8080 → a free port for aigw (and 9090 → aigw-mock's), in a README line or the example config.
const local = (s) => s.replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.gw}`).replaceAll('127.0.0.1:9090', `127.0.0.1:${mock.port}`);

function userEnv(extra = {}) {
  const env = { PATH: `${BUILD_DIR}:${process.env.PATH}`, HOME: scratch, NO_PROXY: '*', ...extra };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  return env;
}

// Free loopback ports, distinct (held open together, then released).
async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const got = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return got;
}

function waitExit(proc, ms) {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res(proc.exitCode ?? proc.signalCode);
    const timer = setTimeout(() => res('timeout'), ms);
    proc.once('exit', (code, signal) => { clearTimeout(timer); res(code ?? signal); });
  });
}

// `sh -c cmd` in its own process group, collected; the group is killed past `ms`.
function shStart(cmd, { cwd = scratch, env = userEnv() } = {}) {
  const proc = spawn('sh', ['-c', cmd], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  const out = { stdout: '', stderr: '' };
  proc.stdout.on('data', (d) => { out.stdout += d; });
  proc.stderr.on('data', (d) => { out.stderr += d; });
  return { proc, out };
}

function killGroup(proc) {
  try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* already gone */ }
}

async function sh(cmd, { ms = 15000, ...opts } = {}) {
  const { proc, out } = shStart(cmd, opts);
  const code = await waitExit(proc, ms);
  if (code === 'timeout') {
    killGroup(proc);
    assert.fail(`\`${cmd}\` did not finish within ${ms} ms; stdout: ${out.stdout}; stderr: ${out.stderr}`);
  }
  // Output can still be in the pipes when the process has exited (bounded: a child it left
  // behind could hold them open).
  const drained = (stream) => new Promise((r) => (stream.readableEnded ? r() : stream.once('end', r)));
  await Promise.race([Promise.all([drained(proc.stdout), drained(proc.stderr)]), sleep(2000)]);
  assert.doesNotMatch(out.stderr, SANITIZER_RE, `\`${cmd}\`: sanitizer report`);
  return { code, ...out };
}

// The process whose parent is pid and whose name is aigw (sh may or may not exec it).
function aigwUnder(pid) {
  const comm = (p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { return ''; } };
  if (comm(pid) === 'aigw') return pid;
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat;
    try { stat = readFileSync(`/proc/${p}/stat`, 'utf8'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid && comm(p) === 'aigw') return Number(p);
  }
  return null;
}

// A README line that starts aigw serve, run by sh until aigw says where it listens.
async function serve(cmd, opts = {}) {
  const { proc, out } = shStart(cmd, opts);
  const end = Date.now() + 10000;
  let m;
  const running = () => proc.exitCode === null && proc.signalCode === null;
  while (!(m = out.stderr.match(/listening on 127\.0\.0\.1:(\d+)/)) && running() && Date.now() < end) await sleep(20);
  if (!m) {
    killGroup(proc);
    assert.fail(`\`${cmd}\` did not start listening (exit ${proc.exitCode}); stderr: ${out.stderr}`);
  }
  return {
    port: Number(m[1]),
    url: `http://127.0.0.1:${m[1]}`,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    // Sends aigw the signal; aigw (so the shell) must exit 0 within 15 s.
    async stop(signal = 'SIGTERM') {
      const pid = aigwUnder(proc.pid);
      if (pid) process.kill(pid, signal);
      const code = await waitExit(proc, 15000);
      if (code !== 0) killGroup(proc);
      assert.equal(code, 0, `\`${cmd}\` after ${signal}; stderr: ${out.stderr}`);
      assert.doesNotMatch(out.stderr, SANITIZER_RE, `\`${cmd}\`: sanitizer report`);
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const get = (url, headers = {}) => fetch(url, { headers, signal: AbortSignal.timeout(10000) });
const post = (url, body, headers = {}) => fetch(url, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  signal: AbortSignal.timeout(10000),
});

// A curl -i / -D - output's status and headers (lower-cased names).
function headOf(output) {
  const [status, ...lines] = output.split(/\r?\n\r?\n/)[0].split(/\r?\n/);
  const headers = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  return { status: Number(status.split(' ')[1]), headers };
}

const json = (s, what) => {
  try { return JSON.parse(s); } catch { assert.fail(`${what}: not JSON: ${s}`); }
};

// Which README command a regex names (the first; asserted present by the coverage test).
const readmeCommand = (re) => COMMANDS.find((c) => re.test(c.text));

// ---- the walk ---------------------------------------------------------------------------------

const TOUR_CHAT = /^curl -s http:\/\/127\.0\.0\.1:8080\/v1\/chat\/completions /;
const PLAIN_DECIMAL = /^\d+\.\d+$/;
const HELLO = [{ role: 'user', content: 'Hello' }];

// The README's Endpoints list → a request that must answer 200 on the example config.
const ENDPOINTS = {
  'POST /v1/chat/completions': { body: { model: 'mock-model', messages: HELLO } },
  'POST /v1/completions': { body: { model: 'mock-model', prompt: 'Hello' } },
  'POST /v1/embeddings': { body: { model: 'mock-embed', input: 'Hello' } },
  'POST /v1/messages': { anthropic: true, body: { model: 'mock-claude', max_tokens: 16, messages: HELLO } },
  'POST /v1/messages/count_tokens': { anthropic: true, body: { model: 'mock-claude', messages: HELLO } },
  'GET /v1/models': {},
  'GET /v1/models/{id}': { path: '/v1/models/mock-model' },
  'POST /v1/responses': { body: { model: 'mock-model', input: 'Hello' } },
  // the id of a response made just before (the POST above is listed first in the README)
  'GET /v1/responses/{id}': { path: (made) => `/v1/responses/${made['POST /v1/responses'].id}` },
  'DELETE /v1/responses/{id}': { method: 'DELETE', path: (made) => `/v1/responses/${made['POST /v1/responses'].id}` },
  'GET /healthz': {},
  'GET /readyz': {},
  'GET /metrics': {},
};

// The README's claims → their checks, in the order they are run. readme: the command(s) a row
// claims (a regex over each command's one-line text); says: README sentences it checks (matched
// with any whitespace); title: the test's name when the row claims no command; as: how it is
// run differently from the README and why; check(commands): runs and checks them (null: not
// run, and `as` says why).
const WALK = [
  {
    readme: /^make run$/,
    says: ['starts aigw-mock + aigw on :8080', '`make run` needs no API key'],
    as: 'as scripts/run.sh starts them: "$BUILD/aigw-mock" and "$BUILD/aigw" serve -c aigw.example.yaml ' +
      '(BUILD=build, the build under test), on free ports; the target\'s `deps` step (apt-get, as root) ' +
      'is not run: the libraries are there, the build is done',
    async check() {
      assert.match(readFileSync(join(ROOT, 'Makefile'), 'utf8'), /^run: deps all\n\t@scripts\/run\.sh$/m,
        'the Makefile\'s run target is no longer `deps all` + scripts/run.sh; update this row');
      assert.match(RUN_SH, /^"\$BUILD\/aigw-mock" --listen 127\.0\.0\.1:9090 &$/m, 'scripts/run.sh starts aigw-mock differently; update this row');
      const gwLine = RUN_SH.match(/^("\$BUILD\/aigw" serve -c aigw\.example\.yaml) &$/m);
      assert.ok(gwLine, 'scripts/run.sh starts aigw differently; update this row');
      assert.match(EXAMPLE, /^listen: 127\.0\.0\.1:8080\b/m, 'the example config listens on :8080');
      // aigw-mock is the one before() started (on a free port: 9090 → its port).
      makeRun = await serve(gwLine[1], { env: userEnv({ BUILD: 'build' }) });
      assert.equal(makeRun.port, ports.gw);
      const ready = RUN_SH.match(/curl -fsS http:\/\/127\.0\.0\.1:8080\/readyz/);
      assert.ok(ready, 'scripts/run.sh waits on /readyz');
      assert.equal((await sh(local(ready[0]))).code, 0);
      // No key in the environment: a warning for the openai provider's, nothing worse.
      assert.doesNotMatch(makeRun.stderr(), /error/i);
    },
  },
  { readme: /^make test$/, as: 'not run: `make test` is what runs this file (CI runs it as the README says)', check: null },
  {
    readme: TOUR_CHAT,
    as: 'port substituted',
    async check([cmd]) {
      const r = await sh(local(cmd.run));
      assert.equal(r.code, 0, r.stderr);
      const reply = json(r.stdout, where(cmd));
      assert.equal(reply.object, 'chat.completion', r.stdout);
      assert.equal(reply.choices[0].message.role, 'assistant');
      assert.match(reply.choices[0].message.content, /\S/);
    },
  },
  {
    readme: /^build\/aigw top -c aigw\.example\.yaml$/,
    says: [
      'shows, refreshed every second, requests per second, the error rate, latency percentiles, tokens per second ' +
        'and spend per minute, and each provider target\'s breaker, requests in flight and latency',
      '`q` quits and gives the terminal back.',
      'says that the request log and the screens that change things (keys, virtual keys, the config, breakers) need one',
    ],
    as: 'in a tmux pane of 100×30 (its own -L socket, killed after) in the scratch directory, whose ' +
      'aigw.example.yaml points at `make run`\'s gateway (free port); the tour\'s curl line sends the traffic; ' +
      'the pane is read with capture-pane, then q is pressed',
    async check([cmd]) {
      const socket = `aigw-readme-top-${process.pid}`;
      const tmux = (...args) => {
        const r = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', timeout: 10000, env: userEnv() });
        assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      const pane = () => tmux('capture-pane', '-p', '-t', 'top');
      const seen = async (re, what, ms = 8000) => {
        const end = Date.now() + ms;
        let last = '';
        while (Date.now() < end) {
          if (re.test((last = pane()))) return last;
          await sleep(100);
        }
        assert.fail(`${where(cmd)}: not seen within ${ms} ms: ${what}\n--- pane ---\n${last}`);
      };
      try {
        tmux('new-session', '-d', '-s', 'top', '-x', '100', '-y', '30', '-c', scratch, 'sh', '-c',
          `printf 'SHELL-BEFORE\\n'; ${cmd.run}; printf 'TOP-EXIT=%s\\n' $?; sleep 60`);
        await seen(new RegExp(`aigw top\\s+http://127\\.0\\.0\\.1:${ports.gw}`), 'the header naming make run\'s gateway');
        for (const word of ['req/s', 'errors', 'latency p50', 'p95', 'tokens/s', 'spend/min', 'BREAKER', 'IN-FLIGHT', 'LATENCY']) {
          assert.ok(pane().includes(word), `${where(cmd)}: the pane shows ${word}`);
        }
        await seen(/\bmock\/mock-model\s+closed\s+\d+/, 'a provider target with its breaker and requests in flight');
        // traffic moves the numbers: the tour's curl line, until the rate shows it (bounded)
        const tour = local(readmeCommand(TOUR_CHAT).run);
        const moving = /req\/s\s+[1-9][0-9.]*\s+errors 0\.0%\s+latency p50 \d+ms p95 \d+ms/;
        const until = Date.now() + 8000;
        while (!moving.test(pane()) && Date.now() < until) assert.equal((await sh(tour)).code, 0);
        await seen(moving, 'requests per second above zero, no errors, latency percentiles');
        assert.match(pane(), /no key: the request log and admin API need `auth:` and a master key, or --key/);
        tmux('send-keys', '-t', 'top', '2');
        await seen(/no key: the request log and admin API need `auth:`/, 'the keys screen says the same');
        tmux('send-keys', '-t', 'top', 'q');
        const after = await seen(/TOP-EXIT=0/, 'top ended with q, exit code 0');
        assert.match(after, /SHELL-BEFORE/, 'the shell\'s screen is back');
        assert.doesNotMatch(after, /aigw top|req\/s/, 'nothing of the UI is left');
      } finally {
        spawnSync('tmux', ['-L', socket, 'kill-server'], { timeout: 10000 });
      }
    },
  },
  {
    readme: /^new OpenAI\(/,
    says: ['aigw has no client keys of its own yet, so any string will do — except for a provider whose `api_key` ' +
      'the config leaves out (or whose variable is unset): the client\'s key is forwarded to it.'],
    as: 'constructed from the README\'s text (port substituted); one chat completion of mock-model (the example\'s ' +
      '`mock` provider, which has no api_key), bounded by a per-request timeout',
    async check([cmd]) {
      const client = new Function('OpenAI', `return ${local(cmd.text)};`)(OpenAI);
      await mock.reset();
      const { data, response } = await client.chat.completions.create({ model: 'mock-model', messages: HELLO },
        { timeout: 10000, maxRetries: 0 }).withResponse();
      assert.equal(data.choices[0].message.role, 'assistant');
      assert.equal(response.headers.get('x-aigw-provider'), 'mock');
      const [rec] = (await mock.requests('/v1/chat/completions'));
      const auth = rec.headers.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v);
      assert.deepEqual(auth, [`Bearer ${client.apiKey}`], 'the client\'s key is forwarded to a provider without api_key');
    },
  },
  {
    readme: /^OpenAI\(base_url=/,
    as: 'not run: the Python SDK is not among the test\'s packages; its base_url and api_key must be the Node line\'s',
    check([cmd]) {
      const node = readmeCommand(/^new OpenAI\(/).text;
      assert.equal(cmd.text.match(/base_url="([^"]*)"/)?.[1], node.match(/baseURL: "([^"]*)"/)?.[1], where(cmd));
      assert.equal(cmd.text.match(/api_key="([^"]*)"/)?.[1], node.match(/apiKey: "([^"]*)"/)?.[1], where(cmd));
    },
  },
  {
    readme: /^new Anthropic\(/,
    says: ['`mock-claude` is served in Anthropic\'s format'],
    as: 'constructed from the README\'s text (port substituted); one message from mock-claude, bounded',
    async check([cmd]) {
      const client = new Function('Anthropic', `return ${local(cmd.text)};`)(Anthropic);
      await mock.reset();
      const msg = await client.messages.create({ model: 'mock-claude', max_tokens: 32, messages: HELLO },
        { timeout: 10000, maxRetries: 0 });
      assert.equal(msg.type, 'message');
      assert.match(msg.content[0].text, /\S/);
      assert.equal((await mock.requests('/v1/messages')).length, 1, 'reached aigw-mock in Anthropic\'s format');
    },
  },
  {
    readme: /^ANTHROPIC_BASE_URL=\S+ ANTHROPIC_API_KEY=\S+ claude$/,
    says: ['Its model names (`claude-sonnet-4-5`, `claude-haiku-4-5`, …) are served by nothing in the example, ' +
      'so its `default_route: mock-claude` answers them from the mock (`x-aigw-route: mock-claude`)'],
    as: 'Claude Code is not installed here; what it does with the two variables is the Anthropic SDK\'s: a ' +
      'client made from them (port substituted) asks for each model name the sentence lists',
    async check([cmd]) {
      const vars = Object.fromEntries([...local(cmd.text).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
      const client = new Anthropic({ baseURL: vars.ANTHROPIC_BASE_URL, apiKey: vars.ANTHROPIC_API_KEY });
      const sentence = README_FLAT.match(/Its model names \(([^)]*)\)/)[1];
      const names = [...sentence.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      assert.ok(names.length >= 2, sentence);
      assert.match(EXAMPLE, /^default_route: mock-claude$/m);
      for (const model of names) {
        const { data, response } = await client.messages.create({ model, max_tokens: 32, messages: HELLO },
          { timeout: 10000, maxRetries: 0 }).withResponse();
        assert.equal(data.type, 'message', model);
        assert.equal(response.headers.get('x-aigw-route'), 'mock-claude', model);
      }
    },
  },
  {
    title: 'both official SDKs refuse to run without a key',
    says: ['Both official SDKs refuse to run without a key'],
    as: 'each SDK made with the README\'s baseURL and no apiKey, with no key variable set',
    async check() {
      const quoted = [...README_FLAT.match(/Both official SDKs refuse to run without a key \(([^)]*)\)/)[1].matchAll(/"([^"]+)"/g)]
        .map((m) => m[1]);
      const saved = {};
      for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN']) { saved[k] = process.env[k]; delete process.env[k]; }
      const errors = [];
      try {
        try { new OpenAI({ baseURL: `${makeRun.url}/v1` }); } catch (e) { errors.push(e.message); }
        await mock.reset();
        await new Anthropic({ baseURL: makeRun.url }).messages.create({ model: 'mock-claude', max_tokens: 8, messages: HELLO },
          { timeout: 10000, maxRetries: 0 }).catch((e) => errors.push(e.message));
        assert.equal((await mock.requests()).length, 0, 'nothing was sent');
      } finally {
        for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
      }
      assert.equal(errors.length, 2, `both SDKs refuse: ${errors.join(' | ')}`);
      assert.equal(quoted.length, 2, 'the README quotes each SDK\'s refusal');
      errors.forEach((e, i) => assert.ok(e.includes(quoted[i]), `"${quoted[i]}" in: ${e}`));
    },
  },
  {
    readme: /^curl -s http:\/\/127\.0\.0\.1:8080\/v1\/messages /,
    says: ['is an Anthropic request answered by a Gemini-format provider, translated both ways.'],
    as: 'port substituted',
    async check([cmd]) {
      await mock.reset();
      const r = await sh(local(cmd.run));
      assert.equal(r.code, 0, r.stderr);
      const msg = json(r.stdout, where(cmd));
      assert.equal(msg.type, 'message', r.stdout);
      assert.equal(msg.role, 'assistant');
      assert.equal(msg.content[0].type, 'text');
      assert.match(msg.content[0].text, /\S/);
      assert.equal(typeof msg.usage.input_tokens, 'number');
      const model = cmd.text.match(/"model":"([^"]+)"/)[1];
      const got = await mock.requests();
      assert.deepEqual(got.map((g) => g.url.split('?')[0]), [`/v1beta/models/${model}:generateContent`], 'Gemini\'s format upstream');
    },
  },
  {
    title: 'every endpoint of the Endpoints list answers',
    says: ['- **Endpoints**:', 'in Anthropic\'s shape for a client that sends `anthropic-version`'],
    as: 'one request per endpoint the bullet lists (a table below: a README endpoint it lacks fails), on the example config',
    async check() {
      const bullet = README.slice(README.indexOf('- **Endpoints**:'), README.indexOf('\n- **', README.indexOf('- **Endpoints**:') + 1));
      const listed = [];
      let method = 'POST';
      for (const m of bullet.matchAll(/`(?:(GET|POST|DELETE) )?(\/[^`\s]*)`/g)) {
        method = m[1] ?? method;
        listed.push(`${method} ${m[2]}`);
      }
      assert.deepEqual([...listed].sort(), Object.keys(ENDPOINTS).sort(), 'the README\'s endpoints and this test\'s table');
      const made = {};
      for (const ep of listed) {
        const { body, anthropic, path, method } = ENDPOINTS[ep];
        const url = makeRun.url + (typeof path === 'function' ? path(made) : path ?? ep.split(' ')[1]);
        const headers = anthropic ? { 'anthropic-version': '2023-06-01' } : {};
        const r = body ? await post(url, body, headers)
          : method ? await fetch(url, { method, headers, signal: AbortSignal.timeout(10000) }) : await get(url, headers);
        const text = await r.text();
        assert.equal(r.status, 200, `${ep}: ${text}`);
        if (body) made[ep] = JSON.parse(text);
      }
      const list = await (await get(`${makeRun.url}/v1/models`, { 'anthropic-version': '2023-06-01' })).json();
      assert.equal(list.data[0].type, 'model', 'Anthropic\'s model list');
      assert.equal(list.object, undefined);
    },
  },
  {
    readme: /^curl -s(?:i|D - -o \/dev\/null) …$/,
    says: [
      'Try `"model":"resilient"` with `make run`',
      'the first two requests say `x-aigw-provider: mock-limited`, `x-aigw-route: resilient/0`; the next ones, ' +
        'until the 10 s are over, `x-aigw-provider: mock-anthropic`, `x-aigw-route: resilient/1`',
      'and `x-aigw-attempts` counts the upstream calls each took',
      'gives the mock\'s models made-up prices, so the demo shows `x-aigw-cost-usd` too',
    ],
    as: '`…` is the tour\'s first curl line with "model":"resilient"; four requests, the two forms in turn, port ' +
      'substituted; within the 10 s window (aigw-mock\'s windows reset first)',
    async check(templates) {
      const tour = readmeCommand(TOUR_CHAT);
      const args = tour.text.slice('curl -s '.length).replace(/"model":"[^"]*"/, '"model":"resilient"');
      assert.match(args, /"model":"resilient"/, where(tour));
      await mock.reset();
      const t0 = Date.now();
      const seen = [];
      for (let i = 0; i < 4; i++) {
        const template = templates[i % templates.length];
        const r = await sh(local(template.text.replace('…', args)));
        assert.equal(r.code, 0, r.stderr);
        const { status, headers } = headOf(r.stdout);
        assert.equal(status, 200, r.stdout);
        assert.equal(headers['x-aigw-attempts'], '1', r.stdout);
        assert.match(headers['x-aigw-cost-usd'] ?? '', PLAIN_DECIMAL, 'x-aigw-cost-usd as a plain decimal');
        seen.push([headers['x-aigw-provider'], headers['x-aigw-route']]);
      }
      assert.ok(Date.now() - t0 < 10000, 'the four requests took longer than aigw-mock\'s 10 s window');
      assert.deepEqual(seen, [['mock-limited', 'resilient/0'], ['mock-limited', 'resilient/0'],
        ['mock-anthropic', 'resilient/1'], ['mock-anthropic', 'resilient/1']]);
    },
  },
  {
    title: '`make run` prints curl lines to try, and they work',
    says: ['prints a `curl` line to try'],
    as: 'the curl lines scripts/run.sh prints, port substituted; then the gateway is stopped as Ctrl-C stops it',
    async check() {
      const msg = RUN_SH.slice(RUN_SH.indexOf('cat <<\'MSG\''), RUN_SH.indexOf('\nMSG\n'));
      const lines = [];
      const physical = msg.split('\n');
      for (let i = 0; i < physical.length; i++) {
        if (!physical[i].trim().startsWith('curl ')) continue;
        let cmd = physical[i];
        while (cmd.endsWith('\\')) cmd += `\n${physical[++i]}`;
        lines.push(cmd.trim());
      }
      assert.ok(lines.length >= 1, 'scripts/run.sh prints a curl line');
      for (const line of lines) {
        const r = await sh(local(line));
        assert.equal(r.code, 0, `${line}: ${r.stderr}`);
        assert.match(r.stdout, /\S/, line);
        assert.doesNotMatch(r.stdout, /"error"/, line);
      }
      await makeRun.stop('SIGINT');
      makeRun = null;
    },
  },
  {
    readme: /^make$/,
    as: 'in the checkout (the scratch directory has no Makefile), without the make variables of a surrounding `make test`',
    async check([cmd]) {
      assert.match(cmd.comment, /builds build\/aigw \(and build\/aigw-mock\)/);
      const r = await sh('make', { cwd: ROOT, env: userEnv(), ms: 110000 });
      assert.equal(r.code, 0, r.stderr);
      for (const f of ['build/aigw', 'build/aigw-mock']) assert.ok(statSync(join(ROOT, f)).mode & 0o100, `${f} is built`);
    },
  },
  {
    readme: /^cp aigw\.example\.yaml aigw\.yaml$/,
    as: 'in the scratch directory; then the edit the comment invites: `listen` moved to another free port, so the ' +
      'rows below can tell aigw.yaml from the example',
    async check([cmd]) {
      assert.match(cmd.comment, /then edit: .*listen/);
      const r = await sh(cmd.run);
      assert.equal(r.code, 0, r.stderr);
      const copy = readFileSync(join(scratch, 'aigw.yaml'), 'utf8');
      assert.equal(copy, local(EXAMPLE));
      writeFileSync(join(scratch, 'aigw.yaml'), copy.replace(/^listen: \S+/m, `listen: 127.0.0.1:${ports.edited}`));
    },
  },
  {
    readme: /^build\/aigw config check aigw\.yaml$/,
    says: ['every mistake is reported as `file:line: message` (providers\' `type:` are checked once the rest of the file ' +
      'reads, and `routes:` and `default_route:` once the providers are right)'],
    as: 'as written; then again with mistakes made in aigw.yaml (and taken out again)',
    async check([cmd]) {
      assert.match(cmd.comment, /mistakes as file:line; unset key variables warned/);
      const file = join(scratch, 'aigw.yaml');
      const good = readFileSync(file, 'utf8');
      let r = await sh(cmd.run);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^aigw\\.yaml: ok \\(.*listen 127\\.0\\.0\\.1:${ports.edited}\\)`));
      const keyLine = good.split('\n').findIndex((l) => l.includes('${OPENAI_API_KEY}')) + 1;
      assert.match(r.stderr, new RegExp(`aigw\\.yaml:${keyLine}: warning: provider openai: api_key: OPENAI_API_KEY is not set`));
      // aigw.yaml with the line starting with each prefix replaced; each prefix's line number.
      const edit = (changes) => {
        const lines = good.split('\n');
        const at = {};
        for (const [start, replacement] of changes) {
          const i = lines.findIndex((l) => l.startsWith(start));
          lines[i] = replacement;
          at[start] = String(i + 1);
        }
        writeFileSync(file, lines.join('\n'));
        return at;
      };
      const named = async () => {
        const res = await sh(cmd.run);
        assert.equal(res.code, 1, res.stderr);
        return res.stderr.trimEnd().split('\n').map((l) => l.match(/^aigw: aigw\.yaml:(\d+): /)?.[1] ?? l);
      };
      try {
        // Every mistake of the file's own reading, each with its line…
        let at = edit([['  max_connections:', '  max_conections: 10000'], ['  keepalive_idle:', '  keepalive_idle: 60 s'],
          ['    type: gemini', '    type: gemeni'], ['default_route:', 'default_route: nowhere']]);
        assert.deepEqual(await named(), [at['  max_connections:'], at['  keepalive_idle:']]);
        // …then, once it reads, the provider types…
        at = edit([['    type: gemini', '    type: gemeni'], ['default_route:', 'default_route: nowhere']]);
        assert.deepEqual(await named(), [at['    type: gemini']]);
        // …and once they are right, routes and default_route.
        at = edit([['default_route:', 'default_route: nowhere']]);
        assert.deepEqual(await named(), [at['default_route:']]);
      } finally {
        writeFileSync(file, good);
      }
    },
  },
  {
    readme: /^OPENAI_API_KEY=sk-\.\.\. build\/aigw serve -c aigw\.yaml$/,
    says: ['A second aigw on an address already in use refuses to start.', 'SIGTERM drains and exits'],
    as: 'as written (no request goes to OpenAI); the same line again while it runs; then SIGTERM',
    async check([cmd]) {
      const gw = await serve(cmd.run);
      try {
        assert.equal(gw.port, ports.edited, 'the listen of aigw.yaml');
        assert.doesNotMatch(gw.stderr(), /OPENAI_API_KEY is not set/);
        const r = await post(`${gw.url}/v1/chat/completions`, { model: 'mock-model', messages: HELLO });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        const second = await sh(cmd.run);
        assert.equal(second.code, 1);
        assert.match(second.stderr, new RegExp(`listen: 127\\.0\\.0\\.1:${ports.edited} is already in use`));
      } finally {
        await gw.stop('SIGTERM');
      }
      assert.match(gw.stderr(), /draining/);
    },
  },
  {
    readme: /^build\/aigw serve$/,
    says: ['`build/aigw serve` alone reads `./aigw.yaml`'],
    as: 'in the scratch directory, where aigw.yaml (edited) and aigw.example.yaml listen on different ports',
    async check([cmd]) {
      const gw = await serve(cmd.run);
      await gw.stop();
      assert.equal(gw.port, ports.edited);
    },
  },
  {
    title: '--listen overrides the file\'s listen',
    says: ['`--listen HOST:PORT` overrides the file\'s `listen`'],
    as: '`build/aigw serve -c aigw.yaml --listen 127.0.0.1:<another free port>`',
    async check() {
      const gw = await serve(`build/aigw serve -c aigw.yaml --listen 127.0.0.1:${ports.override}`);
      try {
        assert.equal(gw.port, ports.override);
        const refused = await new Promise((res) => {
          const s = net.connect(ports.edited, '127.0.0.1');
          s.once('connect', () => { s.destroy(); res(false); });
          s.once('error', () => res(true));
        });
        assert.ok(refused, 'nothing listens on the file\'s port');
      } finally {
        await gw.stop();
      }
    },
  },
  {
    readme: /^build\/aigw help serve$/,
    says: ['(`build/aigw help serve` lists the options)'],
    async check([cmd]) {
      const r = await sh(cmd.run);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /-c, --config FILE/);
      assert.match(r.stdout, /--listen HOST:PORT/);
    },
  },
  {
    readme: /^aigw config check FILE$/,
    as: 'FILE is a placeholder: `aigw config check aigw.yaml` in the scratch directory (aigw on PATH is the build under test)',
    async check([cmd]) {
      const r = await sh(cmd.text.replace(/FILE$/, 'aigw.yaml'));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /aigw\.yaml: ok/);
    },
  },
  {
    readme: /^aigw keys create$/,
    says: ['stored in a SQLite file as a keyed digest only', 'auth: {master_key: "${AIGW_MASTER_KEY}"}'],
    as: 'with the README\'s `auth: {master_key: "${AIGW_MASTER_KEY}"}` in a config of the scratch directory: the key is ' +
      'printed once and the store beside the config (aigw.db) does not hold it',
    async check([cmd]) {
      writeFileSync(join(scratch, 'keys.yaml'), 'providers: [{name: p, type: openai, base_url: "http://127.0.0.1:9/v1", ' +
        'models: [m]}]\nauth: {master_key: "${AIGW_MASTER_KEY}"}\n');
      const r = await sh(`AIGW_MASTER_KEY=readme-master-key-0123456789 ${cmd.text} -c keys.yaml --alias readme`);
      assert.equal(r.code, 0, r.stderr);
      const key = r.stdout.match(/aigw-[A-Za-z0-9_-]{43}/)?.[0];
      assert.ok(key, r.stdout);
      assert.ok(!readFileSync(join(scratch, 'aigw.db')).includes(key), 'the key in the store');
    },
  },
  {
    readme: /^aigw spend$/,
    says: ['a `soft_budget` only flags the access log'],
    as: 'with the README\'s `auth:` in a config of the scratch directory, on the store file (--direct: no gateway runs ' +
      'there, and whatever listens on :8080 on this machine is not asked): an empty store spent nothing',
    async check([cmd]) {
      writeFileSync(join(scratch, 'spend.yaml'), 'providers: [{name: p, type: openai, base_url: "http://127.0.0.1:9/v1", ' +
        'models: [m]}]\nauth: {master_key: "${AIGW_MASTER_KEY}", store: spend.db}\n');
      const r = await sh(`AIGW_MASTER_KEY=readme-master-key-0123456789 ${cmd.text} -c spend.yaml --direct`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^key +REQUESTS +PROMPT +COMPLETION +CACHED +REASONING +USD$/m);
      assert.match(r.stdout, /^total +0 +0 +0 +0 +0 +0\.000000$/m);
    },
  },
  {
    readme: /^(?:sudo )?make (?:un)?install\b/,
    says: ['the same PREFIX and DESTDIR remove what install put there'],
    as: 'without sudo, each DESTDIR a scratch directory (none given: <scratch>/root; `pkg`: <scratch>/pkg), so ' +
      'nothing is written outside it; BUILD= the build under test, so nothing is compiled; uninstall once per install',
    async check(cmds) {
      const dest = mkdtempSync(join(tmpdir(), 'aigw-readme-install-'));
      const installs = []; // {prefix, d}: where each install line put its files, for the uninstall line
      try {
        for (const cmd of cmds) {
          const prefix = cmd.text.match(/\bPREFIX=(\S+)/)?.[1] ?? '/usr/local';
          const destdir = cmd.text.match(/\bDESTDIR=(\S+)/)?.[1];
          // The README's line without sudo, PREFIX and DESTDIR as given (DESTDIR moved), the build under test.
          const make = (d, p) => sh(`${cmd.text.replace(/^sudo /, '').replace(/ (?:PREFIX|DESTDIR)=\S+/g, '')} ` +
            `PREFIX=${p} DESTDIR=${d} BUILD=${BUILD_DIR}`, { cwd: ROOT, ms: 60000 });
          if (/ install\b/.test(cmd.text)) {
            const d = join(dest, destdir ?? 'root');
            const r = await make(d, prefix);
            assert.equal(r.code, 0, `${where(cmd)}: ${r.stderr}`);
            // The paths the comment names: absolute ones under DESTDIR, `pkg/…` ones in it.
            const named = [...cmd.comment.matchAll(/(?:^|[\s,])((?:\/|[\w.-]+\/)[\w./-]*\w)/g)].map((m) => m[1]);
            assert.ok(named.length >= 1, `${where(cmd)}: the comment names what is installed`);
            for (const p of named) {
              const path = destdir && p.startsWith(`${destdir}/`) ? join(dest, p) : join(d, p);
              assert.ok(existsSync(path), `${where(cmd)}: ${p} (${path}) after install`);
            }
            installs.push({ prefix, d });
          } else {
            assert.ok(installs.length >= 1, 'uninstall follows an install');
            for (const { prefix: p, d } of installs) {
              const r = await make(d, p);
              assert.equal(r.code, 0, `${where(cmd)}: ${r.stderr}`);
              assert.deepEqual(filesUnder(d), [], `${where(cmd)}: what install put in ${d}`);
            }
          }
        }
      } finally {
        rmSync(dest, { recursive: true, force: true });
      }
    },
  },
  {
    readme: /^aigw config (?:import litellm config\.yaml > aigw\.yaml|check aigw\.yaml && aigw serve -c aigw\.yaml)$/,
    as: 'in a directory of its own; config.yaml is the user\'s LiteLLM config: one entry written as LiteLLM\'s ' +
      'documentation writes it, its api_base aigw-mock; the imported file has no `listen` (so 127.0.0.1:8080), so ' +
      'the serve line gets `--listen 127.0.0.1:<free port>`',
    async check([importLine, serveLine]) {
      const dir = join(scratch, 'litellm');
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.yaml'), `model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/mock-model
      api_base: http://127.0.0.1:${mock.port}/v1
      api_key: os.environ/LITELLM_TEST_KEY
`);
      const env = userEnv({ LITELLM_TEST_KEY: 'litellm-key' });
      const r = await sh(importLine.run, { cwd: dir, env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(join(dir, 'aigw.yaml'), 'utf8'), /\$\{LITELLM_TEST_KEY\}/);
      const gw = await serve(`${serveLine.run} --listen 127.0.0.1:${ports.litellm}`, { cwd: dir, env });
      try {
        assert.match(gw.stdout(), /aigw\.yaml: ok \(.*listen 127\.0\.0\.1:8080\)/, 'the imported file listens on the default');
        await mock.reset();
        const res = await post(`${gw.url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: HELLO });
        assert.equal(res.status, 200, await res.text());
        const [rec] = await mock.requests('/v1/chat/completions');
        assert.equal(JSON.parse(rec.body).model, 'mock-model');
      } finally {
        await gw.stop();
      }
    },
  },
  { readme: /^make (?:test-asan|check-includes)$/, as: 'not run: both are steps of `make test`, which runs this file', check: null },
  { readme: /^make fuzz$/, as: 'not run: builds the fuzzers with clang and runs each; CI (.ci/run) does, on its own', check: null },
  { readme: /^make bench$/, as: 'not run: wrk against nginx and Portkey for minutes (bench/run.sh)', check: null },
  { readme: /^make format$/, as: 'not run: it rewrites the sources; `make format-check` is the check', check: null },
  {
    readme: /^postrotate kill -USR1 \$\(pidof aigw\)$/,
    as: 'not run: pidof would signal every aigw on the machine; reload.test.mjs renames the log and sends SIGUSR1',
    check: null,
  },
];

function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

const claimed = (row) => (row.readme ? COMMANDS.filter((c) => row.readme.test(c.text)) : []);

// ---- the tests --------------------------------------------------------------------------------

before(async () => {
  mock = await startMock();
  const [gw, edited, override, litellm] = await freePorts(4);
  ports = { gw, edited, override, litellm };
  scratch = mkdtempSync(join(tmpdir(), 'aigw-readme-'));
  writeFileSync(join(scratch, 'aigw.example.yaml'), local(EXAMPLE));
  copyFileSync(join(ROOT, 'aigw.example.catalog.json'), join(scratch, 'aigw.example.catalog.json'));
  symlinkSync(BUILD_DIR, join(scratch, 'build'));
});

after(async () => {
  await makeRun?.stop().catch(() => {});
  for (const proc of started) killGroup(proc);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  await mock?.stop();
});

test('every command the README shows is claimed by one row of this walk, and every row by the README', (t) => {
  t.diagnostic(`ports: aigw 127.0.0.1:8080 → ${ports.gw}, aigw-mock 127.0.0.1:9090 → ${mock.port}; ` +
    `aigw.yaml's edited listen ${ports.edited}, --listen ${ports.override}, the LiteLLM import's ${ports.litellm}`);
  const problems = [];
  for (const cmd of COMMANDS) {
    const rows = WALK.filter((r) => r.readme?.test(cmd.text));
    if (rows.length === 0) problems.push(`${where(cmd)}: \`${cmd.text}\` is a command this test does not know how to run; add a row to WALK`);
    if (rows.length > 1) problems.push(`${where(cmd)}: \`${cmd.text}\` is claimed by ${rows.length} rows`);
  }
  for (const row of WALK) {
    if (row.readme && claimed(row).length === 0) problems.push(`WALK's row ${row.readme} matches no command of the README any more`);
    for (const s of row.says ?? []) {
      if (!README_FLAT.includes(s.replace(/\s+/g, ' '))) problems.push(`the README no longer says: "${s}"; update WALK`);
    }
  }
  for (const row of WALK) if (row.check === null) t.diagnostic(`not run: ${claimed(row).map((c) => `${where(c)} \`${c.text}\``).join(', ')}: ${row.as}`);
  assert.deepEqual(problems, []);
});

for (const row of WALK) {
  if (row.check === null) continue;
  const name = row.title ?? (claimed(row).map((c) => (c.text.length > 70 ? `${c.text.slice(0, 67)}…` : c.text)).join(' / ') ||
    `${row.readme}`);
  test(`README: ${name}`, async (t) => {
    const cmds = claimed(row);
    assert.ok(!row.readme || cmds.length, `the README has no command matching ${row.readme}`);
    if (row.as) t.diagnostic(`run ${row.as}`);
    await row.check(cmds);
  });
}
