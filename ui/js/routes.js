// routes.js — providers, routes and the whole config: the targets' breakers, in-flight requests
// and latency from GET /metrics; the running config's text from GET /admin/config (secrets
// masked) in an editor; saving sends it to PUT /admin/config, which validates and reloads it
// exactly as SIGHUP does — a refused text's message (every mistake, with its line) is shown
// here and the old config keeps serving. Replacing the config takes the master key.
import { get, call } from './api.js';
import { h, table, field, announce, showError, ms } from './dom.js';
import { fetchMetrics, select } from './metrics.js';

const STATES = { 0: 'closed', 1: 'open', 2: 'half-open' };

export async function render(root) {
  const [config, samples] = await Promise.all([get('/admin/config'), fetchMetrics().catch(() => [])]);
  const inFlight = new Map(select(samples, 'aigw_target_in_flight').map((x) => [`${x.labels.provider}/${x.labels.model}`, x.value]));
  const latency = new Map(select(samples, 'aigw_target_latency_ewma_seconds').map((x) => [`${x.labels.provider}/${x.labels.model}`, x.value]));
  const breakers = new Map();
  for (const x of select(samples, 'aigw_target_breaker_state')) {
    const k = `${x.labels.provider}/${x.labels.model}`;
    if (x.labels.state === undefined) breakers.set(k, STATES[x.value] ?? String(x.value));
    else if (x.value) breakers.set(k, x.labels.state);
    else if (!breakers.has(k)) breakers.set(k, STATES[x.value] ?? 'closed');
  }
  const targets = [...new Set([...breakers.keys(), ...inFlight.keys()])].sort();
  const message = h('div', { id: 'config-message', role: 'alert', 'aria-live': 'assertive', class: 'error' });
  const editor = h('textarea', { id: 'config-source', name: 'source', spellcheck: 'false', autocomplete: 'off' });
  editor.value = config.source;
  const save = async (e) => {
    e.preventDefault();
    message.textContent = '';
    showError('');
    try {
      const r = await call('PUT', '/admin/config', { source: editor.value });
      announce(`Config applied: ${r.message ?? 'reloaded'}`);
      message.dataset.outcome = 'applied';
    } catch (err) {
      message.textContent = `Refused (${err.status}${err.code ? ` ${err.code}` : ''}): ${err.message}`;
      message.dataset.outcome = 'refused';
      editor.focus();
    }
  };
  const reload = async () => {
    message.textContent = '';
    try {
      const r = await call('POST', '/admin/config/reload');
      announce(`Config file read again: ${r.message ?? 'reloaded'}`);
    } catch (err) { message.textContent = `Refused: ${err.message}`; }
  };
  const form = h('form', { 'aria-label': 'Edit the config', id: 'config-form' },
    field(`Config (${config.path})`, editor, 'Secrets show as <redacted>: write the secret or its ${ENV} reference back before saving, or aigw refuses the text. Saving validates the whole file and reloads it; a refusal leaves the running config as it is.'),
    h('button', { type: 'submit' }, 'Validate and apply'),
    h('button', { type: 'button', class: 'secondary', onclick: reload }, 'Reload the file'));
  form.addEventListener('submit', save);
  root.append(
    h('h2', {}, 'Targets'),
    table('Provider targets', [{ label: 'Provider / model' }, { label: 'Breaker' }, { label: 'In flight', num: true }, { label: 'Latency (EWMA)', num: true }],
      targets.map((t) => [t, h('span', { class: breakers.get(t) === 'closed' ? 's-ok' : 's-bad' }, breakers.get(t) ?? '—'), String(inFlight.get(t) ?? 0), latency.has(t) ? ms(latency.get(t) * 1000) : '—'])),
    h('h2', {}, 'Routes named in the config'),
    h('ul', { id: 'route-names' }, routeNames(config.source).map((n) => h('li', {}, n))),
    h('h2', {}, 'The config'), message, form);
}

// The names of the `routes:` entries, read from the text for the list above (the editor and
// aigw's own check are what count).
function routeNames(source) {
  const lines = source.split('\n');
  const names = [];
  let inside = false;
  for (const line of lines) {
    if (/^routes:\s*$/.test(line)) { inside = true; continue; }
    if (inside && /^\S/.test(line)) break;
    const m = inside && line.match(/^\s*-?\s*\{?\s*name:\s*["']?([^"',}\s]+)/);
    if (m && /^\s{0,4}-/.test(line)) names.push(m[1]);
  }
  return names.length ? names : ['(none: models are served by their providers)'];
}
