// Admins: webhook endpoints (create, with the secret shown once; rotate; delete; send a test
// ping) and each endpoint's deliveries with their attempts and last answer.

import { del, get, post, qs, seg } from './api.js';
import { badge, busy, code, empty, facts, field, h, link, loadMore, problem, table, time } from './ui.js';

const TYPES = ['entitlement.granted', 'entitlement.revoked', 'account.suspended', 'account.reactivated',
  'account.erased', 'token.revoked', 'tokens.revoked', 'ping'];

function shownSecret(lead, secret) {
  const input = h('input', { id: 'new-secret', type: 'text', readonly: true, value: secret, spellcheck: 'false', class: 'key' });
  const copy = h('button', { type: 'button', class: 'quiet' }, 'Copy');
  const copied = h('span', { role: 'status', class: 'muted' });
  copy.addEventListener('click', async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = ' Copied.';
    } catch {
      copied.textContent = ' Select the secret and copy it (the browser did not allow copying).';
    }
  });
  return h('div', { class: 'notice ok', id: 'shown-secret' },
    h('p', {}, h('strong', {}, lead),
      ' This is the signing secret. It is shown this once: only a sealed copy is stored. Give it to the receiver now.'),
    field('Signing secret', input), copy, copied);
}

export async function webhooksView() {
  const fetchPage = (cursor) => get(`/v1/admin/webhooks${qs({ limit: 100, cursor })}`);
  const first = await fetchPage(null);
  const url = h('input', { id: 'webhook-url', type: 'url', required: true, maxlength: '2048', spellcheck: 'false', autocomplete: 'off', placeholder: 'https://meet.example.org/vouch/events' });
  const description = h('input', { id: 'webhook-description', type: 'text', maxlength: '200', autocomplete: 'off' });
  const boxes = TYPES.map((t) => h('input', { type: 'checkbox', value: t, id: `type-${t.replace('.', '-')}` }));
  const types = h('fieldset', { class: 'field' }, h('legend', {}, 'Events (none ticked: all of them)'),
    boxes.map((b) => h('label', { for: b.id, class: 'check' }, b, ' ', b.value)));
  const create = h('button', { type: 'submit', class: 'primary' }, 'Create endpoint');
  const created = h('div');
  const form = h('form', { class: 'filters', 'aria-label': 'Create a webhook endpoint' },
    field('URL', url, 'https:// on a public address; events are POSTed here, signed (Standard Webhooks).'),
    field('Description', description), types, create);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    created.replaceChildren();
    if (!url.value.trim()) {
      created.replaceChildren(problem({ message: 'Give the endpoint a URL.' }));
      url.focus();
      return;
    }
    const events = boxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const result = await busy(create, 'Creating…', () => post('/v1/admin/webhooks', {
        url: url.value.trim(),
        ...(events.length ? { events } : {}),
        ...(description.value.trim() ? { description: description.value.trim() } : {}),
      }));
      url.value = '';
      description.value = '';
      boxes.forEach((b) => { b.checked = false; });
      created.replaceChildren(shownSecret(`Endpoint ${result.url} created.`, result.secret));
      t.addRows([result]);
      created.querySelector('input').focus();
    } catch (err) {
      created.replaceChildren(problem(err, 'Not created:'));
    }
  });
  const t = table('Webhook endpoints', [
    ['URL', (w) => link(`#/webhooks/${seg(w.id)}`, w.url)],
    ['Status', (w) => badge(w.status, w.status === 'enabled' ? 'ok' : 'bad')],
    ['Events', (w) => (w.events.length >= TYPES.length ? 'all' : w.events.join(', '))],
    ['Created', (w) => time(w.created_at)],
  ], first.items);
  return h('section', {},
    h('h1', {}, 'Webhooks'),
    h('p', {}, 'Meeting servers learn of withdrawn entitlements from signed events. Deliveries are retried for about a day; a 410 Gone answer disables the endpoint.'),
    h('h2', {}, 'New endpoint'), form, created,
    h('h2', {}, 'Endpoints'),
    first.items.length === 0 ? empty('No endpoints.') : null,
    t.el,
    loadMore(first.next_cursor, fetchPage, t.addRows));
}

