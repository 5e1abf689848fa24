// "What is on host X under /etc now", as the trail replays it (GET /api/tree).
import { ApiError, api, query } from './api.js';
import { bytes, dateTime, h, replace } from './dom.js';
import type { TreeEntry } from './types.js';

/**
 * Creates the tree form and its result table.
 *
 * @example
 * view.append(createTreeForm());
 */
export function createTreeForm(): HTMLElement {
  const agent = h('input', { testid: 'tree-agent', placeholder: 'web-01', size: 12, required: true });
  const under = h('input', { testid: 'tree-under', class: 'mono', placeholder: '/etc', size: 30 });
  const until = h('input', { testid: 'tree-until', type: 'datetime-local', step: 1, title: 'as it was then (empty: now)' });
  const status = h('span', { class: 'hint', testid: 'tree-status' });
  const body = h('tbody', {});
  const form = h('form', { class: 'form-row', testid: 'tree-form' },
    h('strong', {}, 'Tree'),
    h('label', { class: 'field' }, 'agent', agent),
    h('label', { class: 'field' }, 'under', under),
    h('label', { class: 'field' }, 'as of (empty: now)', until),
    h('button', { type: 'submit', class: 'primary', testid: 'tree-submit' }, 'Show'), status);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    status.textContent = 'loading…';
    const at = until.value ? new Date(until.value).toISOString() : undefined;
    api<{ entries: TreeEntry[] }>(`/api/tree${query({ agent: agent.value.trim(), under: under.value.trim(), until: at })}`).then(({ entries }) => {
      status.textContent = `${entries.length.toLocaleString()} entries`;
      replace(body, ...entries.map((e) => h('tr', { testid: 'tree-row' },
        h('td', { class: 'mono' }, e.path), h('td', {}, e.kind), h('td', { class: 'num' }, bytes(e.size)),
        h('td', { class: 'mono hint', title: e.sha256 ?? '' }, e.sha256 ? e.sha256.slice(0, 12) : ''),
        h('td', { class: `type-${e.type}` }, e.type), h('td', { class: 'hint' }, dateTime(e.receivedAt)))));
    }, (err: unknown) => {
      status.textContent = err instanceof ApiError ? `${err.field ? `${err.field}: ` : ''}${err.message}` : String(err);
    });
  });
  return h('section', { class: 'tree' }, form,
    h('table', { class: 'grid', testid: 'tree-results' },
      h('thead', {}, h('tr', {}, ...['path', 'kind', 'size', 'sha256', 'last change', 'recorded'].map((c) => h('th', {}, c)))), body));
}
