// Sign-in: the person pastes an API key; `GET /v1/me` checks it and tells its name and role.

import { get } from './api.js';
import { busy, h, notice, problem } from './ui.js';

export function signInView({ message, onSignedIn }) {
  const input = h('input', {
    id: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'off',
    placeholder: 'vk_…',
    'aria-describedby': 'api-key-hint',
    'data-autofocus': true,
  });
  const button = h('button', { type: 'submit', class: 'primary', id: 'sign-in' }, 'Sign in');
  const result = h('div', { id: 'sign-in-result' });
  // No `name` on the input and CSP `form-action 'none'`: the key can never end up in a URL,
  // even if this script failed to run.
  const form = h('form', { class: 'sign-in', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      input,
      h('span', { class: 'hint', id: 'api-key-hint' },
        'A reviewer, moderator or admin key. It is kept in this browser tab only and sent to Vouch only in the Authorization header.')),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    result.replaceChildren();
    if (!key) {
      input.setAttribute('aria-invalid', 'true');
      result.replaceChildren(problem({ message: 'Paste your API key first.' }));
      input.focus();
      return;
    }
    try {
      const me = await busy(button, 'Signing in…', () => get('/v1/me', { key }));
      input.value = '';
      onSignedIn(key, me);
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      result.replaceChildren(problem(err, 'Sign-in failed:'));
      input.focus();
      input.select();
    }
  });
  return h('section', { class: 'narrow' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Review nonprofit and dissident exceptions, look up accounts, suspend them and revoke tokens (moderators), and (admins) manage API clients, signing keys and the audit log.'),
    message ? notice(message, 'info') : null,
    form,
    result);
}
