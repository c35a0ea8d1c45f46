// alerts.js — what needs attention now, from GET /metrics: targets whose breaker is not
// closed, failed upstream attempts by provider and outcome, requests aigw refused by reason;
// and the alert rules the running config holds (GET /admin/config). Alert rules fire on aigw's
// alert thread, which says so on stderr and to the webhook; the admin API does not publish
// their state yet (docs/ui.md), so the page shows the measures the rules read.
import { get } from './api.js';
import { h, table, int } from './dom.js';
import { fetchMetrics, select } from './metrics.js';

export async function render(root) {
  const [samples, config] = await Promise.all([fetchMetrics(), get('/admin/config')]);
  const notClosed = select(samples, 'aigw_target_breaker_state').filter((x) => x.value !== 0 && (x.labels.state === undefined || x.labels.state !== 'closed'));
  const failed = select(samples, 'aigw_attempts_total').filter((x) => x.labels.outcome !== 'ok' && x.value > 0);
  const refused = select(samples, 'aigw_rejections_total').filter((x) => x.value > 0);
  root.append(
    h('h2', {}, 'Breakers not closed'),
    notClosed.length
      ? table('Open breakers', [{ label: 'Provider' }, { label: 'Model' }, { label: 'State' }], notClosed.map((x) => [x.labels.provider, x.labels.model, h('span', { class: 's-bad' }, x.labels.state ?? String(x.value))]))
      : h('p', { class: 's-ok', id: 'breakers-ok' }, 'Every breaker is closed.'),
    h('h2', {}, 'Failed upstream attempts since aigw started'),
    table('Failed attempts', [{ label: 'Provider' }, { label: 'Outcome' }, { label: 'Attempts', num: true }], failed.map((x) => [x.labels.provider, x.labels.outcome, int(x.value)])),
    h('h2', {}, 'Requests refused by aigw since it started'),
    table('Refusals', [{ label: 'Reason' }, { label: 'Key' }, { label: 'Requests', num: true }], refused.map((x) => [x.labels.reason, x.labels.key || '—', int(x.value)])),
    h('h2', {}, 'Alert rules in the config'),
    h('pre', { id: 'alert-rules' }, alertsBlock(config.source) || 'No `alerts:` in the config (docs/observability.md).'));
}

// The config's top-level `alerts:` block as written (secrets already masked by aigw).
function alertsBlock(source) {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => /^alerts:/.test(l));
  if (start < 0) return '';
  let end = start + 1;
  while (end < lines.length && (/^\s/.test(lines[end]) || lines[end] === '')) end++;
  return lines.slice(start, end).join('\n').trimEnd();
}
