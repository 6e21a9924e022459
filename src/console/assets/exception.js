// One exception request: its state and approvals, the sealed statement behind an explicit
// (audited) reveal, and the decision, with the four-eyes rule spelled out before any click.

import { get, post, seg } from './api.js';
import { approvalsText } from './queue.js';
import { badge, busy, code, empty, facts, field, h, link, problem, table, time } from './ui.js';

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/**
 * What the signed-in client may do with a request, and why, by the rules the API enforces:
 * the submitting principal (person) never decides, with any of its keys; each principal approves
 * once; the category needs `approvals_required` distinct principals.
 */
export function fourEyes(exc, me) {
  const approvals = exc.approvals || [];
  const remaining = Math.max(0, exc.approvals_required - exc.approvals_received);
  const mine = (name, principal) => name === me.name || (principal !== undefined && principal === me.principal);
  if (mine(exc.submitted_by, exc.submitted_by_principal)) {
    return {
      approve: false,
      deny: false,
      kind: 'blocked',
      text: `You submitted this request (as principal ${me.principal}), so you cannot decide it with any of your keys. `
        + 'Four-eyes rule: the person who submits a request may never approve or deny it; another person must.',
    };
  }
  if (approvals.some((a) => mine(a.reviewer, a.principal))) {
    return {
      approve: false,
      deny: true,
      kind: 'blocked',
      text: `You already approved this request (as principal ${me.principal}, with this or another of your keys). Four-eyes rule: ${plural(remaining, 'more approval', 'more approvals')} `
        + `from ${remaining === 1 ? 'another person' : 'other people'} needed. You may still deny it.`,
    };
  }
  const rule = exc.approvals_required > 1
    ? `A ${exc.category} request needs ${exc.approvals_required} distinct reviewers (people, not keys); ${exc.approvals_received} approved so far. `
    : '';
  const effect = remaining <= 1
    ? 'Your approval completes it: the account gets ' + exc.category + ' evidence at once.'
    : `Your approval is recorded as ${exc.approvals_received + 1} of ${exc.approvals_required}; `
      + `${plural(remaining - 1, 'more reviewer', 'more reviewers')} must then approve.`;
  return { approve: true, deny: true, kind: 'info', text: `${rule}${effect} A denial is final.` };
}

function sealedPanel(exc, approvalsTable) {
  const region = h('div', { id: 'sealed-text', class: 'sealed', tabindex: '-1' });
  const status = h('div');
  if (exc.statements_purged_at) {
    return h('section', { 'aria-labelledby': 'sealed-h' },
      h('h2', { id: 'sealed-h' }, 'Statement'),
      h('p', { class: 'muted' }, 'The sealed text of this request was purged on ', time(exc.statements_purged_at), '.'));
  }
  const button = h('button', { type: 'button', id: 'reveal', 'aria-controls': 'sealed-text' }, 'Reveal statement');
  button.addEventListener('click', async () => {
    status.replaceChildren();
    try {
      const opened = await busy(button, 'Opening…', () => get(`/v1/exceptions/${seg(exc.id)}`));
      const text = (label, value, id) => (value
        ? [h('h3', {}, label), h('p', { class: 'statement', id }, value)]
        : []);
      region.replaceChildren(h('div', {},
        h('p', { class: 'muted' }, 'Opened just now; this read is recorded in the audit log under your name.'),
        text('Statement', opened.statement, 'statement'),
        text('Organization', opened.organization, 'organization'),
        text('Reference', opened.reference, 'reference'),
        text('Reason for the denial', opened.decision_reason, 'decision-reason-text'),
        text('Reason for the revocation', opened.revoke_reason, 'revoke-reason-text'),
        opened.statement || opened.organization || opened.reference ? null
          : h('p', { class: 'muted' }, 'There is no sealed text left on this request.')));
      approvalsTable.showReasons(opened.approvals || []);
      button.hidden = true;
      hide.hidden = false;
      region.focus();
    } catch (err) {
      status.replaceChildren(problem(err, 'Could not reveal the statement:'));
    }
  });
  const hide = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Hide statement');
  hide.addEventListener('click', () => {
    region.replaceChildren();
    approvalsTable.showReasons([]);
    hide.hidden = true;
    button.hidden = false;
    button.focus();
  });
  return h('section', { 'aria-labelledby': 'sealed-h' },
    h('h2', { id: 'sealed-h' }, 'Statement'),
    h('p', {}, 'The statement, organization, reference and reviewers’ reasons are sealed. '
      + 'Revealing them is recorded in the audit log (exception.statement_read) under your name.'),
    h('div', { class: 'actions' }, button, hide),
    status,
    region);
}

