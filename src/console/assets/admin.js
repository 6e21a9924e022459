// Admins: API clients (create, with the key shown once; revoke) and signing keys (list, rotate).

import { del, get, post, qs, seg } from './api.js';
import { badge, busy, code, empty, field, h, loadMore, notice, problem, select, table, time } from './ui.js';

const ROLES = [['reviewer', 'reviewer'], ['moderator', 'moderator'], ['backend', 'backend'], ['meeting', 'meeting'], ['admin', 'admin']];

function createdKey(created) {
  const keyField = h('input', { id: 'new-key', type: 'text', readonly: true, value: created.key, spellcheck: 'false', class: 'key' });
  const copy = h('button', { type: 'button', class: 'quiet' }, 'Copy');
  const copied = h('span', { role: 'status', class: 'muted' });
  copy.addEventListener('click', async () => {
    keyField.select();
    try {
      await navigator.clipboard.writeText(created.key);
      copied.textContent = ' Copied.';
    } catch {
      copied.textContent = ' Select the key and copy it (the browser did not allow copying).';
    }
  });
  return h('div', { class: 'notice ok', id: 'created-client' },
    h('p', {}, h('strong', {}, `Client ${created.name} (${created.role}, principal ${created.principal}) created.`),
      ' This is its API key. It is shown this once: only its hash is stored. Hand it over securely now.'),
    field('API key', keyField),
    copy, copied);
}

function revokeButton(ctx, client, out) {
  if (client.revoked_at) return h('span', { class: 'muted' }, 'revoked ', time(client.revoked_at));
  const start = h('button', { type: 'button', class: 'quiet', 'aria-label': `Revoke ${client.name}` }, 'Revoke…');
  const self = client.name === ctx.me.name;
  const confirm = h('button', { type: 'button', class: 'danger', 'aria-label': `Confirm revoking ${client.name}` },
    self ? 'Yes, revoke my own key' : 'Yes, revoke');
  const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel');
  const ask = h('span', { hidden: true }, confirm, ' ', cancel);
  start.addEventListener('click', () => {
    start.hidden = true;
    ask.hidden = false;
    confirm.focus();
  });
  cancel.addEventListener('click', () => {
    start.hidden = false;
    ask.hidden = true;
    start.focus();
  });
  confirm.addEventListener('click', async () => {
    out.replaceChildren();
    try {
      await busy(confirm, 'Revoking…', () => del(`/v1/admin/clients/${seg(client.id)}`));
      ctx.flash(`Client ${client.name} revoked: its key no longer works.`);
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err, `${client.name} was not revoked:`));
    }
  });
  return h('span', {}, start, ask);
}

export async function clientsView(ctx) {
  const fetchPage = (cursor) => get(`/v1/admin/clients${qs({ limit: 100, cursor })}`);
  const first = await fetchPage(null);
  const out = h('div', { id: 'clients-result' });

  const name = h('input', { id: 'client-name', type: 'text', required: true, maxlength: '100', spellcheck: 'false', autocomplete: 'off' });
  const principal = h('input', { id: 'client-principal', type: 'text', maxlength: '64', spellcheck: 'false', autocomplete: 'off' });
  const role = select('client-role', ROLES, 'reviewer');
  const create = h('button', { type: 'submit', class: 'primary' }, 'Create client');
  const created = h('div');
  const form = h('form', { class: 'filters', 'aria-label': 'Create an API client' },
    field('Name', name, 'Unique; recorded as the actor in the audit log.'),
    field('Principal', principal, 'The person this key belongs to (defaults to the name). Four-eyes review counts people: two keys of one principal are one reviewer.'),
    field('Role', role),
    create);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    created.replaceChildren();
    if (!name.value.trim()) {
      created.replaceChildren(problem({ message: 'Give the client a name.' }));
      name.focus();
      return;
    }
    try {
      const result = await busy(create, 'Creating…',
        () => post('/v1/admin/clients', {
          name: name.value.trim(),
          ...(principal.value.trim() ? { principal: principal.value.trim() } : {}),
          role: role.value,
        }));
      name.value = '';
      principal.value = '';
      created.replaceChildren(createdKey(result));
      t.tbody.prepend(...rowsFor([result]));
      created.querySelector('input').focus();
    } catch (err) {
      created.replaceChildren(problem(err, 'Not created:'));
    }
  });

  const columns = [
    ['Name', (c) => c.name],
    ['Principal', (c) => c.principal],
    ['Role', (c) => badge(c.role)],
    ['Key starts', (c) => code(c.key_prefix)],
    ['Created', (c) => [time(c.created_at), ` by ${c.created_by}`]],
    ['Key', (c) => revokeButton(ctx, c, out)],
  ];
  const t = table('API clients', columns, first.items);
  // Rows for clients created on this page, in the table's format.
  const rowsFor = (items) => items.map((c) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(c)))));
  return h('section', {},
    h('h1', {}, 'API clients'),
    h('h2', {}, 'New client'),
    form,
    created,
    h('h2', {}, 'Clients'),
    out,
    first.items.length === 0 ? empty('No clients.') : null,
    t.el,
    loadMore(first.next_cursor, fetchPage, t.addRows));
}

export async function keysView(ctx) {
  const keys = await get('/v1/admin/keys');
  const out = h('div', { id: 'rotate-result' });
  const rotate = h('button', { type: 'button', id: 'rotate', class: 'primary' }, 'Rotate signing key');
  rotate.addEventListener('click', async () => {
    out.replaceChildren();
    try {
      const key = await busy(rotate, 'Rotating…', () => post('/v1/admin/keys/rotate'));
      ctx.flash(`New key ${key.kid} published; it signs from ${key.activates_at.slice(0, 16).replace('T', ' ')} UTC.`);
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err, 'Not rotated:'));
    }
  });
  return h('section', {},
    h('h1', {}, 'Signing keys'),
    h('p', {}, 'Rotation publishes a new key in the JWKS now; it starts signing after one JWKS max-age, and the current key stays published until its last token expires.'),
    h('div', { class: 'actions' }, rotate),
    out,
    keys.items.length === 0 ? notice('No signing keys yet.', 'info') : table('Signing keys', [
      ['Key id', (k) => code(k.kid)],
      ['Algorithm', (k) => k.alg],
      ['State', (k) => badge(k.state)],
      ['Published', (k) => time(k.created_at)],
      ['Signs from', (k) => time(k.activates_at)],
      ['Retires', (k) => time(k.retires_at)],
      ['Leaves the JWKS', (k) => time(k.removes_at)],
    ], keys.items).el);
}
