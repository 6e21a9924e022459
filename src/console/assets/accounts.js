// Accounts: look one up, and an account's page: status, evidence, the entitlement decision
// with its explanation, its exception requests (reviewers and admins), and suspend or
// reactivate (moderators and admins). Moderators see the account itself only: the API gives
// them nothing more.

const MAY_SUSPEND = ['moderator', 'admin'];
const MAY_READ_EVIDENCE = ['reviewer', 'admin'];

import { get, patch, qs, seg } from './api.js';
import { exceptionsTable } from './queue.js';
import { badge, busy, code, empty, facts, field, h, link, loadMore, problem, table, time } from './ui.js';

const yesNo = (v) => (v ? badge('yes', 'ok') : badge('no', 'muted'));

export async function accountsView(ctx) {
  const fetchPage = (cursor) => get(`/v1/accounts${qs({ limit: 50, cursor })}`);
  const first = await fetchPage(null);
  const input = h('input', { id: 'account-lookup', type: 'search', autocomplete: 'off', spellcheck: 'false', required: true });
  const out = h('div', { id: 'lookup-result' });
  const button = h('button', { type: 'submit' }, 'Open');
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Find an account' },
    field('Account id or external id', input, 'e.g. acc_… or the platform’s own user id'),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    out.replaceChildren();
    const value = input.value.trim();
    if (!value) {
      out.replaceChildren(problem({ message: 'Type an account id or external id.' }));
      input.focus();
      return;
    }
    try {
      const found = await busy(button, 'Looking up…', async () => {
        const byExternal = await get(`/v1/accounts${qs({ external_id: value })}`);
        if (byExternal.items.length) return byExternal.items[0];
        if (value.startsWith('acc_')) return get(`/v1/accounts/${seg(value)}`);
        return null;
      });
      if (found) ctx.go(`#/accounts/${seg(found.id)}`);
      else out.replaceChildren(problem({ message: `No account has the id or external id “${value}”.` }));
    } catch (err) {
      out.replaceChildren(problem(err));
    }
  });
  let list;
  if (first.items.length === 0) {
    list = empty('There are no accounts yet.');
  } else {
    const t = table('Accounts', [
      ['Account', (a) => link(`#/accounts/${seg(a.id)}`, code(a.id))],
      ['External id', (a) => a.external_id],
      ['Name', (a) => a.display_name || '—'],
      ['Status', (a) => badge(a.status)],
      ['Created', (a) => time(a.created_at)],
    ], first.items);
    list = h('div', {}, t.el, loadMore(first.next_cursor, fetchPage, t.addRows));
  }
  return h('section', {}, h('h1', {}, 'Accounts'), form, out, h('h2', {}, 'All accounts'), list);
}

function entitlementsSection(ent) {
  const names = Object.keys(ent.entitlements);
  return h('section', { 'aria-labelledby': 'ent-h' },
    h('h2', { id: 'ent-h' }, 'Entitlements'),
    h('p', { class: 'muted' }, 'Policy ', code(ent.policy)),
    names.length === 0 ? empty('The policy defines no entitlements.') : names.map((name) => {
      const d = ent.entitlements[name];
      return h('div', { class: `decision-card ${d.granted ? 'ok' : 'bad'}`, id: `entitlement-${name}` },
        h('h3', {}, code(name), ' ', d.granted ? badge('granted', 'ok') : badge('not granted', 'bad')),
        h('p', { class: 'reason' }, d.reason),
        facts([
          ['Satisfied by', d.satisfied_by.length ? d.satisfied_by.join(', ') : '—'],
          ['Needs one of', d.granted ? undefined
            : (d.missing.length ? d.missing.map((alt) => alt.join(' + ')).join(' or ') : '—')],
        ]));
    }));
}

function statusAction(ctx, account) {
  if (!MAY_SUSPEND.includes(ctx.me.role)) return null;
  const suspend = account.status === 'active';
  const target = suspend ? 'suspended' : 'active';
  const label = suspend ? 'Suspend account' : 'Reactivate account';
  const start = h('button', { type: 'button', id: 'status-start', class: suspend ? 'danger' : 'primary' }, `${label}…`);
  const confirm = h('button', { type: 'button', id: 'status-confirm', class: suspend ? 'danger' : 'primary' },
    suspend ? 'Yes, suspend' : 'Yes, reactivate');
  const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel');
  const ask = h('div', { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm' },
    h('p', {}, suspend
      ? 'Suspending withdraws every entitlement at once, on every instance within a second.'
      : 'Reactivating restores entitlements that the account’s evidence supports.'),
    confirm, ' ', cancel);
  const out = h('div');
  start.addEventListener('click', () => {
    ask.hidden = false;
    start.hidden = true;
    confirm.focus();
  });
  cancel.addEventListener('click', () => {
    ask.hidden = true;
    start.hidden = false;
    start.focus();
  });
  confirm.addEventListener('click', async () => {
    out.replaceChildren();
    try {
      await busy(confirm, 'Saving…', () => patch(`/v1/accounts/${seg(account.id)}`, { status: target }));
      ctx.flash(suspend ? 'Account suspended.' : 'Account reactivated.');
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err));
    }
  });
  return h('div', { class: 'actions' }, start, ask, out);
}

/** The account's heading and facts: what every role that may open the page sees. */
function header(account) {
  return [
    h('p', { class: 'crumbs' }, link('#/accounts', '← Accounts')),
    h('h1', {}, 'Account ', code(account.id)),
    facts([
      ['Status', h('span', { id: 'account-status' }, badge(account.status))],
      ['External id', account.external_id],
      ['Display name', account.display_name || '—'],
      ['Created', time(account.created_at)],
      ['Email verified', yesNo(account.email_verified)],
      ['Phone verified', yesNo(account.phone_verified)],
    ]),
  ];
}

export async function accountView(ctx) {
  const id = ctx.params[0];
  const path = `/v1/accounts/${seg(id)}`;
  if (!MAY_READ_EVIDENCE.includes(ctx.me.role)) {
    const account = await get(path);
    return h('article', {}, ...header(account), statusAction(ctx, account));
  }
  const [account, evidence, entitlements, exceptions] = await Promise.all([
    get(path),
    get(`${path}/evidence?limit=200`),
    get(`${path}/entitlements`),
    get(`/v1/exceptions${qs({ account_id: id, limit: 200 })}`),
  ]);
  return h('article', {},
    ...header(account),
    statusAction(ctx, account),
    entitlementsSection(entitlements),
    h('section', { 'aria-labelledby': 'evidence-h' },
      h('h2', { id: 'evidence-h' }, 'Evidence'),
      evidence.items.length === 0 ? empty('No evidence recorded.') : table('Evidence', [
        ['Kind', (e) => e.kind],
        ['Status', (e) => badge(e.status)],
        ['Source', (e) => code(e.source)],
        ['Verified', (e) => time(e.verified_at)],
        ['Ends', (e) => time(e.expires_at)],
      ], evidence.items).el),
    h('section', { 'aria-labelledby': 'exc-h' },
      h('h2', { id: 'exc-h' }, 'Exception requests'),
      exceptions.items.length === 0 ? empty('None.') : exceptionsTable('Exception requests', exceptions.items).el));
}
