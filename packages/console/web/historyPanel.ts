// One path's history: every event and diff of it through its renames,
// oldest first, diffs rendered (GET /api/history).
import { ApiError, api, query } from './api.js';
import { renderDiff } from './diffView.js';
import { dateTime, h, replace } from './dom.js';
import { recordDetail, recordPath, recordType } from './records.js';
import type { FsoDiff, TrailRecord } from './types.js';

/**
 * Fills `panel` with the history of `path` (of `agent`, when given).
 *
 * @example
 * await showHistory(panel, '/etc/nginx/nginx.conf', 'web-01');
 */
export async function showHistory(panel: HTMLElement, path: string, agent?: string): Promise<void> {
  panel.hidden = false;
  replace(panel, h('h3', {}, 'History of ', h('span', { class: 'mono' }, path)), h('p', { class: 'hint' }, 'loading…'));
  let records: TrailRecord[];
  try {
    ({ records } = await api<{ records: TrailRecord[] }>(`/api/history${query({ path, agent })}`));
  } catch (err) {
    replace(panel, h('p', { class: 'error-text' }, err instanceof ApiError ? err.message : String(err)));
    return;
  }
  const items = records.map(({ record: r, file, line }) => {
    const type = recordType(r);
    return h('div', { class: 'history-item', testid: 'history-item' },
      h('div', {},
        h('span', { class: 'hint' }, dateTime(String(r.observedAt ?? r.receivedAt ?? '')), ' '),
        h('strong', { class: `type-${type}` }, type), ' ',
        h('span', { class: 'mono' }, recordPath(r)), ' ',
        h('span', { class: 'hint' }, recordDetail(r), ` · ${file}:${line}`)),
      r.record === 'diff' ? renderDiff(r as unknown as FsoDiff) : null);
  });
  replace(panel,
    h('h3', {}, 'History of ', h('span', { class: 'mono' }, path), h('span', { class: 'hint' }, ` · ${records.length} records, oldest first`)),
    h('button', { type: 'button', onclick: () => { panel.hidden = true; } }, 'Close'),
    ...(items.length ? items : [h('p', { class: 'hint' }, 'The trail has nothing about this path.')]));
  panel.dataset.testid = 'history';
}
