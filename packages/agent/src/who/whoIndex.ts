import type { EventType } from '@fso/common';

/** fanotify's event bits (linux/fanotify.h). */
export const FAN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  RENAME: 0x10000000,
  ONDIR: 0x40000000,
} as const;

/** One kernel event under a watched root, with the process the reader found behind it. */
export interface WhoRecord {
  mask: number;
  /** The entry (a rename's new name). */
  path: string;
  /** A rename's old name. */
  oldPath: string | null;
  pid: number;
  uid: number | null;
  euid: number | null;
  gid: number | null;
  auid: number | null;
  ppid: number | null;
  exe: string | null;
  comm: string | null;
  /** Why /proc/<pid> could not be read (ENOENT: the process had exited), else null. */
  procError: string | null;
  /** When the reader read it, epoch ms. */
  at: number;
}

/** What a record did to one path. */
type Act = 'create' | 'write' | 'attrib' | 'delete' | 'moved-to' | 'moved-from';

interface Entry {
  act: Act;
  record: WhoRecord;
}

const PER_PATH = 8;

/** Which acts can explain a change, best first (each group: the latest record in it wins). */
const WANTED: Record<EventType, Act[][]> = {
  create: [['create', 'moved-to'], ['write'], ['attrib']],
  // A name taken over by a new file (`sed -i`, an editor's save) is a modify made by a rename or a create.
  modify: [['write', 'moved-to', 'create'], ['attrib']],
  delete: [['delete', 'moved-from']],
  rename: [['moved-to']],
};

/**
 * The recent kernel records by path, for the change publisher to ask who
 * made a change. Bounded: at most {@link PER_PATH} records per path, paths
 * not touched for `keepMs` are dropped, and at most `maxPaths` are kept.
 */
export class WhoIndex {
  readonly #byPath = new Map<string, Entry[]>();
  readonly #keepMs: number;
  readonly #maxPaths: number;

  constructor({ keepMs = 60_000, maxPaths = 100_000 }: { keepMs?: number; maxPaths?: number } = {}) {
    this.#keepMs = keepMs;
    this.#maxPaths = maxPaths;
  }

  get size(): number {
    return this.#byPath.size;
  }

  add(record: WhoRecord): void {
    const m = record.mask;
    if (m & (FAN.RENAME | FAN.MOVED_TO | FAN.MOVED_FROM)) {
      if (m & (FAN.RENAME | FAN.MOVED_TO)) this.#put(record.path, { act: 'moved-to', record });
      const from = m & FAN.RENAME ? record.oldPath : m & FAN.MOVED_FROM ? record.path : null;
      if (from) this.#put(from, { act: 'moved-from', record });
      return;
    }
    if (m & FAN.CREATE) this.#put(record.path, { act: 'create', record });
    if (m & FAN.DELETE) this.#put(record.path, { act: 'delete', record });
    if (m & (FAN.MODIFY | FAN.CLOSE_WRITE)) this.#put(record.path, { act: 'write', record });
    else if (m & FAN.ATTRIB) this.#put(record.path, { act: 'attrib', record });
  }

  /**
   * The record that best explains a change of `type` to `path` seen at
   * `observedAtMs`: of the acts that can make it, among those read no more
   * than `slackMs` before the change was seen (older ones belong to earlier
   * changes of the path), the latest read by then, else the first read
   * after. A rename's record must name `oldPath` too.
   */
  pick(type: EventType, path: string, observedAtMs: number, oldPath?: string, slackMs = 2_000): WhoRecord | undefined {
    const entries = this.#byPath.get(path);
    if (!entries) return undefined;
    const recent = entries.filter((e) => e.record.at >= observedAtMs - slackMs);
    for (const group of WANTED[type]) {
      // The latest read by the time the change was seen (the reader is usually first); else the first read after it
      // (a later record, read in the same batch, is another change of the path, reported as its own event).
      let before: Entry | undefined;
      let after: Entry | undefined;
      for (const e of recent) {
        if (!group.includes(e.act)) continue;
        if (type === 'rename' && oldPath !== undefined && e.record.oldPath !== null && e.record.oldPath !== oldPath) continue;
        if (e.record.at <= observedAtMs) {
          if (!before || e.record.at >= before.record.at) before = e;
        } else if (!after || e.record.at < after.record.at) {
          after = e;
        }
      }
      const best = before ?? after;
      if (best) return best.record;
    }
    return undefined;
  }

  /** Drops what is older than `keepMs` (or past `maxPaths`), oldest first. */
  prune(nowMs: number): void {
    for (const [p, entries] of this.#byPath) {
      const last = entries[entries.length - 1];
      if (this.#byPath.size <= this.#maxPaths && last && last.record.at >= nowMs - this.#keepMs) break;
      this.#byPath.delete(p);
    }
  }

  #put(p: string, entry: Entry): void {
    const entries = this.#byPath.get(p) ?? [];
    // Re-inserted: the map stays ordered by last touch, so prune() stops at the first recent one.
    this.#byPath.delete(p);
    entries.push(entry);
    if (entries.length > PER_PATH) entries.shift();
    this.#byPath.set(p, entries);
  }
}
