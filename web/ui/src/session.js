// Sign-in. With auth on, the server answers GET /api/v1/session with 401
// until the user gives a token once; POST /api/v1/session then sets an
// HttpOnly, SameSite=Strict session cookie (a server-side id, not the
// token), so the token is not kept by the page. The body's data-role says
// what the role may do; style.css hides [data-needs=...] controls the role
// cannot use (the server refuses them anyway).
import { api, h } from './api.js';

export async function loadSession() {
  try {
    return await api('/session');
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export function showUser(s) {
  document.body.dataset.role = s.role;
  const box = document.getElementById('user');
  if (!box) return;
  if (!s.auth) { box.replaceChildren(); return; }
  const out = h('button', { class: 'button', dataset: { testid: 'sign-out' } }, 'Sign out');
  out.addEventListener('click', async () => {
    await api('/session', { method: 'DELETE' });
    location.reload();
  });
  box.replaceChildren(h('span', { class: 'muted', dataset: { testid: 'signed-in' } }, `${s.name} · ${s.role}`), ' ', out);
}

// signIn renders the sign-in form into root and resolves with the session
// once a token is accepted.
export function signIn(root) {
  document.body.dataset.role = 'none';
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', autocomplete: 'off', placeholder: 'rnl_…', size: 50, dataset: { testid: 'token' } });
    const err = h('p', { class: 'error', dataset: { testid: 'sign-in-error' } });
    const form = h('form', { class: 'sign-in', dataset: { testid: 'sign-in' } },
      h('h1', null, 'Sign in'),
      h('p', { class: 'muted' }, 'This server needs a token (from ', h('code', null, 'runnel tokens create NAME --role reader'), ').'),
      input, ' ', h('button', { class: 'button primary', type: 'submit' }, 'Sign in'), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      try {
        const s = await api('/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: input.value.trim() }) });
        input.value = '';
        resolve(s);
      } catch (e) {
        err.textContent = e.message;
      }
    });
    root.replaceChildren(form);
    input.focus();
  });
}
