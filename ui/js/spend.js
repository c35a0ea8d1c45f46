// spend.js — what was spent, from GET /admin/spend (the store's hourly spend rows, written
// about once a second by the workers): over a chosen window, grouped by key, team, model or
// day, as a table (requests, tokens, cost) and a chart of the cost — bars for keys, teams and
// models, columns for days. The figures are aigw's sums; the page only lays them out.
import { get, enc } from './api.js';
import { h, table, field, int, money } from './dom.js';
import { bars, columns } from './charts.js';

const WINDOWS = [['24h', 86400], ['7d', 7 * 86400], ['30d', 30 * 86400], ['all', 0]];
const GROUPS = [['key', 'key'], ['team', 'team'], ['model', 'model'], ['day', 'day (UTC)']];
let chosen = { window: '7d', by: 'key' };

export async function render(root) {
  const windowSelect = h('select', { name: 'window' }, WINDOWS.map(([v]) => h('option', { value: v, selected: v === chosen.window }, v === 'all' ? 'all time' : `last ${v}`)));
  const bySelect = h('select', { name: 'group_by' }, GROUPS.map(([v, t]) => h('option', { value: v, selected: v === chosen.by }, t)));
  const body = h('div', { id: 'spend-results', 'aria-live': 'polite' });
  const form = h('form', { 'aria-label': 'Spend report' }, field('Window', windowSelect), field('Group by', bySelect), h('button', { type: 'submit' }, 'Show'));
  const load = async () => {
    chosen = { window: windowSelect.value, by: bySelect.value };
    const seconds = WINDOWS.find(([v]) => v === chosen.window)[1];
    const q = new URLSearchParams({ group_by: chosen.by });
    if (seconds) q.set('from', new Date(Date.now() - seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z'));
    const [report, keyList] = await Promise.all([
      get(`/admin/spend?${q}`),
      chosen.by === 'key' ? get('/admin/keys').then((r) => r.data).catch(() => []) : [],
    ]);
    body.replaceChildren(...draw(report, keyList));
    body.dataset.groupBy = chosen.by;
    body.dataset.rows = String(report.data.length);
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => body.replaceChildren(h('p', { class: 's-bad' }, err.message))); });
  root.append(h('p', { class: 'help' }, 'Each keyed request\'s tokens and cost, summed per hour in the store; the window starts at an hour.'), form, body);
  await load();
}

function draw(report, keyList) {
  const by = report.group_by;
  const alias = Object.fromEntries(keyList.map((k) => [k.id, k.key_alias || k.id]));
  const name = (r) => {
    if (by === 'key') return r.key_id ? (alias[r.key_id] ?? r.key_id) : '(no key)';
    if (by === 'team') return r.team_id ?? '(no team)';
    if (by === 'model') return r.model ?? '(none)';
    return r.day;
  };
  const rows = report.data.map((r) => ({ label: name(r), r }));
  const chart = by === 'day'
    ? columns('spend-chart', 'Spend per day (UTC)', rows.map(({ label, r }) => ({ label, short: label.slice(5), values: [r.cost_usd] })), [{ name: 'spend', format: money }])
    : bars('spend-chart', `Spend by ${by}`, rows.map(({ label, r }) => ({ label, values: [r.cost_usd] })), [{ name: 'spend', format: money }]);
  const t = report.total;
  return [
    h('div', { class: 'cards', role: 'group', 'aria-label': 'Totals in the window' },
      h('div', { class: 'card', 'data-card': 'spend' }, h('div', { class: 'value' }, money(t.cost_usd)), h('div', { class: 'label' }, 'spend')),
      h('div', { class: 'card', 'data-card': 'requests' }, h('div', { class: 'value' }, int(t.requests)), h('div', { class: 'label' }, 'requests')),
      h('div', { class: 'card', 'data-card': 'tokens' }, h('div', { class: 'value' }, int(t.prompt_tokens + t.completion_tokens)), h('div', { class: 'label' }, 'tokens'))),
    h('div', { class: 'charts' }, chart),
    h('h2', {}, `By ${by}`),
    table(`Spend by ${by}`, [{ label: by === 'day' ? 'Day' : by[0].toUpperCase() + by.slice(1) }, { label: 'Requests', num: true }, { label: 'Prompt tokens', num: true }, { label: 'Completion tokens', num: true }, { label: 'Cached', num: true }, { label: 'Cost', num: true }],
      rows.map(({ label, r }) => [h('span', { 'data-group': label }, label), int(r.requests), int(r.prompt_tokens), int(r.completion_tokens), int(r.cached_tokens), money(r.cost_usd)])),
  ];
}
