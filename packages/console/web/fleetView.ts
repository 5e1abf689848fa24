// The fleet: every agent's retained status (and last will), live, with a
// "last seen" that ticks.
import { ago, h } from './dom.js';
import type { Live } from './live.js';
import type { AgentStatus } from './types.js';
import type { View } from './view.js';

function configText(s: AgentStatus): string {
  const c = s.config;
  if (c.revision === null) return 'none';
  const applied = c.appliedRevision !== undefined && c.appliedRevision !== null && c.appliedRevision !== c.revision ? ` (runs ${c.appliedRevision})` : '';
  return `rev ${c.revision} · ${c.state}${applied}${c.source ? ` · ${c.source}` : ''}`;
}

function outboxText(s: AgentStatus): string {
  if (!s.outbox) return '—';
  const lost = (s.outbox.lost ?? []).length > 0 ? ` · lost ${(s.outbox.lost ?? []).map((r) => `${r.fromSeq}–${r.toSeq}`).join(', ')}` : '';
  return `${s.outbox.pending}${s.outbox.full ? ' FULL' : ''}${lost}`;
}

/**
 * Creates the fleet view: one row per agent, redrawn when its status changes.
 *
 * @example
 * main.append(createFleetView(live).element);
 */
export function createFleetView(live: Live): View {
  const body = h('tbody', {});
  const empty = h('p', { class: 'hint', testid: 'fleet-empty' }, 'No agent has published a status yet.');
  const seen = new Map<string, HTMLElement>();
  const rows = new Map<string, HTMLTableRowElement>();

  const draw = (s: AgentStatus): void => {
    const lastSeen = h('td', { testid: 'fleet-seen', title: s.at }, ago(s.at));
    seen.set(s.agentId, lastSeen);
    const error = s.config.state === 'rejected' && s.config.error ? h('div', { class: 'error-text' }, s.config.error) : null;
    const overflows = s.inotify?.overflows ?? 0;
    const row = h('tr', { testid: 'fleet-row', 'data-agent': s.agentId, class: s.state },
      h('td', { class: 'mono strong' }, s.agentId),
      h('td', { testid: 'fleet-state' }, h('span', { class: `dot ${s.state}` }), s.state),
      h('td', {}, s.hostname),
      h('td', {}, s.version),
      h('td', { testid: 'fleet-config', class: `cfg-${s.config.state}` }, configText(s), error),
      h('td', { class: 'num' }, outboxText(s)),
      h('td', { class: overflows > 0 ? 'num warn' : 'num', title: s.inotify?.lastOverflowAt ?? '' }, String(overflows)),
      h('td', { class: 'num' }, String(s.lastSeq)),
      lastSeen);
    const old = rows.get(s.agentId);
    rows.set(s.agentId, row);
    if (old) old.replaceWith(row);
    else {
      const ids = [...rows.keys()].sort();
      const next = rows.get(ids[ids.indexOf(s.agentId) + 1] ?? '');
      body.insertBefore(row, next && next !== row ? next : null);
    }
    empty.hidden = true;
  };

  for (const s of live.statuses.values()) draw(s);
  live.on('status', draw);
  const tick = (): void => {
    for (const [id, cell] of seen) cell.textContent = ago(live.statuses.get(id)?.at);
  };
  const timer = setInterval(tick, 1_000);

  const table = h('table', { class: 'grid', testid: 'fleet-table' },
    h('thead', {}, h('tr', {}, ...['agent', 'state', 'host', 'version', 'config', 'outbox pending', 'overflows', 'last seq', 'last seen'].map((t) => h('th', {}, t)))),
    body);
  const element = h('section', { class: 'view fleet-view', testid: 'view-fleet' }, table, empty);
  return { element, shown: tick, close: () => clearInterval(timer) };
}
