// logs.js — the request log: GET /admin/logs with its filters (key, model, provider, status,
// error text, a window) and its cursor ("Load more"), and one request from GET
// /admin/logs/{id}: its attempts as a waterfall, route path, tokens, cost, trace id.
import { get, enc } from './api.js';
import { h, table, field, when, ms, money, int } from './dom.js';
import { waterfall } from './charts.js';

const FILTERS = ['key', 'model', 'provider', 'status', 'error', 'since'];
let last = {}; // the filters last used, kept while the page is open

export async function render(root, args) {
  if (args[0]) return detail(root, args[0]);
  const inputs = {
    key: h('input', { name: 'key', value: last.key ?? '', autocomplete: 'off' }),
    model: h('input', { name: 'model', value: last.model ?? '', autocomplete: 'off' }),
    provider: h('input', { name: 'provider', value: last.provider ?? '', autocomplete: 'off' }),
    status: h('select', { name: 'status' }, [['', 'any'], ['ok', 'ok (< 400)'], ['error', 'error (≥ 400)'], ['429', '429'], ['4xx', '4xx'], ['5xx', '5xx']]
      .map(([v, t]) => h('option', { value: v, selected: (last.status ?? '') === v }, t))),
    error: h('input', { name: 'error', value: last.error ?? '', autocomplete: 'off' }),
    since: h('select', { name: 'since' }, [['', 'any time'], ['3600', 'last hour'], ['86400', 'last 24 h'], ['604800', 'last 7 days']]
      .map(([v, t]) => h('option', { value: v, selected: (last.since ?? '') === v }, t))),
  };
  const results = h('div', { id: 'log-results', 'aria-live': 'polite' });
  const form = h('form', { 'aria-label': 'Filter the request log', role: 'search' },
    field('Key (id or alias)', inputs.key), field('Model', inputs.model), field('Provider', inputs.provider),
    field('Status', inputs.status), field('Error text', inputs.error), field('Time', inputs.since),
    h('button', { type: 'submit' }, 'Filter'),
    h('button', { type: 'button', class: 'secondary', onclick: () => { for (const f of FILTERS) inputs[f].value = ''; form.requestSubmit(); } }, 'Clear'));
  const query = (cursor) => {
    const q = new URLSearchParams({ limit: '50' });
    for (const f of FILTERS) {
      const v = inputs[f].value.trim();
      if (!v) continue;
      if (f === 'since') q.set('since', String(Math.floor(Date.now() / 1000) - Number(v)));
      else q.set(f, v);
    }
    if (cursor) q.set('cursor', cursor);
    return `/admin/logs?${q}`;
  };
  let rows = [];
  const show = async (cursor) => {
    const page = await get(query(cursor));
    rows = cursor ? rows.concat(page.data) : page.data;
    const more = page.has_more ? h('button', { type: 'button', class: 'secondary', onclick: () => show(page.next_cursor).catch(fail) }, 'Load more') : null;
    results.replaceChildren(
      h('p', { class: 'help' }, `${rows.length} request${rows.length === 1 ? '' : 's'}${page.has_more ? ' (more below)' : ''}`),
      table('Requests, newest first', [{ label: 'Time' }, { label: 'Request' }, { label: 'Key' }, { label: 'Model' }, { label: 'Provider' }, { label: 'Status', num: true }, { label: 'Total', num: true }, { label: 'Cost', num: true }, { label: 'Cache' }],
        rows.map((r) => [when(r.time), h('a', { href: `#/logs/${enc(r.id)}`, 'data-request': r.id }, r.id), r.key_alias ?? r.key_id ?? '—', r.model ?? '—', r.provider ?? '—',
          h('span', { class: r.status >= 400 ? 's-bad' : 's-ok' }, String(r.status)), ms(r.total_ms), money(r.cost_usd), r.cache ?? '—'])),
      ...(more ? [more] : []));
    results.dataset.count = String(rows.length);
  };
  const fail = (e) => results.replaceChildren(h('p', { class: 's-bad' }, e.message));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    for (const f of FILTERS) last[f] = inputs[f].value;
    show().catch(fail);
  });
  root.append(form, results);
  await show();
}

async function detail(root, id) {
  const r = await get(`/admin/logs/${enc(id)}`);
  const u = r.usage ?? {};
  const path = [r.route ? `route ${r.route}` : null, ...(r.attempts ?? []).map((a) => `${a.provider}/${a.model} (${a.role}: ${a.outcome}${a.status ? ` ${a.status}` : ''})`)].filter(Boolean);
  const dl = (pairs) => h('dl', { class: 'detail' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
  root.append(
    h('p', {}, h('a', { href: '#/logs' }, '← Back to the request log')),
    h('h2', {}, `Request ${r.id}`),
    dl([
      ['Time', when(r.time)], ['Status', h('span', { class: r.status >= 400 ? 's-bad' : 's-ok' }, String(r.status))],
      ['Method and path', `${r.method} ${r.path}`], ['Key', r.key_alias ? `${r.key_alias} (${r.key_id})` : r.key_id], ['Team', r.team_id],
      ['Model asked', r.model], ['Answered by', r.provider ? `${r.provider} / ${r.upstream_model}` : null],
      ['Route path', path.join(' → ') || null], ['Retries / fallbacks', `${r.retries} / ${r.fallbacks}`],
      ['Stream', r.stream ? 'yes' : 'no'], ['Cache', r.cache],
      ['Tokens', `${int(u.prompt_tokens)} prompt (${int(u.cached_tokens)} cached) + ${int(u.completion_tokens)} completion (${int(u.reasoning_tokens)} reasoning) = ${int(u.total_tokens)}`],
      ['Cost', money(r.cost_usd)], ['Time to first byte', ms(r.ttfb_ms)], ['Total', ms(r.total_ms)], ['aigw overhead', ms(r.overhead_ms)],
      ['Trace id', r.trace_id ? h('code', { 'data-trace': r.trace_id }, r.trace_id) : null],
      ['Error', r.error ? `${r.error_class ?? ''}: ${r.error}` : null],
    ]),
    h('h2', {}, 'Attempts'),
    waterfall('waterfall', r.attempts ?? [], r.total_ms),
    ...(r.request_body ? [h('h2', {}, 'Request body (as kept)'), h('pre', {}, JSON.stringify(r.request_body, null, 2))] : []));
}
