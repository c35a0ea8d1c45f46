// overview.js — the overview: traffic, latency percentiles, errors by provider, spend by key and
// by model over a chosen window, from GET /admin/logs/aggregate (by hour, provider, key, model),
// and cache results since aigw started, from GET /metrics. The totals are sums of aigw's own
// groups; percentiles are aigw's (per group: it does not publish one for the whole window).
import { get, enc } from './api.js';
import { h, int, money, ms, pct, field } from './dom.js';
import { bars, columns } from './charts.js';
import { fetchMetrics, sumBy } from './metrics.js';

const WINDOWS = [['1h', 3600], ['6h', 6 * 3600], ['24h', 86400], ['7d', 7 * 86400], ['30d', 30 * 86400]];
let chosen = '24h';

export async function render(root) {
  const select = h('select', { name: 'window' }, WINDOWS.map(([v]) => h('option', { value: v, selected: v === chosen }, `last ${v}`)));
  const body = h('div', {});
  const form = h('form', { 'aria-label': 'Time window' }, field('Window', select), h('button', { type: 'submit' }, 'Show'));
  const load = async () => {
    chosen = select.value;
    const seconds = WINDOWS.find(([v]) => v === chosen)[1];
    const since = new Date(Date.now() - seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    const agg = (by) => get(`/admin/logs/aggregate?by=${by}&since=${enc(since)}`).then((r) => r.data);
    const [hours, providers, keys, models, keyList, samples] = await Promise.all([
      agg('hour'), agg('provider'), agg('key'), agg('model'),
      get('/admin/keys').then((r) => r.data).catch(() => []),
      fetchMetrics().catch(() => []),
    ]);
    body.replaceChildren(...draw(hours, providers, keys, models, keyList, samples));
    body.dataset.window = chosen;
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => body.replaceChildren(h('p', {}, err.message))); });
  root.append(form, body);
  await load();
}

function draw(hours, providers, keys, models, keyList, samples) {
  const total = hours.reduce((a, r) => ({ requests: a.requests + r.requests, errors: a.errors + r.errors, cost: a.cost + r.cost_usd, tokens: a.tokens + r.total_tokens }), { requests: 0, errors: 0, cost: 0, tokens: 0 });
  const alias = Object.fromEntries(keyList.map((k) => [k.id, k.key_alias || k.id]));
  const cache = sumBy(samples, 'aigw_cache_results_total', 'result');
  const hits = (cache.HIT ?? 0) + (cache.SEMANTIC_HIT ?? 0);
  const lookups = Object.values(cache).reduce((a, b) => a + b, 0);
  const card = (label, value, id) => h('div', { class: 'card', 'data-card': id }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
  const hourLabel = (iso) => iso.slice(11, 16);
  return [
    h('div', { class: 'cards', role: 'group', 'aria-label': 'Totals in the window' },
      card('requests', int(total.requests), 'requests'),
      card('errors', `${int(total.errors)} (${pct(total.requests ? total.errors / total.requests : NaN)})`, 'errors'),
      card('spend', money(total.cost), 'spend'),
      card('tokens', int(total.tokens), 'tokens'),
      card('cache hits since start', lookups ? `${int(hits)} of ${int(lookups)}` : '—', 'cache')),
    h('div', { class: 'charts' },
      columns('traffic', 'Traffic per hour (UTC)', hours.map((r) => ({ label: r.hour, short: hourLabel(r.hour), values: [r.requests, r.errors] })),
        [{ name: 'requests', format: int }, { name: 'errors', format: int }]),
      bars('latency', 'Latency percentiles by model (total time)', models.map((r) => ({ label: r.model ?? '(none)', values: [r.p50_ms ?? 0, r.p95_ms ?? 0] })),
        [{ name: 'p50', format: ms }, { name: 'p95', format: ms }]),
      bars('errors-provider', 'Errors by provider', providers.map((r) => ({ label: r.provider ?? '(none: refused before a provider)', values: [r.errors, r.requests] })),
        [{ name: 'errors', format: int }, { name: 'requests', format: int }]),
      bars('spend-key', 'Spend by key', keys.map((r) => ({ label: r.key_id ? (alias[r.key_id] ?? r.key_id) : '(no key)', values: [r.cost_usd] })),
        [{ name: 'spend', format: money }]),
      bars('spend-model', 'Spend by model', models.map((r) => ({ label: r.model ?? '(none)', values: [r.cost_usd] })),
        [{ name: 'spend', format: money }]),
      bars('cache', 'Cache results since aigw started', Object.entries(cache).map(([k, v]) => ({ label: k, values: [v] })),
        [{ name: 'lookups', format: int }])),
  ];
}
