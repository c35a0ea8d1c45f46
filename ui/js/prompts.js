// prompts.js — prompt templates: the list (GET /admin/prompts: latest version, labels), one
// template's versions and labels (GET /admin/prompts/{id}), and pointing a label at a version
// (POST /admin/prompts/{id}/labels). New versions are made by the admin API or `aigw` scripts;
// the page shows them.
import { get, post, enc } from './api.js';
import { h, table, field, when, announce, showError } from './dom.js';

const labelText = (v) => (typeof v === 'object' && v?.split ? `split ${v.split.map((x) => `v${x.version}:${x.weight}`).join(' ')}` : `v${v}`);

export async function render(root, args) {
  if (args[0]) return one(root, args[0]);
  const list = (await get('/admin/prompts')).data;
  root.append(table('Prompt templates', [{ label: 'Template' }, { label: 'Latest version', num: true }, { label: 'Labels' }],
    list.map((p) => [h('a', { href: `#/prompts/${enc(p.id)}` }, p.id), String(p.latest_version), Object.entries(p.labels ?? {}).map(([l, v]) => `${l} → ${labelText(v)}`).join(', ') || '—'])));
}

async function one(root, id) {
  const p = await get(`/admin/prompts/${enc(id)}`);
  const label = h('input', { name: 'label', required: true, autocomplete: 'off' });
  const version = h('select', { name: 'version' }, p.versions.map((v) => h('option', { value: v.version }, `v${v.version}`)));
  const form = h('form', { 'aria-label': 'Point a label at a version' }, field('Label', label), field('Version', version), h('button', { type: 'submit' }, 'Set label'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    try {
      await post(`/admin/prompts/${enc(id)}/labels`, { label: label.value.trim(), version: Number(version.value) });
      announce(`Label ${label.value.trim()} now names v${version.value}.`);
      root.replaceChildren(root.firstChild);
      await one(root, id);
    } catch (err) { showError(`Set label: ${err.message}`); }
  });
  root.append(
    h('p', {}, h('a', { href: '#/prompts' }, '← All templates')),
    h('h2', {}, `Template ${p.id}`),
    h('h2', {}, 'Labels'),
    table('Labels', [{ label: 'Label' }, { label: 'Version' }], Object.entries(p.labels ?? {}).map(([l, v]) => [l, labelText(v)])),
    form,
    h('h2', {}, 'Versions'),
    ...p.versions.slice().reverse().map((v) => h('section', { 'aria-label': `Version ${v.version}` },
      h('h3', {}, `v${v.version} — ${when(v.created_at)}${v.model ? ` — model ${v.model}` : ''}`),
      v.description ? h('p', {}, v.description) : null,
      h('pre', {}, JSON.stringify(v.messages ?? v.text ?? v, null, 2)))));
}
