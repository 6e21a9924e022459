// The exception queue: requests by status and category, oldest first, and how many are pending.

import { get, qs, seg } from './api.js';
import { badge, code, empty, field, h, link, loadMore, select, table, time } from './ui.js';

const STATUSES = [
  ['pending', 'Pending review'],
  ['approved', 'Approved'],
  ['expired', 'Expired'],
  ['denied', 'Denied'],
  ['revoked', 'Revoked'],
  ['', 'Any status'],
];
const CATEGORIES = [['', 'Any category'], ['nonprofit', 'Nonprofit'], ['dissident', 'Dissident']];
const COUNT_PAGES = 10;
const PAGE = 200;

/** Count pending requests by category, paging through the queue (up to 2,000). */
async function countPending() {
  const by = { nonprofit: 0, dissident: 0 };
  let cursor = null;
  for (let i = 0; i < COUNT_PAGES; i += 1) {
    const page = await get(`/v1/exceptions${qs({ status: 'pending', limit: PAGE, cursor })}`);
    for (const item of page.items) by[item.category] = (by[item.category] || 0) + 1;
    cursor = page.next_cursor;
    if (!cursor) return { ...by, total: by.nonprofit + by.dissident, more: false };
  }
  return { ...by, total: by.nonprofit + by.dissident, more: true };
}

function pendingSummary(el) {
  countPending().then((c) => {
    const total = c.more ? `${c.total}+` : String(c.total);
    el.replaceChildren(
      h('strong', { id: 'pending-total' }, total),
      c.total === 1 ? ' request pending review' : ' requests pending review',
      c.total ? ` (nonprofit ${c.nonprofit}, dissident ${c.dissident})` : '',
    );
  }, (err) => {
    el.replaceChildren(`Could not count pending requests: ${err.message}`);
  });
}

export function approvalsText(exc) {
  return `${exc.approvals_received} of ${exc.approvals_required}`;
}

export function exceptionsTable(caption, items) {
  return table(caption, [
    ['Request', (e) => link(`#/exceptions/${seg(e.id)}`, code(e.id))],
    ['Category', (e) => e.category],
    ['Status', (e) => badge(e.status)],
    ['Account', (e) => link(`#/accounts/${seg(e.account_id)}`, code(e.account_id))],
    ['Submitted', (e) => time(e.submitted_at)],
    ['By', (e) => (e.submitted_by ? `${e.submitted_by} (${e.submitted_by_principal})` : '—')],
    ['Approvals', (e) => approvalsText(e)],
  ], items);
}

export async function queueView(ctx) {
  const status = ctx.query.has('status') ? ctx.query.get('status') : 'pending';
  const category = ctx.query.get('category') || '';
  // From the overview: approvals ending soon (the filter form below starts afresh without it).
  const ending = /^[0-9]{1,4}$/.test(ctx.query.get('expiring_within_days') || '')
    ? ctx.query.get('expiring_within_days')
    : '';
  const fetchPage = (cursor) =>
    get(`/v1/exceptions${qs({ status, category, expiring_within_days: ending, limit: 50, cursor })}`);
  const first = await fetchPage(null);

  const count = h('p', { class: 'summary', id: 'pending-count', role: 'status' }, 'Counting pending requests…');
  pendingSummary(count);

  const statusSelect = select('filter-status', STATUSES, status);
  const categorySelect = select('filter-category', CATEGORIES, category);
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the queue' },
    field('Status', statusSelect),
    field('Category', categorySelect),
    h('button', { type: 'submit' }, 'Apply filters'));
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    // `status=` (empty) means any status; no `status` at all means the default, pending.
    const q = new URLSearchParams({ status: statusSelect.value });
    if (categorySelect.value) q.set('category', categorySelect.value);
    ctx.go(`#/queue?${q}`);
  });

  let list;
  if (first.items.length === 0) {
    list = empty(status === 'pending' && !category && !ending
      ? 'Nothing to review: no requests are pending.'
      : 'No requests match these filters.');
  } else {
    const t = exceptionsTable('Exception requests', first.items);
    list = h('div', {}, t.el, loadMore(first.next_cursor, fetchPage, t.addRows));
  }
  const endingNote = ending
    ? h('p', { class: 'notice info', id: 'queue-ending' },
      `Showing approved requests that end within ${ending} days, oldest request first. `,
      link('#/queue', 'Show the pending queue'))
    : null;
  return h('section', {},
    h('h1', {}, 'Exception queue'),
    count,
    filters,
    endingNote,
    list);
}
