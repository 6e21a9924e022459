// Small DOM helpers. Text from the API is only ever set as text (never as HTML).

/** Build an element: h('a', {href: '#/x', class: 'y', onclick: fn}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let counter = 0;
/** A document-unique id for label/aria wiring. */
export const uid = (prefix) => `${prefix}-${++counter}`;

/** `2026-05-01 14:03 UTC` (times are shown in UTC, as the audit log records them). */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: iso }, fmtTime(iso));
}

const BADGE = {
  pending: 'warn', approved: 'ok', active: 'ok', granted: 'ok', denied: 'bad', revoked: 'bad',
  suspended: 'bad', expired: 'muted', lapsed: 'muted', retired: 'muted', removed: 'muted',
  next: 'info', admin: 'info', reviewer: 'info', backend: 'muted', meeting: 'muted',
};

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || BADGE[text] || ''}` }, text);
}

export const code = (text) => h('code', {}, text);

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

/** An error for the person: the API's problem `detail` and its code. */
export function problem(err, lead) {
  const detail = err && err.message ? err.message : String(err);
  const codeText = err && err.code ? err.code : null;
  return h('div', { class: 'problem', role: 'alert' },
    lead ? h('strong', {}, `${lead} `) : null,
    detail,
    codeText ? h('span', { class: 'problem-code' }, ' ', code(codeText)) : null);
}

export function notice(text, kind = 'ok') {
  return h('div', { class: `notice ${kind}`, role: 'status' }, text);
}

/** A definition list from [term, value] pairs (pairs with value `undefined` are skipped). */
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

/**
 * A table: columns are [header, row => cell content]. Returns {table, tbody, addRows} so pages
 * can append ("Load more").
 */
export function table(caption, columns, rows) {
  const tbody = h('tbody');
  const addRows = (more) => {
    for (const row of more) {
      tbody.append(h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row)))));
    }
  };
  addRows(rows);
  const el = h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col' }, label)))),
      tbody));
  return { el, tbody, addRows };
}

/** A labelled form control: returns the wrapper; the control keeps its own id. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid('f');
  let hintEl = null;
  if (hint) {
    hintEl = h('span', { class: 'hint', id: uid('hint') }, hint);
    const described = control.getAttribute('aria-describedby');
    control.setAttribute('aria-describedby', described ? `${described} ${hintEl.id}` : hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

export function select(id, options, value) {
  return h('select', { id },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

/** Run `action` with `button` disabled and relabelled; restores both afterwards. */
export async function busy(button, label, action) {
  const before = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = before;
  }
}

/** A "Load more" button for a paginated list; hidden once there is nothing more. */
export function loadMore(firstCursor, fetchPage, onRows) {
  let cursor = firstCursor;
  const status = h('div', { class: 'more-status' });
  const button = h('button', { type: 'button', class: 'quiet', hidden: !cursor }, 'Load more');
  button.addEventListener('click', async () => {
    status.replaceChildren();
    try {
      const page = await busy(button, 'Loading…', () => fetchPage(cursor));
      onRows(page.items);
      cursor = page.next_cursor;
      button.hidden = !cursor;
    } catch (err) {
      status.replaceChildren(problem(err, 'Could not load more.'));
    }
  });
  return h('div', { class: 'more' }, button, status);
}

export const link = (href, ...children) => h('a', { href }, ...children);
