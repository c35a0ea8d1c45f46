// dom.js — small helpers every page uses: build elements without innerHTML (nothing the API
// returns is ever parsed as markup), announce to screen readers, format numbers and times.
const SVG_NS = 'http://www.w3.org/2000/svg';

// h('button', {type: 'button', onclick: fn}, 'Text', child…): an HTML element. Attributes
// starting with "on" become listeners; false/null ones are left out; children may be strings,
// nodes, arrays or null.
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// The same for SVG elements.
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A polite message for everyone (and screen readers), cleared after a while.
let statusTimer;
export function announce(msg) {
  const el = document.getElementById('status');
  el.textContent = msg;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { el.textContent = ''; }, 8000);
}

// An error, read out at once (role=alert); stays until the next action clears it.
export function showError(msg) {
  document.getElementById('error').textContent = msg || '';
}

export const money = (v) => (v === null || v === undefined ? '—' : `$${Number(v).toFixed(v >= 1 ? 2 : 6)}`);
export const ms = (v) => (v === null || v === undefined ? '—' : `${Number(v).toFixed(v >= 100 ? 0 : 1)} ms`);
export const int = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('en'));
export const pct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—');
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// A table: columns [{label, num?}], rows of cells (strings or nodes). caption for screen readers.
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.length
        ? rows.map((r) => h('tr', {}, r.map((cell, i) => h('td', { class: columns[i].num ? 'num' : null }, cell))))
        : h('tr', {}, h('td', { colspan: columns.length }, 'Nothing yet.')))));
}

// A labelled form field: label + control (input/select/textarea given as an element).
export function field(label, control, help) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const helpId = help ? `${id}-help` : null;
  if (helpId) control.setAttribute('aria-describedby', helpId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    help ? h('span', { id: helpId, class: 'help' }, help) : null);
}
