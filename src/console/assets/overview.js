// The first page for reviewers and admins: what needs attention now (GET /v1/overview), each
// item linked to the page where it is acted on.

import { get, seg } from './api.js';
import { badge, code, empty, facts, fmtTime, h, link, table, time } from './ui.js';

const DAY = 86400;

/** `3 days 4 hours`, `5 hours`, `12 minutes`: how long something has waited or has left. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  const days = Math.floor(s / DAY);
  const hours = Math.floor((s % DAY) / 3600);
  if (days > 0) return hours ? `${plural(days, 'day')} ${plural(hours, 'hour')}` : plural(days, 'day');
  if (hours > 0) return plural(hours, 'hour');
  return s < 60 ? 'less than a minute' : plural(Math.floor(s / 60), 'minute');
}

/** A number in a table cell, marked when it needs attention. */
function flagged(n, kind) {
  return n > 0 && kind ? badge(String(n), kind) : String(n);
}

function pendingSection(p) {
  const buckets = [
    ['Less than 1 day', p.under_1_day, null],
    ['1 to 3 days', p.from_1_to_3_days, null],
    ['3 to 7 days', p.from_3_to_7_days, 'warn'],
    ['More than 7 days', p.over_7_days, 'bad'],
  ];
  const t = table('Pending exception requests by how long they have waited', [
    ['Waiting', (b) => b[0]],
    ['Requests', (b) => flagged(b[1], b[2])],
  ], buckets);
  t.el.classList.add('compact');
  return h('section', { id: 'overview-pending', 'aria-labelledby': 'overview-pending-h' },
    h('h2', { id: 'overview-pending-h' }, 'Exceptions pending review'),
    h('p', { class: 'summary' }, h('strong', { id: 'overview-pending-total' }, String(p.total)),
      p.total === 1 ? ' request waits for a decision' : ' requests wait for a decision',
      p.oldest_submitted_at
        ? [' — the oldest for ', h('span', { id: 'overview-oldest' }, duration(p.oldest_age_seconds)),
          ' (submitted ', time(p.oldest_submitted_at), ')']
        : ''),
    p.total ? t.el : null,
    h('p', {}, link('#/queue', 'Review them in the exception queue')));
}

function approvalsSection(a, generatedAt) {
  const now = new Date(generatedAt).getTime();
  const t = table(`The approvals that end soonest (at most ${a.soonest.length})`, [
    ['Request', (e) => link(`#/exceptions/${seg(e.id)}`, code(e.id))],
    ['Ends', (e) => time(e.expires_at)],
    ['Left', (e) => duration((new Date(e.expires_at).getTime() - now) / 1000)],
  ], a.soonest);
  return h('section', { id: 'overview-approvals', 'aria-labelledby': 'overview-approvals-h' },
    h('h2', { id: 'overview-approvals-h' }, `Approvals ending within ${a.within_days} days`),
    h('p', { class: 'summary' }, h('strong', { id: 'overview-approvals-count' }, String(a.count)),
      a.count === 1 ? ' approved exception ends' : ' approved exceptions end',
      ` within ${a.within_days} days; their evidence lapses then unless a reviewer approves a new request.`),
    a.count ? t.el : null,
    a.count
      ? h('p', {}, link(`#/queue?status=approved&expiring_within_days=${a.within_days}`,
        a.count > a.soonest.length ? `All ${a.count} in the exception queue` : 'See them in the exception queue'))
      : null);
}

function sendsSection(v) {
  const rows = [['Email', v.email], ['SMS', v.sms]];
  const t = table('Verification codes queued today by channel', [
    ['Channel', (r) => r[0]],
    ['Sent', (r) => String(r[1].sends)],
    ['Delivered', (r) => String(r[1].delivered)],
    ['Failed', (r) => flagged(r[1].failed, 'bad')],
    ['Waiting', (r) => String(r[1].waiting)],
  ], rows);
  t.el.id = 'overview-sends-table';
  t.el.classList.add('compact');
  return h('section', { id: 'overview-sends', 'aria-labelledby': 'overview-sends-h' },
    h('h2', { id: 'overview-sends-h' }, 'Verification codes today'),
    h('p', { class: 'muted' }, `Since ${fmtTime(v.since)}. Failed: given up after a permanent error or the last retry, or dropped because the code expired before it could be sent.`),
    t.el);
}

function budgetSection(b) {
  const share = b.limit ? Math.round((b.used / b.limit) * 100) : 0;
  const kind = share >= 90 ? 'bad' : share >= 60 ? 'warn' : 'ok';
  const meterId = 'overview-sms-meter';
  return h('section', { id: 'overview-sms-budget', 'aria-labelledby': 'overview-sms-budget-h' },
    h('h2', { id: 'overview-sms-budget-h' }, 'SMS budget'),
    h('p', { class: 'summary' },
      h('label', { for: meterId }, h('strong', { id: 'overview-sms-used' }, String(b.used)), ` of ${b.limit} SMS in the last hour `),
      h('meter', { id: meterId, min: '0', max: String(b.limit), low: String(Math.floor(b.limit * 0.6)), high: String(Math.floor(b.limit * 0.9)), optimum: '0', value: String(b.used) }, `${share}%`),
      ' ', badge(`${share}%`, kind)),
    h('p', { class: 'muted' }, 'Once it is spent, SMS codes are refused (429) until sends age out of the hour.'));
}

