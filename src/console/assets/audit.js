// The audit log (admins): filters, newest first, and whether the hash chain is intact.

import { get, qs, seg } from './api.js';
import { busy, code, empty, field, h, link, loadMore, problem, select, table, time } from './ui.js';

const FILTERS = ['action', 'actor', 'target_type', 'target_id', 'since', 'until'];
const TARGET_TYPES = [
  ['', 'Any'], ['account', 'account'], ['exception', 'exception'], ['client', 'client'],
  ['signing_key', 'signing_key'],
];
const ACTIONS = [
  'account.created', 'account.updated', 'account.suspended', 'account.reactivated',
  'account.deleted', 'evidence.added', 'evidence.updated', 'exception.submitted',
  'exception.approval_recorded', 'exception.approved', 'exception.denied', 'exception.revoked',
  'exception.expired', 'exception.statement_read', 'exception.statements_purged',
  'client.created', 'client.revoked', 'key.created', 'key.rotated', 'key.removed',
  'token.revoked', 'tokens.revoked', 'verification.sent', 'verification.approved',
  'billing.subscription_applied', 'billing.customer_linked',
];

/** `datetime-local` values are read as UTC, like every time the console shows. */
const toUtc = (local) => (local ? `${local.length === 16 ? `${local}:00` : local}Z` : '');
const toLocal = (iso) => (iso ? iso.replace(/Z$|[+-]00:00$/, '').slice(0, 16) : '');

function chainStatus() {
  const out = h('div', { id: 'chain-status', class: 'chain', role: 'status' }, 'Verifying the hash chain…');
  const again = h('button', { type: 'button', class: 'quiet' }, 'Verify again');
  const run = async () => {
    try {
      const report = await busy(again, 'Verifying…', () => get('/v1/admin/audit/verify'));
      out.className = `chain ${report.intact ? 'ok' : 'bad'}`;
      out.replaceChildren(report.intact
        ? `Hash chain intact: all ${report.entries} entries verified.`
        : `Hash chain BROKEN at entry #${report.first_broken_seq}: ${report.problem || 'a link does not hold'}. `
          + `${report.entries} entries checked before it.`);
    } catch (err) {
      out.className = 'chain bad';
      out.replaceChildren(problem(err, 'Could not verify the chain:'));
    }
  };
  again.addEventListener('click', run);
  run();
  return h('div', { class: 'chain-box' }, out, again);
}

function target(entry) {
  const id = code(entry.target_id);
  if (entry.target_type === 'account') return [entry.target_type, ' ', link(`#/accounts/${seg(entry.target_id)}`, id)];
  if (entry.target_type === 'exception') return [entry.target_type, ' ', link(`#/exceptions/${seg(entry.target_id)}`, id)];
  return [entry.target_type, ' ', id];
}

export async function auditView(ctx) {
  const values = Object.fromEntries(FILTERS.map((f) => [f, ctx.query.get(f) || '']));
  const fetchPage = (cursor) => get(`/v1/admin/audit${qs({ ...values, limit: 50, cursor })}`);
  const chain = chainStatus();
  let list;
  try {
    const first = await fetchPage(null);
    if (first.items.length === 0) {
      list = empty('No audit entries match these filters.');
    } else {
      const t = table('Audit entries', [
        ['#', (e) => String(e.seq)],
        ['Time', (e) => time(e.at)],
        ['Actor', (e) => e.actor],
        ['Action', (e) => code(e.action)],
        ['Target', target],
        ['Details', (e) => h('code', { class: 'details' }, JSON.stringify(e.details))],
      ], first.items);
      list = h('div', {}, t.el, loadMore(first.next_cursor, fetchPage, t.addRows));
    }
  } catch (err) {
    list = problem(err, 'Could not load the audit log:');
  }

  const inputs = {
    action: h('input', { id: 'audit-action', type: 'text', list: 'audit-actions', value: values.action, spellcheck: 'false' }),
    actor: h('input', { id: 'audit-actor', type: 'text', value: values.actor, spellcheck: 'false' }),
    target_type: select('audit-target-type', TARGET_TYPES, values.target_type),
    target_id: h('input', { id: 'audit-target-id', type: 'text', value: values.target_id, spellcheck: 'false' }),
    since: h('input', { id: 'audit-since', type: 'datetime-local', value: toLocal(values.since) }),
    until: h('input', { id: 'audit-until', type: 'datetime-local', value: toLocal(values.until) }),
  };
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('Action', inputs.action),
    h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
    field('Actor', inputs.actor),
    field('Target type', inputs.target_type),
    field('Target id', inputs.target_id),
    field('Since (UTC)', inputs.since),
    field('Until (UTC)', inputs.until),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'reset', class: 'quiet' }, 'Clear')));
  const apply = (event, clear) => {
    event.preventDefault();
    const q = {};
    if (!clear) {
      for (const f of FILTERS) {
        const v = inputs[f].value.trim();
        q[f] = f === 'since' || f === 'until' ? toUtc(v) : v;
      }
    }
    ctx.go(`#/audit${qs(q)}`);
  };
  form.addEventListener('submit', (event) => apply(event, false));
  form.addEventListener('reset', (event) => apply(event, true));
  return h('section', {}, h('h1', {}, 'Audit log'), chain, form, list);
}
