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

/** A short detail: size for an event, +added −removed for a diff, the seq range and reason of a gap. */
export function recordDetail(r: TrailRecord['record']): string {
  switch (r.record) {
    case 'event':
      return r.kind === 'file' ? bytes(r.size as number | null) : String(r.kind ?? '');
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