function webhooksSection(w, admin) {
  const t = table('Failing webhook endpoints, longest failing first', [
    ['Endpoint', (e) => (admin ? link(`#/webhooks/${seg(e.id)}`, e.host || e.id) : e.host || code(e.id))],
    ['Status', (e) => badge(e.status, e.status === 'enabled' ? 'warn' : 'bad')],
    ['Failing deliveries', (e) => String(e.failing_deliveries)],
    ['Attempts', (e) => String(e.attempts)],
    ['Failing since', (e) => time(e.since)],
  ], w.endpoints);
  return h('section', { id: 'overview-webhooks', 'aria-labelledby': 'overview-webhooks-h' },
    h('h2', { id: 'overview-webhooks-h' }, 'Webhook endpoints failing'),
    h('p', { class: 'summary' }, h('strong', { id: 'overview-webhooks-count' }, String(w.count)),
      w.count === 1 ? ' endpoint is' : ' endpoints are',
      ' failing: a delivery failed and is being retried, or the receiver answered 410 Gone and the endpoint is disabled.'),
    w.count ? t.el : null,
    admin ? h('p', {}, link('#/webhooks', 'Manage webhook endpoints')) : null);
}

function keySection(k, admin) {
  if (!k) {
    return h('section', { id: 'overview-key', 'aria-labelledby': 'overview-key-h' },
      h('h2', { id: 'overview-key-h' }, 'Signing key'), empty('No key signs tokens yet.'));
  }
  let next;
  if (!k.next_rotation_at) next = h('span', { class: 'muted' }, 'automatic rotation is off');
  else if (k.rotation_overdue) next = h('span', {}, time(k.next_rotation_at), ' ', badge('overdue', 'bad'));
  else next = time(k.next_rotation_at);
  return h('section', { id: 'overview-key', 'aria-labelledby': 'overview-key-h' },
    h('h2', { id: 'overview-key-h' }, 'Signing key'),
    facts([
      ['Key id', code(k.kid)],
      ['Algorithm', k.alg],
      ['Signing since', time(k.activated_at)],
      ['Next rotation', next],
    ]),
    admin ? h('p', {}, link('#/keys', 'Signing keys')) : null);
}

/** The numbers at a glance, each a link to where it is acted on (when the role may go there). */
function glance(o, admin) {
  const p = o.pending_exceptions;
  const failed = o.verifications_today.email.failed + o.verifications_today.sms.failed;
  const b = o.sms_budget;
  const k = o.signing_key;
  const tiles = [
    ['glance-pending', String(p.total), 'pending review', '#/queue',
      p.over_7_days ? 'bad' : p.from_3_to_7_days ? 'warn' : null],
    ['glance-approvals', String(o.approvals_ending.count), `approvals ending within ${o.approvals_ending.within_days} days`,
      `#/queue?status=approved&expiring_within_days=${o.approvals_ending.within_days}`, o.approvals_ending.count ? 'warn' : null],
    ['glance-failed', String(failed), 'codes failed today', null, failed ? 'bad' : null],
    ['glance-sms', `${b.used} / ${b.limit}`, 'SMS budget used this hour', null,
      b.used >= b.limit * 0.9 ? 'bad' : b.used >= b.limit * 0.6 ? 'warn' : null],
    ['glance-webhooks', String(o.failing_webhooks.count), 'webhook endpoints failing', admin ? '#/webhooks' : null,
      o.failing_webhooks.count ? 'bad' : null],
    ['glance-key', k && k.next_rotation_at ? fmtTime(k.next_rotation_at).slice(0, 10) : '—',
      k && k.rotation_overdue ? 'key rotation overdue' : 'next key rotation', admin ? '#/keys' : null,
      k && k.rotation_overdue ? 'bad' : null],
  ];
  return h('ul', { class: 'tiles', 'aria-label': 'At a glance' },
    tiles.map(([id, value, label, href, kind]) => {
      const body = [h('strong', {}, value), h('span', {}, label)];
      return h('li', { id, class: `tile ${kind || ''}` }, href ? h('a', { href }, body) : h('div', {}, body));
    }));
}

export async function overviewView(ctx) {
  const o = await get('/v1/overview');
  const admin = ctx.me.role === 'admin';
  return h('section', {},
    h('h1', {}, 'Overview'),
    h('p', { class: 'muted' }, 'What needs attention, as of ', time(o.generated_at), '.'),
    glance(o, admin),
    pendingSection(o.pending_exceptions),
    approvalsSection(o.approvals_ending, o.generated_at),
    sendsSection(o.verifications_today),
    budgetSection(o.sms_budget),
    webhooksSection(o.failing_webhooks, admin),
    keySection(o.signing_key, admin));
}