function approvalsSection(exc) {
  const approvals = exc.approvals || [];
  const reasonCells = new Map();
  let body;
  if (approvals.length === 0) {
    body = empty(`No approvals yet; ${plural(exc.approvals_required, 'approval is', 'approvals are')} needed.`);
  } else {
    body = table('Approvals so far', [
      ['Reviewer', (a) => a.reviewer],
      ['Principal', (a) => a.principal],
      ['Approved', (a) => time(a.approved_at)],
      ['Asked to end', (a) => time(a.expires_at)],
      ['Reason', (a) => {
        const cell = h('span', { class: 'muted' }, 'sealed');
        reasonCells.set(`${a.reviewer}|${a.approved_at}`, cell);
        return cell;
      }],
    ], approvals).el;
  }
  const section = h('section', { 'aria-labelledby': 'approvals-h' },
    h('h2', { id: 'approvals-h' }, `Approvals so far (${approvalsText(exc)})`),
    body);
  return {
    el: section,
    showReasons(opened) {
      for (const [k, cell] of reasonCells) {
        const match = opened.find((a) => `${a.reviewer}|${a.approved_at}` === k);
        cell.className = match && match.reason ? 'reason' : 'muted';
        cell.textContent = match && match.reason ? match.reason : 'sealed';
      }
    },
  };
}

function reasonBox(id, label, hint) {
  const box = h('textarea', { id, rows: '3', maxlength: '2000', required: true });
  return { box, el: field(label, box, hint) };
}

function requireReason(box, out) {
  if (box.value.trim()) {
    box.removeAttribute('aria-invalid');
    return box.value.trim();
  }
  box.setAttribute('aria-invalid', 'true');
  out.replaceChildren(problem({ message: 'A reason is required. It is sealed and kept with the decision.' }));
  box.focus();
  return null;
}

function decisionSection(ctx, exc) {
  const rule = fourEyes(exc, ctx.me);
  const ruleEl = h('p', { id: 'four-eyes', class: `rule ${rule.kind}` }, rule.text);
  const reason = reasonBox('decision-reason', 'Reason (required)', 'Sealed like the statement; reviewers can reveal it later.');
  const ends = h('input', { id: 'decision-ends', type: 'date' });
  const approve = h('button', { type: 'button', id: 'approve', class: 'primary', disabled: !rule.approve, 'aria-describedby': 'four-eyes' }, 'Approve');
  const deny = h('button', { type: 'button', id: 'deny', class: 'danger', disabled: !rule.deny, 'aria-describedby': 'four-eyes' }, 'Deny');
  const out = h('div', { id: 'decision-result' });
  const decide = async (button, decision) => {
    out.replaceChildren();
    const text = requireReason(reason.box, out);
    if (!text) return;
    const body = { decision, reason: text };
    if (decision === 'approve' && ends.value) body.expires_at = `${ends.value}T23:59:59Z`;
    try {
      const result = await busy(button, decision === 'approve' ? 'Approving…' : 'Denying…',
        () => post(`/v1/exceptions/${seg(exc.id)}/decision`, body));
      if (result.status === 'approved') {
        ctx.flash(`Approved. The account has ${result.category} evidence until ${(result.expires_at || '').slice(0, 10)}.`);
      } else if (result.status === 'pending') {
        ctx.flash(`Your approval is recorded (${approvalsText(result)}). Another reviewer must approve it too.`);
      } else {
        ctx.flash(`Request ${result.status}.`, result.status === 'denied' ? 'info' : 'ok');
      }
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err, 'The decision was not recorded:'));
    }
  };
  approve.addEventListener('click', () => decide(approve, 'approve'));
  deny.addEventListener('click', () => decide(deny, 'deny'));
  const canAct = rule.approve || rule.deny;
  return h('section', { 'aria-labelledby': 'decide-h' },
    h('h2', { id: 'decide-h' }, 'Decision'),
    ruleEl,
    canAct ? h('div', { class: 'decision' },
      reason.el,
      rule.approve ? field('Approval ends on (optional, UTC)', ends,
        'Leave empty for the default validity. With several approvers the earliest end applies.') : null,
      h('div', { class: 'actions' }, approve, deny)) : h('div', { class: 'actions' }, approve, deny),
    out);
}

