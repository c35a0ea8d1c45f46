// metrics.js — reads aigw's GET /metrics (Prometheus text format) into samples, and the few
// sums the pages show. No figure is derived beyond adding up the series aigw exports.
import { get, call } from './api.js';

// [{name, labels: {…}, value}] for every sample line; comments and malformed lines skipped.
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

export async function fetchMetrics() {
  return parseMetrics(await call('GET', '/metrics', undefined, { text: true }));
}

// The sum of a series' samples per value of one label: {labelValue: sum}.
export function sumBy(samples, name, label) {
  const out = {};
  for (const x of samples) if (x.name === name) out[x.labels[label] ?? ''] = (out[x.labels[label] ?? ''] ?? 0) + x.value;
  return out;
}

export function select(samples, name) {
  return samples.filter((x) => x.name === name);
}

export { get };
