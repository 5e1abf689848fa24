// The login form: the broker checks the username and the password (or a
// token); the password stays in this page's memory for the MQTT connection.
import { ApiError, api } from './api.js';
import { h } from './dom.js';
import type { Credentials, SessionInfo } from './types.js';

/**
 * Creates the form; `onLogin` gets the session and what was typed.
 *
 * @example
 * document.body.append(createLoginView((session, creds) => start(session, creds)));
 */
export function createLoginView(onLogin: (session: SessionInfo, creds: Credentials) => void, note = '', username = ''): HTMLElement {
  const user = h('input', { testid: 'login-username', name: 'username', autocomplete: 'username', required: true, value: username });
  const pass = h('input', { testid: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error-text', testid: 'login-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary', testid: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login', testid: 'login-form' },
    h('h1', {}, 'FSO console'),
    note ? h('p', { class: 'hint' }, note) : null,
    h('label', {}, 'Username', user),
    h('label', {}, 'Password or token', pass),
    button, error,
    h('p', { class: 'hint' }, 'The broker checks this login; what you see is what its ACL lets you read.'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    error.textContent = '';
    button.disabled = true;
    const creds = { username: user.value, password: pass.value };
    api<SessionInfo>('/api/login', creds).then((session) => onLogin(session, creds), (err: unknown) => {
      error.textContent = err instanceof ApiError ? err.message : `the console could not be reached (${String(err)})`;
      button.disabled = false;
    });
  });
  queueMicrotask(() => (username ? pass : user).focus());
  return form;
}
