// The live stream: events, diffs and gaps as they arrive over MQTT, in a
// virtualised list drawn once per animation frame, with filters, pause, and
// a panel that shows the selected event's diff.
import { renderDiff } from './diffView.js';
import { bytes, clock, h, replace } from './dom.js';
import { globToRegExp } from './glob.js';
import { whoText } from './records.js';
import type { Live } from './live.js';
import type { FsoDiff, FsoEvent, FsoGap } from './types.js';
import type { View } from './view.js';
import { createVirtualList } from './virtualList.js';

/** Rows kept (oldest dropped first); the cap keeps memory flat at any rate. */
export const LIVE_CAP = 50_000;
const DIFFS_KEPT = 20_000;
const ROW_HEIGHT = 22;

/** One row of the stream. */
interface Row {
  n: number;
  kind: 'event' | 'diff' | 'gap';
  agentId: string;
  /** The event type, `diff` or `gap`. */
  type: string;
  path: string;
  oldPath?: string;
  at: string;
  event?: FsoEvent;
  diff?: FsoDiff;
  gap?: FsoGap;
}

interface Filter {
  agent: string;
  type: string;
  path: RegExp | null;
}

function matches(row: Row, f: Filter): boolean {
  if (f.agent && row.agentId !== f.agent) return false;
  if (f.type && row.type !== f.type) return false;
  if (f.path && row.kind !== 'gap' && !f.path.test(row.path) && !(row.oldPath !== undefined && f.path.test(row.oldPath))) return false;
  return true;
}

function gapText(g: FsoGap): string {
  return `watcher overflow: changes from ${clock(g.since)} to ${clock(g.until)} may be missing (seq ${g.seq}; ${g.notifications} notifications at once; rescan of ${g.roots.join(', ')})`;
}

/**
 * Creates the live view over `live`'s events, diffs and gaps.
 *
 * @example
 * main.append(createLiveView(live).element);
 */
