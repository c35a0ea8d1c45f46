// charts.js — the dashboard's charts, drawn as inline SVG by this small code (no library):
// horizontal bars for categories (one or two series), columns for a time series, and the
// waterfall of a request's attempts. Each chart is a <figure> with a caption, an SVG labelled
// for screen readers (role=img and a summary) and the same figures as a visually hidden table,
// so nothing is shown only as a picture. SVG scales to its box (viewBox), so a narrow window
// gets a narrower chart, not a scroll bar.
import { h, s } from './dom.js';

const W = 480; // viewBox width; the height follows the rows

function figure(id, title, summary, svg, columns, rows, legend) {
  return h('figure', { class: 'chart', 'data-chart': id },
    h('figcaption', { id: `${id}-title` }, title),
    svg ?? h('p', { class: 'empty' }, 'No data in this window.'),
    legend,
    h('div', { class: 'sr-only' }, h('table', {},
      h('caption', {}, title),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))))));
}

function legendOf(series) {
  if (series.length < 2) return null;
  return h('div', { class: 'legend', 'aria-hidden': 'true' }, series.map((x, i) => h('span', { class: `l${i + 1}` }, x.name)));
}

// Horizontal bars. data: [{label, values: [n, …]}]; series: [{name, format}] (one or two).
export function bars(id, title, data, series) {
  const rows = data.map((d) => [d.label, ...d.values.map((v, i) => series[i].format(v))]);
  const columns = ['', ...series.map((x) => x.name)];
  if (!data.length) return figure(id, title, '', null, columns, rows);
  const max = Math.max(...data.flatMap((d) => d.values), 0) || 1;
  const labelW = 150, valueW = 80, barW = W - labelW - valueW, rowH = 10 + 14 * series.length;
  const height = data.length * rowH + 4;
  const summary = `${title}: ` + data.map((d) => `${d.label} ${d.values.map((v, i) => series[i].format(v)).join(' / ')}`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': summary, 'aria-labelledby': null },
    data.map((d, r) => {
      const y = r * rowH + 4;
      return s('g', { 'data-label': d.label },
        s('text', { x: labelW - 6, y: y + 6 + 7 * series.length, 'text-anchor': 'end' }, clip(d.label, 24)),
        d.values.map((v, i) => [
          s('rect', { class: `bar-${i + 1}`, x: labelW, y: y + i * 14, height: 12, width: Math.max(v > 0 ? 1 : 0, (v / max) * barW) }),
          s('text', { x: labelW + Math.max(0, (v / max) * barW) + 4, y: y + i * 14 + 10 }, series[i].format(v)),
        ]));
    }));
  return figure(id, title, summary, svg, columns, rows, legendOf(series));
}

// Columns over time. points: [{label, values: [n, …]}] in time order; series as for bars().
export function columns(id, title, points, series) {
  const rows = points.map((p) => [p.label, ...p.values.map((v, i) => series[i].format(v))]);
  const cols = ['', ...series.map((x) => x.name)];
  if (!points.length) return figure(id, title, '', null, cols, rows);
  const height = 180, top = 14, bottom = 30, left = 40, plotW = W - left - 8, plotH = height - top - bottom;
  const max = Math.max(...points.flatMap((p) => p.values), 0) || 1;
  const slot = plotW / points.length, barW = Math.max(2, (slot - 4) / series.length);
  const every = Math.ceil(points.length / 8); // at most 8 time labels
  const summary = `${title}: ` + points.map((p) => `${p.label} ${p.values.map((v, i) => `${series[i].name} ${series[i].format(v)}`).join(', ')}`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': summary },
    s('line', { class: 'axis', x1: left, x2: W - 8, y1: top + plotH, y2: top + plotH }),
    s('text', { x: left - 4, y: top + 4, 'text-anchor': 'end' }, series[0].format(max)),
    s('text', { x: left - 4, y: top + plotH, 'text-anchor': 'end' }, '0'),
    points.map((p, i) => s('g', { 'data-label': p.label },
      p.values.map((v, k) => s('rect', {
        class: `bar-${k + 1}`, x: left + i * slot + 2 + k * barW, width: barW,
        y: top + plotH - (v / max) * plotH, height: (v / max) * plotH,
      })),
      i % every === 0 ? s('text', { x: left + i * slot + slot / 2, y: height - 12, 'text-anchor': 'middle' }, p.short ?? p.label) : null)));
  return figure(id, title, summary, svg, cols, rows, legendOf(series));
}

// A request's attempts as a waterfall: each attempt's wait (a retry's backoff) then its own
// time, one row each, in the order aigw made them. The request log keeps each attempt's
// duration and wait, not its start, so a hedge (which runs beside the attempt before it) is
// drawn after it, and its row says "hedge".
export function waterfall(id, attempts, totalMs) {
  const rows = attempts.map((a, i) => [String(i + 1), `${a.provider ?? ''} ${a.model ?? ''}`, a.role ?? '', a.outcome ?? '', a.status ?? '', `${(a.wait_ms ?? 0).toFixed(1)} ms`, `${(a.ms ?? 0).toFixed(1)} ms`]);
  const cols = ['#', 'target', 'role', 'outcome', 'status', 'wait', 'time'];
  if (!attempts.length) return figure(id, 'Attempts', '', null, cols, rows);
  let t = 0;
  const spans = attempts.map((a) => {
    const start = t + (a.wait_ms ?? 0);
    t = start + (a.ms ?? 0);
    return { a, waitStart: start - (a.wait_ms ?? 0), start, end: t };
  });
  const span = Math.max(t, totalMs ?? 0) || 1;
  const labelW = 170, plotW = W - labelW - 70, rowH = 22, height = spans.length * rowH + 22;
  const x = (v) => labelW + (v / span) * plotW;
  const summary = 'Attempts: ' + spans.map(({ a }, i) => `${i + 1}. ${a.provider}/${a.model} ${a.role} ${a.outcome} ${a.status ?? ''} after ${(a.wait_ms ?? 0).toFixed(1)} ms wait, ${(a.ms ?? 0).toFixed(1)} ms`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': summary },
    spans.map(({ a, waitStart, start, end }, i) => {
      const y = i * rowH + 4;
      const good = a.outcome === 'ok';
      return s('g', { 'data-attempt': i + 1 },
        s('text', { x: labelW - 6, y: y + 12, 'text-anchor': 'end' }, clip(`${a.role ?? ''} ${a.provider ?? ''}/${a.model ?? ''}`, 28)),
        start > waitStart ? s('rect', { class: 'wait', x: x(waitStart), y, height: 14, width: Math.max(1, x(start) - x(waitStart)) }) : null,
        s('rect', { class: good ? 'bar-1' : 'bar-bad', x: x(start), y, height: 14, width: Math.max(2, x(end) - x(start)) }),
        s('text', { x: Math.min(x(end) + 4, W - 66), y: y + 12 }, `${a.status ?? a.outcome} ${(a.ms ?? 0).toFixed(1)} ms`));
    }),
    s('line', { class: 'axis', x1: labelW, x2: labelW + plotW, y1: height - 16, y2: height - 16 }),
    s('text', { x: labelW, y: height - 4 }, '0'),
    s('text', { x: labelW + plotW, y: height - 4, 'text-anchor': 'end' }, `${span.toFixed(span >= 10 ? 0 : 1)} ms`));
  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', { class: 'l1' }, 'attempt'), h('span', { class: 'lw' }, 'wait before it'));
  return figure(id, 'Attempts', summary, svg, cols, rows, legend);
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
