// The console's shell: the session (API key in this tab's sessionStorage only), navigation by
// role, and a small hash router. Each page lives in its own module.

import { get, onSessionLost, setKey } from './api.js';
import { h, loading, notice, problem } from './ui.js';
import { signInView } from './signin.js';
import { overviewView } from './overview.js';
import { queueView } from './queue.js';
import { exceptionView } from './exception.js';
import { accountsView, accountView } from './accounts.js';
import { auditView } from './audit.js';
import { clientsView, keysView } from './admin.js';
import { webhooksView, webhookView } from './webhooks.js';
import { revokeTokenView } from './tokens.js';

const STORAGE = 'vouch.console.key';
// Who sees which page: the same roles the API lets do what the page does (x-vouch-roles).
const REVIEW = ['reviewer', 'admin'];
const ACCOUNTS = ['reviewer', 'moderator', 'admin'];
const MODERATE = ['moderator', 'admin'];
const ADMIN = ['admin'];
const CONSOLE_ROLES = ['reviewer', 'moderator', 'admin'];

const ROUTES = [
  { path: /^\/overview$/, view: overviewView, roles: REVIEW, nav: 'overview' },
  { path: /^\/queue$/, view: queueView, roles: REVIEW, nav: 'queue' },
  { path: /^\/exceptions\/([^/]+)$/, view: exceptionView, roles: REVIEW, nav: 'queue' },
  { path: /^\/accounts$/, view: accountsView, roles: ACCOUNTS, nav: 'accounts' },
  { path: /^\/accounts\/([^/]+)$/, view: accountView, roles: ACCOUNTS, nav: 'accounts' },
  { path: /^\/revoke$/, view: revokeTokenView, roles: MODERATE, nav: 'revoke' },
  { path: /^\/audit$/, view: auditView, roles: ADMIN, nav: 'audit' },
  { path: /^\/clients$/, view: clientsView, roles: ADMIN, nav: 'clients' },
  { path: /^\/keys$/, view: keysView, roles: ADMIN, nav: 'keys' },
  { path: /^\/webhooks$/, view: webhooksView, roles: ADMIN, nav: 'webhooks' },
  { path: /^\/webhooks\/([^/]+)$/, view: webhookView, roles: ADMIN, nav: 'webhooks' },
];

const NAV = [
  ['overview', 'Overview', REVIEW],
  ['queue', 'Exception queue', REVIEW],
  ['accounts', 'Accounts', ACCOUNTS],
  ['revoke', 'Revoke a token', MODERATE],
  ['audit', 'Audit log', ADMIN],
  ['clients', 'API clients', ADMIN],
  ['keys', 'Signing keys', ADMIN],
  ['webhooks', 'Webhooks', ADMIN],
];

const session = { key: null, me: null };
let signInMessage = null;
let flashed = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  return { path: path || '/', query };
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const ctx = {
  get me() {
    return session.me;
  },
  go,
  reload: () => route(),
  /** A message shown at the top of the next page rendered (after an action). */
  flash(text, kind = 'ok') {
    flashed = { text, kind };
  },
};

function chrome(active) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const me = session.me;
  nav.hidden = !me;
  who.hidden = !me;
  if (!me) {
    nav.replaceChildren();
    return;
  }
  document.getElementById('who-name').textContent = me.principal && me.principal !== me.name
    ? `${me.name} (${me.principal})`
    : me.name;
  const role = document.getElementById('who-role');
  role.textContent = me.role;
  role.className = `badge ${CONSOLE_ROLES.includes(me.role) ? 'info' : 'muted'}`;
  nav.replaceChildren(h('ul', {},
    NAV.filter(([, , roles]) => roles.includes(me.role)).map(([id, label]) =>
      h('li', {}, h('a', { href: `#/${id}`, 'aria-current': id === active ? 'page' : null }, label)))));
}

function show(main, ...nodes) {
  main.removeAttribute('aria-busy');
  main.replaceChildren(...nodes);
  // Focus moves to the new page: its first field when it asks for one, else its heading.
  const field = main.querySelector('[data-autofocus]');
  const heading = main.querySelector('h1');
  if (field) {
    field.focus();
  } else if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

function homeView() {
  const me = session.me;
  return h('section', {},
    h('h1', {}, 'Welcome'),
    h('p', {}, `This key belongs to ${me.name}, a ${me.role} client.`),
    h('p', {}, 'The console is for reviewers, moderators and admins: a ', me.role,
      ' key can neither review exceptions nor read accounts here. Sign out and use a reviewer, moderator or admin key.'));
}

async function route() {
  const gen = ++generation;
  const main = document.getElementById('main');
  if (!session.me) {
    chrome(null);
    const message = signInMessage;
    signInMessage = null;
    show(main, signInView({ message, onSignedIn: signedIn }));
    return;
  }
  const { path, query } = parseHash();
  if (path === '/') {
    if (REVIEW.includes(session.me.role)) {
      location.replace('#/overview');
      return;
    }
    if (ACCOUNTS.includes(session.me.role)) {
      location.replace('#/accounts');
      return;
    }
    chrome(null);
    show(main, homeView());
    return;
  }
  const match = ROUTES.map((r) => ({ r, m: r.path.exec(path) })).find((x) => x.m);
  if (!match) {
    chrome(null);
    show(main, h('section', {}, h('h1', {}, 'Not found'),
      h('p', {}, 'There is no such page in the console. ', h('a', { href: '#/' }, 'Go to the start page.'))));
    return;
  }
  chrome(match.r.nav);
  if (!match.r.roles.includes(session.me.role)) {
    show(main, h('section', {}, h('h1', {}, 'Not available for your role'),
      h('p', {}, `This page needs the ${match.r.roles.join(' or ')} role; you are signed in as a ${session.me.role}.`)));
    return;
  }
  const flash = flashed;
  flashed = null;
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(loading());
  let node;
  try {
    const params = match.m.slice(1).map(decodeURIComponent);
    node = await match.r.view({ ...ctx, me: session.me, params, query });
  } catch (err) {
    node = h('section', {}, h('h1', {}, 'This page could not be loaded'), problem(err),
      h('p', { class: 'actions' }, h('button', { type: 'button', onclick: () => route() }, 'Try again'),
        h('a', { href: '#/' }, 'Go to the start page')));
  }
  if (gen !== generation || !session.me) return;
  show(main, ...(flash ? [notice(flash.text, flash.kind)] : []), node);
}

function signedIn(key, me) {
  session.key = key;
  session.me = me;
  setKey(key);
  try {
    sessionStorage.setItem(STORAGE, key);
  } catch {
    // Storage may be off; the key then lives in memory until the tab reloads.
  }
  route();
}

function forget() {
  try {
    sessionStorage.removeItem(STORAGE);
  } catch {
    // Nothing was stored.
  }
}

function signOut(message) {
  session.key = null;
  session.me = null;
  setKey(null);
  forget();
  signInMessage = message || null;
  if (location.hash && location.hash !== '#/') history.replaceState(null, '', '#/');
  route();
}

onSessionLost((err) => signOut(`You were signed out: ${err.message}`));

async function start() {
  document.getElementById('sign-out').addEventListener('click', () => signOut('You signed out.'));
  window.addEventListener('hashchange', () => route());
  let key = null;
  try {
    key = sessionStorage.getItem(STORAGE);
  } catch {
    key = null;
  }
  if (key) {
    try {
      const me = await get('/v1/me', { key });
      session.key = key;
      session.me = me;
      setKey(key);
    } catch (err) {
      if (err.status === 401) forget();
      signInMessage = `Sign in again: ${err.message}`;
    }
  }
  route();
}

start();
