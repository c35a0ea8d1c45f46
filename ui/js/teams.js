// teams.js — teams (GET/POST /admin/teams, PATCH and DELETE /admin/teams/{id}): each with its
// model globs, budget and its spend in the current period, shared rate limits, and whether it
// is blocked; a team made here, its budget set, blocked or unblocked, deleted. A team's keys
// name it by team_id (the Keys page, or the admin API); blocking one refuses every key of it.
import { get, post, patch, del, enc } from './api.js';
import { h, table, field, money, when, announce, showError } from './dom.js';

const list = (v) => String(v || '').split(',').map((x) => x.trim()).filter(Boolean);

export async function render(root) {
  const listBox = h('div', { id: 'teams-list' });
  const refresh = async () => {
    const teams = (await get('/admin/teams')).data;
    listBox.replaceChildren(table('Teams', [{ label: 'Team' }, { label: 'Alias' }, { label: 'Models' }, { label: 'Spend', num: true }, { label: 'Budget', num: true }, { label: 'Period' }, { label: 'Resets' }, { label: 'Limits' }, { label: 'State' }, { label: 'Actions' }],
      teams.map((t) => {
        const budget = h('input', { type: 'number', min: '0', step: 'any', inputmode: 'decimal', size: '8', name: 'max_budget', 'data-team': t.team_id, 'aria-label': `Budget in USD of team ${t.team_id} (empty: none)`, value: t.max_budget ?? '' });
        return [t.team_id, t.team_alias ?? '—', (t.models ?? []).join(', ') || 'any', money(t.spend), money(t.max_budget), t.budget_duration ?? '—', when(t.budget_reset_at),
          [t.rpm_limit !== null ? `${t.rpm_limit} rpm` : null, t.tpm_limit !== null ? `${t.tpm_limit} tpm` : null].filter(Boolean).join(', ') || '—',
          h('span', { class: t.blocked ? 's-bad' : 's-ok', 'data-state': t.team_id }, t.blocked ? 'blocked' : 'active'),
          h('div', { class: 'row-actions' },
            budget,
            h('button', { type: 'button', class: 'secondary', 'data-action': 'budget', 'data-team': t.team_id, 'aria-label': `Set the budget of team ${t.team_id}`, onclick: () => change(t, { max_budget: budget.value.trim() === '' ? null : Number(budget.value) }, 'budget set') }, 'Set budget'),
            h('button', { type: 'button', class: 'secondary', 'data-action': t.blocked ? 'unblock' : 'block', 'data-team': t.team_id, 'aria-label': `${t.blocked ? 'Unblock' : 'Block'} team ${t.team_id}`, onclick: () => change(t, { blocked: !t.blocked }, t.blocked ? 'unblocked' : 'blocked') }, t.blocked ? 'Unblock' : 'Block'),
            h('button', { type: 'button', class: 'danger', 'data-action': 'delete', 'data-team': t.team_id, 'aria-label': `Delete team ${t.team_id}`, onclick: () => remove(t) }, 'Delete'))];
      })));
  };
  const change = async (t, body, what) => {
    showError('');
    try { await patch(`/admin/teams/${enc(t.team_id)}`, body); announce(`Team ${t.team_id}: ${what}.`); await refresh(); } catch (e) { showError(`Team ${t.team_id}: ${e.message}`); }
  };
  const remove = async (t) => {
    if (!window.confirm(`Delete the team ${t.team_id}? Its keys keep its name but no longer share its budget or limits.`)) return;
    try { await del(`/admin/teams/${enc(t.team_id)}`); announce(`Team ${t.team_id} deleted.`); await refresh(); } catch (e) { showError(`Delete ${t.team_id}: ${e.message}`); }
  };
  const id = h('input', { name: 'team_id', required: true, autocomplete: 'off' });
  const alias = h('input', { name: 'team_alias', autocomplete: 'off' });
  const models = h('input', { name: 'models', autocomplete: 'off', placeholder: 'gpt-4o*, fast' });
  const budget = h('input', { name: 'max_budget', inputmode: 'decimal', autocomplete: 'off' });
  const period = h('input', { name: 'budget_duration', autocomplete: 'off', placeholder: '30d' });
  const form = h('form', { 'aria-label': 'Create a team', id: 'create-team' },
    field('Team id', id), field('Alias', alias), field('Models (globs, comma-separated; empty: any)', models),
    field('Budget in USD (empty: none)', budget), field('Budget period (30d, 1d, 1h; empty: for ever)', period),
    h('button', { type: 'submit' }, 'Create team'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    const body = { team_id: id.value.trim() };
    if (alias.value.trim()) body.team_alias = alias.value.trim();
    if (list(models.value).length) body.models = list(models.value);
    if (budget.value.trim()) body.max_budget = Number(budget.value);
    if (period.value.trim()) body.budget_duration = period.value.trim();
    try { await post('/admin/teams', body); form.reset(); announce(`Team ${body.team_id} created.`); await refresh(); } catch (err) { showError(`Create team: ${err.message}`); }
  });
  root.append(h('p', { class: 'help' }, 'A team\'s budget and limits are shared by its keys; a blocked team\'s keys are refused (403) until it is unblocked.'),
    h('h2', {}, 'Create a team'), form, h('h2', {}, 'Teams'), listBox);
  await refresh();
}