function revokeSection(ctx, exc) {
  const reason = reasonBox('revoke-reason', 'Reason (required)', 'Sealed like the statement.');
  const button = h('button', { type: 'button', id: 'revoke', class: 'danger' }, 'Revoke exception');
  const out = h('div', { id: 'revoke-result' });
  button.addEventListener('click', async () => {
    out.replaceChildren();
    const text = requireReason(reason.box, out);
    if (!text) return;
    try {
      await busy(button, 'Revoking…', () => post(`/v1/exceptions/${seg(exc.id)}/revoke`, { reason: text }));
      ctx.flash('Revoked. The account’s evidence from this exception was revoked at once.');
      ctx.reload();
    } catch (err) {
      out.replaceChildren(problem(err, 'Not revoked:'));
    }
  });
  return h('section', { 'aria-labelledby': 'revoke-h' },
    h('h2', { id: 'revoke-h' }, 'Revoke'),
    h('p', {}, 'Revoking withdraws the evidence this approval created at once; tokens issued on it stop passing the authorize check.'),
    reason.el,
    h('div', { class: 'actions' }, button),
    out);
}

export async function exceptionView(ctx) {
  const id = ctx.params[0];
  // Metadata and approvals only: the sealed text is opened (and audited) on request.
  const exc = await get(`/v1/exceptions/${seg(id)}?sealed=false`);
  const approvals = approvalsSection(exc);
  const sections = [
    h('p', { class: 'crumbs' }, link('#/queue', '← Exception queue')),
    h('h1', {}, 'Exception request ', code(exc.id)),
    facts([
      ['Status', badge(exc.status)],
      ['Category', exc.category],
      ['Account', link(`#/accounts/${seg(exc.account_id)}`, code(exc.account_id))],
      ['Submitted', [time(exc.submitted_at), exc.submitted_by ? ` by ${exc.submitted_by}` : '',
        exc.submitted_by_principal ? ` (principal ${exc.submitted_by_principal})` : '']],
      ['Approvals', approvalsText(exc)],
      ['Decided', exc.decided_at ? [time(exc.decided_at), exc.decided_by ? ` by ${exc.decided_by}` : ''] : undefined],
      ['Ends', exc.expires_at ? time(exc.expires_at) : undefined],
      ['Revoked', exc.revoked_at ? [time(exc.revoked_at), exc.revoked_by ? ` by ${exc.revoked_by}` : ''] : undefined],
      ['Evidence', exc.evidence_id ? code(exc.evidence_id) : undefined],
    ]),
    approvals.el,
    sealedPanel(exc, approvals),
  ];
  if (exc.status === 'pending') sections.push(decisionSection(ctx, exc));
  if (exc.status === 'approved' || exc.status === 'expired') sections.push(revokeSection(ctx, exc));
  return h('article', { class: 'exception' }, sections);
}
