// keys.js — gateway keys (GET/POST /admin/keys, …/disable, …/enable, …/rotate) and virtual
// keys (GET/POST /admin/virtual-keys, …/rotate, DELETE). A new or rotated key's secret is shown
// once, in a box the page forgets on the next navigation; aigw keeps only its digest.
import { get, post, del, enc } from './api.js';
import { h, table, field, when, money, announce, showError } from './dom.js';

function secretBox(title, secret) {
  return h('div', { class: 'secret', role: 'region', 'aria-label': title, tabindex: '-1', id: 'new-secret' },
    h('p', {}, h('strong', {}, title), ' — shown once: copy it now, aigw cannot show it again.'),
    h('code', { 'data-secret': '' }, secret));
}

const list = (v) => String(v || '').split(',').map((x) => x.trim()).filter(Boolean);

export async function renderKeys(root) {
  const out = h('div', {});
  const listBox = h('div', { id: 'keys-list' });
  const refresh = async () => {
    const keys = (await get('/admin/keys')).data;
    listBox.replaceChildren(table('Gateway keys', [{ label: 'Alias' }, { label: 'Id' }, { label: 'Key' }, { label: 'State' }, { label: 'Admin' }, { label: 'Models' }, { label: 'Spend', num: true }, { label: 'Expires' }, { label: 'Actions' }],
      keys.map((k) => [k.key_alias ?? '—', k.id, k.key_name, h('span', { class: k.enabled ? 's-ok' : 's-bad' }, k.enabled ? 'enabled' : 'disabled'), k.admin ? 'yes' : 'no',
        (k.models ?? []).join(', ') || 'any', money(k.spend), when(k.expires),
        h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary', 'data-action': k.enabled ? 'disable' : 'enable', 'data-key': k.key_alias ?? k.id, 'aria-label': `${k.enabled ? 'Disable' : 'Enable'} key ${k.key_alias ?? k.id}`, onclick: () => act(k, k.enabled ? 'disable' : 'enable') }, k.enabled ? 'Disable' : 'Enable'),
          h('button', { type: 'button', class: 'secondary', 'data-action': 'rotate', 'data-key': k.key_alias ?? k.id, 'aria-label': `Rotate key ${k.key_alias ?? k.id}`, onclick: () => act(k, 'rotate') }, 'Rotate'))])));
  };
  const act = async (k, what) => {
    showError('');
    if (what === 'rotate' && !confirmed(`Rotate ${k.key_alias ?? k.id}? The old secret stops working at once.`)) return;
    try {
      const r = await post(`/admin/keys/${enc(k.id)}/${what}`);
      out.replaceChildren(what === 'rotate' ? secretBox(`New secret of ${k.key_alias ?? k.id}`, r.key) : '');
      announce(`Key ${k.key_alias ?? k.id}: ${what === 'rotate' ? 'rotated' : `${what}d`}.`);
      await refresh();
      if (what === 'rotate') document.getElementById('new-secret')?.focus();
    } catch (e) { showError(`Key ${k.key_alias ?? k.id}: ${e.message}`); }
  };
  const alias = h('input', { name: 'key_alias', autocomplete: 'off' });
  const models = h('input', { name: 'models', autocomplete: 'off', placeholder: 'gpt-4o*, fast' });
  const budget = h('input', { name: 'max_budget', inputmode: 'decimal', autocomplete: 'off' });
  const admin = h('input', { type: 'checkbox', name: 'admin' });
  const form = h('form', { 'aria-label': 'Create a key', id: 'create-key' },
    field('Alias', alias), field('Models (globs, comma-separated; empty: any)', models), field('Budget in USD (empty: none)', budget),
    h('div', { class: 'field' }, h('label', {}, admin, ' admin key (needs the master key)')),
    h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    const body = {};
    if (alias.value.trim()) body.key_alias = alias.value.trim();
    if (list(models.value).length) body.models = list(models.value);
    if (budget.value.trim()) body.max_budget = Number(budget.value);
    if (admin.checked) body.admin = true;
    try {
      const r = await post('/admin/keys', body);
      form.reset();
      out.replaceChildren(secretBox(`Key ${r.key_alias ?? r.id}`, r.key));
      announce(`Key ${r.key_alias ?? r.id} created.`);
      await refresh();
      document.getElementById('new-secret')?.focus();
    } catch (err) { showError(`Create key: ${err.message}`); }
  });
  root.append(h('h2', {}, 'Create a key'), form, out, h('h2', {}, 'Keys'), listBox);
  await refresh();
}

export async function renderVirtualKeys(root) {
  const listBox = h('div', { id: 'vkeys-list' });
  const refresh = async () => {
    const vkeys = (await get('/admin/virtual-keys')).data;
    listBox.replaceChildren(table('Virtual keys', [{ label: 'Name' }, { label: 'Provider' }, { label: 'Base URL' }, { label: 'Secret' }, { label: 'Version', num: true }, { label: 'Updated' }, { label: 'Actions' }],
      vkeys.map((v) => [v.name, v.provider, v.base_url ?? '(the provider’s)', v.hint, String(v.version), when(v.updated_at),
        h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary', 'aria-label': `Rotate virtual key ${v.name}`, onclick: () => rotate(v) }, 'Rotate'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete virtual key ${v.name}`, onclick: () => remove(v) }, 'Delete'))])));
  };
  const rotate = async (v) => {
    const secret = window.prompt(`New secret for ${v.name} (the provider's key):`);
    if (!secret) return;
    try { await post(`/admin/virtual-keys/${enc(v.name)}/rotate`, { secret }); announce(`Virtual key ${v.name} rotated.`); await refresh(); } catch (e) { showError(`Rotate ${v.name}: ${e.message}`); }
  };
  const remove = async (v) => {
    if (!confirmed(`Delete the virtual key ${v.name}? Requests naming it will fail.`)) return;
    try { await del(`/admin/virtual-keys/${enc(v.name)}`); announce(`Virtual key ${v.name} deleted.`); await refresh(); } catch (e) { showError(`Delete ${v.name}: ${e.message}`); }
  };
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const provider = h('input', { name: 'provider', required: true, autocomplete: 'off', placeholder: 'openai' });
  const secret = h('input', { name: 'secret', type: 'password', required: true, autocomplete: 'off' });
  const baseUrl = h('input', { name: 'base_url', autocomplete: 'off' });
  const form = h('form', { 'aria-label': 'Store a virtual key' },
    field('Name', name), field('Provider type', provider), field('Secret', secret), field('Base URL (optional)', baseUrl),
    h('button', { type: 'submit' }, 'Store'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    const body = { name: name.value.trim(), provider: provider.value.trim(), secret: secret.value };
    if (baseUrl.value.trim()) body.base_url = baseUrl.value.trim();
    try { await post('/admin/virtual-keys', body); form.reset(); announce(`Virtual key ${body.name} stored.`); await refresh(); } catch (err) { showError(`Store virtual key: ${err.message}`); }
  });
  root.append(h('p', { class: 'help' }, 'Provider credentials kept in the store, sealed under the vault key; only a hint of each is ever shown.'),
    h('h2', {}, 'Store a virtual key'), form, h('h2', {}, 'Virtual keys'), listBox);
  await refresh();
}

// window.confirm, which keyboard and screen-reader users can answer; the tests accept it.
function confirmed(question) {
  return window.confirm(question);
}
