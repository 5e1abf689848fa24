// Search over the audit trail (GET /api/records): filters, a page at a
// time, a click on a path opens its history; and the tree form (what the
// trail says is under a directory now).
import { ApiError, api, query } from './api.js';
import { dateTime, h, replace } from './dom.js';
import { showHistory } from './historyPanel.js';
import { recordDetail, recordPath, recordType } from './records.js';
import { createTreeForm } from './treeForm.js';
import type { RecordsPage } from './types.js';
import type { View } from './view.js';

/** Records per page. */
export const PAGE_SIZE = 50;
const TYPES = ['', 'create', 'modify', 'delete', 'rename', 'event', 'diff', 'status', 'config', 'gap', 'alert'];
const QUICK = ['1h', '24h', '7d'];

/** An `<input type=datetime-local>` value as ISO, or undefined when empty. */
function isoOf(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? local : t.toISOString();
}

/**
 * Creates the search view.
 *
 * @example
 * main.append(createSearchView().element);
 */
export function createSearchView(): View {
  const errors = new Map<string, HTMLElement>();
  const field = (name: string, label: string, input: HTMLElement): HTMLElement => {
    const error = h('span', { class: 'field-error', testid: `error-${name}` });
    errors.set(name, error);
    return h('label', { class: 'field' }, label, input, error);
  };
  const agent = h('input', { testid: 'search-agent', placeholder: 'any', size: 12 });
  const type = h('select', { testid: 'search-type' }, ...TYPES.map((t) => h('option', { value: t }, t || 'any')));
  const path = h('input', { testid: 'search-path', class: 'mono', placeholder: '**/*.conf', size: 26 });
  const text = h('input', { testid: 'search-text', placeholder: 'part of a path', size: 16 });
  const since = h('input', { testid: 'search-since', type: 'datetime-local', step: 1 });
  const until = h('input', { testid: 'search-until', type: 'datetime-local', step: 1 });
  let quick = '';
  const quickButtons = QUICK.map((q) => h('button', { type: 'button', testid: `search-last-${q}`, onclick: () => setQuick(quick === q ? '' : q) }, `last ${q}`));
  const setQuick = (q: string): void => {
    quick = q;
    if (q) since.value = '';
    quickButtons.forEach((b, i) => b.classList.toggle('active', QUICK[i] === q));
  };
  since.addEventListener('input', () => setQuick(''));

  const range = h('span', { testid: 'search-range', class: 'hint' });
  const prev = h('button', { type: 'button', testid: 'search-prev', disabled: true, onclick: () => void run(offset - PAGE_SIZE) }, '‹ Prev');
  const next = h('button', { type: 'button', testid: 'search-next', disabled: true, onclick: () => void run(offset + PAGE_SIZE) }, 'Next ›');
  const body = h('tbody', {});
  const history = h('section', { class: 'panel', hidden: true });
  let offset = 0;

  async function run(from: number): Promise<void> {
    for (const e of errors.values()) e.textContent = '';
    const params = {
      agent: agent.value.trim(), type: type.value, path: path.value.trim(), text: text.value,
      since: quick || isoOf(since.value), until: isoOf(until.value), limit: PAGE_SIZE, offset: Math.max(0, from),
    };
    let page: RecordsPage;
    try {
      page = await api<RecordsPage>(`/api/records${query(params)}`);
    } catch (err) {
      const target = err instanceof ApiError && err.field ? errors.get(err.field) : undefined;
      if (target) target.textContent = (err as ApiError).message;
      else range.textContent = err instanceof Error ? err.message : String(err);
      return;
    }
    offset = page.offset;
    const first = page.records.length ? page.offset + 1 : 0;
    range.textContent = `${first.toLocaleString()}–${(page.offset + page.records.length).toLocaleString()} of ${page.total.toLocaleString()}`;
    prev.disabled = page.offset === 0;
    next.disabled = page.offset + page.records.length >= page.total;
    replace(body, ...page.records.map(({ record: r }) => {
      const t = recordType(r);
      const p = recordPath(r);
      const target = typeof r.path === 'string' ? r.path : '';
      const agentId = typeof r.agentId === 'string' ? r.agentId : '';
      return h('tr', { testid: 'search-row', class: t === 'gap' ? 'gap' : '' },
        h('td', { class: 'mono hint' }, dateTime(String(r.receivedAt ?? ''))),
        h('td', {}, agentId),
        h('td', { class: `type-${t} strong` }, t),
        h('td', {}, target ? h('button', { type: 'button', class: 'path-link', testid: 'search-path-link', title: 'open its history', onclick: () => void showHistory(history, target, agentId || undefined) }, p) : ''),
        h('td', { class: 'hint' }, recordDetail(r)));
    }));
    if (page.records.length === 0) body.append(h('tr', {}, h('td', { colspan: 5, class: 'hint' }, 'No record matches.')));
  }

  const form = h('form', { class: 'form-row', testid: 'search-form' },
    field('agent', 'agent', agent), field('type', 'type', type), field('path', 'path glob', path), field('text', 'text in path', text),
    field('since', 'since', since), h('div', { class: 'quick' }, ...quickButtons), field('until', 'until', until),
    h('button', { type: 'submit', class: 'primary', testid: 'search-submit' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run(0);
  });

  const element = h('section', { class: 'view', testid: 'view-search' },
    form,
    h('div', { class: 'pager' }, prev, next, range),
    h('div', { class: 'columns' },
      h('table', { class: 'grid', testid: 'search-results' },
        h('thead', {}, h('tr', {}, ...['received', 'agent', 'type', 'path', 'detail'].map((c) => h('th', {}, c)))), body),
      history),
    createTreeForm());
  return { element };
}