export function createLiveView(live: Live): View {
  let serial = 0;
  let store: Row[] = [];
  let filtered: Row[] = [];
  let inbox: Row[] = [];
  let held: Row[] = [];
  let paused = false;
  let frame = 0;
  let filter: Filter = { agent: '', type: '', path: null };
  let selected: Row | undefined;
  let countedAt = 0;
  let countTimer: ReturnType<typeof setTimeout> | undefined;
  const diffs = new Map<string, FsoDiff>();
  const agents = new Set<string>();
  const diffKey = (agentId: string, eventId: string): string => `${agentId}\n${eventId}`;

  const agentSelect = h('select', { testid: 'live-agent', title: 'agent', onchange: () => refilter() }, h('option', { value: '' }, 'all agents'));
  const typeSelect = h('select', { testid: 'live-type', title: 'type', onchange: () => refilter() },
    ...['', 'create', 'modify', 'delete', 'rename', 'diff', 'gap'].map((t) => h('option', { value: t }, t || 'all types')));
  const pathInput = h('input', { testid: 'live-path', type: 'search', placeholder: 'path glob, e.g. **/*.conf', class: 'mono', oninput: () => refilter() });
  const pathError = h('span', { class: 'field-error' });
  const pauseButton = h('button', { testid: 'live-pause', type: 'button', onclick: () => togglePause() }, 'Pause');
  const counter = h('span', { class: 'counter', testid: 'live-count' });
  const heldNote = h('span', { class: 'held', testid: 'live-held' });
  const detail = h('aside', { class: 'detail', testid: 'live-detail' }, h('p', { class: 'hint' }, 'Click a row to see its diff or details.'));

  const list = createVirtualList<Row>({
    rowHeight: ROW_HEIGHT,
    testid: 'live-list',
    createRow: () => {
      const row = h('div', { testid: 'live-row' }, h('span', { class: 'c-time' }), h('span', { class: 'c-agent' }), h('span', { class: 'c-type' }), h('span', { class: 'c-path mono' }), h('span', { class: 'c-info' }));
      return row;
    },
    updateRow: (el, row) => {
      el.className = `vrow row-${row.kind} t-${row.type}${row === selected ? ' selected' : ''}`;
      const [time, agent, type, path, info] = el.children as unknown as HTMLElement[];
      (time as HTMLElement).textContent = clock(row.at);
      (agent as HTMLElement).textContent = row.agentId;
      (type as HTMLElement).textContent = row.kind === 'gap' ? 'GAP' : row.type;
      (path as HTMLElement).textContent = row.gap ? gapText(row.gap) : row.oldPath !== undefined ? `${row.oldPath} → ${row.path}` : row.path;
      (info as HTMLElement).textContent = info_(row);
    },
    onSelect: (row) => select(row),
  });

  function info_(row: Row): string {
    if (row.diff) return row.diff.skipped ? `skipped: ${row.diff.skipped}` : `+${row.diff.added} −${row.diff.removed}`;
    const e = row.event;
    if (!e) return '';
    const parts = [e.kind === 'file' ? bytes(e.size) : e.kind];
    if (e.origin === 'scan') parts.push('scan');
    parts.push(whoText(e.who, e.whoMissing));
    if (e.important) parts.push(diffs.has(diffKey(e.agentId, e.id)) ? '± diff' : '± …');
    return parts.filter(Boolean).join(' · ');
  }

  function redraw(added: number): void {
    list.show(filtered.length, (i) => filtered[filtered.length - 1 - i] as Row);
    list.shiftDown(added);
    // The counters at most 4 times a second: text outside the list costs a layout of the toolbar.
    const now = performance.now();
    if (now - countedAt < 250 && added > 0) {
      if (countTimer === undefined) countTimer = setTimeout(() => redraw(0), 250);
      return;
    }
    clearTimeout(countTimer);
    countTimer = undefined;
    countedAt = now;
    counter.textContent = `${filtered.length.toLocaleString()} shown · ${store.length.toLocaleString()} kept`;
    heldNote.textContent = paused ? `paused · ${held.length.toLocaleString()} new` : '';
  }

  function flush(): void {
    frame = 0;
    const batch = inbox;
    inbox = [];
    if (paused) {
      held.push(...batch);
      if (held.length > LIVE_CAP) held = held.slice(-LIVE_CAP);
      heldNote.textContent = `paused · ${held.length.toLocaleString()} new`;
      return;
    }
    let added = 0;
    for (const row of batch) {
      store.push(row);
      if (matches(row, filter)) {
        filtered.push(row);
        added += 1;
      }
      if (!agents.has(row.agentId)) {
        agents.add(row.agentId);
        agentSelect.append(h('option', { value: row.agentId }, row.agentId));
      }
    }
    if (store.length > LIVE_CAP + LIVE_CAP / 10) {
      store = store.slice(-LIVE_CAP);
      const oldest = (store[0] as Row).n;
      filtered = filtered.filter((r) => r.n >= oldest);
    }
    redraw(added);
    if (selected?.event && batch.some((r) => r.diff?.eventId === selected?.event?.id)) select(selected);
  }

  function receive(row: Omit<Row, 'n'>): void {
    inbox.push({ ...row, n: (serial += 1) });
    // A hidden tab gets no frames: bound what waits for one.
    if (inbox.length > LIVE_CAP) inbox = inbox.slice(-LIVE_CAP);
    if (frame === 0) frame = requestAnimationFrame(flush);
  }

  function refilter(): void {
    let path: RegExp | null = null;
    pathError.textContent = '';
    if (pathInput.value.trim()) {
      try {
        path = globToRegExp(pathInput.value.trim());
      } catch {
        pathError.textContent = 'not a glob this page can read';
      }
    }
    filter = { agent: agentSelect.value, type: typeSelect.value, path };
    filtered = store.filter((r) => matches(r, filter));
    redraw(0);
  }

  function togglePause(): void {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    pauseButton.classList.toggle('active', paused);
    if (!paused) {
      inbox = held.concat(inbox);
      held = [];
      flush();
    } else {
      redraw(0);
    }
  }

  /** The detail's who rows: user, group, login user, process (issue 16); one row saying why when unknown; none with who-data off. */
  function whoRows(e: FsoEvent): Array<[string, string]> {
    if (e.who === undefined) return [];
    if (e.who === null) return [['who', `unknown (${e.whoMissing ?? '?'})`]];
    const w = e.who;
    const named = (n: string | null | undefined, id: number | null | undefined): string => (id === null || id === undefined ? '?' : `${n ?? 'uid'} (${id})`);
    return [
      ['user', `${named(w.user, w.uid)}${w.euid !== undefined && w.euid !== w.uid ? ` · effective ${named(w.euser, w.euid)}` : ''}`],
      ...(w.auid !== undefined && w.auid !== null ? [['login', named(w.auser, w.auid)] as [string, string]] : []),
      ['group', String(w.gid ?? '?')],
      ['process', `${w.comm ?? '?'} [${w.pid}]${w.ppid !== undefined && w.ppid !== null ? ` · parent ${w.ppid}` : ''}`],
      ['exe', w.exe ?? 'unknown (exited before it was read)'],
    ];
  }

  function select(row: Row): void {
    selected = row;
    redraw(0);
    const title = h('h3', { class: 'mono' }, row.gap ? 'gap' : row.oldPath !== undefined ? `${row.oldPath} → ${row.path}` : row.path);
    if (row.gap) {
      replace(detail, title, h('p', { class: 'gap-detail', testid: 'gap-detail' }, gapText(row.gap)));
      return;
    }
    if (row.diff) {
      replace(detail, title, h('p', { class: 'meta' }, `diff of ${row.agentId} · ${clock(row.at)}`), renderDiff(row.diff));
      return;
    }
    const e = row.event as FsoEvent;
    const meta = h('dl', { class: 'meta-list' },
      ...[['type', e.type], ['agent', e.agentId], ['kind', e.kind], ['size', bytes(e.size)], ['sha256', e.sha256 ?? (e.hashSkipped ? `none (${e.hashSkipped})` : 'none')],
        ['origin', e.origin], ...whoRows(e), ['observed', e.observedAt], ['seq', `${e.epoch} #${e.seq}`]].flatMap(([k, v]) => [h('dt', {}, k as string), h('dd', { class: 'mono' }, v as string)]));
    const diff = diffs.get(diffKey(e.agentId, e.id));
    const body = diff ? renderDiff(diff)
      : e.important ? h('p', { class: 'hint', testid: 'diff-waiting' }, 'Waiting for this event\'s diff…')
      : h('p', { class: 'hint', testid: 'diff-none' }, 'No diff: this path matches no important glob of its watch.');
    replace(detail, title, meta, body);
  }

  live.on('event', (e) => receive({ kind: 'event', agentId: e.agentId, type: e.type, path: e.path, ...(e.oldPath === undefined ? {} : { oldPath: e.oldPath }), at: e.observedAt, event: e }));
  live.on('diff', (d) => {
    diffs.set(diffKey(d.agentId, d.eventId), d);
    if (diffs.size > DIFFS_KEPT) diffs.delete(diffs.keys().next().value as string);
    receive({ kind: 'diff', agentId: d.agentId, type: 'diff', path: d.path, at: d.observedAt, diff: d });
  });
  live.on('gap', (g) => receive({ kind: 'gap', agentId: g.agentId, type: 'gap', path: '', at: g.observedAt, gap: g }));

  const element = h('section', { class: 'view live-view', testid: 'view-live' },
    h('div', { class: 'toolbar' }, agentSelect, typeSelect, pathInput, pathError, pauseButton,
      h('button', { type: 'button', testid: 'live-clear', onclick: () => { store = []; filtered = []; held = []; redraw(0); } }, 'Clear'),
      heldNote, counter),
    h('div', { class: 'split' }, h('div', { class: 'list-wrap' },
      h('div', { class: 'vhead' }, h('span', { class: 'c-time' }, 'time'), h('span', { class: 'c-agent' }, 'agent'), h('span', { class: 'c-type' }, 'type'), h('span', { class: 'c-path' }, 'path'), h('span', { class: 'c-info' }, '')),
      list.element), detail));
  redraw(0);
  return { element, shown: () => redraw(0) };
}
