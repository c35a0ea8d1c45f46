// app.js — the dashboard's entry: the login (the key goes once to POST /ui/api/login and is
// forgotten; the session is an HttpOnly cookie and a CSRF token kept in memory), the pages
// routed on the URL's fragment (#/logs, #/logs/ID …: nothing below /ui needs the server), and
// logging out. Each page module exports render(root, args) and builds its part of the page
// from the admin API's answers.
import { call, setCsrf, whenSessionLost, ApiError } from './api.js';
import { announce, showError, clear, h } from './dom.js';
import * as overview from './overview.js';
import * as logs from './logs.js';
import * as keys from './keys.js';
import * as teams from './teams.js';
import * as spend from './spend.js';
import * as routes from './routes.js';
import * as prompts from './prompts.js';
import * as alerts from './alerts.js';

const pages = {
  overview: { title: 'Overview', render: overview.render },
  logs: { title: 'Request log', render: logs.render },
  keys: { title: 'Keys', render: keys.renderKeys },
  teams: { title: 'Teams', render: teams.render },
  spend: { title: 'Spend', render: spend.render },
  vkeys: { title: 'Virtual keys', render: keys.renderVirtualKeys },
  routes: { title: 'Routes and config', render: routes.render },
  prompts: { title: 'Prompt templates', render: prompts.render },
  alerts: { title: 'Alerts', render: alerts.render },
};

const $ = (id) => document.getElementById(id);
let loggedIn = false;
let renderSeq = 0;

function showLogin(message) {
  loggedIn = false;
  setCsrf(null);
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  clear($('page')).hidden = true;
  $('login').hidden = false;
  document.title = 'Log in — aigw';
  if (message) showError(message);
  $('login-key').focus();
}

function startSession(session) {
  loggedIn = true;
  setCsrf(session.csrf_token);
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `Signed in with the ${session.who === 'master key' ? 'master key' : `admin key ${session.who}`}`;
  $('page').hidden = false;
  route();
}

async function route() {
  if (!loggedIn) return;
  const [name, ...args] = (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  const page = pages[name] ?? pages.overview;
  const key = pages[name] ? name : 'overview';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === key) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} — aigw`;
  showError('');
  const seq = ++renderSeq;
  const root = clear($('page'));
  root.append(h('p', { class: 'help' }, 'Loading…'));
  const section = h('section', { 'aria-labelledby': 'page-title', 'data-page': key }, h('h1', { id: 'page-title', tabindex: '-1' }, page.title));
  try {
    await page.render(section, args.map(decodeURIComponent));
  } catch (e) {
    if (seq !== renderSeq) return;
    if (!(e instanceof ApiError && e.status === 401)) showError(`${page.title}: ${e.message}`);
  }
  if (seq !== renderSeq) return; // a newer navigation won
  clear(root).append(section);
  root.dataset.ready = key;
}

async function login(event) {
  event.preventDefault();
  const input = $('login-key');
  const key = input.value;
  if (!key) {
    showError('Enter the master key or an admin key.');
    input.focus();
    return;
  }
  try {
    const session = await call('POST', '/ui/api/login', { key });
    input.value = '';
    showError('');
    announce('Logged in.');
    startSession(session);
    $('page-title')?.focus();
  } catch (e) {
    input.value = '';
    showError(e.status === 401 ? 'That key was refused: it is not the master key or an enabled admin key.' : e.message);
    input.focus();
  }
}

async function logout() {
  try {
    await call('POST', '/ui/api/logout');
    announce('Logged out.');
  } catch (e) {
    if (e.status !== 401) showError(`Logout: ${e.message}`);
  }
  history.replaceState(null, '', '#/overview');
  showLogin();
}

async function start() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  whenSessionLost(() => { if (loggedIn) showLogin('The session ended: log in again.'); });
  try {
    startSession(await call('GET', '/ui/api/session'));
  } catch (e) {
    showLogin(e.status === 401 ? '' : e.message);
  }
}

start();