export async function webhookView(ctx) {
  const id = ctx.params[0];
  const [w, firstDeliveries] = await Promise.all([
    get(`/v1/admin/webhooks/${seg(id)}`),
    get(`/v1/admin/webhooks/${seg(id)}/deliveries${qs({ limit: 50 })}`),
  ]);
  const out = h('div', { id: 'webhook-result' });
  const testButton = h('button', { type: 'button', id: 'webhook-test', class: 'primary', disabled: w.status !== 'enabled' }, 'Send test ping');
  testButton.addEventListener('click', async () => {
    out.replaceChildren();
    try {
      const sent = await busy(testButton, 'Sending…', () => post(`/v1/admin/webhooks/${seg(id)}/test`));
      ctx.flash(`Ping ${sent.event_id} queued.`);
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err, 'No ping sent:'));
    }
  });
  const rotate = h('button', { type: 'button', id: 'webhook-rotate' }, 'Rotate secret');
  rotate.addEventListener('click', async () => {
    out.replaceChildren();
    try {
      const result = await busy(rotate, 'Rotating…', () => post(`/v1/admin/webhooks/${seg(id)}/secret`));
      out.replaceChildren(shownSecret('Secret rotated; the old one keeps signing beside it for 24 hours.', result.secret));
      out.querySelector('input').focus();
    } catch (err) {
      out.replaceChildren(problem(err, 'Not rotated:'));
    }
  });
  const remove = h('button', { type: 'button', id: 'webhook-delete', class: 'danger' }, 'Delete endpoint…');
  remove.addEventListener('click', async () => {
    if (remove.dataset.armed !== 'yes') {
      remove.dataset.armed = 'yes';
      remove.textContent = 'Yes, delete it and drop its undelivered events';
      return;
    }
    out.replaceChildren();
    try {
      await busy(remove, 'Deleting…', () => del(`/v1/admin/webhooks/${seg(id)}`));
      ctx.flash(`Endpoint ${w.url} deleted.`);
      ctx.go('#/webhooks');
    } catch (err) {
      out.replaceChildren(problem(err, 'Not deleted:'));
    }
  });
  const fetchPage = (cursor) => get(`/v1/admin/webhooks/${seg(id)}/deliveries${qs({ limit: 50, cursor })}`);
  const t = table('Deliveries', [
    ['Event', (d) => code(d.event_id)],
    ['Type', (d) => d.type],
    ['Status', (d) => badge(d.status, { delivered: 'ok', failed: 'bad' }[d.status] || 'info')],
    ['Attempts', (d) => String(d.attempts)],
    ['Last answer', (d) => (d.last_status_code ? String(d.last_status_code) : (d.last_error || '—'))],
    ['Next attempt', (d) => (d.next_attempt_at ? time(d.next_attempt_at) : '—')],
    ['Created', (d) => time(d.created_at)],
  ], firstDeliveries.items);
  return h('section', {},
    h('p', {}, link('#/webhooks', '← Webhooks')),
    h('h1', {}, 'Webhook endpoint'),
    facts([
      ['URL', code(w.url)],
      ['Status', badge(w.status, w.status === 'enabled' ? 'ok' : 'bad')],
      ['Events', w.events.join(', ')],
      ['Description', w.description || '—'],
      ['Created', time(w.created_at)],
      ['Previous secret signs until', w.previous_secret_expires_at ? time(w.previous_secret_expires_at) : '—'],
    ]),
    h('div', { class: 'actions' }, testButton, ' ', rotate, ' ', remove),
    out,
    h('h2', {}, 'Deliveries'),
    firstDeliveries.items.length === 0 ? empty('No deliveries yet.') : null,
    t.el,
    loadMore(firstDeliveries.next_cursor, fetchPage, t.addRows));
}
