// alerts.js — what needs attention now: the alert rules and their state (GET /admin/alerts:
// firing, resolved or ok, as aigw's alert thread last judged them), and from GET /metrics the
// targets whose breaker is not closed, failed upstream attempts by provider and outcome, and
// requests aigw refused by reason.
import { get } from './api.js';
import { h, table, int } from './dom.js';
import { fetchMetrics, select } from './metrics.js';

const STATUS_CLASS = { firing: 's-bad', resolved: 's-ok', ok: 's-ok' };

function number(v) {
  return v === null || v === undefined ? '—' : String(Math.round(v * 1000) / 1000);
}

export async function render(root) {
  const [samples, state] = await Promise.all([fetchMetrics(), get('/admin/alerts')]);
  const rules = state.alerts || [];
  const notClosed = select(samples, 'aigw_target_breaker_state').filter((x) => x.value !== 0 && (x.labels.state === undefined || x.labels.state !== 'closed'));
  const failed = select(samples, 'aigw_attempts_total').filter((x) => x.labels.outcome !== 'ok' && x.value > 0);
  const refused = select(samples, 'aigw_rejections_total').filter((x) => x.value > 0);
  root.append(
    h('h2', {}, 'Alert rules'),
    rules.length
      ? table('Alert rules', [{ label: 'Rule' }, { label: 'Kind' }, { label: 'Status' }, { label: 'Value', num: true }, { label: 'Threshold', num: true }, { label: 'Last said' }],
        rules.map((a) => [a.name, a.kind, h('span', { class: STATUS_CLASS[a.status] || '' }, a.status), number(a.value), number(a.threshold), a.summary || '—']))
      : h('p', { id: 'alert-rules' }, 'No alert rules in the config (`alerts:`, docs/observability.md).'),
    h('h2', {}, 'Breakers not closed'),
    notClosed.length
      ? table('Open breakers', [{ label: 'Provider' }, { label: 'Model' }, { label: 'State' }], notClosed.map((x) => [x.labels.provider, x.labels.model, h('span', { class: 's-bad' }, x.labels.state ?? String(x.value))]))
      : h('p', { class: 's-ok', id: 'breakers-ok' }, 'Every breaker is closed.'),
    h('h2', {}, 'Failed upstream attempts since aigw started'),
    table('Failed attempts', [{ label: 'Provider' }, { label: 'Outcome' }, { label: 'Attempts', num: true }], failed.map((x) => [x.labels.provider, x.labels.outcome, int(x.value)])),
    h('h2', {}, 'Requests refused by aigw since it started'),
    table('Refusals', [{ label: 'Reason' }, { label: 'Key' }, { label: 'Requests', num: true }], refused.map((x) => [x.labels.reason, x.labels.key || '—', int(x.value)])));
}
