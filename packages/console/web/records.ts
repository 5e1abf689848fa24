// How a line of the audit trail reads in a table: its time, what it is,
// its path and a short detail (the search, the history and the tree use it).
import { bytes } from './dom.js';
import type { TrailRecord } from './types.js';

/** What a trail record is: an event's type, or its record kind (`diff`, `gap`, `status`, `config`). */
export function recordType(r: TrailRecord['record']): string {
  return r.record === 'event' && typeof r.type === 'string' ? r.type : String(r.record ?? '?');
}

/** The record's path (`old → new` for a rename), or '' for records without one. */
export function recordPath(r: TrailRecord['record']): string {
  const path = typeof r.path === 'string' ? r.path : '';
  return typeof r.oldPath === 'string' ? `${r.oldPath} → ${path}` : path;
}

/**
 * Who made an event's change (issue 16): `alice(1000) sed[4242]`, with the
 * login user when it differs (`root(0) login alice(1000) vi[77]`);
 * `who: process-gone` when the agent could not tell; '' with who-data off.
 */
export function whoText(who: unknown, whoMissing: unknown): string {
  if (typeof who === 'object' && who !== null) {
    const w = who as Record<string, unknown>;
    const name = (n: unknown, id: unknown): string => `${typeof n === 'string' ? n : 'uid'}(${String(id)})`;
    const login = typeof w.auid === 'number' && w.auid !== w.uid ? ` login ${name(w.auser, w.auid)}` : '';
    return `${name(w.user, w.uid)}${login} ${typeof w.comm === 'string' ? w.comm : '?'}[${String(w.pid)}]`;
  }
  return who === null ? `who: ${typeof whoMissing === 'string' ? whoMissing : 'unknown'}` : '';
}

/** A short detail: size for an event, +added −removed for a diff, the seq range and reason of a gap. */
export function recordDetail(r: TrailRecord['record']): string {
  switch (r.record) {
    case 'event': {
      const who = whoText(r.who, r.whoMissing);
      const what = r.kind === 'file' ? bytes(r.size as number | null) : String(r.kind ?? '');
      return who ? `${what} · ${who}` : what;
    }
    case 'diff':
      return r.skipped ? `skipped: ${String(r.skipped)}` : `+${String(r.added)} −${String(r.removed)}`;
    case 'gap':
      return typeof r.fromSeq === 'number'
        ? `seq ${r.fromSeq}–${String(r.toSeq)} missing: ${String(r.reason)}`
        : `${String(r.reason)}: ${String(r.since)} – ${String(r.until)} (seq ${String(r.seq)})`;
    case 'status':
      return `${String(r.state)} · lastSeq ${String(r.lastSeq)}`;
    case 'config':
      return r.cleared === true ? 'cleared' : `revision ${String(r.revision)}`;
    case 'alert':
      return `${String(r.state)} ${String(r.severity)} · ${String(r.rule)} ×${String(r.count)}: ${String(r.summary)}`;
    default:
      return '';
  }
}
