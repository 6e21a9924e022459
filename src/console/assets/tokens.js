// Revoke a token (moderators and admins): a reported participant's E2EE token stops working at
// once, on every instance within a second. `POST /v1/tokens/revoke` answers alike whether or
// not the token was valid (RFC 7009), so the page says what that means.

import { post } from './api.js';
import { busy, field, h, notice, problem } from './ui.js';

export function revokeTokenView() {
  const input = h('textarea', {
    id: 'token-to-revoke',
    rows: 4,
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'data-autofocus': true,
  });
  const button = h('button', { type: 'submit', class: 'danger', id: 'revoke-token' }, 'Revoke token');
  const out = h('div', { id: 'revoke-result' });
  const form = h('form', { class: 'filters', 'aria-label': 'Revoke a token' },
    field('Token', input, 'The whole e2ee-ent+jwt token (eyJ…), as reported. It is sent to Vouch only, and not kept.'),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    out.replaceChildren();
    const token = input.value.trim();
    if (!token) {
      input.setAttribute('aria-invalid', 'true');
      out.replaceChildren(problem({ message: 'Paste the token to revoke.' }));
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    try {
      await busy(button, 'Revoking…', () => post('/v1/tokens/revoke', { token }));
      input.value = '';
      out.replaceChildren(notice(
        'Done. If this was a token Vouch issued, it no longer admits anyone: meeting servers asking '
        + 'authorize get “revoked”. To stop the person getting new tokens, suspend the account.'));
    } catch (err) {
      out.replaceChildren(problem(err));
    }
  });
  return h('section', {},
    h('h1', {}, 'Revoke a token'),
    h('p', {}, 'For a single token that is being misused. Suspending the account (Accounts) withdraws every right at once.'),
    form,
    out);
}
